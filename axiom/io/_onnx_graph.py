"""The graph under construction for :func:`axiom.io.to_onnx`: nodes, initializers and tensor layouts.

A :class:`OnnxValue` is a tensor of the exported graph together with its *logical* shape (the
shape axiom computes with, batch first, NHWC for images) and the permutation of its physical
ONNX layout: ``physical = logical.transpose(perm)``. Convolutions, pooling and BatchNorm need
channels first, so the exporter moves a tensor to that layout once and keeps it there through
element-wise layers; ``Transpose`` nodes appear only where a layer needs the other layout.

Example:
    >>> import numpy as np
    >>> g = OnnxGraph(np.dtype(np.float32), opset=17)
    >>> x = OnnxValue("input", ("batch", 4, 4, 3), (0, 1, 2, 3))
    >>> y = g.to_layout(x, channels_first(4))
    >>> y.perm, [n.op_type for n in g.nodes], list(g.nodes[0].attribute[0].ints)
    ((0, 3, 1, 2), ['Transpose'], [0, 3, 1, 2])
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np

from axiom.shapes import Dim

__all__ = ["OnnxGraph", "OnnxValue", "channels_first", "inverse_perm"]


def inverse_perm(perm: Sequence[int]) -> tuple[int, ...]:
    """The permutation that undoes ``perm``.

    Example:
        >>> inverse_perm((0, 3, 1, 2))
        (0, 2, 3, 1)
    """
    inv = [0] * len(perm)
    for i, p in enumerate(perm):
        inv[p] = i
    return tuple(inv)


def channels_first(rank: int) -> tuple[int, ...]:
    """The permutation moving the last (channel) axis to position 1: NHWC -> NCHW for rank 4.

    Example:
        >>> channels_first(4), channels_first(2)
        ((0, 3, 1, 2), (0, 1))
    """
    if rank <= 2:
        return tuple(range(rank))
    return (0, rank - 1, *range(1, rank - 1))


@dataclass(frozen=True)
class OnnxValue:
    """A tensor of the graph: its ONNX name, logical shape and physical permutation.

    Example:
        >>> v = OnnxValue("x", ("batch", 2, 3, 4), (0, 3, 1, 2))
        >>> v.physical_shape, v.rank
        (('batch', 4, 2, 3), 4)
    """

    name: str
    shape: tuple[Dim, ...]
    perm: tuple[int, ...]

    @property
    def rank(self) -> int:
        return len(self.shape)

    @property
    def physical_shape(self) -> tuple[Dim, ...]:
        return tuple(self.shape[p] for p in self.perm)

    def physical_axis(self, logical_axis: int) -> int:
        """Where logical axis ``logical_axis`` (negative counts from the end) sits physically."""
        return self.perm.index(logical_axis % self.rank)

    def with_(self, name: str, shape: Sequence[Dim] | None = None, perm: Sequence[int] | None = None) -> OnnxValue:
        return OnnxValue(
            name, self.shape if shape is None else tuple(shape), self.perm if perm is None else tuple(perm)
        )


class OnnxGraph:
    """Collects nodes and initializers with unique names; constants are cast to the model dtype.

    Example:
        >>> import numpy as np
        >>> g = OnnxGraph(np.dtype(np.float32), opset=17)
        >>> w = g.const(np.ones((2, 2)), "0.weight")
        >>> y = g.node("MatMul", ["x", w], "0.matmul")
        >>> w, y, g.initializers[0].data_type
        ('0.weight', '0.matmul', 1)
    """

    def __init__(self, dtype: np.dtype, opset: int) -> None:
        self.dtype, self.opset = dtype, opset
        self.nodes: list[Any] = []
        self.initializers: list[Any] = []
        self._names: set[str] = set()

    def unique(self, hint: str) -> str:
        name, i = hint, 1
        while name in self._names:
            i += 1
            name = f"{hint}_{i}"
        self._names.add(name)
        return name

    def const(self, value: Any, hint: str, dtype: Any = None) -> str:
        """An initializer holding ``value`` (cast to the model dtype unless ``dtype`` is given)."""
        from onnx import numpy_helper

        arr = np.array(value, dtype=self.dtype if dtype is None else dtype, order="C")  # keeps 0-d scalars 0-d
        name = self.unique(hint)
        self.initializers.append(numpy_helper.from_array(arr, name))
        return name

    def ints(self, values: Sequence[int], hint: str) -> str:
        """An int64 initializer (shapes, axes, slice bounds)."""
        return self.const(np.asarray(list(values), np.int64), hint, np.int64)

    def node(self, op: str, inputs: Sequence[str], hint: str, **attrs: Any) -> str:
        """Append ``op`` reading ``inputs``; returns the name of its (single) output."""
        from onnx import helper

        out = self.unique(hint)
        self.nodes.append(helper.make_node(op, list(inputs), [out], name=self.unique(f"{hint}/{op}"), **attrs))
        return out

    def to_layout(self, value: OnnxValue, target: Sequence[int], hint: str = "") -> OnnxValue:
        """``value`` with physical permutation ``target`` (a Transpose node unless it already has it)."""
        target = tuple(target)
        if value.perm == target:
            return value
        inv = inverse_perm(value.perm)
        perm = [inv[t] for t in target]
        name = self.node("Transpose", [value.name], f"{hint or value.name}.transpose", perm=perm)
        return value.with_(name, perm=target)

    def logical(self, value: OnnxValue, hint: str = "") -> OnnxValue:
        """``value`` in axiom's own layout (batch first, channels last)."""
        return self.to_layout(value, tuple(range(value.rank)), hint)
