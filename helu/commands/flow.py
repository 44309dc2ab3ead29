"""`helu flow`: the whole path from a trained model to measured gates, and a report.

Steps, each leaving its results in its own folder under ``--out`` (the report reads only those):

1. ``study/``:  train the quick study on the bundled digits data (``golden.train.QUICK``);
2. ``golden/``: export golden vectors of the trained HeLU model at W=8 and W=16;
   ``intnet/``, ``golden-net/``: the integer network's quick batch-1 training study and its
   golden folder with a training trajectory (``helu.intflow``);
3. ``verilog/``: write every configuration the flow checks, once: each unit at each synthesis
   width with the most synthesis lanes, in the golden format of that width, units with a
   threshold both with a constant ``T`` and with the threshold port;
4. ``sim/``:    run the cocotb benches on those very files against the golden vectors (Icarus by
   default);
5. ``synth/``:  synthesize every unit with Yosys/nextpnr (iCE40 and generic gates by default),
   the configurations of ``verilog/`` from those very files (checked by SHA-256; a unit's lane
   limit may keep one out, which the notes say);
6. ``prove/``:  prove every unit formally (``helu.proofs``: widths 8, 16; lanes 1, 4);
7. ``mlp/``:    the integer MLP engine (``helu.mlp.flow_step``): the integer network of
   ``golden-net/``, every test sample through the engine's RTL, synthesis on the iCE40 UP5K (and
   the ECP5);
   ``cnn/``:    your network on chip (``helu.netflow``): the example digits CNN imported from a
   ``torch.save`` file, quantized, simulated on the RTL, synthesized;
8. ``onchip/``: a short RTL training of the exported network of ``golden-net/`` on Verilator,
   every step checked against the golden training step (``helu.onchipflow``; ``--onchip off``
   skips it);
9. ``collapse/``: the quick collapse study (deep narrow MLPs, ReLU vs HeLU; ``helu.collapse``);
10. ``report.md``, ``summary.json`` and the plots.

A step whose tool is missing is skipped and named in the report; a step that fails (a mismatch,
a tool crash) stops the flow with a one-line error and a non-zero exit.
"""

import json
import logging
import time

from helu import mlp, netflow, onchipflow, proofs
from helu.commands.options import add_force, int_list, name_list
from helu.hw.synth.targets import UNIT_TARGETS

HELP = "run everything: study, golden vectors, Verilog, cocotb simulation, synthesis, report"

log = logging.getLogger(__name__)

STEPS = 12
# Per-tensor scales (no saturation) at 8 and 16 bits; at 8 bits the digits MLP's range leaves
# 2-3 fractional bits, where alpha=0.05 has no negative code in its band, so a third set fixes
# 5 fractional bits (T=-2): the band is exercised at 8 bits, at the price of some saturation.
GOLDEN_WIDTHS = (8, 16, "8:5")


def add_arguments(parser):
    parser.add_argument(
        "--out", default="build/report", help="report folder (default: %(default)s)"
    )
    parser.add_argument(
        "--seeds",
        type=int,
        default=None,
        help="training seeds per setting (default: the quick preset's)",
    )
    parser.add_argument(
        "--sim",
        default="icarus",
        choices=("icarus", "verilator", "all"),
        help="simulator for the golden check (default: %(default)s)",
    )
    parser.add_argument(
        "--targets",
        default="ice40,generic",
        metavar="T[,T..]",
        help=f"synthesis targets from {', '.join(UNIT_TARGETS)} (default: %(default)s)",
    )
    parser.add_argument(
        "--synth-widths",
        default="8,16",
        metavar="W[,W..]",
        help="widths to synthesize (default: %(default)s)",
    )
    parser.add_argument(
        "--synth-lanes",
        default="1,16",
        metavar="L[,L..]",
        help="lane counts to synthesize (default: %(default)s)",
    )
    proofs.add_flow_arguments(parser)
    parser.add_argument(
        "--fmax-seeds", type=int, default=3, help="nextpnr seeds per design (default: 3)"
    )
    parser.add_argument("--jobs", type=int, default=2, help="syntheses run at once (default: 2)")
    parser.add_argument(
        "--units",
        default="all",
        metavar="NAME[,NAME..]|all",
        help="units to generate, simulate and synthesize (default: all registered units)",
    )
    add_force(parser, "replace an --out flow folder")
    mlp.add_flow_arguments(parser)
    netflow.add_flow_arguments(parser)
    onchipflow.add_flow_arguments(parser)


