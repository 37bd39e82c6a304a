"""The ``axiom.pytorch.sequential.v1`` descriptor: a JSON architecture for weights-only checkpoints.

A state dict holds tensors, not the network. The descriptor names the ``torch.nn.Sequential``
that produced it, one entry per layer, with the torch class name and its constructor arguments
(same names and defaults as torch)::

    {"format": "axiom.pytorch.sequential.v1",
     "layers": [{"type": "Conv2d", "in_channels": 1, "out_channels": 4, "kernel_size": 3},
                {"type": "ReLU"}, {"type": "Flatten"},
                {"type": "Linear", "in_features": 2704, "out_features": 10}]}

Layer positions (including parameterless ones) give the state-dict names (``"3.weight"``), as in
torch; ``{"type": "Sequential", "layers": [...]}`` nests. Images are NHWC in the built model.
Unknown types or arguments raise :class:`DescriptorError` naming the layer position.

Example:
    >>> model = build_from_descriptor({"format": FORMAT, "layers": [
    ...     {"type": "Linear", "in_features": 4, "out_features": 2}, {"type": "Tanh"}]})
    >>> model
    Sequential(
      (0): Dense(4, 2)
      (1): Tanh(tanh)
    )
"""

from __future__ import annotations

import json
import os
from collections.abc import Callable, Mapping
from typing import Any

from axiom import nn
from axiom.nn.layer import Layer

__all__ = ["FORMAT", "DescriptorError", "build_from_descriptor", "load_descriptor", "supported_layer_types"]

FORMAT = "axiom.pytorch.sequential.v1"


class DescriptorError(ValueError):
    """An architecture descriptor that is malformed or names something axiom cannot build."""


def _pair(v: Any) -> Any:
    return tuple(v) if isinstance(v, list) else v


def _check(where: str, value: Any, allowed: tuple[Any, ...], what: str) -> None:
    if value not in allowed:
        raise DescriptorError(f"{where}: {what}={value!r} is not supported; expected one of {list(allowed)}")


def _linear(a: dict[str, Any], where: str) -> Layer:
    return nn.Dense(a["in_features"], a["out_features"], bias=a.get("bias", True))


def _conv(a: dict[str, Any], where: str) -> Layer:
    _check(where, a.get("padding_mode", "zeros"), ("zeros",), "padding_mode")
    padding = a.get("padding", 0)
    return nn.Conv2d(
        a["in_channels"],
        a["out_channels"],
        _pair(a["kernel_size"]),
        stride=_pair(a.get("stride", 1)),
        padding=_pair(padding),
        dilation=_pair(a.get("dilation", 1)),
        groups=a.get("groups", 1),
        bias=a.get("bias", True),
    )


def _batchnorm(a: dict[str, Any], where: str) -> Layer:
    return nn.BatchNorm(
        a["num_features"],
        eps=a.get("eps", 1e-5),
        momentum=a.get("momentum", 0.1),
        affine=a.get("affine", True),
        track_running_stats=a.get("track_running_stats", True),
    )


def _layernorm(a: dict[str, Any], where: str) -> Layer:
    shape = a["normalized_shape"]
    return nn.LayerNorm(
        tuple(shape) if isinstance(shape, list) else shape,
        eps=a.get("eps", 1e-5),
        elementwise_affine=a.get("elementwise_affine", True),
        bias=a.get("bias", True),
    )


def _flatten(a: dict[str, Any], where: str) -> Layer:
    _check(where, a.get("start_dim", 1), (1,), "start_dim")
    _check(where, a.get("end_dim", -1), (-1,), "end_dim")
    return nn.Flatten()


def _softmax(cls: type[Layer]) -> Callable[[dict[str, Any], str], Layer]:
    def make(a: dict[str, Any], where: str) -> Layer:
        if "dim" not in a:
            raise DescriptorError(f"{where}: give 'dim' (1 or -1: the feature/channel axis)")
        _check(where, a["dim"], (1, -1), "dim")
        return cls(axis=-1)  # type: ignore[call-arg]

    return make


