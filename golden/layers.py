"""Layer ops of the integer network: the geometry a layer's arithmetic runs over.

numpy only, so the RTL generator and the cocotb benches can use it. An op says which inputs each
output of a layer sees; the arithmetic itself is the one of ``golden.intmodel.linear`` (the rules
of ``golden.fixed``) applied to the op's **windows**: a convolution is the same
accumulate-requantize-HeLU as a dense layer, over the windows of its input.

Activations are flat vectors. A feature map ``(H, W, C)`` is stored in HWC order (channel
fastest), so flattening between a convolution and a dense layer is the identity and a dense layer
is a 1 x 1 map: ``H = W = 1``.

- :class:`Dense` ``in_features -> out_features``: one window, the whole input.
- :class:`Conv2d` ``(H, W, C_in) -> (OH, OW, C_out)``, a ``k x k`` kernel, stride 1 or 2, zero
  padding ``p``: ``OH = (H + 2p - k) // stride + 1``; window of output ``(oy, ox)`` lists the
  inputs ``(oy * stride + ky - p, ox * stride + kx - p, c)`` in ``(ky, kx, c)`` order, a padding
  position standing for code 0. The weight matrix is ``(C_out, k * k * C_in)`` in that order
  (PyTorch's ``(C_out, C_in, k, k)`` permuted).

Each op gives :meth:`windows` (gather, for the forward), :meth:`scatter` (its transpose, for the
backward deltas: each window element's contribution added back to its input), and
:meth:`loop_nest` (the loops an engine runs, outermost first). All are array-generic: numpy arrays
and torch tensors alike.
"""

from dataclasses import dataclass
from functools import cached_property

import numpy as np

__all__ = ["Dense", "Conv2d", "OPS", "op_from_dict", "positions_channels", "words", "word_index"]


def _positive(name: str, value) -> int:
    if isinstance(value, bool) or not isinstance(value, (int, np.integer)) or value < 1:
        raise ValueError(f"{name} must be a positive integer, not {value!r}")
    return int(value)


def _is_numpy(x) -> bool:
    return isinstance(x, np.ndarray)


@dataclass(frozen=True)
class Dense:
    """A fully connected layer: ``out_features`` outputs, each over all ``in_features`` inputs."""

    in_features: int
    out_features: int

    op = "dense"

    def __post_init__(self):
        _positive("Dense in_features", self.in_features)
        _positive("Dense out_features", self.out_features)

    @property
    def in_shape(self) -> tuple[int, ...]:
        return (self.in_features,)

    @property
    def out_shape(self) -> tuple[int, ...]:
        return (self.out_features,)

    @property
    def in_size(self) -> int:
        return self.in_features

    @property
    def out_size(self) -> int:
        return self.out_features

    @property
    def fan_in(self) -> int:
        """Inputs of one output: the weight matrix is ``(out_channels, fan_in)``."""
        return self.in_features

    @property
    def out_channels(self) -> int:
        return self.out_features

    @property
    def positions(self) -> int:
        """Windows (output positions); every one uses the same weight matrix."""
        return 1

    @property
    def macs(self) -> int:
        return self.in_features * self.out_features

    def windows(self, x):
        """``x`` (..., in) -> (..., 1, in)."""
        return x[..., None, :]

    def scatter(self, cols):
        """Transpose of :meth:`windows`: (..., 1, in) -> (..., in)."""
        return cols[..., 0, :]

    def loop_nest(self) -> list[tuple[str, int]]:
        return [
            ("position", 1),
            ("out_channel", self.out_features),
            ("tap", 1),
            ("in_channel", self.in_features),
        ]

    def to_dict(self) -> dict:
        return {"op": self.op, "in_features": self.in_features, "out_features": self.out_features}

    def describe(self) -> str:
        return f"dense {self.in_features}->{self.out_features}"


