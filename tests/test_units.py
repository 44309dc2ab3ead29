# amaranth: UnusedElaboratable=no
"""Unit registry (hw/units/): contents, the contract every unit follows, shared checks."""

import subprocess
import sys

import numpy as np
import pytest
from amaranth.hdl import Fragment
from amaranth.lib import stream

from helu.golden import fixed
from helu.hw import units
from helu.hw.units import (
    COMMON_PARAMS,
    UNITS,
    UnitParams,
    check_lanes,
    check_threshold,
    check_width,
)
from helu.hw.units.baselines import BASELINE_UNITS
from helu.hw.verilog import payload_fields

pytestmark = pytest.mark.filterwarnings("ignore::helu.golden.fixed.AlphaVanishesWarning")


def test_registry_holds_helu_and_baseline_units():
    assert {"forward", "forward-train", "backward-mask", "backward-z"} <= set(UNITS)
    assert {"relu-cmp", "leaky", "igelu"} <= set(UNITS)
    assert set(units.HELU_UNITS) | set(BASELINE_UNITS) <= set(UNITS)  # and any new unit file


@pytest.mark.parametrize("first", ["helu.hw.units.baselines", "helu.hw.units"])
def test_import_order_does_not_matter(first):
    code = f"import {first}; from helu.hw.units import UNITS; print(len(UNITS))"
    r = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=60)
    assert r.returncode == 0, r.stderr
    assert int(r.stdout) == len(UNITS)


@pytest.mark.parametrize("name", list(UNITS))
def test_unit_follows_the_contract(name):
    info = UNITS[name]
    params = UnitParams(width=8, lanes=3, frac=6)
    unit = info.build(params)
    for port in ("i", "o"):
        assert isinstance(unit.signature.members[port].signature, stream.Signature), port
    assert isinstance(unit.latency, int) and unit.latency >= 1
    assert isinstance(type(unit).latency, property) and type(unit).latency.fset is None
    assert set(info.uses) <= set(COMMON_PARAMS), info.uses
    Fragment.get(unit, None)  # elaborates
    for field in payload_fields(unit.i.payload.shape()) + payload_fields(unit.o.payload.shape()):
        assert field["lanes"] == params.lanes, field
    # The reference answers with exactly the output fields, shaped (N, lanes).
    rng = np.random.default_rng(0)
    inputs = {}
    for f in payload_fields(unit.i.payload.shape()):
        lo, hi = (-(1 << (f["width"] - 1)), 1 << (f["width"] - 1)) if f["signed"] else (0, 2)
        inputs[f["name"]] = rng.integers(lo, hi, size=(7, params.lanes))
    out = info.reference(params, inputs)
    assert list(out) == [f["name"] for f in payload_fields(unit.o.payload.shape())]
    assert all(np.shape(v) == (7, params.lanes) for v in out.values())


def test_threshold_units_follow_golden():
    params = UnitParams(width=8, frac=8, alpha=0.05)
    t = fixed.threshold(params.alpha, fixed.Format(8, 8))
    z = np.arange(-128, 128).reshape(-1, 1)
    g = np.full_like(z, 5)
    ref = UNITS["backward-z"].reference(params, {"z": z, "g": g})
    np.testing.assert_array_equal(ref["dz"], fixed.backward(g, fixed.mask(z, t)))
    # A runtime threshold given with the inputs wins over the one alpha gives.
    ref = UNITS["forward-train"].reference(params, {"z": z, "threshold": 3})
    np.testing.assert_array_equal(ref["mask"], (z > 3).astype(int))
    assert UNITS["backward-z"].build(params).threshold_const == t


def test_gradient_width():
    assert UnitParams(width=12).gradient_width == 12
    assert UnitParams(width=12, grad_width=6).gradient_width == 6


def test_checks_pass_good_values():
    assert check_width(2) == 2 and check_width(fixed.MAX_WIDTH) == fixed.MAX_WIDTH
    assert check_lanes(1) == 1
    assert check_threshold(-256, 8) == -256 and check_threshold(255, 8) == 255


def test_check_width_wrong():
    with pytest.raises(ValueError, match=r"^Width must be between 2 and 32 bits, not 33$"):
        check_width(33)
    with pytest.raises(ValueError, match=r"^Gradient width must be between 2 and 32 bits, not 1$"):
        check_width(1, "Gradient width")
    with pytest.raises(TypeError, match=r"^Width must be an integer, not True$"):
        check_width(True)


def test_check_lanes_wrong():
    with pytest.raises(ValueError, match=r"^Lane count must be a positive integer, not -2$"):
        check_lanes(-2)
    with pytest.raises(TypeError, match=r"^Lane count must be a positive integer, not '4'$"):
        check_lanes("4")


