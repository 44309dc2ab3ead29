"""The integer-training study on digits: ReLU (T = 0) against HeLU thresholds, in integers.

Every run trains the 64-32-32-10 integer network of ``golden.intnet`` with batch 1 (one sample a
step, the on-chip training engine's schedule), the squared-error loss ``e = L - 32 * onehot`` and
SGD by shifts. Runs of one setting differ only in their threshold ``T`` and seed, so they train
side by side in one :class:`~helu.golden.intnet.IntNet` (a leading run dimension).

Modes:

- ``scratch``: fresh masters (``U(-1/sqrt(fan_in), 1/sqrt(fan_in))``, rounded to Q16.14), zero
  biases, the scales ``intnet.scratch_scales`` (hidden Q8.4, logits Q8.5);
- ``finetune``: a float HeLU MLP trained here with the integer loss's float twin (squared error
  to the one-hot, target 1.0), quantized by ``intnet.ptq`` with logits in Q8.5 (so the integer
  target 32 is 1.0), then trained in integers from its masters (``weights << 8``);
- ``float``: the same network in float32, same initialisation and order, batch 1, plain SGD with
  the same learning rate, ReLU, with the same squared-error loss (target 1.0, the float value of
  32 in Q8.5) and with cross-entropy: the baselines.

Per run: test accuracy, the dead-unit fraction of each hidden layer (units whose pre-activation is
never positive on the training split), the band share (training-split hidden pre-activations with
``T < q <= 0``: output 0, gradient flowing) and the mean training loss per epoch.
"""

import json
import logging
import math
import os
import statistics
import time
from dataclasses import asdict, dataclass
from pathlib import Path

import torch
import torch.nn.functional as F

from helu.golden import data, fixed, intnet

__all__ = ["IntStudyConfig", "QUICK", "FULL", "run_int_study", "alpha_thresholds", "write_metrics"]

log = logging.getLogger(__name__)


@dataclass
class IntStudyConfig:
    seeds: tuple[int, ...] = (0, 1, 2, 3, 4)
    thresholds: tuple[int, ...] = (0, -1, -2, -4, -8)  # T in hidden LSB; 0 is ReLU
    modes: tuple[str, ...] = ("scratch", "finetune", "float", "cnn")
    epochs: int = 20  # scratch and float runs
    finetune_epochs: int = 5
    lr_shift: int = 3  # learning rate 2**-3, as shifts
    finetune_lr_shift: int = 5
    ce_lr_shift: int = 5  # cross-entropy also at this learning rate (2**-3 diverges at batch 1)
    delta_gain: int = 2  # each hidden delta 2 bits finer than the one after it
    lr_sweep: tuple[
        int, ...
    ] = ()  # extra scratch learning rates (2**-k) for T = 0 and the lowest T
    alphas: tuple[float, ...] = (0.001, 0.01, 0.05, 0.1)  # reported as their T in Q8.4
    float_epochs: int = 40  # of the float model that fine-tuning starts from
    max_train: int | None = None  # use only the first N training samples (quick tests)
    cnn_epochs: int = 5  # the CNN rows (intnet.CNN_OPS) from scratch, at lr_shift
    cnn_thresholds: tuple[int, ...] | None = None  # default: the MLP's thresholds
    cnn_max_train: int | None = None  # the CNN rows on the first N training samples only

    def __post_init__(self):
        self.seeds, self.thresholds = tuple(self.seeds), tuple(self.thresholds)
        self.modes, self.lr_sweep = tuple(self.modes), tuple(self.lr_sweep)
        if not self.seeds or any(not isinstance(s, int) or s < 0 for s in self.seeds):
            raise ValueError(f"seeds must be non-negative integers, not {self.seeds}")
        lo = fixed.Format(fixed.ACT_WIDTH, 0).min_code - 1
        if not self.thresholds or any(not lo <= t <= 0 for t in self.thresholds):
            raise ValueError(f"thresholds must be integers in {lo}..0, not {self.thresholds}")
        for mode in self.modes:
            if mode not in ("scratch", "finetune", "float", "cnn"):
                raise ValueError(f"unknown mode {mode!r}; choose scratch, finetune, float or cnn")
        names = ("epochs", "finetune_epochs", "lr_shift", "finetune_lr_shift", "ce_lr_shift",
                 "cnn_epochs") + (("cnn_max_train",) if self.cnn_max_train else ())  # fmt: skip
        if self.cnn_thresholds is not None:
            self.cnn_thresholds = tuple(self.cnn_thresholds)
        for name in (*names, "float_epochs") + (("max_train",) if self.max_train else ()):
            value = getattr(self, name)
            if isinstance(value, bool) or not isinstance(value, int) or value < 1:
                raise ValueError(f"{name} must be a positive integer, not {value!r}")


