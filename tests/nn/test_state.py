"""Layer.state_dict / load_state_dict / save / load, dtype casts, train/eval, PyTorch interop."""

from __future__ import annotations

from pathlib import Path

import ml_dtypes
import numpy as np
import pytest

from axiom import Dense, Residual, Sequential, relu
from axiom.nn import IncompatibleKeys, init, load_safetensors, save_safetensors
from axiom.nn.state import read_safetensors_metadata

BF16 = np.dtype(ml_dtypes.bfloat16)
KEYS = ["0.weight", "0.bias", "1.0.weight", "1.0.bias", "2.weight", "2.bias"]


def make_model(seed: int = 0) -> Sequential:
    init.manual_seed(seed)
    return Sequential(Dense(4, 8, relu), Residual(Dense(8, 8, relu)), Dense(8, 2))


def x_batch(dtype: np.dtype | type = np.float32) -> np.ndarray:
    return np.random.default_rng(1).standard_normal((5, 4)).astype(dtype)


# -- names -------------------------------------------------------------------------------------------


def test_dotted_names_in_nested_containers() -> None:
    sd = make_model().state_dict()
    assert list(sd) == KEYS
    assert sd["0.weight"].shape == (4, 8) and sd["1.0.weight"].shape == (8, 8) and sd["2.bias"].shape == (2,)
    assert all(isinstance(v, np.ndarray) and v.dtype == np.float32 for v in sd.values())


def test_state_dict_returns_copies() -> None:
    model = make_model()
    sd = model.state_dict()
    sd["0.weight"][:] = 99.0
    assert not (model.state_dict()["0.weight"] == 99.0).any()


# -- strictness and shapes ----------------------------------------------------------------------------


def test_strict_missing_and_unexpected_keys_raise_key_error_naming_them() -> None:
    model = make_model()
    sd = model.state_dict()
    del sd["1.0.bias"]
    sd["3.weight"] = np.zeros((2, 2), np.float32)
    with pytest.raises(KeyError) as info:
        model.load_state_dict(sd)
    msg = str(info.value)
    assert "missing keys ['1.0.bias']" in msg and "unexpected keys ['3.weight']" in msg


def test_non_strict_returns_incompatible_keys_and_loads_the_rest() -> None:
    model, other = make_model(0), make_model(1)
    sd = other.state_dict()
    del sd["2.bias"]
    sd["extra"] = np.zeros(1, np.float32)
    before = model.state_dict()["2.bias"]
    result = model.load_state_dict(sd, strict=False)
    assert isinstance(result, IncompatibleKeys)
    assert result == IncompatibleKeys(missing_keys=["2.bias"], unexpected_keys=["extra"])
    after = model.state_dict()
    np.testing.assert_array_equal(after["0.weight"], other.state_dict()["0.weight"])
    np.testing.assert_array_equal(after["2.bias"], before)
    assert make_model().load_state_dict(make_model().state_dict()) == IncompatibleKeys([], [])


def test_shape_mismatch_names_key_and_both_shapes() -> None:
    model = make_model()
    sd = model.state_dict()
    sd["1.0.weight"] = np.zeros((8, 3), np.float32)
    with pytest.raises(ValueError, match=r"'1\.0\.weight' has shape \(8, 3\), the model expects \(8, 8\)"):
        model.load_state_dict(sd)
    sd["1.0.weight"] = np.zeros((8, 3), np.float32)
    with pytest.raises(ValueError, match=r"\(8, 3\).*\(8, 8\)"):
        model.load_state_dict(sd, strict=False)


# -- dtypes -------------------------------------------------------------------------------------------


@pytest.mark.parametrize("source", [np.float64, np.float16, BF16, np.int32])
def test_loading_casts_to_parameter_dtype(source: np.dtype) -> None:
    model, other = make_model(0), make_model(1)
    sd = {k: v.astype(source) for k, v in other.state_dict().items()}
    model.load_state_dict(sd)
    for k, v in model.state_dict().items():
        assert v.dtype == np.float32, k
        np.testing.assert_array_equal(v, sd[k].astype(np.float32))


def test_loading_tensors_is_accepted() -> None:
    from axiom import Tensor

    model, other = make_model(0), make_model(1)
    model.load_state_dict({k: Tensor(v) for k, v in other.state_dict().items()})
    np.testing.assert_array_equal(model(x_batch()).numpy(), other(x_batch()).numpy())


@pytest.mark.parametrize(("name", "tol"), [("float64", 1e-6), ("float16", 2e-2), ("bfloat16", 1e-1)])
def test_to_casts_every_parameter(name: str, tol: float) -> None:
    model = make_model()
    ref = model(x_batch()).numpy()
    assert model.to(name) is model
    sd = model.state_dict()
    assert {v.dtype.name for v in sd.values()} == {name}
    out = model(x_batch(np.dtype(name)))
    assert out.dtype.name == name
    np.testing.assert_allclose(out.numpy().astype(np.float32), ref, atol=tol, rtol=tol)
    # loading float32 arrays into the cast model keeps the model's dtype
    model.load_state_dict(make_model(1).state_dict())
    assert {v.dtype.name for v in model.state_dict().values()} == {name}


def test_to_rejects_integer_dtype() -> None:
    with pytest.raises(TypeError, match="floating"):
        make_model().to("int32")


@pytest.mark.parametrize("name", ["float64", "float16", "bfloat16"])
def test_save_load_keeps_dtype_in_file(tmp_path: Path, name: str) -> None:
    model = make_model().to(name)
    model.save(str(tmp_path / "m.safetensors"))
    assert {v.dtype.name for v in load_safetensors(tmp_path / "m.safetensors").values()} == {name}
    fresh = make_model(5).to(name)
    fresh.load(str(tmp_path / "m.safetensors"))
    np.testing.assert_array_equal(
        fresh(x_batch(np.dtype(name))).numpy().view(np.uint8), model(x_batch(np.dtype(name))).numpy().view(np.uint8)
    )


