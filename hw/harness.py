"""Harnesses that wrap a unit and drive every port: one to time it, one to prove it.

:class:`Harness` (timing) measures the Fmax of a unit too wide for the package's pins;
:class:`ProofHarness` (formal) puts the unit under free stimulus with its properties as
assertions, for ``hw.formal``.

Timing
------

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

Proofs
------
:class:`ProofHarness` drives the unit's stream ports with free variables (every value on every
cycle), keeps a shadow FIFO of the outputs the unit owes, and asserts the four properties of
:data:`PROPERTIES`:

``function``
    Every output transfer carries exactly the unit's integer reference
    (``UNITS[name].reference``, that is ``golden.fixed`` / ``golden.intbaselines``) of the input
    transfer it answers, for every input value and, with a threshold port, every ``T`` the port
    can carry (a free constant). The reference runs on ``hw.symbolic.Symbolic`` codes, so it is
    the numpy code itself, evaluated as logic.
``stream``
    Once ``o.valid`` is high it stays high, with ``o.payload`` stable, until ``o.ready``; no
    output without an input; nothing lost (the unit never owes more than ``latency`` transfers,
    and an owed transfer shows within ``latency`` cycles of the output being free), duplicated or
    reordered (the shadow FIFO pairs outputs with inputs in order).
``reset``
    The cycle after ``rst``, ``o.valid`` is low, and nothing accepted before ``rst`` comes out
    (``rst`` also empties the shadow FIFO).
``throughput``
    With ``i.valid`` and ``o.ready`` held high the unit takes an input every cycle and, after
    ``latency`` cycles, gives an output every cycle (asserted; a cover run also shows a trace of
    ``latency + 2`` back-to-back transfers).
"""

from amaranth.asserts import AnyConst, AnySeq
from amaranth.hdl import (
    Assert,
    Cat,
    ClockSignal,
    Const,
    Cover,
    Elaboratable,
    Instance,
    Module,
    Mux,
    ResetSignal,
    Signal,
    Value,
)
from amaranth.lib import wiring
from amaranth.lib.wiring import In, Out

from helu.hw.symbolic import Symbolic, all_of
from helu.hw.units.base import UnitParams, unelaborated

__all__ = ["Harness", "LFSR_TAPS", "PROPERTIES", "ProofHarness", "add_check", "io_bits"]

PROPERTIES = ("function", "stream", "reset", "throughput")
"""The properties every :class:`ProofHarness` asserts (see the module docstring)."""

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


# ---------------------------------------------------------------------------------------------
# The proof harness
# ---------------------------------------------------------------------------------------------


def _fields(layout) -> list[tuple[str, int]]:
    """``(field, lanes)`` of a unit's stream payload (``StructLayout`` of ``ArrayLayout``)."""
    return [(name, f.shape.length) for name, f in layout]


def add_check(m: Module, checks: dict, prop: str, check: str, condition) -> None:
    """Assert ``condition`` as check ``check`` of property ``prop``: a kept signal
    ``prop_<prop>_<check>`` (so the counterexample trace shows it), recorded in ``checks``
    (signal name -> property) for reading a failed proof's trace."""
    name = f"prop_{prop}_{check}"
    ok = Signal(name=name, attrs={"keep": 1})
    m.d.comb += [ok.eq(condition), Assert(ok, name)]
    checks[name] = prop


