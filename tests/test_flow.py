"""`helu flow` end to end on a small setting: every step runs for real and the report is filled.

The flow runs once (a module fixture); each step's checks are their own test, and a step whose
tool is missing is skipped by name rather than passing without checking anything.
"""

import json
import shutil

import pytest

from helu.cli import main

UNITS = "forward,forward-train,backward-mask"


@pytest.fixture(scope="module")
def flow(tmp_path_factory):
    out = tmp_path_factory.mktemp("flow") / "report"
    argv = ["-q", "flow", "--out", str(out), "--seeds", "1", "--units", UNITS]
    argv += ["--targets", "generic", "--synth-widths", "8", "--synth-lanes", "1,4"]
    assert main(argv) == 0
    summary = json.loads((out / "summary.json").read_text())
    return out, summary, (out / "report.md").read_text()


def _need(tool):
    if not shutil.which(tool):
        pytest.skip(f"{tool} is not installed: the flow skipped the step that needs it")


@pytest.mark.slow
def test_flow_study_and_golden(flow):
    out, summary, _report = flow
    study = summary["study"]
    assert study["dataset"] == "digits"
    assert {r["act"] for r in study["results"]} >= {"relu", "helu", "gelu"}
    for r in study["results"]:
        assert 0.5 < r["acc_mean"] <= 1 and r["seeds"] == 1 and r["dead_frac"] is not None
    golden = summary["golden"]
    assert golden["vectors"] > 0 and golden["format"]["width"] == 8
    assert {w for w, _, _ in golden["formats"]} == {8, 16}
    assert set(summary) >= {"study", "golden", "environment"}
    assert (out / "study" / "accuracy.png").stat().st_size > 0


@pytest.mark.slow
def test_flow_verilog(flow):
    out, _summary, _report = flow
    assert (out / "verilog" / "helu_forward_w8_l16.v").is_file()
    # the training unit is generated in the 8-bit format that keeps alpha's band (Q8.5, T=-2)
    assert (out / "verilog" / "helu_forward_train_w8_l16_f5_tm2.v").is_file()


@pytest.mark.slow
def test_flow_simulation(flow):
    _need("iverilog")
    _out, summary, report = flow
    sim = summary["sim"]
    assert sim["simulator"] == "icarus" and sim["mismatches"] == 0
    assert sim["checked"] >= 3 * summary["golden"]["vectors"]  # three units, every element each
    assert "**PASS**" in report


@pytest.mark.slow
def test_flow_synthesis(flow):
    _need("yosys")
    _out, summary, _report = flow
    units = {(r["unit"], r["lanes"]) for r in summary["synth"]}
    assert units == {(u, n) for u in UNITS.split(",") for n in (1, 4)}
    assert all(r["gates"] is not None and r["ff"] > 0 for r in summary["synth"])
    # the unit with a threshold is synthesized with a constant T and with the port, side by side
    kinds = {r["threshold"] for r in summary["synth"] if r["unit"] == "forward-train"}
    assert kinds == {"constant", "port"}


@pytest.mark.slow
def test_flow_report_names_missing_tools(flow):
    _out, _summary, report = flow
    missing = [t for t in ("iverilog", "yosys") if not shutil.which(t)]
    if missing:  # a missing tool is named in the report, never filled in
        assert "_Not run: " in report
    else:
        assert "_Not run" not in report
