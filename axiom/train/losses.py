"""Loss functions, as functions (``cross_entropy(logits, target)``) and as classes (``CrossEntropyLoss()``).

Every loss is built from differentiable Tensor and :mod:`axiom.functional` ops, so
``loss.backward()`` reaches the model's parameters. Values and gradients follow
``torch.nn.functional`` (same formulas, same ``reduction`` semantics). Predictions in float16
or bfloat16 are cast up to float32 first (the gradient flows back cast down again), so a loss is
never accumulated in low precision; float64 stays float64.

Classification losses take the class axis **last**: logits ``(N, C)`` (or ``(..., C)``) with
integer labels ``(N,)`` or class probabilities / one-hot rows ``(N, C)``. Bad targets (labels
outside ``[0, C)``, non-integer labels, mismatched lengths or widths) raise ``ValueError`` naming
what was wrong.

Example:
    >>> import numpy as np
    >>> from axiom import Tensor
    >>> logits = Tensor([[2.0, 0.0, -1.0], [0.0, 1.0, 0.0]], requires_grad=True)
    >>> loss = cross_entropy(logits, np.array([0, 1]))
    >>> round(loss.item(), 4)
    0.3606
    >>> loss.backward()
    >>> logits.grad.shape
    (2, 3)
    >>> get_loss("mse") is mse_loss
    True
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import numpy as np

from axiom import functional as F
from axiom.autograd import needs_grad, record
from axiom.backends import get_backend
from axiom.tensor import Tensor, as_tensor, bfloat16, float16, float32, is_floating, where

__all__ = [
    "BCELoss",
    "BCEWithLogitsLoss",
    "CrossEntropyLoss",
    "HuberLoss",
    "KLDivLoss",
    "L1Loss",
    "Loss",
    "MSELoss",
    "NLLLoss",
    "binary_cross_entropy",
    "binary_cross_entropy_with_logits",
    "cross_entropy",
    "get_loss",
    "huber_loss",
    "kl_div",
    "l1_loss",
    "mse_loss",
    "nll_loss",
]

REDUCTIONS = ("mean", "sum", "none")
# torch's floor on p (1 - p) in the BCE gradient is the float literal 1e-12f, also in float64
_BCE_EPS = float(np.float32(1e-12))
_LOW_PRECISION = (float16, bfloat16)


# -- helpers --------------------------------------------------------------------------------------


def _check_reduction(reduction: str, fn: str, allowed: tuple[str, ...] = REDUCTIONS) -> None:
    if reduction not in allowed:
        raise ValueError(f"{fn}: reduction={reduction!r} is not one of {', '.join(map(repr, allowed))}")


def _reduce(loss: Tensor, reduction: str) -> Tensor:
    if reduction == "sum":
        return loss.sum()
    if reduction == "mean":
        return loss.mean()
    return loss


def _prediction(x: Any, fn: str, what: str = "predictions") -> Tensor:
    """``x`` as a Tensor in float32 or float64 (low precision and integers cast up, differentiably)."""
    t = as_tensor(x)
    if t.dtype == np.bool_ or not (is_floating(t.dtype) or np.issubdtype(t.dtype, np.integer)):
        raise TypeError(f"{fn}: {what} must be a floating (or integer) array, got dtype {t.dtype.name}")
    if t.dtype in _LOW_PRECISION or not is_floating(t.dtype):
        t = t.astype(float32)
    return t


def _float_target(target: Any, like: Tensor, fn: str) -> Tensor:
    """``target`` in ``like``'s dtype and shape; a target that requires a gradient keeps it."""
    t = target if isinstance(target, Tensor) else Tensor(np.asarray(target))
    if t.dtype == np.bool_ or not (is_floating(t.dtype) or np.issubdtype(t.dtype, np.integer)):
        raise TypeError(f"{fn}: target must be a numeric array, got dtype {t.dtype.name}")
    if t.shape != like.shape:
        raise ValueError(
            f"{fn}: predictions have shape {like.shape} but target has shape {t.shape}; expected the same shape "
            "(reshape one of them: a (N, 1) prediction against a (N,) target would silently broadcast to (N, N))"
        )
    if t.dtype != like.dtype:
        t = t.astype(like.dtype) if t.requires_grad else Tensor(t.data.astype(like.dtype))
    return t


