"""Issue 9, as a hostile user meets the toolkit: never delete what is not ours, never report a run
that did not happen, never pass on a shared folder, one line for every error.

Each test reproduces one case of the issue (it failed before the fix). Golden folders are small
and synthetic (``tests/golden_sets.py``); the checkpoint is an untrained digits MLP (no training).
"""

import json
import os
import signal
import subprocess
import sys
import time

import numpy as np
import pytest
from golden_sets import random_set

from helu.cli import main
from helu.common import outdir
from helu.golden import fixed
from helu.golden.vectors import load_golden, write_golden

META = {"model": "synthetic", "checkpoint": None, "dataset": "random", "act": "helu",
        "alpha": 0.05, "accuracy": None, "split": "test"}  # fmt: skip


def cli(capsys, *argv):
    """``helu -q ARGV`` in this process; returns ``(rc, stdout, stderr lines)``."""
    rc = main(["-q", *map(str, argv)])
    out, err = capsys.readouterr()
    return rc, out, err.strip().splitlines()


def one_line_error(capsys, command, *argv, expect: str):
    rc, _, err = cli(capsys, command, *argv)
    assert rc == 1, err
    assert len(err) == 1, err
    assert err[0].startswith(f"helu {command}: error: "), err
    assert expect in err[0], err[0]
    return err[0]


def tree(folder):
    return sorted(str(p.relative_to(folder)) for p in folder.rglob("*"))


@pytest.fixture(scope="module")
def checkpoint(tmp_path_factory):
    import torch

    from helu.golden import data
    from helu.golden.models import ModelConfig, build
    from helu.golden.train import save_checkpoint

    split = data.load("digits")
    torch.manual_seed(0)
    cfg = ModelConfig(hidden=(8,), act="helu", alpha=0.05)
    model = build(cfg).eval()
    path = tmp_path_factory.mktemp("ckpt") / "digits_mlp_helu-0.05_s0.pt"
    return save_checkpoint(path, model, cfg, split, "helu", 0.05, 0, 0.5)


def golden_args(checkpoint, out, *more):
    return ("golden", "--checkpoint", checkpoint, "--widths", "8", "--max-elements", "50",
            "--out", out, *more)  # fmt: skip


def small_golden(path, sets=None):
    sets = sets or [random_set("fc1_w8", fixed.Format(8, 5), fixed.Format(8, 6), 0.05, 40, 1)]
    write_golden(path, sets, META)
    return path


# ----------------------------------------------------------------------------- data loss


def test_golden_refuses_a_folder_of_user_files(tmp_path, checkpoint, capsys):
    out = tmp_path / "mine"
    out.mkdir()
    (out / "thesis.tex").write_text("years of work")
    one_line_error(capsys, *golden_args(checkpoint, out), expect=f"--out {out}: holds files")
    assert (out / "thesis.tex").read_text() == "years of work"
    assert tree(tmp_path) == ["mine", "mine/thesis.tex"]  # no scratch folder left either


def test_golden_refuses_a_flow_folder_and_the_parent_of_its_input(tmp_path, checkpoint, capsys):
    flow = tmp_path / "report"
    outdir.prepare(flow, "flow")
    (flow / "study").mkdir()
    ckpt = flow / "study" / "model.pt"
    ckpt.write_bytes(checkpoint.read_bytes())
    before = tree(flow)
    one_line_error(capsys, *golden_args(checkpoint, flow), expect="is a flow folder written by")
    one_line_error(capsys, *golden_args(ckpt, flow), expect="holds this command's input")
    one_line_error(capsys, *golden_args(ckpt, flow / "study"), expect="holds this command's input")
    assert tree(flow) == before


def test_golden_refuses_the_current_folder(tmp_path, checkpoint, capsys, monkeypatch):
    monkeypatch.chdir(tmp_path)
    (tmp_path / "notes.txt").write_text("keep")
    one_line_error(capsys, *golden_args(checkpoint, "."), expect="current folder")
    one_line_error(capsys, *golden_args(checkpoint, ".."), expect="current folder or one above")
    assert (tmp_path / "notes.txt").read_text() == "keep"


