"""Benchmark of the HeLU autograd function (``make bench``; figures, not pass/fail tests).

Figures from issues 3 and 25:

- Training step time of the study's MLP ([64, 64]) with HeLU, and with the authors' HeLU, over
  the same MLP with ReLU, at batch 64 and 1024 (target <= 1.05x for ours): the models start from
  the same weights and see the same batch; steps rotate through the models (each goes first in
  turn) so drift in machine load hits all; the figures are ratios of the medians. Measured with
  1 torch thread and with 2; the thread count and the machine are printed with them.
- Memory of a training step at three model sizes, HeLU and the authors' HeLU against ReLU: the
  bytes autograd holds for backward (distinct storages), and where a GPU exists the peak of
  ``torch.cuda.max_memory_allocated`` over the step.
- Bytes saved for backward per activation element, measured with
  ``torch.autograd.graph.saved_tensors_hooks`` (target <= 1): HeLU's bool mask against the
  authors' reference, which saves the float32 pre-activation (4 bytes). Counted twice: what the
  activation call itself saves, and what a whole training step of the MLP saves beyond the same
  model with no activation stash (tensors shared between layers, like ReLU's output that the next
  linear layer also saves, counted once).
"""

import os
import platform
import statistics
import time

import torch
import torch.nn.functional as F
from torch import nn

from helu.golden.models import ModelConfig, build, make_activation

__all__ = [
    "run",
    "AuthorsHeLU",
    "step_time_ratio",
    "step_memory",
    "saved_bytes_per_element",
    "format_table",
    "MEMORY_SIZES",
]

TIMED = ("relu", "helu", "helu-authors")  # the first is the reference of every ratio
MEMORY_SIZES = ((64, 64), (256, 256), (1024, 1024))  # MLP hidden widths, smallest to largest


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
    if act != "helu-authors":
        return build(ModelConfig(hidden=hidden, act=act, alpha=alpha))
    model = build(ModelConfig(hidden=hidden, act="relu"))  # the same weights: no parameters
    for name, _ in model.activations():
        setattr(model, name, AuthorsHeLU(alpha))
    return model


