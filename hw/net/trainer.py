"""The integer training engine: ``golden.intnet.IntNet.step`` on chip, bit for bit, for a chain
of 2-D convolutions followed by dense layers (``golden.layers``; the last layer dense).

One sample per step (batch 1), one sequential datapath, ``lanes`` (``P``) lanes, built from the
engine core (``hw.net.core``) as the inference engine is: its forward pass is the inference
engine's (the same loop nests, pipeline sideband, conv group accumulators and write-back), and
the backward passes below are what this engine adds. The rules are ``golden.fixed``'s, applied
to Amaranth values (``hw.net.requant.rule``): the shadows (``shadow_weights``), the output error
(``loss_gradient``), every requantization and the updates (``update``). A step is:

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
4. **Backward**, layer by layer from the last: one pass over the layer's weight words in column
   order (per input word, every neuron: ``core.DenseNest.column_step``) reads each word once
   and, in the same cycle, (a) multiplies its shadows by the neuron's delta ``d[o]`` and adds
   them into ``P`` accumulators, one per input of the column (``W.T @ d`` through the same weight
   RAM: no transposed copy; the shadows are the ones before the update, as golden), and (b)
   forms the exact products ``d[o] * a[j]`` and writes back the updated masters
   ``saturate(master - scale_shift(grad, grad_shift))`` (``golden.fixed.update``) to the word it
   read; the neuron's bias is updated the same way in the first column. As each column ends,
   its sums are requantized with the layer's delta shift and go through the backward-mask unit
   ``hw.units.backward.Backward(stash="mask")`` with the column's mask bits into the delta
   memory: the next layer's delta ``d``, which its pass reads back a code a cycle.

**Conv layers** (``golden.netimage``: one master word per (group of ``P`` output channels, tap,
input channel), lane ``k`` output channel ``g * P + k``; ``P`` biases per group):

- Forward as the inference engine's conv loop nest (``hw.net.mlp``): per output position and
  group, one cycle per (tap, input channel), at least ``P``; one input code (0 at padding)
  broadcast to ``P`` shadows into ``P`` accumulators, the biases entering one a cycle; the ``P``
  codes requantized together, through the forward unit (``P`` lanes), written as one activation
  word and one word of ``P`` mask bits.
- A dense layer after a conv reads the conv's map in its activation layout
  (``golden.layers.word_index``) and sends its delta ``W.T @ d`` into the **delta memory**, one
  activation-layout word region per conv map.
- Backward of conv layer ``l`` (its output deltas in the delta memory): first, above layer 0, the
  **delta pass**, the transposed convolution in gather form, with the shadows before the update:
  per input position ``q`` and channel ``c``, over the taps of the right stride phase (``ky =
  (qy + pad) mod stride, + stride, ...``; a tap whose output position lies outside the map
  multiplies 0) and the groups, the dot product of shadow word ``(g, tap, c)`` with delta word
  ``(p(q, tap), g)`` through the forward adder tree and accumulator; requantized with the
  delta shift, masked with the stash bit (backward unit, lane 0), written into the lower map's
  delta region. Then the **gradient pass**: per (group, tap, input channel), one cycle per
  output position, ``P`` exact products ``d[p, g*P+k] * a[window(p, tap), c]`` into ``P``
  accumulators, and after the last position the master word written back once (``update``;
  padding lanes unchanged); on the group's first word the deltas are summed per lane, and ``P``
  bias cycles follow the group's words (one bias read and written a cycle).

The shadows are never stored: they are derived from the masters on every read, so an update
changes master and shadow at once and the shadow always equals ``shadow_weights(master)``.

Memories (``amaranth.lib.memory.Memory``): masters, one word of ``P`` int16 codes per (layer,
neuron, chunk); biases, one int32 per neuron; activations, one region of ``P``-code words per
layer input; the mask memory, ``P`` bits per word, one region per hidden layer; the delta
memory, one region of ``P``-code words per hidden layer output (dense and conv). Registers hold
only the output error (one code per class) and one column of ``P`` ``W.T @ d`` accumulators.
The mask stash takes one bit per hidden element where stashing the pre-activation ``z`` would
take ``ACT_WIDTH`` (:attr:`Trainer.mask_bits` against :attr:`Trainer.z_stash_bits`).

Exactness: golden sums in int64. The forward accumulator here is wide enough for an int32 bias
plus any sum of int8 shadows times inputs (:attr:`Trainer.acc_width`, 33 bits for the digits
net), and the delta accumulators for any sum of int8 deltas times int8 shadows, so no reachable
state overflows; every rounding is ``golden.fixed``'s, applied to Amaranth values.

Timing (full rate, :attr:`Trainer.cycles_per_sample`): ``C_0`` input cycles, ``S`` forward
issue cycles (``S = sum_l out_l * C_l`` for dense layers, one weight word each; a conv layer
its loop nest, ``positions * groups * max(taps * c_in, P)``), ``S`` backward issue cycles for
the dense layers, and fixed drains between phases; a conv layer adds its gradient pass,
``groups * (fan_in * positions + P)`` (``MACs / P`` plus the biases), and above layer 0 its delta
pass (per input position, channel and group, its stride-phase taps: ``MACs / P`` for whole
groups, :meth:`Trainer.conv_delta_cycles`). Digits CNN at ``P = 8``: 8,827 cycles a step
against the ideal 9,024; the 64-32-32-10 MLP: 892 against 1,016. A dense layer's backward pass
does ``2 P`` multiplies a cycle (``P`` for the deltas, ``P`` for the gradients), so a step takes
fewer cycles than the ideal "forward, backward-delta and weight-gradient multiplies divided by
``P``" (:attr:`Trainer.ideal_cycles`).
"""

from dataclasses import dataclass

import numpy as np
from amaranth.hdl import Array, Cat, Const, Module, Mux, Signal, signed, unsigned
from amaranth.lib import data, stream, wiring
from amaranth.lib.wiring import In, Out
from amaranth.utils import bits_for, ceil_log2

from helu.golden import fixed, netimage
from helu.golden.layers import Conv2d, Dense, word_index
from helu.golden.netimage import DIGEST_WIDTH, Image
from helu.hw.net.core import (
    ConvNest,
    DenseNest,
    Stage,
    check_stages,
    conv_group,
    counter,
    delayed,
    load_port,
    logit_argmax,
    memory,
    partial_sums,
    place,
    write_code,
)
from helu.hw.net.mac import check_dsp, products
from helu.hw.net.requant import align, round_select, rule, saturate, select
from helu.hw.units import check_lanes, check_threshold, refusal, unelaborated
from helu.hw.units.backward import STASH_KINDS, Backward
from helu.hw.units.forward import Forward

__all__ = ["Trainer", "TrainSpec"]

