/*
 * nn_norm.c - batch norm (inference), layer norm, RMS norm and their gradients.
 *
 * float32 forward kernels are hand-vectorised: a norm row (which stays in L1) is read once
 * from memory and then twice from cache (mean, variance, normalise: the two-pass variance,
 * no cancellation); batch norm streams the flat array against a repeating pattern of
 * per-channel constants. float64 and the backward kernels come from nn_norm_impl.h.
 */
#include <math.h>
#include <stdlib.h>

#include "nn_common.h"
#include "nn_simd.h"

/* ---- generic kernels (float64 forward, backward of both types) --------------------------- */

#define NN_T float
#define NN_S(name) name##_f32
#include "nn_norm_impl.h"
#undef NN_T
#undef NN_S

#define NN_FORWARD
#define NN_T double
#define NN_S(name) name##_f64
#include "nn_norm_impl.h"
#undef NN_T
#undef NN_S
#undef NN_FORWARD

/* ---- float32 forward, vectorised ----------------------------------------------------------- */

static inline float sum_f32(const float *restrict x, int64_t n) {
    nn_vf a0 = nn_set1(0.0f), a1 = a0, a2 = a0, a3 = a0;
    int64_t i = 0;
    for (; i + 4 * NN_VL <= n; i += 4 * NN_VL) {
        a0 += nn_load(x + i);
        a1 += nn_load(x + i + NN_VL);
        a2 += nn_load(x + i + 2 * NN_VL);
        a3 += nn_load(x + i + 3 * NN_VL);
    }
    for (; i + NN_VL <= n; i += NN_VL) {
        a0 += nn_load(x + i);
    }
    if (i < n) {
        a1 += nn_load_part(x + i, n - i, 0.0f);
    }
    return nn_hsum((a0 + a1) + (a2 + a3));
}

/* sum of (x - c)^2 */
static inline float sumsq_f32(const float *restrict x, int64_t n, float c) {
    const nn_vf cv = nn_set1(c);
    nn_vf a0 = nn_set1(0.0f), a1 = a0, a2 = a0, a3 = a0;
    int64_t i = 0;
    for (; i + 4 * NN_VL <= n; i += 4 * NN_VL) {
        nn_vf d0 = nn_load(x + i) - cv, d1 = nn_load(x + i + NN_VL) - cv;
        nn_vf d2 = nn_load(x + i + 2 * NN_VL) - cv, d3 = nn_load(x + i + 3 * NN_VL) - cv;
        a0 += d0 * d0;
        a1 += d1 * d1;
        a2 += d2 * d2;
        a3 += d3 * d3;
    }
    for (; i + NN_VL <= n; i += NN_VL) {
        nn_vf d = nn_load(x + i) - cv;
        a0 += d * d;
    }
    if (i < n) {
        nn_vf d = nn_load_part(x + i, n - i, c) - cv;
        a1 += d * d;
    }
    return nn_hsum((a0 + a1) + (a2 + a3));
}

/* y = (x - c) * s [* gamma] [+ beta]; has_g / has_b are constants after inlining */
static inline __attribute__((always_inline)) void affine_row_f32(const float *restrict x,
                                                                 const float *restrict gamma,
                                                                 const float *restrict beta, float *restrict y,
                                                                 int64_t n, float c, float s, int has_g, int has_b) {
    const nn_vf cv = nn_set1(c), sv = nn_set1(s);
    int64_t i = 0;
    for (; i + NN_VL <= n; i += NN_VL) {
        nn_vf t = (nn_load(x + i) - cv) * sv;
        if (has_g) {
            t *= nn_load(gamma + i);
        }
        if (has_b) {
            t += nn_load(beta + i);
        }
        nn_store(y + i, t);
    }
    for (; i < n; ++i) {
        float t = (x[i] - c) * s;
        if (has_g) {
            t *= gamma[i];
        }
        if (has_b) {
            t += beta[i];
        }
        y[i] = t;
    }
}

static void affine_row_any_f32(const float *x, const float *gamma, const float *beta, float *y, int64_t n, float c,
                               float s) {
    if (gamma != NULL && beta != NULL) {
        affine_row_f32(x, gamma, beta, y, n, c, s, 1, 1);
    } else if (gamma != NULL) {
        affine_row_f32(x, gamma, beta, y, n, c, s, 1, 0);
    } else if (beta != NULL) {
        affine_row_f32(x, gamma, beta, y, n, c, s, 0, 1);
    } else {
        affine_row_f32(x, gamma, beta, y, n, c, s, 0, 0);
    }
}

