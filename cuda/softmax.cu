/*
 * softmax.cu - softmax / log-softmax along the middle axis of an (outer, n, inner) array (the
 * contract's softmax / log_softmax; the passes and special values of csrc/nn_softmax.c).
 *
 * The array is outer * inner columns of n elements (column t: o = t / inner, j = t % inner,
 * element i at o * n * inner + i * inner + j). A work-group of SOFTMAX_LOCAL items serves `cw`
 * consecutive columns with `lanes` items each (cw * lanes == SOFTMAX_LOCAL, lanes a power of
 * two). The lanes of a column stride over its n elements and combine partial results with a
 * tree in local memory: the maximum, then the sum of exp(x - max), then the output pass.
 * Coalescing: for inner == 1 (rows are contiguous) the lanes of one row are neighbouring items
 * (lane_fast = 1); for inner > 1 neighbouring items take neighbouring columns (lane_fast = 0),
 * which are contiguous along inner.
 * Special values follow the reference: the maximum is NaN when the column holds NaN, so a NaN,
 * +inf or all -inf column gives exp(NaN) = NaN, and that NaN reaches the whole column.
 * Launch: 1-D, local size SOFTMAX_LOCAL; groups loop over blocks of cw columns.
 */
#ifndef AXIOM_DEVICE_DIALECT
#include "axiom_device.cuh"
#endif

#define SOFTMAX_LOCAL 256

/* the larger of a and b; NaN if either is NaN (NaN propagates like the reference's np.max) */
DEVICE real softmax_max_nan(real a, real b) {
    return (b > a || ISNAN(b)) ? b : a;
}

/* Tree over the `lanes` entries of each column: buf[col * lanes + lane]; op 0 = max, 1 = sum.
 * Every item of the group must call it; the result is the column's total. */
DEVICE real softmax_combine(LOCAL_PTR real *buf, real v, int slot, int lane, int lanes, int op) {
    BARRIER(); /* the previous call's readers are done with buf */
    buf[slot] = v;
    BARRIER();
    for (int s = lanes >> 1; s > 0; s >>= 1) {
        if (lane < s) {
            buf[slot] = op == 0 ? softmax_max_nan(buf[slot], buf[slot + s]) : buf[slot] + buf[slot + s];
        }
        BARRIER();
    }
    return buf[slot - lane];
}

KERNEL void axiom_softmax(const GLOBAL real *RESTRICT x, GLOBAL real *RESTRICT y, idx_t columns, int n, int inner,
                          int use_log, int lanes, int lane_fast) {
    LOCAL real buf[SOFTMAX_LOCAL];
    const int lid = LOCAL_ID(0);
    const int cw = SOFTMAX_LOCAL / lanes;
    const int col = lane_fast ? lid / lanes : lid % cw;
    const int lane = lane_fast ? lid % lanes : lid / cw;
    const int slot = col * lanes + lane;
    const idx_t nblocks = (columns + cw - 1) / cw;
    for (idx_t blk = GROUP_ID(0); blk < nblocks; blk += NUM_GROUPS(0)) {
        const idx_t t = blk * cw + col;
        const int valid = t < columns;
        const idx_t o = valid ? t / inner : 0, j = valid ? t % inner : 0;
        const GLOBAL real *xc = x + o * n * inner + j;
        GLOBAL real *yc = y + o * n * inner + j;
        real m = -REAL_INF;
        if (valid) {
            for (int i = lane; i < n; i += lanes) {
                m = softmax_max_nan(m, xc[(idx_t)i * inner]);
            }
        }
        m = softmax_combine(buf, m, slot, lane, lanes, 0);
        real s = (real)0;
        if (valid) {
            for (int i = lane; i < n; i += lanes) {
                s += EXP(xc[(idx_t)i * inner] - m);
            }
        }
        s = softmax_combine(buf, s, slot, lane, lanes, 1);
        if (valid) {
            if (use_log) {
                const real lse = LOG(s);
                for (int i = lane; i < n; i += lanes) {
                    yc[(idx_t)i * inner] = (xc[(idx_t)i * inner] - m) - lse;
                }
            } else {
                const real inv = (real)1 / s;
                for (int i = lane; i < n; i += lanes) {
                    yc[(idx_t)i * inner] = EXP(xc[(idx_t)i * inner] - m) * inv;
                }
            }
        }
    }
}
