"""A network's memory image: where each layer's weights and biases sit in an engine's memories,
the words the inference engine (``hw.net.mlp``, int8 weights) and the training engine
(``hw.net.trainer``, int16 masters) load, their decoding, and the state digest the training
engine computes after every step.

numpy only (no Amaranth, no torch), so the golden side, the cocotb benches and the engines share
one definition: :func:`inference_image`, :func:`training_image`, :func:`decode`,
:func:`digest`.

- Dense layer: one word per (neuron, input word), lane ``k`` the weight of the input that lane
  ``k`` of that activation word holds (``golden.layers.word_index`` of the layer's input: a
  conv's output map for a dense layer after a conv), 0 in padding lanes; one bias per neuron.
- Conv layer: one word per (group of ``P`` output channels, tap, input channel) in that order,
  lane ``k`` the weight of output channel ``group * P + k`` (0 past the last, the *broadcast*
  layout: one input code meets ``P`` weights), and ``P`` biases per group (0 past the last).
"""

from dataclasses import dataclass

import numpy as np

from helu.golden import fixed, layers

__all__ = [
    "Plan",
    "plans",
    "chunks",
    "pack",
    "unpack",
    "layer_words",
    "layer_arrays",
    "Image",
    "inference_image",
    "training_image",
    "decode",
    "digest",
    "DIGEST_WIDTH",
    "fold",
    "flat_state",
]


