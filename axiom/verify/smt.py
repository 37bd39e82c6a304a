"""Exact verification of small piecewise-linear networks with the Z3 SMT solver.

The network is written as a formula over Z3 ``Real`` variables: every weight, bias and bound
is the **exact rational value** of its float64 number (``fractions.Fraction``), linear layers
are linear equations, each ReLU-like neuron is a disjunction of its linear pieces, each max-pool
output is ``o >= x_k`` for every cell and ``o == x_k`` for one of them. The property's unsafe
region (a disjunction of conjunctions of ``c . y <= d``, see
:meth:`~axiom.verify.properties.OutputCondition.unsafe_region`) is asserted on the outputs.

- Z3 ``unsat`` -> ``proven``: no input of the set reaches the unsafe region in the exact
  real-arithmetic network defined by the float64 weights (float32 execution rounding is not
  modelled; BatchNorm uses its float64 folded scale ``gamma / sqrt(var + eps)``).
- Z3 ``sat`` -> the model's input is rounded to the model dtype, kept inside the set and
  replayed through the concrete model in its dtype and in float64 (:class:`~axiom.verify.concrete.Replayer`);
  only a replayed violation gives ``falsified``. Otherwise Z3 is asked again for a point with a
  margin inside the unsafe region; failing that the answer is ``unknown``.
- Z3 ``unknown`` or a timeout -> ``unknown``, never ``proven``.

**Bound-based pre-fixing** (``prefix_bounds=True``): Axiom's CROWN bounds (sound for the same
real network) fix every stable neuron to one linear piece (``z`` or ``0`` for a ReLU), prune
max-pool cells that can never win, and are asserted as ``l <= z <= u`` (rounded outward to short
rationals) with the ReLU triangle ``a <= u (z - l) / (u - l)`` for the unstable ones. Only the
unstable neurons keep a disjunction; ``SmtResult.info`` counts them. Z3 stalls beyond a few
dozen unstable ReLUs: this is a backend for tiny networks and sub-problems (branch-and-bound
leaves), not the main engine.

Supported layers: Dense, Conv2d (NHWC, stride, padding, dilation, groups), activations relu,
leaky_relu, relu6, hardsigmoid, identity (as layers or attached to Dense/Conv2d), MaxPool2d,
AvgPool2d, GlobalAvgPool, BatchNorm (eval), Affine, Flatten, Reshape, Permute, Dropout (eval),
Residual and Parallel; a final Softmax/LogSoftmax when the condition only compares outputs
(``ArgmaxIs``, robustness), since it preserves their order. Anything else raises
:class:`~axiom.verify.bounds.UnsupportedLayerError` naming the layer and its position.
Input sets: Box, LinfBall (``clip`` honoured), BoxUnion.

Example:
    >>> import numpy as np
    >>> from axiom import Dense, Sequential, relu
    >>> from axiom.verify import Box, OutputBounds
    >>> from axiom.verify.smt import smt_verify
    >>> net = Sequential(Dense(2, 2, relu), Dense(2, 1))
    >>> net[0].weight.data[:] = [[1, -1], [1, 1]]; net[0].bias.data[:] = 0
    >>> net[1].weight.data[:] = [[1], [1]]; net[1].bias.data[:] = 0
    >>> box = Box(-1, 1, shape=(2,))
    >>> smt_verify(net, OutputBounds(upper=2.5, over=box)).status  # the maximum is 2
    'proven'
    >>> r = smt_verify(net, OutputBounds(upper=1.5, over=box))
    >>> r.status, bool(r.output64[0] > 1.5)
    ('falsified', True)
"""

from __future__ import annotations

import math
import time
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from fractions import Fraction
from typing import Any

import numpy as np

from axiom.verify.bounds._graph import Graph, Node, build_graph
from axiom.verify.bounds._ops import (
    ActivationOp,
    AddOp,
    AvgPoolOp,
    ConcatOp,
    ConvOp,
    DenseOp,
    GlobalAvgPoolOp,
    IndexOp,
    MaxPoolOp,
    ScaleShiftOp,
    SoftmaxOp,
    UnsupportedLayerError,
)
from axiom.verify.concrete import Replayer, model_input_shape, model_output_size
from axiom.verify.empirical import resolve_labels
from axiom.verify.properties import AvoidsRegion, Clause, OutputCondition, Property
from axiom.verify.result import PropertyResult, VerificationResult
from axiom.verify.sets import Box, BoxUnion, InputSet, L2Ball, LinfBall

__all__ = ["SmtEncoding", "SmtResult", "encode_network", "relu_layers", "smt_check_domain", "smt_verify", "verify_smt"]

SEMANTICS = (
    "proven (Z3 unsat) = holds for the exact real-arithmetic network defined by the float64 weights "
    "(exact rationals), for every input in the set; float32 execution rounding is not modelled"
)

#: Piecewise-linear activations: kind -> breakpoints (the pieces in between are linear).
PIECEWISE = ("relu", "leaky_relu", "relu6", "hardsigmoid", "identity")
RELU_LIKE = ("relu", "leaky_relu")
PHASES = ("active", "inactive")

#: Significant bits kept when bounds are rounded outward for the solver (short rationals solve faster).
BOUND_BITS = 24


def _z3() -> Any:
    try:
        import z3
    except ImportError as err:  # pragma: no cover - z3-solver is a dependency
        raise ImportError("exact SMT verification needs z3-solver: pip install z3-solver") from err
    return z3


# ---------------------------------------------------------------------------------------------
# Exact rationals
# ---------------------------------------------------------------------------------------------


def _frac(v: Any) -> Fraction:
    f = float(v)
    if not math.isfinite(f):
        raise ValueError(f"exact SMT encoding: non-finite number {f} in the network or the property")
    return Fraction(f)


def _outward(v: float, down: bool) -> Fraction:
    """``v`` rounded outward to a rational with at most ``BOUND_BITS`` significant bits."""
    if v == 0.0:
        return Fraction(0)
    _, e = math.frexp(v)
    q = Fraction(2) ** (e - BOUND_BITS)
    k = Fraction(v) / q
    n = math.floor(k) if down else math.ceil(k)
    return n * q


