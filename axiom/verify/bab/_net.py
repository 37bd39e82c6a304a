"""A feed-forward ReLU network as a list of affine layers (internal).

Branch-and-bound works on chains ``x -> W_0 x + b_0 -> ReLU -> ... -> W_K h + b_K``: a leading
index map (Flatten, Reshape, Permute) is folded into a permutation of the flat input, Dense
layers give ``(W, b)`` in float64 (the stored weights upcast exactly) and ReLU sits between
them. Anything else is not a chain (:func:`relu_chain` returns None and the caller falls back).

Example:
    >>> from axiom import Dense, Sequential, relu
    >>> from axiom.verify.bab._net import relu_chain
    >>> net = relu_chain(Sequential(Dense(3, 4, relu), Dense(4, 2)), (3,))
    >>> [w.shape for w in net.W]
    [(4, 3), (2, 4)]
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from typing import Any

import numpy as np


@dataclass
class ReluChain:
    """``W[k]`` is ``(n_{k+1}, n_k)``; ReLU after every layer but the last; ``perm`` maps the flat model input.

    Example:
        >>> net = ReluChain([np.eye(2), np.ones((1, 2))], [np.zeros(2), np.zeros(1)], (2,), np.arange(2))
        >>> net.forward(np.array([[1.0, -2.0]])).tolist()
        [[1.0]]
    """

    W: list[np.ndarray]
    b: list[np.ndarray]
    in_shape: tuple[int, ...]
    perm: np.ndarray  # flat graph input index of each flat chain input
    absW: list[np.ndarray] = field(default_factory=list)

    def __post_init__(self) -> None:
        self.W = [np.ascontiguousarray(w, np.float64) for w in self.W]
        self.b = [np.asarray(v, np.float64) for v in self.b]
        self.absW = [np.abs(w) for w in self.W]
        self.identity = bool(np.array_equal(self.perm, np.arange(self.perm.size)))

    @property
    def n_in(self) -> int:
        return self.W[0].shape[1]

    @property
    def depth(self) -> int:
        """Number of ReLU layers."""
        return len(self.W) - 1

    def flat(self, x: np.ndarray) -> np.ndarray:
        """Model inputs ``(B, *in_shape)`` (or flat) to chain inputs ``(B, n_in)``."""
        x = np.asarray(x, np.float64).reshape(len(x), -1)
        return x if self.identity else x[:, self.perm]

    def unflat(self, x: np.ndarray) -> np.ndarray:
        """Chain inputs back to model inputs ``(B, *in_shape)``."""
        out = np.empty_like(x)
        out[:, self.perm] = x
        return out.reshape(len(x), *self.in_shape)

    def forward(self, x: np.ndarray) -> np.ndarray:
        """Outputs of flat chain inputs ``(B, n_in)`` in float64 (screening only, not a proof)."""
        h = x
        for k, (w, v) in enumerate(zip(self.W, self.b)):
            h = h @ w.T + v
            if k < self.depth:
                h = np.maximum(h, 0.0)
        return h

    def value_grad(self, x: np.ndarray, C: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """``C y`` per row and its input gradient: ``(B, m)`` and ``(B, m, n_in)``."""
        h, masks = x, []
        for k, (w, v) in enumerate(zip(self.W, self.b)):
            h = h @ w.T + v
            if k < self.depth:
                masks.append(h > 0)
                h = np.where(masks[-1], h, 0.0)
        vals = h @ C.T
        g = np.broadcast_to(C, (len(x), *C.shape))
        for k in range(self.depth, -1, -1):
            g = g @ self.W[k]
            if k > 0:
                g = g * masks[k - 1][:, None, :]
        return vals, g


def relu_chain(model: Any, in_shape: tuple[int, ...]) -> ReluChain | None:
    """The model as a :class:`ReluChain`, or None when it is not Dense/ReLU layers in a chain.

    Example:
        >>> from axiom import Conv2d, Sequential
        >>> relu_chain(Sequential(Conv2d(1, 1, 3)), (1, 5, 5)) is None
        True
    """
    from axiom.verify.bounds._graph import build_graph
    from axiom.verify.bounds._ops import ActivationOp, DenseOp, IndexOp

    try:
        graph = build_graph(model, tuple(in_shape))
    except Exception:  # noqa: BLE001 - not analysable here: the caller falls back to the bounds pipeline
        return None
    nodes = graph.nodes
    if any(len(n.inputs) != 1 for n in nodes[1:]) or graph.output != len(nodes) - 1:
        return None
    n0 = math.prod(in_shape)
    idx = np.arange(n0, dtype=np.float64).reshape(1, *in_shape)
    k = 1
    while k < len(nodes) and isinstance(nodes[k].op, IndexOp):
        idx = nodes[k].op.apply(idx)
        k += 1
    perm = np.asarray(idx, np.float64).reshape(-1).astype(np.int64)
    Ws: list[np.ndarray] = []
    bs: list[np.ndarray] = []
    want_dense = True
    for node in nodes[k:]:
        op = node.op
        if (
            isinstance(op, IndexOp)
            and len(op.in_shapes[0]) == 1
            and op.out_shape == op.in_shapes[0]
            and op.perm is None
        ):
            continue
        if want_dense and isinstance(op, DenseOp) and len(op.in_shapes[0]) == 1:
            Ws.append(op.WT)
            bs.append(np.zeros(op.fan_out) if op.bias is None else op.bias)
            want_dense = False
        elif not want_dense and isinstance(op, ActivationOp) and op.math.kind == "relu":
            want_dense = True
        else:
            return None
    if not Ws or want_dense or Ws[0].shape[1] != n0:
        return None
    return ReluChain(Ws, bs, tuple(int(d) for d in in_shape), perm)
