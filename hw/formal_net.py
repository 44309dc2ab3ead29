"""Formal proofs of the inference engine (``hw.net.mlp.MLP``): one sample, every input value.

The unit proofs (``hw.formal``) check a streaming unit against its reference on every cycle. An
engine is a sequencer over memories, tens of cycles from a sample's first input to its result,
so its proof is a **bounded model check** from reset (no induction: the sequencer's counters,
the pipeline and the activation memory hold state the harness cannot relate to the
specification). :class:`NetHarness` wraps one engine built from a fixed ``IntModel`` (its
weights, biases and shifts constants; ``load`` idle) and drives it:

- the sample is free: one ``AnyConst`` code per input, assumed within the model's input format
  (``model.input.lo`` to ``hi``), sent as the engine's :attr:`~MLP.input_transfers` words in
  its input layout (``MLP.input_index``; padding lanes free on every cycle); ``i.valid``,
  ``o.ready`` and ``rst`` are free on every cycle (a reset restarts the sample, in the harness
  as in the engine);
- the expected logits and class are ``golden.intmodel.infer`` run on those codes as logic
  (``hw.symbolic.SymbolicArray``): the golden code itself, its matrix products,
  ``golden.fixed.requantize`` and ``forward`` and ``intmodel.argmax``, nowhere restated.

The properties (:data:`NET_PROPERTIES`; each check is a signal ``prop_<property>_<check>``, so a
counterexample names what failed):

``function``
    ``logits``, ``cls``: whenever ``o.valid``, ``o.payload`` holds exactly the golden logits and
    class of the sample.
``stream``
    ``whole``: no output before the sample's last input transfer; ``once``: one output transfer
    per sample (nothing duplicated); ``hold``, ``stable``: once ``o.valid`` is high it stays
    high, with ``o.payload`` unchanged, until ``o.ready``.
``reset``
    ``clears``: the cycle after ``rst``, ``o.valid`` is low and, ``rst`` released, the
    sequencer waits for a sample's first word: ``i.ready`` high, and ``load.ready`` high for
    every address inside the image.
``response``
    ``bound``: with ``o.ready`` high since the sample's last input transfer, the result is on
    ``o.valid`` at most ``bound`` cycles after it (default :attr:`MLP.latency`).
``load``
    (``mode="load"``: ``load`` free on every cycle, so memory contents are free and
    ``function`` is not asserted) ``idle``: a load is taken only between samples;
    ``refused``: a load to an address past the image (``weight_words + bias words``) is never
    taken.

A cover run shows a trace in which the result leaves ``o`` (the checks are not vacuous). The
proof goes through ``hw.formal.check_harness``, the runner of the unit proofs, and returns
their ``ProofResult`` (unit ``"net"``).
"""

import inspect
import textwrap
import time
from dataclasses import dataclass, replace
from pathlib import Path

import numpy as np
from amaranth.asserts import AnyConst, AnySeq
from amaranth.hdl import (
    Assume,
    Cover,
    Elaboratable,
    Module,
    Mux,
    ResetSignal,
    Signal,
    signed,
)

from helu.common.executor import run_all
from helu.golden import fixed, intmodel
from helu.golden.intmodel import InputFormat, IntModel
from helu.hw import formal
from helu.hw.harness import add_check
from helu.hw.net import core
from helu.hw.net.mlp import MLP
from helu.hw.symbolic import Symbolic, SymbolicArray, all_of
from helu.hw.tools import ToolError

__all__ = [
    "NET_PROPERTIES",
    "MODES",
    "MUTANTS",
    "NetConfig",
    "NetHarness",
    "QUICK",
    "proof_model",
    "prove_net",
    "prove_net_all",
]

NET_PROPERTIES = ("function", "stream", "reset", "response", "load")
MODES = ("function", "control", "load")
TIMINGS = ("free", "full")
MARGIN = 3
"""Cycles the bounded depth adds beyond the sample's input transfers and the latency."""


