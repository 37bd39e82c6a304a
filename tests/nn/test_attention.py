"""MultiHeadAttention and RoPE: PyTorch parity (nn.MultiheadAttention, SDPA), masks, laws, errors."""

import math

import numpy as np
import pytest
from hypothesis import given
from hypothesis import strategies as st

from axiom import MultiHeadAttention, ShapeError, manual_seed
from axiom import functional as F

torch = pytest.importorskip("torch")

TOL = {np.float32: dict(rtol=1e-5, atol=1e-5), np.float64: dict(rtol=1e-10, atol=1e-12)}
TORCH_DTYPE = {np.float32: torch.float32, np.float64: torch.float64}


def _randomise(mha: MultiHeadAttention, seed: int = 0) -> None:
    """Non-trivial weights and biases (torch-style init has zero biases, which would hide bias bugs)."""
    rng = np.random.default_rng(seed)
    for proj in (mha.q_proj, mha.k_proj, mha.v_proj, mha.out_proj):
        dt = proj.weight.dtype
        proj.weight.data = rng.normal(0, 1 / math.sqrt(mha.embed_dim), proj.weight.shape).astype(dt)
        if proj.bias is not None:
            proj.bias.data = rng.normal(0, 0.5, proj.bias.shape).astype(dt)


def _torch_mha(mha: MultiHeadAttention, dtype) -> "torch.nn.MultiheadAttention":
    """torch.nn.MultiheadAttention(batch_first=True) with our weights (the documented mapping)."""
    bias = mha.q_proj.bias is not None
    ref = torch.nn.MultiheadAttention(
        mha.embed_dim, mha.num_heads, bias=bias, batch_first=True, dtype=TORCH_DTYPE[dtype]
    ).eval()
    sd = mha.state_dict()
    w = {
        "in_proj_weight": np.concatenate([sd["q_proj.weight"].T, sd["k_proj.weight"].T, sd["v_proj.weight"].T]),
        "out_proj.weight": sd["out_proj.weight"].T,
    }
    if bias:
        w["in_proj_bias"] = np.concatenate([sd["q_proj.bias"], sd["k_proj.bias"], sd["v_proj.bias"]])
        w["out_proj.bias"] = sd["out_proj.bias"]
    ref.load_state_dict({k: torch.from_numpy(np.ascontiguousarray(v)) for k, v in w.items()})
    return ref


def _causal_hidden(lq: int, lk: int) -> np.ndarray:
    """True where a query may not look (aligned at the end: the last query sees every key)."""
    return np.triu(np.ones((lq, lk), dtype=bool), k=1 + lk - lq)


def _torch_run(ref, q, k=None, v=None, **kwargs) -> np.ndarray:
    k = q if k is None else k
    v = k if v is None else v
    t = {name: torch.from_numpy(a) for name, a in (("q", q), ("k", k), ("v", v))}
    kwargs = {name: torch.from_numpy(m) if isinstance(m, np.ndarray) else m for name, m in kwargs.items()}
    with torch.no_grad():
        return ref(t["q"], t["k"], t["v"], need_weights=False, **kwargs)[0].numpy()


def rope_complex(x: np.ndarray, base: float = 10000.0, positions=None) -> np.ndarray:
    """Independent RoPE: pair dim i with i + d/2 as one complex number and rotate by pos * base^(-2i/d)."""
    d = x.shape[-1]
    half = d // 2
    pos = np.arange(x.shape[-2]) if positions is None else np.asarray(positions)
    theta = pos[:, None].astype(np.float64) * base ** (-2.0 * np.arange(half) / d)[None, :]
    z = (x[..., :half].astype(np.float64) + 1j * x[..., half:].astype(np.float64)) * np.exp(1j * theta)
    return np.concatenate([z.real, z.imag], axis=-1).astype(x.dtype)


