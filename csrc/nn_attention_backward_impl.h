/*
 * nn_attention_backward_impl.h - type-generic attention backward, included by
 * nn_attention_backward.c once per element type.
 *
 * Before including, define NN_T (float or double), NN_S(name) (appends _f32 or _f64) and the
 * two type-specific helpers it calls:
 *   NN_S(abw_mm)(C, ldc, A, lda, B, ldb, m, n, k, ta, acc): C[m x n] = (acc ? C : 0) + op(A) B,
 *       op(A) = A (m x k) or, with ta, the transpose of A (k x m); all row-major;
 *   NN_S(abw_exp_row)(p, n, shift): p[j] = exp(p[j] - shift) for j < n (p[j] - shift <= 0
 *       or NaN), returns the sum.
 *
 * One (batch, head) at a time, in blocks of ABW_BR queries x ABW_BC keys (nothing of size
 * lq x lk is ever stored):
 *   pass 1, per query block: the forward's online softmax gives each row's maximum m and sum l
 *     and its output O, then lse = m + log l and D = dO . O (= sum_j P dP);
 *   pass 2, per key block, per query block that sees it: S = q k^T * scale + mask (hidden keys
 *     -inf), P = exp(S - lse), dv += P^T dO, dP = dO v^T, dS = P (dP - D) * scale,
 *     dk += dS^T q, dq += dS k.
 * A row that sees no key, or whose scores hold +inf or NaN (l is 0 or NaN), has NaN
 * probabilities in the reference: its dq row is NaN and so are all of dk and dv of its head.
 */

typedef struct {
    const NN_T *mask; /* the head's mask origin, or NULL */
    int64_t sq, sk;   /* mask strides within one (batch, head) */
} NN_S(abw_mask);

/* S (br x bc, ld ABW_BC) = q_blk kt * scale + mask, -inf where key j0 + j is hidden from query i0 + i */
static void NN_S(abw_scores)(const NN_T *q, int64_t d, const NN_T *kt, NN_T *s, int64_t br, int64_t bc, int64_t i0,
                             int64_t j0, NN_T scale, const NN_S(abw_mask) * mk, int causal, int64_t offset) {
    NN_S(abw_mm)(s, ABW_BC, q + i0 * d, d, kt, ABW_BC, br, bc, d, 0, 0);
    for (int64_t i = 0; i < br; ++i) {
        NN_T *row = s + i * ABW_BC;
#pragma omp simd
        for (int64_t j = 0; j < bc; ++j) {
            row[j] *= scale;
        }
        if (mk->mask != NULL) {
            const NN_T *mp = mk->mask + (i0 + i) * mk->sq + j0 * mk->sk;
            for (int64_t j = 0; j < bc; ++j) {
                row[j] += mp[j * mk->sk];
            }
        }
        if (causal) {
            /* key j0 + j is visible from query i0 + i iff j0 + j <= i0 + i + offset */
            int64_t first_hidden = i0 + i + offset + 1 - j0;
            for (int64_t j = first_hidden < 0 ? 0 : first_hidden; j < bc; ++j) {
                row[j] = (NN_T)-INFINITY;
            }
        }
    }
}

/* kt (d x bc, ld ABW_BC) = the transpose of rows j0 .. j0 + bc of x (lk x d) */
static void NN_S(abw_pack_t)(const NN_T *restrict x, int64_t d, int64_t j0, int64_t bc, NN_T *restrict xt) {
    for (int64_t j = 0; j < bc; ++j) {
        const NN_T *row = x + (j0 + j) * d;
        for (int64_t t = 0; t < d; ++t) {
            xt[t * ABW_BC + j] = row[t];
        }
    }
}

typedef struct {
    NN_T *kt, *vt; /* d x ABW_BC, dv x ABW_BC: a key block transposed */
    NN_T *s, *dp;  /* ABW_BR x ABW_BC: scores / probabilities / dS, and dP */
    NN_T *o;       /* ABW_BR x dv: output accumulator of pass 1 */
    NN_T *m, *l;   /* ABW_BR */
    NN_T *lse, *dd; /* lq: log-sum-exp and D of every query row of the head */
    unsigned char *bad; /* lq: 1 for a row with NaN probabilities */
} NN_S(abw_scratch);

