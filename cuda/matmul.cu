/*
 * matmul.cu - batched GEMM with a fused bias + activation epilogue:
 *     c[i] = act(a[i] @ b[i] + bias),  i < batch
 * a[i]: the row-major m x k block at a + i * a_bs (a_bs = 0: one a for every batch), b[i] the
 * row-major k x n block at b + i * b_bs, c contiguous (batch, m, n), bias (n,) or NULL.
 *
 * axiom_gemm launch: local (256, 1, 1); groups (ceil(m / 64) * ceil(n / 64), min(batch, 65535), splits);
 * the kernel loops over the batches beyond axis 1. Each work-group computes one 64 x 64 tile of c
 * (gemm_tile.cuh), staging 16-wide slices of a and b in local memory with coalesced loads (the next
 * slice is read into registers while the current one is multiplied). k == 0 gives act(bias).
 *
 * Split-K (splits > 1, for a few tiles with a long reduction, so that enough work-groups share it):
 * split s sums the reduction range [s * k_chunk, (s + 1) * k_chunk) into its own slice c + s * c_split
 * without bias / activation; axiom_gemm_reduce then adds the slices in order (deterministic), the
 * bias and the activation. Launch: 1-D, local 256, grid-stride loop.
 */
#ifndef AXIOM_DEVICE_DIALECT
#include "axiom_device.cuh"
#endif
#include "act.cuh"
#include "gemm_tile.cuh"

/* Work-item t's share of the slices at reduction offset k0, into registers pa / pb: pa[i] = a[row0 + t / 16
 * + 16 i][k0 + t % 16] (16 items read 16 consecutive elements of a row), pb[i] = b[k0 + t / 64 + 4 i][col0 +
 * t % 64]; zeros outside the matrices. (A macro: no pointer to private arrays may cross a barrier.) */
#define GEMM_FETCH(k0)                                                                                        \
    do {                                                                                                      \
        const int ak_ = (k0) + tx, bc_ = col0 + t % 64;                                                       \
        GEMM_UNROLL                                                                                           \
        for (int i_ = 0; i_ < 4; ++i_) {                                                                      \
            const int ar_ = row0 + ty + 16 * i_, bk_ = (k0) + t / 64 + 4 * i_;                                \
            pa[i_] = (ar_ < m && ak_ < k_hi) ? ab[(idx_t)ar_ * k + ak_] : (real)0;                               \
            pb[i_] = (bk_ < k_hi && bc_ < n) ? bb[(idx_t)bk_ * n + bc_] : (real)0;                               \
        }                                                                                                     \
    } while (0)

KERNEL void axiom_gemm(const GLOBAL real *RESTRICT a, const GLOBAL real *RESTRICT b, GLOBAL real *RESTRICT c,
                       const GLOBAL real *RESTRICT bias, int batch, int m, int n, int k, idx_t a_bs, idx_t b_bs,
                       int act, real alpha, int k_chunk, idx_t c_split) {
    LOCAL real As[GEMM_BK * GEMM_AS_STRIDE];
    LOCAL real Bs[GEMM_BK * GEMM_BN];
    const int t = LOCAL_ID(0), tx = t % 16, ty = t / 16;
    const int n_tiles = (n + GEMM_BN - 1) / GEMM_BN;
    const int row0 = (GROUP_ID(0) / n_tiles) * GEMM_BM, col0 = (GROUP_ID(0) % n_tiles) * GEMM_BN;
    const int split = NUM_GROUPS(2) > 1;
    const int k_lo = GROUP_ID(2) * k_chunk, k_hi = (split && k_lo + k_chunk < k) ? k_lo + k_chunk : k;
    c += (idx_t)GROUP_ID(2) * c_split;
    for (int bi = GROUP_ID(1); bi < batch; bi += NUM_GROUPS(1)) {
        const GLOBAL real *ab = a + (idx_t)bi * a_bs;
        const GLOBAL real *bb = b + (idx_t)bi * b_bs;
        real acc[16];
        GEMM_UNROLL
        for (int i = 0; i < 16; ++i) acc[i] = (real)0;
        /* the next slices are fetched into registers while the current one is multiplied */
        real pa[4], pb[4];
        for (int k0 = k_lo; k0 < k_hi; k0 += GEMM_BK) {
            if (k0 == k_lo) GEMM_FETCH(k_lo);
            GEMM_UNROLL
            for (int i = 0; i < 4; ++i) {
                As[tx * GEMM_AS_STRIDE + ty + 16 * i] = pa[i];
                Bs[(t / 64 + 4 * i) * GEMM_BN + t % 64] = pb[i];
            }
            BARRIER();
            if (k0 + GEMM_BK < k_hi) GEMM_FETCH(k0 + GEMM_BK);
            GEMM_TILE_STEP(As, Bs, acc, tx, ty);
            BARRIER();
        }
        GLOBAL real *cb = c + (idx_t)bi * m * n;
        GEMM_UNROLL
        for (int i = 0; i < 4; ++i) {
            const int r = row0 + ty + 16 * i;
            if (r >= m) continue;
            GEMM_UNROLL
            for (int j = 0; j < 4; ++j) {
                const int col = col0 + tx + 16 * j;
                if (col >= n) continue;
                real v = acc[i * 4 + j];
                if (split) {
                    cb[(idx_t)r * n + col] = v; /* a partial sum: axiom_gemm_reduce finishes it */
                    continue;
                }
                if (bias) v += bias[col];
                cb[(idx_t)r * n + col] = act_apply(v, act, alpha);
            }
        }
    }
}

/* c[e] = act(sum_s part[s * total + e] + bias[e % n]) for e < total (the splits added in order) */
KERNEL void axiom_gemm_reduce(const GLOBAL real *RESTRICT part, GLOBAL real *RESTRICT c,
                              const GLOBAL real *RESTRICT bias, int splits, idx_t total, int n, int act,
                              real alpha) {
    const idx_t step = (idx_t)LOCAL_SIZE(0) * NUM_GROUPS(0);
    for (idx_t e = GLOBAL_ID(0); e < total; e += step) {
        real v = part[e];
        for (int s = 1; s < splits; ++s) v += part[(idx_t)s * total + e];
        if (bias) v += bias[e % n];
        c[e] = act_apply(v, act, alpha);
    }
}
