"""``z > T`` against a constant ``T`` as an AND/OR chain over the bits: no carry chain.

An Amaranth ``z > T`` becomes a Yosys ``$gt`` cell, which ``synth_ice40`` maps onto a carry chain
(8 bits: 9 LUT4 + 7 ``SB_CARRY``) even when ``T`` is a constant; Yosys does not find the cheaper
form itself. Against a constant the comparison is a chain of ANDs and ORs over the bits of ``z``
(see :func:`greater_than`), which maps to about ``ceil((W - 1) / 3)`` LUT4 and no carry. A
runtime threshold (a port) keeps the real comparator.

:func:`above_threshold` is the HeLU mask rule ``z > T`` in hardware for every unit with a
threshold, whichever kind it was built with; :func:`threshold_member` is the port's signature.
"""

from amaranth.hdl import Const, Value, signed
from amaranth.lib.wiring import In

from helu.golden import fixed

__all__ = ["greater_than", "above_threshold", "threshold_member"]


def greater_than(z: Value, t: int) -> Value:
    """The 1-bit value ``z > t`` for a signed ``W``-bit ``z`` and a constant integer ``t``.

    Offset binary turns the signed comparison into an unsigned one: ``u = z + 2**(W-1)`` (``z``
    with its sign bit inverted) and ``c = t + 2**(W-1)``. Then, from the least significant bit
    up, ``gt = u[i] & gt`` where ``c[i]`` is 1 and ``gt = u[i] | gt`` where it is 0, starting
    from ``gt = 0`` (strict). A ``t`` below every code gives constant 1, one at or above the
    largest code constant 0.
    """
    width = len(z)
    fmt = fixed.Format(width, 0)
    if t < fmt.min_code:
        return Const(1, 1)
    if t >= fmt.max_code:
        return Const(0, 1)
    c = t - fmt.min_code  # 0 <= c <= 2**W - 2
    gt = None  # None stands for the constant 0 below the lowest bit
    for i in range(width):
        bit = ~z[i] if i == width - 1 else z[i]
        if (c >> i) & 1:
            gt = None if gt is None else bit & gt
        else:
            gt = bit if gt is None else bit | gt
    return Const(0, 1) if gt is None else gt


def above_threshold(unit, z: Value) -> Value:
    """``z > T`` for ``unit`` (a unit with a threshold): against its runtime port
    ``unit.threshold`` a real comparator, against its constant ``unit.threshold_const`` the
    AND/OR chain of :func:`greater_than`."""
    if unit.threshold_port:
        return z > unit.threshold
    return greater_than(z, unit.threshold_const)


def threshold_member(width: int) -> In:
    """The ``threshold`` port of a unit whose ``z`` has ``width`` bits: one bit wider than the
    codes, so it carries every clamped ``T`` (``golden.fixed.threshold_width``)."""
    return In(signed(fixed.threshold_width(fixed.Format(width, 0))))
