"""cocotb test module for the training engine, run inside the simulator (no torch).

The runner (``helu.sim.trainer``) prepares a *job*: a JSON file named by ``HELU_SIM_JOB`` with
``sidecar`` (``sim.trainer.generate``'s), ``trajectory`` (a ``golden.trajectory`` ``.npz``),
``result`` (where to write the result) and ``loads`` (``[addr, data]`` words for the ``load``
port after reset).

Test ``train``: one step per sample; after every step its logits and class and the engine's
``digest`` port are compared with the golden step's, and after every step with a stored state
every master and bias is read back through the ``read`` port and compared. Event-driven: the engine
computes for hundreds of cycles a step, so the bench sleeps until ``o.valid`` or ``i.ready``
rises instead of waking every cycle. Handshakes are read right after ``RisingEdge(clk)``, where
the simulators show the values the edge sampled (see ``sim.tb``).
"""

import json
import os
import time

import cocotb
import numpy as np
from cocotb.clock import Clock
from cocotb.triggers import First, ReadOnly, RisingEdge, Timer
from cocotb.utils import get_sim_time

from helu.golden import fixed, trajectory
from helu.golden.layers import op_from_dict
from helu.golden.netimage import Image, decode, digest, flat_state
from helu.sim import JOB_ENV

PERIOD_NS = 10


def _job() -> dict:
    path = os.environ.get(JOB_ENV)
    if not path:
        raise RuntimeError(f"{JOB_ENV} is not set: run the bench through helu.sim.trainer")
    with open(path) as f:
        return json.load(f)


class _Engine:
    def __init__(self, dut, meta: dict):
        self.dut = dut
        self.meta = meta
        self.edge = RisingEdge(dut.clk)
        self.lanes = meta["lanes"]
        self.classes = meta["classes"]
        self.cls_bits = meta["cls_bits"]

    async def reset(self):
        d = self.dut
        for s in (d.i__valid, d.load__valid, d.read__valid):
            s.value = 0
        for s in (d.i__payload, d.load__payload, d.read__payload):
            s.value = 0
        d.o__ready.value = 0
        d.rdata__ready.value = 1
        d.rst.value = 1
        for _ in range(2):
            await self.edge
        d.rst.value = 0
        await self.edge

    async def _offer(self, data, valid, ready, word: int):
        data.value = word
        valid.value = 1
        while True:
            await self.edge
            if ready.value:
                break
        valid.value = 0

    async def _until(self, signal, what: str):
        """Sleep until ``signal`` is high; fail after ``4 x cycles_per_sample`` cycles."""
        await ReadOnly()
        if signal.value:
            return
        limit = 4 * self.meta["cycles_per_sample"]
        await First(RisingEdge(signal), Timer(limit * PERIOD_NS, "ns"))
        await ReadOnly()
        if not signal.value:
            raise AssertionError(f"no {what} within {limit} cycles (the engine hangs)")

    async def load(self, words):
        d, bits = self.dut, self.meta["addr_bits"]
        for addr, word in words:
            await self._offer(d.load__payload, d.load__valid, d.load__ready, addr | word << bits)

    async def step(self, x_words, label: int):
        """Send one sample; returns ``(logits, cls, skipped)`` of its forward pass."""
        d = self.dut
        lab = label << (fixed.ACT_WIDTH * self.lanes)
        for word in x_words:
            await self._offer(d.i__payload, d.i__valid, d.i__ready, word | lab)
        d.o__ready.value = 1
        await self._until(d.o__valid, "an output")
        await self.edge
        value = int(d.o__payload.value)
        d.o__ready.value = 0
        mask = (1 << fixed.ACT_WIDTH) - 1
        logits = [
            int(fixed.to_signed((value >> (fixed.ACT_WIDTH * k)) & mask, fixed.ACT_WIDTH))
            for k in range(self.classes)
        ]
        rest = value >> (fixed.ACT_WIDTH * self.classes)
        return logits, rest & ((1 << self.cls_bits) - 1), rest >> self.cls_bits

    async def settled_digest(self) -> int:
        """The digest once the step's backward pass is over (the engine takes input again)."""
        d = self.dut
        await self._until(d.i__ready, "the end of the backward pass")
        value = int(d.digest.value)
        await self.edge
        return value

    async def read_all(self) -> list[int]:
        d, words = self.dut, []
        for addr in range(self.meta["words"]):
            await self._offer(d.read__payload, d.read__valid, d.read__ready, addr)
            while True:
                await self.edge
                if d.rdata__valid.value:
                    words.append(int(d.rdata__payload.value))
                    break
        return words


