"""Tensor: a NumPy array with a dtype policy (and, later, an autograd tape).

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

from typing import Any

import ml_dtypes
import numpy as np

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
        self.requires_grad = bool(requires_grad)
        self.grad: np.ndarray | None = None

    # -- basic properties ------------------------------------------------------------
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

    def astype(self, dtype: Any) -> Tensor:
        """A copy cast to ``dtype`` (``"float64"``, ``np.float16``, ``"bfloat16"``...)."""
        return Tensor(self.data.astype(as_dtype(dtype)))

    def detach(self) -> Tensor:
        """A tensor sharing the data, outside any gradient tape."""
        return Tensor(self.data)

    def __array__(self, dtype: Any = None, copy: Any = None) -> np.ndarray:
        return self.data if dtype is None else self.data.astype(dtype)

    def __repr__(self) -> str:
        grad = ", requires_grad=True" if self.requires_grad else ""
        return f"Tensor({np.array2string(self.data, threshold=20)}, dtype={self.dtype.name}{grad})"

    def __getitem__(self, index: Any) -> Tensor:
        return Tensor(self.data[index])

    # -- shape ops -------------------------------------------------------------------
    def reshape(self, *shape: int | tuple[int, ...]) -> Tensor:
        if len(shape) == 1 and isinstance(shape[0], tuple | list):
            shape = tuple(shape[0])
        return Tensor(self.data.reshape(shape))

    def transpose(self, *axes: int) -> Tensor:
        return Tensor(self.data.transpose(*axes) if axes else self.data.T)

    @property
    def T(self) -> Tensor:  # noqa: N802 - NumPy's name
        return Tensor(self.data.T)

    def sum(self, axis: int | tuple[int, ...] | None = None, keepdims: bool = False) -> Tensor:
        return Tensor(np.asarray(self.data.sum(axis=axis, keepdims=keepdims)))

    def mean(self, axis: int | tuple[int, ...] | None = None, keepdims: bool = False) -> Tensor:
        return Tensor(np.asarray(self.data.mean(axis=axis, keepdims=keepdims)))

    def max(self, axis: int | tuple[int, ...] | None = None, keepdims: bool = False) -> Tensor:
        return Tensor(np.asarray(self.data.max(axis=axis, keepdims=keepdims)))

    def argmax(self, axis: int | None = None) -> Tensor:
        return Tensor(np.asarray(self.data.argmax(axis=axis)))

    # -- arithmetic ------------------------------------------------------------------
    def __add__(self, other: Any) -> Tensor:
        return Tensor(self.data + _raw(other))

    __radd__ = __add__

    def __sub__(self, other: Any) -> Tensor:
        return Tensor(self.data - _raw(other))

    def __rsub__(self, other: Any) -> Tensor:
        return Tensor(_raw(other) - self.data)

    def __mul__(self, other: Any) -> Tensor:
        return Tensor(self.data * _raw(other))

    __rmul__ = __mul__

    def __truediv__(self, other: Any) -> Tensor:
        return Tensor(self.data / _raw(other))

    def __rtruediv__(self, other: Any) -> Tensor:
        return Tensor(_raw(other) / self.data)

    def __neg__(self) -> Tensor:
        return Tensor(-self.data)

    def __pow__(self, exponent: Any) -> Tensor:
        return Tensor(self.data ** _raw(exponent))

    def __matmul__(self, other: Any) -> Tensor:
        from axiom.functional import matmul

        return matmul(self, other)

    def __rmatmul__(self, other: Any) -> Tensor:
        from axiom.functional import matmul

        return matmul(other, self)

    def __rshift__(self, layer: Any) -> Any:
        """``x >> layer`` applies ``layer`` to ``x`` (pipelines read left to right)."""
        if not callable(layer):
            return NotImplemented
        return layer(self)


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
