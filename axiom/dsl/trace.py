"""Tracing a model body with symbolic shapes.

The body's input is a :class:`Sym`: a symbol with a shape such as ``("batch", 28, 28, 1)``
and no data. ``sym >> layer`` asks the layer for its output shape (the rules of
:mod:`axiom.shapes`; no second shape checker) and records the step with the source line it
came from. A mismatch raises :class:`DSLShapeError`, a :class:`~axiom.shapes.ShapeError`
that also names the user's file, line and source text. ``ensure`` conditions on symbols are
recorded as checks. Bodies are straight pipelines (one value flowing through layers); use
``Residual(...)`` and ``Parallel(...)`` layers for branches.

Example:
    >>> from axiom import Dense, Softmax, relu
    >>> def body(self, x):
    ...     return x >> Dense(4, 8) >> relu >> Dense(8, 3) >> Softmax()
    >>> program = trace(body, None, ("batch", 4), "Tiny")
    >>> [layer.name for layer in program.layers], program.output_shape
    (['Dense', 'Activation', 'Dense', 'Softmax'], ('batch', 3))
"""

from __future__ import annotations

import sys
from collections.abc import Callable, Sequence
from contextvars import ContextVar
from dataclasses import dataclass, field
from typing import Any

from axiom.dsl.checks import Check
from axiom.dsl.expr import Node
from axiom.dsl.source import SourceLocation, frame_location, right_operand
from axiom.nn.activations import Activation, ActivationFunction
from axiom.nn.layer import Layer
from axiom.shapes import Dim, Shape, ShapeError, format_shape

_current: ContextVar[Tracer | None] = ContextVar("axiom_tracer", default=None)


def current_tracer() -> Tracer | None:
    """The tracer of the model body being traced here, or None.

    Example:
        >>> current_tracer() is None
        True
    """
    return _current.get()


class DSLShapeError(ShapeError):
    """A :class:`~axiom.shapes.ShapeError` raised while tracing a model body, with the source location.

    ``model`` (class name), ``filename``, ``lineno`` and ``line`` (source text) are kept next to
    the usual ``position``, ``layer``, ``expected`` and ``received``.

    Example:
        >>> from axiom.dsl.source import SourceLocation
        >>> base = ShapeError("Dense", "(batch, features)", ("batch", 6, 6, 8), position=2, source=(1, "Conv2d"))
        >>> err = DSLShapeError(base, "Broken", SourceLocation("m.py", 7, 7, 15, 32, "        return x >> Dense(10)"))
        >>> print(err)
        Broken, m.py:7: layer 2 (Dense): expects (batch, features) but receives (batch, 6, 6, 8) from layer 1 (Conv2d)
            return x >> Dense(10)
    """

    def __init__(self, err: ShapeError, model: str, location: SourceLocation | None) -> None:
        self.model = model
        self.location = location
        self.filename = None if location is None else location.filename
        self.lineno = None if location is None else location.lineno
        self.line = "" if location is None else location.line_text()
        super().__init__(err.layer, err.expected, err.received, err.detail, position=err.position, source=err.source)

    def _message(self) -> str:
        base = super()._message()
        where = self.model if self.location is None else f"{self.model}, {self.location}"
        text = f"{where}: {base}"
        if self.line:
            text += f"\n    {self.line}"
        return text


@dataclass
class Step:
    """One recorded pipeline step: the layer and where in the user's source it was applied.

    Example:
        >>> from axiom import ReLU
        >>> Step(ReLU(), None).layer.name
        'ReLU'
    """

    layer: Layer
    location: SourceLocation | None


@dataclass
class Program:
    """A traced body: the layers in order, the checks (after which step each runs), the output shape.

    Example:
        >>> Program().layers
        []
    """

    steps: list[Step] = field(default_factory=list)
    checks: list[tuple[int, Check]] = field(default_factory=list)
    output_shape: Shape = ()

    @property
    def layers(self) -> list[Layer]:
        return [s.layer for s in self.steps]


def as_layer(thing: Any) -> Layer | None:
    """A layer for a pipeline step: layers as they are, activation functions wrapped (``relu``).

    Example:
        >>> from axiom import relu
        >>> as_layer(relu), as_layer(print)
        (Activation(relu), None)
    """
    if isinstance(thing, Layer):
        return thing
    if isinstance(thing, ActivationFunction):
        return Activation(thing)
    return None


