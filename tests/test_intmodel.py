"""The integer model file and its array-generic inference (golden/intmodel.py)."""

import json

import numpy as np
import pytest

from helu.golden import intmodel
from helu.golden.intmodel import PIXELS, IntModel


def random_model(seed=0, sizes=(64, 32, 32, 10), threshold=-2) -> IntModel:
    rng = np.random.default_rng(seed)
    weights = [rng.integers(-128, 128, (o, i)) for i, o in zip(sizes, sizes[1:], strict=False)]
    biases = [rng.integers(-2000, 2000, o) for o in sizes[1:]]
    return IntModel(weights, biases, [6, 7, 7], threshold, intmodel.PIXELS)


def test_infer_by_hand():
    # 2 -> 2 -> 2 with numbers small enough to follow: layer 0 acc = [3*1 + 2*2 + 1, -4*1 + 0] =
    # [8, -4]; shift 2 rounds half up: [2, -1]; HeLU forward: [2, 0]. Layer 1: acc = [2*5, 2*-1 +
    # 3] = [10, 1]; shift 1: [(10+1)>>1, (1+1)>>1] = [5, 1]; class 0.
    model = IntModel([[[3, 2], [-4, 0]], [[5, 0], [-1, 0]]], [[1, 0], [0, 3]], [2, 1], 0, PIXELS)
    logits, cls = intmodel.infer(model, np.array([[1, 2]]))
    assert logits.tolist() == [[5, 1]]
    assert cls.tolist() == [0]


def test_argmax_first_index_wins_ties():
    assert intmodel.argmax(np.array([[3, 7, 7, 1], [0, 0, 0, 0]])).tolist() == [1, 0]


def test_infer_numpy_equals_torch():
    torch = pytest.importorskip("torch")
    model = random_model()
    x = np.random.default_rng(1).integers(0, 17, (50, 64))
    logits, cls = intmodel.infer(model, x)
    t_logits, t_cls = intmodel.infer(model, torch.from_numpy(x))
    np.testing.assert_array_equal(logits, t_logits.numpy())
    np.testing.assert_array_equal(cls, t_cls.numpy())
    assert logits.min() >= -128 and logits.max() <= 127


def test_save_load_round_trip(tmp_path):
    model = random_model()
    intmodel.save(model, tmp_path / "m")
    again = intmodel.load(tmp_path / "m")
    assert again.sizes == [64, 32, 32, 10] and again.shifts == model.shifts
    assert again.threshold == model.threshold
    for a, b in zip(model.weights + model.biases, again.weights + again.biases, strict=True):
        np.testing.assert_array_equal(a, b)


def test_model_wrong():
    with pytest.raises(ValueError, match="weights outside int8"):
        IntModel([[[200]]], [[0]], [0], 0, PIXELS)
    with pytest.raises(
        ValueError, match=r"layer 1 \(dense 3->1\) takes 3 inputs, layer 0 \(dense 4->2\) gives 2"
    ):
        IntModel(
            [np.zeros((2, 4)), np.zeros((1, 3))], [np.zeros(2), np.zeros(1)], [0, 0], 0, PIXELS
        )
    with pytest.raises(ValueError, match="beyond a 32-bit accumulator"):
        IntModel([np.zeros((1, 4))], [np.array([2**31 - 100])], [0], 0, PIXELS)


def test_load_wrong(tmp_path):
    with pytest.raises(ValueError, match="not an integer model folder"):
        intmodel.load(tmp_path)
    intmodel.save(random_model(), tmp_path)
    manifest = json.loads((tmp_path / "manifest.json").read_text())
    manifest["sizes"] = [64, 16, 32, 10]
    (tmp_path / "manifest.json").write_text(json.dumps(manifest))
    with pytest.raises(ValueError, match="sizes"):
        intmodel.load(tmp_path)
    (tmp_path / "manifest.json").write_text("[")
    with pytest.raises(ValueError, match="not valid JSON"):
        intmodel.load(tmp_path)


