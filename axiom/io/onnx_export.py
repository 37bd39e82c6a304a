"""Export axiom models to ONNX: :func:`to_onnx` (opset 17 by default, 18-20 on request).

The exported graph takes the input in axiom's own layout (batch first, NHWC for images) under
``input_name`` and returns ``output_name``; the batch axis is the symbolic dim ``"batch"``
unless ``dynamic_batch=False``. Convolutions, pooling and BatchNorm run channels first inside the
graph: the exporter inserts ``Transpose`` nodes only where the layout has to change. Parameters
become initializers named after their state-dict keys (``"0.weight"``). The model is exported
with its **inference** behaviour (Dropout is an inference ``Dropout`` node, BatchNorm uses its
running statistics), like ``torch.onnx.export``'s default. Every export passes
``onnx.checker.check_model(full_check=True)`` before it is written.

A layer without an ONNX form raises :class:`UnsupportedLayerError` naming every such layer by
type and position (its dotted state-dict prefix, ``"2.1"``); nothing is dropped silently.

Example:
    >>> import os, tempfile
    >>> import numpy as np
    >>> import onnxruntime as ort
    >>> from axiom import Sequential, Dense, Softmax, relu
    >>> model = Sequential(Dense(4, 8, relu), Dense(8, 3), Softmax())
    >>> path = os.path.join(tempfile.mkdtemp(), "mlp.onnx")
    >>> proto = to_onnx(model, path, input_shape=(None, 4))
    >>> [n.op_type for n in proto.graph.node]
    ['Gemm', 'Relu', 'Gemm', 'Softmax']
    >>> sess = ort.InferenceSession(path, providers=["CPUExecutionProvider"])
    >>> x = np.random.default_rng(0).normal(size=(5, 4)).astype(np.float32)
    >>> bool(np.allclose(sess.run(["output"], {"input": x})[0], model(x).numpy(), atol=1e-6))
    True
"""

from __future__ import annotations

import os
from collections.abc import Iterator, Sequence
from typing import TYPE_CHECKING, Any

import numpy as np

from axiom.io._onnx_graph import OnnxGraph, OnnxValue
from axiom.io._onnx_layers import EMITTERS, LayerExportError, emit_layer, find_emitter
from axiom.io._onnx_spec import METADATA_KEY, SpecError, model_spec
from axiom.nn.containers import Parallel, Residual, Sequential
from axiom.nn.layer import Layer
from axiom.shapes import BATCH, Dim, ShapeError, format_shape, is_known

if TYPE_CHECKING:
    import onnx

__all__ = ["DEFAULT_OPSET", "SUPPORTED_OPSETS", "UnsupportedLayerError", "to_onnx"]

DEFAULT_OPSET = 17
SUPPORTED_OPSETS = (17, 18, 19, 20)
_ELEM_TYPES = {np.dtype(np.float32): 1, np.dtype(np.float64): 11, np.dtype(np.int64): 7, np.dtype(np.int32): 6}


class UnsupportedLayerError(ValueError):
    """Layers that :func:`to_onnx` cannot export, each named by type and position.

    ``layers`` lists ``(position, type name, why)``; the position is the layer's dotted
    state-dict prefix (``"2.1"`` is layer 1 inside layer 2; ``""`` is the model itself).

    Example:
        >>> err = UnsupportedLayerError([("1", "Lambda", "no ONNX mapping for Lambda")])
        >>> print(err)
        to_onnx: cannot export layer '1' (Lambda): no ONNX mapping for Lambda
        >>> err.layers[0][1]
        'Lambda'
    """

    def __init__(self, layers: Sequence[tuple[str, str, str]]) -> None:
        self.layers = list(layers)
        parts = [f"layer {pos!r} ({name}): {why}" if pos else f"the model ({name}): {why}" for pos, name, why in layers]
        head = "to_onnx: cannot export "
        super().__init__(head + parts[0] if len(parts) == 1 else head + f"{len(parts)} layers: " + "; ".join(parts))


def _walk(layer: Layer, prefix: str) -> Iterator[tuple[str, Layer]]:
    """Every non-container layer with its dotted position."""
    if isinstance(layer, Sequential | Residual | Parallel):
        for name, child in layer.named_children():
            yield from _walk(child, f"{prefix}.{name}" if prefix else name)
    else:
        yield prefix, layer


def _why_unsupported(layer: Layer) -> str:
    for cls in type(layer).__mro__[1:]:
        if cls in EMITTERS:
            return f"{layer.name} overrides forward() of {cls.__name__}, so the exporter does not know what it computes"
    return f"no ONNX mapping for {layer.name}"


def _check_supported(model: Layer) -> None:
    missing = [(pos, layer.name, _why_unsupported(layer)) for pos, layer in _walk(model, "") if not find_emitter(layer)]
    if missing:
        supported = "Dense, Conv2d, DepthwiseConv2d, BatchNorm, LayerNorm, RMSNorm, MaxPool2d, AvgPool2d, "
        supported += "GlobalAvgPool, Flatten, Reshape, Permute, Dropout, MultiHeadAttention, Embedding, Affine, "
        supported += "activations, Softmax, LogSoftmax, Sequential, Residual, Parallel"
        raise UnsupportedLayerError([(p, n, f"{why} (exportable: {supported})") for p, n, why in missing])


