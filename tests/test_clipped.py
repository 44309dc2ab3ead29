# amaranth: UnusedElaboratable=no
"""Clipped ReLU (hw/units/clipped.py): golden rule, unit against it, registry entry, refusals."""

import numpy as np
import pytest
import torch
from amaranth.hdl import Fragment
from streams import check_outputs, pack_inputs, simulate, simulate_full_rate, unpack_outputs

from helu.golden import fixed
from helu.golden.activations import STUDY_ACTIVATIONS
from helu.hw.units import UNITS, UnitParams
from helu.hw.units.clipped import ClippedRelu, check_clip
from helu.sim import stimulus as st


def test_golden_rule_by_hand():
    z = np.array([-128, -1, 0, 1, 5, 6, 7, 127])
    assert fixed.clipped(z, 6).tolist() == [0, 0, 0, 1, 5, 6, 6, 6]
    assert fixed.clipped(z, 0).tolist() == [0] * 8
    assert fixed.clipped(torch.tensor([-3, 2, 9]), 4).tolist() == [0, 2, 4]


@pytest.mark.parametrize("width,clip", [(8, 96), (8, 0), (8, 127), (5, 6)])
def test_every_code_at_full_rate(width, clip):
    dut = ClippedRelu(width, 4, clip=clip)
    lo, hi = -(1 << (width - 1)), 1 << (width - 1)
    z = np.arange(lo, hi).reshape(-1, 4)
    words, _cycles = simulate_full_rate(dut, pack_inputs(dut, {"z": z}))
    want = UNITS["clipped-relu"].reference(UnitParams(width=width, clip=clip), {"z": z})
    check_outputs(unpack_outputs(dut, words), want, {"z": z})
    assert want["y"].max() == min(clip, hi - 1) and want["y"].min() == 0


def test_random_handshakes():
    dut = ClippedRelu(8, 3, clip=40)
    z = np.random.default_rng(1).integers(-128, 128, size=(60, 3))
    got = simulate(dut, pack_inputs(dut, {"z": z}), valid_prob=0.6, ready_prob=0.5, seed=3)
    check_outputs(unpack_outputs(dut, got), {"y": fixed.clipped(z, 40)}, {"z": z})


def test_registry_entry():
    info = UNITS["clipped-relu"]
    assert info.study == "relu6" and isinstance(STUDY_ACTIVATIONS["relu6"](0.05), torch.nn.ReLU6)
    assert [p.name for p in info.params] == ["clip"]
    unit = info.build(UnitParams(width=8, lanes=2, clip=20))
    assert (unit.width, unit.lanes, unit.clip, unit.latency, unit.threshold_const) == (
        8,
        2,
        20,
        1,
        None,
    )
    Fragment.get(unit, None)
    seg = st.corner_segments(
        "clipped-relu", fixed.Format(8, 4), fixed.Format(8, 4), None, UnitParams(clip=20)
    )
    assert {19, 20, 21, -128, 127} <= set(seg.inputs["z"].tolist())
    assert seg.expected["y"].tolist() == [min(max(z, 0), 20) for z in seg.inputs["z"].tolist()]


def test_generated_verilog_names_the_clip(tmp_path):
    from helu.hw.verilog import generate

    made = generate("clipped-relu", UnitParams(width=8, lanes=4, clip=20), tmp_path)
    assert made.top == "helu_clipped_relu_w8_l4_c20"
    assert made.meta["params"] == {"width": 8, "lanes": 4, "clip": 20, "threshold": None}


@pytest.mark.parametrize(
    "clip,width,error,message",
    [
        (128, 8, ValueError, "Clip level must be between 0 and 127 for 8-bit codes, not 128"),
        (-1, 8, ValueError, "Clip level must be between 0 and 127 for 8-bit codes, not -1"),
        (2.5, 8, TypeError, "Clip level must be an integer code, not 2.5"),
        (True, 8, TypeError, "Clip level must be an integer code, not True"),
    ],
)
def test_clip_wrong(clip, width, error, message):
    with pytest.raises(error, match=f"^{message}$".replace("(", r"\(").replace(")", r"\)")):
        check_clip(clip, width)
    with pytest.raises(error, match="Clip level"):
        ClippedRelu(width, 1, clip=clip)


def test_cli_verilog_takes_the_clip(tmp_path, capsys):
    from helu.cli import main

    argv = ["verilog", "--unit", "clipped-relu", "--out", str(tmp_path), "--clip"]
    assert main(["-q", *argv, "9"]) == 0
    assert (tmp_path / "helu_clipped_relu_w8_l1_c9.v").is_file()
    assert main([*argv, "300"]) == 1
    assert "Clip level must be between 0 and 127" in capsys.readouterr().err
