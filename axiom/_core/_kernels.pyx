# cython: language_level=3, boundscheck=False, wraparound=False, initializedcheck=False, embedsignature=True
"""Cython wrappers of the C kernels in ``csrc/`` (the ABI of ``csrc/axiom_kernels.h``).

Each wrapper takes C-contiguous typed memoryviews, calls the C kernel with the GIL
released and returns the kernel's status code (0 = ``AXIOM_OK``) unchanged; turning a
code into an exception is the caller's job (:func:`axiom.backends.abi.error_for`).

The GEMM and convolution wrappers (C library extensions of ``csrc/gemm.c`` and
``csrc/conv.c``) take float32 or float64 memoryviews (one fused signature each); the GEMM
accepts strided and transposed 2-D views without copying (a unit stride on either axis).

Example:
    >>> import numpy as np
    >>> from axiom._core import _kernels
    >>> a = np.ones((2, 3), np.float32); b = np.ones((3, 4), np.float32)
    >>> c = np.empty((2, 4), np.float32)
    >>> _kernels.matmul_f32(a, b, c), float(c[0, 0])
    (0, 3.0)
    >>> c3 = np.empty((1, 4, 2), np.float32)
    >>> _kernels.gemm_batched(b.T[None], a.T[None], c3), float(c3[0, 3, 1])  # (b^T a^T) = (a b)^T
    (0, 3.0)
"""

from libc.stdint cimport int32_t, int64_t

from axiom._core.kernels cimport (
    AXIOM_ABI_VERSION,
    AXIOM_ERR_NULL,
    AXIOM_ERR_NOMEM,
    AXIOM_ERR_SIZE,
    AXIOM_OK,
    axiom_abi_version,
    axiom_conv2d_backward_input_nhwc_f32,
    axiom_conv2d_backward_input_nhwc_f64,
    axiom_conv2d_backward_weight_nhwc_f32,
    axiom_conv2d_backward_weight_nhwc_f64,
    axiom_conv2d_nhwc_f32,
    axiom_conv2d_nhwc_f64,
    axiom_conv2d_shape,
    axiom_cpu_isa,
    axiom_cpu_isa_supported,
    axiom_gemm_batched_f32,
    axiom_gemm_batched_f64,
    axiom_matmul_f32,
    axiom_matmul_f64,
    axiom_set_cpu_isa,
)

#: ABI version the wrappers were compiled against (``AXIOM_ABI_VERSION``).
ABI_VERSION = AXIOM_ABI_VERSION
OK = AXIOM_OK
ERR_NULL = AXIOM_ERR_NULL
ERR_SIZE = AXIOM_ERR_SIZE
ERR_NOMEM = AXIOM_ERR_NOMEM
#: Micro-kernel instruction-set levels (``cpu_isa``): portable C, AVX2+FMA, AVX-512.
CPU_LEVELS = ("generic", "avx2", "avx512")

ctypedef fused real:
    float
    double


def abi_version() -> int:
    """Return ``axiom_abi_version()`` of the linked C kernels."""
    return axiom_abi_version()


cdef inline void _check_shapes(Py_ssize_t m, Py_ssize_t k, Py_ssize_t kb, Py_ssize_t n,
                               Py_ssize_t mc, Py_ssize_t nc) except *:
    if kb != k or mc != m or nc != n:
        raise ValueError(
            f"matmul: a is ({m}, {k}), b is ({kb}, {n}), c is ({mc}, {nc}); "
            f"expected b.shape[0] == a.shape[1] and c.shape == (a.shape[0], b.shape[1])"
        )


def matmul_f32(const float[:, ::1] a, const float[:, ::1] b, float[:, ::1] c) -> int:
    """``c[...] = a @ b`` for C-contiguous 2-D float32 arrays; returns the status code."""
    _check_shapes(a.shape[0], a.shape[1], b.shape[0], b.shape[1], c.shape[0], c.shape[1])
    cdef int64_t m = a.shape[0], k = a.shape[1], n = b.shape[1]
    cdef const float *pa = &a[0, 0] if m * k > 0 else NULL
    cdef const float *pb = &b[0, 0] if k * n > 0 else NULL
    cdef float *pc = &c[0, 0] if m * n > 0 else NULL
    cdef int code
    with nogil:
        code = axiom_matmul_f32(pa, pb, pc, m, k, n)
    return code