def test_golden_replaces_its_own_folder_and_force_only_for_its_kind(tmp_path, checkpoint, capsys):
    out = tmp_path / "g"
    assert cli(capsys, *golden_args(checkpoint, out))[0] == 0
    assert outdir.kind_of(out) == "golden"
    assert cli(capsys, *golden_args(checkpoint, out))[0] == 0  # ours: replaced
    # a golden folder from before markers: refused, --force replaces it
    (out / outdir.MARKER).unlink()
    one_line_error(capsys, *golden_args(checkpoint, out), expect="pass --force")
    assert cli(capsys, *golden_args(checkpoint, out, "--force"))[0] == 0
    # --force never applies to another kind's folder or to a user's files
    other = tmp_path / "user"
    other.mkdir()
    (other / "a.txt").write_text("x")
    one_line_error(capsys, *golden_args(checkpoint, other, "--force"), expect="did not write")
    assert (other / "a.txt").is_file()


def test_out_that_is_a_file(tmp_path, checkpoint, capsys):
    f = tmp_path / "file"
    f.write_text("x")
    msg = one_line_error(capsys, *golden_args(checkpoint, f), expect="is a file, not a folder")
    assert "Errno" not in msg
    one_line_error(capsys, "verilog", "--out", f, expect="is a file, not a folder")
    assert f.read_text() == "x"


def test_out_not_writable_names_the_folder_not_a_scratch(tmp_path, capsys):
    (tmp_path / "file").write_text("x")
    out = tmp_path / "file" / "v"  # its parent is a file: no folder can be made there
    msg = one_line_error(capsys, "verilog", "--out", out, expect="cannot write there")
    assert f"--out {out}" in msg and "/.v." not in msg and "Errno" not in msg


def test_verilog_refuses_user_files_and_merges_its_own(tmp_path, capsys):
    out = tmp_path / "v"
    assert cli(capsys, "verilog", "--unit", "forward", "--out", out)[0] == 0
    assert cli(capsys, "verilog", "--unit", "forward,leaky", "--out", out)[0] == 0
    names = {p.name for p in out.glob("*.v")}
    assert len(names) == 2 and any("leaky" in n for n in names)
    mine = tmp_path / "mine"
    mine.mkdir()
    (mine / "notes.md").write_text("x")
    one_line_error(capsys, "verilog", "--out", mine, expect="did not write")
    assert tree(mine) == ["notes.md"]


def test_synth_results_merge_by_key(tmp_path):
    from helu.synthreport import write_results

    a = {"unit": "forward", "target": "generic", "width": 8, "lanes": 1, "lut": None, "gates": 10,
         "gates_per_lane": 10.0, "ff": 9, "ff_per_lane": 9.0}  # fmt: skip
    b = a | {"unit": "leaky", "gates": 20, "gates_per_lane": 20.0}
    write_results([a], tmp_path / "s")
    write_results([b], tmp_path / "s")
    got = json.loads((tmp_path / "s" / "results.json").read_text())["results"]
    assert [r["unit"] for r in got] == ["forward", "leaky"]
    write_results([a | {"gates": 11}], tmp_path / "s")  # same key: the new record replaces
    got = json.loads((tmp_path / "s" / "results.json").read_text())["results"]
    assert [(r["unit"], r["gates"]) for r in got] == [("forward", 11), ("leaky", 20)]


@pytest.mark.parametrize(
    "argv,expect",
    [
        (["--alpha", "nan"], "Alpha must be a finite number"),
        (["--width", "40"], "Width must be between 2 and 32 bits, not 40"),
    ],
)
def test_synth_bad_parameters_leave_no_folder(tmp_path, capsys, argv, expect):
    out = tmp_path / "s"
    one_line_error(capsys, "synth", "--unit", "forward-train", "--target", "generic", *argv,
                   "--out", out, expect=expect)  # fmt: skip
    assert not out.exists()
    assert tree(tmp_path) == []


def test_train_refuses_user_files_before_training(tmp_path, capsys, monkeypatch):
    mine = tmp_path / "mine"
    mine.mkdir()
    (mine / "metrics.json").write_text("my own")
    one_line_error(capsys, "train", "--out", mine, expect="pass --force")
    monkeypatch.chdir(mine)
    one_line_error(capsys, "train", "--out", ".", expect="current folder")
    assert tree(mine) == ["metrics.json"]


