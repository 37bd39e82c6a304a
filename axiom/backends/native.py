"""Native backends: the C (Cython + OpenMP), Rust and Zig kernel libraries.

All three export the one C ABI of ``csrc/axiom_kernels.h``. :class:`CBackend` calls the C
kernels through the Cython module ``axiom._core._kernels`` (GIL released); every backend
given a ``path`` loads that shared library with ctypes through the one signature table in
:mod:`axiom.backends.abi` (ctypes releases the GIL too). Ops other than those in
``native_ops`` run on the NumPy reference, recorded in ``backend.fallbacks`` and warned once
(see :class:`~axiom.backends.base.PartialBackend`).

Example:
    >>> import numpy as np
    >>> from axiom.backends.native import CBackend, RustBackend, ZigBackend
    >>> a = np.arange(6, dtype=np.float32).reshape(2, 3); b = np.ones((3, 2), np.float32)
    >>> CBackend().matmul(a, b)
    array([[ 3.,  3.],
           [12., 12.]], dtype=float32)
    >>> bool((ZigBackend().matmul(a, b) == RustBackend().matmul(a, b)).all())
    True
"""

from __future__ import annotations

import math
import os
from collections.abc import Callable

import numpy as np

from axiom.backends import abi
from axiom.backends.base import PartialBackend
from axiom.backends.c_kernels import C_NN_OPS, CKernelsMixin

#: dtypes with a native kernel; mixed float32/float64 computes in float64.
NATIVE_DTYPES: tuple[np.dtype, ...] = (np.dtype(np.float32), np.dtype(np.float64))

# kernel(a, b, out): out[...] = a @ b for C-contiguous 2-D arrays of one native dtype
Matmul2d = Callable[[np.ndarray, np.ndarray, np.ndarray], None]


def _cython_matmul() -> tuple[Matmul2d, str]:
    """The C kernels through the Cython module (raises ImportError saying how to build it)."""
    try:
        from axiom._core import _kernels
    except ImportError as e:
        raise ImportError(
            f"the C kernels (axiom._core._kernels) are not built ({e}): build them with `pip install -e .` "
            "or `make build` (`python setup.py build_ext --inplace`) in the axiom source tree"
        ) from e
    if _kernels.abi_version() != abi.ABI_VERSION:
        raise abi.AbiMismatchError(
            f"axiom._core._kernels implements kernel ABI version {_kernels.abi_version()}, "
            f"expected {abi.ABI_VERSION}: rebuild it with `make build`"
        )
    funcs = {np.dtype(np.float32): _kernels.matmul_f32, np.dtype(np.float64): _kernels.matmul_f64}

    def matmul2d(a: np.ndarray, b: np.ndarray, out: np.ndarray) -> None:
        code = funcs[out.dtype](a, b, out)
        if code != abi.OK:
            raise abi.error_for(code, f"axiom_matmul_{'f32' if out.dtype == np.float32 else 'f64'}")

    return matmul2d, f"{_kernels.__file__} (Cython)"


def _ctypes_matmul(path: str | os.PathLike[str]) -> tuple[Matmul2d, str]:
    """The kernels of the shared library at ``path`` through the ctypes table."""
    path = os.fspath(path)
    try:
        lib = abi.load_kernel_library(path)
    except abi.AbiMismatchError:
        raise
    except OSError as e:
        raise OSError(f"cannot load kernel library {path!r}: {e}") from e
    symbols = {np.dtype(np.float32): "axiom_matmul_f32", np.dtype(np.float64): "axiom_matmul_f64"}

    def matmul2d(a: np.ndarray, b: np.ndarray, out: np.ndarray) -> None:
        symbol = symbols[out.dtype]
        ptr = abi.POINTER_TYPES[out.dtype.name]
        (m, k), n = a.shape, b.shape[1]
        code = getattr(lib, symbol)(a.ctypes.data_as(ptr), b.ctypes.data_as(ptr), out.ctypes.data_as(ptr), m, k, n)
        if code != abi.OK:
            raise abi.error_for(code, symbol)

    return matmul2d, path


def matmul_shapes(a_shape: tuple[int, ...], b_shape: tuple[int, ...]) -> tuple[tuple[int, ...], int, int, int]:
    """Validate shapes for NumPy ``matmul``: return ``(batch, m, k, n)`` or raise ``ValueError``.

    1-D operands are promoted like NumPy does (``a`` to ``(1, k)``, ``b`` to ``(k, 1)``);
    batch dimensions broadcast.

    Example:
        >>> matmul_shapes((2, 1, 3, 4), (5, 4, 6))
        ((2, 5), 3, 4, 6)
        >>> matmul_shapes((3, 4), (5, 2))
        Traceback (most recent call last):
        ...
        ValueError: matmul: a has shape (3, 4) and b has shape (5, 2); expected a.shape[-1] == b.shape[-2]
    """
    head = f"matmul: a has shape {a_shape} and b has shape {b_shape}"
    if len(a_shape) == 0 or len(b_shape) == 0:
        raise ValueError(f"{head}; expected at least 1 dimension each (use * to multiply by a scalar)")
    a2 = a_shape if len(a_shape) >= 2 else (1, *a_shape)
    b2 = b_shape if len(b_shape) >= 2 else (*b_shape, 1)
    if a2[-1] != b2[-2]:
        b_axis = "b.shape[-2]" if len(b_shape) >= 2 else "b.shape[0]"
        raise ValueError(f"{head}; expected a.shape[-1] == {b_axis}")
    try:
        batch = np.broadcast_shapes(a2[:-2], b2[:-2])
    except ValueError:
        raise ValueError(f"{head}; expected batch dimensions {a2[:-2]} and {b2[:-2]} to broadcast") from None
    return tuple(batch), a2[-2], a2[-1], b2[-1]


