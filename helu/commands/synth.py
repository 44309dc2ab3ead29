"""`helu synth`: not built yet."""

HELP = "(synth: not built yet)"


def add_arguments(parser):
    pass


def run(args) -> int:
    raise RuntimeError("'helu synth' is not built yet")
