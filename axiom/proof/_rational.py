"""Exact rational form of a Dense/ReLU network, its input boxes and its unsafe region (internal).

The weights are the exact rationals of the stored float values (``fractions.Fraction`` of each
float32/float64 number, no rounding), so every exporter (SMT-LIB, Coq, Lean 4, Isabelle) states
the property of the same real-arithmetic network. :func:`interval_check` is a Python mirror of the
Coq checker of :mod:`axiom.proof.coq` (same splitting rule, same exact arithmetic), used to know
before writing a Coq file whether its proof by computation will go through.

Example:
    >>> from axiom import Dense, Sequential, relu
    >>> from axiom.verify import Box, OutputBounds
    >>> net = Sequential(Dense(2, 2, relu), Dense(2, 1))
    >>> rn = rational_problem(net, OutputBounds(upper=1e6, over=Box(-1, 1, shape=(2,))))
    >>> [len(layer.weights) for layer in rn.layers], rn.layers[0].relu, len(rn.boxes)
    ([2, 1], True, 1)
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass
from fractions import Fraction
from typing import Any

import numpy as np

from axiom.verify.bounds._graph import build_graph
from axiom.verify.bounds._ops import ActivationOp, DenseOp, IndexOp, UnsupportedLayerError
from axiom.verify.concrete import model_input_shape
from axiom.verify.properties import Property
from axiom.verify.sets import InputSet
from axiom.verify.smt import _clauses_and_condition, _input_boxes

__all__ = ["RationalLayer", "RationalProblem", "interval_check", "rational_problem", "resolve_spec"]

Interval = tuple[Fraction, Fraction]


def _q(v: Any) -> Fraction:
    f = float(v)
    if not math.isfinite(f):
        raise ValueError(f"proof export: non-finite number {f} in the network or the property")
    return Fraction(f)


@dataclass
class RationalLayer:
    """One affine layer ``z_j = sum_i weights[j][i] x_i + biases[j]``, then ReLU if ``relu``.

    ``weights`` has one row per OUTPUT neuron (the transpose of axiom's ``(in, out)`` Dense weight).

    Example:
        >>> layer = RationalLayer([[Fraction(1), Fraction(-1)]], [Fraction(1, 2)], relu=True)
        >>> layer.eval([Fraction(0), Fraction(2)])
        [Fraction(0, 1)]
    """

    weights: list[list[Fraction]]
    biases: list[Fraction]
    relu: bool = False

    def eval(self, x: Sequence[Fraction]) -> list[Fraction]:
        """The exact output of this layer on ``x``.

        Example:
            >>> RationalLayer([[Fraction(2)]], [Fraction(1)]).eval([Fraction(3)])
            [Fraction(7, 1)]
        """
        out = []
        for w, b in zip(self.weights, self.biases):
            z = sum((a * v for a, v in zip(w, x)), Fraction(0)) + b
            out.append(Fraction(0) if self.relu and z <= 0 else z)
        return out


@dataclass
class RationalProblem:
    """A network over Q, the input boxes (their union is the input set) and the unsafe clauses.

    ``unsafe`` is a disjunction of clauses; a clause is a conjunction of atoms ``(c, d)`` meaning
    ``c . y <= d``. The property holds iff no input of a box reaches any clause.

    Example:
        >>> p = RationalProblem([RationalLayer([[Fraction(1)]], [Fraction(0)])], [([Fraction(0)], [Fraction(1)])],
        ...                     [[([Fraction(-1)], Fraction(-2))]])
        >>> p.n_inputs, p.n_outputs, p.eval([Fraction(1, 2)])
        (1, 1, [Fraction(1, 2)])
    """

    layers: list[RationalLayer]
    boxes: list[tuple[list[Fraction], list[Fraction]]]
    unsafe: list[list[tuple[list[Fraction], Fraction]]]

    @property
    def n_inputs(self) -> int:
        return len(self.boxes[0][0])

    @property
    def n_outputs(self) -> int:
        return len(self.layers[-1].biases) if self.layers else self.n_inputs

    def eval(self, x: Sequence[Fraction]) -> list[Fraction]:
        """The exact network output on ``x``.

        Example:
            >>> RationalProblem([], [([Fraction(0)], [Fraction(1)])], []).eval([Fraction(1)])
            [Fraction(1, 1)]
        """
        v = list(x)
        for layer in self.layers:
            v = layer.eval(v)
        return v


def resolve_spec(prop_or_condition: Any, input_set: InputSet | None) -> tuple[Any, InputSet]:
    """The output condition and the input set of a Property (or of a condition plus a set).

    Example:
        >>> from axiom.verify import Box, OutputBounds
        >>> cond, s = resolve_spec(OutputBounds(upper=1.0, over=Box(0, 1, shape=(1,))), None)
        >>> type(cond).__name__, type(s).__name__
        ('WithinBounds', 'Box')
    """
    if isinstance(prop_or_condition, Property):
        if input_set is None:
            input_set = prop_or_condition.input_set
        prop_or_condition = prop_or_condition.condition
    if input_set is None:
        raise ValueError("proof export needs an input set: pass input_set= or a Property that has one")
    return prop_or_condition, input_set


def _layers(model: Any) -> list[RationalLayer]:
    in_shape = model_input_shape(model)
    graph = build_graph(model, in_shape)
    model.eval()
    layers: list[RationalLayer] = []
    last_relu_free = False  # the last layer is affine without an activation yet
    for node in graph.nodes[1:]:
        op = node.op
        if node.inputs != [node.id - 1]:
            raise UnsupportedLayerError(f"proof export supports chains of layers; {node.name} is a branch or join")
        if isinstance(op, DenseOp):
            W = np.asarray(op.W, np.float64)
            b = np.zeros(W.shape[1]) if op.bias is None else np.asarray(op.bias, np.float64).ravel()
            layers.append(RationalLayer([[_q(W[i, j]) for i in range(W.shape[0])] for j in range(W.shape[1])],
                                        [_q(v) for v in b]))  # fmt: skip
            last_relu_free = True
        elif isinstance(op, ActivationOp) and op.math.kind == "identity":
            continue
        elif isinstance(op, ActivationOp) and op.math.kind == "relu":
            if not last_relu_free:  # ReLU on the input or after another ReLU: an identity affine layer first
                n = math.prod(node.shape)
                eye = [[Fraction(int(i == j)) for i in range(n)] for j in range(n)]
                layers.append(RationalLayer(eye, [Fraction(0)] * n))
            layers[-1].relu = True
            last_relu_free = False
        elif isinstance(op, IndexOp) and op.perm is None:
            continue  # Flatten / Reshape / Dropout (eval): the identity on the flattened values
        else:
            raise UnsupportedLayerError(
                f"proof export supports Dense, ReLU, Flatten/Reshape and Dropout layers; {node.name} "
                f"({type(op).__name__.removesuffix('Op')}) is not one of them"
            )
    return layers


def _unsafe(clauses: Sequence[Any], n_out: int) -> list[list[tuple[list[Fraction], Fraction]]]:
    out = []
    for cl in clauses:
        C, d = np.asarray(cl.C, np.float64), np.asarray(cl.d, np.float64)
        if C.ndim != 2 or C.shape != (d.shape[0], n_out):
            raise ValueError(f"unsafe clause of shape {C.shape} / {d.shape} does not fit {n_out} outputs")
        atoms, empty = [], False
        for row, rhs in zip(C, d):
            if rhs == np.inf:
                continue  # always true
            if rhs == -np.inf:
                empty = True  # never true: the clause is empty
                break
            atoms.append(([_q(v) for v in row], _q(rhs)))
        if not empty:
            out.append(atoms)
    return out


def rational_problem(model: Any, prop_or_condition: Any, input_set: InputSet | None = None) -> RationalProblem:
    """Exact rational network, input boxes and unsafe clauses of ``model`` and a property.

    Raises:
        UnsupportedLayerError: a layer other than Dense, ReLU, Flatten/Reshape, Dropout.
        ValueError: no input set, a non-linear output condition, or a non-finite number.

    Example:
        >>> from axiom import Dense
        >>> from axiom.verify import Box, OutputBounds
        >>> p = rational_problem(Dense(1, 1), OutputBounds(upper=2.0, over=Box(0, 1, shape=(1,))))
        >>> p.unsafe[0][0][1]  # the atom -y <= -2, i.e. y >= 2
        Fraction(-2, 1)
    """
    condition, input_set = resolve_spec(prop_or_condition, input_set)
    in_shape = model_input_shape(model)
    bound = input_set.bind(in_shape)
    layers = _layers(model)
    boxes = _input_boxes(bound)
    clauses, _ = _clauses_and_condition(model, condition)
    n_out = len(layers[-1].biases) if layers else math.prod(in_shape)
    return RationalProblem(layers, [(list(lo), list(hi)) for lo, hi in boxes], _unsafe(clauses, n_out))


# ---------------------------------------------------------------------------------------------
# The interval checker (mirrors the Coq definitions in axiom.proof.coq exactly)
# ---------------------------------------------------------------------------------------------


def _idot(w: Sequence[Fraction], box: Sequence[Interval]) -> Interval:
    lo = hi = Fraction(0)
    for a, (lb, ub) in zip(w, box):
        if a >= 0:
            lo, hi = lo + a * lb, hi + a * ub
        else:
            lo, hi = lo + a * ub, hi + a * lb
    return lo, hi


def _relu(z: Fraction) -> Fraction:
    return Fraction(0) if z <= 0 else z


def _inet(layers: Sequence[RationalLayer], box: list[Interval]) -> list[Interval]:
    for layer in layers:
        out = []
        for w, b in zip(layer.weights, layer.biases):
            s, t = _idot(w, box)
            lo, hi = s + b, t + b
            out.append((_relu(lo), _relu(hi)) if layer.relu else (lo, hi))
        box = out
    return box


def _check_out(unsafe: Sequence[Sequence[tuple[list[Fraction], Fraction]]], ybox: list[Interval]) -> bool:
    return all(any(d < _idot(c, ybox)[0] for c, d in clause) for clause in unsafe)


def _widest(box: Sequence[Interval]) -> int:
    best, bw = 0, Fraction(-1)
    for i, (lo, hi) in enumerate(box):
        if bw < hi - lo:
            best, bw = i, hi - lo
    return best


def interval_check(problem: RationalProblem, max_depth: int = 12) -> int | None:
    """The smallest fuel with which the Coq checker proves every box, or None within ``max_depth``.

    A box whose interval image avoids the unsafe region is done; otherwise it is bisected at the
    midpoint of its widest side (first on ties) and both halves are checked with one less fuel.

    Example:
        >>> one = [Fraction(1)]
        >>> p = RationalProblem([RationalLayer([one], [Fraction(0)], relu=True)], [([-one[0]], one)],
        ...                     [[([-one[0]], Fraction(-2))]])  # unsafe: y >= 2
        >>> interval_check(p)
        0
    """
    deepest = 0

    def rec(fuel: int, depth: int, box: list[Interval]) -> bool:
        nonlocal deepest
        deepest = max(deepest, depth)
        if _check_out(problem.unsafe, _inet(problem.layers, box)):
            return True
        if fuel == 0:
            return False
        i = _widest(box)
        m = (box[i][0] + box[i][1]) / 2
        left = [*box[:i], (box[i][0], m), *box[i + 1 :]]
        right = [*box[:i], (m, box[i][1]), *box[i + 1 :]]
        return rec(fuel - 1, depth + 1, left) and rec(fuel - 1, depth + 1, right)

    for lo, hi in problem.boxes:
        if not rec(max_depth, 0, list(zip(lo, hi))):
            return None
    return deepest
