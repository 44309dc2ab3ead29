"""Golden vectors from a trained model: capture ``z`` and ``g`` at every HeLU layer, quantize them
and compute the integer unit outputs with ``golden.fixed``; write them with ``golden.vectors``.

The capture is a real training step without the update: the model (in eval mode, so nothing
stochastic) runs the inputs forward, the training loss (cross-entropy, mean over the batch) runs
backward, and hooks record at every :class:`~helu.golden.activations.HeLU` module its input ``z``
and the gradient ``g = dL/dy`` arriving at its output (plus torch's own ``dL/dz``, to compare).
Each tensor is flattened in C order and quantized per tensor: ``Q(width, frac)`` with ``frac``
chosen by ``fixed.choose_frac`` (the finest scale with no saturation) unless given.

Per set, ``stats`` records saturations, ``mask_mismatch`` (elements whose quantized mask
``k > T`` differs from the float mask ``z > -alpha`` torch used), the band's code count, the
largest dequantized errors of ``y`` and ``dz`` against torch in quantization steps, and
``alpha_note`` (``fixed.alpha_note``: set when alpha leaves no negative code in the band).
"""

import logging
import math
import warnings
from pathlib import Path

import numpy as np
import torch
import torch.nn.functional as F
from torch import nn

from helu.common import outdir
from helu.golden import fixed
from helu.golden.activations import HeLU
from helu.golden.checkpoint import load_checkpoint
from helu.golden.fixed import Format
from helu.golden.vectors import GoldenSet, write_golden

__all__ = [
    "capture",
    "build_sets",
    "export_from_model",
    "load_checkpoint",
    "export_checkpoint",
    "parse_frac",
]

log = logging.getLogger(__name__)


def parse_frac(value, what="frac"):
    """``"auto"`` or an integer number of fractional bits (``int`` or its string)."""
    if value is None or value == "auto":
        return "auto"
    if isinstance(value, bool):
        raise TypeError(f"{what} must be 'auto' or an integer, not {value!r}")
    if isinstance(value, int):
        return value
    if isinstance(value, str):
        try:
            return int(value)
        except ValueError:
            pass
    raise ValueError(f"{what} must be 'auto' or an integer, not {value!r}")


def _check_widths(widths) -> tuple[tuple[int, int | None], ...]:
    """``(width, frac or None)`` per item of ``widths``.

    An item is a width (``8``: ``frac`` applies) or a width with its own z fractional bits
    (``"8:5"`` or ``(8, 5)``), so one export can hold a saturation-free set and one whose format
    keeps alpha's band, at the same width.
    """
    if isinstance(widths, (int, str)):
        widths = (widths,)
    items = []
    for item in widths:
        if isinstance(item, str):
            width, _, own = item.partition(":")
            try:
                item = (int(width), int(own)) if own else int(width)
            except ValueError:
                raise ValueError(f"A width is W or W:F (integers), not {item!r}") from None
        width, own = item if isinstance(item, tuple) else (item, None)
        Format(width, 0 if own is None else own)  # names a bad width or frac
        items.append((width, own))
    if not items:
        raise ValueError("Give at least one width")
    if len(set(items)) != len(items):
        raise ValueError(f"Widths are listed twice: {list(widths)}")
    return tuple(items)


def _width_text(width: int, own: int | None) -> str:
    return str(width) if own is None else f"{width}:{own}"


