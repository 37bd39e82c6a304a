"""Branch-and-bound loops: input splitting and ReLU splitting (internal; API in ``__init__``).

Both loops keep the open domains in arrays (no Python loop over domains), bound a batch of
them at once with :func:`spec_bounds`, drop the verified ones, try the candidate points the
bounds point at (the input vertex minimising each domain's worst linear lower bound, then
batched PGD from the most promising domains) and split the rest. The queue has a cap: past
it, the deepest domains are processed first (depth-first), so memory stays bounded.

Example:
    >>> import numpy as np
    >>> from axiom.verify.bab._net import ReluChain
    >>> from axiom.verify.bab._search import input_split
    >>> W = [np.array([[1.0], [-1.0]]), np.array([[1.0, 1.0]])]
    >>> net = ReluChain(W, [np.zeros(2), np.zeros(1)], (1,), np.arange(1))
    >>> out = input_split(net, np.array([-1.0]), np.array([1.0]), [(np.array([[1.0]]), np.array([-0.5]))], None, 0)
    >>> out.status
    'proven'
"""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass, field

import numpy as np

from axiom.verify.bab._crown import spec_bounds
from axiom.verify.bab._lp import lagrangian_lower, lp_margins, split_constraints
from axiom.verify.bab._net import ReluChain

#: ReLU splitting solves an input-space LP per open domain when the input has at most this many dimensions.
LP_MAX_INPUTS = 64

#: A confirmation callback: flat chain inputs ``(P, n_in)`` -> a replayed counterexample or None.
Confirm = Callable[[np.ndarray], object]


@dataclass
class SearchOutcome:
    """What a branch-and-bound run found (see :class:`axiom.verify.bab.BabResult`)."""

    status: str  # proven | falsified | unknown
    counterexample: object = None
    domains: int = 0
    iterations: int = 0
    verified_fraction: float = 0.0
    max_queue: int = 0
    stats: dict = field(default_factory=dict)
    leaves: list[dict] | None = None  # proof leaves when recording (see BabResult)


def _stack(clauses: list[tuple[np.ndarray, np.ndarray]]) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    C = np.concatenate([c for c, _ in clauses])
    d = np.concatenate([v for _, v in clauses])
    owner = np.concatenate([np.full(len(v), k) for k, (_, v) in enumerate(clauses)])
    return C, d, owner


def _clause_margins(gap: np.ndarray, owner: np.ndarray, n_clauses: int) -> np.ndarray:
    """``(B, n_clauses)``: max over a clause's rows of ``lower - d`` (> 0: the clause is empty there)."""
    out = np.full((gap.shape[0], n_clauses), -np.inf)
    for k in range(n_clauses):
        out[:, k] = np.max(gap[:, owner == k], axis=1)
    return out


def _take(bb, sel):  # type: ignore[no-untyped-def]
    return type(bb)(bb.lower[sel], bb.A_in[sel], bb.const[sel], [], [], bb.empty[sel])


def _combined_margins(
    bb, d: np.ndarray, owner: np.ndarray, nc: int, lo: np.ndarray, hi: np.ndarray, iters: int = 30
) -> tuple[np.ndarray, np.ndarray]:  # type: ignore[no-untyped-def]
    """``(B, nc)`` sound lower bounds of ``min_x max_i f_i(x)`` per clause, and the row weights ``(B, m)`` behind them.

    ``f_i`` are the rows' linear lower bounds.
    By LP duality ``min_x max_i f_i = max_{lam in simplex} min_x sum_i lam_i f_i`` over a box, so
    any ``lam >= 0`` gives a sound bound (:func:`lagrangian_lower`); batched mirror ascent finds a
    good one. A conjunction whose rows are each violated on part of a domain (but never all of
    them together) is refuted without splitting along the line where the violated row changes.
    """
    out = np.full((bb.A_in.shape[0], nc), -np.inf)
    weights = np.zeros((bb.A_in.shape[0], owner.size))
    for k in range(nc):
        rows = np.flatnonzero(owner == k)
        if rows.size < 2:
            continue
        A, c = bb.A_in[:, rows], bb.const[:, rows] - d[rows]
        lam = np.full(c.shape, 1.0 / rows.size)
        best = out[:, k]
        with np.errstate(invalid="ignore", over="ignore"):
            for t in range(iters):
                val = lagrangian_lower(A, c, lam, lo, hi)
                better = val > best
                best = np.where(better, val, best)
                weights[np.ix_(np.flatnonzero(better), rows)] = lam[better]
                x = np.where(np.einsum("br,brn->bn", lam, A) >= 0, lo, hi)  # the minimising vertex
                f = np.einsum("brn,bn->br", A, x) + c  # a supergradient in lam
                scale = np.maximum(np.max(np.abs(f), axis=1, keepdims=True), 1e-30)
                lam = lam * np.exp(np.clip(2.0 / np.sqrt(t + 1.0) * f / scale, -30, 30))
                lam /= np.sum(lam, axis=1, keepdims=True)
        out[:, k] = best
    return out, weights


