"""Synthesis of the network engines: area on its own, Fmax inside the timing harness, rate.

One method for both engines (:func:`synthesize`; :func:`synthesize_mlp` and
:func:`synthesize_trainer` build the engine), the units' (``hw.synth``, ``hw.harness``): the
engine alone is synthesised for its cell counts (LUT4, FF, carry, DSP, block RAM) from the
Verilog the simulators read (``hw.net.verilog``), then the engine wrapped in
``hw.harness.Harness`` (every port from or to flip-flops; the iCE40 UP5K's 48-pin package could
not carry the engines' port bits anyway) is placed and routed with ``seeds`` nextpnr seeds; the
Fmax is their median. The rate is that Fmax over the engine's ``cycles_per_sample`` at full rate
(the figure the cocotb benches measure): ``samples_per_s`` for inference, ``steps_per_s`` for
training.

Targets: ``up5k`` (iCE40 UltraPlus 5K, ``synth_ice40 -dsp``: multipliers on ``SB_MAC16``) and
``ecp5`` (LFE5U-25F, ``synth_ecp5``: multipliers on ``MULT18X18D``), or any of ``hw.synth``.
A design that does not fit is a result (``fits`` false, ``fmax_reason`` says why), not an error.
"""

import json
import time
from pathlib import Path

from helu.hw.synth import (
    ENGINE_TARGETS,
    TARGETS,
    count_cells,
    harness_timing,
    over_capacity,
    run_yosys,
    tools_for,
)
from helu.hw.tools import find_tool, tool_version

__all__ = [
    "mapped_netlist",
    "check_mapped",
    "synthesize",
    "synthesize_mlp",
    "synthesize_trainer",
    "ENGINE_TARGETS",
    "ICE40_EBR_SHAPES",
    "ebr_blocks",
    "check_memory",
]

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


def synthesize(make, target: str, *, out_dir, seeds: int = 3, yosys: str = "yosys") -> dict:
    """Synthesise the engine ``make()`` builds (an ``MLP`` or a ``Trainer``) for ``target``;
    return its record (also ``<out_dir>/<target>/<top>/record.json``, beside the Verilog,
    scripts, logs and netlists). ``seeds = 0``: area only.

    Record: ``unit`` (``"mlp"`` or ``"trainer"``), ``top``, ``netlist`` (the mapped netlist as
    Verilog, for a gate-level run), ``sidecar`` (the engine's), ``target``, ``device``, ``lanes``,
    ``sizes``, ``layers``, ``lut``, ``ff``, ``carry``, ``dsp``, ``ram``, ``cells``, ``capacity``,
    ``fits`` (the engine's cell counts within the device's, before packing), ``over`` (what exceeds
    it), ``placed`` (nextpnr placed the harness; ``None`` when not tried), ``macs`` (per sample),
    ``cycles_per_sample``, ``ideal_cycles`` (the engine's definition), ``fmax_mhz`` (median of the
    seeds, or ``None`` with ``fmax_reason``), ``fmax_seeds``, ``harness_lut``, ``harness_ff``,
    ``tools``, ``seconds``; inference adds ``activation``, ``samples_per_s``, ``mmacs_per_s``;
    training ``stash``, ``stash_bits``, ``steps_per_s``. ``ToolError`` when a tool fails; a design
    that does not fit is a result, not an error.
    """
    from helu.hw.harness import Harness
    from helu.hw.net.mlp import MLP
    from helu.hw.net.verilog import generate, top_name

    tools_for(target)
    if not isinstance(seeds, int) or isinstance(seeds, bool) or seeds < 0:
        raise ValueError(f"Seed count must be an integer >= 0, not {seeds!r}")
    start = time.monotonic()
    spec = TARGETS[target]
    engine = make()
    inference = isinstance(engine, MLP)
    variant = f"{engine.activation}" if inference else f"{engine.stash} stash"
    role = "inference" if inference else "training"
    design = (
        f"{role} engine {'-'.join(map(str, engine.sizes))} P={engine.lanes} {variant} ({target})"
    )
    find_tool(yosys)
    versions = {yosys: tool_version(yosys)}
    top = top_name(engine)
    work = Path(out_dir) / target / top
    gen = generate(engine, work)
    netlist = f"{top}.netlist.v"
    explicit = engine.dsp is not None  # its DSP cells instantiated, none to infer
    cells = run_yosys(
        work / f"{top}.v", top, target, design=design, netlist_out=netlist, yosys=yosys,
        cells=explicit,
    )  # fmt: skip
    counts = count_cells(cells, target)
    over = over_capacity(counts, target)
    record = {
        "unit": gen.meta["unit"],
        "top": top,
        "netlist": str(work / netlist),
        "sidecar": str(gen.sidecar),
        "target": target,
        "device": spec["device"],
        "lanes": engine.lanes,
        "sizes": list(engine.sizes),
        "layers": gen.meta["layers"],
        **{k: counts.get(k) for k in ("lut", "ff", "carry", "dsp", "ram")},
        "cells": dict(sorted(cells.items())),
        "capacity": spec.get("capacity", {}),
        "fits": not over,
        "over": over,
        "macs": engine.macs,
        "cycles_per_sample": engine.cycles_per_sample,
        "ideal_cycles": engine.ideal_cycles,
        "placed": None,
        "fmax_mhz": None,
        "fmax_seeds": [],
        "fmax_reason": None,
        "harness_lut": None,
        "harness_ff": None,
        "critical_path": None,
    }
    if inference:
        record["activation"] = engine.activation
    else:
        record |= {"stash": engine.stash, "stash_bits": engine.stash_bits}
    if over:
        record["fmax_reason"] = f"does not fit the {spec['device']} ({', '.join(over)})"
    elif spec["pnr"] is None:
        record["fmax_reason"] = f"the {target} target has no timing model"
    elif seeds < 1:
        record["fmax_reason"] = "place and route not requested"
    else:
        versions[spec["pnr"]] = tool_version(spec["pnr"])
        timing = harness_timing(
            Harness(make()), top, target, work=work, design=design, seeds=seeds, yosys=yosys,
            cells=explicit,
        )  # fmt: skip
        # ``fits`` stays the engine's cell counts against the device's; ``placed`` says whether
        # nextpnr placed it (logic cells count LUTs and the flip-flops that pack with none), and
        # when not, ``fmax_reason`` says why.
        record["placed"] = timing.pop("fits", None)
        record.update(timing)
    f = record["fmax_mhz"]
    rate = None if f is None else f * 1e6 / engine.cycles_per_sample
    if inference:
        record["samples_per_s"] = rate
        record["mmacs_per_s"] = None if f is None else f * engine.macs / engine.cycles_per_sample
    else:
        record["steps_per_s"] = rate
    record["tools"] = versions
    record["seconds"] = round(time.monotonic() - start, 2)
    (work / "record.json").write_text(json.dumps(record, indent=2, sort_keys=True) + "\n")
    return record


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
    """:func:`synthesize` of ``MLP(model, lanes, activation=...)``, its multipliers as the
    target's DSP cell where it names one (``dsp_cell``: the UP5K's ``SB_MAC16`` in 8x8 mode);
    ``fmax`` false: area only."""
    from helu.hw.net.mlp import MLP

    def make():
        return MLP(model, lanes, activation=activation, dsp=TARGETS[target].get("dsp_cell"))

    return synthesize(make, target, out_dir=out_dir, seeds=seeds if fmax else 0, yosys=yosys)


