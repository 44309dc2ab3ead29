"""`helu sim`: not built yet."""

HELP = "(sim: not built yet)"


def add_arguments(parser):
    pass


def run(args) -> int:
    raise RuntimeError("'helu sim' is not built yet")
