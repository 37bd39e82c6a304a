"""A BERT encoder built from axiom layers, with Hugging Face weight names mapped in and out.

:class:`BertModel` is ``Embedding`` (word + position + token type) -> ``LayerNorm`` ->
``num_hidden_layers`` x :class:`BertLayer` (``MultiHeadAttention`` with q/k/v/output biases
and a key-padding mask, residual + ``LayerNorm``, ``Dense`` with the GELU activation,
``Dense``, residual + ``LayerNorm``) -> optional pooler (``Dense`` + tanh on the first token).
Dropout is left out: imported models run in inference mode.

:func:`hf_to_axiom_state` renames a Hugging Face ``BertModel`` state dict (``(out, in)``
``Linear`` weights) to this model's names (``(in, out)`` ``Dense`` weights, transposed here);
:func:`axiom_to_hf_state` does the reverse.

Example:
    >>> import numpy as np
    >>> from axiom.io.hf_config import BertConfig
    >>> model = BertModel(BertConfig(vocab_size=20, hidden_size=8, num_hidden_layers=2,
    ...                              num_attention_heads=2, intermediate_size=16))
    >>> ids = np.array([[1, 5, 7, 2], [1, 9, 2, 0]])
    >>> mask = np.array([[1, 1, 1, 1], [1, 1, 1, 0]])
    >>> out = model.encode(ids, attention_mask=mask)
    >>> out.last_hidden_state.shape, out.pooler_output.shape
    ((2, 4, 8), (2, 8))
    >>> model.sentence_embedding(ids, mask).shape
    (2, 8)
"""

from __future__ import annotations

import re
from collections import OrderedDict
from collections.abc import Mapping, Sequence
from typing import Any, NamedTuple

import numpy as np

from axiom.io.hf_config import HIDDEN_ACTIVATIONS, BertConfig
from axiom.nn.activations import tanh
from axiom.nn.attention import MultiHeadAttention
from axiom.nn.dense import Dense
from axiom.nn.embedding import Embedding
from axiom.nn.layer import Layer
from axiom.nn.normalization import LayerNorm
from axiom.shapes import Dim, Shape
from axiom.tensor import Tensor, as_dtype, as_tensor

__all__ = [
    "BertEmbeddings",
    "BertLayer",
    "BertModel",
    "BertOutput",
    "POOLING_MODES",
    "axiom_to_hf_state",
    "hf_names",
    "hf_to_axiom_state",
]

#: Sentence pooling modes (sentence-transformers' ``pooling_mode_*_tokens`` names, without the affixes).
POOLING_MODES = ("mean", "cls", "max")


def _dense_rank3(layer: Dense, x: Tensor) -> Tensor:
    """Apply a Dense layer (rank-2 contract) to ``(batch, seq, features)``."""
    b, length, h = x.shape
    return layer(x.reshape(b * length, h)).reshape(b, length, layer.out_features)


class BertOutput(NamedTuple):
    """What :meth:`BertModel.encode` returns (``pooler_output`` is None without a pooler).

    Example:
        >>> BertOutput(None, None)._fields
        ('last_hidden_state', 'pooler_output')
    """

    last_hidden_state: Tensor
    pooler_output: Tensor | None


class BertEmbeddings(Layer):
    """Word + absolute position + token-type embeddings, then LayerNorm: ``(batch, seq) -> (batch, seq, hidden)``.

    Example:
        >>> import numpy as np
        >>> from axiom.io.hf_config import BertConfig
        >>> emb = BertEmbeddings(BertConfig(20, 8, 1, 2, 16, max_position_embeddings=6))
        >>> emb(np.array([[1, 2, 3]])).shape
        (1, 3, 8)
        >>> try:
        ...     emb(np.zeros((1, 7), np.int64))
        ... except ValueError as err:
        ...     print(err)
        BertEmbeddings: sequence length 7 exceeds max_position_embeddings=6
    """

    accepts_integers = True

    def __init__(self, config: BertConfig, *, dtype: Any = None) -> None:
        super().__init__()
        self._dtype = as_dtype(dtype) if dtype is not None else self._dtype
        h = config.hidden_size
        self.word_embeddings = Embedding(config.vocab_size, h, config.pad_token_id, dtype=self._dtype)
        self.position_embeddings = Embedding(config.max_position_embeddings, h, dtype=self._dtype)
        self.token_type_embeddings = Embedding(config.type_vocab_size, h, dtype=self._dtype)
        self.layer_norm = LayerNorm(h, eps=config.layer_norm_eps, dtype=self._dtype)

    def expects(self) -> str:
        return f"(batch, seq) integer token ids in [0, {self.word_embeddings.num_embeddings})"

    def default_input_shape(self) -> Shape:
        return ("batch", "seq")

    def output_shape(self, input_shape: Sequence[Dim]) -> Shape:
        self.require_rank(input_shape, 2)
        return (*input_shape, self.word_embeddings.embedding_dim)

    def forward(self, x: Tensor, token_type_ids: Any = None) -> Tensor:
        b, length = x.shape
        limit = self.position_embeddings.num_embeddings
        if length > limit:
            raise ValueError(f"{self.name}: sequence length {length} exceeds max_position_embeddings={limit}")
        positions = np.broadcast_to(np.arange(length, dtype=np.int64), (b, length))
        types = np.zeros((b, length), np.int64) if token_type_ids is None else np.asarray(token_type_ids)
        if types.shape != (b, length):
            raise self.shape_error(types.shape, "token_type_ids must have the shape of input_ids", f"({b}, {length})")
        y = self.word_embeddings(x) + self.position_embeddings(positions) + self.token_type_embeddings(types)
        return self.layer_norm(y)


