"""Registry of every streaming unit the toolkit generates, verifies and synthesizes.

The contract all units follow (so that Verilog generation, the cocotb benches and the synthesis
flow treat them alike):

- an ``amaranth.lib.wiring.Component`` with ports ``i: In(stream.Signature(...))`` and
  ``o: Out(stream.Signature(...))``, and, where the threshold is a runtime input,
  ``threshold: In(signed(threshold_width))``;
- stream payloads are ``data.StructLayout`` of named ``data.ArrayLayout`` fields, one element per
  lane (forward: in ``z``, out ``y`` [+ ``mask``]; backward: in ``mask`` or ``z``, then ``g``;
  out ``dz``; baselines: in ``z``, out ``y``). Field 0 and lane 0 sit in the least significant
  bits (``hw.packing``);
- one transfer per cycle sustained, registered outputs, full backpressure, ``o.valid`` never
  depending on ``o.ready``; the read-only property ``latency`` gives the cycles from an accepted
  input to its output becoming valid;
- a numpy reference: ``UnitInfo.reference(params, inputs) -> outputs``, dicts of ``(N, lanes)``
  int64 arrays keyed by field name, built on ``golden.fixed`` (and ``golden.intact``).
"""

from dataclasses import dataclass, field
from typing import Callable

__all__ = ["UnitParams", "UnitInfo", "UNITS"]


@dataclass(frozen=True)
class UnitParams:
    """Every knob a unit may take; each unit reads the ones it needs (``UnitInfo.uses``)."""

    width: int = 8  # bits of z (and y), sign included
    lanes: int = 1  # elements per transfer
    frac: int = 4  # fractional bits of z; with alpha gives the threshold T
    alpha: float = 0.05  # HeLU band (-alpha, 0]
    grad_width: int | None = None  # bits of g and dz; None: same as width
    threshold_port: bool = False  # T from a runtime input port instead of a constant
    leaky_shift: int = 7  # LeakyReLU slope 2**-shift (2**-7 ~ PyTorch's default 0.01)


@dataclass(frozen=True)
class UnitInfo:
    build: Callable  # (UnitParams) -> wiring.Component
    reference: Callable  # (UnitParams, dict[str, ndarray]) -> dict[str, ndarray]
    uses: tuple[str, ...] = field(default=("width", "lanes"))
    description: str = ""


UNITS: dict[str, UnitInfo] = {}
