"""The integer HeLU MLP as data: its file format and its inference, shared by golden, hw and sim.

numpy only (no torch), so the RTL generator and the cocotb benches can load a model. The inference
here is array-generic: :func:`infer` runs on numpy int64 arrays (the sim side) and on torch int64
tensors (the PyTorch golden network in ``golden.intnet``) with the same code, so the network's
arithmetic is written once, on top of the rules in ``golden.fixed``.

Layer ``l`` (weights ``w`` of shape ``(out, in)``, int8 codes; bias ``b`` at accumulator scale;
``shift`` >= 0)::

    acc = b + w @ x                                   # int32, never overflows (check_accumulator)
    q   = fixed.requantize(acc, shift)                # int8: shift with rounding, then saturate
    x'  = fixed.forward(q); mask = q > threshold      # hidden layers: HeLU forward, 1-bit stash
    logits = q; cls = first index of max(logits)      # last layer

A model folder holds ``manifest.json`` (``kind`` ``helu-intmodel``, sizes, shifts, threshold,
widths) and ``model.npz`` (``w0, b0, w1, b1, ...`` as int64).
"""

import json
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from helu.golden import fixed

__all__ = [
    "KIND",
    "FORMAT_VERSION",
    "IntModel",
    "load",
    "save",
    "linear",
    "layer",
    "infer",
    "argmax",
]

KIND = "helu-intmodel"
FORMAT_VERSION = 1
MANIFEST = "manifest.json"
ARRAYS = "model.npz"


@dataclass
class IntModel:
    """An integer MLP: int8 weights, accumulator-scale biases, one requantization shift a layer."""

    weights: list  # (out, in) int64 arrays of int8 codes, one per layer
    biases: list  # (out,) int64 arrays within the accumulator's range
    shifts: list  # one int >= 0 per layer
    threshold: int  # HeLU's T in int8 codes: mask = q > T (0 gives ReLU)
    input_max: int = 16  # inputs are codes in [0, input_max] (digits pixels: 0..16)

    def __post_init__(self):
        self.weights = [np.asarray(w, dtype=np.int64) for w in self.weights]
        self.biases = [np.asarray(b, dtype=np.int64) for b in self.biases]
        self.shifts = [int(s) for s in self.shifts]
        self.threshold = int(self.threshold)
        self.check()

    @property
    def sizes(self) -> list[int]:
        """``[inputs, hidden..., outputs]``."""
        return [self.weights[0].shape[1]] + [w.shape[0] for w in self.weights]

    def check(self) -> None:
        """Raise ``ValueError`` naming the first layer that breaks the integer rules."""
        if not self.weights or not (len(self.weights) == len(self.biases) == len(self.shifts)):
            raise ValueError(
                f"a model needs one bias and one shift per weight matrix, not {len(self.weights)} "
                f"weights, {len(self.biases)} biases and {len(self.shifts)} shifts"
            )
        act = fixed.Format(fixed.ACT_WIDTH, 0)
        acc = fixed.Format(fixed.ACC_WIDTH, 0)
        in_max = self.input_max
        for i, (w, b, s) in enumerate(zip(self.weights, self.biases, self.shifts, strict=True)):
            if w.ndim != 2 or b.shape != (w.shape[0],):
                raise ValueError(f"layer {i}: weights {w.shape} and bias {b.shape} do not match")
            if i and w.shape[1] != self.weights[i - 1].shape[0]:
                given = self.weights[i - 1].shape[0]
                raise ValueError(
                    f"layer {i} takes {w.shape[1]} inputs, layer {i - 1} gives {given}"
                )
            if w.size and (w.min() < act.min_code or w.max() > act.max_code):
                raise ValueError(f"layer {i}: weights outside int{fixed.ACT_WIDTH}")
            if b.size and (b.min() < acc.min_code or b.max() > acc.max_code):
                raise ValueError(f"layer {i}: biases outside int{fixed.ACC_WIDTH}")
            if s < 0 or s >= fixed.ACC_WIDTH:
                raise ValueError(f"layer {i}: shift {s} outside 0..{fixed.ACC_WIDTH - 1}")
            fixed.check_accumulator(
                w.shape[1], in_max, -act.min_code, int(np.abs(b).max(initial=0))
            )
            in_max = act.max_code
        if not act.min_code - 1 <= self.threshold <= act.max_code:
            raise ValueError(f"threshold {self.threshold} outside int{fixed.ACT_WIDTH} codes")


