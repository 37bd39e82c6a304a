"""Split constraints carried into the bounds by a small LP over the input (internal).

A ReLU split ``z_j >= 0`` or ``z_j <= 0`` restricts a domain to a polytope of the input box:
CROWN gives a linear bound ``g(x) <= z_j`` (or ``-z_j``) valid on the domain, so ``g(x) <= 0``
there. The spec rows' linear lower bounds ``f_i(x)`` then only need to be refuted on
``{x in box : g_k(x) <= 0}``: the LP ``min t s.t. t >= f_i(x), g_k(x) <= 0`` (HiGHS through
SciPy). The LP solver's floats are never trusted: its duals ``lam`` (rows) and ``mu``
(constraints) give, by weak duality, the bound ``min_{x in box} sum lam_i f_i + sum mu_k g_k``,
evaluated with outward rounding (:func:`lagrangian_lower`). Any nonnegative multipliers give a
sound bound, so a wrong or inaccurate LP answer can only cost tightness. When every neuron is
fixed the relaxation is exact and the LP is the exact minimum: this is what lets ReLU splitting
finish (beta-CROWN reaches the same bound by gradient ascent on the multipliers).

Example:
    >>> import numpy as np
    >>> A, c = np.array([[[1.0]]]), np.array([[0.5]])  # f(x) = x + 0.5 on x in [-1, 1]
    >>> float(lagrangian_lower(A, c, np.ones((1, 1)), np.array([[-1.0]]), np.array([[1.0]]))[0]) <= -0.5
    True
"""

from __future__ import annotations

import time

import numpy as np

from axiom.verify.bab._crown import backsub, relax
from axiom.verify.bab._net import ReluChain
from axiom.verify.bounds._fp import TINY, down, gamma, up


def lagrangian_lower(A: np.ndarray, c: np.ndarray, w: np.ndarray, lo: np.ndarray, hi: np.ndarray) -> np.ndarray:
    """Sound lower bound of ``min_{x in [lo, hi]} sum_r w_r (A_r x + c_r)`` per domain, ``w >= 0``.

    ``A`` ``(B, R, n)``, ``c`` and ``w`` ``(B, R)``, boxes ``(B, n)``. NaN gives ``-inf``.

    Example:
        >>> A = np.array([[[1.0], [-1.0]]]); c = np.array([[0.0, 0.0]])
        >>> float(lagrangian_lower(A, c, np.array([[0.5, 0.5]]), np.zeros((1, 1)), np.ones((1, 1)))[0]) <= 0.0
        True
    """
    w = np.maximum(w, 0.0)
    mag = np.maximum(np.abs(lo), np.abs(hi))
    with np.errstate(invalid="ignore", over="ignore"):
        a = np.einsum("br,brn->bn", w, A)
        val = np.sum(np.minimum(a * lo, a * hi), axis=1) + np.sum(w * c, axis=1)
        size = np.einsum("br,br->b", w, np.einsum("brn,bn->br", np.abs(A), mag) + np.abs(c))
        err = 4 * gamma(A.shape[1] + A.shape[2] + 4) * size + TINY
        out = down(val - up(err))
    return np.where(np.isnan(out), -np.inf, out)


def _solve(f_A: np.ndarray, f_c: np.ndarray, g_A: np.ndarray, g_c: np.ndarray, lo: np.ndarray, hi: np.ndarray):  # type: ignore[no-untyped-def]
    """One LP ``min t : t >= f_A x + f_c, g_A x + g_c <= 0, lo <= x <= hi``: (weights on f, weights on g, x) or None."""
    from scipy.optimize import linprog

    r, n = f_A.shape
    obj = np.zeros(n + 1)
    obj[-1] = 1.0
    A_ub = np.concatenate([np.hstack([f_A, -np.ones((r, 1))]), np.hstack([g_A, np.zeros((len(g_A), 1))])])
    b_ub = np.concatenate([-f_c, -g_c])
    bounds = list(zip(lo.tolist(), hi.tolist())) + [(None, None)]
    try:
        res = linprog(obj, A_ub=A_ub, b_ub=b_ub, bounds=bounds, method="highs")
    except ValueError:  # non-finite data: no claim
        return None
    if res.status == 0:
        y = -np.asarray(res.ineqlin.marginals)
        return y[:r], y[r:], np.asarray(res.x[:n])
    if res.status == 2 and len(g_A):  # infeasible polytope: multipliers from min_x max_k g_k(x)
        out = _solve(g_A, g_c, np.zeros((0, n)), np.zeros(0), lo, hi)
        if out is not None:
            return np.zeros(r), out[0], out[2]
    return None


