"""The engine core: the parts both network engines are built from.

The inference engine (``hw.net.mlp``) is these parts plus the activation write-back and the
output stream; the training engine (``hw.net.trainer``) is the same parts plus its delta and
update passes. Where the two engines do the same thing they call the same part:

- :func:`memory`: a block-RAM memory, one synchronous read port and one write port.
- :class:`Stage`: what travels down the pipeline beside the data, as named registers, one set a
  stage, so an issue's flags arrive with its products without hand-written delay chains.
- :class:`DenseNest` and :class:`ConvNest`: the loop nests of ``golden.netimage.Plan`` at one
  issue a cycle: their counters, the addresses they read and each issue's sideband.
- :func:`conv_group`: a convolution group's ``P`` accumulators and their requantization.
- :func:`partial_sums`: the product sum split over the products' register and the
  accumulator's.
- :func:`place`: the index, word and lane of each requantized code of a dense layer.
- :func:`write_code`: a code into its lane of an activation-layout word, or a whole word.
- :func:`load_port`: the ``load`` stream's writes into the weight and bias memories.
- :func:`logit_argmax`, :func:`delayed`.

The arithmetic rules are not here: they are ``golden.fixed``'s, applied to Amaranth values by
``hw.net.requant``.
"""

from contextlib import contextmanager

from amaranth.hdl import Const, Mux, Signal, Value, signed
from amaranth.lib.memory import Memory
from amaranth.utils import ceil_log2

from helu.golden import fixed
from helu.hw.net.requant import round_select, saturate, select

__all__ = [
    "memory",
    "counter",
    "Stage",
    "check_stages",
    "DenseNest",
    "ConvNest",
    "conv_group",
    "partial_sums",
    "place",
    "write_code",
    "load_port",
    "logit_argmax",
    "delayed",
]


def counter(n: int, name: str) -> Signal:
    """A counter over ``range(n)`` (at least one bit)."""
    return Signal(range(max(n, 2)), name=name)


def memory(m, name: str, shape, depth: int, init=(), *, granularity=None):
    """A ``Memory`` added to ``m`` as ``name``; returns its (read, write) ports.

    The read port is synchronous and not transparent (a read and a write of one word in one
    cycle read the old word), as iCE40 and ECP5 block RAM reads are.
    """
    mem = Memory(shape=shape, depth=max(depth, 1), init=list(init))
    m.submodules[name] = mem
    read = mem.read_port(transparent_for=())
    write = mem.write_port(granularity=granularity) if granularity else mem.write_port()
    return read, write


class Stage:
    """Named sideband values at one pipeline stage.

    ``Stage(m, v=issue, first=...)`` names the values of an issue cycle (stage 0, combinational);
    ``s.next()`` registers every field into stage ``s.index + 1`` as ``<name><stage>`` (``v1``,
    ``first1``: what a waveform shows); ``next(extra=value)`` adds fields, registered with the
    others, and ``next(drop=("name",))`` stops carrying some. Fields read as attributes.
    The registers reset to 0, so a reset empties the pipeline's valid bits.
    """

    def __init__(self, m, index: int = 0, **fields):
        self._m, self._index, self._fields = m, index, dict(fields)

    @property
    def index(self) -> int:
        return self._index

    def __getattr__(self, name):
        fields = self.__dict__.get("_fields", {})
        if name in fields:
            return fields[name]
        raise AttributeError(
            f"pipeline stage {self.__dict__.get('_index')} carries no {name!r} "
            f"(it carries {', '.join(fields) or 'nothing'})"
        )

    def next(self, drop=(), **extra) -> "Stage":
        fields = {k: v for k, v in self._fields.items() if k not in drop} | extra
        regs = {}
        for name, value in fields.items():
            value = Value.cast(value)
            reg = Signal(value.shape(), name=f"{name}{self._index + 1}")
            self._m.d.sync += reg.eq(value)
            regs[name] = reg
        return Stage(self._m, self._index + 1, **regs)


def check_stages(stage: Stage, stages: int) -> None:
    """Raise ``AssertionError`` unless ``stage`` is stage ``stages``: the engines' timing
    (drains, latency) is computed from their stage counts before they are built; this ties the
    count to the pipeline actually built."""
    if stage.index != stages:
        raise AssertionError(
            f"the pipeline has {stage.index} stages where the timing assumes {stages}: "
            "update the stage count"
        )


