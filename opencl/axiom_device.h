/*
 * axiom_device.h - the OpenCL C side of axiom's portable device dialect.
 *
 * The kernel bodies are written once, in cuda/<family>.cu, against these macros (see
 * cuda/axiom_device.cuh for the list); opencl/<family>.cl includes this header and then that
 * body. axiom's loader (axiom/backends/gpu/sources.py) resolves the quoted #includes itself,
 * so the program text needs no include path. -DAXIOM_DOUBLE selects float64 (needs cl_khr_fp64).
 */
#ifndef AXIOM_DEVICE_H
#define AXIOM_DEVICE_H
#define AXIOM_DEVICE_DIALECT 1
#define AXIOM_OPENCL 1

#ifdef AXIOM_DOUBLE
#pragma OPENCL EXTENSION cl_khr_fp64 : enable
typedef double real;
#else
typedef float real;
#endif
typedef long idx_t;

#define KERNEL __kernel
#define GLOBAL __global
#define LOCAL __local
#define LOCAL_PTR __local
#define DEVICE static inline
#define RESTRICT restrict
#define BARRIER() barrier(CLK_LOCAL_MEM_FENCE)

#define LOCAL_ID(d) ((int)get_local_id(d))
#define GROUP_ID(d) ((int)get_group_id(d))
#define LOCAL_SIZE(d) ((int)get_local_size(d))
#define NUM_GROUPS(d) ((int)get_num_groups(d))
#define GLOBAL_ID(d) ((idx_t)get_group_id(d) * (idx_t)get_local_size(d) + (idx_t)get_local_id(d))

#define REAL_INF ((real)INFINITY)
#define REAL_NAN ((real)NAN)

#define EXP(x) exp(x)
#define EXPM1(x) expm1(x)
#define LOG(x) log(x)
#define LOG1P(x) log1p(x)
#define SQRT(x) sqrt(x)
#define RSQRT(x) rsqrt(x)
#define TANH(x) tanh(x)
#define ERF(x) erf(x)
#define ERFC(x) erfc(x)
#define FABS(x) fabs(x)
#define FMAX(x, y) fmax(x, y)
#define FMIN(x, y) fmin(x, y)
#define FMA(x, y, z) fma(x, y, z)
#define POW(x, y) pow(x, y)
#define FLOOR(x) floor(x)
#define COS(x) cos(x)
#define SIN(x) sin(x)
#ifdef AXIOM_DOUBLE
#define COS64(x) cos((double)(x))
#define SIN64(x) sin((double)(x))
#else
/* without cl_khr_fp64 there is no double: RoPE angles are then computed in float32 */
#define COS64(x) cos(x)
#define SIN64(x) sin(x)
#endif
#define ISNAN(x) ((x) != (x))

#endif /* AXIOM_DEVICE_H */
