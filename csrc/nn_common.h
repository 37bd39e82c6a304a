/*
 * nn_common.h - argument checks and threading thresholds shared by csrc/nn_*.c (not ABI).
 */
#ifndef AXIOM_NN_COMMON_H
#define AXIOM_NN_COMMON_H

#include <stddef.h>
#include <stdint.h>

#include "axiom_kernels.h"
#include "axiom_kernels_nn.h"
#include "common.h"

/* AXIOM_ERR_NOMEM of axiom_kernels.h: scratch memory could not be allocated. */
#define NN_ERR_NOMEM 3

/* OpenMP kicks in only above these amounts of work (elements touched; multiply-adds for
 * attention), so small calls never pay for a parallel region. libgomp's waiting policy is
 * set to PASSIVE by axiom.backends.c_kernels before the library loads (no spin-waiting). */
#define NN_PAR_ELEMS (1 << 20)      /* memory-bound ops: ~4 MB of float32 */
#define NN_PAR_ELEMS_MATH (1 << 16) /* element-wise ops with transcendental math */
#define NN_PAR_FLOPS (1 << 22)      /* attention multiply-adds */

/* *count = product of dims[0..nd) if every dim is >= 0 and the product of the non-zero dims
 * times elem bytes fits in int64 and size_t (so no index product can overflow); else 0. */
static inline int nn_numel(const int64_t *dims, int nd, size_t elem, int64_t *count) {
    int64_t limit = INT64_MAX / (int64_t)elem;
    if ((uint64_t)limit > (uint64_t)(SIZE_MAX / elem)) {
        limit = (int64_t)(SIZE_MAX / elem);
    }
    int64_t prod = 1;
    int zero = 0;
    for (int i = 0; i < nd; ++i) {
        if (dims[i] < 0) {
            return 0;
        }
        if (dims[i] == 0) {
            zero = 1;
            continue;
        }
        if (prod > limit / dims[i]) {
            return 0;
        }
        prod *= dims[i];
    }
    *count = zero ? 0 : prod;
    return 1;
}

#define NN_NUMEL(count, elem, ...)                                                                         \
    nn_numel((const int64_t[]){__VA_ARGS__}, (int)(sizeof((const int64_t[]){__VA_ARGS__}) / sizeof(int64_t)), \
             (elem), (count))

/* 1 if the furthest element of a 4-D strided view (extents ext, element strides str >= 0) is
 * addressable in int64 bytes of elem-sized items; 0 on a size error. (Attention masks.) */
static inline int nn_strided_span_ok(const int64_t ext[4], const int64_t str[4], size_t elem) {
    int64_t span = 0;
    for (int a = 0; a < 4; ++a) {
        int64_t t;
        if (str[a] < 0 ||
            (ext[a] > 0 && (__builtin_mul_overflow(ext[a] - 1, str[a], &t) || __builtin_add_overflow(span, t, &span)))) {
            return 0;
        }
    }
    return span <= INT64_MAX / (int64_t)elem;
}

/* Output extent of a pooling axis: 1 on success with *out set, 0 on a size error. */
static inline int nn_pool_extent(int64_t in, int64_t k, int64_t s, int64_t p0, int64_t p1, int64_t dil,
                                 int64_t *out) {
    if (in < 0 || k < 1 || s < 1 || dil < 1 || p0 < 0 || p1 < 0) {
        return 0;
    }
    int64_t padded, span;
    if (__builtin_add_overflow(in, p0, &padded) || __builtin_add_overflow(padded, p1, &padded) ||
        __builtin_mul_overflow(dil, k - 1, &span) || __builtin_add_overflow(span, 1, &span)) {
        return 0;
    }
    *out = padded < span ? 0 : (padded - span) / s + 1;
    return 1;
}

#endif /* AXIOM_NN_COMMON_H */
