/*
 * matmul.c - C implementation of the axiom_matmul_* kernels and axiom_abi_version.
 *
 * Compiled into the Cython extension axiom._core._kernels with -O3 -march=$AXIOM_MARCH
 * -fopenmp; the symbols stay exported so ctypes can load that .so as well.
 */
#include <string.h>

#include "axiom_kernels.h"
#include "common.h"

/* Tile sizes (elements): MC rows of c per parallel block, KC x NC panels of b. */
#define AXIOM_MC 64
#define AXIOM_KC 256
#define AXIOM_NC 256
/* Bytes per SIMD vector in the micro-kernel. */
#if defined(__AVX__)
#define AXIOM_VBYTES 32
#else
#define AXIOM_VBYTES 16
#endif
/* Below this many multiply-adds (m * k * n) a matmul runs on the calling thread only. */
#define AXIOM_PARALLEL_WORK (1 << 18)

AXIOM_API int axiom_abi_version(void) { return AXIOM_ABI_VERSION; }

#define AXIOM_T float
#define AXIOM_NAME axiom_matmul_f32
#define AXIOM_BLOCK matmul_block_f32
#define AXIOM_MICRO matmul_micro_f32
#define AXIOM_EDGE matmul_edge_f32
#define AXIOM_VEC vec_f32
#include "matmul_impl.h"
#undef AXIOM_T
#undef AXIOM_NAME
#undef AXIOM_BLOCK
#undef AXIOM_MICRO
#undef AXIOM_EDGE
#undef AXIOM_VEC

#define AXIOM_T double
#define AXIOM_NAME axiom_matmul_f64
#define AXIOM_BLOCK matmul_block_f64
#define AXIOM_MICRO matmul_micro_f64
#define AXIOM_EDGE matmul_edge_f64
#define AXIOM_VEC vec_f64
#include "matmul_impl.h"
#undef AXIOM_T
#undef AXIOM_NAME
#undef AXIOM_BLOCK
#undef AXIOM_MICRO
#undef AXIOM_EDGE
#undef AXIOM_VEC
