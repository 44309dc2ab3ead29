"""Deep, narrow MLPs where ReLU is born dead or collapses (Lu et al.), and whether HeLU helps.

The setting follows Lu, Su and Karniadakis ("Collapse of deep and narrow neural nets", arXiv
1808.04947) and Lu, Shin, Su and Karniadakis ("Dying ReLU and initialization", arXiv
1903.06733): a ``1 -> width x depth -> 1`` MLP (``depth`` hidden layers of ``width`` units, a
linear output) fits a 1-D target on ``points`` equally spaced inputs in ``[-1.5, 1.5]`` by
full-batch MSE.

One **cell** is (width, depth, bias init, optimizer, target). Every seed of a cell draws one
initialization, shared by every **arm** (activation) of the cell, so arms are compared on paired
nets. All seeds and all arms of a cell train as ONE batched computation: layer ``l``'s weights
of the ``B = arms x seeds`` nets are one ``(out, in, B)`` tensor (nets innermost, see
:func:`_linear`). The loss is the sum of the nets' own losses, so each net's gradient is its
own; Adam and SGD update every element independently, so the batched run is the nets trained
one by one (up to float rounding; a test checks it). Everything is float32.

Definitions (per net, on the training inputs):

- **born dead**: at initialization, with the ReLU forward pass (HeLU's forward is ReLU), some
  hidden layer outputs 0 in every unit for every input. The net is then a constant function,
  and under ReLU no parameter below that layer ever receives a gradient again.
- **collapsed** after training: the output's variance over the inputs is below
  ``COLLAPSE_VAR`` (1e-3) times the target's: the net predicts (almost) a constant.
- **good fit**: final MSE below ``GOOD_NMSE`` (0.05) times the target's variance (R^2 > 0.95).
- **recovered**: born dead and not collapsed after training.
- **diverged**: the final loss is not finite (counted as neither collapsed nor a good fit).

Initializations (weights of the output layer: He normal, its bias zero, in every scheme):

- ``zero``: hidden weights He normal ``N(0, 2/fan_in)``, biases 0;
- ``symmetric``: hidden weights and biases ``N(0, 2/fan_in)``;
- ``rai``: Lu et al.'s randomized asymmetric initialization: for each hidden unit, one of its
  ``fan_in + 1`` parameters (weights and bias), picked uniformly, is drawn from Beta(2, 1)
  (positive); the others from ``N(0, sigma^2)``, ``sigma = 0.6007 / sqrt(fan_in)`` (the value
  their second-moment condition gives for Beta(2, 1)).

Arms: ``relu``; ``helu:A`` (HeLU with fixed alpha ``A``); ``helu:scaled`` (per net and layer,
alpha = ``SCALED_ALPHA`` (0.1) times the standard deviation of that layer's pre-activations over
the inputs and units at initialization, then fixed); ``leaky`` (LeakyReLU, slope 0.01); ``gelu``.
ReLU is HeLU with alpha 0, and all HeLU-family arms use :class:`HeLUFunction`, the one home of
HeLU's rule.

Statistics: Wilson score intervals for proportions, a distribution-free (order-statistic)
interval for medians, and McNemar's exact test for paired binary outcomes; no scipy.

Analysis (:func:`analyse`): per cell and HeLU arm a verdict against ReLU, helps / null / hurts
(:func:`paired_verdict`: significant at ``SIGNIFICANCE`` per cell, McNemar), and the check of
ReLU's born-dead rate against Lu et al.'s bounds for zero biases (:func:`lu_check`). The tables
and plots of the study are the report layer's (``helu/collapse.py``).
"""

import math
import time
from dataclasses import asdict, dataclass

import numpy as np
import torch
import torch.nn.functional as F

from helu.golden.activations import HeLUFunction, validate_alpha

