"""Parameter initialisers and the random source layers draw from.

``manual_seed(n)`` makes every later initialisation reproducible.

Example:
    >>> from axiom.nn import init
    >>> init.manual_seed(0)
    >>> w = init.uniform((3, 2), bound=0.5)
    >>> w.shape, bool(abs(w).max() <= 0.5)
    ((3, 2), True)
"""

from __future__ import annotations

import math
from typing import Any

import numpy as np

_rng = np.random.default_rng()


def manual_seed(seed: int) -> None:
    """Seed the generator used for parameter initialisation and Dropout masks."""
    global _rng
    _rng = np.random.default_rng(seed)


def generator() -> np.random.Generator:
    """The current generator (after ``manual_seed``, deterministic)."""
    return _rng


def uniform(shape: tuple[int, ...], bound: float, dtype: Any = np.float32) -> np.ndarray:
    """Uniform in ``[-bound, bound]``."""
    return _rng.uniform(-bound, bound, size=shape).astype(dtype)


def fan_in_uniform(shape: tuple[int, ...], fan_in: int, dtype: Any = np.float32) -> np.ndarray:
    """PyTorch's default for Linear/Conv weights and biases: ``U(-1/sqrt(fan_in), 1/sqrt(fan_in))``.

    (Kaiming-uniform with ``a=sqrt(5)`` reduces to this bound.)
    """
    return uniform(shape, 1.0 / math.sqrt(max(fan_in, 1)), dtype)


def normal(shape: tuple[int, ...], std: float = 1.0, dtype: Any = np.float32) -> np.ndarray:
    """Normal with mean 0 and standard deviation ``std``."""
    return (_rng.standard_normal(size=shape) * std).astype(dtype)


def xavier_uniform(shape: tuple[int, ...], fan_in: int, fan_out: int, dtype: Any = np.float32) -> np.ndarray:
    """Glorot uniform: ``U(-a, a)`` with ``a = sqrt(6 / (fan_in + fan_out))``."""
    return uniform(shape, math.sqrt(6.0 / max(fan_in + fan_out, 1)), dtype)
