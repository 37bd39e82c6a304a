"""Launchers of ``cuda/norms.cu``: inference batch norm, layer norm and RMS norm.

The argument lists are the C ABI's (``csrc/axiom_kernels_nn.h``): device arrays for pointers
(``None`` for an absent ``gamma`` / ``beta``), Python numbers for sizes and ``eps``.
"""

from __future__ import annotations

import numpy as np

from axiom.backends.gpu.ops import blocks, check_array, check_sizes, i32, i64, lanes, launcher, real
from axiom.backends.gpu.runtime import DeviceArray, DeviceRuntime

#: work-items per group of every kernel of the family (fixed: PoCL compiles once per local size)
LOCAL = 256


@launcher("batchnorm")
def batchnorm(
    rt: DeviceRuntime,
    dt: np.dtype,
    x: DeviceArray,
    mean: DeviceArray,
    var: DeviceArray,
    gamma: DeviceArray | None,
    beta: DeviceArray | None,
    y: DeviceArray,
    rows: int,
    c: int,
    eps: float,
) -> None:
    """``y = (x - mean) * gamma / sqrt(var + eps) + beta`` over ``rows`` x ``c`` (channel last).

    Example:
        >>> from axiom.backends.gpu.opencl_runtime import OpenCLRuntime
        >>> rt = OpenCLRuntime.first_device_or_none()
        >>> if rt is not None:
        ...     f32, dev = np.dtype(np.float32), lambda *v: rt.to_device(np.array(v, np.float32))
        ...     y = rt.empty((2, 1), f32)
        ...     batchnorm(rt, f32, dev(1, 3), dev(1), dev(4), None, dev(0.5), y, 2, 1, 0.0)  # (x - 1) / 2 + 0.5
        ...     print(rt.to_host(y).ravel().tolist())
        ... else:
        ...     print([0.5, 1.5])
        [0.5, 1.5]
    """
    check_sizes("batchnorm", rows=rows, c=c)
    count = int(rows) * int(c)
    for name, arr, size, optional in (
        ("x", x, count, False), ("y", y, count, False), ("mean", mean, c, False), ("var", var, c, False),
        ("gamma", gamma, c, True), ("beta", beta, c, True),
    ):  # fmt: skip
        check_array("batchnorm", name, arr, size, dt, optional)
    if count == 0:
        return
    rt.launch(
        "norms", "axiom_batchnorm", dt, (blocks(count, LOCAL),), (LOCAL,),
        x, mean, var, gamma, beta, y, i64(count), i32(c), real(dt, eps), i32(gamma is not None), i32(beta is not None),
    )  # fmt: skip


def _row_groups(
    op: str, dt: np.dtype, rows: int, n: int, x: DeviceArray, y: DeviceArray, gamma: DeviceArray | None,
    beta: DeviceArray | None = None,
) -> tuple[int, int]:  # fmt: skip
    """Checks, then (groups, lanes): groups serve LOCAL / lanes rows of ``n`` each (capped; kernels loop)."""
    check_sizes(op, rows=rows, n=n)
    count = int(rows) * int(n)
    for name, arr, size, optional in (("x", x, count, False), ("y", y, count, False), ("gamma", gamma, n, True),
                                      ("beta", beta, n, True)):  # fmt: skip
        check_array(op, name, arr, size, dt, optional)
    per_row = lanes(n, LOCAL)
    return blocks(rows, LOCAL // per_row), per_row


@launcher("layernorm")
def layernorm(
    rt: DeviceRuntime,
    dt: np.dtype,
    x: DeviceArray,
    gamma: DeviceArray | None,
    beta: DeviceArray | None,
    y: DeviceArray,
    rows: int,
    n: int,
    eps: float,
) -> None:
    """Normalise each of ``rows`` rows of ``n``: two passes (mean, biased variance), then scale and shift.

    Example:
        >>> from axiom.backends.gpu.opencl_runtime import OpenCLRuntime
        >>> x, gamma, beta = np.array([[1.0, 3.0]], np.float32), np.full(2, 2.0, np.float32), np.ones(2, np.float32)
        >>> rt = OpenCLRuntime.first_device_or_none()
        >>> if rt is not None:
        ...     y = rt.empty(x.shape, x.dtype)
        ...     layernorm(rt, x.dtype, rt.to_device(x), rt.to_device(gamma), rt.to_device(beta), y, 1, 2, 0.0)
        ...     x = np.round(rt.to_host(y), 5)
        ... else:
        ...     x = np.array([[-1.0, 1.0]]) * gamma + beta                 # (x - mean) / std, scaled and shifted
        >>> x.tolist()
        [[-1.0, 3.0]]
    """
    groups, lanes = _row_groups("layernorm", dt, rows, n, x, y, gamma, beta)
    rt.launch(
        "norms", "axiom_layernorm", dt, (groups,), (LOCAL,),
        x, gamma, beta, y, i32(rows), i32(n), real(dt, eps), i32(lanes), i32(gamma is not None), i32(beta is not None),
    )  # fmt: skip


@launcher("rmsnorm")
def rmsnorm(
    rt: DeviceRuntime, dt: np.dtype, x: DeviceArray, gamma: DeviceArray | None, y: DeviceArray, rows: int, n: int,
    eps: float,
) -> None:  # fmt: skip
    """Divide each of ``rows`` rows of ``n`` by its root mean square (``+ eps`` inside the root), times ``gamma``.

    Example:
        >>> from axiom.backends.gpu.opencl_runtime import OpenCLRuntime
        >>> x = np.array([[-2.0, 2.0], [3.0, 4.0]], np.float32)
        >>> expected = x / np.sqrt((x * x).mean(axis=1, keepdims=True))   # no gamma (None)
        >>> rt = OpenCLRuntime.first_device_or_none()
        >>> if rt is not None:                                              # the device agrees
        ...     out = rt.empty(x.shape, x.dtype)
        ...     rmsnorm(rt, x.dtype, rt.to_device(x), None, out, 2, 2, 0.0)
        ...     assert np.allclose(rt.to_host(out), expected, rtol=1e-6)
        >>> np.round(expected.astype(float), 4).tolist()
        [[-1.0, 1.0], [0.8485, 1.1314]]
    """
    groups, lanes = _row_groups("rmsnorm", dt, rows, n, x, y, gamma)
    rt.launch(
        "norms", "axiom_rmsnorm", dt, (groups,), (LOCAL,),
        x, gamma, y, i32(rows), i32(n), real(dt, eps), i32(lanes), i32(gamma is not None),
    )  # fmt: skip
