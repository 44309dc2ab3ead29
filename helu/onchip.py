"""Training on chip: the RTL training engine trained on a network's training split, checked step
by step against the golden integer training step.

``run_onchip`` trains the engine in cocotb (``sim.trainer.run_trainer``) on a golden trajectory
(``golden.trajectory``: per step the logits, the engine's state digest and, every few steps,
the full state). For an exported network (``--model DIR``, a ``helu golden --net`` or ``helu
quantize`` folder) that is the trajectory the export wrote, replayed first against the folder's
own model (a damaged folder is refused, not simulated); steps beyond it, another lane count,
the user's ``--data`` or a fresh 64-32-32-10 digits net (``IntNet.scratch``) are recorded with
``trajectory.record``. Writes ``<out>/onchip.json`` and the loss curves of the RTL and golden
runs on one plot per simulator (``<out>/onchip_loss_<sim>.png``).
"""

import json
import logging
import time
from pathlib import Path

import numpy as np

log = logging.getLogger(__name__)

__all__ = ["ALPHA", "SUMMARY", "scratch_net", "run_onchip", "plot_losses"]

SUMMARY = "onchip.json"

ALPHA = 0.1  # HeLU's alpha: T = floor(-0.1 * 2**4) = -2 on the Q8.4 hidden codes


def scratch_net(seed: int = 0, alpha: float = ALPHA):
    """A fresh digits ``IntNet`` (one run) with the scratch scales."""
    from helu.golden import fixed, intnet

    scales = intnet.scratch_scales()
    t = fixed.threshold(alpha, fixed.Format(fixed.ACT_WIDTH, scales.out_fracs[0]))
    return intnet.IntNet.scratch([seed], scales, t)


def _exported(folder, data=None):
    """``(IntNet, train, test, name, stored)`` of a ``helu quantize`` / ``helu golden --net``
    folder: the exported network at its exported state, with its scales; the data as input
    codes; ``stored`` the folder's trajectory (with its ``order`` and ``seed``) when the
    training split is the folder's own (no ``data``), else ``None``."""
    from helu.golden import intgolden, intnet

    manifest, model, arrays = intgolden.load_net(folder)
    ops, layer = model.ops, intnet.intmodel
    pairs = zip(ops[:-1], ops[1:], strict=True)
    if not isinstance(ops[-1], layer.Dense) or any(
        isinstance(b, layer.Conv2d) and isinstance(a, layer.Dense) for a, b in pairs
    ):
        raise ValueError(
            f"{folder}: layers {', '.join(op.describe() for op in ops)}; the training engine "
            "trains convolutions first, then dense layers, the last one dense"
        )
    sc = manifest.get("scales") or {}
    lr_shift = (manifest.get("trajectory") or {}).get("scales", {}).get("lr_shift")
    try:
        scales = intnet.Scales.chain(
            sc["input_frac"], sc["w_fracs"], sc["out_fracs"],
            lr_shift=intnet.FINE_TUNE_LR_SHIFT if lr_shift is None else lr_shift,
        )  # fmt: skip
    except (KeyError, TypeError, ValueError) as exc:
        raise ValueError(f"{folder}: the manifest's scales cannot be trained ({exc})") from None
    net = intnet.IntNet.from_model(model, scales)
    name = manifest.get("dataset", "data")
    if data is not None:
        from helu.golden import quantize

        d = quantize.load_data(data)
        if d.x_train.shape[1:] and int(np.prod(d.x_train.shape[1:])) != model.sizes[0]:
            raise ValueError(
                f"{data}: samples of {int(np.prod(d.x_train.shape[1:]))} values, the model takes "
                f"{model.sizes[0]}"
            )
        codes = [model.input.quantize(quantize.flat_hwc(x))[0] for x in (d.x_train, d.x_test)]
        d.check_labels(model.classes)
        return net, (codes[0], d.y_train), (codes[1], d.y_test), d.name, None
    entry = manifest.get("trajectory")
    if not entry:
        raise ValueError(
            f"{folder} stores no training split (it was made with --steps 0); give --data"
        )
    stored = intgolden.load_trajectory(folder)
    train = (stored.pop("train_x"), stored.pop("train_labels"))
    return net, train, (arrays["x"], arrays["labels"]), name, stored


