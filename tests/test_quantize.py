"""Your own model in (golden/quantize.py, golden/examples.py, `helu quantize`): import, folding,
PTQ accuracy, and every refusal in one line with nothing written."""

import json
import re

import numpy as np
import pytest

torch = pytest.importorskip("torch")
from torch import nn  # noqa: E402

from helu.cli import main  # noqa: E402
from helu.golden import examples, intgolden, intmodel, quantize  # noqa: E402
from helu.golden.activations import HeLU  # noqa: E402


@pytest.fixture(scope="module")
def digits():
    return quantize.load_data("digits")


@pytest.fixture(scope="module")
def cnn(digits):
    ex = examples.EXAMPLES["digits-cnn"]
    return examples.train(examples.build("digits-cnn"), digits, ex.epochs, ex.lr)


def test_digits_cnn_reaches_96_percent_after_ptq(cnn, digits):
    r = quantize.quantize(cnn, digits)
    assert [type(op).__name__ for op in r.model.ops] == ["Conv2d", "Conv2d", "Dense"]
    assert r.model.ops[1].out_shape == (4, 4, 16) and r.model.sizes == [64, 512, 256, 10]
    assert r.integer_accuracy >= 0.96, r.describe()["accuracy"]
    assert r.imported.max_error < 1e-4
    # The codes of the data: pixels / 16 exactly in the chosen format (no rounding, no clamp).
    assert r.clamped == 0 and r.model.input.lo == 0
    np.testing.assert_array_equal(
        r.x_test, np.ldexp(digits.x_test.transpose(0, 2, 3, 1).reshape(360, 64), 6)
    )


@pytest.mark.parametrize("name", ["wine-mlp", "cancer-mlp"])
def test_tabular_user_models(name):
    ex = examples.EXAMPLES[name]
    data = quantize.load_data(ex.dataset)
    model = examples.train(examples.build(name), data, ex.epochs, ex.lr)
    r = quantize.quantize(model, data)
    assert r.model.input.signed  # standardised features
    assert r.integer_accuracy >= r.float_accuracy - 0.03, r.describe()["accuracy"]
    if name == "wine-mlp":
        assert r.model.sizes == [13, 16, 8, 3] and r.imported.layers[0].folded == ["1"]
        assert r.model.threshold < 0  # HeLU alpha 0.05
    else:
        assert r.model.sizes == [30, 16, 2] and r.model.threshold == 0  # ReLU


def test_batchnorm_folding_is_exact_in_float():
    torch.manual_seed(0)
    model = nn.Sequential(nn.Conv2d(2, 3, 3, padding=1), nn.BatchNorm2d(3), nn.ReLU(),
                          nn.Flatten(), nn.Linear(3 * 5 * 5, 4))  # fmt: skip
    bn = model[1]
    bn.running_mean.uniform_(-1, 1)
    bn.running_var.uniform_(0.5, 2)
    bn.weight.data.uniform_(0.5, 1.5)
    bn.bias.data.uniform_(-1, 1)
    x = torch.randn(16, 2, 5, 5).numpy()
    imported = quantize.import_model(model, x)
    assert imported.layers[0].folded == ["1"] and imported.max_error < 1e-5
    with torch.no_grad():
        want = model.eval()(torch.from_numpy(x)).numpy()
    np.testing.assert_allclose(imported.forward(imported.to_codes_layout(x)), want, atol=1e-5)


def test_import_check_sees_a_wrong_fold():
    # A fold that forgets the shift (beta) gives other logits: the check must notice.
    model = nn.Sequential(nn.Linear(4, 3), nn.BatchNorm1d(3), nn.ReLU(), nn.Linear(3, 2))
    model[1].bias.data.fill_(2.0)
    x = np.random.default_rng(0).normal(size=(8, 4)).astype(np.float32)
    imported = quantize.import_model(model, x)
    imported.layers[0].b -= 2.0
    with torch.no_grad():
        want = model(torch.from_numpy(x)).numpy()
    assert np.abs(imported.forward(x) - want).max() > 0.1


class _Skip(nn.Module):
    def __init__(self):
        super().__init__()
        self.a, self.act, self.b = nn.Linear(4, 4), nn.ReLU(), nn.Linear(4, 2)

    def forward(self, x):
        return self.b(self.act(self.a(x)) + x)


