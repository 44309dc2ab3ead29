"""Integer golden models of the baseline activations of the hardware comparison.

The baselines against which the HeLU units are costed, each as the exact integer function its
hardware unit must compute, bit for bit, on codes of a format ``Q(width, frac)`` (the rules of
``golden.fixed``). numpy only (no torch), so that ``hw`` and ``sim`` may import it. Every function
takes codes of any shape (flat or ``(N, lanes)``) as integers and returns int64 codes of the same
shape.

- :func:`relu_cmp`: ReLU, ``y = k if k > 0 else 0``. The same function as ``fixed.forward`` (and
  it *is* ``fixed.forward``); the baseline differs only in circuit: a real ``k > 0`` comparator
  and resettable registers, which is what a naive design writes, where the HeLU unit selects with
  the sign bit alone.
- :func:`leaky`: LeakyReLU with slope ``2**-shift``, ``y = k if k > 0 else k >> shift``.
- :func:`igelu`: the I-BERT integer GELU (Kim et al. 2021, "I-BERT: Integer-only BERT
  Quantization", Algorithm 2), requantized to the input format; :func:`igelu_float` is its float
  counterpart and :func:`igelu_error` measures both against exact GELU.

i-GELU, with input scale ``S = 2**-frac`` (the code ``q`` stands for ``x = q * S``)::

    i-ERF(q, S'):   S' = S / sqrt(2);  a, b, c = -0.2888, -1.769, 1
        q_b = floor(b / S'),  q_c = floor(c / (a * S'**2)),  S_erf = a * S'**2
        q_erf = sgn(q) * ((min(|q|, -q_b) + q_b)**2 + q_c)        # q_erf * S_erf ~ erf(x / sqrt 2)
    i-GELU(q, S):
        q_1 = floor(1 / S_erf)
        q_out = q * (q_erf + q_1),  S_out = S * S_erf / 2           # q_out * S_out ~ GELU(x)

All of ``q_b``, ``q_c``, ``q_1`` are compile-time integers because ``S`` is a power of two; they
are computed exactly (rational arithmetic and an integer square root, no float rounding) in one
place, :func:`igelu_constants`. The result is brought back to ``Q(width, frac)`` by the fixed-point
multiply ``y = round(q_out * S_out / S)``: ``S_out / S = S_erf / 2`` is negative (``a < 0``), so the
model multiplies ``-q_out`` by the positive constant ``mult ~ |S_erf| / 2 * 2**shift`` and
requantizes with ``golden.fixed.requantize`` (``shift_round``: half toward +infinity, then
``saturate`` to the format).
"""

import math
from dataclasses import dataclass
from fractions import Fraction

import numpy as np

from helu.golden.fixed import Format, array_generic, dequantize, forward, requantize, round_bias

__all__ = [
    "IGELU_A",
    "IGELU_B",
    "IGELU_C",
    "IGeluConstants",
    "IGeluError",
    "check_leaky_shift",
    "relu_cmp",
    "leaky",
    "igelu_constants",
    "igelu",
    "igelu_float",
    "gelu",
    "igelu_error",
]

# I-BERT's second-order erf approximation a * (clip(|x|, max=-b) + b)**2 + c, as exact rationals.
IGELU_A = Fraction("-0.2888")
IGELU_B = Fraction("-1.769")
IGELU_C = Fraction(1)

# Intermediates of the integer model must stay below this many bits (numpy int64 with headroom).
MAX_PRODUCT_BITS = 62
# igelu_error enumerates every code; wider formats have too many to list.
MAX_ERROR_WIDTH = 20


def _check_codes(codes, fmt: Format | None = None) -> np.ndarray:
    if array_generic(codes):
        return codes  # symbolic codes of the formal proofs cover the format by construction
    arr = np.asarray(codes)
    if arr.dtype == np.bool_ or not np.issubdtype(arr.dtype, np.integer):
        raise TypeError(f"Codes must be integers, not an array of {arr.dtype}")
    arr = arr.astype(np.int64)
    if fmt is not None and arr.size and (arr.min() < fmt.min_code or arr.max() > fmt.max_code):
        bad = arr.min() if arr.min() < fmt.min_code else arr.max()
        raise ValueError(f"Code {bad} is outside {fmt} (codes {fmt.min_code} to {fmt.max_code})")
    return arr