class _Q:
    """Exact rational Z3 constants, cached per float value (one Z3 context)."""

    def __init__(self, z3: Any, ctx: Any) -> None:
        self.z3, self.ctx = z3, ctx
        self.cache: dict[Fraction, Any] = {}

    def __call__(self, v: Any) -> Any:
        f = v if isinstance(v, Fraction) else _frac(v)
        got = self.cache.get(f)
        if got is None:
            text = str(f.numerator) if f.denominator == 1 else f"{f.numerator}/{f.denominator}"
            got = self.cache[f] = self.z3.RealVal(text, self.ctx)
        return got


# ---------------------------------------------------------------------------------------------
# Results
# ---------------------------------------------------------------------------------------------


@dataclass
class SmtResult:
    """The verdict of one exact SMT check.

    ``status`` is ``proven`` (Z3 unsat), ``falsified`` (a counterexample replayed through the
    concrete model in its dtype and in float64: ``counterexample``, ``output``, ``output64``) or
    ``unknown``; ``z3_status`` is Z3's raw answer of the main query (``unsat``/``sat``/``unknown``).
    ``info`` counts the neurons (``relus``, ``unstable``, ``fixed_active``, ``fixed_inactive``,
    ``maxpool_outputs``, ``maxpool_unstable``) and times the phases (``bounds_s``,
    ``encode_s``, ``solve_s``).

    Example:
        >>> r = SmtResult("proven", "unsat", info={"unstable": 3})
        >>> r.proven, r.falsified, r.info["unstable"]
        (True, False, 3)
    """

    status: str
    z3_status: str
    counterexample: np.ndarray | None = None
    output: np.ndarray | None = None
    output64: np.ndarray | None = None
    time_s: float = 0.0
    timed_out: bool = False
    message: str = ""
    info: dict[str, Any] = field(default_factory=dict)

    @property
    def proven(self) -> bool:
        return self.status == "proven"

    @property
    def falsified(self) -> bool:
        return self.status == "falsified"

    def to_property_result(self, prop: Any) -> PropertyResult:
        """This verdict as a formal :class:`~axiom.verify.result.PropertyResult` (``method="smt"``).

        Example:
            >>> SmtResult("unknown", "unknown", message="timeout").to_property_result("p").status
            'unknown'
        """
        return PropertyResult(
            prop,
            "formal",
            self.status,
            method="smt",
            counterexample=self.counterexample,
            output=self.output,
            output64=self.output64,
            bounds={k: v for k, v in self.info.items() if isinstance(v, int | float | str)},
            runtime_s=self.time_s,
            timed_out=self.timed_out,
            message=self.message,
        )


# ---------------------------------------------------------------------------------------------
# The encoding
# ---------------------------------------------------------------------------------------------


@dataclass
class SmtEncoding:
    """A network and input set as Z3 constraints (one fresh Z3 context).

    ``inputs``/``outputs`` are the Z3 variables of the flattened input and output;
    ``constraints`` the assertions (input set, layers, bounds, phases); ``pre`` maps each
    ReLU-like layer name to the Z3 expressions of its pre-activations; ``info`` counts neurons.

    Example:
        >>> from axiom import Dense, Sequential, relu
        >>> from axiom.verify import Box
        >>> enc = encode_network(Sequential(Dense(2, 3, relu), Dense(3, 1)), Box(0, 1, shape=(2,)))
        >>> len(enc.inputs), len(enc.outputs), enc.info["relus"]
        (2, 1, 3)
    """

    z3: Any
    ctx: Any
    inputs: list[Any]
    outputs: list[Any]
    constraints: list[Any]
    pre: dict[str, list[Any]]
    info: dict[str, Any]
    q: Any = None
    post: Any = None  # the dropped final Softmax/LogSoftmax (outputs are then its inputs)

    def region(self, clauses: Sequence[Clause], margin: float = 0.0) -> Any:
        """Z3 formula: the outputs lie in the disjunction of ``clauses`` (each ``C y <= d - margin``).

        Example:
            >>> from axiom import Dense
            >>> from axiom.verify import Box
            >>> enc = encode_network(Dense(1, 1), Box(0, 1, shape=(1,)))
            >>> str(enc.region([Clause(np.array([[1.0]]), np.array([0.5]))]))
            '1/2 >= y_0'
        """
        z3, q = self.z3, self.q
        n = len(self.outputs)
        disj = []
        for c in clauses:
            C, d = np.asarray(c.C, np.float64), np.asarray(c.d, np.float64)
            if C.ndim != 2 or C.shape[1] != n or C.shape[0] != d.shape[0]:
                raise ValueError(f"unsafe clause of shape {C.shape} / {d.shape} does not fit {n} outputs")
            if not np.all(np.isfinite(C)) or np.any(np.isnan(d)):
                raise ValueError("unsafe clause with a non-finite coefficient")
            atoms, empty = [], False
            for row, rhs in zip(C, d):
                if rhs == np.inf:
                    continue  # always true
                if rhs == -np.inf:
                    empty = True
                    break
                lhs = _lin(z3, q, [(self.outputs[j], row[j]) for j in np.flatnonzero(row)], 0.0)
                atoms.append(lhs <= q(_frac(rhs) - _frac(margin)))
            if empty:
                continue
            disj.append(z3.And(*atoms) if len(atoms) > 1 else (atoms[0] if atoms else z3.BoolVal(True, self.ctx)))
        if not disj:
            return z3.BoolVal(False, self.ctx)
        return disj[0] if len(disj) == 1 else z3.Or(*disj)


def _lin(z3: Any, q: _Q, terms: list[tuple[Any, float]], bias: Any) -> Any:
    """``sum_k w_k x_k + bias`` with exact rational coefficients (zero weights skipped)."""
    parts = []
    for x, w in terms:
        if isinstance(x, Fraction):  # a constant input (a ReLU fixed to 0, a padded cell)
            if x != 0 and w != 0:
                parts.append(q(x * _frac(w)))
            continue
        if w == 0:
            continue
        parts.append(x if w == 1 else q(w) * x)
    b = bias if isinstance(bias, Fraction) else _frac(bias)
    if b != 0 or not parts:
        parts.append(q(b))
    return parts[0] if len(parts) == 1 else z3.Sum(*parts)


def _describe(node: Node) -> str:
    path, _, name = node.name.partition(" ")
    return f"layer {path} ({name})" if name else f"layer {node.name}"


