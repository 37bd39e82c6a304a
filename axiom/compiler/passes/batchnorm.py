"""Fold eval-mode BatchNorm into the Dense or Conv2d next to it.

In eval mode ``BatchNorm`` is a fixed per-channel map ``x * s + t`` with
``s = gamma / sqrt(running_var + eps)`` and ``t = beta - running_mean * s`` (``gamma = 1``,
``beta = 0`` when ``affine=False``). It folds:

- **into the layer before it**, a Dense or Conv2d (DepthwiseConv2d too) *without activation*
  (the BatchNorm must act on the affine output directly): ``W' = W * s`` per output channel,
  ``b' = b * s + t`` (a bias is added when the layer had none);
- otherwise **into the layer after it**: a Dense (``W' = diag(s) W``, ``b' = b + t W``), or a
  Conv2d that pads nothing (padding with zeros does not commute with ``x * s + t``).

A BatchNorm in training mode or without running statistics (``track_running_stats=False``)
normalises with batch statistics and is left alone. The folded values are computed in
float64 and rounded once to the layer's dtype, so the folded layer differs from the pair it
replaces only by float rounding (``docs/backends.md`` states the tolerance).

Example:
    >>> import numpy as np
    >>> from axiom import Sequential, Dense, BatchNorm, relu
    >>> bn = BatchNorm(8)
    >>> bn.running_mean.data[:] = 0.5
    >>> model = Sequential(Dense(4, 8), bn, Dense(8, 2, relu))
    >>> x = np.random.default_rng(0).standard_normal((3, 4)).astype(np.float32)
    >>> before = model(x).numpy()
    >>> model, result = fold_batchnorm(model)
    >>> len(model), result.changes
    (2, ['1: BatchNorm(8, eps=1e-05, momentum=0.1, affine=True, track_running_stats=True) folded into the Dense at 0'])
    >>> bool(np.allclose(model(x).numpy(), before, rtol=1e-5, atol=1e-6))
    True
"""

from __future__ import annotations

from collections.abc import Sequence

from axiom.compiler.passes._graph import (
    batchnorm_scale_shift,
    foldable_batchnorm,
    linear_layer,
    plain,
    rewrite_chains,
    scale_inputs,
    scale_outputs,
    zero_padding,
)
from axiom.compiler.passes.base import PassResult, model_input_shape
from axiom.nn.conv import Conv2d
from axiom.nn.dense import Dense
from axiom.nn.layer import Layer
from axiom.shapes import Dim, Shape

NAME = "fold_batchnorm"


def _folds_forward(layer: Layer) -> bool:
    """A layer a preceding BatchNorm can fold into."""
    if not layer.built:
        return False
    return plain(layer, Dense) or (plain(layer, Conv2d) and zero_padding(layer))


def _rule(layers: list[Layer], shapes: list[Shape], path: str) -> tuple[list[Layer], list[str]]:
    out: list[Layer] = []
    positions: list[int] = []  # original index of each kept layer
    changes: list[str] = []
    pending: list[tuple[int, Layer]] = []  # consecutive BatchNorms waiting to fold into the next layer
    for i, layer in enumerate(layers):
        if foldable_batchnorm(layer):
            if not pending and out and linear_layer(out[-1]):
                scale_outputs(out[-1], *batchnorm_scale_shift(layer))  # type: ignore[arg-type]
                changes.append(f"{path}{i}: {layer!r} folded into the {out[-1].name} at {path}{positions[-1]}")
            else:
                pending.append((i, layer))
            continue
        if pending and _folds_forward(layer):
            for j, bn in reversed(pending):  # the last one acts first on the layer's input
                scale_inputs(layer, *batchnorm_scale_shift(bn))  # type: ignore[arg-type]
                changes.append(f"{path}{j}: {bn!r} folded into the {layer.name} at {path}{i}")
        else:
            out.extend(bn for _, bn in pending)
            positions.extend(j for j, _ in pending)
        pending = []
        out.append(layer)
        positions.append(i)
    out.extend(bn for _, bn in pending)
    return out, changes


def fold_batchnorm(model: Layer, input_shape: Sequence[Dim | None] | None = None) -> tuple[Layer, PassResult]:
    """Fold every foldable eval-mode BatchNorm of ``model`` into a neighbouring Dense/Conv2d, in place.

    Returns the model and a :class:`PassResult` naming each BatchNorm folded and where.

    Example:
        >>> from axiom import Sequential, Conv2d, BatchNorm, ReLU
        >>> model, result = fold_batchnorm(Sequential(Conv2d(3, 8, 3, bias=False), BatchNorm(), ReLU()))
        >>> [layer.name for layer in model], model[0].bias.shape
        (['Conv2d', 'ReLU'], (8,))
    """
    model, changes = rewrite_chains(model, model_input_shape(model, input_shape), _rule)
    return model, PassResult(NAME, changes)
