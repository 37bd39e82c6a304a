"""Activation relaxations and ranges of axiom.verify.bounds: sound on dense grids, for every kind.

Intervals include tiny, huge, degenerate, far-negative/far-positive ones and ones straddling
kinks. Lines are checked in float64 on dense grids (their margins are ~1e-12 relative, far above
float64 evaluation error) and, at the tightest points, in 40-digit arithmetic with mpmath.
"""

from __future__ import annotations

import math

import mpmath
import numpy as np
import pytest
from hypothesis import given
from hypothesis import strategies as st

from axiom.backends.base import ACTIVATIONS
from axiom.backends.reference import ReferenceBackend
from axiom.verify.bounds._act import SELU_ALPHA, SELU_SCALE, ActivationMath

KINDS = [(k, None) for k in ACTIVATIONS] + [
    ("leaky_relu", -0.5),
    ("leaky_relu", 0.3),
    ("leaky_relu", 2.0),
    ("elu", 0.5),
    ("elu", -0.7),
    ("elu", 2.5),
]
ALPHA_DEFAULT = {"leaky_relu": 0.01, "elu": 1.0}

INTERVALS = [
    (-2.0, 3.0),
    (-0.5, 0.5),
    (0.1, 0.2),
    (-1.0, -0.9),
    (1.0, 1.0),
    (0.0, 0.0),
    (-3.0, -3.0),
    (2.5, 2.5 + 1e-12),
    (-1e-9, 1e-9),
    (-0.7518, -0.7517),
    (-50.0, 40.0),
    (-1000.0, 1000.0),
    (-1e5, 3.0),
    (-100.0, -90.0),
    (-800.0, -700.0),
    (90.0, 100.0),
    (700.0, 800.0),
    (-3.0001, -2.9999),
    (5.99, 6.01),
    (-6.0, 6.0),
    (-3.0, 3.0),
    (1e-300, 1e-299),
]


def _mp_f(kind: str, alpha: float, x: mpmath.mpf) -> mpmath.mpf:
    if kind == "identity":
        return x
    if kind == "relu":
        return max(x, 0)
    if kind == "leaky_relu":
        return x if x >= 0 else alpha * x
    if kind == "elu":
        return x if x > 0 else alpha * (mpmath.e**x - 1)
    if kind == "selu":
        return SELU_SCALE * (x if x > 0 else SELU_ALPHA * (mpmath.e**x - 1))
    if kind == "gelu":
        return x * mpmath.ncdf(x)
    if kind == "gelu_tanh":
        return 0.5 * x * (1 + mpmath.tanh(mpmath.sqrt(2 / mpmath.pi) * (x + mpmath.mpf(0.044715) * x**3)))
    if kind == "sigmoid":
        return 1 / (1 + mpmath.e ** (-x))
    if kind == "tanh":
        return mpmath.tanh(x)
    if kind == "softplus":
        return mpmath.log(1 + mpmath.e**x)
    if kind == "softsign":
        return x / (1 + abs(x))
    if kind == "silu":
        return x / (1 + mpmath.e ** (-x))
    if kind == "mish":
        return x * mpmath.tanh(mpmath.log(1 + mpmath.e**x))
    if kind == "hardswish":
        return x * min(max(x + 3, 0), 6) / 6
    if kind == "hardsigmoid":
        return min(max(x + 3, 0), 6) / 6
    if kind == "relu6":
        return min(max(x, 0), 6)
    raise KeyError(kind)


def _grid(l: float, u: float, act: ActivationMath, n: int = 4001) -> np.ndarray:
    z = np.linspace(l, u, n)
    extra = [k for k in act.kinks if l <= k <= u]
    if act.quasi is not None:
        extra += [min(max(v, l), u) for v in act.quasi[:2]]
    return np.unique(np.clip(np.concatenate([z, [l, u], extra]), l, u))


def _check_lines(kind: str, alpha: float | None, l: float, u: float) -> None:
    a = ALPHA_DEFAULT.get(kind, 0.0) if alpha is None else alpha
    act = ActivationMath(kind, a)
    r = act.relax(np.array([l]), np.array([u]))
    kL, bL, kU, bU = (float(v[0]) for v in r)
    z = _grid(l, u, act)
    fz = act.f(z)
    low = kL * z + bL
    high = kU * z + bU
    assert np.all(low <= fz), (kind, a, l, u, float(np.max(low - fz)))
    assert np.all(fz <= high), (kind, a, l, u, float(np.max(fz - high)))
    # exact check (40 digits) at the tightest points of both lines
    with mpmath.workdps(40):
        for i in {int(np.argmax(low - fz)), int(np.argmax(fz - high)), 0, len(z) - 1}:
            x = mpmath.mpf(float(z[i]))
            fx = _mp_f(kind, a, x)
            assert mpmath.mpf(kL) * x + mpmath.mpf(bL) <= fx, (kind, a, l, u, z[i])
            assert fx <= mpmath.mpf(kU) * x + mpmath.mpf(bU), (kind, a, l, u, z[i])
    # the interval range contains f as well
    lo, hi = act.ibp(np.array([l]), np.array([u]))
    assert np.all(lo[0] <= fz) and np.all(fz <= hi[0]), (kind, a, l, u)


@pytest.mark.parametrize("kind,alpha", KINDS, ids=[f"{k}-{a}" for k, a in KINDS])
def test_relaxation_lines_bound_f_on_fixed_intervals(kind: str, alpha: float | None) -> None:
    for l, u in INTERVALS:
        _check_lines(kind, alpha, l, u)