def _input_boxes(input_set: InputSet) -> list[tuple[list[Fraction], list[Fraction]]]:
    """Exact rational ``(lower, upper)`` per box of the set (one box for Box/LinfBall)."""
    if isinstance(input_set, L2Ball):
        raise NotImplementedError("exact SMT verification supports Box, LinfBall and BoxUnion input sets, not L2Ball")
    if isinstance(input_set, BoxUnion):
        return [b for box in input_set.boxes() for b in _input_boxes(box)]
    if isinstance(input_set, LinfBall):
        c = np.asarray(input_set.center, np.float64).ravel()
        eps = _frac(input_set.eps)
        lo = [_frac(v) - eps for v in c]
        hi = [_frac(v) + eps for v in c]
        if input_set.clip is not None:
            clo = np.broadcast_to(np.asarray(input_set.clip[0], np.float64), input_set.center.shape).ravel()
            chi = np.broadcast_to(np.asarray(input_set.clip[1], np.float64), input_set.center.shape).ravel()
            lo = [max(a, _frac(b)) for a, b in zip(lo, clo)]
            hi = [max(min(a, _frac(b)), l) for a, b, l in zip(hi, chi, lo)]  # as LinfBall.to_box
        return [(lo, hi)]
    if isinstance(input_set, Box):
        return [([_frac(v) for v in input_set.lower.ravel()], [_frac(v) for v in input_set.upper.ravel()])]
    raise TypeError(f"exact SMT verification: unsupported input set {type(input_set).__name__}")


def _pieces(kind: str, alpha: float) -> list[tuple[Fraction | None, Fraction | None, Fraction, Fraction]]:
    """Linear pieces ``(z_lo, z_hi, slope, offset)`` of a piecewise-linear activation (``None`` = unbounded)."""
    if kind == "relu":
        return [(None, Fraction(0), Fraction(0), Fraction(0)), (Fraction(0), None, Fraction(1), Fraction(0))]
    if kind == "leaky_relu":
        return [(None, Fraction(0), _frac(alpha), Fraction(0)), (Fraction(0), None, Fraction(1), Fraction(0))]
    if kind == "relu6":
        return [
            (None, Fraction(0), Fraction(0), Fraction(0)),
            (Fraction(0), Fraction(6), Fraction(1), Fraction(0)),
            (Fraction(6), None, Fraction(0), Fraction(6)),
        ]
    if kind == "hardsigmoid":  # clip(z + 3, 0, 6) / 6
        return [
            (None, Fraction(-3), Fraction(0), Fraction(0)),
            (Fraction(-3), Fraction(3), Fraction(1, 6), Fraction(1, 2)),
            (Fraction(3), None, Fraction(0), Fraction(1)),
        ]
    raise KeyError(kind)


def _phase_items(phases: Any) -> list[tuple[Any, Any]]:
    """``((layer, neuron), phase)`` pairs from a mapping or from per-layer split arrays (+1 / -1 / 0)."""
    if phases is None:
        return []
    if isinstance(phases, Mapping):
        return list(phases.items())
    if isinstance(phases, Sequence) and not isinstance(phases, str):
        items = []
        for k, arr in enumerate(phases):
            a = np.asarray(arr).ravel()
            items += [((k, int(j)), int(a[j])) for j in np.flatnonzero(a)]
        return items
    raise TypeError(f"phases must be a mapping {{(layer, neuron): phase}} or a list of split arrays, got {phases!r}")


def _phase_key(phases: Any, relu_names: list[str], sizes: dict[str, int]) -> dict[str, dict[int, str]]:
    """Phase constraints keyed by ReLU layer name; layers given as index (0-based among ReLU layers) or name."""
    out: dict[str, dict[int, str]] = {}
    for key, phase in _phase_items(phases):
        try:
            layer, neuron = key
        except (TypeError, ValueError):
            raise ValueError(f"phase keys are (layer, neuron) pairs, got {key!r}") from None
        if isinstance(layer, str):
            if layer not in sizes:
                raise ValueError(f"phase for unknown ReLU layer {layer!r}; ReLU layers: {relu_names}")
            name = layer
        elif isinstance(layer, int | np.integer) and not isinstance(layer, bool):
            if not 0 <= int(layer) < len(relu_names):
                raise ValueError(f"phase for ReLU layer index {layer}, but the model has {len(relu_names)} ReLU layers")
            name = relu_names[int(layer)]
        else:
            raise ValueError(f"phase layer must be an int (ReLU layer index) or a layer name, got {layer!r}")
        if not isinstance(neuron, int | np.integer) or not 0 <= int(neuron) < sizes[name]:
            raise ValueError(f"phase neuron {neuron!r} out of range for ReLU layer {name!r} of {sizes[name]} neurons")
        if not isinstance(phase, str) and phase in (1, -1):  # branch-and-bound split states
            phase = "active" if phase == 1 else "inactive"
        if phase not in PHASES:
            raise ValueError(f"phase must be 'active' / +1 (z >= 0) or 'inactive' / -1 (z <= 0), got {phase!r}")
        out.setdefault(name, {})[int(neuron)] = phase
    return out


def _relu_nodes(g: Graph) -> list[Node]:
    return [n for n in g.nodes[1:] if isinstance(n.op, ActivationOp) and n.op.math.kind in RELU_LIKE]


def relu_layers(model: Any, input_shape: Sequence[int] | None = None) -> list[tuple[str, int]]:
    """``(name, neurons)`` of each ReLU-like layer, in the order used by integer phase keys.

    Example:
        >>> from axiom import Dense, Sequential, relu
        >>> relu_layers(Sequential(Dense(2, 3, relu), Dense(3, 4, relu), Dense(4, 1)))
        [('1 Dense/relu', 3), ('2 Dense/relu', 4)]
    """
    shape = tuple(input_shape) if input_shape is not None else model_input_shape(model)
    return [(n.name, math.prod(n.shape)) for n in _relu_nodes(build_graph(model, shape))]


