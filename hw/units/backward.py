"""HeLU backward-threshold gradient unit: ``dz = g if mask else 0``.

The backward pass of HeLU needs one bit per activation: ``mask = z > T`` (``golden.fixed.mask``).
The stash is either that bit, emitted by the training forward unit, or the stored ``z``, from
which the unit computes ``z > T`` itself (an AND/OR chain over the bits against a constant,
``hw.units.compare``, or a comparator against the runtime ``threshold`` port). The gradient
passes or is zeroed, exactly (``golden.fixed.backward``): no rounding, so RTL and golden model
agree bit for bit.

With the mask stash each output bit is ``g[b] & mask``: the ``dz`` registers are ``reset_less``
so that the (inverted) mask can drive the flip-flops' synchronous reset.

On iCE40 that inversion costs one LUT4 per lane: a flip-flop's synchronous reset clears on
``R = 1`` and ``dz`` clears on ``mask = 0``. Carrying the stash inverted (a "drop" bit,
``z <= T``, which the forward unit's AND/OR chain would produce for free) would save it, but the
stash port's meaning is shared by the golden vectors (``mask = z > T``), the testbench stimulus,
the formal properties and the MLP engine; one LUT4 per lane does not justify two conventions.
"""

from amaranth.hdl import Module, Mux, signed
from amaranth.lib import data, stream, wiring
from amaranth.lib.wiring import In, Out

from helu.golden import fixed
from helu.hw.units.base import (
    UnitInfo,
    UnitParams,
    check_bool,
    check_lanes,
    check_threshold,
    check_width,
    refusal,
    register_stage,
    threshold_of,
)
from helu.hw.units.compare import above_threshold, threshold_member
from helu.hw.units.forward import THRESHOLD_USES, unit_threshold

__all__ = ["Backward", "STASH_KINDS", "UNITS"]

ORDER = 1

STASH_KINDS = ("mask", "z")


def _check(grad_width, lanes, stash, width, threshold, threshold_port):
    """Refuse bad parameters before construction (messages name the value)."""
    check_width(grad_width, "Gradient width")
    check_lanes(lanes)
    if stash not in STASH_KINDS:
        raise ValueError(f"Stash must be one of {', '.join(STASH_KINDS)}, not {stash!r}")
    check_bool(threshold_port, "Threshold port")
    if stash == "mask":
        if width is not None or threshold is not None or threshold_port:
            raise ValueError("A mask stash takes no width or threshold: the forward unit applied T")
    else:
        if width is None:
            raise ValueError("A z stash needs the width of z")
        check_width(width)
        if threshold_port:
            if threshold is not None:
                raise ValueError(
                    f"Give either a constant threshold or threshold_port=True, not both "
                    f"(threshold={threshold})"
                )
        elif threshold is None:
            raise ValueError("A z stash needs a constant threshold or threshold_port=True")
        else:
            check_threshold(threshold, width)


