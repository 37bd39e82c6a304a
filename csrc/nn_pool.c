/*
 * nn_pool.c - NHWC max / average / global average pooling and their gradients.
 *
 * Channels are contiguous in NHWC, so every kernel vectorises over channels: for each output
 * pixel it walks the window's valid input cells (padding is skipped, never materialised) and
 * combines whole channel vectors. Forward kernels run in parallel over output rows, backward
 * kernels over images (windows overlap, so only different images are independent).
 */
#include <math.h>
#include <stdlib.h>

#include "nn_common.h"
#include "nn_simd.h"

typedef struct {
    int64_t n, h, w, c, kh, kw, sh, sw, pt, pl, dh, dw, ho, wo;
} pool_geom;

/* Check sizes and compute the output extent; AXIOM_OK or AXIOM_ERR_SIZE. */
static int pool_geometry(pool_geom *g, int64_t n, int64_t h, int64_t w, int64_t c, int64_t kh, int64_t kw,
                         int64_t sh, int64_t sw, int64_t pt, int64_t pb, int64_t pl, int64_t pr, int64_t dh,
                         int64_t dw, size_t elem, int64_t *in_count, int64_t *out_count) {
    g->n = n, g->h = h, g->w = w, g->c = c, g->kh = kh, g->kw = kw, g->sh = sh, g->sw = sw;
    g->pt = pt, g->pl = pl, g->dh = dh, g->dw = dw;
    if (!nn_pool_extent(h, kh, sh, pt, pb, dh, &g->ho) || !nn_pool_extent(w, kw, sw, pl, pr, dw, &g->wo)) {
        return AXIOM_ERR_SIZE;
    }
    if (!NN_NUMEL(in_count, elem, n, h, w, c) || !NN_NUMEL(out_count, elem, n, g->ho, g->wo, c)) {
        return AXIOM_ERR_SIZE;
    }
    return AXIOM_OK;
}

/* Valid window taps along one axis: k in [*k0, *k1) has 0 <= start + k * dil < in. */
static inline void pool_taps(int64_t start, int64_t k, int64_t dil, int64_t in, int64_t *k0, int64_t *k1) {
    int64_t a = 0, b = k;
    if (start < 0) {
        a = (-start + dil - 1) / dil;
    }
    if (start + (k - 1) * dil >= in) {
        /* largest k with start + k * dil <= in - 1 */
        const int64_t last = in - 1 - start;
        b = last < 0 ? 0 : last / dil + 1;
    }
    /* a window entirely in the leading padding has no valid tap: an empty range [k, k), so that
     * count_include_pad=False averages 0/0 = NaN (not a negative count) */
    a = a > k ? k : a;
    b = b > k ? k : b;
    *k0 = a;
    *k1 = b < a ? a : b;
}

/* ---- max / average pooling, float32 ------------------------------------------------------ */

enum { POOL_MAX = 0, POOL_AVG = 1 };

/* One output pixel, channels [0, nv * 8 + part) (nv <= 8 full vectors, then part < 8 lanes):
 * combine the window's valid taps (i in [i0, i1), j in [j0, j1)) at element offsets
 * base + i * rs + j * cs of img. nv, part and mode are compile-time constants after inlining.
 * Max: NaN is tracked in one flag vector; a window that saw NaN is redone lane-exactly. */
