"""The certificate's subject: a canonical description of a model's layers and SHA-256 digests.

The model is read through its layers only (``Sequential`` or an imported ONNX model's
``.model``, nested ``Sequential`` flattened). The architecture is a list of layer records:

- ``{"op": "flatten"}`` and ``{"op": "reshape", "shape": [...]}`` (row-major: the flat order is kept),
- ``{"op": "dense", "in": n, "out": m, "bias": true, "dtype": "float32"}`` (``y = x W + b``,
  ``W`` shaped ``(in, out)``),
- ``{"op": "relu"}`` and ``{"op": "identity"}`` (an activation fused into a ``Dense`` is its
  own record after the dense one),
- ``{"op": "unsupported", "type": "Conv2d"}`` for anything else (hashed by its ``state_dict``).

Digests: ``architecture`` is the SHA-256 of the canonical JSON of that list; ``weights`` the
SHA-256 over every tensor in layer order, each as ``name|dtype|shape|`` (UTF-8, ``dtype`` in
NumPy's ``str`` spelling such as ``<f4``) followed by its little-endian C-order bytes; ``model``
the SHA-256 of ``"axiom-model-v1|" + architecture + "|" + weights`` (hex digests).

Example:
    >>> from axiom import Dense, Sequential, manual_seed, relu
    >>> manual_seed(0); m = Sequential(Dense(2, 3, relu), Dense(3, 1))
    >>> [r["op"] for r in describe_model(m)[0]]
    ['dense', 'relu', 'dense']
    >>> sorted(model_digests(m))
    ['architecture', 'model', 'weights']
"""

from __future__ import annotations

import hashlib
from typing import Any

import numpy as np

from axiom.cert.canonical import canonical_json

__all__ = ["describe_model", "model_digests", "model_layers"]


def model_layers(model: Any) -> list[Any]:
    """The model's layers in order (an ONNX import's ``.model`` unwrapped, nested ``Sequential`` flattened).

    Example:
        >>> from axiom import Dense, Sequential
        >>> len(model_layers(Sequential(Sequential(Dense(2, 2)), Dense(2, 1))))
        2
    """
    inner = getattr(model, "model", None)
    if inner is not None and type(model).__name__ == "OnnxModel":
        model = inner
    if isinstance(model, list | tuple):
        out: list[Any] = []
        for m in model:
            out += model_layers(m)
        return out
    if any(c.__name__ == "Sequential" for c in type(model).__mro__):  # subclasses too (@axiom models); no nn import
        return model_layers(list(model))
    return [model]


def _array(t: Any) -> np.ndarray:
    data = getattr(t, "data", t)
    if hasattr(data, "numpy") and not isinstance(data, np.ndarray):
        data = data.numpy()
    return np.ascontiguousarray(np.asarray(data))


def _activation(fn: Any) -> dict[str, Any] | None:
    if fn is None:
        return None
    kind = getattr(fn, "kind", None)
    if kind in ("relu", "identity"):
        return {"op": kind}
    return {"op": "unsupported", "type": f"activation:{kind or type(fn).__name__}"}


def describe_model(model: Any) -> tuple[list[dict[str, Any]], list[tuple[str, np.ndarray]]]:
    """``(architecture records, [(tensor name, array), ...])`` of the model (see the module doc).

    Example:
        >>> from axiom import Dense, Flatten, Sequential
        >>> arch, tensors = describe_model(Sequential(Flatten(), Dense(4, 2)))
        >>> arch[1], [name for name, _ in tensors]
        ({'op': 'dense', 'in': 4, 'out': 2, 'bias': True, 'dtype': 'float32'}, ['1.weight', '1.bias'])
    """
    arch: list[dict[str, Any]] = []
    tensors: list[tuple[str, np.ndarray]] = []
    for i, layer in enumerate(model_layers(model)):
        name = type(layer).__name__
        if name == "Flatten":
            arch.append({"op": "flatten"})
        elif name == "Reshape":
            shape = getattr(layer, "target_shape", None) or getattr(layer, "shape", None)
            arch.append(
                {"op": "reshape", "shape": [int(s) for s in np.atleast_1d(shape)] if shape is not None else None}
            )
        elif name == "Dense":
            w = _array(layer.weight)
            b = None if getattr(layer, "bias", None) is None else _array(layer.bias)
            arch.append(
                {
                    "op": "dense",
                    "in": int(w.shape[0]),
                    "out": int(w.shape[1]),
                    "bias": b is not None,
                    "dtype": str(w.dtype),
                }
            )
            tensors.append((f"{i}.weight", w))
            if b is not None:
                tensors.append((f"{i}.bias", b))
            act = _activation(getattr(layer, "activation", None))
            if act is not None:
                arch.append(act)
        elif name in ("Activation", "ReLU", "Identity"):
            act = _activation(getattr(layer, "fn", None)) if name == "Activation" else {"op": name.lower()}
            arch.append(act or {"op": "identity"})
        else:
            arch.append({"op": "unsupported", "type": name})
            state = layer.state_dict() if hasattr(layer, "state_dict") else {}
            for key in sorted(state):
                tensors.append((f"{i}.{key}", _array(state[key])))
    return arch, tensors


def _weights_digest(tensors: list[tuple[str, np.ndarray]]) -> str:
    h = hashlib.sha256()
    for name, arr in tensors:
        a = np.ascontiguousarray(arr)
        if a.dtype.byteorder == ">":
            a = a.astype(a.dtype.newbyteorder("<"))
        h.update(f"{name}|{a.dtype.str}|{list(a.shape)}|".encode())
        h.update(a.tobytes(order="C"))
    return h.hexdigest()


def model_digests(model: Any) -> dict[str, str]:
    """SHA-256 hex digests of the model's ``weights``, ``architecture`` and both (``model``).

    Example:
        >>> from axiom import Dense, Sequential, manual_seed
        >>> manual_seed(0); a = model_digests(Sequential(Dense(2, 1)))
        >>> manual_seed(1); b = model_digests(Sequential(Dense(2, 1)))
        >>> a["architecture"] == b["architecture"], a["weights"] == b["weights"]
        (True, False)
    """
    arch, tensors = describe_model(model)
    return digests_of(arch, tensors)


def digests_of(arch: list[dict[str, Any]], tensors: list[tuple[str, np.ndarray]]) -> dict[str, str]:
    """The digests of an already described model (see :func:`describe_model`).

    Example:
        >>> d = digests_of([{"op": "relu"}], [])
        >>> len(d["model"])
        64
    """
    a = hashlib.sha256(canonical_json(arch).encode()).hexdigest()
    w = _weights_digest(tensors)
    m = hashlib.sha256(f"axiom-model-v1|{a}|{w}".encode()).hexdigest()
    return {"architecture": a, "weights": w, "model": m}
