"""Sound bound propagation: IBP, CROWN and alpha-CROWN for axiom models (NumPy only).

:func:`compute_bounds` returns ``lower <= f(x) <= upper`` (or bounds on ``C @ f(x)``) that hold
for EVERY ``x`` of the input set; :func:`input_gradient` gives values and input gradients of
``C @ f(x)`` for attacks; :func:`supported` lists layers without a transformer.

How it works: the model is flattened into a graph of ops (``Sequential`` chains, ``Residual`` =
fork + add, ``Parallel`` = fork + concat) with one abstract transformer per layer type:

- linear: Dense, Conv2d (stride, padding, dilation, groups; the CROWN step is a transposed
  convolution), BatchNorm (eval: running statistics), Affine, AvgPool2d, GlobalAvgPool, Flatten,
  Reshape, Permute, Dropout (identity), Residual add, Parallel concat;
- element-wise activations (every kind in ``axiom.backends.base.ACTIVATIONS``): ReLU/LeakyReLU
  by the triangle relaxation (lower slope optimised by alpha-CROWN), sigmoid/tanh by
  tangent/chord lines, all others by chord-slope lines; intercepts of the non-ReLU lines are
  *certified* on a grid with a curvature/Lipschitz margin (see ``_act``);
- MaxPool2d: IBP per window; CROWN lower line = the input with the largest lower bound, upper =
  that input when it dominates the window, else the constant ``max u``;
- "cuts" (IBP only): Softmax, LogSoftmax, LayerNorm, RMSNorm. CROWN stops at their output and
  uses their interval. MultiHeadAttention and Embedding raise :class:`UnsupportedLayerError`.

CROWN computes intermediate bounds by back-substitution for every linear node feeding a
nonlinear one (only the unstable neurons when ReLUs alone consume it) and always intersects with
IBP, so it is never looser than IBP; alpha-CROWN optimises the ReLU/LeakyReLU lower slopes of the
final bound per output row by Adam (projected to ``[0, 1]``), keeps the best bound seen and is
never looser than CROWN. A spec matrix ``C`` is folded into the back-substitution (``C W`` for the
last layer), which is tighter than bounding ``y`` first.

Numeric semantics (read this before calling a result *proven*):

- The bounds are sound for the **exact real-arithmetic network** defined by the stored weights
  (float32 or float64 weights are upcast exactly to float64) and by the mathematical activation
  functions. All computation is float64; every affine step carries a rigorous rounding bound
  (``gamma_n = n u / (1 - n u)``, ``u = 2^-53``, on ``|A| |W| |x|``-type terms), the results are
  rounded outward with ``nextafter``, and nonlinear relaxation lines get an outward intercept
  margin (``1e-12 (1 + max|f| + |k| max(|l|,|u|)) + 1e-14 max(|l|,|u|)``, far above libm error).
  BatchNorm's ``1/sqrt(var + eps)`` carries an explicit coefficient error.
- The floating-point error of actually EXECUTING the model (e.g. in float32, or float64 on
  another library's kernels) is **NOT** included: a bound proven here can be violated by at most
  that execution error. An optional margin for it is a later addition.
- RMSNorm with ``eps=None`` uses the dtype-dependent torch default; the bounds cover every eps
  between float64's and the layer dtype's.

Example:
    >>> import numpy as np
    >>> from axiom import Dense, Sequential, relu
    >>> from axiom.verify import LinfBall
    >>> from axiom.verify.bounds import compute_bounds
    >>> model = Sequential(Dense(2, 8, relu), Dense(8, 2))
    >>> ball = LinfBall(np.array([0.5, -0.5]), eps=0.1)
    >>> ibp = compute_bounds(model, ball, method="ibp")
    >>> crown = compute_bounds(model, ball, method="crown")
    >>> bool(np.all(crown.lower >= ibp.lower) and np.all(crown.upper <= ibp.upper))
    True
"""

from __future__ import annotations

from typing import Any

import numpy as np

