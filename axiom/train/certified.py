"""Certified training: interval bound propagation (IBP) as a differentiable robust loss.

:func:`interval_bounds` pushes a box of inputs ``[lower, upper]`` through a model and returns
``(lo, hi)`` with ``lo <= model(x) <= hi`` for every ``x`` in the box (Gowal et al. 2018,
"On the Effectiveness of Interval Bound Propagation for Training Verifiably Robust Models").
It is built from the same differentiable :class:`~axiom.tensor.Tensor` ops as the forward pass
(centre/radius form for affine layers: ``W mid + b`` and ``|W| rad``), so a loss on the bounds
backpropagates into the weights. :class:`IBPTraining` is the loss ``fit(..., certified=...)``
uses: ``kappa * natural + (1 - kappa) * loss_fn(z_worst, y)``, ``z_worst`` being the worst-case
logits of the ``eps``-box (lower bound for the true class, upper bounds for the others), with
``eps`` and ``kappa`` following an :class:`EpsilonSchedule` over training progress.

What the bounds are for: they are computed in the model's dtype (float32 for float16/bfloat16
models, through differentiable casts, so certified and mixed-precision training combine), with
ordinary rounding, for *training*. A certificate comes from :mod:`axiom.verify` (float64, outward rounding); for the
same box and an eval-mode model the two agree up to rounding (the tests check this).

Layer rules: Dense, Conv2d and DepthwiseConv2d (with their attached activations), BatchNorm
(eval: running statistics; training, or without running statistics: the batch statistics of the
*clean* reference batch, i.e. the affine map BatchNorm is for that batch), Affine, Flatten,
Reshape, Permute, MaxPool2d/AvgPool2d/GlobalAvgPool (monotone: the pooled bounds), every
activation (increasing ones map the end points; gelu, gelu_tanh, silu, mish, hardswish and
leaky_relu/elu with a negative alpha are quasi-convex: a sound lower bound of their minimum is
used where the interval reaches it), Dropout (the identity: the bounds describe the network
without dropout), Residual (bounds add), Parallel/Concat, and Softmax/LogSoftmax (sound
bounds ``p_i >= 1 / (1 + sum_{j != i} exp(u_j - l_i))`` and the matching upper bound; for a
robust loss on logits, leave them out of the model). LayerNorm, RMSNorm, MultiHeadAttention
and Embedding raise :class:`IBPUnsupportedError` naming the layer and its position.

Example:
    >>> import numpy as np
    >>> from axiom import Dense, Sequential, manual_seed, relu
    >>> manual_seed(0)
    >>> model = Sequential(Dense(2, 16, relu), Dense(16, 3))
    >>> x = np.array([[0.2, 0.4]], np.float32)
    >>> lo, hi = interval_bounds(model, x - 0.05, x + 0.05)
    >>> y = model(x).numpy()
    >>> bool(np.all(lo.numpy() <= y) and np.all(y <= hi.numpy()))
    True
    >>> (hi - lo).sum().backward()                     # bound width backpropagates into the weights
    >>> model[0].weight.grad.shape
    (2, 16)
"""

from __future__ import annotations

import math
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import numpy as np

from axiom import functional as F
from axiom.autograd import no_grad
from axiom.nn import (
    Activation,
    Affine,
    AvgPool2d,
    BatchNorm,
    Conv2d,
    Dense,
    Dropout,
    Flatten,
    GlobalAvgPool,
    Layer,
    LogSoftmax,
    MaxPool2d,
    Parallel,
    Permute,
    Reshape,
    Residual,
    Sequential,
    Softmax,
)
from axiom.nn._args import explicit_padding
from axiom.tensor import Tensor, as_tensor, bfloat16, concat, float16, is_floating, maximum, where

__all__ = [
    "EpsilonSchedule",
    "IBPTraining",
    "IBPUnsupportedError",
    "interval_bounds",
    "verified_accuracy",
    "worst_case_logits",
    "worst_case_margins",
]

Bounds = tuple[Tensor, Tensor]

# Activations that never decrease: the bounds are f(lo), f(hi).
_INCREASING = {"identity", "relu", "selu", "sigmoid", "tanh", "softplus", "softsign", "hardsigmoid", "relu6"}
# Quasi-convex activations: (argmin interval low end, high end, a lower bound of the minimum). The
# constants are the verifier's (axiom.verify.bounds._act: computed with mpmath, rounded outward).
_QUASI = {
    "gelu": (-0.7519, -0.7517, -0.16997121),
    "gelu_tanh": (-0.7526, -0.7523, -0.17004076),
    "silu": (-1.2786, -1.2783, -0.27846455),
    "mish": (-1.1926, -1.1923, -0.30884342),
    "hardswish": (-1.5, -1.5, -0.375),
}


