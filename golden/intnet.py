"""The integer HeLU MLP in PyTorch: post-training quantization and the float nets it starts from.

The network's arithmetic is written once, in ``golden.fixed`` (the rules) and ``golden.intmodel``
(the layer and inference, array-generic); this module runs it on torch int64 tensors and adds what
needs torch: training the float network that is quantized, and post-training quantization (PTQ)
with one power-of-two scale per tensor.

Scales, all powers of two (hardware shifts, never multiplies):

- inputs: the raw digits pixels, codes ``0..16`` with ``INPUT_FRAC = 4`` fractional bits, so the
  float network sees ``pixel / 16`` in ``[0, 1]``;
- layer ``l``: int8 weights with ``w_frac[l]`` fractional bits (the finest that saturates
  nothing), a bias at the accumulator's scale ``w_frac[l] + in_frac[l]``, and an int8 output with
  ``out_frac[l]`` fractional bits, so ``shift[l] = w_frac[l] + in_frac[l] - out_frac[l]``;
  ``out_frac[l]`` is chosen on the training split: the one whose requantized outputs are closest
  (squared error, saturation included) to the exact accumulator values;
- HeLU's threshold: ``T = fixed.threshold(alpha, Q8.out_frac[0])`` (mask ``q > T``).

The float net for PTQ is ``golden.models``' MLP, either trained here on ``pixel / 16``
(:func:`train_float`) or read from a ``helu train`` checkpoint, whose input standardisation
``(x - mean) / std`` is folded into the first layer (:func:`float_layers`).
"""

import math
from dataclasses import dataclass

import numpy as np
import torch
import torch.nn.functional as F

from helu.golden import fixed, intmodel
from helu.golden.intmodel import IntModel

__all__ = [
    "INPUT_FRAC",
    "INPUT_MAX",
    "HIDDEN",
    "FloatConfig",
    "Quantized",
    "pixels",
    "train_float",
    "float_accuracy",
    "float_layers",
    "ptq",
    "accuracy",
]

INPUT_FRAC = 4  # pixel codes 0..16 stand for pixel / 16
INPUT_MAX = 16
# 64-32-32-10: int8 weights 3,392 bytes (7 of the iCE40 UP5K's 30 4-Kbit block RAMs as 512x8),
# int16 masters for training 14 more; the layer sizes of the on-chip network.
HIDDEN = (32, 32)


def pixels(split) -> tuple[np.ndarray, np.ndarray]:
    """``(x_train, x_test)`` as raw pixel codes (int64, 0..16) of a ``golden.data`` digits split.

    The split is the project's (stratified, seeded); its standardisation is undone exactly
    (every pixel is an integer), so the integer network sees the same samples as the float study.
    """
    if split.name != "digits":
        raise ValueError(f"the integer network takes digits pixels, not {split.name!r}")
    out = []
    for x in (split.x_train, split.x_test):
        raw = x.astype(np.float64) * split.std + split.mean
        codes = np.rint(raw)
        if np.abs(raw - codes).max() > 1e-3 or codes.min() < 0 or codes.max() > INPUT_MAX:
            raise ValueError("digits split does not hold integer pixels 0..16")
        out.append(codes.astype(np.int64))
    return out[0], out[1]


@dataclass
class FloatConfig:
    """A float 64-32-32-10 HeLU MLP trained on ``pixel / 16`` (the PTQ starting point)."""

    hidden: tuple[int, ...] = HIDDEN
    alpha: float = 0.05
    seed: int = 0
    epochs: int = 40
    batch_size: int = 32
    lr: float = 0.05
    momentum: float = 0.9


def train_float(x_train, y_train, cfg: FloatConfig | None = None):
    """Train ``golden.models``' MLP with HeLU on pixel codes ``x_train`` (scaled by 2**-4).

    Cross-entropy, SGD with momentum, deterministic (seeded init and order, one thread).
    """
    from helu.golden.models import ModelConfig, build

    cfg = FloatConfig() if cfg is None else cfg
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    try:
        torch.manual_seed(cfg.seed)
        model = build(ModelConfig(in_features=64, hidden=cfg.hidden, act="helu", alpha=cfg.alpha))
        opt = torch.optim.SGD(model.parameters(), lr=cfg.lr, momentum=cfg.momentum)
        x = torch.from_numpy(np.ldexp(np.asarray(x_train, dtype=np.float32), -INPUT_FRAC))
        y = torch.from_numpy(np.asarray(y_train, dtype=np.int64))
        gen = torch.Generator().manual_seed(cfg.seed)
        for _ in range(cfg.epochs):
            order = torch.randperm(len(x), generator=gen)
            for i in range(0, len(x), cfg.batch_size):
                idx = order[i : i + cfg.batch_size]
                loss = F.cross_entropy(model(x[idx]), y[idx])
                opt.zero_grad(set_to_none=True)
                loss.backward()
                opt.step()
    finally:
        torch.set_num_threads(threads)
    model.eval()
    return model