# Issue to requantized code visible: read data, shadows, products, their sum, accumulator, code.
_FWD_STAGES = 6
# Issue to delta accumulation: read data, shadows, products.
_BWD_STAGES = 3
# Issue to master and bias write: one stage past the products, the update split before its
# saturation (golden.fixed.update: descent, then saturate).
_WRITE_STAGE = _BWD_STAGES + 1
# Issue to a column's deltas at the backward-mask unit: accumulated, rounded, saturated.
_DELTA_STAGES = _BWD_STAGES + 2


def _int(value) -> bool:
    return isinstance(value, (int, np.integer)) and not isinstance(value, bool)


def _dense_ops(masters) -> tuple:
    return tuple(Dense(int(np.shape(m)[1]), int(np.shape(m)[0])) for m in masters)


@dataclass(frozen=True)
class TrainSpec:
    """What the engine is built for: the initial state and every scale of ``IntNet``'s step.

    ``masters[l]`` (out_channels, fan_in) int16 and ``biases[l]`` (out_channels,) int32 (the
    memories' initial contents); the shifts of ``golden.intnet.Scales`` (``forward_shifts``,
    ``delta_shifts``, ``grad_shifts``, ``bias_shifts``), built in as constants; the HeLU threshold
    ``T``; ``input_max``: inputs lie in ``[-input_max, input_max]``; ``ops``: the layers'
    geometry (``golden.layers`` ops: convolutions first, then dense layers, the last dense),
    empty for a dense chain read from the masters' shapes.
    """

    masters: tuple
    biases: tuple
    forward_shifts: tuple
    delta_shifts: tuple
    grad_shifts: tuple
    bias_shifts: tuple
    threshold: int
    input_max: int = 16
    ops: tuple = ()

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
            tuple(net.ops),
        )

    @property
    def layer_ops(self) -> tuple:
        """The ops (``ops``, or dense layers from the masters' shapes)."""
        return tuple(self.ops) if self.ops else _dense_ops(self.masters)

    @property
    def sizes(self) -> tuple[int, ...]:
        """Activation sizes: the input's, then every layer's output (flat HWC)."""
        ops = self.layer_ops
        return (ops[0].in_size, *(op.out_size for op in ops))

    def check(self) -> "TrainSpec":
        """Raise ``ValueError``/``TypeError`` naming what is wrong; returns ``self``."""
        n = len(self.masters)
        if n < 2:
            raise ValueError(f"The training engine needs at least 2 layers (a hidden one), not {n}")
        if len(self.biases) != n:
            raise ValueError(f"{n} weight layers but {len(self.biases)} bias vectors")
        ops = list(self.ops)
        if ops and len(ops) != n:
            raise ValueError(f"{n} weight layers but {len(ops)} layer ops")
        for i, op in enumerate(ops):
            if not isinstance(op, (Dense, Conv2d)):
                raise TypeError(f"layer {i}: a golden.layers op, not {op!r}")
            if i and isinstance(op, Conv2d) and isinstance(ops[i - 1], Dense):
                raise ValueError(f"layer {i}: a convolution after a dense layer")
            if i and op.in_size != ops[i - 1].out_size:
                raise ValueError(
                    f"layer {i} ({op.describe()}) takes {op.in_size} inputs, the layer before "
                    f"gives {ops[i - 1].out_size}"
                )
        if ops and not isinstance(ops[-1], Dense):
            raise ValueError(f"the last layer is a {ops[-1].describe()}: it must be dense")
        fan_in = None
        for i, (w, b) in enumerate(zip(self.masters, self.biases, strict=True)):
            w, b = np.asarray(w), np.asarray(b)
            if w.ndim != 2 or not np.issubdtype(w.dtype, np.integer):
                raise ValueError(f"layer {i}: masters must be a 2-D integer array, not {w.shape}")
            dense = not ops or isinstance(ops[i], Dense)
            if dense and fan_in is not None and w.shape[1] != fan_in:
                raise ValueError(
                    f"layer {i} takes {w.shape[1]} inputs, the layer before has {fan_in}"
                )
            if ops and w.shape != (ops[i].out_channels, ops[i].fan_in):
                raise ValueError(
                    f"layer {i} ({ops[i].describe()}): masters must be "
                    f"{(ops[i].out_channels, ops[i].fan_in)}, not {w.shape}"
                )
            if b.shape != (w.shape[0],) or not np.issubdtype(b.dtype, np.integer):
                raise ValueError(f"layer {i}: biases must be {w.shape[0]} integers, not {b.shape}")
            for name, a, width in (("master", w, fixed.MASTER_WIDTH), ("bias", b, fixed.ACC_WIDTH)):
                lo, hi = -(1 << (width - 1)), (1 << (width - 1)) - 1
                if a.size and (int(a.min()) < lo or int(a.max()) > hi):
                    raise ValueError(f"layer {i}: a {name} lies outside int{width}")
            fan_in = ops[i].out_size if ops else w.shape[0]
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