def _row_weights(gap: np.ndarray, owner: np.ndarray, n_clauses: int) -> np.ndarray:
    """``(B, m)``: per clause, weight 1 on the row with the largest margin (the one that refutes it)."""
    w = np.zeros_like(gap)
    for k in range(n_clauses):
        rows = np.flatnonzero(owner == k)
        w[np.arange(len(gap)), rows[np.argmax(gap[:, rows], axis=1)]] = 1.0
    return w


def _leaves(lo: np.ndarray, hi: np.ndarray, weights: np.ndarray, empty: np.ndarray, **extra: object) -> list[dict]:
    """Proof leaves (see :class:`axiom.verify.bab.BabResult`): one dict per verified domain."""
    return [
        {"lower": lo[i], "upper": hi[i], "weights": weights[i], "empty": bool(empty[i]), **extra}
        for i in range(len(lo))
    ]


def _fit(take: int, deadline: float | None, per_domain: float | None) -> int:
    """Shrink a batch so that it should finish within half of the time left (timeouts stay on time)."""
    if deadline is None or not per_domain:
        return take
    left = deadline - time.perf_counter()
    return max(1, min(take, int(0.5 * left / max(per_domain, 1e-9))))


def _leaf_margins(leaf: np.ndarray, cm: np.ndarray, verified: np.ndarray) -> np.ndarray:
    """Running minimum of each clause's margin over verified (non-empty) domains."""
    if not np.any(verified):
        return leaf
    return np.minimum(leaf, np.min(cm[verified], axis=0))


def _candidates(bb, gap: np.ndarray, cm: np.ndarray, owner: np.ndarray, lo: np.ndarray, hi: np.ndarray) -> np.ndarray:  # type: ignore[no-untyped-def]
    """Per domain, the vertex minimising the lower bound of the hardest row of its most violated clause."""
    worst_clause = np.argmin(cm, axis=1)
    masked = np.where(owner[None, :] == worst_clause[:, None], gap, -np.inf)
    row = np.argmax(masked, axis=1)
    a = bb.A_in[np.arange(len(row)), row]
    return np.where(a >= 0, lo, hi)


def _violates(
    net: ReluChain, C: np.ndarray, d: np.ndarray, owner: np.ndarray, n_clauses: int, x: np.ndarray
) -> np.ndarray:
    """Float64 screening: points where every row of some clause holds (unsafe); replay decides."""
    y = net.forward(x) @ C.T - d
    return np.any(np.stack([np.all(y[:, owner == k] <= 0, axis=1) for k in range(n_clauses)], axis=1), axis=1)


def pgd(
    net: ReluChain,
    C: np.ndarray,
    d: np.ndarray,
    owner: np.ndarray,
    x: np.ndarray,
    lo: np.ndarray,
    hi: np.ndarray,
    clause: np.ndarray,
    steps: int = 30,
) -> np.ndarray:
    """Batched sign-gradient descent on each point's clause margin ``max_i (C_i y - d_i)`` within its box."""
    mask = owner[None, :] == clause[:, None]
    scale = np.maximum(hi - lo, 0.0)
    best, best_val = x.copy(), np.full(len(x), np.inf)
    for t in range(steps):
        vals, grads = net.value_grad(x, C)
        gap = np.where(mask, vals - d, -np.inf)
        worst = np.argmax(gap, axis=1)
        cur = gap[np.arange(len(x)), worst]
        better = cur < best_val
        best[better], best_val[better] = x[better], cur[better]
        g = grads[np.arange(len(x)), worst]
        x = np.clip(x - (0.25 * (1 - t / steps) + 0.01) * scale * np.sign(g), lo, hi)
    return best


