"""Your own PyTorch model as an integer network: import, BatchNorm folding, PTQ, checks.

:func:`import_model` turns a float model that is a chain of layers into ``golden.layers`` ops and
float weight matrices, and :func:`quantize` chooses the power-of-two scales on the training split
(``golden.intnet.ptq``) and measures float and integer accuracy. Accepted, in order of the
model's leaf modules (``nn.Sequential``, or any module whose submodules run in the order they are
registered; the import checks this by running both):

- ``nn.Linear``; ``nn.Conv2d`` (square kernel, stride 1 or 2, zero padding, no groups or
  dilation); a ``nn.BatchNorm1d``/``nn.BatchNorm2d`` right after one of them is folded into it;
- ``nn.ReLU`` or ``golden.activations.HeLU`` after every layer but the last (one kind and one
  alpha for the network: the engine has one threshold);
- ``nn.Flatten`` (between the convolutions and the dense layers), ``nn.Dropout`` and
  ``nn.Identity`` (nothing at inference).

Anything else is refused in one line naming the module and what to do. Activations inside the
integer network are flat HWC vectors; PyTorch's feature maps are CHW, so the first dense layer
after a flatten has its columns permuted from CHW to HWC order (and image data is transposed to
HWC when quantized).

Data: ``load_data`` reads an ``.npz`` with ``x_train, y_train, x_test, y_test`` or one of the
built-in sets by name (``golden.data``: ``digits`` as images ``pixel / 16`` of shape (N, 1, 8, 8),
``wine`` and ``breast_cancer`` standardised by the training split).
"""

import math
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import torch
from torch import nn

from helu.golden import fixed, intmodel, intnet
from helu.golden.activations import HeLU
from helu.golden.layers import Conv2d, Dense

__all__ = [
    "Data",
    "Imported",
    "Result",
    "flat_hwc",
    "load_data",
    "load_model",
    "import_model",
    "quantize",
]

# What each refused module should become (shown after "is not supported; ").
_INSTEAD = {
    nn.MaxPool2d: "use a stride-2 convolution",
    nn.AvgPool2d: "use a stride-2 convolution",
    nn.AdaptiveAvgPool2d: "use a stride-2 convolution or a dense layer",
    nn.GELU: "use nn.ReLU or HeLU (helu.golden.activations.HeLU)",
    nn.ELU: "use nn.ReLU or HeLU (helu.golden.activations.HeLU)",
    nn.LeakyReLU: "use nn.ReLU or HeLU (helu.golden.activations.HeLU)",
    nn.Sigmoid: "use nn.ReLU or HeLU (helu.golden.activations.HeLU)",
    nn.Tanh: "use nn.ReLU or HeLU (helu.golden.activations.HeLU)",
    nn.ReLU6: "use nn.ReLU or HeLU (helu.golden.activations.HeLU)",
    nn.Softmax: "remove it: the network's logits are its output",
    nn.LogSoftmax: "remove it: the network's logits are its output",
}
_PASS = (nn.Dropout, nn.Identity)


# ---------------------------------------------------------------------------------------------
# Data
# ---------------------------------------------------------------------------------------------


@dataclass
class Data:
    """A float train/test split as the model takes it, with integer labels."""

    name: str
    x_train: np.ndarray
    y_train: np.ndarray
    x_test: np.ndarray
    y_test: np.ndarray

    @property
    def classes(self) -> int:
        return int(max(self.y_train.max(), self.y_test.max())) + 1

    def check_labels(self, classes: int) -> None:
        """``ValueError`` when a label does not name one of a model's ``classes`` outputs."""
        for part, y in (("y_train", self.y_train), ("y_test", self.y_test)):
            if int(y.max()) >= classes:
                raise ValueError(
                    f"{self.name}: {part} holds label {int(y.max())} but the model has {classes} "
                    "outputs"
                )


def flat_hwc(x) -> np.ndarray:
    """Samples as a model takes them, (N, C, H, W) or (N, F), as the integer network's flat HWC
    rows (N, in_size)."""
    x = np.asarray(x)
    if x.ndim == 4:
        x = x.transpose(0, 2, 3, 1)
    return x.reshape(len(x), -1)


