"""Launchers of ``cuda/pooling.cu``: NHWC max / average pooling and global average pooling.

The geometry arguments are the C ABI's: x is (n, h, w, c); window kh x kw, stride sh x sw,
padding top / bottom / left / right, dilation dh x dw (max pooling only); the output is
(n, ho, wo, c) with ``ho = max(0, (h + pt + pb - dh * (kh - 1) - 1) // sh + 1)``, likewise wo.
"""

from __future__ import annotations

import numpy as np

from axiom.backends.gpu.ops import blocks, check_array, check_flag, check_sizes, i32, launcher
from axiom.backends.gpu.runtime import DeviceArray, DeviceRuntime

#: work-items per group (fixed: PoCL compiles once per local size)
LOCAL = 256
#: (image, channel) columns per group of the global average (cuda/pooling.cu GAP_COLS)
GAP_COLS = 32


def output_extent(size: int, k: int, s: int, p0: int, p1: int, d: int) -> int:
    """Output length of one pooled axis (the ABI's formula).

    Example:
        >>> output_extent(5, 2, 2, 0, 1, 1), output_extent(1, 3, 1, 0, 0, 1)
        (3, 0)
    """
    return max(0, (size + p0 + p1 - d * (k - 1) - 1) // s + 1)


def _geometry(
    op: str, n: int, h: int, w: int, c: int, kh: int, kw: int, sh: int, sw: int,
    pt: int, pb: int, pl: int, pr: int, dh: int, dw: int,
) -> tuple[int, int]:  # fmt: skip
    """(ho, wo), after the ABI's checks and the kernels' 32-bit index range."""
    sizes = (n, h, w, c, pt, pb, pl, pr)
    if min(sizes) < 0 or min(kh, kw, sh, sw, dh, dw) < 1:
        raise ValueError(
            f"{op}: sizes and padding must be >= 0 and window, stride and dilation >= 1, got n={n} h={h} w={w} c={c} "
            f"kernel=({kh}, {kw}) stride=({sh}, {sw}) padding=(({pt}, {pb}), ({pl}, {pr})) dilation=({dh}, {dw})"
        )
    # the kernels index the padded image and the window span with int
    spans = (h + pt + pb + sh, w + pl + pr + sw, dh * kh + pt + h, dw * kw + pl + w)
    if max(spans) >= 2**31:
        raise ValueError(f"{op}: the padded input or window span exceeds the GPU kernels' 32-bit index range")
    return output_extent(h, kh, sh, pt, pb, dh), output_extent(w, kw, sw, pl, pr, dw)


@launcher("max_pool2d")
def max_pool2d(
    rt: DeviceRuntime, dt: np.dtype, x: DeviceArray, y: DeviceArray,
    n: int, h: int, w: int, c: int, kh: int, kw: int, sh: int, sw: int,
    pt: int, pb: int, pl: int, pr: int, dh: int, dw: int,
) -> None:  # fmt: skip
    """Max over each window; padded cells never win (padding only gives -inf); NaN wins.

    Example:
        >>> from axiom.backends.gpu.opencl_runtime import OpenCLRuntime
        >>> x = np.array([1.0, np.nan, 3.0, 2.0], np.float32)               # (1, 1, 4, 1): one row of 4
        >>> rt = OpenCLRuntime.first_device_or_none()
        >>> if rt is not None:
        ...     y = rt.empty((1, 1, 2, 1), np.float32)           # windows of 2, dilation 2: cells 0, 2 and 1, 3
        ...     max_pool2d(rt, x.dtype, rt.to_device(x), y, 1, 1, 4, 1, 1, 2, 1, 1, 0, 0, 0, 0, 1, 2)
        ...     print(rt.to_host(y).ravel().tolist())
        ... else:
        ...     print([3.0, float("nan")])                                     # NaN wins
        [3.0, nan]
    """
    ho, wo = _geometry("max_pool2d", n, h, w, c, kh, kw, sh, sw, pt, pb, pl, pr, dh, dw)
    count = n * ho * wo * c
    check_array("max_pool2d", "x", x, n * h * w * c, dt)
    check_array("max_pool2d", "y", y, count, dt)
    rt.launch(
        "pooling", "axiom_max_pool2d", dt, (blocks(count, LOCAL),), (LOCAL,),
        x, y, *map(i32, (n, h, w, c, kh, kw, sh, sw, pt, pl, dh, dw, ho, wo)),
    )  # fmt: skip


@launcher("avg_pool2d")
def avg_pool2d(
    rt: DeviceRuntime, dt: np.dtype, x: DeviceArray, y: DeviceArray,
    n: int, h: int, w: int, c: int, kh: int, kw: int, sh: int, sw: int,
    pt: int, pb: int, pl: int, pr: int, count_include_pad: int,
) -> None:  # fmt: skip
    """Mean over each window: divided by kh * kw (count_include_pad = 1) or by the valid cells (0).

    Example:
        >>> from axiom.backends.gpu.opencl_runtime import OpenCLRuntime
        >>> rt = OpenCLRuntime.first_device_or_none()
        >>> x = np.array([1.0, 5.0, 3.0, 2.0], np.float32)                  # (1, 2, 2, 1)
        >>> if rt is not None:
        ...     # 2 x 2 windows, stride 1, one padded row / column at the bottom / right; padded cells are not counted
        ...     y = rt.empty((1, 2, 2, 1), np.float32)
        ...     avg_pool2d(rt, x.dtype, rt.to_device(x), y, 1, 2, 2, 1, 2, 2, 1, 1, 0, 1, 0, 1, 0)
        ...     print(rt.to_host(y).reshape(2, 2).tolist())
        ... else:
        ...     print([[2.75, 3.5], [2.5, 2.0]])
        [[2.75, 3.5], [2.5, 2.0]]
    """
    count_include_pad = check_flag("avg_pool2d", "count_include_pad", count_include_pad)
    ho, wo = _geometry("avg_pool2d", n, h, w, c, kh, kw, sh, sw, pt, pb, pl, pr, 1, 1)
    if kh * kw >= 2**31:
        raise ValueError("avg_pool2d: the window exceeds the GPU kernels' 32-bit index range")
    count = n * ho * wo * c
    check_array("avg_pool2d", "x", x, n * h * w * c, dt)
    check_array("avg_pool2d", "y", y, count, dt)
    rt.launch(
        "pooling", "axiom_avg_pool2d", dt, (blocks(count, LOCAL),), (LOCAL,),
        x, y, *map(i32, (n, h, w, c, kh, kw, sh, sw, pt, pl, ho, wo, count_include_pad)),
    )  # fmt: skip


@launcher("global_avg_pool")
def global_avg_pool(rt: DeviceRuntime, dt: np.dtype, x: DeviceArray, y: DeviceArray, n: int, hw: int, c: int) -> None:
    """``y[i, ch]`` = the mean of ``x[i, :, ch]`` for x (n, hw, c); NaN where hw == 0.

    Example:
        >>> from axiom.backends.gpu.opencl_runtime import OpenCLRuntime
        >>> rt = OpenCLRuntime.first_device_or_none()
        >>> y = np.full((2, 1), np.nan, np.float32)                       # what images of no pixels give
        >>> if rt is not None:
        ...     dy = rt.empty((2, 1), np.float32)
        ...     global_avg_pool(rt, np.dtype(np.float32), rt.empty((2, 0, 1), np.float32), dy, 2, 0, 1)
        ...     y = rt.to_host(dy)
        >>> bool(np.isnan(y).all())
        True
    """
    check_sizes("global_avg_pool", n=n, hw=hw, c=c)
    check_array("global_avg_pool", "x", x, n * hw * c, dt)
    check_array("global_avg_pool", "y", y, n * c, dt)
    rt.launch(
        "pooling", "axiom_global_avg_pool", dt, (blocks(n * c, GAP_COLS),), (LOCAL,), x, y, i32(n), i32(hw), i32(c)
    )
