/*
 * axiom_kernels.h - the one kernel ABI of axiom.
 *
 * The C (csrc/), Rust (rust/) and Zig (zig/) libraries all export exactly the symbols
 * declared here and in axiom_kernels_nn.h, with these C signatures, so that one Python
 * table of signatures (axiom/backends/abi.py) loads any of them and one test suite fuzzes
 * all of them (tests/backends/test_abi_consistency.py checks the symbols and signatures).
 *
 * Threads: C uses OpenMP (OMP_NUM_THREADS); Rust and Zig use their own std threads, as
 * many as AXIOM_NUM_THREADS, else OMP_NUM_THREADS, else the CPU count says (read once).
 *
 * Conventions shared by every kernel:
 *   - arrays are dense, row-major (C order) and contiguous; sizes are int64_t;
 *   - a kernel writes its output (it never accumulates into it);
 *   - a pointer may be NULL only when its array has zero elements;
 *   - a kernel never crashes on bad sizes or NULL pointers: it returns an error code
 *     (size errors are checked first, then NULL pointers) and writes nothing;
 *   - sizes must describe the buffers actually passed: a kernel cannot detect a buffer
 *     that is shorter than its sizes say;
 *   - IEEE semantics are kept: NaN and Inf propagate exactly like in a plain sum of
 *     products (no term is skipped because a factor is 0, so 0 * Inf gives NaN);
 *     summation order and fused multiply-add may differ between libraries, so finite
 *     results agree only up to rounding.
 *
 * See docs/developer/kernel-abi.md for how to add a kernel in all three languages.
 */
#ifndef AXIOM_KERNELS_H
#define AXIOM_KERNELS_H

#include <stdint.h>

