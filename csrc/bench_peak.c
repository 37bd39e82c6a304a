/*
 * bench_peak.c - fp32 FMA peak loop of the benchmark harness (see axiom_bench.h).
 *
 * 12 independent accumulators hide the FMA latency (4 cycles x 2 pipes on Zen 4 and
 * most x86 cores need >= 8 in flight). The ymm and zmm variants are compiled with
 * __attribute__((target)) whatever -march the library is built for, and dispatched at
 * run time with __builtin_cpu_supports (which also checks that the OS saves the state).
 */
#include <immintrin.h>

#include "axiom_bench.h"

/* m is slightly below 1 and c small: acc converges to c / (1 - m), never overflows
 * or becomes subnormal, so the FMA units run at full speed. */
#define BENCH_MUL 0.999999f
#define BENCH_ADD 1e-7f

#define FMA12(OP, a, m, c)                                                          \
    do {                                                                              \
        a##0 = OP(a##0, m, c); a##1 = OP(a##1, m, c); a##2 = OP(a##2, m, c);          \
        a##3 = OP(a##3, m, c); a##4 = OP(a##4, m, c); a##5 = OP(a##5, m, c);          \
        a##6 = OP(a##6, m, c); a##7 = OP(a##7, m, c); a##8 = OP(a##8, m, c);          \
        a##9 = OP(a##9, m, c); a##10 = OP(a##10, m, c); a##11 = OP(a##11, m, c);      \
    } while (0)

__attribute__((target("avx2,fma"))) static float fma_loop_256(int64_t iters) {
    const __m256 m = _mm256_set1_ps(BENCH_MUL), c = _mm256_set1_ps(BENCH_ADD);
    __m256 a0 = _mm256_set1_ps(1.0f), a1 = _mm256_set1_ps(1.1f), a2 = _mm256_set1_ps(1.2f),
           a3 = _mm256_set1_ps(1.3f), a4 = _mm256_set1_ps(1.4f), a5 = _mm256_set1_ps(1.5f),
           a6 = _mm256_set1_ps(1.6f), a7 = _mm256_set1_ps(1.7f), a8 = _mm256_set1_ps(1.8f),
           a9 = _mm256_set1_ps(1.9f), a10 = _mm256_set1_ps(2.0f), a11 = _mm256_set1_ps(2.1f);
    for (int64_t i = 0; i < iters; ++i) {
        FMA12(_mm256_fmadd_ps, a, m, c);
    }
    __m256 s = _mm256_add_ps(_mm256_add_ps(_mm256_add_ps(a0, a1), _mm256_add_ps(a2, a3)),
                             _mm256_add_ps(_mm256_add_ps(a4, a5), _mm256_add_ps(a6, a7)));
    s = _mm256_add_ps(s, _mm256_add_ps(_mm256_add_ps(a8, a9), _mm256_add_ps(a10, a11)));
    float lanes[8];
    _mm256_storeu_ps(lanes, s);
    float total = 0.0f;
    for (int i = 0; i < 8; ++i) {
        total += lanes[i];
    }
    return total;
}

__attribute__((target("avx512f"))) static float fma_loop_512(int64_t iters) {
    const __m512 m = _mm512_set1_ps(BENCH_MUL), c = _mm512_set1_ps(BENCH_ADD);
    __m512 a0 = _mm512_set1_ps(1.0f), a1 = _mm512_set1_ps(1.1f), a2 = _mm512_set1_ps(1.2f),
           a3 = _mm512_set1_ps(1.3f), a4 = _mm512_set1_ps(1.4f), a5 = _mm512_set1_ps(1.5f),
           a6 = _mm512_set1_ps(1.6f), a7 = _mm512_set1_ps(1.7f), a8 = _mm512_set1_ps(1.8f),
           a9 = _mm512_set1_ps(1.9f), a10 = _mm512_set1_ps(2.0f), a11 = _mm512_set1_ps(2.1f);
    for (int64_t i = 0; i < iters; ++i) {
        FMA12(_mm512_fmadd_ps, a, m, c);
    }
    __m512 s = _mm512_add_ps(_mm512_add_ps(_mm512_add_ps(a0, a1), _mm512_add_ps(a2, a3)),
                             _mm512_add_ps(_mm512_add_ps(a4, a5), _mm512_add_ps(a6, a7)));
    s = _mm512_add_ps(s, _mm512_add_ps(_mm512_add_ps(a8, a9), _mm512_add_ps(a10, a11)));
    return _mm512_reduce_add_ps(s);
}

int axiom_bench_fma_supported(int32_t width_bits) {
    __builtin_cpu_init();
    if (width_bits == 256) {
        return __builtin_cpu_supports("avx2") && __builtin_cpu_supports("fma");
    }
    if (width_bits == 512) {
        return __builtin_cpu_supports("avx512f");
    }
    return 0;
}

int axiom_bench_fma_f32(int64_t iters, int32_t width_bits, float *out) {
    if (iters < 0 || out == NULL || (width_bits != 256 && width_bits != 512)) {
        return AXIOM_BENCH_ERR_ARG;
    }
    if (!axiom_bench_fma_supported(width_bits)) {
        return AXIOM_BENCH_ERR_UNSUPPORTED;
    }
    *out = width_bits == 256 ? fma_loop_256(iters) : fma_loop_512(iters);
    return AXIOM_BENCH_OK;
}
