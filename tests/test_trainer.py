# amaranth: UnusedElaboratable=no
"""The training engine (hw/net/trainer.py) in Amaranth's simulator, step by step against the
golden integer training step ``golden.intnet.IntNet.step``: every master weight and bias after
every step, and every step's logits."""

import numpy as np
import pytest
import torch
from amaranth.sim import Simulator
from nets import samples, small_net
from streams import load_words

from helu.golden import fixed, trajectory
from helu.golden.intnet import IntNet, Scales
from helu.golden.layers import Conv2d, Dense
from helu.golden.netimage import Image, decode, digest
from helu.golden.netimage import training_image as image
from helu.hw.net.trainer import Trainer, TrainSpec


def golden_run(net: IntNet, x, labels, lanes: int = 4):
    """The golden trajectory (``golden.trajectory.record``, a full state after every step):
    ``(logits, [(masters, biases)] per step, digests)``; labels out of range skip a step."""
    t = trajectory.record(net, x, labels, lanes=lanes, every=1)
    layers = range(len(net.ops))
    states = [
        ([t[f"masters{i}"][n] for i in layers], [t[f"biases{i}"][n] for i in layers])
        for n in range(len(labels))
    ]
    return t["logits"], states, t["digest"]


def run(dut, x, labels, *, read=True, idle=0.0, stall=0.0, seed=0, loads=()):
    """Train ``dut`` on ``x``/``labels``; returns per step ``(logits, cls, skipped)``, the words
    read back after each step (``read``), the cycle each output was taken and the ``digest``
    port after each step (``read``)."""
    lanes = dut.lanes
    index = dut.input_index  # the engine's input layout: (transfers, lanes), -1 padding
    rng = np.random.default_rng(seed)
    outs, states, times, digests = [], [], [], []
    cycle = {"n": 0}

    async def clock(ctx):
        async for _ in ctx.tick():
            cycle["n"] += 1

    async def tb(ctx):
        await load_words(ctx, dut.load, loads)
        for xs, lab in zip(x, labels, strict=True):
            row = np.concatenate([np.asarray(xs, dtype=np.int64), [0]])[index]
            for c in range(len(index)):
                while idle and rng.random() < idle:
                    ctx.set(dut.i.valid, 0)
                    await ctx.tick()
                for k in range(lanes):
                    ctx.set(dut.i.payload.x[k], int(row[c, k]))
                ctx.set(dut.i.payload.label, int(lab))
                ctx.set(dut.i.valid, 1)
                await ctx.tick().until(dut.i.ready)
            ctx.set(dut.i.valid, 0)
            while True:
                ready = not (stall and rng.random() < stall)
                ctx.set(dut.o.ready, ready)
                _, _, valid, payload = await ctx.tick().sample(dut.o.valid, dut.o.payload)
                if ready and valid:
                    break
            ctx.set(dut.o.ready, 0)
            outs.append(([int(v) for v in payload.logits], int(payload.cls), int(payload.skipped)))
            times.append(cycle["n"])
            if read:
                if not ctx.get(dut.i.ready):
                    await ctx.tick().until(dut.i.ready)  # the step's backward pass is over
                digests.append(ctx.get(dut.digest))
                words = []
                for addr in range(dut.words):
                    ctx.set(dut.read.payload.addr, addr)
                    ctx.set(dut.read.valid, 1)
                    await ctx.tick().until(dut.read.ready)
                    ctx.set(dut.read.valid, 0)
                    ctx.set(dut.rdata.ready, 1)
                    (data,) = await ctx.tick().sample(dut.rdata.payload.data).until(dut.rdata.valid)
                    ctx.set(dut.rdata.ready, 0)
                    words.append(int(data))
                states.append(decode(words, dut.ops, lanes))
                # The digest covers the whole state: it equals the one of the words read.
                if outs[-1][2] == 0:
                    img = Image(words[: dut.weight_words], words[dut.weight_words :])
                    assert digests[-1] == digest(img, dut.ops, lanes), f"digest, step {len(outs)}"

    sim = Simulator(dut)
    sim.add_clock(1e-6)
    sim.add_process(clock)
    sim.add_testbench(tb)
    sim.run()
    return outs, states, times, digests


