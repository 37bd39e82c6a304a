"""Empirical verification: check properties on the given data only (``kind="empirical"``).

Every failing sample is reported with its input and output. A property with an input set
is checked on the samples that lie inside it (the others are skipped and counted).

Example:
    >>> import numpy as np
    >>> from axiom import Dense, Sequential, Softmax
    >>> from axiom.verify import FiniteOutput, ValidProbabilities
    >>> from axiom.verify.empirical import verify_empirical
    >>> m = Sequential(Dense(4, 3), Softmax())
    >>> r = verify_empirical(m, [ValidProbabilities(), FiniteOutput()], [np.zeros((5, 4), np.float32)])
    >>> r.kind, r.passed, [p.checked for p in r.results]
    ('empirical', True, [5, 5])
"""

from __future__ import annotations

import time
from collections.abc import Iterable, Sequence
from typing import Any

import numpy as np

from axiom.tensor import Tensor
from axiom.verify.concrete import run_model
from axiom.verify.properties import LocalRobustness, Property
from axiom.verify.result import PropertyResult, VerificationResult, Violation


def _batches(data: Any) -> list[np.ndarray]:
    """Accept an array/Tensor (one batch), or an iterable of arrays or ``(x, y)`` pairs."""
    if isinstance(data, np.ndarray | Tensor):
        data = [data]
    out = []
    for i, item in enumerate(data):
        x = item[0] if isinstance(item, tuple | list) else item
        arr = np.asarray(x.data if isinstance(x, Tensor) else x)
        if arr.ndim == 0:
            raise ValueError(f"data item {i}: expected a batch of inputs, got a scalar")
        out.append(arr)
    if not out:
        raise ValueError("verify(data=...): no data given; pass a batch or a list of (x, y) pairs")
    return out


def resolve_labels(model: Any, properties: Sequence[Property]) -> list[Property]:
    """``LocalRobustness(label=None)`` takes the model's own prediction at the centre.

    Example:
        >>> from axiom import Dense, Sequential, manual_seed
        >>> manual_seed(0); m = Sequential(Dense(2, 3))
        >>> p = resolve_labels(m, [LocalRobustness(np.zeros(2), eps=0.1)])[0]
        >>> p.label == int(np.argmax(run_model(m, np.zeros((1, 2)))))
        True
    """
    resolved = []
    for p in properties:
        if isinstance(p, LocalRobustness) and p.label is None:
            y = run_model(model, p.x[None])
            p = p.with_label(int(np.argmax(y.reshape(1, -1)[0])))
        resolved.append(p)
    return resolved


def verify_empirical(model: Any, properties: Iterable[Property], data: Any) -> VerificationResult:
    """Check each property on every sample of ``data``; see the module docstring.

    Example:
        >>> from axiom.verify import Classification
        >>> from axiom import Dense, Sequential
        >>> r = verify_empirical(Sequential(Dense(2, 2)), [Classification(0)], np.full((3, 2), np.nan, np.float32))
        >>> r.status, len(r[0].violations)
        ('failed', 3)
    """
    t0 = time.perf_counter()
    props = resolve_labels(model, list(properties))
    xs = _batches(data)
    x_all = np.concatenate([x.reshape(len(x), *x.shape[1:]) for x in xs], axis=0)
    y_all = np.concatenate([run_model(model, x) for x in xs], axis=0)
    results = []
    warnings = []
    for p in props:
        t1 = time.perf_counter()
        inside = np.ones(len(x_all), bool)
        if p.input_set is not None:
            s = p.input_set.bind(x_all.shape[1:])
            inside = np.array([s.contains(x) for x in x_all], bool)
            if not inside.any():
                warnings.append(f"{p.name}: no data sample lies in its input set; nothing was checked")
        ok = np.ones(len(x_all), bool)
        if inside.any():
            ok[inside] = p.holds(y_all[inside])
        bad = np.flatnonzero(~ok)
        violations = [Violation(int(i), x_all[i], y_all[i]) for i in bad]
        results.append(
            PropertyResult(
                p,
                "empirical",
                "passed" if not violations else "failed",
                method="data",
                violations=violations,
                runtime_s=time.perf_counter() - t1,
                checked=int(inside.sum()),
                message=f"{len(violations)} of {int(inside.sum())} samples violate it" if violations else "",
            )
        )
    warnings.append("empirical: only the given samples were checked; this is not a proof")
    return VerificationResult("empirical", results, time.perf_counter() - t0, warnings)
