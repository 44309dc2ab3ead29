"""The integer MLP engine in the command line (``--unit mlp``).

- ``helu verilog --unit mlp --model DIR``: the engine's Verilog and sidecar (``hw.net.verilog``);
- ``helu sim --unit mlp --golden DIR``: every sample of a ``helu golden --net`` folder through
  the engine on Icarus and/or Verilator, every logit and class checked (``sim.mlp``);
- ``helu synth --unit mlp --model DIR``: area, Fmax and samples/s on the iCE40 UP5K and the
  ECP5-25k, with HeLU and/or the i-GELU baseline between layers (``hw.net.synth``);
- the flow's MLP step (``helu.steps.mlp``) runs :func:`run_sim` and :func:`run_synth` on the
  integer network the flow exported.

``DIR`` for ``--model`` is an integer model folder (``golden.intmodel.save``) or a
``helu golden --net`` folder (its ``model/``).
"""

import json
import logging
from pathlib import Path

from helu.markdown import table

__all__ = [
    "add_arguments",
    "load_model",
    "verilog",
    "sim",
    "synth",
    "run_sim",
    "run_synth",
    "sim_table",
    "synth_table",
    "UNIT_NAMES",
    "SIM_KEYS",
]

SIM_KEYS = ("simulator", "checked", "mismatches", "message", "accuracy", "cycles_per_sample",
            "ideal", "macs", "seconds", "wall_s")  # fmt: skip
"""What a flow step keeps of each engine simulation (``sim.mlp.run_mlp``'s result)."""

UNIT_NAMES = ("net", "mlp")
"""``--unit net`` (and its older name ``mlp``): the integer network engine."""

log = logging.getLogger(__name__)


def add_arguments(parser, *, model: bool = True, activations: bool = False) -> None:
    """The ``--unit mlp`` options of a command (``--model``, ``--macs``, ``--activation``)."""
    group = parser.add_argument_group("integer network engine (--unit net, alias mlp)")
    if model:
        group.add_argument(
            "--model",
            metavar="DIR",
            help="a 'helu quantize' or 'helu golden --net' folder (its model/), or an integer "
            "model folder",
        )
    group.add_argument(
        "--macs", type=int, default=8, metavar="P", help="multiply-accumulates per cycle (8)"
    )
    group.add_argument(
        "--activation",
        default="helu",
        help="between layers: helu, or igelu (the i-GELU baseline, for cost)"
        + (", or a comma list" if activations else "")
        + " (default: helu)",
    )


def _activations(text: str) -> list[str]:
    from helu.commands.options import name_list
    from helu.hw.net.mlp import ACTIVATIONS

    return name_list(text, ACTIVATIONS, "activation")


def _lanes(macs) -> int:
    """``--macs P`` as the engine's lane count ``P`` (MACs per cycle), refused in the words of
    the option the user typed (the engine's own check speaks of lanes)."""
    from helu.hw.units import MAX_LANES

    if macs < 1:
        raise ValueError(f"--macs must be a positive integer, not {macs}")
    if macs > MAX_LANES:
        raise ValueError(f"--macs {macs}: at most {MAX_LANES} MACs per cycle")
    return macs


def load_model(folder, unit: str = "net"):
    """The ``IntModel`` of ``folder`` (a model folder or a ``helu golden --net`` folder);
    ``unit`` is the ``--unit`` the user typed, for the message."""
    from helu.golden import intmodel

    if folder is None:
        raise ValueError(f"--unit {unit} needs --model DIR (make one with 'helu quantize')")
    folder = Path(folder)
    if not folder.is_dir():
        raise ValueError(f"{folder}: no such model folder; make one with 'helu quantize'")
    if (folder / "model" / intmodel.MANIFEST).is_file():
        folder = folder / "model"
    return intmodel.load(folder)


def verilog(args) -> int:
    """``helu verilog --unit mlp``: write ``<top>.v`` and ``<top>.json`` into ``--out``."""
    from helu.common import outdir
    from helu.hw.net.mlp import MLP
    from helu.hw.net.verilog import generate

    model = load_model(args.model, args.unit)
    (activation,) = _activations(args.activation)[:1]
    lanes = _lanes(args.macs)
    out = outdir.claim(args.out, "verilog", force=args.force)
    with outdir.staged(out, "verilog", force=args.force, merge=True) as scratch:
        gen = generate(MLP(model, lanes, activation=activation), scratch)
    for path in (gen.verilog, gen.sidecar):
        print(out / path.name)
    return 0