def _check_split(name: str, x, y, part: str) -> tuple[np.ndarray, np.ndarray]:
    x, y = np.asarray(x), np.asarray(y)
    if x.ndim < 2 or len(x) == 0:
        raise ValueError(f"{name}: x_{part} must hold at least one sample, not shape {x.shape}")
    if not np.issubdtype(x.dtype, np.number) or np.iscomplexobj(x):
        raise ValueError(f"{name}: x_{part} must be real numbers, not {x.dtype}")
    bad = int(np.count_nonzero(~np.isfinite(x.astype(np.float64))))
    if bad:
        raise ValueError(f"{name}: x_{part} holds {bad} NaN or infinite values; clean the data")
    if y.shape != (len(x),):
        raise ValueError(f"{name}: y_{part} has shape {y.shape}, x_{part} has {len(x)} samples")
    if not np.issubdtype(y.dtype, np.number) or np.any(y != np.round(y)) or np.any(y < 0):
        raise ValueError(f"{name}: y_{part} must hold class indices 0, 1, 2, ...")
    return x.astype(np.float32), y.astype(np.int64)


def load_data(spec, *, seed: int = 0) -> Data:
    """``spec``: a path to an ``.npz`` (``x_train, y_train, x_test, y_test``) or a built-in set's
    name (``digits``, ``wine``, ``breast_cancer``; split seed ``seed``)."""
    from helu.golden import data

    if str(spec) in data.DATASETS:
        split = data.load(str(spec), seed=seed)
        if split.name == "digits":  # raw pixels / 16, exact in 4 fractional bits, as images
            x_train, x_test = (np.ldexp(p, -intnet.INPUT_FRAC) for p in intnet.pixels(split))
            x_train, x_test = (x.reshape(-1, 1, 8, 8).astype(np.float32) for x in (x_train, x_test))
        else:
            x_train, x_test = split.x_train, split.x_test
        return Data(split.name, x_train, split.y_train, x_test, split.y_test)
    path = Path(spec)
    if not path.is_file():
        raise ValueError(
            f"data {spec}: no such file; give an .npz with x_train, y_train, x_test, y_test or "
            f"one of {', '.join(data.DATASETS)}"
        )
    try:
        with np.load(path, allow_pickle=False) as npz:
            missing = [k for k in ("x_train", "y_train", "x_test", "y_test") if k not in npz]
            if missing:
                raise ValueError(
                    f"{path}: no array {', '.join(missing)}; the .npz needs x_train, y_train, "
                    "x_test, y_test"
                )
            arrays = {k: npz[k] for k in ("x_train", "y_train", "x_test", "y_test")}
    except (OSError, ValueError) as exc:
        raise ValueError(f"{path} is not a readable .npz ({exc})") from None
    x_train, y_train = _check_split(path.name, arrays["x_train"], arrays["y_train"], "train")
    x_test, y_test = _check_split(path.name, arrays["x_test"], arrays["y_test"], "test")
    if x_train.shape[1:] != x_test.shape[1:]:
        raise ValueError(
            f"{path.name}: x_train samples are {x_train.shape[1:]}, x_test {x_test.shape[1:]}"
        )
    return Data(path.stem, x_train, y_train, x_test, y_test)


# ---------------------------------------------------------------------------------------------
# The model
# ---------------------------------------------------------------------------------------------


def load_model(path) -> tuple[nn.Module, dict]:
    """A float model from ``path``: a whole module saved with ``torch.save(model, path)``, or a
    ``helu train`` checkpoint. Returns ``(model in eval mode, facts)``; ``facts`` names the
    checkpoint's dataset and split when it has them."""
    path = Path(path)
    if not path.is_file():
        raise ValueError(f"checkpoint {path} not found")
    try:
        obj = torch.load(path, map_location="cpu", weights_only=False)
    except Exception as exc:  # unpickling runs user code: any error means "cannot read it"
        first = str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__
        raise ValueError(f"{path}: cannot load it with torch.load ({first})") from None
    facts: dict = {}
    if isinstance(obj, dict) and obj.get("format") == "helu-checkpoint":
        from helu.golden.checkpoint import load_checkpoint

        obj, ckpt = load_checkpoint(path)
        facts = {"dataset": ckpt.get("dataset"), "split_seed": ckpt["split"]["seed"]}
    elif isinstance(obj, dict):
        raise ValueError(
            f"{path} holds a state_dict, not a model; save the module itself: "
            "torch.save(model, path)"
        )
    if not isinstance(obj, nn.Module):
        raise ValueError(f"{path} holds a {type(obj).__name__}, not a torch.nn.Module")
    return obj.eval(), facts


