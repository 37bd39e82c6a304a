"""Pooling on NHWC images: :class:`MaxPool2d`, :class:`AvgPool2d` and :class:`GlobalAvgPool`.

Window arguments follow PyTorch: ``kernel_size``, ``stride`` (default: the kernel size) and
``padding`` are ints or ``(height, width)`` pairs; padding is symmetric and at most half the
kernel (``padding <= kernel_size // 2`` per axis). Output sizes use floor division
(PyTorch's ``ceil_mode=False``).

Example:
    >>> import numpy as np
    >>> from axiom import Sequential, Conv2d, MaxPool2d, GlobalAvgPool, Dense
    >>> model = Sequential(Conv2d(16, 3, padding="same"), MaxPool2d(2), GlobalAvgPool(), Dense(10),
    ...                    input_shape=(None, 32, 32, 3))
    >>> model(np.zeros((4, 32, 32, 3), np.float32)).shape
    (4, 10)
    >>> MaxPool2d(2).output_shape(("batch", "H", "W", "C"))
    ('batch', '(H-2)//2+1', '(W-2)//2+1', 'C')
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from axiom import functional as F
from axiom.backends.base import Padding2d
from axiom.nn._args import int_pair, window_output_hw
from axiom.nn.layer import Layer
from axiom.shapes import Dim, Shape
from axiom.tensor import Tensor

__all__ = ["AvgPool2d", "GlobalAvgPool", "MaxPool2d"]


class _Pool2d(Layer):
    """Shared window arguments and shape rule of MaxPool2d and AvgPool2d."""

    def __init__(self, kernel_size: Any, stride: Any, padding: Any, dilation: Any) -> None:
        super().__init__()
        owner = type(self).__name__
        self.kernel_size: tuple[int, int] = int_pair(kernel_size, "kernel_size", owner)
        self.stride: tuple[int, int] = self.kernel_size if stride is None else int_pair(stride, "stride", owner)
        self.dilation: tuple[int, int] = int_pair(dilation, "dilation", owner)
        ph, pw = int_pair(padding, "padding", owner, minimum=0)
        for pad, k, axis in ((ph, self.kernel_size[0], "height"), (pw, self.kernel_size[1], "width")):
            if pad > k // 2:
                raise ValueError(
                    f"{owner}: padding must be at most half the kernel size, got padding {pad} "
                    f"for kernel size {k} along {axis}"
                )
        self.padding: Padding2d = ((ph, ph), (pw, pw))

    def expects(self) -> str:
        return "(batch, H, W, C)"

    def default_input_shape(self) -> Shape:
        return ("batch", "H", "W", "C")

    def output_shape(self, input_shape: Sequence[Dim]) -> Shape:
        h, w = window_output_hw(self, input_shape, self.kernel_size, self.stride, self.dilation, self.padding)
        return (input_shape[0], h, w, input_shape[3])

    def extra_repr(self) -> str:
        parts = [f"kernel_size={self.kernel_size}", f"stride={self.stride}"]
        if self.padding != ((0, 0), (0, 0)):
            parts.append(f"padding={(self.padding[0][0], self.padding[1][0])}")
        if self.dilation != (1, 1):
            parts.append(f"dilation={self.dilation}")
        return ", ".join(parts)


class MaxPool2d(_Pool2d):
    """Maximum over each ``kernel_size`` window of ``(batch, H, W, C)``; padded cells never win.

    ``MaxPool2d(kernel_size, stride=None, padding=0, dilation=1)``; ``stride`` defaults to
    ``kernel_size``.

    Example:
        >>> import numpy as np
        >>> x = np.arange(16, dtype=np.float32).reshape(1, 4, 4, 1)
        >>> MaxPool2d(2)(x).numpy()[0, :, :, 0].tolist()
        [[5.0, 7.0], [13.0, 15.0]]
        >>> MaxPool2d(3, stride=1, padding=1).output_shape((8, 28, 28, 16))
        (8, 28, 28, 16)
    """

    def __init__(self, kernel_size: Any, stride: Any = None, padding: Any = 0, dilation: Any = 1) -> None:
        super().__init__(kernel_size, stride, padding, dilation)

    def forward(self, x: Tensor) -> Tensor:
        return F.max_pool2d(x, self.kernel_size, self.stride, self.padding, self.dilation)


class AvgPool2d(_Pool2d):
    """Mean over each ``kernel_size`` window of ``(batch, H, W, C)``.

    ``AvgPool2d(kernel_size, stride=None, padding=0, count_include_pad=True)``; with
    ``count_include_pad=True`` padded zeros count in the divisor (always ``kH * kW``), with
    ``False`` only real cells do (PyTorch's two conventions).

    Example:
        >>> import numpy as np
        >>> x = np.arange(16, dtype=np.float32).reshape(1, 4, 4, 1)
        >>> AvgPool2d(2)(x).numpy()[0, :, :, 0].tolist()
        [[2.5, 4.5], [10.5, 12.5]]
        >>> AvgPool2d(3, stride=2, padding=1).output_shape(("batch", 7, "W", 3))
        ('batch', 4, '(W-1)//2+1', 3)
    """

    def __init__(self, kernel_size: Any, stride: Any = None, padding: Any = 0, count_include_pad: bool = True) -> None:
        super().__init__(kernel_size, stride, padding, 1)
        self.count_include_pad = bool(count_include_pad)

    def forward(self, x: Tensor) -> Tensor:
        return F.avg_pool2d(x, self.kernel_size, self.stride, self.padding, self.count_include_pad)

    def extra_repr(self) -> str:
        return super().extra_repr() + ("" if self.count_include_pad else ", count_include_pad=False")


class GlobalAvgPool(Layer):
    """Mean over the spatial axes: ``(batch, H, W, C) -> (batch, C)``.

    Example:
        >>> import numpy as np
        >>> GlobalAvgPool()(np.ones((2, 5, 7, 3), np.float32)).shape
        (2, 3)
        >>> GlobalAvgPool().output_shape(("batch", "H", "W", 64))
        ('batch', 64)
    """

    def expects(self) -> str:
        return "(batch, H, W, C)"

    def default_input_shape(self) -> Shape:
        return ("batch", "H", "W", "C")

    def output_shape(self, input_shape: Sequence[Dim]) -> Shape:
        self.require_rank(input_shape, 4)
        if 0 in (input_shape[1], input_shape[2]):
            raise self.shape_error(input_shape, "the mean of an empty image is undefined")
        return (input_shape[0], input_shape[3])

    def forward(self, x: Tensor) -> Tensor:
        return F.global_avg_pool(x)
