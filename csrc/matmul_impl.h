/*
 * matmul_impl.h - the matmul kernel body, written once and included by matmul.c for
 * each element type. Before including, define:
 *   AXIOM_T      the element type (float, double)
 *   AXIOM_NAME   the exported symbol (axiom_matmul_f32, ...)
 *   AXIOM_BLOCK, AXIOM_MICRO, AXIOM_EDGE, AXIOM_VEC   static names of the helpers and vector type
 *
 * Algorithm: c is split into blocks of MC rows (the unit of OpenMP parallelism); inside a
 * block, k is tiled by KC and n by NC so that a KC x NC panel of b stays in L2 and 4 rows
 * of c (4 x NC) stay in L1. The micro-kernel keeps a 4 x (2 vectors) tile of c in registers while it
 * runs over the KC panel (c[i+r, j] += a[i+r, p] * b[p, j]), written with GNU C vector types
 * (AVX2/FMA with -march=x86-64-v3). Edges (rows % 4, columns % 2 vectors) use a plain loop
 * that gcc auto-vectorises.
 * Every product is added, including zeros, so NaN/Inf propagate like a plain dot product.
 */

/* A SIMD vector of AXIOM_T (GNU C vector extension): one AVX register (32 bytes) when the
 * target has AVX (-march=x86-64-v3), else one SSE register (16 bytes). */
typedef AXIOM_T AXIOM_VEC __attribute__((vector_size(AXIOM_VBYTES)));
#define AXIOM_VL ((int)(AXIOM_VBYTES / sizeof(AXIOM_T)))

/* c[0..4, 0..2*VL] += a[0..4, kk..kend] @ b[kk..kend, 0..2*VL], 8 vector accumulators in registers */
static inline void AXIOM_MICRO(const AXIOM_T *restrict a, const AXIOM_T *restrict b, AXIOM_T *restrict c, int64_t k,
                               int64_t n, int64_t kk, int64_t kend) {
    AXIOM_VEC c00, c01, c10, c11, c20, c21, c30, c31, b0, b1;
    memcpy(&c00, c + 0 * n, AXIOM_VBYTES), memcpy(&c01, c + 0 * n + AXIOM_VL, AXIOM_VBYTES);
    memcpy(&c10, c + 1 * n, AXIOM_VBYTES), memcpy(&c11, c + 1 * n + AXIOM_VL, AXIOM_VBYTES);
    memcpy(&c20, c + 2 * n, AXIOM_VBYTES), memcpy(&c21, c + 2 * n + AXIOM_VL, AXIOM_VBYTES);
    memcpy(&c30, c + 3 * n, AXIOM_VBYTES), memcpy(&c31, c + 3 * n + AXIOM_VL, AXIOM_VBYTES);
    for (int64_t p = kk; p < kend; ++p) {
        memcpy(&b0, b + p * n, AXIOM_VBYTES);
        memcpy(&b1, b + p * n + AXIOM_VL, AXIOM_VBYTES);
        const AXIOM_T a0 = a[0 * k + p], a1 = a[1 * k + p], a2 = a[2 * k + p], a3 = a[3 * k + p];
        c00 += a0 * b0, c01 += a0 * b1;
        c10 += a1 * b0, c11 += a1 * b1;
        c20 += a2 * b0, c21 += a2 * b1;
        c30 += a3 * b0, c31 += a3 * b1;
    }
    memcpy(c + 0 * n, &c00, AXIOM_VBYTES), memcpy(c + 0 * n + AXIOM_VL, &c01, AXIOM_VBYTES);
    memcpy(c + 1 * n, &c10, AXIOM_VBYTES), memcpy(c + 1 * n + AXIOM_VL, &c11, AXIOM_VBYTES);
    memcpy(c + 2 * n, &c20, AXIOM_VBYTES), memcpy(c + 2 * n + AXIOM_VL, &c21, AXIOM_VBYTES);
    memcpy(c + 3 * n, &c30, AXIOM_VBYTES), memcpy(c + 3 * n + AXIOM_VL, &c31, AXIOM_VBYTES);
}

/* c[i, 0..nb] += a[i, kk..kend] @ b[kk..kend, 0..nb] for rows i in [0, rows), any nb */
static inline void AXIOM_EDGE(const AXIOM_T *restrict a, const AXIOM_T *restrict b, AXIOM_T *restrict c, int64_t rows,
                              int64_t nb, int64_t k, int64_t n, int64_t kk, int64_t kend) {
    for (int64_t i = 0; i < rows; ++i) {
        AXIOM_T *restrict ci = c + i * n;
        for (int64_t p = kk; p < kend; ++p) {
            const AXIOM_T *restrict bp = b + p * n;
            const AXIOM_T ai = a[i * k + p];
            for (int64_t j = 0; j < nb; ++j) {
                ci[j] += ai * bp[j];
            }
        }
    }
}

/* c[i0..i1, :] = a[i0..i1, :] @ b */
static void AXIOM_BLOCK(const AXIOM_T *restrict a, const AXIOM_T *restrict b, AXIOM_T *restrict c, int64_t i0,
                        int64_t i1, int64_t k, int64_t n) {
    for (int64_t i = i0; i < i1; ++i) {
        AXIOM_T *restrict ci = c + i * n;
        for (int64_t j = 0; j < n; ++j) {
            ci[j] = (AXIOM_T)0;
        }
    }
    for (int64_t kk = 0; kk < k; kk += AXIOM_KC) {
        const int64_t kend = kk + AXIOM_KC < k ? kk + AXIOM_KC : k;
        for (int64_t jj = 0; jj < n; jj += AXIOM_NC) {
            const int64_t jend = jj + AXIOM_NC < n ? jj + AXIOM_NC : n;
            const int64_t jvec = jj + (jend - jj) / (2 * AXIOM_VL) * (2 * AXIOM_VL);
            int64_t i = i0;
            for (; i + 4 <= i1; i += 4) {
                for (int64_t j = jj; j < jvec; j += (2 * AXIOM_VL)) {
                    AXIOM_MICRO(a + i * k, b + j, c + i * n + j, k, n, kk, kend);
                }
                AXIOM_EDGE(a + i * k, b + jvec, c + i * n + jvec, 4, jend - jvec, k, n, kk, kend);
            }
            AXIOM_EDGE(a + i * k, b + jj, c + i * n + jj, i1 - i, jend - jj, k, n, kk, kend);
        }
    }
}

AXIOM_API int AXIOM_NAME(const AXIOM_T *a, const AXIOM_T *b, AXIOM_T *c, int64_t m, int64_t k, int64_t n) {
    const int rc = axiom_check_matmul(a, b, c, m, k, n, sizeof(AXIOM_T));
    if (rc != AXIOM_OK || m == 0 || n == 0) {
        return rc;
    }
    const int64_t nblocks = (m + AXIOM_MC - 1) / AXIOM_MC;
    /* double: m * k * n may overflow int64 for sizes that are valid on their own */
    const int parallel = (double)m * (double)k * (double)n >= AXIOM_PARALLEL_WORK && nblocks > 1;
#pragma omp parallel for schedule(dynamic, 1) if (parallel)
    for (int64_t blk = 0; blk < nblocks; ++blk) {
        const int64_t i0 = blk * AXIOM_MC;
        const int64_t i1 = i0 + AXIOM_MC < m ? i0 + AXIOM_MC : m;
        AXIOM_BLOCK(a, b, c, i0, i1, k, n);
    }
    return AXIOM_OK;
}

#undef AXIOM_VL
