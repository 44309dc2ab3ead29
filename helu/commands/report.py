"""`helu report`: not built yet."""

HELP = "(report: not built yet)"


def add_arguments(parser):
    pass


def run(args) -> int:
    raise RuntimeError("'helu report' is not built yet")
