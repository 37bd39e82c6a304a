"""Device-resident compiled models: a model lowered to kernel launches over device arrays.

``compile(model, backend="cuda" | "opencl")`` (or a :class:`~axiom.compiler.coprocessor.Coprocessor`)
builds a :class:`DevicePlan` from the optimized model: the weights are uploaded **once**, when
the plan is built, and every call keeps the activations on the device from layer to layer.
Only the model's input goes up and its output comes down (one upload and one download per
call, counted in :attr:`DevicePlan.uploads` / :attr:`DevicePlan.downloads`).

Lowering, layer by layer (each step reproduces the layer's ``forward`` in eval mode):

- ``Dense`` -> ``gemm`` with the bias and the activation in its epilogue; ``Conv2d`` and
  ``DepthwiseConv2d`` (stride, padding including ``"same"``, dilation, groups) -> ``conv2d``;
- ``BatchNorm`` (running statistics) and ``Affine`` (as batch norm with mean 0, variance 1,
  eps 0) -> ``batchnorm``; ``LayerNorm`` / ``RMSNorm`` -> ``layernorm`` / ``rmsnorm``;
- ``MaxPool2d``, ``AvgPool2d``, ``GlobalAvgPool``; ``Softmax`` / ``LogSoftmax`` (any axis);
  activation layers -> ``activation``;
- ``MultiHeadAttention`` (self-attention; causal; RoPE) -> three ``gemm`` projections,
  ``permute_0213`` into heads, ``rope``, ``attention``, ``permute_0213`` back, ``gemm``;
- ``Embedding``: indices are checked on the host (the layer's own errors), uploaded as int32
  and gathered (``gather_rows``);
- ``Flatten`` / ``Reshape`` are views (no copy); ``Dropout`` is the identity (eval mode);
  ``Permute`` (the NCHW / NHWC moves of imported ONNX / PyTorch models) -> ``permute``;
- containers: ``Sequential`` (a chain), ``Residual`` (``add``), ``Parallel`` / ``Concat``
  (``copy_block`` per branch, any axis); ``UpcastWeights`` (``"mixed"`` precision) is its
  layer with float32 weights.

Any other layer (a user's own ``Layer``, a subclass that overrides ``forward``,
BatchNorm without running statistics, a layer whose kernel is not registered) runs on the CPU
(the ``"auto"`` backend: C if built): the activation is downloaded, the layer runs, its output
is uploaded. Each such layer is recorded in the GPU backend's ``fallbacks`` (key
``"layer <Name>"``) and warned about once (``FallbackWarning``); adjacent CPU layers share one
round trip.

Precision: the device computes in float32 (float64 only for a float64 activation dtype on a
device with float64). Weights stored as float16 / bfloat16 by the precision pass are uploaded
as float32 (exactly: they were rounded once already); activations stay float32 between layers,
so a float16 / bfloat16 compiled model is *at least* as accurate on the device as on the CPU,
where each layer's output is rounded to the storage dtype.

Shapes are computed per call from the input, so one plan serves every batch size. The
intermediate arrays of the last input shape stay allocated and are reused by the next call of
that shape (no allocation per step and call); calls of one plan run one at a time.

Example:
    >>> import numpy as np
    >>> from axiom import Sequential, Dense, relu
    >>> from axiom.compiler import compile
    >>> from axiom.backends.gpu.opencl_runtime import OpenCLRuntime
    >>> x = np.ones((2, 3), np.float32)
    >>> if OpenCLRuntime.first_device_or_none() is not None:
    ...     compiled = compile(Sequential(Dense(3, 4, relu), Dense(4, 2)), backend="opencl")
    ...     plan = compiled.plan
    ...     y = compiled(x)
    ...     print(y.shape, plan.uploads, plan.downloads)
    ... else:
    ...     print((2, 2), 1, 1)
    (2, 2) 1 1
"""

from __future__ import annotations

import math
import threading
from collections.abc import Sequence
from typing import Any

import numpy as np

