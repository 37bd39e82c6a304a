/*
 * rope.cu - rotary position embedding, rotate-half convention (the contract's `rope`, C ABI
 * axiom_rope_*): for x (outer, seq, d) and h = d / 2,
 *     y[.., i] = x[.., i] cos[s, i] - x[.., h + i] sin[s, i]
 *     y[.., h + i] = x[.., h + i] cos[s, i] + x[.., i] sin[s, i]       (i < h)
 * and an odd last element is copied. The cos / sin tables (seq, h) hold
 * positions[s] * base ** (-2 i / d) computed in float64 on the host and rounded to the compute
 * dtype (what the reference does), so devices without float64 need no double here.
 * y may be x (in place): every work-item reads its pair before writing it.
 * Launch: 1-D, any local size; a grid-stride loop covers outer * seq * ceil(d / 2) items.
 */
#ifndef AXIOM_DEVICE_DIALECT
#include "axiom_device.cuh"
#endif

KERNEL void axiom_rope(const GLOBAL real *x, const GLOBAL real *RESTRICT cos_tab, const GLOBAL real *RESTRICT sin_tab,
                       GLOBAL real *y, idx_t rows, int seq, int d) {
    const int hd = d / 2; /* "half" is an OpenCL type */
    const int per_row = d - hd; /* hd pairs, plus the odd last element */
    const idx_t n = rows * per_row;
    const idx_t step = (idx_t)LOCAL_SIZE(0) * NUM_GROUPS(0);
    for (idx_t e = GLOBAL_ID(0); e < n; e += step) {
        /* e < rows * per_row <= the elements of x < 2**31: 32-bit divisions */
        const int row = (int)e / per_row;
        const int i = (int)e - row * per_row;
        const idx_t base = (idx_t)row * d;
        if (i < hd) {
            const idx_t tab = (idx_t)(row % seq) * hd + i;
            const real c = cos_tab[tab], s = sin_tab[tab];
            const real x1 = x[base + i], x2 = x[base + hd + i];
            y[base + i] = x1 * c - x2 * s;
            y[base + hd + i] = x2 * c + x1 * s;
        } else {
            y[base + d - 1] = x[base + d - 1];
        }
    }
}
