"""Deferred expressions: what ``ensure`` records while a model body is traced.

During tracing the values flowing through a model are symbols (no data yet), so a condition
such as ``y.sum(axis=-1) <= 1.001`` cannot be decided then. Arithmetic, comparisons and the
reductions ``sum``/``min``/``max``/``mean`` on a traced value build an :class:`Expr` instead;
the model evaluates it on the real values at every call. :class:`Verdict` is the outcome of
a check: truthy or not, with a description of the offending values.

Example:
    >>> import numpy as np
    >>> e = (Node(0, "y").sum(axis=-1) <= 1.0)
    >>> e.describe()
    'y.sum(axis=-1) <= 1.0'
    >>> v = e.check([np.array([[0.5, 0.7], [0.2, 0.3]])])
    >>> bool(v), v.detail
    (False, 'first failure at index (0,): left 1.2, right 1')
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import Any

import numpy as np


def _array(x: Any) -> np.ndarray:
    data = getattr(x, "data", x)
    return np.asarray(data)


def _paren(text: str) -> str:
    """``text`` wrapped in parentheses when it is a compound expression (has a space)."""
    return f"({text})" if " " in text else text


def _short(x: Any) -> str:
    arr = np.asarray(x)
    if arr.ndim == 0:
        return f"{arr.item():.6g}" if arr.dtype.kind == "f" else str(arr.item())
    return np.array2string(arr, precision=4, threshold=8, edgeitems=2, separator=", ").replace("\n", "")


class Verdict:
    """The outcome of a check: ``bool(verdict)`` and ``detail`` (the offending values, if any).

    Example:
        >>> v = Verdict(False, "entry 3 is nan")
        >>> bool(v), v
        (False, Verdict(False, 'entry 3 is nan'))
    """

    def __init__(self, ok: bool, detail: str = "") -> None:
        self.ok = bool(ok)
        self.detail = detail

    def __bool__(self) -> bool:
        return self.ok

    def __repr__(self) -> str:
        return f"Verdict({self.ok}, {self.detail!r})"


def verdict_of(value: Any) -> Verdict:
    """Turn a check's raw result (bool, boolean array or Tensor, Verdict) into a :class:`Verdict`.

    An array is true when every entry is; the detail names the first false index.

    Example:
        >>> verdict_of(np.array([True, False]))
        Verdict(False, 'false at index (1,) (1 of 2 entries false)')
    """
    if isinstance(value, Verdict):
        return value
    arr = _array(value)
    if arr.dtype == object:
        raise TypeError(f"ensure: cannot decide a condition of type {type(value).__name__}")
    if arr.ndim == 0:
        return Verdict(bool(arr))
    bad = ~arr.astype(bool)
    if not bad.any():
        return Verdict(True)
    first = tuple(int(i) for i in np.argwhere(bad)[0])
    return Verdict(False, f"false at index {first} ({int(bad.sum())} of {bad.size} entries false)")


class Expr:
    """A value computed later from traced values; supports arithmetic, comparisons and reductions.

    Example:
        >>> (abs(Node(0, "x")) * 2).evaluate([np.array([-1.0, 3.0])]).tolist()
        [2.0, 6.0]
        >>> np.all(Node(0, "x") >= 0).describe()
        '(x >= 0).all()'

    """

    __hash__ = object.__hash__
    __array_ufunc__ = None  # ndarray <op> Expr defers to Expr

    def evaluate(self, env: Sequence[Any]) -> np.ndarray:
        """The value, given the traced values ``env`` (indexed by node)."""
        raise NotImplementedError

    def describe(self) -> str:
        """Readable source-like text of the expression."""
        raise NotImplementedError

    def nodes(self) -> set[int]:
        """Indices of the traced values the expression reads."""
        return set()

    def check(self, env: Sequence[Any]) -> Verdict:
        """Evaluate as a condition."""
        return verdict_of(self.evaluate(env))

    def __bool__(self) -> bool:
        raise TypeError(
            f"the truth value of {self.describe()!r} is not known while the model is traced: "
            "use ensure(condition) to check it when the model runs"
        )

    def __array__(self, *args: Any, **kwargs: Any) -> np.ndarray:
        raise TypeError(
            f"NumPy functions cannot take the traced value {self.describe()!r}: use its methods "
            "(.sum(), .min(), .max(), .mean()), comparisons, or the helpers finite/bounded/valid_probabilities"
        )

    def __repr__(self) -> str:
        return f"<Expr {self.describe()}>"

    # arithmetic ----------------------------------------------------------------------
    def __add__(self, o: Any) -> Expr:
        return _binary(self, o, "+", np.add)

    def __radd__(self, o: Any) -> Expr:
        return _binary(o, self, "+", np.add)

    def __sub__(self, o: Any) -> Expr:
        return _binary(self, o, "-", np.subtract)

    def __rsub__(self, o: Any) -> Expr:
        return _binary(o, self, "-", np.subtract)

    def __mul__(self, o: Any) -> Expr:
        return _binary(self, o, "*", np.multiply)

    def __rmul__(self, o: Any) -> Expr:
        return _binary(o, self, "*", np.multiply)

    def __truediv__(self, o: Any) -> Expr:
        return _binary(self, o, "/", np.divide)

    def __rtruediv__(self, o: Any) -> Expr:
        return _binary(o, self, "/", np.divide)

    def __neg__(self) -> Expr:
        return Op(lambda a: -a, [self], lambda a: f"-{_paren(a)}")

    def __abs__(self) -> Expr:
        return Op(np.abs, [self], lambda a: f"abs({a})")

    # comparisons and logic -----------------------------------------------------------
    def __lt__(self, o: Any) -> Expr:
        return Compare(self, o, "<", np.less)

    def __le__(self, o: Any) -> Expr:
        return Compare(self, o, "<=", np.less_equal)

    def __gt__(self, o: Any) -> Expr:
        return Compare(self, o, ">", np.greater)

    def __ge__(self, o: Any) -> Expr:
        return Compare(self, o, ">=", np.greater_equal)

    def __eq__(self, o: Any) -> Expr:  # type: ignore[override]
        return Compare(self, o, "==", np.equal)

    def __ne__(self, o: Any) -> Expr:  # type: ignore[override]
        return Compare(self, o, "!=", np.not_equal)

    def __and__(self, o: Any) -> Expr:
        return All([self, lift(o)])

    def __rand__(self, o: Any) -> Expr:
        return All([lift(o), self])

    # reductions ----------------------------------------------------------------------
    def _reduce(self, name: str, fn: Callable[..., Any], axis: int | None) -> Expr:
        text = f".{name}()" if axis is None else f".{name}(axis={axis})"
        return Op(lambda a: fn(a, axis=axis), [self], lambda a: f"{_paren(a)}{text}")

    # ``np.sum(expr)``, ``np.all(expr >= 0)``... call these methods (NumPy passes out=None, dtype=None)
    def sum(self, axis: int | None = None, **numpy_kwargs: Any) -> Expr:
        """Sum over ``axis`` (all entries when None)."""
        return self._reduce("sum", np.sum, axis)

    def min(self, axis: int | None = None, **numpy_kwargs: Any) -> Expr:
        """Minimum over ``axis``."""
        return self._reduce("min", np.min, axis)

    def max(self, axis: int | None = None, **numpy_kwargs: Any) -> Expr:
        """Maximum over ``axis``."""
        return self._reduce("max", np.max, axis)

    def mean(self, axis: int | None = None, **numpy_kwargs: Any) -> Expr:
        """Mean over ``axis``."""
        return self._reduce("mean", np.mean, axis)

    def all(self, axis: int | None = None, **numpy_kwargs: Any) -> Expr:
        """Every entry true (along ``axis``)."""
        return self._reduce("all", np.all, axis)

    def any(self, axis: int | None = None, **numpy_kwargs: Any) -> Expr:
        """Some entry true (along ``axis``)."""
        return self._reduce("any", np.any, axis)

    def __getitem__(self, index: Any) -> Expr:
        return Op(lambda a: a[index], [self], lambda a: f"{_paren(a)}[{_index_text(index)}]")


def _index_text(index: Any) -> str:
    items = index if isinstance(index, tuple) else (index,)
    out = []
    for i in items:
        if isinstance(i, slice):
            out.append(
                ":".join("" if v is None else str(v) for v in (i.start, i.stop))
                + ("" if i.step is None else f":{i.step}")
            )
        elif i is Ellipsis:
            out.append("...")
        else:
            out.append(str(i))
    return ", ".join(out)


class Node(Expr):
    """The ``index``-th traced value (0 is the model input), shown as ``name``.

    Example:
        >>> Node(1, "h").evaluate([None, np.ones(2)]).tolist()
        [1.0, 1.0]
    """

    def __init__(self, index: int, name: str) -> None:
        self.index = index
        self.name = name

    def evaluate(self, env: Sequence[Any]) -> np.ndarray:
        return _array(env[self.index])

    def describe(self) -> str:
        return self.name

    def nodes(self) -> set[int]:
        return {self.index}


class Const(Expr):
    """A known value inside an expression.

    Example:
        >>> Const(2.5).describe()
        '2.5'
    """

    def __init__(self, value: Any) -> None:
        self.value = value

    def evaluate(self, env: Sequence[Any]) -> np.ndarray:
        return _array(self.value)

    def describe(self) -> str:
        return repr(self.value) if np.ndim(_array(self.value)) == 0 else "<array>"


def lift(x: Any) -> Expr:
    """``x`` as an expression (constants wrapped).

    Example:
        >>> lift(3).describe(), lift(Node(0, "x")).describe()
        ('3', 'x')
    """
    return x if isinstance(x, Expr) else Const(x)


class Op(Expr):
    """``fn(*args)`` evaluated later; ``text`` renders it from the arguments' texts.

    ``explain`` (optional) turns the argument values into a description of a failure.

    Example:
        >>> Op(np.sqrt, [Const(4.0)], lambda a: f"sqrt({a})").evaluate([]).item()
        2.0
    """

    def __init__(
        self,
        fn: Callable[..., Any],
        args: Sequence[Any],
        text: Callable[..., str],
        explain: Callable[..., str] | None = None,
    ) -> None:
        self.fn = fn
        self.args = [lift(a) for a in args]
        self.text = text
        self.explain = explain

    def evaluate(self, env: Sequence[Any]) -> np.ndarray:
        return _array(self.fn(*[a.evaluate(env) for a in self.args]))

    def describe(self) -> str:
        return self.text(*[a.describe() for a in self.args])

    def nodes(self) -> set[int]:
        return set().union(*(a.nodes() for a in self.args))

    def check(self, env: Sequence[Any]) -> Verdict:
        values = [a.evaluate(env) for a in self.args]
        v = verdict_of(self.fn(*values))
        if not v.ok and self.explain is not None:
            v.detail = self.explain(*values)
        return v


def _binary(a: Any, b: Any, sym: str, fn: Callable[..., Any]) -> Expr:
    return Op(fn, [a, b], lambda x, y: f"{_paren(x)} {sym} {_paren(y)}")


class Compare(Op):
    """``left <op> right``; a failure reports the first failing index with both values.

    Example:
        >>> Compare(Node(0, "y"), 0.0, ">=", np.greater_equal).check([np.array([1.0, -2.0])]).detail
        'first failure at index (1,): left -2, right 0'
    """

    def __init__(self, left: Any, right: Any, sym: str, fn: Callable[..., Any]) -> None:
        super().__init__(fn, [left, right], lambda x, y: f"{x} {sym} {y}", self._explain)

    def _explain(self, left: np.ndarray, right: np.ndarray) -> str:
        ok = np.asarray(self.fn(left, right))
        if ok.ndim == 0:
            return f"left {_short(left)}, right {_short(right)}"
        first = tuple(int(i) for i in np.argwhere(~ok.astype(bool))[0])
        lv, rv = np.broadcast_arrays(left, right)
        return f"first failure at index {first}: left {_short(lv[first])}, right {_short(rv[first])}"


class All(Expr):
    """Every part holds (``a & b``); a failure reports the first failing part.

    Example:
        >>> v = All([Const(True), Const(np.array([1, 0]) > 0)]).check([])
        >>> bool(v), v.detail
        (False, '<array> fails: false at index (1,) (1 of 2 entries false)')
    """

    def __init__(self, parts: Sequence[Expr]) -> None:
        self.parts = list(parts)

    def evaluate(self, env: Sequence[Any]) -> np.ndarray:
        return np.asarray(all(bool(p.check(env)) for p in self.parts))

    def describe(self) -> str:
        return " & ".join(f"({p.describe()})" for p in self.parts)

    def nodes(self) -> set[int]:
        return set().union(*(p.nodes() for p in self.parts))

    def check(self, env: Sequence[Any]) -> Verdict:
        for p in self.parts:
            v = p.check(env)
            if not v.ok:
                return Verdict(False, f"{p.describe()} fails: {v.detail}" if v.detail else f"{p.describe()} fails")
        return Verdict(True)
