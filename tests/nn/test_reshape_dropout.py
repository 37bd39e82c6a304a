"""Flatten, Reshape and Dropout: PyTorch parity where it exists, the laws where it cannot (RNG)."""

import math

import numpy as np
import pytest
from hypothesis import given
from hypothesis import strategies as st

from axiom import Dense, Dropout, Flatten, Reshape, Sequential, ShapeError, manual_seed
from axiom import functional as F
from axiom.nn.reshape import symbolic_product

torch = pytest.importorskip("torch")

shapes = st.lists(st.integers(1, 4), min_size=1, max_size=5).map(tuple)


# -- Flatten -----------------------------------------------------------------------------------


@given(shape=shapes)
def test_flatten_matches_torch_flatten_of_the_nhwc_array(shape):
    x = np.arange(math.prod(shape), dtype=np.float32).reshape(shape)
    layer = Flatten()
    y = layer(x)
    ref = torch.flatten(torch.from_numpy(x), 1).numpy() if x.ndim > 1 else x.reshape(-1, 1)
    np.testing.assert_array_equal(y.numpy(), ref)
    assert y.shape == layer.output_shape(x.shape) == (shape[0], math.prod(shape[1:]))


def test_flatten_nhwc_order_is_channels_fastest():
    x = np.zeros((1, 2, 2, 3), np.float32)
    x[0, 0, 1, 2] = 1.0  # h=0, w=1, c=2 -> index (0*2 + 1)*3 + 2 = 5
    assert Flatten()(x).numpy()[0].tolist().index(1.0) == 5


def test_flatten_symbolic_and_errors():
    assert Flatten().output_shape(("batch", 7, 7, 64)) == ("batch", 3136)
    assert Flatten().output_shape(("batch", "H", "W", 3)) == ("batch", "H*W*3")
    assert Flatten().output_shape(("batch", "H-2", "W-2", 64)) == ("batch", "(H-2)*(W-2)*64")
    assert Flatten().output_shape(("batch",)) == ("batch", 1)
    assert Flatten().output_shape(("batch", "seq")) == ("batch", "seq")
    assert symbolic_product(()) == 1
    with pytest.raises(ShapeError, match=r"Flatten: expects \(batch, \.\.\.\) but receives \(\) \(a scalar"):
        Flatten().output_shape(())
    with pytest.raises(TypeError, match="Flatten: expects a floating-point tensor"):
        Flatten()(np.ones((2, 2), np.int64))


def test_flatten_then_dense_infers_size_at_definition_time():
    model = Sequential(Flatten(), Dense(10), input_shape=(None, 4, 4, 3))
    assert model[1].in_features == 48
    assert model.output_shape(("batch", 4, 4, 3)) == ("batch", 10)
    with pytest.raises(ShapeError) as info:
        Sequential(Flatten(), Dense(47, 10), input_shape=(None, 4, 4, 3))
    assert str(info.value).startswith("layer 2 (Dense): expects (batch, 47) but receives (batch, 48)")
    assert Flatten()(np.zeros((0, 2, 3), np.float32)).shape == (0, 6)


# -- Reshape -----------------------------------------------------------------------------------