@dataclass(frozen=True)
class Conv2d:
    """A 2-D convolution over an HWC feature map (see the module docstring for the geometry)."""

    in_shape: tuple[int, int, int]  # (H, W, C_in)
    out_channels: int
    kernel: int
    stride: int = 1
    padding: int = 0

    op = "conv2d"

    def __post_init__(self):
        shape = tuple(self.in_shape)
        if len(shape) != 3:
            raise ValueError(f"Conv2d input shape must be (H, W, C), not {shape}")
        for name, value in zip(("height", "width", "channels"), shape, strict=True):
            _positive(f"Conv2d input {name}", value)
        object.__setattr__(self, "in_shape", tuple(int(v) for v in shape))
        _positive("Conv2d out_channels", self.out_channels)
        _positive("Conv2d kernel", self.kernel)
        if self.stride not in (1, 2):
            raise ValueError(f"Conv2d stride must be 1 or 2, not {self.stride!r}")
        if isinstance(self.padding, bool) or not isinstance(self.padding, int) or self.padding < 0:
            raise ValueError(f"Conv2d padding must be an integer >= 0, not {self.padding!r}")
        if self.padding >= self.kernel:
            raise ValueError(
                f"Conv2d padding {self.padding} must be smaller than the kernel {self.kernel}"
            )
        h, w, _ = self.in_shape
        if h + 2 * self.padding < self.kernel or w + 2 * self.padding < self.kernel:
            raise ValueError(
                f"a {self.kernel}x{self.kernel} kernel does not fit a {h}x{w} input padded by "
                f"{self.padding}"
            )

    @property
    def out_shape(self) -> tuple[int, int, int]:
        h, w, _ = self.in_shape
        k, s, p = self.kernel, self.stride, self.padding
        return ((h + 2 * p - k) // s + 1, (w + 2 * p - k) // s + 1, self.out_channels)

    @property
    def in_size(self) -> int:
        return int(np.prod(self.in_shape))

    @property
    def out_size(self) -> int:
        return int(np.prod(self.out_shape))

    @property
    def fan_in(self) -> int:
        return self.kernel * self.kernel * self.in_shape[2]

    @property
    def positions(self) -> int:
        oh, ow, _ = self.out_shape
        return oh * ow

    @property
    def macs(self) -> int:
        """Multiply-accumulates of one sample, padding taps included (they multiply a 0)."""
        return self.positions * self.out_channels * self.fan_in

    @cached_property
    def index(self) -> np.ndarray:
        """(positions, fan_in) flat input index of each window element; ``in_size`` for padding."""
        h, w, c = self.in_shape
        oh, ow, _ = self.out_shape
        k, s, p = self.kernel, self.stride, self.padding
        oy, ox, ky, kx, ch = np.meshgrid(
            np.arange(oh), np.arange(ow), np.arange(k), np.arange(k), np.arange(c), indexing="ij"
        )
        y, x = oy * s + ky - p, ox * s + kx - p
        inside = (y >= 0) & (y < h) & (x >= 0) & (x < w)
        flat = np.where(inside, (y * w + x) * c + ch, self.in_size)
        return flat.reshape(oh * ow, k * k * c).astype(np.int64)

    def windows(self, x):
        """``x`` (..., in_size) -> (..., positions, fan_in), padding positions as 0."""
        if _is_numpy(x):
            padded = np.concatenate([x, np.zeros((*x.shape[:-1], 1), dtype=x.dtype)], axis=-1)
            return padded[..., self.index]
        import torch  # only torch tensors reach here

        padded = torch.cat([x, x.new_zeros((*x.shape[:-1], 1))], dim=-1)
        return padded[..., torch.from_numpy(self.index).to(x.device)]

    def scatter(self, cols):
        """Transpose of :meth:`windows`: (..., positions, fan_in) summed into (..., in_size)."""
        lead = cols.shape[:-2]
        flat_index = self.index.reshape(-1)
        if _is_numpy(cols):
            rows = cols.reshape(-1, flat_index.size)
            out = np.zeros((rows.shape[0], self.in_size + 1), dtype=cols.dtype)
            np.add.at(out, (slice(None), flat_index), rows)
            return out[:, :-1].reshape(*lead, self.in_size)
        import torch

        rows = cols.reshape(-1, flat_index.size)
        out = rows.new_zeros((rows.shape[0], self.in_size + 1))
        out.index_add_(1, torch.from_numpy(flat_index).to(cols.device), rows)
        return out[:, :-1].reshape(*lead, self.in_size)

    def loop_nest(self) -> list[tuple[str, int]]:
        return [
            ("position", self.positions),
            ("out_channel", self.out_channels),
            ("tap", self.kernel * self.kernel),
            ("in_channel", self.in_shape[2]),
        ]

    def to_dict(self) -> dict:
        return {
            "op": self.op,
            "in_shape": list(self.in_shape),
            "out_channels": self.out_channels,
            "kernel": self.kernel,
            "stride": self.stride,
            "padding": self.padding,
        }

    def describe(self) -> str:
        h, w, c = self.in_shape
        oh, ow, co = self.out_shape
        return (
            f"conv{self.kernel}x{self.kernel}/{self.stride} pad {self.padding} "
            f"{h}x{w}x{c}->{oh}x{ow}x{co}"
        )


OPS = {"dense": Dense, "conv2d": Conv2d}


def op_from_dict(d: dict):
    """The op a :meth:`to_dict` describes; ``ValueError`` naming what is wrong."""
    if not isinstance(d, dict) or d.get("op") not in OPS:
        raise ValueError(f"a layer must be one of {', '.join(OPS)}, not {d!r}")
    fields = {k: v for k, v in d.items() if k != "op"}
    try:
        return OPS[d["op"]](**fields)
    except TypeError as exc:
        raise ValueError(f"layer {d!r}: {exc}") from None


# ---------------------------------------------------------------------------------------------
# Activations in memory words of ``lanes`` codes (the engines' layout, numpy only).
# ---------------------------------------------------------------------------------------------


def positions_channels(shape) -> tuple[int, int]:
    """``(positions, channels)`` of an activation shape: ``(F,)`` is one position of ``F``
    channels, ``(H, W, C)`` is ``H * W`` positions of ``C``."""
    shape = tuple(shape)
    if len(shape) == 1:
        return 1, int(shape[0])
    h, w, c = shape
    return int(h * w), int(c)


def words(shape, lanes: int) -> int:
    """Memory words of ``lanes`` codes an activation of ``shape`` takes: per position, its
    channels in ``ceil(C / lanes)`` words (lanes past the last channel are padding)."""
    positions, channels = positions_channels(shape)
    return positions * -(-channels // lanes)


def word_index(shape, lanes: int) -> np.ndarray:
    """(words, lanes) flat HWC index of the code in each lane of each word; -1 for padding.

    Word ``p * ceil(C / lanes) + w`` holds channels ``w * lanes ...`` of position ``p``, so a
    dense layer's input is its flat vector in ``ceil(F / lanes)`` words and a feature map whose
    ``C`` is a multiple of ``lanes`` is its flat HWC vector, ``lanes`` codes a word.
    """
    positions, channels = positions_channels(shape)
    chunks = -(-channels // lanes)
    c = np.arange(chunks * lanes).reshape(chunks, lanes)
    flat = np.arange(positions)[:, None, None] * channels + c[None]
    return np.where(c[None] < channels, flat, -1).reshape(positions * chunks, lanes)
