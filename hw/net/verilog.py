"""Verilog of the MLP engine with its JSON sidecar (what the cocotb bench and synthesis read).

``generate(model, lanes, out_dir)`` writes ``<top>.v`` (a comment header, then Amaranth's
Verilog, the memories' initial contents included) and ``<top>.json``, the sidecar of the units
(``hw.verilog``: ``top``, ``latency``, ``ports.clk/rst/in/out`` with their payload fields) plus
``ports.load`` (the weight and bias write port, fields ``addr`` then ``data``) and the engine's
figures: ``lanes``, ``sizes``, ``shifts``, ``macs``, ``cycles_per_sample``, ``weight_words``,
``bias_words``, ``activation``. The top module is named after the network and ``P``
(``helu_mlp_64_32_32_10_p8``; ``_igelu`` for the baseline build); its contents depend on the
weights, which the sidecar's ``model_sha256`` identifies.
"""

import hashlib
import json
from pathlib import Path

from amaranth.back import verilog
from amaranth.hdl import Shape

from helu.hw.net.mlp import MLP
from helu.hw.verilog import Generated, payload_fields

__all__ = ["generate", "top_name", "describe"]


def top_name(sizes, lanes: int, activation: str = "helu") -> str:
    """``helu_mlp_<sizes>_p<lanes>`` (plus ``_igelu`` for the i-GELU build)."""
    name = "helu_mlp_" + "_".join(str(s) for s in sizes) + f"_p{lanes}"
    return name + ("" if activation == "helu" else f"_{activation}")


def _model_digest(engine: MLP) -> str:
    h = hashlib.sha256()
    for w in engine.image.weights + engine.image.biases:
        h.update(int(w).to_bytes(64, "little"))
    h.update(json.dumps(engine.model.shifts).encode())
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


def describe(engine: MLP) -> dict:
    """The sidecar dictionary of ``engine``."""
    model = engine.model
    top = top_name(model.sizes, engine.lanes, engine.activation)
    return {
        "unit": "mlp",
        "top": top,
        "verilog": f"{top}.v",
        "activation": engine.activation,
        "lanes": engine.lanes,
        "sizes": model.sizes,
        "shifts": model.shifts,
        "macs": engine.macs,
        "input_transfers": engine.input_transfers,
        "input_index": engine.input_index.tolist(),
        "layers": [op.describe() for op in model.ops],
        "layer_cycles": engine.layer_cycles,
        "ideal_cycles": engine.ideal_cycles,
        "cycles_per_sample": engine.cycles_per_sample,
        "latency": engine.latency,
        "weight_words": engine.weight_words,
        "bias_words": len(engine.image.biases),
        "model_sha256": _model_digest(engine),
        "ports": {
            "clk": "clk",
            "rst": "rst",
            "rst_active_low": False,
            "in": _stream("i", engine.i),
            "out": _stream("o", engine.o),
            "load": _stream("load", engine.load),
            "threshold": None,
        },
    }


def _header(meta: dict) -> str:
    p = meta["ports"]
    lines = [
        f"HeLU toolkit: integer MLP engine {'-'.join(map(str, meta['sizes']))}, "
        f"{meta['lanes']} MACs per cycle, {meta['activation']} between layers",
        f"top: {meta['top']}; model sha256 {meta['model_sha256'][:16]}",
        f"cycles per sample at full rate: {meta['cycles_per_sample']} "
        f"({meta['macs']} MACs); latency {meta['latency']} cycles after the last input",
        "clock clk, synchronous reset rst (active high; drops the sample in progress, keeps the "
        "weights)",
    ]
    for key in ("in", "out", "load"):
        s = p[key]
        fields = ", ".join(
            f"{f['name']} {f['lanes']} x {'s' if f['signed'] else 'u'}{f['width']} at bit "
            f"{f['offset']}"
            for f in s["fields"]
        )
        lines.append(
            f"{key}: {s['data']}[{s['width'] - 1}:0] ({fields}), {s['valid']}, {s['ready']}"
        )
    return "".join(f"// {line}\n" for line in lines) + "\n"


def generate(model, lanes: int, out_dir, *, activation: str = "helu") -> Generated:
    """Build ``MLP(model, lanes, activation=...)``; write ``<top>.v`` and ``<top>.json``."""
    engine = MLP(model, lanes, activation=activation)
    meta = describe(engine)
    text = verilog.convert(engine, name=meta["top"], emit_src=False)
    out_dir = Path(out_dir)
    out_dir.mkdir(parents=True, exist_ok=True)
    v_path = out_dir / meta["verilog"]
    j_path = out_dir / f"{meta['top']}.json"
    v_path.write_text(_header(meta) + text)
    j_path.write_text(json.dumps(meta, indent=2) + "\n")
    return Generated(top=meta["top"], verilog=v_path, sidecar=j_path, meta=meta)
