/*
 * nn_act_backward.c - gradients of the element-wise activations (axiom_activation_backward_f32/_f64):
 * dx = dy * act'(x).
 *
 * The kinks follow the reference (axiom/backends/reference_grad.py, PyTorch's choices):
 * relu'(0) = 0, leaky_relu uses x > 0, elu / selu use x > 0, hardswish' is 0 up to -3,
 * x / 3 + 1/2 on (-3, 3) and 1 from 3 on (PyTorch 2.13), hardsigmoid' is 1/6 on (-3, 3), relu6' is 1 on (0, 6).
 * NaN inputs give what the reference's comparisons give (relu'(NaN) = 0, leaky_relu'(NaN) =
 * alpha, hardswish'(NaN) = 1, NaN for the smooth ones), and +-inf gives NaN where the
 * reference computes inf * 0 (gelu, gelu_tanh, silu, mish).
 *
 * The smooth derivatives are written without cancellation, from e = exp(-|.|) <= 1 (so
 * nothing overflows): sigmoid' = e / (1 + e)^2, tanh' = 4 e' / (1 + e')^2 with e' = exp(-2|x|)
 * (both from expm1, exact near their maximum at 0),
 * silu' = s (1 + x (1 - s)) with 1 - s = sigmoid(-x) computed directly, and mish' and
 * gelu_tanh' from the same e (see below). Products are ordered so that the reference's
 * overflows (x^2 = inf for gelu_tanh at |x| > ~5e19 in float32) give the same NaN.
 */
#include <math.h>

#include "nn_common.h"
#include "nn_simd.h"

#define SELU_ALPHA 1.6732632423543772
#define SELU_SCALE 1.0507009873554805
#define TWO_SQRT_2_OVER_PI 1.5957691216057308 /* 2 sqrt(2 / pi) */
#define GELU_K 0.044715
#define INV_SQRT_2PI 0.3989422804014327 /* 1 / sqrt(2 pi) */
#define SQRT_HALF 0.7071067811865476

/* OpenMP threshold: the piecewise-linear derivatives are memory-bound, the others do math */
static int dact_cheap(int act) {
    return act <= AXIOM_ACT_LEAKY_RELU || act == AXIOM_ACT_SOFTSIGN || act >= AXIOM_ACT_HARDSWISH;
}

static int dact_check(const void *dy, const void *x, const void *dx, int64_t n, int act, size_t elem,
                      int64_t *count) {
    if (!NN_NUMEL(count, elem, n)) {
        return AXIOM_ERR_SIZE;
    }
    if (act < 0 || act >= AXIOM_ACT_COUNT) {
        return AXIOM_ERR_SIZE;
    }
    if (*count > 0 && (dy == NULL || x == NULL || dx == NULL)) {
        return AXIOM_ERR_NULL;
    }
    return AXIOM_OK;
}

/* ---- float32, vectorised ---------------------------------------------------------------- */

/* e^x and e^x - 1 for x <= 0 (or NaN) from one range reduction: *m keeps the last bits near
 * x = 0 that 1 + e^x loses, e^x keeps the tail (down to ~2**-126) that e^x - 1 = -1 loses.
 * Like nn_exp_neg, e^x is exactly 0 below about -87.5 (so act'(+-inf) is exactly 0). */
static inline nn_vf exp_expm1_neg(nn_vf x, nn_vf *m) {
    x = nn_clamp(x, -88.0f, 0.0f);
    nn_vi n;
    const nn_vf r = nn_exp_reduce(x, &n);
    const nn_vf q = nn_expm1_red(r);
    const nn_vf s = (nn_vf)((n + 127) << 23); /* 2**n, n in [-127, 0]; n = -127 gives 0 */
    *m = (s - 1.0f) + s * q;
    return s + s * q;
}

