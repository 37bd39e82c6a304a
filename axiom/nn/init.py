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
    """Seed the generator used for parameter initialisation and Dropout masks.

    Example:
        >>> manual_seed(0); a = uniform((2,), bound=1.0)
        >>> manual_seed(0); b = uniform((2,), bound=1.0)
        >>> a.tolist() == b.tolist()
        True
    """
    global _rng
    _rng = np.random.default_rng(seed)


def generator() -> np.random.Generator:
    """The current generator (after ``manual_seed``, deterministic).

    Example:
        >>> manual_seed(1)
        >>> x = generator().random()
        >>> manual_seed(1)
        >>> generator().random() == x
        True
    """
    return _rng


def uniform(shape: tuple[int, ...], bound: float, dtype: Any = np.float32) -> np.ndarray:
    """Uniform in ``[-bound, bound]``.

    Example:
        >>> w = uniform((4, 3), bound=0.1)
        >>> w.shape, w.dtype.name, bool(abs(w).max() <= 0.1)
        ((4, 3), 'float32', True)
    """
    return _rng.uniform(-bound, bound, size=shape).astype(dtype)


def fan_in_uniform(shape: tuple[int, ...], fan_in: int, dtype: Any = np.float32) -> np.ndarray:
    """PyTorch's default for Linear/Conv weights and biases: ``U(-1/sqrt(fan_in), 1/sqrt(fan_in))``.

    (Kaiming-uniform with ``a=sqrt(5)`` reduces to this bound.)

    Example:
        >>> w = fan_in_uniform((16, 8), fan_in=16)  # bound 1/sqrt(16) = 0.25
        >>> w.shape, bool(abs(w).max() <= 0.25)
        ((16, 8), True)
    """
    return uniform(shape, 1.0 / math.sqrt(max(fan_in, 1)), dtype)


def normal(shape: tuple[int, ...], std: float = 1.0, dtype: Any = np.float32) -> np.ndarray:
    """Normal with mean 0 and standard deviation ``std``.

    Example:
        >>> w = normal((2, 5), std=0.02, dtype=np.float64)
        >>> w.shape, w.dtype.name
        ((2, 5), 'float64')
    """
    return (_rng.standard_normal(size=shape) * std).astype(dtype)


def xavier_uniform(shape: tuple[int, ...], fan_in: int, fan_out: int, dtype: Any = np.float32) -> np.ndarray:
    """Glorot uniform: ``U(-a, a)`` with ``a = sqrt(6 / (fan_in + fan_out))``.

    Example:
        >>> w = xavier_uniform((4, 2), fan_in=4, fan_out=2)  # a = sqrt(6 / 6) = 1
        >>> w.shape, bool(abs(w).max() <= 1.0)
        ((4, 2), True)
    """
    return uniform(shape, math.sqrt(6.0 / max(fan_in + fan_out, 1)), dtype)