class IBPUnsupportedError(NotImplementedError):
    """A layer :func:`interval_bounds` has no interval rule for (the message names it and its position).

    Example:
        >>> import numpy as np
        >>> from axiom import Dense, LayerNorm, Sequential
        >>> try:
        ...     interval_bounds(Sequential(Dense(2, 4), LayerNorm(4)), np.zeros((1, 2)), np.ones((1, 2)))
        ... except IBPUnsupportedError as err:
        ...     print(str(err)[:64])
        interval_bounds: layer 2 (LayerNorm) has no interval rule; suppo
    """


# -- rules --------------------------------------------------------------------------------------


def _affine(lo: Tensor, hi: Tensor, apply: Callable[[Tensor], Tensor], apply_abs: Callable[[Tensor], Tensor]) -> Bounds:
    """Bounds of an affine map in centre/radius form: ``apply(mid) -/+ apply_abs(rad)``."""
    mid = (hi + lo) * 0.5
    rad = (hi - lo) * 0.5
    m, r = apply(mid), apply_abs(rad)
    return m - r, m + r


def _activation(kind: str, alpha: float, lo: Tensor, hi: Tensor, where_: str) -> Bounds:
    if kind == "identity":
        return lo, hi
    fl, fu = F.activation(lo, kind, alpha), F.activation(hi, kind, alpha)
    if kind in _INCREASING or (kind in ("leaky_relu", "elu") and alpha >= 0):
        return fl, fu
    if kind in ("leaky_relu", "elu"):  # negative alpha: decreasing below 0, increasing above, f(0) = 0
        xlo, xhi, fmin = 0.0, 0.0, 0.0
    elif kind in _QUASI:
        xlo, xhi, fmin = _QUASI[kind]
    else:
        raise IBPUnsupportedError(f"interval_bounds: {where_}: activation {kind!r} has no interval rule")
    # Decreasing up to the argmin, increasing after it: the minimum is at an end point unless the
    # interval reaches the argmin, where the (lower bound of the) minimum value is used.
    lower = where(hi.data <= xlo, fu, where(lo.data >= xhi, fl, fmin))
    return lower.astype(lo.dtype), maximum(fl, fu)


def _attached(layer: Layer, lo: Tensor, hi: Tensor, where_: str) -> Bounds:
    act = getattr(layer, "activation", None)
    if act is None:
        return lo, hi
    return _activation(act.kind, act.alpha, lo, hi, where_)


def _cast(t: Tensor | None, dtype: np.dtype) -> Tensor | None:
    """A parameter in the compute dtype (a differentiable cast: the gradient goes back in the parameter's dtype)."""
    return t if t is None or t.dtype == dtype else t.astype(dtype)


def _compute_dtype(dtype: np.dtype) -> np.dtype:
    """Bounds of float16/bfloat16 models are computed in float32: the margins cancel badly in 8-11 bits."""
    return np.dtype(np.float32) if dtype in (float16, bfloat16) else np.dtype(dtype)


def _dense(layer: Dense, lo: Tensor, hi: Tensor, where_: str, attached: bool = True) -> Bounds:
    w, b = _cast(layer.weight, lo.dtype), _cast(layer.bias, lo.dtype)
    lo, hi = _affine(lo, hi, lambda m: F.linear(m, w, b), lambda r: F.matmul(r, w.abs()))  # type: ignore[union-attr]
    return _attached(layer, lo, hi, where_) if attached else (lo, hi)


def _conv(layer: Conv2d, lo: Tensor, hi: Tensor, where_: str, attached: bool = True) -> Bounds:
    pad = explicit_padding(layer.padding, lo.shape[1], lo.shape[2], layer.kernel_size, layer.stride, layer.dilation)
    w, b, groups = _cast(layer.weight, lo.dtype), _cast(layer.bias, lo.dtype), int(layer.groups or 1)

    def conv(x: Tensor, weight: Any, bias: Any) -> Tensor:
        return F.conv2d(x, weight, bias, layer.stride, pad, layer.dilation, groups)

    lo, hi = _affine(lo, hi, lambda m: conv(m, w, b), lambda r: conv(r, w.abs(), None))  # type: ignore[union-attr]
    return _attached(layer, lo, hi, where_) if attached else (lo, hi)


def _scale_shift(lo: Tensor, hi: Tensor, scale: Any, shift: Any) -> Bounds:
    """Element-wise ``x * scale + shift`` (a negative scale swaps the ends: ``|scale|`` on the radius)."""
    s = scale if isinstance(scale, Tensor) else Tensor(np.asarray(scale))
    return _affine(lo, hi, lambda m: m * s + shift, lambda r: r * s.abs())


