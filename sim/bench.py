"""Verification throughput: elements checked per second on each simulator, next to numpy.

``run()`` streams random 8-bit codes through the forward unit at 1, 4, 16 and 64 lanes, full
rate (no stalls), on Icarus Verilog and Verilator, and times the numpy reference on the same
vectors. Simulator figures time the bench's stream loop inside the simulator (build and start-up
excluded; both are reported separately). Targets at 64 lanes: >= 250k elements/s on Icarus and
>= 1M on Verilator. The figures are measured, printed and returned, never asserted.
"""

import time

import numpy as np

from helu.golden import fixed
from helu.hw.units import UNITS, UnitParams
from helu.sim import runner
from helu.sim import stimulus as st

__all__ = ["run", "LANES", "TARGETS"]

LANES = (1, 4, 16, 64)
TARGETS = {"icarus": 250_000, "verilator": 1_000_000}  # elements/s at 64 lanes
TRANSFERS = {"icarus": 4000, "verilator": 16000}  # enough for a stable figure (seconds each)
UNIT = "forward"
WIDTH = 8


def _stimulus(build, z):
    seg = st.Segment(
        "random", "random", "golden", None, {"z": z}, {"y": fixed.forward(z)}
    )  # expected from golden.fixed, as for golden sets
    return st.assemble([seg], build.sidecar)


def _numpy_rate(z, lanes, repeat=5) -> float:
    params = UnitParams(width=WIDTH, lanes=lanes)
    grid = z.reshape(-1, lanes)  # (transfers, lanes)
    best = float("inf")
    for _ in range(repeat):
        start = time.perf_counter()
        y = UNITS[UNIT].reference(params, {"z": grid})["y"]
        ok = np.array_equal(y, fixed.forward(grid))
        best = min(best, time.perf_counter() - start)
    assert ok
    return z.size / best


def run(out="build/bench/sim", simulators=runner.SIMULATORS, lanes=LANES) -> dict:
    """Measure and print the throughput table; returns ``{"rows": [...], "targets": ...}``."""
    rng = np.random.default_rng(0)
    fmt = fixed.Format(WIDTH, 4)
    rows = []
    for sim in simulators:
        missing = runner.tool_missing(sim)
        if missing:
            print(f"{sim}: skipped ({missing})")
            continue
        for n_lanes in lanes:
            z = rng.integers(fmt.min_code, fmt.max_code + 1, TRANSFERS[sim] * n_lanes)
            start = time.perf_counter()
            build = runner.build_unit(UNIT, UnitParams(width=WIDTH, lanes=n_lanes), sim, out)
            build_s = time.perf_counter() - start
            r = runner.run_stimulus(build, _stimulus(build, z), name="bench")
            rows.append(
                {
                    "simulator": sim,
                    "unit": UNIT,
                    "width": WIDTH,
                    "lanes": n_lanes,
                    "elements": r["checked"],
                    "mismatches": r["mismatches"],
                    "cycles": r["cycles"],
                    "seconds": r["seconds"],
                    "elements_per_s": r["checked"] / r["seconds"],
                    "cycles_per_s": r["cycles"] / r["seconds"],
                    "numpy_elements_per_s": _numpy_rate(z, n_lanes),
                    "build_s": build_s,
                    "run_wall_s": r["wall_s"],
                }
            )
    _print(rows)
    return {"rows": rows, "targets_at_64_lanes": TARGETS}


def _print(rows):
    head = f"{'simulator':<10} {'lanes':>5} {'elements':>9} {'cycles/s':>10} {'elements/s':>12} "
    head += f"{'numpy el/s':>13} {'target':>10}  mismatches"
    print(head)
    print("-" * len(head))
    for r in rows:
        target = TARGETS[r["simulator"]] if r["lanes"] == 64 else None
        verdict = "" if target is None else ("met" if r["elements_per_s"] >= target else "MISSED")
        tgt = "" if target is None else f">={target / 1e6:g}M {verdict}"
        print(
            f"{r['simulator']:<10} {r['lanes']:>5} {r['elements']:>9} {r['cycles_per_s']:>10,.0f} "
            f"{r['elements_per_s']:>12,.0f} {r['numpy_elements_per_s']:>13,.0f} {tgt:>10}  "
            f"{r['mismatches']}"
        )


if __name__ == "__main__":
    run()
