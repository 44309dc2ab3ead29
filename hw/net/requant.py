"""Requantization in hardware: ``golden.fixed.requantize`` on an Amaranth value.

The rounding is not restated here: :func:`requantize` applies ``golden.fixed.shift_round`` to the
Amaranth value itself (it uses only ``+`` and ``>>``, which Amaranth widens and shifts
arithmetically for a signed value, so the rounding add cannot overflow), then saturates to the
bounds of ``golden.fixed.Format(width, 0)``. The tests check it against ``fixed.requantize``
over every corner and random accumulators.
"""

from amaranth.hdl import Array, Mux, Value

from helu.golden import fixed

__all__ = ["requantize", "requantize_select"]


def _check_shift(shift) -> int:
    if isinstance(shift, bool) or not isinstance(shift, int) or shift < 0:
        raise ValueError(f"Shift must be an integer >= 0, not {shift!r}")
    return shift


def requantize(acc: Value, shift: int, width: int = fixed.ACT_WIDTH) -> Value:
    """``saturate(shift_round(acc, shift), width)`` as a combinational ``signed(width)`` value."""
    shift = _check_shift(shift)
    fmt = fixed.Format(width, 0)
    rounded = fixed.shift_round(Value.cast(acc).as_signed(), shift)
    return Mux(
        rounded > fmt.max_code,
        fmt.max_code,
        Mux(rounded < fmt.min_code, fmt.min_code, rounded),
    )[:width].as_signed()


def requantize_select(acc: Value, index: Value, shifts, width: int = fixed.ACT_WIDTH) -> Value:
    """``requantize(acc, shifts[index])`` for a runtime ``index`` into constant ``shifts``.

    One saturating shifter per distinct shift, selected by ``index`` (a network has one shift per
    layer, a handful of constants; wiring shifts cost no logic, unlike a barrel shifter).
    """
    shifts = [_check_shift(s) for s in shifts]
    if not shifts:
        raise ValueError("requantize_select needs at least one shift")
    distinct = sorted(set(shifts))
    if len(distinct) == 1:
        return requantize(acc, distinct[0], width)
    options = Array(requantize(acc, s, width) for s in distinct)
    pick = Array(distinct.index(s) for s in shifts)[index]
    return Value.cast(options[pick])[:width].as_signed()
