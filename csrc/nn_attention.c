/*
 * nn_attention.c - flash attention: softmax(q k^T * scale + mask) v with an online softmax.
 *
 * float32 algorithm, per (batch, head, block of ATT_BR query rows) task:
 *   for each block of ATT_BC keys (causal: only blocks with a visible key):
 *     pack the block of k transposed (d x ATT_BC, zero columns past lk) and of v (ATT_BC x dv,
 *     padded to a multiple of 16 columns when needed);
 *     for each tile of 6 query rows:
 *       S = q_tile k_block^T * scale (+ mask), hidden keys -inf   (6 x 16 register tiles, FMA)
 *       m_new = max(m, rowmax S); alpha = exp(m - m_new); P = exp(S - m_new); l = l alpha + sum P
 *       O_tile = alpha O_tile + P v_block                       (6 x 16 register tiles, FMA)
 *   out = O / l.
 * Scratch memory per thread is O(ATT_BC (d + dv) + ATT_BR dv), independent of the sequence
 * lengths (no lq x lk score matrix is ever formed). Tasks run in parallel (OpenMP, dynamic
 * schedule) when the work exceeds NN_PAR_FLOPS multiply-adds.
 *
 * Special values follow the reference: a +inf or NaN score makes the row NaN (exp(inf - inf)),
 * a row whose keys are all hidden (causal with lq > lk) or -inf gets 0 / 0 = NaN.
 * float64 is a plain per-row loop with the same online softmax.
 */
#include <math.h>
#include <stdlib.h>

#include "nn_common.h"
#include "nn_simd.h"

#define ATT_MR 6  /* keys (or value columns) per register tile */
#ifndef ATT_BR
#define ATT_BR 64 /* query rows per task: lanes of the transposed tiles (a multiple of 16) */
#endif
#ifndef ATT_BC
#define ATT_BC 96 /* keys per block */
#endif
#define ATT_QV (ATT_BR / NN_VL) /* query vectors per row of a transposed tile */

typedef struct {
    const float *mask;
    int64_t sq, sk; /* mask strides within one (batch, head) */
} att_mask;

typedef struct {
    float *qt;    /* d x ATT_BR: the task's query rows, transposed, zero past the last row */
    float *st;    /* ATT_BC x ATT_BR: scores, then probabilities, transposed */
    float *ot;    /* dv x ATT_BR: output accumulator, transposed */
    float *m, *l; /* ATT_BR: running maximum and sum per query */
} att_scratch;

/* st[j][lanes c..c+16) for keys j0 + [0, mr): scale * k_j . q_lane (+ mask), -inf when hidden */
static inline __attribute__((always_inline)) void att_scores(const float *restrict kb, int64_t d,
                                                             const float *restrict qt, float *restrict st, int mr,
                                                             int64_t c, float scale, const att_mask *mk,
                                                             int64_t i0, int64_t j0, int64_t jmax, int causal,
                                                             int64_t offset) {
    nn_vf acc[ATT_MR][2];
    for (int r = 0; r < mr; ++r) {
        acc[r][0] = nn_set1(0.0f);
        acc[r][1] = nn_set1(0.0f);
    }
    const float *qp = qt + c;
    for (int64_t t = 0; t < d; ++t) {
        const nn_vf b0 = nn_load(qp + t * ATT_BR), b1 = nn_load(qp + t * ATT_BR + NN_VL);
        for (int r = 0; r < mr; ++r) {
            const nn_vf a = nn_set1(kb[r * d + t]);
            acc[r][0] += a * b0;
            acc[r][1] += a * b1;
        }
    }
    for (int r = 0; r < mr; ++r) {
        const int64_t j = j0 + r;
        for (int h = 0; h < 2; ++h) {
            const int64_t i = i0 + c + h * NN_VL; /* first query of the vector */
            nn_vf v = acc[r][h] * scale;
            if (mk->mask != NULL) {
                const float *mp = mk->mask + j * mk->sk;
                int64_t lanes = jmax - i > NN_VL ? NN_VL : jmax - i; /* query rows that exist */
                if (mk->sq == 0) {
                    v += nn_set1(mp[0]);
                } else if (mk->sq == 1 && lanes == NN_VL) {
                    v += nn_load(mp + i);
                } else {
                    float tmp[NN_VL] = {0.0f};
                    for (int64_t l = 0; l < lanes; ++l) {
                        tmp[l] = mp[(i + l) * mk->sq];
                    }
                    v += nn_load(tmp);
                }
            }
            if (causal) {
                /* key j is hidden from query i when j > i + offset */
                const nn_vi iv = (nn_vi){0, 1, 2, 3, 4, 5, 6, 7} + (int32_t)(i + offset - j);
                v = nn_sel(iv < 0, nn_set1(-INFINITY), v);
            }
            nn_store(st + r * ATT_BR + c + h * NN_VL, v);
        }
    }
}