from axiom.nn import Layer
from axiom.verify.bounds._engine import BoundResult, analyse, gradient
from axiom.verify.bounds._graph import UnsupportedLayerError, unsupported_layers
from axiom.verify.sets import InputSet

__all__ = ["BoundResult", "UnsupportedLayerError", "compute_bounds", "input_gradient", "supported"]


def compute_bounds(
    model: Layer,
    input_set: InputSet,
    method: str = "crown",
    C: Any = None,
    *,
    alpha_iterations: int = 20,
    alpha_lr: float = 0.1,
) -> BoundResult:
    """Sound bounds on ``model``'s output (or on ``C @ output``) over ``input_set``.

    Args:
        model: an axiom layer or container, used with eval semantics (Dropout is the identity,
            BatchNorm uses its running statistics).
        input_set: ``Box``, ``LinfBall`` or ``L2Ball`` (``clip`` honoured) over ONE example,
            already shaped like the model input without the batch axis; a ``BoxUnion`` is
            analysed box by box and the bounds merged.
        method: ``"ibp"``, ``"crown"`` or ``"alpha-crown"``.
        C: optional ``(m, n_out)`` spec matrix over the flattened output; the bounds are then on
            ``C @ y`` with shape ``(m,)``.
        alpha_iterations, alpha_lr: Adam steps and step size of alpha-CROWN.

    Returns:
        :class:`BoundResult` with float64 ``lower``/``upper``, the method, the intermediate
        bounds of every layer (``layers``) and the time taken.

    Raises:
        UnsupportedLayerError: a layer has no transformer (the message names its position).

    Example:
        >>> import numpy as np
        >>> from axiom import Dense, Sequential, relu
        >>> from axiom.verify import Box
        >>> model = Sequential(Dense(3, 16, relu), Dense(16, 16, relu), Dense(16, 2))
        >>> box = Box(-np.ones(3), np.ones(3))
        >>> res = compute_bounds(model, box, "crown", C=np.array([[1.0, -1.0]]))
        >>> res.lower.shape, res.method
        ((1,), 'crown')
        >>> xs = np.random.default_rng(0).uniform(-1, 1, (1000, 3)).astype(np.float32)
        >>> margin = model(xs).numpy() @ np.array([1.0, -1.0])
        >>> bool(res.lower[0] <= margin.min() and margin.max() <= res.upper[0])
        True
        >>> alpha = compute_bounds(model, box, "alpha-crown", C=np.array([[1.0, -1.0]]))
        >>> bool(alpha.lower[0] >= res.lower[0])
        True
    """
    return analyse(model, input_set, method, C, int(alpha_iterations), float(alpha_lr))


def input_gradient(model: Layer, x: Any, C: Any) -> tuple[np.ndarray, np.ndarray]:
    """Values ``C @ f(x)`` and their input gradients, per sample, in float64.

    ``x`` is ``(batch, *input_shape)``; returns ``values`` ``(batch, m)`` and ``grads``
    ``(batch, m, *input_shape)`` with ``grads[b, i] = d (C f(x_b))_i / d x_b`` (subgradients at
    kinks: ReLU'(0) = 0, MaxPool routes to the first maximal cell). Weights are upcast to float64.

    Example:
        >>> import numpy as np
        >>> from axiom import Dense
        >>> layer = Dense(2, 1)
        >>> values, grads = input_gradient(layer, np.zeros((4, 2)), np.array([[2.0]]))
        >>> grads.shape, bool(np.allclose(grads[0, 0], 2 * layer.weight.numpy()[:, 0]))
        ((4, 1, 2), True)
    """
    return gradient(model, x, C)


def supported(model: Layer) -> list[str]:
    """Names of the layers of ``model`` without an abstract transformer (empty: fully supported).

    Example:
        >>> from axiom import Dense, Embedding, ReLU, Sequential, relu
        >>> supported(Sequential(Dense(4, 4, relu), Dense(4, 2)))
        []
        >>> supported(Sequential(Embedding(10, 4), ReLU()))
        ['layer 1 (Embedding)']
    """
    return unsupported_layers(model)
