"""Synthesis of the training engine (hw/net/trainsynth.py): Yosys cell counts against capacity."""

import pytest
from test_trainer import small_net

from helu.hw.net.trainer import TrainSpec
from helu.hw.net.trainsynth import synthesize_trainer


def test_trainsynth_target_wrong(tmp_path):
    spec = TrainSpec.from_net(small_net(1, [4, 3, 2]))
    with pytest.raises(ValueError, match="Unknown target 'gowin'"):
        synthesize_trainer(spec, 2, "gowin", out_dir=tmp_path)
    assert not any(tmp_path.iterdir())