def _model_dtype(model: Layer) -> np.dtype:
    dtypes = {np.dtype(t.dtype) for _, t in model.named_parameters()}
    dtypes |= {np.dtype(t.dtype) for _, t in model.named_buffers() if t.dtype.kind == "f" or t.dtype.name == "bfloat16"}
    if not dtypes:
        dtypes = {np.dtype(layer._dtype) for layer in model.modules()}
    if len(dtypes) > 1:
        names = ", ".join(sorted(d.name for d in dtypes))
        raise ValueError(f"to_onnx: the model mixes parameter dtypes ({names}); call model.to('float32') first")
    (dtype,) = dtypes
    if dtype not in (np.dtype(np.float32), np.dtype(np.float64)):
        raise ValueError(
            f"to_onnx: exports float32 and float64 models; this model's parameters are {dtype.name} "
            "(call model.to('float32') first)"
        )
    return dtype


def _input_shape(model: Layer, input_shape: Sequence[Dim | None] | None, dynamic_batch: bool) -> tuple[Dim, ...]:
    shape: list[Any] = list(input_shape) if input_shape is not None else list(model.default_input_shape())
    if len(shape) < 1:
        raise ValueError("to_onnx: input_shape needs at least the batch axis, e.g. (None, 784)")
    batch = shape[0]
    if dynamic_batch:
        shape[0] = BATCH
    elif not (is_known(batch) and batch > 0):
        raise ValueError(f"to_onnx: dynamic_batch=False needs a fixed batch size as input_shape[0], got {batch!r}")
    for i, d in enumerate(shape[1:], start=1):
        if not (is_known(d) and d > 0):
            raise ValueError(
                f"to_onnx: input_shape {format_shape(tuple(shape))} has axis {i} = {d!r}; every axis but the batch "
                "axis must be a positive int (pass input_shape=(None, ...) with the example's sizes)"
            )
    return tuple(shape)


class _Exporter:
    def __init__(self, graph: OnnxGraph) -> None:
        self.g = graph

    def emit(self, layer: Layer, v: OnnxValue, prefix: str) -> OnnxValue:
        if isinstance(layer, Sequential):
            for name, child in layer.named_children():
                v = self.emit(child, v, f"{prefix}.{name}" if prefix else name)
            return v
        if isinstance(layer, Residual):
            y = v
            for name, child in layer.named_children():
                y = self.emit(child, y, f"{prefix}.{name}" if prefix else name)
            y = self.g.to_layout(y, v.perm, prefix or "residual")
            return v.with_(self.g.node("Add", [v.name, y.name], f"{prefix}.add" if prefix else "residual.add"))
        if isinstance(layer, Parallel):
            outs = []
            for name, child in layer.named_children():
                outs.append(self.g.logical(self.emit(child, v, f"{prefix}.{name}" if prefix else name)))
            shape = layer.output_shape(v.shape)
            name = self.g.node(
                "Concat", [o.name for o in outs], f"{prefix}.concat" if prefix else "concat", axis=layer.axis
            )
            return OnnxValue(name, shape, tuple(range(len(shape))))
        try:
            return emit_layer(self.g, layer, v, prefix)
        except LayerExportError as err:
            raise UnsupportedLayerError([(prefix, layer.name, str(err))]) from None


def _value_info(name: str, elem_type: int, shape: Sequence[Dim]) -> onnx.ValueInfoProto:
    from onnx import helper

    return helper.make_tensor_value_info(name, elem_type, [d if is_known(d) else str(d) for d in shape])