__all__ = [
    "ARMS",
    "BIASES",
    "COLLAPSE_VAR",
    "GOOD_NMSE",
    "OPTIMIZERS",
    "SCALED_ALPHA",
    "SIGNIFICANCE",
    "TARGETS",
    "VERDICTS",
    "Cell",
    "analyse",
    "arm_label",
    "born_dead",
    "dead_ray_bound",
    "init_params",
    "inputs",
    "lu_check",
    "mcnemar",
    "median_ci",
    "outcomes",
    "paired_verdict",
    "parse_arm",
    "run_cell",
    "run_cells",
    "summarize_cell",
    "target",
    "verdicts",
    "wilson",
]

TARGETS = ("abs", "sin")
BIASES = ("zero", "symmetric", "rai")
OPTIMIZERS = ("adam", "sgd")
ARMS = ("relu", "helu:0.01", "helu:0.1", "helu:0.5", "helu:scaled", "leaky", "gelu")
LR = {"adam": 1e-3, "sgd": 1e-2}  # chosen before any run, not tuned
COLLAPSE_VAR = 1e-3
GOOD_NMSE = 0.05
SCALED_ALPHA = 0.1
LEAKY_SLOPE = 0.01
RAI_SIGMA = 0.6007
DOMAIN = 1.5
Z95 = 1.959963984540054


def parse_arm(arm: str) -> tuple[str, float | None]:
    """``"helu:0.1"`` -> ``("helu", 0.1)``; ``"helu:scaled"`` -> ``("helu", None)``."""
    if arm in ("relu", "leaky", "gelu"):
        return arm, 0.0 if arm == "relu" else None
    kind, _, value = str(arm).partition(":")
    if kind == "helu" and value == "scaled":
        return "helu", None
    if kind == "helu" and value:
        try:
            return "helu", validate_alpha(float(value))
        except ValueError:
            pass
    raise ValueError(
        f"unknown arm {arm!r}; use relu, leaky, gelu, helu:ALPHA (ALPHA >= 0) or helu:scaled"
    )


def arm_label(arm: str) -> str:
    kind, alpha = parse_arm(arm)
    if arm in ("relu", "leaky", "gelu"):
        return {"relu": "ReLU", "leaky": "LeakyReLU", "gelu": "GELU"}[arm]
    return f"HeLU a={SCALED_ALPHA:g}sd" if alpha is None else f"HeLU a={alpha:g}"


@dataclass(frozen=True)
class Cell:
    """One cell of the grid; every field is checked at construction."""

    width: int
    depth: int
    bias: str = "zero"
    optimizer: str = "adam"
    target: str = "abs"
    seeds: int = 200
    seed0: int = 0  # seeds are seed0 .. seed0 + seeds - 1
    steps: int = 1000
    points: int = 100
    lr: float | None = None  # None: LR[optimizer]
    arms: tuple[str, ...] = ARMS

    def __post_init__(self):
        for name, low in (("width", 1), ("depth", 1), ("seeds", 1), ("steps", 0), ("points", 2)):
            value = getattr(self, name)
            if isinstance(value, bool) or not isinstance(value, int) or value < low:
                raise ValueError(f"{name} must be an integer >= {low}, not {value!r}")
        for name, known in (("bias", BIASES), ("optimizer", OPTIMIZERS), ("target", TARGETS)):
            if getattr(self, name) not in known:
                raise ValueError(
                    f"unknown {name} {getattr(self, name)!r}; choose from {', '.join(known)}"
                )
        if self.lr is not None and not (math.isfinite(self.lr) and self.lr > 0):
            raise ValueError(f"learning rate must be a positive number, not {self.lr!r}")
        if not self.arms or len(set(self.arms)) != len(self.arms):
            raise ValueError(f"arms must be distinct and at least one, not {self.arms!r}")
        for arm in self.arms:
            parse_arm(arm)

    @property
    def learning_rate(self) -> float:
        return LR[self.optimizer] if self.lr is None else self.lr

    @property
    def key(self) -> str:
        return f"w{self.width}-d{self.depth}-{self.bias}-{self.optimizer}-{self.target}"


