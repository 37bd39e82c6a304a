"""Embedding: a lookup table from integer indices to learned vectors.

Example:
    >>> import numpy as np
    >>> from axiom import Embedding
    >>> emb = Embedding(10, 4)
    >>> emb(np.array([[1, 2, 3], [4, 5, 6]])).shape       # (batch, seq) -> (batch, seq, dim)
    (2, 3, 4)
    >>> emb.output_shape(("batch", "seq"))
    ('batch', 'seq', 4)
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import numpy as np

from axiom import functional as F
from axiom.nn import init
from axiom.nn.layer import Layer, Parameter
from axiom.shapes import Dim, Shape
from axiom.tensor import Tensor, as_dtype, as_tensor


def _positive_int(value: Any, what: str) -> int:
    if isinstance(value, bool) or not isinstance(value, int | np.integer) or value <= 0:
        raise ValueError(f"Embedding: {what} must be a positive int, got {value!r}")
    return int(value)


class Embedding(Layer):
    """``Embedding(num_embeddings, embedding_dim, padding_idx=None)``: ``(...) int -> (..., embedding_dim)``.

    The input holds integer indices of any shape (usually ``(batch, seq)``); each is replaced by
    its row of ``weight`` (``(num_embeddings, embedding_dim)``, initialised ``N(0, 1)`` like
    ``torch.nn.Embedding``). ``padding_idx`` (negative counts from the end, as in torch) names a
    row initialised to zeros.

    Inputs are checked, naming the layer: floating or boolean indices raise ``TypeError``; NaN,
    negative or too large indices raise ``ValueError`` with the bad value, where it is and the
    valid range.

    Example:
        >>> import numpy as np
        >>> emb = Embedding(3, 2, padding_idx=0)
        >>> emb.weight.numpy()[0].tolist()                      # the padding row
        [0.0, 0.0]
        >>> try:
        ...     emb(np.array([[0, 1, 3]]))
        ... except ValueError as err:
        ...     print(err)
        Embedding: index 3 at position (0, 2) is out of range; expected integer indices in [0, 3)
    """

    accepts_integers = True

    def __init__(
        self, num_embeddings: int, embedding_dim: int, padding_idx: int | None = None, *, dtype: Any = None
    ) -> None:
        super().__init__()
        self.num_embeddings = _positive_int(num_embeddings, "num_embeddings")
        self.embedding_dim = _positive_int(embedding_dim, "embedding_dim")
        if padding_idx is not None:
            if isinstance(padding_idx, bool) or not isinstance(padding_idx, int | np.integer):
                raise ValueError(f"Embedding: padding_idx must be an int or None, got {padding_idx!r}")
            if not -self.num_embeddings <= padding_idx < self.num_embeddings:
                raise ValueError(
                    f"Embedding: padding_idx must be in [-{self.num_embeddings}, {self.num_embeddings}), "
                    f"got {padding_idx}"
                )
            padding_idx = int(padding_idx) % self.num_embeddings
        self.padding_idx = padding_idx
        self._dtype = as_dtype(dtype) if dtype is not None else self._dtype
        weight = init.normal((self.num_embeddings, self.embedding_dim), 1.0, self._dtype)
        if padding_idx is not None:
            weight[padding_idx] = 0
        self.weight = Parameter(weight)

    def expects(self) -> str:
        return f"(batch, ...) integer indices in [0, {self.num_embeddings})"

    def default_input_shape(self) -> Shape:
        return ("batch", "seq")

    def output_shape(self, input_shape: Sequence[Dim]) -> Shape:
        return (*input_shape, self.embedding_dim)

    def check_indices(self, idx: np.ndarray) -> None:
        """Raise ``TypeError`` for non-integer indices and ``ValueError`` for NaN or out-of-range ones."""
        valid = f"expected integer indices in [0, {self.num_embeddings})"
        kind = idx.dtype.kind
        if kind in "fc" or idx.dtype.name == "bfloat16":
            as_float = idx.astype(np.complex128 if kind == "c" else np.float64)
            bad = ~np.isfinite(as_float)
            if bad.any():
                where = tuple(int(i) for i in np.argwhere(bad)[0])
                raise ValueError(f"{self.name}: index {as_float[where]} at position {where} is not a number; {valid}")
        if kind not in "iu":
            raise TypeError(
                f"{self.name}: expects integer indices (int32, int64, ...) but receives {idx.dtype.name}; "
                "cast with .astype(np.int64)"
            )
        if idx.size == 0:
            return
        bad = (idx < 0) | (idx >= self.num_embeddings)
        if bad.any():
            where = tuple(int(i) for i in np.argwhere(bad)[0]) if idx.ndim else ()
            value = int(idx[where])
            raise ValueError(f"{self.name}: index {value} at position {where} is out of range; {valid}")

    def forward(self, x: Tensor) -> Tensor:
        x = as_tensor(x)
        self.check_indices(x.data)
        return F.embedding(x, self.weight, self.padding_idx)  # the padding row gets no gradient

    def extra_repr(self) -> str:
        pad = f", padding_idx={self.padding_idx}" if self.padding_idx is not None else ""
        return f"{self.num_embeddings}, {self.embedding_dim}{pad}"
