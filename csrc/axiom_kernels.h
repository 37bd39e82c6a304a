/*
 * axiom_kernels.h - the one kernel ABI of axiom.
 *
 * The C (csrc/), Rust (rust/) and Zig (zig/) libraries all export exactly the symbols
 * declared here, with these C signatures, so that one Python table of signatures
 * (axiom/backends/abi.py) loads any of them and one test suite fuzzes all of them.
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
#define AXIOM_ABI_VERSION 1

/* Return codes of every kernel. */
enum {
    AXIOM_OK = 0,       /* success */
    AXIOM_ERR_NULL = 1, /* a required pointer is NULL (its array has elements) */
    AXIOM_ERR_SIZE = 2  /* a negative dimension, or an element count / byte size that overflows */
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

#ifdef __cplusplus
}
#endif

#endif /* AXIOM_KERNELS_H */
#include "axiom_kernels_nn.h"