def _node_bounds(
    model: Any, input_set: InputSet, graph: Graph, method: str
) -> list[tuple[np.ndarray, np.ndarray] | None]:
    from axiom.verify.bounds import compute_bounds

    res = compute_bounds(model, input_set, method)
    out: list[tuple[np.ndarray, np.ndarray] | None] = [None]
    if len(res.layers) != len(graph.nodes) - 1:
        raise RuntimeError("exact SMT encoding: the bound graph does not match the encoding graph")
    for node, (name, lo, hi) in zip(graph.nodes[1:], res.layers):
        if name != node.name:
            raise RuntimeError(f"exact SMT encoding: bound node {name!r} does not match {node.name!r}")
        out.append((np.asarray(lo, np.float64).ravel(), np.asarray(hi, np.float64).ravel()))
    return out


def encode_network(
    model: Any,
    input_set: InputSet,
    *,
    prefix_bounds: bool = True,
    bound_method: str = "crown",
    phases: Any = None,
    deadline: float | None = None,
    order_only: bool = False,
) -> SmtEncoding:
    """Encode ``model`` on ``input_set`` as exact Z3 constraints (see the module docstring).

    Args:
        model: an axiom model of supported layers (eval semantics).
        input_set: Box, LinfBall or BoxUnion over one example (scalars broadcast).
        prefix_bounds: fix stable neurons with sound bounds (``bound_method``: ``"ibp"`` or
            ``"crown"``) and assert the bounds.
        phases: ``{(layer, neuron): "active" | "inactive"}`` split constraints ``z >= 0`` /
            ``z <= 0`` on ReLU-like pre-activations; ``layer`` is the 0-based index among the
            ReLU layers (:func:`relu_layers`) or the layer name, ``neuron`` the flat index.
            Also accepted: ``+1`` / ``-1`` for the phases, or a list with one array per ReLU
            layer of split states (``+1`` active, ``-1`` inactive, ``0`` free).
        deadline: a ``time.perf_counter()`` instant; past it the encoding stops with
            ``TimeoutError`` (building the formula of a large network takes seconds).
        order_only: the caller asks only about the ORDER of the outputs (``y_i <= y_j``
            atoms): a final Softmax/LogSoftmax over a 1-D output, strictly increasing in each
            logit's rank, is then dropped and ``outputs`` are its inputs.

    Raises:
        UnsupportedLayerError: a layer is not piecewise linear (the message names it and its position).
        TimeoutError: the ``deadline`` passed during the encoding.

    Example:
        >>> from axiom import Dense, Sequential, relu
        >>> from axiom.verify import Box
        >>> net = Sequential(Dense(2, 4, relu), Dense(4, 1))
        >>> enc = encode_network(net, Box(-1, 1, shape=(2,)), phases={(0, 1): "inactive"})
        >>> enc.info["relus"], enc.info["phases"]
        (4, 1)
    """
    z3 = _z3()
    in_shape = model_input_shape(model)
    input_set = input_set.bind(in_shape)
    graph = build_graph(model, in_shape)
    model.eval()
    bounds = _node_bounds(model, input_set, graph, bound_method) if prefix_bounds else [None] * len(graph.nodes)
    t0 = time.perf_counter()
    ctx = z3.Context()
    q = _Q(z3, ctx)
    relus = _relu_nodes(graph)
    names = [n.name for n in relus]
    sizes = {n.name: math.prod(n.shape) for n in relus}
    phase_map = _phase_key(phases, names, sizes)
    info: dict[str, Any] = dict.fromkeys(
        ("relus", "unstable", "fixed_active", "fixed_inactive", "pwl_neurons", "pwl_unstable"), 0
    )
    info.update(maxpool_outputs=0, maxpool_unstable=0, phases=sum(len(v) for v in phase_map.values()))
    cons: list[Any] = []
    n_in = math.prod(in_shape)
    xs = [z3.Real(f"x_{i}", ctx) for i in range(n_in)]
    boxes = _input_boxes(input_set)
    box_terms = [z3.And(*[a for i in range(n_in) for a in (xs[i] >= q(lo[i]), xs[i] <= q(hi[i]))]) for lo, hi in boxes]
    cons.append(box_terms[0] if len(box_terms) == 1 else z3.Or(*box_terms))
    if len(boxes) > 1:  # the hull, so the solver sees simple bounds too
        for i in range(n_in):
            cons += [xs[i] >= q(min(b[0][i] for b in boxes)), xs[i] <= q(max(b[1][i] for b in boxes))]
    vals: list[list[Any]] = [xs]
    pre: dict[str, list[Any]] = {}
    counter = [0]

    def fresh(prefix: str, n: int) -> list[Any]:
        counter[0] += 1
        return [z3.Real(f"{prefix}{counter[0]}_{j}", ctx) for j in range(n)]

    def bounded(node: Node, exprs: list[Any], prefix: str = "z") -> list[Any]:
        """Name the node's values with fresh variables and assert their bounds."""
        vs = fresh(prefix, len(exprs))
        for v, e in zip(vs, exprs):
            cons.append(v == e)
        b = bounds[node.id]
        if b is not None:
            for v, lo, hi in zip(vs, *b):
                if math.isfinite(lo):
                    cons.append(v >= q(_outward(lo, True)))
                if math.isfinite(hi):
                    cons.append(v <= q(_outward(hi, False)))
        return vs

    def check_time() -> None:
        if deadline is not None and time.perf_counter() > deadline:
            raise TimeoutError(f"the exact SMT encoding was cut short by the deadline (at node {node.name!r})")

    last = graph.nodes[graph.output]
    drop = order_only and isinstance(last.op, SoftmaxOp) and len(last.shape) == 1 and last.op.axis == 0
    out_id = last.inputs[0] if drop else graph.output
    for node in graph.nodes[1:]:
        check_time()
        if drop and node.id == graph.output:
            continue
        op = node.op
        ins = [vals[i] for i in node.inputs]
        where = _describe(node)
        if isinstance(op, DenseOp):
            x = ins[0]
            if len(op.in_shapes[0]) != 1:
                raise UnsupportedLayerError(f"{where}: Dense on a rank-{len(op.in_shapes[0])} input")
            W, b = op.W, op.bias
            exprs = []
            for j in range(W.shape[1]):
                check_time()
                exprs.append(
                    _lin(z3, q, [(x[i], W[i, j]) for i in np.flatnonzero(W[:, j])], 0.0 if b is None else b[j])
                )
            vals.append(bounded(node, exprs))
        elif isinstance(op, ConvOp):
            vals.append(bounded(node, _conv_exprs(z3, q, op, ins[0], check_time)))
        elif isinstance(op, ScaleShiftOp):
            s, t = op.s.ravel(), (None if op.bias is None else op.bias.ravel())
            exprs = [_lin(z3, q, [(ins[0][i], s[i])], 0.0 if t is None else t[i]) for i in range(s.size)]
            vals.append(bounded(node, exprs))
        elif isinstance(op, AvgPoolOp):
            vals.append(bounded(node, _avgpool_exprs(z3, q, op, ins[0])))
        elif isinstance(op, GlobalAvgPoolOp):
            h, w, c = op.in_shapes[0]
            sums = [_lin(z3, q, [(ins[0][p * c + ch], 1.0) for p in range(h * w)], 0.0) for ch in range(c)]
            exprs = [q(Fraction(1, h * w)) * e for e in sums]
            vals.append(bounded(node, exprs))
        elif isinstance(op, IndexOp):
            n = math.prod(op.in_shapes[0])
            src = op.apply(np.arange(n, dtype=np.float64).reshape(1, *op.in_shapes[0]))[0].ravel()
            vals.append([ins[0][int(i)] for i in src])
        elif isinstance(op, AddOp):
            vals.append([_add(z3, q, a, b) for a, b in zip(ins[0], ins[1])])
        elif isinstance(op, ConcatOp):
            ids = [
                np.arange(math.prod(s)).reshape(s) + sum(math.prod(t) for t in op.in_shapes[:k])
                for k, s in enumerate(op.in_shapes)
            ]
            order = np.concatenate(ids, axis=op.axis).ravel()
            flat = [v for part in ins for v in part]
            vals.append([flat[int(i)] for i in order])
        elif isinstance(op, ActivationOp):
            kind = op.math.kind
            if kind not in PIECEWISE:
                raise UnsupportedLayerError(
                    f"{where}: activation {kind!r} is not piecewise linear; exact SMT supports {', '.join(PIECEWISE)}"
                )
            if kind == "identity":
                vals.append(ins[0])
                continue
            if node.name in phase_map and kind not in RELU_LIKE:  # pragma: no cover - names only list ReLU-like
                raise ValueError(f"phases apply to ReLU-like layers only, not {where}")
            z = ins[0]
            b = bounds[node.inputs[0]]
            if kind in RELU_LIKE:
                pre[node.name] = list(z)
                info["relus"] += len(z)
            else:
                info["pwl_neurons"] += len(z)
            vals.append(_activation(z3, q, cons, fresh, kind, op.math.alpha, z, b, phase_map.get(node.name, {}), info))
        elif isinstance(op, MaxPoolOp):
            vals.append(_maxpool(z3, q, cons, fresh, op, ins[0], bounds[node.inputs[0]], info))
        else:
            raise UnsupportedLayerError(
                f"{where} is not piecewise linear: exact SMT supports Dense, Conv2d, ReLU-like activations, "
                "MaxPool2d, AvgPool2d, GlobalAvgPool, BatchNorm, Affine, Flatten/Reshape/Permute, Residual, Parallel"
            )
    out_vals = vals[out_id]
    ys = [z3.Real(f"y_{j}", ctx) for j in range(len(out_vals))]
    cons += [y == _as_z3(q, v) for y, v in zip(ys, out_vals)]
    b = bounds[out_id]
    if b is not None:
        for y, lo, hi in zip(ys, *b):
            if math.isfinite(lo):
                cons.append(y >= q(_outward(lo, True)))
            if math.isfinite(hi):
                cons.append(y <= q(_outward(hi, False)))
    info["encode_s"] = time.perf_counter() - t0
    info["dropped_final"] = type(last.op).__name__.removesuffix("Op") if drop else ""
    return SmtEncoding(z3, ctx, xs, ys, cons, pre, info, q, last.op if drop else None)


