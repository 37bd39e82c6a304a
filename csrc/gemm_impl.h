/*
 * gemm_impl.h - the GEMM driver and the exported GEMM / matmul symbols, written once and
 * included by gemm.c for each element type. Before including, define:
 *
 *   G_T            element type (float, double)
 *   G_(name)       name##_f32 / name##_f64
 *   G_KERNELS      array of the axiom_kernel_* tables, indexed by AXIOM_ISA_*
 *
 * See gemm.h for the algorithm.
 */

#define G_EPI G_(axiom_epi)
#define G_KD G_(axiom_kernel)
#define G_ASRC G_(axiom_asrc)
/* Largest tile of any kernel (edge tiles are computed into a stack buffer of this size). */
#define G_TILE_MAX (16 * 32)

AXIOM_INTERNAL const G_KD *G_(axiom_kernel_select)(void) { return &G_KERNELS[axiom_isa_active()]; }

/* ---- packing ------------------------------------------------------------------------- */

/* Full MR-row panel of a non-transposed A: dst[p * MR + r] = src[r * lda + p]. */
#define G_PACK_A_ROWS(MR)                                                                              \
    static void G_(pack_a_rows_##MR)(int64_t kc, const G_T *restrict src, int64_t lda, G_T *restrict dst) { \
        const G_T *s[MR];                                                                              \
        for (int r = 0; r < MR; ++r) s[r] = src + r * lda;                                             \
        for (int64_t p = 0; p < kc; ++p) {                                                             \
            _Pragma("GCC unroll 16") for (int r = 0; r < MR; ++r) dst[p * MR + r] = s[r][p];           \
        }                                                                                              \
    }
G_PACK_A_ROWS(4)
G_PACK_A_ROWS(6)
G_PACK_A_ROWS(8)
G_PACK_A_ROWS(12)
#undef G_PACK_A_ROWS

/* Pack A[i0 : i0 + mc, p0 : p0 + kc] into MR-row panels (rows past mc are zero). */
static void G_(pack_a)(int mr, int64_t mc, int64_t kc, const G_T *a, int64_t lda, int trans, int64_t i0, int64_t p0,
                       G_T *restrict dst) {
    for (int64_t ir = 0; ir < mc; ir += mr, dst += (int64_t)mr * kc) {
        const int rows = mc - ir < mr ? (int)(mc - ir) : mr;
        if (!trans) {
            const G_T *src = a + (i0 + ir) * lda + p0;
            if (rows == mr && mr == 4) {
                G_(pack_a_rows_4)(kc, src, lda, dst);
            } else if (rows == mr && mr == 6) {
                G_(pack_a_rows_6)(kc, src, lda, dst);
            } else if (rows == mr && mr == 8) {
                G_(pack_a_rows_8)(kc, src, lda, dst);
            } else if (rows == mr && mr == 12) {
                G_(pack_a_rows_12)(kc, src, lda, dst);
            } else {
                for (int64_t p = 0; p < kc; ++p) {
                    for (int r = 0; r < rows; ++r) dst[p * mr + r] = src[r * lda + p];
                    for (int r = rows; r < mr; ++r) dst[p * mr + r] = (G_T)0;
                }
            }
        } else {
            const G_T *src = a + p0 * lda + i0 + ir; /* element (i, p) = a[p * lda + i] */
            for (int64_t p = 0; p < kc; ++p) {
                for (int r = 0; r < rows; ++r) dst[p * mr + r] = src[p * lda + r];
                for (int r = rows; r < mr; ++r) dst[p * mr + r] = (G_T)0;
            }
        }
    }
}

