/*
 * nn_norm_impl.h - type-generic norm kernels, included by nn_norm.c once per element type.
 *
 * Before including, define NN_T (float or double) and NN_S(name) (appends _f32 or _f64).
 * Defines the float64 forward kernels (NN_FORWARD set) and the backward kernels of both
 * types. Loops are plain C with `omp simd` reductions, so gcc vectorises them; partial sums
 * for dgamma / dbeta are kept in double, one buffer per thread.
 */

#ifdef NN_FORWARD
static void NN_S(layernorm_row)(const NN_T *restrict x, const NN_T *restrict gamma, const NN_T *restrict beta,
                                NN_T *restrict y, int64_t n, double eps) {
    NN_T s = 0;
#pragma omp simd reduction(+ : s)
    for (int64_t i = 0; i < n; ++i) {
        s += x[i];
    }
    const NN_T mean = s / (NN_T)n;
    NN_T v = 0;
#pragma omp simd reduction(+ : v)
    for (int64_t i = 0; i < n; ++i) {
        v += (x[i] - mean) * (x[i] - mean);
    }
    const NN_T rstd = (NN_T)1 / (NN_T)sqrt((double)(v / (NN_T)n) + eps);
    for (int64_t i = 0; i < n; ++i) {
        NN_T t = (x[i] - mean) * rstd;
        if (gamma) {
            t *= gamma[i];
        }
        if (beta) {
            t += beta[i];
        }
        y[i] = t;
    }
}

static void NN_S(rmsnorm_row)(const NN_T *restrict x, const NN_T *restrict gamma, NN_T *restrict y, int64_t n,
                              double eps) {
    NN_T s = 0;
#pragma omp simd reduction(+ : s)
    for (int64_t i = 0; i < n; ++i) {
        s += x[i] * x[i];
    }
    const NN_T r = (NN_T)1 / (NN_T)sqrt((double)(s / (NN_T)n) + eps);
    for (int64_t i = 0; i < n; ++i) {
        y[i] = gamma ? x[i] * r * gamma[i] : x[i] * r;
    }
}

static void NN_S(batchnorm_rows)(const NN_T *restrict x, const NN_T *restrict mean, const NN_T *restrict scale,
                                 const NN_T *restrict beta, NN_T *restrict y, int64_t r0, int64_t r1, int64_t c) {
    for (int64_t r = r0; r < r1; ++r) {
        const NN_T *xr = x + r * c;
        NN_T *yr = y + r * c;
        if (beta) {
#pragma omp simd
            for (int64_t j = 0; j < c; ++j) {
                yr[j] = (xr[j] - mean[j]) * scale[j] + beta[j];
            }
        } else {
#pragma omp simd
            for (int64_t j = 0; j < c; ++j) {
                yr[j] = (xr[j] - mean[j]) * scale[j];
            }
        }
    }
}
#endif /* NN_FORWARD */

/* Partial sums over rows into one double buffer per thread, added up under a lock. */
#define NN_NORM_BACKWARD_BEGIN(nsums, width)                                                \
    int failed = 0;                                                                         \
    double *total = NULL;                                                                   \
    if ((nsums) > 0) {                                                                      \
        total = (double *)calloc((size_t)(nsums) * (size_t)(width), sizeof(double));        \
        if (total == NULL) {                                                                \
            return NN_ERR_NOMEM;                                                         \
        }                                                                                   \
    }