def _as_z3(q: _Q, v: Any) -> Any:
    return q(v) if isinstance(v, Fraction) else v


def _add(z3: Any, q: _Q, a: Any, b: Any) -> Any:
    if isinstance(a, Fraction) and isinstance(b, Fraction):
        return a + b
    if isinstance(a, Fraction):
        a = q(a)
    if isinstance(b, Fraction):
        b = q(b)
    return a + b


def _conv_exprs(z3: Any, q: _Q, op: ConvOp, x: list[Any], check_time: Any) -> list[Any]:
    """Exact NHWC convolution, output by output: ``sum W[i, j, ci, co] x[oh*s + i*d - p, ...] + b``."""
    kh, kw, cin_g, cout = op.W.shape
    h, w, cin = op.in_shapes[0]
    ho, wo, _ = op.out_shape
    (pt, _), (pl, _) = op.padding
    sh, sw = op.stride
    dh, dw = op.dilation
    cout_g = cout // op.groups
    bias = op.bias.ravel() if op.bias is not None else None
    exprs = []
    for oh in range(ho):
        for ow in range(wo):
            check_time()
            for co in range(cout):
                g = co // cout_g
                terms = []
                for i in range(kh):
                    ih = oh * sh + i * dh - pt
                    if not 0 <= ih < h:
                        continue
                    for j in range(kw):
                        iw = ow * sw + j * dw - pl
                        if not 0 <= iw < w:
                            continue
                        for ci in range(cin_g):
                            wv = op.W[i, j, ci, co]
                            if wv != 0:
                                terms.append((x[(ih * w + iw) * cin + g * cin_g + ci], wv))
                k = (oh * wo + ow) * cout + co
                exprs.append(_lin(z3, q, terms, 0.0 if bias is None else bias[k]))
    return exprs


def _avgpool_exprs(z3: Any, q: _Q, op: AvgPoolOp, x: list[Any]) -> list[Any]:
    h, w, c = op.in_shapes[0]
    ho, wo, _ = op.out_shape
    (pt, _), (pl, _) = op.padding
    kh, kw = op.kernel
    sh, sw = op.stride
    exprs = []
    for oh in range(ho):
        for ow in range(wo):
            count = int(round(float(op.count[oh, ow, 0])))
            for ch in range(c):
                cells = [
                    x[(ih * w + iw) * c + ch]
                    for i in range(kh)
                    for j in range(kw)
                    if 0 <= (ih := oh * sh + i - pt) < h and 0 <= (iw := ow * sw + j - pl) < w
                ]
                total = _lin(z3, q, [(v, 1.0) for v in cells], 0.0)
                exprs.append(q(Fraction(1, count)) * total)
    return exprs


