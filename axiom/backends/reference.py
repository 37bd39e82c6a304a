"""The NumPy reference backend: every op of the kernel contract, written for clarity.

This is the oracle other backends are fuzzed against. Low-precision inputs (float16,
bfloat16) are computed in float32 and cast back, as PyTorch does on the CPU.

Example:
    >>> import numpy as np
    >>> from axiom.backends.reference import ReferenceBackend
    >>> ReferenceBackend().softmax(np.zeros((1, 4), np.float32), axis=-1)
    array([[0.25, 0.25, 0.25, 0.25]], dtype=float32)
"""

from __future__ import annotations

import math

import numpy as np

from axiom.backends import reference_grad
from axiom.backends.base import ACTIVATIONS, DERIVED_GRAD_OPS, GRAD_OPS, KernelBackend, Padding2d, Pair
from axiom.backends.reference_grad import _SELU_ALPHA, _SELU_SCALE
from axiom.backends.reference_grad import _sigmoid as _sigmoid_any


def _compute_dtype(x: np.ndarray) -> np.dtype:
    """float64 stays float64; everything else computes in float32."""
    return np.dtype(np.float64) if x.dtype == np.float64 else np.dtype(np.float32)


def _up(x: np.ndarray) -> np.ndarray:
    return x.astype(_compute_dtype(x), copy=False)


def _erf(x: np.ndarray) -> np.ndarray:
    """Vectorised erf via math.erf (exact to double precision, no SciPy needed)."""
    return np.vectorize(math.erf, otypes=[np.float64])(x.astype(np.float64)).astype(x.dtype)


def _windows(x: np.ndarray, kernel: Pair, stride: Pair, dilation: Pair) -> np.ndarray:
    """Sliding windows of an (already padded) NHWC array: ``(N, Ho, Wo, kH, kW, C)``."""
    n, h, w, c = x.shape
    kh, kw = kernel
    sh, sw = stride
    dh, dw = dilation
    ho = (h - dh * (kh - 1) - 1) // sh + 1
    wo = (w - dw * (kw - 1) - 1) // sw + 1
    s = x.strides
    return np.lib.stride_tricks.as_strided(
        x,
        shape=(n, max(ho, 0), max(wo, 0), kh, kw, c),
        strides=(s[0], s[1] * sh, s[2] * sw, s[1] * dh, s[2] * dw, s[3]),
        writeable=False,
    )


def _pad(x: np.ndarray, padding: Padding2d, value: float) -> np.ndarray:
    (pt, pb), (pl, pr) = padding
    if pt == pb == pl == pr == 0:
        return x
    return np.pad(x, ((0, 0), (pt, pb), (pl, pr), (0, 0)), constant_values=value)


