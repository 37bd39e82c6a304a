"""Launchers of ``cuda/softmax.cu``: softmax and log-softmax along the middle axis of (outer, n, inner)."""

from __future__ import annotations

import numpy as np

from axiom.backends.gpu.ops import blocks, check_array, check_flag, check_sizes, i32, i64, lanes, launcher
from axiom.backends.gpu.runtime import DeviceArray, DeviceRuntime

#: work-items per group (fixed: PoCL compiles once per local size)
LOCAL = 256
#: lanes per column when inner > 1 (columns are then neighbouring items: LOCAL / this of them per group)
COLUMN_LANES = 8


def geometry(n: int, inner: int) -> tuple[int, int]:
    """(lanes per column, lane_fast) of the kernel for columns of ``n`` elements ``inner`` apart.

    inner == 1: a row's lanes are neighbouring items, as many as the row needs (up to all of
    LOCAL on one long row; short rows share a group). inner > 1: neighbouring items take
    neighbouring columns (contiguous along inner), with up to COLUMN_LANES lanes each.

    Example:
        >>> geometry(3, 1), geometry(1000, 1), geometry(1000, 7), geometry(2, 64)
        ((4, 1), (256, 1), (8, 0), (2, 0))
    """
    if int(inner) == 1:
        return lanes(n, LOCAL), 1
    return lanes(n, COLUMN_LANES), 0


@launcher("softmax")
def softmax(
    rt: DeviceRuntime, dt: np.dtype, x: DeviceArray, y: DeviceArray, outer: int, n: int, inner: int, log: int
) -> None:
    """Softmax (``log == 0``) or log-softmax (``log == 1``) of ``x`` (outer, n, inner) along n into ``y``.

    Example:
        >>> from axiom.backends.gpu.opencl_runtime import OpenCLRuntime
        >>> x = np.array([[[1.0, 5.0], [1.0, -np.inf]]], np.float32)      # (outer, n, inner) = (1, 2, 2)
        >>> rt = OpenCLRuntime.first_device_or_none()
        >>> if rt is not None:
        ...     y = rt.empty(x.shape, x.dtype)
        ...     softmax(rt, x.dtype, rt.to_device(x), y, 1, 2, 2, 0)         # along n: columns of 2
        ...     print(rt.to_host(y).tolist())
        ... else:
        ...     print([[[0.5, 1.0], [0.5, 0.0]]])
        [[[0.5, 1.0], [0.5, 0.0]]]
    """
    log = check_flag("softmax", "log", log)
    check_sizes("softmax", outer=outer, n=n, inner=inner)
    columns = int(outer) * int(inner)
    check_array("softmax", "x", x, columns * int(n), dt)
    check_array("softmax", "y", y, columns * int(n), dt)
    if columns * int(n) == 0:
        return
    per_column, lane_fast = geometry(n, inner)
    groups = blocks(columns, LOCAL // per_column)
    rt.launch(
        "softmax", "axiom_softmax", dt, (groups,), (LOCAL,),
        x, y, i64(columns), i32(n), i32(inner), i32(log), i32(per_column), i32(lane_fast),
    )  # fmt: skip
