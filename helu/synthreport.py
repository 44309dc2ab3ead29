"""The report layer of synthesis: Markdown tables, the results files, the cost/accuracy plot.

``hw.synth`` measures and returns records; this module only presents them.
"""

import json
from pathlib import Path

from helu.hw.synth import TARGETS

__all__ = ["markdown_table", "ratio_table", "write_results", "plot_cost_vs_accuracy"]


def _fmt(value, digits: int = 0) -> str:
    if value is None:
        return "–"
    if isinstance(value, float):
        if digits == 0 and value.is_integer():
            return str(int(value))
        return f"{value:.{digits or 2}f}"
    return str(value)


def _sha(digest) -> str:
    return f"`{digest[:12]}`" if digest else "–"


def markdown_table(results) -> str:
    """One Markdown table row per record, grouped by target then width and lanes.

    Columns: unit, target, width, lanes, threshold kind (``constant`` or ``port`` T, so the two
    builds of a unit with a threshold sit side by side), LUT4 (or gates on ``generic``), LUT/lane,
    FF, FF/lane, carry, DSP, RAM, Fmax (median, MHz), Fmax per seed, and "harness" (yes when the
    Fmax was measured inside ``hw.harness.Harness``), and the synthesized Verilog file's SHA-256
    (first 12 hex digits). A failed run shows its error instead.
    """
    head = (
        "| unit | target | width | lanes | T | LUT4 / gates | per lane | FF | FF/lane | carry "
        "| DSP | RAM | Fmax MHz | Fmax seeds | harness | sha256 |"
    )
    lines = [head, "|" + "---|" * head.count(" | ") + "---|"]
    targets = list(TARGETS)
    rows = sorted(
        results,
        key=lambda r: (
            targets.index(r["target"]) if r["target"] in targets else 99,
            r["width"],
            r["lanes"],
        ),
    )
    for r in rows:
        kind = r.get("threshold") or "–"
        key = f"| {r['unit']} | {r['target']} | {r['width']} | {r['lanes']} | {kind} |"
        if "error" in r:
            lines.append(f"{key} failed: {r['error']} |" + " |" * 10)
            continue
        is_gates = r.get("lut") is None
        logic = r["gates"] if is_gates else r["lut"]
        per_lane = r["gates_per_lane"] if is_gates else r["lut_per_lane"]
        logic_s = f"{logic} gates" if is_gates else str(logic)
        seeds = ", ".join(f"{v:.1f}" for v in r.get("fmax_seeds") or []) or "–"
        if r.get("fmax_mhz") is not None:
            fmax = _fmt(r["fmax_mhz"], 1)
        elif "does not fit" in (r.get("fmax_reason") or ""):
            fmax = "does not fit"
        else:
            fmax = "–"
        lines.append(
            f"{key} {logic_s} | {per_lane:.2f} | {r['ff']} | {r['ff_per_lane']:.2f} | "
            f"{_fmt(r.get('carry'))} | {_fmt(r.get('dsp'))} | {_fmt(r.get('ram'))} | {fmax} | "
            f"{seeds} | {'yes' if r.get('harness') else 'no'} | {_sha(r.get('verilog_sha256'))} |"
        )
    return "\n".join(lines) + "\n"


def ratio_table(results, unit: str = "igelu", reference: str = "forward") -> str:
    """Markdown: ``unit``'s LUT4 and Fmax as multiples of ``reference``'s, per matching config.

    Empty string when no configuration has both units without errors.
    """
    by_key = {
        (r["unit"], r["target"], r["width"], r["lanes"]): r for r in results if "error" not in r
    }
    lines = []
    for (u, target, width, lanes), r in sorted(by_key.items(), key=lambda kv: kv[0][1:]):
        ref = by_key.get((reference, target, width, lanes))
        if u != unit or ref is None:
            continue
        cost, ref_cost = (
            (r["lut"], ref["lut"]) if r.get("lut") is not None else (r["gates"], ref["gates"])
        )
        lut_ratio = f"{cost / ref_cost:.1f}x" if ref_cost else f"{cost} vs 0"
        if r.get("fmax_mhz") and ref.get("fmax_mhz"):
            f_ratio = f"{r['fmax_mhz'] / ref['fmax_mhz']:.2f}x"
        else:
            f_ratio = "–"
        lines.append(
            f"| {target} | {width} | {lanes} | {cost} / {ref_cost} | {lut_ratio} | {f_ratio} |"
        )
    if not lines:
        return ""
    head = (
        f"| target | width | lanes | LUT4 (gates) {unit} / {reference} | LUT ratio "
        f"| Fmax ratio |\n|---|---|---|---|---|---|\n"
    )
    return head + "\n".join(lines) + "\n"


def _key(record) -> tuple:
    return tuple(record.get(k) for k in ("unit", "target", "width", "lanes", "threshold"))


