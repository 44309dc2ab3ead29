"""`helu onchip`: train the RTL training engine in cocotb, every step checked against golden."""

import logging
from pathlib import Path

from helu.commands.options import add_force, name_list

HELP = (
    "train the RTL training engine in cocotb (a fresh digits net, or your quantized model with "
    "--model); every step's logits and weights checked against the golden integer training step"
)

log = logging.getLogger(__name__)


def add_arguments(parser):
    parser.add_argument(
        "--steps", type=int, default=100, help="training samples (1437: one epoch; default: 100)"
    )
    parser.add_argument(
        "--every", type=int, default=25, help="read back and compare every weight every N steps"
    )
    parser.add_argument(
        "--sim",
        default=None,
        metavar="icarus|verilator|all",
        help="simulator(s) to run (default: verilator; icarus for a model with convolutions, "
        "whose engine Verilator takes tens of minutes to compile)",
    )
    parser.add_argument(
        "--model",
        metavar="DIR",
        help="train this network: a 'helu quantize' or 'helu golden --net' folder, from its "
        "exported state (default: a fresh 64-32-32-10 digits net, --seed)",
    )
    parser.add_argument(
        "--data",
        help="with --model: DATA.npz (x_train, y_train, x_test, y_test) or a built-in set, "
        "quantized with the model's input format (default: the training split in the folder)",
    )
    parser.add_argument("--lanes", type=int, default=8, help="P, MACs per cycle (default: 8)")
    parser.add_argument(
        "--netlist",
        metavar="PATH",
        help="train this mapped netlist of the engine gate by gate (Yosys's cell models) instead "
        "of the RTL: a build folder or record.json of 'helu synth --unit trainer --target up5k', "
        "or its <top>.netlist.v (the same network, --lanes and state)",
    )
    parser.add_argument("--seed", type=int, default=0, help="initial weights and sample order")
    parser.add_argument(
        "--no-test",
        action="store_true",
        help="skip the test split's inference-only steps after training (the engine's accuracy)",
    )
    parser.add_argument("--out", default="build/onchip", help="output folder")
    add_force(parser, "replace an --out onchip folder")


def _has_conv(folder) -> bool:
    from helu.golden import intgolden

    try:
        _, model, _ = intgolden.load_net(folder)
    except ValueError:
        return False  # run_onchip says what is wrong with the folder
    return not model.is_mlp


def run(args) -> int:
    from helu.onchip import SUMMARY, run_onchip
    from helu.sim.runner import SIMULATORS

    sim = args.sim
    if sim is None:
        sim = "verilator"
        if args.netlist is not None:
            sim = "icarus"
            log.warning("a gate-level run: simulating on Icarus (see --sim)")
        elif args.model is not None and _has_conv(args.model):
            sim = "icarus"
            log.warning("a model with convolutions: simulating on Icarus (see --sim)")
    sims = name_list(sim, SIMULATORS, "simulator")
    if args.data is not None and args.model is None:
        raise ValueError("--data needs --model DIR (the network to train on it)")
    s = run_onchip(
        args.out,
        steps=args.steps,
        every=args.every,
        lanes=args.lanes,
        simulators=tuple(sims),
        seed=args.seed,
        force=args.force,
        evaluate=not args.no_test,
        model=args.model,
        data=args.data,
        netlist=args.netlist,
    )
    print(
        f"engine {'-'.join(map(str, s['sizes']))}, P = {s['lanes']}: {s['cycles_per_sample']} "
        f"cycles per training step, {s['cycles_vs_ideal']} x the ideal {s['ideal_cycles']:g}; "
        f"mask stash {s['mask_bits']} bits (a z stash: {s['z_stash_bits']})"
    )
    epochs = s["steps"] / s["train_samples"]
    print(
        f"golden: {s['golden_steps_per_s']} steps/s (PyTorch, batch 1); test accuracy after "
        f"{s['steps']} steps ({epochs:.2g} of an epoch of {s['train_samples']} samples) "
        f"{s['golden_test_accuracy']:.4f}, chance {1 / s['classes']:.2f}"
        + ("" if epochs >= 1 else f"; --steps {s['train_samples']} trains one epoch")
    )
    bad = 0
    for r in s["runs"]:
        bad += r["mismatches"]
        acc = r.get("test_accuracy")
        acc = "" if acc is None else f"; the engine's own test accuracy after training {acc:.4f}"
        print(
            f"{r['simulator']}: {r['message']}; {r['steps_per_s']} steps/s; loss plot "
            f"{r['plot']}{acc}"
        )
    print(f"summary: {Path(args.out) / SUMMARY}")
    return 1 if bad else 0