def test_verilog_unit_all_is_all_or_nothing(tmp_path, capsys):
    out = tmp_path / "v"
    assert cli(capsys, "verilog", "--unit", "forward", "--out", out)[0] == 0
    rc, printed, _ = cli(capsys, "verilog", "--unit", "leaky", "--out", tmp_path / "probe")
    leaky = printed.split()[0].rsplit("/", 1)[1]
    (out / leaky).mkdir()  # a name collision with a unit generated late in --unit all
    before = tree(out)
    # (--unit all met it after 5 of 7 units; three units here keep the test short)
    units = "forward,relu-cmp,leaky"
    msg = one_line_error(capsys, "verilog", "--unit", units, "--out", out, expect="is a folder")
    assert leaky in msg
    assert tree(out) == before  # not 5 of 7 units
    assert sorted(p.name for p in tmp_path.iterdir()) == ["probe", "v"]  # no scratch folder


# ----------------------------------------------------------------------------- false PASS


@pytest.mark.slow
def test_sim_runs_get_their_own_run_folders(tmp_path):
    from helu.hw.units import UnitParams
    from helu.sim import runner
    from helu.sim import stimulus as st

    if runner.tool_missing("icarus"):
        pytest.skip(runner.tool_missing("icarus"))
    (s,) = load_golden(small_golden(tmp_path / "g"))[1]
    build = runner.build_unit("forward", UnitParams(width=8, lanes=2), "icarus", tmp_path / "sim")
    stim = st.assemble(st.golden_segments("forward", [s], build.sidecar), build.sidecar)
    a = runner.run_stimulus(build, stim)
    b = runner.run_stimulus(build, stim)
    assert a["log"] != b["log"]  # a second run (or a concurrent one) never shares a folder
    assert a["checked"] == b["checked"] == s.elements


def test_sim_refuses_a_folder_in_use(tmp_path, capsys):
    from helu.sim import runner

    if runner.tool_missing("icarus"):
        pytest.skip(runner.tool_missing("icarus"))
    golden = small_golden(tmp_path / "g")
    out = outdir.prepare(tmp_path / "sim", "sim")
    (out / "summary.json").write_text(json.dumps(SIM))
    with runner.lock(out):  # another helu sim is running on this folder
        busy = f"{out} is in use by another helu command (pid {os.getpid()})"
        argv = ("--golden", golden, "--unit", "forward", "--out", out)
        one_line_error(capsys, "sim", *argv, expect=busy)
        assert json.loads((out / "summary.json").read_text()) == SIM  # the other run's, intact
    with runner.lock(out):  # released
        pass


def write_flow(folder, **steps):
    outdir.prepare(folder, "flow")
    for step, rel in {"golden": "golden/manifest.json", "sim": "sim/summary.json",
                      "synth": "synth/results.json"}.items():  # fmt: skip
        if step in steps:
            (folder / rel).parent.mkdir(parents=True, exist_ok=True)
            (folder / rel).write_text(json.dumps(steps[step]))


SIM = {"simulator": "icarus", "checked": 100, "mismatches": 0, "elements_per_s": 10.0,
       "runs": [{"top": "helu_forward_w8_l2", "golden_sets": ["fc1_w8"], "checked": 100,
                 "mismatches": 0}]}  # fmt: skip


def test_report_prints_skip_reason_not_an_old_pass(tmp_path):
    from helu import report

    write_flow(tmp_path, sim=SIM)
    (tmp_path / report.SKIPS).write_text(json.dumps({"sim": "iverilog not found on PATH"}))
    md, summary = report.write_report(tmp_path)
    text = md.read_text()
    assert "PASS" not in text and "Not run: iverilog not found on PATH" in text
    assert "sim" not in json.loads(summary.read_text())


def test_report_shows_sim_only_for_the_golden_set_it_lists(tmp_path):
    from helu import report
    from helu.golden.vectors import golden_digest

    outdir.prepare(tmp_path, "flow")
    small_golden(tmp_path / "golden")
    write_flow(tmp_path, sim=SIM | {"golden_sha256": golden_digest(tmp_path / "golden")})
    assert "**PASS**" in report.write_report(tmp_path)[0].read_text()
    sets = [random_set("fc1_w8", fixed.Format(8, 4), fixed.Format(8, 6), 0.05, 40, 2)]
    small_golden(tmp_path / "golden", sets)  # a new golden set: the simulation is stale
    text = report.write_report(tmp_path)[0].read_text()
    assert "PASS" not in text and "another golden set" in text
    write_flow(tmp_path, sim=SIM)  # no hash at all: not tied to anything
    assert "PASS" not in report.write_report(tmp_path)[0].read_text()


