"""The small-scale HeLU study: train ReLU, HeLU (several alphas), GELU, ELU and LeakyReLU models
over several seeds, and record what the paper claims and what hardware cares about.

Per run: test accuracy, the training loss curve, the dead-neuron fraction per layer (units whose
pre-activation is never positive on the whole training set; a unit is a feature of an MLP layer or
a channel of a conv layer), and, for HeLU, the share of pre-activations inside the band
``(-alpha, 0]`` (output 0, gradient still flowing). ``run_study`` writes checkpoints, a
``metrics.json`` and PNG plots; its schema is documented on :func:`run_study`.

Runs are deterministic: ``torch.manual_seed(seed)`` before the model is built, a seeded generator
for the batch order, ``torch.use_deterministic_algorithms(True)`` and a fixed thread count.
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

from helu.golden import data as datasets
from helu.golden.activations import validate_alpha
from helu.golden.checkpoint import CHECKPOINT_FORMAT, save_checkpoint
from helu.golden.models import ACTIVATIONS, ModelConfig, build
from helu.golden.plots import study_plots

__all__ = [
    "StudyConfig",
    "QUICK",
    "FULL",
    "PRESETS",
    "label",
    "run_study",
    "train_one",
    "unit_stats",
    "model_config",
    "save_checkpoint",
    "CHECKPOINT_FORMAT",
    "format_table",
]

log = logging.getLogger(__name__)

# Pre-activation values kept per run for the histogram plot (a sample, not all of them).
HIST_SAMPLES = 50_000


@dataclass
class StudyConfig:
    dataset: str = "digits"  # one of golden.data.DATASETS
    model: str = "mlp"  # "mlp" or "cnn" (cnn: digits only)
    acts: tuple[str, ...] = ("relu", "helu", "gelu", "elu", "leaky")
    alphas: tuple[float, ...] = (0.001, 0.01, 0.05, 0.1)  # HeLU runs one setting per alpha
    seeds: tuple[int, ...] = (0, 1, 2, 3, 4)  # training seeds (init and batch order)
    epochs: int = 30
    batch_size: int = 64
    lr: float = 0.05  # SGD with momentum: the setting where units die, as in the paper's WRN runs
    momentum: float = 0.9
    weight_decay: float = 0.0
    hidden: tuple[int, ...] = (64, 64)  # MLP hidden widths
    channels: tuple[int, ...] = (8, 16)  # CNN conv channels
    split_seed: int = 0  # the train/test split is the same for every run
    test_size: float = 0.2
    max_train: int | None = None  # use only the first N training samples (quick tests)
    threads: int = 1  # torch.set_num_threads during the study
    checkpoints: bool = True  # write one checkpoint per run under <out>/checkpoints/
    plots: bool = True

    def __post_init__(self):
        self.acts = tuple(self.acts)
        self.alphas = tuple(validate_alpha(a) for a in self.alphas)
        self.seeds = tuple(self.seeds)
        self.hidden = tuple(self.hidden)
        self.channels = tuple(self.channels)
        if self.dataset not in datasets.DATASETS:
            raise ValueError(
                f"Unknown dataset {self.dataset!r}; choose one of {', '.join(datasets.DATASETS)}"
            )
        if not self.acts:
            raise ValueError("The study needs at least one activation")
        for act in self.acts:
            if act not in ACTIVATIONS:
                raise ValueError(
                    f"Unknown activation {act!r}; choose one of {', '.join(ACTIVATIONS)}"
                )
        if len(set(self.acts)) != len(self.acts):
            raise ValueError(f"Activations are listed twice: {', '.join(self.acts)}")
        if "helu" in self.acts and not self.alphas:
            raise ValueError("HeLU is in the study but no alpha is given")
        if not self.seeds or any(
            isinstance(s, bool) or not isinstance(s, int) or s < 0 for s in self.seeds
        ):
            raise ValueError(f"Seeds must be non-negative integers, not {self.seeds}")
        for name in ("epochs", "batch_size", "threads"):
            value = getattr(self, name)
            if isinstance(value, bool) or not isinstance(value, int) or value < 1:
                raise ValueError(f"{name} must be a positive integer, not {value!r}")
        if not (isinstance(self.lr, (int, float)) and math.isfinite(self.lr) and self.lr > 0):
            raise ValueError(f"Learning rate must be a positive number, not {self.lr!r}")
        if self.max_train is not None and (
            isinstance(self.max_train, bool)
            or not isinstance(self.max_train, int)
            or self.max_train < 1
        ):
            raise ValueError(
                f"max_train must be a positive integer or None, not {self.max_train!r}"
            )
        if self.model == "cnn" and self.dataset != "digits":
            raise ValueError(f"The CNN takes 8x8 images (digits), not {self.dataset!r}")
        # Invalid model settings fail here, before any training starts.
        model_config(self, "relu", None, n_features=64, n_classes=10)

    def settings(self) -> list[tuple[str, float | None]]:
        """``[(act, alpha or None), ...]``: one setting per activation, HeLU once per alpha."""
        out = []
        for act in self.acts:
            if act == "helu":
                out += [("helu", a) for a in self.alphas]
            else:
                out.append((act, None))
        return out


def label(act: str, alpha: float | None) -> str:
    """``"helu(0.05)"`` for HeLU, the activation's name otherwise."""
    return f"{act}({alpha:g})" if act == "helu" else act


