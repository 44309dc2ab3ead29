"""The integer MLP training engine: ``golden.intnet.IntNet.step`` on chip, bit for bit.

One sample per step (batch 1), one sequential datapath, ``lanes`` (``P``) lanes. A step is:

1. **Input**: the sample's ``ceil(inputs / P)`` transfers and its label.
2. **Forward**, as the inference engine (``hw.net.mlp``) does it: per (neuron, chunk of ``P``
   inputs) read a word of ``P`` int16 **master** weights, derive the int8 shadows
   (``golden.fixed.shadow_weights``: a rounding shift and a saturation per lane), multiply them
   with the ``P`` input codes, accumulate onto the bias and requantize with the layer's forward
   shift (``hw.net.requant``). Hidden layers pass through the HeLU forward unit in its **training
   build** (``hw.units.forward.Forward(train=True)``): its ``y`` is written to the next layer's
   activation region and its ``mask = q > T`` to a **mask memory**, one bit per hidden element.
   Every layer's input stays in its own activation region, since the weight gradients need it.
3. **Output error** at the last layer: ``e = saturate(L - TARGET * onehot(label))``
   (``golden.fixed.loss_gradient``); the logits and their argmax leave on the ``o`` stream.
4. **Backward**, layer by layer from the last: one pass over the layer's weight words reads each
   word once and, in the same cycle, (a) multiplies its shadows by the neuron's delta ``d[o]`` and
   adds them into one accumulator per input (``W.T @ d`` through the same weight RAM, read
   row-wise: no transposed copy; the shadows are the ones before the update, as golden), and
   (b) forms the exact products ``d[o] * a[j]`` and writes back the updated masters
   ``saturate(master - scale_shift(grad, grad_shift))`` (``golden.fixed.update``) to the word it
   read; the neuron's bias is updated the same way. After the pass the accumulators are
   requantized with the layer's delta shift and go, ``P`` at a time, through the backward-mask
   unit ``hw.units.backward.Backward(stash="mask")`` with the mask bits from the mask memory:
   that is the next layer's delta ``d``.

The shadows are never stored: they are derived from the masters on every read, so an update
changes master and shadow at once and the shadow always equals ``shadow_weights(master)``.

Memories (``amaranth.lib.memory.Memory``): masters, one word of ``P`` int16 codes per (layer,
neuron, chunk); biases, one int32 per neuron; activations, one region of ``P``-code words per
layer input; the mask memory, ``P`` bits per word, one region per hidden layer. The mask stash
takes one bit per hidden element where stashing the pre-activation ``z`` would take
``ACT_WIDTH`` (:attr:`Trainer.mask_bits` against :attr:`Trainer.z_stash_bits`).

Exactness: golden sums in int64. The forward accumulator here is wide enough for an int32 bias
plus any sum of int8 shadows times inputs (:attr:`Trainer.acc_width`, 33 bits for the digits
net), and the delta accumulators for any sum of int8 deltas times int8 shadows, so no reachable
state overflows; every rounding is ``golden.fixed.shift_round`` applied to Amaranth values.

Timing (full rate, :attr:`Trainer.cycles_per_sample`): ``C_0`` input cycles, ``S`` forward
issue cycles (``S = sum_l out_l * C_l``, one weight word each), ``S`` backward issue cycles,
and fixed drains between phases. The backward pass does ``2 P`` multiplies a cycle (``P`` for
the deltas, ``P`` for the gradients), so a step takes fewer cycles than the ideal "forward,
backward-delta and weight-gradient multiplies divided by ``P``" (:attr:`Trainer.ideal_cycles`).
"""

from dataclasses import dataclass

import numpy as np
from amaranth.hdl import Array, Cat, Const, Module, Mux, Signal, Value, signed, unsigned
from amaranth.lib import data, stream, wiring
from amaranth.lib.memory import Memory
from amaranth.lib.wiring import In, Out
from amaranth.utils import bits_for, ceil_log2

from helu.golden import fixed
from helu.hw.net.requant import requantize, round_select, saturate, select
from helu.hw.net.stages import delayed, logit_argmax
from helu.hw.units import check_lanes, check_threshold, refusal
from helu.hw.units.backward import STASH_KINDS, Backward
from helu.hw.units.forward import Forward

__all__ = ["Trainer", "TrainSpec", "Image", "image", "decode", "digest", "DIGEST_WIDTH"]

# Issue to requantized code visible: read data, shadows, products, their sum, accumulator, code.
_FWD_STAGES = 6
# Issue to master write / delta accumulation: read data, shadows, products, then the write.
_BWD_STAGES = 3
# Latency of the forward and backward-mask units (checked when the engine is elaborated).
_UNIT_LATENCY = 1


def _int(value) -> bool:
    return isinstance(value, (int, np.integer)) and not isinstance(value, bool)


