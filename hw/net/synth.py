"""Synthesis of the MLP engine: area on its own, Fmax inside the timing harness, samples/s.

The method of the units (``hw.synth``, ``hw.harness``): the engine alone is synthesised for its
cell counts (LUT4, FF, carry, DSP, block RAM), then the engine wrapped in ``hw.harness.Harness``
(every port from or to flip-flops; the iCE40 UP5K's 48-pin package could not carry the 231 port
bits anyway) is placed and routed with ``seeds`` nextpnr seeds; the Fmax is their median.
``samples_per_s`` is that Fmax over the engine's ``cycles_per_sample`` at full rate (the figure
the cocotb bench measures, ``sim.mlp``).

Targets: ``up5k`` (iCE40 UltraPlus 5K, ``synth_ice40 -dsp``: multipliers on ``SB_MAC16``) and
``ecp5`` (LFE5U-25F, ``synth_ecp5``: multipliers on ``MULT18X18D``), or any of ``hw.synth``.
A design that does not fit is a result (``fits`` false, ``fmax_reason`` says why), not an error.
"""

import json
import time
from pathlib import Path

from helu.hw.synth import (
    TARGETS,
    count_cells,
    harness_timing,
    over_capacity,
    run_yosys,
    tools_for,
    write_verilog,
)
from helu.hw.tools import find_tool, tool_version

__all__ = ["synthesize_mlp", "MLP_TARGETS", "ICE40_EBR_SHAPES", "ebr_blocks", "check_memory"]

MLP_TARGETS = ("up5k", "ecp5")

ICE40_EBR_SHAPES = ((16, 256), (8, 512), (4, 1024), (2, 2048))
"""(width, depth) configurations of one iCE40 ``SB_RAM40_4K`` block (4 kbit)."""


def ebr_blocks(width: int, depth: int) -> int:
    """iCE40 block RAMs a ``width`` x ``depth`` memory takes in the best configuration (Yosys's
    memory mapping picks it; the digits CNN engine's estimate, 14, is what it used)."""
    return min(-(-width // w) * -(-depth // d) for w, d in ICE40_EBR_SHAPES)


def check_memory(engine, target: str) -> dict:
    """The engine's memories in ``target``'s block RAMs: ``{"weights": n, "biases": n,
    "activations": n, "total": n, "has": n}``; ``ValueError`` saying what it needs and what the
    device has when they do not fit (checked before any tool runs). Only the iCE40 targets
    (EBR counts) are estimated; others return ``{}``."""
    capacity = TARGETS[target].get("capacity", {}).get("ram")
    if capacity is None or not target.startswith(("ice40", "up5k")):
        return {}
    need = {name: ebr_blocks(width, depth) for name, (width, depth) in engine.memory_shapes.items()}
    need["total"] = sum(need.values())
    need["has"] = capacity
    if need["total"] > capacity:
        parts = ", ".join(f"{k} {v}" for k, v in need.items() if k not in ("total", "has"))
        raise ValueError(
            f"the engine needs about {need['total']} block RAMs ({parts}); the "
            f"{TARGETS[target]['device']} has {capacity}: use a smaller model"
        )
    return need


def synthesize_mlp(
    model,
    lanes: int,
    target: str,
    *,
    activation: str = "helu",
    seeds: int = 3,
    out_dir,
    fmax: bool = True,
    yosys: str = "yosys",
) -> dict:
    """Synthesise ``MLP(model, lanes, activation=...)`` for ``target``; return its record.

    Writes ``<out_dir>/<target>/<top>/`` (Verilog, scripts, logs, netlists, ``record.json``).
    Record: ``unit`` ("mlp"), ``activation``, ``target``, ``device``, ``lanes``, ``sizes``,
    ``lut``, ``ff``, ``carry``, ``dsp``, ``ram``, ``cells``, ``capacity``, ``fits``,
    ``fmax_mhz`` (median of the seeds, or ``None`` with ``fmax_reason``), ``fmax_seeds``,
    ``harness_lut``, ``harness_ff``, ``macs``, ``cycles_per_sample``, ``samples_per_s``,
    ``mmacs_per_s``, ``tools``, ``seconds``. ``ToolError`` when a tool fails otherwise.
    """
    from helu.hw.harness import Harness
    from helu.hw.net.mlp import MLP
    from helu.hw.net.verilog import top_name

    tools_for(target)
    if not isinstance(seeds, int) or isinstance(seeds, bool) or seeds < 1:
        raise ValueError(f"Seed count must be a positive integer, not {seeds!r}")
    start = time.monotonic()
    spec = TARGETS[target]
    engine = MLP(model, lanes, activation=activation)
    top = top_name(model.sizes, lanes, activation)
    design = f"MLP {'-'.join(map(str, model.sizes))} P={lanes} {activation} ({target})"
    work = Path(out_dir) / target / top
    work.mkdir(parents=True, exist_ok=True)
    find_tool(yosys)
    versions = {yosys: tool_version(yosys)}
    write_verilog(engine, top, work / f"{top}.v")
    cells = run_yosys(work / f"{top}.v", top, target, design=design, yosys=yosys)
    counts = count_cells(cells, target)
    capacity = spec.get("capacity", {})
    over = over_capacity(counts, target)
    record = {
        "unit": "mlp",
        "activation": activation,
        "target": target,
        "device": spec["device"],
        "lanes": lanes,
        "sizes": model.sizes,
        "lut": counts.get("lut"),
        "ff": counts.get("ff"),
        "carry": counts.get("carry"),
        "dsp": counts.get("dsp"),
        "ram": counts.get("ram"),
        "cells": dict(sorted(cells.items())),
        "capacity": capacity,
        "fits": not over,
        "fmax_mhz": None,
        "fmax_seeds": [],
        "fmax_reason": None,
        "harness_lut": None,
        "harness_ff": None,
        "macs": engine.macs,
        "cycles_per_sample": engine.cycles_per_sample,
    }
    if over:
        record["fmax_reason"] = f"does not fit the {spec['device']} ({', '.join(over)})"
    elif spec["pnr"] is None:
        record["fmax_reason"] = f"the {target} target has no timing model"
    elif not fmax:
        record["fmax_reason"] = "place and route not requested"
    else:
        versions[spec["pnr"]] = tool_version(spec["pnr"])
        harness = Harness(MLP(model, lanes, activation=activation))
        timing = harness_timing(
            harness, top, target, work=work, design=design, seeds=seeds, yosys=yosys
        )
        record.update(timing)
    f = record["fmax_mhz"]
    record["samples_per_s"] = None if f is None else f * 1e6 / engine.cycles_per_sample
    record["mmacs_per_s"] = None if f is None else f * engine.macs / engine.cycles_per_sample
    record["tools"] = versions
    record["seconds"] = round(time.monotonic() - start, 2)
    (work / "record.json").write_text(json.dumps(record, indent=2, sort_keys=True) + "\n")
    return record
