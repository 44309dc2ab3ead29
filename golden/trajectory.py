"""Training trajectories: what the training engine must reproduce, step by step, in one format.

The golden export (``helu golden --net``, ``helu quantize``: ``golden.intgolden``), ``helu
onchip``, the cocotb bench (``sim.tb_trainer``) and the tests all read and write this one
format. A trajectory is a dict of numpy arrays (:func:`save` / :func:`load`: one ``.npz``);
for ``n`` steps it holds:

- ``x`` ``(n, inputs)`` the input codes of each step (flat, in HWC order for a conv input);
- ``labels`` ``(n,)``: a label outside ``[0, classes)`` makes an inference-only step (the
  engine's defined behaviour: logits out, no update);
- ``logits`` ``(n, classes)``: the golden forward pass of each step, before its update;
- ``digest`` ``(n,)``: ``golden.netimage.digest`` of the state after each step, the checksum
  the engine itself computes; it depends on the words' layout, so ``lanes`` (a scalar) says
  which lane count it is for;
- ``snapshot_after`` ``(k,)``: the 0-based steps after which the full state is stored (every
  ``every`` steps and the last), ``masters<l>`` / ``biases<l>`` ``(k, ...)`` those states, and
  ``masters<l>_init`` / ``biases<l>_init`` the state the trajectory starts from;
- optionally (``fields``), the golden step's internals per step and layer, for diagnosing a
  mismatch: :data:`STEP_FIELDS` ``q<l>, mask<l>, g<l>, delta<l>, grad<l>``
  (``golden.intnet.IntNet.step``'s record).

numpy only, except :func:`record`, which steps a ``golden.intnet.IntNet`` (torch).
"""

from pathlib import Path

import numpy as np

from helu.golden import netimage

__all__ = [
    "STEP_FIELDS",
    "record",
    "without_internals",
    "check",
    "head",
    "concat",
    "full_states",
    "differences",
    "save",
    "load",
]

STEP_FIELDS = ("q", "mask", "g", "delta", "grad")
_SERIES = ("x", "labels", "logits", "digest")


def _state(net):
    return [m[0].numpy() for m in net.masters], [b[0].numpy() for b in net.biases]


def record(net, x, labels, *, lanes: int, every: int, fields: bool = False) -> dict:
    """Step ``net`` (an ``IntNet`` of one run; changed in place) through ``x`` / ``labels`` and
    return the trajectory of what it did (module docstring), digests at ``lanes`` lanes, a full
    state every ``every`` steps and after the last.

    ``fields``: keep the step internals too (every label must then be in range).
    """
    import torch

    if every < 1:
        raise ValueError(f"the full-state interval must be >= 1 step, not {every}")
    if lanes < 1:
        raise ValueError(f"the digest's lane count must be >= 1, not {lanes}")
    x = np.asarray(x, dtype=np.int64)
    labels = np.asarray(labels, dtype=np.int64)
    if len(x) != len(labels) or not len(x):
        raise ValueError(f"{len(x)} samples and {len(labels)} labels: one of each per step, >= 1")
    ops = list(net.ops)
    classes = ops[-1].out_size
    layers = len(ops)
    trained = (labels >= 0) & (labels < classes)
    if fields and not trained.all():
        raise ValueError("step internals are recorded for training steps only (labels in range)")
    masters0, biases0 = _state(net)
    logits, digests, after = [], [], []
    snaps = {f"{k}{i}": [] for k in ("masters", "biases") for i in range(layers)}
    internals = {f"{f}{i}": [] for f in STEP_FIELDS for i in range(layers)}
    for n, (xs, lab) in enumerate(zip(x, labels, strict=True)):
        xt = torch.as_tensor(xs)[None, :]
        if trained[n]:
            rec = net.step(xt, torch.as_tensor([int(lab)]))
            logits.append(rec["q"][-1][0].numpy())
            if fields:
                for f in STEP_FIELDS:
                    for i, v in enumerate(rec[f]):
                        internals[f"{f}{i}"].append(v[0].numpy())
        else:
            logits.append(net.forward(xt[:, None, :])[1][-1][0, 0].numpy())
        masters, biases = _state(net)
        digests.append(
            netimage.digest(netimage.training_image(masters, biases, lanes, ops), ops, lanes)
        )
        if (n + 1) % every == 0 or n == len(x) - 1:
            after.append(n)
            for i in range(layers):
                snaps[f"masters{i}"].append(masters[i])
                snaps[f"biases{i}"].append(biases[i])
    out = {
        "x": x,
        "labels": labels,
        "logits": np.array(logits, dtype=np.int64).reshape(len(x), classes),
        "digest": np.array(digests, dtype=np.int64),
        "lanes": np.int64(lanes),
        "snapshot_after": np.array(after, dtype=np.int64),
    }
    for i in range(layers):
        out[f"masters{i}_init"] = np.asarray(masters0[i], dtype=np.int64)
        out[f"biases{i}_init"] = np.asarray(biases0[i], dtype=np.int64)
    out |= {k: np.stack(v).astype(np.int64) for k, v in snaps.items()}
    out |= {k: np.stack(v).astype(np.int64) for k, v in internals.items() if v}
    return out


def _is_internal(key: str) -> bool:
    name = key.rstrip("0123456789")
    return name != key and name in STEP_FIELDS


def without_internals(t: dict) -> dict:
    """``t`` without the step internals (``fields``): what the engine is compared with."""
    return {k: v for k, v in t.items() if not _is_internal(k)}


