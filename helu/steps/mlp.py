"""Step ``mlp``: the integer MLP engine (``helu flow --mlp full|sim|off``).

The integer network of ``golden-net/`` (exported by the intnet step; exported here only when
that step did not run), every test sample through the engine's RTL (``helu.mlp.run_sim``),
synthesis on the iCE40 UP5K (HeLU with Fmax, i-GELU area only; the ECP5 too when the flow's
targets include it). It writes ``<out>/mlp/summary.json``, which the report renders; the report
passes the simulation only when every run checked every sample of the golden folder it names.
"""

import json
import logging
import time

from helu.steps.base import (
    FAIL,
    INCOMPLETE,
    PASS,
    Context,
    Step,
    Verdict,
    is_count,
    need,
)

__all__ = ["STEP", "MlpStep", "SUMMARY", "MARLANN", "expected_samples"]

log = logging.getLogger(__name__)

SUMMARY = "mlp/summary.json"
LANES = 8  # the engine's MACs per cycle (P); "macs" is MACs per sample everywhere
MARLANN = {
    "device": "iCE40 UP5K",
    "macs_per_cycle": 16,
    "mhz": (23, 29),
    "source": "MARLANN (int8 MLP accelerator on the iCE40 UP5K, 16 MACs per cycle)",
}
"""The published anchor the report places the engine beside (not measured here)."""


def expected_samples(out_dir, folder: str) -> int | None:
    """The samples of the golden folder ``<out_dir>/<folder>`` (its manifest's ``samples``),
    or ``None`` when there is no such manifest: what an engine simulation of it must cover."""
    try:
        manifest = json.loads((out_dir / folder / "manifest.json").read_text())
    except (OSError, ValueError):
        return None
    samples = manifest.get("samples") if isinstance(manifest, dict) else None
    return samples if is_count(samples) else None


def sim_verdict(runs, expected: int | None, folder: str) -> Verdict:
    """The verdict of engine simulations ``runs`` of the golden folder ``folder`` that holds
    ``expected`` samples: every run must have checked all of them, without a mismatch."""
    if not runs:
        return Verdict(INCOMPLETE, "no sample", "the engine was not simulated")
    checked = f"{min(r['checked'] for r in runs)} of {expected if expected is not None else '?'} "
    checked += "samples"
    bad = [r for r in runs if r["mismatches"]]
    if bad:
        return Verdict(FAIL, checked, f"{bad[0]['simulator']}: {bad[0]['mismatches']} mismatches")
    if expected is None:
        return Verdict(INCOMPLETE, checked, f"no {folder}/manifest.json to say how many samples")
    short = [r for r in runs if r["checked"] < expected or not r["checked"]]
    if short:
        r = short[0]
        return Verdict(
            INCOMPLETE, checked,
            f"{r['simulator']} checked {r['checked']} of the {expected} samples of {folder}/",
        )  # fmt: skip
    return Verdict(PASS, checked)


