"""Stimulus for the cocotb benches: golden sets and corner cases, packed into port words.

A *segment* is a run of elements that share one threshold ``T`` (one golden set, or the corner
cases of one format). ``assemble`` packs the segments' lanes into transfer words with
``hw.packing`` (numpy, no per-element Python loop), pads each segment's last transfer with zeros
and records a *care* mask so the pad lanes are never checked. ``check`` compares the words a
simulator handed back with the expected ones bit-exactly (count, order and values) and describes
the first wrong element: set, layer, element index, lane, inputs, expected and got.

Expected outputs of the HeLU units come straight from the golden files (``y``, ``mask``, ``dz``);
baselines have no golden outputs, so theirs come from ``UNITS[name].reference``. Corner cases
(most negative, zero, ``T``, ``T + 1``, saturated) take their expected values from
``golden.fixed`` (HeLU units) or the unit's reference (baselines).

Field descriptions come from the unit's JSON sidecar (``ports.in.fields`` / ``ports.out.fields``:
``name``, ``lanes``, ``width``, ``signed``, ``offset``) and must be packed field 0 at the least
significant bits, as ``hw.packing`` lays them out.
"""

import json
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from helu.golden import fixed
from helu.hw import packing
from helu.hw.units import UNITS, UnitParams

__all__ = [
    "FieldSpec",
    "Segment",
    "Stimulus",
    "CheckResult",
    "fields_of",
    "params_for_set",
    "golden_segments",
    "corner_segments",
    "assemble",
    "check",
    "threshold_of",
]


@dataclass(frozen=True)
class FieldSpec:
    """One field of a stream payload: ``lanes`` elements of ``width`` bits."""

    name: str
    lanes: int
    width: int
    signed: bool = True

    @property
    def bits(self) -> int:
        return self.lanes * self.width


def fields_of(sidecar: dict, side: str) -> list[FieldSpec]:
    """The fields of port ``side`` (``"in"`` or ``"out"``) of a sidecar, LSB first.

    Raises ``ValueError`` when the sidecar's offsets do not pack the fields back to back from
    bit 0 (the layout ``hw.packing`` implements) or the total width disagrees.
    """
    try:
        port = sidecar["ports"][side]
        raw = sorted(port["fields"], key=lambda f: f["offset"])
    except (KeyError, TypeError) as exc:
        raise ValueError(
            f"sidecar has no ports.{side}.fields ({exc}); regenerate the unit"
        ) from None
    specs, offset = [], 0
    for f in raw:
        spec = FieldSpec(str(f["name"]), int(f["lanes"]), int(f["width"]), bool(f["signed"]))
        if int(f["offset"]) != offset:
            raise ValueError(
                f"sidecar field {spec.name!r} of port {side!r} starts at bit {f['offset']}, "
                f"expected {offset} (fields packed LSB first, back to back)"
            )
        offset += spec.bits
        specs.append(spec)
    if "width" in port and int(port["width"]) != offset:
        raise ValueError(
            f"sidecar port {side!r} is {port['width']} bits wide but its fields add up to {offset}"
        )
    return specs


def params_for_set(s, lanes: int, *, threshold_port: bool = False, **extra) -> UnitParams:
    """``UnitParams`` for golden set ``s``: its z format, alpha and gradient width."""
    return UnitParams(
        width=s.z_fmt.width,
        frac=s.z_fmt.frac,
        alpha=float(s.alpha),
        grad_width=s.g_fmt.width,
        lanes=lanes,
        threshold_port=threshold_port,
        **extra,
    )


@dataclass
class Segment:
    """Elements sharing one threshold: ``inputs``/``expected`` are ``(n,)`` int64 per field."""

    name: str
    layer: str
    kind: str  # "golden" or "corner"
    threshold: int | None
    inputs: dict[str, np.ndarray]
    expected: dict[str, np.ndarray]

    @property
    def elements(self) -> int:
        return int(next(iter(self.inputs.values())).shape[0])

    def meta(self) -> dict:
        return {
            "name": self.name,
            "layer": self.layer,
            "kind": self.kind,
            "threshold": self.threshold,
            "elements": self.elements,
        }


def _reference(unit: str, params: UnitParams, inputs: dict, threshold: int | None) -> dict:
    columns = {k: np.asarray(v, dtype=np.int64)[:, None] for k, v in inputs.items()}
    if threshold is not None:
        columns["threshold"] = threshold
    out = UNITS[unit].reference(params, columns)
    return {k: np.asarray(v, dtype=np.int64).reshape(-1) for k, v in out.items()}