@dataclass
class _Layer:
    name: str
    op: object
    w: np.ndarray  # (out_channels, fan_in) float64, fan_in in (ky, kx, c) / HWC order
    b: np.ndarray
    act: str | None = None  # "relu" or "helu" after the layer
    alpha: float = 0.0
    folded: list = field(default_factory=list)  # names of folded BatchNorms


@dataclass
class Imported:
    """A float model as layer ops and float weight matrices (``intnet.ptq``'s input)."""

    layers: list  # [_Layer]
    activation: str  # "relu" or "helu"
    alpha: float
    max_error: float  # largest |logit| difference of the import against the model, on the data

    @property
    def ops(self) -> list:
        return [layer.op for layer in self.layers]

    def float_layers(self) -> list[tuple[np.ndarray, np.ndarray]]:
        return [(layer.w, layer.b) for layer in self.layers]

    def to_codes_layout(self, x) -> np.ndarray:
        """The model's input ``x`` (N, C, H, W) or (N, F) as flat HWC rows (:func:`flat_hwc`)."""
        return flat_hwc(x)

    def forward(self, x) -> np.ndarray:
        """The imported float network on flat HWC inputs (float64): what the import claims."""
        x = np.asarray(x, dtype=np.float64)
        for layer in self.layers:
            x = (layer.op.windows(x) @ layer.w.T + layer.b).reshape(len(x), layer.op.out_size)
            if layer.act is not None:
                x = np.maximum(x, 0.0)
        return x


def _leaves(model: nn.Module) -> list[tuple[str, nn.Module]]:
    leaves = [(n, m) for n, m in model.named_modules() if not list(m.children())]
    if not leaves or leaves == [("", model)]:
        if isinstance(model, (nn.Linear, nn.Conv2d)):
            return [("model", model)]
        raise ValueError(f"the model ({type(model).__name__}) has no layers to import")
    return leaves


def _pair(value, what: str, name: str, module) -> int:
    values = tuple(value) if isinstance(value, (tuple, list)) else (value, value)
    if len(set(values)) != 1:
        raise ValueError(
            f"{name}: nn.Conv2d with {what} {values} is not supported; use a square {what}"
        )
    return int(values[0])


def _conv(name: str, conv: nn.Conv2d, shape) -> _Layer:
    if shape is None or len(shape) != 3:
        raise ValueError(f"{name}: nn.Conv2d needs image input (N, C, H, W), not {shape}")
    c, h, w = shape
    if conv.groups != 1 or _pair(conv.dilation, "dilation", name, conv) != 1:
        raise ValueError(f"{name}: grouped or dilated nn.Conv2d is not supported; use groups=1")
    if conv.padding_mode != "zeros":
        raise ValueError(
            f"{name}: nn.Conv2d padding_mode {conv.padding_mode!r} is not supported; use 'zeros'"
        )
    k = _pair(conv.kernel_size, "kernel", name, conv)
    stride = _pair(conv.stride, "stride", name, conv)
    if isinstance(conv.padding, str):
        pad = 0 if conv.padding == "valid" else (k - 1) // 2
        if conv.padding == "same" and k % 2 == 0:
            raise ValueError(f"{name}: padding='same' with an even kernel is not supported")
    else:
        pad = _pair(conv.padding, "padding", name, conv)
    if stride not in (1, 2):
        raise ValueError(f"{name}: nn.Conv2d stride {stride} is not supported; use 1 or 2")
    if c != conv.in_channels:
        raise ValueError(f"{name}: takes {conv.in_channels} channels, its input has {c}")
    try:
        op = Conv2d((h, w, c), conv.out_channels, k, stride, pad)
    except ValueError as exc:
        raise ValueError(f"{name}: {exc}") from None
    weight = conv.weight.detach().double().numpy()  # (C_out, C_in, k, k)
    matrix = weight.transpose(0, 2, 3, 1).reshape(conv.out_channels, -1)  # (ky, kx, c) order
    bias = _bias(conv, conv.out_channels)
    return _Layer(name, op, matrix, bias)