static int rows_check(const void *x, const void *y, int64_t rows, int64_t n, size_t elem, int64_t *count) {
    int64_t cols;
    if (!NN_NUMEL(count, elem, rows, n) || !NN_NUMEL(&cols, elem, n)) {
        return AXIOM_ERR_SIZE;
    }
    if (*count > 0 && (x == NULL || y == NULL)) {
        return AXIOM_ERR_NULL;
    }
    return AXIOM_OK;
}

AXIOM_API int axiom_layernorm_f32(const float *x, const float *gamma, const float *beta, float *y, int64_t rows,
                                  int64_t n, double eps) {
    int64_t count;
    const int rc = rows_check(x, y, rows, n, sizeof(float), &count);
    if (rc != AXIOM_OK || count == 0) {
        return rc;
    }
    const int par = rows > 1 && count >= NN_PAR_ELEMS;
#pragma omp parallel for schedule(static) if (par)
    for (int64_t r = 0; r < rows; ++r) {
        const float *xr = x + r * n;
        const float mean = sum_f32(xr, n) / (float)n;
        const float var = sumsq_f32(xr, n, mean) / (float)n;
        const float rstd = (float)(1.0 / sqrt((double)var + eps));
        affine_row_any_f32(xr, gamma, beta, y + r * n, n, mean, rstd);
    }
    return AXIOM_OK;
}

AXIOM_API int axiom_layernorm_f64(const double *x, const double *gamma, const double *beta, double *y, int64_t rows,
                                  int64_t n, double eps) {
    int64_t count;
    const int rc = rows_check(x, y, rows, n, sizeof(double), &count);
    if (rc != AXIOM_OK || count == 0) {
        return rc;
    }
    const int par = rows > 1 && count >= NN_PAR_ELEMS;
#pragma omp parallel for schedule(static) if (par)
    for (int64_t r = 0; r < rows; ++r) {
        layernorm_row_f64(x + r * n, gamma, beta, y + r * n, n, eps);
    }
    return AXIOM_OK;
}

AXIOM_API int axiom_rmsnorm_f32(const float *x, const float *gamma, float *y, int64_t rows, int64_t n, double eps) {
    int64_t count;
    const int rc = rows_check(x, y, rows, n, sizeof(float), &count);
    if (rc != AXIOM_OK || count == 0) {
        return rc;
    }
    const int par = rows > 1 && count >= NN_PAR_ELEMS;
#pragma omp parallel for schedule(static) if (par)
    for (int64_t r = 0; r < rows; ++r) {
        const float *xr = x + r * n;
        const float ms = sumsq_f32(xr, n, 0.0f) / (float)n;
        const float rs = (float)(1.0 / sqrt((double)ms + eps));
        affine_row_any_f32(xr, gamma, NULL, y + r * n, n, 0.0f, rs);
    }
    return AXIOM_OK;
}

AXIOM_API int axiom_rmsnorm_f64(const double *x, const double *gamma, double *y, int64_t rows, int64_t n,
                                double eps) {
    int64_t count;
    const int rc = rows_check(x, y, rows, n, sizeof(double), &count);
    if (rc != AXIOM_OK || count == 0) {
        return rc;
    }
    const int par = rows > 1 && count >= NN_PAR_ELEMS;
#pragma omp parallel for schedule(static) if (par)
    for (int64_t r = 0; r < rows; ++r) {
        rmsnorm_row_f64(x + r * n, gamma, y + r * n, n, eps);
    }
    return AXIOM_OK;
}

/* ---- batch norm -------------------------------------------------------------------------- */

static int bn_check(const void *x, const void *mean, const void *var, const void *y, int64_t rows, int64_t c,
                    size_t elem, int64_t *count) {
    int64_t nc;
    if (!NN_NUMEL(count, elem, rows, c) || !NN_NUMEL(&nc, elem, c)) {
        return AXIOM_ERR_SIZE;
    }
    if ((*count > 0 && (x == NULL || y == NULL)) || (c > 0 && (mean == NULL || var == NULL))) {
        return AXIOM_ERR_NULL;
    }
    return AXIOM_OK;
}

#define BN_PATTERN_MAX 4096 /* longest repeating pattern of channel constants, in floats */
#define BN_BLOCK 1024       /* the pattern is repeated up to about this many floats */

