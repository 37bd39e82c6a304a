"""From an axiom model to a flat graph of ops; the registry of abstract transformers (internal).

Containers are flattened: ``Sequential`` chains its layers, ``Residual`` becomes a fork and an
``AddOp``, ``Parallel`` a fork and a ``ConcatOp``. Every other layer is looked up by class (the
first registered class in its MRO) in :data:`TRANSFORMERS`; the registered factory turns the
layer into one op. A layer with an ``activation`` attribute (Dense, Conv2d) gets an
``ActivationOp`` after it. Adding a layer type = registering one factory.

Example:
    >>> from axiom import Dense, Sequential, relu
    >>> from axiom.verify.bounds._graph import build_graph
    >>> g = build_graph(Sequential(Dense(3, 4, relu), Dense(4, 2)), (3,))
    >>> [n.name for n in g.nodes]
    ['input', '1 Dense', '1 Dense/relu', '2 Dense']
"""

from __future__ import annotations

import math
from collections.abc import Callable
from dataclasses import dataclass, field

import numpy as np

from axiom.nn import (
    Activation,
    Affine,
    AvgPool2d,
    BatchNorm,
    Conv2d,
    Dense,
    Dropout,
    Flatten,
    GlobalAvgPool,
    Layer,
    LayerNorm,
    LogSoftmax,
    MaxPool2d,
    Parallel,
    Permute,
    Reshape,
    Residual,
    RMSNorm,
    Sequential,
    Softmax,
)
from axiom.nn._args import explicit_padding
from axiom.verify.bounds._fp import U
from axiom.verify.bounds._ops import (
    ActivationOp,
    AddOp,
    AvgPoolOp,
    ConcatOp,
    ConvOp,
    DenseOp,
    GlobalAvgPoolOp,
    IndexOp,
    LayerNormOp,
    LogSoftmaxOp,
    MaxPoolOp,
    Op,
    RMSNormOp,
    ScaleShiftOp,
    SoftmaxOp,
    UnsupportedLayerError,
)

Shape = tuple[int, ...]
Factory = Callable[[Layer, Shape], Op]


@dataclass
class Transformer:
    """Registry entry: ``factory(layer, in_shape) -> Op`` and an optional instance check."""

    factory: Factory
    why_not: Callable[[Layer], str | None] = lambda layer: None


TRANSFORMERS: dict[type, Transformer] = {}


def register(cls: type, why_not: Callable[[Layer], str | None] | None = None) -> Callable[[Factory], Factory]:
    """Decorator: register the abstract transformer factory of layer class ``cls``.

    Example:
        >>> Dense in TRANSFORMERS
        True
    """

    def deco(fn: Factory) -> Factory:
        TRANSFORMERS[cls] = Transformer(fn, why_not or (lambda layer: None))
        return fn

    return deco


def lookup(layer: Layer) -> Transformer | None:
    """The transformer registered for the layer's class or its nearest registered base class.

    Example:
        >>> from axiom import ReLU
        >>> lookup(ReLU()) is TRANSFORMERS[Activation]
        True
    """
    for klass in type(layer).__mro__:
        if klass in TRANSFORMERS:
            return TRANSFORMERS[klass]
    return None


def _out_shape(layer: Layer, in_shape: Shape) -> Shape:
    return tuple(int(d) for d in layer.output_shape((1, *in_shape))[1:])


def _f64(x: object) -> np.ndarray | None:
    if x is None:
        return None
    return np.asarray(getattr(x, "data", x), dtype=np.float64)


# -- factories ------------------------------------------------------------------------------------


@register(Dense)
def _dense(layer: Dense, in_shape: Shape) -> Op:
    return DenseOp(_f64(layer.weight), _f64(layer.bias), in_shape)  # type: ignore[arg-type]


@register(Conv2d)
def _conv(layer: Conv2d, in_shape: Shape) -> Op:
    pad = explicit_padding(layer.padding, in_shape[0], in_shape[1], layer.kernel_size, layer.stride, layer.dilation)
    return ConvOp(
        _f64(layer.weight),  # type: ignore[arg-type]
        _f64(layer.bias),
        in_shape,
        _out_shape(layer, in_shape),
        layer.stride,
        pad,
        layer.dilation,
        int(layer.groups or 1),
    )


def _bn_why_not(layer: Layer) -> str | None:
    if getattr(layer, "running_mean", None) is None:
        return "BatchNorm without running statistics normalises with batch statistics (not a per-example function)"
    return None


