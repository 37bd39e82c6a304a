/* OpenCL build of the rope kernels: the body is cuda/rope.cu (see axiom_device.h). */
#include "axiom_device.h"
#include "../cuda/rope.cu"