def _fold(value):
    """XOR of the ``DIGEST_WIDTH``-bit slices of ``value`` (zero-extended to whole slices)."""
    bits = value.shape().width
    parts = [value[i : i + DIGEST_WIDTH] for i in range(0, bits, DIGEST_WIDTH)]
    out = parts[0]
    for p in parts[1:]:
        out = out ^ p
    return out


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
    read_register : bool
        A register stage after every read of the pipeline's memories, for FPGAs whose block RAM
        is slow to its output: the ECP5's DP16KD as Yosys maps it (without its output register)
        takes 5.8 ns of a 10 ns cycle from clock to data. One more cycle in every drain, and a
        register per bit read (which the UP5K build has no room for). Same results.

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

    def __init__(self, spec, lanes=8, *, stash="mask", dsp=None, read_register=False, src_loc_at=0):
        with refusal(self):
            check_dsp(dsp)
            if not isinstance(spec, TrainSpec):
                raise TypeError(f"Trainer needs a TrainSpec, not {spec!r}")
            spec.check()
            check_lanes(lanes)
            if stash not in STASH_KINDS:
                raise ValueError(f"Stash must be one of {', '.join(STASH_KINDS)}, not {stash!r}")
            if not isinstance(read_register, bool):
                raise TypeError(f"read_register must be True or False, not {read_register!r}")
        self._read_register = read_register
        self._stash = stash
        self._dsp = dsp
        self._spec = spec
        self._lanes = lanes
        self._ops = list(spec.layer_ops)
        self._plans = netimage.plans(self._ops, lanes)
        self._image = netimage.training_image(spec.masters, spec.biases, lanes, self._ops)
        sizes = spec.sizes
        self._classes = sizes[-1]
        # Dense layers: input words per neuron; every layer: the words its input takes.
        self._chunks = [p.in_words for p in self._plans]
        # The drains wait for the units between the passes: their latencies, read from builds
        # of them (elaborate() builds the ones it instantiates).
        self._fwd_latency = unelaborated(self._forward_unit()).latency
        self._bwd_latency = unelaborated(self._backward_unit()).latency
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
    def ops(self) -> list:
        """The layers' ``golden.layers`` ops (what ``netimage.decode`` and ``digest`` take)."""
        return list(self._ops)

    @property
    def input_transfers(self) -> int:
        return self._plans[0].in_words

    @property
    def input_index(self) -> np.ndarray:
        """(input_transfers, P): the flat input index in each lane of each transfer, -1 padding
        (``golden.layers.word_index`` of the first layer's input)."""
        return word_index(self._plans[0].in_shape, self._lanes)

    @property
    def macs(self) -> int:
        """Forward multiply-accumulates of one sample (the model's, a convolution's padding taps
        included, the engine's padding lanes not)."""
        return sum(op.macs for op in self._ops)

    @property
    def ideal_cycles(self) -> float:
        """(forward + backward-delta + weight-gradient multiplies) / P for one sample: the
        backward-delta multiplies are those of every layer but the first (a convolution's
        transposed convolution has its forward MACs)."""
        delta = sum(op.macs for op in self._ops[1:])
        return (2 * self.macs + delta) / self._lanes

    @property
    def fwd_drain(self) -> int:
        """Idle cycles after a forward layer's last issue (its last activation is written)."""
        return _FWD_STAGES + self._read_register + self._fwd_latency

    @property
    def bwd_drain(self) -> int:
        """Idle cycles after a backward pass's last issue: its last write has landed and been
        folded into the digest (one register stage after the write)."""
        return _WRITE_STAGE + self._read_register + 1

    @property
    def delta_drain(self) -> int:
        """Idle cycles after a dense backward pass above layer 0: its last column's deltas
        (accumulated at stage 3, rounded at 4, saturated at 5, the backward-mask unit) written
        to dmem."""
        return _DELTA_STAGES + self._read_register + 1 + self._bwd_latency

    def conv_delta_cycles(self, plan) -> int:
        """Issue cycles of a conv layer's delta pass (the transposed convolution, gathered): per
        input position and channel, per group, its taps of the right phase (``ceil`` over the
        stride: taps whose output position would be fractional are never issued; those past the
        map's edge are issued, multiplying 0), at least one."""
        op = plan.op
        h, w, c = op.in_shape
        k, s, p = op.kernel, op.stride, op.padding

        def taps(n):
            return [max(1, len(range((q + p) % s, k, s))) for q in range(n)]

        return c * plan.groups * sum(taps(h)) * sum(taps(w))

    def conv_grad_cycles(self, plan) -> int:
        """Issue cycles of a conv layer's weight-gradient pass: per (group, tap, input channel)
        one cycle per output position (``MACs / P`` for whole groups), then ``P`` bias cycles
        per group."""
        return plan.groups * (plan.op.fan_in * plan.op.positions + self._lanes)

    @property
    def cycles_per_sample(self) -> int:
        """Cycles per training step at full rate (input always valid, output always ready).

        ``input_transfers`` + forward issues (``hw.net.mlp``'s loop nests) + ``L`` forward drains
        + 1 (the output register) + per dense layer ``out * in_words`` (one pass in column
        order: deltas and gradients) + ``bwd_drain`` (layer 0) or ``delta_drain`` (above: the
        last column's deltas written) + per conv layer :meth:`conv_grad_cycles` + ``bwd_drain``
        and, above layer 0, :meth:`conv_delta_cycles`.
        """
        plans, layers = self._plans, len(self._plans)
        cycles = self.input_transfers + sum(p.issues for p in plans)
        cycles += layers * self.fwd_drain + 1
        for i, p in enumerate(plans):
            if p.conv:
                cycles += self.conv_grad_cycles(p) + self.bwd_drain
                cycles += self.conv_delta_cycles(p) if i else 0
            else:
                cycles += p.outs * p.chunks + (self.delta_drain if i else self.bwd_drain)
        return cycles

    @property
    def dsp(self):
        """The multiplier build (``hw.net.mac.DSPS``): ``None`` generic, ``"sb_mac16"``."""
        return self._dsp

    @property
    def read_register(self) -> bool:
        """Whether a register stage follows every read of the pipeline's memories (one more
        cycle in every drain)."""
        return self._read_register

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
        """Forward accumulator bits: any int32 bias plus any sum of shadow x input products; and
        any conv delta sum (int8 deltas x int8 shadows over taps and output channels)."""
        act_max = (1 << (fixed.ACT_WIDTH - 1)) - 1
        fan_in = max(op.fan_in for op in self._ops)
        bound = fixed.accumulator_bound(
            fan_in, max(act_max, self._spec.input_max), act_max + 1, 1 << 31
        )
        most = 1 << (fixed.ACT_WIDTH - 1)
        for p in self._plans[1:]:
            if p.conv:
                bound = max(bound, p.op.kernel**2 * p.groups * self._lanes * most * most)
        return bits_for(bound) + 1

    @property
    def delta_width(self) -> int:
        """Delta accumulator bits: any sum of int8 delta x int8 shadow over a dense layer's
        outputs (``W.T @ d`` of the dense layers above the first)."""
        most = 1 << (fixed.ACT_WIDTH - 1)
        outs = [p.outs for p in self._plans[1:] if not p.conv]
        return bits_for(max(outs) * most * most) + 1

    @property
    def grad_width(self) -> int:
        """Conv weight-gradient accumulator bits: any sum of int8 delta x int8 input over the
        output positions."""
        most = 1 << (fixed.ACT_WIDTH - 1)
        positions = max([p.op.positions for p in self._plans if p.conv] or [1])
        return bits_for(positions * most * most) + 1

    def _forward_unit(self):
        """A new build of the forward unit: the training build, which also gives the mask (or,
        for the ``z`` stash, the inference build: the backward unit compares ``z`` itself); ``P``
        lanes when the net has convolutions, whose groups leave ``P`` codes at once."""
        lanes = self._lanes if any(p.conv for p in self._plans) else 1
        if self._stash == "mask":
            return Forward(fixed.ACT_WIDTH, lanes, train=True, threshold=self._spec.threshold)
        return Forward(fixed.ACT_WIDTH, lanes)

    def _backward_unit(self):
        """A new build of the backward-mask unit, ``P`` lanes, for this build's stash."""
        if self._stash == "mask":
            return Backward(fixed.ACT_WIDTH, self._lanes, stash="mask")
        return Backward(fixed.ACT_WIDTH, self._lanes, stash="z", width=fixed.ACT_WIDTH,
                        threshold=self._spec.threshold)  # fmt: skip

    # Design ------------------------------------------------------------------------------------

    def elaborate(self, platform):
        m = Module()
        spec, lanes, width = self._spec, self._lanes, fixed.ACT_WIDTH
        mw = fixed.MASTER_WIDTH
        plans, img = self._plans, self._image
        layers = len(plans)
        outs = [p.outs for p in plans]
        in_words = [p.in_words for p in plans]
        out_words = [p.out_words for p in plans]
        n_w, n_b = len(img.weights), len(img.biases)
        wbase = [p.wbase for p in plans]
        bbase = [p.bbase for p in plans]
        abase = [sum(in_words[:i]) for i in range(layers)]
        # Mask region of hidden layer l (its output map, in the activation layout).
        mbase = [sum(out_words[:i]) for i in range(layers - 1)]
        convs = [p for p in plans if p.conv]  # the first layers
        nc = len(convs)
        # Delta region of hidden layer l (its output's deltas, in its activation layout);
        # dprev[l]: layer l - 1's, where layer l's backward pass writes.
        dbase = [sum(out_words[:i]) for i in range(layers - 1)]
        dprev = [0] + dbase
        cmax, omax = max(in_words), max(max(outs), 1)

        # Memories ----------------------------------------------------------------------------
        w_rd, w_wr = memory(m, "wmem", unsigned(mw * lanes), n_w, img.weights)
        b_rd, b_wr = memory(m, "bmem", unsigned(fixed.ACC_WIDTH), n_b, img.biases)
        a_rd, a_wr = memory(m, "amem", unsigned(width * lanes), sum(in_words), granularity=width)
        # The stash: one mask bit, or the int8 z, per hidden element.
        sbits = 1 if self._stash == "mask" else width
        m_rd, m_wr = memory(
            m, "mmem", unsigned(sbits * lanes), sum(out_words[:-1]), granularity=sbits
        )
        if layers > 1:
            # The deltas of the hidden layers' outputs, in their activation layout: a dense
            # layer's backward pass writes its input's deltas a word at a time as each column
            # of its weights ends, and the pass below reads them back a code a cycle.
            d_rd, d_wr = memory(
                m, "dmem", unsigned(width * lanes), sum(out_words[:-1]), granularity=width
            )

        def const_array(values, shape=None):
            shape = shape or range(max(max(values), 1) + 1)
            return Array(Const(v, shape) for v in values)

        # Sequencer ---------------------------------------------------------------------------
        layer = Signal(range(max(layers, 2)))
        dense = DenseNest(plans, layer, cmax)
        neuron, chunk = dense.neuron, dense.chunk
        w_addr = Signal(range(max(n_w, 2)))
        b_addr = Signal(range(max(n_b, 2)))
        wait = Signal(range(max(self.fwd_drain, self.bwd_drain, self.delta_drain) + 1))
        label = Signal.like(self.i.payload.label)
        skip = Signal()
        idle, issue, bwd = Signal(), Signal(), Signal()
        rpend = Signal()  # a read was taken; its data is captured next cycle
        # What the datapath sees of an issue: its first and last cycle of an accumulation.
        s_first, s_last = Signal(), Signal()
        m.d.comb += [s_first.eq(chunk == 0), s_last.eq(dense.last_chunk)]

        # The output error, one register per class (the hidden layers' deltas are in dmem),
        # and where the backward pass's neuron finds its delta there: word and lane.
        d_arr = Array(
            Signal(signed(width), name=f"d{n}", reset_less=True) for n in range(self._classes)
        )
        nword, nlane = counter(max(cmax, omax), "nword"), counter(lanes, "nlane")

        m.d.comb += [
            w_rd.addr.eq(w_addr),
            b_rd.addr.eq(b_addr),
            a_rd.addr.eq(const_array(abase)[layer] + chunk),
        ]
        if layers > 1:
            with m.If(bwd):  # the neuron's delta (a hidden layer's: the last has d_arr)
                m.d.comb += d_rd.addr.eq(const_array(dbase + [0])[layer] + nword)

        # Valid lanes of the dense layers' input words (padding lanes keep their master 0).
        def lane_mask(plan):
            index = word_index(plan.in_shape, lanes)
            bits = [sum(1 << k for k in range(lanes) if row[k] >= 0) for row in index]
            full = (1 << lanes) - 1
            if all(b == full for b in bits):
                return Const(full, lanes)
            return select(chunk, [Const(b, lanes) for b in bits])

        lane_ok = Signal(lanes)
        m.d.comb += lane_ok.eq(select(layer, [lane_mask(p) for p in plans]))

        # What travels down the pipeline beside an issue (its sideband, hw.net.core.Stage).
        issued = dict(v=issue, bwd=bwd, first=s_first, last=s_last, nfirst=neuron == 0,
                      nlast=dense.last_neuron, layer=layer, okmask=lane_ok, waddr=w_addr,
                      baddr=b_addr, chunk=chunk, err=d_arr[neuron], nlane=nlane)  # fmt: skip

        # Conv loop nests ---------------------------------------------------------------------
        conv_issue = Signal()  # forward (the engine core's loop nest, as the inference engine)
        cd_issue, cd_valid = Signal(), Signal()  # delta pass: an issue, a tap inside the map
        cg_issue, cb_issue = Signal(), Signal()  # gradient pass: a product, a bias update
        cd_word, cd_lane = Signal(range(max(cmax, 2))), Signal(range(max(lanes, 2)))
        delta_counters, grad_counters = [], []
        if convs:
            conv = ConvNest(convs, lanes, layer, b_addr.shape())
            per_conv, const = conv.per_conv, conv.const
            gbias = conv.gbias  # the group's first bias word, in every conv pass
            kmax = max(p.op.kernel for p in convs)
            cin_max = max(p.op.in_shape[2] for p in convs)
            cw_max = max(conv.in_words(p.op) for p in convs)
            gmax = max(p.groups for p in convs)
            hmax = max(max(p.op.in_shape[:2]) for p in convs)
            issued |= conv.issue(conv_issue)

            # Delta pass (conv layers above the first): input position (qy, qx), channel dc,
            # then the taps of the right phase (ky = ky0 + stride * oky) and the groups.
            qy, qx = counter(hmax, "qy"), counter(hmax, "qx")
            dc, dcw, dcl = counter(cin_max, "dc"), counter(cw_max, "dcw"), counter(lanes, "dcl")
            oky, okx = counter(kmax, "oky"), counter(kmax, "okx")
            dg = counter(gmax, "dg")
            delta_counters = [qy, qx, dc, dcw, dcl, oky, okx, dg]

            def tap(q, ok, p):
                s, pad = p.op.stride, p.op.padding
                return ok if s == 1 else Cat((q + pad)[0], ok)

            dky = per_conv(lambda p: tap(qy, oky, p))
            dkx = per_conv(lambda p: tap(qx, okx, p))

            def out_pos(q, k, p, n):
                t = q + const(p.op.padding) - k
                pos = t if p.op.stride == 1 else t >> 1
                return (t >= 0) & (pos < n), pos

            vy = per_conv(lambda p: out_pos(qy, dky, p, p.op.out_shape[0])[0])
            vx = per_conv(lambda p: out_pos(qx, dkx, p, p.op.out_shape[1])[0])
            py = per_conv(lambda p: out_pos(qy, dky, p, 0)[1])
            px = per_conv(lambda p: out_pos(qx, dkx, p, 0)[1])
            kk = per_conv(lambda p: const(p.op.kernel))
            ky_last = per_conv(lambda p: dky + p.op.stride >= p.op.kernel)
            kx_last = per_conv(lambda p: dkx + p.op.stride >= p.op.kernel)
            dg_last = dg == per_conv(lambda p: Const(p.groups - 1))
            m.d.comb += cd_valid.eq(cd_issue & (dky < kk) & (dkx < kk) & vy & vx)
            m.d.comb += [
                cd_word.eq(per_conv(lambda p: (qy * p.op.in_shape[1] + qx)
                                    * conv.in_words(p.op) + dcw)),
                cd_lane.eq(dcl),
            ]  # fmt: skip

            # Gradient pass: group gg, then (gky, gkx, gc) (a master word: w_addr), then the
            # output position (goy, gox) innermost; then P bias cycles (bk) per group.
            gg = counter(gmax, "gg")
            gj = counter(max(p.op.fan_in for p in convs), "gj")
            gky, gkx = counter(kmax, "gky"), counter(kmax, "gkx")
            gc, gcw, gcl = counter(cin_max, "gc"), counter(cw_max, "gcw"), counter(lanes, "gcl")
            goy, gox = counter(hmax, "goy"), counter(hmax, "gox")
            gpos = counter(max(p.op.positions for p in convs), "gpos")
            gbp, bk = Signal(), counter(lanes, "bk")
            grad_counters = [gg, gj, gky, gkx, gc, gcw, gcl, goy, gox, gpos, gbp, bk]
            g_inside, g_word = conv.window(goy, gox, gky, gkx, gcw)
            issued |= dict(cd=cd_issue, cdv=cd_valid, cd_word=cd_word, cd_lane=cd_lane,
                           gv=cg_issue, bv=cb_issue, gfirst=gpos == 0,
                           glast=gpos == per_conv(lambda p: p.op.positions - 1), gb0=gj == 0,
                           gin=g_inside, glane=gcl, gg=gg, bk=bk, gbaddr=gbias + bk)  # fmt: skip

            with m.If(conv_issue):
                m.d.comb += [
                    a_rd.addr.eq(const_array(abase)[layer] + conv.word[: len(a_rd.addr)]),
                    b_rd.addr.eq(gbias + conv.j),
                ]
            with m.If(cd_issue):
                m.d.comb += [
                    w_rd.addr.eq(per_conv(lambda p: p.wbase + dg * p.op.fan_in
                                          + (dky * p.op.kernel + dkx) * p.op.in_shape[2] + dc)),
                    d_rd.addr.eq(per_conv(lambda p: dbase[convs.index(p)]
                                          + (py * p.op.out_shape[1] + px) * p.groups + dg)),
                    s_first.eq((oky == 0) & (okx == 0) & (dg == 0)),
                    s_last.eq(ky_last & kx_last & dg_last),
                ]  # fmt: skip
            with m.If(cg_issue):
                m.d.comb += [
                    a_rd.addr.eq(const_array(abase)[layer] + g_word[: len(a_rd.addr)]),
                    d_rd.addr.eq(per_conv(lambda p: dbase[convs.index(p)] + gpos * p.groups + gg)),
                ]
            with m.If(cb_issue):
                m.d.comb += b_rd.addr.eq(gbias + bk)
        side = Stage(m, **issued)

        def start_conv(index, backward):
            """Counters for conv layer ``index``: forward, or its delta and gradient passes."""
            bias = select(index, [Const(b, len(gbias)) for b in bbase])
            stmts = conv.start(bias) if not backward else [gbias.eq(bias)]
            stmts += [s.eq(0) for s in (grad_counters + delta_counters if backward else [])]
            return stmts + [w_addr.eq(select(index, [Const(b, len(w_addr)) for b in wbase]))]

        def backward_conv(index):
            """Enter the backward passes of conv layer ``index``: deltas first (above layer 0;
            with the shadows before the update), then the gradients."""
            m.d.sync += start_conv(index, True)
            with m.If(index == 0):
                m.next = "CGRAD"
            with m.Else():
                m.next = "CDELTA"

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
                            *dense.start(),
                            w_addr.eq(0),
                            b_addr.eq(0),
                        ]
                        if plans[0].conv:
                            m.d.sync += start_conv(0, False)
                            m.next = "CONV"
                        else:
                            m.next = "FRUN"
            with m.State("FRUN"):
                m.d.comb += issue.eq(1)
                with dense.step(m, w_addr, b_addr):
                    m.d.sync += wait.eq(self.fwd_drain - 1)
                    m.next = "FDRAIN"
            if convs:
                with m.State("CONV"):
                    m.d.comb += conv_issue.eq(1)
                    with conv.step(m, side.creal, w_addr):
                        m.d.sync += wait.eq(self.fwd_drain - 1)
                        m.next = "FDRAIN"
                with m.State("CDELTA"):
                    m.d.comb += [issue.eq(1), cd_issue.eq(1)]
                    m.d.sync += dg.eq(dg + 1)
                    with m.If(dg_last):
                        m.d.sync += [dg.eq(0), okx.eq(okx + 1)]
                        with m.If(kx_last):
                            m.d.sync += [okx.eq(0), oky.eq(oky + 1)]
                            with m.If(ky_last):
                                # This (position, channel) is done: the next one.
                                m.d.sync += [oky.eq(0), dc.eq(dc + 1), dcl.eq(dcl + 1)]
                                with m.If(dcl == lanes - 1):
                                    m.d.sync += [dcl.eq(0), dcw.eq(dcw + 1)]
                                with m.If(dc == per_conv(lambda p: p.op.in_shape[2] - 1)):
                                    m.d.sync += [dc.eq(0), dcl.eq(0), dcw.eq(0), qx.eq(qx + 1)]
                                    with m.If(qx == per_conv(lambda p: p.op.in_shape[1] - 1)):
                                        m.d.sync += [qx.eq(0), qy.eq(qy + 1)]
                                        with m.If(qy == per_conv(lambda p: p.op.in_shape[0] - 1)):
                                            # No drain: the gradient pass neither reads the
                                            # deltas written here nor uses this pipeline.
                                            m.d.sync += qy.eq(0)
                                            m.next = "CGRAD"
                with m.State("CGRAD"):
                    with m.If(~gbp):
                        m.d.comb += cg_issue.eq(1)
                        m.d.sync += [gpos.eq(gpos + 1), gox.eq(gox + 1)]
                        with m.If(gox == per_conv(lambda p: p.op.out_shape[1] - 1)):
                            m.d.sync += [gox.eq(0), goy.eq(goy + 1)]
                        with m.If(gpos == per_conv(lambda p: p.op.positions - 1)):
                            # The word's gradient is complete: the next master word.
                            m.d.sync += [gpos.eq(0), goy.eq(0), gox.eq(0), w_addr.eq(w_addr + 1)]
                            m.d.sync += [gj.eq(gj + 1), gc.eq(gc + 1), gcl.eq(gcl + 1)]
                            with m.If(gcl == lanes - 1):
                                m.d.sync += [gcl.eq(0), gcw.eq(gcw + 1)]
                            with m.If(gc == per_conv(lambda p: p.op.in_shape[2] - 1)):
                                m.d.sync += [gc.eq(0), gcl.eq(0), gcw.eq(0), gkx.eq(gkx + 1)]
                                with m.If(gkx == per_conv(lambda p: p.op.kernel - 1)):
                                    m.d.sync += [gkx.eq(0), gky.eq(gky + 1)]
                            with m.If(gj == per_conv(lambda p: p.op.fan_in - 1)):
                                m.d.sync += [gj.eq(0), gky.eq(0), gkx.eq(0), gbp.eq(1)]
                    with m.Else():
                        m.d.comb += cb_issue.eq(1)
                        m.d.sync += bk.eq(bk + 1)
                        with m.If(bk == lanes - 1):
                            m.d.sync += [bk.eq(0), gbp.eq(0), gg.eq(gg + 1),
                                         gbias.eq(gbias + lanes)]  # fmt: skip
                            with m.If(gg == per_conv(lambda p: p.groups - 1)):
                                m.d.sync += [gg.eq(0), wait.eq(self.bwd_drain - 1)]
                                m.next = "CGDRAIN"
                with m.State("CGDRAIN"):
                    m.d.sync += wait.eq(wait - 1)
                    with m.If(wait == 0):
                        with m.If(layer == 0):
                            m.next = "INPUT"
                        with m.Else():
                            m.d.sync += layer.eq(layer - 1)
                            backward_conv(layer - 1)
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
                        nxt = layer + 1
                        m.d.sync += [
                            layer.eq(nxt),
                            w_addr.eq(select(nxt, [Const(b, len(w_addr)) for b in wbase])),
                            b_addr.eq(select(nxt, [Const(b, len(b_addr)) for b in bbase])),
                        ]
                        with m.If(layer == layers - 2):
                            m.next = "OUTPUT"
                        with m.Else():
                            m.next = "FRUN"
                            if convs:
                                with m.If(nxt < nc):
                                    m.d.sync += start_conv(nxt, False)
                                    m.next = "CONV"
            with m.State("OUTPUT"):
                # The last layer writes the output register: wait until it is free.
                with m.If(~self.o.valid | self.o.ready):
                    m.next = "FRUN"
            with m.State("BRUN"):
                # Column order: per input word, every neuron (W.T @ d of that word complete at
                # the column's end), the neuron's delta read from dmem a code a cycle.
                m.d.comb += [issue.eq(1), bwd.eq(1)]
                m.d.sync += nlane.eq(nlane + 1)
                with m.If(nlane == lanes - 1):
                    m.d.sync += [nlane.eq(0), nword.eq(nword + 1)]
                with m.If(dense.last_neuron):
                    m.d.sync += [nlane.eq(0), nword.eq(0)]
                with dense.column_step(m, w_addr, b_addr, const_array(wbase)[layer],
                                       const_array(bbase)[layer]):  # fmt: skip
                    m.d.sync += wait.eq(Mux(layer == 0, self.bwd_drain, self.delta_drain) - 1)
                    m.next = "BDRAIN"
            with m.State("BDRAIN"):
                m.d.sync += wait.eq(wait - 1)
                with m.If(wait == 0):
                    with m.If(layer == 0):
                        m.next = "INPUT"
                    with m.Else():
                        m.d.sync += [
                            layer.eq(layer - 1),
                            w_addr.eq(const_array(wbase)[layer - 1]),
                            b_addr.eq(const_array(bbase)[layer - 1]),
                        ]
                        m.next = "BRUN"
                        if convs:
                            with m.If(layer - 1 < nc):
                                backward_conv(layer - 1)

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
        def lane(word, k, w):
            return word[k * w : (k + 1) * w].as_signed()

        # Stage 1: read data, with what was issued; with a read register, one stage later
        # (every stage below then carries an index one higher than its name says).
        s1 = side.next()
        reads = [w_rd.data, a_rd.data, b_rd.data] + ([d_rd.data] if layers > 1 else [])
        if self._read_register:
            reads = list(delayed(m, reads, 1))
            s1 = s1.next()
        w_data, a_data, b_data = reads[:3]
        d_data = reads[3] if layers > 1 else None

        # Stage 2: the shadows of the masters read (golden.fixed.shadow_weights), beside the
        # master word itself.
        sh2 = [Signal(signed(width), reset_less=True, name=f"sh{k}") for k in range(lanes)]
        for k, s in enumerate(sh2):
            m.d.sync += s.eq(rule(fixed.shadow_weights, lane(w_data, k, mw), width=width))
        # The backward pass's delta of the issue's neuron: the output error, or a hidden
        # layer's delta read from dmem.
        d1 = s1.err
        if layers > 1:
            hidden = d_data.word_select(s1.nlane, width).as_signed()
            d1 = Mux(s1.layer == layers - 1, s1.err, hidden)
        s2 = s1.next(wm=w_data, a=a_data, b=b_data.as_signed(), d=d1)
        dd2 = [Signal(signed(width), reset_less=True, name=f"dd{k}") for k in range(lanes)]
        bcast2 = Signal(signed(width))
        if convs:
            # A conv broadcasts one input code (0 at a padding tap) to every lane.
            m.d.comb += bcast2.eq(Mux(s2.cin, s2.a.word_select(s2.clane, width).as_signed(), 0))
            # The delta pass: the deltas of the tap's output position (0 outside the map).
            for k, s in enumerate(dd2):
                m.d.sync += s.eq(Mux(s1.cdv, lane(d_data, k, width), 0))
            # The gradient pass: delta x input code (exact), and the deltas for the biases.
            gd2 = [Signal(signed(width), reset_less=True, name=f"gd{k}") for k in range(lanes)]
            code = Mux(s1.gin, a_data.word_select(s1.glane, width).as_signed(), 0)
            deltas = [lane(d_data, k, width) for k in range(lanes)]
            gp2 = products(m, deltas, [code] * lanes, dsp=self._dsp, name="gp")
            m.d.sync += [g.eq(d) for g, d in zip(gd2, deltas, strict=True)]

        # Stage 3: products. Forward: shadow x input (a broadcast code in a conv). Backward:
        # shadow x delta (for W.T @ d; a conv's delta pass: shadow x the tap's delta word) and
        # delta x input (the weight gradient, exact int16).
        codes = [lane(s2.a, k, width) for k in range(lanes)]
        operands = [Mux(s2.bwd, s2.d, ak) for ak in codes]
        if convs:
            operands = [Mux(s2.cv, bcast2, Mux(s2.cd, dd2[k], op)) for k, op in enumerate(operands)]
        p3 = products(m, sh2, operands, dsp=self._dsp, name="p")
        g3 = products(m, [s2.d] * lanes, codes, dsp=self._dsp, name="g")
        s3 = s2.next(drop=("a",))

        # Conv gradient accumulators: per lane, the sum over positions of delta x input (gs)
        # and, on a group's first word, of the delta (bs, the bias gradient).
        cg3, bv3 = Const(0), Const(0)
        gsrc = list(g3)
        gok = [s3.okmask[k] for k in range(lanes)]
        bsrc, bok = s3.d, Const(1)
        baddr_w = s3.baddr
        if convs:
            gs = [Signal(signed(self.grad_width), reset_less=True, name=f"gs{k}")
                  for k in range(lanes)]  # fmt: skip
            bs = Array(Signal(signed(self.grad_width), reset_less=True, name=f"bs{k}")
                       for k in range(lanes))  # fmt: skip
            with m.If(s2.gv):
                for k in range(lanes):
                    m.d.sync += gs[k].eq(Mux(s2.gfirst, 0, gs[k]) + gp2[k])
                with m.If(s2.gb0):
                    for k in range(lanes):
                        m.d.sync += bs[k].eq(Mux(s2.gfirst, 0, bs[k]) + gd2[k])
            cg3, bv3 = s3.gv & s3.glast, s3.bv
            cout = select(s3.layer, [Const(p.op.out_channels, range(lanes * gmax + 1))
                                     for p in convs])  # fmt: skip
            gsrc = [Mux(cg3, gs[k], g3[k]) for k in range(lanes)]
            gok = [Mux(cg3, s3.gg * lanes + k < cout, s3.okmask[k]) for k in range(lanes)]
            bsrc = Mux(bv3, bs[s3.bk], s3.d)
            bok = Mux(bv3, s3.gg * lanes + s3.bk < cout, 1)
            baddr_w = Mux(bv3, s3.gbaddr, s3.baddr)

        # Backward, stage 3 continued: the updates (golden.fixed.update) up to their saturation,
        # fixed.descent: the masters' and the bias's; and accumulate W.T @ d.
        check_stages(s3, _BWD_STAGES + self._read_register)
        upd = s3.v & s3.bwd
        lane_fields = {}
        for k in range(lanes):
            grad, shift = align(gsrc[k], s3.layer, spec.grad_shifts)
            old = lane(s3.wm, k, mw)
            # Padding lanes (past the layer's inputs or output channels) keep their 0: they
            # meet stale activations.
            new = rule(fixed.descent, old, grad, shift, width=max(mw, len(grad)) + 2)
            lane_fields[f"new{k}_"] = Mux(gok[k], new, old)
        grad, shift = align(bsrc, s3.layer, spec.bias_shifts)
        acc_bits = fixed.ACC_WIDTH
        new = rule(fixed.descent, s3.b, grad, shift, width=max(acc_bits, len(grad)) + 2)
        new_bias = Mux(bok, new, s3.b)
        s4w = Stage(m, s3.index, wen=upd | cg3, ben=(upd & s3.first) | bv3, waddr=s3.waddr,
                    baddr=baddr_w, new_bias=new_bias, **lane_fields).next()  # fmt: skip
        # Stage 4: the saturation, and the writes back to the words read.
        new_lanes = [saturate(getattr(s4w, f"new{k}_"), mw) for k in range(lanes)]
        new_bias = saturate(s4w.new_bias, acc_bits)
        check_stages(s4w, _WRITE_STAGE + self._read_register)
        wen, ben = s4w.wen, s4w.ben
        with m.If(wen):
            m.d.comb += [w_wr.addr.eq(s4w.waddr), w_wr.data.eq(Cat(*new_lanes)), w_wr.en.eq(1)]
        with m.If(ben):
            m.d.comb += [b_wr.addr.eq(s4w.baddr), b_wr.data.eq(new_bias), b_wr.en.eq(1)]
        # The step's digest: every word is written exactly once per backward pass (padding lanes
        # with their 0), so folding the writes in their order digests the whole new state.
        # One register stage before the digest: the descent's path (subtract, saturate) would
        # otherwise run on through the fold into the digest.
        folded, fold_en = Signal(DIGEST_WIDTH), Signal()
        m.d.sync += [
            folded.eq(Mux(wen, _fold(Cat(*new_lanes)), 0) ^ Mux(ben, _fold(new_bias), 0)),
            fold_en.eq(wen | ben),
        ]
        with m.If(fold_en):
            m.d.sync += self.digest.eq(self.digest.rotate_left(1) ^ folded)
        # W.T @ d, one column at a time: P accumulators, for the input word of the column. The
        # column's first neuron overwrites them, so nothing clears them and a reset mid-step
        # leaves nothing behind; after its last neuron they hold the column's sums for one cycle
        # (stage 4), where they are requantized and masked into the deltas below.
        dw = self.delta_width
        gacc = [Signal(signed(dw), reset_less=True, name=f"gacc{k}") for k in range(lanes)]
        with m.If(upd & (s3.layer != 0)):
            for k in range(lanes):
                m.d.sync += gacc[k].eq(Mux(s3.nfirst, 0, gacc[k]) + p3[k])
        dv4, dchunk4, dlayer4 = Signal(), Signal.like(s3.chunk), Signal.like(s3.layer)
        m.d.sync += [
            dv4.eq(upd & s3.nlast & (s3.layer != 0)),
            dchunk4.eq(s3.chunk),
            dlayer4.eq(s3.layer),
        ]

        # Forward (and a conv's delta pass), stage 4: the products' sums in groups of 4.
        sums = {f"sum{n}": v for n, v in enumerate(partial_sums(p3))}
        s4 = Stage(m, s3.index, v=s3.v & ~s3.bwd, first=s3.first, last=s3.last, nfirst=s3.nfirst,
                   layer=s3.layer, b=s3.b, cd=s3.cd if convs else Const(0),
                   cd_word=s3.cd_word if convs else cd_word,
                   cd_lane=s3.cd_lane if convs else cd_lane).next(**sums)  # fmt: skip
        # Stage 5: the accumulator (exact: acc_width holds every reachable sum) plus the partial
        # sums; a delta pass starts from 0, not the bias.
        acc = Signal(signed(self.acc_width), reset_less=True)
        with m.If(s4.v):
            total = Mux(s4.first, Mux(s4.cd, 0, s4.b), acc)
            for name in sums:
                total = total + getattr(s4, name)
            m.d.sync += acc.eq(total)
        s5 = Stage(m, s4.index, done=s4.v & s4.last, nfirst=s4.nfirst, layer=s4.layer, cd=s4.cd,
                   cd_word=s4.cd_word, cd_lane=s4.cd_lane).next()  # fmt: skip
        # Stage 6: requantization (the forward shift; the delta shift in a delta pass); the
        # neuron's index, word and lane within its layer.
        dshifts = [0, *spec.delta_shifts]
        q6 = Signal(signed(width), reset_less=True)
        idx6, word6, lane6 = place(m, s5.done, s5.nfirst, lanes, omax, cmax)
        with m.If(s5.done):
            fq = saturate(round_select(acc, s5.layer, list(spec.forward_shifts)), width)
            if convs:
                fq = Mux(s5.cd, saturate(round_select(acc, s5.layer, dshifts), width), fq)
            m.d.sync += q6.eq(fq)
        s6 = s5.next(drop=("nfirst",))
        check_stages(s6, _FWD_STAGES + self._read_register)

        # Conv groups (forward): the engine core's P accumulators, one per output channel of
        # the group, and their requantization, the P codes arriving at stage 6 beside q6.
        cq6 = [Signal(signed(width), name=f"cq6_{k}") for k in range(lanes)]
        cv6 = Const(0)
        oword6 = Signal(range(max(cmax, 2)))
        if convs:
            group_cfg = dict(shifts=list(spec.forward_shifts), acc_width=self.acc_width)
            codes, cv6 = conv_group(m, p3, s3.b, s3, width=width, **group_cfg)
            m.d.comb += [q.eq(c) for q, c in zip(cq6, codes, strict=True)]
            (ow,) = delayed(m, (s3.oword,), 3)
            m.d.comb += oword6.eq(ow)

        # Hidden layers: the forward unit's training build; y to the next activation region,
        # the mask bit to the mask memory (P of each for a conv group).
        m.submodules.fwd = fwd = self._forward_unit()
        flanes = lanes if convs else 1
        m.d.comb += [
            fwd.i.valid.eq((s6.done & ~s6.cd & (s6.layer != layers - 1)) | cv6),
            fwd.o.ready.eq(1),  # never stalls: the memories take a write every cycle
        ]
        for k in range(flanes):
            m.d.comb += fwd.i.payload.z[k].eq(Mux(cv6, cq6[k], q6 if k == 0 else 0))
        f_word, f_lane, f_layer, f_q, f_cword = delayed(
            m, (word6, lane6, s6.layer, q6, oword6), fwd.latency
        )
        (f_cv,) = delayed(m, (cv6,), fwd.latency) if convs else (Const(0),)
        f_cq = delayed(m, cq6, fwd.latency)
        if self._stash == "mask":
            stashed = fwd.o.payload.mask[0]
            stash_word = fwd.o.payload.mask.as_value()
        else:
            stashed, stash_word = f_q, Cat(*f_cq)
        a_dest = const_array(abase + [0])[f_layer + 1]
        m_dest = const_array(mbase + [0])[f_layer]
        with m.If(fwd.o.valid):
            whole = dict(whole=f_cv) if convs else {}
            write_code(
                m,
                a_wr,
                lanes,
                addr=a_dest + f_word,
                lane=f_lane,
                code=fwd.o.payload.y[0],
                word_addr=a_dest + f_cword,
                word=fwd.o.payload.y.as_value(),
                **whole,
            )
            write_code(m, m_wr, lanes, addr=m_dest + f_word, lane=f_lane, code=stashed,
                       word_addr=m_dest + f_cword, word=stash_word, **whole)  # fmt: skip

        # Last layer: logits, running argmax, output error e (golden.fixed.loss_gradient) into
        # the delta registers.
        with m.If(self.o.ready):
            m.d.sync += self.o.valid.eq(0)
        with m.If(s6.done & ~s6.cd & (s6.layer == layers - 1)):
            logit_argmax(m, self.o.payload, q6, idx6, width)
            error = rule(fixed.loss_gradient, q6, idx6 == label, width=width)
            m.d.sync += d_arr[idx6].eq(error)
            with m.If(idx6 == self._classes - 1):
                m.d.sync += [self.o.valid.eq(1), self.o.payload.skipped.eq(skip)]

        # Deltas: requantize a column's W.T @ d sums (the rounding shift at stage 4, registered;
        # the saturation at 5: two carry chains, one a stage, as in the forward pass), mask them
        # with the column's stash word (read at stage 4; backward unit) and write them as one
        # word of the layer input's deltas into dmem. A conv's delta pass sends its one code a
        # cycle through lane 0, with the mask bit read at stage 5.
        rounded = {f"rq{k}_": round_select(gacc[k], dlayer4, dshifts) for k in range(lanes)}
        d5 = Stage(m, s3.index + 1, v=dv4, chunk=dchunk4, layer=dlayer4, **rounded).next()
        check_stages(d5, _DELTA_STAGES + self._read_register)
        m.d.comb += m_rd.addr.eq(const_array([0] + mbase)[dlayer4] + dchunk4)
        cd_in = Signal()
        m.d.comb += cd_in.eq(s6.done & s6.cd)
        if convs:
            with m.If(s5.cd):
                m.d.comb += m_rd.addr.eq(const_array([0] + mbase)[s5.layer] + s5.cd_word)
        m.submodules.bwd = bunit = self._backward_unit()
        stash_in = Mux(cd_in, m_rd.data.word_select(s6.cd_lane, sbits).replicate(lanes), m_rd.data)
        m.d.comb += [
            bunit.i.valid.eq(d5.v | cd_in),
            getattr(bunit.i.payload, self._stash).eq(stash_in),
            bunit.o.ready.eq(1),
        ]
        for k in range(lanes):
            requantized = saturate(getattr(d5, f"rq{k}_"), width)
            m.d.comb += bunit.i.payload.g[k].eq(Mux(cd_in, q6, requantized))
        # What the unit's outputs are for, beside its pipeline.
        dchunk, dlayer, cd_out, cd_layer, cd_oword, cd_olane = delayed(
            m, (d5.chunk, d5.layer, cd_in, s6.layer, s6.cd_word, s6.cd_lane), bunit.latency
        )
        if layers > 1:
            with m.If(bunit.o.valid):
                write_code(m, d_wr, lanes, addr=const_array(dprev)[cd_layer] + cd_oword,
                           lane=cd_olane, code=bunit.o.payload.dz[0], whole=~cd_out,
                           word_addr=const_array(dprev)[dlayer] + dchunk,
                           word=bunit.o.payload.dz.as_value())  # fmt: skip

        # Loads (between samples only).
        load_port(m, self.load, n_w, w_wr, b_wr)
        return m
