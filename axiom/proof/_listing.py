"""The network, boxes and unsafe clauses of a problem as list literals of a prover's syntax (internal).

Lean and Isabelle state the same theorem over the same list encoding; only the rational
literal and the booleans differ.

Example:
    >>> from fractions import Fraction
    >>> vec(str, [Fraction(1, 2), Fraction(3)])
    '[1/2, 3]'
"""

from __future__ import annotations

import os
from collections.abc import Callable, Iterable
from fractions import Fraction

from axiom.proof._rational import RationalProblem

Literal = Callable[[Fraction], str]


def vec(lit: Literal, values: Iterable[Fraction]) -> str:
    """``[a, b, ...]`` with each value written by ``lit``."""
    return "[" + ", ".join(lit(v) for v in values) + "]"


def listings(problem: RationalProblem, lit: Literal, true: str, false: str) -> tuple[list[str], list[str], list[str]]:
    """(layers, boxes, clauses): one literal per layer ``(relu?, [(weights, bias), ...])``, per box, per clause."""
    layers = [
        f"({true if layer.relu else false}, ["
        + ", ".join(f"({vec(lit, w)}, {lit(b)})" for w, b in zip(layer.weights, layer.biases))
        + "])"
        for layer in problem.layers
    ]
    boxes = ["[" + ", ".join(f"({lit(a)}, {lit(b)})" for a, b in zip(lo, hi)) + "]" for lo, hi in problem.boxes]
    clauses = ["[" + ", ".join(f"({vec(lit, c)}, {lit(d)})" for c, d in cl) + "]" for cl in problem.unsafe]
    return layers, boxes, clauses


def write_text(text: str, path: str | os.PathLike[str] | None) -> str:
    """Write ``text`` to ``path`` (when given) as UTF-8 and return it."""
    if path is not None:
        with open(path, "w", encoding="utf-8") as f:
            f.write(text)
    return text
