"""The reference as logic: numpy code evaluated on Amaranth values (:class:`Symbolic`).

A proof needs a unit's integer reference as a circuit, not a table, and an engine can want a rule
of ``golden.fixed`` as logic too. The registry's references are written with numpy operators and
a few numpy functions only (``np.where``, ``np.clip``, ``np.minimum``, ``np.maximum``,
``np.abs``, ``np.sign``, ``.clip``, ``.astype``), so :class:`Symbolic`, an array-like wrapper of
an Amaranth value that implements numpy's dispatch protocols (``__array_ufunc__``,
``__array_function__``), runs the *same* reference code on free variables and yields Amaranth
expressions. There is no second copy of any rule: ``golden.fixed`` stays the one place where the
threshold, the forward select and the backward gate are written, and a new unit whose reference
sticks to these operations is proved without touching ``hw.formal``. :class:`SymbolicArray`
does the same for whole arrays of codes, so that a network's inference
(``golden.intmodel.infer``: its matrix products, requantization and argmax) runs on free input
codes (``hw.formal_net``). Amaranth arithmetic widens
instead of wrapping, so the expressions compute the exact integers numpy computes in int64 (the
references keep their intermediates far below 63 bits).
"""

import operator

import numpy as np
from amaranth.hdl import Mux, Value

__all__ = ["Symbolic", "SymbolicArray", "all_of"]


def _operand(x):
    """An Amaranth operand for ``x``: a symbolic code's value, or a Python/numpy integer."""
    if isinstance(x, Symbolic):
        return x.value
    if isinstance(x, (bool, np.bool_, int, np.integer)):
        return int(x)
    if isinstance(x, np.ndarray) and x.ndim == 0 and np.issubdtype(x.dtype, np.integer):
        return int(x)
    raise TypeError(f"a symbolic code combines only with integers, not {x!r}")


def _symbolic(x) -> "Symbolic":
    return x if isinstance(x, Symbolic) else Symbolic(_operand(x))


def _binary(op, *, boolean=False, reflected=False):
    def method(self, other):
        a, b = self.value, _operand(other)
        return Symbolic(op(b, a) if reflected else op(a, b), boolean=boolean)

    return method


def _where(condition, x, y):
    return Symbolic(Mux(_symbolic(condition).astype(bool).value, _operand(x), _operand(y)))


def _clip(a, a_min=None, a_max=None):
    return _symbolic(a).clip(a_min, a_max)


def _minimum(a, b):
    return _where(_symbolic(a) < b, a, b)


def _maximum(a, b):
    return _where(_symbolic(a) > b, a, b)


def _signed_range(lo, hi) -> int:
    """``k`` when ``[lo, hi]`` is the range of ``k``-bit signed codes, else 0."""
    if not (isinstance(lo, int) and isinstance(hi, int)) or lo >= 0 or hi != -lo - 1:
        return 0
    k = hi.bit_length() + 1
    return k if hi == (1 << (k - 1)) - 1 else 0


def _sign(a):
    v = _operand(a)
    return Symbolic(Mux(v > 0, 1, Mux(v < 0, -1, 0)))


