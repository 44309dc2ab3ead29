"""`helu study collapse`: the grid, its files, plots and report section.

The science (initialization, batched training, born-dead detection, Wilson, McNemar, and the
analysis: the significance rule, the helps/null/hurts verdicts, the check against Lu et al.) is
in ``helu.golden.collapse``; this module chooses the cells (presets), runs them through an
executor (``helu.common.executor``), keeps one raw file per cell so that an interrupted grid
resumes where it stopped, and presents the analysis as ``collapse.json``, ``collapse.md`` and
plots.

Files under the study folder:

- ``cells/<key>.json``: per-seed outcomes of one cell (``golden.collapse.run_cell``'s record);
- ``collapse.json``: every cell's summary, the check against Lu et al., the verdict counts;
- ``collapse.md``: the same as tables; ``*.png``: the plots.
"""

import json
import logging
import time
from dataclasses import asdict, replace
from pathlib import Path

from helu.markdown import table

__all__ = [
    "PRESETS",
    "preset_cells",
    "run_study",
    "render_markdown",
    "estimate_seconds",
]

log = logging.getLogger(__name__)

# Each preset: the grid's axes and the per-cell settings. `quick` is the flow's step
# (helu.steps.collapse; ~10-30 s on one core); `results` is the 16-cell grid behind
# docs/results/collapse.md (~15 CPU minutes);
# `full` is the whole grid of the study (hours; see the README for the measured cost).
PRESETS = {
    "quick": {
        "widths": (2,),
        "depths": (5,),
        "biases": ("symmetric",),
        "optimizers": ("adam",),
        "targets": ("abs",),
        "arms": ("relu", "helu:0.1", "helu:0.5"),
        "seeds": 200,
        "steps": 400,
    },
    "results": {
        "widths": (2, 3),
        "depths": (5, 10),
        "biases": ("zero", "symmetric", "rai"),
        "optimizers": ("adam",),
        "targets": ("abs",),
        "seeds": 200,
        "steps": 1000,
        # and, on the symmetric-bias width-2 cells (depth 5, 10), SGD and the sin target
    },
    "full": {
        "widths": (2, 3, 4, 5, 6, 7, 8),
        "depths": (5, 10, 20, 30, 40),
        "biases": ("zero", "symmetric", "rai"),
        "optimizers": ("adam", "sgd"),
        "targets": ("abs", "sin"),
        "seeds": 200,
        "steps": 1000,
    },
}


def preset_cells(name: str, **overrides) -> list:
    """The cells of preset ``name``; ``overrides`` replace an axis or a per-cell setting
    (``widths``, ``depths``, ``biases``, ``optimizers``, ``targets``, ``arms``, ``seeds``,
    ``steps``, ``lr``)."""
    from helu.golden.collapse import ARMS, Cell

    if name not in PRESETS:
        raise ValueError(f"unknown preset {name!r}; choose from {', '.join(PRESETS)}")
    grid = dict(PRESETS[name]) | {k: v for k, v in overrides.items() if v is not None}
    settings = {k: grid[k] for k in ("seeds", "steps", "lr") if k in grid}
    settings["arms"] = tuple(grid.get("arms", ARMS))
    if "relu" not in settings["arms"]:
        raise ValueError("--arms must include relu, the reference every arm is paired with")
    cells = [
        Cell(width=w, depth=d, bias=b, optimizer=o, target=t, **settings)
        for t in grid["targets"]
        for o in grid["optimizers"]
        for b in grid["biases"]
        for w in grid["widths"]
        for d in grid["depths"]
    ]
    axes_overridden = any(k in overrides and overrides[k] is not None for k in ("widths",
                          "depths", "biases", "optimizers", "targets"))  # fmt: skip
    if name == "results" and not axes_overridden:
        base = Cell(width=2, depth=5, bias="symmetric", **settings)
        cells += [replace(base, depth=d, optimizer="sgd") for d in (5, 10)]
        cells += [replace(base, depth=d, target="sin") for d in (5, 10)]
    return cells


