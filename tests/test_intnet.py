"""The integer HeLU network in PyTorch: PTQ and the float nets it starts from (golden/intnet.py)."""

import numpy as np
import pytest
import torch

from helu.golden import data, fixed, intmodel, intnet
from helu.golden.models import ModelConfig, build


@pytest.fixture(scope="module")
def split():
    return data.load("digits")


@pytest.fixture(scope="module")
def pixels(split):
    return intnet.pixels(split)


@pytest.fixture(scope="module")
def trained(split, pixels):
    """A briefly trained float net and its PTQ (a few seconds)."""
    model = intnet.train_float(pixels[0], split.y_train, intnet.FloatConfig(epochs=8))
    layers = intnet.float_layers(model)
    return layers, intnet.ptq(layers, pixels[0], alpha=0.1)


def test_pixels_undo_the_standardisation(split, pixels):
    x_train, x_test = pixels
    assert x_train.dtype == np.int64 and x_train.shape == split.x_train.shape
    assert x_train.min() == 0 and x_train.max() == 16 and x_test.shape == split.x_test.shape
    np.testing.assert_allclose((x_test - split.mean) / split.std, split.x_test, atol=1e-5)


def test_pixels_wrong():
    with pytest.raises(ValueError, match="takes digits pixels, not 'wine'"):
        intnet.pixels(data.load("wine"))


def fake_quant_layer(w, b, x_codes, in_frac, w_frac, out_frac):
    """PyTorch float with fake quantization: dequantized codes through a float layer, then
    ``torch.fake_quantize_per_tensor_affine`` at the output scale; returns output codes."""
    x = torch.from_numpy(np.ldexp(x_codes.astype(np.float64), -in_frac)).float()
    wq = torch.fake_quantize_per_tensor_affine(
        torch.from_numpy(w).float(), 2.0**-w_frac, 0, -128, 127
    )
    bq = torch.round(torch.from_numpy(b) * 2.0 ** (w_frac + in_frac)) * 2.0 ** -(w_frac + in_frac)
    z = x @ wq.T + bq.float()
    zq = torch.fake_quantize_per_tensor_affine(z, 2.0**-out_frac, 0, -128, 127)
    return torch.round(zq * 2.0**out_frac).long().numpy()


def test_ptq_within_one_lsb_of_fake_quantized_float(trained, pixels):
    layers, q = trained
    x = pixels[1]
    for i, (w, b) in enumerate(layers):
        got = np.asarray(intmodel.layer(q.model, i, torch.from_numpy(x)))
        want = fake_quant_layer(w, b, x, q.in_fracs[i], q.w_fracs[i], q.out_fracs[i])
        diff = np.abs(got - want)
        assert diff.max() <= 1, f"layer {i}: {int(diff.max())} LSB off at {np.argmax(diff)}"
        x = fixed.forward(got) if i < len(layers) - 1 else got


def test_fake_quant_check_sees_a_wrong_shift(trained, pixels):
    layers, q = trained
    w, b = layers[0]
    wrong = intmodel.IntModel(
        q.model.weights,
        q.model.biases,
        [q.model.shifts[0] + 1] + q.model.shifts[1:],
        0,
        intmodel.PIXELS,
    )
    got = intmodel.layer(wrong, 0, pixels[1])
    want = fake_quant_layer(w, b, pixels[1], q.in_fracs[0], q.w_fracs[0], q.out_fracs[0])
    assert np.abs(got - want).max() > 1


def test_ptq_scales_and_threshold(trained):
    layers, q = trained
    m = q.model
    assert m.sizes == [64, 32, 32, 10] and q.in_fracs[0] == intnet.INPUT_FRAC
    for i in range(3):
        assert m.shifts[i] == q.w_fracs[i] + q.in_fracs[i] - q.out_fracs[i]
        assert q.in_fracs[i] == (q.out_fracs[i - 1] if i else intnet.INPUT_FRAC)
        # the finest weight scale that saturates nothing
        assert np.abs(layers[i][0]).max() * 2.0 ** (q.w_fracs[i] + 1) > 127
    assert m.threshold == fixed.threshold(0.1, fixed.Format(8, q.out_fracs[0]))
    assert all(e < 0.5 for e in q.errors), q.errors


