"""Functional ops on Tensors: each calls the active backend's kernel on the arrays.

This is the tensor layer's door to the kernels (``tensor -> backends``): layers call these
functions and never a backend directly, so a backend switch (``axiom.backends.use_backend``)
changes every layer at once. Arguments are Tensors or arrays; results are Tensors.

Every op is differentiable: when an input requires a gradient (and grad mode is on) the
result is recorded on the autograd tape (:mod:`axiom.autograd`) with a rule that calls the
backend's backward kernel (``<op>_backward``, see :data:`axiom.backends.base.GRAD_OPS`).

Example:
    >>> import numpy as np
    >>> from axiom import functional as F
    >>> F.relu(np.array([-1.0, 2.0], np.float32)).numpy().tolist()
    [0.0, 2.0]
"""

from __future__ import annotations

from typing import Any

import numpy as np

from axiom.autograd import needs_grad, record
from axiom.backends import get_backend
from axiom.backends.base import Padding2d, Pair
from axiom.backends.reference_grad import sum_to
from axiom.tensor import Tensor, as_tensor


def _arr(x: Any) -> np.ndarray:
    return as_tensor(x).data


def _opt(x: Any) -> np.ndarray | None:
    return None if x is None else _arr(x)


def _t(x: Any) -> Tensor | None:
    return None if x is None else as_tensor(x)


def _result(name: str, out: np.ndarray, inputs: tuple[Tensor | None, ...], rule: Any) -> Tensor:
    """``out`` as a Tensor, recorded with ``rule(grad_out) -> one gradient per input`` when one needs it."""
    if not needs_grad(*inputs):
        return Tensor(out)
    return record(out, inputs, rule, name)


def _param_grad(g: np.ndarray | None, p: Tensor | None) -> np.ndarray | None:
    """A parameter gradient summed to the parameter's shape and dtype (None if there is none)."""
    if g is None or p is None:
        return None
    return sum_to(np.asarray(g), p.shape).astype(p.dtype, copy=False)


def matmul(a: Any, b: Any) -> Tensor:
    """``a @ b`` with NumPy semantics on the active backend.

    Example:
        >>> matmul(np.ones((2, 3), np.float32), np.ones((3, 4), np.float32)).shape
        (2, 4)
    """
    ta, tb = as_tensor(a), as_tensor(b)
    be = get_backend()
    return _result("matmul", be.matmul(ta.data, tb.data), (ta, tb), lambda g: be.matmul_backward(ta.data, tb.data, g))


def linear(x: Any, weight: Any, bias: Any = None) -> Tensor:
    """``x @ weight + bias`` with ``weight`` shaped ``(in, out)``.

    Example:
        >>> x, w = np.ones((1, 2), np.float32), np.ones((2, 3), np.float32)
        >>> linear(x, w, bias=np.array([0.0, 1.0, 2.0], np.float32)).numpy().tolist()
        [[2.0, 3.0, 4.0]]
    """
    tx, tw, tb = as_tensor(x), as_tensor(weight), _t(bias)
    be = get_backend()
    y = be.matmul(tx.data, tw.data)
    if tb is not None:
        y = y + tb.data

    def rule(g: np.ndarray) -> tuple[np.ndarray | None, np.ndarray | None, np.ndarray | None]:
        xd, wd = tx.data, tw.data
        if wd.ndim != 2 or xd.ndim < 2:  # vectors, stacks of weights: the general kernel
            gx, gw = be.matmul_backward(xd, wd, g)
            return gx, gw, _param_grad(g, tb)
        # (..., in) @ (in, out): fold the batch axes into rows; compute only the gradients needed
        # (a first layer's input needs none: that GEMM is as large as the weight's)
        g2 = g.reshape(-1, g.shape[-1])
        gx = be.matmul(g2, wd.T).reshape(xd.shape).astype(xd.dtype, copy=False) if tx.requires_grad else None
        gw = _param_grad(be.matmul(xd.reshape(-1, xd.shape[-1]).T, g2), tw) if tw.requires_grad else None
        return gx, gw, _param_grad(g2.sum(axis=0), tb) if tb is not None and tb.requires_grad else None

    return _result("linear", y, (tx, tw, tb), rule)


