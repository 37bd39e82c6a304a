/*
 * layout.cu - the data movement a device-resident compiled model needs between its kernels:
 *   axiom_add           y = a + b (residual connections)
 *   axiom_copy_block    dst[o, dst_offset + j] = src[o, j] (concatenation along any axis)
 *   axiom_permute_0213  (d0, d1, d2, d3) -> (d0, d2, d1, d3) (attention head split / merge)
 *   axiom_gather_rows   y[i, :] = table[idx[i], :] (embedding lookups; a bad index gives NaN)
 *   axiom_permute       any permutation of up to PERM_MAX_DIMS axes (NCHW <-> NHWC of imported models)
 * Every array holds fewer than 2**31 elements (the runtime's limit), so element indices fit an
 * int and the index arithmetic uses 32-bit divisions; grid-stride loops use idx_t counters.
 * Launch: 1-D, any local size (axiom_permute_0213_tiled: local (LAY_TILE, LAY_ROWS)).
 */
#ifndef AXIOM_DEVICE_DIALECT
#include "axiom_device.cuh"
#endif

#define LAY_TILE 32 /* tile of the transposing permutation: LAY_TILE x LAY_TILE (i1, i2) pairs */
#define LAY_ROWS 8  /* work-items per tile column (each moves LAY_TILE / LAY_ROWS elements) */
#define PERM_MAX_DIMS 6

KERNEL void axiom_add(const GLOBAL real *a, const GLOBAL real *b, GLOBAL real *y, idx_t n) {
    const idx_t step = (idx_t)LOCAL_SIZE(0) * NUM_GROUPS(0);
    for (idx_t e = GLOBAL_ID(0); e < n; e += step) {
        y[e] = a[e] + b[e];
    }
}

KERNEL void axiom_copy_block(const GLOBAL real *RESTRICT src, GLOBAL real *RESTRICT dst, int outer, int src_cols,
                             int dst_cols, int dst_offset) {
    const idx_t n = (idx_t)outer * src_cols;
    const idx_t step = (idx_t)LOCAL_SIZE(0) * NUM_GROUPS(0);
    for (idx_t e = GLOBAL_ID(0); e < n; e += step) {
        const int o = (int)e / src_cols, j = (int)e - o * src_cols;
        dst[(idx_t)o * dst_cols + dst_offset + j] = src[e];
    }
}

/* element-wise: every dst element reads its src element (coalesced along d3 on both sides) */
KERNEL void axiom_permute_0213(const GLOBAL real *RESTRICT src, GLOBAL real *RESTRICT dst, int d0, int d1, int d2,
                               int d3) {
    const idx_t n = (idx_t)d0 * d1 * d2 * d3;
    const idx_t step = (idx_t)LOCAL_SIZE(0) * NUM_GROUPS(0);
    for (idx_t e = GLOBAL_ID(0); e < n; e += step) {
        int rest = (int)e;
        const int c = rest % d3;
        rest /= d3;
        const int i1 = rest % d1; /* dst index (a, i2, i1, c) */
        rest /= d1;
        const int i2 = rest % d2;
        const int a = rest / d2;
        dst[e] = src[(((idx_t)a * d1 + i1) * d2 + i2) * d3 + c];
    }
}

/* d3 == 1: a batched (d1, d2) -> (d2, d1) transpose, tiled through local memory so that both the
 * loads and the stores are coalesced. groups (ceil(d2 / LAY_TILE), ceil(d1 / LAY_TILE), d0 (loops
 * past 65535)). */
KERNEL void axiom_permute_0213_tiled(const GLOBAL real *RESTRICT src, GLOBAL real *RESTRICT dst, int d0, int d1,
                                     int d2) {
    LOCAL real tile[LAY_TILE][LAY_TILE + 1];
    const int tx = LOCAL_ID(0), ty = LOCAL_ID(1);
    const int i2_0 = GROUP_ID(0) * LAY_TILE, i1_0 = GROUP_ID(1) * LAY_TILE;
    for (int a = GROUP_ID(2); a < d0; a += NUM_GROUPS(2)) {
        const idx_t base = (idx_t)a * d1 * d2;
        for (int y = ty; y < LAY_TILE; y += LAY_ROWS) { /* src rows i1, columns i2 */
            const int i1 = i1_0 + y, i2 = i2_0 + tx;
            if (i1 < d1 && i2 < d2) {
                tile[y][tx] = src[base + (idx_t)i1 * d2 + i2];
            }
        }
        BARRIER();
        for (int y = ty; y < LAY_TILE; y += LAY_ROWS) { /* dst rows i2, columns i1 */
            const int i2 = i2_0 + y, i1 = i1_0 + tx;
            if (i1 < d1 && i2 < d2) {
                dst[base + (idx_t)i2 * d1 + i1] = tile[tx][y];
            }
        }
        BARRIER();
    }
}

KERNEL void axiom_gather_rows(const GLOBAL real *RESTRICT table, const GLOBAL int *RESTRICT idx,
                              GLOBAL real *RESTRICT y, int n_idx, int rows, int dim) {
    const idx_t n = (idx_t)n_idx * dim;
    const idx_t step = (idx_t)LOCAL_SIZE(0) * NUM_GROUPS(0);
    for (idx_t e = GLOBAL_ID(0); e < n; e += step) {
        const int i = (int)e / dim, c = (int)e - i * dim;
        const int row = idx[i];
        y[e] = (row >= 0 && row < rows) ? table[(idx_t)row * dim + c] : REAL_NAN;
    }
}

/* dst = src transposed: dst has dims o0..o5 (ndim used, outermost first; unused ones are 1) and
 * dst element (i0, ..., i5) reads src at i0 * s0 + ... + i5 * s5 (the src strides of the axes in
 * dst order). Element-wise; the innermost dst axis is the fastest, so stores are coalesced. */
KERNEL void axiom_permute(const GLOBAL real *RESTRICT src, GLOBAL real *RESTRICT dst, idx_t n, int o0, int o1, int o2,
                          int o3, int o4, int o5, idx_t s0, idx_t s1, idx_t s2, idx_t s3, idx_t s4, idx_t s5) {
    const idx_t step = (idx_t)LOCAL_SIZE(0) * NUM_GROUPS(0);
    for (idx_t e = GLOBAL_ID(0); e < n; e += step) {
        int rest = (int)e;
        idx_t at = (idx_t)(rest % o5) * s5;
        rest /= o5;
        at += (idx_t)(rest % o4) * s4;
        rest /= o4;
        at += (idx_t)(rest % o3) * s3;
        rest /= o3;
        at += (idx_t)(rest % o2) * s2;
        rest /= o2;
        at += (idx_t)(rest % o1) * s1;
        rest /= o1;
        at += (idx_t)rest * s0;
        (void)o0;
        dst[e] = src[at];
    }
}
