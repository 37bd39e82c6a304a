"""Multi-head attention with optional causal masking and rotary position embeddings (RoPE).

Example:
    >>> import numpy as np
    >>> from axiom import MultiHeadAttention
    >>> mha = MultiHeadAttention(16, 4, causal=True, rope=True)
    >>> mha(np.zeros((2, 5, 16), np.float32)).shape
    (2, 5, 16)
    >>> mha.output_shape(("batch", "seq", 16))
    ('batch', 'seq', 16)
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from typing import Any

import numpy as np

from axiom import functional as F
from axiom.nn import init
from axiom.nn.dense import Dense
from axiom.nn.dropout import check_dropout_p
from axiom.nn.layer import Layer, Parameter
from axiom.shapes import Dim, Shape, dims_match
from axiom.tensor import Tensor, as_dtype, as_tensor


def _positive_int(value: Any, what: str) -> int:
    if isinstance(value, bool) or not isinstance(value, int | np.integer) or value <= 0:
        raise ValueError(f"MultiHeadAttention: {what} must be a positive int, got {value!r}")
    return int(value)


class MultiHeadAttention(Layer):
    """Multi-head scaled dot-product attention on ``(batch, seq, embed_dim)``.

    ``MultiHeadAttention(embed_dim, num_heads, *, bias=True, causal=False, rope=False,
    rope_base=10000.0, dropout=0.0)``. ``embed_dim`` must be divisible by ``num_heads``; each
    head has ``head_dim = embed_dim // num_heads`` and scores are scaled by
    ``1 / sqrt(head_dim)``.

    - ``mha(x)`` is self-attention (the one-input Layer contract); :meth:`forward_qkv`
      takes separate query / key / value tensors (cross-attention) and optional masks.
    - ``causal=True`` hides later positions, like torch's ``is_causal`` (for
      ``seq_q != seq_k`` the mask is aligned at the end, so the last query sees every key).
    - ``rope=True`` rotates queries and keys per head with rotary position embeddings
      (rotate-half layout: dimension ``i`` pairs with ``i + head_dim/2``, frequency
      ``rope_base ** (-2i / head_dim)``, positions ``0..seq-1``); ``head_dim`` must be even.
    - ``dropout`` drops attention probabilities in training mode only (inverted dropout).

    Parameters are four :class:`~axiom.nn.dense.Dense` projections with ``(in, out)`` weights:
    ``q_proj``, ``k_proj``, ``v_proj``, ``out_proj`` (state-dict keys ``q_proj.weight``,
    ``q_proj.bias``, ...). ``torch.nn.MultiheadAttention(batch_first=True)`` maps as
    ``in_proj_weight = concat([q_proj.weight.T, k_proj.weight.T, v_proj.weight.T])``,
    ``in_proj_bias = concat([q_proj.bias, k_proj.bias, v_proj.bias])``,
    ``out_proj.weight = out_proj.weight.T``, ``out_proj.bias = out_proj.bias``. Initialisation
    follows torch: Xavier-uniform input projections (over the stacked ``(3E, E)`` matrix),
    ``U(+-1/sqrt(E))`` output projection, zero biases.

    Example:
        >>> import numpy as np
        >>> mha = MultiHeadAttention(8, 2)
        >>> list(mha.state_dict())[:4]
        ['q_proj.weight', 'q_proj.bias', 'k_proj.weight', 'k_proj.bias']
        >>> x, context = np.ones((3, 4, 8), np.float32), np.ones((3, 7, 8), np.float32)
        >>> mha.forward_qkv(x, context).shape                      # cross-attention: key = value = context
        (3, 4, 8)
        >>> try:
        ...     MultiHeadAttention(10, 3)
        ... except ValueError as err:
        ...     print(err)
        MultiHeadAttention: embed_dim (10) must be divisible by num_heads (3)
    """

    def __init__(
        self,
        embed_dim: int,
        num_heads: int,
        *,
        bias: bool = True,
        causal: bool = False,
        rope: bool = False,
        rope_base: float = 10000.0,
        dropout: float = 0.0,
        dtype: Any = None,
    ) -> None:
        super().__init__()
        self.embed_dim = _positive_int(embed_dim, "embed_dim")
        self.num_heads = _positive_int(num_heads, "num_heads")
        if self.embed_dim % self.num_heads != 0:
            raise ValueError(
                f"MultiHeadAttention: embed_dim ({self.embed_dim}) must be divisible by num_heads ({self.num_heads})"
            )
        self.head_dim = self.embed_dim // self.num_heads
        self.causal = bool(causal)
        self.rope = bool(rope)
        if isinstance(rope_base, bool) or not isinstance(rope_base, int | float) or not rope_base > 0:
            raise ValueError(f"MultiHeadAttention: rope_base must be a positive number, got {rope_base!r}")
        self.rope_base = float(rope_base)
        if self.rope and self.head_dim % 2 != 0:
            raise ValueError(f"MultiHeadAttention: rope=True needs an even head_dim, got {self.head_dim}")
        self.dropout = check_dropout_p(dropout, "MultiHeadAttention")
        self._dtype = as_dtype(dtype) if dtype is not None else self._dtype
        e = self.embed_dim
        self.q_proj = Dense(e, e, bias=bias, dtype=self._dtype)
        self.k_proj = Dense(e, e, bias=bias, dtype=self._dtype)
        self.v_proj = Dense(e, e, bias=bias, dtype=self._dtype)
        self.out_proj = Dense(e, e, bias=bias, dtype=self._dtype)
        in_bound = math.sqrt(6.0 / (e + 3 * e))  # xavier_uniform over torch's stacked (3E, E) in_proj_weight
        for proj in (self.q_proj, self.k_proj, self.v_proj):
            proj.weight = Parameter(init.uniform((e, e), in_bound, self._dtype))
        for proj in (self.q_proj, self.k_proj, self.v_proj, self.out_proj):
            if proj.bias is not None:
                proj.bias = Parameter(np.zeros(e, self._dtype))

    # -- shape contract ------------------------------------------------------------
    def expects(self) -> str:
        return f"(batch, seq, {self.embed_dim})"

    def default_input_shape(self) -> Shape:
        return ("batch", "seq", self.embed_dim)

    def output_shape(self, input_shape: Sequence[Dim]) -> Shape:
        if len(input_shape) != 3:
            raise self.shape_error(input_shape, f"rank 3 expected, got rank {len(input_shape)}")
        if not dims_match(input_shape[-1], self.embed_dim):
            raise self.shape_error(input_shape, f"last axis must be embed_dim={self.embed_dim}")
        return tuple(input_shape)

    # -- running -------------------------------------------------------------------
    def forward(self, x: Tensor) -> Tensor:
        return self._attend(x, x, x, None)

    def forward_qkv(
        self,
        query: Any,
        key: Any = None,
        value: Any = None,
        *,
        attn_mask: Any = None,
        key_padding_mask: Any = None,
    ) -> Tensor:
        """Attention of ``query`` ``(batch, seq_q, E)`` over ``key``/``value`` ``(batch, seq_k, E)``.

        ``key`` defaults to ``query`` and ``value`` to ``key``. Masks use torch's
        ``nn.MultiheadAttention`` conventions: ``attn_mask`` is ``(seq_q, seq_k)``,
        ``(batch * num_heads, seq_q, seq_k)`` or broadcastable to ``(batch, num_heads, seq_q,
        seq_k)``; ``key_padding_mask`` is ``(batch, seq_k)``. Boolean masks mark positions
        that are **not** attended (True = hidden); float masks are added to the scores.
        The layer's ``causal`` setting applies on top.

        Example:
            >>> import numpy as np
            >>> mha = MultiHeadAttention(4, 1)
            >>> x = np.random.default_rng(0).standard_normal((1, 3, 4)).astype(np.float32)
            >>> pad = np.array([[False, False, True]])                   # last key is padding
            >>> masked = mha.forward_qkv(x, key_padding_mask=pad).numpy()
            >>> dropped = mha.forward_qkv(x, x[:, :2]).numpy()                # same as leaving it out
            >>> bool(np.allclose(masked, dropped, atol=1e-6))
            True
        """
        q = self.check_input(query)
        k = q if key is None else self.check_input(key)
        v = k if value is None else self.check_input(value)
        self.output_shape(q.shape)
        for what, t in (("key", k), ("value", v)):
            if len(t.shape) != 3 or t.shape[0] != q.shape[0] or t.shape[-1] != self.embed_dim:
                raise self.shape_error(
                    t.shape, f"{what} must be (batch, seq_k, {self.embed_dim}) with the query's batch {q.shape[0]}"
                )
        if v.shape[1] != k.shape[1]:
            raise self.shape_error(v.shape, f"value must have the key's length {k.shape[1]}")
        if self.causal and q.shape[1] > k.shape[1]:
            raise self.shape_error(
                k.shape, f"causal attention needs seq_k >= seq_q = {q.shape[1]} (the mask is aligned at the end)"
            )
        mask = self._additive_mask(attn_mask, key_padding_mask, q.shape[0], q.shape[1], k.shape[1], q.dtype)
        return self._attend(q, k, v, mask)

    def _heads(self, x: Tensor, proj: Dense) -> Tensor:
        """Project and split into heads: ``(B, L, E) -> (B, H, L, D)``."""
        b, length, _ = x.shape
        y = F.linear(x, proj.weight, proj.bias)
        return y.reshape(b, length, self.num_heads, self.head_dim).transpose(0, 2, 1, 3)

    def _attend(self, q_in: Tensor, k_in: Tensor, v_in: Tensor, mask: np.ndarray | None) -> Tensor:
        b, lq, _ = q_in.shape
        q = self._heads(q_in, self.q_proj)
        k = self._heads(k_in, self.k_proj)
        v = self._heads(v_in, self.v_proj)
        if self.rope:
            q = F.rope(q, base=self.rope_base)
            k = F.rope(k, base=self.rope_base)
        if self.training and self.dropout > 0.0:
            out = self._attend_with_dropout(q, k, v, mask)
        else:
            out = F.attention(q, k, v, causal=self.causal, mask=mask)
        out = out.transpose(0, 2, 1, 3).reshape(b, lq, self.embed_dim)
        return F.linear(out, self.out_proj.weight, self.out_proj.bias)

    def _attend_with_dropout(self, q: Tensor, k: Tensor, v: Tensor, mask: np.ndarray | None) -> Tensor:
        """Attention with dropout on the probabilities (training only): unfused, through functional ops."""
        scores = F.matmul(q, k.transpose(0, 1, 3, 2)) * (1.0 / math.sqrt(self.head_dim))
        if mask is not None:
            scores = scores + mask.astype(scores.dtype)
        if self.causal:
            lq, lk = q.shape[-2], k.shape[-2]
            hidden = np.triu(np.ones((lq, lk), dtype=bool), k=1 + lk - lq)
            scores = scores + np.where(hidden, -np.inf, 0.0).astype(scores.dtype)
        probs = F.softmax(scores, axis=-1)
        probs = F.dropout(probs, self.dropout, training=True, generator=init.generator())
        return F.matmul(probs, v)

    def _additive_mask(
        self, attn_mask: Any, key_padding_mask: Any, b: int, lq: int, lk: int, dtype: np.dtype
    ) -> np.ndarray | None:
        """Combine torch-style masks into one additive mask broadcastable to ``(B, H, Lq, Lk)``."""
        cdt = np.float64 if dtype == np.float64 else np.float32
        total: np.ndarray | None = None
        if attn_mask is not None:
            m = self._as_additive(attn_mask, cdt)
            h = self.num_heads
            if m.ndim == 2 and m.shape == (lq, lk):
                pass
            elif m.ndim == 3 and m.shape == (b * h, lq, lk):
                m = m.reshape(b, h, lq, lk)
            elif m.ndim == 4 and _broadcasts(m.shape, (b, h, lq, lk)):
                pass
            else:
                raise self.shape_error(
                    m.shape,
                    "attn_mask shape does not fit",
                    expected=f"attn_mask ({lq}, {lk}), ({b * h}, {lq}, {lk}) or broadcasting to ({b}, {h}, {lq}, {lk})",
                )
            total = m
        if key_padding_mask is not None:
            m = self._as_additive(key_padding_mask, cdt)
            if m.shape != (b, lk):
                raise self.shape_error(m.shape, "key_padding_mask shape does not fit", expected=f"({b}, {lk})")
            m = m.reshape(b, 1, 1, lk)
            total = m if total is None else total + m
        return total

    def _as_additive(self, mask: Any, cdt: type) -> np.ndarray:
        m = as_tensor(mask).data
        if m.dtype == np.bool_:
            return np.where(m, -np.inf, 0.0).astype(cdt)
        if m.dtype.kind != "f" and m.dtype.name != "bfloat16":
            raise TypeError(f"{self.name}: masks must be boolean (True = hidden) or float (added), got {m.dtype.name}")
        return m.astype(cdt)

    def extra_repr(self) -> str:
        flags = "".join(
            [
                ", causal=True" if self.causal else "",
                f", rope=True, rope_base={self.rope_base}" if self.rope else "",
                f", dropout={self.dropout}" if self.dropout else "",
            ]
        )
        return f"{self.embed_dim}, num_heads={self.num_heads}{flags}"


def _broadcasts(shape: Sequence[int], target: Sequence[int]) -> bool:
    return len(shape) == len(target) and all(s in (1, t) for s, t in zip(shape, target))
