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

from helu.common import outdir
from helu.golden import fixed, intmodel, netimage, trajectory
from helu.golden.vectors import hex_lines

__all__ = [
    "KIND",
    "VERSION",
    "MANIFEST",
    "export_net",
    "write_net",
    "load_net",
    "check_inference",
    "export_trajectory",
    "load_trajectory",
    "check_trajectory",
]

log = logging.getLogger(__name__)

# The output-folder kind (``helu.common.outdir``) of the folders written here: a manifest.
FOLDER_KIND = outdir.register_kind("golden-net", ["manifest.json"])
KIND = "helu-intnet-golden"
VERSION = 2  # 2: the trajectory in golden.trajectory's format, the engine's digest
MANIFEST = "manifest.json"
INFERENCE = "inference.npz"
# Hex width of each inference array (x: pixel codes 0..16 in an 8-bit word; cls/labels 0..9).
DEFAULT_ALPHA = 0.05
# Trajectory: this many fine-tuning steps recorded in full (about 60 KB a step as hex), with
# master/bias snapshots every SNAPSHOT_EVERY steps.
TRAJECTORY = "trajectory"
ARRAYS = "trajectory.npz"
# The trajectory's digests are for an engine of this many lanes unless the export says otherwise
# (the engines' default P); ``helu onchip`` records its own for another lane count.
TRAJECTORY_LANES = 8
TRAJECTORY_STEPS = 64
SNAPSHOT_EVERY = 16
INFERENCE_WIDTHS = {"x": 8, "logits": fixed.ACT_WIDTH, "cls": 8, "labels": 8}

RULES = {
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
    steps: int = TRAJECTORY_STEPS,
    every: int = SNAPSHOT_EVERY,
    force: bool = False,
    lanes: int = TRAJECTORY_LANES,
) -> Path:
    """PTQ a float HeLU MLP and write the golden folder ``out``; returns the manifest path.

    ``out`` follows ``helu.common.outdir``'s rule (new, empty or an integer-network golden folder of
    ours; ``force`` for an unmarked one) and is written through a scratch folder.

    ``checkpoint``: a ``helu train`` MLP checkpoint on digits (its standardisation is folded into
    the first layer); without it a float 64-32-32-10 HeLU MLP is trained here (``seed``,
    ``epochs``) on the project's digits split with the squared error to the one-hot (the integer
    loss's float twin) and quantized with its logits in Q8.5. ``alpha`` (default: the
    checkpoint's, else 0.05) gives the threshold ``T`` in the first hidden layer's format.
    ``steps`` > 0 adds a training trajectory (seed ``seed``) fine-tuning the integer model,
    with snapshots every ``every`` steps and the engine's digests at ``lanes`` lanes.
    """
    from helu.golden import data, intnet

    out = outdir.claim(out, FOLDER_KIND, force=force, inputs=(checkpoint,))
    source: dict
    if checkpoint is not None:
        from helu.golden.checkpoint import load_checkpoint

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
        logits_frac = None  # a cross-entropy model's logits would saturate in Q8.5
    else:
        alpha = DEFAULT_ALPHA if alpha is None else alpha
        split = data.load("digits")
        x_train, _ = intnet.pixels(split)
        # The integer loss's float twin (squared error to the one-hot), logits in Q8.5 where the
        # integer target 32 is 1.0: the trajectory then fine-tunes with the loss it was trained on.
        cfg = intnet.FloatConfig(alpha=alpha, seed=seed, loss="mse")
        if epochs is not None:
            cfg.epochs = epochs
        layers = intnet.float_layers(intnet.train_float(x_train, split.y_train, cfg))
        logits_frac = intnet.LOGITS_FRAC
        source = {"trained": "golden.intnet.train_float", "seed": seed, "epochs": cfg.epochs,
                  "loss": cfg.loss, "logits_frac": intnet.LOGITS_FRAC}  # fmt: skip
    x_train, x_test = intnet.pixels(split)
    q = intnet.ptq(layers, x_train, alpha, logits_frac=logits_frac)
    float_acc = intnet.float_accuracy(layers, x_test, split.y_test)
    return write_net(
        out, q, (x_train, split.y_train), (x_test, split.y_test), float_acc,
        dataset="digits", split={"seed": split.seed, "test_size": split.test_size},
        source=source, steps=steps, every=every, seed=seed, force=force, inputs=(checkpoint,),
        lanes=lanes,
    )  # fmt: skip


