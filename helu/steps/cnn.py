"""Step ``cnn``: your network on chip (``helu flow --cnn full|sim|off``).

The step takes the example digits CNN the way a user's own model goes:
trained as a plain ``nn.Sequential`` and saved with ``torch.save`` (``helu example``), imported
and quantized on the digits training split (``helu quantize``), every test sample through the
inference engine's RTL (``helu sim --unit net``), and synthesized for the iCE40 UP5K (and the
ECP5 when the flow's targets include it; ``helu synth --unit net``). It writes
``<out>/cnn/summary.json``; the report renders it beside the digits MLP's figures.
"""

import json
import logging
import time

from helu.steps.base import Context, Step

__all__ = ["STEP", "CnnStep", "SUMMARY", "EXAMPLE", "ICARUS_SAMPLES"]

log = logging.getLogger(__name__)

SUMMARY = "cnn/summary.json"
EXAMPLE = "digits-cnn"
LANES = 8
TRAJECTORY_STEPS = 16  # golden training steps recorded in the CNN's folder (checked by replay)
ICARUS_SAMPLES = 40  # without Verilator, the first test samples on Icarus (about 0.3 s each)


def _run(ctx: Context) -> None:
    """The CNN step (module docstring); a mismatch stops the flow."""
    import numpy as np
    import torch

    from helu import mlp
    from helu.golden import examples, intgolden, quantize
    from helu.golden.intgolden import check_trajectory
    from helu.hw.net.mlp import MLP
    from helu.hw.units import unelaborated
    from helu.sim import runner

    out = ctx.out / "cnn"
    out.mkdir(parents=True, exist_ok=True)
    start = time.monotonic()
    ex = examples.EXAMPLES[EXAMPLE]
    data = quantize.load_data(ex.dataset)
    model = examples.train(examples.build(EXAMPLE), data, ex.epochs, ex.lr)
    torch.save(model, out / "model.pt")
    path, result = quantize.export(out / "model.pt", ex.dataset, out / "golden",
                                   steps=TRAJECTORY_STEPS, every=8)  # fmt: skip
    golden = path.parent
    replay = check_trajectory(golden)
    if replay:
        raise RuntimeError(f"CNN golden trajectory does not replay: {replay[0]}")
    manifest, int_model, arrays = intgolden.load_net(golden)
    engine = unelaborated(MLP(int_model, LANES))  # built for its figures only
    summary = {
        "example": EXAMPLE,
        "golden": str(golden),
        "golden_folder": str(golden.relative_to(ctx.out)),  # what the verdict counts samples of
        "description": ex.description,
        "dataset": ex.dataset,
        "layers": [op.describe() for op in int_model.ops],
        "sizes": int_model.sizes,
        "shifts": int_model.shifts,
        "threshold": int_model.threshold,
        "input": int_model.input.to_dict(),
        "lanes": LANES,
        "macs": engine.macs,
        "accuracy": manifest["accuracy"],
        "cycles_per_sample": engine.cycles_per_sample,
        "ideal_cycles": engine.ideal_cycles,
        "layer_cycles": engine.layer_cycles,
        "layer_ideal": [op.macs / LANES for op in int_model.ops],
        "trajectory_steps": TRAJECTORY_STEPS,
        "sim": [],
        "synth": [],
    }
    if not runner.tool_missing("verilator"):
        sims, vectors = ("verilator",), arrays
    elif not runner.tool_missing("icarus"):
        sims = ("icarus",)
        vectors = {k: np.asarray(v)[:ICARUS_SAMPLES] for k, v in arrays.items()}
        summary["sim_note"] = (
            f"Verilator missing: the first {ICARUS_SAMPLES} test samples on Icarus"
        )
    else:
        sims = ()
        summary["sim_skipped"] = "no simulator available"
    if sims:
        from helu.sim.mlp import run_mlp

        for r in run_mlp(int_model, vectors, lanes=LANES, simulators=sims, out=out / "sim"):
            summary["sim"].append(
                {k: r.get(k) for k in mlp.SIM_KEYS} | {"expected": len(vectors["x"])}
            )
    if ctx.options.mode("cnn", "sim") == "sim":
        # The default keeps make flow under 10 minutes on 2 cores; the command gives the cost.
        summary["synth_skipped"] = (
            f"helu flow --cnn sim (the default); helu flow --cnn full, or helu synth --unit net "
            f"--model {golden} --target up5k,ecp5, synthesizes it"
        )
    else:
        targets = ["up5k"] + (["ecp5"] if "ecp5" in ctx.options.targets else [])
        # One nextpnr seed: the CNN engine's place and route takes about a minute a seed.
        summary["synth"] = mlp.run_synth(int_model, targets=targets, activations=["helu"],
                                         lanes=LANES, seeds=1, out=out / "synth")  # fmt: skip
    summary["seconds"] = time.monotonic() - start
    (ctx.out / SUMMARY).write_text(json.dumps(summary, indent=2) + "\n")
    ctx.seconds["cnn"] = summary["seconds"]
    bad = [r for r in summary["sim"] if r["mismatches"] or not r["checked"]]
    if bad:
        raise RuntimeError(f"CNN engine: {bad[0]['message']}; see {ctx.out / SUMMARY}")
    log.info(
        "      %s: integer accuracy %.4f, %d cycles a sample (%.3f x ideal)",
        " -> ".join(summary["layers"]),
        summary["accuracy"]["integer"],
        summary["cycles_per_sample"],
        summary["cycles_per_sample"] / summary["ideal_cycles"],
    )