class ReferenceBackend(KernelBackend):
    """Pure-NumPy implementation of the whole kernel contract.

    Example:
        >>> be = ReferenceBackend()
        >>> be.activation(np.array([-1.0, 2.0], np.float32), "relu").tolist()
        [0.0, 2.0]
    """

    name = "numpy"

    def matmul(self, a: np.ndarray, b: np.ndarray) -> np.ndarray:
        out_dtype = np.result_type(a.dtype, b.dtype)
        return np.matmul(_up(a), _up(b)).astype(out_dtype, copy=False)

    def conv2d(
        self,
        x: np.ndarray,
        w: np.ndarray,
        bias: np.ndarray | None,
        stride: Pair,
        padding: Padding2d,
        dilation: Pair,
        groups: int,
    ) -> np.ndarray:
        dtype = x.dtype
        kh, kw, cin_g, cout = w.shape
        xp = _pad(_up(x), padding, 0.0)
        cols = _windows(np.ascontiguousarray(xp), (kh, kw), stride, dilation)  # N,Ho,Wo,kH,kW,C
        n, ho, wo = cols.shape[:3]
        cout_g = cout // groups
        wu = _up(w)
        out = np.empty((n, ho, wo, cout), dtype=_compute_dtype(x))
        for g in range(groups):
            patch = cols[..., g * cin_g : (g + 1) * cin_g]
            wg = wu[..., g * cout_g : (g + 1) * cout_g]
            out[..., g * cout_g : (g + 1) * cout_g] = np.tensordot(patch, wg, axes=([3, 4, 5], [0, 1, 2]))
        if bias is not None:
            out += _up(bias)
        return out.astype(dtype, copy=False)

    def batchnorm(self, x, mean, var, gamma, beta, eps):  # type: ignore[no-untyped-def]
        xu = _up(x)
        y = (xu - _up(mean)) / np.sqrt(_up(var) + eps)
        if gamma is not None:
            y = y * _up(gamma)
        if beta is not None:
            y = y + _up(beta)
        return y.astype(x.dtype, copy=False)

    def layernorm(self, x, gamma, beta, eps, n_axes):  # type: ignore[no-untyped-def]
        xu = _up(x)
        axes = tuple(range(x.ndim - n_axes, x.ndim))
        mu = xu.mean(axis=axes, keepdims=True)
        var = ((xu - mu) ** 2).mean(axis=axes, keepdims=True)
        y = (xu - mu) / np.sqrt(var + eps)
        if gamma is not None:
            y = y * _up(gamma)
        if beta is not None:
            y = y + _up(beta)
        return y.astype(x.dtype, copy=False)

    def rmsnorm(self, x, gamma, eps, n_axes):  # type: ignore[no-untyped-def]
        xu = _up(x)
        axes = tuple(range(x.ndim - n_axes, x.ndim))
        y = xu / np.sqrt((xu * xu).mean(axis=axes, keepdims=True) + eps)
        if gamma is not None:
            y = y * _up(gamma)
        return y.astype(x.dtype, copy=False)

    def max_pool2d(self, x, kernel, stride, padding, dilation):  # type: ignore[no-untyped-def]
        xp = np.ascontiguousarray(_pad(_up(x), padding, -np.inf))
        win = _windows(xp, kernel, stride, dilation)
        if win.size == 0:
            return np.zeros(win.shape[:3] + (x.shape[3],), dtype=x.dtype)
        return win.max(axis=(3, 4)).astype(x.dtype, copy=False)

    def avg_pool2d(self, x, kernel, stride, padding, count_include_pad):  # type: ignore[no-untyped-def]
        xu = _up(x)
        xp = np.ascontiguousarray(_pad(xu, padding, 0.0))
        total = _windows(xp, kernel, stride, (1, 1)).sum(axis=(3, 4))
        if count_include_pad:
            count = np.asarray(kernel[0] * kernel[1], dtype=xu.dtype)
        else:
            ones = np.ascontiguousarray(_pad(np.ones((1,) + x.shape[1:3] + (1,), xu.dtype), padding, 0.0))
            count = _windows(ones, kernel, stride, (1, 1)).sum(axis=(3, 4))
        return (total / count).astype(x.dtype, copy=False)

    def global_avg_pool(self, x: np.ndarray) -> np.ndarray:
        return _up(x).mean(axis=(1, 2)).astype(x.dtype, copy=False)

    def softmax(self, x: np.ndarray, axis: int) -> np.ndarray:
        xu = _up(x)
        shifted = xu - np.max(xu, axis=axis, keepdims=True)
        e = np.exp(shifted)
        return (e / e.sum(axis=axis, keepdims=True)).astype(x.dtype, copy=False)

    def log_softmax(self, x: np.ndarray, axis: int) -> np.ndarray:
        xu = _up(x)
        shifted = xu - np.max(xu, axis=axis, keepdims=True)
        out = shifted - np.log(np.exp(shifted).sum(axis=axis, keepdims=True))
        return out.astype(x.dtype, copy=False)

    def activation(self, x: np.ndarray, name: str, alpha: float = 0.0) -> np.ndarray:
        if name not in ACTIVATIONS:
            raise ValueError(f"unknown activation {name!r}; expected one of {', '.join(ACTIVATIONS)}")
        xu = _up(x)
        with np.errstate(over="ignore", invalid="ignore"):
            y = _ACTIVATION_FUNCS[name](xu, alpha)
        return np.asarray(y, dtype=xu.dtype).astype(x.dtype, copy=False)

    def attention(self, q, k, v, causal, scale, mask=None):  # type: ignore[no-untyped-def]
        qu, ku, vu = _up(q), _up(k), _up(v)
        scores = np.matmul(qu, np.swapaxes(ku, -1, -2)) * scale
        if mask is not None:
            scores = scores + _up(mask)
        if causal:
            lq, lk = scores.shape[-2], scores.shape[-1]
            hidden = np.triu(np.ones((lq, lk), dtype=bool), k=1 + lk - lq)
            scores = np.where(hidden, -np.inf, scores)
        probs = self.softmax(scores, axis=-1)
        return np.matmul(probs, vu).astype(q.dtype, copy=False)

    def rope(self, x: np.ndarray, positions: np.ndarray, base: float) -> np.ndarray:
        xu = _up(x)
        d = x.shape[-1]
        half = d // 2
        inv_freq = 1.0 / (base ** (np.arange(half, dtype=np.float64) * 2.0 / d))
        angles = np.asarray(positions, np.float64)[:, None] * inv_freq[None, :]  # (seq, half)
        cos = np.cos(angles).astype(xu.dtype)
        sin = np.sin(angles).astype(xu.dtype)
        x1, x2 = xu[..., :half], xu[..., half : 2 * half]
        out = np.concatenate([x1 * cos - x2 * sin, x2 * cos + x1 * sin, xu[..., 2 * half :]], axis=-1)
        return out.astype(x.dtype, copy=False)


