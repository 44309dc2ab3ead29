"""Fixed-point rules of the HeLU toolkit: the one place they are written.

Every part of the project (golden export, RTL generators, testbench checks, reports) imports these
functions; none restates them. numpy only, so that ``hw`` and ``sim`` can import this module
without pulling in torch.

Semantics (``docs/design.md``, normative):

- A code ``k`` in format ``Q(width, frac)`` is a signed two's complement integer of ``width`` bits
  with value ``k * 2**-frac``.
- Quantize: ``k = clamp(round_half_even(x * 2**frac), -2**(width-1), 2**(width-1) - 1)``.
- Threshold: ``T = floor(-alpha * 2**frac)``; ``mask = k > T`` equals the float rule
  ``z > -alpha`` for every representable ``k``.
- Forward: ``y = k if k > 0 else 0``. Backward: ``dz = g if mask else 0``.
- Clipped ReLU: ``y = min(max(k, 0), C)``, ``C >= 0`` a code.
"""

import math
import warnings
from dataclasses import dataclass

import numpy as np

__all__ = [
    "Format",
    "AlphaVanishesWarning",
    "array_generic",
    "quantize",
    "quantize_input",
    "dequantize",
    "choose_frac",
    "threshold",
    "threshold_width",
    "threshold_range",
    "alpha_note",
    "checked_threshold",
    "validate_alpha",
    "forward",
    "clipped",
    "mask",
    "backward",
    "to_unsigned",
    "to_signed",
    "ACT_WIDTH",
    "ACC_WIDTH",
    "MASTER_WIDTH",
    "SHADOW_SHIFT",
    "saturate",
    "round_bias",
    "shift_round",
    "requantize",
    "shadow_weights",
    "accumulator_bound",
    "check_accumulator",
    "TARGET",
    "scale_shift",
    "loss_gradient",
    "update",
    "descent",
    "master_from_shadow",
]

# Formats wider than this do not fit numpy's int64 arithmetic with headroom for products.
MAX_WIDTH = 32
# Per-tensor scales are searched in this range of fractional bits.
MIN_FRAC, MAX_FRAC = -32, 48


class AlphaVanishesWarning(UserWarning):
    """``alpha > 0`` but the format holds no negative code inside the band ``(-alpha, 0]``."""


@dataclass(frozen=True)
class Format:
    """Signed two's complement fixed-point format ``Q(width, frac)``.

    Parameters
    ----------
    width : int
        Total bits, sign included (2 to 32).
    frac : int
        Fractional bits; the value of code ``k`` is ``k * 2**-frac``. May be negative or exceed
        ``width`` (a pure power-of-two scale).
    """

    width: int
    frac: int

    def __post_init__(self):
        if not isinstance(self.width, int) or isinstance(self.width, bool):
            raise TypeError(f"Width must be an integer, not {self.width!r}")
        if not 2 <= self.width <= MAX_WIDTH:
            raise ValueError(f"Width must be between 2 and {MAX_WIDTH} bits, not {self.width}")
        if not isinstance(self.frac, int) or isinstance(self.frac, bool):
            raise TypeError(f"Fractional bits must be an integer, not {self.frac!r}")
        if not MIN_FRAC <= self.frac <= MAX_FRAC:
            raise ValueError(
                f"Fractional bits must be between {MIN_FRAC} and {MAX_FRAC}, not {self.frac}"
            )

    @property
    def min_code(self) -> int:
        return -(1 << (self.width - 1))

    @property
    def max_code(self) -> int:
        return (1 << (self.width - 1)) - 1

    @property
    def step(self) -> float:
        """Value of one code (the quantization step)."""
        return math.ldexp(1.0, -self.frac)

    def __str__(self):
        return f"Q{self.width}.{self.frac}"

    def to_dict(self) -> dict:
        return {"width": self.width, "frac": self.frac}


def quantize(x, fmt: Format) -> tuple[np.ndarray, int]:
    """Quantize floats to codes; returns ``(codes as int64, number of saturated elements)``.

    Rounds half to even (numpy's ``rint``) and saturates to the format's range. Non-finite input
    is refused: a NaN has no code.
    """
    x = np.asarray(x, dtype=np.float64)
    if not np.all(np.isfinite(x)):
        raise ValueError(f"cannot quantize {np.count_nonzero(~np.isfinite(x))} non-finite values")
    # ldexp scales by a power of two exactly, so rounding happens only once, in rint.
    scaled = np.rint(np.ldexp(x, fmt.frac))
    saturated = int(np.count_nonzero((scaled < fmt.min_code) | (scaled > fmt.max_code)))
    codes = np.clip(scaled, fmt.min_code, fmt.max_code).astype(np.int64)
    return codes, saturated


