"""``z > T`` against a constant as an AND/OR chain (hw/units/compare.py), checked exhaustively."""

import pytest
from amaranth.hdl import Const, Module, Signal, signed
from amaranth.sim import Simulator

from helu.golden import fixed
from helu.hw.units.compare import greater_than


@pytest.mark.parametrize("width", [2, 3, 5, 8])
def test_every_code_against_every_threshold(width):
    lo, hi = fixed.threshold_range(fixed.Format(width, 0))
    thresholds = list(range(lo, hi + 1))
    z = Signal(signed(width))
    outs = [Signal(name=f"gt_{k}") for k in range(len(thresholds))]
    m = Module()
    m.d.comb += [o.eq(greater_than(z, t)) for o, t in zip(outs, thresholds, strict=True)]
    wrong = []

    async def testbench(ctx):
        for code in range(-(1 << (width - 1)), 1 << (width - 1)):
            ctx.set(z, code)
            bits = [ctx.get(o) for o in outs]
            wrong.extend(
                (code, t) for t, b in zip(thresholds, bits, strict=True) if b != (code > t)
            )

    sim = Simulator(m)
    sim.add_testbench(testbench)
    sim.run()
    assert not wrong, f"{len(wrong)} wrong (z, T) pairs, first {wrong[0]}"


def test_thresholds_outside_the_codes_are_constants():
    z = Signal(signed(8))
    assert isinstance(greater_than(z, -129), Const) and greater_than(z, -129).value == 1
    assert isinstance(greater_than(z, 127), Const) and greater_than(z, 127).value == 0
    assert not isinstance(greater_than(z, -128), Const)  # -128 > -128 is false: a real bit