def capture(model: nn.Module, inputs, targets, loss_fn=F.cross_entropy) -> dict:
    """Run one forward and backward pass; return ``{layer: {"z", "g", "dz", "mask", "alpha"}}``.

    Arrays are flattened float32 numpy (``mask`` bool: torch's ``z > -alpha``). Layers are the
    qualified names of the model's HeLU modules, in forward order.
    """
    if not isinstance(model, nn.Module):
        raise TypeError(f"Model must be a torch.nn.Module, not {type(model).__name__}")
    if not isinstance(inputs, torch.Tensor) or not inputs.is_floating_point():
        raise TypeError("Inputs must be a floating-point torch.Tensor")
    if not isinstance(targets, torch.Tensor):
        raise TypeError("Targets must be a torch.Tensor")
    if inputs.ndim < 1 or inputs.shape[0] == 0:
        raise ValueError(f"Inputs must hold at least one sample, not shape {tuple(inputs.shape)}")
    if targets.shape[:1] != inputs.shape[:1]:
        raise ValueError(
            f"Targets of shape {tuple(targets.shape)} do not match inputs of shape "
            f"{tuple(inputs.shape)}: one target per sample"
        )
    helus = [(name, m) for name, m in model.named_modules() if isinstance(m, HeLU)]
    if not helus:
        raise ValueError(
            "The model has no HeLU modules; swap them in with "
            "helu.golden.activations.swap_activations(model, lambda: HeLU(alpha))"
        )
    records = {name: {"alpha": m.alpha, "calls": 0} for name, m in helus}

    def hook(name):
        def fn(_module, inp, out):
            rec = records[name]
            rec["calls"] += 1
            z = inp[0]
            rec["z"] = z.detach().clone()
            if z.requires_grad:
                z.register_hook(lambda grad: rec.__setitem__("dz", grad.detach().clone()))
            out.register_hook(lambda grad: rec.__setitem__("g", grad.detach().clone()))

        return fn

    was_training = model.training
    handles = [m.register_forward_hook(hook(name)) for name, m in helus]
    try:
        model.eval()
        model.zero_grad(set_to_none=True)
        with torch.enable_grad():
            try:
                out = model(inputs)
            except RuntimeError as exc:
                first = str(exc).strip().splitlines()[0]
                raise ValueError(
                    f"Inputs of shape {tuple(inputs.shape)} do not fit the model ({first})"
                ) from None
            loss = loss_fn(out, targets)
            if not isinstance(loss, torch.Tensor) or loss.numel() != 1:
                raise ValueError("loss_fn must return a scalar tensor")
            loss.backward()
    finally:
        for h in handles:
            h.remove()
        model.train(was_training)
        model.zero_grad(set_to_none=True)

    result = {}
    for name, rec in records.items():
        if rec["calls"] != 1:
            raise ValueError(
                f"HeLU layer {name!r} ran {rec['calls']} times in one forward pass; "
                "export needs each HeLU module used exactly once"
            )
        if "g" not in rec or "dz" not in rec:
            raise ValueError(f"HeLU layer {name!r} received no gradient from the loss")
        z = rec["z"]
        result[name] = {
            "alpha": rec["alpha"],
            "z": z.float().flatten().numpy(),
            "g": rec["g"].float().flatten().numpy(),
            "dz": rec["dz"].float().flatten().numpy(),
            "mask": (z > -rec["alpha"]).flatten().numpy(),
        }
    result_loss = float(loss.detach())
    return {"layers": result, "loss": result_loss}


def _steps(err, fmt: Format) -> float:
    return float(np.max(err) / fmt.step) if err.size else 0.0