def check_leaky_shift(shift) -> int:
    """``shift`` if it is a valid LeakyReLU slope exponent (a positive integer), else raise."""
    if not isinstance(shift, int) or isinstance(shift, bool):
        raise TypeError(f"Leaky shift must be an integer, not {shift!r}")
    if shift < 1:
        raise ValueError(f"Leaky shift must be a positive integer, not {shift}")
    return shift


def relu_cmp(codes) -> np.ndarray:
    """ReLU, ``y = k if k > 0 else 0``: the reference of the comparator baseline.

    Deliberately ``fixed.forward`` itself: the comparator unit computes the same function as the
    HeLU forward unit; only its circuit (a ``k > 0`` comparator, resettable registers) differs.
    """
    return forward(_check_codes(codes))


def leaky(codes, shift: int) -> np.ndarray:
    """LeakyReLU with slope ``2**-shift``: ``y = k if k > 0 else k >> shift``.

    ``>>`` is the arithmetic shift, ``floor(k / 2**shift)``: negative results round toward minus
    infinity, so every negative code ``k >= -2**shift`` gives ``-1`` (never 0) and the output is
    never above the exact ``k * 2**-shift``. The output fits the input format (``|y| <= |k|``).
    """
    shift = check_leaky_shift(shift)
    k = _check_codes(codes)
    return np.where(k > 0, k, k >> shift)


def _floor_sqrt2_times(r: Fraction) -> int:
    """``floor(r * sqrt(2))`` exactly, for a rational ``r``."""
    p, q = abs(r.numerator), r.denominator
    # floor(sqrt(2 p^2) / q) == isqrt(2 p^2) // q; sqrt(2 p^2) is irrational unless p == 0.
    low = math.isqrt(2 * p * p) // q
    if r >= 0:
        return low
    return -low - 1 if p else 0


@dataclass(frozen=True)
class IGeluConstants:
    """The compile-time integers of i-GELU in a format (build them with :func:`igelu_constants`).

    Members
    -------
    fmt : Format
        Input and output format.
    q_b, q_c, q_1 : int
        I-BERT's ``floor(b / S')``, ``floor(c / (a S'^2))`` and ``floor(1 / S_erf)``.
    mult, shift : int
        Requantization: ``y = (-q_out * mult + 2**(shift - 1)) >> shift``, saturated;
        ``mult / 2**shift`` is ``|S_erf| / 2`` rounded to ``mult_bits`` significant bits.
    mult_bits : int
        Significant bits of ``mult`` (``width + 1``: the constant's relative error ``2**-mult_bits``
        moves an output of at most ``2**(width-1)`` codes by at most a quarter of a code).
    """

    fmt: Format
    q_b: int
    q_c: int
    q_1: int
    mult: int
    shift: int
    mult_bits: int

    @property
    def clip(self) -> int:
        """``-q_b``: ``|q|`` is clipped to this before the polynomial."""
        return -self.q_b

    # The hardware evaluates q * P with P = -(q_erf + q_1) >= 0, so that -q_out = q * P:
    #   q > 0: P = pos_offset - u**2;   q < 0: P = neg_offset + u**2;   u = clip - min(|q|, clip).
    @property
    def pos_offset(self) -> int:
        """``-(q_c + q_1)``: ``P`` for positive ``q`` is this minus ``u**2``."""
        return -(self.q_c + self.q_1)

    @property
    def neg_offset(self) -> int:
        """``q_c - q_1``: ``P`` for negative ``q`` is this plus ``u**2``."""
        return self.q_c - self.q_1

    @property
    def p_max(self) -> int:
        """Largest ``P = -(q_erf + q_1)`` over all codes (``P`` is never negative)."""
        return max(self.pos_offset, self.neg_offset + self.clip**2)

    @property
    def error_bound(self) -> float:
        """A proven bound, in output codes, on ``|igelu - igelu_float|`` over every code.

        The sum of what the integer version adds to I-BERT's float approximation: the output
        rounding (1/2); the requantization constant's error (``mult / 2**shift`` against
        ``|S_erf| / 2``, times the largest ``|q_out|``); the floors of ``q_c`` and ``q_1`` (each
        moves ``q_erf + q_1`` by less than 1, times ``|q| |S_erf| / 2``); the floor of ``q_b``
        (it moves the clip point ``-b`` by ``d < S'``: for ``|x'| <= -b`` the polynomial moves by
        ``|a| d (2 (-b - |x'|) + d)``, at most ``|a| S' (2 - 2b + S')**2 / 8`` after the factor
        ``|x| / 2``; beyond the old clip point, by ``|a| d**2``). Saturation never adds error:
        the float approximation stays inside the format's range.
        """
        fmt = self.fmt
        scale = Fraction(2) ** -fmt.frac
        s_erf = IGELU_A * scale * scale / 2
        ratio = abs(s_erf) / 2
        top = -fmt.min_code  # largest |q|
        e_c = IGELU_C / s_erf - self.q_c  # floor errors, in [0, 1)
        e_1 = 1 / s_erf - self.q_1
        requant = top * self.p_max * abs(Fraction(self.mult, 2**self.shift) - ratio)
        floors = top * (e_c + e_1) * ratio
        s_prime = math.ldexp(1.0, -fmt.frac) / math.sqrt(2)
        a, beta = abs(float(IGELU_A)), -float(IGELU_B)
        in_band = a * s_prime * (2 * beta + s_prime) ** 2 / 8
        past_band = (beta + s_prime) * a * s_prime**2 / 2
        clip = (in_band + past_band) / float(scale)
        return 0.5 + float(requant) + float(floors) + clip

    @property
    def product_bits(self) -> int:
        """Bits of the largest magnitude before the rounding shift (``|q| * p_max * mult``)."""
        return ((-self.fmt.min_code) * self.p_max * self.mult + round_bias(self.shift)).bit_length()


