"""Step ``onchip``: training on chip (``helu flow --onchip short|off``).

The step runs the same short RTL training as ``helu onchip`` (its code,
:func:`helu.onchip.run_onchip`: the integer network the flow exported to ``golden-net/``, from
its exported state, on the digits training split stored there; Verilator; every step's logits
and state digest compared with the golden integer training step, every weight read back every
``EVERY`` steps) into ``<out>/onchip/`` and writes
``<out>/onchip/summary.json``: per step the RTL and golden loss and whether the logits were
equal, the bench's mismatch count, cycles per step against the ideal, the stash bits, and the
SHA-256 of the simulated Verilog (which ties the record to that file). The report renders it:
the two loss curves on one plot, the bit-exact verdict and a cost table of what the
run measured. Synthesis of the trainer is not part of the flow; the section says so and gives
the command.
"""

import json
import logging
import time
from pathlib import Path

from helu.steps.base import Context, Step

__all__ = ["STEP", "OnchipStep", "SUMMARY", "SHORT_STEPS", "EVERY", "LANES"]

log = logging.getLogger(__name__)

SUMMARY = "onchip/summary.json"
SHORT_STEPS = 100  # training samples of the flow's short run
EVERY = 25  # full read-back of every weight every EVERY steps
LANES = 8
SYNTH_COMMAND = "make bench-fit"
"""How to measure the trainer's area and Fmax (not run by the flow: minutes of Yosys/nextpnr)."""


def _command(steps: int, every: int, lanes: int, seed: int, model=None) -> str:
    source = f"--model {model}" if model is not None else f"--seed {seed}"
    return (
        f"helu onchip {source} --steps {steps} --every {every} --sim verilator --lanes {lanes} "
        "--no-test"
    )


def _run(ctx: Context) -> None:
    """The training-on-chip step (module docstring); any step that differs from golden stops the
    flow."""
    from helu.common.outdir import sha256_file
    from helu.onchip import run_onchip

    out = ctx.out / "onchip"
    start = time.monotonic()
    # The network the flow exported (golden-net/), trained from its exported state.
    from helu.steps.intnet import GOLDEN

    model = ctx.out / GOLDEN
    model = model if (model / "manifest.json").is_file() else None
    s = run_onchip(out, steps=SHORT_STEPS, every=EVERY, lanes=LANES, simulators=("verilator",),
                   evaluate=False, model=model)  # fmt: skip
    (verilog,) = sorted((out / "sim" / "rtl").glob("*.v"))
    record = {
        k: s[k]
        for k in (
            "sizes",
            "lanes",
            "steps",
            "full_check_every",
            "seed",
            "threshold",
            "cycles_per_sample",
            "ideal_cycles",
            "mask_bits",
            "z_stash_bits",
            "golden_steps_per_s",
            "golden_test_accuracy",
            "golden_loss",
            "model",
        )
    }
    record["runs"] = [
        {k: v for k, v in r.items() if k != "plot"} | {"plot": Path(r["plot"]).name}
        for r in s["runs"]
    ]
    record["verilog"] = str(verilog.relative_to(out))
    record["verilog_sha256"] = sha256_file(verilog)
    record["command"] = _command(SHORT_STEPS, EVERY, LANES, s["seed"], model)
    record["seconds"] = round(time.monotonic() - start, 1)
    tmp = ctx.out / (SUMMARY + ".tmp")
    tmp.write_text(json.dumps(record, indent=2) + "\n")
    tmp.replace(ctx.out / SUMMARY)
    ctx.seconds["onchip"] = record["seconds"]
    bad = [r for r in record["runs"] if r["mismatches"] or r["steps"] != record["steps"]]
    if bad:
        raise RuntimeError(f"training on chip: {bad[0]['message']}; see {ctx.out / SUMMARY}")


def _number(x) -> bool:
    return isinstance(x, (int, float)) and not isinstance(x, bool)


