/*
 * nn_simd.h - portable 8 x float32 vectors and vectorised math for the NN kernels (csrc/nn_*.c).
 *
 * Internal to the C kernels (not part of the ABI). Vectors use GCC/Clang vector extensions, so
 * the same code compiles to AVX2 + FMA with -march=x86-64-v3 (the default AXIOM_MARCH), to
 * 2 x SSE on older x86 targets and to NEON on ARM. With -ffp-contract=fast, `a * b + c`
 * becomes one fused multiply-add.
 *
 * The math functions keep IEEE special values like libm does: NaN in -> NaN out, exp(-inf) = 0,
 * exp(+inf) = +inf, tanh(+-inf) = +-1. Accuracy (float32, checked against float64 in
 * tests/backends/test_c_nn_kernels.py through the activations): exp, expm1, tanh, sigmoid,
 * log1p within a few ulp, 1 + erf within 1e-7 absolute; results below ~2**-125 (exp of
 * x < -86.6) flush to zero.
 *
 * Polynomial coefficients were fitted for this file (weighted least squares, Lawson
 * iterations, float64) on the stated intervals.
 */
#ifndef AXIOM_NN_SIMD_H
#define AXIOM_NN_SIMD_H

#include <math.h>
#include <stdint.h>
#include <string.h>
#if defined(__AVX__)
#include <immintrin.h>
#endif

#define NN_VL 8 /* float32 lanes per vector */

typedef float nn_vf __attribute__((vector_size(32)));
typedef int32_t nn_vi __attribute__((vector_size(32)));
/* unaligned, aliasing-safe view used for loads and stores */
typedef float nn_vf_u __attribute__((vector_size(32), aligned(4), may_alias));

static inline nn_vf nn_set1(float a) { return (nn_vf){a, a, a, a, a, a, a, a}; }
static inline nn_vf nn_load(const float *p) { return *(const nn_vf_u *)p; }
static inline void nn_store(float *p, nn_vf v) { *(nn_vf_u *)p = v; }

/* the first n (< NN_VL) lanes from p, the others set to fill */
static inline nn_vf nn_load_part(const float *p, int64_t n, float fill) {
    float tmp[NN_VL];
    for (int i = 0; i < NN_VL; ++i) {
        tmp[i] = fill;
    }
    memcpy(tmp, p, (size_t)n * sizeof(float));
    return nn_load(tmp);
}

static inline void nn_store_part(float *p, nn_vf v, int64_t n) {
    float tmp[NN_VL];
    nn_store(tmp, v);
    memcpy(p, tmp, (size_t)n * sizeof(float));
}

/* first n (0 < n < NN_VL) lanes from p / to p, no memory touched beyond them; other lanes 0 */
#if defined(__AVX2__)
static inline nn_vi nn_lane_mask(int64_t n) { return (nn_vi){0, 1, 2, 3, 4, 5, 6, 7} < (int32_t)n; }
static inline nn_vf nn_load_n(const float *p, int64_t n) {
    return (nn_vf)_mm256_maskload_ps(p, (__m256i)nn_lane_mask(n));
}
static inline void nn_store_n(float *p, nn_vf v, int64_t n) {
    _mm256_maskstore_ps(p, (__m256i)nn_lane_mask(n), (__m256)v);
}
#else
static inline nn_vf nn_load_n(const float *p, int64_t n) { return nn_load_part(p, n, 0.0f); }
static inline void nn_store_n(float *p, nn_vf v, int64_t n) { nn_store_part(p, v, n); }
#endif

#if defined(__AVX__)
/* lane-wise mask ? a : b (mask lanes are all ones or all zeros, as comparisons give) */
static inline nn_vf nn_sel(nn_vi mask, nn_vf a, nn_vf b) {
    return (nn_vf)_mm256_blendv_ps((__m256)b, (__m256)a, (__m256)mask);
}
/* a > b ? a : b lane-wise (b when either is NaN): for maxima whose NaN shows up elsewhere */
static inline nn_vf nn_max_fast(nn_vf a, nn_vf b) { return (nn_vf)_mm256_max_ps((__m256)a, (__m256)b); }
/* 1 if any lane of the mask is set */
static inline int nn_any(nn_vi mask) { return _mm256_movemask_ps((__m256)mask) != 0; }
#else
static inline nn_vf nn_sel(nn_vi mask, nn_vf a, nn_vf b) { return (nn_vf)((mask & (nn_vi)a) | (~mask & (nn_vi)b)); }
static inline nn_vf nn_max_fast(nn_vf a, nn_vf b) { return nn_sel(a > b, a, b); }
static inline int nn_any(nn_vi mask) {
    int32_t any = 0;
    for (int i = 0; i < NN_VL; ++i) {
        any |= mask[i];
    }
    return any != 0;
}
#endif

