"""The integer network's golden folder, `helu golden --net` (golden/intgolden.py)."""

import json

import numpy as np
import pytest
import torch

from helu.cli import main
from helu.golden import data, fixed, intgolden, intmodel, netimage
from helu.golden.checkpoint import save_checkpoint
from helu.golden.models import ModelConfig, build


@pytest.fixture(scope="module")
def folder(tmp_path_factory):
    out = tmp_path_factory.mktemp("net") / "golden"
    intgolden.export_net(out, epochs=3)
    return out


def test_layout_the_core_reads(folder):
    manifest = json.loads((folder / "manifest.json").read_text())
    model = intmodel.load(folder / "model")
    with np.load(folder / "inference.npz") as npz:
        arrays = {k: npz[k] for k in ("x", "logits", "cls", "labels")}
    n = len(data.load("digits").y_test)
    assert all(a.dtype == np.int64 for a in arrays.values())
    assert arrays["x"].shape == (n, 64) and arrays["logits"].shape == (n, 10)
    assert arrays["cls"].shape == arrays["labels"].shape == (n,)
    np.testing.assert_array_equal(arrays["labels"], data.load("digits").y_test)
    assert 0 <= arrays["x"].min() and arrays["x"].max() <= 16
    assert manifest["sizes"] == model.sizes == [64, 32, 32, 10]
    assert manifest["shifts"] == model.shifts and manifest["threshold"] == model.threshold
    assert manifest["widths"]["acc"] == fixed.ACC_WIDTH and "round half up" in json.dumps(manifest)
    w0 = (folder / manifest["files"]["w0"]["path"]).read_text().split()
    assert len(w0) == 64 * 32 and int(w0[1], 16) == int(model.weights[0][0, 1]) & 0xFF
    assert abs(manifest["accuracy"]["integer"] - np.mean(arrays["cls"] == arrays["labels"])) < 1e-9
    assert intgolden.check_inference(folder) == []


def test_check_inference_sees_corruption(folder, tmp_path):
    import shutil

    bad = tmp_path / "bad"
    shutil.copytree(folder, bad)
    with np.load(bad / "inference.npz") as npz:
        arrays = dict(npz)
    arrays["logits"][7, 3] += 1
    np.savez(bad / "inference.npz", **arrays)
    assert any("logits differs" in e for e in intgolden.check_inference(bad))
    shutil.copytree(folder, tmp_path / "bad2")
    hex_path = tmp_path / "bad2" / "hex" / "b1.hex"
    lines = hex_path.read_text().splitlines()
    lines[0] = f"{(int(lines[0], 16) + 1) & 0xFFFFFFFF:08x}"
    hex_path.write_text("\n".join(lines) + "\n")
    assert intgolden.check_inference(tmp_path / "bad2") == ["hex/b1.hex does not hold b1"]


def test_export_replaces_its_own_folder_only(folder, tmp_path):
    mine = tmp_path / "mine"
    mine.mkdir()
    (mine / "notes.txt").write_text("keep me")
    with pytest.raises(ValueError, match="holds files that helu did not write"):
        intgolden.export_net(mine, epochs=1, steps=0)
    assert (mine / "notes.txt").read_text() == "keep me"
    assert sorted(p.name for p in tmp_path.iterdir()) == ["mine"]  # no temporary left


def test_export_from_checkpoint(tmp_path):
    split = data.load("digits")
    torch.manual_seed(0)
    cfg = ModelConfig(hidden=(32, 32), act="helu", alpha=0.1)
    model = build(cfg).eval()
    path = save_checkpoint(tmp_path / "c.pt", model, cfg, split, "helu", 0.1, 0, 0.1)
    manifest = json.loads(
        intgolden.export_net(tmp_path / "g", checkpoint=path, steps=3).read_text()
    )
    assert manifest["source"]["checkpoint"] == str(path) and manifest["scales"]["alpha"] == 0.1
    assert intgolden.check_inference(tmp_path / "g") == []


