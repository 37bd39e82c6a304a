# cython: language_level=3, boundscheck=False, wraparound=False, initializedcheck=False, embedsignature=True
"""Cython wrappers of the NN kernels in ``csrc/axiom_kernels_nn.h`` (norms, pooling, softmax,
activations, attention, RoPE and the backward kernels).

Every C kernel ``axiom_<name>_f32`` / ``_f64`` has a wrapper ``<name>_f32`` / ``<name>_f64``
with the same arguments in the same order: arrays are flat C-contiguous typed memoryviews
(``None`` where the C pointer may be ``NULL``: optional arrays and empty ones), sizes are
integers. A wrapper raises ``ValueError`` if a buffer is shorter than the sizes say (so no
call through it can read or write out of bounds), otherwise calls the kernel with the GIL
released and returns its status code unchanged (0 = ``AXIOM_OK``); turning a code into an
exception is the caller's job (:mod:`axiom.backends.c_kernels`).

Example:
    >>> import numpy as np
    >>> from axiom._core import _nn
    >>> x = np.array([1.0, 2.0, 3.0], np.float32); y = np.empty_like(x)
    >>> _nn.softmax_f32(x, y, 1, 3, 1, 0), [round(float(v), 3) for v in y]
    (0, [0.09, 0.245, 0.665])
    >>> _nn.softmax_f32(x, y, 1, 4, 1, 0)
    Traceback (most recent call last):
    ...
    ValueError: softmax_f32: x has 3 elements, the sizes need 4
"""

from libc.stdint cimport INT64_MAX, int64_t

from axiom._core.nn cimport *

#: Number of activation codes (``AXIOM_ACT_COUNT``); code i is ``axiom.backends.base.ACTIVATIONS[i]``.
ACT_COUNT = AXIOM_ACT_COUNT

ctypedef fused real:
    float
    double


cdef int64_t _prod(int64_t a, int64_t b=1, int64_t c=1, int64_t d=1) noexcept nogil:
    """a * b * c * d, or -1 if a factor is negative or the product overflows (the kernel refuses those)."""
    cdef int64_t f[4]
    cdef int64_t p = 1
    cdef int i
    f[0] = a
    f[1] = b
    f[2] = c
    f[3] = d
    for i in range(4):
        if f[i] < 0:
            return -1
    for i in range(4):
        if f[i] == 0:
            return 0
    for i in range(4):
        if p > INT64_MAX // f[i]:
            return -1
        p *= f[i]
    return p


cdef int64_t _extent(int64_t size, int64_t k, int64_t s, int64_t p0, int64_t p1, int64_t dil) noexcept nogil:
    """Pooling output extent, or -1 for arguments the kernel refuses."""
    if size < 0 or k < 1 or s < 1 or dil < 1 or p0 < 0 or p1 < 0:
        return -1
    if size > INT64_MAX // 4 or p0 > INT64_MAX // 4 or p1 > INT64_MAX // 4 or k - 1 > (INT64_MAX // 4) // dil:
        return -1
    cdef int64_t span = dil * (k - 1) + 1
    cdef int64_t padded = size + p0 + p1
    return 0 if padded < span else (padded - span) // s + 1


cdef int _need(str fn, str name, object arr, Py_ssize_t have, int64_t count) except -1:
    if count >= 0 and have < count:
        raise ValueError(f"{fn}: {name} has {have} elements, the sizes need {count}")
    return 0


cdef inline Py_ssize_t _len_c(const real[::1] a) noexcept nogil:
    return 0 if a is None else a.shape[0]


cdef inline const real *_cp(const real[::1] a) noexcept nogil:
    return NULL if a is None or a.shape[0] == 0 else &a[0]


cdef inline real *_mp(real[::1] a) noexcept nogil:
    return NULL if a is None or a.shape[0] == 0 else &a[0]


cdef inline const double *_dp(const double[::1] a) noexcept nogil:
    return NULL if a is None or a.shape[0] == 0 else &a[0]



cdef int64_t _pool_out(int64_t n, int64_t h, int64_t w, int64_t c, int64_t kh, int64_t kw, int64_t sh, int64_t sw,
                       int64_t pt, int64_t pb, int64_t pl, int64_t pr, int64_t dh, int64_t dw) noexcept nogil:
    cdef int64_t ho = _extent(h, kh, sh, pt, pb, dh)
    cdef int64_t wo = _extent(w, kw, sw, pl, pr, dw)
    if ho < 0 or wo < 0:
        return -1
    return _prod(n, ho, wo, c)


