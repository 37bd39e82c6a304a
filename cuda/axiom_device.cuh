/*
 * axiom_device.cuh - the CUDA side of axiom's portable device dialect.
 *
 * Every GPU kernel of axiom is written once, in cuda/<family>.cu, against the macros below;
 * opencl/axiom_device.h defines the same macros for OpenCL C and opencl/<family>.cl includes
 * the same body. So the kernels that PoCL runs in CI on the CPU are the kernels PyCUDA runs on
 * an NVIDIA GPU. Build options: -DAXIOM_DOUBLE selects float64 (`real` = double), else float32.
 *
 * Dialect:  KERNEL (entry point, C linkage)  GLOBAL (pointer into device memory)
 *           LOCAL (a shared / local memory array in a kernel)  LOCAL_PTR (pointer into it)
 *           DEVICE (a helper function)  BARRIER()  LOCAL_ID(d) GROUP_ID(d) LOCAL_SIZE(d)
 *           NUM_GROUPS(d) GLOBAL_ID(d)  real  idx_t (64-bit index)  EXP() LOG() ... on real.
 */
#ifndef AXIOM_DEVICE_CUH
#define AXIOM_DEVICE_CUH
#define AXIOM_DEVICE_DIALECT 1
#define AXIOM_CUDA 1

#ifdef AXIOM_DOUBLE
typedef double real;
#define RF(name) name
#else
typedef float real;
#define RF(name) name##f
#endif
typedef long long idx_t;

#define KERNEL extern "C" __global__
#define GLOBAL
#define LOCAL __shared__
#define LOCAL_PTR
#define DEVICE static __device__ __forceinline__
#define RESTRICT __restrict__
#define BARRIER() __syncthreads()

#define LOCAL_ID(d) ((int)((d) == 0 ? threadIdx.x : (d) == 1 ? threadIdx.y : threadIdx.z))
#define GROUP_ID(d) ((int)((d) == 0 ? blockIdx.x : (d) == 1 ? blockIdx.y : blockIdx.z))
#define LOCAL_SIZE(d) ((int)((d) == 0 ? blockDim.x : (d) == 1 ? blockDim.y : blockDim.z))
#define NUM_GROUPS(d) ((int)((d) == 0 ? gridDim.x : (d) == 1 ? gridDim.y : gridDim.z))
#define GLOBAL_ID(d) ((idx_t)GROUP_ID(d) * LOCAL_SIZE(d) + LOCAL_ID(d))

#define REAL_INF ((real)__int_as_float(0x7f800000))
#define REAL_NAN ((real)__int_as_float(0x7fc00000))

#define EXP(x) RF(exp)(x)
#define EXPM1(x) RF(expm1)(x)
#define LOG(x) RF(log)(x)
#define LOG1P(x) RF(log1p)(x)
#define SQRT(x) RF(sqrt)(x)
#define RSQRT(x) RF(rsqrt)(x)
#define TANH(x) RF(tanh)(x)
#define ERF(x) RF(erf)(x)
#define ERFC(x) RF(erfc)(x)
#define FABS(x) RF(fabs)(x)
#define FMAX(x, y) RF(fmax)(x, y)
#define FMIN(x, y) RF(fmin)(x, y)
#define FMA(x, y, z) RF(fma)(x, y, z)
#define POW(x, y) RF(pow)(x, y)
#define FLOOR(x) RF(floor)(x)
#define COS(x) RF(cos)(x)
#define SIN(x) RF(sin)(x)
/* cos / sin of a double argument, whatever `real` is (RoPE angles are computed in float64) */
#define COS64(x) cos((double)(x))
#define SIN64(x) sin((double)(x))
#define ISNAN(x) ((x) != (x))

#endif /* AXIOM_DEVICE_CUH */