def _pool(cls: type[Layer]) -> Callable[[dict[str, Any], str], Layer]:
    def make(a: dict[str, Any], where: str) -> Layer:
        _check(where, a.get("ceil_mode", False), (False,), "ceil_mode")
        kwargs: dict[str, Any] = {"stride": _pair(a.get("stride")), "padding": _pair(a.get("padding", 0))}
        if cls is nn.MaxPool2d:
            _check(where, a.get("return_indices", False), (False,), "return_indices")
            kwargs["dilation"] = _pair(a.get("dilation", 1))
        else:
            _check(where, a.get("divisor_override"), (None,), "divisor_override")
            kwargs["count_include_pad"] = a.get("count_include_pad", True)
        return cls(_pair(a["kernel_size"]), **kwargs)  # type: ignore[call-arg]

    return make


def _adaptive_avg(a: dict[str, Any], where: str) -> Layer:
    """``AdaptiveAvgPool2d(1)`` -> ``GlobalAvgPool`` (``(batch, C)``: what a following ``Flatten`` gives in torch)."""
    _check(where, _pair(a["output_size"]), (1, (1, 1)), "output_size")
    return nn.GlobalAvgPool()


def _simple(cls: type[Layer], **defaults: Any) -> Callable[[dict[str, Any], str], Layer]:
    def make(a: dict[str, Any], where: str) -> Layer:
        for key, default in defaults.items():
            _check(where, a.get(key, default), (default,), key)
        return cls()

    return make


_BUILDERS: dict[str, tuple[Callable[[dict[str, Any], str], Layer], tuple[str, ...]]] = {
    "Linear": (_linear, ("in_features", "out_features", "bias")),
    "Conv2d": (
        _conv,
        (
            "in_channels",
            "out_channels",
            "kernel_size",
            "stride",
            "padding",
            "dilation",
            "groups",
            "bias",
            "padding_mode",
        ),
    ),
    "BatchNorm1d": (_batchnorm, ("num_features", "eps", "momentum", "affine", "track_running_stats")),
    "BatchNorm2d": (_batchnorm, ("num_features", "eps", "momentum", "affine", "track_running_stats")),
    "LayerNorm": (_layernorm, ("normalized_shape", "eps", "elementwise_affine", "bias")),
    "Embedding": (
        lambda a, w: nn.Embedding(a["num_embeddings"], a["embedding_dim"], padding_idx=a.get("padding_idx")),
        ("num_embeddings", "embedding_dim", "padding_idx"),
    ),
    "Flatten": (_flatten, ("start_dim", "end_dim")),
    "Dropout": (lambda a, w: nn.Dropout(a.get("p", 0.5)), ("p", "inplace")),
    "MaxPool2d": (_pool(nn.MaxPool2d), ("kernel_size", "stride", "padding", "dilation", "ceil_mode", "return_indices")),
    "AvgPool2d": (
        _pool(nn.AvgPool2d),
        ("kernel_size", "stride", "padding", "ceil_mode", "count_include_pad", "divisor_override"),
    ),
    "AdaptiveAvgPool2d": (_adaptive_avg, ("output_size",)),
    "ReLU": (_simple(nn.ReLU), ("inplace",)),
    "ReLU6": (_simple(nn.ReLU6), ("inplace",)),
    "Sigmoid": (_simple(nn.Sigmoid), ()),
    "Tanh": (_simple(nn.Tanh), ()),
    "SiLU": (_simple(nn.SiLU), ("inplace",)),
    "Mish": (_simple(nn.Mish), ("inplace",)),
    "SELU": (_simple(nn.SELU), ("inplace",)),
    "Softsign": (_simple(nn.Softsign), ()),
    "Hardswish": (_simple(nn.Hardswish), ("inplace",)),
    "Hardsigmoid": (_simple(nn.Hardsigmoid), ("inplace",)),
    "Softplus": (_simple(nn.Softplus, beta=1, threshold=20), ("beta", "threshold")),
    "GELU": (lambda a, w: nn.GELU(approximate=a.get("approximate", "none")), ("approximate",)),
    "LeakyReLU": (lambda a, w: nn.LeakyReLU(a.get("negative_slope", 0.01)), ("negative_slope", "inplace")),
    "ELU": (lambda a, w: nn.ELU(a.get("alpha", 1.0)), ("alpha", "inplace")),
    "Softmax": (_softmax(nn.Softmax), ("dim",)),
    "LogSoftmax": (_softmax(nn.LogSoftmax), ("dim",)),
}


