"""Small models for the study: an MLP (any dataset) and a CNN for digits (8x8 images).

Both are configured by :class:`ModelConfig`; the activation is chosen by name. Activation modules
are attributes ``act1``, ``act2``, ... (one per hidden layer, in order), so hooks and the golden
exporter find them by name (``model.activations()`` lists them); the layer before ``act<i>`` is
``fc<i>`` or ``conv<i>``.
"""

from dataclasses import asdict, dataclass, field

from torch import nn

from helu.golden.activations import LEAKY_SLOPE, STUDY_ACTIVATIONS, validate_alpha

__all__ = [
    "ACTIVATIONS",
    "LEAKY_SLOPE",
    "ModelConfig",
    "MLP",
    "CNN",
    "make_activation",
    "build",
    "config_from_dict",
]

ACTIVATIONS = tuple(STUDY_ACTIVATIONS)  # registered in golden.activations


def make_activation(act: str, alpha: float = 0.05) -> nn.Module:
    """A fresh activation module by name (``alpha`` is used by ``"helu"`` only)."""
    make = STUDY_ACTIVATIONS.get(act)
    if make is None:
        raise ValueError(f"Unknown activation {act!r}; choose one of {', '.join(ACTIVATIONS)}")
    return make(alpha)


@dataclass
class ModelConfig:
    kind: str = "mlp"  # "mlp" or "cnn" (the CNN needs 8x8 images: digits)
    in_features: int = 64  # input features (digits: 64 pixels)
    n_classes: int = 10
    hidden: tuple[int, ...] = (64, 64)  # MLP hidden widths, one activation after each
    channels: tuple[int, ...] = (8, 16)  # CNN conv channels (3x3, padding 1, 2x2 max-pool after)
    cnn_fc: int = 32  # CNN hidden fully connected width before the classifier
    act: str = "helu"  # one of ACTIVATIONS
    alpha: float = 0.05  # HeLU band width; ignored by other activations
    extra: dict = field(default_factory=dict)  # free-form notes carried into checkpoints

    def __post_init__(self):
        if self.kind not in ("mlp", "cnn"):
            raise ValueError(f"Model kind must be 'mlp' or 'cnn', not {self.kind!r}")
        for name in ("in_features", "n_classes", "cnn_fc"):
            value = getattr(self, name)
            if isinstance(value, bool) or not isinstance(value, int) or value < 1:
                raise ValueError(f"{name} must be a positive integer, not {value!r}")
        for name in ("hidden", "channels"):
            widths = tuple(getattr(self, name))
            if not widths or any(
                isinstance(w, bool) or not isinstance(w, int) or w < 1 for w in widths
            ):
                raise ValueError(
                    f"{name} must be a non-empty list of positive integers, not {widths}"
                )
            setattr(self, name, widths)
        if self.act not in ACTIVATIONS:
            raise ValueError(
                f"Unknown activation {self.act!r}; choose one of {', '.join(ACTIVATIONS)}"
            )
        self.alpha = validate_alpha(self.alpha)
        if self.kind == "cnn" and self.in_features != 64:
            raise ValueError(f"The CNN takes 8x8 images (64 features), not {self.in_features}")
        if self.kind == "cnn" and len(self.channels) > 3:
            raise ValueError(
                f"An 8x8 image allows at most 3 pooled conv layers, not {len(self.channels)}"
            )

    def to_dict(self) -> dict:
        d = asdict(self)
        d["hidden"] = list(self.hidden)
        d["channels"] = list(self.channels)
        return d


class _Base(nn.Module):
    def activations(self) -> list[tuple[str, nn.Module]]:
        """``[("act1", module), ...]`` in forward order."""
        return [(f"act{i}", getattr(self, f"act{i}")) for i in range(1, self.n_act + 1)]


class MLP(_Base):
    """``fc1 -> act1 -> fc2 -> act2 -> ... -> out``; input ``(B, in_features)`` (or images,
    flattened)."""

    def __init__(self, cfg: ModelConfig):
        super().__init__()
        self.cfg = cfg
        widths = (cfg.in_features, *cfg.hidden)
        for i in range(1, len(widths)):
            setattr(self, f"fc{i}", nn.Linear(widths[i - 1], widths[i]))
            setattr(self, f"act{i}", make_activation(cfg.act, cfg.alpha))
        self.n_act = len(cfg.hidden)
        self.out = nn.Linear(widths[-1], cfg.n_classes)

    def forward(self, x):
        x = x.flatten(1)  # (B, D)
        for i in range(1, self.n_act + 1):
            x = getattr(self, f"act{i}")(getattr(self, f"fc{i}")(x))  # (B, H_i)
        return self.out(x)  # (B, n_classes)


class CNN(_Base):
    """``conv1 -> act1 -> pool -> ... -> fc<n+1> -> act<n+1> -> out`` on ``(B, 1, 8, 8)``
    images (flat ``(B, 64)`` input is reshaped)."""

    def __init__(self, cfg: ModelConfig):
        super().__init__()
        self.cfg = cfg
        chans = (1, *cfg.channels)
        for i in range(1, len(chans)):
            setattr(self, f"conv{i}", nn.Conv2d(chans[i - 1], chans[i], 3, padding=1))
            setattr(self, f"act{i}", make_activation(cfg.act, cfg.alpha))
        n = len(cfg.channels)
        self.pool = nn.MaxPool2d(2)
        side = 8 >> n
        self.n_act = n + 1
        setattr(self, f"fc{n + 1}", nn.Linear(chans[-1] * side * side, cfg.cnn_fc))
        setattr(self, f"act{n + 1}", make_activation(cfg.act, cfg.alpha))
        self.out = nn.Linear(cfg.cnn_fc, cfg.n_classes)

    def forward(self, x):
        x = x.reshape(x.shape[0], 1, 8, 8)  # (B, 1, 8, 8)
        n = self.n_act - 1
        for i in range(1, n + 1):
            x = self.pool(getattr(self, f"act{i}")(getattr(self, f"conv{i}")(x)))  # (B, C_i, ., .)
        x = getattr(self, f"act{n + 1}")(getattr(self, f"fc{n + 1}")(x.flatten(1)))  # (B, cnn_fc)
        return self.out(x)  # (B, n_classes)


def build(cfg: ModelConfig) -> nn.Module:
    """The model ``cfg`` describes (fresh weights from torch's current RNG state)."""
    if not isinstance(cfg, ModelConfig):
        raise TypeError(f"Expected a ModelConfig, not {type(cfg).__name__}")
    return MLP(cfg) if cfg.kind == "mlp" else CNN(cfg)


def config_from_dict(d: dict) -> ModelConfig:
    """Inverse of ``ModelConfig.to_dict`` (for checkpoints)."""
    d = dict(d)
    d["hidden"] = tuple(d.get("hidden", ()))
    d["channels"] = tuple(d.get("channels", ()))
    return ModelConfig(**d)
