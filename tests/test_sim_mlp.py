"""The MLP engine's cocotb bench (sim/mlp.py, sim/tb_mlp.py) on the digits test split.

One integer network is exported per session (``golden.intgolden.export_net``, a short float
training); every sample of its test split goes through the engine on Icarus and on Verilator.
"""

import numpy as np
import pytest

from helu.golden import fixed, intgolden, intmodel
from helu.hw.net.mlp import image
from helu.sim import runner
from helu.sim.mlp import corrupt_weight, run_mlp, vectors_from
from helu.sim.tb_mlp import compare

LANES = 8


@pytest.fixture(scope="session")
def net(tmp_path_factory):
    folder = tmp_path_factory.mktemp("mlp") / "golden"
    intgolden.export_net(folder, epochs=3)
    manifest, model, arrays = intgolden.load_net(folder)
    vectors = {k: arrays[k] for k in ("x", "logits", "cls", "labels")}
    return manifest, model, vectors


@pytest.fixture(scope="session")
def sim_out(tmp_path_factory):
    return tmp_path_factory.mktemp("mlp_sim")


def _need(sim):
    missing = runner.tool_missing(sim)
    if missing:
        pytest.skip(f"{sim}: {missing}")


@pytest.mark.slow
@pytest.mark.parametrize("sim", ["icarus", "verilator"])
def test_whole_test_split_bit_exact(net, sim_out, sim):
    _need(sim)
    manifest, model, vectors = net
    (r,) = run_mlp(model, vectors, lanes=LANES, simulators=(sim,), out=sim_out)
    n = len(vectors["x"])
    assert r["checked"] == n == 360 and r["mismatches"] == 0, r["message"]
    assert r["accuracy"] == pytest.approx(manifest["accuracy"]["integer"])
    assert r["accuracy"] == pytest.approx(np.mean(vectors["cls"] == vectors["labels"]))
    # Back to back: every sample but the first starts right after the previous one.
    assert r["cycles_per_sample"] == pytest.approx(r["sidecar"]["cycles_per_sample"], abs=1)
    assert r["cycles_per_sample"] <= 1.15 * r["ideal"]


@pytest.mark.slow
@pytest.mark.parametrize("sim", ["icarus", "verilator"])
def test_gaps_backpressure_and_reset(net, sim_out, sim):
    """Input gaps and output backpressure, after a reset in the middle of a sample."""
    _need(sim)
    _, model, vectors = net
    part = {k: v[:40] for k, v in vectors.items()}
    (r,) = run_mlp(
        model,
        part,
        lanes=LANES,
        simulators=(sim,),
        out=sim_out,
        test="reset_mid_stream",
        idle=0.4,
        backpressure=0.6,
        seed=2,
        name="reset",
    )
    assert r["stale_outputs"] == 0 and r["outputs_before_reset"] >= 1
    assert r["checked"] == 40 and r["mismatches"] == 0, r["message"]
    assert r["cycles_per_sample"] > r["sidecar"]["cycles_per_sample"]  # the stalls cost cycles


@pytest.mark.slow
def test_corrupted_weight_image_is_caught(net, sim_out):
    """One flipped weight, loaded through the load port: the bench names the first wrong place."""
    _need("icarus")
    _, model, vectors = net
    part = {k: v[:30] for k, v in vectors.items()}
    # A last-layer weight from the hidden unit most active on these samples.
    hidden = part["x"]
    for layer in (0, 1):
        hidden = fixed.forward(intmodel.layer(model, layer, hidden))
    inp = int(np.argmax(hidden.sum(axis=0)))
    loads, bad = corrupt_weight(model, LANES, 2, 3, inp)
    bad_logits, _ = intmodel.infer(bad, part["x"])
    diff = np.argwhere(bad_logits != part["logits"])
    assert len(diff)
    (r,) = run_mlp(model, part, lanes=LANES, out=sim_out, loads=loads, name="corrupt")
    assert r["mismatches"] >= len(diff)
    s, j = (int(v) for v in diff[0])
    assert r["first_mismatch"]["sample"] == s and r["first_mismatch"]["logit"] == j
    assert r["message"].startswith(f"sample {s}, logit {j}: got {bad_logits[s, j]}")
    # The same image, written correctly through the port, passes.
    clean = image(model, LANES).words()
    (ok,) = run_mlp(model, part, lanes=LANES, out=sim_out, loads=clean, name="clean")
    assert ok["mismatches"] == 0, ok["message"]


def test_compare_wrong():
    want = np.arange(12).reshape(3, 4)
    cls = want.argmax(1)
    ok = compare(want, cls, want, cls)
    assert ok["mismatches"] == 0 and ok["checked"] == 3
    got = want.copy()
    got[1, 2] += 1
    r = compare(got, cls, want, cls)
    assert r["mismatches"] == 1 and r["first_mismatch"] == {
        "sample": 1,
        "logit": 2,
        "got": 7,
        "want": 6,
    }
    assert r["message"].startswith("sample 1, logit 2: got 7, expected 6")
    wrong = cls.copy()
    wrong[2] = 0
    r = compare(want, wrong, want, cls)
    assert r["mismatches"] == 1 and r["message"] == "sample 2, class: got 0, expected 3"
    r = compare(want[:2], cls[:2], want, cls)
    assert r["mismatches"] == 5 and r["message"] == "only 2 of 3 samples came out"


def test_vectors_from_matches_infer():
    from test_mlp import random_inputs, random_model

    model = random_model(4, [8, 4, 3])
    x = random_inputs(1, model, 5)
    vec = vectors_from(model, x)
    logits, cls = intmodel.infer(model, x)
    np.testing.assert_array_equal(vec["logits"], logits)
    np.testing.assert_array_equal(vec["cls"], cls)


def test_run_mlp_wrong(tmp_path):
    from test_mlp import random_inputs, random_model

    model = random_model(4, [64, 4, 3])
    vectors = vectors_from(model, random_inputs(1, model, 2))
    sim_out = tmp_path
    with pytest.raises(ValueError, match="unknown MLP bench test 'run'"):
        run_mlp(model, vectors, test="run", out=sim_out)
    with pytest.raises(ValueError, match="Idle probability must be in"):
        run_mlp(model, vectors, idle=1.0, out=sim_out)
    with pytest.raises(ValueError, match=r"inputs \(3, 5\) do not fit a 64-input model"):
        run_mlp(model, {"x": np.zeros((3, 5))}, out=sim_out)


@pytest.mark.slow
def test_runs_get_their_own_folders(net, sim_out):
    """Two runs on the same --out never share a run folder or read each other's result."""
    _need("icarus")
    _, model, vectors = net
    part = {k: v[:4] for k, v in vectors.items()}
    (a,) = run_mlp(model, part, lanes=LANES, out=sim_out)
    (b,) = run_mlp(model, part, lanes=LANES, out=sim_out)
    assert a["log"] != b["log"] and a["checked"] == b["checked"] == 4
    with runner.lock(sim_out), pytest.raises(RuntimeError, match="in use by another helu"):
        run_mlp(model, part, lanes=LANES, out=sim_out)