class BertLayer(Layer):
    """One post-norm transformer encoder block on ``(batch, seq, hidden)``.

    ``h = LayerNorm(x + attention(x))``; ``out = LayerNorm(h + output(act(intermediate(h))))``.

    Example:
        >>> import numpy as np
        >>> from axiom.io.hf_config import BertConfig
        >>> block = BertLayer(BertConfig(20, 8, 1, 2, 16))
        >>> block(np.zeros((2, 3, 8), np.float32)).shape
        (2, 3, 8)
    """

    def __init__(self, config: BertConfig, *, dtype: Any = None) -> None:
        super().__init__()
        self._dtype = as_dtype(dtype) if dtype is not None else self._dtype
        h, inter = config.hidden_size, config.intermediate_size
        self.attention = MultiHeadAttention(h, config.num_attention_heads, bias=True, dtype=self._dtype)
        self.attention_norm = LayerNorm(h, eps=config.layer_norm_eps, dtype=self._dtype)
        self.intermediate = Dense(h, inter, HIDDEN_ACTIVATIONS[config.hidden_act], dtype=self._dtype)
        self.output = Dense(inter, h, dtype=self._dtype)
        self.output_norm = LayerNorm(h, eps=config.layer_norm_eps, dtype=self._dtype)

    def expects(self) -> str:
        return self.attention.expects()

    def default_input_shape(self) -> Shape:
        return self.attention.default_input_shape()

    def output_shape(self, input_shape: Sequence[Dim]) -> Shape:
        return self.attention.output_shape(input_shape)

    def forward(self, x: Tensor, key_padding_mask: np.ndarray | None = None) -> Tensor:
        h = self.attention_norm(x + self.attention.forward_qkv(x, key_padding_mask=key_padding_mask))
        return self.output_norm(h + _dense_rank3(self.output, _dense_rank3(self.intermediate, h)))


