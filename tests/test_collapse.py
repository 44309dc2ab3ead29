"""golden/collapse.py: statistics against known values, born-dead detection, pairing, batching,
and the analysis (verdicts against ReLU, the check against Lu et al.)."""

import math

import numpy as np
import pytest
import torch

from helu.golden.collapse import (
    SIGNIFICANCE,
    Cell,
    born_dead,
    dead_ray_bound,
    init_params,
    inputs,
    lu_check,
    mcnemar,
    median_ci,
    outcomes,
    paired_verdict,
    parse_arm,
    run_cell,
    summarize_cell,
    verdicts,
    wilson,
)

# ------------------------------------------------------------------------------- statistics


@pytest.mark.parametrize(
    "k, n, lo, hi",
    [
        # Newcombe (1998), "Two-sided confidence intervals for the single proportion", table I,
        # method 3 (Wilson score, no continuity correction).
        (81, 263, 0.2553, 0.3662),
        (15, 148, 0.0624, 0.1605),
        (0, 20, 0.0, 0.1611),
        (1, 29, 0.0061, 0.1718),
        # By hand: 0/10 -> upper z^2/(n+z^2); 5/10 -> 0.5 -+ 1.96/(1+z^2/n) sqrt(.025+z^2/400).
        (0, 10, 0.0, 3.8415 / 13.8415),
        (5, 10, 0.2366, 0.7634),
    ],
)
def test_wilson_known_values(k, n, lo, hi):
    got = wilson(k, n)
    assert got == pytest.approx((lo, hi), abs=5e-5), (k, n, got)


def test_wilson_is_not_the_wald_interval():
    # Wald gives 0 +- 0 at k = 0; a checker that fell back to it would fail here.
    assert wilson(0, 50)[1] > 0.05


def test_wilson_wrong():
    with pytest.raises(ValueError, match="0 <= k <= n"):
        wilson(11, 10)
    assert all(math.isnan(v) for v in wilson(0, 0))


def test_mcnemar_exact_values():
    assert mcnemar(1, 9) == pytest.approx(2 * (1 + 10) / 2**10)  # 0.0215
    assert mcnemar(0, 5) == pytest.approx(2 / 2**5)  # 0.0625: 5 of 5 is not enough
    assert mcnemar(0, 6) == pytest.approx(2 / 2**6)  # 0.03125
    assert mcnemar(9, 1) == mcnemar(1, 9)
    assert mcnemar(0, 0) == 1.0
    assert mcnemar(4, 5) == 1.0  # a balanced split is never significant
    assert mcnemar(10, 30) < 0.01


def test_mcnemar_wrong():
    with pytest.raises(ValueError, match="discordant counts"):
        mcnemar(-1, 3)


def test_median_ci_orders_diverged_runs_last():
    med, lo, hi = median_ci([3.0, 1.0, 2.0, float("nan"), 5.0, 4.0, 6.0, 7.0, 8.0])
    assert med == 5.0
    assert lo <= med <= hi
    values = np.arange(200, dtype=float)
    med, lo, hi = median_ci(values)
    # ranks 100 -+ 1.96 sqrt(200)/2 = 86.1 .. 113.9 -> the 86th and 114th values
    assert (med, lo, hi) == (99.5, 85.0, 113.0)


# ----------------------------------------------------------------------------------- nets


def _hand_net(dead: bool):
    """A 1 -> 2 -> 2 -> 2 -> 1 net, one seed; layer 2 dead on every input when ``dead``."""
    w1 = torch.tensor([[1.0], [-1.0]])  # |x| split into its two halves
    w2 = torch.tensor([[-1.0, -1.0], [-2.0, -0.5]]) if dead else torch.eye(2)
    w3 = torch.eye(2)
    b2 = torch.full((2,), -0.1) if dead else torch.zeros(2)
    layers = [
        (w1, torch.zeros(2)),
        (w2, b2),
        (w3, torch.zeros(2)),
        (torch.ones(1, 2), torch.zeros(1)),
    ]
    return [(w.unsqueeze(-1), b.unsqueeze(-1)) for w, b in layers]


def test_born_dead_on_constructed_nets():
    x = inputs(100)
    assert born_dead(_hand_net(dead=True), x).tolist() == [True]
    assert born_dead(_hand_net(dead=False), x).tolist() == [False]


def test_born_dead_zero_bias_is_decided_by_the_two_rays():
    # Zero-bias nets are positively homogeneous: dead on [-1.5, 1.5] iff dead at x = -1 and +1.
    params = init_params(Cell(width=2, depth=6, bias="zero", seeds=300))
    on_grid = born_dead(params, inputs(100))
    on_rays = born_dead(params, torch.tensor([[-1.0], [1.0]]))
    assert torch.equal(on_grid, on_rays)
    assert 0 < int(on_grid.sum()) < 300


