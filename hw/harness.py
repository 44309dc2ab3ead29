"""A timing harness: measure the Fmax of a unit too wide for the package's pins.

A 16-lane x 16-bit unit has 512 data ports; the iCE40 HX8K in the ct256 package has 206 user
I/O, so placing the unit on its own fails (docs/design.md). And a unit placed with its ports on pins
has few or no register-to-register paths (its inputs come from pins, not flip-flops), so nextpnr
reports "no interior timing paths" and no Fmax at all. :class:`Harness` wraps the unit so that
every path through it starts and ends at a flip-flop, with only ``clk``, ``rst`` and one output
pin left:

- Inputs. Every input-flow port of the unit (``i.payload``, ``i.valid``, ``o.ready``, a runtime
  ``threshold``) is driven from flip-flops: a 32-bit Fibonacci LFSR (maximal length, taps
  32, 22, 2, 1) feeds one bit per cycle into a reset-less shift register as wide as the unit's
  data inputs; ``i.valid`` and ``o.ready`` come straight from LFSR bits (or ``o.ready`` is held
  high with ``ready="high"``), so the backpressure logic stays in the netlist. The source is
  free-running: it does not wait for ``i.ready``, which keeps the harness from adding a
  high-fanout enable path of its own; static timing looks at every path regardless.
- Outputs. Every output-flow port (``o.payload``, ``o.valid``, ``i.ready``) goes into a pipelined
  XOR tree: 4-input groups, a register after each level, down to one registered bit on the
  ``out`` pin. Nothing of the unit can be optimised away, and each harness path is one LUT deep,
  so the harness does not set the Fmax unless the unit's own worst path is a single LUT too.

Area method (``hw.synth``): the unit's own LUT/FF/carry counts come from synthesising the unit
alone, out of context (no I/O buffers: ``synth_ice40``/``synth_ecp5`` do not insert them, only
place-and-route does), and the Fmax from placing and routing the harness. The harness build's
totals are recorded too, with the harness overhead as ``harness total - unit alone`` (an estimate:
Yosys optimises across the flattened boundary, though with every input from a flip-flop there is
nothing constant to fold).
"""

from amaranth.hdl import Cat, ClockSignal, Const, Instance, Module, ResetSignal, Signal, Value
from amaranth.lib import wiring
from amaranth.lib.wiring import In, Out

from helu.hw.units.base import unelaborated

__all__ = ["Harness", "LFSR_TAPS", "io_bits"]

LFSR_TAPS = (32, 22, 2, 1)
"""Taps of the 32-bit maximal-length Fibonacci LFSR (XNOR-free form, non-zero seed)."""

_XOR_FANIN = 4  # one iCE40/ECP5 LUT4 per group


def io_bits(unit: wiring.Component) -> tuple[int, int]:
    """``(input bits, output bits)`` of ``unit``'s ports, from its signature (no clock/reset)."""
    n_in = n_out = 0
    for _path, member, value in unit.signature.flatten(unit):
        if member.flow == In:
            n_in += len(Value.cast(value))
        else:
            n_out += len(Value.cast(value))
    return n_in, n_out


class Harness(wiring.Component):
    """Wraps ``unit`` between an LFSR-fed source and a pipelined XOR-reduce sink.

    Parameters
    ----------
    unit : wiring.Component
        Any component; every port of its signature is driven (input flow) or reduced (output
        flow). Its ``sync`` domain becomes the harness's.
    ready : "lfsr" or "high"
        Where ``o.ready`` (any port named ``ready`` with input flow) comes from: an LFSR bit
        (default: backpressure present, its logic kept) or constant 1.
    instance : str or None
        Wrap the Verilog module of that name instead of elaborating ``unit`` again: the harness
        then instantiates the module a generated file holds (ports named as Amaranth names them,
        ``i__payload``, ``o__valid``, ``threshold``, ``clk``, ``rst``), and synthesis reads that
        file next to the harness's, so the unit measured is that file. ``unit`` still gives the
        ports.

    Members
    -------
    out : Out(1)
        The XOR of every unit output, registered ``depth`` levels after the unit.

    Properties
    ----------
    unit, depth (XOR-tree register levels), source_bits (width of the input shift register),
    sink_bits (unit output bits reduced).
    """

    def __init__(self, unit, *, ready: str = "lfsr", instance: str | None = None):
        if not isinstance(unit, wiring.Component):
            raise TypeError(f"Harness needs an amaranth wiring.Component, not {unit!r}")
        if ready not in ("lfsr", "high"):
            raise ValueError(f"ready must be 'lfsr' or 'high', not {ready!r}")
        n_in, n_out = io_bits(unit)
        if n_out == 0:
            raise ValueError(f"{type(unit).__name__} has no output ports to observe")
        self._unit = unit
        self._ready = ready
        self._instance = instance
        self._sink_bits = n_out
        self._source_bits = sum(
            len(Value.cast(value))
            for path, member, value in unit.signature.flatten(unit)
            if member.flow == In and path[-1] not in ("valid", "ready")
        )
        depth, width = 0, n_out
        while width > 1:
            width = -(-width // _XOR_FANIN)
            depth += 1
        self._depth = max(depth, 1)
        super().__init__({"out": Out(1)})

    @property
    def unit(self):
        return self._unit

    @property
    def depth(self) -> int:
        return self._depth

    @property
    def source_bits(self) -> int:
        return self._source_bits

    @property
    def sink_bits(self) -> int:
        return self._sink_bits

    def elaborate(self, platform):
        m = Module()
        unit = self._unit
        if self._instance is None:
            m.submodules.unit = unit
        else:
            unelaborated(unit)  # only its ports are used: the module comes from a file
            ports = {"i_clk": ClockSignal(), "i_rst": ResetSignal()}
            for path, member, value in unit.signature.flatten(unit):
                kind = "i_" if member.flow == In else "o_"
                ports[kind + "__".join(map(str, path))] = Value.cast(value)
            m.submodules.unit = Instance(self._instance, **ports)

        lfsr = Signal(32, init=1)
        feedback = 0
        for tap in LFSR_TAPS:
            feedback ^= lfsr[tap - 1]
        m.d.sync += lfsr.eq(Cat(feedback, lfsr[:-1]))

        source = Signal(max(self._source_bits, 1), reset_less=True)
        if self._source_bits > 1:
            m.d.sync += source.eq(Cat(lfsr[31], source[:-1]))
        else:
            m.d.sync += source.eq(lfsr[31])

        outputs = []
        offset = 0
        for path, member, value in unit.signature.flatten(unit):
            value = Value.cast(value)
            if member.flow == In:
                if path[-1] == "valid":
                    m.d.comb += value.eq(lfsr[0])
                elif path[-1] == "ready":
                    m.d.comb += value.eq(lfsr[1] if self._ready == "lfsr" else Const(1))
                else:
                    m.d.comb += value.eq(source[offset : offset + len(value)])
                    offset += len(value)
            else:
                outputs.append(value)

        level = Cat(*outputs)
        for _ in range(self._depth):
            groups = [level[k : k + _XOR_FANIN] for k in range(0, len(level), _XOR_FANIN)]
            reduced = Signal(len(groups), reset_less=True)
            m.d.sync += reduced.eq(Cat(*(g.xor() for g in groups)))
            level = reduced
        m.d.comb += self.out.eq(level[0])
        return m
