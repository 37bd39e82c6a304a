"""ONNX node patterns for each axiom layer (used by :func:`axiom.io.to_onnx`).

Every emitter takes the graph, the layer, the incoming :class:`~axiom.io._onnx_graph.OnnxValue`
and the layer's dotted position (its state-dict prefix, used to name initializers such as
``"0.weight"``) and returns the outgoing value. Only opset-17 operators are used, plus newer
single operators where the chosen opset has them (``Gelu`` from 20, ``Mish`` from 18;
``ReduceMean`` takes its axes as an input from 18). Containers are handled by the exporter.

Example:
    >>> import numpy as np
    >>> from axiom import Dense
    >>> from axiom.io._onnx_graph import OnnxGraph, OnnxValue
    >>> g = OnnxGraph(np.dtype(np.float32), opset=17)
    >>> y = emit_layer(g, Dense(3, 2, "relu"), OnnxValue("input", ("batch", 3), (0, 1)), "0")
    >>> y.shape, [n.op_type for n in g.nodes]
    (('batch', 2), ['Gemm', 'Relu'])
"""

from __future__ import annotations

import math
from collections.abc import Callable
from typing import Any

import numpy as np

from axiom.backends.reference_grad import _SELU_ALPHA, _SELU_SCALE
from axiom.io._onnx_graph import OnnxGraph, OnnxValue, channels_first
from axiom.nn._args import explicit_padding
from axiom.nn.activations import Activation, ActivationFunction, LogSoftmax, Softmax
from axiom.nn.affine import Affine
from axiom.nn.attention import MultiHeadAttention
from axiom.nn.conv import Conv2d
from axiom.nn.dense import Dense
from axiom.nn.dropout import Dropout
from axiom.nn.embedding import Embedding
from axiom.nn.layer import Layer
from axiom.nn.normalization import BatchNorm, LayerNorm, RMSNorm
from axiom.nn.pooling import AvgPool2d, GlobalAvgPool, MaxPool2d
from axiom.nn.reshape import Flatten, Permute, Reshape

__all__ = ["EMITTERS", "LayerExportError", "emit_activation", "emit_layer"]


class LayerExportError(ValueError):
    """A layer of a supported type whose settings have no faithful ONNX form (the exporter adds its position).

    Example:
        >>> str(LayerExportError("track_running_stats=False"))
        'track_running_stats=False'
    """


def _p(prefix: str, name: str) -> str:
    return f"{prefix}.{name}" if prefix else name


# -- activations ---------------------------------------------------------------------------------
def emit_activation(g: OnnxGraph, fn: ActivationFunction, x: str, hint: str) -> str:
    """Nodes computing ``fn`` element-wise on tensor ``x``; returns the output name.

    Example:
        >>> import numpy as np
        >>> from axiom import gelu
        >>> g = OnnxGraph(np.dtype(np.float32), opset=17)
        >>> _ = emit_activation(g, gelu, "x", "act")
        >>> [n.op_type for n in g.nodes]
        ['Mul', 'Erf', 'Add', 'Mul', 'Mul']
    """
    kind, alpha = fn.kind, fn.alpha
    if kind == "identity":
        return g.node("Identity", [x], hint)
    simple = {"relu": "Relu", "sigmoid": "Sigmoid", "tanh": "Tanh", "softplus": "Softplus", "softsign": "Softsign"}
    if kind in simple:
        return g.node(simple[kind], [x], hint)
    if kind == "leaky_relu":
        return g.node("LeakyRelu", [x], hint, alpha=alpha)
    if kind == "elu":
        return g.node("Elu", [x], hint, alpha=alpha)
    if kind == "selu":
        return g.node("Selu", [x], hint, alpha=_SELU_ALPHA, gamma=_SELU_SCALE)
    if kind == "hardswish":
        return g.node("HardSwish", [x], hint)
    if kind == "hardsigmoid":
        return g.node("HardSigmoid", [x], hint, alpha=1.0 / 6.0, beta=0.5)
    if kind == "relu6":
        return g.node("Clip", [x, g.const(0.0, f"{hint}.min"), g.const(6.0, f"{hint}.max")], hint)
    if kind == "silu":
        return g.node("Mul", [x, g.node("Sigmoid", [x], f"{hint}.sigmoid")], hint)
    if kind == "mish":
        if g.opset >= 18:
            return g.node("Mish", [x], hint)
        soft = g.node("Softplus", [x], f"{hint}.softplus")
        return g.node("Mul", [x, g.node("Tanh", [soft], f"{hint}.tanh")], hint)
    if kind in ("gelu", "gelu_tanh"):
        if g.opset >= 20:
            return g.node("Gelu", [x], hint, approximate="tanh" if kind == "gelu_tanh" else "none")
        if kind == "gelu":  # 0.5 * x * (1 + erf(x / sqrt(2)))
            inner = g.node(
                "Erf", [g.node("Mul", [x, g.const(1.0 / math.sqrt(2.0), f"{hint}.rsqrt2")], f"{hint}.s")], f"{hint}.erf"
            )
        else:  # 0.5 * x * (1 + tanh(sqrt(2/pi) * (x + 0.044715 x^3)))
            cube = g.node("Mul", [x, g.node("Mul", [x, x], f"{hint}.sq")], f"{hint}.cube")
            poly = g.node("Add", [x, g.node("Mul", [cube, g.const(0.044715, f"{hint}.c")], f"{hint}.cc")], f"{hint}.p")
            scaled = g.node("Mul", [poly, g.const(math.sqrt(2.0 / math.pi), f"{hint}.k")], f"{hint}.kp")
            inner = g.node("Tanh", [scaled], f"{hint}.tanh")
        one_plus = g.node("Add", [inner, g.const(1.0, f"{hint}.one")], f"{hint}.onep")
        half_x = g.node("Mul", [x, g.const(0.5, f"{hint}.half")], f"{hint}.hx")
        return g.node("Mul", [half_x, one_plus], hint)
    raise LayerExportError(f"activation {kind!r} has no ONNX mapping")  # pragma: no cover - ACTIVATIONS is closed


