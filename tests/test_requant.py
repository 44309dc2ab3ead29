"""hw/net/requant.py in Amaranth's simulator, against golden.fixed.requantize."""

import numpy as np
import pytest
from amaranth.hdl import Module, Signal, signed
from amaranth.sim import Simulator

from helu.golden import fixed
from helu.hw.net.requant import requantize, round_select, saturate


def _accumulators(seed: int) -> np.ndarray:
    lo, hi = -(1 << (fixed.ACC_WIDTH - 1)), (1 << (fixed.ACC_WIDTH - 1)) - 1
    rng = np.random.default_rng(seed)
    corners = [lo, lo + 1, hi, hi - 1, 0, 1, -1]
    # Around every rounding tie and saturation edge of small shifts.
    for s in range(0, 12):
        for base in (0, 127 << s, -128 << s, 1 << s, -(1 << s)):
            corners += [base + d for d in (-(1 << max(s - 1, 0)), -1, 0, 1, 1 << max(s - 1, 0))]
    return np.concatenate(
        [np.array(corners), rng.integers(lo, hi, 300), rng.integers(-9999, 9999, 300)]
    )


def _simulate(build, values, selects):
    m = Module()
    acc = Signal(signed(fixed.ACC_WIDTH))
    index = Signal(4)
    out = build(acc, index)
    got = []

    async def testbench(ctx):
        for v, k in zip(values, selects, strict=True):
            ctx.set(acc, int(v))
            ctx.set(index, int(k))
            got.append(ctx.get(out))

    sim = Simulator(m)
    sim.add_testbench(testbench)
    sim.run()
    return np.array(got, dtype=np.int64)


@pytest.mark.parametrize("shift", [0, 1, 4, 9, 17, 31])
def test_requantize_matches_golden(shift):
    accs = _accumulators(shift)
    got = _simulate(lambda a, _i: requantize(a, shift), accs, [0] * len(accs))
    np.testing.assert_array_equal(got, fixed.requantize(accs.astype(np.int64), shift))


# (shift, accumulator, int8 code) worked by hand from the rule in docs/design.md, not from any
# helper of the project: (acc + 2**(shift-1)) >> shift (floor), then clamp to [-128, 127].
PINNED = [
    (0, 5, 5), (0, 300, 127), (0, -300, -128), (0, -128, -128),
    (1, 1, 1), (1, -1, 0), (1, 3, 2), (1, -3, -1), (1, 254, 127), (1, 255, 127),
    (4, 7, 0), (4, 8, 1), (4, -8, 0), (4, -9, -1), (4, 24, 2), (4, -24, -1),
    (4, 2039, 127), (4, 2040, 127), (4, -2056, -128), (4, -2057, -128), (4, -2040, -127),
    (9, 255, 0), (9, 256, 1), (9, -256, 0), (9, -257, -1), (9, 1000, 2),
]  # fmt: skip


@pytest.mark.parametrize("shift", sorted({s for s, _a, _q in PINNED}))
def test_requantize_pinned_values(shift):
    """Hand-worked codes: the hardware helper (and the golden rule it shares) give exactly these,
    so a wrong rounding (half even, half away from zero, truncation) or clamp fails here even
    though hardware and golden would still agree with each other."""
    cases = [(a, q) for s, a, q in PINNED if s == shift]
    accs = np.array([a for a, _q in cases], dtype=np.int64)
    want = [q for _a, q in cases]
    got = _simulate(lambda a, _i: requantize(a, shift), accs, [0] * len(accs))
    assert got.tolist() == want, f"shift {shift}: accumulators {accs.tolist()}"
    assert fixed.requantize(accs, shift).tolist() == want, f"golden rule, shift {shift}"


def test_round_select_then_saturate_matches_golden():
    shifts = [7, 3, 7, 0]
    accs = _accumulators(1)
    picks = np.arange(len(accs)) % len(shifts)
    got = _simulate(lambda a, i: saturate(round_select(a, i, shifts)), accs, picks)
    want = [int(fixed.requantize(np.int64(a), shifts[k])) for a, k in zip(accs, picks, strict=True)]
    np.testing.assert_array_equal(got, want)


def test_requantize_wrong():
    acc = Signal(signed(8))
    with pytest.raises(ValueError, match="Shift must be an integer >= 0, not -1"):
        requantize(acc, -1)
    with pytest.raises(ValueError, match="needs at least one shift"):
        round_select(acc, Signal(2), [])


def test_align_turns_a_chosen_shift_into_one_constant_shift():
    """The identity hw.net.requant.align relies on, pinned exhaustively on small values:
    scale_shift(x << (m - s), m) == scale_shift(x, s) for s <= m, negative shifts included."""
    x = np.arange(-600, 601)
    for m in range(0, 7):
        for s in range(-3, m + 1):
            np.testing.assert_array_equal(
                fixed.scale_shift(x << (m - s), m), fixed.scale_shift(x, s), err_msg=f"{m} {s}"
            )
    # and it needs s <= m: one more and the identity breaks
    assert not np.array_equal(fixed.scale_shift(x << 0, 2), fixed.scale_shift(x, 3))