def test_cli_golden_net(tmp_path, capsys):
    argv = ["golden", "--net", "--epochs", "2", "--steps", "5", "--snapshot-every", "2"]
    assert main([*argv, "--out", str(tmp_path / "g")]) == 0
    assert "integer network:" in capsys.readouterr().out
    manifest = json.loads((tmp_path / "g" / "manifest.json").read_text())
    assert manifest["trajectory"]["steps"] == 5
    # full states after steps 2 and 4 (every 2) and after the last, 5
    assert manifest["trajectory"]["files"]["masters0"]["shape"] == [3, 32, 64]
    assert manifest["trajectory"]["lanes"] == 8
    assert intgolden.check_trajectory(tmp_path / "g") == []
    argv = [*argv, "--lanes", "4", "--out", str(tmp_path / "p4")]
    assert main(argv) == 0
    assert json.loads((tmp_path / "p4" / "manifest.json").read_text())["trajectory"]["lanes"] == 4
    assert main(["golden", "--net", "--lanes", "0", "--out", str(tmp_path / "h")]) == 1
    assert "--lanes must be a positive integer, not 0" in capsys.readouterr().err
    assert main(["golden", "--net", "--steps", "-1", "--out", str(tmp_path / "h")]) == 1
    assert "--steps must be >= 0" in capsys.readouterr().err
    assert main(["golden", "--net", "--epochs", "0", "--out", str(tmp_path / "h")]) == 1
    assert "--epochs must be a positive integer" in capsys.readouterr().err
    assert main(["golden"]) == 1
    assert "--checkpoint is required" in capsys.readouterr().err


def test_trajectory_replays(folder):
    manifest = json.loads((folder / "manifest.json").read_text())
    entry = manifest["trajectory"]
    assert (
        entry["steps"] == intgolden.TRAJECTORY_STEPS and entry["state_bits"] == 3392 * 16 + 74 * 32
    )
    with np.load(folder / "trajectory" / "trajectory.npz") as npz:
        t = dict(npz)
    steps = entry["steps"]
    assert t["order"].shape == (steps,) and t["grad0"].shape == (steps, 32, 64)
    assert t["masters2"].shape == (steps // entry["snapshot_every"], 10, 32)
    np.testing.assert_array_equal(
        t["grad0"], t["delta0"][:, :, None] * t["train_x"][t["order"]][:, None, :]
    )
    assert not t["delta1"][t["mask1"] == 0].any()
    assert (folder / entry["files"]["mask0"]["path"]).read_text().count("\n") == steps * 32
    assert intgolden.check_trajectory(folder) == []


def test_trajectory_digest_is_the_engines(folder):
    """The stored digests are the training engine's checksum (``netimage.digest`` of the memory
    image at the recorded lane count), not a hash of the arrays: recomputed from a snapshot,
    they agree, and at another lane count they do not."""
    t = intgolden.load_trajectory(folder)
    lanes, n = int(t["lanes"]), int(t["snapshot_after"][0])
    _, model, _ = intgolden.load_net(folder)
    masters, biases = (
        [t[f"masters{i}"][0] for i in range(3)],
        [t[f"biases{i}"][0] for i in range(3)],
    )
    img = netimage.training_image(masters, biases, lanes, model.ops)
    assert netimage.digest(img, model.ops, lanes) == t["digest"][n]
    other = netimage.training_image(masters, biases, 4, model.ops)
    assert netimage.digest(other, model.ops, 4) != t["digest"][n]


def test_old_trajectory_refused(folder, tmp_path):
    import shutil

    old = tmp_path / "old"
    shutil.copytree(folder, old)
    manifest = json.loads((old / "manifest.json").read_text())
    del manifest["trajectory"]["lanes"]
    (old / "manifest.json").write_text(json.dumps(manifest))
    (error,) = intgolden.check_trajectory(old)
    assert "predates the engine's digest" in error and "export the folder again" in error


def test_corrupted_start_state_is_named(folder, tmp_path):
    import shutil

    bad = tmp_path / "bad"
    shutil.copytree(folder, bad)
    path = bad / "trajectory" / "trajectory.npz"
    with np.load(path) as npz:
        t = dict(npz)
    t["masters1_init"][0, 0] += 1
    np.savez_compressed(path, **t)
    errors = intgolden.check_trajectory(bad)
    assert errors[0] == "the initial state is not the model's", errors


@pytest.mark.parametrize(
    ("name", "where", "message"),
    [
        ("mask1", (5, 3), "mask1 differs at 1 places (first at step 5)"),
        ("grad2", (9, 1, 2), "grad2 differs"),
        ("digest", (40,), "digest differs at 1 places (first at step 40)"),
        ("masters0", (1, 0, 0), "masters0 differs"),
    ],
)
def test_corrupted_trajectory_is_detected(folder, tmp_path, name, where, message):
    import shutil

    bad = tmp_path / "bad"
    shutil.copytree(folder, bad)
    path = bad / "trajectory" / "trajectory.npz"
    with np.load(path) as npz:
        t = dict(npz)
    t[name][where] ^= 1
    np.savez_compressed(path, **t)
    errors = intgolden.check_trajectory(bad)
    assert len(errors) == 1 and errors[0].startswith(message), errors
