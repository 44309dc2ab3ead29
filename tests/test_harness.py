"""The timing harness (hw/harness.py), checked in Amaranth's simulator against Python models."""

import gc

import pytest
from amaranth.hdl import Cat, Fragment, Module, UnusedElaboratable, Value
from amaranth.lib import stream, wiring
from amaranth.lib.wiring import In, Out
from amaranth.sim import Simulator

from helu.hw.harness import LFSR_TAPS, Harness, io_bits


class Toy(wiring.Component):
    """A one-stage stream unit of our own: ``o.payload = i.payload ^ key``, registered."""

    def __init__(self, width=8, key=0x5A, threshold=False):
        self._key = key
        members = {
            "i": In(stream.Signature(width)),
            "o": Out(stream.Signature(width)),
        }
        if threshold:
            members["threshold"] = In(4)
        super().__init__(members)

    def elaborate(self, platform):
        m = Module()
        m.d.comb += self.i.ready.eq(~self.o.valid | self.o.ready)
        with m.If(self.i.ready):
            m.d.sync += [
                self.o.valid.eq(self.i.valid),
                self.o.payload.eq(self.i.payload ^ self._key),
            ]
        return m


class NoOutputs(wiring.Component):
    a: In(4)

    def elaborate(self, platform):
        return Module()


def lfsr_model(state: int, steps: int) -> list[int]:
    """The Fibonacci LFSR the harness documents: shift left, feedback = XOR of the taps."""
    states = []
    for _ in range(steps):
        feedback = 0
        for tap in LFSR_TAPS:
            feedback ^= (state >> (tap - 1)) & 1
        state = ((state << 1) | feedback) & 0xFFFFFFFF
        states.append(state)
    return states


def xor_bits(word: int) -> int:
    return bin(word).count("1") & 1


def run_harness(harness, cycles: int):
    """Simulate; per cycle record (LFSR state, XOR of the unit's outputs, out pin, unit inputs)."""
    unit = harness.unit
    outputs = unit_outputs(unit)
    trace = []

    async def bench(ctx):
        for _ in range(cycles):
            await ctx.tick()
            trace.append(
                {
                    "out_xor": xor_bits(ctx.get(outputs)),
                    "out": ctx.get(harness.out),
                    "valid": ctx.get(unit.i.valid),
                    "ready": ctx.get(unit.o.ready),
                    "payload": ctx.get(unit.i.payload),
                }
            )

    sim = Simulator(harness)
    sim.add_clock(1e-6)
    sim.add_testbench(bench)
    sim.run()
    return trace


def unit_outputs(unit):
    return Cat(
        *(
            Value.cast(value)
            for _path, member, value in unit.signature.flatten(unit)
            if member.flow == Out
        )
    )


def check_reduction(trace, depth: int):
    """``out`` at cycle t + depth must be the XOR of the unit's outputs at cycle t."""
    for t in range(len(trace) - depth):
        assert trace[t + depth]["out"] == trace[t]["out_xor"], (
            f"out at cycle {t + depth} is {trace[t + depth]['out']}, XOR of the unit's outputs "
            f"{depth} cycles earlier is {trace[t]['out_xor']}"
        )


def test_io_bits_counts_the_signature():
    toys = [Toy(width=8), Toy(width=8, threshold=True)]
    # in: i.payload (8), i.valid, o.ready; out: o.payload (8), o.valid, i.ready
    assert io_bits(toys[0]) == (8 + 1 + 1, 8 + 1 + 1)
    assert io_bits(toys[1]) == (8 + 1 + 1 + 4, 8 + 1 + 1)
    for toy in toys:
        Fragment.get(toy, None)


