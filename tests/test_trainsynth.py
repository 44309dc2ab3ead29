"""Synthesis of the training engine (hw/net/trainsynth.py): Yosys cell counts against capacity."""

import shutil

import pytest

from helu.golden import intnet

if not hasattr(intnet, "IntNet"):  # the golden training step lands with the integer network
    pytest.skip(
        "golden.intnet.IntNet (the golden training step) is missing", allow_module_level=True
    )
from test_trainer import small_net

from helu.hw.net.trainer import TrainSpec
from helu.hw.net.trainsynth import synthesize_trainer


def test_trainsynth_target_wrong(tmp_path):
    spec = TrainSpec.from_net(small_net(1, [4, 3, 2]))
    with pytest.raises(ValueError, match="Unknown target 'gowin'"):
        synthesize_trainer(spec, 2, "gowin", out_dir=tmp_path)
    assert not any(tmp_path.iterdir())


@pytest.mark.slow
@pytest.mark.skipif(shutil.which("yosys") is None, reason="yosys not found on PATH")
def test_trainsynth_small_net_counts(tmp_path):
    """A small engine on the UP5K: multipliers on DSPs (2 P of them), memories counted, fits."""
    spec = TrainSpec.from_net(small_net(1, [4, 3, 2]))
    r = synthesize_trainer(spec, 2, "up5k", out_dir=tmp_path)
    assert r["fits"] and not r["over"]
    assert r["dsp"] == 4, r["cells"]
    assert r["lut"] > 0 and r["ff"] > 0
    assert (tmp_path / "up5k" / "helu_trainer_4_3_2_p2_mask" / "record.json").is_file()
