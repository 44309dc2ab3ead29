"""What a unit declares about itself, the parameter checks every unit shares, and the stage helper.

A unit module in this package (``hw/units/<name>.py``) holds its components and a module-level
``UNITS`` dict ``{name: UnitInfo}``; ``hw/units/__init__.py`` finds every such module and merges
them into the registry. A :class:`UnitInfo` says everything the rest of the toolkit needs:

- ``build(params) -> wiring.Component`` and ``reference(params, inputs) -> outputs`` (dicts of
  ``(N, lanes)`` int64 arrays keyed by field name, built on ``golden.fixed``; for a unit with a
  threshold ``inputs`` may carry ``"threshold"``, the value on the runtime port, else
  ``T = threshold(alpha, Format(width, frac))``);
- ``inputs``: its input stream's fields, in order (``z``; ``z, g``; ``mask, g``);
- ``uses``: the :data:`COMMON_PARAMS` it reads, and ``params``: its own :class:`Param`s (default,
  help, file-name abbreviation, check), which the CLI turns into options;
- ``corners(params, fmt)``: the unit's own corner codes of ``z`` (the stimulus adds the generic
  ones and ``T - 1, T, T + 1`` for a threshold);
- ``study``: the golden study activation it computes (``golden.activations.STUDY_ACTIVATIONS``);
- ``golden``: whether its expected outputs are fields of the golden vectors (``y``, ``mask``,
  ``dz``) rather than its reference;
- ``max_lanes``/``max_lanes_why``: the most lanes the flow synthesizes it at, and why.

The unit contract (ports, payload layouts, timing) is in docs/design.md.
"""

from collections.abc import Callable, Iterable
from contextlib import contextmanager
from dataclasses import dataclass, field
from itertools import pairwise
from typing import Any

from amaranth.hdl import Signal, signed
from amaranth.lib import data, stream, wiring
from amaranth.lib.wiring import In, Out

from helu.golden import fixed

__all__ = [
    "Param",
    "COMMON_PARAMS",
    "PARAMS",
    "UnitParams",
    "UnitInfo",
    "check_width",
    "check_lanes",
    "MAX_LANES",
    "check_threshold",
    "check_bool",
    "refusal",
    "unelaborated",
    "pipeline",
    "register_stage",
    "ElementwiseUnit",
    "threshold_of",
]


@dataclass(frozen=True)
class Param:
    """One unit parameter: its name, default, help line, file-name abbreviation and check.

    ``check(value) -> value`` raises ``TypeError``/``ValueError`` naming the value; ``type`` is
    what the CLI parses the option with.
    """

    name: str
    default: Any
    help: str
    abbrev: str
    type: Callable = int
    check: Callable | None = None


def _is_int(value) -> bool:
    return isinstance(value, int) and not isinstance(value, bool)


def check_width(width, what: str = "Width") -> int:
    """Check a code width: an integer from 2 to ``fixed.MAX_WIDTH`` bits (the golden range)."""
    if not _is_int(width):
        raise TypeError(f"{what} must be an integer, not {width!r}")
    if not 2 <= width <= fixed.MAX_WIDTH:
        raise ValueError(f"{what} must be between 2 and {fixed.MAX_WIDTH} bits, not {width}")
    return width


# Lanes per transfer are capped so that a mistyped count fails at once instead of running for
# minutes: generation time grows with the lane count (measured on the 2-core machine, `helu
# verilog`: forward-train 16 bits x 256 lanes 15 s, 32 bits x 256 lanes 24 s; forward 8 bits x
# 1024 lanes 50 s; 3000 lanes 47 s+ and 2.1 GB), while no target holds that many: the iCE40 HX8K's
# 7680 LUT4 and 206 pins are used up well below 256 lanes of any unit. Wider data is streamed as
# more transfers. With at most 32-bit codes this also caps a payload at 8192 bits.
MAX_LANES = 256


def check_lanes(lanes) -> int:
    """Check a lane count: a positive integer, at most :data:`MAX_LANES`."""
    if not _is_int(lanes):
        raise TypeError(f"Lane count must be a positive integer, not {lanes!r}")
    if lanes < 1:
        raise ValueError(f"Lane count must be a positive integer, not {lanes}")
    if lanes > MAX_LANES:
        raise ValueError(
            f"Lane count must be at most {MAX_LANES}, not {lanes} (generation would take minutes "
            "and gigabytes; stream wider data as more transfers)"
        )
    return lanes


def check_threshold(threshold, width: int) -> int:
    """Check a constant threshold ``T`` against ``width``-bit codes (``fixed.threshold_range``)."""
    if not _is_int(threshold):
        raise TypeError(f"Threshold must be an integer, not {threshold!r}")
    lo, hi = fixed.threshold_range(fixed.Format(width, 0))
    if not lo <= threshold <= hi:
        raise ValueError(
            f"Threshold must be between {lo} and {hi} for {width}-bit codes, not {threshold}"
        )
    return threshold


def check_bool(value, what: str) -> bool:
    """Check a flag: ``True`` or ``False`` only."""
    if not isinstance(value, bool):
        raise TypeError(f"{what} must be a bool, not {value!r}")
    return value