class BertModel(Layer):
    """A BERT encoder: ``model(input_ids)`` returns the last hidden state ``(batch, seq, hidden)``.

    :meth:`encode` takes an ``attention_mask`` (1 = token, 0 = padding; padded keys are not
    attended) and ``token_type_ids`` and also returns the pooler output. :meth:`sentence_embedding`
    pools the hidden states over the real tokens (``pooling`` = ``"mean"`` as
    sentence-transformers does by default, ``"cls"`` or ``"max"``), L2-normalised if
    ``normalize``. ``from_pretrained`` sets ``pooling`` and ``normalize`` from a
    sentence-transformers directory's ``modules.json``.

    Example:
        >>> import numpy as np
        >>> from axiom.io.hf_config import BertConfig
        >>> model = BertModel(BertConfig(20, 8, 2, 2, 16), pooler=False, normalize=True)
        >>> ids, mask = np.array([[1, 4, 2, 0]]), np.array([[1, 1, 1, 0]])
        >>> e = model.sentence_embedding(ids, mask).numpy()
        >>> round(float(np.linalg.norm(e)), 5)
        1.0
        >>> bool(np.allclose(e, model.sentence_embedding(ids[:, :3]).numpy(), atol=1e-6))  # padding is ignored
        True
    """

    accepts_integers = True

    def __init__(
        self,
        config: BertConfig,
        *,
        pooler: bool = True,
        pooling: str = "mean",
        normalize: bool = False,
        dtype: Any = None,
    ) -> None:
        super().__init__()
        if pooling not in POOLING_MODES:
            raise ValueError(f"BertModel: pooling must be one of {POOLING_MODES}, got {pooling!r}")
        self.config = config
        self.pooling = pooling
        self.normalize = bool(normalize)
        self._dtype = as_dtype(dtype) if dtype is not None else self._dtype
        self.embeddings = BertEmbeddings(config, dtype=self._dtype)
        self.encoder = [BertLayer(config, dtype=self._dtype) for _ in range(config.num_hidden_layers)]
        self.pooler = Dense(config.hidden_size, config.hidden_size, tanh, dtype=self._dtype) if pooler else None

    def expects(self) -> str:
        return self.embeddings.expects()

    def default_input_shape(self) -> Shape:
        return ("batch", "seq")

    def output_shape(self, input_shape: Sequence[Dim]) -> Shape:
        return self.embeddings.output_shape(input_shape)

    def forward(self, x: Tensor) -> Tensor:
        return self.encode(x).last_hidden_state

    def _ids_and_mask(self, input_ids: Any, attention_mask: Any) -> tuple[Tensor, np.ndarray | None]:
        ids = self.check_input(input_ids)
        self.output_shape(ids.shape)
        if attention_mask is None:
            return ids, None
        mask = np.asarray(attention_mask.data if isinstance(attention_mask, Tensor) else attention_mask)
        if mask.shape != ids.shape:
            raise self.shape_error(mask.shape, "attention_mask must have the shape of input_ids", str(ids.shape))
        if mask.dtype != np.bool_ and not np.isin(mask, (0, 1)).all():
            raise ValueError(f"{self.name}: attention_mask must hold only 0 (padding) and 1 (token)")
        return ids, mask.astype(bool)

    def encode(self, input_ids: Any, attention_mask: Any = None, token_type_ids: Any = None) -> BertOutput:
        """Hidden states ``(batch, seq, hidden)`` and, with a pooler, ``tanh(dense(h[:, 0]))``.

        Example:
            >>> import numpy as np
            >>> from axiom.io.hf_config import BertConfig
            >>> BertModel(BertConfig(20, 8, 1, 2, 16)).encode(np.array([[1, 2]])).pooler_output.shape
            (1, 8)
        """
        ids, mask = self._ids_and_mask(input_ids, attention_mask)
        h = self.embeddings.forward(ids, token_type_ids)
        padding = None if mask is None else ~mask
        for block in self.encoder:
            h = block.forward(h, padding)
        pooled = self.pooler(h[:, 0]) if self.pooler is not None else None
        return BertOutput(h, pooled)

    def sentence_embedding(
        self,
        input_ids: Any,
        attention_mask: Any = None,
        token_type_ids: Any = None,
        *,
        pooling: str | None = None,
        normalize: bool | None = None,
    ) -> Tensor:
        """One vector per sentence ``(batch, hidden)``, pooled over the unpadded tokens.

        ``mean``: ``sum(h * mask) / max(sum(mask), 1e-9)`` (sentence-transformers' formula);
        ``cls``: the first token; ``max``: the maximum over real tokens. Defaults come from the model.

        Example:
            >>> import numpy as np
            >>> from axiom.io.hf_config import BertConfig
            >>> model = BertModel(BertConfig(20, 8, 1, 2, 16))
            >>> model.sentence_embedding(np.array([[1, 2, 3]]), pooling="cls").shape
            (1, 8)
        """
        mode = self.pooling if pooling is None else pooling
        if mode not in POOLING_MODES:
            raise ValueError(f"{self.name}: pooling must be one of {POOLING_MODES}, got {mode!r}")
        ids, mask = self._ids_and_mask(input_ids, attention_mask)
        h = self.encode(ids, mask, token_type_ids).last_hidden_state
        m = np.ones(ids.shape, bool) if mask is None else mask
        if mode == "cls":
            out = h[:, 0]
        elif mode == "mean":
            weights = m[..., None].astype(h.dtype)
            out = (h * weights).sum(axis=1) / np.maximum(weights.sum(axis=1), 1e-9).astype(h.dtype)
        else:
            out = (h + np.where(m[..., None], 0.0, -1e9).astype(h.dtype)).max(axis=1)
        if self.normalize if normalize is None else normalize:
            norm = np.maximum(np.linalg.norm(out.data, axis=-1, keepdims=True), 1e-12)
            out = out / norm.astype(out.dtype)
        return as_tensor(out)

    def extra_repr(self) -> str:
        return f"pooling={self.pooling!r}, normalize={self.normalize}"


# -- Hugging Face weight names -------------------------------------------------------------------

_LAYER_MAP = {
    "attention.self.query": ("attention.q_proj", True),
    "attention.self.key": ("attention.k_proj", True),
    "attention.self.value": ("attention.v_proj", True),
    "attention.output.dense": ("attention.out_proj", True),
    "attention.output.LayerNorm": ("attention_norm", False),
    "intermediate.dense": ("intermediate", True),
    "output.dense": ("output", True),
    "output.LayerNorm": ("output_norm", False),
}
_TOP_MAP = {
    "embeddings.word_embeddings": ("embeddings.word_embeddings", False),
    "embeddings.position_embeddings": ("embeddings.position_embeddings", False),
    "embeddings.token_type_embeddings": ("embeddings.token_type_embeddings", False),
    "embeddings.LayerNorm": ("embeddings.layer_norm", False),
    "pooler.dense": ("pooler", True),
}
_LAYER_KEY = re.compile(r"^encoder\.layer\.(\d+)\.(.+)$")
#: Buffers Hugging Face saves that hold no weights (recomputed by axiom).
IGNORED_KEYS = ("embeddings.position_ids",)


