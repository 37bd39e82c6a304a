/*
 * nn_softmax.c - softmax / log-softmax along the middle axis of (outer, n, inner), and their
 * gradients.
 *
 * inner == 1 (the last axis): three passes over each row, which stays in L1: max, then
 * e = exp(x - max) with its sum, then e / sum (or (x - max) - log(sum)).
 * inner > 1: the same passes over a tile of up to 64 neighbouring columns at a time, so the
 * caller never transposes.
 * Special values follow the reference: exp(x - max) is NaN for a row containing NaN or +inf
 * or made of -inf only, and that NaN reaches the whole row through the sum.
 */
#include <math.h>

#include "nn_common.h"
#include "nn_simd.h"

#define COL_TILE 64 /* columns per tile when inner > 1 (a multiple of NN_VL) */

static int softmax_check(const void *x, const void *y, int64_t outer, int64_t n, int64_t inner, int use_log,
                         size_t elem, int64_t *count) {
    if (!NN_NUMEL(count, elem, outer, n, inner)) {
        return AXIOM_ERR_SIZE;
    }
    if (use_log != 0 && use_log != 1) {
        return AXIOM_ERR_SIZE;
    }
    if (*count > 0 && (x == NULL || y == NULL)) {
        return AXIOM_ERR_NULL;
    }
    return AXIOM_OK;
}

/* ---- float32 ----------------------------------------------------------------------------- */

static void softmax_row_f32(const float *restrict x, float *restrict y, int64_t n, int use_log) {
    const nn_vf ninf = nn_set1(-INFINITY);
    nn_vf m0 = ninf, m1 = ninf, m2 = ninf, m3 = ninf;
    int64_t i = 0;
    for (; i + 4 * NN_VL <= n; i += 4 * NN_VL) {
        m0 = nn_max_fast(m0, nn_load(x + i));
        m1 = nn_max_fast(m1, nn_load(x + i + NN_VL));
        m2 = nn_max_fast(m2, nn_load(x + i + 2 * NN_VL));
        m3 = nn_max_fast(m3, nn_load(x + i + 3 * NN_VL));
    }
    for (; i + NN_VL <= n; i += NN_VL) {
        m0 = nn_max_fast(m0, nn_load(x + i));
    }
    if (i < n) {
        m1 = nn_max_fast(m1, nn_load_part(x + i, n - i, -INFINITY));
    }
    /* a NaN lost here still reaches the sum below through exp(NaN - max) */
    const float m = nn_hmax_nan(nn_max_fast(nn_max_fast(m0, m1), nn_max_fast(m2, m3)));
    const nn_vf mv = nn_set1(m);
    nn_vf s0 = nn_set1(0.0f), s1 = s0;
    i = 0;
    if (!use_log) {
        for (; i + 2 * NN_VL <= n; i += 2 * NN_VL) {
            nn_vf e0 = nn_exp_neg(nn_load(x + i) - mv);
            nn_vf e1 = nn_exp_neg(nn_load(x + i + NN_VL) - mv);
            nn_store(y + i, e0);
            nn_store(y + i + NN_VL, e1);
            s0 += e0;
            s1 += e1;
        }
        for (; i + NN_VL <= n; i += NN_VL) {
            nn_vf e0 = nn_exp_neg(nn_load(x + i) - mv);
            nn_store(y + i, e0);
            s0 += e0;
        }
        if (i < n) {
            nn_vf e1 = nn_exp_neg(nn_load_part(x + i, n - i, -INFINITY) - mv);
            nn_store_part(y + i, e1, n - i);
            s1 += e1;
        }
        const nn_vf inv = nn_set1(1.0f / nn_hsum(s0 + s1));
        for (i = 0; i + NN_VL <= n; i += NN_VL) {
            nn_store(y + i, nn_load(y + i) * inv);
        }
        for (; i < n; ++i) {
            y[i] *= inv[0];
        }
    } else {
        for (; i + 2 * NN_VL <= n; i += 2 * NN_VL) {
            s0 += nn_exp_neg(nn_load(x + i) - mv);
            s1 += nn_exp_neg(nn_load(x + i + NN_VL) - mv);
        }
        for (; i + NN_VL <= n; i += NN_VL) {
            s0 += nn_exp_neg(nn_load(x + i) - mv);
        }
        if (i < n) {
            s1 += nn_exp_neg(nn_load_part(x + i, n - i, -INFINITY) - mv);
        }
        const nn_vf lse = nn_set1(logf(nn_hsum(s0 + s1)));
        for (i = 0; i + NN_VL <= n; i += NN_VL) {
            nn_store(y + i, (nn_load(x + i) - mv) - lse);
        }
        for (; i < n; ++i) {
            y[i] = (x[i] - m) - lse[0];
        }
    }
}

