"""Data helpers for training: batching, splitting, one-hot labels, toy data sets and the digits data.

Everything here works on NumPy arrays (a :class:`~axiom.tensor.Tensor` is accepted and read as
its array) and returns NumPy arrays, so the helpers fit any loop, not only :func:`axiom.train.fit`.
The toy data sets follow scikit-learn's semantics (same shapes, label layout and parameters)
with their own NumPy code, so they need no scikit-learn; :func:`load_digits` reads the copy of the
digits data that ships inside scikit-learn (no download).

Example:
    >>> import numpy as np
    >>> x, y = make_blobs(60, centers=3, n_features=2, seed=0)
    >>> x_train, x_test, y_train, y_test = train_test_split(x, y, test_size=0.25, seed=0)
    >>> x_train.shape, x_test.shape
    ((45, 2), (15, 2))
    >>> [xb.shape for xb, yb in DataLoader(x_train, y_train, batch_size=20)]
    [(20, 2), (20, 2), (5, 2)]
    >>> one_hot(np.array([2, 0]), 3).tolist()
    [[0.0, 0.0, 1.0], [1.0, 0.0, 0.0]]
"""

from __future__ import annotations

import math
from collections.abc import Iterator, Sequence
from typing import Any

import numpy as np

from axiom.tensor import Tensor

__all__ = ["DataLoader", "load_digits", "make_blobs", "make_moons", "one_hot", "train_test_split"]


def as_array(data: Any, what: str = "data") -> np.ndarray:
    """``data`` (array, Tensor, list) as a NumPy array with at least one axis.

    Example:
        >>> from axiom import Tensor
        >>> as_array(Tensor([1.0, 2.0])).tolist(), as_array([[1, 2]]).shape
        ([1.0, 2.0], (1, 2))
    """
    arr = data.data if isinstance(data, Tensor) else np.asarray(data)
    if arr.ndim == 0:
        raise ValueError(f"{what} must have a sample axis (one row per sample), got a scalar")
    return arr


def _check_seed(seed: Any) -> None:
    if seed is not None and (isinstance(seed, bool) or not isinstance(seed, int | np.integer)):
        raise TypeError(f"seed must be an int or None, got {seed!r}")


