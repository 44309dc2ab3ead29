"""The formal proofs' application layer: what ``helu prove`` and the flow's prove step
(``helu.steps.prove``) share.

``hw.formal`` proves and returns records; :func:`proof_plan` chooses the widths of each unit,
:func:`write_results` and :func:`markdown_table` write and present the records, :func:`bench`
times the flow's proof set (:data:`FLOW_WIDTHS` x :data:`FLOW_LANES`, ``make bench``).
"""

import json
import logging
import time
from pathlib import Path

__all__ = [
    "FLOW_WIDTHS",
    "FLOW_LANES",
    "RESULTS",
    "split_units",
    "proof_plan",
    "bench",
    "markdown_table",
    "write_results",
]

FLOW_WIDTHS = (8, 16)
FLOW_LANES = (1, 4)
RESULTS = "prove/results.json"

log = logging.getLogger(__name__)


def proof_plan(units, widths, *, every_unit: bool):
    """``([(units, widths), ...], note or None)``: what ``helu prove`` runs.

    As in the flow, when the user asked for every unit, a bounded-proof unit (i-GELU) is proved
    at the narrowest width only: at 16 bits its multipliers would spend the whole timeout and fail
    the default command. Naming the unit still proves it at every width asked for.
    """
    if not every_unit:
        return [(list(units), tuple(widths))], None
    wide, narrow = split_units(units)
    if not narrow or min(widths) == max(widths):
        return [(list(units), tuple(widths))], None
    note = (
        f"{', '.join(narrow)} (bounded proof) at width {min(widths)} only; wider, its "
        f"multipliers take the solver far longer: run 'helu prove --unit {narrow[0]} --width "
        f"{max(widths)} --timeout 3600' for it"
    )
    return [(wide, tuple(widths)), (narrow, (min(widths),))], note


def split_units(units) -> tuple[list[str], list[str]]:
    """``(proved at every width, proved at the narrowest width only)``: pipelined units get a
    bounded proof whose cost grows steeply with the width of their multipliers."""
    from helu.hw.formal import proof_method
    from helu.hw.units import UNITS

    narrow = [u for u in units if proof_method(UNITS[u]) == "bmc"]
    return [u for u in units if u not in narrow], narrow


def bench(out: Path = Path("build/bench/prove"), jobs: int = 2) -> dict:
    """`make bench`: the whole proof set (every unit, widths 8 and 16, lanes 1 and 4) timed
    against the target (2 minutes on 2 cores), and the two solvers on the same three proofs."""
    from helu.hw.formal import SOLVERS, find_toolchain, prove, prove_all
    from helu.hw.tools import ToolMissing
    from helu.hw.units import UNITS, UnitParams

    try:
        find_toolchain()
    except ToolMissing as exc:
        print(f"skipped: {exc}")
        return {"skipped": str(exc)}
    wide, narrow = split_units(list(UNITS))
    start = time.monotonic()
    results = prove_all(wide, FLOW_WIDTHS, FLOW_LANES, out, jobs=jobs)
    results += prove_all(narrow, (min(FLOW_WIDTHS),), FLOW_LANES, out, jobs=jobs)
    wall = time.monotonic() - start
    cpu = sum(r.cpu_seconds for r in results)
    proved = sum(r.ok for r in results)
    verdict = "met" if wall <= 120 and proved == len(results) else "MISSED"
    print(
        f"the flow's proof set (every unit at widths 8,16 x lanes 1,4; "
        f"{', '.join(narrow) or 'none'} at width 8): {proved}/{len(results)} proofs hold in "
        f"{wall:.0f} s wall with {jobs} jobs (target <= 120 s on 2 cores: {verdict}); "
        f"{cpu:.0f} CPU-seconds in all, tools included ({cpu / 2:.0f} s on 2 idle cores)"
    )
    per_unit = {}
    for r in results:
        per_unit[r.unit] = per_unit.get(r.unit, 0.0) + r.cpu_seconds
    for unit, seconds in per_unit.items():
        print(f"  {unit:<14} {seconds:6.1f} CPU-s (sum over its configurations)")
    wide_bounded = {}
    for name in narrow:  # the pipelined units at width 16, 1 lane: how far from the target
        r = prove(name, UnitParams(width=16, lanes=1, frac=8), out / "wide", timeout=120)
        wide_bounded[name] = {"status": r.status, "seconds": round(r.seconds, 1)}
        verdict = "proved" if r.ok else f"{r.status}: {r.detail or ', '.join(r.failed)}"
        print(
            f"  {name} width 16, 1 lane (bounded, depth {r.depth}): {verdict} ({r.seconds:.0f} s)"
        )
    solvers = {}
    samples = [
        ("forward-train", UnitParams(width=16, lanes=4, frac=8, threshold_port=True)),
        ("backward-z", UnitParams(width=16, lanes=4, frac=8, threshold_port=True)),
        ("igelu", UnitParams(width=8, lanes=1, frac=5)),
    ]
    for solver in SOLVERS:
        try:
            find_toolchain(solver)
        except ToolMissing:
            continue
        t0 = time.monotonic()
        ok = all(prove(n, p, out / f"solver-{solver}", solver=solver).ok for n, p in samples)
        solvers[solver] = round(time.monotonic() - t0, 1)
        held = "all hold" if ok else "FAILED"
        print(f"  solver {solver}: {solvers[solver]:.1f} s for the same 3 proofs ({held})")
    return {
        "proofs": len(results),
        "proved": proved,
        "wall_seconds": round(wall, 1),
        "cpu_seconds": round(cpu, 1),
        "jobs": jobs,
        "target_seconds": 120,
        "per_unit_cpu_seconds": {u: round(s, 1) for u, s in per_unit.items()},
        "solver_seconds": solvers,
        "width16_bounded": wide_bounded,
    }


def markdown_table(records) -> str:
    """Proof records (``ProofResult.to_dict()``) as a Markdown table: unit, configuration,
    properties, method, result, solver, wall and CPU seconds."""
    lines = [
        "| unit | configuration | properties | method | result | solver | seconds | CPU s |",
        "|---|---|---|---|---|---|---:|---:|",
    ]
    for r in records:
        outcome = {
            "pass": "proved",
            "fail": "**FAILED**",
            "timeout": "**not proved** (no verdict in time)",
            "error": "**error**",
        }[r["status"]]
        if r["failed"]:
            outcome += f": {', '.join(r['failed'])}"
        method = f"{r['method']}, depth {r['depth']}" if r["method"] else ""
        lines.append(
            f"| {r['unit']} | {r['config']} | {', '.join(r['properties'])} | {method} "
            f"| {outcome} | {r['solver']} | {r['seconds']:.1f} | {r.get('cpu_seconds', 0):.1f} |"
        )
    return "\n".join(lines) + "\n"


def write_results(
    results, out, *, wall_seconds: float | None = None, jobs: int | None = None
) -> tuple[Path, Path]:
    """``results.json`` and ``results.md`` in ``out``; returns their paths."""
    out = Path(out)
    out.mkdir(parents=True, exist_ok=True)
    records = [r.to_dict() for r in results]
    data = {
        "proofs": records,
        "wall_seconds": None if wall_seconds is None else round(wall_seconds, 1),
        "jobs": jobs,
    }
    json_path, md_path = out / "results.json", out / "results.md"
    json_path.write_text(json.dumps(data, indent=2) + "\n")
    md_path.write_text(markdown_table(records))
    return json_path, md_path
