"""Options the subcommands share: comma-separated lists, the units' own parameters, --force."""

__all__ = [
    "int_list",
    "name_list",
    "add_unit_params",
    "unit_param_values",
    "add_force",
    "add_trajectory_options",
    "check_trajectory_options",
]


def add_force(parser, action: str) -> None:
    """``--force``: what the command then does with an output folder that looks like its own but
    lacks helu's marker (``helu.common.outdir.claim``), e.g.
    ``"replace an --out golden folder"``."""
    parser.add_argument(
        "--force",
        action="store_true",
        help=f"{action} that helu did not mark as its own (an older one)",
    )


def add_trajectory_options(parser, steps_help: str) -> None:
    """``--steps``, ``--snapshot-every`` and ``--lanes`` of a command that writes a training
    trajectory (``helu golden --net``, ``helu quantize``); :func:`check_trajectory_options`."""
    parser.add_argument(
        "--steps", type=int, default=64, help=steps_help + " (default: %(default)s)"
    )
    parser.add_argument(
        "--snapshot-every",
        type=int,
        default=16,
        help="full master/bias snapshot every K steps (default: %(default)s)",
    )
    parser.add_argument(
        "--lanes",
        type=int,
        default=8,
        metavar="P",
        help="the trajectory's state digests are the training engine's at P MACs per cycle "
        "(what 'helu onchip --lanes P' reads; default: %(default)s)",
    )


def check_trajectory_options(args) -> None:
    """Refuse the :func:`add_trajectory_options` values no trajectory can have."""
    if args.lanes < 1:
        raise ValueError(f"--lanes must be a positive integer, not {args.lanes}")
    if args.steps < 0 or args.snapshot_every < 1:
        raise ValueError(
            f"--steps must be >= 0 and --snapshot-every >= 1, not {args.steps} and "
            f"{args.snapshot_every}"
        )


def int_list(text: str, option: str) -> tuple[int, ...]:
    """``"8,16"`` -> ``(8, 16)``: positive integers, duplicates dropped, order kept."""
    values = []
    for part in str(text).split(","):
        try:
            value = int(part.strip())
        except ValueError:
            value = 0
        if value < 1:
            raise ValueError(f"{option} takes comma-separated positive integers, not {text!r}")
        if value not in values:
            values.append(value)
    return tuple(values)


def name_list(text: str, known, what: str) -> list[str]:
    """``"a,b"`` or ``"all"`` -> names from ``known``; an unknown one is refused by name."""
    known = list(known)
    if text == "all":
        return known
    names = []
    for part in str(text).split(","):
        part = part.strip()
        if part not in known:
            raise ValueError(f"unknown {what} {part!r}; choose from {', '.join(known)} or all")
        if part not in names:
            names.append(part)
    return names


def add_unit_params(parser, units) -> None:
    """One ``--<name>`` option per unit-declared parameter (``UnitInfo.params``), from the registry.

    The option's default and help are the parameter's own, with the units that read it named.
    """
    readers: dict[str, list[str]] = {}
    declared = {}
    for unit, info in units.items():
        for param in info.params:
            readers.setdefault(param.name, []).append(unit)
            declared[param.name] = param
    for name, param in declared.items():
        parser.add_argument(
            "--" + name.replace("_", "-"),
            type=param.type,
            default=param.default,
            help=f"{param.help}; units: {', '.join(readers[name])} (default: {param.default})",
        )


def unit_param_values(args, units) -> dict:
    """The unit-declared parameters' values parsed by :func:`add_unit_params`."""
    return {p.name: getattr(args, p.name) for info in units.values() for p in info.params}
