"""Golden folder of the integer HeLU network (``helu golden --net``): what the RTL must reproduce.

Layout of ``<out>/`` (every integer array also as ``$readmemh`` hex under ``hex/``, one
two's complement code per line, arrays flattened row-major, widths in the manifest)::

    manifest.json     kind helu-intnet-golden: widths, shifts, scales, rounding and saturation
                      rules, accuracies, the files and their widths
    model/            the integer model (golden.intmodel.save: manifest.json + model.npz)
    inference.npz     x (N, 64) pixel codes 0..16, logits (N, 10) int8, cls (N,), labels (N,)
                      for the whole digits test split (stratified 80/20, split seed 0)
    hex/              w<l>.hex (int8, (out, in) row-major), b<l>.hex (int32), x.hex (8 bits),
                      logits.hex (int8), cls.hex and labels.hex (8 bits)

The folder is written into a temporary sibling and moved into place at the end; an existing
``<out>`` is replaced only when it is an earlier export of this kind (never a user's folder).
"""

import json
import logging
from pathlib import Path

import numpy as np

from helu import outdir
from helu.golden import fixed, intmodel
from helu.golden.vectors import hex_lines

__all__ = ["KIND", "VERSION", "MANIFEST", "export_net", "load_net", "check_inference"]

log = logging.getLogger(__name__)

KIND = "helu-intnet-golden"
VERSION = 1
MANIFEST = "manifest.json"
INFERENCE = "inference.npz"
# Hex width of each inference array (x: pixel codes 0..16 in an 8-bit word; cls/labels 0..9).
DEFAULT_ALPHA = 0.05
INFERENCE_WIDTHS = {"x": 8, "logits": fixed.ACT_WIDTH, "cls": 8, "labels": 8}

RULES = {
    "input": "pixel codes 0..16 (unsigned, 5 bits; stored in 8-bit words), value pixel / 16",
    "product": f"int{fixed.ACT_WIDTH} x int{fixed.ACT_WIDTH} -> int{2 * fixed.ACT_WIDTH}, exact",
    "accumulator": (
        f"int{fixed.ACC_WIDTH}: bias + sum(w * x), starting from the bias; the bound fan_in * "
        "x_max * 128 + |bias| (manifest accumulator_bound) fits, so the sum never overflows and "
        "is not saturated"
    ),
    "requantize": (
        f"q = saturate(shift_round(acc, shift), {fixed.ACT_WIDTH}); shift_round(x, s) = "
        "(x + 2**(s-1)) >> s (arithmetic shift, round half up; s = 0: x); saturate clamps to "
        f"[-{2 ** (fixed.ACT_WIDTH - 1)}, {2 ** (fixed.ACT_WIDTH - 1) - 1}]"
    ),
    "forward": "hidden layers: y = q if q > 0 else 0 (HeLU forward = ReLU)",
    "mask": "hidden layers: mask = q > threshold (the 1-bit stash for training)",
    "output": "logits = q of the last layer (no activation); cls = first index of the maximum",
    "scales": "powers of two only: every rescaling is an arithmetic shift",
}


def _write_hex(folder: Path, name: str, codes, width: int) -> str:
    path = folder / f"{name}.hex"
    path.write_text(hex_lines(np.asarray(codes, dtype=np.int64).ravel(), width))
    return f"hex/{path.name}"


