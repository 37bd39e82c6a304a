"""Walking and rewriting a model's chains of layers: what every graph pass shares.

A *chain* is the list of layers of a :class:`~axiom.nn.containers.Sequential` or
:class:`~axiom.nn.containers.Residual` (the branch ``f`` of ``x + f(x)``). Passes are rules
over chains: :func:`rewrite_chains` hands each chain, innermost first, to a rule together with
the (symbolic) input shape of every layer, and puts back what the rule returns. Branches of a
:class:`~axiom.nn.containers.Parallel` are visited too. Containers whose ``forward`` is
overridden by a subclass and other composite layers (attention, user layers) are left alone:
a pass cannot know what they do with their children.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence

import numpy as np

from axiom.nn.activations import Activation, ActivationFunction
from axiom.nn.affine import Affine
from axiom.nn.containers import Parallel, Residual, Sequential
from axiom.nn.conv import Conv2d
from axiom.nn.dense import Dense
from axiom.nn.layer import Layer, Parameter
from axiom.nn.normalization import BatchNorm
from axiom.shapes import Shape
from axiom.tensor import Tensor, is_floating

#: ``rule(layers, input_shapes, path) -> (new_layers, changes)``; ``path`` prefixes child names ("2.0.").
ChainRule = Callable[[list[Layer], list[Shape], str], tuple[list[Layer], list[str]]]


def plain(layer: Layer, cls: type[Layer]) -> bool:
    """True if ``layer`` is a ``cls`` whose ``forward`` is ``cls``'s own (a subclass may compute otherwise)."""
    return isinstance(layer, cls) and type(layer).forward is cls.forward


def is_chain(layer: Layer) -> bool:
    """A Sequential or Residual whose layers run one after another (so passes may rewrite them)."""
    return plain(layer, Sequential) or plain(layer, Residual)


def chain_shapes(layers: Sequence[Layer], input_shape: Shape) -> list[Shape]:
    """The input shape of each layer of a chain."""
    shapes: list[Shape] = []
    current = tuple(input_shape)
    for layer in layers:
        shapes.append(current)
        current = layer.output_shape(current)
    return shapes


def rewrite_chains(model: Layer, input_shape: Shape, rule: ChainRule) -> tuple[Layer, list[str]]:
    """Apply ``rule`` to every chain of ``model`` (innermost first), in place; return the model and the changes.

    A rule must return at least one layer and keep the chain's output shape.
    """
    changes: list[str] = []

    def visit(layer: Layer, shape: Shape, path: str) -> Layer:
        if is_chain(layer):
            layers: list[Layer] = list(layer.layers)  # type: ignore[attr-defined]
            shapes = chain_shapes(layers, shape)
            layers = [visit(child, s, f"{path}{i}.") for i, (child, s) in enumerate(zip(layers, shapes))]
            new, found = rule(layers, chain_shapes(layers, shape), path)
            if not new:
                raise AssertionError(f"a graph pass emptied the chain at {path or 'the top level'!r}")
            changes.extend(found)
            layer.layers = list(new)  # type: ignore[attr-defined]
        elif plain(layer, Parallel):
            layer.branches = [visit(b, shape, f"{path}{i}.") for i, b in enumerate(layer.branches)]  # type: ignore[attr-defined]
        return layer

    return visit(model, tuple(input_shape), ""), changes


def leaf_count(model: Layer) -> int:
    """Number of layers that are not containers (what a pass can remove).

    Example:
        >>> from axiom import Sequential, Dense, Dropout
        >>> leaf_count(Sequential(Dense(2, 3), Dropout(0.1), Sequential(Dense(3, 1))))
        3
    """
    return sum(1 for layer in model.modules() if not layer.children())


# -- the layers passes fold ------------------------------------------------------------------------


def no_activation(layer: Layer) -> bool:
    """The layer's ``activation`` is absent or the identity."""
    act = getattr(layer, "activation", None)
    return act is None or (isinstance(act, ActivationFunction) and act.kind == "identity")


def linear_layer(layer: Layer) -> bool:
    """A built Dense or Conv2d (DepthwiseConv2d too) with no activation: an affine map of its input."""
    return (plain(layer, Dense) or plain(layer, Conv2d)) and layer.built and no_activation(layer)


def foldable_batchnorm(layer: Layer) -> bool:
    """A BatchNorm in eval mode with running statistics: a fixed per-channel ``x * s + t``."""
    return (
        plain(layer, BatchNorm)
        and not layer.training
        and layer.running_mean is not None  # type: ignore[attr-defined]
        and layer.running_var is not None  # type: ignore[attr-defined]
    )


