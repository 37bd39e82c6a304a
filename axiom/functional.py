"""Functional ops on Tensors: each calls the active backend's kernel on the arrays.

This is the tensor layer's door to the kernels (``tensor -> backends``): layers call these
functions and never a backend directly, so a backend switch (``axiom.backends.use_backend``)
changes every layer at once. Arguments are Tensors or arrays; results are Tensors.

Example:
    >>> import numpy as np
    >>> from axiom import functional as F
    >>> F.relu(np.array([-1.0, 2.0], np.float32)).numpy().tolist()
    [0.0, 2.0]
"""

from __future__ import annotations

from typing import Any

import numpy as np

from axiom.backends import get_backend
from axiom.backends.base import Padding2d, Pair
from axiom.tensor import Tensor, as_tensor


def _arr(x: Any) -> np.ndarray:
    return as_tensor(x).data


def _opt(x: Any) -> np.ndarray | None:
    return None if x is None else _arr(x)


def matmul(a: Any, b: Any) -> Tensor:
    """``a @ b`` with NumPy semantics on the active backend.

    Example:
        >>> matmul(np.ones((2, 3), np.float32), np.ones((3, 4), np.float32)).shape
        (2, 4)
    """
    return Tensor(get_backend().matmul(_arr(a), _arr(b)))


def linear(x: Any, weight: Any, bias: Any = None) -> Tensor:
    """``x @ weight + bias`` with ``weight`` shaped ``(in, out)``.

    Example:
        >>> x, w = np.ones((1, 2), np.float32), np.ones((2, 3), np.float32)
        >>> linear(x, w, bias=np.array([0.0, 1.0, 2.0], np.float32)).numpy().tolist()
        [[2.0, 3.0, 4.0]]
    """
    y = get_backend().matmul(_arr(x), _arr(weight))
    if bias is not None:
        y = y + _arr(bias)
    return Tensor(y)


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
    return Tensor(get_backend().conv2d(_arr(x), _arr(weight), _opt(bias), stride, padding, dilation, groups))


def batchnorm(x: Any, mean: Any, var: Any, gamma: Any = None, beta: Any = None, eps: float = 1e-5) -> Tensor:
    """Normalise the last axis with given statistics.

    Example:
        >>> x = np.array([[1.0, 4.0]], np.float32)
        >>> batchnorm(x, mean=np.array([1.0, 2.0]), var=np.array([1.0, 4.0]), eps=0.0).numpy().tolist()
        [[0.0, 1.0]]
    """
    return Tensor(get_backend().batchnorm(_arr(x), _arr(mean), _arr(var), _opt(gamma), _opt(beta), eps))


def layernorm(x: Any, gamma: Any = None, beta: Any = None, eps: float = 1e-5, n_axes: int = 1) -> Tensor:
    """Normalise over the last ``n_axes`` axes.

    Example:
        >>> layernorm(np.array([[1.0, 3.0]], np.float32), eps=0.0).numpy().tolist()
        [[-1.0, 1.0]]
    """
    return Tensor(get_backend().layernorm(_arr(x), _opt(gamma), _opt(beta), eps, n_axes))


def rmsnorm(x: Any, gamma: Any = None, eps: float = 1e-6, n_axes: int = 1) -> Tensor:
    """Root-mean-square normalisation over the last ``n_axes`` axes.

    Example:
        >>> rmsnorm(np.array([[3.0, -3.0]], np.float32), eps=0.0).numpy().tolist()
        [[1.0, -1.0]]
    """
    return Tensor(get_backend().rmsnorm(_arr(x), _opt(gamma), eps, n_axes))


def max_pool2d(
    x: Any, kernel: Pair, stride: Pair, padding: Padding2d = ((0, 0), (0, 0)), dilation: Pair = (1, 1)
) -> Tensor:
    """NHWC max pooling.

    Example:
        >>> x = np.arange(16, dtype=np.float32).reshape(1, 4, 4, 1)
        >>> max_pool2d(x, kernel=(2, 2), stride=(2, 2)).numpy()[0, :, :, 0].tolist()
        [[5.0, 7.0], [13.0, 15.0]]
    """
    return Tensor(get_backend().max_pool2d(_arr(x), kernel, stride, padding, dilation))


