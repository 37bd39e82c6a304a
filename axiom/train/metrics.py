"""Metrics for :func:`axiom.train.fit` and :func:`axiom.train.evaluate`: accuracy, mean absolute/squared error.

A metric is a plain function ``metric(outputs, targets) -> float`` on NumPy arrays (a
:class:`~axiom.tensor.Tensor` is accepted too) returning the **mean over the batch**; the fit
loop averages batch values weighted by batch size, which is exact for every metric here.
:func:`get_metric` resolves a name from :data:`METRICS` or accepts any such callable.

Example:
    >>> import numpy as np
    >>> logits = np.array([[2.0, 0.1], [0.3, 1.0], [0.0, -1.0]])
    >>> accuracy(logits, np.array([0, 1, 1]))
    0.6666666666666666
    >>> get_metric("mae")[0], mean_absolute_error(np.array([1.0, 2.0]), np.array([0.0, 4.0]))
    ('mae', 1.5)
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import numpy as np

from axiom.tensor import Tensor

__all__ = ["METRICS", "accuracy", "get_metric", "mean_absolute_error", "mean_squared_error"]

Metric = Callable[[Any, Any], float]


def _array(value: Any) -> np.ndarray:
    arr = value.data if isinstance(value, Tensor) else np.asarray(value)
    # float16/bfloat16 outputs of mixed-precision training: compare in float32
    return arr.astype(np.float32) if arr.dtype.kind == "V" or arr.dtype == np.float16 else arr


def _single_column(arr: np.ndarray) -> bool:
    return arr.ndim == 1 or (arr.ndim == 2 and arr.shape[1] == 1)


def accuracy(outputs: Any, targets: Any, threshold: float | None = None) -> float:
    """Fraction of correct predictions.

    - Several output columns (logits or probabilities, ``(N, C)``): the prediction is the
      argmax; ``targets`` are integer labels ``(N,)`` or one-hot / probability rows ``(N, C)``
      (their argmax).
    - One output column (``(N,)`` or ``(N, 1)``, binary): the prediction is ``output >
      threshold``; ``threshold`` defaults to 0.5 when every output lies in [0, 1]
      (probabilities) and to 0 otherwise (logits). Pass it explicitly when that guess could
      be wrong (logits that all happen to lie in [0, 1]). Targets are 0/1 (or
      probabilities, rounded at 0.5).

    Example:
        >>> import numpy as np
        >>> accuracy(np.array([[0.1, 0.9], [0.8, 0.2]]), np.array([[0.0, 1.0], [0.0, 1.0]]))
        0.5
        >>> accuracy(np.array([[-2.0], [3.0]]), np.array([0, 1])), accuracy([0.2, 0.7], [0, 0], threshold=0.5)
        (1.0, 0.5)
    """
    out, tgt = _array(outputs), _array(targets)
    if len(out) != len(tgt):
        raise ValueError(f"accuracy: {len(out)} outputs but {len(tgt)} targets")
    if len(out) == 0:
        raise ValueError("accuracy: no samples")
    if _single_column(out):
        scores = out.reshape(len(out))
        if threshold is None:
            threshold = 0.5 if bool(((scores >= 0) & (scores <= 1)).all()) else 0.0
        if not _single_column(tgt):
            raise ValueError(f"accuracy: one output column but targets of shape {tgt.shape}; expected (N,) or (N, 1)")
        pred = scores > threshold
        truth = tgt.reshape(len(tgt)).astype(np.float64) > 0.5
        return float((pred == truth).mean())
    pred = out.reshape(len(out), -1).argmax(axis=1)
    if tgt.ndim == out.ndim and tgt.shape[-1] == out.shape[-1] and tgt.shape[-1] > 1:
        truth = tgt.reshape(len(tgt), -1).argmax(axis=1)
    elif tgt.ndim == 1 or (tgt.ndim == 2 and tgt.shape[1] == 1):
        truth = tgt.reshape(len(tgt))
    else:
        raise ValueError(
            f"accuracy: outputs of shape {out.shape} need targets of shape ({len(out)},) (labels) or "
            f"({len(out)}, {out.shape[-1]}) (one-hot), got {tgt.shape}"
        )
    return float((pred == truth).mean())


def _paired(outputs: Any, targets: Any, what: str) -> tuple[np.ndarray, np.ndarray]:
    out, tgt = _array(outputs).astype(np.float64), _array(targets).astype(np.float64)
    if out.shape != tgt.shape:
        if out.size != tgt.size:
            raise ValueError(f"{what}: outputs of shape {out.shape} and targets of shape {tgt.shape} differ")
        tgt = tgt.reshape(out.shape)  # (N,) targets for (N, 1) outputs
    return out, tgt


def mean_absolute_error(outputs: Any, targets: Any) -> float:
    """Mean of ``|outputs - targets|`` over every element.

    Example:
        >>> import numpy as np
        >>> mean_absolute_error(np.array([[1.0], [3.0]]), np.array([2.0, 2.0]))
        1.0
    """
    out, tgt = _paired(outputs, targets, "mean_absolute_error")
    return float(np.abs(out - tgt).mean())


def mean_squared_error(outputs: Any, targets: Any) -> float:
    """Mean of ``(outputs - targets) ** 2`` over every element.

    Example:
        >>> import numpy as np
        >>> mean_squared_error(np.array([1.0, 3.0]), np.array([2.0, 2.0]))
        1.0
    """
    out, tgt = _paired(outputs, targets, "mean_squared_error")
    return float(((out - tgt) ** 2).mean())


#: Metric names accepted by :func:`get_metric` (and ``fit(metrics=...)``) -> function.
METRICS: dict[str, Metric] = {
    "accuracy": accuracy,
    "acc": accuracy,
    "mae": mean_absolute_error,
    "mean_absolute_error": mean_absolute_error,
    "mse": mean_squared_error,
    "mean_squared_error": mean_squared_error,
}

_CANONICAL = {"acc": "accuracy"}


def get_metric(metric: str | Metric) -> tuple[str, Metric]:
    """``(log name, function)`` for a metric name from :data:`METRICS` or a callable.

    A callable is logged under its ``__name__``.

    Example:
        >>> get_metric("acc")[0], get_metric(mean_squared_error)[0]
        ('accuracy', 'mean_squared_error')
        >>> get_metric("f1")  # doctest: +ELLIPSIS
        Traceback (most recent call last):
        ...
        ValueError: unknown metric 'f1'; expected one of acc, accuracy, mae, ...-> float
    """
    if isinstance(metric, str):
        if metric not in METRICS:
            names = ", ".join(sorted(METRICS))
            raise ValueError(
                f"unknown metric {metric!r}; expected one of {names}, or a callable (outputs, targets) -> float"
            )
        return _CANONICAL.get(metric, metric), METRICS[metric]
    if callable(metric):
        return getattr(metric, "__name__", type(metric).__name__), metric
    raise TypeError(f"a metric must be a name or a callable (outputs, targets) -> float, got {metric!r}")
