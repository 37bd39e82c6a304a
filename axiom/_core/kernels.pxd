# Cython declarations of the kernel ABI in csrc/axiom_kernels.h (the one ABI).
from libc.stdint cimport int32_t, int64_t


cdef extern from "axiom_kernels.h" nogil:
    enum:
        AXIOM_ABI_VERSION
        AXIOM_OK
        AXIOM_ERR_NULL
        AXIOM_ERR_SIZE
        AXIOM_ERR_NOMEM

    int axiom_abi_version()
    int axiom_matmul_f32(const float *a, const float *b, float *c, int64_t m, int64_t k, int64_t n)
    int axiom_matmul_f64(const double *a, const double *b, double *c, int64_t m, int64_t k, int64_t n)

    # C library extensions (csrc/gemm.c, csrc/conv.c)
    enum:
        AXIOM_CPU_GENERIC
        AXIOM_CPU_AVX2
        AXIOM_CPU_AVX512

    int axiom_cpu_isa()
    int axiom_cpu_isa_supported()
    int axiom_set_cpu_isa(int32_t level)

    int axiom_gemm_batched_f32(int64_t batch, int32_t trans_a, int32_t trans_b, int64_t m, int64_t n, int64_t k,
                               float alpha, const float *a, int64_t lda, int64_t stride_a, const float *b,
                               int64_t ldb, int64_t stride_b, float beta, float *c, int64_t ldc, int64_t stride_c)
    int axiom_gemm_batched_f64(int64_t batch, int32_t trans_a, int32_t trans_b, int64_t m, int64_t n, int64_t k,
                               double alpha, const double *a, int64_t lda, int64_t stride_a, const double *b,
                               int64_t ldb, int64_t stride_b, double beta, double *c, int64_t ldc, int64_t stride_c)

    ctypedef struct axiom_conv2d_shape:
        int64_t n, h, w, c_in, c_out
        int64_t k_h, k_w, out_h, out_w
        int64_t stride_h, stride_w
        int64_t pad_top, pad_bottom, pad_left, pad_right
        int64_t dilation_h, dilation_w
        int64_t groups

    int axiom_conv2d_nhwc_f32(const axiom_conv2d_shape *shape, const float *x, const float *w, const float *bias,
                              float *y)
    int axiom_conv2d_nhwc_f64(const axiom_conv2d_shape *shape, const double *x, const double *w,
                              const double *bias, double *y)
    int axiom_conv2d_backward_input_nhwc_f32(const axiom_conv2d_shape *shape, const float *dy, const float *w,
                                             float *dx)
    int axiom_conv2d_backward_input_nhwc_f64(const axiom_conv2d_shape *shape, const double *dy, const double *w,
                                             double *dx)
    int axiom_conv2d_backward_weight_nhwc_f32(const axiom_conv2d_shape *shape, const float *x, const float *dy,
                                              float *dw, float *dbias)
    int axiom_conv2d_backward_weight_nhwc_f64(const axiom_conv2d_shape *shape, const double *x, const double *dy,
                                              double *dw, double *dbias)
