"""``ensure(cond, msg)``: run-time checks inside a model body, and the helpers that build them.

In an ``@axiom`` model body the values are traced symbols, so ``ensure`` records the condition
and the model checks it on the real values at every call. Outside a model, ``ensure`` checks a
concrete condition at once. A failing check raises :class:`EnsureViolation` with the
condition's source text, the message and the offending values.

Checks are on by default. Switch them off for production with ``set_ensure(False)``, the
environment variable ``AXIOM_ENSURE=0`` (read at import), or for a block of code with
``with ensure_checks(False): ...``.

Example:
    >>> import numpy as np
    >>> y = np.array([[0.2, 0.9]])
    >>> try:
    ...     ensure(valid_probabilities(y), "softmax output")
    ... except EnsureViolation as err:
    ...     print(err.condition, "|", err.detail)
    valid_probabilities(y) | row 0 sums to 1.1 (tolerance 1e-05)
    >>> with ensure_checks(False):
    ...     ensure(valid_probabilities(y), "not checked")
"""

from __future__ import annotations

import contextlib
import os
from collections.abc import Iterator
from contextvars import ContextVar
from typing import Any

import numpy as np

from axiom.dsl.expr import Expr, Op, Verdict, verdict_of
from axiom.dsl.source import SourceLocation, call_site, first_argument_text


class EnsureViolation(AssertionError):
    """An ``ensure`` condition is false. ``condition`` (its text), ``message``, ``detail``
    (the offending values) and ``location`` (``file:line`` of the ``ensure``) are attributes.

    Example:
        >>> err = EnsureViolation("y >= 0", "non-negative", "first failure at index (1,)", "model.py:9")
        >>> print(err)
        ensure(y >= 0) failed at model.py:9: non-negative; first failure at index (1,)
    """

    def __init__(self, condition: str, message: str = "", detail: str = "", location: str = "") -> None:
        self.condition = condition
        self.message = message
        self.detail = detail
        self.location = location
        text = f"ensure({condition}) failed"
        if location:
            text += f" at {location}"
        if message:
            text += f": {message}"
        if detail:
            text += f"; {detail}"
        super().__init__(text)


def _env_default() -> bool:
    return os.environ.get("AXIOM_ENSURE", "1").strip().lower() not in ("0", "false", "off", "no")


_default = _env_default()
_override: ContextVar[bool | None] = ContextVar("axiom_ensure", default=None)


def set_ensure(enabled: bool) -> None:
    """Switch ``ensure`` checks on or off for the whole process (default: on unless ``AXIOM_ENSURE=0``).

    Example:
        >>> set_ensure(False); ensure_enabled()
        False
        >>> set_ensure(True); ensure_enabled()
        True
    """
    global _default
    _default = bool(enabled)


def ensure_enabled() -> bool:
    """Are ``ensure`` checks on here (the innermost :func:`ensure_checks`, else :func:`set_ensure`)?

    Example:
        >>> with ensure_checks(False):
        ...     ensure_enabled()
        False
    """
    value = _override.get()
    return _default if value is None else value


@contextlib.contextmanager
def ensure_checks(enabled: bool) -> Iterator[None]:
    """Within the ``with`` block, ``ensure`` checks are on (``True``) or off (``False``).

    Example:
        >>> with ensure_checks(False):
        ...     ensure(1 > 2, "skipped")
    """
    token = _override.set(bool(enabled))
    try:
        yield
    finally:
        _override.reset(token)


class Check:
    """A recorded ``ensure``: the deferred condition, its source text, message and location.

    Example:
        >>> from axiom.dsl.expr import Node
        >>> c = Check(Node(0, "y") > 0, "y > 0", "positive", None)
        >>> c.run([np.array([1.0])]) is None
        True
    """

    def __init__(self, cond: Expr, text: str, message: str, location: SourceLocation | None) -> None:
        self.cond = cond
        self.text = text or cond.describe()
        self.message = message
        self.location = location

    def run(self, env: Any) -> None:
        """Raise :class:`EnsureViolation` when the condition is false on ``env``."""
        v = self.cond.check(env)
        if not v.ok:
            raise EnsureViolation(
                self.text, self.message, v.detail, "" if self.location is None else str(self.location)
            )

    def __repr__(self) -> str:
        return f"Check({self.text!r})"


def ensure(cond: Any, msg: str = "") -> None:
    """Check ``cond``: now if it is concrete, at every model call if it depends on traced values.

    ``cond`` may be a bool, a boolean array/Tensor (true when every entry is), or what a helper
    (:func:`valid_probabilities`, :func:`finite`, :func:`bounded`) or a comparison of traced
    values returns. Raises :class:`EnsureViolation` when false.

    Example:
        >>> ensure(np.array([1.0, 2.0]).min() > 0, "positive")
        >>> try:
        ...     ensure(np.array([1.0, -2.0]) > 0, "positive")
        ... except EnsureViolation as err:
        ...     print(err.condition, "|", err.detail)
        np.array([1.0, -2.0]) > 0 | false at index (1,) (1 of 2 entries false)
    """
    if isinstance(cond, Expr):
        from axiom.dsl.trace import current_tracer

        tracer = current_tracer()
        loc = call_site(1)
        if tracer is None:
            raise TypeError("ensure: a traced condition outside an @axiom model body")
        tracer.add_check(Check(cond, first_argument_text(loc), msg, loc))
        return
    if not ensure_enabled():
        return
    v = verdict_of(cond)
    if not v.ok:
        loc = call_site(1)
        text = first_argument_text(loc) or repr(cond)
        raise EnsureViolation(text, msg, v.detail, str(loc))


