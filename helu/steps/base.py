"""The one protocol every step of ``helu flow`` follows, and what the flow hands a step.

A step (:class:`Step`) is defined in one module of ``helu.steps``: its options, how it runs, the
result file it leaves under the flow folder, how the report checks, summarizes and presents that
file, and the verdict it gives in the report's summary table. The flow
(``helu.steps.run_flow``) runs the registry (``helu.steps.STEPS``) in order; the report
(``helu.report``) walks the same registry, so a step is added in one place.

A step never reads the command line's ``argparse`` namespace: it reads the checked
:class:`Options` of :class:`Context` (every option is checked before minutes of training, not
when its step comes).
"""

import time
from dataclasses import dataclass, field
from pathlib import Path

__all__ = [
    "PASS",
    "FAIL",
    "INCOMPLETE",
    "DONE",
    "NOT_RUN",
    "Verdict",
    "Options",
    "Context",
    "Step",
    "is_count",
    "need",
]

PASS, FAIL, INCOMPLETE, DONE, NOT_RUN = "PASS", "FAIL", "incomplete", "done", "not run"
"""A step's verdict: a check that covered all of its input and found no difference (PASS), one
that found one (FAIL), one that covered less than its input says it must (incomplete, never
PASS), a step that computes rather than checks (done), and a step without results (not run)."""


@dataclass(frozen=True)
class Verdict:
    """One row of the report's summary table: ``status`` (one of the five above), ``checked``
    (what was verified, e.g. ``"360 of 360 samples"``) and ``why`` (the reason of anything but a
    PASS or done)."""

    status: str
    checked: str = ""
    why: str = ""


@dataclass(frozen=True)
class Options:
    """The flow's options, checked, as the steps read them (defaults: ``helu flow``'s)."""

    seeds: int | None = None  # training seeds per setting (None: each preset's)
    sim: str = "icarus"  # icarus, verilator or all
    units: tuple[str, ...] = ()
    targets: tuple[str, ...] = ("ice40", "generic")
    synth_widths: tuple[int, ...] = (8, 16)
    synth_lanes: tuple[int, ...] = (1, 16)
    prove_widths: tuple[int, ...] = (8, 16)
    prove_lanes: tuple[int, ...] = (1, 4)
    fmax_seeds: int = 3
    jobs: int = 2
    modes: dict = field(default_factory=dict)  # a step's own mode: {"mlp": "sim", ...}

    def mode(self, step: str, default: str) -> str:
        return self.modes.get(step, default)

    @property
    def simulators(self) -> tuple[str, ...]:
        from helu.sim import runner

        return runner.SIMULATORS if self.sim == "all" else (self.sim,)


@dataclass
class Context:
    """What a running flow hands each step: the flow folder, the options, and the records the
    steps add to (``skipped``: step -> reason; ``notes``: sentences for the reader; ``seconds``:
    step -> wall time). ``shared`` carries what one step leaves for a later one (the study's
    metrics, the Verilog files written), by name."""

    out: Path
    options: Options = field(default_factory=Options)
    skipped: dict = field(default_factory=dict)
    notes: list = field(default_factory=list)
    seconds: dict = field(default_factory=dict)
    shared: dict = field(default_factory=dict)

    def __post_init__(self):
        self.out = Path(self.out)

    def skip(self, step: str, reason: str) -> None:
        """Record that ``step`` did not run, and why (the report shows the reason)."""
        import logging

        self.skipped[step] = reason
        logging.getLogger("helu.steps").warning("      skipped: %s", reason)


def is_count(x) -> bool:
    return isinstance(x, int) and not isinstance(x, bool) and x >= 0


def need(path, ok: bool, what: str) -> None:
    """The one error a malformed result file gives: it names the file and what is wrong."""
    if not ok:
        raise ValueError(f"{path}: malformed: {what}; re-run its step")


class Step:
    """A step of the flow. Subclasses set :attr:`name` and override what they have.

    Attributes: ``name`` (the key in ``skipped.json``, ``timing.json`` and the registry),
    ``title`` (the report section's title; ``None``: no section), ``record`` (the result file
    under the flow folder that the report reads; ``None``: none), ``summary_key`` (its key in
    ``summary.json``; default ``name``).
    """

    name: str = ""
    title: str | None = None
    record: str | None = None
    summary_key: str | None = None

    # ------------------------------------------------------------------------------ the flow

    def add_arguments(self, parser) -> None:
        """Add this step's own ``helu flow`` options."""

    def configure(self, args) -> dict:
        """This step's checked options from the parsed command line: ``Options.modes`` items
        and fields (``{"mode": ..., "prove_widths": ...}``). Raise ``ValueError`` for a bad one."""
        return {}

    def doing(self, ctx: Context) -> str:
        """The progress line the flow logs when the step starts."""
        return self.title or self.name

    def skip_reason(self, ctx: Context) -> str | None:
        """Why this step does not run in ``ctx`` (an option turned it off, a tool is missing),
        or ``None``. Asked before :meth:`run`; ``run`` may still skip (``ctx.skip``)."""
        return None

    def run(self, ctx: Context) -> None:
        """Run the step: write the results under ``ctx.out``; raise on a failed check."""

    # ---------------------------------------------------------------------------- the report

    def check(self, data, path: Path) -> None:
        """Raise ``ValueError`` naming ``path`` when the record lacks what the report reads."""
        need(path, isinstance(data, dict), f"not a JSON object but a {type(data).__name__}")

    def stale(self, found: dict, out_dir: Path) -> str | None:
        """Why the record is not tied to the inputs the report lists, or ``None``."""
        return None

    def summary(self, data) -> dict:
        """The record's entry in ``summary.json``."""
        return {}

    def section(self, data, found: dict, out_dir: Path) -> list[str]:
        """The report section's Markdown lines (after its title)."""
        return []

    def verdict(self, data, found: dict, out_dir: Path) -> Verdict:
        """What the record verified, checked against what its inputs say it must cover."""
        return Verdict(DONE)

    def seconds(self, data, timing: dict) -> float | None:
        """The step's wall time: the flow's ``timing.json`` or the record's own."""
        if self.name in timing:
            return timing[self.name]
        return data.get("seconds") if isinstance(data, dict) else None


def timed(ctx: Context, step: Step) -> None:
    """Run ``step`` in ``ctx``, recording its wall time (kept when it fails)."""
    start = time.monotonic()
    try:
        step.run(ctx)
    finally:
        ctx.seconds.setdefault(step.name, time.monotonic() - start)