def _maybe_activation(g: OnnxGraph, fn: ActivationFunction | None, v: OnnxValue, prefix: str) -> OnnxValue:
    if fn is None:
        return v
    return v.with_(emit_activation(g, fn, v.name, _p(prefix, fn.kind)))


def _activation_layer(g: OnnxGraph, layer: Activation, v: OnnxValue, prefix: str) -> OnnxValue:
    return v.with_(emit_activation(g, layer.fn, v.name, _p(prefix, layer.fn.kind)))


def _softmax(g: OnnxGraph, layer: Softmax | LogSoftmax, v: OnnxValue, prefix: str) -> OnnxValue:
    op = "LogSoftmax" if isinstance(layer, LogSoftmax) else "Softmax"
    return v.with_(g.node(op, [v.name], _p(prefix, op.lower()), axis=v.physical_axis(layer.axis)))


def _dropout(g: OnnxGraph, layer: Dropout, v: OnnxValue, prefix: str) -> OnnxValue:
    ratio = g.const(layer.p, _p(prefix, "ratio"))  # training_mode left out: inference (identity)
    return v.with_(g.node("Dropout", [v.name, ratio], _p(prefix, "dropout")))


# -- dense, convolution, pooling ------------------------------------------------------------------
def _dense(g: OnnxGraph, layer: Dense, v: OnnxValue, prefix: str) -> OnnxValue:
    v = g.logical(v, prefix)
    inputs = [v.name, g.const(layer.weight.data, _p(prefix, "weight"))]  # type: ignore[union-attr]
    if layer.bias is not None:
        inputs.append(g.const(layer.bias.data, _p(prefix, "bias")))
    out = v.with_(g.node("Gemm", inputs, _p(prefix, "gemm")), shape=layer.output_shape(v.shape))
    return _maybe_activation(g, layer.activation, out, prefix)


def _conv(g: OnnxGraph, layer: Conv2d, v: OnnxValue, prefix: str) -> OnnxValue:
    v = g.to_layout(v, channels_first(4), prefix)
    _, h, w, _ = v.shape
    (top, bottom), (left, right) = explicit_padding(
        layer.padding, int(h), int(w), layer.kernel_size, layer.stride, layer.dilation
    )
    weight = layer.weight.data.transpose(3, 2, 0, 1)  # type: ignore[union-attr]  # (kH, kW, Cin/g, Cout) -> OIHW
    inputs = [v.name, g.const(weight, _p(prefix, "weight"))]
    if layer.bias is not None:
        inputs.append(g.const(layer.bias.data, _p(prefix, "bias")))
    name = g.node(
        "Conv",
        inputs,
        _p(prefix, "conv"),
        kernel_shape=list(layer.kernel_size),
        strides=list(layer.stride),
        dilations=list(layer.dilation),
        pads=[top, left, bottom, right],
        group=int(layer.groups),  # type: ignore[arg-type]
    )
    return _maybe_activation(g, layer.activation, v.with_(name, shape=layer.output_shape(v.shape)), prefix)


