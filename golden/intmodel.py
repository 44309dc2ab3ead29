"""The integer HeLU network as data: its file format and inference, shared by golden, hw, sim.

numpy only (no torch), so the RTL generator and the cocotb benches can load a model. The inference
here is array-generic: :func:`infer` runs on numpy int64 arrays (the sim side) and on torch int64
tensors (the PyTorch golden network in ``golden.intnet``) with the same code, so the network's
arithmetic is written once, on top of the rules in ``golden.fixed``.

A model is a chain of layer ops (``golden.layers``: :class:`~helu.golden.layers.Dense` and
:class:`~helu.golden.layers.Conv2d`, flatten implied between them: activations are flat HWC
vectors). Layer ``l`` has a weight matrix ``w`` of shape ``(out_channels, fan_in)`` (int8 codes),
a bias ``b`` at accumulator scale and a ``shift`` >= 0; on each of the op's windows ``x_win``::

    acc = b + w @ x_win                               # int32, never overflows (check_accumulator)
    q   = fixed.requantize(acc, shift)                # int8: shift with rounding, then saturate
    x'  = fixed.forward(q); mask = q > threshold      # hidden layers: HeLU forward, 1-bit stash
    logits = q; cls = first index of max(logits)      # last layer

Inputs are int8 codes in a stated :class:`InputFormat` (their scale and range), flat in HWC order.

A model folder holds ``manifest.json`` (``kind`` ``helu-intmodel``, the layers, shifts,
threshold, input format, widths) and ``model.npz`` (``w0, b0, w1, b1, ...`` as int64).
"""

import json
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from helu.golden import fixed
from helu.golden.layers import Conv2d, Dense, op_from_dict

__all__ = [
    "KIND",
    "FORMAT_VERSION",
    "InputFormat",
    "PIXELS",
    "IntModel",
    "load",
    "save",
    "linear",
    "layer",
    "infer",
    "argmax",
    "Dense",
    "Conv2d",
]

KIND = "helu-intmodel"
FORMAT_VERSION = 2  # 2: a chain of layer ops with an input format; 1 (read too): an MLP
MANIFEST = "manifest.json"
ARRAYS = "model.npz"


@dataclass(frozen=True)
class InputFormat:
    """What the input codes mean: code ``k`` stands for ``k * 2**-frac``; codes lie in
    ``[lo, hi]``, within int8 (``lo >= 0``: unsigned data such as pixels)."""

    frac: int
    lo: int
    hi: int

    def __post_init__(self):
        act = fixed.Format(fixed.ACT_WIDTH, 0)
        for name in ("frac", "lo", "hi"):
            value = getattr(self, name)
            if isinstance(value, bool) or not isinstance(value, (int, np.integer)):
                raise ValueError(f"input format {name} must be an integer, not {value!r}")
            object.__setattr__(self, name, int(value))
        fixed.Format(fixed.ACT_WIDTH, self.frac)  # checks the range of frac
        if not act.min_code <= self.lo <= self.hi <= act.max_code:
            raise ValueError(
                f"input codes [{self.lo}, {self.hi}] must be an ordered range within "
                f"int{fixed.ACT_WIDTH} [{act.min_code}, {act.max_code}]"
            )

    @property
    def signed(self) -> bool:
        return self.lo < 0

    @property
    def magnitude(self) -> int:
        """Largest ``|code|``: what the accumulator bound is proved for."""
        return max(-self.lo, self.hi)

    def quantize(self, x) -> tuple[np.ndarray, int]:
        """Float data to input codes (round half to even, clamp to ``[lo, hi]``); returns
        ``(codes, number clamped)``. NaN or infinite data is refused."""
        return fixed.quantize_input(x, self.frac, self.lo, self.hi)

    def to_dict(self) -> dict:
        return {"frac": self.frac, "lo": self.lo, "hi": self.hi, "signed": self.signed}


PIXELS = InputFormat(frac=4, lo=0, hi=16)
"""The digits set's raw pixels: codes 0..16 standing for ``pixel / 16``."""


def _integer_array(what: str, a) -> np.ndarray:
    """``a`` as int64, refusing NaN, infinities and fractional values instead of truncating."""
    try:
        a = np.asarray(a)
    except (TypeError, ValueError) as exc:
        raise ValueError(f"{what} are not an array ({exc})") from None
    if a.dtype == np.bool_ or not np.issubdtype(a.dtype, np.number):
        raise ValueError(f"{what} must be integer codes, not {a.dtype} values")
    if not np.issubdtype(a.dtype, np.integer):
        if np.iscomplexobj(a) or not np.all(np.isfinite(a)):
            raise ValueError(f"{what} hold NaN or infinite values; a model holds integer codes")
        if np.any(a != np.round(a)):
            bad = a[a != np.round(a)].flat[0]
            raise ValueError(
                f"{what} hold fractional values (for example {bad:g}); a model holds integer "
                "codes: quantize the float model with 'helu quantize'"
            )
    return a.astype(np.int64)


