"""The one Python table of kernel signatures (the C ABI of ``csrc/axiom_kernels.h``).

The C, Rust and Zig libraries export the same symbols with the same C signatures, so
:data:`SIGNATURES` describes all of them and :func:`load_kernel_library` loads any of them
with ctypes. Status codes returned by kernels become exceptions through :func:`error_for`:

- ``AXIOM_ERR_SIZE`` (negative dimension or size overflow) -> :class:`KernelArgumentError`,
  which is both a :class:`~axiom.backends.base.KernelError` and a :class:`ValueError`;
- ``AXIOM_ERR_NULL`` (a required pointer is NULL) -> :class:`KernelArgumentError` too;
- ``AXIOM_ERR_NOMEM`` (a kernel's workspace could not be allocated) -> ``MemoryError``;
- any other non-zero code -> :class:`~axiom.backends.base.KernelError`.

Example:
    >>> import ctypes
    >>> import numpy as np
    >>> lib = load_kernel_library(built_library_path("c"))
    >>> lib.axiom_abi_version() == ABI_VERSION
    True
    >>> a = np.ones((2, 3), np.float32); b = np.ones((3, 4), np.float32); c = np.empty((2, 4), np.float32)
    >>> f32p = ctypes.POINTER(ctypes.c_float)
    >>> lib.axiom_matmul_f32(a.ctypes.data_as(f32p), b.ctypes.data_as(f32p), c.ctypes.data_as(f32p), 2, 3, 4)
    0
    >>> float(c[1, 3])
    3.0
    >>> lib.axiom_matmul_f32(None, None, None, -1, 3, 4) == ERR_SIZE
    True
"""

from __future__ import annotations

import ctypes
import importlib.util
import os
from typing import Any, Literal

from axiom.backends.base import KernelError

#: ``AXIOM_ABI_VERSION``: a library whose ``axiom_abi_version()`` differs is refused.
ABI_VERSION = 2
#: Status codes (``enum`` in ``csrc/axiom_kernels.h``).
OK = 0
ERR_NULL = 1
ERR_SIZE = 2
ERR_NOMEM = 3
ERR_INTERNAL = 4

_f32p = ctypes.POINTER(ctypes.c_float)
_f64p = ctypes.POINTER(ctypes.c_double)
_i64 = ctypes.c_int64

#: symbol -> (restype, argtypes). Keep in the same order as ``csrc/axiom_kernels.h``.
SIGNATURES: dict[str, tuple[Any, tuple[Any, ...]]] = {
    "axiom_abi_version": (ctypes.c_int, ()),
    "axiom_matmul_f32": (ctypes.c_int, (_f32p, _f32p, _f32p, _i64, _i64, _i64)),
    "axiom_matmul_f64": (ctypes.c_int, (_f64p, _f64p, _f64p, _i64, _i64, _i64)),
}

#: pointer type of each float dtype name, for ``ndarray.ctypes.data_as``.
POINTER_TYPES: dict[str, Any] = {"float32": _f32p, "float64": _f64p}

LibraryKind = Literal["c", "rust", "zig"]

#: Python module name of each built library (``importlib.util.find_spec(...).origin`` is the file).
MODULES: dict[str, str] = {"c": "axiom._core._kernels", "rust": "axiom._core._rust", "zig": "axiom._core._zig"}

_HOW_TO_BUILD = (
    "build the native parts with `pip install -e .` (or `make build`, i.e. "
    "`python setup.py build_ext --inplace`) in the axiom source tree; "
    "C needs gcc with OpenMP, Zig comes from the ziglang wheel, and the Rust part is optional: "
    "it is built only when `cargo` is on PATH at build time"
)


class KernelArgumentError(KernelError, ValueError):
    """A kernel rejected its arguments (``AXIOM_ERR_SIZE`` or ``AXIOM_ERR_NULL``).

    Both a :class:`~axiom.backends.base.KernelError` and a ``ValueError``.

    Example:
        >>> err = error_for(ERR_NULL, "axiom_matmul_f64")
        >>> isinstance(err, KernelArgumentError), isinstance(err, ValueError)
        (True, True)
    """


class AbiMismatchError(OSError):
    """A shared library reports a different ``axiom_abi_version()`` or lacks a symbol.

    Example:
        >>> load_kernel_library("libm.so.6")  # doctest: +ELLIPSIS
        Traceback (most recent call last):
        ...
        axiom.backends.abi.AbiMismatchError: libm.so.6 does not export axiom_abi_version: ...
    """


def built_library_path(kind: LibraryKind) -> str:
    """Path of the built library for ``kind`` (``"c"``, ``"rust"`` or ``"zig"``).

    Raises ``ValueError`` for an unknown kind and ``ImportError`` (saying how to build it)
    when the library was not built.

    Example:
        >>> built_library_path("zig").endswith(".so")
        True
    """
    if kind not in MODULES:
        raise ValueError(f"unknown kernel library {kind!r}; expected one of {sorted(MODULES)}")
    name = MODULES[kind]
    spec = importlib.util.find_spec(name)
    if spec is None or spec.origin is None or not os.path.isfile(spec.origin):
        raise ImportError(f"the {kind} kernel library {name} is not built: {_HOW_TO_BUILD}", name=name)
    return spec.origin


def load_kernel_library(path: str | os.PathLike[str]) -> ctypes.CDLL:
    """Load a kernel library with ctypes, apply :data:`SIGNATURES` and check the ABI version.

    Raises ``OSError`` if the file cannot be loaded and :class:`AbiMismatchError` (an
    ``OSError``) if a symbol is missing or ``axiom_abi_version()`` is not :data:`ABI_VERSION`.
    ctypes releases the GIL during every call.

    Example:
        >>> load_kernel_library(built_library_path("rust")).axiom_abi_version()
        1
    """
    path = os.fspath(path)
    lib = ctypes.CDLL(path)
    for symbol, (restype, argtypes) in SIGNATURES.items():
        try:
            fn = getattr(lib, symbol)
        except AttributeError:
            raise AbiMismatchError(
                f"{path} does not export {symbol}: not an axiom kernel library of ABI version {ABI_VERSION}"
            ) from None
        fn.restype = restype
        fn.argtypes = list(argtypes)
    version = lib.axiom_abi_version()
    if version != ABI_VERSION:
        raise AbiMismatchError(
            f"{path} implements kernel ABI version {version}, but this axiom expects version {ABI_VERSION}: "
            f"rebuild it ({_HOW_TO_BUILD})"
        )
    return lib


def error_for(code: int, symbol: str) -> Exception:
    """The exception for a non-zero status ``code`` returned by ``symbol`` (raise it).

    Example:
        >>> print(error_for(ERR_SIZE, "axiom_matmul_f32"))
        axiom_matmul_f32 returned AXIOM_ERR_SIZE (2): a dimension is negative or an array size overflows
        >>> isinstance(error_for(ERR_SIZE, "axiom_matmul_f32"), ValueError)
        True
    """
    if code == ERR_SIZE:
        return KernelArgumentError(
            f"{symbol} returned AXIOM_ERR_SIZE ({code}): a dimension is negative or an array size overflows"
        )
    if code == ERR_NULL:
        return KernelArgumentError(
            f"{symbol} returned AXIOM_ERR_NULL ({code}): a required pointer is NULL although its array has elements"
        )
    if code == ERR_NOMEM:
        return MemoryError(f"{symbol} returned AXIOM_ERR_NOMEM ({code}): its workspace could not be allocated")
    return KernelError(f"{symbol} returned unknown status code {code}")