static inline __attribute__((always_inline)) void pool_pixel_f32(const float *img, int64_t base, int64_t rs,
                                                                 int64_t cs, int64_t i0, int64_t i1, int64_t j0,
                                                                 int64_t j1, float *out, float count, int nv,
                                                                 int64_t part, int mode) {
    nn_vf acc[9] = {{0}};
    nn_vi nan = (nn_vi){0};
    const int nall = nv + (part > 0);
    for (int v = 0; v < nall; ++v) {
        acc[v] = nn_set1(mode == POOL_MAX ? -INFINITY : 0.0f);
    }
    for (int64_t i = i0; i < i1; ++i) {
        for (int64_t j = j0; j < j1; ++j) {
            const float *p = img + (base + i * rs + j * cs);
            for (int v = 0; v < nall; ++v) {
                nn_vf x = v < nv ? nn_load(p + v * NN_VL) : nn_load_n(p + v * NN_VL, part);
                if (mode == POOL_MAX) {
                    acc[v] = nn_max_fast(x, acc[v]);
                    nan |= (x != x);
                } else {
                    acc[v] += x;
                }
            }
        }
    }
    if (mode == POOL_MAX && nn_any(nan)) {
        for (int v = 0; v < nall; ++v) {
            acc[v] = nn_set1(-INFINITY);
        }
        for (int64_t i = i0; i < i1; ++i) {
            for (int64_t j = j0; j < j1; ++j) {
                const float *p = img + (base + i * rs + j * cs);
                for (int v = 0; v < nall; ++v) {
                    acc[v] = nn_max_nan(v < nv ? nn_load(p + v * NN_VL) : nn_load_n(p + v * NN_VL, part), acc[v]);
                }
            }
        }
    }
    for (int v = 0; v < nall; ++v) {
        nn_vf r = mode == POOL_AVG ? acc[v] / nn_set1(count) : acc[v];
        if (v < nv) {
            nn_store(out + v * NN_VL, r);
        } else {
            nn_store_n(out + v * NN_VL, r, part);
        }
    }
}

#define POOL_PIXEL(NV, PART) pool_pixel_f32(img, base + ch, rs, cs, i0, i1, j0, j1, out + ch, count, NV, PART, mode)

/* all channels of one output pixel: chunks of 64, then the rest in one pass */
static inline __attribute__((always_inline)) void pool_pixel_all_f32(const float *img, int64_t base, int64_t rs,
                                                                     int64_t cs, int64_t i0, int64_t i1,
                                                                     int64_t j0, int64_t j1, float *out,
                                                                     float count, int64_t c, int mode) {
    int64_t ch = 0;
    for (; ch + 8 * NN_VL <= c; ch += 8 * NN_VL) {
        POOL_PIXEL(8, 0);
    }
    const int64_t rem = c - ch, part = rem % NN_VL;
    if (part == 0) {
        switch (rem / NN_VL) {
        case 1: POOL_PIXEL(1, 0); break;
        case 2: POOL_PIXEL(2, 0); break;
        case 3: POOL_PIXEL(3, 0); break;
        case 4: POOL_PIXEL(4, 0); break;
        case 5: POOL_PIXEL(5, 0); break;
        case 6: POOL_PIXEL(6, 0); break;
        case 7: POOL_PIXEL(7, 0); break;
        default: break;
        }
    } else {
        switch (rem / NN_VL) {
        case 0: POOL_PIXEL(0, part); break;
        case 1: POOL_PIXEL(1, part); break;
        case 2: POOL_PIXEL(2, part); break;
        case 3: POOL_PIXEL(3, part); break;
        case 4: POOL_PIXEL(4, part); break;
        case 5: POOL_PIXEL(5, part); break;
        case 6: POOL_PIXEL(6, part); break;
        default: POOL_PIXEL(7, part); break;
        }
    }
}
#undef POOL_PIXEL