def conv2d(
    x: Any,
    weight: Any,
    bias: Any = None,
    stride: Pair = (1, 1),
    padding: Padding2d = ((0, 0), (0, 0)),
    dilation: Pair = (1, 1),
    groups: int = 1,
) -> Tensor:
    """NHWC convolution; ``weight`` is ``(kH, kW, C_in/groups, C_out)``.

    Example:
        >>> x, w = np.ones((1, 5, 5, 3), np.float32), np.ones((3, 3, 3, 8), np.float32)
        >>> conv2d(x, w).shape, conv2d(x, w, padding=((1, 1), (1, 1))).shape
        ((1, 3, 3, 8), (1, 5, 5, 8))
    """
    tx, tw, tb = as_tensor(x), as_tensor(weight), _t(bias)
    be = get_backend()
    y = be.conv2d(tx.data, tw.data, _opt(tb), stride, padding, dilation, groups)

    def rule(g: np.ndarray) -> tuple[np.ndarray | None, np.ndarray | None, np.ndarray | None]:
        args = (stride, padding, dilation, groups)
        if not tx.requires_grad:  # a first layer: no gradient for the data
            gw, gb = be.conv2d_backward_weight(tx.data, g, tw.shape, *args)
            return None, gw, _param_grad(gb, tb)
        if not tw.requires_grad and (tb is None or not tb.requires_grad):
            return be.conv2d_backward_input(g, tw.data, tx.shape, *args), None, None
        gx, gw, gb = be.conv2d_backward(tx.data, tw.data, g, *args)
        return gx, gw, _param_grad(gb, tb)

    return _result("conv2d", y, (tx, tw, tb), rule)


def batchnorm(
    x: Any,
    mean: Any,
    var: Any,
    gamma: Any = None,
    beta: Any = None,
    eps: float = 1e-5,
    batch_stats: bool = False,
) -> Tensor:
    """Normalise the last axis with given statistics.

    ``batch_stats=True`` says ``mean`` and ``var`` (biased) are this batch's own statistics over
    every axis but the last, so the gradient also flows through them (training mode);
    otherwise they are constants (inference, running statistics).

    Example:
        >>> x = np.array([[1.0, 4.0]], np.float32)
        >>> batchnorm(x, mean=np.array([1.0, 2.0]), var=np.array([1.0, 4.0]), eps=0.0).numpy().tolist()
        [[0.0, 1.0]]
    """
    tx, tg, tb = as_tensor(x), _t(gamma), _t(beta)
    be = get_backend()
    m, v = _arr(mean), _arr(var)
    y = be.batchnorm(tx.data, m, v, _opt(tg), _opt(tb), eps)

    def rule(g: np.ndarray) -> tuple[np.ndarray, np.ndarray | None, np.ndarray | None]:
        gx, gg, gb = be.batchnorm_backward(g, tx.data, m, v, _opt(tg), eps)
        if batch_stats:
            gx = _through_batch_stats(gx, tx.data, m, v, eps)
        return gx, _param_grad(gg, tg), _param_grad(gb, tb)

    return _result("batchnorm", y, (tx, tg, tb), rule)


def _through_batch_stats(gx: np.ndarray, x: np.ndarray, mean: np.ndarray, var: np.ndarray, eps: float) -> np.ndarray:
    """Turn the constant-statistics gradient into the batch-statistics one.

    With ``xhat = (x - mean) / sqrt(var + eps)`` and ``d`` the constant-statistics gradient,
    ``dx = d - mean(d) - xhat * mean(d * xhat)`` per channel (means over the batch rows).
    """
    dt = np.float64 if x.dtype == np.float64 else np.float32
    c = x.shape[-1]
    d = gx.astype(dt).reshape(-1, c)
    xhat = (x.astype(dt).reshape(-1, c) - mean.astype(dt)) / np.sqrt(var.astype(dt) + dt(eps))
    dx = d - d.mean(axis=0) - xhat * (d * xhat).mean(axis=0)
    return dx.reshape(x.shape).astype(gx.dtype, copy=False)


def layernorm(x: Any, gamma: Any = None, beta: Any = None, eps: float = 1e-5, n_axes: int = 1) -> Tensor:
    """Normalise over the last ``n_axes`` axes.

    Example:
        >>> layernorm(np.array([[1.0, 3.0]], np.float32), eps=0.0).numpy().tolist()
        [[-1.0, 1.0]]
    """
    tx, tg, tb = as_tensor(x), _t(gamma), _t(beta)
    be = get_backend()
    y = be.layernorm(tx.data, _opt(tg), _opt(tb), eps, n_axes)

    def rule(g: np.ndarray) -> tuple[np.ndarray, np.ndarray | None, np.ndarray | None]:
        gx, gg, gb = be.layernorm_backward(g, tx.data, _opt(tg), eps, n_axes)
        return gx, _param_grad(gg, tg), _param_grad(gb, tb)

    return _result("layernorm", y, (tx, tg, tb), rule)


