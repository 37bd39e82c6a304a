"""Dense, activations, softmax: shapes, errors and parity with PyTorch."""

import numpy as np
import pytest
from hypothesis import given
from hypothesis import strategies as st

import axiom
from axiom import GELU, Activation, Dense, LeakyReLU, LogSoftmax, ShapeError, Softmax, Tensor, relu
from axiom.backends import ACTIVATIONS

torch = pytest.importorskip("torch")
TF = torch.nn.functional

TORCH_ACTIVATIONS = {
    "identity": lambda x: x,
    "relu": TF.relu,
    "leaky_relu": lambda x: TF.leaky_relu(x, 0.01),
    "elu": TF.elu,
    "selu": TF.selu,
    "gelu": TF.gelu,
    "gelu_tanh": lambda x: TF.gelu(x, approximate="tanh"),
    "sigmoid": torch.sigmoid,
    "tanh": torch.tanh,
    "softplus": TF.softplus,
    "softsign": TF.softsign,
    "silu": TF.silu,
    "mish": TF.mish,
    "hardswish": TF.hardswish,
    "hardsigmoid": TF.hardsigmoid,
    "relu6": TF.relu6,
}
TOL = {np.float32: dict(rtol=1.3e-6, atol=1e-5), np.float64: dict(rtol=1e-7, atol=1e-7)}


def test_every_contract_activation_has_a_torch_twin():
    assert set(TORCH_ACTIVATIONS) == set(ACTIVATIONS)


@pytest.mark.parametrize("name", ACTIVATIONS)
@pytest.mark.parametrize("dtype", [np.float32, np.float64])
def test_activation_matches_torch(name, dtype):
    rng = np.random.default_rng(0)
    x = np.concatenate([rng.normal(0, 4, 500), [0.0, -0.0, 3.0, -3.0, 6.0, 25.0, -25.0, 80.0, -80.0]]).astype(dtype)
    fn = getattr(axiom, name) if hasattr(axiom, name) else axiom.nn.activations.ActivationFunction(name)
    ours = fn(x).numpy()
    ref = TORCH_ACTIVATIONS[name](torch.from_numpy(x)).numpy()
    assert ours.dtype == dtype
    np.testing.assert_allclose(ours, ref, **TOL[dtype])


@pytest.mark.parametrize("name", ACTIVATIONS)
def test_activation_propagates_nan_like_torch(name):
    x = np.array([np.nan, np.inf, -np.inf, 1.0], np.float32)
    fn = axiom.nn.activations.ActivationFunction(name)
    ours = fn(x).numpy()
    ref = TORCH_ACTIVATIONS[name](torch.from_numpy(x)).numpy()
    if name == "gelu":
        # torch's erf-GELU returns NaN at +inf; the mathematical limit (ours) is +inf.
        ref[1] = np.inf
    np.testing.assert_allclose(ours, ref, rtol=1e-6, atol=1e-6, equal_nan=True)


@pytest.mark.parametrize("dtype,rtol", [("float16", 1e-3), ("bfloat16", 1.6e-2)])
def test_activation_low_precision(dtype, rtol):
    x = np.linspace(-5, 5, 101).astype(np.float32)
    t = torch.from_numpy(x).to(getattr(torch, dtype))
    ours = axiom.gelu(Tensor(x, dtype=dtype))
    assert ours.dtype.name == dtype
    ref = TF.gelu(t).float().numpy()
    np.testing.assert_allclose(ours.numpy().astype(np.float32), ref, rtol=rtol, atol=1e-2)


def test_activation_layers_and_parameters():
    x = np.linspace(-3, 3, 13).astype(np.float32)
    np.testing.assert_allclose(LeakyReLU(0.2)(x).numpy(), TF.leaky_relu(torch.from_numpy(x), 0.2).numpy(), rtol=1e-6)
    np.testing.assert_allclose(axiom.ELU(0.5)(x).numpy(), TF.elu(torch.from_numpy(x), 0.5).numpy(), rtol=1e-6)
    np.testing.assert_allclose(
        GELU("tanh")(x).numpy(), TF.gelu(torch.from_numpy(x), approximate="tanh").numpy(), rtol=1e-6, atol=1e-7
    )
    assert Activation("relu")(x).numpy().min() == 0.0
    assert axiom.ReLU()(x).numpy().tolist() == np.maximum(x, 0).tolist()
    with pytest.raises(ValueError, match="approximate"):
        GELU("fast")
    with pytest.raises(ValueError, match="unknown activation"):
        Activation("relu7")


