"""Step ``intnet``: the integer network's part of ``helu flow`` and of its report.

The step (:class:`IntnetStep`): the quick integer-training study (``golden.intstudy.QUICK``: from
scratch, ReLU ``T = 0`` against HeLU thresholds, 3 seeds, batch 1) into ``<out>/intnet/``, and
the integer network's golden folder with a training trajectory (``helu golden --net``) into
``<out>/golden-net/``, checked by replaying it (the MLP and training-on-chip steps use that
folder). Report: the rows, the dead-unit comparison, the loss curve, the PTQ accuracy and the
trajectory's size.
The study's presentation is here too (:func:`plot_loss`, :func:`format_table` for ``helu train
--integer``); ``golden.intstudy`` computes the rows.
"""

import json
import logging
from pathlib import Path

from helu.markdown import table
from helu.steps.base import DONE, Context, Step, Verdict, need

__all__ = ["STEP", "IntnetStep", "METRICS", "GOLDEN", "run_step", "plot_loss", "format_table",
           "section", "summary"]  # fmt: skip

log = logging.getLogger(__name__)

METRICS = "intnet/int_metrics.json"  # what the report reads
GOLDEN = "golden-net"


def run_step(out, seeds: int | None = None) -> dict:
    """Run the study (``seeds`` seeds, default the quick preset's) and the golden export under
    ``out``; returns the metrics written."""
    from dataclasses import replace

    from helu.golden import intgolden, intstudy

    out = Path(out)
    cfg = intstudy.QUICK if seeds is None else replace(intstudy.QUICK, seeds=tuple(range(seeds)))
    metrics = intstudy.run_int_study(cfg, out / "intnet")
    metrics["plot"] = plot_loss(out / "intnet", metrics["results"])
    manifest_path = intgolden.export_net(out / GOLDEN)
    errors = intgolden.check_inference(out / GOLDEN) + intgolden.check_trajectory(out / GOLDEN)
    if errors:
        raise RuntimeError(f"integer golden folder {out / GOLDEN} fails its own check: {errors[0]}")
    manifest = json.loads(manifest_path.read_text())
    traj = manifest["trajectory"]
    metrics["golden_net"] = {
        "folder": GOLDEN,
        "sizes": manifest["sizes"],
        "shifts": manifest["shifts"],
        "threshold": manifest["threshold"],
        "accuracy": manifest["accuracy"],
        "samples": manifest["samples"],
        "trajectory_steps": traj["steps"],
        "snapshot_every": traj["snapshot_every"],
        "record_bits_per_step": traj["record_bits_per_step"],
        "state_bits": traj["state_bits"],
        "stored_bytes_npz": traj["stored_bytes_npz"],
    }
    (out / METRICS).write_text(json.dumps(metrics, indent=2) + "\n")
    acc = manifest["accuracy"]
    log.info(
        "      integer network: PTQ float %.2f %% -> integer %.2f %%; trajectory %d steps replayed",
        100 * acc["float"],
        100 * acc["integer"],
        traj["steps"],
    )
    return metrics


def plot_loss(out_dir, results) -> str:
    """``<out_dir>/int_loss.png``: the mean training loss per epoch of every row (but the
    learning-rate sweep's), in float units; returns the file name."""
    import matplotlib

    from helu.golden import intnet

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, ax = plt.subplots(figsize=(8, 3.8))
    for i, r in enumerate(results):
        if r["mode"] == "scratch" and "lr" in r["label"]:
            continue
        # integer losses are in logit codes (Q8.5): squared, 2**10 times the float value
        scale = 1.0 if r["mode"] == "float" else 2.0 ** (-2 * intnet.LOGITS_FRAC)
        curve = [v * scale for v in r["loss_curve"]]
        ax.plot(range(1, len(curve) + 1), curve, label=r["label"], color=f"C{i % 10}")
    ax.set_yscale("log")
    ax.set_xlabel("epoch")
    ax.set_ylabel("training loss, float units (mean over seeds)")
    ax.legend(fontsize=7, loc="upper left", bbox_to_anchor=(1.01, 1.0))
    ax.set_title("Integer training on digits, batch 1 (ce: cross-entropy)")
    fig.tight_layout()
    fig.savefig(Path(out_dir) / "int_loss.png", dpi=120)
    plt.close(fig)
    return "int_loss.png"


def format_table(metrics: dict) -> str:
    """A plain-text table: setting, accuracy, dead fraction per hidden layer, band share."""
    rows = [
        f"{'setting':<24} {'acc % (mean +- std)':>20} {'dead l1':>8} {'dead l2':>8} {'band':>6}"
    ]
    for r in metrics["results"]:
        band = "-" if r["band"] is None else f"{r['band']:.3f}"
        d = r["dead_layers"]
        rows.append(
            f"{r['label']:<24} {100 * r['acc_mean']:>12.2f} +- {100 * r['acc_std']:<5.2f}"
            f" {d[0]:>8.3f} {d[1]:>8.3f} {band:>6}"
        )
    return "\n".join(rows)


