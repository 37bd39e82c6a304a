"""Launchers of ``cuda/norms.cu``: inference batch norm, layer norm and RMS norm.

The argument lists are the C ABI's (``csrc/axiom_kernels_nn.h``): device arrays for pointers
(``None`` for an absent ``gamma`` / ``beta``), Python numbers for sizes and ``eps``.

Example:
    >>> import numpy as np
    >>> from axiom.backends.gpu.opencl_runtime import OpenCLRuntime
    >>> from axiom.backends.gpu.ops import call
    >>> rt = OpenCLRuntime.first_device_or_none()
    >>> if rt is not None:
    ...     x = rt.to_device(np.array([[0.0, 2.0]], np.float32)); y = rt.empty((1, 2), np.float32)
    ...     call(rt, "layernorm", np.float32, x, None, None, y, 1, 2, 0.0)  # (x, gamma, beta, y, rows, n, eps)
    ...     print(rt.to_host(y).tolist())
    ... else:
    ...     print([[-1.0, 1.0]])
    [[-1.0, 1.0]]
"""

from __future__ import annotations

import numpy as np

from axiom.backends.gpu.ops import blocks, i32, i64, launcher, real
from axiom.backends.gpu.runtime import DeviceArray, DeviceRuntime

#: work-items per group of every kernel of the family (fixed: PoCL compiles once per local size)
LOCAL = 256


def check_sizes(op: str, **sizes: int) -> None:
    """ValueError unless every size is >= 0 (what the C kernels answer with AXIOM_ERR_SIZE).

    Example:
        >>> check_sizes("layernorm", rows=2, n=-1)
        Traceback (most recent call last):
        ...
        ValueError: layernorm: sizes must be >= 0, got rows=2, n=-1
    """
    if any(int(v) < 0 for v in sizes.values()):
        raise ValueError(f"{op}: sizes must be >= 0, got {', '.join(f'{k}={v}' for k, v in sizes.items())}")


def check_array(op: str, name: str, arr: DeviceArray | None, count: int, dt: np.dtype, optional: bool = False) -> None:
    """ValueError unless ``arr`` is a device array of ``dt`` with at least ``count`` elements (or None if ``optional``).

    A kernel given a shorter array would read or write past it; this catches it before the launch.
    """
    if arr is None:
        if optional or count == 0:
            return
        raise ValueError(f"{op}: {name} is required (got None)")
    if not isinstance(arr, DeviceArray):
        raise TypeError(f"{op}: {name} must be a DeviceArray, got {type(arr).__name__}")
    if arr.dtype != dt:
        raise TypeError(f"{op}: {name} holds {arr.dtype}; this launch computes in {np.dtype(dt)}")
    if arr.size < count:
        raise ValueError(f"{op}: {name} has {arr.size} elements; the sizes need {count}")


def row_lanes(n: int) -> int:
    """Work-items per row: the power of two >= ``n``, at most :data:`LOCAL` (short rows share a group).

    Example:
        >>> [row_lanes(n) for n in (1, 3, 32, 33, 5000)]
        [1, 4, 32, 64, 256]
    """
    return min(LOCAL, 1 << max(0, int(n) - 1).bit_length())


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
    """``y = (x - mean) * gamma / sqrt(var + eps) + beta`` over ``rows`` x ``c`` (channel last)."""
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
    lanes = row_lanes(n)
    return blocks(rows, LOCAL // lanes), lanes


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
    """Normalise each of ``rows`` rows of ``n``: two passes (mean, biased variance), then scale and shift."""
    groups, lanes = _row_groups("layernorm", dt, rows, n, x, y, gamma, beta)
    rt.launch(
        "norms", "axiom_layernorm", dt, (groups,), (LOCAL,),
        x, gamma, beta, y, i32(rows), i32(n), real(dt, eps), i32(lanes), i32(gamma is not None), i32(beta is not None),
    )  # fmt: skip


@launcher("rmsnorm")
def rmsnorm(
    rt: DeviceRuntime,
    dt: np.dtype,
    x: DeviceArray,
    gamma: DeviceArray | None,
    y: DeviceArray,
    rows: int,
    n: int,
    eps: float,
) -> None:
    """Divide each of ``rows`` rows of ``n`` by its root mean square (``+ eps`` inside the root), times ``gamma``."""
    groups, lanes = _row_groups("rmsnorm", dt, rows, n, x, y, gamma)
    rt.launch(
        "norms", "axiom_rmsnorm", dt, (groups,), (LOCAL,),
        x, gamma, y, i32(rows), i32(n), real(dt, eps), i32(lanes), i32(gamma is not None),
    )  # fmt: skip
