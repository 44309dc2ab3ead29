"""`helu study collapse`: deep, narrow MLPs where ReLU is born dead or collapses (Lu et al.)."""

from helu import executor
from helu.commands.options import add_force, int_list, name_list

HELP = "studies: 'collapse' (deep narrow MLPs: born dead, collapse, HeLU vs ReLU, paired seeds)"

STUDIES = ("collapse",)


def add_arguments(parser):
    parser.add_argument("study", choices=STUDIES, help="which study (collapse)")
    parser.add_argument(
        "--preset",
        choices=("quick", "results", "full"),
        default="quick",
        help="quick: 1 cell, 3 arms (the flow's, ~10-30 s); results: the 16-cell grid of "
        "docs/results/collapse.md; full: widths 2-8, depths 5-40, every bias, optimizer and "
        "target (about 71 CPU hours; try --estimate). Options below override the preset "
        "(default: %(default)s)",
    )
    parser.add_argument("--widths", metavar="W[,W..]", help="hidden widths")
    parser.add_argument("--depths", metavar="D[,D..]", help="hidden layer counts")
    parser.add_argument("--biases", metavar="B[,B..]|all", help="zero, symmetric, rai")
    parser.add_argument("--optimizers", metavar="O[,O..]|all", help="adam, sgd")
    parser.add_argument("--targets", metavar="T[,T..]|all", help="abs, sin")
    parser.add_argument(
        "--arms",
        metavar="ARM[,ARM..]",
        help="relu (required, the reference), helu:ALPHA, helu:scaled, leaky, gelu",
    )
    parser.add_argument("--seeds", type=int, metavar="N", help="seeds (paired inits) per cell")
    parser.add_argument("--steps", type=int, metavar="N", help="full-batch training steps")
    parser.add_argument("--lr", type=float, help="learning rate (default: Adam 1e-3, SGD 1e-2)")
    parser.add_argument(
        "--estimate",
        action="store_true",
        help="only predict the grid's CPU time on this machine (short probes), run nothing",
    )
    parser.add_argument(
        "--no-resume", action="store_true", help="rerun cells whose results are already saved"
    )
    add_force(parser, "write into a collapse folder")
    executor.add_arguments(parser, jobs_help="cells trained at once")
    parser.add_argument(
        "--out", default="build/collapse", help="output folder (default: %(default)s)"
    )


def run(args) -> int:
    from pathlib import Path

    from helu.collapse import preset_cells, run_study
    from helu.common import outdir
    from helu.golden.collapse import BIASES, OPTIMIZERS, TARGETS

    overrides = {
        "widths": args.widths and int_list(args.widths, "--widths"),
        "depths": args.depths and int_list(args.depths, "--depths"),
        "biases": args.biases and tuple(name_list(args.biases, BIASES, "bias")),
        "optimizers": args.optimizers
        and tuple(name_list(args.optimizers, OPTIMIZERS, "optimizer")),
        "targets": args.targets and tuple(name_list(args.targets, TARGETS, "target")),
        "arms": args.arms and tuple(dict.fromkeys(a.strip() for a in args.arms.split(","))),
        "seeds": args.seeds,
        "steps": args.steps,
        "lr": args.lr,
    }
    cells = preset_cells(args.preset, **overrides)  # every option checked before any training
    if args.estimate:
        from helu.collapse import estimate_seconds

        cost = estimate_seconds(cells)
        hours = cost["seconds"] / 3600
        probes = ", ".join(f"{k} {v:.2f}" for k, v in cost["probes"].items())
        print(f"{len(cells)} cells: about {hours:.1f} CPU hours on this machine")
        print(f"(seconds per training step of a whole cell: {probes})")
        return 0
    with executor.from_args(args) as ex:
        out = outdir.prepare(Path(args.out), "collapse", force=args.force)
        analysis = run_study(cells, out, ex, resume=not args.no_resume)
    for arm, by in analysis["verdicts"].items():
        for what, slot in by.items():
            outcome = "good fit" if what == "good" else "collapse"
            print(
                f"{analysis['labels'][arm]} vs ReLU, {outcome}: helps in {len(slot['helps'])}, "
                f"null in {len(slot['null'])}, hurts in "
                f"{len(slot['hurts'])} of {sum(map(len, slot.values()))} cells"
            )
    print(f"results: {args.out}/collapse.md, {args.out}/collapse.json")
    return 0
