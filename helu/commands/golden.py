"""`helu golden`: golden vectors (z, g, y, mask, dz per HeLU layer) from a trained checkpoint;
with ``--net``, the integer network's golden folder (``golden.intgolden``)."""

import json

from helu.commands.options import add_force, add_trajectory_options, check_trajectory_options

HELP = (
    "export fixed-point golden vectors of a trained HeLU checkpoint (npz, $readmemh hex, "
    "manifest); --net: the integer network (model, inference vectors) for the RTL core"
)


def _widths(text):
    items = tuple(w.strip() for w in text.split(",") if w.strip())
    if not items:
        raise ValueError(f"--widths needs at least one width like 8,16 or 8:5, not {text!r}")
    return items  # checked (W or W:F) by the exporter


def add_arguments(parser):
    parser.add_argument(
        "--checkpoint",
        help="a checkpoint written by 'helu train' (required without --net; with --net an MLP "
        "on digits to quantize, default: train a float 64-32-32-10 HeLU MLP first)",
    )
    net = parser.add_argument_group("integer network (--net)")
    net.add_argument(
        "--net",
        action="store_true",
        help="export the integer HeLU network: PTQ model, test-split inference vectors, hex",
    )
    net.add_argument(
        "--alpha",
        type=float,
        help="HeLU alpha giving the threshold T (default: the checkpoint's, else 0.05)",
    )
    net.add_argument("--seed", type=int, default=0, help="float training seed (default: 0)")
    net.add_argument("--epochs", type=int, help="float training epochs (default: 40)")
    add_trajectory_options(net, "training-trajectory steps recorded in full, 0 for none")
    parser.add_argument(
        "--widths",
        default="8,16",
        help="code widths, comma-separated; W:F gives that set its own z fractional bits, e.g. "
        "8,16,8:5 (default 8,16)",
    )
    parser.add_argument(
        "--frac",
        default="auto",
        help="fractional bits of z: auto (per tensor, no saturation; default) or an integer",
    )
    parser.add_argument(
        "--grad-frac", default="auto", help="fractional bits of g: auto (default) or an integer"
    )
    parser.add_argument(
        "--max-elements", type=int, help="keep the first N elements of each layer (default: all)"
    )
    parser.add_argument(
        "--allow-vanishing-alpha",
        action="store_true",
        help="export even when a given --frac leaves alpha no negative code in the band",
    )
    parser.add_argument(
        "--out", help="output folder (default build/golden, with --net build/golden-net)"
    )
    add_force(parser, "replace an --out golden folder")


def run_net(args) -> int:
    from helu.golden.intgolden import export_net

    if args.epochs is not None and args.epochs < 1:
        raise ValueError(f"--epochs must be a positive integer, not {args.epochs}")
    if args.seed < 0:
        raise ValueError(f"--seed must be a non-negative integer, not {args.seed}")
    check_trajectory_options(args)
    path = export_net(
        args.out or "build/golden-net",
        checkpoint=args.checkpoint,
        alpha=args.alpha,
        seed=args.seed,
        epochs=args.epochs,
        steps=args.steps,
        every=args.snapshot_every,
        lanes=args.lanes,
        force=args.force,
    )
    manifest = json.loads(path.read_text())
    acc = manifest["accuracy"]
    print(
        f"integer network: {path.parent} ({'-'.join(map(str, manifest['sizes']))}, shifts "
        f"{manifest['shifts']}, T={manifest['threshold']}); test accuracy float "
        f"{100 * acc['float']:.2f} %, integer {100 * acc['integer']:.2f} % "
        f"({manifest['samples']} samples)"
    )
    return 0


def run(args) -> int:
    if args.net:
        return run_net(args)
    if args.checkpoint is None:
        raise ValueError("--checkpoint is required (or --net for the integer network)")
    from helu.golden.export import export_checkpoint
    from helu.golden.vectors import load_golden

    path = export_checkpoint(
        args.checkpoint,
        args.out or "build/golden",
        widths=_widths(args.widths),
        frac=args.frac,
        grad_frac=args.grad_frac,
        max_elements=args.max_elements,
        allow_vanishing_alpha=args.allow_vanishing_alpha,
        force=args.force,
    )
    meta, sets = load_golden(path.parent)
    print(f"golden vectors: {path} ({meta['dataset']}, accuracy {100 * meta['accuracy']:.2f} %)")
    print(
        f"{'set':<12} {'elements':>8} {'z fmt':>7} {'T':>5} {'g fmt':>7} {'sat z/g':>8} "
        f"{'mismatch':>8} {'band':>6}"
    )
    for s in sets:
        st = s.stats
        print(
            f"{s.name:<12} {s.elements:>8} {str(s.z_fmt):>7} {s.threshold:>5} {str(s.g_fmt):>7} "
            f"{st['z_saturations']:>4}/{st['g_saturations']:<3} {st['mask_mismatch']:>8} "
            f"{st['band_elements']:>6}"
        )
    return 0