@contextmanager
def refusal(component):
    """Check parameters inside ``with refusal(self):`` before ``super().__init__``.

    The one way a unit refuses bad parameters: the ``TypeError``/``ValueError`` goes to the
    caller, and Amaranth does not also report the refused, half-built object as an elaboratable
    that was never used.
    """
    try:
        yield
    except (TypeError, ValueError):
        unelaborated(component)
        raise


def unelaborated(component):
    """Mark ``component`` as built to be inspected only (its ports, latency or figures, or a
    parameter check), never elaborated, and return it.

    The one way to tell Amaranth so: it would otherwise warn, when the object is collected, that
    an elaboratable was created and never used.
    """
    component._MustUse__silence = True
    return component


def pipeline(m, i, o, stages: int = 1):
    """Valid bits and handshake of a ``stages``-deep registered pipeline; returns its enable.

    The whole pipeline advances when the output register can take a transfer
    (``advance = ~o.valid | o.ready``): no bubble while ``o.ready`` stays high, nothing lost or
    duplicated when it drops. ``i.ready = advance`` (combinational from ``o.ready``); ``o.valid``
    is the last of the valid registers, which are the only ones ``rst`` clears, and never depends
    on ``o.ready``. The caller loads its (``reset_less``) data registers under
    ``with m.If(advance)``: loading whenever the stage can take a transfer, valid or not, gives
    every payload bit one enable, which synthesis puts on the flip-flops' enable pin.
    """
    advance = Signal(name="advance")
    valid = [Signal(name=f"valid_{n}") for n in range(1, stages)] + [o.valid]
    m.d.comb += [advance.eq(~o.valid | o.ready), i.ready.eq(advance)]
    with m.If(advance):
        m.d.sync += valid[0].eq(i.valid)
        m.d.sync += [after.eq(before) for before, after in pairwise(valid)]
    return advance


def register_stage(m, i, o):
    """A one-deep :func:`pipeline` whose output payload is a register; returns that register.

    The register is ``reset_less`` (``rst`` clears only ``valid``, so a unit may use the
    flip-flops' synchronous reset for its function). The caller assigns it with ``m.d.sync``
    under ``with m.If(i.ready)``.
    """
    pipeline(m, i, o, 1)
    payload = Signal(o.payload.shape(), reset_less=True)
    m.d.comb += o.payload.eq(payload)
    return payload


class ElementwiseUnit(wiring.Component):
    """A unit from ``z`` to ``y`` of the same width (the baselines, clipped ReLU): checked
    ``width`` and ``lanes``, the stream ports, no threshold, latency 1 unless the unit says
    otherwise. A subclass checks its own parameters inside ``with refusal(self):`` before
    calling ``super().__init__(width, lanes)``."""

    def __init__(self, width=8, lanes=1):
        with refusal(self):
            self._width = check_width(width)
            self._lanes = check_lanes(lanes)
        element = data.ArrayLayout(signed(width), lanes)
        super().__init__(
            {
                "i": In(stream.Signature(data.StructLayout({"z": element}))),
                "o": Out(stream.Signature(data.StructLayout({"y": element}))),
            }
        )

    @property
    def width(self) -> int:
        return self._width

    @property
    def lanes(self) -> int:
        return self._lanes

    @property
    def threshold_const(self) -> None:
        """No threshold (the unit contract asks for ``None``)."""
        return None

    @property
    def latency(self) -> int:
        return 1


# ----------------------------------------------------------------------------- parameters

COMMON_PARAMS: dict[str, Param] = {
    p.name: p
    for p in (
        Param("width", 8, "bits of z (and y), sign included", "w", int, check_width),
        Param("lanes", 1, "elements per transfer", "l", int, check_lanes),
        Param("frac", 4, "fractional bits of z; with alpha gives the threshold T", "f", int),
        Param("alpha", 0.05, "HeLU band (-alpha, 0]", "a", float),
        Param("grad_width", None, "bits of the gradient g and dz (default: width)", "g", int),
        Param(
            "threshold_port",
            False,
            "take T from a runtime input port instead of a constant",
            "tport",
            bool,
        ),
    )
}
"""The parameters several units share; ``UnitParams`` has a field for each."""

PARAMS: dict[str, Param] = dict(COMMON_PARAMS)
"""Every parameter any unit declares (common ones and units' own), filled by the registry."""


def declare(param: Param) -> None:
    """Add a unit's own parameter to :data:`PARAMS`; a name declared twice must agree."""
    known = PARAMS.get(param.name)
    if known is not None and known != param:
        raise RuntimeError(f"unit parameter {param.name!r} is declared twice, differently")
    PARAMS[param.name] = param


_FIELDS = tuple(COMMON_PARAMS)