# -- parity with torch.nn.MultiheadAttention -------------------------------------------------------


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
@pytest.mark.parametrize("causal", [False, True])
@pytest.mark.parametrize("bias", [True, False])
@pytest.mark.parametrize("embed_dim,num_heads", [(8, 1), (12, 3), (16, 4)])
def test_self_attention_matches_torch(dtype, causal, bias, embed_dim, num_heads):
    mha = MultiHeadAttention(embed_dim, num_heads, bias=bias, causal=causal, dtype=dtype)
    _randomise(mha, seed=embed_dim)
    ref = _torch_mha(mha, dtype)
    x = np.random.default_rng(1).normal(size=(3, 5, embed_dim)).astype(dtype)
    y = mha(x)
    mask = {"attn_mask": _causal_hidden(5, 5), "is_causal": True} if causal else {}
    np.testing.assert_allclose(y.numpy(), _torch_run(ref, x, **mask), **TOL[dtype])
    assert y.dtype == dtype and y.shape == mha.output_shape(x.shape) == x.shape


@given(
    batch=st.integers(1, 3),
    seq=st.integers(1, 6),
    heads=st.integers(1, 4),
    head_dim=st.integers(1, 5),
    causal=st.booleans(),
)
def test_self_attention_matches_torch_on_random_sizes(batch, seq, heads, head_dim, causal):
    e = heads * head_dim
    mha = MultiHeadAttention(e, heads, causal=causal, dtype="float64")
    _randomise(mha, seed=seq)
    x = np.random.default_rng(seq).normal(size=(batch, seq, e))
    mask = {"attn_mask": _causal_hidden(seq, seq)} if causal else {}
    np.testing.assert_allclose(mha(x).numpy(), _torch_run(_torch_mha(mha, np.float64), x, **mask), **TOL[np.float64])


@pytest.mark.filterwarnings("ignore:Support for mismatched key_padding_mask and attn_mask is deprecated")
@pytest.mark.parametrize("dtype", [np.float32, np.float64])
def test_cross_attention_and_masks_match_torch(dtype):
    rng = np.random.default_rng(2)
    mha = MultiHeadAttention(8, 2, dtype=dtype)
    _randomise(mha, seed=3)
    ref = _torch_mha(mha, dtype)
    q = rng.normal(size=(2, 3, 8)).astype(dtype)
    k = rng.normal(size=(2, 6, 8)).astype(dtype)
    v = rng.normal(size=(2, 6, 8)).astype(dtype)
    np.testing.assert_allclose(mha.forward_qkv(q, k, v).numpy(), _torch_run(ref, q, k, v), **TOL[dtype])
    # key = value = context
    np.testing.assert_allclose(mha.forward_qkv(q, k).numpy(), _torch_run(ref, q, k, k), **TOL[dtype])
    pad = np.zeros((2, 6), bool)
    pad[0, 4:] = True
    pad[1, 0] = True
    np.testing.assert_allclose(
        mha.forward_qkv(q, k, v, key_padding_mask=pad).numpy(),
        _torch_run(ref, q, k, v, key_padding_mask=pad),
        **TOL[dtype],
    )
    bool_mask = rng.random((3, 6)) < 0.3
    bool_mask[:, 0] = False  # keep every row attending somewhere
    float_mask = rng.normal(size=(3, 6)).astype(dtype)
    per_head = rng.normal(size=(2 * 2, 3, 6)).astype(dtype)  # torch's (batch * heads, Lq, Lk)
    for m in (bool_mask, float_mask, per_head):
        np.testing.assert_allclose(
            mha.forward_qkv(q, k, v, attn_mask=m, key_padding_mask=pad).numpy(),
            _torch_run(ref, q, k, v, attn_mask=m, key_padding_mask=pad),
            **TOL[dtype],
        )
    # a 4-D mask broadcasting over heads equals the same 2-D mask per batch row
    four_d = np.broadcast_to(float_mask, (2, 1, 3, 6))
    np.testing.assert_allclose(
        mha.forward_qkv(q, k, v, attn_mask=four_d).numpy(),
        mha.forward_qkv(q, k, v, attn_mask=float_mask).numpy(),
        **TOL[dtype],
    )