def _batchnorm_map(layer: BatchNorm, ref: Tensor | None, lo: Tensor, hi: Tensor) -> tuple[Tensor, Any]:
    """``(scale, shift)`` of the affine map BatchNorm applies: running or reference-batch statistics."""
    dtype = lo.dtype
    if not layer.training and layer.running_mean is not None:
        mean: Any = layer.running_mean.data.astype(dtype)
        inv = (1.0 / np.sqrt(layer.running_var.data.astype(np.float64) + layer.eps)).astype(dtype)  # type: ignore[union-attr]
        scale: Any = Tensor(inv)
    else:
        # The batch statistics are a function of the weights (through the clean activations), so
        # they are computed with Tensor ops and the gradient flows through them too.
        x = ref if ref is not None else (hi + lo) * 0.5
        axes = tuple(range(x.ndim - 1))
        mean = x.mean(axis=axes)
        var = ((x - mean) * (x - mean)).mean(axis=axes)
        scale = (var + np.asarray(layer.eps, dtype)) ** -0.5
    if layer.weight is not None:
        scale = scale * _cast(layer.weight, dtype)
    shift = -(mean * scale) if layer.bias is None else _cast(layer.bias, dtype) - mean * scale
    return scale, shift


def _point(layer: Layer, x: Tensor) -> Tensor:
    """The clean (reference) activation through a leaf layer: its forward, without side effects."""
    if isinstance(layer, Dropout):
        return x
    if isinstance(layer, BatchNorm):
        scale, shift = _batchnorm_map(layer, x, x, x)
        return x * scale + shift
    if isinstance(layer, Dense | Conv2d):  # a box of width 0 (parameters cast like the bounds), then the activation
        y = (_dense if isinstance(layer, Dense) else _conv)(layer, x, x, "", attached=False)[0]  # type: ignore[operator]
        act = layer.activation
        return y if act is None else F.activation(y, act.kind, act.alpha)
    return layer.forward(x)


def _softmax(layer: Softmax, lo: Tensor, hi: Tensor, where_: str) -> Bounds:
    """``log p_i`` lies in ``[-LSE_j(v_ij), -LSE_j(w_ij)]``.

    ``v_ij = u_j - l_i`` and ``w_ij = l_j - u_i`` off the diagonal, 0 on it.
    """
    axis = layer.axis % lo.ndim
    if axis == 0:
        raise IBPUnsupportedError(f"interval_bounds: {where_}: a softmax over the batch axis mixes examples")
    perm = [a for a in range(lo.ndim) if a != axis] + [axis]
    inverse = list(np.argsort(perm))
    lo_t, hi_t = lo.transpose(perm), hi.transpose(perm)
    n = lo_t.shape[-1]
    lead = lo_t.shape[:-1]
    eye = np.eye(n, dtype=bool)

    def neg_lse(big: Tensor, small: Tensor) -> Tensor:
        d = where(eye, 0.0, big.reshape(*lead, 1, n) - small.reshape(*lead, n, 1))
        top = Tensor(d.data.max(axis=-1, keepdims=True))  # a constant shift: LSE is invariant to it
        return -((d - top).exp().sum(axis=-1, keepdims=True).log() + top).reshape(*lead, n)

    log_lo, log_hi = neg_lse(hi_t, lo_t), neg_lse(lo_t, hi_t)
    if not isinstance(layer, LogSoftmax):
        log_lo, log_hi = log_lo.exp(), log_hi.exp()
    return log_lo.astype(lo.dtype).transpose(inverse), log_hi.astype(lo.dtype).transpose(inverse)


def _leaf(layer: Layer, lo: Tensor, hi: Tensor, ref: Tensor | None, where_: str) -> Bounds:
    """Bounds through one non-container layer (``ref``: the clean activation, for BatchNorm)."""
    if isinstance(layer, Dense):
        return _dense(layer, lo, hi, where_)
    if isinstance(layer, Conv2d):  # DepthwiseConv2d too
        return _conv(layer, lo, hi, where_)
    if isinstance(layer, BatchNorm):
        return _scale_shift(lo, hi, *_batchnorm_map(layer, ref, lo, hi))
    if isinstance(layer, Affine):
        return _scale_shift(lo, hi, layer.scale.data.astype(lo.dtype), layer.shift.data.astype(lo.dtype))
    if isinstance(layer, Activation):
        return _activation(layer.fn.kind, layer.fn.alpha, lo, hi, where_)
    if isinstance(layer, Dropout):
        return lo, hi
    if isinstance(layer, Flatten | Reshape | Permute | MaxPool2d | AvgPool2d | GlobalAvgPool):
        # Shape ops, and pools: monotone in every input (max, or averages with weights >= 0).
        return layer.forward(lo), layer.forward(hi)
    if isinstance(layer, Softmax | LogSoftmax):
        return _softmax(layer, lo, hi, where_)  # type: ignore[arg-type]
    raise IBPUnsupportedError(
        f"interval_bounds: {where_} has no interval rule; supported: Dense, Conv2d, DepthwiseConv2d, BatchNorm, "
        "Affine, activations, Dropout, Flatten, Reshape, Permute, MaxPool2d, AvgPool2d, GlobalAvgPool, Softmax, "
        "LogSoftmax, Sequential, Residual, Parallel"
    )