/* Gradients of one (batch, head): q (lq x d), k (lk x d), v (lk x dv), g = dO (lq x dv). */
static void NN_S(abw_head)(const NN_T *g, const NN_T *q, const NN_T *k, const NN_T *v, const NN_S(abw_mask) * mk,
                           NN_T *gq, NN_T *gk, NN_T *gv, int64_t lq, int64_t lk, int64_t d, int64_t dv, NN_T scale,
                           int causal, const NN_S(abw_scratch) * ws) {
    const int64_t offset = lk - lq;
    for (int64_t t = 0; t < lq * d; ++t) {
        gq[t] = 0;
    }
    for (int64_t t = 0; t < lk * d; ++t) {
        gk[t] = 0;
    }
    for (int64_t t = 0; t < lk * dv; ++t) {
        gv[t] = 0;
    }
    int any_bad = 0;
    /* pass 1: row statistics */
    for (int64_t i0 = 0; i0 < lq; i0 += ABW_BR) {
        const int64_t br = lq - i0 < ABW_BR ? lq - i0 : ABW_BR;
        for (int64_t i = 0; i < br; ++i) {
            ws->m[i] = (NN_T)-INFINITY;
            ws->l[i] = 0;
        }
        for (int64_t t = 0; t < br * dv; ++t) {
            ws->o[t] = 0;
        }
        int64_t kend = lk;
        if (causal) {
            const int64_t last = i0 + br - 1 + offset; /* the last key a row of the block sees */
            kend = last < 0 ? 0 : (last + 1 < lk ? last + 1 : lk);
        }
        for (int64_t j0 = 0; j0 < kend; j0 += ABW_BC) {
            const int64_t bc = kend - j0 < ABW_BC ? kend - j0 : ABW_BC;
            NN_S(abw_pack_t)(k, d, j0, bc, ws->kt);
            NN_S(abw_scores)(q, d, ws->kt, ws->s, br, bc, i0, j0, scale, mk, causal, offset);
            for (int64_t i = 0; i < br; ++i) {
                NN_T *row = ws->s + i * ABW_BC;
                NN_T mx = (NN_T)-INFINITY;
                for (int64_t j = 0; j < bc; ++j) {
                    mx = row[j] > mx ? row[j] : mx; /* a NaN shows up through the sum */
                }
                const NN_T m_new = mx > ws->m[i] ? mx : ws->m[i];
                const NN_T shift = m_new == (NN_T)-INFINITY ? 0 : m_new;
                const NN_T alpha = (NN_T)exp((double)(ws->m[i] - shift));
                const NN_T sum = NN_S(abw_exp_row)(row, bc, shift);
                ws->l[i] = ws->l[i] * alpha + sum;
                ws->m[i] = m_new;
                NN_T *o = ws->o + i * dv;
                for (int64_t c = 0; c < dv; ++c) {
                    o[c] *= alpha;
                }
            }
            NN_S(abw_mm)(ws->o, dv, ws->s, ABW_BC, v + j0 * dv, dv, br, dv, bc, 0, 1);
        }
        for (int64_t i = 0; i < br; ++i) {
            const NN_T l = ws->l[i];
            const NN_T *o = ws->o + i * dv, *gi = g + (i0 + i) * dv;
            NN_T dot = 0;
            for (int64_t c = 0; c < dv; ++c) {
                dot += gi[c] * o[c];
            }
            const int bad = !(l > 0);
            ws->bad[i0 + i] = (unsigned char)bad;
            any_bad |= bad;
            ws->lse[i0 + i] = bad ? 0 : ws->m[i] + (NN_T)log((double)l);
            ws->dd[i0 + i] = bad ? 0 : dot / l;
        }
    }
    /* pass 2: gradients, key block by key block (dk, dv of the block stay in cache) */
    for (int64_t j0 = 0; j0 < lk; j0 += ABW_BC) {
        const int64_t bc = lk - j0 < ABW_BC ? lk - j0 : ABW_BC;
        NN_S(abw_pack_t)(k, d, j0, bc, ws->kt);
        NN_S(abw_pack_t)(v, dv, j0, bc, ws->vt);
        /* causal: query block i0 sees key j0 iff j0 <= i0 + br - 1 + offset */
        int64_t istart = 0;
        if (causal && j0 - offset > 0) {
            istart = (j0 - offset) / ABW_BR * ABW_BR;
        }
        for (int64_t i0 = istart; i0 < lq; i0 += ABW_BR) {
            const int64_t br = lq - i0 < ABW_BR ? lq - i0 : ABW_BR;
            NN_S(abw_scores)(q, d, ws->kt, ws->s, br, bc, i0, j0, scale, mk, causal, offset);
            for (int64_t i = 0; i < br; ++i) {
                NN_T *row = ws->s + i * ABW_BC;
                if (ws->bad[i0 + i]) {
                    for (int64_t j = 0; j < bc; ++j) {
                        row[j] = 0;
                    }
                } else {
                    NN_S(abw_exp_row)(row, bc, ws->lse[i0 + i]);
                }
            }
            NN_S(abw_mm)(gv + j0 * dv, dv, ws->s, ABW_BC, g + i0 * dv, dv, bc, dv, br, 1, 1);
            NN_S(abw_mm)(ws->dp, ABW_BC, g + i0 * dv, dv, ws->vt, ABW_BC, br, bc, dv, 0, 0);
            for (int64_t i = 0; i < br; ++i) {
                NN_T *p = ws->s + i * ABW_BC;
                const NN_T *dp = ws->dp + i * ABW_BC;
                const NN_T di = ws->dd[i0 + i];
#pragma omp simd
                for (int64_t j = 0; j < bc; ++j) {
                    p[j] = p[j] * (dp[j] - di) * scale; /* dS, in place of P */
                }
            }
            NN_S(abw_mm)(gk + j0 * d, d, ws->s, ABW_BC, q + i0 * d, d, bc, d, br, 1, 1);
            NN_S(abw_mm)(gq + i0 * d, d, ws->s, ABW_BC, k + j0 * d, d, br, d, bc, 0, 1);
        }
    }
    if (any_bad) {
        const NN_T nan = (NN_T)NAN;
        for (int64_t t = 0; t < lk * d; ++t) {
            gk[t] = nan;
        }
        for (int64_t t = 0; t < lk * dv; ++t) {
            gv[t] = nan;
        }
        for (int64_t i = 0; i < lq; ++i) {
            if (ws->bad[i]) {
                for (int64_t t = 0; t < d; ++t) {
                    gq[i * d + t] = nan;
                }
            }
        }
    }
}