def inputs(points: int) -> torch.Tensor:
    """The training inputs: ``points`` equally spaced in ``[-1.5, 1.5]``, shape (points, 1)."""
    return torch.linspace(-DOMAIN, DOMAIN, points, dtype=torch.float32).unsqueeze(1)


def target(name: str, x: torch.Tensor) -> torch.Tensor:
    """``abs``: ``|x|`` (a kink, the target of Lu et al.); ``sin``: ``sin(2x)`` (smooth)."""
    if name == "abs":
        return x.abs()
    if name == "sin":
        return torch.sin(2 * x)
    raise ValueError(f"unknown target {name!r}; choose from {', '.join(TARGETS)}")


def _seed_generator(seed: int, cell: Cell) -> torch.Generator:
    # The init depends on (seed, width, depth, bias) only: the same seed gives the same net in
    # every arm, optimizer and target, and a quick run's seeds are a prefix of a full run's.
    bias_index = BIASES.index(cell.bias)
    return torch.Generator().manual_seed(
        ((seed * 1_000_003 + cell.width) * 1_009 + cell.depth) * 7 + bias_index
    )


def _hidden_layer(gen, fan_in: int, fan_out: int, bias: str):
    if bias == "rai":
        v = torch.randn(fan_out, fan_in + 1, generator=gen) * (RAI_SIGMA / math.sqrt(fan_in))
        pick = torch.randint(0, fan_in + 1, (fan_out,), generator=gen)
        # Beta(2, 1) by inversion: its CDF is u^2, so sqrt(U) for U uniform.
        v[torch.arange(fan_out), pick] = torch.rand(fan_out, generator=gen).sqrt()
        return v[:, :fan_in], v[:, fan_in]
    std = math.sqrt(2.0 / fan_in)
    w = torch.randn(fan_out, fan_in, generator=gen) * std
    b = torch.randn(fan_out, generator=gen) * std if bias == "symmetric" else torch.zeros(fan_out)
    return w, b


def init_params(cell: Cell) -> list[tuple[torch.Tensor, torch.Tensor]]:
    """Per layer ``(W, b)`` with the nets innermost: W (out, in, S), b (out, S), float32."""
    layers = [[] for _ in range(cell.depth + 1)]
    for s in range(cell.seeds):
        gen = _seed_generator(cell.seed0 + s, cell)
        fan_in = 1
        for layer in range(cell.depth):
            layers[layer].append(_hidden_layer(gen, fan_in, cell.width, cell.bias))
            fan_in = cell.width
        w_out = torch.randn(1, fan_in, generator=gen) * math.sqrt(2.0 / fan_in)
        layers[-1].append((w_out, torch.zeros(1)))
    return [
        (torch.stack([w for w, _ in ls], -1).contiguous(), torch.stack([b for _, b in ls], -1))
        for ls in layers
    ]


def _linear(h: torch.Tensor, w: torch.Tensor, b: torch.Tensor) -> torch.Tensor:
    """``z[o, n, s] = b[o, s] + sum_i w[o, i, s] h[i, n, s]`` for a batch of tiny layers.

    The nets are the innermost (contiguous) dimension, so narrow layers are a few elementwise
    multiply-adds over (points x nets) arrays; measured on one core this is several times faster
    than ``torch.bmm`` over thousands of 2x2 .. 6x6 matrices. Wider ones use ``einsum`` (bmm).
    """
    fan_in = w.shape[1]
    if fan_in > 6:
        return torch.einsum("oib,inb->onb", w, h) + b.unsqueeze(1)
    z = b.unsqueeze(1) + w[:, 0].unsqueeze(1) * h[0]
    for i in range(1, fan_in):
        z = z + w[:, i].unsqueeze(1) * h[i]
    return z


def _pre_activations(params, x: torch.Tensor) -> list[torch.Tensor]:
    """Hidden pre-activations of the ReLU forward pass, each (width, N, S)."""
    h = x.T.unsqueeze(2).expand(1, x.shape[0], params[0][0].shape[-1])
    zs = []
    for w, b in params[:-1]:
        z = _linear(h, w, b)
        zs.append(z)
        h = torch.relu(z)
    return zs


