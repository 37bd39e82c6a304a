"""Precision: cast a model to the precision it is compiled for.

``PRECISIONS`` and what each means for a compiled model (inputs are cast at the edge, outputs
come back as float32 in every mode):

- ``"float32"``: weights, activations and accumulation in float32.
- ``"float16"`` / ``"bfloat16"``: weights **and** activations stored in that dtype; every
  kernel computes in float32 and rounds its result back (what the NumPy reference does for
  low-precision inputs, as PyTorch does on the CPU), so each layer's output is rounded once
  to the storage dtype.
- ``"mixed"``: parameters (weights, biases, norm gains) stored in float16 (half the memory)
  and upcast to float32 where a layer uses them; buffers (BatchNorm running statistics, Affine
  constants) stay float32, as do activations and accumulation. The result is exactly that of
  the float32 model with every parameter rounded to float16 once. Layers holding parameters
  are wrapped in :class:`UpcastWeights`.

Values the cast cannot represent are reported in the pass's changes: overflow (``|x|`` above
the dtype's maximum, 65504 for float16, becomes ``inf``; also warned about with a
``RuntimeWarning``) and underflow (non-zero values that become 0).

Example:
    >>> import numpy as np
    >>> from axiom import Sequential, Dense
    >>> model, result = cast_precision(Sequential(Dense(4, 8), Dense(8, 2)), "mixed")
    >>> model[0], model[0].layer.weight.dtype.name
    (UpcastWeights(Dense(4, 8), storage=float16), 'float16')
    >>> model(np.ones((1, 4), np.float32)).dtype.name
    'float32'
"""

from __future__ import annotations

import copy
import warnings
from collections.abc import Sequence
from typing import Any

import ml_dtypes
import numpy as np

from axiom.compiler.passes._graph import is_chain, plain, tensor_count
from axiom.compiler.passes.base import PassResult
from axiom.nn.containers import Parallel
from axiom.nn.layer import Layer, Parameter
from axiom.shapes import Dim, Shape
from axiom.tensor import Tensor, as_dtype, float16, float32, is_floating

NAME = "cast_precision"

#: The precisions ``compile()`` accepts.
PRECISIONS: tuple[str, ...] = ("float32", "float16", "bfloat16", "mixed")


def precision_dtypes(precision: str) -> tuple[np.dtype, np.dtype]:
    """``(weight dtype, activation dtype)`` of a precision; ``ValueError`` naming the choices otherwise.

    Example:
        >>> [d.name for d in precision_dtypes("mixed")], [d.name for d in precision_dtypes("bfloat16")]
        (['float16', 'float32'], ['bfloat16', 'bfloat16'])
    """
    if precision not in PRECISIONS:
        raise ValueError(f"unknown precision {precision!r}; expected one of {', '.join(map(repr, PRECISIONS))}")
    if precision == "mixed":
        return float16, float32
    dt = as_dtype(precision)
    return dt, dt


def _floating_tensors(layer: Layer, parameters_only: bool = False) -> list[Tensor]:
    kind = Parameter if parameters_only else Tensor
    return [v for sub in layer.modules() for v in vars(sub).values() if isinstance(v, kind) and is_floating(v.dtype)]


def range_report(tensors: Sequence[Tensor], dtype: np.dtype) -> list[str]:
    """Lines saying how many values overflow to inf or underflow to 0 when cast to ``dtype``.

    Example:
        >>> range_report([Tensor(np.array([1e5, 1e-9, 1.0], np.float32))], np.dtype(np.float16))
        ['1 value overflows float16 (|x| > 65504) and becomes inf', '1 non-zero value underflows float16 to 0']
    """
    over = under = 0
    with np.errstate(over="ignore", under="ignore"):
        for t in tensors:
            x = t.data
            y = x.astype(dtype)
            over += int(np.count_nonzero(np.isfinite(x) & ~np.isfinite(y.astype(np.float64))))
            under += int(np.count_nonzero((x != 0) & (y.astype(np.float64) == 0)))
    lines = []
    if over:
        top = f"{float(ml_dtypes.finfo(dtype).max):g}"
        verb = "overflows" if over == 1 else "overflow"
        become = "becomes" if over == 1 else "become"
        lines.append(f"{over} value{'s' if over > 1 else ''} {verb} {dtype.name} (|x| > {top}) and {become} inf")
    if under:
        verb = "underflows" if under == 1 else "underflow"
        lines.append(f"{under} non-zero value{'s' if under > 1 else ''} {verb} {dtype.name} to 0")
    return lines


