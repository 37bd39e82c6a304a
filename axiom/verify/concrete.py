"""Running the concrete model for verification: input shapes, float32 and float64 replays.

Example:
    >>> import numpy as np
    >>> from axiom import Dense, Sequential
    >>> from axiom.verify.concrete import model_input_shape, run_model
    >>> m = Sequential(Dense(3, 2))
    >>> model_input_shape(m), run_model(m, np.zeros((4, 3))).shape
    ((3,), (4, 2))
"""

from __future__ import annotations

import copy
from typing import Any

import numpy as np

from axiom.autograd import no_grad
from axiom.tensor import Tensor


def model_input_shape(model: Any) -> tuple[int, ...]:
    """Shape of ONE example the model takes (batch axis removed); must be concrete.

    Raises ``ValueError`` when the model does not state a concrete input shape.

    Example:
        >>> from axiom import Dense, Sequential
        >>> model_input_shape(Sequential(Dense(3, 2)))
        (3,)
    """
    shape = tuple(getattr(model, "input_shape", None) or model.default_input_shape())
    example = shape[1:]
    if not all(isinstance(d, int) for d in example):
        raise ValueError(
            f"formal verification needs a concrete input shape, but the model's is {shape}; "
            "give Sequential(..., input_shape=(None, ...)) or import a model that states it"
        )
    return tuple(int(d) for d in example)


def model_output_size(model: Any) -> int:
    """Number of output values per example (the flattened output).

    Example:
        >>> from axiom import Dense, Sequential
        >>> model_output_size(Sequential(Dense(3, 4)))
        4
    """
    out = model.output_shape(("batch", *model_input_shape(model)))[1:]
    return int(np.prod([int(d) for d in out]))


def param_dtype(model: Any) -> np.dtype:
    """The dtype the model computes in (float32 unless it was cast).

    Example:
        >>> from axiom import Dense, Sequential
        >>> param_dtype(Sequential(Dense(2, 1))), param_dtype(Sequential(Dense(2, 1)).to("float64"))
        (dtype('float32'), dtype('float64'))
    """
    for p in model.parameters():
        return p.dtype
    for _, b in model.named_buffers():
        if b.dtype.kind == "f":
            return b.dtype
    return np.dtype(np.float32)


def run_model(model: Any, x: np.ndarray, dtype: Any = None) -> np.ndarray:
    """Outputs for a batch ``x`` (cast to ``dtype``, default the model's own), as an array.

    Example:
        >>> from axiom import Dense, Sequential
        >>> y = run_model(Sequential(Dense(3, 2)), np.zeros((4, 3)))
        >>> y.shape, y.dtype
        ((4, 2), dtype('float32'))
    """
    dt = np.dtype(dtype) if dtype is not None else param_dtype(model)
    with no_grad():  # replay only: no tape
        return np.asarray(model(Tensor(np.asarray(x).astype(dt))).data)


class Replayer:
    """Replays inputs through the model as deployed (its own dtype) and in float64.

    Example:
        >>> import numpy as np
        >>> from axiom import Dense, Sequential
        >>> y32, y64 = Replayer(Sequential(Dense(2, 1))).outputs(np.zeros((1, 2)))
        >>> y32.dtype, y64.dtype
        (dtype('float32'), dtype('float64'))
    """

    def __init__(self, model: Any) -> None:
        self.model = model
        self.dtype = param_dtype(model)
        self._model64: Any = None

    @property
    def model64(self) -> Any:
        if self._model64 is None:
            self._model64 = copy.deepcopy(self.model).to("float64").eval()
        return self._model64

    def outputs_deployed(self, x: np.ndarray) -> np.ndarray:
        """Outputs of the model as deployed (its own dtype)."""
        return run_model(self.model, x)

    def outputs(self, x: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """(deployed outputs, float64 outputs) for a batch ``x``."""
        return self.outputs_deployed(x), run_model(self.model64, np.asarray(x, np.float64), np.float64)