def proof_model(sizes, seed: int) -> IntModel:
    """A seeded random dense model within the model rules (``IntModel.check``): int8 weights
    over their whole range, biases and shifts scaled so that some codes saturate and some do
    not; even seeds take unsigned inputs (``intmodel.PIXELS``), odd ones every int8 code."""
    sizes = tuple(sizes)
    if len(sizes) < 2 or any(isinstance(n, bool) or not isinstance(n, int) or n < 1 for n in sizes):
        raise ValueError(f"Sizes must be at least two positive integers, not {sizes!r}")
    rng = np.random.default_rng(seed)
    fmt = intmodel.PIXELS if seed % 2 == 0 else InputFormat(0, -128, 127)
    weights, biases, shifts = [], [], []
    in_max = fmt.magnitude
    for fan_in, out in zip(sizes[:-1], sizes[1:], strict=True):
        weights.append(rng.integers(-128, 128, size=(out, fan_in)))
        spread = max(int(np.sqrt(fan_in)) * in_max * 64, 1)
        shifts.append(max(int(np.log2(spread)) - 5, 0))
        biases.append(rng.integers(-spread, spread + 1, size=out))
        in_max = fixed.Format(fixed.ACT_WIDTH, 0).max_code
    return IntModel(weights, biases, shifts, threshold=-2, input=fmt)


@dataclass(frozen=True)
class NetConfig:
    """One engine proof: a dense network of ``sizes`` at ``lanes`` (``P``), its model
    :func:`proof_model` ``(sizes, seed)``, in ``mode`` (:data:`MODES`) and ``timing``
    (:data:`TIMINGS`; see :class:`NetHarness`)."""

    sizes: tuple[int, ...]
    lanes: int
    seed: int = 0
    mode: str = "function"
    timing: str = "free"

    def __post_init__(self):
        object.__setattr__(self, "sizes", tuple(self.sizes))
        if self.mode not in MODES:
            raise ValueError(f"Mode must be one of {', '.join(MODES)}, not {self.mode!r}")
        if self.timing not in TIMINGS:
            raise ValueError(f"Timing must be one of {', '.join(TIMINGS)}, not {self.timing!r}")

    @property
    def label(self) -> str:
        """``dense4-3-2-p2-s0`` (also the proof's folder); ``-control``, ``-load`` in those
        modes."""
        label = f"dense{'-'.join(map(str, self.sizes))}-p{self.lanes}-s{self.seed}"
        label += "" if self.mode == "function" else f"-{self.mode}"
        return label + ("" if self.timing == "free" else f"-{self.timing}")


QUICK = (
    NetConfig((2, 2, 2), 2, 4),  # the longest first: two workers finish together
    NetConfig((4, 3, 2), 2, 0, mode="control"),
    NetConfig((2, 2), 2, 2),
    NetConfig((2, 2), 2, 4),
)
"""What ``helu prove --unit net`` proves (about a minute on 2 cores): the function of dense 2-2
(two seeded models) and 2-2-2 at ``P = 2`` with pixel inputs (codes 0 to 16), and every
control property of dense 4-3-2 at ``P = 2``. Larger function proofs, signed int8 inputs and the
load port (``mode="load"``, which proves since the engine refuses addresses past the image) are
``prove_net`` calls away."""