def batchnorm_scale_shift(bn: BatchNorm) -> tuple[np.ndarray, np.ndarray]:
    """``(s, t)`` in float64 with ``bn(x) == x * s + t`` (eval mode, per channel)."""
    assert bn.running_mean is not None and bn.running_var is not None
    mean = bn.running_mean.data.astype(np.float64)
    var = bn.running_var.data.astype(np.float64)
    gamma = np.ones_like(mean) if bn.weight is None else bn.weight.data.astype(np.float64)
    beta = np.zeros_like(mean) if bn.bias is None else bn.bias.data.astype(np.float64)
    s = gamma / np.sqrt(var + bn.eps)
    return s, beta - mean * s


def affine_constants(affine: Affine) -> tuple[np.ndarray, np.ndarray]:
    """``(scale, shift)`` of an Affine in float64, broadcast to one common shape."""
    scale = affine.scale.data.astype(np.float64)
    shift = affine.shift.data.astype(np.float64)
    shape = np.broadcast_shapes(scale.shape, shift.shape)
    return np.broadcast_to(scale, shape), np.broadcast_to(shift, shape)


def channel_vectors(affine: Layer, channels: int) -> tuple[np.ndarray, np.ndarray] | None:
    """An Affine's constants as per-channel vectors of length ``channels``, or None if they vary otherwise."""
    if not plain(affine, Affine):
        return None
    scale, shift = affine_constants(affine)  # type: ignore[arg-type]
    if any(d != 1 for d in scale.shape[:-1]) or (scale.ndim and scale.shape[-1] not in (1, channels)):
        return None
    return (
        np.broadcast_to(scale.reshape(-1), (channels,)).copy(),
        np.broadcast_to(shift.reshape(-1), (channels,)).copy(),
    )


def out_channels(layer: Layer) -> int:
    """Output features of a built Dense / output channels of a built Conv2d."""
    return int(layer.weight.shape[-1])  # type: ignore[attr-defined]


def in_channels(layer: Layer) -> int:
    """Input features of a built Dense / input channels of a built Conv2d."""
    if isinstance(layer, Dense):
        return int(layer.weight.shape[0])  # type: ignore[union-attr]
    return int(layer.in_channels)  # type: ignore[attr-defined]


def _set(layer: Layer, weight: np.ndarray, bias: np.ndarray | None) -> None:
    """Store folded float64 values in the layer's dtype (adding a bias if it had none)."""
    dtype = layer.weight.dtype  # type: ignore[attr-defined]
    layer.weight = Parameter(weight.astype(dtype))  # type: ignore[attr-defined]
    if bias is not None:
        layer.bias = Parameter(bias.astype(dtype))  # type: ignore[attr-defined]
        layer.use_bias = True  # type: ignore[attr-defined]


def _weight_bias(layer: Layer) -> tuple[np.ndarray, np.ndarray]:
    w = layer.weight.data.astype(np.float64)  # type: ignore[attr-defined]
    b = layer.bias  # type: ignore[attr-defined]
    return w, np.zeros(w.shape[-1]) if b is None else b.data.astype(np.float64)


def scale_outputs(layer: Layer, s: np.ndarray, t: np.ndarray) -> None:
    """Fold a per-output-channel ``y * s + t`` into a linear Dense/Conv2d (in place)."""
    w, b = _weight_bias(layer)
    _set(layer, w * s, b * s + t)


def scale_inputs(layer: Layer, s: np.ndarray, t: np.ndarray) -> None:
    """Fold a per-input-channel ``x * s + t`` in front of a Dense, or of a Conv2d without padding (in place)."""
    w, b = _weight_bias(layer)
    if isinstance(layer, Dense):
        _set(layer, w * s[:, None], b + t @ w)
        return
    # Conv2d weight (kH, kW, C_in/g, C_out): output channel co of group g reads inputs g*cin_g ... g*cin_g+cin_g-1
    cin_g, cout = w.shape[2], w.shape[3]
    group = np.arange(cout) // (cout // int(layer.groups))  # type: ignore[attr-defined]
    index = group[None, :] * cin_g + np.arange(cin_g)[:, None]  # (cin_g, cout) -> input channel
    _set(layer, w * s[index], b + np.einsum("hwio,io->o", w, t[index]))


def zero_padding(conv: Layer) -> bool:
    """A Conv2d that pads nothing (so a per-channel map of its input commutes with the padding)."""
    pad = conv.padding  # type: ignore[attr-defined]
    if pad == "same":
        return tuple(conv.kernel_size) == (1, 1)  # type: ignore[attr-defined]
    return all(p == 0 for side in pad for p in side)


def activation_layer(layer: Layer) -> ActivationFunction | None:
    """The function of a plain element-wise Activation layer (ReLU(), Activation("gelu"), ...), else None."""
    return layer.fn if plain(layer, Activation) else None  # type: ignore[attr-defined]


def tensor_count(model: Layer) -> int:
    """Number of floating parameter and buffer elements (what a model stores).

    Example:
        >>> from axiom import Dense
        >>> tensor_count(Dense(3, 2))
        8
    """
    total = 0
    for layer in model.modules():
        for value in vars(layer).values():
            if isinstance(value, Tensor) and is_floating(value.dtype):
                total += int(value.data.size)
    return total
