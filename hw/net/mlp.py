"""The integer network inference engine: a ``golden.intmodel.IntModel`` on chip, bit-exact.

Dense and 2-D convolution layers (``golden.layers``; convolutions first, then dense layers) on
one sequential datapath of ``lanes`` (``P``) int8 multipliers, built from the engine core
(``hw.net.core``: memories, the dense and conv loop nests, the pipeline sideband, a conv group's
accumulators, the write-back and the load port), as the training engine is:

- **Memories** (``amaranth.lib.memory.Memory``, block RAM after synthesis): the weights, all
  layers one after the other in the order they are read (:func:`image`): a dense layer one word
  of ``P`` codes per (neuron, input word), a convolution one word per (group of ``P`` output
  channels, tap, input channel); the biases, one int32 word per neuron (a convolution ``P`` per
  group); the activations, two regions of ``P``-code words in the activation layout of
  ``golden.layers.word_index`` (per position, its channels in ``ceil(C / P)`` words; layer ``l``
  reads region ``l % 2`` and writes region ``(l + 1) % 2``; the input sample lands in region 0).
  Weights and biases can be rewritten through the ``load`` port, so one bitstream serves
  retrained weights of the same shapes and shifts.
- **Datapath**, one stage per register: read the weight, activation and bias words; ``P`` int8 x
  int8 products; then, for a **dense** layer, their sum into one int32 accumulator (``bias +
  sum`` on a neuron's first word, else ``acc + sum``), or, for a **convolution**, each product
  into its own accumulator (one per output channel of the group: the input code of the current
  tap and channel is broadcast to all ``P`` lanes, 0 at a padding tap; bias ``k`` is added on
  the group's cycle ``k``); requantization ``golden.fixed.requantize`` with the layer's shift
  (``hw.net.requant``, two stages: the rounding shift, then the saturation; ``P`` in parallel for
  a convolution's group); then, between layers, the HeLU forward unit
  ``hw.units.forward.Forward`` (inference build; 1 lane, ``P`` when the model has convolutions)
  whose output is written into the next activation region (a convolution's group as one whole
  word), or, on the last layer, the logit register and the running argmax (first index of the
  largest logit).
- **Sequencer**: takes the sample's input transfers (one per word of the first layer's input),
  then runs each layer's loop nest at one issue a cycle: dense (neuron, input word); conv
  (output position, group, then tap x input channel, padded to at least ``P`` cycles a group so
  that every bias enters). Between layers it waits until the last activation of the layer is
  written (``drain`` cycles), since the next layer reads them. Before the last layer it waits
  until the previous result has left the output register; the pipeline never stalls.

Accumulators never overflow: ``IntModel.check`` bounds every partial sum with
``golden.fixed.check_accumulator`` for inputs in the model's input format, so a ``ACC_WIDTH``-bit
register is exact (wrapping sums of an exact total stay exact).

Timing (``cycles_per_sample``, ``layer_cycles``, ``latency``, checked by the tests): at full
rate a sample takes its input transfers, each layer's issue cycles (dense ``out * in_words``;
conv ``positions * ceil(C_out / P) * max(k * k * C_in, P)``), ``drain`` = 7 idle cycles at each
of the ``L - 1`` layer boundaries and one cycle to claim the output register. The ideal is
``MACs / P`` (:attr:`MLP.ideal_cycles`; a convolution's padding taps counted): a dense layer
meets it when its inputs fill whole words, a convolution when ``C_out`` is a multiple of ``P``
and ``k * k * C_in >= P``. The 64-32-32-10 digits MLP at ``P = 8``: 8 + 424 + 14 + 1 = 447
cycles, 1.05 x the ideal 424; the digits CNN (conv3x3 1->8, conv3x3/2 8->16, dense 256->10):
64 + (576 + 2304 + 320) + 14 + 1 = 3,279 cycles, 1.025 x the ideal 3,200. The result is valid
``latency`` cycles after the sample's last input transfer. Samples do not overlap, except that
the next sample's input is taken while the last layer is still in the pipeline.
"""