def _lookahead(net, C, d, owner, nc, bl, bh):  # type: ignore[no-untyped-def]
    nk, n = bl.shape
    mid = 0.5 * (bl + bh)
    ar = np.arange(n)
    left_hi = np.repeat(bh[:, None, :], n, 1)
    left_hi[:, ar, ar] = mid
    right_lo = np.repeat(bl[:, None, :], n, 1)
    right_lo[:, ar, ar] = mid
    lo = np.concatenate([np.repeat(bl[:, None, :], n, 1), right_lo]).reshape(-1, n)
    hi = np.concatenate([left_hi, np.repeat(bh[:, None, :], n, 1)]).reshape(-1, n)
    kb = spec_bounds(net, lo, hi, C)
    w = np.min(_clause_margins(kb.lower - d, owner, nc), axis=1)
    w = np.where(kb.empty, np.inf, w).reshape(2, nk, n)
    score = np.where(bh > bl, np.minimum(w, 0.0).sum(axis=0), -np.inf)
    return np.argmax(score, axis=1)


def input_split(
    net: ReluChain,
    lo: np.ndarray,
    hi: np.ndarray,
    clauses: list[tuple[np.ndarray, np.ndarray]],
    confirm: Confirm | None,
    seed: int,
    *,
    deadline: float | None = None,
    batch: int = 1024,
    max_queue: int = 1_000_000,
    branching: str = "smart",
    attack_every: int = 1,
    attack_domains: int = 128,
    max_domains: int | None = None,
    combine: bool = True,
    relu_budget: int = 0,
    record: bool = False,
) -> SearchOutcome:
    """Input-split branch-and-bound on the flat input box ``[lo, hi]`` (see the module doc).

    ``branching``: ``"smart"`` splits the dimension maximising ``|a_i| (hi_i - lo_i)`` for the
    linear lower bound ``a . x + c`` of the domain's worst spec row (the dimension the bound
    depends on most), ``"widest"`` the widest dimension relative to the root box.
    Children do not inherit their parent's intermediate intervals: with adaptive ReLU slopes
    CROWN is not monotone in them, and on ACAS Xu intersecting needed more domains (N1,3
    property 1: over 6,000 instead of 1,799). Domains are taken best first (smallest parent
    margin) while the queue is below half of ``max_queue``, newest first above.
    """
    rng = np.random.default_rng(seed)
    t_start = time.perf_counter()
    C, d, owner = _stack(clauses)
    nc = len(clauses)
    leaves: list[dict] | None = [] if record else None
    root_w = np.maximum(hi - lo, 1e-300)
    Lo, Hi = lo[None].astype(np.float64), hi[None].astype(np.float64)
    total_vol, done_vol = 1.0, 0.0
    vol = np.ones(1)
    prio = np.zeros(1)  # parent's worst clause margin per queued domain
    leaf = np.full(nc, np.inf)  # smallest clause margin over the verified leaves
    it = n_dom = peak = nodes = 0
    relu_time = 0.0  # spent in ReLU splitting of deep domains (kept out of the per-domain cost estimate)
    it_start, relu_mark, prev_take = t_start, 0.0, 1
    while Lo.shape[0]:
        if deadline is not None and time.perf_counter() > deadline:
            break
        if max_domains is not None and n_dom >= max_domains:
            break
        it += 1
        now = time.perf_counter()
        if nodes:  # the last iteration's cost per domain and the average, whichever is larger
            recent = (now - it_start - (relu_time - relu_mark)) / prev_take
            per = max(recent, (now - t_start - relu_time) / nodes)
        take = prev_take = _fit(min(batch, Lo.shape[0]), deadline, per if nodes else None)
        it_start, relu_mark = now, relu_time
        # the extra work of this iteration (look-ahead, ReLU splitting) stops at half of the time left
        it_deadline = None if deadline is None else now + 0.5 * (deadline - now)
        if take < Lo.shape[0] and Lo.shape[0] < max_queue // 2:
            # best first: the domains whose parent bound was closest to a violation (finds counterexamples early)
            sel = np.zeros(Lo.shape[0], bool)
            sel[np.argpartition(prio, take - 1)[:take]] = True
        else:  # depth first on the newest domains: bounded memory
            sel = np.arange(Lo.shape[0]) >= Lo.shape[0] - take
        bl, bh, bv = Lo[sel], Hi[sel], vol[sel]
        Lo, Hi, vol, prio = Lo[~sel], Hi[~sel], vol[~sel], prio[~sel]
        n_dom += take
        nodes += take
        bb = spec_bounds(net, bl, bh, C)
        gap = bb.lower - d
        cm = _clause_margins(gap, owner, nc)
        weights = _row_weights(gap, owner, nc) if leaves is not None else None
        open_ = ~(np.all(cm > 0, axis=1) | bb.empty)
        if combine and np.any(open_):
            cm2, w2 = _combined_margins(_take(bb, open_), d, owner, nc, bl[open_], bh[open_])
            if weights is not None:
                for k in np.unique(owner):
                    use = np.flatnonzero(open_)[cm2[:, k] > cm[open_, k]]
                    weights[np.ix_(use, owner == k)] = w2[np.ix_(cm2[:, k] > cm[open_, k], owner == k)]
            cm[open_] = np.maximum(cm[open_], cm2)
        ok = np.all(cm > 0, axis=1) | bb.empty
        leaf = _leaf_margins(leaf, cm, ok & ~bb.empty)
        if leaves is not None:
            leaves += _leaves(bl[ok], bh[ok], weights[ok], bb.empty[ok])
        done_vol += float(np.sum(bv[ok]))
        keep = ~ok
        if not np.any(keep):
            continue
        bl, bh, bv, cm, gap = bl[keep], bh[keep], bv[keep], cm[keep], gap[keep]
        A_in = bb.A_in[keep]
        sub = type(bb)(bb.lower[keep], A_in, bb.const[keep], [], [], bb.empty[keep])
        if confirm is not None:
            pts = np.concatenate([_candidates(sub, gap, cm, owner, bl, bh), 0.5 * bl + 0.5 * bh])
            hit = np.flatnonzero(_violates(net, C, d, owner, nc, pts))
            if hit.size:
                cex = confirm(pts[hit[:64]])
                if cex is not None:
                    return SearchOutcome("falsified", cex, n_dom, it, done_vol / total_vol, peak)
            if it % attack_every == 1 or attack_every == 1:
                order = np.argsort(np.min(cm, axis=1))[:attack_domains]
                clause = np.argmin(cm[order], axis=1)
                start = _candidates(sub, gap, cm, owner, bl, bh)[order]
                rand = rng.uniform(bl[order], bh[order])
                xs = pgd(
                    net,
                    C,
                    d,
                    owner,
                    np.concatenate([start, rand]),
                    np.concatenate([bl[order]] * 2),
                    np.concatenate([bh[order]] * 2),
                    np.concatenate([clause, clause]),
                )
                hit = np.flatnonzero(_violates(net, C, d, owner, nc, xs))
                if hit.size:
                    cex = confirm(xs[hit[:64]])
                    if cex is not None:
                        return SearchOutcome("falsified", cex, n_dom, it, done_vol / total_vol, peak)
        if relu_budget:
            # deep domains: ReLU splitting with LP-carried constraints refutes regions where
            # the output is flat but many neurons stay unstable (input splits barely help there)
            n = lo.size
            dep = np.rint(-np.log2(bv)).astype(np.int64)
            trig = np.flatnonzero((dep >= 3 * n) & ((dep - 3 * n) % n == 0))
            solved = np.zeros(len(bl), bool)
            for i in trig:
                if it_deadline is not None and time.perf_counter() > it_deadline:
                    break
                t_relu = time.perf_counter()
                o = relu_split(
                    net,
                    bl[i],
                    bh[i],
                    clauses,
                    confirm,
                    seed,
                    deadline=it_deadline,
                    max_domains=relu_budget,
                    record=leaves is not None,
                )
                relu_time += time.perf_counter() - t_relu
                n_dom += o.domains
                if o.status == "falsified":
                    return SearchOutcome("falsified", o.counterexample, n_dom, it, done_vol / total_vol, peak)
                if o.status == "proven":
                    solved[i] = True
                    done_vol += float(bv[i])
                    if leaves is not None:
                        leaves += o.leaves
            if np.any(solved):
                bl, bh, bv, cm, gap, A_in = (
                    bl[~solved],
                    bh[~solved],
                    bv[~solved],
                    cm[~solved],
                    gap[~solved],
                    A_in[~solved],
                )
                if not len(bl):
                    continue
        # branching
        row = np.argmax(np.where(owner[None, :] == np.argmin(cm, axis=1)[:, None], gap, -np.inf), axis=1)
        width = bh - bl
        if branching in ("smart", "lookahead"):
            score = np.abs(A_in[np.arange(len(row)), row]) * width
            flat = ~np.any(score > 0, axis=1)
            score[flat] = (width / root_w)[flat]
        else:
            score = width / root_w
        dim = np.argmax(score, axis=1)
        if branching == "lookahead":
            for s0 in range(0, len(bl), 64):
                if it_deadline is not None and time.perf_counter() > it_deadline:
                    break  # the rest keep the "smart" choice
                dim[s0 : s0 + 64] = _lookahead(net, C, d, owner, nc, bl[s0 : s0 + 64], bh[s0 : s0 + 64])
        wd = width[np.arange(len(dim)), dim]
        if np.any(wd <= 0):
            return SearchOutcome(
                "unknown", None, n_dom, it, done_vol / total_vol, peak, {"reason": "a domain cannot be split further"}
            )
        mid = bl[np.arange(len(dim)), dim] + 0.5 * wd
        left_hi, right_lo = bh.copy(), bl.copy()
        left_hi[np.arange(len(dim)), dim] = mid
        right_lo[np.arange(len(dim)), dim] = mid
        worst = np.min(cm, axis=1)
        prio = np.concatenate([prio, worst, worst])
        Lo = np.concatenate([Lo, bl, right_lo])
        Hi = np.concatenate([Hi, left_hi, bh])
        vol = np.concatenate([vol, bv / 2, bv / 2])
        peak = max(peak, Lo.shape[0])
        if Lo.shape[0] > max_queue:
            return SearchOutcome("unknown", None, n_dom, it, done_vol / total_vol, peak, {"reason": "queue cap"})
    status = "proven" if Lo.shape[0] == 0 else "unknown"
    frac = 1.0 if status == "proven" else done_vol / total_vol
    return SearchOutcome(status, None, n_dom, it, frac, peak, {"clause_margins": leaf.tolist()}, leaves)


