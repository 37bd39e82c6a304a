"""Shape-only layers: Flatten and Reshape (the batch axis is always kept).

Both act per example: ``(batch, ...)`` stays batch-first and the remaining axes are read in
row-major (C) order, which for NHWC images means ``H, W, C`` with channels fastest. Sizes are
checked when the model is defined; symbolic dims give symbolic products such as ``'H*W*3'``.

Example:
    >>> import numpy as np
    >>> from axiom import Flatten, Reshape
    >>> Flatten().output_shape(("batch", 7, 7, 64))
    ('batch', 3136)
    >>> Flatten().output_shape(("batch", "H", "W", 3))
    ('batch', 'H*W*3')
    >>> Reshape((-1, 4))(np.zeros((2, 8), np.float32)).shape
    (2, 2, 4)
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from typing import Any

from axiom.nn.layer import Layer
from axiom.shapes import Dim, Shape, format_shape, is_known
from axiom.tensor import Tensor


def _symbol(d: Dim) -> str:
    s = str(d)
    return s if s.isidentifier() or s.isdigit() else f"({s})"


def symbolic_product(dims: Sequence[Dim]) -> Dim:
    """Product of ``dims``: an int when all are known, else a readable expression.

    Known factors are multiplied into one constant, kept at the end; compound symbols are
    parenthesised so the expression reads unambiguously.

    Example:
        >>> symbolic_product((2, "H", 3))
        'H*6'
        >>> symbolic_product(("H-2", "W-2", 64))
        '(H-2)*(W-2)*64'
        >>> symbolic_product((4, 5))
        20
    """
    known = math.prod(int(d) for d in dims if is_known(d))
    symbols = [_symbol(d) for d in dims if not is_known(d)]
    if not symbols:
        return known
    return "*".join(symbols + ([str(known)] if known != 1 else []))


class Flatten(Layer):
    """Flattens every axis but the batch axis: ``(batch, d1, ..., dk) -> (batch, d1*...*dk)``.

    Elements are taken in row-major order, so an NHWC image flattens as ``H, W, C`` (the same
    as ``torch.flatten(x_nhwc, 1)``; *not* torch's order on NCHW tensors). A ``(batch,)``
    input becomes ``(batch, 1)``.

    Example:
        >>> import numpy as np
        >>> Flatten()(np.arange(12, dtype=np.float32).reshape(1, 2, 2, 3)).numpy().tolist()
        [[0.0, 1.0, 2.0, 3.0, 4.0, 5.0, 6.0, 7.0, 8.0, 9.0, 10.0, 11.0]]
    """

    def expects(self) -> str:
        return "(batch, ...)"

    def default_input_shape(self) -> Shape:
        return ("batch", "H", "W", "C")

    def output_shape(self, input_shape: Sequence[Dim]) -> Shape:
        if len(input_shape) < 1:
            raise self.shape_error(input_shape, "a scalar has no batch axis")
        return (input_shape[0], symbolic_product(input_shape[1:]))

    def forward(self, x: Tensor) -> Tensor:
        return x.reshape(x.shape[0], -1) if x.shape[0] != 0 else x.reshape(0, math.prod(x.shape[1:]))


class Reshape(Layer):
    """Reshapes each example to ``target_shape``: ``(batch, ...) -> (batch, *target_shape)``.

    ``target_shape`` excludes the batch axis; its entries are positive ints and at most one
    ``-1``, inferred from the size. When the input's per-example size is known, a mismatch is a
    :class:`~axiom.shapes.ShapeError` when the model is defined; with symbolic input dims the
    ``-1`` axis becomes a symbolic expression and the size is checked when data arrives.

    Example:
        >>> import numpy as np
        >>> from axiom import ShapeError
        >>> Reshape((4, 4, 1)).output_shape(("batch", 16))
        ('batch', 4, 4, 1)
        >>> Reshape((-1, 64)).output_shape(("batch", "seq", 128))
        ('batch', 'seq*2', 64)
        >>> try:
        ...     Reshape((3, 5)).output_shape(("batch", 16))
        ... except ShapeError as err:
        ...     print(err.expected, "|", err.received, "|", err.detail)
        (batch, ...) with 15 values per example | (batch, 16) | 16 values per example cannot be reshaped to (3, 5)
    """

    def __init__(self, target_shape: int | Sequence[int]) -> None:
        super().__init__()
        dims: tuple[Any, ...] = (target_shape,) if isinstance(target_shape, int) else tuple(target_shape)
        for d in dims:
            if isinstance(d, bool) or not isinstance(d, int) or (d <= 0 and d != -1):
                raise ValueError(
                    f"Reshape: target_shape entries must be positive ints or one -1, got {d!r} in {target_shape!r}"
                )
        if sum(1 for d in dims if d == -1) > 1:
            raise ValueError(f"Reshape: at most one -1 is allowed in target_shape, got {target_shape!r}")
        self.target_shape: tuple[int, ...] = tuple(int(d) for d in dims)

    def expects(self) -> str:
        fixed = math.prod(d for d in self.target_shape if d != -1)
        if -1 in self.target_shape:
            return f"(batch, ...) with a multiple of {fixed} values per example"
        return f"(batch, ...) with {fixed} values per example"

    def default_input_shape(self) -> Shape:
        if -1 in self.target_shape:
            return ("batch", "features")
        return ("batch", math.prod(self.target_shape))

    def output_shape(self, input_shape: Sequence[Dim]) -> Shape:
        if len(input_shape) < 1:
            raise self.shape_error(input_shape, "a scalar has no batch axis")
        per_example = tuple(input_shape[1:])
        fixed = math.prod(d for d in self.target_shape if d != -1)
        target = format_shape(self.target_shape)
        if all(is_known(d) for d in per_example):
            size = math.prod(int(d) for d in per_example)
            ok = size % fixed == 0 if -1 in self.target_shape else size == fixed
            if not ok:
                raise self.shape_error(input_shape, f"{size} values per example cannot be reshaped to {target}")
            inferred: Dim = size // fixed
        else:
            known = math.prod(int(d) for d in per_example if is_known(d))
            if -1 not in self.target_shape and known != 0 and fixed % known != 0:
                raise self.shape_error(
                    input_shape, f"a multiple of {known} values per example cannot be reshaped to {target}"
                )
            symbols = [d for d in per_example if not is_known(d)]
            if known % fixed == 0:
                inferred = symbolic_product([*symbols, known // fixed])
            else:
                inferred = f"{_symbol(symbolic_product(per_example))}/{fixed}"
        return (input_shape[0], *(inferred if d == -1 else d for d in self.target_shape))

    def forward(self, x: Tensor) -> Tensor:
        out = self.output_shape(x.shape)
        return x.reshape(tuple(int(d) for d in out))

    def extra_repr(self) -> str:
        return format_shape(self.target_shape)


class Permute(Layer):
    """Reorders the per-example axes: ``Permute((2, 0, 1))`` maps ``(batch, H, W, C)`` to ``(batch, C, H, W)``.

    ``dims`` is a permutation of ``0..k-1`` over the axes *after* the batch axis. The ONNX
    importer uses it to move between ONNX's NCHW and Axiom's NHWC layouts exactly.

    Example:
        >>> import numpy as np
        >>> from axiom import Permute
        >>> Permute((2, 0, 1)).output_shape(("batch", 28, 28, 3))
        ('batch', 3, 28, 28)
        >>> Permute((1, 0))(np.arange(6, dtype=np.float32).reshape(1, 2, 3)).shape
        (1, 3, 2)
    """

    def __init__(self, dims: Sequence[int]) -> None:
        super().__init__()
        dims = tuple(int(d) for d in dims)
        if sorted(dims) != list(range(len(dims))):
            raise ValueError(f"Permute: dims must be a permutation of 0..{len(dims) - 1}, got {dims}")
        self.dims = dims

    def expects(self) -> str:
        return "(batch, " + ", ".join(f"d{i}" for i in range(len(self.dims))) + ")"

    def default_input_shape(self) -> Shape:
        return ("batch", *(f"d{i}" for i in range(len(self.dims))))

    def output_shape(self, input_shape: Sequence[Dim]) -> Shape:
        if len(input_shape) != len(self.dims) + 1:
            raise self.shape_error(input_shape, f"rank {len(self.dims) + 1} expected, got rank {len(input_shape)}")
        return (input_shape[0], *(input_shape[1 + d] for d in self.dims))

    def forward(self, x: Tensor) -> Tensor:
        return x.transpose(0, *(1 + d for d in self.dims))

    def extra_repr(self) -> str:
        return f"{self.dims}"