class MlpStep(Step):
    name = "mlp"
    title = "Integer MLP engine on chip"
    record = SUMMARY

    def add_arguments(self, parser):
        parser.add_argument(
            "--mlp",
            choices=("full", "sim", "off"),
            default="full",
            help="integer MLP engine step: export + RTL simulation + UP5K synthesis (full), "
            "without synthesis (sim), or skipped (off) (default: %(default)s)",
        )

    def configure(self, args):
        return {"modes": {"mlp": getattr(args, "mlp", "full")}}

    def doing(self, ctx):
        return "integer MLP engine: every test sample through the RTL, synthesis"

    def skip_reason(self, ctx):
        return "helu flow --mlp off" if ctx.options.mode("mlp", "full") == "off" else None

    def run(self, ctx: Context) -> None:
        from helu.golden import intgolden
        from helu.hw.net.mlp import MLP
        from helu.hw.units import unelaborated
        from helu.mlp import SIM_KEYS, run_sim, run_synth
        from helu.sim import runner
        from helu.steps.intnet import GOLDEN

        out = ctx.out / "mlp"
        start = time.monotonic()
        golden = ctx.out / GOLDEN
        if not (golden / intgolden.MANIFEST).is_file():
            golden = intgolden.export_net(out / "golden").parent
        manifest, model, _ = intgolden.load_net(golden)
        usable = tuple(s for s in ctx.options.simulators if not runner.tool_missing(s))
        engine = unelaborated(MLP(model, LANES))  # built for its timing figures only
        summary = {
            "sizes": model.sizes,
            "shifts": model.shifts,
            "lanes": LANES,  # MACs per cycle
            "macs": engine.macs,  # per sample, as in every synthesis and simulation record
            "accuracy": manifest.get("accuracy"),
            "golden": str(golden.relative_to(ctx.out)),
            "cycles_per_sample": engine.cycles_per_sample,
            "latency": engine.latency,
            "sim": [],
            "synth": [],
            "marlann": MARLANN,
        }
        if usable:
            for r in run_sim(golden, simulators=usable, lanes=LANES, out=out / "sim"):
                summary["sim"].append({k: r.get(k) for k in SIM_KEYS})
        else:
            summary["sim_skipped"] = "no simulator available"
        targets = ["up5k"] + (["ecp5"] if "ecp5" in ctx.options.targets else [])
        if ctx.options.mode("mlp", "full") == "sim":
            targets = []
            summary["synth_skipped"] = "helu flow --mlp sim"
        for target in targets:
            summary["synth"] += run_synth(model, targets=[target], activations=["helu"],
                                          lanes=LANES, seeds=ctx.options.fmax_seeds,
                                          out=out / "synth")  # fmt: skip
            summary["synth"] += run_synth(model, targets=[target], activations=["igelu"],
                                          lanes=LANES, out=out / "synth", fmax=False)  # fmt: skip
        summary["seconds"] = time.monotonic() - start
        (ctx.out / SUMMARY).write_text(json.dumps(summary, indent=2) + "\n")
        ctx.seconds["mlp"] = summary["seconds"]
        bad = [r for r in summary["sim"] if r["mismatches"] or not r["checked"]]
        if bad:
            raise RuntimeError(f"MLP engine: {bad[0]['message']}; see {ctx.out / SUMMARY}")

    def check(self, data, path):
        super().check(data, path)
        for key in ("sizes", "shifts", "lanes", "cycles_per_sample", "latency", "sim", "synth"):
            need(path, key in data, f"no {key!r}")
        need(path, isinstance(data["sim"], list), "'sim' is not a list")
        for r in data["sim"]:
            need(path, isinstance(r, dict), "a simulation is not an object")
            for key in ("checked", "mismatches"):
                what = f"a simulation's {key!r} is missing or not a count"
                need(path, is_count(r.get(key)), what)

    def _golden(self, data) -> str:
        from helu.steps.intnet import GOLDEN

        return data.get("golden") or GOLDEN

    def verdict(self, data, found, out_dir):
        if not data["sim"] and data.get("sim_skipped"):
            why = f"RTL simulation skipped: {data['sim_skipped']}"
            return Verdict(INCOMPLETE, "no sample", why)
        folder = self._golden(data)
        return sim_verdict(data["sim"], expected_samples(out_dir, folder), folder)

    def summary(self, data):
        keys = ("activation", "target", "lut", "ff", "dsp", "ram", "fmax_mhz", "samples_per_s")
        return {
            "sizes": data["sizes"],
            "accuracy": data.get("accuracy"),
            "cycles_per_sample": data["cycles_per_sample"],
            "sim": [
                {k: r[k] for k in ("simulator", "checked", "mismatches", "accuracy")}
                for r in data["sim"]
            ],
            "synth": [{k: r.get(k) for k in keys} for r in data["synth"]],
        }

    def section(self, data, found, out_dir):
        from helu.mlp import sim_table, synth_table

        sizes = "-".join(map(str, data["sizes"]))
        lanes = data["lanes"]
        total = sum(a * b for a, b in zip(data["sizes"][:-1], data["sizes"][1:], strict=True))
        acc = data.get("accuracy") or {}
        parts = [
            f"The integer HeLU network {sizes} (shifts {data['shifts']}) on the engine of "
            f"`hw/net/mlp.py` with P = {lanes} multiply-accumulates per cycle: {total} MACs per "
            f"sample, ideal {total / lanes:.0f} cycles; {data['cycles_per_sample']} cycles per "
            f"sample at full rate ({data['cycles_per_sample'] / (total / lanes):.3f} x ideal), "
            f"latency {data['latency']} cycles after the last input transfer.",
            "",
        ]
        if acc:
            parts += [
                f"Accuracy on the digits test split: integer model {acc.get('integer', 0):.4f} "
                f"(float {acc.get('float', 0):.4f}).",
                "",
            ]
        if data["sim"]:
            v = self.verdict(data, found, out_dir)
            said = f"**{v.status}**" if v.status == PASS else f"**{v.status.upper()}** ({v.why})"
            parts += [
                f"{said}: {v.checked} of `{self._golden(data)}/` through the RTL (cocotb):",
                "",
                "```",
                sim_table(data["sim"]),
                "```",
                "",
            ]
            for r in data["sim"]:
                parts.append(f"- {r['simulator']}: {r['message']}")
            parts.append("")
        else:
            parts += [f"RTL simulation skipped: {data.get('sim_skipped')}", ""]
        if data["synth"]:
            parts += [synth_table(data["synth"])]
            by = {(r["target"], r["activation"]): r for r in data["synth"]}
            for target in sorted({r["target"] for r in data["synth"]}):
                h, g = by.get((target, "helu")), by.get((target, "igelu"))
                if h and g and h.get("lut") and g.get("lut"):
                    verdict = "fits" if g.get("fits") else "does not fit"
                    parts.append(
                        f"- {h['device']}: i-GELU in place of HeLU costs {g['lut'] - h['lut']:+d} "
                        f"LUT4 and {g['ff'] - h['ff']:+d} FF for the whole network ({verdict})."
                    )
            up = by.get(("up5k", "helu"))
            if up and up.get("fmax_mhz"):
                m = data.get("marlann", MARLANN)
                mine = lanes * up["fmax_mhz"]
                parts.append(
                    f"- Beside {m['source']}: {m['macs_per_cycle']} x {m['mhz'][0]}-"
                    f"{m['mhz'][1]} MHz = {m['macs_per_cycle'] * m['mhz'][0]}-"
                    f"{m['macs_per_cycle'] * m['mhz'][1]} MMAC/s peak (published); this engine "
                    f"{lanes} x {up['fmax_mhz']:.1f} MHz = {mine:.0f} MMAC/s peak, "
                    f"{up['mmacs_per_s']:.0f} MMAC/s delivered on this network "
                    f"({up['samples_per_s']:,.0f} samples/s), with every logit bit-exact."
                )
            parts.append("")
        parts += [
            "Exactness: FINN's end-to-end check compares outputs with `atol=1e-3` and hls4ml "
            "co-simulates within tolerances; here every logit and class of every test sample "
            "equals the integer golden model's, bit for bit (mismatches above are counted, not "
            "tolerated).",
            "",
        ]
        return parts


STEP = MlpStep()