static void pool_run_f32(const float *x, float *y, const pool_geom *g, int64_t nin, int count_include_pad,
                         int mode) {
    const int64_t n = g->n, h = g->h, w = g->w, c = g->c, ho = g->ho, wo = g->wo;
    const int64_t rs = g->dh * w * c, cs = g->dw * c;
    const int par = n * ho > 1 && (nin >= NN_PAR_ELEMS || n * ho * wo * c * g->kh * g->kw >= NN_PAR_ELEMS);
#pragma omp parallel for schedule(static) if (par)
    for (int64_t t = 0; t < n * ho; ++t) {
        const int64_t b = t / ho, oh = t % ho;
        const int64_t ih = oh * g->sh - g->pt;
        int64_t i0, i1;
        pool_taps(ih, g->kh, g->dh, h, &i0, &i1);
        const float *img = x + b * h * w * c;
        for (int64_t ow = 0; ow < wo; ++ow) {
            const int64_t iw = ow * g->sw - g->pl;
            int64_t j0, j1;
            pool_taps(iw, g->kw, g->dw, w, &j0, &j1);
            const float count = count_include_pad ? (float)(g->kh * g->kw) : (float)((i1 - i0) * (j1 - j0));
            const int64_t base = (ih * w + iw) * c; /* offset of tap (0, 0), maybe in the padding */
            float *out = y + ((b * ho + oh) * wo + ow) * c;
            if (mode == POOL_MAX) {
                pool_pixel_all_f32(img, base, rs, cs, i0, i1, j0, j1, out, count, c, POOL_MAX);
            } else {
                pool_pixel_all_f32(img, base, rs, cs, i0, i1, j0, j1, out, count, c, POOL_AVG);
            }
        }
    }
}

AXIOM_API int axiom_max_pool2d_f32(const float *x, float *y, int64_t n, int64_t h, int64_t w, int64_t c,
                                   int64_t kh, int64_t kw, int64_t sh, int64_t sw, int64_t pt, int64_t pb,
                                   int64_t pl, int64_t pr, int64_t dh, int64_t dw) {
    pool_geom g;
    int64_t nin, nout;
    const int rc = pool_geometry(&g, n, h, w, c, kh, kw, sh, sw, pt, pb, pl, pr, dh, dw, sizeof(float), &nin, &nout);
    if (rc != AXIOM_OK) {
        return rc;
    }
    if ((nin > 0 && x == NULL) || (nout > 0 && y == NULL)) {
        return AXIOM_ERR_NULL;
    }
    if (nout > 0) {
        pool_run_f32(x, y, &g, nin, 0, POOL_MAX);
    }
    return AXIOM_OK;
}

AXIOM_API int axiom_avg_pool2d_f32(const float *x, float *y, int64_t n, int64_t h, int64_t w, int64_t c,
                                   int64_t kh, int64_t kw, int64_t sh, int64_t sw, int64_t pt, int64_t pb,
                                   int64_t pl, int64_t pr, int count_include_pad) {
    pool_geom g;
    int64_t nin, nout;
    const int rc = pool_geometry(&g, n, h, w, c, kh, kw, sh, sw, pt, pb, pl, pr, 1, 1, sizeof(float), &nin, &nout);
    if (rc != AXIOM_OK) {
        return rc;
    }
    if (count_include_pad != 0 && count_include_pad != 1) {
        return AXIOM_ERR_SIZE;
    }
    if ((nin > 0 && x == NULL) || (nout > 0 && y == NULL)) {
        return AXIOM_ERR_NULL;
    }
    if (nout > 0) {
        pool_run_f32(x, y, &g, nin, count_include_pad, POOL_AVG);
    }
    return AXIOM_OK;
}

/* ---- global average pooling, float32 ------------------------------------------------------ */

#define GAP_ROWS 128 /* rows summed in float32 before adding into the float64 total */

#define GAP_CHUNK (16 * NN_VL) /* channels per pass over an image */

/* channels [0, nv * 8 + part) of one image (hw rows of stride c) */
static inline __attribute__((always_inline)) void gap_chunk_f32(const float *x, float *y, int64_t hw, int64_t c,
                                                                int nv, int64_t part) {
    double total[17 * NN_VL] = {0.0};
    const int nall = nv + (part > 0);
    for (int64_t r0 = 0; r0 < hw; r0 += GAP_ROWS) {
        const int64_t r1 = r0 + GAP_ROWS < hw ? r0 + GAP_ROWS : hw;
        nn_vf s[17];
        for (int v = 0; v < nall; ++v) {
            s[v] = nn_set1(0.0f);
        }
        for (int64_t r = r0; r < r1; ++r) {
            for (int v = 0; v < nall; ++v) {
                s[v] += v < nv ? nn_load(x + r * c + v * NN_VL) : nn_load_n(x + r * c + v * NN_VL, part);
            }
        }
        for (int v = 0; v < nall; ++v) {
            for (int l = 0; l < NN_VL; ++l) {
                total[v * NN_VL + l] += (double)s[v][l];
            }
        }
    }
    const int64_t lanes = nv * NN_VL + part;
    for (int64_t l = 0; l < lanes; ++l) {
        y[l] = (float)(total[l] / (double)hw);
    }
}

