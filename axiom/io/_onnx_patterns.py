"""Recognise activations written as small subgraphs and fuse each into one node before import.

``from_onnx`` imports chains; an activation spelled out over several nodes reads its input twice
and so is not a chain. :func:`fuse_activations` rewrites (in a copy of the model) these
patterns, where every intermediate tensor is read by the pattern only:

* ``Mul(x, Sigmoid(x))`` -> SiLU (``AxiomSilu``, an import-only marker node),
* ``Mul(x, Tanh(Softplus(x)))`` -> ``Mish``,
* ``Mul(Mul(x, 0.5), Add(Erf(Mul(x, 1/sqrt 2)), 1))`` and the torch form
  ``Mul(Mul(x, Add(Erf(Div(x, sqrt 2)), 1)), 0.5)`` -> ``Gelu``.

Example:
    >>> import numpy as np
    >>> from onnx import TensorProto, helper
    >>> graph = helper.make_graph(
    ...     [helper.make_node("Sigmoid", ["x"], ["s"]), helper.make_node("Mul", ["x", "s"], ["y"], name="silu")], "g",
    ...     [helper.make_tensor_value_info("x", TensorProto.FLOAT, ["N", 3])],
    ...     [helper.make_tensor_value_info("y", TensorProto.FLOAT, ["N", 3])])
    >>> fused = fuse_activations(helper.make_model(graph, opset_imports=[helper.make_opsetid("", 17)]))
    >>> [(n.op_type, n.name) for n in fused.graph.node]
    [('AxiomSilu', 'silu')]
"""

from __future__ import annotations

import math
from typing import TYPE_CHECKING, Any

import numpy as np

if TYPE_CHECKING:
    import onnx

__all__ = ["SILU_OP", "fuse_activations"]

SILU_OP = "AxiomSilu"


class _Graph:
    def __init__(self, model: onnx.ModelProto) -> None:
        from onnx import numpy_helper

        g = model.graph
        self.nodes = list(g.node)
        self.consts = {t.name: numpy_helper.to_array(t) for t in g.initializer}
        for n in self.nodes:  # Constant nodes holding a tensor (torch writes its scalars that way)
            value = next((a.t for a in n.attribute if a.name == "value"), None) if n.op_type == "Constant" else None
            if value is not None and n.output:
                self.consts[n.output[0]] = numpy_helper.to_array(value)
        self.producer = {o: n for n in self.nodes for o in n.output}
        self.readers: dict[str, list[Any]] = {}
        for n in self.nodes:
            for i in n.input:
                self.readers.setdefault(i, []).append(n)
        self.outputs = {o.name for o in g.output}

    def op(self, name: str, op_type: str) -> Any:
        """The node producing ``name`` if it is ``op_type`` and only one node reads ``name``."""
        n = self.producer.get(name)
        if n is None or n.op_type != op_type or n.domain not in ("", "ai.onnx") or name in self.outputs:
            return None
        return n if len(self.readers.get(name, [])) == 1 else None

    def scalar(self, name: str, value: float) -> bool:
        arr = self.consts.get(name)
        return arr is not None and arr.size == 1 and bool(np.isclose(float(arr.reshape(())), value, rtol=1e-6))


def _split(g: _Graph, node: Any, op_type: str) -> list[tuple[str, Any]]:
    """``(other input, producer)`` for each way ``node``'s two inputs are (x, op_type(...))."""
    if len(node.input) != 2:
        return []
    a, b = node.input
    return [(o, n) for o, t in ((a, b), (b, a)) if (n := g.op(t, op_type)) is not None]


def _silu(g: _Graph, mul: Any) -> tuple[str, list[Any]] | None:
    for x, sig in _split(g, mul, "Sigmoid"):
        if sig.input[0] == x:
            return x, [sig]
    return None


def _mish(g: _Graph, mul: Any) -> tuple[str, list[Any]] | None:
    for x, tanh in _split(g, mul, "Tanh"):
        soft = g.op(tanh.input[0], "Softplus")
        if soft is not None and soft.input[0] == x:
            return x, [tanh, soft]
    return None


def _erf_of(g: _Graph, one_plus_name: str) -> tuple[str, list[Any]] | None:
    """``x`` and nodes of ``Add(Erf(x / sqrt 2), 1)``."""
    add = g.op(one_plus_name, "Add")
    if add is None:
        return None
    for c, erf in _split(g, add, "Erf"):
        if not g.scalar(c, 1.0):
            continue
        inner = g.producer.get(erf.input[0])
        if inner is None or len(g.readers.get(erf.input[0], [])) != 1 or len(inner.input) != 2:
            continue
        x, k = inner.input
        if inner.op_type == "Mul" and g.scalar(x, 1 / math.sqrt(2)):
            x, k = k, x
        if (inner.op_type == "Mul" and g.scalar(k, 1 / math.sqrt(2))) or (
            inner.op_type == "Div" and g.scalar(k, math.sqrt(2))
        ):
            return x, [add, erf, inner]
    return None


def _gelu(g: _Graph, mul: Any) -> tuple[str, list[Any]] | None:
    if len(mul.input) != 2:
        return None
    for half_name, rest_name in (tuple(mul.input), tuple(mul.input)[::-1]):
        half = g.op(half_name, "Mul")  # exporter: Mul(Mul(x, 0.5), Add(Erf(x * k), 1))
        if half is not None and len(half.input) == 2:
            x = next((a for a, b in (tuple(half.input), tuple(half.input)[::-1]) if g.scalar(b, 0.5)), None)
            found = _erf_of(g, rest_name)
            if x is not None and found is not None and found[0] == x:
                return x, [half, *found[1]]
        if g.scalar(rest_name, 0.5):  # torch: Mul(Mul(x, Add(Erf(x / sqrt 2), 1)), 0.5)
            prod = g.op(half_name, "Mul")
            if prod is not None and len(prod.input) == 2:
                for x, other in (tuple(prod.input), tuple(prod.input)[::-1]):
                    found = _erf_of(g, other)
                    if found is not None and found[0] == x:
                        return x, [prod, *found[1]]
    return None


def fuse_activations(model: onnx.ModelProto) -> onnx.ModelProto:
    """A copy of ``model`` with SiLU / Mish / GELU (erf) subgraphs fused into one node each (see the module doc).

    Returns ``model`` itself when nothing matches.

    Example:
        >>> from axiom import Sequential, Activation
        >>> from axiom.io import to_onnx
        >>> proto = to_onnx(Sequential(Activation("gelu"), Activation("mish"), input_shape=(None, 2)), opset=17)
        >>> [n.op_type for n in fuse_activations(proto).graph.node]
        ['Gelu', 'Mish']
    """
    from onnx import helper

    g = _Graph(model)
    replace: dict[int, Any] = {}
    drop: set[int] = set()
    for node in g.nodes:
        if node.op_type != "Mul" or node.domain not in ("", "ai.onnx"):
            continue
        for op, match in ((SILU_OP, _silu), ("Mish", _mish), ("Gelu", _gelu)):
            found = match(g, node)
            if found is None or any(id(n) in drop or id(n) in replace for n in found[1]):
                continue
            x, inner = found
            replace[id(node)] = helper.make_node(op, [x], list(node.output), name=node.name)
            drop.update(id(n) for n in inner)
            break
    if not replace:
        return model
    out = type(model)()
    out.CopyFrom(model)
    del out.graph.node[:]
    out.graph.node.extend(replace.get(id(n), n) for n in g.nodes if id(n) not in drop)
    return out