def _activation(
    z3: Any,
    q: _Q,
    cons: list[Any],
    fresh: Any,
    kind: str,
    alpha: float,
    z: list[Any],
    b: tuple[np.ndarray, np.ndarray] | None,
    phases: dict[int, str],
    info: dict[str, Any],
) -> list[Any]:
    pieces = _pieces(kind, alpha)
    relu_like = kind in RELU_LIKE
    outs: list[Any] = []
    for k, zk in enumerate(z):
        lo = float(b[0][k]) if b is not None else -math.inf
        hi = float(b[1][k]) if b is not None else math.inf
        phase = phases.get(k)
        if isinstance(zk, Fraction):  # a constant pre-activation (e.g. after a ReLU fixed to 0)
            lo = hi = float(zk)
            if phase is not None and not (zk >= 0 if phase == "active" else zk <= 0):
                cons.append(z3.BoolVal(False, q.ctx))  # the split contradicts a constant: empty domain
        elif phase is not None:
            cons.append(zk >= 0 if phase == "active" else zk <= 0)
        # pieces whose open interval meets [lo, hi]: a neuron with lo >= 0 is stable active
        live = [p for p in pieces if (p[0] is None or hi > p[0]) and (p[1] is None or lo < p[1])]
        if not live:  # [lo, hi] is a single breakpoint: any piece through it gives the value
            live = [p for p in pieces if (p[0] is None or hi >= p[0]) and (p[1] is None or lo <= p[1])][:1]
        if relu_like and phase is not None:  # the split keeps one piece (0 is shared by both)
            live = [pieces[1] if phase == "active" else pieces[0]]
        if not live:  # pragma: no cover - bounds always meet some piece
            live = pieces
        if len(live) == 1:
            _, _, slope, off = live[0]
            if relu_like and phase is None:
                info["fixed_active" if slope == 1 else "fixed_inactive"] += 1
            outs.append(_piece_value(q, zk, slope, off))
            continue
        info["unstable" if relu_like else "pwl_unstable"] += 1
        (a,) = fresh("a", 1)
        options = []
        for zlo, zhi, slope, off in live:
            conds = []
            if zlo is not None:
                conds.append(zk >= q(zlo))
            if zhi is not None:
                conds.append(zk <= q(zhi))
            conds.append(a == _as_z3(q, _piece_value(q, zk, slope, off)))
            options.append(z3.And(*conds))
        cons.append(z3.Or(*options))
        convex = kind == "relu" or alpha <= 1
        if relu_like and convex:  # convex hull helpers: a >= z, a >= s z and the chord over [l, u]
            s = live[0][2]  # slope of the negative piece
            cons.append(a >= zk)
            cons.append(a >= 0 if s == 0 else a >= q(s) * zk)
            if b is not None and math.isfinite(lo) and math.isfinite(hi):
                lq, uq = _outward(lo, True), _outward(hi, False)
                # chord through (l, s l) and (u, u), times (u - l) > 0: (u - l) a <= (u - s l) z + (s - 1) l u
                cons.append(q(uq - lq) * a <= q(uq - s * lq) * zk + q((s - 1) * lq * uq))
        outs.append(a)
    return outs


def _piece_value(q: _Q, zk: Any, slope: Fraction, off: Fraction) -> Any:
    if isinstance(zk, Fraction):
        return zk * slope + off
    if slope == 0:
        return off
    expr = zk if slope == 1 else q(slope) * zk
    return expr if off == 0 else expr + q(off)


def _maxpool(
    z3: Any,
    q: _Q,
    cons: list[Any],
    fresh: Any,
    op: MaxPoolOp,
    x: list[Any],
    b: tuple[np.ndarray, np.ndarray] | None,
    info: dict[str, Any],
) -> list[Any]:
    ho, wo, kk = op.win.shape
    c = op.c
    outs = []
    for oh in range(ho):
        for ow in range(wo):
            for ch in range(c):
                cells = [int(p) * c + ch for p in op.win[oh, ow] if p < op.hw]
                info["maxpool_outputs"] += 1
                if b is not None:
                    best = max(float(b[0][i]) for i in cells)
                    cells = [i for i in cells if float(b[1][i]) >= best]
                if len(cells) == 1:
                    outs.append(x[cells[0]])
                    continue
                info["maxpool_unstable"] += 1
                (o,) = fresh("m", 1)
                for i in cells:
                    cons.append(o >= (q(x[i]) if isinstance(x[i], Fraction) else x[i]))
                cons.append(z3.Or(*[o == (q(x[i]) if isinstance(x[i], Fraction) else x[i]) for i in cells]))
                outs.append(o)
    return outs


# ---------------------------------------------------------------------------------------------
# Solving and replay
# ---------------------------------------------------------------------------------------------


def _clauses_and_condition(model: Any, condition: Any) -> tuple[list[Clause], OutputCondition]:
    if isinstance(condition, Property):
        condition = condition.condition
    if isinstance(condition, OutputCondition):
        clauses = condition.unsafe_region(model_output_size(model))
        if clauses is None:
            raise ValueError(
                "exact SMT verification needs a linear output condition; "
                f"{type(condition).__name__} has no linear unsafe region"
            )
        return clauses, condition
    if isinstance(condition, Clause):
        condition = [condition]
    if isinstance(condition, Sequence) and all(isinstance(c, Clause) for c in condition):
        return list(condition), AvoidsRegion(condition)
    raise TypeError(
        f"condition must be an OutputCondition, a Property or a list of unsafe Clauses, got {type(condition).__name__}"
    )


def _order_only(clauses: list[Clause]) -> bool:
    """Does every atom compare two outputs (``a y_i - a y_j <= 0``, ``a > 0``), as ``ArgmaxIs`` does?

    Then the region is the same on the logits of a final softmax (strictly order-preserving).
    """
    for c in clauses:
        for row, rhs in zip(np.asarray(c.C), np.asarray(c.d)):
            nz = np.flatnonzero(row)
            if rhs != 0 or nz.size != 2 or row[nz[0]] != -row[nz[1]]:
                return False
    return bool(clauses)


