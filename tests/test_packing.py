"""Lane packing (hw/packing.py): field 0 and lane 0 in the least significant bits."""

import numpy as np
import pytest

from helu.hw import packing


def test_lane_zero_is_least_significant():
    words = packing.pack([(np.array([[1, -1]]), 8)])
    assert words == [0xFF01]


def test_fields_concatenate_lsb_first():
    words = packing.pack([(np.array([[2, 3]]), 4), (np.array([[1, 0]]), 1)])
    assert words == [0x32 | (1 << 8)]


@pytest.mark.parametrize("lanes,width", [(1, 2), (3, 5), (16, 16), (64, 8)])
def test_round_trip(lanes, width):
    rng = np.random.default_rng(lanes * width)
    z = rng.integers(-(1 << (width - 1)), 1 << (width - 1), size=(50, lanes))
    m = rng.integers(0, 2, size=(50, lanes))
    words = packing.pack([(z, width), (m, 1)])
    assert all(0 <= w < (1 << packing.payload_width([(lanes, width), (lanes, 1)])) for w in words)
    z2, m2 = packing.unpack(words, [(lanes, width), (lanes, 1)], signed=[True, False])
    np.testing.assert_array_equal(z2, z)
    np.testing.assert_array_equal(m2, m)


def test_pack_wrong():
    with pytest.raises(ValueError, match="disagree"):
        packing.pack([(np.zeros((2, 1)), 4), (np.zeros((3, 1)), 4)])
    with pytest.raises(ValueError, match="wider than"):
        packing.unpack([1 << 20], [(1, 8)])