from axiom.autograd import no_grad
from axiom.backends import KernelBackend, use_backend
from axiom.backends.base import ACTIVATIONS
from axiom.compiler.passes._graph import plain
from axiom.compiler.passes.precision import UpcastWeights
from axiom.nn._args import explicit_padding
from axiom.nn.activations import Activation, ActivationFunction, LogSoftmax, Softmax
from axiom.nn.affine import Affine
from axiom.nn.attention import MultiHeadAttention
from axiom.nn.containers import Parallel, Residual, Sequential
from axiom.nn.conv import Conv2d
from axiom.nn.dense import Dense
from axiom.nn.dropout import Dropout
from axiom.nn.embedding import Embedding
from axiom.nn.layer import Layer
from axiom.nn.normalization import BatchNorm, LayerNorm, RMSNorm
from axiom.nn.pooling import AvgPool2d, GlobalAvgPool, MaxPool2d
from axiom.nn.reshape import Flatten, Permute, Reshape
from axiom.shapes import Shape, is_known
from axiom.tensor import Tensor, float32, float64, is_floating

__all__ = ["ACT_CODES", "DevicePlan"]

#: activation name -> the ``act`` code of the device kernels (index in ACTIVATIONS)
ACT_CODES: dict[str, int] = {name: i for i, name in enumerate(ACTIVATIONS)}

Value = Any  # a host ndarray or a DeviceArray: what flows between steps


def _act(fn: ActivationFunction | None) -> tuple[int, float]:
    return (0, 0.0) if fn is None else (ACT_CODES[fn.kind], float(fn.alpha))


def _one_line(layer: Layer) -> str:
    """``Name(args)`` on one line (composite layers' reprs list their children on several)."""
    return f"{layer.name}({layer.extra_repr()})"


def _known(shape: Shape | None) -> bool:
    return shape is not None and all(is_known(d) for d in shape)


class Step:
    """One lowered layer (or container). ``run(plan, value)`` returns the layer's output value."""

    #: registered launchers this step needs
    kernels: tuple[str, ...] = ()
    #: True for steps that run on the host
    on_cpu = False

    def __init__(self, layer: Layer) -> None:
        self.layer = layer

    def run(self, plan: DevicePlan, v: Value) -> Value:
        raise NotImplementedError

    def leaves(self) -> list[Step]:
        return [self]

    def describe(self) -> str:
        return f"{'+'.join(self.kernels) or 'view'}: {_one_line(self.layer)}"


# -- containers -----------------------------------------------------------------------------------


class ChainStep(Step):
    def __init__(self, layer: Layer, steps: list[Step]) -> None:
        super().__init__(layer)
        self.steps = steps

    def run(self, plan: DevicePlan, v: Value) -> Value:
        for step in self.steps:
            v = step.run(plan, v)
        return v

    def leaves(self) -> list[Step]:
        return [leaf for step in self.steps for leaf in step.leaves()]


class ResidualStep(ChainStep):
    kernels = ("add",)

    def run(self, plan: DevicePlan, v: Value) -> Value:
        y = plan.on_device(super().run(plan, v))
        x = plan.on_device(v)
        out = plan.empty(x.shape, plan.dtype)
        plan.call("add", x, y, out, x.size)
        return out

    def leaves(self) -> list[Step]:
        return [*super().leaves(), self]

    def describe(self) -> str:
        return "add: Residual (x + f(x))"


class ParallelStep(Step):
    kernels = ("copy_block",)

    def __init__(self, layer: Parallel, branches: list[Step]) -> None:
        super().__init__(layer)
        self.branches = branches
        self.axis = layer.axis

    def run(self, plan: DevicePlan, v: Value) -> Value:
        outs = [plan.on_device(b.run(plan, v)) for b in self.branches]
        first = outs[0].shape
        axis = self.axis % len(first) if first else 0
        total = sum(o.shape[axis] for o in outs)
        shape = (*first[:axis], total, *first[axis + 1 :])
        y = plan.empty(shape, plan.dtype)
        outer = math.prod(first[:axis])
        dst_cols = math.prod(shape[axis:])
        offset = 0
        for o in outs:
            cols = math.prod(o.shape[axis:])
            plan.call("copy_block", o, y, outer, cols, dst_cols, offset)
            offset += cols
        return y

    def leaves(self) -> list[Step]:
        return [*(leaf for b in self.branches for leaf in b.leaves()), self]

    def describe(self) -> str:
        return f"copy_block: Parallel of {len(self.branches)} branches (axis {self.axis})"


class CPUStep(Step):
    """Layers with no device lowering: download, run on the CPU backend, upload."""

    on_cpu = True

    def __init__(self, layers: list[Layer], reasons: list[str]) -> None:
        super().__init__(layers[0])
        self.layers = layers
        self.reasons = reasons

    def run(self, plan: DevicePlan, v: Value) -> Value:
        for layer, reason in zip(self.layers, self.reasons):
            plan.record_cpu_layer(layer, reason)
        host = plan.on_host(v)
        if is_floating(host.dtype) and host.dtype != plan.activation_dtype:
            host = host.astype(plan.activation_dtype)  # what the layer gets on the CPU path
        t = Tensor(host)
        with use_backend(plan.cpu_backend), no_grad():
            for layer in self.layers:
                t = layer(t)
        return t.data

    def describe(self) -> str:
        return "CPU: " + ", ".join(_one_line(layer) for layer in self.layers)


