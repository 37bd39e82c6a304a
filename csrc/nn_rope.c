/*
 * nn_rope.c - rotary position embedding (rotate-half convention).
 *
 * The angle table positions[s] * base ** (-2 i / d) is computed in double, like the
 * reference. float32: cos/sin by Cody-Waite reduction to [-pi/4, pi/4] and Taylor polynomials
 * in double (vectorised by gcc; error < 1e-13, far below float32 rounding), stored as
 * float32; float64: libm sin/cos. Then every row of x is rotated with the table of its
 * position (vectorised over the half dimension).
 */
#include <math.h>
#include <stdlib.h>

#include "nn_common.h"
#include "nn_simd.h"

#define PIO2_HI 1.57079632673412561417e+00 /* first 33 bits of pi/2 */
#define PIO2_LO 6.07710050650619224932e-11 /* pi/2 - PIO2_HI */
#define TWO_OVER_PI 6.36619772367581382433e-01

/* sin and cos of a (|a| < 2**30) to about 1e-13, branch-free so loops vectorise */
/* Adding and subtracting 1.5 * 2**52 rounds a double below 2**51 in magnitude to an integer
 * (ties to even): unlike nearbyint / floor, plain arithmetic lets gcc vectorise the table loop
 * (the Rust and Zig builds, whose compilers vectorise the rounding, were 2x faster here). */
#define ROPE_SHIFTER 6755399441055744.0

static inline double rope_round(double v) { return (v + ROPE_SHIFTER) - ROPE_SHIFTER; }

static inline void rope_sincos(double a, double *s, double *c) {
    const double k = rope_round(a * TWO_OVER_PI);
    const double r = (a - k * PIO2_HI) - k * PIO2_LO;
    const double r2 = r * r;
    const double sr = r + r * r2 * (-1.0 / 6 + r2 * (1.0 / 120 + r2 * (-1.0 / 5040 + r2 * (1.0 / 362880 + r2 *
                      (-1.0 / 39916800 + r2 * (1.0 / 6227020800.0))))));
    const double cr = 1.0 + r2 * (-0.5 + r2 * (1.0 / 24 + r2 * (-1.0 / 720 + r2 * (1.0 / 40320 + r2 *
                      (-1.0 / 3628800 + r2 * (1.0 / 479001600 + r2 * (-1.0 / 87178291200.0)))))));
    /* quadrant q = k mod 4 as two bits, in doubles: hi = floor(q / 2), odd = q - 2 hi (k / 4 - 0.375
     * and q / 2 - 0.25 lie 0.125 or more from the integer they round to). cos(a), sin(a) are
     * (cr, sr), (-sr, cr), (-cr, -sr), (sr, -cr) for q = 0..3; the blends below multiply by exact
     * 0s and 1s, so they select without rounding and without branches (which gcc would not
     * vectorise). */
    const double q = k - 4.0 * rope_round(k * 0.25 - 0.375);
    const double hi = rope_round(q * 0.5 - 0.25), odd = q - 2.0 * hi;
    const double sign_s = 1.0 - 2.0 * hi, sign_c = sign_s * (1.0 - 2.0 * odd);
    *s = sign_s * (odd * cr + (1.0 - odd) * sr);
    *c = sign_c * (odd * sr + (1.0 - odd) * cr);
}

static int rope_check(const void *x, const double *positions, const void *y, int64_t outer, int64_t seq, int64_t d,
                      size_t elem, int64_t *count) {
    int64_t tab;
    if (!NN_NUMEL(count, elem, outer, seq, d) || !NN_NUMEL(&tab, elem, seq, d)) {
        return AXIOM_ERR_SIZE;
    }
    if ((*count > 0 && (x == NULL || y == NULL)) || (seq > 0 && positions == NULL)) {
        return AXIOM_ERR_NULL;
    }
    return AXIOM_OK;
}

