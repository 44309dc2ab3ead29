"""`helu flow`: not built yet."""

HELP = "(flow: not built yet)"


def add_arguments(parser):
    pass


def run(args) -> int:
    raise RuntimeError("'helu flow' is not built yet")
