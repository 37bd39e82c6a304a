"""Launcher of ``cuda/conv2d.cu`` (NHWC conv2d with a bias + activation epilogue) and the
contract's ``conv2d`` on a device (:func:`conv2d_host`).

The launcher takes the convolution's geometry as one tuple of 18 ints in the field order of
:class:`axiom.backends.abi.Conv2dShape`; :func:`conv_shape` computes it (validated like the C
backend) for a device plan. Convolutions with one input channel per group (depthwise, with any
channel multiplier) run a direct kernel, all others an implicit GEMM.

Example:
    >>> shape = conv_shape((2, 5, 5, 4), (3, 3, 2, 6), (2, 2), ((1, 1), (1, 1)), (1, 1), 2)
    >>> dict(zip(SHAPE_FIELDS, shape))["out_h"], len(shape)
    (3, 18)
    >>> import numpy as np
    >>> from axiom.backends.gpu.opencl_runtime import OpenCLRuntime
    >>> rt = OpenCLRuntime.first_device_or_none()
    >>> if rt is not None:
    ...     f32 = np.dtype(np.float32)
    ...     x = rt.to_device(np.ones((2, 5, 5, 4), f32)); w = rt.to_device(np.ones((3, 3, 2, 6), f32))
    ...     y = rt.empty((2, 3, 3, 6), f32)
    ...     conv2d(rt, f32, shape, x, w, None, y, 0, 0.0)
    ...     print(float(rt.to_host(y)[0, 1, 1, 0]))
    ... else:
    ...     print(18.0)
    18.0
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from typing import TYPE_CHECKING, Any

import numpy as np

from axiom.backends.abi import Conv2dShape
from axiom.backends.base import Padding2d, Pair
from axiom.backends.gpu.ops import blocks, check_activation, check_array, i32, launcher, real
from axiom.backends.gpu.runtime import F64, DeviceArray, DeviceRuntime
from axiom.backends.native import _conv_params, check_conv2d, conv2d_output_shape

if TYPE_CHECKING:
    from axiom.backends.gpu.backend import GPUBackend

#: the 18 fields of a conv2d shape tuple (``axiom_conv2d_shape`` of csrc/axiom_kernels.h)
SHAPE_FIELDS: tuple[str, ...] = tuple(name for name, _ in Conv2dShape._fields_)
#: work-group size of both kernels; output tile of the implicit GEMM (cuda/gemm_tile.cuh)
LOCAL = 256
TILE = 64
MAX_AXIS1 = 65535
INT_MAX = 2**31 - 1


def conv_shape(
    x_shape: Sequence[int], w_shape: Sequence[int], stride: Pair, padding: Padding2d, dilation: Pair, groups: int
) -> tuple[int, ...]:
    """The 18-int shape tuple of an NHWC conv2d (field order :data:`SHAPE_FIELDS`), validated.

    Raises the C backend's ``ValueError`` / ``TypeError`` for inconsistent shapes or parameters.

    Example:
        >>> conv_shape((1, 8, 8, 3), (3, 3, 3, 16), (1, 1), ((1, 1), (1, 1)), (1, 1), 1)
        (1, 8, 8, 3, 16, 3, 3, 8, 8, 1, 1, 1, 1, 1, 1, 1, 1, 1)
    """
    x_shape, w_shape = tuple(int(v) for v in x_shape), tuple(int(v) for v in w_shape)
    n, ho, wo, cout = conv2d_output_shape(x_shape, w_shape, stride, padding, dilation, groups)
    (sh, sw), ((pt, pb), (pl, pr)), (dh, dw), g = _conv_params(stride, padding, dilation, groups)
    _, h, w, cin = x_shape
    kh, kw = w_shape[:2]
    return (n, h, w, cin, cout, kh, kw, ho, wo, sh, sw, pt, pb, pl, pr, dh, dw, g)


def _check_int_geometry(s: dict[str, int]) -> None:
    """ValueError unless the kernels' int arithmetic cannot overflow for this geometry."""
    checks = {
        "n * out_h * out_w": s["n"] * s["out_h"] * s["out_w"],
        "h + pad_top + pad_bottom": s["h"] + s["pad_top"] + s["pad_bottom"],
        "w + pad_left + pad_right": s["w"] + s["pad_left"] + s["pad_right"],
        "k_h * k_w * c_in / groups": s["k_h"] * s["k_w"] * (s["c_in"] // s["groups"]),
        "dilation_h * (k_h - 1) + 1": s["dilation_h"] * (s["k_h"] - 1) + 1,
        "dilation_w * (k_w - 1) + 1": s["dilation_w"] * (s["k_w"] - 1) + 1,
    }
    for what, value in checks.items():
        if value > INT_MAX:
            raise ValueError(f"conv2d: {what} = {value:,} is larger than the GPU kernels index (2**31 - 1)")


@launcher("conv2d")
def conv2d(
    rt: DeviceRuntime,
    dt: np.dtype,
    shape: Sequence[int],
    x: DeviceArray,
    w: DeviceArray,
    bias: DeviceArray | None,
    y: DeviceArray,
    act: int,
    alpha: float,
) -> None:
    """``y = act(conv2d(x, w) + bias)``, NHWC; ``shape`` the 18 ints of :data:`SHAPE_FIELDS`.

    ``x`` holds ``(n, h, w, c_in)``, ``w`` ``(k_h, k_w, c_in / groups, c_out)``, ``bias`` ``c_out``
    elements or None, ``y`` ``(n, out_h, out_w, c_out)`` (the output shape must be the one the
    other fields give).

    Example:
        >>> from axiom.backends.gpu.opencl_runtime import OpenCLRuntime
        >>> shape = conv_shape((1, 1, 2, 2), (1, 1, 2, 1), (1, 1), ((0, 0), (0, 0)), (1, 1), 1)    # a 1 x 1 conv
        >>> rt = OpenCLRuntime.first_device_or_none()
        >>> if rt is not None:
        ...     f32 = np.dtype(np.float32)
        ...     x = rt.to_device(np.array([1, -1, 2, 3], f32)); w = rt.to_device(np.ones(2, f32))
        ...     y = rt.empty((1, 1, 2, 1), f32)
        ...     conv2d(rt, f32, shape, x, w, rt.to_device(np.array([-1.0], f32)), y, 1, 0.0)   # relu(x w - 1)
        ...     print(rt.to_host(y).ravel().tolist())
        ... else:
        ...     print([0.0, 4.0])
        [0.0, 4.0]
    """
    if isinstance(shape, Conv2dShape):
        shape = tuple(getattr(shape, f) for f in SHAPE_FIELDS)
    if len(shape) != len(SHAPE_FIELDS):
        fields = " ".join(SHAPE_FIELDS)
        raise ValueError(f"conv2d: shape has {len(shape)} fields; expected {len(SHAPE_FIELDS)} ({fields})")
    s = dict(zip(SHAPE_FIELDS, (int(v) for v in shape)))
    stride, dilation = (s["stride_h"], s["stride_w"]), (s["dilation_h"], s["dilation_w"])
    padding = ((s["pad_top"], s["pad_bottom"]), (s["pad_left"], s["pad_right"]))
    x_shape = (s["n"], s["h"], s["w"], s["c_in"])
    w_shape = (s["k_h"], s["k_w"], s["c_in"] // max(1, s["groups"]), s["c_out"])
    expected = conv2d_output_shape(x_shape, w_shape, stride, padding, dilation, s["groups"])
    if expected != (s["n"], s["out_h"], s["out_w"], s["c_out"]):
        raise ValueError(f"conv2d: shape gives output (n, out_h, out_w, c_out) {expected[:3]} + ({s['c_out']},)")
    code = check_activation("conv2d", act)
    total = math.prod(expected)
    check_array("conv2d", "x", x, math.prod(x_shape), dt)
    check_array("conv2d", "w", w, math.prod(w_shape), dt)
    check_array("conv2d", "y", y, total, dt)
    check_array("conv2d", "bias", bias, s["c_out"], dt, optional=True)
    if total == 0:
        return
    _check_int_geometry(s)
    groups, cin_g, cout_g = s["groups"], s["c_in"] // s["groups"], s["c_out"] // s["groups"]
    ints = [
        i32(s[f])
        for f in "n h w c_in c_out k_h k_w out_h out_w stride_h stride_w pad_top pad_left dilation_h dilation_w".split()
    ]
    args = (x, w, bias, y, *ints, i32(groups), i32(code), real(dt, alpha))
    if cin_g == 1:  # depthwise (any channel multiplier): a direct kernel, one output per work-item
        rt.launch("conv2d", "axiom_conv2d_direct", dt, (blocks(total, LOCAL),), (LOCAL,), *args)
        return
    m = s["n"] * s["out_h"] * s["out_w"]
    tiles = -(-m // TILE) * -(-cout_g // TILE)
    rt.launch("conv2d", "axiom_conv2d_gemm", dt, (tiles, min(groups, MAX_AXIS1)), (LOCAL, 1), *args)


def conv2d_host(
    backend: GPUBackend,
    x: Any,
    w: Any,
    bias: Any,
    stride: Pair,
    padding: Padding2d,
    dilation: Pair,
    groups: int,
) -> np.ndarray:
    """NHWC ``conv2d(x, w) + bias`` on ``backend``'s device (host arrays in and out).

    Checks, errors and dtypes are :meth:`NativeBackend.conv2d <axiom.backends.native.NativeBackend.conv2d>`'s:
    the result has ``x``'s dtype, computed in float64 if an input is float64, else in float32;
    integer inputs, and float64 on a device without float64, run on the reference (recorded).

    Example:
        >>> import numpy as np
        >>> from axiom.backends.gpu.backend import OpenCLBackend
        >>> try:
        ...     be = OpenCLBackend()
        ... except ImportError:
        ...     be = None
        >>> x = np.ones((1, 4, 4, 2), np.float32); w = np.ones((3, 3, 2, 3), np.float32)
        >>> be is None or conv2d_host(be, x, w, None, (1, 1), ((0, 0), (0, 0)), (1, 1), 1).shape == (1, 2, 2, 3)
        True
    """
    out_shape, dt, reason = check_conv2d(x, w, bias, stride, padding, dilation, groups)
    if dt is None:
        return backend.fallback("conv2d", str(reason), x, w, bias, stride, padding, dilation, groups)
    rt = backend.runtime
    if dt == F64 and not rt.supports_float64:
        return backend.fallback(
            "conv2d", f"device {rt.device_name} has no float64", x, w, bias, stride, padding, dilation, groups
        )
    shape = conv_shape(x.shape, w.shape, stride, padding, dilation, groups)
    if 0 in out_shape:
        return np.zeros(out_shape, x.dtype)
    dx, dw = rt.to_device(x, dt), rt.to_device(w, dt)
    db = None if bias is None else rt.to_device(bias, dt)
    dy = rt.empty(out_shape, dt)
    conv2d(rt, dt, shape, dx, dw, db, dy, 0, 0.0)
    return rt.to_host(dy).astype(x.dtype, copy=False)