def _inward_box(box: tuple[list[Fraction], list[Fraction]], dtype: np.dtype) -> tuple[np.ndarray, np.ndarray]:
    """The box's bounds rounded inward to values of ``dtype`` (so a clipped point stays inside)."""
    lo = np.array([float(v) for v in box[0]])
    hi = np.array([float(v) for v in box[1]])
    lo_d, hi_d = lo.astype(dtype), hi.astype(dtype)
    lo_d = np.where(
        np.array([Fraction(float(a)) < f for a, f in zip(lo_d, box[0])]), np.nextafter(lo_d, dtype.type(np.inf)), lo_d
    )
    hi_d = np.where(
        np.array([Fraction(float(a)) > f for a, f in zip(hi_d, box[1])]), np.nextafter(hi_d, dtype.type(-np.inf)), hi_d
    )
    return lo_d.astype(np.float64), np.maximum(hi_d.astype(np.float64), lo_d.astype(np.float64))


def _candidate(
    x_exact: list[Fraction], boxes: list[tuple[list[Fraction], list[Fraction]]], dtype: np.dtype, shape: tuple[int, ...]
) -> np.ndarray:
    """Z3's input, rounded to the model dtype and clipped into the (inward-rounded) box it lies in."""
    inside = [k for k, (lo, hi) in enumerate(boxes) if all(a <= v <= b for v, a, b in zip(x_exact, lo, hi))]
    lo, hi = _inward_box(boxes[inside[0] if inside else 0], dtype)
    x = np.array([float(v) for v in x_exact]).astype(dtype).astype(np.float64)
    return np.clip(x, lo, hi).reshape(shape)


def _solve(enc: SmtEncoding, extra: list[Any], deadline: float) -> tuple[str, Any, str]:
    z3 = enc.z3
    s = z3.Solver(ctx=enc.ctx)
    s.add(*enc.constraints, *extra)
    # Measured after add() (Z3's clock covers check() only), less a reserve: Z3 overshoots its
    # timeout by about 0.1-0.2 s while it gives up.
    seconds = 0.9 * (deadline - time.perf_counter()) - 0.05
    if seconds <= 0:
        return "unknown", None, "timeout"
    s.set("timeout", max(1, int(seconds * 1000)))
    r = s.check()
    if r == z3.unsat:
        return "unsat", None, ""
    if r == z3.sat:
        return "sat", s.model(), ""
    return "unknown", None, s.reason_unknown()


def _value(model: Any, v: Any) -> Fraction:
    r = model.eval(v, model_completion=True)
    return Fraction(int(r.numerator_as_long()), int(r.denominator_as_long()))


def _check(
    model: Any,
    input_set: InputSet,
    condition: Any,
    phases: Any,
    timeout: float,
    prefix_bounds: bool,
    bound_method: str,
) -> SmtResult:
    t0 = time.perf_counter()
    if not (isinstance(timeout, int | float) and timeout > 0 and math.isfinite(timeout)):
        raise ValueError(f"timeout must be a positive number of seconds, got {timeout!r}")
    deadline = t0 + float(timeout)
    model.eval()
    clauses, cond = _clauses_and_condition(model, condition)
    in_shape = model_input_shape(model)
    input_set = input_set.bind(in_shape)
    try:
        enc = encode_network(
            model,
            input_set,
            prefix_bounds=prefix_bounds,
            bound_method=bound_method,
            phases=phases,
            deadline=deadline,
            order_only=_order_only(clauses),
        )
    except TimeoutError as err:
        elapsed = time.perf_counter() - t0
        return SmtResult("unknown", "unknown", time_s=elapsed, timed_out=True, message=f"timeout ({timeout} s): {err}")
    info = dict(enc.info)
    info["bounds_s"] = max(0.0, time.perf_counter() - t0 - info["encode_s"])

    def done(status: str, z3_status: str, message: str, timed_out: bool = False, **kw: Any) -> SmtResult:
        info["solve_s"] = time.perf_counter() - t_solve
        return SmtResult(
            status, z3_status, time_s=time.perf_counter() - t0, timed_out=timed_out, message=message, info=info, **kw
        )

    t_solve = time.perf_counter()
    counts = f"{info['unstable']} unstable of {info['relus']} ReLUs"
    if time.perf_counter() >= deadline:
        return done("unknown", "unknown", f"timeout ({timeout} s) before the solver started", True)
    z3_status, zmodel, why = _solve(enc, [enc.region(clauses)], deadline)
    if z3_status == "unsat":
        return done("proven", "unsat", f"Z3: unsat ({counts}); {SEMANTICS}")
    if z3_status == "unknown":
        late = time.perf_counter() >= deadline - 1e-3 or "timeout" in why or "canceled" in why
        return done("unknown", "unknown", f"Z3: unknown ({why or 'no reason given'}; {counts})", late)
    replayer = Replayer(model)
    boxes = _input_boxes(input_set)
    margin, last = 0.0, "sat"
    for attempt in range(3):
        x_exact = [_value(zmodel, v) for v in enc.inputs]
        y_exact = np.array([float(_value(zmodel, v)) for v in enc.outputs])
        if enc.post is not None:  # Z3's outputs are the logits of a dropped final softmax
            y_exact = enc.post.forward([y_exact[None]])[0]
        x = _candidate(x_exact, boxes, replayer.dtype, in_shape)
        y_dep, y64 = replayer.outputs(x[None])
        # Self-check of the encoding: the float64 model at Z3's own point gives Z3's outputs.
        _, y64_exact_x = replayer.outputs(np.array([float(v) for v in x_exact]).reshape(1, *in_shape))
        gap = float(np.max(np.abs(y64_exact_x.ravel() - y_exact), initial=0.0)) / (1.0 + float(np.max(np.abs(y_exact))))
        info["encoding_gap"] = max(info.get("encoding_gap", 0.0), gap)
        if input_set.contains(x) and not cond.holds(y_dep)[0] and not cond.holds(y64)[0]:
            return done(
                "falsified",
                "sat",
                f"Z3: sat ({counts}); counterexample replayed through the model in its own dtype and in float64",
                counterexample=x.astype(replayer.dtype),
                output=y_dep[0],
                output64=y64[0],
            )
        if attempt == 2 or time.perf_counter() >= deadline:
            break
        # Z3's point sits on the region's boundary (or float rounding moved it out): ask for depth.
        margin = (1e-5 if attempt == 0 else 1e-3) * (1.0 + float(np.max(np.abs(y_exact))))
        last, zmodel, why = _solve(enc, [enc.region(clauses, margin)], deadline)
        if last != "sat":
            break
    late = time.perf_counter() >= deadline
    if last == "unsat":
        why = f"no point lies {margin:.3g} inside it, so the violation is at most a boundary effect"
    elif last == "unknown":
        why = f"the search for a point {margin:.3g} inside it gave up ({why or 'unknown'})"
    else:
        why = "the points found do not replay as violations of the float model"
    if info["encoding_gap"] > 1e-6:
        why += f"; WARNING: Z3's outputs differ from the float64 model by {info['encoding_gap']:.3g} (relative)"
    return done(
        "unknown", "sat", f"Z3: sat in exact arithmetic on the closed unsafe region ({counts}), but {why}", late
    )