def _class_indices(target: np.ndarray, lead: tuple[int, ...], classes: int, fn: str) -> np.ndarray:
    """Integer labels of shape ``lead``, each in ``[0, classes)``, as int64."""
    if target.dtype == np.bool_ or not np.issubdtype(target.dtype, np.integer):
        raise ValueError(
            f"{fn}: class-index targets must be integers, got dtype {target.dtype.name} with shape {target.shape}; "
            f"cast the labels with .astype(int), or pass class probabilities / one-hot rows of shape {(*lead, classes)}"
        )
    if target.shape != lead:
        raise ValueError(
            f"{fn}: predictions have {lead[0] if lead else 1} rows (shape {(*lead, classes)}) but target has shape "
            f"{target.shape}; expected one label per row, shape {lead}"
        )
    if target.size and (target.min() < 0 or target.max() >= classes):  # two reductions on the hot path
        bad = (target < 0) | (target >= classes)
        pos = tuple(int(i) for i in np.argwhere(bad)[0])
        at = f" at position {pos[0] if len(pos) == 1 else pos}" if pos else ""
        raise ValueError(
            f"{fn}: label {int(target[pos])}{at} is out of range for {classes} classes; expected 0 <= label < {classes}"
        )
    return target.astype(np.int64, copy=False)


def _pick(scores: Tensor, labels: np.ndarray) -> Tensor:
    """``scores[..., labels]`` per row: a gather along the last axis with a scatter as its gradient."""
    classes = scores.shape[-1]
    flat = scores.data.reshape(-1, classes)
    rows, cols = np.arange(flat.shape[0]), labels.reshape(-1)
    out = flat[rows, cols].reshape(labels.shape)
    if not needs_grad(scores):
        return Tensor(out)

    def rule(g: np.ndarray) -> tuple[np.ndarray]:
        full = np.zeros(flat.shape, scores.dtype)
        full[rows, cols] = g.reshape(-1)  # one label per row: no repeated index to add up
        return (full.reshape(scores.shape),)

    return record(out, (scores,), rule, "pick")


def _class_axis(x: Tensor, fn: str, what: str) -> int:
    if x.ndim < 1:
        raise ValueError(f"{fn}: {what} must have a class axis (shape (N, C) or (C,)), got a scalar")
    return x.shape[-1]


def _probability_target(target: Any, scores: Tensor, fn: str) -> Tensor:
    """Class probabilities / one-hot rows with ``scores``' shape, in its dtype."""
    t = target if isinstance(target, Tensor) else Tensor(np.asarray(target))
    classes = scores.shape[-1]
    if t.shape[:-1] != scores.shape[:-1]:
        raise ValueError(
            f"{fn}: predictions have shape {scores.shape} but the class-probability target has shape {t.shape}; "
            f"expected {scores.shape} (one row per prediction)"
        )
    if t.shape[-1] != classes:
        hint = f"; for integer labels pass shape {scores.shape[:-1]}" if t.shape[-1] == 1 else ""
        raise ValueError(
            f"{fn}: one-hot / probability target has width {t.shape[-1]} but there are {classes} classes; "
            f"expected shape {scores.shape}{hint}"
        )
    return _float_target(t, scores, fn)


# -- regression losses ------------------------------------------------------------------------------


def mse_loss(pred: Any, target: Any, reduction: str = "mean") -> Tensor:
    """Squared error ``(pred - target)**2``, reduced by ``reduction`` ("mean", "sum" or "none").

    Example:
        >>> mse_loss(np.array([1.0, 2.0], np.float32), np.array([0.0, 0.0], np.float32)).item()
        2.5
    """
    _check_reduction(reduction, "mse_loss")
    p = _prediction(pred, "mse_loss")
    d = p - _float_target(target, p, "mse_loss")
    return _reduce(d * d, reduction)


def l1_loss(pred: Any, target: Any, reduction: str = "mean") -> Tensor:
    """Absolute error ``|pred - target|``; the gradient at a zero error is 0, as in torch.

    Example:
        >>> l1_loss(np.array([1.0, -3.0], np.float32), np.zeros(2, np.float32), reduction="sum").item()
        4.0
    """
    _check_reduction(reduction, "l1_loss")
    p = _prediction(pred, "l1_loss")
    return _reduce((p - _float_target(target, p, "l1_loss")).abs(), reduction)


