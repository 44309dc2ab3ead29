"""Datasets (golden/data.py): offline, seeded, stratified, standardised on train only."""

import numpy as np
import pytest

from helu.golden import data


@pytest.mark.parametrize("name", list(data.DATASETS))
def test_split_is_stratified_and_standardised_on_train(name):
    s = data.load(name, seed=3, test_size=0.25)
    n = s.x_train.shape[0] + s.x_test.shape[0]
    assert s.x_test.shape[0] == pytest.approx(0.25 * n, abs=1)
    assert s.x_train.dtype == np.float32 and s.y_train.dtype == np.int64
    assert s.n_features == s.x_test.shape[1] == s.mean.shape[0]
    # Stratified: each class's share in the test split matches the whole set within one sample.
    counts = np.bincount(np.concatenate([s.y_train, s.y_test]), minlength=s.n_classes)
    test_counts = np.bincount(s.y_test, minlength=s.n_classes)
    assert np.all(np.abs(test_counts - 0.25 * counts) <= 1)
    # Train columns have mean 0 and std 1 (or are constant: std 0).
    np.testing.assert_allclose(s.x_train.mean(0), 0, atol=1e-5)
    std = s.x_train.std(0)
    assert np.all((np.abs(std - 1) < 1e-4) | (std < 1e-6))


def test_same_seed_same_split_other_seed_other_split():
    a, b, c = data.load(seed=1), data.load(seed=1), data.load(seed=2)
    np.testing.assert_array_equal(a.x_train, b.x_train)
    np.testing.assert_array_equal(a.y_test, b.y_test)
    assert not np.array_equal(a.y_test, c.y_test)


def test_digits_describes_images():
    s = data.load()
    assert s.name == "digits" and s.image_shape == (1, 8, 8) and s.n_classes == 10
    assert s.describe()["n_train"] + s.describe()["n_test"] == 1797


@pytest.mark.parametrize(
    "kwargs,exc,message",
    [
        ({"name": "mnist"}, ValueError, "Unknown dataset 'mnist'; choose one of digits"),
        ({"seed": -1}, ValueError, "Split seed must be a non-negative integer, not -1"),
        ({"test_size": 1.0}, ValueError, "Test size must be strictly between 0 and 1, not 1.0"),
        ({"test_size": "0.2"}, TypeError, "Test size must be a number, not '0.2'"),
    ],
)
def test_load_wrong(kwargs, exc, message):
    with pytest.raises(exc, match=message):
        data.load(**kwargs)


def test_scaling_comes_from_train_only():
    import sklearn.datasets

    s = data.load("wine", seed=0)
    raw = sklearn.datasets.load_wine().data
    # Undo the scaling: every test row must be a raw row, scaled with the train statistics.
    restored = s.x_test.astype(np.float64) * s.std + s.mean
    for row in restored[:5]:
        assert np.min(np.abs(raw - row).max(axis=1)) < 1e-3 * np.abs(raw).max()
    assert not np.allclose(s.x_test.mean(0), 0, atol=1e-3)
