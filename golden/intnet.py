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
    "LOGITS_FRAC",
    "HIDDEN",
    "FloatConfig",
    "Quantized",
    "pixels",
    "train_float",
    "float_accuracy",
    "float_layers",
    "ptq",
    "accuracy",
    "FINE_TUNE_LR_SHIFT",
    "CNN_OPS",
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
    loss: str = "ce"  # "ce", or "mse": the integer loss's, 0.5 * |z - onehot|**2 (target 1.0)


def train_float(x_train, y_train, cfg: FloatConfig | None = None):
    """Train ``golden.models``' MLP with HeLU on pixel codes ``x_train`` (scaled by 2**-4).

    Cross-entropy (or ``cfg.loss = "mse"``), SGD with momentum, deterministic (seeded init and
    order, one thread).
    """
    if cfg is not None and cfg.loss not in ("ce", "mse"):
        raise ValueError(f"float loss must be 'ce' or 'mse', not {cfg.loss!r}")
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
                z = model(x[idx])
                if cfg.loss == "ce":
                    loss = F.cross_entropy(z, y[idx])
                else:
                    loss = 0.5 * ((z - F.one_hot(y[idx], z.shape[1])) ** 2).sum(1).mean()
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


def ptq(
    layers,
    x_train,
    alpha: float = 0.05,
    logits_frac: int | None = None,
    *,
    ops=None,
    input: intmodel.InputFormat = intmodel.PIXELS,
) -> Quantized:
    """Post-training quantization of float ``layers`` to an IntModel.

    ``layers`` are ``[(W (out_channels, fan_in), b (out_channels,)), ...]`` in float64 for
    inputs ``code * 2**-input.frac``, over the layer ops ``ops`` (``golden.layers``; default: dense
    layers from the shapes of ``W``). ``x_train`` (input codes, int64, (N, in_size) flat HWC) is
    the data the output scales are chosen on; ``logits_frac`` fixes the last layer's instead
    (fine-tuning with the integer loss wants the one-hot target ``fixed.TARGET`` to stand for
    1.0: ``logits_frac = 5``).
    """
    if ops is None:
        ops = [intmodel.Dense(np.shape(w)[1], np.shape(w)[0]) for w, _ in layers]
    x = np.asarray(x_train, dtype=np.int64)
    in_frac = input.frac
    weights, biases, shifts, in_fracs, w_fracs, out_fracs, errors = [], [], [], [], [], [], []
    for i, ((w, b), op) in enumerate(zip(layers, ops, strict=True)):
        w_frac = fixed.choose_frac(w, fixed.ACT_WIDTH)
        wq, _ = fixed.quantize(w, fixed.Format(fixed.ACT_WIDTH, w_frac))
        acc_frac = w_frac + in_frac
        bq, saturated = fixed.quantize(b, fixed.Format(fixed.ACC_WIDTH, acc_frac))
        if saturated:
            raise ValueError(
                f"layer {i}: a bias does not fit the {fixed.ACC_WIDTH}-bit accumulator"
            )
        acc = op.windows(x) @ wq.T + bq  # (N, positions, out_channels)
        hidden = i < len(layers) - 1
        out_frac, err = _choose_out_frac(acc, acc_frac, hidden)
        if not hidden and logits_frac is not None:
            out_frac = min(logits_frac, acc_frac)
        shift = acc_frac - out_frac
        q = fixed.requantize(acc, shift).reshape(len(x), op.out_size)
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
    model = IntModel(weights, biases, shifts, t, input, list(ops))
    return Quantized(model, in_fracs, w_fracs, out_fracs, float(alpha), errors)


def accuracy(model: IntModel, x_codes, labels) -> float:
    """Test accuracy of the integer model (torch int64 inference, ``intmodel.infer``)."""
    _, cls = intmodel.infer(model, torch.as_tensor(np.asarray(x_codes, dtype=np.int64)))
    return float((cls.numpy() == np.asarray(labels)).mean())


# ---------------------------------------------------------------------------------------------
# Integer training: the golden model of the on-chip training step.
# ---------------------------------------------------------------------------------------------


