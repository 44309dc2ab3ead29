# amaranth: UnusedElaboratable=no
"""The MLP engine (hw/net/mlp.py) in Amaranth's simulator, against golden.intmodel.infer."""

import numpy as np
import pytest
from amaranth.hdl import ClockDomain, Module
from amaranth.sim import Simulator
from nets import random_inputs, random_model
from streams import load_words

from helu.golden import fixed, intmodel
from helu.golden.layers import Conv2d, Dense
from helu.hw.net.mlp import MLP, image, reference


def run(dut, x, *, idle=0.0, stall=0.0, seed=0, loads=(), reset_after=None, timeout=None):
    """Stream samples ``x`` through ``dut``; returns ``(logits, cls, cycles, out_cycles)``.

    ``loads``: ``(addr, data)`` words written through the load port first. ``reset_after``:
    pulse ``rst`` once that many input transfers were accepted, then stream ``x`` again from the
    start (results before the reset are discarded, none may appear after it).
    """
    lanes = dut.lanes
    # The engine's input layout: each transfer's lanes from the flat sample, 0 in padding lanes.
    padded = np.concatenate([x, np.zeros((len(x), 1), dtype=np.int64)], axis=1)
    transfers = padded[:, dut.input_index].reshape(-1, lanes)
    rng = np.random.default_rng(seed)
    got, times = [], []
    state = {"cycle": 0}
    limit = timeout or (x.shape[0] + 2) * dut.cycles_per_sample * (4 if idle or stall else 2) + 200

    async def source(ctx):
        await load_words(ctx, dut.load, loads)
        sent, passes = 0, [transfers]
        if reset_after is not None:
            passes = [transfers[:reset_after], transfers]
        for p, words in enumerate(passes):
            for row in words:
                while idle and rng.random() < idle:
                    ctx.set(dut.i.valid, 0)
                    await ctx.tick()
                for k, v in enumerate(row):
                    ctx.set(dut.i.payload.x[k], int(v))
                ctx.set(dut.i.valid, 1)
                await ctx.tick().until(dut.i.ready)
                sent += 1
            ctx.set(dut.i.valid, 0)
            if p == 0 and reset_after is not None:
                await ctx.tick()
                ctx.set(cd.rst, 1)
                await ctx.tick()
                ctx.set(cd.rst, 0)
                got.clear()
                times.clear()

    async def sink(ctx):
        while len(got) < x.shape[0] and state["cycle"] < limit:
            ready = not (stall and rng.random() < stall)
            ctx.set(dut.o.ready, ready)
            _, _, valid, payload, rst = await ctx.tick().sample(dut.o.valid, dut.o.payload, cd.rst)
            state["cycle"] += 1
            if ready and valid and not rst:
                got.append(([int(v) for v in payload.logits], int(payload.cls)))
                times.append(state["cycle"])

    m = Module()
    m.domains.sync = cd = ClockDomain()
    m.submodules.dut = dut
    sim = Simulator(m)
    sim.add_clock(1e-6, domain="sync")
    sim.add_testbench(source, background=True)
    sim.add_testbench(sink)
    sim.run()
    logits = np.array([g[0] for g in got], dtype=np.int64).reshape(-1, dut.model.sizes[-1])
    cls = np.array([g[1] for g in got], dtype=np.int64)
    return logits, cls, state["cycle"], times


def check(dut, x, model=None, **kw):
    """Run ``x`` through ``dut``; every logit and class must equal the reference's (of ``model``,
    default the one ``dut`` was built from)."""
    logits, cls, _, times = run(dut, x, **kw)
    want_logits, want_cls = reference(model or dut.model, x, dut.activation)
    assert logits.shape == want_logits.shape
    np.testing.assert_array_equal(logits, want_logits)
    np.testing.assert_array_equal(cls, want_cls)
    return want_logits, times


SMALL = [
    # (sizes, lanes): chunks of one (the next layer reads right after the drain), ragged chunks
    # (padding lanes), a single layer, more classes than lanes.
    ([16, 8, 6, 4], 4),
    ([10, 7, 5], 3),
    ([12, 4], 4),
    ([8, 3, 9, 10], 2),
    ([6, 5, 3], 1),
]