def igelu_constants(fmt: Format) -> IGeluConstants:
    """Compute i-GELU's integer constants for ``fmt`` exactly (``S = 2**-frac``).

    Raises ``ValueError`` naming the format when its intermediates would exceed
    ``MAX_PRODUCT_BITS`` bits (a very fine format: use fewer fractional bits).
    """
    if not isinstance(fmt, Format):
        raise TypeError(f"Format must be a golden.fixed.Format, not {fmt!r}")
    scale = Fraction(2) ** -fmt.frac  # S
    scale2_erf = scale * scale / 2  # S'^2, with S' = S / sqrt(2)
    q_b = _floor_sqrt2_times(IGELU_B / scale)  # floor(b / S') = floor(b sqrt(2) / S)
    q_c = math.floor(IGELU_C / (IGELU_A * scale2_erf))
    s_erf = IGELU_A * scale2_erf
    q_1 = math.floor(1 / s_erf)
    ratio = abs(s_erf) / 2  # |S_out / S|
    mult_bits = fmt.width + 1
    # Smallest shift that gives mult its mult_bits significant bits.
    shift = mult_bits - 1 - math.floor(math.log2(ratio))
    while ratio * 2**shift < 2 ** (mult_bits - 1):
        shift += 1
    while ratio * 2 ** (shift - 1) >= 2 ** (mult_bits - 1):
        shift -= 1
    mult = math.floor(ratio * 2**shift + Fraction(1, 2))
    if shift < 1:
        raise ValueError(f"i-GELU in {fmt} needs a requantization shift of {shift} (below 1)")
    consts = IGeluConstants(fmt, q_b, q_c, q_1, mult, shift, mult_bits)
    if consts.pos_offset - consts.clip**2 < 0 or consts.neg_offset < 0:
        raise ValueError(f"i-GELU in {fmt}: -(q_erf + q_1) can be negative; format too coarse")
    if consts.product_bits > MAX_PRODUCT_BITS:
        raise ValueError(
            f"i-GELU in {fmt} needs {consts.product_bits}-bit intermediates, more than "
            f"{MAX_PRODUCT_BITS}; use a narrower width or fewer fractional bits"
        )
    return consts


