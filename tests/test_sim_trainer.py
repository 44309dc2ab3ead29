"""The training engine's cocotb bench (sim/trainer.py, sim/tb_trainer.py) on real simulators."""

import numpy as np
import pytest
from nets import samples, small_net

from helu.golden import trajectory
from helu.hw.net.trainer import TrainSpec
from helu.sim import runner
from helu.sim.trainer import run_trainer, step_losses

pytestmark = pytest.mark.slow


def _need(sim):
    missing = runner.tool_missing(sim)
    if missing:
        pytest.skip(f"{sim}: {missing}")


def test_bench_trains_bit_exact_and_catches_a_wrong_golden(tmp_path):
    """Icarus: 8 steps of a small net (a label out of range among them) equal golden at every
    step; a golden trajectory with one wrong digest and one wrong full-state value is caught at
    exactly those steps, and nowhere else."""
    _need("icarus")
    sizes = [10, 4, 4, 3]
    net = small_net(3, sizes)
    spec = TrainSpec.from_net(net)
    x, labels = samples(3, sizes, 8)
    labels[2] = 3  # out of range: no update, skipped flag
    traj = trajectory.record(net, x, labels, lanes=4, every=3)
    assert list(traj["snapshot_after"]) == [2, 5, 7]
    traj["digest"][4] ^= 1
    traj["biases1"][1][2] += 1  # the state after step 5
    (r,) = run_trainer(spec, traj, lanes=4, simulators=("icarus",), out=tmp_path)
    assert r["steps"] == 8 and r["full_checks"] == 3
    assert (r["training_steps"], r["inference_steps"]) == (7, 1)
    assert r["mismatches"] == 2, r["message"]
    assert r["first_mismatch"]["step"] == 4 and r["first_mismatch"]["what"] == "digest"
    assert np.array_equal(np.asarray(r["logits"]), traj["logits"])
    assert np.array_equal(step_losses(r["logits"], labels), step_losses(traj["logits"], labels),
                          equal_nan=True)  # fmt: skip


def test_trajectory_wrong():
    sizes = [10, 4, 4, 3]
    net = small_net(1, sizes)
    x, labels = samples(1, sizes, 3)
    traj = trajectory.record(net, x, labels, lanes=4, every=2)
    trajectory.check(traj, sizes, lanes=4)
    with pytest.raises(ValueError, match="lacks digest"):
        trajectory.check({k: v for k, v in traj.items() if k != "digest"}, sizes)
    cut = dict(traj, x=traj["x"].ravel()[:-4].reshape(-1, 1))
    with pytest.raises(ValueError, match="ends mid-sample"):
        trajectory.check(cut, sizes)
    with pytest.raises(ValueError, match="digests are for 4 lanes, the engine has 8"):
        trajectory.check(traj, sizes, lanes=8)
    with pytest.raises(ValueError, match="lacks the snapshots biases2"):
        trajectory.check({k: v for k, v in traj.items() if k != "biases2"}, sizes)
    with pytest.raises(ValueError, match="interval must be >= 1"):
        trajectory.record(net, x, labels, lanes=4, every=0)


def test_onchip_command_wrong(tmp_path, capsys):
    from helu.cli import main

    out = tmp_path / "o"
    assert main(["onchip", "--steps", "0", "--out", str(out)]) == 1
    assert "helu onchip: error: steps must be >= 1, not 0" in capsys.readouterr().err
    assert main(["onchip", "--sim", "modelsim", "--out", str(out)]) == 1
    assert "unknown simulator 'modelsim'" in capsys.readouterr().err
    assert not out.exists()
