"""The one Python table of kernel signatures (the C ABI of ``csrc/axiom_kernels.h``).

The C, Rust and Zig libraries export the same symbols with the same C signatures, so
:data:`SIGNATURES` describes all of them and :func:`load_kernel_library` loads any of them
with ctypes. Status codes returned by kernels become exceptions through :func:`error_for`:

- ``AXIOM_ERR_SIZE`` (negative dimension or size overflow) -> :class:`KernelArgumentError`,
  which is both a :class:`~axiom.backends.base.KernelError` and a :class:`ValueError`;
- ``AXIOM_ERR_NULL`` (a required pointer is NULL) -> :class:`KernelArgumentError` too;
- ``AXIOM_ERR_NOMEM`` (a kernel's workspace could not be allocated) -> ``MemoryError``;
- ``AXIOM_ERR_INTERNAL`` (a Rust panic caught at the FFI boundary: a bug) -> :class:`~axiom.backends.base.KernelError`;
- any other non-zero code -> :class:`~axiom.backends.base.KernelError`.

Example:
    >>> import numpy as np
    >>> lib = load_kernel_library(built_library_path("c"))
    >>> lib.axiom_abi_version() == ABI_VERSION
    True
    >>> a = np.ones((2, 3), np.float32); b = np.ones((3, 4), np.float32); c = np.empty((2, 4), np.float32)
    >>> lib.axiom_matmul_f32(a.ctypes.data, b.ctypes.data, c.ctypes.data, 2, 3, 4)
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
_i64, _i32, _int, _flt, _dbl = ctypes.c_int64, ctypes.c_int32, ctypes.c_int, ctypes.c_float, ctypes.c_double


class Conv2dShape(ctypes.Structure):
    """``axiom_conv2d_shape`` of ``csrc/axiom_kernels.h`` (all fields ``int64_t``), for ctypes calls.

    Example:
        >>> s = Conv2dShape(n=1, h=5, w=5, c_in=3, c_out=4, k_h=3, k_w=3, out_h=3, out_w=3, stride_h=1, stride_w=1,
        ...                 dilation_h=1, dilation_w=1, groups=1)
        >>> s.pad_top, s.out_w, ctypes.sizeof(s)
        (0, 3, 144)
    """

    _fields_ = [
        (name, ctypes.c_int64)
        for name in (
            "n h w c_in c_out k_h k_w out_h out_w stride_h stride_w pad_top pad_bottom pad_left pad_right "
            "dilation_h dilation_w groups"
        ).split()
    ]


_shape_p = ctypes.POINTER(Conv2dShape)

#: The argument list of each NN kernel family (``csrc/axiom_kernels_nn.h``), compactly: ``p`` an
#: array of the kernel's float type, ``d`` a float64 array, ``i`` int64_t, ``c`` int, ``f`` double.
NN_PATTERNS: dict[str, str] = {
    "batchnorm": "pppppp" + "iif",
    "layernorm": "pppp" + "iif",
    "rmsnorm": "ppp" + "iif",
    "batchnorm_backward": "pppppppp" + "iif",
    "layernorm_backward": "pppppp" + "iif",
    "rmsnorm_backward": "ppppp" + "iif",
    "max_pool2d": "pp" + "i" * 14,
    "avg_pool2d": "pp" + "i" * 12 + "c",
    "global_avg_pool": "pp" + "iii",
    "max_pool2d_backward": "ppp" + "i" * 14,
    "avg_pool2d_backward": "pp" + "i" * 12 + "c",
    "softmax": "pp" + "iii" + "c",
    "softmax_backward": "ppp" + "iii" + "c",
    "activation": "pp" + "i" + "c" + "f",
    "activation_backward": "ppp" + "i" + "c" + "f",
    "attention": "ppppp" + "i" * 6 + "fc" + "iiii",
    "attention_backward": "pppppppp" + "i" * 6 + "fc" + "iiii",
    "rope": "pdp" + "iii" + "f",
}


def _typed(suffix: str) -> tuple[Any, Any]:
    """(array pointer, scalar) ctypes types of the ``f32`` or ``f64`` variant of a kernel."""
    return (_f32p, _flt) if suffix == "f32" else (_f64p, _dbl)


def _nn_signature(pattern: str, suffix: str) -> tuple[Any, tuple[Any, ...]]:
    ptr = _typed(suffix)[0]
    return _int, tuple({"p": ptr, "d": _f64p, "i": _i64, "c": _int, "f": _dbl}[ch] for ch in pattern)


def _signatures() -> dict[str, tuple[Any, tuple[Any, ...]]]:
    table: dict[str, tuple[Any, tuple[Any, ...]]] = {
        "axiom_abi_version": (_int, ()),
        "axiom_cpu_isa": (_int, ()),
        "axiom_cpu_isa_supported": (_int, ()),
        "axiom_set_cpu_isa": (_int, (_i32,)),
    }
    for s in ("f32", "f64"):
        p, t = _typed(s)
        table[f"axiom_matmul_{s}"] = (_int, (p, p, p, _i64, _i64, _i64))
        table[f"axiom_gemm_{s}"] = (_int, (_i32, _i32, _i64, _i64, _i64, t, p, _i64, p, _i64, t, p, _i64))
        table[f"axiom_gemm_batched_{s}"] = (
            _int,
            (_i64, _i32, _i32, _i64, _i64, _i64, t, p, _i64, _i64, p, _i64, _i64, t, p, _i64, _i64),
        )
        table[f"axiom_conv2d_nhwc_{s}"] = (_int, (_shape_p, p, p, p, p))
        table[f"axiom_conv2d_backward_input_nhwc_{s}"] = (_int, (_shape_p, p, p, p))
        table[f"axiom_conv2d_backward_weight_nhwc_{s}"] = (_int, (_shape_p, p, p, p, p))
    for name, pattern in NN_PATTERNS.items():
        for s in ("f32", "f64"):
            table[f"axiom_{name}_{s}"] = _nn_signature(pattern, s)
    return table


#: symbol -> (restype, argtypes) with the exact C types of every symbol of the ABI
#: (``csrc/axiom_kernels.h`` and ``csrc/axiom_kernels_nn.h``); every library exports all of them.
SIGNATURES: dict[str, tuple[Any, tuple[Any, ...]]] = _signatures()

_VOID_P = ctypes.c_void_p

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
    ``OSError``) if ``axiom_abi_version()`` is not :data:`ABI_VERSION` or a symbol is missing.
    Array arguments are declared ``c_void_p``: pass ``array.ctypes.data`` (an address), a ctypes
    pointer or ``None``. ctypes releases the GIL during every call.

    Example:
        >>> load_kernel_library(built_library_path("rust")).axiom_abi_version() == ABI_VERSION
        True
    """
    path = os.fspath(path)
    lib = ctypes.CDLL(path)
    try:
        version = lib.axiom_abi_version()
    except AttributeError:
        raise AbiMismatchError(
            f"{path} does not export axiom_abi_version: not an axiom kernel library of ABI version {ABI_VERSION}"
        ) from None
    if version != ABI_VERSION:
        raise AbiMismatchError(
            f"{path} implements kernel ABI version {version}, but this axiom expects version {ABI_VERSION}: "
            f"rebuild it ({_HOW_TO_BUILD})"
        )
    missing = [symbol for symbol in SIGNATURES if not hasattr(lib, symbol)]
    if missing:
        raise AbiMismatchError(
            f"{path} reports ABI version {version} but does not export {len(missing)} of its "
            f"{len(SIGNATURES)} symbols ({', '.join(missing[:4])}{', ...' if len(missing) > 4 else ''}): "
            f"rebuild it ({_HOW_TO_BUILD})"
        )
    for symbol, (restype, argtypes) in SIGNATURES.items():
        fn = getattr(lib, symbol)
        fn.restype = restype
        fn.argtypes = [_VOID_P if t in (_f32p, _f64p) else t for t in argtypes]
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
    if code == ERR_INTERNAL:
        return KernelError(
            f"{symbol} returned AXIOM_ERR_INTERNAL ({code}): the library caught an internal error (a panic) at its "
            "boundary; this is a bug in axiom, please report it with the arguments"
        )
    return KernelError(f"{symbol} returned unknown status code {code}")