def _pool(g: OnnxGraph, layer: MaxPool2d | AvgPool2d, v: OnnxValue, prefix: str) -> OnnxValue:
    v = g.to_layout(v, channels_first(4), prefix)
    (ph, _), (pw, _) = layer.padding
    attrs: dict[str, Any] = {"kernel_shape": list(layer.kernel_size), "strides": list(layer.stride)}
    attrs["pads"] = [ph, pw, ph, pw]
    if isinstance(layer, MaxPool2d):
        op = "MaxPool"
        attrs["dilations"] = list(layer.dilation)
    else:
        op = "AveragePool"
        attrs["count_include_pad"] = int(layer.count_include_pad)
    return v.with_(g.node(op, [v.name], _p(prefix, op.lower()), **attrs), shape=layer.output_shape(v.shape))


def _global_avg_pool(g: OnnxGraph, layer: GlobalAvgPool, v: OnnxValue, prefix: str) -> OnnxValue:
    v = g.to_layout(v, channels_first(4), prefix)
    pooled = g.node("GlobalAveragePool", [v.name], _p(prefix, "pool"))
    flat = g.node("Flatten", [pooled], _p(prefix, "flatten"), axis=1)
    return OnnxValue(flat, layer.output_shape(v.shape), (0, 1))


# -- normalisation ----------------------------------------------------------------------------------
def _batchnorm(g: OnnxGraph, layer: BatchNorm, v: OnnxValue, prefix: str) -> OnnxValue:
    if layer.running_mean is None or layer.running_var is None:
        raise LayerExportError(
            "BatchNorm with track_running_stats=False normalises with the statistics of each batch; ONNX "
            "BatchNormalization (inference) needs running statistics"
        )
    c = layer.running_mean.shape[0]
    v = g.to_layout(v, channels_first(v.rank), prefix)
    scale = layer.weight.data if layer.weight is not None else np.ones(c)
    bias = layer.bias.data if layer.bias is not None else np.zeros(c)
    inputs = [
        v.name,
        g.const(scale, _p(prefix, "weight")),
        g.const(bias, _p(prefix, "bias")),
        g.const(layer.running_mean.data, _p(prefix, "running_mean")),
        g.const(layer.running_var.data, _p(prefix, "running_var")),
    ]
    return v.with_(g.node("BatchNormalization", inputs, _p(prefix, "batchnorm"), epsilon=layer.eps))


def _layernorm(g: OnnxGraph, layer: LayerNorm, v: OnnxValue, prefix: str) -> OnnxValue:
    v = g.logical(v, prefix)
    ns = layer.normalized_shape or ()
    scale = layer.weight.data if layer.weight is not None else np.ones(ns)
    inputs = [v.name, g.const(scale, _p(prefix, "weight"))]
    if layer.bias is not None:
        inputs.append(g.const(layer.bias.data, _p(prefix, "bias")))
    name = g.node("LayerNormalization", inputs, _p(prefix, "layernorm"), axis=-len(ns), epsilon=layer.eps)
    return v.with_(name)


def _reduce_mean(g: OnnxGraph, x: str, axes: list[int], hint: str) -> str:
    if g.opset >= 18:
        return g.node("ReduceMean", [x, g.ints(axes, f"{hint}.axes")], hint, keepdims=1)
    return g.node("ReduceMean", [x], hint, axes=axes, keepdims=1)


def _rmsnorm(g: OnnxGraph, layer: RMSNorm, v: OnnxValue, prefix: str) -> OnnxValue:
    """``x / sqrt(mean(x^2) + eps) * weight`` (ONNX has RMSNormalization only from opset 23)."""
    v = g.logical(v, prefix)
    n = len(layer.normalized_shape or ())
    sq = g.node("Mul", [v.name, v.name], _p(prefix, "square"))
    mean = _reduce_mean(g, sq, list(range(-n, 0)), _p(prefix, "mean_square"))
    eps = g.const(layer.effective_eps(g.dtype), _p(prefix, "eps"))
    rms = g.node("Sqrt", [g.node("Add", [mean, eps], _p(prefix, "plus_eps"))], _p(prefix, "rms"))
    y = g.node("Div", [v.name, rms], _p(prefix, "normalized"))
    if layer.weight is not None:
        y = g.node("Mul", [y, g.const(layer.weight.data, _p(prefix, "weight"))], _p(prefix, "scaled"))
    return v.with_(y)


