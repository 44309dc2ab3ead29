"""Baseline units (hw/units/baselines.py) in Amaranth's simulator against golden/intbaselines.py."""

import gc
import random

import numpy as np
import pytest
from amaranth.hdl import ClockDomain, Fragment, Module, UnusedElaboratable
from amaranth.sim import Simulator

from helu.golden import intbaselines
from helu.golden.fixed import Format
from helu.hw import packing
from helu.hw.units import COMMON_PARAMS, UnitInfo, UnitParams
from helu.hw.units.baselines import BASELINE_UNITS, IntGelu, LeakyRelu, ReluComparator

# (unit name, params): every baseline, LeakyReLU at several slopes, i-GELU at several formats.
CASES_8 = [
    ("relu-cmp", UnitParams(width=8, lanes=4)),
    ("leaky", UnitParams(width=8, lanes=4, leaky_shift=1)),
    ("leaky", UnitParams(width=8, lanes=4, leaky_shift=3)),
    ("leaky", UnitParams(width=8, lanes=1, leaky_shift=7)),
    ("igelu", UnitParams(width=8, lanes=4, frac=4)),
    ("igelu", UnitParams(width=8, lanes=2, frac=3)),
    ("igelu", UnitParams(width=8, lanes=1, frac=7)),
]
CASES_16 = [
    ("relu-cmp", UnitParams(width=16, lanes=3)),
    ("leaky", UnitParams(width=16, lanes=3, leaky_shift=7)),
    ("igelu", UnitParams(width=16, lanes=3, frac=8)),
    ("igelu", UnitParams(width=16, lanes=1, frac=12)),
]


def case_id(case):
    name, p = case
    extra = {"leaky": f"s{p.leaky_shift}", "igelu": f"f{p.frac}"}.get(name, "")
    return f"{name}-w{p.width}-l{p.lanes}{extra}"


class Bench:
    """Drives a unit's streams: a producer and a consumer testbench, each with its own randomness.

    ``run`` returns the accepted outputs as ``(edge, word)``: ``edge`` counts clock edges from the
    first one (edge 0), the edge at which the output transfer happened.
    """

    def __init__(self, dut):
        self.dut = dut
        self.top = Module()
        self.top.domains.sync = self.cd = ClockDomain()
        self.top.submodules.dut = dut
        layout = dut.i.payload.shape()
        self.in_bits = layout.size

    def words(self, codes: np.ndarray) -> list[int]:
        return packing.pack([(codes.reshape(-1, self.dut.lanes), self.dut.width)])

    def codes(self, words) -> np.ndarray:
        (y,) = packing.unpack(words, [(self.dut.lanes, self.dut.width)])
        return y

    def run(self, words, *, p_valid=1.0, p_ready=1.0, seed=0):
        dut, got = self.dut, []
        rng_p, rng_c = random.Random(seed), random.Random(seed + 1)
        limit = 20 * (len(words) + dut.latency) + 100

        async def producer(ctx):
            for word in words:
                while rng_p.random() >= p_valid:
                    # Idle cycles carry garbage: it must never reach the output.
                    ctx.set(dut.i.payload.as_value(), rng_p.getrandbits(self.in_bits))
                    await ctx.tick()
                ctx.set(dut.i.valid, 1)
                ctx.set(dut.i.payload.as_value(), word)
                await ctx.tick().until(dut.i.ready)
                ctx.set(dut.i.valid, 0)

        async def consumer(ctx):
            edge = 0
            while len(got) < len(words):
                ready = rng_c.random() < p_ready
                ctx.set(dut.o.ready, ready)
                _, _, valid, word = await ctx.tick().sample(dut.o.valid, dut.o.payload.as_value())
                if valid and ready:
                    got.append((edge, word))
                edge += 1
                assert edge < limit, f"only {len(got)} of {len(words)} outputs in {edge} cycles"
            ctx.set(dut.o.ready, 1)
            for _ in range(dut.latency + 2):
                _, _, valid = await ctx.tick().sample(dut.o.valid)
                assert not valid, f"an output beyond the {len(words)} inputs"

        sim = Simulator(self.top)
        sim.add_clock(1e-6)
        sim.add_testbench(producer)
        sim.add_testbench(consumer)
        sim.run()
        return got


def check(expected: np.ndarray, got: np.ndarray, inputs: np.ndarray):
    """Assert that a unit's outputs equal the reference, naming the first wrong element."""
    expected, got = np.asarray(expected), np.asarray(got)
    assert got.shape == expected.shape, f"got {got.shape} outputs, expected {expected.shape}"
    wrong = np.argwhere(got != expected)
    if wrong.size:
        t, lane = wrong[0]
        raise AssertionError(
            f"{len(wrong)} wrong elements; first: transfer {t} lane {lane}: "
            f"z={inputs[t, lane]} expected y={expected[t, lane]} got {got[t, lane]}"
        )


