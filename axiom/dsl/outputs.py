"""Output types of ``@axiom`` models: :class:`Probabilities`, :class:`Logits` (alias :class:`Scores`).

An output type states what the forward body must produce; the decorator checks it against
the traced output when the class is defined. ``Probabilities(n)`` needs shape
``(batch, n)`` and a final softmax; ``Logits(n)`` only the shape. A
``Tensor[dtype, shape]`` declaration checks the shape too.

Example:
    >>> from axiom import Dense, Softmax
    >>> Probabilities(10).problem(("batch", 10), Softmax()) is None
    True
    >>> Probabilities(10).problem(("batch", 10), Dense(4, 10))
    'the last step is Dense, not a softmax, so the outputs are not probabilities: end the pipeline with >> Softmax()'
"""

from __future__ import annotations

from typing import Any

from axiom.shapes import Shape, dims_match, format_shape


class OutputType:
    """Base class: the declared output of a model (per-example shape ``(n,)`` plus a batch axis).

    Example:
        >>> Logits(3).shape
        ('batch', 3)
    """

    def __init__(self, n: int) -> None:
        if isinstance(n, bool) or not isinstance(n, int) or n <= 0:
            raise ValueError(f"{type(self).__name__}: the number of outputs must be a positive int, got {n!r}")
        self.n = n

    @property
    def shape(self) -> Shape:
        return ("batch", self.n)

    def shape_problem(self, produced: Shape) -> str | None:
        """Why ``produced`` does not fit the declared shape, or None."""
        want = self.shape
        if len(produced) != len(want) or not all(dims_match(a, b) for a, b in zip(produced, want, strict=True)):
            return f"declared {self!r}, i.e. shape {format_shape(want)}, but the body produces {format_shape(produced)}"
        return None

    def problem(self, produced: Shape, last_layer: Any) -> str | None:
        """Why the traced output (its shape and the layer that made it) does not fit, or None."""
        return self.shape_problem(produced)

    def __repr__(self) -> str:
        return f"{type(self).__name__}({self.n})"


def _is_softmax(layer: Any) -> bool:
    from axiom.nn.activations import Softmax, softmax
    from axiom.nn.containers import Sequential

    while isinstance(layer, Sequential):
        layer = layer.layers[-1]
    if isinstance(layer, Softmax):
        return layer.axis in (-1, 1)
    return getattr(layer, "activation", None) == softmax


class Probabilities(OutputType):
    """``n`` class probabilities per example: shape ``(batch, n)``, produced by a softmax.

    Example:
        >>> Probabilities(10), Probabilities(10).shape
        (Probabilities(10), ('batch', 10))
    """

    def problem(self, produced: Shape, last_layer: Any) -> str | None:
        shape = self.shape_problem(produced)
        if shape is not None:
            return shape
        if not _is_softmax(last_layer):
            return (
                f"the last step is {type(last_layer).__name__}, not a softmax, so the outputs are not "
                "probabilities: end the pipeline with >> Softmax()"
            )
        return None


class Logits(OutputType):
    """``n`` unconstrained scores per example (shape ``(batch, n)``); no final activation required.

    Example:
        >>> Logits(2).problem(("batch", 3), None)
        'declared Logits(2), i.e. shape (batch, 2), but the body produces (batch, 3)'
    """


Scores = Logits


class ShapeOutput(OutputType):
    """An output declared as ``Tensor[dtype, shape]``: only the shape is checked.

    Example:
        >>> from axiom.tensor import Tensor, float32
        >>> ShapeOutput(Tensor[float32, ("batch", 4)]).problem(("batch", 4), None) is None
        True
    """

    def __init__(self, spec: Any) -> None:
        self.spec = spec
        self.n = 0

    @property
    def shape(self) -> Shape:
        return tuple(self.spec.shape)

    def __repr__(self) -> str:
        return repr(self.spec)


def as_output_type(declared: Any) -> OutputType | None:
    """The :class:`OutputType` for a class's ``output`` declaration (None when not declared).

    Example:
        >>> from axiom.tensor import Tensor, float32
        >>> as_output_type(Logits(3)), as_output_type(Tensor[float32, ("batch", 3)])
        (Logits(3), Tensor[float32, (batch, 3)])
    """
    from axiom.tensor import TensorType

    if declared is None or isinstance(declared, OutputType):
        return declared
    if isinstance(declared, TensorType):
        return ShapeOutput(declared)
    raise TypeError(
        f"output must be Probabilities(n), Logits(n) or Tensor[dtype, shape], got {type(declared).__name__}"
    )