def summary(metrics: dict) -> dict:
    """``summary.json``'s ``intnet`` entry."""
    keys = ("label", "mode", "threshold", "acc_mean", "acc_std", "dead_layers", "band")
    return {
        "results": [
            {k: r.get(k) for k in keys} | {"seeds": len(r["acc"])} for r in metrics["results"]
        ],
        "golden_net": metrics.get("golden_net"),
    }


def _thresholds_text(metrics: dict) -> str:
    """The thresholds the rows use, each as the alpha it stands for in the hidden format, and the
    golden net's; then the float study's alphas as T, saying whether any row uses them."""
    from helu.golden.intnet import SCRATCH_OUT_FRACS

    frac = SCRATCH_OUT_FRACS[0]
    used = sorted({r["threshold"] for r in metrics["results"] if r.get("threshold")},
                  reverse=True)  # fmt: skip
    text = f"The rows' thresholds in Q8.{frac} hidden codes (alpha = -T / {2**frac}): "
    text += ", ".join(f"T={t} (alpha {-t / 2**frac:g})" for t in used) or "none but ReLU's T=0"
    g = metrics.get("golden_net")
    if g:
        text += f"; the golden folder's network (below) uses T={g['threshold']} in its own format"
    mapped = metrics.get("alpha_thresholds") or {}
    if mapped:
        stand = [f"T={t} rows stand for alpha {a}" for a, t in mapped.items() if t in used]
        text += (
            f". The float study's alphas in Q8.{frac}: "
            + ", ".join(f"{a} -> {t}" for a, t in mapped.items())
            + (f" (the {', '.join(stand)})" if stand else " (no row here uses those thresholds)")
        )
    return text + "."


def section(metrics: dict, out_dir: Path) -> list[str]:
    """The report's Markdown section."""
    cfg = metrics["config"]
    rows = [
        (
            r["label"],
            len(r["acc"]),
            f"{100 * r['acc_mean']:.2f} ± {100 * r['acc_std']:.2f}",
            *(f"{d:.3f}" for d in r["dead_layers"]),
            "-" if r["band"] is None else f"{r['band']:.3f}",
        )
        for r in metrics["results"]
    ]
    layers = len(metrics["results"][0]["dead_layers"])
    parts = [
        f"The 64-32-32-10 integer network trained on digits with batch 1 ({cfg['epochs']} epochs, "
        f"learning rate 2^-{cfg['lr_shift']} as shifts): int8 activations, weights and deltas, "
        "int16 master weights, int32 accumulators, loss gradient `e = L - 32*onehot`. Dead units: "
        "never positive on the training split, per hidden layer; band: share of hidden "
        "pre-activations with `T < q <= 0`. " + _thresholds_text(metrics) + "\n",
        table(
            ["setting", "seeds", "test acc %", *(f"dead l{i + 1}" for i in range(layers)), "band"],
            rows,
        ),
        "",
    ]
    by = {r["threshold"]: r for r in metrics["results"] if r["mode"] == "scratch"}
    relu = by.get(0)
    if relu is not None:
        for t, r in sorted(by.items(), reverse=True):
            if t == 0:
                continue
            diff = 100 * (r["acc_mean"] - relu["acc_mean"])
            dead = ", ".join(
                f"{a:.3f} vs {b:.3f}"
                for a, b in zip(r["dead_layers"], relu["dead_layers"], strict=True)
            )
            parts.append(f"- T={t} vs ReLU: {diff:+.2f} points; dead units per layer {dead}")
        parts.append("")
    if metrics.get("plot") and (out_dir / "intnet" / metrics["plot"]).is_file():
        parts += [f"![integer training loss](intnet/{metrics['plot']})", ""]
    g = metrics.get("golden_net")
    if g:
        parts += [
            f"Golden folder `{g['folder']}/` (`helu golden --net`): "
            f"{'-'.join(map(str, g['sizes']))}, shifts {g['shifts']}, T={g['threshold']}; PTQ test "
            f"accuracy float {100 * g['accuracy']['float']:.2f} %, integer "
            f"{100 * g['accuracy']['integer']:.2f} % ({g['samples']} vectors); trajectory of "
            f"{g['trajectory_steps']} steps replayed bit-exact ({g['record_bits_per_step']} bits "
            f"recorded a step, state {g['state_bits']} bits, snapshots every "
            f"{g['snapshot_every']} steps, {g['stored_bytes_npz']} bytes as npz).",
            "",
        ]
    return parts


class IntnetStep(Step):
    name = "intnet"
    title = "Integer network: training and golden trajectories"
    record = METRICS

    def doing(self, ctx):
        return "integer network: batch-1 training (ReLU vs HeLU T), golden trajectory"

    def run(self, ctx: Context) -> None:
        run_step(ctx.out, ctx.options.seeds)

    def check(self, data, path):
        super().check(data, path)
        need(path, isinstance(data.get("results"), list) and data["results"], "no 'results' list")
        need(path, isinstance(data.get("config"), dict), "no 'config'")

    def summary(self, data):
        return summary(data)

    def section(self, data, found, out_dir):
        return section(data, out_dir)

    def verdict(self, data, found, out_dir):
        rows = len(data["results"])
        g = data.get("golden_net")
        replayed = f"; golden trajectory of {g['trajectory_steps']} steps replayed" if g else ""
        return Verdict(DONE, f"{rows} settings trained{replayed}")


STEP = IntnetStep()
