"""Synthesis of the training engine: cell counts on the iCE40 UP5K and the ECP5-25k, Fmax.

``hw.synth.run_yosys`` (the targets of ``hw.synth.TARGETS``) gives LUT4, FF, carry, DSP and
block RAM of ``Trainer(spec, lanes)`` and whether they fit the device. With ``seeds`` > 0 and a
design that fits, the Fmax method of the units and the inference engine
(``hw.synth.harness_timing``): the engine inside ``hw.harness.Harness`` (every port from or to
flip-flops), placed and routed with ``seeds`` nextpnr seeds, the median Fmax; ``steps_per_s`` is
that Fmax over ``cycles_per_sample``.
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

__all__ = ["synthesize_trainer", "TRAINER_TARGETS"]

TRAINER_TARGETS = ("up5k", "ecp5")


def synthesize_trainer(
    spec,
    lanes: int,
    target: str,
    *,
    out_dir,
    stash: str = "mask",
    seeds: int = 0,
    yosys: str = "yosys",
) -> dict:
    """Synthesise ``Trainer(spec, lanes, stash=stash)`` for ``target``; the record (also
    ``record.json``).

    Record: ``target``, ``device``, ``lanes``, ``stash``, ``stash_bits``, ``sizes``, ``lut``,
    ``ff``, ``carry``, ``dsp``, ``ram``, ``cells``, ``capacity``, ``fits``, ``over`` (what
    exceeds the device), ``cycles_per_sample``, ``fmax_mhz``, ``fmax_seeds``, ``fmax_reason``
    (why there is no Fmax), ``harness_lut``, ``harness_ff``, ``steps_per_s``, ``tools``,
    ``seconds``. ``ToolError`` when a tool fails.
    """
    from helu.hw.net.trainer import Trainer

    tools_for(target)
    start = time.monotonic()
    engine = Trainer(spec, lanes, stash=stash)
    top = f"helu_trainer_{'_'.join(map(str, engine.sizes))}_p{lanes}_{stash}"
    work = Path(out_dir) / target / top
    work.mkdir(parents=True, exist_ok=True)
    find_tool(yosys)
    write_verilog(engine, top, work / f"{top}.v")
    design = f"trainer {'-'.join(map(str, engine.sizes))} P={lanes} {stash} stash ({target})"
    cells = run_yosys(work / f"{top}.v", top, target, design=design, yosys=yosys)
    counts = count_cells(cells, target)
    capacity = TARGETS[target].get("capacity", {})
    over = over_capacity(counts, target)
    record = {
        "target": target,
        "device": TARGETS[target]["device"],
        "lanes": lanes,
        "stash": stash,
        "stash_bits": engine.stash_bits,
        "sizes": list(engine.sizes),
        **{k: counts.get(k) for k in ("lut", "ff", "carry", "dsp", "ram")},
        "cells": dict(sorted(cells.items())),
        "capacity": capacity,
        "fits": not over,
        "over": over,
        "cycles_per_sample": engine.cycles_per_sample,
        "fmax_mhz": None,
        "fmax_seeds": [],
        "fmax_reason": None,
        "harness_lut": None,
        "harness_ff": None,
        "steps_per_s": None,
        "tools": {yosys: tool_version(yosys)},
    }
    pnr = TARGETS[target]["pnr"]
    if over:
        record["fmax_reason"] = f"does not fit the {TARGETS[target]['device']} ({', '.join(over)})"
    elif pnr is None:
        record["fmax_reason"] = f"the {target} target has no timing model"
    elif seeds < 1:
        record["fmax_reason"] = "place and route not requested (seeds=0)"
    else:
        from helu.hw.harness import Harness

        record["tools"][pnr] = tool_version(pnr)
        harness = Harness(Trainer(spec, lanes, stash=stash))
        timing = harness_timing(
            harness, top, target, work=work, design=design, seeds=seeds, yosys=yosys
        )
        timing.pop("fits")  # ``fits`` here is the engine's own, as the record says
        record.update(timing)
        if record["fmax_mhz"] is not None:
            record["steps_per_s"] = record["fmax_mhz"] * 1e6 / engine.cycles_per_sample
    record["seconds"] = round(time.monotonic() - start, 2)
    (work / "record.json").write_text(json.dumps(record, indent=2, sort_keys=True) + "\n")
    return record