def compare(dut, outs, states, digests, want_logits, want_states, want_digests, labels):
    """Every step's logits, class, ``skipped`` flag, digest, masters and biases must equal
    golden's."""
    assert len(outs) == len(labels) and len(states) == len(labels)
    for step, ((logits, cls, skipped), (masters, biases)) in enumerate(
        zip(outs, states, strict=True)
    ):
        np.testing.assert_array_equal(logits, want_logits[step], err_msg=f"logits, step {step}")
        assert cls == int(np.argmax(want_logits[step])), f"class, step {step}"
        assert skipped == int(labels[step] >= dut.sizes[-1]), f"skipped, step {step}"
        assert digests[step] == want_digests[step], f"digest, step {step}"
        for i, (got, want) in enumerate(zip(masters, want_states[step][0], strict=True)):
            np.testing.assert_array_equal(got, want, err_msg=f"masters {i}, step {step}")
        for i, (got, want) in enumerate(zip(biases, want_states[step][1], strict=True)):
            np.testing.assert_array_equal(got, want, err_msg=f"biases {i}, step {step}")


def check_steps(net: IntNet, lanes: int, x, labels, *, stash="mask", read_register=False, **kw):
    """Train the engine and golden side by side; every output and state must be equal."""
    dut = Trainer(TrainSpec.from_net(net), lanes, stash=stash, read_register=read_register)
    outs, states, times, digests = run(dut, x, labels, **kw)
    compare(dut, outs, states, digests, *golden_run(net, x, labels, lanes), labels)
    return dut, outs, times


SMALL = [
    # (sizes, lanes): ragged chunks (padding lanes), hidden layers of one chunk (the next layer
    # reads the last activation right after the drain), more classes than lanes.
    ([10, 4, 4, 3], 4),
    ([6, 5, 7, 9], 2),
]


@pytest.mark.parametrize(("sizes", "lanes"), SMALL, ids=[f"{s}-P{p}" for s, p in SMALL])
def test_trainer_matches_golden_step_by_step(sizes, lanes):
    net = small_net(sum(sizes) + lanes, sizes)
    x, labels = samples(1, sizes, 4)
    check_steps(net, lanes, x, labels)


def test_trainer_z_stash_matches_golden():
    """The comparison build that stashes z (backward unit with ``stash="z"``): same steps."""
    sizes = [10, 4, 4, 3]
    net = small_net(11, sizes)
    x, labels = samples(8, sizes, 3)
    labels[1] = 3  # out of range: no update
    dut, _, _ = check_steps(net, 4, x, labels, stash="z")
    assert dut.stash_bits == dut.z_stash_bits == 8 * 8


def test_trainer_large_steps_saturate():
    """A learning rate of 1 (left-shifted gradients): masters reach int16's bounds, deltas and
    outputs saturate; still bit-exact."""
    sizes = [10, 4, 4, 3]
    net = small_net(5, sizes, lr_shift=-6)
    x, labels = samples(2, sizes, 5)
    ref = small_net(5, sizes, lr_shift=-6)
    golden_run(ref, x, labels)
    assert any(int(m.abs().max()) >= (1 << 15) - 1 for m in ref.masters), "no master saturated"
    assert min(ref.scales.grad_shifts) < 0
    check_steps(net, 4, x, labels)


def test_trainer_bad_label_trains_nothing():
    """A label out of range: logits out, ``skipped`` set, no weight or bias changes."""
    sizes = [10, 4, 4, 3]
    net = small_net(3, sizes)
    x, labels = samples(3, sizes, 4)
    labels[1] = 3  # == classes
    labels[2] = 7  # the largest the port carries
    check_steps(net, 4, x, labels)


def test_trainer_backpressure_and_gaps():
    sizes = [10, 4, 4, 3]
    net = small_net(4, sizes)
    x, labels = samples(4, sizes, 4)
    check_steps(net, 4, x, labels, idle=0.5, stall=0.7, seed=2)


