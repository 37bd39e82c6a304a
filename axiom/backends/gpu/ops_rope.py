"""Launcher of ``cuda/rope.cu``: rotary position embedding (rotate-half convention).

The angles ``positions[s] * base ** (-2 i / d)`` are computed in float64 on the host, like the
reference and the C kernels, and their cos / sin tables uploaded in the compute dtype, so a
device without float64 computes float32 RoPE exactly as the C backend does. The last table is
kept on the runtime: a compiled model applying RoPE in every layer uploads it once.

Example:
    >>> import numpy as np
    >>> from axiom.backends.gpu.opencl_runtime import OpenCLRuntime
    >>> from axiom.backends.gpu.ops import call
    >>> rt = OpenCLRuntime.first_device_or_none()
    >>> if rt is not None:
    ...     x = rt.to_device(np.array([1.0, 0.0], np.float32)); y = rt.empty((2,), np.float32)
    ...     call(rt, "rope", np.float32, x, np.array([np.pi / 2]), y, 1, 1, 2, 10000.0)
    ...     print(np.round(rt.to_host(y), 6).tolist())
    ... else:
    ...     print([0.0, 1.0])
    [0.0, 1.0]
"""

from __future__ import annotations

import numpy as np

from axiom.backends.gpu.ops import blocks, i32, i64, launcher
from axiom.backends.gpu.ops_layout import check_array, check_sizes
from axiom.backends.gpu.runtime import DeviceArray, DeviceRuntime

LOCAL = 256
#: attribute of the runtime that holds the last table: (key, cos, sin)
_CACHE = "_axiom_rope_table"


def rope_tables(
    rt: DeviceRuntime, dt: np.dtype, positions: np.ndarray, d: int, base: float
) -> tuple[DeviceArray, DeviceArray]:
    """Device cos / sin tables ``(seq, d // 2)`` in ``dt`` (the last one is cached on ``rt``)."""
    pos = np.ascontiguousarray(positions, np.float64)
    key = (pos.tobytes(), int(d), float(base), np.dtype(dt).name)
    cached = getattr(rt, _CACHE, None)
    if cached is not None and cached[0] == key:
        return cached[1], cached[2]
    half = d // 2
    inv_freq = 1.0 / (float(base) ** (np.arange(half, dtype=np.float64) * 2.0 / d))  # the reference's formula
    angles = pos[:, None] * inv_freq[None, :]
    cos = rt.to_device(np.cos(angles), dt)
    sin = rt.to_device(np.sin(angles), dt)
    setattr(rt, _CACHE, (key, cos, sin))
    return cos, sin


@launcher("rope")
def rope(
    rt: DeviceRuntime,
    dt: np.dtype,
    x: DeviceArray,
    positions: np.ndarray | DeviceArray,
    y: DeviceArray,
    outer: int,
    seq: int,
    d: int,
    base: float,
) -> None:
    """RoPE of ``x (outer, seq, d)`` into ``y`` (which may be ``x``); ``positions`` (seq,) float64, host or device."""
    check_sizes("rope", outer=outer, seq=seq, d=d)
    n = outer * seq * d
    check_array("rope", "x", x, n, dt)
    check_array("rope", "y", y, n, dt)
    pos = rt.to_host(positions) if isinstance(positions, DeviceArray) else np.asarray(positions)
    if pos.ndim != 1 or pos.shape[0] != seq or pos.dtype.kind not in "biuf":
        raise ValueError(f"rope: positions has shape {pos.shape} ({pos.dtype}); expected ({seq},) numbers")
    if n == 0:
        return
    if d // 2 == 0:
        cos = sin = x  # d == 1: the element is copied, no table is read
    else:
        cos, sin = rope_tables(rt, dt, pos, d, base)
    rows = outer * seq
    items = rows * (d - d // 2)
    rt.launch("rope", "axiom_rope", dt, (blocks(items, LOCAL),), (LOCAL,), x, cos, sin, y, i64(rows), i32(seq), i32(d))
