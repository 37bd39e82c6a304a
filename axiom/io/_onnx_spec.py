"""The ``axiom.onnx.layers.v1`` record :func:`axiom.io.to_onnx` stores with a model, and its rebuild.

``to_onnx`` decomposes layers ONNX has no operator for (RMSNorm, MultiHeadAttention, GELU below
opset 20, ...) into several nodes and writes graphs that branch (Residual, Parallel). So that
``from_onnx`` can give back the exact axiom layers, the exporter also stores the layer tree
(types and hyper-parameters, no weights) as JSON in the model's ``metadata_props`` under
:data:`METADATA_KEY`. :func:`build_model` rebuilds the tree; the weights are then read from the
graph's initializers, and ``from_onnx`` accepts the rebuilt model only if exporting it again
gives the very same graph (so the record can never make the import differ from the file).

Example:
    >>> from axiom import Sequential, Dense, RMSNorm, relu
    >>> spec = model_spec(Sequential(Dense(4, 3, relu), RMSNorm(3)))
    >>> spec["layers"][0]
    {'type': 'Dense', 'in_features': 4, 'out_features': 3, 'bias': True, 'activation': ['relu', 0.0]}
    >>> build_model(spec)
    Sequential(
      (0): Dense(4, 3, relu)
      (1): RMSNorm((3,), eps=None, elementwise_affine=True)
    )
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from axiom import nn
from axiom.nn.activations import Activation, ActivationFunction, LogSoftmax, Softmax
from axiom.nn.layer import Layer
from axiom.shapes import is_known

__all__ = ["FORMAT", "METADATA_KEY", "SpecError", "build_model", "model_spec"]

FORMAT = "axiom.onnx.layers.v1"
METADATA_KEY = "axiom.layers"


class SpecError(ValueError):
    """A layer record that is malformed or names a layer type this version cannot rebuild."""


def _fn(fn: ActivationFunction | None) -> list[Any] | None:
    return None if fn is None else [fn.kind, fn.alpha]


def _act(value: Any) -> ActivationFunction | None:
    return None if value is None else ActivationFunction(str(value[0]), float(value[1]))


def _tuples(value: Any) -> Any:
    return tuple(_tuples(v) for v in value) if isinstance(value, list) else value


def _lists(value: Any) -> Any:
    return [_lists(v) for v in value] if isinstance(value, tuple | list) else value


def _spec_of(layer: Layer) -> dict[str, Any]:
    """Constructor arguments of one layer (children nested), JSON-ready."""
    t = type(layer).__name__
    if isinstance(layer, nn.Sequential):
        shape = [int(d) if is_known(d) else None for d in layer.input_shape]
        return {"type": "Sequential", "layers": [_spec_of(c) for c in layer.layers], "input_shape": shape}
    if isinstance(layer, nn.Residual):
        return {"type": "Residual", "layers": [_spec_of(c) for c in layer.layers]}
    if isinstance(layer, nn.Parallel):
        return {"type": "Parallel", "branches": [_spec_of(c) for c in layer.branches], "axis": layer.axis}
    if isinstance(layer, nn.Dense):
        a = {"in_features": layer.in_features, "out_features": layer.out_features, "bias": layer.bias is not None}
        return {"type": "Dense", **a, "activation": _fn(layer.activation)}
    if isinstance(layer, nn.Conv2d):
        return {
            "type": "Conv2d",
            "in_channels": layer.in_channels,
            "out_channels": layer.out_channels,
            "kernel_size": list(layer.kernel_size),
            "stride": list(layer.stride),
            "padding": _lists(layer.padding),
            "dilation": list(layer.dilation),
            "groups": layer.groups,
            "bias": layer.bias is not None,
            "activation": _fn(layer.activation),
        }
    if isinstance(layer, nn.MaxPool2d | nn.AvgPool2d):
        (ph, _), (pw, _) = layer.padding
        a = {"kernel_size": list(layer.kernel_size), "stride": list(layer.stride), "padding": [ph, pw]}
        if isinstance(layer, nn.MaxPool2d):
            return {"type": "MaxPool2d", **a, "dilation": list(layer.dilation)}
        return {"type": "AvgPool2d", **a, "count_include_pad": layer.count_include_pad}
    if isinstance(layer, nn.BatchNorm):
        return {
            "type": "BatchNorm",
            "num_features": layer.num_features,
            "eps": layer.eps,
            "affine": layer.affine,
            "track_running_stats": layer.track_running_stats,
        }
    if isinstance(layer, nn.LayerNorm):
        ns = _lists(layer.normalized_shape)
        a = {"normalized_shape": ns, "eps": layer.eps, "elementwise_affine": layer.elementwise_affine}
        return {"type": "LayerNorm", **a, "bias": layer.bias is not None}
    if isinstance(layer, nn.RMSNorm):
        ns = _lists(layer.normalized_shape)
        return {
            "type": "RMSNorm",
            "normalized_shape": ns,
            "eps": layer.eps,
            "elementwise_affine": layer.weight is not None,
        }
    if isinstance(layer, nn.MultiHeadAttention):
        return {
            "type": "MultiHeadAttention",
            "embed_dim": layer.embed_dim,
            "num_heads": layer.num_heads,
            "bias": layer.q_proj.bias is not None,
            "causal": layer.causal,
            "rope": layer.rope,
            "rope_base": layer.rope_base,
            "dropout": layer.dropout,
        }
    if isinstance(layer, nn.Embedding):
        a = {"num_embeddings": layer.num_embeddings, "embedding_dim": layer.embedding_dim}
        return {"type": "Embedding", **a, "padding_idx": layer.padding_idx}
    if isinstance(layer, Activation):
        return {"type": "Activation", "fn": _fn(layer.fn)}
    if isinstance(layer, Softmax | LogSoftmax):
        return {"type": "LogSoftmax" if isinstance(layer, LogSoftmax) else "Softmax", "axis": layer.axis}
    if isinstance(layer, nn.Reshape):
        return {"type": "Reshape", "target_shape": list(layer.target_shape)}
    if isinstance(layer, nn.Permute):
        return {"type": "Permute", "dims": list(layer.dims)}
    if isinstance(layer, nn.Dropout):
        return {"type": "Dropout", "p": layer.p}
    if isinstance(layer, nn.Affine):
        return {"type": "Affine", "scale_shape": list(layer.scale.shape), "shift_shape": list(layer.shift.shape)}
    if isinstance(layer, nn.Flatten | nn.GlobalAvgPool):
        return {"type": "Flatten" if isinstance(layer, nn.Flatten) else "GlobalAvgPool"}
    raise SpecError(f"no layer record for {t}")


def model_spec(model: Layer) -> dict[str, Any]:
    """The JSON-ready layer record of ``model`` (raises :class:`SpecError` for a layer it does not know).

    Example:
        >>> from axiom import Sequential, Residual, Dense
        >>> model_spec(Residual(Dense(2, 2, bias=False)))["layers"][0]["bias"]
        False
    """
    return {"format": FORMAT, **_spec_of(model)}


def _children(a: dict[str, Any], key: str) -> list[Layer]:
    return [_build(c) for c in a[key]]


_BUILDERS: dict[str, Callable[[dict[str, Any]], Layer]] = {
    "Sequential": lambda a: nn.Sequential(*_children(a, "layers"), input_shape=a["input_shape"]),
    "Residual": lambda a: nn.Residual(*_children(a, "layers")),
    "Parallel": lambda a: nn.Parallel(*_children(a, "branches"), axis=int(a["axis"])),
    "Dense": lambda a: nn.Dense(a["in_features"], a["out_features"], _act(a["activation"]), bias=a["bias"]),
    "Conv2d": lambda a: nn.Conv2d(
        a["in_channels"],
        a["out_channels"],
        _tuples(a["kernel_size"]),
        stride=_tuples(a["stride"]),
        padding=_tuples(a["padding"]),
        dilation=_tuples(a["dilation"]),
        groups=a["groups"],
        activation=_act(a["activation"]),
        bias=a["bias"],
    ),
    "MaxPool2d": lambda a: nn.MaxPool2d(
        _tuples(a["kernel_size"]), _tuples(a["stride"]), _tuples(a["padding"]), _tuples(a["dilation"])
    ),
    "AvgPool2d": lambda a: nn.AvgPool2d(
        _tuples(a["kernel_size"]), _tuples(a["stride"]), _tuples(a["padding"]), a["count_include_pad"]
    ),
    "BatchNorm": lambda a: nn.BatchNorm(
        a["num_features"], eps=a["eps"], affine=a["affine"], track_running_stats=a["track_running_stats"]
    ),
    "LayerNorm": lambda a: nn.LayerNorm(
        _tuples(a["normalized_shape"]), eps=a["eps"], elementwise_affine=a["elementwise_affine"], bias=a["bias"]
    ),
    "RMSNorm": lambda a: nn.RMSNorm(
        _tuples(a["normalized_shape"]), eps=a["eps"], elementwise_affine=a["elementwise_affine"]
    ),
    "MultiHeadAttention": lambda a: nn.MultiHeadAttention(
        a["embed_dim"],
        a["num_heads"],
        bias=a["bias"],
        causal=a["causal"],
        rope=a["rope"],
        rope_base=a["rope_base"],
        dropout=a["dropout"],
    ),
    "Embedding": lambda a: nn.Embedding(a["num_embeddings"], a["embedding_dim"], a["padding_idx"]),
    "Activation": lambda a: Activation(_act(a["fn"])),
    "Softmax": lambda a: Softmax(a["axis"]),
    "LogSoftmax": lambda a: LogSoftmax(a["axis"]),
    "Reshape": lambda a: nn.Reshape(_tuples(a["target_shape"])),
    "Permute": lambda a: nn.Permute(_tuples(a["dims"])),
    "Dropout": lambda a: nn.Dropout(a["p"]),
    "Affine": lambda a: _affine(a),
    "Flatten": lambda a: nn.Flatten(),
    "GlobalAvgPool": lambda a: nn.GlobalAvgPool(),
}


def _affine(a: dict[str, Any]) -> Layer:
    import numpy as np

    return nn.Affine(np.ones(_tuples(a["scale_shape"]) or ()), np.zeros(_tuples(a["shift_shape"]) or ()))


def _build(a: Any) -> Layer:
    if not isinstance(a, dict) or a.get("type") not in _BUILDERS:
        kind = a.get("type") if isinstance(a, dict) else type(a).__name__
        raise SpecError(f"cannot rebuild a layer of type {kind!r} (known: {', '.join(sorted(_BUILDERS))})")
    try:
        return _BUILDERS[a["type"]](a)
    except (KeyError, TypeError, ValueError) as err:
        raise SpecError(f"bad {a['type']} record: {err}") from err


def build_model(spec: dict[str, Any]) -> Layer:
    """Rebuild the layer tree of a :func:`model_spec` record (weights freshly initialised).

    Example:
        >>> build_model({"format": FORMAT, "type": "Parallel", "axis": -1, "branches": [
        ...     {"type": "Dense", "in_features": 3, "out_features": 2, "bias": True, "activation": None},
        ...     {"type": "Activation", "fn": ["silu", 0.0]}]})
        Parallel(
          (0): Dense(3, 2)
          (1): Activation(silu)
        )
    """
    if not isinstance(spec, dict) or spec.get("format") != FORMAT:
        raise SpecError(f"not an {FORMAT} record")
    return _build(spec)
