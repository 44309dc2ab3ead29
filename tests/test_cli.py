"""The `helu` command line as a user meets it: help for every subcommand, one-line errors."""

import subprocess
import sys

import pytest

from helu.cli import build_parser, main
from helu.commands import NAMES


def run_cli(*argv):
    """Run ``python -m helu`` in a child process, as a user's shell would."""
    return subprocess.run(
        [sys.executable, "-m", "helu", *argv], capture_output=True, text=True, timeout=120
    )


def test_every_subcommand_has_help(capsys):
    for name in NAMES:
        with pytest.raises(SystemExit) as exit_info:
            main([name, "--help"])
        assert exit_info.value.code == 0, name
        assert f"usage: helu {name}" in capsys.readouterr().out


def test_help_is_light():
    # `helu --help` builds every subparser; it must not import torch to do so. It does import
    # amaranth: the help lists the registered units and their own parameters, and the registry
    # holds the units' components (about 0.3 s of start-up on these machines).
    done = run_cli("--help")
    assert done.returncode == 0 and "flow" in done.stdout
    code = "import sys, helu.cli; helu.cli.build_parser(); print(sorted(m for m in sys.modules))"
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True)
    loaded = done.stdout
    assert "'torch'" not in loaded and "'helu.hw.units'" in loaded, loaded


@pytest.mark.parametrize(
    "argv,message",
    [
        (["verilog", "--width", "0"], "Width must be between 2 and 32 bits, not 0"),
        (["verilog", "--lanes", "0"], "Lane count must be a positive integer, not 0"),
        (
            ["verilog", "--unit", "forward-train", "--alpha", "-1"],
            "Alpha must be a finite number >= 0, not -1.0",
        ),
        (["sim", "--golden", "does/not/exist"], "no such golden folder"),
        (["report", "--out", "does/not/exist"], "no such report folder"),
        (["golden", "--checkpoint", "does/not/exist.pt"], "not found"),
        (["flow", "--seeds", "0"], "--seeds must be a positive integer, not 0"),
    ],
)
def test_wrong_arguments_give_one_line(tmp_path, argv, message):
    argv = [a.replace("does/not/exist", str(tmp_path / "missing")) for a in argv]
    out = ["--out", str(tmp_path / "out")] if argv[0] == "verilog" else []
    done = run_cli("-q", *argv, *out)
    assert done.returncode == 1, (done.stdout, done.stderr)
    lines = done.stderr.strip().splitlines()
    assert len(lines) == 1, done.stderr
    assert lines[0].startswith(f"helu {argv[0]}: error: ") and message in lines[0], lines[0]
    assert not (tmp_path / "out").exists()
    # Without -q, progress lines may come first; the error is still one line, and the last.
    done = run_cli(*argv, *out)
    errors = [line for line in done.stderr.splitlines() if ": error: " in line]
    assert done.returncode == 1 and errors == [done.stderr.strip().splitlines()[-1]]


def test_unknown_simulator_is_refused(tmp_path):
    golden = tmp_path / "golden"
    golden.mkdir()
    done = run_cli("sim", "--golden", str(golden), "--sim", "modelsim")
    assert done.returncode != 0
    assert "unknown simulator 'modelsim'" in done.stderr and done.stderr.count("\n") == 1


def test_usage_errors_exit_2():
    done = run_cli("verilog", "--width", "eight")
    assert done.returncode == 2 and "invalid int value" in done.stderr
    with pytest.raises(SystemExit):
        build_parser().parse_args(["nonsense"])


@pytest.mark.parametrize(
    "argv,message",
    [
        (["--units", "sigmoid"], "unknown unit 'sigmoid'; choose from forward"),
        (["--targets", "xc7"], "unknown target 'xc7'; choose from ice40"),
        (["--synth-widths", "8,x"], "--synth-widths takes comma-separated positive integers"),
        (["--jobs", "0"], "--jobs must be a positive integer, not 0"),
    ],
)
def test_flow_checks_options_before_training(tmp_path, argv, message):
    done = run_cli("-q", "flow", "--out", str(tmp_path / "out"), *argv)
    assert done.returncode == 1 and message in done.stderr, done.stderr
    assert not (tmp_path / "out").exists()


def test_user_errors_are_one_line_and_bugs_keep_their_traceback(monkeypatch, capsys):
    """A UserError (or ValueError) ends in one line and rc 1; a TypeError is a bug and surfaces
    with its traceback instead of passing for a user's mistake."""
    import helu.commands.verilog as verilog_command
    from helu.common.errors import UserError

    def wrong_input(args):
        raise UserError("--unit 'x': no such unit\nsecond line")

    monkeypatch.setattr(verilog_command, "run", wrong_input)
    assert main(["verilog"]) == 1
    assert capsys.readouterr().err.strip() == "helu verilog: error: --unit 'x': no such unit"

    def bug(args):
        raise TypeError("unsupported operand type(s)")

    monkeypatch.setattr(verilog_command, "run", bug)
    with pytest.raises(TypeError, match="unsupported operand"):
        main(["verilog"])


def test_warnings_are_one_line_at_the_cli_and_warnings_in_the_library(tmp_path, capsys):
    """During a command a warning is one line on stderr (no file, line or source); after it,
    the library's warnings are Python's again (a program that called main keeps its own)."""
    import warnings

    before = warnings.showwarning
    argv = [
        "-q",
        "verilog",
        "--unit",
        "forward-train",
        "--frac",
        "20",
        "--out",
        str(tmp_path / "v"),
    ]
    assert main(argv) == 0
    err = capsys.readouterr().err.strip().splitlines()
    assert err == [
        "helu: warning: alpha=0.05 covers every negative code of Q8.20 (T clamps to -129): the "
        "backward mask is always 1; use fewer fractional bits or a smaller alpha"
    ], err
    assert warnings.showwarning is before