def _rules(model: intmodel.IntModel) -> dict:
    fmt = model.input
    kind = "signed" if fmt.signed else "unsigned"
    return {
        "input": f"{kind} codes {fmt.lo}..{fmt.hi} in 8-bit words, value code * 2**-{fmt.frac}, "
        "flat in HWC order (channel fastest)",
        **RULES,
        "layers": "dense: one window, the whole input; conv2d: one window per output position, "
        "inputs (oy*stride+ky-pad, ox*stride+kx-pad, c) in (ky, kx, c) order, padding = 0 "
        "(golden.layers); the weight matrix is (out_channels, fan_in) in that order",
    }


def write_net(
    out, q, train, test, float_acc: float, *, dataset: str, split: dict, source: dict,
    steps: int = TRAJECTORY_STEPS, every: int = SNAPSHOT_EVERY, seed: int = 0,
    force: bool = False, inputs=(), extra: dict | None = None, lr_shift: int = 5,
    lanes: int = TRAJECTORY_LANES,
) -> Path:  # fmt: skip
    """Write the golden folder of the quantized network ``q`` (``intnet.Quantized``).

    ``train``/``test``: ``(input codes, labels)``; the test split's inference vectors and, with
    ``steps``, a training trajectory from the train split are written beside the model.
    ``float_acc``: the float model's test accuracy, reported beside the integer one;
    ``lr_shift``: the trajectory's learning rate ``2**-lr_shift``; ``lanes``: the lane count of
    the engine whose state digest it records. Returns the manifest's path.
    """
    model = q.model
    x_train, y_train = (np.asarray(a, dtype=np.int64) for a in train)
    x_test, y_test = (np.asarray(a, dtype=np.int64) for a in test)
    out = outdir.claim(out, FOLDER_KIND, force=force, inputs=inputs)
    logits, cls = intmodel.infer(model, x_test)
    int_acc = float(np.mean(cls == y_test))
    log.info(
        "integer network: float %.2f %%, integer %.2f %% on the test split (%d samples)",
        100 * float_acc,
        100 * int_acc,
        len(x_test),
    )

    with outdir.staged(out, FOLDER_KIND, force=force, inputs=inputs) as tmp:
        intmodel.save(model, tmp / "model")
        arrays = {"x": x_test, "logits": logits, "cls": cls, "labels": y_test}
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
        in_max = [model.input.magnitude] + [2 ** (fixed.ACT_WIDTH - 1) - 1] * (len(model.ops) - 1)
        manifest = {
            "kind": KIND,
            "version": VERSION,
            "dataset": dataset,
            "split": {**split, "part": "test"},
            "samples": int(len(x_test)),
            "source": source,
            "layers": [op.describe() for op in model.ops],
            "sizes": model.sizes,
            "input": model.input.to_dict(),
            "widths": {
                "input": fixed.ACT_WIDTH,
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
                    op.fan_in, m, 2 ** (fixed.ACT_WIDTH - 1), int(np.abs(b).max(initial=0))
                )
                for op, b, m in zip(model.ops, model.biases, in_max, strict=True)
            ],
            "rules": _rules(model),
            "accuracy": {"float": float_acc, "integer": int_acc},
            "model": "model",
            "inference": INFERENCE,
            "files": files,
            "hex_format": "$readmemh: one two's complement code per line, lowest index first, "
            "arrays flattened row-major",
            **(extra or {}),
        }
        if steps:
            from helu.golden.intnet import ptq_scales

            manifest["trajectory"] = export_trajectory(
                tmp / TRAJECTORY,
                model,
                ptq_scales(q, lr_shift=lr_shift),
                x_train,
                y_train,
                seed,
                steps,
                every,
                lanes,
            )
        (tmp / MANIFEST).write_text(json.dumps(manifest, indent=2) + "\n")
    return out / MANIFEST


