"""`helu onchip --model DIR`: your quantized network trained by the RTL training engine from
its exported state, every step checked; what the engine cannot train is refused up front."""

import json

import pytest

from helu.cli import main
from helu.sim import runner

torch = pytest.importorskip("torch")


def _quantized(tmp_path, name, steps=16):
    from helu.golden import examples, quantize

    ex = examples.EXAMPLES[name]
    data = quantize.load_data(ex.dataset)
    model = examples.train(examples.build(name), data, 3, ex.lr)
    torch.save(model, tmp_path / f"{name}.pt")
    path, _ = quantize.export(tmp_path / f"{name}.pt", ex.dataset, tmp_path / name, steps=steps)
    return path.parent, ex.dataset


@pytest.mark.slow
def test_user_model_trains_on_chip_bit_exact(tmp_path, capsys):
    missing = runner.tool_missing("icarus")
    if missing:
        pytest.skip(f"icarus: {missing}")
    folder, dataset = _quantized(tmp_path, "cancer-mlp")
    out = tmp_path / "onchip"
    argv = ["onchip", "--model", str(folder), "--data", dataset, "--steps", "30", "--every",
            "10", "--no-test", "--sim", "icarus", "--out", str(out)]  # fmt: skip
    assert main(argv) == 0
    summary = json.loads((out / "onchip.json").read_text())
    assert summary["sizes"] == [30, 16, 2] and summary["dataset"] == "breast_cancer"
    (run,) = summary["runs"]
    assert run["steps"] == 30 and run["mismatches"] == 0 and run["full_checks"] == 3
    assert run["loss_equal"] and all(run["logits_equal"])
    # From the exported state: the first step's logits are the quantized model's.
    assert "bit-exact" in capsys.readouterr().out


@pytest.mark.slow
def test_cnn_trains_on_chip_bit_exact(tmp_path, capsys):
    """The digits CNN (two conv layers, then dense) from its exported state on Icarus (the
    default for a conv model): every step's logits and digest, and the full state twice, equal
    golden's. About 6 s a step on Icarus; ``helu onchip --steps 200`` is the documented run."""
    missing = runner.tool_missing("icarus")
    if missing:
        pytest.skip(f"icarus: {missing}")
    folder, _ = _quantized(tmp_path, "digits-cnn")
    out = tmp_path / "onchip"
    argv = ["onchip", "--model", str(folder), "--steps", "2", "--every", "1", "--no-test",
            "--out", str(out)]  # fmt: skip
    assert main(argv) == 0
    summary = json.loads((out / "onchip.json").read_text())
    assert summary["sizes"] == [64, 512, 256, 10]
    # the steps of the trajectory the export wrote, replayed against it before simulating
    assert summary["trajectory"] == {"exported_steps": 2, "recorded_steps": 0}
    (run,) = summary["runs"]
    assert run["simulator"] == "icarus"
    assert run["steps"] == 2 and run["mismatches"] == 0 and run["full_checks"] == 2
    assert run["loss_equal"] and all(run["logits_equal"])
    assert summary["cycles_per_sample"] <= summary["ideal_cycles"]


def test_onchip_model_wrong(tmp_path, capsys):
    folder, _ = _quantized(tmp_path, "cancer-mlp", steps=0)
    assert main(["onchip", "--data", "wine", "--out", str(tmp_path / "o")]) == 1
    assert "--data needs --model DIR" in capsys.readouterr().err
    assert main(["onchip", "--model", str(folder), "--out", str(tmp_path / "o")]) == 1
    assert "stores no training split" in capsys.readouterr().err
    assert main(["onchip", "--model", str(folder), "--data", "wine", "--out",
                 str(tmp_path / "o")]) == 1  # fmt: skip
    assert "samples of 13 values, the model takes 30" in capsys.readouterr().err
    assert not (tmp_path / "o").exists()


def test_onchip_refuses_a_damaged_trajectory(tmp_path, capsys):
    """A golden folder whose stored trajectory its model does not reproduce (one digest off) is
    refused before anything is simulated or written; so is a full-check interval of 0."""
    import numpy as np

    folder, _ = _quantized(tmp_path, "cancer-mlp", steps=4)
    path = folder / "trajectory" / "trajectory.npz"
    with np.load(path) as npz:
        t = dict(npz)
    t["digest"][2] ^= 1
    np.savez_compressed(path, **t)
    out = tmp_path / "o"
    argv = ["onchip", "--model", str(folder), "--steps", "4", "--no-test", "--out", str(out)]
    assert main(argv) == 1
    err = capsys.readouterr().err
    assert "digest differs at 1 places (first at step 2)" in err and "damaged golden" in err
    assert main([*argv[:-2], "--every", "0", "--out", str(out)]) == 1
    assert "full-check interval must be >= 1 step, not 0" in capsys.readouterr().err
    assert not out.exists()
