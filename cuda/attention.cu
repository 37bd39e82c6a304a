/*
 * attention.cu - flash attention: out = softmax(q k^T * scale + mask) v (the contract's `attention`,
 * C ABI axiom_attention_*), with an online softmax; no lq x lk matrix is ever formed.
 *
 * q (batch*heads, lq, d), k (batch*heads, lk, d), v (batch*heads, lk, dv), out (batch*heads, lq,
 * dv), contiguous. mask (optional, additive): element [b, h, i, j] at b*ms0 + h*ms1 + i*ms2 + j*ms3
 * (0 strides broadcast). causal: key j is visible from query i iff j <= i + lk - lq.
 *
 * axiom_attention: one work-group of ATT_THREADS items per (block of ATT_BR queries, head, pass
 * over ATT_DVC value columns). Each item owns ATT_RPT query rows (register blocking: every
 * local-memory load feeds ATT_RPT multiply-adds); ATT_TPR items share a row. For each block of
 * ATT_BC keys:
 *   1. scores: q and k are staged in local memory ATT_DC head-dim columns at a time (any d); each
 *      item accumulates ATT_KPT scores per row in registers;
 *   2. online softmax: row maximum over the items of the row (local memory), p = exp(s - m_new),
 *      written to local memory, partial row sums; meanwhile the v block is staged (it reuses the
 *      q/k staging space);
 *   3. each item rescales its ATT_OPT output accumulators per row (registers) and adds p v.
 * Memory: registers and ~24 KB (float) / ~31 KB (double) of local memory per work-group,
 * independent of the sequence lengths. dv > ATT_DVC takes several passes (the scores are
 * recomputed per pass: same arithmetic, same maxima and sums); axiom_attention_narrow serves
 * dv <= ATT_DVC / 2 with half the accumulators.
 *
 * Special values follow csrc/nn_attention.c and the reference: a +inf or NaN score makes the row
 * NaN (exp(inf - inf), NaN through p), a query whose keys are all hidden or -inf gets 0 / 0 = NaN
 * (lk == 0 too). Causal attention skips key blocks no query of the work-group sees, except up to
 * `vend[bh]` (1 + the last key of the head whose value row is not finite, from
 * axiom_attention_value_ends): the reference multiplies those zero probabilities by the values,
 * and 0 * inf = NaN reaches every query.
 */
#ifndef AXIOM_DEVICE_DIALECT
#include "axiom_device.cuh"
#endif

#define ATT_THREADS 128                    /* work-items per work-group (the launch's local size) */
#define ATT_BR 32                          /* queries per work-group */
#define ATT_RPT 2                          /* query rows per item: r and r + ATT_RSTEP */
#define ATT_RSTEP (ATT_BR / ATT_RPT)       /* 16 */
#define ATT_TPR (ATT_THREADS / ATT_RSTEP)  /* items sharing a query row (8), lane g */
#define ATT_BC 32                          /* keys per block */
#define ATT_KPT (ATT_BC / ATT_TPR)         /* scores per item and row (4): keys g, g + 8, ... */
#ifdef AXIOM_DOUBLE
/* float64: half the stages, so that the local memory (~31 KB) fits the 32 KB every OpenCL device has */
#define ATT_DC 32                          /* head-dim columns of q and k staged at a time */
#define ATT_DVC 64                         /* value columns per pass */
#define ATT_OPAD 1                         /* padding of an output stage row */
#else
#define ATT_DC 64
#define ATT_DVC 128
#define ATT_OPAD ATT_TPR                   /* rows r, r + 1, .. of a warp start in different banks */
#endif
#define ATT_OPT (ATT_DVC / ATT_TPR)        /* accumulators per item and row (16 / 8): columns g, g + 8, ... */
#define ATT_LD (ATT_DC + 1)                /* padded row of the q / k stages (no bank conflicts) */
#define ATT_PLD (ATT_BC + ATT_TPR)         /* padded row of the probabilities */
#define ATT_QK_SIZE ((ATT_BR + ATT_BC) * ATT_LD)
#define ATT_V_SIZE (ATT_BC * ATT_DVC)
#define ATT_O_SIZE (ATT_BR * (ATT_DVC + ATT_OPAD))
#define ATT_MAX2(a, b) ((a) > (b) ? (a) : (b))
#define ATT_STAGE ATT_MAX2(ATT_MAX2(ATT_QK_SIZE, ATT_V_SIZE), ATT_O_SIZE)