class Backward(wiring.Component):
    """Streaming HeLU gradient unit, ``lanes`` elements per transfer.

    Parameters
    ----------
    grad_width : int
        Bits of the gradients ``g`` and ``dz``, sign included (2 to 32).
    lanes : int
        Elements per transfer (positive).
    stash : ``"mask"`` or ``"z"``
        What the forward pass kept per element: the 1-bit mask, or ``z`` itself.
    width : int or None
        Bits of ``z`` (2 to 32); only with ``stash="z"``.
    threshold : int or None
        With ``stash="z"``: the constant ``T`` (from ``forward.unit_threshold``), between
        ``-2**width`` and ``2**width - 1``; ``None`` with ``threshold_port``.
    threshold_port : bool
        With ``stash="z"``: take ``T`` from the ``threshold`` input port instead.
    src_loc_at : int
        As in Amaranth: how many frames above the caller to attribute the unit to.

    Members
    -------
    i : ``In(stream.Signature(StructLayout({stash: ..., "g": ArrayLayout(signed(grad_width), lanes)})))``
        The stash field first (``"mask": ArrayLayout(1, lanes)`` or
        ``"z": ArrayLayout(signed(width), lanes)``), then the upstream gradient ``g``.
    o : ``Out(stream.Signature(StructLayout({"dz": ArrayLayout(signed(grad_width), lanes)})))``
        ``dz = g if mask else 0`` per lane.
    threshold : ``In(signed(width + 1))``
        Only with ``threshold_port``: ``T``, compared as ``z > threshold``; hold it steady while a
        stream runs.

    Timing: ``latency`` is 1 cycle from an accepted input to its output being valid; one
    transfer per cycle sustained; full backpressure (``i.ready = ~o.valid | o.ready``, ``o.valid``
    independent of ``o.ready``); ``rst`` clears ``o.valid`` (a pending output is dropped), the
    payload registers have no reset.
    """  # noqa: E501

    def __init__(
        self, grad_width=8, lanes=1, *, stash="mask", width=None, threshold=None,
        threshold_port=False, src_loc_at=0,
    ):  # fmt: skip
        with refusal(self):
            _check(grad_width, lanes, stash, width, threshold, threshold_port)

        self._grad_width = grad_width
        self._lanes = lanes
        self._stash = stash
        self._width = width
        self._threshold = threshold
        self._threshold_port = threshold_port

        if stash == "mask":
            stash_layout = data.ArrayLayout(1, lanes)
        else:
            stash_layout = data.ArrayLayout(signed(width), lanes)
        grad = data.ArrayLayout(signed(grad_width), lanes)
        members = {
            "i": In(stream.Signature(data.StructLayout({stash: stash_layout, "g": grad}))),
            "o": Out(stream.Signature(data.StructLayout({"dz": grad}))),
        }
        if threshold_port:
            members["threshold"] = threshold_member(width)
        super().__init__(members, src_loc_at=1 + src_loc_at)

    @property
    def grad_width(self) -> int:
        return self._grad_width

    @property
    def lanes(self) -> int:
        return self._lanes

    @property
    def stash(self) -> str:
        return self._stash

    @property
    def width(self) -> int | None:
        """Bits of the stored ``z`` (``None`` for a mask stash)."""
        return self._width

    @property
    def threshold_port(self) -> bool:
        return self._threshold_port

    @property
    def threshold_const(self) -> int | None:
        """The constant ``T``; ``None`` for a mask stash or a runtime threshold port."""
        return self._threshold

    @property
    def latency(self) -> int:
        return 1

    def elaborate(self, platform):
        m = Module()
        payload = register_stage(m, self.i, self.o)
        with m.If(self.i.ready):
            for n in range(self._lanes):
                if self._stash == "mask":
                    keep = self.i.payload.mask[n]
                else:
                    keep = above_threshold(self, self.i.payload.z[n])
                m.d.sync += payload.dz[n].eq(Mux(keep, self.i.payload.g[n], 0))
        return m


def _build_backward_mask(params: UnitParams):
    if params.grad_width is None:
        check_width(params.width)  # the gradient takes z's width: name the value given
    return Backward(params.gradient_width, params.lanes, stash="mask", src_loc_at=1)


def _build_backward_z(params: UnitParams):
    check_lanes(params.lanes)
    check_width(params.gradient_width, "Gradient width")
    t, port = unit_threshold(params)
    return Backward(
        params.gradient_width,
        params.lanes,
        stash="z",
        width=params.width,
        threshold=t,
        threshold_port=port,
        src_loc_at=1,
    )


def _ref_backward_z(params, inputs):
    m = fixed.mask(inputs["z"], threshold_of(params, inputs))
    return {"dz": fixed.backward(inputs["g"], m)}


UNITS = {
    "backward-mask": UnitInfo(
        build=_build_backward_mask,
        reference=lambda p, inputs: {"dz": fixed.backward(inputs["g"], inputs["mask"])},
        uses=("lanes", "grad_width"),
        inputs=("mask", "g"),
        description="HeLU backward from a 1-bit mask stash: dz = g if mask else 0",
        golden=True,
    ),
    "backward-z": UnitInfo(
        build=_build_backward_z,
        reference=_ref_backward_z,
        uses=(*THRESHOLD_USES, "grad_width"),
        inputs=("z", "g"),
        description="HeLU backward from a stored z: dz = g if z > T else 0",
        golden=True,
    ),
}
