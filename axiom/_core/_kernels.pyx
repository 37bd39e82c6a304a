# cython: language_level=3, boundscheck=False, wraparound=False, initializedcheck=False, embedsignature=True
"""Cython wrappers of the C kernels in ``csrc/`` (the ABI of ``csrc/axiom_kernels.h``).

Each wrapper takes C-contiguous typed memoryviews, calls the C kernel with the GIL
released and returns the kernel's status code (0 = ``AXIOM_OK``) unchanged; turning a
code into an exception is the caller's job (:func:`axiom.backends.abi.error_for`).

Example:
    >>> import numpy as np
    >>> from axiom._core import _kernels
    >>> a = np.ones((2, 3), np.float32); b = np.ones((3, 4), np.float32)
    >>> c = np.empty((2, 4), np.float32)
    >>> _kernels.matmul_f32(a, b, c), float(c[0, 0])
    (0, 3.0)
"""

from libc.stdint cimport int64_t

from axiom._core.kernels cimport (
    AXIOM_ABI_VERSION,
    AXIOM_ERR_NULL,
    AXIOM_ERR_SIZE,
    AXIOM_OK,
    axiom_abi_version,
    axiom_matmul_f32,
    axiom_matmul_f64,
)

#: ABI version the wrappers were compiled against (``AXIOM_ABI_VERSION``).
ABI_VERSION = AXIOM_ABI_VERSION
OK = AXIOM_OK
ERR_NULL = AXIOM_ERR_NULL
ERR_SIZE = AXIOM_ERR_SIZE


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
