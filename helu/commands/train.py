"""`helu train`: not built yet."""

HELP = "(train: not built yet)"


def add_arguments(parser):
    pass


def run(args) -> int:
    raise RuntimeError("'helu train' is not built yet")