def born_dead(params, x: torch.Tensor) -> torch.Tensor:
    """Bool (S,): some hidden layer is 0 in every unit for every input (ReLU forward)."""
    with torch.no_grad():
        dead = [(z <= 0).flatten(0, 1).all(0) for z in _pre_activations(params, x)]
    return torch.stack(dead).any(0)


class _Activations:
    """Each arm's activation over its slice of the nets (arms x seeds, arm-major, innermost)."""

    def __init__(self, arms, seeds: int, zs_init):
        self.seeds = seeds
        self.groups = []  # [start_arm, end_arm, kind]: runs of arms handled by one call
        helu_alphas = []  # per HeLU-family arm: alpha per layer and seed, (depth, S)
        for index, arm in enumerate(arms):
            kind, alpha = parse_arm(arm)
            kind = "helu" if arm == "relu" else kind
            if self.groups and self.groups[-1][2] == kind == "helu":
                self.groups[-1][1] = index + 1
            else:
                self.groups.append([index, index + 1, kind])
            if kind == "helu":
                if alpha is None:
                    sd = torch.stack([z.flatten(0, 1).std(0) for z in zs_init])  # (depth, S)
                    helu_alphas.append(SCALED_ALPHA * sd)
                else:
                    helu_alphas.append(torch.full((len(zs_init), seeds), alpha))
        self.alphas = {}  # group start -> per layer, alpha of each net in the group (1, 1, n)
        position = 0
        for start, end, kind in self.groups:
            if kind == "helu":
                block = torch.stack(helu_alphas[position : position + end - start])  # (A, D, S)
                position += end - start
                self.alphas[start] = [
                    block[:, layer].reshape(1, 1, -1).contiguous() for layer in range(len(zs_init))
                ]

    def __call__(self, z: torch.Tensor, layer: int) -> torch.Tensor:
        parts = []
        for start, end, kind in self.groups:
            part = z[..., start * self.seeds : end * self.seeds]
            if kind == "helu":
                parts.append(HeLUFunction.apply(part, self.alphas[start][layer]))
            elif kind == "leaky":
                parts.append(F.leaky_relu(part, LEAKY_SLOPE))
            else:
                parts.append(F.gelu(part))
        return parts[0] if len(parts) == 1 else torch.cat(parts, -1)


def _forward(params, act, x):
    h = x.T.unsqueeze(2).expand(1, x.shape[0], params[0][0].shape[-1])
    for layer, (w, b) in enumerate(params[:-1]):
        h = act(_linear(h, w, b), layer)
    w, b = params[-1]
    return _linear(h, w, b)[0]  # (N, B)


def run_cell(cell: Cell) -> dict:
    """Initialize, detect born-dead nets, train every arm on every seed; per-seed outcomes.

    Returns a JSON-able dict: the cell's fields, ``born_dead`` (S bools), and per arm
    ``nmse`` (final MSE / Var(target), S floats, None where diverged) and ``var_ratio``
    (Var(output) / Var(target)), plus ``seconds`` (wall) and ``cpu_seconds`` (this process).
    """
    torch.set_num_threads(1)
    start, cpu = time.monotonic(), time.process_time()
    x = inputs(cell.points)
    y = target(cell.target, x)  # (N, 1): broadcasts over the nets
    var_y = float(y.var(unbiased=False))
    init = init_params(cell)
    dead = born_dead(init, x)
    with torch.no_grad():
        zs_init = _pre_activations(init, x)
    arms, S = cell.arms, cell.seeds
    act = _Activations(arms, S, zs_init)
    # Every arm starts from the same init (paired): copies along the nets dimension, arm-major.
    params = [
        (w.repeat(1, 1, len(arms)).requires_grad_(), b.repeat(1, len(arms)).requires_grad_())
        for w, b in init
    ]
    flat = [t for pair in params for t in pair]
    lr = cell.learning_rate
    opt = torch.optim.Adam(flat, lr=lr) if cell.optimizer == "adam" else torch.optim.SGD(flat, lr)
    for _ in range(cell.steps):
        opt.zero_grad(set_to_none=True)
        loss = ((_forward(params, act, x) - y) ** 2).mean(0).sum()
        loss.backward()
        opt.step()
    with torch.no_grad():
        out = _forward(params, act, x)
        nmse = ((out - y) ** 2).mean(0) / var_y
        var_ratio = out.var(0, unbiased=False) / var_y
    nmse = nmse.view(len(arms), S).double().numpy()
    var_ratio = var_ratio.view(len(arms), S).double().numpy()
    bad = ~np.isfinite(nmse) | ~np.isfinite(var_ratio)
    record = asdict(cell) | {"key": cell.key, "lr": lr, "arms": list(arms)}
    record["born_dead"] = dead.tolist()
    record["results"] = {
        arm: {
            "nmse": [None if bad[i, s] else float(nmse[i, s]) for s in range(S)],
            "var_ratio": [None if bad[i, s] else float(var_ratio[i, s]) for s in range(S)],
        }
        for i, arm in enumerate(arms)
    }
    record["seconds"] = time.monotonic() - start
    record["cpu_seconds"] = time.process_time() - cpu
    return record