/* Non-temporal store of a 32-byte aligned vector (bypasses the caches: for outputs much larger
 * than the caches, it saves the read-for-ownership and the write-back); nn_sfence() orders
 * such stores before later ones. Outputs of at least NN_STREAM_BYTES are streamed. */
#define NN_STREAM_BYTES (16 << 20)
#if defined(__AVX__)
static inline void nn_stream(float *p, nn_vf v) { _mm256_stream_ps(p, (__m256)v); }
static inline void nn_sfence(void) { _mm_sfence(); }
#else
static inline void nn_stream(float *p, nn_vf v) { nn_store(p, v); }
static inline void nn_sfence(void) {}
#endif
static inline int nn_aligned32(const void *p) { return ((uintptr_t)p & 31) == 0; }

/* max/min that propagate NaN from either operand (like numpy.maximum/minimum) */
static inline nn_vf nn_max_nan(nn_vf a, nn_vf b) { return nn_sel((a > b) | (a != a), a, b); }
static inline nn_vf nn_min_nan(nn_vf a, nn_vf b) { return nn_sel((a < b) | (a != a), a, b); }

/* clamp x to [lo, hi]; NaN stays NaN (like numpy.clip) */
#if defined(__AVX__)
static inline nn_vf nn_clamp(nn_vf x, float lo, float hi) {
    /* maxps/minps return their second operand when either is NaN */
    return (nn_vf)_mm256_min_ps((__m256)nn_set1(hi), _mm256_max_ps((__m256)nn_set1(lo), (__m256)x));
}
static inline nn_vf nn_clamp_lo(nn_vf x, float lo) { return (nn_vf)_mm256_max_ps((__m256)nn_set1(lo), (__m256)x); }
#else
static inline nn_vf nn_clamp(nn_vf x, float lo, float hi) {
    x = nn_sel(x < nn_set1(lo), nn_set1(lo), x);
    return nn_sel(x > nn_set1(hi), nn_set1(hi), x);
}
static inline nn_vf nn_clamp_lo(nn_vf x, float lo) { return nn_sel(x < nn_set1(lo), nn_set1(lo), x); }
#endif

static inline nn_vf nn_abs(nn_vf x) { return (nn_vf)((nn_vi)x & 0x7fffffff); }
static inline nn_vf nn_copysign(nn_vf mag, nn_vf sign) {
    return (nn_vf)(((nn_vi)mag & 0x7fffffff) | ((nn_vi)sign & (int32_t)0x80000000));
}

/* horizontal reductions */
static inline float nn_hsum(nn_vf v) {
    return ((v[0] + v[4]) + (v[1] + v[5])) + ((v[2] + v[6]) + (v[3] + v[7]));
}
static inline float nn_hmax_nan(nn_vf v) {
    float m = v[0];
    for (int i = 1; i < NN_VL; ++i) {
        m = (v[i] > m || v[i] != v[i]) ? v[i] : m;
    }
    return m;
}

/* scalar NaN-propagating max */
static inline float nn_fmax_nan(float a, float b) { return (a > b || a != a) ? a : b; }

/* exp(r) - 1 - r = r^2 * P(r) for |r| <= ln2/2 */
#define NN_EXP_C2 0.49999994039535522f
#define NN_EXP_C3 0.16666521131992340f
#define NN_EXP_C4 0.041668388992547989f
#define NN_EXP_C5 0.0083687128499150276f
#define NN_EXP_C6 0.0013814531266689301f
#define NN_LOG2E 1.44269504088896341f
#define NN_LN2_HI 0.693359375f
#define NN_LN2_LO -2.12194440e-4f
#define NN_ROUND_MAGIC 12582912.0f /* 1.5 * 2**23: adding it rounds to an integer */

/* q = expm1(r) for |r| <= ln2/2 */
static inline nn_vf nn_expm1_red(nn_vf r) {
    nn_vf p = nn_set1(NN_EXP_C6);
    p = p * r + NN_EXP_C5;
    p = p * r + NN_EXP_C4;
    p = p * r + NN_EXP_C3;
    p = p * r + NN_EXP_C2;
    return p * (r * r) + r;
}

/* split x = n ln2 + r (|r| <= ln2/2); returns r and stores n (as int lanes) in *ni */
static inline nn_vf nn_exp_reduce(nn_vf x, nn_vi *ni) {
    const nn_vf magic = nn_set1(NN_ROUND_MAGIC);
    nn_vf t = x * NN_LOG2E + magic;
    nn_vf n = t - magic;
    *ni = (nn_vi)t - (nn_vi)magic;
    nn_vf r = x - n * NN_LN2_HI;
    return r - n * NN_LN2_LO;
}

