# amaranth: UnusedElaboratable=no
"""HeLU backward-threshold gradient unit (hw/units/backward.py) in Amaranth's simulator."""

import numpy as np
import pytest
from streams import (
    check_outputs,
    pack_inputs,
    simulate,
    simulate_full_rate,
    simulate_reset,
    unpack_outputs,
)

from helu.golden import fixed
from helu.hw.units import UNITS, UnitParams
from helu.hw.units.backward import Backward

pytestmark = [
    pytest.mark.filterwarnings("ignore::helu.golden.fixed.AlphaVanishesWarning"),
]

# (unit, threshold_port): both stash kinds, the z stash with a constant and a runtime threshold.
BUILDS = [("backward-mask", False), ("backward-z", False), ("backward-z", True)]
BUILD_IDS = ["mask", "z-const", "z-port"]


def _codes(rng, width, shape):
    return rng.integers(-(1 << (width - 1)), 1 << (width - 1), size=shape)


def _inputs(unit, params, rng, transfers, z=None):
    """Random stash and gradient for ``transfers`` transfers (``z`` given: use it)."""
    shape = (transfers, params.lanes)
    g = _codes(rng, params.gradient_width, shape)
    if unit == "backward-mask":
        return {"mask": rng.integers(0, 2, size=shape), "g": g}
    if z is None:
        z = _codes(rng, params.width, shape)
    inputs = {"z": z, "g": g}
    if params.threshold_port:
        # A runtime value other than the one alpha gives in params' own format.
        inputs["threshold"] = fixed.threshold(
            params.alpha, fixed.Format(params.width, params.frac + 3)
        )
    return inputs


def _run(unit, params, inputs, **kw):
    dut = UNITS[unit].build(params)
    words = simulate(dut, pack_inputs(dut, inputs), threshold=inputs.get("threshold"), **kw)
    assert None not in words, "an output appeared after the last transfer"
    return unpack_outputs(dut, words), UNITS[unit].reference(params, inputs)


@pytest.mark.parametrize("unit,port", BUILDS, ids=BUILD_IDS)
@pytest.mark.parametrize("lanes", [1, 16])
def test_every_8bit_value(unit, port, lanes):
    """Every 8-bit z (or, for the mask stash, every 8-bit g with both mask values)."""
    params = UnitParams(width=8, lanes=lanes, frac=6, threshold_port=port)
    rng = np.random.default_rng(lanes)
    every = np.arange(-128, 128, dtype=np.int64)
    every = np.concatenate([every, every]).reshape(-1, lanes)  # twice: both mask values for g
    inputs = _inputs(unit, params, rng, every.shape[0], z=every)
    if unit == "backward-mask":
        inputs["g"] = every
        inputs["mask"] = (np.arange(every.size) >= 256).reshape(every.shape).astype(np.int64)
    got, expected = _run(unit, params, inputs)
    check_outputs(got, expected, inputs)


@pytest.mark.parametrize("unit,port", BUILDS, ids=BUILD_IDS)
@pytest.mark.parametrize("valid_prob,ready_prob", [(0.5, 0.5), (1.0, 0.3), (0.3, 1.0)])
def test_random_16bit_with_stalls(unit, port, valid_prob, ready_prob):
    params = UnitParams(width=16, lanes=4, frac=12, grad_width=12, threshold_port=port)
    rng = np.random.default_rng(16)
    inputs = _inputs(unit, params, rng, 200)
    got, expected = _run(unit, params, inputs, valid_prob=valid_prob, ready_prob=ready_prob)
    check_outputs(got, expected, inputs)


@pytest.mark.parametrize("unit,port", BUILDS, ids=BUILD_IDS)
def test_full_rate_and_latency(unit, port):
    params = UnitParams(width=8, lanes=2, frac=6, threshold_port=port)
    dut = UNITS[unit].build(params)
    inputs = _inputs(unit, params, np.random.default_rng(1), 40)
    words, cycles = simulate_full_rate(
        dut, pack_inputs(dut, inputs), threshold=inputs.get("threshold")
    )
    assert cycles == [k + dut.latency for k in range(40)], "not one transfer per cycle"
    check_outputs(unpack_outputs(dut, words), UNITS[unit].reference(params, inputs), inputs)