# ----------------------------------------------------------------------------------- statistics


def wilson(k: int, n: int, z: float = Z95) -> tuple[float, float]:
    """Wilson score interval for ``k`` successes in ``n`` trials (``(nan, nan)`` when n = 0)."""
    if n < 0 or k < 0 or k > n:
        raise ValueError(f"need 0 <= k <= n, not k={k}, n={n}")
    if n == 0:
        return (math.nan, math.nan)
    p = k / n
    denom = 1 + z * z / n
    centre = (p + z * z / (2 * n)) / denom
    half = z / denom * math.sqrt(p * (1 - p) / n + z * z / (4 * n * n))
    return (max(0.0, centre - half), min(1.0, centre + half))


def mcnemar(b: int, c: int) -> float:
    """Two-sided exact McNemar p-value for discordant pair counts ``b`` and ``c``.

    Under the null each discordant pair is equally likely either way: ``p = min(1, 2 P(X <=
    min(b, c)))`` with ``X ~ Binomial(b + c, 1/2)``, computed exactly with integers.
    """
    if b < 0 or c < 0:
        raise ValueError(f"discordant counts must be >= 0, not b={b}, c={c}")
    n = b + c
    if n == 0:
        return 1.0
    tail = sum(math.comb(n, i) for i in range(min(b, c) + 1))
    return min(1.0, 2 * tail / 2**n)


def median_ci(values, z: float = Z95) -> tuple[float, float, float]:
    """Median and a distribution-free ~95 % interval from order statistics.

    NaN (a diverged run) sorts above every number. The interval's ranks are
    ``n/2 -+ z sqrt(n)/2`` (the normal approximation to Binomial(n, 1/2)), clipped to the data.
    """
    v = np.sort(np.where(np.isnan(np.asarray(values, float)), np.inf, values))
    n = len(v)
    if n == 0:
        return (math.nan, math.nan, math.nan)
    lo = max(0, math.floor(n / 2 - z * math.sqrt(n) / 2) - 1)
    hi = min(n - 1, math.ceil(n / 2 + z * math.sqrt(n) / 2) - 1)
    return (float(np.median(v)), float(v[lo]), float(v[hi]))


def _rate(k: int, n: int) -> dict:
    lo, hi = wilson(k, n)
    return {"k": int(k), "n": int(n), "p": k / n if n else None, "lo": lo, "hi": hi}