# -- helpers -----------------------------------------------------------------------------------


def _concrete_or_deferred(op: Op) -> Any:
    """Evaluate now when no traced value is involved (returns a Verdict), else the deferred Op."""
    if op.nodes():
        return op
    return op.check([])


def _valid_probabilities(y: np.ndarray, tol: float, axis: int) -> np.ndarray:
    y = np.asarray(y, np.float64)
    return bool(np.all(np.isfinite(y)) and np.all((y >= 0) & (y <= 1)) and np.all(np.abs(y.sum(axis=axis) - 1) <= tol))


def _explain_probabilities(y: np.ndarray, tol: float, axis: int) -> str:
    y = np.asarray(y, np.float64)
    if not np.all(np.isfinite(y)):
        i = tuple(int(v) for v in np.argwhere(~np.isfinite(y))[0])
        return f"entry {i} is {y[i]}"
    if not np.all((y >= 0) & (y <= 1)):
        i = tuple(int(v) for v in np.argwhere((y < 0) | (y > 1))[0])
        return f"entry {i} is {y[i]:.6g}, outside [0, 1]"
    sums = np.atleast_1d(y.sum(axis=axis))
    j = int(np.argmax(np.abs(sums - 1)))
    return f"row {j} sums to {sums.ravel()[j]:.6g} (tolerance {tol:g})"


def valid_probabilities(y: Any, tol: float = 1e-5, axis: int = -1) -> Any:
    """Entries finite and in [0, 1], summing to 1 within ``tol`` along ``axis``.

    Returns a :class:`~axiom.dsl.expr.Verdict` for concrete ``y``, a deferred check for a
    traced one (pass it to :func:`ensure`).

    Example:
        >>> bool(valid_probabilities(np.array([[0.25, 0.75]]))), valid_probabilities(np.array([[0.5, 0.6]])).detail
        (True, 'row 0 sums to 1.1 (tolerance 1e-05)')
    """
    return _concrete_or_deferred(
        Op(
            lambda v: _valid_probabilities(v, tol, axis),
            [y],
            lambda a: f"valid_probabilities({a})",
            lambda v: _explain_probabilities(v, tol, axis),
        )
    )


def _explain_finite(y: np.ndarray) -> str:
    y = np.asarray(y, np.float64)
    bad = ~np.isfinite(y)
    i = tuple(int(v) for v in np.argwhere(bad)[0])
    return f"entry {i} is {y[i]} ({int(bad.sum())} non-finite of {y.size})"


def finite(y: Any) -> Any:
    """No NaN and no infinity in ``y``.

    Example:
        >>> bool(finite(np.array([1.0, 2.0]))), finite(np.array([1.0, np.nan])).detail
        (True, 'entry (1,) is nan (1 non-finite of 2)')
    """
    return _concrete_or_deferred(
        Op(
            lambda v: bool(np.all(np.isfinite(np.asarray(v, np.float64)))),
            [y],
            lambda a: f"finite({a})",
            _explain_finite,
        )
    )


def bounded(y: Any, lower: float | None = None, upper: float | None = None) -> Any:
    """Every entry of ``y`` in ``[lower, upper]`` (either side may be None); NaN fails.

    Example:
        >>> bool(bounded(np.array([0.0, 0.5]), 0, 1)), bounded(np.array([0.0, 1.5]), 0, 1).detail
        (True, 'entry (1,) is 1.5, outside [0, 1]')
    """
    lo = -np.inf if lower is None else float(lower)
    hi = np.inf if upper is None else float(upper)

    def ok(v: np.ndarray) -> bool:
        v = np.asarray(v, np.float64)
        return bool(np.all((v >= lo) & (v <= hi)))

    def explain(v: np.ndarray) -> str:
        v = np.asarray(v, np.float64)
        i = tuple(int(k) for k in np.argwhere(~((v >= lo) & (v <= hi)))[0])
        return f"entry {i} is {v[i]:.6g}, outside [{lo:g}, {hi:g}]"

    def text(a: str) -> str:
        return f"bounded({a}, {lower}, {upper})"

    return _concrete_or_deferred(Op(ok, [y], text, explain))


__all__ = [
    "Check",
    "EnsureViolation",
    "Verdict",
    "bounded",
    "ensure",
    "ensure_checks",
    "ensure_enabled",
    "finite",
    "set_ensure",
    "valid_probabilities",
]
