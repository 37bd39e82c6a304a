/*
 * conv_impl.h - NHWC convolution kernels, written once and included by conv.c for each
 * element type. Before including, define C_T (float, double) and C_(name) (name##_f32 ...).
 * Internal functions return 0, or -1 when scratch memory is missing.
 */

#define C_ASRC C_(axiom_asrc)
#define C_DRIVER C_(axiom_gemm_driver)

/* dst (hp x wp x cin) = image src (h x w x cin) shifted by (pt, pl) with zeros around; pads may be negative (crop). */
static void C_(pad_image)(const conv_dims *d, const C_T *src, C_T *dst) {
    const int64_t cin = d->cin, wp = d->wp, rowlen = wp * cin;
    const int64_t j0 = d->pl > 0 ? d->pl : 0;
    const int64_t j1 = d->pl + d->w < wp ? d->pl + d->w : wp;
    for (int64_t i = 0; i < d->hp; ++i) {
        C_T *drow = dst + i * rowlen;
        const int64_t si = i - d->pt;
        if (si < 0 || si >= d->h || j1 <= j0) {
            memset(drow, 0, (size_t)rowlen * sizeof(C_T));
            continue;
        }
        if (j0 > 0) memset(drow, 0, (size_t)(j0 * cin) * sizeof(C_T));
        memcpy(drow + j0 * cin, src + (si * d->w + (j0 - d->pl)) * cin, (size_t)((j1 - j0) * cin) * sizeof(C_T));
        if (j1 < wp) memset(drow + j1 * cin, 0, (size_t)((wp - j1) * cin) * sizeof(C_T));
    }
}

/* The image the taps read: image `img` of x, zero padded into this thread's buffer when needed. */
static const C_T *C_(image)(const conv_dims *d, const C_T *x, int64_t img) {
    const C_T *src = x ? x + img * d->h * d->w * d->cin : NULL;
    if (!d->padded) return src;
    C_T *buf = (C_T *)axiom_scratch(AXIOM_SLOT_PAD, (size_t)(d->hp * d->wp * d->cin) * sizeof(C_T));
    if (buf) C_(pad_image)(d, src, buf);
    return buf;
}

/* rows[m] = pointer to the top-left tap of output pixel m (oh * wo + ow) in an image of row length wp. */
static void C_(pixel_rows)(const conv_dims *d, const C_T *img, const C_T **rows) {
    const int64_t wp = d->padded ? d->wp : d->w;
    for (int64_t oh = 0; oh < d->ho; ++oh) {
        const C_T *r = img + oh * d->sh * wp * d->cin;
        for (int64_t ow = 0; ow < d->wo; ++ow) *rows++ = r + ow * d->sw * d->cin;
    }
}

/* Forward of one image (all groups) through the gather GEMM. */
static int C_(forward_image)(const conv_dims *d, const C_T *img, const int64_t *koff, const C_T *w, const C_T *bias,
                             C_T *y, int threads) {
    const int64_t m = d->ho * d->wo;
    const C_T **rows = (const C_T **)axiom_scratch(AXIOM_SLOT_ROWS, (size_t)m * sizeof(C_T *));
    if (!rows) return -1;
    C_(pixel_rows)(d, img, rows);
    for (int64_t g = 0; g < d->groups; ++g) {
        const C_ASRC A = {NULL, 0, 0, rows, koff + g * d->k};
        if (C_DRIVER(m, d->cout_g, d->k, &A, w + g * d->cout_g, d->cout, 0, (C_T)1, (C_T)0, y + g * d->cout_g,
                     d->cout, bias ? bias + g * d->cout_g : NULL, threads) != 0) {
            return -1;
        }
    }
    return 0;
}