def _affine(g: OnnxGraph, layer: Affine, v: OnnxValue, prefix: str) -> OnnxValue:
    v = g.logical(v, prefix)
    y = g.node("Mul", [v.name, g.const(layer.scale.data, _p(prefix, "scale"))], _p(prefix, "mul"))
    return v.with_(g.node("Add", [y, g.const(layer.shift.data, _p(prefix, "shift"))], _p(prefix, "add")))


# -- shapes ----------------------------------------------------------------------------------------------
def _flatten(g: OnnxGraph, layer: Flatten, v: OnnxValue, prefix: str) -> OnnxValue:
    v = g.logical(v, prefix)
    return OnnxValue(g.node("Flatten", [v.name], _p(prefix, "flatten"), axis=1), layer.output_shape(v.shape), (0, 1))


def _reshape(g: OnnxGraph, layer: Reshape, v: OnnxValue, prefix: str) -> OnnxValue:
    v = g.logical(v, prefix)
    out = layer.output_shape(v.shape)
    target = g.ints([0, *(int(d) for d in out[1:])], _p(prefix, "shape"))  # 0 copies the batch size
    return OnnxValue(g.node("Reshape", [v.name, target], _p(prefix, "reshape")), out, tuple(range(len(out))))


def _permute(g: OnnxGraph, layer: Permute, v: OnnxValue, prefix: str) -> OnnxValue:
    v = g.logical(v, prefix)
    perm = [0, *(1 + d for d in layer.dims)]
    out = layer.output_shape(v.shape)
    return OnnxValue(g.node("Transpose", [v.name], _p(prefix, "permute"), perm=perm), out, tuple(range(len(out))))


def _embedding(g: OnnxGraph, layer: Embedding, v: OnnxValue, prefix: str) -> OnnxValue:
    v = g.logical(v, prefix)
    weight = g.const(layer.weight.data, _p(prefix, "weight"))
    out = layer.output_shape(v.shape)
    return OnnxValue(g.node("Gather", [weight, v.name], _p(prefix, "gather"), axis=0), out, tuple(range(len(out))))


# -- attention ---------------------------------------------------------------------------------------------
def _attention(g: OnnxGraph, layer: MultiHeadAttention, v: OnnxValue, prefix: str) -> OnnxValue:
    """Self-attention decomposed into MatMul/Softmax (ONNX's Attention operator is opset 23)."""
    v = g.logical(v, prefix)
    seq = v.shape[1]
    heads, d, e = layer.num_heads, layer.head_dim, layer.embed_dim

    def project(proj: Dense, name: str, x: str) -> str:
        y = g.node("MatMul", [x, g.const(proj.weight.data, _p(prefix, f"{name}.weight"))], _p(prefix, f"{name}.matmul"))  # type: ignore[union-attr]
        if proj.bias is not None:
            y = g.node("Add", [y, g.const(proj.bias.data, _p(prefix, f"{name}.bias"))], _p(prefix, f"{name}.add"))
        return y

    split = g.ints([0, 0, heads, d], _p(prefix, "split_heads"))
    qkv = []
    for name in ("q_proj", "k_proj", "v_proj"):
        y = g.node("Reshape", [project(getattr(layer, name), name, v.name), split], _p(prefix, f"{name}.heads"))
        qkv.append(g.node("Transpose", [y], _p(prefix, f"{name}.bhld"), perm=[0, 2, 1, 3]))
    q, k, val = qkv
    if layer.rope:
        q, k = (_rope(g, layer, t, int(seq), _p(prefix, f"{n}.rope")) for t, n in ((q, "q"), (k, "k")))
    kt = g.node("Transpose", [k], _p(prefix, "k_t"), perm=[0, 1, 3, 2])
    scores = g.node("MatMul", [q, kt], _p(prefix, "scores"))
    scores = g.node("Mul", [scores, g.const(1.0 / math.sqrt(d), _p(prefix, "scale"))], _p(prefix, "scaled"))
    if layer.causal:
        hidden = np.triu(np.ones((int(seq), int(seq)), dtype=bool), k=1)
        mask = g.const(np.where(hidden, -np.inf, 0.0), _p(prefix, "causal_mask"))
        scores = g.node("Add", [scores, mask], _p(prefix, "masked"))
    probs = g.node("Softmax", [scores], _p(prefix, "probs"), axis=-1)
    out = g.node("MatMul", [probs, val], _p(prefix, "context"))
    out = g.node("Transpose", [out], _p(prefix, "context.blhd"), perm=[0, 2, 1, 3])
    out = g.node("Reshape", [out, g.ints([0, 0, e], _p(prefix, "merge_heads"))], _p(prefix, "merged"))
    return v.with_(project(layer.out_proj, "out_proj", out))


