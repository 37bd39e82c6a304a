"""IBP, CROWN and alpha-CROWN over the flat graph (internal; the API is in ``__init__``).

Back-substitution keeps, for a target node ``T`` and spec rows ``Lam``, a linear lower bound
``Lam . z_T >= sum_k A_k . z_k + d - err`` and walks the graph in reverse topological order.
Every op step adds its own rounding bound to ``err`` (see ``_ops``); summing the contributions of
several consumers into one node (forks) and accumulating ``d`` add ``2u |.|`` terms here. The
result is ``d - err`` rounded down: sound for the real-arithmetic network whatever rounding
happened inside. Upper bounds are lower bounds of ``-Lam``.

Example:
    >>> import numpy as np
    >>> from axiom import Dense, Sequential, relu
    >>> from axiom.verify import Box
    >>> from axiom.verify.bounds._engine import analyse
    >>> model = Sequential(Dense(2, 3, relu), Dense(3, 1))
    >>> res = analyse(model, Box([-1, -1], [1, 1]), "crown", None, 0, 0.1)
    >>> bool(res.lower[0] <= res.upper[0])
    True
"""

from __future__ import annotations

import math
import time
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from axiom.nn import Layer
from axiom.verify.bounds._fp import U, down, gamma, magnitude, sanitize, up
from axiom.verify.bounds._graph import Graph, build_graph
from axiom.verify.bounds._ops import ActivationOp, Interval
from axiom.verify.sets import Box, BoxUnion, InputSet, L2Ball, LinfBall

#: Most elements of one coefficient matrix ``A`` during intermediate back-substitution (memory cap).
ROW_BUDGET = 1 << 23

METHODS = ("ibp", "crown", "alpha-crown")


@dataclass
class BoundResult:
    """Sound bounds: ``lower <= output <= upper`` (or ``<= C @ output``) for every input in the set.

    ``lower``/``upper`` are float64, shaped ``(m,)`` when a spec matrix ``C`` was given, else like
    one example's output. ``layers`` lists ``(name, lower, upper)`` for every graph node
    (intermediate bounds, per example); ``time_s`` is the wall time.

    Example:
        >>> r = BoundResult(np.array([0.0]), np.array([1.0]), "ibp", [], 0.001)
        >>> r.lower.tolist(), r.upper.tolist(), r.method
        ([0.0], [1.0], 'ibp')
    """

    lower: np.ndarray
    upper: np.ndarray
    method: str
    layers: list[tuple[str, np.ndarray, np.ndarray]] = field(default_factory=list)
    time_s: float = 0.0


@dataclass
class Domain:
    """One input region: the box ``[lower, upper]``, optionally intersected with an L2 ball."""

    lower: np.ndarray
    upper: np.ndarray
    center: np.ndarray | None = None
    eps: float = 0.0
    clipped: bool = False

    @property
    def l2(self) -> bool:
        return self.center is not None


def domains(input_set: InputSet) -> list[Domain]:
    """The regions to analyse for ``input_set`` (a union of boxes gives one region per box).

    Example:
        >>> [d.l2 for d in domains(L2Ball([0.0, 0.0], 0.5))]
        [True]
    """
    if isinstance(input_set, BoxUnion):
        return [d for b in input_set.boxes() for d in domains(b)]
    if isinstance(input_set, LinfBall):  # and L2Ball: its bounding box, rounded outward
        lo, hi = _ball_box(input_set)
        if isinstance(input_set, L2Ball):
            return [Domain(lo, hi, input_set.center, input_set.eps, input_set.clip is not None)]
        return [Domain(lo, hi)]
    if isinstance(input_set, Box):
        return [Domain(input_set.lower, input_set.upper)]
    raise TypeError(f"compute_bounds: unsupported input set {type(input_set).__name__}")


def _ball_box(ball: LinfBall) -> tuple[np.ndarray, np.ndarray]:
    """``center -/+ eps`` rounded outward (the real ball, not its rounded image), then clipped."""
    c = np.asarray(ball.center, np.float64)
    if ball.eps > 0:
        lo, hi = down(c - ball.eps), up(c + ball.eps)
    else:
        lo, hi = c.copy(), c.copy()
    if ball.clip is not None:
        lo = np.maximum(lo, np.asarray(ball.clip[0], np.float64))
        hi = np.minimum(hi, np.asarray(ball.clip[1], np.float64))
        hi = np.maximum(hi, lo)
    return lo, hi


