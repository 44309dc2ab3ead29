"""Lane packing: how arrays of codes become the flat payload vectors of the units' ports.

Amaranth lays out an ``ArrayLayout`` with element 0 in the least significant bits, and a
``StructLayout`` with its first field in the least significant bits. A payload here is a list of
fields, each ``(codes, width)`` with ``codes`` shaped ``(transfers, lanes)``; the packed transfer
is the concatenation of the fields, LSB first. Vectorised with numpy: one ``int.from_bytes`` per
transfer, no per-element Python loop.
"""

import numpy as np

from helu.golden.fixed import to_signed, to_unsigned

__all__ = ["pack", "unpack", "payload_width"]


def _bits(codes, width: int) -> np.ndarray:
    codes = np.asarray(codes, dtype=np.int64)
    if codes.ndim != 2:
        raise ValueError(f"codes must be shaped (transfers, lanes), not {codes.shape}")
    unsigned = to_unsigned(codes, width)
    shifts = np.arange(width, dtype=np.int64)
    bits = (unsigned[..., None] >> shifts) & 1  # (N, lanes, width)
    return bits.reshape(codes.shape[0], -1).astype(np.uint8)


def payload_width(fields) -> int:
    """Total bits of one transfer, for ``fields`` given as ``[(lanes, width), ...]``."""
    return sum(lanes * width for lanes, width in fields)


def pack(fields) -> list[int]:
    """Pack ``[(codes (N, lanes), width), ...]`` into ``N`` payload integers (field 0 at LSB)."""
    if not fields:
        raise ValueError("nothing to pack")
    counts = {np.shape(codes)[0] for codes, _ in fields}
    if len(counts) != 1:
        raise ValueError(f"fields disagree on the number of transfers: {sorted(counts)}")
    bits = np.concatenate([_bits(codes, width) for codes, width in fields], axis=1)
    total = bits.shape[1]
    pad = (-total) % 8
    if pad:
        bits = np.pad(bits, ((0, 0), (0, pad)))
    rows = np.packbits(bits, axis=1, bitorder="little")
    return [int.from_bytes(row.tobytes(), "little") for row in rows]


def unpack(words, fields, *, signed=None) -> list[np.ndarray]:
    """Inverse of ``pack``: ``N`` payload integers to one ``(N, lanes)`` int64 array per field.

    ``fields`` is ``[(lanes, width), ...]``; ``signed`` a matching list of booleans (default: all
    signed), because a 1-bit mask or an unsigned field must not be sign-extended.
    """
    if signed is None:
        signed = [True] * len(fields)
    total = payload_width(fields)
    nbytes = (total + 7) // 8
    try:
        raw = b"".join(int(w).to_bytes(nbytes, "little") for w in words)
    except OverflowError:
        raise ValueError(f"a payload word is wider than {total} bits") from None
    bits = np.unpackbits(
        np.frombuffer(raw, dtype=np.uint8).reshape(len(words), nbytes), axis=1, bitorder="little"
    )[:, :total]
    out, offset = [], 0
    for (lanes, width), is_signed in zip(fields, signed, strict=True):
        chunk = bits[:, offset : offset + lanes * width].reshape(len(words), lanes, width)
        values = (chunk.astype(np.int64) << np.arange(width, dtype=np.int64)).sum(axis=2)
        out.append(to_signed(values, width) if is_signed else values)
        offset += lanes * width
    return out
