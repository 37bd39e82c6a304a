"""Independent certificate checker: re-derives every claim of a certificate from the model.

This module uses only the standard library, NumPy and the certificate (plus
:mod:`axiom.cert.canonical` and :mod:`axiom.cert.subject`, which read the model's layers); it
does not import the verifier (``axiom.verify``). It re-implements what it needs:

1. **Subject**: the architecture and the SHA-256 digests are recomputed from the model's layers
   and compared with the certificate.
2. **Property**: the unsafe clauses and the input set are re-derived, in exact rational
   arithmetic, from the property's JSON (``argmax``, ``linear``, ``output_bounds``,
   ``avoids_region`` conditions over ``box``, ``linf_ball`` or ``box_union`` input sets) and
   must equal the stored clauses; every stored input box must contain its real input set.
3. **Counterexample** (``falsified``): the input must lie in the real input set; an exact
   forward pass (``fractions.Fraction``) and a replay in the model's dtype must both land in an
   unsafe clause, and the stored output must match the replay.
4. **Proof** (``proven``, Dense/ReLU chains): (a) the leaf boxes cover every input box (an
   exact guillotine-partition check) and the leaves sharing a box carry ReLU split sign
   patterns that form a complete binary tree; (b) on every leaf the checker's own CROWN
   (adaptive lower ReLU slope, chord upper line, CROWN rows for interval-unstable neurons,
   split clamping, split constraints ``g(x) <= 0``), with float64 error terms rounded outward,
   gives linear lower bounds ``f_i`` of the spec rows; for every clause the certificate's
   multipliers must make ``min over the box of sum w_i f_i + sum mu_k g_k`` positive, evaluated
   exactly with fractions (or the leaf's split constraints must be infeasible).

Example:
    >>> from axiom.cert.checker import CheckResult
    >>> bool(CheckResult(False, "weights digest mismatch"))
    False
"""

from __future__ import annotations

import base64
import json
import math
from dataclasses import dataclass, field
from fractions import Fraction
from pathlib import Path
from typing import Any

import numpy as np

from axiom.cert.canonical import canonical_json, hex_to_float, hex_to_fraction, hexes
from axiom.cert.subject import describe_model, digests_of

__all__ = ["CERT_FORMAT", "CheckResult", "check"]

#: The certificate format this checker reads.
CERT_FORMAT = "axiom-certificate/1"

_U = 2.0**-53  # unit roundoff of float64
_TINY = 2.0**-1022


class CheckError(Exception):
    """A claim of the certificate does not hold (the message is the one-line reason)."""


@dataclass
class CheckResult:
    """Outcome of :func:`check`: ``valid``, a one-line ``reason`` and ``details`` (counts, margins).

    Example:
        >>> r = CheckResult(True, "proof of 4 leaves re-checked")
        >>> bool(r), r.reason
        (True, 'proof of 4 leaves re-checked')
    """

    valid: bool
    reason: str
    details: dict[str, Any] = field(default_factory=dict)

    def __bool__(self) -> bool:
        return self.valid


# ----------------------------------------------------------------------------- outward rounding


def _gam(n: int) -> float:
    """A generous bound (>= 2 gamma_{n+2}) on the relative error of an n-term float64 dot product."""
    return 1.01 * (n + 4) * 2.0**-52


def _up(x: Any) -> Any:
    return np.nextafter(x, np.inf)


def _down(x: Any) -> Any:
    return np.nextafter(x, -np.inf)


# ----------------------------------------------------------------------------- the network


@dataclass
class _Chain:
    W: list[np.ndarray]  # (n_out, n_in) float64 (exact upcast of the stored weights)
    b: list[np.ndarray]
    absW: list[np.ndarray]

    @property
    def depth(self) -> int:
        return len(self.W) - 1


def _chain(arch: list[dict[str, Any]], tensors: dict[str, np.ndarray], names: list[list[str]]) -> _Chain | None:
    """The Dense/ReLU chain of the model (leading flatten/reshape allowed), or None."""
    Ws: list[np.ndarray] = []
    bs: list[np.ndarray] = []
    want_dense, started = True, False
    for rec, nm in zip(arch, names):
        op = rec["op"]
        if op in ("flatten", "reshape") and not started:
            continue
        if op == "identity":
            continue
        if want_dense and op == "dense":
            w = tensors[nm[0]].astype(np.float64).T
            b = tensors[nm[1]].astype(np.float64) if rec["bias"] else np.zeros(w.shape[0])
            Ws.append(np.ascontiguousarray(w))
            bs.append(b.reshape(-1))
            want_dense, started = False, True
        elif not want_dense and op == "relu":
            want_dense = True
        else:
            return None
    if not Ws or want_dense:
        return None
    return _Chain(Ws, bs, [np.abs(w) for w in Ws])


