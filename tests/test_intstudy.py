"""The integer-training study (golden/intstudy.py), its table and plot (helu/steps/intnet.py) and
`helu train --integer`."""

import json

import pytest

from helu.cli import main
from helu.golden import intstudy
from helu.steps import intnet as intflow


@pytest.mark.slow
def test_study_rows(tmp_path):
    cfg = intstudy.IntStudyConfig(
        seeds=(0, 1),
        thresholds=(0, -4),
        epochs=2,
        finetune_epochs=1,
        lr_sweep=(5,),
        lr_shift=4,
        float_epochs=10,
        max_train=300,
        cnn_epochs=2,
    )
    metrics = intstudy.run_int_study(cfg, tmp_path)
    labels = [r["label"] for r in metrics["results"]]
    assert labels == [
        "int T=0", "int T=-4", "int T=0 lr 2^-5", "int T=-4 lr 2^-5", "CNN int T=0",
        "CNN int T=-4", "PTQ+int T=0", "PTQ+int T=-4", "float ReLU mse", "float ReLU ce",
        "float ReLU ce lr 2^-5",
    ]  # fmt: skip
    for r in metrics["results"]:
        # The CNN rows take at least 5 seeds; dead_layers counts channels of its two convs.
        assert len(r["acc"]) == (5 if r["mode"] == "cnn" else 2) and len(r["dead_layers"]) == 2
        assert len(r["loss_curve"]) == (1 if r["mode"] == "finetune" else 2)
        assert (0.5 if r["mode"] != "float" else 0) < r["acc_mean"] <= 1, r
        assert all(0 <= d <= 1 for d in r["dead_layers"])
    by = {r["label"]: r for r in metrics["results"]}
    assert by["int T=0"]["band"] == 0  # ReLU has no band: q > 0 and q <= 0 never both hold
    assert by["int T=-4"]["band"] > 0
    assert by["PTQ+int T=0"]["ptq_acc_mean"] > 0.8
    assert metrics["alpha_thresholds"] == {"0.001": -1, "0.01": -1, "0.05": -1, "0.1": -2}
    saved = json.loads((tmp_path / "int_metrics.json").read_text())
    assert saved["results"][0]["acc"] == metrics["results"][0]["acc"]
    assert intflow.plot_loss(tmp_path, metrics["results"]) == "int_loss.png"
    assert (tmp_path / "int_loss.png").stat().st_size > 0
    assert "int T=-4" in intflow.format_table(metrics)


def test_config_wrong():
    with pytest.raises(ValueError, match=r"thresholds must be integers in -129..0, not \(1,\)"):
        intstudy.IntStudyConfig(thresholds=(1,))
    with pytest.raises(ValueError, match="unknown mode 'fp8'"):
        intstudy.IntStudyConfig(modes=("fp8",))
    with pytest.raises(ValueError, match="epochs must be a positive integer, not 0"):
        intstudy.IntStudyConfig(epochs=0)


@pytest.mark.slow
def test_cli_train_integer(tmp_path, capsys):
    assert (
        main(["train", "--integer", "--seeds", "1", "--epochs", "1", "--out", str(tmp_path)]) == 0
    )
    out = capsys.readouterr().out
    assert "integer study:" in out and "int T=-8" in out
    assert (tmp_path / "int_loss.png").stat().st_size > 0  # the CLI draws the report's plot
    assert json.loads((tmp_path / "int_metrics.json").read_text())["plot"] == "int_loss.png"
    assert main(["train", "--integer", "--epochs", "0", "--out", str(tmp_path / "x")]) == 1
    assert "epochs must be a positive integer" in capsys.readouterr().err
