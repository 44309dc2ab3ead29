# amaranth: UnusedElaboratable=no
"""HeLU forward unit (hw/units/forward.py) in Amaranth's simulator, against the golden reference."""

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
from helu.hw.units.forward import Forward

pytestmark = [
    pytest.mark.filterwarnings("ignore::helu.golden.fixed.AlphaVanishesWarning"),
]

# (unit, threshold_port): the inference build and both kinds of training build.
BUILDS = [("forward", False), ("forward-train", False), ("forward-train", True)]
BUILD_IDS = ["inference", "train-const", "train-port"]


def _all_codes(width: int, lanes: int) -> np.ndarray:
    """Every ``width``-bit code, shaped (transfers, lanes); the last row wraps to the start."""
    codes = np.arange(-(1 << (width - 1)), 1 << (width - 1), dtype=np.int64)
    pad = (-codes.size) % lanes
    return np.concatenate([codes, codes[:pad]]).reshape(-1, lanes)


def _random_codes(rng, width: int, lanes: int, transfers: int) -> np.ndarray:
    return rng.integers(-(1 << (width - 1)), 1 << (width - 1), size=(transfers, lanes))


def _setup(unit, params):
    """DUT, the threshold to drive on its port (or None), and the reference inputs extras."""
    dut = UNITS[unit].build(params)
    threshold = None
    if params.threshold_port:
        # Any legal runtime value: take the one alpha gives in a finer format, not the default.
        threshold = fixed.threshold(params.alpha, fixed.Format(params.width, params.frac + 4))
    return dut, threshold


def _run(unit, params, z, **kw):
    dut, threshold = _setup(unit, params)
    inputs = {"z": z}
    if threshold is not None:
        inputs["threshold"] = threshold
    words = simulate(dut, pack_inputs(dut, inputs), threshold=threshold, **kw)
    assert None not in words, "an output appeared after the last transfer"
    got = unpack_outputs(dut, words)
    return got, UNITS[unit].reference(params, inputs), inputs


@pytest.mark.parametrize("unit,port", BUILDS, ids=BUILD_IDS)
@pytest.mark.parametrize("lanes", [1, 16])
def test_every_8bit_value(unit, port, lanes):
    params = UnitParams(width=8, lanes=lanes, frac=6, alpha=0.05, threshold_port=port)
    z = _all_codes(8, lanes)
    got, expected, inputs = _run(unit, params, z)
    check_outputs(got, expected, inputs)


@pytest.mark.parametrize("unit,port", BUILDS, ids=BUILD_IDS)
@pytest.mark.parametrize("valid_prob,ready_prob", [(0.5, 0.5), (1.0, 0.3), (0.3, 1.0)])
def test_random_16bit_with_stalls(unit, port, valid_prob, ready_prob):
    params = UnitParams(width=16, lanes=4, frac=12, alpha=0.05, threshold_port=port)
    rng = np.random.default_rng(16)
    z = _random_codes(rng, 16, params.lanes, 200)
    z[:3] = [[fixed.Format(16, 12).min_code, 0, -1, 1]] * 3  # corners: most negative, 0, +-1
    got, expected, inputs = _run(unit, params, z, valid_prob=valid_prob, ready_prob=ready_prob)
    check_outputs(got, expected, inputs)


@pytest.mark.parametrize("unit,port", BUILDS, ids=BUILD_IDS)
def test_full_rate_and_latency(unit, port):
    params = UnitParams(width=8, lanes=2, frac=6, threshold_port=port)
    dut, threshold = _setup(unit, params)
    z = _all_codes(8, params.lanes)[:40]
    inputs = {"z": z} if threshold is None else {"z": z, "threshold": threshold}
    words, cycles = simulate_full_rate(dut, pack_inputs(dut, inputs), threshold=threshold)
    assert cycles == [k + dut.latency for k in range(len(z))], "not one transfer per cycle"
    check_outputs(unpack_outputs(dut, words), UNITS[unit].reference(params, inputs), inputs)


