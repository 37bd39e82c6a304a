"""Native backends: the C (Cython + OpenMP), Rust (std threads) and Zig (``@Vector``) kernel libraries.

All three export the whole kernel ABI of ``csrc/axiom_kernels.h`` and run the whole kernel
contract natively, through one class, :class:`NativeBackend`: :class:`CBackend` calls the C
kernels through the Cython modules ``axiom._core._kernels`` / ``_nn`` (GIL released);
:class:`RustBackend`, :class:`ZigBackend` and every backend given a ``path`` load that shared
library with ctypes through the one signature table :data:`axiom.backends.abi.SIGNATURES`
(ctypes releases the GIL too; :class:`~axiom.backends.library.LibraryKernels` gives it the
Cython module's interface).

Natively: ``matmul`` (packed GEMM, AVX-512 / AVX2 micro-kernels chosen at run time,
``AXIOM_CPU_FEATURES=avx2`` or :meth:`NativeBackend.set_cpu_features` caps them; strided or
transposed operands are read without copies), ``conv2d`` (NHWC, implicit-im2col GEMM), the NN
ops of :data:`~axiom.backends.c_kernels.C_NN_OPS`, and the training kernels
:meth:`NativeBackend.matmul_backward`, :meth:`NativeBackend.conv2d_backward_input`,
:meth:`NativeBackend.conv2d_backward_weight` and the NN backward kernels (NumPy references in
:mod:`axiom.backends.reference_grad`). float16 and bfloat16 inputs compute in float32 and are
cast back (as the reference does); integer inputs fall back to the reference (recorded in
``backend.fallbacks``, warned once). ``import axiom`` sets
``OMP_WAIT_POLICY=PASSIVE`` and ``GOMP_SPINCOUNT=2000`` unless they are set already (idle
OpenMP threads spin briefly, then sleep; it only takes effect if no libgomp was started
before, see :mod:`axiom.backends.openmp`).

Example:
    >>> import numpy as np
    >>> from axiom.backends.native import CBackend, RustBackend, ZigBackend
    >>> a = np.arange(6, dtype=np.float32).reshape(2, 3); b = np.ones((3, 2), np.float32)
    >>> CBackend().matmul(a, b)
    array([[ 3.,  3.],
           [12., 12.]], dtype=float32)
    >>> bool((ZigBackend().matmul(a, b) == RustBackend().matmul(a, b)).all())
    True
    >>> RustBackend().softmax(np.array([0.0, 0.0], np.float32), axis=-1).tolist()
    [0.5, 0.5]
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
from axiom.backends.library import LibraryKernels
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


def check_matmul(a: Any, b: Any) -> tuple[tuple[int, ...], int, int, int, np.dtype | None, str | None]:
    """The C backend's checks of ``matmul(a, b)``: ``(batch, m, k, n, dtype, reason)``.

    ``dtype`` is the compute dtype (:func:`_c_compute_dtype`); when there is none, ``reason``
    says why the op falls back to the reference (else it is None). Raises ``TypeError`` for
    non-arrays and ``ValueError`` for shapes ``matmul`` does not accept. Shared by the native and
    GPU backends, so both give the same errors.

    Example:
        >>> import numpy as np
        >>> check_matmul(np.ones((2, 3), np.float16), np.ones(3, np.float32))
        ((), 2, 3, 1, dtype('float32'), None)
        >>> check_matmul(np.ones(3, np.int64), np.ones(3, np.int64))[4:]
        (None, 'dtype int64 has no native kernel (only float32, float64, float16, bfloat16)')
    """
    if not isinstance(a, np.ndarray) or not isinstance(b, np.ndarray):
        raise TypeError(f"matmul: expected two numpy.ndarray, got {type(a).__name__} and {type(b).__name__}")
    batch, m, k, n = matmul_shapes(a.shape, b.shape)
    dtype = _c_compute_dtype(a, b)
    reason = None
    if dtype is None:
        names = a.dtype.name if a.dtype == b.dtype else f"{a.dtype.name} and {b.dtype.name}"
        reason = f"dtype {names} has no native kernel (only float32, float64, float16, bfloat16)"
    return batch, m, k, n, dtype, reason


def finish_matmul(out: np.ndarray, a: np.ndarray, b: np.ndarray, dtype: np.dtype) -> np.ndarray:
    """``out`` (the ``(*batch, m, n)`` product computed in ``dtype``) as ``a @ b`` gives it.

    Drops the axis a 1-D ``a`` or ``b`` was promoted with and casts a float16 / bfloat16
    product back to the operands' dtype.

    Example:
        >>> import numpy as np
        >>> a = np.ones(3, np.float16)
        >>> r = finish_matmul(np.full((1, 2), 3.0, np.float32), a, np.ones((3, 2), np.float16), np.dtype(np.float32))
        >>> r.shape, r.dtype.name
        ((2,), 'float16')
    """
    if a.ndim == 1:
        out = out.reshape(out.shape[:-2] + out.shape[-1:])
    if b.ndim == 1:
        out = out.reshape(out.shape[:-1])
    if a.dtype != dtype or b.dtype != dtype:  # float16 / bfloat16 computed in float32, cast back
        out = out.astype(a.dtype if a.dtype == b.dtype else np.result_type(a.dtype, b.dtype))
    return out


# -- CPU feature levels of the GEMM / conv micro-kernels -----------------------------------------

#: Micro-kernel levels of the C GEMM / conv kernels (index = level).
CPU_FEATURE_LEVELS: tuple[str, ...] = ("generic", "avx2", "avx512")


def _isa_name(kernels: Any) -> str:
    return CPU_FEATURE_LEVELS[kernels.cpu_isa()]


def _set_isa(kernels: Any, level: str | None) -> str:
    if level is None:
        code = kernels.set_cpu_isa(-1)
    elif level in CPU_FEATURE_LEVELS:
        code = kernels.set_cpu_isa(CPU_FEATURE_LEVELS.index(level))
    else:
        raise ValueError(f"unknown CPU feature level {level!r}; expected one of {CPU_FEATURE_LEVELS} or None")
    if code != abi.OK:
        raise abi.error_for(code, "axiom_set_cpu_isa")
    return _isa_name(kernels)


def cpu_features() -> str:
    """Micro-kernel level the C GEMM / conv kernels use now: ``"generic"``, ``"avx2"`` or ``"avx512"``.

    The Rust and Zig libraries keep their own level: :meth:`NativeBackend.cpu_features`.

    Example:
        >>> cpu_features() in CPU_FEATURE_LEVELS
        True
    """
    return _isa_name(_cython_module())


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
    return _set_isa(_cython_module(), level)


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


def _conv_native(*arrays: np.ndarray | None) -> str | None:
    """Why conv cannot run natively on these arrays (None if it can)."""
    if _c_compute_dtype(*arrays) is None:
        bad = sorted({a.dtype.name for a in arrays if a is not None and a.dtype not in NATIVE_DTYPES + HALF_DTYPES})
        return f"dtype {' and '.join(bad)} has no native kernel (only float32, float64, float16, bfloat16)"
    return None


def check_conv2d(
    x: Any, w: Any, bias: Any, stride: Pair, padding: Padding2d, dilation: Pair, groups: int
) -> tuple[tuple[int, int, int, int], np.dtype | None, str | None]:
    """The C backend's checks of ``conv2d``: ``(output shape, compute dtype, reason)``.

    ``reason`` (None when the op runs natively, else the compute dtype is None) says why it falls
    back to the reference. Raises ``TypeError`` / ``ValueError`` for bad arguments. Shared by the
    native and GPU backends, so both give the same errors.

    Example:
        >>> import numpy as np
        >>> x = np.ones((2, 5, 5, 4), np.float16); w = np.ones((3, 3, 2, 6), np.float32)
        >>> check_conv2d(x, w, None, (2, 2), ((1, 1), (1, 1)), (1, 1), 2)
        ((2, 3, 3, 6), dtype('float32'), None)
    """
    if not isinstance(x, np.ndarray) or not isinstance(w, np.ndarray):
        raise TypeError(f"conv2d: x and w must be numpy.ndarray, got {type(x).__name__} and {type(w).__name__}")
    if bias is not None and not isinstance(bias, np.ndarray):
        raise TypeError(f"conv2d: bias must be a numpy.ndarray or None, got {type(bias).__name__}")
    out_shape = conv2d_output_shape(x.shape, w.shape, stride, padding, dilation, groups)
    if bias is not None and bias.shape != (w.shape[3],):
        raise ValueError(f"conv2d: bias has shape {bias.shape}; expected ({w.shape[3]},) (C_out)")
    reason = _conv_native(x, w, bias)
    return out_shape, (None if reason else _c_compute_dtype(x, w, bias)), reason


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


class NativeBackend(CKernelsMixin, PartialBackend):
    """A kernel library of the ABI (C, Rust or Zig) running the whole kernel contract natively.

    Subclasses set ``name`` and ``kind`` (the library: ``"c"``, ``"rust"`` or ``"zig"``).
    ``path=None`` loads the built library (the C one through Cython); a ``path`` loads that
    shared library with ctypes. ``path`` and ``library`` (what was loaded) are public.

    Example:
        >>> [(cls.__name__, cls.kind) for cls in NativeBackend.__subclasses__()]
        [('CBackend', 'c'), ('RustBackend', 'rust'), ('ZigBackend', 'zig')]
        >>> import numpy as np
        >>> be = ZigBackend()
        >>> be.library.endswith(".so"), be.conv2d(np.ones((1, 3, 3, 1)), np.ones((3, 3, 1, 1)), None, (1, 1),
        ...                                        ((0, 0), (0, 0)), (1, 1), 1).item()
        (True, 9.0)
    """

    name = "native"
    kind: abi.LibraryKind = "c"
    native_ops = ("matmul", "conv2d", *C_NN_OPS)
    native_grad_ops = GRAD_OPS  # the whole backward table (conv2d_backward and rope_backward derived)

    def __init__(self, path: str | os.PathLike[str] | None = None) -> None:
        super().__init__()
        self.path = None if path is None else os.fspath(path)
        #: the GEMM / conv entry points: the Cython module, or the ctypes library behind LibraryKernels
        self._ext: Any
        #: the ctypes library (None when the C kernels are reached through Cython)
        self.kernel_lib: ctypes.CDLL | None = None
        if self.kind == "c":
            warn_if_openmp_busy()
        if self.kind == "c" and self.path is None:
            self._ext = _cython_module()
            self.library = f"{self._ext.__file__} (Cython)"
            return
        path_ = abi.built_library_path(self.kind) if self.path is None else self.path
        try:
            self.kernel_lib = abi.load_kernel_library(path_)
        except abi.AbiMismatchError:
            raise
        except OSError as e:
            raise OSError(f"cannot load kernel library {path_!r}: {e}") from e
        self._ext = LibraryKernels(self.kernel_lib)
        self.library = path_

    def __repr__(self) -> str:
        return f"{type(self).__name__}(path={self.path!r})"

    def cpu_features(self) -> str:
        """Micro-kernel level this library's GEMM / conv kernels use now (``"generic"``, ``"avx2"``, ``"avx512"``).

        Example:
            >>> RustBackend().cpu_features() in CPU_FEATURE_LEVELS
            True
        """
        return _isa_name(self._ext)

    def set_cpu_features(self, level: str | None) -> str:
        """Cap this library's micro-kernels at ``level`` (``None``: the default); returns the level in use.

        Example:
            >>> be = ZigBackend(); old = be.cpu_features()
            >>> be.set_cpu_features("generic")
            'generic'
            >>> be.set_cpu_features(None) == old
            True
        """
        return _set_isa(self._ext, level)

    # -- matmul -----------------------------------------------------------------------------------

    def _gemm(self, a: np.ndarray, b: np.ndarray, alpha: float = 1.0) -> np.ndarray:
        """``alpha * a @ b`` for arrays of one native dtype, >= 2-D, via the batched GEMM (no copy of strided views)."""
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

        float32 and float64 (and the mix, computed in float64) run on the packed GEMM;
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
        _, m, k, n, dtype, reason = check_matmul(a, b)
        if dtype is None:
            return self.fallback("matmul", str(reason), a, b)
        a2 = a.astype(dtype, copy=False)
        b2 = b.astype(dtype, copy=False)
        out = self._gemm(a2 if a.ndim >= 2 else a2.reshape(1, k), b2 if b.ndim >= 2 else b2.reshape(k, 1))
        return finish_matmul(out, a, b, dtype)

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
        if dt is None:
            why = "dtype has no native kernel (only float32, float64, float16, bfloat16)"
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

    def _conv_call(self, kind: str, dtype: np.dtype, args: tuple[Any, ...], params: tuple) -> None:
        """Call the conv kernel ``kind`` (forward, input, weight); raise on a bad status code."""
        fn, symbol = {
            "forward": (self._ext.conv2d_nhwc, "axiom_conv2d_nhwc"),
            "input": (self._ext.conv2d_backward_input_nhwc, "axiom_conv2d_backward_input_nhwc"),
            "weight": (self._ext.conv2d_backward_weight_nhwc, "axiom_conv2d_backward_weight_nhwc"),
        }[kind]
        code = fn(*args, *params)
        if code != abi.OK:
            raise abi.error_for(code, f"{symbol}_{'f32' if dtype == np.float32 else 'f64'}")

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
        out_shape, dt, reason = check_conv2d(x, w, bias, stride, padding, dilation, groups)
        if dt is None:
            return self.fallback("conv2d", str(reason), x, w, bias, stride, padding, dilation, groups)
        params = _conv_params(stride, padding, dilation, groups)
        xc, wc = np.ascontiguousarray(x, dt), np.ascontiguousarray(w, dt)
        bc = None if bias is None else np.ascontiguousarray(bias, dt)
        y = np.empty(out_shape, dt)
        self._conv_call("forward", dt, (xc, wc, bc, y), params)
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
        reason = _conv_native(grad_out, w)
        if reason is not None:
            return self._grad_fallback(
                "conv2d_backward_input", reason, reference_grad.conv2d_backward_input, grad_out, w, x_shape, *params
            )
        dt = _c_compute_dtype(grad_out, w)
        gc, wc = np.ascontiguousarray(grad_out, dt), np.ascontiguousarray(w, dt)
        dx = np.empty(x_shape, dt)
        self._conv_call("input", dt, (gc, wc, dx), params)
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
        reason = _conv_native(x, grad_out)
        if reason is not None:
            return self._grad_fallback(
                "conv2d_backward_weight", reason, reference_grad.conv2d_backward_weight, x, grad_out, w_shape, *params
            )
        dt = _c_compute_dtype(x, grad_out)
        xc, gc = np.ascontiguousarray(x, dt), np.ascontiguousarray(grad_out, dt)
        dw, db = np.empty(w_shape, dt), np.empty(w_shape[3], dt)
        self._conv_call("weight", dt, (xc, gc, dw, db), params)
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


class CBackend(NativeBackend):
    """C kernels (``csrc/``, OpenMP). ``path=None``: the Cython modules; else that library via ctypes.

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


class RustBackend(NativeBackend):
    """Rust kernels (``rust/``, std only, std threads). ``path=None``: the built ``axiom._core._rust``.

    Example:
        >>> import numpy as np
        >>> RustBackend().matmul(np.eye(2), np.ones((2, 3))).sum()
        np.float64(6.0)
    """

    name = "rust"
    kind = "rust"


class ZigBackend(NativeBackend):
    """Zig kernels (``zig/``, ``@Vector`` SIMD, std threads). ``path=None``: the built ``axiom._core._zig``.

    Example:
        >>> import numpy as np
        >>> ZigBackend().matmul(np.eye(2), np.ones((2, 3))).sum()
        np.float64(6.0)
    """

    name = "zig"
    kind = "zig"
