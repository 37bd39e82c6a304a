/*
 * pooling.cu - NHWC max / average pooling and global average pooling (the contract's
 * max_pool2d / avg_pool2d / global_avg_pool; the semantics of csrc/nn_pool.c).
 *
 * max / avg: one work-item per output element, channel fastest (neighbouring items read
 *   neighbouring channels: coalesced), 1-D grid-stride loop. The window's valid taps are computed
 *   once per item, so padding is skipped, never read: a padded cell never wins a max (a window
 *   of padding only gives -inf), NaN wins; an average divides by kh * kw (count_include_pad) or
 *   by the number of valid taps (a window of padding only then gives 0 / 0 = NaN).
 * global_avg_pool: (n, hw, c) -> (n, c); a work-group of POOL_LOCAL items serves GAP_COLS
 *   neighbouring (image, channel) columns with POOL_LOCAL / GAP_COLS lanes each; lanes stride
 *   over hw and meet in a local-memory tree. hw == 0 gives 0 / 0 = NaN, like the reference.
 */
#ifndef AXIOM_DEVICE_DIALECT
#include "axiom_device.cuh"
#endif

#define POOL_LOCAL 256
#define GAP_COLS 32
#define GAP_LANES (POOL_LOCAL / GAP_COLS)

/* Valid taps along one axis: k in [*k0, *k1) with 0 <= start + k * dil < in (nn_pool.c's pool_taps,
 * except that an empty range is always k0 == k1: a window far inside the top / left padding then
 * counts 0 cells, and its average is 0 / 0 = NaN like the reference's, not 0 / -1). */
DEVICE void pool_taps(int start, int k, int dil, int in, int *k0, int *k1) {
    int a = 0, b = k;
    if (start < 0) {
        a = (-start + dil - 1) / dil;
    }
    if ((idx_t)start + (idx_t)(k - 1) * dil >= in) {
        const int last = in - 1 - start;
        b = last < 0 ? 0 : last / dil + 1;
    }
    b = b > k ? k : b;
    *k0 = a > b ? b : a;
    *k1 = b;
}

/* mode 0: max (dilation dh, dw); mode 1: average (count_include_pad in `include_pad`) */
DEVICE void pool2d(const GLOBAL real *RESTRICT x, GLOBAL real *RESTRICT y, int n, int h, int w, int c, int kh, int kw,
                   int sh, int sw, int pt, int pl, int dh, int dw, int ho, int wo, int include_pad, int mode) {
    const idx_t total = (idx_t)n * ho * wo * c;
    const idx_t step = (idx_t)LOCAL_SIZE(0) * NUM_GROUPS(0);
    for (idx_t e = GLOBAL_ID(0); e < total; e += step) {
        /* an output array has < 2**31 elements (the runtime's limit): 32-bit index arithmetic */
        const int ei = (int)e, ch = ei % c, pix = ei / c;
        const int ow = pix % wo, oh = (pix / wo) % ho, b = pix / wo / ho;
        const int ih = oh * sh - pt, iw = ow * sw - pl; /* tap (0, 0), maybe in the padding */
        int i0, i1, j0, j1;
        pool_taps(ih, kh, dh, h, &i0, &i1);
        pool_taps(iw, kw, dw, w, &j0, &j1);
        const GLOBAL real *img = x + (idx_t)b * h * w * c + ch;
        real acc = mode == 0 ? -REAL_INF : (real)0;
        for (int i = i0; i < i1; ++i) {
            const GLOBAL real *row = img + ((idx_t)(ih + i * dh) * w + iw) * c;
            for (int jj = j0; jj < j1; ++jj) {
                const real v = row[(idx_t)jj * dw * c];
                if (mode == 0) {
                    acc = (v > acc || ISNAN(v)) ? v : acc; /* once NaN, stays NaN */
                } else {
                    acc += v;
                }
            }
        }
        if (mode == 1) {
            const int count = include_pad ? kh * kw : (i1 - i0) * (j1 - j0);
            acc = acc / (real)count;
        }
        y[e] = acc;
    }
}

KERNEL void axiom_max_pool2d(const GLOBAL real *RESTRICT x, GLOBAL real *RESTRICT y, int n, int h, int w, int c,
                             int kh, int kw, int sh, int sw, int pt, int pl, int dh, int dw, int ho, int wo) {
    pool2d(x, y, n, h, w, c, kh, kw, sh, sw, pt, pl, dh, dw, ho, wo, 0, 0);
}

KERNEL void axiom_avg_pool2d(const GLOBAL real *RESTRICT x, GLOBAL real *RESTRICT y, int n, int h, int w, int c,
                             int kh, int kw, int sh, int sw, int pt, int pl, int ho, int wo, int include_pad) {
    pool2d(x, y, n, h, w, c, kh, kw, sh, sw, pt, pl, 1, 1, ho, wo, include_pad, 1);
}

KERNEL void axiom_global_avg_pool(const GLOBAL real *RESTRICT x, GLOBAL real *RESTRICT y, int n, int hw, int c) {
    LOCAL real buf[POOL_LOCAL];
    const int lid = LOCAL_ID(0);
    const int col = lid % GAP_COLS, lane = lid / GAP_COLS;
    const idx_t columns = (idx_t)n * c;
    const idx_t nblocks = (columns + GAP_COLS - 1) / GAP_COLS;
    for (idx_t blk = GROUP_ID(0); blk < nblocks; blk += NUM_GROUPS(0)) {
        const idx_t t = blk * GAP_COLS + col;
        const int valid = t < columns;
        const idx_t b = valid ? t / c : 0, ch = valid ? t % c : 0;
        const GLOBAL real *xc = x + b * hw * c + ch;
        real s = (real)0;
        if (valid) {
            for (int r = lane; r < hw; r += GAP_LANES) {
                s += xc[(idx_t)r * c];
            }
        }
        BARRIER(); /* the previous block's readers are done with buf */
        buf[lid] = s;
        BARRIER();
        for (int k = GAP_LANES >> 1; k > 0; k >>= 1) {
            if (lane < k) {
                buf[lid] += buf[lid + k * GAP_COLS];
            }
            BARRIER();
        }
        if (valid && lane == 0) {
            y[t] = buf[col] / (real)hw;
        }
    }
}
