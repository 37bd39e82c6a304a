"""Small example models for the digits demo, the tests and the training benchmark.

- :func:`digits_cnn`: an NHWC CNN for 8x8x1 digits (two 3x3 "same" convolutions, max pool,
  two dense layers; about 40k parameters), the model ``make demo`` trains to >= 97%;
- :func:`digits_mlp`: a smaller MLP on the same images (flattened), for quick tests;
- :func:`mlp_784`: the 784-256-10 MLP of the training benchmark.

Each returns a fresh :class:`~axiom.nn.containers.Sequential` in eval mode; call
:func:`axiom.nn.init.manual_seed` first for reproducible weights.

Example:
    >>> import numpy as np
    >>> model = digits_cnn()
    >>> model(np.zeros((2, 8, 8, 1), np.float32)).shape
    (2, 10)
    >>> sum(p.size for p in digits_mlp().parameters()), sum(p.size for p in mlp_784().parameters())
    (2410, 203530)
"""

from __future__ import annotations

from typing import Any

from axiom.nn import Conv2d, Dense, Flatten, MaxPool2d, Sequential

__all__ = ["digits_cnn", "digits_mlp", "mlp_784"]


def digits_cnn(num_classes: int = 10, dtype: Any = None) -> Sequential:
    """Conv2d(1, 16, 3, same) ReLU, Conv2d(16, 32, 3, same) ReLU, MaxPool 2, Flatten, Dense(512, 64) ReLU, Dense(64, 10)

    Input ``(batch, 8, 8, 1)``, output logits ``(batch, num_classes)``.

    Example:
        >>> [type(layer).__name__ for layer in digits_cnn()]
        ['Conv2d', 'Conv2d', 'MaxPool2d', 'Flatten', 'Dense', 'Dense']
    """
    return Sequential(
        Conv2d(1, 16, 3, padding="same", activation="relu", dtype=dtype),
        Conv2d(16, 32, 3, padding="same", activation="relu", dtype=dtype),
        MaxPool2d(2),
        Flatten(),
        Dense(4 * 4 * 32, 64, "relu", dtype=dtype),
        Dense(64, num_classes, dtype=dtype),
        input_shape=("batch", 8, 8, 1),
    )


def digits_mlp(num_classes: int = 10, hidden: int = 32, dtype: Any = None) -> Sequential:
    """Flatten, Dense(64, hidden) ReLU, Dense(hidden, num_classes) on ``(batch, 8, 8, 1)`` digits.

    Example:
        >>> digits_mlp().output_shape(("batch", 8, 8, 1))
        ('batch', 10)
    """
    return Sequential(
        Flatten(),
        Dense(64, hidden, "relu", dtype=dtype),
        Dense(hidden, num_classes, dtype=dtype),
        input_shape=("batch", 8, 8, 1),
    )


def mlp_784(hidden: int = 256, num_classes: int = 10, dtype: Any = None) -> Sequential:
    """Dense(784, 256) ReLU, Dense(256, 10): the MLP of the training benchmark (MNIST-sized inputs).

    Example:
        >>> mlp_784().output_shape(("batch", 784))
        ('batch', 10)
    """
    return Sequential(Dense(784, hidden, "relu", dtype=dtype), Dense(hidden, num_classes, dtype=dtype))
