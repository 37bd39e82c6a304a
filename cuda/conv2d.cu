/*
 * conv2d.cu - NHWC 2-D cross-correlation with a fused bias + activation epilogue:
 *     y[n, oh, ow, co] = act(sum_{i, j, c} xpad[n, oh * sh + i * dh, ow * sw + j * dw, g * cin_g + c]
 *                              * w[i, j, c, co] + bias[co]),  g = co / cout_g
 * x (n, h, w, c_in), w (k_h, k_w, c_in / groups, c_out), bias (c_out,) or NULL, y (n, out_h, out_w,
 * c_out); xpad is x zero-padded by pad_top / pad_left (and bottom / right). Padded taps are
 * multiplied like real ones (0 * inf = NaN), as the NumPy reference and csrc/conv.c do.
 *
 * axiom_conv2d_gemm (the general case) is an implicit GEMM per group: M = n * out_h * out_w output
 * pixels, N = cout_g output channels, K = k_h * k_w * cin_g taps, A gathered from x on the fly.
 * Launch: local (256,); groups (ceil(M / 64) * ceil(cout_g / 64), min(groups, 65535)).
 *
 * axiom_conv2d_direct (cin_g == 1: depthwise, with any channel multiplier) computes one output
 * element per work-item, channels fastest (coalesced). Launch: 1-D, local 256, grid-stride loop.
 *
 * All sizes are int: the launcher checks that n * out_h * out_w, h + pads and w + pads fit.
 */
#ifndef AXIOM_DEVICE_DIALECT
#include "axiom_device.cuh"
#endif
#include "act.cuh"
#include "gemm_tile.cuh"

/* Work-item t's share of the slices at reduction offset k0 (see GEMM_FETCH of matmul.cu), into registers:
 * pa[i] = tap k0 + t % 16 = (i * k_w + j) * cin_g + c of its i-th pixel (0 where padded or beyond K), pb[i]
 * = weight row k0 + t / 64 + 4 i, column col0 + t % 64 of group g (wg = w + g * cout_g). A macro: no
 * pointer to private arrays may cross a barrier. */
#define CONV_FETCH(k0)                                                                                        \
    do {                                                                                                      \
        const int gk_ = (k0) + tx, bc_ = col0 + t % 64;                                                       \
        int dy_ = 0, dx_ = 0, ch_ = 0;                                                                        \
        if (gk_ < K) {                                                                                        \
            const int tap_ = gk_ / cin_g;                                                                     \
            ch_ = g * cin_g + gk_ % cin_g;                                                                    \
            dy_ = (tap_ / k_w) * dil_h;                                                                       \
            dx_ = (tap_ % k_w) * dil_w;                                                                       \
        }                                                                                                     \
        GEMM_UNROLL                                                                                           \
        for (int i_ = 0; i_ < 4; ++i_) {                                                                      \
            const int yy_ = ih0[i_] + dy_, xx_ = iw0[i_] + dx_, bk_ = (k0) + t / 64 + 4 * i_;                 \
            const int in_ = gk_ < K && yy_ >= 0 && yy_ < h && xx_ >= 0 && xx_ < wd;                           \
            pa[i_] = in_ ? x[xbase[i_] + ((idx_t)yy_ * wd + xx_) * c_in + ch_] : (real)0;                     \
            pb[i_] = (bk_ < K && bc_ < cout_g) ? wg[(idx_t)bk_ * c_out + bc_] : (real)0;                      \
        }                                                                                                     \
    } while (0)

