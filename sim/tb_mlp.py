"""cocotb test module for the MLP engine, run inside the simulator (no torch, no amaranth).

The runner (``helu.sim.mlp``) prepares a *job*: a JSON file named by ``HELU_SIM_JOB`` with

- ``sidecar``: the engine's sidecar (``hw.net.verilog``);
- ``vectors``: an ``.npz`` with ``x`` (N, inputs) pixel codes and the golden ``logits`` (N,
  classes) and ``cls`` (N,) (``labels`` too, when known);
- ``result``: where this module writes its result JSON;
- ``idle``, ``backpressure``: stall probabilities (0: full rate), ``seed``;
- ``loads``: ``[addr, data]`` words written through the ``load`` port after reset (a retrained
  or deliberately corrupted weight image);
- ``reset_after``: for ``reset_mid_stream``, input transfers accepted before the reset.

Tests: ``stream`` (reset, loads, every sample, then checks every logit and class) and
``reset_mid_stream`` (part of the stream, a reset while the engine computes, no stale output
may appear, then ``stream``'s checks on every sample). The result JSON holds ``checked``
(samples), ``mismatches`` (wrong logits and classes), ``first_mismatch`` (sample, what, got,
expected), ``correct`` (classes equal to the labels), ``cycles``, ``seconds``; the test fails with
a message naming the first wrong sample and logit.
"""

import json
import os
import time
from pathlib import Path

import cocotb
import numpy as np
from cocotb.triggers import First, ReadOnly, RisingEdge, Timer
from cocotb.utils import get_sim_time

from helu.hw.packing import pack, unpack
from helu.sim import JOB_ENV
from helu.sim.tb import StallError, StreamTB, stall_pattern

__all__ = ["compare"]


def compare(logits, cls, want_logits, want_cls) -> dict:
    """Score the engine's outputs against the golden; a dict with a message naming the first
    wrong sample and logit (or class). Fewer outputs than expected count as mismatches."""
    want_logits = np.asarray(want_logits, dtype=np.int64)
    n, classes = want_logits.shape
    got_n = len(logits)
    logits = np.asarray(logits, dtype=np.int64).reshape(-1, classes)[:n]
    cls = np.asarray(cls, dtype=np.int64)[:n]
    k = min(len(logits), n)
    bad = np.argwhere(logits[:k] != want_logits[:k])
    bad_cls = np.flatnonzero(cls[:k] != np.asarray(want_cls)[:k])
    mismatches = len(bad) + len(bad_cls) + (n - k) * (classes + 1)
    first = None
    if len(bad) and (not len(bad_cls) or bad[0][0] <= bad_cls[0]):
        s, j = (int(v) for v in bad[0])
        first = {"sample": s, "logit": j, "got": int(logits[s, j]), "want": int(want_logits[s, j])}
        message = (
            f"sample {s}, logit {j}: got {first['got']}, expected {first['want']} "
            f"({len(bad)} wrong logits in {len(np.unique(bad[:, 0]))} samples)"
        )
    elif len(bad_cls):
        s = int(bad_cls[0])
        first = {"sample": s, "cls": True, "got": int(cls[s]), "want": int(want_cls[s])}
        message = f"sample {s}, class: got {cls[s]}, expected {want_cls[s]}"
    elif k < n:
        first = {"sample": k, "missing": True}
        message = f"only {got_n} of {n} samples came out"
    else:
        message = f"all {n} samples bit-exact ({n * classes} logits, {n} classes)"
    if got_n > n:
        mismatches += got_n - n
        message += f"; {got_n - n} extra outputs"
    return {
        "checked": int(k),
        "mismatches": int(mismatches),
        "first_mismatch": first,
        "message": message,
    }


def _decode(values, classes: int, cls_bits: int):
    words, x_words = [], 0
    for v in values:
        try:
            words.append(v.to_unsigned())
        except ValueError:
            words.append((1 << (8 * classes + cls_bits)) - 1)
            x_words += 1
    if not words:
        return np.zeros((0, classes), dtype=np.int64), np.zeros(0, dtype=np.int64), x_words
    logits, cls = unpack(words, [(classes, 8), (1, cls_bits)], signed=[True, False])
    return logits, cls[:, 0], x_words


async def _load(tb: StreamTB, port: dict, addr_bits: int, loads) -> None:
    data, valid, ready = (getattr(tb.dut, port[k]) for k in ("data", "valid", "ready"))
    for addr, word in loads:
        data.value = int(addr) | (int(word) << addr_bits)
        valid.value = 1
        await tb._edge
        while not ready.value:
            await tb._edge
    valid.value = 0


