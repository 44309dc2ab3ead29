"""Step ``prove``: every unit the flow handles proved formally at the widths and lane counts of
``--prove-widths`` x ``--prove-lanes`` (``hw.formal.prove_all``; default
``helu.proofs.FLOW_WIDTHS`` x ``FLOW_LANES``), leaving ``prove/results.json`` and
``prove/results.md``; the report reads only that file. Missing tools skip the step with the
reason; a failed proof stops the flow.
"""

import logging
import time
from pathlib import Path

from helu.proofs import FLOW_LANES, FLOW_WIDTHS, RESULTS, markdown_table, proof_plan, write_results
from helu.steps.base import FAIL, INCOMPLETE, PASS, Context, Step, Verdict, need

__all__ = ["STEP", "ProveStep"]

log = logging.getLogger(__name__)


class ProveStep(Step):
    name = "prove"
    title = "Formal"
    record = RESULTS
    summary_key = "formal"

    def add_arguments(self, parser):
        parser.add_argument(
            "--prove-widths",
            default=",".join(map(str, FLOW_WIDTHS)),
            metavar="W[,W..]",
            help="widths to prove the units at (default: %(default)s)",
        )
        parser.add_argument(
            "--prove-lanes",
            default=",".join(map(str, FLOW_LANES)),
            metavar="L[,L..]",
            help="lane counts to prove the units at (default: %(default)s)",
        )

    def configure(self, args):
        from helu.commands.options import int_list

        widths = getattr(args, "prove_widths", None) or ",".join(map(str, FLOW_WIDTHS))
        lanes = getattr(args, "prove_lanes", None) or ",".join(map(str, FLOW_LANES))
        return {
            "prove_widths": int_list(widths, "--prove-widths"),
            "prove_lanes": int_list(lanes, "--prove-lanes"),
        }

    def doing(self, ctx):
        o = ctx.options
        return (
            f"proving every unit formally (widths {', '.join(map(str, o.prove_widths))}, "
            f"lanes {', '.join(map(str, o.prove_lanes))})"
        )

    def skip_reason(self, ctx):
        from helu.hw.formal import find_toolchain
        from helu.hw.tools import ToolMissing

        try:
            find_toolchain()
        except ToolMissing as exc:
            return str(exc)
        return None

    def run(self, ctx: Context) -> None:
        from helu.common import outdir
        from helu.hw.formal import prove_all

        o = ctx.options
        start = time.monotonic()
        out = Path(ctx.out) / "prove"
        plan, note = proof_plan(o.units, o.prove_widths, every_unit=True)
        results = []
        for units, plan_widths in plan:
            results += prove_all(units, plan_widths, o.prove_lanes, out, jobs=o.jobs)
        if note:
            ctx.notes.append(f"Formal: {note} (docs/formal.md).")
        wall = time.monotonic() - start
        write_results(results, out, wall_seconds=wall, jobs=o.jobs)
        outdir.mark(out, "prove")
        bad = [r for r in results if not r.ok]
        log.info("      %d proofs, %d failed, in %.0f s", len(results), len(bad), wall)
        if bad:
            first = bad[0]
            trace = f"; counterexample: {first.trace}" if first.trace else ""
            raise RuntimeError(
                f"formal proofs: {len(bad)} of {len(results)} failed; first: {first.unit} "
                f"{first.config}: {', '.join(first.failed) or first.detail}{trace} "
                f"(see {out / 'results.md'})"
            )

    def check(self, data, path):
        super().check(data, path)
        records = data.get("proofs")
        need(path, isinstance(records, list), "no 'proofs' list")
        for r in records:
            need(path, isinstance(r, dict), "a proof is not an object")
            for key in ("unit", "config", "properties", "method", "status", "failed", "solver"):
                need(path, key in r, f"a proof has no {key!r}")
            need(path, isinstance(r.get("seconds"), (int, float)), "a proof has no 'seconds'")

    def summary(self, data):
        proofs = data["proofs"]
        return {
            "proofs": len(proofs),
            "proved": sum(p["status"] == "pass" for p in proofs),
            "failed": [f"{p['unit']} {p['config']}" for p in proofs if p["status"] != "pass"],
            "methods": sorted({p["method"] for p in proofs if p["method"]}),
            "solver": sorted({p["solver"] for p in proofs}),
            "wall_seconds": data.get("wall_seconds"),
            "cpu_seconds": round(sum(p.get("cpu_seconds", 0) for p in proofs), 1),
            "jobs": data.get("jobs"),
        }

    def verdict(self, data, found, out_dir):
        proofs = data["proofs"]
        proved = sum(p["status"] == "pass" for p in proofs)
        checked = f"{proved} of {len(proofs)} proofs hold"
        failed = [p for p in proofs if p["status"] == "fail"]
        if failed:
            return Verdict(FAIL, checked, f"{failed[0]['unit']} {failed[0]['config']} fails")
        if not proofs or proved < len(proofs):
            why = "no proof ran" if not proofs else f"{len(proofs) - proved} without a verdict"
            return Verdict(INCOMPLETE, checked, why)
        return Verdict(PASS, checked)

    def seconds(self, data, timing):
        return timing.get(self.name, data.get("wall_seconds"))

    def section(self, data, found, out_dir):
        from helu.steps import number

        proofs = data["proofs"]
        proved = sum(p["status"] == "pass" for p in proofs)
        bmc = sorted({p["unit"] for p in proofs if p["method"] == "bmc"})
        wall = data.get("wall_seconds")
        cpu = sum(p.get("cpu_seconds", 0) for p in proofs)
        parts = [
            f"{proved} of {len(proofs)} proofs hold"
            + (f", in {wall:.0f} s wall time with {data.get('jobs')} jobs" if wall else "")
            + f" ({cpu:.0f} CPU-seconds in all, tools included)."
            + " Each covers every input value, every valid/ready/reset sequence and, with a "
            "threshold port, every `T` the port carries: `function` (each output transfer equals "
            "the unit's integer reference from `golden`), `stream` (o.valid held with a stable "
            "payload until o.ready; no output without an input; nothing lost, duplicated or "
            "reordered), `reset` (no stale transfer after rst) and `throughput` (one transfer per "
            "cycle with i.valid and o.ready high, asserted and covered). `k-induction` holds in "
            "every reachable state; `bmc` holds for the first `depth` cycles from reset only"
            + (
                f" ({', '.join(bmc)}: its pipeline stages hide state the harness cannot see)."
                if bmc
                else "."
            )  # fmt: skip
            + " What the proofs do not cover: the Verilog as written out and the simulators "
            f"(section {number('sim')} checks those against the golden vectors), and synthesis.\n",
            markdown_table(proofs),
        ]
        return parts


STEP = ProveStep()
