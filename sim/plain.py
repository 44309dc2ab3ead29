"""A plain-Verilog bench for the network engines: no cocotb, any simulator, any language mode.

The cocotb benches drive their inputs from time 0, which hides a design that needs an event at
time 0 to evaluate its combinational logic (Verilog-2005 simulators give one for declaration
initializers, SystemVerilog ones do not). This bench drives the engine the way a user's own
Verilog testbench would: ``rst`` high for a few cycles, then the sample transfers read from a
hex file, ``o.ready`` held high, every output transfer printed. It runs on Icarus in
``-g2005`` and ``-g2012`` and on Verilator (``--binary``), so the same file is checked under
each.

``run(verilog, sidecar, transfers, outputs, simulator=..., mode=..., work=...)`` returns the
output payloads; :func:`pack_inputs` and :func:`unpack_outputs` translate between samples and
payloads with the sidecar's field layout (``hw.verilog.payload_fields``).
"""

import json
import shutil
import subprocess
from pathlib import Path

import numpy as np

from helu.golden import fixed

__all__ = ["MODES", "pack_inputs", "unpack_outputs", "bench_text", "run"]

MODES = {"icarus-2005": ("icarus", "-g2005"), "icarus-2012": ("icarus", "-g2012"),
         "verilator": ("verilator", None)}  # fmt: skip
"""The simulator and language mode of each plain run."""

RESET_CYCLES = 4


def _field(fields, name) -> dict:
    for f in fields:
        if f["name"] == name:
            return f
    raise KeyError(f"the payload has no field {name!r}")


def pack_inputs(meta: dict, x, labels=None) -> list[int]:
    """The ``i`` payload of every transfer of samples ``x`` (rows, flat HWC) in the engine's
    input layout (the sidecar's ``input_index``); a trainer's ``label`` on each transfer."""
    fields = meta["ports"]["in"]["fields"]
    fx = _field(fields, "x")
    index = np.asarray(meta["input_index"], dtype=np.int64)
    x = np.asarray(x, dtype=np.int64)
    padded = np.concatenate([x, np.zeros((len(x), 1), dtype=np.int64)], axis=1)
    codes = fixed.to_unsigned(padded[:, index], fx["width"])  # (samples, transfers, lanes)
    words = []
    for n, sample in enumerate(codes):
        for lanes in sample:
            word = sum(int(c) << (fx["offset"] + k * fx["width"]) for k, c in enumerate(lanes))
            if labels is not None:
                word |= int(labels[n]) << _field(fields, "label")["offset"]
            words.append(word)
    return words


def unpack_outputs(meta: dict, payloads) -> tuple[np.ndarray, np.ndarray]:
    """``(logits, cls)`` of the ``o`` payloads."""
    fields = meta["ports"]["out"]["fields"]
    fl, fc = _field(fields, "logits"), _field(fields, "cls")
    mask = (1 << fl["width"]) - 1
    logits = [
        [(p >> (fl["offset"] + k * fl["width"])) & mask for k in range(fl["lanes"])]
        for p in payloads
    ]
    cls = [(p >> fc["offset"]) & ((1 << fc["width"]) - 1) for p in payloads]
    return (fixed.to_signed(np.asarray(logits, dtype=np.int64).reshape(-1, fl["lanes"]),
                            fl["width"]), np.asarray(cls, dtype=np.int64))  # fmt: skip