@register(BatchNorm, _bn_why_not)
def _batchnorm(layer: BatchNorm, in_shape: Shape) -> Op:
    mean, var = _f64(layer.running_mean), _f64(layer.running_var)
    gamma_, beta = _f64(layer.weight), _f64(layer.bias)
    with np.errstate(divide="ignore"):
        s = 1.0 / np.sqrt(var + layer.eps) if gamma_ is None else gamma_ / np.sqrt(var + layer.eps)  # type: ignore[operator]
    es = 8 * U * np.abs(s)  # var + eps, sqrt, division: < 4 roundings
    t = -mean * s  # type: ignore[operator]
    if beta is not None:
        t = beta + t
    et = np.abs(mean) * es + 4 * U * (np.abs(mean * s) + np.abs(t))  # type: ignore[operator]
    return ScaleShiftOp(s, t, in_shape, es, et)


@register(Affine)
def _affine(layer: Affine, in_shape: Shape) -> Op:
    return ScaleShiftOp(_f64(layer.scale), _f64(layer.shift), in_shape)  # type: ignore[arg-type]


@register(Activation)
def _activation(layer: Activation, in_shape: Shape) -> Op:
    if layer.fn.kind == "identity":
        return IndexOp(in_shape, in_shape)
    return ActivationOp(in_shape, layer.fn.kind, layer.fn.alpha)


@register(Dropout)
def _dropout(layer: Dropout, in_shape: Shape) -> Op:
    return IndexOp(in_shape, in_shape)


@register(Flatten)
def _flatten(layer: Flatten, in_shape: Shape) -> Op:
    return IndexOp(in_shape, (math.prod(in_shape),))


@register(Reshape)
def _reshape(layer: Reshape, in_shape: Shape) -> Op:
    return IndexOp(in_shape, _out_shape(layer, in_shape))


@register(Permute)
def _permute(layer: Permute, in_shape: Shape) -> Op:
    return IndexOp(in_shape, _out_shape(layer, in_shape), perm=tuple(layer.dims))


@register(MaxPool2d)
def _maxpool(layer: MaxPool2d, in_shape: Shape) -> Op:
    return MaxPoolOp(
        in_shape, _out_shape(layer, in_shape), layer.kernel_size, layer.stride, layer.padding, layer.dilation
    )


@register(AvgPool2d)
def _avgpool(layer: AvgPool2d, in_shape: Shape) -> Op:
    return AvgPoolOp(
        in_shape, _out_shape(layer, in_shape), layer.kernel_size, layer.stride, layer.padding, layer.count_include_pad
    )


@register(GlobalAvgPool)
def _gap(layer: GlobalAvgPool, in_shape: Shape) -> Op:
    return GlobalAvgPoolOp(in_shape)


def _axis_why_not(layer: Layer) -> str | None:
    if getattr(layer, "axis", -1) == 0:
        return f"{layer.name} over the batch axis (axis=0) mixes examples"
    return None


def _example_axis(axis: int, rank: int) -> int:
    """A batched-tensor axis (0 = batch) as a non-negative axis of one example."""
    return axis - 1 if axis >= 0 else rank + axis


@register(Softmax, _axis_why_not)
def _softmax(layer: Softmax, in_shape: Shape) -> Op:
    return SoftmaxOp(in_shape, _example_axis(layer.axis, len(in_shape)))


@register(LogSoftmax, _axis_why_not)
def _log_softmax(layer: LogSoftmax, in_shape: Shape) -> Op:
    return LogSoftmaxOp(in_shape, _example_axis(layer.axis, len(in_shape)))


@register(LayerNorm)
def _layernorm(layer: LayerNorm, in_shape: Shape) -> Op:
    n_axes = len(layer.normalized_shape)  # type: ignore[arg-type]
    return LayerNormOp(in_shape, n_axes, _f64(layer.weight), _f64(layer.bias), layer.eps)


@register(RMSNorm)
def _rmsnorm(layer: RMSNorm, in_shape: Shape) -> Op:
    n_axes = len(layer.normalized_shape)  # type: ignore[arg-type]
    if layer.eps is not None:
        lo = hi = fwd = float(layer.eps)
    else:  # torch's default: finfo(input dtype).eps -- cover float64 and the layer's own dtype
        fwd = layer.effective_eps(np.float64)
        own = layer.effective_eps(layer._dtype)
        lo, hi = min(fwd, own), max(fwd, own)
    return RMSNormOp(in_shape, n_axes, _f64(layer.weight), lo, hi, fwd)


# -- the graph ------------------------------------------------------------------------------------