def _join(path: str, i: int) -> str:
    return f"{path}.{i}" if path else str(i)


def _walk(layer: Layer, lo: Tensor, hi: Tensor, ref: Tensor | None, path: str) -> tuple[Tensor, Tensor, Tensor | None]:
    if isinstance(layer, Sequential):
        for i, sub in enumerate(layer.layers, start=1):
            lo, hi, ref = _walk(sub, lo, hi, ref, _join(path, i))
        return lo, hi, ref
    if isinstance(layer, Residual):
        blo, bhi, bref = lo, hi, ref
        for i, sub in enumerate(layer.layers, start=1):
            blo, bhi, bref = _walk(sub, blo, bhi, bref, _join(path, i))
        return lo + blo, hi + bhi, None if ref is None or bref is None else ref + bref
    if isinstance(layer, Parallel):
        outs = [_walk(b, lo, hi, ref, _join(path, i)) for i, b in enumerate(layer.branches, start=1)]
        refs = [o[2] for o in outs]
        cat_ref = None if any(r is None for r in refs) else concat(refs, axis=layer.axis)  # type: ignore[arg-type]
        return concat([o[0] for o in outs], axis=layer.axis), concat([o[1] for o in outs], axis=layer.axis), cat_ref
    where_ = f"layer {path} ({layer.name})" if path else f"layer {layer.name}"
    lo, hi = _leaf(layer, lo, hi, ref, where_)
    return lo, hi, None if ref is None else _point(layer, ref)


def _needs_reference(model: Layer) -> bool:
    """True when some BatchNorm normalises with batch statistics (training mode or no running stats)."""
    return any(isinstance(m, BatchNorm) and (m.training or m.running_mean is None) for m in model.modules())


def _prepare(model: Layer, lower: Any, upper: Any, reference: Any, who: str) -> tuple[Tensor, Tensor, Tensor | None]:
    """The checked input box cast to the model's dtype, and the reference batch when BatchNorm needs one."""
    if not isinstance(model, Layer):
        raise TypeError(f"{who}: model must be an axiom Layer, got {type(model).__name__}")
    lo_in, hi_in = as_tensor(lower).detach(), as_tensor(upper).detach()
    if lo_in.shape != hi_in.shape:
        raise ValueError(f"{who}: lower has shape {lo_in.shape} but upper has shape {hi_in.shape}")
    if not (is_floating(lo_in.dtype) or lo_in.dtype.kind in "iu"):
        raise TypeError(f"{who}: expects numeric bounds, got {lo_in.dtype.name}")
    dtype = _compute_dtype(model.param_dtype() or (lo_in.dtype if is_floating(lo_in.dtype) else np.dtype(np.float32)))
    lo_t, hi_t = Tensor(lo_in.data.astype(dtype)), Tensor(hi_in.data.astype(dtype))
    bad = ~(lo_t.data.astype(np.float64) <= hi_t.data.astype(np.float64))
    if bad.any():
        first = tuple(int(i) for i in np.argwhere(bad)[0])
        raise ValueError(
            f"{who}: expects lower <= upper everywhere, but at index {first} lower={lo_in.data[first]} "
            f"and upper={hi_in.data[first]}"
        )
    model.output_shape(lo_t.shape)  # a ShapeError naming the layer, before any work
    if not model.built:
        model.build(lo_t.shape)
    ref = None
    if _needs_reference(model):
        ref = Tensor(as_tensor(reference).data.astype(dtype)) if reference is not None else (lo_t + hi_t) * 0.5
        if ref.shape != lo_t.shape:
            raise ValueError(f"{who}: reference has shape {ref.shape}, expected the box shape {lo_t.shape}")
    return lo_t, hi_t, ref


