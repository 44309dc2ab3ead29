"""Step ``synth``: every unit through Yosys/nextpnr (iCE40 and generic gates by default) into
``<out>/synth/``, the configurations of ``verilog/`` from those very files (checked by SHA-256; a
unit's lane limit may keep one out, which the notes say), and the cost against accuracy plot."""

import logging

from helu.steps.base import DONE, FAIL, Context, Step, Verdict, need

__all__ = ["STEP", "SynthStep", "check_shipped"]

log = logging.getLogger(__name__)


def check_shipped(ctx: Context, results) -> None:
    """Every file of verilog/ must be what each target synthesized (same SHA-256), unless its
    unit's lane limit kept it out (said in the notes)."""
    from helu.common.outdir import sha256_file
    from helu.hw.units import UNITS

    synthesized = {(r["target"], r.get("verilog_sha256")) for r in results}
    targets = {r["target"] for r in results}
    for unit, params, made in ctx.shared.get("generated", []):
        cap = UNITS[unit].max_lanes
        if cap is not None and params.lanes > cap:
            ctx.notes.append(
                f"{made.verilog.name} was simulated but not synthesized: "
                f"{UNITS[unit].max_lanes_why}."
            )
            continue
        digest = sha256_file(made.verilog)
        missing = sorted(t for t in targets if (t, digest) not in synthesized)
        if missing:
            raise RuntimeError(
                f"verilog/{made.verilog.name} (sha256 {digest[:12]}) is not the file "
                f"{', '.join(missing)} synthesized"
            )


def _progress(done, total, record):
    what = f"{record['unit']} {record['target']} W{record['width']} x{record['lanes']}"
    what += f" ({record['threshold']} T)" if record.get("threshold") else ""
    error = f": {record['error']}" if "error" in record else ""
    log.info("      [%d/%d] %s%s", done, total, what, error)


class SynthStep(Step):
    name = "synth"
    title = "Synthesis"
    record = "synth/results.json"

    def doing(self, ctx):
        return f"synthesizing every unit ({', '.join(ctx.options.targets)})"

    def run(self, ctx: Context) -> None:
        from helu.common import outdir
        from helu.hw.synth import source_key, sweep, sweep_params
        from helu.hw.units import UNITS
        from helu.synthreport import plot_cost_vs_accuracy, write_results

        opts = ctx.options
        groups = {}  # lane counts -> units synthesized at them
        for unit in opts.units:
            cap = UNITS[unit].max_lanes  # the unit's own limit, from the registry
            lanes = tuple(n for n in opts.synth_lanes if cap is None or n <= cap)
            if cap is not None and lanes != opts.synth_lanes:
                lanes = lanes or (min(opts.synth_lanes),)
                ctx.notes.append(
                    f"{unit} was synthesized at {', '.join(map(str, lanes))} lane(s) only: "
                    f"{UNITS[unit].max_lanes_why}; run 'helu synth --unit {unit} --lanes "
                    f"{','.join(map(str, opts.synth_lanes))}' for the rest."
                )
            groups.setdefault(lanes, []).append(unit)
        generated = ctx.shared.get("generated", [])
        results, skipped = [], {}
        for lanes, units in groups.items():
            done, skipped = sweep(
                units,
                sweep_params(
                    opts.synth_widths,
                    lanes,
                    frac=ctx.shared.get("frac_by_width", {}),
                    thresholds=("constant", "port"),
                ),
                opts.targets,
                seeds=opts.fmax_seeds,
                out_dir=ctx.out / "synth",
                jobs=opts.jobs,
                progress=_progress,
                # verilog/'s files are synthesized as they are, not generated again
                sources={source_key(u, p): made for u, p, made in generated},
            )
            results += done
        write_results(results, ctx.out / "synth", skipped=skipped)
        outdir.mark(ctx.out / "synth", "synth")
        if not results:
            ctx.skip(self.name, "; ".join(f"{t}: {r}" for t, r in skipped.items()))
            return
        failed = [r for r in results if "error" in r]
        if failed:
            raise RuntimeError(
                f"{len(failed)} synthesis runs failed; first: {failed[0]['error']} "
                f"(see {ctx.out / 'synth' / 'results.md'})"
            )
        check_shipped(ctx, results)
        try:
            metrics = (ctx.shared.get("metrics") or {}).get("results", [])
            caption = plot_cost_vs_accuracy(
                results, metrics, ctx.out / "synth" / "cost_vs_accuracy.png"
            )
            (ctx.out / "synth" / "cost_vs_accuracy.txt").write_text(caption + "\n")
        except ValueError as exc:
            log.warning("      no cost/accuracy plot: %s", exc)

    def check(self, data, path):
        super().check(data, path)
        results = data.get("results")
        need(path, isinstance(results, list), "no 'results' list")
        for r in results:
            need(path, isinstance(r, dict), "a record is not an object")
            for key in ("unit", "target", "width", "lanes"):
                need(path, key in r, f"a record has no {key!r}")

    def summary(self, data):
        records = data["results"]
        keys = ("unit", "target", "width", "lanes", "threshold", "lut", "gates", "ff", "carry")
        keys += ("fmax_mhz", "harness", "verilog_sha256", "error")
        return [{k: r.get(k) for k in keys} for r in records]

    def verdict(self, data, found, out_dir):
        records = data["results"]
        failed = [r for r in records if "error" in r]
        checked = f"{len(records)} designs synthesized"
        if failed:
            return Verdict(FAIL, checked, f"{len(failed)} runs failed")
        return Verdict(DONE, checked)

    def section(self, data, found, out_dir):
        from helu.synthreport import markdown_table, ratio_table

        records = data["results"]
        parts = [
            "Area of each unit alone (Yosys, out of context); Fmax from nextpnr, median over "
            "seeds, measured inside a register-fed timing harness where `harness` says yes (a wide "
            "unit has more ports than the package has pins).\n",
            markdown_table(records),
        ]
        ratios = ratio_table(records)
        if ratios:
            parts += ["i-GELU cost as a multiple of the HeLU forward unit:\n", ratios]
        for target, reason in (data.get("skipped") or {}).items():
            parts.append(f"- {target} skipped: {reason}")
        for plot in sorted((out_dir / "synth").glob("*.png")):
            caption = plot.with_suffix(".txt")
            text = caption.read_text().strip() if caption.is_file() else plot.stem
            parts += [f"![{plot.stem}](synth/{plot.name})", "", f"_{text}_", ""]
        return parts


STEP = SynthStep()
