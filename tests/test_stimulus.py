"""Stimulus assembly and the scoreboard's check (pure numpy, no simulator)."""

import numpy as np
import pytest
from golden_sets import random_set

from helu.golden import fixed
from helu.hw.units import UnitParams
from helu.sim import runner
from helu.sim import stimulus as st


def _sidecar(lanes, in_fields, out_fields, threshold_port=True, threshold=None):
    """A sidecar in the hw.verilog schema (fields LSB first, back to back)."""

    def port(fields, prefix):
        out, offset = [], 0
        for name, width, signed in fields:
            out.append(
                {"name": name, "lanes": lanes, "width": width, "signed": signed, "offset": offset}
            )
            offset += lanes * width
        return {
            "data": f"{prefix}__payload",
            "valid": f"{prefix}__valid",
            "ready": f"{prefix}__ready",
            "width": offset,
            "fields": out,
        }

    return {
        "unit": "x",
        "top": "x",
        "params": {"threshold": threshold},
        "latency": 1,
        "ports": {
            "clk": "clk",
            "rst": "rst",
            "in": port(in_fields, "i"),
            "out": port(out_fields, "o"),
            "threshold": {"name": "threshold", "width": 9, "signed": True}
            if threshold_port
            else None,
        },
    }


Z8, G8 = fixed.Format(8, 5), fixed.Format(8, 6)
TRAIN = _sidecar(3, [("z", 8, True)], [("y", 8, True), ("mask", 1, False)])


@pytest.fixture
def sets():
    return [
        random_set("fc1", Z8, G8, 0.05, 100, 1, layer="fc1"),
        random_set("fc2", fixed.Format(8, 3), G8, 0.5, 31, 2, layer="fc2"),
    ]


def _stim(sets, sidecar=TRAIN, unit="forward-train"):
    return st.assemble(st.golden_segments(unit, sets, sidecar), sidecar)