class NativeBackend(PartialBackend):
    """Base of the native backends: NumPy ``matmul`` semantics on top of a 2-D kernel.

    Subclasses set ``name`` and ``kind`` (the library: ``"c"``, ``"rust"`` or ``"zig"``);
    ``path`` (or ``None`` for the built library) and ``library`` (what was loaded) are public.

    Example:
        >>> [(cls.__name__, cls.kind) for cls in NativeBackend.__subclasses__()]
        [('CBackend', 'c'), ('RustBackend', 'rust'), ('ZigBackend', 'zig')]
        >>> ZigBackend().library.endswith(".so")
        True
    """

    name = "native"
    kind: abi.LibraryKind = "c"
    native_ops = ("matmul",)

    def __init__(self, path: str | os.PathLike[str] | None = None) -> None:
        super().__init__()
        self.path = None if path is None else os.fspath(path)
        self._matmul2d, self.library = self._load(self.path)

    def _load(self, path: str | None) -> tuple[Matmul2d, str]:
        return _ctypes_matmul(abi.built_library_path(self.kind) if path is None else path)

    def __repr__(self) -> str:
        return f"{type(self).__name__}(path={self.path!r})"

    def matmul(self, a: np.ndarray, b: np.ndarray) -> np.ndarray:
        """``a @ b`` with NumPy semantics (2-D, batched with broadcasting, or 1-D operands).

        float32 and float64 (and the mix, computed in float64) run on the native kernel;
        other dtypes run on the reference, recorded in ``self.fallbacks`` and warned once.
        Raises ``TypeError`` for non-arrays and ``ValueError`` for incompatible shapes.

        Example:
            >>> import numpy as np
            >>> be = CBackend()
            >>> c = be.matmul(np.ones((2, 1, 1, 3), np.float64), np.ones((4, 3, 2), np.float32))
            >>> c.dtype, c.shape
            (dtype('float64'), (2, 4, 1, 2))
            >>> be.matmul(np.ones(3, np.float32), np.ones(3, np.float32))
            array(3., dtype=float32)
        """
        if not isinstance(a, np.ndarray) or not isinstance(b, np.ndarray):
            raise TypeError(f"matmul: expected two numpy.ndarray, got {type(a).__name__} and {type(b).__name__}")
        batch, m, k, n = matmul_shapes(a.shape, b.shape)
        if a.dtype not in NATIVE_DTYPES or b.dtype not in NATIVE_DTYPES:
            names = a.dtype.name if a.dtype == b.dtype else f"{a.dtype.name} and {b.dtype.name}"
            reason = f"dtype {names} has no native kernel (only float32 and float64)"
            return self.fallback("matmul", reason, a, b)
        dtype = np.result_type(a.dtype, b.dtype)
        # one copy at most: cast and/or make C-contiguous (views stay views)
        a3 = np.ascontiguousarray(a, dtype=dtype).reshape(a.shape if a.ndim >= 2 else (1, k))
        b3 = np.ascontiguousarray(b, dtype=dtype).reshape(b.shape if b.ndim >= 2 else (k, 1))
        out = np.empty((*batch, m, n), dtype=dtype)
        if b3.ndim == 2:
            # b is one matrix: fold a's batch into its rows, one kernel call
            rows = math.prod(out.shape[:-1])
            self._matmul2d(a3.reshape(rows, k), b3, out.reshape(rows, n))
        else:
            a_b = np.broadcast_to(a3, (*batch, m, k))
            b_b = np.broadcast_to(b3, (*batch, k, n))
            for idx in np.ndindex(*batch):
                self._matmul2d(a_b[idx], b_b[idx], out[idx])
        if a.ndim == 1:
            out = out.reshape(out.shape[:-2] + out.shape[-1:])
        if b.ndim == 1:
            out = out.reshape(out.shape[:-1])
        return out


class CBackend(CKernelsMixin, NativeBackend):
    """C kernels (``csrc/``, OpenMP). ``path=None``: the Cython module; else that library via ctypes.

    Example:
        >>> import numpy as np
        >>> CBackend().matmul(np.eye(2, dtype=np.float32), np.ones((2, 3), np.float32)).sum()
        np.float32(6.0)
    """

    name = "c"
    kind = "c"
    native_ops = ("matmul", *C_NN_OPS)

    def _load(self, path: str | None) -> tuple[Matmul2d, str]:
        return _cython_matmul() if path is None else _ctypes_matmul(path)


class RustBackend(NativeBackend):
    """Rust kernels (``rust/``, std threads). ``path=None``: the built ``axiom._core._rust``.

    Example:
        >>> import numpy as np
        >>> RustBackend().matmul(np.eye(2), np.ones((2, 3))).sum()
        np.float64(6.0)
    """

    name = "rust"
    kind = "rust"


class ZigBackend(NativeBackend):
    """Zig kernels (``zig/``, ``@Vector``). ``path=None``: the built ``axiom._core._zig``.

    Example:
        >>> import numpy as np
        >>> ZigBackend().matmul(np.eye(2), np.ones((2, 3))).sum()
        np.float64(6.0)
    """

    name = "zig"
    kind = "zig"