AXIOM_API int NN_S(axiom_attention_backward)(const NN_T *gout, const NN_T *q, const NN_T *k, const NN_T *v,
                                             const NN_T *mask, NN_T *gq, NN_T *gk, NN_T *gv, int64_t batch,
                                             int64_t heads, int64_t lq, int64_t lk, int64_t d, int64_t dv,
                                             double scale, int causal, int64_t mask_sb, int64_t mask_sh,
                                             int64_t mask_sq, int64_t mask_sk) {
    const int rc = abw_check(gout, q, k, v, mask, gq, gk, gv, batch, heads, lq, lk, d, dv, causal, mask_sb, mask_sh,
                             mask_sq, mask_sk, sizeof(NN_T));
    if (rc != AXIOM_OK || batch * heads == 0) {
        return rc;
    }
    const int64_t nbh = batch * heads;
    const double work = (double)nbh * (double)lq * (double)lk * (double)(d + dv);
    const int par = nbh > 1 && work >= (double)NN_PAR_FLOPS;
    const size_t elems = ((size_t)d + (size_t)dv) * ABW_BC + 2 * (size_t)ABW_BR * ABW_BC + (size_t)ABW_BR * dv +
                         2 * (size_t)ABW_BR + 2 * (size_t)lq;
    int failed = 0;
    /* scratch per head (a few blocks plus 2 lq + lq bytes), so a failed malloc skips only its head */
#pragma omp parallel for schedule(dynamic, 1) if (par)
    for (int64_t bh = 0; bh < nbh; ++bh) {
        NN_T *buf = (NN_T *)aligned_alloc(64, (elems * sizeof(NN_T) + 63) / 64 * 64);
        unsigned char *bad = (unsigned char *)malloc((size_t)lq + 1);
        if (buf == NULL || bad == NULL) {
#pragma omp atomic write
            failed = 1;
        } else {
            NN_S(abw_scratch) ws;
            ws.kt = buf;
            ws.vt = ws.kt + d * ABW_BC;
            ws.s = ws.vt + dv * ABW_BC;
            ws.dp = ws.s + ABW_BR * ABW_BC;
            ws.o = ws.dp + ABW_BR * ABW_BC;
            ws.m = ws.o + ABW_BR * dv;
            ws.l = ws.m + ABW_BR;
            ws.lse = ws.l + ABW_BR;
            ws.dd = ws.lse + lq;
            ws.bad = bad;
            const int64_t b = bh / heads, h = bh % heads;
            NN_S(abw_mask) mk = {NULL, 0, 0};
            if (mask != NULL) {
                mk.mask = mask + b * mask_sb + h * mask_sh;
                mk.sq = mask_sq;
                mk.sk = mask_sk;
            }
            NN_S(abw_head)(gout + bh * lq * dv, q + bh * lq * d, k + bh * lk * d, v + bh * lk * dv, &mk,
                           gq + bh * lq * d, gk + bh * lk * d, gv + bh * lk * dv, lq, lk, d, dv, (NN_T)scale, causal,
                           &ws);
        }
        free(buf);
        free(bad);
    }
    return failed ? NN_ERR_NOMEM : AXIOM_OK;
}
