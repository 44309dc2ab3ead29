"""The flow's training-on-chip record and report section (``helu.steps.onchip``).

The step itself (minutes of Verilator build) runs in ``helu flow`` and ``helu onchip``; here the
report reads a small, well-formed record and refuses malformed or stale ones.
"""

import json

import pytest

from helu.common.outdir import sha256_file
from helu.report import collect, render, summarize
from helu.steps import number
from helu.steps import onchip as onchipflow

STEPS = 4


def _record(tmp_path, **changes):
    """A small record as the flow writes it, its Verilog file and plot under ``tmp_path``."""
    rtl = tmp_path / "onchip" / "sim" / "rtl"
    rtl.mkdir(parents=True)
    verilog = rtl / "helu_trainer_4_3_2_p2.v"
    verilog.write_text("module helu_trainer_4_3_2_p2; endmodule\n")
    (tmp_path / "onchip" / "onchip_loss_verilator.png").write_bytes(b"\x89PNG\r\n")
    run = {
        "simulator": "verilator",
        "steps": STEPS,
        "mismatches": 0,
        "message": f"all {STEPS} steps bit-exact",
        "full_checks": 2,
        "cycles": 4 * 61,
        "train_cycles": 4 * 51,
        "wall_s": 2.0,
        "steps_per_s": 2.0,
        "loss_equal": True,
        "loss": [900.0, 850.0, 700.0, 650.0],
        "logits_equal": [True] * STEPS,
        "plot": "onchip_loss_verilator.png",
    }
    data = {
        "sizes": [4, 3, 2],
        "lanes": 2,
        "steps": STEPS,
        "full_check_every": 2,
        "seed": 0,
        "threshold": -2,
        "cycles_per_sample": 50,
        "ideal_cycles": 9.0,
        "mask_bits": 3,
        "z_stash_bits": 24,
        "golden_steps_per_s": 33.3,
        "golden_test_accuracy": 0.5,
        "golden_loss": [900.0, 850.0, 700.0, 650.0],
        "runs": [run],
        "verilog": "sim/rtl/helu_trainer_4_3_2_p2.v",
        "verilog_sha256": sha256_file(verilog),
        "command": "helu onchip --steps 4",
    }
    for key, value in changes.items():
        if key.startswith("run_"):
            run[key[4:]] = value
        else:
            data[key] = value
    data["runs"] = [{k: v for k, v in run.items() if v is not None}]
    data = {k: v for k, v in data.items() if v is not None}
    (tmp_path / onchipflow.SUMMARY).write_text(json.dumps(data))
    return data


def _report(tmp_path) -> tuple[dict, str]:
    found = collect(tmp_path)
    summary = summarize(found)
    return summary, render(found, summary, tmp_path)


def test_report_section_reads_a_record(tmp_path):
    _record(tmp_path)
    summary, report = _report(tmp_path)
    assert summary["onchip"]["runs"] == [
        {"simulator": "verilator", "steps": STEPS, "mismatches": 0, "bit_exact": True}
    ]
    section = report.split(f"## {number('onchip')}. Training on chip")[1].split("\n## ")[0]
    assert f"{STEPS} steps compared, 0 mismatches" in section and "**bit-exact**" in section
    assert "](onchip/onchip_loss_verilator.png)" in section  # one plot: RTL over golden
    assert "| cycles per training step (design) | 50 |" in section
    assert "| design / ideal | 5.556 |" in section  # 50 / 9, from the record
    assert "| mask stash bits (1 per hidden element) | 3 |" in section
    assert "| simulated cycles a step (verilator, bench handshakes included) | 51.0 |" in section
    assert "| simulation speed (verilator), steps/s | 2.0 |" in section  # 4 steps in 2.0 s
    assert "not run by the flow" in section and "`make bench-fit`" in section


def test_report_section_mismatch_is_not_bit_exact(tmp_path):
    data = _record(tmp_path, run_mismatches=3)
    _, report = _report(tmp_path)
    assert "3 mismatches" in report and "**NOT bit-exact**" in report
    # logits that differ in one step, even with a zero mismatch count, are no pass either
    data["runs"][0]["mismatches"] = 0
    data["runs"][0]["logits_equal"][2] = False
    assert onchipflow.STEP.summary(data)["runs"][0]["bit_exact"] is False


@pytest.mark.parametrize(
    ("change", "message"),
    [
        ({"run_mismatches": None}, "a run's 'mismatches' is missing or not a count"),
        ({"run_mismatches": "0"}, "a run's 'mismatches' is missing or not a count"),
        ({"run_mismatches": False}, "a run's 'mismatches' is missing or not a count"),
        ({"run_loss": [1.0]}, "a run's per-step 'loss' is missing or not 4 long"),
        ({"golden_loss": None}, "no per-step 'golden_loss'"),
        ({"runs": []}, "no 'runs' list"),
        ({"mask_bits": None}, "no 'mask_bits'"),
    ],
)
def test_report_section_wrong(tmp_path, change, message):
    if change.get("runs") == []:
        _record(tmp_path)
        data = json.loads((tmp_path / onchipflow.SUMMARY).read_text())
        data["runs"] = []
        (tmp_path / onchipflow.SUMMARY).write_text(json.dumps(data))
    else:
        _record(tmp_path, **change)
    with pytest.raises(ValueError, match="malformed: " + message.replace("(", r"\(")):
        collect(tmp_path)


def test_report_stale_record_wrong(tmp_path):
    data = _record(tmp_path)
    (tmp_path / "onchip" / data["verilog"]).write_text("module other; endmodule\n")
    found = collect(tmp_path)
    assert found["onchip"] is None
    assert "another Verilog" in found["skipped"]["onchip"]
    _, report = _report(tmp_path)
    assert "**bit-exact**" not in report  # stale results are never shown


def test_flow_step_off_and_missing_verilator(tmp_path, monkeypatch):
    from helu.sim import runner
    from helu.steps import Context, Options, run_step

    ctx = Context(tmp_path, Options(modes={"onchip": "off"}))
    run_step(ctx, onchipflow.STEP)
    assert ctx.skipped == {"onchip": "helu flow --onchip off"}
    ctx = Context(tmp_path, Options(modes={"onchip": "short"}))
    monkeypatch.setattr(runner, "tool_missing", lambda sim: f"{sim} not found on PATH")
    run_step(ctx, onchipflow.STEP)
    assert ctx.skipped == {"onchip": "Verilator missing: verilator not found on PATH"}
    assert not (tmp_path / "onchip").exists()