/* Pack one NR-column panel of op(B)[p0 : p0 + kc, j : j + cols] (columns past cols are zero). */
static void G_(pack_b_panel)(int nr, int64_t kc, int cols, const G_T *b, int64_t ldb, int trans, int64_t p0, int64_t j,
                             G_T *restrict dst) {
    if (!trans) {
        const G_T *src = b + p0 * ldb + j;
        if (cols == nr && nr == 16) {
            for (int64_t p = 0; p < kc; ++p) memcpy(dst + p * 16, src + p * ldb, 16 * sizeof(G_T));
        } else if (cols == nr && nr == 32) {
            for (int64_t p = 0; p < kc; ++p) memcpy(dst + p * 32, src + p * ldb, 32 * sizeof(G_T));
        } else if (cols == nr && nr == 8) {
            for (int64_t p = 0; p < kc; ++p) memcpy(dst + p * 8, src + p * ldb, 8 * sizeof(G_T));
        } else {
            for (int64_t p = 0; p < kc; ++p) {
                for (int jj = 0; jj < cols; ++jj) dst[p * nr + jj] = src[p * ldb + jj];
                for (int jj = cols; jj < nr; ++jj) dst[p * nr + jj] = (G_T)0;
            }
        }
    } else {
        const G_T *src = b + j * ldb + p0; /* element (p, j) = b[j * ldb + p] */
        for (int jj = 0; jj < cols; ++jj) {
            const G_T *s = src + jj * ldb;
            for (int64_t p = 0; p < kc; ++p) dst[p * nr + jj] = s[p];
        }
        for (int jj = cols; jj < nr; ++jj) {
            for (int64_t p = 0; p < kc; ++p) dst[p * nr + jj] = (G_T)0;
        }
    }
}

/* ---- macro kernel ---------------------------------------------------------------------- */

/* Scalar epilogue of an edge tile computed into tmp (row stride ld_t). */
static void G_(edge_store)(const G_T *tmp, int ld_t, G_T *c, int64_t ldc, int rows, int cols, const G_EPI *e) {
    for (int r = 0; r < rows; ++r) {
        for (int j = 0; j < cols; ++j) {
            G_T x = tmp[r * ld_t + j];
            if (e->alpha != (G_T)1) x = x * e->alpha;
            if (e->use_beta) x = e->beta * c[r * ldc + j] + x;
            if (e->bias) x = x + e->bias[j];
            c[r * ldc + j] = x;
        }
    }
}

/* C[0 : mc, 0 : nc] (+)= A-block @ B-block. mode 0: the A block is packed (ap); 1: gathered
 * (rows, koff); 2: strided (rows, element (i, p) = rows[i][p]). */
static void G_(macro)(const G_KD *kd, int mode, int64_t mc, int64_t nc, int64_t kc, const G_T *ap,
                      const G_T *const *rows, const int64_t *koff, const G_T *bp, G_T *c, int64_t ldc,
                      const G_EPI *epi) {
    const int mr = mode ? kd->mr_gather : kd->mr, nr = kd->nr;
    G_T tmp[G_TILE_MAX] __attribute__((aligned(64)));
    const G_EPI plain = {(G_T)1, (G_T)0, 0, NULL};
    G_(axiom_ukr_gather) const *gk = mode == 1 ? kd->ukr_gather : kd->ukr_strided;
    /* gathered A (convolutions): rows outer, so a tile's receptive field stays in L1 across the B panels */
    const int rows_outer = axiom_gemm_tune(4, mode == 1);
    const int64_t n_ir = (mc + mr - 1) / mr, n_jr = (nc + nr - 1) / nr;
    for (int64_t t = 0; t < n_ir * n_jr; ++t) {
        const int64_t ir = (rows_outer ? t / n_jr : t % n_ir) * mr;
        const int64_t jr = (rows_outer ? t % n_jr : t / n_ir) * nr;
        const int ncur = nc - jr < nr ? (int)(nc - jr) : nr;
        const int mcur = mc - ir < mr ? (int)(mc - ir) : mr;
        G_EPI e = *epi;
        if (e.bias) e.bias += jr;
        const G_T *bpanel = bp + jr * kc;
        const int edge = ncur < nr;
        G_T *ct = c + ir * ldc + jr;
        G_T *dst = edge ? tmp : ct;
        const int64_t ldd = edge ? nr : ldc;
        const G_EPI *ep = edge ? &plain : &e;
        if (mode == 0) {
            kd->ukr[mcur](kc, ap + ir * kc, bpanel, dst, ldd, ep);
        } else {
            gk[mcur](kc, rows + ir, koff, bpanel, dst, ldd, ep);
        }
        if (edge) G_(edge_store)(tmp, nr, ct, ldc, mcur, ncur, &e);
    }
}