def _bias(module, n: int) -> np.ndarray:
    if module.bias is None:
        return np.zeros(n)
    return module.bias.detach().double().numpy().copy()


def _fold(layer: _Layer, name: str, bn) -> None:
    if bn.running_mean is None or bn.running_var is None:
        raise ValueError(
            f"{name}: a BatchNorm without running statistics cannot be folded; "
            "build it with track_running_stats=True"
        )
    if bn.num_features != layer.op.out_channels:
        raise ValueError(
            f"{name}: normalizes {bn.num_features} features, {layer.name} gives "
            f"{layer.op.out_channels}"
        )
    mean = bn.running_mean.detach().double().numpy()
    var = bn.running_var.detach().double().numpy()
    gamma = bn.weight.detach().double().numpy() if bn.weight is not None else np.ones_like(mean)
    beta = bn.bias.detach().double().numpy() if bn.bias is not None else np.zeros_like(mean)
    scale = gamma / np.sqrt(var + bn.eps)
    layer.w = layer.w * scale[:, None]
    layer.b = (layer.b - mean) * scale + beta
    layer.folded.append(name)


def import_model(model: nn.Module, x_sample) -> Imported:
    """The ops and float weights of ``model`` (see the module docstring for what is accepted).

    ``x_sample`` (a few samples as the model takes them) fixes the input shape and checks the
    import: the imported network must give the model's own logits on them.
    """
    if not isinstance(model, nn.Module):
        raise TypeError(f"model must be a torch.nn.Module, not {type(model).__name__}")
    model.eval()
    x_sample = np.asarray(x_sample, dtype=np.float32)
    shape = tuple(x_sample.shape[1:])  # (C, H, W) or (F,)
    layers: list[_Layer] = []
    flattened = None  # (C, H, W) of the last flatten, for the next dense layer's columns
    pending_bn = False  # a BatchNorm may follow only a layer with nothing after it yet
    for name, module in _leaves(model):
        last = layers[-1] if layers else None
        if isinstance(module, nn.Linear):
            if last is not None and last.act is None:
                raise ValueError(f"{name}: two layers with no activation between them")
            if len(shape) == 3:
                if flattened is None:
                    raise ValueError(f"{name}: an nn.Linear after a convolution needs nn.Flatten")
            in_features = int(np.prod(shape))
            if module.in_features != in_features:
                raise ValueError(
                    f"{name}: nn.Linear takes {module.in_features} features, its input has "
                    f"{in_features}"
                )
            w = module.weight.detach().double().numpy().copy()
            if flattened is not None:  # columns in CHW order: permute to the network's HWC
                c, h, wd = flattened
                w = w.reshape(-1, c, h, wd).transpose(0, 2, 3, 1).reshape(w.shape[0], -1)
            layers.append(_Layer(name, Dense(in_features, module.out_features), w,
                                 _bias(module, module.out_features)))  # fmt: skip
            shape, flattened, pending_bn = (module.out_features,), None, True
        elif isinstance(module, nn.Conv2d):
            if last is not None and last.act is None:
                raise ValueError(f"{name}: two layers with no activation between them")
            if flattened is not None or len(shape) != 3:
                raise ValueError(f"{name}: a convolution after a dense layer is not supported")
            layers.append(_conv(name, module, shape))
            oh, ow, co = layers[-1].op.out_shape
            shape, pending_bn = (co, oh, ow), True
        elif isinstance(module, (nn.BatchNorm1d, nn.BatchNorm2d)):
            if not pending_bn:
                raise ValueError(
                    f"{name}: a BatchNorm is folded only right after an nn.Linear or nn.Conv2d"
                )
            _fold(last, name, module)
        elif isinstance(module, (nn.ReLU, HeLU)):
            if last is None or last.act is not None:
                raise ValueError(f"{name}: an activation must follow an nn.Linear or nn.Conv2d")
            last.act = "helu" if isinstance(module, HeLU) else "relu"
            last.alpha = float(module.alpha) if isinstance(module, HeLU) else 0.0
            pending_bn = False
        elif isinstance(module, nn.Flatten):
            if module.start_dim != 1 or module.end_dim != -1:
                raise ValueError(f"{name}: only nn.Flatten(start_dim=1) is supported")
            if len(shape) == 3:
                flattened, shape = shape, (int(np.prod(shape)),)
        elif isinstance(module, _PASS):
            continue
        else:
            kind = type(module).__name__
            prefix = "nn." if type(module).__module__.startswith("torch.nn") else ""
            instead = next(
                (v for k, v in _INSTEAD.items() if isinstance(module, k)),
                "use nn.Linear, nn.Conv2d, nn.BatchNorm, nn.ReLU/HeLU and nn.Flatten",
            )
            raise ValueError(f"{name}: {prefix}{kind} is not supported; {instead}")
    if not layers:
        raise ValueError("the model has no nn.Linear or nn.Conv2d layer")
    if layers[-1].act is not None:
        raise ValueError(
            f"{layers[-1].name}: the last layer has an activation after it; the network's output "
            "is the last layer's logits"
        )
    if len(shape) != 1:
        raise ValueError("the model must end in a dense layer or a flattened map of logits")
    hidden = layers[:-1]
    kinds = {layer.act for layer in hidden}
    alphas = {layer.alpha for layer in hidden}
    if len(kinds) > 1 or len(alphas) > 1:
        raise ValueError(
            "the hidden layers mix activations (" + ", ".join(
                f"{layer.name}: {layer.act} {layer.alpha:g}" for layer in hidden
            ) + "); the engine has one threshold: use one activation and one alpha"
        )  # fmt: skip
    imported = Imported(
        layers,
        kinds.pop() if kinds else "relu",
        alphas.pop() if alphas else 0.0,
        0.0,
    )
    with torch.no_grad():
        try:
            want = model(torch.from_numpy(x_sample)).double().numpy()
        except Exception as exc:  # the user's forward: any error means the data does not fit
            first = str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__
            raise ValueError(
                f"the model does not run on data of shape {x_sample.shape}: {first}"
            ) from None
    got = imported.forward(imported.to_codes_layout(x_sample))
    if want.shape != got.shape:
        raise ValueError(
            f"the model gives outputs of shape {want.shape}, its layers in order {got.shape}: "
            "its forward does not run its layers in the order they are registered; write it as "
            "an nn.Sequential"
        )
    imported.max_error = float(np.abs(want - got).max())
    scale = max(float(np.abs(want).max()), 1.0)
    if imported.max_error > 1e-4 * scale:
        raise ValueError(
            f"the model's forward differs from its layers run in order (logits off by "
            f"{imported.max_error:.3g}): it does more than a chain of layers (a skip connection, "
            "a function call, another order); write it as an nn.Sequential"
        )
    return imported


