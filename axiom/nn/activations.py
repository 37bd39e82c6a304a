"""Activations as functions (``relu(x)``, ``Dense(784, 128, relu)``) and as layers (``ReLU()``).

Activation functions are small named objects rather than bare Python functions so that a
layer built with one (``Dense(..., relu)``) still knows *which* activation it applies: the
verifier needs that to pick the matching abstract transformer.

Example:
    >>> import numpy as np
    >>> from axiom import relu, Sequential, Dense, Softmax
    >>> relu(np.array([-1.0, 3.0], np.float32)).numpy().tolist()
    [0.0, 3.0]
    >>> Sequential(Dense(4, 3, relu), Dense(3, 2), Softmax())(np.ones((1, 4), np.float32)).shape
    (1, 2)
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from axiom import functional as F
from axiom.backends.base import ACTIVATIONS
from axiom.nn.layer import Layer, ShapePreservingLayer
from axiom.shapes import Dim, Shape
from axiom.tensor import Tensor


class ActivationFunction:
    """A named element-wise activation: callable on Tensors/arrays, usable as a layer argument.

    Example:
        >>> import numpy as np
        >>> leaky_relu(np.array([-2.0], np.float32), alpha=0.5).numpy().tolist()
        [-1.0]
    """

    def __init__(self, kind: str, alpha: float | None = None) -> None:
        if kind not in ACTIVATIONS:
            raise ValueError(f"unknown activation {kind!r}; expected one of {', '.join(ACTIVATIONS)}")
        self.kind = kind
        self.alpha = float(_DEFAULT_ALPHA.get(kind, 0.0) if alpha is None else alpha)

    def __call__(self, x: Any, alpha: float | None = None) -> Tensor:
        return F.activation(x, self.kind, self.alpha if alpha is None else float(alpha))

    def __repr__(self) -> str:
        return self.kind if self.alpha == _DEFAULT_ALPHA.get(self.kind, 0.0) else f"{self.kind}(alpha={self.alpha})"

    def __eq__(self, other: object) -> bool:
        return isinstance(other, ActivationFunction) and (self.kind, self.alpha) == (other.kind, other.alpha)

    def __hash__(self) -> int:
        return hash((self.kind, self.alpha))


_DEFAULT_ALPHA = {"leaky_relu": 0.01, "elu": 1.0}

identity = ActivationFunction("identity")
relu = ActivationFunction("relu")
leaky_relu = ActivationFunction("leaky_relu", 0.01)
elu = ActivationFunction("elu", 1.0)
selu = ActivationFunction("selu")
gelu = ActivationFunction("gelu")
gelu_tanh = ActivationFunction("gelu_tanh")
sigmoid = ActivationFunction("sigmoid")
tanh = ActivationFunction("tanh")
softplus = ActivationFunction("softplus")
softsign = ActivationFunction("softsign")
silu = ActivationFunction("silu")
swish = silu
mish = ActivationFunction("mish")
hardswish = ActivationFunction("hardswish")
hardsigmoid = ActivationFunction("hardsigmoid")
relu6 = ActivationFunction("relu6")


def softmax(x: Any, axis: int = -1) -> Tensor:
    """Numerically stable softmax along ``axis``.

    Example:
        >>> import numpy as np
        >>> softmax(np.array([[1.0, 1.0]], np.float32)).numpy().tolist()
        [[0.5, 0.5]]
    """
    return F.softmax(x, axis)


def log_softmax(x: Any, axis: int = -1) -> Tensor:
    """Numerically stable log-softmax along ``axis``.

    Example:
        >>> import numpy as np
        >>> y = log_softmax(np.zeros((1, 2), np.float32)).numpy()
        >>> bool(np.allclose(y, np.log(0.5)))
        True
    """
    return F.log_softmax(x, axis)


def resolve_activation(act: Any, owner: str) -> ActivationFunction | None:
    """Accept ``None``, a name, an :class:`ActivationFunction` or an :class:`Activation` layer.

    Example:
        >>> resolve_activation("relu", "Dense") == relu, resolve_activation(ReLU(), "Dense") == relu
        (True, True)
        >>> resolve_activation(None, "Dense") is None
        True
    """
    if act is None:
        return None
    if isinstance(act, ActivationFunction):
        return act
    if isinstance(act, Activation):
        return act.fn
    if isinstance(act, str):
        return ActivationFunction(act)
    raise TypeError(
        f"{owner}: activation must be a name such as 'relu', an axiom activation (axiom.relu) or an "
        f"Activation layer, got {act!r}; arbitrary Python functions cannot be verified"
    )


class Activation(ShapePreservingLayer):
    """Element-wise activation layer: ``Activation("relu")`` or ``Activation(axiom.gelu)``.

    Example:
        >>> import numpy as np
        >>> Activation("elu", alpha=0.5)
        Activation(elu(alpha=0.5))
        >>> Activation(relu)(np.array([[-1.0, 2.0]], np.float32)).numpy().tolist()
        [[0.0, 2.0]]
    """

    def __init__(self, fn: Any, alpha: float | None = None) -> None:
        super().__init__()
        resolved = resolve_activation(fn, type(self).__name__)
        assert resolved is not None
        self.fn = resolved if alpha is None else ActivationFunction(resolved.kind, alpha)

    def forward(self, x: Tensor) -> Tensor:
        return self.fn(x)

    def extra_repr(self) -> str:
        return repr(self.fn)


def _activation_layer(class_name: str, kind: str, doc: str, takes_alpha: bool = False) -> type[Activation]:
    """Build a fixed activation layer class (ReLU, Sigmoid, ...) without writing twins by hand."""

    def __init__(self: Activation, alpha: float | None = None) -> None:  # noqa: N807
        if alpha is not None and not takes_alpha:
            raise TypeError(f"{class_name} takes no alpha")
        Activation.__init__(self, ActivationFunction(kind, alpha))

    example = (
        f"Example:\n"
        f"    >>> import numpy as np\n"
        f"    >>> x = np.array([[-1.0, 2.0]], np.float32)\n"
        f"    >>> {class_name}()(x).shape\n"
        f"    (1, 2)\n"
        f"    >>> {class_name}()(x).numpy().tolist() == {kind}(x).numpy().tolist()  # same as axiom.{kind}\n"
        f"    True\n"
    )
    attrs = {"__doc__": f"{doc}\n\n{example}", "__module__": __name__, "__init__": __init__}
    return type(class_name, (Activation,), attrs)


ReLU = _activation_layer("ReLU", "relu", "``max(x, 0)``.")
LeakyReLU = _activation_layer("LeakyReLU", "leaky_relu", "``x if x >= 0 else alpha*x`` (alpha=0.01).", takes_alpha=True)
ELU = _activation_layer("ELU", "elu", "``x if x > 0 else alpha*(exp(x)-1)`` (alpha=1).", takes_alpha=True)
SELU = _activation_layer("SELU", "selu", "Scaled ELU with the self-normalising constants.")
Sigmoid = _activation_layer("Sigmoid", "sigmoid", "``1 / (1 + exp(-x))``.")
Tanh = _activation_layer("Tanh", "tanh", "Hyperbolic tangent.")
Softplus = _activation_layer("Softplus", "softplus", "``log(1 + exp(x))``.")
Softsign = _activation_layer("Softsign", "softsign", "``x / (1 + |x|)``.")
SiLU = _activation_layer("SiLU", "silu", "``x * sigmoid(x)`` (a.k.a. Swish).")
Swish = SiLU
Mish = _activation_layer("Mish", "mish", "``x * tanh(softplus(x))``.")
Hardswish = _activation_layer("Hardswish", "hardswish", "``x * relu6(x + 3) / 6``.")
Hardsigmoid = _activation_layer("Hardsigmoid", "hardsigmoid", "``relu6(x + 3) / 6``.")
ReLU6 = _activation_layer("ReLU6", "relu6", "``min(max(x, 0), 6)``.")


class GELU(Activation):
    """Gaussian error linear unit; ``approximate="tanh"`` for the tanh form.

    Example:
        >>> import numpy as np
        >>> GELU(), GELU(approximate="tanh")
        (GELU(gelu), GELU(gelu_tanh))
        >>> GELU()(np.zeros((1, 3), np.float32)).numpy().tolist()
        [[0.0, 0.0, 0.0]]
    """

    def __init__(self, approximate: str = "none") -> None:
        if approximate not in ("none", "tanh"):
            raise ValueError(f"GELU: approximate must be 'none' or 'tanh', got {approximate!r}")
        super().__init__(gelu_tanh if approximate == "tanh" else gelu)


class _AxisLayer(Layer):
    """Shared shape rule for Softmax/LogSoftmax: any rank >= 1, ``axis`` must exist."""

    def __init__(self, axis: int = -1) -> None:
        super().__init__()
        if isinstance(axis, bool) or not isinstance(axis, int):
            raise TypeError(f"{self.name}: axis must be an int, got {axis!r}")
        self.axis = axis

    def expects(self) -> str:
        return f"(batch, ...) with an axis {self.axis}"

    def output_shape(self, input_shape: Sequence[Dim]) -> Shape:
        if not -len(input_shape) <= self.axis < len(input_shape) or len(input_shape) == 0:
            raise self.shape_error(input_shape, f"axis {self.axis} is out of range for rank {len(input_shape)}")
        return tuple(input_shape)

    def extra_repr(self) -> str:
        return f"axis={self.axis}"


class Softmax(_AxisLayer):
    """Softmax over ``axis`` (default last): outputs are in [0, 1] and sum to 1.

    Example:
        >>> import numpy as np
        >>> Softmax()(np.zeros((2, 4), np.float32)).numpy()[0].tolist()
        [0.25, 0.25, 0.25, 0.25]
        >>> Softmax(axis=1).output_shape(("batch", 10))
        ('batch', 10)
    """

    def forward(self, x: Tensor) -> Tensor:
        return F.softmax(x, self.axis)


class LogSoftmax(_AxisLayer):
    """Log of the softmax over ``axis``, computed stably.

    Example:
        >>> import numpy as np
        >>> y = LogSoftmax()(np.zeros((2, 4), np.float32)).numpy()
        >>> y.shape, bool(np.allclose(np.exp(y).sum(axis=-1), 1.0))
        ((2, 4), True)
    """

    def forward(self, x: Tensor) -> Tensor:
        return F.log_softmax(x, self.axis)