def huber_loss(pred: Any, target: Any, delta: float = 1.0, reduction: str = "mean") -> Tensor:
    """Huber loss: ``0.5 d**2`` where ``|d| < delta``, else ``delta (|d| - 0.5 delta)``, with ``d = pred - target``.

    Example:
        >>> huber_loss(np.array([0.5, 3.0], np.float32), np.zeros(2, np.float32), reduction="none").tolist()
        [0.125, 2.5]
    """
    _check_reduction(reduction, "huber_loss")
    if not delta > 0:
        raise ValueError(f"huber_loss: delta must be > 0, got {delta}")
    p = _prediction(pred, "huber_loss")
    d = p - _float_target(target, p, "huber_loss")
    ad = d.abs()
    return _reduce(where(ad.data < delta, d * d * 0.5, (ad - 0.5 * delta) * delta), reduction)


# -- classification losses ----------------------------------------------------------------------------


def cross_entropy(logits: Any, target: Any, label_smoothing: float = 0.0, reduction: str = "mean") -> Tensor:
    """Cross-entropy from raw logits ``(N, C)`` (class axis last).

    ``target`` is either integer class indices ``(N,)`` or class probabilities / one-hot rows
    ``(N, C)``. ``label_smoothing`` mixes the target with the uniform distribution
    (``(1 - s) * target + s / C``), as ``torch.nn.functional.cross_entropy`` does. "mean"
    averages over the N rows.

    Example:
        >>> logits = np.array([[1.0, 2.0, 3.0]], np.float32)
        >>> round(cross_entropy(logits, np.array([2])).item(), 4)
        0.4076
        >>> round(cross_entropy(logits, np.array([[0.0, 0.0, 1.0]], np.float32)).item(), 4)
        0.4076
        >>> round(cross_entropy(logits, np.array([2]), label_smoothing=0.1).item(), 4)
        0.5076
    """
    fn = "cross_entropy"
    _check_reduction(reduction, fn)
    if not 0.0 <= label_smoothing <= 1.0:
        raise ValueError(f"{fn}: label_smoothing must be in [0, 1], got {label_smoothing}")
    z = _prediction(logits, fn, "logits")
    classes = _class_axis(z, fn, "logits")
    raw = target.data if isinstance(target, Tensor) else np.asarray(target)
    if raw.ndim == z.ndim:
        logp = F.log_softmax(z, axis=-1)
        p = _probability_target(target, z, fn)
        if label_smoothing:
            p = p * (1.0 - label_smoothing) + label_smoothing / classes
        loss = -(logp * p).sum(axis=-1)
    else:
        labels = _class_indices(raw, z.shape[:-1], classes, fn)
        return _cross_entropy_labels(z, labels, label_smoothing, reduction)
    return _reduce(loss, reduction)


def _cross_entropy_labels(z: Tensor, labels: np.ndarray, smoothing: float, reduction: str) -> Tensor:
    """Cross-entropy with integer labels as one tape node (the training hot path: one op instead of five).

    Per row, ``-(1 - s) log p[y] - (s / C) sum log p``; the gradient is ``softmax - q`` with
    ``q = (1 - s) onehot(y) + s / C``, scaled by the incoming gradient of the row.
    """
    classes = z.shape[-1]
    logp = get_backend().log_softmax(z.data, -1).reshape(-1, classes)
    rows, cols = np.arange(logp.shape[0]), labels.reshape(-1)
    per_row = -logp[rows, cols]
    if smoothing:
        per_row = per_row * (1.0 - smoothing) - logp.sum(axis=1) * (smoothing / classes)
    per_row = per_row.reshape(labels.shape)
    if reduction == "none":
        out = per_row
    else:
        out = np.asarray(per_row.sum() if reduction == "sum" else per_row.mean(), dtype=z.dtype)
    if not needs_grad(z):
        return Tensor(out)

    def rule(g: np.ndarray) -> tuple[np.ndarray]:
        if reduction == "none":
            scale = g.reshape(-1, 1)
        else:
            scale = g if reduction == "sum" else g / max(len(rows), 1)
        grad = np.exp(logp)  # softmax
        if smoothing:
            grad -= smoothing / classes
        grad[rows, cols] -= 1.0 - smoothing
        grad *= scale
        return (grad.reshape(z.shape).astype(z.dtype, copy=False),)

    return record(out, (z,), rule, "cross_entropy")