@given(data=st.data(), shape=shapes)
def test_reshape_matches_numpy_and_torch(data, shape):
    size = math.prod(shape[1:])
    divisors = [d for d in range(1, size + 1) if size % d == 0]
    d = data.draw(st.sampled_from(divisors))
    target = data.draw(st.sampled_from([(d, size // d), (-1, d), (d, -1), (size,), (-1,), (1, size, 1)]))
    x = np.arange(math.prod(shape), dtype=np.float32).reshape(shape)
    layer = Reshape(target)
    y = layer(x)
    ref = torch.from_numpy(x).reshape(shape[0], *target).numpy()
    np.testing.assert_array_equal(y.numpy(), ref)
    assert y.shape == layer.output_shape(x.shape)


def test_reshape_infers_minus_one_and_symbolic_dims():
    assert Reshape((4, 4, 1)).output_shape(("batch", 16)) == ("batch", 4, 4, 1)
    assert Reshape((-1, 4)).output_shape(("batch", 2, 8)) == ("batch", 4, 4)
    assert Reshape(-1).output_shape(("batch", 2, 8)) == ("batch", 16)
    assert Reshape((-1, 64)).output_shape(("batch", "seq", 128)) == ("batch", "seq*2", 64)
    assert Reshape((-1, 3)).output_shape(("batch", "seq", 4)) == ("batch", "(seq*4)/3", 3)
    assert Reshape((8, 16)).output_shape(("batch", "seq", 16)) == ("batch", 8, 16)  # checked when data arrives
    x = np.ones((2, 8, 16), np.float32)
    assert Reshape((-1, 64))(x).shape == (2, 2, 64)


def test_reshape_size_errors_at_definition_time():
    with pytest.raises(ShapeError) as info:
        Sequential(Dense(4, 16), Reshape((3, 5)))
    msg = str(info.value)
    assert msg.startswith("layer 2 (Reshape): expects (batch, ...) with 15 values per example but receives (batch, 16)")
    assert "16 values per example cannot be reshaped to (3, 5)" in msg and "from layer 1 (Dense)" in msg
    with pytest.raises(ShapeError, match="with a multiple of 5 values per example.*cannot be reshaped to"):
        Reshape((-1, 5)).output_shape(("batch", 16))
    with pytest.raises(ShapeError, match=r"a multiple of 16 values per example cannot be reshaped to \(3, 5\)"):
        Reshape((3, 5)).output_shape(("batch", "seq", 16))
    with pytest.raises(ShapeError, match="cannot be reshaped"):
        Reshape((8, 16))(np.ones((2, 3, 16), np.float32))  # symbolic at definition, caught with data


@pytest.mark.parametrize("bad", [(-1, -1), (0, 4), (-2, 4), (2.0, 4), (True, 4), ("a", 4)])
def test_reshape_rejects_bad_targets(bad):
    with pytest.raises(ValueError, match="Reshape: "):
        Reshape(bad)


def test_reshape_then_flatten_round_trip():
    x = np.random.default_rng(0).normal(size=(3, 24)).astype(np.float32)
    model = Sequential(Reshape((2, 3, 4)), Flatten(), input_shape=(None, 24))
    assert model.output_shape(("batch", 24)) == ("batch", 24)
    np.testing.assert_array_equal(model(x).numpy(), x)


# -- Dropout -----------------------------------------------------------------------------------


def test_dropout_is_identity_in_eval_mode():
    x = np.random.default_rng(0).normal(size=(4, 5)).astype(np.float32)
    drop = Dropout(0.9)
    assert drop.training is False
    np.testing.assert_array_equal(drop(x).numpy(), x)
    drop.train().eval()
    np.testing.assert_array_equal(drop(x).numpy(), x)


@pytest.mark.parametrize("p", [0.1, 0.5, 0.8])
@pytest.mark.parametrize("dtype", [np.float32, np.float64, np.float16])
def test_dropout_training_zeroes_with_probability_p_and_scales_survivors(p, dtype):
    manual_seed(1234)
    n = 200_000
    x = np.random.default_rng(1).uniform(0.5, 2.0, n).astype(dtype)
    y = Dropout(p).train()(x).numpy()
    assert y.dtype == dtype
    dropped = y == 0
    zero_frac = dropped.mean()
    assert abs(zero_frac - p) < 5 * math.sqrt(p * (1 - p) / n)  # 5 sigma of the binomial
    scale = 1.0 / (1.0 - p)
    np.testing.assert_allclose(y[~dropped], (x[~dropped].astype(np.float64) * scale).astype(dtype), rtol=1e-3)
    if dtype != np.float16:
        np.testing.assert_allclose(y[~dropped], x[~dropped] * dtype(scale), rtol=1e-6)
    # inverted dropout keeps the expectation: E[y] = x
    ratio = y.astype(np.float64).sum() / x.astype(np.float64).sum()
    assert abs(ratio - 1.0) < 0.02


@given(p=st.floats(0.0, 0.95), shape=shapes)
def test_dropout_law_on_random_shapes(p, shape):
    x = np.full(shape, 3.0, np.float32)
    y = Dropout(p).train()(x).numpy()
    assert y.shape == x.shape
    assert np.isin(y, [np.float32(0.0), np.float32(3.0) * np.float32(1.0 / (1.0 - p))]).all()


def test_dropout_p_zero_is_identity_in_training():
    x = np.random.default_rng(0).normal(size=(3, 7)).astype(np.float32)
    np.testing.assert_array_equal(Dropout(0.0).train()(x).numpy(), x)
    np.testing.assert_array_equal(F.dropout(x, 0.0).numpy(), x)


def test_dropout_masks_are_reproducible_with_manual_seed_and_fresh_per_call():
    x = np.ones((64, 64), np.float32)
    drop = Dropout(0.5).train()
    manual_seed(7)
    a, b = drop(x).numpy(), drop(x).numpy()
    manual_seed(7)
    a2 = drop(x).numpy()
    np.testing.assert_array_equal(a, a2)
    assert not np.array_equal(a, b)


def test_dropout_follows_model_train_and_eval():
    model = Sequential(Dense(8, 8), Dropout(0.5))
    assert not model[1].training
    x = np.ones((32, 8), np.float32)
    np.testing.assert_array_equal(model(x).numpy(), model(x).numpy())
    model.train()
    assert model[1].training
    assert (model(x).numpy() == 0).any()
    model.eval()
    np.testing.assert_array_equal(model(x).numpy(), model[0](x).numpy())


def test_dropout_propagates_nan_like_torch():
    manual_seed(0)
    x = np.full(1000, np.nan, np.float32)
    assert np.isnan(Dropout(0.5).train()(x).numpy()).all()
    assert np.isnan(torch.nn.Dropout(0.5)(torch.from_numpy(x)).numpy()).all()


@pytest.mark.parametrize("p", [1.0, -0.1, 1.5, True, "0.5", None, float("nan")])
def test_dropout_rejects_bad_p(p):
    with pytest.raises(ValueError, match=r"Dropout: dropout probability p must be a number in \[0, 1\)"):
        Dropout(p)


def test_dropout_shapes_and_state():
    assert Dropout().p == 0.5
    assert Dropout(0.2).output_shape(("batch", "seq", 16)) == ("batch", "seq", 16)
    assert Dropout().state_dict() == {}
    with pytest.raises(ShapeError, match="Dropout: .*a scalar has no batch axis"):
        Dropout().output_shape(())
    with pytest.raises(TypeError, match="Dropout: expects a floating-point tensor"):
        Dropout()(np.ones(3, np.int32))
    assert repr(Dropout(0.25)) == "Dropout(p=0.25)"
