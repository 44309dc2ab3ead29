"""Example user models: plain ``nn.Sequential`` float nets, trained here, as a user would bring.

They stand in for "your own model" in the docs, the flow and the tests, and go through the same
import path as any model (``golden.quantize``): nothing here is special-cased downstream.

- ``digits-cnn``: conv3x3 1->8 (pad 1), HeLU, conv3x3 stride 2 8->16 (pad 1), HeLU, flatten,
  dense 256->10, on digits images ``pixel / 16``;
- ``digits-mlp``: 64-32-32-10 with HeLU;
- ``wine-mlp``: 13-16-8-3 with HeLU, with a BatchNorm after the first layer (folded on import);
- ``cancer-mlp``: 30-16-2 with ReLU, on breast cancer.
"""

from dataclasses import dataclass

# torch is imported where a model is built or trained: the CLI reads EXAMPLES for its --help.

__all__ = ["EXAMPLES", "Example", "build", "train"]


@dataclass(frozen=True)
class Example:
    dataset: str  # golden.quantize.load_data name
    epochs: int
    lr: float
    description: str


def _digits_cnn(alpha):
    from torch import nn

    from helu.golden.activations import HeLU

    return nn.Sequential(
        nn.Conv2d(1, 8, 3, padding=1),
        HeLU(alpha),
        nn.Conv2d(8, 16, 3, stride=2, padding=1),
        HeLU(alpha),
        nn.Flatten(),
        nn.Linear(16 * 4 * 4, 10),
    )


def _digits_mlp(alpha):
    from torch import nn

    from helu.golden.activations import HeLU

    return nn.Sequential(
        nn.Flatten(), nn.Linear(64, 32), HeLU(alpha), nn.Linear(32, 32), HeLU(alpha),
        nn.Linear(32, 10),
    )  # fmt: skip


def _wine_mlp(alpha):
    from torch import nn

    from helu.golden.activations import HeLU

    return nn.Sequential(
        nn.Linear(13, 16), nn.BatchNorm1d(16), HeLU(alpha), nn.Linear(16, 8), HeLU(alpha),
        nn.Linear(8, 3),
    )  # fmt: skip


def _cancer_mlp(alpha):
    from torch import nn

    return nn.Sequential(nn.Linear(30, 16), nn.ReLU(), nn.Linear(16, 2))


_BUILDERS = {
    "digits-cnn": _digits_cnn,
    "digits-mlp": _digits_mlp,
    "wine-mlp": _wine_mlp,
    "cancer-mlp": _cancer_mlp,
}
EXAMPLES = {
    "digits-cnn": Example("digits", 30, 0.01, "conv3x3 1->8, conv3x3/2 8->16, dense 256->10"),
    "digits-mlp": Example("digits", 40, 0.01, "64-32-32-10 MLP"),
    "wine-mlp": Example("wine", 60, 0.01, "13-16-8-3 MLP with a BatchNorm"),
    "cancer-mlp": Example("breast_cancer", 40, 0.01, "30-16-2 ReLU MLP"),
}


def build(name: str, alpha: float = 0.05, seed: int = 0):
    """A fresh example model ``name`` (an ``nn.Sequential``, seeded initial weights)."""
    import torch

    if name not in EXAMPLES:
        raise ValueError(f"Unknown example {name!r}; choose one of {', '.join(EXAMPLES)}")
    torch.manual_seed(seed)
    return _BUILDERS[name](alpha)


def train(model, data, epochs: int, lr: float = 0.01, seed: int = 0):
    """Cross-entropy training with Adam, batch 32, seeded order, one thread; eval mode after.

    ``data``: a ``golden.quantize.Data``. Returns ``model`` in eval mode.
    """
    import numpy as np
    import torch
    import torch.nn.functional as F

    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    try:
        gen = torch.Generator().manual_seed(seed)
        opt = torch.optim.Adam(model.parameters(), lr=lr)
        x = torch.from_numpy(np.asarray(data.x_train, dtype=np.float32))
        y = torch.from_numpy(np.asarray(data.y_train, dtype=np.int64))
        model.train()
        for _ in range(epochs):
            order = torch.randperm(len(x), generator=gen)
            for i in range(0, len(x), 32):
                idx = order[i : i + 32]
                loss = F.cross_entropy(model(x[idx]), y[idx])
                opt.zero_grad(set_to_none=True)
                loss.backward()
                opt.step()
    finally:
        torch.set_num_threads(threads)
    return model.eval()