def smt_verify(
    model: Any,
    prop: Property | InputSet,
    condition: Any = None,
    *,
    timeout: float = 10.0,
    prefix_bounds: bool = True,
    bound_method: str = "crown",
) -> SmtResult:
    """Decide one property exactly with Z3: ``proven``, ``falsified`` (replayed) or ``unknown``.

    Args:
        model: a small piecewise-linear axiom model (see the module docstring for the layers).
        prop: a :class:`~axiom.verify.properties.Property` with an input set, or an input set
            (Box, LinfBall, BoxUnion) when ``condition`` is given.
        condition: an ``OutputCondition`` with a linear unsafe region, or a list of unsafe
            :class:`~axiom.verify.properties.Clause` (required when ``prop`` is an input set).
        timeout: seconds for the whole call (bounds, encoding, solving); ``unknown`` when spent.
        prefix_bounds: fix provably stable ReLUs with ``bound_method`` bounds (never changes answers).

    Example:
        >>> import numpy as np
        >>> from axiom import Dense, Sequential, relu
        >>> from axiom.nn.init import manual_seed
        >>> from axiom.verify import Box, OutputBounds
        >>> manual_seed(0)
        >>> net = Sequential(Dense(2, 4, relu), Dense(4, 1))
        >>> r = smt_verify(net, OutputBounds(upper=1e3, over=Box(-1, 1, shape=(2,))), timeout=5)
        >>> r.status, r.info["relus"]
        ('proven', 4)
    """
    if isinstance(prop, Property):
        prop = resolve_labels(model, [prop])[0]  # LocalRobustness(label=None): the model's prediction
        if prop.input_set is None:
            raise ValueError(f"exact SMT verification of {prop.name} needs an input set (over=Box(...))")
        input_set, cond = prop.input_set, prop.condition if condition is None else condition
    elif isinstance(prop, InputSet):
        if condition is None:
            raise ValueError("smt_verify(model, input_set, condition): the output condition is missing")
        input_set, cond = prop, condition
    else:
        raise TypeError(f"smt_verify: expected a Property or an InputSet, got {type(prop).__name__}")
    return _check(model, input_set, cond, None, timeout, prefix_bounds, bound_method)


def smt_check_domain(
    model: Any,
    box: InputSet,
    condition: Any,
    phases: Any = None,
    *,
    timeout: float = 10.0,
    prefix_bounds: bool = True,
    bound_method: str = "crown",
) -> SmtResult:
    """Check ONE sub-domain exactly: the box plus optional ReLU split constraints.

    ``phases`` maps ``(layer, neuron)`` to ``"active"`` (pre-activation ``z >= 0``) or
    ``"inactive"`` (``z <= 0``); ``layer`` is the 0-based index among the ReLU layers (see
    :func:`relu_layers`) or the layer's name, ``neuron`` the flat index. Branch-and-bound split
    states are accepted as they are: ``+1``/``-1`` for active/inactive, or a list with one array
    per ReLU layer (``+1``, ``-1``, ``0`` = free). ``proven`` means no input of the box
    satisfying the splits reaches the unsafe region; ``falsified`` comes with a replayed
    counterexample (it need not satisfy the splits: any real violation refutes the property).
    Use it to double-check branch-and-bound leaves.

    Example:
        >>> import numpy as np
        >>> from axiom import Dense, Sequential, relu
        >>> from axiom.verify import Box, OutputBounds
        >>> net = Sequential(Dense(1, 1, relu), Dense(1, 1))
        >>> net[0].weight.data[:] = 1; net[0].bias.data[:] = 0
        >>> net[1].weight.data[:] = 1; net[1].bias.data[:] = 0
        >>> cond = OutputBounds(upper=0.5).condition
        >>> smt_check_domain(net, Box(-1, 1, shape=(1,)), cond, {(0, 0): "inactive"}).status
        'proven'
        >>> smt_check_domain(net, Box(-1, 1, shape=(1,)), cond, {(0, 0): "active"}).status
        'falsified'
        >>> smt_check_domain(net, Box(-1, 1, shape=(1,)), cond, [np.array([-1], np.int8)]).status
        'proven'
    """
    if not isinstance(box, InputSet):
        raise TypeError(f"smt_check_domain: box must be an input set such as Box, got {type(box).__name__}")
    return _check(model, box, condition, phases, timeout, prefix_bounds, bound_method)


def verify_smt(
    model: Any, properties: Iterable[Property], *, timeout: float = 10.0, prefix_bounds: bool = True
) -> VerificationResult:
    """:func:`smt_verify` on each property (``timeout`` per property), as a formal ``VerificationResult``.

    Example:
        >>> from axiom import Dense, Sequential, relu
        >>> from axiom.nn.init import manual_seed
        >>> from axiom.verify import Box, OutputBounds
        >>> manual_seed(0)
        >>> net = Sequential(Dense(2, 3, relu), Dense(3, 1))
        >>> r = verify_smt(net, [OutputBounds(upper=-1e3, over=Box(0, 1, shape=(2,)))])
        >>> r.status, r.results[0].method
        ('falsified', 'smt')
    """
    t0 = time.perf_counter()
    results = [
        smt_verify(model, p, timeout=timeout, prefix_bounds=prefix_bounds).to_property_result(p)
        for p in resolve_labels(model, list(properties))
    ]
    return VerificationResult("formal", results, time.perf_counter() - t0, [SEMANTICS])