def float_layers(model, mean=None, std=None) -> list[tuple[np.ndarray, np.ndarray]]:
    """``[(W (out, in), b (out,)), ...]`` in float64 of an MLP, for inputs ``pixel / 16``.

    With ``mean``/``std`` (a ``helu train`` model, trained on standardised pixels), the
    standardisation is folded into the first layer: ``W' = W * 16 / std``,
    ``b' = b - W @ (mean / std)``.
    """
    names = [f"fc{i}" for i in range(1, model.n_act + 1)] + ["out"]
    layers = []
    for name in names:
        lin = getattr(model, name, None)
        if lin is None or not hasattr(lin, "weight"):
            raise ValueError(f"the integer network needs an MLP; this model has no {name!r} layer")
        w = lin.weight.detach().double().numpy().copy()
        b = lin.bias.detach().double().numpy().copy()
        layers.append((w, b))
    if mean is not None:
        mean, std = np.asarray(mean, np.float64), np.asarray(std, np.float64)
        w, b = layers[0]
        layers[0] = (w * (2**INPUT_FRAC / std), b - w @ (mean / std))
    return layers


def float_accuracy(layers, x_codes, labels, alpha: float | None = None) -> float:
    """Test accuracy of the float network ``layers`` (ReLU forward) on pixel codes."""
    x = np.ldexp(np.asarray(x_codes, dtype=np.float64), -INPUT_FRAC)
    for i, (w, b) in enumerate(layers):
        x = x @ w.T + b
        if i < len(layers) - 1:
            x = np.maximum(x, 0.0)
    return float(np.mean(x.argmax(1) == np.asarray(labels)))


@dataclass
class Quantized:
    """A PTQ result: the integer model and the power-of-two scales it was built with."""

    model: IntModel
    in_fracs: list[int]  # fractional bits of each layer's input codes
    w_fracs: list[int]  # of each layer's int8 weights
    out_fracs: list[int]  # of each layer's int8 outputs (pre-activation codes)
    alpha: float
    errors: list[float]  # RMS error of each layer's output on the training split, in LSB

    def describe(self) -> dict:
        return {
            "input_frac": self.in_fracs[0],
            "w_fracs": self.w_fracs,
            "out_fracs": self.out_fracs,
            "acc_fracs": [w + i for w, i in zip(self.w_fracs, self.in_fracs, strict=True)],
            "shifts": self.model.shifts,
            "alpha": self.alpha,
            "threshold": self.model.threshold,
            "rms_error_lsb": self.errors,
        }


def _choose_out_frac(acc: np.ndarray, acc_frac: int, hidden: bool) -> tuple[int, float]:
    """The output scale whose requantized codes are closest to ``acc`` (exact) on the data.

    Hidden layers are judged after the forward (negative codes all give 0); the last layer on
    every code. Returns ``(out_frac, RMS error in output LSB)``.
    """
    exact = np.ldexp(acc.astype(np.float64), -acc_frac)
    if hidden:
        exact = np.maximum(exact, 0.0)
    best = None
    for out_frac in range(acc_frac, acc_frac - fixed.ACC_WIDTH + 1, -1):
        q = fixed.requantize(acc, acc_frac - out_frac)
        if hidden:
            q = fixed.forward(q)
        err = float(np.mean((np.ldexp(q.astype(np.float64), -out_frac) - exact) ** 2))
        if best is None or err < best[1]:
            best = (out_frac, err)
    out_frac, err = best
    return out_frac, math.sqrt(err) * 2.0**out_frac


def ptq(layers, x_train, alpha: float = 0.05) -> Quantized:
    """Post-training quantization of float ``layers`` (for inputs ``pixel / 16``) to an IntModel.

    ``x_train`` (pixel codes, int64) is the data the output scales are chosen on.
    """
    x = np.asarray(x_train, dtype=np.int64)
    in_frac = INPUT_FRAC
    weights, biases, shifts, in_fracs, w_fracs, out_fracs, errors = [], [], [], [], [], [], []
    for i, (w, b) in enumerate(layers):
        w_frac = fixed.choose_frac(w, fixed.ACT_WIDTH)
        wq, _ = fixed.quantize(w, fixed.Format(fixed.ACT_WIDTH, w_frac))
        acc_frac = w_frac + in_frac
        bq, saturated = fixed.quantize(b, fixed.Format(fixed.ACC_WIDTH, acc_frac))
        if saturated:
            raise ValueError(
                f"layer {i}: a bias does not fit the {fixed.ACC_WIDTH}-bit accumulator"
            )
        acc = x @ wq.T + bq
        hidden = i < len(layers) - 1
        out_frac, err = _choose_out_frac(acc, acc_frac, hidden)
        shift = acc_frac - out_frac
        q = fixed.requantize(acc, shift)
        x = fixed.forward(q) if hidden else q
        weights.append(wq)
        biases.append(bq)
        shifts.append(shift)
        in_fracs.append(in_frac)
        w_fracs.append(w_frac)
        out_fracs.append(out_frac)
        errors.append(err)
        in_frac = out_frac
    t = fixed.threshold(alpha, fixed.Format(fixed.ACT_WIDTH, out_fracs[0]))
    model = IntModel(weights, biases, shifts, t, input_max=INPUT_MAX)
    return Quantized(model, in_fracs, w_fracs, out_fracs, float(alpha), errors)


def accuracy(model: IntModel, x_codes, labels) -> float:
    """Test accuracy of the integer model (torch int64 inference, ``intmodel.infer``)."""
    _, cls = intmodel.infer(model, torch.as_tensor(np.asarray(x_codes, dtype=np.int64)))
    return float((cls.numpy() == np.asarray(labels)).mean())