def test_check_threshold_wrong():
    with pytest.raises(ValueError, match=r"^Threshold must be between -256 and 255 for 8-bit"):
        check_threshold(-257, 8)
    with pytest.raises(TypeError, match=r"^Threshold must be an integer, not None$"):
        check_threshold(None, 8)


def test_every_unit_describes_itself():
    from helu.golden.activations import STUDY_ACTIVATIONS

    studies = [info.study for info in UNITS.values() if info.study]
    assert len(studies) == len(set(studies)), "two units claim one study activation"
    for name, info in UNITS.items():
        assert info.description, name
        assert info.inputs in (("z",), ("z", "g"), ("mask", "g")), name
        assert info.study is None or info.study in STUDY_ACTIVATIONS, name
        assert info.max_lanes is None or info.max_lanes_why, name
        for param in info.params:
            assert units.PARAMS[param.name] is param and param.help and param.abbrev, name
        built = info.build(UnitParams(lanes=2))
        assert [n for n, _ in built.i.payload.shape()] == list(info.inputs), name
        Fragment.get(built, None)
    assert units.study_units()["helu"] == "forward"
    assert UNITS["igelu"].max_lanes == 1


def test_unit_params_carry_a_units_own_parameter():
    p = UnitParams(leaky_shift=3)
    assert p.leaky_shift == 3 and UnitParams().leaky_shift == 7
    assert UnitParams(leaky_shift=7) == UnitParams() and hash(UnitParams(leaky_shift=7)) == hash(
        UnitParams()
    )
    assert p.replace(width=16) == UnitParams(width=16, leaky_shift=3)
    assert p.to_dict()["leaky_shift"] == 3 and "leaky_shift" not in UnitParams().to_dict()
    assert UNITS["leaky"].shaping(p) == {"width": 8, "lanes": 1, "leaky_shift": 3}
    assert UNITS["backward-z"].shaping(UnitParams(threshold_port=True)) == {
        "width": 8,
        "lanes": 1,
        "threshold_port": True,
        "grad_width": 8,
    }
    import pickle

    assert pickle.loads(pickle.dumps(p)) == p


def test_unit_params_wrong():
    with pytest.raises(TypeError, match=r"^Unknown unit parameter 'shfit'; known: width, lanes"):
        UnitParams(shfit=3)
    with pytest.raises(AttributeError, match="immutable"):
        UnitParams().width = 4
    with pytest.raises(AttributeError, match="no parameter 'nope'"):
        UnitParams().nope  # noqa: B018


def test_declare_wrong():
    from helu.hw.units.base import Param, declare

    known = units.PARAMS["leaky_shift"]
    declare(known)  # the same declaration again is fine
    with pytest.raises(RuntimeError, match="'leaky_shift' is declared twice, differently"):
        declare(Param("leaky_shift", 3, "another slope", "x"))


# Amaranth keeps UnusedElaboratable quiet until the process first elaborates something (a crash
# before that would otherwise print a warning per object): elaborate a Module first, or the
# checks below could not fail.
ARM_UNUSED_WARNING = "from amaranth.hdl import Fragment, Module\nFragment.get(Module(), None)\n"


@pytest.mark.parametrize(
    "build, says",
    [
        ("from helu.hw.units.forward import Forward\nForward(width=1)", "not 1"),
        ("from helu.hw.net.mlp import MLP\nMLP(None)", "IntModel, not None"),
    ],
    ids=["unit", "engine"],
)
def test_refusal_reports_the_error_not_an_unused_elaboratable(build, says):
    """A refused unit or engine raises its own error and no UnusedElaboratable warning (with
    warnings made errors, Amaranth's would print from the garbage collector)."""
    code = (
        ARM_UNUSED_WARNING + "import warnings; warnings.simplefilter('error')\n"
        f"try:\n    {build.replace(chr(10), chr(10) + '    ')}\n"
        "except (TypeError, ValueError) as e:\n    print(e)\n"
        "import gc; gc.collect()\n"
    )
    r = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=60)
    assert r.returncode == 0 and says in r.stdout, r.stderr
    assert "UnusedElaboratable" not in r.stderr, r.stderr


def test_unelaborated_silences_only_what_it_marks():
    """A unit built for its figures and marked stays quiet; an unmarked one is still reported,
    so the check above can fail."""
    code = (
        ARM_UNUSED_WARNING + "from helu.hw.units import unelaborated\n"
        "from helu.hw.units.forward import Forward\n"
        "quiet = unelaborated(Forward())\n"
        "assert quiet.latency >= 1\n"
        "del quiet\n"
        "import gc; gc.collect(); print('marked done', flush=True)\n"
        "loud = Forward()\n"
        "del loud\n"
        "gc.collect()\n"
    )
    r = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=60)
    assert r.returncode == 0 and "marked done" in r.stdout, r.stderr
    assert r.stderr.count("created but never used") == 1, r.stderr