KERNEL void axiom_conv2d_gemm(const GLOBAL real *RESTRICT x, const GLOBAL real *RESTRICT w,
                              const GLOBAL real *RESTRICT bias, GLOBAL real *RESTRICT y, int n, int h, int wd,
                              int c_in, int c_out, int k_h, int k_w, int out_h, int out_w, int stride_h,
                              int stride_w, int pad_top, int pad_left, int dil_h, int dil_w, int groups, int act,
                              real alpha) {
    LOCAL real As[GEMM_BK * GEMM_AS_STRIDE];
    LOCAL real Bs[GEMM_BK * GEMM_BN];
    const int t = LOCAL_ID(0), tx = t % 16, ty = t / 16;
    const int cin_g = c_in / groups, cout_g = c_out / groups;
    const int M = n * out_h * out_w, K = k_h * k_w * cin_g;
    const int n_tiles = (cout_g + GEMM_BN - 1) / GEMM_BN;
    const int row0 = (GROUP_ID(0) / n_tiles) * GEMM_BM, col0 = (GROUP_ID(0) % n_tiles) * GEMM_BN;

    /* the 4 output pixels whose A rows this work-item stages: image base offset and window origin */
    idx_t xbase[4];
    int ih0[4], iw0[4];
    GEMM_UNROLL
    for (int i = 0; i < 4; ++i) {
        const int p = row0 + ty + 16 * i;
        if (p < M) {
            const int ow = p % out_w, q = p / out_w;
            const int oh = q % out_h, img = q / out_h;
            xbase[i] = (idx_t)img * h * wd * c_in;
            ih0[i] = oh * stride_h - pad_top;
            iw0[i] = ow * stride_w - pad_left;
        } else {
            xbase[i] = 0;
            ih0[i] = -1 - (k_h - 1) * dil_h; /* every tap of a missing pixel is out of range */
            iw0[i] = 0;
        }
    }

    for (int g = GROUP_ID(1); g < groups; g += NUM_GROUPS(1)) {
        real acc[16];
        GEMM_UNROLL
        for (int i = 0; i < 16; ++i) acc[i] = (real)0;
        /* the next slices are gathered into registers while the current one is multiplied */
        real pa[4], pb[4];
        const GLOBAL real *wg = w + (idx_t)g * cout_g;
        for (int k0 = 0; k0 < K; k0 += GEMM_BK) {
            if (k0 == 0) CONV_FETCH(0);
            GEMM_UNROLL
            for (int i = 0; i < 4; ++i) {
                As[tx * GEMM_AS_STRIDE + ty + 16 * i] = pa[i];
                Bs[(t / 64 + 4 * i) * GEMM_BN + t % 64] = pb[i];
            }
            BARRIER();
            if (k0 + GEMM_BK < K) CONV_FETCH(k0 + GEMM_BK);
            GEMM_TILE_STEP(As, Bs, acc, tx, ty);
            BARRIER();
        }
        GEMM_UNROLL
        for (int i = 0; i < 4; ++i) {
            const int p = row0 + ty + 16 * i;
            if (p >= M) continue;
            GEMM_UNROLL
            for (int j = 0; j < 4; ++j) {
                const int col = col0 + tx + 16 * j;
                if (col >= cout_g) continue;
                const int co = g * cout_g + col;
                real v = acc[i * 4 + j];
                if (bias) v += bias[co];
                y[(idx_t)p * c_out + co] = act_apply(v, act, alpha);
            }
        }
    }
}

KERNEL void axiom_conv2d_direct(const GLOBAL real *RESTRICT x, const GLOBAL real *RESTRICT w,
                                const GLOBAL real *RESTRICT bias, GLOBAL real *RESTRICT y, int n, int h, int wd,
                                int c_in, int c_out, int k_h, int k_w, int out_h, int out_w, int stride_h,
                                int stride_w, int pad_top, int pad_left, int dil_h, int dil_w, int groups, int act,
                                real alpha) {
    const int cout_g = c_out / groups;
    const idx_t total = (idx_t)n * out_h * out_w * c_out;
    const idx_t step = (idx_t)LOCAL_SIZE(0) * NUM_GROUPS(0);
    for (idx_t e = GLOBAL_ID(0); e < total; e += step) {
        const int co = (int)(e % c_out);
        const idx_t p = e / c_out;
        const int ow = (int)(p % out_w);
        const idx_t q = p / out_w;
        const int oh = (int)(q % out_h), img = (int)(q / out_h);
        const GLOBAL real *xi = x + (idx_t)img * h * wd * c_in + co / cout_g; /* cin_g == 1: channel g */
        const int ih0 = oh * stride_h - pad_top, iw0 = ow * stride_w - pad_left;
        real acc = (real)0;
        for (int i = 0; i < k_h; ++i) {
            const int yy = ih0 + i * dil_h;
            const int row_in = yy >= 0 && yy < h;
            for (int j = 0; j < k_w; ++j) {
                const int xx = iw0 + j * dil_w;
                const real xv = (row_in && xx >= 0 && xx < wd) ? xi[((idx_t)yy * wd + xx) * c_in] : (real)0;
                acc += xv * w[(idx_t)(i * k_w + j) * c_out + co];
            }
        }
        if (bias) acc += bias[co];
        y[e] = act_apply(acc, act, alpha);
    }
}