def quantize_input(x, frac: int, lo: int, hi: int) -> tuple[np.ndarray, int]:
    """A network's input codes: ``quantize`` to ``Q(ACT_WIDTH, frac)``, then clamp to the
    stated code range ``[lo, hi]`` (unsigned data: ``lo = 0``). Returns ``(codes, clamped)``."""
    codes, saturated = quantize(x, Format(ACT_WIDTH, frac))
    clamped = saturated + int(np.count_nonzero((codes < lo) | (codes > hi)))
    return codes.clip(lo, hi), clamped


def dequantize(codes, fmt: Format) -> np.ndarray:
    """Codes to float64 values ``k * 2**-frac`` (exact)."""
    return np.ldexp(np.asarray(codes, dtype=np.float64), -fmt.frac)


def choose_frac(x, width: int) -> int:
    """Largest ``frac`` such that quantizing ``x`` to ``Q(width, frac)`` saturates nothing.

    A power-of-two per-tensor scale: as fine as the tensor's range allows. An all-zero tensor gets
    ``width - 1`` fractional bits (values in [-1, 1)).
    """
    x = np.asarray(x, dtype=np.float64)
    if x.size == 0 or not np.any(x):
        return Format(width, width - 1).frac
    if not np.all(np.isfinite(x)):
        raise ValueError("cannot choose a scale for a tensor with non-finite values")
    lo, hi = float(x.min()), float(x.max())
    fmt = None
    for frac in range(MAX_FRAC, MIN_FRAC - 1, -1):
        fmt = Format(width, frac)
        if (
            np.rint(math.ldexp(hi, frac)) <= fmt.max_code
            and np.rint(math.ldexp(lo, frac)) >= fmt.min_code
        ):
            return frac
    raise ValueError(f"values up to {max(abs(lo), abs(hi)):g} do not fit any {width}-bit format")


def validate_alpha(alpha) -> float:
    """``alpha`` as a float, or ``TypeError``/``ValueError`` naming the bad value: the one check
    of the HeLU margin, for the PyTorch activation and the integer threshold alike."""
    if isinstance(alpha, bool) or not isinstance(alpha, (int, float, np.floating, np.integer)):
        raise TypeError(f"Alpha must be a number, not {alpha!r}")
    alpha = float(alpha)
    if not math.isfinite(alpha) or alpha < 0:
        raise ValueError(f"Alpha must be a finite number >= 0, not {alpha}")
    return alpha


def threshold(alpha, fmt: Format) -> int:
    """The integer threshold ``T = floor(-alpha * 2**frac)``: ``mask = k > T``.

    ``T`` is clamped below to ``min_code - 1`` (every code passes), which leaves ``k > T``
    unchanged for every representable ``k``; so ``T`` fits in ``threshold_width(fmt)`` bits.
    """
    alpha = validate_alpha(alpha)
    try:
        t = math.floor(-math.ldexp(alpha, fmt.frac))
    except OverflowError:  # alpha * 2**frac beyond any float (alpha=1e308): below every code
        return fmt.min_code - 1
    return max(t, fmt.min_code - 1)


def threshold_width(fmt: Format) -> int:
    """Signed width that holds every threshold of ``fmt`` (one more bit than the codes)."""
    return fmt.width + 1


def threshold_range(fmt: Format) -> tuple[int, int]:
    """``(lo, hi)``: the thresholds a ``threshold_width(fmt)``-bit signed port can carry."""
    bits = threshold_width(fmt)
    return -(1 << (bits - 1)), (1 << (bits - 1)) - 1


def alpha_note(alpha, fmt: Format) -> str | None:
    """A sentence explaining that ``alpha`` has no effect in ``fmt``, or ``None`` when it has."""
    alpha = validate_alpha(alpha)
    if alpha == 0:
        return None
    t = threshold(alpha, fmt)
    if t < fmt.min_code:
        return (
            f"alpha={alpha:g} covers every negative code of {fmt} (T clamps to {t}): the backward "
            "mask is always 1; use fewer fractional bits or a smaller alpha"
        )
    if t < -1:
        return None
    needed = fmt.frac + 1
    while needed <= MAX_FRAC and math.ldexp(alpha, needed) <= 1:
        needed += 1
    if needed > MAX_FRAC:
        return (
            f"alpha={alpha:g} leaves no negative code in the band (-alpha, 0] of {fmt}, nor of "
            f"any format (at most {MAX_FRAC} fractional bits): the backward mask is ReLU's "
            "shifted to include 0; use alpha=0 or a larger alpha"
        )
    return (
        f"alpha={alpha:g} leaves no negative code in the band (-alpha, 0] of {fmt}: "
        f"the backward mask is ReLU's shifted to include 0; use at least {needed} fractional bits"
    )