/* Depthwise (one input and one output channel per group): output rows [oh0, oh1) of one image. */
static void C_(depthwise_rows)(const conv_dims *d, const C_T *img, const C_T *w, const C_T *bias, C_T *y, int64_t oh0,
                               int64_t oh1) {
    enum { CH = 64 };
    const int64_t C = d->cin, wp = d->padded ? d->wp : d->w;
    C_T acc[CH] __attribute__((aligned(64)));
    for (int64_t oh = oh0; oh < oh1; ++oh) {
        for (int64_t ow = 0; ow < d->wo; ++ow) {
            const C_T *base = img + (oh * d->sh * wp + ow * d->sw) * C;
            C_T *o = y + (oh * d->wo + ow) * C;
            for (int64_t c0 = 0; c0 < C; c0 += CH) {
                const int cc = C - c0 < CH ? (int)(C - c0) : CH;
                for (int c = 0; c < cc; ++c) acc[c] = (C_T)0;
                for (int64_t i = 0; i < d->kh; ++i) {
                    for (int64_t j = 0; j < d->kw; ++j) {
                        const C_T *restrict xs = base + (i * d->dh * wp + j * d->dw) * C + c0;
                        const C_T *restrict ws = w + (i * d->kw + j) * C + c0;
                        for (int c = 0; c < cc; ++c) acc[c] += xs[c] * ws[c];
                    }
                }
                if (bias) {
                    for (int c = 0; c < cc; ++c) o[c0 + c] = acc[c] + bias[c0 + c];
                } else {
                    for (int c = 0; c < cc; ++c) o[c0 + c] = acc[c];
                }
            }
        }
    }
}

/* y = conv(x, w) + bias for validated dims (pads may be negative). */
static int C_(conv_forward)(const conv_dims *d, const C_T *x, const C_T *w, const C_T *bias, C_T *y) {
    if (d->ny == 0) return 0;
    const int threads = axiom_threads_for(2.0 * (double)d->ny * (double)d->k);
    const int64_t n = d->n, ysz = d->ho * d->wo * d->cout;
    if (d->k == 0) { /* no input channel: y = bias */
        for (int64_t i = 0; i < d->ny; ++i) y[i] = bias ? bias[i % d->cout] : (C_T)0;
        return 0;
    }
    if (d->kh == 1 && d->kw == 1 && d->sh == 1 && d->sw == 1 && !d->padded) {
        /* 1x1: the image is already the im2col matrix */
        for (int64_t g = 0; g < d->groups; ++g) {
            const C_ASRC A = {x + g * d->cin_g, d->cin, 0, NULL, NULL};
            if (C_DRIVER(n * d->h * d->w, d->cout_g, d->cin_g, &A, w + g * d->cout_g, d->cout, 0, (C_T)1, (C_T)0,
                         y + g * d->cout_g, d->cout, bias ? bias + g * d->cout_g : NULL, threads) != 0) {
                return -1;
            }
        }
        return 0;
    }
    int failed = 0;
    if (d->cin_g == 1 && d->cout_g == 1) {
        if (threads > 1 && n >= threads) {
#pragma omp parallel for schedule(dynamic, 1) num_threads(threads)
            for (int64_t img = 0; img < n; ++img) {
                const C_T *xi = C_(image)(d, x, img);
                if (!xi) {
#pragma omp atomic write
                    failed = 1;
                    continue;
                }
                C_(depthwise_rows)(d, xi, w, bias, y + img * ysz, 0, d->ho);
            }
        } else {
            for (int64_t img = 0; img < n && !failed; ++img) {
                const C_T *xi = C_(image)(d, x, img);
                if (!xi) return -1;
                if (threads <= 1) {
                    C_(depthwise_rows)(d, xi, w, bias, y + img * ysz, 0, d->ho);
                    continue;
                }
#pragma omp parallel for schedule(static) num_threads(threads)
                for (int64_t oh = 0; oh < d->ho; ++oh) C_(depthwise_rows)(d, xi, w, bias, y + img * ysz, oh, oh + 1);
            }
        }
        return failed ? -1 : 0;
    }
    int64_t *koff = (int64_t *)axiom_scratch(AXIOM_SLOT_KOFF, (size_t)(d->groups * d->k) * sizeof(int64_t));
    if (!koff) return -1;
    conv_koff(d, d->padded ? d->wp : d->w, koff);
    if (threads > 1 && n >= threads) {
#pragma omp parallel for schedule(dynamic, 1) num_threads(threads)
        for (int64_t img = 0; img < n; ++img) {
            const C_T *xi = C_(image)(d, x, img);
            if (!xi || C_(forward_image)(d, xi, koff, w, bias, y + img * ysz, 1) != 0) {
#pragma omp atomic write
                failed = 1;
            }
        }
    } else {
        for (int64_t img = 0; img < n && !failed; ++img) {
            const C_T *xi = C_(image)(d, x, img);
            failed = !xi || C_(forward_image)(d, xi, koff, w, bias, y + img * ysz, threads) != 0;
        }
    }
    return failed ? -1 : 0;
}