@pytest.mark.parametrize(("sizes", "lanes"), SMALL, ids=[f"{s}-P{p}" for s, p in SMALL])
def test_mlp_matches_golden(sizes, lanes):
    model = random_model(sum(sizes) + lanes, sizes)
    x = random_inputs(1, model, 12)
    dut = MLP(model, lanes)
    check(dut, x)


def test_mlp_exercises_saturation_and_ties():
    """The random models reach both int8 bounds and equal logits (first index wins)."""
    model = random_model(7, [16, 8, 6, 4])
    x = random_inputs(3, model, 40)
    # Force ties: a last layer with two identical rows.
    model.weights[-1][1] = model.weights[-1][0]
    model.biases[-1][1] = model.biases[-1][0]
    model.shifts[0] -= 2  # a finer scale: layer 0 saturates at both ends
    q = intmodel.layer(model, 0, x)
    assert (q == 127).any() and (q == -128).any()
    dut = MLP(model, 4)
    want_logits, _ = check(dut, x)
    assert (want_logits[:, 0] == want_logits[:, 1]).all()


def test_mlp_full_rate_cycles():
    """Back-to-back samples take exactly ``cycles_per_sample``; the first one ``latency``."""
    model = random_model(3, [16, 8, 6, 4])
    dut = MLP(model, 4)
    x = random_inputs(2, model, 6)
    _, _, _, times = run(dut, x)
    gaps = np.diff(times)
    assert (gaps == dut.cycles_per_sample).all(), gaps
    assert times[0] == dut.input_transfers + dut.latency


def test_mlp_backpressure_and_gaps():
    model = random_model(5, [16, 8, 6, 4])
    dut = MLP(model, 4)
    x = random_inputs(4, model, 10)
    check(dut, x, idle=0.5, stall=0.7, seed=3)


def test_mlp_reset_mid_stream():
    model = random_model(6, [16, 8, 6, 4])
    dut = MLP(model, 4)
    x = random_inputs(5, model, 5)
    check(dut, x, reset_after=9, stall=0.3, seed=1)


def test_mlp_load_port_replaces_the_model():
    """Weights and biases of another model written through ``load`` give that model's results."""
    old = random_model(8, [16, 8, 6, 4])
    new = random_model(9, [16, 8, 6, 4])
    new.shifts = list(old.shifts)  # shifts are built in; weights and biases are loadable
    dut = MLP(old, 4)
    x = random_inputs(6, old, 6)
    want_logits, _ = check(dut, x, new, loads=image(new, 4).words())
    assert not np.array_equal(want_logits, intmodel.infer(old, x)[0])


def test_mlp_igelu_build_matches_its_reference():
    """The i-GELU build (cost baseline) computes the same layers with i-GELU between them."""
    model = random_model(11, [16, 8, 6, 4])
    x = random_inputs(7, model, 8)
    dut = MLP(model, 4, activation="igelu")
    want_logits, times = check(dut, x)
    assert not np.array_equal(want_logits, intmodel.infer(model, x)[0])
    assert (np.diff(times) == dut.cycles_per_sample).all()


def test_image_layout():
    model = random_model(2, [5, 3, 2])
    img = image(model, 4)
    assert len(img.weights) == 3 * 2 + 2 * 1 and len(img.biases) == 5
    # Neuron 0, chunk 1 of layer 0: input 4 in lane 0, lanes 1..3 padding (0).
    word = img.weights[1]
    assert fixed.to_signed(word & 0xFF, 8) == model.weights[0][0, 4] and word >> 8 == 0
    assert fixed.to_signed(img.biases[3], 32) == model.biases[1][0]


def test_mlp_parameters_wrong():
    model = random_model(1, [4, 2])
    with pytest.raises(TypeError, match="IntModel"):
        MLP("model")
    with pytest.raises(ValueError, match="Lane count must be a positive integer, not 0"):
        MLP(model, 0)
    with pytest.raises(ValueError, match="Activation must be one of helu, igelu, not 'gelu'"):
        MLP(model, 2, activation="gelu")
    with pytest.raises(ValueError, match=r"input codes \[0, 200\] must be an ordered range"):
        intmodel.InputFormat(0, 0, 200)


# Convolutions ---------------------------------------------------------------------------------


