"""`helu flow` end to end on a small setting: every step runs for real and the report is filled."""

import json
import shutil

import pytest

from helu.cli import main

UNITS = "forward,forward-train,backward-mask"


@pytest.mark.slow
def test_flow_small(tmp_path):
    out = tmp_path / "report"
    argv = ["-q", "flow", "--out", str(out), "--seeds", "1", "--units", UNITS]
    argv += ["--targets", "generic", "--synth-widths", "8", "--synth-lanes", "1,4"]
    argv += ["--prove-widths", "8", "--prove-lanes", "1"]
    argv += ["--mlp", "sim"]
    assert main(argv) == 0
    summary = json.loads((out / "summary.json").read_text())
    report = (out / "report.md").read_text()

    study = summary["study"]
    assert study["dataset"] == "digits"
    assert {r["act"] for r in study["results"]} >= {"relu", "helu", "gelu"}
    for r in study["results"]:
        assert 0.5 < r["acc_mean"] <= 1 and r["seeds"] == 1 and r["dead_frac"] is not None

    golden = summary["golden"]
    assert golden["vectors"] > 0 and golden["format"]["width"] == 8
    assert {w for w, _, _ in golden["formats"]} == {8, 16}

    intnet = summary["intnet"]
    assert [r["threshold"] for r in intnet["results"]] == [0, -2, -8]
    assert all(r["seeds"] == 1 and 0.5 < r["acc_mean"] <= 1 for r in intnet["results"])
    assert intnet["golden_net"]["trajectory_steps"] > 0
    assert "## 5. Integer network" in report and "T=-8 vs ReLU" in report
    assert (out / "golden-net" / "inference.npz").is_file()

    assert set(summary) >= {"study", "golden", "intnet", "environment"}
    if shutil.which("iverilog"):
        sim = summary["sim"]
        assert sim["simulator"] == "icarus" and sim["mismatches"] == 0
        assert sim["checked"] >= 3 * golden["vectors"]  # three units, every golden element each
        assert "**PASS**" in report
    if shutil.which("yosys"):
        units = {(r["unit"], r["lanes"]) for r in summary["synth"]}
        assert units == {(u, n) for u in UNITS.split(",") for n in (1, 4)}
        assert all(r["gates"] is not None and r["ff"] > 0 for r in summary["synth"])
    if "prove" not in summary.get("skipped", {}):
        formal = summary["formal"]
        assert formal["proofs"] == 4 and formal["proved"] == 4  # forward-train: T and port
        assert "## 5. Formal" in report and "| forward-train | w8-l1-tport |" in report
    if shutil.which("iverilog") and shutil.which("yosys"):
        assert "_Not run" not in report
    else:  # a missing tool is named in the report, never filled in
        assert "_Not run: " in report
    if shutil.which("iverilog"):  # the integer MLP engine: every test sample bit-exact
        mlp = summary["mlp"]
        assert mlp["sizes"] == [64, 32, 32, 10] and mlp["sim"][0]["checked"] == 360
        assert mlp["sim"][0]["mismatches"] == 0
        assert mlp["sim"][0]["accuracy"] == pytest.approx(mlp["accuracy"]["integer"])
        assert "## 6. Integer MLP engine on chip" in report and "bit-exact" in report
    assert (out / "verilog" / "helu_forward_w8_l16.v").is_file()
    # the training unit is generated in the 8-bit format that keeps alpha's band (Q8.5, T=-2)
    assert (out / "verilog" / "helu_forward_train_w8_l16_f5_tm2.v").is_file()
    assert (out / "study" / "accuracy.png").stat().st_size > 0
    collapse = summary["collapse"]["cells"][0]  # the quick collapse study, paired with ReLU
    assert collapse["key"] == "w2-d5-symmetric-adam-abs" and "relu" in collapse["arms"]
    assert "## 7. Collapse of deep, narrow nets" in report
