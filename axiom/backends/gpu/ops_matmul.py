"""Launcher of ``cuda/matmul.cu`` (the batched GEMM with a bias + activation epilogue) and the
contract's ``matmul`` on a device (:func:`matmul_host`).

``gemm`` is how Dense layers (``act(x @ W + b)``) and attention projections run on the device;
``matmul_host`` gives :meth:`GPUBackend.matmul <axiom.backends.gpu.backend.GPUBackend.matmul>`
NumPy's ``matmul`` semantics (1-D operands, broadcast batch axes) with the C backend's checks,
errors and dtype rules.

Example:
    >>> import numpy as np
    >>> from axiom.backends.gpu.opencl_runtime import OpenCLRuntime
    >>> rt = OpenCLRuntime.first_device_or_none()
    >>> if rt is not None:
    ...     a = rt.to_device(np.ones((2, 3), np.float32)); b = rt.to_device(np.ones((3, 2), np.float32))
    ...     c = rt.empty((1, 2, 2), np.float32)
    ...     gemm(rt, np.dtype(np.float32), a, b, c, None, 1, 2, 2, 3, 0, 0, 1, 0.0)   # relu(a @ b)
    ...     print(rt.to_host(c).ravel().tolist())
    ... else:
    ...     print([3.0, 3.0, 3.0, 3.0])
    [3.0, 3.0, 3.0, 3.0]
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

import numpy as np

from axiom.backends.gpu.ops import blocks, check_activation, check_array, check_sizes, i32, i64, launcher, real
from axiom.backends.gpu.runtime import F64, DeviceArray, DeviceRuntime
from axiom.backends.native import check_matmul, finish_matmul

if TYPE_CHECKING:
    from axiom.backends.gpu.backend import GPUBackend

#: the work-group size and output tile of axiom_gemm (cuda/gemm_tile.cuh)
LOCAL = 256
TILE = 64
#: the largest grid extent along axis 1 (the kernel loops over the batches beyond it)
MAX_AXIS1 = 65535
#: split-K: when fewer than SPLIT_BELOW work-groups would share a reduction of at least SPLIT_MIN_K,
#: it is cut into chunks of at least SPLIT_CHUNK (at most MAX_SPLITS) summed by axiom_gemm_reduce
SPLIT_BELOW = 64
SPLIT_MIN_K = 1024
SPLIT_CHUNK = 256
MAX_SPLITS = 32


def split_k(groups: int, k: int) -> int:
    """How many reduction chunks a GEMM of ``groups`` work-groups and reduction length ``k`` uses.

    Example:
        >>> split_k(4, 4096), split_k(4, 100), split_k(500, 4096)
        (16, 1, 1)
    """
    if groups >= SPLIT_BELOW or k < SPLIT_MIN_K or k >= 2**30:
        return 1
    return max(1, min(MAX_SPLITS, k // SPLIT_CHUNK, -(-SPLIT_BELOW * 2 // groups)))


@launcher("gemm")
def gemm(
    rt: DeviceRuntime,
    dt: np.dtype,
    a: DeviceArray,
    b: DeviceArray,
    c: DeviceArray,
    bias: DeviceArray | None,
    batch: int,
    m: int,
    n: int,
    k: int,
    a_batch_stride: int,
    b_batch_stride: int,
    act: int,
    alpha: float,
) -> None:
    """``c[i] = act(a[i] @ b[i] + bias)`` for ``i < batch`` (row-major blocks, see cuda/matmul.cu).

    ``a[i]`` is the m x k block at element ``i * a_batch_stride`` of ``a`` (0: one ``a`` for all),
    ``b[i]`` the k x n block at ``i * b_batch_stride``, ``c`` holds ``batch * m * n`` elements,
    ``bias`` ``n`` elements or None; ``act`` / ``alpha`` an activation code of ``ACTIVATIONS``.

    Example:
        >>> from axiom.backends.gpu.opencl_runtime import OpenCLRuntime
        >>> f32 = np.dtype(np.float32)
        >>> a, bias = np.arange(4, dtype=f32), np.array([10, 20], f32)   # a: 2 batches of a 1 x 2 row
        >>> rt = OpenCLRuntime.first_device_or_none()
        >>> if rt is not None:
        ...     c = rt.empty((2, 1, 2), f32)
        ...     b = rt.to_device(np.eye(2, dtype=f32))                        # b stride 0: one b for both
        ...     gemm(rt, f32, rt.to_device(a), b, c, rt.to_device(bias), 2, 1, 2, 2, 2, 0, 0, 0.0)
        ...     print(rt.to_host(c).reshape(2, 2).tolist())
        ... else:
        ...     print((a.reshape(2, 2) + bias).tolist())
        [[10.0, 21.0], [12.0, 23.0]]
    """
    batch, m, n, k = (int(v) for v in (batch, m, n, k))
    sa, sb = int(a_batch_stride), int(b_batch_stride)
    check_sizes("gemm", batch=batch, m=m, n=n, k=k, a_batch_stride=sa, b_batch_stride=sb)
    code = check_activation("gemm", act)
    if batch * m * n == 0:
        return
    check_array("gemm", "c", c, batch * m * n, dt)
    check_array("gemm", "bias", bias, n, dt, optional=True)
    if k:  # k == 0: a and b are never read (c = act(bias))
        check_array("gemm", "a", a, (batch - 1) * sa + m * k, dt)
        check_array("gemm", "b", b, (batch - 1) * sb + k * n, dt)
    tiles = -(-m // TILE) * -(-n // TILE)
    grid = (tiles, min(batch, MAX_AXIS1))
    splits = split_k(tiles * batch, k)
    chunk = -(-k // splits)
    chunk = -(-chunk // 16) * 16  # whole 16-wide slices per chunk
    splits = -(-k // chunk) if k else 1
    ints = (i32(batch), i32(m), i32(n), i32(k), i64(sa), i64(sb), i32(code), real(dt, alpha), i32(chunk))
    if splits == 1:
        rt.launch("matmul", "axiom_gemm", dt, (*grid, 1), (LOCAL, 1, 1), a, b, c, bias, *ints, i64(0))
        return
    total = batch * m * n
    part = rt.empty((splits, total), dt)
    rt.launch("matmul", "axiom_gemm", dt, (*grid, splits), (LOCAL, 1, 1), a, b, part, None, *ints, i64(total))
    rt.launch(
        "matmul",
        "axiom_gemm_reduce",
        dt,
        (blocks(total, LOCAL),),
        (LOCAL,),
        part,
        c,
        bias,
        i32(splits),
        i64(total),
        i32(n),
        i32(code),
        real(dt, alpha),
    )


def _operand(rt: DeviceRuntime, x: np.ndarray, batch: tuple[int, ...], dt: np.dtype) -> tuple[DeviceArray, int]:
    """Upload a (..., r, c) operand for a GEMM over ``batch``: the device array and its batch stride.

    An operand without batch axes (or with only 1s) is uploaded once with stride 0; one whose
    batch axes already are ``batch`` is uploaded as it is; a partly broadcast one is expanded.
    """
    rows, cols = x.shape[-2:]
    lead = x.shape[:-2]
    if int(np.prod(lead, dtype=np.int64)) == 1:
        return rt.to_device(x.reshape(rows, cols), dt), 0
    if tuple(lead) != tuple(batch):
        x = np.broadcast_to(x, (*batch, rows, cols))
    return rt.to_device(x, dt), rows * cols


def matmul_host(backend: GPUBackend, a: Any, b: Any) -> np.ndarray:
    """``a @ b`` with NumPy semantics on ``backend``'s device (host arrays in and out).

    float32 / float64 run natively (the mix in float64), float16 / bfloat16 in float32 and are
    cast back; float64 on a device without float64 and other dtypes (integers, bool) run on the
    NumPy reference, recorded in ``backend.fallbacks``. Errors are the C backend's.

    Example:
        >>> import numpy as np
        >>> from axiom.backends.gpu.backend import GPUBackend
        >>> from axiom.backends.gpu.opencl_runtime import OpenCLRuntime
        >>> a, v = np.arange(6, dtype=np.float32).reshape(2, 3), np.ones(3, np.float32)   # a 1-D result
        >>> rt = OpenCLRuntime.first_device_or_none()
        >>> (a @ v if rt is None else matmul_host(GPUBackend(rt), a, v)).tolist()
        [3.0, 12.0]
    """
    batch, m, k, n, dtype, reason = check_matmul(a, b)
    if dtype is None:
        return backend.fallback("matmul", str(reason), a, b)
    rt = backend.runtime
    if dtype == F64 and not rt.supports_float64:
        return backend.fallback("matmul", f"device {rt.device_name} has no float64", a, b)
    a2 = a if a.ndim >= 2 else a.reshape(1, k)
    b2 = b if b.ndim >= 2 else b.reshape(k, 1)
    nbatch = int(np.prod(batch, dtype=np.int64))
    if nbatch * m * n == 0:
        out = np.zeros((*batch, m, n), dtype)
    else:
        da, sa = _operand(rt, a2, batch, dtype)
        db, sb = _operand(rt, b2, batch, dtype)
        dc = rt.empty((nbatch, m, n), dtype)
        gemm(rt, dtype, da, db, dc, None, nbatch, m, n, k, sa, sb, 0, 0.0)
        out = rt.to_host(dc).reshape(*batch, m, n)
    return finish_matmul(out, a, b, dtype)