# -- leaves -----------------------------------------------------------------------------------------


class ViewStep(Step):
    """Dropout (eval), Flatten, Reshape, identity activations: no kernel, at most a reshaped view."""

    def run(self, plan: DevicePlan, v: Value) -> Value:
        layer = self.layer
        if isinstance(layer, Flatten):
            return v.reshape(v.shape[0], math.prod(v.shape[1:]))
        if isinstance(layer, Reshape):
            return v.reshape(tuple(int(d) for d in layer.output_shape(v.shape)))
        return v

    def describe(self) -> str:
        return f"view: {_one_line(self.layer)}"


class DenseStep(Step):
    kernels = ("gemm",)

    def __init__(self, layer: Dense, plan: DevicePlan) -> None:
        super().__init__(layer)
        self.w = plan.weight(layer.weight.data)
        self.b = None if layer.bias is None else plan.weight(layer.bias.data)
        self.k, self.n = self.w.shape
        self.act, self.alpha = _act(layer.activation)

    def run(self, plan: DevicePlan, v: Value) -> Value:
        x = plan.on_device(v)
        rows = x.size // self.k
        y = plan.empty((*x.shape[:-1], self.n), plan.dtype)
        plan.call("gemm", x, self.w, y, self.b, 1, rows, self.n, self.k, 0, 0, self.act, self.alpha)
        return y