AXIOM_API int axiom_global_avg_pool_f32(const float *x, float *y, int64_t n, int64_t hw, int64_t c) {
    int64_t nin, nout;
    if (!NN_NUMEL(&nin, sizeof(float), n, hw, c) || !NN_NUMEL(&nout, sizeof(float), n, c)) {
        return AXIOM_ERR_SIZE;
    }
    if ((nin > 0 && x == NULL) || (nout > 0 && y == NULL)) {
        return AXIOM_ERR_NULL;
    }
    if (nout == 0) {
        return AXIOM_OK;
    }
    if (hw == 0) {
        for (int64_t i = 0; i < nout; ++i) {
            y[i] = NAN;
        }
        return AXIOM_OK;
    }
    const int64_t chunks = (c + GAP_CHUNK - 1) / GAP_CHUNK;
    const int par = n * chunks > 1 && nin >= NN_PAR_ELEMS;
#pragma omp parallel for schedule(static) if (par)
    for (int64_t t = 0; t < n * chunks; ++t) {
        const int64_t b = t / chunks, ch = (t % chunks) * GAP_CHUNK;
        const int64_t rem = c - ch < GAP_CHUNK ? c - ch : GAP_CHUNK, part = rem % NN_VL;
        const float *xb = x + b * hw * c + ch;
        float *yb = y + b * c + ch;
        switch (rem / NN_VL) {
#define GAP_CASE(NV)                                \
    case NV:                                        \
        if (part == 0) {                            \
            gap_chunk_f32(xb, yb, hw, c, NV, 0);    \
        } else {                                    \
            gap_chunk_f32(xb, yb, hw, c, NV, part); \
        }                                           \
        break;
            GAP_CASE(0)
            GAP_CASE(1)
            GAP_CASE(2)
            GAP_CASE(3)
            GAP_CASE(4)
            GAP_CASE(5)
            GAP_CASE(6)
            GAP_CASE(7)
            GAP_CASE(8)
            GAP_CASE(9)
            GAP_CASE(10)
            GAP_CASE(11)
            GAP_CASE(12)
            GAP_CASE(13)
            GAP_CASE(14)
            GAP_CASE(15)
#undef GAP_CASE
        default:
            gap_chunk_f32(xb, yb, hw, c, 16, 0);
            break;
        }
    }
    return AXIOM_OK;
}

/* ---- backward, float32 --------------------------------------------------------------------- */

