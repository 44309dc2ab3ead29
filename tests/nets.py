"""Small seeded integer networks and samples for the engine tests: random integer models for the
inference engine, scratch ``IntNet`` s for the training engine."""

import numpy as np
import torch

from helu.golden import intmodel
from helu.golden.intnet import IntNet, Scales

__all__ = ["random_model", "random_inputs", "small_net", "samples"]


def random_model(seed: int, sizes, *, input_max: int = 16) -> intmodel.IntModel:
    """A seeded random integer model whose shifts keep most codes inside int8 (some saturate)."""
    rng = np.random.default_rng(seed)
    weights, biases, shifts = [], [], []
    in_max = input_max
    for fan_in, out in zip(sizes[:-1], sizes[1:], strict=True):
        weights.append(rng.integers(-128, 128, size=(out, fan_in)))
        spread = max(int(np.sqrt(fan_in)) * in_max * 64, 1)
        shifts.append(max(int(np.log2(spread)) - 5, 0))
        biases.append(rng.integers(-spread, spread + 1, size=out))
        in_max = 127
    return intmodel.IntModel(
        weights, biases, shifts, threshold=-2, input=intmodel.InputFormat(0, 0, input_max)
    )


def random_inputs(seed: int, model, n: int) -> np.ndarray:
    rng = np.random.default_rng(seed)
    return rng.integers(0, model.input_max + 1, size=(n, model.sizes[0]))


def small_net(seed: int, sizes, *, lr_shift: int = 5, threshold: int = -3) -> IntNet:
    """A seeded scratch ``IntNet`` (one run) with random biases, digits-like scales."""
    layers = len(sizes) - 1
    scales = Scales.chain(4, (6,) * layers, (4,) * (layers - 1) + (5,), 2, lr_shift)
    net = IntNet.scratch([seed], scales, threshold, sizes=tuple(sizes))
    gen = torch.Generator().manual_seed(seed)
    net.biases = [torch.randint(-400, 1200, b.shape, generator=gen) for b in net.biases]
    return net


def samples(seed: int, sizes, n: int):
    rng = np.random.default_rng(seed)
    return rng.integers(0, 17, size=(n, sizes[0])), rng.integers(0, sizes[-1], size=n)
