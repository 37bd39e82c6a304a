"""Launchers of ``cuda/activation.cu``: element-wise activations.

Example:
    >>> from axiom.backends.gpu.ops import launchers
    >>> "activation" in launchers()
    True
"""

from __future__ import annotations

import numpy as np

from axiom.backends.gpu.ops import blocks, check_activation, check_array, check_sizes, i32, i64, launcher, real
from axiom.backends.gpu.runtime import DeviceArray, DeviceRuntime

LOCAL = 256


@launcher("activation")
def activation(rt: DeviceRuntime, dt: np.dtype, x: DeviceArray, y: DeviceArray, n: int, act: int, alpha: float) -> None:
    """``y[i] = act(x[i])`` for ``i < n`` (codes of ``axiom.backends.base.ACTIVATIONS``).

    Example:
        >>> from axiom.backends.gpu.opencl_runtime import OpenCLRuntime
        >>> x = np.array([-2.0, 3.0], np.float32)
        >>> rt = OpenCLRuntime.first_device_or_none()
        >>> if rt is not None:
        ...     y = rt.empty(x.shape, x.dtype)
        ...     activation(rt, x.dtype, rt.to_device(x), y, 2, 2, 0.5)     # code 2: leaky_relu, slope 0.5
        ...     x = rt.to_host(y)
        ... else:
        ...     x = np.where(x < 0, 0.5 * x, x)
        >>> x.tolist()
        [-1.0, 3.0]
    """
    check_sizes("activation", n=n)
    code = check_activation("activation", act)
    check_array("activation", "x", x, n, dt)
    check_array("activation", "y", y, n, dt)
    args = (x, y, i64(n), i32(code), real(dt, alpha))
    rt.launch("activation", "axiom_activation", dt, (blocks(n, LOCAL),), (LOCAL,), *args)
