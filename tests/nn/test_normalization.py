"""BatchNorm (channels-last), LayerNorm, RMSNorm: PyTorch parity, training statistics, shapes, errors."""

import numpy as np
import pytest
from hypothesis import given
from hypothesis import strategies as st

from axiom import BatchNorm, Dense, LayerNorm, RMSNorm, Sequential, ShapeError

torch = pytest.importorskip("torch")

TOL = {np.float32: dict(rtol=1e-5, atol=1e-5), np.float64: dict(rtol=1e-10, atol=1e-12)}
TORCH_DTYPE = {np.float32: torch.float32, np.float64: torch.float64}


def _rng(seed: int = 0) -> np.random.Generator:
    return np.random.default_rng(seed)


def _randomise_affine(layer, torch_layer, rng, dtype) -> None:
    """Give both layers the same random (non-trivial) affine parameters."""
    for name in ("weight", "bias"):
        ours = getattr(layer, name, None)
        if ours is None:
            continue
        value = rng.normal(1.0 if name == "weight" else 0.0, 0.5, ours.shape).astype(dtype)
        ours.data = value.copy()
        with torch.no_grad():
            getattr(torch_layer, name).copy_(torch.from_numpy(value))


# -- BatchNorm ---------------------------------------------------------------------------------


def _nhwc_to_torch(x: np.ndarray) -> "torch.Tensor":
    """Channels-last array -> torch's channels-first layout (N, C, ...)."""
    axes = (0, x.ndim - 1, *range(1, x.ndim - 1))
    return torch.from_numpy(np.ascontiguousarray(x.transpose(axes)))


def _torch_to_nhwc(t: "torch.Tensor") -> np.ndarray:
    n = t.ndim
    return t.detach().numpy().transpose((0, *range(2, n), 1))


TORCH_BN = {2: "BatchNorm1d", 3: "BatchNorm1d", 4: "BatchNorm2d"}


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
@pytest.mark.parametrize("shape", [(16, 5), (4, 7, 3), (3, 6, 5, 4)], ids=["NC", "NLC", "NHWC"])
@pytest.mark.parametrize("momentum", [0.1, 0.3, None])
def test_batchnorm_training_and_eval_match_torch(dtype, shape, momentum):
    rng = _rng(1)
    c = shape[-1]
    ours = BatchNorm(c, momentum=momentum, dtype=dtype)
    ref = getattr(torch.nn, TORCH_BN[len(shape)])(c, momentum=momentum, dtype=TORCH_DTYPE[dtype])
    _randomise_affine(ours, ref, rng, dtype)
    ours.train()
    ref.train()
    for step in range(4):
        x = rng.normal(step, 1.0 + step, shape).astype(dtype)
        y = ours(x).numpy()
        with torch.no_grad():
            y_ref = _torch_to_nhwc(ref(_nhwc_to_torch(x)))
        assert y.dtype == dtype
        np.testing.assert_allclose(y, y_ref, **TOL[dtype])
        np.testing.assert_allclose(ours.running_mean.numpy(), ref.running_mean.numpy(), **TOL[dtype])
        np.testing.assert_allclose(ours.running_var.numpy(), ref.running_var.numpy(), **TOL[dtype])
        assert int(ours.num_batches_tracked.item()) == int(ref.num_batches_tracked) == step + 1
    ours.eval()
    ref.eval()
    x = rng.normal(0.5, 2.0, shape).astype(dtype)
    with torch.no_grad():
        y_ref = _torch_to_nhwc(ref(_nhwc_to_torch(x)))
    np.testing.assert_allclose(ours(x).numpy(), y_ref, **TOL[dtype])
    # eval does not touch the statistics
    before = ours.state_dict()
    ours(x)
    for key, value in ours.state_dict().items():
        np.testing.assert_array_equal(value, before[key])


def test_batchnorm_training_uses_biased_batch_variance_and_unbiased_running_update():
    x = np.array([[1.0, 10.0], [3.0, 10.0], [5.0, 16.0]], np.float64)
    bn = BatchNorm(2, momentum=1.0, dtype="float64").train()
    y = bn(x).numpy()
    mean, var = x.mean(0), x.var(0)  # biased
    np.testing.assert_allclose(y, (x - mean) / np.sqrt(var + 1e-5), rtol=1e-12)
    np.testing.assert_allclose(bn.running_mean.numpy(), mean, rtol=1e-12)
    np.testing.assert_allclose(bn.running_var.numpy(), x.var(0, ddof=1), rtol=1e-12)  # unbiased