class ConvStep(Step):
    kernels = ("conv2d",)

    def __init__(self, layer: Conv2d, plan: DevicePlan) -> None:
        super().__init__(layer)
        self.w = plan.weight(layer.weight.data)
        self.b = None if layer.bias is None else plan.weight(layer.bias.data)
        self.act, self.alpha = _act(layer.activation)

    def run(self, plan: DevicePlan, v: Value) -> Value:
        layer = self.layer
        x = plan.on_device(v)
        n, h, w, c_in = x.shape
        kh, kw = layer.kernel_size
        sh, sw = layer.stride
        dh, dw = layer.dilation
        (pt, pb), (pl, pr) = explicit_padding(layer.padding, h, w, layer.kernel_size, layer.stride, layer.dilation)
        oh = max(0, (h + pt + pb - dh * (kh - 1) - 1) // sh + 1)
        ow = max(0, (w + pl + pr - dw * (kw - 1) - 1) // sw + 1)
        c_out = self.w.shape[3]
        y = plan.empty((n, oh, ow, c_out), plan.dtype)
        shape18 = (n, h, w, c_in, c_out, kh, kw, oh, ow, sh, sw, pt, pb, pl, pr, dh, dw, layer.groups)
        plan.call("conv2d", shape18, x, self.w, self.b, y, self.act, self.alpha)
        return y


class BatchNormStep(Step):
    """Inference BatchNorm over the last axis (running statistics)."""

    kernels = ("batchnorm",)

    def __init__(self, layer: BatchNorm, plan: DevicePlan) -> None:
        super().__init__(layer)
        self.mean = plan.weight(layer.running_mean.data)
        self.var = plan.weight(layer.running_var.data)
        self.gamma = None if layer.weight is None else plan.weight(layer.weight.data)
        self.beta = None if layer.bias is None else plan.weight(layer.bias.data)
        self.eps = layer.eps

    def run(self, plan: DevicePlan, v: Value) -> Value:
        x = plan.on_device(v)
        c = x.shape[-1]
        y = plan.empty(x.shape, plan.dtype)
        plan.call("batchnorm", x, self.mean, self.var, self.gamma, self.beta, y, x.size // c if c else 0, c, self.eps)
        return y


class AffineStep(Step):
    """``x * scale + shift`` as batch norm with mean 0, variance 1 and eps 0 over the constants' trailing block."""

    kernels = ("batchnorm",)

    def __init__(self, layer: Affine, plan: DevicePlan, shape: Shape | None) -> None:
        super().__init__(layer)
        const = tuple(np.broadcast_shapes(layer.scale.shape, layer.shift.shape))
        while const and const[0] == 1:  # leading 1s broadcast: the block is the trailing axes
            const = const[1:]
        self.rank = len(const)
        self.scale = np.asarray(layer.scale.data).reshape(np.shape(layer.scale.data)[-self.rank :] if self.rank else ())
        self.shift = np.asarray(layer.shift.data).reshape(np.shape(layer.shift.data)[-self.rank :] if self.rank else ())
        self._blocks: dict[tuple[int, ...], tuple[Any, ...]] = {}
        if shape is not None and _known(shape[len(shape) - self.rank :]):
            self._constants(plan, tuple(int(d) for d in shape[len(shape) - self.rank :]))  # upload now

    def _constants(self, plan: DevicePlan, block: tuple[int, ...]) -> tuple[Any, ...]:
        found = self._blocks.get(block)
        if found is None:
            c = math.prod(block)
            scale = np.broadcast_to(self.scale.reshape(self.scale.shape[-len(block) :] if block else ()), block)
            shift = np.broadcast_to(self.shift.reshape(self.shift.shape[-len(block) :] if block else ()), block)
            found = self._blocks[block] = (
                plan.weight(np.zeros(c)),
                plan.weight(np.ones(c)),
                plan.weight(scale.reshape(c)),
                plan.weight(shift.reshape(c)),
            )
        return found

    def run(self, plan: DevicePlan, v: Value) -> Value:
        x = plan.on_device(v)
        block = x.shape[x.ndim - self.rank :] if self.rank else ()
        c = math.prod(block)
        mean, var, gamma, beta = self._constants(plan, block)
        y = plan.empty(x.shape, plan.dtype)
        plan.call("batchnorm", x, mean, var, gamma, beta, y, x.size // c if c else 0, c, 0.0)
        return y


class LayerNormStep(Step):
    kernels = ("layernorm",)

    def __init__(self, layer: LayerNorm, plan: DevicePlan) -> None:
        super().__init__(layer)
        ns = tuple(layer.normalized_shape)
        self.n = math.prod(ns)
        self.gamma = None if layer.weight is None else plan.weight(np.broadcast_to(layer.weight.data, ns).reshape(-1))
        self.beta = None if layer.bias is None else plan.weight(np.broadcast_to(layer.bias.data, ns).reshape(-1))
        self.eps = layer.eps

    def run(self, plan: DevicePlan, v: Value) -> Value:
        x = plan.on_device(v)
        y = plan.empty(x.shape, plan.dtype)
        plan.call("layernorm", x, self.gamma, self.beta, y, x.size // self.n, self.n, self.eps)
        return y


class RMSNormStep(Step):
    kernels = ("rmsnorm",)

    def __init__(self, layer: RMSNorm, plan: DevicePlan) -> None:
        super().__init__(layer)
        ns = tuple(layer.normalized_shape)
        self.n = math.prod(ns)
        self.gamma = None if layer.weight is None else plan.weight(np.broadcast_to(layer.weight.data, ns).reshape(-1))
        # eps=None means finfo(input dtype).eps: the dtype the layer sees on the CPU path
        self.eps = layer.effective_eps(plan.activation_dtype)

    def run(self, plan: DevicePlan, v: Value) -> Value:
        x = plan.on_device(v)
        y = plan.empty(x.shape, plan.dtype)
        plan.call("rmsnorm", x, self.gamma, y, x.size // self.n, self.n, self.eps)
        return y


def _pool_out(size: int, k: int, s: int, p0: int, p1: int, d: int) -> int:
    return max(0, (size + p0 + p1 - d * (k - 1) - 1) // s + 1)


class MaxPoolStep(Step):
    kernels = ("max_pool2d",)

    def run(self, plan: DevicePlan, v: Value) -> Value:
        layer = self.layer
        x = plan.on_device(v)
        n, h, w, c = x.shape
        (kh, kw), (sh, sw), (dh, dw) = layer.kernel_size, layer.stride, layer.dilation
        (pt, pb), (pl, pr) = layer.padding
        y = plan.empty((n, _pool_out(h, kh, sh, pt, pb, dh), _pool_out(w, kw, sw, pl, pr, dw), c), plan.dtype)
        plan.call("max_pool2d", x, y, n, h, w, c, kh, kw, sh, sw, pt, pb, pl, pr, dh, dw)
        return y


class AvgPoolStep(Step):
    kernels = ("avg_pool2d",)

    def run(self, plan: DevicePlan, v: Value) -> Value:
        layer = self.layer
        x = plan.on_device(v)
        n, h, w, c = x.shape
        (kh, kw), (sh, sw) = layer.kernel_size, layer.stride
        (pt, pb), (pl, pr) = layer.padding
        y = plan.empty((n, _pool_out(h, kh, sh, pt, pb, 1), _pool_out(w, kw, sw, pl, pr, 1), c), plan.dtype)
        plan.call("avg_pool2d", x, y, n, h, w, c, kh, kw, sh, sw, pt, pb, pl, pr, int(layer.count_include_pad))
        return y


class GlobalAvgPoolStep(Step):
    kernels = ("global_avg_pool",)

    def run(self, plan: DevicePlan, v: Value) -> Value:
        x = plan.on_device(v)
        n, h, w, c = x.shape
        y = plan.empty((n, c), plan.dtype)
        plan.call("global_avg_pool", x, y, n, h * w, c)
        return y


class SoftmaxStep(Step):
    kernels = ("softmax",)

    def run(self, plan: DevicePlan, v: Value) -> Value:
        x = plan.on_device(v)
        axis = self.layer.axis % x.ndim
        y = plan.empty(x.shape, plan.dtype)
        outer, inner = math.prod(x.shape[:axis]), math.prod(x.shape[axis + 1 :])
        plan.call("softmax", x, y, outer, x.shape[axis], inner, int(isinstance(self.layer, LogSoftmax)))
        return y


class PermuteStep(Step):
    """``Permute``: the per-example axes reordered on the device (e.g. NCHW <-> NHWC of ONNX imports)."""

    kernels = ("permute",)

    def run(self, plan: DevicePlan, v: Value) -> Value:
        x = plan.on_device(v)
        perm = (0, *(1 + d for d in self.layer.dims))
        y = plan.empty(tuple(x.shape[a] for a in perm), plan.dtype)
        plan.call("permute", x, y, x.shape, perm)
        return y


class ActivationStep(Step):
    kernels = ("activation",)

    def run(self, plan: DevicePlan, v: Value) -> Value:
        x = plan.on_device(v)
        act, alpha = _act(self.layer.fn)
        y = plan.empty(x.shape, plan.dtype)
        plan.call("activation", x, y, x.size, act, alpha)
        return y


class AttentionStep(Step):
    """Self-attention: projections, heads, optional RoPE, fused attention, output projection."""

    kernels = ("gemm", "permute_0213", "attention", "rope")

    def __init__(self, layer: MultiHeadAttention, plan: DevicePlan, shape: Shape | None) -> None:
        super().__init__(layer)
        self.proj = [
            (plan.weight(p.weight.data), None if p.bias is None else plan.weight(p.bias.data))
            for p in (layer.q_proj, layer.k_proj, layer.v_proj, layer.out_proj)
        ]
        self.tables: Any = None
        if layer.rope and shape is not None and len(shape) == 3 and is_known(shape[1]):
            # the rope launcher caches a few cos / sin tables per runtime: make this one now, not in the first call
            from axiom.backends.gpu.ops_rope import rope_tables

            positions = np.arange(int(shape[1]), dtype=np.float64)
            self.tables = rope_tables(plan.runtime, plan.dtype, positions, layer.head_dim, layer.rope_base)
            plan.weight_bytes += sum(t.nbytes for t in self.tables)

    def _gemm(self, plan: DevicePlan, x: Any, which: int) -> Any:
        w, b = self.proj[which]
        e = w.shape[0]
        y = plan.empty(x.shape, plan.dtype)
        plan.call("gemm", x, w, y, b, 1, x.size // e, w.shape[1], e, 0, 0, 0, 0.0)
        return y

    def run(self, plan: DevicePlan, v: Value) -> Value:
        layer, dt = self.layer, plan.dtype
        x = plan.on_device(v)
        b, length, e = x.shape
        h, d = layer.num_heads, layer.head_dim
        heads = []
        for which in range(3):
            flat = self._gemm(plan, x, which)  # (b, L, E) = (b, L, H, D)
            split = plan.empty((b, h, length, d), dt)
            plan.call("permute_0213", flat, split, b, length, h, d)
            if layer.rope and which < 2:
                rotated = plan.empty(split.shape, dt)
                positions = np.arange(length, dtype=np.float64)
                plan.call("rope", split, positions, rotated, b * h, length, d, layer.rope_base)
                split = rotated
            heads.append(split)
        out = plan.empty((b, h, length, d), dt)
        scale = 1.0 / math.sqrt(d)
        plan.call("attention", *heads, None, out, b, h, length, length, d, d, scale, int(layer.causal), 0, 0, 0, 0)
        merged = plan.empty((b, length, h, d), dt)
        plan.call("permute_0213", out, merged, b, h, length, d)
        return self._gemm(plan, merged.reshape(b, length, e), 3)

    def describe(self) -> str:
        kernels = "gemm+permute_0213" + ("+rope" if self.layer.rope else "") + "+attention"
        return f"{kernels}: {_one_line(self.layer)}"


class EmbeddingStep(Step):
    kernels = ("gather_rows",)

    def __init__(self, layer: Embedding, plan: DevicePlan) -> None:
        super().__init__(layer)
        self.table = plan.weight(layer.weight.data)

    def run(self, plan: DevicePlan, v: Value) -> Value:
        layer = self.layer
        idx = plan.on_host(v)
        layer.check_indices(idx)  # the layer's own TypeError / ValueError, on the host
        rows, dim = self.table.shape
        dev_idx = plan.upload(np.ascontiguousarray(idx, np.int32), np.int32)
        y = plan.empty((*idx.shape, dim), plan.dtype)
        plan.call("gather_rows", self.table, dev_idx, y, idx.size, rows, dim)
        return y


# -- lowering -------------------------------------------------------------------------------------

#: leaf layer classes with a device step: (class, step factory(layer, plan, input shape))
_LEAVES: tuple[tuple[type[Layer], Any], ...] = (
    (Dense, lambda layer, plan, shape: DenseStep(layer, plan)),
    (Conv2d, lambda layer, plan, shape: ConvStep(layer, plan)),
    (BatchNorm, lambda layer, plan, shape: BatchNormStep(layer, plan)),
    (Affine, lambda layer, plan, shape: AffineStep(layer, plan, shape)),
    (LayerNorm, lambda layer, plan, shape: LayerNormStep(layer, plan)),
    (RMSNorm, lambda layer, plan, shape: RMSNormStep(layer, plan)),
    (MaxPool2d, lambda layer, plan, shape: MaxPoolStep(layer)),
    (AvgPool2d, lambda layer, plan, shape: AvgPoolStep(layer)),
    (GlobalAvgPool, lambda layer, plan, shape: GlobalAvgPoolStep(layer)),
    (Softmax, lambda layer, plan, shape: SoftmaxStep(layer)),
    (LogSoftmax, lambda layer, plan, shape: SoftmaxStep(layer)),
    (MultiHeadAttention, lambda layer, plan, shape: AttentionStep(layer, plan, shape)),
    (Embedding, lambda layer, plan, shape: EmbeddingStep(layer, plan)),
    (Permute, lambda layer, plan, shape: PermuteStep(layer)),
)

#: the kernels each leaf class needs (checked before any weight is uploaded)
_KERNELS: dict[type[Layer], tuple[str, ...]] = {
    Dense: DenseStep.kernels,
    Conv2d: ConvStep.kernels,
    BatchNorm: BatchNormStep.kernels,
    Affine: AffineStep.kernels,
    LayerNorm: LayerNormStep.kernels,
    RMSNorm: RMSNormStep.kernels,
    MaxPool2d: MaxPoolStep.kernels,
    AvgPool2d: AvgPoolStep.kernels,
    GlobalAvgPool: GlobalAvgPoolStep.kernels,
    Softmax: SoftmaxStep.kernels,
    LogSoftmax: SoftmaxStep.kernels,
    MultiHeadAttention: ("gemm", "permute_0213", "attention"),
    Embedding: EmbeddingStep.kernels,
    Permute: PermuteStep.kernels,
}


class DevicePlan:
    """A model lowered onto one GPU backend's device (see the module docstring).

    ``run(x)`` takes a host array (floats in the compiled activation dtype, or integer indices
    for a model that starts with an Embedding) and returns the output as a host float32 array.
    ``steps`` lists the leaf steps; ``weight_bytes`` is what stays resident on the device;
    ``uploads`` / ``downloads`` count the host <-> device copies of activations since the plan
    was built (1 and 1 per call when no layer runs on the CPU). ``compile()`` builds one for a
    GPU backend (``CompiledModel.plan``); ``model`` must be in eval mode and built.

    Example:
        >>> import numpy as np
        >>> from axiom import Sequential, Dense, Softmax
        >>> from axiom.backends.gpu.opencl_runtime import OpenCLRuntime
        >>> if OpenCLRuntime.first_device_or_none() is not None:
        ...     from axiom.backends.gpu.backend import OpenCLBackend
        ...     plan = DevicePlan(Sequential(Dense(4, 3), Softmax()), OpenCLBackend(), ("batch", 4))
        ...     print(plan.describe(), plan.run(np.zeros((2, 4), np.float32)).sum(axis=1).round(6).tolist())
        ... else:
        ...     print(["gemm: Dense(4, 3)", "softmax: Softmax(axis=-1)"], [1.0, 1.0])
        ['gemm: Dense(4, 3)', 'softmax: Softmax(axis=-1)'] [1.0, 1.0]
    """

    def __init__(
        self,
        model: Layer,
        backend: KernelBackend,
        input_shape: Sequence[Any] | None = None,
        activation_dtype: Any = float32,
        cpu_backend: KernelBackend | str = "auto",
    ) -> None:
        from axiom.compiler.backend_choice import choose_backend

        self.backend = backend
        self.runtime = backend.runtime  # type: ignore[attr-defined]
        self.activation_dtype = np.dtype(activation_dtype)
        self.dtype = np.dtype(
            float64 if self.activation_dtype == float64 and self.runtime.supports(float64) else float32
        )
        self._cpu_spec = cpu_backend
        self._cpu: KernelBackend | None = None if isinstance(cpu_backend, str) else cpu_backend
        self._choose = choose_backend
        self.weight_bytes = 0
        self.uploads = 0
        self.downloads = 0
        # intermediate arrays of the last input shape, reused in order by the next call of that shape
        self._arena: list[Any] = []
        self._arena_key: tuple[Any, ...] | None = None
        self._cursor = 0
        self._lock = threading.Lock()  # calls share the arena: one at a time
        from axiom.backends.gpu.ops import call, launchers

        self._call = call
        self._launchers = launchers()
        self.root = self._lower(model, tuple(input_shape) if input_shape is not None else None)
        self.steps: list[Step] = self.root.leaves()

    # -- plumbing -------------------------------------------------------------------------------
    @property
    def cpu_backend(self) -> KernelBackend:
        """The CPU backend of layers without a device lowering (made on first use)."""
        if self._cpu is None:
            self._cpu = self._choose(self._cpu_spec)
        return self._cpu

    @property
    def device_name(self) -> str:
        return self.runtime.device_name

    def weight(self, host: Any) -> Any:
        """Upload a constant once (at build time), in the plan's dtype."""
        arr = np.asarray(host)
        dev = self.runtime.to_device(arr.astype(self.dtype) if arr.dtype != self.dtype else arr)
        self.weight_bytes += dev.nbytes
        return dev

    def empty(self, shape: Sequence[int], dtype: Any) -> Any:
        """An output array for the current step: the buffer the same step got in the last call of this input shape.

        Control flow depends on shapes only, so the n-th ``empty`` of a call always asks for the same
        array: reusing it saves an allocation per step and call (and, on CUDA, the device-wide
        synchronisation of freeing one).
        """
        shape = tuple(int(d) for d in shape)
        dt = np.dtype(dtype)
        i = self._cursor
        self._cursor += 1
        if i < len(self._arena):
            found = self._arena[i]
            if found.shape == shape and found.dtype == dt:
                return found
            self._arena[i] = found = self.runtime.empty(shape, dt)
            return found
        found = self.runtime.empty(shape, dt)
        self._arena.append(found)
        return found

    def upload(self, host: np.ndarray, dtype: Any = None) -> Any:
        self.uploads += 1
        return self.runtime.to_device(host, self.dtype if dtype is None else dtype)

    def on_device(self, v: Value) -> Any:
        return self.upload(np.asarray(v)) if isinstance(v, np.ndarray) else v

    def on_host(self, v: Value) -> np.ndarray:
        if isinstance(v, np.ndarray):
            return v
        self.downloads += 1
        return self.runtime.to_host(v)

    def call(self, name: str, *args: Any) -> None:
        self._call(self.runtime, name, self.dtype, *args)

    def record_cpu_layer(self, layer: Layer, reason: str) -> None:
        if f"layer {layer.name}" not in getattr(self.backend, "fallbacks", {}):
            self.backend.record_fallback(  # type: ignore[attr-defined]
                f"layer {layer.name}",
                f"{_one_line(layer)} {reason}: ran on the CPU ({self.cpu_backend.name} backend), its input downloaded "
                "and its output uploaded",
            )

    # -- lowering -------------------------------------------------------------------------------
    def _missing(self, kernels: Sequence[str]) -> list[str]:
        return [k for k in kernels if k not in self._launchers]

    def _cpu_reason(self, layer: Layer) -> str | None:
        """Why ``layer`` (a leaf) has no device step, or None when it has one."""
        for cls, kernels in _KERNELS.items():
            if isinstance(layer, cls):
                if not plain(layer, cls) or (cls is MultiHeadAttention and type(layer)._attend is not cls._attend):
                    return f"overrides {cls.__name__}.forward"
                if cls is BatchNorm and layer.running_mean is None:  # type: ignore[attr-defined]
                    return "normalises with batch statistics (no running statistics)"
                needed = list(kernels)
                if cls is MultiHeadAttention and layer.rope:  # type: ignore[attr-defined]
                    needed.append("rope")
                missing = self._missing(needed)
                return f"needs the device kernels {', '.join(missing)} (not registered)" if missing else None
        if plain(layer, Activation):
            missing = self._missing(ActivationStep.kernels)
            return None if not missing or layer.fn.kind == "identity" else "needs the device kernel activation"
        if plain(layer, Dropout) or plain(layer, Flatten) or plain(layer, Reshape):
            return None
        return "has no device lowering"

    def _lower(self, layer: Layer, shape: Shape | None) -> Step:
        if plain(layer, Sequential) and not layer.check_finite:
            return ChainStep(layer, self._chain(layer.layers, shape))
        if plain(layer, Residual) and not self._missing(ResidualStep.kernels):
            return ResidualStep(layer, self._chain(layer.layers, shape))
        if plain(layer, Parallel) and not self._missing(ParallelStep.kernels):
            return ParallelStep(layer, [self._lower(b, shape) for b in layer.branches])
        if plain(layer, UpcastWeights):
            return self._lower(layer.layer, shape)  # weights are uploaded as float32 anyway
        if plain(layer, Sequential):
            reason = "checks every layer's output for NaN/Inf on the host (check_finite=True)"
        elif isinstance(layer, Sequential | Residual | Parallel):
            base = next(cls for cls in (Sequential, Residual, Parallel) if isinstance(layer, cls))
            reason = f"overrides {base.__name__}.forward (e.g. an @axiom model's ensure() checks)"
        else:
            reason = self._cpu_reason(layer)
        if reason is not None:
            return CPUStep([layer], [reason])
        if plain(layer, Dropout) or plain(layer, Flatten) or plain(layer, Reshape):
            return ViewStep(layer)
        if plain(layer, Activation):
            return ViewStep(layer) if layer.fn.kind == "identity" else ActivationStep(layer)
        for cls, make in _LEAVES:
            if isinstance(layer, cls):
                return make(layer, self, shape)
        raise AssertionError(f"no device step for {layer!r}")  # _cpu_reason said there is one

    def _chain(self, layers: Sequence[Layer], shape: Shape | None) -> list[Step]:
        steps: list[Step] = []
        for layer in layers:
            step = self._lower(layer, shape)
            if isinstance(step, CPUStep) and steps and isinstance(steps[-1], CPUStep):
                steps[-1].layers.extend(step.layers)  # one round trip for adjacent CPU layers
                steps[-1].reasons.extend(step.reasons)
            else:
                steps.append(step)
            try:
                shape = None if shape is None else tuple(layer.output_shape(shape))
            except ValueError:
                shape = None
        return steps

    # -- running --------------------------------------------------------------------------------
    def run(self, x: np.ndarray) -> np.ndarray:
        """The model's output for host input ``x`` (one upload, the kernels, one download)."""
        host = np.asarray(x)
        first = self.steps[0] if self.steps else None
        takes_host = first is None or first.on_cpu or isinstance(first, EmbeddingStep)
        with self._lock:
            key = (host.shape, host.dtype.str)
            if key != self._arena_key:
                self._arena, self._arena_key = [], key  # another shape: the old buffers go
            self._cursor = 0
            v = self.root.run(self, host if takes_host else self.upload(host))
            out = self.on_host(v)
        return out if out.dtype == float32 else out.astype(float32)

    @property
    def cpu_steps(self) -> list[Step]:
        """The steps that run on the CPU."""
        return [s for s in self.steps if s.on_cpu]

    def describe(self) -> list[str]:
        """One line per leaf step."""
        return [step.describe() for step in self.steps]

    def __repr__(self) -> str:
        return (
            f"DevicePlan({self.device_name!r}, {len(self.steps)} steps, {len(self.cpu_steps)} on the CPU, "
            f"{self.weight_bytes:,} bytes of weights)"
        )
