"""`helu prove`: formal proofs of the units (SymbiYosys' Yosys + smtbmc from PyPI, an SMT solver).

For every unit and configuration (widths x lanes, and for a unit with a threshold both the
constant ``T`` and the threshold port) the proof shows, for every input value and every
valid/ready sequence, the four properties of ``hw.formal``: function (equal to the unit's
integer reference), stream rules, reset and throughput. Each proof prints one line; a failed one
names the unit, the configuration, the broken property and the counterexample trace (VCD). The
command writes ``results.json`` and ``results.md`` (the folder holds this run's proofs only: it
is emptied first, and only a folder helu marked as proofs is, see ``helu.common.outdir``) and exits
non-zero when any proof fails or gives no verdict. ``--unit net`` proves the inference engine
(``hw.formal_net.QUICK``: small dense engines, bounded; ``--depth`` applies to the units only).
"""

import logging
import os

from helu.commands.options import add_force, int_list, name_list

HELP = "prove every unit formally: function, stream rules, reset, throughput (all inputs)"

log = logging.getLogger(__name__)


def add_arguments(parser):
    parser.add_argument(
        "--unit",
        default="all",
        help="unit name(s), comma-separated, or all (default: all); net: the inference "
        "engine's quick proofs (docs/formal.md), not part of all",
    )
    parser.add_argument("--width", default="8,16", help="widths, comma-separated (8,16)")
    parser.add_argument("--lanes", default="1,4", help="lane counts, comma-separated (1,4)")
    parser.add_argument(
        "--depth",
        type=int,
        default=None,
        help="induction depth k, or the bounded depth for pipelined units (default: latency + 2)",
    )
    parser.add_argument(
        "--solver", default="yices", help="SMT solver: yices (default, fastest) or z3"
    )
    parser.add_argument(
        "--timeout",
        type=float,
        default=300,
        help="seconds each solver run may take; past it the proof is reported as not proved "
        "(default: 300)",
    )
    parser.add_argument("--out", default="build/prove", help="output folder (build/prove)")
    add_force(parser, "replace an --out folder of proofs")
    parser.add_argument(
        "--jobs",
        type=int,
        default=min(2, os.cpu_count() or 1),
        help="proofs at once, in worker processes (default: 2, or 1 on a single core)",
    )


def run(args) -> int:
    import time

    from helu.common import outdir
    from helu.hw.formal import SOLVERS, find_toolchain, prove_all
    from helu.hw.units import UNITS
    from helu.proofs import proof_plan, write_results

    # "net": the inference engine's quick proofs (hw.formal_net.QUICK); not part of "all".
    units = list(UNITS) if args.unit == "all" else name_list(args.unit, [*UNITS, "net"], "unit")
    net = "net" in units
    units = [u for u in units if u != "net"]
    widths = int_list(args.width, "--width")
    lanes = int_list(args.lanes, "--lanes")
    if args.solver not in SOLVERS:
        raise ValueError(f"unknown --solver {args.solver!r}; choose from {', '.join(SOLVERS)}")
    if args.depth is not None and args.depth < 1:
        raise ValueError(f"--depth must be a positive integer, not {args.depth}")
    if not args.timeout > 0:
        raise ValueError(f"--timeout must be a positive number of seconds, not {args.timeout}")
    if args.jobs < 1:
        raise ValueError(f"--jobs must be a positive integer, not {args.jobs}")

    def progress(done, total, r):
        if r.ok:
            log.info(
                "[%d/%d] %s %s: proved (%s, depth %d, %.1f s)",
                done, total, r.unit, r.config, r.method, r.depth, r.seconds,
            )  # fmt: skip
        elif r.status == "fail":
            trace = f"; counterexample: {r.trace}" if r.trace else ""
            log.warning(
                "[%d/%d] %s %s: FAILED: %s%s%s",
                done, total, r.unit, r.config, ", ".join(r.failed),
                f" ({r.detail})" if r.detail else "", trace,
            )  # fmt: skip
        else:
            what = "NOT PROVED" if r.status == "timeout" else "ERROR"
            log.warning("[%d/%d] %s %s: %s: %s", done, total, r.unit, r.config, what, r.detail)

    plan, note = proof_plan(units, widths, every_unit=args.unit == "all") if units else ([], None)
    if note:
        log.warning("%s", note)
    find_toolchain(args.solver)  # before the folder is touched: a missing tool changes nothing
    out = outdir.prepare(args.out, "prove", clear=True, force=args.force)
    start = time.monotonic()
    results = []
    for plan_units, plan_widths in plan:
        results += prove_all(
            plan_units, plan_widths, lanes, out, depth=args.depth, solver=args.solver,
            jobs=args.jobs, timeout=args.timeout, progress=progress,
        )  # fmt: skip
    if net:
        from helu.hw.formal_net import QUICK, prove_net_all

        results += prove_net_all(
            QUICK, out, solver=args.solver, jobs=args.jobs, timeout=args.timeout,
            progress=progress,
        )  # fmt: skip
    wall = time.monotonic() - start
    json_path, md_path = write_results(results, out, wall_seconds=wall, jobs=args.jobs)
    outdir.mark(out, "prove")
    log.info("%d proofs in %.0f s; wrote %s and %s", len(results), wall, json_path, md_path)
    bad = [r for r in results if not r.ok]
    if bad:
        first = bad[0]
        what = ", ".join(first.failed) or first.detail
        trace = f"; counterexample: {first.trace}" if first.trace else ""
        raise RuntimeError(
            f"{len(bad)} of {len(results)} proofs failed; first: {first.unit} {first.config}: "
            f"{what}{trace}"
        )
    return 0