def test_trainer_full_rate_cycles():
    """Back-to-back steps take exactly ``cycles_per_sample``."""
    sizes = [10, 4, 4, 3]
    net = small_net(6, sizes)
    x, labels = samples(5, sizes, 4)
    dut = Trainer(TrainSpec.from_net(net), 4)
    _, _, times, _ = run(dut, x, labels, read=False)
    assert (np.diff(times) == dut.cycles_per_sample).all(), (np.diff(times), dut.cycles_per_sample)


def test_trainer_load_port_replaces_the_state():
    """Masters and biases written through ``load`` are read back and trained from."""
    sizes = [10, 4, 4, 3]
    old, new = small_net(7, sizes), small_net(8, sizes)
    x, labels = samples(6, sizes, 2)
    img = image([m[0].numpy() for m in new.masters], [b[0].numpy() for b in new.biases], 4)
    dut = Trainer(TrainSpec.from_net(old), 4)
    outs, states, _, _ = run(dut, x, labels, loads=img.words())
    want_logits, want_states, _ = golden_run(new, x, labels)
    np.testing.assert_array_equal([o[0] for o in outs], want_logits)
    for got, want in zip(states[-1][0], want_states[-1][0], strict=True):
        np.testing.assert_array_equal(got, want)


def test_check_catches_a_wrong_update():
    """The step-by-step check fails on an engine whose master is one LSB off, after a step."""
    sizes = [10, 4, 4, 3]
    net = small_net(9, sizes)
    x, labels = samples(7, sizes, 2)
    dut = Trainer(TrainSpec.from_net(net), 4)
    outs, states, _, digests = run(dut, x, labels)
    want = golden_run(net, x, labels, dut.lanes)
    compare(dut, outs, states, digests, *want, labels)
    states[1][0][1][2, 3] += 1
    with pytest.raises(AssertionError, match="masters 1, step 1"):
        compare(dut, outs, states, digests, *want, labels)
    states[1][0][1][2, 3] -= 1
    states[0][1][2][0] -= 1
    with pytest.raises(AssertionError, match="biases 2, step 0"):
        compare(dut, outs, states, digests, *want, labels)
    states[0][1][2][0] += 1
    digests[1] ^= 1
    with pytest.raises(AssertionError, match="digest, step 1"):
        compare(dut, outs, states, digests, *want, labels)


def test_image_and_decode_round_trip():
    sizes = [5, 3, 2]
    net = small_net(2, sizes)
    masters = [m[0].numpy() for m in net.masters]
    biases = [b[0].numpy() for b in net.biases]
    img = image(masters, biases, 4)
    assert len(img.weights) == 3 * 2 + 2 * 1 and len(img.biases) == 5
    got_m, got_b = decode(img.weights + img.biases, sizes, 4)
    for a, b in zip(got_m + got_b, masters + biases, strict=True):
        np.testing.assert_array_equal(a, b)
    word = img.weights[1]  # neuron 0, chunk 1: input 4 in lane 0, padding after it
    assert fixed.to_signed(word & 0xFFFF, 16) == masters[0][0, 4] and word >> 16 == 0
    with pytest.raises(ValueError, match="do not hold a"):
        decode(img.weights, sizes, 4)
    # The digest sees one flipped bit anywhere (weights, padding lane, bias).
    base = digest(img, sizes, 4)
    for words, biases in (
        ([img.weights[0] ^ 1, *img.weights[1:]], img.biases),
        ([img.weights[0], img.weights[1] ^ (1 << 40), *img.weights[2:]], img.biases),
        (img.weights, [*img.biases[:-1], img.biases[-1] ^ (1 << 31)]),
    ):
        assert digest(Image(words, biases), sizes, 4) != base
    with pytest.raises(ValueError, match="does not hold a"):
        digest(Image(img.weights[1:], img.biases), sizes, 4)