import numpy as np
from amaranth.hdl import (
    Const,
    Module,
    Mux,
    ResetSignal,
    Signal,
    signed,
    unsigned,
)
from amaranth.lib import data, stream, wiring
from amaranth.lib.wiring import In, Out
from amaranth.utils import ceil_log2

from helu.golden import fixed, intmodel, layers, netimage
from helu.golden.intmodel import IntModel
from helu.golden.netimage import Image
from helu.hw.net.core import (
    ConvNest,
    DenseNest,
    Stage,
    check_stages,
    conv_group,
    delayed,
    load_port,
    logit_argmax,
    memory,
    partial_sums,
    place,
    write_code,
)
from helu.hw.net.mac import check_dsp, products
from helu.hw.net.requant import round_select, saturate, select
from helu.hw.units import check_lanes, refusal, unelaborated

__all__ = ["MLP", "Image", "image", "reference", "ACTIVATIONS", "IGELU_FRAC"]

ACTIVATIONS = ("helu", "igelu")
IGELU_FRAC = 5
"""Fractional bits of the int8 codes the i-GELU baseline build assumes. A cost comparison: the
integer model was trained with HeLU and has no float scale, so this build computes
:func:`reference` with ``"igelu"``, not the model's function."""

# Pipeline registers from an issued read to a requantized code: read data, products, their sum,
# the accumulator, the rounded shift, the saturated code.
_STAGES = 6


def _plans(model: IntModel, lanes: int) -> list[netimage.Plan]:
    return netimage.plans(model.ops, lanes)


def image(model: IntModel, lanes: int) -> Image:
    """The weight and bias words of ``model`` for an engine of ``lanes`` MACs
    (``golden.netimage.inference_image``: the layout is defined there)."""
    check_lanes(lanes)
    return netimage.inference_image(model.ops, model.weights, model.biases, lanes)


def reference(model: IntModel, x, activation: str = "helu"):
    """What the engine computes: ``intmodel.infer`` for ``helu``; for ``igelu`` the same layers
    with ``golden.intbaselines.igelu`` at ``Q8.IGELU_FRAC`` between them. Returns
    ``(logits, cls)``."""
    if activation == "helu":
        return intmodel.infer(model, np.asarray(x, dtype=np.int64))
    if activation != "igelu":
        raise ValueError(f"Activation must be one of {', '.join(ACTIVATIONS)}, not {activation!r}")
    from helu.golden import intbaselines

    x = np.asarray(x, dtype=np.int64)
    last = len(model.weights) - 1
    for i in range(last + 1):
        q = intmodel.layer(model, i, x)
        x = q if i == last else intbaselines.igelu(q, fixed.Format(fixed.ACT_WIDTH, IGELU_FRAC))
    return x, intmodel.argmax(x)


def _check(model, lanes, activation):
    if not isinstance(model, IntModel):
        raise TypeError(f"MLP needs a golden.intmodel.IntModel, not {model!r}")
    check_lanes(lanes)
    if activation not in ACTIVATIONS:
        raise ValueError(f"Activation must be one of {', '.join(ACTIVATIONS)}, not {activation!r}")
    if not isinstance(model.ops[-1], intmodel.Dense):
        raise ValueError(
            f"the last layer is a {model.ops[-1].describe()}: the engine takes its logits from a "
            "dense layer; end the model with nn.Flatten and nn.Linear"
        )