@pytest.mark.parametrize("unit,port", BUILDS, ids=BUILD_IDS)
def test_reset_mid_stream(unit, port):
    params = UnitParams(width=8, lanes=2, frac=6, threshold_port=port)
    dut, threshold = _setup(unit, params)
    rng = np.random.default_rng(5)
    before, after = _random_codes(rng, 8, 2, 2), _random_codes(rng, 8, 2, 30)
    extra = {} if threshold is None else {"threshold": threshold}
    seen, words = simulate_reset(
        dut,
        pack_inputs(dut, {"z": before}),
        pack_inputs(dut, {"z": after}),
        threshold=threshold,
    )
    assert not any(seen), f"stale output after reset: o.valid {seen}"
    inputs = {"z": after, **extra}
    check_outputs(unpack_outputs(dut, words), UNITS[unit].reference(params, inputs), inputs)


def test_checker_catches_wrong_reference():
    params = UnitParams(width=8, lanes=4, frac=6)
    z = _all_codes(8, params.lanes)
    got, expected, inputs = _run("forward-train", params, z, valid_prob=0.7, ready_prob=0.7)
    check_outputs(got, expected, inputs)
    # A plausible wrong model: the mask of plain ReLU (z > 0) instead of z > T.
    wrong = dict(expected, mask=(z > 0).astype(np.int64))
    with pytest.raises(AssertionError, match=r"field mask: \d+ wrong elements"):
        check_outputs(got, wrong, inputs)
    wrong = dict(expected, y=expected["y"][1:])
    with pytest.raises(AssertionError, match="field y: got shape"):
        check_outputs(got, wrong, inputs)


def test_properties():
    dut = Forward(16, 4, train=True, threshold=-13)
    assert (dut.width, dut.lanes, dut.train, dut.threshold_port) == (16, 4, True, False)
    assert dut.threshold_const == -13 and dut.latency == 1
    assert Forward(8, 1).threshold_const is None
    port = Forward(8, 1, train=True, threshold_port=True)
    assert port.threshold_const is None
    assert port.threshold.shape().width == fixed.threshold_width(fixed.Format(8, 0))
    with pytest.raises(AttributeError):
        dut.width = 4


def test_registry_threshold_from_alpha():
    params = UnitParams(width=8, frac=8, alpha=0.05)
    assert UNITS["forward-train"].build(params).threshold_const == fixed.threshold(
        0.05, fixed.Format(8, 8)
    )
    with pytest.warns(fixed.AlphaVanishesWarning):
        UNITS["forward-train"].build(UnitParams(width=8, frac=4, alpha=0.05))


def test_forward_wrong():
    with pytest.raises(ValueError, match=r"^Width must be between 2 and 32 bits, not 1$"):
        Forward(1, 1)
    with pytest.raises(TypeError, match=r"^Width must be an integer, not '8'$"):
        Forward("8", 1)
    with pytest.raises(ValueError, match=r"^Lane count must be a positive integer, not 0$"):
        Forward(8, 0)
    with pytest.raises(TypeError, match=r"^Lane count must be a positive integer, not 1.5$"):
        Forward(8, 1.5)
    with pytest.raises(ValueError, match=r"^A threshold applies only to the training build"):
        Forward(8, 1, threshold=-1)
    with pytest.raises(ValueError, match=r"^The training build needs a constant threshold"):
        Forward(8, 1, train=True)
    with pytest.raises(ValueError, match=r"^Give either a constant threshold or threshold_port"):
        Forward(8, 1, train=True, threshold=-1, threshold_port=True)
    with pytest.raises(
        ValueError, match=r"^Threshold must be between -256 and 255 for 8-bit codes, not 256$"
    ):
        Forward(8, 1, train=True, threshold=256)
    with pytest.raises(TypeError, match=r"^Threshold must be an integer, not 0.5$"):
        Forward(8, 1, train=True, threshold=0.5)
    with pytest.raises(TypeError, match=r"^Training build must be a bool, not 1$"):
        Forward(8, 1, train=1, threshold=0)


def test_registry_forward_wrong():
    build = UNITS["forward-train"].build
    with pytest.raises(ValueError, match=r"^Alpha must be a finite number >= 0, not -0.1$"):
        build(UnitParams(alpha=-0.1))
    with pytest.raises(ValueError, match=r"^Width must be between 2 and 32 bits, not 0$"):
        build(UnitParams(width=0))
    with pytest.raises(ValueError, match=r"^Lane count must be a positive integer, not 0$"):
        build(UnitParams(lanes=0))
    with pytest.raises(ValueError, match=r"^Fractional bits must be between"):
        build(UnitParams(frac=100))