def igelu(codes, fmt: Format) -> np.ndarray:
    """Integer i-GELU of codes in ``fmt``, requantized and saturated to ``fmt`` (exact).

    Follows I-BERT's Algorithm 2 step by step (see the module docstring); the requantization is
    ``golden.fixed.requantize`` (rounding half toward +infinity, saturation to ``fmt``).
    """
    c = igelu_constants(fmt)
    q = _check_codes(codes, fmt)
    q_l = (np.minimum(np.abs(q), c.clip) + c.q_b) ** 2 + c.q_c  # i-POLY
    q_erf = np.sign(q) * q_l  # i-ERF
    q_out = q * (q_erf + c.q_1)  # i-GELU, scale S * S_erf / 2 (negative)
    return requantize(-q_out * c.mult, c.shift, fmt.width)  # golden.fixed's rounding, saturated


def igelu_float(x) -> np.ndarray:
    """I-BERT's float GELU approximation ``x/2 (1 + L(x/sqrt 2))``, float64, no quantization.

    ``L(x) = sgn(x) (a (min(|x|, -b) + b)**2 + c)``, the polynomial i-ERF evaluates in integers.
    """
    a, b, c = float(IGELU_A), float(IGELU_B), float(IGELU_C)
    x = np.asarray(x, dtype=np.float64)
    u = x / math.sqrt(2)
    erf = np.sign(u) * (a * (np.minimum(np.abs(u), -b) + b) ** 2 + c)
    return x / 2 * (1 + erf)


def gelu(x) -> np.ndarray:
    """Exact GELU ``x * Phi(x) = x/2 (1 + erf(x / sqrt 2))`` in float64 (``math.erf``)."""
    x = np.asarray(x, dtype=np.float64)
    erf = np.vectorize(math.erf, otypes=[np.float64])(x / math.sqrt(2)) if x.size else x
    return x / 2 * (1 + erf)


@dataclass(frozen=True)
class IGeluError:
    """i-GELU accuracy over every code of ``fmt``, in output codes (LSBs of ``fmt``).

    ``max``/``mean`` compare the integer unit with exact GELU at the input code's value;
    ``float_max``/``float_mean`` compare I-BERT's float approximation (the polynomial's own
    error); ``int_float_max`` compares the integer unit with the float approximation (what the
    integer constants, the requantization and the output rounding add).
    """

    fmt: Format
    max: float
    mean: float
    float_max: float
    float_mean: float
    int_float_max: float

    def to_dict(self) -> dict:
        return {
            "format": str(self.fmt),
            "max_lsb": self.max,
            "mean_lsb": self.mean,
            "float_max_lsb": self.float_max,
            "float_mean_lsb": self.float_mean,
            "int_float_max_lsb": self.int_float_max,
        }


def igelu_error(fmt: Format, outputs=None) -> IGeluError:
    """Measure i-GELU against exact GELU over all codes of ``fmt`` (width up to 20).

    ``outputs`` are the codes a unit gave for every input code in increasing order
    (``fmt.min_code`` first); by default those of :func:`igelu`.
    """
    if not isinstance(fmt, Format):
        raise TypeError(f"Format must be a golden.fixed.Format, not {fmt!r}")
    if fmt.width > MAX_ERROR_WIDTH:
        raise ValueError(
            f"Width {fmt.width} has too many codes to enumerate; at most {MAX_ERROR_WIDTH} bits"
        )
    codes = np.arange(fmt.min_code, fmt.max_code + 1, dtype=np.int64)
    x = dequantize(codes, fmt)
    exact = np.ldexp(gelu(x), fmt.frac)  # in codes
    approx = np.ldexp(igelu_float(x), fmt.frac)
    if outputs is None:
        outputs = igelu(codes, fmt)
    y = _check_codes(outputs, fmt).astype(np.float64)
    if y.shape != codes.shape:
        raise ValueError(f"Expected {codes.size} outputs (one per code of {fmt}), not {y.shape}")
    err, ferr = np.abs(y - exact), np.abs(approx - exact)
    return IGeluError(
        fmt=fmt,
        max=float(err.max()),
        mean=float(err.mean()),
        float_max=float(ferr.max()),
        float_mean=float(ferr.mean()),
        int_float_max=float(np.abs(y - approx).max()),
    )
