/* OpenCL build of the conv2d kernels: the body is cuda/conv2d.cu (see axiom_device.h). */
#include "axiom_device.h"
#include "../cuda/conv2d.cu"