def _rope(g: OnnxGraph, layer: MultiHeadAttention, x: str, seq: int, hint: str) -> str:
    """Rotary embedding (rotate-half) with cos/sin tables for positions ``0..seq-1`` as constants."""
    d = layer.head_dim
    half = d // 2
    inv_freq = 1.0 / (layer.rope_base ** (np.arange(half, dtype=np.float64) * 2.0 / d))
    angles = np.arange(seq, dtype=np.float64)[:, None] * inv_freq[None, :]
    cos, sin = g.const(np.cos(angles), f"{hint}.cos"), g.const(np.sin(angles), f"{hint}.sin")
    axes = g.ints([3], f"{hint}.axes")
    x1 = g.node("Slice", [x, g.ints([0], f"{hint}.s0"), g.ints([half], f"{hint}.e0"), axes], f"{hint}.x1")
    x2 = g.node("Slice", [x, g.ints([half], f"{hint}.s1"), g.ints([2 * half], f"{hint}.e1"), axes], f"{hint}.x2")

    def mul(a: str, b: str, n: str) -> str:
        return g.node("Mul", [a, b], f"{hint}.{n}")

    first = g.node("Sub", [mul(x1, cos, "x1c"), mul(x2, sin, "x2s")], f"{hint}.r1")
    second = g.node("Add", [mul(x2, cos, "x2c"), mul(x1, sin, "x1s")], f"{hint}.r2")
    return g.node("Concat", [first, second], hint, axis=-1)


Emitter = Callable[[OnnxGraph, Any, OnnxValue, str], OnnxValue]

#: Layer type -> emitter; subclasses match through the MRO (Conv2d covers DepthwiseConv2d).
EMITTERS: dict[type, Emitter] = {
    Dense: _dense,
    Conv2d: _conv,
    MaxPool2d: _pool,
    AvgPool2d: _pool,
    GlobalAvgPool: _global_avg_pool,
    BatchNorm: _batchnorm,
    LayerNorm: _layernorm,
    RMSNorm: _rmsnorm,
    Affine: _affine,
    Flatten: _flatten,
    Reshape: _reshape,
    Permute: _permute,
    Dropout: _dropout,
    Embedding: _embedding,
    MultiHeadAttention: _attention,
    Activation: _activation_layer,
    Softmax: _softmax,
    LogSoftmax: _softmax,
}


def find_emitter(layer: Layer) -> Emitter | None:
    """The emitter for ``layer``'s type or a base class of it that computes the same ``forward``, or None.

    A subclass that overrides ``forward`` computes something the emitter does not know: None.

    Example:
        >>> from axiom import Dense, DepthwiseConv2d, ReLU
        >>> find_emitter(DepthwiseConv2d(3, channels=2)) is EMITTERS[Conv2d], find_emitter(ReLU()) is not None
        (True, True)
        >>> class Shifted(Dense):
        ...     def forward(self, x):
        ...         return super().forward(x) + 1
        >>> find_emitter(Shifted(2, 2)) is None
        True
    """
    for cls in type(layer).__mro__:
        if cls in EMITTERS:
            return EMITTERS[cls] if type(layer).forward is cls.forward else None
    return None


def emit_layer(g: OnnxGraph, layer: Layer, v: OnnxValue, prefix: str) -> OnnxValue:
    """Emit the nodes of one (non-container) layer; raises ``LayerExportError`` when it has no ONNX form.

    Example:
        >>> import numpy as np
        >>> from axiom import Softmax
        >>> g = OnnxGraph(np.dtype(np.float32), opset=17)
        >>> emit_layer(g, Softmax(), OnnxValue("x", ("batch", 4), (0, 1)), "3").name
        '3.softmax'
    """
    emitter = find_emitter(layer)
    if emitter is None:
        raise LayerExportError(f"no ONNX mapping for {type(layer).__name__}")
    return emitter(g, layer, v, prefix)
