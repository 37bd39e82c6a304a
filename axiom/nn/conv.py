"""2-D convolutions on NHWC images: :class:`Conv2d` and :class:`DepthwiseConv2d`.

Inputs are ``(batch, H, W, C_in)``, weights ``(kH, kW, C_in/groups, C_out)``, biases
``(C_out,)``. Weights and biases are initialised like PyTorch's ``Conv2d``:
``U(-1/sqrt(fan_in), 1/sqrt(fan_in))`` with ``fan_in = C_in/groups * kH * kW``.

``padding`` is an int, a pair ``(rows, cols)``, a pair of pairs ``((top, bottom), (left, right))``,
``"valid"`` (none) or ``"same"``: TensorFlow/ONNX ``SAME_UPPER``, output ``ceil(H / stride)``,
any odd cell of padding going to the bottom/right; it is computed for each input size.

Example:
    >>> import numpy as np
    >>> from axiom import Conv2d, Sequential, Dense
    >>> conv = Conv2d(3, 64, (3, 3))
    >>> conv.weight.shape, conv.output_shape(("batch", "H", "W", 3))
    ((3, 3, 3, 64), ('batch', 'H-2', 'W-2', 64))
    >>> lazy = Conv2d(8, 3, stride=2, padding="same")     # in_channels inferred from the input
    >>> lazy(np.ones((1, 9, 9, 5), np.float32)).shape, lazy.weight.shape
    ((1, 5, 5, 8), (3, 3, 5, 8))
    >>> Sequential(Conv2d(3, 64, (3, 3)), Dense(10), input_shape=("batch", 224, 224, 3))  # doctest: +ELLIPSIS
    Traceback (most recent call last):
    ...
    axiom.shapes.ShapeError: layer 2 (Dense): expects (batch, features) but receives (batch, 222, 222, 64) from ...
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from axiom import functional as F
from axiom.nn import init
from axiom.nn._args import ConvPadding, conv_padding, explicit_padding, int_pair, positive_int, window_output_hw
from axiom.nn.activations import resolve_activation
from axiom.nn.layer import Layer, Parameter
from axiom.shapes import Dim, Shape, dims_match, is_known
from axiom.tensor import Tensor, as_dtype

__all__ = ["Conv2d", "DepthwiseConv2d"]


class Conv2d(Layer):
    """2-D convolution (cross-correlation, as in every framework) on ``(batch, H, W, C_in)``.

    ``Conv2d(in_channels, out_channels, kernel_size, stride=1, padding=0, dilation=1, groups=1,
    activation=None, *, bias=True, dtype=None)``, or lazily ``Conv2d(out_channels, kernel_size,
    **keywords)``: ``in_channels`` is then inferred from the input when the chain is checked
    (like ``Dense(10)``). In the lazy form pass everything after ``kernel_size`` by keyword:
    a third positional argument is read as ``kernel_size`` of the full form.

    ``kernel_size``, ``stride`` and ``dilation`` are ints or ``(height, width)`` pairs;
    ``groups`` must divide both channel counts. ``activation`` is applied after the bias
    (a name, an axiom activation such as ``axiom.relu``, or an activation layer).

    Example:
        >>> import numpy as np
        >>> conv = Conv2d(4, 8, 3, stride=2, padding=1, groups=2, activation="relu")
        >>> conv.weight.shape, conv.bias.shape
        ((3, 3, 2, 8), (8,))
        >>> conv(np.ones((2, 7, 7, 4), np.float32)).shape
        (2, 4, 4, 8)
        >>> conv.output_shape(("batch", "H", "W", 4))
        ('batch', '(H-1)//2+1', '(W-1)//2+1', 8)
        >>> from axiom import ShapeError
        >>> try:
        ...     Conv2d(3, 16, 5)(np.ones((1, 4, 4, 3), np.float32))
        ... except ShapeError as err:
        ...     print(err.expected, "|", err.detail)
        (batch, H, W, 3) | kernel size 5 along H is larger than the padded input 4+0+0=4
    """

    def __init__(
        self,
        in_or_out: int,
        out_or_kernel: Any,
        kernel_size: Any = None,
        stride: Any = 1,
        padding: Any = 0,
        dilation: Any = 1,
        groups: int = 1,
        activation: Any = None,
        *,
        bias: bool = True,
        dtype: Any = None,
    ) -> None:
        super().__init__()
        owner = type(self).__name__
        if kernel_size is None:  # lazy: Conv2d(out_channels, kernel_size, ...)
            in_channels: int | None = None
            out_channels = positive_int(in_or_out, "out_channels", owner)
            kernel_size = out_or_kernel
        else:
            in_channels = positive_int(in_or_out, "in_channels", owner)
            if not isinstance(out_or_kernel, int) or isinstance(out_or_kernel, bool):
                raise TypeError(
                    f"{owner}: out_channels must be a positive int, got {out_or_kernel!r} (the lazy form "
                    f"{owner}(out_channels, kernel_size, stride=..., ...) takes the later arguments by keyword)"
                )
            out_channels = positive_int(out_or_kernel, "out_channels", owner)
        groups = positive_int(groups, "groups", owner)
        if out_channels % groups:
            raise ValueError(f"{owner}: groups={groups} must divide out_channels={out_channels}")
        if in_channels is not None and in_channels % groups:
            raise ValueError(
                f"{owner}: groups={groups} must divide in_channels={in_channels} (and out_channels={out_channels})"
            )
        self.out_channels: int | None = out_channels
        self.groups: int | None = groups
        self._setup(in_channels, kernel_size, stride, padding, dilation, activation, bias, dtype)

    def _setup(
        self,
        in_channels: int | None,
        kernel_size: Any,
        stride: Any,
        padding: Any,
        dilation: Any,
        activation: Any,
        bias: bool,
        dtype: Any,
    ) -> None:
        """Arguments common to every convolution; creates the parameters when ``in_channels`` is known."""
        owner = type(self).__name__
        self.kernel_size: tuple[int, int] = int_pair(kernel_size, "kernel_size", owner)
        self.stride: tuple[int, int] = int_pair(stride, "stride", owner)
        self.dilation: tuple[int, int] = int_pair(dilation, "dilation", owner)
        self.padding: ConvPadding = conv_padding(padding, owner)
        self.activation = resolve_activation(activation, owner)
        self.use_bias = bool(bias)
        self._dtype = as_dtype(dtype) if dtype is not None else self._dtype
        self.in_channels = in_channels
        self.weight: Parameter | None = None
        self.bias: Parameter | None = None
        if in_channels is not None:
            self._create(in_channels)

    # -- channel rules (DepthwiseConv2d overrides these three) ----------------------
    def _channels_for(self, in_channels: int) -> tuple[int, int]:
        """``(out_channels, groups)`` for a given input channel count."""
        assert self.out_channels is not None and self.groups is not None
        return self.out_channels, self.groups

    def _out_channel_dim(self, in_dim: Dim) -> Dim:
        assert self.out_channels is not None
        return self.out_channels

    def _channel_problem(self, in_dim: Dim) -> str:
        """Why ``in_dim`` input channels do not fit this (possibly lazy) layer; ``""`` if they do."""
        if self.in_channels is not None:
            if not dims_match(in_dim, self.in_channels):
                return f"{self.in_channels} input channels expected, got {in_dim}"
        elif self.groups is not None and is_known(in_dim) and in_dim % self.groups:  # type: ignore[operator]
            return f"groups={self.groups} must divide the {in_dim} input channels"
        return ""

    # -- parameters -----------------------------------------------------------------
    def _create(self, in_channels: int) -> None:
        out_channels, groups = self._channels_for(in_channels)
        self.in_channels, self.out_channels, self.groups = in_channels, out_channels, groups
        kh, kw = self.kernel_size
        fan_in = in_channels // groups * kh * kw
        self.weight = Parameter(init.fan_in_uniform((kh, kw, in_channels // groups, out_channels), fan_in, self._dtype))
        if self.use_bias:
            self.bias = Parameter(init.fan_in_uniform((out_channels,), fan_in, self._dtype))

    @property
    def built(self) -> bool:
        return self.weight is not None

    def build(self, input_shape: Sequence[Dim]) -> None:
        if self.weight is None and len(input_shape) == 4 and is_known(input_shape[3]):
            self._create(int(input_shape[3]))

    # -- shapes ---------------------------------------------------------------------
    def expects(self) -> str:
        return f"(batch, H, W, {self.in_channels if self.in_channels is not None else 'C'})"

    def default_input_shape(self) -> Shape:
        return ("batch", "H", "W", self.in_channels if self.in_channels is not None else "C")

    def output_shape(self, input_shape: Sequence[Dim]) -> Shape:
        self.require_rank(input_shape, 4)
        problem = self._channel_problem(input_shape[3])
        if problem:
            raise self.shape_error(input_shape, problem)
        h, w = window_output_hw(self, input_shape, self.kernel_size, self.stride, self.dilation, self.padding)
        return (input_shape[0], h, w, self._out_channel_dim(input_shape[3]))

    # -- computation ----------------------------------------------------------------
    def forward(self, x: Tensor) -> Tensor:
        pad = explicit_padding(self.padding, x.shape[1], x.shape[2], self.kernel_size, self.stride, self.dilation)
        assert self.groups is not None
        y = F.conv2d(x, self.weight, self.bias, self.stride, pad, self.dilation, self.groups)
        return self.activation(y) if self.activation is not None else y

    def _options_repr(self, groups: bool) -> list[str]:
        parts = [f"kernel_size={self.kernel_size}"]
        if self.stride != (1, 1):
            parts.append(f"stride={self.stride}")
        if self.padding != ((0, 0), (0, 0)):
            parts.append(f"padding={self.padding!r}" if self.padding == "same" else f"padding={self.padding}")
        if self.dilation != (1, 1):
            parts.append(f"dilation={self.dilation}")
        if groups and self.groups != 1:
            parts.append(f"groups={self.groups}")
        if not self.use_bias:
            parts.append("bias=False")
        if self.activation is not None:
            parts.append(f"activation={self.activation!r}")
        return parts

    def extra_repr(self) -> str:
        cin = self.in_channels if self.in_channels is not None else "?"
        return ", ".join([f"{cin}, {self.out_channels}", *self._options_repr(groups=True)])


class DepthwiseConv2d(Conv2d):
    """Depthwise convolution: each input channel convolved with its own ``depth_multiplier`` filters.

    ``DepthwiseConv2d(kernel_size, stride=1, padding=0, dilation=1, depth_multiplier=1,
    activation=None, *, channels=None, bias=True, dtype=None)`` (the Keras ``DepthwiseConv2D``
    order). ``channels`` (keyword only, so ``DepthwiseConv2d(3, 2)`` is unambiguously
    kernel 3, stride 2) fixes the input channel count; left out, it is inferred from the
    input like ``Conv2d``'s lazy form.

    It is a :class:`Conv2d` with ``groups = C`` and ``out_channels = C * depth_multiplier``;
    weights are ``(kH, kW, 1, C * depth_multiplier)``, output channel ``c * depth_multiplier + m``
    being filter ``m`` of input channel ``c`` (PyTorch's ``groups=C`` layout).

    Example:
        >>> import numpy as np
        >>> dw = DepthwiseConv2d(3, padding="same", depth_multiplier=2)
        >>> dw.output_shape(("batch", "H", "W", "C"))
        ('batch', 'H', 'W', 'C*2')
        >>> dw(np.ones((1, 5, 5, 4), np.float32)).shape, dw.weight.shape, dw.groups
        ((1, 5, 5, 8), (3, 3, 1, 8), 4)
        >>> DepthwiseConv2d(3, channels=16).weight.shape
        (3, 3, 1, 16)
    """

    def __init__(
        self,
        kernel_size: Any,
        stride: Any = 1,
        padding: Any = 0,
        dilation: Any = 1,
        depth_multiplier: int = 1,
        activation: Any = None,
        *,
        channels: int | None = None,
        bias: bool = True,
        dtype: Any = None,
    ) -> None:
        Layer.__init__(self)  # not Conv2d.__init__: its positional forms do not apply here
        owner = type(self).__name__
        self.depth_multiplier = positive_int(depth_multiplier, "depth_multiplier", owner)
        in_channels = None if channels is None else positive_int(channels, "channels", owner)
        self.out_channels = None
        self.groups = None
        self._setup(in_channels, kernel_size, stride, padding, dilation, activation, bias, dtype)

    def _channels_for(self, in_channels: int) -> tuple[int, int]:
        return in_channels * self.depth_multiplier, in_channels

    def _out_channel_dim(self, in_dim: Dim) -> Dim:
        if is_known(in_dim):
            return in_dim * self.depth_multiplier  # type: ignore[operator]
        if self.depth_multiplier == 1:
            return in_dim
        return f"{in_dim if str(in_dim).isidentifier() else f'({in_dim})'}*{self.depth_multiplier}"

    def extra_repr(self) -> str:
        parts = [
            f"channels={self.in_channels if self.in_channels is not None else '?'}",
            *self._options_repr(groups=False),
        ]
        if self.depth_multiplier != 1:
            parts.append(f"depth_multiplier={self.depth_multiplier}")
        return ", ".join(parts)