def _one_set(layer, rec, width, frac, grad_frac, allow_vanishing_alpha, name) -> GoldenSet:
    alpha = rec["alpha"]
    z, g = rec["z"], rec["g"]
    z_fmt = Format(width, fixed.choose_frac(z, width) if frac == "auto" else frac)
    g_fmt = Format(width, fixed.choose_frac(g, width) if grad_frac == "auto" else grad_frac)
    note = fixed.alpha_note(alpha, z_fmt)
    if note is not None and frac != "auto" and not allow_vanishing_alpha:
        raise ValueError(
            f"layer {layer} at --frac {frac}: {note} "
            "(pass --allow-vanishing-alpha to export anyway)"
        )
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", fixed.AlphaVanishesWarning)
        t = fixed.checked_threshold(alpha, z_fmt)
    if note is not None:
        warnings.warn(f"layer {layer}, {z_fmt}: {note}", fixed.AlphaVanishesWarning, stacklevel=3)
    zk, z_sat = fixed.quantize(z, z_fmt)
    gk, g_sat = fixed.quantize(g, g_fmt)
    y = fixed.forward(zk)
    m = fixed.mask(zk, t)
    dz = fixed.backward(gk, m)
    mismatch = m != rec["mask"]
    agree = ~mismatch
    y_err = np.abs(fixed.dequantize(y, z_fmt) - np.maximum(z.astype(np.float64), 0))
    dz_err = np.abs(fixed.dequantize(dz, g_fmt) - rec["dz"].astype(np.float64))[agree]
    stats = {
        "source_elements": int(rec["z"].size),
        "z_saturations": z_sat,
        "g_saturations": g_sat,
        "mask_mismatch": int(mismatch.sum()),
        "mask_true": int(m.sum()),
        "band_codes": int(-1 - t) if t < 0 else 0,
        "band_elements": int((m & (zk <= 0)).sum()),
        "y_max_error_steps": _steps(y_err, z_fmt),
        "dz_max_error_steps": _steps(dz_err, g_fmt),
        "frac_mode": {
            "z": "auto" if frac == "auto" else "given",
            "g": "auto" if grad_frac == "auto" else "given",
        },
        "alpha_note": note,
    }
    return GoldenSet(
        name=name,
        layer=layer,
        z=zk,
        g=gk,
        y=y,
        mask=m,
        dz=dz,
        z_fmt=z_fmt,
        g_fmt=g_fmt,
        alpha=alpha,
        threshold=t,
        z_float=z.astype(np.float32),
        g_float=g.astype(np.float32),
        stats=stats,
    )


def build_sets(
    captured: dict,
    widths=(8, 16),
    frac="auto",
    grad_frac="auto",
    max_elements=None,
    allow_vanishing_alpha=False,
) -> list[GoldenSet]:
    """Quantize what :func:`capture` returned into one :class:`GoldenSet` per layer and width.

    ``frac``/``grad_frac``: ``"auto"`` (per tensor, no saturation) or a fixed number of fractional
    bits for ``z``/``g``. A fixed ``frac`` that leaves alpha no negative code in the band is refused
    unless ``allow_vanishing_alpha``; with ``"auto"`` that case warns and is recorded in
    ``stats["alpha_note"]``. ``max_elements`` keeps the first N elements of each layer.
    """
    widths = _check_widths(widths)
    frac = parse_frac(frac, "frac")
    grad_frac = parse_frac(grad_frac, "grad-frac")
    if max_elements is not None and (
        isinstance(max_elements, bool) or not isinstance(max_elements, int) or max_elements < 1
    ):
        raise ValueError(f"max_elements must be a positive integer, not {max_elements!r}")
    for value in (frac, grad_frac):
        if value != "auto":
            Format(widths[0][0], value)  # range check with a clear message before any work
    sets = []
    for layer, rec in captured["layers"].items():
        if max_elements is not None:
            rec = {
                k: (v[:max_elements] if isinstance(v, np.ndarray) else v) for k, v in rec.items()
            }
        for width, own in widths:
            name = f"{layer.replace('.', '_')}_w{width}" + ("" if own is None else f"f{own}")
            z_frac = frac if own is None else own
            sets.append(_one_set(layer, rec, width, z_frac, grad_frac, allow_vanishing_alpha, name))
    return sets


