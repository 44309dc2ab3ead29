"""Verilog of a network engine with its JSON sidecar: the one writer for both engines.

``generate(engine, out_dir)`` writes ``<top>.v`` (a comment header, then Amaranth's Verilog,
the memories' initial contents included) and ``<top>.json``, the sidecar the cocotb benches and
synthesis read, for an inference engine (``hw.net.mlp.MLP``) or a training engine
(``hw.net.trainer.Trainer``). The simulators and the synthesis flow read the same file.

The top module is named by :func:`top_name`: ``helu_<role>_<sizes>_p<P>`` with role ``mlp``
(inference) or ``trainer``, plus the build's non-default choice (``_igelu``: the i-GELU
activation; ``_z``: the trainer's ``z`` stash; ``_sb_mac16``: the multipliers as iCE40 DSPs in
8x8 mode, ``hw.net.mac``). Its contents depend on the weights, which the
sidecar's ``model_sha256`` identifies.

Sidecar, both roles: ``unit``, ``top``, ``verilog``, ``lanes``, ``sizes``, ``layers`` (the
ops described), ``ops`` (``golden.layers`` dictionaries), ``macs`` (multiply-accumulates per
sample), ``input_transfers``, ``input_index``, ``cycles_per_sample``, ``ideal_cycles``,
``weight_words``, ``bias_words``, ``model_sha256``, ``dsp``, ``primitives`` (cells whose
models a simulator needs beside the file) and ``ports`` (each stream's payload fields,
``hw.verilog.payload_fields``). Inference adds ``activation``, ``shifts``, ``layer_cycles``,
``latency``; training adds ``stash``, ``classes``, ``words``, ``label_bits``, ``cls_bits``,
``addr_bits``.
"""

import hashlib
import json
import os
from pathlib import Path

from amaranth.hdl import Shape, Value

from helu.hw.net.mlp import MLP
from helu.hw.net.trainer import Trainer
from helu.hw.verilog import Generated, convert, payload_fields

__all__ = ["generate", "top_name", "describe"]


def _role(engine) -> str:
    if isinstance(engine, MLP):
        return "mlp"
    if isinstance(engine, Trainer):
        return "trainer"
    raise TypeError(f"a network engine (hw.net.mlp.MLP or hw.net.trainer.Trainer), not {engine!r}")


def _variant(engine) -> str:
    """The build's non-default choices (``_``-joined), or ``""``."""
    if isinstance(engine, MLP):
        parts = [] if engine.activation == "helu" else [engine.activation]
    else:
        parts = [] if engine.stash == "mask" else [engine.stash]
        parts += ["rr"] if engine.read_register else []
    return "_".join(parts + ([engine.dsp] if engine.dsp else []))


def top_name(engine) -> str:
    """``helu_<role>_<sizes>_p<P>[_<variant>]``, for example ``helu_mlp_64_32_32_10_p8``,
    ``helu_trainer_64_32_32_10_p8_z``, ``helu_mlp_64_32_32_10_p16_sb_mac16`` or
    ``helu_trainer_64_32_32_10_p8_rr`` (a read register: ``Trainer.read_register``)."""
    name = f"helu_{_role(engine)}_" + "_".join(str(s) for s in engine.sizes) + f"_p{engine.lanes}"
    variant = _variant(engine)
    return name + (f"_{variant}" if variant else "")


def _model_digest(engine) -> str:
    h = hashlib.sha256()
    for w in engine.image.weights + engine.image.biases:
        h.update(int(w).to_bytes(64, "little"))
    if isinstance(engine, MLP):
        h.update(json.dumps(engine.model.shifts).encode())
    else:
        s = engine.spec
        shifts = (s.forward_shifts, s.delta_shifts, s.grad_shifts, s.bias_shifts, s.threshold)
        h.update(json.dumps([list(map(int, v)) if isinstance(v, tuple) else int(v)
                             for v in shifts]).encode())  # fmt: skip
    return h.hexdigest()


def _stream(name: str, interface) -> dict:
    shape = interface.payload.shape()
    return {
        "data": f"{name}__payload",
        "valid": f"{name}__valid",
        "ready": f"{name}__ready",
        "width": Shape.cast(shape).width,
        "fields": payload_fields(shape),
    }