def check_record(data: dict, path, need) -> None:
    """Refuse a ``cnn/summary.json`` that lacks what the report reads, or whose simulations
    checked fewer samples than they were given (``need(path, ok, what)`` raises the report's
    one-line error): a count that does not cover its input is never a pass."""
    for key in ("layers", "accuracy", "cycles_per_sample", "ideal_cycles", "layer_cycles",
                "layer_ideal", "macs", "lanes", "input", "threshold", "sim", "synth"):  # fmt: skip
        need(path, key in data, f"no {key!r}")
    need(path, isinstance(data["sim"], list), "'sim' is not a list")
    for r in data["sim"]:
        need(path, isinstance(r, dict), "a simulation is not an object")
        for key in ("checked", "mismatches", "expected"):
            ok = isinstance(r.get(key), int) and not isinstance(r.get(key), bool) and r[key] >= 0
            need(path, ok, f"a simulation's {key!r} is missing or not a count")
        what = f"a simulation checked {r['checked']} of {r['expected']} samples (incomplete)"
        need(path, r["checked"] == r["expected"], what)


def _summary(data: dict) -> dict:
    """The ``summary.json`` entry of the CNN step."""
    keys = ("target", "lut", "ff", "carry", "dsp", "ram", "fmax_mhz", "samples_per_s")
    return {
        "layers": data["layers"],
        "accuracy": data["accuracy"],
        "cycles_per_sample": data["cycles_per_sample"],
        "ideal_cycles": data["ideal_cycles"],
        "sim": [
            {k: r[k] for k in ("simulator", "checked", "mismatches", "accuracy")}
            for r in data["sim"]
        ],  # fmt: skip
        "synth": [{k: r.get(k) for k in keys} for r in data["synth"]],
    }


def _row(name: str, data: dict, macs_per_sample: int) -> str:
    acc = data.get("accuracy") or {}
    rtl = next((r for r in data.get("sim", []) if r.get("accuracy") is not None), None)
    ideal = macs_per_sample / data.get("lanes", data.get("macs_per_cycle", LANES))
    costs = []
    for r in data.get("synth", []):
        if r.get("activation", "helu") != "helu":
            continue
        fmax = f"{r['fmax_mhz']:.1f} MHz" if r.get("fmax_mhz") else "no Fmax"
        costs.append(f"{r['device']}: {r['lut']} LUT4, {r['dsp']} DSP, {r['ram']} RAM, {fmax}")
    rtl_text = (
        f"{rtl['accuracy']:.4f} ({rtl['checked']} samples, {rtl['simulator']})" if rtl else "-"
    )
    return (
        f"| {name} | {acc.get('float', float('nan')):.4f} | {acc.get('integer', float('nan')):.4f}"
        f" | {rtl_text} | {data['cycles_per_sample']} / {ideal:.0f} "
        f"({data['cycles_per_sample'] / ideal:.3f} x) | {'; '.join(costs) or 'not synthesized'} |"
    )