def _layers(t: dict) -> int:
    return sum(1 for k in t if k.startswith("masters") and k.endswith("_init"))


def check(t: dict, ops, *, lanes: int | None = None) -> dict:
    """Refuse a trajectory that does not fit the layer ``ops`` (and, given, an engine of
    ``lanes`` lanes): ``ValueError`` saying what is wrong. Returns its arrays as numpy."""
    missing = [k for k in (*_SERIES, "lanes", "snapshot_after") if k not in t]
    if missing:
        raise ValueError(f"the trajectory lacks {', '.join(missing)}")
    t = {k: np.asarray(v) for k, v in t.items()}
    ops = netimage.dense_ops(ops)
    n, inputs, classes = len(t["labels"]), ops[0].in_size, ops[-1].out_size
    if t["x"].ndim != 2 or t["x"].shape != (n, inputs):
        raise ValueError(
            f"samples {t['x'].shape} do not fit a {inputs}-input network with {n} labels "
            "(a sample stream that ends mid-sample?)"
        )
    if t["logits"].shape != (n, classes) or t["digest"].shape != (n,):
        raise ValueError(f"golden logits {t['logits'].shape} / digests do not match {n} steps")
    if lanes is not None and int(t["lanes"]) != lanes:
        raise ValueError(
            f"the trajectory's digests are for {int(t['lanes'])} lanes, the engine has {lanes}"
        )
    if _layers(t) != len(ops):
        raise ValueError(
            f"the trajectory holds {_layers(t)} layers' states, the network {len(ops)}"
        )
    after = t["snapshot_after"]
    if len(after) and (np.any(np.diff(after) <= 0) or after[0] < 0 or after[-1] >= n):
        raise ValueError("snapshot steps must rise within the trajectory")
    for i in range(len(ops)):
        for k in (f"masters{i}", f"biases{i}"):
            if k not in t or len(t[k]) != len(after):
                raise ValueError(f"the trajectory lacks the snapshots {k} ({len(after)} of them)")
    return t


def head(t: dict, steps: int) -> dict:
    """The first ``steps`` steps of ``t`` (its snapshots within them; the step internals kept)."""
    n = len(t["labels"])
    if not 1 <= steps <= n:
        raise ValueError(f"a trajectory of {n} steps has no first {steps}")
    keep = np.asarray(t["snapshot_after"]) < steps
    out = {}
    for k, v in t.items():
        if k in ("lanes",) or k.endswith("_init"):
            out[k] = v
        elif k == "snapshot_after" or _is_snapshot(k):
            out[k] = np.asarray(v)[keep]
        else:
            out[k] = np.asarray(v)[:steps]
    return out


def _is_snapshot(key: str) -> bool:
    return key.startswith(("masters", "biases")) and not key.endswith("_init")


def concat(a: dict, b: dict) -> dict:
    """``a`` followed by ``b``, where ``b`` starts from the state ``a`` ends in (a trained
    trajectory, then inference steps from its final state). Step internals are kept only when
    both have them; the digests must be for the same lanes."""
    if int(a["lanes"]) != int(b["lanes"]):
        raise ValueError(f"digests for {int(a['lanes'])} and {int(b['lanes'])} lanes")
    n = len(a["labels"])
    out = {k: v for k, v in a.items() if k.endswith("_init") or k == "lanes"}
    for k, v in a.items():
        if k in out or k not in b:
            continue
        if k == "snapshot_after":
            out[k] = np.concatenate([v, np.asarray(b[k]) + n])
        else:
            out[k] = np.concatenate([np.asarray(v), np.asarray(b[k])])
    return out


def full_states(t: dict) -> tuple[list[int], np.ndarray]:
    """``(steps, states)``: the 0-based steps with a stored state and each as
    ``netimage.flat_state`` (what the bench compares with the words it reads back)."""
    layers = _layers(t)
    states = [
        netimage.flat_state(
            [t[f"masters{i}"][j] for i in range(layers)],
            [t[f"biases{i}"][j] for i in range(layers)],
        )
        for j in range(len(t["snapshot_after"]))
    ]
    return [int(s) for s in t["snapshot_after"]], np.array(states, dtype=np.int64)


def differences(got: dict, want: dict) -> list[str]:
    """Where trajectory ``got`` differs from ``want`` (each key of ``want``), as lines naming the
    key and its first differing step; empty when equal."""
    errors = []
    for key, w in want.items():
        g = got.get(key)
        w = np.asarray(w)
        if g is None or np.shape(g) != w.shape:
            errors.append(f"{key}: missing or of shape {None if g is None else np.shape(g)}")
            continue
        bad = np.argwhere(np.asarray(g) != w)
        if len(bad):
            where = f"first at step {bad[0][0]}" if w.ndim else "the value"
            errors.append(f"{key} differs at {len(bad)} places ({where})")
    return errors


def save(path, t: dict) -> Path:
    """Write ``t`` to ``path`` (one uncompressed ``.npz``, replaced atomically)."""
    path = Path(path)
    tmp = path.with_name(path.name + ".tmp.npz")
    np.savez(tmp, **{k: np.asarray(v) for k, v in t.items()})
    tmp.replace(path)
    return path


def load(path) -> dict:
    """The trajectory stored at ``path`` (``ValueError`` when it cannot be read)."""
    try:
        with np.load(path, allow_pickle=False) as npz:
            return {k: npz[k] for k in npz.files}
    except (OSError, ValueError) as exc:
        raise ValueError(f"{path}: not a readable trajectory ({exc})") from None