def _tensor_names(arch: list[dict[str, Any]], tensors: list[tuple[str, np.ndarray]]) -> list[list[str]]:
    """For each architecture record, the names of its tensors (dense: weight, bias)."""
    out: list[list[str]] = []
    it = iter(tensors)
    for rec in arch:
        if rec["op"] == "dense":
            nm = [next(it)[0]]
            if rec["bias"]:
                nm.append(next(it)[0])
            out.append(nm)
        else:
            out.append([])
    return out


def _relax(L: np.ndarray, Ub: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Lower slope, upper slope and outward upper intercept of relu on [L, Ub] (adaptive lower slope)."""
    act = L >= 0
    unst = (L < 0) & (Ub > 0)
    den = np.where(unst, Ub - L, 1.0)
    s = np.where(unst, Ub / den, 0.0)
    with np.errstate(invalid="ignore", over="ignore"):
        t = np.maximum(-s * L, Ub - s * Ub)
        t = _up(t + 4 * _U * (np.abs(s * L) + np.abs(Ub) + np.abs(s * Ub)) + _TINY)
    tu = np.where(unst, t, 0.0)
    su = np.where(act, 1.0, s)
    sl = np.where(act, 1.0, np.where(unst & (Ub > -L), 1.0, 0.0))
    return sl, su, tu


def _backsub(
    net: _Chain,
    t: int,
    A: np.ndarray,
    pre: list[tuple[np.ndarray, np.ndarray]],
    rel: list[tuple[np.ndarray, np.ndarray, np.ndarray]],
    lo: np.ndarray,
    hi: np.ndarray,
    coeffs: list[np.ndarray] | None = None,
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """``(A_in, const, err)`` with ``A . z_t >= A_in . x + const - err`` on the domain (rows of ``A``).

    ``coeffs``: if a list, receives the coefficients on each ReLU layer's output (layer order).
    """
    R = A.shape[0]
    const = np.zeros(R)
    err = np.zeros(R)
    with np.errstate(invalid="ignore", over="ignore"):
        for j in range(t, -1, -1):
            W, aW, b = net.W[j], net.absW[j], net.b[j]
            n_out = W.shape[0]
            mag_h = np.maximum(np.abs(lo), np.abs(hi)) if j == 0 else np.maximum(pre[j - 1][1], 0.0)
            absA = np.abs(A)
            err = err + _gam(n_out) * (absA @ np.abs(b) + (absA @ aW) @ mag_h)
            const = const + A @ b
            err = err + 2 * _U * np.abs(const)
            A = A @ W
            if j == 0:
                break
            if coeffs is not None:
                coeffs.insert(0, A)
            sl, su, tu = rel[j - 1]
            neg = np.minimum(A, 0.0)
            const = const + neg @ tu
            err = err + _gam(A.shape[1]) * (np.abs(neg) @ tu) + 2 * _U * np.abs(const)
            A = A * np.where(A >= 0, sl, su)
            L, Ub = pre[j - 1]
            err = err + 2 * _U * (np.abs(A) @ np.maximum(np.abs(L), np.abs(Ub)))
    err = _up(err * (1 + 1e-6) + _TINY)
    return A, const, err


def _box_min(A: np.ndarray, const: np.ndarray, err: np.ndarray, lo: np.ndarray, hi: np.ndarray) -> np.ndarray:
    """Sound (rounded down) lower bound of ``min over [lo, hi] of A x + const - err`` per row."""
    with np.errstate(invalid="ignore", over="ignore"):
        val = np.maximum(A, 0.0) @ lo + np.minimum(A, 0.0) @ hi
        mag = np.maximum(np.abs(lo), np.abs(hi))
        e = err + _gam(A.shape[1]) * (np.abs(A) @ mag) + 4 * _U * (np.abs(val) + np.abs(const))
        out = _down(val + const - _up(e * (1 + 1e-6) + _TINY))
    return np.where(np.isnan(out), -np.inf, out)


def _ibp(net: _Chain, k: int, hl: np.ndarray, hu: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    W, aW, b = net.W[k], net.absW[k], net.b[k]
    Wp, Wn = np.maximum(W, 0.0), np.minimum(W, 0.0)
    with np.errstate(invalid="ignore", over="ignore"):
        lo = Wp @ hl + Wn @ hu + b
        hi = Wp @ hu + Wn @ hl + b
        mag = np.maximum(np.abs(hl), np.abs(hu))
        e = _gam(2 * W.shape[1] + 2) * (aW @ mag + np.abs(b)) + 4 * _U * np.maximum(np.abs(lo), np.abs(hi))
        e = _up(e * (1 + 1e-6) + _TINY)
        return _down(lo - e), _up(hi + e)


@dataclass
class _Bounds:
    pre: list[tuple[np.ndarray, np.ndarray]]
    rel: list[tuple[np.ndarray, np.ndarray, np.ndarray]]
    empty: bool


def _bounds(
    net: _Chain,
    lo: np.ndarray,
    hi: np.ndarray,
    splits: dict[tuple[int, int], int],
    parent: list[tuple[np.ndarray, np.ndarray]] | None,
) -> _Bounds:
    """Pre-activation intervals of every ReLU layer on ``box ∩ splits`` (intersected with ``parent``)."""
    pre: list[tuple[np.ndarray, np.ndarray]] = []
    rel: list[tuple[np.ndarray, np.ndarray, np.ndarray]] = []
    for k in range(net.depth):
        n = net.W[k].shape[0]
        sign = np.zeros(n)
        for (layer, j), s in splits.items():
            if layer == k:
                sign[j] = s
        if k == 0:
            hl, hu = lo, hi
        else:
            hl, hu = np.maximum(pre[k - 1][0], 0.0), np.maximum(pre[k - 1][1], 0.0)
        L, Ub = _ibp(net, k, hl, hu)
        if parent is not None:
            L, Ub = np.maximum(L, parent[k][0]), np.minimum(Ub, parent[k][1])
        L = np.where(sign > 0, np.maximum(L, 0.0), L)
        Ub = np.where(sign < 0, np.minimum(Ub, 0.0), Ub)
        idx = np.flatnonzero((L < 0) & (Ub > 0))
        if k > 0 and idx.size:
            A = np.zeros((2 * idx.size, n))
            A[np.arange(idx.size), idx] = 1.0
            A[idx.size + np.arange(idx.size), idx] = -1.0
            low = _box_min(*_backsub(net, k, A, pre, rel, lo, hi), lo, hi)
            L[idx] = np.maximum(L[idx], low[: idx.size])
            Ub[idx] = np.minimum(Ub[idx], -low[idx.size :])
        L = np.where(sign > 0, np.maximum(L, 0.0), L)
        Ub = np.where(sign < 0, np.minimum(Ub, 0.0), Ub)
        if np.any(L > Ub) or np.any(np.isnan(L)) or np.any(np.isnan(Ub)):
            return _Bounds(pre, rel, True)
        pre.append((L, Ub))
        rel.append(_relax(L, Ub))
    return _Bounds(pre, rel, False)


# ----------------------------------------------------------------------------- property


def _fr_list(values: Any) -> list[Fraction]:
    return [hex_to_fraction(v) for v in values]


def _broadcast(values: Any, n: int, what: str) -> list[Fraction]:
    arr = np.asarray(values, dtype=object).reshape(-1)
    if arr.size == 1:
        arr = np.repeat(arr, n)
    if arr.size != n:
        raise CheckError(f"property: {what} has {arr.size} values for {n} inputs")
    return _fr_list(arr.tolist())


def _real_sets(js: dict[str, Any], n_in: int) -> list[tuple[list[Fraction], list[Fraction]]]:
    """The input set of the property JSON as exact boxes (a union of them)."""
    kind = js.get("type")
    if kind == "box":
        return [(_broadcast(js["lower"], n_in, "box lower"), _broadcast(js["upper"], n_in, "box upper"))]
    if kind == "linf_ball":
        c = _broadcast(js["center"], n_in, "ball center")
        eps = hex_to_fraction(js["eps"])
        lo = [v - eps for v in c]
        hi = [v + eps for v in c]
        if js.get("clip") is not None:
            clo = _broadcast(js["clip"][0], n_in, "clip lower")
            chi = _broadcast(js["clip"][1], n_in, "clip upper")
            lo = [max(a, b) for a, b in zip(lo, clo)]
            hi = [min(a, b) for a, b in zip(hi, chi)]
        return [(lo, hi)]
    if kind == "box_union":
        return [s for b in js["boxes"] for s in _real_sets(b, n_in)]
    raise CheckError(f"property: input set {kind!r} is not supported by the checker")


def _real_clauses(js: dict[str, Any], n_out: int) -> list[tuple[list[list[Fraction]], list[Fraction]]]:
    """The unsafe clauses (rows ``C y <= d``) of the condition JSON, exactly."""
    kind = js.get("type")
    zero, one = Fraction(0), Fraction(1)
    if kind == "argmax":
        label = int(js["label"])
        if not 0 <= label < n_out:
            raise CheckError(f"property: label {label} out of range")
        out = []
        for j in range(n_out):
            if j != label:
                row = [zero] * n_out
                row[label], row[j] = one, -one
                out.append(([row], [zero]))
        return out
    if kind == "linear":
        C = [_fr_list(r) for r in js["C"]]
        d = _fr_list(js["d"])
        return [([[-v for v in row]], [-rhs]) for row, rhs in zip(C, d)]
    if kind == "output_bounds":
        out = []
        for side, sign in (("lower", -1), ("upper", 1)):
            if js.get(side) is None:
                continue
            vals = np.asarray(js[side], dtype=object).reshape(-1)
            if vals.size == 1:
                vals = np.repeat(vals, n_out)
            for i in range(n_out):
                x = hex_to_float(vals[i])
                if math.isfinite(x):
                    row = [zero] * n_out
                    row[i] = Fraction(-sign)
                    out.append(([row], [-sign * Fraction(x)]))
        return out
    if kind == "avoids_region":
        return [([_fr_list(r) for r in c["C"]], _fr_list(c["d"])) for c in js["clauses"]]
    raise CheckError(f"property: condition {kind!r} has no linear unsafe region the checker knows")


# ----------------------------------------------------------------------------- counterexample


def _exact_forward(
    arch: list[dict[str, Any]], names: list[list[str]], tensors: dict[str, np.ndarray], x: list[Fraction]
) -> list[Fraction]:
    h = list(x)
    for rec, nm in zip(arch, names):
        op = rec["op"]
        if op in ("flatten", "reshape", "identity"):
            continue
        if op == "dense":
            W = tensors[nm[0]]
            if W.shape[0] != len(h):
                raise CheckError(f"counterexample: a dense layer takes {W.shape[0]} inputs, got {len(h)}")
            Wf = [[Fraction(float(v)) for v in row] for row in W.T.tolist()]
            b = (
                [Fraction(float(v)) for v in tensors[nm[1]].reshape(-1).tolist()]
                if rec["bias"]
                else [Fraction(0)] * W.shape[1]
            )
            h = [sum((wi * hi for wi, hi in zip(row, h)), Fraction(0)) + bj for row, bj in zip(Wf, b)]
        elif op == "relu":
            h = [v if v > 0 else Fraction(0) for v in h]
        else:
            raise CheckError(f"counterexample: the checker cannot evaluate layer {rec}")
    return h


def _dtype_forward(
    arch: list[dict[str, Any]], names: list[list[str]], tensors: dict[str, np.ndarray], x: np.ndarray
) -> np.ndarray:
    dt = next((tensors[nm[0]].dtype for rec, nm in zip(arch, names) if rec["op"] == "dense"), np.dtype(np.float32))
    h = np.asarray(x, dt).reshape(1, -1)
    for rec, nm in zip(arch, names):
        op = rec["op"]
        if op == "dense":
            h = h @ tensors[nm[0]]
            if rec["bias"]:
                h = h + tensors[nm[1]].reshape(1, -1)
        elif op == "relu":
            h = np.maximum(h, np.zeros((), h.dtype))
    return h[0]


def _unsafe(clauses: list[tuple[list[list[Fraction]], list[Fraction]]], y: list[Fraction]) -> int | None:
    for k, (C, d) in enumerate(clauses):
        if all(sum((c * v for c, v in zip(row, y)), Fraction(0)) <= rhs for row, rhs in zip(C, d)):
            return k
    return None


def _check_counterexample(cert, arch, names, tensors, sets, clauses, n_in):  # type: ignore[no-untyped-def]
    w = cert["witness"]
    if w.get("kind") != "counterexample":
        raise CheckError("a falsified certificate needs a counterexample witness")
    x = _fr_list(w["input"])
    if len(x) != n_in:
        raise CheckError(f"counterexample: {len(x)} input values for {n_in} inputs")
    if not any(all(lo[i] <= x[i] <= hi[i] for i in range(n_in)) for lo, hi in sets):
        raise CheckError("counterexample: the input is outside the property's input set")
    y = _exact_forward(arch, names, tensors, x)
    k = _unsafe(clauses, y)
    if k is None:
        raise CheckError("counterexample: the exact output is not in the unsafe region")
    xf = np.array([float(v) for v in x])
    y32 = _dtype_forward(arch, names, tensors, xf)
    if not np.array_equal(np.asarray(xf, y32.dtype).astype(np.float64), xf):
        raise CheckError(f"counterexample: the input is not representable in the model dtype {y32.dtype}")
    k32 = _unsafe(clauses, [Fraction(float(v)) for v in y32])
    if k32 is None:
        raise CheckError(f"counterexample: the {y32.dtype} replay is not in the unsafe region")
    stored = hexes(w["output"]).reshape(-1)
    if stored.shape != y32.shape or not np.allclose(stored, y32.astype(np.float64), rtol=1e-5, atol=1e-6):
        raise CheckError("counterexample: the stored output does not match the replay")
    return {"clause": k, "clause_in_dtype": k32, "output_exact": [float(v) for v in y]}


# ----------------------------------------------------------------------------- proof


def _covers(rlo: np.ndarray, rhi: np.ndarray, blo: np.ndarray, bhi: np.ndarray) -> bool:
    """Exact check that the boxes ``[blo[i], bhi[i]]`` cover the box ``[rlo, rhi]`` (guillotine partitions)."""
    stack = [(rlo, rhi, np.arange(len(blo)))]
    while stack:
        lo, hi, idx = stack.pop()
        bl, bh = blo[idx], bhi[idx]
        wide = lo < hi
        rel = np.all(bl <= hi, axis=1) & np.all(bh >= lo, axis=1)
        rel &= np.all(~wide | ((bl < hi) & (bh > lo)), axis=1)
        idx, bl, bh = idx[rel], bl[rel], bh[rel]
        if np.any(np.all(bl <= lo, axis=1) & np.all(bh >= hi, axis=1)):
            continue
        best: tuple[float, int, float] | None = None
        for d in np.flatnonzero(wide):
            cand = np.unique(np.concatenate([bl[:, d], bh[:, d]]))
            cand = cand[(cand > lo[d]) & (cand < hi[d])]
            if cand.size == 0:
                continue
            straddle = (bl[None, :, d] < cand[:, None]) & (bh[None, :, d] > cand[:, None])
            ok = cand[~np.any(straddle, axis=1)]
            if ok.size:
                mid = 0.5 * lo[d] + 0.5 * hi[d]
                v = ok[np.argmin(np.abs(ok - mid) / (hi[d] - lo[d]))]
                score = abs(v - mid) / (hi[d] - lo[d])
                if best is None or score < best[0]:
                    best = (score, int(d), float(v))
        if best is None:
            return False
        _, d, v = best
        lhi, rlo2 = hi.copy(), lo.copy()
        lhi[d] = v
        rlo2[d] = v
        stack.append((lo, lhi, idx[bl[:, d] < v]))
        stack.append((rlo2, hi, idx[bh[:, d] > v]))
    return True


def _exact_min(coef: list[Fraction], lo: np.ndarray, hi: np.ndarray) -> Fraction:
    total = Fraction(0)
    for c, a, b in zip(coef, lo.tolist(), hi.tolist()):
        if c > 0:
            total += c * Fraction(a)
        elif c < 0:
            total += c * Fraction(b)
    return total


def _leaf_linear(net, leaf, bnd, lo, hi, C):  # type: ignore[no-untyped-def]
    """The leaf's spec-row bounds ``(fA, fc, fe)`` and split constraints ``(gA, gc, ge)`` (value - err)."""
    fA, fc, fe = _backsub(net, net.depth, C, bnd.pre, bnd.rel, lo, hi)
    splits = leaf["splits"]
    gA = np.zeros((len(splits), lo.size))
    gc = np.zeros(len(splits))
    ge = np.zeros(len(splits))
    for s, (k, j, sign) in enumerate(splits):
        row = np.zeros((1, net.W[k].shape[0]))
        row[0, j] = -float(sign)
        a, c, e = _backsub(net, k, row, bnd.pre, bnd.rel, lo, hi)
        gA[s], gc[s], ge[s] = a[0], c[0], e[0]
    return fA, fc, fe, gA, gc, ge


def _leaf_ok(net, leaf, bnd, lo, hi, C, d, owner, n_clauses) -> tuple[bool, str]:  # type: ignore[no-untyped-def]
    """Whether the leaf's multipliers refute every clause on its domain (or the domain is empty)."""
    if bnd.empty:
        return True, "empty"
    if leaf["empty"]:
        return False, "the leaf is claimed empty but its split constraints are feasible for the checker"
    fA, fc, fe, gA, gc, ge = _leaf_linear(net, leaf, bnd, lo, hi, C)
    splits = leaf["splits"]
    w = hexes(leaf["weights"]).reshape(-1)
    mu = hexes(leaf["mu"]) if len(splits) else np.zeros((n_clauses, 0))
    if w.shape != (C.shape[0],) or mu.shape != (n_clauses, len(splits)):
        return False, "multipliers of the wrong shape"
    if not (np.all(np.isfinite(w)) and np.all(w >= 0) and np.all(np.isfinite(mu)) and np.all(mu >= 0)):
        return False, "multipliers must be finite and nonnegative"
    fAq = [[Fraction(v) for v in row] for row in fA.tolist()]
    gAq = [[Fraction(v) for v in row] for row in gA.tolist()]
    for k in range(n_clauses):
        coef = [Fraction(0)] * lo.size
        cst = Fraction(0)
        for i in np.flatnonzero(owner == k):
            wi = Fraction(float(w[i]))
            if wi == 0:
                continue
            coef = [a + wi * b for a, b in zip(coef, fAq[i])]
            cst += wi * (Fraction(float(fc[i])) - Fraction(float(fe[i])) - Fraction(float(d[i])))
        for s in range(len(splits)):
            m = Fraction(float(mu[k, s]))
            if m == 0:
                continue
            coef = [a + m * b for a, b in zip(coef, gAq[s])]
            cst += m * (Fraction(float(gc[s])) - Fraction(float(ge[s])))
        if not _exact_min(coef, lo, hi) + cst > 0:
            return False, f"clause {k} is not refuted by the leaf's multipliers"
    return True, "refuted"


def _likely_first(net, bnd, lo, hi, C, d, owner, nc, cands):  # type: ignore[no-untyped-def]
    """Of several neurons that could be a tree node's split, the one the search most likely split first.

    Any choice gives a valid coverage argument; the choice only affects how tight the
    (parent-intersected) intervals below are. The search splits the unstable neuron with the
    largest BaBSR score ``max(-a_j, 0) u_j (-l_j) / (u_j - l_j)`` (``a`` the coefficient of the
    worst spec row on the ReLU output), so that is the order reconstructed here.
    """
    coeffs: list[np.ndarray] = []
    A, c, e = _backsub(net, net.depth, C, bnd.pre, bnd.rel, lo, hi, coeffs)
    gap = _box_min(A, c, e, lo, hi) - d
    cm = np.array([np.max(gap[owner == k]) for k in range(nc)])
    rows = np.flatnonzero(owner == int(np.argmin(cm)))
    row = int(rows[np.argmax(gap[rows])])
    best, best_score = cands[0], -np.inf
    for k, j in cands:
        L, Ub = bnd.pre[k][0][j], bnd.pre[k][1][j]
        inter = Ub * (-L) / (Ub - L) if (L < 0 < Ub) else 0.0
        score = max(-coeffs[k][row, j], 0.0) * inter + 1e-12 * inter
        if score > best_score:
            best, best_score = (k, j), score
    return best


def _recorded_next(leaf: dict[str, Any], depth: int, cands: list[tuple[int, int]]) -> tuple[int, int] | None:
    """The split the search made at ``depth`` on this leaf's path (``split_order``), if it is a candidate.

    Only a hint for the order (tighter parent intervals): coverage is checked either way.
    """
    order = leaf.get("split_order") or []
    if depth >= len(order) or not 0 <= int(order[depth]) < len(leaf["splits"]):
        return None
    k, j = (int(v) for v in leaf["splits"][int(order[depth])][:2])
    return (k, j) if (k, j) in cands else None


def _check_group(net, leaves, lo, hi, C, d, owner, nc, stats, refit=None) -> None:  # type: ignore[no-untyped-def]
    """Leaves sharing one box: their splits form a complete tree, and every leaf is refuted.

    ``refit`` (certificate generation only, never when checking): called as
    ``refit(leaf, linear_bounds)`` on a leaf whose multipliers fail, it may replace them.
    """
    keyed = []
    for leaf in leaves:
        sp = {}
        for k, j, s in leaf["splits"]:
            if not (0 <= k < net.depth and 0 <= j < net.W[k].shape[0] and s in (1, -1)) or (k, j) in sp:
                raise CheckError(f"proof: invalid split {(k, j, s)}")
            sp[(k, j)] = s
        keyed.append((sp, leaf))
    stack: list[tuple[dict[tuple[int, int], int], list[int], Any]] = [({}, list(range(len(keyed))), None)]
    while stack:
        fixed, idx, parent = stack.pop()
        exact = [i for i in idx if keyed[i][0] == fixed]
        if exact:
            fails = []
            for i in exact:
                for par in (parent, None) if parent is not None else (None,):
                    bnd = _bounds(net, lo, hi, fixed, par)
                    ok, why = _leaf_ok(net, keyed[i][1], bnd, lo, hi, C, d, owner, nc)
                    if not ok and refit is not None and not bnd.empty:
                        refit(keyed[i][1], _leaf_linear(net, keyed[i][1], bnd, lo, hi, C))
                        ok, why = _leaf_ok(net, keyed[i][1], bnd, lo, hi, C, d, owner, nc)
                    if ok:
                        break
                if ok:
                    stats["leaves"] += 1
                    stats["empty"] += why == "empty"
                    break
                fails.append(why)
            else:
                raise CheckError(f"proof: a leaf on box {lo.tolist()}..{hi.tolist()} fails: {fails[0]}")
            continue
        common = None
        for i in idx:
            keys = {key for key in keyed[i][0] if key not in fixed}
            if any(keyed[i][0].get(key) != v for key, v in fixed.items()):
                raise CheckError("proof: inconsistent split tree")
            common = keys if common is None else common & keys
        cands = [key for key in sorted(common or ()) if {keyed[i][0][key] for i in idx} == {1, -1}]
        if not cands:
            raise CheckError("proof: the ReLU splits of a box do not form a complete binary tree")
        bnd = _bounds(net, lo, hi, fixed, parent)
        if bnd.empty:  # the node's domain is empty: so is every leaf below it
            stats["leaves"] += len(idx)
            stats["empty"] += len(idx)
            continue
        pick = cands[0] if len(cands) == 1 else _recorded_next(keyed[idx[0]][1], len(fixed), cands)
        if pick is None:
            pick = _likely_first(net, bnd, lo, hi, C, d, owner, nc, cands)
        for s in (1, -1):
            stack.append(({**fixed, pick: s}, [i for i in idx if keyed[i][0][pick] == s], bnd.pre))


def _check_proof(cert, arch, names, tensors, boxes, clauses_f, n_in, refit=None):  # type: ignore[no-untyped-def]
    w = cert["witness"]
    if w.get("kind") != "bab-proof":
        raise CheckError("a proven certificate needs a branch-and-bound proof witness")
    net = _chain(arch, tensors, names)
    if net is None:
        raise CheckError("proof: the model is not a Dense/ReLU chain (no checkable proof for this model kind)")
    if net.W[0].shape[1] != n_in:
        raise CheckError(f"proof: the network takes {net.W[0].shape[1]} inputs, the property has {n_in}")
    C = np.concatenate([c for c, _ in clauses_f])
    d = np.concatenate([v for _, v in clauses_f])
    owner = np.concatenate([np.full(len(v), k) for k, (_, v) in enumerate(clauses_f)])
    nc = len(clauses_f)
    leaves = w["leaves"]
    if not leaves:
        raise CheckError("proof: no leaves")
    groups: dict[tuple, list[dict]] = {}
    for leaf in leaves:
        if len(leaf["lower"]) != n_in or len(leaf["upper"]) != n_in:
            raise CheckError("proof: a leaf box has the wrong dimension")
        groups.setdefault((tuple(leaf["lower"]), tuple(leaf["upper"])), []).append(leaf)
    stats = {"leaves": 0, "empty": 0, "boxes": len(groups)}
    keys = list(groups)
    blo = np.array([hexes(list(k[0])) for k in keys]).reshape(len(keys), n_in)
    bhi = np.array([hexes(list(k[1])) for k in keys]).reshape(len(keys), n_in)
    if np.any(~np.isfinite(blo)) or np.any(~np.isfinite(bhi)) or np.any(blo > bhi):
        raise CheckError("proof: a leaf box is not a finite box")
    for lo, hi in boxes:
        if not _covers(lo, hi, blo, bhi):
            raise CheckError("proof: the leaf boxes do not cover the input box")
    for i, key in enumerate(keys):
        _check_group(net, groups[key], blo[i], bhi[i], C, d, owner, nc, stats, refit)
    return stats


# ----------------------------------------------------------------------------- entry point


def _as_cert(cert: Any) -> dict[str, Any]:
    if isinstance(cert, str | Path):
        cert = json.loads(Path(cert).read_text(encoding="utf-8"))
    if isinstance(cert, dict) and "payload" in cert and "payloadType" in cert:  # a DSSE envelope
        stmt = json.loads(base64.b64decode(cert["payload"]))
        cert = stmt.get("predicate")
    if not isinstance(cert, dict):
        raise CheckError("not a certificate")
    return cert


def _run(cert: Any, model: Any, refit: Any = None) -> tuple[str, dict[str, Any]]:
    cert = _as_cert(cert)
    if cert.get("format") != CERT_FORMAT:
        raise CheckError(f"unknown certificate format {cert.get('format')!r}")
    arch, tensor_list = describe_model(model)
    sub = cert["subject"]
    if canonical_json(arch) != canonical_json(sub["architecture"]):
        raise CheckError("the model's architecture differs from the certificate's")
    dig = digests_of(arch, tensor_list)
    for key in ("architecture", "weights", "model"):
        if sub["digests"].get(key) != dig[key]:
            raise CheckError(f"{key} digest mismatch (the model is not the certified one)")
    tensors = dict(tensor_list)
    names = _tensor_names(arch, tensor_list)
    prop = cert["property"]
    in_shape = [int(s) for s in prop["input_shape"]]
    n_in, n_out = math.prod(in_shape), int(prop["n_outputs"])
    vnn = prop["vnnlib"]
    if vnn.count("(declare-const X_") != n_in or vnn.count("(declare-const Y_") != n_out:
        raise CheckError("the VNN-LIB text does not declare the property's inputs and outputs")
    sets = _real_sets(prop["json"]["input_set"] or {}, n_in)
    clauses = _real_clauses(prop["json"]["condition"], n_out)
    stored = [([_fr_list(r) for r in c["C"]], _fr_list(c["d"])) for c in prop["clauses"]]
    if stored != clauses:
        raise CheckError("the stored unsafe clauses differ from the property's")
    boxes = [(hexes(b["lower"]).reshape(-1), hexes(b["upper"]).reshape(-1)) for b in prop["input_boxes"]]
    if len(boxes) != len(sets):
        raise CheckError("one stored input box per input set piece is expected")
    for (lo, hi), (rlo, rhi) in zip(boxes, sets):
        if lo.size != n_in or hi.size != n_in:
            raise CheckError("a stored input box has the wrong dimension")
        if not all(Fraction(float(a)) <= b for a, b in zip(lo, rlo)) or not all(
            Fraction(float(a)) >= b for a, b in zip(hi, rhi)
        ):
            raise CheckError("a stored input box does not contain the property's input set")
    verdict = cert.get("verdict")
    if verdict == "falsified":
        details = _check_counterexample(cert, arch, names, tensors, sets, clauses, n_in)
        return f"counterexample re-checked (clause {details['clause']} holds exactly and in the model dtype)", details
    if verdict == "proven":
        clauses_f = [(hexes(c["C"]).reshape(len(c["d"]), n_out), hexes(c["d"]).reshape(-1)) for c in prop["clauses"]]
        stats = _check_proof(cert, arch, names, tensors, boxes, clauses_f, n_in, refit)
        return f"proof re-checked: {stats['leaves']} leaves on {stats['boxes']} boxes ({stats['empty']} empty)", stats
    raise CheckError(f"verdict {verdict!r} cannot be certified (only proven and falsified)")


def check(cert: Any, model: Any) -> CheckResult:
    """Re-derive every claim of ``cert`` (a dict, a JSON path or a DSSE envelope) against ``model``.

    Returns a :class:`CheckResult` (truthy when valid); malformed certificates are invalid,
    never an exception. The signature of an envelope is not checked here (see
    :func:`axiom.cert.load_certificate`).

    Example:
        >>> from axiom import Dense, Sequential, manual_seed
        >>> manual_seed(0)
        >>> check({"format": "something else"}, Sequential(Dense(2, 1))).reason
        "unknown certificate format 'something else'"
    """
    try:
        reason, details = _run(cert, model)
    except CheckError as err:
        return CheckResult(False, str(err))
    except (KeyError, TypeError, ValueError, IndexError, AttributeError, ArithmeticError) as err:
        return CheckResult(False, f"malformed certificate: {type(err).__name__}: {err}")
    return CheckResult(True, reason, details)