class Flow:
    """Runs the steps in order, timing each and recording skipped ones."""

    def __init__(self, args):
        from pathlib import Path

        self.args = args
        self.out = Path(args.out)
        self.skipped: dict[str, str] = {}
        self.generated: list = []  # (unit, params, Generated) written by the verilog step
        self.frac_by_width: dict[int, int] = {}  # the golden format each width's files use
        self.seconds: dict[str, float] = {}
        self.step = 0
        self.notes: list[str] = []
        from helu.hw.synth import TARGETS
        from helu.hw.units import UNITS

        # Every option is checked here, before minutes of training, not when its step comes.
        self.units = name_list(args.units, UNITS, "unit")
        self.targets = name_list(args.targets, TARGETS, "target")
        self.synth_widths = int_list(args.synth_widths, "--synth-widths")
        self.synth_lanes = int_list(args.synth_lanes, "--synth-lanes")
        self.prove_widths, self.prove_lanes = proofs.flow_options(args)
        for option, value in (("--seeds", args.seeds), ("--fmax-seeds", args.fmax_seeds),
                              ("--jobs", args.jobs)):  # fmt: skip
            if value is not None and value < 1:
                raise ValueError(f"{option} must be a positive integer, not {value}")

    def _begin(self, what: str):
        self.step += 1
        log.info("[%d/%d] %s", self.step, STEPS, what)
        return time.monotonic()

    def study(self) -> dict:
        from dataclasses import replace

        from helu.golden.train import QUICK, run_study

        start = self._begin("training the quick study on digits (ReLU, HeLU, GELU, LeakyReLU)")
        cfg = (
            QUICK
            if self.args.seeds is None
            else replace(QUICK, seeds=tuple(range(self.args.seeds)))
        )
        metrics = run_study(cfg, self.out / "study")
        self.seconds["study"] = time.monotonic() - start
        log.info("      %s", metrics["comparison"]["summary"])
        return metrics

    def golden(self, metrics: dict):
        from helu.golden.export import export_checkpoint

        start = self._begin("exporting golden vectors (W=8, W=16, and W=8 with 5 fractional bits)")
        if not metrics.get("golden_checkpoint"):
            raise RuntimeError("the study trained no HeLU model to export golden vectors from")
        export_checkpoint(
            self.out / "study" / metrics["golden_checkpoint"],
            self.out / "golden",
            widths=GOLDEN_WIDTHS,
        )
        self.seconds["golden"] = time.monotonic() - start

    def intnet(self):
        from helu.intflow import run_step

        start = self._begin("integer network: batch-1 training (ReLU vs HeLU T), golden trajectory")
        run_step(self.out, self.args.seeds)
        self.seconds["intnet"] = time.monotonic() - start

    def verilog(self):
        from helu.common import outdir
        from helu.golden.vectors import load_golden
        from helu.hw.synth import source_key
        from helu.hw.units import UNITS, UnitParams
        from helu.hw.verilog import generate

        start = self._begin("writing Verilog: each configuration to simulate and synthesize")
        meta, sets = load_golden(self.out / "golden")
        lanes = max(self.synth_lanes)
        self.generated = []  # (unit, params, Generated): one generation per configuration
        seen = set()
        left_out = sorted({s.z_fmt.width for s in sets} - set(self.synth_widths))
        if left_out:
            self.notes.append(
                f"the golden sets of width {', '.join(map(str, left_out))} were not simulated: "
                f"--synth-widths leaves that width out, and the flow checks what it synthesizes"
            )
        for width in self.synth_widths:
            at_width = [s for s in sets if s.z_fmt.width == width]
            if not at_width:
                self.notes.append(f"no golden set has width {width}: its Verilog was not made")
                continue
            # The format of the first layer whose band survives quantization (8:5 at 8 bits for
            # the default export), so the constant-T training units carry a live threshold.
            fmt = next((s.z_fmt for s in at_width if not s.stats.get("alpha_note")), None)
            fmt = fmt or at_width[0].z_fmt
            self.frac_by_width[width] = fmt.frac
            for unit in self.units:
                ports = (False, True) if UNITS[unit].has_threshold else (False,)
                for port in ports:
                    params = UnitParams(
                        width=width, lanes=lanes, frac=fmt.frac, alpha=meta["alpha"],
                        threshold_port=port,
                    )  # fmt: skip
                    if source_key(unit, params) in seen:
                        continue
                    seen.add(source_key(unit, params))
                    made = generate(unit, params, self.out / "verilog")
                    self.generated.append((unit, params, made))
                    log.info("      %s", made.verilog)
        outdir.mark(self.out / "verilog", "verilog")
        self.seconds["verilog"] = time.monotonic() - start

    def sim(self):
        from helu.sim import runner

        start = self._begin(f"cocotb: every golden element through every unit on {self.args.sim}")
        simulators = runner.SIMULATORS if self.args.sim == "all" else (self.args.sim,)
        missing = {s: runner.tool_missing(s) for s in simulators}
        missing = {s: why for s, why in missing.items() if why}
        if len(missing) == len(simulators):
            self.skipped["sim"] = "; ".join(missing.values())
            log.warning("      skipped: %s", self.skipped["sim"])
            return
        usable = tuple(s for s in simulators if s not in missing)
        # The files of verilog/ as they are: what is simulated is what the flow hands out.
        summary = runner.run_generated(
            self.out / "golden", self.generated, simulators=usable, out=self.out / "sim"
        )
        self.seconds["sim"] = time.monotonic() - start
        log.info(
            "      %d elements checked, %d mismatches", summary["checked"], summary["mismatches"]
        )
        if summary["mismatches"] or not summary["checked"]:
            raise RuntimeError(
                f"RTL simulation: {summary['mismatches']} mismatches in {summary['checked']} "
                f"checked elements; see {self.out / 'sim' / 'summary.json'}"
            )

    def synth(self, metrics: dict):
        from helu.common import outdir
        from helu.hw.synth import source_key, sweep, sweep_params
        from helu.hw.units import UNITS
        from helu.synthreport import plot_cost_vs_accuracy, write_results

        start = self._begin(f"synthesizing every unit ({', '.join(self.targets)})")
        groups = {}  # lane counts -> units synthesized at them
        for unit in self.units:
            cap = UNITS[unit].max_lanes  # the unit's own limit, from the registry
            lanes = tuple(n for n in self.synth_lanes if cap is None or n <= cap)
            if cap is not None and lanes != self.synth_lanes:
                lanes = lanes or (min(self.synth_lanes),)
                self.notes.append(
                    f"{unit} was synthesized at {', '.join(map(str, lanes))} lane(s) only: "
                    f"{UNITS[unit].max_lanes_why}; run 'helu synth --unit {unit} --lanes "
                    f"{','.join(map(str, self.synth_lanes))}' for the rest."
                )
            groups.setdefault(lanes, []).append(unit)

        def progress(done, total, record):
            what = f"{record['unit']} {record['target']} W{record['width']} x{record['lanes']}"
            what += f" ({record['threshold']} T)" if record.get("threshold") else ""
            log.info(
                "      [%d/%d] %s%s",
                done,
                total,
                what,
                f": {record['error']}" if "error" in record else "",
            )

        results, skipped = [], {}
        for lanes, units in groups.items():
            done, skipped = sweep(
                units,
                sweep_params(
                    self.synth_widths,
                    lanes,
                    frac=self.frac_by_width,
                    thresholds=("constant", "port"),
                ),
                self.targets,
                seeds=self.args.fmax_seeds,
                out_dir=self.out / "synth",
                jobs=self.args.jobs,
                progress=progress,
                # verilog/'s files are synthesized as they are, not generated again
                sources={source_key(u, p): made for u, p, made in self.generated},
            )
            results += done
        write_results(results, self.out / "synth", skipped=skipped)
        outdir.mark(self.out / "synth", "synth")
        self.seconds["synth"] = time.monotonic() - start
        if not results:
            self.skipped["synth"] = "; ".join(f"{t}: {r}" for t, r in skipped.items())
            log.warning("      skipped: %s", self.skipped["synth"])
            return
        failed = [r for r in results if "error" in r]
        if failed:
            raise RuntimeError(
                f"{len(failed)} synthesis runs failed; first: {failed[0]['error']} "
                f"(see {self.out / 'synth' / 'results.md'})"
            )
        self._check_shipped(results)
        try:
            caption = plot_cost_vs_accuracy(
                results, metrics["results"], self.out / "synth" / "cost_vs_accuracy.png"
            )
            (self.out / "synth" / "cost_vs_accuracy.txt").write_text(caption + "\n")
        except ValueError as exc:
            log.warning("      no cost/accuracy plot: %s", exc)

    def _check_shipped(self, results):
        """Every file of verilog/ must be what each target synthesized (same SHA-256), unless
        its unit's lane limit kept it out (said in the notes)."""
        from helu.common.outdir import sha256_file
        from helu.hw.units import UNITS

        synthesized = {(r["target"], r.get("verilog_sha256")) for r in results}
        targets = {r["target"] for r in results}
        for unit, params, made in self.generated:
            cap = UNITS[unit].max_lanes
            if cap is not None and params.lanes > cap:
                self.notes.append(
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

    def collapse(self):
        from helu.collapse import flow_step

        start = self._begin("collapse study, quick preset (deep narrow MLPs, ReLU vs HeLU)")
        log.info("      %s", flow_step(self.out / "collapse"))
        self.seconds["collapse"] = time.monotonic() - start

    def run(self):
        from helu.common import outdir
        from helu.report import NOTES, SKIPS, write_report

        # The folder is ours (or new): emptied first, so no result of an earlier flow can be
        # reported as this one's.
        outdir.prepare(self.out, "flow", clear=True, force=getattr(self.args, "force", False))
        wall = time.monotonic()
        metrics = self.study()
        self.golden(metrics)
        self.intnet()
        self.verilog()
        self.sim()
        self.synth(metrics)
        proofs.flow_step(self)
        self._begin("integer MLP engine: every test sample through the RTL, synthesis")
        mlp.flow_step(self)
        self._begin(
            "your network on chip: the example CNN imported, quantized, simulated, synthesized"
        )
        netflow.flow_step(self)
        self._begin(f"training on chip: {onchipflow.SHORT_STEPS} RTL training steps, each checked")
        onchipflow.flow_step(self)
        self.collapse()
        self._begin("writing the report")
        (self.out / SKIPS).write_text(json.dumps(self.skipped, indent=2) + "\n")
        (self.out / NOTES).write_text(json.dumps(self.notes, indent=2) + "\n")
        (self.out / "timing.json").write_text(
            json.dumps(self.seconds | {"total": time.monotonic() - wall}, indent=2) + "\n"
        )
        report, summary = write_report(self.out)
        log.info("done in %.0f s: %s, %s", time.monotonic() - wall, report, summary)
        print(f"report: {report}\nsummary: {summary}")


def run(args) -> int:
    Flow(args).run()
    return 0