@pytest.mark.slow
def test_ptq_accuracy_within_one_point_of_float(split, pixels):
    x_train, x_test = pixels
    layers = intnet.float_layers(intnet.train_float(x_train, split.y_train))
    q = intnet.ptq(layers, x_train)
    float_acc = intnet.float_accuracy(layers, x_test, split.y_test)
    int_acc = intnet.accuracy(q.model, x_test, split.y_test)
    assert float_acc > 0.95
    assert abs(float_acc - int_acc) <= 0.01, (float_acc, int_acc)


def test_float_layers_fold_the_standardisation(split, pixels):
    torch.manual_seed(0)
    model = build(ModelConfig(hidden=(32, 32), act="helu")).eval()
    with torch.no_grad():
        want = model(torch.from_numpy(split.x_test)).double().numpy()
    layers = intnet.float_layers(model, split.mean, split.std)
    x = np.ldexp(pixels[1].astype(np.float64), -intnet.INPUT_FRAC)
    for i, (w, b) in enumerate(layers):
        x = x @ w.T + b
        x = np.maximum(x, 0) if i < 2 else x
    np.testing.assert_allclose(x, want, atol=1e-4)


def test_float_layers_wrong():
    cnn = build(ModelConfig(kind="cnn", act="helu"))
    with pytest.raises(ValueError, match="needs an MLP; this model has no 'fc1' layer"):
        intnet.float_layers(cnn)


# --- the integer training step -----------------------------------------------------------------


def tiny_net(runs=1, threshold=-2, seed=0):
    """A 5-4-3-3 network with random masters and biases (small enough for a by-hand reference)."""
    rng = np.random.default_rng(seed)
    sizes = (5, 4, 3, 3)
    masters = [
        rng.integers(-6000, 6000, (runs, o, i)) for i, o in zip(sizes, sizes[1:], strict=False)
    ]
    biases = [rng.integers(-300, 300, (runs, o)) for o in sizes[1:]]
    scales = intnet.Scales.chain(4, (6, 6, 6), (4, 4, 5), delta_gain=2, lr_shift=5)
    return intnet.IntNet(masters, biases, scales, threshold)


def rnd(v, s):
    """Reference rounding: value * 2**-s to the nearest integer, half up (plain Python ints)."""
    return (v + (1 << (s - 1))) >> s if s > 0 else v << -s


def sat(v, bits):
    return max(-(1 << (bits - 1)), min((1 << (bits - 1)) - 1, v))


def reference_step(masters, biases, sc, t, x, label):
    """The training step in plain Python integers, written from the issue's description."""
    shadow = [[[sat(rnd(v, 8), 8) for v in row] for row in m] for m in masters]
    acts, qs = [list(x)], []
    for i, (w, b) in enumerate(zip(shadow, biases, strict=True)):
        accs = [
            b[o] + sum(wv * a for wv, a in zip(w[o], acts[-1], strict=True)) for o in range(len(w))
        ]
        q = [sat(rnd(acc, sc.forward_shifts[i]), 8) for acc in accs]
        qs.append(q)
        acts.append([max(v, 0) for v in q])
    e = [sat(v - 32 * (k == label), 8) for k, v in enumerate(qs[-1])]
    deltas = [e]
    for i in range(len(shadow) - 1, 0, -1):
        w, d = shadow[i], deltas[0]
        g = [sat(rnd(sum(w[o][j] * d[o] for o in range(len(d))), sc.delta_shifts[i - 1]), 8)
             for j in range(len(w[0]))]  # fmt: skip
        deltas.insert(0, [gv if q > t else 0 for gv, q in zip(g, qs[i - 1], strict=True)])
    new_m = [[[sat(m[o][j] - rnd(deltas[i][o] * acts[i][j], sc.grad_shifts[i]), 16)
               for j in range(len(m[0]))] for o in range(len(m))]
             for i, m in enumerate(masters)]  # fmt: skip
    new_b = [[sat(b[o] - rnd(deltas[i][o], sc.bias_shifts[i]), 32) for o in range(len(b))]
             for i, b in enumerate(biases)]  # fmt: skip
    return qs, deltas, new_m, new_b


def test_step_matches_a_plain_integer_reference():
    rng = np.random.default_rng(1)
    net = tiny_net(threshold=-2)
    for _ in range(20):
        x, label = rng.integers(0, 17, 5), int(rng.integers(0, 3))
        m0 = [m[0].tolist() for m in net.masters]
        b0 = [b[0].tolist() for b in net.biases]
        rec = net.step(torch.from_numpy(x)[None], torch.tensor([label]))
        qs, deltas, new_m, new_b = reference_step(m0, b0, net.scales, -2, x.tolist(), label)
        assert [q[0].tolist() for q in rec["q"]] == qs
        assert [d[0].tolist() for d in rec["delta"]] == deltas
        assert [m[0].tolist() for m in net.masters] == new_m
        assert [b[0].tolist() for b in net.biases] == new_b