/* ends[bh] = 1 + the last key j of head bh whose value row holds a NaN or an infinity, or 0.
 * Launch: one work-group of ATT_THREADS items per head (grid axis 0 loops over heads). */
KERNEL void axiom_attention_value_ends(const GLOBAL real *RESTRICT v, GLOBAL int *RESTRICT ends, int nbh, int lk,
                                       int dv) {
    LOCAL int best[ATT_THREADS];
    const int t = LOCAL_ID(0);
    const idx_t per_head = (idx_t)lk * dv;
    for (int bh = GROUP_ID(0); bh < nbh; bh += NUM_GROUPS(0)) {
        const GLOBAL real *vh = v + (idx_t)bh * per_head;
        int last = 0;
        for (idx_t e = t; e < per_head; e += ATT_THREADS) {
            const real z = vh[e] * (real)0; /* NaN iff the value is NaN or infinite */
            if (z != z) {
                const int row = (int)(e / dv) + 1;
                last = row > last ? row : last;
            }
        }
        best[t] = last;
        BARRIER();
        for (int s = ATT_THREADS / 2; s > 0; s >>= 1) {
            if (t < s && best[t + s] > best[t]) {
                best[t] = best[t + s];
            }
            BARRIER();
        }
        if (t == 0) {
            ends[bh] = best[0];
        }
        BARRIER();
    }
}

/* The work of one work-group; `opt` (accumulators per item and row, ATT_OPT or ATT_OPT / 2) is a
 * constant once inlined, so the accumulator loops unroll and o[][] stays in registers. Item t
 * owns query rows r = t / ATT_TPR and r + ATT_RSTEP, lane g = t % ATT_TPR: the scores of keys
 * g + ATT_TPR * kk and the output columns g + ATT_TPR * c of both rows (each local-memory load
 * feeds two multiply-adds). */