def to_onnx(
    model: Layer,
    path: str | os.PathLike[str] | None = None,
    input_shape: Sequence[Dim | None] | None = None,
    *,
    opset: int = DEFAULT_OPSET,
    input_name: str = "input",
    output_name: str = "output",
    dynamic_batch: bool = True,
    input_dtype: Any = None,
    graph_name: str = "axiom",
) -> onnx.ModelProto:
    """Export ``model`` (with its inference behaviour) as an ONNX model; write it to ``path`` if given.

    ``input_shape`` is the full input shape, batch axis first (``(None, 28, 28, 1)``); every
    other axis must be a fixed size. Left out, the model's own input shape is used
    (``Sequential(..., input_shape=...)`` or the first layer's, e.g. ``Dense(784, ...)``).
    ``opset`` is 17 (default) to 20. ``dynamic_batch=True`` (default) names the batch axis
    ``"batch"`` in the input and the output; ``False`` fixes it to ``input_shape[0]``.
    ``input_dtype`` is the model's dtype (float32 or float64) unless the first layer is an
    ``Embedding`` (then int64, or int32 if asked). Returns the ``onnx.ModelProto``, which has
    passed ``onnx.checker.check_model(full_check=True)``.

    Raises :class:`UnsupportedLayerError` naming the layers (type and position) that have no ONNX
    form, ``ValueError`` for a bad opset, shape, name or dtype, and
    :class:`~axiom.shapes.ShapeError` when ``input_shape`` does not fit the model.

    Example:
        >>> import numpy as np
        >>> from axiom import Sequential, Conv2d, MaxPool2d, Flatten, Dense, relu
        >>> cnn = Sequential(Conv2d(1, 4, 3, padding="same", activation=relu), MaxPool2d(2), Flatten(), Dense(64, 10))
        >>> proto = to_onnx(cnn, input_shape=(None, 8, 8, 1))
        >>> [n.op_type for n in proto.graph.node]
        ['Transpose', 'Conv', 'Relu', 'MaxPool', 'Transpose', 'Flatten', 'Gemm']
        >>> [d.dim_param or d.dim_value for d in proto.graph.input[0].type.tensor_type.shape.dim]
        ['batch', 8, 8, 1]
        >>> from axiom import Layer
        >>> class Twice(Layer):
        ...     def forward(self, x):
        ...         return x * 2
        >>> try:
        ...     to_onnx(Sequential(Dense(4, 4), Twice()), input_shape=(None, 4))
        ... except UnsupportedLayerError as err:
        ...     print(str(err).split(" (exportable")[0])
        to_onnx: cannot export layer '1' (Twice): no ONNX mapping for Twice
    """
    import onnx
    from onnx import helper

    if not isinstance(model, Layer):
        raise TypeError(f"to_onnx: expects an axiom Layer or Sequential, got {type(model).__name__}")
    if isinstance(opset, bool) or opset not in SUPPORTED_OPSETS:
        raise ValueError(f"to_onnx: opset must be one of {list(SUPPORTED_OPSETS)}, got {opset!r}")
    for what, value in (("input_name", input_name), ("output_name", output_name)):
        if not isinstance(value, str) or not value:
            raise ValueError(f"to_onnx: {what} must be a non-empty string, got {value!r}")
    if input_name == output_name:
        raise ValueError(f"to_onnx: input_name and output_name must differ, both are {input_name!r}")
    _check_supported(model)
    model._check_built()
    dtype = _model_dtype(model)
    shape = _input_shape(model, input_shape, dynamic_batch)
    out_shape = model.output_shape(shape)  # ShapeError naming the layer if input_shape does not fit
    if model.accepts_integers:
        in_dtype = np.dtype(np.int64 if input_dtype is None else input_dtype)
        if in_dtype not in (np.dtype(np.int64), np.dtype(np.int32)):
            raise ValueError(f"to_onnx: an Embedding input must be int64 or int32, got {in_dtype.name}")
    else:
        in_dtype = dtype if input_dtype is None else np.dtype(input_dtype)
        if in_dtype != dtype:
            raise ValueError(f"to_onnx: input_dtype {in_dtype.name} differs from the model's dtype {dtype.name}")

    graph = OnnxGraph(dtype, opset)
    graph.unique(input_name)
    graph.unique(output_name)
    x = OnnxValue(input_name, shape, tuple(range(len(shape))))
    y = graph.logical(_Exporter(graph).emit(model, x, ""))
    if tuple(y.shape) != tuple(out_shape):  # pragma: no cover - an exporter bug
        raise ShapeError(model.name, format_shape(out_shape), y.shape, "to_onnx: internal shape mismatch")
    _name_output(graph, y.name, output_name)

    onnx_graph = helper.make_graph(
        graph.nodes,
        graph_name,
        [_value_info(input_name, _ELEM_TYPES[in_dtype], shape)],
        [_value_info(output_name, _ELEM_TYPES[dtype], out_shape)],
        graph.initializers,
    )
    opsets = [helper.make_opsetid("", opset)]
    proto = helper.make_model(
        onnx_graph, opset_imports=opsets, producer_name="axiom", ir_version=helper.find_min_ir_version_for(opsets)
    )
    _tag_layers(proto, model)
    onnx.checker.check_model(proto, full_check=True)
    if path is not None:
        onnx.save(proto, os.fspath(path))
    return proto


def _tag_layers(proto: onnx.ModelProto, model: Layer) -> None:
    """Store the layer tree (no weights) so that ``from_onnx`` can rebuild the exact layers."""
    import json

    from onnx import helper

    try:
        spec = model_spec(model)
    except SpecError:  # pragma: no cover - every exportable layer has a record
        return
    helper.set_model_props(proto, {METADATA_KEY: json.dumps(spec, sort_keys=True, separators=(",", ":"))})


def _name_output(graph: OnnxGraph, current: str, output_name: str) -> None:
    """Give the final tensor the output's name (an Identity when it is the graph input itself)."""
    producer = next((n for n in graph.nodes if current in n.output), None)
    if producer is None:  # pragma: no cover - every layer emits at least one node
        graph.nodes.append(_identity(current, output_name))
        return
    for node in graph.nodes:
        for i, name in enumerate(node.input):
            if name == current:
                node.input[i] = output_name
    producer.output[list(producer.output).index(current)] = output_name


def _identity(src: str, dst: str) -> onnx.NodeProto:
    from onnx import helper

    return helper.make_node("Identity", [src], [dst], name=f"{dst}/Identity")
