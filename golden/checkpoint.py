"""Study checkpoints: the one place they are written and read.

A checkpoint is a ``torch.save`` dict: ``format`` (``CHECKPOINT_FORMAT``), ``version``,
``state_dict``, ``model_config`` (``ModelConfig.to_dict()``), ``dataset``, ``split`` (seed,
test size), ``act``, ``alpha``, ``seed`` and ``accuracy``. ``helu train`` writes them
(``golden.train``), ``helu golden`` reads them (``golden.export``).
"""

import os
from pathlib import Path

import torch
from torch import nn

__all__ = ["CHECKPOINT_FORMAT", "save_checkpoint", "load_checkpoint"]

CHECKPOINT_FORMAT = "helu-checkpoint"


def save_checkpoint(path, model, mcfg, split, act, alpha, seed, acc) -> Path:
    """Write a checkpoint that :func:`load_checkpoint` reads (atomic: temporary file, rename).

    ``mcfg`` is the ``golden.models.ModelConfig``, ``split`` the ``golden.data.Split``.
    """
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    payload = {
        "format": CHECKPOINT_FORMAT,
        "version": 1,
        "state_dict": model.state_dict(),
        "model_config": mcfg.to_dict(),
        "dataset": split.name,
        "split": {"seed": split.seed, "test_size": split.test_size},
        "act": act,
        "alpha": alpha,
        "seed": seed,
        "accuracy": acc,
    }
    tmp = path.with_name(path.name + ".tmp")
    torch.save(payload, tmp)
    os.replace(tmp, path)
    return path


# What the golden exporter reads from a checkpoint besides the format tag.
CHECKPOINT_KEYS = ("model_config", "state_dict", "act", "alpha", "dataset", "split", "accuracy")


def load_checkpoint(path) -> tuple[nn.Module, dict]:
    """Rebuild the model a ``helu train`` checkpoint describes; returns ``(model, checkpoint)``."""
    from helu.golden.models import build, config_from_dict

    path = Path(path)
    if path.is_dir():
        raise ValueError(
            f"checkpoint {path} is a folder; pass one of its .pt files (a 'helu train' folder "
            "keeps them in checkpoints/)"
        )
    if not path.is_file():
        raise FileNotFoundError(f"checkpoint {path} not found; train one with 'helu train'")
    try:
        ckpt = torch.load(path, map_location="cpu", weights_only=True)
    except Exception as exc:  # torch raises many types for a damaged file
        raise ValueError(
            f"{path}: not a readable checkpoint (torch.load: {type(exc).__name__}); "
            "re-create it with 'helu train'"
        ) from None
    if not isinstance(ckpt, dict) or ckpt.get("format") != CHECKPOINT_FORMAT:
        raise ValueError(f"{path}: not a helu checkpoint; create one with 'helu train'")
    missing = [k for k in CHECKPOINT_KEYS if k not in ckpt]
    split = ckpt.get("split")
    if not missing and not (isinstance(split, dict) and {"seed", "test_size"} <= set(split)):
        missing = ["split.seed/test_size"]
    if not missing and not isinstance(ckpt.get("model_config"), dict):
        missing = ["model_config (an object)"]
    if missing:
        raise ValueError(
            f"{path}: damaged helu checkpoint (no {', '.join(missing)}); re-create it with "
            "'helu train'"
        )
    try:
        model = build(config_from_dict(ckpt["model_config"]))
        model.load_state_dict(ckpt["state_dict"])
    except (KeyError, TypeError, ValueError, RuntimeError) as exc:
        first = (str(exc).strip().splitlines() or [type(exc).__name__])[0]
        raise ValueError(f"{path}: damaged helu checkpoint ({first[:120]})") from None
    return model, ckpt