def test_causal_cross_attention_aligns_mask_at_the_end():
    mha = MultiHeadAttention(8, 2, causal=True, dtype="float64")
    _randomise(mha)
    ref = _torch_mha(mha, np.float64)
    rng = np.random.default_rng(4)
    q, kv = rng.normal(size=(2, 3, 8)), rng.normal(size=(2, 5, 8))
    np.testing.assert_allclose(
        mha.forward_qkv(q, kv).numpy(), _torch_run(ref, q, kv, attn_mask=_causal_hidden(3, 5)), **TOL[np.float64]
    )


def test_causal_output_ignores_the_future():
    mha = MultiHeadAttention(8, 2, causal=True, rope=True)
    x = np.random.default_rng(5).normal(size=(1, 6, 8)).astype(np.float32)
    y = mha(x).numpy()
    x2 = x.copy()
    x2[:, 4:] = 100.0
    y2 = mha(x2).numpy()
    np.testing.assert_allclose(y2[:, :4], y[:, :4], rtol=1e-6, atol=1e-6)
    assert not np.allclose(y2[:, 4:], y[:, 4:])
    assert not np.allclose(MultiHeadAttention(8, 2)(x2).numpy()[:, :4], MultiHeadAttention(8, 2)(x).numpy()[:, :4])


# -- RoPE ------------------------------------------------------------------------------------------


@given(
    shape=st.tuples(st.integers(1, 2), st.integers(1, 3), st.integers(1, 7), st.integers(1, 8).map(lambda h: 2 * h)),
    base=st.sampled_from([10000.0, 500.0, 10.0]),
)
def test_functional_rope_matches_complex_rotation(shape, base):
    x = np.random.default_rng(sum(shape)).normal(size=shape)
    np.testing.assert_allclose(F.rope(x, base=base).numpy(), rope_complex(x, base), rtol=1e-12, atol=1e-12)
    x32 = x.astype(np.float32)
    np.testing.assert_allclose(F.rope(x32, base=base).numpy(), rope_complex(x32, base), rtol=1e-5, atol=1e-5)
    positions = np.arange(shape[-2]) + 7
    np.testing.assert_allclose(
        F.rope(x, positions=positions, base=base).numpy(), rope_complex(x, base, positions), rtol=1e-12, atol=1e-12
    )


def test_rope_is_a_rotation_with_relative_position_scores():
    rng = np.random.default_rng(6)
    d, length = 8, 10
    q, k = rng.normal(size=(1, d)), rng.normal(size=(1, d))
    qs = F.rope(np.repeat(q, length, 0)).numpy()  # the same vector at every position
    ks = F.rope(np.repeat(k, length, 0)).numpy()
    np.testing.assert_allclose(np.linalg.norm(qs, axis=-1), np.linalg.norm(q), rtol=1e-12)
    np.testing.assert_allclose(qs[0], q[0], rtol=1e-12)  # position 0 is not rotated
    scores = qs @ ks.T  # <rope(q, m), rope(k, n)> depends on m - n only
    for offset in range(-3, 4):
        diag = np.diagonal(scores, offset)
        np.testing.assert_allclose(diag, diag[0], rtol=1e-10, atol=1e-12)


