"""Import ONNX models (opsets 7-20) as plain axiom :class:`~axiom.nn.Sequential` models.

:func:`from_onnx` reads a ``.onnx`` file (or an ``onnx.ModelProto``) whose graph is a **chain**:
every node has at most one input computed from the graph input; weights come from initializers,
``Constant`` nodes or constant subgraphs (folded at import time). One join is accepted: a
residual block ``Add(x, f(x))`` whose branch ``f`` is itself a chain read only by that Add and
keeps the shape of ``x`` becomes ``Residual(*f)``. It returns an
:class:`OnnxModel`: ``.model`` is the axiom ``Sequential`` (what ``verify`` and the compiler
take), and the object itself runs inputs shaped like the ONNX input and compares against
onnxruntime.

**Layout.** ONNX images are NCHW; axiom computes in NHWC. The imported model takes its input in
the ONNX input's own layout, batch first (``(batch, *input_shape)``), so the VNN-LIB variable
``X_i`` is element ``i`` of the row-major flattened ONNX input, and its output flattens to
ONNX's output order (``Y_j``). Inside, the importer tracks how the running tensor is laid out
and inserts ``Permute`` only where a layer needs another layout: ``Permute((1, 2, 0))`` before
Conv/Pool/BatchNorm on a 4-D tensor, ``Permute((2, 0, 1))`` before a Flatten/Reshape out of
NHWC. ONNX ``Transpose`` nodes emit no layer (they change the tracked layout), so an NHWC
model that transposes to NCHW before its convolutions needs no ``Permute`` at all.

**Batch.** An input of rank >= 2 has a batch axis (fixed 1, fixed N or symbolic): it is
dropped from ``input_shape`` and the axiom model takes any batch size. A rank-1 input
(``[5]``) has none: the whole tensor is one example (``input_shape == (5,)``). Operations that
would mix examples (a Softmax over the batch axis, Gemm with ``transA=1``, ...) raise
:class:`UnsupportedOnnxError`; with a fixed batch size the importer then retries treating the
whole input tensor as one example.

Mappings: MatMul/Gemm -> Dense (a following constant Add/Sub becomes its bias), Conv -> Conv2d
(weights ``(C_out, C_in/g, kH, kW)`` -> ``(kH, kW, C_in/g, C_out)``; a zero-valued constant Pad
right before it becomes its padding), MaxPool/AveragePool -> MaxPool2d/AvgPool2d,
GlobalAveragePool -> GlobalAvgPool, BatchNormalization -> BatchNorm (eval, running statistics),
Add/Sub/Mul/Div/Neg by constants -> Affine (consecutive ones merged), Flatten/Reshape/Squeeze/
Unsqueeze -> Flatten/Reshape, Relu/Sigmoid/Tanh/LeakyRelu/Elu/Selu/Softplus/Softsign/Clip(0, 6
or 0, inf) -> activation layers, Softmax/LogSoftmax (the coerced-2-D semantics before opset 13),
Identity/Dropout/Cast-to-same-type -> nothing; HardSigmoid (alpha 1/6, beta 0.5)/HardSwish/Mish/Gelu ->
Hardsigmoid/Hardswish/Mish/GELU, LayerNormalization over trailing axes -> LayerNorm (what ``to_onnx``
writes for those layers).

SiLU ``Mul(x, Sigmoid(x))``, Mish ``Mul(x, Tanh(Softplus(x)))`` and the erf GELU spelled out over
several nodes are recognised and fused first (``axiom.io._onnx_patterns``). An int64/int32 input
read by one ``Gather(constant table, input, axis=0)`` becomes an ``Embedding`` (``OnnxModel.dtype``
is then the integer input type).

A file written by :func:`axiom.io.to_onnx` carries its layer record (``metadata_props``
``"axiom.layers"``): when rebuilding those layers and exporting them again gives exactly the
file's graph, the import returns them as they were (RMSNorm, MultiHeadAttention, Parallel,
Embedding with an integer input, ...); otherwise the graph is imported operator by operator as above.

Example:
    >>> import numpy as np
    >>> from onnx import TensorProto, helper, numpy_helper
    >>> w = numpy_helper.from_array(np.arange(6, dtype=np.float32).reshape(3, 2), "W")
    >>> b = numpy_helper.from_array(np.array([1.0, -1.0], np.float32), "B")
    >>> graph = helper.make_graph(
    ...     [helper.make_node("MatMul", ["x", "W"], ["h"]), helper.make_node("Add", ["h", "B"], ["z"]),
    ...      helper.make_node("Relu", ["z"], ["y"])],
    ...     "mlp", [helper.make_tensor_value_info("x", TensorProto.FLOAT, [1, 3])],
    ...     [helper.make_tensor_value_info("y", TensorProto.FLOAT, [1, 2])], [w, b])
    >>> net = from_onnx(helper.make_model(graph, opset_imports=[helper.make_opsetid("", 13)]))
    >>> net.model
    Sequential(
      (0): Dense(3, 2)
      (1): ReLU(relu)
    )
    >>> net.input_shape, net.output_shape
    ((3,), (2,))
    >>> x = np.array([1.0, 0.0, 1.0], np.float32)     # a flat vector: one example
    >>> net(x).tolist(), net.run_onnxruntime(x).tolist()
    ([[5.0, 5.0]], [[5.0, 5.0]])
"""

from __future__ import annotations

import math
import os
import warnings
from collections.abc import Sequence
from typing import TYPE_CHECKING, Any

import numpy as np

from axiom.autograd import no_grad
from axiom.nn import init
from axiom.nn.activations import (
    ELU,
    GELU,
    SELU,
    Activation,
    Hardsigmoid,
    Hardswish,
    LeakyReLU,
    LogSoftmax,
    Mish,
    ReLU,
    ReLU6,
    Sigmoid,
    SiLU,
    Softmax,
    Softplus,
    Softsign,
    Tanh,
    identity,
)
from axiom.nn.affine import Affine
from axiom.nn.containers import Residual, Sequential
from axiom.nn.conv import Conv2d
from axiom.nn.dense import Dense
from axiom.nn.embedding import Embedding
from axiom.nn.layer import Layer
from axiom.nn.normalization import BatchNorm, LayerNorm
from axiom.nn.pooling import AvgPool2d, GlobalAvgPool, MaxPool2d
from axiom.nn.reshape import Flatten, Permute, Reshape
from axiom.tensor import Tensor

if TYPE_CHECKING:  # onnx is imported when a model is read, so `import axiom` stays fast
    import onnx

__all__ = ["InvalidOnnxError", "OnnxModel", "SUPPORTED_OPS", "UnsupportedOnnxError", "from_onnx"]

#: Default-domain opsets the importer understands (attribute/input forms of each).
MIN_OPSET, MAX_OPSET = 7, 20

#: ONNX operators with an axiom mapping (constant subgraphs of any operator are folded).
SUPPORTED_OPS: frozenset[str] = frozenset(
    """Add AveragePool BatchNormalization Cast Clip Constant Conv Div Dropout Elu Flatten Gelu Gemm
    Gather GlobalAveragePool HardSigmoid HardSwish Identity LayerNormalization LeakyRelu LogSoftmax MatMul MaxPool
    Mish Mul Neg Pad Relu Reshape Selu Shape Sigmoid Size Softmax Softplus Softsign Squeeze Sub Tanh
    Transpose Unsqueeze""".split()
)

_FLOAT_TYPES = {1: np.dtype(np.float32), 11: np.dtype(np.float64)}  # TensorProto.FLOAT, TensorProto.DOUBLE
_INT_TYPES = {7: np.dtype(np.int64), 6: np.dtype(np.int32)}  # TensorProto.INT64, TensorProto.INT32
_SELU_ALPHA, _SELU_GAMMA = 1.67326319217681884765625, 1.05070102214813232421875


class UnsupportedOnnxError(ValueError):
    """An ONNX model uses an operator, attribute or graph shape axiom cannot import (yet).

    The message names the node (its name, or its index and first output when unnamed), the
    operator and the opset, and says why. Attributes: ``node_name``, ``op_type``, ``opset``.

    Example:
        >>> err = UnsupportedOnnxError("no axiom mapping", node_name="lstm_1", op_type="LSTM", opset=13)
        >>> str(err)
        "node 'lstm_1' (LSTM, opset 13): no axiom mapping"
    """

    def __init__(self, why: str, *, node_name: str = "", op_type: str = "", opset: int | None = None) -> None:
        self.node_name, self.op_type, self.opset, self.why = node_name, op_type, opset, why
        where = f"node {node_name!r} ({op_type}, opset {opset}): " if op_type else ""
        super().__init__(where + why)


class _BatchAxisError(UnsupportedOnnxError):
    """An operation would mix examples along the batch axis (the importer may retry without one)."""


class InvalidOnnxError(ValueError):
    """The file is not a valid ONNX model (cannot be parsed or fails ``onnx.checker``).

    Example:
        >>> try:
        ...     from_onnx(b"not a model")
        ... except InvalidOnnxError as err:
        ...     print(str(err).split(":")[0])
        from_onnx
    """


_BATCH = "batch"  # marks the batch axis in full ONNX shapes
_SENTINEL = 1_000_003  # stands for a symbolic batch size inside folded Shape results


def _onnx() -> Any:
    import onnx

    return onnx


def _to_array(tensor: onnx.TensorProto) -> np.ndarray:
    from onnx import numpy_helper

    return numpy_helper.to_array(tensor)


def _label(node: onnx.NodeProto, index: int) -> str:
    if node.name:
        return node.name
    return f"#{index} -> {node.output[0]!r}" if node.output else f"#{index}"