@dataclass
class Scales:
    """Fractional bits of every integer tensor of the network; every shift derives from them.

    ``in_fracs[i]``, ``w_fracs[i]`` (the int8 shadow weights; masters have ``SHADOW_SHIFT`` more)
    and ``out_fracs[i]`` (the int8 pre-activations ``q``) per layer; ``delta_fracs[i]`` of the
    int8 delta at layer ``l``'s output (the last is the logits' own scale: ``e`` is in logit
    codes); ``lr_shift``: the learning rate is ``2**-lr_shift``.
    """

    in_fracs: list[int]
    w_fracs: list[int]
    out_fracs: list[int]
    delta_fracs: list[int]
    lr_shift: int = 5

    def __post_init__(self):
        n = len(self.w_fracs)
        if not n or any(len(f) != n for f in (self.in_fracs, self.out_fracs, self.delta_fracs)):
            raise ValueError("scales need one in, weight, out and delta frac per layer")
        if self.delta_fracs[-1] != self.out_fracs[-1]:
            raise ValueError("the last delta (e = L - TARGET * onehot) has the logits' scale")
        for name, shifts in (("forward", self.forward_shifts), ("delta", self.delta_shifts)):
            if any(s < 0 for s in shifts):
                raise ValueError(f"a {name} shift is negative ({shifts}): scales do not chain")

    @classmethod
    def chain(cls, in_frac, w_fracs, out_fracs, delta_gain: int = 2, lr_shift: int = 5):
        """Chained scales: each hidden delta ``delta_gain`` bits finer than the next."""
        in_fracs = [in_frac, *out_fracs[:-1]]
        deltas = [out_fracs[-1]]
        for _ in out_fracs[:-1]:
            deltas.insert(0, deltas[0] + delta_gain)
        return cls(in_fracs, list(w_fracs), list(out_fracs), deltas, lr_shift)

    @property
    def forward_shifts(self) -> list[int]:
        """Requantization shift of each layer: accumulator scale minus output scale."""
        return [
            w + i - o for w, i, o in zip(self.w_fracs, self.in_fracs, self.out_fracs, strict=True)
        ]

    @property
    def delta_shifts(self) -> list[int]:
        """Shift of the backward sum ``W[i+1].T @ d[i+1]`` into delta ``l`` (hidden layers)."""
        return [
            self.w_fracs[i + 1] + self.delta_fracs[i + 1] - self.delta_fracs[i]
            for i in range(len(self.w_fracs) - 1)
        ]

    @property
    def grad_shifts(self) -> list[int]:
        """Update shift of each layer's int16 masters: gradient scale + lr minus master scale."""
        return [
            d + i + self.lr_shift - (w + fixed.SHADOW_SHIFT)
            for d, i, w in zip(self.delta_fracs, self.in_fracs, self.w_fracs, strict=True)
        ]

    @property
    def bias_shifts(self) -> list[int]:
        """Update shift of each layer's biases (accumulator scale)."""
        return [
            d + self.lr_shift - (w + i)
            for d, i, w in zip(self.delta_fracs, self.in_fracs, self.w_fracs, strict=True)
        ]

    def describe(self) -> dict:
        return {
            "in_fracs": self.in_fracs,
            "w_fracs": self.w_fracs,
            "master_fracs": [w + fixed.SHADOW_SHIFT for w in self.w_fracs],
            "out_fracs": self.out_fracs,
            "delta_fracs": self.delta_fracs,
            "lr_shift": self.lr_shift,
            "forward_shifts": self.forward_shifts,
            "delta_shifts": self.delta_shifts,
            "grad_shifts": self.grad_shifts,
            "bias_shifts": self.bias_shifts,
        }


# Logits in Q8.5: the integer loss's one-hot target fixed.TARGET = 32 stands for 1.0, the float
# twin's target (scratch training, and PTQ of a float net trained with the squared error).
LOGITS_FRAC = 5
# From scratch: pixels / 16, shadow weights Q8.6 (masters Q16.14), hidden Q8.4, logits Q8.5.
SCRATCH_W_FRACS = (6, 6, 6)
SCRATCH_OUT_FRACS = (4, 4, LOGITS_FRAC)


# The digits CNN of the integer study (the example user model's shape, golden.examples):
# conv3x3 1->8 (pad 1), conv3x3 stride 2 8->16 (pad 1), dense 256->10, on HWC pixel codes.
CNN_OPS = (
    intmodel.Conv2d((8, 8, 1), 8, 3, 1, 1),
    intmodel.Conv2d((8, 8, 8), 16, 3, 2, 1),
    intmodel.Dense(256, 10),
)


def scratch_scales(delta_gain: int = 2, lr_shift: int = 5) -> Scales:
    return Scales.chain(INPUT_FRAC, SCRATCH_W_FRACS, SCRATCH_OUT_FRACS, delta_gain, lr_shift)


# Fine-tuning an imported (cross-entropy trained) model with the integer loss: learning rate
# 2**-9. Measured on the example models (wine, breast cancer, digits MLP), two epochs at batch 1:
# 2**-5 (the scratch rate) collapsed the digits and breast-cancer MLPs to chance from 97 %; 2**-9
# kept every one within 2 points of its PTQ accuracy.
FINE_TUNE_LR_SHIFT = 9


def ptq_scales(q: Quantized, delta_gain: int = 2, lr_shift: int = 5) -> Scales:
    return Scales.chain(q.in_fracs[0], q.w_fracs, q.out_fracs, delta_gain, lr_shift)