class ProofHarness(Elaboratable):
    """A unit under free stimulus, with the shadow FIFO and the properties as assertions.

    Parameters
    ----------
    unit : wiring.Component
        The unit, as ``UNITS[name].build(params)`` returns it (ports ``i``, ``o`` and maybe
        ``threshold``; read-only ``latency``).
    reference : callable
        ``UNITS[name].reference``; called once per lane on :class:`Symbolic` codes.
    params : UnitParams
        What the unit was built with (the reference reads it).

    Every input of the unit (``i.valid``, ``i.payload``, ``o.ready``, the harness's ``rst``) is
    free on every cycle; a threshold port is a free constant. Each assertion is a named signal
    ``prop_<property>_<check>`` so that a counterexample names what failed.
    """

    def __init__(self, unit, reference, params: UnitParams):
        self._unit = unit
        self._reference = reference
        self._params = params
        self.checks: dict[str, str] = {}  # signal name -> property

    @property
    def depth(self) -> int:
        """Transfers the unit can owe at once: one per register stage."""
        return self._unit.latency

    def _spec(self) -> dict[tuple[str, int], Value]:
        """The reference's outputs for the current input payload, per (field, lane)."""
        unit = self._unit
        threshold = None
        if "threshold" in unit.signature.members:
            threshold = Symbolic(unit.threshold)
        expected = {}
        for lane in range(unit.lanes):
            inputs = {
                name: Symbolic(unit.i.payload[name][lane])
                for name, _ in _fields(unit.i.payload.shape())
            }
            if threshold is not None:
                inputs["threshold"] = threshold
            outputs = self._reference(self._params, inputs)
            for name, _ in _fields(unit.o.payload.shape()):
                if not isinstance(outputs.get(name), Symbolic):
                    raise TypeError(
                        f"the reference's output {name!r} did not evaluate to logic "
                        f"(got {type(outputs.get(name)).__name__}): it must use numpy operations "
                        f"on its inputs only"
                    )
                expected[name, lane] = outputs[name].value
        return expected

    def _check(self, m: Module, prop: str, check: str, condition):
        add_check(m, self.checks, prop, check, condition)

    def elaborate(self, platform):
        m = Module()
        m.submodules.unit = unit = self._unit
        i, o = unit.i, unit.o
        rst = ResetSignal()
        m.d.comb += [
            i.valid.eq(AnySeq(1)),
            i.payload.eq(AnySeq(len(i.payload.as_value()))),
            o.ready.eq(AnySeq(1)),
        ]
        if "threshold" in unit.signature.members:
            m.d.comb += unit.threshold.eq(AnyConst(unit.threshold.shape()))

        expected = self._spec()
        depth, latency = self.depth, unit.latency
        push = Signal()
        pop = Signal()
        m.d.comb += [push.eq(i.valid & i.ready), pop.eq(o.valid & o.ready)]

        # Shadow FIFO of what the unit owes; rst empties it as it empties the unit.
        count = Signal(range(depth + 2))
        fifo = [
            {key: Signal.like(v, name=f"owed{k}_{key[0]}{key[1]}", reset_less=True)
             for key, v in expected.items()}
            for k in range(depth)
        ]  # fmt: skip
        m.d.sync += count.eq(count + push - pop)
        with m.If(pop):
            for k in range(depth - 1):
                m.d.sync += [fifo[k][key].eq(fifo[k + 1][key]) for key in expected]
        for k in range(depth):
            with m.If(push & (count - pop == k)):
                m.d.sync += [fifo[k][key].eq(expected[key]) for key in expected]

        # History registers (Amaranth 0.5 has no Past).
        past_valid = Signal()
        past_ready = Signal()
        past_rst = Signal(init=1)  # the initial state is the reset state
        past_payload = Signal.like(o.payload.as_value(), reset_less=True)
        m.d.sync += [
            past_valid.eq(o.valid),
            past_ready.eq(o.ready),
            past_payload.eq(o.payload.as_value()),
        ]
        m.d.sync += past_rst.eq(rst)
        # Cycles an owed transfer has waited for o.valid, and of full-rate stimulus.
        idle = Signal(range(latency + 2))
        run = Signal(range(latency + 1))
        streak = Signal(range(latency + 4))
        with m.If((count > 0) & ~o.valid):
            m.d.sync += idle.eq(Mux(idle > latency, idle, idle + 1))
        with m.Else():
            m.d.sync += idle.eq(0)
        with m.If(i.valid & o.ready):
            m.d.sync += run.eq(Mux(run == latency, run, run + 1))
        with m.Else():
            m.d.sync += run.eq(0)
        with m.If(push & pop):
            m.d.sync += streak.eq(Mux(streak == latency + 3, streak, streak + 1))
        with m.Else():
            m.d.sync += streak.eq(0)

        head = fifo[0]
        payload = {key: o.payload[key[0]][key[1]] for key in expected}
        matches = [payload[key] == head[key] for key in expected]
        self._check(m, "function", "payload", ~(o.valid & (count > 0)) | all_of(matches))
        held = past_valid & ~past_ready & ~past_rst
        self._check(m, "stream", "hold", ~held | o.valid)
        self._check(m, "stream", "stable", ~held | (o.payload.as_value() == past_payload))
        self._check(m, "stream", "no_input", ~o.valid | (count > 0))
        self._check(m, "stream", "overflow", count <= depth)
        # An owed transfer not on o.valid now, after `idle` such cycles before: at most
        # latency - 1 cycles in all (for one stage: owed means valid).
        owed_unseen = (count > 0) & ~o.valid
        self._check(m, "stream", "lost", ~owed_unseen | (idle < latency - 1))
        self._check(m, "reset", "clears", ~past_rst | ~o.valid)
        self._check(m, "throughput", "input", ~(i.valid & o.ready) | i.ready)
        self._check(m, "throughput", "output", (run < latency) | o.valid)
        m.d.comb += Cover(streak >= latency + 2)
        return m
