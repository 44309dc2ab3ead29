"""The fixed-point rules (golden/fixed.py) against the float semantics they must equal."""

import math
import warnings

import numpy as np
import pytest

from helu.golden import fixed
from helu.golden.fixed import Format


def float_mask(values, alpha):
    return values > -alpha


@pytest.mark.parametrize("width", [2, 4, 8, 12, 16])
@pytest.mark.parametrize("frac", [-2, 0, 3, 8, 14, 20])
@pytest.mark.parametrize("alpha", [0.0, 0.001, 0.01, 0.05, 0.1, 0.5, 1.0, 2.0, 1e6])
def test_threshold_equals_float_rule_for_every_code(width, frac, alpha):
    fmt = Format(width, frac)
    codes = np.arange(fmt.min_code, fmt.max_code + 1)
    t = fixed.threshold(alpha, fmt)
    assert fmt.min_code - 1 <= t <= 0
    np.testing.assert_array_equal(
        fixed.mask(codes, t), float_mask(fixed.dequantize(codes, fmt), alpha), err_msg=f"T={t}"
    )


@pytest.mark.parametrize(
    "alpha,frac,expected",
    [(0.05, 8, -13), (0.05, 4, -1), (0.0, 8, 0), (0.001, 9, -1), (0.001, 10, -2), (0.25, 2, -1)],
)
def test_threshold_examples(alpha, frac, expected):
    # Examples from docs/design.md (fixed point); 0.25 * 4 = 1 lands on the boundary: -1 is not
    # > -1.
    assert fixed.threshold(alpha, Format(16, frac)) == expected


def test_threshold_width_holds_the_clamped_threshold():
    fmt = Format(8, 0)
    t = fixed.threshold(1000.0, fmt)
    assert t == fmt.min_code - 1
    assert fixed.threshold_width(fmt) == 9
    assert fixed.threshold_range(fmt) == (-256, 255)
    lo, hi = fixed.threshold_range(Format(32, 0))  # 33-bit port: beyond Format's own widths
    assert lo <= Format(32, 0).min_code - 1 and hi >= Format(32, 0).max_code


def test_alpha_note_when_band_is_empty():
    assert fixed.alpha_note(0.05, Format(8, 8)) is None
    assert fixed.alpha_note(0.0, Format(8, 0)) is None
    note = fixed.alpha_note(0.001, Format(16, 8))
    assert note is not None and "10 fractional bits" in note
    with pytest.warns(fixed.AlphaVanishesWarning, match="alpha=0.05"):
        assert fixed.checked_threshold(0.05, Format(8, 4)) == -1
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        fixed.checked_threshold(0.05, Format(8, 8))


def test_quantize_rounds_half_to_even_and_counts_saturation():
    fmt = Format(4, 1)  # codes -8..7, step 0.5
    values = [0.25, 0.75, -0.25, -0.75, 3.5, 3.75, -4.0, -4.5, -4.25, 100]
    codes, saturated = fixed.quantize(values, fmt)
    assert codes.tolist() == [0, 2, 0, -2, 7, 7, -8, -8, -8, 7]
    assert saturated == 3


def test_quantize_refuses_nan():
    with pytest.raises(ValueError, match="non-finite"):
        fixed.quantize([1.0, math.nan], Format(8, 4))


def test_dequantize_inverts_quantize_on_grid():
    fmt = Format(8, 5)
    codes = np.arange(fmt.min_code, fmt.max_code + 1)
    again, saturated = fixed.quantize(fixed.dequantize(codes, fmt), fmt)
    np.testing.assert_array_equal(again, codes)
    assert saturated == 0


@pytest.mark.parametrize("width", [4, 8, 16])
def test_choose_frac_is_the_finest_scale_without_saturation(width):
    rng = np.random.default_rng(width)
    for scale in [1e-3, 0.3, 1.0, 7.0, 300.0]:
        x = rng.normal(0, scale, 1000)
        frac = fixed.choose_frac(x, width)
        assert fixed.quantize(x, Format(width, frac))[1] == 0
        assert fixed.quantize(x, Format(width, frac + 1))[1] > 0


def test_forward_and_backward_reference():
    k = np.array([-5, -1, 0, 1, 7])
    assert fixed.forward(k).tolist() == [0, 0, 0, 1, 7]
    g = np.array([3, -4, 5, -6, 7])
    assert fixed.backward(g, fixed.mask(k, -2)).tolist() == [0, -4, 5, -6, 7]
    with pytest.raises(ValueError, match="does not match"):
        fixed.backward(g, np.ones(3, bool))