def sim_table(results) -> str:
    head = ("simulator", "samples", "mismatches", "accuracy", "cycles/sample", "ideal", "seconds")
    rows = [
        (
            r["simulator"],
            str(r["checked"]),
            str(r["mismatches"]),
            "-" if r.get("accuracy") is None else f"{r['accuracy']:.4f}",
            f"{r['cycles_per_sample']:.1f}",
            f"{r['ideal']:.0f}",
            f"{r['seconds']:.1f}",
        )
        for r in results
    ]
    widths = [max(len(x) for x in col) for col in zip(head, *rows, strict=True)]
    lines = [
        "  ".join(c.ljust(w) for c, w in zip(row, widths, strict=True)) for row in [head, *rows]
    ]
    return "\n".join(lines)


def run_sim(golden, *, simulators, lanes=8, out="build/sim", stall=0.0, netlist=None) -> list[dict]:
    """Every sample of the ``helu golden --net`` folder ``golden`` through the engine with
    ``lanes`` multiply-accumulates per cycle (``netlist``: through that mapped netlist of it,
    gate by gate); ``ValueError`` first when the folder's stored logits or classes are not what
    its own model computes (``intgolden.check_inference``)."""
    from helu.golden import intgolden
    from helu.sim.mlp import run_mlp

    _, model, arrays = intgolden.load_net(golden)
    # As the units' path does (sim.runner.run): a golden that contradicts its own model is a
    # damaged golden, refused before any simulator runs, not an RTL mismatch.
    errors = intgolden.check_inference(golden)
    if errors:
        raise ValueError(
            f"{golden}: its inference vectors are inconsistent with its own model ({errors[0]}); "
            "re-create it with 'helu golden --net'"
        )
    return run_mlp(
        model,
        arrays,
        lanes=lanes,
        simulators=simulators,
        out=out,
        idle=stall,
        backpressure=stall,
        netlist=netlist,
    )


def sim(args) -> int:
    """``helu sim --unit mlp --golden DIR``: table of the runs; exit 1 on any mismatch."""
    from helu.commands.options import name_list
    from helu.sim import runner

    sims = name_list(args.sim, runner.SIMULATORS, "simulator")
    lanes = _lanes(args.macs)
    results = run_sim(args.golden, simulators=sims, lanes=lanes, out=args.out, stall=args.stall,
                      netlist=args.netlist)  # fmt: skip
    print(sim_table(results))
    bad = [r for r in results if r["mismatches"] or not r["checked"]]
    for r in bad:
        print(f"MISMATCH on {r['simulator']}: {r['message']} (log: {r['log']})")
    return 1 if bad else 0


def synth_table(records) -> str:
    head = "| engine | target | LUT4 | FF | carry | DSP | RAM | Fmax MHz | seeds | cycles/sample "
    head += "| samples/s | MMAC/s |"
    lines = [head, "|" + "---|" * (head.count("|") - 1)]
    for r in records:
        fmax = r.get("fmax_mhz")
        lines.append(
            f"| {r['activation']} P={r['lanes']} | {r['device']} | {r['lut']} | {r['ff']} | "
            f"{r['carry']} | {r['dsp']} | {r['ram']} | "
            + (f"{fmax:.1f}" if fmax else f"- ({r.get('fmax_reason')})")
            + f" | {', '.join(f'{v:.1f}' for v in r.get('fmax_seeds') or []) or '-'} | "
            f"{r['cycles_per_sample']} | "
            + (f"{r['samples_per_s']:,.0f}" if r.get("samples_per_s") else "-")
            + " | "
            + (f"{r['mmacs_per_s']:.0f}" if r.get("mmacs_per_s") else "-")
            + " |"
        )
    return "\n".join(lines) + "\n"


def run_synth(model, *, targets, activations, lanes=8, seeds=3, out="build/synth", fmax=True):
    """Synthesise the engine (``lanes`` MACs per cycle) for each target and activation; records
    (skips a missing tool)."""
    from helu.hw.net.synth import synthesize_mlp
    from helu.hw.synth import tools_for
    from helu.hw.tools import ToolMissing, find_tool

    records = []
    for target in targets:
        try:
            for tool in tools_for(target):
                find_tool(tool)
        except ToolMissing as exc:
            log.warning("skipping %s: %s", target, exc)
            continue
        for activation in activations:
            log.info("synthesizing the MLP engine (%s) for %s", activation, target)
            records.append(
                synthesize_mlp(
                    model,
                    lanes,
                    target,
                    activation=activation,
                    seeds=seeds,
                    out_dir=Path(out) / "mlp",
                    fmax=fmax,
                )
            )
    return records


