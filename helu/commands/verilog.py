"""`helu verilog`: not built yet."""

HELP = "(verilog: not built yet)"


def add_arguments(parser):
    pass


def run(args) -> int:
    raise RuntimeError("'helu verilog' is not built yet")
