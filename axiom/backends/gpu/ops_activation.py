"""Launchers of ``cuda/activation.cu``: element-wise activations.

Example:
    >>> from axiom.backends.gpu.ops import launchers
    >>> "activation" in launchers()
    True
"""

from __future__ import annotations

import numpy as np

from axiom.backends.gpu.ops import blocks, i32, i64, launcher, real
from axiom.backends.gpu.runtime import DeviceArray, DeviceRuntime

LOCAL = 256


@launcher("activation")
def activation(rt: DeviceRuntime, dt: np.dtype, x: DeviceArray, y: DeviceArray, n: int, act: int, alpha: float) -> None:
    """``y[i] = act(x[i])`` for ``i < n`` (codes of ``axiom.backends.base.ACTIVATIONS``)."""
    args = (x, y, i64(n), i32(act), real(dt, alpha))
    rt.launch("activation", "axiom_activation", dt, (blocks(n, LOCAL),), (LOCAL,), *args)
