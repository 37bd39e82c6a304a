"""Abstract transformers: one class per kind of graph op (internal).

Every op works on ONE example (shapes exclude the batch axis) and provides

- ``ibp(ins)``: sound output interval from the input intervals (outward rounded);
- ``backward(A, ins, state, alpha)`` (not for ``kind == "cut"``): given coefficients ``A`` of
  shape ``(m, *out_shape)`` on the op's output, return the coefficients on each input, the
  constant term ``d`` (m,) and a rounding-error bound ``err`` (m,) such that, in real arithmetic,
  ``A . y >= sum_i A_i . x_i + d - err`` for every input in the given intervals (a lower bound;
  upper bounds are lower bounds of ``-A``);
- ``bound_vjp``: the reverse-mode derivative of that step (alpha-CROWN);
- ``forward`` / ``vjp``: the concrete float64 function and its vector-Jacobian product on a batch
  (``input_gradient``).

``kind`` is ``"linear"`` (exact linear map: Dense, Conv2d, BatchNorm, Affine, pooling averages,
reshapes, residual add, concat), ``"activation"``, ``"maxpool"`` or ``"cut"`` (IBP only:
Softmax, LogSoftmax, LayerNorm, RMSNorm; CROWN concretises at their output).

Example:
    >>> import numpy as np
    >>> from axiom.verify.bounds._ops import DenseOp
    >>> op = DenseOp(np.array([[1.0, -1.0]]), np.array([0.5, 0.0]), (1,))
    >>> lo, hi = op.ibp([(np.array([0.0]), np.array([1.0]))])
    >>> bool(lo[0] <= 0.5 <= 1.5 <= hi[0] and lo[1] <= -1.0 and hi[1] >= 0.0)
    True
"""

from __future__ import annotations

import math
from typing import Any

import numpy as np

from axiom.verify.bounds._act import ActivationMath, Relaxation
from axiom.verify.bounds._fp import TINY, U, center_radius, down, gamma, magnitude, up

Interval = tuple[np.ndarray, np.ndarray]


class UnsupportedLayerError(NotImplementedError):
    """A layer has no abstract transformer (or is used in a way the bounds do not cover)."""


def _abs_dot(A2: np.ndarray, v: np.ndarray) -> np.ndarray:
    return np.abs(A2) @ v


class Op:
    """Base class of graph ops (see the module docstring)."""

    kind = "linear"
    box_preserving = False  # single input, element-wise or index map: the image of a box is a box
    mixing = False  # single-input linear op whose outputs mix inputs (IBP exact only on a box input)

    def __init__(self, in_shapes: list[tuple[int, ...]], out_shape: tuple[int, ...]) -> None:
        self.in_shapes = [tuple(s) for s in in_shapes]
        self.out_shape = tuple(out_shape)

    @property
    def out_size(self) -> int:
        return math.prod(self.out_shape)

    def ibp(self, ins: list[Interval]) -> Interval:
        raise NotImplementedError

    def prepare(self, ins: list[Interval]) -> Any:
        """Per-analysis state computed once from the final input intervals (relaxations, magnitudes)."""
        return None

    def backward(
        self, A: np.ndarray, ins: list[Interval], state: Any, alpha: np.ndarray | None = None
    ) -> tuple[list[np.ndarray], np.ndarray, np.ndarray]:
        raise NotImplementedError

    def bound_vjp(
        self, A: np.ndarray, G_ins: list[np.ndarray], ins: list[Interval], state: Any, alpha: np.ndarray | None
    ) -> tuple[np.ndarray, np.ndarray | None]:
        raise NotImplementedError

    def forward(self, xs: list[np.ndarray]) -> np.ndarray:
        raise NotImplementedError

    def vjp(self, xs: list[np.ndarray], y: np.ndarray, G: np.ndarray) -> list[np.ndarray]:
        raise NotImplementedError


# ---------------------------------------------------------------------------------------------
# Linear ops with one input: y = L x + b
# ---------------------------------------------------------------------------------------------


