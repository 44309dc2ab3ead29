"""User-style networks through the import path and the inference engine's cocotb bench: a digits
CNN, a wine MLP and a breast-cancer MLP (sizes that are not multiples of P), every logit and
class bit-exact on Verilator and Icarus; a one-LSB-wrong golden logit must be reported."""

import numpy as np
import pytest

from helu.golden import intgolden
from helu.sim import runner
from helu.sim.mlp import run_mlp

torch = pytest.importorskip("torch")

LANES = 8


def _need(sim):
    missing = runner.tool_missing(sim)
    if missing:
        pytest.skip(f"{sim}: {missing}")


def _export(tmp_path_factory, name: str, epochs: int):
    from helu.golden import examples, quantize

    ex = examples.EXAMPLES[name]
    data = quantize.load_data(ex.dataset)
    model = examples.train(examples.build(name), data, epochs, ex.lr)
    pt = tmp_path_factory.mktemp(name) / "model.pt"
    torch.save(model, pt)
    path, _ = quantize.export(pt, ex.dataset, pt.parent / "golden", steps=0)
    manifest, model, arrays = intgolden.load_net(path.parent)
    return manifest, model, {k: arrays[k] for k in ("x", "logits", "cls", "labels")}


@pytest.fixture(scope="module")
def cnn(tmp_path_factory):
    return _export(tmp_path_factory, "digits-cnn", epochs=4)


@pytest.fixture(scope="module")
def sim_out(tmp_path_factory):
    return tmp_path_factory.mktemp("net_sim")


@pytest.mark.slow
def test_cnn_whole_test_split_bit_exact_on_verilator(cnn, sim_out):
    _need("verilator")
    manifest, model, vectors = cnn
    (r,) = run_mlp(model, vectors, lanes=LANES, simulators=("verilator",), out=sim_out)
    assert r["checked"] == len(vectors["x"]) == 360 and r["mismatches"] == 0, r["message"]
    assert r["accuracy"] == pytest.approx(manifest["accuracy"]["integer"])
    assert r["cycles_per_sample"] == pytest.approx(r["sidecar"]["cycles_per_sample"], abs=1)
    # Both convolutions at exactly MACs / P, the whole network within 1.15 x ideal.
    conv_macs = [op.macs for op in model.ops[:2]]
    assert r["sidecar"]["layer_cycles"][:2] == [m // LANES for m in conv_macs]
    assert r["cycles_per_sample"] <= 1.15 * r["ideal"]


@pytest.mark.slow
def test_cnn_on_icarus_with_stalls(cnn, sim_out):
    _need("icarus")
    _, model, vectors = cnn
    part = {k: v[:12] for k, v in vectors.items()}
    (r,) = run_mlp(model, part, lanes=LANES, simulators=("icarus",), out=sim_out,
                   idle=0.3, backpressure=0.3, seed=4, name="stalls")  # fmt: skip
    assert r["checked"] == 12 and r["mismatches"] == 0, r["message"]


@pytest.mark.slow
def test_cnn_checker_sees_one_lsb(cnn, sim_out):
    _need("verilator")
    _, model, vectors = cnn
    part = {k: v[:6].copy() for k, v in vectors.items()}
    part["logits"][3, 7] += 1  # the golden side one LSB off: the bench must count it
    (r,) = run_mlp(model, part, lanes=LANES, simulators=("verilator",), out=sim_out, name="lsb")
    assert r["checked"] == 6 and r["mismatches"] == 1, r["message"]
    assert "sample 3" in r["message"], r["message"]


@pytest.mark.slow
@pytest.mark.parametrize(("name", "sim"), [("wine-mlp", "verilator"), ("cancer-mlp", "icarus")])
def test_tabular_user_models_bit_exact(tmp_path_factory, sim_out, name, sim):
    _need(sim)
    _, model, vectors = _export(tmp_path_factory, name, epochs=10)
    assert model.sizes[0] % LANES and model.sizes[-1] % LANES  # ragged words at both ends
    (r,) = run_mlp(model, vectors, lanes=LANES, simulators=(sim,), out=sim_out, name=name)
    assert r["checked"] == len(vectors["x"]) and r["mismatches"] == 0, r["message"]
    assert r["accuracy"] == pytest.approx(np.mean(vectors["cls"] == vectors["labels"]))