class Symbolic:
    """One integer code as logic: numpy's operators and functions, evaluated as Amaranth values.

    A reference written for int64 numpy arrays runs unchanged on ``Symbolic`` codes (the
    ``golden`` rules let objects implementing numpy's ``__array_function__`` protocol through) and
    returns ``Symbolic`` results whose ``value`` is the circuit computing it. Arithmetic is exact
    (Amaranth widens where numpy's int64 would need to), comparisons give booleans, and anything
    the class does not implement, or a Python ``if`` on a code, raises ``TypeError`` instead of
    silently computing something else.

    Parameters
    ----------
    value : Amaranth value or int
        The code; signed or unsigned shapes keep their integer value.
    boolean : bool
        Whether the code is a numpy boolean (a comparison's result): ``~`` is then logical not.
    """

    __slots__ = ("_value", "_boolean")
    __array_priority__ = 1000
    __hash__ = None
    shape = ()
    ndim = 0

    def __init__(self, value, *, boolean=False):
        self._value = Value.cast(value)
        self._boolean = boolean

    @property
    def value(self) -> Value:
        return self._value

    @property
    def boolean(self) -> bool:
        return self._boolean

    def __repr__(self):
        return f"Symbolic({self._value!r}{', boolean=True' if self._boolean else ''})"

    def __bool__(self):
        raise TypeError(
            "a symbolic code has no truth value: the reference branches in Python on a code; "
            "write the rule with np.where so that it can be proved"
        )

    __add__ = _binary(operator.add)
    __radd__ = _binary(operator.add, reflected=True)
    __sub__ = _binary(operator.sub)
    __rsub__ = _binary(operator.sub, reflected=True)
    __mul__ = _binary(operator.mul)
    __rmul__ = _binary(operator.mul, reflected=True)
    __and__ = _binary(operator.and_)
    __rand__ = _binary(operator.and_, reflected=True)
    __or__ = _binary(operator.or_)
    __ror__ = _binary(operator.or_, reflected=True)
    __xor__ = _binary(operator.xor)
    __rxor__ = _binary(operator.xor, reflected=True)
    __gt__ = _binary(operator.gt, boolean=True)
    __ge__ = _binary(operator.ge, boolean=True)
    __lt__ = _binary(operator.lt, boolean=True)
    __le__ = _binary(operator.le, boolean=True)
    __eq__ = _binary(operator.eq, boolean=True)
    __ne__ = _binary(operator.ne, boolean=True)

    def __rshift__(self, amount):
        return Symbolic(self._value >> self._amount(amount))

    def __lshift__(self, amount):
        return Symbolic(self._value << self._amount(amount))

    @staticmethod
    def _amount(amount) -> int:
        if isinstance(amount, bool) or not isinstance(amount, (int, np.integer)) or amount < 0:
            raise TypeError(f"a symbolic code shifts only by a constant >= 0, not {amount!r}")
        return int(amount)

    def __neg__(self):
        return Symbolic(-self._value)

    def __pos__(self):
        return self

    def __abs__(self):
        return Symbolic(abs(self._value))

    def __invert__(self):
        if self._boolean:
            return Symbolic(~self._value, boolean=True)
        return Symbolic(-self._value - 1)  # two's complement ~k, at any width

    def __pow__(self, exponent):
        if isinstance(exponent, bool) or not isinstance(exponent, (int, np.integer)):
            raise TypeError(f"a symbolic code takes only constant powers, not {exponent!r}")
        if exponent < 1:
            raise TypeError(f"a symbolic code takes only powers >= 1, not {exponent}")
        result = self._value
        for _ in range(int(exponent) - 1):
            result = result * self._value
        return Symbolic(result)

    def astype(self, dtype, copy=True):
        kind = np.dtype(dtype).kind
        if kind == "b":
            return self if self._boolean else Symbolic(self._value != 0, boolean=True)
        if kind in "iu":
            return Symbolic(self._value)
        raise TypeError(f"a symbolic code converts only to integers or booleans, not {dtype}")

    def clip(self, min=None, max=None):  # noqa: A002 (numpy's names)
        v = self._value
        lo = None if min is None else _operand(min)
        hi = None if max is None else _operand(max)
        if lo is not None and hi is not None and _signed_range(lo, hi) and v.shape().signed:
            bits = _signed_range(lo, hi)
            if len(v) > bits:
                # Clipping to the k-bit codes: in range iff the bits from k - 1 up are all
                # equal (sign extension), so no comparator carry chains are needed.
                top = v[bits - 1 :]
                inside = (top == 0) | (top == (1 << len(top)) - 1)
                return Symbolic(Mux(inside, v, Mux(v[-1], lo, hi)))
            return Symbolic(v)
        if lo is not None:
            v = Mux(v < lo, lo, v)
        if hi is not None:
            v = Mux(v > hi, hi, v)
        return Symbolic(v)

    _UFUNCS = {
        np.add: operator.add,
        np.subtract: operator.sub,
        np.multiply: operator.mul,
        np.bitwise_and: operator.and_,
        np.bitwise_or: operator.or_,
        np.bitwise_xor: operator.xor,
        np.greater: operator.gt,
        np.greater_equal: operator.ge,
        np.less: operator.lt,
        np.less_equal: operator.le,
        np.equal: operator.eq,
        np.not_equal: operator.ne,
        np.right_shift: operator.rshift,
        np.left_shift: operator.lshift,
        np.power: operator.pow,
        np.negative: operator.neg,
        np.positive: operator.pos,
        np.absolute: operator.abs,
        np.invert: operator.invert,
        np.minimum: _minimum,
        np.maximum: _maximum,
        np.sign: _sign,
    }
    _FUNCTIONS = {np.where: _where, np.clip: _clip}

    def __array_ufunc__(self, ufunc, method, *inputs, **kwargs):
        if method != "__call__" or kwargs or ufunc not in self._UFUNCS:
            raise TypeError(f"a symbolic code does not implement numpy's {ufunc.__name__}")
        return self._UFUNCS[ufunc](*(_symbolic(x) for x in inputs))

    def __array_function__(self, func, types, args, kwargs):
        if func not in self._FUNCTIONS:
            raise TypeError(f"a symbolic code does not implement numpy's {func.__name__}")
        return self._FUNCTIONS[func](*args, **kwargs)


