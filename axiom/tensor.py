"""Tensor: a NumPy array with a dtype policy and a reverse-mode autograd tape (:mod:`axiom.autograd`).

Default dtype is float32. float64 is kept for reference checks; float16 and bfloat16
(``ml_dtypes``) are supported for mixed precision.

Example:
    >>> import numpy as np
    >>> from axiom import Tensor
    >>> t = Tensor([[1.0, 2.0], [3.0, 4.0]])
    >>> t.dtype, t.shape
    (dtype('float32'), (2, 2))
    >>> (t @ t).numpy().tolist()
    [[7.0, 10.0], [15.0, 22.0]]
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import ml_dtypes
import numpy as np

from axiom.autograd import Node, needs_grad, record
from axiom.backends.reference_grad import sum_to

float16 = np.dtype(np.float16)
bfloat16 = np.dtype(ml_dtypes.bfloat16)
float32 = np.dtype(np.float32)
float64 = np.dtype(np.float64)

#: Floating dtypes layers compute in.
FLOAT_DTYPES: tuple[np.dtype, ...] = (float32, float64, float16, bfloat16)
DEFAULT_DTYPE = float32

_DTYPE_NAMES = {"float32": float32, "float64": float64, "float16": float16, "bfloat16": bfloat16}


def as_dtype(dtype: Any) -> np.dtype:
    """Turn ``"bfloat16"``, ``np.float32``, ``np.dtype(...)`` into a NumPy dtype.

    Example:
        >>> as_dtype("bfloat16").name
        'bfloat16'
    """
    if isinstance(dtype, str) and dtype in _DTYPE_NAMES:
        return _DTYPE_NAMES[dtype]
    try:
        return np.dtype(dtype)
    except TypeError as err:
        raise TypeError(f"unknown dtype {dtype!r}; expected one of {', '.join(_DTYPE_NAMES)}") from err


def is_floating(dtype: np.dtype) -> bool:
    """True for the floating dtypes Axiom computes in.

    Example:
        >>> is_floating(np.float32), is_floating(as_dtype("bfloat16")), is_floating(np.int64)
        (True, True, False)
    """
    return np.dtype(dtype) in FLOAT_DTYPES


class TensorType:
    """A tensor *type*: dtype and (symbolic) shape, written ``Tensor[float32, ("batch", 28, 28, 1)]``.

    Used as a declaration (e.g. the ``input`` of an ``@axiom`` model); it holds no data.
    ``matches(x)`` checks a concrete array against it (symbols match any size).

    Example:
        >>> t = Tensor[float32, ("batch", 2, 3)]
        >>> t, t.dtype.name, t.shape
        (Tensor[float32, (batch, 2, 3)], 'float32', ('batch', 2, 3))
        >>> t.matches(np.zeros((5, 2, 3), np.float32)), t.matches(np.zeros((5, 3, 2), np.float32))
        (True, False)
    """

    def __init__(self, dtype: Any, shape: Any) -> None:
        from axiom.shapes import normalize_shape

        self.dtype: np.dtype = as_dtype(dtype)
        if isinstance(shape, int | str):
            shape = (shape,)
        self.shape: tuple[int | str, ...] = normalize_shape(shape)

    def matches(self, x: Any) -> bool:
        """True when ``x`` (Tensor or array) has this dtype and fits this shape."""
        arr = x.data if isinstance(x, Tensor) else np.asarray(x)
        if arr.dtype != self.dtype or arr.ndim != len(self.shape):
            return False
        return all(not isinstance(d, int) or d == n for d, n in zip(self.shape, arr.shape))

    def __eq__(self, other: object) -> bool:
        return isinstance(other, TensorType) and (self.dtype, self.shape) == (other.dtype, other.shape)

    def __hash__(self) -> int:
        return hash((self.dtype, self.shape))

    def __repr__(self) -> str:
        from axiom.shapes import format_shape

        return f"Tensor[{self.dtype.name}, {format_shape(self.shape)}]"


class Tensor:
    """An n-dimensional array: ``.data`` (NumPy), ``.shape``, ``.dtype``, ``.requires_grad``, ``.grad``.

    Python numbers and lists become float32 (integers stay integers); NumPy arrays keep
    their dtype; ``dtype=`` casts.

    Example:
        >>> Tensor(np.zeros((2, 3), np.float64)).dtype
        dtype('float64')
        >>> Tensor([1, 2]).dtype
        dtype('int64')
    """

    __array_priority__ = 100  # ndarray <op> Tensor defers to Tensor

    def __class_getitem__(cls, spec: Any) -> TensorType:
        """``Tensor[float32, ("batch", 10)]``: a :class:`TensorType` annotation (dtype, shape)."""
        if not isinstance(spec, tuple) or len(spec) != 2:
            raise TypeError('Tensor[...] takes a dtype and a shape, e.g. Tensor[float32, ("batch", 10)]')
        return TensorType(*spec)

    def __init__(self, data: Any, dtype: Any = None, requires_grad: bool = False) -> None:
        if isinstance(data, Tensor):
            data = data.data
        if dtype is not None:
            arr = np.asarray(data, dtype=as_dtype(dtype))
        elif isinstance(data, np.ndarray | np.generic):
            arr = np.asarray(data)
        else:
            arr = np.asarray(data)
            if arr.dtype.kind == "f":
                arr = arr.astype(DEFAULT_DTYPE)
        if arr.dtype == object:
            raise TypeError(f"Tensor needs numeric data, got an object array built from {type(data).__name__}")
        self.data: np.ndarray = arr
        self.grad: Tensor | None = None
        self.grad_fn: Node | None = None
        self._retains_grad = False
        self.requires_grad = bool(requires_grad)

    # -- basic properties ------------------------------------------------------------
    @property
    def requires_grad(self) -> bool:
        return self._requires_grad

    @requires_grad.setter
    def requires_grad(self, flag: bool) -> None:
        if flag and not is_floating(self.data.dtype):
            raise TypeError(f"only floating tensors can require gradients, this one is {self.data.dtype.name}")
        self._requires_grad = bool(flag)

    @property
    def shape(self) -> tuple[int, ...]:
        return self.data.shape

    @property
    def dtype(self) -> np.dtype:
        return self.data.dtype

    @property
    def ndim(self) -> int:
        return self.data.ndim

    @property
    def size(self) -> int:
        return self.data.size

    def __len__(self) -> int:
        return len(self.data)

    def numpy(self) -> np.ndarray:
        """The underlying array (not a copy)."""
        return self.data

    def item(self) -> float:
        return self.data.item()

    def tolist(self) -> Any:
        return self.data.tolist()

    def __array__(self, dtype: Any = None, copy: Any = None) -> np.ndarray:
        return self.data if dtype is None else self.data.astype(dtype)

    def __repr__(self) -> str:
        grad = f", grad_fn={self.grad_fn.name}" if self.grad_fn is not None else ""
        grad = grad or (", requires_grad=True" if self.requires_grad else "")
        return f"Tensor({np.array2string(self.data, threshold=20)}, dtype={self.dtype.name}{grad})"

    # -- autograd --------------------------------------------------------------------
    @property
    def is_leaf(self) -> bool:
        """True for tensors not produced by a recorded op (parameters, inputs)."""
        return self.grad_fn is None

    def requires_grad_(self, flag: bool = True) -> Tensor:
        """Set ``requires_grad`` in place; returns self.

        Example:
            >>> Tensor([1.0]).requires_grad_().requires_grad
            True
        """
        self.requires_grad = flag
        return self

    def backward(self, grad: Any = None, retain_graph: bool = False) -> None:
        """Add the gradient of this tensor to the ``.grad`` of every leaf it depends on.

        Example:
            >>> w = Tensor([3.0], requires_grad=True)
            >>> (w * w).sum().backward()
            >>> w.grad.tolist()
            [6.0]
        """
        from axiom.autograd import backward

        backward(self, grad, retain_graph)

    def retain_grad(self) -> Tensor:
        """Keep this non-leaf tensor's gradient in ``.grad`` after backward; returns self."""
        self._retains_grad = True
        return self

    def zero_grad(self) -> None:
        """Forget the accumulated gradient."""
        self.grad = None

    def detach(self) -> Tensor:
        """A tensor sharing the data, outside any gradient tape.

        Example:
            >>> w = Tensor([1.0], requires_grad=True)
            >>> (w * 2).detach().requires_grad
            False
        """
        return Tensor(self.data)

    def astype(self, dtype: Any) -> Tensor:
        """A copy cast to ``dtype``; the gradient flows back cast to this tensor's dtype.

        Example:
            >>> Tensor([1.5]).astype("float16").dtype
            dtype('float16')
        """
        src = self.dtype
        return _unary(self, self.data.astype(as_dtype(dtype)), lambda g: g.astype(src), "astype")

    # -- shape ops -------------------------------------------------------------------
    def reshape(self, *shape: int | tuple[int, ...]) -> Tensor:
        if len(shape) == 1 and isinstance(shape[0], tuple | list):
            shape = tuple(shape[0])
        src = self.shape
        return _unary(self, self.data.reshape(shape), lambda g: g.reshape(src), "reshape")

    def flatten(self, start_axis: int = 1) -> Tensor:
        """Merge the axes from ``start_axis`` on: ``(N, H, W, C) -> (N, H*W*C)`` by default."""
        return self.reshape(*self.shape[:start_axis], -1)

    def transpose(self, *axes: int) -> Tensor:
        if len(axes) == 1 and isinstance(axes[0], tuple | list):
            axes = tuple(axes[0])
        perm = tuple(axes) if axes else tuple(reversed(range(self.ndim)))
        inverse = tuple(np.argsort(perm))
        return _unary(self, self.data.transpose(perm), lambda g: g.transpose(inverse), "transpose")

    @property
    def T(self) -> Tensor:  # noqa: N802 - NumPy's name
        return self.transpose()

    def __getitem__(self, index: Any) -> Tensor:
        index = _raw_index(index)
        shape = self.shape
        basic = _is_basic_index(index)

        def rule(g: np.ndarray) -> np.ndarray:
            full = np.zeros(shape, g.dtype)
            if basic:
                full[index] = g  # a basic index (ints, slices) never repeats an element
            else:
                np.add.at(full, index, g)  # repeated fancy indices add up
            return full

        return _unary(self, np.asarray(self.data[index]), rule, "getitem")

    # -- reductions ------------------------------------------------------------------
    def sum(self, axis: int | tuple[int, ...] | None = None, keepdims: bool = False) -> Tensor:
        src = self.shape
        out = np.asarray(self.data.sum(axis=axis, keepdims=keepdims))
        return _unary(self, out, lambda g: np.broadcast_to(_keep(g, src, axis, keepdims), src), "sum")

    def mean(self, axis: int | tuple[int, ...] | None = None, keepdims: bool = False) -> Tensor:
        src = self.shape
        out = np.asarray(self.data.mean(axis=axis, keepdims=keepdims))
        count = max(self.size // max(out.size, 1), 1) if self.size else 1
        return _unary(self, out, lambda g: np.broadcast_to(_keep(g, src, axis, keepdims) / count, src), "mean")

    def max(self, axis: int | tuple[int, ...] | None = None, keepdims: bool = False) -> Tensor:
        """Maximum; the gradient is shared equally between tied maxima."""
        return self._extremum(np.max, axis, keepdims, "max")

    def min(self, axis: int | tuple[int, ...] | None = None, keepdims: bool = False) -> Tensor:
        """Minimum; the gradient is shared equally between tied minima."""
        return self._extremum(np.min, axis, keepdims, "min")

    def _extremum(self, fn: Any, axis: Any, keepdims: bool, name: str) -> Tensor:
        x = self.data
        out = np.asarray(fn(x, axis=axis, keepdims=keepdims))

        def rule(g: np.ndarray) -> np.ndarray:
            hit = (x == _keep(out, x.shape, axis, keepdims)).astype(g.dtype)
            share = hit / hit.sum(axis=axis, keepdims=True)
            return share * _keep(g, x.shape, axis, keepdims)

        return _unary(self, out, rule, name)

    def argmax(self, axis: int | None = None) -> Tensor:
        return Tensor(np.asarray(self.data.argmax(axis=axis)))

    # -- element-wise math -----------------------------------------------------------
    def exp(self) -> Tensor:
        y = np.exp(self.data)
        return _unary(self, y, lambda g: g * y, "exp")

    def log(self) -> Tensor:
        x = self.data
        return _unary(self, np.log(x), lambda g: g / x, "log")

    def sqrt(self) -> Tensor:
        y = np.sqrt(self.data)
        return _unary(self, y, lambda g: g / (2 * y), "sqrt")

    def abs(self) -> Tensor:
        x = self.data
        return _unary(self, np.abs(x), lambda g: g * np.sign(x), "abs")

    def clip(self, low: float | None = None, high: float | None = None) -> Tensor:
        """Clamp to ``[low, high]``; no gradient where clamped.

        Example:
            >>> Tensor([-2.0, 0.5, 3.0]).clip(0.0, 1.0).tolist()
            [0.0, 0.5, 1.0]
        """
        x = self.data
        inside = np.ones(x.shape, bool)
        if low is not None:
            inside &= x >= low
        if high is not None:
            inside &= x <= high
        return _unary(self, np.clip(x, low, high), lambda g: g * inside, "clip")

    # -- arithmetic ----------------------------------------------------------------
    # Each op gives one gradient rule per operand, ``rule(g, a, b, out)``, so backward computes
    # only the gradients some operand needs (a layer's input usually needs none).
    def __add__(self, other: Any) -> Tensor:
        return _binary(self, other, np.add, _pass, _pass, "add")

    def __radd__(self, other: Any) -> Tensor:
        return _binary(other, self, np.add, _pass, _pass, "add")

    def __sub__(self, other: Any) -> Tensor:
        return _binary(self, other, np.subtract, _pass, _negate, "sub")

    def __rsub__(self, other: Any) -> Tensor:
        return _binary(other, self, np.subtract, _pass, _negate, "sub")

    def __mul__(self, other: Any) -> Tensor:
        return _binary(self, other, np.multiply, _times_b, _times_a, "mul")

    def __rmul__(self, other: Any) -> Tensor:
        return _binary(other, self, np.multiply, _times_b, _times_a, "mul")

    def __truediv__(self, other: Any) -> Tensor:
        return _binary(self, other, np.divide, _div_a, _div_b, "div")

    def __rtruediv__(self, other: Any) -> Tensor:
        return _binary(other, self, np.divide, _div_a, _div_b, "div")

    def __neg__(self) -> Tensor:
        return _unary(self, -self.data, np.negative, "neg")

    def __pow__(self, exponent: Any) -> Tensor:
        return _binary(self, exponent, np.power, _pow_base, _pow_exponent, "pow")

    def __rpow__(self, base: Any) -> Tensor:
        """``base ** tensor`` (the gradient flows to the exponent).

        Example:
            >>> (2.0 ** Tensor([3.0])).tolist()
            [8.0]
        """
        return _binary(base, self, np.power, _pow_base, _pow_exponent, "pow")

    def __matmul__(self, other: Any) -> Tensor:
        from axiom.functional import matmul

        return matmul(self, other)

    def __rmatmul__(self, other: Any) -> Tensor:
        from axiom.functional import matmul

        return matmul(other, self)

    # comparisons give boolean tensors (no gradient); == stays identity so tensors hash
    def __lt__(self, other: Any) -> Tensor:
        return Tensor(self.data < _raw(other))

    def __le__(self, other: Any) -> Tensor:
        return Tensor(self.data <= _raw(other))

    def __gt__(self, other: Any) -> Tensor:
        return Tensor(self.data > _raw(other))

    def __ge__(self, other: Any) -> Tensor:
        return Tensor(self.data >= _raw(other))

    def __rshift__(self, layer: Any) -> Any:
        """``x >> layer`` applies ``layer`` to ``x`` (pipelines read left to right)."""
        if not callable(layer):
            return NotImplemented
        return layer(self)


def _keep(g: np.ndarray, shape: tuple[int, ...], axis: Any, keepdims: bool) -> np.ndarray:
    """``g`` of a reduction over ``axis`` with the reduced axes put back as size 1."""
    if keepdims or axis is None:
        return g.reshape((1,) * len(shape)) if axis is None and not keepdims else g
    axes = (axis,) if isinstance(axis, int) else tuple(axis)
    return np.expand_dims(g, tuple(a % len(shape) for a in axes))


def _is_basic_index(index: Any) -> bool:
    """True for indices made of ints, slices, ``None`` and ``...`` only (views: no element twice)."""
    parts = index if isinstance(index, tuple) else (index,)
    return all(
        i is None
        or i is Ellipsis
        or isinstance(i, slice)
        or (isinstance(i, int | np.integer) and i is not True and i is not False)
        for i in parts
    )


def _raw_index(index: Any) -> Any:
    if isinstance(index, Tensor):
        return index.data
    if isinstance(index, tuple):
        return tuple(i.data if isinstance(i, Tensor) else i for i in index)
    return index


def _unary(x: Tensor, out: np.ndarray, rule: Any, name: str) -> Tensor:
    """The result of a one-input op, recorded with ``rule(grad_out) -> grad_x`` when needed."""
    if not needs_grad(x):
        return Tensor(out)
    return record(out, (x,), lambda g: (rule(g),), name)


def _binary(a: Any, b: Any, op: Any, grad_a: Any, grad_b: Any, name: str) -> Tensor:
    """``op(a, b)`` with broadcasting; ``grad_a/grad_b(g, a, b, out)`` give each operand's gradient.

    The gradients are summed back to each operand's shape and cast to its dtype; a rule runs
    only for an operand that requires a gradient.
    """
    ta, tb = (a if isinstance(a, Tensor) else None), (b if isinstance(b, Tensor) else None)
    ad, bd = _raw(a), _raw(b)
    out = np.asarray(op(ad, bd))
    if not needs_grad(ta, tb):
        return Tensor(out)

    def backward(g: np.ndarray) -> tuple[np.ndarray | None, np.ndarray | None]:
        ga = None if ta is None or not ta.requires_grad else _reduce_to(grad_a(g, ad, bd, out), ta)
        gb = None if tb is None or not tb.requires_grad else _reduce_to(grad_b(g, ad, bd, out), tb)
        return ga, gb

    return record(out, (ta, tb), backward, name)


def _reduce_to(g: Any, t: Tensor) -> np.ndarray:
    """A broadcast gradient summed back to ``t``'s shape, in ``t``'s dtype."""
    g = np.asarray(g)
    if g.shape != t.shape:
        g = sum_to(g, t.shape)
    return g.astype(t.dtype, copy=False)


def _pass(g: np.ndarray, a: Any, b: Any, out: np.ndarray) -> np.ndarray:
    return g


def _negate(g: np.ndarray, a: Any, b: Any, out: np.ndarray) -> np.ndarray:
    return -g


def _times_a(g: np.ndarray, a: Any, b: Any, out: np.ndarray) -> np.ndarray:
    return g * a


def _times_b(g: np.ndarray, a: Any, b: Any, out: np.ndarray) -> np.ndarray:
    return g * b


def _div_a(g: np.ndarray, a: Any, b: Any, out: np.ndarray) -> np.ndarray:
    return g / b


def _div_b(g: np.ndarray, a: Any, b: Any, out: np.ndarray) -> np.ndarray:
    return -g * out / b  # d(a/b)/db = -a/b^2 = -out/b


def _pow_base(g: np.ndarray, a: Any, b: Any, out: np.ndarray) -> np.ndarray:
    # b * a^(b-1), and 0 where b == 0 (a^0 is constant even at a == 0, as in torch)
    with np.errstate(divide="ignore", invalid="ignore"):
        return np.where(np.asarray(b) == 0, 0, g * b * np.power(a, np.asarray(b) - 1))


def _pow_exponent(g: np.ndarray, a: Any, b: Any, out: np.ndarray) -> np.ndarray:
    # a^b * log(a) for a > 0; 0 elsewhere (log undefined; torch's choice)
    a = np.asarray(a)
    with np.errstate(divide="ignore", invalid="ignore"):
        return g * np.where(a > 0, out * np.log(np.where(a > 0, a, 1)), 0)


def where(condition: Any, a: Any, b: Any) -> Tensor:
    """``a`` where ``condition`` holds, else ``b`` (broadcasting); gradients go to the chosen side.

    Example:
        >>> where(Tensor([1.0, -1.0]) > 0, Tensor([1.0, 2.0]), 0.0).tolist()
        [1.0, 0.0]
    """
    cond = np.asarray(_raw(condition), bool)
    return _binary(a, b, lambda x, y: np.where(cond, x, y), lambda g, *_: g * cond, lambda g, *_: g * ~cond, "where")


def maximum(a: Any, b: Any) -> Tensor:
    """Element-wise maximum; ties send the gradient to ``a``.

    Example:
        >>> maximum(Tensor([1.0, 5.0]), 2.0).tolist()
        [2.0, 5.0]
    """
    return _binary(a, b, np.maximum, lambda g, x, y, _: g * (x >= y), lambda g, x, y, _: g * (x < y), "maximum")


def minimum(a: Any, b: Any) -> Tensor:
    """Element-wise minimum; ties send the gradient to ``a``.

    Example:
        >>> minimum(Tensor([1.0, 5.0]), 2.0).tolist()
        [1.0, 2.0]
    """
    return _binary(a, b, np.minimum, lambda g, x, y, _: g * (x <= y), lambda g, x, y, _: g * (x > y), "minimum")


def concat(tensors: Sequence[Any], axis: int = 0) -> Tensor:
    """Join tensors along an existing axis; each gets its slice of the gradient back.

    Example:
        >>> concat([Tensor([[1.0]]), Tensor([[2.0, 3.0]])], axis=1).tolist()
        [[1.0, 2.0, 3.0]]
    """
    parts = [as_tensor(t) for t in tensors]
    out = np.concatenate([p.data for p in parts], axis=axis)
    if not needs_grad(*parts):
        return Tensor(out)
    bounds = np.cumsum([p.shape[axis] for p in parts])[:-1]
    return record(out, parts, lambda g: np.split(g, bounds, axis=axis), "concat")


def stack(tensors: Sequence[Any], axis: int = 0) -> Tensor:
    """Join tensors along a new axis.

    Example:
        >>> stack([Tensor([1.0]), Tensor([2.0])]).shape
        (2, 1)
    """
    parts = [as_tensor(t) for t in tensors]
    out = np.stack([p.data for p in parts], axis=axis)
    if not needs_grad(*parts):
        return Tensor(out)
    return record(out, parts, lambda g: [np.take(g, i, axis=axis) for i in range(len(parts))], "stack")


def _raw(x: Any) -> Any:
    return x.data if isinstance(x, Tensor) else x


def as_tensor(x: Any, dtype: Any = None) -> Tensor:
    """``x`` as a Tensor (no copy when it already is one and no cast is asked).

    Example:
        >>> as_tensor(np.ones(3, np.float32)).shape
        (3,)
    """
    if isinstance(x, Tensor) and (dtype is None or x.dtype == as_dtype(dtype)):
        return x
    return Tensor(x, dtype=dtype)
