# Cython declarations of the kernel ABI in csrc/axiom_kernels.h (the one ABI).
from libc.stdint cimport int64_t


cdef extern from "axiom_kernels.h" nogil:
    enum:
        AXIOM_ABI_VERSION
        AXIOM_OK
        AXIOM_ERR_NULL
        AXIOM_ERR_SIZE

    int axiom_abi_version()
    int axiom_matmul_f32(const float *a, const float *b, float *c, int64_t m, int64_t k, int64_t n)
    int axiom_matmul_f64(const double *a, const double *b, double *c, int64_t m, int64_t k, int64_t n)