def supported_layer_types() -> list[str]:
    """The torch layer class names a descriptor may use.

    Example:
        >>> "Conv2d" in supported_layer_types()
        True
    """
    return sorted([*_BUILDERS, "Sequential"])


def _build_layers(layers: Any, where: str) -> list[Layer]:
    if not isinstance(layers, list) or not layers:
        raise DescriptorError(f"{where}: 'layers' must be a non-empty JSON list of layer objects")
    out: list[Layer] = []
    for i, spec in enumerate(layers):
        at = f"{where} layer {i}"
        if not isinstance(spec, dict) or not isinstance(spec.get("type"), str):
            raise DescriptorError(f"{at}: expected an object with a string 'type', got {spec!r:.120}")
        kind = spec["type"]
        at = f"{at} ({kind})"
        args = {k: v for k, v in spec.items() if k != "type"}
        if kind == "Sequential":
            if set(args) != {"layers"}:
                raise DescriptorError(f"{at}: expected only 'layers', got {sorted(args)}")
            out.append(nn.Sequential(*_build_layers(args["layers"], at)))
            continue
        if kind not in _BUILDERS:
            raise DescriptorError(
                f"{at}: torch layer type {kind!r} is not supported; supported: {', '.join(supported_layer_types())}"
            )
        builder, known = _BUILDERS[kind]
        unknown = sorted(set(args) - set(known))
        if unknown:
            raise DescriptorError(f"{at}: unknown argument(s) {unknown}; {kind} takes {list(known)}")
        try:
            out.append(builder(args, at))
        except DescriptorError:
            raise
        except KeyError as err:
            raise DescriptorError(f"{at}: missing required argument {err.args[0]!r}") from None
        except (TypeError, ValueError) as err:
            raise DescriptorError(f"{at}: {err}") from None
    return out


def build_from_descriptor(descriptor: Mapping[str, Any]) -> nn.Sequential:
    """Build the axiom Sequential that an ``axiom.pytorch.sequential.v1`` descriptor describes.

    Example:
        >>> build_from_descriptor({"format": FORMAT, "layers": [{"type": "Swish"}]})  # doctest: +ELLIPSIS
        Traceback (most recent call last):
        ...
        axiom.io._torch_descriptor.DescriptorError: descriptor layer 0 (Swish): torch layer type 'Swish' ...
    """
    if not isinstance(descriptor, Mapping):
        raise DescriptorError(f"descriptor: expected a JSON object, got {type(descriptor).__name__}")
    if descriptor.get("format") != FORMAT:
        raise DescriptorError(f"descriptor: 'format' is {descriptor.get('format')!r}; expected {FORMAT!r}")
    extra = sorted(set(descriptor) - {"format", "layers"})
    if extra:
        raise DescriptorError(f"descriptor: unknown field(s) {extra}; expected 'format' and 'layers'")
    return nn.Sequential(*_build_layers(descriptor.get("layers"), "descriptor"))


def load_descriptor(path: str | os.PathLike[str]) -> dict[str, Any]:
    """Read a descriptor JSON file (not yet validated; see :func:`build_from_descriptor`).

    Example:
        >>> import json, os, tempfile
        >>> p = os.path.join(tempfile.mkdtemp(), "arch.json")
        >>> with open(p, "w") as f:
        ...     json.dump({"format": FORMAT, "layers": [{"type": "ReLU"}]}, f)
        >>> load_descriptor(p)["layers"]
        [{'type': 'ReLU'}]
    """
    try:
        with open(os.fspath(path), encoding="utf-8") as f:
            data = json.load(f)
    except (OSError, ValueError) as err:
        raise DescriptorError(f"descriptor {os.fspath(path)!r}: cannot read JSON ({err})") from None
    if not isinstance(data, dict):
        raise DescriptorError(f"descriptor {os.fspath(path)!r}: expected a JSON object")
    return data
