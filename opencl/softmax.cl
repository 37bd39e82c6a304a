/* OpenCL build of the softmax kernels: the body is cuda/softmax.cu (see axiom_device.h). */
#include "axiom_device.h"
#include "../cuda/softmax.cu"
