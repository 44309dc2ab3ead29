"""Where a layer's weights and biases sit in an engine's memories: shared by the inference engine
(``hw.net.mlp``, int8 weights) and the training engine (``hw.net.trainer``, int16 masters).

numpy only (no Amaranth), so the cocotb benches can decode and digest memory images.

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

__all__ = ["Plan", "plans", "chunks", "pack", "unpack", "layer_words", "layer_arrays"]


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
