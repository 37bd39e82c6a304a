/* OpenCL build of the normalisation kernels: the body is cuda/norms.cu (see axiom_device.h). */
#include "axiom_device.h"
#include "../cuda/norms.cu"
