"""Complete verification by branch-and-bound (BaB) over input splits or ReLU splits.

:func:`branch_and_bound` decides whether an output condition's unsafe region (clauses of linear
atoms, see :mod:`axiom.verify.properties`) is reachable from an input box, for feed-forward
ReLU networks (Dense + ReLU chains, with a leading Flatten/Reshape). It returns ``proven`` (every
sub-domain's sound CROWN bound refutes every clause), ``falsified`` (a counterexample replayed
through the model in its dtype and in float64) or ``unknown`` (budget exhausted, with the
fraction of the input volume verified so far).

Rule for the branching kind: input splitting when the input has at most
:data:`INPUT_SPLIT_MAX_DIM` dimensions (bounds tighten fast when a few input widths shrink:
ACAS Xu, 5 inputs), ReLU splitting above (MNIST, 784 inputs: halving one input width changes
little). Bounds of many domains are computed at once (:mod:`axiom.verify.bab._crown`); split
constraints enter the bounds by clamping the split neuron's pre-activation interval. The
search is deterministic given ``seed``.

Example:
    >>> import numpy as np
    >>> from axiom import Dense, Sequential, manual_seed, relu
    >>> from axiom.verify import Box, OutputBounds
    >>> from axiom.verify.bab import branch_and_bound
    >>> manual_seed(0); m = Sequential(Dense(2, 8, relu), Dense(8, 1))
    >>> cond = OutputBounds(upper=100.0).condition
    >>> branch_and_bound(m, Box(-np.ones(2), np.ones(2)), cond, timeout=5).status
    'proven'
"""

from __future__ import annotations

import functools
import time
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from axiom.verify.bab._net import ReluChain, relu_chain
from axiom.verify.bab._search import SearchOutcome, input_split, relu_split

__all__ = ["INPUT_SPLIT_MAX_DIM", "BabResult", "applicable", "branch_and_bound"]

#: Inputs with at most this many dimensions are split on the input; larger ones on ReLUs.
INPUT_SPLIT_MAX_DIM = 16


@dataclass
class BabResult:
    """Outcome of :func:`branch_and_bound`.

    ``status`` is ``proven``, ``falsified`` or ``unknown``; ``counterexample`` an
    :class:`axiom.verify.attack.Counterexample` when falsified; ``mode`` ``"input"`` or ``"relu"``;
    ``domains`` bounded, ``verified_fraction`` of the input volume (input splitting),
    ``timed_out`` whether the budget ran out.

    ``leaves`` (with ``record=True`` and ``proven``): the proof, one dict per verified
    sub-domain whose union covers the input set: ``lower``/``upper`` the sub-box (flat, model
    input order), ``splits`` ``[(relu_layer, neuron, +1|-1), ...]`` (ReLU phases fixed there,
    ``[]`` for input splitting), ``split_order`` (positions in ``splits``, in the order the
    search made them: the path from the root of the box's split tree), ``weights`` (one per
    spec row: per clause, nonnegative multipliers of the rows' linear lower bounds whose
    combination is positive on the sub-domain), ``mu`` ``(n_clauses, len(splits))``
    (multipliers of the split constraints, in the order of ``splits``) and ``empty`` (the split
    constraints are infeasible there).
    A checker re-derives each leaf's linear bounds and re-evaluates these combinations.

    Example:
        >>> BabResult("unknown", "input", verified_fraction=0.5).verified_fraction
        0.5
    """

    status: str
    mode: str
    counterexample: Any = None
    domains: int = 0
    iterations: int = 0
    verified_fraction: float = 0.0
    max_queue: int = 0
    timed_out: bool = False
    time_s: float = 0.0
    info: dict = field(default_factory=dict)
    leaves: list[dict] | None = None


def applicable(model: Any, input_set: Any, in_shape: tuple[int, ...]) -> ReluChain | None:
    """The model as a ReLU chain when BaB can handle it and the input set (boxes, L-inf balls), else None.

    Example:
        >>> from axiom import Dense, Sequential, relu
        >>> from axiom.verify import Box, L2Ball
        >>> m = Sequential(Dense(2, 3, relu), Dense(3, 1))
        >>> applicable(m, Box(0, 1, shape=(2,)), (2,)) is not None, applicable(m, L2Ball([0.0, 0.0], 1.0), (2,))
        (True, None)
    """
    from axiom.verify.sets import L2Ball

    pieces = input_set.boxes() if type(input_set).__name__ == "BoxUnion" else [input_set]
    if any(isinstance(p, L2Ball) for p in pieces):
        return None
    return relu_chain(model, tuple(in_shape))


