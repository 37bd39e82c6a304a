"""The ``@axiom`` decorator and :class:`AxiomModel`, the base class of decorated models.

A decorated class declares ``input`` (a ``Tensor[dtype, shape]``), ``output``
(``Probabilities(n)``, ``Logits(n)`` or a ``Tensor[...]``) and ``forward(self, x)`` written as
a ``>>`` pipeline. Layers may be created inline in ``forward`` or in ``__init__`` as
attributes, as in PyTorch. The decorator traces ``forward`` with symbolic shapes when the
class is defined, so shape errors and output-type mismatches are raised at import with the
user's file and line. Each instance traces ``forward`` once more in its constructor and owns
the layers that trace creates; calling the model replays them (``forward`` is not re-run, no
layer is ever rebuilt) and runs the recorded ``ensure`` checks.

The result is an ordinary :class:`~axiom.nn.containers.Sequential` (``fit``, ``verify``,
``state_dict``, ``save``/``load``, ``compile`` work as for any model), plus
:meth:`AxiomModel.obligations` and :meth:`AxiomModel.prove_all` for ``prove`` statements.

Example:
    >>> import numpy as np
    >>> from axiom import Dense, Softmax, Tensor, float32, relu
    >>> from axiom.dsl import Probabilities, axiom
    >>> @axiom
    ... class Tiny:
    ...     input = Tensor[float32, ("batch", 4)]
    ...     output = Probabilities(3)
    ...
    ...     def forward(self, x):
    ...         return x >> Dense(4, 8) >> relu >> Dense(8, 3) >> Softmax()
    >>> model = Tiny()
    >>> model(np.ones((2, 4), np.float32)).shape, sorted(model.state_dict())[:2]
    ((2, 3), ['0.bias', '0.weight'])
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from typing import Any, ClassVar, TypeVar

from axiom.dsl.checks import Check, ensure_enabled
from axiom.dsl.outputs import OutputType, _is_softmax, as_output_type
from axiom.dsl.statements import Obligation
from axiom.dsl.trace import Program, trace
from axiom.nn.containers import Sequential
from axiom.nn.layer import Layer
from axiom.shapes import ShapeError
from axiom.tensor import Tensor, TensorType

T = TypeVar("T")


class OutputTypeError(TypeError):
    """The traced output does not fit the declared ``output`` (e.g. no softmax for ``Probabilities``).

    ``model``, ``declared`` and ``location`` (``file:line`` of the last pipeline step) are attributes.

    Example:
        >>> print(OutputTypeError("Net", "Probabilities(10)", "the last step is Dense, not a softmax", "m.py:9"))
        Net, m.py:9: output declared Probabilities(10): the last step is Dense, not a softmax
    """

    def __init__(self, model: str, declared: str, problem: str, location: str = "") -> None:
        self.model, self.declared, self.problem, self.location = model, declared, problem, location
        where = f"{model}, {location}" if location else model
        super().__init__(f"{where}: output declared {declared}: {problem}")


@dataclass
class ModelSpec:
    """What the decorator read from a class: the body, declarations, ``__init__`` and obligations.

    Example:
        >>> from axiom.tensor import float32
        >>> ModelSpec("M", lambda self, x: x, Tensor[float32, ("batch", 2)]).output is None
        True
    """

    name: str
    body: Callable[..., Any]
    input: TensorType
    output: OutputType | None = None
    init: Callable[..., None] | None = None
    proofs: list[Obligation] = field(default_factory=list)


class AxiomModel(Sequential):
    """Base class of ``@axiom`` models: a Sequential of the layers its traced ``forward`` applies.

    Construct instances through a decorated class (see :func:`axiom`); ``__init__`` arguments
    go to the class's own ``__init__``.

    Example:
        >>> import numpy as np
        >>> from axiom import Dense, Tensor, float32
        >>> from axiom.dsl import Logits, axiom
        >>> @axiom
        ... class Lin:
        ...     input = Tensor[float32, ("batch", 2)]
        ...     output = Logits(1)
        ...
        ...     def forward(self, x):
        ...         return x >> Dense(2, 1)
        >>> m = Lin()
        >>> isinstance(m, AxiomModel), m(np.zeros((3, 2), np.float32)).shape
        (True, (3, 1))
    """

    __axiom_spec__: ClassVar[ModelSpec]

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        spec = getattr(type(self), "__axiom_spec__", None)
        if spec is None:
            raise TypeError("AxiomModel is the base of @axiom classes; decorate a class with @axiom instead")
        Layer.__init__(self)
        if spec.init is not None:
            spec.init(self, *args, **kwargs)
        elif args or kwargs:
            raise TypeError(f"{spec.name}() takes no arguments (define __init__ to take some)")
        program = trace(spec.body, self, spec.input.shape, spec.name, build=True)
        Sequential.__init__(self, *program.layers, input_shape=spec.input.shape)
        self._axiom_program: Program = program
        if any(p.dtype != spec.input.dtype for p in self.parameters()):
            self.to(spec.input.dtype)  # the declared input dtype is the dtype the model computes in

    # the pipeline's layers are the children (attributes holding the same layers are aliases)
    def named_children(self) -> Iterator[tuple[str, Layer]]:
        for i, layer in enumerate(self.layers):
            yield str(i), layer

    @property
    def name(self) -> str:
        return type(self).__name__

    @property
    def checks(self) -> list[Check]:
        """The ``ensure`` checks recorded in ``forward``, in order."""
        return [c for _, c in self._axiom_program.checks]

    def forward(self, x: Tensor) -> Tensor:
        checks = self._axiom_program.checks if ensure_enabled() else []
        if not checks:
            return Sequential.forward(self, x)
        env: list[Any] = [x]
        for _, check in (c for c in checks if c[0] == 0):
            check.run(env)
        for i, layer in enumerate(self.layers, start=1):
            try:
                x = layer(x)
            except ShapeError as err:
                raise err.at(i, None if i == 1 else (i - 1, self.layers[i - 2].name)) from None
            env.append(x)
            for after, check in checks:
                if after == i:
                    check.run(env)
        return x

    def as_sequential(self) -> Sequential:
        """A plain Sequential sharing this model's layers (same parameters, no checks).

        Example:
            >>> from axiom import Dense, Tensor, float32
            >>> from axiom.dsl import Logits, axiom
            >>> @axiom
            ... class Lin:
            ...     input = Tensor[float32, ("batch", 2)]
            ...     output = Logits(1)
            ...
            ...     def forward(self, x):
            ...         return x >> Dense(2, 1)
            >>> m = Lin(); m.as_sequential()[0] is m[0]
            True
        """
        return Sequential(*self.layers, input_shape=self.input_shape)

    def obligations(self) -> list[Any]:
        """The :mod:`axiom.verify` properties stated by the class's ``prove`` statements.

        Example:
            >>> from axiom import Dense, Tensor, float32
            >>> from axiom.dsl import Logits, axiom, prove
            >>> @axiom
            ... class Lin:
            ...     input = Tensor[float32, ("batch", 2)]
            ...     output = Logits(1)
            ...     prove("forall x in Box(0, 1): output[0] <= 100")
            ...
            ...     def forward(self, x):
            ...         return x >> Dense(2, 1)
            >>> [p.name for p in Lin().obligations()]
            ['forall x in Box(0, 1): output[0] <= 100']
        """
        spec = type(self).__axiom_spec__
        n_out = _size(self._axiom_program.output_shape)
        softmax = _is_softmax(self.layers[-1])
        return [p for ob in spec.proofs for p in ob.properties(n_out, softmax)]

    def prove_all(self, timeout: float | None = None, method: str = "auto", seed: int = 0) -> Any:
        """Discharge every ``prove`` statement with :func:`axiom.verify.verify` (formal).

        Returns the :class:`~axiom.verify.VerificationResult`: one result per property,
        ``proven``, ``falsified`` (with a replayed counterexample) or ``unknown``.

        Example:
            >>> from axiom import Dense, Tensor, float32, manual_seed
            >>> from axiom.dsl import Logits, axiom, prove
            >>> @axiom
            ... class Lin:
            ...     input = Tensor[float32, ("batch", 2)]
            ...     output = Logits(1)
            ...     prove("forall x in Box(0, 1): output[0] <= 100")
            ...
            ...     def forward(self, x):
            ...         return x >> Dense(2, 1)
            >>> manual_seed(0); Lin().prove_all(timeout=5).status
            'proven'
        """
        from axiom.verify import verify

        props = self.obligations()
        if not props:
            raise ValueError(f"{self.name} has no prove(...) statements")
        return verify(self.as_sequential(), props, method=method, timeout=timeout, seed=seed)


def _size(shape: tuple[Any, ...]) -> int:
    n = 1
    for d in shape[1:]:
        if not isinstance(d, int):
            raise ValueError(f"prove needs a concrete output shape, got {shape}")
        n *= d
    return n


_RESERVED = ("__dict__", "__weakref__")


def axiom(cls: type[T]) -> type[T]:
    """Class decorator: turn a model spec into an :class:`AxiomModel`, tracing it at definition.

    The class must declare ``input = Tensor[dtype, shape]`` and ``forward(self, x)``; ``output``
    is optional (``Probabilities(n)``, ``Logits(n)``, ``Tensor[...]``). Raises
    :class:`~axiom.dsl.trace.DSLShapeError` (a ``ShapeError``) naming the file, line and shapes
    of a step that does not fit, and :class:`OutputTypeError` or ``DSLShapeError`` when the
    output does not match its declaration. ``__init__`` (optional) must be callable without
    arguments, because the definition-time trace calls it so.

    Example:
        >>> from axiom import Conv2d, Dense, Tensor, float32
        >>> try:
        ...     @axiom
        ...     class Broken:
        ...         input = Tensor[float32, ("batch", 8, 8, 1)]
        ...
        ...         def forward(self, x):
        ...             return x >> Conv2d(1, 4, (3, 3)) >> Dense(10)
        ... except ShapeError as err:
        ...     print(err.lineno > 0, err.received)
        True (batch, 6, 6, 4)
    """
    if not isinstance(cls, type):
        raise TypeError(f"@axiom decorates a class, got {type(cls).__name__}")
    ns = {k: v for k, v in vars(cls).items() if k not in _RESERVED}
    name = cls.__name__
    body = ns.pop("forward", None)
    if not callable(body):
        raise TypeError(f"{name}: an @axiom class needs a forward(self, x) method written as a >> pipeline")
    declared_in = ns.get("input")
    if not isinstance(declared_in, TensorType):
        raise TypeError(f'{name}: declare the input, e.g. input = Tensor[float32, ("batch", 28, 28, 1)]')
    output = as_output_type(ns.get("output"))
    proofs: list[Obligation] = list(ns.pop("__axiom_proofs__", []))
    proofs += [v for v in ns.values() if isinstance(v, Obligation) and all(v is not p for p in proofs)]
    init = ns.pop("__init__", None)
    bases = tuple(b for b in cls.__bases__ if b is not object)
    if bases:
        raise TypeError(f"{name}: an @axiom class cannot have base classes (it becomes an AxiomModel)")
    spec = ModelSpec(name, body, declared_in, output, init, proofs)
    new = type(name, (AxiomModel,), ns)
    new.__axiom_spec__ = spec
    _check_definition(new, spec)
    return new  # type: ignore[return-value]


def _check_definition(cls: type, spec: ModelSpec) -> None:
    """The definition-time trace: shapes, the declared output and the prove statements."""
    probe = cls.__new__(cls)
    Layer.__init__(probe)
    if spec.init is not None:
        try:
            spec.init(probe)
        except TypeError as err:
            raise TypeError(
                f"{spec.name}.__init__ must be callable without arguments (give every parameter a default), "
                f"because the class is traced when it is defined: {err}"
            ) from err
    program = trace(spec.body, probe, spec.input.shape, spec.name, build=False)
    last = program.steps[-1]
    where = "" if last.location is None else str(last.location)
    if spec.output is not None:
        problem = spec.output.problem(program.output_shape, last.layer)
        if problem is not None:
            if spec.output.shape_problem(program.output_shape) is not None:
                err = ShapeError(repr(spec.output), spec.output.shape, program.output_shape, "declared output")
                from axiom.dsl.trace import DSLShapeError

                raise DSLShapeError(err, spec.name, last.location)
            raise OutputTypeError(spec.name, repr(spec.output), problem, where)
    if spec.proofs:
        n_out = _size(program.output_shape)
        for ob in spec.proofs:
            ob.properties(n_out, _is_softmax(last.layer))
