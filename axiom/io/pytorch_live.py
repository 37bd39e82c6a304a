"""Convert a live ``torch.nn.Module`` into an axiom model (NCHW -> NHWC, weight layouts transposed).

``from_pytorch_module(module)`` walks ``nn.Sequential`` containers (nested ones included) in
execution order and maps every leaf module onto an axiom layer. The result is one flat
:class:`~axiom.nn.containers.Sequential`, in the same mode (train/eval) as the torch module.

Layout rules (stated, never guessed):

- images: torch feeds ``(N, C, H, W)``, axiom ``(N, H, W, C)``; give the axiom model
  ``x.transpose(0, 2, 3, 1)`` and compare image outputs the same way;
- ``Linear`` weights ``(out, in)`` become Dense ``(in, out)``; ``Conv2d`` weights
  ``(out, in/groups, kH, kW)`` become ``(kH, kW, in/groups, out)``;
- ``Flatten`` after an image: torch flattens ``C, H, W``, axiom ``H, W, C``. When the next
  layer that is not element-wise is a ``Linear``, its weight columns are permuted to the
  ``H, W, C`` order; otherwise a ``Permute((2, 0, 1))`` is put before the ``Flatten``;
- ``AdaptiveAvgPool2d(1)`` becomes ``GlobalAvgPool`` (``(N, C)``); torch's ``(N, C, 1, 1)``
  is restored with ``Reshape((1, 1, -1))`` only where a later image layer or the model's
  output needs it;
- ``MultiheadAttention`` maps to axiom's batch-first ``MultiHeadAttention`` (self-attention);
  with ``batch_first=False`` feed axiom ``(batch, seq, E)``, the transpose of torch's input.

Anything else is an error naming the layer's position, its dotted name and its type; nothing
is dropped.

Example:
    >>> import numpy as np, torch
    >>> from axiom.io.pytorch_live import from_pytorch_module
    >>> net = torch.nn.Sequential(torch.nn.Linear(4, 3), torch.nn.ReLU()).eval()
    >>> model = from_pytorch_module(net)
    >>> x = np.ones((2, 4), np.float32)
    >>> bool(np.allclose(model(x).numpy(), net(torch.from_numpy(x)).detach().numpy(), atol=1e-6))
    True
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import numpy as np

from axiom.nn import (
    ELU,
    GELU,
    SELU,
    Activation,
    AvgPool2d,
    BatchNorm,
    Conv2d,
    Dense,
    Dropout,
    Embedding,
    Flatten,
    GlobalAvgPool,
    Hardsigmoid,
    Hardswish,
    Layer,
    LayerNorm,
    LeakyReLU,
    LogSoftmax,
    MaxPool2d,
    Mish,
    MultiHeadAttention,
    Parameter,
    Permute,
    ReLU,
    ReLU6,
    Reshape,
    Sequential,
    Sigmoid,
    SiLU,
    Softmax,
    Softplus,
    Softsign,
    Tanh,
)

__all__ = ["SUPPORTED_TORCH_MODULES", "UnsupportedTorchModuleError", "from_pytorch_module"]

#: torch.nn classes that ``from_pytorch_module`` converts (containers: ``Sequential``).
SUPPORTED_TORCH_MODULES = (
    "Sequential",
    "Linear",
    "Conv2d",
    "BatchNorm1d",
    "BatchNorm2d",
    "LayerNorm",
    "MaxPool2d",
    "AvgPool2d",
    "AdaptiveAvgPool2d(1)",
    "Flatten",
    "Dropout",
    "Identity",
    "ReLU",
    "ReLU6",
    "LeakyReLU",
    "ELU",
    "SELU",
    "GELU",
    "SiLU",
    "Mish",
    "Sigmoid",
    "Tanh",
    "Softplus",
    "Softsign",
    "Hardswish",
    "Hardsigmoid",
    "Softmax",
    "LogSoftmax",
    "MultiheadAttention",
    "Embedding",
)

# Layouts of the value flowing between layers, torch side <-> axiom side.
_SAME = "same"  # identical layout (features, sequences, or before anything decided it)
_IMAGE = "image"  # torch (N, C, H, W) <-> axiom (N, H, W, C)
_COLLAPSED = "collapsed"  # torch (N, C, 1, 1) <-> axiom (N, C) after a global average pool
_FLAT_HWC = "flat_hwc"  # torch (N, C*H*W) in C,H,W order <-> axiom (N, H*W*C) in H,W,C order
_SEQUENCE = "sequence"  # (N, L, E) on both sides, after an Embedding or attention


class UnsupportedTorchModuleError(ValueError):
    """A torch module (or one of its options) that has no axiom counterpart.

    Example:
        >>> import torch
        >>> try:
        ...     from_pytorch_module(torch.nn.Sequential(torch.nn.Linear(2, 2), torch.nn.Upsample(scale_factor=2)))
        ... except UnsupportedTorchModuleError as err:
        ...     print(str(err).split(";")[0])
        layer 2 (1: torch.nn.Upsample) is not supported
    """


def _torch() -> Any:
    try:
        import torch
    except ImportError as err:  # pragma: no cover - torch is a test dependency
        raise ImportError("from_pytorch on a live module needs torch installed (pip install torch)") from err
    return torch


def _array(t: Any) -> np.ndarray:
    return t.detach().cpu().numpy().copy()


def _dtype_of(module: Any) -> Any:
    for p in list(module.parameters()) + list(module.buffers()):
        if p.is_floating_point():
            return np.float64 if str(p.dtype) == "torch.float64" else np.float32
    return np.float32


class _Leaf:
    """One leaf module with its dotted name and its 1-based position in execution order."""

    def __init__(self, position: int, name: str, module: Any) -> None:
        self.position, self.name, self.module = position, name, module

    def describe(self) -> str:
        cls = type(self.module)
        module_path = "torch.nn" if cls.__module__.startswith("torch.nn") else cls.__module__
        return f"layer {self.position} ({self.name or '<root>'}: {module_path}.{cls.__name__})"

    def fail(self, why: str) -> UnsupportedTorchModuleError:
        return UnsupportedTorchModuleError(f"{self.describe()} {why}")


def _leaves(module: Any) -> list[_Leaf]:
    """Leaf modules of nested ``nn.Sequential`` containers in execution order."""
    torch = _torch()
    out: list[_Leaf] = []

    def walk(m: Any, name: str) -> None:
        if isinstance(m, torch.nn.Sequential):
            if type(m).forward is not torch.nn.Sequential.forward:
                raise UnsupportedTorchModuleError(
                    f"{name or '<root>'} ({type(m).__qualname__}) subclasses nn.Sequential but overrides forward; "
                    "only containers whose forward runs their children in order can be converted"
                )
            for child_name, child in m.named_children():
                walk(child, f"{name}.{child_name}" if name else child_name)
            return
        out.append(_Leaf(len(out) + 1, name, m))

    walk(module, "")
    return out


_ELEMENTWISE = {
    "ReLU": lambda m: ReLU(),
    "ReLU6": lambda m: ReLU6(),
    "LeakyReLU": lambda m: LeakyReLU(float(m.negative_slope)),
    "ELU": lambda m: ELU(float(m.alpha)),
    "SELU": lambda m: SELU(),
    "GELU": lambda m: GELU(approximate=m.approximate),
    "SiLU": lambda m: SiLU(),
    "Mish": lambda m: Mish(),
    "Sigmoid": lambda m: Sigmoid(),
    "Tanh": lambda m: Tanh(),
    "Softsign": lambda m: Softsign(),
    "Hardswish": lambda m: Hardswish(),
    "Hardsigmoid": lambda m: Hardsigmoid(),
    "Identity": lambda m: Activation("identity"),
    "Dropout": lambda m: Dropout(float(m.p)),
    "Softplus": lambda m: Softplus(),
}


def _is_torch_nn(module: Any, name: str) -> bool:
    torch = _torch()
    cls = getattr(torch.nn, name, None)
    return cls is not None and type(module) is cls


def _elementwise_name(module: Any) -> str | None:
    for name in _ELEMENTWISE:
        if _is_torch_nn(module, name):
            return name
    return None


class _Converter:
    """Walks the leaves once, keeping track of the layout that flows between them."""

    def __init__(self, leaves: list[_Leaf]) -> None:
        self.leaves = leaves
        self.layers: list[Layer] = []
        self.layout = _SAME
        self.channels: int | None = None  # C of the current image, when known
        self.flatten_index: int | None = None  # where the Flatten of a _FLAT_HWC value sits in self.layers

    # -- layout bookkeeping ------------------------------------------------------------
    def _enter_image(self, leaf: _Leaf) -> None:
        if self.layout == _COLLAPSED:
            self.layers.append(Reshape((1, 1, -1)))
        elif self.layout == _FLAT_HWC:
            raise leaf.fail("needs an image but follows a Flatten; images cannot be rebuilt from flat vectors")
        elif self.layout == _SEQUENCE:
            raise leaf.fail("needs an (N, C, H, W) image but follows an Embedding or attention")
        self.layout = _IMAGE

    def _settle_flatten(self) -> None:
        """A flattened image met something other than a Linear: reorder to C,H,W before the Flatten."""
        if self.layout == _FLAT_HWC:
            assert self.flatten_index is not None
            self.layers.insert(self.flatten_index, Permute((2, 0, 1)))
            self.layout = _SAME

    def _axis(self, leaf: _Leaf, dim: int | None) -> int:
        if dim is None:
            raise leaf.fail("has dim=None (torch's implicit, deprecated choice); give dim explicitly")
        if self.layout == _IMAGE:
            d = dim % 4
            return (0, 3, 1, 2)[d]
        if self.layout == _COLLAPSED:
            if dim % 4 != 1:
                raise leaf.fail(f"with dim={dim} on a (N, C, 1, 1) pooled image is not supported; expected dim=1")
            return -1
        if self.layout == _SEQUENCE and dim % 3 == 0:
            raise leaf.fail(f"with dim={dim} over the batch axis is not supported")
        return dim

    # -- the walk ----------------------------------------------------------------------
    def run(self) -> list[Layer]:
        for leaf in self.leaves:
            self.convert(leaf)
        self._settle_flatten()
        if self.layout == _COLLAPSED:
            self.layers.append(Reshape((1, 1, -1)))
        return self.layers

    def convert(self, leaf: _Leaf) -> None:
        m = leaf.module
        elementwise = _elementwise_name(m)
        if elementwise is not None:
            if elementwise == "Softplus" and (float(m.beta) != 1.0 or float(m.threshold) != 20.0):
                raise leaf.fail(f"with beta={m.beta}, threshold={m.threshold}; only beta=1, threshold=20 are supported")
            self.layers.append(_ELEMENTWISE[elementwise](m))
            return
        for name, method in self._dispatch().items():
            if _is_torch_nn(m, name):
                method(leaf)
                return
        raise self._unsupported(leaf)

    def _unsupported(self, leaf: _Leaf) -> UnsupportedTorchModuleError:
        m = leaf.module
        torch = _torch()
        if isinstance(m, torch.jit.ScriptModule):
            why = (
                "is a TorchScript module; convert the original nn.Module, or pass the saved archive's path "
                "to from_pytorch"
            )
        elif list(m.children()) and not isinstance(m, torch.nn.Sequential):
            why = (
                "is a custom module with its own forward; only nn.Sequential containers and the supported "
                "layers can be converted (rewrite it as an nn.Sequential or convert its parts)"
            )
        elif isinstance(m, torch.nn.ModuleList | torch.nn.ModuleDict):
            why = "is a ModuleList/ModuleDict, which has no forward of its own"
        else:
            why = "is not supported"
        return leaf.fail(f"{why}; supported: {', '.join(SUPPORTED_TORCH_MODULES)}")

    def _dispatch(self) -> dict[str, Callable[[_Leaf], None]]:
        return {
            "Linear": self._linear,
            "Conv2d": self._conv2d,
            "BatchNorm1d": self._batchnorm1d,
            "BatchNorm2d": self._batchnorm2d,
            "LayerNorm": self._layernorm,
            "MaxPool2d": self._maxpool,
            "AvgPool2d": self._avgpool,
            "AdaptiveAvgPool2d": self._adaptive_avgpool,
            "Flatten": self._flatten,
            "Softmax": self._softmax,
            "LogSoftmax": self._softmax,
            "MultiheadAttention": self._mha,
            "Embedding": self._embedding,
        }

    # -- layers ------------------------------------------------------------------------
    def _linear(self, leaf: _Leaf) -> None:
        m = leaf.module
        w = _array(m.weight)  # (out, in)
        if self.layout == _FLAT_HWC and self.channels is None:
            self._settle_flatten()  # channel count unknown: reorder the values instead of the weights
        if self.layout == _FLAT_HWC:
            c = self.channels
            assert c is not None
            if m.in_features % c:
                raise leaf.fail(f"has in_features={m.in_features}, not a multiple of the {c} image channels")
            hw = m.in_features // c
            # torch column c*HW + s  ->  axiom row s*C + c
            w = w.reshape(m.out_features, c, hw).transpose(0, 2, 1).reshape(m.out_features, m.in_features)
            self.layout = _SAME
        elif self.layout in (_IMAGE, _COLLAPSED):
            raise leaf.fail("is applied to an image (torch would act on its last axis W); put a Flatten before it")
        elif self.layout == _SEQUENCE:
            raise leaf.fail("on (batch, seq, features) is not supported: axiom's Dense takes (batch, features)")
        layer = Dense(m.in_features, m.out_features, bias=m.bias is not None, dtype=w.dtype)
        layer.weight = Parameter(np.ascontiguousarray(w.T))
        if m.bias is not None:
            layer.bias = Parameter(_array(m.bias))
        self.layers.append(layer)

    def _conv2d(self, leaf: _Leaf) -> None:
        m = leaf.module
        if m.padding_mode != "zeros":
            raise leaf.fail(f"with padding_mode={m.padding_mode!r} is not supported; expected 'zeros'")
        self._settle_flatten()
        self._enter_image(leaf)
        kh, kw = m.kernel_size
        if isinstance(m.padding, str):
            if m.padding == "valid":
                padding: Any = 0
            else:  # "same": torch puts the odd cell at the bottom/right
                pads = []
                for k, d in zip(m.kernel_size, m.dilation, strict=True):
                    total = d * (k - 1)
                    pads.append((total // 2, total - total // 2))
                padding = tuple(pads)
        else:
            padding = tuple(m.padding)
        w = _array(m.weight)
        layer = Conv2d(
            m.in_channels,
            m.out_channels,
            (kh, kw),
            stride=tuple(m.stride),
            padding=padding,
            dilation=tuple(m.dilation),
            groups=m.groups,
            bias=m.bias is not None,
            dtype=w.dtype,
        )
        layer.weight = Parameter(np.ascontiguousarray(w.transpose(2, 3, 1, 0)))
        if m.bias is not None:
            layer.bias = Parameter(_array(m.bias))
        self.layers.append(layer)
        self.channels = m.out_channels

    def _batchnorm(self, leaf: _Leaf) -> BatchNorm:
        m = leaf.module
        bn = BatchNorm(
            m.num_features,
            eps=float(m.eps),
            momentum=None if m.momentum is None else float(m.momentum),
            affine=m.affine,
            track_running_stats=m.track_running_stats,
            dtype=_dtype_of(m),
        )
        if m.affine:
            bn.weight = Parameter(_array(m.weight))
            bn.bias = Parameter(_array(m.bias))
        if m.track_running_stats:
            bn.register_buffer("running_mean", _array(m.running_mean))
            bn.register_buffer("running_var", _array(m.running_var))
            bn.register_buffer("num_batches_tracked", _array(m.num_batches_tracked).astype(np.int64))
        return bn

    def _batchnorm1d(self, leaf: _Leaf) -> None:
        self._settle_flatten()
        if self.layout in (_IMAGE, _COLLAPSED):
            raise leaf.fail("follows an image; BatchNorm1d expects (N, C) features (use BatchNorm2d for images)")
        if self.layout == _SEQUENCE:
            raise leaf.fail("on (N, L, E) sequences normalises torch's axis 1; only (N, C) inputs are supported")
        self.layers.append(self._batchnorm(leaf))

    def _batchnorm2d(self, leaf: _Leaf) -> None:
        self._settle_flatten()
        self._enter_image(leaf)
        self.layers.append(self._batchnorm(leaf))
        self.channels = leaf.module.num_features

    def _layernorm(self, leaf: _Leaf) -> None:
        m = leaf.module
        self._settle_flatten()
        if self.layout in (_IMAGE, _COLLAPSED):
            raise leaf.fail("on an NCHW image normalises layout-dependent axes; only non-image inputs are supported")
        has_bias = m.bias is not None
        layer = LayerNorm(
            tuple(m.normalized_shape),
            eps=float(m.eps),
            elementwise_affine=m.elementwise_affine,
            bias=has_bias,
            dtype=_dtype_of(m),
        )
        if m.elementwise_affine:
            layer.weight = Parameter(_array(m.weight))
            if has_bias:
                layer.bias = Parameter(_array(m.bias))
        self.layers.append(layer)

    def _pool_common(self, leaf: _Leaf) -> tuple[Any, Any, Any]:
        m = leaf.module
        if m.ceil_mode:
            raise leaf.fail("with ceil_mode=True is not supported; expected ceil_mode=False")
        self._settle_flatten()
        self._enter_image(leaf)
        return m.kernel_size, m.stride, m.padding

    def _maxpool(self, leaf: _Leaf) -> None:
        m = leaf.module
        if m.return_indices:
            raise leaf.fail("with return_indices=True is not supported")
        k, s, p = self._pool_common(leaf)
        self.layers.append(MaxPool2d(k, stride=s, padding=p, dilation=m.dilation))

    def _avgpool(self, leaf: _Leaf) -> None:
        m = leaf.module
        if m.divisor_override is not None:
            raise leaf.fail(f"with divisor_override={m.divisor_override} is not supported")
        k, s, p = self._pool_common(leaf)
        self.layers.append(AvgPool2d(k, stride=s, padding=p, count_include_pad=m.count_include_pad))

    def _adaptive_avgpool(self, leaf: _Leaf) -> None:
        size = leaf.module.output_size
        if size not in (1, (1, 1)):
            raise leaf.fail(f"with output_size={size} is not supported; only output_size=1 (global average pool)")
        self._settle_flatten()
        self._enter_image(leaf)
        self.layers.append(GlobalAvgPool())
        self.layout = _COLLAPSED

    def _flatten(self, leaf: _Leaf) -> None:
        m = leaf.module
        if m.start_dim != 1 or m.end_dim != -1:
            raise leaf.fail(f"with start_dim={m.start_dim}, end_dim={m.end_dim}; only start_dim=1, end_dim=-1")
        self._settle_flatten()
        if self.layout == _IMAGE:
            self.flatten_index = len(self.layers)
            self.layout = _FLAT_HWC
        elif self.layout in (_COLLAPSED, _SEQUENCE):
            self.layout = _SAME
        self.layers.append(Flatten())

    def _softmax(self, leaf: _Leaf) -> None:
        self._settle_flatten()
        cls = Softmax if _is_torch_nn(leaf.module, "Softmax") else LogSoftmax
        self.layers.append(cls(axis=self._axis(leaf, leaf.module.dim)))

    def _mha(self, leaf: _Leaf) -> None:
        m = leaf.module
        if not m._qkv_same_embed_dim:
            raise leaf.fail(f"with kdim={m.kdim}, vdim={m.vdim} != embed_dim={m.embed_dim} is not supported")
        if m.bias_k is not None or m.add_zero_attn:
            raise leaf.fail("with add_bias_kv=True or add_zero_attn=True is not supported")
        self._settle_flatten()
        if self.layout not in (_SAME, _SEQUENCE):
            raise leaf.fail("follows an image; attention expects (batch, seq, embed_dim)")
        e = m.embed_dim
        w = _array(m.in_proj_weight)
        has_bias = m.in_proj_bias is not None
        layer = MultiHeadAttention(e, m.num_heads, bias=has_bias, dropout=float(m.dropout), dtype=w.dtype)
        b = _array(m.in_proj_bias) if has_bias else None
        for i, proj in enumerate((layer.q_proj, layer.k_proj, layer.v_proj)):
            proj.weight = Parameter(np.ascontiguousarray(w[i * e : (i + 1) * e].T))
            if b is not None:
                proj.bias = Parameter(b[i * e : (i + 1) * e].copy())
        layer.out_proj.weight = Parameter(np.ascontiguousarray(_array(m.out_proj.weight).T))
        if has_bias:
            layer.out_proj.bias = Parameter(_array(m.out_proj.bias))
        self.layers.append(layer)
        self.layout = _SEQUENCE

    def _embedding(self, leaf: _Leaf) -> None:
        m = leaf.module
        if m.max_norm is not None:
            raise leaf.fail(f"with max_norm={m.max_norm} (renormalises rows on lookup) is not supported")
        self._settle_flatten()
        w = _array(m.weight)
        layer = Embedding(m.num_embeddings, m.embedding_dim, padding_idx=m.padding_idx, dtype=w.dtype)
        layer.weight = Parameter(w)
        self.layers.append(layer)
        self.layout = _SEQUENCE


def _axiom_input_shape(input_shape: Any) -> tuple[Any, ...]:
    """torch's input shape (NCHW for images) as axiom's (NHWC); ``None`` entries stay symbolic."""
    dims = tuple(input_shape)
    if len(dims) == 4:
        n, c, h, w = dims
        return (n, h, w, c)
    return dims


def from_pytorch_module(module: Any, *, input_shape: Any = None) -> Layer:
    """Convert a live ``torch.nn.Module`` (nested ``nn.Sequential`` of supported layers) to axiom.

    Returns a flat :class:`~axiom.nn.containers.Sequential` (or the single converted layer when
    ``module`` is not a container), in the torch module's train/eval mode. Images go in as NHWC
    (``x_nchw.transpose(0, 2, 3, 1)``). ``input_shape`` (optional) is torch's input shape, e.g.
    ``(None, 3, 32, 32)``: the axiom model then checks and reports concrete shapes
    (``(None, 32, 32, 3)``) instead of symbolic ones. Raises :class:`UnsupportedTorchModuleError` naming the
    first layer that cannot be converted, and ``TypeError`` for anything but an ``nn.Module``.

    Example:
        >>> import numpy as np, torch
        >>> net = torch.nn.Sequential(torch.nn.Conv2d(3, 4, 3), torch.nn.ReLU(), torch.nn.Flatten(),
        ...                           torch.nn.Linear(4 * 6 * 6, 2)).eval()
        >>> model = from_pytorch_module(net)
        >>> x = np.random.default_rng(0).standard_normal((1, 3, 8, 8)).astype(np.float32)
        >>> ours = model(x.transpose(0, 2, 3, 1)).numpy()
        >>> bool(np.allclose(ours, net(torch.from_numpy(x)).detach().numpy(), atol=1e-5))
        True
    """
    torch = _torch()
    if not isinstance(module, torch.nn.Module):
        raise TypeError(f"from_pytorch_module expects a torch.nn.Module, got {type(module).__name__}")
    leaves = _leaves(module)
    if not leaves:
        raise ValueError(f"{type(module).__name__} has no layers to convert")
    layers = _Converter(leaves).run()
    shape = None if input_shape is None else _axiom_input_shape(input_shape)
    if len(layers) == 1 and not isinstance(module, torch.nn.Sequential) and shape is None:
        model = layers[0]
    else:
        model = Sequential(*layers, input_shape=shape)
    return model.train(bool(module.training))