def outcomes(record: dict, arm: str) -> dict[str, np.ndarray]:
    """Per-seed bool arrays of one arm: collapsed, good, diverged, recovered, and ``nmse``."""
    r = record["results"][arm]
    nmse = np.array([np.nan if v is None else v for v in r["nmse"]])
    var_ratio = np.array([np.nan if v is None else v for v in r["var_ratio"]])
    diverged = np.isnan(nmse)
    dead = np.array(record["born_dead"], bool)
    collapsed = ~diverged & (np.nan_to_num(var_ratio, nan=1.0) < COLLAPSE_VAR)
    good = ~diverged & (np.nan_to_num(nmse, nan=np.inf) < GOOD_NMSE)
    return {
        "collapsed": collapsed,
        "good": good,
        "diverged": diverged,
        "recovered": dead & ~collapsed & ~diverged,
        "nmse": nmse,
    }


def summarize_cell(record: dict, reference: str = "relu") -> dict:
    """Rates with Wilson intervals, median NMSE with its interval, McNemar against ``reference``."""
    dead = np.array(record["born_dead"], bool)
    n, n_dead = len(dead), int(dead.sum())
    summary = {"born_dead": _rate(n_dead, n), "arms": {}}
    ref = outcomes(record, reference) if reference in record["results"] else None
    for arm in record["arms"]:
        o = outcomes(record, arm)
        med, lo, hi = median_ci(o["nmse"])
        entry = {
            "collapsed": _rate(int(o["collapsed"].sum()), n),
            "good": _rate(int(o["good"].sum()), n),
            "diverged": int(o["diverged"].sum()),
            "recovered": _rate(int(o["recovered"].sum()), n_dead),
            "median_nmse": {"median": med, "lo": lo, "hi": hi},
        }
        if ref is not None and arm != reference:
            for what in ("collapsed", "good"):
                b = int((ref[what] & ~o[what]).sum())  # reference yes, arm no
                c = int((~ref[what] & o[what]).sum())  # reference no, arm yes
                entry[f"vs_{reference}_{what}"] = {
                    "ref_only": b,
                    "arm_only": c,
                    "diff": (c - b) / n,
                    "p": mcnemar(b, c),
                }
        summary["arms"][arm] = entry
    return summary


# ----------------------------------------------------------------------------------- the grid


def run_cells(cells, executor=None, done=None) -> list[dict]:
    """:func:`run_cell` for every cell, through ``executor`` (in this process when None).

    ``executor.map(fn, items)`` must yield ``(index, result)`` pairs (``helu.common.executor``);
    ``done(index, record)`` is called as each cell finishes (to save it, report progress).
    Returns the records in the order of ``cells``.
    """
    cells = list(cells)
    pairs = ((i, run_cell(c)) for i, c in enumerate(cells)) if executor is None else None
    records: list = [None] * len(cells)
    for index, record in pairs if pairs is not None else executor.map(run_cell, cells):
        records[index] = record
        if done is not None:
            done(index, record)
    return records


def dead_ray_bound(width: int, depth: int) -> tuple[float, float]:
    """Bounds on P(born dead) for zero biases and symmetric continuous weights, 1-D input.

    With zero biases the net is positively homogeneous, so it is born dead exactly when the
    paths of x = +1 and x = -1 are both dead at some hidden layer. Given a live, non-negative
    input vector, a layer of ``width`` units with symmetric weights kills it with probability
    ``2**-width``, independently of the layers before, and a dead path stays dead; so one path
    dies within ``depth`` layers with probability ``u = 1 - (1 - 2**-width)**depth``. Both
    paths die with probability between ``2u - 1`` (union bound) and ``u``. As depth grows both
    bounds tend to 1: Lu et al.'s result that deep ReLU nets die in probability.
    """
    u = 1 - (1 - 2.0**-width) ** depth
    return (max(0.0, 2 * u - 1), u)


# ------------------------------------------------------------------- the analysis: the verdicts

SIGNIFICANCE = 0.05
"""The per-cell significance level of the paired tests (McNemar, two-sided; not corrected for the
number of cells)."""

VERDICTS = ("helps", "null", "hurts")
"""How a HeLU arm compares with ReLU on one cell and one outcome (:func:`paired_verdict`)."""


