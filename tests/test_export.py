"""Golden export (golden/export.py): integer results against PyTorch autograd, and refusals."""

import json
import warnings

import numpy as np
import pytest
import torch
import torch.nn.functional as F
from torch import nn

from helu.cli import main
from helu.golden import data, fixed
from helu.golden.activations import HeLU
from helu.golden.export import capture, export_checkpoint, export_from_model
from helu.golden.fixed import Format
from helu.golden.models import ModelConfig, build
from helu.golden.train import save_checkpoint
from helu.golden.vectors import consistency_errors, load_golden

torch.set_num_threads(1)

ALPHA = 0.05


class Probe(nn.Module):
    """Identity -> HeLU -> linear head: the test chooses z exactly (z = input)."""

    def __init__(self, n=16, classes=3, alpha=ALPHA):
        super().__init__()
        self.fc1 = nn.Linear(n, n)
        with torch.no_grad():
            self.fc1.weight.copy_(torch.eye(n))
            self.fc1.bias.zero_()
        self.act1 = HeLU(alpha)
        self.out = nn.Linear(n, classes)

    def forward(self, x):
        return self.out(self.act1(self.fc1(x)))


def probe_inputs(n=16, batch=64, seed=0):
    gen = torch.Generator().manual_seed(seed)
    x = torch.randn(batch, n, generator=gen) * 0.5
    # Boundary cases: on -alpha, just above and below it, 0, and half-steps of Q8.5 around -alpha.
    special = [-ALPHA, -ALPHA + 1e-4, -ALPHA - 1e-4, 0.0, -0.0, 1e-6, -1.5 / 32, -1.6 / 32, -0.03]
    x[0, : len(special)] = torch.tensor(special)
    return x, torch.randint(0, 3, (batch,), generator=gen)


def torch_reference(model, x, targets):
    """z, dL/dy and dL/dz of act1 computed with plain autograd (independent of the exporter)."""
    z = model.fc1(x).detach().requires_grad_(True)
    y = model.act1(z)
    y.retain_grad()
    F.cross_entropy(model.out(y), targets).backward()
    return z.detach().flatten().numpy(), y.grad.flatten().numpy(), z.grad.flatten().numpy()


def disagreements(s, z, g, dz) -> list[str]:
    """Where the dequantized golden results and torch differ by more than the format allows."""
    errors = []
    z_sat = (z > fixed.dequantize(s.z_fmt.max_code, s.z_fmt)) | (
        z < fixed.dequantize(s.z_fmt.min_code, s.z_fmt)
    )
    y_err = np.abs(fixed.dequantize(s.y, s.z_fmt) - np.maximum(z, 0))[~z_sat]
    if y_err.size and y_err.max() > s.z_fmt.step / 2:
        errors.append(f"y off by {y_err.max() / s.z_fmt.step:.2f} steps")
    float_mask = z > -s.alpha
    mismatch = s.mask != float_mask
    # The quantized mask may differ only where rounding moved z across -alpha: within half a step.
    far = mismatch & (np.abs(z + s.alpha) > s.z_fmt.step / 2 * (1 + 1e-6))
    if far.any():
        errors.append(f"{int(far.sum())} mask mismatches farther than half a step from -alpha")
    dz_err = np.abs(fixed.dequantize(s.dz, s.g_fmt) - dz)[~mismatch]
    if dz_err.size and dz_err.max() > s.g_fmt.step / 2 * (1 + 1e-6):
        errors.append(f"dz off by {dz_err.max() / s.g_fmt.step:.2f} steps")
    if int(mismatch.sum()) != s.stats["mask_mismatch"]:
        errors.append(f"mask_mismatch {s.stats['mask_mismatch']} != {int(mismatch.sum())}")
    return errors


@pytest.mark.parametrize("width,frac", [(8, 5), (8, "auto"), (12, 9), (16, "auto")])
def test_golden_agrees_with_autograd(tmp_path, width, frac):
    torch.manual_seed(0)
    model = Probe()
    x, t = probe_inputs()
    z, g, dz = torch_reference(model, x, t)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", fixed.AlphaVanishesWarning)
        path = export_from_model(model, x, t, tmp_path / "g", widths=(width,), frac=frac)
    meta, sets = load_golden(path.parent)
    assert meta["act"] == "helu" and meta["alpha"] == ALPHA and meta["samples"] == x.shape[0]
    (s,) = sets
    assert s.layer == "act1" and s.z_fmt.width == width and s.elements == z.size
    assert consistency_errors(s) == []
    np.testing.assert_array_equal(s.z_float, z)
    np.testing.assert_array_equal(s.g_float, g)
    assert disagreements(s, z, g, dz) == []
    if frac == "auto":
        assert s.stats["z_saturations"] == 0 and s.stats["g_saturations"] == 0
    else:
        # The boundary inputs must exercise the band and the mismatch rule in a narrow format.
        assert s.stats["band_elements"] > 0
    if (width, frac) == (8, 5):
        # -1.6/32 rounds to -2 (-0.0625, outside the band) while the float mask passes it.
        assert s.stats["mask_mismatch"] >= 1