# -- lazy models --------------------------------------------------------------------------------------


def test_lazy_model_raises_clear_runtime_error(tmp_path: Path) -> None:
    lazy = Sequential(Dense(8, relu), Dense(2))
    for call in (
        lazy.state_dict,
        lambda: lazy.load_state_dict({}),
        lambda: lazy.save(str(tmp_path / "x.safetensors")),
    ):
        with pytest.raises(RuntimeError, match="is not built yet.*run a batch through the model"):
            call()
    assert not (tmp_path / "x.safetensors").exists()
    with pytest.raises(RuntimeError, match="Dense is not built yet"):
        Dense(3).state_dict()
    lazy(np.zeros((3, 6), np.float32))  # building on the first batch fixes it
    assert list(lazy.state_dict()) == ["0.weight", "0.bias", "1.weight", "1.bias"]


# -- save / load ------------------------------------------------------------------------------------


def test_save_then_fresh_model_load_gives_identical_outputs(tmp_path: Path) -> None:
    path = str(tmp_path / "model.safetensors")
    model = make_model(0)
    model.save(path)
    fresh = make_model(1)
    assert not np.array_equal(fresh(x_batch()).numpy(), model(x_batch()).numpy())
    assert fresh.load(path) == IncompatibleKeys([], [])
    np.testing.assert_array_equal(fresh(x_batch()).numpy(), model(x_batch()).numpy())
    assert read_safetensors_metadata(path) == {}


def test_load_of_other_architecture(tmp_path: Path) -> None:
    path = tmp_path / "partial.safetensors"
    save_safetensors({"0.weight": np.zeros((4, 8), np.float32), "9.bias": np.zeros(1, np.float32)}, path)
    with pytest.raises(KeyError, match="unexpected keys \\['9.bias'\\]"):
        make_model().load(str(path))
    result = make_model().load(str(path), strict=False)
    assert result.unexpected_keys == ["9.bias"] and "0.bias" in result.missing_keys


# -- modes --------------------------------------------------------------------------------------------


def test_train_eval_flags_propagate() -> None:
    model = make_model()
    layers = list(model.modules())
    assert len(layers) == 5  # Sequential, Dense, Residual, Dense, Dense
    assert not any(layer.training for layer in layers), "layers start in eval mode"
    assert model.train() is model
    assert all(layer.training for layer in layers)
    model.eval()
    assert not any(layer.training for layer in layers)
    model.train(True)
    model.train(False)
    assert not any(layer.training for layer in layers)


# -- PyTorch interop ----------------------------------------------------------------------------------


def test_torch_linear_weights_load_into_dense(tmp_path: Path) -> None:
    torch = pytest.importorskip("torch")
    torch.manual_seed(0)
    linear = torch.nn.Linear(6, 3)
    # PyTorch stores Linear weights (out, in); Dense stores (in, out): transpose explicitly.
    state = {"weight": linear.weight.detach().T.contiguous(), "bias": linear.bias.detach().clone()}
    path = str(tmp_path / "linear.safetensors")
    try:
        from safetensors.torch import save_file
    except ImportError:  # pragma: no cover - fall back to our numpy writer
        save_safetensors({k: v.numpy() for k, v in state.items()}, path)
    else:
        save_file(state, path)
    dense = Dense(6, 3)
    dense.load(path)
    x = np.random.default_rng(2).standard_normal((7, 6)).astype(np.float32)
    expected = linear(torch.from_numpy(x)).detach().numpy()
    np.testing.assert_allclose(dense(x).numpy(), expected, rtol=1e-5, atol=1e-6)


def test_torch_mlp_state_dict_round_trip(tmp_path: Path) -> None:
    torch = pytest.importorskip("torch")
    torch.manual_seed(1)
    mlp = torch.nn.Sequential(torch.nn.Linear(4, 8), torch.nn.ReLU(), torch.nn.Linear(8, 2))
    # torch names "0.*" and "2.*" (the ReLU is index 1); Axiom's Dense carries its activation.
    mapping = {"0": "0", "2": "1"}
    converted = {}
    for key, value in mlp.state_dict().items():
        index, kind = key.split(".")
        arr = value.detach().numpy()
        converted[f"{mapping[index]}.{kind}"] = arr.T if kind == "weight" else arr
    path = tmp_path / "mlp.safetensors"
    save_safetensors(converted, path, metadata={"source": "torch.nn.Sequential", "layout": "(in, out)"})
    model = Sequential(Dense(4, 8, relu), Dense(8, 2))
    model.load(str(path))
    x = np.random.default_rng(3).standard_normal((9, 4)).astype(np.float32)
    np.testing.assert_allclose(model(x).numpy(), mlp(torch.from_numpy(x)).detach().numpy(), rtol=1e-5, atol=1e-6)
    # and back: Axiom weights into torch via the reference reader
    from safetensors.torch import load_file

    model.save(str(tmp_path / "axiom.safetensors"))
    back = load_file(str(tmp_path / "axiom.safetensors"))
    mlp2 = torch.nn.Sequential(torch.nn.Linear(4, 8), torch.nn.ReLU(), torch.nn.Linear(8, 2))
    mlp2.load_state_dict(
        {
            f"{src}.{kind}": back[f"{dst}.{kind}"].T if kind == "weight" else back[f"{dst}.{kind}"]
            for src, dst in mapping.items()
            for kind in ("weight", "bias")
        }
    )
    np.testing.assert_allclose(mlp2(torch.from_numpy(x)).detach().numpy(), model(x).numpy(), rtol=1e-5, atol=1e-6)
