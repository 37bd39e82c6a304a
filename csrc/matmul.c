/*
 * matmul.c - the ABI's axiom_matmul_f32 / axiom_matmul_f64 and axiom_abi_version.
 *
 * c = a @ b for contiguous row-major operands, computed by the packed GEMM of gemm.c
 * (run-time selected AVX-512 / AVX2 / C micro-kernels, OpenMP above a work threshold).
 * Compiled into the Cython extension axiom._core._kernels; the symbols stay exported so
 * ctypes can load that .so as well.
 */
#include "axiom_kernels.h"
#include "common.h"
#include "gemm.h"

AXIOM_API int axiom_abi_version(void) { return AXIOM_ABI_VERSION; }

AXIOM_API int axiom_matmul_f32(const float *a, const float *b, float *c, int64_t m, int64_t k, int64_t n) {
    const int rc = axiom_check_matmul(a, b, c, m, k, n, sizeof(float));
    if (rc != AXIOM_OK || m == 0 || n == 0) return rc;
    const axiom_asrc_f32 A = {a, k > 0 ? k : 1, 0, NULL, NULL};
    const int threads = axiom_threads_for(2.0 * (double)m * (double)n * (double)k);
    return axiom_gemm_driver_f32(m, n, k, &A, b, n, 0, 1.0f, 0.0f, c, n, NULL, threads) ? AXIOM_ERR_NOMEM : AXIOM_OK;
}

AXIOM_API int axiom_matmul_f64(const double *a, const double *b, double *c, int64_t m, int64_t k, int64_t n) {
    const int rc = axiom_check_matmul(a, b, c, m, k, n, sizeof(double));
    if (rc != AXIOM_OK || m == 0 || n == 0) return rc;
    const axiom_asrc_f64 A = {a, k > 0 ? k : 1, 0, NULL, NULL};
    const int threads = axiom_threads_for(2.0 * (double)m * (double)n * (double)k);
    return axiom_gemm_driver_f64(m, n, k, &A, b, n, 0, 1.0, 0.0, c, n, NULL, threads) ? AXIOM_ERR_NOMEM : AXIOM_OK;
}