def _attrs(node: onnx.NodeProto) -> dict[str, Any]:
    out: dict[str, Any] = {}
    for a in node.attribute:
        value = _onnx().helper.get_attribute_value(a)
        out[a.name] = value.decode() if isinstance(value, bytes) else value
    return out


def _is_identity(perm: Sequence[int]) -> bool:
    return tuple(perm) == tuple(range(len(perm)))


def _inverse(perm: Sequence[int]) -> tuple[int, ...]:
    inv = [0] * len(perm)
    for i, p in enumerate(perm):
        inv[p] = i
    return tuple(inv)


class _Converter:
    """Walks a chain-shaped ONNX graph once, emitting axiom layers (see the module docstring)."""

    def __init__(self, model: onnx.ModelProto, opset: int, input_name: str, batched: bool) -> None:
        self.model, self.graph, self.opset = model, model.graph, opset
        self.consts: dict[str, np.ndarray] = {t.name: _to_array(t) for t in self.graph.initializer}
        self.tainted: set[str] = set()  # constants that depend on a symbolic batch size
        self.layers: list[Layer] = []
        self.in_shapes: list[tuple[int, ...]] = []  # runtime example shape entering each layer
        self.sources: list[list[str]] = []  # ONNX node labels behind each layer
        value = next(v for v in self.graph.input if v.name == input_name)
        tensor_type = value.type.tensor_type
        self.input_name = input_name
        if tensor_type.elem_type in _INT_TYPES:
            self.dtype = self._embedding_dtype(input_name, tensor_type.elem_type)
            self.input_dtype = _INT_TYPES[tensor_type.elem_type]
        elif tensor_type.elem_type not in _FLOAT_TYPES:
            name = _onnx().TensorProto.DataType.Name(tensor_type.elem_type)
            raise UnsupportedOnnxError(f"input {input_name!r} has element type {name}; axiom imports FLOAT/DOUBLE")
        else:
            self.dtype = self.input_dtype = _FLOAT_TYPES[tensor_type.elem_type]
        if not tensor_type.HasField("shape"):
            raise UnsupportedOnnxError(f"input {input_name!r} has no shape; axiom needs the input's shape")
        dims: list[int | str] = [
            d.dim_value if d.HasField("dim_value") else (d.dim_param or "?") for d in tensor_type.shape.dim
        ]
        self.onnx_input_dims = tuple(dims)
        batched = batched and len(dims) >= 2
        self.batched = batched
        self.batch: int | None = None
        if batched:
            self.batch = dims[0] if isinstance(dims[0], int) and dims[0] > 0 else None
            dims = dims[1:]
        if not dims and not batched:
            raise UnsupportedOnnxError(f"input {input_name!r} is a scalar; axiom needs at least one axis")
        for i, d in enumerate(dims):
            if not isinstance(d, int) or d <= 0:
                raise UnsupportedOnnxError(
                    f"input {input_name!r} has shape {list(self.onnx_input_dims)}: axis {i + batched} is symbolic "
                    f"({d!r}); only the batch axis may be symbolic"
                )
        self.shape: tuple[int, ...] = tuple(int(d) for d in dims)
        self.input_shape = self.shape
        self.input_batched = batched
        self.layout: tuple[int, ...] = tuple(range(len(self.shape)))
        self.live = input_name
        self.full_shapes: dict[str, tuple[list[Any], bool]] = {input_name: (self._full_shape(), self.batched)}
        self.pending_pad: tuple[str, tuple[tuple[int, int], tuple[int, int]]] | None = None
        self.node: onnx.NodeProto | None = None
        self.label = ""

    def _embedding_dtype(self, input_name: str, elem_type: int) -> np.dtype:
        """An integer input is accepted only as the indices of ``Gather(table, input, axis=0)`` (an Embedding)."""
        readers = [n for n in self.graph.node if input_name in n.input]
        node = readers[0] if len(readers) == 1 else None
        table = self.consts.get(node.input[0]) if node is not None and node.op_type == "Gather" else None
        axis = int(_attrs(node).get("axis", 0)) if node is not None else 0
        if table is None or list(node.input[1:]) != [input_name] or axis != 0 or table.ndim != 2:
            name = _onnx().TensorProto.DataType.Name(elem_type)
            raise UnsupportedOnnxError(
                f"input {input_name!r} has element type {name}; axiom imports FLOAT/DOUBLE inputs, and integer "
                "inputs only as the indices of one Gather(constant 2-D table, input, axis=0) (an Embedding)"
            )
        if table.dtype not in _FLOAT_TYPES.values():
            raise UnsupportedOnnxError(f"the Gather table {node.input[0]!r} is {table.dtype.name}, not float32/64")
        return np.dtype(table.dtype)

    # -- errors ------------------------------------------------------------------------------
    def unsupported(self, why: str, cls: type[UnsupportedOnnxError] = UnsupportedOnnxError) -> UnsupportedOnnxError:
        op = self.node.op_type if self.node is not None else ""
        return cls(why, node_name=self.label, op_type=op, opset=self.opset)

    def batch_error(self, why: str) -> UnsupportedOnnxError:
        return self.unsupported(why + " (it would mix examples along the batch axis)", _BatchAxisError)

    # -- graph walk ----------------------------------------------------------------------------
    def run(self, output_name: str) -> None:
        nodes = self._needed_nodes(output_name)
        self._check_chain(nodes)
        self.used = {i for _, n in nodes for i in n.input if i} | {output_name}
        by_index = dict(nodes)
        done: set[int] = set()
        for index, node in nodes:
            if index in done:
                continue
            if index in self.residuals:  # the branch's nodes, and constants between them, in graph order
                path, join = self.residuals[index]
                members = set(path) | {i for i in self.constant_nodes if index < i < join}
                self._residual([(i, by_index[i]) for i in sorted(members - done)], join, by_index[join])
                done.update(members)
                done.add(join)
                continue
            self.node, self.label = node, _label(node, index)
            self._convert(node)
        self.node = None
        if self.pending_pad is not None:
            self.label = self.pending_pad[0]
            raise UnsupportedOnnxError("a non-zero Pad is supported only right before a Conv", node_name=self.label)
        if output_name in self.consts:
            raise UnsupportedOnnxError(f"the graph output {output_name!r} does not depend on the graph input")
        if output_name != self.live:  # pragma: no cover - the chain check rules this out
            raise UnsupportedOnnxError(f"the graph output {output_name!r} is not the end of the chain")
        self.label = "output"
        self._to_layout(tuple(range(len(self.shape))))
        if not self.layers:
            self._emit(Activation(identity))

    def _needed_nodes(self, output_name: str) -> list[tuple[int, onnx.NodeProto]]:
        needed = {output_name}
        keep = []
        for index in range(len(self.graph.node) - 1, -1, -1):
            node = self.graph.node[index]
            if any(o in needed for o in node.output):
                keep.append((index, node))
                needed.update(i for i in node.input if i)
        return keep[::-1]

    def _check_chain(self, nodes: list[tuple[int, onnx.NodeProto]]) -> None:
        """Reject branching graphs up front, at the node where two computed tensors meet.

        One pattern with two computed inputs is accepted: ``Add(x, f(x))`` where ``f`` is a chain
        that only this Add reads and ``x`` is read by nothing else; it becomes a ``Residual``.
        """
        constant = set(self.consts)
        self.constant_nodes: set[int] = set()
        computed_inputs: list[tuple[int, onnx.NodeProto, list[str]]] = []
        for index, node in nodes:
            inputs = [i for i in node.input if i]
            if node.op_type in ("Shape", "Size") or all(i in constant for i in inputs):
                constant.update(node.output)
                self.constant_nodes.add(index)
            else:
                computed_inputs.append((index, node, list(dict.fromkeys(i for i in inputs if i not in constant))))
        producer = {out: (index, computed) for index, node, computed in computed_inputs for out in node.output if out}
        readers: dict[str, list[int]] = {}
        for index, _, computed in computed_inputs:
            for name in computed:
                readers.setdefault(name, []).append(index)
        self.residuals: dict[int, tuple[list[int], int]] = {}
        roots: set[str] = set()
        for index, node, computed in computed_inputs:  # joins first: they name the real cause
            if len(computed) == 2 and node.op_type == "Add" and node.domain in ("", "ai.onnx"):
                found = _residual_path(computed, index, producer, readers)
                if found is not None:
                    root, path = found
                    self.residuals[path[0]] = (path, index)
                    roots.add(root)
                    continue
            if len(computed) > 1:
                self.node, self.label = node, _label(node, index)
                raise self.unsupported(
                    f"takes {len(computed)} computed tensors ({', '.join(map(repr, computed))}); axiom imports "
                    "chains, where every node has at most one input computed from the graph input, and residual "
                    "blocks Add(x, f(x)) whose branch f is a chain read only by that Add"
                )
        for index, node, computed in computed_inputs:
            name = computed[0]
            if len(readers[name]) > 1 and name not in roots:
                first = next(n for i, n, _ in computed_inputs if i == readers[name][0])
                self.node, self.label = node, _label(node, index)
                if index != readers[name][0]:
                    raise self.unsupported(
                        f"reads {name!r}, which node {_label(first, readers[name][0])!r} reads too: the graph "
                        "branches; axiom imports chains (and Add(x, f(x)) residual blocks)"
                    )
        self.node = None

    def _residual(self, path: list[tuple[int, onnx.NodeProto]], join_index: int, join: onnx.NodeProto) -> None:
        """Convert the branch ``f`` of ``Add(x, f(x))`` into its own layers and emit ``Residual(*layers)``."""
        saved = (self.layers, self.in_shapes, self.sources)
        shape, layout, batched = self.shape, self.layout, self.batched
        self.layers, self.in_shapes, self.sources = [], [], []
        for index, node in path:
            self.node, self.label = node, _label(node, index)
            self._convert(node)
        self.node, self.label = join, _label(join, join_index)
        if self.pending_pad is not None:
            raise self.unsupported(f"the residual branch ends in a Pad ({self.pending_pad[0]!r})")
        if self.shape != shape or self.batched != batched:
            raise self.unsupported(
                f"Add(x, f(x)) where f changes the example shape {list(shape)} to {list(self.shape)} (broadcasting "
                "residuals are not supported)"
            )
        self._to_layout(layout)
        inner = self.layers or [Activation(identity)]
        labels = [label for group in self.sources for label in group]
        self.layers, self.in_shapes, self.sources = saved
        self._emit(Residual(*inner), sources=[*dict.fromkeys(labels), self.label])
        self.live = join.output[0]
        self.full_shapes[self.live] = (self._full_shape(), self.batched)

    def _convert(self, node: onnx.NodeProto) -> None:
        if node.domain not in ("", "ai.onnx"):
            raise self.unsupported(f"operators of domain {node.domain!r} are not supported")
        op = node.op_type
        inputs = list(node.input)
        if op == "Constant":
            self.consts[node.output[0]] = self._constant_attr(node)
            return
        if op in ("Shape", "Size") and inputs[0] not in self.consts:
            self._shape_of(node)
            return
        computed = [i for i in inputs if i and i not in self.consts]
        if not computed:
            self._fold(node)
            return
        if computed[0] != self.live:
            raise self.unsupported(f"reads {computed[0]!r}, which is not the current tensor of the chain")
        for position, name in enumerate(inputs):
            if name in self.tainted and not (op == "Reshape" and position == 1):
                raise self.unsupported(f"uses {name!r}, a value computed from the symbolic batch size")
        if self.pending_pad is not None and op != "Conv":
            label = self.pending_pad[0]
            raise UnsupportedOnnxError(
                f"a non-zero Pad is supported only right before a Conv, not before {op} {self.label!r}",
                node_name=label,
                op_type="Pad",
                opset=self.opset,
            )
        handler = getattr(self, f"_op_{op}", None)
        if handler is None:
            raise self.unsupported(
                "no axiom mapping for this operator (supported: " + ", ".join(sorted(SUPPORTED_OPS)) + ")"
            )
        handler(node)
        for extra in node.output[1:]:
            if extra and extra in self.used:
                raise self.unsupported(f"its extra output {extra!r} is used; axiom imports inference graphs only")
        self.live = node.output[0]
        self.full_shapes[self.live] = (self._full_shape(), self.batched)

    # -- constants ----------------------------------------------------------------------------
    def _constant_attr(self, node: onnx.NodeProto) -> np.ndarray:
        attrs = _attrs(node)
        if "value" in attrs:
            return _to_array(attrs["value"])
        for key, dtype in (("value_float", np.float32), ("value_int", np.int64)):
            if key in attrs:
                return np.array(attrs[key], dtype)
        for key, dtype in (("value_floats", np.float32), ("value_ints", np.int64)):
            if key in attrs:
                return np.array(list(attrs[key]), dtype)
        raise self.unsupported(f"Constant with attributes {sorted(attrs)} (sparse or string values) is not supported")

    def _fold(self, node: onnx.NodeProto) -> None:
        """Evaluate a node whose inputs are all constants with onnx's reference evaluator."""
        from onnx.reference import ReferenceEvaluator

        feeds = {i: self.consts[i] for i in node.input if i}
        try:
            results = ReferenceEvaluator(node, opsets={"": self.opset}).run(None, feeds)
        except Exception as err:  # the evaluator raises many types; name the node
            raise self.unsupported(f"cannot fold this constant subgraph: {type(err).__name__}: {err}") from err
        taint = any(i in self.tainted for i in node.input)
        for name, value in zip(node.output, results):
            if name:
                self.consts[name] = np.asarray(value)
                if taint:
                    self.tainted.add(name)

    def _shape_of(self, node: onnx.NodeProto) -> None:
        """Shape/Size of a computed tensor: a constant (a symbolic batch size becomes a tracked sentinel)."""
        if node.input[0] not in self.full_shapes:
            raise self.unsupported(f"reads the shape of {node.input[0]!r}, which this importer does not track")
        full, batched = self.full_shapes[node.input[0]]
        symbolic = batched and self.batch is None
        dims = [(self.batch or _SENTINEL) if d == _BATCH else d for d in full]
        if node.op_type == "Size":
            value, taint = np.array(math.prod(dims), np.int64), symbolic
        else:
            attrs = _attrs(node)
            sl = slice(attrs.get("start", 0), attrs.get("end", len(dims)))
            value = np.array(dims[sl], np.int64)
            taint = symbolic and 0 in range(len(dims))[sl]
        self.consts[node.output[0]] = value
        if taint:
            self.tainted.add(node.output[0])

    def const(self, name: str, what: str) -> np.ndarray:
        if name not in self.consts:
            raise self.unsupported(f"its {what} {name!r} must be a constant (an initializer or Constant)")
        return self.consts[name]

    def optional_const(self, node: onnx.NodeProto, position: int, what: str) -> np.ndarray | None:
        if len(node.input) <= position or not node.input[position]:
            return None
        return self.const(node.input[position], what)

    def cast(self, value: np.ndarray) -> np.ndarray:
        return np.ascontiguousarray(value, dtype=self.dtype)

    # -- emitting layers ----------------------------------------------------------------------
    def runtime_shape(self) -> tuple[int, ...]:
        return tuple(self.shape[a] for a in self.layout)

    def _emit(self, layer: Layer, in_shape: tuple[int, ...] | None = None, sources: list[str] | None = None) -> None:
        self.layers.append(layer)
        self.in_shapes.append(self.runtime_shape() if in_shape is None else in_shape)
        self.sources.append([self.label] if sources is None else sources)

    def _pop(self) -> tuple[Layer, tuple[int, ...], list[str]]:
        return self.layers.pop(), self.in_shapes.pop(), self.sources.pop()

    def _last(self) -> Layer | None:
        return self.layers[-1] if self.layers else None

    def _emit_reshape(self, new_runtime: tuple[int, ...]) -> None:
        current = self.runtime_shape()
        if new_runtime == current:
            return
        sources = [self.label]
        if isinstance(self._last(), Reshape | Flatten):  # two reshapes in a row: keep one
            _, current, old = self._pop()
            sources = old + sources
            if new_runtime == current:
                return
        self._emit(Flatten() if len(new_runtime) == 1 else Reshape(new_runtime), current, sources)

    def _emit_permute(self, perm: tuple[int, ...]) -> None:
        current = self.runtime_shape()
        sources = [self.label]
        last = self._last()
        if isinstance(last, Permute):  # two permutes in a row: compose them
            _, current, old = self._pop()
            perm = tuple(last.dims[p] for p in perm)
            sources = old + sources
        if not _is_identity(perm):
            self._emit(Permute(perm), current, sources)

    def _to_layout(self, target: tuple[int, ...]) -> None:
        """Make the runtime tensor ``onnx_example.transpose(target)`` (a Permute, or a Reshape if order allows)."""
        if target == self.layout:
            return
        inv = _inverse(self.layout)
        perm = tuple(inv[t] for t in target)
        runtime = self.runtime_shape()
        moved = [p for p in perm if runtime[p] != 1]
        if moved == sorted(moved):  # only size-1 axes move: the element order is unchanged
            self._emit_reshape(tuple(runtime[p] for p in perm))
        else:
            self._emit_permute(perm)
        self.layout = target

    def _channels_last(self) -> tuple[int, ...]:
        rank = len(self.shape)
        return tuple(range(1, rank)) + (0,) if rank > 1 else (0,)

    def _set_example_shape(self, new: Sequence[int]) -> None:
        new = tuple(int(d) for d in new)
        if new == self.shape:
            return
        self._to_layout(tuple(range(len(self.shape))))
        self._emit_reshape(new)
        self.shape, self.layout = new, tuple(range(len(new)))

    def _dense(self, weight: np.ndarray, bias: np.ndarray | None, sources: list[str] | None = None) -> Dense:
        k, n = weight.shape
        layer = Dense(int(k), int(n), bias=bias is not None, dtype=self.dtype)
        layer.weight.data = self.cast(weight)  # type: ignore[union-attr]
        if bias is not None:
            layer.bias.data = self.cast(np.broadcast_to(bias, (n,)))  # type: ignore[union-attr]
        return layer

    # -- element-wise affine ----------------------------------------------------------------------
    def _example_constant(self, c: np.ndarray) -> np.ndarray:
        """An ONNX constant broadcast against the running tensor, as a per-example runtime-layout array."""
        c = np.asarray(c, np.float64)
        full_rank = len(self.shape) + self.batched
        if c.ndim > full_rank:  # broadcasting adds leading axes to the result
            extra = c.shape[: c.ndim - full_rank]
            if any(d != 1 for d in extra):
                raise self.unsupported(f"a constant of shape {list(c.shape)} would expand the tensor")
            if self.batched:
                raise self.batch_error(f"a constant of shape {list(c.shape)} adds axes before the batch axis")
            self._set_example_shape((1,) * len(extra) + self.shape)
            full_rank = c.ndim
        if self.batched and c.ndim == full_rank:
            if c.shape[0] != 1:
                raise self.batch_error(f"a constant of shape {list(c.shape)} differs per example")
            c = c[0]
        for cd, xd in zip(reversed(c.shape), reversed(self.shape)):
            if cd not in (1, xd):
                raise self.unsupported(
                    f"a constant of shape {list(c.shape)} does not broadcast to the example shape {list(self.shape)} "
                    "without changing it"
                )
        if c.size == 1:
            return c.reshape(())
        return c.reshape((1,) * (len(self.shape) - c.ndim) + c.shape).transpose(self.layout)

    def _affine(self, scale: np.ndarray | float | None, shift: np.ndarray | float | None) -> None:
        last = self._last()
        if scale is None and shift is not None and self._fold_bias(np.asarray(shift, np.float64)):
            return
        s = np.asarray(1.0 if scale is None else scale, np.float64)
        t = np.asarray(0.0 if shift is None else shift, np.float64)
        sources = [self.label]
        current = self.runtime_shape()
        if isinstance(last, Affine):  # (x*s1 + t1)*s + t
            _, current, old = self._pop()
            s1, t1 = last.scale.data.astype(np.float64), last.shift.data.astype(np.float64)
            s, t = s1 * s, t1 * s + t
            sources = old + sources
        if np.all(s == 1.0) and np.all(t == 0.0):
            return
        s = s.reshape(()) if s.size == 1 else s
        t = t.reshape(()) if t.size == 1 else t
        self._emit(Affine(scale=s, shift=t, dtype=self.dtype), current, sources)

    def _fold_bias(self, shift: np.ndarray) -> bool:
        """Add ``shift`` to the bias of the Dense/Conv2d that produced the running tensor, if it is per channel."""
        last = self._last()
        if isinstance(last, Dense) and last.activation is None:
            channels = last.out_features
        elif type(last) is Conv2d and last.activation is None:
            channels = last.out_channels
            if shift.ndim == 3 and shift.shape[:2] == (1, 1):
                shift = shift[0, 0]
        else:
            return False
        if shift.ndim > 1 or shift.size not in (1, channels):
            return False
        old_bias = np.zeros(channels) if last.bias is None else last.bias.data.astype(np.float64)
        bias = old_bias + np.broadcast_to(shift.reshape(-1) if shift.ndim else shift, (channels,))
        _, current, sources = self._pop()
        if last.bias is None:  # rebuild with a bias parameter
            if isinstance(last, Dense):
                layer: Layer = self._dense(last.weight.data, bias)
            else:
                layer = _conv_like(last, bias=True, dtype=self.dtype)
                layer.weight.data = last.weight.data  # type: ignore[union-attr]
        else:
            layer = last
        layer.bias.data = self.cast(bias)  # type: ignore[union-attr]
        self._emit(layer, current, sources + [self.label])
        return True

    def _binary(self, node: onnx.NodeProto) -> None:
        a, b = node.input[0], node.input[1]
        if a == b and node.op_type == "Add":  # x + x
            self._affine(2.0, None)
            return
        first = a == self.live
        c = self._example_constant(self.const(b if first else a, "other operand"))
        op = node.op_type
        if op == "Add":
            self._affine(None, c)
        elif op == "Sub":
            self._affine(None, -c) if first else self._affine(-1.0, c)
        elif op == "Mul":
            self._affine(c, None)
        else:  # Div
            if not first:
                raise self.unsupported("constant / x is not an affine function of x")
            if np.any(c == 0):
                raise self.unsupported("division by a constant that contains 0")
            self._affine(1.0 / c, None)

    _op_Add = _op_Sub = _op_Mul = _op_Div = _binary

    def _op_Neg(self, node: onnx.NodeProto) -> None:
        self._affine(-1.0, None)

    # -- no-ops -------------------------------------------------------------------------------------
    def _op_Identity(self, node: onnx.NodeProto) -> None:
        pass

    def _op_Dropout(self, node: onnx.NodeProto) -> None:
        training = self.optional_const(node, 2, "training_mode")
        if training is not None and bool(np.asarray(training).item()):
            raise self.unsupported("Dropout with training_mode=True; axiom imports inference graphs")

    def _op_Cast(self, node: onnx.NodeProto) -> None:
        to = _attrs(node).get("to")
        if _FLOAT_TYPES.get(to) != self.dtype:
            name = _onnx().TensorProto.DataType.Name(to) if to is not None else "?"
            raise self.unsupported(f"Cast to {name} of a {self.dtype.name} tensor changes its type")

    # -- activations --------------------------------------------------------------------------------
    def _op_Relu(self, node: onnx.NodeProto) -> None:
        self._emit(ReLU())

    def _op_Sigmoid(self, node: onnx.NodeProto) -> None:
        self._emit(Sigmoid())

    def _op_Tanh(self, node: onnx.NodeProto) -> None:
        self._emit(Tanh())

    def _op_Softplus(self, node: onnx.NodeProto) -> None:
        self._emit(Softplus())

    def _op_Softsign(self, node: onnx.NodeProto) -> None:
        self._emit(Softsign())

    def _op_LeakyRelu(self, node: onnx.NodeProto) -> None:
        self._emit(LeakyReLU(float(_attrs(node).get("alpha", 0.01))))

    def _op_Elu(self, node: onnx.NodeProto) -> None:
        self._emit(ELU(float(_attrs(node).get("alpha", 1.0))))

    def _op_Selu(self, node: onnx.NodeProto) -> None:
        attrs = _attrs(node)
        alpha, gamma = attrs.get("alpha", _SELU_ALPHA), attrs.get("gamma", _SELU_GAMMA)
        if not (np.isclose(alpha, _SELU_ALPHA, rtol=1e-6) and np.isclose(gamma, _SELU_GAMMA, rtol=1e-6)):
            raise self.unsupported(f"Selu with alpha={alpha}, gamma={gamma} (only the standard constants)")
        self._emit(SELU())

    def _op_HardSwish(self, node: onnx.NodeProto) -> None:
        self._emit(Hardswish())

    def _op_Gather(self, node: onnx.NodeProto) -> None:
        if self.live != self.input_name or node.input[1] != self.live:  # checked up front: cannot happen
            raise self.unsupported("Gather is imported only as an Embedding lookup of the integer graph input")
        table = self.consts[node.input[0]]
        layer = Embedding(int(table.shape[0]), int(table.shape[1]), dtype=self.dtype)
        with no_grad():
            layer.weight.data = np.ascontiguousarray(table, dtype=self.dtype)
        self._emit(layer)
        self.shape = (*self.shape, int(table.shape[1]))
        self.layout = tuple(range(len(self.shape)))

    def _op_AxiomSilu(self, node: onnx.NodeProto) -> None:  # Mul(x, Sigmoid(x)), fused by _onnx_patterns
        self._emit(SiLU())

    def _op_Mish(self, node: onnx.NodeProto) -> None:
        self._emit(Mish())

    def _op_HardSigmoid(self, node: onnx.NodeProto) -> None:
        attrs = _attrs(node)
        alpha, beta = float(attrs.get("alpha", 0.2)), float(attrs.get("beta", 0.5))
        if not (np.isclose(alpha, 1.0 / 6.0, rtol=1e-6) and beta == 0.5):
            raise self.unsupported(f"HardSigmoid with alpha={alpha}, beta={beta} (only alpha=1/6, beta=0.5)")
        self._emit(Hardsigmoid())

    def _op_Gelu(self, node: onnx.NodeProto) -> None:
        approximate = _attrs(node).get("approximate", "none")
        if approximate not in ("none", "tanh"):
            raise self.unsupported(f"Gelu with approximate={approximate!r}")
        self._emit(GELU(approximate=approximate))

    def _op_LayerNormalization(self, node: onnx.NodeProto) -> None:
        attrs = _attrs(node)
        rank = len(self.shape) + self.batched
        axis = int(attrs.get("axis", -1))
        if not -rank <= axis < rank:
            raise self.unsupported(f"axis {axis} is out of range for rank {rank}")
        axis %= rank
        if self.batched and axis == 0:
            raise self.batch_error("a LayerNormalization over axis 0")
        ns = self.shape[axis - self.batched :]
        scale = np.broadcast_to(np.asarray(self.const(node.input[1], "Scale"), np.float64), ns)
        bias = self.optional_const(node, 2, "B")
        self._to_layout(tuple(range(len(self.shape))))
        layer = LayerNorm(ns, eps=float(attrs.get("epsilon", 1e-5)), bias=bias is not None, dtype=self.dtype)
        layer.weight.data = self.cast(scale)  # type: ignore[union-attr]
        if bias is not None:
            layer.bias.data = self.cast(np.broadcast_to(np.asarray(bias, np.float64), ns))  # type: ignore[union-attr]
        self._emit(layer)

    def _op_Clip(self, node: onnx.NodeProto) -> None:
        if self.opset < 11:
            attrs = _attrs(node)
            lo, hi = attrs.get("min"), attrs.get("max")
        else:
            lo_arr, hi_arr = self.optional_const(node, 1, "min"), self.optional_const(node, 2, "max")
            lo = None if lo_arr is None else float(lo_arr)
            hi = None if hi_arr is None else float(hi_arr)
        big = float(np.finfo(np.float32).max)
        hi = None if hi is None or hi >= big else hi
        if lo == 0.0 and hi is None:
            self._emit(ReLU())
        elif lo == 0.0 and hi == 6.0:
            self._emit(ReLU6())
        else:
            raise self.unsupported(f"Clip to [{lo}, {hi}]: only [0, inf) (ReLU) and [0, 6] (ReLU6) have a layer")

    def _softmax(self, node: onnx.NodeProto, cls: type[Softmax] | type[LogSoftmax]) -> None:
        rank = len(self.shape) + self.batched
        axis = int(_attrs(node).get("axis", 1 if self.opset < 13 else -1))
        if not -rank <= axis < rank:
            raise self.unsupported(f"axis {axis} is out of range for rank {rank}")
        axis %= rank
        if self.batched and axis == 0:
            raise self.batch_error("a softmax over axis 0")
        ex_axis = axis - self.batched
        if self.opset < 13 and math.prod(self.shape[ex_axis + 1 :]) != 1:
            # Before opset 13 the input is coerced to 2-D: one softmax over axes axis..end together.
            original = self.shape
            self._set_example_shape(self.shape[:ex_axis] + (math.prod(self.shape[ex_axis:]),))
            self._emit(cls(axis=-1))
            self._set_example_shape(original)
            return
        self._emit(cls(axis=1 + self.layout.index(ex_axis)))

    def _op_Softmax(self, node: onnx.NodeProto) -> None:
        self._softmax(node, Softmax)

    def _op_LogSoftmax(self, node: onnx.NodeProto) -> None:
        self._softmax(node, LogSoftmax)

    # -- dense ----------------------------------------------------------------------------------------
    def _op_MatMul(self, node: onnx.NodeProto) -> None:
        a, b = node.input
        if a == self.live:
            w = np.asarray(self.const(b, "weight"))
            if w.ndim != 2:
                raise self.unsupported(f"x @ W with W of shape {list(w.shape)}: only 2-D weights map onto Dense")
        else:
            wt = np.asarray(self.const(a, "weight"))
            if self.batched:
                raise self.batch_error("W @ x on a batched tensor")
            if wt.ndim != 2:
                raise self.unsupported(f"W @ x with W of shape {list(wt.shape)}: only 2-D weights map onto Dense")
            w = wt.T
        if len(self.shape) != 1:
            full = [_BATCH, *self.shape] if self.batched else list(self.shape)
            raise self.unsupported(
                f"MatMul on a tensor of shape {full}: axiom's Dense takes (batch, features) (Flatten first)"
            )
        if self.shape[0] != w.shape[0]:
            raise self.unsupported(f"x has {self.shape[0]} features but W has shape {list(w.shape)}")
        self._emit(self._dense(w, None))
        self.shape, self.layout = (int(w.shape[1]),), (0,)

    def _op_Gemm(self, node: onnx.NodeProto) -> None:
        attrs = _attrs(node)
        alpha, beta = float(attrs.get("alpha", 1.0)), float(attrs.get("beta", 1.0))
        if node.input[0] != self.live:
            raise self.batch_error("Gemm with a constant A and a computed B")
        if attrs.get("transA", 0):
            raise self.batch_error("Gemm with transA=1 on a computed A")
        if not self.batched or len(self.shape) != 1:
            raise self.unsupported("Gemm needs a (batch, features) input")
        w = np.asarray(self.const(node.input[1], "B"), np.float64)
        w = w.T if attrs.get("transB", 0) else w
        if w.ndim != 2 or w.shape[0] != self.shape[0]:
            raise self.unsupported(f"A has {self.shape[0]} features but B' has shape {list(w.shape)}")
        n = w.shape[1]
        c = self.optional_const(node, 2, "C")
        bias = None
        if c is not None and beta != 0.0:
            c = np.asarray(c, np.float64)
            while c.ndim > 1:
                if c.shape[0] != 1:
                    raise self.batch_error(f"a bias C of shape {list(c.shape)} differs per example")
                c = c[0]
            if c.size not in (1, n):
                raise self.unsupported(f"bias C of shape {list(c.shape)} does not broadcast to ({n},)")
            bias = beta * np.broadcast_to(c.reshape(-1) if c.ndim else c, (n,))
        self._emit(self._dense(alpha * w if alpha != 1.0 else w, bias))
        self.shape, self.layout = (int(n),), (0,)

    # -- shapes ----------------------------------------------------------------------------------------
    def _reshape_full(self, target: list[Any]) -> None:
        """Reshape to a full ONNX shape (``_BATCH`` marks the batch axis; one ``-1`` may be inferred)."""
        size = math.prod(self.shape)
        if self.batched:
            if target and target[0] == _BATCH:
                rest = target[1:]
            elif target and target[0] == -1 and -1 not in target[1:] and _BATCH not in target[1:]:
                if math.prod(target[1:]) != size:
                    raise self.batch_error(f"reshaping {[_BATCH, *self.shape]} to {target}")
                rest = target[1:]
            elif target and self.batch is not None and target[0] == self.batch:
                rest = target[1:]
            elif self.batch == 1:  # the whole tensor is one example: the result has no batch axis
                rest, self.batched = target, False
            else:
                raise self.batch_error(f"reshaping {[_BATCH, *self.shape]} to {target}")
        else:
            rest = target
        if _BATCH in rest:
            raise self.batch_error(f"moving the batch axis (target {target})")
        known = math.prod(int(d) for d in rest if d != -1)
        if rest.count(-1) > 1 or any(d != -1 and int(d) < 0 for d in rest):
            raise self.unsupported(f"invalid target shape {target}")
        if -1 in rest:
            if known == 0 or size % known:
                raise self.unsupported(f"cannot reshape {list(self.shape)} per example to {target}")
            rest = [size // known if d == -1 else d for d in rest]
        if math.prod(rest) != size:
            raise self.unsupported(f"cannot reshape {list(self.shape)} per example to {target}")
        self._set_example_shape(rest)

    def _full_shape(self) -> list[Any]:
        return ([_BATCH] if self.batched else []) + list(self.shape)

    def _concrete_batch(self, full: list[Any]) -> list[Any]:
        """The batch marker replaced by the fixed batch size 1 (``full`` moved the batch axis), or raise."""
        if self.batch != 1:
            raise self.batch_error("moving or removing the batch axis")
        return [1 if d == _BATCH else d for d in full]

    def _op_Reshape(self, node: onnx.NodeProto) -> None:
        attrs = _attrs(node)
        if len(node.input) > 1 and node.input[1]:
            raw = [int(v) for v in np.asarray(self.const(node.input[1], "shape")).reshape(-1)]
            taint = node.input[1] in self.tainted
        else:
            raw, taint = list(attrs.get("shape", [])), False
        full_in = self._full_shape()
        target: list[Any] = []
        for i, t in enumerate(raw):
            if t == 0 and not attrs.get("allowzero", 0):
                if i >= len(full_in):
                    raise self.unsupported(f"shape entry {i} is 0 (copy) but the input has rank {len(full_in)}")
                target.append(full_in[i])
            elif taint and t == _SENTINEL:
                target.append(_BATCH)
            elif taint and t % _SENTINEL == 0 and t != 0:
                raise self.batch_error(f"a target shape computed from the batch size ({t // _SENTINEL} x batch)")
            else:
                target.append(t)
        self._reshape_full(target)

    def _op_Flatten(self, node: onnx.NodeProto) -> None:
        full = self._full_shape()
        axis = int(_attrs(node).get("axis", 1))
        if not -len(full) <= axis <= len(full):
            raise self.unsupported(f"axis {axis} is out of range for rank {len(full)}")
        if axis < 0:
            axis += len(full)
        if self.batched and axis >= 1 and math.prod(self.shape[: axis - 1]) == 1:
            self._reshape_full([_BATCH, math.prod(self.shape[axis - 1 :])])
            return
        if self.batched:
            full = self._concrete_batch(full)
        self._reshape_full([math.prod(full[:axis]), math.prod(full[axis:])])

    def _axes(self, node: onnx.NodeProto, rank: int) -> list[int] | None:
        attrs = _attrs(node)
        if self.opset < 13:
            axes = attrs.get("axes")
        else:
            arr = self.optional_const(node, 1, "axes")
            axes = None if arr is None else [int(a) for a in np.asarray(arr).reshape(-1)]
        if axes is None:
            return None
        if any(not -rank <= a < rank for a in axes):
            raise self.unsupported(f"axes {list(axes)} out of range for rank {rank}")
        return sorted(a % rank for a in axes)

    def _op_Squeeze(self, node: onnx.NodeProto) -> None:
        full = self._full_shape()
        axes = self._axes(node, len(full))
        if axes is None:  # every size-1 axis, the batch axis too when its fixed size is 1
            axes = [i for i, d in enumerate(full) if (self.batch if d == _BATCH else d) == 1]
        if any(full[a] not in (1, _BATCH) for a in axes):
            raise self.unsupported(f"squeezing axes {axes} of shape {full}, not all of size 1")
        out = [d for i, d in enumerate(full) if i not in axes]
        if self.batched and 0 in axes:
            out = self._concrete_batch(out)
        self._reshape_full(out)

    def _op_Unsqueeze(self, node: onnx.NodeProto) -> None:
        full = self._full_shape()
        axes = self._axes(node, len(full) + self._unsqueeze_count(node))
        if axes is None:
            raise self.unsupported("Unsqueeze without axes")
        rest = iter(full)
        out = [1 if i in axes else next(rest) for i in range(len(full) + len(axes))]
        if self.batched and out[0] != _BATCH:
            out = self._concrete_batch(out)
        self._reshape_full(out)

    def _unsqueeze_count(self, node: onnx.NodeProto) -> int:
        if self.opset < 13:
            return len(_attrs(node).get("axes", []))
        arr = self.optional_const(node, 1, "axes")
        return 0 if arr is None else int(np.asarray(arr).size)

    def _op_Transpose(self, node: onnx.NodeProto) -> None:
        full_rank = len(self.shape) + self.batched
        perm = [int(p) for p in _attrs(node).get("perm", range(full_rank - 1, -1, -1))]
        if sorted(perm) != list(range(full_rank)):
            raise self.unsupported(f"perm {perm} is not a permutation of rank {full_rank}")
        if self.batched:
            if perm[0] != 0:
                raise self.batch_error(f"Transpose with perm {perm} moves the batch axis")
            perm = [p - 1 for p in perm[1:]]
        inv = _inverse(perm)
        self.shape = tuple(self.shape[p] for p in perm)
        self.layout = tuple(inv[a] for a in self.layout)

    # -- images -----------------------------------------------------------------------------------------
    def _require_image(self) -> tuple[int, int, int]:
        if not self.batched or len(self.shape) != 3:
            full = self._full_shape()
            raise self.unsupported(f"expects an (N, C, H, W) tensor, got shape {full} (only 2-D images are supported)")
        c, h, w = self.shape
        return c, h, w

    def _window_pads(
        self, size: tuple[int, int], kernel: Sequence[int], stride: Sequence[int], dilation: Sequence[int]
    ) -> tuple[tuple[int, int], tuple[int, int]]:
        attrs = _attrs(self.node)  # type: ignore[arg-type]
        auto_pad = attrs.get("auto_pad", "NOTSET") or "NOTSET"
        if auto_pad == "NOTSET":
            pads = [int(p) for p in attrs.get("pads", [0, 0, 0, 0])]
            if len(pads) != 4 or min(pads) < 0:
                raise self.unsupported(f"pads {pads}: expected 4 non-negative values [top, left, bottom, right]")
            return (pads[0], pads[2]), (pads[1], pads[3])
        if auto_pad == "VALID":
            return (0, 0), (0, 0)
        if auto_pad not in ("SAME_UPPER", "SAME_LOWER"):
            raise self.unsupported(f"auto_pad={auto_pad!r}")
        out = []
        for n, k, s, d in zip(size, kernel, stride, dilation):
            total = max(0, (-(-n // s) - 1) * s + (k - 1) * d + 1 - n)
            small, big = total // 2, total - total // 2
            out.append((small, big) if auto_pad == "SAME_UPPER" else (big, small))
        return out[0], out[1]

    def _window(self, node: onnx.NodeProto, kernel: Sequence[int] | None) -> tuple[Any, ...]:
        attrs = _attrs(node)
        kernel = [int(k) for k in attrs.get("kernel_shape", kernel or [])]
        stride = [int(s) for s in attrs.get("strides", [1, 1])]
        dilation = [int(d) for d in attrs.get("dilations", [1, 1])]
        for name, v in (("kernel_shape", kernel), ("strides", stride), ("dilations", dilation)):
            if len(v) != 2 or min(v) < 1:
                raise self.unsupported(f"{name}={v}: expected two positive values (2-D windows only)")
        return kernel, stride, dilation

    def _op_Conv(self, node: onnx.NodeProto) -> None:
        c, h, w_in = self._require_image()
        weight = np.asarray(self.const(node.input[1], "weight W"))
        bias = self.optional_const(node, 2, "bias B")
        if weight.ndim != 4:
            raise self.unsupported(f"weight of shape {list(weight.shape)}: only 2-D convolutions are supported")
        kernel, stride, dilation = self._window(node, list(weight.shape[2:]))
        if list(weight.shape[2:]) != kernel:
            raise self.unsupported(f"kernel_shape {kernel} does not match the weight shape {list(weight.shape)}")
        group = int(_attrs(node).get("group", 1))
        c_out = int(weight.shape[0])
        if weight.shape[1] * group != c or c_out % group:
            raise self.unsupported(f"{c} input channels do not match weight {list(weight.shape)} with group={group}")
        pre = ((0, 0), (0, 0))
        if self.pending_pad is not None:
            pre = self.pending_pad[1]
        hp, wp = h + sum(pre[0]), w_in + sum(pre[1])
        own = self._window_pads((hp, wp), kernel, stride, dilation)
        pads = tuple((pre[i][0] + own[i][0], pre[i][1] + own[i][1]) for i in range(2))
        out_hw = []
        for n, (before, after), k, s, d in zip((h, w_in), pads, kernel, stride, dilation):
            span = (k - 1) * d + 1
            if n + before + after < span:
                raise self.unsupported(f"the kernel (span {span}) is larger than the padded input {n + before + after}")
            out_hw.append((n + before + after - span) // s + 1)
        self._to_layout((1, 2, 0))
        layer = Conv2d(
            c,
            c_out,
            tuple(kernel),
            stride=tuple(stride),
            padding=pads,
            dilation=tuple(dilation),
            groups=group,
            bias=bias is not None,
            dtype=self.dtype,
        )
        layer.weight.data = self.cast(weight.transpose(2, 3, 1, 0))  # type: ignore[union-attr]
        if bias is not None:
            layer.bias.data = self.cast(np.asarray(bias).reshape(c_out))  # type: ignore[union-attr]
        sources = None
        if self.pending_pad is not None:
            sources = [self.pending_pad[0], self.label]
            self.pending_pad = None
        self._emit(layer, sources=sources)
        self.shape = (c_out, out_hw[0], out_hw[1])

    def _pool(self, node: onnx.NodeProto) -> tuple[Any, ...]:
        """Window arguments of MaxPool/AveragePool, the runtime input shape; moves to NHWC and updates the shape."""
        c, h, w = self._require_image()
        kernel, stride, dilation = self._window(node, None)
        pads = self._window_pads((h, w), kernel, stride, dilation)
        ceil_mode = int(_attrs(node).get("ceil_mode", 0))
        out_hw = []
        for axis, (n, (before, after), k, s, d) in enumerate(zip((h, w), pads, kernel, stride, dilation)):
            if before != after or before > k // 2:
                raise self.unsupported(
                    f"pads {before}, {after} along {'HW'[axis]}: axiom's pooling layers take symmetric padding of at "
                    f"most half the kernel ({k // 2})"
                )
            span = (k - 1) * d + 1
            if n + 2 * before < span:
                raise self.unsupported(f"the window (span {span}) is larger than the padded input {n + 2 * before}")
            floor_out = (n + 2 * before - span) // s + 1
            if ceil_mode and -(-(n + 2 * before - span) // s) + 1 != floor_out:
                raise self.unsupported("ceil_mode=1 changes the output size here; axiom pools with floor (ceil_mode=0)")
            out_hw.append(floor_out)
        self._to_layout((1, 2, 0))
        in_shape = self.runtime_shape()
        self.shape = (c, out_hw[0], out_hw[1])
        return tuple(kernel), tuple(stride), (pads[0][0], pads[1][0]), tuple(dilation), in_shape

    def _op_MaxPool(self, node: onnx.NodeProto) -> None:
        kernel, stride, padding, dilation, in_shape = self._pool(node)
        self._emit(MaxPool2d(kernel, stride, padding, dilation), in_shape)

    def _op_AveragePool(self, node: onnx.NodeProto) -> None:
        attrs = _attrs(node)
        if any(int(d) != 1 for d in attrs.get("dilations", [1, 1])):
            raise self.unsupported("AveragePool with dilations is not supported")
        include = bool(attrs.get("count_include_pad", 0))
        kernel, stride, padding, _, in_shape = self._pool(node)
        self._emit(AvgPool2d(kernel, stride, padding, count_include_pad=include), in_shape)

    def _op_GlobalAveragePool(self, node: onnx.NodeProto) -> None:
        c, h, w = self._require_image()
        self._to_layout((1, 2, 0))
        self._emit(GlobalAvgPool())
        self.shape, self.layout = (c,), (0,)
        self._emit_reshape((1, 1, c))
        self.shape, self.layout = (c, 1, 1), (1, 2, 0)

    def _op_Pad(self, node: onnx.NodeProto) -> None:
        attrs = _attrs(node)
        rank = len(self.shape) + self.batched
        if self.opset < 11:
            pads = [int(p) for p in attrs.get("pads", [])]
            value = float(attrs.get("value", 0.0))
        else:
            pads = [int(p) for p in np.asarray(self.const(node.input[1], "pads")).reshape(-1)]
            cv = self.optional_const(node, 2, "constant_value")
            value = 0.0 if cv is None else float(np.asarray(cv).reshape(-1)[0])
            axes_arr = self.optional_const(node, 3, "axes")
            if axes_arr is not None:
                axes = [int(a) % rank for a in np.asarray(axes_arr).reshape(-1)]
                full = [0] * (2 * rank)
                for j, a in enumerate(axes):
                    full[a], full[rank + a] = pads[j], pads[len(axes) + j]
                pads = full
        if len(pads) != 2 * rank:
            raise self.unsupported(f"pads {pads} do not match rank {rank}")
        if not any(pads):
            return
        mode = attrs.get("mode", "constant")
        if mode != "constant" or value != 0.0:
            raise self.unsupported(f"Pad mode={mode!r} value={value}: only zero constant padding before a Conv")
        self._require_image()
        begins, ends = pads[:rank], pads[rank:]
        if any(begins[:2]) or any(ends[:2]) or min(pads) < 0:
            raise self.unsupported(f"pads {pads}: only non-negative padding of H and W is supported")
        self.pending_pad = (self.label, ((begins[2], ends[2]), (begins[3], ends[3])))

    def _op_BatchNormalization(self, node: onnx.NodeProto) -> None:
        attrs = _attrs(node)
        if self.opset < 9 and attrs.get("spatial", 1) != 1:
            raise self.unsupported("spatial=0 (per-activation statistics) is not supported")
        if attrs.get("training_mode", 0):
            raise self.unsupported("training_mode=1; axiom imports inference graphs (running statistics)")
        if not self.batched or not self.shape:
            raise self.unsupported("BatchNormalization needs an (N, C, ...) input")
        scale, bias, mean, var = (
            self.const(node.input[i], what) for i, what in ((1, "scale"), (2, "B"), (3, "mean"), (4, "var"))
        )
        channels = self.shape[0]
        for what, arr in (("scale", scale), ("B", bias), ("mean", mean), ("var", var)):
            if np.asarray(arr).size != channels:
                raise self.unsupported(f"{what} has shape {list(np.shape(arr))}, expected ({channels},)")
        self._to_layout(self._channels_last())
        layer = BatchNorm(channels, eps=float(attrs.get("epsilon", 1e-5)), dtype=self.dtype)
        layer.weight.data = self.cast(np.reshape(scale, -1))  # type: ignore[union-attr]
        layer.bias.data = self.cast(np.reshape(bias, -1))  # type: ignore[union-attr]
        layer.running_mean.data = self.cast(np.reshape(mean, -1))  # type: ignore[union-attr]
        layer.running_var.data = self.cast(np.reshape(var, -1))  # type: ignore[union-attr]
        self._emit(layer)


def _residual_path(
    computed: list[str], join: int, producer: dict[str, tuple[int, list[str]]], readers: dict[str, list[int]]
) -> tuple[str, list[int]] | None:
    """For a join ``Add(a, b)``: ``(x, indexes of f's nodes in order)`` if one input is ``f(x)`` of the other."""
    for root, tip in ((computed[0], computed[1]), (computed[1], computed[0])):
        path: list[int] = []
        name, reader = tip, join
        while name != root:
            if name not in producer or readers.get(name) != [reader]:
                break
            index, inputs = producer[name]
            if len(inputs) != 1:
                break
            path.append(index)
            name, reader = inputs[0], index
        else:
            if path and sorted(readers.get(root, [])) == sorted([path[-1], join]):
                return root, path[::-1]
    return None


def _conv_like(conv: Conv2d, *, bias: bool, dtype: np.dtype) -> Conv2d:
    return Conv2d(
        conv.in_channels,  # type: ignore[arg-type]
        conv.out_channels,  # type: ignore[arg-type]
        conv.kernel_size,
        stride=conv.stride,
        padding=conv.padding,
        dilation=conv.dilation,
        groups=conv.groups,  # type: ignore[arg-type]
        bias=bias,
        dtype=dtype,
    )


class OnnxModel:
    """An imported ONNX model: the axiom ``Sequential`` (``.model``) plus what ties it to the ONNX file.

    ``.model`` is a plain :class:`~axiom.nn.Sequential` taking ``(batch, *input_shape)`` in the
    ONNX input's own layout and returning ``(batch, *output_shape)`` in ONNX's element order: pass
    it to ``verify``, ``compile`` or ``state_dict``. The VNN-LIB variable ``X_i`` is element ``i``
    of one example flattened row-major, ``Y_j`` element ``j`` of its output flattened.

    Attributes: ``input_name``, ``output_name``, ``input_shape`` / ``output_shape`` (one example,
    the ONNX batch axis removed when there is one), ``input_batched`` / ``output_batched`` (whether
    the ONNX tensors have that batch axis), ``onnx_input_dims`` (the declared ONNX input dims,
    e.g. ``(1, 1, 28, 28)`` or ``('N', 784)``), ``opset``, ``dtype``, ``ops`` (the ONNX operator
    types of the graph, in order), ``layer_sources`` (for each axiom layer, the ONNX nodes it
    came from) and ``onnx_model`` (the ``onnx.ModelProto``).

    Calling it runs ``.model`` on ``x`` shaped like the ONNX input (any batch size), like one
    example without the batch axis, or flat (``(input_size,)`` or ``(batch, input_size)``), and
    returns a NumPy array shaped like ONNX's output (batch axis ``batch``).
    :meth:`run_onnxruntime` runs the original file the same way for comparison.

    Example:
        >>> import numpy as np
        >>> from onnx import TensorProto, helper, numpy_helper
        >>> graph = helper.make_graph(
        ...     [helper.make_node("Sub", ["x", "m"], ["y"], name="norm"),
        ...      helper.make_node("Flatten", ["y"], ["z"])], "g",
        ...     [helper.make_tensor_value_info("x", TensorProto.FLOAT, [1, 2, 1, 2])],
        ...     [helper.make_tensor_value_info("z", TensorProto.FLOAT, [1, 4])],
        ...     [numpy_helper.from_array(np.array([1.0, 2.0], np.float32).reshape(1, 2, 1, 1), "m")])
        >>> net = from_onnx(helper.make_model(graph, opset_imports=[helper.make_opsetid("", 11)]))
        >>> net.input_shape, net.output_shape, net.input_size
        ((2, 1, 2), (4,), 4)
        >>> net(np.arange(8, dtype=np.float32).reshape(2, 2, 1, 2)).tolist()
        [[-1.0, 0.0, 0.0, 1.0], [3.0, 4.0, 4.0, 5.0]]
        >>> net.ops, net.layer_sources
        (('Sub', 'Flatten'), [('norm',), ("#1 -> 'z'",)])
    """

    def __init__(
        self,
        model: Sequential,
        *,
        onnx_model: onnx.ModelProto,
        input_name: str,
        output_name: str,
        input_shape: tuple[int, ...],
        output_shape: tuple[int, ...],
        input_batched: bool,
        output_batched: bool,
        onnx_input_dims: tuple[int | str, ...],
        opset: int,
        dtype: np.dtype,
        ops: tuple[str, ...],
        layer_sources: list[tuple[str, ...]],
    ) -> None:
        self.model = model
        self.onnx_model = onnx_model
        self.input_name, self.output_name = input_name, output_name
        self.input_shape, self.output_shape = input_shape, output_shape
        self.input_batched, self.output_batched = input_batched, output_batched
        self.onnx_input_dims = onnx_input_dims
        self.opset, self.dtype, self.ops = opset, dtype, ops
        self.layer_sources = layer_sources
        self._session: Any = None

    @property
    def input_size(self) -> int:
        """Number of input values of one example (the VNN-LIB ``X_i`` count)."""
        return math.prod(self.input_shape)

    @property
    def output_size(self) -> int:
        """Number of output values of one example (the VNN-LIB ``Y_j`` count)."""
        return math.prod(self.output_shape)

    def as_batch(self, x: Any) -> tuple[np.ndarray, bool]:
        """``x`` as ``(batch, *input_shape)`` in the model dtype, and whether it was one example without a batch axis.

        Example:
            >>> from onnx import TensorProto, helper
            >>> graph = helper.make_graph([helper.make_node("Relu", ["x"], ["y"])], "g",
            ...     [helper.make_tensor_value_info("x", TensorProto.FLOAT, [1, 1, 2, 2])],
            ...     [helper.make_tensor_value_info("y", TensorProto.FLOAT, [1, 1, 2, 2])])
            >>> net = from_onnx(helper.make_model(graph, opset_imports=[helper.make_opsetid("", 13)]))
            >>> [(a.shape, single) for a, single in (net.as_batch(np.zeros(4)), net.as_batch(np.zeros((3, 4))))]
            [((1, 1, 2, 2), True), ((3, 1, 2, 2), False)]
        """
        arr = np.asarray(x.data if isinstance(x, Tensor) else x, dtype=self.dtype)
        shape, n = self.input_shape, self.input_size
        if arr.shape == shape:
            return arr.reshape(1, *shape), True
        if arr.ndim == len(shape) + 1 and arr.shape[1:] == shape:
            return arr, False
        if arr.ndim == 1 and arr.size == n:
            return arr.reshape(1, *shape), True
        if arr.ndim == 2 and arr.shape[1] == n:
            return arr.reshape(-1, *shape), False
        raise ValueError(
            f"{self.input_name!r} takes (batch, {', '.join(map(str, shape))}), one example {shape} or flat values "
            f"({n},) / (batch, {n}); got an array of shape {arr.shape}"
        )

    def _shape_output(self, y: np.ndarray, single: bool) -> np.ndarray:
        y = y.reshape(y.shape[0], *self.output_shape)
        return y[0] if single and not self.output_batched else y

    def __call__(self, x: Any) -> np.ndarray:
        """Run the axiom model; the result is shaped like ONNX's output (see the class docstring)."""
        batch, single = self.as_batch(x)
        with no_grad():
            return self._shape_output(self.model(batch).numpy(), single)

    def run_onnxruntime(self, x: Any) -> np.ndarray:
        """Run the original ONNX model with onnxruntime (CPU) on the same input forms as calling this object.

        Example:
            >>> from onnx import TensorProto, helper
            >>> graph = helper.make_graph([helper.make_node("Sigmoid", ["x"], ["y"])], "g",
            ...     [helper.make_tensor_value_info("x", TensorProto.FLOAT, [1, 3])],
            ...     [helper.make_tensor_value_info("y", TensorProto.FLOAT, [1, 3])])
            >>> net = from_onnx(helper.make_model(graph, opset_imports=[helper.make_opsetid("", 13)]))
            >>> x = np.random.default_rng(0).normal(size=(5, 3)).astype(np.float32)
            >>> bool(np.allclose(net(x), net.run_onnxruntime(x), rtol=1e-5, atol=1e-6))
            True
        """
        batch, single = self.as_batch(x)
        if self._session is None:
            import onnxruntime

            options = onnxruntime.SessionOptions()
            options.log_severity_level = 3
            self._session = onnxruntime.InferenceSession(
                self.onnx_model.SerializeToString(), options, providers=["CPUExecutionProvider"]
            )
        fixed = self.onnx_input_dims[0] if self.input_batched else 1
        chunk = fixed if isinstance(fixed, int) and fixed > 0 else max(len(batch), 1)
        outs = []
        for start in range(0, len(batch), chunk):
            part = batch[start : start + chunk]
            pad = chunk - len(part)
            feed = np.concatenate([part, np.zeros((pad, *part.shape[1:]), part.dtype)]) if pad else part
            feed = feed.reshape(self.onnx_input_dims if not self.input_batched else (chunk, *self.input_shape))
            (y,) = self._session.run([self.output_name], {self.input_name: feed})
            y = np.asarray(y)
            y = y.reshape(chunk, *self.output_shape) if self.output_batched else y.reshape(1, *self.output_shape)
            outs.append(y[: len(part)])
        y = np.concatenate(outs) if outs else np.zeros((0, *self.output_shape), self.dtype)
        return self._shape_output(y, single)

    def __repr__(self) -> str:
        return (
            f"OnnxModel(input {self.input_name!r} {list(self.onnx_input_dims)}, output {self.output_name!r}, "
            f"opset {self.opset}, {len(self.model)} layers)"
        )


def _load(source: Any) -> onnx.ModelProto:
    onnx = _onnx()
    if isinstance(source, onnx.ModelProto):
        model = source
    elif isinstance(source, bytes | bytearray):
        try:
            model = onnx.load_from_string(bytes(source))
        except Exception as err:
            raise InvalidOnnxError(f"from_onnx: the bytes are not an ONNX model ({type(err).__name__}: {err})") from err
    elif isinstance(source, str | os.PathLike):
        path = os.fspath(source)
        if not os.path.exists(path):
            raise FileNotFoundError(f"from_onnx: no such file: {path!r}")
        try:
            model = onnx.load(path)
        except Exception as err:
            raise InvalidOnnxError(f"from_onnx: {path!r} is not an ONNX model ({type(err).__name__}: {err})") from err
    else:
        raise TypeError(f"from_onnx: expects a path, bytes or onnx.ModelProto, got {type(source).__name__}")
    try:
        onnx.checker.check_model(model)
    except Exception as err:
        raise InvalidOnnxError(f"from_onnx: the model fails onnx.checker: {err}") from err
    return model


def _opset(model: onnx.ModelProto) -> int:
    versions = [o.version for o in model.opset_import if o.domain in ("", "ai.onnx")]
    if not versions:
        raise UnsupportedOnnxError("the model imports no default-domain (ai.onnx) opset")
    opset = int(versions[0])
    if not MIN_OPSET <= opset <= MAX_OPSET:
        raise UnsupportedOnnxError(f"opset {opset} is not supported (axiom imports opsets {MIN_OPSET}-{MAX_OPSET})")
    return opset


def from_onnx(path_or_model: Any, *, input_name: str | None = None) -> OnnxModel:
    """Import a chain-shaped ONNX model as an axiom ``Sequential`` wrapped in an :class:`OnnxModel`.

    ``path_or_model`` is a file path, the file's bytes or an ``onnx.ModelProto``. ``input_name``
    picks the graph input when there are several (initializers listed as inputs do not count).
    Raises :class:`InvalidOnnxError` for a file that is not a valid model,
    :class:`UnsupportedOnnxError` (naming the node, operator and opset) for what axiom cannot
    represent, and ``FileNotFoundError`` for a missing path. See the module docstring for the
    mappings and the layout rules.

    Example:
        >>> import numpy as np
        >>> from onnx import TensorProto, helper, numpy_helper
        >>> w = numpy_helper.from_array(np.ones((4, 3, 3, 3), np.float32), "w")
        >>> graph = helper.make_graph(
        ...     [helper.make_node("Conv", ["x", "w"], ["c"], pads=[1, 1, 1, 1]), helper.make_node("Relu", ["c"], ["r"]),
        ...      helper.make_node("MaxPool", ["r"], ["p"], kernel_shape=[2, 2], strides=[2, 2]),
        ...      helper.make_node("Flatten", ["p"], ["y"])],
        ...     "cnn", [helper.make_tensor_value_info("x", TensorProto.FLOAT, ["N", 3, 8, 8])],
        ...     [helper.make_tensor_value_info("y", TensorProto.FLOAT, ["N", 64])], [w])
        >>> net = from_onnx(helper.make_model(graph, opset_imports=[helper.make_opsetid("", 13)]))
        >>> [type(layer).__name__ for layer in net.model]
        ['Permute', 'Conv2d', 'ReLU', 'MaxPool2d', 'Permute', 'Flatten']
        >>> x = np.random.default_rng(0).normal(size=(2, 3, 8, 8)).astype(np.float32)
        >>> bool(np.allclose(net(x), net.run_onnxruntime(x), rtol=1e-4, atol=1e-5))
        True
        >>> lstm = helper.make_graph(
        ...     [helper.make_node("LSTM", ["x", "w", "w"], ["y"], name="rnn", hidden_size=1)], "g",
        ...     [helper.make_tensor_value_info("x", TensorProto.FLOAT, [1, 1, 1])],
        ...     [helper.make_tensor_value_info("y", TensorProto.FLOAT, [1, 1, 1, 1])],
        ...     [numpy_helper.from_array(np.ones((1, 4, 1), np.float32), "w")])
        >>> try:
        ...     from_onnx(helper.make_model(lstm, opset_imports=[helper.make_opsetid("", 13)]))
        ... except UnsupportedOnnxError as err:
        ...     print(err)  # doctest: +ELLIPSIS
        node 'rnn' (LSTM, opset 13): no axiom mapping for this operator (supported: Add, AveragePool, ...)
    """
    model = _load(path_or_model)
    opset = _opset(model)
    graph = model.graph
    initializers = {t.name for t in graph.initializer}
    inputs = [v.name for v in graph.input if v.name not in initializers]
    if input_name is None:
        if len(inputs) != 1:
            raise UnsupportedOnnxError(
                f"the graph has {len(inputs)} inputs {inputs}; axiom imports single-input models (pass input_name= "
                "when the others are unused)"
            )
        input_name = inputs[0]
    elif input_name not in inputs:
        raise ValueError(f"from_onnx: no graph input named {input_name!r}; the inputs are {inputs}")
    if len(graph.output) != 1:
        names = [o.name for o in graph.output]
        raise UnsupportedOnnxError(f"the graph has {len(graph.output)} outputs {names}; axiom imports one output")
    output_name = graph.output[0].name
    rng = init.generator()
    rng_state = rng.bit_generator.state  # layer constructors draw random weights we overwrite: leave no trace
    try:
        tagged = _import_tagged(model, opset, input_name)
        return tagged if tagged is not None else _import(model, opset, input_name, output_name)
    finally:
        rng.bit_generator.state = rng_state


def _import_tagged(model: onnx.ModelProto, opset: int, input_name: str) -> OnnxModel | None:
    """The exact layers of a graph ``to_onnx`` wrote (its layer record matches the graph), else None."""
    from axiom.io._onnx_tagged import as_sequential, rebuild_tagged

    found = rebuild_tagged(model)
    if found is None or found[1]["input_name"] != input_name:
        return None
    layer, settings = found
    shape = settings["input_shape"]
    seq = as_sequential(layer, ("batch", *shape[1:]))
    out = tuple(seq.output_shape(("batch", *shape[1:]))[1:])
    dtype = np.dtype(settings["input_dtype"] or _seq_dtype(seq))
    return OnnxModel(
        seq,
        onnx_model=model,
        input_name=input_name,
        output_name=settings["output_name"],
        input_shape=tuple(shape[1:]),
        output_shape=out,
        input_batched=True,
        output_batched=True,
        onnx_input_dims=tuple(shape),
        opset=opset,
        dtype=dtype,
        ops=tuple(n.op_type for n in model.graph.node),
        layer_sources=[(name,) for name, _ in seq.named_children()],
    )


def _seq_dtype(model: Layer) -> np.dtype:
    """The dtype of ``model``'s parameters (float32 when it has none)."""
    dtypes = [np.dtype(t.dtype) for _, t in model.named_parameters()]
    return dtypes[0] if dtypes else np.dtype(np.float32)


def _import(model: onnx.ModelProto, opset: int, input_name: str, output_name: str) -> OnnxModel:
    from axiom.io._onnx_patterns import fuse_activations

    graph = model.graph
    fused = fuse_activations(model)  # SiLU / Mish / GELU spelled out over several nodes -> one node each
    try:
        conv = _Converter(fused, opset, input_name, batched=True)
        conv.run(output_name)
    except _BatchAxisError as err:
        if not conv.input_batched or conv.batch is None:
            raise
        conv = _Converter(fused, opset, input_name, batched=False)  # a fixed batch size: the whole input
        try:  # tensor can be one example
            conv.run(output_name)
        except UnsupportedOnnxError:
            raise err from None
    seq = Sequential(*conv.layers, input_shape=("batch", *conv.input_shape))
    out = seq.output_shape(("batch", *conv.input_shape))
    if tuple(out[1:]) != conv.shape:  # pragma: no cover - a converter bug
        raise AssertionError(f"from_onnx: internal shape mismatch {out} vs {conv.shape}")
    _check_declared_output(graph.output[0], conv)
    return OnnxModel(
        seq,
        onnx_model=model,
        input_name=input_name,
        output_name=output_name,
        input_shape=conv.input_shape,
        output_shape=conv.shape,
        input_batched=conv.input_batched,
        output_batched=conv.batched,
        onnx_input_dims=conv.onnx_input_dims,
        opset=opset,
        dtype=conv.input_dtype,
        ops=tuple(n.op_type for n in graph.node),
        layer_sources=[tuple(s) for s in conv.sources],
    )


def _check_declared_output(value: onnx.ValueInfoProto, conv: _Converter) -> None:
    tensor_type = value.type.tensor_type
    if not tensor_type.HasField("shape"):
        return
    declared = [d.dim_value if d.HasField("dim_value") else None for d in tensor_type.shape.dim]
    computed: list[int | None] = ([None] if conv.batched else []) + list(conv.shape)
    same = len(declared) == len(computed) and all(a is None or b is None or a == b for a, b in zip(declared, computed))
    if not same:
        warnings.warn(
            f"from_onnx: the graph declares output {value.name!r} with shape {declared}, its nodes compute "
            f"{['batch' if d is None else d for d in computed]}",
            stacklevel=4,
        )
