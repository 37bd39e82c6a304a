/*
 * conv.c - NHWC 2-D convolution (float32 / float64): forward, input gradient, weight gradient.
 *
 * Exported (csrc/axiom_kernels.h): axiom_conv2d_nhwc_*, axiom_conv2d_backward_input_nhwc_*,
 * axiom_conv2d_backward_weight_nhwc_*. Paths, picked per shape:
 *
 *   - 1x1, stride 1, no padding: one GEMM (N*H*W x C_in/g) @ (C_in/g x C_out/g) per group;
 *   - depthwise (C_in/g == C_out/g == 1): a direct loop vectorised over channels;
 *   - otherwise an implicit-im2col GEMM (gemm.h, "gather" A operand): the image (zero padded
 *     into a per-thread buffer when there is padding) is read in place through a row table
 *     (one pointer per output pixel) and an offset table (one offset per (kh, kw, c) tap),
 *     multiplied by the weights (kH*kW*C_in/g x C_out/g, rows of the weight array) packed as
 *     GEMM B panels; the bias is added in the GEMM epilogue.
 *
 * Backward: the weight gradient is the same gather GEMM with the roles swapped (rows = taps,
 * reduction over output pixels); the input gradient is, for stride 1 and C_in/g >= 16 (or
 * depthwise), a forward convolution of dy with the flipped, transposed weights, and otherwise
 * dy @ W^T per image followed by a col2im scatter-add (narrow groups would waste the vector
 * width as output channels of the transposed convolution). OpenMP splits images across threads when the work is large
 * (axiom_threads_for); below the threshold everything runs on the calling thread.
 */
#include <stdlib.h>
#include <string.h>
#ifdef _OPENMP
#include <omp.h>
#endif

#include "axiom_kernels.h"
#include "common.h"
#include "gemm.h"

/* Validated dimensions of one convolution (pads may be negative for internal calls). */
typedef struct {
    int64_t n, h, w, cin, cout, kh, kw, ho, wo, sh, sw, pt, pb, pl, pr, dh, dw, groups;
    int64_t cin_g, cout_g, k;  /* k = kh * kw * cin_g: the GEMM reduction length */
    int64_t hp, wp;            /* padded image size */
    int64_t nx, nwt, ny;       /* element counts of x, w, y */
    int padded;                /* any pad != 0 */
} conv_dims;

/* a * b * ... with overflow check of the byte size (elem bytes); 0 on overflow. */
static int mul_ok(int64_t *out, size_t elem, int count, const int64_t *f) {
    int64_t v = 1, bytes;
    for (int i = 0; i < count; ++i) {
        if (f[i] < 0 || __builtin_mul_overflow(v, f[i], &v)) return 0;
    }
    if (__builtin_mul_overflow(v, (int64_t)elem, &bytes)) return 0;
    *out = v;
    return 1;
}

/* Output extent of one axis, or -1 on overflow. */
static int64_t out_extent(int64_t in, int64_t p0, int64_t p1, int64_t k, int64_t d, int64_t s) {
    int64_t span, ext;
    if (__builtin_add_overflow(in, p0, &span) || __builtin_add_overflow(span, p1, &span)) return -1;
    if (__builtin_mul_overflow(d, k - 1, &ext) || __builtin_add_overflow(ext, 1, &ext)) return -1;
    return span < ext ? 0 : (span - ext) / s + 1;
}

/* Check a public shape: AXIOM_OK (fills *d), AXIOM_ERR_SIZE or AXIOM_ERR_NULL (shape NULL). */
static int conv_check(const axiom_conv2d_shape *s, size_t elem, conv_dims *d) {
    if (s == NULL) return AXIOM_ERR_NULL;
    if (s->n < 0 || s->h < 0 || s->w < 0 || s->c_in < 0 || s->c_out < 0 || s->k_h < 1 || s->k_w < 1 ||
        s->stride_h < 1 || s->stride_w < 1 || s->dilation_h < 1 || s->dilation_w < 1 || s->pad_top < 0 ||
        s->pad_bottom < 0 || s->pad_left < 0 || s->pad_right < 0 || s->groups < 1 || s->c_in % s->groups != 0 ||
        s->c_out % s->groups != 0 || s->out_h < 0 || s->out_w < 0) {
        return AXIOM_ERR_SIZE;
    }
    d->n = s->n, d->h = s->h, d->w = s->w, d->cin = s->c_in, d->cout = s->c_out;
    d->kh = s->k_h, d->kw = s->k_w, d->ho = s->out_h, d->wo = s->out_w;
    d->sh = s->stride_h, d->sw = s->stride_w, d->dh = s->dilation_h, d->dw = s->dilation_w;
    d->pt = s->pad_top, d->pb = s->pad_bottom, d->pl = s->pad_left, d->pr = s->pad_right;
    d->groups = s->groups;
    d->cin_g = d->cin / d->groups, d->cout_g = d->cout / d->groups;
    if (out_extent(d->h, d->pt, d->pb, d->kh, d->dh, d->sh) != d->ho ||
        out_extent(d->w, d->pl, d->pr, d->kw, d->dw, d->sw) != d->wo) {
        return AXIOM_ERR_SIZE;
    }
    d->hp = d->h + d->pt + d->pb, d->wp = d->w + d->pl + d->pr;
    d->padded = d->pt || d->pb || d->pl || d->pr;
    int64_t tmp;
    const int64_t fx[4] = {d->n, d->h, d->w, d->cin}, fw[4] = {d->kh, d->kw, d->cin_g, d->cout};
    const int64_t fy[4] = {d->n, d->ho, d->wo, d->cout}, fk[3] = {d->kh, d->kw, d->cin};
    const int64_t fp[3] = {d->hp, d->wp, d->cin}, fc[2] = {d->ho, d->wo};
    if (!mul_ok(&d->nx, elem, 4, fx) || !mul_ok(&d->nwt, elem, 4, fw) || !mul_ok(&d->ny, elem, 4, fy) ||
        !mul_ok(&tmp, sizeof(int64_t), 3, fk) || !mul_ok(&tmp, elem, 3, fp) || !mul_ok(&tmp, sizeof(void *), 2, fc)) {
        return AXIOM_ERR_SIZE;
    }
    d->k = d->kh * d->kw * d->cin_g;
    return AXIOM_OK;
}

/* Offsets of the kh * kw * cin taps (all groups: entry g * k + (i * kw + j) * cin_g + c) in an
 * image of row length wp and pixel stride cin. */
static void conv_koff(const conv_dims *d, int64_t wp, int64_t *koff) {
    for (int64_t g = 0; g < d->groups; ++g) {
        int64_t *t = koff + g * d->k;
        for (int64_t i = 0; i < d->kh; ++i) {
            for (int64_t j = 0; j < d->kw; ++j) {
                const int64_t base = (i * d->dh * wp + j * d->dw) * d->cin + g * d->cin_g;
                for (int64_t c = 0; c < d->cin_g; ++c) *t++ = base + c;
            }
        }
    }
}

#define C_T float
#define C_(name) name##_f32
#include "conv_impl.h"
#undef C_T
#undef C_

#define C_T double
#define C_(name) name##_f64
#include "conv_impl.h"
#undef C_T
#undef C_