static inline nn_vf dact_f32(nn_vf x, int act, float alpha) {
    const nn_vf one = nn_set1(1.0f), zero = nn_set1(0.0f);
    switch (act) {
    case AXIOM_ACT_IDENTITY:
        return one;
    case AXIOM_ACT_RELU:
        return nn_sel(x > 0.0f, one, zero);
    case AXIOM_ACT_LEAKY_RELU:
        return nn_sel(x > 0.0f, one, nn_set1(alpha));
    case AXIOM_ACT_ELU: /* alpha exp(min(x, 0)): NaN stays NaN */
        return nn_sel(x > 0.0f, one, alpha * nn_exp_neg(nn_min_nan(x, zero)));
    case AXIOM_ACT_SELU:
        return (float)SELU_SCALE * nn_sel(x > 0.0f, one, (float)SELU_ALPHA * nn_exp_neg(nn_min_nan(x, zero)));
    case AXIOM_ACT_GELU: { /* Phi(x) + x phi(x) */
        const nn_vf pdf = nn_exp_neg(-0.5f * (x * x)) * (float)INV_SQRT_2PI;
        return 0.5f * nn_one_plus_erf(x * (float)SQRT_HALF) + x * pdf;
    }
    case AXIOM_ACT_GELU_TANH: {
        /* x s(w), w = 2c (x + k x^3): s + 2c x s (1 - s) (1 + 3k x^2), s (1 - s) = e / (1 + e)^2 */
        const nn_vf w = (float)TWO_SQRT_2_OVER_PI * (x + (float)GELU_K * (x * x * x));
        const nn_vf e = nn_exp_neg(-nn_abs(w));
        const nn_vf r = one / (one + e);
        const nn_vf s = nn_sel(w >= 0.0f, r, e * r);
        return s + ((float)TWO_SQRT_2_OVER_PI * x * (e * r * r)) * (1.0f + (float)(3 * GELU_K) * x * x);
    }
    case AXIOM_ACT_SIGMOID:
    case AXIOM_ACT_TANH: {
        /* sigmoid' = e / (1 + e)^2 with e = exp(-|x|), tanh' = 4 e / (1 + e)^2 with e = exp(-2|x|);
         * 1 + e as 2 + expm1(.), so values near the maximum at x = 0 keep their last bits */
        const int t = act == AXIOM_ACT_TANH;
        nn_vf m;
        const nn_vf e = exp_expm1_neg(t ? -2.0f * nn_abs(x) : -nn_abs(x), &m);
        const nn_vf den = nn_sel(m > -0.25f, m + 2.0f, e + 1.0f); /* 1 + e, whichever is exact */
        return (t ? 4.0f * e : e) / (den * den);
    }
    case AXIOM_ACT_SOFTPLUS:
        return nn_sigmoid(x);
    case AXIOM_ACT_SOFTSIGN: { /* 1 / (1 + |x|)^2, the square as 1 + a (2 + a): one rounding near 1 */
        const nn_vf a = nn_abs(x);
        return one / (one + a * (2.0f + a));
    }
    case AXIOM_ACT_SILU: { /* s (1 + x (1 - s)) */
        const nn_vf e = nn_exp_neg(-nn_abs(x));
        const nn_vf r = one / (one + e);
        const nn_vi pos = x >= 0.0f;
        return nn_sel(pos, r, e * r) * (one + x * nn_sel(pos, e * r, r));
    }
    case AXIOM_ACT_MISH: {
        /* t = tanh(softplus(x)), d = t + x sigmoid(x) (1 - t^2). With e = exp(-|x|):
         *   x >= 0: t = (1 + 2e) / D, D = 1 + 2e (1 + e), x sigmoid (1 - t^2) = 4 x e^2 (1 + e) / D^2;
         *   x < 0:  t = N / D, N = e (e + 2), D = N + 2,  x sigmoid (1 - t^2) = 4 x e (1 + e) / D^2. */
        const nn_vf e = nn_exp_neg(-nn_abs(x));
        const nn_vi pos = x >= 0.0f;
        const nn_vf n_neg = e * (e + 2.0f);
        const nn_vf num = nn_sel(pos, one + 2.0f * e, n_neg);
        const nn_vf den = nn_sel(pos, one + 2.0f * e * (one + e), n_neg + 2.0f);
        const nn_vf extra = (4.0f * x) * e * (one + e) * nn_sel(pos, e, one);
        const nn_vf rd = one / den;
        return num * rd + extra * (rd * rd);
    }
    case AXIOM_ACT_HARDSWISH: /* NaN fails both comparisons: 1, like the reference */
        return nn_sel(x <= -3.0f, zero, nn_sel(x < 3.0f, x / 3.0f + 0.5f, one));
    case AXIOM_ACT_HARDSIGMOID:
        return nn_sel((x > -3.0f) & (x < 3.0f), nn_set1((float)(1.0 / 6.0)), zero);
    default: /* AXIOM_ACT_RELU6 */
        return nn_sel((x > 0.0f) & (x < 6.0f), one, zero);
    }
}

