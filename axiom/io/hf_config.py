"""Read and check a Hugging Face BERT ``config.json`` (the subset axiom can import).

:func:`parse_bert_config` turns the JSON dictionary into a :class:`BertConfig`. Options that
change the computation and that axiom does not implement (relative position embeddings, a
decoder, cross-attention, an unknown activation) raise :class:`UnsupportedConfigError` naming
the option and its value; options that only matter for training (dropout rates, initializer
range, gradient checkpointing, ...) are ignored.

Example:
    >>> cfg = parse_bert_config({"model_type": "bert", "vocab_size": 30, "hidden_size": 8,
    ...     "num_hidden_layers": 1, "num_attention_heads": 2, "intermediate_size": 16})
    >>> cfg.hidden_act, cfg.max_position_embeddings, cfg.layer_norm_eps
    ('gelu', 512, 1e-12)
    >>> try:
    ...     parse_bert_config({**cfg.to_dict(), "position_embedding_type": "relative_key"})
    ... except UnsupportedConfigError as err:
    ...     print(err)
    config.json: position_embedding_type='relative_key' is not supported; expected 'absolute'
"""

from __future__ import annotations

from dataclasses import asdict, dataclass
from typing import Any

__all__ = ["BertConfig", "UnsupportedConfigError", "parse_bert_config", "HIDDEN_ACTIVATIONS"]

#: Hugging Face ``hidden_act`` names and the axiom activation that computes the same function.
HIDDEN_ACTIVATIONS = {
    "gelu": "gelu",  # exact (erf) GELU
    "gelu_new": "gelu_tanh",
    "gelu_pytorch_tanh": "gelu_tanh",
    "relu": "relu",
    "silu": "silu",
    "swish": "silu",
    "tanh": "tanh",
}

_REQUIRED = ("vocab_size", "hidden_size", "num_hidden_layers", "num_attention_heads", "intermediate_size")


class UnsupportedConfigError(ValueError):
    """A config option (named in the message) that axiom's BERT import does not implement."""


@dataclass(frozen=True)
class BertConfig:
    """The BERT hyper-parameters axiom uses (names as in Hugging Face's ``BertConfig``).

    Example:
        >>> BertConfig(vocab_size=30, hidden_size=8, num_hidden_layers=1, num_attention_heads=2,
        ...            intermediate_size=16).head_dim
        4
    """

    vocab_size: int
    hidden_size: int
    num_hidden_layers: int
    num_attention_heads: int
    intermediate_size: int
    max_position_embeddings: int = 512
    type_vocab_size: int = 2
    layer_norm_eps: float = 1e-12
    hidden_act: str = "gelu"
    pad_token_id: int | None = 0
    model_type: str = "bert"
    position_embedding_type: str = "absolute"

    @property
    def head_dim(self) -> int:
        return self.hidden_size // self.num_attention_heads

    def to_dict(self) -> dict[str, Any]:
        """The config as a ``config.json`` dictionary (with ``architectures: ["BertModel"]``).

        Example:
            >>> BertConfig(30, 8, 1, 2, 16).to_dict()["architectures"]
            ['BertModel']
        """
        return {"architectures": ["BertModel"], **asdict(self)}


def _positive_int(raw: dict[str, Any], key: str, source: str, default: int | None = None) -> int:
    value = raw.get(key, default)
    if value is None:
        raise ValueError(f"{source}: missing {key!r}; expected a positive int")
    if isinstance(value, bool) or not isinstance(value, int) or value <= 0:
        raise ValueError(f"{source}: {key} must be a positive int, got {value!r}")
    return value


def _reject(raw: dict[str, Any], key: str, allowed: tuple[Any, ...], source: str) -> None:
    value = raw.get(key, allowed[0])
    if value not in allowed:
        expected = " or ".join(repr(a) for a in allowed)
        raise UnsupportedConfigError(f"{source}: {key}={value!r} is not supported; expected {expected}")


def parse_bert_config(raw: Any, source: str = "config.json") -> BertConfig:
    """Check a parsed ``config.json`` and return a :class:`BertConfig`.

    Raises ``ValueError`` for missing or malformed sizes and :class:`UnsupportedConfigError`
    for options axiom cannot reproduce, each naming the key, its value and what was expected.

    Example:
        >>> try:
        ...     parse_bert_config({"model_type": "roberta"})
        ... except UnsupportedConfigError as err:
        ...     print(err)
        config.json: model_type='roberta' is not supported; expected 'bert'
    """
    if not isinstance(raw, dict):
        raise ValueError(f"{source}: expected a JSON object, got {type(raw).__name__}")
    _reject(raw, "model_type", ("bert",), source)
    _reject(raw, "position_embedding_type", ("absolute",), source)
    _reject(raw, "is_decoder", (False,), source)
    _reject(raw, "add_cross_attention", (False,), source)
    act = raw.get("hidden_act", "gelu")
    if not isinstance(act, str) or act not in HIDDEN_ACTIVATIONS:
        raise UnsupportedConfigError(
            f"{source}: hidden_act={act!r} is not supported; expected one of {sorted(HIDDEN_ACTIVATIONS)}"
        )
    sizes = {key: _positive_int(raw, key, source) for key in _REQUIRED}
    if sizes["hidden_size"] % sizes["num_attention_heads"] != 0:
        raise ValueError(
            f"{source}: hidden_size ({sizes['hidden_size']}) must be divisible by "
            f"num_attention_heads ({sizes['num_attention_heads']})"
        )
    eps = raw.get("layer_norm_eps", 1e-12)
    if isinstance(eps, bool) or not isinstance(eps, int | float) or not eps >= 0:
        raise ValueError(f"{source}: layer_norm_eps must be a non-negative number, got {eps!r}")
    pad = raw.get("pad_token_id", 0)
    if pad is not None and (isinstance(pad, bool) or not isinstance(pad, int) or not 0 <= pad < sizes["vocab_size"]):
        raise ValueError(f"{source}: pad_token_id must be an int in [0, {sizes['vocab_size']}) or null, got {pad!r}")
    return BertConfig(
        **sizes,
        max_position_embeddings=_positive_int(raw, "max_position_embeddings", source, 512),
        type_vocab_size=_positive_int(raw, "type_vocab_size", source, 2),
        layer_norm_eps=float(eps),
        hidden_act=act,
        pad_token_id=pad,
    )