DEVICE void att_block(const GLOBAL real *RESTRICT q, const GLOBAL real *RESTRICT k, const GLOBAL real *RESTRICT v,
                      const GLOBAL real *RESTRICT mask, const GLOBAL int *RESTRICT vend, GLOBAL real *RESTRICT out,
                      int heads, int lq, int lk, int d, int dv, real scale, int causal, idx_t ms0, idx_t ms1,
                      idx_t ms2, idx_t ms3, LOCAL_PTR real *stage, LOCAL_PTR real *probs, LOCAL_PTR real *part_max,
                      LOCAL_PTR real *part_sum, const int opt) {
    LOCAL_PTR real *qs = stage;
    LOCAL_PTR real *ks = stage + ATT_BR * ATT_LD;
    LOCAL_PTR real *vs = stage;
    const int dvc = opt * ATT_TPR;    /* value columns per pass */
    const int old = dvc + ATT_OPAD;   /* padded row of the output stage */

    const int t = LOCAL_ID(0);
    const int r = t / ATT_TPR; /* the item's first query row within the block */
    const int g = t % ATT_TPR; /* its lane within the row */
    const int nqb = (lq + ATT_BR - 1) / ATT_BR;
    const int bh = GROUP_ID(0) / nqb;
    const int i0 = (GROUP_ID(0) % nqb) * ATT_BR;
    const int b = bh / heads, h = bh % heads;
    const int offset = lk - lq; /* causal: key j visible from query i iff j <= i + offset */
    const GLOBAL real *qh = q + (idx_t)bh * lq * d;
    const GLOBAL real *kh = k + (idx_t)bh * lk * d;
    const GLOBAL real *vh = v + (idx_t)bh * lk * dv;
    const GLOBAL real *mh = mask;
    if (mask != 0) {
        mh = mask + b * ms0 + h * ms1;
    }

    /* keys any query of the block may see (plus, causal, the keys whose values are not finite) */
    int kend = lk;
    if (causal) {
        const int last_row = (i0 + ATT_BR < lq ? i0 + ATT_BR : lq) - 1;
        const int last = last_row + offset + 1;
        kend = last < 0 ? 0 : (last < lk ? last : lk);
        if (vend != 0 && vend[bh] > kend) {
            kend = vend[bh];
        }
    }

    for (int dv0 = GROUP_ID(1) * dvc; dv0 < dv; dv0 += NUM_GROUPS(1) * dvc) {
        const int ncol = dv - dv0 < dvc ? dv - dv0 : dvc;
        real o[ATT_RPT][ATT_OPT];
        real m[ATT_RPT], l[ATT_RPT];
#pragma unroll
        for (int rr = 0; rr < ATT_RPT; ++rr) {
#pragma unroll
            for (int c = 0; c < ATT_OPT; ++c) {
                o[rr][c] = (real)0;
            }
            m[rr] = -REAL_INF;
            l[rr] = (real)0;
        }

        for (int j0 = 0; j0 < kend; j0 += ATT_BC) {
            /* 1. scores of keys j0 + g + ATT_TPR * kk for the item's queries */
            real s[ATT_RPT][ATT_KPT];
#pragma unroll
            for (int rr = 0; rr < ATT_RPT; ++rr) {
#pragma unroll
                for (int kk = 0; kk < ATT_KPT; ++kk) {
                    s[rr][kk] = (real)0;
                }
            }
            for (int d0 = 0; d0 < d; d0 += ATT_DC) {
                const int nd = d - d0 < ATT_DC ? d - d0 : ATT_DC;
                for (int e = t; e < ATT_BR * ATT_DC; e += ATT_THREADS) {
                    const int rq = e / ATT_DC, c = e % ATT_DC;
                    qs[rq * ATT_LD + c] = (i0 + rq < lq && c < nd) ? qh[(idx_t)(i0 + rq) * d + d0 + c] : (real)0;
                }
                for (int e = t; e < ATT_BC * ATT_DC; e += ATT_THREADS) {
                    const int jj = e / ATT_DC, c = e % ATT_DC;
                    ks[jj * ATT_LD + c] = (j0 + jj < lk && c < nd) ? kh[(idx_t)(j0 + jj) * d + d0 + c] : (real)0;
                }
                BARRIER();
                for (int c = 0; c < nd; ++c) {
                    real qv[ATT_RPT];
#pragma unroll
                    for (int rr = 0; rr < ATT_RPT; ++rr) {
                        qv[rr] = qs[(r + rr * ATT_RSTEP) * ATT_LD + c];
                    }
#pragma unroll
                    for (int kk = 0; kk < ATT_KPT; ++kk) {
                        const real kv = ks[(g + ATT_TPR * kk) * ATT_LD + c];
#pragma unroll
                        for (int rr = 0; rr < ATT_RPT; ++rr) {
                            s[rr][kk] = FMA(qv[rr], kv, s[rr][kk]);
                        }
                    }
                }
                BARRIER();
            }
#pragma unroll
            for (int rr = 0; rr < ATT_RPT; ++rr) {
                const int i = i0 + r + rr * ATT_RSTEP;
                real mx = -REAL_INF;
#pragma unroll
                for (int kk = 0; kk < ATT_KPT; ++kk) {
                    const int j = j0 + g + ATT_TPR * kk;
                    real sv = s[rr][kk] * scale;
                    if (j >= lk || (causal && j > i + offset)) {
                        sv = -REAL_INF; /* no such key, or hidden */
                    } else if (mh != 0 && i < lq) {
                        sv += mh[i * ms2 + j * ms3];
                    }
                    s[rr][kk] = sv;
                    mx = sv > mx ? sv : mx; /* a NaN score shows up through p */
                }
                part_max[(r + rr * ATT_RSTEP) * ATT_TPR + g] = mx;
            }
            BARRIER();

            /* 2. online softmax; stage the v block meanwhile */
            for (int e = t; e < ATT_BC * dvc; e += ATT_THREADS) {
                const int jj = e / dvc, c = e % dvc;
                vs[e] = (j0 + jj < lk && c < ncol) ? vh[(idx_t)(j0 + jj) * dv + dv0 + c] : (real)0;
            }
            real alpha[ATT_RPT];
#pragma unroll
            for (int rr = 0; rr < ATT_RPT; ++rr) {
                const int row = r + rr * ATT_RSTEP;
                real m_new = m[rr];
                for (int gg = 0; gg < ATT_TPR; ++gg) {
                    const real pm = part_max[row * ATT_TPR + gg];
                    m_new = pm > m_new ? pm : m_new;
                }
                const real shift = m_new == -REAL_INF ? (real)0 : m_new;
                alpha[rr] = EXP(m[rr] - shift);
                m[rr] = m_new;
                real psum = (real)0;
#pragma unroll
                for (int kk = 0; kk < ATT_KPT; ++kk) {
                    const real p = EXP(s[rr][kk] - shift);
                    probs[row * ATT_PLD + g + ATT_TPR * kk] = p;
                    psum += p;
                }
                part_sum[row * ATT_TPR + g] = psum;
            }
            BARRIER();

            /* 3. o = alpha o + p v */
#pragma unroll
            for (int rr = 0; rr < ATT_RPT; ++rr) {
                const int row = r + rr * ATT_RSTEP;
                real tile_sum = (real)0;
                for (int gg = 0; gg < ATT_TPR; ++gg) {
                    tile_sum += part_sum[row * ATT_TPR + gg];
                }
                l[rr] = l[rr] * alpha[rr] + tile_sum;
#pragma unroll
                for (int c = 0; c < ATT_OPT; ++c) {
                    o[rr][c] *= alpha[rr];
                }
            }
            for (int jj = 0; jj < ATT_BC; ++jj) {
                real p[ATT_RPT];
#pragma unroll
                for (int rr = 0; rr < ATT_RPT; ++rr) {
                    p[rr] = probs[(r + rr * ATT_RSTEP) * ATT_PLD + jj];
                }
                const LOCAL_PTR real *vr = vs + jj * dvc + g;
#pragma unroll
                for (int c = 0; c < ATT_OPT; ++c) {
                    if (c < opt) { /* constant once inlined */
                        const real vv = vr[ATT_TPR * c];
#pragma unroll
                        for (int rr = 0; rr < ATT_RPT; ++rr) {
                            o[rr][c] = FMA(p[rr], vv, o[rr][c]);
                        }
                    }
                }
            }
            BARRIER();
        }

        /* out = o / l (0 / 0 = NaN for a query that saw no key), through local memory so that
         * the stores are coalesced */
#pragma unroll
        for (int rr = 0; rr < ATT_RPT; ++rr) {
#pragma unroll
            for (int c = 0; c < ATT_OPT; ++c) {
                if (c < opt) {
                    stage[(r + rr * ATT_RSTEP) * old + g + ATT_TPR * c] = o[rr][c] / l[rr];
                }
            }
        }
        BARRIER();
        for (int e = t; e < ATT_BR * dvc; e += ATT_THREADS) {
            const int rq = e / dvc, c = e % dvc;
            if (i0 + rq < lq && c < ncol) {
                out[((idx_t)bh * lq + i0 + rq) * dv + dv0 + c] = stage[rq * old + c];
            }
        }
        BARRIER();
    }
}

