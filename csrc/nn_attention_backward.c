/*
 * nn_attention_backward.c - gradients of attention (axiom_attention_backward_f32/_f64):
 * dq, dk, dv of softmax(q k^T * scale + mask) v, flash-attention style (no lq x lk matrix).
 *
 * The algorithm is type-generic (nn_attention_backward_impl.h); this file supplies the two
 * inner pieces per type: the block matrix products (float32: 6 x 16 register tiles of 8-lane
 * FMA vectors, vectorised along the output row; float64: plain loops that gcc vectorises) and
 * the row exponentials (float32: nn_exp_neg of nn_simd.h; float64: libm exp).
 * Heads run in parallel (OpenMP) above NN_PAR_FLOPS multiply-adds.
 */
#include <math.h>
#include <stdlib.h>

#include "nn_common.h"
#include "nn_simd.h"

#define ABW_BR 64 /* query rows per block */
#define ABW_BC 64 /* keys per block */
#define ABW_MR 6  /* rows per register tile (12 accumulators of 8 lanes) */

static int abw_check(const void *gout, const void *q, const void *k, const void *v, const void *mask,
                     const void *gq, const void *gk, const void *gv, int64_t batch, int64_t heads, int64_t lq,
                     int64_t lk, int64_t d, int64_t dv, int causal, int64_t sb, int64_t sh, int64_t sq, int64_t sk,
                     size_t elem) {
    int64_t nq, nk, nv, no;
    if (!NN_NUMEL(&nq, elem, batch, heads, lq, d) || !NN_NUMEL(&nk, elem, batch, heads, lk, d) ||
        !NN_NUMEL(&nv, elem, batch, heads, lk, dv) || !NN_NUMEL(&no, elem, batch, heads, lq, dv)) {
        return AXIOM_ERR_SIZE;
    }
    /* scratch: blocks of (d + dv) keys and 2 lq row statistics must be addressable */
    if ((uint64_t)d > (uint64_t)(INT64_MAX / 64 / (int64_t)elem) / 4 ||
        (uint64_t)dv > (uint64_t)(INT64_MAX / 64 / (int64_t)elem) / 4 ||
        (uint64_t)lq > (uint64_t)(INT64_MAX / (int64_t)elem) / 4) {
        return AXIOM_ERR_SIZE;
    }
    if (causal != 0 && causal != 1) {
        return AXIOM_ERR_SIZE;
    }
    if (mask != NULL && !nn_strided_span_ok((const int64_t[4]){batch, heads, lq, lk}, (const int64_t[4]){sb, sh, sq, sk},
                                            elem)) {
        return AXIOM_ERR_SIZE; /* the furthest mask element must be addressable */
    }
    if ((no > 0 && gout == NULL) || (nq > 0 && (q == NULL || gq == NULL)) || (nk > 0 && (k == NULL || gk == NULL)) ||
        (nv > 0 && (v == NULL || gv == NULL))) {
        return AXIOM_ERR_NULL;
    }
    return AXIOM_OK;
}

/* ---- float32 pieces ----------------------------------------------------------------------- */

static inline __attribute__((always_inline)) nn_vf abw_ld(const float *p, int64_t n) {
    return n >= NN_VL ? nn_load(p) : (n > 0 ? nn_load_n(p, n) : nn_set1(0.0f));
}

static inline __attribute__((always_inline)) void abw_st(float *p, nn_vf v, int64_t n) {
    if (n >= NN_VL) {
        nn_store(p, v);
    } else if (n > 0) {
        nn_store_n(p, v, n);
    }
}

/* rows [0, mr) x columns [0, n0 + n1) of C (n0 <= 8 lanes, then n1 <= 8) += op(A) B over k */
static inline __attribute__((always_inline)) void abw_tile_f32(float *restrict c, int64_t ldc,
                                                               const float *restrict a, int64_t lda,
                                                               const float *restrict b, int64_t ldb, int64_t k,
                                                               int mr, int ta, int acc, int64_t n0, int64_t n1) {
    nn_vf c0[ABW_MR], c1[ABW_MR];
    for (int r = 0; r < mr; ++r) {
        c0[r] = acc ? abw_ld(c + r * ldc, n0) : nn_set1(0.0f);
        c1[r] = acc ? abw_ld(c + r * ldc + NN_VL, n1) : nn_set1(0.0f);
    }
    for (int64_t t = 0; t < k; ++t) {
        const nn_vf b0 = abw_ld(b + t * ldb, n0), b1 = abw_ld(b + t * ldb + NN_VL, n1);
        for (int r = 0; r < mr; ++r) {
            const nn_vf av = nn_set1(ta ? a[t * lda + r] : a[r * lda + t]);
            c0[r] += av * b0;
            c1[r] += av * b1;
        }
    }
    for (int r = 0; r < mr; ++r) {
        abw_st(c + r * ldc, c0[r], n0);
        abw_st(c + r * ldc + NN_VL, c1[r], n1);
    }
}