class IntNet:
    """``R`` integer MLPs trained side by side, each on one sample per step (batch 1).

    State per run: int16 master weights ``masters[i]`` (R, out, in), int32 biases ``biases[i]``
    (R, out) at the accumulator's scale, a threshold ``thresholds`` (R,). Every multiply uses the
    int8 shadow ``fixed.shadow_weights(master)``. All tensors are torch int64; the arithmetic is
    ``golden.fixed``'s rules and ``golden.intmodel.linear``, nothing restated here.
    """

    def __init__(
        self, masters, biases, scales: Scales, thresholds, ops=None, input=intmodel.PIXELS
    ):
        self.masters = [torch.as_tensor(m, dtype=torch.int64).clone() for m in masters]
        self.biases = [torch.as_tensor(b, dtype=torch.int64).clone() for b in biases]
        self.scales = scales
        # Layer ops (golden.layers); default: dense layers from the masters' shapes (an MLP).
        self.ops = (
            list(ops)
            if ops is not None
            else [intmodel.Dense(m.shape[-1], m.shape[-2]) for m in self.masters]
        )
        self.input = input
        self.thresholds = torch.as_tensor(thresholds, dtype=torch.int64).reshape(-1)
        runs = self.masters[0].shape[0]
        if len(self.thresholds) == 1:
            self.thresholds = self.thresholds.expand(runs).clone()
        if len(self.masters) != len(scales.w_fracs) or len(self.thresholds) != runs:
            raise ValueError("one master, bias and scale per layer and one threshold per run")
        master = fixed.Format(fixed.MASTER_WIDTH, 0)
        lo, hi = master.min_code, master.max_code
        if any(int(m.min()) < lo or int(m.max()) > hi for m in self.masters):
            raise ValueError(f"master weights outside int{fixed.MASTER_WIDTH}")

    @property
    def runs(self) -> int:
        return self.masters[0].shape[0]

    @classmethod
    def from_model(cls, model: IntModel, scales: Scales, runs: int = 1, thresholds=None):
        """Masters whose shadows are ``model``'s weights (fine-tuning a PTQ model)."""
        masters = [
            fixed.master_from_shadow(torch.from_numpy(w)).expand(runs, -1, -1)
            for w in model.weights
        ]
        biases = [torch.from_numpy(b).expand(runs, -1) for b in model.biases]
        t = model.threshold if thresholds is None else thresholds
        return cls(masters, biases, scales, t, model.ops, model.input)

    @classmethod
    def scratch(cls, seeds, scales: Scales, thresholds, sizes=(64, *HIDDEN, 10), ops=None):
        """Fresh masters, ``U(-1/sqrt(fan_in), 1/sqrt(fan_in))`` rounded, zero biases, per seed.

        ``ops`` (``golden.layers``; the digits CNN: :data:`CNN_OPS`) replaces the MLP ``sizes``.
        """
        if ops is None:
            ops = [intmodel.Dense(a, b) for a, b in zip(sizes, sizes[1:], strict=False)]
        masters, biases = [], []
        for i, (n_in, n_out) in enumerate((op.fan_in, op.out_channels) for op in ops):
            frac = scales.w_fracs[i] + fixed.SHADOW_SHIFT
            runs = []
            for seed in seeds:
                gen = torch.Generator().manual_seed(int(seed) * 1000 + i)
                u = torch.rand(n_out, n_in, generator=gen, dtype=torch.float64) * 2 - 1
                runs.append(torch.round(u * 2.0**frac / math.sqrt(n_in)).long())
            masters.append(torch.stack(runs))
            biases.append(torch.zeros(len(seeds), n_out, dtype=torch.int64))
        return cls(masters, biases, scales, thresholds, ops)

    def shadows(self) -> list[torch.Tensor]:
        return [fixed.shadow_weights(m) for m in self.masters]

    def model(self, run: int = 0) -> IntModel:
        """Run ``run`` as an IntModel (its shadow weights; inference needs nothing else)."""
        return IntModel(
            [w[run].numpy() for w in self.shadows()],
            [b[run].numpy() for b in self.biases],
            self.scales.forward_shifts,
            int(self.thresholds[run]),
            self.input,
            self.ops,
        )

    def forward(self, x):
        """``x`` (R, N, in) -> ``(inputs, pre-activations q)`` per layer, all (R, N, .)."""
        inputs, qs = [], []
        shifts = self.scales.forward_shifts
        for i, (w, b) in enumerate(zip(self.shadows(), self.biases, strict=True)):
            inputs.append(x)
            q = intmodel.apply(self.ops[i], x, w, b, shifts[i])
            qs.append(q)
            x = fixed.forward(q)
        return inputs, qs

    def step(self, x, labels) -> dict:
        """One training step of every run on its own sample: ``x`` (R, in), ``labels`` (R,).

        Forward (stashing ``mask = q > T`` per hidden element), ``e = L - 32 * onehot``, deltas
        through the transposed shadow weights (before the update), HeLU backward with the mask,
        weight gradients ``d x^T`` (exact int16), then master and bias updates by shifts.
        Returns the step's record (tensors with a leading run dimension).
        """
        x = torch.as_tensor(x, dtype=torch.int64)[:, None, :]  # (R, 1, in)
        shadows = self.shadows()
        inputs, qs = self.forward(x)
        t = self.thresholds[:, None, None]
        masks = [fixed.mask(q, t) for q in qs[:-1]]
        onehot = torch.nn.functional.one_hot(torch.as_tensor(labels), qs[-1].shape[-1])
        d = fixed.loss_gradient(qs[-1], onehot[:, None, :])  # (R, 1, classes)
        deltas, pre_mask = [d], []
        for i in range(len(shadows) - 1, 0, -1):
            # W.T @ d through each window, added back onto the inputs the windows read.
            op = self.ops[i]
            d_win = d.reshape(self.runs, 1, op.positions, op.out_channels)
            back = op.scatter(d_win @ shadows[i][:, None])  # (R, 1, in_size), exact
            g = fixed.requantize(back, self.scales.delta_shifts[i - 1])
            d = fixed.backward(g, masks[i - 1])
            pre_mask.insert(0, g)
            deltas.insert(0, d)
        grads, bias_grads = [], []
        for op, d, a in zip(self.ops, deltas, inputs, strict=True):
            d_win = d.reshape(self.runs, op.positions, op.out_channels)
            cols = op.windows(a).reshape(self.runs, op.positions, op.fan_in)
            grads.append(d_win.mT @ cols)  # (R, out_channels, fan_in): summed over windows
            bias_grads.append(d_win.sum(1))  # (R, out_channels)
        for i, (gw, gb) in enumerate(zip(grads, bias_grads, strict=True)):
            self.masters[i] = fixed.update(
                self.masters[i], gw, self.scales.grad_shifts[i], fixed.MASTER_WIDTH
            )
            self.biases[i] = fixed.update(
                self.biases[i], gb, self.scales.bias_shifts[i], fixed.ACC_WIDTH
            )
        return {
            "x": x[:, 0],
            "labels": torch.as_tensor(labels),
            "q": [q[:, 0] for q in qs],
            "mask": [m[:, 0] for m in masks],
            "g": [g[:, 0] for g in pre_mask],
            "delta": [d[:, 0] for d in deltas],
            "grad": grads,
        }

    def evaluate(self, x, labels) -> dict:
        """Accuracy (R,), dead-unit fractions (R, hidden layers) and band share (R,) on ``x``.

        A unit is dead when its pre-activation is never positive on ``x`` (a convolution's
        channel: at no position of any sample); the band is ``T < q <= 0`` (output 0, gradient
        flowing).
        """
        x = torch.as_tensor(x, dtype=torch.int64).expand(self.runs, -1, -1)
        _, qs = self.forward(x)
        labels = torch.as_tensor(labels)
        cls = intmodel.argmax(qs[-1].reshape(-1, qs[-1].shape[-1])).reshape(self.runs, -1)
        acc = (cls == labels).double().mean(1)
        dead = torch.stack(
            [
                (q.reshape(self.runs, -1, op.out_channels) <= 0).all(1).double().mean(1)
                for q, op in zip(qs[:-1], self.ops, strict=False)
            ],
            1,
        )
        t = self.thresholds[:, None, None]
        band = sum(((q > t) & (q <= 0)).sum((1, 2)) for q in qs[:-1])
        band = band.double() / sum(q.shape[1] * q.shape[2] for q in qs[:-1])
        return {"acc": acc, "dead": dead, "band": band, "loss": self._loss(qs[-1], labels)}

    @staticmethod
    def _loss(logits, labels):
        """Mean squared error ``sum((L - TARGET * onehot)**2) / 2`` per sample, per run (float)."""
        onehot = torch.nn.functional.one_hot(labels, logits.shape[-1])
        e = (logits - fixed.TARGET * onehot).double()
        return (e * e).sum(-1).mean(-1) / 2


def epoch_orders(seeds, n: int, epochs: int) -> torch.Tensor:
    """Sample order of each run: (R, epochs * n), a fresh permutation per epoch from its seed."""
    orders = []
    for seed in seeds:
        gen = torch.Generator().manual_seed(int(seed))
        orders.append(torch.cat([torch.randperm(n, generator=gen) for _ in range(epochs)]))
    return torch.stack(orders)