def test_step_invariants():
    net = tiny_net(runs=3, threshold=-3)
    before = [m.clone() for m in net.masters]
    x = torch.tensor([[16, 0, 7, 3, 9], [1, 2, 3, 4, 5], [0, 0, 0, 0, 16]])
    rec = net.step(x, torch.tensor([0, 1, 2]))
    for g, d, m, q in zip(rec["g"], rec["delta"][:-1], rec["mask"], rec["q"][:-1], strict=True):
        assert torch.equal(m, q > -3)
        assert not d[~m].any(), "a masked delta is not zero"
        assert torch.equal(d[m], g[m])
    for i, (old, new, grad) in enumerate(zip(before, net.masters, rec["grad"], strict=True)):
        assert torch.equal(
            grad,
            rec["delta"][i][:, :, None]
            * ([x] + [fixed.forward(q) for q in rec["q"]])[i][:, None, :],
        )
        assert torch.equal(old - new, fixed.scale_shift(grad, net.scales.grad_shifts[i]))


def test_reference_sees_a_wrong_step():
    net = tiny_net()
    m0 = [m[0].tolist() for m in net.masters]
    b0 = [b[0].tolist() for b in net.biases]
    net.scales.lr_shift += 1  # a different learning rate: the masters must differ
    net.step(torch.tensor([[16, 3, 0, 9, 9]]), torch.tensor([1]))
    net.scales.lr_shift -= 1
    _, _, new_m, _ = reference_step(m0, b0, net.scales, -2, [16, 3, 0, 9, 9], 1)
    assert [m[0].tolist() for m in net.masters] != new_m


def test_runs_side_by_side_equal_runs_alone():
    together = tiny_net(runs=2, threshold=torch.tensor([-1, -4]))
    x = torch.from_numpy(np.random.default_rng(2).integers(0, 17, (6, 2, 5)))
    y = torch.from_numpy(np.random.default_rng(3).integers(0, 3, (6, 2)))
    alone = []
    for r, t in enumerate((-1, -4)):
        net = tiny_net(runs=2, threshold=t)
        net.masters = [m[r : r + 1].clone() for m in net.masters]
        net.biases = [b[r : r + 1].clone() for b in net.biases]
        net.thresholds = net.thresholds[r : r + 1]
        alone.append(net)
    for k in range(6):
        together.step(x[k], y[k])
        for r, net in enumerate(alone):
            net.step(x[k, r : r + 1], y[k, r : r + 1])
    for r, net in enumerate(alone):
        for a, b in zip(together.masters, net.masters, strict=True):
            assert torch.equal(a[r], b[0])


def test_from_model_keeps_the_ptq_weights(trained, pixels, split):
    _, q = trained
    net = intnet.IntNet.from_model(q.model, intnet.ptq_scales(q), runs=2)
    for w, s in zip(q.model.weights, net.shadows(), strict=True):
        assert torch.equal(s[1], torch.from_numpy(w))
    ev = net.evaluate(pixels[1], split.y_test)
    assert float(ev["acc"][0]) == intnet.accuracy(q.model, pixels[1], split.y_test)
    assert net.model(1).shifts == q.model.shifts


def test_scales_wrong():
    with pytest.raises(ValueError, match="the last delta .* has the logits' scale"):
        intnet.Scales([4, 4], [6, 6], [4, 5], [6, 6])
    with pytest.raises(ValueError, match="a forward shift is negative"):
        intnet.Scales.chain(4, (6, 6), (12, 5))
    with pytest.raises(ValueError, match="master weights outside int16"):
        intnet.IntNet(
            [np.full((1, 2, 2), 40000)], [np.zeros((1, 2))], intnet.Scales.chain(4, (6,), (5,)), 0
        )


def restated_rules(source: str) -> list[str]:
    """Lines of ``source`` that do integer arithmetic ``golden.fixed`` owns: shifts, clamps."""
    import ast

    found = []
    for node in ast.walk(ast.parse(source)):
        if isinstance(node, ast.BinOp) and isinstance(node.op, (ast.RShift, ast.LShift)):
            found.append(f"line {node.lineno}: shift")
        if isinstance(node, ast.Call) and getattr(node.func, "attr", None) in ("clip", "clamp"):
            found.append(f"line {node.lineno}: {node.func.attr}")
    return found