class NetHarness(Elaboratable):
    """One inference engine under free stimulus, one free sample, its properties as assertions
    (see the module docstring).

    Parameters
    ----------
    engine : MLP
        The engine (or a mutant of it): its ports ``i``, ``o``, ``load``, its
        ``input_transfers``, ``input_index`` and ``latency``.
    model : IntModel
        The specification: the golden inference of this model is what ``o`` must carry
        (normally ``engine.model``).
    mode : "function", "control" or "load"
        ``"function"``: ``load`` idle, every property but ``load`` asserted; ``"control"``: the
        same without ``function`` (the solver never relates the arithmetic to the golden
        inference: what lets it reach larger engines); ``"load"``: ``control`` with ``load``
        free on every cycle and its properties.
    timing : "free" or "full"
        ``"free"``: ``i.valid``, ``o.ready`` and ``rst`` free on every cycle; ``"full"``: the
        input always valid, the output always ready, no reset (one trace per sample).
    bound : int or None
        The response bound in cycles (default ``engine.latency``).
    """

    def __init__(self, engine: MLP, model: IntModel, *, mode="function", timing="free", bound=None):
        if mode not in MODES:
            raise ValueError(f"Mode must be one of {', '.join(MODES)}, not {mode!r}")
        if timing not in TIMINGS:
            raise ValueError(f"Timing must be one of {', '.join(TIMINGS)}, not {timing!r}")
        self._timing = timing
        self._engine = engine
        self._model = model
        self._mode = mode
        self._bound = engine.latency if bound is None else bound
        self.checks: dict[str, str] = {}  # signal name -> property

    @property
    def bound(self) -> int:
        return self._bound

    def _check(self, m: Module, prop: str, check: str, condition):
        add_check(m, self.checks, prop, check, condition)

    def elaborate(self, platform):
        m = Module()
        m.submodules.engine = engine = self._engine
        model = self._model
        i, o, load = engine.i, engine.o, engine.load
        rst = ResetSignal()
        words = engine.input_transfers
        index = engine.input_index  # (words, P): the input in each lane, -1 padding

        # The sample: one free constant per input code, within the model's input format.
        codes = [Signal(signed(fixed.ACT_WIDTH), name=f"x{n}") for n in range(model.sizes[0])]
        for c in codes:  # named signals, so that a counterexample shows the sample
            m.d.comb += [c.eq(AnyConst(c.shape())),
                         Assume((c >= model.input.lo) & (c <= model.input.hi))]  # fmt: skip
        logits, cls = intmodel.infer(model, SymbolicArray([[Symbolic(c) for c in codes]]))
        want_logits, want_cls = logits[0].values(), cls[0].value

        sent = Signal(range(words + 1))  # input words taken (the harness resets with rst)
        taken = Signal(range(3))  # output transfers (saturating at 2)
        if self._timing == "free":
            m.d.comb += [i.valid.eq(AnySeq(1) & (sent < words)), o.ready.eq(AnySeq(1))]
        else:  # full rate: the input always valid, the output always ready, no reset
            m.d.comb += [i.valid.eq(sent < words), o.ready.eq(1), Assume(~rst)]
        for k in range(engine.lanes):
            m.d.comb += i.payload.x[k].eq(AnySeq(fixed.ACT_WIDTH))  # padding, or past the sample
            with m.Switch(sent):
                for t in range(words):
                    if index[t, k] >= 0:
                        with m.Case(t):
                            m.d.comb += i.payload.x[k].eq(codes[index[t, k]])
        if self._mode == "load":
            m.d.comb += [load.valid.eq(AnySeq(1)),
                         load.payload.eq(AnySeq(len(load.payload.as_value())))]  # fmt: skip
        else:
            m.d.comb += load.valid.eq(0)
        push = i.valid & i.ready
        pop = o.valid & o.ready
        m.d.sync += sent.eq(sent + push)
        with m.If(pop & (taken < 2)):
            m.d.sync += taken.eq(taken + 1)

        # History (Amaranth 0.5 has no Past); the initial state is the reset state.
        past_valid = Signal(reset_less=True)
        past_ready = Signal(reset_less=True)
        past_rst = Signal(init=1, reset_less=True)
        past_payload = Signal.like(o.payload.as_value(), reset_less=True)
        m.d.sync += [past_valid.eq(o.valid), past_ready.eq(o.ready), past_rst.eq(rst),
                     past_payload.eq(o.payload.as_value())]  # fmt: skip

        # Cycles since the sample's last input transfer, and whether o.ready held all along.
        last = push & (sent == words - 1)
        since = Signal(range(self._bound + 2))
        armed = Signal()
        steady = Signal()
        seen = Signal()
        with m.If(last):
            m.d.sync += [since.eq(1), armed.eq(1), steady.eq(o.ready), seen.eq(0)]
        with m.Elif(armed):
            m.d.sync += [since.eq(Mux(since > self._bound, since, since + 1)),
                         steady.eq(steady & o.ready), seen.eq(seen | o.valid)]  # fmt: skip

        if self._mode == "function":
            payload_logits = [o.payload.logits[k] for k in range(engine.model.classes)]
            self._check(
                m,
                "function",
                "logits",
                ~o.valid
                | all_of(
                    [got == want for got, want in zip(payload_logits, want_logits, strict=True)]
                ),
            )
            self._check(m, "function", "cls", ~o.valid | (o.payload.cls == want_cls))
        self._check(m, "stream", "whole", ~o.valid | (sent == words))
        self._check(m, "stream", "once", ~o.valid | (taken == 0))
        held = past_valid & ~past_ready & ~past_rst
        self._check(m, "stream", "hold", ~held | o.valid)
        self._check(m, "stream", "stable", ~held | (o.payload.as_value() == past_payload))
        released = past_rst & ~rst
        image_words = engine.weight_words + len(engine.image.biases)
        # load.ready high for any address inside the image (one past it is refused)
        load_open = load.ready | (load.payload.addr >= image_words)
        self._check(m, "reset", "clears",
                    ~past_rst | (~o.valid & (~released | (i.ready & load_open))))  # fmt: skip
        self._check(m, "response", "bound",
                    ~(armed & steady & (since >= self._bound)) | o.valid | seen)  # fmt: skip
        if self._mode == "load":
            self._check(m, "load", "idle", ~load.ready | (sent == 0) | (sent == words))
            self._check(
                m, "load", "refused", ~(load.valid & load.ready) | (load.payload.addr < image_words)
            )
        m.d.comb += Cover(pop)
        return m


