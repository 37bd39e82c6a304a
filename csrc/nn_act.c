/*
 * nn_act.c - element-wise activations (axiom_activation_f32/_f64).
 *
 * Each activation is the reference's formula (axiom/backends/reference.py) evaluated in the
 * input precision, so NaN/Inf behave alike: e.g. gelu(-inf) = -inf * 0 = NaN,
 * leaky_relu(-inf) with alpha 0 is NaN, clip-style ops keep NaN.
 */
#include <math.h>

#include "nn_common.h"
#include "nn_simd.h"

#define SELU_ALPHA 1.6732632423543772
#define SELU_SCALE 1.0507009873554805
#define SQRT_2_OVER_PI 0.7978845608028654 /* sqrt(2 / pi) */
#define SQRT_HALF 0.7071067811865476

/* ---- float32, vectorised ---------------------------------------------------------------- */

static inline nn_vf act_f32(nn_vf x, int act, float alpha) {
    const nn_vf zero = nn_set1(0.0f);
    switch (act) {
    case AXIOM_ACT_IDENTITY:
        return x;
    case AXIOM_ACT_RELU:
        return nn_max_nan(x, zero);
    case AXIOM_ACT_LEAKY_RELU:
        return nn_sel(x >= 0.0f, x, x * alpha);
    case AXIOM_ACT_ELU:
        return nn_sel(x > 0.0f, x, alpha * nn_expm1_neg(nn_min_nan(x, zero)));
    case AXIOM_ACT_SELU:
        return (float)SELU_SCALE * nn_sel(x > 0.0f, x, (float)SELU_ALPHA * nn_expm1_neg(nn_min_nan(x, zero)));
    case AXIOM_ACT_GELU: /* 0.5 x (1 + erf(x / sqrt 2)), 1 + erf without cancellation */
        return 0.5f * x * nn_one_plus_erf(x * (float)SQRT_HALF);
    case AXIOM_ACT_GELU_TANH: /* 0.5 x (1 + tanh(u)) = x sigmoid(2 u), no cancellation */
        return x * nn_sigmoid((float)(2 * SQRT_2_OVER_PI) * (x + 0.044715f * (x * x * x)));
    case AXIOM_ACT_SIGMOID:
        return nn_sigmoid(x);
    case AXIOM_ACT_TANH:
        return nn_tanh(x);
    case AXIOM_ACT_SOFTPLUS:
        return nn_softplus(x);
    case AXIOM_ACT_SOFTSIGN:
        return x / (1.0f + nn_abs(x));
    case AXIOM_ACT_SILU:
        return x * nn_sigmoid(x);
    case AXIOM_ACT_MISH:
        return x * nn_tanh(nn_softplus(x));
    case AXIOM_ACT_HARDSWISH:
        return x * nn_clamp(x + 3.0f, 0.0f, 6.0f) / 6.0f;
    case AXIOM_ACT_HARDSIGMOID:
        return nn_clamp(x + 3.0f, 0.0f, 6.0f) / 6.0f;
    default: /* AXIOM_ACT_RELU6 */
        return nn_clamp(x, 0.0f, 6.0f);
    }
}

#define ACT_BLOCK 4096 /* elements per parallel chunk (a multiple of NN_VL) */

/* one chunk; `act` and `stream` are compile-time constants after inlining into the switch below */
static inline __attribute__((always_inline)) void act_chunk_f32(const float *x, float *y, int64_t n, int act,
                                                                  float alpha, int stream) {
    int64_t i = 0;
    if (stream) { /* y is 32-byte aligned: non-temporal stores for a huge output */
        for (; i + NN_VL <= n; i += NN_VL) {
            nn_stream(y + i, act_f32(nn_load(x + i), act, alpha));
        }
        nn_sfence();
    }
    for (; i + NN_VL <= n; i += NN_VL) {
        nn_store(y + i, act_f32(nn_load(x + i), act, alpha));
    }
    if (i < n) {
        nn_store_part(y + i, act_f32(nn_load_part(x + i, n - i, 0.0f), act, alpha), n - i);
    }
}

