"""`--unit mlp` in helu verilog / sim / synth, and the MLP report section (helu/steps/mlp.py)."""

import json
import shutil

import numpy as np
import pytest
from nets import random_inputs, random_model

from helu import mlp
from helu.cli import main
from helu.golden import intgolden, intmodel


@pytest.fixture
def model_dir(tmp_path):
    model = random_model(3, [64, 6, 4])
    return intmodel.save(model, tmp_path / "model"), model


def _net_folder(folder, model, n=6):
    """A minimal ``helu golden --net`` folder: model/, inference.npz, manifest.json."""
    intmodel.save(model, folder / "model")
    x = random_inputs(2, model, n)
    logits, cls = intmodel.infer(model, x)
    np.savez(folder / "inference.npz", x=x, logits=logits, cls=cls, labels=cls)
    (folder / "manifest.json").write_text(json.dumps({"kind": intgolden.KIND}))
    return folder


def test_verilog_unit_mlp(model_dir, tmp_path, capsys):
    folder, model = model_dir
    out = tmp_path / "v"
    assert main(["-q", "verilog", "--unit", "mlp", "--model", str(folder), "--macs", "4",
                 "--out", str(out)]) == 0  # fmt: skip
    meta = json.loads((out / "helu_mlp_64_6_4_p4.json").read_text())
    assert meta["lanes"] == 4 and meta["sizes"] == [64, 6, 4]
    assert meta["cycles_per_sample"] == 16 + 6 * 16 + 4 * 2 + 7 + 1
    assert "module helu_mlp_64_6_4_p4(" in (out / "helu_mlp_64_6_4_p4.v").read_text()
    # A 'helu golden --net' folder works as --model too (its model/).
    net = _net_folder(tmp_path / "net", model)
    assert mlp.load_model(net).sizes == model.sizes


@pytest.mark.parametrize(
    ("argv", "message"),
    [
        (["verilog", "--unit", "mlp"], "--unit mlp needs --model DIR"),
        (["verilog", "--unit", "mlp", "--model", "/nonexistent"], "no such model folder"),
        (["synth", "--unit", "mlp", "--model", "{model}", "--target", "ice40"],
         "unknown target for --unit mlp 'ice40'; choose from up5k, ecp5 or all"),
        (["synth", "--unit", "mlp", "--model", "{model}", "--activation", "gelu"],
         "unknown activation 'gelu'; choose from helu, igelu or all"),
        (["verilog", "--unit", "mlp", "--model", "{model}", "--macs", "0"],
         "--macs must be a positive integer, not 0"),
        (["verilog", "--unit", "mlp", "--model", "{model}", "--macs", "1000"],
         "--macs 1000: at most 256 MACs per cycle"),
        (["synth", "--unit", "mlp", "--model", "{model}", "--macs", "300"],
         "--macs 300: at most 256 MACs per cycle"),
        (["sim", "--unit", "mlp", "--golden", "{model}", "--macs", "257"],
         "--macs 257: at most 256 MACs per cycle"),
        (["sim", "--unit", "mlp", "--golden", "{model}"], "is not an integer-network golden"),
    ],
)  # fmt: skip
def test_unit_mlp_wrong(model_dir, capsys, argv, message):
    folder, _ = model_dir
    argv = [a.replace("{model}", str(folder)) for a in argv]
    assert main(argv) == 1
    err = capsys.readouterr().err.strip()
    assert err.startswith(f"helu {argv[0]}: error: ") and message in err
    assert len(err.splitlines()) == 1


@pytest.mark.slow
@pytest.mark.skipif(shutil.which("iverilog") is None, reason="Icarus Verilog not installed")
def test_sim_unit_mlp(model_dir, tmp_path, capsys):
    _, model = model_dir
    net = _net_folder(tmp_path / "net", model)
    argv = ["-q", "sim", "--unit", "mlp", "--golden", str(net), "--macs", "4"]
    assert main(argv + ["--out", str(tmp_path / "sim")]) == 0
    out = capsys.readouterr().out
    assert out.splitlines()[0].split()[:3] == ["simulator", "samples", "mismatches"]
    assert out.splitlines()[1].split()[:3] == ["icarus", "6", "0"]
    # A golden whose stored logits are wrong is a damaged golden, not an RTL mismatch.
    _damage(net)
    assert main(argv + ["--out", str(tmp_path / "sim")]) == 1
    err = capsys.readouterr().err
    assert "inconsistent with its own model" in err and "MISMATCH" not in err, err


def _damage(net, sample=4, logit=1):
    """Alter one stored logit of the golden folder ``net`` by one."""
    with np.load(net / "inference.npz") as npz:
        arrays = dict(npz)
    arrays["logits"][sample, logit] += 1
    np.savez(net / "inference.npz", **arrays)
    return net