@dataclass
class IntModel:
    """An integer network: a chain of layer ops, int8 weights, accumulator-scale biases, one
    requantization shift a layer, one HeLU threshold, and the format of its input codes.

    ``ops`` defaults to a chain of :class:`Dense` layers read from the weights' shapes (an MLP).
    """

    weights: list  # (out_channels, fan_in) int64 arrays of int8 codes, one per layer
    biases: list  # (out_channels,) int64 arrays within the accumulator's range
    shifts: list  # one int >= 0 per layer
    threshold: int  # HeLU's T in int8 codes: mask = q > T (0 gives ReLU)
    input: InputFormat  # the input codes' scale and range
    ops: list | None = None  # golden.layers ops; None: Dense layers from the weights' shapes

    def __post_init__(self):
        if not isinstance(self.input, InputFormat):
            raise TypeError(f"input must be an intmodel.InputFormat, not {self.input!r}")
        self.weights = [
            _integer_array(f"layer {i}: weights", w) for i, w in enumerate(self.weights)
        ]
        self.biases = [_integer_array(f"layer {i}: biases", b) for i, b in enumerate(self.biases)]
        self.shifts = [
            int(_integer_array(f"layer {i}: shift", s)) for i, s in enumerate(self.shifts)
        ]
        self.threshold = int(_integer_array("threshold", self.threshold))
        if self.ops is None:
            for i, w in enumerate(self.weights):
                if w.ndim != 2 or 0 in w.shape:
                    raise ValueError(
                        f"layer {i}: weights of shape {w.shape}; a layer needs a non-empty "
                        "(outputs, inputs) matrix"
                    )
            self.ops = [Dense(w.shape[1], w.shape[0]) for w in self.weights]
        self.ops = list(self.ops)
        self.check()

    @property
    def sizes(self) -> list[int]:
        """Flat activation sizes ``[inputs, layer outputs...]`` (an MLP's layer widths)."""
        return [self.ops[0].in_size] + [op.out_size for op in self.ops]

    @property
    def input_max(self) -> int:
        """Largest ``|input code|`` (``input.magnitude``)."""
        return self.input.magnitude

    @property
    def classes(self) -> int:
        return self.ops[-1].out_size

    @property
    def is_mlp(self) -> bool:
        """Every layer dense (what the engines of this version run)."""
        return all(isinstance(op, Dense) for op in self.ops)

    @property
    def macs(self) -> int:
        """Multiply-accumulates of one sample (padding taps of convolutions included)."""
        return sum(op.macs for op in self.ops)

    def check(self) -> None:
        """Raise ``ValueError`` naming the first layer that breaks the integer rules."""
        n = len(self.weights)
        if not n or not (n == len(self.biases) == len(self.shifts) == len(self.ops)):
            raise ValueError(
                f"a model needs one op, bias and shift per weight matrix, not {n} weights, "
                f"{len(self.biases)} biases, {len(self.shifts)} shifts and {len(self.ops)} ops"
            )
        act = fixed.Format(fixed.ACT_WIDTH, 0)
        acc = fixed.Format(fixed.ACC_WIDTH, 0)
        in_max = self.input.magnitude
        for i, (op, w, b, s) in enumerate(
            zip(self.ops, self.weights, self.biases, self.shifts, strict=True)
        ):
            if not isinstance(op, (Dense, Conv2d)):
                raise ValueError(f"layer {i}: {op!r} is not a golden.layers op")
            if i and op.in_size != self.ops[i - 1].out_size:
                raise ValueError(
                    f"layer {i} ({op.describe()}) takes {op.in_size} inputs, layer {i - 1} "
                    f"({self.ops[i - 1].describe()}) gives {self.ops[i - 1].out_size}"
                )
            if isinstance(op, Conv2d) and i and isinstance(self.ops[i - 1], Dense):
                raise ValueError(f"layer {i}: a convolution after a dense layer is not supported")
            if w.shape != (op.out_channels, op.fan_in) or b.shape != (op.out_channels,):
                raise ValueError(
                    f"layer {i} ({op.describe()}): weights {w.shape} and bias {b.shape}, the op "
                    f"needs {(op.out_channels, op.fan_in)} and {(op.out_channels,)}"
                )
            if w.min() < act.min_code or w.max() > act.max_code:
                raise ValueError(f"layer {i}: weights outside int{fixed.ACT_WIDTH}")
            if b.min() < acc.min_code or b.max() > acc.max_code:
                raise ValueError(f"layer {i}: biases outside int{fixed.ACC_WIDTH}")
            if s < 0 or s >= fixed.ACC_WIDTH:
                raise ValueError(f"layer {i}: shift {s} outside 0..{fixed.ACC_WIDTH - 1}")
            fixed.check_accumulator(op.fan_in, in_max, -act.min_code, int(np.abs(b).max()))
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