def _softplus(x: np.ndarray) -> np.ndarray:
    # log(1 + e^x) without overflow, matching torch's threshold-free form.
    return np.logaddexp(0.0, x).astype(x.dtype)


def _gelu_tanh(x: np.ndarray) -> np.ndarray:
    c = np.asarray(math.sqrt(2.0 / math.pi), x.dtype)
    return 0.5 * x * (1.0 + np.tanh(c * (x + 0.044715 * x**3)))


def _sigmoid(x: np.ndarray) -> np.ndarray:
    return _sigmoid_any(x).astype(x.dtype)


# The backward kernels are the functions of reference_grad (the derived ones come from KernelBackend).
for _op in GRAD_OPS:
    if _op not in DERIVED_GRAD_OPS:
        setattr(ReferenceBackend, _op, staticmethod(getattr(reference_grad, _op)))

_ACTIVATION_FUNCS = {
    "identity": lambda x, a: x,
    "relu": lambda x, a: np.maximum(x, 0),  # np.maximum propagates NaN, like torch
    "leaky_relu": lambda x, a: np.where(x >= 0, x, x * a),
    "elu": lambda x, a: np.where(x > 0, x, a * np.expm1(np.minimum(x, 0))),
    "selu": lambda x, a: _SELU_SCALE * np.where(x > 0, x, _SELU_ALPHA * np.expm1(np.minimum(x, 0))),
    "gelu": lambda x, a: 0.5 * x * (1.0 + _erf(x / np.asarray(math.sqrt(2.0), x.dtype))),
    "gelu_tanh": lambda x, a: _gelu_tanh(x),
    "sigmoid": lambda x, a: _sigmoid(x),
    "tanh": lambda x, a: np.tanh(x),
    "softplus": lambda x, a: _softplus(x),
    "softsign": lambda x, a: x / (1.0 + np.abs(x)),
    "silu": lambda x, a: x * _sigmoid(x),
    "mish": lambda x, a: x * np.tanh(_softplus(x)),
    "hardswish": lambda x, a: x * np.clip(x + 3.0, 0.0, 6.0) / 6.0,
    "hardsigmoid": lambda x, a: np.clip(x + 3.0, 0.0, 6.0) / 6.0,
    "relu6": lambda x, a: np.clip(x, 0.0, 6.0),
}
