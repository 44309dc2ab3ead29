"""Stream helpers for the Amaranth-simulator tests of the units: producer, consumer, checker.

Payloads cross the simulator as packed integers built and read by ``hw.packing``, with the field
list taken from the unit's own payload layout (``hw.verilog.payload_fields``, what the sidecar
records), so these tests also pin the lane packing the Verilog benches rely on.
"""

import random

import numpy as np
from amaranth.hdl import ClockDomain, Module
from amaranth.sim import Simulator

from helu.hw import packing
from helu.hw.verilog import payload_fields

__all__ = [
    "stream_put",
    "stream_get",
    "load_words",
    "pack_inputs",
    "unpack_outputs",
    "simulate",
    "simulate_full_rate",
    "simulate_reset",
    "check_outputs",
]

PERIOD = 1e-6


async def stream_put(ctx, stream, word: int):
    """Offer ``word`` on ``stream`` until the consumer takes it (one transfer)."""
    ctx.set(stream.valid, 1)
    ctx.set(stream.payload.as_value(), word)
    await ctx.tick().until(stream.ready)
    ctx.set(stream.valid, 0)


async def stream_get(ctx, stream) -> int:
    """Accept one transfer from ``stream``; returns its packed payload."""
    ctx.set(stream.ready, 1)
    (word,) = await ctx.tick().sample(stream.payload.as_value()).until(stream.valid)
    ctx.set(stream.ready, 0)
    return word


async def load_words(ctx, port, words):
    """Write ``(addr, data)`` pairs through an engine's ``load`` stream, one transfer each."""
    for addr, word in words:
        ctx.set(port.payload.addr, addr)
        ctx.set(port.payload.data, word)
        ctx.set(port.valid, 1)
        await ctx.tick().until(port.ready)
    ctx.set(port.valid, 0)


def _spec(interface):
    fields = payload_fields(interface.payload.shape())
    return fields, [(f["lanes"], f["width"]) for f in fields], [f["signed"] for f in fields]


def pack_inputs(dut, inputs: dict) -> list[int]:
    """``{field: (N, lanes) codes}`` to ``N`` packed input words, in the unit's field order."""
    fields, _, _ = _spec(dut.i)
    return packing.pack([(inputs[f["name"]], f["width"]) for f in fields])


def unpack_outputs(dut, words) -> dict:
    """Packed output words to ``{field: (N, lanes) codes}``."""
    fields, shapes, signed = _spec(dut.o)
    arrays = packing.unpack(words, shapes, signed=signed)
    return {f["name"]: a for f, a in zip(fields, arrays, strict=True)}


def _run(sim, cycles: int, status):
    """Run ``sim`` until its testbenches finish; fail after about ``cycles`` clock cycles (a
    handshake that never completes must fail the test, not hang it)."""
    for _ in range(cycles * 8):  # Simulator.advance() takes a few steps per cycle
        if not sim.advance():
            return
    raise AssertionError(f"{status()} within {cycles} cycles: the stream stalled")


def _set_threshold(ctx, dut, threshold):
    if threshold is not None:
        ctx.set(dut.threshold, threshold)


def simulate(dut, words, *, valid_prob=1.0, ready_prob=1.0, seed=0, threshold=None) -> list[int]:
    """Stream ``words`` through ``dut``: a producer idles with probability ``1 - valid_prob``
    before each transfer, a consumer stalls with probability ``1 - ready_prob``; returns what
    the consumer received, in order. The run ends when the consumer has as many words as were
    sent, so a lost transfer hangs the producer and shows up as a short result (deadline)."""
    got = []
    sent = len(words)
    deadline = (sent + 10) * 20 * (1 + dut.latency)  # cycles; generous for any stall pattern

    async def producer(ctx):
        rng = random.Random(seed)
        _set_threshold(ctx, dut, threshold)
        for word in words:
            while rng.random() >= valid_prob:
                await ctx.tick()
            await stream_put(ctx, dut.i, word)

    async def consumer(ctx):
        rng = random.Random(seed + 1)
        for _ in range(sent):
            while rng.random() >= ready_prob:
                await ctx.tick()
            got.append(await stream_get(ctx, dut.o))
        # Nothing extra may follow: watch a few cycles with ready high.
        ctx.set(dut.o.ready, 1)
        for _ in range(dut.latency + 2):
            _, _, valid = await ctx.tick().sample(dut.o.valid)
            if valid:
                got.append(None)

    sim = Simulator(dut)
    sim.add_clock(PERIOD)
    sim.add_testbench(producer, background=True)
    sim.add_testbench(consumer)
    _run(sim, deadline, lambda: f"{len(got)} of {sent} transfers came out")
    return got