def model_config(cfg: StudyConfig, act, alpha, n_features, n_classes) -> ModelConfig:
    return ModelConfig(
        kind=cfg.model,
        in_features=n_features,
        n_classes=n_classes,
        hidden=cfg.hidden,
        channels=cfg.channels,
        act=act,
        alpha=0.05 if alpha is None else alpha,
    )


# The flow's study: digits, MLP, ReLU vs HeLU(0.05) vs GELU vs LeakyReLU, 3 seeds.
QUICK = StudyConfig(acts=("relu", "helu", "gelu", "leaky"), alphas=(0.05,), seeds=(0, 1, 2))
# The documented study: every activation and alpha, 8 seeds, on digits and on breast cancer.
FULL = (
    StudyConfig(dataset="digits", seeds=tuple(range(8))),
    StudyConfig(dataset="breast_cancer", seeds=tuple(range(8)), epochs=40),
)
PRESETS = {"quick": (QUICK,), "full": FULL}


def _capture_preactivations(model, x) -> list[torch.Tensor]:
    """Inputs of every activation module for one forward pass of ``x`` (no grad)."""
    captured = []
    hooks = [
        m.register_forward_hook(lambda _m, inp, _out: captured.append(inp[0].detach()))
        for _, m in model.activations()
    ]
    try:
        with torch.no_grad():
            model(x)
    finally:
        for h in hooks:
            h.remove()
    return captured


def _units_view(z: torch.Tensor) -> torch.Tensor:
    """``(units, samples)``: features of a linear layer, channels of a conv layer."""
    return z.transpose(0, 1).reshape(z.shape[1], -1)


def unit_stats(
    zs: list[torch.Tensor], alpha: float | None
) -> tuple[list[float], float, float | None]:
    """Dead-unit fractions from each layer's pre-activations over a data set.

    ``zs[i]`` is layer i's pre-activation, ``(N, units)`` or ``(N, channels, H, W)``. A unit is
    dead when its pre-activation is never positive. Returns ``(per layer fraction, all-layer
    fraction, share of elements in (-alpha, 0] or None when alpha is None)``.
    """
    dead_layers = []
    dead_units = total_units = 0
    for z in zs:
        never_positive = (_units_view(z) <= 0).all(dim=1)
        dead_layers.append(never_positive.float().mean().item())
        dead_units += int(never_positive.sum())
        total_units += never_positive.numel()
    band = None
    if alpha is not None:
        in_band = sum(int(((z > -alpha) & (z <= 0)).sum()) for z in zs)
        band = in_band / sum(z.numel() for z in zs)
    return dead_layers, dead_units / total_units, band