def test_report_shows_golden_only_for_the_checkpoint_of_its_study(tmp_path, checkpoint, capsys):
    from helu import report

    outdir.prepare(tmp_path, "flow")
    (tmp_path / "study" / "checkpoints").mkdir(parents=True)
    ckpt = tmp_path / "study" / "checkpoints" / "m.pt"
    ckpt.write_bytes(checkpoint.read_bytes())
    study = {"dataset": "digits", "golden_checkpoint": "checkpoints/m.pt",
             "results": [{"act": "helu", "acc_mean": 0.5, "acc_std": 0.0}]}  # fmt: skip
    (tmp_path / "study" / "metrics.json").write_text(json.dumps(study))
    assert cli(capsys, *golden_args(ckpt, tmp_path / "golden"))[0] == 0
    assert "## 2. Golden vectors\n\nFrom" in report.write_report(tmp_path)[0].read_text()
    ckpt.write_bytes(ckpt.read_bytes() + b"retrained")  # the study ran again, golden did not
    text = report.write_report(tmp_path)[0].read_text()
    assert "exported from another checkpoint" in text
    assert "## 2. Golden vectors\n\nFrom" not in text


@pytest.mark.parametrize(
    "rel,record,expect",
    [
        ("sim/summary.json", {k: v for k, v in SIM.items() if k != "mismatches"}, "mismatches"),
        ("sim/summary.json", [1, 2], "not a JSON object"),
        ("synth/results.json", {"results": [{"unit": "forward"}]}, "target"),
        ("synth/results.json", {"results": 3}, "results"),
        ("golden/manifest.json", {"sets": "x"}, "sets"),
    ],
)
def test_report_malformed_records_are_errors(tmp_path, capsys, rel, record, expect):
    outdir.prepare(tmp_path, "flow")
    (tmp_path / rel).parent.mkdir()
    (tmp_path / rel).write_text(json.dumps(record))
    msg = one_line_error(capsys, "report", "--out", tmp_path, expect=expect)
    assert rel in msg
    assert not (tmp_path / "report.md").exists()


def test_flow_over_an_earlier_flow_keeps_none_of_its_results(tmp_path, monkeypatch, capsys):
    from helu.steps import study

    out = tmp_path / "report"
    write_flow(out, sim=SIM)
    (out / "report.md").write_text("PASS: 968624 elements, 0 mismatches")

    def stop(self, ctx):
        raise RuntimeError("training stopped")

    monkeypatch.setattr(study.StudyStep, "run", stop)
    one_line_error(capsys, "flow", "--out", out, expect="training stopped")
    # the old results cannot be reported as this run's: only this run's own files are left, and
    # its report says it failed
    assert "sim" not in tree(out) and "golden" not in tree(out)
    assert tree(out) == sorted(
        [
            outdir.MARKER,
            ".lock",
            "flow.json",
            "skipped.json",
            "notes.json",
            "timing.json",
            "report.md",
            "summary.json",
        ]
    )
    text = (out / "report.md").read_text()
    assert "PASS" not in text and "This flow failed during step `study`: training stopped" in text
    mine = tmp_path / "mine"
    mine.mkdir()
    (mine / "data.csv").write_text("x")
    one_line_error(capsys, "flow", "--out", mine, expect="did not write")
    assert tree(mine) == ["data.csv"]


def test_report_refuses_another_commands_folder(tmp_path, capsys):
    sim = outdir.prepare(tmp_path / "sim", "sim")
    (sim / "sim").mkdir()
    (sim / "sim" / "summary.json").write_text(json.dumps(SIM))
    (sim / "summary.json").write_text("the sim's own summary")
    one_line_error(capsys, "report", "--out", sim, expect="is a sim folder written by helu")
    assert (sim / "summary.json").read_text() == "the sim's own summary"


def test_failed_or_interrupted_sim_leaves_no_summary(tmp_path, monkeypatch):
    from helu.sim import runner

    if runner.tool_missing("icarus"):
        pytest.skip(runner.tool_missing("icarus"))
    out = outdir.prepare(tmp_path / "sim", "sim")
    (out / "summary.json").write_text(json.dumps(SIM))  # an earlier run's

    def interrupted(*args, **kwargs):
        raise KeyboardInterrupt

    monkeypatch.setattr(runner, "build_unit", interrupted)
    with pytest.raises(KeyboardInterrupt):
        runner.run_golden(small_golden(tmp_path / "g"), units=["forward"], out=out)
    assert not (out / "summary.json").exists()


def test_report_says_not_found_for_missing_tools(tmp_path, monkeypatch):
    from helu import report

    monkeypatch.setenv("PATH", str(tmp_path / "empty"))
    env = report.environment()
    assert env["tools"]["yosys"] == "not found"
    write_flow(tmp_path, sim=SIM)
    assert "| yosys | not found |" in report.write_report(tmp_path)[0].read_text()


