"""common/outdir.py (``helu.common.outdir``): kinds registered by their writers, errors that name
the folder but no command-line option, worded as ``--out``/``--force`` by the CLI only."""

import pytest

from helu.cli import _message, main
from helu.common import outdir


def test_kinds_are_registered_by_their_writers():
    import helu.golden.vectors  # noqa: F401 (registers the golden kinds)
    import helu.sim.runner  # noqa: F401 (registers "sim")

    for kind in ("golden", "golden-net", "sim", "train", "synth", "prove", "flow", "verilog"):
        assert kind in outdir.KINDS, kind


def test_register_kind_again_and_wrong():
    assert outdir.register_kind("sim", ["summary.json"]) == "sim"  # the same rule: a no-op
    with pytest.raises(ValueError, match="'sim' is already registered with another rule"):
        outdir.register_kind("sim", ["other.json"])
    with pytest.raises(ValueError, match="a folder kind is a non-empty string"):
        outdir.register_kind("", ["x"])
    with pytest.raises(ValueError, match="unknown output kind 'nope'"):
        outdir.claim("anywhere", "nope")


def test_the_rule_names_the_folder_not_an_option(tmp_path):
    (tmp_path / "notes.txt").write_text("mine")
    with pytest.raises(outdir.OutputFolderError) as info:
        outdir.claim(tmp_path, "synth")
    assert str(info.value).startswith(f"{tmp_path}: holds files that helu did not write")
    assert "--out" not in str(info.value) and "--force" not in str(info.value)
    assert _message(info.value).startswith(f"--out {tmp_path}: holds files")


def test_the_cli_words_force_as_its_option(tmp_path, capsys):
    (tmp_path / "results.json").write_text("{}")  # looks like a synth folder, unmarked
    with pytest.raises(outdir.OutputFolderError) as info:
        outdir.claim(tmp_path, "synth")
    assert info.value.force_kind == "synth" and "--force" not in str(info.value)
    assert "pass --force to replace this synth folder" in _message(info.value)
    assert main(["-q", "synth", "--unit", "forward", "--out", str(tmp_path)]) == 1
    err = capsys.readouterr().err
    assert f"--out {tmp_path}: holds files helu did not mark" in err and "pass --force" in err