@cocotb.test()
async def train(dut):
    job = _job()
    with open(job["sidecar"]) as f:
        meta = json.load(f)
    t = trajectory.load(job["trajectory"])
    x, labels, want_logits, want_digests = t["x"], t["labels"], t["logits"], t["digest"]
    full_steps, full_state = trajectory.full_states(t)
    lanes, classes = meta["lanes"], meta["classes"]
    # The layers (decode and digest follow their memory layout) and the input layout
    # (golden.layers.word_index: lanes from the flat HWC sample, 0 in padding lanes).
    ops = [op_from_dict(d) for d in meta["ops"]]
    index = np.asarray(meta["input_index"], dtype=np.int64)
    padded = np.concatenate([x.astype(np.int64), np.zeros((len(x), 1), dtype=np.int64)], 1)
    codes = fixed.to_unsigned(padded[:, index], fixed.ACT_WIDTH).astype(object)
    shifts = fixed.ACT_WIDTH * np.arange(lanes, dtype=object)
    x_words = (codes << shifts).sum(axis=2)  # (samples, transfers)

    Clock(dut.clk, PERIOD_NS, unit="ns").start()
    eng = _Engine(dut, meta)
    await eng.reset()
    await eng.load(job["loads"])
    wall = time.perf_counter()
    start = get_sim_time("ns")
    logits_out, bad, first, full_checks, read_ns = [], 0, None, 0, 0

    def fail(step, what, got, want):
        nonlocal bad, first
        bad += 1
        if first is None:
            first = {"step": step, "what": what, "got": got, "want": want}

    for n in range(len(x)):
        if n % 100 == 0:
            dut._log.info("step %d of %d", n, len(x))
        logits, cls, skipped = await eng.step([int(w) for w in x_words[n]], int(labels[n]))
        logits_out.append(logits)
        if logits != [int(v) for v in want_logits[n]]:
            fail(n, "logits", logits, [int(v) for v in want_logits[n]])
        if cls != int(np.argmax(want_logits[n])):
            fail(n, "class", cls, int(np.argmax(want_logits[n])))
        if skipped != int(labels[n] >= classes):
            fail(n, "skipped", skipped, int(labels[n] >= classes))
        got_digest = await eng.settled_digest()
        if got_digest != int(want_digests[n]):
            fail(n, "digest", got_digest, int(want_digests[n]))
        if n in full_steps:
            before = get_sim_time("ns")
            words = await eng.read_all()
            read_ns += get_sim_time("ns") - before
            w = meta["weight_words"]
            got_state = flat_state(*decode(words, ops, lanes))
            want_state = full_state[full_steps.index(n)]
            wrong = np.flatnonzero(got_state != want_state)
            full_checks += 1
            if len(wrong):
                k = int(wrong[0])
                fail(n, f"state[{k}] ({len(wrong)} wrong)", int(got_state[k]), int(want_state[k]))
            if digest(Image(words[:w], words[w:]), ops, lanes) != got_digest and not skipped:
                fail(n, "digest of the words read", got_digest, None)
    cycles = round((get_sim_time("ns") - start) / PERIOD_NS)
    steps = len(x)
    inferred = int(np.sum(np.asarray(labels) >= classes))
    kinds = f"{steps - inferred} training steps" + (
        f" and {inferred} inference-only steps" if inferred else ""
    )
    if first is None:
        message = f"all {kinds} bit-exact (logits, class, digest; {full_checks} full-state checks)"
    else:
        message = f"step {first['step']}: {first['what']} got {first['got']}, want {first['want']}"
    result = {
        "steps": steps,
        "training_steps": steps - inferred,
        "inference_steps": inferred,
        "mismatches": bad,
        "first_mismatch": first,
        "message": message,
        "full_checks": full_checks,
        "cycles": cycles,
        "train_cycles": cycles - round(read_ns / PERIOD_NS),
        "seconds": time.perf_counter() - wall,
        "logits": logits_out,
    }
    with open(job["result"], "w") as f:
        json.dump(result, f)
    assert first is None, message