AXIOM_API int axiom_max_pool2d_backward_f32(const float *x, const float *dy, float *dx, int64_t n, int64_t h,
                                            int64_t w, int64_t c, int64_t kh, int64_t kw, int64_t sh, int64_t sw,
                                            int64_t pt, int64_t pb, int64_t pl, int64_t pr, int64_t dh, int64_t dw) {
    pool_geom g;
    int64_t nin, nout;
    const int rc = pool_geometry(&g, n, h, w, c, kh, kw, sh, sw, pt, pb, pl, pr, dh, dw, sizeof(float), &nin, &nout);
    if (rc != AXIOM_OK) {
        return rc;
    }
    if ((nin > 0 && (x == NULL || dx == NULL)) || (nout > 0 && dy == NULL)) {
        return AXIOM_ERR_NULL;
    }
    if (nin == 0) {
        return AXIOM_OK;
    }
    const int par = n > 1 && (nin >= NN_PAR_ELEMS || nout * kh * kw >= NN_PAR_ELEMS);
#pragma omp parallel for schedule(static) if (par)
    for (int64_t b = 0; b < n; ++b) {
        const float *img = x + b * h * w * c;
        float *dimg = dx + b * h * w * c;
        for (int64_t i = 0; i < h * w * c; ++i) {
            dimg[i] = 0.0f;
        }
        for (int64_t oh = 0; oh < g.ho; ++oh) {
            const int64_t ih = oh * sh - pt;
            int64_t i0, i1;
            pool_taps(ih, kh, dh, h, &i0, &i1);
            for (int64_t ow = 0; ow < g.wo; ++ow) {
                const int64_t iw = ow * sw - pl;
                int64_t j0, j1;
                pool_taps(iw, kw, dw, w, &j0, &j1);
                if (i0 >= i1 || j0 >= j1) {
                    continue; /* padding only: no input receives this gradient */
                }
                const float *g_out = dy + ((b * g.ho + oh) * g.wo + ow) * c;
                const int64_t first = (ih + i0 * dh) * w + (iw + j0 * dw);
                const int64_t nj = j1 - j0, taps = (i1 - i0) * nj;
                if (taps > INT32_MAX) {
                    for (int64_t ch = 0; ch < c; ++ch) {
                        float best = -INFINITY;
                        int64_t arg = first;
                        for (int64_t i = i0; i < i1; ++i) {
                            for (int64_t j = j0; j < j1; ++j) {
                                const int64_t cell = (ih + i * dh) * w + (iw + j * dw);
                                const float v = img[cell * c + ch];
                                if (v > best || v != v) {
                                    best = v, arg = cell;
                                }
                            }
                        }
                        dimg[arg * c + ch] += g_out[ch];
                    }
                    continue;
                }
                for (int64_t ch = 0; ch < c; ch += NN_VL) {
                    const int64_t lanes = c - ch < NN_VL ? c - ch : NN_VL;
                    nn_vf best = nn_set1(-INFINITY);
                    nn_vi arg = (nn_vi){0}; /* window tap of the maximum, per lane */
                    int32_t tap = 0;
                    for (int64_t i = i0; i < i1; ++i) {
                        for (int64_t j = j0; j < j1; ++j, ++tap) {
                            const int64_t cell = (ih + i * dh) * w + (iw + j * dw);
                            const float *p = img + cell * c + ch;
                            nn_vf v = lanes < NN_VL ? nn_load_part(p, lanes, -INFINITY) : nn_load(p);
                            /* like PyTorch: a larger value or any NaN takes over */
                            nn_vi upd = (v > best) | (v != v);
                            best = nn_sel(upd, v, best);
                            arg = (nn_vi)nn_sel(upd, (nn_vf)((nn_vi){0} + tap), (nn_vf)arg);
                        }
                    }
                    for (int64_t l = 0; l < lanes; ++l) {
                        const int64_t i = i0 + arg[l] / nj, j = j0 + arg[l] % nj;
                        dimg[((ih + i * dh) * w + (iw + j * dw)) * c + ch + l] += g_out[ch + l];
                    }
                }
            }
        }
    }
    return AXIOM_OK;
}