def interval_bounds(model: Layer, lower: Any, upper: Any, *, reference: Any = None) -> Bounds:
    """Element-wise bounds ``lo <= model(x) <= hi`` for every ``x`` with ``lower <= x <= upper``.

    ``lower`` and ``upper`` are batched like the model input (``(batch, ...)``: one box per
    example) and are cast to the model's dtype. The result is two differentiable Tensors.
    ``reference`` is the clean batch whose statistics a BatchNorm in training mode (or without
    running statistics) uses as its affine map; it defaults to the box centres.

    Example:
        >>> import numpy as np
        >>> from axiom import Conv2d, GlobalAvgPool, Sequential, manual_seed
        >>> manual_seed(1)
        >>> model = Sequential(Conv2d(1, 4, 3, activation="relu"), GlobalAvgPool())
        >>> x = np.random.default_rng(0).random((2, 5, 5, 1)).astype(np.float32)
        >>> lo, hi = interval_bounds(model, x - 0.1, x + 0.1)
        >>> lo.shape, bool(np.all(lo.numpy() <= hi.numpy()))
        ((2, 4), True)
    """
    lo_t, hi_t, ref = _prepare(model, lower, upper, reference, "interval_bounds")
    lo, hi, _ = _walk(model, lo_t, hi_t, ref, "")
    return lo, hi


# -- the robust loss ------------------------------------------------------------------------------


@dataclass(frozen=True)
class EpsilonSchedule:
    """How ``eps`` (and ``kappa``) grow over training: 0 during ``warmup``, then a linear ``ramp``.

    Both are fractions of training progress (``fit`` passes ``step / total_steps``): eps is 0 until
    ``warmup``, rises linearly to its final value over the next ``ramp``, then stays there.

    Example:
        >>> s = EpsilonSchedule(warmup=0.2, ramp=0.5)
        >>> [round(s.factor(p), 2) for p in (0.0, 0.2, 0.45, 0.7, 1.0)]
        [0.0, 0.0, 0.5, 1.0, 1.0]
    """

    warmup: float = 0.1
    ramp: float = 0.5

    def __post_init__(self) -> None:
        for name in ("warmup", "ramp"):
            value = getattr(self, name)
            if isinstance(value, bool) or not isinstance(value, int | float) or not 0.0 <= value <= 1.0:
                raise ValueError(f"EpsilonSchedule: {name} must be a fraction of training in [0, 1], got {value!r}")

    def factor(self, progress: float) -> float:
        """The fraction of the final eps at ``progress`` (0 = start of training, 1 = end)."""
        p = min(max(float(progress), 0.0), 1.0)
        if p < self.warmup or (p == self.warmup and self.ramp > 0):
            return 0.0
        if self.ramp == 0:
            return 1.0
        return min(1.0, (p - self.warmup) / self.ramp)


def _labels(y: Any, n_classes: int, owner: str) -> np.ndarray:
    """Integer class labels from integer labels or one-hot / probability rows."""
    arr = np.asarray(y.data if isinstance(y, Tensor) else y)
    if arr.ndim == 2:
        arr = arr.argmax(axis=1)
    if arr.ndim != 1 or arr.dtype.kind not in "iu":
        raise ValueError(f"{owner}: labels must be integers (batch,) or one-hot (batch, classes), got {arr.dtype}")
    if arr.size and (arr.min() < 0 or arr.max() >= n_classes):
        raise ValueError(f"{owner}: labels must lie in [0, {n_classes}), got values in [{arr.min()}, {arr.max()}]")
    return arr.astype(np.int64)


def worst_case_logits(lo: Tensor, hi: Tensor, labels: Any) -> Tensor:
    """Gowal's ``z_worst``: the lower bound for the true class, the upper bounds for every other.

    Example:
        >>> import numpy as np
        >>> lo, hi = Tensor([[0.0, -1.0, 2.0]]), Tensor([[1.0, 3.0, 4.0]])
        >>> worst_case_logits(lo, hi, np.array([2])).tolist()
        [[1.0, 3.0, 2.0]]
    """
    if lo.ndim != 2:
        raise ValueError(f"worst_case_logits: expects (batch, classes) bounds, got shape {lo.shape}")
    y = _labels(labels, lo.shape[1], "worst_case_logits")
    if len(y) != lo.shape[0]:
        raise ValueError(f"worst_case_logits: {len(y)} labels for a batch of {lo.shape[0]}")
    true = np.arange(lo.shape[1])[None, :] == y[:, None]
    return where(true, lo, hi)


def _split_last_dense(model: Layer) -> tuple[list[Layer], Dense | None]:
    """``(layers before, final Dense)`` if the model ends with a Dense without activation, else ``([model], None)``."""
    if isinstance(model, Dense) and (model.activation is None or model.activation.kind == "identity"):
        return [], model
    if isinstance(model, Sequential):
        head, last = list(model.layers[:-1]), model.layers[-1]
        before, dense = _split_last_dense(last)
        if dense is not None:
            return head + before, dense
    return [model], None