def synthesize_trainer(
    spec, lanes: int, target: str, *, out_dir, stash: str = "mask", seeds: int = 0,
    yosys: str = "yosys",
) -> dict:  # fmt: skip
    """:func:`synthesize` of ``Trainer(spec, lanes, stash=stash)``, its multipliers as the
    target's DSP cell where it names one, a register after its memory reads where the target
    asks for it (``read_register``: the ECP5); ``seeds = 0``: area only."""
    from helu.hw.net.trainer import Trainer

    def make():
        build = TARGETS[target]
        return Trainer(spec, lanes, stash=stash, dsp=build.get("dsp_cell"),
                       read_register=build.get("read_register", False))  # fmt: skip

    return synthesize(make, target, out_dir=out_dir, seeds=seeds, yosys=yosys)


def mapped_netlist(path) -> tuple[Path, dict]:
    """``(netlist, sidecar)`` of an engine netlist :func:`synthesize` mapped: ``path`` is its
    ``<top>.netlist.v`` (the record's ``netlist``), the build's ``record.json``, or the folder
    holding them; the sidecar (``<top>.json`` beside the netlist) says which engine build it is.
    ``ValueError`` naming what is missing."""
    path = Path(path)
    if path.is_dir():
        if not (path / "record.json").is_file():
            raise ValueError(
                f"{path}: no mapped netlist there (no record.json of 'helu synth --unit "
                "net|trainer --target up5k'); give that build folder or its <top>.netlist.v"
            )
        path = path / "record.json"
    if path.name == "record.json":
        try:
            path = Path(json.loads(path.read_text())["netlist"])
        except (OSError, ValueError, KeyError, TypeError):
            raise ValueError(
                f"{path}: not a synthesis record with a netlist; give the <top>.netlist.v that "
                "'helu synth --unit net|trainer' wrote, or its folder"
            ) from None
    if not path.is_file() or not path.name.endswith(".netlist.v"):
        raise ValueError(
            f"{path}: no mapped netlist (<top>.netlist.v) there; run 'helu synth --unit "
            "net|trainer --target up5k' and give its build folder"
        )
    sidecar = path.with_name(path.name.removesuffix(".netlist.v") + ".json")
    try:
        meta = json.loads(sidecar.read_text())
        meta["top"], meta["model_sha256"]
    except (OSError, ValueError, KeyError, TypeError):
        raise ValueError(f"{path}: its sidecar {sidecar.name} is missing or damaged") from None
    return path, meta


def check_mapped(mapped: dict, engine) -> None:
    """Refuse a netlist (its sidecar ``mapped``) that is not a build of ``engine``: another top
    (sizes, lanes, multipliers, variant) or another model (weights, shifts): ``ValueError``."""
    from helu.hw.net.verilog import describe

    want = describe(engine)
    if mapped["top"] != want["top"]:
        raise ValueError(
            f"the netlist is of {mapped['top']}, this engine is {want['top']}: synthesize this "
            "engine (same model, --macs and target) or simulate the one the netlist is of"
        )
    if mapped["model_sha256"] != want["model_sha256"]:
        raise ValueError(
            f"the netlist of {mapped['top']} holds another model (weights or shifts; sha256 "
            f"{mapped['model_sha256'][:12]}, this one {want['model_sha256'][:12]}): synthesize "
            "this model"
        )
