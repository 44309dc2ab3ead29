"""Plots of the golden study (accuracy, dead units, pre-activations with HeLU's band, loss)."""

from pathlib import Path

import numpy as np

__all__ = ["study_plots"]


def study_plots(out_dir: Path, results, samples, cfg) -> dict:
    """Write the study's PNG plots into ``out_dir``; returns ``{name: file name}``.

    ``results`` are ``run_study``'s per-setting records, ``samples`` the first seed's act1
    pre-activations per label, ``cfg`` the ``StudyConfig``: accuracy, dead units per layer, the
    pre-activation histogram with HeLU's band, and the loss curves.
    """
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    title = f"{cfg.dataset}, {cfg.model}, {len(cfg.seeds)} seeds"
    labels = [r["label"] for r in results]
    xs = np.arange(len(results))
    plots = {}

    fig, ax = plt.subplots(figsize=(max(5, 0.8 * len(results) + 2), 3.6))
    means = [100 * r["acc_mean"] for r in results]
    ax.bar(xs, means, yerr=[100 * r["acc_std"] for r in results], capsize=4, color="C0")
    ax.set_xticks(xs, labels, rotation=30, ha="right")
    ax.set_ylabel("test accuracy (%)")
    low = min(100 * (r["acc_mean"] - 2 * r["acc_std"]) for r in results)
    ax.set_ylim(max(0, low - 1), min(100, max(means) + 1.5))
    ax.set_title(f"Accuracy (mean +- std), {title}")
    fig.tight_layout()
    fig.savefig(out_dir / "accuracy.png", dpi=120)
    plt.close(fig)
    plots["accuracy"] = "accuracy.png"

    fig, ax = plt.subplots(figsize=(max(5, 0.8 * len(results) + 2), 3.6))
    n_layers = len(results[0]["dead_frac_layers"])
    width = 0.8 / n_layers
    for j in range(n_layers):
        ax.bar(
            xs + (j - (n_layers - 1) / 2) * width,
            [r["dead_frac_layers"][j] for r in results],
            width,
            label=f"act{j + 1}",
        )
    ax.set_xticks(xs, labels, rotation=30, ha="right")
    ax.set_ylabel("dead units (never > 0 on train)")
    ax.legend()
    ax.set_title(f"Dead-unit fraction per layer, {title}")
    fig.tight_layout()
    fig.savefig(out_dir / "dead_fraction.png", dpi=120)
    plt.close(fig)
    plots["dead_fraction"] = "dead_fraction.png"

    helus = [r for r in results if r["act"] == "helu"]
    if helus:
        shown = min(helus, key=lambda r: abs(r["alpha"] - 0.05))
        fig, ax = plt.subplots(figsize=(6, 3.6))
        z = samples[shown["label"]]
        lo, hi = np.percentile(z, [1, 99])
        bins = np.linspace(min(lo, -2 * shown["alpha"]), max(hi, 0.1), 80)
        if "relu" in samples:
            ax.hist(samples["relu"], bins=bins, alpha=0.5, label="relu", color="C1")
        ax.hist(z, bins=bins, alpha=0.6, label=shown["label"], color="C0")
        ax.axvspan(
            -shown["alpha"], 0, color="C3", alpha=0.25, label=f"band (-{shown['alpha']:g}, 0]"
        )
        ax.set_xlabel("pre-activation z of act1 (training set, first seed)")
        ax.set_ylabel("count")
        ax.legend()
        ax.set_title(f"Pre-activations, {title}")
        fig.tight_layout()
        fig.savefig(out_dir / "preactivations.png", dpi=120)
        plt.close(fig)
        plots["preactivations"] = "preactivations.png"

    fig, ax = plt.subplots(figsize=(6, 3.6))
    for i, r in enumerate(results):
        ax.plot(np.mean(r["loss_curves"], axis=0), label=r["label"], color=f"C{i % 10}")
    ax.set_yscale("log")
    ax.set_xlabel("epoch")
    ax.set_ylabel("training loss (mean over seeds)")
    ax.legend(fontsize=7)
    ax.set_title(f"Loss, {title}")
    fig.tight_layout()
    fig.savefig(out_dir / "loss.png", dpi=120)
    plt.close(fig)
    plots["loss"] = "loss.png"
    return plots
