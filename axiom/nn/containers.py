"""Containers: Sequential (aliases Chain, Pipeline), Residual, Parallel (alias Concat).

Containers check the whole chain of shapes when they are *built*, so a mismatch is a
:class:`~axiom.shapes.ShapeError` at definition time naming the layer's position, its type,
the incoming shape and what it expected.

Example:
    >>> import numpy as np
    >>> from axiom import Sequential, Dense, Softmax, relu
    >>> model = Sequential(Dense(784, 128, relu), Dense(128, 10), Softmax())
    >>> model.output_shape(("batch", 784))
    ('batch', 10)
    >>> model(np.zeros((16, 784), np.float32)).shape
    (16, 10)
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import numpy as np

from axiom.nn.layer import Layer
from axiom.shapes import Dim, Shape, ShapeError, dims_match, format_shape, is_known, normalize_shape
from axiom.tensor import Tensor, concat


def _check_layers(layers: Sequence[Any], owner: str) -> list[Layer]:
    if not layers:
        raise ValueError(f"{owner}: needs at least one layer")
    for i, layer in enumerate(layers, start=1):
        if not isinstance(layer, Layer):
            raise TypeError(f"{owner}: item {i} must be a Layer, got {type(layer).__name__} ({layer!r})")
    return list(layers)


def propagate(layers: Sequence[Layer], shape: Sequence[Dim], build: bool) -> Shape:
    """Push ``shape`` through ``layers``; build lazy layers on the way if ``build``.

    Errors are re-raised with the 1-based position and the layer that fed the bad shape.

    Example:
        >>> from axiom import Dense
        >>> propagate([Dense(4, 8), Dense(8, 2)], ("batch", 4), build=False)
        ('batch', 2)
    """
    current: Shape = tuple(shape)
    for i, layer in enumerate(layers, start=1):
        source = None if i == 1 else (i - 1, layers[i - 2].name)
        try:
            out = layer.output_shape(current)
            if build and not layer.built:
                layer.build(current)
        except ShapeError as err:
            raise err.at(i, source) from None
        current = out
    return current


class _Container(Layer):
    """What every container shares: it speaks for its first layer and is built when all children are."""

    def _first(self) -> Layer:
        return self.children()[0]

    @property
    def accepts_integers(self) -> bool:  # type: ignore[override]
        return self._first().accepts_integers

    def expects(self) -> str:
        return self._first().expects()

    def default_input_shape(self) -> Shape:
        return self._first().default_input_shape()

    @property
    def built(self) -> bool:
        return all(child.built for child in self.children())

    def param_dtype(self) -> np.dtype | None:
        return self._first().param_dtype()


class Sequential(_Container):
    """Layers applied one after another; the chain's shapes are checked on construction.

    ``input_shape`` (optional, e.g. ``(None, 224, 224, 3)``) states the model input; without
    it the first layer's own expectation is used (``Dense(784, ...)`` -> ``(batch, 784)``).
    ``check_finite=True`` raises ``ValueError`` naming the layer whenever a NaN/Inf enters or
    leaves a layer.

    Example:
        >>> from axiom import Dense, relu
        >>> model = Sequential(Dense(4, 8, relu), Dense(8, 2))
        >>> len(model), model.output_shape(("batch", 4)), model(np.ones((3, 4), np.float32)).shape
        (2, ('batch', 2), (3, 2))
    """

    def __init__(self, *layers: Layer, input_shape: Sequence[Dim | None] | None = None, check_finite: bool = False):
        super().__init__()
        if len(layers) == 1 and isinstance(layers[0], list | tuple):
            layers = tuple(layers[0])
        self.layers = _check_layers(layers, type(self).__name__)
        self.check_finite = bool(check_finite)
        self.input_shape: Shape = (
            normalize_shape(input_shape) if input_shape is not None else self.layers[0].default_input_shape()
        )
        propagate(self.layers, self.input_shape, build=True)

    def __len__(self) -> int:
        return len(self.layers)

    def __getitem__(self, index: int) -> Layer:
        return self.layers[index]

    def __iter__(self) -> Any:
        return iter(self.layers)

    def expects(self) -> str:
        return format_shape(self.input_shape)

    def default_input_shape(self) -> Shape:
        return self.input_shape

    def build(self, input_shape: Sequence[Dim]) -> None:
        propagate(self.layers, input_shape, build=True)

    def output_shape(self, input_shape: Sequence[Dim]) -> Shape:
        return propagate(self.layers, input_shape, build=False)

    def forward(self, x: Tensor) -> Tensor:
        for i, layer in enumerate(self.layers, start=1):
            if self.check_finite:
                _require_finite(x, i, layer, "receives")
            try:
                x = layer(x)
            except ShapeError as err:
                raise err.at(i, None if i == 1 else (i - 1, self.layers[i - 2].name)) from None
        if self.check_finite:
            _require_finite(x, len(self.layers), self.layers[-1], "produces")
        return x


def _require_finite(x: Tensor, position: int, layer: Layer, verb: str) -> None:
    data = x.data
    if data.dtype.kind == "f" or data.dtype.name == "bfloat16":
        bad = ~np.isfinite(data.astype(np.float32) if data.dtype.name == "bfloat16" else data)
        if bad.any():
            first = tuple(int(i) for i in np.argwhere(bad)[0])
            raise ValueError(
                f"layer {position} ({layer.name}) {verb} non-finite values (NaN/Inf), first at index {first}; "
                "expected finite values because check_finite=True"
            )


Chain = Sequential
Pipeline = Sequential


class Residual(_Container):
    """``x + f(x)``: the wrapped layers must keep the shape of their input.

    Example:
        >>> from axiom import Dense
        >>> Residual(Dense(8, 8)).output_shape(("batch", 8))
        ('batch', 8)
    """

    def __init__(self, *layers: Layer) -> None:
        super().__init__()
        self.layers = _check_layers(layers, "Residual")

    def build(self, input_shape: Sequence[Dim]) -> None:
        propagate(self.layers, input_shape, build=True)

    def output_shape(self, input_shape: Sequence[Dim]) -> Shape:
        out = propagate(self.layers, input_shape, build=False)
        if len(out) != len(input_shape) or not all(dims_match(a, b) for a, b in zip(out, input_shape, strict=True)):
            raise ShapeError(
                "Residual",
                f"its branch to keep the input shape {format_shape(input_shape)}",
                out,
                "x + f(x) needs f(x) shaped like x",
            )
        return tuple(input_shape)

    def forward(self, x: Tensor) -> Tensor:
        y = x
        for layer in self.layers:
            y = layer(y)
        return x + y


class Parallel(_Container):
    """Runs branches on the same input and concatenates their outputs along ``axis`` (default last).

    Example:
        >>> from axiom import Dense
        >>> Parallel(Dense(4, 3), Dense(4, 5)).output_shape(("batch", 4))
        ('batch', 8)
    """

    def __init__(self, *branches: Layer, axis: int = -1) -> None:
        super().__init__()
        self.branches = _check_layers(branches, "Parallel")
        self.axis = axis

    def named_children(self) -> Any:
        for i, branch in enumerate(self.branches):
            yield str(i), branch

    def build(self, input_shape: Sequence[Dim]) -> None:
        for i, b in enumerate(self.branches, start=1):
            try:
                b.build(input_shape) if not b.built else None
            except ShapeError as err:
                raise err.at(i, None) from None

    def output_shape(self, input_shape: Sequence[Dim]) -> Shape:
        outs = []
        for i, b in enumerate(self.branches, start=1):
            try:
                outs.append(b.output_shape(input_shape))
            except ShapeError as err:
                raise err.at(i, None) from None
        first = outs[0]
        rank = len(first)
        axis = self.axis % rank if rank else 0
        for i, o in enumerate(outs[1:], start=2):
            same = len(o) == rank and all(dims_match(a, b) for j, (a, b) in enumerate(zip(o, first)) if j != axis)
            if not same:
                raise ShapeError(
                    "Parallel",
                    f"branch outputs that agree on every axis but {self.axis}, like branch 1's {format_shape(first)}",
                    o,
                    f"branch {i}",
                )
        dims = [o[axis] for o in outs]
        total: Dim = sum(dims) if all(is_known(d) for d in dims) else "+".join(str(d) for d in dims)  # type: ignore[arg-type]
        return tuple(total if j == axis else d for j, d in enumerate(first))

    def forward(self, x: Tensor) -> Tensor:
        return concat([b(x) for b in self.branches], axis=self.axis)


Concat = Parallel