def _unit_info(unit: str):
    if unit not in UNITS:
        raise ValueError(f"unknown unit {unit!r}; choose from {', '.join(sorted(UNITS))}")
    return UNITS[unit]


def _check_formats(unit: str, s, sidecar: dict):
    formats = {"z": s.z_fmt.width, "y": s.z_fmt.width, "g": s.g_fmt.width, "dz": s.g_fmt.width}
    for side in ("in", "out"):
        for f in fields_of(sidecar, side):
            want = formats.get(f.name)
            if want is not None and f.width != want:
                raise ValueError(
                    f"golden set {s.name} has {want}-bit {f.name} but unit {unit!r} takes "
                    f"{f.width}-bit {f.name}; generate the unit for the set's format"
                )


def threshold_of(sidecar: dict, t: int) -> int | None:
    """``T`` if the unit has a threshold (runtime port or constant), else ``None``."""
    if sidecar["ports"].get("threshold"):
        return int(t)
    if sidecar.get("params", {}).get("threshold") is not None:
        return int(t)
    return None


def golden_segments(unit: str, sets, sidecar: dict, params: UnitParams | None = None):
    """One segment per golden set, with the unit's input and expected output fields.

    HeLU units take their expected outputs from the golden files; baselines from their numpy
    reference, evaluated with ``params`` (default: ``params_for_set`` of each set).
    """
    _unit_info(unit)
    in_names = [f.name for f in fields_of(sidecar, "in")]
    out_names = [f.name for f in fields_of(sidecar, "out")]
    segments = []
    for s in sets:
        _check_formats(unit, s, sidecar)
        t = threshold_of(sidecar, s.threshold)
        const = sidecar.get("params", {}).get("threshold")
        if t is not None and not sidecar["ports"].get("threshold") and const != s.threshold:
            raise ValueError(
                f"golden set {s.name} has T={s.threshold} but the unit was built with constant "
                f"T={const}; build it for this set or with the threshold port"
            )
        golden = {
            "z": s.z,
            "g": s.g,
            "mask": s.mask.astype(np.int64),
            "y": s.y,
            "dz": s.dz,
        }
        inputs = {n: np.asarray(golden[n], dtype=np.int64) for n in in_names}
        if UNITS[unit].golden:
            expected = {n: np.asarray(golden[n], dtype=np.int64) for n in out_names}
        else:
            p = params if params is not None else params_for_set(s, 1)
            expected = _reference(unit, p, inputs, t)
            expected = {n: expected[n] for n in out_names}
        segments.append(Segment(s.name, s.layer, "golden", t, inputs, expected))
    return segments


def _corner_codes(fmt: fixed.Format, t: int | None, extra=()) -> np.ndarray:
    lo, hi = fmt.min_code, fmt.max_code
    codes = [lo, lo + 1, -2, -1, 0, 1, 2, hi - 1, hi, *extra]
    if t is not None:
        codes += [t - 1, t, t + 1]
    return np.unique(np.clip(np.array(codes, dtype=np.int64), lo, hi))


def corner_segments(
    unit: str, z_fmt, g_fmt, threshold: int | None, params: UnitParams, name: str = "corner"
):
    """Targeted cases for one format: every corner ``z`` (or mask bit) against every corner ``g``.

    Corner codes: most negative, most negative + 1, -2, -1, 0, 1, 2, max - 1, max (saturated
    values), ``T - 1``, ``T``, ``T + 1`` when the unit has a threshold, and the unit's own
    (``UnitInfo.corners``, for example ``C - 1, C, C + 1`` of clipped ReLU). Expected outputs
    come from the unit's reference (``golden.fixed`` for the HeLU units).
    """
    info = _unit_info(unit)
    t = threshold
    if info.has_threshold and t is None:
        t = fixed.threshold(params.alpha, z_fmt)
    z = _corner_codes(z_fmt, t, info.corners(params, z_fmt))
    g = _corner_codes(g_fmt, None)
    m = np.array([0, 1], dtype=np.int64)
    names = info.inputs
    first = {"z": z, "mask": m}[names[0]]
    if len(names) == 1:
        pool = {names[0]: first}
    else:
        a, b = (x.ravel() for x in np.meshgrid(first, g, indexing="ij"))
        pool = {names[0]: a, names[1]: b}
    expected = _reference(unit, params, pool, t)
    return Segment(name, name, "corner", threshold, pool, expected)


