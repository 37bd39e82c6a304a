/* OpenCL build of the pooling kernels: the body is cuda/pooling.cu (see axiom_device.h). */
#include "axiom_device.h"
#include "../cuda/pooling.cu"