/* Launch: local (ATT_THREADS, 1), groups (ceil(lq / ATT_BR) * nbh, min(ceil(dv / ATT_DVC), 65535)).
 * mask and vend may be NULL (vend only matters when causal). */
KERNEL void axiom_attention(const GLOBAL real *RESTRICT q, const GLOBAL real *RESTRICT k,
                            const GLOBAL real *RESTRICT v, const GLOBAL real *RESTRICT mask,
                            const GLOBAL int *RESTRICT vend, GLOBAL real *RESTRICT out, int heads, int lq, int lk,
                            int d, int dv, real scale, int causal, idx_t ms0, idx_t ms1, idx_t ms2, idx_t ms3) {
    LOCAL real stage[ATT_STAGE];        /* q | k blocks, then the v block, then the output */
    LOCAL real probs[ATT_BR * ATT_PLD]; /* p of the key block */
    LOCAL real part_max[ATT_BR * ATT_TPR]; /* per row and lane: max of the lane's scores */
    LOCAL real part_sum[ATT_BR * ATT_TPR]; /* per row and lane: sum of the lane's p */
    att_block(q, k, v, mask, vend, out, heads, lq, lk, d, dv, scale, causal, ms0, ms1, ms2, ms3, stage, probs,
              part_max, part_sum, ATT_OPT);
}

/* The same for dv <= ATT_DVC / 2 (one pass of ATT_DVC / 2 columns: half the accumulators, no
 * multiply-adds on padding columns). Launch: groups (ceil(lq / ATT_BR) * nbh, 1). */
KERNEL void axiom_attention_narrow(const GLOBAL real *RESTRICT q, const GLOBAL real *RESTRICT k,
                                   const GLOBAL real *RESTRICT v, const GLOBAL real *RESTRICT mask,
                                   const GLOBAL int *RESTRICT vend, GLOBAL real *RESTRICT out, int heads, int lq,
                                   int lk, int d, int dv, real scale, int causal, idx_t ms0, idx_t ms1, idx_t ms2,
                                   idx_t ms3) {
    LOCAL real stage[ATT_STAGE];
    LOCAL real probs[ATT_BR * ATT_PLD];
    LOCAL real part_max[ATT_BR * ATT_TPR];
    LOCAL real part_sum[ATT_BR * ATT_TPR];
    att_block(q, k, v, mask, vend, out, heads, lq, lk, d, dv, scale, causal, ms0, ms1, ms2, ms3, stage, probs,
              part_max, part_sum, ATT_OPT / 2);
}