#define DACT_BLOCK 4096 /* elements per parallel chunk (a multiple of NN_VL) */

/* one chunk; `act` is a compile-time constant after inlining into the switch below */
static inline __attribute__((always_inline)) void dact_chunk_f32(const float *dy, const float *x, float *dx,
                                                                   int64_t n, int act, float alpha) {
    int64_t i = 0;
    for (; i + NN_VL <= n; i += NN_VL) {
        nn_store(dx + i, nn_load(dy + i) * dact_f32(nn_load(x + i), act, alpha));
    }
    if (i < n) {
        const nn_vf d = dact_f32(nn_load_part(x + i, n - i, 0.0f), act, alpha);
        nn_store_part(dx + i, nn_load_part(dy + i, n - i, 0.0f) * d, n - i);
    }
}

static void dact_run_f32(const float *dy, const float *x, float *dx, int64_t n, int act, float alpha) {
    const int64_t nblocks = (n + DACT_BLOCK - 1) / DACT_BLOCK;
    const int par = nblocks > 1 && n >= (dact_cheap(act) ? NN_PAR_ELEMS : NN_PAR_ELEMS_MATH);
#define DACT_CASE(CODE)                                                                                  \
    case CODE: {                                                                                         \
        _Pragma("omp parallel for schedule(static) if (par)") for (int64_t b = 0; b < nblocks; ++b) {    \
            const int64_t i0 = b * DACT_BLOCK, len = n - i0 < DACT_BLOCK ? n - i0 : DACT_BLOCK;          \
            dact_chunk_f32(dy + i0, x + i0, dx + i0, len, CODE, alpha);                                  \
        }                                                                                                \
        break;                                                                                           \
    }
    switch (act) {
        DACT_CASE(AXIOM_ACT_IDENTITY)
        DACT_CASE(AXIOM_ACT_RELU)
        DACT_CASE(AXIOM_ACT_LEAKY_RELU)
        DACT_CASE(AXIOM_ACT_ELU)
        DACT_CASE(AXIOM_ACT_SELU)
        DACT_CASE(AXIOM_ACT_GELU)
        DACT_CASE(AXIOM_ACT_GELU_TANH)
        DACT_CASE(AXIOM_ACT_SIGMOID)
        DACT_CASE(AXIOM_ACT_TANH)
        DACT_CASE(AXIOM_ACT_SOFTPLUS)
        DACT_CASE(AXIOM_ACT_SOFTSIGN)
        DACT_CASE(AXIOM_ACT_SILU)
        DACT_CASE(AXIOM_ACT_MISH)
        DACT_CASE(AXIOM_ACT_HARDSWISH)
        DACT_CASE(AXIOM_ACT_HARDSIGMOID)
        DACT_CASE(AXIOM_ACT_RELU6)
    default:
        break;
    }
#undef DACT_CASE
}

AXIOM_API int axiom_activation_backward_f32(const float *dy, const float *x, float *dx, int64_t n, int act,
                                            double alpha) {
    int64_t count;
    const int code = dact_check(dy, x, dx, n, act, sizeof(float), &count);
    if (code != AXIOM_OK) {
        return code;
    }
    dact_run_f32(dy, x, dx, count, act, (float)alpha);
    return AXIOM_OK;
}

/* ---- float64, scalar libm (the same formulas) -------------------------------------------- */

