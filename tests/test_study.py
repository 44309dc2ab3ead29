"""`helu study collapse` (helu/collapse.py, helu/commands/study.py): files, resume, errors."""

import json

import pytest

from helu.cli import main
from helu.collapse import preset_cells
from helu.report import write_report
from helu.steps import number


def cell_p(analysis, index):
    return analysis["cells"][index]["arms"]["helu:0.5"]["vs_relu_good"]["p"]


TINY = ["--widths", "2", "--depths", "3,4", "--biases", "zero", "--seeds", "30", "--steps", "20"]


def test_presets_have_paired_arms_and_enough_seeds():
    quick = preset_cells("quick")
    assert len(quick) == 1 and quick[0].seeds >= 200 and "relu" in quick[0].arms
    full = preset_cells("full")
    assert len(full) == 7 * 5 * 3 * 2 * 2
    assert {c.width for c in full} == set(range(2, 9)) and max(c.depth for c in full) == 40
    assert all(c.seeds >= 200 for c in full)
    results = preset_cells("results")
    assert len(results) == len({c.key for c in results})  # no cell twice


@pytest.mark.slow
def test_study_collapse_writes_results_and_resumes(tmp_path, capsys, caplog):
    out = tmp_path / "collapse"  # where the flow keeps it, so the report section renders
    argv = ["study", "collapse", *TINY, "--arms", "relu,helu:0.5", "--jobs", "1"]
    assert main([*argv, "--out", str(out)]) == 0
    analysis = json.loads((out / "collapse.json").read_text())
    assert [c["key"] for c in analysis["cells"]] == ["w2-d3-zero-adam-abs", "w2-d4-zero-adam-abs"]
    cell = analysis["cells"][0]
    assert cell["born_dead"]["n"] == 30 and set(cell["arms"]) == {"relu", "helu:0.5"}
    assert "vs_relu_good" in cell["arms"]["helu:0.5"]
    assert analysis["lu_check"][0]["bound_hi"] > 0
    assert (out / "collapse.md").read_text().count("| ReLU |") == 2
    assert set(analysis["plots"]) >= {"collapse_zero_adam_abs.png", "paired_good_adam_abs.png"}
    assert "HeLU a=0.5 vs ReLU, good fit" in capsys.readouterr().out
    saved = (out / "cells" / "w2-d3-zero-adam-abs.json").stat().st_mtime_ns
    caplog.set_level("INFO")
    assert main([*argv, "--out", str(out)]) == 0  # every cell reused
    assert "reusing 2 of 2 cells" in caplog.text
    assert (out / "cells" / "w2-d3-zero-adam-abs.json").stat().st_mtime_ns == saved
    report, summary = write_report(tmp_path)
    text = report.read_text()
    assert f"## {number('collapse')}. Collapse of deep, narrow nets" in text
    assert "![paired_good_adam_abs.png](collapse/paired_good_adam_abs.png)" in text
    helu = json.loads(summary.read_text())["collapse"]["cells"][1]["arms"]["helu:0.5"]
    assert helu["good_vs_relu_p"] == cell_p(analysis, 1)


def test_study_collapse_refuses_a_folder_of_user_files(tmp_path, capsys):
    (tmp_path / "notes.txt").write_text("mine")
    assert main(["study", "collapse", *TINY, "--out", str(tmp_path)]) == 1
    assert "holds files that helu did not write" in capsys.readouterr().err
    assert [p.name for p in tmp_path.iterdir()] == ["notes.txt"]


@pytest.mark.parametrize(
    "extra, message",
    [
        (["--arms", "helu:0.5"], "--arms must include relu"),
        (["--arms", "relu,tanh"], "unknown arm 'tanh'"),
        (["--biases", "he"], "unknown bias 'he'"),
        (["--widths", "0"], "--widths takes comma-separated positive integers"),
        (["--seeds", "0"], "seeds must be an integer >= 1, not 0"),
        (["--jobs", "0"], "--jobs must be a positive integer, not 0"),
        (["--scheduler", "nowhere"], "--scheduler takes a Dask scheduler address"),
    ],
)
def test_study_collapse_wrong(tmp_path, capsys, extra, message):
    out = tmp_path / "study"
    assert main(["study", "collapse", *TINY, *extra, "--out", str(out)]) == 1
    err = capsys.readouterr().err.strip()
    assert err.startswith("helu study: error: ") and message in err, err
    assert len(err.splitlines()) == 1
    assert not (out / "cells").exists() or not any((out / "cells").iterdir())


def test_bounds_column_says_why_it_is_empty():
    """Lu et al.'s bounds hold for zero biases only: another bias's row says so, never blank."""
    from helu.collapse import NO_BOUND, render_markdown

    rate = {"p": 0.5, "lo": 0.4, "hi": 0.6, "k": 100, "n": 200}
    rows = [{"bias": "symmetric", "width": 2, "depth": 5, "born_dead": rate},
            {"bias": "zero", "width": 2, "depth": 5, "born_dead": rate, "bound_lo": 0.3,
             "bound_hi": 0.6, "within": True}]  # fmt: skip
    definitions = dict.fromkeys(("born_dead", "collapsed", "good_fit", "recovered",
                                 "helu_scaled", "significance", "dtype"), "x")  # fmt: skip
    analysis = {"definitions": definitions, "labels": {}, "lu_check": rows, "cells": [],
                "verdicts": {}, "seconds": 0, "cpu_seconds": None}  # fmt: skip
    text = render_markdown(analysis)
    assert f"| symmetric | 2 | 5 | 0.50 [0.40, 0.60] (100/200) | {NO_BOUND} | – |" in text
    assert "| zero | 2 | 5 | 0.50 [0.40, 0.60] (100/200) | [0.30, 0.60] | yes |" in text
    assert "The bounds hold for zero biases only" in text
