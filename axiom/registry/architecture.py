"""A rebuildable description of a model's layers (Dense / activation / Flatten chains).

A package stores this spec in its metadata so that :func:`axiom.registry.load_model_package`
can rebuild the exact layer structure and load the weights into it (the certificate digests
depend on that structure). Other layers are recorded as ``{"type": "Conv2d", "rebuildable":
false}``; such packages are loaded into a template model given by the caller.

Example:
    >>> from axiom import Dense, Sequential, relu
    >>> spec = layer_spec(Sequential(Dense(2, 3, relu), Dense(3, 1)))
    >>> spec[0]
    {'type': 'Dense', 'in': 2, 'out': 3, 'bias': True, 'activation': {'kind': 'relu', 'alpha': 0.0}, 'dtype': 'float32'}
    >>> type(build_from_spec(spec)).__name__
    'Sequential'
"""

from __future__ import annotations

from typing import Any

__all__ = ["as_layer", "build_from_spec", "is_rebuildable", "layer_spec"]


def as_layer(model: Any) -> Any:
    """The axiom layer behind ``model``: an imported ONNX model's ``.model``, anything else unchanged.

    Example:
        >>> from axiom import Dense
        >>> d = Dense(2, 1)
        >>> as_layer(d) is d
        True
    """
    inner = getattr(model, "model", None)
    return inner if inner is not None and type(model).__name__ == "OnnxModel" else model


def _fn_spec(fn: Any) -> dict[str, Any] | None:
    if fn is None:
        return None
    kind = getattr(fn, "kind", None)
    if kind is None:
        return {"kind": type(fn).__name__, "rebuildable": False}
    return {"kind": kind, "alpha": float(getattr(fn, "alpha", 0.0))}


def layer_spec(model: Any) -> list[dict[str, Any]]:
    """One record per layer of ``model`` (nested ``Sequential`` flattened), in order.

    Example:
        >>> from axiom import Flatten, Sequential, ReLU
        >>> layer_spec(Sequential(Flatten(), ReLU()))
        [{'type': 'Flatten'}, {'type': 'Activation', 'activation': {'kind': 'relu', 'alpha': 0.0}}]
    """
    from axiom.cert.subject import model_layers

    out: list[dict[str, Any]] = []
    for layer in model_layers(model):
        name = type(layer).__name__
        fn = getattr(layer, "fn", None)
        if name == "Dense":
            w = layer.weight.data
            out.append(
                {
                    "type": "Dense",
                    "in": int(w.shape[0]),
                    "out": int(w.shape[1]),
                    "bias": getattr(layer, "bias", None) is not None,
                    "activation": _fn_spec(getattr(layer, "activation", None)),
                    "dtype": str(w.dtype),
                }
            )
        elif name == "Flatten":
            out.append({"type": "Flatten"})
        elif fn is not None and getattr(fn, "kind", None) is not None and not layer.state_dict():
            out.append({"type": "Activation", "activation": _fn_spec(fn)})
        else:
            out.append({"type": name, "rebuildable": False})
    return out


def is_rebuildable(spec: list[dict[str, Any]]) -> bool:
    """True when every record of ``spec`` can be rebuilt by :func:`build_from_spec`.

    Example:
        >>> is_rebuildable([{"type": "Flatten"}]), is_rebuildable([{"type": "Conv2d", "rebuildable": False}])
        (True, False)
    """
    for rec in spec:
        if rec.get("rebuildable") is False or (rec.get("activation") or {}).get("rebuildable") is False:
            return False
        if rec.get("type") not in ("Dense", "Flatten", "Activation"):
            return False
    return bool(spec)


def build_from_spec(spec: list[dict[str, Any]]) -> Any:
    """A fresh ``Sequential`` with the layers of ``spec`` (weights uninitialised: load them next).

    Raises ``ValueError`` naming the first layer that cannot be rebuilt.

    Example:
        >>> rec = {"type": "Dense", "in": 2, "out": 1, "bias": True, "activation": None, "dtype": "float64"}
        >>> m = build_from_spec([rec])
        >>> m[0].weight.data.dtype.name
        'float64'
    """
    from axiom.nn import Activation, Dense, Flatten, Sequential
    from axiom.nn.activations import ActivationFunction

    def fn(rec: dict[str, Any] | None) -> Any:
        return None if rec is None else ActivationFunction(str(rec["kind"]), float(rec.get("alpha", 0.0)))

    if not is_rebuildable(spec):
        bad = next((r for r in spec if r.get("type") not in ("Dense", "Flatten", "Activation")), {"type": "?"})
        raise ValueError(f"layer type {bad.get('type')!r} cannot be rebuilt from metadata; pass model= (a template)")
    layers: list[Any] = []
    for rec in spec:
        if rec["type"] == "Dense":
            layers.append(
                Dense(
                    int(rec["in"]),
                    int(rec["out"]),
                    fn(rec.get("activation")),
                    bias=bool(rec.get("bias", True)),
                    dtype=rec.get("dtype"),
                )
            )
        elif rec["type"] == "Flatten":
            layers.append(Flatten())
        else:
            layers.append(Activation(fn(rec["activation"])))
    return Sequential(*layers)
