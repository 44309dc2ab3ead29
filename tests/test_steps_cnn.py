"""The your-network step's record and report section (helu/steps/cnn.py): a record that does not
cover its input is refused, never reported as a pass."""

import json

import pytest

from helu.report import collect, render, summarize
from helu.steps import cnn as netflow
from helu.steps import number


def _record(tmp_path, **changes):
    sim = {"simulator": "verilator", "checked": 360, "mismatches": 0, "expected": 360,
           "message": "all 360 samples bit-exact", "accuracy": 0.97, "cycles_per_sample": 3279.0,
           "ideal": 3200.0, "seconds": 1.0, "wall_s": 9.0}  # fmt: skip
    data = {"example": "digits-cnn", "description": "a CNN", "dataset": "digits",
            "layers": ["conv a", "conv b", "dense c"], "sizes": [64, 512, 256, 10],
            "shifts": [7, 8, 8], "threshold": -2, "input": {"lo": 0, "hi": 127, "frac": 6},
            "lanes": 8, "macs": 25600, "accuracy": {"float": 0.97, "integer": 0.969},
            "cycles_per_sample": 3279, "ideal_cycles": 3200.0, "layer_cycles": [576, 2304, 320],
            "layer_ideal": [576.0, 2304.0, 320.0], "trajectory_steps": 16, "sim": [sim],
            "synth": []}  # fmt: skip
    for key, value in changes.items():
        if key.startswith("sim_"):
            sim[key[4:]] = value
        else:
            data[key] = value
    (tmp_path / "cnn").mkdir(exist_ok=True)
    (tmp_path / netflow.SUMMARY).write_text(json.dumps(data))
    return data


def test_section_reads_the_record(tmp_path):
    _record(tmp_path)
    found = collect(tmp_path)
    report = render(found, summarize(found), tmp_path)
    section = report.split(f"## {number('cnn')}. Your network on chip")[1].split("\n## ")[0]
    assert "| digits CNN (a CNN) | 0.9700 | 0.9690 | 0.9700 (360 samples, verilator) |" in section
    assert "3279 / 3200 (1.025 x)" in section and "conv a: 576 cycles, ideal 576" in section
    assert "all 360 samples bit-exact" in section


@pytest.mark.parametrize(
    ("change", "message"),
    [
        ({"sim_checked": 12}, r"a simulation checked 12 of 360 samples \(incomplete\)"),
        ({"sim_mismatches": None}, "a simulation's 'mismatches' is missing or not a count"),
        ({"sim_expected": "360"}, "a simulation's 'expected' is missing or not a count"),
        ({"layers": None}, "no 'layers'"),
    ],
)
def test_record_wrong(tmp_path, change, message):
    data = _record(tmp_path, **change)
    if change.get("layers", 1) is None:
        del data["layers"]
        (tmp_path / netflow.SUMMARY).write_text(json.dumps(data))
    with pytest.raises(ValueError, match="malformed: " + message):
        collect(tmp_path)
