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