#ifdef __cplusplus
extern "C" {
#endif

/* Symbols are exported with default visibility so that ctypes can load them from the
 * Cython extension module too, even if it is compiled with -fvisibility=hidden. */
#if defined(__GNUC__)
#define AXIOM_API __attribute__((visibility("default")))
#else
#define AXIOM_API
#endif

/* Version of this ABI. Bump it whenever a signature or a documented behaviour changes;
 * Python refuses to load a library whose axiom_abi_version() differs. */
#define AXIOM_ABI_VERSION 2

/* Return codes of every kernel. */
enum {
    AXIOM_OK = 0,       /* success */
    AXIOM_ERR_NULL = 1, /* a required pointer is NULL (its array has elements) */
    AXIOM_ERR_SIZE = 2, /* a negative dimension, or an element count / byte size that overflows */
    AXIOM_ERR_NOMEM = 3, /* scratch memory (or a worker thread) could not be allocated */
    AXIOM_ERR_INTERNAL = 4 /* a library-internal failure caught at the boundary (a Rust panic); a bug */
};

/* Return AXIOM_ABI_VERSION as compiled into the library. */
AXIOM_API int axiom_abi_version(void);

/*
 * c = a @ b for row-major contiguous a (m x k), b (k x n) and c (m x n).
 *
 * c is overwritten; k == 0 writes zeros into c. Returns AXIOM_OK, AXIOM_ERR_SIZE when
 * m, k or n is negative or m*k, k*n or m*n elements do not fit in memory
 * (count * sizeof(element) > INT64_MAX), or AXIOM_ERR_NULL when a, b or c is NULL
 * although it has elements (NULL is allowed for an array with zero elements).
 */
AXIOM_API int axiom_matmul_f32(const float *a, const float *b, float *c, int64_t m, int64_t k, int64_t n);

/* Same as axiom_matmul_f32 for float64 (double) arrays. */
AXIOM_API int axiom_matmul_f64(const double *a, const double *b, double *c, int64_t m, int64_t k, int64_t n);

/* ======================================================================================
 * GEMM, conv2d and their backward kernels (C: csrc/gemm.c, csrc/conv.c; Rust: rust/src/;
 * Zig: zig/). Same conventions as above, plus: strided / transposed operands through
 * leading dimensions, and AXIOM_ERR_SIZE for any inconsistent size or layout argument (a
 * leading dimension smaller than a row, a transpose flag other than 0 / 1, groups not
 * dividing the channels, a wrong output size).
 * ====================================================================================== */

/* Micro-kernel instruction-set levels. */
enum { AXIOM_CPU_GENERIC = 0, AXIOM_CPU_AVX2 = 1, AXIOM_CPU_AVX512 = 2 };

/* The level the GEMM / conv kernels use now: the best the CPU (and OS) supports, capped by
 * the environment variable AXIOM_CPU_FEATURES=generic|avx2|avx512 (read on first use) or by
 * axiom_set_cpu_isa. */
AXIOM_API int axiom_cpu_isa(void);

/* The best level this CPU (and OS) supports. */
AXIOM_API int axiom_cpu_isa_supported(void);

/* Use micro-kernels of at most `level` (0..2; capped to what the CPU supports), or -1 for
 * the default again. Process-wide; calls already running keep their kernels. Returns
 * AXIOM_OK or AXIOM_ERR_SIZE for another level. */
AXIOM_API int axiom_set_cpu_isa(int32_t level);

/*
 * C = alpha * op(A) @ op(B) + beta * C, row-major (BLAS sgemm with row-major storage):
 * op(A) is m x k, op(B) k x n, C m x n. trans_a = 0: A is m x k with row stride lda
 * (lda >= max(1, k)); trans_a = 1: A is stored k x m (lda >= max(1, m)) and op(A) = A^T.
 * Likewise trans_b / ldb for B (n x k stored when trans_b = 1); ldc >= max(1, n).
 * beta == 0: C is only written (its old content, even NaN, is ignored). Every product is
 * accumulated (0 * Inf = NaN); alpha multiplies the accumulated sum; k == 0 gives beta * C.
 * Returns AXIOM_OK, AXIOM_ERR_SIZE, AXIOM_ERR_NULL or AXIOM_ERR_NOMEM.
 */
AXIOM_API int axiom_gemm_f32(int32_t trans_a, int32_t trans_b, int64_t m, int64_t n, int64_t k, float alpha,
                             const float *a, int64_t lda, const float *b, int64_t ldb, float beta, float *c,
                             int64_t ldc);
AXIOM_API int axiom_gemm_f64(int32_t trans_a, int32_t trans_b, int64_t m, int64_t n, int64_t k, double alpha,
                             const double *a, int64_t lda, const double *b, int64_t ldb, double beta, double *c,
                             int64_t ldc);

/*
 * `batch` independent GEMMs: matrix i uses a + i * stride_a, b + i * stride_b and
 * c + i * stride_c (elements). Strides are >= 0; 0 broadcasts one A or B to every product.
 * The outputs must not overlap: with batch > 1, stride_c >= (m - 1) * ldc + n.
 */
AXIOM_API int axiom_gemm_batched_f32(int64_t batch, int32_t trans_a, int32_t trans_b, int64_t m, int64_t n, int64_t k,
                                     float alpha, const float *a, int64_t lda, int64_t stride_a, const float *b,
                                     int64_t ldb, int64_t stride_b, float beta, float *c, int64_t ldc,
                                     int64_t stride_c);
AXIOM_API int axiom_gemm_batched_f64(int64_t batch, int32_t trans_a, int32_t trans_b, int64_t m, int64_t n, int64_t k,
                                     double alpha, const double *a, int64_t lda, int64_t stride_a, const double *b,
                                     int64_t ldb, int64_t stride_b, double beta, double *c, int64_t ldc,
                                     int64_t stride_c);

/*
 * Shape of an NHWC 2-D convolution: input x (n, h, w, c_in), weights (k_h, k_w,
 * c_in / groups, c_out), output y (n, out_h, out_w, c_out), all dense row-major. Output
 * channel o belongs to group o / (c_out / groups), which reads input channels
 * [g * c_in / groups, (g + 1) * c_in / groups). out_h must equal
 * max(0, (h + pad_top + pad_bottom - dilation_h * (k_h - 1) - 1) / stride_h + 1) (floor
 * division), out_w likewise. n, h, w, c_in, c_out >= 0; k_h, k_w, strides, dilations,
 * groups >= 1; pads >= 0; groups divides c_in and c_out.
 */
typedef struct axiom_conv2d_shape {
    int64_t n, h, w, c_in, c_out;
    int64_t k_h, k_w, out_h, out_w;
    int64_t stride_h, stride_w;
    int64_t pad_top, pad_bottom, pad_left, pad_right;
    int64_t dilation_h, dilation_w;
    int64_t groups;
} axiom_conv2d_shape;

/* y = conv2d(x, w) + bias (cross-correlation, zero padding); bias (c_out) may be NULL.
 * Returns AXIOM_OK, AXIOM_ERR_SIZE, AXIOM_ERR_NULL (also for shape == NULL) or AXIOM_ERR_NOMEM. */
AXIOM_API int axiom_conv2d_nhwc_f32(const axiom_conv2d_shape *shape, const float *x, const float *w,
                                    const float *bias, float *y);
AXIOM_API int axiom_conv2d_nhwc_f64(const axiom_conv2d_shape *shape, const double *x, const double *w,
                                    const double *bias, double *y);

/* dx (n, h, w, c_in) = gradient of sum(dy * conv2d(x, w)) with respect to x, for dy of the
 * output's shape. dx is written. */
AXIOM_API int axiom_conv2d_backward_input_nhwc_f32(const axiom_conv2d_shape *shape, const float *dy, const float *w,
                                                   float *dx);
AXIOM_API int axiom_conv2d_backward_input_nhwc_f64(const axiom_conv2d_shape *shape, const double *dy,
                                                   const double *w, double *dx);

/* dw (k_h, k_w, c_in / groups, c_out) = gradient with respect to w; dbias (c_out) = the sum
 * of dy over n, out_h, out_w, computed only when dbias != NULL. Both are written. */
AXIOM_API int axiom_conv2d_backward_weight_nhwc_f32(const axiom_conv2d_shape *shape, const float *x, const float *dy,
                                                    float *dw, float *dbias);
AXIOM_API int axiom_conv2d_backward_weight_nhwc_f64(const axiom_conv2d_shape *shape, const double *x,
                                                    const double *dy, double *dw, double *dbias);

#ifdef __cplusplus
}
#endif

#endif /* AXIOM_KERNELS_H */
#include "axiom_kernels_nn.h"
