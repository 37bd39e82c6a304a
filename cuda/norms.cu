/*
 * norms.cu - inference batch norm, layer norm and RMS norm (the contract's batchnorm /
 * layernorm / rmsnorm; formulas of csrc/nn_norm.c).
 *
 * batchnorm: element-parallel, 1-D grid-stride loop; y = (x - mean) * scale + beta with
 *   scale = gamma / sqrt(var + eps) (the C kernel's order of operations).
 * layernorm / rmsnorm: a work-group of NORM_LOCAL items serves `cw` rows of `lanes` items each
 *   (cw * lanes == NORM_LOCAL, lanes a power of two chosen by the launcher from the row length:
 *   256 lanes on one long row, or many short rows per group). The lanes of a row stride over it
 *   (coalesced) and combine their partial sums with a tree in local memory; layer norm makes two
 *   passes (mean, then the biased variance around it, like C), then writes the normalised row.
 *   Launch: 1-D, local size NORM_LOCAL; groups loop over blocks of cw rows.
 */
#ifndef AXIOM_DEVICE_DIALECT
#include "axiom_device.cuh"
#endif

#define NORM_LOCAL 256

KERNEL void axiom_batchnorm(const GLOBAL real *RESTRICT x, const GLOBAL real *RESTRICT mean,
                            const GLOBAL real *RESTRICT var, const GLOBAL real *RESTRICT gamma,
                            const GLOBAL real *RESTRICT beta, GLOBAL real *RESTRICT y, idx_t count, int c, real eps,
                            int has_gamma, int has_beta) {
    const idx_t step = (idx_t)LOCAL_SIZE(0) * NUM_GROUPS(0);
    for (idx_t i = GLOBAL_ID(0); i < count; i += step) {
        const int j = (int)i % c; /* count < 2**31 (the runtime's array limit): a 32-bit remainder */
        real scale = (real)1 / SQRT(var[j] + eps);
        if (has_gamma) {
            scale = gamma[j] * scale;
        }
        real t = (x[i] - mean[j]) * scale;
        if (has_beta) {
            t += beta[j];
        }
        y[i] = t;
    }
}

/* Sum of v over the `lanes` items of this item's row (items lid - lane .. lid - lane + lanes - 1;
 * buf has NORM_LOCAL entries). Every item of the group must call it. */
DEVICE real norm_segment_sum(LOCAL_PTR real *buf, real v, int lid, int lane, int lanes) {
    BARRIER(); /* the previous call's readers are done with buf */
    buf[lid] = v;
    BARRIER();
    for (int s = lanes >> 1; s > 0; s >>= 1) {
        if (lane < s) {
            buf[lid] += buf[lid + s];
        }
        BARRIER();
    }
    return buf[lid - lane];
}

/* mode 0: layer norm (gamma, beta optional); mode 1: RMS norm (gamma optional, beta unused) */
DEVICE void norm_rows(const GLOBAL real *RESTRICT x, const GLOBAL real *RESTRICT gamma,
                      const GLOBAL real *RESTRICT beta, GLOBAL real *RESTRICT y, int rows, int n, real eps,
                      int lanes, int has_gamma, int has_beta, int mode, LOCAL_PTR real *buf) {
    const int lid = LOCAL_ID(0);
    const int lane = lid & (lanes - 1);
    const int cw = NORM_LOCAL / lanes;
    const idx_t nblocks = ((idx_t)rows + cw - 1) / cw; /* 64-bit: rows may be close to 2**31 */
    for (idx_t blk = GROUP_ID(0); blk < nblocks; blk += NUM_GROUPS(0)) {
        const idx_t row = blk * cw + lid / lanes;
        const int valid = row < rows;
        const GLOBAL real *xr = x + (idx_t)(valid ? row : 0) * n;
        GLOBAL real *yr = y + (idx_t)(valid ? row : 0) * n;
        real s = (real)0;
        if (valid) {
            for (int i = lane; i < n; i += lanes) {
                const real v = xr[i];
                s += mode == 0 ? v : v * v;
            }
        }
        s = norm_segment_sum(buf, s, lid, lane, lanes);
        real center = (real)0, scale;
        if (mode == 0) {
            center = s / (real)n;
            real q = (real)0;
            if (valid) {
                for (int i = lane; i < n; i += lanes) {
                    const real d = xr[i] - center;
                    q += d * d;
                }
            }
            q = norm_segment_sum(buf, q, lid, lane, lanes);
            scale = (real)1 / SQRT(q / (real)n + eps);
        } else {
            scale = (real)1 / SQRT(s / (real)n + eps);
        }
        if (valid) {
            for (int i = lane; i < n; i += lanes) {
                real t = (xr[i] - center) * scale;
                if (has_gamma) {
                    t *= gamma[i];
                }
                if (has_beta) {
                    t += beta[i];
                }
                yr[i] = t;
            }
        }
    }
}

KERNEL void axiom_layernorm(const GLOBAL real *RESTRICT x, const GLOBAL real *RESTRICT gamma,
                            const GLOBAL real *RESTRICT beta, GLOBAL real *RESTRICT y, int rows, int n, real eps,
                            int lanes, int has_gamma, int has_beta) {
    LOCAL real buf[NORM_LOCAL];
    norm_rows(x, gamma, beta, y, rows, n, eps, lanes, has_gamma, has_beta, 0, buf);
}

KERNEL void axiom_rmsnorm(const GLOBAL real *RESTRICT x, const GLOBAL real *RESTRICT gamma, GLOBAL real *RESTRICT y,
                          int rows, int n, real eps, int lanes, int has_gamma) {
    LOCAL real buf[NORM_LOCAL];
    norm_rows(x, gamma, gamma, y, rows, n, eps, lanes, has_gamma, 0, 1, buf);
}