def test_assemble_pads_each_segment(sets):
    stim = _stim(sets)
    lanes = stim.lanes
    assert stim.transfers == sum(-(-s.elements // lanes) for s in sets)
    assert stim.elements == sum(s.elements for s in sets)
    assert stim.segments[1]["threshold"] == sets[1].threshold


def test_check_accepts_expected(sets):
    stim = _stim(sets)
    result = st.check(stim, stim.exp_words)
    assert result.ok and result.mismatches == 0
    assert result.checked == stim.elements


def test_check_reports_flipped_value(sets):
    stim = _stim(sets)
    got = stim.exp_words.copy()
    element = 40  # in set fc1: transfer 40 // lanes, lane 40 % lanes
    transfer, lane = divmod(element, stim.lanes)
    got[transfer, (lane * 8) // 8] ^= 0x01  # y of that lane sits in byte `lane` (8-bit lanes)
    result = st.check(stim, got)
    assert not result.ok and result.mismatches == 1
    first = result.first_mismatch
    assert (first["set"], first["element"], first["lane"]) == ("fc1", element, lane)
    assert first["inputs"]["z"] == sets[0].z[element]
    assert first["expected"]["y"] == sets[0].y[element]
    assert first["got"]["y"] != first["expected"]["y"]
    assert f"element {element}" in result.message()


def test_check_ignores_pad_lanes(sets):
    stim = _stim(sets)
    last = int(stim.bounds[1]) - 1  # fc1's last transfer: 100 = 33 * 3 + 1, lanes 1, 2 pad
    got = stim.exp_words.copy()
    got[last, 1:3] ^= 0xFF  # y of lanes 1 and 2
    assert st.check(stim, got).ok


def test_check_counts_missing_and_extra(sets):
    stim = _stim(sets)
    short = st.check(stim, stim.exp_words[:-1])
    full = (stim.transfers - 1 - int(stim.bounds[-2])) * stim.lanes  # last set, all but its end
    assert not short.ok and short.mismatches == stim.segments[-1]["elements"] - full
    assert short.first_mismatch["problem"] == "missing output"
    extra = st.check(stim, np.concatenate([stim.exp_words, stim.exp_words[:1]]))
    assert not extra.ok and extra.mismatches == stim.lanes
    assert extra.first_mismatch["problem"] == "extra output"


def test_check_catches_reordered(sets):
    stim = _stim(sets)
    got = stim.exp_words.copy()
    got[[0, 1]] = got[[1, 0]]
    assert not st.check(stim, got).ok


def test_packing_matches_fields(sets):
    """Unpacking the packed words gives back the golden codes, lane by lane."""
    from helu.hw import packing

    stim = _stim(sets)
    n = sets[0].elements
    words = stim.words(stim.in_words, 0, int(stim.bounds[1]))
    (z,) = packing.unpack(words, [(stim.lanes, 8)])
    assert np.array_equal(z.reshape(-1)[:n], sets[0].z)


def test_baseline_expected_from_reference(sets):
    # LeakyReLU with slope 2**-7 (an arithmetic shift, floor), worked out by hand.
    sidecar = _sidecar(2, [("z", 8, True)], [("y", 8, True)], threshold_port=False)
    s = sets[0]
    s.z = np.array([-128, -127, -1, 0, 1, 5, 127])
    seg = st.golden_segments("leaky", [s], sidecar)[0]
    assert seg.expected["y"].tolist() == [-1, -1, -1, 0, 1, 5, 127]


def test_corner_cases_cover_extremes():
    # Q8.5, alpha = 0.05: T = floor(-0.05 * 32) = -2, so dz = g exactly where z > -2.
    t = fixed.threshold(0.05, Z8)
    assert t == -2
    seg = st.corner_segments("backward-z", Z8, G8, t, UnitParams(width=8, frac=5))
    z = set(seg.inputs["z"].tolist())
    assert {-128, -127, -3, -2, -1, 0, 1, 126, 127} <= z
    assert set(seg.inputs["g"].tolist()) >= {-128, 0, 127}
    want = [g if z > -2 else 0 for z, g in zip(seg.inputs["z"], seg.inputs["g"], strict=True)]
    assert seg.expected["dz"].tolist() == want


def test_fields_of_matches_generated_sidecar(tmp_path):
    import json

    from helu.hw.verilog import generate

    params = UnitParams(width=8, lanes=4, threshold_port=True)
    meta = json.loads(generate("forward-train", params, tmp_path).sidecar.read_text())
    names = [f.name for f in st.fields_of(meta, "out")]
    assert names == ["y", "mask"]
    assert sum(f.bits for f in st.fields_of(meta, "out")) == meta["ports"]["out"]["width"]


def test_fields_of_wrong():
    bad = _sidecar(2, [("z", 8, True)], [("y", 8, True)])
    bad["ports"]["in"]["fields"][0]["offset"] = 3
    with pytest.raises(ValueError, match="starts at bit 3, expected 0"):
        st.fields_of(bad, "in")
    with pytest.raises(ValueError, match="no ports.out.fields"):
        st.fields_of({"ports": {}}, "out")


def test_golden_segments_wrong(sets):
    wide = _sidecar(3, [("z", 16, True)], [("y", 16, True), ("mask", 1, False)])
    with pytest.raises(ValueError, match="fc1 has 8-bit z but unit 'forward-train' takes 16-bit"):
        st.golden_segments("forward-train", sets, wide)
    const = _sidecar(
        3, [("z", 8, True)], [("y", 8, True), ("mask", 1, False)], False, sets[0].threshold
    )
    with pytest.raises(ValueError, match=f"fc2 has T={sets[1].threshold}"):
        st.golden_segments("forward-train", sets, const)
    with pytest.raises(ValueError, match="unknown unit 'nope'"):
        st.golden_segments("nope", sets, TRAIN)


def test_assemble_wrong(sets):
    with pytest.raises(ValueError, match="no stimulus segments"):
        st.assemble([], TRAIN)
    seg = st.golden_segments("forward-train", sets, TRAIN)[0]
    del seg.expected["mask"]
    with pytest.raises(ValueError, match=r"lacks fields \['mask'\]"):
        st.assemble([seg], TRAIN)


def test_stimulus_save_load(sets, tmp_path):
    stim = _stim(sets)
    back = st.Stimulus.load(stim.save(tmp_path / "s.npz"))
    assert np.array_equal(back.in_words, stim.in_words)
    assert back.segments == stim.segments and back.out_fields == stim.out_fields


def test_x_outputs_count_as_mismatches():
    clean = {"checked": 10, "mismatches": 0, "first_mismatch": None, "x_words": 0}
    assert runner.score_x(dict(clean))["mismatches"] == 0
    x_read_as_expected = runner.score_x(clean | {"x_words": 3})
    assert x_read_as_expected["mismatches"] == 3
    assert x_read_as_expected["first_mismatch"] == {"x_words": 3}
    already = runner.score_x(clean | {"x_words": 1, "mismatches": 5, "first_mismatch": {"i": 2}})
    assert already["mismatches"] == 5 and already["first_mismatch"] == {"i": 2}
