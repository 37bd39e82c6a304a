/*
 * gemm.c - packed, cache-blocked GEMM (float32 and float64) with run-time selected
 * micro-kernels: AVX-512 (zmm), AVX2+FMA (ymm) or portable C. See gemm.h.
 *
 * Exported (csrc/axiom_kernels.h): axiom_gemm_f32/_f64, axiom_gemm_batched_f32/_f64,
 * axiom_cpu_isa, axiom_cpu_isa_supported, axiom_set_cpu_isa. The SIMD kernels are
 * compiled with __attribute__((target(...))) whatever -march the library is built for,
 * and only called when __builtin_cpu_supports says the CPU (and OS) can run them.
 */
#include <immintrin.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdlib.h>
#include <string.h>
#ifdef _OPENMP
#include <omp.h>
#endif

#include "axiom_kernels.h"
#include "common.h"
#include "gemm.h"

/* ---- scratch buffers ----------------------------------------------------------------- */

static __thread void *scratch_ptr[AXIOM_SLOT_COUNT];
static __thread size_t scratch_size[AXIOM_SLOT_COUNT];
static pthread_key_t scratch_key;
static pthread_once_t scratch_once = PTHREAD_ONCE_INIT;

static void scratch_free(void *unused) {
    (void)unused;
    for (int i = 0; i < AXIOM_SLOT_COUNT; ++i) {
        free(scratch_ptr[i]);
        scratch_ptr[i] = NULL;
        scratch_size[i] = 0;
    }
}

static void scratch_init(void) { (void)pthread_key_create(&scratch_key, scratch_free); }

AXIOM_INTERNAL void *axiom_scratch(int slot, size_t bytes) {
    if (bytes <= scratch_size[slot] && scratch_ptr[slot]) return scratch_ptr[slot];
    (void)pthread_once(&scratch_once, scratch_init);
    (void)pthread_setspecific(scratch_key, (void *)1); /* frees this thread's buffers at thread exit */
    free(scratch_ptr[slot]);
    scratch_ptr[slot] = NULL;
    scratch_size[slot] = 0;
    if (bytes > SIZE_MAX / 2 - 4096) return NULL;
    size_t size = bytes + bytes / 4;               /* some head room for the next, slightly larger call */
    size = (size + 4095) / 4096 * 4096;            /* aligned_alloc: size must be a multiple of the alignment */
    void *p = aligned_alloc(64, size ? size : 4096);
    if (!p) return NULL;
    scratch_ptr[slot] = p;
    scratch_size[slot] = size;
    return p;
}

/* ---- instruction-set dispatch ---------------------------------------------------------- */

static int isa_supported(void) {
#if defined(__x86_64__) || defined(__i386__)
    __builtin_cpu_init();
    if (__builtin_cpu_supports("avx512f")) return AXIOM_ISA_AVX512;
    if (__builtin_cpu_supports("avx2") && __builtin_cpu_supports("fma")) return AXIOM_ISA_AVX2;
#endif
    return AXIOM_ISA_GENERIC;
}

/* AXIOM_CPU_FEATURES=generic|avx2|avx512 caps the level (default: the best the CPU has). */
static int isa_from_env(int supported) {
    const char *s = getenv("AXIOM_CPU_FEATURES");
    int want = supported;
    if (s && *s) {
        if (!strcmp(s, "generic") || !strcmp(s, "none") || !strcmp(s, "c")) want = AXIOM_ISA_GENERIC;
        else if (!strcmp(s, "avx2")) want = AXIOM_ISA_AVX2;
        else if (!strcmp(s, "avx512") || !strcmp(s, "avx512f")) want = AXIOM_ISA_AVX512;
    }
    return want < supported ? want : supported;
}

static atomic_int isa_current = -1;

AXIOM_INTERNAL int axiom_isa_active(void) {
    int v = atomic_load_explicit(&isa_current, memory_order_relaxed);
    if (v < 0) {
        v = isa_from_env(isa_supported());
        atomic_store_explicit(&isa_current, v, memory_order_relaxed);
    }
    return v;
}

AXIOM_API int axiom_cpu_isa(void) { return axiom_isa_active(); }

AXIOM_API int axiom_cpu_isa_supported(void) { return isa_supported(); }

AXIOM_API int axiom_set_cpu_isa(int32_t level) {
    if (level < -1 || level > AXIOM_ISA_AVX512) return AXIOM_ERR_SIZE;
    const int supported = isa_supported();
    const int v = level < 0 ? isa_from_env(supported) : (level < supported ? level : supported);
    atomic_store_explicit(&isa_current, v, memory_order_relaxed);
    return AXIOM_OK;
}

