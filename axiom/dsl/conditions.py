"""Output conditions that ``prove`` statements need beyond the stock ones of :mod:`axiom.verify`.

Both build on :class:`~axiom.verify.properties.OutputCondition`, so the verifier treats them
like any other condition (no second verifier):

- :class:`SumIsOne` (``sum(output) == 1``) is a ``ProbabilitiesValid``: the verifier's softmax
  procedure proves entries in [0, 1] *and* the sum, which implies it; counterexamples are
  replayed against the sum only.
- :class:`ExpressionCondition` (any other statement) has ``holds`` (so attacks can falsify
  it with a replayed counterexample) but no unsafe region and no formal procedure, so it is
  never proven: it ends ``unknown`` unless a counterexample turns up.

Example:
    >>> import numpy as np
    >>> SumIsOne(1e-5).holds(np.array([[0.5, 0.5], [2.0, -1.0], [0.5, 0.6]])).tolist()
    [True, True, False]
"""

from __future__ import annotations

from typing import Any

import numpy as np

from axiom.dsl.statements import Comparison, evaluate
from axiom.verify.properties import OutputCondition, ProbabilitiesValid


class SumIsOne(ProbabilitiesValid):
    """``sum(output) == 1`` within ``tol``; proven through the softmax procedure (which implies it).

    Example:
        >>> SumIsOne(1e-5).describe(), SumIsOne(1e-5).unsafe_region(2) is None
        ('sum(output) == 1', True)
    """

    name = "sum_is_one"

    def holds(self, y: np.ndarray) -> np.ndarray:
        f = np.asarray(y, np.float64).reshape(len(y), -1)
        return np.isfinite(f).all(axis=1) & (np.abs(f.sum(axis=1) - 1.0) <= self.tol)

    def describe(self) -> str:
        return "sum(output) == 1"


class ExpressionCondition(OutputCondition):
    """A statement's comparisons evaluated on outputs; no formal procedure (never proven).

    Example:
        >>> from axiom.dsl.statements import parse
        >>> ob = parse("forall x in Box(0, 1): output[0] * output[1] >= 0")
        >>> ExpressionCondition(ob.body, ob.statement).holds(np.array([[2.0, 3.0], [-1.0, 3.0]])).tolist()
        [True, False]
    """

    name = "expression"

    def __init__(self, parts: list[Comparison], text: str) -> None:
        self.parts = list(parts)
        self.text = text

    def holds(self, y: np.ndarray) -> np.ndarray:
        f = np.asarray(y, np.float64).reshape(len(y), -1)
        ok = np.isfinite(f).all(axis=1)
        with np.errstate(all="ignore"):
            for part in self.parts:
                ok &= evaluate(part, f)
        return ok

    def describe(self) -> str:
        return self.text

    def to_json(self) -> dict[str, Any]:
        return {"type": self.name, "statement": self.text}