def step_time_ratio(batch=64, steps=400, warmup=50, hidden=(64, 64), seed=0, acts=TIMED) -> dict:
    """Median SGD step time (forward, loss, backward, update) of each MLP over ``acts[0]``'s."""
    gen = torch.Generator().manual_seed(seed)
    x = torch.randn(batch, 64, generator=gen)
    t = torch.randint(0, 10, (batch,), generator=gen)
    models = {name: _mlp(name, hidden=hidden, seed=seed) for name in acts}
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
        k = i % len(acts)
        for name in acts[k:] + acts[:k]:
            elapsed = step(name)
            if i >= warmup:
                times[name].append(elapsed)
    med = {k: statistics.median(v) for k, v in times.items()}
    return {
        "batch": batch,
        "threads": torch.get_num_threads(),
        "steps": steps,
        "hidden": list(hidden),
        "us": {k: 1e6 * v for k, v in med.items()},
        "ratios": {k: v / med[acts[0]] for k, v in med.items()},
        "relu_us": 1e6 * med[acts[0]],
        "helu_us": 1e6 * med["helu"],
        "ratio": med["helu"] / med[acts[0]],
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


def step_memory(name, hidden, batch=1024, alpha=0.05) -> dict:
    """Memory of one training step of the MLP ``hidden`` with activation ``name``.

    ``saved``: bytes autograd holds for backward after the forward (distinct storages: weights
    and the input counted once), the step's peak beyond the parameters and the batch on CPU.
    ``cuda_peak``: ``torch.cuda.max_memory_allocated`` over forward, backward and update on the
    GPU (None without one)."""
    x = torch.randn(batch, 64)
    t = torch.randint(0, 10, (batch,))
    model = _mlp(name, alpha=alpha, hidden=hidden)
    out = {"act": name, "hidden": list(hidden), "batch": batch}
    out["saved"] = _bytes(_saved(lambda: F.cross_entropy(model(x), t)))
    out["cuda_peak"] = None
    if torch.cuda.is_available():
        model, x, t = model.cuda(), x.cuda(), t.cuda()
        opt = torch.optim.SGD(model.parameters(), lr=1e-3, momentum=0.9)
        for _ in range(2):  # the peak of the second: the first also allocates the momentum
            torch.cuda.synchronize()
            torch.cuda.reset_peak_memory_stats()
            loss = F.cross_entropy(model(x), t)
            opt.zero_grad(set_to_none=True)
            loss.backward()
            opt.step()
            torch.cuda.synchronize()
        out["cuda_peak"] = torch.cuda.max_memory_allocated()
    return out


def _machine() -> str:
    cpu = platform.processor() or platform.machine()
    try:
        with open("/proc/cpuinfo") as f:
            names = [ln.split(":", 1)[1].strip() for ln in f if ln.startswith("model name")]
        cpu = names[0] if names else cpu
    except OSError:
        pass
    return f"{cpu}, {os.cpu_count()} cores, torch {torch.__version__}"


def format_table(result: dict) -> str:
    names = list(result["step_time"][0]["ratios"])
    lines = [
        f"Training step time over ReLU (MLP {result['step_time'][0]['hidden']}, median of "
        f"alternating steps, torch threads {result['threads']}, {result['machine']}):",
        f"  {'threads':>7} {'batch':>5} {'steps':>5} "
        + " ".join(f"{n + ' us':>17}" for n in names)
        + " "
        + " ".join(f"{n + ' x':>15}" for n in names[1:]),
    ]
    for s in result["step_time"]:
        lines.append(
            f"  {s['threads']:>7} {s['batch']:>5} {s['steps']:>5} "
            + " ".join(f"{s['us'][n]:>17.1f}" for n in names)
            + " "
            + " ".join(f"{s['ratios'][n]:>15.3f}" for n in names[1:])
            + f"   (helu target <= 1.05x: {'met' if s['ratio'] <= 1.05 else 'MISSED'})"
        )
    lines += [
        "Memory of a training step (saved: bytes autograd holds for backward; cuda: peak "
        "allocated, GPU only):",
        f"  {'hidden':<12} {'batch':>5} "
        + " ".join(f"{n + ' MiB':>17}" for n in names)
        + " "
        + " ".join(f"{n + ' x':>15}" for n in names[1:]),
    ]
    for rows in result["memory"]:
        ref = rows[0]["saved"]
        lines.append(
            f"  {str(rows[0]['hidden']):<12} {rows[0]['batch']:>5} "
            + " ".join(f"{r['saved'] / 2**20:>17.2f}" for r in rows)
            + " "
            + " ".join(f"{r['saved'] / ref:>15.3f}" for r in rows[1:])
        )
        if rows[0]["cuda_peak"] is not None:
            lines.append(
                "  " + " " * 18 + " ".join(f"{r['cuda_peak'] / 2**20:>13.2f} cuda" for r in rows)
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


def run(threads=(1, 2), steps=400, print_table=True, machine=None) -> dict:
    """Measure the figures, print a small table, return them as a dict.

    Step times at batch 64 and 1024 for each torch thread count in ``threads``; the rest with
    the first."""
    before = torch.get_num_threads()
    try:
        timed = []
        for n in threads:
            torch.set_num_threads(n)
            timed.append(step_time_ratio(batch=64, steps=steps))
            timed.append(step_time_ratio(batch=1024, steps=max(steps // 4, 20)))
        torch.set_num_threads(threads[0])
        result = {
            "threads": list(threads),
            "machine": machine or _machine(),
            "step_time": timed,
            "memory": [[step_memory(name, hidden) for name in TIMED] for hidden in MEMORY_SIZES],
            "saved_bytes": [
                saved_bytes_per_element(name)
                for name in ("relu", "helu", "helu-authors", "gelu", "elu", "leaky")
            ],
        }
    finally:
        torch.set_num_threads(before)
    result["targets_met"] = {
        "step_time_ratio<=1.05": all(s["ratio"] <= 1.05 for s in timed),
        "helu_bytes<=1": next(r for r in result["saved_bytes"] if r["act"] == "helu")["call"] <= 1,
    }
    if print_table:
        print(format_table(result))
    return result


if __name__ == "__main__":
    run()
