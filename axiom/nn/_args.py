"""Argument normalisation and the sliding-window shape rule shared by convolution and pooling.

Constructor arguments are checked once, here, so every window layer reports bad arguments
the same way: ``ValueError``/``TypeError`` naming the layer and the argument.

Example:
    >>> int_pair(3, "kernel_size", "Conv2d")
    (3, 3)
    >>> conv_padding(1, "Conv2d"), conv_padding("valid", "Conv2d"), conv_padding("same", "Conv2d")
    (((1, 1), (1, 1)), ((0, 0), (0, 0)), 'same')
    >>> conv_padding(((0, 1), (2, 3)), "Conv2d")
    ((0, 1), (2, 3))
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import TYPE_CHECKING, Any, Literal

from axiom.backends.base import Padding2d, Pair
from axiom.nn.dense import _positive_int as positive_int
from axiom.shapes import Dim, conv_output_dim, is_known, same_output_dim, same_padding

if TYPE_CHECKING:
    from axiom.nn.layer import Layer

__all__ = ["ConvPadding", "conv_padding", "explicit_padding", "int_pair", "positive_int", "window_output_hw"]

#: Explicit ``((top, bottom), (left, right))`` padding, or ``"same"`` (resolved per input size).
ConvPadding = Padding2d | Literal["same"]

_NO_PADDING: Padding2d = ((0, 0), (0, 0))


def _is_int(value: Any) -> bool:
    return isinstance(value, int) and not isinstance(value, bool)


def _check_int(value: Any, what: str, owner: str, minimum: int) -> int:
    if not _is_int(value):
        raise TypeError(f"{owner}: {what} must be an int or a pair of ints, got {value!r}")
    if value < minimum:
        kind = "positive" if minimum == 1 else f">= {minimum}"
        raise ValueError(f"{owner}: {what} must be {kind}, got {value!r}")
    return int(value)


def int_pair(value: Any, what: str, owner: str, minimum: int = 1) -> Pair:
    """``3`` -> ``(3, 3)``; ``(2, 3)`` stays; each entry must be an int ``>= minimum``.

    Example:
        >>> int_pair((2, 1), "stride", "MaxPool2d")
        (2, 1)
        >>> int_pair(0, "stride", "MaxPool2d")
        Traceback (most recent call last):
        ...
        ValueError: MaxPool2d: stride must be positive, got 0
    """
    if isinstance(value, list | tuple):
        if len(value) != 2:
            raise ValueError(f"{owner}: {what} must be an int or a pair of ints, got {value!r}")
        return (_check_int(value[0], what, owner, minimum), _check_int(value[1], what, owner, minimum))
    v = _check_int(value, what, owner, minimum)
    return (v, v)


def conv_padding(value: Any, owner: str) -> ConvPadding:
    """Normalise a convolution's ``padding`` to ``((top, bottom), (left, right))`` or ``"same"``.

    Accepts an int (all sides), a pair ``(rows, cols)`` (symmetric per axis), a pair of pairs
    ``((top, bottom), (left, right))``, ``"valid"`` (no padding) or ``"same"``.
    """
    if isinstance(value, str):
        if value.lower() == "valid":
            return _NO_PADDING
        if value.lower() == "same":
            return "same"
        raise ValueError(f"{owner}: padding must be an int, a pair, a pair of pairs, 'valid' or 'same', got {value!r}")
    if isinstance(value, list | tuple) and len(value) == 2 and all(isinstance(v, list | tuple) for v in value):
        top, bottom = int_pair(value[0], "padding (top, bottom)", owner, minimum=0)
        left, right = int_pair(value[1], "padding (left, right)", owner, minimum=0)
        return ((top, bottom), (left, right))
    ph, pw = int_pair(value, "padding", owner, minimum=0)
    return ((ph, ph), (pw, pw))


def explicit_padding(
    padding: ConvPadding, height: int, width: int, kernel: Pair, stride: Pair, dilation: Pair
) -> Padding2d:
    """The explicit padding for an input of ``height x width`` (resolves ``"same"``).

    Example:
        >>> explicit_padding("same", 7, 8, (3, 3), (2, 2), (1, 1))
        ((1, 1), (0, 1))
    """
    if padding != "same":
        return padding  # type: ignore[return-value]
    return (
        same_padding(height, kernel[0], stride[0], dilation[0]),
        same_padding(width, kernel[1], stride[1], dilation[1]),
    )


def window_output_hw(
    layer: Layer,
    input_shape: Sequence[Dim],
    kernel: Pair,
    stride: Pair,
    dilation: Pair,
    padding: ConvPadding,
) -> tuple[Dim, Dim]:
    """Output ``(H_out, W_out)`` of a sliding window over NHWC ``input_shape`` (symbolic dims allowed).

    Raises ``layer.shape_error`` when the rank is not 4 or the (dilated) window is larger
    than a concrete padded input.
    """
    layer.require_rank(input_shape, 4)
    out: list[Dim] = []
    for axis, name in ((0, "H"), (1, "W")):
        size = input_shape[1 + axis]
        if padding == "same":
            out.append(same_output_dim(size, stride[axis]))
            continue
        before, after = padding[axis]  # type: ignore[index]
        span = dilation[axis] * (kernel[axis] - 1) + 1
        if is_known(size) and size + before + after < span:  # type: ignore[operator]
            dilated = f" (dilated to span {span})" if span != kernel[axis] else ""
            raise layer.shape_error(
                input_shape,
                f"kernel size {kernel[axis]}{dilated} along {name} is larger than the padded input "
                f"{size}+{before}+{after}={size + before + after}",  # type: ignore[operator]
            )
        out.append(conv_output_dim(size, kernel[axis], stride[axis], before + after, dilation[axis]))
    return out[0], out[1]