def estimate_seconds(cells, probe_steps: int = 3) -> dict:
    """Predicted CPU seconds of ``cells`` on this machine, from short probes.

    Per width, the shallowest and deepest cell run ``probe_steps`` steps; a step's cost is
    taken as linear in depth between them and proportional to the number of arms. Returns
    ``{"seconds": total, "probes": {"w2-d5": s_per_step, ...}}``.
    """
    from helu.golden.collapse import run_cell

    cells = list(cells)
    probes = {}
    run_cell(replace(cells[0], depth=1, steps=1, seeds=2))  # first-call costs out of the probes
    for width in sorted({c.width for c in cells}):
        depths = sorted({c.depth for c in cells if c.width == width})
        base = next(c for c in cells if c.width == width)
        for depth in dict.fromkeys((depths[0], depths[-1])):
            start = time.process_time()
            run_cell(replace(base, depth=depth, steps=probe_steps))
            # the init and the final evaluation cost about one step
            probes[(width, depth)] = (time.process_time() - start) / (probe_steps + 1)
    total = 0.0
    for c in cells:
        depths = sorted(d for w, d in probes if w == c.width)
        lo, hi = depths[0], depths[-1]
        t = probes[(c.width, lo)]
        if hi > lo:
            t += (probes[(c.width, hi)] - t) * (c.depth - lo) / (hi - lo)
        total += t * (c.steps + 1) * len(c.arms) / len(base.arms)
    return {"seconds": total, "probes": {f"w{w}-d{d}": t for (w, d), t in probes.items()}}


def _cell_fields(cell) -> dict:
    # As a saved record has them: tuples as lists, the learning rate resolved.
    return json.loads(json.dumps(asdict(cell) | {"lr": cell.learning_rate}))


def _load_done(cell, folder: Path):
    path = folder / f"{cell.key}.json"
    try:
        record = json.loads(path.read_text())
    except (FileNotFoundError, json.JSONDecodeError, UnicodeDecodeError):
        return None
    fields = _cell_fields(cell)
    return record if all(record.get(k) == v for k, v in fields.items()) else None


def run_study(cells, out_dir, executor=None, *, resume: bool = True) -> dict:
    """Run (or reuse) every cell, then write ``collapse.json``, ``collapse.md`` and the plots.

    A cell whose raw file under ``cells/`` was made with the same settings is reused, so a grid
    stopped halfway resumes where it stopped; ``resume=False`` reruns every cell.
    """
    from helu.golden.collapse import analyse, run_cells

    out_dir = Path(out_dir)
    folder = out_dir / "cells"
    folder.mkdir(parents=True, exist_ok=True)
    cells = list(cells)
    records = [_load_done(c, folder) if resume else None for c in cells]
    todo = [c for c, r in zip(cells, records, strict=True) if r is None]
    if len(todo) < len(cells):
        log.info("reusing %d of %d cells from %s", len(cells) - len(todo), len(cells), folder)
    start = time.monotonic()

    def done(index, record):
        path = folder / f"{record['key']}.json"
        tmp = path.with_suffix(".part")
        tmp.write_text(json.dumps(record) + "\n")
        tmp.replace(path)  # a half-written file never looks like a finished cell
        log.info(
            "[%d/%d] %s: %.0f s (%.0f s so far)",
            done.count + 1,
            len(todo),
            record["key"],
            record["seconds"],
            time.monotonic() - start,
        )
        done.count += 1

    done.count = 0
    fresh = iter(run_cells(todo, executor, done) if todo else [])
    records = [r if r is not None else next(fresh) for r in records]
    analysis = analyse(records)
    analysis["wall_seconds"] = time.monotonic() - start
    analysis["plots"] = plot(analysis, out_dir)
    (out_dir / "collapse.json").write_text(json.dumps(analysis, indent=1) + "\n")
    (out_dir / "collapse.md").write_text(render_markdown(analysis) + "\n")
    return analysis


# -------------------------------------------------------------------------------------- plots


def _groups(cells, *fields):
    groups: dict = {}
    for c in cells:
        groups.setdefault(tuple(c[f] for f in fields), []).append(c)
    return groups


