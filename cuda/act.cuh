/*
 * act.cuh - element-wise activations as one device function, act_apply(), shared by the
 * activation kernel and the epilogues of matmul / conv2d (bias + activation fused).
 *
 * Codes follow axiom.backends.base.ACTIVATIONS (= AXIOM_ACT_* of csrc/axiom_kernels_nn.h);
 * each formula is the NumPy reference's, so NaN / Inf behave alike (relu and clips keep NaN,
 * gelu(-inf) = NaN, ...); 1 + erf and 1 + tanh are written without cancellation.
 */
#ifndef AXIOM_ACT_CUH
#define AXIOM_ACT_CUH
#ifndef AXIOM_DEVICE_DIALECT
#include "axiom_device.cuh"
#endif

#define ACT_IDENTITY 0
#define ACT_RELU 1
#define ACT_LEAKY_RELU 2
#define ACT_ELU 3
#define ACT_SELU 4
#define ACT_GELU 5
#define ACT_GELU_TANH 6
#define ACT_SIGMOID 7
#define ACT_TANH 8
#define ACT_SOFTPLUS 9
#define ACT_SOFTSIGN 10
#define ACT_SILU 11
#define ACT_MISH 12
#define ACT_HARDSWISH 13
#define ACT_HARDSIGMOID 14
#define ACT_RELU6 15
#define ACT_COUNT 16

DEVICE real act_sigmoid(real v) {
    const real e = EXP(-FABS(v));
    return v >= (real)0 ? (real)1 / ((real)1 + e) : e / ((real)1 + e);
}

DEVICE real act_softplus(real v) { return (v > (real)0 ? v : (real)0) + LOG1P(EXP(-FABS(v))); }

/* min(max(v, lo), hi) that keeps NaN */
DEVICE real act_clip(real v, real lo, real hi) {
    v = v < lo ? lo : v;
    return v > hi ? hi : v;
}

DEVICE real act_apply(real v, int act, real alpha) {
    switch (act) {
    case ACT_IDENTITY:
        return v;
    case ACT_RELU:
        return (v > (real)0 || ISNAN(v)) ? v : (real)0;
    case ACT_LEAKY_RELU:
        return v >= (real)0 ? v : v * alpha;
    case ACT_ELU:
        return v > (real)0 ? v : alpha * EXPM1(v < (real)0 || ISNAN(v) ? v : (real)0);
    case ACT_SELU:
        return (real)1.0507009873554805 *
               (v > (real)0 ? v : (real)1.6732632423543772 * EXPM1(v < (real)0 || ISNAN(v) ? v : (real)0));
    case ACT_GELU: /* 0.5 v (1 + erf(v / sqrt 2)) = 0.5 v erfc(-v / sqrt 2) */
        return (real)0.5 * v * ERFC(-v * (real)0.7071067811865476);
    case ACT_GELU_TANH: /* 0.5 v (1 + tanh(u)) = v sigmoid(2 u) */
        return v * act_sigmoid((real)(2 * 0.7978845608028654) * (v + (real)0.044715 * (v * v * v)));
    case ACT_SIGMOID:
        return act_sigmoid(v);
    case ACT_TANH:
        return TANH(v);
    case ACT_SOFTPLUS:
        return act_softplus(v);
    case ACT_SOFTSIGN:
        return v / ((real)1 + FABS(v));
    case ACT_SILU:
        return v * act_sigmoid(v);
    case ACT_MISH:
        return v * TANH(act_softplus(v));
    case ACT_HARDSWISH:
        return v * act_clip(v + (real)3, (real)0, (real)6) / (real)6;
    case ACT_HARDSIGMOID:
        return act_clip(v + (real)3, (real)0, (real)6) / (real)6;
    default: /* ACT_RELU6 */
        return act_clip(v, (real)0, (real)6);
    }
}

#endif /* AXIOM_ACT_CUH */