def run_case(name, params, codes, **knobs):
    info = BASELINE_UNITS[name]
    bench = Bench(info.build(params))
    codes = codes.reshape(-1, params.lanes)
    got = bench.run(bench.words(codes), **knobs)
    check(info.reference(params, {"z": codes})["y"], bench.codes([w for _, w in got]), codes)
    return bench, got


def every_code(width: int, lanes: int) -> np.ndarray:
    fmt = Format(width, 0)
    codes = np.arange(fmt.min_code, fmt.max_code + 1, dtype=np.int64)
    return np.resize(codes, -(-codes.size // lanes) * lanes)  # whole transfers, wraps around


@pytest.mark.parametrize("case", CASES_8, ids=case_id)
def test_every_8bit_code_at_full_rate(case):
    name, params = case
    bench, got = run_case(name, params, every_code(8, params.lanes))
    # Ready held high: one output per cycle, the first `latency` edges after the first input.
    assert [edge for edge, _ in got] == [bench.dut.latency + k for k in range(len(got))]


@pytest.mark.parametrize("case", CASES_16, ids=case_id)
def test_random_16bit_codes_with_random_handshakes(case):
    name, params = case
    rng = np.random.default_rng(16)
    codes = rng.integers(-(2**15), 2**15, size=(300, params.lanes))
    codes[:4] = [[-(2**15)], [0], [1], [2**15 - 1]]  # the corners, broadcast over the lanes
    run_case(name, params, codes, p_valid=0.7, p_ready=0.6, seed=3)


@pytest.mark.parametrize("p_valid,p_ready", [(0.5, 1.0), (1.0, 0.3), (0.3, 0.3), (0.9, 0.9)])
@pytest.mark.parametrize("case", [CASES_8[0], CASES_8[2], CASES_8[4]], ids=case_id)
def test_backpressure_patterns(case, p_valid, p_ready):
    name, params = case
    for seed in range(3):
        run_case(
            name, params, every_code(8, params.lanes), p_valid=p_valid, p_ready=p_ready, seed=seed
        )


@pytest.mark.parametrize("case", [CASES_8[0], CASES_8[2], CASES_8[4]], ids=case_id)
@pytest.mark.parametrize("ready_during_stream", [True, False])
def test_reset_in_mid_stream(case, ready_during_stream):
    # Stream A is cut by a reset (held outputs or in-flight ones are dropped); what came out
    # before is a prefix of A's reference; after the reset nothing is pending and stream B
    # comes out whole and in order.
    name, params = case
    info = BASELINE_UNITS[name]
    bench = Bench(info.build(params))
    dut = bench.dut
    rng = np.random.default_rng(7)
    a = rng.integers(-128, 128, size=(2 * dut.latency + 3, params.lanes))
    b = rng.integers(-128, 128, size=(2 * dut.latency + 3, params.lanes))
    out_a, out_b, after_reset = [], [], []
    words_a, before = bench.words(a), dut.latency + 2

    async def testbench(ctx):
        async def step(word, out):
            ctx.set(dut.i.valid, word is not None)
            if word is not None:
                ctx.set(dut.i.payload.as_value(), word)
            _, _, valid, ready, payload = await ctx.tick().sample(
                dut.o.valid, dut.o.ready, dut.o.payload.as_value()
            )
            if valid and ready:
                out.append(payload)

        ctx.set(dut.o.ready, ready_during_stream)
        for word in words_a[:before]:
            await step(word, out_a)
        ctx.set(dut.o.ready, 0)
        ctx.set(bench.cd.rst, 1)
        await step(words_a[before], out_a)
        ctx.set(bench.cd.rst, 0)
        ctx.set(dut.i.valid, 0)
        after_reset.append(ctx.get(dut.o.valid))
        ctx.set(dut.o.ready, 1)
        for word in bench.words(b) + [None] * (dut.latency + 2):
            await step(word, out_b)

    sim = Simulator(bench.top)
    sim.add_clock(1e-6)
    sim.add_testbench(testbench)
    sim.run()
    assert after_reset == [0], "output still valid after reset"
    # With ready high the first `before - latency` of A came out; with ready low none did.
    assert len(out_a) == (before - dut.latency if ready_during_stream else 0)
    check(info.reference(params, {"z": a})["y"][: len(out_a)], bench.codes(out_a), a)
    check(info.reference(params, {"z": b})["y"], bench.codes(out_b), b)


def test_checker_catches_a_wrong_reference():
    name, params = CASES_8[0]
    info = BASELINE_UNITS[name]
    bench = Bench(info.build(params))
    codes = every_code(8, params.lanes).reshape(-1, params.lanes)
    got = bench.codes([w for _, w in bench.run(bench.words(codes))])
    right = info.reference(params, {"z": codes})["y"]
    check(right, got, codes)
    wrong = right.copy()
    wrong[37, 2] += 1
    with pytest.raises(AssertionError, match="^1 wrong elements; first: transfer 37 lane 2: "):
        check(wrong, got, codes)
    # Another baseline's reference is wrong for this unit too.
    leaky = BASELINE_UNITS["leaky"].reference(UnitParams(leaky_shift=1), {"z": codes})["y"]
    with pytest.raises(AssertionError, match="wrong elements"):
        check(leaky, got, codes)
    with pytest.raises(AssertionError, match="outputs, expected"):
        check(right, got[:-1], codes)


@pytest.mark.parametrize("case", [CASES_8[0], CASES_8[2], CASES_8[4]], ids=case_id)
def test_output_valid_does_not_follow_ready(case):
    name, params = case
    dut = BASELINE_UNITS[name].build(params)
    seen = []

    async def testbench(ctx):
        ctx.set(dut.i.valid, 1)
        ctx.set(dut.o.ready, 0)
        await ctx.tick().repeat(dut.latency + 1)
        for ready in (0, 1, 0):
            ctx.set(dut.o.ready, ready)
            seen.append((ctx.get(dut.o.valid), ctx.get(dut.i.ready)))

    sim = Simulator(dut)
    sim.add_clock(1e-6)
    sim.add_testbench(testbench)
    sim.run()
    assert seen == [(1, 0), (1, 1), (1, 0)]


def test_igelu_unit_accuracy_equals_golden():
    # The unit's outputs for every code of Q8.4 carry the golden model's error figures.
    params = UnitParams(width=8, lanes=4, frac=4)
    fmt = Format(params.width, params.frac)
    bench = Bench(BASELINE_UNITS["igelu"].build(params))
    codes = every_code(8, params.lanes).reshape(-1, params.lanes)
    got = bench.codes([w for _, w in bench.run(bench.words(codes))]).reshape(-1)
    err = intbaselines.igelu_error(fmt, got)
    assert err == intbaselines.igelu_error(fmt)
    assert err.int_float_max <= bench.dut.constants.error_bound


def test_registry():
    for name, info in BASELINE_UNITS.items():
        assert isinstance(info, UnitInfo), name
        assert set(info.uses) <= set(COMMON_PARAMS), name
        unit = info.build(UnitParams(width=8, lanes=2))
        assert (unit.width, unit.lanes, unit.threshold_const) == (8, 2, None), name
        assert unit.latency >= 1, name
        assert info.description, name
        Fragment.get(unit, None)  # elaborates
    assert set(BASELINE_UNITS) == {"relu-cmp", "leaky", "igelu"}
    igelu = BASELINE_UNITS["igelu"].build(UnitParams(frac=5))
    leaky = BASELINE_UNITS["leaky"].build(UnitParams(leaky_shift=3))
    assert (igelu.frac, leaky.shift) == (5, 3)
    Fragment.get(igelu, None)
    Fragment.get(leaky, None)


def test_registry_merges_into_units():
    from helu.hw import units

    for name, info in BASELINE_UNITS.items():
        assert units.UNITS[name] is info


def test_properties_are_read_only():
    unit = IntGelu(8, 1, frac=4)
    Fragment.get(unit, None)
    assert unit.latency == 6
    for attribute in ("latency", "width", "lanes", "frac"):
        with pytest.raises(AttributeError):
            setattr(unit, attribute, 3)


@pytest.mark.parametrize(
    "build,error,message",
    [
        (lambda: ReluComparator(1), ValueError, "Width must be between 2 and 32 bits, not 1"),
        (lambda: ReluComparator(8.0), TypeError, "Width must be an integer, not 8.0"),
        (lambda: ReluComparator(8, 0), ValueError, "Lane count must be a positive integer, not 0"),
        (
            lambda: LeakyRelu(8, 1, shift=0),
            ValueError,
            "Leaky shift must be a positive integer, not 0",
        ),
        (lambda: LeakyRelu(8, 1, shift="7"), TypeError, "Leaky shift must be an integer, not '7'"),
        (lambda: IntGelu(40), ValueError, "Width must be between 2 and 32 bits, not 40"),
        (lambda: IntGelu(8, frac=1.5), TypeError, "Fractional bits must be an integer, not 1.5"),
        (
            lambda: IntGelu(32, frac=8),
            ValueError,
            "i-GELU in Q32.8 needs 84-bit intermediates, more than 62; "
            "use a narrower width or fewer fractional bits",
        ),
        (lambda: IntGelu(8, -1), ValueError, "Lane count must be a positive integer, not -1"),
    ],
)
@pytest.mark.filterwarnings(f"ignore::{UnusedElaboratable.__module__}.UnusedElaboratable")
def test_parameters_wrong(build, error, message):
    with pytest.raises(error, match=f"^{message}$") as raised:
        build()
    # The half-built component dies with the traceback: let it go while the filter is on.
    del raised
    gc.collect()