def _hf_key_to_axiom(key: str) -> tuple[str, bool] | None:
    """``(axiom name, transpose?)`` for a Hugging Face key, or None if it is not a BertModel weight."""
    module, _, leaf = key.rpartition(".")
    leaf = {"gamma": "weight", "beta": "bias"}.get(leaf, leaf)  # TF-era LayerNorm names
    if leaf not in ("weight", "bias"):
        return None
    match = _LAYER_KEY.match(module)
    if match:
        target = _LAYER_MAP.get(match.group(2))
        if target is None:
            return None
        return f"encoder.{match.group(1)}.{target[0]}.{leaf}", target[1] and leaf == "weight"
    target = _TOP_MAP.get(module)
    if target is None:
        return None
    return f"{target[0]}.{leaf}", target[1] and leaf == "weight"


def _strip_prefix(state: Mapping[str, Any]) -> dict[str, Any]:
    """Drop the ``bert.`` prefix that task models (``BertForMaskedLM``, ...) put on the encoder."""
    if any(k.startswith("embeddings.") for k in state) or not any(k.startswith("bert.") for k in state):
        return dict(state)
    return {k[len("bert.") :] if k.startswith("bert.") else k: v for k, v in state.items()}


def hf_to_axiom_state(state: Mapping[str, Any]) -> tuple[OrderedDict[str, np.ndarray], list[str]]:
    """Rename (and transpose) a Hugging Face BERT state dict; returns ``(axiom state, unused keys)``.

    Unused keys are tensors that are not part of a ``BertModel`` (task heads such as
    ``cls.predictions.*``); ``embeddings.position_ids`` is a known buffer and is not reported.

    Example:
        >>> import numpy as np
        >>> w = np.arange(6, dtype=np.float32).reshape(2, 3)          # torch Linear: (out, in)
        >>> state, unused = hf_to_axiom_state({"bert.encoder.layer.0.intermediate.dense.weight": w,
        ...                                    "cls.predictions.bias": np.zeros(3)})
        >>> list(state), state["encoder.0.intermediate.weight"].shape, unused
        (['encoder.0.intermediate.weight'], (3, 2), ['cls.predictions.bias'])
    """
    out: OrderedDict[str, np.ndarray] = OrderedDict()
    unused = []
    for key, value in _strip_prefix(state).items():
        if key in IGNORED_KEYS:
            continue
        target = _hf_key_to_axiom(key)
        if target is None:
            unused.append(key)
            continue
        arr = np.asarray(value)
        out[target[0]] = np.ascontiguousarray(arr.T) if target[1] else arr
    return out, unused


def hf_names(num_layers: int) -> dict[str, tuple[str, bool]]:
    """``axiom name -> (Hugging Face name, transposed?)`` for a BERT with ``num_layers`` blocks.

    Example:
        >>> hf_names(1)["encoder.0.attention.q_proj.weight"]
        ('encoder.layer.0.attention.self.query.weight', True)
    """
    names: dict[str, tuple[str, bool]] = {}
    for module, (name, transpose) in _TOP_MAP.items():
        for leaf in ("weight", "bias"):
            names[f"{name}.{leaf}"] = (f"{module}.{leaf}", transpose and leaf == "weight")
    for i in range(num_layers):
        for module, (name, transpose) in _LAYER_MAP.items():
            for leaf in ("weight", "bias"):
                names[f"encoder.{i}.{name}.{leaf}"] = (
                    f"encoder.layer.{i}.{module}.{leaf}",
                    transpose and leaf == "weight",
                )
    return names


def axiom_to_hf_state(model: BertModel) -> OrderedDict[str, np.ndarray]:
    """The model's weights under Hugging Face ``BertModel`` names (``Linear`` weights ``(out, in)``).

    Example:
        >>> from axiom.io.hf_config import BertConfig
        >>> state = axiom_to_hf_state(BertModel(BertConfig(20, 8, 1, 2, 16)))
        >>> state["encoder.layer.0.attention.self.query.weight"].shape, "pooler.dense.bias" in state
        ((8, 8), True)
    """
    names = hf_names(len(model.encoder))
    out: OrderedDict[str, np.ndarray] = OrderedDict()
    for name, value in model.state_dict().items():
        hf_name, transpose = names[name]
        out[hf_name] = np.ascontiguousarray(value.T) if transpose else value
    return out