static void act_run_f32(const float *x, float *y, int64_t n, int act, float alpha) {
    const int64_t nblocks = (n + ACT_BLOCK - 1) / ACT_BLOCK;
    const int cheap = act <= AXIOM_ACT_LEAKY_RELU || act == AXIOM_ACT_SOFTSIGN || act >= AXIOM_ACT_HARDSWISH;
    const int par = nblocks > 1 && n >= (cheap ? NN_PAR_ELEMS : NN_PAR_ELEMS_MATH);
    const int stream = n * (int64_t)sizeof(float) >= NN_STREAM_BYTES && nn_aligned32(y);
    if (!stream && n * (int64_t)sizeof(float) >= NN_STREAM_BYTES && ((uintptr_t)y & 3) == 0) {
        /* align y to 32 bytes with a few ordinary stores, then stream the rest */
        const int64_t k = (int64_t)((32 - ((uintptr_t)y & 31)) & 31) / (int64_t)sizeof(float);
        act_run_f32(x, y, k, act, alpha);
        act_run_f32(x + k, y + k, n - k, act, alpha);
        return;
    }
#define ACT_CASE(CODE)                                                                                   \
    case CODE: {                                                                                         \
        _Pragma("omp parallel for schedule(static) if (par)") for (int64_t b = 0; b < nblocks; ++b) {    \
            const int64_t i0 = b * ACT_BLOCK, len = n - i0 < ACT_BLOCK ? n - i0 : ACT_BLOCK;             \
            if (stream) {                                                                                \
                act_chunk_f32(x + i0, y + i0, len, CODE, alpha, 1);                                      \
            } else {                                                                                     \
                act_chunk_f32(x + i0, y + i0, len, CODE, alpha, 0);                                      \
            }                                                                                            \
        }                                                                                                \
        break;                                                                                           \
    }
    switch (act) {
        ACT_CASE(AXIOM_ACT_IDENTITY)
        ACT_CASE(AXIOM_ACT_RELU)
        ACT_CASE(AXIOM_ACT_LEAKY_RELU)
        ACT_CASE(AXIOM_ACT_ELU)
        ACT_CASE(AXIOM_ACT_SELU)
        ACT_CASE(AXIOM_ACT_GELU)
        ACT_CASE(AXIOM_ACT_GELU_TANH)
        ACT_CASE(AXIOM_ACT_SIGMOID)
        ACT_CASE(AXIOM_ACT_TANH)
        ACT_CASE(AXIOM_ACT_SOFTPLUS)
        ACT_CASE(AXIOM_ACT_SOFTSIGN)
        ACT_CASE(AXIOM_ACT_SILU)
        ACT_CASE(AXIOM_ACT_MISH)
        ACT_CASE(AXIOM_ACT_HARDSWISH)
        ACT_CASE(AXIOM_ACT_HARDSIGMOID)
        ACT_CASE(AXIOM_ACT_RELU6)
    default:
        break;
    }
#undef ACT_CASE
}

AXIOM_API int axiom_activation_f32(const float *x, float *y, int64_t n, int act, double alpha) {
    int64_t count;
    if (!NN_NUMEL(&count, sizeof(float), n)) {
        return AXIOM_ERR_SIZE;
    }
    if (act < 0 || act >= AXIOM_ACT_COUNT) {
        return AXIOM_ERR_SIZE;
    }
    if (count > 0 && (x == NULL || y == NULL)) {
        return AXIOM_ERR_NULL;
    }
    if (x != y || act != AXIOM_ACT_IDENTITY) {
        act_run_f32(x, y, count, act, (float)alpha);
    }
    return AXIOM_OK;
}

/* ---- float64, scalar libm --------------------------------------------------------------- */

static inline double clip_f64(double v, double lo, double hi) {
    v = v < lo ? lo : v;
    return v > hi ? hi : v;
}

static inline double sigmoid_f64(double v) {
    const double e = exp(-fabs(v));
    return v >= 0 ? 1.0 / (1.0 + e) : e / (1.0 + e);
}

static inline double softplus_f64(double v) { return (v > 0 ? v : 0.0) + log1p(exp(-fabs(v))); }

static inline double act_f64(double v, int act, double alpha) {
    switch (act) {
    case AXIOM_ACT_IDENTITY:
        return v;
    case AXIOM_ACT_RELU:
        return (v > 0 || v != v) ? v : 0.0;
    case AXIOM_ACT_LEAKY_RELU:
        return v >= 0 ? v : v * alpha;
    case AXIOM_ACT_ELU:
        return v > 0 ? v : alpha * expm1(v < 0 || v != v ? v : 0.0);
    case AXIOM_ACT_SELU:
        return SELU_SCALE * (v > 0 ? v : SELU_ALPHA * expm1(v < 0 || v != v ? v : 0.0));
    case AXIOM_ACT_GELU:
        return 0.5 * v * (1.0 + erf(v / sqrt(2.0)));
    case AXIOM_ACT_GELU_TANH:
        return 0.5 * v * (1.0 + tanh(SQRT_2_OVER_PI * (v + 0.044715 * (v * v * v))));
    case AXIOM_ACT_SIGMOID:
        return sigmoid_f64(v);
    case AXIOM_ACT_TANH:
        return tanh(v);
    case AXIOM_ACT_SOFTPLUS:
        return softplus_f64(v);
    case AXIOM_ACT_SOFTSIGN:
        return v / (1.0 + fabs(v));
    case AXIOM_ACT_SILU:
        return v * sigmoid_f64(v);
    case AXIOM_ACT_MISH:
        return v * tanh(softplus_f64(v));
    case AXIOM_ACT_HARDSWISH:
        return v * clip_f64(v + 3.0, 0.0, 6.0) / 6.0;
    case AXIOM_ACT_HARDSIGMOID:
        return clip_f64(v + 3.0, 0.0, 6.0) / 6.0;
    default:
        return clip_f64(v, 0.0, 6.0);
    }
}

AXIOM_API int axiom_activation_f64(const double *x, double *y, int64_t n, int act, double alpha) {
    int64_t count;
    if (!NN_NUMEL(&count, sizeof(double), n)) {
        return AXIOM_ERR_SIZE;
    }
    if (act < 0 || act >= AXIOM_ACT_COUNT) {
        return AXIOM_ERR_SIZE;
    }
    if (count > 0 && (x == NULL || y == NULL)) {
        return AXIOM_ERR_NULL;
    }
    const int par = count >= NN_PAR_ELEMS_MATH;
#pragma omp parallel for schedule(static) if (par)
    for (int64_t i = 0; i < count; ++i) {
        y[i] = act_f64(x[i], act, alpha);
    }
    return AXIOM_OK;
}
