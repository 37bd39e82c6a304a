"""Symbolic shapes, shape arithmetic and :class:`ShapeError`.

A shape is a tuple of dimensions; a dimension is an ``int`` or a symbol (a ``str`` such as
``"batch"`` or ``"H-2"``). Shape rules work on both, so a model's shapes are checked when it
is defined, before any data flows.

Example:
    >>> from axiom.shapes import conv_output_dim, format_shape
    >>> format_shape(("batch", conv_output_dim(224, 3), conv_output_dim("W", 3), 64))
    '(batch, 222, W-2, 64)'
"""

from __future__ import annotations

import math
from collections.abc import Iterable, Sequence

Dim = int | str
Shape = tuple[Dim, ...]

#: Symbol used for the batch axis throughout.
BATCH = "batch"


class ShapeError(ValueError):
    """A shape does not fit a layer. The message names the layer, the expectation and the input.

    Attributes ``layer`` (type name), ``position`` (1-based index in its container, dotted
    for nested containers such as ``"2.1"``, or ``None`` for a layer called on its own),
    ``expected`` and ``received`` (shape strings) and ``source`` (``(position, layer name)``
    of the layer that produced the input, or ``None`` for the model input) are kept for
    programs that handle the error.

    Example:
        >>> from axiom import Sequential, Conv2d, Dense
        >>> try:
        ...     Sequential(Conv2d(3, 64, (3, 3)), Dense(10), input_shape=("batch", 224, 224, 3))
        ... except ShapeError as err:
        ...     print(err)
        layer 2 (Dense): expects (batch, features) but receives (batch, 222, 222, 64) from layer 1 (Conv2d)
    """

    def __init__(
        self,
        layer: str,
        expected: str | Sequence[Dim],
        received: Sequence[Dim] | str,
        detail: str = "",
        *,
        position: int | str | None = None,
        source: tuple[int | str, str] | None = None,
    ) -> None:
        self.layer = layer
        self.expected = expected if isinstance(expected, str) else format_shape(expected)
        self.received = received if isinstance(received, str) else format_shape(received)
        self.detail = detail
        self.position = position
        self.source = source
        super().__init__(self._message())

    def _message(self) -> str:
        where = f"layer {self.position} ({self.layer})" if self.position is not None else self.layer
        msg = f"{where}: expects {self.expected} but receives {self.received}"
        if self.source is not None:
            msg += f" from layer {self.source[0]} ({self.source[1]})"
        elif self.position is not None:
            msg += " from the model input"
        if self.detail:
            msg += f" ({self.detail})"
        return msg

    def at(self, position: int, source: tuple[int | str, str] | None) -> ShapeError:
        """The same error seen from a container: this layer is its ``position``-th, fed by ``source``.

        Nested positions compose (``"2.1"``); an error about a nested container's input is
        re-attributed to whatever fed the container.
        """
        if self.position is None:
            new_pos: int | str = position
            new_src = source
        else:
            new_pos = f"{position}.{self.position}"
            new_src = source if self.source is None else (f"{position}.{self.source[0]}", self.source[1])
        return ShapeError(self.layer, self.expected, self.received, self.detail, position=new_pos, source=new_src)


def format_dim(d: Dim) -> str:
    """One dimension as shown in messages: ``3`` -> ``'3'``, ``"batch"`` -> ``'batch'``.

    Example:
        >>> format_dim(3), format_dim("H-2")
        ('3', 'H-2')
    """
    return str(d)


def format_shape(shape: Iterable[Dim]) -> str:
    """``("batch", 3)`` -> ``'(batch, 3)'`` (no quotes around symbols).

    Example:
        >>> format_shape(("batch", 3)), format_shape([7])
        ('(batch, 3)', '(7,)')
    """
    dims = [format_dim(d) for d in shape]
    return "(" + ", ".join(dims) + ("," if len(dims) == 1 else "") + ")"


def is_known(d: Dim) -> bool:
    """True for a concrete (integer) dimension.

    Example:
        >>> is_known(3), is_known("batch"), is_known(True)
        (True, False, False)
    """
    return isinstance(d, int) and not isinstance(d, bool)