class LinearOp(Op):
    """``y = L x + bias``; subclasses give ``apply`` (L), ``apply_T`` (L^T) and ``apply_abs`` (|L|).

    ``fan_in``/``fan_out``: most terms in one output / one transposed entry; ``coef_ulps``: extra
    relative rounding of the float coefficients against the real ones (e.g. ``1/k`` of an average).
    """

    mixing = True
    fan_in = 1
    fan_out = 1
    coef_ulps = 0
    bias: np.ndarray | None = None

    def apply(self, x: np.ndarray) -> np.ndarray:
        raise NotImplementedError

    def apply_T(self, A: np.ndarray) -> np.ndarray:  # noqa: N802 - math name
        raise NotImplementedError

    def apply_abs(self, x: np.ndarray) -> np.ndarray:
        return self.apply(x)

    def coef_abs_err(self, mag_in: np.ndarray) -> np.ndarray | None:
        """Absolute error of the float coefficients for inputs with ``|x| <= mag_in`` (out-shaped)."""
        return None

    def ibp(self, ins: list[Interval]) -> Interval:
        l, u = ins[0]
        c, r = center_radius(l, u)
        oc = self.apply(c[None])[0]
        ab = self.apply_abs(np.stack([r, np.abs(c) + r]))
        orad, est = ab[0], ab[1]
        if self.bias is not None:
            oc = oc + self.bias
            est = est + np.abs(self.bias)
        err = 2 * gamma(self.fan_in + 2 + self.coef_ulps) * est
        extra = self.coef_abs_err(magnitude(l, u))
        if extra is not None:
            err = err + extra
        err = up(err)
        return down(down(oc - orad) - err), up(up(oc + orad) + err)

    def prepare(self, ins: list[Interval]) -> Any:
        mag = magnitude(*ins[0])
        T = self.apply_abs(mag[None])[0].ravel()
        E = self.coef_abs_err(mag)
        return T, (None if E is None else E.ravel())

    def backward(self, A, ins, state, alpha=None):  # type: ignore[no-untyped-def]
        T, E = state
        m = A.shape[0]
        A2 = A.reshape(m, -1)
        absA = np.abs(A2)
        A_in = self.apply_T(A)
        err = 2 * gamma(self.fan_out + 2 + self.coef_ulps) * (absA @ T)
        if self.bias is not None:
            b = self.bias.ravel()
            d = A2 @ b
            err = err + 2 * gamma(b.size + 2) * (absA @ np.abs(b))
        else:
            d = np.zeros(m)
        if E is not None:
            err = err + absA @ E
        return [A_in], d, err

    def bound_vjp(self, A, G_ins, ins, state, alpha):  # type: ignore[no-untyped-def]
        G = self.apply(G_ins[0])
        if self.bias is not None:
            G = G + self.bias
        return G, None

    def forward(self, xs):  # type: ignore[no-untyped-def]
        y = self.apply(xs[0])
        return y if self.bias is None else y + self.bias

    def vjp(self, xs, y, G):  # type: ignore[no-untyped-def]
        B, m = G.shape[:2]
        g = self.apply_T(G.reshape(B * m, *self.out_shape))
        return [g.reshape(B, m, *self.in_shapes[0])]


class DenseOp(LinearOp):
    """``y = x @ W + b`` with ``W`` shaped ``(in, out)``."""

    def __init__(self, W: np.ndarray, b: np.ndarray | None, in_shape: tuple[int, ...]) -> None:
        super().__init__([in_shape], (W.shape[1],))
        self.W = np.ascontiguousarray(W, np.float64)
        self.WT = np.ascontiguousarray(self.W.T)
        self.absW = np.abs(self.W)
        self.bias = None if b is None else np.asarray(b, np.float64)
        self.fan_in, self.fan_out = W.shape

    def apply(self, x):  # type: ignore[no-untyped-def]
        return x @ self.W

    def apply_T(self, A):  # type: ignore[no-untyped-def]  # noqa: N802
        return A @ self.WT

    def apply_abs(self, x):  # type: ignore[no-untyped-def]
        return x @ self.absW


def _windows(x: np.ndarray, kernel: tuple[int, int], stride: tuple[int, int], dilation: tuple[int, int]) -> np.ndarray:
    """``(m, Ho, Wo, kH, kW, C)`` sliding windows of a padded ``(m, H, W, C)`` array (a view)."""
    x = np.ascontiguousarray(x)
    m, h, w, c = x.shape
    kh, kw = kernel
    sh, sw = stride
    dh, dw = dilation
    ho = (h - dh * (kh - 1) - 1) // sh + 1
    wo = (w - dw * (kw - 1) - 1) // sw + 1
    s = x.strides
    return np.lib.stride_tricks.as_strided(
        x,
        shape=(m, ho, wo, kh, kw, c),
        strides=(s[0], s[1] * sh, s[2] * sw, s[1] * dh, s[2] * dw, s[3]),
        writeable=False,
    )


def _pad(x: np.ndarray, padding: tuple[tuple[int, int], tuple[int, int]], value: float = 0.0) -> np.ndarray:
    (pt, pb), (pl, pr) = padding
    if pt == pb == pl == pr == 0:
        return x
    return np.pad(x, ((0, 0), (pt, pb), (pl, pr), (0, 0)), constant_values=value)


def _scatter_windows(
    cols: np.ndarray,
    in_hw: tuple[int, int],
    padding: tuple[tuple[int, int], tuple[int, int]],
    stride: tuple[int, int],
    dilation: tuple[int, int],
) -> np.ndarray:
    """Adjoint of :func:`_windows` + padding: ``(m, Ho, Wo, kH, kW, C)`` summed into ``(m, H, W, C)``."""
    m, ho, wo, kh, kw, c = cols.shape
    (pt, pb), (pl, pr) = padding
    h, w = in_hw
    sh, sw = stride
    dh, dw = dilation
    out = np.zeros((m, h + pt + pb, w + pl + pr, c))
    if (sh, sw) == (kh * dh, kw * dw) and (dh, dw) == (1, 1):  # non-overlapping tiles: one copy
        out[:, : ho * kh, : wo * kw, :] = cols.transpose(0, 1, 3, 2, 4, 5).reshape(m, ho * kh, wo * kw, c)
        return out[:, pt : pt + h, pl : pl + w, :]
    for i in range(kh):
        for j in range(kw):
            out[:, i * dh : i * dh + sh * (ho - 1) + 1 : sh, j * dw : j * dw + sw * (wo - 1) + 1 : sw, :] += cols[
                :, :, :, i, j, :
            ]
    return out[:, pt : pt + h, pl : pl + w, :]