/* ---- weight gradient --------------------------------------------------------------------- */

/* dw (+)= gradient contribution of images [i0, i1); beta 0 on the first image unless accumulate. */
static int C_(weight_grad_images)(const conv_dims *d, const C_T *x, const C_T *dy, C_T *dw, int64_t i0, int64_t i1,
                                  const int64_t *koff, int accumulate, int threads) {
    const int64_t m = d->ho * d->wo, ysz = m * d->cout;
    if (d->cin_g == 1 && d->cout_g == 1) { /* depthwise: direct */
        const int64_t C = d->cin, wp = d->padded ? d->wp : d->w;
        if (!accumulate) memset(dw, 0, (size_t)d->nwt * sizeof(C_T));
        for (int64_t img = i0; img < i1; ++img) {
            const C_T *xi = C_(image)(d, x, img);
            if (!xi) return -1;
            const C_T *dyi = dy + img * ysz;
            for (int64_t oh = 0; oh < d->ho; ++oh) {
                for (int64_t ow = 0; ow < d->wo; ++ow) {
                    const C_T *restrict g = dyi + (oh * d->wo + ow) * C;
                    const C_T *base = xi + (oh * d->sh * wp + ow * d->sw) * C;
                    for (int64_t i = 0; i < d->kh; ++i) {
                        for (int64_t j = 0; j < d->kw; ++j) {
                            const C_T *restrict xs = base + (i * d->dh * wp + j * d->dw) * C;
                            C_T *restrict t = dw + (i * d->kw + j) * C;
                            for (int64_t c = 0; c < C; ++c) t[c] += xs[c] * g[c];
                        }
                    }
                }
            }
        }
        return 0;
    }
    int64_t *pix = (int64_t *)axiom_scratch(AXIOM_SLOT_ROWS, (size_t)m * sizeof(int64_t));
    const C_T **taps = (const C_T **)axiom_scratch(AXIOM_SLOT_TAPS, (size_t)d->k * sizeof(C_T *));
    if (!pix || !taps) return -1;
    const int64_t wp = d->padded ? d->wp : d->w;
    for (int64_t oh = 0, t = 0; oh < d->ho; ++oh) {
        for (int64_t ow = 0; ow < d->wo; ++ow) pix[t++] = (oh * d->sh * wp + ow * d->sw) * d->cin;
    }
    for (int64_t img = i0; img < i1; ++img) {
        const C_T *xi = C_(image)(d, x, img);
        if (!xi) return -1;
        const C_T beta = (accumulate || img > i0) ? (C_T)1 : (C_T)0;
        for (int64_t g = 0; g < d->groups; ++g) {
            for (int64_t p = 0; p < d->k; ++p) taps[p] = xi + koff[g * d->k + p];
            const C_ASRC A = {NULL, 0, 0, taps, pix};
            if (C_DRIVER(d->k, d->cout_g, m, &A, dy + img * ysz + g * d->cout_g, d->cout, 0, (C_T)1, beta,
                         dw + g * d->cout_g, d->cout, NULL, threads) != 0) {
                return -1;
            }
        }
    }
    return 0;
}