def test_born_dead_matches_the_ray_bounds_and_rai_lowers_it():
    for width, depth in ((2, 5), (3, 10)):
        n = 400
        dead = born_dead(init_params(Cell(width, depth, bias="zero", seeds=n)), inputs(100))
        lo, hi = wilson(int(dead.sum()), n)
        bound_lo, bound_hi = dead_ray_bound(width, depth)
        assert lo <= bound_hi and hi >= bound_lo, (width, depth, lo, hi, bound_lo, bound_hi)
    # Lu et al.: the randomized asymmetric initialization is born dead less often.
    sym = born_dead(init_params(Cell(2, 10, bias="symmetric", seeds=400)), inputs(100))
    rai = born_dead(init_params(Cell(2, 10, bias="rai", seeds=400)), inputs(100))
    assert int(rai.sum()) < int(sym.sum()) / 2, (int(rai.sum()), int(sym.sum()))


def test_rai_draws_one_positive_parameter_per_unit():
    (w, b), *_ = init_params(Cell(width=3, depth=2, bias="rai", seeds=50))
    first = torch.cat([w[:, 0, :], b], 0)  # fan_in 1: (weight, bias) per unit, seeds last
    # Each unit has one Beta(2,1) draw in (0, 1); the other parameter is N(0, 0.6007^2).
    assert ((first > 0) & (first < 1)).any(0).all()


def test_init_is_shared_and_prefix_stable():
    a = init_params(Cell(3, 4, bias="symmetric", seeds=5))
    b = init_params(Cell(3, 4, bias="symmetric", seeds=3, optimizer="sgd", target="sin"))
    for (wa, ba), (wb, bb) in zip(a, b, strict=True):
        assert torch.equal(wa[..., :3], wb) and torch.equal(ba[..., :3], bb)
    c = init_params(Cell(3, 4, bias="zero", seeds=3))
    assert not torch.equal(a[1][0][..., :3], c[1][0])  # another bias scheme, other draws


def test_every_arm_starts_from_the_same_init():
    arms = ("relu", "helu:0.01", "helu:0.5", "helu:scaled", "leaky", "gelu")
    record = run_cell(Cell(2, 5, bias="symmetric", seeds=40, steps=0, arms=arms))
    relu = record["results"]["relu"]["nmse"]
    for arm in ("helu:0.01", "helu:0.5", "helu:scaled"):  # HeLU's forward is ReLU's
        assert record["results"][arm]["nmse"] == relu, arm
    assert record["results"]["gelu"]["nmse"] != relu


@pytest.mark.slow
def test_batched_training_equals_one_net_at_a_time():
    arms = ("relu", "helu:0.5", "helu:scaled", "gelu")
    batched = run_cell(Cell(2, 4, bias="symmetric", seeds=4, steps=60, arms=arms))
    for s in range(4):
        alone = run_cell(Cell(2, 4, bias="symmetric", seeds=1, seed0=s, steps=60, arms=arms))
        for arm in arms:
            got = batched["results"][arm]["nmse"][s]
            want = alone["results"][arm]["nmse"][0]
            assert got == pytest.approx(want, rel=1e-4, abs=1e-6), (arm, s, got, want)


@pytest.mark.slow
def test_born_dead_relu_never_recovers_and_is_collapsed():
    record = run_cell(Cell(2, 8, bias="symmetric", seeds=60, steps=150, arms=("relu", "gelu")))
    relu = outcomes(record, "relu")
    dead = np.array(record["born_dead"])
    assert dead.sum() > 10
    assert not relu["recovered"].any()
    assert relu["collapsed"][dead].all()


# -------------------------------------------------------------------------------- outcomes


def _record():
    return {
        "arms": ["relu", "helu:0.5"],
        "born_dead": [True, False, True, False, True],
        "results": {
            "relu": {"nmse": [1.0, 0.01, None, 0.5, 1.0], "var_ratio": [0.0, 0.9, None, 0.4, 0]},
            "helu:0.5": {
                "nmse": [0.02, 0.01, 1.0, 0.9, 1.0],
                "var_ratio": [0.95, 0.9, 2e-4, 0.3, 0.0],
            },
        },
    }


def test_outcomes_from_a_hand_made_record():
    relu = outcomes(_record(), "relu")
    assert relu["collapsed"].tolist() == [True, False, False, False, True]
    assert relu["good"].tolist() == [False, True, False, False, False]
    assert relu["diverged"].tolist() == [False, False, True, False, False]
    assert relu["recovered"].tolist() == [False, False, False, False, False]
    helu = outcomes(_record(), "helu:0.5")
    assert helu["collapsed"].tolist() == [False, False, True, False, True]
    assert helu["good"].tolist() == [True, True, False, False, False]
    assert helu["recovered"].tolist() == [True, False, False, False, False]


