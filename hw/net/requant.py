"""Requantization in hardware: ``golden.fixed.requantize`` on an Amaranth value.

The rounding is not restated here: :func:`requantize` applies ``golden.fixed.shift_round`` to the
Amaranth value itself (it uses only ``+`` and ``>>``, which Amaranth widens and shifts
arithmetically for a signed value, so the rounding add cannot overflow), then saturates to the
bounds of ``golden.fixed.Format(width, 0)``. The tests check it against ``fixed.requantize``
over every corner and random accumulators.
"""

from amaranth.hdl import Mux, Value

from helu.golden import fixed

__all__ = ["requantize", "round_select", "saturate", "select"]


def _check_shift(shift) -> int:
    if isinstance(shift, bool) or not isinstance(shift, int) or shift < 0:
        raise ValueError(f"Shift must be an integer >= 0, not {shift!r}")
    return shift


def saturate(value: Value, width: int = fixed.ACT_WIDTH) -> Value:
    """``fixed.saturate(value, width)``: clamp to the codes of ``Format(width, 0)``."""
    fmt = fixed.Format(width, 0)
    value = Value.cast(value)
    return Mux(
        value > fmt.max_code,
        fmt.max_code,
        Mux(value < fmt.min_code, fmt.min_code, value),
    )[:width].as_signed()


def requantize(acc: Value, shift: int, width: int = fixed.ACT_WIDTH) -> Value:
    """``saturate(shift_round(acc, shift), width)`` as a combinational ``signed(width)`` value."""
    shift = _check_shift(shift)
    return saturate(fixed.shift_round(Value.cast(acc).as_signed(), shift), width)


def round_select(acc: Value, index: Value, shifts) -> Value:
    """``fixed.shift_round(acc, shifts[index])``, before saturation (one bit wider than ``acc``).

    With :func:`saturate` after it, ``requantize`` with a runtime choice among constant shifts,
    split so that a pipeline registers between the rounding add and the saturation compare (two
    carry chains). One rounding shifter per layer: a handful of constants costs less than a barrel
    shifter.
    """
    shifts = [_check_shift(s) for s in shifts]
    if not shifts:
        raise ValueError("round_select needs at least one shift")
    acc = Value.cast(acc).as_signed()
    width = len(acc) + 1
    rounded = [fixed.shift_round(acc, s).as_signed() for s in shifts]
    return select(index, rounded)[:width].as_signed()


def select(index: Value, values) -> Value:
    """``values[index]`` as a chain of ``Mux`` (the last value for any larger index).

    Not ``Array``: Amaranth emits an ``Array`` lookup as an ``always @*`` process, which Icarus
    evaluates only on an event at one of its inputs, so a lookup by a register that keeps its
    initial value (a layer counter through a whole layer) would read X; ``Mux`` cells become
    continuous assignments, evaluated from time 0.
    """
    values = list(values)
    if not values:
        raise ValueError("select needs at least one value")
    result = Value.cast(values[-1])
    for k in range(len(values) - 2, -1, -1):
        result = Mux(index == k, values[k], result)
    return result