/* ---- driver -------------------------------------------------------------------------- */

static inline int64_t G_(round_up)(int64_t x, int64_t to) { return (x + to - 1) / to * to; }

/* One ic block: pack A (or build its row table) and run the macro kernel over columns [j0, j1) of the B block. */
static int G_(block)(const G_KD *kd, int strided, int64_t ic, int64_t mc, int64_t pc, int64_t kc, int64_t jc,
                     int64_t j0, int64_t j1, const G_ASRC *A, const G_T *bp, G_T *c, int64_t ldc, const G_EPI *epi) {
    const G_T *ap = NULL;
    const G_T *const *rows = NULL;
    const int64_t *koff = NULL;
    int mode = 0;
    if (A->rows) {
        mode = 1;
        rows = A->rows + ic;
        koff = A->koff + pc;
    } else if (strided) {
        mode = 2;
        const G_T **r = (const G_T **)axiom_scratch(AXIOM_SLOT_A, (size_t)mc * sizeof(G_T *));
        if (!r) return -1;
        for (int64_t i = 0; i < mc; ++i) r[i] = A->a + (ic + i) * A->lda + pc;
        rows = r;
    } else {
        G_T *buf = (G_T *)axiom_scratch(AXIOM_SLOT_A, (size_t)G_(round_up)(mc, kd->mr) * (size_t)kc * sizeof(G_T));
        if (!buf) return -1;
        G_(pack_a)(kd->mr, mc, kc, A->a, A->lda, A->trans, ic, pc, buf);
        ap = buf;
    }
    G_EPI e = *epi;
    if (e.bias) e.bias += j0;
    G_(macro)(kd, mode, mc, j1 - j0, kc, ap, rows, koff, bp + j0 * kc, c + ic * ldc + jc + j0, ldc, &e);
    return 0;
}