AXIOM_API int axiom_avg_pool2d_backward_f32(const float *dy, float *dx, int64_t n, int64_t h, int64_t w, int64_t c,
                                            int64_t kh, int64_t kw, int64_t sh, int64_t sw, int64_t pt, int64_t pb,
                                            int64_t pl, int64_t pr, int count_include_pad) {
    pool_geom g;
    int64_t nin, nout;
    const int rc = pool_geometry(&g, n, h, w, c, kh, kw, sh, sw, pt, pb, pl, pr, 1, 1, sizeof(float), &nin, &nout);
    if (rc != AXIOM_OK) {
        return rc;
    }
    if (count_include_pad != 0 && count_include_pad != 1) {
        return AXIOM_ERR_SIZE;
    }
    if ((nin > 0 && dx == NULL) || (nout > 0 && dy == NULL)) {
        return AXIOM_ERR_NULL;
    }
    if (nin == 0) {
        return AXIOM_OK;
    }
    const int par = n > 1 && (nin >= NN_PAR_ELEMS || nout * kh * kw >= NN_PAR_ELEMS);
#pragma omp parallel for schedule(static) if (par)
    for (int64_t b = 0; b < n; ++b) {
        float *dimg = dx + b * h * w * c;
        for (int64_t i = 0; i < h * w * c; ++i) {
            dimg[i] = 0.0f;
        }
        for (int64_t oh = 0; oh < g.ho; ++oh) {
            const int64_t ih = oh * sh - pt;
            int64_t i0, i1;
            pool_taps(ih, kh, 1, h, &i0, &i1);
            for (int64_t ow = 0; ow < g.wo; ++ow) {
                const int64_t iw = ow * sw - pl;
                int64_t j0, j1;
                pool_taps(iw, kw, 1, w, &j0, &j1);
                const float count = count_include_pad ? (float)(kh * kw) : (float)((i1 - i0) * (j1 - j0));
                const float *g_out = dy + ((b * g.ho + oh) * g.wo + ow) * c;
                for (int64_t i = i0; i < i1; ++i) {
                    for (int64_t j = j0; j < j1; ++j) {
                        float *p = dimg + ((ih + i) * w + (iw + j)) * c;
                        int64_t ch = 0;
                        for (; ch + NN_VL <= c; ch += NN_VL) {
                            nn_store(p + ch, nn_load(p + ch) + nn_load(g_out + ch) / count);
                        }
                        for (; ch < c; ++ch) {
                            p[ch] += g_out[ch] / count;
                        }
                    }
                }
            }
        }
    }
    return AXIOM_OK;
}

/* ---- float64: plain loops ------------------------------------------------------------------ */

AXIOM_API int axiom_max_pool2d_f64(const double *x, double *y, int64_t n, int64_t h, int64_t w, int64_t c,
                                   int64_t kh, int64_t kw, int64_t sh, int64_t sw, int64_t pt, int64_t pb,
                                   int64_t pl, int64_t pr, int64_t dh, int64_t dw) {
    pool_geom g;
    int64_t nin, nout;
    const int rc = pool_geometry(&g, n, h, w, c, kh, kw, sh, sw, pt, pb, pl, pr, dh, dw, sizeof(double), &nin, &nout);
    if (rc != AXIOM_OK) {
        return rc;
    }
    if ((nin > 0 && x == NULL) || (nout > 0 && y == NULL)) {
        return AXIOM_ERR_NULL;
    }
    const int par = n * g.ho > 1 && (nin >= NN_PAR_ELEMS || nout * kh * kw >= NN_PAR_ELEMS);
#pragma omp parallel for schedule(static) if (par)
    for (int64_t t = 0; t < n * g.ho; ++t) {
        const int64_t b = t / g.ho, oh = t % g.ho, ih = oh * sh - pt;
        int64_t i0, i1;
        pool_taps(ih, kh, dh, h, &i0, &i1);
        for (int64_t ow = 0; ow < g.wo; ++ow) {
            const int64_t iw = ow * sw - pl;
            int64_t j0, j1;
            pool_taps(iw, kw, dw, w, &j0, &j1);
            double *out = y + ((b * g.ho + oh) * g.wo + ow) * c;
            for (int64_t ch = 0; ch < c; ++ch) {
                out[ch] = -INFINITY;
            }
            for (int64_t i = i0; i < i1; ++i) {
                for (int64_t j = j0; j < j1; ++j) {
                    const double *p = x + ((b * h + ih + i * dh) * w + iw + j * dw) * c;
                    for (int64_t ch = 0; ch < c; ++ch) {
                        out[ch] = (p[ch] > out[ch] || p[ch] != p[ch]) ? p[ch] : out[ch];
                    }
                }
            }
        }
    }
    return AXIOM_OK;
}