def test_signed_unsigned_round_trip():
    codes = np.arange(-128, 128)
    bits = fixed.to_unsigned(codes, 8)
    assert bits.min() == 0 and bits.max() == 255
    np.testing.assert_array_equal(fixed.to_signed(bits, 8), codes)


@pytest.mark.parametrize(
    "width,frac,message",
    [(1, 0, "Width must be between"), (33, 0, "Width must be between"), (8, 99, "Fractional")],
)
def test_format_wrong(width, frac, message):
    with pytest.raises(ValueError, match=message):
        Format(width, frac)


def test_format_wrong_type():
    with pytest.raises(TypeError, match="Width must be an integer"):
        Format(8.0, 2)


@pytest.mark.parametrize("alpha", [-0.1, math.inf, math.nan])
def test_threshold_wrong_alpha(alpha):
    with pytest.raises(ValueError, match="Alpha must be"):
        fixed.threshold(alpha, Format(8, 4))


# Integer network arithmetic: expected values worked out by hand, not with the rules under test.
@pytest.mark.parametrize(
    "acc,shift,expected",
    [(0, 3, 0), (3, 3, 0), (4, 3, 1), (-4, 3, 0), (-5, 3, -1), (12, 3, 2), (-12, 3, -1), (7, 0, 7)],
)
def test_shift_round_half_up(acc, shift, expected):
    assert fixed.shift_round(np.array([acc]), shift)[0] == expected


def test_requantize_saturates_both_ends():
    np.testing.assert_array_equal(
        fixed.requantize(np.array([10_000, -10_000, 255, 256, -257]), 1),
        [127, -128, 127, 127, -128],
    )


def test_shadow_weights_pilot_rule():
    # sat8((W + 128) >> 8) from the pilot: 127 + 128 = 255 -> 0, 32767 saturates to 127.
    master = np.array([0, 127, 128, 32767, -32768, -129, 256 * 100 + 127])
    np.testing.assert_array_equal(fixed.shadow_weights(master), [0, 0, 1, 127, -128, -1, 100])


def test_integer_rules_accept_torch_tensors():
    torch = pytest.importorskip("torch")
    acc = torch.tensor([4, -5, 1_000_000], dtype=torch.int32)
    assert fixed.requantize(acc, 3).tolist() == [1, -1, 127]


def test_check_accumulator_refuses_overflow():
    assert fixed.check_accumulator(64, 16, 128, 1 << 20) == 64 * 16 * 128 + (1 << 20)
    with pytest.raises(ValueError, match="beyond a 32-bit accumulator"):
        fixed.check_accumulator(1 << 17, 128, 128, 0)


def test_shift_round_wrong():
    with pytest.raises(ValueError, match="Shift must be an integer >= 0"):
        fixed.shift_round(np.array([1]), -1)


def test_scale_shift_both_directions():
    x = np.array([5, -5, 6, -6, 7])
    np.testing.assert_array_equal(fixed.scale_shift(x, 1), [3, -2, 3, -3, 4])  # half up
    np.testing.assert_array_equal(fixed.scale_shift(x, -2), [20, -20, 24, -24, 28])  # exact
    np.testing.assert_array_equal(fixed.scale_shift(x, 0), x)
    with pytest.raises(ValueError, match="Shift must be an integer, not 1.5"):
        fixed.scale_shift(x, 1.5)


def test_loss_gradient_is_the_scaled_one_hot_error_saturated():
    logits = np.array([[10, -120, 127], [0, 0, 0]])
    onehot = np.array([[0, 1, 0], [1, 0, 0]])
    np.testing.assert_array_equal(
        fixed.loss_gradient(logits, onehot), [[10, -128, 127], [-fixed.TARGET, 0, 0]]
    )


def test_update_subtracts_the_shifted_gradient_and_saturates():
    master = np.array([100, 100, 32760, -32760])
    grad = np.array([64, -64, -64 * 16, 64 * 16])
    np.testing.assert_array_equal(
        fixed.update(master, grad, 4, fixed.MASTER_WIDTH), [96, 104, 32767, -32768]
    )
    np.testing.assert_array_equal(fixed.update(np.array([0]), np.array([3]), -1, 32), [-6])


def test_master_from_shadow_round_trips():
    w = np.arange(-128, 128)
    np.testing.assert_array_equal(fixed.shadow_weights(fixed.master_from_shadow(w)), w)


def test_backward_on_torch_tensors():
    torch = pytest.importorskip("torch")
    g = torch.tensor([[3, -4, 5]])
    assert fixed.backward(g, torch.tensor([[True, False, True]])).tolist() == [[3, 0, 5]]
    with pytest.raises(ValueError, match=r"gradient shape \(1, 3\) does not match mask shape"):
        fixed.backward(g, torch.tensor([True]))
