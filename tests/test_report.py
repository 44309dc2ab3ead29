"""The flow report (helu/report.py): summary keys, sections, refusal of missing or damaged input."""

import json

import pytest

from helu import report

STUDY = {
    "dataset": "digits",
    "model": "mlp",
    "results": [
        {"act": "relu", "alpha": None, "label": "relu", "acc": [0.9, 0.92], "acc_mean": 0.91,
         "acc_std": 0.01, "dead_frac": 0.1},
        {"act": "helu", "alpha": 0.05, "label": "helu(0.05)", "acc": [0.93, 0.95],
         "acc_mean": 0.94, "acc_std": 0.01, "dead_frac": 0.02, "band_frac": 0.1},
    ],
    "comparison": {"summary": "HeLU(0.05) beat ReLU by 3.0 points."},
    "plots": {"accuracy": "accuracy.png"},
}  # fmt: skip
GOLDEN = {
    "version": 1, "model": "mlp", "act": "helu", "alpha": 0.05, "accuracy": 0.95,
    "checkpoint": "ckpt.pt",
    "sets": [
        {"name": "act1_w8", "layer": "act1", "elements": 100,
         "z_format": {"width": 8, "frac": 4}, "threshold": -1, "mask_mismatch": 2},
        {"name": "act1_w16", "layer": "act1", "elements": 100,
         "z_format": {"width": 16, "frac": 11}, "threshold": -103, "mask_mismatch": 0},
    ],
}  # fmt: skip
SIM = {
    "simulator": "icarus", "checked": 200, "mismatches": 0, "elements_per_s": 1000.0,
    "runs": [{"unit": "forward", "simulator": "icarus", "width": 8, "lanes": 4,
              "top": "helu_forward_w8_l4", "golden_sets": ["act1_w8"],
              "checked": 200, "mismatches": 0, "cycles": 60, "elements_per_s": 1000.0}],
}  # fmt: skip
SYNTH = {
    "results": [{"unit": "forward", "target": "ice40", "width": 8, "lanes": 16, "lut": 2,
                 "lut_per_lane": 0.125, "ff": 129, "ff_per_lane": 8.06, "carry": 0,
                 "fmax_mhz": 400.0, "fmax_seeds": [400.0], "harness": True}]
}  # fmt: skip


def write_steps(out, **steps):
    """Write step records; a simulation record is tied to the golden manifest written with it."""
    from helu.common.outdir import sha256_file

    for step, content in sorted(steps.items(), key=lambda kv: kv[0] != "golden"):
        path = out / report.STEP_FILES[step]
        path.parent.mkdir(parents=True, exist_ok=True)
        if step == "sim" and "golden" in steps:
            content = content | {"golden_sha256": sha256_file(out / "golden" / "manifest.json")}
        path.write_text(json.dumps(content))


def test_summary_has_the_documented_keys(tmp_path):
    write_steps(tmp_path, study=STUDY, golden=GOLDEN, sim=SIM, synth=SYNTH)
    md, summary_path = report.write_report(tmp_path)
    summary = json.loads(summary_path.read_text())
    assert summary["study"]["dataset"] == "digits"
    assert [r["act"] for r in summary["study"]["results"]] == ["relu", "helu"]
    assert set(summary["study"]["results"][1]) >= {
        "act",
        "alpha",
        "acc_mean",
        "acc_std",
        "dead_frac",
    }
    assert summary["golden"]["vectors"] == 200
    assert summary["golden"]["format"] == {"width": 8, "frac": 4, "threshold": -1}
    files = summary["sim"].pop("files")
    assert summary["sim"] == {"simulator": "icarus", "checked": 200, "mismatches": 0,
                              "elements_per_s": 1000.0, "runs": 1}  # fmt: skip
    assert [f["top"] for f in files] == ["helu_forward_w8_l4"] and set(files[0]) >= {
        "verilog_sha256",
        "checked",
    }
    assert summary["synth"][0]["lut"] == 2 and summary["synth"][0]["fmax_mhz"] == 400.0
    text = md.read_text()
    assert "94.00 ± 1.00" in text and "HeLU(0.05) beat ReLU" in text
    assert "**PASS**: 200 elements" in text
    assert "| forward | icarus | `helu_forward_w8_l4` | act1_w8 | 200 | 0 |" in text
    assert "| forward | ice40 | 8 | 16 | – | 2 | 0.12 | 129 |" in text


def test_report_says_fail_on_mismatches(tmp_path):
    write_steps(tmp_path, golden=GOLDEN, sim=SIM | {"mismatches": 3})
    md, _ = report.write_report(tmp_path)
    assert "**FAIL**" in md.read_text()


def test_missing_steps_are_reported_not_filled(tmp_path):
    write_steps(tmp_path, study=STUDY)
    (tmp_path / report.SKIPS).write_text(json.dumps({"synth": "yosys not installed"}))
    md, summary_path = report.write_report(tmp_path)
    text = md.read_text()
    assert "_Not run: yosys not installed._" in text
    assert "synth" not in json.loads(summary_path.read_text())


def test_notes_are_listed(tmp_path):
    write_steps(tmp_path, study=STUDY)
    (tmp_path / report.NOTES).write_text(json.dumps(["igelu was synthesized at 1 lane only"]))
    md, _ = report.write_report(tmp_path)
    assert "## Notes\n\n- igelu was synthesized at 1 lane only" in md.read_text()


def test_report_wrong(tmp_path):
    with pytest.raises(ValueError, match="no such report folder"):
        report.write_report(tmp_path / "nope")
    with pytest.raises(ValueError, match="no step results found"):
        report.write_report(tmp_path)
    write_steps(tmp_path, study=STUDY)
    (tmp_path / "sim").mkdir()
    (tmp_path / "sim" / "summary.json").write_text("{not json")
    with pytest.raises(ValueError, match="summary.json: not valid JSON"):
        report.write_report(tmp_path)