static int C_(conv_backward_weight)(const conv_dims *d, const C_T *x, const C_T *dy, C_T *dw, C_T *dbias) {
    if (dbias && d->cout > 0) {
        double *acc = (double *)calloc((size_t)d->cout, sizeof(double));
        if (!acc) return -1;
        const int64_t rows = d->ny / d->cout;
        for (int64_t r = 0; r < rows; ++r) {
            const C_T *g = dy + r * d->cout;
            for (int64_t c = 0; c < d->cout; ++c) acc[c] += (double)g[c];
        }
        for (int64_t c = 0; c < d->cout; ++c) dbias[c] = (C_T)acc[c];
        free(acc);
    }
    if (d->nwt == 0) return 0;
    if (d->ny == 0) {
        memset(dw, 0, (size_t)d->nwt * sizeof(C_T));
        return 0;
    }
    const int threads = axiom_threads_for(2.0 * (double)d->ny * (double)d->k);
    if (d->kh == 1 && d->kw == 1 && d->sh == 1 && d->sw == 1 && !d->padded) {
        /* 1x1: dw_g = x_g^T @ dy_g over all pixels of all images */
        for (int64_t g = 0; g < d->groups; ++g) {
            const C_ASRC A = {x + g * d->cin_g, d->cin, 1, NULL, NULL};
            if (C_DRIVER(d->cin_g, d->cout_g, d->n * d->h * d->w, &A, dy + g * d->cout_g, d->cout, 0, (C_T)1, (C_T)0,
                         dw + g * d->cout_g, d->cout, NULL, threads) != 0) {
                return -1;
            }
        }
        return 0;
    }
    int64_t *koff = (int64_t *)axiom_scratch(AXIOM_SLOT_KOFF, (size_t)(d->groups * d->k) * sizeof(int64_t));
    if (!koff) return -1;
    conv_koff(d, d->padded ? d->wp : d->w, koff);
    if (threads > 1 && d->n >= threads) {
        /* images split across threads, one partial dw each, summed at the end */
        C_T *part = (C_T *)malloc((size_t)threads * (size_t)d->nwt * sizeof(C_T));
        if (!part) return -1;
        int failed = 0;
#pragma omp parallel num_threads(threads)
        {
#ifdef _OPENMP
            const int t = omp_get_thread_num(), nt = omp_get_num_threads();
#else
            const int t = 0, nt = 1;
#endif
            const int64_t i0 = d->n * t / nt, i1 = d->n * (t + 1) / nt;
            C_T *mine = part + (int64_t)t * d->nwt;
            if (i1 > i0) {
                if (C_(weight_grad_images)(d, x, dy, mine, i0, i1, koff, 0, 1) != 0) {
#pragma omp atomic write
                    failed = 1;
                }
            } else {
                memset(mine, 0, (size_t)d->nwt * sizeof(C_T));
            }
#pragma omp barrier
#pragma omp for schedule(static)
            for (int64_t e = 0; e < d->nwt; ++e) {
                C_T s = part[e];
                for (int u = 1; u < nt; ++u) s += part[(int64_t)u * d->nwt + e];
                dw[e] = s;
            }
        }
        free(part);
        return failed ? -1 : 0;
    }
    return C_(weight_grad_images)(d, x, dy, dw, 0, d->n, koff, 0, threads);
}

/* ---- input gradient ---------------------------------------------------------------------- */