def worst_case_margins(model: Layer, lower: Any, upper: Any, labels: Any, *, reference: Any = None) -> Tensor:
    """Upper bounds of ``z_j - z_y`` over the box (0 for the true class ``y``): the label is proven when all are < 0.

    When the model ends with a Dense layer (no activation), the margin ``z_j - z_y`` is bounded
    through that layer directly (``(W_j - W_y) h + b_j - b_y`` with ``h`` in its input box): the
    specification is folded into the last layer, as Gowal et al. do and as :mod:`axiom.verify`
    does for a spec matrix, which is tighter than ``hi_j - lo_y``. Otherwise it is
    ``hi_j - lo_y`` from :func:`interval_bounds`. Softmax cross-entropy of these margins equals
    that of the worst-case logits shifted by a constant, so they serve as ``z_worst`` in the loss.

    Example:
        >>> import numpy as np
        >>> from axiom import Dense, Sequential, manual_seed
        >>> manual_seed(0)
        >>> model = Sequential(Dense(2, 8, "relu"), Dense(8, 3))
        >>> x, y = np.full((1, 2), 0.5, np.float32), np.array([1])
        >>> m = worst_case_margins(model, x - 0.1, x + 0.1, y)
        >>> lo, hi = interval_bounds(model, x - 0.1, x + 0.1)
        >>> plain = (hi - lo[:, 1:2]).numpy()
        >>> float(m.numpy()[0, 1]), bool(np.all(m.numpy()[:, [0, 2]] <= plain[:, [0, 2]] + 1e-6))
        (0.0, True)
    """
    before, dense = _split_last_dense(model)
    if dense is None:
        lo, hi = interval_bounds(model, lower, upper, reference=reference)
        y = _labels(labels, lo.shape[1], "worst_case_margins")
        true = np.arange(lo.shape[1])[None, :] == y[:, None]
        return where(true, 0.0, hi - lo[np.arange(len(y)), y].reshape(len(y), 1))
    lo, hi, ref = _prepare(model, lower, upper, reference, "worst_case_margins")
    for i, layer in enumerate(before, start=1):
        lo, hi, ref = _walk(layer, lo, hi, ref, str(i))
    w, b = _cast(dense.weight, lo.dtype), _cast(dense.bias, lo.dtype)
    if lo.ndim != 2 or w is None:
        raise ValueError(f"worst_case_margins: expects (batch, features) inputs to the last Dense, got {lo.shape}")
    n_classes = w.shape[1]
    y = _labels(labels, n_classes, "worst_case_margins")
    if len(y) != lo.shape[0]:
        raise ValueError(f"worst_case_margins: {len(y)} labels for a batch of {lo.shape[0]}")
    mid, rad = (hi + lo) * 0.5, (hi - lo) * 0.5
    w_true = w.T[y]  # (batch, in): the true class's weight column per example
    diff = w.reshape(1, *w.shape) - w_true.reshape(*w_true.shape, 1)  # (batch, in, classes)
    centre = F.matmul(mid, w) - (mid * w_true).sum(axis=1, keepdims=True)
    if b is not None:
        centre = centre + b - b[y].reshape(len(y), 1)
    spread = (rad.reshape(*rad.shape, 1) * diff.abs()).sum(axis=1)
    true = np.arange(n_classes)[None, :] == y[:, None]
    return where(true, 0.0, centre + spread)


def _cross_entropy(logits: Tensor, labels: Any) -> Tensor:
    """Mean softmax cross-entropy from logits (used when no ``loss_fn`` is given)."""
    y = _labels(labels, logits.shape[1], "IBPTraining")
    return -F.log_softmax(logits)[np.arange(len(y)), y].mean()


def _box(x: Tensor, eps: float, input_range: tuple[Any, Any] | None) -> tuple[Tensor, Tensor]:
    """``[x - eps, x + eps]`` clipped to ``input_range``, in float32 for half-precision inputs (no inward rounding)."""
    dtype = _compute_dtype(x.dtype) if is_floating(x.dtype) else np.dtype(np.float32)
    data = x.data.astype(dtype)
    lo, hi = data - dtype.type(eps), data + dtype.type(eps)
    if input_range is not None:
        lo = np.clip(lo, input_range[0], None).astype(dtype)
        hi = np.clip(hi, None, input_range[1]).astype(dtype)
    return Tensor(lo), Tensor(hi)


