"""The study (golden/train.py): schema of metrics.json, determinism, dead units, checkpoints."""

import json
from dataclasses import replace

import pytest
import torch

from helu.golden.train import QUICK, StudyConfig, label, run_study, unit_stats

torch.set_num_threads(1)

TINY = StudyConfig(
    acts=("relu", "helu"),
    alphas=(0.05, 0.5),
    seeds=(0, 1),
    epochs=2,
    hidden=(16, 8),
    max_train=200,
)


@pytest.fixture(scope="module")
def study(tmp_path_factory):
    out = tmp_path_factory.mktemp("study")
    lines = []
    metrics = run_study(TINY, out, progress=lines.append)
    return out, metrics, lines


@pytest.mark.slow
def test_metrics_schema_and_files(study):
    out, metrics, lines = study
    on_disk = json.loads((out / "metrics.json").read_text())
    assert on_disk["dataset"] == "digits" and on_disk["model"] == "mlp"
    settings = TINY.settings()
    assert [r["label"] for r in on_disk["results"]] == [label(a, al) for a, al in settings]
    assert len([x for x in lines if x.startswith("[")]) == len(settings) * len(TINY.seeds)
    for r in on_disk["results"]:
        assert r["seeds"] == list(TINY.seeds) and len(r["acc"]) == len(TINY.seeds)
        assert 0 <= r["acc_mean"] <= 1 and r["acc_std"] >= 0
        assert r["acc_mean"] == pytest.approx(sum(r["acc"]) / len(r["acc"]))
        assert len(r["dead_frac_layers"]) == len(TINY.hidden)
        assert 0 <= r["dead_frac"] <= 1
        assert [len(c) for c in r["loss_curves"]] == [TINY.epochs] * len(TINY.seeds)
        assert (r["band_frac"] is None) == (r["act"] != "helu")
        assert r["train_seconds"] > 0
        for ckpt in r["checkpoints"]:
            assert (out / ckpt).is_file()
    assert set(on_disk["comparison"]["helu_beats_relu"]) == {"0.05", "0.5"}
    assert "relu" in on_disk["comparison"]["summary"]
    for name in ("accuracy", "dead_fraction", "preactivations", "loss"):
        assert (out / on_disk["plots"][name]).read_bytes()[:4] == b"\x89PNG"
    assert on_disk["golden_checkpoint"].endswith("helu-0.05_s0.pt")
    assert torch.get_num_threads() == 1  # restored after the study


@pytest.mark.slow
def test_runs_are_deterministic_and_bands_grow_with_alpha(study, tmp_path):
    _, metrics, _ = study
    cfg = replace(TINY, acts=("helu",), alphas=(0.05,), seeds=(1,), checkpoints=False, plots=False)
    again = run_study(cfg, tmp_path, progress=lambda _: None)["results"][0]
    first = next(r for r in metrics["results"] if r["label"] == "helu(0.05)")
    assert again["acc"][0] == first["acc"][1]
    assert again["loss_curves"][0] == first["loss_curves"][1]
    by_alpha = {r["alpha"]: r["band_frac"] for r in metrics["results"] if r["act"] == "helu"}
    assert by_alpha[0.5] > by_alpha[0.05] > 0


def test_unit_stats_counts_dead_units_and_band():
    # Layer 1: unit 0 never positive; layer 2 (conv-like): channel 1 never positive.
    z1 = torch.tensor([[-1.0, 2.0, -0.01], [-0.5, -1.0, 3.0], [0.0, 1.0, -2.0]])
    z2 = torch.ones(2, 2, 3, 3)
    z2[:, 1] = -0.02
    layers, total, band = unit_stats([z1, z2], 0.05)
    assert layers == [pytest.approx(1 / 3), pytest.approx(1 / 2)]
    assert total == pytest.approx(2 / 5)
    # In (-0.05, 0]: z1 has -0.01 and 0.0; z2 has 18 elements at -0.02.
    assert band == pytest.approx((2 + 18) / (9 + 36))
    assert unit_stats([z1], None)[2] is None


def test_quick_preset_is_the_flows():
    assert QUICK.dataset == "digits" and QUICK.model == "mlp"
    assert {"relu", "helu", "gelu", "leaky"} <= set(QUICK.acts) and len(QUICK.seeds) >= 3


@pytest.mark.parametrize(
    "kwargs,message",
    [
        ({"dataset": "cifar"}, "Unknown dataset 'cifar'"),
        ({"acts": ("relu", "swish")}, "Unknown activation 'swish'"),
        ({"acts": ()}, "The study needs at least one activation"),
        ({"acts": ("relu", "relu")}, "Activations are listed twice: relu, relu"),
        ({"alphas": ()}, "HeLU is in the study but no alpha is given"),
        ({"alphas": (-0.1,)}, "Alpha must be a finite number >= 0, not -0.1"),
        ({"seeds": ()}, r"Seeds must be non-negative integers, not \(\)"),
        ({"epochs": 0}, "epochs must be a positive integer, not 0"),
        ({"threads": 0}, "threads must be a positive integer, not 0"),
        ({"lr": 0.0}, "Learning rate must be a positive number, not 0.0"),
        ({"max_train": 0}, "max_train must be a positive integer or None, not 0"),
        ({"model": "cnn", "dataset": "wine"}, "The CNN takes 8x8 images \\(digits\\), not 'wine'"),
        ({"hidden": (0,)}, "hidden must be a non-empty list of positive integers"),
    ],
)
def test_study_config_wrong(kwargs, message):
    with pytest.raises(ValueError, match=message):
        StudyConfig(**kwargs)


def test_run_study_wrong(tmp_path):
    with pytest.raises(TypeError, match="Expected a StudyConfig, not dict"):
        run_study({}, tmp_path)


@pytest.mark.slow
def test_cli_train(tmp_path, capsys):
    from helu.cli import main

    out = tmp_path / "t"
    argv = ["-q", "train", "--acts", "relu", "helu", "--alphas", "0.1", "--seeds", "1"]
    assert main([*argv, "--epochs", "1", "--no-checkpoints", "--out", str(out)]) == 0
    metrics = json.loads((out / "metrics.json").read_text())
    assert [r["label"] for r in metrics["results"]] == ["relu", "helu(0.1)"]
    assert "helu(0.1)" in capsys.readouterr().out
    assert not (out / "checkpoints").exists()
    assert main([*argv[:-1], "0", "--out", str(out)]) == 1
    assert "--seeds must be a positive integer, not 0" in capsys.readouterr().err