def check_record(data: dict, path: Path, need) -> None:
    """Refuse an ``onchip/summary.json`` that lacks what the report reads (``need(path, ok,
    what)`` raises the report's one-line error): a run without its mismatch count is an error,
    never a pass."""
    for key in ("sizes", "lanes", "steps", "cycles_per_sample", "ideal_cycles", "mask_bits"):
        need(path, key in data, f"no {key!r}")
    steps = data["steps"]
    need(path, isinstance(steps, int) and steps > 0, "'steps' is not a positive integer")
    golden = data.get("golden_loss")
    need(path, isinstance(golden, list) and len(golden) == steps, "no per-step 'golden_loss'")
    runs = data.get("runs")
    need(path, isinstance(runs, list) and runs, "no 'runs' list")
    for r in runs:
        need(path, isinstance(r, dict), "a run is not an object")
        for key in ("mismatches", "steps", "full_checks", "cycles"):
            ok = isinstance(r.get(key), int) and not isinstance(r.get(key), bool) and r[key] >= 0
            need(path, ok, f"a run's {key!r} is missing or not a count")
        for key in ("loss", "logits_equal"):
            ok = isinstance(r.get(key), list) and len(r[key]) == steps
            need(path, ok, f"a run's per-step {key!r} is missing or not {steps} long")
        need(path, _number(r.get("wall_s")), "a run has no 'wall_s'")
        need(path, isinstance(r.get("simulator"), str), "a run has no 'simulator'")


def stale(data: dict, out_dir: Path) -> str | None:
    """Why the record is not tied to the Verilog it names (missing, or another hash), or None."""
    from helu.common.outdir import sha256_file

    want = data.get("verilog_sha256")
    if not want or not data.get("verilog"):
        return f"{SUMMARY} records no Verilog hash, so it cannot be tied to a design; re-run it"
    path = Path(out_dir) / "onchip" / data["verilog"]
    if not path.is_file():
        return f"{SUMMARY}: the simulated Verilog onchip/{data['verilog']} is gone; re-run it"
    if sha256_file(path) != want:
        return f"{SUMMARY} holds results of another Verilog than onchip/{data['verilog']}"
    return None


def _verdict(r: dict, steps: int) -> tuple[bool, str]:
    differ = len(r["logits_equal"]) - sum(bool(v) for v in r["logits_equal"])
    exact = r["mismatches"] == 0 and differ == 0 and r["steps"] == steps
    text = (
        f"{r['simulator']}: {r['steps']} steps compared, {r['mismatches']} mismatches "
        f"(logits, class, state digest every step; {r['full_checks']} full read-backs of every "
        f"weight), {differ} steps whose logits differ: "
        + ("**bit-exact**" if exact else "**NOT bit-exact**")
    )
    return exact, text


def _summary(data: dict) -> dict:
    """``summary.json``'s ``onchip`` key."""
    return {
        "sizes": data["sizes"],
        "lanes": data["lanes"],
        "steps": data["steps"],
        "cycles_per_sample": data["cycles_per_sample"],
        "ideal_cycles": data["ideal_cycles"],
        "mask_bits": data["mask_bits"],
        "runs": [
            {
                "simulator": r["simulator"],
                "steps": r["steps"],
                "mismatches": r["mismatches"],
                "bit_exact": _verdict(r, data["steps"])[0],
            }
            for r in data["runs"]
        ],
    }


