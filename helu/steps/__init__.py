"""The steps of ``helu flow``, in the order it runs them and the report presents them.

Each step is one module here, defining one :class:`~helu.steps.base.Step` (``STEP``): its
options, its run, its result file, its report section, summary and verdict. :data:`STEPS` is the
registry: :func:`run_flow` runs it in order, ``helu.report`` walks it, the report numbers its
sections from it (:func:`number`), and ``helu flow``'s options are the steps' own
(:func:`add_arguments`). A step whose tool is missing is skipped and named in the report; a step
that fails stops the flow with a one-line error.

:func:`run_flow` holds the flow folder's lock (``<out>/.lock``, the lock ``helu sim`` and
``helu onchip`` take) for the whole run, so a second flow on the same folder is refused before it
touches a file, and records the run's state in ``<out>/flow.json``: an interrupted or failed flow
still writes its report, which says so.
"""

import json
import logging
import shutil
import time
from pathlib import Path

from helu.steps import cnn, collapse, golden, intnet, mlp, onchip, prove, sim, study, synth, verilog
from helu.steps.base import Context, Options, Step, Verdict, timed

__all__ = [
    "STEPS",
    "SECTIONS",
    "SKIPS",
    "NOTES",
    "TIMING",
    "STATUS",
    "Context",
    "Options",
    "Step",
    "Verdict",
    "number",
    "by_name",
    "add_arguments",
    "configure",
    "run_step",
    "run_flow",
]

log = logging.getLogger(__name__)

STEPS: tuple[Step, ...] = (
    study.STEP,  # study/: the quick accuracy study on digits
    golden.STEP,  # golden/: golden vectors of its HeLU model
    intnet.STEP,  # intnet/, golden-net/: the integer network, its golden trajectory
    verilog.STEP,  # verilog/: every configuration to simulate and synthesize, once
    sim.STEP,  # sim/: those files on the cocotb benches against golden/
    synth.STEP,  # synth/: those files through Yosys/nextpnr
    prove.STEP,  # prove/: the formal proofs
    mlp.STEP,  # mlp/: the integer MLP engine on golden-net/
    cnn.STEP,  # cnn/: your network on chip (the example CNN)
    onchip.STEP,  # onchip/: training on chip, every step checked
    collapse.STEP,  # collapse/: the quick collapse study
)
"""The registry: the flow runs it in this order, the report presents it in this order."""

SECTIONS = tuple(s for s in STEPS if s.title)
"""The steps with a report section, numbered from 1 in this order."""

SKIPS = "skipped.json"  # {step: reason} written by the flow for steps it could not run
NOTES = "notes.json"  # [sentence] the flow wants a reader to know (choices it made and why)
TIMING = "timing.json"  # {step: seconds, "total": seconds}
STATUS = "flow.json"  # {"state": running|complete|interrupted|failed, "step", "error"}


def number(name: str) -> int:
    """The report's section number of step ``name``."""
    for i, step in enumerate(SECTIONS, 1):
        if step.name == name:
            return i
    raise KeyError(f"no report section for step {name!r}")


def by_name(name: str) -> Step:
    for step in STEPS:
        if step.name == name:
            return step
    raise KeyError(f"no step {name!r}")


def add_arguments(parser) -> None:
    """Every step's own ``helu flow`` options."""
    for step in STEPS:
        step.add_arguments(parser)


def configure(args) -> dict:
    """The steps' checked options (``Options`` fields and ``modes``) from the parsed options."""
    fields: dict = {"modes": {}}
    for step in STEPS:
        own = step.configure(args)
        fields["modes"].update(own.pop("modes", {}))
        fields.update(own)
    return fields


def _write_json(path: Path, data) -> None:
    tmp = path.with_name(path.name + ".tmp")
    tmp.write_text(json.dumps(data, indent=2) + "\n")
    tmp.replace(path)


def _clear(out: Path, keep: str) -> None:
    """Empty ``out`` but its file ``keep`` (the held lock: a new file would be a new lock)."""
    for child in out.iterdir():
        if child.name == keep:
            continue
        if child.is_dir() and not child.is_symlink():
            shutil.rmtree(child)
        else:
            child.unlink()


def run_step(ctx: Context, step: Step) -> None:
    """Run ``step`` in ``ctx`` unless its :meth:`~Step.skip_reason` says why not (recorded)."""
    reason = step.skip_reason(ctx)
    if reason:
        ctx.skip(step.name, reason)
    else:
        timed(ctx, step)


def run_flow(out, options: Options, *, force: bool = False, steps=STEPS) -> tuple[Path, Path]:
    """Run ``steps`` in order into flow folder ``out``; returns the report's two paths.

    The folder is checked (``helu.common.outdir``: a flow folder, or new), locked for the whole
    run (a second flow on it is refused at once, before any file is touched), then emptied, so no
    result of an earlier flow can be reported as this one's. Whatever happens, the report is
    written; an interrupt or an error is recorded in ``flow.json`` (the report says so) and then
    raised again.
    """
    from helu.common import outdir
    from helu.report import write_report
    from helu.sim.runner import lock

    out = outdir.claim(out, "flow", force=force)
    try:
        out.mkdir(parents=True, exist_ok=True)
    except OSError as exc:
        raise outdir.UnwritableFolderError(out, str(exc.strerror or exc)) from None
    with lock(out):
        _clear(out, ".lock")
        outdir.mark(out, "flow")
        ctx = Context(out, options)
        wall = time.monotonic()
        status = {"state": "running", "step": None, "steps": [s.name for s in steps], "done": []}
        _write_json(out / STATUS, status)
        try:
            for i, step in enumerate(steps, 1):
                status["step"] = step.name
                log.info("[%d/%d] %s", i, len(steps) + 1, step.doing(ctx))
                run_step(ctx, step)
                status["done"].append(step.name)
            status |= {"state": "complete", "step": None}
        except KeyboardInterrupt as exc:
            status |= {"state": "interrupted", "error": type(exc).__name__}
            raise
        except BaseException as exc:
            text = str(exc).strip().splitlines()
            status |= {"state": "failed", "error": text[0] if text else type(exc).__name__}
            raise
        finally:
            log.info("[%d/%d] writing the report", len(steps) + 1, len(steps) + 1)
            _write_json(out / SKIPS, ctx.skipped)
            _write_json(out / NOTES, ctx.notes)
            _write_json(out / TIMING, ctx.seconds | {"total": time.monotonic() - wall})
            _write_json(out / STATUS, status)
            try:
                report, summary = write_report(out)
            except Exception as exc:  # the run's own error, if any, is the one to see
                if status["state"] == "complete":
                    raise
                log.warning("no report: %s", exc)
            else:
                if status["state"] != "complete":
                    log.warning("the report says the flow %s: %s", status["state"], report)
    log.info("done in %.0f s: %s, %s", time.monotonic() - wall, report, summary)
    return report, summary
