/*
 * axiom_kernels_nn.h - the NN kernels of the axiom ABI (included at the end of axiom_kernels.h).
 *
 * Norms, pooling, softmax, activations, attention and RoPE, forward and the backward kernels
 * training needs most. Implemented in C (csrc/nn_*.c), Rust (rust/src/nn_*.rs) and Zig
 * (zig/nn_*.zig); the conventions of axiom_kernels.h hold:
 *   - arrays are dense, row-major (C order) and contiguous; sizes are int64_t;
 *   - outputs are written, never accumulated into;
 *   - a pointer may be NULL only when its array has zero elements, except the optional
 *     arrays marked "optional" below, where NULL means "absent";
 *   - bad arguments never crash, return a code and write nothing: AXIOM_ERR_SIZE for a
 *     negative or overflowing size, a pooling window, stride or dilation below 1, a negative
 *     padding, or a flag / enum argument out of range (checked first); AXIOM_ERR_NULL for a
 *     NULL pointer to an array with elements (checked next). Kernels that need scratch
 *     memory return AXIOM_ERR_NOMEM (3) when malloc fails;
 *   - IEEE semantics: NaN and Inf propagate like the NumPy reference
 *     (axiom/backends/reference.py) computes them; results agree with it up to rounding;
 *   - images are NHWC, attention tensors (batch, heads, seq, head_dim);
 *   - float32 kernels use SIMD (8 lanes, FMA) and threads above a work threshold (never for
 *     small inputs); float64 kernels may be plain loops. Reductions (sums, means) may use a
 *     different order than the reference, so finite results differ by rounding only.
 *
 * Every kernel exists as _f32 (float) and _f64 (double); only the f32 signatures are spelled
 * out in the comments. See docs/developer/kernel-abi.md ("NN kernels").
 */
#ifndef AXIOM_KERNELS_NN_H
#define AXIOM_KERNELS_NN_H

#include <stdint.h>