def _half(node) -> bool:
    """``1 << (s - 1)`` or ``2 ** (s - 1)``: half an LSB after a shift by ``s``."""
    import ast

    return (
        isinstance(node, ast.BinOp)
        and isinstance(node.op, (ast.LShift, ast.Pow))
        and isinstance(node.left, ast.Constant)
        and node.left.value == (1 if isinstance(node.op, ast.LShift) else 2)
        and isinstance(node.right, ast.BinOp)
        and isinstance(node.right.op, ast.Sub)
        and isinstance(node.right.right, ast.Constant)
        and node.right.right.value == 1
    )


def restated_rounding(source: str) -> list[str]:
    """Lines of ``source`` that restate a rule any module may need but only ``golden.fixed``
    states: the rounding constant ``2**(s-1)`` added before a shift (``shift_round``), a clamp to
    a format's codes (``saturate``)."""
    import ast

    found = []
    for node in ast.walk(ast.parse(source)):
        if isinstance(node, ast.BinOp) and isinstance(node.op, ast.Add):
            if _half(node.left) or _half(node.right):
                found.append(f"line {node.lineno}: rounding")
        if isinstance(node, ast.Call) and getattr(node.func, "attr", None) in ("clip", "clamp"):
            bounds = ast.unparse(ast.Tuple(node.args[-2:] + [k.value for k in node.keywords]))
            if ("min_code" in bounds and "max_code" in bounds) or "<<" in bounds:
                found.append(f"line {node.lineno}: saturation")
    return sorted(found, key=lambda line: int(line.split()[1].rstrip(":")))


def _package_sources():
    """Every Python module of the package (``golden``, ``hw``, ``sim``, ``helu``, ``common``) but
    ``golden/fixed.py``, the one place the rules are written."""
    from pathlib import Path

    import helu

    root = Path(helu.__file__).resolve().parent.parent
    folders = ("golden", "hw", "sim", "helu", "common")
    paths = sorted(p for folder in folders for p in (root / folder).rglob("*.py"))
    assert len(paths) > 50, paths  # the tree was found
    return [(p.relative_to(root), p.read_text()) for p in paths if p != root / "golden/fixed.py"]


def test_integer_rules_stated_once():
    """The integer network's modules compose golden.fixed's rules and restate none (no shift, no
    clamp of their own); and no module anywhere in the tree restates the rounding or the
    saturation rule (the baselines, the engines, the benches included)."""
    import inspect

    from helu.golden import intgolden, intstudy
    from helu.steps import intnet as intflow

    for module in (intnet, intmodel, intgolden, intstudy, intflow):
        assert restated_rules(inspect.getsource(module)) == [], module.__name__
    copies = [f"{path}: {line}" for path, text in _package_sources()
              for line in restated_rounding(text)]  # fmt: skip
    assert copies == [], copies


def test_restated_rules_sees_a_shift_and_a_clamp():
    source = "y = (x + 4) >> 3\nz = torch.clamp(y, -128, 127)\nw = m << 8\n"
    assert restated_rules(source) == ["line 1: shift", "line 2: clamp", "line 3: shift"]


def test_restated_rounding_sees_the_rounding_and_saturation_rules():
    source = (
        "y = (-q * c.mult + (1 << (c.shift - 1))) >> c.shift\n"
        "y = np.clip(y, fmt.min_code, fmt.max_code)\n"
        "acc.eq(prod * Const(m) + 2 ** (s - 1))\n"
        "v = x.clip(-(1 << (w - 1)), (1 << (w - 1)) - 1)\n"
        "top = (1 << (w - 1)) - 1\n"  # a format's largest code: no rule restated
        "z = np.clip(q, 0, 255) + (1 << w)\n"
        "u = fixed.shift_round(x, s) + fixed.round_bias(s)\n"
    )
    assert restated_rounding(source) == [
        "line 1: rounding", "line 2: saturation", "line 3: rounding", "line 4: saturation"
    ]  # fmt: skip
    fixed_py = [text for path, text in _package_sources() if path.name == "fixed.py"]
    assert fixed_py == []  # golden/fixed.py is the rule's one place, not scanned
