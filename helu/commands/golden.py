"""`helu golden`: not built yet."""

HELP = "(golden: not built yet)"


def add_arguments(parser):
    pass


def run(args) -> int:
    raise RuntimeError("'helu golden' is not built yet")