def matmul_f64(const double[:, ::1] a, const double[:, ::1] b, double[:, ::1] c) -> int:
    """``c[...] = a @ b`` for C-contiguous 2-D float64 arrays; returns the status code."""
    _check_shapes(a.shape[0], a.shape[1], b.shape[0], b.shape[1], c.shape[0], c.shape[1])
    cdef int64_t m = a.shape[0], k = a.shape[1], n = b.shape[1]
    cdef const double *pa = &a[0, 0] if m * k > 0 else NULL
    cdef const double *pb = &b[0, 0] if k * n > 0 else NULL
    cdef double *pc = &c[0, 0] if m * n > 0 else NULL
    cdef int code
    with nogil:
        code = axiom_matmul_f64(pa, pb, pc, m, k, n)
    return code


# -- instruction-set dispatch -------------------------------------------------------------------


def cpu_isa() -> int:
    """Micro-kernel level in use: 0 generic C, 1 AVX2+FMA, 2 AVX-512 (see ``CPU_LEVELS``)."""
    return axiom_cpu_isa()


def cpu_isa_supported() -> int:
    """Best micro-kernel level this CPU (and OS) supports."""
    return axiom_cpu_isa_supported()


def set_cpu_isa(int level) -> int:
    """Use micro-kernels of at most ``level`` (capped to the CPU), or -1 for the default; returns the status code."""
    return axiom_set_cpu_isa(level)


# -- GEMM -----------------------------------------------------------------------------------------


cdef int _layout(Py_ssize_t rows, Py_ssize_t cols, Py_ssize_t s0, Py_ssize_t s1, Py_ssize_t item, bint allow_trans,
                 int32_t *trans, int64_t *ld, str name) except -1:
    """(trans, ld) of a rows x cols matrix with byte strides (s0, s1), or raise ValueError."""
    if rows == 0 or cols == 0:
        trans[0] = 0
        ld[0] = cols if cols > 1 else 1
        return 0
    if s0 % item or s1 % item:
        raise ValueError(f"gemm: {name} has strides {(s0, s1)} that are not multiples of its item size {item}")
    s0 //= item
    s1 //= item
    if (cols == 1 or s1 == 1) and (rows == 1 or s0 >= cols):
        trans[0] = 0
        ld[0] = s0 if rows > 1 else cols
        return 0
    if allow_trans and (rows == 1 or s0 == 1) and (cols == 1 or s1 >= rows):
        trans[0] = 1
        ld[0] = s1 if cols > 1 else rows
        return 0
    raise ValueError(
        f"gemm: {name} ({rows} x {cols}) has element strides {(s0, s1)}; expected a unit stride on "
        f"{'one axis' if allow_trans else 'the last axis'} and non-overlapping rows (make it contiguous first)"
    )


cdef int64_t _batch_stride(Py_ssize_t batch, Py_ssize_t stride, Py_ssize_t item, str name) except -1:
    if batch <= 1:
        return 0
    if stride < 0 or stride % item:
        raise ValueError(f"gemm: {name} has batch stride {stride} bytes; expected a non-negative multiple of {item}")
    return stride // item