def _golden(net, stored, x_train, y_train, steps, every, lanes, seed, model):
    """The golden trajectory of ``steps`` training steps and where it came from.

    With ``stored`` (the exported folder's own trajectory, at the same lane count), its samples
    in its order are replayed on ``net`` and must reproduce every stored logit, digest and state:
    a folder whose trajectory its model does not reproduce is refused. Steps past the
    stored ones, or every step without a stored trajectory, are recorded from ``net`` (changed
    in place: it ends in the trained state) in ``seed``'s sample order."""
    from helu.golden import intnet, trajectory

    if stored is not None and int(stored["lanes"]) != lanes:
        log.info(
            "the exported trajectory's digests are for P = %d: recording one for P = %d",
            int(stored["lanes"]), lanes,
        )  # fmt: skip
        stored = None

    def sample_order(seed):  # a fresh permutation of the training split per epoch
        epochs = -(-steps // len(x_train))
        return intnet.epoch_orders([seed], len(x_train), epochs)[0, :steps].numpy()

    if stored is None:
        order = sample_order(seed)
        traj = trajectory.record(net, x_train[order], np.asarray(y_train)[order], lanes=lanes,
                                 every=every)  # fmt: skip
        return traj, {"seed": seed, "exported_steps": 0, "recorded_steps": steps}
    order, seed = stored.pop("order"), int(stored.pop("seed"))
    used = min(steps, len(order))
    exported = trajectory.head(stored, used)
    # Replayed at this run's full-check interval: its logits, digests and the states the export
    # stored must be the export's (the bench then compares the engine with exactly those).
    traj = trajectory.record(net, exported["x"], exported["labels"], lanes=lanes, every=every)
    checked = ("logits", "digest", *(k for k in exported if k.endswith("_init")))
    wrong = trajectory.differences(traj, {k: exported[k] for k in checked})
    common = np.intersect1d(traj["snapshot_after"], exported["snapshot_after"])
    for i in range(len(net.ops)):
        for k in (f"masters{i}", f"biases{i}"):
            mine = traj[k][np.isin(traj["snapshot_after"], common)]
            theirs = exported[k][np.isin(exported["snapshot_after"], common)]
            wrong += trajectory.differences({k: mine}, {k: theirs})
    if wrong:
        raise ValueError(
            f"{model}: its trajectory is not what its model does ({wrong[0]}): a damaged golden "
            "folder; export it again"
        )
    if steps > used:
        log.info("the exported trajectory holds %d steps: recording %d more", used, steps - used)
        order = sample_order(seed)
        rest = trajectory.record(net, x_train[order[used:]], np.asarray(y_train)[order[used:]],
                                 lanes=lanes, every=every)  # fmt: skip
        traj = trajectory.concat(traj, rest)
    return traj, {"seed": seed, "exported_steps": used, "recorded_steps": steps - used}


def plot_losses(path, steps, rtl, golden, title: str) -> Path:
    """The per-step training loss of the RTL run over the golden's (running mean of 50)."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    def smooth(v):
        v = np.asarray(v, dtype=np.float64)
        k = min(50, len(v))
        return np.convolve(v, np.ones(k) / k, mode="valid")

    fig, ax = plt.subplots(figsize=(6.4, 3.6))
    g, r = smooth(golden), smooth(rtl)
    xs = np.arange(len(g)) + (len(steps) - len(g)) + 1
    ax.plot(xs, g, lw=3, color="#bbbbbb", label="golden (PyTorch IntNet.step)")
    ax.plot(xs, r, lw=1, color="#c0392b", ls="--", label="RTL (cocotb)")
    ax.set_xlabel("training step (sample)")
    ax.set_ylabel("loss, running mean of 50")
    ax.set_title(title, fontsize=9)
    ax.legend(fontsize=8)
    fig.tight_layout()
    path = Path(path)
    tmp = path.with_name(path.name + ".tmp.png")
    fig.savefig(tmp, dpi=120)
    plt.close(fig)
    tmp.replace(path)
    return path


def run_onchip(
    out,
    *,
    steps: int = 100,
    every: int = 25,
    lanes: int = 8,
    simulators=("verilator",),
    seed: int = 0,
    alpha: float = ALPHA,
    evaluate: bool = True,
    force: bool = False,
    model=None,
    data=None,
    netlist=None,
) -> dict:
    """Train the engine for ``steps`` samples of the digits training split (a fresh permutation
    per epoch) on each simulator; compare every step with the golden model; write the summary
    and the loss plot under ``out``. Returns the summary.

    With ``evaluate``, the test split follows, each sample with a label out of range: the engine
    only infers (its defined behaviour for such a label), so its classes give the trained
    engine's own test accuracy, beside the golden model's.

    ``model``: a ``helu quantize`` (or ``helu golden --net``) folder: that network is trained
    from its exported state, on ``data`` (an ``.npz`` or a built-in set's name, quantized with
    the model's input format) or, without ``data``, on the training split stored in the
    folder's trajectory. Without ``model``: a fresh digits 64-32-32-10 net (``seed``).

    ``netlist``: train that mapped netlist of the engine (``hw.net.synth.mapped_netlist``) gate
    by gate on Yosys's cell models instead of the RTL; refused before anything is written when it
    is not a build of this engine and state."""
    import torch

    from helu.golden import data as data_sets
    from helu.golden import intnet, trajectory
    from helu.hw.net.trainer import Trainer, TrainSpec
    from helu.hw.units import unelaborated
    from helu.sim.trainer import run_trainer, step_losses

    if steps < 1:
        raise ValueError(f"steps must be >= 1, not {steps}")
    if every < 1:
        raise ValueError(f"the full-check interval must be >= 1 step, not {every}")
    from helu.common import outdir

    torch.set_num_threads(1)
    stored = None
    if model is not None:
        net, (x_train, y_train), (x_test, y_test), name, stored = _exported(model, data)
    else:
        split = data_sets.load("digits")
        x_train, x_test = intnet.pixels(split)
        y_train, y_test = np.asarray(split.y_train), np.asarray(split.y_test)
        net, name = scratch_net(seed, alpha), "digits"
    sizes = [net.ops[0].in_size] + [op.out_size for op in net.ops]
    spec = TrainSpec.from_net(net, input_max=net.input.magnitude)
    # Built for its figures; refuses what the engine cannot build before anything is written.
    dsp = None
    if netlist is not None:
        from helu.hw.net.synth import check_mapped, mapped_netlist

        netlist, mapped = mapped_netlist(netlist)
        dsp = mapped.get("dsp")
        check_mapped(mapped, unelaborated(Trainer(spec, lanes, dsp=dsp)))
    dut = unelaborated(Trainer(spec, lanes, dsp=dsp))
    classes = sizes[-1]

    start = time.perf_counter()
    traj, source = _golden(net, stored, x_train, y_train, steps, every, lanes, seed, model)
    seed = source.pop("seed")
    if evaluate:  # inference only: the largest label the port carries (> the last class)
        no_label = (1 << int(np.ceil(np.log2(classes + 1)))) - 1
        tail = trajectory.record(net, x_test, np.full(len(x_test), no_label), lanes=lanes,
                                 every=len(x_test))  # fmt: skip
        traj = trajectory.concat(traj, tail)
    golden_s = time.perf_counter() - start
    labels = traj["labels"]
    out = outdir.prepare(out, "onchip", force=force)
    golden_acc = float(intnet.IntNet.evaluate(net, x_test, y_test)["acc"][0])
    results = run_trainer(spec, traj, lanes=lanes, simulators=simulators, out=out / "sim",
                          dsp=dsp, netlist=netlist)  # fmt: skip
    golden_loss = step_losses(traj["logits"][:steps], labels[:steps])
    y_test = np.asarray(y_test)
    golden_engine_acc = None
    if evaluate:
        golden_engine_acc = float(np.mean(np.argmax(traj["logits"][steps:], 1) == y_test))
    runs = []
    for r in results:
        rtl_logits = np.asarray(r["logits"]).reshape(-1, classes)
        rtl_loss = step_losses(rtl_logits[:steps], labels[:steps])
        rtl_acc = float(np.mean(np.argmax(rtl_logits[steps:], 1) == y_test)) if evaluate else None
        runs.append(
            {
                "simulator": r["simulator"],
                "steps": r["steps"],
                "mismatches": r["mismatches"],
                "message": r["message"],
                "full_checks": r["full_checks"],
                "cycles": r["cycles"],
                "train_cycles": r.get("train_cycles"),
                "wall_s": round(r["wall_s"], 2),
                "steps_per_s": round(r["steps"] / r["wall_s"], 1),
                "loss_equal": bool(np.array_equal(rtl_loss, golden_loss)),
                "loss": rtl_loss.tolist(),
                "logits_equal": np.all(rtl_logits[:steps] == traj["logits"][:steps], 1).tolist(),
                "test_accuracy": rtl_acc,
            }
        )
        plot = plot_losses(
            out / f"onchip_loss_{r['simulator']}.png",
            range(len(rtl_loss)),
            rtl_loss,
            golden_loss,
            f"{'-'.join(map(str, sizes))} integer network, {steps} {name} samples, "
            f"P = {lanes}: RTL ({r['simulator']}) over golden",
        )
        runs[-1]["plot"] = str(plot)
    summary = {
        "dataset": name,
        "model": None if model is None else str(model),
        "sizes": list(dut.sizes),
        "lanes": lanes,
        "steps": steps,
        "train_samples": int(len(x_train)),
        "classes": int(classes),
        "full_check_every": every,
        "seed": seed,
        "trajectory": source,
        "netlist": None if netlist is None else str(netlist),
        "alpha": alpha if model is None else None,
        "threshold": int(spec.threshold),
        "cycles_per_sample": dut.cycles_per_sample,
        "ideal_cycles": dut.ideal_cycles,
        "cycles_vs_ideal": round(dut.cycles_per_sample / dut.ideal_cycles, 3),
        "mask_bits": dut.mask_bits,
        "z_stash_bits": dut.z_stash_bits,
        "golden_seconds": round(golden_s, 2),
        "golden_steps_per_s": round(steps / golden_s, 1),
        "golden_test_accuracy": golden_acc,
        "golden_test_accuracy_from_trajectory": golden_engine_acc,
        "final_loss_mean_last_100": float(np.nanmean(golden_loss[-100:])),
        "golden_loss": golden_loss.tolist(),
        "runs": runs,
    }
    tmp = out / (SUMMARY + ".tmp")
    tmp.write_text(json.dumps(summary, indent=2) + "\n")
    tmp.replace(out / SUMMARY)
    return summary


def bench(steps: int = 500) -> dict:
    """``make bench``: the golden training step's rate in PyTorch (batch 1, one thread) on the
    digits training split, beside the engine's cycles per step at ``P = 8``."""
    import torch

    from helu.golden import data, intnet
    from helu.hw.net.trainer import Trainer, TrainSpec
    from helu.hw.units import unelaborated

    torch.set_num_threads(1)
    split = data.load("digits")
    x = torch.as_tensor(intnet.pixels(split)[0])
    y = torch.as_tensor(np.asarray(split.y_train))
    net = scratch_net(0)
    for i in range(20):  # warm-up
        net.step(x[i][None], y[i][None])
    start = time.perf_counter()
    for i in range(steps):
        net.step(x[i % len(x)][None], y[i % len(x)][None])
    rate = steps / (time.perf_counter() - start)
    dut = unelaborated(Trainer(TrainSpec.from_net(net), 8))  # built for its figures only
    result = {
        "golden_steps_per_s": round(rate, 1),
        "engine_cycles_per_step": dut.cycles_per_sample,
        "engine_steps_per_s_per_mhz": round(1e6 / dut.cycles_per_sample, 1),
    }
    print(
        f"golden IntNet.step (PyTorch, batch 1, 1 thread): {rate:,.0f} steps/s; engine "
        f"(P = 8): {dut.cycles_per_sample} cycles a step, "
        f"{result['engine_steps_per_s_per_mhz']:,.0f} steps/s per MHz of clock"
    )
    return result