def load_net(folder) -> tuple[dict, intmodel.IntModel, dict]:
    """``(manifest, model, inference arrays)`` of a golden folder; ``ValueError`` if damaged."""
    folder = Path(folder)
    try:
        manifest = json.loads((folder / MANIFEST).read_text())
    except (OSError, ValueError):
        raise ValueError(
            f"{folder} has no readable {MANIFEST}; make one with 'helu quantize' or "
            "'helu golden --net'"
        ) from None
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


# ---------------------------------------------------------------------------------------------
# Training trajectories: what the RTL training engine must reproduce, step by step.
# ---------------------------------------------------------------------------------------------


def export_trajectory(
    folder, model, scales, x_train, y_train, seed: int, steps: int, every: int, lanes: int
):  # fmt: skip
    """Fine-tune ``model`` for ``steps`` samples and write ``folder`` (npz, hex); returns the
    manifest entry. A ``golden.trajectory`` with the step internals, digests for an engine of
    ``lanes`` lanes, full states every ``every`` steps and after the last; beside it the sample
    ``order`` and the training split it indexes (``train_x``, ``train_labels``)."""
    from helu.golden import intnet

    if steps < 1 or every < 1:
        raise ValueError(
            f"trajectory steps and snapshot interval must be >= 1, not {steps}, {every}"
        )
    folder = Path(folder)
    folder.mkdir(parents=True)
    net = intnet.IntNet.from_model(model, scales)
    epochs = -(-steps // len(x_train))
    order = intnet.epoch_orders([seed], len(x_train), epochs)[0, :steps].numpy()
    x_train, y_train = np.asarray(x_train, dtype=np.int64), np.asarray(y_train, dtype=np.int64)
    arrays = trajectory.record(net, x_train[order], y_train[order], lanes=lanes, every=every,
                               fields=True)  # fmt: skip
    arrays |= {"order": order.astype(np.int64), "seed": np.int64(seed)}
    arrays |= {"train_x": x_train, "train_labels": y_train}
    np.savez_compressed(folder / ARRAYS, **arrays)
    (folder / "hex").mkdir()
    files = {}
    for name, a in arrays.items():
        width = _trajectory_width(name)
        files[name] = {
            "path": f"{TRAJECTORY}/" + _write_hex(folder / "hex", name, a, width),
            "width": width,
            "shape": list(np.shape(a)),
        }
    layers = len(model.ops)
    internals = [f"{f}{i}" for f in trajectory.STEP_FIELDS for i in range(layers)]
    step_bits = sum(arrays[k][0].size * _trajectory_width(k) for k in internals if k in arrays)
    state_bits = sum(arrays[f"masters{i}_init"].size * fixed.MASTER_WIDTH
                     + arrays[f"biases{i}_init"].size * fixed.ACC_WIDTH
                     for i in range(layers))  # fmt: skip
    return {
        "folder": TRAJECTORY,
        "arrays": ARRAYS,
        "format": "golden.trajectory (the one format the benches read)",
        "seed": seed,
        "steps": steps,
        "snapshot_every": every,
        "lanes": lanes,
        "start": "the integer model in model/, masters = weights << SHADOW_SHIFT",
        "order": "order[s] indexes train_x/train_labels (the training split, stratified 80/20)",
        "scales": scales.describe(),
        "threshold": int(net.thresholds[0]),
        "record_bits_per_step": step_bits,
        "state_bits": state_bits,
        "full_record_bytes": (step_bits + state_bits) * steps // 8,
        "stored_bytes_npz": (folder / ARRAYS).stat().st_size,
        "digest": f"golden.netimage.digest at P = {lanes} lanes, the training engine's own "
        "checksum: the memory words in the order its backward pass writes them (last layer "
        "first), each XOR-folded to 32 bits, d = rotl(d, 1) ^ word from d = 0; unsigned",
        "fields": {
            "x/labels": "(steps, in) input codes and (steps,) labels of each step",
            "logits": "(steps, classes) int8 logits of each step's forward pass",
            "q<l>": "(steps, out) int8 pre-activation codes of layer l",
            "mask<l>": "(steps, out) mask = q > threshold of hidden layer l (the 1-bit stash)",
            "g<l>": "(steps, out) int8 delta of hidden layer l before the mask: "
            "requantize(shadow[l+1].T @ delta[l+1], delta_shift[l])",
            "delta<l>": "(steps, out) int8 delta after HeLU backward (last: e = L - 32*onehot)",
            "grad<l>": "(steps, out, in) int16 weight gradient delta[l] x input[l]",
            "masters<l>/biases<l>": "state after each step in snapshot_after (0-based)",
            "masters<l>_init/biases<l>_init": "the start state",
            "digest": "(steps,) state digest after each step",
        },
        "rules": {
            "loss_gradient": f"e = saturate(L - {fixed.TARGET} * onehot, {fixed.ACT_WIDTH})",
            "delta": "d[l] = backward(requantize(d[l+1] @ shadow[l+1], delta_shift[l]), mask[l]); "
            "deltas use the shadows before this step's update",
            "update": "master = saturate(master - scale_shift(grad, grad_shift), 16); bias = "
            "saturate(bias - scale_shift(delta, bias_shift), 32); scale_shift(x, s) = "
            "shift_round(x, s) for s >= 0, x << -s otherwise; no stochastic rounding",
            "shadow": "shadow = saturate(shift_round(master, 8), 8), recomputed after every update",
        },
        "files": files,
    }


def _trajectory_width(name: str) -> int:
    key = name.rstrip("0123456789").removesuffix("_init").rstrip("0123456789")
    if key.startswith("mask"):
        return 1
    if key in ("grad", "masters"):
        return fixed.MASTER_WIDTH
    if key == "biases":
        return fixed.ACC_WIDTH
    if key == "digest":
        return netimage.DIGEST_WIDTH
    if key in ("order", "snapshot_after", "lanes", "seed", "labels", "train_labels"):
        return 16
    return fixed.ACT_WIDTH


def load_trajectory(folder) -> dict:
    """The trajectory a golden folder stores (``golden.trajectory``'s arrays plus ``order``,
    ``seed``, ``train_x``, ``train_labels``); ``ValueError`` when there is none, it predates
    this format, or it cannot be read."""
    manifest = json.loads((Path(folder) / MANIFEST).read_text())
    entry = manifest.get("trajectory")
    if not entry:
        raise ValueError(f"{folder}: no trajectory in this golden folder")
    if "lanes" not in entry:
        raise ValueError(
            f"{folder}: its trajectory predates the engine's digest (a SHA-256 one); export the "
            "folder again"
        )
    t = trajectory.load(Path(folder) / entry["folder"] / entry["arrays"])
    missing = [k for k in ("order", "seed", "train_x", "train_labels") if k not in t]
    if missing:
        raise ValueError(f"{folder}: its trajectory lacks {', '.join(missing)}; export it again")
    return t


def check_trajectory(folder) -> list[str]:
    """Replay a golden folder's trajectory from its model; the differences (empty: consistent).

    Every per-step record, every snapshot and every digest is recomputed with
    ``golden.intnet.IntNet`` (``golden.trajectory.record``) and compared; a corrupted or
    hand-edited trajectory is caught.
    """
    from helu.golden import intnet

    manifest, model, _ = load_net(folder)
    entry = manifest.get("trajectory")
    if not entry:
        return ["no trajectory in this golden folder"]
    try:
        stored = load_trajectory(folder)
    except ValueError as exc:
        return [str(exc)]
    sc = entry["scales"]
    scales = intnet.Scales(
        sc["in_fracs"], sc["w_fracs"], sc["out_fracs"], sc["delta_fracs"], sc["lr_shift"]
    )
    net = intnet.IntNet.from_model(model, scales, thresholds=entry["threshold"])
    order = stored["order"]
    x, labels = stored["train_x"][order], stored["train_labels"][order]
    replay = trajectory.record(net, x, labels, lanes=int(stored["lanes"]),
                               every=entry["snapshot_every"], fields=True)  # fmt: skip
    errors = trajectory.differences(stored, replay)
    init = [k for k in replay if k.endswith("_init")]
    if any(e.split(":")[0].split(" ")[0] in init for e in errors):
        errors.insert(0, "the initial state is not the model's")
    return errors
