"""HeLU forward unit: ReLU selected by the sign bit, plus the training mask ``z > T``.

At inference HeLU is ReLU: ``y = z if z > 0 else 0`` (``golden.fixed.forward``). The sign bit
alone selects (at ``z = 0`` both branches give 0), so the unit holds no comparator and no adder:
each output bit is ``z[b] & ~sign``, which synthesis maps onto the synchronous reset of the output
flip-flop. For that to work the payload registers are ``reset_less`` (a flip-flop has one
synchronous reset, and ``rst`` only needs to clear ``valid``).

The training build adds the stash bit ``mask = z > T`` per lane (``golden.fixed.mask``), with
``T`` a compile-time constant or a runtime ``threshold`` input port.
"""

from amaranth.hdl import Module, Mux, Signal, signed
from amaranth.lib import data, stream, wiring
from amaranth.lib.wiring import In, Out

from helu.golden import fixed
from helu.hw.units import check_lanes, check_threshold, check_width

__all__ = ["Forward", "register_stage"]


def register_stage(m: Module, i: stream.Interface, o: stream.Interface, payload: Signal):
    """Connect a one-deep registered stage between ``i`` and ``o`` with full backpressure.

    ``payload`` is the (``reset_less``) register that feeds ``o.payload``; the caller assigns it
    with ``m.d.sync`` under ``with m.If(i.ready)``. The register loads whenever the stage can
    take a transfer, valid or not: ``o.valid`` says whether its content counts, and a single
    enable for every payload bit is what lets synthesis use the flip-flops' enable pin.

    - ``i.ready = ~o.valid | o.ready``: combinational from ``o.ready``, so no bubble at II = 1;
    - ``o.valid`` is a register (reset to 0 by ``rst``) and never depends on ``o.ready``.
    """
    m.d.comb += [
        i.ready.eq(~o.valid | o.ready),
        o.payload.eq(payload),
    ]
    with m.If(i.ready):
        m.d.sync += o.valid.eq(i.valid)


def _check(width, lanes, train, threshold, threshold_port):
    """Refuse bad parameters before construction (messages name the value)."""
    check_width(width)
    check_lanes(lanes)
    if not isinstance(train, bool):
        raise TypeError(f"Training build must be a bool, not {train!r}")
    if not isinstance(threshold_port, bool):
        raise TypeError(f"Threshold port must be a bool, not {threshold_port!r}")
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
        The constant ``T`` of the training build (from ``golden.fixed.check_alpha``); between
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
        try:
            _check(width, lanes, train, threshold, threshold_port)
        except (TypeError, ValueError):
            # Amaranth would report the refused object as an unused elaboratable.
            self._MustUse__silence = True
            raise

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
            members["threshold"] = In(signed(fixed.threshold_width(fixed.Format(width, 0))))
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
        payload = Signal(self.o.payload.shape(), reset_less=True)
        register_stage(m, self.i, self.o, payload)
        t = self.threshold if self._threshold_port else self._threshold
        with m.If(self.i.ready):
            for n in range(self._lanes):
                z = self.i.payload.z[n]
                # The sign bit alone selects: y[b] = z[b] & ~z[-1], a flip-flop's sync reset.
                m.d.sync += payload.y[n].eq(Mux(z[-1], 0, z))
                if self._train:
                    m.d.sync += payload.mask[n].eq(z > t)
        return m