class ConvOp(LinearOp):
    """NHWC convolution, weights ``(kH, kW, C_in/groups, C_out)``; explicit padding."""

    def __init__(
        self,
        W: np.ndarray,
        b: np.ndarray | None,
        in_shape: tuple[int, ...],
        out_shape: tuple[int, ...],
        stride: tuple[int, int],
        padding: tuple[tuple[int, int], tuple[int, int]],
        dilation: tuple[int, int],
        groups: int,
    ) -> None:
        super().__init__([in_shape], out_shape)
        self.W = np.asarray(W, np.float64)
        self.absW = np.abs(self.W)
        self.bias = None if b is None else np.broadcast_to(np.asarray(b, np.float64), self.out_shape).copy()
        self.stride, self.padding, self.dilation, self.groups = stride, padding, dilation, groups
        kh, kw, cin_g, cout = self.W.shape
        self.fan_in = kh * kw * cin_g
        self.fan_out = kh * kw * (cout // groups) + kh * kw

    def _conv(self, x: np.ndarray, W: np.ndarray) -> np.ndarray:
        kh, kw, cin_g, cout = W.shape
        cols = _windows(_pad(x, self.padding), (kh, kw), self.stride, self.dilation)
        g = self.groups
        if g == 1:
            return np.tensordot(cols, W, axes=([3, 4, 5], [0, 1, 2]))
        cout_g = cout // g
        out = np.empty(cols.shape[:3] + (cout,))
        for k in range(g):
            out[..., k * cout_g : (k + 1) * cout_g] = np.tensordot(
                cols[..., k * cin_g : (k + 1) * cin_g],
                W[..., k * cout_g : (k + 1) * cout_g],
                axes=([3, 4, 5], [0, 1, 2]),
            )
        return out

    def apply(self, x):  # type: ignore[no-untyped-def]
        return self._conv(x, self.W)

    def apply_abs(self, x):  # type: ignore[no-untyped-def]
        return self._conv(x, self.absW)

    def apply_T(self, A):  # type: ignore[no-untyped-def]  # noqa: N802
        """Transposed convolution: one GEMM per kernel tap, added into the strided input positions."""
        kh, kw, cin_g, cout = self.W.shape
        g = self.groups
        cout_g = cout // g
        m, ho, wo, _ = A.shape
        h, w = self.in_shapes[0][:2]
        (pt, pb), (pl, pr) = self.padding
        sh, sw = self.stride
        dh, dw = self.dilation
        out = np.zeros((m, h + pt + pb, w + pl + pr, cin_g * g))
        A2 = A.reshape(m * ho * wo, cout)
        for k in range(g):
            Ak = A2[:, k * cout_g : (k + 1) * cout_g]
            for i in range(kh):
                for j in range(kw):
                    tap = Ak @ self.W[i, j, :, k * cout_g : (k + 1) * cout_g].T  # (m Ho Wo, Cin_g)
                    out[
                        :,
                        i * dh : i * dh + sh * (ho - 1) + 1 : sh,
                        j * dw : j * dw + sw * (wo - 1) + 1 : sw,
                        k * cin_g : (k + 1) * cin_g,
                    ] += tap.reshape(m, ho, wo, cin_g)
        return out[:, pt : pt + h, pl : pl + w, :]


class ScaleShiftOp(LinearOp):
    """Element-wise ``y = s * x + t`` (BatchNorm in eval mode, Affine); ``es``/``et`` bound coefficient errors."""

    box_preserving = True
    mixing = False

    def __init__(
        self,
        s: np.ndarray,
        t: np.ndarray | None,
        shape: tuple[int, ...],
        es: np.ndarray | None = None,
        et: np.ndarray | None = None,
    ) -> None:
        super().__init__([shape], shape)
        self.s = np.broadcast_to(np.asarray(s, np.float64), shape).copy()
        self.abs_s = np.abs(self.s)
        self.bias = None if t is None else np.broadcast_to(np.asarray(t, np.float64), shape).copy()
        self.es = None if es is None else np.broadcast_to(es, shape)
        self.et = None if et is None else np.broadcast_to(et, shape)

    def apply(self, x):  # type: ignore[no-untyped-def]
        return x * self.s

    def apply_T(self, A):  # type: ignore[no-untyped-def]  # noqa: N802
        return A * self.s

    def apply_abs(self, x):  # type: ignore[no-untyped-def]
        return x * self.abs_s

    def coef_abs_err(self, mag_in):  # type: ignore[no-untyped-def]
        if self.es is None and self.et is None:
            return None
        e = np.zeros(self.out_shape)
        if self.es is not None:
            e = e + self.es * mag_in
        if self.et is not None:
            e = e + self.et
        return up(e * (1 + 8 * U))


class AvgPoolOp(LinearOp):
    """NHWC average pooling (``count_include_pad`` either way), as a linear map."""

    coef_ulps = 3

    def __init__(
        self,
        in_shape: tuple[int, ...],
        out_shape: tuple[int, ...],
        kernel: tuple[int, int],
        stride: tuple[int, int],
        padding: tuple[tuple[int, int], tuple[int, int]],
        count_include_pad: bool,
    ) -> None:
        super().__init__([in_shape], out_shape)
        self.kernel, self.stride, self.padding = kernel, stride, padding
        kh, kw = kernel
        if count_include_pad:
            self.count = np.full((out_shape[0], out_shape[1], 1), float(kh * kw))
        else:
            ones = _pad(np.ones((1, in_shape[0], in_shape[1], 1)), padding)
            self.count = _windows(ones, kernel, stride, (1, 1)).sum(axis=(3, 4))[0]
        self.fan_in = kh * kw
        self.fan_out = kh * kw

    def apply(self, x):  # type: ignore[no-untyped-def]
        return _windows(_pad(x, self.padding), self.kernel, self.stride, (1, 1)).sum(axis=(3, 4)) / self.count

    def apply_T(self, A):  # type: ignore[no-untyped-def]  # noqa: N802
        a = A / self.count
        kh, kw = self.kernel
        cols = np.broadcast_to(a[:, :, :, None, None, :], a.shape[:3] + (kh, kw) + a.shape[3:])
        return _scatter_windows(cols, self.in_shapes[0][:2], self.padding, self.stride, (1, 1))


class GlobalAvgPoolOp(LinearOp):
    """``(H, W, C) -> (C,)`` mean over the spatial axes."""

    coef_ulps = 3

    def __init__(self, in_shape: tuple[int, ...]) -> None:
        super().__init__([in_shape], (in_shape[2],))
        self.hw = in_shape[0] * in_shape[1]
        self.fan_in = self.hw

    def apply(self, x):  # type: ignore[no-untyped-def]
        return x.sum(axis=(1, 2)) / self.hw

    def apply_T(self, A):  # type: ignore[no-untyped-def]  # noqa: N802
        h, w, c = self.in_shapes[0]
        return np.broadcast_to((A / self.hw)[:, None, None, :], (A.shape[0], h, w, c)).copy()


class IndexOp(LinearOp):
    """Exact index maps: Flatten, Reshape, Permute, Dropout (eval), identity activation."""

    box_preserving = True
    mixing = False

    def __init__(self, in_shape: tuple[int, ...], out_shape: tuple[int, ...], perm: tuple[int, ...] | None = None):
        super().__init__([in_shape], out_shape)
        self.perm = perm
        self.inv = None if perm is None else tuple(int(i) for i in np.argsort(perm))

    def apply(self, x):  # type: ignore[no-untyped-def]
        if self.perm is not None:
            return x.transpose(0, *(1 + p for p in self.perm))
        return x.reshape(x.shape[0], *self.out_shape)

    def apply_T(self, A):  # type: ignore[no-untyped-def]  # noqa: N802
        if self.inv is not None:
            return A.transpose(0, *(1 + p for p in self.inv))
        return A.reshape(A.shape[0], *self.in_shapes[0])

    def ibp(self, ins):  # type: ignore[no-untyped-def]
        l, u = ins[0]
        return self.apply(l[None])[0], self.apply(u[None])[0]

    def prepare(self, ins):  # type: ignore[no-untyped-def]
        return None

    def backward(self, A, ins, state, alpha=None):  # type: ignore[no-untyped-def]
        m = A.shape[0]
        return [self.apply_T(A)], np.zeros(m), np.zeros(m)


# ---------------------------------------------------------------------------------------------
# Multi-input linear ops
# ---------------------------------------------------------------------------------------------


class AddOp(Op):
    """``x + y`` (the join of a Residual block)."""

    def ibp(self, ins):  # type: ignore[no-untyped-def]
        (l1, u1), (l2, u2) = ins
        return down(l1 + l2), up(u1 + u2)

    def backward(self, A, ins, state, alpha=None):  # type: ignore[no-untyped-def]
        m = A.shape[0]
        return [A, A], np.zeros(m), np.zeros(m)

    def bound_vjp(self, A, G_ins, ins, state, alpha):  # type: ignore[no-untyped-def]
        return G_ins[0] + G_ins[1], None

    def forward(self, xs):  # type: ignore[no-untyped-def]
        return xs[0] + xs[1]

    def vjp(self, xs, y, G):  # type: ignore[no-untyped-def]
        return [G, G]


class ConcatOp(Op):
    """Concatenation of the branch outputs of a Parallel along a per-example ``axis``."""

    def __init__(self, in_shapes: list[tuple[int, ...]], out_shape: tuple[int, ...], axis: int) -> None:
        super().__init__(in_shapes, out_shape)
        self.axis = axis
        self.splits = np.cumsum([s[axis] for s in in_shapes])[:-1]

    def ibp(self, ins):  # type: ignore[no-untyped-def]
        return (
            np.concatenate([i[0] for i in ins], axis=self.axis),
            np.concatenate([i[1] for i in ins], axis=self.axis),
        )

    def backward(self, A, ins, state, alpha=None):  # type: ignore[no-untyped-def]
        m = A.shape[0]
        return np.split(A, self.splits, axis=self.axis + 1), np.zeros(m), np.zeros(m)

    def bound_vjp(self, A, G_ins, ins, state, alpha):  # type: ignore[no-untyped-def]
        return np.concatenate(G_ins, axis=self.axis + 1), None

    def forward(self, xs):  # type: ignore[no-untyped-def]
        return np.concatenate(xs, axis=self.axis + 1)

    def vjp(self, xs, y, G):  # type: ignore[no-untyped-def]
        return np.split(G, self.splits, axis=self.axis + 2)


# ---------------------------------------------------------------------------------------------
# Element-wise activations
# ---------------------------------------------------------------------------------------------


class ActivationOp(Op):
    """Element-wise activation with a sound IBP range and linear relaxation (see ``_act``)."""

    kind = "activation"
    box_preserving = True

    def __init__(self, shape: tuple[int, ...], kind: str, alpha: float = 0.0) -> None:
        super().__init__([shape], shape)
        self.math = ActivationMath(kind, alpha)
        self.relu_like = kind in ("relu", "leaky_relu")

    def ibp(self, ins):  # type: ignore[no-untyped-def]
        return self.math.ibp(*ins[0])

    def prepare(self, ins):  # type: ignore[no-untyped-def]
        l, u = ins[0]
        r = self.math.relax(l.ravel(), u.ravel())
        return r, magnitude(l, u).ravel(), np.maximum(np.abs(r.bL), np.abs(r.bU))

    @staticmethod
    def _free_slopes(r: Relaxation, alpha: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        """``(idx, lower slopes, upper slopes)`` of the free neurons for per-row ``alpha`` ``(m, F)``."""
        idx = r.free_idx
        lo, hi = r.free_lo[idx], r.free_hi[idx]  # type: ignore[index]
        # Any slope in [lo, hi] is sound; clip so rounding cannot leave the range.
        slope = np.clip(lo + alpha * (hi - lo), lo, hi)
        if r.free_side == "L":
            return idx, slope, np.broadcast_to(r.kU[idx], slope.shape)
        return idx, np.broadcast_to(r.kL[idx], slope.shape), slope

    def backward(self, A, ins, state, alpha=None):  # type: ignore[no-untyped-def]
        r, mag, bmax = state
        m = A.shape[0]
        A2 = A.reshape(m, -1)
        A_in = np.where(A2 >= 0, A2 * r.kL, A2 * r.kU)
        if alpha is not None:
            idx, kL, kU = self._free_slopes(r, alpha)
            Af = A2[:, idx]
            A_in[:, idx] = np.where(Af >= 0, Af * kL, Af * kU)
        d = np.maximum(A2, 0.0) @ r.bL + np.minimum(A2, 0.0) @ r.bU
        err = 2 * U * (np.abs(A_in) @ mag) + 2 * gamma(A2.shape[1] + 2) * (np.abs(A2) @ bmax)
        return [A_in.reshape(A.shape)], d, err

    def bound_vjp(self, A, G_ins, ins, state, alpha):  # type: ignore[no-untyped-def]
        r, _, _ = state
        m = A.shape[0]
        A2 = A.reshape(m, -1)
        Gi = G_ins[0].reshape(m, -1)
        G = np.where(A2 >= 0, Gi * r.kL + r.bL, Gi * r.kU + r.bU)
        dalpha = None
        if alpha is not None:
            idx, kL, kU = self._free_slopes(r, alpha)
            Af, Gf = A2[:, idx], Gi[:, idx]
            pos = Af >= 0
            G[:, idx] = np.where(pos, Gf * kL + r.bL[idx], Gf * kU + r.bU[idx])
            side = pos if r.free_side == "L" else ~pos
            dalpha = np.where(side, Gf * Af * (r.free_hi[idx] - r.free_lo[idx]), 0.0)  # type: ignore[index]
        return G.reshape(A.shape), dalpha

    def forward(self, xs):  # type: ignore[no-untyped-def]
        return self.math.f(xs[0])

    def vjp(self, xs, y, G):  # type: ignore[no-untyped-def]
        return [G * self.math.df(xs[0])[:, None]]


# ---------------------------------------------------------------------------------------------
# Max pooling
# ---------------------------------------------------------------------------------------------


class MaxPoolOp(Op):
    """NHWC max pooling; padded cells never win. CROWN: lower = the input with the largest lower
    bound; upper = that input when it dominates the window, else the constant ``max_j u_j``."""

    kind = "maxpool"

    def __init__(
        self,
        in_shape: tuple[int, ...],
        out_shape: tuple[int, ...],
        kernel: tuple[int, int],
        stride: tuple[int, int],
        padding: tuple[tuple[int, int], tuple[int, int]],
        dilation: tuple[int, int],
    ) -> None:
        super().__init__([in_shape], out_shape)
        h, w, c = in_shape
        ho, wo, _ = out_shape
        kh, kw = kernel
        (pt, _), (pl, _) = padding
        oh = np.arange(ho)[:, None, None, None] * stride[0] + np.arange(kh)[None, None, :, None] * dilation[0] - pt
        ow = np.arange(wo)[None, :, None, None] * stride[1] + np.arange(kw)[None, None, None, :] * dilation[1] - pl
        oh, ow = np.broadcast_arrays(oh, ow)  # (Ho, Wo, kH, kW)
        valid = (oh >= 0) & (oh < h) & (ow >= 0) & (ow < w)
        if not valid.reshape(ho, wo, -1).any(axis=2).all():
            raise UnsupportedLayerError("a pooling window lies entirely in the padding (its output is -inf)")
        self.win = np.where(valid, oh * w + ow, h * w).reshape(ho, wo, kh * kw)  # h*w = the padding row
        counts = np.bincount(self.win[self.win < h * w].ravel(), minlength=h * w)
        self.overlap = int(counts.max()) if counts.size else 1
        self.hw, self.c = h * w, c

    def _gather(self, x: np.ndarray) -> np.ndarray:
        """``(m, Ho, Wo, K, C)`` window values of ``(m, H, W, C)``, padding as -inf."""
        m = x.shape[0]
        flat = x.reshape(m, self.hw, self.c)
        flat = np.concatenate([flat, np.full((m, 1, self.c), -np.inf)], axis=1)
        return flat[:, self.win, :]

    def ibp(self, ins):  # type: ignore[no-untyped-def]
        l, u = ins[0]
        return self._gather(l[None]).max(axis=3)[0], self._gather(u[None]).max(axis=3)[0]

    def prepare(self, ins):  # type: ignore[no-untyped-def]
        l, u = ins[0]
        gl = self._gather(l[None])[0]  # (Ho, Wo, K, C)
        gu = self._gather(u[None])[0]
        k_star = np.argmax(gl, axis=2)  # (Ho, Wo, C)
        l_star = np.take_along_axis(gl, k_star[:, :, None, :], axis=2)[:, :, 0, :]
        others = gu.copy()
        np.put_along_axis(others, k_star[:, :, None, :], -np.inf, axis=2)
        dominant = l_star >= others.max(axis=2)
        U_out = gu.max(axis=2)
        sp = np.take_along_axis(np.broadcast_to(self.win[:, :, :, None], gl.shape), k_star[:, :, None, :], axis=2)[
            :, :, 0, :
        ]
        j_star = (sp * self.c + np.arange(self.c)).ravel()  # flat input index per output
        return j_star, dominant.ravel(), U_out.ravel(), magnitude(l, u).ravel()

    def _scatter(self, coef: np.ndarray, j_star: np.ndarray) -> np.ndarray:
        m = coef.shape[0]
        n_in = self.hw * self.c
        if self.overlap == 1:
            out = np.zeros((m, n_in))
            out[:, j_star] = coef
            return out
        idx = (np.arange(m)[:, None] * n_in + j_star[None, :]).ravel()
        return np.bincount(idx, weights=coef.ravel(), minlength=m * n_in).reshape(m, n_in)

    def backward(self, A, ins, state, alpha=None):  # type: ignore[no-untyped-def]
        j_star, dominant, U_out, mag = state
        m = A.shape[0]
        A2 = A.reshape(m, -1)
        use_line = (A2 >= 0) | dominant[None, :]
        coef = np.where(use_line, A2, 0.0)
        rest = A2 - coef
        A_in = self._scatter(coef, j_star)
        Uf = np.where(np.isfinite(U_out), U_out, 0.0)
        d = rest @ Uf
        d = np.where(np.any((rest != 0) & ~np.isfinite(U_out)[None, :], axis=1), -np.inf, d)
        err = 2 * gamma(A2.shape[1] + 2) * (np.abs(rest) @ np.abs(Uf))
        if self.overlap > 1:
            err = err + 2 * gamma(self.overlap + 1) * (np.abs(coef) @ mag[j_star])
        return [A_in.reshape(m, *self.in_shapes[0])], d, err

    def bound_vjp(self, A, G_ins, ins, state, alpha):  # type: ignore[no-untyped-def]
        j_star, dominant, U_out, _ = state
        m = A.shape[0]
        A2 = A.reshape(m, -1)
        use_line = (A2 >= 0) | dominant[None, :]
        Gi = G_ins[0].reshape(m, -1)[:, j_star]
        return np.where(use_line, Gi, U_out[None, :]).reshape(A.shape), None

    def forward(self, xs):  # type: ignore[no-untyped-def]
        return self._gather(xs[0]).max(axis=3)

    def vjp(self, xs, y, G):  # type: ignore[no-untyped-def]
        x = xs[0]
        B, m = G.shape[:2]
        g = self._gather(x)  # (B, Ho, Wo, K, C)
        k_star = np.argmax(g, axis=3)  # (B, Ho, Wo, C)
        sp = self.win[None, :, :, :, None].repeat(B, 0)
        sp = np.take_along_axis(np.broadcast_to(sp, g.shape), k_star[:, :, :, None, :], axis=3)[:, :, :, 0, :]
        j = (sp * self.c + np.arange(self.c)).reshape(B, -1)  # (B, n_out)
        n_in = self.hw * self.c
        out = np.zeros((B, m, n_in))
        Gf = G.reshape(B, m, -1)
        for b in range(B):
            idx = (np.arange(m)[:, None] * n_in + j[b][None, :]).ravel()
            out[b] = np.bincount(idx, weights=Gf[b].ravel(), minlength=m * n_in).reshape(m, n_in)
        return [out.reshape(B, m, *self.in_shapes[0])]


# ---------------------------------------------------------------------------------------------
# Cut ops: IBP only (CROWN concretises at their output)
# ---------------------------------------------------------------------------------------------


def _to_groups(x: np.ndarray, axis: int) -> tuple[np.ndarray, tuple[int, ...]]:
    moved = np.moveaxis(x, axis, -1)
    return moved.reshape(-1, moved.shape[-1]), moved.shape


def _from_groups(x: np.ndarray, moved_shape: tuple[int, ...], axis: int) -> np.ndarray:
    return np.moveaxis(x.reshape(moved_shape), -1, axis)


class CutOp(Op):
    kind = "cut"


class SoftmaxOp(CutOp):
    """Softmax over a per-example ``axis``; IBP ``p_i >= 1 / (1 + sum_{j!=i} e^(u_j - l_i))`` etc."""

    log = False

    def __init__(self, shape: tuple[int, ...], axis: int) -> None:
        super().__init__([shape], shape)
        self.axis = axis

    def ibp(self, ins):  # type: ignore[no-untyped-def]
        l, u = ins[0]
        lg, moved = _to_groups(l, self.axis)
        ug, _ = _to_groups(u, self.axis)
        n = lg.shape[1]
        lo = np.empty_like(lg)
        hi = np.empty_like(lg)
        chunk = max(1, (1 << 22) // max(n * n, 1))
        off = ~np.eye(n, dtype=bool)
        for s in range(0, lg.shape[0], chunk):
            a, b = lg[s : s + chunk], ug[s : s + chunk]
            with np.errstate(over="ignore", invalid="ignore", under="ignore", divide="ignore"):
                d_up = up(b[:, None, :] - a[:, :, None])  # (g, i, j): u_j - l_i
                d_dn = down(a[:, None, :] - b[:, :, None])  # l_j - u_i
                lo[s : s + chunk], hi[s : s + chunk] = self._pair_bounds(d_up, d_dn, off, n)
        lo = np.where(np.isnan(lo), -np.inf if self.log else 0.0, lo)
        hi = np.where(np.isnan(hi), 0.0 if self.log else 1.0, hi)
        return _from_groups(lo, moved, self.axis), _from_groups(hi, moved, self.axis)

    @staticmethod
    def _pair_bounds(d_up: np.ndarray, d_dn: np.ndarray, off: np.ndarray, n: int) -> tuple[np.ndarray, np.ndarray]:
        g = gamma(n + 2)
        s_up = up(np.where(off, np.exp(d_up), 0.0).sum(-1) * (1 + 1e-12) * (1 + 2 * g))
        s_dn = down(np.where(off, np.exp(d_dn), 0.0).sum(-1) * (1 - 1e-12) * (1 - 2 * g))
        lo = down(1.0 / up(1.0 + s_up))
        hi = up(1.0 / down(1.0 + s_dn))
        return np.clip(lo, 0.0, 1.0), np.clip(hi, 0.0, 1.0)

    def forward(self, xs):  # type: ignore[no-untyped-def]
        x = xs[0]
        ax = self.axis + 1
        e = np.exp(x - x.max(axis=ax, keepdims=True))
        return e / e.sum(axis=ax, keepdims=True)

    def vjp(self, xs, y, G):  # type: ignore[no-untyped-def]
        p = y[:, None]
        ax = self.axis + 2
        return [p * (G - (G * p).sum(axis=ax, keepdims=True))]


class LogSoftmaxOp(SoftmaxOp):
    """Log-softmax; IBP ``-log(1 + sum_{j!=i} e^(u_j - l_i)) <= y_i <= -log(1 + sum_{j!=i} e^(l_j - u_i))``."""

    log = True

    @staticmethod
    def _pair_bounds(d_up: np.ndarray, d_dn: np.ndarray, off: np.ndarray, n: int) -> tuple[np.ndarray, np.ndarray]:
        g = gamma(n + 3)
        # lower_i = -LSE({0} U {u_j - l_i}): an upper bound of the LSE, computed stably.
        dm = np.where(off, d_up, -np.inf)
        mx = np.maximum(np.max(dm, axis=-1), 0.0)
        s = np.where(off, np.exp(up(dm - mx[..., None])), 0.0).sum(-1) + np.exp(up(-mx))
        s = up(s * (1 + 1e-12) * (1 + 2 * g))
        ls = np.log(s)
        lse_up = up(mx + up(ls + 1e-12 * np.abs(ls) + TINY))
        # upper_i = -LSE({0} U {l_j - u_i}): a lower bound of that LSE.
        dm2 = np.where(off, d_dn, -np.inf)
        mx2 = np.maximum(np.max(dm2, axis=-1), 0.0)
        s2 = np.where(off, np.exp(down(dm2 - mx2[..., None])), 0.0).sum(-1) + np.exp(down(-mx2))
        s2 = down(s2 * (1 - 1e-12) * (1 - 2 * g))
        ls2 = np.log(s2)
        lse_dn = down(mx2 + down(ls2 - 1e-12 * np.abs(ls2) - TINY))
        return -lse_up, np.minimum(-lse_dn, 0.0)

    def forward(self, xs):  # type: ignore[no-untyped-def]
        x = xs[0]
        ax = self.axis + 1
        s = x - x.max(axis=ax, keepdims=True)
        return s - np.log(np.exp(s).sum(axis=ax, keepdims=True))

    def vjp(self, xs, y, G):  # type: ignore[no-untyped-def]
        p = np.exp(y)[:, None]
        ax = self.axis + 2
        return [G - p * G.sum(axis=ax, keepdims=True)]


def _sq_bounds(l: np.ndarray, u: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Sound ``[min x^2, max x^2]`` for ``x in [l, u]``."""
    lo = np.where(l > 0, l * l, np.where(u < 0, u * u, 0.0))
    hi = np.maximum(l * l, u * u)
    return down(lo), up(hi)


def _mean_bounds(lo: np.ndarray, hi: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Mean over the last axis of non-negative intervals, outward rounded."""
    n = lo.shape[-1]
    g = 2 * gamma(n + 2)
    return down(lo.sum(-1) * (1 - g) / n), up(hi.sum(-1) * (1 + g) / n)


def _ratio(l: np.ndarray, u: np.ndarray, den_lo: np.ndarray, den_hi: np.ndarray, cap: float) -> Interval:
    """``x / den`` for ``x in [l, u]``, ``den in [den_lo, den_hi]`` (``den_lo >= 0``), clamped to ``[-cap, cap]``."""
    with np.errstate(divide="ignore", invalid="ignore", over="ignore"):
        rl = down(np.where(l >= 0, l / den_hi, l / den_lo))
        ru = up(np.where(u >= 0, u / den_lo, u / den_hi))
    return np.fmax(rl, -cap), np.fmin(ru, cap)


def _scale_shift_interval(rl: np.ndarray, ru: np.ndarray, w: np.ndarray | None, b: np.ndarray | None) -> Interval:
    if w is not None:
        a, c = rl * w, ru * w
        rl, ru = down(np.minimum(a, c)), up(np.maximum(a, c))
    if b is not None:
        rl, ru = down(rl + b), up(ru + b)
    return rl, ru


class LayerNormOp(CutOp):
    """LayerNorm over the trailing ``n_axes``: interval arithmetic plus Samuelson's bound.

    Samuelson: ``|x_i - mean| <= sqrt(n - 1) * std`` (population std), so ``|y_i| <= sqrt(n - 1) |w_i| + |b_i|``.
    """

    def __init__(self, shape: tuple[int, ...], n_axes: int, weight: Any, bias: Any, eps: float) -> None:
        super().__init__([shape], shape)
        self.n_axes = n_axes
        self.norm_shape = shape[len(shape) - n_axes :]
        self.n = math.prod(self.norm_shape)
        self.weight = None if weight is None else np.asarray(weight, np.float64).ravel()
        self.b = None if bias is None else np.asarray(bias, np.float64).ravel()
        self.eps = float(eps)

    def ibp(self, ins):  # type: ignore[no-untyped-def]
        l, u = ins[0]
        n = self.n
        lg, ug = l.reshape(-1, n), u.reshape(-1, n)
        su, sl = ug.sum(1, keepdims=True), lg.sum(1, keepdims=True)
        mag = magnitude(lg, ug)
        err = up(2 * gamma(n + 4) * ((n - 1) * mag + mag.sum(1, keepdims=True)) / n)
        dl = down(((n - 1) * lg - (su - ug)) / n - err)  # x_i - mean = ((n-1) x_i - sum_{j!=i} x_j) / n
        du = up(((n - 1) * ug - (sl - lg)) / n + err)
        var_lo, var_hi = _mean_bounds(*_sq_bounds(dl, du))
        den_lo = down(np.sqrt(down(var_lo + self.eps)))[:, None]
        den_hi = up(np.sqrt(up(var_hi + self.eps)))[:, None]
        rl, ru = _ratio(dl, du, den_lo, den_hi, float(up(math.sqrt(n - 1))))
        rl, ru = _scale_shift_interval(rl, ru, self.weight, self.b)
        return rl.reshape(l.shape), ru.reshape(u.shape)

    def _groups(self, x: np.ndarray) -> np.ndarray:
        return x.reshape(*x.shape[: x.ndim - self.n_axes], self.n)

    def forward(self, xs):  # type: ignore[no-untyped-def]
        x = self._groups(xs[0])
        mu = x.mean(-1, keepdims=True)
        var = ((x - mu) ** 2).mean(-1, keepdims=True)
        y = (x - mu) / np.sqrt(var + self.eps)
        if self.weight is not None:
            y = y * self.weight
        if self.b is not None:
            y = y + self.b
        return y.reshape(xs[0].shape)

    def vjp(self, xs, y, G):  # type: ignore[no-untyped-def]
        x = self._groups(xs[0])[:, None]
        g = G.reshape(*G.shape[: G.ndim - self.n_axes], self.n)
        if self.weight is not None:
            g = g * self.weight
        mu = x.mean(-1, keepdims=True)
        sig = np.sqrt(((x - mu) ** 2).mean(-1, keepdims=True) + self.eps)
        xh = (x - mu) / sig
        dx = (g - g.mean(-1, keepdims=True) - xh * (g * xh).mean(-1, keepdims=True)) / sig
        return [dx.reshape(G.shape)]


class RMSNormOp(CutOp):
    """RMSNorm ``x / sqrt(mean(x^2) + eps) * w``; ``eps`` may be an interval (dtype-dependent default)."""

    def __init__(
        self, shape: tuple[int, ...], n_axes: int, weight: Any, eps_lo: float, eps_hi: float, eps_fwd: float
    ) -> None:
        super().__init__([shape], shape)
        self.n_axes = n_axes
        self.n = math.prod(shape[len(shape) - n_axes :])
        self.weight = None if weight is None else np.asarray(weight, np.float64).ravel()
        self.eps_lo, self.eps_hi = float(eps_lo), float(eps_hi)
        self.eps_fwd = float(eps_fwd)  # the eps of the float64 forward (input_gradient)

    def ibp(self, ins):  # type: ignore[no-untyped-def]
        l, u = ins[0]
        n = self.n
        lg, ug = l.reshape(-1, n), u.reshape(-1, n)
        ms_lo, ms_hi = _mean_bounds(*_sq_bounds(lg, ug))
        den_lo = down(np.sqrt(down(ms_lo + self.eps_lo)))[:, None]
        den_hi = up(np.sqrt(up(ms_hi + self.eps_hi)))[:, None]
        rl, ru = _ratio(lg, ug, den_lo, den_hi, float(up(math.sqrt(n))))
        rl, ru = _scale_shift_interval(rl, ru, self.weight, None)
        return rl.reshape(l.shape), ru.reshape(u.shape)

    def forward(self, xs):  # type: ignore[no-untyped-def]
        x = xs[0].reshape(*xs[0].shape[: xs[0].ndim - self.n_axes], self.n)
        y = x / np.sqrt((x * x).mean(-1, keepdims=True) + self.eps_fwd)
        if self.weight is not None:
            y = y * self.weight
        return y.reshape(xs[0].shape)

    def vjp(self, xs, y, G):  # type: ignore[no-untyped-def]
        x = xs[0].reshape(*xs[0].shape[: xs[0].ndim - self.n_axes], self.n)[:, None]
        g = G.reshape(*G.shape[: G.ndim - self.n_axes], self.n)
        if self.weight is not None:
            g = g * self.weight
        rms = np.sqrt((x * x).mean(-1, keepdims=True) + self.eps_fwd)
        dx = g / rms - x * (g * x).mean(-1, keepdims=True) / rms**3
        return [dx.reshape(G.shape)]