def simulate_full_rate(dut, words, *, threshold=None) -> tuple[list[int], list[int]]:
    """Drive one word per cycle with ``o.ready`` high; returns ``(outputs, cycles)``.

    ``cycles[k]`` counts the clock edges from the edge that accepted word 0 to the edge at which
    output ``k`` was taken, so at II = 1 it is ``k + latency``. Raises if ``i.ready`` ever drops.
    """
    outputs, cycles = [], []

    async def testbench(ctx):
        _set_threshold(ctx, dut, threshold)
        ctx.set(dut.o.ready, 1)
        ctx.set(dut.i.valid, 1)
        edge = 0
        for k in range(len(words) + dut.latency + 2):
            if k < len(words):
                ctx.set(dut.i.payload.as_value(), words[k])
            else:
                ctx.set(dut.i.valid, 0)
            _, _, ready, valid, word = await ctx.tick().sample(
                dut.i.ready, dut.o.valid, dut.o.payload.as_value()
            )
            if k < len(words) and not ready:
                raise AssertionError(f"i.ready low at cycle {k} with o.ready high")
            if valid:
                outputs.append(word)
                cycles.append(edge)
            edge += 1

    sim = Simulator(dut)
    sim.add_clock(PERIOD)
    sim.add_testbench(testbench)
    sim.run()
    return outputs, cycles


def simulate_reset(dut, before, after, *, threshold=None) -> tuple[list[bool], list[int]]:
    """Reset in the middle of a stream; returns ``(o.valid seen after the reset, outputs)``.

    ``before[0]`` is taken into the output register and held there (``o.ready`` low) while
    ``before[1]`` waits at the input; then ``rst`` is asserted for one cycle (the producer drops
    ``valid`` with it). The first list holds ``o.valid`` for the ``latency + 2`` cycles after the
    reset with ``o.ready`` high and nothing offered; it must be all ``False``. Then ``after`` is
    streamed and the outputs returned.
    """
    m = Module()
    m.domains.sync = cd = ClockDomain()
    m.submodules.dut = dut
    seen, got = [], []

    async def testbench(ctx):
        _set_threshold(ctx, dut, threshold)
        await stream_put(ctx, dut.i, before[0])
        ctx.set(dut.i.valid, 1)
        ctx.set(dut.i.payload.as_value(), before[1])
        await ctx.tick().repeat(dut.latency + 1)
        if not ctx.get(dut.o.valid):
            raise AssertionError("the output was not pending when the reset came")
        ctx.set(cd.rst, 1)
        ctx.set(dut.i.valid, 0)
        await ctx.tick()
        ctx.set(cd.rst, 0)
        ctx.set(dut.o.ready, 1)
        for _ in range(dut.latency + 2):
            _, _, valid = await ctx.tick().sample(dut.o.valid)
            seen.append(bool(valid))
        ctx.set(dut.o.ready, 0)
        for word in after:
            await stream_put(ctx, dut.i, word)
            got.append(await stream_get(ctx, dut.o))

    sim = Simulator(m)
    sim.add_clock(PERIOD, domain="sync")
    sim.add_testbench(testbench)
    _run(sim, 10 * (len(after) + 10) * (1 + dut.latency), lambda: f"{len(got)} outputs")
    return seen, got


def check_outputs(got: dict, expected: dict, inputs: dict | None = None):
    """Assert ``got == expected`` exactly, field by field; the message names the first wrong
    element (field, transfer, lane, inputs, expected, got)."""
    if set(got) != set(expected):
        raise AssertionError(f"output fields {sorted(got)} differ from {sorted(expected)}")
    for name, want in expected.items():
        want = np.asarray(want, dtype=np.int64)
        have = np.asarray(got[name], dtype=np.int64)
        if have.shape != want.shape:
            raise AssertionError(f"field {name}: got shape {have.shape}, expected {want.shape}")
        bad = np.argwhere(have != want)
        if bad.size:
            t, n = (int(v) for v in bad[0])
            where = {k: int(np.asarray(v)[t, n]) for k, v in (inputs or {}).items()
                     if np.ndim(v) == 2}  # fmt: skip
            raise AssertionError(
                f"field {name}: {len(bad)} wrong elements; first at transfer {t}, lane {n}: "
                f"inputs {where}, expected {want[t, n]}, got {have[t, n]}"
            )