@given(
    rows=st.integers(0, 5),
    cols=st.integers(1, 40),
    scale=st.sampled_from([1e-3, 1.0, 50.0, 1e4]),
)
def test_softmax_matches_torch_including_extremes(rows, cols, scale):
    rng = np.random.default_rng(rows * 100 + cols)
    x = (rng.normal(size=(rows, cols)) * scale).astype(np.float32)
    for layer, ref in ((Softmax(), TF.softmax), (LogSoftmax(), TF.log_softmax)):
        ours = layer(x).numpy()
        np.testing.assert_allclose(ours, ref(torch.from_numpy(x), dim=-1).numpy(), rtol=1e-5, atol=1e-5)
    p = Softmax()(x).numpy()
    assert np.all((p >= 0) & (p <= 1))
    if rows:
        np.testing.assert_allclose(p.sum(-1), 1.0, rtol=1e-5)


def test_softmax_axis_and_errors():
    x = np.random.default_rng(1).normal(size=(2, 3, 4)).astype(np.float32)
    np.testing.assert_allclose(Softmax(axis=1)(x).numpy(), TF.softmax(torch.from_numpy(x), dim=1).numpy(), rtol=1e-6)
    with pytest.raises(ShapeError, match=r"^Softmax: .*axis 3 is out of range for rank 3"):
        Softmax(axis=3)(x)
    with pytest.raises(TypeError, match="axis must be an int"):
        Softmax(axis=1.5)


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
@pytest.mark.parametrize("bias", [True, False])
def test_dense_matches_torch_linear(dtype, bias):
    rng = np.random.default_rng(2)
    layer = Dense(37, 11, "tanh", bias=bias, dtype=dtype)
    lin = torch.nn.Linear(37, 11, bias=bias, dtype=getattr(torch, np.dtype(dtype).name))
    with torch.no_grad():
        lin.weight.copy_(torch.from_numpy(layer.weight.numpy().T.copy()))
        if bias:
            lin.bias.copy_(torch.from_numpy(layer.bias.numpy()))
    x = rng.normal(size=(9, 37)).astype(dtype)
    ref = torch.tanh(lin(torch.from_numpy(x))).detach().numpy()
    np.testing.assert_allclose(layer(x).numpy(), ref, **TOL[dtype])
    assert layer.weight.shape == (37, 11) and (layer.bias is not None) == bias


def test_dense_init_bound_like_torch():
    axiom.manual_seed(0)
    w = Dense(400, 50).weight.numpy()
    assert np.abs(w).max() <= 1 / 20 and np.abs(w).max() > 0.9 / 20


def test_dense_lazy_and_shape_errors():
    lazy = Dense(10)
    assert not lazy.built and lazy.output_shape(("batch", "features")) == ("batch", 10)
    with pytest.raises(RuntimeError, match="not built"):
        lazy.state_dict()
    lazy(np.ones((3, 7), np.float32))
    assert lazy.weight.shape == (7, 10)
    with pytest.raises(ShapeError, match=r"^Dense: expects \(batch, 7\) but receives \(3, 8\)$"):
        lazy(np.ones((3, 8), np.float32))
    with pytest.raises(ShapeError, match=r"Dense: expects \(batch, 7\) but receives \(3, 7, 1\)"):
        lazy(np.ones((3, 7, 1), np.float32))


def test_dense_bad_arguments_and_inputs():
    with pytest.raises(ValueError, match="out_features must be a positive int"):
        Dense(0)
    with pytest.raises(ValueError, match="in_features must be a positive int"):
        Dense(-3, 4)
    with pytest.raises(TypeError, match="arbitrary Python functions cannot be verified"):
        Dense(3, 4, lambda x: x)
    layer = Dense(3, 4)
    with pytest.raises(TypeError, match=r"Dense: expects a floating-point tensor .* but receives int64"):
        layer(np.ones((2, 3), np.int64))
    with pytest.raises(TypeError, match="input dtype float64 does not match parameter dtype float32"):
        layer(np.ones((2, 3), np.float64))
    with pytest.raises(TypeError, match="expects a Tensor or NumPy array but receives str"):
        layer("data")
    assert layer.to("float64")(np.ones((2, 3))).dtype == np.float64


def test_readme_example_model():
    model = axiom.Sequential(Dense(784, 128, relu), Dense(128, 10), Softmax())
    y = model(Tensor(np.random.default_rng(0).normal(size=(16, 784)).astype(np.float32)))
    assert y.shape == (16, 10)
    np.testing.assert_allclose(y.numpy().sum(1), 1.0, rtol=1e-5)
