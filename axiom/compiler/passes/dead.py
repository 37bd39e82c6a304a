"""Dead-layer removal: drop layers that compute the identity at inference.

Removed (each is exactly the identity, so outputs are bit-for-bit unchanged):

- ``Dropout`` in eval mode (a compiled model always runs in eval mode);
- an ``Activation`` whose function is ``identity``;
- a ``Permute`` that keeps the axis order;
- a ``Reshape`` / ``Flatten`` whose output shape equals its input shape;
- a ``Reshape`` / ``Flatten`` directly followed by another ``Reshape`` / ``Flatten`` (both read
  their input in row-major order, so only the last one decides the shape).

A chain is never emptied: if every layer of it is dead, the last one (an identity on the
chain's input) stays.

Example:
    >>> import numpy as np
    >>> from axiom import Sequential, Dense, Dropout, Activation, Flatten
    >>> model = Sequential(Dense(4, 8), Dropout(0.5), Activation("identity"), Flatten(), Dense(8, 2))
    >>> model, result = remove_dead_layers(model)
    >>> len(model), result.changes[0]
    (2, '1: Dropout(p=0.5) removed (identity in eval mode)')
"""

from __future__ import annotations

from collections.abc import Sequence

from axiom.compiler.passes._graph import activation_layer, plain, rewrite_chains
from axiom.compiler.passes.base import PassResult, model_input_shape
from axiom.nn.dropout import Dropout
from axiom.nn.layer import Layer
from axiom.nn.reshape import Flatten, Permute, Reshape
from axiom.shapes import Dim, Shape, format_shape

NAME = "remove_dead_layers"


def _reshaping(layer: Layer) -> bool:
    return plain(layer, Reshape) or plain(layer, Flatten)


def dead_reason(layer: Layer, input_shape: Shape) -> str:
    """Why ``layer`` is the identity on ``input_shape`` in eval mode, or ``""`` if it is not.

    Example:
        >>> from axiom import Dropout, Permute, Reshape
        >>> dead_reason(Dropout(0.1), ("batch", 4)), dead_reason(Permute((1, 0)), ("batch", 2, 3))
        ('identity in eval mode', '')
        >>> dead_reason(Reshape((-1,)), ("batch", 4))
        'reshapes (batch, 4) to the same shape'
    """
    if plain(layer, Dropout) and (not layer.training or layer.p == 0.0):  # type: ignore[attr-defined]
        return "identity in eval mode"
    fn = activation_layer(layer)
    if fn is not None and fn.kind == "identity":
        return "identity activation"
    if plain(layer, Permute) and layer.dims == tuple(range(len(layer.dims))):  # type: ignore[attr-defined]
        return "keeps the axis order"
    if _reshaping(layer) and tuple(layer.output_shape(input_shape)) == tuple(input_shape):
        return f"reshapes {format_shape(input_shape)} to the same shape"
    return ""


def _rule(layers: list[Layer], shapes: list[Shape], path: str) -> tuple[list[Layer], list[str]]:
    kept: list[Layer] = []
    changes: list[str] = []
    shape = shapes[0]
    for i, layer in enumerate(layers):
        following = layers[i + 1] if i + 1 < len(layers) else None
        if _reshaping(layer) and following is not None and _reshaping(following):
            reason = f"overridden by the {following.name} after it"
        else:
            reason = dead_reason(layer, shape)
        if reason:
            changes.append(f"{path}{i}: {layer!r} removed ({reason})")
            continue
        kept.append(layer)
        shape = layer.output_shape(shape)
    if not kept:  # every layer is dead: the last one is the identity on the chain's input
        kept, changes = [layers[-1]], changes[:-1]
    return kept, changes


def remove_dead_layers(model: Layer, input_shape: Sequence[Dim | None] | None = None) -> tuple[Layer, PassResult]:
    """Remove identity layers (see the module docstring) from every chain of ``model``, in place.

    ``input_shape`` (default: what the model states) decides which reshapes are no-ops.
    Returns the model and a :class:`PassResult` listing every removal.

    Example:
        >>> from axiom import Sequential, Dense, Permute, Reshape
        >>> model, result = remove_dead_layers(Sequential(Dense(3, 4), Reshape((4,)), Permute((0,))))
        >>> len(model), result.changed
        (1, True)
    """
    model, changes = rewrite_chains(model, model_input_shape(model, input_shape), _rule)
    return model, PassResult(NAME, changes)