/* ot[c0 + r][lanes] = alpha * ot[c0 + r][lanes] + sum_j v[j][c0 + r] * st[j][lanes], r < mr */
static inline __attribute__((always_inline)) void att_pv(const float *restrict vb, int64_t dv, int64_t bc,
                                                         const float *restrict st, float *restrict ot,
                                                         const float *restrict alpha, int mr, int64_t c0,
                                                         int64_t c) {
    nn_vf acc[ATT_MR][2];
    const nn_vf a0 = nn_load(alpha + c), a1 = nn_load(alpha + c + NN_VL);
    for (int r = 0; r < mr; ++r) {
        acc[r][0] = nn_load(ot + (c0 + r) * ATT_BR + c) * a0;
        acc[r][1] = nn_load(ot + (c0 + r) * ATT_BR + c + NN_VL) * a1;
    }
    for (int64_t j = 0; j < bc; ++j) {
        const nn_vf b0 = nn_load(st + j * ATT_BR + c), b1 = nn_load(st + j * ATT_BR + c + NN_VL);
        for (int r = 0; r < mr; ++r) {
            const nn_vf a = nn_set1(vb[j * dv + c0 + r]);
            acc[r][0] += a * b0;
            acc[r][1] += a * b1;
        }
    }
    for (int r = 0; r < mr; ++r) {
        nn_store(ot + (c0 + r) * ATT_BR + c, acc[r][0]);
        nn_store(ot + (c0 + r) * ATT_BR + c + NN_VL, acc[r][1]);
    }
}

#define ATT_SWITCH_MR(mr, CALL)                                                                      \
    switch (mr) {                                                                                    \
    case 1: CALL(1); break;                                                                          \
    case 2: CALL(2); break;                                                                          \
    case 3: CALL(3); break;                                                                          \
    case 4: CALL(4); break;                                                                          \
    case 5: CALL(5); break;                                                                          \
    default: CALL(6); break;                                                                         \
    }

