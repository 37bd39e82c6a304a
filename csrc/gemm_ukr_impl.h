/*
 * gemm_ukr_impl.h - SIMD micro-kernel template, included by gemm.c once per
 * (element type, instruction set). Before including, define:
 *
 *   GK_T, GK_V, GK_VL     element type, vector type, lanes per vector
 *   GK_MR, GK_NV          packed kernel tile: GK_MR rows x (GK_NV * GK_VL) columns
 *   GK_MRG                rows of the gather kernels (same columns)
 *   GK_TARGET             __attribute__((target(...))) of the instruction set
 *   GK_LOAD, GK_LOADU, GK_STOREU, GK_SET1, GK_FMA(a, b, c) = a * b + c, GK_MUL, GK_ADD, GK_ZERO
 *   GK_EPI                the epilogue struct type (axiom_epi_f32 / _f64)
 *   GK_NAME(kind, rows)   name of a kernel (kind: packed, gather, strided)
 *
 * It defines, for every row count R in 1..GK_MR (packed) and 1..GK_MRG (gather, strided):
 *
 *   packed:  A is an MR-tall packed panel (element (r, p) at a[p * GK_MR + r]);
 *   gather:  element (r, p) of A is rows[r][koff[p]];
 *   strided: element (r, p) of A is rows[r][p] (koff is ignored);
 *
 * B is an NR-wide packed panel (b[p * NR + j], 64-byte aligned) and C (R x NR, row
 * stride ldc) gets the epilogue C = alpha * acc (+ beta * C) (+ bias[j]). The tile of C
 * lives in R * GK_NV vector registers for the whole k loop; every product is accumulated
 * (IEEE semantics, no skipped zeros).
 */

#define GK_NR (GK_NV * GK_VL)

#define GK_EPILOGUE(ROWS)                                                                          \
    do {                                                                                           \
        const GK_V va_ = GK_SET1(e->alpha), vb_ = GK_SET1(e->beta);                                \
        const int scale_ = e->alpha != (GK_T)1, ub_ = e->use_beta;                                 \
        const GK_T *bias_ = e->bias;                                                               \
        _Pragma("GCC unroll 16") for (int r = 0; r < (ROWS); ++r) {                                \
            _Pragma("GCC unroll 4") for (int v = 0; v < GK_NV; ++v) {                              \
                GK_V x_ = acc[r][v];                                                               \
                GK_T *cp_ = c + r * ldc + v * GK_VL;                                               \
                if (scale_) x_ = GK_MUL(x_, va_);                                                  \
                if (ub_) x_ = GK_FMA(vb_, GK_LOADU(cp_), x_);                                      \
                if (bias_) x_ = GK_ADD(x_, GK_LOADU(bias_ + v * GK_VL));                           \
                GK_STOREU(cp_, x_);                                                                \
            }                                                                                      \
        }                                                                                          \
    } while (0)

#define GK_PROLOGUE(ROWS)                                                                          \
    GK_V acc[ROWS][GK_NV];                                                                         \
    _Pragma("GCC unroll 16") for (int r = 0; r < (ROWS); ++r) {                                    \
        _Pragma("GCC unroll 4") for (int v = 0; v < GK_NV; ++v) acc[r][v] = GK_ZERO();             \
        __builtin_prefetch(c + r * ldc, 1, 3);                                                     \
        __builtin_prefetch(c + r * ldc + GK_NR - 1, 1, 3);                                         \
    }

/* one k step: acc[r][:] += A(r, p) * b[p, :], with A(r, p) given by the expression AEXPR */
#define GK_STEP(ROWS, AEXPR)                                                                       \
    do {                                                                                           \
        GK_V bv_[GK_NV];                                                                           \
        _Pragma("GCC unroll 4") for (int v = 0; v < GK_NV; ++v) bv_[v] = GK_LOAD(b + v * GK_VL);   \
        _Pragma("GCC unroll 16") for (int r = 0; r < (ROWS); ++r) {                                \
            const GK_V av_ = GK_SET1(AEXPR);                                                       \
            _Pragma("GCC unroll 4") for (int v = 0; v < GK_NV; ++v) acc[r][v] =                    \
                GK_FMA(av_, bv_[v], acc[r][v]);                                                    \
        }                                                                                          \
        b += GK_NR;                                                                                \
    } while (0)