def _section(data: dict, out_dir) -> list[str]:
    """The report's section on networks on chip, from ``<out>/cnn/summary.json`` (and the digits
    MLP's ``<out>/mlp/summary.json`` when present)."""
    from pathlib import Path

    from helu.steps.mlp import SUMMARY as MLP_SUMMARY

    rows = ["| network | float acc. | integer acc. | RTL acc. | cycles / ideal | cost |",
            "|---|---|---|---|---|---|"]  # fmt: skip
    mlp_path = Path(out_dir) / MLP_SUMMARY
    if mlp_path.is_file():
        m = json.loads(mlp_path.read_text())
        macs = sum(a * b for a, b in zip(m["sizes"][:-1], m["sizes"][1:], strict=True))
        rows.append(_row("digits MLP " + "-".join(map(str, m["sizes"])), m, macs))
    rows.append(_row(f"digits CNN ({data['description']})", data, data["macs"]))
    conv = [
        f"{layer}: {c} cycles, ideal {i:.0f}"
        for layer, c, i in zip(
            data["layers"], data["layer_cycles"], data["layer_ideal"], strict=True
        )  # fmt: skip
    ]
    parts = [
        f"The example CNN of `helu example {data['example']}` goes the way your own model does: "
        "a plain `nn.Sequential` saved with `torch.save`, imported and quantized on the "
        "training split (`helu quantize`), every test sample through the inference engine "
        "(`helu sim --unit net`), synthesized (`helu synth --unit net`). Input codes "
        f"{data['input']['lo']}..{data['input']['hi']} (value x 2^{data['input']['frac']}), "
        f"threshold T = {data['threshold']}; P = {data['lanes']}.",
        "",
        *rows,
        "",
        "Cycles per layer (ideal = MACs / P, padding taps counted): " + "; ".join(conv) + ".",
        "",
    ]
    for r in data["sim"]:
        parts.append(f"- {r['simulator']}: {r['message']}")
    if data.get("sim_note"):
        parts.append(f"- {data['sim_note']}")
    if data.get("sim_skipped"):
        parts.append(f"- RTL simulation skipped: {data['sim_skipped']}")
    if data.get("synth_skipped"):
        parts.append(f"- Synthesis skipped: {data['synth_skipped']}")
    elif data["synth"]:
        parts.append("- Fmax from one nextpnr seed (the MLP's from the median of the flow's).")
    parts += [
        f"- The golden training trajectory of the CNN ({data['trajectory_steps']} steps, "
        "PyTorch integer tensors) was replayed and matched. The training engine trains it on "
        "chip too (not run by the flow: about 6 s a step on Icarus): `helu onchip --model "
        f"{data.get('golden', 'cnn/golden')} --steps 200`.",
        "",
    ]
    return parts


class CnnStep(Step):
    name = "cnn"
    title = "Your network on chip: a CNN from a PyTorch file"
    record = SUMMARY

    def add_arguments(self, parser):
        parser.add_argument(
            "--cnn",
            choices=("full", "sim", "off"),
            default="sim",
            help="your-network step on the example digits CNN: import, quantize and RTL "
            "simulation (sim), with UP5K synthesis (full: about 70 s more), or skipped (off) "
            "(default: %(default)s)",
        )

    def configure(self, args):
        return {"modes": {"cnn": getattr(args, "cnn", "sim")}}

    def doing(self, ctx):
        return "your network on chip: the example CNN imported, quantized, simulated, synthesized"

    def skip_reason(self, ctx):
        return "helu flow --cnn off" if ctx.options.mode("cnn", "sim") == "off" else None

    def run(self, ctx):
        _run(ctx)

    def check(self, data, path):
        from helu.steps.base import need

        super().check(data, path)
        check_record(data, path, need)

    def summary(self, data):
        return _summary(data)

    def section(self, data, found, out_dir):
        return _section(data, out_dir)

    def verdict(self, data, found, out_dir):
        from helu.steps.base import INCOMPLETE, Verdict
        from helu.steps.mlp import expected_samples, sim_verdict

        if not data["sim"]:
            return Verdict(INCOMPLETE, "no sample", data.get("sim_skipped") or "not simulated")
        folder = data.get("golden_folder") or "cnn/golden"
        v = sim_verdict(data["sim"], expected_samples(out_dir, folder), folder)
        if v.status == INCOMPLETE and data.get("sim_note"):
            v = Verdict(v.status, v.checked, f"{v.why} ({data['sim_note']})")
        return v


STEP = CnnStep()