/* Stride 1: dx = conv(dy, flipped transposed w) with padding dilation * (k - 1) - pad. */
static int C_(backward_input_stride1)(const conv_dims *d, const C_T *dy, const C_T *w, C_T *dx) {
    conv_dims e = *d;
    e.h = d->ho, e.w = d->wo, e.cin = d->cout, e.cout = d->cin, e.ho = d->h, e.wo = d->w;
    e.pt = d->dh * (d->kh - 1) - d->pt, e.pb = d->dh * (d->kh - 1) - d->pb;
    e.pl = d->dw * (d->kw - 1) - d->pl, e.pr = d->dw * (d->kw - 1) - d->pr;
    e.cin_g = d->cout_g, e.cout_g = d->cin_g, e.k = d->kh * d->kw * d->cout_g;
    e.hp = e.h + e.pt + e.pb, e.wp = e.w + e.pl + e.pr;
    e.nx = d->ny, e.ny = d->nx;
    e.padded = e.pt || e.pb || e.pl || e.pr;
    C_T *wt = (C_T *)axiom_scratch(AXIOM_SLOT_W, (size_t)d->nwt * sizeof(C_T));
    if (!wt) return -1;
    for (int64_t i = 0; i < d->kh; ++i) {
        for (int64_t j = 0; j < d->kw; ++j) {
            const C_T *src = w + ((d->kh - 1 - i) * d->kw + (d->kw - 1 - j)) * d->cin_g * d->cout;
            C_T *dst = wt + (i * d->kw + j) * d->cout_g * d->cin;
            for (int64_t g = 0; g < d->groups; ++g) {
                for (int64_t ci = 0; ci < d->cin_g; ++ci) {
                    const C_T *s = src + ci * d->cout + g * d->cout_g;
                    for (int64_t co = 0; co < d->cout_g; ++co) dst[co * d->cin + g * d->cin_g + ci] = s[co];
                }
            }
        }
    }
    return C_(conv_forward)(&e, dy, wt, NULL, dx);
}

/* Any stride: per image, cols = dy_img @ W_g^T, then scatter-add (col2im) into the (padded) image. */
static int C_(backward_input_image)(const conv_dims *d, const C_T *dy, const C_T *w, C_T *dx, int64_t img,
                                    const int64_t *koff) {
    const int64_t m = d->ho * d->wo, cin = d->cin, k = d->k;
    const int64_t xsz = d->h * d->w * cin;
    C_T *target = dx + img * xsz;
    if (d->padded) {
        target = (C_T *)axiom_scratch(AXIOM_SLOT_PAD, (size_t)(d->hp * d->wp * cin) * sizeof(C_T));
        if (!target) return -1;
        memset(target, 0, (size_t)(d->hp * d->wp * cin) * sizeof(C_T));
    } else {
        memset(target, 0, (size_t)xsz * sizeof(C_T));
    }
    const C_T **rows = (const C_T **)axiom_scratch(AXIOM_SLOT_ROWS, (size_t)m * sizeof(C_T *));
    int64_t chunk = (int64_t)(262144 / sizeof(C_T)) / (k > 0 ? k : 1);
    chunk = chunk < 1 ? 1 : chunk > m ? m : chunk;
    C_T *cols = (C_T *)axiom_scratch(AXIOM_SLOT_COLS, (size_t)(chunk * k) * sizeof(C_T));
    if (!rows || !cols) return -1;
    C_(pixel_rows)(d, target, rows);
    const C_T *dyi = dy + img * m * d->cout;
    for (int64_t g = 0; g < d->groups; ++g) {
        const int64_t *ko = koff + g * k;
        for (int64_t m0 = 0; m0 < m; m0 += chunk) {
            const int64_t mc = m - m0 < chunk ? m - m0 : chunk;
            const C_ASRC A = {dyi + m0 * d->cout + g * d->cout_g, d->cout, 0, NULL, NULL};
            if (C_DRIVER(mc, k, d->cout_g, &A, w + g * d->cout_g, d->cout, 1, (C_T)1, (C_T)0, cols, k, NULL, 1) != 0) {
                return -1;
            }
            for (int64_t r = 0; r < mc; ++r) {
                C_T *base = (C_T *)rows[m0 + r];
                const C_T *src = cols + r * k;
                for (int64_t t = 0; t < d->kh * d->kw; ++t) {
                    C_T *restrict dst = base + ko[t * d->cin_g];
                    const C_T *restrict s = src + t * d->cin_g;
                    for (int64_t c = 0; c < d->cin_g; ++c) dst[c] += s[c];
                }
            }
        }
    }
    if (d->padded) { /* crop */
        C_T *out = dx + img * xsz;
        for (int64_t i = 0; i < d->h; ++i) {
            memcpy(out + i * d->w * cin, target + ((i + d->pt) * d->wp + d->pl) * cin, (size_t)(d->w * cin) * sizeof(C_T));
        }
    }
    return 0;
}

