"""Dense (fully connected) layer: ``y = activation(x @ W + b)``, ``W`` shaped ``(in, out)``.

Example:
    >>> import numpy as np
    >>> from axiom import Dense, relu
    >>> Dense(784, 128, relu).weight.shape      # in and out given
    (784, 128)
    >>> lazy = Dense(10)                         # input size inferred from the first input
    >>> lazy(np.ones((2, 5), np.float32)).shape, lazy.weight.shape
    ((2, 10), (5, 10))
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from axiom import functional as F
from axiom.nn import init
from axiom.nn.activations import resolve_activation
from axiom.nn.layer import Layer, Parameter
from axiom.shapes import Dim, Shape, dims_match, is_known
from axiom.tensor import Tensor, as_dtype


def _positive_int(value: Any, what: str, owner: str) -> int:
    if isinstance(value, bool) or not isinstance(value, int) or value <= 0:
        raise ValueError(f"{owner}: {what} must be a positive int, got {value!r}")
    return value


class Dense(Layer):
    """Fully connected layer on ``(batch, features)``.

    ``Dense(in_features, out_features, activation=None)`` or, lazily, ``Dense(out_features)`` /
    ``Dense(out_features, activation)``.
    Weights are initialised like PyTorch's Linear: ``U(-1/sqrt(in), 1/sqrt(in))``.

    Example:
        >>> import numpy as np
        >>> layer = Dense(3, 2, "relu")
        >>> layer, layer.weight.shape, layer(np.ones((4, 3), np.float32)).shape
        (Dense(3, 2, relu), (3, 2), (4, 2))
    """

    def __init__(
        self,
        in_or_out: int,
        out_features: int | None = None,
        activation: Any = None,
        *,
        bias: bool = True,
        dtype: Any = None,
    ) -> None:
        super().__init__()
        if out_features is not None and not isinstance(out_features, int):
            # Dense(10, relu): lazy input size with an activation in second place.
            if activation is not None:
                raise TypeError(f"Dense: out_features must be a positive int, got {out_features!r}")
            out_features, activation = None, out_features
        if out_features is None:
            self.in_features: int | None = None
            self.out_features = _positive_int(in_or_out, "out_features", "Dense")
        else:
            self.in_features = _positive_int(in_or_out, "in_features", "Dense")
            self.out_features = _positive_int(out_features, "out_features", "Dense")
        self.activation = resolve_activation(activation, "Dense")
        self.use_bias = bool(bias)
        self._dtype = as_dtype(dtype) if dtype is not None else self._dtype
        self.weight: Parameter | None = None
        self.bias: Parameter | None = None
        if self.in_features is not None:
            self._create(self.in_features)

    def _create(self, in_features: int) -> None:
        self.in_features = in_features
        self.weight = Parameter(init.fan_in_uniform((in_features, self.out_features), in_features, self._dtype))
        if self.use_bias:
            self.bias = Parameter(init.fan_in_uniform((self.out_features,), in_features, self._dtype))

    @property
    def built(self) -> bool:
        return self.weight is not None

    def build(self, input_shape: Sequence[Dim]) -> None:
        if self.weight is None and is_known(input_shape[-1]):
            self._create(int(input_shape[-1]))

    def expects(self) -> str:
        return f"(batch, {self.in_features if self.in_features is not None else 'features'})"

    def default_input_shape(self) -> Shape:
        return ("batch", self.in_features if self.in_features is not None else "features")

    def output_shape(self, input_shape: Sequence[Dim]) -> Shape:
        if len(input_shape) != 2:
            raise self.shape_error(input_shape)
        if self.in_features is not None and not dims_match(input_shape[1], self.in_features):
            raise self.shape_error(input_shape)
        return (input_shape[0], self.out_features)

    def forward(self, x: Tensor) -> Tensor:
        y = F.linear(x, self.weight, self.bias)
        return self.activation(y) if self.activation is not None else y

    def extra_repr(self) -> str:
        act = f", {self.activation!r}" if self.activation is not None else ""
        return f"{self.in_features if self.in_features is not None else '?'}, {self.out_features}{act}"
