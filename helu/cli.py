"""The ``helu`` command line: one subcommand per step of the flow.

Errors a user can fix (bad parameters, missing files, a tool that fails) end in one line on
stderr and a non-zero exit; set ``HELU_DEBUG=1`` to see the traceback instead.
"""

import argparse
import importlib
import logging
import os
import sys
import warnings

from helu import __version__
from helu.commands import NAMES

__all__ = ["main", "build_parser"]

# Exceptions that mean "the input or the environment is wrong", not "the program is wrong".
USER_ERRORS = (ValueError, TypeError, OSError, RuntimeError)


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="helu",
        description="HeLU from a trained PyTorch model to verified gates: train, export golden "
        "vectors, generate Verilog, simulate with cocotb, synthesize with Yosys/nextpnr.",
    )
    parser.add_argument("--version", action="version", version=f"helu {__version__}")
    parser.add_argument("-q", "--quiet", action="store_true", help="print only warnings and errors")
    subparsers = parser.add_subparsers(dest="command", metavar="COMMAND", required=True)
    for name in NAMES:
        module = importlib.import_module(f"helu.commands.{name}")
        sub = subparsers.add_parser(name, help=module.HELP, description=module.HELP)
        module.add_arguments(sub)
        sub.set_defaults(run=module.run)
    return parser


def _one_line_warning(message, category, filename, lineno, file=None, line=None):
    print(f"helu: warning: {message}", file=sys.stderr)


def main(argv=None) -> int:
    args = build_parser().parse_args(argv)
    logging.basicConfig(
        level=logging.WARNING if args.quiet else logging.INFO,
        format="[%(asctime)s] %(message)s",
        datefmt="%H:%M:%S",
        stream=sys.stderr,
    )
    warnings.showwarning = _one_line_warning
    try:
        return int(args.run(args) or 0)
    except KeyboardInterrupt:
        print("helu: interrupted", file=sys.stderr)
        return 130
    except USER_ERRORS as exc:
        if os.environ.get("HELU_DEBUG"):
            raise
        message = str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__
        print(f"helu {args.command}: error: {message}", file=sys.stderr)
        return 1
