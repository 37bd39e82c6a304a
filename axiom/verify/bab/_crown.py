"""Batched CROWN over many input boxes at once, with ReLU split constraints (internal).

Every domain of a batch is an input box ``[lo, hi]`` plus, for ReLU branching, a split state
per neuron (+1: ``z >= 0``, -1: ``z <= 0``, 0: free). Split constraints are carried into the
bounds by clamping the split neuron's pre-activation interval to ``[max(l, 0), u]`` or
``[l, min(u, 0)]``: that interval holds on the sub-domain, so the ReLU relaxation built from it
(exact for a stable neuron) is sound there. A domain whose clamped interval is empty is
infeasible, hence verified.

Soundness under float64 rounding follows ``axiom.verify.bounds``: each product ``A W`` adds
``2 gamma(n+2) (|A| |W|) mag(h)`` to the error, each element-wise relaxation step ``2U`` of the
new coefficients times the neuron magnitudes, the upper ReLU line gets an outward intercept
margin, and the result ``d - err`` is rounded down.

Example:
    >>> import numpy as np
    >>> from axiom.verify.bab._net import ReluChain
    >>> from axiom.verify.bab._crown import spec_bounds
    >>> W = [np.array([[1.0], [-1.0]]), np.array([[1.0, 1.0]])]
    >>> net = ReluChain(W, [np.zeros(2), np.zeros(1)], (1,), np.arange(1))  # |x| = relu(x) + relu(-x)
    >>> res = spec_bounds(net, np.array([[-1.0]]), np.array([[1.0]]), np.array([[1.0]]))
    >>> bool(-1.0 <= res.lower[0, 0] <= 0.0)   # the relaxation is loose but sound
    True
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from axiom.verify.bab._net import ReluChain
from axiom.verify.bounds._fp import TINY, U, center_radius, down, gamma, up

#: Most float64 elements of one coefficient tensor ``A`` (batch x rows x width); bigger batches are chunked.
CHUNK_ELEMENTS = 1 << 22


def relax(L: np.ndarray, Ub: np.ndarray, alpha: np.ndarray | None = None) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Lower slope, upper slope and (outward) upper intercept of ``relu`` on ``[L, Ub]``.

    The lower line ``alpha z`` is valid for any ``alpha`` in [0, 1]; the default is the adaptive
    choice (1 where ``u > -l``). The upper line is the chord ``s (z - l)`` with its intercept
    raised so that it stays above ``relu`` at both ends despite the rounding of ``s``.

    Example:
        >>> sl, su, tu = relax(np.array([-1.0]), np.array([3.0]))
        >>> sl.tolist(), su.tolist(), bool(tu[0] >= 0.75)
        ([1.0], [0.75], True)
    """
    act = L >= 0
    unst = (L < 0) & (Ub > 0)
    with np.errstate(invalid="ignore", divide="ignore"):
        s = np.where(unst, Ub / np.where(unst, Ub - L, 1.0), 0.0)
        t = np.where(unst, np.maximum(-s * L, Ub - s * Ub), 0.0)
    mag = np.maximum(np.abs(L), np.abs(Ub))
    t = np.where(unst, up(t + 8 * U * (s * mag + mag + np.abs(t)) + TINY), 0.0)
    su = np.where(act, 1.0, s)
    if alpha is None:
        alpha = (Ub > -L).astype(np.float64)
    sl = np.where(act, 1.0, np.where(unst, np.clip(alpha, 0.0, 1.0), 0.0))
    return sl, su, t


@dataclass
class BatchBounds:
    """Bounds of a batch of domains.

    ``lower`` ``(B, m)``: sound lower bounds of the spec rows; ``A_in`` ``(B, m, n_in)`` and
    ``const`` ``(B, m)``: the linear lower bound ``A_in x + const`` in the input (its minimum over
    the box is ``lower`` up to rounding); ``coeffs[k]`` ``(B, m, n_{k+1})``: the coefficients on the
    output of ReLU layer ``k`` (for branching scores); ``pre``: pre-activation intervals per ReLU
    layer; ``empty`` ``(B,)``: domains whose split constraints are infeasible.
    """

    lower: np.ndarray
    A_in: np.ndarray
    const: np.ndarray
    coeffs: list[np.ndarray]
    pre: list[tuple[np.ndarray, np.ndarray]]
    empty: np.ndarray


def _mag_h(pre: list[tuple[np.ndarray, np.ndarray]], j: int, lo: np.ndarray, hi: np.ndarray) -> np.ndarray:
    """Bound on ``|h_j|`` per domain (``h_0`` is the input)."""
    if j == 0:
        return np.maximum(np.abs(lo), np.abs(hi))
    return np.maximum(pre[j - 1][1], 0.0)


