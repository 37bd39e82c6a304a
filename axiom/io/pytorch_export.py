"""Convert an axiom model into a live ``torch.nn.Module``: ``to_pytorch(model)``.

The inverse of :func:`axiom.io.pytorch_live.from_pytorch_module`: NHWC -> NCHW, Dense
``(in, out)`` -> Linear ``(out, in)``, Conv2d ``(kH, kW, C_in/g, C_out)`` -> ``(C_out, C_in/g, kH,
kW)``. Nested ``Sequential`` containers are flattened into one ``nn.Sequential``; a layer's
fused activation (``Dense(4, 3, relu)``) becomes its own torch module right after it. A
``Flatten`` of an image followed by a ``Dense`` gets the Dense's weight rows permuted to torch's
``C, H, W`` order; otherwise a channels-last permute module goes before torch's ``Flatten``.
The torch model is in the axiom model's train/eval mode and parameter dtype.

Example:
    >>> import numpy as np, torch
    >>> from axiom import Dense, Sequential, relu
    >>> from axiom.io.pytorch_export import to_pytorch
    >>> model = Sequential(Dense(4, 3, relu), Dense(3, 2))
    >>> net = to_pytorch(model)
    >>> x = np.ones((2, 4), np.float32)
    >>> bool(np.allclose(net(torch.from_numpy(x)).detach().numpy(), model(x).numpy(), atol=1e-6))
    True
"""

from __future__ import annotations

from functools import cache
from typing import Any

import numpy as np

from axiom.nn import (
    Activation,
    AvgPool2d,
    BatchNorm,
    Conv2d,
    Dense,
    Dropout,
    Embedding,
    Flatten,
    GlobalAvgPool,
    Layer,
    LayerNorm,
    LogSoftmax,
    MaxPool2d,
    MultiHeadAttention,
    Permute,
    Reshape,
    Sequential,
    Softmax,
)
from axiom.nn._args import explicit_padding
from axiom.shapes import Dim, is_known

__all__ = ["UnsupportedAxiomLayerError", "to_pytorch"]

_SAME, _IMAGE, _COLLAPSED, _FLAT_HWC = "same", "image", "collapsed", "flat_hwc"


class UnsupportedAxiomLayerError(ValueError):
    """An axiom layer (or option) that has no torch counterpart in :func:`to_pytorch`.

    Example:
        >>> from axiom import Dense, Residual, Sequential
        >>> try:
        ...     to_pytorch(Sequential(Dense(2, 2), Residual(Dense(2, 2))))
        ... except UnsupportedAxiomLayerError as err:
        ...     print(str(err).split(";")[0])
        layer 2 (1: Residual) is not supported
    """


def _torch() -> Any:
    try:
        import torch
    except ImportError as err:  # pragma: no cover - torch is a test dependency
        raise ImportError("to_pytorch needs torch installed (pip install torch)") from err
    return torch


@cache
def _channels_last_class() -> type:
    """A torch module ``(N, C, H, W) -> (N, H, W, C)`` (built lazily: torch is optional)."""
    torch = _torch()

    class ChannelsLast(torch.nn.Module):
        """Permutes NCHW to NHWC so that a following Flatten reads ``H, W, C`` like axiom."""

        def forward(self, x: Any) -> Any:
            return x.permute(0, 2, 3, 1)

    ChannelsLast.__module__ = __name__
    return ChannelsLast


_ACTIVATIONS = {
    "relu": "ReLU",
    "relu6": "ReLU6",
    "selu": "SELU",
    "sigmoid": "Sigmoid",
    "tanh": "Tanh",
    "softplus": "Softplus",
    "softsign": "Softsign",
    "silu": "SiLU",
    "mish": "Mish",
    "hardswish": "Hardswish",
    "hardsigmoid": "Hardsigmoid",
    "identity": "Identity",
}


def _torch_activation(fn: Any) -> Any:
    nn = _torch().nn
    if fn.kind == "leaky_relu":
        return nn.LeakyReLU(fn.alpha)
    if fn.kind == "elu":
        return nn.ELU(fn.alpha)
    if fn.kind == "gelu":
        return nn.GELU()
    if fn.kind == "gelu_tanh":
        return nn.GELU(approximate="tanh")
    return getattr(nn, _ACTIVATIONS[fn.kind])()


class _Leaf:
    def __init__(self, position: int, name: str, layer: Layer, in_shape: tuple[Dim, ...]) -> None:
        self.position, self.name, self.layer, self.in_shape = position, name, layer, in_shape

    def fail(self, why: str) -> UnsupportedAxiomLayerError:
        return UnsupportedAxiomLayerError(f"layer {self.position} ({self.name or '<root>'}: {self.layer.name}) {why}")