# ----------------------------------------------------------------------------- golden folders


def _corrupt(tmp_path, how):
    path = small_golden(tmp_path / "g")
    manifest = json.loads((path / "manifest.json").read_text())
    entry = manifest["sets"][0]
    if how == "hex_zz":
        hexfile = path / entry["hex"]["z"]
        lines = hexfile.read_text().splitlines()
        lines[3] = "zz"
        hexfile.write_text("\n".join(lines) + "\n")
    elif how == "hex_gone":
        (path / entry["hex"]["dz"]).unlink()
    elif how in ("nan", "inf", "alpha_nan"):
        with np.load(path / entry["file"]) as d:
            arrays = {k: d[k] for k in d.files}
        if how == "alpha_nan":
            arrays["alpha"] = np.float64("nan")
        else:
            arrays["z_float"] = np.zeros(arrays["z"].shape, np.float32)
            arrays["z_float"][5] = np.nan if how == "nan" else np.inf
        np.savez_compressed(path / entry["file"], **arrays)
        entry["sha256"] = outdir.sha256_file(path / entry["file"])  # consistent, but wrong
    elif how == "escape":
        outside = tmp_path / "x.npz"
        outside.write_bytes((path / entry["file"]).read_bytes())
        entry["file"] = "../x.npz"
    elif how == "replaced":
        other = random_set("fc1_w8", fixed.Format(8, 5), fixed.Format(8, 6), 0.05, 40, 7)
        small_golden(tmp_path / "other", [other])
        (path / entry["file"]).write_bytes((tmp_path / "other" / entry["file"]).read_bytes())
    elif how == "twice":
        manifest["sets"].append(dict(entry))
    (path / "manifest.json").write_text(json.dumps(manifest))
    return path


@pytest.mark.parametrize(
    "how,expect",
    [
        ("hex_zz", "fc1_w8_z.hex"),
        ("hex_gone", "fc1_w8_dz.hex"),
        ("nan", "z_float holds NaN or infinite values"),
        ("inf", "z_float holds NaN or infinite values"),
        ("alpha_nan", "fc1_w8.npz"),
        ("escape", "leaves the golden folder"),
        ("replaced", "SHA-256 differs from the manifest's"),
        ("twice", "listed twice"),
    ],
)
def test_golden_folder_wrong(tmp_path, how, expect):
    path = _corrupt(tmp_path, how)
    with pytest.raises(ValueError, match=expect.replace(".", r"\.")):
        load_golden(path)


def test_golden_inconsistent_with_its_own_format_is_not_an_rtl_error(tmp_path, capsys):
    from helu.golden.vectors import GoldenSet

    (s,) = load_golden(small_golden(tmp_path / "ok"))[1]
    mask = s.mask.copy()
    i = int(np.flatnonzero(mask)[0])
    mask[i] = not mask[i]
    fields = {k: getattr(s, k) for k in GoldenSet.__dataclass_fields__} | {"mask": mask}
    small_golden(tmp_path / "bad", [GoldenSet(**fields)])
    one_line_error(capsys, "sim", "--golden", tmp_path / "bad", "--unit", "forward-train",
                   "--out", tmp_path / "sim", expect="golden set fc1_w8 is inconsistent with "
                   "its own format")  # fmt: skip
    assert not (tmp_path / "sim").exists()


# ----------------------------------------------------------------------------- processes


def _helu(*argv, cwd=None):
    return subprocess.Popen(
        [sys.executable, "-m", "helu", "-q", *map(str, argv)],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        cwd=cwd,
    )


def _wait_for(condition, seconds=60.0):
    end = time.monotonic() + seconds
    while time.monotonic() < end:
        found = condition()
        if found:
            return found
        time.sleep(0.05)
    return None


def _terminate_when(proc, ready, what) -> str:
    """Send SIGTERM to ``proc`` once ``ready()`` holds; returns its stderr."""
    try:
        assert _wait_for(ready), what
        time.sleep(0.3)
        proc.send_signal(signal.SIGTERM)
        return proc.communicate(timeout=60)[1]
    finally:
        if proc.poll() is None:
            proc.kill()