def verified_accuracy(
    model: Layer,
    x: Any,
    y: Any,
    eps: float,
    input_range: tuple[Any, Any] | None = (0.0, 1.0),
    batch_size: int = 256,
    elide: bool = True,
) -> float:
    """Fraction of ``(x, y)`` whose IBP bounds prove the label for the whole ``eps``-box (L-inf, clipped).

    An example counts when every margin ``z_j - z_y`` is proven negative
    (:func:`worst_case_margins`, the last Dense folded into the specification); with
    ``elide=False``, when the lower bound of the true logit exceeds the upper bound of every
    other logit. The model is evaluated in eval mode (its mode is restored afterwards).

    Example:
        >>> import numpy as np
        >>> from axiom import Dense, manual_seed
        >>> manual_seed(0)
        >>> model = Dense(2, 2)
        >>> x = np.zeros((3, 2), np.float32)
        >>> y = model(x).numpy().argmax(axis=1)
        >>> verified_accuracy(model, x, y, eps=0.0), verified_accuracy(model, x, y, eps=100.0)
        (1.0, 0.0)
    """
    xt = as_tensor(x)
    if len(xt) == 0:
        raise ValueError("verified_accuracy: no examples")
    modes = [(m, m.training) for m in model.modules()]
    model.eval()
    try:
        hits = 0
        with no_grad():
            for s in range(0, len(xt), batch_size):
                xb = Tensor(xt.data[s : s + batch_size])
                yb = np.asarray(y.data if isinstance(y, Tensor) else y)[s : s + batch_size]
                if elide:
                    margins = worst_case_margins(model, *_box(xb, eps, input_range), yb).data.astype(np.float64)
                else:
                    lo, hi = interval_bounds(model, *_box(xb, eps, input_range))
                    lab = _labels(yb, lo.shape[1], "verified_accuracy")
                    margins = hi.data.astype(np.float64) - lo.data.astype(np.float64)[np.arange(len(lab)), lab, None]
                lab = _labels(yb, margins.shape[1], "verified_accuracy")
                margins[np.arange(len(lab)), lab] = -np.inf  # the true class's own margin does not count
                hits += int(np.sum(margins.max(axis=1) < 0))  # NaN bounds prove nothing
    finally:
        for m, mode in modes:
            m.training = mode
    return hits / len(xt)