def nll_loss(log_probs: Any, target: Any, reduction: str = "mean") -> Tensor:
    """Negative log-likelihood ``-log_probs[i, target[i]]`` for log-probabilities ``(N, C)`` and labels ``(N,)``.

    Example:
        >>> lp = np.log(np.array([[0.5, 0.25, 0.25]], np.float32))
        >>> round(nll_loss(lp, np.array([1])).item(), 4)
        1.3863
    """
    fn = "nll_loss"
    _check_reduction(reduction, fn)
    lp = _prediction(log_probs, fn, "log-probabilities")
    classes = _class_axis(lp, fn, "log-probabilities")
    raw = target.data if isinstance(target, Tensor) else np.asarray(target)
    return _reduce(-_pick(lp, _class_indices(raw, lp.shape[:-1], classes, fn)), reduction)


def _check_unit_interval(x: np.ndarray, fn: str, what: str) -> None:
    bad = (x < 0) | (x > 1)  # NaN compares false: a NaN passes through to the loss, like torch
    if bad.any():
        pos = tuple(int(i) for i in np.argwhere(bad)[0])
        raise ValueError(f"{fn}: {what} must lie in [0, 1]; found {x[pos].item()} at position {pos}")


def binary_cross_entropy(probs: Any, target: Any, reduction: str = "mean") -> Tensor:
    """Binary cross-entropy of probabilities in ``[0, 1]`` against targets in ``[0, 1]``.

    As in torch, each log is clamped at -100 (so a probability of exactly 0 or 1 gives a finite
    loss) and the gradient ``(p - y) / max(p (1 - p), 1e-12)`` stays finite. Prefer
    :func:`binary_cross_entropy_with_logits` on raw scores: it is stable for large logits.

    Example:
        >>> round(binary_cross_entropy(np.array([0.8, 0.1], np.float32), np.array([1.0, 0.0], np.float32)).item(), 4)
        0.1643
    """
    fn = "binary_cross_entropy"
    _check_reduction(reduction, fn)
    p = _prediction(probs, fn, "probabilities")
    y = _float_target(target, p, fn)
    _check_unit_interval(p.data, fn, "probabilities")
    _check_unit_interval(y.data, fn, "targets")
    P, Y = p.data, y.data
    with np.errstate(divide="ignore"):
        log_p = np.maximum(np.log(P), -100.0)
        log_q = np.maximum(np.log1p(-P), -100.0)
    out = -(Y * log_p + (1.0 - Y) * log_q)

    def rule(g: np.ndarray) -> tuple[np.ndarray | None, np.ndarray | None]:
        gp = g * (P - Y) / np.maximum(P * (1.0 - P), _BCE_EPS)
        gy = g * (log_q - log_p) if y.requires_grad else None
        return gp.astype(P.dtype, copy=False), None if gy is None else gy.astype(P.dtype, copy=False)

    loss = record(out.astype(P.dtype, copy=False), (p, y), rule, fn) if needs_grad(p, y) else Tensor(out)
    return _reduce(loss, reduction)


def binary_cross_entropy_with_logits(
    logits: Any, target: Any, reduction: str = "mean", pos_weight: Any = None
) -> Tensor:
    """Binary cross-entropy on raw scores: ``(1 - y) x + w softplus(-x)``, stable for any logit.

    ``w = 1 + (pos_weight - 1) y`` weights the positive term (``pos_weight`` broadcasts over the
    last axis, as in torch); without it ``w = 1``. The gradient is ``sigmoid(x) - y``.

    Example:
        >>> x, y = np.array([100.0, -100.0, 0.0], np.float32), np.array([1.0, 0.0, 1.0], np.float32)
        >>> [round(v, 4) for v in binary_cross_entropy_with_logits(x, y, reduction="none").tolist()]
        [0.0, 0.0, 0.6931]
    """
    fn = "binary_cross_entropy_with_logits"
    _check_reduction(reduction, fn)
    x = _prediction(logits, fn, "logits")
    y = _float_target(target, x, fn)
    _check_unit_interval(y.data, fn, "targets")
    soft = F.activation(-x, "softplus")  # log(1 + e^-x), computed without overflow
    if pos_weight is not None:
        if isinstance(pos_weight, Tensor) and pos_weight.requires_grad:
            pw = pos_weight.astype(x.dtype)
        else:
            pw = Tensor(np.asarray(pos_weight.data if isinstance(pos_weight, Tensor) else pos_weight, dtype=x.dtype))
        soft = soft * ((pw - 1.0) * y + 1.0)
    return _reduce((1.0 - y) * x + soft, reduction)