@dataclass
class Node:
    """One op of the flat graph; ``inputs`` are node ids (always smaller than this node's id)."""

    id: int
    op: Op | None
    inputs: list[int]
    shape: Shape
    name: str
    consumers: list[int] = field(default_factory=list)


@dataclass
class Graph:
    """Nodes in topological order; node 0 is the input, ``output`` the last node's id."""

    nodes: list[Node]
    output: int = 0

    def add(self, op: Op, inputs: list[int], name: str) -> int:
        node = Node(len(self.nodes), op, inputs, op.out_shape, name)
        self.nodes.append(node)
        for i in inputs:
            self.nodes[i].consumers.append(node.id)
        return node.id


def _join(path: str, i: int) -> str:
    return f"{path}.{i}" if path else str(i)


def _describe(path: str, layer: Layer) -> str:
    return f"layer {path} ({layer.name})" if path else f"layer {layer.name}"


def _walk(g: Graph, layer: Layer, src: int, path: str) -> int:
    if isinstance(layer, Sequential):
        for i, sub in enumerate(layer.layers, start=1):
            src = _walk(g, sub, src, _join(path, i))
        return src
    if isinstance(layer, Residual):
        y = src
        for i, sub in enumerate(layer.layers, start=1):
            y = _walk(g, sub, y, _join(path, i))
        shape = g.nodes[src].shape
        if g.nodes[y].shape != shape:
            raise ValueError(f"{_describe(path, layer)}: branch output {g.nodes[y].shape} does not match {shape}")
        return g.add(AddOp([shape, shape], shape), [src, y], f"{path} Residual/add".strip())
    if isinstance(layer, Parallel):
        if layer.axis == 0:
            raise UnsupportedLayerError(f"{_describe(path, layer)}: concatenation over the batch axis")
        outs = [_walk(g, b, src, _join(path, i)) for i, b in enumerate(layer.branches, start=1)]
        shapes = [g.nodes[o].shape for o in outs]
        axis = _example_axis(layer.axis, len(shapes[0]))
        out_shape = list(shapes[0])
        out_shape[axis] = sum(s[axis] for s in shapes)
        return g.add(ConcatOp(shapes, tuple(out_shape), axis), outs, f"{path} Parallel/concat".strip())
    if not layer.built:
        raise ValueError(f"{_describe(path, layer)} is not built: run an input through the model first")
    entry = lookup(layer)
    if entry is None:
        raise UnsupportedLayerError(f"{_describe(path, layer)} has no bound transformer")
    reason = entry.why_not(layer)
    if reason:
        raise UnsupportedLayerError(f"{_describe(path, layer)}: {reason}")
    in_shape = g.nodes[src].shape
    name = f"{path} {layer.name}".strip()
    try:
        op = entry.factory(layer, in_shape)
    except UnsupportedLayerError as err:
        raise UnsupportedLayerError(f"{_describe(path, layer)}: {err}") from None
    node = g.add(op, [src], name)
    act = getattr(layer, "activation", None)
    if act is not None and not isinstance(layer, Activation) and act.kind != "identity":
        shape = g.nodes[node].shape
        node = g.add(ActivationOp(shape, act.kind, act.alpha), [node], f"{name}/{act.kind}")
    return node


def build_graph(model: Layer, in_shape: Shape) -> Graph:
    """Flatten ``model`` (eval semantics) for inputs of per-example shape ``in_shape``.

    Example:
        >>> from axiom import Dense
        >>> build_graph(Dense(2, 3), (2,)).nodes[-1].shape
        (3,)
    """
    g = Graph([Node(0, None, [], tuple(int(d) for d in in_shape), "input")])
    g.output = _walk(g, model, 0, "")
    return g


def unsupported_layers(model: Layer, path: str = "") -> list[str]:
    """Descriptions of the layers of ``model`` that have no transformer (empty: all supported).

    Example:
        >>> from axiom import Dense, Embedding, ReLU
        >>> unsupported_layers(Sequential(Embedding(10, 4), ReLU()))
        ['layer 1 (Embedding)']
    """
    if isinstance(layer := model, Sequential | Residual):
        out: list[str] = []
        for i, sub in enumerate(layer.layers, start=1):
            out += unsupported_layers(sub, _join(path, i))
        return out
    if isinstance(model, Parallel):
        out = [] if model.axis != 0 else [_describe(path, model)]
        for i, sub in enumerate(model.branches, start=1):
            out += unsupported_layers(sub, _join(path, i))
        return out
    entry = lookup(model)
    if entry is None or entry.why_not(model):
        return [_describe(path, model)]
    return []
