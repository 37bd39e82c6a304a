"""Affine: element-wise ``y = x * scale + shift`` with constant, broadcastable ``scale``/``shift``.

Input normalisation (``(x - mean) / std``) is the common case; the ONNX importer maps
``Sub``/``Add``/``Mul``/``Div`` by constants onto it. The constants are buffers (saved in the
state dict), not trainable parameters.

Example:
    >>> import numpy as np
    >>> from axiom import Affine
    >>> norm = Affine(scale=1 / np.array([2.0, 4.0], np.float32), shift=-np.array([1.0, 1.0], np.float32) / [2, 4])
    >>> norm(np.array([[3.0, 5.0]], np.float32)).numpy().tolist()
    [[1.0, 1.0]]
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import numpy as np

from axiom.nn.layer import Layer
from axiom.shapes import Dim, Shape, dims_match, format_shape
from axiom.tensor import Tensor, as_dtype


class Affine(Layer):
    """Element-wise ``x * scale + shift``; both broadcast against one example (the batch axis excluded).

    ``Affine.normalize(mean, std)`` builds ``(x - mean) / std``.

    Example:
        >>> Affine.normalize(mean=0.5, std=0.25)(np.array([[1.0]], np.float32)).numpy().tolist()
        [[2.0]]
    """

    def __init__(self, scale: Any = 1.0, shift: Any = 0.0, *, dtype: Any = None) -> None:
        super().__init__()
        self._dtype = as_dtype(dtype) if dtype is not None else self._dtype
        scale_arr = np.asarray(scale, dtype=self._dtype)
        shift_arr = np.asarray(shift, dtype=self._dtype)
        for name, arr in (("scale", scale_arr), ("shift", shift_arr)):
            if not np.all(np.isfinite(arr)):
                raise ValueError(f"Affine: {name} must be finite, got {arr}")
        self.register_buffer("scale", scale_arr)
        self.register_buffer("shift", shift_arr)

    @classmethod
    def normalize(cls, mean: Any, std: Any, *, dtype: Any = None) -> Affine:
        """``(x - mean) / std`` as an Affine layer (``std`` must be non-zero)."""
        std_arr = np.asarray(std, np.float64)
        if np.any(std_arr == 0):
            raise ValueError("Affine.normalize: std must be non-zero")
        mean_arr = np.asarray(mean, np.float64)
        return cls(scale=1.0 / std_arr, shift=-mean_arr / std_arr, dtype=dtype)

    def _const_shape(self) -> tuple[int, ...]:
        return np.broadcast_shapes(self.scale.shape, self.shift.shape)

    def expects(self) -> str:
        shape = self._const_shape()
        return "(batch, ...) broadcastable with " + format_shape(shape) if shape else "(batch, ...)"

    def default_input_shape(self) -> Shape:
        shape = self._const_shape()
        return ("batch", *shape) if shape else ("batch", "features")

    def output_shape(self, input_shape: Sequence[Dim]) -> Shape:
        const = self._const_shape()
        example = tuple(input_shape[1:])
        if len(input_shape) < 1 or len(const) > len(example):
            raise self.shape_error(input_shape)
        for c, d in zip(reversed(const), reversed(example)):
            if c != 1 and not dims_match(c, d):
                raise self.shape_error(input_shape, f"constants of shape {format_shape(const)} do not broadcast")
        return tuple(input_shape)

    def forward(self, x: Tensor) -> Tensor:
        return (x * self.scale.data + self.shift.data).astype(x.dtype)

    def extra_repr(self) -> str:
        return f"scale{format_shape(self.scale.shape)}, shift{format_shape(self.shift.shape)}"
