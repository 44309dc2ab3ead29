"""Golden models of the baselines (golden/intbaselines.py) against their float definitions."""

import math

import numpy as np
import pytest

from helu.golden import intbaselines
from helu.golden.fixed import Format

WIDTHS_8 = [Format(8, frac) for frac in (0, 3, 4, 5, 7)]
# Formats whose every code is enumerated for the i-GELU accuracy checks.
IGELU_FORMATS = [*WIDTHS_8, Format(4, 1), Format(12, 6), Format(16, 4), Format(16, 8)]


def all_codes(fmt: Format) -> np.ndarray:
    return np.arange(fmt.min_code, fmt.max_code + 1, dtype=np.int64)


def test_relu_cmp_is_relu_on_every_code():
    codes = all_codes(Format(10, 0))
    np.testing.assert_array_equal(intbaselines.relu_cmp(codes), np.maximum(codes, 0))
    # Hand-picked codes, the boundary 0 included (relu_cmp is fixed.forward itself: comparing
    # the two would compare a function with itself).
    edges = np.array([-512, -2, -1, 0, 1, 2, 511])
    assert intbaselines.relu_cmp(edges).tolist() == [0, 0, 0, 0, 1, 2, 511]


def test_relu_cmp_keeps_shape():
    codes = np.arange(-6, 6).reshape(3, 4)
    assert intbaselines.relu_cmp(codes).shape == (3, 4)


@pytest.mark.parametrize("shift", [1, 2, 3, 7, 8, 12])
def test_leaky_is_floor_of_the_slope_on_every_code(shift):
    codes = all_codes(Format(8, 0))
    expected = [k if k > 0 else math.floor(k / 2**shift) for k in codes.tolist()]
    got = intbaselines.leaky(codes, shift)
    np.testing.assert_array_equal(got, expected)
    # Rounding toward minus infinity: never above the exact k * 2**-shift, less than 1 below.
    exact = np.where(codes > 0, codes, codes / 2**shift)
    assert np.all(got <= exact) and np.all(got > exact - 1)


def test_leaky_small_negatives_round_to_minus_one():
    assert intbaselines.leaky(np.array([-1, -127, -128, 0, 5]), 7).tolist() == [-1, -1, -1, 0, 5]


@pytest.mark.parametrize(
    "shift,error,message",
    [
        (0, ValueError, "Leaky shift must be a positive integer, not 0"),
        (-3, ValueError, "Leaky shift must be a positive integer, not -3"),
        (1.5, TypeError, "Leaky shift must be an integer, not 1.5"),
        (True, TypeError, "Leaky shift must be an integer, not True"),
    ],
)
def test_leaky_shift_wrong(shift, error, message):
    with pytest.raises(error, match=f"^{message}$"):
        intbaselines.leaky(np.array([1, -1]), shift)


def test_codes_wrong():
    with pytest.raises(TypeError, match="^Codes must be integers, not an array of float64$"):
        intbaselines.relu_cmp(np.array([0.5]))
    with pytest.raises(ValueError, match=r"^Code 128 is outside Q8.4 \(codes -128 to 127\)$"):
        intbaselines.igelu(np.array([0, 128]), Format(8, 4))


@pytest.mark.parametrize("fmt", [Format(8, 4), Format(16, 8), Format(16, 0), Format(12, 9)])
def test_igelu_constants_match_ibert_formulas(fmt):
    # Float evaluation of Algorithm 2's constants; the exact ones must agree wherever the float
    # value is not within rounding of an integer (checked, so the comparison is meaningful).
    c = intbaselines.igelu_constants(fmt)
    a, b = float(intbaselines.IGELU_A), float(intbaselines.IGELU_B)
    s_prime = fmt.step / math.sqrt(2)
    s_erf = a * s_prime**2
    for name, value in [
        ("q_b", b / s_prime),
        ("q_c", 1 / (a * s_prime**2)),
        ("q_1", 1 / s_erf),
    ]:
        assert abs(value - round(value)) > 1e-6, name
        assert getattr(c, name) == math.floor(value), name
    assert c.mult / 2**c.shift == pytest.approx(abs(s_erf) / 2, rel=2.0**-c.mult_bits)
    assert 2 ** (c.mult_bits - 1) <= c.mult <= 2**c.mult_bits


def test_igelu_constants_are_exact_at_an_integer_boundary():
    # b / S' = -1.769 * sqrt(2) * 2**frac is irrational: never an integer, so floor = ceil - 1.
    c = intbaselines.igelu_constants(Format(8, 4))
    assert c.q_b == -math.ceil(1.769 * math.sqrt(2) * 16) == -41