@pytest.mark.parametrize(
    "model, shape, message",
    [
        (
            lambda: nn.Sequential(
                nn.Conv2d(1, 4, 3), nn.ReLU(), nn.MaxPool2d(2), nn.Flatten(), nn.Linear(36, 2)
            ),  # fmt: skip
            (1, 8, 8),
            r"^2: nn\.MaxPool2d is not supported; use a stride-2 convolution$",
        ),
        (
            lambda: nn.Sequential(nn.Linear(4, 4), nn.GELU(), nn.Linear(4, 2)),
            (4,),
            r"^1: nn\.GELU is not supported; use nn\.ReLU or HeLU",
        ),
        (
            lambda: nn.Sequential(nn.Linear(4, 4), nn.Linear(4, 2)),
            (4,),
            "^1: two layers with no activation between them$",
        ),
        (
            lambda: nn.Sequential(nn.Linear(4, 2), nn.ReLU()),
            (4,),
            "^0: the last layer has an activation after it",
        ),
        (
            lambda: nn.Sequential(
                nn.Linear(4, 4), HeLU(0.1), nn.Linear(4, 4), HeLU(0.2), nn.Linear(4, 2)
            ),  # fmt: skip
            (4,),
            "mix activations",
        ),
        (
            lambda: nn.Sequential(nn.Linear(4, 4), nn.ReLU(), nn.BatchNorm1d(4), nn.Linear(4, 2)),
            (4,),
            "^2: a BatchNorm is folded only right after",
        ),
        (
            lambda: nn.Sequential(
                nn.Conv2d(1, 2, 3, dilation=2), nn.ReLU(), nn.Flatten(), nn.Linear(32, 2)
            ),  # fmt: skip
            (1, 8, 8),
            "^0: grouped or dilated nn.Conv2d is not supported",
        ),
        (
            lambda: nn.Sequential(nn.Conv2d(1, 2, 3), nn.ReLU(), nn.Linear(6, 2)),
            (1, 8, 8),
            "^2: an nn.Linear after a convolution needs nn.Flatten$",
        ),
        (lambda: nn.Sequential(nn.Linear(5, 2)), (4,), "^0: nn.Linear takes 5 features"),
        (_Skip, (4,), "does more than a chain of layers"),
    ],
)
def test_import_wrong(model, shape, message):
    x = np.random.default_rng(0).normal(size=(4, *shape)).astype(np.float32)
    with pytest.raises(ValueError, match=message):
        quantize.import_model(model(), x)


def _npz(path, **changes):
    rng = np.random.default_rng(0)
    arrays = {"x_train": rng.normal(size=(40, 4)).astype(np.float32),
              "y_train": rng.integers(0, 2, 40), "x_test": rng.normal(size=(10, 4)),
              "y_test": rng.integers(0, 2, 10)}  # fmt: skip
    arrays.update(changes)
    np.savez(path, **{k: v for k, v in arrays.items() if v is not None})
    return path


def _model_file(path, model=None):
    torch.manual_seed(0)
    torch.save(model or nn.Sequential(nn.Linear(4, 8), nn.ReLU(), nn.Linear(8, 2)), path)
    return path


def test_cli_writes_a_checked_golden_folder(tmp_path, capsys):
    ckpt = _model_file(tmp_path / "m.pt")
    data = _npz(tmp_path / "d.npz")
    assert main(["quantize", "--checkpoint", str(ckpt), "--data", str(data), "--out",
                 str(tmp_path / "out"), "--steps", "8", "--snapshot-every", "4"]) == 0  # fmt: skip
    out = capsys.readouterr().out
    assert "test accuracy float" in out and "integer" in out
    manifest = json.loads((tmp_path / "out" / "manifest.json").read_text())
    assert manifest["quantize"]["layers"][0]["op"] == "dense 4->8"
    assert intmodel.load(tmp_path / "out" / "model").sizes == [4, 8, 2]
    assert intgolden.check_inference(tmp_path / "out") == []
    assert intgolden.check_trajectory(tmp_path / "out") == []


@pytest.mark.parametrize(
    "changes, message",
    [
        ({"x_train": np.full((40, 4), np.nan)}, "x_train holds 160 NaN or infinite values"),
        ({"y_test": np.full(10, 7)}, "y_test holds label 7 but the model has 2 outputs"),
        ({"y_train": np.full(40, -1)}, "y_train must hold class indices"),
        ({"x_test": np.zeros((10, 5))}, r"x_train samples are \(4,\), x_test \(5,\)"),
        (
            {"x_train": np.zeros((40, 6)), "x_test": np.zeros((10, 6))},
            "0: nn.Linear takes 4 features, its input has 6",
        ),
        ({"y_test": None}, "no array y_test; the .npz needs"),
    ],
)
def test_cli_bad_data_writes_nothing(tmp_path, capsys, changes, message):
    ckpt = _model_file(tmp_path / "m.pt")
    data = _npz(tmp_path / "d.npz", **changes)
    out = tmp_path / "out"
    assert main(["quantize", "--checkpoint", str(ckpt), "--data", str(data), "--out",
                 str(out)]) == 1  # fmt: skip
    err = capsys.readouterr().err.strip()
    assert len(err.splitlines()) == 1 and re.search(message, err), err
    assert not out.exists() or not any(out.iterdir())


def test_cli_bad_model_file(tmp_path, capsys):
    torch.save(nn.Linear(4, 2).state_dict(), tmp_path / "sd.pt")
    data = _npz(tmp_path / "d.npz")
    assert main(["quantize", "--checkpoint", str(tmp_path / "sd.pt"), "--data", str(data),
                 "--out", str(tmp_path / "out")]) == 1  # fmt: skip
    assert "holds a state_dict, not a model" in capsys.readouterr().err
    assert main(["quantize", "--checkpoint", str(tmp_path / "none.pt"), "--data", str(data),
                 "--out", str(tmp_path / "out")]) == 1  # fmt: skip
    assert "not found" in capsys.readouterr().err