def lp_margins(
    f_A: np.ndarray,
    f_c: np.ndarray,
    owner: np.ndarray,
    n_clauses: int,
    g_A: list[np.ndarray],
    g_c: list[np.ndarray],
    lo: np.ndarray,
    hi: np.ndarray,
    deadline: float | None = None,
) -> tuple[np.ndarray, np.ndarray, np.ndarray, list[np.ndarray]]:
    """Per domain and clause, a sound lower bound of ``min max_{i in clause} f_i`` over the split polytope.

    ``f_A`` ``(B, m, n)``, ``f_c`` ``(B, m)``: the spec rows' linear lower bounds minus their
    thresholds; ``owner`` the clause of each row; ``g_A[b]`` ``(K_b, n)``, ``g_c[b]``: domain b's
    split constraints ``g(x) <= 0``. Returns ``(margins (B, n_clauses), points (B, n_clauses, n),
    row_weights (B, m), mu)``: the LP's minimisers (attack candidates; NaN where no LP answer), and
    the multipliers behind each margin (``mu[b]`` ``(n_clauses, K_b)``). ``+inf``: the polytope is empty.
    Past ``deadline`` (``time.perf_counter()``) the remaining domains keep ``-inf``.

    Example:
        >>> f_A = np.array([[[1.0]]]); f_c = np.array([[0.0]])  # f(x) = x on [-1, 1] ...
        >>> g_A, g_c = [np.array([[-1.0]])], [np.array([0.5])]  # ... restricted to x >= 0.5
        >>> m, *_ = lp_margins(f_A, f_c, np.zeros(1, int), 1, g_A, g_c, np.array([[-1.0]]), np.array([[1.0]]))
        >>> bool(0.49 < m[0, 0] <= 0.5)
        True
    """
    B, m, n = f_A.shape
    margins = np.full((B, n_clauses), -np.inf)
    points = np.full((B, n_clauses, n), np.nan)
    row_w = np.zeros((B, m))
    mus = [np.zeros((n_clauses, len(g))) for g in g_A]
    for b in range(B):
        if deadline is not None and time.perf_counter() > deadline:
            break
        for k in range(n_clauses):
            rows = np.flatnonzero(owner == k)
            sol = _solve(f_A[b, rows], f_c[b, rows], g_A[b], g_c[b], lo[b], hi[b])
            if sol is None:
                continue
            lam, mu, x = sol
            A = np.concatenate([f_A[b, rows], g_A[b]])[None]
            c = np.concatenate([f_c[b, rows], g_c[b]])[None]
            w = np.concatenate([lam, mu])[None]
            bound = float(lagrangian_lower(A, c, w, lo[b : b + 1], hi[b : b + 1])[0])
            if not np.any(lam > 0):  # multipliers only on the constraints: a certificate that the polytope is empty
                bound = np.inf if bound > 0 else -np.inf
            margins[b, k] = bound
            points[b, k] = x
            row_w[b, rows] = np.maximum(lam, 0.0)
            mus[b][k] = np.maximum(mu, 0.0)
    return margins, points, row_w, mus


def split_constraints(
    net: ReluChain, lo: np.ndarray, hi: np.ndarray, splits: list[np.ndarray], pre: list[tuple[np.ndarray, np.ndarray]]
) -> tuple[list[np.ndarray], list[np.ndarray]]:
    """Per domain, the linear constraints ``g(x) <= 0`` its ReLU splits imply on the input.

    ``pre`` are the domains' (split-clamped) pre-activation intervals from :func:`spec_bounds`;
    the constraint of a split neuron is CROWN's linear lower bound of ``z`` (split ``<= 0``) or
    of ``-z`` (split ``>= 0``), sound on the domain.

    Example:
        >>> from axiom.verify.bab._net import ReluChain
        >>> net = ReluChain([np.eye(1), np.eye(1)], [np.zeros(1), np.zeros(1)], (1,), np.arange(1))
        >>> g_A, g_c = split_constraints(net, np.array([[-1.0]]), np.array([[1.0]]), [np.array([[1]], np.int8)],
        ...                              [(np.array([[0.0]]), np.array([[1.0]]))])
        >>> g_A[0].tolist(), bool(-1e-12 < g_c[0][0] <= 0.0)   # z = x >= 0  gives  -x <= 0
        ([[-1.0]], True)
    """
    B, n = lo.shape
    relaxations = [relax(L, Ub) for L, Ub in pre]
    rows_A: list[list[np.ndarray]] = [[] for _ in range(B)]
    rows_c: list[list[np.ndarray]] = [[] for _ in range(B)]
    for k, sp in enumerate(splits):
        dom, idx = np.nonzero(sp)
        if dom.size == 0:
            continue
        A = np.zeros((dom.size, net.W[k].shape[0]))
        A[np.arange(dom.size), idx] = -np.sign(sp[dom, idx]).astype(np.float64)  # states may carry split depths
        _, A_in, const, _ = backsub(net, k, A, dom, pre, lo, hi, relaxations)
        for b in np.unique(dom):
            sel = dom == b
            rows_A[b].append(A_in[sel])
            rows_c[b].append(const[sel])
    g_A = [np.concatenate(r) if r else np.zeros((0, n)) for r in rows_A]
    g_c = [np.concatenate(r) if r else np.zeros(0) for r in rows_c]
    return g_A, g_c
