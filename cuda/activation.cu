/*
 * activation.cu - element-wise activations: y[i] = act(x[i]) (the contract's `activation`),
 * plus the small element-wise kernels a device-resident model needs (add).
 * Launch: 1-D, any local size; a grid-stride loop covers n.
 */
#ifndef AXIOM_DEVICE_DIALECT
#include "axiom_device.cuh"
#endif
#include "act.cuh"

KERNEL void axiom_activation(const GLOBAL real *RESTRICT x, GLOBAL real *RESTRICT y, idx_t n, int act, real alpha) {
    const idx_t step = (idx_t)LOCAL_SIZE(0) * NUM_GROUPS(0);
    for (idx_t i = GLOBAL_ID(0); i < n; i += step) {
        y[i] = act_apply(x[i], act, alpha);
    }
}