def synth(args) -> int:
    """``helu synth --unit mlp --model DIR``: the table, plus ``<out>/mlp/results.json``."""
    from helu.commands.options import name_list
    from helu.common import outdir
    from helu.hw.synth import target_names

    model = load_model(args.model, args.unit)
    targets = name_list(args.target or "all", target_names("engines"), "target for --unit mlp")
    outdir.claim(args.out, "synth", force=args.force)
    if args.seeds < 1:
        raise ValueError(f"--seeds must be a positive integer, not {args.seeds}")
    from helu.hw.net.mlp import MLP
    from helu.hw.net.synth import check_memory
    from helu.hw.units import unelaborated

    lanes = _lanes(args.macs)
    engine = unelaborated(MLP(model, lanes))  # its memories, before any tool
    for target in targets:
        check_memory(engine, target)
    records = run_synth(
        model,
        targets=targets,
        activations=_activations(args.activation),
        lanes=lanes,
        seeds=args.seeds,
        out=args.out,
    )
    if not records:
        raise RuntimeError("no target could run: nextpnr/yosys missing")
    path = Path(args.out) / "mlp" / "results.json"
    path.write_text(json.dumps(records, indent=2) + "\n")
    outdir.mark(args.out, "synth")
    print(synth_table(records), end="")
    print(f"results: {path}")
    return 0


TRAINER_UNIT = "trainer"
"""``helu synth --unit trainer``: the integer training engine."""


def _trainer_rows(records) -> str:
    head = ("target", "P", "stash", "LUT4", "FF", "carry", "DSP", "RAM", "placed", "Fmax MHz",
            "cycles/step", "ideal", "steps/s")  # fmt: skip
    rows = [
        (
            r["device"],
            r["lanes"],
            r["stash"],
            r["lut"],
            r["ff"],
            r["carry"],
            r["dsp"],
            r["ram"],
            "-" if r.get("placed") is None else ("yes" if r["placed"] else "no"),
            f"{r['fmax_mhz']:.1f}" if r.get("fmax_mhz") else f"- ({r.get('fmax_reason')})",
            r["cycles_per_sample"],
            f"{r['ideal_cycles']:.0f}",
            f"{r['steps_per_s']:,.0f}" if r.get("steps_per_s") else "-",
        )  # fmt: skip
        for r in records
    ]
    return table(head, rows)


def critical_path_line(record) -> str | None:
    """One line naming a synthesis record's critical path (``hw.synth.parse_critical_path``),
    or ``None`` when it has none."""
    path = record.get("critical_path")
    if not path:
        return None
    through = ", ".join(path["signals"]) or "unnamed nets"
    first = f"; first assignment on it: {path['statements'][0]}" if path["statements"] else ""
    return (
        f"{record['device']}: critical path {path['ns']:.2f} ns (seed {path['seed']}: "
        f"{path['logic_ns']:.2f} logic, {path['routing_ns']:.2f} routing, {path['levels']} logic "
        f"levels) from {through}{first}"
    )


def synth_trainer(args) -> int:
    """``helu synth --unit trainer [--model DIR]``: the training engine's cells, placement and
    Fmax on each target (the digits 64-32-32-10 net from scratch without ``--model``; with it,
    the folder's network at its exported state); the table, plus
    ``<out>/trainer/results.json``."""
    from helu.commands.options import name_list
    from helu.common import outdir
    from helu.hw.net.synth import synthesize_trainer
    from helu.hw.net.trainer import TrainSpec
    from helu.hw.synth import target_names, tools_for
    from helu.hw.tools import ToolMissing, find_tool
    from helu.hw.units.backward import STASH_KINDS

    targets = name_list(args.target or "all", target_names("engines"), "target for --unit trainer")
    if args.seeds < 0:
        raise ValueError(f"--seeds must be 0 (area only) or more, not {args.seeds}")
    if args.stash not in STASH_KINDS:
        raise ValueError(f"--stash must be one of {', '.join(STASH_KINDS)}, not {args.stash!r}")
    lanes = _lanes(args.macs)
    if args.model:
        from helu.onchip import _exported

        net = _exported(args.model)[0]
    else:
        from helu.onchip import scratch_net

        net = scratch_net(0)
    spec = TrainSpec.from_net(net, input_max=getattr(getattr(net, "input", None), "magnitude", 16))
    outdir.claim(args.out, "synth", force=args.force)
    records = []
    for target in targets:
        try:
            for tool in tools_for(target):
                find_tool(tool)
        except ToolMissing as exc:
            log.warning("skipping %s: %s", target, exc)
            continue
        log.info("synthesizing the training engine (P=%d, %s stash) for %s", lanes, args.stash,
                 target)  # fmt: skip
        records.append(
            synthesize_trainer(
                spec,
                lanes,
                target,
                stash=args.stash,
                seeds=args.seeds,
                out_dir=Path(args.out) / "trainer",
            )  # fmt: skip
        )
    if not records:
        raise RuntimeError("no target could run: nextpnr/yosys missing")
    path = Path(args.out) / "trainer" / "results.json"
    path.write_text(json.dumps(records, indent=2) + "\n")
    outdir.mark(args.out, "synth")
    print(_trainer_rows(records))
    for line in filter(None, map(critical_path_line, records)):
        print(line)
    print(f"results: {path}")
    return 0