def gemm_batched(const real[:, :, :] a, const real[:, :, :] b, real[:, :, :] c, double alpha=1.0,
                 double beta=0.0) -> int:
    """``c[i] = alpha * a[i] @ b[i] + beta * c[i]`` for 3-D float32 or float64 arrays; returns the status code.

    ``a`` and ``b`` may be strided or transposed views (a unit stride on either of the last
    two axes) and broadcast along the batch axis (stride 0); ``c`` needs a unit stride on its
    last axis. ``beta == 0`` ignores the old content of ``c``. Raises ``ValueError`` for
    mismatched shapes or unsupported strides and ``TypeError`` for mixed dtypes.
    """
    cdef Py_ssize_t batch = c.shape[0], m = c.shape[1], n = c.shape[2], k = a.shape[2]
    if a.shape[0] != batch or a.shape[1] != m or b.shape[0] != batch or b.shape[1] != k or b.shape[2] != n:
        raise ValueError(
            f"gemm: a is {tuple(a.shape)[:3]}, b is {tuple(b.shape)[:3]}, c is {tuple(c.shape)[:3]}; "
            f"expected a (batch, m, k), b (batch, k, n) and c (batch, m, n)"
        )
    cdef Py_ssize_t item = sizeof(real)
    cdef int32_t ta, tb, tc
    cdef int64_t lda, ldb, ldc
    _layout(m, k, a.strides[1], a.strides[2], item, True, &ta, &lda, "a")
    _layout(k, n, b.strides[1], b.strides[2], item, True, &tb, &ldb, "b")
    _layout(m, n, c.strides[1], c.strides[2], item, False, &tc, &ldc, "c")
    cdef int64_t sa = _batch_stride(batch, a.strides[0], item, "a")
    cdef int64_t sb = _batch_stride(batch, b.strides[0], item, "b")
    cdef int64_t sc = _batch_stride(batch, c.strides[0], item, "c")
    cdef const real *pa = &a[0, 0, 0] if batch * m * k > 0 else NULL
    cdef const real *pb = &b[0, 0, 0] if batch * k * n > 0 else NULL
    cdef real *pc = &c[0, 0, 0] if batch * m * n > 0 else NULL
    cdef int code
    with nogil:
        if real is float:
            code = axiom_gemm_batched_f32(batch, ta, tb, m, n, k, <float>alpha, pa, lda, sa, pb, ldb, sb,
                                          <float>beta, pc, ldc, sc)
        else:
            code = axiom_gemm_batched_f64(batch, ta, tb, m, n, k, alpha, pa, lda, sa, pb, ldb, sb, beta, pc, ldc, sc)
    return code


def gemm(const real[:, :] a, const real[:, :] b, real[:, :] c, double alpha=1.0, double beta=0.0) -> int:
    """``c = alpha * a @ b + beta * c`` for 2-D float32 or float64 views; returns the status code.

    Like :func:`gemm_batched` for one product (strided and transposed ``a``/``b`` are read in
    place; ``c`` needs a unit stride on its last axis).
    """
    cdef Py_ssize_t m = c.shape[0], n = c.shape[1], k = a.shape[1]
    if a.shape[0] != m or b.shape[0] != k or b.shape[1] != n:
        raise ValueError(
            f"gemm: a is {tuple(a.shape)[:2]}, b is {tuple(b.shape)[:2]}, c is {tuple(c.shape)[:2]}; "
            f"expected a (m, k), b (k, n) and c (m, n)"
        )
    cdef Py_ssize_t item = sizeof(real)
    cdef int32_t ta, tb, tc
    cdef int64_t lda, ldb, ldc
    _layout(m, k, a.strides[0], a.strides[1], item, True, &ta, &lda, "a")
    _layout(k, n, b.strides[0], b.strides[1], item, True, &tb, &ldb, "b")
    _layout(m, n, c.strides[0], c.strides[1], item, False, &tc, &ldc, "c")
    cdef const real *pa = &a[0, 0] if m * k > 0 else NULL
    cdef const real *pb = &b[0, 0] if k * n > 0 else NULL
    cdef real *pc = &c[0, 0] if m * n > 0 else NULL
    cdef int code
    with nogil:
        if real is float:
            code = axiom_gemm_batched_f32(1, ta, tb, m, n, k, <float>alpha, pa, lda, 0, pb, ldb, 0, <float>beta, pc,
                                          ldc, 0)
        else:
            code = axiom_gemm_batched_f64(1, ta, tb, m, n, k, alpha, pa, lda, 0, pb, ldb, 0, beta, pc, ldc, 0)
    return code


# -- conv2d ------------------------------------------------------------------------------------


cdef axiom_conv2d_shape _conv_shape(tuple x_shape, tuple w_shape, tuple y_shape, stride, padding, dilation,
                                    int64_t groups) except *:
    cdef axiom_conv2d_shape s
    s.n, s.h, s.w, s.c_in = x_shape
    s.k_h, s.k_w = w_shape[0], w_shape[1]
    s.c_out = w_shape[3]
    s.out_h, s.out_w = y_shape[1], y_shape[2]
    if y_shape[0] != s.n or y_shape[3] != s.c_out or w_shape[2] * groups != s.c_in:
        raise ValueError(
            f"conv2d: x {x_shape}, w {w_shape} and y {y_shape} do not fit (groups={groups}); expected x (N, H, W, C_in), "
            "w (kH, kW, C_in / groups, C_out) and y (N, H_out, W_out, C_out)"
        )
    s.stride_h, s.stride_w = stride
    (s.pad_top, s.pad_bottom), (s.pad_left, s.pad_right) = padding
    s.dilation_h, s.dilation_w = dilation
    s.groups = groups
    return s


