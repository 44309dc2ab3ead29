"""`helu flow`: the whole path from a trained model to measured gates, and a report.

The steps are ``helu.steps.STEPS``, each one module of ``helu.steps`` leaving its results in its
own folder under ``--out`` (the report reads only those): the quick study (``study/``), golden
vectors (``golden/``), the integer network and its golden trajectory (``intnet/``,
``golden-net/``), the Verilog of every configuration (``verilog/``), its cocotb simulation
(``sim/``) and synthesis (``synth/``), the formal proofs (``prove/``), the integer MLP engine
(``mlp/``), your network on chip (``cnn/``), training on chip (``onchip/``), the collapse study
(``collapse/``); then ``report.md``, ``summary.json`` and the plots.

This command only reads the options, checks them before minutes of training, and hands them to
``helu.steps.run_flow``. A step whose tool is missing is skipped and named in the report; a step
that fails (a mismatch, a tool crash) stops the flow with a one-line error and a non-zero exit; a
second flow on the same ``--out`` is refused while the first runs.
"""

from helu.commands.options import add_force, int_list, name_list
from helu.hw.synth.targets import UNIT_TARGETS

HELP = "run everything: study, golden vectors, Verilog, cocotb simulation, synthesis, report"


def add_arguments(parser):
    from helu import steps

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
    steps.add_arguments(parser)


def options(args):
    """The flow's ``Options`` from the parsed command line, every option checked."""
    from helu import steps
    from helu.hw.synth import TARGETS
    from helu.hw.units import UNITS

    for option, value in (("--seeds", args.seeds), ("--fmax-seeds", args.fmax_seeds),
                          ("--jobs", args.jobs)):  # fmt: skip
        if value is not None and value < 1:
            raise ValueError(f"{option} must be a positive integer, not {value}")
    return steps.Options(
        seeds=args.seeds,
        sim=args.sim,
        units=tuple(name_list(args.units, UNITS, "unit")),
        targets=tuple(name_list(args.targets, TARGETS, "target")),
        synth_widths=int_list(args.synth_widths, "--synth-widths"),
        synth_lanes=int_list(args.synth_lanes, "--synth-lanes"),
        fmax_seeds=args.fmax_seeds,
        jobs=args.jobs,
        **steps.configure(args),
    )


def run(args) -> int:
    from helu import steps

    report, summary = steps.run_flow(args.out, options(args), force=getattr(args, "force", False))
    print(f"report: {report}\nsummary: {summary}")
    return 0