def test_igelu_matches_algorithm_2_by_hand():
    # Q8.4 (S = 1/16), worked by hand from I-BERT's published constants a = -0.2888, b = -1.769,
    # c = 1 (Kim et al. 2021, Algorithm 2), with S' = S / sqrt(2), S'^2 = 1/512:
    #   q_b = floor(b / S') = floor(-1.769 * sqrt(2) * 16) = floor(-40.03) = -41
    #   q_c = floor(c / (a S'^2)) = floor(-1772.85) = -1773; q_1 = floor(1 / (a S'^2)) = -1773
    #   |S_out / S| = 0.2888 / 1024 = 0.000282031: mult = 296 with shift = 20 (9-bit multiplier)
    # x = 1 (q = 16): q_l = (16 - 41)**2 - 1773 = -1148; q_out = 16 (-1148 - 1773) = -46736;
    #   y = (46736 * 296 + 2**19) >> 20 = 13 (GELU(1) * 16 = 13.46)
    # x = -1 (q = -16): q_erf = +1148; q_out = -16 (1148 - 1773) = 10000;
    #   y = (-10000 * 296 + 2**19) >> 20 = -3 (GELU(-1) * 16 = -2.54)
    fmt = Format(8, 4)
    c = intbaselines.igelu_constants(fmt)
    assert (c.q_b, c.q_c, c.q_1, c.mult, c.shift) == (-41, -1773, -1773, 296, 20)
    assert intbaselines.igelu(np.array([16, -16]), fmt).tolist() == [13, -3]


def test_igelu_zero_and_saturation():
    fmt = Format(8, 4)
    y = intbaselines.igelu(np.array([0, fmt.max_code, fmt.min_code]), fmt)
    assert y.tolist()[0] == 0
    assert fmt.min_code <= y.min() and y.max() <= fmt.max_code


def test_igelu_float_is_ibert_polynomial():
    x = np.array([-10.0, -1.0, 0.0, 0.5, 3.0, 10.0])
    u = x / math.sqrt(2)
    erf = [
        math.copysign(-0.2888 * (min(abs(v), 1.769) - 1.769) ** 2 + 1, v) if v else 0.0 for v in u
    ]
    np.testing.assert_allclose(intbaselines.igelu_float(x), x / 2 * (1 + np.array(erf)), rtol=1e-15)


def test_gelu_is_x_phi():
    x = np.array([-3.0, -1.0, 0.0, 1.0, 2.5])
    phi = np.array([0.5 * math.erfc(-v / math.sqrt(2)) for v in x])
    np.testing.assert_allclose(intbaselines.gelu(x), x * phi, rtol=1e-12, atol=1e-15)


def float_approximation_error() -> float:
    """Sup of |igelu_float - gelu| (value units), on a grid far finer than any format's step."""
    x = np.linspace(-6.0, 6.0, 1_200_001)
    return float(np.abs(intbaselines.igelu_float(x) - intbaselines.gelu(x)).max())


@pytest.fixture(scope="module")
def poly_error():
    return float_approximation_error()


@pytest.mark.parametrize("fmt", IGELU_FORMATS, ids=str)
def test_igelu_error_is_bounded(fmt, poly_error):
    err = intbaselines.igelu_error(fmt)
    bound = intbaselines.igelu_constants(fmt).error_bound
    # What the integers add to I-BERT's float approximation stays within the proven bound ...
    assert err.int_float_max <= bound, err.to_dict()
    # ... and the float approximation's own error is I-BERT's polynomial error, in this format's
    # codes (the grid above samples it; a code can only see less).
    assert err.float_max <= poly_error * 2**fmt.frac * (1 + 1e-9), err.to_dict()
    assert err.max <= err.float_max + bound, err.to_dict()
    assert 0 <= err.mean <= err.max


def test_igelu_polynomial_error_is_iberts(poly_error):
    # I-BERT's second-order erf fit keeps GELU within 0.0182 (near x = 2.35): a property of the
    # published coefficients a = -0.2888, b = -1.769, pinned so a changed coefficient shows up.
    assert poly_error == pytest.approx(0.018152, abs=5e-6)


def test_igelu_error_catches_a_wrong_unit():
    fmt = Format(8, 4)
    good = intbaselines.igelu(all_codes(fmt), fmt)
    bound = intbaselines.igelu_constants(fmt).error_bound
    assert intbaselines.igelu_error(fmt, good).int_float_max <= bound
    wrong = good.copy()
    wrong[200] += math.ceil(bound) + 1
    assert intbaselines.igelu_error(fmt, wrong).int_float_max > bound


def test_igelu_error_wrong():
    with pytest.raises(ValueError, match="^Expected 256 outputs .* not \\(3,\\)$"):
        intbaselines.igelu_error(Format(8, 4), np.array([0, 1, 2]))
    with pytest.raises(ValueError, match="^Width 24 has too many codes to enumerate"):
        intbaselines.igelu_error(Format(24, 4))
    with pytest.raises(TypeError, match="^Format must be a golden.fixed.Format, not \\(8, 4\\)$"):
        intbaselines.igelu_error((8, 4))


def test_igelu_constants_wrong():
    with pytest.raises(
        ValueError, match="^i-GELU in Q32.8 needs 84-bit intermediates, more than 62"
    ):
        intbaselines.igelu_constants(Format(32, 8))
    with pytest.raises(TypeError, match="^Format must be a golden.fixed.Format, not 8$"):
        intbaselines.igelu_constants(8)


def test_golden_intbaselines_imports_no_torch():
    import subprocess
    import sys

    code = "import sys, helu.golden.intbaselines; sys.exit('torch' in sys.modules)"
    assert subprocess.run([sys.executable, "-c", code]).returncode == 0
