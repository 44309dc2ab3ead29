"""Parsing of the comma-separated list options the subcommands share (one wording for all)."""

__all__ = ["int_list", "name_list"]


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