class UpcastWeights(Layer):
    """Runs ``layer`` in float32 with its parameters stored in ``storage`` dtype (``"mixed"`` precision).

    The wrapped layer's floating parameters are cast to ``storage`` once (buffers stay as they
    are); each call runs a copy of the layer with float32 copies of them (made for that call and
    then dropped), so inputs, outputs and accumulation are float32. Shapes, ``built`` and the
    expected input are the wrapped layer's.

    Example:
        >>> import numpy as np
        >>> from axiom import Dense
        >>> wrapped = UpcastWeights(Dense(3, 2))
        >>> wrapped(np.ones((4, 3), np.float32)).shape, wrapped.layer.weight.dtype.name
        ((4, 2), 'float16')
    """

    def __init__(self, layer: Layer, storage: Any = float16) -> None:
        super().__init__()
        self.storage = as_dtype(storage)
        self.layer = layer
        with np.errstate(over="ignore", under="ignore"):  # cast_precision reports out-of-range values
            for p in _floating_tensors(layer, parameters_only=True):
                p.data = p.data.astype(self.storage)

    @property
    def built(self) -> bool:
        return self.layer.built

    @property
    def accepts_integers(self) -> bool:  # type: ignore[override]
        return self.layer.accepts_integers

    def expects(self) -> str:
        return self.layer.expects()

    def default_input_shape(self) -> Shape:
        return self.layer.default_input_shape()

    def output_shape(self, input_shape: Sequence[Dim]) -> Shape:
        return self.layer.output_shape(input_shape)

    def param_dtype(self) -> np.dtype | None:
        return float32

    def forward(self, x: Tensor) -> Tensor:
        memo: dict[int, Any] = {}
        for t in _floating_tensors(self.layer):
            if t.dtype == float32:
                continue
            up = copy.copy(t)
            up.data = t.data.astype(float32)
            memo[id(t)] = up
        return copy.deepcopy(self.layer, memo)(x)

    def extra_repr(self) -> str:
        return f"{self.layer!r}, storage={self.storage.name}"

    def __repr__(self) -> str:
        return f"{self.name}({self.extra_repr()})"


def _wrap(layer: Layer, storage: np.dtype, path: str, changes: list[str]) -> Layer:
    if is_chain(layer):
        layer.layers = [  # type: ignore[attr-defined]
            _wrap(child, storage, f"{path}{i}.", changes)
            for i, child in enumerate(layer.layers)  # type: ignore[attr-defined]
        ]
        return layer
    if plain(layer, Parallel):
        layer.branches = [_wrap(b, storage, f"{path}{i}.", changes) for i, b in enumerate(layer.branches)]  # type: ignore[attr-defined]
        return layer
    params = _floating_tensors(layer, parameters_only=True)
    if isinstance(layer, UpcastWeights) or not params:
        return layer
    where = path.rstrip(".") or "model"
    changes.append(f"{where}: {layer.name} parameters stored as {storage.name}, upcast at use")
    changes.extend(f"{where}: {line}" for line in range_report(params, storage))
    return UpcastWeights(layer, storage)


def cast_precision(model: Layer, precision: str, *, source: Any = None) -> tuple[Layer, PassResult]:
    """Cast ``model`` in place to ``precision`` (one of :data:`PRECISIONS`, see the module docstring).

    ``source`` (default: the model's current parameter dtype) is the dtype the change log
    reports the cast from. Returns the model (a new top-level object only for ``"mixed"`` on a
    single layer) and a :class:`PassResult`.

    Example:
        >>> from axiom import Dense
        >>> model, result = cast_precision(Dense(3, 2), "bfloat16")
        >>> model.weight.dtype.name, result.changes
        ('bfloat16', ['8 parameter/buffer values cast from float32 to bfloat16'])
    """
    weights, _ = precision_dtypes(precision)
    before = np.dtype(source) if source is not None else (model.param_dtype() or float32)
    changes: list[str] = []
    if precision == "mixed":
        model = _wrap(model.to(float32), weights, "", changes)
    else:
        out_of_range = range_report(_floating_tensors(model), weights) if weights != float32 else []
        with np.errstate(over="ignore", under="ignore"):
            model.to(weights)
        if before != weights:
            changes.append(f"{tensor_count(model):,} parameter/buffer values cast from {before.name} to {weights.name}")
        changes.extend(out_of_range)
    overflow = [line for line in changes if "overflow" in line]
    if overflow:
        warnings.warn(f"{precision} precision: " + "; ".join(overflow), RuntimeWarning, stacklevel=2)
    return model, PassResult(NAME, changes)