def relu_split(
    net: ReluChain,
    lo: np.ndarray,
    hi: np.ndarray,
    clauses: list[tuple[np.ndarray, np.ndarray]],
    confirm: Confirm | None,
    seed: int,
    *,
    deadline: float | None = None,
    batch: int = 64,
    max_queue: int = 50_000,
    max_domains: int | None = None,
    recompute: bool = True,
    lp: bool | None = None,
    record: bool = False,
) -> SearchOutcome:
    """ReLU-split branch-and-bound over the input box ``[lo, hi]`` (see the module doc).

    Each domain carries a split state per neuron and its inherited pre-activation intervals;
    the neuron to split maximises the BaBSR-style score ``max(-a_j, 0) * u_j (-l_j) / (u_j - l_j)``
    (the intercept the upper ReLU line costs the worst spec row's bound, ``a_j`` its
    coefficient). ``recompute`` re-derives the layers above the shallowest split by CROWN.
    """
    rng = np.random.default_rng(seed)
    t_start = time.perf_counter()
    C, d, owner = _stack(clauses)
    nc = len(clauses)
    K = net.depth
    leaves: list[dict] | None = [] if record else None
    if lp is None:
        lp = net.n_in <= LP_MAX_INPUTS
    lo2, hi2 = lo[None].astype(np.float64), hi[None].astype(np.float64)
    root = spec_bounds(net, lo2, hi2, C)
    sizes = [w.shape[0] for w in net.W[:-1]]
    splits = [np.zeros((1, n), np.int16) for n in sizes]  # sign * (depth of the split): phase and order
    bounds = [(L.copy(), Ub.copy()) for L, Ub in root.pre]
    depth = np.zeros(1, np.int64)
    leaf = np.full(nc, np.inf)
    it = n_dom = peak = 0
    fresh = [root]  # the root's bounds are already computed
    while depth.size:
        if deadline is not None and time.perf_counter() > deadline:
            break
        if max_domains is not None and n_dom >= max_domains:
            break
        it += 1
        take = _fit(min(batch, depth.size), deadline, (time.perf_counter() - t_start) / n_dom if n_dom else None)
        sl = slice(depth.size - take, depth.size)
        b_split = [s[sl] for s in splits]
        b_bounds = [(L[sl], Ub[sl]) for L, Ub in bounds]
        b_depth = depth[sl]
        splits = [s[: sl.start] for s in splits]
        bounds = [(L[: sl.start], Ub[: sl.start]) for L, Ub in bounds]
        depth = depth[: sl.start]
        n_dom += take
        lo_b, hi_b = np.repeat(lo2, take, 0), np.repeat(hi2, take, 0)
        if fresh:
            bb = fresh.pop()
        else:
            bb = spec_bounds(net, lo_b, hi_b, C, b_split, b_bounds, reuse_below=0 if recompute else K)
        gap = bb.lower - d
        cm = _clause_margins(gap, owner, nc)
        weights = _row_weights(gap, owner, nc) if leaves is not None else None
        n_split = [int(sum(np.count_nonzero(sp[i]) for sp in b_split)) for i in range(take)] if record else []
        mus = [np.zeros((nc, n)) for n in n_split]
        lp_pts = np.zeros((0, lo.size))
        open_ = ~(np.all(cm > 0, axis=1) | bb.empty)
        if not lp:  # high-dimensional input: the LP only where no neuron is left to split (it is exact there)
            free = sum(np.sum((L < 0) & (Ub > 0) & (sp == 0), axis=1) for (L, Ub), sp in zip(bb.pre, b_split))
            open_ &= free == 0
        if np.any(open_):
            idx = np.flatnonzero(open_)
            g_A, g_c = split_constraints(
                net, lo_b[idx], hi_b[idx], [s[idx] for s in b_split], [(L[idx], Ub[idx]) for L, Ub in bb.pre]
            )
            m, found, lp_w, lp_mu = lp_margins(
                bb.A_in[idx], bb.const[idx] - d, owner, nc, g_A, g_c, lo_b[idx], hi_b[idx], deadline
            )
            if weights is not None:
                for j, b in enumerate(idx):
                    for k in range(nc):
                        if m[j, k] > cm[b, k]:
                            weights[b, owner == k] = lp_w[j, owner == k]
                            mus[b][k] = lp_mu[j][k]
            cm[idx] = np.maximum(cm[idx], m)
            found = found.reshape(-1, lo.size)
            lp_pts = found[~np.any(np.isnan(found), axis=1)]
        ok = np.all(cm > 0, axis=1) | bb.empty
        leaf = _leaf_margins(leaf, cm, ok & ~bb.empty)
        if leaves is not None:
            for i in np.flatnonzero(ok):
                where = [(k, int(j)) for k, sp in enumerate(b_split) for j in np.flatnonzero(sp[i])]
                states = [int(b_split[k][i, j]) for k, j in where]
                leaves += _leaves(
                    lo2,
                    hi2,
                    weights[i : i + 1],
                    bb.empty[i : i + 1],
                    splits=[(k, j, 1 if v > 0 else -1) for (k, j), v in zip(where, states)],
                    split_order=sorted(range(len(states)), key=lambda t: abs(states[t])),
                    mu=mus[i],
                )
        keep = np.flatnonzero(~ok)
        if keep.size == 0:
            continue
        gap, cm = gap[keep], cm[keep]
        sub = type(bb)(bb.lower[keep], bb.A_in[keep], bb.const[keep], [], [], bb.empty[keep])
        if confirm is not None:
            cand = _candidates(sub, gap, cm, owner, lo_b[keep], hi_b[keep])
            pts = np.concatenate([cand, lp_pts])
            if it % 4 == 1:
                clause = np.argmin(cm, axis=1)[:8]
                starts = np.concatenate([cand[:8], rng.uniform(lo2[0], hi2[0], (8, lo.size))])
                pts = np.concatenate(
                    [
                        pts,
                        pgd(
                            net,
                            C,
                            d,
                            owner,
                            starts,
                            np.repeat(lo2, len(starts), 0),
                            np.repeat(hi2, len(starts), 0),
                            np.concatenate([clause, np.resize(clause, 8)]),
                            steps=20,
                        ),
                    ]
                )
            hit = np.flatnonzero(_violates(net, C, d, owner, nc, pts))
            if hit.size:
                cex = confirm(pts[hit[:64]])
                if cex is not None:
                    return SearchOutcome("falsified", cex, n_dom, it, 0.0, peak)
        # BaBSR-style neuron choice on the worst row of the most violated clause
        row = np.argmax(np.where(owner[None, :] == np.argmin(cm, axis=1)[:, None], gap, -np.inf), axis=1)
        best_score = np.full(keep.size, -1.0)
        best_layer = np.zeros(keep.size, np.int64)
        best_idx = np.zeros(keep.size, np.int64)
        pre = [(L[keep], Ub[keep]) for L, Ub in bb.pre]
        for k in range(K):
            L, Ub = pre[k]
            a = bb.coeffs[k][keep][np.arange(keep.size), row]
            unst = (L < 0) & (Ub > 0) & (b_split[k][keep] == 0)
            with np.errstate(invalid="ignore", divide="ignore"):
                inter = np.where(unst, Ub * (-L) / np.where(unst, Ub - L, 1.0), 0.0)
            score = np.where(unst, np.nan_to_num(np.maximum(-a, 0.0) * inter) + 1e-12 * inter, -1.0)
            j = np.argmax(score, axis=1)
            s = score[np.arange(keep.size), j]
            better = s > best_score
            best_score[better], best_layer[better], best_idx[better] = s[better], k, j[better]
        if np.any(best_score < 0):
            if deadline is not None and time.perf_counter() > deadline:
                break  # the LP of such a domain was cut short by the deadline: a timeout
            # no unstable neuron left: the relaxation is exact there, so the bound is exact up to rounding
            return SearchOutcome("unknown", None, n_dom, it, 0.0, peak, {"reason": "a domain has no neuron to split"})
        kids = []
        for sign in (1, -1):
            sp = [s[keep].copy() for s in b_split]
            for k in range(K):
                sel = best_layer == k
                sp[k][np.flatnonzero(sel), best_idx[sel]] = sign * (b_depth[keep][sel] + 1)
            kids.append(sp)
        splits = [np.concatenate([splits[k], kids[0][k], kids[1][k]]) for k in range(K)]
        bounds = [
            (np.concatenate([bounds[k][0], pre[k][0], pre[k][0]]), np.concatenate([bounds[k][1], pre[k][1], pre[k][1]]))
            for k in range(K)
        ]
        depth = np.concatenate([depth, b_depth[keep] + 1, b_depth[keep] + 1])
        peak = max(peak, depth.size)
        if depth.size > max_queue:
            return SearchOutcome("unknown", None, n_dom, it, 0.0, peak, {"reason": "queue cap"})
    status = "proven" if depth.size == 0 else "unknown"
    return SearchOutcome(
        status, None, n_dom, it, 1.0 if status == "proven" else 0.0, peak, {"clause_margins": leaf.tolist()}, leaves
    )