AXIOM_INTERNAL int axiom_threads_for(double flops) {
#ifdef _OPENMP
    if (flops < AXIOM_PARALLEL_FLOPS || omp_in_parallel()) return 1;
    const int t = omp_get_max_threads();
    return t < 1 ? 1 : t;
#else
    (void)flops;
    return 1;
#endif
}

/* Development knobs (AXIOM_GEMM_KC, _MC, _NC, _STRIDED, _ROWS_OUTER): override a blocking default. */
AXIOM_INTERNAL int64_t axiom_gemm_tune(int which, int64_t dflt) {
    static const char *names[5] = {"AXIOM_GEMM_KC", "AXIOM_GEMM_MC", "AXIOM_GEMM_NC", "AXIOM_GEMM_STRIDED",
                                   "AXIOM_GEMM_ROWS_OUTER"};
    static atomic_llong cache[5] = {-1, -1, -1, -1, -1};
    long long v = atomic_load_explicit(&cache[which], memory_order_relaxed);
    if (v == -1) {
        const char *s = getenv(names[which]);
        v = s && *s ? atoll(s) : -2;
        atomic_store_explicit(&cache[which], v, memory_order_relaxed);
    }
    return v >= 0 ? (int64_t)v : dflt;
}

/* ---- micro-kernels --------------------------------------------------------------------- */

/* Portable C kernels (whatever the compiler makes of them for -march): 4 x 8 (f32), 4 x 4 (f64). */
#define GEN_EPILOGUE(T, ROWS, NR)                                                                                  \
    for (int r = 0; r < (ROWS); ++r)                                                                               \
        for (int j = 0; j < (NR); ++j) {                                                                           \
            T x = acc[r][j];                                                                                       \
            if (e->alpha != (T)1) x = x * e->alpha;                                                                \
            if (e->use_beta) x = e->beta * c[r * ldc + j] + x;                                                     \
            if (e->bias) x = x + e->bias[j];                                                                       \
            c[r * ldc + j] = x;                                                                                    \
        }
#define GEN_KERNELS(T, S, MR, NR, R)                                                                               \
    static void ukr_generic_##S##_packed_##R(int64_t kc, const T *restrict a, const T *restrict b, T *restrict c,  \
                                             int64_t ldc, const axiom_epi_##S *restrict e) {                       \
        T acc[R][NR];                                                                                              \
        memset(acc, 0, sizeof acc);                                                                                \
        for (int64_t p = 0; p < kc; ++p)                                                                           \
            for (int r = 0; r < (R); ++r)                                                                          \
                for (int j = 0; j < (NR); ++j) acc[r][j] += a[p * (MR) + r] * b[p * (NR) + j];                     \
        GEN_EPILOGUE(T, R, NR)                                                                                     \
    }                                                                                                              \
    static void ukr_generic_##S##_gather_##R(int64_t kc, const T *const *restrict rows,                            \
                                             const int64_t *restrict koff, const T *restrict b, T *restrict c,     \
                                             int64_t ldc, const axiom_epi_##S *restrict e) {                       \
        T acc[R][NR];                                                                                              \
        memset(acc, 0, sizeof acc);                                                                                \
        for (int64_t p = 0; p < kc; ++p)                                                                           \
            for (int r = 0; r < (R); ++r) {                                                                        \
                const T av = rows[r][koff[p]];                                                                     \
                for (int j = 0; j < (NR); ++j) acc[r][j] += av * b[p * (NR) + j];                                  \
            }                                                                                                      \
        GEN_EPILOGUE(T, R, NR)                                                                                     \
    }                                                                                                              \
    static void ukr_generic_##S##_strided_##R(int64_t kc, const T *const *restrict rows,                           \
                                              const int64_t *restrict koff, const T *restrict b, T *restrict c,    \
                                              int64_t ldc, const axiom_epi_##S *restrict e) {                      \
        (void)koff;                                                                                                \
        T acc[R][NR];                                                                                              \
        memset(acc, 0, sizeof acc);                                                                                \
        for (int64_t p = 0; p < kc; ++p)                                                                           \
            for (int r = 0; r < (R); ++r) {                                                                        \
                const T av = rows[r][p];                                                                           \
                for (int j = 0; j < (NR); ++j) acc[r][j] += av * b[p * (NR) + j];                                  \
            }                                                                                                      \
        GEN_EPILOGUE(T, R, NR)                                                                                     \
    }
