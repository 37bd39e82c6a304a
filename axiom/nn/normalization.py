"""Normalisation layers: BatchNorm (channels-last), LayerNorm and RMSNorm (trailing axes).

All three follow PyTorch's numerics (``torch.nn.BatchNorm1d/2d``, ``LayerNorm``, ``RMSNorm``)
with Axiom's layout: BatchNorm normalises the **last** axis, so it works on ``(batch, C)``,
``(batch, seq, C)`` and NHWC images ``(batch, H, W, C)``. Sizes left out are inferred from the
first input, like ``Dense(10)``.

Example:
    >>> import numpy as np
    >>> from axiom import BatchNorm, LayerNorm, RMSNorm
    >>> x = np.arange(24, dtype=np.float32).reshape(2, 3, 4)
    >>> LayerNorm()(x).shape, RMSNorm(4)(x).shape, BatchNorm()(x).shape
    ((2, 3, 4), (2, 3, 4), (2, 3, 4))
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import ml_dtypes
import numpy as np

from axiom import functional as F
from axiom.nn.layer import Layer, Parameter
from axiom.shapes import Dim, Shape, dims_match, format_shape, is_known
from axiom.tensor import Tensor, as_dtype


def _positive_int(value: Any, what: str, owner: str) -> int:
    if isinstance(value, bool) or not isinstance(value, int | np.integer) or value <= 0:
        raise ValueError(f"{owner}: {what} must be a positive int, got {value!r}")
    return int(value)


def _non_negative_float(value: Any, what: str, owner: str) -> float:
    if isinstance(value, bool) or not isinstance(value, int | float | np.floating) or not value >= 0:
        raise ValueError(f"{owner}: {what} must be a number >= 0, got {value!r}")
    return float(value)


def _normalized_shape(value: Any, owner: str) -> tuple[int, ...] | None:
    if value is None:
        return None
    dims = (value,) if isinstance(value, int | np.integer) and not isinstance(value, bool) else tuple(value)
    if not dims:
        raise ValueError(f"{owner}: normalized_shape must name at least one axis, got {value!r}")
    return tuple(_positive_int(d, "normalized_shape", owner) for d in dims)


def _compute_dtype(dtype: np.dtype) -> np.dtype:
    """Statistics are computed in float64 for float64 inputs and float32 otherwise (as the kernels do)."""
    return np.dtype(np.float64) if dtype == np.float64 else np.dtype(np.float32)


class BatchNorm(Layer):
    """Batch normalisation over the last (channel) axis: ``(x - mean) / sqrt(var + eps) * weight + bias``.

    ``BatchNorm(num_features=None, eps=1e-5, momentum=0.1, affine=True, track_running_stats=True)``.
    Works on any input ``(batch, ..., C)``: ``(batch, C)`` like ``torch.nn.BatchNorm1d`` and NHWC
    ``(batch, H, W, C)`` like ``torch.nn.BatchNorm2d`` on the NCHW transpose.

    - **training** (``model.train()``): normalises with the batch statistics over every axis but
      the last (biased variance), and updates ``running_mean`` / ``running_var`` with the
      *unbiased* variance: ``running = (1 - momentum) * running + momentum * batch`` (with
      ``momentum=None``, a cumulative average ``1 / num_batches_tracked``), exactly like torch.
    - **eval** (the default): normalises with ``running_mean`` / ``running_var``.
    - ``track_running_stats=False``: no buffers, batch statistics in both modes.

    Parameters ``weight`` (ones) and ``bias`` (zeros) exist when ``affine``; buffers
    ``running_mean`` (zeros), ``running_var`` (ones) and ``num_batches_tracked`` (int64) when
    tracking. The names match torch's, so state dicts map one to one.

    Example:
        >>> import numpy as np
        >>> bn = BatchNorm()                                  # channels inferred: 3
        >>> x = np.array([[1.0, 2.0, 3.0], [3.0, 6.0, 9.0]], np.float32)
        >>> bn.train()(x).numpy().round(3).tolist()           # batch statistics
        [[-1.0, -1.0, -1.0], [1.0, 1.0, 1.0]]
        >>> bn.running_mean.numpy().tolist(), int(bn.num_batches_tracked.item())
        ([0.20000000298023224, 0.4000000059604645, 0.6000000238418579], 1)
        >>> bn.output_shape(("batch", "H", "W", 3))
        ('batch', 'H', 'W', 3)
    """

    def __init__(
        self,
        num_features: int | None = None,
        eps: float = 1e-5,
        momentum: float | None = 0.1,
        affine: bool = True,
        track_running_stats: bool = True,
        *,
        dtype: Any = None,
    ) -> None:
        super().__init__()
        self.num_features = None if num_features is None else _positive_int(num_features, "num_features", "BatchNorm")
        self.eps = _non_negative_float(eps, "eps", "BatchNorm")
        if momentum is not None:
            momentum = _non_negative_float(momentum, "momentum", "BatchNorm")
            if momentum > 1.0:
                raise ValueError(f"BatchNorm: momentum must be in [0, 1] or None, got {momentum!r}")
        self.momentum = momentum
        self.affine = bool(affine)
        self.track_running_stats = bool(track_running_stats)
        self._dtype = as_dtype(dtype) if dtype is not None else self._dtype
        self.weight: Parameter | None = None
        self.bias: Parameter | None = None
        for name in ("running_mean", "running_var", "num_batches_tracked"):
            self.register_buffer(name, None)
        self._built = False
        if self.num_features is not None:
            self._create(self.num_features)

    def _create(self, c: int) -> None:
        self.num_features = c
        if self.affine:
            self.weight = Parameter(np.ones(c, self._dtype))
            self.bias = Parameter(np.zeros(c, self._dtype))
        if self.track_running_stats:
            self.register_buffer("running_mean", np.zeros(c, self._dtype))
            self.register_buffer("running_var", np.ones(c, self._dtype))
            self.register_buffer("num_batches_tracked", np.array(0, np.int64))
        self._built = True

    @property
    def built(self) -> bool:
        return self._built

    def build(self, input_shape: Sequence[Dim]) -> None:
        if not self._built and len(input_shape) >= 2 and is_known(input_shape[-1]):
            self._create(int(input_shape[-1]))

    def param_dtype(self) -> np.dtype | None:
        dt = super().param_dtype()
        if dt is None and self.running_mean is not None:
            return self.running_mean.dtype
        return dt

    def expects(self) -> str:
        c = self.num_features if self.num_features is not None else "C"
        return f"(batch, ..., {c}) (channels last)"

    def default_input_shape(self) -> Shape:
        return ("batch", self.num_features if self.num_features is not None else "features")

    def output_shape(self, input_shape: Sequence[Dim]) -> Shape:
        if len(input_shape) < 2:
            raise self.shape_error(input_shape, f"rank >= 2 expected, got rank {len(input_shape)}")
        if self.num_features is not None and not dims_match(input_shape[-1], self.num_features):
            raise self.shape_error(
                input_shape, f"last axis has {input_shape[-1]} channels, this layer has {self.num_features}"
            )
        return tuple(input_shape)

    def forward(self, x: Tensor) -> Tensor:
        use_batch_stats = self.training or self.running_mean is None
        if not use_batch_stats:
            return F.batchnorm(x, self.running_mean, self.running_var, self.weight, self.bias, self.eps)
        cdt = _compute_dtype(x.dtype)
        data = x.data.astype(np.float64)
        axes = tuple(range(x.ndim - 1))
        n = int(np.prod([x.shape[a] for a in axes]))
        if n <= 1 and self.training:
            raise ValueError(
                f"{self.name}: expected more than 1 value per channel when training, got input shape "
                f"{format_shape(x.shape)}"
            )
        mean = data.mean(axis=axes)
        var = ((data - mean) ** 2).mean(axis=axes)  # biased: used to normalise
        if self.training and self.running_mean is not None:
            self._update_running(mean, var * n / max(n - 1, 1))
        return F.batchnorm(x, mean.astype(cdt), var.astype(cdt), self.weight, self.bias, self.eps, batch_stats=True)

    def _update_running(self, mean: np.ndarray, unbiased_var: np.ndarray) -> None:
        assert self.running_mean is not None and self.running_var is not None
        assert self.num_batches_tracked is not None
        self.num_batches_tracked.data = np.asarray(self.num_batches_tracked.data + 1, np.int64)
        factor = 1.0 / float(self.num_batches_tracked.item()) if self.momentum is None else self.momentum
        dt = self.running_mean.dtype
        rm = self.running_mean.data.astype(np.float64)
        rv = self.running_var.data.astype(np.float64)
        self.running_mean.data = ((1.0 - factor) * rm + factor * mean).astype(dt)
        self.running_var.data = ((1.0 - factor) * rv + factor * unbiased_var).astype(dt)

    def extra_repr(self) -> str:
        c = self.num_features if self.num_features is not None else "?"
        return (
            f"{c}, eps={self.eps}, momentum={self.momentum}, affine={self.affine}, "
            f"track_running_stats={self.track_running_stats}"
        )


class _TrailingNorm(Layer):
    """Shared shape logic for LayerNorm and RMSNorm: normalise over the trailing ``normalized_shape``."""

    normalized_shape: tuple[int, ...] | None

    def _create(self, normalized_shape: tuple[int, ...]) -> None:
        raise NotImplementedError

    @property
    def built(self) -> bool:
        return self.normalized_shape is not None

    def build(self, input_shape: Sequence[Dim]) -> None:
        if self.normalized_shape is None and len(input_shape) >= 2 and is_known(input_shape[-1]):
            self._create((int(input_shape[-1]),))

    def expects(self) -> str:
        dims = self.normalized_shape if self.normalized_shape is not None else ("features",)
        return "(batch, ..., " + ", ".join(str(d) for d in dims) + ")"

    def default_input_shape(self) -> Shape:
        return ("batch", *(self.normalized_shape if self.normalized_shape is not None else ("features",)))

    def output_shape(self, input_shape: Sequence[Dim]) -> Shape:
        ns = self.normalized_shape
        n_axes = 1 if ns is None else len(ns)
        if len(input_shape) < n_axes + 1:
            raise self.shape_error(
                input_shape, f"rank >= {n_axes + 1} expected (a batch axis, then {n_axes} normalised axes)"
            )
        if ns is not None:
            trailing = tuple(input_shape[-len(ns) :])
            if not all(dims_match(a, b) for a, b in zip(trailing, ns)):
                raise self.shape_error(
                    input_shape,
                    f"trailing axes {format_shape(trailing)} must equal normalized_shape {format_shape(ns)}",
                )
        return tuple(input_shape)


class LayerNorm(_TrailingNorm):
    """Layer normalisation over the trailing ``normalized_shape`` axes (biased variance, like torch).

    ``LayerNorm(normalized_shape=None, eps=1e-5, elementwise_affine=True, bias=True)``;
    ``normalized_shape`` is an int or a tuple of the trailing sizes; ``None`` infers the last
    axis from the first input. ``weight`` (ones) and ``bias`` (zeros) have ``normalized_shape``.

    Example:
        >>> import numpy as np
        >>> ln = LayerNorm(2)
        >>> ln(np.array([[1.0, 3.0]], np.float32)).numpy().round(4).tolist()
        [[-1.0, 1.0]]
        >>> LayerNorm((4, 8)).output_shape(("batch", "seq", 4, 8))
        ('batch', 'seq', 4, 8)
        >>> sorted(LayerNorm(8).state_dict())
        ['bias', 'weight']
    """

    def __init__(
        self,
        normalized_shape: int | Sequence[int] | None = None,
        eps: float = 1e-5,
        elementwise_affine: bool = True,
        bias: bool = True,
        *,
        dtype: Any = None,
    ) -> None:
        super().__init__()
        self.eps = _non_negative_float(eps, "eps", "LayerNorm")
        self.elementwise_affine = bool(elementwise_affine)
        self.use_bias = bool(bias)
        self._dtype = as_dtype(dtype) if dtype is not None else self._dtype
        self.weight: Parameter | None = None
        self.bias: Parameter | None = None
        self.normalized_shape = None
        ns = _normalized_shape(normalized_shape, "LayerNorm")
        if ns is not None:
            self._create(ns)

    def _create(self, normalized_shape: tuple[int, ...]) -> None:
        self.normalized_shape = normalized_shape
        if self.elementwise_affine:
            self.weight = Parameter(np.ones(normalized_shape, self._dtype))
            if self.use_bias:
                self.bias = Parameter(np.zeros(normalized_shape, self._dtype))

    def forward(self, x: Tensor) -> Tensor:
        assert self.normalized_shape is not None
        return F.layernorm(x, self.weight, self.bias, self.eps, len(self.normalized_shape))

    def extra_repr(self) -> str:
        ns = self.normalized_shape if self.normalized_shape is not None else "?"
        return f"{ns}, eps={self.eps}, elementwise_affine={self.elementwise_affine}, bias={self.use_bias}"


class RMSNorm(_TrailingNorm):
    """Root-mean-square normalisation: ``x / sqrt(mean(x**2) + eps) * weight`` over trailing axes.

    ``RMSNorm(normalized_shape=None, eps=None, elementwise_affine=True)`` matches
    ``torch.nn.RMSNorm``: ``eps=None`` means ``finfo(input dtype).eps`` (``1.19e-07`` for
    float32), chosen per call from the input's dtype. ``weight`` (ones) has ``normalized_shape``.

    Example:
        >>> import numpy as np
        >>> RMSNorm(2, eps=0.0, dtype="float64")(np.array([[3.0, 4.0]])).numpy().round(4).tolist()
        [[0.8485, 1.1314]]
        >>> RMSNorm().output_shape(("batch", "seq", 512))
        ('batch', 'seq', 512)
    """

    def __init__(
        self,
        normalized_shape: int | Sequence[int] | None = None,
        eps: float | None = None,
        elementwise_affine: bool = True,
        *,
        dtype: Any = None,
    ) -> None:
        super().__init__()
        self.eps = None if eps is None else _non_negative_float(eps, "eps", "RMSNorm")
        self.elementwise_affine = bool(elementwise_affine)
        self._dtype = as_dtype(dtype) if dtype is not None else self._dtype
        self.weight: Parameter | None = None
        self.normalized_shape = None
        ns = _normalized_shape(normalized_shape, "RMSNorm")
        if ns is not None:
            self._create(ns)

    def _create(self, normalized_shape: tuple[int, ...]) -> None:
        self.normalized_shape = normalized_shape
        if self.elementwise_affine:
            self.weight = Parameter(np.ones(normalized_shape, self._dtype))

    def effective_eps(self, dtype: Any) -> float:
        """The epsilon used for inputs of ``dtype`` (``finfo(dtype).eps`` when ``eps`` is None)."""
        return self.eps if self.eps is not None else float(ml_dtypes.finfo(as_dtype(dtype)).eps)

    def forward(self, x: Tensor) -> Tensor:
        assert self.normalized_shape is not None
        return F.rmsnorm(x, self.weight, self.effective_eps(x.dtype), len(self.normalized_shape))

    def extra_repr(self) -> str:
        ns = self.normalized_shape if self.normalized_shape is not None else "?"
        return f"{ns}, eps={self.eps}, elementwise_affine={self.elementwise_affine}"
