"""NumPy reference gradients of ``matmul`` and ``conv2d``: the oracle for the native backward kernels.

Written for clarity, with the conventions of :mod:`axiom.backends.base` (NHWC images,
``(kH, kW, C_in / groups, C_out)`` weights, explicit ``((top, bottom), (left, right))``
padding) and NumPy ``matmul`` semantics (1-D operands, broadcast batch dimensions, whose
gradients are summed back to the operand's shape). float64 computes in float64, every other
dtype in float32; results have the dtype of the operand they belong to.

Example:
    >>> import numpy as np
    >>> a = np.arange(6.0).reshape(2, 3); b = np.ones((3, 2))
    >>> ga, gb = matmul_backward(a, b, np.ones((2, 2)))
    >>> ga.tolist(), gb.tolist()
    ([[2.0, 2.0, 2.0], [2.0, 2.0, 2.0]], [[3.0, 3.0], [5.0, 5.0], [7.0, 7.0]])
"""

from __future__ import annotations

import math

import numpy as np

from axiom.backends.base import Padding2d, Pair


def _compute_dtype(*arrays: np.ndarray) -> np.dtype:
    return np.dtype(np.float64) if any(a.dtype == np.float64 for a in arrays) else np.dtype(np.float32)


def sum_to(g: np.ndarray, shape: tuple[int, ...]) -> np.ndarray:
    """Sum a broadcast gradient back to ``shape`` (leading axes, then axes of size 1).

    Example:
        >>> import numpy as np
        >>> sum_to(np.ones((2, 3, 4)), (1, 4)).tolist()
        [[6.0, 6.0, 6.0, 6.0]]
    """
    lead = g.ndim - len(shape)
    if lead > 0:
        g = g.sum(axis=tuple(range(lead)))
    axes = tuple(i for i, s in enumerate(shape) if s == 1 and g.shape[i] != 1)
    if axes:
        g = g.sum(axis=axes, keepdims=True)
    return g.reshape(shape)