class IBPTraining:
    """Gowal-style certified training: ``kappa * natural + (1 - kappa) * loss_fn(z_worst, y)``.

    ``IBPTraining(eps, input_range=(0.0, 1.0), eps_schedule=EpsilonSchedule(), kappa_start=1.0,
    kappa_end=0.5, loss_fn=None, elide=True)``. At training progress ``p`` the box is
    ``[x - eps_t, x + eps_t]`` clipped to ``input_range`` (``None``: no clipping) with
    ``eps_t = eps * eps_schedule.factor(p)``; ``kappa`` moves from ``kappa_start`` to ``kappa_end``
    with the same factor. During warm-up (``eps_t = 0``) the loss is the natural loss. ``loss_fn``
    (``loss_fn(logits, labels) -> Tensor``) defaults to the one ``fit`` passes, else softmax
    cross-entropy. The model must output logits ``(batch, classes)``. With ``elide`` (the
    default) ``z_worst`` are the bounds of the margins ``z_j - z_y`` with the last Dense layer
    folded in (:func:`worst_case_margins`, tighter, as in Gowal et al.); ``elide=False`` uses
    the plain worst-case logits (:func:`worst_case_logits`).

    ``fit(..., certified=IBPTraining(...))`` calls :meth:`loss` every step and :meth:`metrics`
    (verified accuracy at the final ``eps``) at evaluation.

    Example:
        >>> import numpy as np
        >>> from axiom import Dense, Sequential, manual_seed, relu
        >>> manual_seed(0)
        >>> model = Sequential(Dense(4, 16, relu), Dense(16, 3)).train()
        >>> x = np.random.default_rng(0).random((8, 4)).astype(np.float32)
        >>> y = np.arange(8) % 3
        >>> ibp = IBPTraining(eps=0.1, eps_schedule=EpsilonSchedule(warmup=0.0, ramp=0.5))
        >>> loss = ibp.loss(model, x, y, progress=1.0)
        >>> loss.backward(); model[0].weight.grad is not None
        True
        >>> ibp.last["eps"], ibp.last["kappa"]
        (0.1, 0.5)
        >>> sorted(ibp.metrics(model, x, y))
        ['verified_acc']
    """

    def __init__(
        self,
        eps: float,
        input_range: tuple[Any, Any] | None = (0.0, 1.0),
        eps_schedule: EpsilonSchedule | None = None,
        kappa_start: float = 1.0,
        kappa_end: float = 0.5,
        loss_fn: Callable[[Tensor, Any], Tensor] | None = None,
        elide: bool = True,
    ) -> None:
        if isinstance(eps, bool) or not isinstance(eps, int | float) or not math.isfinite(eps) or eps < 0:
            raise ValueError(f"IBPTraining: eps must be a finite number >= 0, got {eps!r}")
        for name, k in (("kappa_start", kappa_start), ("kappa_end", kappa_end)):
            if isinstance(k, bool) or not isinstance(k, int | float) or not 0.0 <= k <= 1.0:
                raise ValueError(f"IBPTraining: {name} must be in [0, 1], got {k!r}")
        if input_range is not None:
            if len(input_range) != 2 or np.any(np.asarray(input_range[0]) > np.asarray(input_range[1])):
                raise ValueError(f"IBPTraining: input_range must be (low, high) with low <= high, got {input_range!r}")
        if eps_schedule is not None and not isinstance(eps_schedule, EpsilonSchedule):
            raise TypeError(f"IBPTraining: eps_schedule must be an EpsilonSchedule, got {type(eps_schedule).__name__}")
        self.eps = float(eps)
        self.input_range = input_range
        self.eps_schedule = eps_schedule if eps_schedule is not None else EpsilonSchedule()
        self.kappa_start = float(kappa_start)
        self.kappa_end = float(kappa_end)
        self.loss_fn = loss_fn
        self.elide = bool(elide)
        #: What the last :meth:`loss` call used: ``eps``, ``kappa`` and ``robust_loss`` (None in warm-up).
        self.last: dict[str, float | None] = {}

    def __repr__(self) -> str:
        return (
            f"IBPTraining(eps={self.eps}, input_range={self.input_range}, eps_schedule={self.eps_schedule}, "
            f"kappa_start={self.kappa_start}, kappa_end={self.kappa_end})"
        )

    def schedule(self, progress: float) -> tuple[float, float]:
        """``(eps_t, kappa_t)`` at training progress ``progress`` in [0, 1].

        Example:
            >>> IBPTraining(0.2, eps_schedule=EpsilonSchedule(warmup=0.0, ramp=1.0)).schedule(0.5)
            (0.1, 0.75)
        """
        f = self.eps_schedule.factor(progress)
        return self.eps * f, self.kappa_start + (self.kappa_end - self.kappa_start) * f

    def loss(
        self,
        model: Layer,
        xb: Any,
        yb: Any,
        loss_fn: Callable[[Tensor, Any], Tensor] | None = None,
        natural_loss: Tensor | None = None,
        outputs: Tensor | None = None,
        progress: float = 1.0,
    ) -> Tensor:
        """The mixed natural / worst-case loss for one batch (differentiable).

        ``natural_loss`` and ``outputs`` are what ``fit`` already computed (either is computed
        here when missing); ``progress`` is ``step / total_steps``.

        Example:
            >>> import numpy as np
            >>> from axiom import Dense, manual_seed
            >>> manual_seed(0)
            >>> ibp = IBPTraining(eps=0.5)
            >>> x, y = np.full((2, 3), 0.5, np.float32), np.array([0, 1])
            >>> warm, full = ibp.loss(Dense(3, 2), x, y, progress=0.0), ibp.loss(Dense(3, 2), x, y, progress=1.0)
            >>> bool(full.item() > warm.item())              # the worst case costs more than the clean loss
            True
        """
        fn = loss_fn or self.loss_fn or _cross_entropy
        x = as_tensor(xb)
        if natural_loss is None:
            out = outputs if outputs is not None else model(x)
            natural_loss = fn(out, yb)
        eps_t, kappa = self.schedule(progress)
        if eps_t == 0.0:
            self.last = {"eps": 0.0, "kappa": kappa, "robust_loss": None}
            return natural_loss
        box = _box(x, eps_t, self.input_range)
        if self.elide:
            z_worst = worst_case_margins(model, *box, yb, reference=x)
        else:
            z_worst = worst_case_logits(*interval_bounds(model, *box, reference=x), yb)
        robust = fn(z_worst, yb)
        self.last = {"eps": eps_t, "kappa": kappa, "robust_loss": float(robust.item())}
        if kappa == 0.0:
            return robust
        return natural_loss * kappa + robust * (1.0 - kappa)

    def metrics(self, model: Layer, xb: Any, yb: Any) -> dict[str, float]:
        """``{"verified_acc": ...}``: IBP-verified accuracy at the final ``eps`` (eval mode).

        Example:
            >>> import numpy as np
            >>> from axiom import Dense
            >>> IBPTraining(eps=10.0).metrics(Dense(2, 2), np.zeros((4, 2), np.float32), np.array([0, 1, 0, 1]))
            {'verified_acc': 0.0}
        """
        return {"verified_acc": verified_accuracy(model, xb, yb, self.eps, self.input_range, elide=self.elide)}