def paired_verdict(test: dict, better: int) -> str:
    """``"helps"``, ``"null"`` or ``"hurts"``: a paired test against ReLU (``summarize_cell``'s
    ``vs_relu_*``: ``diff`` = arm - ReLU, ``p``) read as a verdict.

    ``better`` is +1 when more of the outcome is better (good fits), -1 when less is (collapses).
    The difference counts only when ``p < SIGNIFICANCE``; otherwise, or with no difference, the
    cell is null.
    """
    if better not in (1, -1):
        raise ValueError(f"better must be +1 or -1, not {better!r}")
    if test["p"] >= SIGNIFICANCE or test["diff"] == 0:
        return "null"
    return "helps" if test["diff"] * better > 0 else "hurts"


def verdicts(cells) -> dict:
    """Per HeLU arm and outcome (``good``, ``collapsed``): the keys of the cells where it helps,
    is null or hurts against ReLU (:func:`paired_verdict`). ``cells`` are summaries as
    :func:`analyse` lists them (each with ``key`` and ``arms``)."""
    out: dict = {}
    for c in cells:
        for arm, e in c["arms"].items():
            if not arm.startswith("helu"):
                continue
            for what, better in (("good", 1), ("collapsed", -1)):
                test = e.get(f"vs_relu_{what}")
                if test is None:
                    continue
                slot = out.setdefault(arm, {}).setdefault(what, {v: [] for v in VERDICTS})
                slot[paired_verdict(test, better)].append(c["key"])
    return out


def lu_check(cells) -> list[dict]:
    """The check against Lu et al.: per (width, depth, bias), ReLU's born-dead rate (Wilson
    interval) and, for zero biases, the bounds of :func:`dead_ray_bound` with ``within``: whether
    the interval meets them. The init does not depend on optimizer or target, so each
    (width, depth, bias) appears once (its first cell)."""
    rows = {}
    for c in cells:
        bd = c["born_dead"]
        row = {k: c[k] for k in ("width", "depth", "bias")} | {"born_dead": bd}
        if c["bias"] == "zero":
            lo, hi = dead_ray_bound(c["width"], c["depth"])
            row |= {"bound_lo": lo, "bound_hi": hi, "within": bd["lo"] <= hi and bd["hi"] >= lo}
        rows.setdefault((c["width"], c["depth"], c["bias"]), row)
    return list(rows.values())


def analyse(records) -> dict:
    """The study's analysis of ``run_cell`` records: every cell's summary, the definitions, the
    check against Lu et al. (:func:`lu_check`) and the verdict counts (:func:`verdicts`), as
    ``collapse.json`` holds them."""
    cells = []
    for r in records:
        cells.append(
            {k: r[k] for k in ("key", "width", "depth", "bias", "optimizer", "target", "seeds")}
            | {"steps": r["steps"], "lr": r["lr"], "arms": r["arms"], "seconds": r["seconds"]}
            | {"cpu_seconds": r.get("cpu_seconds")}
            | summarize_cell(r)
        )
    arms = list(dict.fromkeys(a for c in cells for a in c["arms"]))
    return {
        "definitions": {
            "born_dead": "at init, with the ReLU forward, some hidden layer is 0 in every unit "
            "for every training input",
            "collapsed": f"Var(output) < {COLLAPSE_VAR:g} Var(target) after training",
            "good_fit": f"final MSE < {GOOD_NMSE:g} Var(target) (R^2 > {1 - GOOD_NMSE:g})",
            "recovered": "born dead and not collapsed after training",
            "helu_scaled": f"alpha = {SCALED_ALPHA:g} x the layer's pre-activation std at init",
            "significance": f"McNemar exact, two-sided, p < {SIGNIFICANCE:g} per cell "
            "(not corrected for the number of cells)",
            "dtype": "float32",
        },
        "labels": {a: arm_label(a) for a in arms},
        "cells": cells,
        "lu_check": lu_check(cells),
        "verdicts": verdicts(cells),
        "seconds": sum(c["seconds"] for c in cells),
        "cpu_seconds": None
        if any(c["cpu_seconds"] is None for c in cells)
        else sum(c["cpu_seconds"] for c in cells),
    }
