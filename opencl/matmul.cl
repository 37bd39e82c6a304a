/* OpenCL build of the GEMM kernel: the body is cuda/matmul.cu (see axiom_device.h). */
#include "axiom_device.h"
#include "../cuda/matmul.cu"
