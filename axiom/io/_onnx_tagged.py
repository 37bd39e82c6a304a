"""Rebuild the exact axiom layers of a model that :func:`axiom.io.to_onnx` wrote (see ``_onnx_spec``).

:func:`rebuild_tagged` reads the layer record from ``metadata_props``, builds the layers, loads
their weights from the graph's initializers (named after the state-dict keys) and exports the
result again: only when that export equals the file's graph node for node and weight for
weight is the rebuilt model returned, so the record cannot make the import compute anything but
what the file computes. Otherwise (no record, an edited graph) it returns None and ``from_onnx``
imports the graph operator by operator.

Example:
    >>> from axiom import Sequential, Dense, RMSNorm
    >>> from axiom.io import to_onnx
    >>> proto = to_onnx(Sequential(Dense(4, 3), RMSNorm(3)), input_shape=(None, 4))
    >>> rebuilt = rebuild_tagged(proto)
    >>> [type(layer).__name__ for layer in rebuilt[0]]
    ['Dense', 'RMSNorm']
    >>> proto.graph.node[-1].op_type = "Add"     # an edited graph no longer matches its record
    >>> rebuild_tagged(proto) is None
    True
"""

from __future__ import annotations

import json
from typing import TYPE_CHECKING, Any

import numpy as np

from axiom.io._onnx_spec import METADATA_KEY, build_model
from axiom.nn.containers import Sequential
from axiom.nn.conv import Conv2d
from axiom.nn.layer import Layer
from axiom.shapes import normalize_shape

if TYPE_CHECKING:
    import onnx

__all__ = ["rebuild_tagged"]

_DTYPES = {1: np.dtype(np.float32), 11: np.dtype(np.float64), 7: np.dtype(np.int64), 6: np.dtype(np.int32)}


def _conv_keys(layer: Layer, prefix: str = "") -> set[str]:
    if isinstance(layer, Conv2d):
        return {f"{prefix}weight"}
    return {k for name, child in layer.named_children() for k in _conv_keys(child, f"{prefix}{name}.")}


def _load_weights(model: Layer, arrays: dict[str, np.ndarray]) -> bool:
    state = model.state_dict()
    convs = _conv_keys(model)
    new = {}
    for key, current in state.items():
        if key not in arrays:
            new[key] = current  # not part of the exported computation (e.g. a batch counter)
            continue
        value = arrays[key]
        if key in convs and value.ndim == 4:
            value = value.transpose(2, 3, 1, 0)  # OIHW -> (kH, kW, C_in/g, C_out)
        if value.shape != current.shape:
            return False
        new[key] = value
    model.load_state_dict(new)
    return True


def rebuild_tagged(proto: onnx.ModelProto) -> tuple[Layer, dict[str, Any]] | None:
    """``(model, export settings)`` rebuilt from ``to_onnx``'s layer record, or None (see the module doc).

    Example:
        >>> from axiom import Sequential, Dense
        >>> from axiom.io import to_onnx
        >>> model, settings = rebuild_tagged(to_onnx(Sequential(Dense(2, 2)), input_shape=(None, 2), opset=18))
        >>> settings["opset"], settings["input_shape"]
        (18, ('batch', 2))
    """
    from onnx import numpy_helper

    from axiom.io.onnx_export import to_onnx

    props = {p.key: p.value for p in proto.metadata_props}
    if METADATA_KEY not in props or proto.producer_name != "axiom":
        return None
    graph = proto.graph
    if len(graph.input) != 1 or len(graph.output) != 1:
        return None
    inp = graph.input[0]
    tensor_type = inp.type.tensor_type
    if tensor_type.elem_type not in _DTYPES:
        return None
    dims: list[Any] = [d.dim_value if d.HasField("dim_value") else d.dim_param for d in tensor_type.shape.dim]
    if not dims or any(not isinstance(d, int) or d <= 0 for d in dims[1:]):
        return None
    dynamic = isinstance(dims[0], str)
    opsets = [o.version for o in proto.opset_import if o.domain in ("", "ai.onnx")]
    try:
        model = build_model(json.loads(props[METADATA_KEY]))
        arrays = {t.name: numpy_helper.to_array(t) for t in graph.initializer}
        floats = [a.dtype for a in arrays.values() if a.dtype.kind == "f"]
        if floats and floats[0] == np.float64:
            model = model.to("float64")
        settings = {
            "opset": int(opsets[0]) if opsets else 0,
            "input_name": inp.name,
            "output_name": graph.output[0].name,
            "dynamic_batch": dynamic,
            "input_dtype": _DTYPES[tensor_type.elem_type] if model.accepts_integers else None,
            "graph_name": graph.name,
        }
        shape = (None if dynamic else dims[0], *dims[1:])
        model.output_shape(("batch", *dims[1:]))  # builds lazy layers
        if not _load_weights(model, arrays):
            return None
        again = to_onnx(model, None, shape, **settings)
    except Exception:  # noqa: BLE001 - any record the exporter would not write: import the graph as is
        return None
    if again.graph.SerializeToString() != graph.SerializeToString():
        return None
    settings["input_shape"] = ("batch" if dynamic else dims[0], *dims[1:])
    return model, settings


def as_sequential(model: Layer, input_shape: tuple[Any, ...]) -> Sequential:
    """``model`` as a ``Sequential`` taking ``input_shape`` (itself when it already is one).

    Example:
        >>> from axiom import Dense
        >>> as_sequential(Dense(2, 3), ("batch", 2)).input_shape
        ('batch', 2)
    """
    if isinstance(model, Sequential) and type(model) is Sequential:
        model.input_shape = normalize_shape(input_shape)
        return model
    return Sequential(model, input_shape=input_shape)
