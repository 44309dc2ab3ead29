"""The integer network's part of ``helu flow`` and of its report.

Flow step (:func:`run_step`): the quick integer-training study (``golden.intstudy.QUICK``: from
scratch, ReLU ``T = 0`` against HeLU thresholds, 3 seeds, batch 1) into ``<out>/intnet/``, and
the integer network's golden folder with a training trajectory (``helu golden --net``) into
``<out>/golden-net/``, checked by replaying it. Report (:func:`section`, :func:`summary`): the
rows, the dead-unit comparison, the loss curve, the PTQ accuracy and the trajectory's size.
"""

import json
import logging
from pathlib import Path

__all__ = ["METRICS", "GOLDEN", "run_step", "section", "summary"]

log = logging.getLogger(__name__)

METRICS = "intnet/int_metrics.json"  # what the report reads (report.STEP_FILES)
GOLDEN = "golden-net"


def run_step(out, seeds: int | None = None) -> dict:
    """Run the study (``seeds`` seeds, default the quick preset's) and the golden export under
    ``out``; returns the metrics written."""
    from dataclasses import replace

    from helu.golden import intgolden, intstudy

    out = Path(out)
    cfg = intstudy.QUICK if seeds is None else replace(intstudy.QUICK, seeds=tuple(range(seeds)))
    metrics = intstudy.run_int_study(cfg, out / "intnet")
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


def summary(metrics: dict) -> dict:
    """``summary.json``'s ``intnet`` entry."""
    keys = ("label", "mode", "threshold", "acc_mean", "acc_std", "dead_layers", "band")
    return {
        "results": [
            {k: r.get(k) for k in keys} | {"seeds": len(r["acc"])} for r in metrics["results"]
        ],
        "golden_net": metrics.get("golden_net"),
    }


def section(metrics: dict, out_dir: Path) -> list[str]:
    """The report's Markdown section."""
    from helu.report import _table

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
        "pre-activations with `T < q <= 0`. alpha gives T in Q8.4: "
        + ", ".join(f"{a} -> {t}" for a, t in metrics["alpha_thresholds"].items())
        + ".\n",
        _table(
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