def train_one(split: datasets.Split, cfg: StudyConfig, act: str, alpha, seed: int) -> dict:
    """Train one model; returns its metrics, the model and a sample of layer-1 pre-activations."""
    x_train = torch.from_numpy(split.x_train)
    y_train = torch.from_numpy(split.y_train)
    if cfg.max_train is not None:
        x_train, y_train = x_train[: cfg.max_train], y_train[: cfg.max_train]
    x_test = torch.from_numpy(split.x_test)
    y_test = torch.from_numpy(split.y_test)

    torch.manual_seed(seed)
    mcfg = model_config(cfg, act, alpha, split.n_features, split.n_classes)
    model = build(mcfg)
    opt = torch.optim.SGD(
        model.parameters(), lr=cfg.lr, momentum=cfg.momentum, weight_decay=cfg.weight_decay
    )
    gen = torch.Generator().manual_seed(seed)
    n = x_train.shape[0]
    losses = []
    start = time.perf_counter()
    model.train()
    for _ in range(cfg.epochs):
        order = torch.randperm(n, generator=gen)
        total = 0.0
        for i in range(0, n, cfg.batch_size):
            idx = order[i : i + cfg.batch_size]
            loss = F.cross_entropy(model(x_train[idx]), y_train[idx])
            opt.zero_grad(set_to_none=True)
            loss.backward()
            opt.step()
            total += loss.item() * idx.numel()
        losses.append(total / n)
    seconds = time.perf_counter() - start

    model.eval()
    with torch.no_grad():
        acc = (model(x_test).argmax(1) == y_test).float().mean().item()
    zs = _capture_preactivations(model, x_train)
    dead_layers, dead_frac, band = unit_stats(zs, alpha if act == "helu" else None)
    flat = zs[0].flatten()
    if flat.numel() > HIST_SAMPLES:
        flat = flat[torch.randperm(flat.numel(), generator=gen)[:HIST_SAMPLES]]
    return {
        "acc": acc,
        "loss_curve": losses,
        "dead_frac": dead_frac,
        "dead_frac_layers": dead_layers,
        "band_frac": band,
        "seconds": seconds,
        "model": model,
        "model_config": mcfg,
        "z_sample": flat.numpy(),
        "nonfinite": not all(math.isfinite(v) for v in losses),
    }


def _mean_std(values):
    mean = statistics.fmean(values)
    std = statistics.stdev(values) if len(values) > 1 else 0.0
    return mean, std


def _comparison(results) -> dict:
    by_label = {r["label"]: r for r in results}
    relu = by_label.get("relu")
    beats, lines = {}, []
    if relu is None:
        lines.append("No ReLU baseline in this study: HeLU was not compared.")
    for r in results:
        if r["act"] != "helu" or relu is None:
            continue
        diff = r["acc_mean"] - relu["acc_mean"]
        if abs(diff) < 1e-6:  # equal up to float32 rounding (accuracies are k / n_test)
            diff = 0.0
        beats[f"{r['alpha']:g}"] = diff > 0
        spread = math.hypot(r["acc_std"], relu["acc_std"])
        verdict = "beats" if diff > 0 else ("ties" if diff == 0 else "trails")
        lines.append(
            f"{r['label']} {verdict} relu: {100 * r['acc_mean']:.2f} +- {100 * r['acc_std']:.2f} % "
            f"vs {100 * relu['acc_mean']:.2f} +- {100 * relu['acc_std']:.2f} % "
            f"({100 * diff:+.2f} points; "
            f"{'within' if abs(diff) <= spread else 'outside'} the combined std of "
            f"{100 * spread:.2f}); dead units {r['dead_frac']:.3f} vs {relu['dead_frac']:.3f}"
        )
    best = max(results, key=lambda r: r["acc_mean"])
    lines.append(f"Best setting: {best['label']} ({100 * best['acc_mean']:.2f} %).")
    return {"helu_beats_relu": beats, "summary": " ".join(lines), "lines": lines}