AXIOM_API int axiom_avg_pool2d_f64(const double *x, double *y, int64_t n, int64_t h, int64_t w, int64_t c,
                                   int64_t kh, int64_t kw, int64_t sh, int64_t sw, int64_t pt, int64_t pb,
                                   int64_t pl, int64_t pr, int count_include_pad) {
    pool_geom g;
    int64_t nin, nout;
    const int rc = pool_geometry(&g, n, h, w, c, kh, kw, sh, sw, pt, pb, pl, pr, 1, 1, sizeof(double), &nin, &nout);
    if (rc != AXIOM_OK) {
        return rc;
    }
    if (count_include_pad != 0 && count_include_pad != 1) {
        return AXIOM_ERR_SIZE;
    }
    if ((nin > 0 && x == NULL) || (nout > 0 && y == NULL)) {
        return AXIOM_ERR_NULL;
    }
    const int par = n * g.ho > 1 && (nin >= NN_PAR_ELEMS || nout * kh * kw >= NN_PAR_ELEMS);
#pragma omp parallel for schedule(static) if (par)
    for (int64_t t = 0; t < n * g.ho; ++t) {
        const int64_t b = t / g.ho, oh = t % g.ho, ih = oh * sh - pt;
        int64_t i0, i1;
        pool_taps(ih, kh, 1, h, &i0, &i1);
        for (int64_t ow = 0; ow < g.wo; ++ow) {
            const int64_t iw = ow * sw - pl;
            int64_t j0, j1;
            pool_taps(iw, kw, 1, w, &j0, &j1);
            const double count = count_include_pad ? (double)(kh * kw) : (double)((i1 - i0) * (j1 - j0));
            double *out = y + ((b * g.ho + oh) * g.wo + ow) * c;
            for (int64_t ch = 0; ch < c; ++ch) {
                out[ch] = 0.0;
            }
            for (int64_t i = i0; i < i1; ++i) {
                for (int64_t j = j0; j < j1; ++j) {
                    const double *p = x + ((b * h + ih + i) * w + iw + j) * c;
                    for (int64_t ch = 0; ch < c; ++ch) {
                        out[ch] += p[ch];
                    }
                }
            }
            for (int64_t ch = 0; ch < c; ++ch) {
                out[ch] /= count;
            }
        }
    }
    return AXIOM_OK;
}

AXIOM_API int axiom_global_avg_pool_f64(const double *x, double *y, int64_t n, int64_t hw, int64_t c) {
    int64_t nin, nout;
    if (!NN_NUMEL(&nin, sizeof(double), n, hw, c) || !NN_NUMEL(&nout, sizeof(double), n, c)) {
        return AXIOM_ERR_SIZE;
    }
    if ((nin > 0 && x == NULL) || (nout > 0 && y == NULL)) {
        return AXIOM_ERR_NULL;
    }
    const int par = n > 1 && nin >= NN_PAR_ELEMS;
#pragma omp parallel for schedule(static) if (par)
    for (int64_t b = 0; b < n; ++b) {
        double *yb = y + b * c;
        for (int64_t ch = 0; ch < c; ++ch) {
            yb[ch] = 0.0;
        }
        for (int64_t r = 0; r < hw; ++r) {
            const double *p = x + (b * hw + r) * c;
            for (int64_t ch = 0; ch < c; ++ch) {
                yb[ch] += p[ch];
            }
        }
        for (int64_t ch = 0; ch < c; ++ch) {
            yb[ch] /= (double)hw;
        }
    }
    return AXIOM_OK;
}