AXIOM_INTERNAL int G_(axiom_gemm_driver)(int64_t m, int64_t n, int64_t k, const G_ASRC *A, const G_T *b, int64_t ldb,
                                         int transb, G_T alpha, G_T beta, G_T *c, int64_t ldc, const G_T *bias,
                                         int nthreads) {
    if (m <= 0 || n <= 0) return 0;
    if (k <= 0) {
        for (int64_t i = 0; i < m; ++i) {
            for (int64_t j = 0; j < n; ++j) {
                G_T x = beta != (G_T)0 ? beta * c[i * ldc + j] : (G_T)0;
                c[i * ldc + j] = bias ? x + bias[j] : x;
            }
        }
        return 0;
    }
    const G_KD *kd = G_(axiom_kernel_select)();
    const int strided = !A->rows && !A->trans && axiom_gemm_tune(3, 1);
    const int mr = (A->rows || strided) ? kd->mr_gather : kd->mr, nr = kd->nr;
    const int64_t NC = axiom_gemm_tune(2, kd->nc);
    int64_t MC = axiom_gemm_tune(1, kd->mc);
    /* gathered A (convolutions): B is small (the weights), keep the whole reduction in one block */
    int64_t KC = axiom_gemm_tune(0, A->rows && k <= 4 * kd->kc ? k : kd->kc);
    KC = (k + (k + KC - 1) / KC - 1) / ((k + KC - 1) / KC); /* balanced: ceil(k / ceil(k / KC)) */
    const int64_t kc_max = k < KC ? k : KC;
    const int64_t nc_max = G_(round_up)(n < NC ? n : NC, nr);
    G_T *bp = (G_T *)axiom_scratch(AXIOM_SLOT_B, (size_t)kc_max * (size_t)nc_max * sizeof(G_T));
    if (!bp) return -1;
    int status = 0;
    for (int64_t jc = 0; jc < n && status == 0; jc += NC) {
        const int64_t nc = n - jc < NC ? n - jc : NC;
        const int64_t npanels = (nc + nr - 1) / nr;
        for (int64_t pc = 0; pc < k && status == 0; pc += KC) {
            const int64_t kc = k - pc < KC ? k - pc : KC;
            G_EPI epi;
            if (pc == 0) {
                epi.alpha = alpha, epi.beta = beta, epi.use_beta = beta != (G_T)0, epi.bias = bias ? bias + jc : NULL;
            } else {
                epi.alpha = alpha, epi.beta = (G_T)1, epi.use_beta = 1, epi.bias = NULL;
            }
            if (nthreads <= 1) {
                for (int64_t jp = 0; jp < npanels; ++jp) {
                    const int64_t j = jp * nr;
                    const int cols = nc - j < nr ? (int)(nc - j) : nr;
                    G_(pack_b_panel)(nr, kc, cols, b, ldb, transb, pc, jc + j, bp + j * kc);
                }
                for (int64_t ic = 0; ic < m && status == 0; ic += MC) {
                    const int64_t mc = m - ic < MC ? m - ic : MC;
                    status = G_(block)(kd, strided, ic, mc, pc, kc, jc, 0, nc, A, bp, c, ldc, &epi);
                }
            } else {
                /* tasks: (row block) x (column chunk); more column chunks only when m is too small */
                int64_t mc_t = MC;
                int64_t mblocks = (m + mc_t - 1) / mc_t;
                if (mblocks < nthreads) {
                    mc_t = G_(round_up)((m + nthreads - 1) / nthreads, mr);
                    mblocks = (m + mc_t - 1) / mc_t;
                }
                int64_t jchunks = mblocks >= nthreads ? 1 : (nthreads + mblocks - 1) / mblocks;
                if (jchunks > npanels) jchunks = npanels;
                const int64_t chunk = G_(round_up)((npanels + jchunks - 1) / jchunks, 1) * nr;
                jchunks = (nc + chunk - 1) / chunk;
                const int64_t ntasks = mblocks * jchunks;
                int failed = 0;
#pragma omp parallel num_threads(nthreads)
                {
#pragma omp for schedule(static)
                    for (int64_t jp = 0; jp < npanels; ++jp) {
                        const int64_t j = jp * nr;
                        const int cols = nc - j < nr ? (int)(nc - j) : nr;
                        G_(pack_b_panel)(nr, kc, cols, b, ldb, transb, pc, jc + j, bp + j * kc);
                    }
#pragma omp for schedule(dynamic, 1)
                    for (int64_t t = 0; t < ntasks; ++t) {
                        const int64_t ic = (t / jchunks) * mc_t, j0 = (t % jchunks) * chunk;
                        const int64_t mc = m - ic < mc_t ? m - ic : mc_t;
                        const int64_t j1 = j0 + chunk < nc ? j0 + chunk : nc;
                        if (G_(block)(kd, strided, ic, mc, pc, kc, jc, j0, j1, A, bp, c, ldc, &epi) != 0) {
#pragma omp atomic write
                            failed = 1;
                        }
                    }
                }
                status = failed ? -1 : 0;
            }
        }
    }
    return status;
}

/* ---- exported symbols -------------------------------------------------------------------- */

/* Elements spanned by a rows x cols matrix with leading dimension ld (0 when empty);
 * 0 on overflow of the byte size (sets *ok = 0). */
static int64_t G_(span)(int64_t rows, int64_t cols, int64_t ld, int *ok) {
    if (rows == 0 || cols == 0) return 0;
    int64_t s, bytes;
    if (__builtin_mul_overflow(rows - 1, ld, &s) || __builtin_add_overflow(s, cols, &s) ||
        __builtin_mul_overflow(s, (int64_t)sizeof(G_T), &bytes)) {
        *ok = 0;
        return 0;
    }
    return s;
}

/* Elements spanned by `batch` matrices of `span` elements each, `stride` apart; sets *ok = 0 on overflow. */
static int64_t G_(batch_span)(int64_t batch, int64_t span, int64_t stride, int *ok) {
    if (batch == 0 || span == 0) return 0;
    int64_t s, bytes;
    if (__builtin_mul_overflow(batch - 1, stride, &s) || __builtin_add_overflow(s, span, &s) ||
        __builtin_mul_overflow(s, (int64_t)sizeof(G_T), &bytes)) {
        *ok = 0;
        return 0;
    }
    return s;
}

