"""One module per ``helu`` subcommand.

Each module defines ``HELP`` (one line), ``add_arguments(parser)`` and ``run(args) -> int``.
Module level imports stay light (no torch, no amaranth): ``helu --help`` imports them all.
"""

NAMES = [
    "train",
    "golden",
    "example",
    "quantize",
    "verilog",
    "sim",
    "synth",
    "prove",
    "flow",
    "report",
    "study",
    "onchip",
]