def test_disagreements_catches_a_wrong_answer(tmp_path):
    model = Probe()
    x, t = probe_inputs()
    z, g, dz = torch_reference(model, x, t)
    _, (s,) = load_golden(export_from_model(model, x, t, tmp_path / "g", widths=(16,)).parent)
    i = int(np.flatnonzero(s.mask & (s.g != 0))[0])
    s.dz[i] += 3
    assert any("dz off by" in e for e in disagreements(s, z, g, dz))
    assert consistency_errors(s) != []
    s.dz[i] -= 3
    s.y[int(np.argmax(s.z))] -= 2
    assert any("y off by" in e for e in disagreements(s, z, g, dz))
    s.stats["mask_mismatch"] += 1
    assert any("mask_mismatch" in e for e in disagreements(s, z, g, dz))


def test_capture_every_helu_layer_of_a_cnn():
    torch.manual_seed(1)
    model = build(ModelConfig(kind="cnn", channels=(4, 8), cnn_fc=8, act="helu", alpha=0.1))
    x = torch.randn(5, 64)
    out = capture(model, x, torch.arange(5))
    assert list(out["layers"]) == ["act1", "act2", "act3"]
    assert out["layers"]["act1"]["z"].shape == (5 * 4 * 8 * 8,)
    assert out["layers"]["act3"]["g"].shape == (5 * 8,)
    assert all(rec["alpha"] == 0.1 for rec in out["layers"].values())
    assert model.training  # the caller's mode is restored


@pytest.fixture
def checkpoint(tmp_path):
    split = data.load("digits")
    torch.manual_seed(0)
    cfg = ModelConfig(hidden=(16, 8), act="helu", alpha=ALPHA)
    model = build(cfg).eval()
    with torch.no_grad():
        acc = (model(torch.from_numpy(split.x_test)).argmax(1).numpy() == split.y_test).mean()
    path = tmp_path / "ckpt" / "digits_mlp_helu-0.05_s0.pt"
    return save_checkpoint(path, model, cfg, split, "helu", ALPHA, 0, float(acc))


def test_export_checkpoint(tmp_path, checkpoint):
    path = export_checkpoint(checkpoint, tmp_path / "golden", widths=(8, 16), max_elements=500)
    meta, sets = load_golden(path.parent)
    for key in ("model", "checkpoint", "dataset", "act", "alpha", "accuracy", "split"):
        assert key in meta, key
    assert meta["dataset"] == "digits" and meta["split"] == "test" and meta["model"] == "mlp"
    assert [s.name for s in sets] == ["act1_w8", "act1_w16", "act2_w8", "act2_w16"]
    assert all(s.elements == 500 for s in sets)
    assert all(consistency_errors(s) == [] for s in sets)
    manifest = json.loads(path.read_text())
    assert {"mask_mismatch", "z_saturations", "alpha_note"} <= set(manifest["sets"][0])
    assert (path.parent / "act1_w8_dz.hex").read_text().count("\n") == 500


def test_export_width_with_its_own_frac(tmp_path, checkpoint):
    path = export_checkpoint(checkpoint, tmp_path / "g", widths=(8, "8:5"), max_elements=300)
    meta, sets = load_golden(path.parent)
    by_name = {s.name: s for s in sets}
    assert set(by_name) == {"act1_w8", "act1_w8f5", "act2_w8", "act2_w8f5"}
    assert by_name["act1_w8f5"].z_fmt == Format(8, 5)
    assert by_name["act1_w8f5"].threshold == fixed.threshold(ALPHA, Format(8, 5))
    assert by_name["act1_w8"].stats["frac_mode"]["z"] == "auto"
    assert by_name["act1_w8f5"].stats["frac_mode"]["z"] == "given"
    assert meta["widths"] == ["8", "8:5"]
    assert all(consistency_errors(s) == [] for s in sets)


def test_cli_golden(tmp_path, checkpoint, capsys):
    out = tmp_path / "g"
    assert main(["-q", "golden", "--checkpoint", str(checkpoint), "--out", str(out)]) == 0
    assert "act2_w16" in capsys.readouterr().out
    assert load_golden(out)[0]["checkpoint"] == str(checkpoint)
    assert main(["-q", "golden", "--checkpoint", str(tmp_path / "none.pt")]) == 1
    err = capsys.readouterr().err.strip()
    assert err.count("\n") == 0 and "not found; train one with 'helu train'" in err


