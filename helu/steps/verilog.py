"""Step ``verilog``: every configuration the flow checks, written once into ``<out>/verilog/``:
each unit at each synthesis width with the most synthesis lanes, in the golden format of that
width, units with a threshold both with a constant ``T`` and with the threshold port. The sim and
synth steps take these very files (``ctx.shared["generated"]``); it has no report section (the
simulation and synthesis tables name each file by its SHA-256).
"""

import logging

from helu.steps.base import Context, Step

__all__ = ["STEP", "VerilogStep"]

log = logging.getLogger(__name__)


class VerilogStep(Step):
    name = "verilog"

    def doing(self, ctx):
        return "writing Verilog: each configuration to simulate and synthesize"

    def run(self, ctx: Context) -> None:
        from helu.common import outdir
        from helu.golden.vectors import load_golden
        from helu.hw.synth import source_key
        from helu.hw.units import UNITS, UnitParams
        from helu.hw.verilog import generate

        opts = ctx.options
        meta, sets = load_golden(ctx.out / "golden")
        lanes = max(opts.synth_lanes)
        generated = ctx.shared["generated"] = []  # (unit, params, Generated): one per config
        frac_by_width = ctx.shared["frac_by_width"] = {}  # the golden format of each width
        seen = set()
        left_out = sorted({s.z_fmt.width for s in sets} - set(opts.synth_widths))
        if left_out:
            ctx.notes.append(
                f"the golden sets of width {', '.join(map(str, left_out))} were not simulated: "
                f"--synth-widths leaves that width out, and the flow checks what it synthesizes"
            )
        for width in opts.synth_widths:
            at_width = [s for s in sets if s.z_fmt.width == width]
            if not at_width:
                ctx.notes.append(f"no golden set has width {width}: its Verilog was not made")
                continue
            # The format of the first layer whose band survives quantization (8:5 at 8 bits for
            # the default export), so the constant-T training units carry a live threshold.
            fmt = next((s.z_fmt for s in at_width if not s.stats.get("alpha_note")), None)
            fmt = fmt or at_width[0].z_fmt
            frac_by_width[width] = fmt.frac
            for unit in opts.units:
                ports = (False, True) if UNITS[unit].has_threshold else (False,)
                for port in ports:
                    params = UnitParams(
                        width=width, lanes=lanes, frac=fmt.frac, alpha=meta["alpha"],
                        threshold_port=port,
                    )  # fmt: skip
                    if source_key(unit, params) in seen:
                        continue
                    seen.add(source_key(unit, params))
                    made = generate(unit, params, ctx.out / "verilog")
                    generated.append((unit, params, made))
                    log.info("      %s", made.verilog)
        outdir.mark(ctx.out / "verilog", "verilog")


STEP = VerilogStep()