/* e^x. Overflows to +inf above ln(FLT_MAX); flushes results below 2**-125 to 0. */
static inline nn_vf nn_exp(nn_vf x) {
    x = nn_clamp(x, -87.6f, 88.76f); /* n in [-126, 128] */
    nn_vi n;
    nn_vf r = nn_exp_reduce(x, &n);
    nn_vf p = nn_expm1_red(r) + 1.0f;
    nn_vf scale = (nn_vf)((n + 126) << 23); /* 2**(n-1), a normal float or 0 */
    return (p + p) * scale;
}

/* e^x for x <= 0 or NaN (softmax after subtracting the maximum); exp(-inf) = 0, flushes below ~-87.5. */
static inline nn_vf nn_exp_neg(nn_vf x) {
    x = nn_clamp_lo(x, -88.0f); /* n >= -127; n = -127 gives 2**n bits 0: exactly 0 */
    nn_vi n;
    nn_vf r = nn_exp_reduce(x, &n);
    nn_vf p = nn_expm1_red(r) + 1.0f;
    return p * (nn_vf)((n + 127) << 23);
}

/* e^x - 1 for x <= 0 (accurate near 0); returns -1 below -17 and NaN for NaN. */
static inline nn_vf nn_expm1_neg(nn_vf x) {
    x = nn_clamp(x, -87.6f, 0.0f);
    nn_vi n;
    nn_vf r = nn_exp_reduce(x, &n);
    nn_vf q = nn_expm1_red(r);
    nn_vf s = (nn_vf)((n + 127) << 23); /* 2**n, n in [-126, 0] */
    return (s - 1.0f) + s * q;
}

/* tanh via expm1 of -2|x|: accurate for small and large |x| alike */
static inline nn_vf nn_tanh(nn_vf x) {
    nn_vf em = nn_expm1_neg(-2.0f * nn_abs(x));
    return nn_copysign(-em / (em + 2.0f), x);
}

/* 1 / (1 + e^-x), two-sided so exp never overflows */
static inline nn_vf nn_sigmoid(nn_vf x) {
    nn_vf e = nn_exp_neg(-nn_abs(x));
    return nn_sel(x >= 0.0f, nn_set1(1.0f), e) / (e + 1.0f);
}

/* log(1 + t) for t in [0, 1] (and NaN): log(u) + (t - (u - 1)) / u with u = 1 + t */
static inline nn_vf nn_log1p01(nn_vf t) {
    nn_vf u = t + 1.0f;
    /* u = m * 2**k with m in [sqrt(1/2), sqrt(2)) */
    nn_vi bits = (nn_vi)u;
    nn_vi k = (bits - 0x3f3504f3) >> 23;
    nn_vf m = (nn_vf)(bits - (k << 23));
    nn_vf f = m - 1.0f;
    nn_vf s = f / (f + 2.0f);
    nn_vf s2 = s * s;
    nn_vf p = nn_set1(0.23581886291503906f);
    p = p * s2 + 0.28537327051162720f;
    p = p * s2 + 0.40000334382057190f;
    p = p * s2 + 0.66666662693023682f;
    nn_vf kf = __builtin_convertvector(k, nn_vf);
    nn_vf logm = (s + s) + s * s2 * p;
    nn_vf c = (t - (u - 1.0f)) / u;
    return (kf * NN_LN2_HI + (logm + (kf * NN_LN2_LO + c)));
}

/* softplus(x) = max(x, 0) + log1p(exp(-|x|)) (numpy.logaddexp(0, x)) */
static inline nn_vf nn_softplus(nn_vf x) {
    nn_vf pos = nn_sel(x > 0.0f, x, nn_set1(0.0f));
    return pos + nn_log1p01(nn_exp_neg(-nn_abs(x)));
}

/* 1 + erf(z) without cancellation on either side: with a = |z| and
 * erfc(a) = exp(-(a + a Q(a))) (Q fitted on [0, 4] for the absolute error of erfc, < 1e-7),
 * 1 + erf(z) = 2 - erfc(a) for z >= 0 and erfc(a) for z < 0; erfc is taken as 0 past a = 4
 * (erfc(4) = 1.5e-8), so 1 + erf(-inf) is exactly 0. For GELU. */
static inline nn_vf nn_one_plus_erf(nn_vf z) {
    const nn_vf a0 = nn_abs(z);
    const nn_vf a = nn_clamp(a0, 0.0f, 4.0f);
    nn_vf q = nn_set1(3.1438699807040393e-05f);
    q = q * a - 0.00030879015685059130f;
    q = q * a + 0.0010323628084734082f;
    q = q * a + 0.00053699611453339458f;
    q = q * a - 0.019584015011787415f;
    q = q * a + 0.10291963815689087f;
    q = q * a + 0.63659775257110596f;
    q = q * a + 0.12838025391101837f;
    nn_vf e = nn_exp_neg(-(q * a + a));
    e = nn_sel(a0 > 4.0f, nn_set1(0.0f), e);
    return nn_sel(z >= 0.0f, 2.0f - e, e);
}

#endif /* AXIOM_NN_SIMD_H */
