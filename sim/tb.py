"""cocotb testbench for the streaming units: clock, reset, driver, monitor, scoreboard.

``StreamTB`` drives any unit that follows the ``hw.units`` contract, finding its ports through
the unit's JSON sidecar (``ports.clk``, ``ports.rst``, ``ports.in``/``ports.out`` with ``data``,
``valid``, ``ready``, and ``ports.threshold``). It runs inside the simulator (no torch, no
amaranth).

Handshake sampling: after ``RisingEdge(clk)`` the simulators (Icarus, Verilator) still show the
values from before the edge, which are the values the edge sampled; so one trigger per cycle is
enough to see which transfers happened and to set up the next cycle. The driver and the monitor
share that one trigger and that one loop (``StreamTB.stream``): per-cycle Python work is what
bounds verification throughput, so the loop holds pre-packed ints and does no per-element work.

- Driver: offers the next word; an *idle inserter* (a stall pattern) keeps ``valid`` low on
  some cycles, but an offered word stays offered until accepted (``valid`` never drops before
  ``ready``), as AXI4-Stream requires.
- Monitor: collects every output transfer; a *backpressure inserter* keeps ``ready`` low on
  some cycles.
- Scoreboard: ``helu.sim.stimulus.check`` compares what came out with what was expected, in
  order and count, bit-exactly, after the stream.
"""

import numpy as np
from cocotb.clock import Clock
from cocotb.triggers import RisingEdge

from helu.golden.fixed import to_unsigned

__all__ = ["StreamTB", "stall_pattern", "StallError"]

PATTERN_LENGTH = 4093  # prime, so the idle and backpressure patterns do not lock together


class StallError(AssertionError):
    """The unit made no progress (no transfer in or out) for too long."""


def stall_pattern(probability: float, seed: int, length: int = PATTERN_LENGTH) -> list[bool] | None:
    """A repeating random pattern: ``True`` on a cycle means "stall" (valid/ready low).

    ``probability`` 0 gives ``None`` (never stall: the full-rate loop).
    """
    if not 0 <= probability < 1:
        raise ValueError(f"Stall probability must be in [0, 1), not {probability}")
    if probability == 0:
        return None
    rng = np.random.default_rng(seed)
    return (rng.random(length) < probability).tolist()


