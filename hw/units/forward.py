"""HeLU forward unit: ReLU selected by the sign bit, plus the training mask ``z > T``.

At inference HeLU is ReLU: ``y = z if z > 0 else 0`` (``golden.fixed.forward``). The sign bit
alone selects (at ``z = 0`` both branches give 0), so the unit holds no comparator and no adder:
each output bit is ``z[b] & ~sign``, which synthesis maps onto the synchronous reset of the output
flip-flop. For that to work the payload registers are ``reset_less`` (a flip-flop has one
synchronous reset, and ``rst`` only needs to clear ``valid``).

The training build adds the stash bit ``mask = z > T`` per lane (``golden.fixed.mask``), with
``T`` a compile-time constant (an AND/OR chain over the bits of ``z``, ``hw.units.compare``: no
carry chain) or a runtime ``threshold`` input port (a real comparator).
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

__all__ = ["Forward", "UNITS", "unit_threshold"]

ORDER = 0


def _check(width, lanes, train, threshold, threshold_port):
    """Refuse bad parameters before construction (messages name the value)."""
    check_width(width)
    check_lanes(lanes)
    check_bool(train, "Training build")
    check_bool(threshold_port, "Threshold port")
    if not train:
        if threshold is not None or threshold_port:
            raise ValueError("A threshold applies only to the training build (train=True)")
    elif threshold_port:
        if threshold is not None:
            raise ValueError(
                f"Give either a constant threshold or threshold_port=True, not both "
                f"(threshold={threshold})"
            )
    elif threshold is None:
        raise ValueError("The training build needs a constant threshold or threshold_port=True")
    else:
        check_threshold(threshold, width)


class Forward(wiring.Component):
    """Streaming HeLU forward unit, ``lanes`` elements per transfer.

    Parameters
    ----------
    width : int
        Bits of ``z`` and ``y``, sign included (2 to 32).
    lanes : int
        Elements per transfer (positive).
    train : bool
        Also emit the backward stash bit ``mask = z > T`` per lane.
    threshold : int or None
        The constant ``T`` of the training build (from ``unit_threshold``); between
        ``-2**width`` and ``2**width - 1``. ``None`` unless ``train`` and not ``threshold_port``.
    threshold_port : bool
        Training build only: take ``T`` from the ``threshold`` input port instead.
    src_loc_at : int
        As in Amaranth: how many frames above the caller to attribute the unit to.

    Members
    -------
    i : ``In(stream.Signature(StructLayout({"z": ArrayLayout(signed(width), lanes)})))``
        Input codes ``z``.
    o : ``Out(stream.Signature(StructLayout({"y": ArrayLayout(signed(width), lanes)})))``
        Output codes ``y = z if z > 0 else 0``; the training build adds the field
        ``"mask": ArrayLayout(1, lanes)`` after ``y``.
    threshold : ``In(signed(width + 1))``
        Only with ``threshold_port``: ``T``, compared as ``z > threshold``; hold it steady while
        a stream runs (it applies to the transfers accepted while it has that value).

    Timing: ``latency`` is 1 cycle from an accepted input to its output being valid; one
    transfer per cycle sustained; full backpressure (``i.ready = ~o.valid | o.ready``, ``o.valid``
    independent of ``o.ready``); ``rst`` clears ``o.valid`` (a pending output is dropped), the
    payload registers have no reset.
    """

    def __init__(
        self, width=8, lanes=1, *, train=False, threshold=None, threshold_port=False, src_loc_at=0
    ):
        with refusal(self):
            _check(width, lanes, train, threshold, threshold_port)

        self._width = width
        self._lanes = lanes
        self._train = train
        self._threshold = threshold
        self._threshold_port = threshold_port

        out_fields = {"y": data.ArrayLayout(signed(width), lanes)}
        if train:
            out_fields["mask"] = data.ArrayLayout(1, lanes)
        members = {
            "i": In(
                stream.Signature(data.StructLayout({"z": data.ArrayLayout(signed(width), lanes)}))
            ),
            "o": Out(stream.Signature(data.StructLayout(out_fields))),
        }
        if threshold_port:
            members["threshold"] = threshold_member(width)
        super().__init__(members, src_loc_at=1 + src_loc_at)

    @property
    def width(self) -> int:
        return self._width

    @property
    def lanes(self) -> int:
        return self._lanes

    @property
    def train(self) -> bool:
        return self._train

    @property
    def threshold_port(self) -> bool:
        return self._threshold_port

    @property
    def threshold_const(self) -> int | None:
        """The constant ``T``; ``None`` for the inference build or a runtime threshold port."""
        return self._threshold

    @property
    def latency(self) -> int:
        return 1

    def elaborate(self, platform):
        m = Module()
        payload = register_stage(m, self.i, self.o)
        with m.If(self.i.ready):
            for n in range(self._lanes):
                z = self.i.payload.z[n]
                # The sign bit alone selects: y[b] = z[b] & ~z[-1], a flip-flop's sync reset.
                m.d.sync += payload.y[n].eq(Mux(z[-1], 0, z))
                if self._train:
                    m.d.sync += payload.mask[n].eq(above_threshold(self, z))
        return m


def unit_threshold(params: UnitParams):
    """``(threshold, threshold_port)`` for a constructor; a constant ``T`` warns if alpha
    vanishes (``fixed.checked_threshold``)."""
    check_width(params.width)
    if params.threshold_port:
        return None, True
    return fixed.checked_threshold(params.alpha, fixed.Format(params.width, params.frac)), False


def _build_forward_train(params: UnitParams):
    check_lanes(params.lanes)
    t, port = unit_threshold(params)
    return Forward(
        params.width, params.lanes, train=True, threshold=t, threshold_port=port, src_loc_at=1
    )


def _ref_forward_train(params, inputs):
    z = inputs["z"]
    return {"y": fixed.forward(z), "mask": fixed.mask(z, threshold_of(params, inputs)).astype(int)}


THRESHOLD_USES = ("width", "lanes", "frac", "alpha", "threshold_port")

UNITS = {
    "forward": UnitInfo(
        build=lambda p: Forward(p.width, p.lanes, src_loc_at=1),
        reference=lambda p, inputs: {"y": fixed.forward(inputs["z"])},
        uses=("width", "lanes"),
        description="HeLU/ReLU inference forward: y = z if z > 0 else 0, selected by the sign bit",
        study="helu",
        golden=True,
    ),
    "forward-train": UnitInfo(
        build=_build_forward_train,
        reference=_ref_forward_train,
        uses=THRESHOLD_USES,
        description="HeLU training forward: y as in inference, plus the stash bit mask = z > T",
        golden=True,
    ),
}