def _chunks(n: int, lanes: int) -> int:
    return -(-n // lanes)


@dataclass(frozen=True)
class TrainSpec:
    """What the engine is built for: the initial state and every scale of ``IntNet``'s step.

    ``masters[l]`` (out, in) int16 and ``biases[l]`` (out,) int32 (the memories' initial
    contents); the shifts of ``golden.intnet.Scales`` (``forward_shifts``, ``delta_shifts``,
    ``grad_shifts``, ``bias_shifts``), built in as constants; the HeLU threshold ``T``;
    ``input_max``: inputs lie in ``[0, input_max]``.
    """

    masters: tuple
    biases: tuple
    forward_shifts: tuple
    delta_shifts: tuple
    grad_shifts: tuple
    bias_shifts: tuple
    threshold: int
    input_max: int = 16

    @classmethod
    def from_net(cls, net, run: int = 0, input_max: int = 16) -> "TrainSpec":
        """Run ``run`` of a ``golden.intnet.IntNet`` (read through numpy: no torch import)."""
        s = net.scales
        return cls(
            tuple(np.asarray(m[run]).astype(np.int64) for m in net.masters),
            tuple(np.asarray(b[run]).astype(np.int64) for b in net.biases),
            tuple(s.forward_shifts),
            tuple(s.delta_shifts),
            tuple(s.grad_shifts),
            tuple(s.bias_shifts),
            int(net.thresholds[run]),
            input_max,
        )

    @property
    def sizes(self) -> tuple[int, ...]:
        return (self.masters[0].shape[1], *(m.shape[0] for m in self.masters))

    def check(self) -> "TrainSpec":
        """Raise ``ValueError``/``TypeError`` naming what is wrong; returns ``self``."""
        n = len(self.masters)
        if n < 2:
            raise ValueError(f"The training engine needs at least 2 layers (a hidden one), not {n}")
        if len(self.biases) != n:
            raise ValueError(f"{n} weight layers but {len(self.biases)} bias vectors")
        fan_in = None
        for i, (w, b) in enumerate(zip(self.masters, self.biases, strict=True)):
            w, b = np.asarray(w), np.asarray(b)
            if w.ndim != 2 or not np.issubdtype(w.dtype, np.integer):
                raise ValueError(f"layer {i}: masters must be a 2-D integer array, not {w.shape}")
            if fan_in is not None and w.shape[1] != fan_in:
                raise ValueError(
                    f"layer {i} takes {w.shape[1]} inputs, the layer before has {fan_in}"
                )
            if b.shape != (w.shape[0],) or not np.issubdtype(b.dtype, np.integer):
                raise ValueError(f"layer {i}: biases must be {w.shape[0]} integers, not {b.shape}")
            for name, a, width in (("master", w, fixed.MASTER_WIDTH), ("bias", b, fixed.ACC_WIDTH)):
                lo, hi = -(1 << (width - 1)), (1 << (width - 1)) - 1
                if a.size and (int(a.min()) < lo or int(a.max()) > hi):
                    raise ValueError(f"layer {i}: a {name} lies outside int{width}")
            fan_in = w.shape[0]
        for name, shifts, count, signed_ok in (
            ("forward", self.forward_shifts, n, False),
            ("delta", self.delta_shifts, n - 1, False),
            ("grad", self.grad_shifts, n, True),
            ("bias", self.bias_shifts, n, True),
        ):
            if len(shifts) != count or not all(_int(s) and (signed_ok or s >= 0) for s in shifts):
                kind = "integers" if signed_ok else "integers >= 0"
                raise ValueError(f"{name} shifts must be {count} {kind}, not {tuple(shifts)}")
        check_threshold(self.threshold, fixed.ACT_WIDTH)
        # Signed int8 lanes: inputs down to -128 (input_max is the largest |code|).
        if not _int(self.input_max) or not 0 <= self.input_max <= 1 << (fixed.ACT_WIDTH - 1):
            raise ValueError(
                f"Inputs up to {self.input_max!r} do not fit the engine's "
                f"int{fixed.ACT_WIDTH} lanes"
            )
        return self


@dataclass(frozen=True)
class Image:
    """Memory words: ``weights`` one ``16 * P``-bit word of masters per (layer, neuron, chunk),
    lane ``k`` of chunk ``c`` the master of input ``c * P + k`` (0 in padding lanes, which the
    engine never updates); ``biases`` one ``ACC_WIDTH``-bit pattern per neuron."""

    weights: list
    biases: list

    def words(self) -> list[tuple[int, int]]:
        """``(addr, data)`` pairs of the ``load`` port (and the ``read`` port's address map)."""
        n = len(self.weights)
        return list(enumerate(self.weights)) + [(n + a, b) for a, b in enumerate(self.biases)]


def _pack(rows: np.ndarray, width: int, lanes: int) -> list[int]:
    out, fan_in = rows.shape
    chunks = _chunks(fan_in, lanes)
    padded = np.zeros((out, chunks * lanes), dtype=np.int64)
    padded[:, :fan_in] = rows
    codes = fixed.to_unsigned(padded, width).reshape(out * chunks, lanes).astype(object)
    return [int(v) for v in (codes << (width * np.arange(lanes, dtype=object))).sum(axis=1)]


def image(masters, biases, lanes: int) -> Image:
    """The memory words of ``masters`` (int16) and ``biases`` (int32) for ``lanes`` lanes."""
    check_lanes(lanes)
    words, bias_words = [], []
    for w, b in zip(masters, biases, strict=True):
        words += _pack(np.asarray(w, dtype=np.int64), fixed.MASTER_WIDTH, lanes)
        bias_words += [int(v) for v in fixed.to_unsigned(np.asarray(b), fixed.ACC_WIDTH)]
    return Image(words, bias_words)


def decode(words, sizes, lanes: int) -> tuple[list[np.ndarray], list[np.ndarray]]:
    """``(masters, biases)`` from memory words in the ``read`` port's address order.

    ``words`` holds every weight word, then every bias word, as read back; raises ``ValueError``
    when their number does not match ``sizes`` at ``lanes`` lanes.
    """
    check_lanes(lanes)
    shapes = list(zip(sizes[1:], sizes[:-1], strict=True))
    n_w = sum(o * _chunks(i, lanes) for o, i in shapes)
    n_b = sum(o for o, _ in shapes)
    words = [int(w) for w in words]
    if len(words) != n_w + n_b:
        raise ValueError(f"{len(words)} words do not hold a {sizes} net at {lanes} lanes")
    mask = (1 << fixed.MASTER_WIDTH) - 1
    masters, biases, at, bat = [], [], 0, n_w
    for out, fan_in in shapes:
        chunks = _chunks(fan_in, lanes)
        block = words[at : at + out * chunks]
        lanes_of = [[(w >> (fixed.MASTER_WIDTH * k)) & mask for k in range(lanes)] for w in block]
        codes = fixed.to_signed(np.array(lanes_of, dtype=np.int64), fixed.MASTER_WIDTH)
        masters.append(codes.reshape(out, chunks * lanes)[:, :fan_in])
        biases.append(fixed.to_signed(np.array(words[bat : bat + out]), fixed.ACC_WIDTH))
        at += out * chunks
        bat += out
    return masters, biases


DIGEST_WIDTH = 32


def _fold(value):
    """XOR of the ``DIGEST_WIDTH``-bit slices of ``value`` (zero-extended to whole slices)."""
    bits = value.shape().width
    parts = [value[i : i + DIGEST_WIDTH] for i in range(0, bits, DIGEST_WIDTH)]
    out = parts[0]
    for p in parts[1:]:
        out = out ^ p
    return out


def _fold_int(word: int) -> int:
    out, mask = 0, (1 << DIGEST_WIDTH) - 1
    while word:
        out ^= word & mask
        word >>= DIGEST_WIDTH
    return out


def digest(img: Image, sizes, lanes: int) -> int:
    """The engine's ``digest`` after a step whose new state is ``img``: the words in the order
    the backward pass writes them (last layer first; per neuron its chunks, the bias beside
    chunk 0), each ``XOR``-folded to 32 bits, combined as ``d = rotl(d, 1) ^ word``.

    A linear checksum: any single wrong bit changes it. The full state is compared through the
    ``read`` port; the digest makes a per-step check cost nothing in simulation.
    """
    chunks = [_chunks(n, lanes) for n in sizes[:-1]]
    outs = sizes[1:]
    wbase = [
        sum(o * c for o, c in zip(outs[:i], chunks[:i], strict=True)) for i in range(len(outs))
    ]
    bbase = [sum(outs[:i]) for i in range(len(outs))]
    if len(img.weights) != sum(o * c for o, c in zip(outs, chunks, strict=True)) or len(
        img.biases
    ) != sum(outs):
        raise ValueError(f"the image does not hold a {tuple(sizes)} net at {lanes} lanes")
    mask, d = (1 << DIGEST_WIDTH) - 1, 0
    for layer in reversed(range(len(outs))):
        for o in range(outs[layer]):
            for c in range(chunks[layer]):
                x = _fold_int(img.weights[wbase[layer] + o * chunks[layer] + c])
                if c == 0:
                    x ^= img.biases[bbase[layer] + o]
                d = (((d << 1) | (d >> (DIGEST_WIDTH - 1))) & mask) ^ x
    return d


def _select(make, index, params):
    """``make(params[index])`` for a runtime ``index`` into constant ``params`` (one copy of the
    logic per distinct value: the shifts are a handful of constants)."""
    made = {p: make(p) for p in dict.fromkeys(params)}
    return select(index, [made[p] for p in params])


class Trainer(wiring.Component):
    """Streaming integer MLP trainer: one ``IntNet.step`` per sample, bit-exact.

    Parameters
    ----------
    spec : TrainSpec
        The initial masters and biases (memory contents) and the step's shifts and threshold
        (built in).
    lanes : int
        ``P``: lanes of every word and multiplies per cycle (``2 P`` in the backward pass).
    stash : ``"mask"`` or ``"z"``
        What the forward pass keeps per hidden element for the backward pass: the 1-bit mask of
        the forward unit's training build (default), or, for cost comparisons, the int8 ``z``,
        which the backward unit (``stash="z"``) compares with ``T`` itself. Same results.

    Members
    -------
    i : ``In(stream.Signature(StructLayout({"x": ArrayLayout(signed(8), P),
        "label": unsigned(ceil_log2(classes + 1))})))``
        A sample as ``ceil(inputs / P)`` transfers, input ``c * P + k`` in lane ``k`` of transfer
        ``c``; ``label`` is taken from the sample's last transfer. Inputs must lie in
        ``[0, input_max]``. A label ``>= classes`` trains nothing: the sample runs forward, its
        output has ``skipped`` set, and no weight or bias changes. A sample whose transfers stop
        coming keeps the engine waiting, with nothing changed; ``rst`` drops it.
    o : ``Out(stream.Signature(StructLayout({"logits": ArrayLayout(signed(8), classes),
        "cls": unsigned(...), "skipped": 1})))``
        One transfer per sample: the logits of its forward pass (before the update) and their
        first argmax.
    load : ``In(stream.Signature(StructLayout({"addr": unsigned(a), "data": unsigned(d)})))``
        Memory writes, taken only between samples (:meth:`Image.words`): ``addr < weight_words``
        a master word, ``weight_words + n`` the bias of neuron ``n``. Addresses past the last
        bias are refused: ``load.ready`` stays low for them, the stream stalls, nothing is
        written (a wrong image never wraps onto other words).
    read : ``In(stream.Signature(StructLayout({"addr": unsigned(a)})))``,
    rdata : ``Out(stream.Signature(StructLayout({"data": unsigned(d)})))``
        Read any word of that address map between samples (a step's updates are all written
        before the next ``read`` is taken); each read gives one ``rdata`` transfer. Reads past
        the last bias are refused like loads.
    digest : ``Out(32)``
        A checksum of the state written by the last step's backward pass (:func:`digest`),
        stable from the end of that pass until the next one starts (a skipped step keeps it).

    Full backpressure on every stream; ``o.valid`` never depends on ``o.ready``. Before a
    sample's last layer the engine waits until the previous output was taken. ``rst`` drops the
    sample in progress and a pending output, never the memories; a step is either not started
    or runs to its end unless ``rst`` interrupts it.
    """

    def __init__(self, spec, lanes=8, *, stash="mask", src_loc_at=0):
        with refusal(self):
            if not isinstance(spec, TrainSpec):
                raise TypeError(f"Trainer needs a TrainSpec, not {spec!r}")
            spec.check()
            check_lanes(lanes)
            if stash not in STASH_KINDS:
                raise ValueError(f"Stash must be one of {', '.join(STASH_KINDS)}, not {stash!r}")
        self._stash = stash
        self._spec = spec
        self._lanes = lanes
        self._image = image(spec.masters, spec.biases, lanes)
        sizes = spec.sizes
        self._classes = sizes[-1]
        self._chunks = [_chunks(n, lanes) for n in sizes[:-1]]
        depth = len(self._image.weights) + len(self._image.biases)
        self._data_width = max(fixed.MASTER_WIDTH * lanes, fixed.ACC_WIDTH)
        addr = unsigned(ceil_log2(depth + 1))
        act = signed(fixed.ACT_WIDTH)
        super().__init__(
            {
                "i": In(
                    stream.Signature(
                        data.StructLayout(
                            {
                                "x": data.ArrayLayout(act, lanes),
                                "label": unsigned(bits_for(self._classes)),
                            }
                        )
                    )
                ),
                "o": Out(
                    stream.Signature(
                        data.StructLayout(
                            {
                                "logits": data.ArrayLayout(act, self._classes),
                                "cls": unsigned(max(ceil_log2(self._classes), 1)),
                                "skipped": 1,
                            }
                        )
                    )
                ),
                "load": In(
                    stream.Signature(
                        data.StructLayout({"addr": addr, "data": unsigned(self._data_width)})
                    )
                ),
                "read": In(stream.Signature(data.StructLayout({"addr": addr}))),
                "rdata": Out(
                    stream.Signature(data.StructLayout({"data": unsigned(self._data_width)}))
                ),
                "digest": Out(DIGEST_WIDTH),
            },
            src_loc_at=1 + src_loc_at,
        )

    # Properties --------------------------------------------------------------------------------

    @property
    def spec(self) -> TrainSpec:
        return self._spec

    @property
    def lanes(self) -> int:
        return self._lanes

    @property
    def sizes(self) -> tuple[int, ...]:
        return self._spec.sizes

    @property
    def image(self) -> Image:
        return self._image

    @property
    def weight_words(self) -> int:
        return len(self._image.weights)

    @property
    def words(self) -> int:
        """Words of the ``load``/``read`` address map: weight words, then biases."""
        return len(self._image.weights) + len(self._image.biases)

    @property
    def input_transfers(self) -> int:
        return self._chunks[0]

    @property
    def macs(self) -> int:
        """Forward multiply-accumulates of one sample (the model's, without padding)."""
        return sum(int(np.asarray(w).size) for w in self._spec.masters)

    @property
    def ideal_cycles(self) -> float:
        """(forward + backward-delta + weight-gradient multiplies) / P for one sample."""
        delta = sum(int(np.asarray(w).size) for w in self._spec.masters[1:])
        return (2 * self.macs + delta) / self._lanes

    @property
    def fwd_drain(self) -> int:
        """Idle cycles after a forward layer's last issue (its last activation is written)."""
        return _FWD_STAGES + _UNIT_LATENCY

    @property
    def bwd_drain(self) -> int:
        """Idle cycles after a backward pass's last issue (its last write has landed)."""
        return _BWD_STAGES

    @property
    def delta_drain(self) -> int:
        """Idle cycles after the last delta chunk (read, backward-mask unit, delta register)."""
        return 1 + _UNIT_LATENCY

    @property
    def cycles_per_sample(self) -> int:
        """Cycles per training step at full rate (input always valid, output always ready)."""
        sizes, layers = self.sizes, len(self._chunks)
        issue = sum(o * c for o, c in zip(sizes[1:], self._chunks, strict=True))
        deltas = sum(self._chunks[1:]) + (layers - 1) * self.delta_drain
        # One cycle claims the output register before the last layer.
        drains = layers * (self.fwd_drain + self.bwd_drain) + 1
        return self.input_transfers + 2 * issue + drains + deltas

    @property
    def stash(self) -> str:
        """What the forward pass keeps per hidden element: ``"mask"`` (1 bit) or ``"z"``."""
        return self._stash

    @property
    def stash_bits(self) -> int:
        """Bits of this build's stash memory contents."""
        return self.mask_bits if self._stash == "mask" else self.z_stash_bits

    @property
    def mask_bits(self) -> int:
        """Bits of the mask stash: one per hidden element."""
        return sum(self.sizes[1:-1])

    @property
    def z_stash_bits(self) -> int:
        """Bits a ``z`` stash would take instead (``ACT_WIDTH`` per hidden element)."""
        return fixed.ACT_WIDTH * self.mask_bits

    @property
    def acc_width(self) -> int:
        """Forward accumulator bits: any int32 bias plus any sum of shadow x input products."""
        act_max = (1 << (fixed.ACT_WIDTH - 1)) - 1
        bound = fixed.accumulator_bound(
            max(self.sizes[:-1]), max(act_max, self._spec.input_max), act_max + 1, 1 << 31
        )
        return bits_for(bound) + 1

    @property
    def delta_width(self) -> int:
        """Delta accumulator bits: any sum of int8 delta x int8 shadow over a layer's outputs."""
        most = 1 << (fixed.ACT_WIDTH - 1)
        return bits_for(max(self.sizes[2:]) * most * most) + 1

    # Design ------------------------------------------------------------------------------------

    def elaborate(self, platform):
        m = Module()
        spec, lanes, width = self._spec, self._lanes, fixed.ACT_WIDTH
        mw = fixed.MASTER_WIDTH
        sizes, chunks, img = self.sizes, self._chunks, self._image
        layers = len(chunks)
        outs, ins = sizes[1:], sizes[:-1]
        n_w, n_b = len(img.weights), len(img.biases)
        wbase = [
            sum(o * c for o, c in zip(outs[:i], chunks[:i], strict=True)) for i in range(layers)
        ]
        bbase = [sum(outs[:i]) for i in range(layers)]
        abase = [sum(chunks[:i]) for i in range(layers)]
        # Mask region of hidden layer l (its outputs = layer l + 1's input chunks).
        mbase = [sum(chunks[1 : i + 1]) for i in range(layers - 1)]
        cmax, omax = max(chunks), max(outs)

        # Memories ----------------------------------------------------------------------------
        m.submodules.wmem = wmem = Memory(shape=unsigned(mw * lanes), depth=n_w, init=img.weights)
        m.submodules.bmem = bmem = Memory(
            shape=unsigned(fixed.ACC_WIDTH), depth=n_b, init=img.biases
        )
        m.submodules.amem = amem = Memory(shape=unsigned(width * lanes), depth=sum(chunks), init=[])
        # The stash: one mask bit, or the int8 z, per hidden element.
        sbits = 1 if self._stash == "mask" else width
        m.submodules.mmem = mmem = Memory(
            shape=unsigned(sbits * lanes), depth=sum(chunks[1:]), init=[]
        )
        w_rd, b_rd, a_rd, m_rd = (
            mem.read_port(transparent_for=()) for mem in (wmem, bmem, amem, mmem)
        )
        w_wr, b_wr = wmem.write_port(), bmem.write_port()
        a_wr = amem.write_port(granularity=width)
        m_wr = mmem.write_port(granularity=sbits)

        def const_array(values, shape=None):
            shape = shape or range(max(max(values), 1) + 1)
            return Array(Const(v, shape) for v in values)

        # Sequencer ---------------------------------------------------------------------------
        layer = Signal(range(max(layers, 2)))
        neuron = Signal(range(max(omax, 2)))
        chunk = Signal(range(max(cmax, 2)))
        w_addr = Signal(range(max(n_w, 2)))
        b_addr = Signal(range(max(n_b, 2)))
        wait = Signal(range(max(self.fwd_drain, self.bwd_drain, self.delta_drain) + 1))
        label = Signal.like(self.i.payload.label)
        skip = Signal()
        idle, issue, bwd, delta = Signal(), Signal(), Signal(), Signal()
        last_chunk = chunk == const_array([c - 1 for c in chunks])[layer]
        last_neuron = neuron == const_array([o - 1 for o in outs])[layer]
        rpend = Signal()  # a read was taken; its data is captured next cycle

        # The delta registers: the current layer's d per neuron (padded to whole chunks).
        dlen = max([self._classes] + [c * lanes for c in chunks[1:]])
        d_arr = Array(Signal(signed(width), name=f"d{n}", reset_less=True) for n in range(dlen))

        m.d.comb += [
            w_rd.addr.eq(w_addr),
            b_rd.addr.eq(b_addr),
            a_rd.addr.eq(const_array(abase)[layer] + chunk),
        ]

        def sweep(drain, then):
            """One (neuron, chunk) issue a cycle through the layer's words; then ``drain``."""
            m.d.sync += [chunk.eq(chunk + 1), w_addr.eq(w_addr + 1)]
            with m.If(last_chunk):
                m.d.sync += [chunk.eq(0), neuron.eq(neuron + 1), b_addr.eq(b_addr + 1)]
                with m.If(last_neuron):
                    m.d.sync += [neuron.eq(0), wait.eq(drain - 1)]
                    m.next = then

        load_word = Signal(range(max(self.input_transfers, 2)))
        with m.FSM():
            with m.State("START"):
                # One cycle out of reset: the state and the layer change (INPUT sets it back), so
                # an event-driven simulator (Icarus) evaluates the combinational processes that
                # read only them, such as the per-layer constants, at least once.
                m.d.sync += layer.eq(layers - 1)
                m.next = "INPUT"
            with m.State("INPUT"):
                m.d.comb += idle.eq(1)
                m.d.comb += self.i.ready.eq(~rpend)
                with m.If(self.i.valid & ~rpend):
                    m.d.comb += [
                        a_wr.addr.eq(load_word),
                        a_wr.data.eq(self.i.payload.x.as_value()),
                        a_wr.en.eq(-1),
                    ]
                    m.d.sync += load_word.eq(load_word + 1)
                    with m.If(load_word == self.input_transfers - 1):
                        m.d.sync += [
                            load_word.eq(0),
                            label.eq(self.i.payload.label),
                            skip.eq(self.i.payload.label >= self._classes),
                            layer.eq(0),
                            neuron.eq(0),
                            chunk.eq(0),
                            w_addr.eq(0),
                            b_addr.eq(0),
                        ]
                        m.next = "FRUN"
            with m.State("FRUN"):
                m.d.comb += issue.eq(1)
                sweep(self.fwd_drain, "FDRAIN")
            with m.State("FDRAIN"):
                m.d.sync += wait.eq(wait - 1)
                with m.If(wait == 0):
                    with m.If(layer == layers - 1):
                        # Backward from the last layer (its words come last in the memories).
                        m.d.sync += [w_addr.eq(wbase[-1]), b_addr.eq(bbase[-1])]
                        # A label out of range trains nothing: the step ends after the forward.
                        with m.If(skip):
                            m.next = "INPUT"
                        with m.Else():
                            m.d.sync += self.digest.eq(0)
                            m.next = "BRUN"
                    with m.Else():
                        m.d.sync += layer.eq(layer + 1)
                        with m.If(layer == layers - 2):
                            m.next = "OUTPUT"
                        with m.Else():
                            m.next = "FRUN"
            with m.State("OUTPUT"):
                # The last layer writes the output register: wait until it is free.
                with m.If(~self.o.valid | self.o.ready):
                    m.next = "FRUN"
            with m.State("BRUN"):
                m.d.comb += [issue.eq(1), bwd.eq(1)]
                sweep(self.bwd_drain, "BDRAIN")
            with m.State("BDRAIN"):
                m.d.sync += wait.eq(wait - 1)
                with m.If(wait == 0):
                    with m.If(layer == 0):
                        m.next = "INPUT"
                    with m.Else():
                        m.next = "DELTA"
            with m.State("DELTA"):
                # Requantize and mask the accumulated W.T @ d, a chunk a cycle, into d.
                m.d.comb += delta.eq(1)
                m.d.sync += chunk.eq(chunk + 1)
                with m.If(last_chunk):
                    m.d.sync += [chunk.eq(0), wait.eq(self.delta_drain - 1)]
                    m.next = "DDRAIN"
            with m.State("DDRAIN"):
                m.d.sync += wait.eq(wait - 1)
                with m.If(wait == 0):
                    m.d.sync += [
                        layer.eq(layer - 1),
                        w_addr.eq(const_array(wbase)[layer - 1]),
                        b_addr.eq(const_array(bbase)[layer - 1]),
                    ]
                    m.next = "BRUN"

        # Weight read-back and loads (between samples only) ----------------------------------
        words = self.words
        rsel = Signal()
        m.d.comb += [
            self.read.ready.eq(
                idle
                & (load_word == 0)
                & ~rpend
                & ~self.rdata.valid
                & ~self.load.valid
                & (self.read.payload.addr < words)
            ),
            self.load.ready.eq(idle & (load_word == 0) & ~rpend & (self.load.payload.addr < words)),
        ]
        with m.If(self.rdata.ready):
            m.d.sync += self.rdata.valid.eq(0)
        m.d.sync += rpend.eq(self.read.valid & self.read.ready)
        with m.If(self.read.valid & self.read.ready):
            m.d.comb += [
                w_rd.addr.eq(self.read.payload.addr),
                b_rd.addr.eq(self.read.payload.addr - n_w),
            ]
            m.d.sync += rsel.eq(self.read.payload.addr >= n_w)
        with m.If(rpend):
            m.d.sync += [
                self.rdata.valid.eq(1),
                self.rdata.payload.data.eq(Mux(rsel, b_rd.data, w_rd.data)),
            ]

        # Datapath ----------------------------------------------------------------------------
        def delay(sig, name):
            reg = Signal(Value.cast(sig).shape(), name=name)
            m.d.sync += reg.eq(sig)
            return reg

        # Stage 1: read data, with what was issued.
        v1 = delay(issue, "v1")
        bwd1 = delay(bwd, "bwd1")
        first1 = delay(chunk == 0, "first1")
        last1 = delay(last_chunk, "last1")
        nfirst1 = delay(neuron == 0, "nfirst1")
        layer1 = delay(layer, "layer1")
        chunk1 = delay(chunk, "chunk1")
        waddr1 = delay(w_addr, "waddr1")
        baddr1 = delay(b_addr, "baddr1")
        d1 = Signal(signed(width), reset_less=True)
        m.d.sync += d1.eq(d_arr[neuron])

        # Stage 2: the shadows of the masters read, beside the master word itself.
        def lane(word, k, w):
            return word[k * w : (k + 1) * w].as_signed()

        sh2 = [Signal(signed(width), reset_less=True, name=f"sh{k}") for k in range(lanes)]
        for k, s in enumerate(sh2):
            m.d.sync += s.eq(
                requantize(lane(w_rd.data, k, mw), fixed.SHADOW_SHIFT, fixed.ACT_WIDTH)
            )
        wm2 = delay(w_rd.data, "wm2")
        a2 = delay(a_rd.data, "a2")
        b2 = Signal(signed(fixed.ACC_WIDTH), reset_less=True)
        m.d.sync += b2.eq(b_rd.data.as_signed())
        d2 = delay(d1, "d2")
        v2, bwd2, first2, last2 = (delay(s, f"{s.name[:-1]}2") for s in (v1, bwd1, first1, last1))
        nfirst2, layer2, chunk2 = (delay(s, f"{s.name[:-1]}2") for s in (nfirst1, layer1, chunk1))
        waddr2, baddr2 = delay(waddr1, "waddr2"), delay(baddr1, "baddr2")

        # Stage 3: products. Forward: shadow x input. Backward: shadow x delta (for W.T @ d) and
        # delta x input (the weight gradient, exact int16).
        prod = signed(2 * width)
        p3 = [Signal(prod, reset_less=True, name=f"p{k}") for k in range(lanes)]
        g3 = [Signal(prod, reset_less=True, name=f"g{k}") for k in range(lanes)]
        for k in range(lanes):
            ak = lane(a2, k, width)
            m.d.sync += [p3[k].eq(sh2[k] * Mux(bwd2, d2, ak)), g3[k].eq(d2 * ak)]
        wm3, b3, d3 = delay(wm2, "wm3"), delay(b2, "b3"), delay(d2, "d3")
        v3, bwd3, first3, last3 = (delay(s, f"{s.name[:-1]}3") for s in (v2, bwd2, first2, last2))
        nfirst3, layer3, chunk3 = (delay(s, f"{s.name[:-1]}3") for s in (nfirst2, layer2, chunk2))
        waddr3, baddr3 = delay(waddr2, "waddr3"), delay(baddr2, "baddr3")

        # Backward, stage 3 continued: write back the updated masters and bias, accumulate W.T @ d.
        ins_of = const_array(ins)
        upd = v3 & bwd3
        new_lanes = []
        for k in range(lanes):
            old = lane(wm3, k, mw)
            new = _select(
                lambda s, k=k, old=old: requantize(old - fixed.scale_shift(g3[k], s), 0, mw),
                layer3,
                spec.grad_shifts,
            )
            # Padding lanes (past the layer's inputs) keep their 0: they meet stale activations.
            new_lanes.append(Mux(chunk3 * lanes + k < ins_of[layer3], new, old))
        new_bias = _select(
            lambda s: requantize(b3 - fixed.scale_shift(d3, s), 0, fixed.ACC_WIDTH),
            layer3,
            spec.bias_shifts,
        )
        with m.If(upd):
            m.d.comb += [w_wr.addr.eq(waddr3), w_wr.data.eq(Cat(*new_lanes)), w_wr.en.eq(1)]
            with m.If(first3):
                m.d.comb += [b_wr.addr.eq(baddr3), b_wr.data.eq(new_bias), b_wr.en.eq(1)]
        # The step's digest: every word is written exactly once per backward pass (padding lanes
        # with their 0), so folding the writes in their order digests the whole new state.
        folded = _fold(Cat(*new_lanes)) ^ Mux(first3, _fold(new_bias), 0)
        with m.If(upd):
            m.d.sync += self.digest.eq(self.digest.rotate_left(1) ^ folded)
        gacc = Array(
            Array(Signal(signed(self.delta_width), name=f"gacc{c}_{k}") for k in range(lanes))
            for c in range(max(chunks[1:]))
        )
        with m.If(upd & (layer3 != 0)):
            for k in range(lanes):
                m.d.sync += gacc[chunk3][k].eq(gacc[chunk3][k] + p3[k])

        # Forward, stage 4: the sum of the products.
        total = p3[0]
        for p in p3[1:]:
            total = total + p
        sum4 = Signal(signed(2 * width + ceil_log2(lanes)), reset_less=True)
        m.d.sync += sum4.eq(total)
        v4 = delay(v3 & ~bwd3, "v4")
        first4, last4, nfirst4, layer4 = (
            delay(s, f"{s.name[:-1]}4") for s in (first3, last3, nfirst3, layer3)
        )
        b4 = delay(b3, "b4")
        # Stage 5: the accumulator (exact: acc_width holds every reachable sum).
        acc = Signal(signed(self.acc_width), reset_less=True)
        with m.If(v4):
            m.d.sync += acc.eq(Mux(first4, b4, acc) + sum4)
        done5 = delay(v4 & last4, "done5")
        nfirst5, layer5 = delay(nfirst4, "nfirst5"), delay(layer4, "layer5")
        # Stage 6: requantization; the neuron's index, word and lane within its layer.
        q6 = Signal(signed(width), reset_less=True)
        v6 = delay(done5, "v6")
        layer6 = delay(layer5, "layer6")
        idx6 = Signal(range(max(omax, 2)), reset_less=True)
        word6 = Signal(range(max(cmax, 2)), reset_less=True)
        lane6 = Signal(range(max(lanes, 2)), reset_less=True)
        with m.If(done5):
            m.d.sync += q6.eq(saturate(round_select(acc, layer5, list(spec.forward_shifts)), width))
            with m.If(nfirst5):
                m.d.sync += [idx6.eq(0), word6.eq(0), lane6.eq(0)]
            with m.Else():
                m.d.sync += [idx6.eq(idx6 + 1), lane6.eq(lane6 + 1)]
                with m.If(lane6 == lanes - 1):
                    m.d.sync += [lane6.eq(0), word6.eq(word6 + 1)]

        # Hidden layers: the forward unit's training build; y to the next activation region,
        # the mask bit to the mask memory.
        if self._stash == "mask":
            fwd = Forward(width, 1, train=True, threshold=spec.threshold)
        else:
            fwd = Forward(width, 1)  # the z build keeps q itself, compared later
        m.submodules.fwd = fwd
        m.d.comb += [
            fwd.i.valid.eq(v6 & (layer6 != layers - 1)),
            fwd.i.payload.z[0].eq(q6),
            fwd.o.ready.eq(1),  # never stalls: the memories take a write every cycle
        ]
        f_word, f_lane, f_layer, f_q = delayed(m, (word6, lane6, layer6, q6), fwd.latency)
        stashed = fwd.o.payload.mask[0] if self._stash == "mask" else f_q
        with m.If(fwd.o.valid):
            m.d.comb += [
                a_wr.addr.eq(const_array(abase + [0])[f_layer + 1] + f_word),
                a_wr.data.eq(Value.cast(fwd.o.payload.y[0]).replicate(lanes)),
                a_wr.en.eq(Const(1, lanes) << f_lane),
                m_wr.addr.eq(const_array(mbase + [0])[f_layer] + f_word),
                m_wr.data.eq(Value.cast(stashed).replicate(lanes)),
                m_wr.en.eq(Const(1, lanes) << f_lane),
            ]

        # Last layer: logits, running argmax, output error e into the delta registers.
        with m.If(self.o.ready):
            m.d.sync += self.o.valid.eq(0)
        with m.If(v6 & (layer6 == layers - 1)):
            logit_argmax(m, self.o.payload, q6, idx6, width)
            onehot = Mux(idx6 == label, fixed.TARGET, 0)
            m.d.sync += d_arr[idx6].eq(requantize(q6 - onehot, 0, width))
            with m.If(idx6 == self._classes - 1):
                m.d.sync += [self.o.valid.eq(1), self.o.payload.skipped.eq(skip)]

        # Deltas: requantize the accumulators, mask them (backward unit), store them as d.
        dchunk1 = delay(chunk, "dchunk1")
        dlayer1 = delay(layer, "dlayer1")
        dv1 = delay(delta, "dv1")
        m.d.comb += m_rd.addr.eq(const_array([0] + mbase)[layer] + chunk)
        if self._stash == "mask":
            bunit = Backward(width, lanes, stash="mask")
        else:
            bunit = Backward(width, lanes, stash="z", width=width, threshold=spec.threshold)
        m.submodules.bwd = bunit
        dshifts = [0, *spec.delta_shifts]
        m.d.comb += [
            bunit.i.valid.eq(dv1),
            getattr(bunit.i.payload, self._stash).eq(m_rd.data),
            bunit.o.ready.eq(1),
        ]
        for k in range(lanes):
            m.d.comb += bunit.i.payload.g[k].eq(
                saturate(round_select(gacc[dchunk1][k], dlayer1, dshifts), width)
            )
        with m.If(dv1):
            for k in range(lanes):
                m.d.sync += gacc[dchunk1][k].eq(0)
        dchunk2 = delay(dchunk1, "dchunk2")
        assert bunit.latency == fwd.latency == _UNIT_LATENCY, "unit latency changed: update drains"
        with m.If(bunit.o.valid):
            for k in range(lanes):
                m.d.sync += d_arr[dchunk2 * lanes + k].eq(bunit.o.payload.dz[k])

        # Loads (between samples only).
        with m.If(self.load.valid & self.load.ready):
            addr, value = self.load.payload.addr, self.load.payload.data
            with m.If(addr < n_w):
                m.d.comb += [w_wr.addr.eq(addr), w_wr.data.eq(value), w_wr.en.eq(1)]
            with m.Else():
                m.d.comb += [b_wr.addr.eq(addr - n_w), b_wr.data.eq(value), b_wr.en.eq(1)]
        return m
