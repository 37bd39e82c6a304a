"""Dropout: random zeroing during training, identity at inference.

Example:
    >>> import numpy as np
    >>> from axiom import Dropout
    >>> drop = Dropout(0.5)
    >>> x = np.ones((2, 3), np.float32)
    >>> drop(x).numpy().tolist()                 # layers start in eval mode: identity
    [[1.0, 1.0, 1.0], [1.0, 1.0, 1.0]]
    >>> set(drop.train()(x).numpy().ravel().tolist()) <= {0.0, 2.0}   # train(): zeroed or doubled
    True
"""

from __future__ import annotations

from typing import Any

from axiom import functional as F
from axiom.nn import init
from axiom.nn.layer import ShapePreservingLayer
from axiom.tensor import Tensor


def check_dropout_p(p: Any, owner: str) -> float:
    """Validate a dropout probability: a number in ``[0, 1)``; raises ``ValueError`` naming ``owner``.

    Example:
        >>> check_dropout_p(0.1, "Dropout")
        0.1
        >>> try:
        ...     check_dropout_p(1.0, "Dropout")
        ... except ValueError as err:
        ...     print(err)
        Dropout: dropout probability p must be a number in [0, 1), got 1.0
    """
    if isinstance(p, bool) or not isinstance(p, int | float) or not 0.0 <= float(p) < 1.0:
        raise ValueError(f"{owner}: dropout probability p must be a number in [0, 1), got {p!r}")
    return float(p)


class Dropout(ShapePreservingLayer):
    """Inverted dropout with probability ``p`` (default 0.5), like ``torch.nn.Dropout``.

    In training mode (``model.train()``) each element is zeroed independently with
    probability ``p`` and the survivors are scaled by ``1 / (1 - p)``, so the expected output
    equals the input. In eval mode (the default) it is the identity. Masks come from
    :func:`axiom.nn.init.generator`, so :func:`axiom.manual_seed` makes them reproducible.
    ``p`` must be in ``[0, 1)`` (``p = 1`` would zero everything and is rejected).

    Example:
        >>> import numpy as np
        >>> from axiom import manual_seed
        >>> manual_seed(0)
        >>> y = Dropout(0.25).train()(np.ones((1000,), np.float32)).numpy()
        >>> sorted(set(y.tolist()))                  # zeros, and ones scaled by 1 / 0.75
        [0.0, 1.3333333730697632]
        >>> 0.2 < float((y == 0).mean()) < 0.3
        True
    """

    def __init__(self, p: float = 0.5) -> None:
        super().__init__()
        self.p = check_dropout_p(p, "Dropout")

    def forward(self, x: Tensor) -> Tensor:
        if not self.training or self.p == 0.0:
            return x
        return F.dropout(x, self.p, training=True, generator=init.generator())

    def extra_repr(self) -> str:
        return f"p={self.p}"
