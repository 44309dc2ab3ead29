"""Models (golden/models.py): shapes, named activations, configuration checks."""

import pytest
import torch
from torch import nn

from helu.golden.activations import HeLU
from helu.golden.models import (
    ACTIVATIONS,
    CNN,
    LEAKY_SLOPE,
    MLP,
    ModelConfig,
    build,
    make_activation,
)

torch.set_num_threads(1)


@pytest.mark.parametrize("act", ACTIVATIONS)
def test_mlp_shapes_and_named_activations(act):
    cfg = ModelConfig(hidden=(16, 8, 4), act=act, alpha=0.1)
    model = build(cfg)
    assert isinstance(model, MLP)
    assert model(torch.randn(5, 64)).shape == (5, cfg.n_classes)
    names = [n for n, _ in model.activations()]
    assert names == [f"act{i + 1}" for i in range(len(cfg.hidden))]
    for name, module in model.activations():
        assert type(module) is type(make_activation(act))
        assert getattr(model, name) is module
        if act == "helu":
            assert module.alpha == 0.1


def test_cnn_shapes_and_activations():
    cfg = ModelConfig(kind="cnn", channels=(4, 8), cnn_fc=12, act="helu")
    model = build(cfg)
    assert isinstance(model, CNN)
    assert model(torch.randn(3, 64)).shape == (3, 10)
    assert model(torch.randn(3, 1, 8, 8)).shape == (3, 10)
    helus = [n for n, m in model.named_modules() if isinstance(m, HeLU)]
    assert helus == ["act1", "act2", "act3"] == [n for n, _ in model.activations()]


def test_leaky_slope_is_a_power_of_two():
    m = make_activation("leaky")
    assert isinstance(m, nn.LeakyReLU) and m.negative_slope == LEAKY_SLOPE == 2.0**-7


def test_config_round_trip():
    from helu.golden.models import config_from_dict

    cfg = ModelConfig(kind="cnn", channels=(2, 3, 4), act="gelu")
    assert config_from_dict(cfg.to_dict()) == cfg


@pytest.mark.parametrize(
    "kwargs,message",
    [
        ({"kind": "rnn"}, "Model kind must be 'mlp' or 'cnn', not 'rnn'"),
        ({"act": "tanh"}, "Unknown activation 'tanh'; choose one of relu"),
        ({"alpha": -1.0}, "Alpha must be a finite number >= 0, not -1.0"),
        ({"hidden": ()}, r"hidden must be a non-empty list of positive integers, not \(\)"),
        ({"hidden": (8, 0)}, r"hidden must be a non-empty list of positive integers, not \(8, 0\)"),
        ({"n_classes": 0}, "n_classes must be a positive integer, not 0"),
        ({"kind": "cnn", "in_features": 30}, "The CNN takes 8x8 images"),
        ({"kind": "cnn", "channels": (1, 1, 1, 1)}, "at most 3 pooled conv layers, not 4"),
    ],
)
def test_config_wrong(kwargs, message):
    with pytest.raises(ValueError, match=message):
        ModelConfig(**kwargs)


def test_build_wrong():
    with pytest.raises(TypeError, match="Expected a ModelConfig, not dict"):
        build({"kind": "mlp"})
    with pytest.raises(ValueError, match="Unknown activation 'swish'"):
        make_activation("swish")
