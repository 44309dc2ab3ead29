"""Verilog generation for the registered units, with a JSON sidecar that describes the ports.

``generate(unit, params, out_dir)`` builds ``UNITS[unit]`` with ``params``, converts it with
Amaranth (``emit_src=False``: no source paths) and writes two files named after the top module:

- ``<top>.v``: a comment header (unit, parameters, threshold ``T``, latency, port map), then
  Amaranth's Verilog. Deterministic: the same unit and parameters give the same bytes (no paths,
  no timestamps).
- ``<top>.json``: the sidecar the cocotb benches and the synthesis flow read::

    {"unit": ..., "top": ..., "verilog": "<top>.v", "axis": false,
     "params": {the parameters the unit uses, "threshold": T or null},
     "latency": cycles,
     "ports": {"clk": ..., "rst": ..., "rst_active_low": false,
               "in":  {"data", "valid", "ready": port names, "width": port bits,
                       "fields": [{"name", "lanes", "width", "signed", "offset"}, ...]},
               "out": {same shape},
               "threshold": {"name", "width", "signed": true} or null},
     "lane_packing": "one sentence"}

  The fields come from the unit's stream payload layouts, so every unit that follows the
  ``hw.units`` contract gets a sidecar without extra code. Every port name and width recorded is
  checked against the module header Yosys wrote.

Amaranth names the ports after the signature paths: ``i__payload``, ``i__valid``, ``i__ready``,
``o__payload``, ``o__valid``, ``o__ready``, ``threshold``, plus ``clk`` and ``rst`` (active high)
of the ``sync`` domain; all are plain (unsigned) vectors in Verilog. With ``axis=True`` a thin
wrapper renames them AXI4-Stream style: ``s_axis_tdata/tvalid/tready``,
``m_axis_tdata/tvalid/tready``, clock ``aclk`` and active-low reset ``aresetn``; ``tdata`` is
zero-padded to a whole number of bytes, as AXI4-Stream requires.
"""

import json
import re
from dataclasses import dataclass
from pathlib import Path

from amaranth.back import verilog
from amaranth.hdl import ClockDomain, ClockSignal, Module, ResetSignal, Shape
from amaranth.lib import data, wiring
from amaranth.lib.wiring import In, Out

from helu.golden import fixed
from helu.hw.units import PARAMS, UNITS, UnitParams

__all__ = ["Generated", "AxisWrapper", "generate", "top_name", "describe", "payload_fields"]


@dataclass(frozen=True)
class Generated:
    """What ``generate`` wrote: the top module name, both file paths and the sidecar contents."""

    top: str
    verilog: Path
    sidecar: Path
    meta: dict