def describe(engine) -> dict:
    """The sidecar dictionary of ``engine``."""
    top = top_name(engine)
    meta = {
        "unit": _role(engine),
        "top": top,
        "verilog": f"{top}.v",
        "lanes": engine.lanes,
        "sizes": list(engine.sizes),
        "layers": [op.describe() for op in engine.ops],
        "ops": [op.to_dict() for op in engine.ops],
        "macs": engine.macs,
        "input_transfers": engine.input_transfers,
        "input_index": engine.input_index.tolist(),
        "cycles_per_sample": engine.cycles_per_sample,
        "ideal_cycles": engine.ideal_cycles,
        "weight_words": engine.weight_words,
        "bias_words": len(engine.image.biases),
        "model_sha256": _model_digest(engine),
        "dsp": engine.dsp,
        # Cells the simulators take from Yosys's models (hw.net.mac.primitive_models).
        "primitives": ["SB_MAC16"] if engine.dsp == "sb_mac16" else [],
    }
    streams = {"in": "i", "out": "o", "load": "load"}
    if isinstance(engine, MLP):
        meta |= {
            "activation": engine.activation,
            "shifts": engine.model.shifts,
            "layer_cycles": engine.layer_cycles,
            "latency": engine.latency,
        }
    else:
        meta |= {
            "stash": engine.stash,
            "read_register": engine.read_register,
            "classes": engine.sizes[-1],
            "words": engine.words,
            "label_bits": len(Value.cast(engine.i.payload.label)),
            "cls_bits": len(Value.cast(engine.o.payload.cls)),
            "addr_bits": len(Value.cast(engine.read.payload.addr)),
        }
        streams |= {"read": "read", "rdata": "rdata"}
    meta["ports"] = {
        "clk": "clk",
        "rst": "rst",
        "rst_active_low": False,
        **{key: _stream(name, getattr(engine, name)) for key, name in streams.items()},
        "threshold": None,
    }
    return meta


def _header(meta: dict) -> str:
    p = meta["ports"]
    what = (
        f"integer inference engine, {meta['activation']} between layers"
        if meta["unit"] == "mlp"
        else f"integer training engine, {meta['stash']} stash"
    )
    lines = [
        f"HeLU toolkit: {what}; {'-'.join(map(str, meta['sizes']))} "
        f"({', '.join(meta['layers'])}), {meta['lanes']} lanes",
        f"top: {meta['top']}; model sha256 {meta['model_sha256'][:16]}",
        f"cycles per sample at full rate: {meta['cycles_per_sample']} ({meta['macs']} MACs)",
        "clock clk, synchronous reset rst (active high; drops the sample in progress, keeps the "
        "weights)",
    ]
    for key, s in p.items():
        if not isinstance(s, dict):
            continue
        fields = ", ".join(
            f"{f['name']} {f['lanes']} x {'s' if f['signed'] else 'u'}{f['width']} at bit "
            f"{f['offset']}"
            for f in s["fields"]
        )
        lines.append(
            f"{key}: {s['data']}[{s['width'] - 1}:0] ({fields}), {s['valid']}, {s['ready']}"
        )
    return "".join(f"// {line}\n" for line in lines) + "\n"


def generate(engine, out_dir) -> Generated:
    """Write ``engine``'s ``<top>.v`` and ``<top>.json`` into ``out_dir`` (each written whole:
    through a temporary file, so a reader never sees half a file)."""
    meta = describe(engine)
    text = convert(engine, meta["top"])
    out_dir = Path(out_dir)
    out_dir.mkdir(parents=True, exist_ok=True)
    v_path = out_dir / meta["verilog"]
    j_path = out_dir / f"{meta['top']}.json"
    for path, content in ((v_path, _header(meta) + text), (j_path, json.dumps(meta, indent=2))):
        tmp = path.with_name(path.name + ".tmp")
        tmp.write_text(content + ("" if content.endswith("\n") else "\n"))
        os.replace(tmp, path)
    return Generated(top=meta["top"], verilog=v_path, sidecar=j_path, meta=meta)