# ---------------------------------------------------------------------------------------------
# Mutants: one deliberate bug each, in the engine's own code, and the property it must break
# ---------------------------------------------------------------------------------------------


def mutated(func, edits, overrides=None):
    """``func`` recompiled from its own source with ``edits`` (``(old, new)`` pairs) applied and
    the names of ``overrides`` rebound in its globals (a copy: the module stays as it is).

    Each ``old`` must occur exactly once, so a mutant follows the code it mutates: when that code
    changes, building the mutant fails instead of silently proving the unmutated engine.
    """
    source = textwrap.dedent(inspect.getsource(func))
    for old, new in edits:
        if source.count(old) != 1:
            raise AssertionError(f"{func.__qualname__} no longer reads {old!r} exactly once")
        source = source.replace(old, new)
    namespace = dict(func.__globals__) | dict(overrides or {})
    exec(compile(source, f"<mutant of {func.__qualname__}>", "exec"), namespace)
    return namespace[func.__name__]


def _argmax_last():
    """The argmax keeps the last index of the largest logit (``>=``)."""
    argmax = mutated(core.logit_argmax, [("(q > best)", "(q >= best)")])
    return {"elaborate": mutated(MLP.elaborate, [], {"logit_argmax": argmax})}


def _ready_dropped():
    """``o.valid`` falls after one cycle whether or not ``o.ready`` took it."""
    edit = ("with m.If(self.o.ready):\n        m.d.sync += self.o.valid.eq(0)",
            "with m.If(1):\n        m.d.sync += self.o.valid.eq(0)")  # fmt: skip
    return {"elaborate": mutated(MLP.elaborate, [edit])}


def _load_any_address():
    """The load port takes any address, past the image too (the bug the load mode found)."""
    edit = ("& (load_word == 0) & (self.load.payload.addr < words)", "& (load_word == 0)")
    return {"elaborate": mutated(MLP.elaborate, [edit])}


MUTANTS = {
    # name: (what it does, how it is built, the check that must fail)
    "argmax-last": ("argmax takes the last index of the largest logit", _argmax_last,
                    "function.cls"),
    "shift": ("the last layer's shift one too large (in the engine only)", None,
              "function.logits"),
    "ready-dropped": ("o.valid falls without o.ready", _ready_dropped, "stream.hold"),
    "load-any-address": ("the load port takes addresses past the image", _load_any_address,
                         "load.refused"),
}  # fmt: skip
"""Mutants of the engine for the tests (``prove_net(..., mutant=name)``)."""