def apply(op, x, w, b, shift: int):
    """Layer ``op`` on flat inputs ``x`` (..., N, in_size): :func:`linear` on every window.

    ``w`` (..., out_channels, fan_in), ``b`` (..., out_channels). Returns the int8 codes
    (..., N, out_size), flat HWC.
    """
    cols = op.windows(x)  # (..., N, positions, fan_in)
    q = linear(cols, w[..., None, :, :], b[..., None, :], shift)  # (..., N, positions, out)
    return q.reshape(*q.shape[:-2], op.out_size)


def layer(model: IntModel, index: int, x):
    """Layer ``index`` on a batch ``x`` of shape (N, in): returns the int8 codes ``q`` (N, out).

    ``x`` may be a numpy array or a torch tensor (int64); the result is of the same kind.
    """
    w, b = model.weights[index], model.biases[index]
    if not isinstance(x, np.ndarray):  # a torch tensor: bring the parameters over as tensors
        w, b = x.new_tensor(w), x.new_tensor(b)
    return apply(model.ops[index], x, w, b, model.shifts[index])


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
        "layers": [op.to_dict() for op in model.ops],
        "sizes": model.sizes,
        "shifts": model.shifts,
        "threshold": model.threshold,
        "input": model.input.to_dict(),
        "act_width": fixed.ACT_WIDTH,
        "acc_width": fixed.ACC_WIDTH,
        "rounding": "shift_round: (acc + 2**(shift-1)) >> shift, then saturate to int8",
        "arrays": ARRAYS,
    }
    (folder / MANIFEST).write_text(json.dumps(manifest, indent=2) + "\n")
    return folder


def _field(manifest: dict, path: Path, key: str):
    if key not in manifest:
        raise ValueError(f"{path}: no {key!r} field")
    return manifest[key]


def _integer_field(path: Path, what: str, value, expected: str, minimum=None):
    """``value`` of the manifest field ``what`` as an int; ``ValueError`` naming the field, what
    it must hold and what it holds (JSON gives strings, lists, null where a number belongs)."""
    integral = isinstance(value, int) or (isinstance(value, float) and value.is_integer())
    if isinstance(value, bool) or not integral or (minimum is not None and value < minimum):
        raise ValueError(f"{path}: {what} must be {expected}, not {value!r}")
    return int(value)


def load(folder) -> IntModel:
    """Read a model folder written by :func:`save`; ``ValueError`` saying what is wrong.

    Reads format 1 too (an MLP on digits pixels, before layers and input formats were stated).
    """
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
    version = manifest.get("format_version")
    if version not in (1, FORMAT_VERSION):
        raise ValueError(f"{path}: format version {version!r} unsupported")
    for key, value in (("act_width", fixed.ACT_WIDTH), ("acc_width", fixed.ACC_WIDTH)):
        if manifest.get(key) != value:
            raise ValueError(f"{path}: {key} {manifest.get(key)!r}, this toolkit uses {value}")
    shifts = _field(manifest, path, "shifts")
    if not isinstance(shifts, list):
        raise ValueError(f"{path}: 'shifts' must be a list, not {shifts!r}")
    shifts = [
        _integer_field(path, f"'shifts' item {i}", s, "an integer >= 0 (a layer's requantization "
                       "shift)", minimum=0)
        for i, s in enumerate(shifts)
    ]  # fmt: skip
    threshold = _integer_field(
        path,
        "'threshold'",
        _field(manifest, path, "threshold"),
        "an integer (HeLU's T in int8 codes)",
    )
    try:
        if version == 1:
            fmt = InputFormat(frac=4, lo=0, hi=_field(manifest, path, "input_max"))
            ops = None
        else:
            spec = _field(manifest, path, "input")
            if not isinstance(spec, dict):
                raise ValueError(f"'input' must be an object, not {spec!r}")
            fmt = InputFormat(spec.get("frac"), spec.get("lo"), spec.get("hi"))
            layers = _field(manifest, path, "layers")
            if not isinstance(layers, list):
                raise ValueError(f"'layers' must be a list, not {layers!r}")
            ops = [op_from_dict(d) for d in layers]
    except ValueError as exc:
        raise ValueError(f"{path}: {exc}") from None
    try:
        with np.load(folder / ARRAYS, allow_pickle=False) as npz:
            weights = [npz[f"w{i}"] for i in range(len(shifts))]
            biases = [npz[f"b{i}"] for i in range(len(shifts))]
    except (OSError, KeyError, ValueError) as exc:
        raise ValueError(f"{folder}: incomplete integer model ({exc})") from None
    try:
        model = IntModel(weights, biases, shifts, threshold, fmt, ops)
    except (ValueError, TypeError) as exc:
        raise ValueError(f"{folder}: {exc}") from None
    if model.sizes != manifest.get("sizes"):
        raise ValueError(f"{path}: sizes {manifest.get('sizes')} but arrays give {model.sizes}")
    return model
