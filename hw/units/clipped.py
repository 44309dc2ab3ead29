"""Clipped ReLU (ReLU6 of quantized MobileNets): ``y = min(max(z, 0), C)``, ``C`` in codes.

The whole unit is this file: its component, its registry entry (reference ``golden.fixed.clipped``,
the parameter ``clip``, the corner codes ``C - 1, C, C + 1`` and the study activation ``relu6``).
As in the HeLU forward unit the sign bit alone zeroes a negative ``z`` (the flip-flops'
synchronous reset, payload registers ``reset_less``); the upper clip compares against the
constant ``C`` with an AND/OR chain (``hw.units.compare``), no carry chain.
"""

from amaranth.hdl import Module, Mux

from helu.golden import fixed
from helu.hw.units.base import (
    ElementwiseUnit,
    Param,
    UnitInfo,
    check_width,
    refusal,
    register_stage,
)
from helu.hw.units.compare import greater_than

__all__ = ["ClippedRelu", "check_clip", "UNITS"]

ORDER = 3


def check_clip(clip, width: int) -> int:
    """Check a clip level: an integer code from 0 to the largest ``width``-bit code."""
    if isinstance(clip, bool) or not isinstance(clip, int):
        raise TypeError(f"Clip level must be an integer code, not {clip!r}")
    top = fixed.Format(width, 0).max_code
    if not 0 <= clip <= top:
        raise ValueError(
            f"Clip level must be between 0 and {top} for {width}-bit codes, not {clip}"
        )
    return clip


class ClippedRelu(ElementwiseUnit):
    """Streaming clipped ReLU, ``lanes`` elements per transfer: ``y = min(max(z, 0), clip)``.

    Parameters
    ----------
    width : int
        Bits of ``z`` and ``y``, sign included (2 to 32).
    lanes : int
        Elements per transfer (positive).
    clip : int
        The clip level ``C``, a code from 0 to ``2**(width-1) - 1`` (96 is 6.0 in Q8.4: ReLU6).

    Members
    -------
    i : ``In(stream.Signature(StructLayout({"z": ArrayLayout(signed(width), lanes)})))``
    o : ``Out(stream.Signature(StructLayout({"y": ArrayLayout(signed(width), lanes)})))``

    Timing: ``latency`` 1; one transfer per cycle; full backpressure (``i.ready = ~o.valid |
    o.ready``); ``rst`` clears ``o.valid`` only.
    """

    def __init__(self, width=8, lanes=1, *, clip=96):
        with refusal(self):
            self._clip = check_clip(clip, check_width(width))
        super().__init__(width, lanes)

    @property
    def clip(self) -> int:
        return self._clip

    def elaborate(self, platform):
        m = Module()
        payload = register_stage(m, self.i, self.o)
        with m.If(self.i.ready):
            for n in range(self._lanes):
                z = self.i.payload.z[n]
                over = greater_than(z, self._clip)  # an AND/OR chain, no carry (hw.units.compare)
                m.d.sync += payload.y[n].eq(Mux(z[-1], 0, Mux(over, self._clip, z)))
        return m


CLIP = Param("clip", 96, "clipped ReLU's clip level C in codes (96: 6.0 in Q8.4)", "c", int)

UNITS = {
    "clipped-relu": UnitInfo(
        build=lambda p: ClippedRelu(p.width, p.lanes, clip=p.clip),
        reference=lambda p, inputs: {"y": fixed.clipped(inputs["z"], p.clip)},
        uses=("width", "lanes"),
        params=(CLIP,),
        corners=lambda p, fmt: (p.clip - 1, p.clip, p.clip + 1),
        description="clipped ReLU (ReLU6): y = min(max(z, 0), clip)",
        study="relu6",
    ),
}
