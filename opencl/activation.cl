/* OpenCL build of the activation kernels: the body is cuda/activation.cu (see axiom_device.h). */
#include "axiom_device.h"
#include "../cuda/activation.cu"
