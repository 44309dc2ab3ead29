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
        q.model.weights, q.model.biases, [q.model.shifts[0] + 1] + q.model.shifts[1:], 0
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
