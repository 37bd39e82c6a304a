"""Launcher of ``cuda/rope.cu``: rotary position embedding (rotate-half convention).

The angles ``positions[s] * base ** (-2 i / d)`` are computed in float64 on the host, like the
reference and the C kernels, and their cos / sin tables uploaded in the compute dtype, so a
device without float64 computes float32 RoPE exactly as the C backend does. The runtime keeps
the last few tables (:func:`rope_tables`): a compiled model applying RoPE in every layer, with
one or several settings, uploads each table once.
"""

from __future__ import annotations

from collections import OrderedDict

import numpy as np

from axiom.backends.gpu.ops import blocks, check_array, check_sizes, i32, i64, launcher
from axiom.backends.gpu.runtime import DeviceArray, DeviceRuntime

LOCAL = 256
#: how many cos / sin tables a runtime keeps (the least recently used one goes first)
TABLES_KEPT = 8
#: attribute of the runtime that holds its tables: key -> (cos, sin), least recently used first
_CACHE = "_axiom_rope_tables"


def rope_tables(
    rt: DeviceRuntime, dt: np.dtype, positions: np.ndarray, d: int, base: float
) -> tuple[DeviceArray, DeviceArray]:
    """Device cos / sin tables ``(seq, d // 2)`` in ``dt`` for ``positions`` (seq,), head size ``d`` and ``base``.

    The runtime keeps the last :data:`TABLES_KEPT` tables (keyed by the positions, ``d``, ``base``
    and ``dt``), so a model with several RoPE settings uploads each once, not once per call.

    Example:
        >>> from axiom.backends.gpu.opencl_runtime import OpenCLRuntime
        >>> rt = OpenCLRuntime.first_device_or_none()
        >>> if rt is not None:
        ...     f32 = np.dtype(np.float32)
        ...     cos, sin = rope_tables(rt, f32, np.arange(3.0), 4, 10000.0)
        ...     _ = rope_tables(rt, f32, np.arange(3.0), 8, 500.0)          # a second setting
        ...     again = rope_tables(rt, f32, np.arange(3.0), 4, 10000.0)
        ...     print(cos.shape, again[0] is cos and again[1] is sin)
        ... else:
        ...     print((3, 2), True)
        (3, 2) True
    """
    dt = np.dtype(dt)
    pos = np.ascontiguousarray(positions, np.float64)
    key = (pos.tobytes(), int(d), float(base), dt.name)
    with rt._lock:
        tables: OrderedDict[tuple, tuple[DeviceArray, DeviceArray]] | None = getattr(rt, _CACHE, None)
        if tables is None:
            tables = OrderedDict()
            setattr(rt, _CACHE, tables)
        found = tables.get(key)
        if found is not None:
            tables.move_to_end(key)
            return found
        half = d // 2
        inv_freq = 1.0 / (float(base) ** (np.arange(half, dtype=np.float64) * 2.0 / d))  # the reference's formula
        angles = pos[:, None] * inv_freq[None, :]
        found = tables[key] = (rt.to_device(np.cos(angles), dt), rt.to_device(np.sin(angles), dt))
        while len(tables) > TABLES_KEPT:
            tables.popitem(last=False)
        return found


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
    """RoPE of ``x (outer, seq, d)`` into ``y`` (which may be ``x``); ``positions`` (seq,) float64, host or device.

    Example:
        >>> from axiom.backends.gpu.opencl_runtime import OpenCLRuntime
        >>> x, positions = np.array([[1.0, 0.0], [1.0, 0.0]], np.float32), np.array([0.0, np.pi])
        >>> rt = OpenCLRuntime.first_device_or_none()
        >>> if rt is not None:
        ...     dx = rt.to_device(x)
        ...     rope(rt, x.dtype, dx, positions, dx, 1, 2, 2, 10000.0)        # in place; the second row turns by pi
        ...     x = np.round(rt.to_host(dx), 6)
        ... else:
        ...     x = np.array([[1.0, 0.0], [-1.0, 0.0]])
        >>> x.tolist()
        [[1.0, 0.0], [-1.0, 0.0]]
    """
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
