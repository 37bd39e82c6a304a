/* OpenCL build of the attention kernels: the body is cuda/attention.cu (see axiom_device.h). */
#include "axiom_device.h"
#include "../cuda/attention.cu"
