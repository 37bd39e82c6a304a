"""Counterexample search: random sampling, box corners, then PGD on the unsafe-region margin.

A candidate counts only after it is replayed through the concrete model, as deployed (its own
dtype) AND in float64, and the property's concrete check fails in both. The search never
claims anything else.

Example:
    >>> import numpy as np
    >>> from axiom import Dense, Sequential
    >>> from axiom.verify import Box, OutputBounds
    >>> from axiom.verify.attack import search_counterexample
    >>> m = Sequential(Dense(1, 1))
    >>> m[0].weight.data[:] = 1.0; m[0].bias.data[:] = 0.0
    >>> cond = OutputBounds(upper=0.5).condition
    >>> cex = search_counterexample(m, Box(-1, 1, shape=(1,)), cond, np.random.default_rng(0))
    >>> bool(cex is not None and cex.output[0] > 0.5)
    True
"""

from __future__ import annotations

import itertools
import time
from dataclasses import dataclass
from typing import Any

import numpy as np

from axiom.verify.concrete import Replayer
from axiom.verify.properties import OutputCondition
from axiom.verify.sets import InputSet, L2Ball


@dataclass
class Counterexample:
    """An input of the set whose concrete outputs violate the property in both precisions.

    Example:
        >>> import numpy as np
        >>> cex = Counterexample(np.zeros(2), np.ones(1, np.float32), np.ones(1), "pgd")
        >>> cex.found_by, cex.output.dtype
        ('pgd', dtype('float32'))
    """

    input: np.ndarray  # one example, float64 values exactly representable in the model dtype
    output: np.ndarray  # the deployed model's output (its dtype)
    output64: np.ndarray  # the float64 replay
    found_by: str


def _violating(cond: OutputCondition, replayer: Replayer, x: np.ndarray, found_by: str) -> Counterexample | None:
    """First row of ``x`` that violates ``cond`` in the deployed dtype and in float64."""
    if len(x) == 0:
        return None
    y32 = replayer.outputs_deployed(x)
    bad = np.flatnonzero(~cond.holds(y32))
    if bad.size == 0:
        return None
    x_bad = x[bad]
    _, y64 = replayer.outputs(x_bad)
    bad64 = np.flatnonzero(~cond.holds(y64))
    if bad64.size == 0:
        return None
    i = int(bad64[0])
    return Counterexample(x_bad[i], y32[bad[i]], y64[i], found_by)


def _deployed_points(x: np.ndarray, input_set: InputSet, dtype: np.dtype) -> np.ndarray:
    """Round points to the model dtype and keep only those still inside the set."""
    xr = np.asarray(x, np.float64).astype(dtype).astype(np.float64)
    keep = np.array([input_set.contains(p) for p in xr], bool)
    return xr[keep]


def _corners(input_set: InputSet, limit: int = 1024) -> np.ndarray:
    box = input_set.to_box()
    n = box.lower.size
    if isinstance(input_set, L2Ball) or 2**n > limit:
        return np.empty((0, *box.lower.shape))
    pts = [
        np.where(np.array(bits, bool), box.upper.ravel(), box.lower.ravel())
        for bits in itertools.product((0, 1), repeat=n)
    ]
    return np.asarray(pts).reshape(-1, *box.lower.shape)


def search_counterexample(
    model: Any,
    input_set: InputSet,
    condition: OutputCondition,
    rng: np.random.Generator,
    *,
    n_samples: int = 512,
    pgd_restarts: int = 4,
    pgd_steps: int = 40,
    rounds: int = 1,
    deadline: float | None = None,
    replayer: Replayer | None = None,
) -> Counterexample | None:
    """Look for an input of ``input_set`` (bound to the model input shape) violating ``condition``.

    Each round samples ``n_samples`` fresh points (plus the centre and, for low-dimensional
    boxes, the corners, in the first round), then runs PGD from ``pgd_restarts`` starts per
    unsafe clause. Rounds repeat until one finds a counterexample, ``rounds`` are done or
    ``deadline`` (a ``time.perf_counter()`` value) passes. Returns a replayed
    :class:`Counterexample` or None (which proves nothing).

    Example:
        >>> import numpy as np
        >>> from axiom import Dense, Sequential
        >>> from axiom.verify import Box, OutputBounds
        >>> m = Sequential(Dense(1, 1))
        >>> m[0].weight.data[:] = 1.0; m[0].bias.data[:] = 0.0
        >>> cond = OutputBounds(upper=0.9).condition
        >>> search_counterexample(m, Box(-1, 1, shape=(1,)), cond, np.random.default_rng(0)).found_by
        'sampling'
    """
    replayer = replayer or Replayer(model)
    dtype = replayer.dtype
    pieces = input_set.boxes() if type(input_set).__name__ == "BoxUnion" else [input_set]
    clauses = _clauses(model, condition)
    pools: list[np.ndarray] = []
    for r in range(max(1, rounds)):
        pools = []
        for piece in pieces:
            seeds = [piece.sample(n_samples, rng)]
            if r == 0:
                seeds = [piece.project(piece.to_box().center)[None], _corners(piece), *seeds]
            points = _deployed_points(np.concatenate(seeds), piece, dtype)
            pools.append(points)
            found = _violating(condition, replayer, points, "sampling")
            if found is not None:
                return found
            if _expired(deadline):
                return None
        if not clauses or not _differentiable(replayer.model64):
            continue
        for piece, pool in zip(pieces, pools):
            found = _pgd(
                piece, condition, clauses, rng, replayer, pgd_restarts, pgd_steps, deadline, first=r == 0, pool=pool
            )
            if found is not None:
                return found
            if _expired(deadline):
                return None
    return None


