"""Properties: an input set plus an output condition.

Each output condition has two faces:

- ``holds(y)``: the concrete semantics on a batch of outputs (used by empirical checks and to
  replay counterexamples);
- ``unsafe_region(n_out)``: the set of outputs that violate it, as a disjunction of clauses, each
  clause a conjunction of linear atoms ``c . y <= d`` (``None`` when the condition is not
  linear, e.g. ``ValidProbabilities``, which the formal verifier handles on its own). The region
  may be slightly larger than the true violation set (boundaries count as unsafe): proving it
  empty is sound; counterexamples are always re-checked with ``holds``.

Example:
    >>> import numpy as np
    >>> from axiom.verify import ArgmaxIs
    >>> cond = ArgmaxIs(1)
    >>> cond.holds(np.array([[0.1, 0.9], [0.8, 0.2]])).tolist()
    [True, False]
    >>> [c.C.tolist() for c in cond.unsafe_region(2)]
    [[[-1.0, 1.0]]]
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np

from axiom.verify.sets import InputSet, L2Ball, LinfBall


@dataclass(frozen=True)
class Clause:
    """A conjunction of linear atoms over the flattened output: every row of ``C @ y <= d``.

    Example:
        >>> Clause(np.array([[1.0, 0.0]]), np.array([0.5])).satisfied(np.array([[0.2, 9.0], [0.7, 0.0]])).tolist()
        [True, False]
    """

    C: np.ndarray  # (m, n_out)
    d: np.ndarray  # (m,)

    def satisfied(self, y: np.ndarray) -> np.ndarray:
        """Per sample (rows of ``y``, flattened outputs): are all atoms true?"""
        y = np.asarray(y, np.float64).reshape(len(y), -1)
        return np.all(y @ self.C.T <= self.d, axis=1)

    def to_json(self) -> dict[str, Any]:
        return {"C": self.C.tolist(), "d": self.d.tolist()}


def _clause(rows: Sequence[Sequence[float]], rhs: Sequence[float]) -> Clause:
    return Clause(np.asarray(rows, np.float64), np.asarray(rhs, np.float64))


class OutputCondition:
    """Base class: what must be true of the model's output.

    Example:
        >>> OutputCondition().unsafe_region(3) is None, ArgmaxIs(0).describe()
        (True, 'argmax(output) == 0')
    """

    name = "condition"

    def holds(self, y: np.ndarray) -> np.ndarray:
        """Boolean per sample of the batch ``y``."""
        raise NotImplementedError

    def unsafe_region(self, n_out: int) -> list[Clause] | None:
        """Violating outputs as a disjunction of clauses (see module doc), or None if not linear."""
        return None

    def describe(self) -> str:
        return self.name

    def to_json(self) -> dict[str, Any]:
        return {"type": self.name}


def _flat(y: np.ndarray) -> np.ndarray:
    y = np.asarray(y)
    return y.reshape(len(y), -1)


class ArgmaxIs(OutputCondition):
    """The output's argmax is ``label`` (ties count as violations).

    Example:
        >>> ArgmaxIs(0).holds(np.array([[2.0, 1.0], [1.0, 1.0]])).tolist()
        [True, False]
    """

    name = "argmax"

    def __init__(self, label: int) -> None:
        self.label = int(label)

    def holds(self, y: np.ndarray) -> np.ndarray:
        f = _flat(y).astype(np.float64)
        if not 0 <= self.label < f.shape[1]:
            raise ValueError(f"ArgmaxIs: label {self.label} is out of range for {f.shape[1]} outputs")
        others = np.delete(f, self.label, axis=1)
        return np.all(f[:, [self.label]] > others, axis=1) & np.isfinite(f).all(axis=1)

    def unsafe_region(self, n_out: int) -> list[Clause]:
        if not 0 <= self.label < n_out:
            raise ValueError(f"ArgmaxIs: label {self.label} is out of range for {n_out} outputs")
        clauses = []
        for j in range(n_out):
            if j != self.label:
                row = np.zeros(n_out)
                row[self.label], row[j] = 1.0, -1.0  # y_label - y_j <= 0 is unsafe
                clauses.append(_clause([row], [0.0]))
        return clauses

    def describe(self) -> str:
        return f"argmax(output) == {self.label}"

    def to_json(self) -> dict[str, Any]:
        return {"type": self.name, "label": self.label}


class LinearConstraints(OutputCondition):
    """Every row of ``C @ y <= d`` must hold (``y`` the flattened output).

    Example:
        >>> LinearConstraints([[1.0, 1.0]], [1.0]).holds(np.array([[0.5, 0.5], [1.0, 0.5]])).tolist()
        [True, False]
    """

    name = "linear"

    def __init__(self, C: Any, d: Any) -> None:
        self.C = np.atleast_2d(np.asarray(C, np.float64))
        self.d = np.atleast_1d(np.asarray(d, np.float64))
        if self.C.shape[0] != self.d.shape[0]:
            raise ValueError(f"LinearConstraints: C has {self.C.shape[0]} rows but d has {self.d.shape[0]}")

    def holds(self, y: np.ndarray) -> np.ndarray:
        f = _flat(y).astype(np.float64)
        return np.all(f @ self.C.T <= self.d, axis=1)

    def unsafe_region(self, n_out: int) -> list[Clause]:
        if self.C.shape[1] != n_out:
            raise ValueError(f"LinearConstraints: C has {self.C.shape[1]} columns but the model has {n_out} outputs")
        # violated iff some row has c.y > d; conservatively c.y >= d, i.e. -c.y <= -d
        return [_clause([-row], [-rhs]) for row, rhs in zip(self.C, self.d)]

    def describe(self) -> str:
        return f"{self.C.shape[0]} linear constraints C y <= d"

    def to_json(self) -> dict[str, Any]:
        return {"type": self.name, "C": self.C.tolist(), "d": self.d.tolist()}


class WithinBounds(OutputCondition):
    """``lower <= y <= upper`` element-wise (either side may be None).

    Example:
        >>> WithinBounds(upper=1.0).holds(np.array([[0.5, -3.0], [1.5, 0.0]])).tolist()
        [True, False]
    """

    name = "output_bounds"

    def __init__(self, lower: Any = None, upper: Any = None) -> None:
        if lower is None and upper is None:
            raise ValueError("OutputBounds needs a lower or an upper bound")
        self.lower = None if lower is None else np.asarray(lower, np.float64)
        self.upper = None if upper is None else np.asarray(upper, np.float64)

    def holds(self, y: np.ndarray) -> np.ndarray:
        f = _flat(y).astype(np.float64)
        ok = np.ones(len(f), bool)  # NaN compares False below, so it violates
        if self.lower is not None:
            ok &= np.all(f >= np.broadcast_to(self.lower.ravel(), f.shape[1:]), axis=1)
        if self.upper is not None:
            ok &= np.all(f <= np.broadcast_to(self.upper.ravel(), f.shape[1:]), axis=1)
        return ok

    def unsafe_region(self, n_out: int) -> list[Clause]:
        clauses = []
        for side, sign in ((self.lower, -1.0), (self.upper, 1.0)):
            if side is None:
                continue
            bound = np.broadcast_to(side.ravel(), (n_out,))
            for i in range(n_out):
                if np.isfinite(bound[i]):
                    row = np.zeros(n_out)
                    row[i] = -sign  # upper: y_i >= u unsafe -> -y_i <= -u ; lower: y_i <= l unsafe
                    clauses.append(_clause([row], [-sign * bound[i]]))
        return clauses

    def describe(self) -> str:
        return "output within bounds"

    def to_json(self) -> dict[str, Any]:
        tl = lambda a: None if a is None else a.tolist()  # noqa: E731
        return {"type": self.name, "lower": tl(self.lower), "upper": tl(self.upper)}


class AvoidsRegion(OutputCondition):
    """The output never enters ``region`` (a disjunction of clauses), e.g. a VNN-LIB unsafe set.

    Example:
        >>> cond = AvoidsRegion([Clause(np.array([[-1.0]]), np.array([-2.0]))])  # unsafe: y >= 2
        >>> cond.holds(np.array([[1.0], [3.0]])).tolist()
        [True, False]
    """

    name = "avoids_region"

    def __init__(self, clauses: Sequence[Clause]) -> None:
        self.clauses = list(clauses)

    def holds(self, y: np.ndarray) -> np.ndarray:
        f = _flat(y).astype(np.float64)
        bad = np.zeros(len(f), bool)
        for c in self.clauses:
            bad |= c.satisfied(f)
        return ~bad & ~np.isnan(f).any(axis=1)

    def unsafe_region(self, n_out: int) -> list[Clause]:
        for c in self.clauses:
            if c.C.shape[1] != n_out:
                raise ValueError(f"unsafe region refers to {c.C.shape[1]} outputs but the model has {n_out}")
        return list(self.clauses)

    def describe(self) -> str:
        return f"output avoids a region of {len(self.clauses)} clause(s)"

    def to_json(self) -> dict[str, Any]:
        return {"type": self.name, "clauses": [c.to_json() for c in self.clauses]}


class ProbabilitiesValid(OutputCondition):
    """Every output row is a probability vector: entries in [0, 1] and summing to 1 within ``tol``.

    Example:
        >>> ProbabilitiesValid().holds(np.array([[0.3, 0.7], [0.6, 0.6]])).tolist()
        [True, False]
    """

    name = "valid_probabilities"

    def __init__(self, tol: float = 1e-5) -> None:
        self.tol = float(tol)

    def holds(self, y: np.ndarray) -> np.ndarray:
        f = _flat(y).astype(np.float64)
        finite = np.isfinite(f).all(axis=1)
        in_range = np.all((f >= 0) & (f <= 1), axis=1)
        sums = np.abs(f.sum(axis=1) - 1.0) <= self.tol
        return finite & in_range & sums

    def to_json(self) -> dict[str, Any]:
        return {"type": self.name, "tol": self.tol}


class Finite(OutputCondition):
    """No NaN and/or no infinity in the output (``nan``/``inf`` select which).

    Example:
        >>> Finite().holds(np.array([[1.0], [np.inf]])).tolist(), Finite(inf=False).name
        ([True, False], 'no_nan')
    """

    name = "finite"

    def __init__(self, nan: bool = True, inf: bool = True) -> None:
        self.nan, self.inf = nan, inf
        self.name = {(True, True): "finite", (True, False): "no_nan", (False, True): "no_inf"}[(nan, inf)]

    def holds(self, y: np.ndarray) -> np.ndarray:
        f = _flat(y).astype(np.float64)
        ok = np.ones(len(f), bool)
        if self.nan:
            ok &= ~np.isnan(f).any(axis=1)
        if self.inf:
            ok &= ~np.isinf(f).any(axis=1)
        return ok


# ----------------------------------------------------------------------------------------------
# Properties = input set (optional for empirical checks) + output condition
# ----------------------------------------------------------------------------------------------


class Property:
    """An output condition that must hold for every input in ``input_set`` (or in the given data).

    ``input_set`` may be None for properties only checked on data (empirical); formal
    verification requires it.

    Example:
        >>> from axiom.verify import Box
        >>> Property(ArgmaxIs(1), Box(0, 1, shape=(2,)), name="cls1").describe()
        'cls1: argmax(output) == 1 for all x in Box'
    """

    def __init__(self, condition: OutputCondition, input_set: InputSet | None = None, name: str | None = None):
        self.condition = condition
        self.input_set = input_set
        self.name = name or type(self).__name__

    def holds(self, y: np.ndarray) -> np.ndarray:
        return self.condition.holds(y)

    def describe(self) -> str:
        where = f" for all x in {type(self.input_set).__name__}" if self.input_set is not None else ""
        return f"{self.name}: {self.condition.describe()}{where}"

    def to_json(self) -> dict[str, Any]:
        return {
            "name": self.name,
            "condition": self.condition.to_json(),
            "input_set": None if self.input_set is None else self.input_set.to_json(),
        }

    def __repr__(self) -> str:
        return f"<{self.describe()}>"


class ValidProbabilities(Property):
    """Outputs are probability vectors (in [0, 1], sum 1 within ``tol``).

    Example:
        >>> ValidProbabilities().holds(np.array([[0.25, 0.75]])).tolist()
        [True]
    """

    def __init__(self, tol: float = 1e-5, over: InputSet | None = None) -> None:
        super().__init__(ProbabilitiesValid(tol), over)


class FiniteOutput(Property):
    """No NaN and no infinity in the output.

    Example:
        >>> FiniteOutput().holds(np.array([[1.0, np.inf]])).tolist()
        [False]
    """

    def __init__(self, over: InputSet | None = None) -> None:
        super().__init__(Finite(), over)


class NoNaN(Property):
    """No NaN in the output (infinities allowed).

    Example:
        >>> NoNaN().holds(np.array([[np.inf]])).tolist()
        [True]
    """

    def __init__(self, over: InputSet | None = None) -> None:
        super().__init__(Finite(nan=True, inf=False), over)


class NoInf(Property):
    """No infinity in the output (NaN allowed).

    Example:
        >>> NoInf().holds(np.array([[np.nan]])).tolist()
        [True]
    """

    def __init__(self, over: InputSet | None = None) -> None:
        super().__init__(Finite(nan=False, inf=True), over)


class OutputBounds(Property):
    """``lower <= output <= upper`` for every input in ``over`` (or in the data).

    Example:
        >>> OutputBounds(lower=0.0, upper=1.0).holds(np.array([[0.5], [1.5]])).tolist()
        [True, False]
    """

    def __init__(self, lower: Any = None, upper: Any = None, over: InputSet | None = None) -> None:
        super().__init__(WithinBounds(lower, upper), over)


class LinearProperty(Property):
    """``C @ output <= d`` (flattened output) for every input in ``over``.

    Example:
        >>> LinearProperty([[1.0, -1.0]], [0.0]).holds(np.array([[1.0, 2.0]])).tolist()
        [True]
    """

    def __init__(self, C: Any, d: Any, over: InputSet | None = None) -> None:
        super().__init__(LinearConstraints(C, d), over)


class Classification(Property):
    """``argmax(output) == label`` for every input in ``over``.

    Example:
        >>> Classification(0).holds(np.array([[2.0, 1.0]])).tolist()
        [True]
    """

    def __init__(self, label: int, over: InputSet | None = None) -> None:
        super().__init__(ArgmaxIs(label), over)


class LocalRobustness(Property):
    """The prediction stays ``label`` in an ``eps``-ball around ``x`` (``norm`` "inf" or "2").

    ``label=None`` uses the model's own prediction at ``x`` (resolved by ``verify``). ``clip``
    intersects the ball with a valid input domain such as ``(0, 1)`` for images.

    Example:
        >>> p = LocalRobustness(np.zeros(4, np.float32), eps=0.1, label=2)
        >>> p.input_set.to_box().upper.tolist()
        [0.1, 0.1, 0.1, 0.1]
    """

    def __init__(
        self, x: Any, eps: float, label: int | None = None, norm: str = "inf", clip: tuple[Any, Any] | None = None
    ) -> None:
        center = np.asarray(getattr(x, "data", x), np.float64)
        if norm in ("inf", "linf", np.inf):
            ball: InputSet = LinfBall(center, eps, clip)
        elif norm in ("2", "l2", 2):
            ball = L2Ball(center, eps, clip)
        else:
            raise ValueError(f"LocalRobustness: norm must be 'inf' or '2', got {norm!r}")
        self.x, self.eps, self.norm, self.label = center, float(eps), str(norm), label
        super().__init__(ArgmaxIs(label if label is not None else 0), ball)

    def with_label(self, label: int) -> LocalRobustness:
        """This property with its label fixed (verify() resolves ``label=None`` this way)."""
        p = LocalRobustness.__new__(LocalRobustness)
        p.__dict__.update(self.__dict__)
        p.label = int(label)
        p.condition = ArgmaxIs(int(label))
        return p


class VnnlibProperty(Property):
    """A VNN-LIB specification: the output must avoid the unsafe region for every input in the set.

    Built by :func:`axiom.verify.read_vnnlib`.

    Example:
        >>> from axiom.verify import Box
        >>> p = VnnlibProperty(Box([0.0], [1.0]), [Clause(np.array([[1.0]]), np.array([0.0]))])  # unsafe: y <= 0
        >>> p.name, p.holds(np.array([[0.5], [-0.5]])).tolist()
        ('VNN-LIB', [True, False])
    """

    def __init__(self, input_set: InputSet, unsafe: Sequence[Clause], source: str | None = None) -> None:
        super().__init__(AvoidsRegion(unsafe), input_set, name="VNN-LIB" if source is None else f"VNN-LIB {source}")
        self.source = source


def classification_preset(x: Any, label: int | None, eps: float, clip: tuple[Any, Any] | None = None) -> list[Property]:
    """What a classifier should satisfy: robust around ``x`` and finite outputs on that ball.

    Example:
        >>> [type(p).__name__ for p in classification_preset(np.zeros(3), 1, 0.1)]
        ['LocalRobustness', 'FiniteOutput']
    """
    robust = LocalRobustness(x, eps, label, clip=clip)
    return [robust, FiniteOutput(over=robust.input_set)]


def regression_preset(over: InputSet, lower: Any = None, upper: Any = None) -> list[Property]:
    """What a regressor should satisfy on ``over``: finite outputs, within ``[lower, upper]`` if given.

    Example:
        >>> from axiom.verify import Box
        >>> [type(p).__name__ for p in regression_preset(Box(0, 1, shape=(2,)), upper=10)]
        ['FiniteOutput', 'OutputBounds']
    """
    props: list[Property] = [FiniteOutput(over=over)]
    if lower is not None or upper is not None:
        props.append(OutputBounds(lower, upper, over=over))
    return props