def plot(analysis: dict, out_dir) -> list[str]:
    """P(collapse) and P(good fit) against depth per width, each arm; heat maps of the paired
    HeLU - ReLU difference. Returns the file names written (none when matplotlib is missing)."""
    from helu.golden.collapse import SIGNIFICANCE

    try:
        import matplotlib

        matplotlib.use("Agg")
        import matplotlib.pyplot as plt
    except ImportError:
        log.warning("no plots: matplotlib is not installed")
        return []
    out_dir = Path(out_dir)
    labels = analysis["labels"]
    written = []
    for (bias, opt, tgt), cells in _groups(
        analysis["cells"], "bias", "optimizer", "target"
    ).items():
        widths = sorted({c["width"] for c in cells})
        depths = sorted({c["depth"] for c in cells})
        if len(depths) < 2:
            continue
        fig, axes = plt.subplots(
            2, len(widths), figsize=(3.6 * len(widths), 6), squeeze=False, sharey=True
        )
        for col, width in enumerate(widths):
            row_cells = sorted((c for c in cells if c["width"] == width), key=lambda c: c["depth"])
            for row, what in enumerate(("collapsed", "good")):
                ax = axes[row][col]
                for arm in row_cells[0]["arms"]:
                    xs = [c["depth"] for c in row_cells]
                    rates = [c["arms"][arm][what] for c in row_cells]
                    p = [r["p"] for r in rates]
                    err = [[r["p"] - r["lo"] for r in rates], [r["hi"] - r["p"] for r in rates]]
                    ax.errorbar(xs, p, yerr=err, marker="o", ms=3, capsize=2, label=labels[arm])
                ax.set_title(f"width {width}", fontsize=9)
                ax.set_xlabel("depth (hidden layers)")
                ax.set_ylim(-0.02, 1.02)
                if col == 0:
                    ax.set_ylabel("P(collapsed)" if what == "collapsed" else "P(good fit)")
        axes[0][0].legend(fontsize=7)
        fig.suptitle(f"{bias} bias, {opt}, target {tgt}: 95 % Wilson intervals", fontsize=10)
        fig.tight_layout()
        name = f"collapse_{bias}_{opt}_{tgt}.png"
        fig.savefig(out_dir / name, dpi=110)
        plt.close(fig)
        written.append(name)
    for (opt, tgt), cells in _groups(analysis["cells"], "optimizer", "target").items():
        biases = list(dict.fromkeys(c["bias"] for c in cells))
        arms = [a for a in dict.fromkeys(a for c in cells for a in c["arms"]) if a != "relu"]
        widths = sorted({c["width"] for c in cells})
        depths = sorted({c["depth"] for c in cells})
        if not arms:
            continue
        for what in ("good", "collapsed"):
            fig, axes = plt.subplots(
                len(biases),
                len(arms),
                figsize=(
                    1.2 + 1.0 * len(depths) * len(arms),
                    0.9 + 0.7 * len(widths) * len(biases),
                ),
                squeeze=False,
            )
            image = None
            for i, bias in enumerate(biases):
                for j, arm in enumerate(arms):
                    grid = [[float("nan")] * len(depths) for _ in widths]
                    for c in cells:
                        test = c["arms"].get(arm, {}).get(f"vs_relu_{what}")
                        if c["bias"] == bias and test is not None:
                            d = test["diff"]
                            grid[widths.index(c["width"])][depths.index(c["depth"])] = d
                            star = "*" if test["p"] < SIGNIFICANCE else ""
                            axes[i][j].text(
                                depths.index(c["depth"]),
                                widths.index(c["width"]),
                                f"{100 * d:+.0f}{star}",
                                ha="center",
                                va="center",
                                fontsize=7,
                            )
                    ax = axes[i][j]
                    image = ax.imshow(grid, cmap="RdBu", vmin=-0.5, vmax=0.5, aspect="auto")
                    ax.set_xticks(range(len(depths)), [str(d) for d in depths], fontsize=7)
                    ax.set_yticks(range(len(widths)), [str(w) for w in widths], fontsize=7)
                    if i == 0:
                        ax.set_title(labels[arm], fontsize=8)
                    if j == 0:
                        ax.set_ylabel(f"{bias}\nwidth", fontsize=8)
                    if i == len(biases) - 1:
                        ax.set_xlabel("depth", fontsize=8)
            outcome = "P(good fit)" if what == "good" else "P(collapsed)"
            fig.suptitle(
                f"{opt}, target {tgt}: paired difference in {outcome}, HeLU - ReLU "
                f"(percentage points; * McNemar p < {SIGNIFICANCE:g})",
                fontsize=9,
            )
            fig.colorbar(image, ax=axes, shrink=0.8)
            name = f"paired_{what}_{opt}_{tgt}.png"
            fig.savefig(out_dir / name, dpi=110)
            plt.close(fig)
            written.append(name)
    return written


# ----------------------------------------------------------------------------------- markdown


def _rate(r, with_k=True) -> str:
    if r["n"] == 0:
        return "n/a (0)"
    text = f"{r['p']:.2f} [{r['lo']:.2f}, {r['hi']:.2f}]"
    return f"{text} ({r['k']}/{r['n']})" if with_k else text