def test_trainer_figures():
    """Digits net at P = 8: the cost figures the docs quote come from these properties."""
    net = small_net(0, [64, 32, 32, 10])
    dut = Trainer(TrainSpec.from_net(net), 8)
    assert dut.ideal_cycles == (2 * 3392 + 1344) / 8
    assert dut.cycles_per_sample <= 1.25 * dut.ideal_cycles
    assert dut.mask_bits == 64 and dut.z_stash_bits == 512
    assert dut.acc_width == 33


def test_trainer_parameters_wrong():
    net = small_net(1, [4, 3, 2])
    spec = TrainSpec.from_net(net)
    fields = dict(spec.__dict__)
    with pytest.raises(TypeError, match="TrainSpec"):
        Trainer("spec")
    with pytest.raises(ValueError, match="Lane count must be a positive integer, not 0"):
        Trainer(spec, 0)
    with pytest.raises(ValueError, match="Stash must be one of mask, z, not 'q'"):
        Trainer(spec, 2, stash="q")
    with pytest.raises(ValueError, match="at least 2 layers"):
        Trainer(TrainSpec(**{**fields, "masters": spec.masters[:1], "biases": spec.biases[:1]}))
    bad = [spec.masters[0], spec.masters[1][:, :2]]
    with pytest.raises(ValueError, match="layer 1 takes 2 inputs, the layer before has 3"):
        Trainer(TrainSpec(**{**fields, "masters": tuple(bad)}))
    big = [spec.masters[0] + 40000, spec.masters[1]]
    with pytest.raises(ValueError, match="a master lies outside int16"):
        Trainer(TrainSpec(**{**fields, "masters": tuple(big)}))
    with pytest.raises(ValueError, match=r"delta shifts must be 1 integers >= 0, not \(-1,\)"):
        Trainer(TrainSpec(**{**fields, "delta_shifts": (-1,)}))
    with pytest.raises(ValueError, match="Inputs up to 200"):
        Trainer(TrainSpec(**{**fields, "input_max": 200}))
    conv = Conv2d((2, 2, 1), 3, 1)
    with pytest.raises(ValueError, match="layer 1: a convolution after a dense layer"):
        Trainer(TrainSpec(**{**fields, "ops": (Dense(4, 4), Conv2d((2, 2, 1), 2, 1))}))
    with pytest.raises(ValueError, match="the last layer is a conv1x1/1 pad 0 2x2x1->2x2x3: it "):
        Trainer(TrainSpec(**{**fields, "ops": (Conv2d((2, 2, 1), 1, 1), conv)}))
    with pytest.raises(ValueError, match=r"layer 0 \(conv1x1.*\): masters must be \(3, 1\)"):
        Trainer(TrainSpec(**{**fields, "ops": (conv, Dense(12, 2))}))


def test_trainer_refuses_addresses_past_the_last_word():
    """``load`` and ``read`` past the last bias stall (``ready`` low): nothing wraps."""
    net = small_net(2, [4, 3, 2])
    dut = Trainer(TrainSpec.from_net(net), 2)
    seen = {}

    async def tb(ctx):
        await ctx.tick().repeat(2)
        for port in (dut.load, dut.read):
            ctx.set(port.payload.addr, dut.words)
            ctx.set(port.valid, 1)
            readies = []
            for _ in range(4):
                readies.append(ctx.get(port.ready))
                await ctx.tick()
            ctx.set(port.payload.addr, dut.words - 1)
            readies.append(ctx.get(port.ready))
            ctx.set(port.valid, 0)
            await ctx.tick().repeat(3)
            seen[port is dut.load] = readies

    sim = Simulator(dut)
    sim.add_clock(1e-6)
    sim.add_testbench(tb)
    sim.run()
    assert seen == {True: [0, 0, 0, 0, 1], False: [0, 0, 0, 0, 1]}