def _processes_in(folder) -> list[int]:
    """Pids of processes whose working folder is ``folder`` or below it."""
    pids = []
    for proc in os.listdir("/proc"):
        if proc.isdigit():
            try:
                cwd = os.readlink(f"/proc/{proc}/cwd")
            except OSError:
                continue
            if cwd == str(folder) or cwd.startswith(f"{folder}/"):
                pids.append(int(proc))
    return pids


@pytest.mark.slow
def test_sigterm_to_synth_kills_yosys(tmp_path):
    from helu.hw.tools import find_tool

    try:
        find_tool("yosys")
    except Exception as exc:
        pytest.skip(str(exc))
    out = tmp_path / "s"
    # i-GELU at 16 lanes keeps Yosys busy for minutes; two runs so that the worker pool is used
    proc = _helu("synth", "--unit", "igelu", "--target", "generic", "--width", "8,16",
                 "--lanes", "16", "--jobs", "2", "--out", out)  # fmt: skip
    err = _terminate_when(proc, lambda: out.is_dir() and _processes_in(out), "no yosys started")
    assert proc.returncode == 143, err
    assert err.strip().splitlines()[-1] == "helu: terminated", err
    assert _wait_for(lambda: not _processes_in(out), 10), _processes_in(out)
    assert not [p for p in tmp_path.iterdir() if p.name.startswith(".")]


@pytest.mark.slow
def test_sigterm_to_verilog_leaves_no_scratch_folder(tmp_path):
    proc = _helu("verilog", "--unit", "all", "--width", "16", "--lanes", "64", "--out",
                 tmp_path / "v_term")  # fmt: skip
    err = _terminate_when(proc, lambda: list(tmp_path.glob(".v_term.*")), "no scratch folder")
    assert proc.returncode == 143, err
    assert err.strip().splitlines() == ["helu: terminated"], err  # no "created but never used"
    assert list(tmp_path.iterdir()) == []


@pytest.mark.parametrize("command", ["verilog", "sim"])
def test_lanes_capped_up_front(tmp_path, capsys, command):
    from helu.hw.units import MAX_LANES

    golden = ["--golden", small_golden(tmp_path / "g")] if command == "sim" else []
    start = time.monotonic()
    one_line_error(capsys, command, *golden, "--lanes", "100000", "--out", tmp_path / "o",
                   expect=f"Lane count must be at most {MAX_LANES}, not 100000")  # fmt: skip
    assert time.monotonic() - start < 5
    assert not (tmp_path / "o").exists()


# ----------------------------------------------------------------------------- messages


@pytest.mark.parametrize(
    "argv,expect",
    [
        (
            ["--alpha", "1e308"],
            "alpha=1e+308 covers every negative code of Q8.4 (T clamps to -129)",
        ),
        (["--frac", "20"], "alpha=0.05 covers every negative code of Q8.20"),
    ],
)
def test_degenerate_band_warns_in_one_line(tmp_path, capsys, argv, expect):
    rc, _, err = cli(capsys, "verilog", "--unit", "forward-train", *argv, "--out", tmp_path / "v")
    assert rc == 0
    assert len(err) == 1 and err[0].startswith("helu: warning: ") and expect in err[0], err


def test_tiny_alpha_advice_stays_in_range():
    note = fixed.alpha_note(1e-300, fixed.Format(8, 4))
    assert "997" not in note and f"at most {fixed.MAX_FRAC} fractional bits" in note


def _damaged_checkpoint(checkpoint, tmp_path, drop):
    import torch

    ckpt = torch.load(checkpoint, weights_only=True)
    del ckpt[drop]
    path = tmp_path / f"no_{drop}.pt"
    torch.save(ckpt, path)
    return path


@pytest.mark.parametrize("drop", ["split", "accuracy"])
def test_checkpoint_without_a_key(tmp_path, checkpoint, capsys, drop):
    bad = _damaged_checkpoint(checkpoint, tmp_path, drop)
    one_line_error(capsys, *golden_args(bad, tmp_path / "g"),
                   expect=f"damaged helu checkpoint (no {drop})")  # fmt: skip
    assert not (tmp_path / "g").exists()


def test_checkpoint_that_is_a_folder(tmp_path, capsys):
    one_line_error(capsys, "golden", "--checkpoint", tmp_path, "--out", tmp_path / "g",
                   expect="is a folder; pass one of its .pt files")  # fmt: skip


def test_quiet_after_the_subcommand(tmp_path, capsys):
    rc = main(["verilog", "-q", "--out", str(tmp_path / "v")])
    assert rc == 0
    assert capsys.readouterr().err == ""  # -q took effect (no INFO lines)