def _leaves(model: Layer) -> list[_Leaf]:
    out: list[_Leaf] = []

    def walk(layer: Layer, name: str, shape: tuple[Dim, ...]) -> tuple[Dim, ...]:
        if isinstance(layer, Sequential):
            for i, child in enumerate(layer.layers):
                shape = walk(child, f"{name}.{i}" if name else str(i), shape)
            return shape
        out.append(_Leaf(len(out) + 1, name, layer, shape))
        return tuple(layer.output_shape(shape))

    walk(model, "", tuple(model.default_input_shape()))
    return out


def _t(a: Any) -> Any:
    return _torch().from_numpy(np.ascontiguousarray(np.asarray(a)))


class _Exporter:
    def __init__(self, leaves: list[_Leaf], dtype: Any) -> None:
        self.leaves = leaves
        self.dtype = dtype  # torch dtype of every parameter
        self.modules: list[Any] = []
        self.layout = _SAME
        self.channels: int | None = None
        self.flatten_index: int | None = None

    def run(self) -> list[Any]:
        nn = _torch().nn
        for leaf in self.leaves:
            self.convert(leaf)
        self._settle()
        if self.layout == _COLLAPSED:
            self.modules.append(nn.Flatten())
        return self.modules

    def _settle(self) -> None:
        if self.layout == _FLAT_HWC:
            assert self.flatten_index is not None
            self.modules.insert(self.flatten_index, _channels_last_class()())
            self.layout = _SAME

    def _uncollapse(self) -> None:
        if self.layout == _COLLAPSED:
            self.modules.append(_torch().nn.Flatten())
            self.layout = _SAME

    def _image(self, leaf: _Leaf) -> None:
        if len(leaf.in_shape) != 4:
            raise leaf.fail(f"receives {leaf.in_shape}; expected an NHWC image (batch, H, W, C)")
        if self.layout == _SAME:
            self.layout = _IMAGE
        if self.layout != _IMAGE:
            raise leaf.fail("needs an image but follows a global pool or a flatten")

    def convert(self, leaf: _Leaf) -> None:
        nn = _torch().nn
        layer = leaf.layer
        if isinstance(layer, Activation):
            self.modules.append(_torch_activation(layer.fn))
        elif isinstance(layer, Dropout):
            self.modules.append(nn.Dropout(layer.p))
        elif isinstance(layer, Dense):
            self._dense(leaf, layer)
        elif isinstance(layer, Conv2d):
            self._conv(leaf, layer)
        elif isinstance(layer, BatchNorm):
            self._batchnorm(leaf, layer)
        elif isinstance(layer, LayerNorm):
            self._settle()
            self._uncollapse()
            if self.layout == _IMAGE:
                raise leaf.fail("on an NHWC image normalises layout-dependent axes; not supported")
            m = nn.LayerNorm(
                layer.normalized_shape,
                eps=layer.eps,
                elementwise_affine=layer.elementwise_affine,
                bias=layer.use_bias,
                dtype=self.dtype,
            )
            self._load(m, layer)
            self.modules.append(m)
        elif isinstance(layer, MaxPool2d | AvgPool2d):
            self._settle()
            self._image(leaf)
            pad = (layer.padding[0][0], layer.padding[1][0])
            if isinstance(layer, MaxPool2d):
                self.modules.append(nn.MaxPool2d(layer.kernel_size, layer.stride, pad, layer.dilation))
            else:
                self.modules.append(nn.AvgPool2d(layer.kernel_size, layer.stride, pad, False, layer.count_include_pad))
        elif isinstance(layer, GlobalAvgPool):
            self._settle()
            self._image(leaf)
            self.channels = _known(leaf.in_shape[3])
            self.modules.append(nn.AdaptiveAvgPool2d(1))
            self.layout = _COLLAPSED
        elif isinstance(layer, Flatten):
            self._flatten(leaf)
        elif isinstance(layer, Permute) and layer.dims == (2, 0, 1) and self.layout == _IMAGE:
            self.modules.append(nn.Identity())  # NHWC -> NCHW is torch's layout already
            self.layout = _SAME
        elif isinstance(layer, Reshape) and self.layout == _COLLAPSED and layer.target_shape[:2] == (1, 1):
            self.modules.append(nn.Identity())  # (N, C) -> (N, 1, 1, C): torch still holds (N, C, 1, 1)
            self.layout = _IMAGE
        elif isinstance(layer, Softmax | LogSoftmax):
            self._settle()
            cls = nn.Softmax if isinstance(layer, Softmax) else nn.LogSoftmax
            self.modules.append(cls(dim=self._dim(leaf, layer.axis)))
        elif isinstance(layer, Embedding):
            self._settle()
            m = nn.Embedding(layer.num_embeddings, layer.embedding_dim, padding_idx=layer.padding_idx, dtype=self.dtype)
            self._load(m, layer)
            self.modules.append(m)
        elif isinstance(layer, MultiHeadAttention):
            raise leaf.fail(
                "cannot run inside torch's nn.Sequential (torch's MultiheadAttention takes query, key and value); "
                "convert the attention layer on its own"
            )
        else:
            raise leaf.fail(
                "is not supported; supported: Sequential, Dense, Conv2d, DepthwiseConv2d, BatchNorm, LayerNorm, "
                "MaxPool2d, AvgPool2d, GlobalAvgPool, Flatten, Dropout, activations, Softmax, LogSoftmax, "
                "Embedding, MultiHeadAttention (on its own)"
            )

    def _dim(self, leaf: _Leaf, axis: int) -> int:
        rank = len(leaf.in_shape)
        if self.layout == _IMAGE:
            return (0, 2, 3, 1)[axis % 4]
        if self.layout == _COLLAPSED:
            if axis % rank != rank - 1:
                raise leaf.fail(f"axis={axis} on pooled (batch, C) values; only the channel axis is supported")
            return 1
        return axis

    def _load(self, module: Any, layer: Layer) -> None:
        """Copy same-named, same-layout parameters and buffers (norms, embeddings)."""
        state = {k: _t(v) for k, v in layer.state_dict().items()}
        module.load_state_dict(state, strict=True)

    def _dense(self, leaf: _Leaf, layer: Dense) -> None:
        nn = _torch().nn
        self._uncollapse()
        if len(leaf.in_shape) != 2:
            raise leaf.fail(f"receives {leaf.in_shape}; expected (batch, features)")
        w = np.asarray(layer.weight.data)  # (in, out), rows in axiom order
        n_in, n_out = w.shape
        if self.layout == _FLAT_HWC and self.channels is None:
            self._settle()
        if self.layout == _FLAT_HWC:
            c = self.channels
            assert c is not None
            if n_in % c:
                raise leaf.fail(f"has {n_in} inputs, not a multiple of the {c} channels of the flattened image")
            hw = n_in // c  # axiom row s*C + c  ->  torch column c*HW + s
            w = w.reshape(hw, c, n_out).transpose(1, 0, 2).reshape(n_in, n_out)
            self.layout = _SAME
        m = nn.Linear(n_in, n_out, bias=layer.bias is not None, dtype=self.dtype)
        m.weight.data = _t(w.T)
        if layer.bias is not None:
            m.bias.data = _t(layer.bias.data)
        self.modules.append(m)
        if layer.activation is not None:
            self.modules.append(_torch_activation(layer.activation))

    def _conv(self, leaf: _Leaf, layer: Conv2d) -> None:
        nn = _torch().nn
        self._settle()
        if self.layout == _COLLAPSED:
            self.layout = _IMAGE  # torch holds (N, C, 1, 1): already an image
        self._image(leaf)
        assert layer.in_channels is not None and layer.out_channels is not None and layer.groups is not None
        h, w = leaf.in_shape[1], leaf.in_shape[2]
        if layer.padding == "same" and layer.stride != (1, 1):
            if not (is_known(h) and is_known(w)):
                raise leaf.fail(
                    f"with padding='same' and stride {layer.stride} pads by the input size, unknown here "
                    f"({leaf.in_shape}); give the model an input_shape with H and W"
                )
            pads = list(explicit_padding("same", int(h), int(w), layer.kernel_size, layer.stride, layer.dilation))
        elif layer.padding == "same":  # stride 1: torch's "same" puts the odd cell at the bottom/right too
            totals = [d * (k - 1) for k, d in zip(layer.kernel_size, layer.dilation, strict=True)]
            pads = [(t // 2, t - t // 2) for t in totals]
        else:
            pads = [tuple(p) for p in layer.padding]
        (top, bottom), (left, right) = pads
        if top != bottom or left != right:
            self.modules.append(nn.ZeroPad2d((left, right, top, bottom)))
            padding: Any = 0
        else:
            padding = (top, left)
        m = nn.Conv2d(
            layer.in_channels,
            layer.out_channels,
            layer.kernel_size,
            stride=layer.stride,
            padding=padding,
            dilation=layer.dilation,
            groups=layer.groups,
            bias=layer.bias is not None,
            dtype=self.dtype,
        )
        m.weight.data = _t(np.asarray(layer.weight.data).transpose(3, 2, 0, 1))
        if layer.bias is not None:
            m.bias.data = _t(layer.bias.data)
        self.modules.append(m)
        self.channels = layer.out_channels
        if layer.activation is not None:
            self.modules.append(_torch_activation(layer.activation))

    def _batchnorm(self, leaf: _Leaf, layer: BatchNorm) -> None:
        nn = _torch().nn
        self._settle()
        rank = len(leaf.in_shape)
        if self.layout == _COLLAPSED:
            self._uncollapse()
        if rank == 4:
            self._image(leaf)
            cls = nn.BatchNorm2d
        elif rank == 2:
            cls = nn.BatchNorm1d
        else:
            raise leaf.fail(f"receives rank-{rank} input {leaf.in_shape}; torch's BatchNorm1d/2d need rank 2 or 4")
        m = cls(
            layer.num_features,
            eps=layer.eps,
            momentum=layer.momentum,
            affine=layer.affine,
            track_running_stats=layer.track_running_stats,
            dtype=self.dtype,
        )
        self._load(m, layer)
        self.modules.append(m)
        if rank == 4:
            self.channels = layer.num_features

    def _flatten(self, leaf: _Leaf) -> None:
        nn = _torch().nn
        self._settle()
        if self.layout == _IMAGE and len(leaf.in_shape) == 4:
            self.channels = _known(leaf.in_shape[3])
            self.flatten_index = len(self.modules)
            self.layout = _FLAT_HWC
        elif self.layout == _COLLAPSED:
            self.layout = _SAME
        self.modules.append(nn.Flatten())


def _known(d: Dim) -> int | None:
    return int(d) if is_known(d) else None


def _mha_to_torch(layer: MultiHeadAttention) -> Any:
    torch = _torch()
    if layer.causal or layer.rope:
        raise UnsupportedAxiomLayerError(
            f"{layer.name} with causal=True or rope=True has no torch.nn.MultiheadAttention equivalent"
        )
    has_bias = layer.q_proj.bias is not None
    m = torch.nn.MultiheadAttention(
        layer.embed_dim, layer.num_heads, dropout=layer.dropout, bias=has_bias, batch_first=True
    )
    projs = (layer.q_proj, layer.k_proj, layer.v_proj)
    m.in_proj_weight.data = _t(np.concatenate([np.asarray(p.weight.data).T for p in projs]))
    m.out_proj.weight.data = _t(np.asarray(layer.out_proj.weight.data).T)
    if has_bias:
        m.in_proj_bias.data = _t(np.concatenate([np.asarray(p.bias.data) for p in projs]))
        m.out_proj.bias.data = _t(layer.out_proj.bias.data)
    return m


def to_pytorch(model: Layer) -> Any:
    """Convert an axiom model to a ``torch.nn.Module`` whose outputs match (NCHW in for images).

    A ``Sequential`` (nested ones included) becomes one ``nn.Sequential``; a single
    ``MultiHeadAttention`` becomes ``nn.MultiheadAttention(batch_first=True)``. Raises
    :class:`UnsupportedAxiomLayerError` naming the first layer (position, dotted name, type)
    that has no torch counterpart.

    Example:
        >>> import numpy as np, torch
        >>> from axiom import Conv2d, Flatten, Dense, Sequential
        >>> model = Sequential(Conv2d(2, 3, 3), Flatten(), Dense(3 * 4 * 4, 2), input_shape=(None, 6, 6, 2))
        >>> net = to_pytorch(model)
        >>> x = np.random.default_rng(0).standard_normal((1, 6, 6, 2)).astype(np.float32)
        >>> torch_out = net(torch.from_numpy(x.transpose(0, 3, 1, 2))).detach().numpy()
        >>> bool(np.allclose(torch_out, model(x).numpy(), atol=1e-5))
        True
    """
    torch = _torch()
    if not isinstance(model, Layer):
        raise TypeError(f"to_pytorch expects an axiom Layer or Sequential, got {type(model).__name__}")
    dt = model.param_dtype()
    dtype = torch.float64 if dt is not None and np.dtype(dt) == np.float64 else torch.float32
    if isinstance(model, MultiHeadAttention):
        net = _mha_to_torch(model).to(dtype)
    else:
        net = torch.nn.Sequential(*_Exporter(_leaves(model), dtype).run())
    return net.train(bool(model.training))
