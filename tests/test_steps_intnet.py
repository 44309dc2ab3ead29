"""The integer network's report section and summary (helu/steps/intnet.py)."""

from helu.steps import intnet as intflow


def fake_metrics():
    def row(label, mode, t, acc, dead, band):
        return {"label": label, "mode": mode, "threshold": t, "acc": [acc, acc], "acc_mean": acc,
                "acc_std": 0.01, "dead_layers": dead, "band": band}  # fmt: skip

    return {
        "config": {"epochs": 4, "lr_shift": 3},
        "alpha_thresholds": {"0.05": -1},
        "results": [
            row("int T=0", "scratch", 0, 0.95, [0.2, 0.1], 0.0),
            row("int T=-8", "scratch", -8, 0.96, [0.1, 0.0], 0.2),
            row("float ReLU mse", "float", None, 0.94, [0.1, 0.05], None),
        ],
        "golden_net": {
            "folder": "golden-net",
            "sizes": [64, 32, 32, 10],
            "shifts": [6, 7, 8],
            "threshold": -1,
            "accuracy": {"float": 0.975, "integer": 0.972},
            "samples": 360,
            "trajectory_steps": 64,
            "snapshot_every": 16,
            "record_bits_per_step": 55000,
            "state_bits": 56640,
            "stored_bytes_npz": 1000,
        },  # fmt: skip
    }


def test_section_compares_thresholds_with_relu(tmp_path):
    text = "\n".join(intflow.section(fake_metrics(), tmp_path))
    assert "| int T=-8 | 2 | 96.00 ± 1.00 | 0.100 | 0.000 | 0.200 |" in text
    assert (
        "- T=-8 vs ReLU: +1.00 points; dead units per layer 0.100 vs 0.200, 0.000 vs 0.100" in text
    )
    assert "float 97.50 %, integer 97.20 % (360 vectors)" in text
    assert "0.05 -> -1" in text


def test_summary_keys():
    s = intflow.summary(fake_metrics())
    assert s["results"][1] == {
        "label": "int T=-8", "mode": "scratch", "threshold": -8, "acc_mean": 0.96,
        "acc_std": 0.01, "dead_layers": [0.1, 0.0], "band": 0.2, "seeds": 2,
    }  # fmt: skip
    assert s["golden_net"]["trajectory_steps"] == 64


def test_section_states_the_thresholds_its_rows_use(tmp_path):
    """The text names the T of its rows and of the golden net, not only an alpha map that none
    of them uses."""
    text = "\n".join(intflow.section(fake_metrics(), tmp_path))
    assert "T=-8 (alpha 0.5)" in text
    assert "the golden folder's network (below) uses T=-1" in text
    assert "(no row here uses those thresholds)" in text  # alpha 0.05 -> -1; the rows: 0, -8
