"""The flow report (helu/report.py): summary keys, sections, the summary table, refusal of missing
or damaged input, verdicts checked against what their inputs hold."""

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
    assert "94.00 ± 1.00" in text
    # +3 points on 2 of 2 paired seeds: the collapse study's rule (McNemar p = 0.5) finds no
    # difference, whatever the study's own line said
    assert "helu(0.05) shows no difference from relu within noise" in text
    assert "beat ReLU" not in text
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


def _mlp_record(checked=360, mismatches=0):
    sim = {"simulator": "icarus", "checked": checked, "mismatches": mismatches,
           "message": f"all {checked} samples bit-exact ({10 * checked} logits)", "accuracy": 0.97,
           "cycles_per_sample": 445.0, "ideal": 424.0, "seconds": 1.0}  # fmt: skip
    return {"sizes": [64, 32, 32, 10], "shifts": [6, 7, 9], "lanes": 8, "macs": 3392,
            "golden": "golden-net",
            "accuracy": {"integer": 0.97, "float": 0.975}, "cycles_per_sample": 445,
            "latency": 443, "sim": [sim], "synth": [], "seconds": 12.0}  # fmt: skip


def _golden_net(out, samples=360):
    (out / "golden-net").mkdir(parents=True, exist_ok=True)
    (out / "golden-net" / "manifest.json").write_text(json.dumps({"samples": samples}))


def test_fewer_samples_than_the_golden_folder_is_incomplete(tmp_path, capsys):
    """An mlp/summary.json edited to 12 checked samples (the golden folder holds 360) is never a
    pass: the summary table, the section and ``helu report``'s exit code say incomplete."""
    from helu.cli import main

    _golden_net(tmp_path)
    write_steps(tmp_path, mlp=_mlp_record(checked=12))
    md, summary_path = report.write_report(tmp_path)
    text = md.read_text()
    verdict = json.loads(summary_path.read_text())["verdicts"]["mlp"]
    assert verdict["status"] == "incomplete", verdict
    assert "icarus checked 12 of the 360 samples of golden-net/" in verdict["why"]
    assert "**INCOMPLETE**" in text.split("Integer MLP engine on chip\n")[-1]
    assert "**PASS**" not in text
    assert main(["report", "--out", str(tmp_path)]) == 1
    assert "mlp: incomplete" in capsys.readouterr().err
    write_steps(tmp_path, mlp=_mlp_record())  # all 360: a pass, exit 0
    assert main(["report", "--out", str(tmp_path)]) == 0
    assert "| **PASS** |" in md.read_text()


def test_simulation_fewer_elements_than_its_sets_is_incomplete(tmp_path):
    write_steps(tmp_path, golden=GOLDEN, sim=SIM | {"checked": 50, "runs": [SIM["runs"][0] | {
        "checked": 50}]})  # fmt: skip
    md, summary_path = report.write_report(tmp_path)
    verdict = json.loads(summary_path.read_text())["verdicts"]["sim"]
    assert verdict["status"] == "incomplete" and "checked 50 of 100" in verdict["why"], verdict
    assert "**PASS**" not in md.read_text()


def test_summary_table_comes_first(tmp_path):
    """One table before the detail: per step what was verified, the verdict, the seconds."""
    from helu.steps import SECTIONS, TIMING, number

    write_steps(tmp_path, study=STUDY, golden=GOLDEN, sim=SIM)
    (tmp_path / TIMING).write_text(json.dumps({"study": 12.4, "sim": 30.0, "total": 99.0}))
    (tmp_path / report.SKIPS).write_text(json.dumps({"onchip": "helu flow --onchip off"}))
    text = report.write_report(tmp_path)[0].read_text()
    head = text.split("## 1. ")[0]
    assert "## Summary" in head
    for step in SECTIONS:
        assert f"| {number(step.name)}. {step.title} |" in head, step.name
    assert f"| {number('sim')}. RTL verification (cocotb) | 200 elements" in head
    assert "| **PASS** | 30 |" in head
    assert "| 2 settings x 2 seeds trained | done | 12 |" in head
    assert "| not run (helu flow --onchip off) |" in head
    assert "99 s in all" in head


def test_missing_folder_says_missing(tmp_path):
    """A step whose folder was deleted (onchip/ gone) is not run, and the report says why."""
    from helu.steps import number

    write_steps(tmp_path, study=STUDY)
    text = report.write_report(tmp_path)[0].read_text()
    section = text.split(f"## {number('onchip')}. Training on chip")[1].split("\n## ")[0]
    assert "_Not run: missing: the flow folder has no onchip/" in section
    assert "_Not run._" not in text


def test_sections_are_numbered_from_the_registry(tmp_path):
    import re

    from helu.steps import SECTIONS

    write_steps(tmp_path, study=STUDY)
    text = report.write_report(tmp_path)[0].read_text()
    numbers = re.findall(r"^## (\S+)\. ", text, flags=re.M)
    assert numbers == [str(i) for i in range(1, len(SECTIONS) + 1)]


def test_interrupted_flow_says_so(tmp_path):
    """A flow.json left 'running' by a process that is gone (no lock held): interrupted, and the
    steps it did not reach say so."""
    from helu.steps import STATUS, number

    write_steps(tmp_path, study=STUDY)
    status = {"state": "running", "step": "golden", "steps": ["study", "golden", "sim"],
              "done": ["study"]}  # fmt: skip
    (tmp_path / STATUS).write_text(json.dumps(status))
    text = report.write_report(tmp_path)[0].read_text()
    assert "**This flow was interrupted during step `golden`" in text
    golden = text.split(f"## {number('golden')}. Golden vectors")[1].split("\n## ")[0]
    assert "_Not run: interrupted during this step._" in golden
    assert "the flow was interrupted before this step" in text
