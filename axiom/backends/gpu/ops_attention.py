"""Launcher of ``cuda/attention.cu``: flash attention with an online softmax.

The argument list is the C ABI's (``axiom_attention_*``): ``q (batch, heads, lq, d)``,
``k (batch, heads, lk, d)``, ``v (batch, heads, lk, dv)`` and ``out (batch, heads, lq, dv)``
contiguous; ``mask`` (or None) an additive mask read at ``b*ms0 + h*ms1 + i*ms2 + j*ms3`` (element
strides, 0 broadcasts); ``causal`` aligned at the end. Memory is linear in the sequence lengths.
"""

from __future__ import annotations

import numpy as np

from axiom.backends.gpu.ops import check_array, check_flag, check_sizes, i32, i64, launcher, real
from axiom.backends.gpu.runtime import DeviceArray, DeviceRuntime

#: work-items per work-group and queries per work-group (attention.cu)
THREADS, BLOCK_Q = 128, 32
#: value columns per pass of axiom_attention per dtype (ATT_DVC); axiom_attention_narrow does half
VALUE_COLUMNS = {"float32": 128, "float64": 64}


@launcher("attention")
def attention(
    rt: DeviceRuntime,
    dt: np.dtype,
    q: DeviceArray,
    k: DeviceArray,
    v: DeviceArray,
    mask: DeviceArray | None,
    out: DeviceArray,
    batch: int,
    heads: int,
    lq: int,
    lk: int,
    d: int,
    dv: int,
    scale: float,
    causal: int,
    ms0: int,
    ms1: int,
    ms2: int,
    ms3: int,
) -> None:
    """``out = softmax(q k^T * scale + mask) v`` per (batch, head); a query that sees no key gets NaN.

    Example:
        >>> from axiom.backends.gpu.opencl_runtime import OpenCLRuntime
        >>> f32 = np.dtype(np.float32)
        >>> mask = np.array([[0.0, -np.inf], [-np.inf, 0.0]], f32)          # query i sees key i only
        >>> rt = OpenCLRuntime.first_device_or_none()
        >>> if rt is not None:
        ...     q = rt.to_device(np.zeros((1, 1, 2, 1), f32)); v = rt.to_device(np.array([1.0, 3.0], f32))
        ...     out, dmask = rt.empty((1, 1, 2, 1), f32), rt.to_device(mask)    # mask strides (0, 0, 2, 1)
        ...     attention(rt, f32, q, q, v, dmask, out, 1, 1, 2, 2, 1, 1, 1.0, 0, 0, 0, 2, 1)
        ...     print(rt.to_host(out).ravel().tolist())
        ... else:
        ...     print([1.0, 3.0])
        [1.0, 3.0]
    """
    op = "attention"
    check_sizes(op, batch=batch, heads=heads, lq=lq, lk=lk, d=d, dv=dv, ms0=ms0, ms1=ms1, ms2=ms2, ms3=ms3)
    causal = check_flag(op, "causal", causal)
    nbh = batch * heads
    check_array(op, "q", q, nbh * lq * d, dt)
    check_array(op, "k", k, nbh * lk * d, dt)
    check_array(op, "v", v, nbh * lk * dv, dt)
    check_array(op, "out", out, nbh * lq * dv, dt)
    if nbh * lq * dv == 0:
        return
    if mask is not None and lk > 0:
        furthest = (batch - 1) * ms0 + (heads - 1) * ms1 + (lq - 1) * ms2 + (lk - 1) * ms3
        check_array(op, "mask", mask, furthest + 1, dt)
    for size in (lq, lk, d, dv, nbh):
        i32(size)  # the kernel takes these as int
    vend = None
    if causal and lk > 0:
        # keys the causal skip must still visit: 0 * inf = NaN of a hidden non-finite value
        vend = rt.empty((nbh,), np.int32)
        groups = min(nbh, 2**31 - 1)
        rt.launch(
            "attention", "axiom_attention_value_ends", dt, (groups,), (THREADS,), v, vend, i32(nbh), i32(lk), i32(dv)
        )
    nqb = -(-lq // BLOCK_Q)
    # dv up to half a pass: the narrow kernel (half the accumulators); wider: passes of `columns`
    columns = VALUE_COLUMNS[np.dtype(dt).name]
    name = "axiom_attention_narrow" if dv <= columns // 2 else "axiom_attention"
    groups = (nqb * nbh, min(-(-dv // columns), 65535))
    args = (q, k, v, mask if lk > 0 else None, vend, out, i32(heads), i32(lq), i32(lk), i32(d), i32(dv))
    flags = (real(dt, scale), i32(causal), i64(ms0), i64(ms1), i64(ms2), i64(ms3))
    rt.launch("attention", name, dt, groups, (THREADS, 1), *args, *flags)