GEN_KERNELS(float, f32, 4, 8, 1)
GEN_KERNELS(float, f32, 4, 8, 2)
GEN_KERNELS(float, f32, 4, 8, 3)
GEN_KERNELS(float, f32, 4, 8, 4)
GEN_KERNELS(double, f64, 4, 4, 1)
GEN_KERNELS(double, f64, 4, 4, 2)
GEN_KERNELS(double, f64, 4, 4, 3)
GEN_KERNELS(double, f64, 4, 4, 4)
#undef GEN_KERNELS
#undef GEN_EPILOGUE

/* float32, AVX2 + FMA: 6 x 16 (12 ymm accumulators) */
#define GK_T float
#define GK_V __m256
#define GK_VL 8
#define GK_MR 6
#define GK_MRG 6
#define GK_NV 2
#define GK_TARGET __attribute__((target("avx2,fma")))
#define GK_LOAD _mm256_load_ps
#define GK_LOADU _mm256_loadu_ps
#define GK_STOREU _mm256_storeu_ps
#define GK_SET1 _mm256_set1_ps
#define GK_FMA _mm256_fmadd_ps
#define GK_MUL _mm256_mul_ps
#define GK_ADD _mm256_add_ps
#define GK_ZERO _mm256_setzero_ps
#define GK_EPI axiom_epi_f32
#define GK_NAME(kind, R) ukr_avx2_f32_##kind##_##R
#include "gemm_ukr_impl.h"
#undef GK_T
#undef GK_V
#undef GK_VL
#undef GK_MR
#undef GK_MRG
#undef GK_NV
#undef GK_TARGET
#undef GK_LOAD
#undef GK_LOADU
#undef GK_STOREU
#undef GK_SET1
#undef GK_FMA
#undef GK_MUL
#undef GK_ADD
#undef GK_ZERO
#undef GK_EPI
#undef GK_NAME

/* float32, AVX-512: 12 x 32 packed (24 zmm accumulators), 8 x 32 gather */
#define GK_T float
#define GK_V __m512
#define GK_VL 16
#define GK_MR 12
#define GK_MRG 8
#define GK_NV 2
#define GK_TARGET __attribute__((target("avx512f")))
#define GK_LOAD _mm512_load_ps
#define GK_LOADU _mm512_loadu_ps
#define GK_STOREU _mm512_storeu_ps
#define GK_SET1 _mm512_set1_ps
#define GK_FMA _mm512_fmadd_ps
#define GK_MUL _mm512_mul_ps
#define GK_ADD _mm512_add_ps
#define GK_ZERO _mm512_setzero_ps
#define GK_EPI axiom_epi_f32
#define GK_NAME(kind, R) ukr_avx512_f32_##kind##_##R
#include "gemm_ukr_impl.h"
#undef GK_T
#undef GK_V
#undef GK_VL
#undef GK_MR
#undef GK_MRG
#undef GK_NV
#undef GK_TARGET
#undef GK_LOAD
#undef GK_LOADU
#undef GK_STOREU
#undef GK_SET1
#undef GK_FMA
#undef GK_MUL
#undef GK_ADD
#undef GK_ZERO
#undef GK_EPI
#undef GK_NAME

/* float64, AVX2 + FMA: 6 x 8 (12 ymm accumulators) */
#define GK_T double
#define GK_V __m256d
#define GK_VL 4
#define GK_MR 6
#define GK_MRG 6
#define GK_NV 2
#define GK_TARGET __attribute__((target("avx2,fma")))
#define GK_LOAD _mm256_load_pd
#define GK_LOADU _mm256_loadu_pd
#define GK_STOREU _mm256_storeu_pd
#define GK_SET1 _mm256_set1_pd
#define GK_FMA _mm256_fmadd_pd
#define GK_MUL _mm256_mul_pd
#define GK_ADD _mm256_add_pd
#define GK_ZERO _mm256_setzero_pd
#define GK_EPI axiom_epi_f64
#define GK_NAME(kind, R) ukr_avx2_f64_##kind##_##R
#include "gemm_ukr_impl.h"
#undef GK_T
#undef GK_V
#undef GK_VL
#undef GK_MR
#undef GK_MRG
#undef GK_NV
#undef GK_TARGET
#undef GK_LOAD
#undef GK_LOADU
#undef GK_STOREU
#undef GK_SET1
#undef GK_FMA
#undef GK_MUL
#undef GK_ADD
#undef GK_ZERO
#undef GK_EPI
#undef GK_NAME