def matmul_backward(a: np.ndarray, b: np.ndarray, grad_out: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Gradients ``(d a, d b)`` of ``sum(grad_out * (a @ b))`` with NumPy ``matmul`` semantics.

    Example:
        >>> a = np.ones((4, 2, 3), np.float32); b = np.ones((3, 5), np.float32)
        >>> ga, gb = matmul_backward(a, b, np.ones((4, 2, 5), np.float32))
        >>> ga.shape, gb.shape, float(gb[0, 0])
        ((4, 2, 3), (3, 5), 8.0)
    """
    dt = _compute_dtype(a, b, grad_out)
    a2 = a.astype(dt) if a.ndim >= 2 else a.astype(dt)[None, :]
    b2 = b.astype(dt) if b.ndim >= 2 else b.astype(dt)[:, None]
    batch = np.broadcast_shapes(a2.shape[:-2], b2.shape[:-2])
    g = grad_out.astype(dt).reshape(*batch, a2.shape[-2], b2.shape[-1])
    ga = np.matmul(g, np.swapaxes(b2, -1, -2))
    gb = np.matmul(np.swapaxes(a2, -1, -2), g)
    ga = sum_to(ga, a2.shape).reshape(a.shape)
    gb = sum_to(gb, b2.shape).reshape(b.shape)
    return ga.astype(a.dtype, copy=False), gb.astype(b.dtype, copy=False)


def conv2d_backward_input(
    grad_out: np.ndarray,
    w: np.ndarray,
    x_shape: tuple[int, int, int, int],
    stride: Pair,
    padding: Padding2d,
    dilation: Pair,
    groups: int,
) -> np.ndarray:
    """Gradient of ``sum(grad_out * conv2d(x, w))`` with respect to ``x`` (shape ``x_shape``, NHWC).

    Example:
        >>> w, gy = np.ones((3, 3, 1, 1), np.float32), np.ones((1, 2, 2, 1), np.float32)
        >>> dx = conv2d_backward_input(gy, w, (1, 4, 4, 1), (1, 1), ((0, 0), (0, 0)), (1, 1), 1)
        >>> dx[0, :, :, 0].tolist()
        [[1.0, 2.0, 2.0, 1.0], [2.0, 4.0, 4.0, 2.0], [2.0, 4.0, 4.0, 2.0], [1.0, 2.0, 2.0, 1.0]]
    """
    dt = _compute_dtype(grad_out, w)
    n, h, wd, cin = x_shape
    kh, kw, cin_g, cout = w.shape
    (pt, pb), (pl, pr) = padding
    (sh, sw), (dh, dw) = stride, dilation
    ho, wo = grad_out.shape[1:3]
    g_out, wu = grad_out.astype(dt), w.astype(dt)
    dxp = np.zeros((n, h + pt + pb, wd + pl + pr, cin), dt)
    cout_g = cout // groups
    for g in range(groups if ho and wo else 0):
        gy = g_out[..., g * cout_g : (g + 1) * cout_g]
        wg = wu[..., g * cout_g : (g + 1) * cout_g]  # kH, kW, cin_g, cout_g
        for i in range(kh):
            for j in range(kw):
                contrib = gy @ wg[i, j].T  # N, Ho, Wo, cin_g
                r0, c0 = i * dh, j * dw
                dxp[
                    :, r0 : r0 + sh * (ho - 1) + 1 : sh, c0 : c0 + sw * (wo - 1) + 1 : sw, g * cin_g : (g + 1) * cin_g
                ] += contrib
    return dxp[:, pt : pt + h, pl : pl + wd, :].astype(grad_out.dtype, copy=False)


def conv2d_backward_weight(
    x: np.ndarray,
    grad_out: np.ndarray,
    w_shape: tuple[int, int, int, int],
    stride: Pair,
    padding: Padding2d,
    dilation: Pair,
    groups: int,
) -> tuple[np.ndarray, np.ndarray]:
    """Gradients ``(d w, d bias)`` of ``sum(grad_out * (conv2d(x, w) + bias))``; ``d w`` has shape ``w_shape``.

    Example:
        >>> x = np.ones((2, 3, 3, 1), np.float32); gy = np.ones((2, 1, 1, 1), np.float32)
        >>> dw, db = conv2d_backward_weight(x, gy, (3, 3, 1, 1), (1, 1), ((0, 0), (0, 0)), (1, 1), 1)
        >>> float(dw.sum()), db.tolist()
        (18.0, [2.0])
    """
    dt = _compute_dtype(x, grad_out)
    kh, kw, cin_g, cout = w_shape
    (pt, pb), (pl, pr) = padding
    (sh, sw), (dh, dw) = stride, dilation
    ho, wo = grad_out.shape[1:3]
    xp = np.pad(x.astype(dt), ((0, 0), (pt, pb), (pl, pr), (0, 0)))
    gy = grad_out.astype(dt)
    cout_g = cout // groups
    dwt = np.zeros(w_shape, dt)
    for g in range(groups if ho and wo else 0):
        gyg = gy[..., g * cout_g : (g + 1) * cout_g].reshape(-1, cout_g)
        for i in range(kh):
            for j in range(kw):
                r0, c0 = i * dh, j * dw
                patch = xp[
                    :, r0 : r0 + sh * (ho - 1) + 1 : sh, c0 : c0 + sw * (wo - 1) + 1 : sw, g * cin_g : (g + 1) * cin_g
                ]
                dwt[i, j, :, g * cout_g : (g + 1) * cout_g] = patch.reshape(-1, cin_g).T @ gyg
    db = gy.sum(axis=(0, 1, 2))
    return dwt.astype(grad_out.dtype, copy=False), db.astype(grad_out.dtype, copy=False)


def _rows(x: np.ndarray, n_axes: int) -> tuple[np.ndarray, np.dtype]:
    """``x`` in its compute dtype as ``(rows, normalised size)``."""
    dt = _compute_dtype(x)
    return x.astype(dt).reshape(-1, int(np.prod(x.shape[x.ndim - n_axes :]))), dt


def batchnorm_backward(
    grad_out: np.ndarray, x: np.ndarray, mean: np.ndarray, var: np.ndarray, gamma: np.ndarray | None, eps: float
) -> tuple[np.ndarray, np.ndarray | None, np.ndarray]:
    """``(d x, d gamma | None, d beta)`` of batch norm with constant statistics (shapes ``(C,)``).

    Example:
        >>> dx, dg, db = batchnorm_backward(np.ones((2, 1)), np.array([[1.0], [3.0]]), np.array([2.0]),
        ...                                 np.array([4.0]), np.array([2.0]), 0.0)
        >>> dx.ravel().tolist(), dg.tolist(), db.tolist()
        ([1.0, 1.0], [0.0], [2.0])
    """
    xr, dt = _rows(x, 1)
    g = grad_out.astype(dt).reshape(xr.shape)
    invstd = 1.0 / np.sqrt(var.astype(dt) + dt.type(eps))
    xhat = (xr - mean.astype(dt)) * invstd
    dx = g * invstd * (gamma.astype(dt) if gamma is not None else 1.0)
    dgamma = None if gamma is None else (g * xhat).sum(axis=0).astype(gamma.dtype)
    dbeta = g.sum(axis=0).astype(grad_out.dtype)
    return dx.reshape(x.shape).astype(x.dtype), dgamma, dbeta


def layernorm_backward(
    grad_out: np.ndarray, x: np.ndarray, gamma: np.ndarray | None, eps: float, n_axes: int
) -> tuple[np.ndarray, np.ndarray | None, np.ndarray]:
    """``(d x, d gamma | None, d beta)`` of layer norm over the last ``n_axes`` axes.

    Example:
        >>> dx, dg, db = layernorm_backward(np.array([[1.0, 0.0]]), np.array([[1.0, 3.0]]), None, 0.0, 1)
        >>> dx.tolist(), dg, db.tolist()
        ([[0.0, 0.0]], None, [1.0, 0.0])
    """
    xr, dt = _rows(x, n_axes)
    g = grad_out.astype(dt).reshape(xr.shape)
    mu = xr.mean(axis=1, keepdims=True)
    invstd = 1.0 / np.sqrt(((xr - mu) ** 2).mean(axis=1, keepdims=True) + dt.type(eps))
    xhat = (xr - mu) * invstd
    dxhat = g * gamma.astype(dt).reshape(-1) if gamma is not None else g
    dx = invstd * (dxhat - dxhat.mean(axis=1, keepdims=True) - xhat * (dxhat * xhat).mean(axis=1, keepdims=True))
    pshape = x.shape[x.ndim - n_axes :]
    dgamma = None if gamma is None else (g * xhat).sum(axis=0).reshape(pshape).astype(gamma.dtype)
    dbeta = g.sum(axis=0).reshape(pshape).astype(grad_out.dtype)
    return dx.reshape(x.shape).astype(x.dtype), dgamma, dbeta


def rmsnorm_backward(
    grad_out: np.ndarray, x: np.ndarray, gamma: np.ndarray | None, eps: float, n_axes: int
) -> tuple[np.ndarray, np.ndarray | None]:
    """``(d x, d gamma | None)`` of RMS norm over the last ``n_axes`` axes.

    Example:
        >>> dx, dg = rmsnorm_backward(np.array([[1.0, 0.0]]), np.array([[3.0, 4.0]]), None, 0.0, 1)
        >>> [round(v, 4) for v in dx[0].tolist()]
        [0.181, -0.1358]
    """
    xr, dt = _rows(x, n_axes)
    g = grad_out.astype(dt).reshape(xr.shape)
    r = 1.0 / np.sqrt((xr * xr).mean(axis=1, keepdims=True) + dt.type(eps))
    dxhat = g * gamma.astype(dt).reshape(-1) if gamma is not None else g
    dx = r * (dxhat - xr * r * r * (dxhat * xr).mean(axis=1, keepdims=True))
    pshape = x.shape[x.ndim - n_axes :]
    dgamma = None if gamma is None else (g * xr * r).sum(axis=0).reshape(pshape).astype(gamma.dtype)
    return dx.reshape(x.shape).astype(x.dtype), dgamma


def _out_size(size: int, k: int, s: int, d: int) -> int:
    return max((size - d * (k - 1) - 1) // s + 1, 0)


def max_pool2d_backward(
    grad_out: np.ndarray, x: np.ndarray, kernel: Pair, stride: Pair, padding: Padding2d, dilation: Pair
) -> np.ndarray:
    """``d x`` of max pooling: each window's gradient goes to its first maximum, or its last NaN (as PyTorch).

    Windows made only of padding give nothing back.

    Example:
        >>> x = np.array([1.0, 4.0, 4.0, 2.0]).reshape(1, 2, 2, 1)
        >>> max_pool2d_backward(np.ones((1, 1, 1, 1)), x, (2, 2), (2, 2), ((0, 0), (0, 0)), (1, 1)).ravel().tolist()
        [0.0, 1.0, 0.0, 0.0]
    """
    dt = _compute_dtype(x)
    (pt, pb), (pl, pr) = padding
    (kh, kw), (sh, sw), (dh, dw) = kernel, stride, dilation
    n, h, wd, c = x.shape
    xp = np.pad(x.astype(dt), ((0, 0), (pt, pb), (pl, pr), (0, 0)), constant_values=-np.inf)
    hp, wp = xp.shape[1:3]
    ho, wo = _out_size(hp, kh, sh, dh), _out_size(wp, kw, sw, dw)
    dxp = np.zeros(xp.shape, dt)
    if ho and wo and n and c:
        s = xp.strides
        win = np.lib.stride_tricks.as_strided(
            xp, (n, ho, wo, kh, kw, c), (s[0], s[1] * sh, s[2] * sw, s[1] * dh, s[2] * dw, s[3]), writeable=False
        ).reshape(n, ho, wo, kh * kw, c)
        nan = np.isnan(win)
        last_nan = kh * kw - 1 - np.argmax(nan[:, :, :, ::-1], axis=3)
        first_max = np.argmax(np.where(nan, -np.inf, win), axis=3)
        idx = np.where(nan.any(axis=3), last_nan, first_max)  # (n, ho, wo, c)
        ni, hi, wi, ci = np.indices(idx.shape, sparse=True)
        rows = hi * sh + (idx // kw) * dh
        cols = wi * sw + (idx % kw) * dw
        np.add.at(dxp, (ni, rows, cols, ci), grad_out.astype(dt))
    return dxp[:, pt : pt + h, pl : pl + wd, :].astype(x.dtype)


def avg_pool2d_backward(
    grad_out: np.ndarray,
    x_shape: tuple[int, ...],
    kernel: Pair,
    stride: Pair,
    padding: Padding2d,
    count_include_pad: bool,
) -> np.ndarray:
    """``d x`` of average pooling: each window spreads its gradient evenly over its cells.

    Example:
        >>> avg_pool2d_backward(np.ones((1, 1, 1, 1)), (1, 2, 2, 1), (2, 2), (2, 2), ((0, 0), (0, 0)), True).ravel()
        array([0.25, 0.25, 0.25, 0.25])
    """
    dt = _compute_dtype(grad_out)
    (pt, pb), (pl, pr) = padding
    (kh, kw), (sh, sw) = kernel, stride
    n, h, wd, c = x_shape
    ho, wo = grad_out.shape[1:3]
    g = grad_out.astype(dt)
    if count_include_pad:
        g = g / (kh * kw)
    else:
        valid = np.zeros((h + pt + pb, wd + pl + pr), dt)
        valid[pt : pt + h, pl : pl + wd] = 1.0
        count = np.zeros((ho, wo), dt)
        for i in range(kh):
            for j in range(kw):
                count += valid[i : i + sh * (ho - 1) + 1 : sh, j : j + sw * (wo - 1) + 1 : sw]
        g = g / np.maximum(count, 1.0)[None, :, :, None]
    dxp = np.zeros((n, h + pt + pb, wd + pl + pr, c), dt)
    for i in range(kh if ho and wo else 0):
        for j in range(kw):
            dxp[:, i : i + sh * (ho - 1) + 1 : sh, j : j + sw * (wo - 1) + 1 : sw, :] += g
    return dxp[:, pt : pt + h, pl : pl + wd, :].astype(grad_out.dtype)


def global_avg_pool_backward(grad_out: np.ndarray, x_shape: tuple[int, ...]) -> np.ndarray:
    """``d x`` of ``(N, H, W, C) -> (N, C)`` averaging.

    Example:
        >>> global_avg_pool_backward(np.ones((1, 1)), (1, 2, 2, 1)).ravel().tolist()
        [0.25, 0.25, 0.25, 0.25]
    """
    n, h, w, c = x_shape
    g = grad_out.astype(_compute_dtype(grad_out)) / max(h * w, 1)
    return np.broadcast_to(g[:, None, None, :], x_shape).astype(grad_out.dtype)


def softmax_backward(grad_out: np.ndarray, y: np.ndarray, axis: int) -> np.ndarray:
    """``d x`` of softmax from its output ``y``: ``y * (g - sum(g * y))``.

    Example:
        >>> softmax_backward(np.array([1.0, 0.0]), np.array([0.5, 0.5]), -1).tolist()
        [0.25, -0.25]
    """
    dt = _compute_dtype(y)
    g, yu = grad_out.astype(dt), y.astype(dt)
    return (yu * (g - (g * yu).sum(axis=axis, keepdims=True))).astype(y.dtype)


def log_softmax_backward(grad_out: np.ndarray, y: np.ndarray, axis: int) -> np.ndarray:
    """``d x`` of log-softmax from its output ``y``: ``g - exp(y) * sum(g)``.

    Example:
        >>> log_softmax_backward(np.array([1.0, 0.0]), np.log([0.5, 0.5]), -1).tolist()
        [0.5, -0.5]
    """
    dt = _compute_dtype(y)
    g = grad_out.astype(dt)
    return (g - np.exp(y.astype(dt)) * g.sum(axis=axis, keepdims=True)).astype(y.dtype)


_SELU_ALPHA = 1.6732632423543772
_SELU_SCALE = 1.0507009873554805


def _sigmoid(x: np.ndarray) -> np.ndarray:
    # Two-sided form: exp never overflows (the reference's forward sigmoid casts this back).
    e = np.exp(-np.abs(x))
    return np.where(x >= 0, 1.0 / (1.0 + e), e / (1.0 + e))


def _gelu_tanh_grad(x: np.ndarray) -> np.ndarray:
    c = np.sqrt(2.0 / np.pi)
    t = np.tanh(c * (x + 0.044715 * x**3))
    return 0.5 * (1.0 + t) + 0.5 * x * (1.0 - t * t) * c * (1.0 + 3 * 0.044715 * x * x)


def _mish_grad(x: np.ndarray) -> np.ndarray:
    t = np.tanh(np.logaddexp(0.0, x))
    return t + x * _sigmoid(x) * (1.0 - t * t)


#: d activation / d x at x (PyTorch's choices at the kinks).
ACTIVATION_DERIVATIVES = {
    "identity": lambda x, a: np.ones_like(x),
    "relu": lambda x, a: (x > 0).astype(x.dtype),
    "leaky_relu": lambda x, a: np.where(x > 0, 1.0, a).astype(x.dtype),
    "elu": lambda x, a: np.where(x > 0, 1.0, a * np.exp(np.minimum(x, 0))),
    "selu": lambda x, a: _SELU_SCALE * np.where(x > 0, 1.0, _SELU_ALPHA * np.exp(np.minimum(x, 0))),
    "gelu": lambda x, a: (
        0.5 * (1.0 + np.vectorize(math.erf, otypes=[np.float64])(x / np.sqrt(2.0)))
        + x * np.exp(-0.5 * x * x) / np.sqrt(2.0 * np.pi)
    ),
    "gelu_tanh": lambda x, a: _gelu_tanh_grad(x),
    "sigmoid": lambda x, a: _sigmoid(x) * (1.0 - _sigmoid(x)),
    "tanh": lambda x, a: 1.0 - np.tanh(x) ** 2,
    "softplus": lambda x, a: _sigmoid(x),
    "softsign": lambda x, a: 1.0 / (1.0 + np.abs(x)) ** 2,
    "silu": lambda x, a: _sigmoid(x) * (1.0 + x * (1.0 - _sigmoid(x))),
    "mish": lambda x, a: _mish_grad(x),
    "hardswish": lambda x, a: np.where(x <= -3.0, 0.0, np.where(x < 3.0, x / 3.0 + 0.5, 1.0)),
    "hardsigmoid": lambda x, a: np.where((x > -3.0) & (x < 3.0), 1.0 / 6.0, 0.0),
    "relu6": lambda x, a: ((x > 0.0) & (x < 6.0)).astype(x.dtype),
}


def activation_backward(grad_out: np.ndarray, x: np.ndarray, name: str, alpha: float = 0.0) -> np.ndarray:
    """``d x`` of the element-wise activation ``name`` at ``x`` (``relu'(0) = 0`` as in PyTorch).

    Example:
        >>> activation_backward(np.ones(3), np.array([-1.0, 0.0, 2.0]), "relu").tolist()
        [0.0, 0.0, 1.0]
    """
    if name not in ACTIVATION_DERIVATIVES:
        raise ValueError(f"unknown activation {name!r}; expected one of {', '.join(ACTIVATION_DERIVATIVES)}")
    dt = _compute_dtype(x)
    xu = x.astype(dt)
    with np.errstate(over="ignore", invalid="ignore"):
        d = np.asarray(ACTIVATION_DERIVATIVES[name](xu, alpha), dt)
    return (grad_out.astype(dt) * d).astype(x.dtype)


def attention_backward(
    grad_out: np.ndarray,
    q: np.ndarray,
    k: np.ndarray,
    v: np.ndarray,
    causal: bool,
    scale: float,
    mask: np.ndarray | None = None,
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """``(d q, d k, d v)`` of ``softmax(q k^T * scale + mask) v`` (recomputes the probabilities).

    Example:
        >>> q = np.ones((1, 1, 2, 2)); dq, dk, dv = attention_backward(np.ones((1, 1, 2, 2)), q, q, q, False, 1.0)
        >>> dv[0, 0].tolist(), float(np.abs(dq).max())
        ([[1.0, 1.0], [1.0, 1.0]], 0.0)
    """
    dt = _compute_dtype(q)
    qu, ku, vu, g = (a.astype(dt) for a in (q, k, v, grad_out))
    scores = np.matmul(qu, np.swapaxes(ku, -1, -2)) * dt.type(scale)
    if mask is not None:
        scores = scores + mask.astype(dt)
    if causal:
        lq, lk = scores.shape[-2], scores.shape[-1]
        scores = np.where(np.triu(np.ones((lq, lk), dtype=bool), k=1 + lk - lq), -np.inf, scores)
    shifted = scores - scores.max(axis=-1, keepdims=True)
    e = np.exp(shifted)
    p = e / e.sum(axis=-1, keepdims=True)
    dv = np.matmul(np.swapaxes(p, -1, -2), g)
    dp = np.matmul(g, np.swapaxes(vu, -1, -2))
    ds = p * (dp - (dp * p).sum(axis=-1, keepdims=True)) * dt.type(scale)
    dq = np.matmul(ds, ku)
    dk = np.matmul(np.swapaxes(ds, -1, -2), qu)
    return (
        sum_to(dq, q.shape).astype(q.dtype),
        sum_to(dk, k.shape).astype(k.dtype),
        sum_to(dv, v.shape).astype(v.dtype),
    )
