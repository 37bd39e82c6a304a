/*
 * axiom_bench.h - micro-kernels of the benchmark harness (python -m axiom.bench).
 *
 * Not part of the kernel ABI (axiom_kernels.h): no backend implements these, and the
 * ABI version does not cover them. They are compiled into axiom._core._kernels with
 * every other C file of csrc/ and loaded with ctypes by axiom/bench/peak.py.
 */
#ifndef AXIOM_BENCH_H
#define AXIOM_BENCH_H

#include <stdint.h>

#ifdef __cplusplus
extern "C" {
#endif

#if defined(__GNUC__)
#define AXIOM_BENCH_API __attribute__((visibility("default")))
#else
#define AXIOM_BENCH_API
#endif

/* Number of independent FMA accumulators (vector registers) of the peak loop. */
#define AXIOM_BENCH_FMA_ACCUMULATORS 12

/* Return codes of the bench kernels. */
enum {
    AXIOM_BENCH_OK = 0,
    AXIOM_BENCH_ERR_ARG = 1,        /* iters < 0, out NULL, or a width other than 256 / 512 */
    AXIOM_BENCH_ERR_UNSUPPORTED = 2 /* this CPU (or OS) cannot run vectors of that width */
};

/* 1 when the CPU and OS support fp32 FMA on vectors of width_bits (256: AVX2+FMA,
 * 512: AVX-512F), else 0. */
AXIOM_BENCH_API int axiom_bench_fma_supported(int32_t width_bits);

/*
 * fp32 FMA peak loop: iters iterations of AXIOM_BENCH_FMA_ACCUMULATORS independent
 * acc = acc * m + c vector FMAs on registers of width_bits (256 = ymm, 512 = zmm).
 * One call performs iters * 12 * (width_bits / 32) * 2 floating-point operations and
 * touches no memory; *out receives the sum of the accumulators (so the loop is not
 * optimised away). Returns AXIOM_BENCH_OK or an error code (and then writes nothing).
 */
AXIOM_BENCH_API int axiom_bench_fma_f32(int64_t iters, int32_t width_bits, float *out);

#ifdef __cplusplus
}
#endif

#endif /* AXIOM_BENCH_H */