class Analysis:
    """Bounds of every node of ``graph`` for one input domain."""

    def __init__(self, graph: Graph, dom: Domain) -> None:
        self.g = graph
        self.dom = dom
        n = len(graph.nodes)
        self.bounds: list[Interval | None] = [None] * n
        self.mag: list[np.ndarray | None] = [None] * n
        self.state: dict[int, Any] = {}
        self._set(0, dom.lower.astype(np.float64), dom.upper.astype(np.float64))
        self.isbox = [not dom.l2] + [False] * (n - 1)
        self.exact = [True] + [False] * (n - 1)
        for node in graph.nodes[1:]:
            op = node.op
            if len(node.inputs) == 1:
                src = self.isbox[node.inputs[0]]
                self.isbox[node.id] = bool(op.box_preserving and src)  # type: ignore[union-attr]
                self.exact[node.id] = self.isbox[node.id] or bool(op.mixing and src)  # type: ignore[union-attr]

    # -- bookkeeping ------------------------------------------------------------------------
    def _set(self, k: int, l: np.ndarray, u: np.ndarray) -> None:
        l, u = sanitize(np.asarray(l, np.float64), np.asarray(u, np.float64))
        self.bounds[k] = (l, u)
        self.mag[k] = magnitude(l, u).ravel()

    def _ins(self, k: int) -> list[Interval]:
        return [self.bounds[i] for i in self.g.nodes[k].inputs]  # type: ignore[misc]

    def _state(self, k: int) -> Any:
        if k not in self.state:
            self.state[k] = self.g.nodes[k].op.prepare(self._ins(k))  # type: ignore[union-attr]
        return self.state[k]

    def _ibp(self, k: int) -> Interval:
        with np.errstate(invalid="ignore", over="ignore"):
            return self.g.nodes[k].op.ibp(self._ins(k))  # type: ignore[union-attr]

    # -- passes -----------------------------------------------------------------------------
    def ibp_pass(self) -> None:
        for k in range(1, len(self.g.nodes)):
            self._set(k, *self._ibp(k))

    def crown_pass(self, ibp_bounds: list[Interval], need_output: bool) -> None:
        for k in range(1, len(self.g.nodes)):
            l, u = self._ibp(k)
            il, iu = ibp_bounds[k]
            self._set(k, np.maximum(l, il), np.minimum(u, iu))
            if self._wants_crown(k, need_output):
                self._crown_node(k)

    def _wants_crown(self, k: int, need_output: bool) -> bool:
        node = self.g.nodes[k]
        if node.op.kind != "linear" or self.exact[k]:  # type: ignore[union-attr]
            return False
        if k == self.g.output and need_output:
            return True
        return any(self.g.nodes[c].op.kind != "linear" for c in node.consumers)  # type: ignore[union-attr]

    def _rows(self, k: int) -> np.ndarray:
        """Neurons of node ``k`` worth a CROWN bound: only unstable ones when ReLUs alone consume it."""
        node = self.g.nodes[k]
        l, u = self.bounds[k]  # type: ignore[misc]
        n = l.size
        relu_only = k != self.g.output and all(
            isinstance(c.op, ActivationOp)
            and c.op.relu_like
            and c.id != self.g.output
            and c.consumers
            and all(self.g.nodes[cc].op.kind == "linear" for cc in c.consumers)  # type: ignore[union-attr]
            for c in (self.g.nodes[i] for i in node.consumers)
        )
        if relu_only:
            return np.flatnonzero(((l < 0) & (u > 0)).ravel())
        return np.arange(n)

    def _crown_node(self, k: int) -> None:
        idx = self._rows(k)
        if idx.size == 0:
            return
        shape = self.g.nodes[k].shape
        n = math.prod(shape)
        widest = max(math.prod(self.g.nodes[i].shape) for i in range(k + 1))
        chunk = max(1, ROW_BUDGET // (2 * widest))
        l, u = (b.ravel().copy() for b in self.bounds[k])  # type: ignore[union-attr]
        for s in range(0, idx.size, chunk):
            ii = idx[s : s + chunk]
            c = ii.size
            lam = np.zeros((2 * c, n))
            lam[np.arange(c), ii] = 1.0
            lam[c + np.arange(c), ii] = -1.0
            lo = self.backsub(k, lam.reshape(2 * c, *shape))
            l[ii] = np.maximum(l[ii], lo[:c])
            u[ii] = np.minimum(u[ii], -lo[c:])
        self._set(k, l.reshape(shape), u.reshape(shape))

    # -- back-substitution ----------------------------------------------------------------------
    def _concretize_box(self, A: np.ndarray, l: np.ndarray, u: np.ndarray, mag: np.ndarray) -> tuple[Any, Any]:
        A2 = A.reshape(A.shape[0], -1)
        with np.errstate(invalid="ignore"):
            val = np.maximum(A2, 0.0) @ l.ravel() + np.minimum(A2, 0.0) @ u.ravel()
            err = 2 * gamma(A2.shape[1] + 2) * (np.abs(A2) @ mag)
        return val, err

    def _concretize_input(self, A: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray | None]:
        """``(value, err, l2_rows)``: value - err <= min over the input domain of A . x."""
        dom = self.dom
        val, err = self._concretize_box(A, dom.lower, dom.upper, self.mag[0])  # type: ignore[arg-type]
        if not dom.l2:
            return val, err, None
        A2 = A.reshape(A.shape[0], -1)
        x0 = dom.center.ravel()  # type: ignore[union-attr]
        nrm = np.linalg.norm(A2, axis=1)
        g = 2 * gamma(A2.shape[1] + 2)
        v2 = A2 @ x0 - dom.eps * nrm
        e2 = g * (np.abs(A2) @ np.abs(x0)) + (g + 4 * U) * dom.eps * nrm
        if not dom.clipped:
            return v2, e2, np.ones(A2.shape[0], bool)
        pick = (v2 - e2) > (val - err)
        return np.where(pick, v2, val), np.where(pick, e2, err), pick

    def backsub(
        self,
        target: int,
        lam: np.ndarray,
        alphas: dict[int, np.ndarray] | None = None,
        tape: dict[int, np.ndarray] | None = None,
        linear_only: bool = False,
    ) -> np.ndarray:
        """Sound lower bounds of ``lam . z_target`` (one per row of ``lam``)."""
        m = lam.shape[0]
        pending: dict[int, np.ndarray] = {target: lam}
        d = np.zeros(m)
        err = np.zeros(m)
        with np.errstate(invalid="ignore", over="ignore"):
            for k in range(target, -1, -1):
                A = pending.pop(k, None)
                if A is None:
                    continue
                if tape is not None:
                    tape[k] = A
                node = self.g.nodes[k]
                if k == 0:
                    val, e, _ = self._concretize_input(A)
                elif node.op.kind == "cut" or (linear_only and node.op.kind != "linear"):  # type: ignore[union-attr]
                    l, u = self.bounds[k]  # type: ignore[misc]
                    val, e = self._concretize_box(A, l, u, self.mag[k])  # type: ignore[arg-type]
                else:
                    alpha = None if alphas is None else alphas.get(k)
                    a_ins, val, e = node.op.backward(A, self._ins(k), self._state(k), alpha)  # type: ignore[union-attr]
                    for i, ai in zip(node.inputs, a_ins):
                        if i in pending:
                            pending[i] = pending[i] + ai
                            e = e + 2 * U * (np.abs(pending[i].reshape(m, -1)) @ self.mag[i])
                        else:
                            pending[i] = ai
                d_new = d + val
                err = err + e + 2 * U * np.abs(d_new)
                d = d_new
            res = down(d - up(err * (1 + 1e-6)))
        return np.where(np.isnan(res), -np.inf, res)

    # -- alpha-CROWN ------------------------------------------------------------------------
    def _bound_grads(
        self, tape: dict[int, np.ndarray], alphas: dict[int, np.ndarray], linear_only: bool = False
    ) -> dict[int, np.ndarray]:
        """d(bound)/d(alpha) per optimised node, by a reverse pass over the recorded back-substitution."""
        G: dict[int, np.ndarray] = {}
        grads: dict[int, np.ndarray] = {}
        for k in sorted(tape):
            A = tape[k]
            node = self.g.nodes[k]
            if k == 0:
                dom = self.dom
                G[0] = np.where(A >= 0, dom.lower, dom.upper)
                if dom.l2:
                    _, _, pick = self._concretize_input(A)
                    A2 = A.reshape(A.shape[0], -1)
                    nrm = np.maximum(np.linalg.norm(A2, axis=1, keepdims=True), 1e-300)
                    g2 = (dom.center.ravel() - dom.eps * A2 / nrm).reshape(A.shape)  # type: ignore[union-attr]
                    G[0] = np.where(pick.reshape(-1, *([1] * (A.ndim - 1))), g2, G[0])  # type: ignore[union-attr]
            elif node.op.kind == "cut" or (linear_only and node.op.kind != "linear"):  # type: ignore[union-attr]
                l, u = self.bounds[k]  # type: ignore[misc]
                G[k] = np.where(A >= 0, l, u)
            else:
                g_ins = [G[i] for i in node.inputs]
                G[k], da = node.op.bound_vjp(A, g_ins, self._ins(k), self._state(k), alphas.get(k))  # type: ignore[union-attr]
                if da is not None:
                    grads[k] = da
        return grads

    def alpha_crown(self, target: int, lam: np.ndarray, iterations: int, lr: float) -> np.ndarray:
        """Lower bounds of ``lam . z_target`` with per-row optimised ReLU/LeakyReLU slopes (never below CROWN)."""
        tape: dict[int, np.ndarray] = {}
        best = self.backsub(target, lam, tape=tape)
        m = lam.shape[0]
        alphas: dict[int, np.ndarray] = {}
        for k in tape:
            op = self.g.nodes[k].op
            if isinstance(op, ActivationOp) and op.relu_like:
                r = self._state(k)[0]
                if r.free_idx.size:
                    alphas[k] = np.broadcast_to(r.alpha0[r.free_idx], (m, r.free_idx.size)).copy()
        if not alphas or iterations <= 0:
            return best
        m1 = {k: np.zeros_like(a) for k, a in alphas.items()}
        m2 = {k: np.zeros_like(a) for k, a in alphas.items()}
        b1, b2 = 0.9, 0.999
        for it in range(1, iterations + 1):
            tape = {}
            best = np.maximum(best, self.backsub(target, lam, alphas, tape))
            grads = self._bound_grads(tape, alphas)
            for k, g in grads.items():
                g = np.where(np.isfinite(g), g, 0.0)
                m1[k] = b1 * m1[k] + (1 - b1) * g
                m2[k] = b2 * m2[k] + (1 - b2) * g * g
                step = lr * (m1[k] / (1 - b1**it)) / (np.sqrt(m2[k] / (1 - b2**it)) + 1e-12)
                alphas[k] = np.clip(alphas[k] + step, 0.0, 1.0)
        return np.maximum(best, self.backsub(target, lam, alphas))


def _spec(C: Any, out_shape: tuple[int, ...]) -> np.ndarray | None:
    if C is None:
        return None
    C = np.asarray(C, dtype=np.float64)
    n_out = math.prod(out_shape)
    if C.ndim == 1:
        C = C[None, :]
    if C.ndim != 2 or C.shape[1] != n_out:
        raise ValueError(f"compute_bounds: C must be (m, {n_out}) over the flattened output, got {C.shape}")
    if not np.all(np.isfinite(C)):
        raise ValueError("compute_bounds: C must be finite")
    return C


def _analyse_domain(
    graph: Graph, dom: Domain, method: str, C: np.ndarray | None, iterations: int, lr: float
) -> tuple[np.ndarray, np.ndarray, list[Interval]]:
    an = Analysis(graph, dom)
    out = graph.output
    out_shape = graph.nodes[out].shape
    an.ibp_pass()
    ibp_bounds = list(an.bounds)

    def spec_candidates() -> tuple[np.ndarray, np.ndarray]:
        """Bounds of C y from the output interval and from folding C back through the trailing linear ops."""
        assert C is not None
        m = C.shape[0]
        lam = np.concatenate([C, -C]).reshape(2 * m, *out_shape)
        l, u = an.bounds[out]  # type: ignore[misc]
        val, e = an._concretize_box(lam, l, u, an.mag[out])  # type: ignore[arg-type]
        direct = np.where(np.isnan(val - e), -np.inf, down(val - up(e * (1 + 1e-6))))
        folded = an.backsub(out, lam, linear_only=True)
        best = np.maximum(direct, folded)
        return best[:m], -best[m:]

    if C is not None:
        ibp_lo, ibp_hi = spec_candidates()
    else:
        ibp_lo, ibp_hi = ibp_bounds[out]  # type: ignore[misc]
    if method == "ibp":
        return ibp_lo, ibp_hi, an.bounds  # type: ignore[return-value]

    an.crown_pass(ibp_bounds, need_output=C is None)  # type: ignore[arg-type]
    if C is None:
        lo, hi = an.bounds[out]  # type: ignore[misc]
        lo, hi = np.maximum(lo, ibp_lo), np.minimum(hi, ibp_hi)
        if method == "alpha-crown" and graph.nodes[out].op.kind in ("linear", "activation"):  # type: ignore[union-attr]
            n = math.prod(out_shape)
            eye = np.eye(n)
            lam = np.concatenate([eye, -eye]).reshape(2 * n, *out_shape)
            best = an.alpha_crown(out, lam, iterations, lr)
            lo = np.maximum(lo, best[:n].reshape(out_shape))
            hi = np.minimum(hi, -best[n:].reshape(out_shape))
        return lo, hi, an.bounds  # type: ignore[return-value]

    m = C.shape[0]
    lam = np.concatenate([C, -C]).reshape(2 * m, *out_shape)
    if method == "alpha-crown":
        res = an.alpha_crown(out, lam, iterations, lr)
    else:
        res = an.backsub(out, lam)
    c_lo, c_hi = spec_candidates()
    lo = np.maximum(np.maximum(res[:m], c_lo), ibp_lo)
    hi = np.minimum(np.minimum(-res[m:], c_hi), ibp_hi)
    return lo, hi, an.bounds  # type: ignore[return-value]


def analyse(model: Layer, input_set: InputSet, method: str, C: Any, iterations: int, lr: float) -> BoundResult:
    """Implementation of :func:`axiom.verify.bounds.compute_bounds`.

    Example:
        >>> from axiom import Dense
        >>> analyse(Dense(2, 1), Box([0, 0], [1, 1]), "ibp", None, 0, 0.1).lower.shape
        (1,)
    """
    t0 = time.perf_counter()
    method = method.lower().replace("_", "-")
    if method not in METHODS:
        raise ValueError(f"compute_bounds: method must be one of {', '.join(METHODS)}, got {method!r}")
    doms = domains(input_set)
    in_shape = doms[0].lower.shape
    if in_shape == ():
        raise ValueError("compute_bounds: bind the input set to the model input shape first (input_set.bind(shape))")
    for dom in doms:
        if not (np.all(np.isfinite(dom.lower)) and np.all(np.isfinite(dom.upper))):
            raise ValueError("compute_bounds: the input set must be bounded (finite box)")
        if dom.lower.shape != in_shape:
            raise ValueError("compute_bounds: all boxes of a union must have the same shape")
    graph = build_graph(model, in_shape)
    out_shape = graph.nodes[graph.output].shape
    spec = _spec(C, out_shape)
    lo = hi = None
    layer_bounds: list[list[Interval]] = []
    for dom in doms:
        dl, dh, nodes = _analyse_domain(graph, dom, method, spec, iterations, lr)
        lo = dl if lo is None else np.minimum(lo, dl)
        hi = dh if hi is None else np.maximum(hi, dh)
        layer_bounds.append(nodes)
    layers = []
    for k, node in enumerate(graph.nodes[1:], start=1):
        nl = np.min([b[k][0] for b in layer_bounds], axis=0)
        nu = np.max([b[k][1] for b in layer_bounds], axis=0)
        layers.append((node.name, nl.reshape(node.shape), nu.reshape(node.shape)))
    return BoundResult(np.asarray(lo), np.asarray(hi), method, layers, time.perf_counter() - t0)


def gradient(model: Layer, x: Any, C: Any) -> tuple[np.ndarray, np.ndarray]:
    """Implementation of :func:`axiom.verify.bounds.input_gradient`.

    Example:
        >>> from axiom import Dense
        >>> v, g = gradient(Dense(2, 1), np.zeros((3, 2)), np.ones((1, 1)))
        >>> v.shape, g.shape
        ((3, 1), (3, 1, 2))
    """
    x = np.asarray(getattr(x, "data", x), dtype=np.float64)
    if x.ndim < 2:
        raise ValueError(f"input_gradient: x must be (batch, *input_shape), got shape {x.shape}")
    graph = build_graph(model, x.shape[1:])
    out_shape = graph.nodes[graph.output].shape
    C = _spec(C, out_shape)
    assert C is not None
    vals: list[np.ndarray] = [x]
    with np.errstate(over="ignore", invalid="ignore", divide="ignore", under="ignore"):
        for node in graph.nodes[1:]:
            vals.append(node.op.forward([vals[i] for i in node.inputs]))  # type: ignore[union-attr]
        y = vals[graph.output].reshape(x.shape[0], -1)
        values = y @ C.T
        B, m = x.shape[0], C.shape[0]
        G: dict[int, np.ndarray] = {graph.output: np.broadcast_to(C.reshape(1, m, *out_shape), (B, m, *out_shape))}
        for node in reversed(graph.nodes[1:]):
            g = G.pop(node.id, None)
            if g is None:
                continue
            gins = node.op.vjp([vals[i] for i in node.inputs], vals[node.id], g)  # type: ignore[union-attr]
            for i, gi in zip(node.inputs, gins):
                G[i] = G[i] + gi if i in G else gi
    grads = G.get(0, np.zeros((B, m, *x.shape[1:])))
    return values, np.ascontiguousarray(grads)