def _axis_bits(bits: int) -> int:
    return -(-bits // 8) * 8


def _payload_bits(interface) -> int:
    return Shape.cast(interface.payload.shape()).width


class AxisWrapper(wiring.Component):
    """AXI4-Stream port names around a unit that follows the ``hw.units`` contract.

    Parameters
    ----------
    unit : wiring.Component
        The wrapped unit (ports ``i``, ``o`` and maybe ``threshold``).

    Members
    -------
    aclk : ``In(1)``
        Clock of the unit's ``sync`` domain.
    aresetn : ``In(1)``
        Synchronous reset, active low.
    s_axis_tdata, s_axis_tvalid, s_axis_tready :
        The unit's input stream; ``tdata`` is the payload zero-extended to whole bytes (the
        padding bits are ignored).
    m_axis_tdata, m_axis_tvalid, m_axis_tready :
        The unit's output stream; the padding bits of ``tdata`` are 0.
    threshold : ``In(signed(n))``
        Only when the unit has a runtime threshold port.

    Timing is the unit's: ``latency`` is the unit's latency; no logic is added.
    """

    def __init__(self, unit):
        self._unit = unit
        self._in_bits = _payload_bits(unit.i)
        self._out_bits = _payload_bits(unit.o)
        members = {
            "aclk": In(1),
            "aresetn": In(1),
            "s_axis_tdata": In(_axis_bits(self._in_bits)),
            "s_axis_tvalid": In(1),
            "s_axis_tready": Out(1),
            "m_axis_tdata": Out(_axis_bits(self._out_bits)),
            "m_axis_tvalid": Out(1),
            "m_axis_tready": In(1),
        }
        if "threshold" in unit.signature.members:
            members["threshold"] = In(unit.signature.members["threshold"].shape)
        super().__init__(members)

    @property
    def unit(self):
        return self._unit

    @property
    def latency(self) -> int:
        return self._unit.latency

    def elaborate(self, platform):
        m = Module()
        m.domains.sync = ClockDomain("sync")
        m.submodules.unit = unit = self._unit
        m.d.comb += [
            ClockSignal("sync").eq(self.aclk),
            ResetSignal("sync").eq(~self.aresetn),
            unit.i.payload.eq(self.s_axis_tdata[: self._in_bits]),
            unit.i.valid.eq(self.s_axis_tvalid),
            self.s_axis_tready.eq(unit.i.ready),
            self.m_axis_tdata.eq(unit.o.payload.as_value()),
            self.m_axis_tvalid.eq(unit.o.valid),
            unit.o.ready.eq(self.m_axis_tready),
        ]
        if "threshold" in unit.signature.members:
            m.d.comb += unit.threshold.eq(self.threshold)
        return m


def _used_params(unit: str, params: UnitParams, component) -> dict:
    out = UNITS[unit].shaping(params)
    out["threshold"] = getattr(component, "threshold_const", None)
    return out


def _name_part(name: str, value) -> str:
    if name == "threshold_port":
        return "tport" if value else ""
    if name == "threshold":
        return "" if value is None else f"t{value}".replace("-", "m")
    if name == "alpha":
        return "a" + f"{value:g}".replace("-", "m").replace(".", "p").replace("+", "")
    abbrev = PARAMS[name].abbrev if name in PARAMS else name
    text = f"{abbrev}{value}".replace("-", "m").replace(".", "p")
    return re.sub(r"[^A-Za-z0-9_]", "_", text)


def top_name(unit: str, used: dict, *, axis: bool = False) -> str:
    """Top module name from the unit and the parameters it uses (a legal Verilog identifier).

    For example ``helu_forward_train_w8_l16_f4_tm1`` (``T = -1``; ``m`` stands for minus) or
    ``helu_backward_z_w8_l1_g16_tport``. Alpha is summarized by ``T`` where the unit has one.
    """
    parts = ["helu", re.sub(r"[^A-Za-z0-9]", "_", unit)]
    for name, value in used.items():
        if name == "alpha" and "threshold" in used:
            continue
        part = _name_part(name, value)
        if part:
            parts.append(part)
    if axis:
        parts.append("axis")
    return "_".join(parts)


def payload_fields(layout) -> list[dict]:
    """The sidecar's field list for a payload ``StructLayout`` of ``ArrayLayout`` fields.

    One ``{"name", "lanes", "width", "signed", "offset"}`` per field, in layout order (field 0 at
    the LSB); ``offset`` is the bit where lane 0 of the field starts, lane ``n`` at
    ``offset + n * width``.
    """
    fields = []
    for name, field in layout:
        if isinstance(field.shape, data.ArrayLayout):
            lanes, elem = field.shape.length, Shape.cast(field.shape.elem_shape)
        else:
            lanes, elem = 1, Shape.cast(field.shape)
        fields.append(
            {
                "name": name,
                "lanes": lanes,
                "width": elem.width,
                "signed": elem.signed,
                "offset": field.offset,
            }
        )
    return fields


def describe(unit: str, params: UnitParams, component, *, axis: bool = False) -> dict:
    """The sidecar dictionary of ``component`` (built from ``UNITS[unit]`` with ``params``)."""
    inner = component.unit if axis else component
    used = _used_params(unit, params, inner)
    in_fields = payload_fields(inner.i.payload.shape())
    out_fields = payload_fields(inner.o.payload.shape())
    in_bits, out_bits = _payload_bits(inner.i), _payload_bits(inner.o)
    if axis:
        names = {
            "clk": "aclk",
            "rst": "aresetn",
            "in": ("s_axis_tdata", "s_axis_tvalid", "s_axis_tready", _axis_bits(in_bits)),
            "out": ("m_axis_tdata", "m_axis_tvalid", "m_axis_tready", _axis_bits(out_bits)),
        }
    else:
        names = {
            "clk": "clk",
            "rst": "rst",
            "in": ("i__payload", "i__valid", "i__ready", in_bits),
            "out": ("o__payload", "o__valid", "o__ready", out_bits),
        }
    ports = {"clk": names["clk"], "rst": names["rst"], "rst_active_low": axis}
    for key, fields in (("in", in_fields), ("out", out_fields)):
        data_name, valid, ready, bits = names[key]
        ports[key] = {
            "data": data_name,
            "valid": valid,
            "ready": ready,
            "width": bits,
            "fields": fields,
        }
    if "threshold" in inner.signature.members:
        shape = Shape.cast(inner.signature.members["threshold"].shape)
        ports["threshold"] = {"name": "threshold", "width": shape.width, "signed": shape.signed}
    else:
        ports["threshold"] = None

    def order(fields):
        return ", ".join(f"{f['name']} ({f['lanes']} x {f['width']} bits)" for f in fields)

    packing = (
        f"Field 0 / lane 0 at the LSB, fields in order (in: {order(in_fields)}; "
        f"out: {order(out_fields)}), each field's lanes contiguous, lane n of a field at bit "
        f"offset + n * width, two's complement for signed fields (hw.packing)"
    )
    if axis:
        packing += "; tdata is zero-padded to whole bytes, padding ignored on input and 0 on output"
    top = top_name(unit, used, axis=axis)
    return {
        "unit": unit,
        "top": top,
        "verilog": f"{top}.v",
        "axis": axis,
        "params": used,
        "latency": component.latency,
        "ports": ports,
        "lane_packing": packing + ".",
    }


def _header(meta: dict, description: str, note: str | None) -> str:
    p = meta["ports"]
    params = ", ".join(f"{k}={v}" for k, v in meta["params"].items() if k != "threshold")
    t = meta["params"]["threshold"]
    lines = [
        f"HeLU toolkit: unit {meta['unit']} ({description})" if description else "",
        f"top: {meta['top']}",
        f"parameters: {params}",
        (
            f"threshold: T = {t} (mask = z > T)"
            if t is not None
            else (
                f"threshold: runtime input port {p['threshold']['name']} "
                f"(signed {p['threshold']['width']} bits, mask = z > threshold)"
                if p["threshold"]
                else "threshold: none"
            )
        ),
        f"latency: {meta['latency']} cycle(s); one transfer per cycle; full backpressure",
        f"clock {p['clk']}, synchronous reset {p['rst']} "
        f"(active {'low' if p['rst_active_low'] else 'high'}; clears valid only)",
    ]
    if note:
        lines.append(f"note: {note}")
    for key, direction in (("in", "input stream"), ("out", "output stream")):
        s = p[key]
        lines.append(
            f"{direction}: data {s['data']}[{s['width'] - 1}:0], valid {s['valid']}, "
            f"ready {s['ready']}"
        )
        for f in s["fields"]:
            kind = "signed" if f["signed"] else "unsigned"
            lines.append(
                f"  {f['name']}: {f['lanes']} lane(s) x {kind} {f['width']} bit(s); lane n at "
                f"{s['data']}[{f['offset']} + {f['width']}*n +: {f['width']}]"
            )
    lines.append(f"lane packing: {meta['lane_packing']}")
    return "".join(f"// {line}\n" if line else "" for line in lines) + "\n"


_PORT_RE = re.compile(r"^\s*(input|output)\s+(?:(?:signed\s+)?\[(\d+):0\]\s+)?(\w+)\s*;", re.M)


def _check_ports(text: str, meta: dict):
    """Every port name and width the sidecar records must be what the Verilog declares."""
    start = text.index(f"module {meta['top']}(")
    body = text[start : text.index("endmodule", start)]
    declared = {name: (d, int(msb) + 1 if msb else 1) for d, msb, name in _PORT_RE.findall(body)}
    p = meta["ports"]
    expect = {p["clk"]: ("input", 1), p["rst"]: ("input", 1)}
    for key, direction in (("in", "input"), ("out", "output")):
        s = p[key]
        back = "output" if direction == "input" else "input"
        expect[s["data"]] = (direction, s["width"])
        expect[s["valid"]] = (direction, 1)
        expect[s["ready"]] = (back, 1)
    if p["threshold"]:
        expect[p["threshold"]["name"]] = ("input", p["threshold"]["width"])
    if declared != expect:
        raise RuntimeError(
            f"{meta['top']}: Verilog ports {sorted(declared.items())} differ from the sidecar's "
            f"{sorted(expect.items())}"
        )


_TRIGGER = re.compile(
    r"^(\s*)reg (\\\$auto\$verilog_backend\.cc:\d+:dump_module\$\d+) += 0;$", re.M
)


def convert(component, top: str) -> str:
    """Amaranth's Verilog of ``component`` as module ``top``, made to start the same under every
    simulator and language mode.

    Yosys's Verilog evaluates each ``always @*`` block at time 0 through a trigger register with
    a declaration initializer (``reg \\$auto$...dump_module$1 = 0``, read by an empty ``if`` in
    every block). Verilog-2005 simulators see an event there; SystemVerilog ones (``iverilog
    -g2012``) do not, so no combinational block runs until one of its inputs changes, and a
    design held in reset from time 0 latches X. Each trigger is therefore also set by
    ``initial #0`` (after every ``always`` block waits on it), outside synthesis and Verilator,
    whose settle phase evaluates everything at time 0 and which rejects delays without
    ``--timing``. ``sim.plain`` checks the engines under each mode.
    """
    text = verilog.convert(component, name=top, emit_src=False)
    return _TRIGGER.sub(
        lambda m: (
            f"{m.group(0)}\n`ifndef SYNTHESIS\n`ifndef VERILATOR\n"
            f"{m.group(1)}initial #0 {m.group(2)} = 1'b1;\n`endif\n`endif"
        ),
        text,
    )


def generate(unit: str, params: UnitParams, out_dir, *, axis: bool = False) -> Generated:
    """Build ``UNITS[unit]`` with ``params``; write ``<top>.v`` and ``<top>.json`` in ``out_dir``.

    Raises ``ValueError``/``TypeError`` from the unit's parameter checks (naming the bad value)
    and ``ValueError`` for an unknown unit. Warns (``fixed.AlphaVanishesWarning``) when alpha has
    no effect in the chosen format.
    """
    if unit not in UNITS:
        raise ValueError(f"Unknown unit {unit!r}; choose one of {', '.join(UNITS)}")
    info = UNITS[unit]
    component = info.build(params)
    note = None
    if "alpha" in info.uses and getattr(component, "threshold_const", None) is not None:
        note = fixed.alpha_note(params.alpha, fixed.Format(params.width, params.frac))
    if axis:
        component = AxisWrapper(component)
    meta = describe(unit, params, component, axis=axis)
    text = convert(component, meta["top"])
    _check_ports(text, meta)
    out_dir = Path(out_dir)
    out_dir.mkdir(parents=True, exist_ok=True)
    v_path = out_dir / f"{meta['top']}.v"
    j_path = out_dir / f"{meta['top']}.json"
    v_path.write_text(_header(meta, info.description, note) + text)
    j_path.write_text(json.dumps(meta, indent=2) + "\n")
    return Generated(top=meta["top"], verilog=v_path, sidecar=j_path, meta=meta)