def chunks(n: int, lanes: int) -> int:
    """Words of ``lanes`` codes that ``n`` codes take."""
    return -(-n // lanes)


@dataclass(frozen=True)
class Plan:
    """How one layer runs: its loop nest in issue cycles, and where its words are.

    Dense (``conv`` false): ``outs`` neurons, each over the ``chunks`` words of its input, ``P``
    lanes a word (one output at a time: ``P`` MACs into one accumulator). Conv: for each of
    ``positions`` output positions and ``groups`` groups of ``P`` output channels, one cycle per
    tap and input channel (``taps * c_in`` cycles, at least ``P``: the ``P`` biases enter one a
    cycle), one input code broadcast to ``P`` lanes of weights (``P`` accumulators, one per
    output channel).
    """

    op: object
    conv: bool
    in_shape: tuple  # the activation layout the layer reads (a conv's output map for a dense)
    in_words: int
    out_words: int
    wbase: int  # first weight word
    bbase: int  # first bias word
    outs: int = 0  # dense: neurons
    chunks: int = 0  # dense: input words per neuron
    groups: int = 0  # conv: groups of P output channels (= words per output position)
    group_cycles: int = 0  # conv: issue cycles per group

    @property
    def issues(self) -> int:
        if self.conv:
            return self.op.positions * self.groups * self.group_cycles
        return self.outs * self.chunks

    @property
    def weight_words(self) -> int:
        return self.groups * self.op.fan_in if self.conv else self.outs * self.chunks


def plans(ops, lanes: int) -> list[Plan]:
    """One :class:`Plan` per op of a chain (``golden.layers`` ops, flatten between them)."""
    out, wbase, bbase = [], 0, 0
    for i, op in enumerate(ops):
        in_shape = ops[i - 1].out_shape if i else op.in_shape
        in_words, out_words = layers.words(in_shape, lanes), layers.words(op.out_shape, lanes)
        if isinstance(op, layers.Conv2d):
            groups = chunks(op.out_channels, lanes)
            cycles = max(op.kernel * op.kernel * op.in_shape[2], lanes)
            plan = Plan(op, True, in_shape, in_words, out_words, wbase, bbase, groups=groups,
                        group_cycles=cycles)  # fmt: skip
            wbase += groups * op.fan_in
            bbase += groups * lanes
        else:
            plan = Plan(op, False, in_shape, in_words, out_words, wbase, bbase,
                        outs=op.out_features, chunks=in_words)  # fmt: skip
            wbase += op.out_features * in_words
            bbase += op.out_features
        out.append(plan)
    return out


def pack(codes: np.ndarray, width: int, lanes: int) -> list[int]:
    """Rows of ``lanes`` signed ``width``-bit codes as unsigned words, lane ``k`` at bit
    ``width * k``."""
    codes = fixed.to_unsigned(np.asarray(codes, dtype=np.int64), width)
    codes = codes.reshape(-1, lanes).astype(object)
    return [int(v) for v in (codes << (width * np.arange(lanes, dtype=object))).sum(1)]


def unpack(words, width: int, lanes: int) -> np.ndarray:
    """(len(words), lanes) signed codes of :func:`pack`'s words."""
    mask = (1 << width) - 1
    lanes_of = [[(int(w) >> (width * k)) & mask for k in range(lanes)] for w in words]
    return fixed.to_signed(np.array(lanes_of, dtype=np.int64).reshape(-1, lanes), width)


def layer_words(plan: Plan, w, b, lanes: int) -> tuple[np.ndarray, np.ndarray]:
    """``(weight codes (words, lanes), bias codes (bias words,))`` of one layer's matrix ``w``
    (out_channels, fan_in) and biases ``b`` in the plan's layout (module docstring)."""
    w = np.asarray(w, dtype=np.int64)
    b = np.asarray(b, dtype=np.int64)
    if plan.conv:
        c_out, fan_in = w.shape
        padded = np.zeros((plan.groups * lanes, fan_in), dtype=np.int64)
        padded[:c_out] = w
        # (group, lane, fan_in) -> (group, fan_in, lane): one word per (group, tap, channel)
        codes = padded.reshape(plan.groups, lanes, fan_in).transpose(0, 2, 1)
        bias = np.zeros(plan.groups * lanes, dtype=np.int64)
        bias[:c_out] = b
        return codes.reshape(-1, lanes), bias
    index = layers.word_index(plan.in_shape, lanes)  # (in_words, lanes)
    padded = np.concatenate([w, np.zeros((w.shape[0], 1), dtype=np.int64)], axis=1)
    return padded[:, index].reshape(-1, lanes), b


def layer_arrays(plan: Plan, codes: np.ndarray, bias, lanes: int):
    """Inverse of :func:`layer_words`: ``(w (out_channels, fan_in), b (out_channels,))`` from the
    layer's weight codes (words, lanes) and bias codes (padding lanes dropped)."""
    codes = np.asarray(codes, dtype=np.int64)
    bias = np.asarray(bias, dtype=np.int64)
    op = plan.op
    if plan.conv:
        w = codes.reshape(plan.groups, op.fan_in, lanes).transpose(0, 2, 1)
        w = w.reshape(plan.groups * lanes, op.fan_in)[: op.out_channels]
        return w, bias[: op.out_channels]
    index = layers.word_index(plan.in_shape, lanes).reshape(-1)
    rows = codes.reshape(plan.outs, -1)
    w = np.zeros((plan.outs, op.fan_in), dtype=np.int64)
    ok = index >= 0
    w[:, index[ok]] = rows[:, ok]
    return w, bias


# ---------------------------------------------------------------------------------------------
# Memory images: what an engine's ``load`` port writes and its ``read`` port returns.
# ---------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class Image:
    """An engine's memory words in this module's layout: ``weights`` one unsigned word of ``P``
    codes per (dense layer, neuron, input word) or (conv layer, group, tap, input channel), 0 in
    padding lanes (they meet stale activations, and the trainer never updates them); ``biases``
    one unsigned ``ACC_WIDTH``-bit pattern per neuron, ``P`` per conv group (0 past the last
    channel). Codes are int8 weights for the inference engine, int16 masters for the trainer."""

    weights: list
    biases: list

    def words(self) -> list[tuple[int, int]]:
        """``(addr, data)`` pairs of the ``load`` port (and the ``read`` port's address map):
        weights from 0, biases after them."""
        n = len(self.weights)
        return list(enumerate(self.weights)) + [(n + a, b) for a, b in enumerate(self.biases)]


def dense_ops(shape) -> list:
    """Layer ops from ``shape``: a list of ``golden.layers`` ops, or the sizes of a dense chain."""
    shape = list(shape)
    if all(isinstance(s, (int, np.integer)) and not isinstance(s, bool) for s in shape):
        return [layers.Dense(int(i), int(o)) for i, o in zip(shape[:-1], shape[1:], strict=True)]
    return shape


def _image(ops, weights, biases, width: int, lanes: int) -> Image:
    words, bias_words = [], []
    for plan, w, b in zip(plans(ops, lanes), weights, biases, strict=True):
        codes, bias = layer_words(plan, w, b, lanes)
        words += pack(codes, width, lanes)
        bias_words += [int(v) for v in fixed.to_unsigned(bias, fixed.ACC_WIDTH)]
    return Image(words, bias_words)


def inference_image(ops, weights, biases, lanes: int) -> Image:
    """The inference engine's words: int8 ``weights`` and int32 ``biases`` of the layer ``ops``
    (an ``IntModel``'s ``ops``, ``weights``, ``biases``) at ``lanes`` lanes."""
    return _image(ops, weights, biases, fixed.ACT_WIDTH, lanes)


def training_image(masters, biases, lanes: int, ops=None) -> Image:
    """The training engine's words: int16 ``masters`` and int32 ``biases`` at ``lanes`` lanes;
    ``ops``: the layers (default: a dense chain from the masters' shapes)."""
    if not ops:
        ops = [layers.Dense(int(np.shape(m)[1]), int(np.shape(m)[0])) for m in masters]
    ops = dense_ops(ops)
    return _image(ops, masters, biases, fixed.MASTER_WIDTH, lanes)


def _extent(chain, lanes: int) -> tuple[int, int]:
    """(weight words, bias words) of the plans ``chain``."""
    last = chain[-1]
    n_b = last.bbase + (last.groups * lanes if last.conv else last.outs)
    return last.wbase + last.weight_words, n_b


def _name(ops) -> str:
    if all(isinstance(op, layers.Dense) for op in ops):
        return str((ops[0].in_features, *(op.out_features for op in ops)))
    return ", ".join(op.describe() for op in ops)


def decode(words, shape, lanes: int) -> tuple[list[np.ndarray], list[np.ndarray]]:
    """``(masters, biases)`` from a training engine's words in the ``read`` port's order.

    ``shape``: the layer ops or, for a dense chain, its sizes. ``words`` holds every weight word,
    then every bias word, as read back; raises ``ValueError`` when their number does not match
    the layers at ``lanes`` lanes.
    """
    ops = dense_ops(shape)
    chain = plans(ops, lanes)
    n_w, n_b = _extent(chain, lanes)
    words = [int(w) for w in words]
    if len(words) != n_w + n_b:
        raise ValueError(f"{len(words)} words do not hold a {_name(ops)} net at {lanes} lanes")
    masters, biases = [], []
    bias_codes = fixed.to_signed(np.array(words[n_w:], dtype=np.int64), fixed.ACC_WIDTH)
    for plan in chain:
        block = words[plan.wbase : plan.wbase + plan.weight_words]
        codes = unpack(block, fixed.MASTER_WIDTH, lanes)
        count = plan.groups * lanes if plan.conv else plan.outs
        w, b = layer_arrays(plan, codes, bias_codes[plan.bbase : plan.bbase + count], lanes)
        masters.append(w)
        biases.append(b)
    return masters, biases


def flat_state(masters, biases) -> np.ndarray:
    """Masters then biases, layer by layer, as one int64 vector (what full checks compare)."""
    parts = [np.asarray(a, dtype=np.int64).ravel() for a in (*masters, *biases)]
    return np.concatenate(parts)


# ---------------------------------------------------------------------------------------------
# The state digest: a checksum the training engine folds from the words its backward pass writes.
# ---------------------------------------------------------------------------------------------

DIGEST_WIDTH = 32
_MASK = (1 << DIGEST_WIDTH) - 1


def fold(word: int) -> int:
    """XOR of the ``DIGEST_WIDTH``-bit slices of ``word`` (zero-extended to whole slices)."""
    out = 0
    while word:
        out ^= word & _MASK
        word >>= DIGEST_WIDTH
    return out


def _rotate_in(d: int, x: int) -> int:
    """One digest step: ``rotl(d, 1) ^ x``."""
    return (((d << 1) | (d >> (DIGEST_WIDTH - 1))) & _MASK) ^ x


def digest(img: Image, shape, lanes: int) -> int:
    """The training engine's ``digest`` after a step whose new state is ``img``: the words in the
    order the backward pass writes them (last layer first; a dense layer per neuron its words,
    the bias folded into word 0's step; a conv layer per group its ``fan_in`` words, then its
    ``P`` biases, one step each), each :func:`fold`-ed to 32 bits, combined as
    ``d = rotl(d, 1) ^ word`` from ``d = 0``. ``shape``: the layer ops or a dense chain's sizes.

    A linear checksum: any single wrong bit changes it. The full state is compared through the
    ``read`` port; the digest makes a per-step check cost nothing in simulation. It depends on
    the lane count (the words' layout): a trajectory states the ``lanes`` its digests are for.
    """
    ops = dense_ops(shape)
    chain = plans(ops, lanes)
    n_w, n_b = _extent(chain, lanes)
    if len(img.weights) != n_w or len(img.biases) != n_b:
        raise ValueError(f"the image does not hold a {_name(ops)} net at {lanes} lanes")
    d = 0
    for plan in reversed(chain):
        if plan.conv:
            fan_in = plan.op.fan_in
            for g in range(plan.groups):
                for j in range(fan_in):
                    d = _rotate_in(d, fold(img.weights[plan.wbase + g * fan_in + j]))
                for k in range(lanes):
                    d = _rotate_in(d, img.biases[plan.bbase + g * lanes + k])
            continue
        for o in range(plan.outs):
            for c in range(plan.chunks):
                x = fold(img.weights[plan.wbase + o * plan.chunks + c])
                if c == 0:
                    x ^= img.biases[plan.bbase + o]
                d = _rotate_in(d, x)
    return d