static inline double dact_f64(double x, int act, double alpha) {
    switch (act) {
    case AXIOM_ACT_IDENTITY:
        return 1.0;
    case AXIOM_ACT_RELU:
        return x > 0 ? 1.0 : 0.0;
    case AXIOM_ACT_LEAKY_RELU:
        return x > 0 ? 1.0 : alpha;
    case AXIOM_ACT_ELU:
        return x > 0 ? 1.0 : alpha * exp(x < 0 || x != x ? x : 0.0);
    case AXIOM_ACT_SELU:
        return SELU_SCALE * (x > 0 ? 1.0 : SELU_ALPHA * exp(x < 0 || x != x ? x : 0.0));
    case AXIOM_ACT_GELU: /* 1 + erf(x / sqrt 2) = erfc(-x / sqrt 2): no cancellation for x < 0 */
        return 0.5 * erfc(-x * SQRT_HALF) + x * (exp(-0.5 * (x * x)) * INV_SQRT_2PI);
    case AXIOM_ACT_GELU_TANH: {
        const double w = TWO_SQRT_2_OVER_PI * (x + GELU_K * (x * x * x));
        const double e = exp(-fabs(w)), r = 1.0 / (1.0 + e);
        const double s = w >= 0 ? r : e * r;
        return s + (TWO_SQRT_2_OVER_PI * x * (e * r * r)) * (1.0 + 3 * GELU_K * x * x);
    }
    case AXIOM_ACT_SIGMOID: {
        const double den = expm1(-fabs(x)) + 2.0;
        return exp(-fabs(x)) / (den * den);
    }
    case AXIOM_ACT_TANH: {
        const double den = expm1(-2.0 * fabs(x)) + 2.0;
        return 4.0 * exp(-2.0 * fabs(x)) / (den * den);
    }
    case AXIOM_ACT_SOFTPLUS: {
        const double e = exp(-fabs(x));
        return (x >= 0 ? 1.0 : e) / (1.0 + e);
    }
    case AXIOM_ACT_SOFTSIGN: {
        const double a = fabs(x);
        return 1.0 / (1.0 + a * (2.0 + a));
    }
    case AXIOM_ACT_SILU: {
        const double e = exp(-fabs(x)), r = 1.0 / (1.0 + e);
        const int pos = x >= 0;
        return (pos ? r : e * r) * (1.0 + x * (pos ? e * r : r));
    }
    case AXIOM_ACT_MISH: {
        const double e = exp(-fabs(x));
        const int pos = x >= 0;
        const double n_neg = e * (e + 2.0);
        const double num = pos ? 1.0 + 2.0 * e : n_neg;
        const double den = pos ? 1.0 + 2.0 * e * (1.0 + e) : n_neg + 2.0;
        const double extra = (4.0 * x) * e * (1.0 + e) * (pos ? e : 1.0);
        return num / den + extra / (den * den);
    }
    case AXIOM_ACT_HARDSWISH:
        return x <= -3.0 ? 0.0 : (x < 3.0 ? x / 3.0 + 0.5 : 1.0);
    case AXIOM_ACT_HARDSIGMOID:
        return x > -3.0 && x < 3.0 ? 1.0 / 6.0 : 0.0;
    default: /* AXIOM_ACT_RELU6 */
        return x > 0.0 && x < 6.0 ? 1.0 : 0.0;
    }
}

AXIOM_API int axiom_activation_backward_f64(const double *dy, const double *x, double *dx, int64_t n, int act,
                                            double alpha) {
    int64_t count;
    const int code = dact_check(dy, x, dx, n, act, sizeof(double), &count);
    if (code != AXIOM_OK) {
        return code;
    }
    const int par = count >= (dact_cheap(act) ? NN_PAR_ELEMS : NN_PAR_ELEMS_MATH);
#pragma omp parallel for schedule(static) if (par)
    for (int64_t i = 0; i < count; ++i) {
        dx[i] = dy[i] * dact_f64(x[i], act, alpha);
    }
    return AXIOM_OK;
}