@pytest.mark.parametrize("unit,port", BUILDS, ids=BUILD_IDS)
def test_reset_mid_stream(unit, port):
    params = UnitParams(width=8, lanes=2, frac=6, threshold_port=port)
    dut = UNITS[unit].build(params)
    rng = np.random.default_rng(5)
    before, after = _inputs(unit, params, rng, 2), _inputs(unit, params, rng, 30)
    before["g"][:] = 1 - (1 << (params.gradient_width - 1))  # stale outputs would stand out
    seen, words = simulate_reset(
        dut, pack_inputs(dut, before), pack_inputs(dut, after), threshold=after.get("threshold")
    )
    assert not any(seen), f"stale output after reset: o.valid {seen}"
    check_outputs(unpack_outputs(dut, words), UNITS[unit].reference(params, after), after)


def test_checker_catches_wrong_reference():
    params = UnitParams(width=8, lanes=4, frac=6)
    rng = np.random.default_rng(3)
    inputs = _inputs("backward-z", params, rng, 64)
    got, expected = _run("backward-z", params, inputs, valid_prob=0.7, ready_prob=0.7)
    check_outputs(got, expected, inputs)
    # A plausible wrong model: ReLU's gradient mask (z > 0) instead of HeLU's z > T.
    wrong = {"dz": fixed.backward(inputs["g"], inputs["z"] > 0)}
    assert np.any(wrong["dz"] != expected["dz"]), "the stimulus must separate the two models"
    with pytest.raises(AssertionError, match=r"field dz: \d+ wrong elements; first at transfer"):
        check_outputs(got, wrong, inputs)


def test_properties():
    dut = Backward(12, 4, stash="z", width=16, threshold=-13)
    assert (dut.grad_width, dut.lanes, dut.stash, dut.width) == (12, 4, "z", 16)
    assert dut.threshold_const == -13 and not dut.threshold_port and dut.latency == 1
    mask = Backward(8, 2)
    assert mask.stash == "mask" and mask.width is None and mask.threshold_const is None
    with pytest.raises(AttributeError):
        dut.lanes = 2


def test_registry_grad_width_defaults_to_width():
    assert UNITS["backward-mask"].build(UnitParams(width=12)).grad_width == 12
    assert UNITS["backward-z"].build(UnitParams(width=12, grad_width=6)).grad_width == 6


def test_backward_wrong():
    with pytest.raises(ValueError, match=r"^Gradient width must be between 2 and 32 bits, not 1$"):
        Backward(1, 1)
    with pytest.raises(ValueError, match=r"^Lane count must be a positive integer, not 0$"):
        Backward(8, 0)
    with pytest.raises(ValueError, match=r"^Stash must be one of mask, z, not 'y'$"):
        Backward(8, 1, stash="y")
    with pytest.raises(ValueError, match=r"^A mask stash takes no width or threshold"):
        Backward(8, 1, stash="mask", threshold=-1)
    with pytest.raises(ValueError, match=r"^A z stash needs the width of z$"):
        Backward(8, 1, stash="z", threshold=-1)
    with pytest.raises(ValueError, match=r"^Width must be between 2 and 32 bits, not 40$"):
        Backward(8, 1, stash="z", width=40, threshold=-1)
    with pytest.raises(ValueError, match=r"^A z stash needs a constant threshold"):
        Backward(8, 1, stash="z", width=8)
    with pytest.raises(ValueError, match=r"^Give either a constant threshold or threshold_port"):
        Backward(8, 1, stash="z", width=8, threshold=-1, threshold_port=True)
    with pytest.raises(
        ValueError, match=r"^Threshold must be between -16 and 15 for 4-bit codes, not -17$"
    ):
        Backward(8, 1, stash="z", width=4, threshold=-17)


def test_registry_backward_wrong():
    with pytest.raises(ValueError, match=r"^Gradient width must be between 2 and 32 bits, not 1$"):
        UNITS["backward-mask"].build(UnitParams(grad_width=1))
    with pytest.raises(ValueError, match=r"^Width must be between 2 and 32 bits, not 0$"):
        UNITS["backward-mask"].build(UnitParams(width=0))
    with pytest.raises(ValueError, match=r"^Gradient width must be between 2 and 32 bits, not 1$"):
        UNITS["backward-z"].build(UnitParams(grad_width=1))
    with pytest.raises(ValueError, match=r"^Alpha must be a finite number >= 0, not -1.0$"):
        UNITS["backward-z"].build(UnitParams(alpha=-1))