def test_batchnorm_starts_in_eval_mode_with_identity_statistics():
    bn = BatchNorm(3)
    assert bn.training is False
    x = _rng().normal(size=(4, 3)).astype(np.float32)
    np.testing.assert_allclose(bn(x).numpy(), x / np.sqrt(1 + 1e-5), rtol=1e-6)
    assert int(bn.num_batches_tracked.item()) == 0


@pytest.mark.parametrize("affine", [True, False])
def test_batchnorm_without_running_stats_uses_batch_statistics_in_eval(affine):
    rng = _rng(2)
    ours = BatchNorm(4, affine=affine, track_running_stats=False)
    ref = torch.nn.BatchNorm2d(4, affine=affine, track_running_stats=False).eval()
    if affine:
        _randomise_affine(ours, ref, rng, np.float32)
    x = rng.normal(size=(2, 3, 3, 4)).astype(np.float32)
    with torch.no_grad():
        y_ref = _torch_to_nhwc(ref(_nhwc_to_torch(x)))
    np.testing.assert_allclose(ours(x).numpy(), y_ref, **TOL[np.float32])
    assert ours.running_mean is None and "running_mean" not in ours.state_dict()


def test_batchnorm_state_dict_keys_match_torch_and_load_from_torch():
    ours = BatchNorm(3)
    ref = torch.nn.BatchNorm2d(3)
    assert list(ours.state_dict()) == list(ref.state_dict())
    assert list(ours.state_dict()) == ["weight", "bias", "running_mean", "running_var", "num_batches_tracked"]
    assert ours.state_dict()["num_batches_tracked"].dtype == np.int64
    rng = _rng(3)
    ref.train()
    with torch.no_grad():
        ref.weight.uniform_(0.5, 1.5)
        ref.bias.uniform_(-1, 1)
        for _ in range(3):
            ref(torch.randn(4, 3, 2, 2))
    ref.eval()
    ours.load_state_dict({k: v.numpy() for k, v in ref.state_dict().items()})
    x = rng.normal(size=(2, 2, 2, 3)).astype(np.float32)
    with torch.no_grad():
        y_ref = _torch_to_nhwc(ref(_nhwc_to_torch(x)))
    np.testing.assert_allclose(ours(x).numpy(), y_ref, **TOL[np.float32])
    assert sorted(BatchNorm(3, affine=False).state_dict()) == ["num_batches_tracked", "running_mean", "running_var"]


def test_batchnorm_lazy_infers_channels_and_symbolic_shapes():
    bn = BatchNorm()
    assert not bn.built
    assert bn.output_shape(("batch", "H", "W", "C")) == ("batch", "H", "W", "C")
    model = Sequential(Dense(4, 6), BatchNorm())
    assert model[1].num_features == 6 and model[1].weight.shape == (6,)
    assert BatchNorm(8).output_shape(("batch", "H", "W", 8)) == ("batch", "H", "W", 8)
    x = np.ones((2, 5, 5, 3), np.float32)
    lazy = BatchNorm()
    assert lazy(x).shape == lazy.output_shape(x.shape) == x.shape
    assert lazy.running_var.shape == (3,)


def test_batchnorm_shape_errors():
    with pytest.raises(ShapeError, match=r"BatchNorm: expects \(batch, \.\.\., 4\) \(channels last\) but receives"):
        BatchNorm(4)(np.ones((2, 3), np.float32))
    with pytest.raises(ShapeError, match="rank >= 2 expected, got rank 1"):
        BatchNorm(4).output_shape((4,))
    with pytest.raises(ShapeError) as info:
        Sequential(Dense(4, 8), BatchNorm(6))
    assert str(info.value).startswith(
        "layer 2 (BatchNorm): expects (batch, ..., 6) (channels last) but receives (batch, 8)"
    )
    assert "from layer 1 (Dense)" in str(info.value)


def test_batchnorm_bad_inputs_and_arguments():
    with pytest.raises(TypeError, match="BatchNorm: expects a floating-point tensor"):
        BatchNorm(2)(np.ones((2, 2), np.int64))
    with pytest.raises(TypeError, match="does not match parameter dtype float32"):
        BatchNorm(2)(np.ones((2, 2), np.float64))
    with pytest.raises(TypeError, match="does not match parameter dtype float32"):
        BatchNorm(2, affine=False)(np.ones((2, 2), np.float64))  # buffers count when there are no parameters
    with pytest.raises(ValueError, match="more than 1 value per channel when training"):
        BatchNorm(2).train()(np.ones((1, 2), np.float32))
    for bad in (dict(num_features=0), dict(num_features=2.0), dict(eps=-1.0), dict(momentum=1.5)):
        with pytest.raises(ValueError, match="BatchNorm"):
            BatchNorm(**{"num_features": 2, **bad})


