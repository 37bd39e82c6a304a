"""Element-wise activations for bound propagation: exact-real math, ranges and linear relaxations.

For every activation in :data:`axiom.backends.base.ACTIVATIONS` this module knows

- ``f`` and ``f'`` in float64 (stable formulations; their error against the real function is a
  few ulps, far below the margins used here);
- a global bound ``lip`` on ``|f'|`` and a bound ``curv(a, b)`` on ``|f''|`` over a sub-interval
  that contains no kink (points where ``f'`` or ``f''`` jumps are listed in ``kinks`` and are
  always grid points);
- its shape for interval bounds: increasing, or quasi-convex with a known minimiser interval and
  a rigorous lower bound on the minimum value (gelu, gelu_tanh, silu, mish, hardswish, and
  leaky_relu/elu with a negative ``alpha``).

Relaxations ``kL z + bL <= f(z) <= kU z + bU`` on ``[l, u]`` pick the slopes heuristically and
then *certify* the intercepts: ``bL <= min (f(z) - kL z)`` over ``[l, u]`` from a grid
evaluation, where on each grid cell ``[z_i, z_i+1]`` of width ``h``
``g(z) >= min(g_i, g_i+1) - min(K h^2 / 8, L h / 2)`` with ``K >= sup|f''|`` on the cell (``g''
= f''`` since the line is linear) and ``L >= sup|f' - k|``; the cells with the worst bound are
refined. A float margin ``1e-12 (1 + max|f| + |k| max(|l|,|u|)) + 1e-14 max(|l|,|u|)`` covers the
evaluation and rounding errors. The slopes therefore never affect soundness, only tightness.
ReLU and LeakyReLU have closed-form relaxations (the triangle, lower slope free in ``[a, 1]``).

Example:
    >>> import numpy as np
    >>> from axiom.verify.bounds._act import ActivationMath
    >>> act = ActivationMath("sigmoid")
    >>> l, u = np.array([-2.0]), np.array([3.0])
    >>> kL, bL, kU, bU = act.relax(l, u)
    >>> z = np.linspace(-2, 3, 1001)
    >>> bool(np.all(kL * z + bL <= act.f(z)) and np.all(act.f(z) <= kU * z + bU))
    True
"""

from __future__ import annotations

import math
from collections.abc import Callable
from dataclasses import dataclass

import numpy as np

from axiom.verify.bounds._fp import TINY, U, down, up

SELU_ALPHA = 1.6732632423543772
SELU_SCALE = 1.0507009873554805
_SQRT_2PI = math.sqrt(2.0 * math.pi)
_GELU_C = math.sqrt(2.0 / math.pi)

_erfc = np.frompyfunc(math.erfc, 1, 1)

# Coarse grid points, refinement rounds and refined points per round of the intercept search.
GRID = 33
REFINE_ROUNDS = 8
REFINE_GRID = 9


def _sigmoid(x: np.ndarray) -> np.ndarray:
    e = np.exp(-np.abs(x))
    return np.where(x >= 0, 1.0 / (1.0 + e), e / (1.0 + e))


def _softplus(x: np.ndarray) -> np.ndarray:
    return np.logaddexp(0.0, x)


def _gelu(x: np.ndarray) -> np.ndarray:
    x = np.asarray(x, np.float64)
    return 0.5 * x * _erfc(-x / math.sqrt(2.0)).astype(np.float64)


def _dgelu(x: np.ndarray) -> np.ndarray:
    x = np.asarray(x, np.float64)
    return 0.5 * _erfc(-x / math.sqrt(2.0)).astype(np.float64) + x * np.exp(-0.5 * x * x) / _SQRT_2PI


def _gelu_tanh_t(x: np.ndarray) -> np.ndarray:
    return _GELU_C * (x + 0.044715 * x**3)


def _gelu_tanh(x: np.ndarray) -> np.ndarray:
    # 0.5 x (1 + tanh t) = x * sigmoid(2t): no cancellation for negative x.
    with np.errstate(over="ignore"):
        return x * _sigmoid(2.0 * _gelu_tanh_t(x))


