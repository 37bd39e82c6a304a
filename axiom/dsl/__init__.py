"""The ``@axiom`` model DSL: typed model specs traced at definition, ``ensure`` checks, ``prove`` statements.

Modules, one job each: :mod:`~axiom.dsl.model` (the decorator and :class:`AxiomModel`),
:mod:`~axiom.dsl.trace` (symbolic tracing, :class:`DSLShapeError`),
:mod:`~axiom.dsl.outputs` (output types), :mod:`~axiom.dsl.checks` (run-time checks),
:mod:`~axiom.dsl.statements` (the ``prove`` grammar), :mod:`~axiom.dsl.conditions` (the
output conditions statements need), :mod:`~axiom.dsl.expr` (deferred ``ensure`` conditions)
and :mod:`~axiom.dsl.source` (source locations). See ``docs/dsl.md``.

Example:
    >>> import numpy as np
    >>> from axiom import Dense, Softmax, Tensor, float32, relu
    >>> from axiom.dsl import Probabilities, axiom, ensure, valid_probabilities
    >>> @axiom
    ... class Classifier:
    ...     input = Tensor[float32, ("batch", 4)]
    ...     output = Probabilities(3)
    ...
    ...     def forward(self, x):
    ...         y = x >> Dense(4, 16) >> relu >> Dense(16, 3) >> Softmax()
    ...         ensure(valid_probabilities(y), "softmax output")
    ...         return y
    >>> Classifier()(np.zeros((2, 4), np.float32)).shape
    (2, 3)
"""

from axiom.dsl.checks import (
    EnsureViolation,
    bounded,
    ensure,
    ensure_checks,
    ensure_enabled,
    finite,
    set_ensure,
    valid_probabilities,
)
from axiom.dsl.model import AxiomModel, OutputTypeError, axiom
from axiom.dsl.outputs import Logits, OutputType, Probabilities, Scores
from axiom.dsl.statements import Obligation, ProveSyntaxError, prove
from axiom.dsl.trace import DSLShapeError

__all__ = [
    "AxiomModel",
    "DSLShapeError",
    "EnsureViolation",
    "Logits",
    "Obligation",
    "OutputType",
    "OutputTypeError",
    "Probabilities",
    "ProveSyntaxError",
    "Scores",
    "axiom",
    "bounded",
    "ensure",
    "ensure_checks",
    "ensure_enabled",
    "finite",
    "prove",
    "set_ensure",
    "valid_probabilities",
]