def dims_match(a: Dim, b: Dim) -> bool:
    """Two dims are compatible unless both are concrete and differ (symbols match anything).

    Example:
        >>> dims_match(3, 3), dims_match(3, 4), dims_match("batch", 4)
        (True, False, True)
    """
    return not (is_known(a) and is_known(b) and a != b)


def normalize_shape(shape: Iterable[Dim | None]) -> Shape:
    """Validate a user-given shape; ``None`` becomes the ``"batch"`` symbol in front, else ``"d{i}"``.

    Example:
        >>> normalize_shape([None, 224, None, 3])
        ('batch', 224, 'd2', 3)
    """
    out: list[Dim] = []
    for i, d in enumerate(shape):
        if d is None:
            out.append(BATCH if i == 0 else f"d{i}")
        elif isinstance(d, bool) or not isinstance(d, int | str):
            raise TypeError(f"shape dimension {i} must be an int or a symbol name, got {d!r}")
        elif isinstance(d, int) and d < 0:
            raise ValueError(f"shape dimension {i} must be >= 0, got {d}")
        else:
            out.append(d)
    return tuple(out)


def _affine_symbol(sym: str, offset: int) -> str:
    """``'H' + (-2)`` -> ``'H-2'``; keeps expressions readable."""
    if offset == 0:
        return sym
    base = sym if sym.isidentifier() else f"({sym})"
    return f"{base}{offset:+d}"


def conv_output_dim(size: Dim, kernel: int, stride: int = 1, pad_total: int = 0, dilation: int = 1) -> Dim:
    """Output length of a convolution/pooling window along one axis.

    ``floor((size + pad_total - dilation*(kernel-1) - 1) / stride) + 1``; a symbol gives a
    symbolic expression. Raises ``ValueError`` when the window does not fit a concrete size.

    Example:
        >>> conv_output_dim(224, 3), conv_output_dim(224, 3, stride=2, pad_total=2), conv_output_dim("H", 3)
        (222, 112, 'H-2')
    """
    span = dilation * (kernel - 1) + 1
    if is_known(size):
        assert isinstance(size, int)
        if size + pad_total < span:
            raise ValueError(f"window of span {span} does not fit an axis of length {size} (+{pad_total} padding)")
        return (size + pad_total - span) // stride + 1
    assert isinstance(size, str)
    if stride == 1:
        return _affine_symbol(size, pad_total - span + 1)
    return f"({_affine_symbol(size, pad_total - span)})//{stride}+1"


def same_output_dim(size: Dim, stride: int) -> Dim:
    """Output length under ``padding="same"``: ``ceil(size / stride)``.

    Example:
        >>> same_output_dim(7, 2), same_output_dim("W", 1), same_output_dim("W", 2)
        (4, 'W', 'ceil(W/2)')
    """
    if is_known(size):
        assert isinstance(size, int)
        return -(-size // stride)
    return size if stride == 1 else f"ceil({size}/{stride})"


def same_padding(size: int, kernel: int, stride: int, dilation: int) -> tuple[int, int]:
    """(before, after) padding for ``"same"`` (TensorFlow/ONNX SAME_UPPER: extra cell after).

    Example:
        >>> same_padding(5, kernel=3, stride=1, dilation=1), same_padding(6, kernel=2, stride=1, dilation=1)
        ((1, 1), (0, 1))
    """
    span = dilation * (kernel - 1) + 1
    out = -(-size // stride)
    total = max((out - 1) * stride + span - size, 0)
    return total // 2, total - total // 2


def shape_size(shape: Sequence[Dim]) -> Dim:
    """Product of dims; symbolic if any dim is a symbol.

    Example:
        >>> shape_size((2, 3, 4)), shape_size(("batch", 10)), shape_size(())
        (24, 'batch*10', 1)
    """
    if all(is_known(d) for d in shape):
        return math.prod(shape)  # type: ignore[arg-type]
    return "*".join(str(d) for d in shape) if shape else 1