static void att_task_f32(const float *q, const float *k, const float *v, float *out, int64_t lq, int64_t lk,
                         int64_t d, int64_t dv, float scale, int causal, const att_mask *mk, int64_t i0,
                         int64_t vend, const att_scratch *ws) {
    const int64_t br = lq - i0 < ATT_BR ? lq - i0 : ATT_BR;
    const int64_t offset = lk - lq; /* causal: key j visible from query i iff j <= i + offset */
    for (int64_t t = 0; t < d; ++t) {
        float *row = ws->qt + t * ATT_BR;
        for (int64_t i = 0; i < br; ++i) {
            row[i] = q[(i0 + i) * d + t];
        }
        for (int64_t i = br; i < ATT_BR; ++i) {
            row[i] = 0.0f;
        }
    }
    for (int64_t i = 0; i < ATT_BR; ++i) {
        ws->m[i] = -INFINITY;
        ws->l[i] = 0.0f;
    }
    for (int64_t t = 0; t < dv * ATT_BR; ++t) {
        ws->ot[t] = 0.0f;
    }
    int64_t kend = lk;
    if (causal) {
        const int64_t last = i0 + br - 1 + offset; /* last key any row of the task sees */
        kend = last < 0 ? 0 : (last + 1 < lk ? last + 1 : lk);
        kend = kend < vend ? vend : kend; /* a hidden key with a non-finite value still gives 0 * inf */
    }
    float alpha[ATT_BR] __attribute__((aligned(32)));
    for (int64_t j0 = 0; j0 < kend; j0 += ATT_BC) {
        const int64_t bc = kend - j0 < ATT_BC ? kend - j0 : ATT_BC;
        const float *kb = k + j0 * d, *vb = v + j0 * dv;
        /* scores, transposed: tiles of 6 keys x 16 queries */
        for (int64_t jj = 0; jj < bc; jj += ATT_MR) {
            const int mr = bc - jj < ATT_MR ? (int)(bc - jj) : ATT_MR;
            for (int64_t c = 0; c < ATT_BR; c += 2 * NN_VL) {
#define ATT_S(MR)                                                                                     \
    att_scores(kb + jj * d, d, ws->qt, ws->st + jj * ATT_BR, MR, c, scale, mk, i0, j0 + jj, lq, causal, \
               offset)
                ATT_SWITCH_MR(mr, ATT_S)
#undef ATT_S
            }
        }
        /* online softmax, one query per lane */
        for (int64_t c = 0; c < ATT_BR; c += NN_VL) {
            nn_vf mx = nn_set1(-INFINITY);
            for (int64_t j = 0; j < bc; ++j) {
                mx = nn_max_fast(nn_load(ws->st + j * ATT_BR + c), mx); /* NaN shows up through P */
            }
            const nn_vf m_old = nn_load(ws->m + c);
            const nn_vf m_new = nn_max_fast(mx, m_old);
            const nn_vf shift = nn_sel(m_new == -INFINITY, nn_set1(0.0f), m_new);
            const nn_vf al = nn_exp(m_old - shift);
            nn_vf sum = nn_set1(0.0f);
            for (int64_t j = 0; j < bc; ++j) {
                const nn_vf p = nn_exp_neg(nn_load(ws->st + j * ATT_BR + c) - shift);
                nn_store(ws->st + j * ATT_BR + c, p);
                sum += p;
            }
            nn_store(ws->l + c, nn_load(ws->l + c) * al + sum);
            nn_store(ws->m + c, m_new);
            nn_store(alpha + c, al);
        }
        /* output, transposed: tiles of 6 value columns x 16 queries */
        for (int64_t c0 = 0; c0 < dv; c0 += ATT_MR) {
            const int mr = dv - c0 < ATT_MR ? (int)(dv - c0) : ATT_MR;
            for (int64_t c = 0; c < ATT_BR; c += 2 * NN_VL) {
#define ATT_O(MR) att_pv(vb, dv, bc, ws->st, ws->ot, alpha, MR, c0, c)
                ATT_SWITCH_MR(mr, ATT_O)
#undef ATT_O
            }
        }
    }
    for (int64_t i = 0; i < br; ++i) {
        const float l = ws->l[i]; /* 0 when no key was visible: 0 / 0 = NaN */
        const float inv = 1.0f / l;
        float *dst = out + (i0 + i) * dv;
        for (int64_t c = 0; c < dv; ++c) {
            const float o = ws->ot[c * ATT_BR + i];
            dst[c] = l > 0.0f ? o * inv : o / l;
        }
    }
}

/* Causal attention skips the keys a query cannot see, but the reference multiplies their zero
 * probabilities by their values, so a non-finite value (0 * inf = NaN) still reaches every
 * query. For each of the nbh heads: 1 + the last key whose value row is not finite, or 0. */
#define ATT_VALUE_ENDS(T, SUFFIX)                                                                  \
    static int64_t *att_value_ends_##SUFFIX(const T *v, int64_t nbh, int64_t lk, int64_t dv) {     \
        int64_t *ends = (int64_t *)malloc((size_t)(nbh > 0 ? nbh : 1) * sizeof(int64_t));         \
        if (ends == NULL) {                                                                        \
            return NULL;                                                                           \
        }                                                                                          \
        for (int64_t bh = 0; bh < nbh; ++bh) {                                                     \
            ends[bh] = 0;                                                                          \
            for (int64_t j = lk - 1; j >= 0 && ends[bh] == 0; --j) {                               \
                const T *row = v + (bh * lk + j) * dv;                                             \
                T acc = 0;                                                                         \
                for (int64_t c = 0; c < dv; ++c) {                                                 \
                    acc += row[c] * (T)0; /* NaN iff some value is NaN or infinite */            \
                }                                                                                  \
                if (acc != acc) {                                                                  \
                    ends[bh] = j + 1;                                                              \
                }                                                                                  \
            }                                                                                      \
        }                                                                                          \
        return ends;                                                                               \
    }
