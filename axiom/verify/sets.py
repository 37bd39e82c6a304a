"""Input sets: Box, L-inf ball, L2 ball, union of boxes.

Every set describes the inputs of ONE example (no batch axis). Scalars broadcast to the
model's input shape when the set is bound to a model (:meth:`InputSet.bind`).

Example:
    >>> import numpy as np
    >>> from axiom.verify import Box, LinfBall
    >>> box = Box(0.0, 1.0, shape=(2,))
    >>> box.contains(np.array([0.5, 1.0]))
    True
    >>> LinfBall(np.array([0.5, 0.5]), eps=0.1).to_box().upper.tolist()
    [0.6, 0.6]
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import numpy as np


def _as_f64(x: Any, what: str) -> np.ndarray:
    arr = np.asarray(x.data if hasattr(x, "data") and not isinstance(x, np.ndarray) else x, dtype=np.float64)
    if np.isnan(arr).any():
        raise ValueError(f"{what} contains NaN")
    return arr


class InputSet:
    """Base class of input sets. Subclasses implement the methods below.

    Example:
        >>> s = Box(0.0, 1.0).bind((2,))
        >>> isinstance(s, InputSet), s.shape, len(s.boxes())
        (True, (2,), 1)
    """

    shape: tuple[int, ...] | None = None

    def bind(self, shape: Sequence[int]) -> InputSet:
        """This set with scalars broadcast to ``shape`` (one example); raises ValueError on mismatch."""
        raise NotImplementedError

    def boxes(self) -> list[Box]:
        """Boxes whose union covers the set (one for a box or ball, several for a union)."""
        return [self.to_box()]

    def to_box(self) -> Box:
        """The smallest axis-aligned box containing the set."""
        raise NotImplementedError

    def contains(self, x: np.ndarray, tol: float = 0.0) -> bool:
        """True when ``x`` (one example) lies in the set (up to ``tol``)."""
        raise NotImplementedError

    def sample(self, n: int, rng: np.random.Generator) -> np.ndarray:
        """``n`` points of the set, shape ``(n, *shape)``, float64."""
        raise NotImplementedError

    def project(self, x: np.ndarray) -> np.ndarray:
        """The nearest point(s) of the set (for attacks); ``x`` may carry a leading batch axis."""
        raise NotImplementedError

    def to_json(self) -> dict[str, Any]:
        raise NotImplementedError


class Box(InputSet):
    """``lower <= x <= upper`` element-wise.

    Example:
        >>> Box([0, -1], [1, 1]).center.tolist()
        [0.5, 0.0]
    """

    def __init__(self, lower: Any, upper: Any, shape: Sequence[int] | None = None) -> None:
        lo = _as_f64(lower, "Box lower bound")
        hi = _as_f64(upper, "Box upper bound")
        if shape is not None:
            shape = tuple(int(s) for s in shape)
            lo, hi = np.broadcast_to(lo, shape).copy(), np.broadcast_to(hi, shape).copy()
        else:
            try:
                lo, hi = (a.copy() for a in np.broadcast_arrays(lo, hi))
            except ValueError as err:
                raise ValueError(f"Box: lower {lo.shape} and upper {hi.shape} do not broadcast") from err
        if np.any(lo > hi):
            i = tuple(int(v) for v in np.argwhere(lo > hi)[0])
            raise ValueError(f"Box: lower > upper at index {i} ({lo[i]} > {hi[i]})")
        self.lower = lo
        self.upper = hi
        self.shape = lo.shape if lo.ndim else None

    @property
    def center(self) -> np.ndarray:
        return (self.lower + self.upper) / 2

    @property
    def radius(self) -> np.ndarray:
        return (self.upper - self.lower) / 2

    def bind(self, shape: Sequence[int]) -> Box:
        shape = tuple(int(s) for s in shape)
        if self.lower.shape == shape:
            return self
        try:
            return Box(self.lower, self.upper, shape=shape)
        except ValueError as err:
            raise ValueError(f"Box of shape {self.lower.shape} does not fit the model input of shape {shape}") from err

    def to_box(self) -> Box:
        return self

    def contains(self, x: np.ndarray, tol: float = 0.0) -> bool:
        x = np.asarray(x, np.float64)
        return bool(np.all(x >= self.lower - tol) and np.all(x <= self.upper + tol))

    def sample(self, n: int, rng: np.random.Generator) -> np.ndarray:
        u = rng.random((n, *self.lower.shape))
        return np.clip(self.lower + u * (self.upper - self.lower), self.lower, self.upper)

    def project(self, x: np.ndarray) -> np.ndarray:
        return np.clip(x, self.lower, self.upper)

    def split(self, axis_index: int | None = None) -> tuple[Box, Box]:
        """Two halves along the flat index ``axis_index`` (default: the widest)."""
        flat_lo, flat_hi = self.lower.ravel(), self.upper.ravel()
        i = int(np.argmax(flat_hi - flat_lo)) if axis_index is None else axis_index
        mid = (flat_lo[i] + flat_hi[i]) / 2
        hi1, lo2 = flat_hi.copy(), flat_lo.copy()
        hi1[i], lo2[i] = mid, mid
        return Box(flat_lo, hi1).reshape(self.lower.shape), Box(lo2, flat_hi).reshape(self.lower.shape)

    def reshape(self, shape: Sequence[int]) -> Box:
        return Box(self.lower.reshape(shape), self.upper.reshape(shape))

    def to_json(self) -> dict[str, Any]:
        return {"type": "box", "lower": self.lower.tolist(), "upper": self.upper.tolist()}

    def __repr__(self) -> str:
        return f"Box(shape={self.lower.shape}, width_max={float(np.max(self.upper - self.lower, initial=0)):.3g})"


class LinfBall(InputSet):
    """``||x - center||_inf <= eps``, optionally intersected with a ``clip=(lo, hi)`` domain box.

    Example:
        >>> LinfBall([0.95], eps=0.1, clip=(0, 1)).to_box().upper.tolist()
        [1.0]
    """

    norm = "inf"

    def __init__(self, center: Any, eps: float, clip: tuple[Any, Any] | None = None) -> None:
        if not np.isfinite(eps) or eps < 0:
            raise ValueError(f"{type(self).__name__}: eps must be a finite number >= 0, got {eps}")
        self.center = _as_f64(center, f"{type(self).__name__} center")
        self.eps = float(eps)
        self.clip = clip
        self.shape = self.center.shape

    def bind(self, shape: Sequence[int]) -> InputSet:
        shape = tuple(int(s) for s in shape)
        if self.center.shape != shape:
            if self.center.size != int(np.prod(shape)):
                raise ValueError(
                    f"{type(self).__name__} center of shape {self.center.shape} does not fit the model input {shape}"
                )
            return type(self)(self.center.reshape(shape), self.eps, self.clip)
        return self

    def to_box(self) -> Box:
        lo, hi = self.center - self.eps, self.center + self.eps
        if self.clip is not None:
            lo = np.maximum(lo, np.asarray(self.clip[0], np.float64))
            hi = np.minimum(hi, np.asarray(self.clip[1], np.float64))
            hi = np.maximum(hi, lo)
        return Box(lo, hi)

    def contains(self, x: np.ndarray, tol: float = 0.0) -> bool:
        return self.to_box().contains(x, tol)

    def sample(self, n: int, rng: np.random.Generator) -> np.ndarray:
        return self.to_box().sample(n, rng)

    def project(self, x: np.ndarray) -> np.ndarray:
        return self.to_box().project(x)

    def to_json(self) -> dict[str, Any]:
        clip = None if self.clip is None else [np.asarray(c, float).tolist() for c in self.clip]
        return {"type": "linf_ball", "center": self.center.tolist(), "eps": self.eps, "clip": clip}


class L2Ball(LinfBall):
    """``||x - center||_2 <= eps`` (optionally intersected with ``clip``).

    Example:
        >>> ball = L2Ball([0.0, 0.0], eps=1.0)
        >>> ball.contains(np.array([0.6, 0.8])), ball.contains(np.array([0.8, 0.8]))
        (True, False)
    """

    norm = "2"

    def contains(self, x: np.ndarray, tol: float = 0.0) -> bool:
        x = np.asarray(x, np.float64)
        inside = float(np.linalg.norm((x - self.center).ravel())) <= self.eps + tol
        return inside and (self.clip is None or self.to_box().contains(x, tol))

    def sample(self, n: int, rng: np.random.Generator) -> np.ndarray:
        d = self.center.size
        direction = rng.standard_normal((n, d))
        direction /= np.maximum(np.linalg.norm(direction, axis=1, keepdims=True), 1e-300)
        radius = self.eps * rng.random((n, 1)) ** (1.0 / max(d, 1))
        pts = self.center.ravel() + direction * radius
        return self.project(pts.reshape(n, *self.center.shape))

    def project(self, x: np.ndarray) -> np.ndarray:
        x = np.asarray(x, np.float64)
        batched = x.shape != self.center.shape
        flat = (x - self.center).reshape(x.shape[0] if batched else 1, -1)
        norms = np.linalg.norm(flat, axis=1, keepdims=True)
        flat = flat * np.minimum(1.0, self.eps / np.maximum(norms, 1e-300))
        out = self.center + flat.reshape(x.shape)
        if self.clip is not None:
            out = np.clip(out, self.clip[0], self.clip[1])
        return out

    def to_json(self) -> dict[str, Any]:
        return {**super().to_json(), "type": "l2_ball"}


class BoxUnion(InputSet):
    """A union of boxes (e.g. from a VNN-LIB ``(or (and ...) ...)`` over inputs).

    Example:
        >>> u = BoxUnion([Box([0], [1]), Box([2], [3])])
        >>> u.contains(np.array([2.5])), u.contains(np.array([1.5]))
        (True, False)
    """

    def __init__(self, boxes: Sequence[Box]) -> None:
        if not boxes:
            raise ValueError("BoxUnion needs at least one box")
        self._boxes = list(boxes)
        self.shape = self._boxes[0].shape

    def bind(self, shape: Sequence[int]) -> BoxUnion:
        return BoxUnion([b.bind(shape) for b in self._boxes])

    def boxes(self) -> list[Box]:
        return list(self._boxes)

    def to_box(self) -> Box:
        return Box(
            np.min([b.lower for b in self._boxes], axis=0),
            np.max([b.upper for b in self._boxes], axis=0),
        )

    def contains(self, x: np.ndarray, tol: float = 0.0) -> bool:
        return any(b.contains(x, tol) for b in self._boxes)

    def sample(self, n: int, rng: np.random.Generator) -> np.ndarray:
        which = rng.integers(0, len(self._boxes), size=n)
        return np.stack([self._boxes[i].sample(1, rng)[0] for i in which]) if n else self.to_box().sample(0, rng)

    def project(self, x: np.ndarray) -> np.ndarray:
        # Nearest box per point.
        cands = np.stack([b.project(x) for b in self._boxes])
        axes = tuple(range(2, cands.ndim)) if x.ndim > len(self._boxes[0].lower.shape) else tuple(range(1, cands.ndim))
        dist = ((cands - x) ** 2).sum(axis=axes)
        best = np.argmin(dist, axis=0)
        if np.ndim(best) == 0:
            return cands[int(best)]
        return cands[best, np.arange(x.shape[0])]

    def to_json(self) -> dict[str, Any]:
        return {"type": "box_union", "boxes": [b.to_json() for b in self._boxes]}