@dataclass
class Stimulus:
    """Packed transfers for one unit: what the driver sends and the scoreboard expects.

    ``in_words``/``exp_words``/``care_words`` are ``(transfers, bytes)`` uint8, little endian;
    ``bounds[s]:bounds[s + 1]`` are the transfers of segment ``s``.
    """

    lanes: int
    in_fields: list[FieldSpec]
    out_fields: list[FieldSpec]
    in_words: np.ndarray
    exp_words: np.ndarray
    care_words: np.ndarray
    bounds: np.ndarray
    segments: list[dict] = field(default_factory=list)

    @property
    def transfers(self) -> int:
        return int(self.in_words.shape[0])

    @property
    def elements(self) -> int:
        return sum(s["elements"] for s in self.segments)

    def words(self, array: np.ndarray, start: int = 0, stop: int | None = None) -> list[int]:
        """Rows of a word array as Python ints (what the simulator ports take)."""
        return [int.from_bytes(row.tobytes(), "little") for row in array[start:stop]]

    def save(self, path) -> Path:
        path = Path(path)
        meta = {
            "lanes": self.lanes,
            "in_fields": [vars(f) for f in self.in_fields],
            "out_fields": [vars(f) for f in self.out_fields],
            "segments": self.segments,
        }
        np.savez(
            path,
            in_words=self.in_words,
            exp_words=self.exp_words,
            care_words=self.care_words,
            bounds=self.bounds,
            meta=np.array(json.dumps(meta)),
        )
        return path

    @classmethod
    def load(cls, path) -> "Stimulus":
        with np.load(path, allow_pickle=False) as data:
            meta = json.loads(str(data["meta"]))
            return cls(
                lanes=int(meta["lanes"]),
                in_fields=[FieldSpec(**f) for f in meta["in_fields"]],
                out_fields=[FieldSpec(**f) for f in meta["out_fields"]],
                in_words=data["in_words"],
                exp_words=data["exp_words"],
                care_words=data["care_words"],
                bounds=data["bounds"],
                segments=meta["segments"],
            )