def rmsnorm(x: Any, gamma: Any = None, eps: float = 1e-6, n_axes: int = 1) -> Tensor:
    """Root-mean-square normalisation over the last ``n_axes`` axes.

    Example:
        >>> rmsnorm(np.array([[3.0, -3.0]], np.float32), eps=0.0).numpy().tolist()
        [[1.0, -1.0]]
    """
    tx, tg = as_tensor(x), _t(gamma)
    be = get_backend()
    y = be.rmsnorm(tx.data, _opt(tg), eps, n_axes)

    def rule(g: np.ndarray) -> tuple[np.ndarray, np.ndarray | None]:
        gx, gg = be.rmsnorm_backward(g, tx.data, _opt(tg), eps, n_axes)
        return gx, _param_grad(gg, tg)

    return _result("rmsnorm", y, (tx, tg), rule)


def max_pool2d(
    x: Any, kernel: Pair, stride: Pair, padding: Padding2d = ((0, 0), (0, 0)), dilation: Pair = (1, 1)
) -> Tensor:
    """NHWC max pooling.

    Example:
        >>> x = np.arange(16, dtype=np.float32).reshape(1, 4, 4, 1)
        >>> max_pool2d(x, kernel=(2, 2), stride=(2, 2)).numpy()[0, :, :, 0].tolist()
        [[5.0, 7.0], [13.0, 15.0]]
    """
    tx, be = as_tensor(x), get_backend()
    y = be.max_pool2d(tx.data, kernel, stride, padding, dilation)
    return _result(
        "max_pool2d", y, (tx,), lambda g: (be.max_pool2d_backward(g, tx.data, kernel, stride, padding, dilation),)
    )


def avg_pool2d(
    x: Any, kernel: Pair, stride: Pair, padding: Padding2d = ((0, 0), (0, 0)), count_include_pad: bool = True
) -> Tensor:
    """NHWC average pooling.

    Example:
        >>> x = np.arange(16, dtype=np.float32).reshape(1, 4, 4, 1)
        >>> avg_pool2d(x, kernel=(2, 2), stride=(2, 2)).numpy()[0, :, :, 0].tolist()
        [[2.5, 4.5], [10.5, 12.5]]
    """
    tx, be = as_tensor(x), get_backend()
    y = be.avg_pool2d(tx.data, kernel, stride, padding, count_include_pad)
    return _result(
        "avg_pool2d",
        y,
        (tx,),
        lambda g: (be.avg_pool2d_backward(g, tx.shape, kernel, stride, padding, count_include_pad),),
    )


def global_avg_pool(x: Any) -> Tensor:
    """``(N, H, W, C) -> (N, C)``.

    Example:
        >>> global_avg_pool(np.ones((2, 4, 4, 3), np.float32)).shape
        (2, 3)
    """
    tx, be = as_tensor(x), get_backend()
    y = be.global_avg_pool(tx.data)
    return _result("global_avg_pool", y, (tx,), lambda g: (be.global_avg_pool_backward(g, tx.shape),))


def softmax(x: Any, axis: int = -1) -> Tensor:
    """Numerically stable softmax.

    Example:
        >>> softmax(np.zeros((1, 4), np.float32)).numpy().tolist()
        [[0.25, 0.25, 0.25, 0.25]]
    """
    tx, be = as_tensor(x), get_backend()
    y = be.softmax(tx.data, axis)
    return _result("softmax", y, (tx,), lambda g: (be.softmax_backward(g, y, axis),))


def log_softmax(x: Any, axis: int = -1) -> Tensor:
    """Numerically stable log-softmax.

    Example:
        >>> y = log_softmax(np.zeros((1, 4), np.float32)).numpy()
        >>> bool(np.allclose(y, np.log(0.25)))
        True
    """
    tx, be = as_tensor(x), get_backend()
    y = be.log_softmax(tx.data, axis)
    return _result("log_softmax", y, (tx,), lambda g: (be.log_softmax_backward(g, y, axis),))


def activation(x: Any, name: str, alpha: float = 0.0) -> Tensor:
    """Element-wise activation by name (see ``axiom.backends.ACTIVATIONS``).

    Example:
        >>> activation(np.array([-2.0, 3.0], np.float32), "leaky_relu", alpha=0.5).numpy().tolist()
        [-1.0, 3.0]
    """
    tx, be = as_tensor(x), get_backend()
    y = be.activation(tx.data, name, alpha)
    return _result(name, y, (tx,), lambda g: (be.activation_backward(g, tx.data, name, alpha),))


def relu(x: Any) -> Tensor:
    """``max(x, 0)``.

    Example:
        >>> relu(np.array([-1.0, 0.5], np.float32)).numpy().tolist()
        [0.0, 0.5]
    """
    return activation(x, "relu")


