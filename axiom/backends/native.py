"""Native backends: the C (Cython + OpenMP), Rust and Zig kernel libraries.

All three export the one C ABI of ``csrc/axiom_kernels.h``. :class:`CBackend` calls the C
kernels through the Cython module ``axiom._core._kernels`` (GIL released); every backend
given a ``path`` loads that shared library with ctypes through the one signature table in
:mod:`axiom.backends.abi` (ctypes releases the GIL too). Ops other than those in
``native_ops`` run on the NumPy reference, recorded in ``backend.fallbacks`` and warned once
(see :class:`~axiom.backends.base.PartialBackend`).

:class:`CBackend` also runs ``conv2d`` natively (NHWC, implicit-im2col GEMM, see
``csrc/conv.c``) and offers the training kernels :meth:`CBackend.matmul_backward`,
:meth:`CBackend.conv2d_backward_input`, :meth:`CBackend.conv2d_backward_weight` and
:meth:`CBackend.conv2d_backward` (NumPy references in :mod:`axiom.backends.reference_grad`).
Its matmul goes through the packed GEMM of ``csrc/gemm.c`` (AVX-512 / AVX2 micro-kernels
chosen at run time; ``AXIOM_CPU_FEATURES=avx2`` or :func:`set_cpu_features` caps them) and
takes strided or transposed operands without copying them. float16 and bfloat16 inputs of
matmul, conv2d and their gradients compute in float32 and are cast back (as the reference
does); integer inputs fall back to the reference (recorded in ``backend.fallbacks``, warned
once), as do half-precision ones on the Rust and Zig backends. ``import axiom`` sets
``OMP_WAIT_POLICY=PASSIVE`` unless the variable is set already (idle OpenMP threads sleep
instead of spinning; it only takes effect if no libgomp was started before, see
:mod:`axiom.backends.openmp`).

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

import ctypes
import math
import operator
import os
from collections.abc import Callable
from types import ModuleType
from typing import Any

import ml_dtypes
import numpy as np

from axiom.backends import abi, reference_grad
from axiom.backends.base import GRAD_OPS, Padding2d, Pair, PartialBackend
from axiom.backends.c_kernels import C_NN_OPS, CKernelsMixin
from axiom.backends.openmp import warn_if_openmp_busy
from axiom.backends.reference_grad import sum_to

#: dtypes with a native kernel; mixed float32/float64 computes in float64.
NATIVE_DTYPES: tuple[np.dtype, ...] = (np.dtype(np.float32), np.dtype(np.float64))
#: low-precision dtypes the C backend computes in float32 and casts back (like the reference)
HALF_DTYPES: tuple[np.dtype, ...] = (np.dtype(np.float16), np.dtype(ml_dtypes.bfloat16))


def _c_compute_dtype(*arrays: np.ndarray | None) -> np.dtype | None:
    """The C backend's compute dtype for these operands: float64 if one is float64, float32 if all are
    float32/float16/bfloat16, None when one has no native path (integers...)."""
    dts = [a.dtype for a in arrays if a is not None]
    if any(d not in NATIVE_DTYPES and d not in HALF_DTYPES for d in dts):
        return None
    return np.dtype(np.float64) if any(d == np.float64 for d in dts) else np.dtype(np.float32)


# kernel(a, b, out): out[...] = a @ b for C-contiguous 2-D arrays of one native dtype
Matmul2d = Callable[[np.ndarray, np.ndarray, np.ndarray], None]


def _cython_module() -> ModuleType:
    """The Cython module ``axiom._core._kernels`` (raises ImportError saying how to build it)."""
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
    return _kernels


def _cython_matmul() -> tuple[Matmul2d, str]:
    """The C kernels through the Cython module (raises ImportError saying how to build it)."""
    _kernels = _cython_module()
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


# -- C library extensions: GEMM and conv2d (csrc/gemm.c, csrc/conv.c) ------------------------------

#: Micro-kernel levels of the C GEMM / conv kernels (index = level).
CPU_FEATURE_LEVELS: tuple[str, ...] = ("generic", "avx2", "avx512")


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


_vp = ctypes.c_void_p
_i32 = ctypes.c_int32
_i64 = ctypes.c_int64
_shape_p = ctypes.POINTER(Conv2dShape)

#: ctypes signatures of the C-only symbols (not part of :data:`abi.SIGNATURES`: Rust and Zig lack them).
#: Array arguments are ``c_void_p`` (pass ``array.ctypes.data`` or ``None``).
C_EXTENSION_SIGNATURES: dict[str, tuple[Any, tuple[Any, ...]]] = {
    "axiom_cpu_isa": (ctypes.c_int, ()),
    "axiom_cpu_isa_supported": (ctypes.c_int, ()),
    "axiom_set_cpu_isa": (ctypes.c_int, (_i32,)),
    **{
        f"axiom_gemm_{s}": (ctypes.c_int, (_i32, _i32, _i64, _i64, _i64, t, _vp, _i64, _vp, _i64, t, _vp, _i64))
        for s, t in (("f32", ctypes.c_float), ("f64", ctypes.c_double))
    },
    **{
        f"axiom_gemm_batched_{s}": (
            ctypes.c_int,
            (_i64, _i32, _i32, _i64, _i64, _i64, t, _vp, _i64, _i64, _vp, _i64, _i64, t, _vp, _i64, _i64),
        )
        for s, t in (("f32", ctypes.c_float), ("f64", ctypes.c_double))
    },
    **{f"axiom_conv2d_nhwc_{s}": (ctypes.c_int, (_shape_p, _vp, _vp, _vp, _vp)) for s in ("f32", "f64")},
    **{f"axiom_conv2d_backward_input_nhwc_{s}": (ctypes.c_int, (_shape_p, _vp, _vp, _vp)) for s in ("f32", "f64")},
    **{
        f"axiom_conv2d_backward_weight_nhwc_{s}": (ctypes.c_int, (_shape_p, _vp, _vp, _vp, _vp)) for s in ("f32", "f64")
    },
}


def load_c_extensions(path: str | os.PathLike[str]) -> ctypes.CDLL | None:
    """The library at ``path`` with :data:`C_EXTENSION_SIGNATURES` applied, or ``None`` if it lacks a symbol.

    Example:
        >>> lib = load_c_extensions(abi.built_library_path("c"))
        >>> lib.axiom_cpu_isa() in (0, 1, 2)
        True
        >>> load_c_extensions(abi.built_library_path("zig")) is None  # Zig implements the core ABI only
        True
    """
    lib = ctypes.CDLL(os.fspath(path))
    for symbol, (restype, argtypes) in C_EXTENSION_SIGNATURES.items():
        fn = getattr(lib, symbol, None)
        if fn is None:
            return None
        fn.restype, fn.argtypes = restype, list(argtypes)
    return lib


def cpu_features() -> str:
    """Micro-kernel level the C GEMM / conv kernels use now: ``"generic"``, ``"avx2"`` or ``"avx512"``.

    Example:
        >>> cpu_features() in CPU_FEATURE_LEVELS
        True
    """
    return CPU_FEATURE_LEVELS[_cython_module().cpu_isa()]


def set_cpu_features(level: str | None) -> str:
    """Cap the C micro-kernels at ``level`` (``"generic"``, ``"avx2"``, ``"avx512"``; ``None``: the default).

    The default is the best the CPU supports, capped by the environment variable
    ``AXIOM_CPU_FEATURES`` (same names). Process-wide; returns the level now in use (never
    above what the CPU supports). Raises ``ValueError`` for an unknown name.

    Example:
        >>> old = cpu_features()
        >>> set_cpu_features("avx2") in ("generic", "avx2")
        True
        >>> set_cpu_features(None) == old
        True
    """
    kernels = _cython_module()
    if level is None:
        code = kernels.set_cpu_isa(-1)
    elif level in CPU_FEATURE_LEVELS:
        code = kernels.set_cpu_isa(CPU_FEATURE_LEVELS.index(level))
    else:
        raise ValueError(f"unknown CPU feature level {level!r}; expected one of {CPU_FEATURE_LEVELS} or None")
    if code != abi.OK:
        raise abi.error_for(code, "axiom_set_cpu_isa")
    return cpu_features()


def _pair(value: Any, name: str, minimum: int) -> tuple[int, int]:
    try:
        a, b = (operator.index(v) for v in value)
    except (TypeError, ValueError):
        raise TypeError(f"conv2d: {name} must be a pair of integers, got {value!r}") from None
    if a < minimum or b < minimum:
        raise ValueError(f"conv2d: {name} must be >= {minimum}, got {(a, b)}")
    return a, b


def _conv_params(stride: Any, padding: Any, dilation: Any, groups: Any) -> tuple[Pair, Padding2d, Pair, int]:
    stride_, dilation_ = _pair(stride, "stride", 1), _pair(dilation, "dilation", 1)
    try:
        (pt, pb), (pl, pr) = padding
        padding_ = (_pair((pt, pb), "padding", 0), _pair((pl, pr), "padding", 0))
    except (TypeError, ValueError) as e:
        if isinstance(e, ValueError) and "must be >=" in str(e):
            raise
        raise TypeError(f"conv2d: padding must be ((top, bottom), (left, right)) integers, got {padding!r}") from None
    try:
        groups_ = operator.index(groups)
    except TypeError:
        raise TypeError(f"conv2d: groups must be an integer, got {groups!r}") from None
    if groups_ < 1:
        raise ValueError(f"conv2d: groups must be >= 1, got {groups_}")
    return stride_, padding_, dilation_, groups_


def conv2d_output_shape(
    x_shape: tuple[int, ...],
    w_shape: tuple[int, ...],
    stride: Pair,
    padding: Padding2d,
    dilation: Pair,
    groups: int,
) -> tuple[int, int, int, int]:
    """Validate an NHWC conv2d and return the output shape ``(N, H_out, W_out, C_out)``.

    ``x_shape`` is ``(N, H, W, C_in)``, ``w_shape`` ``(kH, kW, C_in / groups, C_out)``.
    Raises ``ValueError`` for inconsistent shapes or parameters and ``TypeError`` for
    parameters of the wrong type.

    Example:
        >>> conv2d_output_shape((8, 32, 32, 64), (3, 3, 64, 128), (1, 1), ((1, 1), (1, 1)), (1, 1), 1)
        (8, 32, 32, 128)
        >>> conv2d_output_shape((1, 5, 5, 6), (3, 3, 4, 6), (1, 1), ((0, 0), (0, 0)), (1, 1), 2)
        Traceback (most recent call last):
        ...
        ValueError: conv2d: x has shape (1, 5, 5, 6) and w has shape (3, 3, 4, 6) with groups=2; expected ...
    """
    (sh, sw), ((pt, pb), (pl, pr)), (dh, dw), groups = _conv_params(stride, padding, dilation, groups)
    head = f"conv2d: x has shape {tuple(x_shape)} and w has shape {tuple(w_shape)}"
    if len(x_shape) != 4 or len(w_shape) != 4:
        raise ValueError(f"{head}; expected x (N, H, W, C_in) and w (kH, kW, C_in / groups, C_out), both 4-D")
    n, h, w, cin = x_shape
    kh, kw, cin_g, cout = w_shape
    if kh < 1 or kw < 1 or cin_g * groups != cin or cout % groups != 0:
        raise ValueError(
            f"{head} with groups={groups}; expected w.shape[2] * groups == x.shape[3] (C_in) and groups dividing "
            "w.shape[3] (C_out)" + ("" if kh >= 1 and kw >= 1 else " and a kernel of at least 1 x 1")
        )
    ho = max(0, (h + pt + pb - dh * (kh - 1) - 1) // sh + 1)
    wo = max(0, (w + pl + pr - dw * (kw - 1) - 1) // sw + 1)
    return n, ho, wo, cout


def _gemm_ready(x: np.ndarray) -> np.ndarray:
    """``x`` if the C GEMM can read it in place (a unit stride on one of the last two axes), else a contiguous copy."""
    it = x.itemsize
    if any(s < 0 or s % it for s in x.strides):
        return np.ascontiguousarray(x)
    if x.ndim < 2:
        return x
    (r, c), (s0, s1) = x.shape[-2:], x.strides[-2:]
    row_major = (c == 1 or s1 == it) and (r == 1 or s0 >= c * it)
    col_major = (r == 1 or s0 == it) and (c == 1 or s1 >= r * it)
    return x if row_major or col_major else np.ascontiguousarray(x)


def _as_3d(x: np.ndarray) -> np.ndarray | None:
    """View ``x`` (..., r, c) as (B, r, c) without copying, or ``None`` if its batch axes do not merge."""
    dims = [(size, stride) for size, stride in zip(x.shape[:-2], x.strides[:-2]) if size != 1]
    batch = math.prod(x.shape[:-2])
    stride = dims[-1][1] if dims else 0
    for (_, stride_hi), (size_lo, stride_lo) in zip(dims, dims[1:]):
        if stride_hi != stride_lo * size_lo:
            return None
    return np.lib.stride_tricks.as_strided(x, (batch, *x.shape[-2:]), (stride, *x.strides[-2:]), writeable=False)


class CBackend(CKernelsMixin, NativeBackend):
    """C kernels (``csrc/``, OpenMP). ``path=None``: the Cython module; else that library via ctypes.

    Natively: ``matmul`` (packed AVX-512 / AVX2 GEMM), ``conv2d`` (NHWC) and the NN ops of
    :data:`~axiom.backends.c_kernels.C_NN_OPS`, plus the backward kernels
    :meth:`matmul_backward`, :meth:`conv2d_backward_input`, :meth:`conv2d_backward_weight`.

    Example:
        >>> import numpy as np
        >>> CBackend().matmul(np.eye(2, dtype=np.float32), np.ones((2, 3), np.float32)).sum()
        np.float32(6.0)
        >>> CBackend().conv2d(np.ones((1, 4, 4, 1), np.float32), np.ones((3, 3, 1, 2), np.float32), None,
        ...                   (1, 1), ((1, 1), (1, 1)), (1, 1), 1)[0, :, :, 0]
        array([[4., 6., 6., 4.],
               [6., 9., 9., 6.],
               [6., 9., 9., 6.],
               [4., 6., 6., 4.]], dtype=float32)
    """

    name = "c"
    kind = "c"
    native_ops = ("matmul", "conv2d", *C_NN_OPS)
    native_grad_ops = GRAD_OPS  # the whole backward table (conv2d_backward and rope_backward derived)

    def _load(self, path: str | None) -> tuple[Matmul2d, str]:
        #: the Cython module (path None) or the ctypes library of C extensions (None if it lacks them)
        self._ext: ModuleType | None = None
        self._ext_lib: ctypes.CDLL | None = None
        warn_if_openmp_busy()
        if path is None:
            self._ext = _cython_module()
            return _cython_matmul()
        loaded = _ctypes_matmul(path)
        self._ext_lib = load_c_extensions(path)
        return loaded

    # -- matmul -----------------------------------------------------------------------------------

    def _gemm(self, a: np.ndarray, b: np.ndarray, alpha: float = 1.0) -> np.ndarray:
        """``alpha * a @ b`` for arrays of one native dtype, >= 2-D, via the Cython GEMM (no copy of strided views)."""
        assert self._ext is not None
        batch, m, k, n = matmul_shapes(a.shape, b.shape)
        out = np.empty((*batch, m, n), dtype=a.dtype)
        if out.size == 0:
            return out
        a, b = _gemm_ready(a), _gemm_ready(b)
        if b.ndim == 2 and (a.ndim == 2 or a.flags.c_contiguous):
            # b is one matrix: fold a's batch into its rows, one GEMM
            rows = math.prod(out.shape[:-1])
            calls = [(a.reshape(1, rows, k), b[None], out.reshape(1, rows, n))]
        else:
            a_b = np.broadcast_to(a, (*batch, m, k))
            b_b = np.broadcast_to(b, (*batch, k, n))
            a3, b3, c3 = _as_3d(a_b), _as_3d(b_b), _as_3d(out)
            if a3 is not None and b3 is not None and c3 is not None:
                calls = [(a3, b3, out.reshape(-1, m, n))]
            else:  # one batched call per index of the leading batch axes
                calls = [(a_b[idx], b_b[idx], out[idx]) for idx in np.ndindex(*batch[:-1])]
        for a3, b3, c3 in calls:
            code = self._ext.gemm_batched(a3, b3, c3, alpha, 0.0)
            if code != abi.OK:
                raise abi.error_for(code, f"axiom_gemm_batched_{'f32' if a.dtype == np.float32 else 'f64'}")
        return out

    def matmul(self, a: np.ndarray, b: np.ndarray) -> np.ndarray:
        """``a @ b`` with NumPy semantics (2-D, batched with broadcasting, or 1-D operands).

        float32 and float64 (and the mix, computed in float64) run on the packed C GEMM;
        transposed or strided views are read in place (no copy). Other dtypes run on the
        reference, recorded in ``self.fallbacks`` and warned once. Raises ``TypeError`` for
        non-arrays and ``ValueError`` for incompatible shapes.

        Example:
            >>> import numpy as np
            >>> a = np.arange(6, dtype=np.float32).reshape(3, 2)
            >>> CBackend().matmul(a.T, a)  # a.T is read through a transpose flag
            array([[20., 26.],
                   [26., 35.]], dtype=float32)
        """
        ext = self._ext
        if ext is None:
            return super().matmul(a, b)
        if (
            type(a) is np.ndarray
            and type(b) is np.ndarray
            and a.ndim == 2
            and b.ndim == 2
            and a.dtype == b.dtype
            and a.dtype.char in "fd"
            and a.shape[1] == b.shape[0]
        ):  # fast path: one 2-D product, strided / transposed views read in place
            out = np.empty((a.shape[0], b.shape[1]), a.dtype)
            try:
                code = ext.gemm(a, b, out)
            except ValueError:  # a layout the kernel cannot read: one contiguous copy each
                code = ext.gemm(np.ascontiguousarray(a), np.ascontiguousarray(b), out)
            if code != abi.OK:
                raise abi.error_for(code, f"axiom_gemm_{'f32' if a.dtype == np.float32 else 'f64'}")
            return out
        if not isinstance(a, np.ndarray) or not isinstance(b, np.ndarray):
            raise TypeError(f"matmul: expected two numpy.ndarray, got {type(a).__name__} and {type(b).__name__}")
        _, m, k, n = matmul_shapes(a.shape, b.shape)
        dtype = _c_compute_dtype(a, b)
        if dtype is None:
            names = a.dtype.name if a.dtype == b.dtype else f"{a.dtype.name} and {b.dtype.name}"
            reason = f"dtype {names} has no native kernel (only float32, float64, float16, bfloat16)"
            return self.fallback("matmul", reason, a, b)
        a2 = a.astype(dtype, copy=False)
        b2 = b.astype(dtype, copy=False)
        out = self._gemm(a2 if a.ndim >= 2 else a2.reshape(1, k), b2 if b.ndim >= 2 else b2.reshape(k, 1))
        if a.ndim == 1:
            out = out.reshape(out.shape[:-2] + out.shape[-1:])
        if b.ndim == 1:
            out = out.reshape(out.shape[:-1])
        if a.dtype != dtype or b.dtype != dtype:  # float16 / bfloat16 computed in float32, cast back
            out = out.astype(a.dtype if a.dtype == b.dtype else np.result_type(a.dtype, b.dtype))
        return out

    def matmul_backward(self, a: np.ndarray, b: np.ndarray, grad_out: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """Gradients ``(d a, d b)`` of ``sum(grad_out * (a @ b))``, NumPy ``matmul`` semantics.

        ``d a = grad_out @ b^T`` and ``d b = a^T @ grad_out`` through the transposed GEMM (no
        copies), summed over broadcast batch axes back to the operands' shapes. Results have
        the dtypes of ``a`` and ``b``; non-float32/64 inputs run on
        :func:`axiom.backends.reference_grad.matmul_backward` (recorded in ``fallbacks``).
        Raises ``ValueError`` when ``grad_out`` does not have the shape of ``a @ b``.

        Example:
            >>> import numpy as np
            >>> ga, gb = CBackend().matmul_backward(np.ones((2, 3), np.float32), np.ones((3, 4), np.float32),
            ...                                     np.ones((2, 4), np.float32))
            >>> ga.tolist(), gb.shape
            ([[4.0, 4.0, 4.0], [4.0, 4.0, 4.0]], (3, 4))
        """
        if isinstance(grad_out, np.generic):  # a @ b of two vectors is a scalar
            grad_out = np.asarray(grad_out)
        for arr, nm in ((a, "a"), (b, "b"), (grad_out, "grad_out")):
            if not isinstance(arr, np.ndarray):
                raise TypeError(f"matmul_backward: {nm} must be a numpy.ndarray, got {type(arr).__name__}")
        batch, m, k, n = matmul_shapes(a.shape, b.shape)
        expected = (*batch, *((m,) if a.ndim >= 2 else ()), *((n,) if b.ndim >= 2 else ()))
        if grad_out.shape != expected:
            raise ValueError(
                f"matmul_backward: grad_out has shape {grad_out.shape}; expected {expected}, the shape of a @ b "
                f"for a {a.shape} and b {b.shape}"
            )
        dt = _c_compute_dtype(a, b, grad_out)
        if dt is None or self._ext is None:
            why = (
                "the library has no transposed GEMM"
                if self._ext is None
                else "dtype has no native kernel (only float32, float64, float16, bfloat16)"
            )
            return self._grad_fallback("matmul_backward", why, reference_grad.matmul_backward, a, b, grad_out)
        a2 = a.astype(dt, copy=False).reshape(a.shape if a.ndim >= 2 else (1, k))
        b2 = b.astype(dt, copy=False).reshape(b.shape if b.ndim >= 2 else (k, 1))
        g = grad_out.astype(dt, copy=False).reshape((*batch, m, n))
        if b2.ndim == 2 and a2.ndim > 2 and g.flags.c_contiguous and a2.flags.c_contiguous:
            # one shared b (a linear layer): fold the batch into rows, d b is one GEMM over all rows
            g2 = g.reshape(-1, n)
            ga = self._gemm(g2, b2.T).reshape(*batch, m, k)
            gb = self._gemm(a2.reshape(-1, k).T, g2)
        else:
            ga = self._gemm(g, np.swapaxes(b2, -1, -2))
            gb = self._gemm(np.swapaxes(a2, -1, -2), g)
        ga = sum_to(ga, a2.shape).reshape(a.shape).astype(a.dtype, copy=False)
        gb = sum_to(gb, b2.shape).reshape(b.shape).astype(b.dtype, copy=False)
        return ga, gb

    # -- conv2d -----------------------------------------------------------------------------------

    def _grad_fallback(self, op: str, reason: str, fn: Callable[..., Any], *args: Any) -> Any:
        """Run a reference gradient, recording the fallback like :meth:`fallback` does for contract ops."""
        if op not in self.fallbacks:
            import warnings

            from axiom.backends.base import FallbackWarning

            self.fallbacks[op] = reason
            warnings.warn(f"backend {self.name!r}: {op} runs on the NumPy reference ({reason})", FallbackWarning, 3)
        return fn(*args)

    def _conv_call(self, kind: str, shape_arrays: tuple[np.ndarray, ...], args: tuple[Any, ...], params: tuple) -> None:
        """Call the conv kernel ``kind`` (forward, input, weight) through Cython or ctypes; raise on a bad code."""
        sfx = "f32" if shape_arrays[-1].dtype == np.float32 else "f64"
        symbol = {
            "forward": f"axiom_conv2d_nhwc_{sfx}",
            "input": f"axiom_conv2d_backward_input_nhwc_{sfx}",
            "weight": f"axiom_conv2d_backward_weight_nhwc_{sfx}",
        }[kind]
        if self._ext is not None:
            fn = {
                "forward": self._ext.conv2d_nhwc,
                "input": self._ext.conv2d_backward_input_nhwc,
                "weight": self._ext.conv2d_backward_weight_nhwc,
            }[kind]
            code = fn(*args, *params)
        else:
            assert self._ext_lib is not None
            x_shape, w_shape, y_shape = (a.shape for a in shape_arrays)
            (sh, sw), ((pt, pb), (pl, pr)), (dh, dw), groups = params
            shape = Conv2dShape(*x_shape, w_shape[3], w_shape[0], w_shape[1], y_shape[1], y_shape[2], sh, sw, pt, pb,
                                pl, pr, dh, dw, groups)  # fmt: skip
            ptrs = [None if a is None or a.size == 0 else a.ctypes.data for a in args]
            code = getattr(self._ext_lib, symbol)(ctypes.byref(shape), *ptrs)
        if code != abi.OK:
            raise abi.error_for(code, symbol)

    def _conv_native(self, *arrays: np.ndarray | None) -> str | None:
        """Why conv cannot run natively on these arrays (None if it can)."""
        if self._ext is None and self._ext_lib is None:
            return f"library {self.library} does not export the C conv2d kernels"
        if _c_compute_dtype(*arrays) is None:
            bad = sorted({a.dtype.name for a in arrays if a is not None and a.dtype not in NATIVE_DTYPES + HALF_DTYPES})
            return f"dtype {' and '.join(bad)} has no native kernel (only float32, float64, float16, bfloat16)"
        return None

    def conv2d(
        self,
        x: np.ndarray,
        w: np.ndarray,
        bias: np.ndarray | None,
        stride: Pair,
        padding: Padding2d,
        dilation: Pair,
        groups: int,
    ) -> np.ndarray:
        """NHWC 2-D cross-correlation ``conv2d(x, w) + bias`` (the contract's semantics, zero padding).

        ``x`` is ``(N, H, W, C_in)``, ``w`` ``(kH, kW, C_in / groups, C_out)``, ``bias``
        ``(C_out,)`` or ``None``; padding is explicit ``((top, bottom), (left, right))``. The
        result has ``x``'s dtype (computed in float64 if any input is float64, else float32).
        1x1 convolutions are one GEMM, depthwise ones a direct loop, the rest an
        implicit-im2col GEMM. float16/bfloat16 compute in float32; integer inputs run on the
        reference (recorded).
        Raises ``TypeError``/``ValueError`` for bad arguments.

        Example:
            >>> import numpy as np
            >>> x = np.ones((2, 5, 5, 4), np.float32); w = np.ones((3, 3, 2, 6), np.float32)
            >>> y = CBackend().conv2d(x, w, np.zeros(6, np.float32), (2, 2), ((1, 1), (1, 1)), (1, 1), 2)
            >>> y.shape, float(y[0, 1, 1, 0])
            ((2, 3, 3, 6), 18.0)
        """
        if not isinstance(x, np.ndarray) or not isinstance(w, np.ndarray):
            raise TypeError(f"conv2d: x and w must be numpy.ndarray, got {type(x).__name__} and {type(w).__name__}")
        if bias is not None and not isinstance(bias, np.ndarray):
            raise TypeError(f"conv2d: bias must be a numpy.ndarray or None, got {type(bias).__name__}")
        out_shape = conv2d_output_shape(x.shape, w.shape, stride, padding, dilation, groups)
        if bias is not None and bias.shape != (w.shape[3],):
            raise ValueError(f"conv2d: bias has shape {bias.shape}; expected ({w.shape[3]},) (C_out)")
        params = _conv_params(stride, padding, dilation, groups)
        reason = self._conv_native(x, w, bias)
        if reason is not None:
            return self.fallback("conv2d", reason, x, w, bias, stride, padding, dilation, groups)
        dt = _c_compute_dtype(x, w, bias)
        xc, wc = np.ascontiguousarray(x, dt), np.ascontiguousarray(w, dt)
        bc = None if bias is None else np.ascontiguousarray(bias, dt)
        y = np.empty(out_shape, dt)
        self._conv_call("forward", (xc, wc, y), (xc, wc, bc, y), params)
        return y.astype(x.dtype, copy=False)

    def conv2d_backward_input(
        self,
        grad_out: np.ndarray,
        w: np.ndarray,
        x_shape: tuple[int, int, int, int],
        stride: Pair,
        padding: Padding2d,
        dilation: Pair,
        groups: int,
    ) -> np.ndarray:
        """Gradient of ``sum(grad_out * conv2d(x, w))`` with respect to ``x`` (of shape ``x_shape``).

        Stride 1 runs as a forward convolution of ``grad_out`` with the flipped, transposed
        weights; other strides as ``grad_out @ W^T`` plus a col2im scatter. The result has
        ``grad_out``'s dtype. Raises ``ValueError`` when ``grad_out`` does not have the
        output shape of the convolution.

        Example:
            >>> import numpy as np
            >>> gy, w = np.ones((1, 2, 2, 1), np.float32), np.ones((3, 3, 1, 1), np.float32)
            >>> dx = CBackend().conv2d_backward_input(gy, w, (1, 4, 4, 1), (1, 1), ((0, 0), (0, 0)), (1, 1), 1)
            >>> dx[0, :, :, 0]
            array([[1., 2., 2., 1.],
                   [2., 4., 4., 2.],
                   [2., 4., 4., 2.],
                   [1., 2., 2., 1.]], dtype=float32)
        """
        x_shape = tuple(operator.index(s) for s in x_shape)
        self._check_grad_out("conv2d_backward_input", grad_out, w, x_shape, w.shape, stride, padding, dilation, groups)
        params = _conv_params(stride, padding, dilation, groups)
        reason = self._conv_native(grad_out, w)
        if reason is not None:
            return self._grad_fallback(
                "conv2d_backward_input", reason, reference_grad.conv2d_backward_input, grad_out, w, x_shape, *params
            )
        dt = _c_compute_dtype(grad_out, w)
        gc, wc = np.ascontiguousarray(grad_out, dt), np.ascontiguousarray(w, dt)
        dx = np.empty(x_shape, dt)
        self._conv_call("input", (dx, wc, gc), (gc, wc, dx), params)
        return dx.astype(grad_out.dtype, copy=False)

    def conv2d_backward_weight(
        self,
        x: np.ndarray,
        grad_out: np.ndarray,
        w_shape: tuple[int, int, int, int],
        stride: Pair,
        padding: Padding2d,
        dilation: Pair,
        groups: int,
    ) -> tuple[np.ndarray, np.ndarray]:
        """Gradients ``(d w, d bias)`` of ``sum(grad_out * (conv2d(x, w) + bias))``; ``d w`` has shape ``w_shape``.

        The weight gradient is a GEMM over all output pixels (the im2col matrix is read in
        place); the bias gradient is ``grad_out`` summed over N, H_out, W_out (accumulated in
        float64). Both have ``grad_out``'s dtype.

        Example:
            >>> import numpy as np
            >>> x, gy = np.ones((2, 3, 3, 1), np.float32), np.ones((2, 1, 1, 1), np.float32)
            >>> dw, db = CBackend().conv2d_backward_weight(x, gy, (3, 3, 1, 1), (1, 1), ((0, 0), (0, 0)), (1, 1), 1)
            >>> float(dw.sum()), db
            (18.0, array([2.], dtype=float32))
        """
        w_shape = tuple(operator.index(s) for s in w_shape)
        if not isinstance(x, np.ndarray):
            raise TypeError(f"conv2d_backward_weight: x must be a numpy.ndarray, got {type(x).__name__}")
        self._check_grad_out("conv2d_backward_weight", grad_out, x, x.shape, w_shape, stride, padding, dilation, groups)
        params = _conv_params(stride, padding, dilation, groups)
        reason = self._conv_native(x, grad_out)
        if reason is not None:
            return self._grad_fallback(
                "conv2d_backward_weight", reason, reference_grad.conv2d_backward_weight, x, grad_out, w_shape, *params
            )
        dt = _c_compute_dtype(x, grad_out)
        xc, gc = np.ascontiguousarray(x, dt), np.ascontiguousarray(grad_out, dt)
        dw, db = np.empty(w_shape, dt), np.empty(w_shape[3], dt)
        self._conv_call("weight", (xc, dw, gc), (xc, gc, dw, db), params)
        return dw.astype(grad_out.dtype, copy=False), db.astype(grad_out.dtype, copy=False)

    @staticmethod
    def _check_grad_out(
        op: str,
        grad_out: np.ndarray,
        other: np.ndarray,
        x_shape: tuple[int, ...],
        w_shape: tuple[int, ...],
        stride: Pair,
        padding: Padding2d,
        dilation: Pair,
        groups: int,
    ) -> None:
        if not isinstance(grad_out, np.ndarray) or not isinstance(other, np.ndarray):
            raise TypeError(
                f"{op}: expected numpy.ndarray inputs, got {type(grad_out).__name__} and {type(other).__name__}"
            )
        expected = conv2d_output_shape(x_shape, w_shape, stride, padding, dilation, groups)
        if grad_out.shape != expected:
            raise ValueError(
                f"{op}: grad_out has shape {grad_out.shape}; expected {expected}, the output shape of the convolution "
                f"of x {tuple(x_shape)} with w {tuple(w_shape)}"
            )


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