def conv_net(seed: int, ops, *, lr_shift: int = 5, threshold: int = -3) -> IntNet:
    """A seeded scratch ``IntNet`` (one run) over the layer ``ops``: random masters at the
    scratch scale and random biases, digits-like scales, inputs 0..16."""
    from helu.golden import intmodel

    n = len(ops)
    scales = Scales.chain(4, (6,) * n, (4,) * (n - 1) + (5,), 2, lr_shift)
    gen = torch.Generator().manual_seed(seed)
    masters, biases = [], []
    for i, op in enumerate(ops):
        frac = scales.w_fracs[i] + fixed.SHADOW_SHIFT
        u = torch.rand(1, op.out_channels, op.fan_in, generator=gen, dtype=torch.float64) * 2 - 1
        masters.append(torch.round(u * 2.0**frac / op.fan_in**0.5).long())
        biases.append(torch.randint(-400, 1200, (1, op.out_channels), generator=gen))
    return IntNet(masters, biases, scales, threshold, ops, intmodel.InputFormat(4, 0, 16))


def conv_samples(seed: int, ops, n: int):
    rng = np.random.default_rng(seed)
    return rng.integers(0, 17, size=(n, ops[0].in_size)), rng.integers(0, ops[-1].out_size, n)


CONV = {
    # stride 1 and 2, padding 0 and 1, channels not multiples of P, a conv above a conv (the
    # transposed convolution) and a dense layer over a map with padding lanes.
    "s1p1-c3-P2": ([Conv2d((4, 4, 1), 3, 3, 1, 1), Conv2d((4, 4, 3), 3, 3, 2, 0),
                    Dense(3, 4)], 2),
    "s2p1-c5-P4": ([Conv2d((5, 5, 2), 5, 3, 2, 1), Conv2d((3, 3, 5), 6, 2, 1, 0),
                    Dense(24, 3)], 4),
    "s1p0-dense-P4": ([Conv2d((5, 4, 3), 6, 2, 1, 0), Dense(72, 5), Dense(5, 3)], 4),
}  # fmt: skip


@pytest.mark.parametrize("case", CONV)
def test_trainer_conv_matches_golden_step_by_step(case):
    ops, lanes = CONV[case]
    net = conv_net(len(case), ops)
    x, labels = conv_samples(2, ops, 3)
    check_steps(net, lanes, x, labels)


def test_trainer_conv_full_rate_cycles():
    """A conv chain's back-to-back steps take exactly ``cycles_per_sample`` (the docstring's
    formula: forward loop nests, the delta and gradient passes, their drains)."""
    ops, lanes = CONV["s2p1-c5-P4"]
    net = conv_net(4, ops)
    x, labels = conv_samples(3, ops, 3)
    dut = Trainer(TrainSpec.from_net(net), lanes)
    _, _, times, _ = run(dut, x, labels, read=False)
    assert (np.diff(times) == dut.cycles_per_sample).all(), (np.diff(times), dut.cycles_per_sample)


def test_check_catches_a_wrong_conv_update():
    """The step-by-step check fails on a conv engine whose read-back is one LSB off: a conv
    master, a conv bias, a logit."""
    ops, lanes = CONV["s1p1-c3-P2"]
    net = conv_net(5, ops)
    x, labels = conv_samples(4, ops, 2)
    dut = Trainer(TrainSpec.from_net(net), lanes)
    outs, states, _, digests = run(dut, x, labels)
    want = golden_run(net, x, labels, dut.lanes)
    compare(dut, outs, states, digests, *want, labels)
    states[1][0][0][2, 5] += 1
    with pytest.raises(AssertionError, match="masters 0, step 1"):
        compare(dut, outs, states, digests, *want, labels)
    states[1][0][0][2, 5] -= 1
    states[0][1][1][1] += 1
    with pytest.raises(AssertionError, match="biases 1, step 0"):
        compare(dut, outs, states, digests, *want, labels)
    states[0][1][1][1] -= 1
    outs[1][0][2] += 1
    with pytest.raises(AssertionError, match="logits, step 1"):
        compare(dut, outs, states, digests, *want, labels)