def checked_threshold(alpha, fmt: Format) -> int:
    """``threshold(alpha, fmt)``, warning (``AlphaVanishesWarning``) when alpha has no effect."""
    note = alpha_note(alpha, fmt)
    if note is not None:
        warnings.warn(note, AlphaVanishesWarning, stacklevel=2)
    return threshold(alpha, fmt)


def array_generic(codes) -> bool:
    """Whether the rules take ``codes`` as they are instead of as an int64 numpy array.

    True for a torch tensor and for an array-like other than a numpy array that implements
    numpy's ``__array_function__`` protocol (``hw.symbolic.Symbolic``: the formal proofs evaluate
    these very rules as logic). The rules below use only operators, ``.clip``, ``.astype`` and
    ``np.where``, so they mean the same on all of them.
    """
    return hasattr(codes, "new_tensor") or (
        hasattr(codes, "__array_function__") and not isinstance(codes, np.ndarray)
    )


def _codes(codes):
    """Codes as an int64 numpy array; array-generic codes pass through (``array_generic``)."""
    return codes if array_generic(codes) else np.asarray(codes, dtype=np.int64)


def forward(codes) -> np.ndarray:
    """Integer HeLU/ReLU forward: ``y = k if k > 0 else 0`` (numpy arrays or torch tensors)."""
    return _codes(codes).clip(0, None)


def clipped(codes, clip: int) -> np.ndarray:
    """Integer clipped ReLU (ReLU6 in codes): ``y = min(max(k, 0), C)`` with ``C >= 0``."""
    return _codes(codes).clip(0, clip)


def mask(codes, t: int) -> np.ndarray:
    """Backward mask ``k > T`` (boolean; numpy arrays or torch tensors)."""
    return _codes(codes) > t


def backward(grad_codes, mask_bits) -> np.ndarray:
    """Integer HeLU backward: ``dz = g if mask else 0`` (exact, no rounding)."""
    grad_codes = _codes(grad_codes)
    mask_bits = mask_bits if array_generic(mask_bits) else np.asarray(mask_bits)
    if grad_codes.shape != mask_bits.shape:
        raise ValueError(
            f"gradient shape {tuple(grad_codes.shape)} does not match mask shape "
            f"{tuple(mask_bits.shape)}"
        )
    # g * 1 or g * 0: exact, and the same operator on numpy arrays and torch tensors.
    return grad_codes * (mask_bits != 0)


def to_unsigned(codes, width: int) -> np.ndarray:
    """Two's complement bit patterns of signed codes, as non-negative int64 (for hex and ports)."""
    codes = np.asarray(codes, dtype=np.int64)
    return codes & ((1 << width) - 1)


def to_signed(bits, width: int) -> np.ndarray:
    """Signed codes from ``width``-bit two's complement patterns (what simulators hand back)."""
    bits = np.asarray(bits, dtype=np.int64) & ((1 << width) - 1)
    return np.where(bits >= (1 << (width - 1)), bits - (1 << width), bits)


# ---------------------------------------------------------------------------------------------
# Integer network arithmetic (the on-chip MLP: inference core and training engine).
#
# These rules are array-generic: they take numpy integer arrays or torch integer tensors alike
# (only operators and ``.clip``), so the PyTorch golden network and the numpy-side checks share
# them instead of restating them. Scales are powers of two only: hardware requantizes by shifting,
# never by multiplying.
# ---------------------------------------------------------------------------------------------

ACT_WIDTH = 8  # activations, logits, shadow weights and deltas: int8
ACC_WIDTH = 32  # multiply-accumulate registers: int32
MASTER_WIDTH = 16  # master weights (training): int16
SHADOW_SHIFT = 8  # shadow = requantize(master, SHADOW_SHIFT, ACT_WIDTH)


def saturate(x, width: int):
    """Clamp signed integers to ``width`` bits: ``[-2**(width-1), 2**(width-1) - 1]``."""
    return x.clip(-(1 << (width - 1)), (1 << (width - 1)) - 1)


def _check_shift(shift) -> int:
    if isinstance(shift, bool) or not isinstance(shift, (int, np.integer)) or shift < 0:
        raise ValueError(f"Shift must be an integer >= 0, not {shift!r}")
    return int(shift)


def round_bias(shift: int) -> int:
    """The constant :func:`shift_round` adds before its shift: ``2**(shift-1)``, 0 for no shift.

    Hardware that folds the rounding into an adder it already has (an accumulator's initial
    value, a multiply's sum) adds this constant there and shifts later:
    ``(x + round_bias(s)) >> s == shift_round(x, s)`` for every integer ``x``.
    """
    shift = _check_shift(shift)
    return 1 << (shift - 1) if shift else 0