def avg_pool2d(
    x: Any, kernel: Pair, stride: Pair, padding: Padding2d = ((0, 0), (0, 0)), count_include_pad: bool = True
) -> Tensor:
    """NHWC average pooling.

    Example:
        >>> x = np.arange(16, dtype=np.float32).reshape(1, 4, 4, 1)
        >>> avg_pool2d(x, kernel=(2, 2), stride=(2, 2)).numpy()[0, :, :, 0].tolist()
        [[2.5, 4.5], [10.5, 12.5]]
    """
    return Tensor(get_backend().avg_pool2d(_arr(x), kernel, stride, padding, count_include_pad))


def global_avg_pool(x: Any) -> Tensor:
    """``(N, H, W, C) -> (N, C)``.

    Example:
        >>> global_avg_pool(np.ones((2, 4, 4, 3), np.float32)).shape
        (2, 3)
    """
    return Tensor(get_backend().global_avg_pool(_arr(x)))


def softmax(x: Any, axis: int = -1) -> Tensor:
    """Numerically stable softmax.

    Example:
        >>> softmax(np.zeros((1, 4), np.float32)).numpy().tolist()
        [[0.25, 0.25, 0.25, 0.25]]
    """
    return Tensor(get_backend().softmax(_arr(x), axis))


def log_softmax(x: Any, axis: int = -1) -> Tensor:
    """Numerically stable log-softmax.

    Example:
        >>> y = log_softmax(np.zeros((1, 4), np.float32)).numpy()
        >>> bool(np.allclose(y, np.log(0.25)))
        True
    """
    return Tensor(get_backend().log_softmax(_arr(x), axis))


def activation(x: Any, name: str, alpha: float = 0.0) -> Tensor:
    """Element-wise activation by name (see ``axiom.backends.ACTIVATIONS``).

    Example:
        >>> activation(np.array([-2.0, 3.0], np.float32), "leaky_relu", alpha=0.5).numpy().tolist()
        [-1.0, 3.0]
    """
    return Tensor(get_backend().activation(_arr(x), name, alpha))


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
    qa = _arr(q)
    s = float(scale) if scale is not None else 1.0 / float(np.sqrt(qa.shape[-1]))
    return Tensor(get_backend().attention(qa, _arr(k), _arr(v), causal, s, _opt(mask)))


def rope(x: Any, positions: Any = None, base: float = 10000.0) -> Tensor:
    """Rotary position embedding on ``(..., seq, head_dim)``; positions default to ``0..seq-1``.

    Example:
        >>> x = np.ones((1, 3, 4), np.float32)
        >>> y = rope(x).numpy()
        >>> y.shape, y[0, 0].tolist()  # position 0 is not rotated
        ((1, 3, 4), [1.0, 1.0, 1.0, 1.0])
    """
    xa = _arr(x)
    pos = np.arange(xa.shape[-2]) if positions is None else np.asarray(positions)
    return Tensor(get_backend().rope(xa, pos, base))


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
        return Tensor(t.data.copy())
    rng = generator if generator is not None else np.random.default_rng()
    keep = rng.random(t.shape, dtype=np.float32) >= np.float32(p)
    compute = np.float64 if t.dtype == np.float64 else np.float32
    # multiply (rather than select) so NaN/Inf propagate even where dropped, as in torch
    y = t.data.astype(compute) * (keep.astype(compute) * compute(1.0 / (1.0 - p)))
    return Tensor(y.astype(t.dtype, copy=False))


def embedding(indices: Any, weight: Any) -> Tensor:
    """Rows of ``weight`` (``(num_embeddings, dim)``) picked by integer ``indices``: shape ``(*indices.shape, dim)``.

    Indices must be integers in ``[0, num_embeddings)`` (``IndexError`` otherwise; the
    Embedding layer checks first and names itself).

    Example:
        >>> table = np.arange(6, dtype=np.float32).reshape(3, 2)
        >>> embedding(np.array([[2, 0]]), table).numpy().tolist()
        [[[4.0, 5.0], [0.0, 1.0]]]
    """
    idx = np.asarray(indices.data if isinstance(indices, Tensor) else indices)
    if idx.dtype.kind not in "iu":
        raise TypeError(f"embedding: indices must be integers, got {idx.dtype.name}")
    w = _arr(weight)
    return Tensor(np.take(w, idx, axis=0, mode="raise"))