def all_of(conditions) -> Value:
    """The AND of Amaranth ``conditions`` (1 for none)."""
    result = Value.cast(1)
    for c in conditions:
        result = result & c
    return result


def _elementwise(op, nin: int):
    """``op`` on the cells of object arrays, always giving an object array (numpy's own
    comparison loops would ask a ``Symbolic`` for its truth value)."""
    return np.frompyfunc(op, nin, 1)


def _cells(x):
    """An object array of ``x``: a symbolic array's cells, or an integer array or scalar."""
    if isinstance(x, SymbolicArray):
        return x.cells
    if isinstance(x, Symbolic):
        cells = np.empty((), dtype=object)
        cells[()] = x
        return cells
    a = np.asarray(x)
    if a.dtype != object and not (np.issubdtype(a.dtype, np.integer) or a.dtype == np.bool_):
        raise TypeError(f"a symbolic array combines only with integers, not {a.dtype} values")
    return a.astype(object)


def _array_binary(op, *, reflected=False):
    ufunc = _elementwise(op, 2)

    def method(self, other):
        a, b = self.cells, _cells(other)
        return SymbolicArray(ufunc(b, a) if reflected else ufunc(a, b))

    return method


def _matmul(a, b):
    """``a @ b`` on object arrays: numpy's object loop multiplies and adds the cells in order,
    with Python's operators (so ``Symbolic``'s)."""
    return SymbolicArray(np.matmul(a, b))