def bench_text(meta: dict, transfers: int, outputs: int, limit: int) -> str:
    """The bench module ``tb``: reads ``stimulus.hex`` (one ``i`` payload a line), prints
    ``OUT <hex>`` for each ``o`` transfer, ``DONE``, or ``TIMEOUT`` after ``limit`` cycles."""
    p = meta["ports"]
    inputs = {"in": p["in"], "load": p["load"]} | ({"read": p["read"]} if "read" in p else {})
    sinks = {"out": p["out"]} | ({"rdata": p["rdata"]} if "rdata" in p else {})
    decl, conns = [], [".clk(clk)", ".rst(rst)"]
    for key, s in inputs.items():
        decl += [f"  reg [{s['width'] - 1}:0] {key}_data = 0;", f"  reg {key}_valid = 0;",
                 f"  wire {key}_ready;"]  # fmt: skip
        conns += [f".{s['data']}({key}_data)", f".{s['valid']}({key}_valid)",
                  f".{s['ready']}({key}_ready)"]  # fmt: skip
    for key, s in sinks.items():
        decl += [f"  wire [{s['width'] - 1}:0] {key}_data;", f"  wire {key}_valid;"]
        conns += [f".{s['data']}({key}_data)", f".{s['valid']}({key}_valid)",
                  f".{s['ready']}(1'b1)"]  # fmt: skip
    if meta["unit"] == "trainer":
        decl.append("  wire [31:0] digest;")
        conns.append(".digest(digest)")
    width = p["in"]["width"]
    body = "\n".join(decl)
    ports = ",\n    ".join(conns)
    return f"""`timescale 1ns/1ps
module tb;
  reg clk = 0;
  reg rst = 1;
{body}
  reg [{width - 1}:0] stimulus [0:{max(transfers - 1, 0)}];
  integer sent = 0;
  integer received = 0;
  integer cycles = 0;
  {meta["top"]} dut(
    {ports}
  );
  always #5 clk = ~clk;
  initial $readmemh("stimulus.hex", stimulus);
  // Inputs change half a cycle after each rising edge, as a user's bench would drive them.
  always @(negedge clk) begin
    if (cycles >= {RESET_CYCLES}) rst = 0;
    in_valid = !rst && sent < {transfers};
    if (in_valid) in_data = stimulus[sent];
  end
  always @(posedge clk) begin
    cycles = cycles + 1;
    if (in_valid && in_ready) sent = sent + 1;
    if (out_valid) begin
      $display("OUT %h", out_data);
      received = received + 1;
      if (received == {outputs}) begin
        $display("DONE");
        $finish;
      end
    end
    if (cycles > {limit}) begin
      $display("TIMEOUT after %0d cycles: %0d of {transfers} transfers taken, %0d outputs",
               cycles, sent, received);
      $finish;
    end
  end
endmodule
"""


def _compile_and_run(simulator: str, flag, sources: list, work: Path) -> str:
    sources = [str(s) for s in sources]
    if simulator == "icarus":
        subprocess.run(["iverilog", flag, "-o", "bench.vvp", "-s", "tb", "bench.v", *sources],
                       cwd=work, check=True, capture_output=True, text=True)  # fmt: skip
        cmd = ["vvp", "-n", "bench.vvp"]
    else:
        from helu.sim.runner import _use_verilator

        _use_verilator()
        subprocess.run(
            # --binary times the bench's clock with C++20 coroutines (--timing).
            ["verilator", "--binary", "--top-module", "tb", "-Wno-fatal", "-Wno-lint",
             "-Wno-style", "-CFLAGS", "-std=c++20 -fcoroutines", "--Mdir", "obj", "-o", "bench",
             "bench.v", *sources],
            cwd=work, check=True, capture_output=True, text=True,
        )  # fmt: skip
        cmd = ["obj/bench"]
    return subprocess.run(cmd, cwd=work, check=True, capture_output=True, text=True).stdout


def run(verilog, sidecar, transfers, outputs: int, *, mode: str, work, limit=None) -> list[int]:
    """Run the plain bench on ``verilog`` in ``mode`` (a key of :data:`MODES`); the output
    payloads (``outputs`` of them expected; fewer when the run times out or goes X).

    ``RuntimeError`` with the simulator's own words when a tool fails or the run times out.
    """
    simulator, flag = MODES[mode]
    meta = json.loads(Path(sidecar).read_text())
    work = Path(work)
    if work.exists():
        shutil.rmtree(work)
    work.mkdir(parents=True)
    limit = limit or (RESET_CYCLES + 4 * meta["cycles_per_sample"] * max(outputs, 1) + 100)
    width = meta["ports"]["in"]["width"]
    digits = -(-width // 4)
    (work / "stimulus.hex").write_text("".join(f"{w:0{digits}x}\n" for w in transfers))
    (work / "bench.v").write_text(bench_text(meta, len(transfers), outputs, limit))
    try:
        from helu.hw.net.mac import primitive_models

        models = primitive_models(meta.get("primitives"), work / "models")
        text = _compile_and_run(simulator, flag, [Path(verilog).resolve(), *models], work)
    except subprocess.CalledProcessError as exc:
        raise RuntimeError(f"{mode}: {' '.join(exc.cmd[:2])} failed: {exc.stderr[-800:]}") from exc
    if "TIMEOUT" in text:
        raise RuntimeError(f"{mode}: {text.splitlines()[-1]}")
    out = []
    for line in text.splitlines():
        if line.startswith("OUT "):
            value = line[4:].strip()
            # An X or Z bit makes the payload unreadable: -1, which no payload equals.
            out.append(int(value, 16) if all(c in "0123456789abcdef" for c in value) else -1)
    return out