def kl_div(input_log_probs: Any, target: Any, reduction: str = "mean", log_target: bool = False) -> Tensor:
    """KL divergence with torch's argument order: ``input`` is log-probabilities, ``target`` probabilities.

    The pointwise loss is ``target * (log(target) - input)`` (0 where ``target`` is 0), or
    ``exp(target) * (target - input)`` when ``log_target``. ``reduction="batchmean"`` divides
    the sum by the batch size (the mathematically correct KL); "mean" averages over every
    element, as torch does.

    Example:
        >>> p = np.array([[0.5, 0.5]], np.float32)
        >>> q_log = np.log(np.array([[0.25, 0.75]], np.float32))
        >>> round(kl_div(q_log, p, reduction="batchmean").item(), 4)
        0.1438
    """
    fn = "kl_div"
    _check_reduction(reduction, fn, (*REDUCTIONS, "batchmean"))
    q = _prediction(input_log_probs, fn, "log-probabilities")
    t = _float_target(target, q, fn)
    if log_target:
        pointwise = t.exp() * (t - q)
    else:
        if (t.data < 0).any():
            raise ValueError("kl_div: target probabilities must be >= 0 (pass log_target=True for log-probabilities)")
        pointwise = t * where(t.data > 0, t, 1.0).log() - t * q  # xlogy: 0 log 0 = 0
    if reduction == "batchmean":
        batch = q.shape[0] if q.ndim else 1
        return pointwise.sum() / float(batch)
    return _reduce(pointwise, reduction)


# -- classes ------------------------------------------------------------------------------------------


class Loss:
    """Base of the loss classes: holds ``reduction`` and calls its loss function on ``(pred, target)``.

    Example:
        >>> MSELoss(reduction="sum")(np.array([1.0, 2.0], np.float32), np.zeros(2, np.float32)).item()
        5.0
    """

    fn: Callable[..., Tensor] | None = None  # set by each subclass
    reductions: tuple[str, ...] = REDUCTIONS

    def __init__(self, reduction: str = "mean") -> None:
        _check_reduction(reduction, type(self).__name__, self.reductions)
        self.reduction = reduction

    def options(self) -> dict[str, Any]:
        """The keyword arguments passed to the loss function (subclasses add theirs).

        Example:
            >>> HuberLoss(delta=2.0).options()
            {'reduction': 'mean', 'delta': 2.0}
        """
        return {"reduction": self.reduction}

    def __call__(self, pred: Any, target: Any) -> Tensor:
        fn = type(self).fn
        if fn is None:
            raise NotImplementedError(f"{type(self).__name__} does not name its loss function (set fn)")
        return fn(pred, target, **self.options())

    def __repr__(self) -> str:
        args = ", ".join(f"{k}={v!r}" for k, v in self.options().items())
        return f"{type(self).__name__}({args})"


class MSELoss(Loss):
    """:func:`mse_loss` as an object.

    Example:
        >>> MSELoss()(np.array([3.0], np.float32), np.array([1.0], np.float32)).item()
        4.0
    """

    fn = staticmethod(mse_loss)


class L1Loss(Loss):
    """:func:`l1_loss` as an object.

    Example:
        >>> L1Loss()(np.array([3.0], np.float32), np.array([1.0], np.float32)).item()
        2.0
    """

    fn = staticmethod(l1_loss)


class HuberLoss(Loss):
    """:func:`huber_loss` as an object.

    Example:
        >>> HuberLoss(delta=1.0)(np.array([3.0], np.float32), np.array([1.0], np.float32)).item()
        1.5
    """

    fn = staticmethod(huber_loss)

    def __init__(self, reduction: str = "mean", delta: float = 1.0) -> None:
        super().__init__(reduction)
        if not delta > 0:
            raise ValueError(f"HuberLoss: delta must be > 0, got {delta}")
        self.delta = delta

    def options(self) -> dict[str, Any]:
        return {**super().options(), "delta": self.delta}


class CrossEntropyLoss(Loss):
    """:func:`cross_entropy` as an object.

    Example:
        >>> loss = CrossEntropyLoss(label_smoothing=0.1)
        >>> round(loss(np.array([[1.0, 2.0, 3.0]], np.float32), np.array([2])).item(), 4)
        0.5076
    """

    fn = staticmethod(cross_entropy)

    def __init__(self, reduction: str = "mean", label_smoothing: float = 0.0) -> None:
        super().__init__(reduction)
        if not 0.0 <= label_smoothing <= 1.0:
            raise ValueError(f"CrossEntropyLoss: label_smoothing must be in [0, 1], got {label_smoothing}")
        self.label_smoothing = label_smoothing

    def options(self) -> dict[str, Any]:
        return {**super().options(), "label_smoothing": self.label_smoothing}