class DenseNest:
    """A dense layer's loop nest: per neuron, its input words, one issue a cycle.

    ``chunk`` is the input word, ``neuron`` the output; ``last_chunk`` and ``last_neuron`` mark a
    neuron's and the layer's last issue. The word and bias addresses advance with them.
    """

    def __init__(self, plans, layer, chunk_words: int):
        outs = [p.outs for p in plans]
        chunks = [p.chunks for p in plans]
        self.neuron = counter(max(outs), "neuron")
        self.chunk = counter(chunk_words, "chunk")
        self.last_chunk = self.chunk == select(
            layer, [Const(max(c - 1, 0), self.chunk.shape()) for c in chunks]
        )
        self.last_neuron = self.neuron == select(
            layer, [Const(max(n - 1, 0), self.neuron.shape()) for n in outs]
        )

    def start(self) -> list:
        return [self.neuron.eq(0), self.chunk.eq(0)]

    @contextmanager
    def step(self, m, w_addr, b_addr):
        """One issue: the next word, neuron; the body runs on the layer's last issue."""
        m.d.sync += [self.chunk.eq(self.chunk + 1), w_addr.eq(w_addr + 1)]
        with m.If(self.last_chunk):
            m.d.sync += [self.chunk.eq(0), self.neuron.eq(self.neuron + 1), b_addr.eq(b_addr + 1)]
            with m.If(self.last_neuron):
                m.d.sync += self.neuron.eq(0)
                yield