def run_study(cfg: StudyConfig, out_dir, progress=None) -> dict:
    """Train every setting of ``cfg`` over its seeds; write and return the metrics.

    Writes ``<out_dir>/metrics.json``, PNG plots and (if ``cfg.checkpoints``)
    ``<out_dir>/checkpoints/<dataset>_<model>_<act>[-<alpha>]_s<seed>.pt``. ``progress`` is called
    with one line per run (default: ``logging.info``).

    ``metrics.json``: ``{"dataset", "model", "config": StudyConfig as a dict, "split": {...},
    "results": [{"act", "alpha" (None unless HeLU), "label", "seeds", "acc" (per seed),
    "acc_mean", "acc_std", "dead_frac" (mean over seeds of the all-layer fraction),
    "dead_frac_layers" (per layer, mean over seeds), "band_frac" (HeLU: share of training-set
    pre-activations in (-alpha, 0], mean over seeds; else None), "loss_curves" (per seed),
    "train_seconds" (sum over seeds), "checkpoints" (relative paths)}], "comparison":
    {"helu_beats_relu": {"<alpha>": bool}, "summary": str, "lines": [str]}, "plots": {name: file},
    "golden_checkpoint": relative path of the HeLU checkpoint to export (alpha nearest 0.05, first
    seed) or None, "seconds": wall time}``.
    """
    if not isinstance(cfg, StudyConfig):
        raise TypeError(f"Expected a StudyConfig, not {type(cfg).__name__}")
    progress = progress or log.info
    out_dir = Path(out_dir)
    out_dir.mkdir(parents=True, exist_ok=True)
    threads_before = torch.get_num_threads()
    deterministic_before = torch.are_deterministic_algorithms_enabled()
    torch.set_num_threads(cfg.threads)
    torch.use_deterministic_algorithms(True)
    wall = time.perf_counter()
    try:
        split = datasets.load(cfg.dataset, seed=cfg.split_seed, test_size=cfg.test_size)
        settings = cfg.settings()
        total = len(settings) * len(cfg.seeds)
        results, samples, k = [], {}, 0
        for act, alpha in settings:
            name = label(act, alpha)
            runs, ckpts = [], []
            for seed in cfg.seeds:
                k += 1
                run = train_one(split, cfg, act, alpha, seed)
                runs.append(run)
                if seed == cfg.seeds[0]:
                    samples[name] = run["z_sample"]
                if cfg.checkpoints:
                    tag = act if alpha is None else f"{act}-{alpha:g}"
                    rel = f"checkpoints/{cfg.dataset}_{cfg.model}_{tag}_s{seed}.pt"
                    save_checkpoint(
                        out_dir / rel,
                        run["model"],
                        run["model_config"],
                        split,
                        act,
                        alpha,
                        seed,
                        run["acc"],
                    )
                    ckpts.append(rel)
                progress(
                    f"[{k}/{total}] {cfg.dataset} {cfg.model} {name} seed {seed}: "
                    f"acc {100 * run['acc']:.2f} %, dead {run['dead_frac']:.3f}, "
                    f"loss {run['loss_curve'][-1]:.4f}, {run['seconds']:.1f} s"
                )
            accs = [r["acc"] for r in runs]
            mean, std = _mean_std(accs)
            n_layers = len(runs[0]["dead_frac_layers"])
            results.append(
                {
                    "act": act,
                    "alpha": alpha,
                    "label": name,
                    "seeds": list(cfg.seeds),
                    "acc": accs,
                    "acc_mean": mean,
                    "acc_std": std,
                    "dead_frac": statistics.fmean(r["dead_frac"] for r in runs),
                    "dead_frac_layers": [
                        statistics.fmean(r["dead_frac_layers"][j] for r in runs)
                        for j in range(n_layers)
                    ],
                    "band_frac": (
                        None if alpha is None else statistics.fmean(r["band_frac"] for r in runs)
                    ),
                    "loss_curves": [r["loss_curve"] for r in runs],
                    "train_seconds": sum(r["seconds"] for r in runs),
                    "diverged_seeds": [
                        s for s, r in zip(cfg.seeds, runs, strict=True) if r["nonfinite"]
                    ],
                    "checkpoints": ckpts,
                }
            )
        helus = [r for r in results if r["act"] == "helu" and r["checkpoints"]]
        golden = (
            min(helus, key=lambda r: abs(r["alpha"] - 0.05))["checkpoints"][0] if helus else None
        )
        metrics = {
            "dataset": cfg.dataset,
            "model": cfg.model,
            "config": asdict(cfg),
            "split": split.describe(),
            "results": results,
            "comparison": _comparison(results),
            "plots": study_plots(out_dir, results, samples, cfg) if cfg.plots else {},
            "golden_checkpoint": golden,
        }
        metrics["seconds"] = time.perf_counter() - wall
        tmp = out_dir / "metrics.json.tmp"
        tmp.write_text(json.dumps(metrics, indent=2) + "\n")
        os.replace(tmp, out_dir / "metrics.json")
        for line in metrics["comparison"]["lines"]:
            progress(line)
        return metrics
    finally:
        torch.set_num_threads(threads_before)
        torch.use_deterministic_algorithms(deterministic_before)


def format_table(metrics: dict) -> str:
    """A plain-text table of a study's results (act, alpha, accuracy, dead and band fractions)."""
    rows = [f"{'setting':<14} {'acc % (mean +- std)':>20} {'dead':>7} {'band':>7} {'s':>6}"]
    for r in metrics["results"]:
        band = "-" if r["band_frac"] is None else f"{r['band_frac']:.3f}"
        rows.append(
            f"{r['label']:<14} {100 * r['acc_mean']:>12.2f} +- {100 * r['acc_std']:<5.2f}"
            f" {r['dead_frac']:>7.3f} {band:>7} {r['train_seconds']:>6.1f}"
        )
    return "\n".join(rows)