static inline __attribute__((always_inline)) void abw_mm_rows_f32(float *restrict c, int64_t ldc,
                                                                  const float *restrict a, int64_t lda,
                                                                  const float *restrict b, int64_t ldb, int64_t n,
                                                                  int64_t k, int mr, int ta, int acc) {
    int64_t col = 0;
    for (; col + 2 * NN_VL <= n; col += 2 * NN_VL) {
        abw_tile_f32(c + col, ldc, a, lda, b + col, ldb, k, mr, ta, acc, NN_VL, NN_VL);
    }
    if (col < n) {
        const int64_t rest = n - col;
        abw_tile_f32(c + col, ldc, a, lda, b + col, ldb, k, mr, ta, acc, rest < NN_VL ? rest : NN_VL, rest - NN_VL);
    }
}

#define ABW_MM_VARIANT(NAME, TA, ACC)                                                                          \
    static void NAME(float *c, int64_t ldc, const float *a, int64_t lda, const float *b, int64_t ldb, int64_t m, \
                     int64_t n, int64_t k) {                                                                   \
        for (int64_t i = 0; i < m; i += ABW_MR) {                                                              \
            float *ci = c + i * ldc;                                                                           \
            const float *ai = TA ? a + i : a + i * lda;                                                        \
            switch (m - i < ABW_MR ? m - i : ABW_MR) {                                                         \
            case 1: abw_mm_rows_f32(ci, ldc, ai, lda, b, ldb, n, k, 1, TA, ACC); break;                       \
            case 2: abw_mm_rows_f32(ci, ldc, ai, lda, b, ldb, n, k, 2, TA, ACC); break;                       \
            case 3: abw_mm_rows_f32(ci, ldc, ai, lda, b, ldb, n, k, 3, TA, ACC); break;                       \
            case 4: abw_mm_rows_f32(ci, ldc, ai, lda, b, ldb, n, k, 4, TA, ACC); break;                       \
            case 5: abw_mm_rows_f32(ci, ldc, ai, lda, b, ldb, n, k, 5, TA, ACC); break;                       \
            default: abw_mm_rows_f32(ci, ldc, ai, lda, b, ldb, n, k, ABW_MR, TA, ACC); break;                 \
            }                                                                                                  \
        }                                                                                                      \
    }
ABW_MM_VARIANT(abw_mm_nn0_f32, 0, 0)
ABW_MM_VARIANT(abw_mm_nn1_f32, 0, 1)
ABW_MM_VARIANT(abw_mm_tn1_f32, 1, 1)
#undef ABW_MM_VARIANT

static void abw_mm_f32(float *c, int64_t ldc, const float *a, int64_t lda, const float *b, int64_t ldb, int64_t m,
                       int64_t n, int64_t k, int ta, int acc) {
    if (ta) {
        abw_mm_tn1_f32(c, ldc, a, lda, b, ldb, m, n, k); /* only accumulating transposed products occur */
    } else if (acc) {
        abw_mm_nn1_f32(c, ldc, a, lda, b, ldb, m, n, k);
    } else {
        abw_mm_nn0_f32(c, ldc, a, lda, b, ldb, m, n, k);
    }
}

static float abw_exp_row_f32(float *p, int64_t n, float shift) {
    const nn_vf sh = nn_set1(shift);
    nn_vf sum = nn_set1(0.0f);
    int64_t j = 0;
    for (; j + NN_VL <= n; j += NN_VL) {
        const nn_vf e = nn_exp_neg(nn_load(p + j) - sh);
        nn_store(p + j, e);
        sum += e;
    }
    if (j < n) {
        const nn_vf e = nn_exp_neg(nn_load_part(p + j, n - j, -INFINITY) - sh); /* padding lanes: 0 */
        nn_store_part(p + j, e, n - j);
        sum += e;
    }
    return nn_hsum(sum);
}

/* ---- float64 pieces ----------------------------------------------------------------------- */

static void abw_mm_f64(double *c, int64_t ldc, const double *a, int64_t lda, const double *b, int64_t ldb,
                       int64_t m, int64_t n, int64_t k, int ta, int acc) {
    for (int64_t i = 0; i < m; ++i) {
        double *restrict ci = c + i * ldc;
        if (!acc) {
            for (int64_t col = 0; col < n; ++col) {
                ci[col] = 0.0;
            }
        }
        for (int64_t t = 0; t < k; ++t) {
            const double av = ta ? a[t * lda + i] : a[i * lda + t];
            const double *restrict bt = b + t * ldb;
#pragma omp simd
            for (int64_t col = 0; col < n; ++col) {
                ci[col] += av * bt[col];
            }
        }
    }
}

static double abw_exp_row_f64(double *p, int64_t n, double shift) {
    double sum = 0.0;
    for (int64_t j = 0; j < n; ++j) {
        p[j] = exp(p[j] - shift);
        sum += p[j];
    }
    return sum;
}

#define NN_T float
#define NN_S(name) name##_f32
#include "nn_attention_backward_impl.h"
#undef NN_T
#undef NN_S

#define NN_T double
#define NN_S(name) name##_f64
#include "nn_attention_backward_impl.h"
#undef NN_T
#undef NN_S