/* float64, AVX-512: 12 x 16 packed (24 zmm accumulators), 8 x 16 gather */
#define GK_T double
#define GK_V __m512d
#define GK_VL 8
#define GK_MR 12
#define GK_MRG 8
#define GK_NV 2
#define GK_TARGET __attribute__((target("avx512f")))
#define GK_LOAD _mm512_load_pd
#define GK_LOADU _mm512_loadu_pd
#define GK_STOREU _mm512_storeu_pd
#define GK_SET1 _mm512_set1_pd
#define GK_FMA _mm512_fmadd_pd
#define GK_MUL _mm512_mul_pd
#define GK_ADD _mm512_add_pd
#define GK_ZERO _mm512_setzero_pd
#define GK_EPI axiom_epi_f64
#define GK_NAME(kind, R) ukr_avx512_f64_##kind##_##R
#include "gemm_ukr_impl.h"
#undef GK_T
#undef GK_V
#undef GK_VL
#undef GK_MR
#undef GK_MRG
#undef GK_NV
#undef GK_TARGET
#undef GK_LOAD
#undef GK_LOADU
#undef GK_STOREU
#undef GK_SET1
#undef GK_FMA
#undef GK_MUL
#undef GK_ADD
#undef GK_ZERO
#undef GK_EPI
#undef GK_NAME

/* Kernel tables, indexed by AXIOM_ISA_*: {isa, mr, nr, mr_gather, kc, mc, nc, kernels by row count}.
 * mc is a multiple of both mr and mr_gather (float64 rows are twice as wide: fewer of them per block). */
#define K4(P, kind) {NULL, P##kind##_1, P##kind##_2, P##kind##_3, P##kind##_4}
#define K6(P, kind) {NULL, P##kind##_1, P##kind##_2, P##kind##_3, P##kind##_4, P##kind##_5, P##kind##_6}
#define K8(P, kind) \
    {NULL, P##kind##_1, P##kind##_2, P##kind##_3, P##kind##_4, P##kind##_5, P##kind##_6, P##kind##_7, P##kind##_8}
#define K12(P, kind)                                                                                             \
    {NULL,         P##kind##_1,  P##kind##_2,  P##kind##_3, P##kind##_4, P##kind##_5, P##kind##_6, P##kind##_7, \
     P##kind##_8,  P##kind##_9,  P##kind##_10, P##kind##_11, P##kind##_12}
static const axiom_kernel_f32 kernels_f32[3] = {
    {AXIOM_ISA_GENERIC, 4, 8, 4, 256, 128, 4096, K4(ukr_generic_f32_, packed), K4(ukr_generic_f32_, gather),
     K4(ukr_generic_f32_, strided)},
    {AXIOM_ISA_AVX2, 6, 16, 6, 256, 144, 4096, K6(ukr_avx2_f32_, packed), K6(ukr_avx2_f32_, gather),
     K6(ukr_avx2_f32_, strided)},
    {AXIOM_ISA_AVX512, 12, 32, 8, 256, 144, 4096, K12(ukr_avx512_f32_, packed), K8(ukr_avx512_f32_, gather),
     K8(ukr_avx512_f32_, strided)},
};
static const axiom_kernel_f64 kernels_f64[3] = {
    {AXIOM_ISA_GENERIC, 4, 4, 4, 256, 128, 4096, K4(ukr_generic_f64_, packed), K4(ukr_generic_f64_, gather),
     K4(ukr_generic_f64_, strided)},
    {AXIOM_ISA_AVX2, 6, 8, 6, 256, 96, 4096, K6(ukr_avx2_f64_, packed), K6(ukr_avx2_f64_, gather),
     K6(ukr_avx2_f64_, strided)},
    {AXIOM_ISA_AVX512, 12, 16, 8, 256, 96, 4096, K12(ukr_avx512_f64_, packed), K8(ukr_avx512_f64_, gather),
     K8(ukr_avx512_f64_, strided)},
};
#undef K4
#undef K6
#undef K8
#undef K12

/* ---- drivers and exported GEMM symbols ----------------------------------------------------- */

#define G_T float
#define G_(name) name##_f32
#define G_KERNELS kernels_f32
#include "gemm_impl.h"
#undef G_T
#undef G_
#undef G_KERNELS

#define G_T double
#define G_(name) name##_f64
#define G_KERNELS kernels_f64
#include "gemm_impl.h"
#undef G_T
#undef G_
#undef G_KERNELS
