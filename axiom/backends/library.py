"""The GEMM, conv2d and CPU-ISA entry points of any kernel library, through ctypes.

:class:`LibraryKernels` offers the interface of the Cython module ``axiom._core._kernels``
(``gemm``, ``gemm_batched``, ``conv2d_nhwc``, ``conv2d_backward_input_nhwc``,
``conv2d_backward_weight_nhwc``, ``cpu_isa``, ``cpu_isa_supported``, ``set_cpu_isa``) on top of a
library loaded by :func:`axiom.backends.abi.load_kernel_library`, so the native backends run the
same code on the C library (through Cython) and on the Rust and Zig libraries (through ctypes).
Each call returns the kernel's status code; layouts the kernels cannot read raise ``ValueError``
before any call, like the Cython wrappers.

Example:
    >>> import numpy as np
    >>> from axiom.backends import abi
    >>> k = LibraryKernels(abi.load_kernel_library(abi.built_library_path("zig")))
    >>> a = np.arange(6, dtype=np.float32).reshape(3, 2); c = np.empty((2, 2), np.float32)
    >>> k.gemm(a.T, a, c)  # a.T is read through a transpose flag, without a copy
    0
    >>> c.tolist()
    [[20.0, 26.0], [26.0, 35.0]]
"""

from __future__ import annotations

import ctypes
from typing import Any

import numpy as np

from axiom.backends.abi import Conv2dShape


def _layout(rows: int, cols: int, s0: int, s1: int, item: int, allow_trans: bool, name: str) -> tuple[int, int]:
    """(trans, ld) of a rows x cols matrix with byte strides (s0, s1), or raise ``ValueError``."""
    if rows == 0 or cols == 0:
        return 0, max(cols, 1)
    if s0 % item or s1 % item:
        raise ValueError(f"gemm: {name} has strides {(s0, s1)} that are not multiples of its item size {item}")
    s0, s1 = s0 // item, s1 // item
    if (cols == 1 or s1 == 1) and (rows == 1 or s0 >= cols):
        return 0, (s0 if rows > 1 else cols)
    if allow_trans and (rows == 1 or s0 == 1) and (cols == 1 or s1 >= rows):
        return 1, (s1 if cols > 1 else rows)
    raise ValueError(
        f"gemm: {name} ({rows} x {cols}) has element strides {(s0, s1)}; expected a unit stride on "
        f"{'one axis' if allow_trans else 'the last axis'} and non-overlapping rows (make it contiguous first)"
    )


def _batch_stride(batch: int, stride: int, item: int, name: str) -> int:
    if batch <= 1:
        return 0
    if stride < 0 or stride % item:
        raise ValueError(f"gemm: {name} has batch stride {stride} bytes; expected a non-negative multiple of {item}")
    return stride // item


def _address(a: np.ndarray | None) -> int | None:
    return None if a is None or a.size == 0 else a.ctypes.data


def _suffix(*arrays: np.ndarray | None) -> str:
    dtypes = {a.dtype for a in arrays if a is not None}
    if len(dtypes) != 1 or next(iter(dtypes)).char not in "fd":
        raise TypeError(f"kernel arrays must all be float32 or all float64, got {sorted(d.name for d in dtypes)}")
    return "f32" if next(iter(dtypes)) == np.float32 else "f64"


def _conv_shape(x_shape: tuple, w_shape: tuple, y_shape: tuple, stride: Any, padding: Any, dilation: Any,
                groups: int) -> Conv2dShape:  # fmt: skip
    if len(x_shape) != 4 or len(w_shape) != 4 or len(y_shape) != 4:
        raise ValueError(f"conv2d: x {x_shape}, w {w_shape} and y {y_shape} must all be 4-D (NHWC)")
    n, h, w, c_in = x_shape
    if y_shape[0] != n or y_shape[3] != w_shape[3] or w_shape[2] * groups != c_in:
        raise ValueError(
            f"conv2d: x {x_shape}, w {w_shape} and y {y_shape} do not fit (groups={groups}); "
            "expected x (N, H, W, C_in), w (kH, kW, C_in / groups, C_out) and y (N, H_out, W_out, C_out)"
        )
    (sh, sw), ((pt, pb), (pl, pr)), (dh, dw) = stride, padding, dilation
    return Conv2dShape(n, h, w, c_in, w_shape[3], w_shape[0], w_shape[1], y_shape[1], y_shape[2], sh, sw, pt, pb, pl,
                       pr, dh, dw, groups)  # fmt: skip


def _contiguous(*arrays: np.ndarray | None) -> None:
    for a in arrays:
        if a is not None and not a.flags.c_contiguous:
            raise ValueError("conv2d: every array must be C-contiguous")