def export_net(
    out,
    checkpoint=None,
    alpha: float | None = None,
    seed: int = 0,
    epochs: int | None = None,
    force: bool = False,
) -> Path:
    """PTQ a float HeLU MLP and write the golden folder ``out``; returns the manifest path.

    ``out`` follows ``helu.outdir``'s rule (new, empty or an integer-network golden folder of
    ours; ``force`` for an unmarked one) and is written through a scratch folder.

    ``checkpoint``: a ``helu train`` MLP checkpoint on digits (its standardisation is folded into
    the first layer); without it a float 64-32-32-10 HeLU MLP is trained here (``seed``,
    ``epochs``) on the project's digits split. ``alpha`` (default: the checkpoint's, else
    0.05) gives the threshold ``T`` in the first hidden layer's format.
    """
    from helu.golden import data, intnet

    out = outdir.claim(out, "golden-net", force=force, inputs=(checkpoint,))
    source: dict
    if checkpoint is not None:
        from helu.golden.export import load_checkpoint

        model, ckpt = load_checkpoint(checkpoint)
        if ckpt.get("dataset") != "digits" or ckpt["model_config"].get("kind") != "mlp":
            raise ValueError(
                f"{checkpoint}: the integer network needs an MLP trained on digits, not a "
                f"{ckpt['model_config'].get('kind')} on {ckpt.get('dataset')}"
            )
        split = data.load(
            "digits", seed=ckpt["split"]["seed"], test_size=ckpt["split"]["test_size"]
        )
        layers = intnet.float_layers(model, split.mean, split.std)
        if alpha is None:
            alpha = ckpt["alpha"] if ckpt.get("act") == "helu" else DEFAULT_ALPHA
        source = {"checkpoint": str(checkpoint), "act": ckpt.get("act"), "seed": ckpt.get("seed")}
    else:
        alpha = DEFAULT_ALPHA if alpha is None else alpha
        split = data.load("digits")
        x_train, _ = intnet.pixels(split)
        cfg = intnet.FloatConfig(alpha=alpha, seed=seed)
        if epochs is not None:
            cfg.epochs = epochs
        layers = intnet.float_layers(intnet.train_float(x_train, split.y_train, cfg))
        source = {"trained": "golden.intnet.train_float", "seed": seed, "epochs": cfg.epochs}
    x_train, x_test = intnet.pixels(split)
    q = intnet.ptq(layers, x_train, alpha)
    model = q.model
    logits, cls = intmodel.infer(model, x_test)
    float_acc = intnet.float_accuracy(layers, x_test, split.y_test)
    int_acc = float(np.mean(cls == split.y_test))
    log.info(
        "integer network: float %.2f %%, integer %.2f %% on the test split (%d samples)",
        100 * float_acc,
        100 * int_acc,
        len(x_test),
    )

    with outdir.staged(out, "golden-net", force=force, inputs=(checkpoint,)) as tmp:
        intmodel.save(model, tmp / "model")
        arrays = {"x": x_test, "logits": logits, "cls": cls, "labels": split.y_test}
        arrays = {k: np.asarray(v, dtype=np.int64) for k, v in arrays.items()}
        np.savez(tmp / INFERENCE, **arrays)
        (tmp / "hex").mkdir()
        files = {}
        for i, (w, b) in enumerate(zip(model.weights, model.biases, strict=True)):
            files[f"w{i}"] = {"path": _write_hex(tmp / "hex", f"w{i}", w, fixed.ACT_WIDTH),
                              "width": fixed.ACT_WIDTH, "shape": list(w.shape)}  # fmt: skip
            files[f"b{i}"] = {"path": _write_hex(tmp / "hex", f"b{i}", b, fixed.ACC_WIDTH),
                              "width": fixed.ACC_WIDTH, "shape": list(b.shape)}  # fmt: skip
        for name, width in INFERENCE_WIDTHS.items():
            files[name] = {"path": _write_hex(tmp / "hex", name, arrays[name], width),
                           "width": width, "shape": list(arrays[name].shape)}  # fmt: skip
        in_max = [intnet.INPUT_MAX] + [2 ** (fixed.ACT_WIDTH - 1) - 1] * (len(model.weights) - 1)
        manifest = {
            "kind": KIND,
            "version": VERSION,
            "dataset": "digits",
            "split": {"seed": split.seed, "test_size": split.test_size, "part": "test"},
            "samples": int(len(x_test)),
            "source": source,
            "sizes": model.sizes,
            "widths": {
                "input": 5,
                "act": fixed.ACT_WIDTH,
                "weight": fixed.ACT_WIDTH,
                "product": 2 * fixed.ACT_WIDTH,
                "acc": fixed.ACC_WIDTH,
                "bias": fixed.ACC_WIDTH,
                "master": fixed.MASTER_WIDTH,
                "shadow_shift": fixed.SHADOW_SHIFT,
            },
            "shifts": model.shifts,
            "threshold": model.threshold,
            "scales": q.describe(),
            "accumulator_bound": [
                fixed.accumulator_bound(
                    w.shape[1], m, 2 ** (fixed.ACT_WIDTH - 1), int(np.abs(b).max(initial=0))
                )
                for w, b, m in zip(model.weights, model.biases, in_max, strict=True)
            ],
            "rules": RULES,
            "accuracy": {"float": float_acc, "integer": int_acc},
            "model": "model",
            "inference": INFERENCE,
            "files": files,
            "hex_format": "$readmemh: one two's complement code per line, lowest index first, "
            "arrays flattened row-major",
        }
        (tmp / MANIFEST).write_text(json.dumps(manifest, indent=2) + "\n")
    return out / MANIFEST


def load_net(folder) -> tuple[dict, intmodel.IntModel, dict]:
    """``(manifest, model, inference arrays)`` of a golden folder; ``ValueError`` if damaged."""
    folder = Path(folder)
    try:
        manifest = json.loads((folder / MANIFEST).read_text())
    except (OSError, ValueError):
        raise ValueError(f"{folder} has no readable {MANIFEST}; run 'helu golden --net'") from None
    if not isinstance(manifest, dict) or manifest.get("kind") != KIND:
        raise ValueError(f"{folder} is not an integer-network golden folder (kind {KIND!r})")
    model = intmodel.load(folder / manifest.get("model", "model"))
    try:
        with np.load(folder / manifest.get("inference", INFERENCE), allow_pickle=False) as npz:
            arrays = {k: npz[k] for k in INFERENCE_WIDTHS}
    except (OSError, KeyError, ValueError) as exc:
        raise ValueError(f"{folder}: incomplete inference vectors ({exc})") from None
    return manifest, model, arrays


def check_inference(folder) -> list[str]:
    """Re-run the integer model on the stored inputs; the differences found (empty: consistent).

    Checks the stored logits and classes against ``intmodel.infer`` and the hex files against
    the arrays, so a corrupted or hand-edited folder is caught.
    """
    manifest, model, arrays = load_net(folder)
    errors = []
    logits, cls = intmodel.infer(model, arrays["x"])
    for name, want in (("logits", logits), ("cls", cls)):
        bad = np.argwhere(np.asarray(arrays[name]) != want)
        if len(bad):
            errors.append(f"{name} differs from the model at {len(bad)} places (first {bad[0]})")
    for name, entry in manifest.get("files", {}).items():
        array = arrays.get(name)
        if array is None and name[0] in "wb" and name[1:].isdigit():
            array = (model.weights if name[0] == "w" else model.biases)[int(name[1:])]
        if array is None:
            continue
        text = (Path(folder) / entry["path"]).read_text()
        if text != hex_lines(np.asarray(array).ravel(), entry["width"]):
            errors.append(f"{entry['path']} does not hold {name}")
    return errors