def _differentiable(model: Any) -> bool:
    """PGD needs input gradients, which exist for the layers the bounds module supports."""
    from axiom.verify.bounds import supported

    return not supported(model)


def _expired(deadline: float | None) -> bool:
    return deadline is not None and time.perf_counter() > deadline


def _clauses(model: Any, condition: OutputCondition) -> list[Any]:
    from axiom.verify.concrete import model_output_size

    try:
        return condition.unsafe_region(model_output_size(model)) or []
    except ValueError:
        return []


def _pgd(
    piece: InputSet,
    condition: OutputCondition,
    clauses: list[Any],
    rng: np.random.Generator,
    replayer: Replayer,
    restarts: int,
    steps: int,
    deadline: float | None,
    first: bool = True,
    max_clauses: int = 16,
    pool: np.ndarray | None = None,
) -> Counterexample | None:
    """Projected gradient descent on each clause's margin ``max_i (C_i y - d_i)`` (<= 0 is unsafe).

    All clauses are attacked in one batch (``restarts`` starts each, the most promising
    ``max_clauses`` by their margin at the centre), so each step is one forward and one
    backward pass. After the first round, starts are the points of ``pool`` (the round's
    samples) closest to each clause's unsafe region, so the search refines near-misses.
    """
    from axiom.verify.bounds import input_gradient

    C = np.concatenate([c.C for c in clauses])
    d = np.concatenate([c.d for c in clauses])
    owner = np.concatenate([np.full(len(c.d), k) for k, c in enumerate(clauses)])
    box = piece.to_box()
    l2 = isinstance(piece, L2Ball)
    scale = piece.eps if l2 else np.maximum(box.radius, 0.0)
    centre = piece.project(box.center)[None]
    vals, _ = input_gradient(replayer.model64, centre, C)
    gap0 = vals[0] - d
    margins = np.array([np.max(gap0[owner == k]) for k in range(len(clauses))])
    chosen = np.argsort(margins)[:max_clauses]
    if first or pool is None or len(pool) < restarts:
        starts = [piece.sample(restarts - 1 if first else restarts, rng)] * len(chosen)
    else:
        pool_vals, _ = input_gradient(replayer.model64, pool, C)
        pool_gap = pool_vals - d
        starts = []
        for k in chosen:
            margin = np.max(np.where(owner[None, :] == k, pool_gap, -np.inf), axis=1)
            best = np.argsort(margin)[: restarts // 2]
            starts.append(np.concatenate([pool[best], piece.sample(restarts - len(best), rng)]))
    x = np.concatenate([np.concatenate([centre, s]) if first else s for s in starts])
    clause_of = np.repeat(chosen, len(x) // len(chosen))
    rows_mask = owner[None, :] == clause_of[:, None]  # (batch, m): rows of each sample's clause
    for t in range(steps):
        if _expired(deadline):
            return None
        vals, grads = input_gradient(replayer.model64, x, C)
        gap = np.where(rows_mask, vals - d, -np.inf)
        worst = np.argmax(gap, axis=1)
        g = grads[np.arange(len(x)), worst]  # gradient of each sample's active (largest) atom
        step = (0.3 * (1 - t / steps) + 0.02) * scale
        if l2:
            norm = np.linalg.norm(g.reshape(len(g), -1), axis=1).reshape(-1, *([1] * (g.ndim - 1)))
            x = piece.project(x - step * g / np.maximum(norm, 1e-300))
        else:
            x = piece.project(x - step * np.sign(g))
        if t % 10 == 9 or t == steps - 1:
            found = _violating(condition, replayer, _deployed_points(x, piece, replayer.dtype), "pgd")
            if found is not None:
                return found
    return None