# The flow's rows: from scratch, ReLU against two thresholds, 3 seeds, a few epochs (~20 s); the
# CNN, ReLU against T = -2, 5 seeds, one pass over the first 600 training samples (~8 s).
QUICK = IntStudyConfig(
    seeds=(0, 1, 2),
    thresholds=(0, -2, -8),
    modes=("scratch", "cnn"),
    epochs=4,
    cnn_epochs=1,
    cnn_thresholds=(0, -2),
    cnn_max_train=600,
)
# The documented study (docs/results/intnet.md).
FULL = IntStudyConfig(lr_sweep=(2, 4, 5))


def alpha_thresholds(alphas, frac: int = intnet.SCRATCH_OUT_FRACS[0]) -> dict[str, int]:
    """``{alpha: T}`` in the hidden format ``Q8.frac`` (``fixed.threshold``)."""
    return {f"{a:g}": fixed.threshold(a, fixed.Format(fixed.ACT_WIDTH, frac)) for a in alphas}


def _train_int(net, x_train, y_train, x_test, y_test, seeds, epochs: int) -> dict:
    """Train every run of ``net`` (run ``r`` uses the order of ``seeds[r]``); its metrics."""
    x_train_t, y_train_t = torch.from_numpy(x_train), torch.from_numpy(y_train)
    n = len(x_train)
    order = intnet.epoch_orders(seeds, n, epochs)
    losses = torch.zeros(net.runs, epochs, dtype=torch.float64)
    start = time.perf_counter()
    for step in range(order.shape[1]):
        idx = order[:, step]
        rec = net.step(x_train_t[idx], y_train_t[idx])
        e = rec["delta"][-1][:, 0].double()  # (R, classes)
        losses[:, step // n] += (e * e).sum(-1) / 2
    seconds = time.perf_counter() - start
    test = net.evaluate(x_test, y_test)
    train = net.evaluate(x_train, y_train)
    peak = max(int(m.abs().max()) for m in net.masters)
    return {
        "acc": test["acc"].tolist(),
        "dead": train["dead"].tolist(),
        "band": train["band"].tolist(),
        "loss": (losses / n).tolist(),
        "seconds": seconds,
        "master_peak": peak,
    }


def _train_float(x_train, y_train, x_test, y_test, seeds, epochs, lr_shift, loss: str) -> dict:
    """The float baseline: ReLU MLP, batch 1, SGD, side by side over seeds (independent runs)."""
    sizes = (64, *intnet.HIDDEN, 10)
    ws, bs = [], []
    for i, (n_in, n_out) in enumerate(zip(sizes, sizes[1:], strict=False)):
        runs = []
        for seed in seeds:
            gen = torch.Generator().manual_seed(int(seed) * 1000 + i)
            u = torch.rand(n_out, n_in, generator=gen, dtype=torch.float64) * 2 - 1
            runs.append((u / math.sqrt(n_in)).float())
        ws.append(torch.stack(runs).requires_grad_())
        bs.append(torch.zeros(len(seeds), n_out, requires_grad=True))
    scale = 2.0**-intnet.INPUT_FRAC
    target = fixed.TARGET * 2.0**-intnet.LOGITS_FRAC

    def forward(x):  # x (R, N, 64) -> logits, hidden pre-activations
        zs = []
        for i, (w, b) in enumerate(zip(ws, bs, strict=True)):
            z = x @ w.mT + b[:, None, :]
            if i < len(ws) - 1:
                zs.append(z)
                z = torch.relu(z)
            x = z
        return x, zs

    xtr = torch.from_numpy(x_train).float() * scale
    ytr = torch.from_numpy(y_train)
    n = len(x_train)
    order = intnet.epoch_orders(seeds, n, epochs)
    lr = 2.0**-lr_shift
    losses = torch.zeros(len(seeds), epochs, dtype=torch.float64)
    start = time.perf_counter()
    for step in range(order.shape[1]):
        idx = order[:, step]
        logits, _ = forward(xtr[idx][:, None, :])
        logits = logits[:, 0]
        if loss == "ce":
            per_run = F.cross_entropy(logits, ytr[idx], reduction="none")
        else:
            e = logits - target * F.one_hot(ytr[idx], 10)
            per_run = (e * e).sum(-1) / 2
        losses[:, step // n] += per_run.detach().double()
        grads = torch.autograd.grad(per_run.sum(), ws + bs)
        with torch.no_grad():
            for p, g in zip(ws + bs, grads, strict=True):
                p -= lr * g
    seconds = time.perf_counter() - start
    with torch.no_grad():
        logits, _ = forward(
            torch.from_numpy(x_test).float()[None].expand(len(seeds), -1, -1) * scale
        )
        acc = (logits.argmax(-1) == torch.from_numpy(y_test)).double().mean(1)
        _, zs = forward(xtr[None].expand(len(seeds), -1, -1))
        dead = torch.stack([(z <= 0).all(1).double().mean(1) for z in zs], 1)
    return {
        "acc": acc.tolist(),
        "dead": dead.tolist(),
        "band": [None] * len(seeds),
        "loss": (losses / n).tolist(),
        "seconds": seconds,
    }


def _rows(label, mode, runs: dict, seeds, thresholds, lr_shift) -> list[dict]:
    """Split a side-by-side result (runs ordered threshold-major) into one row per threshold."""
    rows = []
    k = len(seeds)
    for j, t in enumerate(thresholds):
        sl = slice(j * k, (j + 1) * k)
        acc = runs["acc"][sl]
        dead = runs["dead"][sl]
        band = [b for b in runs["band"][sl] if b is not None]
        loss = runs["loss"][sl]
        layers = len(dead[0])
        rows.append(
            {
                "label": label(t),
                "mode": mode,
                "threshold": t,
                "lr_shift": lr_shift,
                "seeds": list(seeds),
                "acc": acc,
                "acc_mean": statistics.fmean(acc),
                "acc_std": statistics.stdev(acc) if len(acc) > 1 else 0.0,
                "dead_layers": [statistics.fmean(d[i] for d in dead) for i in range(layers)],
                "dead_per_seed": dead,
                "band": statistics.fmean(band) if band else None,
                "loss_curve": [statistics.fmean(c) for c in zip(*loss, strict=True)],
                "seconds": runs["seconds"] * k / len(runs["acc"]),
            }
        )
    return rows


def run_int_study(cfg: IntStudyConfig, out_dir=None, progress=None) -> dict:
    """Run the study; write ``<out_dir>/int_metrics.json`` if given (:func:`write_metrics`; the
    table and the loss plot are the report layer's, ``helu/intflow.py``).

    Returns ``{"config", "split", "alpha_thresholds", "results": [row...], "seconds"}``; a row is
    ``{"label", "mode", "threshold" (None for float), "lr_shift", "seeds", "acc" (per seed),
    "acc_mean", "acc_std", "dead_layers" (per hidden layer, mean over seeds), "dead_per_seed",
    "band" (mean share, None for float), "loss_curve" (mean per epoch: integer rows
    ``sum(e**2) / 2`` in logit codes, float rows in float units), "seconds"}``.
    """
    progress = progress or log.info
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    wall = time.perf_counter()
    try:
        split = data.load("digits")
        x_train, x_test = intnet.pixels(split)
        y_train, y_test = split.y_train, split.y_test
        if cfg.max_train is not None:
            x_train, y_train = x_train[: cfg.max_train], y_train[: cfg.max_train]
        seeds, ts = cfg.seeds, cfg.thresholds
        results = []

        def scratch(lr_shift, thresholds):
            sc = intnet.scratch_scales(cfg.delta_gain, lr_shift)
            run_t = [t for t in thresholds for _ in seeds]
            run_s = [s for _ in thresholds for s in seeds]
            net = intnet.IntNet.scratch(run_s, sc, run_t)
            out = _train_int(net, x_train, y_train, x_test, y_test, run_s, cfg.epochs)
            return _rows(
                lambda t: (
                    f"int T={t} lr 2^-{lr_shift}" if lr_shift != cfg.lr_shift else f"int T={t}"
                ),
                "scratch",
                out,
                seeds,
                thresholds,
                lr_shift,
            )

        if "scratch" in cfg.modes:
            results += scratch(cfg.lr_shift, ts)
            for lr_shift in cfg.lr_sweep:
                results += scratch(lr_shift, tuple(dict.fromkeys((0, min(ts)))))
        if "cnn" in cfg.modes:
            cnn_ts = cfg.cnn_thresholds or ts
            cnn_seeds = seeds if len(seeds) >= 5 else tuple(range(5))  # at least 5 seeds
            sc = intnet.scratch_scales(cfg.delta_gain, cfg.lr_shift)
            run_t = [t for t in cnn_ts for _ in cnn_seeds]
            run_s = [s for _ in cnn_ts for s in cnn_seeds]
            net = intnet.IntNet.scratch(run_s, sc, run_t, ops=intnet.CNN_OPS)
            n = cfg.cnn_max_train or len(x_train)
            out = _train_int(net, x_train[:n], y_train[:n], x_test, y_test, run_s, cfg.cnn_epochs)
            results += _rows(
                lambda t: f"CNN int T={t}", "cnn", out, cnn_seeds, cnn_ts, cfg.lr_shift
            )
        if "finetune" in cfg.modes:
            merged = None
            for seed in seeds:
                fcfg = intnet.FloatConfig(seed=seed, loss="mse", epochs=cfg.float_epochs)
                fnet = intnet.train_float(x_train, y_train, fcfg)
                q = intnet.ptq(intnet.float_layers(fnet), x_train, logits_frac=intnet.LOGITS_FRAC)
                sc = intnet.ptq_scales(q, cfg.delta_gain, cfg.finetune_lr_shift)
                ptq_acc = intnet.accuracy(q.model, x_test, y_test)
                net = intnet.IntNet.from_model(q.model, sc, runs=len(ts), thresholds=list(ts))
                out = _train_int(
                    net, x_train, y_train, x_test, y_test, [seed] * len(ts), cfg.finetune_epochs
                )
                out["ptq_acc"] = [ptq_acc] * len(ts)
                if merged is None:
                    merged = {
                        k: [[] for _ in ts] for k in ("acc", "dead", "band", "loss", "ptq_acc")
                    }
                    merged["seconds"] = 0.0
                for k in ("acc", "dead", "band", "loss", "ptq_acc"):
                    for j in range(len(ts)):
                        merged[k][j].append(out[k][j])
                merged["seconds"] += out["seconds"]
            flat = {k: [v for per_t in merged[k] for v in per_t] for k in merged if k != "seconds"}
            flat["seconds"] = merged["seconds"]
            rows = _rows(
                lambda t: f"PTQ+int T={t}", "finetune", flat, seeds, ts, cfg.finetune_lr_shift
            )
            for j, row in enumerate(rows):
                row["ptq_acc_mean"] = statistics.fmean(merged["ptq_acc"][j])
            results += rows
        if "float" in cfg.modes:
            runs = [("mse", cfg.lr_shift), ("ce", cfg.lr_shift)]
            if cfg.ce_lr_shift != cfg.lr_shift:
                runs.append(("ce", cfg.ce_lr_shift))
            for loss, lr_shift in runs:
                out = _train_float(
                    x_train, y_train, x_test, y_test, seeds, cfg.epochs, lr_shift, loss
                )
                name = f"float ReLU {loss}" + (
                    "" if lr_shift == cfg.lr_shift else f" lr 2^-{lr_shift}"
                )
                row = _rows(lambda _t, name=name: name, "float", out, seeds, [0], lr_shift)[0]
                row["threshold"] = None
                results.append(row)
        for r in results:
            progress(
                f"{r['label']:<22} acc {100 * r['acc_mean']:.2f} +- {100 * r['acc_std']:.2f} %, "
                f"dead {', '.join(f'{d:.3f}' for d in r['dead_layers'])}"
            )
        metrics = {
            "config": asdict(cfg),
            "split": split.describe(),
            "alpha_thresholds": alpha_thresholds(cfg.alphas),
            "results": results,
            "seconds": time.perf_counter() - wall,
        }
        if out_dir is not None:
            write_metrics(metrics, out_dir)
        return metrics
    finally:
        torch.set_num_threads(threads)


def write_metrics(metrics: dict, out_dir) -> Path:
    """Write ``metrics`` to ``<out_dir>/int_metrics.json`` (atomically: a half-written file is never
    left under that name); returns its path."""
    out_dir = Path(out_dir)
    out_dir.mkdir(parents=True, exist_ok=True)
    tmp = out_dir / "int_metrics.json.tmp"
    tmp.write_text(json.dumps(metrics, indent=2) + "\n")
    os.replace(tmp, out_dir / "int_metrics.json")
    return out_dir / "int_metrics.json"
