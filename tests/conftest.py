"""What every test module shares: :func:`need`, the one way a test skips for a missing tool.

Helpers that build stimulus or golden data live in ``tests/streams.py`` and
``tests/golden_sets.py``; test modules import those, never each other.
"""

import shutil

import pytest

__all__ = ["need"]


def need(*tools: str) -> None:
    """Skip the calling test unless every one of ``tools`` is available, saying what is missing.

    A simulator (``icarus``, ``verilator``) is checked as the benches run it
    (``sim.runner.tool_missing``: the version cocotb needs included); a tool of
    ``hw.tools.TOOLS`` (``yosys``, ``nextpnr-ice40``, ...) as synthesis finds it (on ``PATH`` or
    next to the running Python), the skip naming the package to install; any other name must be
    an executable on ``PATH``.
    """
    from helu.hw.tools import TOOLS, ToolMissing, find_tool
    from helu.sim import runner

    for tool in tools:
        if tool in runner.SIMULATORS:
            missing = runner.tool_missing(tool)
            if missing:
                pytest.skip(f"{tool} not available: {missing}")
        elif tool in TOOLS:
            try:
                find_tool(tool)
            except ToolMissing as exc:
                pytest.skip(str(exc))
        elif not shutil.which(tool):
            pytest.skip(f"{tool} is not installed")
