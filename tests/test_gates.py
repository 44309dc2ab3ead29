"""Gate-level simulation: the netlist Yosys mapped for the iCE40 UP5K (LUTs, carries, flip-flops,
block RAMs with the weights in their INIT, SB_MAC16 in 8x8 mode), simulated with Yosys's own cell
models on the inference engine's cocotb bench: every sample bit-exact against golden."""

from pathlib import Path

import numpy as np
import pytest
from conftest import need

from helu.golden import intmodel
from helu.hw.net.synth import synthesize_mlp
from helu.sim.mlp import run_mlp, vectors_from


@pytest.fixture(scope="module")
def mapped(tmp_path_factory):
    need("yosys", "icarus")
    rng = np.random.default_rng(5)
    weights = [rng.integers(-128, 128, size=(6, 9)), rng.integers(-128, 128, size=(3, 6))]
    biases = [rng.integers(-1500, 1500, size=6), rng.integers(-1500, 1500, size=3)]
    model = intmodel.IntModel(
        weights, biases, [7, 8], threshold=-2, input=intmodel.InputFormat(0, 0, 16)
    )
    work = tmp_path_factory.mktemp("gates")
    record = synthesize_mlp(model, 4, "up5k", seeds=1, fmax=False, out_dir=work / "synth")
    assert record["dsp"] == 2, "4 products on 2 SB_MAC16 in 8x8 mode"
    x = rng.integers(0, 17, size=(12, 9))
    return model, record, x, work


def test_mapped_netlist_bit_exact(mapped):
    model, record, x, work = mapped
    (result,) = run_mlp(model, vectors_from(model, x), lanes=4, dsp="sb_mac16",
                        netlist=record["netlist"], out=work / "sim")  # fmt: skip
    assert result["checked"] == len(x) and result["mismatches"] == 0, result.get("message")
    assert "SB_LUT4" in open(record["netlist"]).read()


def test_mapped_netlist_against_a_wrong_golden_fails(mapped):
    model, record, x, work = mapped
    vectors = vectors_from(model, x)
    vectors["logits"] = vectors["logits"].copy()
    vectors["logits"][3, 1] += 1
    (result,) = run_mlp(model, vectors, lanes=4, dsp="sb_mac16", netlist=record["netlist"],
                        out=work / "sim", name="wrong")  # fmt: skip
    assert result["mismatches"] == 1


@pytest.fixture(scope="module")
def mapped_trainer(tmp_path_factory):
    """A small training engine mapped for the UP5K (its multipliers on SB_MAC16 in 8x8 mode)."""
    need("yosys", "icarus")
    from nets import small_net

    from helu.hw.net.synth import synthesize_trainer
    from helu.hw.net.trainer import TrainSpec

    net = small_net(4, [10, 4, 4, 3])
    spec = TrainSpec.from_net(net)
    work = tmp_path_factory.mktemp("gates-trainer")
    record = synthesize_trainer(spec, 4, "up5k", out_dir=work / "synth")
    assert record["dsp"] >= 2 and "SB_MAC16" in open(record["netlist"]).read()
    return net, spec, record, work


def test_mapped_trainer_netlist_bit_exact(mapped_trainer):
    """The mapped training engine, simulated gate by gate: every step's logits and digest and
    the full state every 4 steps equal golden's; a trajectory with one wrong digest fails."""
    from nets import samples

    from helu.golden import trajectory
    from helu.sim.trainer import run_trainer

    net, spec, record, work = mapped_trainer
    x, labels = samples(4, [10, 4, 4, 3], 12)
    traj = trajectory.record(net, x, labels, lanes=4, every=4)
    (result,) = run_trainer(spec, traj, lanes=4, simulators=("icarus",), dsp="sb_mac16",
                            netlist=record["netlist"], out=work / "sim")  # fmt: skip
    assert result["steps"] == 12 and result["full_checks"] == 3
    assert result["mismatches"] == 0, result["message"]
    traj["digest"][7] ^= 1 << 4
    (result,) = run_trainer(spec, traj, lanes=4, simulators=("icarus",), dsp="sb_mac16",
                            netlist=record["netlist"], out=work / "sim", name="wrong")  # fmt: skip
    assert result["mismatches"] == 1 and result["first_mismatch"]["step"] == 7


def test_a_netlist_of_another_build_is_refused(mapped, mapped_trainer, tmp_path):
    """A mapped netlist is simulated only as the build it is of: another model, another lane
    count or a folder without a netlist is refused in one line, before anything is written."""
    from helu.golden import trajectory
    from helu.hw.net.synth import mapped_netlist
    from helu.sim.trainer import run_trainer

    model, record, x, _ = mapped
    other = intmodel.IntModel(
        [w.copy() for w in model.weights], model.biases, model.shifts, threshold=-2,
        input=model.input,
    )  # fmt: skip
    other.weights[0][0, 0] ^= 1
    out = tmp_path / "sim"
    with pytest.raises(ValueError, match="holds another model"):
        run_mlp(other, vectors_from(other, x), lanes=4, netlist=record["netlist"], out=out)
    with pytest.raises(ValueError, match="this engine is helu_mlp_9_6_3_p2_sb_mac16"):
        run_mlp(model, vectors_from(model, x), lanes=2, netlist=Path(record["netlist"]).parent,
                out=out)  # fmt: skip
    net, spec, trecord, _ = mapped_trainer
    traj = trajectory.record(net, *samples_of(net), lanes=2, every=1)
    with pytest.raises(ValueError, match="the netlist is of helu_trainer_10_4_4_3_p4_sb_mac16"):
        run_trainer(spec, traj, lanes=2, simulators=("icarus",), netlist=trecord["netlist"],
                    out=out)  # fmt: skip
    with pytest.raises(ValueError, match="no mapped netlist"):
        mapped_netlist(tmp_path)
    assert not out.exists()


def samples_of(net):
    from nets import samples

    return samples(9, [10, 4, 4, 3], 2)
