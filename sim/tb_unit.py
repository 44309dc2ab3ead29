"""cocotb test module run inside the simulator for every unit (no torch, no amaranth).

The runner (``helu.sim.runner``) prepares a *job*: a JSON file named by the environment variable
``HELU_SIM_JOB`` with

- ``sidecar``: path of the unit's JSON sidecar (ports, fields, latency);
- ``stimulus``: path of a ``Stimulus`` ``.npz`` (``helu.sim.stimulus``);
- ``result``: path where this module writes its result JSON;
- ``idle``, ``backpressure``: stall probabilities (0: full rate), ``seed``.

Tests:

- ``stream``: resets the unit, streams every segment (driving the threshold port per segment and
  draining between segments), watches ``latency + 4`` more cycles for extra outputs, then checks
  order, count and values bit-exactly;
- ``reset_mid_stream``: fills the unit under backpressure, resets it, checks that no stale output
  appears, then runs ``stream``'s checks on the whole stimulus.

The result JSON holds ``checked``, ``mismatches``, ``first_mismatch``, ``cycles``, ``seconds``
(the simulation loop only) and ``transfers``; the test fails with the first mismatch described.
"""

import json
import os
import time
from pathlib import Path

import cocotb

from helu.sim import JOB_ENV
from helu.sim.stimulus import Stimulus, check
from helu.sim.tb import StallError, StreamTB, stall_pattern, words_to_bytes


def _job() -> dict:
    path = os.environ.get(JOB_ENV)
    if not path:
        raise RuntimeError(f"{JOB_ENV} is not set: run the benches through helu.sim.runner")
    return json.loads(Path(path).read_text())


async def _run(dut, reset_first: bool):
    job = _job()
    sidecar = json.loads(Path(job["sidecar"]).read_text())
    stim = Stimulus.load(job["stimulus"])
    seed = int(job.get("seed", 0))
    idle = stall_pattern(float(job.get("idle", 0)), seed)
    backpressure = stall_pattern(float(job.get("backpressure", 0)), seed + 1)
    tb = StreamTB(dut, sidecar)
    tb.start_clock()
    await tb.reset()
    out_width = int(sidecar["ports"]["out"]["width"])
    result = {"test": "reset_mid_stream" if reset_first else "stream"}
    stale = []
    if reset_first:
        first = stim.segments[0]["threshold"]
        tb.set_threshold(first)
        words = stim.words(stim.in_words, 0, int(stim.bounds[1]))
        result["dropped_by_reset"] = await tb.fill_and_reset(words)
        assert result["dropped_by_reset"] > 0, "the unit accepted nothing before the reset"
        stale = await tb.watch(tb.latency + 4)
        result["stale_outputs"] = len(stale)
    got = []
    start = time.perf_counter()
    for s, meta in enumerate(stim.segments):
        tb.set_threshold(meta["threshold"])
        lo, hi = int(stim.bounds[s]), int(stim.bounds[s + 1])
        try:
            got += await tb.stream(
                stim.words(stim.in_words, lo, hi), idle=idle, backpressure=backpressure
            )
        except StallError as exc:
            got += tb.partial
            result["stall"] = str(exc)
            break
    seconds = time.perf_counter() - start
    extra = await tb.watch(tb.latency + 4)
    rows, x_count = words_to_bytes(got + extra, out_width)
    outcome = check(stim, rows)
    result.update(
        checked=outcome.checked,
        mismatches=outcome.mismatches,
        first_mismatch=outcome.first_mismatch,
        transfers=outcome.expected,
        received=outcome.received,
        x_words=x_count,
        cycles=tb.cycles,
        seconds=seconds,
        message=outcome.message(),
    )
    Path(job["result"]).write_text(json.dumps(result, indent=2, default=int) + "\n")
    assert "stall" not in result, result.get("stall")
    assert not stale, (
        f"{len(stale)} stale outputs appeared after the reset in the middle of a stream"
    )
    assert outcome.ok, outcome.message()
    assert x_count == 0, f"{x_count} output transfers held X/Z bits"
    assert outcome.checked > 0, "nothing was checked"


@cocotb.test()
async def stream(dut):
    """Stream the whole stimulus and check it (see the module docstring)."""
    await _run(dut, reset_first=False)


@cocotb.test()
async def reset_mid_stream(dut):
    """Reset with transfers in flight; nothing stale may come out; then check a full stream."""
    await _run(dut, reset_first=True)
