"""Many syntheses: every (target, parameter set, unit), on any executor of
``helu.common.executor`` (this process, worker processes, a Dask cluster)."""

import warnings

from helu.common.executor import run_all
from helu.hw.synth.run import synthesize, threshold_kind
from helu.hw.synth.targets import DEFAULT_FRAC, tools_for
from helu.hw.tools import ToolError, find_tool

__all__ = ["THRESHOLD_KINDS", "sweep_params", "source_key", "sweep"]


THRESHOLD_KINDS = ("constant", "port")
"""The two ways a unit with a threshold can be built: constant ``T`` or a runtime port."""


def sweep_params(widths, lanes_list, *, frac=None, alpha: float = 0.05, thresholds=("constant",)):
    """``UnitParams`` for every (width, lanes, threshold kind).

    ``frac``: one value, a ``{width: frac}`` dict, or ``None`` (:data:`DEFAULT_FRAC`, which also
    fills widths a dict leaves out).

    ``thresholds`` holds ``"constant"`` and/or ``"port"`` (:data:`THRESHOLD_KINDS`); a unit
    without a threshold is synthesized once whatever the kinds (see :func:`sweep`).
    """
    from helu.hw.units import UnitParams

    bad = [k for k in thresholds if k not in THRESHOLD_KINDS]
    if bad or not thresholds:
        raise ValueError(
            f"Threshold kinds must be from {', '.join(THRESHOLD_KINDS)}, not {list(thresholds)}"
        )
    out = []
    for width in widths:
        if isinstance(frac, dict) and width in frac:
            f = frac[width]
        elif frac is not None and not isinstance(frac, dict):
            f = frac
        else:
            f = DEFAULT_FRAC.get(width, width // 2)
        for lanes in lanes_list:
            for kind in dict.fromkeys(thresholds):
                port = kind == "port"
                out.append(
                    UnitParams(width=width, lanes=lanes, frac=f, alpha=alpha, threshold_port=port)
                )
    return out


def _job(job):
    unit, params, target, seeds, out_dir, yosys, source = job
    try:
        return synthesize(
            unit, params, target, seeds=seeds, out_dir=out_dir, yosys=yosys, verilog=source
        )
    except ToolError as exc:
        return {
            "unit": unit,
            "target": target,
            "width": params.width,
            "lanes": params.lanes,
            "threshold": threshold_kind(unit, params),
            "error": str(exc),
        }


def source_key(unit: str, params) -> tuple:
    """What identifies one hardware configuration: the unit and the parameters that shape it."""
    from helu.hw.units import UNITS

    return (unit, tuple(UNITS[unit].shaping(params).items()))


def _jobs(units, params_list, targets, seeds, out_dir, yosys, sources) -> list[tuple]:
    """One job per (target, params, unit), a unit without a threshold once per other params."""
    from helu.hw.units import UNITS

    work, seen = [], set()
    for t in targets:
        for p in params_list:
            for u in units:
                key = source_key(u, p)
                if UNITS[u].has_threshold or (t, key) not in seen:
                    seen.add((t, key))
                    work.append((u, p, t, seeds, out_dir, yosys, sources.get(key)))
    return work


def sweep(
    units,
    params_list,
    targets,
    *,
    seeds: int = 3,
    out_dir,
    jobs: int = 1,
    yosys: str = "yosys",
    progress=None,
    sources=None,
    executor=None,
):
    """Run :func:`synthesize` over every (target, params, unit); return ``(results, skipped)``.

    ``sources`` maps :func:`source_key` to a ``hw.verilog.Generated`` written earlier: that
    configuration is synthesized from that file (byte for byte) instead of a new generation.

    A target whose tools are missing is skipped (``skipped`` maps it to the reason, naming the
    package to install) instead of failing the sweep. A run whose tool fails yields a record with
    an ``error`` key and the sweep goes on; the caller decides what to do with it.
    ``jobs > 1`` runs that many syntheses at once in worker processes; ``executor`` (the
    protocol of ``helu.common.executor``: its process pool or Dask executor) runs them instead,
    and ``jobs`` is then ignored. With a Dask cluster, ``out_dir`` must be on a file system the
    workers share.
    ``progress(done, total, record)`` is called after each run.
    """
    from helu.hw.units import UNITS, unelaborated

    if not isinstance(jobs, int) or isinstance(jobs, bool) or jobs < 1:
        raise ValueError(f"Job count must be a positive integer, not {jobs!r}")
    # Every unit is built once with every parameter set here (cheap: no elaboration), so a bad
    # parameter ends the sweep before any folder is made, not in a worker after others ran.
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        for unit in units:
            if unit not in UNITS:
                raise ValueError(f"Unknown unit {unit!r}; registered units: {', '.join(UNITS)}")
            for params in params_list:
                # a check only: this instance is never elaborated, and need not be reported so
                unelaborated(UNITS[unit].build(params))
    skipped = {}
    runnable = []
    for target in targets:
        try:
            for tool in tools_for(target):
                find_tool(yosys if tool == "yosys" else tool)
        except ToolError as exc:
            skipped[target] = str(exc)
            continue
        runnable.append(target)
    work = _jobs(units, params_list, runnable, seeds, out_dir, yosys, sources or {})
    # run_all returns the records in the order of the work, whatever order they finished in.
    results = run_all(_job, work, executor=executor, jobs=jobs, progress=progress)
    return results, skipped
