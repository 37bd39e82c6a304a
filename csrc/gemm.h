/*
 * gemm.h - internal GEMM machinery shared by gemm.c and conv.c (not part of the ABI).
 *
 * The GEMM is the classic packed, cache-blocked design (Goto / BLIS):
 *
 *   for jc in n by NC:                    B block  (KC x NC)  packed into NR-wide panels
 *     for pc in k by KC:
 *       pack B[pc:pc+KC, jc:jc+NC]
 *       for ic in m by MC:                A block  (MC x KC)  packed into MR-tall panels
 *         pack A[ic:ic+MC, pc:pc+KC]      (or read in place through a gather table, below)
 *         for jr in NC by NR:             B micro-panel (KC x NR) stays in L1
 *           for ir in MC by MR:
 *             micro-kernel: an MR x NR tile of C in registers, KC rank-1 updates
 *
 * The micro-kernels exist per instruction set (AVX2+FMA ymm, AVX-512 zmm, portable C) and
 * are chosen at run time (axiom_isa_active: CPU features, capped by AXIOM_CPU_FEATURES or
 * axiom_set_cpu_isa). Every product is accumulated (zeros included), so NaN and Inf
 * propagate like a plain dot product; the zero padding of edge panels only produces
 * rows / columns of C that are never stored.
 *
 * "Gather" A operands: element (i, p) is rows[i][koff[p]], i.e. every row of A is a base
 * pointer and every column an offset. An implicit im2col: for a convolution the rows are
 * output pixels (pointer to the top-left input tap) and the columns (kh, kw, c) taps, so the
 * convolution is a GEMM that reads the input image in place, without an im2col copy. The
 * same form, with the roles of the tables swapped, gives the weight gradient.
 */
#ifndef AXIOM_GEMM_H
#define AXIOM_GEMM_H

#include <stddef.h>
#include <stdint.h>

#include "common.h"

#if defined(__GNUC__)
#define AXIOM_INTERNAL __attribute__((visibility("hidden")))
#else
#define AXIOM_INTERNAL
#endif

/* Instruction-set levels of the micro-kernels (axiom_cpu_isa / AXIOM_CPU_FEATURES). */
enum { AXIOM_ISA_GENERIC = 0, AXIOM_ISA_AVX2 = 1, AXIOM_ISA_AVX512 = 2 };

/* Scratch slots: one thread-local, grow-only buffer each (see axiom_scratch). Functions
 * that call one another use distinct slots. */
enum {
    AXIOM_SLOT_A = 0,     /* packed A block (driver) */
    AXIOM_SLOT_B = 1,     /* packed B block (driver) */
    AXIOM_SLOT_PAD = 2,   /* padded input image (conv) */
    AXIOM_SLOT_ROWS = 3,  /* gather row table (conv) */
    AXIOM_SLOT_KOFF = 4,  /* gather offset table (conv) */
    AXIOM_SLOT_COLS = 5,  /* column buffer / partial sums (conv backward) */
    AXIOM_SLOT_W = 6,     /* rearranged weights (conv backward) */
    AXIOM_SLOT_TAPS = 7,  /* gather tap table (conv weight gradient) */
    AXIOM_SLOT_COUNT = 8
};

/* A 64-byte aligned thread-local buffer of at least `bytes` bytes for `slot`, or NULL when
 * out of memory. Valid until the next call for the same slot on the same thread. */
AXIOM_INTERNAL void *axiom_scratch(int slot, size_t bytes);

/* The active micro-kernel level (AXIOM_ISA_*). */
AXIOM_INTERNAL int axiom_isa_active(void);

/* Threads to use for a job of `flops` floating-point operations: 1 below the threshold
 * or inside a parallel region, else omp_get_max_threads(). */
AXIOM_INTERNAL int axiom_threads_for(double flops);

/* Development knob `which` (0 KC, 1 MC, 2 NC, 3 STRIDED, 4 ROWS_OUTER) from AXIOM_GEMM_*, else dflt. */
AXIOM_INTERNAL int64_t axiom_gemm_tune(int which, int64_t dflt);

/* Floating-point operations below which everything runs on the calling thread (no OpenMP region). */
#define AXIOM_PARALLEL_FLOPS (2.0 * 8388608.0)

#define AXIOM_GEMM_DECLARE(T, S)                                                                                    \
    typedef struct {                                                                                               \
        T alpha, beta;   /* C = alpha * acc (+ beta * C when use_beta) (+ bias[j] when bias) */                    \
        int use_beta;                                                                                              \
        const T *bias;                                                                                             \
    } axiom_epi_##S;                                                                                               \
    typedef void (*axiom_ukr_##S)(int64_t kc, const T *a, const T *b, T *c, int64_t ldc, const axiom_epi_##S *e); \
    typedef void (*axiom_ukr_gather_##S)(int64_t kc, const T *const *rows, const int64_t *koff, const T *b, T *c, \
                                          int64_t ldc, const axiom_epi_##S *e);                                    \
    typedef struct {                                                                                               \
        int isa, mr, nr, mr_gather; /* tile of the packed and of the gather kernels */                             \
        int64_t kc, mc, nc;         /* cache blocking */                                                           \
        axiom_ukr_##S ukr[17];      /* [rows]: packed A, rows = 1..mr */                                           \
        axiom_ukr_gather_##S ukr_gather[17];  /* [rows]: A(r, p) = rows[r][koff[p]], rows = 1..mr_gather */        \
        axiom_ukr_gather_##S ukr_strided[17]; /* [rows]: A(r, p) = rows[r][p], rows = 1..mr_gather */              \
    } axiom_kernel_##S;                                                                                            \
    /* A operand: rows != NULL -> element (i, p) = rows[i][koff[p]];                                               \
     * else element (i, p) = trans ? a[p * lda + i] : a[i * lda + p]. */                                         \
    typedef struct {                                                                                               \
        const T *a;                                                                                                \
        int64_t lda;                                                                                               \
        int trans;                                                                                                 \
        const T *const *rows;                                                                                      \
        const int64_t *koff;                                                                                       \
    } axiom_asrc_##S;                                                                                              \
    AXIOM_INTERNAL const axiom_kernel_##S *axiom_kernel_select_##S(void);                                                 \
    /* C (m x n, ldc) = alpha * A @ op(B) + beta * C + bias; beta == 0: C is not read; bias may be NULL.          \
     * B element (p, j) = transb ? b[j * ldb + p] : b[p * ldb + j]. Returns 0, or -1 when scratch memory is     \
     * missing (C is then unspecified). Arguments are assumed valid. */                         \
    AXIOM_INTERNAL int axiom_gemm_driver_##S(int64_t m, int64_t n, int64_t k, const axiom_asrc_##S *A,             \
                                             const T *b, int64_t ldb, int transb, T alpha, T beta, T *c,           \
                                             int64_t ldc, const T *bias, int nthreads);

AXIOM_GEMM_DECLARE(float, f32)
AXIOM_GEMM_DECLARE(double, f64)

#endif /* AXIOM_GEMM_H */
