"""Synthesis of the training engine (hw/net/synth.py): cell counts against capacity, Fmax."""

import json

import pytest
from conftest import need
from nets import small_net

from helu.hw.net.synth import synthesize_trainer
from helu.hw.net.trainer import TrainSpec
from helu.hw.synth import TARGETS


def test_trainsynth_target_wrong(tmp_path):
    spec = TrainSpec.from_net(small_net(1, [4, 3, 2]))
    with pytest.raises(ValueError, match="Unknown target 'gowin'"):
        synthesize_trainer(spec, 2, "gowin", out_dir=tmp_path)
    assert not any(tmp_path.iterdir())


@pytest.mark.slow
def test_trainsynth_area_and_fmax_on_ice40(tmp_path):
    """The smallest engine through Yosys and one nextpnr seed inside the timing harness (the
    units' method, ``hw.synth.harness_timing``): a record whose figures agree with each other
    and with its ``record.json``."""
    need("yosys", "nextpnr-ice40")
    spec = TrainSpec.from_net(small_net(1, [2, 2, 2]))
    record = synthesize_trainer(spec, 1, "ice40", out_dir=tmp_path, seeds=1)
    work = next((tmp_path / "ice40").iterdir())
    assert json.loads((work / "record.json").read_text()) == json.loads(json.dumps(record))
    assert record["fits"] and record["over"] == [] and record["fmax_reason"] is None
    assert record["lut"] > 0 and record["ff"] > 0
    # The harness adds a register on every port; its LUTs are the engine's give or take what
    # Yosys folds across the boundary once the engine is synthesised in context.
    assert record["harness_ff"] >= record["ff"] and record["harness_lut"] > 0.9 * record["lut"]
    assert record["placed"] is True
    assert len(record["fmax_seeds"]) == 1 and record["fmax_mhz"] == record["fmax_seeds"][0] > 0
    expected_rate = record["fmax_mhz"] * 1e6 / record["cycles_per_sample"]
    assert record["steps_per_s"] == pytest.approx(expected_rate)
    assert (work / "nextpnr.seed1.log").is_file()
    assert "nextpnr-ice40" in record["tools"]


@pytest.mark.slow
def test_trainsynth_too_big_is_a_result_not_a_run(tmp_path, monkeypatch):
    """Over the device's capacity: area stands, ``fits`` false, the reason given, and no place
    and route attempted."""
    need("yosys")
    monkeypatch.setitem(TARGETS["ice40"], "capacity", {"lut": 10, "ff": 7680})
    spec = TrainSpec.from_net(small_net(1, [2, 2, 2]))
    record = synthesize_trainer(spec, 1, "ice40", out_dir=tmp_path, seeds=1)
    assert not record["fits"] and record["over"] == [f"{record['lut']} LUT > 10"]
    assert record["fmax_mhz"] is None and record["steps_per_s"] is None
    assert "does not fit the iCE40 HX8K ct256" in record["fmax_reason"]
    assert not list(tmp_path.rglob("nextpnr*"))
