"""Golden vector folders: the one reader and writer (numpy only; no torch).

A golden folder holds, per *set* (one HeLU layer's tensors in one fixed-point format):

- ``<name>.npz``: 1-D arrays ``z g y mask dz`` (codes; ``mask`` as 0/1), optional float32
  ``z_float g_float``, and 0-d ``z_width z_frac g_width g_frac threshold alpha``;
- ``<name>_<field>.hex``: ``$readmemh`` files, one two's complement code per line;
- ``manifest.json``: ``{"version": 1, <meta>..., "sets": [<per-set summary>]}``.

``load_golden`` checks structure (files, keys, shapes, code ranges, threshold, finite floats,
alpha), that every file the manifest names stays inside the folder, that no set is listed twice
and that each ``.hex`` file holds exactly its npz array's codes (the hex files are what a
``$readmemh`` user reads, so a damaged one is an error, not a silent pass). It does not check
``y/mask/dz`` against ``z/g``: ``consistency_errors`` does that in numpy, and ``helu sim`` calls it
before simulating, so a golden set that contradicts its own format is reported as such, not as an
RTL mismatch. ``golden_digest`` is the hash a result records to name the golden folder it used.
"""

import json
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from helu.common import outdir
from helu.golden import fixed
from helu.golden.fixed import Format

# The golden folder kind of a unit golden set (``helu.common.outdir``); the integer network's,
# ``golden-net``, is registered by its writer, ``golden/intgolden.py``.
GOLDEN_KIND = outdir.register_kind("golden", ["manifest.json"])

__all__ = [
    "GoldenSet",
    "write_golden",
    "load_golden",
    "consistency_errors",
    "golden_digest",
    "hex_lines",
    "MANIFEST",
]

MANIFEST = "manifest.json"
VERSION = 1
CODE_FIELDS = ("z", "g", "y", "mask", "dz")
FLOAT_FIELDS = ("z_float", "g_float")
SCALARS = ("z_width", "z_frac", "g_width", "g_frac", "threshold", "alpha")


@dataclass
class GoldenSet:
    """One layer's pre-activation and gradient, quantized, with the expected unit outputs."""

    name: str  # unique in the folder, e.g. "fc1_w8"
    layer: str  # the HeLU layer's name in the model
    z: np.ndarray  # (N,) int64 codes, z_fmt
    g: np.ndarray  # (N,) int64 codes, g_fmt (upstream gradient dL/dy)
    y: np.ndarray  # (N,) int64 codes, z_fmt
    mask: np.ndarray  # (N,) bool, z > threshold
    dz: np.ndarray  # (N,) int64 codes, g_fmt
    z_fmt: Format
    g_fmt: Format
    alpha: float
    threshold: int
    z_float: np.ndarray | None = None
    g_float: np.ndarray | None = None
    stats: dict = field(default_factory=dict)

    @property
    def elements(self) -> int:
        return int(self.z.shape[0])

    def summary(self) -> dict:
        return {
            "name": self.name,
            "layer": self.layer,
            "file": f"{self.name}.npz",
            "elements": self.elements,
            "z_format": self.z_fmt.to_dict(),
            "g_format": self.g_fmt.to_dict(),
            "alpha": self.alpha,
            "threshold": self.threshold,
            "hex": {f: f"{self.name}_{f}.hex" for f in CODE_FIELDS},
            **self.stats,
        }


def _structure_errors(s: GoldenSet) -> list[str]:
    errors = []
    n = s.z.shape[0] if s.z.ndim == 1 else None
    if n is None:
        return [f"z must be 1-D, not shaped {s.z.shape}"]
    for name in CODE_FIELDS + FLOAT_FIELDS:
        array = getattr(s, name)
        if array is None and name in FLOAT_FIELDS:
            continue
        if array.shape != (n,):
            errors.append(f"{name} is shaped {array.shape}, expected ({n},) like z")
    if errors:
        return errors
    for name, fmt in (("z", s.z_fmt), ("y", s.z_fmt), ("g", s.g_fmt), ("dz", s.g_fmt)):
        array = getattr(s, name)
        if not np.issubdtype(array.dtype, np.integer):
            errors.append(f"{name} holds {array.dtype}, expected integer codes")
        elif n and (array.min() < fmt.min_code or array.max() > fmt.max_code):
            errors.append(f"{name} has codes outside {fmt} [{fmt.min_code}, {fmt.max_code}]")
    if n and not np.all((s.mask == 0) | (s.mask == 1)):
        errors.append("mask holds values other than 0 and 1")
    for name in FLOAT_FIELDS:
        array = getattr(s, name)
        if array is not None and not np.all(np.isfinite(array)):
            errors.append(f"{name} holds NaN or infinite values")
    if not np.isfinite(s.alpha) or s.alpha < 0:
        return errors + [f"alpha is {s.alpha}, not a finite number >= 0"]
    expected_t = fixed.threshold(s.alpha, s.z_fmt)
    if s.threshold != expected_t:
        errors.append(
            f"threshold {s.threshold} does not match alpha={s.alpha:g} in {s.z_fmt} "
            f"(expected {expected_t})"
        )
    return errors