def _engine(config: NetConfig, model: IntModel, mutant: str | None) -> MLP:
    if mutant is None:
        return MLP(model, config.lanes)
    if mutant not in MUTANTS:
        raise ValueError(f"Unknown mutant {mutant!r}; choose from {', '.join(MUTANTS)}")
    _what, build, _check = MUTANTS[mutant]
    if build is None:  # "shift": the engine is built from another model than the reference
        shifts = list(model.shifts)
        shifts[-1] += 1
        return MLP(replace(model, shifts=shifts), config.lanes)
    cls = type(f"Mutant_{mutant.replace('-', '_')}", (MLP,), build())
    return cls(model, config.lanes)


def default_depth(engine: MLP) -> int:
    """The bounded depth: the sample's input transfers, the latency, and :data:`MARGIN`."""
    return engine.input_transfers + engine.latency + MARGIN


def prove_net(
    config: NetConfig,
    out,
    *,
    depth: int | None = None,
    solver: str = formal.DEFAULT_SOLVER,
    toolchain=None,
    timeout: float = 300.0,
    mutant: str | None = None,
    bound: int | None = None,
) -> formal.ProofResult:
    """Prove the engine of ``config``; work files and traces go under ``out/net/<label>``.

    ``depth`` is the bounded depth (default :func:`default_depth`); ``mutant`` builds a broken
    engine (:data:`MUTANTS`) against the same specification; ``bound`` the response bound
    (default the engine's latency). Each tool run may take ``timeout`` seconds. Returns a
    ``hw.formal.ProofResult`` (unit ``"net"``); raises ``ToolMissing`` when the tools are
    absent and ``ValueError`` for a bad depth.
    """
    tools = toolchain or formal.find_toolchain(solver)
    started, cpu_started = time.monotonic(), formal._cpu_seconds()
    model = proof_model(config.sizes, config.seed)
    engine = _engine(config, model, mutant)
    need = engine.input_transfers + engine.latency
    if depth is None:
        depth = default_depth(engine)
    if isinstance(depth, bool) or not isinstance(depth, int) or depth < need:
        raise ValueError(f"Proof depth must be an integer of at least {need}, not {depth}")
    harness = NetHarness(engine, model, mode=config.mode, timing=config.timing, bound=bound)
    label = config.label + (f"-mutant-{mutant}" if mutant else "")
    result = formal.ProofResult("net", label, "bmc", depth, tools.solver,
                                properties=NET_PROPERTIES)  # fmt: skip
    formal.check_harness(
        result, harness, Path(out) / "net" / label, tools, timeout=timeout,
        cover=(depth, "stream.cover", f"no trace in which the result leaves o within {depth} "
               "cycles"),
    )  # fmt: skip
    result.seconds = time.monotonic() - started
    result.cpu_seconds = formal._cpu_seconds() - cpu_started
    return result


def _prove_job(job):
    config, out, depth, solver, timeout = job
    try:
        return prove_net(config, out, depth=depth, solver=solver, timeout=timeout)
    except ToolError as exc:
        result = formal.ProofResult("net", config.label, "bmc", depth or 0, solver,
                                    properties=NET_PROPERTIES)  # fmt: skip
        result.status, result.detail = "error", str(exc)
        return result


def prove_net_all(
    configs,
    out,
    *,
    depth: int | None = None,
    solver: str = formal.DEFAULT_SOLVER,
    jobs: int = 1,
    timeout: float = 300.0,
    progress=None,
    executor=None,
) -> list:
    """:func:`prove_net` for every configuration, on ``executor`` or ``jobs`` worker processes
    (as ``hw.formal.prove_all``); results in the order of ``configs``."""
    formal.find_toolchain(solver)
    work = [(config, Path(out), depth, solver, timeout) for config in configs]
    return run_all(_prove_job, work, executor=executor, jobs=jobs, progress=progress)
