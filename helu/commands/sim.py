"""`helu sim`: check the generated Verilog against golden vectors on Icarus and Verilator."""

import json
import logging

from helu import mlp
from helu.commands.options import add_force, name_list

HELP = "run the cocotb benches: every golden element through the RTL, checked bit-exactly"

log = logging.getLogger(__name__)


def add_arguments(parser):
    from helu.hw.units import unit_names

    parser.add_argument(
        "--golden",
        metavar="DIR",
        help="golden folder ('helu golden'; for --unit net a 'helu quantize' or 'helu golden "
        "--net' folder, also given as --model)",
    )
    parser.add_argument(
        "--sim",
        default="icarus",
        metavar="icarus|verilator|all",
        help="simulator(s) to run (default: icarus)",
    )
    parser.add_argument(
        "--unit",
        default="all",
        metavar="NAME[,NAME..]|all|net",
        help=f"units to check, from {unit_names()} (default: all); net (alias mlp): the integer "
        "network engine on a 'helu quantize' or 'helu golden --net' folder",
    )
    parser.add_argument("--lanes", type=int, default=16, help="lanes per transfer (default: 16)")
    parser.add_argument(
        "--width", type=int, default=None, help="only the golden sets with this z width (8 or 16)"
    )
    parser.add_argument("--out", default="build/sim", help="build and summary folder")
    add_force(parser, "use an --out simulation folder")
    parser.add_argument(
        "--stall",
        type=float,
        default=0.0,
        metavar="P",
        help="probability that valid and ready are each low on a cycle (default: 0, full rate)",
    )
    parser.add_argument(
        "--const-threshold",
        action="store_true",
        help="build one unit per format with T as a constant (default: one build per width, "
        "T driven on the runtime threshold port)",
    )
    mlp.add_arguments(parser)
    parser.add_argument(
        "--netlist",
        metavar="PATH",
        help="--unit net: simulate this mapped netlist of the engine gate by gate (Yosys's cell "
        "models) instead of the RTL: a build folder or record.json of 'helu synth --unit net "
        "--target up5k', or its <top>.netlist.v",
    )


def format_table(summary: dict) -> str:
    """The summary as a text table (one row per run, then the totals). ``variant`` says what
    else shapes a run's build (``sim.runner.variant``: i-GELU's frac), so two runs of one unit at
    one width are told apart."""
    head = ("unit", "simulator", "width", "lanes", "T", "variant", "checked", "mismatches",
            "cycles", "el/s")  # fmt: skip
    rows = [
        (
            r["unit"],
            r["simulator"],
            str(r["width"]),
            str(r["lanes"]),
            r["threshold"],
            r.get("variant") or "-",
            str(r["checked"]),
            str(r["mismatches"]),
            str(r["cycles"]),
            f"{r['elements_per_s']:,.0f}",
        )
        for r in summary["runs"]
    ]
    rows.append(
        (
            "total",
            summary["simulator"],
            "",
            "",
            "",
            "",
            str(summary["checked"]),
            str(summary["mismatches"]),
            "",
            f"{summary['elements_per_s']:,.0f}",
        )
    )
    widths = [max(len(x) for x in col) for col in zip(head, *rows, strict=True)]
    lines = [
        "  ".join(c.ljust(w) for c, w in zip(row, widths, strict=True)) for row in [head, *rows]
    ]
    lines.insert(1, "  ".join("-" * w for w in widths))
    return "\n".join(lines)


def run(args) -> int:
    from pathlib import Path

    from helu.hw.units import UNITS
    from helu.sim import runner

    if args.unit in mlp.UNIT_NAMES:
        args.golden = args.golden or args.model
        if args.golden is None:
            raise ValueError(
                f"--unit {args.unit} needs --model DIR (make one with 'helu quantize')"
            )
        if args.model and args.golden != args.model:
            raise ValueError("give the network's folder once: --model DIR (or --golden DIR)")
    elif args.netlist is not None:
        raise ValueError("--netlist is for --unit net (an engine's mapped netlist)")
    if args.golden is None:
        raise ValueError("--golden DIR is required (make one with 'helu golden')")
    if not Path(args.golden).is_dir():
        raise ValueError(f"{args.golden}: no such golden folder; create one with 'helu golden'")
    if args.unit in mlp.UNIT_NAMES:
        return mlp.sim(args)
    sims = name_list(args.sim, runner.SIMULATORS, "simulator")
    units = name_list(args.unit, UNITS, "unit")
    summary = runner.run_golden(
        args.golden,
        units=units,
        simulators=sims,
        lanes=args.lanes,
        width=args.width,
        out=args.out,
        stall=args.stall,
        threshold_port=not args.const_threshold,
        force=args.force,
    )
    print(format_table(summary))
    for r in summary["runs"]:
        if r["first_mismatch"]:
            print(
                f"MISMATCH {r['unit']} on {r['simulator']}: "
                f"{json.dumps(r['first_mismatch'])} (log: {r['log']})"
            )
    print(f"summary: {summary['path']}")
    if summary["mismatches"]:
        log.error("%d mismatching elements", summary["mismatches"])
        return 1
    if not summary["checked"]:
        log.error("nothing was checked")
        return 1
    return 0
