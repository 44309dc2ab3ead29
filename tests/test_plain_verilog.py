"""Both engines' Verilog outside cocotb (sim/plain.py): a user's plain-Verilog bench, holding
``rst`` from time 0, on Icarus in Verilog-2005 and SystemVerilog mode and on Verilator; every
output bit-exact against golden."""

import copy

import numpy as np
import pytest
import torch
from conftest import need

from helu.golden import intmodel
from helu.golden.intnet import IntNet, Scales
from helu.hw.net.mlp import MLP
from helu.hw.net.trainer import Trainer, TrainSpec
from helu.hw.net.verilog import generate
from helu.sim import plain

MODES = list(plain.MODES)
SIMULATOR = {mode: plain.MODES[mode][0] for mode in MODES}


def _model():
    rng = np.random.default_rng(3)
    weights = [rng.integers(-128, 128, size=(7, 10)), rng.integers(-128, 128, size=(4, 7))]
    biases = [rng.integers(-2000, 2000, size=7), rng.integers(-2000, 2000, size=4)]
    return intmodel.IntModel(
        weights, biases, [7, 8], threshold=-2, input=intmodel.InputFormat(0, 0, 16)
    )


def _net(sizes):
    layers = len(sizes) - 1
    scales = Scales.chain(4, (6,) * layers, (4,) * (layers - 1) + (5,), 2, 5)
    net = IntNet.scratch([7], scales, -3, sizes=tuple(sizes))
    gen = torch.Generator().manual_seed(7)
    net.biases = [torch.randint(-400, 1200, b.shape, generator=gen) for b in net.biases]
    return net


@pytest.fixture(scope="module")
def inference(tmp_path_factory):
    model = _model()
    x = np.random.default_rng(4).integers(0, 17, size=(6, 10))
    gen = generate(MLP(model, 4), tmp_path_factory.mktemp("mlp"))
    return gen, plain.pack_inputs(gen.meta, x), intmodel.infer(model, x)


@pytest.fixture(scope="module")
def training(tmp_path_factory):
    sizes = [10, 4, 4, 3]
    net = _net(sizes)
    rng = np.random.default_rng(1)
    x, labels = rng.integers(0, 17, size=(6, sizes[0])), rng.integers(0, sizes[-1], size=6)
    gen = generate(Trainer(TrainSpec.from_net(net), 4), tmp_path_factory.mktemp("trainer"))
    golden, logits = copy.deepcopy(net), []
    for xs, lab in zip(x, labels, strict=True):
        logits.append(golden.forward(torch.as_tensor(xs)[None, None, :])[1][-1][0, 0].numpy())
        golden.step(torch.as_tensor(xs)[None, :], torch.as_tensor([int(lab)]))
    return gen, plain.pack_inputs(gen.meta, x, labels), np.asarray(logits)


def _check(gen, transfers, want_logits, mode, work):
    need(SIMULATOR[mode])
    out = plain.run(gen.verilog, gen.sidecar, transfers, len(want_logits), mode=mode, work=work)
    assert -1 not in out, f"{mode}: an output holds X or Z bits"
    assert len(out) == len(want_logits)
    logits, cls = plain.unpack_outputs(gen.meta, out)
    np.testing.assert_array_equal(logits, want_logits)
    np.testing.assert_array_equal(cls, intmodel.argmax(want_logits))


@pytest.mark.parametrize("mode", MODES)
def test_inference_engine_in_a_plain_bench(inference, mode, tmp_path):
    gen, transfers, (logits, _) = inference
    _check(gen, transfers, logits, mode, tmp_path)


@pytest.mark.parametrize("mode", MODES)
def test_training_engine_in_a_plain_bench(training, mode, tmp_path):
    """Each step's logits come from the weights the steps before updated: all bit-exact means
    every update was."""
    gen, transfers, logits = training
    _check(gen, transfers, logits, mode, tmp_path)


def test_without_the_time_0_trigger_systemverilog_goes_x(training, tmp_path):
    """The check can fail: the same Verilog without ``hw.verilog.convert``'s ``initial #0``
    trigger goes X in SystemVerilog mode (no event at time 0), and the run says so."""
    need("icarus")
    gen, transfers, logits = training
    text = gen.verilog.read_text()
    bare = tmp_path / gen.verilog.name
    bare.write_text("\n".join(line for line in text.splitlines() if "initial #0" not in line))
    assert bare.read_text() != text
    work = tmp_path / "w"
    out = plain.run(bare, gen.sidecar, transfers, len(logits), mode="icarus-2012", work=work)
    assert -1 in out


def test_a_one_lsb_wrong_golden_fails(inference, tmp_path):
    gen, transfers, (logits, _) = inference
    wrong = logits.copy()
    wrong[2, 1] += 1
    with pytest.raises(AssertionError):
        _check(gen, transfers, wrong, "icarus-2005", tmp_path)


@pytest.mark.parametrize("mode", ["icarus-2005", "verilator"])
def test_sb_mac16_builds_in_a_plain_bench(mode, tmp_path):
    """Both engines with their multipliers as iCE40 SB_MAC16 cells in 8x8 mode (Yosys's own
    model simulated): the same outputs as the generic build's golden."""
    model = _model()
    x = np.random.default_rng(4).integers(0, 17, size=(4, 10))
    gen = generate(MLP(model, 4, dsp="sb_mac16"), tmp_path / "mlp")
    assert gen.meta["primitives"] == ["SB_MAC16"] and "SB_MAC16" in gen.verilog.read_text()
    _check(gen, plain.pack_inputs(gen.meta, x), intmodel.infer(model, x)[0], mode, tmp_path / "m")


def test_sb_mac16_trainer_in_a_plain_bench(training, tmp_path):
    """The training engine's 2 P multipliers as SB_MAC16 pairs: the generic build's steps."""
    gen, transfers, logits = training
    spec = TrainSpec.from_net(_net([10, 4, 4, 3]))
    dsp = generate(Trainer(spec, 4, dsp="sb_mac16"), tmp_path / "trainer")
    assert dsp.top.endswith("_sb_mac16") and dsp.top != gen.top
    _check(dsp, transfers, logits, "icarus-2005", tmp_path / "t")