async def _full_rate(tb: StreamTB, words: list[int], expect: int, timeout: int) -> list:
    """``StreamTB.stream`` at full rate, but event-driven: the engine computes for hundreds of
    cycles between transfers, so instead of one Python step per cycle the loop sleeps until
    ``i.ready`` or ``o.valid`` rises (both follow registers only: no glitches), then samples
    the handshakes at the next clock edge as ``StreamTB`` does. Adds the cycles to ``tb.cycles``.
    """
    edge, period = tb._edge, tb.period_ns
    i_ready, i_valid, i_data = tb.i_ready, tb.i_valid, tb.i_data
    o_valid, o_data = tb.o_valid, tb.o_data
    wake = (RisingEdge(i_ready), RisingEdge(o_valid))
    got, sent, n = [], 0, len(words)
    start = get_sim_time("ns")
    i_data.value, i_valid.value, tb.o_ready.value = words[0], 1, 1
    while len(got) < expect:
        await ReadOnly()  # the values of the coming cycle, settled
        if not (i_ready.value and sent < n) and not o_valid.value:
            timer = Timer(timeout * period, "ns")
            if await First(*wake, timer) is timer:
                tb.cycles += round((get_sim_time("ns") - start) / period)
                tb.partial = got
                raise StallError(
                    f"no transfer for {timeout} cycles: sent {sent} of {n} words, received "
                    f"{len(got)} of {expect}"
                )
        await edge
        if sent < n and i_ready.value:
            sent += 1
            if sent < n:
                i_data.value = words[sent]
            else:
                i_valid.value = 0
        if o_valid.value:
            got.append(o_data.value)
    tb.cycles += round((get_sim_time("ns") - start) / period)
    return got


async def _run(dut, reset_first: bool):
    job = json.loads(Path(os.environ[JOB_ENV]).read_text())
    meta = json.loads(Path(job["sidecar"]).read_text())
    with np.load(job["vectors"]) as npz:
        vec = {k: npz[k] for k in npz.files}
    lanes, classes = int(meta["lanes"]), int(meta["sizes"][-1])
    out_fields = meta["ports"]["out"]["fields"]
    cls_bits = int(out_fields[1]["width"])
    load_fields = meta["ports"]["load"]["fields"]
    x = vec["x"].astype(np.int64)
    n = len(x)
    chunks = int(meta["input_transfers"])
    # The engine's input layout (golden.layers.word_index): lanes from the flat sample, 0 padding.
    index = np.asarray(meta["input_index"], dtype=np.int64)
    padded = np.concatenate([x, np.zeros((n, 1), dtype=np.int64)], axis=1)[:, index]
    words = pack([(padded.reshape(-1, lanes), 8)])

    seed = int(job.get("seed", 0))
    idle = stall_pattern(float(job.get("idle", 0)), seed)
    backpressure = stall_pattern(float(job.get("backpressure", 0)), seed + 1)
    tb = StreamTB(dut, meta)
    getattr(dut, meta["ports"]["load"]["valid"]).value = 0
    tb.start_clock()
    await tb.reset()
    await _load(tb, meta["ports"]["load"], int(load_fields[0]["width"]), job.get("loads") or [])
    timeout = 3 * int(meta["cycles_per_sample"]) + 100
    result = {"test": "reset_mid_stream" if reset_first else "stream"}
    stale = []
    if reset_first:
        k = int(job.get("reset_after") or chunks + chunks // 2)
        got, sent = [], 0
        tb.i_data.value, tb.i_valid.value = words[0], 1
        while sent < k:
            await tb._edge
            if tb.i_ready.value:
                sent += 1
                tb.i_data.value = words[sent]
            if tb.o_valid.value:
                got.append(tb.o_data.value)
        tb.i_valid.value = 0
        for _ in range(int(meta["cycles_per_sample"]) // 3):  # into the first layers' compute
            await tb._edge
            if tb.o_valid.value:
                got.append(tb.o_data.value)
        tb.rst.value = 1
        await tb._edge
        await tb._edge
        tb.rst.value = 0
        stale = await tb.watch(2 * int(meta["cycles_per_sample"]))
        result["outputs_before_reset"] = len(got)
        result["stale_outputs"] = len(stale)
    start = time.perf_counter()
    try:
        if idle is None and backpressure is None:
            got = await _full_rate(tb, words, n, timeout)
        else:
            got = await tb.stream(
                words, expect=n, idle=idle, backpressure=backpressure, timeout=timeout
            )
    except StallError as exc:
        got = tb.partial
        result["stall"] = str(exc)
    seconds = time.perf_counter() - start
    extra = await tb.watch(int(meta["latency"]) + 8)
    logits, cls, x_words = _decode(got + extra, classes, cls_bits)
    outcome = compare(logits, cls, vec["logits"], vec["cls"])
    if x_words:
        outcome["mismatches"] = max(outcome["mismatches"], x_words)
        outcome["message"] += f"; {x_words} outputs held X/Z bits"
    correct = None
    if "labels" in vec and len(cls) >= n:
        correct = int(np.count_nonzero(cls[:n] == vec["labels"]))
    result.update(
        outcome,
        samples=n,
        received=len(got) + len(extra),
        x_words=x_words,
        correct=correct,
        accuracy=correct / n if correct is not None else None,
        cycles=tb.cycles,
        cycles_per_sample=tb.cycles / n,
        seconds=seconds,
    )
    Path(job["result"]).write_text(json.dumps(result, indent=2) + "\n")
    assert "stall" not in result, result.get("stall")
    assert not stale, f"{len(stale)} stale outputs appeared after the reset"
    assert outcome["mismatches"] == 0, outcome["message"]
    assert outcome["checked"] == n > 0, "nothing was checked"


@cocotb.test()
async def stream(dut):
    """Every sample through the engine; every logit and class checked."""
    await _run(dut, reset_first=False)


@cocotb.test()
async def reset_mid_stream(dut):
    """Reset while a sample is being computed; nothing stale may come out; then ``stream``."""
    await _run(dut, reset_first=True)