/* columns [0, w) (w <= COL_TILE) of x (n rows, row stride ld) */
static void softmax_cols_f32(const float *restrict x, float *restrict y, int64_t n, int64_t ld, int64_t w,
                             int use_log) {
    nn_vf m[COL_TILE / NN_VL], s[COL_TILE / NN_VL];
    const int64_t nv = (w + NN_VL - 1) / NN_VL;
    const int64_t tail = w - (nv - 1) * NN_VL; /* lanes of the last vector, 1..NN_VL */
#define LOADC(p, v) ((v) == nv - 1 && tail < NN_VL ? nn_load_part((p) + (v) * NN_VL, tail, -INFINITY) : nn_load((p) + (v) * NN_VL))
#define STOREC(p, v, val)                                                  \
    do {                                                                   \
        if ((v) == nv - 1 && tail < NN_VL)                                 \
            nn_store_part((p) + (v) * NN_VL, (val), tail);                 \
        else                                                               \
            nn_store((p) + (v) * NN_VL, (val));                            \
    } while (0)
    for (int64_t v = 0; v < nv; ++v) {
        m[v] = nn_set1(-INFINITY);
        s[v] = nn_set1(0.0f);
    }
    for (int64_t i = 0; i < n; ++i) {
        for (int64_t v = 0; v < nv; ++v) {
            m[v] = nn_max_fast(m[v], LOADC(x + i * ld, v));
        }
    }
    for (int64_t i = 0; i < n; ++i) {
        for (int64_t v = 0; v < nv; ++v) {
            nn_vf e = nn_exp_neg(LOADC(x + i * ld, v) - m[v]);
            s[v] += e;
            if (!use_log) {
                STOREC(y + i * ld, v, e);
            }
        }
    }
    for (int64_t v = 0; v < nv; ++v) {
        if (use_log) {
            for (int l = 0; l < NN_VL; ++l) {
                s[v][l] = logf(s[v][l]);
            }
        } else {
            s[v] = 1.0f / s[v];
        }
    }
    for (int64_t i = 0; i < n; ++i) {
        for (int64_t v = 0; v < nv; ++v) {
            nn_vf r = use_log ? (LOADC(x + i * ld, v) - m[v]) - s[v] : LOADC(y + i * ld, v) * s[v];
            STOREC(y + i * ld, v, r);
        }
    }
#undef LOADC
#undef STOREC
}

AXIOM_API int axiom_softmax_f32(const float *x, float *y, int64_t outer, int64_t n, int64_t inner, int use_log) {
    int64_t count;
    const int rc = softmax_check(x, y, outer, n, inner, use_log, sizeof(float), &count);
    if (rc != AXIOM_OK || count == 0) {
        return rc;
    }
    const int par = count >= NN_PAR_ELEMS;
    if (inner == 1) {
#pragma omp parallel for schedule(static) if (par && outer > 1)
        for (int64_t r = 0; r < outer; ++r) {
            softmax_row_f32(x + r * n, y + r * n, n, use_log);
        }
    } else {
        const int64_t tiles = (inner + COL_TILE - 1) / COL_TILE;
#pragma omp parallel for schedule(static) if (par && outer * tiles > 1)
        for (int64_t t = 0; t < outer * tiles; ++t) {
            const int64_t o = t / tiles, j0 = (t % tiles) * COL_TILE;
            const int64_t off = o * n * inner + j0;
            softmax_cols_f32(x + off, y + off, n, inner, inner - j0 < COL_TILE ? inner - j0 : COL_TILE, use_log);
        }
    }
    return AXIOM_OK;
}

/* dx along the middle axis: generic strided loops (gcc vectorises the column case) */
static void softmax_backward_f32(const float *restrict y, const float *restrict dy, float *restrict dx,
                                 int64_t n, int64_t inner, int64_t j0, int64_t w, int use_log) {
    float acc[COL_TILE];
    for (int64_t j = 0; j < w; ++j) {
        acc[j] = 0.0f;
    }
    for (int64_t i = 0; i < n; ++i) {
        const float *yi = y + i * inner + j0, *gi = dy + i * inner + j0;
        for (int64_t j = 0; j < w; ++j) {
            acc[j] += use_log ? gi[j] : gi[j] * yi[j];
        }
    }
    for (int64_t i = 0; i < n; ++i) {
        const int64_t off = i * inner + j0;
        if (use_log) {
            int64_t j = 0;
            for (; j + NN_VL <= w; j += NN_VL) {
                nn_store(dx + off + j, nn_load(dy + off + j) - nn_exp(nn_load(y + off + j)) * nn_load(acc + j));
            }
            for (; j < w; ++j) {
                dx[off + j] = dy[off + j] - expf(y[off + j]) * acc[j];
            }
        } else {
            for (int64_t j = 0; j < w; ++j) {
                dx[off + j] = y[off + j] * (dy[off + j] - acc[j]);
            }
        }
    }
}