def conv2d_nhwc(const real[:, :, :, ::1] x, const real[:, :, :, ::1] w, bias, real[:, :, :, ::1] y, stride, padding,
                dilation, int64_t groups) -> int:
    """``y[...] = conv2d(x, w) + bias`` (NHWC, C-contiguous, one float dtype); returns the status code.

    ``bias`` is ``None`` or a contiguous 1-D array of ``C_out`` elements of the same dtype;
    ``stride``/``dilation`` are ``(h, w)`` pairs and ``padding`` is ``((top, bottom), (left, right))``.
    """
    cdef axiom_conv2d_shape s = _conv_shape(tuple(x.shape)[:4], tuple(w.shape)[:4], tuple(y.shape)[:4], stride,
                                            padding, dilation, groups)
    cdef const real[::1] bv
    cdef const real *pbias = NULL
    if bias is not None:
        bv = bias
        if bv.shape[0] != s.c_out:
            raise ValueError(f"conv2d: bias has {bv.shape[0]} elements; expected C_out = {s.c_out}")
        if s.c_out > 0:
            pbias = &bv[0]
    cdef const real *px = &x[0, 0, 0, 0] if x.size > 0 else NULL
    cdef const real *pw = &w[0, 0, 0, 0] if w.size > 0 else NULL
    cdef real *py = &y[0, 0, 0, 0] if y.size > 0 else NULL
    cdef int code
    with nogil:
        if real is float:
            code = axiom_conv2d_nhwc_f32(&s, px, pw, pbias, py)
        else:
            code = axiom_conv2d_nhwc_f64(&s, px, pw, pbias, py)
    return code


def conv2d_backward_input_nhwc(const real[:, :, :, ::1] dy, const real[:, :, :, ::1] w, real[:, :, :, ::1] dx, stride,
                               padding, dilation, int64_t groups) -> int:
    """``dx[...]`` = gradient of ``sum(dy * conv2d(x, w))`` with respect to ``x`` (shape of ``dx``); returns the code."""
    cdef axiom_conv2d_shape s = _conv_shape(tuple(dx.shape)[:4], tuple(w.shape)[:4], tuple(dy.shape)[:4], stride,
                                            padding, dilation, groups)
    cdef const real *pdy = &dy[0, 0, 0, 0] if dy.size > 0 else NULL
    cdef const real *pw = &w[0, 0, 0, 0] if w.size > 0 else NULL
    cdef real *pdx = &dx[0, 0, 0, 0] if dx.size > 0 else NULL
    cdef int code
    with nogil:
        if real is float:
            code = axiom_conv2d_backward_input_nhwc_f32(&s, pdy, pw, pdx)
        else:
            code = axiom_conv2d_backward_input_nhwc_f64(&s, pdy, pw, pdx)
    return code


def conv2d_backward_weight_nhwc(const real[:, :, :, ::1] x, const real[:, :, :, ::1] dy, real[:, :, :, ::1] dw,
                                dbias, stride, padding, dilation, int64_t groups) -> int:
    """``dw[...]`` (and ``dbias[...]`` unless ``None``) = gradients with respect to the weights and bias; returns the code."""
    cdef axiom_conv2d_shape s = _conv_shape(tuple(x.shape)[:4], tuple(dw.shape)[:4], tuple(dy.shape)[:4], stride,
                                            padding, dilation, groups)
    cdef real[::1] bv
    cdef real *pbias = NULL
    if dbias is not None:
        bv = dbias
        if bv.shape[0] != s.c_out:
            raise ValueError(f"conv2d: dbias has {bv.shape[0]} elements; expected C_out = {s.c_out}")
        if s.c_out > 0:
            pbias = &bv[0]
    cdef const real *px = &x[0, 0, 0, 0] if x.size > 0 else NULL
    cdef const real *pdy = &dy[0, 0, 0, 0] if dy.size > 0 else NULL
    cdef real *pdw = &dw[0, 0, 0, 0] if dw.size > 0 else NULL
    cdef int code
    with nogil:
        if real is float:
            code = axiom_conv2d_backward_weight_nhwc_f32(&s, px, pdy, pdw, pbias)
        else:
            code = axiom_conv2d_backward_weight_nhwc_f64(&s, px, pdy, pdw, pbias)
    return code
