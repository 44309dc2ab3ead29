"""`make bench`: the speed and memory targets, measured and printed (never asserted in tests).

Runs each area's benchmark in turn: HeLU training cost against ReLU (golden), and verification
throughput on the simulators against the numpy reference (sim), and the time to prove every
unit formally (helu/proofs.py). Figures are ratios measured in
one run on this machine; the machine is printed with them.
"""

import json
import sys
from pathlib import Path

from helu.report import environment


def main(argv=None) -> int:
    out = Path("build/bench")
    out.mkdir(parents=True, exist_ok=True)
    env = environment()
    print(f"machine: {env['machine']}")
    results = {"environment": env}
    from helu.golden import bench as golden_bench

    print("\n== HeLU training cost (golden/bench.py) ==")
    results["golden"] = golden_bench.run(machine=env["machine"])
    from helu.sim import bench as sim_bench

    print("\n== Verification throughput (sim/bench.py) ==")
    results["sim"] = sim_bench.run()
    from helu import proofs

    print("\n== Formal proofs (helu/proofs.py) ==")
    results["prove"] = proofs.bench()
    from helu import onchip

    print("\n== Training on chip (helu/onchip.py) ==")
    results["onchip"] = onchip.bench()
    (out / "bench.json").write_text(json.dumps(results, indent=2, default=str) + "\n")
    print(f"\nwritten: {out / 'bench.json'}")
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