def _section(data: dict, out_dir) -> list[str]:
    """The report's section on training on chip, from ``onchip/summary.json`` only."""
    sizes = "-".join(map(str, data["sizes"]))
    steps, lanes = data["steps"], data["lanes"]
    cycles, ideal = data["cycles_per_sample"], data["ideal_cycles"]
    parts = [
        "The training engine (`hw/net/trainer.py`) trained "
        + ("the exported" if data.get("model") else "a fresh")
        + f" {sizes} integer HeLU net on "
        f"{steps} samples of the digits training split in cocotb, P = {lanes}, every step "
        "checked against the golden integer training step (`golden.intnet.IntNet.step`). "
        f"The same run by hand: `{data.get('command', 'helu onchip')}`.",
        "",
    ]
    for r in data["runs"]:
        parts.append("- " + _verdict(r, steps)[1])
    parts.append("")
    for r in data["runs"]:
        plot = Path(out_dir) / "onchip" / str(r.get("plot", ""))
        if r.get("plot") and plot.is_file():
            parts += [f"![RTL ({r['simulator']}) and golden training loss](onchip/{r['plot']})", ""]
    rows = [
        ("cycles per training step (design)", f"{cycles}"),
        ("ideal: (forward + delta + gradient multiplies) / P", f"{ideal:g}"),
        ("design / ideal", f"{cycles / ideal:.3f}"),
        ("mask stash bits (1 per hidden element)", f"{data['mask_bits']}"),
    ]
    if data.get("z_stash_bits"):
        rows.append(("a z stash instead would take (bits)", f"{data['z_stash_bits']}"))
    for r in data["runs"]:
        rows += [
            (f"simulated cycles a step ({r['simulator']}, bench handshakes included)",
             f"{(r.get('train_cycles') or r['cycles']) / max(r['steps'], 1):.1f}"),
            (f"simulation speed ({r['simulator']}), steps/s", f"{r['steps'] / r['wall_s']:.1f}"),
        ]  # fmt: skip
    if data.get("golden_steps_per_s"):
        rows.append(
            (
                "golden trajectory (PyTorch step + state digest, batch 1, this CPU), steps/s",
                f"{data['golden_steps_per_s']}",
            )
        )
    rows.append(("LUT, FF, DSP, RAM, Fmax of the trainer", "not run by the flow (see below)"))
    parts += ["| measured by this run | value |", "| --- | --- |"]
    parts += [f"| {a} | {b} |" for a, b in rows]
    parts += [
        "",
        "Synthesis of the trainer is not run by the flow (minutes of Yosys/nextpnr); measure it "
        f"with `{SYNTH_COMMAND}` (UP5K and ECP5, against the fit targets).",
        "",
    ]
    return parts


class OnchipStep(Step):
    name = "onchip"
    title = "Training on chip"
    record = SUMMARY

    def add_arguments(self, parser):
        parser.add_argument(
            "--onchip",
            choices=("short", "off"),
            default="short",
            help=f"training on chip: {SHORT_STEPS} RTL training steps on Verilator, each checked "
            "against the golden training step (short), or skipped (off) (default: %(default)s)",
        )

    def configure(self, args):
        return {"modes": {"onchip": getattr(args, "onchip", "short")}}

    def doing(self, ctx):
        return f"training on chip: {SHORT_STEPS} RTL training steps, each checked"

    def skip_reason(self, ctx):
        from helu.sim import runner

        if ctx.options.mode("onchip", "short") == "off":
            return "helu flow --onchip off"
        missing = runner.tool_missing("verilator")
        return f"Verilator missing: {missing}" if missing else None

    def run(self, ctx):
        _run(ctx)

    def check(self, data, path):
        from helu.steps.base import need

        super().check(data, path)
        check_record(data, path, need)

    def stale(self, found, out_dir):
        return stale(found["onchip"], out_dir) if found.get("onchip") else None

    def summary(self, data):
        return _summary(data)

    def section(self, data, found, out_dir):
        return _section(data, out_dir)

    def verdict(self, data, found, out_dir):
        from helu.steps.base import FAIL, INCOMPLETE, PASS, Verdict

        steps = data["steps"]
        runs = data["runs"]
        checked = f"{min(r['steps'] for r in runs)} of {steps} training steps"
        bad = [r for r in runs if not _verdict(r, steps)[0] and r["steps"] == steps]
        if bad:
            return Verdict(FAIL, checked, f"{bad[0]['simulator']}: not bit-exact")
        short = [r for r in runs if r["steps"] < steps]
        if short:
            why = f"{short[0]['simulator']} ran {short[0]['steps']} of the {steps} golden steps"
            return Verdict(INCOMPLETE, checked, why)
        return Verdict(PASS, checked)


STEP = OnchipStep()