def test_batchnorm_to_float64_keeps_counter_integer():
    bn = BatchNorm(3).to("float64")
    assert bn.running_mean.dtype == np.float64 and bn.weight.dtype == np.float64
    assert bn.num_batches_tracked.dtype == np.int64
    bn.train()(np.ones((2, 3), np.float64))
    assert bn.running_mean.dtype == np.float64


def test_batchnorm_half_precision_close_to_float32():
    rng = _rng(4)
    x = rng.normal(size=(8, 4)).astype(np.float32)
    ref = BatchNorm(4).train()(x).numpy()
    half = BatchNorm(4).to("float16").train()
    y = half(x.astype(np.float16)).numpy()
    assert y.dtype == np.float16
    np.testing.assert_allclose(y.astype(np.float32), ref, rtol=1e-2, atol=1e-2)


# -- LayerNorm / RMSNorm -----------------------------------------------------------------------

NORM_SHAPES = [(6,), (3, 4), (2, 3, 2)]


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
@pytest.mark.parametrize("normalized_shape", NORM_SHAPES, ids=str)
@pytest.mark.parametrize("affine,bias", [(True, True), (True, False), (False, True)])
def test_layernorm_matches_torch(dtype, normalized_shape, affine, bias):
    rng = _rng(5)
    ours = LayerNorm(normalized_shape, eps=1e-5, elementwise_affine=affine, bias=bias, dtype=dtype)
    ref = torch.nn.LayerNorm(normalized_shape, eps=1e-5, elementwise_affine=affine, bias=bias, dtype=TORCH_DTYPE[dtype])
    _randomise_affine(ours, ref, rng, dtype)
    x = rng.normal(3.0, 2.0, (4, 2, *normalized_shape)).astype(dtype)
    with torch.no_grad():
        y_ref = ref(torch.from_numpy(x)).numpy()
    y = ours(x).numpy()
    assert y.dtype == dtype and y.shape == ours.output_shape(x.shape)
    np.testing.assert_allclose(y, y_ref, **TOL[dtype])
    expected_keys = (["weight"] if affine else []) + (["bias"] if affine and bias else [])
    assert list(ours.state_dict()) == expected_keys == list(ref.state_dict())


@given(
    batch=st.integers(1, 3),
    lead=st.lists(st.integers(1, 3), max_size=2),
    norm=st.lists(st.integers(1, 5), min_size=1, max_size=3),
    eps=st.sampled_from([1e-5, 1e-3, 0.1]),
)
def test_layernorm_and_rmsnorm_match_torch_on_random_shapes(batch, lead, norm, eps):
    rng = _rng(len(lead) * 10 + len(norm))
    shape = (batch, *lead, *norm)
    x = rng.normal(0.0, 3.0, shape).astype(np.float64)
    ln, ln_ref = (
        LayerNorm(tuple(norm), eps=eps, dtype="float64"),
        torch.nn.LayerNorm(norm, eps=eps, dtype=torch.float64),
    )
    rms, rms_ref = RMSNorm(tuple(norm), eps=eps, dtype="float64"), torch.nn.RMSNorm(norm, eps=eps, dtype=torch.float64)
    _randomise_affine(ln, ln_ref, rng, np.float64)
    _randomise_affine(rms, rms_ref, rng, np.float64)
    with torch.no_grad():
        np.testing.assert_allclose(ln(x).numpy(), ln_ref(torch.from_numpy(x)).numpy(), **TOL[np.float64])
        np.testing.assert_allclose(rms(x).numpy(), rms_ref(torch.from_numpy(x)).numpy(), **TOL[np.float64])


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
@pytest.mark.parametrize("normalized_shape", NORM_SHAPES, ids=str)
@pytest.mark.parametrize("eps", [None, 1e-6])
@pytest.mark.parametrize("affine", [True, False])
def test_rmsnorm_matches_torch(dtype, normalized_shape, eps, affine):
    rng = _rng(6)
    ours = RMSNorm(normalized_shape, eps=eps, elementwise_affine=affine, dtype=dtype)
    ref = torch.nn.RMSNorm(normalized_shape, eps=eps, elementwise_affine=affine, dtype=TORCH_DTYPE[dtype])
    _randomise_affine(ours, ref, rng, dtype)
    x = rng.normal(0.0, 2.0, (3, 2, *normalized_shape)).astype(dtype)
    x[0, 0] = 0.0  # an all-zero row: the eps keeps it finite (0 / sqrt(eps) = 0)
    with torch.no_grad():
        y_ref = ref(torch.from_numpy(x)).numpy()
    y = ours(x).numpy()
    assert y.dtype == dtype and np.isfinite(y).all()
    np.testing.assert_allclose(y, y_ref, **TOL[dtype])
    assert list(ours.state_dict()) == list(ref.state_dict())