class NLLLoss(Loss):
    """:func:`nll_loss` as an object.

    Example:
        >>> NLLLoss()(np.array([[-0.5, -2.0]], np.float32), np.array([0])).item()
        0.5
    """

    fn = staticmethod(nll_loss)


class BCELoss(Loss):
    """:func:`binary_cross_entropy` as an object.

    Example:
        >>> round(BCELoss()(np.array([0.5], np.float32), np.array([1.0], np.float32)).item(), 4)
        0.6931
    """

    fn = staticmethod(binary_cross_entropy)


class BCEWithLogitsLoss(Loss):
    """:func:`binary_cross_entropy_with_logits` as an object.

    Example:
        >>> round(BCEWithLogitsLoss()(np.array([0.0], np.float32), np.array([1.0], np.float32)).item(), 4)
        0.6931
    """

    fn = staticmethod(binary_cross_entropy_with_logits)

    def __init__(self, reduction: str = "mean", pos_weight: Any = None) -> None:
        super().__init__(reduction)
        self.pos_weight = pos_weight

    def options(self) -> dict[str, Any]:
        return {**super().options(), "pos_weight": self.pos_weight}


class KLDivLoss(Loss):
    """:func:`kl_div` as an object (``reduction`` may also be "batchmean").

    Example:
        >>> KLDivLoss(reduction="batchmean")(np.log(np.array([[0.5, 0.5]])), np.array([[0.5, 0.5]])).item()
        0.0
    """

    fn = staticmethod(kl_div)
    reductions = (*REDUCTIONS, "batchmean")

    def __init__(self, reduction: str = "mean", log_target: bool = False) -> None:
        super().__init__(reduction)
        self.log_target = log_target

    def options(self) -> dict[str, Any]:
        return {**super().options(), "log_target": self.log_target}


# -- lookup by name -------------------------------------------------------------------------------------

LOSSES: dict[str, Callable[..., Tensor]] = {
    "cross_entropy": cross_entropy,
    "crossentropy": cross_entropy,
    "categorical_crossentropy": cross_entropy,
    "ce": cross_entropy,
    "mse": mse_loss,
    "mse_loss": mse_loss,
    "mean_squared_error": mse_loss,
    "l1": l1_loss,
    "l1_loss": l1_loss,
    "mae": l1_loss,
    "mean_absolute_error": l1_loss,
    "huber": huber_loss,
    "huber_loss": huber_loss,
    "nll": nll_loss,
    "nll_loss": nll_loss,
    "bce": binary_cross_entropy,
    "binary_cross_entropy": binary_cross_entropy,
    "bce_with_logits": binary_cross_entropy_with_logits,
    "binary_cross_entropy_with_logits": binary_cross_entropy_with_logits,
    "kl_div": kl_div,
    "kl": kl_div,
    "kld": kl_div,
}


def get_loss(name_or_callable: str | Callable[..., Tensor]) -> Callable[..., Tensor]:
    """The loss function for a name (``"cross_entropy"``, ``"mse"``, ``"bce_with_logits"``, ...) or a callable as is.

    Names are case-insensitive and ``-`` counts as ``_``; :data:`LOSSES` lists them all.

    Example:
        >>> get_loss("Cross-Entropy") is cross_entropy
        True
        >>> loss = CrossEntropyLoss()
        >>> get_loss(loss) is loss
        True
        >>> get_loss(MSELoss)
        MSELoss(reduction='mean')
    """
    if isinstance(name_or_callable, type) and issubclass(name_or_callable, Loss):
        return name_or_callable()  # the class itself would take (pred, target) as its options
    if callable(name_or_callable):
        return name_or_callable
    if not isinstance(name_or_callable, str):
        raise TypeError(f"get_loss: expected a loss name or a callable, got {type(name_or_callable).__name__}")
    key = name_or_callable.strip().lower().replace("-", "_").replace(" ", "_")
    if key not in LOSSES:
        names = sorted({"cross_entropy", "mse", "l1", "huber", "nll", "bce", "bce_with_logits", "kl_div"})
        raise ValueError(f"get_loss: unknown loss {name_or_callable!r}; expected one of {', '.join(names)}")
    return LOSSES[key]