def _to_bytes(words: list[int], bits: int) -> np.ndarray:
    nbytes = max(1, (bits + 7) // 8)
    raw = b"".join(w.to_bytes(nbytes, "little") for w in words)
    return np.frombuffer(raw, dtype=np.uint8).reshape(len(words), nbytes).copy()


def _pack(fields: list[FieldSpec], columns: dict[str, np.ndarray], lanes: int) -> np.ndarray:
    """``(n,)`` codes per field -> ``(ceil(n / lanes), bytes)`` uint8 words, zero padded."""
    n = next(iter(columns.values())).shape[0]
    transfers = -(-n // lanes)
    grid = []
    for f in fields:
        codes = np.zeros(transfers * lanes, dtype=np.int64)
        codes[:n] = columns[f.name]
        grid.append((codes.reshape(transfers, lanes), f.width))  # (T, lanes)
    return _to_bytes(packing.pack(grid), packing.payload_width([(lanes, w) for _, w in grid]))


def assemble(segments: list[Segment], sidecar: dict) -> Stimulus:
    """Pack ``segments`` for the unit described by ``sidecar`` (one lane count for all fields)."""
    if not segments:
        raise ValueError("no stimulus segments to assemble")
    in_fields, out_fields = fields_of(sidecar, "in"), fields_of(sidecar, "out")
    lanes = {f.lanes for f in in_fields + out_fields}
    if len(lanes) != 1:
        raise ValueError(f"fields disagree on the lane count: {sorted(lanes)}")
    lanes = lanes.pop()
    ins, exps, cares, bounds = [], [], [], [0]
    for seg in segments:
        missing = [f.name for f in in_fields if f.name not in seg.inputs]
        missing += [f.name for f in out_fields if f.name not in seg.expected]
        if missing:
            raise ValueError(f"segment {seg.name} lacks fields {missing} the unit needs")
        n = seg.elements
        if n == 0:
            raise ValueError(f"segment {seg.name} holds no elements")
        ins.append(_pack(in_fields, seg.inputs, lanes))
        exps.append(_pack(out_fields, seg.expected, lanes))
        ones = {f.name: np.full(n, -1, dtype=np.int64) for f in out_fields}
        cares.append(_pack(out_fields, ones, lanes))
        bounds.append(bounds[-1] + ins[-1].shape[0])
    return Stimulus(
        lanes=lanes,
        in_fields=in_fields,
        out_fields=out_fields,
        in_words=np.concatenate(ins),
        exp_words=np.concatenate(exps),
        care_words=np.concatenate(cares),
        bounds=np.array(bounds, dtype=np.int64),
        segments=[s.meta() for s in segments],
    )


@dataclass
class CheckResult:
    """Outcome of comparing received words with a ``Stimulus``."""

    checked: int  # real (non-pad) elements compared
    mismatches: int  # elements wrong, missing or extra
    first_mismatch: dict | None
    received: int  # transfers received
    expected: int  # transfers expected

    @property
    def ok(self) -> bool:
        return self.mismatches == 0 and self.received == self.expected

    def message(self) -> str:
        if self.ok:
            return f"{self.checked} elements match"
        head = (
            f"{self.mismatches} of {self.checked} elements wrong "
            f"({self.received} transfers received, {self.expected} expected)"
        )
        first = self.first_mismatch
        if first is None:
            return head
        if first.get("problem") and first["problem"] != "value":
            return f"{head}; {first['problem']} at transfer {first['transfer']}"
        return (
            f"{head}; first: set {first['set']} (layer {first['layer']}) element "
            f"{first['element']} lane {first['lane']}: inputs {first['inputs']}, expected "
            f"{first['expected']}, got {first['got']}"
        )


def _element_values(fields, word: int, lane: int) -> dict:
    values = packing.unpack(
        [word], [(f.lanes, f.width) for f in fields], signed=[f.signed for f in fields]
    )
    return {f.name: int(v[0, lane]) for f, v in zip(fields, values, strict=True)}


def check(stim: Stimulus, got: np.ndarray) -> CheckResult:
    """Compare received words ``got`` (``(transfers, bytes)`` uint8) with ``stim`` bit-exactly.

    Order and count matter: transfer ``i`` received is compared with transfer ``i`` expected;
    missing transfers count all their elements as mismatches, extra ones ``lanes`` each.
    """
    got = np.asarray(got, dtype=np.uint8).reshape(-1, stim.exp_words.shape[1])
    n_exp, n_got = stim.transfers, got.shape[0]
    n = min(n_exp, n_got)
    lanes = stim.lanes
    # Which lanes of each transfer carry real elements (pad lanes are never checked).
    real = np.zeros(n_exp * lanes, dtype=bool)
    for s, meta in enumerate(stim.segments):
        start = int(stim.bounds[s]) * lanes
        real[start : start + meta["elements"]] = True
    real = real.reshape(n_exp, lanes)
    bad_words = np.flatnonzero(
        np.any((got[:n] & stim.care_words[:n]) != stim.exp_words[:n], axis=1)
    )
    mismatches = 0
    first = None
    if bad_words.size:
        widths = [(f.lanes, f.width) for f in stim.out_fields]
        signed = [f.signed for f in stim.out_fields]
        g_words = [int.from_bytes(bytes(r), "little") for r in got[bad_words]]
        e_words = [int.from_bytes(bytes(r), "little") for r in stim.exp_words[bad_words]]
        g_vals = packing.unpack(g_words, widths, signed=signed)
        e_vals = packing.unpack(e_words, widths, signed=signed)
        wrong = np.zeros((bad_words.size, lanes), dtype=bool)
        for gv, ev in zip(g_vals, e_vals, strict=True):
            wrong |= gv != ev
        wrong &= real[bad_words]
        mismatches += int(wrong.sum())
        rows, cols = np.nonzero(wrong)
        if rows.size:
            first = _describe(stim, int(bad_words[rows[0]]), int(cols[0]), g_words[rows[0]])
    checked = int(real[:n].sum())
    if n_got < n_exp:
        mismatches += int(real[n_got:].sum())
        checked += int(real[n_got:].sum())
        if first is None:
            first = {"problem": "missing output", "transfer": n_got}
    elif n_got > n_exp:
        mismatches += (n_got - n_exp) * lanes
        if first is None:
            first = {"problem": "extra output", "transfer": n_exp}
    return CheckResult(checked, mismatches, first, n_got, n_exp)


def _describe(stim: Stimulus, transfer: int, lane: int, got_word: int) -> dict:
    s = int(np.searchsorted(stim.bounds, transfer, side="right") - 1)
    meta = stim.segments[s]
    in_word = int.from_bytes(bytes(stim.in_words[transfer]), "little")
    exp_word = int.from_bytes(bytes(stim.exp_words[transfer]), "little")
    return {
        "problem": "value",
        "set": meta["name"],
        "layer": meta["layer"],
        "kind": meta["kind"],
        "threshold": meta["threshold"],
        "element": (transfer - int(stim.bounds[s])) * stim.lanes + lane,
        "transfer": transfer,
        "lane": lane,
        "inputs": _element_values(stim.in_fields, in_word, lane),
        "expected": _element_values(stim.out_fields, exp_word, lane),
        "got": _element_values(stim.out_fields, got_word, lane),
    }