def export_from_model(
    model: nn.Module,
    inputs,
    targets,
    out_dir,
    loss_fn=F.cross_entropy,
    widths=(8, 16),
    frac="auto",
    grad_frac="auto",
    max_elements=None,
    allow_vanishing_alpha=False,
    meta=None,
    force=False,
    sources=(),
) -> Path:
    """Golden vectors of any model with HeLU modules; returns the manifest's path.

    ``inputs``/``targets`` are one batch (all of it goes through in one pass); ``loss_fn(out,
    targets)`` must return the scalar training loss. ``meta`` adds to (and overrides) the
    manifest's fields (model, checkpoint, dataset, act, alpha, accuracy, split). ``out_dir``
    follows ``helu.common.outdir``'s rule (``force``, and ``sources``, the files read, such as the
    checkpoint: see ``vectors.write_golden``).
    """
    # Arguments are checked before the (possibly long) forward pass.
    outdir.claim(out_dir, "golden", force=force, inputs=sources)
    _check_widths(widths)
    parse_frac(frac, "frac")
    parse_frac(grad_frac, "grad-frac")
    captured = capture(model, inputs, targets, loss_fn)
    sets = build_sets(captured, widths, frac, grad_frac, max_elements, allow_vanishing_alpha)
    alphas = sorted({s.alpha for s in sets})
    info = {
        "model": type(model).__name__,
        "checkpoint": None,
        "dataset": None,
        "act": "helu",
        "alpha": alphas[0] if len(alphas) == 1 else alphas,
        "accuracy": None,
        "split": None,
        "samples": int(inputs.shape[0]),
        "loss": getattr(loss_fn, "__name__", type(loss_fn).__name__),
        "loss_value": captured["loss"],
        "widths": [_width_text(*item) for item in _check_widths(widths)],
        "frac": frac,
        "grad_frac": grad_frac,
        "max_elements": max_elements,
        "torch": torch.__version__,
    }
    info.update(meta or {})
    path = write_golden(out_dir, sets, info, force=force, inputs=sources)
    for s in sets:
        st = s.stats
        log.info(
            f"{s.name}: {s.elements} elements, z {s.z_fmt} T={s.threshold}, g {s.g_fmt}, "
            f"saturated z {st['z_saturations']} g {st['g_saturations']}, "
            f"mask mismatch {st['mask_mismatch']}, band elements {st['band_elements']}"
        )
    return path


def export_checkpoint(
    checkpoint,
    out_dir,
    widths=(8, 16),
    frac="auto",
    grad_frac="auto",
    max_elements=None,
    allow_vanishing_alpha=False,
    force=False,
) -> Path:
    """Golden vectors of a ``helu train`` checkpoint on its dataset's test split."""
    from helu.golden import data

    outdir.claim(out_dir, "golden", force=force, inputs=(checkpoint,))
    _check_widths(widths)
    parse_frac(frac, "frac")
    parse_frac(grad_frac, "grad-frac")
    model, ckpt = load_checkpoint(checkpoint)
    if ckpt.get("act") != "helu":
        raise ValueError(
            f"{checkpoint}: trained with {ckpt.get('act')!r}; golden vectors need a HeLU model "
            "(pass a helu checkpoint, e.g. checkpoints/*_helu-0.05_s0.pt)"
        )
    split = data.load(
        ckpt["dataset"], seed=ckpt["split"]["seed"], test_size=ckpt["split"]["test_size"]
    )
    inputs = torch.from_numpy(split.x_test)
    targets = torch.from_numpy(split.y_test)
    with torch.no_grad():
        acc = (model(inputs).argmax(1) == targets).float().mean().item()
    if not math.isclose(acc, ckpt["accuracy"], abs_tol=1e-6):
        log.warning(
            f"{checkpoint}: test accuracy {acc:.4f} differs from the recorded "
            f"{ckpt['accuracy']:.4f} (different scikit-learn or torch version?)"
        )
    meta = {
        "model": ckpt["model_config"]["kind"],
        "model_config": ckpt["model_config"],
        "checkpoint": str(checkpoint),
        "dataset": ckpt["dataset"],
        "act": ckpt["act"],
        "alpha": ckpt["alpha"],
        "accuracy": acc,
        "seed": ckpt.get("seed"),
        "split": "test",
        "split_seed": ckpt["split"]["seed"],
        "checkpoint_sha256": outdir.sha256_file(checkpoint),
    }
    return export_from_model(
        model,
        inputs,
        targets,
        out_dir,
        widths=widths,
        frac=frac,
        grad_frac=grad_frac,
        max_elements=max_elements,
        allow_vanishing_alpha=allow_vanishing_alpha,
        meta=meta,
        force=force,
        sources=(checkpoint,),
    )