def attention(q: Any, k: Any, v: Any, causal: bool = False, scale: float | None = None, mask: Any = None) -> Tensor:
    """Scaled dot-product attention on ``(batch, heads, seq, head_dim)``.

    Example:
        >>> q = np.ones((1, 2, 5, 8), np.float32)
        >>> attention(q, q, q, causal=True).shape
        (1, 2, 5, 8)
    """
    tq, tk, tv, be = as_tensor(q), as_tensor(k), as_tensor(v), get_backend()
    s = float(scale) if scale is not None else 1.0 / float(np.sqrt(tq.shape[-1]))
    m = _opt(mask)
    y = be.attention(tq.data, tk.data, tv.data, causal, s, m)
    return _result(
        "attention", y, (tq, tk, tv), lambda g: be.attention_backward(g, tq.data, tk.data, tv.data, causal, s, m)
    )


def rope(x: Any, positions: Any = None, base: float = 10000.0) -> Tensor:
    """Rotary position embedding on ``(..., seq, head_dim)``; positions default to ``0..seq-1``.

    Example:
        >>> x = np.ones((1, 3, 4), np.float32)
        >>> y = rope(x).numpy()
        >>> y.shape, y[0, 0].tolist()  # position 0 is not rotated
        ((1, 3, 4), [1.0, 1.0, 1.0, 1.0])
    """
    tx, be = as_tensor(x), get_backend()
    pos = np.arange(tx.shape[-2]) if positions is None else np.asarray(positions)
    return _result("rope", be.rope(tx.data, pos, base), (tx,), lambda g: (be.rope_backward(g, pos, base),))


def dropout(x: Any, p: float, training: bool = True, generator: np.random.Generator | None = None) -> Tensor:
    """Inverted dropout: zero each element with probability ``p``, scale survivors by ``1 / (1 - p)``.

    Identity when ``training`` is false or ``p == 0``. ``generator`` draws the mask (layers pass
    ``axiom.nn.init.generator()`` so ``manual_seed`` makes masks reproducible).

    Example:
        >>> y = dropout(np.ones(8, np.float32), 0.5, generator=np.random.default_rng(0)).numpy()
        >>> set(y.tolist()) <= {0.0, 2.0}
        True
        >>> dropout(np.ones(3, np.float32), 0.5, training=False).numpy().tolist()
        [1.0, 1.0, 1.0]
    """
    t = as_tensor(x)
    if not 0.0 <= p < 1.0:
        raise ValueError(f"dropout: p must be in [0, 1), got {p!r}")
    if not training or p == 0.0:
        return _result("dropout", t.data.copy(), (t,), lambda g: (g,))
    rng = generator if generator is not None else np.random.default_rng()
    keep = rng.random(t.shape, dtype=np.float32) >= np.float32(p)
    compute = np.float64 if t.dtype == np.float64 else np.float32
    scale = keep.astype(compute) * compute(1.0 / (1.0 - p))
    # multiply (rather than select) so NaN/Inf propagate even where dropped, as in torch
    y = (t.data.astype(compute) * scale).astype(t.dtype, copy=False)
    return _result("dropout", y, (t,), lambda g: ((g.astype(compute) * scale).astype(g.dtype, copy=False),))


def embedding(indices: Any, weight: Any, padding_idx: int | None = None) -> Tensor:
    """Rows of ``weight`` (``(num_embeddings, dim)``) picked by integer ``indices``: shape ``(*indices.shape, dim)``.

    Indices must be integers in ``[0, num_embeddings)`` (``IndexError`` otherwise; the
    Embedding layer checks first and names itself). The row ``padding_idx`` (if given) gets
    no gradient, as in ``torch.nn.functional.embedding``, so the padding vector stays fixed.

    Example:
        >>> table = np.arange(6, dtype=np.float32).reshape(3, 2)
        >>> embedding(np.array([[2, 0]]), table).numpy().tolist()
        [[[4.0, 5.0], [0.0, 1.0]]]
        >>> w = Tensor(table, requires_grad=True)
        >>> embedding(np.array([0, 1, 1]), w, padding_idx=0).sum().backward()
        >>> w.grad.numpy()[:, 0].tolist()
        [0.0, 2.0, 0.0]
    """
    idx = np.asarray(indices.data if isinstance(indices, Tensor) else indices)
    if idx.dtype.kind not in "iu":
        raise TypeError(f"embedding: indices must be integers, got {idx.dtype.name}")
    tw = as_tensor(weight)
    y = np.take(tw.data, idx, axis=0, mode="raise")

    def rule(g: np.ndarray) -> tuple[np.ndarray]:
        gw = np.zeros(tw.shape, g.dtype)
        np.add.at(gw, idx.reshape(-1), g.reshape(-1, tw.shape[-1]))  # repeated indices add up
        if padding_idx is not None:
            gw[padding_idx] = 0
        return (gw,)

    return _result("embedding", y, (tw,), rule)
