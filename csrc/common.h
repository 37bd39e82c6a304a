/*
 * common.h - helpers shared by the C kernels (not part of the ABI).
 */
#ifndef AXIOM_COMMON_H
#define AXIOM_COMMON_H

#include <stddef.h>
#include <stdint.h>

#include "axiom_kernels.h"

/* 1 when rows x cols elements of elem_size bytes fit in memory (count * elem_size <=
 * INT64_MAX and <= SIZE_MAX), with rows, cols >= 0; stores the element count in *count. */
static inline int axiom_count_ok(int64_t rows, int64_t cols, size_t elem_size, int64_t *count) {
    if (rows < 0 || cols < 0) {
        return 0;
    }
    int64_t limit = INT64_MAX / (int64_t)elem_size;
    if ((uint64_t)limit > (uint64_t)(SIZE_MAX / elem_size)) {
        limit = (int64_t)(SIZE_MAX / elem_size);
    }
    if (rows != 0 && cols > limit / rows) {
        return 0;
    }
    *count = rows * cols;
    return 1;
}

/* Validate the arguments of an (m x k) @ (k x n) -> (m x n) kernel: AXIOM_OK or an error code. */
static inline int axiom_check_matmul(const void *a, const void *b, const void *c, int64_t m, int64_t k, int64_t n,
                                     size_t elem_size) {
    int64_t na, nb, nc;
    if (!axiom_count_ok(m, k, elem_size, &na) || !axiom_count_ok(k, n, elem_size, &nb) ||
        !axiom_count_ok(m, n, elem_size, &nc)) {
        return AXIOM_ERR_SIZE;
    }
    if ((na > 0 && a == NULL) || (nb > 0 && b == NULL) || (nc > 0 && c == NULL)) {
        return AXIOM_ERR_NULL;
    }
    return AXIOM_OK;
}

#endif /* AXIOM_COMMON_H */
