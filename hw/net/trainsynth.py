"""Synthesis of the training engine: cell counts on the iCE40 UP5K and the ECP5-25k.

Yosys only (``hw.synth.run_yosys``, the targets of ``hw.synth.TARGETS``): LUT4, FF, carry, DSP
and block RAM of ``Trainer(spec, lanes)``, and whether they fit the device's capacity. No place
and route here: the Fmax method of the inference engine (``hw.net.synth``: a timing harness,
nextpnr seeds) applies unchanged and was not run for the trainer.
"""

import json
import time
from pathlib import Path

from helu.hw.synth import TARGETS, count_cells, run_yosys, tools_for
from helu.hw.tools import find_tool, tool_version

__all__ = ["synthesize_trainer", "TRAINER_TARGETS"]

TRAINER_TARGETS = ("up5k", "ecp5")


def synthesize_trainer(
    spec, lanes: int, target: str, *, out_dir, stash: str = "mask", yosys: str = "yosys"
) -> dict:
    """Synthesise ``Trainer(spec, lanes, stash=stash)`` for ``target``; the record (also
    ``record.json``).

    Record: ``target``, ``device``, ``lanes``, ``stash``, ``stash_bits``, ``sizes``, ``lut``,
    ``ff``, ``carry``, ``dsp``, ``ram``, ``cells``, ``capacity``, ``fits``, ``over`` (what
    exceeds the device), ``cycles_per_sample``, ``tools``, ``seconds``. ``ToolError`` when
    Yosys fails.
    """
    from amaranth.back import verilog

    from helu.hw.net.trainer import Trainer

    tools_for(target)
    start = time.monotonic()
    engine = Trainer(spec, lanes, stash=stash)
    top = f"helu_trainer_{'_'.join(map(str, engine.sizes))}_p{lanes}_{stash}"
    work = Path(out_dir) / target / top
    work.mkdir(parents=True, exist_ok=True)
    find_tool(yosys)
    (work / f"{top}.v").write_text(verilog.convert(engine, name=top, emit_src=False))
    design = f"trainer {'-'.join(map(str, engine.sizes))} P={lanes} {stash} stash ({target})"
    cells = run_yosys(work / f"{top}.v", top, target, design=design, yosys=yosys)
    counts = count_cells(cells, target)
    capacity = TARGETS[target].get("capacity", {})
    over = [f"{counts[k]} {k.upper()} > {n}" for k, n in capacity.items() if counts.get(k, 0) > n]
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
        "tools": {yosys: tool_version(yosys)},
        "seconds": round(time.monotonic() - start, 2),
    }
    (work / "record.json").write_text(json.dumps(record, indent=2, sort_keys=True) + "\n")
    return record