static void softmax_backward_row_f32(const float *restrict y, const float *restrict dy, float *restrict dx,
                                     int64_t n, int use_log) {
    nn_vf s = nn_set1(0.0f);
    int64_t i = 0;
    for (; i + NN_VL <= n; i += NN_VL) {
        s += use_log ? nn_load(dy + i) : nn_load(dy + i) * nn_load(y + i);
    }
    float sum = nn_hsum(s);
    for (; i < n; ++i) {
        sum += use_log ? dy[i] : dy[i] * y[i];
    }
    const nn_vf sv = nn_set1(sum);
    for (i = 0; i + NN_VL <= n; i += NN_VL) {
        nn_vf g = nn_load(dy + i), yy = nn_load(y + i);
        nn_store(dx + i, use_log ? g - nn_exp(yy) * sv : yy * (g - sv));
    }
    for (; i < n; ++i) {
        dx[i] = use_log ? dy[i] - expf(y[i]) * sum : y[i] * (dy[i] - sum);
    }
}

AXIOM_API int axiom_softmax_backward_f32(const float *y, const float *dy, float *dx, int64_t outer, int64_t n,
                                         int64_t inner, int use_log) {
    int64_t count;
    int rc = softmax_check(y, dx, outer, n, inner, use_log, sizeof(float), &count);
    if (rc == AXIOM_OK && count > 0 && dy == NULL) {
        rc = AXIOM_ERR_NULL;
    }
    if (rc != AXIOM_OK || count == 0) {
        return rc;
    }
    const int par = count >= NN_PAR_ELEMS;
    if (inner == 1) {
#pragma omp parallel for schedule(static) if (par && outer > 1)
        for (int64_t r = 0; r < outer; ++r) {
            softmax_backward_row_f32(y + r * n, dy + r * n, dx + r * n, n, use_log);
        }
    } else {
        const int64_t tiles = (inner + COL_TILE - 1) / COL_TILE;
#pragma omp parallel for schedule(static) if (par && outer * tiles > 1)
        for (int64_t t = 0; t < outer * tiles; ++t) {
            const int64_t o = t / tiles, j0 = (t % tiles) * COL_TILE;
            const int64_t off = o * n * inner;
            softmax_backward_f32(y + off, dy + off, dx + off, n, inner, j0,
                                 inner - j0 < COL_TILE ? inner - j0 : COL_TILE, use_log);
        }
    }
    return AXIOM_OK;
}

/* ---- float64: plain loops ------------------------------------------------------------------ */

AXIOM_API int axiom_softmax_f64(const double *x, double *y, int64_t outer, int64_t n, int64_t inner, int use_log) {
    int64_t count;
    const int rc = softmax_check(x, y, outer, n, inner, use_log, sizeof(double), &count);
    if (rc != AXIOM_OK || count == 0) {
        return rc;
    }
    const int par = count >= NN_PAR_ELEMS;
#pragma omp parallel for schedule(static) if (par && outer * inner > 1)
    for (int64_t t = 0; t < outer * inner; ++t) {
        const double *xr = x + (t / inner) * n * inner + t % inner;
        double *yr = y + (t / inner) * n * inner + t % inner;
        double m = -INFINITY;
        for (int64_t i = 0; i < n; ++i) {
            const double v = xr[i * inner];
            m = (v > m || v != v) ? v : m;
        }
        double s = 0.0;
        for (int64_t i = 0; i < n; ++i) {
            const double e = exp(xr[i * inner] - m);
            s += e;
            if (!use_log) {
                yr[i * inner] = e;
            }
        }
        if (use_log) {
            const double lse = log(s);
            for (int64_t i = 0; i < n; ++i) {
                yr[i * inner] = (xr[i * inner] - m) - lse;
            }
        } else {
            for (int64_t i = 0; i < n; ++i) {
                yr[i * inner] /= s;
            }
        }
    }
    return AXIOM_OK;
}

AXIOM_API int axiom_softmax_backward_f64(const double *y, const double *dy, double *dx, int64_t outer, int64_t n,
                                         int64_t inner, int use_log) {
    int64_t count;
    int rc = softmax_check(y, dx, outer, n, inner, use_log, sizeof(double), &count);
    if (rc == AXIOM_OK && count > 0 && dy == NULL) {
        rc = AXIOM_ERR_NULL;
    }
    if (rc != AXIOM_OK || count == 0) {
        return rc;
    }
    const int par = count >= NN_PAR_ELEMS;
#pragma omp parallel for schedule(static) if (par && outer * inner > 1)
    for (int64_t t = 0; t < outer * inner; ++t) {
        const int64_t off = (t / inner) * n * inner + t % inner;
        double s = 0.0;
        for (int64_t i = 0; i < n; ++i) {
            s += use_log ? dy[off + i * inner] : dy[off + i * inner] * y[off + i * inner];
        }
        for (int64_t i = 0; i < n; ++i) {
            const int64_t k = off + i * inner;
            dx[k] = use_log ? dy[k] - exp(y[k]) * s : y[k] * (dy[k] - s);
        }
    }
    return AXIOM_OK;
}
