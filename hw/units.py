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
  depending on ``o.ready`` (``i.ready`` may follow ``o.ready`` combinationally:
  ``i.ready = ~o.valid | o.ready``); the read-only property ``latency`` gives the cycles from an
  accepted input to its output becoming valid; parameters are read-only properties;
- a unit with a compile-time threshold exposes it as the read-only property ``threshold_const``
  (an ``int``; ``None`` when the threshold is a runtime port or the unit has none);
- a numpy reference: ``UnitInfo.reference(params, inputs) -> outputs``, dicts of ``(N, lanes)``
  int64 arrays keyed by field name, built on ``golden.fixed`` (and ``golden.intact``). For a unit
  with a threshold, ``inputs`` may carry ``"threshold"`` (a scalar: the value driven on the
  runtime port); without it the reference uses ``T = threshold(alpha, Format(width, frac))``.

Parameter checks shared by the units live here too (``check_width``, ``check_lanes``,
``check_threshold``), so every unit words its errors alike. Importing this module is light (no
amaranth): unit modules are imported when a unit is built.

``UNITS`` merges the HeLU units (``HELU_UNITS``) with ``hw.baselines.BASELINE_UNITS``; it is
assembled on first access so that either module may be imported first.
"""

from collections.abc import Callable
from dataclasses import dataclass, field

from helu.golden import fixed

__all__ = [
    "UnitParams",
    "UnitInfo",
    "UNITS",
    "HELU_UNITS",
    "check_width",
    "check_lanes",
    "check_threshold",
]


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

    @property
    def gradient_width(self) -> int:
        """``grad_width``, or ``width`` when it is ``None``."""
        return self.width if self.grad_width is None else self.grad_width


@dataclass(frozen=True)
class UnitInfo:
    build: Callable  # (UnitParams) -> wiring.Component
    reference: Callable  # (UnitParams, dict[str, ndarray]) -> dict[str, ndarray]
    uses: tuple[str, ...] = field(default=("width", "lanes"))
    description: str = ""


def _is_int(value) -> bool:
    return isinstance(value, int) and not isinstance(value, bool)


def check_width(width, what: str = "Width") -> int:
    """Check a code width: an integer from 2 to ``fixed.MAX_WIDTH`` bits (the golden range)."""
    if not _is_int(width):
        raise TypeError(f"{what} must be an integer, not {width!r}")
    if not 2 <= width <= fixed.MAX_WIDTH:
        raise ValueError(f"{what} must be between 2 and {fixed.MAX_WIDTH} bits, not {width}")
    return width


def check_lanes(lanes) -> int:
    """Check a lane count: a positive integer."""
    if not _is_int(lanes):
        raise TypeError(f"Lane count must be a positive integer, not {lanes!r}")
    if lanes < 1:
        raise ValueError(f"Lane count must be a positive integer, not {lanes}")
    return lanes


def check_threshold(threshold, width: int) -> int:
    """Check a constant threshold ``T`` against ``width``-bit codes (``fixed.threshold_width``)."""
    if not _is_int(threshold):
        raise TypeError(f"Threshold must be an integer, not {threshold!r}")
    lo, hi = fixed.threshold_range(fixed.Format(width, 0))
    if not lo <= threshold <= hi:
        raise ValueError(
            f"Threshold must be between {lo} and {hi} for {width}-bit codes, not {threshold}"
        )
    return threshold


def _threshold(params: UnitParams, inputs=None) -> int:
    """``T`` for a unit: the runtime value given with the inputs, or the one from alpha."""
    if inputs is not None and "threshold" in inputs:
        t = inputs["threshold"]
        return t if fixed.array_generic(t) else int(t)
    return fixed.threshold(params.alpha, fixed.Format(params.width, params.frac))


def _build_threshold(params: UnitParams):
    """``(threshold, threshold_port)`` for a constructor: ``T`` warns if alpha vanishes."""
    check_width(params.width)
    if params.threshold_port:
        return None, True
    return fixed.check_alpha(params.alpha, fixed.Format(params.width, params.frac)), False


def _build_forward(params: UnitParams):
    from helu.hw.forward import Forward

    return Forward(params.width, params.lanes, src_loc_at=1)


def _build_forward_train(params: UnitParams):
    from helu.hw.forward import Forward

    check_lanes(params.lanes)
    t, port = _build_threshold(params)
    return Forward(
        params.width, params.lanes, train=True, threshold=t, threshold_port=port, src_loc_at=1
    )


def _build_backward_mask(params: UnitParams):
    from helu.hw.backward import Backward

    if params.grad_width is None:
        check_width(params.width)  # the gradient takes z's width: name the value given
    return Backward(params.gradient_width, params.lanes, stash="mask", src_loc_at=1)


def _build_backward_z(params: UnitParams):
    from helu.hw.backward import Backward

    check_lanes(params.lanes)
    check_width(params.gradient_width, "Gradient width")
    t, port = _build_threshold(params)
    return Backward(
        params.gradient_width,
        params.lanes,
        stash="z",
        width=params.width,
        threshold=t,
        threshold_port=port,
        src_loc_at=1,
    )


def _ref_forward(params, inputs):
    return {"y": fixed.forward(inputs["z"])}


def _ref_forward_train(params, inputs):
    z = inputs["z"]
    return {"y": fixed.forward(z), "mask": fixed.mask(z, _threshold(params, inputs)).astype(int)}


def _ref_backward_mask(params, inputs):
    return {"dz": fixed.backward(inputs["g"], inputs["mask"])}


def _ref_backward_z(params, inputs):
    m = fixed.mask(inputs["z"], _threshold(params, inputs))
    return {"dz": fixed.backward(inputs["g"], m)}


_THRESHOLD_USES = ("width", "lanes", "frac", "alpha", "threshold_port")

HELU_UNITS: dict[str, UnitInfo] = {
    "forward": UnitInfo(
        build=_build_forward,
        reference=_ref_forward,
        uses=("width", "lanes"),
        description="HeLU/ReLU inference forward: y = z if z > 0 else 0, selected by the sign bit",
    ),
    "forward-train": UnitInfo(
        build=_build_forward_train,
        reference=_ref_forward_train,
        uses=_THRESHOLD_USES,
        description="HeLU training forward: y as in inference, plus the stash bit mask = z > T",
    ),
    "backward-mask": UnitInfo(
        build=_build_backward_mask,
        reference=_ref_backward_mask,
        uses=("lanes", "grad_width"),
        description="HeLU backward from a 1-bit mask stash: dz = g if mask else 0",
    ),
    "backward-z": UnitInfo(
        build=_build_backward_z,
        reference=_ref_backward_z,
        uses=(*_THRESHOLD_USES, "grad_width"),
        description="HeLU backward from a stored z: dz = g if z > T else 0",
    ),
}
"""The HeLU units of this project (``hw.forward``, ``hw.backward``)."""


UNITS: dict[str, UnitInfo]  # annotation only: assembled by __getattr__ on first access


def __getattr__(name):
    # UNITS is assembled on first access: hw.baselines imports this module for UnitInfo, so a
    # module-level import of it here would fail whenever hw.baselines is imported first.
    if name == "UNITS":
        from helu.hw.baselines import BASELINE_UNITS

        overlap = sorted(set(HELU_UNITS) & set(BASELINE_UNITS))
        if overlap:
            raise RuntimeError(f"baseline units {overlap} clash with HeLU unit names")
        units = {**HELU_UNITS, **BASELINE_UNITS}
        globals()["UNITS"] = units
        return units
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