def _model_leaf(net: ReluChain, leaf: dict) -> dict:
    """A search leaf with its box in the model's flat input order and plain lists (JSON-ready)."""
    box = net.unflat(np.stack([leaf["lower"], leaf["upper"]]))
    return {
        "lower": box[0].reshape(-1).tolist(),
        "upper": box[1].reshape(-1).tolist(),
        "splits": [list(t) for t in leaf.get("splits", [])],
        "split_order": list(leaf.get("split_order", [])),
        "weights": np.asarray(leaf["weights"]).tolist(),
        "mu": np.asarray(leaf["mu"]).tolist() if "mu" in leaf else [],
        "empty": bool(leaf["empty"]),
    }


def _piece_box(piece: Any) -> tuple[np.ndarray, np.ndarray]:
    from axiom.verify.bounds._engine import domains

    dom = domains(piece)[0]
    return np.asarray(dom.lower, np.float64), np.asarray(dom.upper, np.float64)


#: Input splitting with ``branching="auto"``: the cheap "smart" search gets this share of the time
#: left (at most :data:`PHASE1_MAX_S` seconds), then look-ahead branching with ReLU splitting of deep
#: domains takes over from scratch.
PHASE1_SHARE = 0.15
PHASE1_MAX_S = 8.0


def _input_portfolio(net, lo, hi, pairs, confirm, seed, deadline, max_domains, branching, record=False):  # type: ignore[no-untyped-def]
    """Run input-split BaB with one branching rule, or the two-phase "auto" portfolio.

    "smart" alone (no ReLU splitting) is fastest on most instances; look-ahead branching with
    ReLU-split deep domains solves the ones where the output is flat over regions that keep
    many neurons unstable. Both phases are deterministic, so the portfolio is too.
    """
    run = functools.partial(input_split, net, lo, hi, pairs, confirm, seed, record=record)
    if branching != "auto":
        return run(
            deadline=deadline,
            max_domains=max_domains,
            branching=branching,
            relu_budget=0 if branching == "smart" else 400,
        )
    now = time.perf_counter()
    first = None if deadline is None else now + min(PHASE1_SHARE * (deadline - now), PHASE1_MAX_S)
    cap = None if max_domains is None else max(1, max_domains // 2)
    out = run(deadline=first, max_domains=cap, branching="smart", relu_budget=0)
    if out.status != "unknown" or (deadline is not None and time.perf_counter() >= deadline):
        return out
    rest = None if max_domains is None else max(1, max_domains - out.domains)
    second = run(deadline=deadline, max_domains=rest, branching="lookahead", relu_budget=400)
    second.domains += out.domains
    second.iterations += out.iterations
    second.max_queue = max(second.max_queue, out.max_queue)
    return second


def branch_and_bound(
    model: Any,
    input_set: Any,
    condition: Any,
    *,
    timeout: float | None = 30.0,
    seed: int = 0,
    mode: str = "auto",
    replayer: Any = None,
    branching: str = "auto",
    max_domains: int | None = None,
    record: bool = False,
) -> BabResult:
    """Prove or falsify ``condition`` on ``input_set`` (bound to the model input shape) by BaB.

    Args:
        model: an axiom model made of Dense + ReLU layers (plus a leading Flatten/Reshape).
        input_set: ``Box``, ``LinfBall`` or a ``BoxUnion`` of them, over one example.
        condition: an output condition with linear unsafe clauses (``ArgmaxIs``,
            ``OutputBounds``, ``LinearConstraint``, VNN-LIB unsafe regions).
        timeout: seconds (None: no limit; then ``max_domains`` should bound the work).
        seed: seed of the random starts of the attacks (the search is deterministic given it).
        mode: ``"auto"`` (input split for at most :data:`INPUT_SPLIT_MAX_DIM` inputs, else ReLU
            split), ``"input"`` or ``"relu"``.
        replayer: an :class:`axiom.verify.concrete.Replayer` of the model (built if None).
        branching: input-split dimension choice, ``"smart"`` or ``"widest"``.
        max_domains: stop (``unknown``) after bounding this many domains.
        record: keep the proof leaves (:attr:`BabResult.leaves`) for certificates.

    Raises:
        ValueError: the model is not a ReLU chain, the input set is an L2 ball, or the
            condition has no linear unsafe region.

    Example:
        >>> import numpy as np
        >>> from axiom import Dense, Sequential
        >>> from axiom.verify import Box, OutputBounds
        >>> m = Sequential(Dense(1, 1)); m[0].weight.data[:] = 1.0; m[0].bias.data[:] = 0.0
        >>> r = branch_and_bound(m, Box([-1.0], [1.0]), OutputBounds(upper=0.5).condition, timeout=5)
        >>> r.status, bool(r.counterexample.output[0] > 0.5)
        ('falsified', True)
    """
    from axiom.verify.attack import _deployed_points, _violating
    from axiom.verify.concrete import Replayer, model_input_shape, model_output_size

    t0 = time.perf_counter()
    if mode not in ("auto", "input", "relu"):
        raise ValueError(f"branch_and_bound: mode must be 'auto', 'input' or 'relu', got {mode!r}")
    if branching not in ("auto", "smart", "widest", "lookahead"):
        raise ValueError(
            f"branch_and_bound: branching must be 'auto', 'smart', 'widest' or 'lookahead', got {branching!r}"
        )
    model.eval()
    in_shape = model_input_shape(model)
    input_set = input_set.bind(in_shape)
    net = applicable(model, input_set, in_shape)
    if net is None:
        raise ValueError(
            "branch_and_bound: needs a Dense/ReLU chain over a box or L-inf ball input set "
            "(use verify(..., method='auto') for other models: it falls back to bounds and attacks)"
        )
    clauses = condition.unsafe_region(model_output_size(model))
    if clauses is None:
        raise ValueError(f"branch_and_bound: {type(condition).__name__} has no linear unsafe region")
    pairs = [(np.asarray(c.C, np.float64), np.asarray(c.d, np.float64)) for c in clauses]
    replayer = replayer or Replayer(model)
    chosen = mode if mode != "auto" else ("input" if net.n_in <= INPUT_SPLIT_MAX_DIM else "relu")
    deadline = None if timeout is None else t0 + float(timeout)
    pieces = input_set.boxes() if type(input_set).__name__ == "BoxUnion" else [input_set]
    total = SearchOutcome("proven")
    fractions = []
    leaves: list[dict] = []
    for piece in pieces:

        def confirm(x: np.ndarray, piece: Any = piece) -> Any:
            pts = _deployed_points(net.unflat(x), piece, replayer.dtype)
            return _violating(condition, replayer, pts, f"bab-{chosen}")

        lo, hi = _piece_box(piece)
        lo, hi = net.flat(lo[None])[0], net.flat(hi[None])[0]
        if chosen == "input":
            out = _input_portfolio(net, lo, hi, pairs, confirm, seed, deadline, max_domains, branching, record)
        else:
            out = relu_split(
                net, lo, hi, pairs, confirm, seed, deadline=deadline, max_domains=max_domains, record=record
            )
        if record and out.leaves is not None:
            leaves += [_model_leaf(net, leaf) for leaf in out.leaves]
        total.domains += out.domains
        total.iterations += out.iterations
        total.max_queue = max(total.max_queue, out.max_queue)
        fractions.append(out.verified_fraction)
        if out.status == "falsified":
            total.status, total.counterexample = "falsified", out.counterexample
            break
        if "clause_margins" in out.stats:
            prev = total.stats.get("clause_margins")
            cur = out.stats["clause_margins"]
            total.stats["clause_margins"] = cur if prev is None else np.minimum(prev, cur).tolist()
        if out.status != "proven":
            total.status = "unknown"
            total.stats.update({k: v for k, v in out.stats.items() if k != "clause_margins"})
            if deadline is not None and time.perf_counter() > deadline:
                break
    timed_out = total.status == "unknown" and deadline is not None and time.perf_counter() > deadline
    frac = 1.0 if total.status == "proven" else float(np.mean(fractions)) if fractions else 0.0
    return BabResult(
        total.status,
        chosen,
        total.counterexample,
        total.domains,
        total.iterations,
        frac,
        total.max_queue,
        timed_out,
        time.perf_counter() - t0,
        dict(total.stats),
        leaves if record and total.status == "proven" else None,
    )