def backsub(
    net: ReluChain,
    t: int,
    A: np.ndarray,
    owner: np.ndarray,
    pre: list[tuple[np.ndarray, np.ndarray]],
    lo: np.ndarray,
    hi: np.ndarray,
    relaxations: list[tuple[np.ndarray, np.ndarray, np.ndarray]],
    keep: bool = False,
) -> tuple[np.ndarray, np.ndarray, np.ndarray, list[np.ndarray]]:
    """Sound lower bounds of ``A[i] . z_t`` on domain ``owner[i]``: ``(lower (R,), A_in, const, coeffs)``.

    Rows are flat (one per (domain, spec row) pair), so a batch with few unstable neurons per
    domain costs few rows; every step is one GEMM ``(R, n) @ W`` plus gathers of the domains'
    relaxations. ``pre``/``relaxations`` cover the ReLU layers below ``t``.
    """
    R = A.shape[0]
    d = np.zeros(R)
    err = np.zeros(R)
    coeffs: list[np.ndarray] = []
    z_mag = None  # magnitudes of the pre-activation the current A was relaxed over (2U term)
    with np.errstate(invalid="ignore", over="ignore"):
        for j in range(t, -1, -1):
            W, aW, b = net.W[j], net.absW[j], net.b[j]
            n_out, n_in = W.shape
            g = 2 * gamma(max(n_in, n_out) + 2)  # A @ W and A @ b contract over n_out, the relu sum over n_in
            # one pass over |A|: rounding of A b, of A W (against |h_j|) and of the previous relaxation step
            v = g * (np.abs(b) + _mag_h(pre, j, lo, hi) @ aW.T)
            if z_mag is not None:
                v = v + 2 * U * z_mag
            err = err + np.einsum("rn,rn->r", np.abs(A), v[owner])
            d = d + A @ b
            err = err + 2 * U * np.abs(d)
            A = A @ W
            if j == 0:
                break
            if keep:
                coeffs.append(A)
            sl, su, tu = relaxations[j - 1]
            e = np.einsum("rn,rn->r", np.minimum(A, 0.0), tu[owner])  # <= 0: the upper lines' intercepts
            d = d + e
            err = err + 2 * g * np.abs(e) + 2 * U * np.abs(d)
            slope = su[owner]
            np.copyto(slope, sl[owner], where=A >= 0)
            A = A * slope
            L, Ub = pre[j - 1]
            z_mag = np.maximum(np.abs(L), np.abs(Ub))
        g = 2 * gamma(A.shape[-1] + 2)
        xl, xh = lo[owner], hi[owner]
        val = np.einsum("rn,rn->r", np.maximum(A, 0.0), xl) + np.einsum("rn,rn->r", np.minimum(A, 0.0), xh)
        err = err + g * np.einsum("rn,rn->r", np.abs(A), np.maximum(np.abs(xl), np.abs(xh)))
        total = d + val
        err = err + 2 * U * np.abs(total)
        res = down(total - up(err * (1 + 1e-6)))
    coeffs.reverse()
    return np.where(np.isnan(res), -np.inf, res), A, d - err, coeffs


def ibp_layer(net: ReluChain, k: int, pre: list[tuple[np.ndarray, np.ndarray]], lo: np.ndarray, hi: np.ndarray):  # type: ignore[no-untyped-def]
    """Sound interval of ``z_k`` per domain from the interval of its input (outward rounded).

    Example:
        >>> from axiom.verify.bab._net import ReluChain
        >>> net = ReluChain([np.array([[1.0, -1.0]])], [np.zeros(1)], (2,), np.arange(2))
        >>> L, Ub = ibp_layer(net, 0, [], np.zeros((1, 2)), np.ones((1, 2)))
        >>> bool(L[0, 0] <= -1 and Ub[0, 0] >= 1)
        True
    """
    if k == 0:
        l, u = lo, hi
    else:
        l, u = np.maximum(pre[k - 1][0], 0.0), np.maximum(pre[k - 1][1], 0.0)
    W, aW, b = net.W[k], net.absW[k], net.b[k]
    c, r = center_radius(l, u)
    zc = c @ W.T + b
    zr = r @ aW.T
    err = 2 * gamma(W.shape[1] + 3) * ((np.abs(c) + r) @ aW.T + np.abs(b))
    lo_v, hi_v = zc - zr, zc + zr
    L = down(lo_v - up((err + 2 * U * np.abs(lo_v)) * (1 + 1e-6)))
    Ub = up(hi_v + up((err + 2 * U * np.abs(hi_v)) * (1 + 1e-6)))
    return L, Ub


