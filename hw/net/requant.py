"""``golden.fixed``'s integer rules on Amaranth values: the engines' arithmetic, not restated.

:func:`rule` evaluates a ``golden.fixed`` function (``requantize``, ``shadow_weights``,
``update``, ``loss_gradient``, ...) on Amaranth values through ``hw.symbolic.Symbolic``, the
bridge the proofs use: the function's own numpy code builds the circuit (Amaranth widens instead
of wrapping, so every intermediate is the exact integer numpy computes in int64), and the result
is cut to the rule's output width. :func:`requantize` and :func:`saturate` are that for the
requantization; :func:`round_select` picks among a few constant shifts at run time. The tests
check them against ``fixed.requantize`` over every corner and random accumulators.
"""

from amaranth.hdl import Mux, Value, ValueCastable

from helu.golden import fixed
from helu.hw.symbolic import Symbolic

__all__ = ["rule", "requantize", "align", "round_select", "saturate", "select"]


def rule(fn, *args, width: int) -> Value:
    """``fn(*args)`` as a ``signed(width)`` Amaranth value: Amaranth arguments enter ``fn`` as
    symbolic codes, the others (shifts, widths) as they are. ``fn`` is a ``golden.fixed`` rule
    whose result fits ``width`` bits (it saturates to them)."""

    def code(a):
        return Symbolic(a) if isinstance(a, (Value, ValueCastable)) else a

    out = fn(*(code(a) for a in args))
    return Value.cast(out.value if isinstance(out, Symbolic) else out)[:width].as_signed()


def _check_shift(shift) -> int:
    if isinstance(shift, bool) or not isinstance(shift, int) or shift < 0:
        raise ValueError(f"Shift must be an integer >= 0, not {shift!r}")
    return shift


def saturate(value: Value, width: int = fixed.ACT_WIDTH) -> Value:
    """``fixed.saturate(value, width)``: clamp to the codes of ``Format(width, 0)``."""
    return rule(fixed.saturate, Value.cast(value), width, width=width)


def requantize(acc: Value, shift: int, width: int = fixed.ACT_WIDTH) -> Value:
    """``saturate(shift_round(acc, shift), width)`` as a combinational ``signed(width)`` value."""
    return rule(
        fixed.requantize, Value.cast(acc).as_signed(), _check_shift(shift), width, width=width
    )


def align(x: Value, index: Value, shifts) -> tuple[Value, int]:
    """``(x << (m - shifts[index]), m)`` with ``m = max(0, *shifts)``: a runtime choice among
    constant shifts (signed: ``golden.fixed.scale_shift``'s) turned into one constant shift.

    ``scale_shift(x << (m - s), m) == scale_shift(x, s)`` for every integer ``x`` and ``s <= m``
    (the rounding constant ``2**(m - 1)`` over the aligned value is ``2**(s - 1)`` over ``x``; a
    left shift is exact), so a rule applied once with shift ``m`` to the aligned value is the
    rule with the chosen shift: one adder, not one per shift, and the mux picks wirings.
    """
    shifts = [int(s) for s in shifts]
    if not shifts:
        raise ValueError("align needs at least one shift")
    m = max(0, *shifts)
    x = Value.cast(x).as_signed()
    return select(index, [x << (m - s) for s in shifts]), m


def round_select(acc: Value, index: Value, shifts) -> Value:
    """``fixed.shift_round(acc, shifts[index])``, before saturation (one bit wider than ``acc``).

    With :func:`saturate` after it, ``requantize`` with a runtime choice among constant shifts,
    split so that a pipeline registers between the rounding add and the saturation compare (two
    carry chains); one rounding adder for every shift (:func:`align`).
    """
    shifts = [_check_shift(s) for s in shifts]
    acc = Value.cast(acc).as_signed()
    aligned, m = align(acc, index, shifts)
    return fixed.shift_round(aligned, m)[: len(acc) + 1].as_signed()


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