def test_conv_image_decode_digest():
    """A conv chain's image decodes to its masters and biases; the digest sees a flipped bit in
    a conv word, a padding bias and a dense word."""
    ops, lanes = CONV["s2p1-c5-P4"]
    net = conv_net(6, ops)
    masters = [m[0].numpy() for m in net.masters]
    biases = [b[0].numpy() for b in net.biases]
    img = image(masters, biases, lanes, ops)
    # conv 0: 2 groups x 18 words; conv 1: 2 groups x 20 words; dense over 2x2x6 (2 words a
    # position): 3 x 8 words. Biases: 8 + 8 (P per group) + 3.
    assert len(img.weights) == 36 + 40 + 24 and len(img.biases) == 19
    got_m, got_b = decode(img.weights + img.biases, ops, lanes)
    for a, b in zip(got_m + got_b, masters + biases, strict=True):
        np.testing.assert_array_equal(a, b)
    word = img.weights[1]  # conv 0, group 0, tap 0, channel 1: output channel k in lane k
    assert [fixed.to_signed((word >> (16 * k)) & 0xFFFF, 16) for k in range(4)] == list(
        masters[0][:4, 1]
    )
    base = digest(img, ops, lanes)
    for i in (0, 40, 90):
        words = list(img.weights)
        words[i] ^= 1 << 5
        assert digest(Image(words, img.biases), ops, lanes) != base, i
    pad = list(img.biases)
    pad[7] ^= 1  # conv 0's padding channel 7
    assert digest(Image(img.weights, pad), ops, lanes) != base


def test_trainer_cnn_figures():
    """The digits CNN at P = 8: cycles per step against the ideal (forward + delta + gradient
    MACs / P); the conv delta pass issues only the taps of the right stride phase."""
    ops = [Conv2d((8, 8, 1), 8, 3, 1, 1), Conv2d((8, 8, 8), 16, 3, 2, 1), Dense(256, 10)]
    dut = Trainer(TrainSpec.from_net(conv_net(0, ops)), 8)
    macs = 4608 + 18432 + 2560
    assert dut.macs == macs and dut.ideal_cycles == (2 * macs + 18432 + 2560) / 8
    plans = dut._plans
    assert dut.conv_delta_cycles(plans[1]) == 18432 // 8  # 144 tap phases x 8 channels x 2
    assert dut.conv_grad_cycles(plans[0]) == 4608 // 8 + 8
    assert dut.cycles_per_sample <= dut.ideal_cycles
    assert dut.mask_bits == 512 + 256


@pytest.mark.parametrize("kind", ["dense", "conv"])
def test_read_register_build_same_steps_one_cycle_more_a_drain(kind):
    """The build with a register after every memory read (the ECP5's) trains bit for bit as the
    other, with stalls, and its back-to-back steps take its own ``cycles_per_sample``: one
    cycle more in each drain."""
    if kind == "dense":
        sizes = [10, 4, 4, 3]
        net, lanes = small_net(4, sizes), 4
        x, labels = samples(4, sizes, 4)
    else:
        ops, lanes = CONV["s2p1-c5-P4"]
        net = conv_net(4, ops)
        x, labels = conv_samples(3, ops, 3)
    check_steps(net, lanes, x, labels, read_register=True, idle=0.3, stall=0.3, seed=3)
    spec = TrainSpec.from_net(net)
    dut = Trainer(spec, lanes, read_register=True)
    _, _, times, _ = run(dut, x, labels, read=False)
    assert (np.diff(times) == dut.cycles_per_sample).all(), (np.diff(times), dut.cycles_per_sample)
    plain = Trainer(spec, lanes)
    drains = [(t.fwd_drain, t.bwd_drain, t.delta_drain) for t in (plain, dut)]
    assert [b - a for a, b in zip(*drains, strict=True)] == [1, 1, 1], drains
    assert dut.cycles_per_sample > plain.cycles_per_sample


def test_read_register_wrong():
    with pytest.raises(TypeError, match="read_register must be True or False, not 1"):
        Trainer(TrainSpec.from_net(small_net(1, [4, 3, 2])), 2, read_register=1)
