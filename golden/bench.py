"""Benchmark of the HeLU autograd function (``make bench``; figures, not pass/fail tests).

Two figures from issue 3:

- Training step time of the study's MLP with HeLU over the same MLP with ReLU (target <= 1.15x):
  both models start from the same weights and see the same batch; steps alternate between the
  two (ReLU first on even steps, HeLU first on odd ones) so drift in machine load hits both; the
  figure is the ratio of the medians.
- Bytes saved for backward per activation element, measured with
  ``torch.autograd.graph.saved_tensors_hooks`` (target <= 1): HeLU's bool mask against the
  authors' reference, which saves the float32 pre-activation (4 bytes). Counted twice: what the
  activation call itself saves, and what a whole training step of the MLP saves beyond the same
  model with no activation stash (tensors shared between layers, like ReLU's output that the next
  linear layer also saves, counted once).
"""

import statistics
import time

import torch
import torch.nn.functional as F
from torch import nn

from helu.golden.models import ModelConfig, build, make_activation

__all__ = ["run", "AuthorsHeLU", "step_time_ratio", "saved_bytes_per_element", "format_table"]


class _AuthorsHeLUFunction(torch.autograd.Function):
    """The authors' reference: saves the whole pre-activation ``z`` (for comparison only)."""

    @staticmethod
    def forward(ctx, z, alpha):
        ctx.save_for_backward(z)
        ctx.alpha = alpha
        return torch.where(z > 0, z, torch.zeros_like(z))

    @staticmethod
    def backward(ctx, grad):
        (z,) = ctx.saved_tensors
        return torch.where(z > -ctx.alpha, grad, torch.zeros_like(grad)), None


class AuthorsHeLU(nn.Module):
    """HeLU as the authors' ``helu.py`` implements it (stash: float ``z``)."""

    def __init__(self, alpha=0.05):
        super().__init__()
        self.alpha = alpha

    def forward(self, z):
        return _AuthorsHeLUFunction.apply(z, self.alpha)


def _act(name, alpha=0.05):
    return AuthorsHeLU(alpha) if name == "helu-authors" else make_activation(name, alpha)


def _mlp(act, alpha=0.05, hidden=(64, 64), seed=0):
    torch.manual_seed(seed)
    return build(ModelConfig(hidden=hidden, act=act, alpha=alpha))


def step_time_ratio(batch=64, steps=400, warmup=50, hidden=(64, 64), seed=0) -> dict:
    """Median SGD step time (forward, loss, backward, update) of HeLU's MLP over ReLU's."""
    gen = torch.Generator().manual_seed(seed)
    x = torch.randn(batch, 64, generator=gen)
    t = torch.randint(0, 10, (batch,), generator=gen)
    models = {name: _mlp(name, hidden=hidden, seed=seed) for name in ("relu", "helu")}
    opts = {k: torch.optim.SGD(m.parameters(), lr=1e-3, momentum=0.9) for k, m in models.items()}
    times = {k: [] for k in models}

    def step(name):
        start = time.perf_counter()
        loss = F.cross_entropy(models[name](x), t)
        opts[name].zero_grad(set_to_none=True)
        loss.backward()
        opts[name].step()
        return time.perf_counter() - start

    for i in range(warmup + steps):
        order = ("relu", "helu") if i % 2 == 0 else ("helu", "relu")
        for name in order:
            elapsed = step(name)
            if i >= warmup:
                times[name].append(elapsed)
    med = {k: statistics.median(v) for k, v in times.items()}
    return {
        "batch": batch,
        "steps": steps,
        "hidden": list(hidden),
        "relu_us": 1e6 * med["relu"],
        "helu_us": 1e6 * med["helu"],
        "ratio": med["helu"] / med["relu"],
    }


def _saved(fn) -> list[torch.Tensor]:
    saved = []

    def pack(tensor):
        saved.append(tensor)
        return tensor

    with torch.autograd.graph.saved_tensors_hooks(pack, lambda tensor: tensor):
        fn()
    return saved


def _bytes(tensors) -> int:
    """Bytes of distinct storages among ``tensors`` (shared storage counted once)."""
    seen = {}
    for tensor in tensors:
        storage = tensor.untyped_storage()
        seen[storage.data_ptr()] = storage.nbytes()
    return sum(seen.values())


def saved_bytes_per_element(name, alpha=0.05, batch=64, hidden=(64, 64)) -> dict:
    """Bytes saved for backward per activation element: by the call, and over a whole step."""
    z = torch.randn(batch, hidden[0], requires_grad=True) * 1.0
    call = _bytes(_saved(lambda: _act(name, alpha)(z))) / z.numel()

    x = torch.randn(batch, 64)
    t = torch.randint(0, 10, (batch,))

    def step_bytes(model):
        return _bytes(_saved(lambda: F.cross_entropy(model(x), t)))

    model = _mlp("relu", hidden=hidden)
    for i in range(1, len(hidden) + 1):
        setattr(model, f"act{i}", nn.Identity())
    base = step_bytes(model)
    for i in range(1, len(hidden) + 1):
        setattr(model, f"act{i}", _act(name, alpha))
    elements = batch * sum(hidden)
    return {"act": name, "call": call, "step": (step_bytes(model) - base) / elements}


def format_table(result: dict) -> str:
    s = result["step_time"]
    lines = [
        f"HeLU training step time over ReLU (MLP {s['hidden']}, batch {s['batch']}, "
        f"median of {s['steps']} alternating steps, {result['threads']} thread(s)):",
        f"  relu {s['relu_us']:.1f} us, helu {s['helu_us']:.1f} us, ratio {s['ratio']:.3f}x "
        f"(target <= 1.15x: {'met' if s['ratio'] <= 1.15 else 'MISSED'})",
    ]
    for big in result.get("step_time_large", []):
        lines.append(
            f"  batch {big['batch']}: relu {big['relu_us']:.1f} us, helu {big['helu_us']:.1f} us, "
            f"ratio {big['ratio']:.3f}x"
        )
    lines += [
        "Bytes saved for backward per activation element "
        "(call: by the activation; step: whole MLP step beyond an activation-free one):",
        f"  {'activation':<14} {'call':>6} {'step':>6}",
    ]
    for row in result["saved_bytes"]:
        lines.append(f"  {row['act']:<14} {row['call']:>6.2f} {row['step']:>6.2f}")
    helu = next(r for r in result["saved_bytes"] if r["act"] == "helu")
    lines.append(
        f"  HeLU stash {helu['call']:.2f} byte(s) per element "
        f"(target <= 1: {'met' if helu['call'] <= 1 else 'MISSED'}; "
        "the authors' code: 4 in float32)"
    )
    return "\n".join(lines)


def run(threads=1, steps=400, print_table=True) -> dict:
    """Measure both figures, print a small table, return them as a dict."""
    before = torch.get_num_threads()
    torch.set_num_threads(threads)
    try:
        result = {
            "threads": threads,
            "step_time": step_time_ratio(batch=64, steps=steps),
            "step_time_large": [step_time_ratio(batch=1024, steps=max(steps // 4, 20))],
            "saved_bytes": [
                saved_bytes_per_element(name)
                for name in ("relu", "helu", "helu-authors", "gelu", "elu", "leaky")
            ],
        }
    finally:
        torch.set_num_threads(before)
    result["targets_met"] = {
        "step_time_ratio<=1.15": result["step_time"]["ratio"] <= 1.15,
        "helu_bytes<=1": next(r for r in result["saved_bytes"] if r["act"] == "helu")["call"] <= 1,
    }
    if print_table:
        print(format_table(result))
    return result


if __name__ == "__main__":
    run()