def write_results(results, out_dir, *, skipped=None, merge=True) -> tuple[Path, Path]:
    """Write ``results.json`` (the records, plus ``skipped`` targets) and ``results.md``.

    With ``merge`` (default) the records of an earlier ``results.json`` in ``out_dir`` stay, except
    those with the key (unit, target, width, lanes, threshold kind) of a new record, which it
    replaces; so two runs of ``helu synth --out D`` with different units leave both in ``D``.
    """
    out_dir = Path(out_dir)
    out_dir.mkdir(parents=True, exist_ok=True)
    json_path = out_dir / "results.json"
    md_path = out_dir / "results.md"
    results = list(results)
    old = None
    if merge and json_path.is_file():
        try:
            old = json.loads(json_path.read_text())
        except (OSError, ValueError):
            old = None
    if isinstance(old, dict) and isinstance(old.get("results"), list):
        new = {_key(r): r for r in results}
        merged = [new.pop(_key(r), r) for r in old["results"] if isinstance(r, dict)]
        results = merged + list(new.values())  # earlier order kept, new keys at the end
        skipped = {**(old.get("skipped") or {}), **(skipped or {})}
        for target in {r.get("target") for r in results}:
            skipped.pop(target, None)  # a target that ran is no longer skipped
    json_path.write_text(
        json.dumps({"results": list(results), "skipped": skipped or {}}, indent=2, sort_keys=True)
        + "\n"
    )
    text = ["# Synthesis results", "", markdown_table(results)]
    ratios = ratio_table(results)
    if ratios:
        text += ["## i-GELU cost as a multiple of the HeLU forward unit", "", ratios]
    text += [
        "Area: the unit alone, synthesised out of context. Fmax: median over seeds of nextpnr, "
        "measured with the unit inside a timing harness (hw/harness.py: inputs from an LFSR-fed "
        "register, outputs XOR-reduced to one pin) where 'harness' says yes.",
        "",
    ]
    for target, reason in (skipped or {}).items():
        text.append(f"- {target} skipped: {reason}")
    md_path.write_text("\n".join(text) + "\n")
    return json_path, md_path


def plot_cost_vs_accuracy(
    synth_results, study_results, path, *, target: str = "ice40", width: int = 8
) -> str:
    """Scatter test accuracy (golden study) against LUT4 per lane; return the caption.

    One point per activation of ``study_results`` (dicts with ``act``, ``alpha``, ``acc_mean``,
    ``acc_std``; for an activation with several alphas the best mean is plotted), placed at the
    LUT4 per lane of its hardware unit (``UnitInfo.study`` in the registry) on ``target`` at
    ``width``, with the most lanes synthesised. Activations without a unit, or whose unit was not
    synthesised, are left out and named in the caption. Raises ``ValueError`` when no point remains.
    """
    import matplotlib

    from helu.hw.units import study_units

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    cost = {}
    for r in synth_results:
        if "error" in r or r["target"] != target or r["width"] != width or r.get("lut") is None:
            continue
        if r["unit"] not in cost or r["lanes"] > cost[r["unit"]][0]:
            cost[r["unit"]] = (r["lanes"], r["lut_per_lane"])
    best = {}
    for s in study_results:
        act = s["act"]
        if act not in best or s["acc_mean"] > best[act]["acc_mean"]:
            best[act] = s
    points, missing = [], []
    for act, s in best.items():
        unit = study_units().get(act)
        if unit is None:
            missing.append(f"{act} (no hardware unit)")
        elif unit not in cost:
            missing.append(f"{act} (unit {unit} not synthesised for {target} width {width})")
        else:
            points.append((act, unit, s, *cost[unit]))
    if not points:
        raise ValueError(
            f"Nothing to plot: no study activation has a synthesised unit on {target} at width "
            f"{width} ({'; '.join(missing) or 'empty inputs'})"
        )
    # acc_mean may be a fraction (0..1) or a percentage; plot percent either way.
    scale = 100.0 if all(p[2]["acc_mean"] <= 1 for p in points) else 1.0
    fig, ax = plt.subplots(figsize=(5.5, 4))
    for act, unit, s, _lanes, per_lane in points:
        acc, std = scale * s["acc_mean"], scale * (s.get("acc_std") or 0.0)
        ax.errorbar(per_lane, acc, yerr=std or None, fmt="o", capsize=3)
        label = act if not s.get("alpha") else f"{act} (alpha={s['alpha']:g})"
        ax.annotate(
            f"{label}\n{unit}",
            (per_lane, acc),
            textcoords="offset points",
            xytext=(6, 4),
            fontsize=8,
        )
    lanes_used = sorted({p[3] for p in points})
    ax.set_xscale("symlog", linthresh=1)
    ax.set_xlabel(
        f"LUT4 per lane ({target}, width {width}, lanes {'/'.join(map(str, lanes_used))})"
    )
    ax.set_ylabel("test accuracy (%)")
    ax.grid(True, alpha=0.3)
    fig.tight_layout()
    Path(path).parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(path, dpi=120)
    plt.close(fig)
    caption = (
        f"Test accuracy (golden study, best alpha per activation) against LUT4 per lane of "
        f"its unit on {target} at width {width}."
    )
    if missing:
        caption += " Not shown: " + "; ".join(missing) + "."
    return caption