def test_summarize_cell_pairs_against_relu():
    s = summarize_cell(_record())
    assert (s["born_dead"]["k"], s["born_dead"]["n"]) == (3, 5)
    h = s["arms"]["helu:0.5"]
    assert (h["recovered"]["k"], h["recovered"]["n"]) == (1, 3)
    assert h["vs_relu_good"] == {"ref_only": 0, "arm_only": 1, "diff": 0.2, "p": 1.0}
    # collapsed: ReLU-only seed 0, HeLU-only seed 2
    assert (h["vs_relu_collapsed"]["ref_only"], h["vs_relu_collapsed"]["arm_only"]) == (1, 1)
    assert "vs_relu_good" not in s["arms"]["relu"]


# -------------------------------------------------------------------------------- verdicts


@pytest.mark.parametrize(
    "diff, p, better, verdict",
    [
        (0.2, 0.01, 1, "helps"),  # significantly more good fits
        (-0.2, 0.01, 1, "hurts"),
        (0.2, 0.01, -1, "hurts"),  # significantly more collapses
        (-0.2, 0.01, -1, "helps"),
        (0.2, SIGNIFICANCE, 1, "null"),  # p = 0.05 is not below the level
        (0.0, 0.001, 1, "null"),
    ],
)
def test_paired_verdict(diff, p, better, verdict):
    assert paired_verdict({"diff": diff, "p": p}, better) == verdict


def test_paired_verdict_wrong():
    with pytest.raises(ValueError, match="better must be"):
        paired_verdict({"diff": 0.2, "p": 0.01}, 0)


def _summary_cell(key, good, collapsed, **extra):
    arms = {
        "relu": {},
        "helu:0.5": {"vs_relu_good": good, "vs_relu_collapsed": collapsed},
        "leaky": {"vs_relu_good": {"diff": 0.5, "p": 1e-6}},  # not a HeLU arm: no verdict
    }
    return {"key": key, "arms": arms, **extra}


def test_verdicts_sort_cells_by_outcome():
    cells = [
        _summary_cell("a", {"diff": 0.3, "p": 0.001}, {"diff": -0.3, "p": 0.001}),
        _summary_cell("b", {"diff": 0.3, "p": 0.2}, {"diff": 0.3, "p": 0.001}),
    ]
    got = verdicts(cells)
    assert list(got) == ["helu:0.5"], "only HeLU arms get a verdict"
    assert got["helu:0.5"]["good"] == {"helps": ["a"], "null": ["b"], "hurts": []}
    assert got["helu:0.5"]["collapsed"] == {"helps": ["a"], "null": [], "hurts": ["b"]}


def _lu_cell(bias, lo, hi, optimizer="adam"):
    born = {"p": (lo + hi) / 2, "lo": lo, "hi": hi, "k": 1, "n": 2}
    return {"width": 2, "depth": 5, "bias": bias, "born_dead": born, "optimizer": optimizer}


def test_lu_check_meets_and_misses_the_bounds():
    lo, hi = dead_ray_bound(2, 5)
    rows = lu_check(
        [
            _lu_cell("zero", lo - 0.01, hi + 0.01),
            _lu_cell("zero", 0.0, 0.01, optimizer="sgd"),  # the same init again: not a new row
            _lu_cell("symmetric", 0.0, 0.01),
        ]
    )
    assert [r["bias"] for r in rows] == ["zero", "symmetric"]
    assert rows[0]["within"] and (rows[0]["bound_lo"], rows[0]["bound_hi"]) == (lo, hi)
    assert "within" not in rows[1], "the bounds hold for zero biases only"
    # A born-dead rate far below the bounds (a wrong detector) is flagged, not passed.
    (miss,) = lu_check([_lu_cell("zero", 0.0, lo / 2)])
    assert miss["within"] is False


# ---------------------------------------------------------------------------------- wrong


def test_parse_arm():
    assert parse_arm("helu:0.1") == ("helu", 0.1)
    assert parse_arm("helu:scaled") == ("helu", None)
    assert parse_arm("relu") == ("relu", 0.0)


@pytest.mark.parametrize("arm", ["tanh", "helu:-1", "helu:", "helu:x"])
def test_parse_arm_wrong(arm):
    with pytest.raises(ValueError, match="unknown arm"):
        parse_arm(arm)


@pytest.mark.parametrize(
    "kwargs, message",
    [
        ({"width": 0}, "width must be an integer >= 1, not 0"),
        ({"bias": "he"}, "unknown bias 'he'"),
        ({"optimizer": "rmsprop"}, "unknown optimizer 'rmsprop'"),
        ({"lr": -1.0}, "learning rate must be a positive number"),
        ({"arms": ("relu", "relu")}, "arms must be distinct"),
    ],
)
def test_cell_wrong(kwargs, message):
    with pytest.raises(ValueError, match=message):
        Cell(**({"width": 2, "depth": 3} | kwargs))