# ---------------------------------------------------------------------------------------------
# Quantization
# ---------------------------------------------------------------------------------------------


@dataclass
class Result:
    """A quantized model with the codes of its data and what was measured."""

    quantized: intnet.Quantized
    imported: Imported
    data: Data
    x_train: np.ndarray  # input codes (N, in_size), flat HWC
    x_test: np.ndarray
    float_accuracy: float
    integer_accuracy: float
    clamped: int  # input values clamped to the input format (train and test)

    @property
    def model(self) -> intmodel.IntModel:
        return self.quantized.model

    def describe(self) -> dict:
        return {
            "dataset": self.data.name,
            "layers": [
                {
                    "name": layer.name,
                    "op": layer.op.describe(),
                    "activation": layer.act,
                    "folded": layer.folded,
                }  # fmt: skip
                for layer in self.imported.layers
            ],
            "activation": self.imported.activation,
            "alpha": self.quantized.alpha,
            "input": self.model.input.to_dict(),
            "input_clamped": self.clamped,
            "import_max_error": self.imported.max_error,
            "scales": self.quantized.describe(),
            "accuracy": {"float": self.float_accuracy, "integer": self.integer_accuracy},
            "samples": {"train": len(self.x_train), "test": len(self.x_test)},
        }


def input_format(x_train) -> intmodel.InputFormat:
    """The finest power-of-two input scale that saturates no training value: int8 codes,
    unsigned range ``[0, 127]`` when the data has no negative value."""
    x = np.asarray(x_train, dtype=np.float64)
    frac = fixed.choose_frac(x, fixed.ACT_WIDTH)
    act = fixed.Format(fixed.ACT_WIDTH, frac)
    return intmodel.InputFormat(frac, 0 if x.min() >= 0 else act.min_code, act.max_code)