AXIOM_API int axiom_rope_f32(const float *x, const double *positions, float *y, int64_t outer, int64_t seq,
                             int64_t d, double base) {
    int64_t count;
    const int rc = rope_check(x, positions, y, outer, seq, d, sizeof(float), &count);
    if (rc != AXIOM_OK || count == 0) {
        return rc;
    }
    const int64_t half = d / 2;
    float *tab = (float *)malloc((size_t)(seq * half > 0 ? seq * half : 1) * 2 * sizeof(float));
    double *inv = (double *)malloc((size_t)(half > 0 ? half : 1) * sizeof(double));
    if (tab == NULL || inv == NULL) {
        free(tab);
        free(inv);
        return NN_ERR_NOMEM;
    }
    for (int64_t i = 0; i < half; ++i) {
        inv[i] = 1.0 / pow(base, (double)(2 * i) / (double)d);
    }
    float *ctab = tab, *stab = tab + seq * half;
    const int par_tab = seq * half >= NN_PAR_ELEMS_MATH;
#pragma omp parallel for schedule(static) if (par_tab)
    for (int64_t s = 0; s < seq; ++s) {
        const double p = positions[s];
#pragma omp simd
        for (int64_t i = 0; i < half; ++i) {
            double sv, cv;
            rope_sincos(p * inv[i], &sv, &cv); /* garbage for huge or non-finite angles: fixed below */
            ctab[s * half + i] = (float)cv;
            stab[s * half + i] = (float)sv;
        }
        for (int64_t i = 0; i < half; ++i) {
            const double a = p * inv[i];
            if (!(fabs(a) < 1073741824.0)) {
                ctab[s * half + i] = (float)cos(a);
                stab[s * half + i] = (float)sin(a);
            }
        }
    }
    const int par = outer * seq > 1 && count >= NN_PAR_ELEMS;
#pragma omp parallel for schedule(static) if (par)
    for (int64_t row = 0; row < outer * seq; ++row) {
        const int64_t s = row % seq;
        const float *xr = x + row * d;
        float *yr = y + row * d;
        const float *cr = ctab + s * half, *sr = stab + s * half;
        int64_t i = 0;
        for (; i + NN_VL <= half; i += NN_VL) {
            const nn_vf x1 = nn_load(xr + i), x2 = nn_load(xr + half + i);
            const nn_vf c = nn_load(cr + i), sn = nn_load(sr + i);
            nn_store(yr + i, x1 * c - x2 * sn);
            nn_store(yr + half + i, x2 * c + x1 * sn);
        }
        for (; i < half; ++i) {
            const float x1 = xr[i], x2 = xr[half + i];
            yr[i] = x1 * cr[i] - x2 * sr[i];
            yr[half + i] = x2 * cr[i] + x1 * sr[i];
        }
        if (d % 2 == 1) {
            yr[d - 1] = xr[d - 1];
        }
    }
    free(tab);
    free(inv);
    return AXIOM_OK;
}

AXIOM_API int axiom_rope_f64(const double *x, const double *positions, double *y, int64_t outer, int64_t seq,
                             int64_t d, double base) {
    int64_t count;
    const int rc = rope_check(x, positions, y, outer, seq, d, sizeof(double), &count);
    if (rc != AXIOM_OK || count == 0) {
        return rc;
    }
    const int64_t half = d / 2;
    double *tab = (double *)malloc((size_t)(seq * half > 0 ? seq * half : 1) * 2 * sizeof(double));
    if (tab == NULL) {
        return NN_ERR_NOMEM;
    }
    double *ctab = tab, *stab = tab + seq * half;
    for (int64_t i = 0; i < half; ++i) {
        const double inv = 1.0 / pow(base, (double)(2 * i) / (double)d);
        for (int64_t s = 0; s < seq; ++s) {
            const double a = positions[s] * inv;
            ctab[s * half + i] = cos(a);
            stab[s * half + i] = sin(a);
        }
    }
    const int par = outer * seq > 1 && count >= NN_PAR_ELEMS;
#pragma omp parallel for schedule(static) if (par)
    for (int64_t row = 0; row < outer * seq; ++row) {
        const int64_t s = row % seq;
        const double *xr = x + row * d;
        double *yr = y + row * d;
        const double *cr = ctab + s * half, *sr = stab + s * half;
        for (int64_t i = 0; i < half; ++i) {
            const double x1 = xr[i], x2 = xr[half + i];
            yr[i] = x1 * cr[i] - x2 * sr[i];
            yr[half + i] = x2 * cr[i] + x1 * sr[i];
        }
        if (d % 2 == 1) {
            yr[d - 1] = xr[d - 1];
        }
    }
    free(tab);
    return AXIOM_OK;
}