static int NN_S(layernorm_backward_impl)(const NN_T *dy, const NN_T *x, const NN_T *gamma, NN_T *dx, NN_T *dgamma,
                                         NN_T *dbeta, int64_t rows, int64_t n, double eps) {
    const int nsums = (dgamma != NULL) + (dbeta != NULL);
    NN_NORM_BACKWARD_BEGIN(nsums, n)
    const int par = rows > 1 && rows * n >= NN_PAR_ELEMS;
#pragma omp parallel if (par)
    {
        double *part = nsums > 0 ? (double *)calloc((size_t)nsums * (size_t)n, sizeof(double)) : NULL;
        double *pg = part, *pb = part + (dgamma != NULL ? n : 0);
        if (nsums > 0 && part == NULL) {
#pragma omp atomic write
            failed = 1;
        }
#pragma omp for schedule(static)
        for (int64_t r = 0; r < rows; ++r) {
            const NN_T *xr = x + r * n, *gr = dy + r * n;
            NN_T *dxr = dx + r * n;
            NN_T s = 0;
#pragma omp simd reduction(+ : s)
            for (int64_t i = 0; i < n; ++i) {
                s += xr[i];
            }
            const NN_T mean = s / (NN_T)n;
            NN_T v = 0;
#pragma omp simd reduction(+ : v)
            for (int64_t i = 0; i < n; ++i) {
                v += (xr[i] - mean) * (xr[i] - mean);
            }
            const NN_T rstd = (NN_T)1 / (NN_T)sqrt((double)(v / (NN_T)n) + eps);
            NN_T a = 0, b = 0; /* sums of g and of g * xhat, with g = dy * gamma */
#pragma omp simd reduction(+ : a, b)
            for (int64_t i = 0; i < n; ++i) {
                const NN_T g = gamma ? gr[i] * gamma[i] : gr[i];
                a += g;
                b += g * (xr[i] - mean) * rstd;
            }
            a /= (NN_T)n;
            b /= (NN_T)n;
#pragma omp simd
            for (int64_t i = 0; i < n; ++i) {
                const NN_T g = gamma ? gr[i] * gamma[i] : gr[i];
                const NN_T xhat = (xr[i] - mean) * rstd;
                dxr[i] = rstd * ((g - a) - xhat * b);
            }
            if (part != NULL) {
                if (dgamma != NULL) {
#pragma omp simd
                    for (int64_t i = 0; i < n; ++i) {
                        pg[i] += (double)(gr[i] * ((xr[i] - mean) * rstd));
                    }
                }
                if (dbeta != NULL) {
#pragma omp simd
                    for (int64_t i = 0; i < n; ++i) {
                        pb[i] += (double)gr[i];
                    }
                }
            }
        }
        if (part != NULL) {
#pragma omp critical(axiom_nn_norm_sum)
            for (int64_t i = 0; i < nsums * n; ++i) {
                total[i] += part[i];
            }
            free(part);
        }
    }
    if (nsums > 0) {
        for (int64_t i = 0; i < n; ++i) {
            if (dgamma != NULL) {
                dgamma[i] = (NN_T)total[i];
            }
            if (dbeta != NULL) {
                dbeta[i] = (NN_T)total[(dgamma != NULL ? n : 0) + i];
            }
        }
        free(total);
    }
    return failed ? NN_ERR_NOMEM : AXIOM_OK;
}

static int NN_S(rmsnorm_backward_impl)(const NN_T *dy, const NN_T *x, const NN_T *gamma, NN_T *dx, NN_T *dgamma,
                                       int64_t rows, int64_t n, double eps) {
    const int nsums = dgamma != NULL;
    NN_NORM_BACKWARD_BEGIN(nsums, n)
    const int par = rows > 1 && rows * n >= NN_PAR_ELEMS;
#pragma omp parallel if (par)
    {
        double *part = nsums > 0 ? (double *)calloc((size_t)n, sizeof(double)) : NULL;
        if (nsums > 0 && part == NULL) {
#pragma omp atomic write
            failed = 1;
        }
#pragma omp for schedule(static)
        for (int64_t r = 0; r < rows; ++r) {
            const NN_T *xr = x + r * n, *gr = dy + r * n;
            NN_T *dxr = dx + r * n;
            NN_T s = 0;
#pragma omp simd reduction(+ : s)
            for (int64_t i = 0; i < n; ++i) {
                s += xr[i] * xr[i];
            }
            const NN_T rs = (NN_T)1 / (NN_T)sqrt((double)(s / (NN_T)n) + eps);
            NN_T b = 0; /* sum of g * x */
#pragma omp simd reduction(+ : b)
            for (int64_t i = 0; i < n; ++i) {
                b += (gamma ? gr[i] * gamma[i] : gr[i]) * xr[i];
            }
            const NN_T c = b / (NN_T)n * rs * rs * rs;
#pragma omp simd
            for (int64_t i = 0; i < n; ++i) {
                const NN_T g = gamma ? gr[i] * gamma[i] : gr[i];
                dxr[i] = rs * g - xr[i] * c;
            }
            if (part != NULL) {
#pragma omp simd
                for (int64_t i = 0; i < n; ++i) {
                    part[i] += (double)(gr[i] * (xr[i] * rs));
                }
            }
        }
        if (part != NULL) {
#pragma omp critical(axiom_nn_norm_sum)
            for (int64_t i = 0; i < n; ++i) {
                total[i] += part[i];
            }
            free(part);
        }
    }
    if (nsums > 0) {
        for (int64_t i = 0; i < n; ++i) {
            dgamma[i] = (NN_T)total[i];
        }
        free(total);
    }
    return failed ? NN_ERR_NOMEM : AXIOM_OK;
}