def test_sim_unit_mlp_refuses_a_damaged_golden(model_dir, tmp_path, capsys):
    """A golden inference set whose logits were altered by one: refused before any simulator
    runs, in one line that says the golden is damaged (as the units' path does), not reported
    as an RTL mismatch; the flow's run_sim refuses it too."""
    _, model = model_dir
    net = _damage(_net_folder(tmp_path / "net", model))
    out = tmp_path / "sim"
    argv = ["sim", "--unit", "mlp", "--golden", str(net), "--macs", "4", "--out", str(out)]
    assert main(argv) == 1
    captured = capsys.readouterr()
    err = captured.err.strip().splitlines()
    assert len(err) == 1 and err[0].startswith("helu sim: error: "), err
    assert f"{net}: its inference vectors are inconsistent with its own model" in err[0]
    assert "logits differs from the model at 1 places (first [4 1])" in err[0], err[0]
    assert "re-create it with 'helu golden --net'" in err[0], err[0]
    assert "MISMATCH" not in captured.out and not out.exists()
    with pytest.raises(ValueError, match="inconsistent with its own model"):
        mlp.run_sim(net, simulators=["icarus"], lanes=4, out=out)


def _summary(**synth):
    base = {
        "activation": "helu",
        "target": "up5k",
        "device": "iCE40 UP5K sg48",
        "lanes": 8,
        "lut": 600,
        "ff": 620,
        "carry": 270,
        "dsp": 7,
        "ram": 13,
        "fits": True,
        "fmax_mhz": 30.0,
        "fmax_seeds": [29.0, 30.0, 31.0],
        "cycles_per_sample": 445,
        "samples_per_s": 30e6 / 445,
        "mmacs_per_s": 30 * 3392 / 445,
    }
    gelu = base | {"activation": "igelu", "lut": 900, "ff": 700, "fmax_mhz": None,
                   "fmax_reason": "place and route not requested", "samples_per_s": None,
                   "mmacs_per_s": None}  # fmt: skip
    return {
        "sizes": [64, 32, 32, 10],
        "shifts": [6, 7, 9],
        "lanes": 8,
        "macs": 3392,
        "accuracy": {"integer": 0.9, "float": 0.91},
        "cycles_per_sample": 445,
        "latency": 443,
        "sim": [
            {
                "simulator": "icarus",
                "checked": 360,
                "mismatches": 0,
                "message": "all 360 samples bit-exact (3600 logits, 360 classes)",
                "accuracy": 0.9,
                "cycles_per_sample": 445.0,
                "ideal": 424.0,
                "seconds": 12.0,
            }
        ],
        "synth": [base | synth, gelu],
    }


def test_report_section_states_what_was_measured(tmp_path):
    from helu.steps.mlp import STEP

    text = "\n".join(STEP.section(_summary(), {}, tmp_path))
    assert "445 cycles per sample at full rate (1.050 x ideal)" in text
    assert "all 360 samples bit-exact" in text
    assert "i-GELU in place of HeLU costs +300 LUT4 and +80 FF for the whole network (fits)" in text
    assert "8 x 30.0 MHz = 240 MMAC/s peak" in text and "16 x 23-29 MHz" in text
    assert "atol=1e-3" in text
    summary = STEP.summary(_summary())
    assert summary["sim"][0]["mismatches"] == 0 and summary["synth"][0]["fmax_mhz"] == 30.0


def test_report_section_without_fmax_or_sim(tmp_path):
    from helu.steps.mlp import STEP

    data = _summary(fmax_mhz=None, fmax_reason="does not fit", samples_per_s=None)
    data["sim"] = []
    data["sim_skipped"] = "no simulator available"
    text = "\n".join(STEP.section(data, {}, tmp_path))
    assert "RTL simulation skipped: no simulator available" in text
    assert "MMAC/s peak" not in text  # no Fmax measured: no throughput claimed


def test_synth_refuses_a_model_beyond_the_block_rams(tmp_path, capsys):
    """Refused before any tool runs, saying what the engine needs and what the device has."""
    from helu.hw.net.mlp import MLP
    from helu.hw.net.synth import check_memory, ebr_blocks
    from helu.hw.units import unelaborated

    assert ebr_blocks(64, 473) == 8 and ebr_blocks(32, 34) == 2 and ebr_blocks(16, 257) == 2
    big = random_model(4, [512, 256, 10])
    intmodel.save(big, tmp_path / "big")
    out = tmp_path / "synth"
    assert main(["synth", "--unit", "net", "--model", str(tmp_path / "big"), "--target", "up5k",
                 "--out", str(out)]) == 1  # fmt: skip
    err = capsys.readouterr().err.strip()
    assert (
        len(err.splitlines()) == 1 and "needs about 272 block RAMs (weights 264, biases 4" in err
    ), err
    assert "the iCE40 UP5K sg48 has 30" in err and not out.exists()
    small = check_memory(unelaborated(MLP(random_model(5, [16, 8, 4]), 4)), "up5k")
    assert small["total"] <= small["has"] == 30


@pytest.mark.parametrize(
    ("argv", "message"),
    [
        (["--stash", "q"], "--stash must be one of mask, z, not 'q'"),
        (["--target", "gowin"], "unknown target for --unit trainer 'gowin'"),
        (["--macs", "0"], "--macs"),
        (["--macs", "1000"], "--macs 1000: at most 256 MACs per cycle"),
        (["--seeds", "-1"], "--seeds must be 0 (area only) or more"),
    ],
)
def test_synth_unit_trainer_wrong(tmp_path, capsys, argv, message):
    """`helu synth --unit trainer`: each bad option in one line, and no --out folder made."""
    out = tmp_path / "synth"
    assert main(["synth", "--unit", "trainer", "--out", str(out), *argv]) != 0
    err = capsys.readouterr().err
    assert message in err and len(err.strip().splitlines()) == 1
    assert not out.exists()
