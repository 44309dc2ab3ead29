"""The ``helu`` command line: one subcommand per step of the flow.

Errors a user can fix (``helu.common.errors.UserError``, bad parameters, missing files, a tool
that fails) end in one line on stderr and a non-zero exit; set ``HELU_DEBUG=1`` to see the
traceback instead. Any other exception (a ``TypeError`` above all) is a bug and keeps its
traceback.
"""

import argparse
import importlib
import logging
import os
import signal
import sys
import warnings

from helu import __version__
from helu.commands import NAMES
from helu.common.errors import UserError
from helu.common.outdir import OutputFolderError, UnwritableFolderError

__all__ = ["main", "build_parser"]

# Exceptions that mean "the input or the environment is wrong", not "the program is wrong":
# UserError (a ValueError) and the ValueError/OSError/RuntimeError (hw.tools.ToolError) that
# wrong values, missing files and failing tools raise. A TypeError is a bug: it surfaces.
USER_ERRORS = (UserError, ValueError, OSError, RuntimeError)


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


class Terminated(KeyboardInterrupt):
    """SIGTERM, raised like Ctrl-C so the same clean-up runs (child process groups are killed,
    scratch folders removed)."""


def _terminate(signum, frame):
    raise Terminated()


def _global_options(argv: list[str]) -> list[str]:
    """``-q``/``--quiet`` is taken after the subcommand too (``helu sim -q ...``)."""
    if any(a in ("-q", "--quiet") for a in argv[1:]) and "--" not in argv:
        argv = [a for a in argv if a not in ("-q", "--quiet")]
        return ["-q", *argv]
    return argv


def _quiet_unused():
    # Units built before an error or interrupt were never elaborated; Amaranth would say so
    # ("created but never used") when they are collected: noise after the one-line message.
    warnings.filterwarnings("ignore", message=".*created but never used")


def _one_line_warning(message, category, filename, lineno, file=None, line=None):
    print(f"helu: warning: {message}", file=sys.stderr)


def _message(exc: BaseException) -> str:
    """The one line a user error prints: the output-folder rule's errors worded as the options
    the user typed (``--out``, ``--force``); any other error's first line."""
    if isinstance(exc, OutputFolderError):
        way_out = exc.way_out
        if exc.force_kind is not None:
            way_out = (
                f"choose a new folder, or pass --force to replace this {exc.force_kind} folder"
            )
        return f"--out {exc.folder}: {exc.why}; {way_out}"
    if isinstance(exc, UnwritableFolderError):
        return f"--out {exc}"
    text = str(exc).strip()
    return text.splitlines()[0] if text else type(exc).__name__


def main(argv=None) -> int:
    argv = list(sys.argv[1:] if argv is None else argv)
    args = build_parser().parse_args(_global_options(argv))
    logging.basicConfig(
        level=logging.WARNING if args.quiet else logging.INFO,
        format="[%(asctime)s] %(message)s",
        datefmt="%H:%M:%S",
        stream=sys.stderr,
    )
    # Warnings reach the user as one line while the command runs (pool workers show them the
    # same way: helu.common.executor); the library's own are Python's again after it.
    shown, warnings.showwarning = warnings.showwarning, _one_line_warning
    previous = signal.signal(signal.SIGTERM, _terminate)
    try:
        return int(args.run(args) or 0)
    except KeyboardInterrupt as exc:
        _quiet_unused()
        terminated = isinstance(exc, Terminated)
        print(f"helu: {'terminated' if terminated else 'interrupted'}", file=sys.stderr)
        return 143 if terminated else 130
    except USER_ERRORS as exc:
        if os.environ.get("HELU_DEBUG"):
            raise
        _quiet_unused()
        print(f"helu {args.command}: error: {_message(exc)}", file=sys.stderr)
        return 1
    finally:
        signal.signal(signal.SIGTERM, previous)
        warnings.showwarning = shown