class DataLoader:
    """Mini-batches ``(xb, yb)`` of NumPy arrays over the first axis of ``x`` (and ``y``).

    ``DataLoader(x, y=None, batch_size=32, shuffle=False, seed=None, drop_last=False)``.
    ``yb`` is ``None`` when ``y`` is. With ``shuffle=True`` every pass (epoch) draws a fresh
    permutation from one generator created from ``seed``, so a seeded loader gives the same
    sequence of epochs every time it is built. ``len(loader)`` is the number of batches;
    ``drop_last`` drops a final batch smaller than ``batch_size``.

    Example:
        >>> import numpy as np
        >>> loader = DataLoader(np.arange(10), np.arange(10) * 10, batch_size=4, shuffle=True, seed=0)
        >>> len(loader), [len(xb) for xb, _ in loader]
        (3, [4, 4, 2])
        >>> first, second = [np.concatenate([xb for xb, _ in loader]) for _ in range(2)]
        >>> sorted(first.tolist()) == list(range(10)), first.tolist() != second.tolist()
        (True, True)
        >>> all((yb == xb * 10).all() for xb, yb in loader)
        True
    """

    def __init__(
        self,
        x: Any,
        y: Any = None,
        batch_size: int = 32,
        shuffle: bool = False,
        seed: int | None = None,
        drop_last: bool = False,
    ) -> None:
        if isinstance(batch_size, bool) or not isinstance(batch_size, int | np.integer) or batch_size <= 0:
            raise ValueError(f"DataLoader: batch_size must be a positive int, got {batch_size!r}")
        _check_seed(seed)
        self.x = as_array(x, "DataLoader: x")
        self.y = None if y is None else as_array(y, "DataLoader: y")
        if self.y is not None and len(self.y) != len(self.x):
            raise ValueError(
                f"DataLoader: x and y must have the same number of samples, got {len(self.x)} and {len(self.y)}"
            )
        self.batch_size = int(batch_size)
        self.shuffle = bool(shuffle)
        self.drop_last = bool(drop_last)
        self.seed = seed
        self._rng = np.random.default_rng(seed)

    @property
    def num_samples(self) -> int:
        """Number of samples (rows of ``x``).

        Example:
            >>> DataLoader(np.zeros((7, 2)), batch_size=3).num_samples
            7
        """
        return len(self.x)

    def __len__(self) -> int:
        n, b = self.num_samples, self.batch_size
        return n // b if self.drop_last else math.ceil(n / b)

    def __iter__(self) -> Iterator[tuple[np.ndarray, np.ndarray | None]]:
        n, b = self.num_samples, self.batch_size
        stop = (n // b) * b if self.drop_last else n
        if self.shuffle:
            order = self._rng.permutation(n)
            for i in range(0, stop, b):
                idx = order[i : i + b]
                yield self.x[idx], None if self.y is None else self.y[idx]
        else:  # slices: views, no copy
            for i in range(0, stop, b):
                yield self.x[i : i + b], None if self.y is None else self.y[i : i + b]

    def __repr__(self) -> str:
        return (
            f"DataLoader({self.num_samples} samples, batch_size={self.batch_size}, shuffle={self.shuffle}, "
            f"drop_last={self.drop_last})"
        )


def _test_count(n: int, test_size: Any) -> int:
    if isinstance(test_size, bool) or not isinstance(test_size, int | float | np.integer | np.floating):
        raise TypeError(f"train_test_split: test_size must be a float in (0, 1) or an int, got {test_size!r}")
    if isinstance(test_size, int | np.integer):
        if not 0 < test_size < n:
            raise ValueError(f"train_test_split: test_size={test_size} must be between 1 and {n - 1} for {n} samples")
        return int(test_size)
    if not 0.0 < test_size < 1.0:
        raise ValueError(f"train_test_split: a float test_size must be in (0, 1), got {test_size}")
    n_test = math.ceil(test_size * n)  # scikit-learn rounds the test part up
    if n_test >= n:
        raise ValueError(f"train_test_split: test_size={test_size} leaves no training sample out of {n}")
    return n_test


def _stratified_test_indices(labels: np.ndarray, n_test: int, rng: np.random.Generator) -> np.ndarray:
    classes, inverse, counts = np.unique(labels, return_inverse=True, return_counts=True)
    if counts.min() < 2:
        bad = classes[counts.argmin()].item()
        raise ValueError(f"train_test_split: class {bad!r} of stratify has 1 member; each class needs at least 2")
    # Largest-remainder allocation: per-class test counts proportional to the class sizes, summing to n_test.
    exact = counts * n_test / counts.sum()
    take = np.floor(exact).astype(int)
    for i in np.argsort(-(exact - take), kind="stable")[: n_test - take.sum()]:
        take[i] += 1
    picks = []
    for c, k in enumerate(take):
        members = np.flatnonzero(inverse == c)
        picks.append(rng.permutation(members)[:k])
    return rng.permutation(np.concatenate(picks))


def train_test_split(
    *arrays: Any,
    test_size: float | int = 0.25,
    seed: int | None = None,
    shuffle: bool = True,
    stratify: Any = None,
) -> list[np.ndarray]:
    """Split arrays into train and test parts: ``[a_train, a_test, b_train, b_test, ...]`` (scikit-learn order).

    ``test_size`` is a fraction in (0, 1) (the test count is rounded up, as scikit-learn does)
    or a sample count. With ``shuffle=False`` the last rows are the test part. ``stratify``
    (labels, usually ``y``) keeps each class's proportion in both parts; it needs ``shuffle=True``.

    Example:
        >>> import numpy as np
        >>> x, y = np.arange(20).reshape(10, 2), np.array([0, 1] * 5)
        >>> x_tr, x_te, y_tr, y_te = train_test_split(x, y, test_size=0.4, seed=0, stratify=y)
        >>> x_tr.shape, x_te.shape, np.bincount(y_te).tolist()
        ((6, 2), (4, 2), [2, 2])
        >>> train_test_split(np.arange(4), test_size=1, shuffle=False)
        [array([0, 1, 2]), array([3])]
    """
    if not arrays:
        raise ValueError("train_test_split: expects at least one array")
    _check_seed(seed)
    arrs = [as_array(a, f"train_test_split: array {i + 1}") for i, a in enumerate(arrays)]
    n = len(arrs[0])
    for i, a in enumerate(arrs[1:], 2):
        if len(a) != n:
            raise ValueError(
                f"train_test_split: all arrays must have the same number of samples; array 1 has {n}, "
                f"array {i} has {len(a)}"
            )
    if n < 2:
        raise ValueError(f"train_test_split: needs at least 2 samples, got {n}")
    n_test = _test_count(n, test_size)
    rng = np.random.default_rng(seed)
    if stratify is not None:
        if not shuffle:
            raise ValueError("train_test_split: stratify needs shuffle=True")
        labels = as_array(stratify, "train_test_split: stratify")
        if len(labels) != n:
            raise ValueError(f"train_test_split: stratify has {len(labels)} labels for {n} samples")
        test = _stratified_test_indices(labels, n_test, rng)
        mask = np.ones(n, bool)
        mask[test] = False
        train = rng.permutation(np.flatnonzero(mask))
    elif shuffle:
        order = rng.permutation(n)
        test, train = order[:n_test], order[n_test:]
    else:
        train, test = np.arange(n - n_test), np.arange(n - n_test, n)
    out: list[np.ndarray] = []
    for a in arrs:
        out += [a[train], a[test]]
    return out


def one_hot(labels: Any, num_classes: int | None = None, dtype: Any = "float32") -> np.ndarray:
    """Integer class labels of any shape -> ``labels.shape + (num_classes,)`` one-hot array.

    ``num_classes`` defaults to ``max(labels) + 1``. Negative labels, labels ``>= num_classes``
    and fractional or non-finite values raise ``ValueError`` naming the bad label.

    Example:
        >>> one_hot([0, 2, 1], dtype="int64").tolist()
        [[1, 0, 0], [0, 0, 1], [0, 1, 0]]
        >>> one_hot([3], num_classes=3)
        Traceback (most recent call last):
        ...
        ValueError: one_hot: label 3 (at index 0) is out of range [0, 3)
    """
    arr = labels.data if isinstance(labels, Tensor) else np.asarray(labels)
    if arr.dtype == bool:
        arr = arr.astype(np.int64)
    if not (np.issubdtype(arr.dtype, np.integer) or np.issubdtype(arr.dtype, np.floating)):
        raise ValueError(f"one_hot: labels must be integers, got dtype {arr.dtype}")
    if np.issubdtype(arr.dtype, np.floating):
        bad = ~np.isfinite(arr) | (arr != np.round(arr))
        if bad.any():
            i = int(np.flatnonzero(bad.ravel())[0])
            raise ValueError(f"one_hot: labels must be integers, got {arr.ravel()[i]} at index {i}")
        arr = arr.astype(np.int64)
    if num_classes is not None and (
        isinstance(num_classes, bool) or not isinstance(num_classes, int | np.integer) or num_classes <= 0
    ):
        raise ValueError(f"one_hot: num_classes must be a positive int, got {num_classes!r}")
    flat = arr.ravel()
    if num_classes is None:
        if flat.size == 0:
            raise ValueError("one_hot: cannot infer num_classes from no labels; pass num_classes")
        num_classes = int(flat.max()) + 1
    bad = (flat < 0) | (flat >= num_classes)
    if bad.any():
        i = int(np.flatnonzero(bad)[0])
        raise ValueError(f"one_hot: label {flat[i]} (at index {i}) is out of range [0, {num_classes})")
    out = np.zeros((flat.size, int(num_classes)), dtype=np.dtype(dtype))
    out[np.arange(flat.size), flat] = 1
    return out.reshape(*arr.shape, int(num_classes))


def _sample_count(n_samples: Any, what: str) -> int:
    if isinstance(n_samples, bool) or not isinstance(n_samples, int | np.integer) or n_samples < 0:
        raise ValueError(f"{what}: n_samples must be a non-negative int, got {n_samples!r}")
    return int(n_samples)


def make_moons(
    n_samples: int | tuple[int, int] = 100,
    noise: float | None = None,
    seed: int | None = None,
    shuffle: bool = True,
    dtype: Any = "float32",
) -> tuple[np.ndarray, np.ndarray]:
    """Two interleaving half circles (scikit-learn's ``make_moons``): ``(x (n, 2), y (n,) int64)``.

    ``n_samples`` is the total (the outer moon, label 0, gets ``n // 2``) or an
    ``(outer, inner)`` pair; ``noise`` is the standard deviation of Gaussian noise added to
    every coordinate. ``x`` is float32 by default (``dtype=``), the dtype of Axiom's models.

    Example:
        >>> x, y = make_moons(6, noise=None, shuffle=False)
        >>> x.round(2).tolist()[:3], y.tolist()
        ([[1.0, 0.0], [0.0, 1.0], [-1.0, 0.0]], [0, 0, 0, 1, 1, 1])
    """
    if isinstance(n_samples, tuple | list):
        if len(n_samples) != 2:
            raise ValueError(f"make_moons: n_samples as a pair must be (outer, inner), got {n_samples!r}")
        n_out, n_in = (_sample_count(n, "make_moons") for n in n_samples)
    else:
        total = _sample_count(n_samples, "make_moons")
        n_out, n_in = total // 2, total - total // 2
    if noise is not None and not noise >= 0:
        raise ValueError(f"make_moons: noise must be >= 0 or None, got {noise!r}")
    _check_seed(seed)
    rng = np.random.default_rng(seed)
    t_out, t_in = np.linspace(0, np.pi, n_out), np.linspace(0, np.pi, n_in)
    x = np.concatenate(
        [np.stack([np.cos(t_out), np.sin(t_out)], 1), np.stack([1 - np.cos(t_in), 1 - np.sin(t_in) - 0.5], 1)]
    )
    y = np.concatenate([np.zeros(n_out, np.int64), np.ones(n_in, np.int64)])
    if shuffle:
        order = rng.permutation(len(y))
        x, y = x[order], y[order]
    if noise is not None:
        x = x + rng.normal(scale=noise, size=x.shape)
    return x.astype(dtype), y


def make_blobs(
    n_samples: int | Sequence[int] = 100,
    centers: int | Any = None,
    n_features: int = 2,
    cluster_std: float | Sequence[float] = 1.0,
    seed: int | None = None,
    center_box: tuple[float, float] = (-10.0, 10.0),
    shuffle: bool = True,
    dtype: Any = "float32",
) -> tuple[np.ndarray, np.ndarray]:
    """Isotropic Gaussian blobs (scikit-learn's ``make_blobs``): ``(x (n, n_features), y (n,) int64)``.

    ``centers`` is a count (drawn uniformly in ``center_box``; 3 when left out) or an array of
    centre coordinates; ``n_samples`` is the total (split as evenly as possible, the first
    blobs get the remainder) or one count per blob. ``cluster_std`` is one standard deviation
    or one per blob. ``x`` is float32 by default (``dtype=``).

    Example:
        >>> x, y = make_blobs(7, centers=[[0.0, 0.0], [10.0, 10.0]], cluster_std=0.1, seed=0, shuffle=False)
        >>> np.bincount(y).tolist(), bool(abs(x[y == 1].mean(0) - 10).max() < 0.5)
        ([4, 3], True)
    """
    _check_seed(seed)
    rng = np.random.default_rng(seed)
    if isinstance(n_samples, int | np.integer) and not isinstance(n_samples, bool):
        total = _sample_count(n_samples, "make_blobs")
        per_blob: list[int] | None = None
    else:
        per_blob = [_sample_count(n, "make_blobs") for n in n_samples]
    if centers is None or (isinstance(centers, int | np.integer) and not isinstance(centers, bool)):
        n_centers = len(per_blob) if per_blob is not None and centers is None else int(centers or 3)
        if n_centers <= 0:
            raise ValueError(f"make_blobs: centers must be a positive int or an array of centres, got {centers!r}")
        if isinstance(n_features, bool) or not isinstance(n_features, int | np.integer) or n_features <= 0:
            raise ValueError(f"make_blobs: n_features must be a positive int, got {n_features!r}")
        centre_arr = rng.uniform(center_box[0], center_box[1], size=(n_centers, int(n_features)))
    else:
        centre_arr = np.atleast_2d(np.asarray(centers, np.float64))
        if centre_arr.ndim != 2:
            raise ValueError(f"make_blobs: centers must be (n_centers, n_features), got shape {centre_arr.shape}")
    n_centers = len(centre_arr)
    if per_blob is None:
        per_blob = [total // n_centers + (1 if i < total % n_centers else 0) for i in range(n_centers)]
    elif len(per_blob) != n_centers:
        raise ValueError(f"make_blobs: {len(per_blob)} sample counts for {n_centers} centres")
    stds = np.broadcast_to(np.asarray(cluster_std, np.float64), (n_centers,))
    if (stds < 0).any() or not np.isfinite(stds).all():
        raise ValueError(f"make_blobs: cluster_std must be finite and >= 0, got {cluster_std!r}")
    x = np.concatenate(
        [rng.normal(c, s, size=(n, centre_arr.shape[1])) for c, s, n in zip(centre_arr, stds, per_blob)]
    ).reshape(-1, centre_arr.shape[1])
    y = np.repeat(np.arange(n_centers, dtype=np.int64), per_blob)
    if shuffle:
        order = rng.permutation(len(y))
        x, y = x[order], y[order]
    return x.astype(dtype), y


def load_digits() -> tuple[np.ndarray, np.ndarray]:
    """scikit-learn's bundled 8x8 handwritten digits: ``(x (1797, 8, 8, 1) float32 in [0, 1], y (1797,) int64)``.

    The images are NHWC (one channel), scaled from 0..16 to [0, 1]. The data ships inside
    scikit-learn, so nothing is downloaded; scikit-learn must be installed.

    Example:
        >>> x, y = load_digits()
        >>> x.shape, x.dtype.name, float(x.max()), y[:5].tolist()
        ((1797, 8, 8, 1), 'float32', 1.0, [0, 1, 2, 3, 4])
    """
    try:
        from sklearn.datasets import load_digits as sk_load_digits
    except ImportError as err:
        raise ImportError(
            "load_digits reads the digits data bundled with scikit-learn, which is not installed; "
            "install it with `pip install scikit-learn`"
        ) from err
    bunch = sk_load_digits()
    x = (np.asarray(bunch.images, np.float32) / np.float32(16.0))[..., None]
    return x, np.asarray(bunch.target, np.int64)