class Sym(Node):
    """A traced value: a symbolic shape and no data. ``sym >> layer`` records a pipeline step.

    Example:
        >>> from axiom import Dense
        >>> tracer = Tracer("M", build=False)
        >>> x = tracer.input(("batch", 3), "x")
        >>> (x >> Dense(3, 5)).shape
        ('batch', 5)
    """

    def __init__(self, tracer: Tracer, index: int, name: str, shape: Shape) -> None:
        super().__init__(index, name)
        self.tracer = tracer
        self.shape: Shape = tuple(shape)

    @property
    def ndim(self) -> int:
        return len(self.shape)

    def __rshift__(self, other: Any) -> Sym:
        return self.tracer.apply(self, other, right_operand(frame_location(sys._getframe(1))))

    def __repr__(self) -> str:
        return f"<traced {self.name}: {format_shape(self.shape)}>"


class Tracer:
    """Records the steps and checks of one trace of a model body.

    ``build=True`` builds lazy layers (``Dense(10)``) as shapes become known (an instance
    being created); ``build=False`` only checks shapes (the class being defined).

    Example:
        >>> from axiom import Dense
        >>> t = Tracer("M", build=True)
        >>> _ = t.input(("batch", 2), "x") >> Dense(4)
        >>> t.program.layers[0].weight.shape
        (2, 4)
    """

    def __init__(self, model: str, build: bool) -> None:
        self.model = model
        self.build = build
        self.program = Program()
        self._names: list[str] = []

    def input(self, shape: Sequence[Dim], name: str) -> Sym:
        """The symbol for the body's input."""
        self._names = [name]
        return Sym(self, 0, name, tuple(shape))

    def apply(self, sym: Sym, other: Any, location: SourceLocation | None) -> Sym:
        """Record ``sym >> other``; raise :class:`DSLShapeError` when the shapes do not fit."""
        where = "" if location is None else f"{location}: "
        if sym.tracer is not self:
            raise TypeError(f"{where}a traced value from another model was used in {self.model}")
        layer = as_layer(other)
        if layer is None:
            raise TypeError(
                f"{where}{self.model}: `>> {type(other).__name__}` is not a layer; pipeline steps must be layers "
                "(Dense(10), Softmax()) or activation functions (relu)"
            )
        steps = self.program.steps
        if sym.index != len(steps):
            raise TypeError(
                f"{where}{self.model}: the body must be one straight pipeline, but this step reads value "
                f"{sym.index} ({sym.name}) after {len(steps)} step(s); express branches with Residual(...) "
                "or Parallel(...) layers"
            )
        position = len(steps) + 1
        try:
            out = layer.output_shape(sym.shape)
            if self.build and not layer.built:
                layer.build(sym.shape)
        except ShapeError as err:
            source = None if position == 1 else (position - 1, steps[-1].layer.name)
            raise DSLShapeError(err.at(position, source), self.model, location) from None
        steps.append(Step(layer, location))
        return Sym(self, position, f"{self._names[0]}_{position}", out)

    def add_check(self, check: Check) -> None:
        """Record an ``ensure`` check; it runs once every value it reads is computed."""
        after = max(check.cond.nodes(), default=0)
        self.program.checks.append((after, check))


def trace(
    body: Callable[..., Any], owner: Any, input_shape: Sequence[Dim], model: str, *, build: bool = False
) -> Program:
    """Run ``body(owner, x)`` on a symbolic input of ``input_shape``; return the :class:`Program`.

    Example:
        >>> from axiom import Dense
        >>> trace(lambda self, x: x >> Dense(2, 1), None, ("batch", 2), "M").output_shape
        ('batch', 1)
    """
    tracer = Tracer(model, build)
    names = getattr(getattr(body, "__code__", None), "co_varnames", ())
    x = tracer.input(input_shape, names[1] if len(names) > 1 else "x")
    token = _current.set(tracer)
    try:
        out = body(owner, x)
    finally:
        _current.reset(token)
    steps = tracer.program.steps
    if not isinstance(out, Sym) or out.tracer is not tracer:
        raise TypeError(f"{model}.forward must return the traced pipeline (x >> layer >> ...), got {out!r}")
    if not steps:
        raise TypeError(f"{model}.forward applies no layer: write at least one step, e.g. x >> Dense(10)")
    if out.index != len(steps):
        raise TypeError(
            f"{model}.forward returns value {out.index} ({out.name}) but the pipeline has {len(steps)} steps: "
            "every step must lead to the output"
        )
    tracer.program.output_shape = out.shape
    return tracer.program
