/*
 * gemm_tile.cuh - the register-blocked inner step shared by the GEMM (matmul.cu) and the
 * implicit-GEMM convolution (conv2d.cu).
 *
 * A work-group of GEMM_THREADS (256) work-items computes one GEMM_BM x GEMM_BN (64 x 64) tile of
 * the output; work-item t = ty * 16 + tx owns the 4 x 4 micro-tile of rows ty + 16 i and columns
 * tx + 16 j (strided, so the 16 work-items of a row read consecutive local-memory words and write
 * consecutive output elements). Per step the callers stage a GEMM_BK (16) slice of the reduction:
 * As[kk][row] (A transposed, padded against bank conflicts) and Bs[kk][col].
 *
 * Out-of-range elements are staged as zeros on BOTH operands along the reduction axis, so a
 * padded 0 only ever meets another 0; every real product is computed (0 * inf = NaN, as NumPy).
 */
#ifndef AXIOM_GEMM_TILE_CUH
#define AXIOM_GEMM_TILE_CUH
#ifndef AXIOM_DEVICE_DIALECT
#include "axiom_device.cuh"
#endif

#define GEMM_BM 64
#define GEMM_BN 64
#define GEMM_BK 16
#define GEMM_THREADS 256
#define GEMM_AS_STRIDE (GEMM_BM + 1)
/* full unrolling keeps the 16 accumulators in registers (CUDA would not unroll the epilogue with
 * its inlined activation switch by itself and spill acc[] to local memory); OpenCL compilers decide */
#ifdef AXIOM_CUDA
#define GEMM_UNROLL _Pragma("unroll")
#else
#define GEMM_UNROLL
#endif

/* acc[i * 4 + j] += sum over kk of As[kk][ty + 16 i] * Bs[kk][tx + 16 j].
 * A macro, not a function: a pointer to a work-item's private array must not cross a barrier
 * (PoCL's work-group loops then resolve it to another work-item's copy). */
#define GEMM_TILE_STEP(As, Bs, acc, tx, ty)                                                                      \
    do {                                                                                                         \
        GEMM_UNROLL                                                                                              \
        for (int kk_ = 0; kk_ < GEMM_BK; ++kk_) {                                                                \
            real av_[4], bv_[4];                                                                                 \
            GEMM_UNROLL                                                                                          \
            for (int i_ = 0; i_ < 4; ++i_) av_[i_] = (As)[kk_ * GEMM_AS_STRIDE + (ty) + 16 * i_];                \
            GEMM_UNROLL                                                                                          \
            for (int j_ = 0; j_ < 4; ++j_) bv_[j_] = (Bs)[kk_ * GEMM_BN + (tx) + 16 * j_];                       \
            GEMM_UNROLL                                                                                          \
            for (int i_ = 0; i_ < 4; ++i_) {                                                                     \
                GEMM_UNROLL                                                                                      \
                for (int j_ = 0; j_ < 4; ++j_) (acc)[i_ * 4 + j_] += av_[i_] * bv_[j_];                          \
            }                                                                                                    \
        }                                                                                                        \
    } while (0)

#endif /* AXIOM_GEMM_TILE_CUH */