@pytest.mark.parametrize(
    "key, value, message",
    [
        ("threshold", "x", "'threshold' must be an integer (HeLU's T in int8 codes), not 'x'"),
        ("threshold", [1], "'threshold' must be an integer (HeLU's T in int8 codes), not [1]"),
        ("threshold", None, "'threshold' must be an integer (HeLU's T in int8 codes), not None"),
        ("threshold", True, "'threshold' must be an integer (HeLU's T in int8 codes), not True"),
        ("shifts", ["x", 8], "'shifts' item 0 must be an integer >= 0 (a layer's requantization "
         "shift), not 'x'"),
        ("shifts", [8, -1], "'shifts' item 1 must be an integer >= 0"),
        ("shifts", 8, "'shifts' must be a list, not 8"),
    ],
)  # fmt: skip
def test_load_names_the_wrong_field(tmp_path, key, value, message):
    """A manifest field of the wrong type is refused by its name and what it must hold, with
    the manifest's path (not a bare "invalid literal for int()")."""
    intmodel.save(random_model(), tmp_path)
    manifest = json.loads((tmp_path / "manifest.json").read_text())
    (tmp_path / "manifest.json").write_text(json.dumps({**manifest, key: value}))
    with pytest.raises(ValueError) as info:
        intmodel.load(tmp_path)
    assert str(info.value).startswith(f"{tmp_path / 'manifest.json'}: {message}"), str(info.value)


def test_model_arrays_wrong():
    """A layer of size 0, fractional weights and NaN are refused by name, never cast."""
    fmt = PIXELS
    with pytest.raises(ValueError, match=r"layer 0: weights of shape \(0, 4\)"):
        IntModel([np.zeros((0, 4))], [np.zeros(0)], [0], 0, fmt)
    with pytest.raises(ValueError, match=r"layer 0: weights hold fractional values \(for exa"):
        IntModel([[[1.5, 2.0]]], [[0]], [0], 0, fmt)
    with pytest.raises(ValueError, match="layer 1: biases hold NaN or infinite values"):
        IntModel([np.ones((2, 2)), np.ones((1, 2))], [[0, 0], [np.nan]], [0, 0], 0, fmt)
    with pytest.raises(ValueError, match="threshold must be integer codes"):
        IntModel([[[1]]], [[0]], [0], "x", fmt)
    # Integral floats are codes: taken as they are.
    assert IntModel([[[1.0, -2.0]]], [[3.0]], [0], 0, fmt).weights[0].tolist() == [[1, -2]]


def test_input_format_wrong():
    with pytest.raises(ValueError, match=r"input codes \[5, 2\] must be an ordered range"):
        intmodel.InputFormat(0, 5, 2)
    with pytest.raises(ValueError, match="input format frac must be an integer"):
        intmodel.InputFormat(0.5, 0, 2)
    codes, clamped = intmodel.InputFormat(2, 0, 7).quantize([0.3, 1.0, 2.5, -1.0])
    assert codes.tolist() == [1, 4, 7, 0] and clamped == 2  # 2.5 -> 10 > 7, -1 -> -4 < 0


def test_conv_model_round_trip_and_format_1(tmp_path):
    from helu.golden.layers import Conv2d, Dense

    ops = [Conv2d((4, 4, 2), 3, 3, 2, 1), Dense(12, 2)]
    rng = np.random.default_rng(0)
    w = [rng.integers(-9, 9, (op.out_channels, op.fan_in)) for op in ops]
    model = IntModel(w, [np.zeros(3), np.zeros(2)], [2, 3], -1,
                     intmodel.InputFormat(3, -128, 127), ops)  # fmt: skip
    intmodel.save(model, tmp_path / "m")
    again = intmodel.load(tmp_path / "m")
    assert again.ops == ops and again.input == model.input and again.sizes == [32, 12, 2]
    # A format-1 folder (an MLP on digits pixels, before layers and input formats were stated).
    intmodel.save(random_model(), tmp_path / "v1")
    manifest = json.loads((tmp_path / "v1" / "manifest.json").read_text())
    for key in ("layers", "input"):
        del manifest[key]
    manifest |= {"format_version": 1, "input_max": 16}
    (tmp_path / "v1" / "manifest.json").write_text(json.dumps(manifest))
    assert intmodel.load(tmp_path / "v1").input == PIXELS
    manifest["layers"] = [{"op": "pool"}]
    manifest["format_version"] = 2
    manifest["input"] = PIXELS.to_dict()
    (tmp_path / "v1" / "manifest.json").write_text(json.dumps(manifest))
    with pytest.raises(ValueError, match="a layer must be one of dense, conv2d"):
        intmodel.load(tmp_path / "v1")