def test_harness_properties_follow_the_unit():
    toy = Toy(width=8, threshold=True)
    harness = Harness(toy)
    n_in, n_out = io_bits(toy)
    assert harness.source_bits == n_in - 2  # valid and ready come from the LFSR
    assert harness.sink_bits == n_out
    depth, width = 0, n_out
    while width > 1:
        width = -(-width // 4)
        depth += 1
    assert harness.depth == depth
    assert list(harness.signature.members) == ["out"]
    Fragment.get(harness, None)  # elaborates (and so uses) the harness and the unit


def test_harness_reduces_every_output():
    harness = Harness(Toy(width=8))
    trace = run_harness(harness, 80)
    assert {t["out_xor"] for t in trace} == {0, 1}, "the unit's outputs never toggled"
    check_reduction(trace, harness.depth)


def test_reduction_check_catches_a_wrong_delay():
    harness = Harness(Toy(width=8))
    trace = run_harness(harness, 80)
    with pytest.raises(AssertionError, match="XOR of the unit's outputs"):
        check_reduction(trace, harness.depth + 1)


def test_harness_drives_inputs_from_the_lfsr():
    harness = Harness(Toy(width=8))
    trace = run_harness(harness, 64)
    states = lfsr_model(1, 64)
    # after tick n the LFSR holds states[n-1]; valid = bit 0, ready = bit 1 of the state
    for n, (rec, state) in enumerate(zip(trace, states, strict=True)):
        assert rec["valid"] == state & 1, f"i.valid wrong at cycle {n}"
        assert rec["ready"] == (state >> 1) & 1, f"o.ready wrong at cycle {n}"
    # the shift register takes LFSR bit 31 each cycle: 8 payload bits are the last 8 of them
    for n in range(8, 64):
        expected = 0
        for k in range(8):
            expected |= ((states[n - 1 - k] >> 31) & 1) << k
        assert trace[n]["payload"] == expected, f"i.payload wrong at cycle {n}"
    assert len({rec["payload"] for rec in trace}) > 8, "the source hardly changes"


def test_lfsr_model_is_checked():
    # a wrong model (one tap off) must disagree with the hardware within 64 cycles
    harness = Harness(Toy(width=8))
    trace = run_harness(harness, 64)
    good = lfsr_model(1, 64)
    bad_state, bad = 1, []
    for _ in range(64):
        fb = ((bad_state >> 31) ^ (bad_state >> 20) ^ (bad_state >> 1) ^ bad_state) & 1
        bad_state = ((bad_state << 1) | fb) & 0xFFFFFFFF
        bad.append(bad_state)
    assert [r["valid"] for r in trace] == [s & 1 for s in good]
    assert [r["valid"] for r in trace] != [s & 1 for s in bad]


def test_harness_ready_high():
    harness = Harness(Toy(width=8), ready="high")
    trace = run_harness(harness, 16)
    assert all(rec["ready"] == 1 for rec in trace)
    check_reduction(trace, harness.depth)


def test_harness_drives_a_threshold_port():
    toy = Toy(width=8, threshold=True)
    harness = Harness(toy)
    seen = []

    async def bench(ctx):
        for _ in range(64):
            await ctx.tick()
            seen.append(ctx.get(toy.threshold))

    sim = Simulator(harness)
    sim.add_clock(1e-6)
    sim.add_testbench(bench)
    sim.run()
    assert len(set(seen)) > 1, "the threshold port is not driven"


def test_harness_wraps_a_registered_unit():
    from helu.hw.units import UNITS, UnitParams

    unit = UNITS["forward"].build(UnitParams(width=8, lanes=4))
    harness = Harness(unit)
    assert harness.source_bits == 8 * 4
    trace = run_harness(harness, 40)
    check_reduction(trace, harness.depth)


@pytest.mark.filterwarnings(f"ignore::{UnusedElaboratable.__module__}.UnusedElaboratable")
def test_harness_wrong():
    with pytest.raises(TypeError, match="Harness needs an amaranth wiring.Component, not 3"):
        Harness(3)
    with pytest.raises(ValueError, match="ready must be 'lfsr' or 'high', not 'low'"):
        Harness(Toy(), ready="low")
    with pytest.raises(ValueError, match="NoOutputs has no output ports to observe"):
        Harness(NoOutputs())
    gc.collect()  # the half-built objects warn "never used" when collected: do it under the filter


def test_harness_wraps_a_generated_module_without_regenerating_it(tmp_path):
    """With ``instance``, the harness Verilog instantiates the named module and holds no copy."""
    from amaranth.back import verilog as amaranth_verilog

    from helu.hw.units import UNITS, UnitParams

    unit = UNITS["forward-train"].build(UnitParams(width=8, lanes=2, threshold_port=True))
    text = amaranth_verilog.convert(
        Harness(unit, instance="helu_forward_train_w8_l2_tport"), name="h", emit_src=False
    )
    assert "helu_forward_train_w8_l2_tport unit (" in text
    modules = [line for line in text.splitlines() if line.startswith("module ")]
    assert len(modules) == 1 and modules[0].startswith("module h("), modules  # harness only
    for port in (".i__payload(", ".o__valid(", ".threshold(", ".clk(", ".rst("):
        assert port in text, port
