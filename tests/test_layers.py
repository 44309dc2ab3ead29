"""Layer ops (golden/layers.py): windows against PyTorch's convolution, scatter as their
transpose, and the integer training step's conv backward against PyTorch's gradients."""

import numpy as np
import pytest

from helu.golden import fixed, intmodel
from helu.golden.layers import Conv2d, Dense, op_from_dict

torch = pytest.importorskip("torch")
F = torch.nn.functional

CONVS = [
    Conv2d((8, 8, 1), 8, 3, 1, 1),
    Conv2d((8, 8, 8), 16, 3, 2, 1),
    Conv2d((5, 7, 3), 4, 3, 2, 0),
    Conv2d((6, 6, 2), 3, 1, 1, 0),
    Conv2d((4, 4, 2), 2, 4, 1, 0),  # the whole map: a dense layer after a flatten
]


def _hwc(x_nchw):
    return x_nchw.permute(0, 2, 3, 1).reshape(len(x_nchw), -1)


def _torch_weight(op, matrix):
    k, c = op.kernel, op.in_shape[2]
    return matrix.reshape(op.out_channels, k, k, c).permute(0, 3, 1, 2)  # (C_out, C_in, k, k)


@pytest.mark.parametrize("op", CONVS, ids=lambda op: op.describe())
def test_windows_are_torch_conv2d(op):
    gen = torch.Generator().manual_seed(0)
    h, w, c = op.in_shape
    x = torch.randint(-128, 128, (3, c, h, w), generator=gen, dtype=torch.int64)
    matrix = torch.randint(-128, 128, (op.out_channels, op.fan_in), generator=gen)
    cols = op.windows(_hwc(x))  # (N, positions, fan_in)
    got = (cols @ matrix.T).reshape(3, op.out_size)
    want = F.conv2d(x.double(), _torch_weight(op, matrix).double(), stride=op.stride,
                    padding=op.padding)  # fmt: skip
    assert tuple(want.shape[1:]) == (op.out_channels, *op.out_shape[:2])
    np.testing.assert_array_equal(got.numpy(), _hwc(want).long().numpy())
    np.testing.assert_array_equal(op.windows(_hwc(x).numpy()), cols.numpy())  # numpy == torch


@pytest.mark.parametrize("op", CONVS + [Dense(7, 3)], ids=lambda op: op.describe())
def test_scatter_is_the_transpose_of_windows(op):
    # <windows(x), c> == <x, scatter(c)> for every x and c: scatter is the adjoint (exact in ints).
    rng = np.random.default_rng(1)
    x = rng.integers(-50, 50, (2, op.in_size))
    c = rng.integers(-50, 50, (2, op.positions, op.fan_in))
    assert int((op.windows(x) * c).sum()) == int((x * op.scatter(c)).sum())
    np.testing.assert_array_equal(op.scatter(torch.from_numpy(c)).numpy(), op.scatter(c))


def test_scatter_check_sees_a_wrong_index():
    op = Conv2d((4, 4, 1), 1, 3, 1, 1)
    rng = np.random.default_rng(2)
    x, c = rng.integers(-9, 9, (1, op.in_size)), rng.integers(-9, 9, (1, op.positions, op.fan_in))
    x[0, 0] = 1
    wrong = op.scatter(c)
    wrong[0, 0] += 1  # one contribution added to the wrong place: the adjoint identity breaks
    assert int((op.windows(x) * c).sum()) != int((x * wrong).sum())


def test_conv_training_step_is_torch_autograd():
    """IntNet's conv step: weight gradient = correlation of input and delta, delta = the
    transposed convolution, as torch.nn.grad computes them in float64 (exact for these ints)."""
    from helu.golden import intnet

    ops = [Conv2d((6, 6, 2), 4, 3, 2, 1), Dense(36, 5)]
    rng = np.random.default_rng(3)
    weights = [rng.integers(-60, 60, (op.out_channels, op.fan_in)) for op in ops]
    biases = [rng.integers(-500, 500, op.out_channels) for op in ops]
    model = intmodel.IntModel(weights, biases, [6, 7], -3, intmodel.InputFormat(0, 0, 40), ops)
    scales = intnet.Scales([0, 1], [6, 6], [1, 2], [3, 2])
    net = intnet.IntNet.from_model(model, scales)
    masters0 = [m.clone() for m in net.masters]
    shadows = net.shadows()
    x = torch.from_numpy(rng.integers(0, 41, (1, 72)))
    rec = net.step(x, torch.tensor([2]))
    conv = ops[0]
    # Backward through the dense layer into the conv's output: W.T @ d, requantized, masked.
    d1 = rec["delta"][1].double()
    back = d1 @ shadows[1][0].double()  # (1, 36)
    g0 = fixed.requantize(back.long(), scales.delta_shifts[0])
    np.testing.assert_array_equal(rec["g"][0].numpy(), g0.numpy())
    d0 = rec["delta"][0]  # (1, 36) flat HWC (3, 3, 4)
    d0_nchw = d0.reshape(1, 3, 3, 4).permute(0, 3, 1, 2).double()
    x_nchw = x.reshape(1, 6, 6, 2).permute(0, 3, 1, 2).double()
    gw = torch.nn.grad.conv2d_weight(x_nchw, (4, 2, 3, 3), d0_nchw, stride=2, padding=1)
    want = gw.permute(0, 2, 3, 1).reshape(4, -1).long()
    np.testing.assert_array_equal(rec["grad"][0][0].numpy(), want.numpy())
    want_master = fixed.update(masters0[0][0], want, scales.grad_shifts[0], fixed.MASTER_WIDTH)
    np.testing.assert_array_equal(net.masters[0][0].numpy(), want_master.numpy())
    # The delta a conv layer would pass on: the transposed convolution of its delta.
    gi = torch.nn.grad.conv2d_input((1, 2, 6, 6), _torch_weight(conv, shadows[0][0]).double(),
                                    d0_nchw, stride=2, padding=1)  # fmt: skip
    cols = d0.reshape(1, 1, conv.positions, 4).double() @ shadows[0][0].double()
    np.testing.assert_array_equal(conv.scatter(cols)[0, 0].numpy(), _hwc(gi)[0].numpy())


def test_op_wrong():
    with pytest.raises(ValueError, match="Dense out_features must be a positive integer, not 0"):
        Dense(4, 0)
    with pytest.raises(ValueError, match="stride must be 1 or 2, not 3"):
        Conv2d((8, 8, 1), 4, 3, 3)
    with pytest.raises(ValueError, match="does not fit a 2x2 input"):
        Conv2d((2, 2, 1), 4, 3)
    with pytest.raises(ValueError, match="a layer must be one of dense, conv2d"):
        op_from_dict({"op": "pool"})
    with pytest.raises(ValueError, match="layer"):
        op_from_dict({"op": "dense", "in_features": 3})