AXIOM_API int axiom_batchnorm_f32(const float *x, const float *mean, const float *var, const float *gamma,
                                  const float *beta, float *y, int64_t rows, int64_t c, double eps) {
    int64_t count;
    const int rc = bn_check(x, mean, var, y, rows, c, sizeof(float), &count);
    if (rc != AXIOM_OK || count == 0) {
        return rc;
    }
    /* y = (x - mean) * scale + beta with scale = gamma / sqrt(var + eps), the reference's order;
     * when every parameter is finite, y = x * scale + (beta - mean * scale) instead (one FMA,
     * like PyTorch; the error is then relative to |x| + |mean| rather than |x - mean|).
     * The flat array repeats every lcm(c, 8) elements: patterns of the constants of a multiple
     * of that length let every vector of x use full-width loads, whatever c is. */
    const int64_t g = (c % 8 == 0) ? 8 : (c % 4 == 0) ? 4 : (c % 2 == 0) ? 2 : 1;
    int64_t L = c * (NN_VL / g) <= BN_PATTERN_MAX ? c * (NN_VL / g) : c;
    if (L < BN_BLOCK && count >= BN_BLOCK) {
        L *= BN_BLOCK / L; /* still a multiple of c; the last rows (fewer than L elements) are the tail */
    }
    /* patterns of L + 8 constants, so a block may start at any of the first 8 pattern positions */
    const int64_t LP = L + NN_VL;
    float *pat = (float *)malloc((size_t)LP * 3 * sizeof(float));
    if (pat == NULL) {
        return NN_ERR_NOMEM;
    }
    float *pm = pat, *ps = pat + LP, *pb = pat + 2 * LP;
    int finite = 1;
    for (int64_t j = 0; j < c && j < LP; ++j) {
        const float inv = (float)(1.0 / sqrt((double)var[j] + eps));
        pm[j] = mean[j];
        ps[j] = gamma != NULL ? gamma[j] * inv : inv;
        pb[j] = beta != NULL ? beta[j] : 0.0f;
        finite &= isfinite(pm[j]) && isfinite(ps[j]) && isfinite(pb[j]);
    }
    if (finite) {
        for (int64_t j = 0; j < c && j < LP; ++j) {
            pb[j] -= pm[j] * ps[j]; /* shift */
        }
    }
    for (int64_t j = c; j < LP; ++j) {
        pm[j] = pm[j - c];
        ps[j] = ps[j - c];
        pb[j] = pb[j - c];
    }
    /* a large output bypasses the caches; the first k elements align y to 32 bytes */
    const int stream = finite && count * (int64_t)sizeof(float) >= NN_STREAM_BYTES && ((uintptr_t)y & 3) == 0;
    const int64_t k = stream ? (int64_t)((32 - ((uintptr_t)y & 31)) & 31) / (int64_t)sizeof(float) : 0;
    const int64_t nblocks = (count - k) / L;
    const int par = nblocks > 1 && count >= NN_PAR_ELEMS;
#define BN_ONE(e, j) (finite ? x[e] * ps[j] + pb[j] : (x[e] - pm[j]) * ps[j] + pb[j])
    for (int64_t e = 0; e < k; ++e) {
        y[e] = BN_ONE(e, e % L);
    }
    const float *pmk = pm + k, *psk = ps + k, *pbk = pb + k; /* block starts are k mod L */
#pragma omp parallel for schedule(static) if (par)
    for (int64_t blk = 0; blk < nblocks; ++blk) {
        const float *xb = x + k + blk * L;
        float *yb = y + k + blk * L;
        int64_t j = 0;
        if (stream) {
            for (; j + NN_VL <= L; j += NN_VL) {
                nn_stream(yb + j, nn_load(xb + j) * nn_load(psk + j) + nn_load(pbk + j));
            }
            nn_sfence();
        } else if (finite) {
            for (; j + NN_VL <= L; j += NN_VL) {
                nn_store(yb + j, nn_load(xb + j) * nn_load(psk + j) + nn_load(pbk + j));
            }
        } else {
            for (; j + NN_VL <= L; j += NN_VL) {
                nn_store(yb + j, (nn_load(xb + j) - nn_load(pmk + j)) * nn_load(psk + j) + nn_load(pbk + j));
            }
        }
        for (; j < L; ++j) {
            yb[j] = finite ? xb[j] * psk[j] + pbk[j] : (xb[j] - pmk[j]) * psk[j] + pbk[j];
        }
    }
    for (int64_t e = k + nblocks * L; e < count; ++e) {
        y[e] = BN_ONE(e, e % L);
    }
#undef BN_ONE
    free(pat);
    return AXIOM_OK;
}

AXIOM_API int axiom_batchnorm_f64(const double *x, const double *mean, const double *var, const double *gamma,
                                  const double *beta, double *y, int64_t rows, int64_t c, double eps) {
    int64_t count;
    const int rc = bn_check(x, mean, var, y, rows, c, sizeof(double), &count);
    if (rc != AXIOM_OK || count == 0) {
        return rc;
    }
    double *scale = (double *)malloc((size_t)c * sizeof(double));
    if (scale == NULL) {
        return NN_ERR_NOMEM;
    }
    for (int64_t j = 0; j < c; ++j) {
        scale[j] = (gamma != NULL ? gamma[j] : 1.0) / sqrt(var[j] + eps);
    }
    const int par = rows > 1 && count >= NN_PAR_ELEMS;
    const int64_t chunk = 256;
    const int64_t nchunks = (rows + chunk - 1) / chunk;
#pragma omp parallel for schedule(static) if (par)
    for (int64_t t = 0; t < nchunks; ++t) {
        const int64_t r0 = t * chunk, r1 = r0 + chunk < rows ? r0 + chunk : rows;
        batchnorm_rows_f64(x, mean, scale, beta, y, r0, r1, c);
    }
    free(scale);
    return AXIOM_OK;
}

