# Cython declarations of the NN kernels in csrc/axiom_kernels_nn.h.
from libc.stdint cimport int64_t


cdef extern from "axiom_kernels_nn.h" nogil:
    enum:
        AXIOM_ACT_COUNT

    int axiom_batchnorm_f32(const float *x, const float *mean, const float *var, const float *gamma,
                            const float *beta, float *y, int64_t rows, int64_t c, double eps)
    int axiom_batchnorm_f64(const double *x, const double *mean, const double *var, const double *gamma,
                            const double *beta, double *y, int64_t rows, int64_t c, double eps)
    int axiom_layernorm_f32(const float *x, const float *gamma, const float *beta, float *y, int64_t rows,
                            int64_t n, double eps)
    int axiom_layernorm_f64(const double *x, const double *gamma, const double *beta, double *y, int64_t rows,
                            int64_t n, double eps)
    int axiom_rmsnorm_f32(const float *x, const float *gamma, float *y, int64_t rows, int64_t n, double eps)
    int axiom_rmsnorm_f64(const double *x, const double *gamma, double *y, int64_t rows, int64_t n, double eps)
    int axiom_batchnorm_backward_f32(const float *dy, const float *x, const float *mean, const float *var,
                                     const float *gamma, float *dx, float *dgamma, float *dbeta, int64_t rows,
                                     int64_t c, double eps)
    int axiom_batchnorm_backward_f64(const double *dy, const double *x, const double *mean, const double *var,
                                     const double *gamma, double *dx, double *dgamma, double *dbeta, int64_t rows,
                                     int64_t c, double eps)
    int axiom_layernorm_backward_f32(const float *dy, const float *x, const float *gamma, float *dx, float *dgamma,
                                     float *dbeta, int64_t rows, int64_t n, double eps)
    int axiom_layernorm_backward_f64(const double *dy, const double *x, const double *gamma, double *dx,
                                     double *dgamma, double *dbeta, int64_t rows, int64_t n, double eps)
    int axiom_rmsnorm_backward_f32(const float *dy, const float *x, const float *gamma, float *dx, float *dgamma,
                                   int64_t rows, int64_t n, double eps)
    int axiom_rmsnorm_backward_f64(const double *dy, const double *x, const double *gamma, double *dx,
                                   double *dgamma, int64_t rows, int64_t n, double eps)

    int axiom_max_pool2d_f32(const float *x, float *y, int64_t n, int64_t h, int64_t w, int64_t c, int64_t kh,
                             int64_t kw, int64_t sh, int64_t sw, int64_t pt, int64_t pb, int64_t pl, int64_t pr,
                             int64_t dh, int64_t dw)
    int axiom_max_pool2d_f64(const double *x, double *y, int64_t n, int64_t h, int64_t w, int64_t c, int64_t kh,
                             int64_t kw, int64_t sh, int64_t sw, int64_t pt, int64_t pb, int64_t pl, int64_t pr,
                             int64_t dh, int64_t dw)
    int axiom_avg_pool2d_f32(const float *x, float *y, int64_t n, int64_t h, int64_t w, int64_t c, int64_t kh,
                             int64_t kw, int64_t sh, int64_t sw, int64_t pt, int64_t pb, int64_t pl, int64_t pr,
                             int count_include_pad)
    int axiom_avg_pool2d_f64(const double *x, double *y, int64_t n, int64_t h, int64_t w, int64_t c, int64_t kh,
                             int64_t kw, int64_t sh, int64_t sw, int64_t pt, int64_t pb, int64_t pl, int64_t pr,
                             int count_include_pad)
    int axiom_global_avg_pool_f32(const float *x, float *y, int64_t n, int64_t hw, int64_t c)
    int axiom_global_avg_pool_f64(const double *x, double *y, int64_t n, int64_t hw, int64_t c)
    int axiom_max_pool2d_backward_f32(const float *x, const float *dy, float *dx, int64_t n, int64_t h, int64_t w,
                                      int64_t c, int64_t kh, int64_t kw, int64_t sh, int64_t sw, int64_t pt,
                                      int64_t pb, int64_t pl, int64_t pr, int64_t dh, int64_t dw)
    int axiom_max_pool2d_backward_f64(const double *x, const double *dy, double *dx, int64_t n, int64_t h,
                                      int64_t w, int64_t c, int64_t kh, int64_t kw, int64_t sh, int64_t sw,
                                      int64_t pt, int64_t pb, int64_t pl, int64_t pr, int64_t dh, int64_t dw)
    int axiom_avg_pool2d_backward_f32(const float *dy, float *dx, int64_t n, int64_t h, int64_t w, int64_t c,
                                      int64_t kh, int64_t kw, int64_t sh, int64_t sw, int64_t pt, int64_t pb,
                                      int64_t pl, int64_t pr, int count_include_pad)
    int axiom_avg_pool2d_backward_f64(const double *dy, double *dx, int64_t n, int64_t h, int64_t w, int64_t c,
                                      int64_t kh, int64_t kw, int64_t sh, int64_t sw, int64_t pt, int64_t pb,
                                      int64_t pl, int64_t pr, int count_include_pad)

    int axiom_softmax_f32(const float *x, float *y, int64_t outer, int64_t n, int64_t inner, int log)
    int axiom_softmax_f64(const double *x, double *y, int64_t outer, int64_t n, int64_t inner, int log)
    int axiom_softmax_backward_f32(const float *y, const float *dy, float *dx, int64_t outer, int64_t n,
                                   int64_t inner, int log)
    int axiom_softmax_backward_f64(const double *y, const double *dy, double *dx, int64_t outer, int64_t n,
                                   int64_t inner, int log)
    int axiom_activation_f32(const float *x, float *y, int64_t n, int act, double alpha)
    int axiom_activation_f64(const double *x, double *y, int64_t n, int act, double alpha)
    int axiom_activation_backward_f32(const float *dy, const float *x, float *dx, int64_t n, int act, double alpha)
    int axiom_activation_backward_f64(const double *dy, const double *x, double *dx, int64_t n, int act,
                                      double alpha)

    int axiom_attention_f32(const float *q, const float *k, const float *v, const float *mask, float *out,
                            int64_t batch, int64_t heads, int64_t lq, int64_t lk, int64_t d, int64_t dv,
                            double scale, int causal, int64_t mask_sb, int64_t mask_sh, int64_t mask_sq,
                            int64_t mask_sk)
    int axiom_attention_f64(const double *q, const double *k, const double *v, const double *mask, double *out,
                            int64_t batch, int64_t heads, int64_t lq, int64_t lk, int64_t d, int64_t dv,
                            double scale, int causal, int64_t mask_sb, int64_t mask_sh, int64_t mask_sq,
                            int64_t mask_sk)
    int axiom_attention_backward_f32(const float *gout, const float *q, const float *k, const float *v,
                                     const float *mask, float *gq, float *gk, float *gv, int64_t batch,
                                     int64_t heads, int64_t lq, int64_t lk, int64_t d, int64_t dv, double scale,
                                     int causal, int64_t mask_sb, int64_t mask_sh, int64_t mask_sq, int64_t mask_sk)
    int axiom_attention_backward_f64(const double *gout, const double *q, const double *k, const double *v,
                                     const double *mask, double *gq, double *gk, double *gv, int64_t batch,
                                     int64_t heads, int64_t lq, int64_t lk, int64_t d, int64_t dv, double scale,
                                     int causal, int64_t mask_sb, int64_t mask_sh, int64_t mask_sq, int64_t mask_sk)
    int axiom_rope_f32(const float *x, const double *positions, float *y, int64_t outer, int64_t seq, int64_t d,
                       double base)
    int axiom_rope_f64(const double *x, const double *positions, double *y, int64_t outer, int64_t seq, int64_t d,
                       double base)
