"""`make bench-fit`: the engines on the five-dollar FPGA, measured and printed against targets.

Synthesises the digits 64-32-32-10 network's engines with the project's own flow
(``hw.net.synth``: Yosys, then nextpnr in the timing harness, Fmax the median of ``--seeds``
seeds): the training engine at ``P`` = 8 and the inference engine at ``P`` = 8 and 16 on the
iCE40 UP5K (multipliers as ``SB_MAC16`` pairs in 8x8 mode), the training engine on the ECP5-25k.
Prints each figure beside its target and MARLANN's published 16 MACs a cycle at 23 to 29 MHz on
the same chip, and writes ``build/bench/fit.json``. Minutes of CPU: not part of ``make test``.
"""

import argparse
import json
import sys
import tempfile
import time
from pathlib import Path


def _marlann() -> str:
    """The published anchor, from the one place it is stated (``helu.steps.mlp.MARLANN``)."""
    from helu.steps.mlp import MARLANN

    lo, hi = MARLANN["mhz"]
    macs = MARLANN["macs_per_cycle"]
    return (
        f"MARLANN (published, not measured here): {macs} MACs/cycle at {lo}-{hi} MHz on the "
        f"{MARLANN['device']}, {macs * lo:,}-{macs * hi:,} MMAC/s peak"
    )


TARGETS = {
    ("trainer", "up5k", 8): {"lut": 4500, "dsp": 8, "fmax_mhz": 30.0, "ideal_ratio": 1.1},
    ("mlp", "up5k", 16): {"fmax_mhz": 40.0, "ideal_ratio": 1.1, "mmacs_per_s": 600.0},
    ("trainer", "ecp5", 8): {"fmax_mhz": 100.0},
}
"""The fit issue's targets, by (engine, target, P)."""


def _builds():
    return [("trainer", "up5k", 8), ("mlp", "up5k", 8), ("mlp", "up5k", 16), ("trainer", "ecp5", 8)]


def _verdicts(key, record) -> list[str]:
    out = []
    for name, limit in TARGETS.get(key, {}).items():
        got = record.get(name)
        if got is None:
            out.append(f"{name}: not measured ({record.get('fmax_reason') or 'missing'})")
            continue
        low_is_good = name in ("lut", "dsp", "ideal_ratio")
        ok = got <= limit if low_is_good else got >= limit
        sign = "<=" if low_is_good else ">="
        out.append(f"{name} {got:,.3g} {'meets' if ok else 'MISSES'} {sign} {limit:,}")
    return out


def _build_name(build) -> str:
    kind, target, lanes = build
    return f"{kind}-{target}-p{lanes}"


def run(seeds: int = 3, out_dir=None, only=None) -> list[dict]:
    """Synthesize the builds (all, or those named in ``only``: ``mlp-up5k-p16`` and so on) and
    print each figure against its target; returns the records."""
    from helu.golden.intgolden import export_net
    from helu.golden.intmodel import load
    from helu.hw.net.synth import synthesize_mlp, synthesize_trainer
    from helu.hw.net.trainer import TrainSpec
    from helu.mlp import critical_path_line
    from helu.onchip import scratch_net

    work = Path(out_dir or tempfile.mkdtemp(prefix="helu-fit-"))
    print(f"digits integer network (helu golden --net) and builds in {work}", flush=True)
    export_net(work / "golden-net", steps=0, force=True)
    model = load(work / "golden-net" / "model")
    spec = TrainSpec.from_net(scratch_net(0))
    rows = []
    for kind, target, lanes in [b for b in _builds() if not only or _build_name(b) in only]:
        start = time.monotonic()
        print(f"{kind} P={lanes} on {target}: synthesis and {seeds} nextpnr seeds ...", flush=True)
        if kind == "mlp":
            record = synthesize_mlp(model, lanes, target, seeds=seeds, out_dir=work / "synth")
        else:
            record = synthesize_trainer(spec, lanes, target, seeds=seeds, out_dir=work / "synth")
        record["ideal_ratio"] = record["cycles_per_sample"] / record["ideal_cycles"]
        record["kind"] = kind
        rows.append(record)
        print(
            f"  LUT4 {record['lut']:,}, FF {record['ff']:,}, carry {record['carry']:,}, "
            f"DSP {record['dsp']}, RAM {record['ram']}, fits {record['fits']}, placed "
            f"{record.get('placed')}, Fmax {record['fmax_mhz']} MHz (seeds "
            f"{record['fmax_seeds']}), {record['cycles_per_sample']} cycles/sample = "
            f"{record['ideal_ratio']:.3f} x ideal ({time.monotonic() - start:.0f} s)",
            flush=True,
        )
        for line in _verdicts((kind, target, lanes), record):
            print(f"  target: {line}")
        if record.get("fmax_reason"):
            print(f"  no Fmax: {record['fmax_reason']}")
        if critical_path_line(record):
            print(f"  {critical_path_line(record)}")
    print(_marlann())
    return rows


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(prog="make bench-fit", description=__doc__.splitlines()[0])
    parser.add_argument("--seeds", type=int, default=3, help="nextpnr seeds per build (median)")
    parser.add_argument("--out", default="build/bench", help="folder of fit.json and the builds")
    names = [_build_name(b) for b in _builds()]
    parser.add_argument(
        "--only", metavar="BUILD[,BUILD..]", help=f"only these builds, from {', '.join(names)}"
    )
    args = parser.parse_args(argv)
    if args.seeds < 1:
        print(f"error: --seeds must be at least 1, not {args.seeds}", file=sys.stderr)
        return 2
    only = [b.strip() for b in args.only.split(",")] if args.only else None
    unknown = sorted(set(only or ()) - set(names))
    if unknown:
        print(f"error: --only {', '.join(unknown)}: choose from {', '.join(names)}",
              file=sys.stderr)  # fmt: skip
        return 2
    out = Path(args.out)
    rows = run(args.seeds, out / "fit", only)
    (out / "fit.json").write_text(json.dumps(rows, indent=2, default=str) + "\n")
    print(f"written: {out / 'fit.json'}")
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