class LibraryKernels:
    """GEMM / conv2d / CPU-ISA calls on a ctypes kernel library, with the Cython module's interface.

    Example:
        >>> from axiom.backends import abi
        >>> k = LibraryKernels(abi.load_kernel_library(abi.built_library_path("rust")))
        >>> k.cpu_isa() <= k.cpu_isa_supported()
        True
    """

    def __init__(self, lib: ctypes.CDLL) -> None:
        self.lib = lib

    def abi_version(self) -> int:
        """``axiom_abi_version()`` of the library."""
        return int(self.lib.axiom_abi_version())

    def cpu_isa(self) -> int:
        """The micro-kernel level in use (0 generic, 1 AVX2, 2 AVX-512)."""
        return int(self.lib.axiom_cpu_isa())

    def cpu_isa_supported(self) -> int:
        """The best level the CPU (and the build) supports."""
        return int(self.lib.axiom_cpu_isa_supported())

    def set_cpu_isa(self, level: int) -> int:
        """Cap the micro-kernels at ``level`` (-1: the default again); returns the status code."""
        return int(self.lib.axiom_set_cpu_isa(level))

    def gemm_batched(self, a: np.ndarray, b: np.ndarray, c: np.ndarray, alpha: float = 1.0, beta: float = 0.0) -> int:
        """``c[i] = alpha * a[i] @ b[i] + beta * c[i]`` for 3-D arrays (strided, transposed or broadcast views)."""
        batch, m, n = c.shape
        k = a.shape[2]
        if a.shape[:2] != (batch, m) or b.shape != (batch, k, n):
            raise ValueError(
                f"gemm: a is {a.shape}, b is {b.shape}, c is {c.shape}; expected a (batch, m, k), b (batch, k, n) and "
                "c (batch, m, n)"
            )
        sfx = _suffix(a, b, c)
        item = c.itemsize
        ta, lda = _layout(m, k, a.strides[1], a.strides[2], item, True, "a")
        tb, ldb = _layout(k, n, b.strides[1], b.strides[2], item, True, "b")
        _, ldc = _layout(m, n, c.strides[1], c.strides[2], item, False, "c")
        sa, sb, sc = (_batch_stride(batch, x.strides[0], item, nm) for x, nm in ((a, "a"), (b, "b"), (c, "c")))
        fn = getattr(self.lib, f"axiom_gemm_batched_{sfx}")
        return int(fn(batch, ta, tb, m, n, k, alpha, _address(a), lda, sa, _address(b), ldb, sb, beta, _address(c),
                      ldc, sc))  # fmt: skip

    def gemm(self, a: np.ndarray, b: np.ndarray, c: np.ndarray, alpha: float = 1.0, beta: float = 0.0) -> int:
        """``c = alpha * a @ b + beta * c`` for 2-D views (strided or transposed ``a`` / ``b`` read in place)."""
        (m, k), n = a.shape, c.shape[1]
        if c.shape[0] != m or b.shape != (k, n):
            raise ValueError(
                f"gemm: a is {a.shape}, b is {b.shape}, c is {c.shape}; expected a (m, k), b (k, n) and c (m, n)"
            )
        sfx = _suffix(a, b, c)
        item = c.itemsize
        ta, lda = _layout(m, k, *a.strides, item, True, "a")
        tb, ldb = _layout(k, n, *b.strides, item, True, "b")
        _, ldc = _layout(m, n, *c.strides, item, False, "c")
        fn = getattr(self.lib, f"axiom_gemm_{sfx}")
        return int(fn(ta, tb, m, n, k, alpha, _address(a), lda, _address(b), ldb, beta, _address(c), ldc))

    def conv2d_nhwc(self, x: np.ndarray, w: np.ndarray, bias: np.ndarray | None, y: np.ndarray, stride: Any,
                    padding: Any, dilation: Any, groups: int) -> int:  # fmt: skip
        """``y[...] = conv2d(x, w) + bias`` (NHWC, C-contiguous, one float dtype); returns the status code."""
        _contiguous(x, w, bias, y)
        shape = _conv_shape(x.shape, w.shape, y.shape, stride, padding, dilation, groups)
        if bias is not None and bias.shape != (w.shape[3],):
            raise ValueError(f"conv2d: bias has shape {bias.shape}; expected ({w.shape[3]},) (C_out)")
        fn = getattr(self.lib, f"axiom_conv2d_nhwc_{_suffix(x, w, bias, y)}")
        return int(fn(ctypes.byref(shape), _address(x), _address(w), _address(bias), _address(y)))

    def conv2d_backward_input_nhwc(self, dy: np.ndarray, w: np.ndarray, dx: np.ndarray, stride: Any, padding: Any,
                                   dilation: Any, groups: int) -> int:  # fmt: skip
        """``dx[...]`` = gradient of ``sum(dy * conv2d(x, w))`` with respect to ``x``; returns the status code."""
        _contiguous(dy, w, dx)
        shape = _conv_shape(dx.shape, w.shape, dy.shape, stride, padding, dilation, groups)
        fn = getattr(self.lib, f"axiom_conv2d_backward_input_nhwc_{_suffix(dy, w, dx)}")
        return int(fn(ctypes.byref(shape), _address(dy), _address(w), _address(dx)))

    def conv2d_backward_weight_nhwc(self, x: np.ndarray, dy: np.ndarray, dw: np.ndarray, dbias: np.ndarray | None,
                                    stride: Any, padding: Any, dilation: Any, groups: int) -> int:  # fmt: skip
        """``dw[...]`` (and ``dbias[...]`` unless ``None``) = weight and bias gradients; returns the status code."""
        _contiguous(x, dy, dw, dbias)
        shape = _conv_shape(x.shape, dw.shape, dy.shape, stride, padding, dilation, groups)
        if dbias is not None and dbias.shape != (dw.shape[3],):
            raise ValueError(f"conv2d: dbias has shape {dbias.shape}; expected ({dw.shape[3]},) (C_out)")
        fn = getattr(self.lib, f"axiom_conv2d_backward_weight_nhwc_{_suffix(x, dy, dw, dbias)}")
        return int(fn(ctypes.byref(shape), _address(x), _address(dy), _address(dw), _address(dbias)))