@pytest.mark.parametrize("causal", [False, True])
@pytest.mark.parametrize("base", [10000.0, 100.0])
def test_rope_attention_matches_torch_pipeline(causal, base):
    """Projections and SDPA in torch, RoPE from the independent complex implementation."""
    e, h, seq = 16, 2, 7
    mha = MultiHeadAttention(e, h, causal=causal, rope=True, rope_base=base, dtype="float64")
    _randomise(mha, seed=7)
    x = np.random.default_rng(8).normal(size=(2, seq, e))
    sd = {k: torch.from_numpy(v) for k, v in mha.state_dict().items()}
    xt = torch.from_numpy(x)

    def heads(name: str) -> np.ndarray:
        y = xt @ sd[f"{name}.weight"] + sd[f"{name}.bias"]
        return y.reshape(2, seq, h, e // h).transpose(1, 2).numpy()

    q = torch.from_numpy(rope_complex(heads("q_proj"), base))
    k = torch.from_numpy(rope_complex(heads("k_proj"), base))
    v = torch.from_numpy(heads("v_proj"))
    o = torch.nn.functional.scaled_dot_product_attention(q, k, v, is_causal=causal)
    ref = (o.transpose(1, 2).reshape(2, seq, e) @ sd["out_proj.weight"] + sd["out_proj.bias"]).numpy()
    np.testing.assert_allclose(mha(x).numpy(), ref, **TOL[np.float64])
    # and RoPE changes the result (it is really applied)
    plain = MultiHeadAttention(e, h, causal=causal, dtype="float64")
    plain.load_state_dict(mha.state_dict())
    assert not np.allclose(plain(x).numpy(), ref)


# -- dropout on attention probabilities ------------------------------------------------------------


def test_attention_dropout_only_in_training_and_unbiased():
    manual_seed(0)
    mha = MultiHeadAttention(8, 2, dropout=0.3)
    _randomise(mha)
    x = np.random.default_rng(9).normal(size=(1, 4, 8)).astype(np.float32)
    expected = mha(x).numpy()
    no_drop = MultiHeadAttention(8, 2)
    no_drop.load_state_dict(mha.state_dict())
    np.testing.assert_allclose(expected, no_drop(x).numpy(), rtol=1e-6)  # eval: no dropout
    mha.train()
    many = np.repeat(x, 4000, axis=0)  # every batch row draws its own masks
    y = mha(many).numpy()
    assert not np.allclose(y[0], expected[0], atol=1e-3)
    np.testing.assert_allclose(y.mean(axis=0), expected[0], atol=0.05)  # inverted dropout: E[y] = eval output
    no_drop.train()
    np.testing.assert_allclose(no_drop(x).numpy(), expected, rtol=1e-6)  # p = 0: training changes nothing


def test_attention_dropout_path_matches_fused_path_with_tiny_p():
    mha = MultiHeadAttention(8, 2, causal=True, dropout=1e-12)
    _randomise(mha)
    x = np.random.default_rng(10).normal(size=(2, 5, 8)).astype(np.float32)
    pad = np.zeros((2, 5), bool)
    pad[1, 3] = True  # (padding key 0 would leave query 0 nothing to attend under the causal mask: NaN)
    fused = mha.forward_qkv(x, key_padding_mask=pad).numpy()
    unfused = mha.train().forward_qkv(x, key_padding_mask=pad).numpy()
    assert np.isfinite(fused).all()
    np.testing.assert_allclose(unfused, fused, rtol=1e-5, atol=1e-6)


# -- structure, shapes, errors ---------------------------------------------------------------------


def test_state_dict_keys_and_torch_like_init():
    mha = MultiHeadAttention(16, 4)
    assert list(mha.state_dict()) == [
        f"{p}.{w}" for p in ("q_proj", "k_proj", "v_proj", "out_proj") for w in ("weight", "bias")
    ]
    assert list(MultiHeadAttention(16, 4, bias=False).state_dict()) == [
        "q_proj.weight",
        "k_proj.weight",
        "v_proj.weight",
        "out_proj.weight",
    ]
    sd = mha.state_dict()
    xavier = math.sqrt(6 / (16 + 48))
    for name in ("q_proj", "k_proj", "v_proj"):
        assert sd[f"{name}.weight"].shape == (16, 16) and np.abs(sd[f"{name}.weight"]).max() <= xavier
    assert np.abs(sd["out_proj.weight"]).max() <= 1 / math.sqrt(16)
    assert all(not sd[f"{p}.bias"].any() for p in ("q_proj", "k_proj", "v_proj", "out_proj"))
    assert mha.head_dim == 4 and mha.training is False
    _torch_mha(mha, np.float32)  # the mapping loads into torch (shapes agree)


def test_symbolic_output_shape():
    mha = MultiHeadAttention(16, 4)
    assert mha.output_shape(("batch", "seq", 16)) == ("batch", "seq", 16)
    assert mha.output_shape(("batch", "seq", "d")) == ("batch", "seq", "d")
    assert mha.default_input_shape() == ("batch", "seq", 16)


def test_constructor_errors():
    with pytest.raises(ValueError, match=r"MultiHeadAttention: embed_dim \(10\) must be divisible by num_heads \(3\)"):
        MultiHeadAttention(10, 3)
    with pytest.raises(ValueError, match="rope=True needs an even head_dim, got 3"):
        MultiHeadAttention(6, 2, rope=True)
    with pytest.raises(ValueError, match=r"MultiHeadAttention: dropout probability p must be a number in \[0, 1\)"):
        MultiHeadAttention(8, 2, dropout=1.0)
    with pytest.raises(ValueError, match="num_heads must be a positive int"):
        MultiHeadAttention(8, 0)
    with pytest.raises(ValueError, match="rope_base must be a positive number"):
        MultiHeadAttention(8, 2, rope=True, rope_base=0)


def test_shape_and_input_errors():
    mha = MultiHeadAttention(8, 2)
    with pytest.raises(ShapeError) as info:
        mha(np.ones((2, 8), np.float32))
    assert str(info.value) == (
        "MultiHeadAttention: expects (batch, seq, 8) but receives (2, 8) (rank 3 expected, got rank 2)"
    )
    with pytest.raises(ShapeError, match=r"receives \(batch, seq, 6\) \(last axis must be embed_dim=8\)"):
        mha.output_shape(("batch", "seq", 6))
    with pytest.raises(TypeError, match="MultiHeadAttention: input dtype float64 does not match parameter dtype"):
        mha(np.ones((1, 2, 8)))
    with pytest.raises(TypeError, match="MultiHeadAttention: expects a floating-point tensor"):
        mha(np.ones((1, 2, 8), np.int64))
    q = np.ones((2, 3, 8), np.float32)
    with pytest.raises(ShapeError, match="key must be .* with the query's batch 2"):
        mha.forward_qkv(q, np.ones((1, 3, 8), np.float32))
    with pytest.raises(ShapeError, match=r"key must be \(batch, seq_k, 8\)"):
        mha.forward_qkv(q, np.ones((2, 3, 4), np.float32))
    with pytest.raises(ShapeError, match="value must have the key's length 3"):
        mha.forward_qkv(q, q, np.ones((2, 4, 8), np.float32))
    with pytest.raises(ShapeError, match="causal attention needs seq_k >= seq_q = 3"):
        MultiHeadAttention(8, 2, causal=True).forward_qkv(q, np.ones((2, 2, 8), np.float32))
    with pytest.raises(ShapeError, match=r"expects attn_mask \(3, 3\), \(4, 3, 3\) or broadcasting to"):
        mha.forward_qkv(q, attn_mask=np.zeros((3, 4), np.float32))
    with pytest.raises(ShapeError, match=r"expects \(2, 3\) but receives \(2, 4\)"):
        mha.forward_qkv(q, key_padding_mask=np.zeros((2, 4), bool))
    with pytest.raises(TypeError, match=r"masks must be boolean \(True = hidden\) or float"):
        mha.forward_qkv(q, attn_mask=np.zeros((3, 3), np.int64))


def test_low_precision_and_repr():
    x = np.random.default_rng(11).normal(size=(2, 4, 8)).astype(np.float32)
    mha = MultiHeadAttention(8, 2, causal=True, rope=True)
    _randomise(mha)
    ref = mha(x).numpy()
    mha.to("float16")
    y = mha(x.astype(np.float16))
    assert y.dtype == np.float16
    np.testing.assert_allclose(y.numpy().astype(np.float32), ref, rtol=2e-2, atol=2e-2)
    assert "causal=True, rope=True" in MultiHeadAttention(8, 2, causal=True, rope=True).extra_repr()
