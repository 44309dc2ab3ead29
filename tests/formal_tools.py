"""What the formal test modules share: the proof toolchain (or a skip saying what is missing) and
the value of Amaranth expressions under given inputs (the symbolic references checked as logic)."""

import numpy as np
import pytest
from amaranth.hdl import Module
from amaranth.sim import Simulator

from helu.hw import formal
from helu.hw.tools import ToolMissing

__all__ = ["toolchain_or_skip", "evaluate"]


def toolchain_or_skip():
    try:
        return formal.find_toolchain()
    except ToolMissing as exc:
        pytest.skip(str(exc))


def evaluate(exprs, assignments):
    """Values of Amaranth expressions under ``assignments`` (lists of (signal, int) pairs)."""
    out = []

    async def bench(ctx):
        for pairs in assignments:
            for sig, v in pairs:
                ctx.set(sig, v)
            out.append([ctx.get(e) for e in exprs])

    sim = Simulator(Module())
    sim.add_testbench(bench)
    sim.run()
    return np.array(out)