def consistency_errors(s: GoldenSet) -> list[str]:
    """Disagreements of ``y``, ``mask``, ``dz`` with the integer reference; ``[]`` if none."""
    errors = []
    expected = {
        "y": fixed.forward(s.z),
        "mask": fixed.mask(s.z, s.threshold),
        "dz": fixed.backward(s.g, fixed.mask(s.z, s.threshold)),
    }
    for name, want in expected.items():
        got = np.asarray(getattr(s, name)).astype(want.dtype)
        bad = np.flatnonzero(got != want)
        if bad.size:
            i = int(bad[0])
            errors.append(
                f"{name} differs from the reference at {bad.size} elements "
                f"(first: element {i}, z={int(s.z[i])}, expected {want[i]!r}, got {got[i]!r})"
            )
    return errors


_HEX_DIGITS = np.frombuffer(b"0123456789abcdef", dtype=np.uint8)


def hex_lines(codes, width: int) -> str:
    """``$readmemh`` text: one ``width``-bit two's complement code per line, in array order
    (lower-case, zero-padded; vectorized, so checking a large folder's hex files is cheap)."""
    digits = (width + 3) // 4
    u = np.asarray(fixed.to_unsigned(codes, width), dtype=np.uint64)
    shifts = np.arange(4 * (digits - 1), -1, -4, dtype=np.uint64)
    table = np.empty((u.shape[0], digits + 1), dtype=np.uint8)
    table[:, :digits] = _HEX_DIGITS[((u[:, None] >> shifts) & np.uint64(15)).astype(np.intp)]
    table[:, digits] = ord("\n")
    return table.tobytes().decode("ascii")


def write_golden(out_dir, sets: list[GoldenSet], meta: dict, *, force=False, inputs=()) -> Path:
    """Write ``sets`` and a manifest into ``out_dir`` (replacing it); returns the manifest path.

    ``out_dir`` must be new, empty or a golden folder (``helu.common.outdir``: a folder of other
    files is refused; ``force`` replaces an unmarked golden folder; ``inputs`` may not lie inside
    it).
    Everything is written into a scratch sibling folder first and moved into place at the end,
    so a failure leaves no half-written golden folder behind.
    """
    out_dir = Path(out_dir)
    if not sets:
        raise ValueError("no golden sets to write")
    names = [s.name for s in sets]
    if len(set(names)) != len(names):
        raise ValueError(f"golden set names must be unique, got {names}")
    for s in sets:
        errors = _structure_errors(s)
        if errors:
            raise ValueError(f"golden set {s.name}: {errors[0]}")
    with outdir.staged(out_dir, "golden", force=force, inputs=inputs) as tmp:
        for s in sets:
            arrays = {f: np.asarray(getattr(s, f), dtype=np.int64) for f in CODE_FIELDS}
            arrays["mask"] = arrays["mask"].astype(np.uint8)
            for f in FLOAT_FIELDS:
                if getattr(s, f) is not None:
                    arrays[f] = np.asarray(getattr(s, f), dtype=np.float32)
            scalars = {
                "z_width": s.z_fmt.width,
                "z_frac": s.z_fmt.frac,
                "g_width": s.g_fmt.width,
                "g_frac": s.g_fmt.frac,
                "threshold": s.threshold,
                "alpha": s.alpha,
            }
            np.savez_compressed(tmp / f"{s.name}.npz", **arrays, **scalars)
            widths = {"z": s.z_fmt.width, "y": s.z_fmt.width, "mask": 1}
            for f in CODE_FIELDS:
                width = widths.get(f, s.g_fmt.width)
                (tmp / f"{s.name}_{f}.hex").write_text(hex_lines(arrays[f], width))
        summaries = [
            s.summary() | {"sha256": outdir.sha256_file(tmp / f"{s.name}.npz")} for s in sets
        ]
        manifest = {"version": VERSION, **meta, "sets": summaries}
        (tmp / MANIFEST).write_text(json.dumps(manifest, indent=2) + "\n")
    return out_dir / MANIFEST


def _inside(path: Path, rel, manifest_path: Path) -> Path:
    """``path / rel``, refused when it leaves the golden folder (``../x.npz``, ``/etc/x``)."""
    file = path / str(rel)
    if not file.resolve().is_relative_to(path.resolve()):
        raise ValueError(
            f"{manifest_path}: file {rel!r} leaves the golden folder; re-run 'helu golden'"
        )
    return file


def _hex_widths(s: GoldenSet) -> dict:
    return {"z": s.z_fmt.width, "y": s.z_fmt.width, "mask": 1, "g": s.g_fmt.width,
            "dz": s.g_fmt.width}  # fmt: skip