def quantize(model: nn.Module, data: Data, alpha: float | None = None) -> Result:
    """Import ``model``, quantize it on ``data``'s training split, measure both accuracies.

    ``alpha``: HeLU's margin for the threshold (default: the model's HeLU alpha; 0 for ReLU).
    """
    imported = import_model(model, data.x_train[:64])
    classes = imported.layers[-1].op.out_size
    data.check_labels(classes)
    alpha = imported.alpha if alpha is None else fixed.validate_alpha(alpha)
    x_train = imported.to_codes_layout(data.x_train)
    fmt = input_format(x_train)
    codes_train, clamped_train = fmt.quantize(x_train)
    codes_test, clamped_test = fmt.quantize(imported.to_codes_layout(data.x_test))
    q = intnet.ptq(imported.float_layers(), codes_train, alpha, ops=imported.ops, input=fmt)
    with torch.no_grad():
        logits = model(torch.from_numpy(data.x_test)).numpy()
    float_acc = float(np.mean(logits.argmax(1) == data.y_test))
    _, cls = intmodel.infer(q.model, codes_test)
    int_acc = float(np.mean(cls == data.y_test))
    if not math.isfinite(float_acc):
        raise ValueError("the model's logits are not finite on the test split")
    return Result(q, imported, data, codes_train, codes_test, float_acc, int_acc,
                  clamped_train + clamped_test)  # fmt: skip


def export(
    checkpoint,
    data,
    out,
    *,
    alpha: float | None = None,
    steps: int = 64,
    every: int = 16,
    seed: int = 0,
    force: bool = False,
    lanes: int = 8,
) -> tuple[Path, Result]:
    """``helu quantize``: load, import and quantize a model, then write its golden folder.

    ``data``: an ``.npz`` path or a built-in set's name; ``None`` takes a ``helu train``
    checkpoint's own dataset and split. The folder (``golden.intgolden.write_net``) holds the
    integer model (``model/``), the test split's inference vectors and, with ``steps``, a
    training trajectory (the engine's digests at ``lanes`` lanes); its manifest adds
    ``quantize`` (this import's layers, folded BatchNorms, scales and accuracies).
    Returns ``(manifest path, result)``.
    """
    from helu.common import outdir
    from helu.golden import intgolden

    if isinstance(steps, bool) or not isinstance(steps, int) or steps < 0:
        raise ValueError(f"steps must be an integer >= 0, not {steps!r}")
    inputs = (checkpoint,) + ((data,) if data is not None and Path(str(data)).exists() else ())
    outdir.claim(
        out, intgolden.FOLDER_KIND, force=force, inputs=inputs
    )  # before any work: fail fast
    model, facts = load_model(checkpoint)
    if data is None:
        if "dataset" not in facts:
            raise ValueError(
                f"{checkpoint} names no dataset; give --data DATA.npz or a built-in set's name"
            )
        data, seed_split = facts["dataset"], facts["split_seed"]
    else:
        seed_split = 0
    loaded = load_data(data, seed=seed_split)
    if facts.get("dataset") == "digits" and loaded.name == "digits":
        # a helu train checkpoint saw standardised pixels, not the images pixel / 16
        from helu.golden import data as datasets

        split = datasets.load("digits", seed=seed_split)
        loaded = Data("digits", split.x_train, split.y_train, split.x_test, split.y_test)
    result = quantize(model, loaded, alpha)
    source = {"checkpoint": str(checkpoint), "data": str(data)}
    path = intgolden.write_net(
        out, result.quantized, (result.x_train, loaded.y_train), (result.x_test, loaded.y_test),
        result.float_accuracy, dataset=loaded.name, split={"seed": seed_split}, source=source,
        steps=min(steps, len(result.x_train)) if steps else 0, every=every, seed=seed,
        force=force, inputs=inputs, extra={"quantize": result.describe()},
        lr_shift=intnet.FINE_TUNE_LR_SHIFT, lanes=lanes,
    )  # fmt: skip
    return path, result