def shift_round(x, shift: int):
    """Arithmetic shift right by ``shift`` >= 0 bits, rounding half up (towards +inf).

    ``(x + 2**(shift-1)) >> shift``: one constant add before the shift (:func:`round_bias`),
    which hardware folds into the accumulator's initial value (the bias), so rounding costs no
    extra adder. Round half to even would need a sticky-bit check per output for a bias of at
    most half an LSB.
    """
    shift = _check_shift(shift)
    if shift == 0:
        return x
    return (x + round_bias(shift)) >> shift


def requantize(acc, shift: int, width: int = ACT_WIDTH):
    """Accumulator to ``width``-bit codes: ``saturate(shift_round(acc, shift), width)``."""
    return saturate(shift_round(acc, shift), width)


def shadow_weights(master):
    """The int8 copy of int16 master weights that every multiply uses (``SHADOW_SHIFT`` bits)."""
    return requantize(master, SHADOW_SHIFT, ACT_WIDTH)


def accumulator_bound(fan_in: int, in_max: int, w_max: int, bias_max: int = 0) -> int:
    """Largest ``|acc|`` of ``bias + sum(w * x)`` over ``fan_in`` terms of the given magnitudes."""
    for name, value in (("fan-in", fan_in), ("in_max", in_max), ("w_max", w_max)):
        if isinstance(value, bool) or not isinstance(value, int) or value < 0:
            raise ValueError(f"{name} must be an integer >= 0, not {value!r}")
    return fan_in * in_max * w_max + abs(int(bias_max))


def check_accumulator(
    fan_in: int, in_max: int, w_max: int, bias_max: int = 0, width: int = ACC_WIDTH
) -> int:
    """Raise ``ValueError`` unless ``accumulator_bound(...)`` fits ``width`` signed bits.

    With the bound checked, the accumulator can never overflow, so the hardware needs no
    saturation inside the sum; it saturates once, when requantizing. Returns the bound.
    """
    bound = accumulator_bound(fan_in, in_max, w_max, bias_max)
    if bound > (1 << (width - 1)) - 1:
        raise ValueError(
            f"a {fan_in}-input sum of |x| <= {in_max} times |w| <= {w_max} (bias {bias_max}) "
            f"reaches {bound}, beyond a {width}-bit accumulator"
        )
    return bound


# ---------------------------------------------------------------------------------------------
# Integer training (the on-chip training step; golden model: golden.intnet.IntNet.step).
#
# Loss: squared error of the int8 logits against a scaled one-hot, whose gradient at the logits is
# e = L - TARGET * onehot. Deltas are int8 (requantized like activations), masked by the 1-bit
# stash (``backward``); weight gradients are exact int8 x int8 products (int16). Master weights are
# int16 and biases int32 at the accumulator's scale; an update subtracts the gradient scaled by a
# power of two (``scale_shift``: the learning rate and the scale change in one shift) and
# saturates. No stochastic rounding: every update rounds half up, deterministically.
# ---------------------------------------------------------------------------------------------

TARGET = 32  # the scaled one-hot: the correct class's logit is pulled towards 32


def scale_shift(x, shift: int):
    """``x * 2**-shift`` for a signed ``shift``: ``shift_round`` right, or an exact left shift."""
    if isinstance(shift, bool) or not isinstance(shift, (int, np.integer)):
        raise ValueError(f"Shift must be an integer, not {shift!r}")
    return shift_round(x, int(shift)) if shift >= 0 else x << int(-shift)


def loss_gradient(logits, onehot):
    """Integer loss gradient at the logits: ``saturate(L - TARGET * onehot, ACT_WIDTH)``.

    The gradient of ``(L - TARGET * onehot)**2 / 2``; saturated to int8 like every delta.
    """
    return saturate(logits - TARGET * onehot, ACT_WIDTH)


def update(param, grad, shift: int, width: int):
    """SGD by shifts: ``saturate(param - scale_shift(grad, shift), width)``.

    Masters: ``width = MASTER_WIDTH``; biases: ``width = ACC_WIDTH``. The shift is the learning
    rate's exponent plus the scale difference between gradient and parameter. Written as its two
    halves, :func:`descent` then :func:`saturate`, so that hardware can register between them
    and still run this rule, not a copy of it.
    """
    return saturate(descent(param, grad, shift), width)


def descent(param, grad, shift: int):
    """An update before its saturation: ``param - scale_shift(grad, shift)``."""
    return param - scale_shift(grad, shift)


def master_from_shadow(weights):
    """int16 masters whose shadow (``shadow_weights``) is exactly ``weights`` (int8)."""
    return weights << SHADOW_SHIFT