def test_rmsnorm_default_eps_is_the_input_dtype_eps_like_torch():
    rms = RMSNorm(4)
    assert rms.eps is None
    assert rms.effective_eps(np.float32) == float(torch.finfo(torch.float32).eps)
    assert rms.effective_eps(np.float64) == float(torch.finfo(torch.float64).eps)
    assert rms.effective_eps("bfloat16") == float(torch.finfo(torch.bfloat16).eps)
    assert rms.effective_eps(np.float16) == float(torch.finfo(torch.float16).eps)
    # tiny inputs: the eps dominates, so the chosen eps is visible in the output
    x = np.full((1, 4), 1e-4, np.float32)
    with torch.no_grad():
        y_ref = torch.nn.RMSNorm(4)(torch.from_numpy(x)).numpy()
    np.testing.assert_allclose(rms(x).numpy(), y_ref, rtol=1e-5)


@pytest.mark.parametrize("cls", [LayerNorm, RMSNorm])
def test_trailing_norms_lazy_inference_and_symbolic_shapes(cls):
    lazy = cls()
    assert not lazy.built and lazy.output_shape(("batch", "seq", "d")) == ("batch", "seq", "d")
    x = _rng().normal(size=(2, 3, 5)).astype(np.float32)
    y = lazy(x)
    assert lazy.built and lazy.normalized_shape == (5,) and lazy.weight.shape == (5,)
    assert y.shape == lazy.output_shape(x.shape) == x.shape
    np.testing.assert_allclose(y.numpy(), cls(5)(x).numpy(), rtol=1e-6)
    model = Sequential(Dense(4, 7), cls())
    assert model[1].normalized_shape == (7,)
    assert cls((3, 4)).output_shape(("batch", "seq", 3, 4)) == ("batch", "seq", 3, 4)
    assert cls((3, 4)).output_shape(("batch", "h", "w")) == ("batch", "h", "w")  # symbols match anything


@pytest.mark.parametrize("cls", [LayerNorm, RMSNorm])
def test_trailing_norms_shape_errors(cls):
    name = cls.__name__
    with pytest.raises(ShapeError, match=rf"{name}: expects \(batch, \.\.\., 3, 4\) but receives \(batch, 4, 3\)"):
        cls((3, 4)).output_shape(("batch", 4, 3))
    with pytest.raises(ShapeError, match=r"trailing axes \(4, 3\) must equal normalized_shape \(3, 4\)"):
        cls((3, 4))(np.ones((2, 4, 3), np.float32))
    with pytest.raises(ShapeError, match=r"rank >= 3 expected"):
        cls((3, 4)).output_shape((3, 4))
    with pytest.raises(ShapeError) as info:
        Sequential(Dense(4, 8), cls(6))
    assert str(info.value).startswith(f"layer 2 ({name}): expects (batch, ..., 6) but receives (batch, 8)")
    with pytest.raises(TypeError, match=f"{name}: expects a floating-point tensor"):
        cls(2)(np.ones((2, 2), np.int32))
    with pytest.raises(ValueError, match=f"{name}: normalized_shape must be a positive int"):
        cls((3, 0))
    with pytest.raises(ValueError, match=f"{name}: normalized_shape must name at least one axis"):
        cls(())


def test_norms_keep_low_precision_dtypes():
    x = _rng().normal(size=(2, 8)).astype(np.float32)
    for layer in (LayerNorm(8), RMSNorm(8), BatchNorm(8)):
        for dt in ("float16", "bfloat16"):
            layer.to(dt)
            y = layer(x.astype(layer.param_dtype()))
            assert y.dtype == layer.param_dtype()
            ref = type(layer)(8)(x).numpy()
            np.testing.assert_allclose(y.numpy().astype(np.float32), ref, rtol=5e-2, atol=5e-2)
