"""Step ``sim``: the cocotb benches on the files of ``verilog/`` against the golden vectors
(Icarus by default) into ``<out>/sim/``; a mismatch stops the flow.

The report shows the simulation only when its summary records the hash of the golden folder
beside it, and passes it only when every run checked at least every element of the golden sets
it names (``golden/manifest.json``): fewer is incomplete, never a pass.
"""

import logging

from helu.markdown import table
from helu.steps.base import FAIL, INCOMPLETE, PASS, Context, Step, Verdict, is_count, need

__all__ = ["STEP", "SimStep"]

log = logging.getLogger(__name__)


def _fmt(x, spec):
    return "n/a" if x is None else format(x, spec)


class SimStep(Step):
    name = "sim"
    title = "RTL verification (cocotb)"
    record = "sim/summary.json"

    def doing(self, ctx):
        return f"cocotb: every golden element through every unit on {ctx.options.sim}"

    def skip_reason(self, ctx):
        from helu.sim import runner

        sims = ctx.options.simulators
        missing = [why for why in map(runner.tool_missing, sims) if why]
        return "; ".join(missing) if len(missing) == len(sims) else None

    def run(self, ctx: Context) -> None:
        from helu.sim import runner

        usable = tuple(s for s in ctx.options.simulators if not runner.tool_missing(s))
        # The files of verilog/ as they are: what is simulated is what the flow hands out.
        summary = runner.run_generated(
            ctx.out / "golden", ctx.shared.get("generated", []), simulators=usable,
            out=ctx.out / "sim",
        )  # fmt: skip
        log.info(
            "      %d elements checked, %d mismatches", summary["checked"], summary["mismatches"]
        )
        if summary["mismatches"] or not summary["checked"]:
            raise RuntimeError(
                f"RTL simulation: {summary['mismatches']} mismatches in {summary['checked']} "
                f"checked elements; see {ctx.out / self.record}"
            )

    def check(self, data, path):
        super().check(data, path)
        for key in ("checked", "mismatches"):
            need(path, is_count(data.get(key)), f"{key!r} is missing or not an integer")
        runs = data.get("runs")
        need(path, isinstance(runs, list), "no 'runs' list")
        for r in runs:
            need(path, isinstance(r, dict), "a run is not an object")
            for key in ("checked", "mismatches"):
                need(path, is_count(r.get(key)), f"a run's {key!r} is missing or not an integer")

    def stale(self, found, out_dir):
        from helu.golden.vectors import golden_digest

        sim = found.get("sim")
        if not sim:
            return None
        if "golden" in found.get("_stale", {}):
            return "it simulated a golden set that does not belong to this study"
        want = sim.get("golden_sha256")
        try:
            have = golden_digest(out_dir / "golden") if found.get("golden") else None
        except OSError:
            have = None
        if want is None:
            return (
                f"{self.record} records no golden-set hash, so it cannot be tied to golden/ "
                "(written by an older helu or by hand); re-run 'helu sim'"
            )
        if have is None:
            return f"no golden/ folder to tie {self.record} to"
        if have != want:
            return (
                f"{self.record} holds results from another golden set than golden/ (its hash "
                "differs); re-run 'helu sim'"
            )
        return None

    def summary(self, data):
        keys = ("top", "simulator", "threshold", "verilog_sha256", "checked", "mismatches")
        return {
            "simulator": data.get("simulator"),
            "checked": data.get("checked"),
            "mismatches": data.get("mismatches"),
            "elements_per_s": data.get("elements_per_s"),
            "runs": len(data.get("runs", [])),
            # each simulated Verilog file by its SHA-256, next to what it was checked on
            "files": [{k: r.get(k) for k in keys} for r in data.get("runs", [])],
        }

    def verdict(self, data, found, out_dir):
        sizes = {s["name"]: s["elements"] for s in (found.get("golden") or {}).get("sets", [])}
        short = []
        for r in data.get("runs", []):
            names = r.get("golden_sets") or []
            unknown = [n for n in names if n not in sizes]
            expected = sum(sizes.get(n, 0) for n in names)
            if not names or unknown or r["checked"] < expected:
                what = f"of the golden set(s) {', '.join(unknown)}" if unknown else (
                    f"of {expected}" if names else "against no golden set")  # fmt: skip
                short.append(f"`{r.get('top')}` checked {r['checked']} {what}")
        checked = f"{data['checked']} elements"
        if data["mismatches"]:
            return Verdict(FAIL, checked, f"{data['mismatches']} mismatches")
        if not data["checked"] or not data.get("runs") or short:
            why = "; ".join(short) if short else "nothing was checked"
            return Verdict(INCOMPLETE, checked, why)
        return Verdict(PASS, checked + " (every element of the golden sets, per file)")

    def section(self, data, found, out_dir):
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
            for r in data.get("runs", [])
        ]
        verdict = self.verdict(data, found, out_dir)
        said = f"**{verdict.status}**" if verdict.status in (PASS, FAIL) else (
            f"**{verdict.status.upper()}** ({verdict.why})")  # fmt: skip
        head = ["unit", "simulator", "top", "golden sets", "checked", "mismatches", "cycles",
                "elem/s", "sha256"]  # fmt: skip
        return [
            f"{said}: {data.get('checked')} elements checked bit-exactly against the golden "
            f"vectors (and corner cases), {data.get('mismatches')} mismatches. Units with a "
            "threshold are checked with the threshold port (`T` driven per golden set) and with a "
            "constant `T` (the golden sets of that `T`). `sha256` is the simulated Verilog file's "
            "(its first 12 hex digits), the same file as under `verilog/` and in the synthesis "
            "table.\n",
            table(head, rows),
            "",
        ]


STEP = SimStep()
