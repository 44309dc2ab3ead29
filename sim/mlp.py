"""Run the MLP engine's cocotb bench (``helu.sim.tb_mlp``) on Icarus and Verilator.

``run_mlp(model, vectors, ...)`` generates the engine's Verilog once (``hw.net.verilog``), builds
it for each simulator (``sim.runner.build_files``: a build is reused while its Verilog is
unchanged), streams the samples and returns one result per simulator: ``checked`` samples,
``mismatches`` (wrong logits and classes), ``first_mismatch`` (sample and logit), ``message``,
``accuracy`` (classes equal to the labels, when ``vectors`` has them: the integer model's
accuracy, measured on the engine's classes), ``cycles_per_sample``, ``seconds`` and ``wall_s``.
Mismatches are results, not exceptions.

``corrupt_weight(model, lanes, layer, neuron, inp)`` gives the ``load`` words of a weight image
with one weight's sign bit flipped, and the model it amounts to, for the checker's own test.
"""

import copy
import json
from pathlib import Path

import numpy as np

from helu.common import outdir
from helu.golden import fixed, intmodel
from helu.sim import runner

__all__ = ["TESTS", "run_mlp", "corrupt_weight", "vectors_from"]

TESTS = ("stream", "reset_mid_stream")
MODULE = "helu.sim.tb_mlp"


def vectors_from(model, x, labels=None) -> dict:
    """Golden vectors for ``x``: ``intmodel.infer``'s logits and classes (and ``labels``)."""
    x = np.asarray(x, dtype=np.int64)
    logits, cls = intmodel.infer(model, x)
    vec = {"x": x, "logits": logits, "cls": cls}
    if labels is not None:
        vec["labels"] = np.asarray(labels, dtype=np.int64)
    return vec


def corrupt_weight(model, lanes: int, layer: int, neuron: int, inp: int):
    """``(load words, corrupted model)``: ``model`` with weight ``[layer][neuron, inp]``'s sign
    bit flipped, as the ``load`` port's ``(addr, data)`` words of the whole image."""
    from helu.hw.net.mlp import image

    bad = copy.deepcopy(model)
    w = bad.weights[layer]
    w[neuron, inp] = fixed.to_signed(fixed.to_unsigned(w[neuron, inp], 8) ^ 0x80, 8)
    return image(bad, lanes).words(), bad


def run_mlp(
    model,
    vectors: dict,
    *,
    lanes: int = 8,
    simulators=("icarus",),
    out="build/sim",
    test: str = "stream",
    idle: float = 0.0,
    backpressure: float = 0.0,
    seed: int = 0,
    loads=None,
    reset_after: int | None = None,
    activation: str = "helu",
    name: str = "run",
    dsp=None,
    netlist=None,
) -> list[dict]:
    """Check ``vectors`` (``x``, ``logits``, ``cls``[, ``labels``]) through the engine built from
    ``model`` on each simulator; one result dict per simulator (see the module docstring).

    ``dsp``: the multiplier build (``hw.net.mac``). ``netlist``: simulate this mapped netlist of
    the same engine (``hw.net.synth.mapped_netlist``: the netlist, its record or its folder; its
    multiplier build when ``dsp`` is not given) with Yosys's cell models instead of the RTL: a
    gate-level run of what synthesis produced, on the same bench. A netlist of another engine or
    model is refused (``ValueError``) before anything is written."""
    from helu.hw.net.mlp import MLP
    from helu.hw.net.verilog import generate
    from helu.hw.units import unelaborated

    if test not in TESTS:
        raise ValueError(f"unknown MLP bench test {test!r}; choose one of {', '.join(TESTS)}")
    for what, p in (("idle", idle), ("backpressure", backpressure)):
        if not 0 <= p < 1:
            raise ValueError(f"{what.capitalize()} probability must be in [0, 1), not {p}")
    x = np.asarray(vectors["x"])
    if x.ndim != 2 or x.shape[1] != model.sizes[0] or not len(x):
        raise ValueError(f"inputs {x.shape} do not fit a {model.sizes[0]}-input model")
    for sim in simulators:
        missing = runner.tool_missing(sim)
        if missing:
            raise RuntimeError(f"cannot simulate with {sim}: {missing}")
    if netlist is not None:
        from helu.hw.net.synth import check_mapped, mapped_netlist

        netlist, mapped = mapped_netlist(netlist)
        dsp = mapped.get("dsp") if dsp is None else dsp
    # checked first; elaborated by generate unless a check refuses it
    engine = unelaborated(MLP(model, lanes, activation=activation, dsp=dsp))
    if netlist is not None:
        check_mapped(mapped, engine)
    outdir.prepare(out, "sim")
    # a second helu sim on this --out is refused while this one runs, not interleaved
    with runner.lock(out):
        gen = generate(engine, Path(out) / "rtl")
        source = netlist or gen.verilog
        results = []
        for sim in simulators:
            build = runner.build_files(source, gen.sidecar, sim, out, gates=bool(netlist))
            run_dir = runner.new_run_dir(build, name)  # its own folder: results never shared
            result_path = run_dir / "result.json"
            np.savez(run_dir / "vectors.npz", **{k: np.asarray(v) for k, v in vectors.items()})
            job = {
                "sidecar": str(build.sidecar_path),
                "vectors": str(run_dir / "vectors.npz"),
                "result": str(result_path),
                "idle": idle,
                "backpressure": backpressure,
                "seed": seed,
                "loads": [[int(a), int(d)] for a, d in (loads or [])],
                "reset_after": reset_after,
            }
            result = runner.run_bench(build, MODULE, test, run_dir, job)
            result.update(lanes=lanes, macs=gen.meta["macs"], ideal=gen.meta["macs"] / lanes)
            result["sidecar"] = gen.meta
            results.append(result)
            (run_dir / "summary.json").write_text(json.dumps(result, indent=2, default=str) + "\n")
    return results