#ifdef __cplusplus
extern "C" {
#endif

#ifndef AXIOM_API
#if defined(__GNUC__)
#define AXIOM_API __attribute__((visibility("default")))
#else
#define AXIOM_API
#endif
#endif

/* Activation codes of axiom_activation_*: the order of axiom.backends.base.ACTIVATIONS. */
enum {
    AXIOM_ACT_IDENTITY = 0,
    AXIOM_ACT_RELU = 1,
    AXIOM_ACT_LEAKY_RELU = 2, /* x >= 0 ? x : alpha * x */
    AXIOM_ACT_ELU = 3,        /* x > 0 ? x : alpha * expm1(x) */
    AXIOM_ACT_SELU = 4,
    AXIOM_ACT_GELU = 5, /* 0.5 x (1 + erf(x / sqrt 2)) */
    AXIOM_ACT_GELU_TANH = 6,
    AXIOM_ACT_SIGMOID = 7,
    AXIOM_ACT_TANH = 8,
    AXIOM_ACT_SOFTPLUS = 9, /* max(x, 0) + log1p(exp(-|x|)) */
    AXIOM_ACT_SOFTSIGN = 10,
    AXIOM_ACT_SILU = 11,
    AXIOM_ACT_MISH = 12,
    AXIOM_ACT_HARDSWISH = 13,
    AXIOM_ACT_HARDSIGMOID = 14,
    AXIOM_ACT_RELU6 = 15,
    AXIOM_ACT_COUNT = 16
};

/* ---- normalisation ------------------------------------------------------------------ */

/* y[r, c] = (x[r, c] - mean[c]) / sqrt(var[c] + eps) * gamma[c] + beta[c] for x, y (rows x c):
 * inference batch norm over the last (channel) axis. gamma, beta optional (1 and 0). */
AXIOM_API int axiom_batchnorm_f32(const float *x, const float *mean, const float *var, const float *gamma,
                                  const float *beta, float *y, int64_t rows, int64_t c, double eps);
AXIOM_API int axiom_batchnorm_f64(const double *x, const double *mean, const double *var, const double *gamma,
                                  const double *beta, double *y, int64_t rows, int64_t c, double eps);

/* Each row r of x (rows x n): y = (x - mean) / sqrt(var + eps) * gamma + beta, with the row's
 * mean and biased variance (two passes). gamma, beta (n) optional. */
AXIOM_API int axiom_layernorm_f32(const float *x, const float *gamma, const float *beta, float *y, int64_t rows,
                                  int64_t n, double eps);
AXIOM_API int axiom_layernorm_f64(const double *x, const double *gamma, const double *beta, double *y, int64_t rows,
                                  int64_t n, double eps);

/* Each row of x (rows x n): y = x / sqrt(mean(x^2) + eps) * gamma. gamma (n) optional. */
AXIOM_API int axiom_rmsnorm_f32(const float *x, const float *gamma, float *y, int64_t rows, int64_t n, double eps);
AXIOM_API int axiom_rmsnorm_f64(const double *x, const double *gamma, double *y, int64_t rows, int64_t n,
                                double eps);

/* Gradients of axiom_batchnorm_* with fixed statistics: dx = dy * gamma / sqrt(var + eps),
 * dgamma[c] = sum_r dy * (x - mean) / sqrt(var + eps), dbeta[c] = sum_r dy. gamma optional
 * (1); dgamma and dbeta are optional outputs (NULL: not computed). */
AXIOM_API int axiom_batchnorm_backward_f32(const float *dy, const float *x, const float *mean, const float *var,
                                           const float *gamma, float *dx, float *dgamma, float *dbeta, int64_t rows,
                                           int64_t c, double eps);
AXIOM_API int axiom_batchnorm_backward_f64(const double *dy, const double *x, const double *mean, const double *var,
                                           const double *gamma, double *dx, double *dgamma, double *dbeta,
                                           int64_t rows, int64_t c, double eps);

/* Gradients of axiom_layernorm_*: dx (rows x n); dgamma[j] = sum_r dy * xhat and
 * dbeta[j] = sum_r dy (optional outputs, n each). gamma optional (1). */
AXIOM_API int axiom_layernorm_backward_f32(const float *dy, const float *x, const float *gamma, float *dx,
                                           float *dgamma, float *dbeta, int64_t rows, int64_t n, double eps);
AXIOM_API int axiom_layernorm_backward_f64(const double *dy, const double *x, const double *gamma, double *dx,
                                           double *dgamma, double *dbeta, int64_t rows, int64_t n, double eps);

/* Gradients of axiom_rmsnorm_*: dx (rows x n); dgamma[j] = sum_r dy * x / rms (optional output). */
AXIOM_API int axiom_rmsnorm_backward_f32(const float *dy, const float *x, const float *gamma, float *dx,
                                         float *dgamma, int64_t rows, int64_t n, double eps);
AXIOM_API int axiom_rmsnorm_backward_f64(const double *dy, const double *x, const double *gamma, double *dx,
                                         double *dgamma, int64_t rows, int64_t n, double eps);

/* ---- pooling (NHWC) ----------------------------------------------------------------- */
/* Geometry shared by the 2-D pooling kernels: x is (n, h, w, c); window kh x kw, stride
 * sh x sw, zero-based padding top pt, bottom pb, left pl, right pr (>= 0), dilation dh x dw
 * (max pooling only). The output y is (n, ho, wo, c) with
 *     ho = max(0, floor((h + pt + pb - dh (kh - 1) - 1) / sh) + 1), likewise wo.
 * kh, kw, sh, sw, dh, dw must be >= 1. */

/* Max over each window; padded cells never win (a window of padding only gives -inf); NaN wins. */
AXIOM_API int axiom_max_pool2d_f32(const float *x, float *y, int64_t n, int64_t h, int64_t w, int64_t c,
                                   int64_t kh, int64_t kw, int64_t sh, int64_t sw, int64_t pt, int64_t pb,
                                   int64_t pl, int64_t pr, int64_t dh, int64_t dw);
AXIOM_API int axiom_max_pool2d_f64(const double *x, double *y, int64_t n, int64_t h, int64_t w, int64_t c,
                                   int64_t kh, int64_t kw, int64_t sh, int64_t sw, int64_t pt, int64_t pb,
                                   int64_t pl, int64_t pr, int64_t dh, int64_t dw);

/* Mean over each window: the sum of its input cells divided by kh * kw (count_include_pad =
 * 1) or by the number of input cells in it (0; a window of padding only gives 0/0 = NaN). */
AXIOM_API int axiom_avg_pool2d_f32(const float *x, float *y, int64_t n, int64_t h, int64_t w, int64_t c,
                                   int64_t kh, int64_t kw, int64_t sh, int64_t sw, int64_t pt, int64_t pb,
                                   int64_t pl, int64_t pr, int count_include_pad);
AXIOM_API int axiom_avg_pool2d_f64(const double *x, double *y, int64_t n, int64_t h, int64_t w, int64_t c,
                                   int64_t kh, int64_t kw, int64_t sh, int64_t sw, int64_t pt, int64_t pb,
                                   int64_t pl, int64_t pr, int count_include_pad);

/* y[i, ch] = mean over hw of x[i, :, ch] for x (n, hw, c), y (n, c); hw == 0 gives NaN. */
AXIOM_API int axiom_global_avg_pool_f32(const float *x, float *y, int64_t n, int64_t hw, int64_t c);
AXIOM_API int axiom_global_avg_pool_f64(const double *x, double *y, int64_t n, int64_t hw, int64_t c);

/* dx (n, h, w, c) of max pooling: each dy goes to the first maximum of its window (row-major
 * window order; the last NaN if any, like PyTorch); windows of padding only pass nothing. */
AXIOM_API int axiom_max_pool2d_backward_f32(const float *x, const float *dy, float *dx, int64_t n, int64_t h,
                                            int64_t w, int64_t c, int64_t kh, int64_t kw, int64_t sh, int64_t sw,
                                            int64_t pt, int64_t pb, int64_t pl, int64_t pr, int64_t dh, int64_t dw);
AXIOM_API int axiom_max_pool2d_backward_f64(const double *x, const double *dy, double *dx, int64_t n, int64_t h,
                                            int64_t w, int64_t c, int64_t kh, int64_t kw, int64_t sh, int64_t sw,
                                            int64_t pt, int64_t pb, int64_t pl, int64_t pr, int64_t dh, int64_t dw);

/* dx (n, h, w, c) of average pooling: each dy / count goes to every input cell of its window. */
AXIOM_API int axiom_avg_pool2d_backward_f32(const float *dy, float *dx, int64_t n, int64_t h, int64_t w, int64_t c,
                                            int64_t kh, int64_t kw, int64_t sh, int64_t sw, int64_t pt, int64_t pb,
                                            int64_t pl, int64_t pr, int count_include_pad);
AXIOM_API int axiom_avg_pool2d_backward_f64(const double *dy, double *dx, int64_t n, int64_t h, int64_t w,
                                            int64_t c, int64_t kh, int64_t kw, int64_t sh, int64_t sw, int64_t pt,
                                            int64_t pb, int64_t pl, int64_t pr, int count_include_pad);

/* ---- softmax and activations -------------------------------------------------------- */

/* Softmax (log = 0) or log-softmax (log = 1) of x (outer x n x inner) along the middle axis,
 * numerically stable (the maximum is subtracted first): a row with +inf or NaN, or with
 * every entry -inf, gives NaN like the reference. n == 0 writes nothing. */
AXIOM_API int axiom_softmax_f32(const float *x, float *y, int64_t outer, int64_t n, int64_t inner, int log);
AXIOM_API int axiom_softmax_f64(const double *x, double *y, int64_t outer, int64_t n, int64_t inner, int log);

/* Gradient of axiom_softmax_* from its output y: dx = y (dy - sum(dy y)) for softmax,
 * dx = dy - exp(y) sum(dy) for log-softmax, sums along the middle axis. */
AXIOM_API int axiom_softmax_backward_f32(const float *y, const float *dy, float *dx, int64_t outer, int64_t n,
                                         int64_t inner, int log);
AXIOM_API int axiom_softmax_backward_f64(const double *y, const double *dy, double *dx, int64_t outer, int64_t n,
                                         int64_t inner, int log);

/* y = act(x) element-wise for n elements; act is an AXIOM_ACT_* code, alpha the slope of
 * leaky_relu and the scale of elu. y may be x (in place). */
AXIOM_API int axiom_activation_f32(const float *x, float *y, int64_t n, int act, double alpha);
AXIOM_API int axiom_activation_f64(const double *x, double *y, int64_t n, int act, double alpha);

/* Gradient of axiom_activation_*: dx = dy * act'(x) for n elements, with PyTorch's choices at
 * the kinks like the reference (axiom/backends/reference_grad.py): relu'(0) = 0, leaky_relu,
 * elu and selu switch at x > 0, hardswish' = x / 3 + 1/2 on [-3, 3], hardsigmoid' = 1/6 on
 * (-3, 3), relu6' = 1 on (0, 6). NaN x gives what those comparisons give (relu'(NaN) = 0,
 * leaky_relu'(NaN) = alpha, hardswish'(NaN) = 1; NaN for the smooth activations); +-inf
 * gives NaN for gelu, gelu_tanh, silu and mish (inf * 0, like the reference). dx may be dy or
 * x (in place); partial overlaps are not allowed. */
AXIOM_API int axiom_activation_backward_f32(const float *dy, const float *x, float *dx, int64_t n, int act,
                                            double alpha);
AXIOM_API int axiom_activation_backward_f64(const double *dy, const double *x, double *dx, int64_t n, int act,
                                            double alpha);

/* ---- attention and RoPE ------------------------------------------------------------- */

/* out = softmax(q k^T * scale + mask) v for q (batch, heads, lq, d), k (batch, heads, lk, d),
 * v (batch, heads, lk, dv), out (batch, heads, lq, dv): flash attention (online softmax over
 * key blocks), memory independent of lq * lk.
 * mask (optional) is additive; element [b, h, i, j] is
 *     mask[b * mask_sb + h * mask_sh + i * mask_sq + j * mask_sk]
 * (strides in elements, >= 0; 0 broadcasts that axis). causal = 1 hides key j from query i
 * when j > i + lk - lq (aligned at the end, like PyTorch when lq == lk). A query whose keys
 * are all hidden or -inf gets NaN, like the reference. lk == 0 gives NaN rows. */
AXIOM_API int axiom_attention_f32(const float *q, const float *k, const float *v, const float *mask, float *out,
                                  int64_t batch, int64_t heads, int64_t lq, int64_t lk, int64_t d, int64_t dv,
                                  double scale, int causal, int64_t mask_sb, int64_t mask_sh, int64_t mask_sq,
                                  int64_t mask_sk);
AXIOM_API int axiom_attention_f64(const double *q, const double *k, const double *v, const double *mask,
                                  double *out, int64_t batch, int64_t heads, int64_t lq, int64_t lk, int64_t d,
                                  int64_t dv, double scale, int causal, int64_t mask_sb, int64_t mask_sh,
                                  int64_t mask_sq, int64_t mask_sk);

/* Gradients of axiom_attention_* for gout = d out (batch, heads, lq, dv): gq (batch, heads, lq, d),
 * gk (batch, heads, lk, d), gv (batch, heads, lk, dv); the other arguments as for the forward
 * (the mask is a constant). Flash-attention style: the probabilities are recomputed block by
 * block from q and k with each row's maximum and sum, so memory is independent of lq * lk
 * (scratch O(64 (d + dv + 128) + lq) per head). Like the reference, a query that sees no key
 * (or whose scores hold +inf / NaN) has NaN probabilities: its gq row is NaN, and so are gk and
 * gv of its whole head; lk == 0 gives NaN gq. NaN / Inf in q, k, v or gout propagate, but not
 * necessarily to the same elements as in the reference (causal blocks above the diagonal are
 * skipped). */
AXIOM_API int axiom_attention_backward_f32(const float *gout, const float *q, const float *k, const float *v,
                                           const float *mask, float *gq, float *gk, float *gv, int64_t batch,
                                           int64_t heads, int64_t lq, int64_t lk, int64_t d, int64_t dv,
                                           double scale, int causal, int64_t mask_sb, int64_t mask_sh,
                                           int64_t mask_sq, int64_t mask_sk);
AXIOM_API int axiom_attention_backward_f64(const double *gout, const double *q, const double *k, const double *v,
                                           const double *mask, double *gq, double *gk, double *gv, int64_t batch,
                                           int64_t heads, int64_t lq, int64_t lk, int64_t d, int64_t dv,
                                           double scale, int causal, int64_t mask_sb, int64_t mask_sh,
                                           int64_t mask_sq, int64_t mask_sk);

/* Rotary position embedding, rotate-half convention, on x (outer, seq, d): with half = d / 2,
 * angle[s, i] = positions[s] * base ** (-2 i / d) (computed in double),
 * y[.., :half] = x1 cos - x2 sin, y[.., half:2 half] = x2 cos + x1 sin, an odd last element is
 * copied. positions (seq) is float64 for both variants. y may be x (in place). */
AXIOM_API int axiom_rope_f32(const float *x, const double *positions, float *y, int64_t outer, int64_t seq,
                             int64_t d, double base);
AXIOM_API int axiom_rope_f64(const double *x, const double *positions, double *y, int64_t outer, int64_t seq,
                             int64_t d, double base);

#ifdef __cplusplus
}
#endif

#endif /* AXIOM_KERNELS_NN_H */
