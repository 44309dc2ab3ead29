"""`helu verilog`: write a unit's Verilog and its JSON sidecar (ports, lane packing, latency, T)."""

import logging

from helu import mlp
from helu.commands.options import add_force, add_unit_params, unit_param_values

HELP = "write Verilog and a JSON port sidecar for a HeLU or baseline unit"

log = logging.getLogger(__name__)


def add_arguments(parser):
    from helu.hw.units import UNITS, unit_names

    parser.add_argument(
        "--unit",
        default="forward",
        metavar="NAME[,NAME..]|all|net",
        help=f"unit name(s), comma-separated ({unit_names()}), or all, or net (alias mlp: the "
        "integer network engine, with --model) (default: forward)",
    )
    parser.add_argument("--width", type=int, default=8, help="bits of z, sign included (8)")
    parser.add_argument("--lanes", type=int, default=1, help="elements per transfer (1)")
    parser.add_argument("--alpha", type=float, default=0.05, help="HeLU band (-alpha, 0] (0.05)")
    parser.add_argument("--frac", type=int, default=4, help="fractional bits of z (4)")
    parser.add_argument(
        "--grad-width", type=int, default=None, help="bits of the gradient (default: --width)"
    )
    add_unit_params(parser, UNITS)
    parser.add_argument(
        "--threshold-port",
        action="store_true",
        help="take T from a runtime input port instead of a constant",
    )
    parser.add_argument(
        "--axis",
        action="store_true",
        help="AXI4-Stream port names (s_axis_*, m_axis_*, aclk, aresetn)",
    )
    parser.add_argument("--out", default="build/verilog", help="output folder (build/verilog)")
    add_force(parser, "write into an --out Verilog folder")
    mlp.add_arguments(parser)


def run(args) -> int:
    import warnings

    from helu.commands.options import name_list
    from helu.common import outdir
    from helu.hw.units import UNITS, UnitParams
    from helu.hw.verilog import generate

    if args.unit in mlp.UNIT_NAMES:
        return mlp.verilog(args)
    names = name_list(args.unit, UNITS, "unit")
    params = UnitParams(
        width=args.width,
        lanes=args.lanes,
        frac=args.frac,
        alpha=args.alpha,
        grad_width=args.grad_width,
        threshold_port=args.threshold_port,
        **unit_param_values(args, UNITS),
    )
    # Every unit is generated into a scratch folder first and moved into --out only when all
    # succeeded (helu.common.outdir.staged), so a unit that refuses the parameters (e.g. i-GELU at
    # 32 bits) or an interrupt leaves no half-written set of files behind; files of earlier runs in
    # an --out of ours stay.
    out = outdir.claim(args.out, "verilog", force=args.force)
    notes = []
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        with outdir.staged(out, "verilog", force=args.force, merge=True) as scratch:
            generated = []
            for name in names:
                log.info("generating %s", name)
                generated.append(generate(name, params, scratch, axis=args.axis))
    written = [out / p.name for g in generated for p in (g.verilog, g.sidecar)]
    for w in caught:
        if str(w.message) not in notes:
            notes.append(str(w.message))
    for note in notes:
        warnings.warn(note, stacklevel=1)
    for path in written:
        print(path)
    return 0
