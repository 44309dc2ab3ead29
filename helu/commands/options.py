"""Options the subcommands share: comma-separated lists, the units' own parameters, --force."""

__all__ = ["int_list", "name_list", "add_unit_params", "unit_param_values", "add_force"]


def add_force(parser, action: str) -> None:
    """``--force``: what the command then does with an output folder that looks like its own but
    lacks helu's marker (``helu.common.outdir.claim``), e.g.
    ``"replace an --out golden folder"``."""
    parser.add_argument(
        "--force",
        action="store_true",
        help=f"{action} that helu did not mark as its own (an older one)",
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