AXIOM_API int axiom_max_pool2d_backward_f64(const double *x, const double *dy, double *dx, int64_t n, int64_t h,
                                            int64_t w, int64_t c, int64_t kh, int64_t kw, int64_t sh, int64_t sw,
                                            int64_t pt, int64_t pb, int64_t pl, int64_t pr, int64_t dh, int64_t dw) {
    pool_geom g;
    int64_t nin, nout;
    const int rc = pool_geometry(&g, n, h, w, c, kh, kw, sh, sw, pt, pb, pl, pr, dh, dw, sizeof(double), &nin, &nout);
    if (rc != AXIOM_OK) {
        return rc;
    }
    if ((nin > 0 && (x == NULL || dx == NULL)) || (nout > 0 && dy == NULL)) {
        return AXIOM_ERR_NULL;
    }
    const int par = n > 1 && (nin >= NN_PAR_ELEMS || nout * kh * kw >= NN_PAR_ELEMS);
#pragma omp parallel for schedule(static) if (par)
    for (int64_t b = 0; b < n; ++b) {
        const double *img = x + b * h * w * c;
        double *dimg = dx + b * h * w * c;
        for (int64_t i = 0; i < h * w * c; ++i) {
            dimg[i] = 0.0;
        }
        for (int64_t oh = 0; oh < g.ho; ++oh) {
            const int64_t ih = oh * sh - pt;
            int64_t i0, i1;
            pool_taps(ih, kh, dh, h, &i0, &i1);
            for (int64_t ow = 0; ow < g.wo; ++ow) {
                const int64_t iw = ow * sw - pl;
                int64_t j0, j1;
                pool_taps(iw, kw, dw, w, &j0, &j1);
                if (i0 >= i1 || j0 >= j1) {
                    continue;
                }
                const double *g_out = dy + ((b * g.ho + oh) * g.wo + ow) * c;
                for (int64_t ch = 0; ch < c; ++ch) {
                    double best = -INFINITY;
                    int64_t arg = (ih + i0 * dh) * w + (iw + j0 * dw);
                    for (int64_t i = i0; i < i1; ++i) {
                        for (int64_t j = j0; j < j1; ++j) {
                            const int64_t cell = (ih + i * dh) * w + (iw + j * dw);
                            const double v = img[cell * c + ch];
                            if (v > best || v != v) {
                                best = v;
                                arg = cell;
                            }
                        }
                    }
                    dimg[arg * c + ch] += g_out[ch];
                }
            }
        }
    }
    return AXIOM_OK;
}

AXIOM_API int axiom_avg_pool2d_backward_f64(const double *dy, double *dx, int64_t n, int64_t h, int64_t w,
                                            int64_t c, int64_t kh, int64_t kw, int64_t sh, int64_t sw, int64_t pt,
                                            int64_t pb, int64_t pl, int64_t pr, int count_include_pad) {
    pool_geom g;
    int64_t nin, nout;
    const int rc = pool_geometry(&g, n, h, w, c, kh, kw, sh, sw, pt, pb, pl, pr, 1, 1, sizeof(double), &nin, &nout);
    if (rc != AXIOM_OK) {
        return rc;
    }
    if (count_include_pad != 0 && count_include_pad != 1) {
        return AXIOM_ERR_SIZE;
    }
    if ((nin > 0 && dx == NULL) || (nout > 0 && dy == NULL)) {
        return AXIOM_ERR_NULL;
    }
    const int par = n > 1 && (nin >= NN_PAR_ELEMS || nout * kh * kw >= NN_PAR_ELEMS);
#pragma omp parallel for schedule(static) if (par)
    for (int64_t b = 0; b < n; ++b) {
        double *dimg = dx + b * h * w * c;
        for (int64_t i = 0; i < h * w * c; ++i) {
            dimg[i] = 0.0;
        }
        for (int64_t oh = 0; oh < g.ho; ++oh) {
            const int64_t ih = oh * sh - pt;
            int64_t i0, i1;
            pool_taps(ih, kh, 1, h, &i0, &i1);
            for (int64_t ow = 0; ow < g.wo; ++ow) {
                const int64_t iw = ow * sw - pl;
                int64_t j0, j1;
                pool_taps(iw, kw, 1, w, &j0, &j1);
                const double count = count_include_pad ? (double)(kh * kw) : (double)((i1 - i0) * (j1 - j0));
                const double *g_out = dy + ((b * g.ho + oh) * g.wo + ow) * c;
                for (int64_t i = i0; i < i1; ++i) {
                    for (int64_t j = j0; j < j1; ++j) {
                        double *p = dimg + ((ih + i) * w + (iw + j)) * c;
                        for (int64_t ch = 0; ch < c; ++ch) {
                            p[ch] += g_out[ch] / count;
                        }
                    }
                }
            }
        }
    }
    return AXIOM_OK;
}
