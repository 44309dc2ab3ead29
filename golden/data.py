"""Datasets that ship offline with scikit-learn, split and standardised reproducibly.

``load(name, seed, test_size)`` returns a :class:`Split`: a stratified train/test split (seeded)
with features standardised by the training split's mean and standard deviation only (the test
split never informs the scaling). Digits (8x8 images, 10 classes) is the default; breast cancer
(30 features, 2 classes) and wine (13 features, 3 classes) are the tabular sets.
"""

from dataclasses import dataclass

import numpy as np

__all__ = ["DATASETS", "Split", "load"]

# name -> (loader name in sklearn.datasets, image shape or None)
DATASETS = {
    "digits": ("load_digits", (1, 8, 8)),
    "breast_cancer": ("load_breast_cancer", None),
    "wine": ("load_wine", None),
}


@dataclass
class Split:
    """A standardised, stratified train/test split (float32 features, int64 labels)."""

    name: str
    x_train: np.ndarray  # (N_train, D)
    y_train: np.ndarray  # (N_train,)
    x_test: np.ndarray  # (N_test, D)
    y_test: np.ndarray  # (N_test,)
    mean: np.ndarray  # (D,) fitted on the training split
    std: np.ndarray  # (D,)
    n_classes: int
    image_shape: tuple | None  # (C, H, W) for image sets, else None
    seed: int
    test_size: float

    @property
    def n_features(self) -> int:
        return int(self.x_train.shape[1])

    def describe(self) -> dict:
        return {
            "dataset": self.name,
            "seed": self.seed,
            "test_size": self.test_size,
            "n_train": int(self.x_train.shape[0]),
            "n_test": int(self.x_test.shape[0]),
            "n_features": self.n_features,
            "n_classes": self.n_classes,
        }


def load(name: str = "digits", seed: int = 0, test_size: float = 0.2) -> Split:
    """Load ``name`` from scikit-learn's bundled data and split it.

    Parameters
    ----------
    name : str
        One of ``DATASETS``.
    seed : int
        Seed of the stratified split (the same seed always gives the same split).
    test_size : float
        Share of samples in the test split, strictly between 0 and 1.
    """
    if name not in DATASETS:
        raise ValueError(f"Unknown dataset {name!r}; choose one of {', '.join(DATASETS)}")
    if isinstance(seed, bool) or not isinstance(seed, (int, np.integer)) or seed < 0:
        raise ValueError(f"Split seed must be a non-negative integer, not {seed!r}")
    if isinstance(test_size, bool) or not isinstance(test_size, (int, float)):
        raise TypeError(f"Test size must be a number, not {test_size!r}")
    if not 0 < test_size < 1:
        raise ValueError(f"Test size must be strictly between 0 and 1, not {test_size}")

    import sklearn.datasets
    from sklearn.model_selection import train_test_split

    loader, image_shape = DATASETS[name]
    bunch = getattr(sklearn.datasets, loader)()
    x = np.asarray(bunch.data, dtype=np.float64)
    y = np.asarray(bunch.target, dtype=np.int64)
    x_train, x_test, y_train, y_test = train_test_split(
        x, y, test_size=test_size, random_state=int(seed), stratify=y
    )
    mean = x_train.mean(axis=0)
    std = x_train.std(axis=0)
    # Constant features (digits' always-blank corner pixels) keep scale 1 instead of dividing by 0.
    std = np.where(std > 0, std, 1.0)
    return Split(
        name=name,
        x_train=((x_train - mean) / std).astype(np.float32),
        y_train=y_train,
        x_test=((x_test - mean) / std).astype(np.float32),
        y_test=y_test,
        mean=mean.astype(np.float32),
        std=std.astype(np.float32),
        n_classes=int(y.max()) + 1,
        image_shape=image_shape,
        seed=int(seed),
        test_size=float(test_size),
    )
