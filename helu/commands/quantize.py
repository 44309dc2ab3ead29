"""`helu quantize`: your own float PyTorch model as an integer network's golden folder."""

from helu.commands.options import add_force, add_trajectory_options, check_trajectory_options

HELP = (
    "quantize your own PyTorch model (a chain of Linear/Conv2d/BatchNorm/ReLU or HeLU/Flatten) "
    "on your data: the integer model folder, float vs integer accuracy, golden vectors"
)


def add_arguments(parser):
    parser.add_argument(
        "--checkpoint",
        required=True,
        help="the model: a module saved with torch.save(model, PATH), or a 'helu train' checkpoint",
    )
    parser.add_argument(
        "--data",
        help="DATA.npz with x_train, y_train, x_test, y_test (as the model takes them), or a "
        "built-in set: digits (images pixel/16, N x 1 x 8 x 8), wine, breast_cancer "
        "(standardised); default: a 'helu train' checkpoint's own set",
    )
    parser.add_argument(
        "--alpha",
        type=float,
        help="HeLU alpha for the threshold T (default: the model's HeLU alpha, 0 for ReLU)",
    )
    add_trajectory_options(
        parser,
        "golden training steps recorded (the trajectory on-chip training is checked against), "
        "0 for none",
    )
    parser.add_argument("--seed", type=int, default=0, help="trajectory order seed (default: 0)")
    parser.add_argument("--out", default="build/model", help="output folder (default: %(default)s)")
    add_force(parser, "replace an --out golden folder")


def run(args) -> int:
    from helu.golden.quantize import export

    check_trajectory_options(args)
    if args.seed < 0:
        raise ValueError(f"--seed must be a non-negative integer, not {args.seed}")
    path, result = export(
        args.checkpoint,
        args.data,
        args.out,
        alpha=args.alpha,
        steps=args.steps,
        every=args.snapshot_every,
        lanes=args.lanes,
        seed=args.seed,
        force=args.force,
    )
    model = result.model
    print(f"integer network: {path.parent} ({result.data.name}, threshold T={model.threshold})")
    print(f"{'layer':<14} {'op':<34} {'act':<5} {'shift':>5} {'rms err (LSB)':>13}")
    errors = result.quantized.errors
    for i, layer in enumerate(result.imported.layers):
        folded = f" + {', '.join(layer.folded)} folded" if layer.folded else ""
        print(
            f"{layer.name:<14} {layer.op.describe() + folded:<34} {layer.act or '-':<5} "
            f"{model.shifts[i]:>5} {errors[i]:>13.3f}"
        )
    fmt = model.input
    print(
        f"input codes {fmt.lo}..{fmt.hi} = value * 2**{fmt.frac} ({result.clamped} values "
        f"clamped); test accuracy float {100 * result.float_accuracy:.2f} %, integer "
        f"{100 * result.integer_accuracy:.2f} % ({len(result.x_test)} samples)"
    )
    return 0