def spec_bounds(
    net: ReluChain,
    lo: np.ndarray,
    hi: np.ndarray,
    C: np.ndarray,
    splits: list[np.ndarray] | None = None,
    parent: list[tuple[np.ndarray, np.ndarray]] | None = None,
    reuse_below: int = 0,
    crown_layers: bool = True,
) -> BatchBounds:
    """CROWN bounds of ``C y`` for a batch of input boxes ``lo, hi`` ``(B, n_in)``.

    ``splits[k]`` ``(B, n_{k+1})`` are ReLU split states (their sign: +1 ``z >= 0``, -1
    ``z <= 0``); ``parent`` intervals (valid on a superset of each domain) are intersected with
    the new ones, and layers below ``reuse_below`` are taken from ``parent`` without
    recomputation (then clamped by the splits).
    ``crown_layers=False`` bounds the intermediate layers by intervals only (IBP, intersected
    with ``parent``): cheaper per domain, looser.

    Example:
        >>> from axiom.verify.bab._net import ReluChain
        >>> net = ReluChain([np.eye(2), np.ones((1, 2))], [np.zeros(2), np.zeros(1)], (2,), np.arange(2))
        >>> res = spec_bounds(net, np.zeros((1, 2)), np.ones((1, 2)), np.eye(1))
        >>> bool(-1e-9 < res.lower[0, 0] <= 0.0)
        True
    """
    B = lo.shape[0]
    C = np.asarray(C, np.float64)
    m = C.shape[0]
    width = max(max(w.shape) for w in net.W)
    rows = max(2 * max(w.shape[0] for w in net.W), m)
    step = max(1, CHUNK_ELEMENTS // (rows * width))
    if B > step:
        parts = [
            spec_bounds(
                net,
                lo[s : s + step],
                hi[s : s + step],
                C,
                None if splits is None else [sp[s : s + step] for sp in splits],
                None if parent is None else [(pl[s : s + step], pu[s : s + step]) for pl, pu in parent],
                reuse_below,
                crown_layers,
            )
            for s in range(0, B, step)
        ]
        return BatchBounds(
            np.concatenate([p.lower for p in parts]),
            np.concatenate([p.A_in for p in parts]),
            np.concatenate([p.const for p in parts]),
            [np.concatenate([p.coeffs[k] for p in parts]) for k in range(len(parts[0].coeffs))],
            [
                (np.concatenate([p.pre[k][0] for p in parts]), np.concatenate([p.pre[k][1] for p in parts]))
                for k in range(net.depth)
            ],
            np.concatenate([p.empty for p in parts]),
        )
    pre: list[tuple[np.ndarray, np.ndarray]] = []
    relaxations: list[tuple[np.ndarray, np.ndarray, np.ndarray]] = []
    empty = np.zeros(B, bool)
    for k in range(net.depth):
        if parent is not None and k < reuse_below:
            L, Ub = parent[k][0].copy(), parent[k][1].copy()
        else:
            L, Ub = ibp_layer(net, k, pre, lo, hi)
            if parent is not None:
                L, Ub = np.maximum(L, parent[k][0]), np.minimum(Ub, parent[k][1])
            if splits is not None:
                L = np.where(splits[k] > 0, np.maximum(L, 0.0), L)
                Ub = np.where(splits[k] < 0, np.minimum(Ub, 0.0), Ub)
            if k > 0 and crown_layers:  # CROWN rows only for neurons the interval leaves unstable (layer 0: exact)
                dom, idx = np.nonzero((L < 0) & (Ub > 0))
                if dom.size:
                    n = net.W[k].shape[0]
                    A = np.zeros((2 * dom.size, n))
                    A[np.arange(dom.size), idx] = 1.0
                    A[dom.size + np.arange(dom.size), idx] = -1.0
                    res = backsub(net, k, A, np.concatenate([dom, dom]), pre, lo, hi, relaxations)[0]
                    L[dom, idx] = np.maximum(L[dom, idx], res[: dom.size])
                    Ub[dom, idx] = np.minimum(Ub[dom, idx], -res[dom.size :])
        if splits is not None:
            L = np.where(splits[k] > 0, np.maximum(L, 0.0), L)
            Ub = np.where(splits[k] < 0, np.minimum(Ub, 0.0), Ub)
        empty |= np.any(L > Ub, axis=1)
        Ub = np.maximum(Ub, L)  # keep empty domains well-formed; they are verified anyway
        pre.append((L, Ub))
        relaxations.append(relax(L, Ub))
    owner = np.repeat(np.arange(B), m)
    low, A_in, const, coeffs = backsub(net, net.depth, np.tile(C, (B, 1)), owner, pre, lo, hi, relaxations, keep=True)
    n_in = A_in.shape[1]
    return BatchBounds(
        low.reshape(B, m),
        A_in.reshape(B, m, n_in),
        const.reshape(B, m),
        [c.reshape(B, m, -1) for c in coeffs],
        pre,
        empty,
    )
