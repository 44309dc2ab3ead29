"""`helu train`: the HeLU study (ReLU, HeLU at several alphas, GELU, ELU, LeakyReLU; seeds)."""

from helu.commands.options import add_force

HELP = (
    "train ReLU/HeLU/GELU/ELU/LeakyReLU models over seeds; write metrics.json, plots, checkpoints"
)

ACTS = ("relu", "helu", "gelu", "elu", "leaky")


def add_arguments(parser):
    parser.add_argument(
        "--preset",
        choices=("quick", "full"),
        default="quick",
        help="quick: digits MLP, relu/helu(0.05)/gelu/leaky, 3 seeds (the flow's, ~1 min); "
        "full: every activation and alpha, 8 seeds, digits and breast_cancer (default: quick). "
        "Options below override the preset.",
    )
    parser.add_argument(
        "--dataset",
        action="append",
        choices=("digits", "breast_cancer", "wine"),
        help="dataset (repeat for several; each gets <out>/<dataset>/ when more than one)",
    )
    parser.add_argument("--model", choices=("mlp", "cnn"), help="model (cnn: digits only)")
    parser.add_argument("--acts", nargs="+", choices=ACTS, metavar="ACT", help=f"of {ACTS}")
    parser.add_argument(
        "--alphas",
        nargs="+",
        type=float,
        metavar="A",
        help="HeLU alphas (full: 0.001 0.01 0.05 0.1)",
    )
    parser.add_argument("--seeds", type=int, metavar="N", help="number of seeds (0..N-1)")
    parser.add_argument("--epochs", type=int, help="training epochs per run")
    parser.add_argument("--lr", type=float, help="SGD learning rate (momentum 0.9)")
    parser.add_argument("--threads", type=int, default=1, help="torch threads (default: 1)")
    parser.add_argument("--no-checkpoints", action="store_true", help="do not write checkpoints")
    parser.add_argument("--out", default="build/train", help="output folder (default: build/train)")
    add_force(parser, "write into an --out study folder")
    parser.add_argument(
        "--integer",
        action="store_true",
        help="the integer-training study instead (digits, batch 1, ReLU T=0 vs HeLU thresholds, "
        "scratch / PTQ fine-tuning / float baselines; quick: the flow's row, full: the "
        "documented study); --seeds and --epochs apply",
    )


def run_integer(args) -> int:
    from dataclasses import replace

    from helu.golden.intstudy import FULL, QUICK, run_int_study, write_metrics
    from helu.steps.intnet import format_table, plot_loss

    cfg = FULL if args.preset == "full" else QUICK
    if args.seeds is not None:
        if args.seeds < 1:
            raise ValueError(f"--seeds must be a positive integer, not {args.seeds}")
        cfg = replace(cfg, seeds=tuple(range(args.seeds)))
    if args.epochs is not None:
        cfg = replace(cfg, epochs=args.epochs)
    metrics = run_int_study(cfg, args.out)
    metrics["plot"] = plot_loss(args.out, metrics["results"])
    write_metrics(metrics, args.out)
    print(f"integer study: {args.out}/int_metrics.json ({metrics['seconds']:.0f} s)")
    print(format_table(metrics))
    return 0


def run(args) -> int:
    from dataclasses import replace
    from pathlib import Path

    from helu.common import outdir
    from helu.golden.train import PRESETS, format_table, run_study

    if args.integer:
        return run_integer(args)

    overrides = {"threads": args.threads}
    if args.no_checkpoints:
        overrides["checkpoints"] = False
    for name in ("model", "acts", "alphas", "epochs", "lr"):
        if getattr(args, name) is not None:
            overrides[name] = getattr(args, name)
    if args.seeds is not None:
        if args.seeds < 1:
            raise ValueError(f"--seeds must be a positive integer, not {args.seeds}")
        overrides["seeds"] = tuple(range(args.seeds))
    configs = [replace(c, **overrides) for c in PRESETS[args.preset]]
    if args.dataset:
        configs = [replace(configs[0], dataset=d) for d in dict.fromkeys(args.dataset)]
    # the folder is checked before minutes of training, and marked as a study folder of ours
    out = outdir.prepare(Path(args.out), "train", force=args.force)
    for cfg in configs:
        folder = out / cfg.dataset if len(configs) > 1 else out
        metrics = run_study(cfg, folder)
        print(f"{cfg.dataset} {cfg.model}: {folder / 'metrics.json'}")
        print(format_table(metrics))
        print(metrics["comparison"]["summary"])
    return 0
