"""Floating-point helpers for outward rounding (internal).

All bound computations run in float64 (unit roundoff ``U = 2**-53``). A sum of ``n`` products
computed in any order has absolute error at most ``gamma(n) * sum(|terms|)`` (Higham, Accuracy
and Stability of Numerical Algorithms, Lemma 3.1 and Eq. 3.5), for BLAS blocking and FMA too.
Every routine that adds such a term also multiplies the estimate by 2, which covers the
rounding in computing the estimate itself and the coefficient representation errors that the
callers fold in.

Example:
    >>> from axiom.verify.bounds._fp import gamma, down
    >>> gamma(10) > 10 * 2.0**-53
    True
    >>> float(down(1.0)) < 1.0
    True
"""

from __future__ import annotations

import numpy as np

#: Unit roundoff of float64 (round to nearest).
U = 2.0**-53

#: Absolute slack added where a value may underflow (denormals start near 4.9e-324).
TINY = 1e-300


def gamma(n: float) -> float:
    """``n*U / (1 - n*U)``: the relative error bound of an ``n``-term float64 dot product.

    Example:
        >>> round(gamma(1) / 2.0**-53, 6)
        1.0
    """
    nu = float(n) * U
    if nu >= 0.5:
        raise ValueError(f"dot products of {n} terms are too long for the rounding-error model")
    return nu / (1.0 - nu)


def down(x: np.ndarray | float) -> np.ndarray:
    """The next float64 towards -inf (covers one round-to-nearest operation that produced ``x``).

    Example:
        >>> float(down(0.0)) < 0.0
        True
    """
    return np.nextafter(np.asarray(x, np.float64), -np.inf)


def up(x: np.ndarray | float) -> np.ndarray:
    """The next float64 towards +inf.

    Example:
        >>> float(up(1.0)) > 1.0
        True
    """
    return np.nextafter(np.asarray(x, np.float64), np.inf)


def sanitize(lower: np.ndarray, upper: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Replace NaN by the widest value (-inf below, +inf above): never turns NaN into a claim.

    Example:
        >>> lo, hi = sanitize(np.array([np.nan, 1.0]), np.array([2.0, np.nan]))
        >>> lo.tolist(), hi.tolist()
        ([-inf, 1.0], [2.0, inf])
    """
    lower = np.where(np.isnan(lower), -np.inf, lower)
    upper = np.where(np.isnan(upper), np.inf, upper)
    return lower, upper


def magnitude(lower: np.ndarray, upper: np.ndarray) -> np.ndarray:
    """``max(|lower|, |upper|)``: a bound on ``|x|`` for every ``x`` in the interval.

    Example:
        >>> magnitude(np.array([-3.0]), np.array([2.0])).tolist()
        [3.0]
    """
    return np.maximum(np.abs(lower), np.abs(upper))


def center_radius(lower: np.ndarray, upper: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """``(c, r)`` with ``[c - r, c + r]`` containing ``[lower, upper]`` in real arithmetic.

    The radius is inflated by the rounding of ``(l + u) / 2`` and ``(u - l) / 2``.

    Example:
        >>> c, r = center_radius(np.array([0.0]), np.array([1.0]))
        >>> bool(c[0] - r[0] <= 0.0 and c[0] + r[0] >= 1.0)
        True
    """
    c = 0.5 * lower + 0.5 * upper
    r = 0.5 * upper - 0.5 * lower
    r = up(r + 4 * U * (np.abs(c) + r) + TINY * (r > 0))
    r = np.where(lower == upper, 0.0, r)
    c = np.where(lower == upper, lower, c)
    return c, r