def _seconds(c) -> str:
    cpu = c.get("cpu_seconds")
    return f"{c['seconds']:.0f} s" + ("" if cpu is None else f", {cpu:.0f} s CPU")


def _test(t) -> str:
    if t is None:
        return ""
    return f"{t['arm_only']} vs {t['ref_only']}, p={t['p']:.2g}"


NO_BOUND = "none (biases not zero)"
"""The bounds column of a row whose biases are not zero (``dead_ray_bound`` needs zero biases)."""


def render_markdown(analysis: dict, *, image_prefix: str = "") -> str:
    """Tables of every cell, the Lu et al. check and the verdict counts (Markdown)."""
    d = analysis["definitions"]
    labels = analysis["labels"]
    parts = [
        "Definitions: **born dead**: " + d["born_dead"] + "; **collapsed**: " + d["collapsed"]
        + "; **good fit**: " + d["good_fit"] + "; **recovered**: " + d["recovered"]
        + "; HeLU scaled: " + d["helu_scaled"] + ". Intervals: 95 % Wilson (rates), order "
        "statistics (median NMSE = MSE/Var(target)). Paired tests against ReLU on the same "
        f"initializations: `arm-only vs ReLU-only` discordant pairs, {d['significance']}. "
        f"Arithmetic: {d['dtype']}.",
        "",
    ]  # fmt: skip
    lu = analysis["lu_check"]
    rows = [
        (
            r["bias"],
            r["width"],
            r["depth"],
            _rate(r["born_dead"]),
            f"[{r['bound_lo']:.2f}, {r['bound_hi']:.2f}]" if "bound_hi" in r else NO_BOUND,
            ("yes" if r["within"] else "**no**") if "within" in r else "–",
        )
        for r in lu
    ]
    parts += [
        "**ReLU born dead at initialization**, beside the bounds for zero biases (both paths "
        "x=+1 and x=-1 die; each dies within L layers with probability "
        "u = 1-(1-2^-width)^L; P in [2u-1, u]). The bounds hold for zero biases only: with "
        f'other biases the net is not positively homogeneous, so a row says "{NO_BOUND}" '
        "there:",
        "",
        table(["bias", "width", "depth", "P(born dead)", "bounds (zero bias)", "CI meets"], rows),
        "",
    ]
    for c in analysis["cells"]:
        rows = []
        for arm, e in c["arms"].items():
            m = e["median_nmse"]
            rows.append(
                (
                    labels[arm],
                    _rate(e["collapsed"]),
                    _rate(e["good"]),
                    _rate(e["recovered"]),
                    f"{m['median']:.3g} [{m['lo']:.3g}, {m['hi']:.3g}]",
                    e["diverged"],
                    _test(e.get("vs_relu_collapsed")),
                    _test(e.get("vs_relu_good")),
                )
            )
        parts += [
            f"**{c['key']}** (width {c['width']}, depth {c['depth']}, {c['bias']} bias, "
            f"{c['optimizer']} lr {c['lr']:g}, {c['steps']} steps, target {c['target']}, "
            f"{c['seeds']} seeds, {_seconds(c)}): born dead {_rate(c['born_dead'])}",
            "",
            table(
                [
                    "arm",
                    "P(collapsed)",
                    "P(good fit)",
                    "recovered (of born dead)",
                    "median NMSE",
                    "diverged",
                    "collapsed: arm vs ReLU",
                    "good: arm vs ReLU",
                ],
                rows,
            ),
            "",
        ]
    rows = []
    for arm, by in analysis["verdicts"].items():
        for what, slot in by.items():
            rows.append(
                (
                    labels[arm],
                    "good fit" if what == "good" else "collapse",
                    len(slot["helps"]),
                    len(slot["null"]),
                    len(slot["hurts"]),
                )
            )
    if rows:
        parts += [
            "**HeLU against ReLU, cells by paired outcome** (helps: significantly more good "
            "fits, or fewer collapses):",
            "",
            table(["arm", "outcome", "helps", "null", "hurts"], rows),
            "",
        ]
    for name in analysis.get("plots", []):
        parts += [f"![{name}]({image_prefix}{name})", ""]
    cpu = analysis["cpu_seconds"]
    parts.append(
        f"{len(analysis['cells'])} cells, {analysis['seconds']:.0f} s wall"
        + ("" if cpu is None else f", {cpu:.0f} s CPU")
        + " (sum over cells)."
    )
    return "\n".join(parts)