def random_net(seed: int, ops, *, input_max: int = 16) -> intmodel.IntModel:
    """A seeded random integer network over ``ops`` (shifts keep most codes inside int8)."""
    rng = np.random.default_rng(seed)
    weights, biases, shifts = [], [], []
    in_max = input_max
    for op in ops:
        weights.append(rng.integers(-128, 128, size=(op.out_channels, op.fan_in)))
        spread = max(int(np.sqrt(op.fan_in)) * in_max * 64, 1)
        shifts.append(max(int(np.log2(spread)) - 5, 0))
        biases.append(rng.integers(-spread, spread + 1, size=op.out_channels))
        in_max = 127
    fmt = intmodel.InputFormat(0, 0, input_max)
    return intmodel.IntModel(weights, biases, shifts, -2, fmt, list(ops))


CONV = [
    # (ops, lanes): same-size padding into a dense layer; stride 2 and a valid conv in a chain
    # with channels that are not multiples of P; a 1x1 conv whose taps * C_in < P (bubbles for
    # the biases); P = 1.
    ([Conv2d((4, 4, 1), 4, 3, 1, 1), Dense(64, 5)], 4),
    ([Conv2d((5, 5, 3), 6, 3, 2, 1), Conv2d((3, 3, 6), 5, 3, 1, 0), Dense(5, 3)], 4),
    ([Conv2d((4, 4, 2), 3, 1, 1, 0), Dense(48, 4)], 4),
    ([Conv2d((3, 3, 2), 2, 2, 1, 0), Dense(8, 3)], 1),
]


@pytest.mark.parametrize(("ops", "lanes"), CONV, ids=[f"{o[0].describe()}-P{p}" for o, p in CONV])
def test_conv_matches_golden(ops, lanes):
    model = random_net(len(ops) + lanes, ops)
    dut = MLP(model, lanes)
    x = random_inputs(4, model, 5)
    _, times = check(dut, x)
    assert (np.diff(times) == dut.cycles_per_sample).all()


def test_conv_layers_run_at_their_ideal():
    """A conv whose output channels are a multiple of P and whose taps * C_in >= P issues
    exactly ``MACs / P`` cycles: ``positions * C_out / P * k * k * C_in``."""
    conv = Conv2d((6, 6, 2), 8, 3, 2, 1)
    model = random_net(4, [conv, Dense(conv.out_size, 3)])
    dut = MLP(model, 4)
    assert dut.layer_cycles[0] == conv.macs // 4 == 9 * 2 * 18
    x = random_inputs(8, model, 3)
    _, times = check(dut, x, idle=0.3, stall=0.5, seed=2)


def test_conv_image_layout():
    conv = Conv2d((3, 3, 2), 5, 3, 1, 1)  # 2 groups at P = 4: output channel 4 alone in group 1
    model = random_net(5, [conv, Dense(45, 2)])
    img = image(model, 4)
    assert len(img.weights) == 2 * 18 + 2 * 9 * 2 and len(img.biases) == 2 * 4 + 2
    w = model.weights[0]
    # Group 1, tap 0, channel 1: word 18 + 1; lane 0 is output channel 4, lanes 1..3 padding.
    word = img.weights[18 + 1]
    assert fixed.to_signed(word & 0xFF, 8) == w[4, 1] and word >> 8 == 0
    assert [fixed.to_signed(b, 32) for b in img.biases[4:8]] == [model.biases[0][4], 0, 0, 0]
    # The dense layer reads the map's words: position 0's channels 0..3, then channel 4 + padding.
    assert fixed.to_signed(img.weights[36 + 1] & 0xFF, 8) == model.weights[1][0, 4]
    assert img.weights[36 + 1] >> 8 == 0


def test_conv_refusals():
    conv = Conv2d((3, 3, 1), 2, 3, 1, 1)
    rng = np.random.default_rng(0)
    model = intmodel.IntModel([rng.integers(-9, 9, (2, 9))], [np.zeros(2)], [0], 0,
                              intmodel.InputFormat(0, 0, 9), [conv])  # fmt: skip
    with pytest.raises(ValueError, match="the last layer is a conv3x3/1 pad 1 3x3x1->3x3x2"):
        MLP(model, 2)
