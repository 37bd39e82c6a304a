"""Structural passes that change no arithmetic: inline nested Sequentials, fuse activations.

- :func:`inline_sequential` splices a plain ``Sequential`` nested in a chain into that chain,
  so the other passes can fold across the old boundary (``Sequential(Dense, Sequential(BatchNorm,
  ...))``). A nested Sequential with ``check_finite=True`` is kept (it checks something).
- :func:`fuse_activations` moves an activation layer into the ``activation`` of the Dense or
  Conv2d right before it (``Dense(4, 8), ReLU()`` -> ``Dense(4, 8, relu)``): the same kernel
  calls in the same order, one layer fewer.

Both leave every output bit-for-bit unchanged.

Example:
    >>> from axiom import Sequential, Dense, ReLU
    >>> model = Sequential(Sequential(Dense(4, 8), ReLU()), Dense(8, 2))
    >>> model, _ = inline_sequential(model)
    >>> model, result = fuse_activations(model)
    >>> model.layers, result.changes
    ([Dense(4, 8, relu), Dense(8, 2)], ['1: ReLU(relu) fused into the Dense at 0'])
"""

from __future__ import annotations

from collections.abc import Sequence

from axiom.compiler.passes._graph import activation_layer, linear_layer, plain, rewrite_chains
from axiom.compiler.passes.base import PassResult, model_input_shape
from axiom.nn.containers import Sequential
from axiom.nn.layer import Layer
from axiom.shapes import Dim, Shape


def _inline_rule(layers: list[Layer], shapes: list[Shape], path: str) -> tuple[list[Layer], list[str]]:
    out: list[Layer] = []
    changes: list[str] = []
    for i, layer in enumerate(layers):
        if plain(layer, Sequential) and not layer.check_finite:  # type: ignore[attr-defined]
            out.extend(layer.layers)  # type: ignore[attr-defined]
            changes.append(f"{path}{i}: nested Sequential of {len(layer.layers)} layers inlined")  # type: ignore[attr-defined]
        else:
            out.append(layer)
    return out, changes


def inline_sequential(model: Layer, input_shape: Sequence[Dim | None] | None = None) -> tuple[Layer, PassResult]:
    """Splice nested plain Sequentials into the chain around them, in place.

    Example:
        >>> from axiom import Sequential, Dense, Residual
        >>> model, result = inline_sequential(Residual(Sequential(Dense(4, 4), Dense(4, 4))))
        >>> len(model.layers), str(result)
        (2, 'inline_sequential: 1 change')
    """
    model, changes = rewrite_chains(model, model_input_shape(model, input_shape), _inline_rule)
    return model, PassResult("inline_sequential", changes)


def _fuse_rule(layers: list[Layer], shapes: list[Shape], path: str) -> tuple[list[Layer], list[str]]:
    out: list[Layer] = []
    positions: list[int] = []
    changes: list[str] = []
    for i, layer in enumerate(layers):
        fn = activation_layer(layer)
        if fn is not None and out and linear_layer(out[-1]):
            out[-1].activation = fn  # type: ignore[attr-defined]
            changes.append(f"{path}{i}: {layer!r} fused into the {out[-1].name} at {path}{positions[-1]}")
            continue
        out.append(layer)
        positions.append(i)
    return out, changes


def fuse_activations(model: Layer, input_shape: Sequence[Dim | None] | None = None) -> tuple[Layer, PassResult]:
    """Fuse each activation layer into a preceding Dense/Conv2d that has none, in place.

    Example:
        >>> from axiom import Sequential, Conv2d, Activation
        >>> model, result = fuse_activations(Sequential(Conv2d(3, 4, 3), Activation("gelu")))
        >>> model.layers
        [Conv2d(3, 4, kernel_size=(3, 3), activation=gelu)]
    """
    model, changes = rewrite_chains(model, model_input_shape(model, input_shape), _fuse_rule)
    return model, PassResult("fuse_activations", changes)
