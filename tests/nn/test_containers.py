"""Sequential / Residual / Parallel: chained shape checks, pipelines, errors."""

import numpy as np
import pytest

from axiom import (
    Chain,
    Concat,
    Dense,
    Parallel,
    Pipeline,
    Residual,
    Sequential,
    ShapeError,
    Softmax,
    Tensor,
    relu,
)

torch = pytest.importorskip("torch")


def _to_torch_linear(layer: Dense) -> "torch.nn.Linear":
    lin = torch.nn.Linear(layer.in_features, layer.out_features)
    with torch.no_grad():
        lin.weight.copy_(torch.from_numpy(layer.weight.numpy().T.copy()))
        lin.bias.copy_(torch.from_numpy(layer.bias.numpy()))
    return lin


def test_definition_time_error_names_position_type_and_shapes():
    with pytest.raises(ShapeError) as info:
        Sequential(Dense(784, 128, relu), Dense(64, 10))
    assert str(info.value) == "layer 2 (Dense): expects (batch, 64) but receives (batch, 128) from layer 1 (Dense)"
    assert info.value.position == 2 and info.value.source == (1, "Dense")


def test_first_layer_error_says_model_input():
    model = Sequential(Dense(4, 3), Dense(3, 2))
    with pytest.raises(
        ShapeError, match=r"^layer 1 \(Dense\): expects \(batch, 4\) but receives \(5, 6\) from the model input$"
    ):
        model(np.ones((5, 6), np.float32))


def test_nested_residual_error_position():
    with pytest.raises(ShapeError) as info:
        Sequential(Dense(4, 4), Residual(Dense(4, 4), Dense(5, 4)))
    assert str(info.value) == "layer 2.2 (Dense): expects (batch, 5) but receives (batch, 4) from layer 2.1 (Dense)"
    with pytest.raises(ShapeError, match=r"layer 2 \(Residual\): expects its branch to keep the input shape"):
        Sequential(Dense(4, 4), Residual(Dense(4, 3)))


def test_lazy_layers_inferred_along_the_chain():
    model = Sequential(Dense(6, 5), Dense(7, relu), Dense(3))
    assert model[1].weight.shape == (5, 7) and model[2].weight.shape == (7, 3)
    lazy_first = Sequential(Dense(8), Dense(2))
    assert not lazy_first.built
    assert lazy_first(np.ones((1, 3), np.float32)).shape == (1, 2)
    assert lazy_first.built and lazy_first[0].weight.shape == (3, 8)


def test_sequential_matches_torch_and_aliases():
    model = Sequential([Dense(10, 16, relu), Dense(16, 4), Softmax()])
    ref = torch.nn.Sequential(
        _to_torch_linear(model[0]), torch.nn.ReLU(), _to_torch_linear(model[1]), torch.nn.Softmax(-1)
    )
    x = np.random.default_rng(0).normal(size=(8, 10)).astype(np.float32)
    np.testing.assert_allclose(model(x).numpy(), ref(torch.from_numpy(x)).detach().numpy(), rtol=1e-5, atol=1e-6)
    assert Chain is Sequential and Pipeline is Sequential and Concat is Parallel
    assert len(model) == 3 and list(model)[2].name == "Softmax"
    assert sorted(model.state_dict()) == ["0.bias", "0.weight", "1.bias", "1.weight"]


def test_residual_and_parallel_match_torch():
    res = Residual(Dense(6, 6, "tanh"))
    par = Parallel(Dense(6, 2), Dense(6, 3))
    x = np.random.default_rng(1).normal(size=(4, 6)).astype(np.float32)
    tx = torch.from_numpy(x)
    lin = _to_torch_linear(res.layers[0])
    np.testing.assert_allclose(res(x).numpy(), (tx + torch.tanh(lin(tx))).detach().numpy(), rtol=1e-6, atol=1e-6)
    ref = torch.cat([_to_torch_linear(b)(tx) for b in par.branches], dim=-1).detach().numpy()
    np.testing.assert_allclose(par(x).numpy(), ref, rtol=1e-6, atol=1e-6)
    assert par.output_shape(("batch", 6)) == ("batch", 5)
    assert sorted(par.state_dict()) == ["0.bias", "0.weight", "1.bias", "1.weight"]
    assert sorted(res.state_dict()) == ["0.bias", "0.weight"]


def test_parallel_branch_mismatch():
    with pytest.raises(ShapeError, match="layer 2 \\(Dense\\): expects \\(batch, 5\\)"):
        Parallel(Dense(6, 2), Dense(5, 3)).output_shape(("batch", 6))


def test_pipelines_with_rshift():
    x = np.ones((2, 3), np.float32)
    a, b = Dense(3, 4), Dense(4, 2)
    y = x >> a >> b
    assert isinstance(y, Tensor) and y.shape == (2, 2)
    chain = a >> b >> Softmax()
    assert isinstance(chain, Sequential) and len(chain) == 3
    np.testing.assert_allclose((Tensor(x) >> chain).numpy(), Softmax()(y).numpy(), rtol=1e-6)
    with pytest.raises(ShapeError):
        a >> Dense(5, 1)


def test_check_finite_names_the_layer():
    model = Sequential(Dense(2, 2), Dense(2, 1), check_finite=True)
    with pytest.raises(
        ValueError, match=r"layer 1 \(Dense\) receives non-finite values \(NaN/Inf\), first at index \(0, 1\)"
    ):
        model(np.array([[0.0, np.nan]], np.float32))
    model[0].weight.data[:] = np.inf
    with pytest.raises(ValueError, match=r"layer 2 \(Dense\) receives non-finite"):
        model(np.ones((1, 2), np.float32))
    assert Sequential(Dense(2, 1))(np.array([[np.nan, 0]], np.float32)).shape == (1, 1)


def test_container_construction_errors():
    with pytest.raises(ValueError, match="needs at least one layer"):
        Sequential()
    with pytest.raises(TypeError, match="item 2 must be a Layer, got function"):
        Sequential(Dense(2, 2), lambda x: x)


def test_input_shape_with_symbols_and_repr():
    model = Sequential(Dense(8), Dense(2), input_shape=(None, 5))
    assert model.input_shape == ("batch", 5) and model[0].weight.shape == (5, 8)
    assert model.output_shape(("n", 5)) == ("n", 2)
    assert "(0): Dense(5, 8)" in repr(model)


def test_train_eval_flags():
    model = Sequential(Dense(2, 2), Residual(Dense(2, 2)))
    assert not any(m.training for m in model.modules())
    model.train()
    assert all(m.training for m in model.modules())
    model.eval()
    assert not any(m.training for m in model.modules())