@st.composite
def intervals(draw):
    centre = draw(st.sampled_from([1.0, -1.0])) * 10 ** draw(st.floats(-6, 3))
    if draw(st.booleans()):
        centre = draw(st.floats(-8, 8))
    width = draw(st.sampled_from([0.0, 1.0])) * 10 ** draw(st.floats(-12, 3.5))
    return centre - width / 2, centre + width / 2


@given(kind=st.sampled_from(KINDS), iv=intervals())
def test_relaxation_lines_bound_f_on_random_intervals(kind, iv) -> None:
    _check_lines(kind[0], kind[1], *iv)


def test_vectorised_relaxation_matches_single_and_is_sound() -> None:
    rng = np.random.default_rng(0)
    l = rng.normal(0, 3, 500)
    u = l + rng.exponential(2, 500) * (rng.random(500) < 0.9)
    for kind in ACTIVATIONS:
        act = ActivationMath(kind, ALPHA_DEFAULT.get(kind, 0.0))
        r = act.relax(l, u)
        t = np.linspace(0, 1, 301)
        z = l[:, None] + (u - l)[:, None] * t
        fz = act.f(z)
        assert np.all(r.kL[:, None] * z + r.bL[:, None] <= fz), kind
        assert np.all(fz <= r.kU[:, None] * z + r.bU[:, None]), kind
        lo, hi = act.ibp(l, u)
        assert np.all(lo[:, None] <= fz) and np.all(fz <= hi[:, None]), kind


def test_functions_match_the_reference_backend() -> None:
    be = ReferenceBackend()
    x = np.concatenate([np.linspace(-30, 30, 2001), [-700.0, 700.0, 0.0]])
    for kind, alpha in KINDS:
        a = ALPHA_DEFAULT.get(kind, 0.0) if alpha is None else alpha
        ours = ActivationMath(kind, a).f(x)
        ref = be.activation(x, kind, a)
        np.testing.assert_allclose(ours, ref, rtol=1e-13, atol=1e-15, err_msg=kind)  # the reference loses ~1e-16 abs


def test_derivative_curvature_and_minimum_constants_are_safe() -> None:
    """lip >= |f'|, curv(a, b) >= |f''| per cell, the quasi-convex minima are rigorous lower bounds."""
    for kind, alpha in KINDS:
        a = ALPHA_DEFAULT.get(kind, 0.0) if alpha is None else alpha
        act = ActivationMath(kind, a)
        x = np.linspace(-40, 40, 400001)
        assert np.max(np.abs(act.df(x))) <= act.lip, kind
        # f'' by central differences of f' away from kinks
        h = 1e-5
        keep = np.all(np.abs(x[:, None] - np.array(act.kinks or [np.inf])[None, :]) > 2 * h, axis=1)
        xs = x[keep]
        f2 = (act.df(xs + h) - act.df(xs - h)) / (2 * h)
        cells = np.linspace(-40, 40, 801)
        which = np.clip(np.searchsorted(cells, xs) - 1, 0, len(cells) - 2)
        bound = act.curv(cells[which], cells[which + 1])
        assert np.all(np.abs(f2) <= bound * (1 + 1e-4) + 1e-9), (kind, float(np.max(np.abs(f2) - bound)))
        # derivative of f matches f' (catches a wrong analytic derivative)
        fd = (act.f(xs + h) - act.f(xs - h)) / (2 * h)
        np.testing.assert_allclose(act.df(xs), fd, rtol=1e-5, atol=1e-7, err_msg=kind)
        if act.quasi is not None:
            xlo, xhi, fmin = act.quasi
            fx = act.f(np.linspace(-20, 20, 2000001))
            assert fmin <= fx.min(), kind
            arg = np.linspace(-20, 20, 2000001)[np.argmin(fx)]
            assert xlo - 1e-4 <= arg <= xhi + 1e-4, (kind, arg)


def test_relu_family_relaxation_is_the_triangle() -> None:
    act = ActivationMath("relu")
    r = act.relax(np.array([-1.0, -2.0, 1.0, -3.0]), np.array([3.0, 1.0, 2.0, -1.0]))
    assert r.kU[0] == pytest.approx(0.75) and r.bU[0] == pytest.approx(0.75)
    assert r.kL.tolist()[:2] == [1.0, 0.0]  # CROWN's adaptive choice: 1 if u >= -l else 0
    assert r.kL[2] == r.kU[2] == 1.0 and r.kL[3] == r.kU[3] == 0.0  # stable
    assert r.free.tolist() == [True, True, False, False]


def test_s_shaped_relaxations_are_tight_on_small_intervals() -> None:
    for kind in ("sigmoid", "tanh"):
        act = ActivationMath(kind)
        for l, u in [(-1.0, -0.5), (0.5, 1.0), (-0.3, 0.2), (-4.0, 1.0), (-1.0, 4.0)]:
            r = act.relax(np.array([l]), np.array([u]))
            z = np.linspace(l, u, 10001)
            fz = act.f(z)
            gap_lo = np.min(fz - (r.kL[0] * z + r.bL[0]))
            gap_hi = np.min(r.kU[0] * z + r.bU[0] - fz)
            # each line touches f up to the certification slack
            tol = 1e-6 * max(1.0, u - l)
            assert 0 <= gap_lo < tol and 0 <= gap_hi < tol, (kind, l, u, gap_lo, gap_hi)


def test_gelu_range_uses_the_minimum() -> None:
    act = ActivationMath("gelu")
    lo, hi = act.ibp(np.array([-3.0, -0.5]), np.array([1.0, 0.5]))
    assert lo[0] <= -0.1699712 and lo[0] > -0.1699713
    assert lo[1] == pytest.approx(0.5 * -0.5 * (1 + math.erf(-0.5 / math.sqrt(2))), rel=1e-9)