def _dgelu_tanh(x: np.ndarray) -> np.ndarray:
    with np.errstate(over="ignore"):
        t = _gelu_tanh_t(x)
        th = np.tanh(t)
        dt = _GELU_C * (1.0 + 3 * 0.044715 * x * x)
        return 0.5 * (1.0 + th) + 0.5 * x * (1.0 - th * th) * dt


def _dsigmoid(x: np.ndarray) -> np.ndarray:
    s = _sigmoid(x)
    return s * (1.0 - s)


def _mish(x: np.ndarray) -> np.ndarray:
    return x * np.tanh(_softplus(x))


def _dmish(x: np.ndarray) -> np.ndarray:
    sp = _softplus(x)
    t = np.tanh(sp)
    return t + x * (1.0 - t * t) * _sigmoid(x)


def _dist0(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    """Distance of ``[a, b]`` from 0 (0 when it contains 0)."""
    return np.where((a <= 0) & (b >= 0), 0.0, np.minimum(np.abs(a), np.abs(b)))


def _far(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    """Largest ``|z|`` on ``[a, b]``."""
    return np.maximum(np.abs(a), np.abs(b))


# Local bounds on sup |f''| over a cell [a, b], with d = min |z| and D = max |z| on the cell; each is
# a product of bounds of non-negative factors that are monotone in |z| (proofs in the comments).


def _sigmoid_curv(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    # sigma'' = sigma' (1 - 2 sigma), |1 - 2 sigma(z)| = tanh(|z|/2); sigma' decreasing in |z|. Global max 0.0962246.
    d, big = _dist0(a, b), _far(a, b)
    return np.minimum(0.09623, _dsigmoid(d) * np.tanh(big / 2) * (1 + 1e-9) + 1e-300)


def _tanh_curv(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    # tanh'' = -2 tanh sech^2: |tanh| increasing, sech^2 decreasing in |z|. Global max 4/(3 sqrt 3) = 0.7698004.
    d, big = _dist0(a, b), _far(a, b)
    return np.minimum(0.76981, 2.0 * np.tanh(big) * (1.0 - np.tanh(d) ** 2) * (1 + 1e-9) + 1e-300)


def _gelu_curv(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    # gelu'' = phi(z) (2 - z^2): phi decreasing in |z|; |2 - z^2| is largest at an end of [d, D]. Max 2 phi(0).
    d, big = _dist0(a, b), _far(a, b)
    poly = np.maximum(np.abs(2.0 - d * d), np.abs(2.0 - big * big))
    return np.minimum(0.79789, np.exp(-0.5 * d * d) / _SQRT_2PI * poly * (1 + 1e-9) + 1e-300)


def _silu_curv(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    # silu'' = sigma'(z) (2 - |z| tanh(|z|/2)); q(t) = t tanh(t/2) increases, so |2 - q| peaks at an end. Max 0.5.
    d, big = _dist0(a, b), _far(a, b)
    poly = np.maximum(np.abs(2.0 - d * np.tanh(d / 2)), np.abs(2.0 - big * np.tanh(big / 2)))
    return np.minimum(0.5, _dsigmoid(d) * poly * (1 + 1e-9) + 1e-300)


@dataclass(frozen=True)
class _Kind:
    f: Callable[[np.ndarray, float], np.ndarray]
    df: Callable[[np.ndarray, float], np.ndarray]
    lip: Callable[[float], float]  # sup |f'| (global), given alpha
    curv: Callable[[np.ndarray, np.ndarray, float], np.ndarray]  # sup |f''| on [a, b] without kinks inside
    kinks: Callable[[float], tuple[float, ...]]
    # Shape: None = increasing; else (argmin_lo, argmin_hi, min_value_lower_bound) of a quasi-convex f.
    quasi: Callable[[float], tuple[float, float, float] | None]
    s_shaped: bool = False  # sigmoid/tanh: tangent/chord slopes


def _zero_curv(a: np.ndarray, b: np.ndarray, alpha: float) -> np.ndarray:
    return np.zeros(np.broadcast(a, b).shape)


def _const(v: float) -> Callable[[float], float]:
    return lambda alpha: v


def _none(alpha: float) -> None:
    return None


def _neg_alpha_min(alpha: float) -> tuple[float, float, float] | None:
    # leaky_relu / elu with alpha < 0: decreasing on (-inf, 0], increasing after; minimum f(0) = 0.
    return (0.0, 0.0, 0.0) if alpha < 0 else None


# Global constants were computed with mpmath (40 digits) and rounded outward with slack:
#   sup|gelu'| = 1.128904, sup|gelu_tanh'| = 1.128993, sup|silu'| = 1.099839, sup|mish'| = 1.088498
#   sup|gelu_tanh''| = 0.797885 (at 0), sup|mish''| = 0.644205 (at -0.0879)
#   minima: gelu -0.1699712075 at -0.75179, gelu_tanh -0.1700407506 at -0.75246,
#           silu -0.2784645428 at -1.27846, mish -0.3088434130 at -1.19243
_KINDS: dict[str, _Kind] = {
    "identity": _Kind(lambda x, a: x, lambda x, a: np.ones_like(x), _const(1.0), _zero_curv, lambda a: (), _none),
    "relu": _Kind(
        lambda x, a: np.maximum(x, 0.0),
        lambda x, a: (x > 0).astype(np.float64),
        _const(1.0),
        _zero_curv,
        lambda a: (0.0,),
        _none,
    ),
    "leaky_relu": _Kind(
        lambda x, a: np.where(x >= 0, x, a * x),
        lambda x, a: np.where(x > 0, 1.0, a),
        lambda a: max(1.0, abs(a)),
        _zero_curv,
        lambda a: (0.0,),
        _neg_alpha_min,
    ),
    "elu": _Kind(
        lambda x, a: np.where(x > 0, x, a * np.expm1(np.minimum(x, 0.0))),
        lambda x, a: np.where(x > 0, 1.0, a * np.exp(np.minimum(x, 0.0))),
        lambda a: max(1.0, abs(a)),
        lambda lo, hi, a: np.where(lo < 0, abs(a) * np.exp(np.minimum(hi, 0.0)), 0.0),
        lambda a: (0.0,),
        _neg_alpha_min,
    ),
    "selu": _Kind(
        lambda x, a: SELU_SCALE * np.where(x > 0, x, SELU_ALPHA * np.expm1(np.minimum(x, 0.0))),
        lambda x, a: SELU_SCALE * np.where(x > 0, 1.0, SELU_ALPHA * np.exp(np.minimum(x, 0.0))),
        _const(1.7582),
        lambda lo, hi, a: np.where(lo < 0, 1.7582 * np.exp(np.minimum(hi, 0.0)), 0.0),
        lambda a: (0.0,),
        _none,
    ),
    "gelu": _Kind(
        lambda x, a: _gelu(x),
        lambda x, a: _dgelu(x),
        _const(1.15),
        lambda lo, hi, a: _gelu_curv(lo, hi),
        lambda a: (),
        lambda a: (-0.7519, -0.7517, -0.16997121),
    ),
    "gelu_tanh": _Kind(
        lambda x, a: _gelu_tanh(x),
        lambda x, a: _dgelu_tanh(x),
        _const(1.15),
        lambda lo, hi, a: np.full(np.broadcast(lo, hi).shape, 0.85),
        lambda a: (),
        lambda a: (-0.7526, -0.7523, -0.17004076),
    ),
    "sigmoid": _Kind(
        lambda x, a: _sigmoid(x),
        lambda x, a: _dsigmoid(x),
        _const(0.25),
        lambda lo, hi, a: _sigmoid_curv(lo, hi),
        lambda a: (),
        _none,
        True,
    ),
    "tanh": _Kind(
        lambda x, a: np.tanh(x),
        lambda x, a: 1.0 - np.tanh(x) ** 2,
        _const(1.0),
        lambda lo, hi, a: _tanh_curv(lo, hi),
        lambda a: (),
        _none,
        True,
    ),
    "softplus": _Kind(
        lambda x, a: _softplus(x),
        lambda x, a: _sigmoid(x),
        _const(1.0),
        lambda lo, hi, a: np.minimum(0.25, _dsigmoid(_dist0(lo, hi))) * (1 + 1e-9),
        lambda a: (),
        _none,
    ),
    "softsign": _Kind(
        lambda x, a: x / (1.0 + np.abs(x)),
        lambda x, a: 1.0 / (1.0 + np.abs(x)) ** 2,
        _const(1.0),
        lambda lo, hi, a: 2.0 / (1.0 + _dist0(lo, hi)) ** 3 * (1 + 1e-9),
        lambda a: (0.0,),
        _none,
    ),
    "silu": _Kind(
        lambda x, a: x * _sigmoid(x),
        lambda x, a: _sigmoid(x) * (1.0 + x * (1.0 - _sigmoid(x))),
        _const(1.12),
        lambda lo, hi, a: _silu_curv(lo, hi),
        lambda a: (),
        lambda a: (-1.2786, -1.2783, -0.27846455),
    ),
    "mish": _Kind(
        lambda x, a: _mish(x),
        lambda x, a: _dmish(x),
        _const(1.1),
        lambda lo, hi, a: np.full(np.broadcast(lo, hi).shape, 0.70),
        lambda a: (),
        lambda a: (-1.1926, -1.1923, -0.30884342),
    ),
    "hardswish": _Kind(
        lambda x, a: x * np.clip(x + 3.0, 0.0, 6.0) / 6.0,
        lambda x, a: np.where(x < -3, 0.0, np.where(x > 3, 1.0, (2.0 * x + 3.0) / 6.0)),
        _const(1.5),
        lambda lo, hi, a: np.where((lo < 3.0) & (hi > -3.0), 1.0 / 3.0 + 1e-12, 0.0),
        lambda a: (-3.0, 3.0),
        lambda a: (-1.5, -1.5, -0.375),
    ),
    "hardsigmoid": _Kind(
        lambda x, a: np.clip(x + 3.0, 0.0, 6.0) / 6.0,
        lambda x, a: np.where((x > -3) & (x < 3), 1.0 / 6.0, 0.0),
        _const(1.0 / 6.0 + 1e-12),
        _zero_curv,
        lambda a: (-3.0, 3.0),
        _none,
    ),
    "relu6": _Kind(
        lambda x, a: np.clip(x, 0.0, 6.0),
        lambda x, a: ((x > 0) & (x < 6)).astype(np.float64),
        _const(1.0),
        _zero_curv,
        lambda a: (0.0, 6.0),
        _none,
    ),
}


@dataclass
class Relaxation:
    """Per-neuron lines ``kL z + bL <= f(z) <= kU z + bU`` on the neuron's interval.

    ``free`` marks ReLU-family neurons whose one line passes through the origin with a slope
    that may be chosen anywhere in ``[free_lo, free_hi]`` (alpha-CROWN optimises it):
    ``free_side`` is ``"L"`` (the lower line is free) or ``"U"``; ``alpha0`` is CROWN's choice,
    slope = ``free_lo + alpha * (free_hi - free_lo)``.

    Example:
        >>> r = ActivationMath("relu").relax(np.array([-1.0]), np.array([2.0]))
        >>> r.kU.round(4).tolist(), r.free.tolist(), r.alpha0.tolist()
        ([0.6667], [True], [1.0])
    """

    kL: np.ndarray
    bL: np.ndarray
    kU: np.ndarray
    bU: np.ndarray
    free: np.ndarray | None = None
    free_side: str = "L"
    free_lo: np.ndarray | None = None
    free_hi: np.ndarray | None = None
    alpha0: np.ndarray | None = None

    @property
    def free_idx(self) -> np.ndarray:
        """Flat indices of the free (unstable ReLU-family) neurons; alpha-CROWN's parameters are ``(m, F)``."""
        if self.free is None:
            return np.zeros(0, np.int64)
        if getattr(self, "_free_idx", None) is None:
            self._free_idx = np.flatnonzero(self.free)
        return self._free_idx

    def __iter__(self):  # type: ignore[no-untyped-def]
        return iter((self.kL, self.bL, self.kU, self.bU))


class ActivationMath:
    """Math of one element-wise activation (``kind``, ``alpha``) for IBP, CROWN and gradients.

    Example:
        >>> act = ActivationMath("gelu")
        >>> lo, hi = act.ibp(np.array([-2.0]), np.array([1.0]))
        >>> bool(lo[0] <= -0.1699712 and hi[0] >= 0.8413447)
        True
    """

    def __init__(self, kind: str, alpha: float = 0.0) -> None:
        if kind not in _KINDS:
            raise KeyError(kind)
        self.kind = kind
        self.alpha = float(alpha)
        self._k = _KINDS[kind]
        self.lip = self._k.lip(self.alpha)
        self.kinks = self._k.kinks(self.alpha)
        self.quasi = self._k.quasi(self.alpha)

    # -- point evaluations ------------------------------------------------------------------
    def f(self, x: np.ndarray) -> np.ndarray:
        with np.errstate(over="ignore", invalid="ignore", under="ignore"):
            return np.asarray(self._k.f(np.asarray(x, np.float64), self.alpha), np.float64)

    def df(self, x: np.ndarray) -> np.ndarray:
        with np.errstate(over="ignore", invalid="ignore", under="ignore"):
            return np.asarray(self._k.df(np.asarray(x, np.float64), self.alpha), np.float64) + 0.0 * x

    def curv(self, a: np.ndarray, b: np.ndarray) -> np.ndarray:
        with np.errstate(over="ignore", under="ignore"):
            return np.asarray(self._k.curv(a, b, self.alpha), np.float64)

    @staticmethod
    def eval_err(v: np.ndarray, z: np.ndarray) -> np.ndarray:
        """Bound on the float64 evaluation error of ``f(z) = v`` against the real function."""
        return 1e-12 * np.abs(v) + 1e-14 * np.abs(z) + TINY

    # -- interval bounds --------------------------------------------------------------------
    def ibp(self, l: np.ndarray, u: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """Sound ``[min f, max f]`` over ``[l, u]`` element-wise."""
        if self.kind == "identity":
            return l, u
        if self.kind == "relu":
            return np.maximum(l, 0.0), np.maximum(u, 0.0)
        fl, fu = self.f(l), self.f(u)
        el, eu = self.eval_err(fl, l), self.eval_err(fu, u)
        if self.quasi is None:  # increasing
            lo, hi = down(fl - el), up(fu + eu)
        else:
            xlo, xhi, fmin = self.quasi
            lo = np.minimum(fl - el, fu - eu)
            lo = np.where(u <= xlo, fu - eu, np.where(l >= xhi, fl - el, np.minimum(lo, fmin)))
            lo, hi = down(lo), up(np.maximum(fl + el, fu + eu))
        return lo, hi

    # -- linear relaxations -------------------------------------------------------------------
    def relax(self, l: np.ndarray, u: np.ndarray) -> Relaxation:
        """Sound lines on ``[l, u]`` (element-wise), see the module docstring."""
        l = np.asarray(l, np.float64)
        u = np.asarray(u, np.float64)
        if self.kind in ("relu", "leaky_relu"):
            return _relax_relu(l, u, 0.0 if self.kind == "relu" else self.alpha)
        if self.kind == "identity":
            one = np.ones_like(l)
            return Relaxation(one, np.zeros_like(l), one, np.zeros_like(l))
        finite = np.isfinite(l) & np.isfinite(u) & np.isfinite(u - l)
        lf = np.where(finite, l, 0.0)
        uf = np.where(finite, u, 0.0)
        kL, kU = self._slopes(lf, uf)
        degenerate = lf == uf
        kL = np.where(degenerate, 0.0, kL)
        kU = np.where(degenerate, 0.0, kU)
        bL, bU = self.certify(lf, uf, kL, kU)
        if not finite.all():
            ilo, ihi = self.ibp(l, u)
            kL, kU = np.where(finite, kL, 0.0), np.where(finite, kU, 0.0)
            bL, bU = np.where(finite, bL, ilo), np.where(finite, bU, ihi)
        return Relaxation(kL, bL, kU, bU)

    def _slopes(self, l: np.ndarray, u: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        with np.errstate(divide="ignore", invalid="ignore", over="ignore"):
            w = u - l
            k = np.where(w > 0, (self.f(u) - self.f(l)) / np.where(w > 0, w, 1.0), self.df(l))
            k = np.where(np.isfinite(k), k, 0.0)
        if not self._k.s_shaped:
            return k, k
        return _s_shaped_slopes(self, l, u, k)

    def certify(self, l: np.ndarray, u: np.ndarray, kL: np.ndarray, kU: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """Intercepts with ``kL z + bL <= f(z) <= kU z + bU`` on ``[l, u]`` (finite, ``l <= u``)."""
        n = l.size
        if n == 0:
            return np.zeros(0), np.zeros(0)
        l1, u1 = l.reshape(-1, 1), u.reshape(-1, 1)
        t = np.linspace(0.0, 1.0, GRID)
        z = np.clip(l1 + (u1 - l1) * t, l1, u1)
        z[:, 0], z[:, -1] = l, u
        if self.kinks:
            z = np.sort(np.concatenate([z, np.clip(np.asarray(self.kinks)[None, :], l1, u1)], axis=1), axis=1)
        fz = self.f(z)
        zmax = np.maximum(np.abs(l), np.abs(u))
        fmax = np.max(np.abs(fz), axis=1)
        lo = self._extreme(z, fz, kL.reshape(-1, 1), -1.0)
        hi = self._extreme(z, fz, kU.reshape(-1, 1), 1.0)
        margin_l = 1e-12 * (1.0 + fmax + np.abs(kL) * zmax) + 1e-14 * zmax + TINY
        margin_u = 1e-12 * (1.0 + fmax + np.abs(kU) * zmax) + 1e-14 * zmax + TINY
        return down(lo - margin_l), up(hi + margin_u)

    def _cell_bounds(self, a: np.ndarray, b: np.ndarray, ga: np.ndarray, gb: np.ndarray, k: np.ndarray) -> np.ndarray:
        """Upper bound of ``s g`` on each cell ``[a, b]`` given the end values ``ga = s g(a)``, ``gb = s g(b)``."""
        h = (b - a) * (1.0 + 4 * U)
        slack = np.minimum(self.curv(a, b) * h * h / 8.0, (self.lip + np.abs(k)) * h / 2.0)
        return np.maximum(ga, gb) + slack

    def _extreme(self, z: np.ndarray, fz: np.ndarray, k: np.ndarray, sign: float) -> np.ndarray:
        """Rigorous ``min g`` (sign=-1) or ``max g`` (sign=+1) of ``g = f - k z`` on ``[z_0, z_-1]``.

        Cells start as the grid cells; each round splits the cell with the worst bound into
        ``REFINE_GRID - 1`` sub-cells (adaptive refinement towards the extremum).
        """
        sg = sign * (fz - k * z)
        a, b = z[:, :-1].copy(), z[:, 1:].copy()
        ga, gb = sg[:, :-1], sg[:, 1:]
        bound = self._cell_bounds(a, b, ga, gb, k)
        rows = np.arange(z.shape[0])
        t = np.linspace(0.0, 1.0, REFINE_GRID)
        for _ in range(REFINE_ROUNDS):
            if bound.shape[1] == 0:
                break
            pick = np.argmax(bound, axis=1)
            pa, pb, parent = a[rows, pick], b[rows, pick], bound[rows, pick]
            zs = np.clip(pa[:, None] + (pb - pa)[:, None] * t, pa[:, None], pb[:, None])
            zs[:, 0], zs[:, -1] = pa, pb
            gs = sign * (self.f(zs) - k * zs)
            sub = np.minimum(self._cell_bounds(zs[:, :-1], zs[:, 1:], gs[:, :-1], gs[:, 1:], k), parent[:, None])
            a[rows, pick], b[rows, pick], bound[rows, pick] = zs[:, 0], zs[:, 1], sub[:, 0]
            a = np.concatenate([a, zs[:, 1:-1]], axis=1)
            b = np.concatenate([b, zs[:, 2:]], axis=1)
            bound = np.concatenate([bound, sub[:, 1:]], axis=1)
        best = np.max(bound, axis=1) if bound.shape[1] else sg[:, 0]
        return sign * best


def _relax_relu(l: np.ndarray, u: np.ndarray, a: float) -> Relaxation:
    """LeakyReLU (``a``; ReLU when 0): identity/linear when stable, triangle when unstable."""
    active = l >= 0
    inactive = u <= 0
    unstable = ~active & ~inactive
    with np.errstate(divide="ignore", invalid="ignore", over="ignore"):
        w = np.where(unstable, u - l, 1.0)
        s = np.where(unstable, (u - a * l) / w, 1.0)
        b = np.where(unstable, -(1.0 - a) * l * u / w, 0.0)
        # The chord is exact in reals only up to the rounding of s and b: push it outwards. The line's
        # error at |z| <= max(|l|, u) <= u - l is below 2u(|a l| + u) + 2u |s| max(|l|, u) + 5u |b|.
        m = 16 * U * (np.abs(s) * np.maximum(np.abs(l), np.abs(u)) + np.abs(b) + np.abs(a * l) + np.abs(u)) + TINY
    stable_slope = np.where(active, 1.0, a)
    zeros = np.zeros_like(l)
    lo_slope, hi_slope = min(a, 1.0), max(a, 1.0)
    free_lo = np.full(l.shape, lo_slope)
    free_hi = np.full(l.shape, hi_slope)
    big_pos = u >= -l
    if a <= 1.0:  # convex: chord above, free line through 0 below
        alpha0 = np.where(big_pos, 1.0, 0.0)
        kL = np.where(unstable, np.where(big_pos, hi_slope, lo_slope), stable_slope)
        kU = np.where(unstable, s, stable_slope)
        bU = np.where(unstable, up(b + m), 0.0)
        return Relaxation(kL, zeros, kU, bU, unstable, "L", free_lo, free_hi, alpha0)
    alpha0 = np.where(big_pos, 0.0, 1.0)  # concave: chord below, free line above
    kU = np.where(unstable, np.where(big_pos, lo_slope, hi_slope), stable_slope)
    kL = np.where(unstable, s, stable_slope)
    bL = np.where(unstable, down(b - m), 0.0)
    return Relaxation(kL, bL, kU, zeros, unstable, "U", free_lo, free_hi, alpha0)


def _bisect(fun: Callable[[np.ndarray], np.ndarray], lo: np.ndarray, hi: np.ndarray, iters: int = 48) -> np.ndarray:
    """Vectorised bisection for a sign change of ``fun`` (``fun(lo) <= 0 <= fun(hi)``)."""
    lo, hi = lo.copy(), hi.copy()
    for _ in range(iters):
        mid = 0.5 * (lo + hi)
        neg = fun(mid) <= 0
        lo = np.where(neg, mid, lo)
        hi = np.where(neg, hi, mid)
    return 0.5 * (lo + hi)


def _s_shaped_slopes(act: ActivationMath, l: np.ndarray, u: np.ndarray, k: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """CROWN's tangent/chord slopes for sigmoid and tanh (convex on z <= 0, concave on z >= 0)."""
    mid = 0.5 * (l + u)
    dmid = act.df(mid)
    fl, fu = act.f(l), act.f(u)
    dl, du = act.df(l), act.df(u)
    kL = np.where(l >= 0, k, dmid)  # concave part: chord below; convex part: tangent at the midpoint
    kU = np.where(u <= 0, k, dmid)  # convex part: chord above; concave: tangent
    cross = (l < 0) & (u > 0)
    if cross.any():
        lc, uc, kc = l[cross], u[cross], k[cross]
        # Upper: the chord if it stays above (k <= f'(u)), else the tangent at d >= 0 through (l, f(l)).
        d_up = _bisect(lambda d: act.f(d) + act.df(d) * (lc - d) - fl[cross], np.zeros_like(uc), uc)
        up_slope = np.where(kc <= du[cross], kc, act.df(d_up))
        # Lower: the chord if it stays below (k <= f'(l)), else the tangent at d <= 0 through (u, f(u)).
        d_lo = _bisect(lambda d: act.f(d) + act.df(d) * (uc - d) - fu[cross], lc, np.zeros_like(lc))
        lo_slope = np.where(kc <= dl[cross], kc, act.df(d_lo))
        kU = kU.copy()
        kL = kL.copy()
        kU[cross] = up_slope
        kL[cross] = lo_slope
    return kL, kU


def supported_kinds() -> tuple[str, ...]:
    """Activation kinds with bounds (all of :data:`axiom.backends.base.ACTIVATIONS`).

    Example:
        >>> "gelu" in supported_kinds()
        True
    """
    return tuple(_KINDS)
