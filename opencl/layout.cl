/* OpenCL build of the layout kernels: the body is cuda/layout.cu (see axiom_device.h). */
#include "axiom_device.h"
#include "../cuda/layout.cu"