def test_narrow_format_refused_and_nothing_written(tmp_path, checkpoint):
    out = tmp_path / "golden"
    with pytest.raises(ValueError, match=r"layer act1 at --frac 4: alpha=0.05 leaves no negative"):
        export_checkpoint(checkpoint, out, widths=(8,), frac=4)
    assert not out.exists()
    assert list(tmp_path.glob(".golden*")) == []
    # An existing folder survives a refused export untouched.
    export_checkpoint(checkpoint, out, widths=(16,), max_elements=10)
    before = sorted(p.name for p in out.iterdir())
    with pytest.raises(ValueError, match="--allow-vanishing-alpha"):
        export_checkpoint(checkpoint, out, widths=(8,), frac=4)
    assert sorted(p.name for p in out.iterdir()) == before
    with pytest.warns(fixed.AlphaVanishesWarning):
        export_checkpoint(checkpoint, out, widths=(8,), frac=4, allow_vanishing_alpha=True)
    meta, (s, _) = load_golden(out)
    assert s.threshold == -1 and "5 fractional bits" in s.stats["alpha_note"]


def test_checkpoint_wrong(tmp_path, checkpoint):
    with pytest.raises(FileNotFoundError, match="checkpoint .*missing.pt not found"):
        export_checkpoint(tmp_path / "missing.pt", tmp_path / "g")
    bad = tmp_path / "bad.pt"
    bad.write_bytes(b"not a checkpoint")
    with pytest.raises(ValueError, match="bad.pt: not a readable checkpoint"):
        export_checkpoint(bad, tmp_path / "g")
    other = tmp_path / "other.pt"
    torch.save({"state_dict": {}}, other)
    with pytest.raises(ValueError, match="other.pt: not a helu checkpoint"):
        export_checkpoint(other, tmp_path / "g")
    ckpt = torch.load(checkpoint, weights_only=True)
    ckpt["act"] = "relu"
    torch.save(ckpt, other)
    with pytest.raises(ValueError, match="trained with 'relu'; golden vectors need a HeLU model"):
        export_checkpoint(other, tmp_path / "g")
    ckpt["act"] = "helu"
    ckpt["state_dict"].pop("fc1.weight")
    torch.save(ckpt, other)
    with pytest.raises(ValueError, match="other.pt: damaged helu checkpoint"):
        export_checkpoint(other, tmp_path / "g")
    assert not (tmp_path / "g").exists()


def test_inputs_wrong(tmp_path):
    model = Probe()
    x, t = probe_inputs()
    out = tmp_path / "g"
    with pytest.raises(ValueError, match=r"Targets of shape \(63,\) do not match inputs"):
        export_from_model(model, x, t[:-1], out)
    with pytest.raises(ValueError, match=r"Inputs of shape \(64, 15\) do not fit the model"):
        export_from_model(model, x[:, :15], t, out)
    with pytest.raises(ValueError, match="The model has no HeLU modules; swap them in"):
        export_from_model(nn.Sequential(nn.Linear(16, 3), nn.ReLU()), x, t, out)
    twice = Probe()
    twice.forward = lambda v: twice.out(twice.act1(twice.act1(twice.fc1(v))))
    with pytest.raises(ValueError, match="HeLU layer 'act1' ran 2 times in one forward pass"):
        export_from_model(twice, x, t, out)
    with pytest.raises(TypeError, match="Inputs must be a floating-point torch.Tensor"):
        export_from_model(model, x.long(), t, out)
    assert not out.exists()


@pytest.mark.parametrize(
    "kwargs,exc,message",
    [
        ({"widths": (8, 1)}, ValueError, "Width must be between 2 and 32 bits, not 1"),
        ({"widths": ()}, ValueError, "Give at least one width"),
        ({"widths": (8, 8)}, ValueError, r"Widths are listed twice: \[8, 8\]"),
        ({"widths": ("8:x",)}, ValueError, r"A width is W or W:F \(integers\), not '8:x'"),
        ({"widths": ("8:99",)}, ValueError, "Fractional bits must be between -32 and 48, not 99"),
        ({"frac": "x"}, ValueError, "frac must be 'auto' or an integer, not 'x'"),
        ({"grad_frac": 99}, ValueError, "Fractional bits must be between -32 and 48, not 99"),
        ({"max_elements": 0}, ValueError, "max_elements must be a positive integer, not 0"),
    ],
)
def test_options_wrong(tmp_path, kwargs, exc, message):
    x, t = probe_inputs()
    with pytest.raises(exc, match=message):
        export_from_model(Probe(), x, t, tmp_path / "g", **kwargs)
    assert not (tmp_path / "g").exists()
