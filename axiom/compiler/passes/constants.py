"""Constant folding: merge adjacent affine maps whose composition is again one layer.

Rules, applied left to right until none matches (``Dense`` means a plain Dense; "linear" means
its activation is absent or the identity):

- ``Affine, Affine`` -> one Affine: ``scale = s1 * s2``, ``shift = t1 * s2 + t2``;
- ``Affine, Dense`` -> Dense: ``W' = diag(s) W``, ``b' = b + t W`` (the Dense keeps its activation);
- linear ``Dense, Affine`` -> Dense: ``W' = W diag(s)``, ``b' = b * s + t``;
- linear ``Dense(a, b), Dense(b, c)`` -> ``Dense(a, c)``: ``W = W1 W2``, ``b = b1 W2 + b2``, but
  only when ``a * c <= b * (a + c)``: the product matrix must not be larger than the two it
  replaces (a bottleneck ``b`` is cheaper as two layers);
- linear ``Conv2d, Affine`` with per-channel constants -> Conv2d (scaled per output channel);
- per-channel ``Affine, Conv2d`` -> Conv2d when the convolution pads nothing (zero padding
  would not be scaled and shifted like the image).

Affine constants must be per feature/channel (or scalars) for the Dense/Conv2d rules. Values
are combined in float64 and rounded once to the layer's dtype.

Example:
    >>> import numpy as np
    >>> from axiom import Sequential, Dense, Affine
    >>> model = Sequential(Affine.normalize(mean=0.5, std=2.0), Dense(4, 3), Dense(3, 2))
    >>> x = np.random.default_rng(0).standard_normal((5, 4)).astype(np.float32)
    >>> before = model(x).numpy()
    >>> model, result = fold_constants(model)
    >>> model.layers, len(result.changes)
    ([Dense(4, 2)], 2)
    >>> bool(np.allclose(model(x).numpy(), before, rtol=1e-5, atol=1e-6))
    True
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np

from axiom.compiler.passes._graph import (
    affine_constants,
    channel_vectors,
    in_channels,
    linear_layer,
    out_channels,
    plain,
    rewrite_chains,
    scale_inputs,
    scale_outputs,
    zero_padding,
)
from axiom.compiler.passes.base import PassResult, model_input_shape
from axiom.nn.affine import Affine
from axiom.nn.conv import Conv2d
from axiom.nn.dense import Dense
from axiom.nn.layer import Layer, Parameter
from axiom.shapes import Dim, Shape

NAME = "fold_constants"


def _merge_affines(first: Affine, second: Affine) -> Affine:
    s1, t1 = affine_constants(first)
    s2, t2 = affine_constants(second)
    dtype = second.scale.dtype
    return Affine(scale=(s1 * s2).astype(dtype), shift=(t1 * s2 + t2).astype(dtype), dtype=dtype)


def _merge_dense(first: Dense, second: Dense) -> bool:
    """``second`` becomes ``second(first(x))`` if that is not larger; True if merged."""
    a, b, c = first.weight.shape[0], first.weight.shape[1], second.weight.shape[1]  # type: ignore[union-attr]
    if a * c > b * (a + c):
        return False
    w1 = first.weight.data.astype(np.float64)  # type: ignore[union-attr]
    w2 = second.weight.data.astype(np.float64)  # type: ignore[union-attr]
    b1 = None if first.bias is None else first.bias.data.astype(np.float64)
    b2 = None if second.bias is None else second.bias.data.astype(np.float64)
    dtype = second.weight.dtype  # type: ignore[union-attr]
    bias = None if b1 is None and b2 is None else (0.0 if b1 is None else b1 @ w2) + (0.0 if b2 is None else b2)
    second.weight = Parameter((w1 @ w2).astype(dtype))
    second.in_features = a
    if bias is not None:
        second.bias = Parameter(np.asarray(bias).astype(dtype))
        second.use_bias = True
    return True


def _fold_pair(first: Layer, second: Layer) -> Layer | None:
    """The one layer computing ``second(first(x))``, or None. May rewrite ``first``/``second`` in place."""
    if plain(first, Affine) and plain(second, Affine):
        return _merge_affines(first, second)  # type: ignore[arg-type]
    if plain(first, Affine) and second.built and (plain(second, Dense) or plain(second, Conv2d)):
        if plain(second, Conv2d) and not zero_padding(second):
            return None
        vectors = channel_vectors(first, in_channels(second))
        if vectors is None:
            return None
        scale_inputs(second, *vectors)
        return second
    if linear_layer(first) and plain(second, Affine):
        vectors = channel_vectors(second, out_channels(first))
        if vectors is None:
            return None
        scale_outputs(first, *vectors)
        return first
    if linear_layer(first) and plain(first, Dense) and plain(second, Dense) and second.built:
        return second if _merge_dense(first, second) else None  # type: ignore[arg-type]
    return None


def _rule(layers: list[Layer], shapes: list[Shape], path: str) -> tuple[list[Layer], list[str]]:
    out: list[Layer] = []
    positions: list[str] = []  # where each kept layer came from, for the change log
    changes: list[str] = []
    for i, layer in enumerate(layers):
        here = f"{path}{i}"
        if out:
            before = (repr(out[-1]), repr(layer))
            folded = _fold_pair(out[-1], layer)
            if folded is not None:
                changes.append(f"{positions[-1]} + {here}: {before[0]} and {before[1]} folded into {folded!r}")
                out[-1] = folded
                positions[-1] = f"{positions[-1]}+{i}"
                continue
        out.append(layer)
        positions.append(here)
    return out, changes


def fold_constants(model: Layer, input_shape: Sequence[Dim | None] | None = None) -> tuple[Layer, PassResult]:
    """Fold adjacent affine layers of every chain of ``model`` (rules in the module docstring), in place.

    Example:
        >>> from axiom import Sequential, Affine, Dense
        >>> model, result = fold_constants(Sequential(Dense(2, 3), Affine(scale=2.0), Affine(shift=1.0)))
        >>> model.layers, result.changed
        ([Dense(2, 3)], True)
    """
    model, changes = rewrite_chains(model, model_input_shape(model, input_shape), _rule)
    return model, PassResult(NAME, changes)
