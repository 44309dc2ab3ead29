"""Golden folders (golden/vectors.py): round trip, refusal of damaged input, consistency check."""

import json

import numpy as np
import pytest

from helu.golden import fixed, vectors
from helu.golden.fixed import Format


def make_set(name="fc1_w8", n=300, width=8, frac=4, alpha=0.25, seed=0):
    rng = np.random.default_rng(seed)
    z_fmt, g_fmt = Format(width, frac), Format(width, frac + 2)
    z, _ = fixed.quantize(rng.normal(0, 2, n), z_fmt)
    g, _ = fixed.quantize(rng.normal(0, 0.3, n), g_fmt)
    t = fixed.threshold(alpha, z_fmt)
    m = fixed.mask(z, t)
    return vectors.GoldenSet(
        name=name, layer=name.split("_")[0], z=z, g=g, y=fixed.forward(z), mask=m,
        dz=fixed.backward(g, m), z_fmt=z_fmt, g_fmt=g_fmt, alpha=alpha, threshold=t,
        z_float=fixed.dequantize(z, z_fmt).astype(np.float32),
        stats={"z_saturated": 0},
    )  # fmt: skip


META = {"model": "test", "dataset": "synthetic", "act": "helu", "alpha": 0.25, "accuracy": 1.0}


def test_round_trip(tmp_path):
    sets = [make_set("fc1_w8"), make_set("fc2_w16", width=16, frac=10, seed=1)]
    manifest = vectors.write_golden(tmp_path / "g", sets, META)
    meta, loaded = vectors.load_golden(manifest.parent)
    assert meta["model"] == "test"
    assert [s.name for s in loaded] == ["fc1_w8", "fc2_w16"]
    for a, b in zip(sets, loaded, strict=True):
        for f in ("z", "g", "y", "mask", "dz"):
            np.testing.assert_array_equal(getattr(a, f), getattr(b, f), err_msg=f)
        assert (a.z_fmt, a.g_fmt, a.threshold) == (b.z_fmt, b.g_fmt, b.threshold)
        assert vectors.consistency_errors(b) == []
    assert loaded[0].stats["z_saturated"] == 0
    assert json.loads(manifest.read_text())["sets"][0]["elements"] == 300


def test_hex_files_hold_twos_complement(tmp_path):
    s = make_set()
    vectors.write_golden(tmp_path / "g", [s], META)
    lines = (tmp_path / "g" / "fc1_w8_z.hex").read_text().split()
    assert len(lines) == s.elements and all(len(x) == 2 for x in lines)
    np.testing.assert_array_equal(fixed.to_signed([int(x, 16) for x in lines], 8), s.z)
    assert set((tmp_path / "g" / "fc1_w8_mask.hex").read_text().split()) <= {"0", "1"}


def test_consistency_errors_catches_a_wrong_answer():
    s = make_set()
    s.dz = s.dz.copy()
    i = int(np.flatnonzero(s.mask & (s.g != 0))[0])
    s.dz[i] = 0
    errors = vectors.consistency_errors(s)
    assert len(errors) == 1 and f"element {i}" in errors[0] and errors[0].startswith("dz")
    s2 = make_set()
    s2.mask = ~s2.mask
    assert any(e.startswith("mask") for e in vectors.consistency_errors(s2))


def test_write_refuses_bad_sets_and_leaves_nothing(tmp_path):
    s = make_set()
    s.y = s.y[:-1]
    with pytest.raises(ValueError, match=r"golden set fc1_w8: y is shaped \(299,\)"):
        vectors.write_golden(tmp_path / "g", [s], META)
    assert list(tmp_path.iterdir()) == []
    s = make_set()
    s.threshold += 1
    with pytest.raises(ValueError, match="threshold .* does not match alpha"):
        vectors.write_golden(tmp_path / "g", [s], META)
    s = make_set()
    s.z = s.z * 100
    with pytest.raises(ValueError, match="z has codes outside Q8.4"):
        vectors.write_golden(tmp_path / "g", [s], META)
    with pytest.raises(ValueError, match="unique"):
        vectors.write_golden(tmp_path / "g", [make_set(), make_set()], META)
    assert list(tmp_path.iterdir()) == []


@pytest.fixture
def golden_dir(tmp_path):
    return vectors.write_golden(tmp_path / "g", [make_set()], META).parent


def test_load_golden_wrong(tmp_path, golden_dir):
    with pytest.raises(ValueError, match="no such golden folder"):
        vectors.load_golden(tmp_path / "nope")
    (golden_dir / "fc1_w8.npz").write_bytes(b"garbage")
    with pytest.raises(ValueError, match="not a readable .npz"):
        vectors.load_golden(golden_dir)
    (golden_dir / "fc1_w8.npz").unlink()
    with pytest.raises(ValueError, match="golden file is missing"):
        vectors.load_golden(golden_dir)
    (golden_dir / "manifest.json").write_text("{")
    with pytest.raises(ValueError, match="not valid JSON"):
        vectors.load_golden(golden_dir)
    (golden_dir / "manifest.json").write_text('{"version": 1, "sets": []}')
    with pytest.raises(ValueError, match="lists no golden sets"):
        vectors.load_golden(golden_dir)


def test_load_golden_refuses_tampered_arrays(golden_dir):
    path = golden_dir / "fc1_w8.npz"
    with np.load(path) as data:
        arrays = dict(data)
    arrays["z"] = arrays["z"][:10]
    np.savez(path, **arrays)
    with pytest.raises(ValueError, match=r"fc1_w8.npz: g is shaped"):
        vectors.load_golden(golden_dir)
    del arrays["dz"]
    np.savez(path, **arrays)
    with pytest.raises(ValueError, match=r"missing arrays \['dz'\]"):
        vectors.load_golden(golden_dir)