class SymbolicArray:
    """An array of integer codes as logic: what numpy does to an int64 array, done to an array
    of :class:`Symbolic` cells.

    ``golden.intmodel.infer`` runs unchanged on it (``golden.fixed.array_generic`` lets it
    through the rules): indexing and ``reshape``, ``@`` with integer arrays, the operators
    (cell by cell, broadcasting as numpy does), ``.clip`` and ``.astype``, and ``argmax`` with
    numpy's tie rule (the first index of the largest). The golden code takes the array-generic
    path it takes for torch tensors, so the array also answers the two tensor methods that path
    calls: ``new_tensor(data)`` (the integer array itself: constants stay constants) and
    ``argmax(dim=)``. Anything else raises ``TypeError``.

    Parameters
    ----------
    cells : nested lists or an object array of Symbolic codes or integers
        The codes (integers become constant codes). Wrap an Amaranth value in ``Symbolic``
        first: numpy would read a bare one as a sequence of its bits.
    """

    __slots__ = ("_cells",)
    __array_priority__ = 1000
    __array_ufunc__ = None  # numpy's operators give way to ours (``ndarray + SymbolicArray``)
    __hash__ = None

    def __init__(self, cells):
        cells = np.asarray(cells, dtype=object)
        if not cells.ndim:
            raise TypeError("a symbolic array needs at least one dimension; use Symbolic")
        self._cells = _elementwise(_symbolic, 1)(cells)

    @property
    def cells(self) -> np.ndarray:
        """The ``Symbolic`` codes, as a numpy object array of the array's shape."""
        return self._cells

    @property
    def shape(self) -> tuple[int, ...]:
        return self._cells.shape

    @property
    def ndim(self) -> int:
        return self._cells.ndim

    def __len__(self):
        return len(self._cells)

    def __repr__(self):
        return f"SymbolicArray(shape={self.shape})"

    def __bool__(self):
        raise TypeError("a symbolic array has no truth value: write the rule with np.where")

    def values(self) -> list[Value]:
        """The cells' Amaranth values, flat in C order."""
        return [c.value for c in self._cells.flat]

    def _wrap(self, cells):
        cells = np.asarray(cells, dtype=object)
        return SymbolicArray(cells) if cells.ndim else cells[()]

    def __getitem__(self, key):
        return self._wrap(self._cells[key])

    def reshape(self, *shape):
        return SymbolicArray(self._cells.reshape(*shape))

    @property
    def mT(self):  # noqa: N802 (numpy's name)
        return SymbolicArray(np.swapaxes(self._cells, -1, -2))

    def __matmul__(self, other):
        return _matmul(self._cells, _cells(other))

    def __rmatmul__(self, other):
        return _matmul(_cells(other), self._cells)

    __add__ = _array_binary(operator.add)
    __radd__ = _array_binary(operator.add, reflected=True)
    __sub__ = _array_binary(operator.sub)
    __rsub__ = _array_binary(operator.sub, reflected=True)
    __mul__ = _array_binary(operator.mul)
    __rmul__ = _array_binary(operator.mul, reflected=True)
    __gt__ = _array_binary(operator.gt)
    __ge__ = _array_binary(operator.ge)
    __lt__ = _array_binary(operator.lt)
    __le__ = _array_binary(operator.le)
    __eq__ = _array_binary(operator.eq)
    __ne__ = _array_binary(operator.ne)
    __and__ = _array_binary(operator.and_)
    __or__ = _array_binary(operator.or_)

    def __rshift__(self, amount):
        Symbolic._amount(amount)
        return SymbolicArray(_elementwise(lambda c: c >> int(amount), 1)(self._cells))

    def __lshift__(self, amount):
        Symbolic._amount(amount)
        return SymbolicArray(_elementwise(lambda c: c << int(amount), 1)(self._cells))

    def __neg__(self):
        return SymbolicArray(_elementwise(operator.neg, 1)(self._cells))

    def clip(self, min=None, max=None):  # noqa: A002 (numpy's names)
        return SymbolicArray(_elementwise(lambda c: c.clip(min, max), 1)(self._cells))

    def astype(self, dtype, copy=True):
        return SymbolicArray(_elementwise(lambda c: c.astype(dtype), 1)(self._cells))

    def new_tensor(self, data) -> np.ndarray:
        """Constants beside the array (torch's name, which the golden code calls for arrays
        that are not numpy's): the integer array itself."""
        a = np.asarray(data)
        if not np.issubdtype(a.dtype, np.integer):
            raise TypeError(f"a symbolic array takes integer constants, not {a.dtype} values")
        return a

    def argmax(self, axis=None, *, dim=None):
        """Index of the largest code along ``axis`` (``dim``): the first one on a tie, as numpy's
        ``argmax`` (and torch's) return."""
        axis = dim if axis is None else axis
        if axis is None:
            raise TypeError("a symbolic array's argmax needs an axis")
        cells = np.moveaxis(self._cells, axis, -1)
        out = np.empty(cells.shape[:-1], dtype=object)
        for index in np.ndindex(out.shape):
            row = cells[index]
            best, arg = row[0], Symbolic(0)
            for k in range(1, len(row)):
                greater = row[k] > best  # only a strictly larger code moves the index
                arg = np.where(greater, k, arg)
                best = np.where(greater, row[k], best)
            out[index] = arg
        return self._wrap(out)

    def __array_function__(self, func, types, args, kwargs):
        raise TypeError(f"a symbolic array does not implement numpy's {func.__name__}")