static int NN_S(batchnorm_backward_impl)(const NN_T *dy, const NN_T *x, const NN_T *mean, const NN_T *var,
                                         const NN_T *gamma, NN_T *dx, NN_T *dgamma, NN_T *dbeta, int64_t rows,
                                         int64_t c, double eps) {
    const int nsums = (dgamma != NULL) + (dbeta != NULL);
    NN_NORM_BACKWARD_BEGIN(nsums, c)
    NN_T *inv = (NN_T *)malloc((size_t)(c > 0 ? c : 1) * 2 * sizeof(NN_T));
    if (inv == NULL) {
        free(total);
        return NN_ERR_NOMEM;
    }
    NN_T *sc = inv + c; /* gamma / sqrt(var + eps) */
    for (int64_t j = 0; j < c; ++j) {
        inv[j] = (NN_T)(1.0 / sqrt((double)var[j] + eps));
        sc[j] = gamma ? gamma[j] * inv[j] : inv[j];
    }
    const int par = rows > 1 && rows * c >= NN_PAR_ELEMS;
#pragma omp parallel if (par)
    {
        double *part = nsums > 0 ? (double *)calloc((size_t)nsums * (size_t)c, sizeof(double)) : NULL;
        double *pg = part, *pb = part + (dgamma != NULL ? c : 0);
        if (nsums > 0 && part == NULL) {
#pragma omp atomic write
            failed = 1;
        }
#pragma omp for schedule(static)
        for (int64_t r = 0; r < rows; ++r) {
            const NN_T *xr = x + r * c, *gr = dy + r * c;
            NN_T *dxr = dx + r * c;
#pragma omp simd
            for (int64_t j = 0; j < c; ++j) {
                dxr[j] = gr[j] * sc[j];
            }
            if (part != NULL) {
                if (dgamma != NULL) {
#pragma omp simd
                    for (int64_t j = 0; j < c; ++j) {
                        pg[j] += (double)(gr[j] * ((xr[j] - mean[j]) * inv[j]));
                    }
                }
                if (dbeta != NULL) {
#pragma omp simd
                    for (int64_t j = 0; j < c; ++j) {
                        pb[j] += (double)gr[j];
                    }
                }
            }
        }
        if (part != NULL) {
#pragma omp critical(axiom_nn_norm_sum)
            for (int64_t j = 0; j < nsums * c; ++j) {
                total[j] += part[j];
            }
            free(part);
        }
    }
    if (nsums > 0) {
        for (int64_t j = 0; j < c; ++j) {
            if (dgamma != NULL) {
                dgamma[j] = (NN_T)total[j];
            }
            if (dbeta != NULL) {
                dbeta[j] = (NN_T)total[(dgamma != NULL ? c : 0) + j];
            }
        }
        free(total);
    }
    free(inv);
    return failed ? NN_ERR_NOMEM : AXIOM_OK;
}

#undef NN_NORM_BACKWARD_BEGIN
