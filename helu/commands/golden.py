"""`helu golden`: golden vectors (z, g, y, mask, dz per HeLU layer) from a trained checkpoint."""

HELP = (
    "export fixed-point golden vectors of a trained HeLU checkpoint (npz, $readmemh hex, manifest)"
)


def _widths(text):
    items = tuple(w.strip() for w in text.split(",") if w.strip())
    if not items:
        raise ValueError(f"--widths needs at least one width like 8,16 or 8:5, not {text!r}")
    return items  # checked (W or W:F) by the exporter


def add_arguments(parser):
    parser.add_argument("--checkpoint", required=True, help="a checkpoint written by 'helu train'")
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
        "--out", default="build/golden", help="output folder (default build/golden)"
    )
    parser.add_argument(
        "--force",
        action="store_true",
        help="replace an --out golden folder that helu did not mark as its own (an older one)",
    )


def run(args) -> int:
    from helu.golden.export import export_checkpoint
    from helu.golden.vectors import load_golden

    path = export_checkpoint(
        args.checkpoint,
        args.out,
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