def linear(x, w, b, shift: int):
    """One layer's arithmetic: ``requantize(b + x @ w.T, shift)``, the int8 codes ``q``.

    ``x`` (..., N, in), ``w`` (..., out, in), ``b`` (..., out), all of one kind (numpy int64 or
    torch int64); leading dimensions batch independent networks (the training study runs many
    side by side). Returns (..., N, out).
    """
    acc = x @ w.mT + b[..., None, :]  # (..., N, out), int32 range (IntModel.check)
    return fixed.requantize(acc, shift)


def layer(model: IntModel, index: int, x):
    """Layer ``index`` on a batch ``x`` of shape (N, in): returns the int8 codes ``q`` (N, out).

    ``x`` may be a numpy array or a torch tensor (int64); the result is of the same kind.
    """
    w, b = model.weights[index], model.biases[index]
    if not isinstance(x, np.ndarray):  # a torch tensor: bring the parameters over as tensors
        w, b = x.new_tensor(w), x.new_tensor(b)
    return linear(x, w, b, model.shifts[index])


def argmax(logits):
    """Class of each row: the first index holding the largest logit (hardware's tie rule)."""
    return logits.argmax(1) if isinstance(logits, np.ndarray) else logits.argmax(dim=1)


def infer(model: IntModel, x):
    """Run the network: returns ``(logits (N, classes), cls (N,))`` of the same kind as ``x``."""
    for i in range(len(model.weights)):
        q = layer(model, i, x)
        x = q if i == len(model.weights) - 1 else fixed.forward(q)
    return x, argmax(x)


def save(model: IntModel, folder) -> Path:
    """Write ``manifest.json`` and ``model.npz`` into ``folder`` (created if missing)."""
    folder = Path(folder)
    folder.mkdir(parents=True, exist_ok=True)
    arrays = {}
    for i, (w, b) in enumerate(zip(model.weights, model.biases, strict=True)):
        arrays[f"w{i}"], arrays[f"b{i}"] = w, b
    np.savez(folder / ARRAYS, **arrays)
    manifest = {
        "kind": KIND,
        "format_version": FORMAT_VERSION,
        "sizes": model.sizes,
        "shifts": model.shifts,
        "threshold": model.threshold,
        "input_max": model.input_max,
        "act_width": fixed.ACT_WIDTH,
        "acc_width": fixed.ACC_WIDTH,
        "rounding": "shift_round: (acc + 2**(shift-1)) >> shift, then saturate to int8",
        "arrays": ARRAYS,
    }
    (folder / MANIFEST).write_text(json.dumps(manifest, indent=2) + "\n")
    return folder


def load(folder) -> IntModel:
    """Read a model folder written by :func:`save`; ``ValueError`` saying what is wrong."""
    folder = Path(folder)
    path = folder / MANIFEST
    if not path.is_file():
        raise ValueError(f"{folder} is not an integer model folder (no {MANIFEST})")
    try:
        manifest = json.loads(path.read_text())
    except json.JSONDecodeError as exc:
        raise ValueError(f"{path} is not valid JSON: {exc}") from None
    if not isinstance(manifest, dict) or manifest.get("kind") != KIND:
        raise ValueError(f"{path} does not describe an integer model (kind is not {KIND!r})")
    if manifest.get("format_version") != FORMAT_VERSION:
        raise ValueError(f"{path}: format version {manifest.get('format_version')!r} unsupported")
    for key, value in (("act_width", fixed.ACT_WIDTH), ("acc_width", fixed.ACC_WIDTH)):
        if manifest.get(key) != value:
            raise ValueError(f"{path}: {key} {manifest.get(key)!r}, this toolkit uses {value}")
    try:
        with np.load(folder / ARRAYS, allow_pickle=False) as npz:
            layers = len(manifest["shifts"])
            weights = [npz[f"w{i}"] for i in range(layers)]
            biases = [npz[f"b{i}"] for i in range(layers)]
        model = IntModel(
            weights, biases, manifest["shifts"], manifest["threshold"], manifest["input_max"]
        )
    except (OSError, KeyError, TypeError) as exc:
        raise ValueError(f"{folder}: incomplete integer model ({exc})") from None
    if model.sizes != manifest.get("sizes"):
        raise ValueError(f"{path}: sizes {manifest.get('sizes')} but arrays give {model.sizes}")
    return model