class ConvNest:
    """A convolution's forward loop nest over an engine's conv layers (``plans``, the first
    layers of the chain), the current one chosen by ``layer``.

    Per output position ``(oy, ox)`` and group ``g`` of ``P`` output channels, ``j`` counts the
    group's cycles: over the taps and input channels (``ky, kx, c``, with ``c`` kept as word
    ``cw`` and lane ``cl`` of the input map), then bubbles up to ``P`` cycles, so that each of
    the group's ``P`` biases (read at ``gbias + j``) enters on cycle ``j < P``. ``oword`` is the
    output word the group writes.
    """

    def __init__(self, plans, lanes: int, layer, bias_shape):
        self.plans, self.lanes, self.layer = list(plans), lanes, layer
        ops = [p.op for p in self.plans]
        self.oy = counter(max(op.out_shape[0] for op in ops), "oy")
        self.ox = counter(max(op.out_shape[1] for op in ops), "ox")
        self.g = counter(max(p.groups for p in self.plans), "g")
        self.j = Signal(range(max(p.group_cycles for p in self.plans) + 1), name="j")
        self.ky = counter(max(op.kernel for op in ops), "ky")
        self.kx = counter(max(op.kernel for op in ops), "kx")
        self.cw = counter(max(self.in_words(op) for op in ops), "cw")
        self.cl = counter(lanes, "cl")
        self.c = counter(max(op.in_shape[2] for op in ops), "c")
        self.oword = counter(max(p.out_words for p in self.plans), "oword")
        self.gbias = Signal(bias_shape, name="gbias")  # the group's first bias word
        self.inside, self.word = self.window(self.oy, self.ox, self.ky, self.kx, self.cw)

    def in_words(self, op) -> int:
        """Words of one input position (its channels, ``P`` a word)."""
        return -(-op.in_shape[2] // self.lanes)

    def per_conv(self, make) -> Value:
        """``make(plan)`` of the current conv layer."""
        return select(self.layer, [make(p) for p in self.plans])

    @staticmethod
    def const(v: int) -> Const:
        return Const(v, signed(max(v.bit_length() + 1, 2)))

    def window(self, oy, ox, ky, kx, cw) -> tuple:
        """(the tap lies inside the input map, its input word) for output (oy, ox), tap (ky, kx)
        and input word ``cw`` of the position."""
        const = self.const
        iy = self.per_conv(lambda p: oy * p.op.stride + ky - const(p.op.padding))
        ix = self.per_conv(lambda p: ox * p.op.stride + kx - const(p.op.padding))
        h_in = self.per_conv(lambda p: const(p.op.in_shape[0]))
        w_in = self.per_conv(lambda p: const(p.op.in_shape[1]))
        inside = (iy >= 0) & (iy < h_in) & (ix >= 0) & (ix < w_in)
        per_position = self.per_conv(lambda p: const(self.in_words(p.op)))
        return inside, (iy * w_in + ix) * per_position + cw

    @property
    def counters(self) -> list:
        return [self.oy, self.ox, self.g, self.j, self.ky, self.kx, self.cw, self.cl, self.c,
                self.oword]  # fmt: skip

    def start(self, bbase) -> list:
        """Statements that start a layer whose first bias word is ``bbase``."""
        return [s.eq(0) for s in self.counters] + [self.gbias.eq(bbase)]

    def issue(self, issue) -> dict:
        """The sideband of an issue cycle (``issue``: the nest issues now), as Stage fields:
        ``cv`` (a conv issue), ``creal`` (it multiplies: ``j`` below the fan-in), ``cin`` (the
        tap inside the map), ``clane`` (the input code's lane), ``cbias``/``blane`` (a bias to
        add, into lane ``j``), ``cfirst``/``clast`` (the group's first and last cycles),
        ``oword``."""
        j = self.j
        return {
            "cv": issue,
            "creal": issue & (j < self.per_conv(lambda p: Const(p.op.fan_in))),
            "cin": self.inside,
            "clane": self.cl,
            "cbias": issue & (j < self.lanes),
            "blane": j[: max(ceil_log2(self.lanes), 1)],
            "cfirst": j == 0,
            "clast": issue & (j == self.per_conv(lambda p: Const(p.group_cycles - 1))),
            "oword": self.oword,
        }

    @contextmanager
    def step(self, m, real, w_addr):
        """One issue cycle; ``real``: this cycle multiplies (then the weight word and the tap
        advance). The body runs on the layer's last issue."""
        per_conv = self.per_conv
        in_c = per_conv(lambda p: Const(p.op.in_shape[2] - 1))
        k_last = per_conv(lambda p: Const(p.op.kernel - 1))
        with m.If(real):
            m.d.sync += [w_addr.eq(w_addr + 1), self.c.eq(self.c + 1), self.cl.eq(self.cl + 1)]
            with m.If(self.cl == self.lanes - 1):
                m.d.sync += [self.cl.eq(0), self.cw.eq(self.cw + 1)]
            with m.If(self.c == in_c):
                m.d.sync += [self.c.eq(0), self.cl.eq(0), self.cw.eq(0), self.kx.eq(self.kx + 1)]
                with m.If(self.kx == k_last):
                    m.d.sync += [self.kx.eq(0), self.ky.eq(self.ky + 1)]
                    with m.If(self.ky == k_last):
                        m.d.sync += self.ky.eq(0)
        m.d.sync += self.j.eq(self.j + 1)
        with m.If(self.j == per_conv(lambda p: Const(p.group_cycles - 1))):
            # The group is issued: the next group, position or layer.
            m.d.sync += [self.j.eq(0), self.g.eq(self.g + 1), self.oword.eq(self.oword + 1),
                         self.gbias.eq(self.gbias + self.lanes)]  # fmt: skip
            with m.If(self.g == per_conv(lambda p: Const(p.groups - 1))):
                m.d.sync += [
                    self.g.eq(0),
                    self.gbias.eq(per_conv(lambda p: Const(p.bbase, len(self.gbias)))),
                    w_addr.eq(per_conv(lambda p: Const(p.wbase, len(w_addr)))),
                    self.ox.eq(self.ox + 1),
                ]
                with m.If(self.ox == per_conv(lambda p: Const(p.op.out_shape[1] - 1))):
                    m.d.sync += [self.ox.eq(0), self.oy.eq(self.oy + 1)]
                    with m.If(self.oy == per_conv(lambda p: Const(p.op.out_shape[0] - 1))):
                        m.d.sync += self.oy.eq(0)
                        yield


def conv_group(m, prods, bias, side: Stage, shifts, acc_width: int, width: int = fixed.ACT_WIDTH):
    """A convolution group's ``P`` accumulators (one per output channel) and their
    requantization: ``golden.fixed.requantize`` with the layer's shift, split over two
    registers (the rounding add, then the saturation compare: two carry chains).

    ``prods`` (``P`` products) and ``bias`` are the values at ``side``'s stage, which carries
    ``creal``, ``cbias``, ``blane``, ``cfirst``, ``clast`` (:meth:`ConvNest.issue`) and ``layer``.
    Returns ``(codes, valid)`` three stages later: the ``P`` codes of a finished group.
    """
    lanes = len(prods)
    accs = [Signal(signed(acc_width), reset_less=True, name=f"cacc{k}") for k in range(lanes)]
    with m.If(side.creal | side.cbias):
        for k, acc in enumerate(accs):
            add_bias = Mux(side.cbias & (side.blane == k), bias, 0)
            m.d.sync += acc.eq(Mux(side.cfirst, 0, acc) + Mux(side.creal, prods[k], 0) + add_bias)
    done = Stage(m, side.index, cdone=side.clast, clayer=side.layer).next()
    rounded = [Signal(signed(acc_width + 1), reset_less=True, name=f"cr{k}") for k in range(lanes)]
    m.d.sync += [
        r.eq(round_select(a, done.clayer, shifts)) for r, a in zip(rounded, accs, strict=True)
    ]
    done = done.next(drop=("clayer",))
    codes = [Signal(signed(width), reset_less=True, name=f"cq{k}") for k in range(lanes)]
    m.d.sync += [q.eq(saturate(r, width)) for q, r in zip(codes, rounded, strict=True)]
    return codes, done.next().cdone


def partial_sums(values, group: int = 4) -> list:
    """Sums of ``values`` in groups of at most ``group``: an adder tree cut below its top, so
    that the stage after it adds the partial sums into the accumulator (one multi-input add) and
    the tree's levels split over two registers without a pipeline stage more."""
    values = list(values)
    sums = []
    for start in range(0, len(values), group):
        out = values[start]
        for v in values[start + 1 : start + group]:
            out = out + v
        sums.append(out)
    return sums


def place(m, valid, first, lanes: int, count: int, words: int) -> tuple:
    """The (index, word, lane) registers of each code of a dense layer, one code per ``valid``
    cycle in neuron order, restarting at 0 on a layer's ``first`` neuron; set in the cycle the
    code itself is registered."""
    idx = Signal(range(max(count, 2)), reset_less=True, name="idx")
    word = Signal(range(max(words, 2)), reset_less=True, name="word")
    lane = Signal(range(max(lanes, 2)), reset_less=True, name="lane")
    with m.If(valid):
        with m.If(first):
            m.d.sync += [idx.eq(0), word.eq(0), lane.eq(0)]
        with m.Else():
            m.d.sync += [idx.eq(idx + 1), lane.eq(lane + 1)]
            with m.If(lane == lanes - 1):
                m.d.sync += [lane.eq(0), word.eq(word + 1)]
    return idx, word, lane


def write_code(m, port, lanes: int, *, addr, lane, code, whole=None, word_addr=None, word=None):
    """Write ``code`` into lane ``lane`` of word ``addr`` of ``port`` (its granularity is one
    code); where ``whole`` is set, write the whole ``word`` at ``word_addr`` instead (a conv
    group's ``P`` codes). Call under the condition that a write is due."""
    m.d.comb += [
        port.addr.eq(addr),
        port.data.eq(Value.cast(code).replicate(lanes)),
        port.en.eq(Const(1, lanes) << lane),
    ]
    if whole is not None:
        with m.If(whole):
            m.d.comb += [port.addr.eq(word_addr), port.data.eq(word), port.en.eq(-1)]


def load_port(m, load, weight_words: int, w_wr, b_wr) -> None:
    """The ``load`` stream's transfers as memory writes: ``addr < weight_words`` a weight word,
    then the bias words (the engine's ``load.ready`` says when a transfer is taken)."""
    with m.If(load.valid & load.ready):
        addr, value = load.payload.addr, load.payload.data
        with m.If(addr < weight_words):
            m.d.comb += [w_wr.addr.eq(addr), w_wr.data.eq(value), w_wr.en.eq(1)]
        with m.Else():
            m.d.comb += [b_wr.addr.eq(addr - weight_words), b_wr.data.eq(value), b_wr.en.eq(1)]


def delayed(m, signals, cycles: int) -> tuple:
    """``signals`` ``cycles`` clock cycles later, through reset-less registers.

    What travels beside a unit's pipeline (a write's address, say) so it arrives with the unit's
    output; the unit always advances, so the registers need no enable.
    """
    signals = tuple(signals)
    for n in range(cycles):
        regs = tuple(Signal.like(s, name=f"{s.name}_d{n}", reset_less=True) for s in signals)
        m.d.sync += [r.eq(s) for r, s in zip(regs, signals, strict=True)]
        signals = regs
    return signals


def logit_argmax(m, payload, q, idx, width: int) -> None:
    """Store logit ``q`` of class ``idx`` in ``payload.logits``; keep the running argmax in
    ``payload.cls``: the first index of the largest logit (a later one wins only when greater),
    as ``golden.intmodel.argmax``. Call under the condition that a last-layer code is valid."""
    best = Signal(signed(width), name="best", reset_less=True)
    for k in range(len(payload.logits)):
        with m.If(idx == k):
            m.d.sync += payload.logits[k].eq(q)
    with m.If((idx == 0) | (q > best)):
        m.d.sync += [best.eq(q), payload.cls.eq(idx)]