cdef int64_t _mask_span(int64_t b, int64_t h, int64_t lq, int64_t lk, int64_t sb, int64_t sh, int64_t sq,
                        int64_t sk) noexcept nogil:
    """1 + the offset of the last mask element, or -1 (the kernel refuses those arguments)."""
    cdef int64_t ext[4]
    cdef int64_t st[4]
    cdef int64_t span = 0
    cdef int i
    ext[0] = b
    ext[1] = h
    ext[2] = lq
    ext[3] = lk
    st[0] = sb
    st[1] = sh
    st[2] = sq
    st[3] = sk
    for i in range(4):
        if ext[i] < 0 or st[i] < 0:
            return -1
        if ext[i] == 0:
            return 0
    for i in range(4):
        if st[i] > 0 and ext[i] - 1 > (INT64_MAX // 2) // st[i]:
            return -1
        span += (ext[i] - 1) * st[i]
        if span > INT64_MAX // 2:
            return -1
    return span + 1



cdef int _batchnorm(str fn, const real[::1] x, const real[::1] mean, const real[::1] var, const real[::1] gamma, const real[::1] beta, real[::1] y, int64_t rows, int64_t c, double eps) except? -1:
    _need(fn, "x", x, _len_c(x), _prod(rows, c))
    _need(fn, "y", y, (0 if y is None else y.shape[0]), _prod(rows, c))
    _need(fn, "mean", mean, _len_c(mean), _prod(c))
    _need(fn, "var", var, _len_c(var), _prod(c))
    _need(fn, "gamma", gamma, _len_c(gamma), _prod(c) if gamma is not None else 0)
    _need(fn, "beta", beta, _len_c(beta), _prod(c) if beta is not None else 0)
    cdef int code
    if real is float:
        with nogil:
            code = axiom_batchnorm_f32(_cp(x), _cp(mean), _cp(var), _cp(gamma), _cp(beta), _mp(y), rows, c, eps)
    else:
        with nogil:
            code = axiom_batchnorm_f64(_cp(x), _cp(mean), _cp(var), _cp(gamma), _cp(beta), _mp(y), rows, c, eps)
    return code


def batchnorm_f32(const float[::1] x, const float[::1] mean, const float[::1] var, const float[::1] gamma, const float[::1] beta, float[::1] y, int64_t rows, int64_t c, double eps) -> int:
    """``axiom_batchnorm_f32`` on flat float buffers; returns the status code."""
    return _batchnorm[float]("batchnorm_f32", x, mean, var, gamma, beta, y, rows, c, eps)


def batchnorm_f64(const double[::1] x, const double[::1] mean, const double[::1] var, const double[::1] gamma, const double[::1] beta, double[::1] y, int64_t rows, int64_t c, double eps) -> int:
    """``axiom_batchnorm_f64`` on flat double buffers; returns the status code."""
    return _batchnorm[double]("batchnorm_f64", x, mean, var, gamma, beta, y, rows, c, eps)


cdef int _layernorm(str fn, const real[::1] x, const real[::1] gamma, const real[::1] beta, real[::1] y, int64_t rows, int64_t n, double eps) except? -1:
    _need(fn, "x", x, _len_c(x), _prod(rows, n))
    _need(fn, "y", y, (0 if y is None else y.shape[0]), _prod(rows, n))
    _need(fn, "gamma", gamma, _len_c(gamma), _prod(n) if gamma is not None else 0)
    _need(fn, "beta", beta, _len_c(beta), _prod(n) if beta is not None else 0)
    cdef int code
    if real is float:
        with nogil:
            code = axiom_layernorm_f32(_cp(x), _cp(gamma), _cp(beta), _mp(y), rows, n, eps)
    else:
        with nogil:
            code = axiom_layernorm_f64(_cp(x), _cp(gamma), _cp(beta), _mp(y), rows, n, eps)
    return code


def layernorm_f32(const float[::1] x, const float[::1] gamma, const float[::1] beta, float[::1] y, int64_t rows, int64_t n, double eps) -> int:
    """``axiom_layernorm_f32`` on flat float buffers; returns the status code."""
    return _layernorm[float]("layernorm_f32", x, gamma, beta, y, rows, n, eps)


def layernorm_f64(const double[::1] x, const double[::1] gamma, const double[::1] beta, double[::1] y, int64_t rows, int64_t n, double eps) -> int:
    """``axiom_layernorm_f64`` on flat double buffers; returns the status code."""
    return _layernorm[double]("layernorm_f64", x, gamma, beta, y, rows, n, eps)


cdef int _rmsnorm(str fn, const real[::1] x, const real[::1] gamma, real[::1] y, int64_t rows, int64_t n, double eps) except? -1:
    _need(fn, "x", x, _len_c(x), _prod(rows, n))
    _need(fn, "y", y, (0 if y is None else y.shape[0]), _prod(rows, n))
    _need(fn, "gamma", gamma, _len_c(gamma), _prod(n) if gamma is not None else 0)
    cdef int code
    if real is float:
        with nogil:
            code = axiom_rmsnorm_f32(_cp(x), _cp(gamma), _mp(y), rows, n, eps)
    else:
        with nogil:
            code = axiom_rmsnorm_f64(_cp(x), _cp(gamma), _mp(y), rows, n, eps)
    return code


def rmsnorm_f32(const float[::1] x, const float[::1] gamma, float[::1] y, int64_t rows, int64_t n, double eps) -> int:
    """``axiom_rmsnorm_f32`` on flat float buffers; returns the status code."""
    return _rmsnorm[float]("rmsnorm_f32", x, gamma, y, rows, n, eps)


def rmsnorm_f64(const double[::1] x, const double[::1] gamma, double[::1] y, int64_t rows, int64_t n, double eps) -> int:
    """``axiom_rmsnorm_f64`` on flat double buffers; returns the status code."""
    return _rmsnorm[double]("rmsnorm_f64", x, gamma, y, rows, n, eps)


cdef int _batchnorm_backward(str fn, const real[::1] dy, const real[::1] x, const real[::1] mean, const real[::1] var, const real[::1] gamma, real[::1] dx, real[::1] dgamma, real[::1] dbeta, int64_t rows, int64_t c, double eps) except? -1:
    _need(fn, "dy", dy, _len_c(dy), _prod(rows, c))
    _need(fn, "x", x, _len_c(x), _prod(rows, c))
    _need(fn, "dx", dx, (0 if dx is None else dx.shape[0]), _prod(rows, c))
    _need(fn, "mean", mean, _len_c(mean), _prod(c))
    _need(fn, "var", var, _len_c(var), _prod(c))
    _need(fn, "gamma", gamma, _len_c(gamma), _prod(c) if gamma is not None else 0)
    _need(fn, "dgamma", dgamma, (0 if dgamma is None else dgamma.shape[0]), _prod(c) if dgamma is not None else 0)
    _need(fn, "dbeta", dbeta, (0 if dbeta is None else dbeta.shape[0]), _prod(c) if dbeta is not None else 0)
    cdef int code
    if real is float:
        with nogil:
            code = axiom_batchnorm_backward_f32(_cp(dy), _cp(x), _cp(mean), _cp(var), _cp(gamma), _mp(dx), _mp(dgamma), _mp(dbeta), rows, c, eps)
    else:
        with nogil:
            code = axiom_batchnorm_backward_f64(_cp(dy), _cp(x), _cp(mean), _cp(var), _cp(gamma), _mp(dx), _mp(dgamma), _mp(dbeta), rows, c, eps)
    return code


def batchnorm_backward_f32(const float[::1] dy, const float[::1] x, const float[::1] mean, const float[::1] var, const float[::1] gamma, float[::1] dx, float[::1] dgamma, float[::1] dbeta, int64_t rows, int64_t c, double eps) -> int:
    """``axiom_batchnorm_backward_f32`` on flat float buffers; returns the status code."""
    return _batchnorm_backward[float]("batchnorm_backward_f32", dy, x, mean, var, gamma, dx, dgamma, dbeta, rows, c, eps)


def batchnorm_backward_f64(const double[::1] dy, const double[::1] x, const double[::1] mean, const double[::1] var, const double[::1] gamma, double[::1] dx, double[::1] dgamma, double[::1] dbeta, int64_t rows, int64_t c, double eps) -> int:
    """``axiom_batchnorm_backward_f64`` on flat double buffers; returns the status code."""
    return _batchnorm_backward[double]("batchnorm_backward_f64", dy, x, mean, var, gamma, dx, dgamma, dbeta, rows, c, eps)


cdef int _layernorm_backward(str fn, const real[::1] dy, const real[::1] x, const real[::1] gamma, real[::1] dx, real[::1] dgamma, real[::1] dbeta, int64_t rows, int64_t n, double eps) except? -1:
    _need(fn, "dy", dy, _len_c(dy), _prod(rows, n))
    _need(fn, "x", x, _len_c(x), _prod(rows, n))
    _need(fn, "dx", dx, (0 if dx is None else dx.shape[0]), _prod(rows, n))
    _need(fn, "gamma", gamma, _len_c(gamma), _prod(n) if gamma is not None else 0)
    _need(fn, "dgamma", dgamma, (0 if dgamma is None else dgamma.shape[0]), _prod(n) if dgamma is not None else 0)
    _need(fn, "dbeta", dbeta, (0 if dbeta is None else dbeta.shape[0]), _prod(n) if dbeta is not None else 0)
    cdef int code
    if real is float:
        with nogil:
            code = axiom_layernorm_backward_f32(_cp(dy), _cp(x), _cp(gamma), _mp(dx), _mp(dgamma), _mp(dbeta), rows, n, eps)
    else:
        with nogil:
            code = axiom_layernorm_backward_f64(_cp(dy), _cp(x), _cp(gamma), _mp(dx), _mp(dgamma), _mp(dbeta), rows, n, eps)
    return code


def layernorm_backward_f32(const float[::1] dy, const float[::1] x, const float[::1] gamma, float[::1] dx, float[::1] dgamma, float[::1] dbeta, int64_t rows, int64_t n, double eps) -> int:
    """``axiom_layernorm_backward_f32`` on flat float buffers; returns the status code."""
    return _layernorm_backward[float]("layernorm_backward_f32", dy, x, gamma, dx, dgamma, dbeta, rows, n, eps)


def layernorm_backward_f64(const double[::1] dy, const double[::1] x, const double[::1] gamma, double[::1] dx, double[::1] dgamma, double[::1] dbeta, int64_t rows, int64_t n, double eps) -> int:
    """``axiom_layernorm_backward_f64`` on flat double buffers; returns the status code."""
    return _layernorm_backward[double]("layernorm_backward_f64", dy, x, gamma, dx, dgamma, dbeta, rows, n, eps)


cdef int _rmsnorm_backward(str fn, const real[::1] dy, const real[::1] x, const real[::1] gamma, real[::1] dx, real[::1] dgamma, int64_t rows, int64_t n, double eps) except? -1:
    _need(fn, "dy", dy, _len_c(dy), _prod(rows, n))
    _need(fn, "x", x, _len_c(x), _prod(rows, n))
    _need(fn, "dx", dx, (0 if dx is None else dx.shape[0]), _prod(rows, n))
    _need(fn, "gamma", gamma, _len_c(gamma), _prod(n) if gamma is not None else 0)
    _need(fn, "dgamma", dgamma, (0 if dgamma is None else dgamma.shape[0]), _prod(n) if dgamma is not None else 0)
    cdef int code
    if real is float:
        with nogil:
            code = axiom_rmsnorm_backward_f32(_cp(dy), _cp(x), _cp(gamma), _mp(dx), _mp(dgamma), rows, n, eps)
    else:
        with nogil:
            code = axiom_rmsnorm_backward_f64(_cp(dy), _cp(x), _cp(gamma), _mp(dx), _mp(dgamma), rows, n, eps)
    return code


def rmsnorm_backward_f32(const float[::1] dy, const float[::1] x, const float[::1] gamma, float[::1] dx, float[::1] dgamma, int64_t rows, int64_t n, double eps) -> int:
    """``axiom_rmsnorm_backward_f32`` on flat float buffers; returns the status code."""
    return _rmsnorm_backward[float]("rmsnorm_backward_f32", dy, x, gamma, dx, dgamma, rows, n, eps)


def rmsnorm_backward_f64(const double[::1] dy, const double[::1] x, const double[::1] gamma, double[::1] dx, double[::1] dgamma, int64_t rows, int64_t n, double eps) -> int:
    """``axiom_rmsnorm_backward_f64`` on flat double buffers; returns the status code."""
    return _rmsnorm_backward[double]("rmsnorm_backward_f64", dy, x, gamma, dx, dgamma, rows, n, eps)


cdef int _max_pool2d(str fn, const real[::1] x, real[::1] y, int64_t n, int64_t h, int64_t w, int64_t c, int64_t kh, int64_t kw, int64_t sh, int64_t sw, int64_t pt, int64_t pb, int64_t pl, int64_t pr, int64_t dh, int64_t dw) except? -1:
    _need(fn, "x", x, _len_c(x), _prod(n, h, w, c))
    _need(fn, "y", y, (0 if y is None else y.shape[0]), _pool_out(n, h, w, c, kh, kw, sh, sw, pt, pb, pl, pr, dh, dw))
    cdef int code
    if real is float:
        with nogil:
            code = axiom_max_pool2d_f32(_cp(x), _mp(y), n, h, w, c, kh, kw, sh, sw, pt, pb, pl, pr, dh, dw)
    else:
        with nogil:
            code = axiom_max_pool2d_f64(_cp(x), _mp(y), n, h, w, c, kh, kw, sh, sw, pt, pb, pl, pr, dh, dw)
    return code


def max_pool2d_f32(const float[::1] x, float[::1] y, int64_t n, int64_t h, int64_t w, int64_t c, int64_t kh, int64_t kw, int64_t sh, int64_t sw, int64_t pt, int64_t pb, int64_t pl, int64_t pr, int64_t dh, int64_t dw) -> int:
    """``axiom_max_pool2d_f32`` on flat float buffers; returns the status code."""
    return _max_pool2d[float]("max_pool2d_f32", x, y, n, h, w, c, kh, kw, sh, sw, pt, pb, pl, pr, dh, dw)


def max_pool2d_f64(const double[::1] x, double[::1] y, int64_t n, int64_t h, int64_t w, int64_t c, int64_t kh, int64_t kw, int64_t sh, int64_t sw, int64_t pt, int64_t pb, int64_t pl, int64_t pr, int64_t dh, int64_t dw) -> int:
    """``axiom_max_pool2d_f64`` on flat double buffers; returns the status code."""
    return _max_pool2d[double]("max_pool2d_f64", x, y, n, h, w, c, kh, kw, sh, sw, pt, pb, pl, pr, dh, dw)


cdef int _avg_pool2d(str fn, const real[::1] x, real[::1] y, int64_t n, int64_t h, int64_t w, int64_t c, int64_t kh, int64_t kw, int64_t sh, int64_t sw, int64_t pt, int64_t pb, int64_t pl, int64_t pr, int count_include_pad) except? -1:
    _need(fn, "x", x, _len_c(x), _prod(n, h, w, c))
    _need(fn, "y", y, (0 if y is None else y.shape[0]), _pool_out(n, h, w, c, kh, kw, sh, sw, pt, pb, pl, pr, 1, 1))
    cdef int code
    if real is float:
        with nogil:
            code = axiom_avg_pool2d_f32(_cp(x), _mp(y), n, h, w, c, kh, kw, sh, sw, pt, pb, pl, pr, count_include_pad)
    else:
        with nogil:
            code = axiom_avg_pool2d_f64(_cp(x), _mp(y), n, h, w, c, kh, kw, sh, sw, pt, pb, pl, pr, count_include_pad)
    return code


def avg_pool2d_f32(const float[::1] x, float[::1] y, int64_t n, int64_t h, int64_t w, int64_t c, int64_t kh, int64_t kw, int64_t sh, int64_t sw, int64_t pt, int64_t pb, int64_t pl, int64_t pr, int count_include_pad) -> int:
    """``axiom_avg_pool2d_f32`` on flat float buffers; returns the status code."""
    return _avg_pool2d[float]("avg_pool2d_f32", x, y, n, h, w, c, kh, kw, sh, sw, pt, pb, pl, pr, count_include_pad)


def avg_pool2d_f64(const double[::1] x, double[::1] y, int64_t n, int64_t h, int64_t w, int64_t c, int64_t kh, int64_t kw, int64_t sh, int64_t sw, int64_t pt, int64_t pb, int64_t pl, int64_t pr, int count_include_pad) -> int:
    """``axiom_avg_pool2d_f64`` on flat double buffers; returns the status code."""
    return _avg_pool2d[double]("avg_pool2d_f64", x, y, n, h, w, c, kh, kw, sh, sw, pt, pb, pl, pr, count_include_pad)


cdef int _global_avg_pool(str fn, const real[::1] x, real[::1] y, int64_t n, int64_t hw, int64_t c) except? -1:
    _need(fn, "x", x, _len_c(x), _prod(n, hw, c))
    _need(fn, "y", y, (0 if y is None else y.shape[0]), _prod(n, c))
    cdef int code
    if real is float:
        with nogil:
            code = axiom_global_avg_pool_f32(_cp(x), _mp(y), n, hw, c)
    else:
        with nogil:
            code = axiom_global_avg_pool_f64(_cp(x), _mp(y), n, hw, c)
    return code


def global_avg_pool_f32(const float[::1] x, float[::1] y, int64_t n, int64_t hw, int64_t c) -> int:
    """``axiom_global_avg_pool_f32`` on flat float buffers; returns the status code."""
    return _global_avg_pool[float]("global_avg_pool_f32", x, y, n, hw, c)


def global_avg_pool_f64(const double[::1] x, double[::1] y, int64_t n, int64_t hw, int64_t c) -> int:
    """``axiom_global_avg_pool_f64`` on flat double buffers; returns the status code."""
    return _global_avg_pool[double]("global_avg_pool_f64", x, y, n, hw, c)


cdef int _max_pool2d_backward(str fn, const real[::1] x, const real[::1] dy, real[::1] dx, int64_t n, int64_t h, int64_t w, int64_t c, int64_t kh, int64_t kw, int64_t sh, int64_t sw, int64_t pt, int64_t pb, int64_t pl, int64_t pr, int64_t dh, int64_t dw) except? -1:
    _need(fn, "x", x, _len_c(x), _prod(n, h, w, c))
    _need(fn, "dx", dx, (0 if dx is None else dx.shape[0]), _prod(n, h, w, c))
    _need(fn, "dy", dy, _len_c(dy), _pool_out(n, h, w, c, kh, kw, sh, sw, pt, pb, pl, pr, dh, dw))
    cdef int code
    if real is float:
        with nogil:
            code = axiom_max_pool2d_backward_f32(_cp(x), _cp(dy), _mp(dx), n, h, w, c, kh, kw, sh, sw, pt, pb, pl, pr, dh, dw)
    else:
        with nogil:
            code = axiom_max_pool2d_backward_f64(_cp(x), _cp(dy), _mp(dx), n, h, w, c, kh, kw, sh, sw, pt, pb, pl, pr, dh, dw)
    return code


def max_pool2d_backward_f32(const float[::1] x, const float[::1] dy, float[::1] dx, int64_t n, int64_t h, int64_t w, int64_t c, int64_t kh, int64_t kw, int64_t sh, int64_t sw, int64_t pt, int64_t pb, int64_t pl, int64_t pr, int64_t dh, int64_t dw) -> int:
    """``axiom_max_pool2d_backward_f32`` on flat float buffers; returns the status code."""
    return _max_pool2d_backward[float]("max_pool2d_backward_f32", x, dy, dx, n, h, w, c, kh, kw, sh, sw, pt, pb, pl, pr, dh, dw)


def max_pool2d_backward_f64(const double[::1] x, const double[::1] dy, double[::1] dx, int64_t n, int64_t h, int64_t w, int64_t c, int64_t kh, int64_t kw, int64_t sh, int64_t sw, int64_t pt, int64_t pb, int64_t pl, int64_t pr, int64_t dh, int64_t dw) -> int:
    """``axiom_max_pool2d_backward_f64`` on flat double buffers; returns the status code."""
    return _max_pool2d_backward[double]("max_pool2d_backward_f64", x, dy, dx, n, h, w, c, kh, kw, sh, sw, pt, pb, pl, pr, dh, dw)


cdef int _avg_pool2d_backward(str fn, const real[::1] dy, real[::1] dx, int64_t n, int64_t h, int64_t w, int64_t c, int64_t kh, int64_t kw, int64_t sh, int64_t sw, int64_t pt, int64_t pb, int64_t pl, int64_t pr, int count_include_pad) except? -1:
    _need(fn, "dx", dx, (0 if dx is None else dx.shape[0]), _prod(n, h, w, c))
    _need(fn, "dy", dy, _len_c(dy), _pool_out(n, h, w, c, kh, kw, sh, sw, pt, pb, pl, pr, 1, 1))
    cdef int code
    if real is float:
        with nogil:
            code = axiom_avg_pool2d_backward_f32(_cp(dy), _mp(dx), n, h, w, c, kh, kw, sh, sw, pt, pb, pl, pr, count_include_pad)
    else:
        with nogil:
            code = axiom_avg_pool2d_backward_f64(_cp(dy), _mp(dx), n, h, w, c, kh, kw, sh, sw, pt, pb, pl, pr, count_include_pad)
    return code


def avg_pool2d_backward_f32(const float[::1] dy, float[::1] dx, int64_t n, int64_t h, int64_t w, int64_t c, int64_t kh, int64_t kw, int64_t sh, int64_t sw, int64_t pt, int64_t pb, int64_t pl, int64_t pr, int count_include_pad) -> int:
    """``axiom_avg_pool2d_backward_f32`` on flat float buffers; returns the status code."""
    return _avg_pool2d_backward[float]("avg_pool2d_backward_f32", dy, dx, n, h, w, c, kh, kw, sh, sw, pt, pb, pl, pr, count_include_pad)


def avg_pool2d_backward_f64(const double[::1] dy, double[::1] dx, int64_t n, int64_t h, int64_t w, int64_t c, int64_t kh, int64_t kw, int64_t sh, int64_t sw, int64_t pt, int64_t pb, int64_t pl, int64_t pr, int count_include_pad) -> int:
    """``axiom_avg_pool2d_backward_f64`` on flat double buffers; returns the status code."""
    return _avg_pool2d_backward[double]("avg_pool2d_backward_f64", dy, dx, n, h, w, c, kh, kw, sh, sw, pt, pb, pl, pr, count_include_pad)


cdef int _softmax(str fn, const real[::1] x, real[::1] y, int64_t outer, int64_t n, int64_t inner, int log) except? -1:
    _need(fn, "x", x, _len_c(x), _prod(outer, n, inner))
    _need(fn, "y", y, (0 if y is None else y.shape[0]), _prod(outer, n, inner))
    cdef int code
    if real is float:
        with nogil:
            code = axiom_softmax_f32(_cp(x), _mp(y), outer, n, inner, log)
    else:
        with nogil:
            code = axiom_softmax_f64(_cp(x), _mp(y), outer, n, inner, log)
    return code


def softmax_f32(const float[::1] x, float[::1] y, int64_t outer, int64_t n, int64_t inner, int log) -> int:
    """``axiom_softmax_f32`` on flat float buffers; returns the status code."""
    return _softmax[float]("softmax_f32", x, y, outer, n, inner, log)


def softmax_f64(const double[::1] x, double[::1] y, int64_t outer, int64_t n, int64_t inner, int log) -> int:
    """``axiom_softmax_f64`` on flat double buffers; returns the status code."""
    return _softmax[double]("softmax_f64", x, y, outer, n, inner, log)


cdef int _softmax_backward(str fn, const real[::1] y, const real[::1] dy, real[::1] dx, int64_t outer, int64_t n, int64_t inner, int log) except? -1:
    _need(fn, "y", y, _len_c(y), _prod(outer, n, inner))
    _need(fn, "dy", dy, _len_c(dy), _prod(outer, n, inner))
    _need(fn, "dx", dx, (0 if dx is None else dx.shape[0]), _prod(outer, n, inner))
    cdef int code
    if real is float:
        with nogil:
            code = axiom_softmax_backward_f32(_cp(y), _cp(dy), _mp(dx), outer, n, inner, log)
    else:
        with nogil:
            code = axiom_softmax_backward_f64(_cp(y), _cp(dy), _mp(dx), outer, n, inner, log)
    return code


def softmax_backward_f32(const float[::1] y, const float[::1] dy, float[::1] dx, int64_t outer, int64_t n, int64_t inner, int log) -> int:
    """``axiom_softmax_backward_f32`` on flat float buffers; returns the status code."""
    return _softmax_backward[float]("softmax_backward_f32", y, dy, dx, outer, n, inner, log)


def softmax_backward_f64(const double[::1] y, const double[::1] dy, double[::1] dx, int64_t outer, int64_t n, int64_t inner, int log) -> int:
    """``axiom_softmax_backward_f64`` on flat double buffers; returns the status code."""
    return _softmax_backward[double]("softmax_backward_f64", y, dy, dx, outer, n, inner, log)


cdef int _activation(str fn, const real[::1] x, real[::1] y, int64_t n, int act, double alpha) except? -1:
    _need(fn, "x", x, _len_c(x), _prod(n))
    _need(fn, "y", y, (0 if y is None else y.shape[0]), _prod(n))
    cdef int code
    if real is float:
        with nogil:
            code = axiom_activation_f32(_cp(x), _mp(y), n, act, alpha)
    else:
        with nogil:
            code = axiom_activation_f64(_cp(x), _mp(y), n, act, alpha)
    return code


def activation_f32(const float[::1] x, float[::1] y, int64_t n, int act, double alpha) -> int:
    """``axiom_activation_f32`` on flat float buffers; returns the status code."""
    return _activation[float]("activation_f32", x, y, n, act, alpha)


def activation_f64(const double[::1] x, double[::1] y, int64_t n, int act, double alpha) -> int:
    """``axiom_activation_f64`` on flat double buffers; returns the status code."""
    return _activation[double]("activation_f64", x, y, n, act, alpha)


cdef int _activation_backward(str fn, const real[::1] dy, const real[::1] x, real[::1] dx, int64_t n, int act, double alpha) except? -1:
    _need(fn, "dy", dy, _len_c(dy), _prod(n))
    _need(fn, "x", x, _len_c(x), _prod(n))
    _need(fn, "dx", dx, (0 if dx is None else dx.shape[0]), _prod(n))
    cdef int code
    if real is float:
        with nogil:
            code = axiom_activation_backward_f32(_cp(dy), _cp(x), _mp(dx), n, act, alpha)
    else:
        with nogil:
            code = axiom_activation_backward_f64(_cp(dy), _cp(x), _mp(dx), n, act, alpha)
    return code


def activation_backward_f32(const float[::1] dy, const float[::1] x, float[::1] dx, int64_t n, int act, double alpha) -> int:
    """``axiom_activation_backward_f32`` on flat float buffers; returns the status code."""
    return _activation_backward[float]("activation_backward_f32", dy, x, dx, n, act, alpha)


def activation_backward_f64(const double[::1] dy, const double[::1] x, double[::1] dx, int64_t n, int act, double alpha) -> int:
    """``axiom_activation_backward_f64`` on flat double buffers; returns the status code."""
    return _activation_backward[double]("activation_backward_f64", dy, x, dx, n, act, alpha)


cdef int _attention(str fn, const real[::1] q, const real[::1] k, const real[::1] v, const real[::1] mask, real[::1] out, int64_t batch, int64_t heads, int64_t lq, int64_t lk, int64_t d, int64_t dv, double scale, int causal, int64_t mask_sb, int64_t mask_sh, int64_t mask_sq, int64_t mask_sk) except? -1:
    _need(fn, "q", q, _len_c(q), _prod(batch, heads, lq, d))
    _need(fn, "k", k, _len_c(k), _prod(batch, heads, lk, d))
    _need(fn, "v", v, _len_c(v), _prod(batch, heads, lk, dv))
    _need(fn, "out", out, (0 if out is None else out.shape[0]), _prod(batch, heads, lq, dv))
    _need(fn, "mask", mask, _len_c(mask), _mask_span(batch, heads, lq, lk, mask_sb, mask_sh, mask_sq, mask_sk) if mask is not None else 0)
    cdef int code
    if real is float:
        with nogil:
            code = axiom_attention_f32(_cp(q), _cp(k), _cp(v), _cp(mask), _mp(out), batch, heads, lq, lk, d, dv, scale, causal, mask_sb, mask_sh, mask_sq, mask_sk)
    else:
        with nogil:
            code = axiom_attention_f64(_cp(q), _cp(k), _cp(v), _cp(mask), _mp(out), batch, heads, lq, lk, d, dv, scale, causal, mask_sb, mask_sh, mask_sq, mask_sk)
    return code


def attention_f32(const float[::1] q, const float[::1] k, const float[::1] v, const float[::1] mask, float[::1] out, int64_t batch, int64_t heads, int64_t lq, int64_t lk, int64_t d, int64_t dv, double scale, int causal, int64_t mask_sb, int64_t mask_sh, int64_t mask_sq, int64_t mask_sk) -> int:
    """``axiom_attention_f32`` on flat float buffers; returns the status code."""
    return _attention[float]("attention_f32", q, k, v, mask, out, batch, heads, lq, lk, d, dv, scale, causal, mask_sb, mask_sh, mask_sq, mask_sk)


def attention_f64(const double[::1] q, const double[::1] k, const double[::1] v, const double[::1] mask, double[::1] out, int64_t batch, int64_t heads, int64_t lq, int64_t lk, int64_t d, int64_t dv, double scale, int causal, int64_t mask_sb, int64_t mask_sh, int64_t mask_sq, int64_t mask_sk) -> int:
    """``axiom_attention_f64`` on flat double buffers; returns the status code."""
    return _attention[double]("attention_f64", q, k, v, mask, out, batch, heads, lq, lk, d, dv, scale, causal, mask_sb, mask_sh, mask_sq, mask_sk)


cdef int _attention_backward(str fn, const real[::1] gout, const real[::1] q, const real[::1] k, const real[::1] v, const real[::1] mask, real[::1] gq, real[::1] gk, real[::1] gv, int64_t batch, int64_t heads, int64_t lq, int64_t lk, int64_t d, int64_t dv, double scale, int causal, int64_t mask_sb, int64_t mask_sh, int64_t mask_sq, int64_t mask_sk) except? -1:
    _need(fn, "gout", gout, _len_c(gout), _prod(batch, heads, lq, dv))
    _need(fn, "q", q, _len_c(q), _prod(batch, heads, lq, d))
    _need(fn, "k", k, _len_c(k), _prod(batch, heads, lk, d))
    _need(fn, "v", v, _len_c(v), _prod(batch, heads, lk, dv))
    _need(fn, "gq", gq, (0 if gq is None else gq.shape[0]), _prod(batch, heads, lq, d))
    _need(fn, "gk", gk, (0 if gk is None else gk.shape[0]), _prod(batch, heads, lk, d))
    _need(fn, "gv", gv, (0 if gv is None else gv.shape[0]), _prod(batch, heads, lk, dv))
    _need(fn, "mask", mask, _len_c(mask), _mask_span(batch, heads, lq, lk, mask_sb, mask_sh, mask_sq, mask_sk) if mask is not None else 0)
    cdef int code
    if real is float:
        with nogil:
            code = axiom_attention_backward_f32(_cp(gout), _cp(q), _cp(k), _cp(v), _cp(mask), _mp(gq), _mp(gk), _mp(gv), batch, heads, lq, lk, d, dv, scale, causal, mask_sb, mask_sh, mask_sq, mask_sk)
    else:
        with nogil:
            code = axiom_attention_backward_f64(_cp(gout), _cp(q), _cp(k), _cp(v), _cp(mask), _mp(gq), _mp(gk), _mp(gv), batch, heads, lq, lk, d, dv, scale, causal, mask_sb, mask_sh, mask_sq, mask_sk)
    return code


def attention_backward_f32(const float[::1] gout, const float[::1] q, const float[::1] k, const float[::1] v, const float[::1] mask, float[::1] gq, float[::1] gk, float[::1] gv, int64_t batch, int64_t heads, int64_t lq, int64_t lk, int64_t d, int64_t dv, double scale, int causal, int64_t mask_sb, int64_t mask_sh, int64_t mask_sq, int64_t mask_sk) -> int:
    """``axiom_attention_backward_f32`` on flat float buffers; returns the status code."""
    return _attention_backward[float]("attention_backward_f32", gout, q, k, v, mask, gq, gk, gv, batch, heads, lq, lk, d, dv, scale, causal, mask_sb, mask_sh, mask_sq, mask_sk)


def attention_backward_f64(const double[::1] gout, const double[::1] q, const double[::1] k, const double[::1] v, const double[::1] mask, double[::1] gq, double[::1] gk, double[::1] gv, int64_t batch, int64_t heads, int64_t lq, int64_t lk, int64_t d, int64_t dv, double scale, int causal, int64_t mask_sb, int64_t mask_sh, int64_t mask_sq, int64_t mask_sk) -> int:
    """``axiom_attention_backward_f64`` on flat double buffers; returns the status code."""
    return _attention_backward[double]("attention_backward_f64", gout, q, k, v, mask, gq, gk, gv, batch, heads, lq, lk, d, dv, scale, causal, mask_sb, mask_sh, mask_sq, mask_sk)


cdef int _rope(str fn, const real[::1] x, const double[::1] positions, real[::1] y, int64_t outer, int64_t seq, int64_t d, double base) except? -1:
    _need(fn, "x", x, _len_c(x), _prod(outer, seq, d))
    _need(fn, "y", y, (0 if y is None else y.shape[0]), _prod(outer, seq, d))
    _need(fn, "positions", positions, (0 if positions is None else positions.shape[0]), _prod(seq))
    cdef int code
    if real is float:
        with nogil:
            code = axiom_rope_f32(_cp(x), _dp(positions), _mp(y), outer, seq, d, base)
    else:
        with nogil:
            code = axiom_rope_f64(_cp(x), _dp(positions), _mp(y), outer, seq, d, base)
    return code


def rope_f32(const float[::1] x, const double[::1] positions, float[::1] y, int64_t outer, int64_t seq, int64_t d, double base) -> int:
    """``axiom_rope_f32`` on flat float buffers; returns the status code."""
    return _rope[float]("rope_f32", x, positions, y, outer, seq, d, base)


def rope_f64(const double[::1] x, const double[::1] positions, double[::1] y, int64_t outer, int64_t seq, int64_t d, double base) -> int:
    """``axiom_rope_f64`` on flat double buffers; returns the status code."""
    return _rope[double]("rope_f64", x, positions, y, outer, seq, d, base)
