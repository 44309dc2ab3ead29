"""Synthetic golden sets for tests: random codes over a format's whole range, results from
``golden.fixed`` (the same rules the exporter uses)."""

import numpy as np

from helu.golden import fixed
from helu.golden.vectors import GoldenSet


def random_set(name, z_fmt, g_fmt, alpha, n, seed, layer=None) -> GoldenSet:
    rng = np.random.default_rng(seed)
    z = rng.integers(z_fmt.min_code, z_fmt.max_code + 1, n)
    g = rng.integers(g_fmt.min_code, g_fmt.max_code + 1, n)
    t = fixed.threshold(alpha, z_fmt)
    m = fixed.mask(z, t)
    return GoldenSet(
        name=name, layer=layer or name.split("_")[0], z=z, g=g, y=fixed.forward(z), mask=m,
        dz=fixed.backward(g, m), z_fmt=z_fmt, g_fmt=g_fmt, alpha=alpha, threshold=t,
    )  # fmt: skip
