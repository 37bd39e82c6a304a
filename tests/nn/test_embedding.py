"""Embedding: PyTorch parity, initialisation, index checking with named errors, shapes."""

import numpy as np
import pytest
from hypothesis import given
from hypothesis import strategies as st

from axiom import Dense, Embedding, Flatten, MultiHeadAttention, Sequential, ShapeError, Tensor, manual_seed

torch = pytest.importorskip("torch")


def _pair(num, dim, padding_idx=None, dtype=np.float32):
    """An Embedding and a torch.nn.Embedding holding the same weights."""
    ours = Embedding(num, dim, padding_idx=padding_idx, dtype=dtype)
    ref = torch.nn.Embedding(num, dim, padding_idx=padding_idx, dtype=torch.from_numpy(np.zeros(1, dtype)).dtype)
    with torch.no_grad():
        ref.weight.copy_(torch.from_numpy(ours.weight.numpy()))
    return ours, ref


@given(
    shape=st.lists(st.integers(0, 4), max_size=3).map(tuple),
    index_dtype=st.sampled_from([np.int64, np.int32, np.int16, np.uint8]),
    seed=st.integers(0, 2**16),
)
def test_embedding_matches_torch(shape, index_dtype, seed):
    rng = np.random.default_rng(seed)
    ours, ref = _pair(11, 5)
    idx = rng.integers(0, 11, shape).astype(index_dtype)
    y = ours(idx)
    y_ref = ref(torch.from_numpy(idx.astype(np.int64))).detach().numpy()
    np.testing.assert_array_equal(y.numpy(), y_ref)
    assert y.shape == ours.output_shape(idx.shape) == (*shape, 5)
    assert y.dtype == np.float32


def test_embedding_float64_and_tensor_and_list_inputs():
    ours, ref = _pair(6, 3, dtype=np.float64)
    idx = [[0, 5, 2], [1, 1, 4]]
    y_ref = ref(torch.tensor(idx)).detach().numpy()
    np.testing.assert_array_equal(ours(idx).numpy(), y_ref)
    np.testing.assert_array_equal(ours(Tensor(np.array(idx))).numpy(), y_ref)
    assert ours(idx).dtype == np.float64
    assert ours(np.int64(3)).shape == (3,)  # a scalar index gives one vector, like torch


def test_embedding_init_is_standard_normal_like_torch():
    manual_seed(0)
    w = Embedding(400, 100).weight.numpy()
    assert abs(w.mean()) < 0.01 and abs(w.std() - 1.0) < 0.01
    assert w.dtype == np.float32


@pytest.mark.parametrize("padding_idx,row", [(0, 0), (3, 3), (-1, 4)])
def test_embedding_padding_row_is_zero_like_torch(padding_idx, row):
    ours, ref = _pair(5, 4, padding_idx=padding_idx)
    assert ours.padding_idx == ref.padding_idx == row
    np.testing.assert_array_equal(ours.weight.numpy()[row], np.zeros(4, np.float32))
    assert np.abs(ours.weight.numpy()[[i for i in range(5) if i != row]]).sum() > 0
    np.testing.assert_array_equal(ours([row]).numpy(), np.zeros((1, 4), np.float32))


def test_embedding_state_dict_matches_torch_keys_and_loads():
    ours = Embedding(7, 3)
    ref = torch.nn.Embedding(7, 3)
    assert list(ours.state_dict()) == list(ref.state_dict()) == ["weight"]
    ours.load_state_dict({k: v.numpy() for k, v in ref.state_dict().items()})
    idx = np.array([[6, 0, 3]])
    np.testing.assert_array_equal(ours(idx).numpy(), ref(torch.from_numpy(idx)).detach().numpy())


def test_embedding_symbolic_shapes_and_models():
    emb = Embedding(100, 16)
    assert emb.accepts_integers is True
    assert emb.output_shape(("batch", "seq")) == ("batch", "seq", 16)
    assert emb.output_shape(("batch",)) == ("batch", 16)
    model = Sequential(Embedding(100, 16), MultiHeadAttention(16, 4))
    assert model.input_shape == ("batch", "seq")
    assert model.output_shape(("batch", "seq")) == ("batch", "seq", 16)
    assert model[1](model[0](np.array([[1, 2, 3]]))).shape == (1, 3, 16)
    clf = Sequential(Embedding(10, 4), Flatten(), Dense(2), input_shape=(None, 6))
    assert clf[2].in_features == 24
    with pytest.raises(ShapeError) as info:
        Sequential(Embedding(10, 4), MultiHeadAttention(8, 2))
    assert str(info.value).startswith(
        "layer 2 (MultiHeadAttention): expects (batch, seq, 8) but receives (batch, seq, 4)"
    )


def test_sequential_starting_with_embedding_takes_integer_indices():
    model = Sequential(Embedding(10, 4), Flatten(), Dense(2), input_shape=(None, 6))
    assert model(np.zeros((3, 6), np.int64)).shape == (3, 2)


@pytest.mark.parametrize("dtype", [np.float32, np.float64, np.float16, np.bool_])
def test_embedding_rejects_non_integer_indices(dtype):
    with pytest.raises(TypeError, match=r"Embedding: expects integer indices \(int32, int64, \.\.\.\) but receives"):
        Embedding(5, 2)(np.zeros((2, 3), dtype))


def test_embedding_rejects_nan_indices_with_position_and_range():
    idx = np.array([[1.0, np.nan, 2.0]], np.float32)
    with pytest.raises(ValueError) as info:
        Embedding(10, 4)(idx)
    msg = str(info.value)
    assert msg == "Embedding: index nan at position (0, 1) is not a number; expected integer indices in [0, 10)"
    with pytest.raises(ValueError, match=r"index inf at position \(2,\) is not a number"):
        Embedding(10, 4)(np.array([0.0, 1.0, np.inf]))


@pytest.mark.parametrize(
    "idx,value,where",
    [([[0, -1, 2]], -1, "(0, 1)"), ([[0, 1], [2, 10]], 10, "(1, 1)"), ([3, 99], 99, "(1,)"), (-5, -5, "()")],
)
def test_embedding_rejects_out_of_range_indices(idx, value, where):
    with pytest.raises(ValueError) as info:
        Embedding(10, 4)(np.asarray(idx))
    assert str(info.value) == (
        f"Embedding: index {value} at position {where} is out of range; expected integer indices in [0, 10)"
    )


def test_embedding_bad_constructor_arguments():
    for kwargs, pattern in [
        (dict(num_embeddings=0, embedding_dim=2), "num_embeddings must be a positive int"),
        (dict(num_embeddings=3, embedding_dim=2.5), "embedding_dim must be a positive int"),
        (dict(num_embeddings=3, embedding_dim=2, padding_idx=3), r"padding_idx must be in \[-3, 3\), got 3"),
        (dict(num_embeddings=3, embedding_dim=2, padding_idx=-4), r"padding_idx must be in \[-3, 3\)"),
        (dict(num_embeddings=3, embedding_dim=2, padding_idx=1.0), "padding_idx must be an int or None"),
    ]:
        with pytest.raises(ValueError, match="Embedding: " + pattern):
            Embedding(**kwargs)


def test_embedding_to_dtype_and_repr():
    emb = Embedding(4, 2, padding_idx=1).to("float64")
    assert emb(np.array([0, 1])).dtype == np.float64
    assert repr(emb) == "Embedding(4, 2, padding_idx=1)"