ATT_VALUE_ENDS(float, f32)
ATT_VALUE_ENDS(double, f64)
#undef ATT_VALUE_ENDS

static int att_check(const void *q, const void *k, const void *v, const void *mask, const void *out, int64_t batch,
                     int64_t heads, int64_t lq, int64_t lk, int64_t d, int64_t dv, int causal, int64_t sb,
                     int64_t sh, int64_t sq, int64_t sk, size_t elem) {
    int64_t nq, nk, nv, no;
    if (!NN_NUMEL(&nq, elem, batch, heads, lq, d) || !NN_NUMEL(&nk, elem, batch, heads, lk, d) ||
        !NN_NUMEL(&nv, elem, batch, heads, lk, dv) || !NN_NUMEL(&no, elem, batch, heads, lq, dv)) {
        return AXIOM_ERR_SIZE;
    }
    if (causal != 0 && causal != 1) {
        return AXIOM_ERR_SIZE;
    }
    if (mask != NULL && !nn_strided_span_ok((const int64_t[4]){batch, heads, lq, lk}, (const int64_t[4]){sb, sh, sq, sk},
                                            elem)) {
        return AXIOM_ERR_SIZE; /* the furthest mask element must be addressable */
    }
    if ((nq > 0 && q == NULL) || (nk > 0 && k == NULL) || (nv > 0 && v == NULL) || (no > 0 && out == NULL)) {
        return AXIOM_ERR_NULL;
    }
    return AXIOM_OK;
}

AXIOM_API int axiom_attention_f32(const float *q, const float *k, const float *v, const float *mask, float *out,
                                  int64_t batch, int64_t heads, int64_t lq, int64_t lk, int64_t d, int64_t dv,
                                  double scale, int causal, int64_t mask_sb, int64_t mask_sh, int64_t mask_sq,
                                  int64_t mask_sk) {
    const int rc = att_check(q, k, v, mask, out, batch, heads, lq, lk, d, dv, causal, mask_sb, mask_sh, mask_sq,
                             mask_sk, sizeof(float));
    if (rc != AXIOM_OK || batch * heads * lq * dv == 0) {
        return rc;
    }
    const int64_t nqb = (lq + ATT_BR - 1) / ATT_BR;
    const int64_t ntasks = batch * heads * nqb;
    const double work = (double)batch * (double)heads * (double)lq * (double)lk * (double)(d + dv);
    const int par = ntasks > 1 && work >= (double)NN_PAR_FLOPS;
    const size_t floats = ((size_t)d + ATT_BC + (size_t)dv + 2) * ATT_BR;
    int64_t *vend = causal ? att_value_ends_f32(v, batch * heads, lk, dv) : NULL;
    if (causal && vend == NULL) {
        return NN_ERR_NOMEM;
    }
    int failed = 0;
#pragma omp parallel if (par)
    {
        float *buf = (float *)aligned_alloc(64, (floats * sizeof(float) + 63) / 64 * 64);
        if (buf == NULL) {
#pragma omp atomic write
            failed = 1;
        } else {
            att_scratch ws;
            ws.qt = buf;
            ws.st = ws.qt + d * ATT_BR;
            ws.ot = ws.st + ATT_BC * ATT_BR;
            ws.m = ws.ot + dv * ATT_BR;
            ws.l = ws.m + ATT_BR;
#pragma omp for schedule(dynamic, 1)
            for (int64_t t = 0; t < ntasks; ++t) {
                const int64_t bh = t / nqb, b = bh / heads, h = bh % heads;
                att_mask mk = {NULL, 0, 0};
                if (mask != NULL) {
                    mk.mask = mask + b * mask_sb + h * mask_sh;
                    mk.sq = mask_sq;
                    mk.sk = mask_sk;
                }
                att_task_f32(q + bh * lq * d, k + bh * lk * d, v + bh * lk * dv, out + bh * lq * dv, lq, lk, d, dv,
                             (float)scale, causal, &mk, (t % nqb) * ATT_BR, vend != NULL ? vend[bh] : 0, &ws);
            }
            free(buf);
        }
    }
    free(vend);
    return failed ? NN_ERR_NOMEM : AXIOM_OK;
}