class MLP(wiring.Component):
    """Streaming integer network: samples in, logits and class out, bit-exact to
    ``intmodel.infer``. Dense and 2-D convolution layers (``golden.layers``).

    Parameters
    ----------
    model : golden.intmodel.IntModel
        The network; its weights and biases are the memories' initial contents, its shifts are
        built in (one constant per layer).
    lanes : int
        ``P``: multiply-accumulates per cycle, and input codes per input transfer.
    activation : "helu" or "igelu"
        Between layers: the HeLU forward unit (``hw.units.forward.Forward``, inference build),
        or, for cost comparisons, the i-GELU baseline (``hw.units.baselines.IntGelu`` at
        ``Q8.IGELU_FRAC``; the engine then computes :func:`reference` with ``"igelu"``).

    Members
    -------
    i : ``In(stream.Signature(StructLayout({"x": ArrayLayout(signed(8), P)})))``
        A sample as :attr:`input_transfers` transfers in the activation layout
        (``golden.layers.word_index`` of the first layer's input, :attr:`input_index`): a dense
        input ``c * P + k`` in lane ``k`` of transfer ``c``; an image one word per (position,
        ``P`` channels). Padding lanes are ignored. Inputs must lie in
        ``[model.input.lo, model.input.hi]``, the range the accumulator bound was proved for.
    o : ``Out(stream.Signature(StructLayout({"logits": ArrayLayout(signed(8), classes),
        "cls": unsigned(ceil_log2(classes))})))``
        One transfer per sample: the int8 logits and the first index of the largest.
    load : ``In(stream.Signature(StructLayout({"addr": unsigned(a), "data": unsigned(d)})))``
        Memory writes, taken only while the engine waits for the first transfer of a sample:
        ``addr < weight_words`` writes a weight word, ``weight_words + n`` bias word ``n``;
        :meth:`Image.words` lists them.

    Full backpressure on every stream; ``o.valid`` never depends on ``o.ready``. ``rst`` drops
    the sample in progress and a pending output, not the memories.
    """

    def __init__(self, model, lanes=8, *, activation="helu", dsp=None, src_loc_at=0):
        with refusal(self):
            _check(model, lanes, activation)
            check_dsp(dsp)
        self._dsp = dsp
        self._model = model
        self._lanes = lanes
        self._activation = activation
        self._plans = _plans(model, lanes)
        self._conv = any(p.conv for p in self._plans)
        # The drain between layers waits for the activation unit: its latency, read from a
        # build of it (elaborate() builds the one it instantiates).
        self._act_latency = unelaborated(self._activation_unit()).latency
        self._image = image(model, lanes)
        self._classes = model.classes
        word = fixed.ACT_WIDTH * lanes
        self._load_data = max(word, fixed.ACC_WIDTH)
        depth = len(self._image.weights) + len(self._image.biases)
        super().__init__(
            {
                "i": In(
                    stream.Signature(
                        data.StructLayout({"x": data.ArrayLayout(signed(fixed.ACT_WIDTH), lanes)})
                    )
                ),
                "o": Out(
                    stream.Signature(
                        data.StructLayout(
                            {
                                "logits": data.ArrayLayout(signed(fixed.ACT_WIDTH), self._classes),
                                "cls": unsigned(max(ceil_log2(self._classes), 1)),
                            }
                        )
                    )
                ),
                "load": In(
                    stream.Signature(
                        data.StructLayout(
                            {"addr": unsigned(ceil_log2(depth + 1)), "data": self._load_data}
                        )
                    )
                ),
            },
            src_loc_at=1 + src_loc_at,
        )

    @property
    def model(self) -> IntModel:
        return self._model

    @property
    def lanes(self) -> int:
        return self._lanes

    @property
    def activation(self) -> str:
        return self._activation

    @property
    def sizes(self) -> tuple[int, ...]:
        """Activation sizes: the input's, then every layer's output (flat HWC)."""
        return tuple(self._model.sizes)

    @property
    def dsp(self):
        """The multiplier build (``hw.net.mac.DSPS``): ``None`` generic, ``"sb_mac16"``."""
        return self._dsp

    @property
    def ops(self) -> list:
        """The layers' ``golden.layers`` ops."""
        return list(self._model.ops)

    @property
    def image(self) -> Image:
        return self._image

    @property
    def weight_words(self) -> int:
        return len(self._image.weights)

    @property
    def macs(self) -> int:
        """Multiply-accumulates of one sample (the model's: ``golden.intmodel.IntModel.macs``,
        a convolution's padding taps included, the engine's padding lanes not)."""
        return self._model.macs

    @property
    def ideal_cycles(self) -> float:
        """``macs / P``: every lane busy on every cycle, nothing else."""
        return self.macs / self._lanes

    @property
    def memory_shapes(self) -> dict[str, tuple[int, int]]:
        """``(width, depth)`` of each memory: weights, biases, the two activation regions."""
        region = max(max(p.in_words for p in self._plans),
                     max(p.out_words for p in self._plans[:-1] or self._plans))  # fmt: skip
        word = fixed.ACT_WIDTH * self._lanes
        return {
            "weights": (word, len(self._image.weights)),
            "biases": (fixed.ACC_WIDTH, len(self._image.biases)),
            "activations": (word, 2 * region),
        }

    @property
    def input_transfers(self) -> int:
        return self._plans[0].in_words

    @property
    def input_index(self) -> np.ndarray:
        """(input_transfers, P): the flat input index in each lane of each transfer, -1 padding."""
        return layers.word_index(self._plans[0].in_shape, self._lanes)

    @property
    def layer_cycles(self) -> list[int]:
        """Issue cycles of each layer (its loop nest at one issue a cycle)."""
        return [p.issues for p in self._plans]

    @property
    def drain(self) -> int:
        """Idle issue cycles between two layers: until the last activation is written."""
        return _STAGES + self._act_latency

    @property
    def cycles_per_sample(self) -> int:
        """Cycles per sample at full rate (input always valid, output always ready)."""
        # One cycle in the OUTPUT state before the last layer.
        return (
            self.input_transfers + sum(self.layer_cycles) + (len(self._plans) - 1) * self.drain + 1
        )

    @property
    def latency(self) -> int:
        """Cycles from a sample's last input transfer to its output being valid (full rate)."""
        return self.cycles_per_sample - self.input_transfers + _STAGES + 1

    def _activation_unit(self):
        """A new build of the unit between layers: int8 codes, one lane (``P`` with conv
        layers, whose ``P`` outputs of a group leave together)."""
        lanes = self._lanes if self._conv else 1
        if self._activation == "helu":
            from helu.hw.units.forward import Forward

            return Forward(fixed.ACT_WIDTH, lanes)
        from helu.hw.units.baselines import IntGelu

        return IntGelu(fixed.ACT_WIDTH, lanes, frac=IGELU_FRAC)

    def elaborate(self, platform):
        m = Module()
        lanes, width = self._lanes, fixed.ACT_WIDTH
        model, img, plans = self._model, self._image, self._plans
        nlayers = len(plans)
        convs = [p for p in plans if p.conv]  # the first layers (no conv after a dense layer)
        region = self.memory_shapes["activations"][1] // 2
        omax = max(max(p.outs for p in plans), 1)

        # Memories ----------------------------------------------------------------------------
        word = unsigned(width * lanes)
        w_rd, w_wr = memory(m, "wmem", word, len(img.weights), img.weights)
        b_rd, b_wr = memory(m, "bmem", unsigned(fixed.ACC_WIDTH), len(img.biases), img.biases)
        a_rd, a_wr = memory(m, "amem", word, 2 * region, granularity=width)

        # Sequencer ---------------------------------------------------------------------------
        layer = Signal(range(max(nlayers, 2)))
        dense = DenseNest(plans, layer, region)
        w_addr = Signal(range(len(img.weights)))
        b_addr = Signal(range(max(len(img.biases), 2)))
        wait = Signal(range(self.drain + 1))
        last_layer = layer == nlayers - 1
        issue = Signal()
        pending = Signal()  # a last layer is in the pipeline: its logits are not all written
        in_base = Mux(layer[0], region, 0)  # layer l reads region l % 2, writes the other
        conv_issue = Signal()
        conv = ConvNest(convs, lanes, layer, b_addr.shape()) if convs else None
        fields = dict(v=issue, first=dense.chunk == 0, last=dense.last_chunk,
                      nfirst=dense.neuron == 0, layer=layer)  # fmt: skip
        side = Stage(m, **fields, **(conv.issue(conv_issue) if conv else {}))

        m.d.comb += [
            w_rd.addr.eq(w_addr),
            b_rd.addr.eq(b_addr),
            a_rd.addr.eq(in_base + dense.chunk),
        ]
        if conv:
            with m.If(conv_issue):
                m.d.comb += [
                    a_rd.addr.eq(in_base + conv.word[: len(a_rd.addr)]),
                    b_rd.addr.eq(conv.gbias + conv.j),
                ]

        def start_layer(index):
            """Counters and addresses for layer ``index`` (a constant or a Value)."""
            bbase = select(index, [Const(p.bbase, len(b_addr)) for p in plans])
            stmts = dense.start() + [
                w_addr.eq(select(index, [Const(p.wbase, len(w_addr)) for p in plans])),
                b_addr.eq(bbase),
            ]
            return stmts + (conv.start(bbase) if conv else [])

        def conv_state(index):
            """Run layer ``index`` in the CONV state when it is a convolution (they come first)."""
            if convs:
                with m.If(index < len(convs)):
                    m.next = "CONV"

        load_word = Signal(range(max(self.input_transfers, 2)))
        with m.FSM():
            with m.State("INPUT"):
                # Not ready during reset. This also gives event-driven simulators (Icarus) an
                # input event to evaluate ready on: the state register never changes through
                # the reset, so a ready that reads only the state stays X until the first input.
                # A load address past the image is refused (ready stays low), never written
                # out of range: the address field has room for more words than the image.
                words = len(img.weights) + len(img.biases)
                m.d.comb += [
                    self.i.ready.eq(~ResetSignal()),
                    self.load.ready.eq(
                        ~ResetSignal() & (load_word == 0) & (self.load.payload.addr < words)
                    ),
                ]
                with m.If(self.i.valid):
                    m.d.comb += [
                        a_wr.addr.eq(load_word),
                        a_wr.data.eq(self.i.payload.x.as_value()),
                        a_wr.en.eq(-1),
                    ]
                    m.d.sync += load_word.eq(load_word + 1)
                    with m.If(load_word == self.input_transfers - 1):
                        m.d.sync += [load_word.eq(0), layer.eq(0), *start_layer(0)]
                        m.next = "RUN" if nlayers > 1 else "OUTPUT"
                        if plans[0].conv:
                            m.next = "CONV"
            with m.State("RUN"):
                m.d.comb += issue.eq(1)
                with dense.step(m, w_addr, b_addr):
                    m.d.sync += wait.eq(self.drain - 1)
                    with m.If(last_layer):
                        m.next = "INPUT"
                    with m.Else():
                        m.next = "DRAIN"
            if conv:
                with m.State("CONV"):
                    m.d.comb += conv_issue.eq(1)
                    with conv.step(m, side.creal, w_addr):
                        m.d.sync += wait.eq(self.drain - 1)
                        m.next = "DRAIN"
            with m.State("DRAIN"):
                m.d.sync += wait.eq(wait - 1)
                with m.If(wait == 0):
                    m.d.sync += [layer.eq(layer + 1), *start_layer(layer + 1)]
                    with m.If(layer == nlayers - 2):
                        m.next = "OUTPUT"
                    with m.Else():
                        m.next = "RUN"
                        conv_state(layer + 1)
            with m.State("OUTPUT"):
                # The last layer writes the output register: wait until it is free (the previous
                # sample's last layer done and its result taken).
                with m.If(~pending & (~self.o.valid | self.o.ready)):
                    m.d.sync += pending.eq(1)
                    m.next = "RUN"

        # Datapath ----------------------------------------------------------------------------
        # Stage 1: read data (memories), with the sideband of what was issued.
        s1 = side.next()
        # Stage 2: products. A conv broadcasts one input code (0 at a padding tap) to every lane.
        weights = [w_rd.data.word_select(k, width).as_signed() for k in range(lanes)]
        codes = [a_rd.data.word_select(k, width).as_signed() for k in range(lanes)]
        if conv:
            code = a_rd.data.word_select(s1.clane, width).as_signed()
            broadcast = Mux(s1.cin, code, 0)
            codes = [Mux(s1.cv, broadcast, x) for x in codes]
        prods = products(m, weights, codes, dsp=self._dsp)
        s2 = s1.next(bias=b_rd.data.as_signed())
        # Stage 3: the sums of the products in groups of 4 (a conv keeps them apart: one per
        # output channel); stage 4 adds them into the accumulator.
        sums = {f"sum{n}": v for n, v in enumerate(partial_sums(prods))}
        lanes_kept = {f"cp{k}": p for k, p in enumerate(prods)} if conv else {}
        s3 = s2.next(**sums, **lanes_kept)
        # Stage 4: the accumulator (exact: IntModel.check bounds every partial sum).
        acc = Signal(signed(fixed.ACC_WIDTH), reset_less=True)
        with m.If(s3.v):
            total = Mux(s3.first, s3.bias, acc)
            for name in sums:
                total = total + getattr(s3, name)
            m.d.sync += acc.eq(total)
        s4 = Stage(m, 3, done=s3.v & s3.last, nfirst=s3.nfirst, layer=s3.layer).next()
        # Stage 5: the rounding shift; stage 6: the saturation (golden.fixed.requantize in two
        # registers: the rounding add and the range compare are two carry chains), and the
        # neuron's index, word and lane within its layer (neurons come in order).
        s5 = s4.next(rounded=round_select(acc, s4.layer, model.shifts))
        q6 = Signal(signed(width), reset_less=True)
        idx6, word6, lane6 = place(m, s5.done, s5.nfirst, lanes, omax, region)
        with m.If(s5.done):
            m.d.sync += q6.eq(saturate(s5.rounded, width))
        s6 = s5.next(drop=("rounded", "nfirst"))
        check_stages(s6, _STAGES)

        # Conv groups: the stages 3 to 6 on P accumulators, one per output channel of the group.
        if conv:
            cprods = [getattr(s3, f"cp{k}") for k in range(lanes)]
            cq6, cv6 = conv_group(m, cprods, s3.bias, s3, model.shifts, fixed.ACC_WIDTH, width)
            (oword6,) = delayed(m, (s3.oword,), 3)

        # Hidden layers: the activation unit, then the next activation region.
        m.submodules.act = act = self._activation_unit()
        hidden = s6.done & (s6.layer != nlayers - 1)
        m.d.comb += [
            act.i.valid.eq((hidden | cv6) if conv else hidden),
            act.o.ready.eq(1),  # never stalls: the memory takes a write every cycle
        ]
        for k in range(lanes if conv else 1):
            m.d.comb += act.i.payload.z[k].eq(Mux(cv6, cq6[k], q6 if k == 0 else 0) if conv else q6)
        # The write's place travels beside the unit's pipeline (it always advances).
        w_word, w_lane, w_layer = delayed(m, (word6, lane6, s6.layer), act.latency)
        out_base = Mux(w_layer[0], 0, region)
        whole = {}
        if conv:
            c_word, c_valid = delayed(m, (oword6, cv6), act.latency)
            whole = dict(whole=c_valid, word_addr=out_base + c_word,
                         word=act.o.payload.y.as_value())  # fmt: skip
        with m.If(act.o.valid):
            write_code(m, a_wr, lanes, addr=out_base + w_word, lane=w_lane,
                       code=act.o.payload.y[0], **whole)  # fmt: skip

        # Last layer: the logits, the running argmax, the output stream.
        with m.If(self.o.ready):
            m.d.sync += self.o.valid.eq(0)
        with m.If(s6.done & (s6.layer == nlayers - 1)):
            logit_argmax(m, self.o.payload, q6, idx6, width)
            with m.If(idx6 == self._classes - 1):
                m.d.sync += [self.o.valid.eq(1), pending.eq(0)]

        # Loads (only while waiting for a sample: nothing is read then).
        load_port(m, self.load, len(img.weights), w_wr, b_wr)
        return m