/* ---- backward ----------------------------------------------------------------------------- */

#define NORM_BACKWARD_CHECK(elem, n, ...)                                                 \
    int64_t count;                                                                        \
    int rc = rows_check(x, dx, rows, n, elem, &count);                                    \
    if (rc == AXIOM_OK && count > 0 && dy == NULL) {                                      \
        rc = AXIOM_ERR_NULL;                                                              \
    }                                                                                     \
    if (rc == AXIOM_OK && (n) > 0 && rows == 0) {                                         \
        /* no rows: the parameter gradients are zero */                                   \
        __VA_ARGS__                                                                       \
    }                                                                                     \
    if (rc != AXIOM_OK || count == 0) {                                                   \
        return rc;                                                                        \
    }

AXIOM_API int axiom_layernorm_backward_f32(const float *dy, const float *x, const float *gamma, float *dx,
                                           float *dgamma, float *dbeta, int64_t rows, int64_t n, double eps) {
    NORM_BACKWARD_CHECK(sizeof(float), n, for (int64_t i = 0; i < n; ++i) {
        if (dgamma) dgamma[i] = 0.0f;
        if (dbeta) dbeta[i] = 0.0f;
    })
    return layernorm_backward_impl_f32(dy, x, gamma, dx, dgamma, dbeta, rows, n, eps);
}

AXIOM_API int axiom_layernorm_backward_f64(const double *dy, const double *x, const double *gamma, double *dx,
                                           double *dgamma, double *dbeta, int64_t rows, int64_t n, double eps) {
    NORM_BACKWARD_CHECK(sizeof(double), n, for (int64_t i = 0; i < n; ++i) {
        if (dgamma) dgamma[i] = 0.0;
        if (dbeta) dbeta[i] = 0.0;
    })
    return layernorm_backward_impl_f64(dy, x, gamma, dx, dgamma, dbeta, rows, n, eps);
}

AXIOM_API int axiom_rmsnorm_backward_f32(const float *dy, const float *x, const float *gamma, float *dx,
                                         float *dgamma, int64_t rows, int64_t n, double eps) {
    NORM_BACKWARD_CHECK(sizeof(float), n, for (int64_t i = 0; i < n && dgamma; ++i) dgamma[i] = 0.0f;)
    return rmsnorm_backward_impl_f32(dy, x, gamma, dx, dgamma, rows, n, eps);
}

AXIOM_API int axiom_rmsnorm_backward_f64(const double *dy, const double *x, const double *gamma, double *dx,
                                         double *dgamma, int64_t rows, int64_t n, double eps) {
    NORM_BACKWARD_CHECK(sizeof(double), n, for (int64_t i = 0; i < n && dgamma; ++i) dgamma[i] = 0.0;)
    return rmsnorm_backward_impl_f64(dy, x, gamma, dx, dgamma, rows, n, eps);
}

AXIOM_API int axiom_batchnorm_backward_f32(const float *dy, const float *x, const float *mean, const float *var,
                                           const float *gamma, float *dx, float *dgamma, float *dbeta, int64_t rows,
                                           int64_t c, double eps) {
    int64_t count;
    int rc = bn_check(x, mean, var, dx, rows, c, sizeof(float), &count);
    if (rc == AXIOM_OK && count > 0 && dy == NULL) {
        rc = AXIOM_ERR_NULL;
    }
    if (rc != AXIOM_OK || c == 0) {
        return rc;
    }
    return batchnorm_backward_impl_f32(dy, x, mean, var, gamma, dx, dgamma, dbeta, rows, c, eps);
}

AXIOM_API int axiom_batchnorm_backward_f64(const double *dy, const double *x, const double *mean, const double *var,
                                           const double *gamma, double *dx, double *dgamma, double *dbeta,
                                           int64_t rows, int64_t c, double eps) {
    int64_t count;
    int rc = bn_check(x, mean, var, dx, rows, c, sizeof(double), &count);
    if (rc == AXIOM_OK && count > 0 && dy == NULL) {
        rc = AXIOM_ERR_NULL;
    }
    if (rc != AXIOM_OK || c == 0) {
        return rc;
    }
    return batchnorm_backward_impl_f64(dy, x, mean, var, gamma, dx, dgamma, dbeta, rows, c, eps);
}