/* ---- float64: per query row, keys in blocks -------------------------------------------------- */

#define ATT64_BC 64

AXIOM_API int axiom_attention_f64(const double *q, const double *k, const double *v, const double *mask,
                                  double *out, int64_t batch, int64_t heads, int64_t lq, int64_t lk, int64_t d,
                                  int64_t dv, double scale, int causal, int64_t mask_sb, int64_t mask_sh,
                                  int64_t mask_sq, int64_t mask_sk) {
    const int rc = att_check(q, k, v, mask, out, batch, heads, lq, lk, d, dv, causal, mask_sb, mask_sh, mask_sq,
                             mask_sk, sizeof(double));
    if (rc != AXIOM_OK || batch * heads * lq * dv == 0) {
        return rc;
    }
    const double work = (double)batch * (double)heads * (double)lq * (double)lk * (double)(d + dv);
    const int par = batch * heads * lq > 1 && work >= (double)NN_PAR_FLOPS;
    const int64_t offset = lk - lq;
    int64_t *vend = causal ? att_value_ends_f64(v, batch * heads, lk, dv) : NULL;
    if (causal && vend == NULL) {
        return NN_ERR_NOMEM;
    }
#pragma omp parallel for schedule(dynamic, 16) if (par)
    for (int64_t t = 0; t < batch * heads * lq; ++t) {
        const int64_t bh = t / lq, i = t % lq, b = bh / heads, h = bh % heads;
        const double *qi = q + t * d;
        const double *kh = k + bh * lk * d, *vh = v + bh * lk * dv;
        double *o = out + t * dv;
        double m = -INFINITY, l = 0.0, s[ATT64_BC];
        for (int64_t c = 0; c < dv; ++c) {
            o[c] = 0.0;
        }
        int64_t end = lk, visible = lk; /* keys scanned; keys visible to query i */
        if (causal) {
            visible = i + offset + 1 < 0 ? 0 : (i + offset + 1 < lk ? i + offset + 1 : lk);
            end = visible < vend[bh] ? vend[bh] : visible;
        }
        for (int64_t j0 = 0; j0 < end; j0 += ATT64_BC) {
            const int64_t bc = end - j0 < ATT64_BC ? end - j0 : ATT64_BC;
            double bmax = -INFINITY;
            for (int64_t j = 0; j < bc; ++j) {
                const double *kj = kh + (j0 + j) * d;
                double acc = 0.0;
#pragma omp simd reduction(+ : acc)
                for (int64_t c = 0; c < d; ++c) {
                    acc += qi[c] * kj[c];
                }
                acc *= scale;
                if (mask != NULL) {
                    acc += mask[b * mask_sb + h * mask_sh + i * mask_sq + (j0 + j) * mask_sk];
                }
                if (j0 + j >= visible) {
                    acc = -INFINITY; /* hidden (scanned only for its non-finite value) */
                }
                s[j] = acc;
                bmax = acc > bmax ? acc : bmax;
            }
            const double m_new = m > bmax ? m : bmax;
            const double shift = m_new == -INFINITY ? 0.0 : m_new;
            const double alpha = exp(m - shift);
            l *= alpha;
            for (int64_t c = 0; c < dv; ++c) {
                o[c] *= alpha;
            }
            for (int64_t j = 0; j < bc; ++j) {
                const double p = exp(s[j] - shift);
                const double *vj = vh + (j0 + j) * dv;
                l += p;
#pragma omp simd
                for (int64_t c = 0; c < dv; ++c) {
                    o[c] += p * vj[c];
                }
            }
            m = m_new;
        }
        for (int64_t c = 0; c < dv; ++c) {
            o[c] /= l;
        }
    }
    free(vend);
    return AXIOM_OK;
}