class StreamTB:
    """Testbench for one unit instance ``dut`` described by ``sidecar`` (the parsed JSON).

    Parameters
    ----------
    dut : the cocotb handle of the top level.
    sidecar : dict, the unit's sidecar.
    period_ns : clock period (the value only matters for waveforms).
    """

    def __init__(self, dut, sidecar: dict, period_ns: int = 10):
        self.dut = dut
        ports = sidecar["ports"]
        self.latency = int(sidecar["latency"])
        try:
            self.clk = getattr(dut, ports["clk"])
            self.rst = getattr(dut, ports["rst"])
            self.i_data = getattr(dut, ports["in"]["data"])
            self.i_valid = getattr(dut, ports["in"]["valid"])
            self.i_ready = getattr(dut, ports["in"]["ready"])
            self.o_data = getattr(dut, ports["out"]["data"])
            self.o_valid = getattr(dut, ports["out"]["valid"])
            self.o_ready = getattr(dut, ports["out"]["ready"])
            t = ports.get("threshold")
            self.threshold = getattr(dut, t["name"]) if t else None
        except AttributeError as exc:
            raise AttributeError(f"the sidecar names a port the design lacks: {exc}") from None
        self.threshold_width = int(t["width"]) if t else 0
        self.rst_on = 0 if ports.get("rst_active_low") else 1
        self.period_ns = period_ns
        self.cycles = 0  # clock cycles spent in stream()
        self.partial = []  # what stream() had received when it raised StallError
        self._edge = RisingEdge(self.clk)

    def start_clock(self):
        Clock(self.clk, self.period_ns, unit="ns").start()

    async def reset(self, cycles: int = 2):
        """Hold ``rst`` for ``cycles`` clock edges with ``valid`` low and ``ready`` high."""
        self.i_valid.value = 0
        self.o_ready.value = 1
        self.rst.value = self.rst_on
        for _ in range(cycles):
            await self._edge
        self.rst.value = 1 - self.rst_on
        await self._edge

    def set_threshold(self, t: int | None):
        """Drive the runtime threshold port (two's complement); ``None`` or no port: nothing."""
        if t is None or self.threshold is None:
            return
        self.threshold.value = int(to_unsigned(int(t), self.threshold_width))

    async def stream(
        self,
        words: list[int],
        expect: int | None = None,
        *,
        idle: list[bool] | None = None,
        backpressure: list[bool] | None = None,
        timeout: int = 1000,
    ) -> list:
        """Send ``words`` and collect ``expect`` (default ``len(words)``) output transfers.

        Returns the received payloads as cocotb ``LogicArray``s (convert after the run: no
        per-cycle conversion). Raises ``StallError`` after ``timeout + latency`` cycles without
        a transfer.
        """
        n = len(words)
        expect = n if expect is None else expect
        edge = self._edge
        i_ready, i_valid, i_data = self.i_ready, self.i_valid, self.i_data
        o_valid, o_data, o_ready = self.o_valid, self.o_data, self.o_ready
        got = []
        append = got.append
        sent = 0
        cycle = 0
        last = 0
        limit = timeout + self.latency
        offered = n > 0
        if offered:
            i_data.value = words[0]
            i_valid.value = 1
        o_ready.value = 1
        if idle is None and backpressure is None:
            # Full rate: valid and ready stay high; one sample of each handshake per cycle.
            while len(got) < expect:
                await edge
                cycle += 1
                if offered and i_ready.value:
                    sent += 1
                    last = cycle
                    if sent < n:
                        i_data.value = words[sent]
                    else:
                        offered = False
                        i_valid.value = 0
                if o_valid.value:
                    append(o_data.value)
                    last = cycle
                elif cycle - last > limit:
                    self.cycles += cycle
                    self.partial = got
                    raise self._stall(sent, n, len(got), expect, limit)
            self.cycles += cycle
            return got
        p_idle = len(idle) if idle else 1
        p_bp = len(backpressure) if backpressure else 1
        ready_high = True
        valid_high = offered
        while len(got) < expect:
            await edge
            cycle += 1
            if offered and i_ready.value:
                sent += 1
                offered = False
                last = cycle
            if ready_high and o_valid.value:
                append(o_data.value)
                last = cycle
            elif cycle - last > limit:
                self.cycles += cycle
                self.partial = got
                raise self._stall(sent, n, len(got), expect, limit)
            if not offered and sent < n and not (idle and idle[cycle % p_idle]):
                i_data.value = words[sent]
                offered = True
            if offered != valid_high:
                i_valid.value = offered
                valid_high = offered
            want = not (backpressure and backpressure[cycle % p_bp])
            if want != ready_high:
                o_ready.value = want
                ready_high = want
        if offered or valid_high:
            i_valid.value = 0
        self.cycles += cycle
        return got

    def _stall(self, sent, n, got, expect, limit):
        return StallError(
            f"no transfer for {limit} cycles: sent {sent} of {n} words, received {got} of "
            f"{expect} (latency {self.latency})"
        )

    async def watch(self, cycles: int) -> list:
        """Hold ``valid`` low and ``ready`` high for ``cycles``; return any output seen."""
        self.i_valid.value = 0
        self.o_ready.value = 1
        seen = []
        for _ in range(cycles):
            await self._edge
            if self.o_valid.value:
                seen.append(self.o_data.value)
        return seen

    async def fill_and_reset(self, words: list[int], reset_cycles: int = 2) -> int:
        """Put transfers in flight, then reset the unit in the middle of the stream.

        Streams ``words`` at full rate until the unit has accepted at least ``latency`` words
        and holds at least one whose output has not been taken, then drops ``ready``, asserts
        ``rst`` for ``reset_cycles`` edges and releases it (``watch`` should follow at once:
        the next edge is the first after the reset). Returns how many accepted words had not
        come out (the reset must drop them).
        """
        self.o_ready.value = 1
        self.i_data.value = words[0]
        self.i_valid.value = 1
        accepted = delivered = 0
        for _ in range(self.latency + 8):
            await self._edge
            if self.i_ready.value:
                accepted += 1
                if accepted < len(words):
                    self.i_data.value = words[accepted]
            if self.o_valid.value:
                delivered += 1
            if accepted == len(words) or (accepted >= self.latency and accepted > delivered):
                break
        self.i_valid.value = 0
        self.o_ready.value = 0
        self.rst.value = self.rst_on
        for _ in range(reset_cycles):
            await self._edge
        self.rst.value = 1 - self.rst_on
        return accepted - delivered


def words_to_bytes(values: list, width: int) -> tuple[np.ndarray, int]:
    """Received ``LogicArray``s to ``(transfers, bytes)`` uint8 rows; returns ``(rows, x_count)``.

    A word holding X or Z bits cannot be compared: it becomes all ones (which never matches a
    care mask of real lanes unless every bit is expected 1) and is counted in ``x_count``.
    """
    nbytes = max(1, (width + 7) // 8)
    ones = (1 << width) - 1
    out = bytearray()
    x_count = 0
    for v in values:
        try:
            word = v.to_unsigned()
        except ValueError:
            word = ones
            x_count += 1
        out += word.to_bytes(nbytes, "little")
    return np.frombuffer(bytes(out), dtype=np.uint8).reshape(len(values), nbytes), x_count