#define GK_DEF_PACKED(R)                                                                                     \
    GK_TARGET static void GK_NAME(packed, R)(int64_t kc, const GK_T *restrict a, const GK_T *restrict b,     \
                                             GK_T *restrict c, int64_t ldc, const GK_EPI *restrict e) {      \
        GK_PROLOGUE(R)                                                                                       \
        _Pragma("GCC unroll 2") for (int64_t p = 0; p < kc; ++p) {                                           \
            __builtin_prefetch(b + 8 * GK_NR, 0, 3);                                                         \
            GK_STEP(R, a[r]);                                                                                \
            a += GK_MR;                                                                                      \
        }                                                                                                    \
        GK_EPILOGUE(R);                                                                                      \
    }

#define GK_DEF_GATHER(R)                                                                                     \
    GK_TARGET static void GK_NAME(gather, R)(int64_t kc, const GK_T *const *restrict rows,                   \
                                             const int64_t *restrict koff, const GK_T *restrict b,           \
                                             GK_T *restrict c, int64_t ldc, const GK_EPI *restrict e) {      \
        const GK_T *rp[R];                                                                                   \
        _Pragma("GCC unroll 16") for (int r = 0; r < (R); ++r) rp[r] = rows[r];                              \
        GK_PROLOGUE(R)                                                                                       \
        _Pragma("GCC unroll 2") for (int64_t p = 0; p < kc; ++p) {                                           \
            const int64_t o = koff[p];                                                                       \
            GK_STEP(R, rp[r][o]);                                                                            \
        }                                                                                                    \
        GK_EPILOGUE(R);                                                                                      \
    }                                                                                                        \
    GK_TARGET static void GK_NAME(strided, R)(int64_t kc, const GK_T *const *restrict rows,                  \
                                              const int64_t *restrict koff, const GK_T *restrict b,          \
                                              GK_T *restrict c, int64_t ldc, const GK_EPI *restrict e) {     \
        (void)koff;                                                                                          \
        const GK_T *rp[R];                                                                                   \
        _Pragma("GCC unroll 16") for (int r = 0; r < (R); ++r) rp[r] = rows[r];                              \
        GK_PROLOGUE(R)                                                                                       \
        _Pragma("GCC unroll 2") for (int64_t p = 0; p < kc; ++p) {                                           \
            __builtin_prefetch(b + 8 * GK_NR, 0, 3);                                                         \
            GK_STEP(R, rp[r][p]);                                                                            \
        }                                                                                                    \
        GK_EPILOGUE(R);                                                                                      \
    }

GK_DEF_PACKED(1)
GK_DEF_PACKED(2)
GK_DEF_PACKED(3)
GK_DEF_PACKED(4)
GK_DEF_PACKED(5)
GK_DEF_PACKED(6)
#if GK_MR >= 8
GK_DEF_PACKED(7)
GK_DEF_PACKED(8)
#endif
#if GK_MR >= 12
GK_DEF_PACKED(9)
GK_DEF_PACKED(10)
GK_DEF_PACKED(11)
GK_DEF_PACKED(12)
#endif
#if GK_MR >= 14
GK_DEF_PACKED(13)
GK_DEF_PACKED(14)
#endif

GK_DEF_GATHER(1)
GK_DEF_GATHER(2)
GK_DEF_GATHER(3)
GK_DEF_GATHER(4)
GK_DEF_GATHER(5)
GK_DEF_GATHER(6)
#if GK_MRG >= 8
GK_DEF_GATHER(7)
GK_DEF_GATHER(8)
#endif

#undef GK_DEF_PACKED
#undef GK_DEF_GATHER
#undef GK_STEP
#undef GK_PROLOGUE
#undef GK_EPILOGUE
#undef GK_NR
