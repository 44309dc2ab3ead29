"""The one trajectory format (golden/trajectory.py) and the memory image it digests
(golden/netimage.py): what the export, `helu onchip`, the bench and the tests share."""

import subprocess
import sys

import numpy as np
import pytest
from nets import samples, small_net

from helu.golden import netimage, trajectory

SIZES = [10, 4, 4, 3]


def _traj(n=6, every=2, seed=1):
    net = small_net(seed, SIZES)
    x, labels = samples(seed, SIZES, n)
    return net, trajectory.record(net, x, labels, lanes=4, every=every)


def test_bench_side_loads_without_torch_or_amaranth():
    """The model image, its digest and the trajectory are numpy-only: the training bench (run
    inside the simulator) imports them with neither torch nor Amaranth."""
    code = (
        "import sys, cocotb, helu.sim.tb_trainer, helu.golden.trajectory, "
        "helu.golden.netimage; "
        "print(sorted(m for m in ('torch', 'amaranth') if m in sys.modules))"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "[]", out.stdout + out.stderr


def test_record_digests_the_state_it_stores():
    net, t = _traj()
    assert list(t["snapshot_after"]) == [1, 3, 5] and int(t["lanes"]) == 4
    for j, n in enumerate(t["snapshot_after"]):
        masters = [t[f"masters{i}"][j] for i in range(3)]
        biases = [t[f"biases{i}"][j] for i in range(3)]
        img = netimage.training_image(masters, biases, 4, net.ops)
        assert netimage.digest(img, net.ops, 4) == t["digest"][n]
    # the last stored state is the net's own after the run
    np.testing.assert_array_equal(t["masters2"][-1], net.masters[2][0].numpy())


def test_inference_only_steps_change_nothing():
    net = small_net(2, SIZES)
    x, labels = samples(2, SIZES, 4)
    labels[1:3] = 7  # out of range: inference only
    t = trajectory.record(net, x, labels, lanes=4, every=1)
    assert t["digest"][1] == t["digest"][0] == t["digest"][2] != t["digest"][3]
    with pytest.raises(ValueError, match="training steps only"):
        trajectory.record(small_net(2, SIZES), x, labels, lanes=4, every=1, fields=True)


def test_head_concat_and_differences():
    _, t = _traj(n=6, every=2)
    h = trajectory.head(t, 4)
    assert len(h["labels"]) == 4 and list(h["snapshot_after"]) == [1, 3]
    assert h["masters0"].shape[0] == 2
    back = trajectory.concat(h, {**trajectory.head(t, 6), "snapshot_after": np.array([1])})
    assert list(back["snapshot_after"]) == [1, 3, 5]
    assert trajectory.differences(t, t) == []
    wrong = dict(t, digest=t["digest"].copy())
    wrong["digest"][3] ^= 1
    assert trajectory.differences(wrong, t) == ["digest differs at 1 places (first at step 3)"]
    with pytest.raises(ValueError, match="has no first 7"):
        trajectory.head(t, 7)


def test_save_load_round_trip(tmp_path):
    _, t = _traj()
    path = trajectory.save(tmp_path / "t.npz", t)
    back = trajectory.load(path)
    assert trajectory.differences(back, t) == [] and set(back) == set(t)
    (tmp_path / "bad.npz").write_text("not an npz")
    with pytest.raises(ValueError, match="not a readable trajectory"):
        trajectory.load(tmp_path / "bad.npz")


def test_full_states_are_the_flat_snapshots():
    _, t = _traj(every=3)
    steps, states = trajectory.full_states(t)
    assert steps == [2, 5]
    want = netimage.flat_state(
        [t[f"masters{i}"][1] for i in range(3)], [t[f"biases{i}"][1] for i in range(3)]
    )
    np.testing.assert_array_equal(states[1], want)