static int C_(conv_backward_input)(const conv_dims *d, const C_T *dy, const C_T *w, C_T *dx) {
    if (d->nx == 0) return 0;
    if (d->ny == 0 || d->k == 0 || d->cout_g == 0) {
        memset(dx, 0, (size_t)d->nx * sizeof(C_T));
        return 0;
    }
    /* stride 1: a forward convolution, unless it would have too few output channels to fill the vector tiles */
    if (d->sh == 1 && d->sw == 1 && (d->cin_g >= 32 || (d->cin_g == 1 && d->cout_g == 1)))
        return C_(backward_input_stride1)(d, dy, w, dx);
    int64_t *koff = (int64_t *)axiom_scratch(AXIOM_SLOT_KOFF, (size_t)(d->groups * d->k) * sizeof(int64_t));
    if (!koff) return -1;
    conv_koff(d, d->padded ? d->wp : d->w, koff);
    const int threads = axiom_threads_for(2.0 * (double)d->ny * (double)d->k);
    if (threads <= 1) {
        for (int64_t img = 0; img < d->n; ++img) {
            if (C_(backward_input_image)(d, dy, w, dx, img, koff) != 0) return -1;
        }
        return 0;
    }
    int failed = 0;
#pragma omp parallel for schedule(dynamic, 1) num_threads(threads)
    for (int64_t img = 0; img < d->n; ++img) {
        if (C_(backward_input_image)(d, dy, w, dx, img, koff) != 0) {
#pragma omp atomic write
            failed = 1;
        }
    }
    return failed ? -1 : 0;
}

/* ---- exported symbols -------------------------------------------------------------------- */

AXIOM_API int C_(axiom_conv2d_nhwc)(const axiom_conv2d_shape *shape, const C_T *x, const C_T *w, const C_T *bias,
                                    C_T *y) {
    conv_dims d;
    const int rc = conv_check(shape, sizeof(C_T), &d);
    if (rc != AXIOM_OK) return rc;
    if ((d.nx > 0 && !x) || (d.nwt > 0 && !w) || (d.ny > 0 && !y)) return AXIOM_ERR_NULL;
    return C_(conv_forward)(&d, x, w, bias, y) ? AXIOM_ERR_NOMEM : AXIOM_OK;
}

AXIOM_API int C_(axiom_conv2d_backward_input_nhwc)(const axiom_conv2d_shape *shape, const C_T *dy, const C_T *w,
                                                   C_T *dx) {
    conv_dims d;
    const int rc = conv_check(shape, sizeof(C_T), &d);
    if (rc != AXIOM_OK) return rc;
    if ((d.ny > 0 && !dy) || (d.nwt > 0 && !w) || (d.nx > 0 && !dx)) return AXIOM_ERR_NULL;
    return C_(conv_backward_input)(&d, dy, w, dx) ? AXIOM_ERR_NOMEM : AXIOM_OK;
}

AXIOM_API int C_(axiom_conv2d_backward_weight_nhwc)(const axiom_conv2d_shape *shape, const C_T *x, const C_T *dy,
                                                    C_T *dw, C_T *dbias) {
    conv_dims d;
    const int rc = conv_check(shape, sizeof(C_T), &d);
    if (rc != AXIOM_OK) return rc;
    if ((d.nx > 0 && !x) || (d.ny > 0 && !dy) || (d.nwt > 0 && !dw)) return AXIOM_ERR_NULL;
    return C_(conv_backward_weight)(&d, x, dy, dw, dbias) ? AXIOM_ERR_NOMEM : AXIOM_OK;
}

#undef C_ASRC
#undef C_DRIVER