def _check_hex(path: Path, entry: dict, s: GoldenSet, manifest_path: Path) -> None:
    """Every ``.hex`` file the manifest lists must hold the npz array's codes, line for line."""
    hexes = entry.get("hex", {f: f"{s.name}_{f}.hex" for f in CODE_FIELDS})
    if not isinstance(hexes, dict) or set(hexes) != set(CODE_FIELDS):
        raise ValueError(f"{manifest_path}: set {s.name} must list one hex file per {CODE_FIELDS}")
    widths = _hex_widths(s)
    for f, rel in hexes.items():
        file = _inside(path, rel, manifest_path)
        if not file.is_file():
            raise ValueError(f"{file}: hex file is missing; re-run 'helu golden'")
        codes = np.asarray(getattr(s, f), dtype=np.int64)
        if file.read_bytes() != hex_lines(codes, widths[f]).encode("ascii"):
            raise ValueError(
                f"{file}: does not hold the {f} codes of set {s.name}'s npz (damaged or edited); "
                "re-run 'helu golden'"
            )


def _load_set(path: Path, entry: dict, manifest_path: Path) -> GoldenSet:
    name = entry.get("name")
    file = _inside(path, entry.get("file", f"{name}.npz"), manifest_path)
    if not file.is_file():
        raise ValueError(f"{file}: golden file is missing; re-run 'helu golden'")
    try:
        with np.load(file, allow_pickle=False) as data:
            arrays = {k: data[k] for k in data.files}
    except Exception as exc:  # ValueError, zipfile.BadZipFile, EOFError, OSError: damaged file
        raise ValueError(f"{file}: not a readable .npz ({exc}); re-run 'helu golden'") from None
    missing = [k for k in CODE_FIELDS + SCALARS if k not in arrays]
    if missing:
        raise ValueError(f"{file}: missing arrays {missing}; re-run 'helu golden'")
    try:
        s = GoldenSet(
            name=name,
            layer=str(entry.get("layer", name)),
            z=arrays["z"],
            g=arrays["g"],
            y=arrays["y"],
            mask=arrays["mask"].astype(bool),
            dz=arrays["dz"],
            z_fmt=Format(int(arrays["z_width"]), int(arrays["z_frac"])),
            g_fmt=Format(int(arrays["g_width"]), int(arrays["g_frac"])),
            alpha=float(arrays["alpha"]),
            threshold=int(arrays["threshold"]),
            z_float=arrays.get("z_float"),
            g_float=arrays.get("g_float"),
            stats={k: v for k, v in entry.items() if k not in GoldenSet.__dataclass_fields__},
        )
    except (TypeError, ValueError) as exc:
        raise ValueError(f"{file}: {exc}") from None
    if not np.all((arrays["mask"] == 0) | (arrays["mask"] == 1)):
        raise ValueError(f"{file}: mask holds values other than 0 and 1")
    errors = _structure_errors(s)
    if errors:
        raise ValueError(f"{file}: {errors[0]}")
    if "sha256" in entry and outdir.sha256_file(file) != entry["sha256"]:
        raise ValueError(
            f"{file}: its SHA-256 differs from the manifest's (replaced or damaged); "
            "re-run 'helu golden'"
        )
    _check_hex(path, entry, s, manifest_path)
    return s


def load_golden(path) -> tuple[dict, list[GoldenSet]]:
    """Read and check a golden folder; returns ``(meta, sets)``.

    Raises ``ValueError`` with a one-line message naming the file and the problem.
    """
    path = Path(path)
    manifest_path = path / MANIFEST
    if not path.is_dir():
        raise ValueError(f"{path}: no such golden folder; create one with 'helu golden'")
    if not manifest_path.is_file():
        raise ValueError(f"{manifest_path}: manifest missing; create the folder with 'helu golden'")
    try:
        manifest = json.loads(manifest_path.read_text())
    except (json.JSONDecodeError, UnicodeDecodeError) as exc:
        raise ValueError(f"{manifest_path}: not valid JSON ({exc}); re-run 'helu golden'") from None
    if not isinstance(manifest, dict) or manifest.get("version") != VERSION:
        raise ValueError(f"{manifest_path}: not a version {VERSION} golden manifest")
    entries = manifest.get("sets")
    if not isinstance(entries, list) or not entries:
        raise ValueError(f"{manifest_path}: lists no golden sets")
    if not all(isinstance(e, dict) and isinstance(e.get("name"), str) for e in entries):
        raise ValueError(f"{manifest_path}: every set needs a name")
    names = [e["name"] for e in entries]
    twice = sorted({n for n in names if names.count(n) > 1})
    if twice:
        raise ValueError(f"{manifest_path}: set {twice[0]} is listed twice; re-run 'helu golden'")
    meta = {k: v for k, v in manifest.items() if k not in ("sets", "version")}
    return meta, [_load_set(path, entry, manifest_path) for entry in entries]


def golden_digest(path) -> str:
    """SHA-256 of a golden folder's manifest, which records every npz file's SHA-256: the hash a
    result records to name the golden set it was produced from."""
    return outdir.sha256_file(Path(path) / MANIFEST)