AXIOM_API int G_(axiom_gemm_batched)(int64_t batch, int32_t trans_a, int32_t trans_b, int64_t m, int64_t n, int64_t k,
                                     G_T alpha, const G_T *a, int64_t lda, int64_t stride_a, const G_T *b, int64_t ldb,
                                     int64_t stride_b, G_T beta, G_T *c, int64_t ldc, int64_t stride_c) {
    if (batch < 0 || m < 0 || n < 0 || k < 0 || (trans_a != 0 && trans_a != 1) || (trans_b != 0 && trans_b != 1) ||
        stride_a < 0 || stride_b < 0 || stride_c < 0) {
        return AXIOM_ERR_SIZE;
    }
    const int64_t rows_a = trans_a ? k : m, cols_a = trans_a ? m : k;
    const int64_t rows_b = trans_b ? n : k, cols_b = trans_b ? k : n;
    if (lda < (cols_a > 1 ? cols_a : 1) || ldb < (cols_b > 1 ? cols_b : 1) || ldc < (n > 1 ? n : 1)) {
        return AXIOM_ERR_SIZE;
    }
    int ok = 1;
    const int64_t span_a = G_(span)(rows_a, cols_a, lda, &ok);
    const int64_t span_b = G_(span)(rows_b, cols_b, ldb, &ok);
    const int64_t span_c = G_(span)(m, n, ldc, &ok);
    (void)G_(batch_span)(batch, span_a, stride_a, &ok);
    (void)G_(batch_span)(batch, span_b, stride_b, &ok);
    (void)G_(batch_span)(batch, span_c, stride_c, &ok);
    if (!ok || (batch > 1 && span_c > 0 && stride_c < span_c)) return AXIOM_ERR_SIZE; /* outputs must not overlap */
    if (batch == 0) return AXIOM_OK;
    if ((span_a > 0 && a == NULL) || (span_b > 0 && b == NULL) || (span_c > 0 && c == NULL)) return AXIOM_ERR_NULL;
    if (span_c == 0) return AXIOM_OK;

    const double flops = 2.0 * (double)m * (double)n * (double)k;
    int threads = axiom_threads_for(flops * (double)batch);
    int failed = 0;
    if (threads > 1 && batch > 1 && flops < AXIOM_PARALLEL_FLOPS) {
        /* many small products: one per thread at a time */
#pragma omp parallel for schedule(dynamic, 1) num_threads(threads)
        for (int64_t i = 0; i < batch; ++i) {
            const G_ASRC A = {k > 0 ? a + i * stride_a : NULL, lda, trans_a, NULL, NULL};
            if (G_(axiom_gemm_driver)(m, n, k, &A, k > 0 ? b + i * stride_b : NULL, ldb, trans_b, alpha, beta,
                                      c + i * stride_c, ldc, NULL, 1) != 0) {
#pragma omp atomic write
                failed = 1;
            }
        }
    } else {
        threads = axiom_threads_for(flops);
        for (int64_t i = 0; i < batch && !failed; ++i) {
            const G_ASRC A = {k > 0 ? a + i * stride_a : NULL, lda, trans_a, NULL, NULL};
            failed = G_(axiom_gemm_driver)(m, n, k, &A, k > 0 ? b + i * stride_b : NULL, ldb, trans_b, alpha, beta,
                                           c + i * stride_c, ldc, NULL, threads) != 0;
        }
    }
    return failed ? AXIOM_ERR_NOMEM : AXIOM_OK;
}

AXIOM_API int G_(axiom_gemm)(int32_t trans_a, int32_t trans_b, int64_t m, int64_t n, int64_t k, G_T alpha,
                             const G_T *a, int64_t lda, const G_T *b, int64_t ldb, G_T beta, G_T *c, int64_t ldc) {
    return G_(axiom_gemm_batched)(1, trans_a, trans_b, m, n, k, alpha, a, lda, 0, b, ldb, 0, beta, c, ldc, 0);
}

#undef G_EPI
#undef G_KD
#undef G_ASRC
#undef G_TILE_MAX