class UnitParams:
    """Every knob a unit may take; each unit reads the ones it declares (``UnitInfo.uses``).

    The common parameters (:data:`COMMON_PARAMS`) are attributes; a unit's own parameters
    (``UnitInfo.params``, for example ``leaky_shift``) are keyword arguments too and read as
    attributes, their declared default when not given. Immutable and hashable; two parameter sets
    are equal when every value is (a unit parameter given at its default equals one left out).
    """

    __slots__ = ("width", "lanes", "frac", "alpha", "grad_width", "threshold_port", "_extra")

    def __init__(
        self,
        width: int = 8,
        lanes: int = 1,
        frac: int = 4,
        alpha: float = 0.05,
        grad_width: int | None = None,
        threshold_port: bool = False,
        **unit_params,
    ):
        values = dict(
            zip(_FIELDS, (width, lanes, frac, alpha, grad_width, threshold_port), strict=True)
        )
        for name, value in values.items():
            object.__setattr__(self, name, value)
        extra = {}
        for name, value in unit_params.items():
            param = PARAMS.get(name)
            if param is None or name in COMMON_PARAMS:
                own = sorted(set(PARAMS) - set(COMMON_PARAMS))
                raise TypeError(
                    f"Unknown unit parameter {name!r}; known: {', '.join([*_FIELDS, *own])}"
                )
            if value != param.default:
                extra[name] = value
        object.__setattr__(self, "_extra", tuple(sorted(extra.items())))

    def __getattr__(self, name):
        # Only reached for names that are not slots: a unit's own parameter.
        param = PARAMS.get(name)
        if param is None or name.startswith("_"):
            raise AttributeError(f"UnitParams has no parameter {name!r}")
        return dict(self._extra).get(name, param.default)

    def __setattr__(self, name, value):
        raise AttributeError("UnitParams is immutable: use .replace(...)")

    def _key(self):
        return (*(getattr(self, n) for n in _FIELDS), self._extra)

    def __eq__(self, other):
        return isinstance(other, UnitParams) and self._key() == other._key()

    def __hash__(self):
        return hash(self._key())

    def __repr__(self):
        parts = [f"{n}={getattr(self, n)!r}" for n in _FIELDS]
        parts += [f"{n}={v!r}" for n, v in self._extra]
        return f"UnitParams({', '.join(parts)})"

    def __reduce__(self):  # pickling for worker processes (the slots are immutable)
        return (_unit_params, (self.to_dict(),))

    def replace(self, **changes) -> "UnitParams":
        """A copy with ``changes`` applied."""
        return UnitParams(**(self.to_dict() | changes))

    def __replace__(self, **changes):  # dataclasses.replace / copy.replace
        return self.replace(**changes)

    def to_dict(self) -> dict:
        """Every common parameter, plus the unit parameters given away from their default."""
        return {n: getattr(self, n) for n in _FIELDS} | dict(self._extra)

    @property
    def gradient_width(self) -> int:
        """``grad_width``, or ``width`` when it is ``None``."""
        return self.width if self.grad_width is None else self.grad_width

    def value(self, name: str):
        """The value parameter ``name`` takes in hardware: ``grad_width`` resolves its default."""
        return self.gradient_width if name == "grad_width" else getattr(self, name)


def _unit_params(values: dict) -> UnitParams:
    return UnitParams(**values)


def threshold_of(params: UnitParams, inputs=None) -> int:
    """``T`` for a reference: the runtime value given with the inputs, or the one from alpha."""
    if inputs is not None and "threshold" in inputs:
        t = inputs["threshold"]
        return t if fixed.array_generic(t) else int(t)  # formal proofs pass a symbolic T
    return fixed.threshold(params.alpha, fixed.Format(params.width, params.frac))


# ----------------------------------------------------------------------------- the declaration


def _no_corners(params: UnitParams, fmt: fixed.Format) -> Iterable[int]:
    return ()


@dataclass(frozen=True)
class UnitInfo:
    """Everything the toolkit knows about one unit (see the module docstring)."""

    build: Callable  # (UnitParams) -> wiring.Component
    reference: Callable  # (UnitParams, dict[str, ndarray]) -> dict[str, ndarray]
    uses: tuple[str, ...] = field(default=("width", "lanes"))
    description: str = ""
    inputs: tuple[str, ...] = ("z",)  # input fields: ("z",), ("z", "g") or ("mask", "g")
    params: tuple[Param, ...] = ()
    corners: Callable = _no_corners
    study: str | None = None
    golden: bool = False
    max_lanes: int | None = None
    max_lanes_why: str = ""

    def __post_init__(self):
        for name in self.uses:
            if name not in COMMON_PARAMS:
                raise ValueError(f"uses names {name!r}, which is not a common parameter")
        for param in self.params:
            declare(param)

    @property
    def all_uses(self) -> tuple[str, ...]:
        """Names of every parameter the unit reads: common ones, then its own."""
        return (*self.uses, *(p.name for p in self.params))

    @property
    def has_threshold(self) -> bool:
        """Whether the unit compares against ``T`` (constant or runtime port)."""
        return "threshold_port" in self.uses

    def shaping(self, params: UnitParams) -> dict:
        """``{name: value}`` of the parameters that shape this unit's hardware for ``params``.

        With a runtime threshold port, ``frac`` and ``alpha`` do not shape it (``T`` arrives at
        run time).
        """
        names = self.all_uses
        if self.has_threshold and params.threshold_port:
            names = tuple(n for n in names if n not in ("frac", "alpha"))
        return {n: params.value(n) for n in names}
