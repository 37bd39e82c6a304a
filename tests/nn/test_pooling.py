"""MaxPool2d, AvgPool2d, GlobalAvgPool: PyTorch parity, shape rules and argument errors."""

import numpy as np
import pytest
from hypothesis import given
from hypothesis import strategies as st

from axiom import AvgPool2d, Dense, GlobalAvgPool, MaxPool2d, Sequential, ShapeError


@pytest.fixture(scope="module")
def torch():
    return pytest.importorskip("torch")


# Max pooling only selects values: it must match exactly. Average pooling sums at most
# kH*kW <= 16 values, a few ulps of float32; float64 gets a tolerance ~1e9x tighter.
AVG_TOL = {np.float32: dict(rtol=1e-6, atol=1e-6), np.float64: dict(rtol=1e-13, atol=1e-13)}


def nchw(torch, x):
    return torch.from_numpy(x.transpose(0, 3, 1, 2).copy())


def nhwc(t):
    return t.numpy().transpose(0, 2, 3, 1)


@st.composite
def pool_configs(draw, dilation=True):
    """A valid pooling window (PyTorch's rules: padding <= kernel // 2) and an input it fits."""
    kernel = (draw(st.integers(1, 4)), draw(st.integers(1, 4)))
    stride = draw(st.one_of(st.none(), st.tuples(st.integers(1, 3), st.integers(1, 3))))
    padding = (draw(st.integers(0, kernel[0] // 2)), draw(st.integers(0, kernel[1] // 2)))
    dil = (draw(st.integers(1, 3)), draw(st.integers(1, 2))) if dilation else (1, 1)
    sizes = []
    for axis in range(2):
        span = dil[axis] * (kernel[axis] - 1) + 1
        sizes.append(draw(st.integers(max(1, span - 2 * padding[axis]), span + 6)))
    shape = (draw(st.integers(1, 2)), *sizes, draw(st.integers(1, 3)))
    return kernel, stride, padding, dil, shape


# -- MaxPool2d ------------------------------------------------------------------------
def torch_max(torch, x, kernel, stride, padding, dilation):
    out = torch.nn.MaxPool2d(kernel, stride, padding, dilation)(nchw(torch, x))
    return nhwc(out)


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
@pytest.mark.parametrize(
    "kernel, stride, padding, dilation, hw",
    [
        (2, None, 0, 1, (8, 8)),
        (3, 2, 1, 1, (9, 10)),  # ResNet's stem pool
        (3, 1, 1, 1, (5, 5)),
        ((2, 3), (1, 2), (1, 0), 1, (6, 7)),
        (3, 2, 1, 2, (11, 9)),
        (2, None, 0, 1, (7, 5)),  # odd sizes drop the last row/column
        (4, 4, 2, 1, (3, 3)),
        (1, 2, 0, 1, (5, 5)),
        (2, 1, 1, 3, (2, 2)),  # a dilated window can see only padding: -inf, as in torch
    ],
)
def test_max_pool_matches_torch_grid(torch, kernel, stride, padding, dilation, hw, dtype):
    x = np.random.default_rng(0).standard_normal((2, *hw, 3)).astype(dtype)
    pool = MaxPool2d(kernel, stride, padding, dilation)
    ours = pool(x).numpy()
    ref = torch_max(torch, x, kernel, stride, padding, dilation)
    assert ours.shape == ref.shape == pool.output_shape(x.shape) and ours.dtype == dtype
    np.testing.assert_array_equal(ours, ref)


@given(config=pool_configs(), seed=st.integers(0, 2**16), float64=st.booleans())
def test_max_pool_matches_torch_random(torch, config, seed, float64):
    kernel, stride, padding, dilation, shape = config
    x = np.random.default_rng(seed).standard_normal(shape).astype(np.float64 if float64 else np.float32)
    pool = MaxPool2d(kernel, stride=stride, padding=padding, dilation=dilation)
    ours = pool(x).numpy()
    ref = torch_max(torch, x, kernel, stride, padding, dilation)
    assert ours.shape == ref.shape == pool.output_shape(shape)
    np.testing.assert_array_equal(ours, ref)


def test_padded_cells_never_win(torch):
    x = -np.random.default_rng(0).uniform(1, 2, (1, 4, 4, 2)).astype(np.float32)  # all negative
    out = MaxPool2d(3, stride=1, padding=1)(x).numpy()
    assert (out < 0).all()
    np.testing.assert_array_equal(out, torch_max(torch, x, 3, 1, 1, 1))


def test_max_pool_propagates_inf():
    x = np.zeros((1, 2, 2, 1), np.float32)
    x[0, 1, 1, 0] = np.inf
    assert MaxPool2d(2)(x).numpy().item() == np.inf


# -- AvgPool2d ------------------------------------------------------------------------
def torch_avg(torch, x, kernel, stride, padding, count_include_pad):
    out = torch.nn.AvgPool2d(kernel, stride, padding, count_include_pad=count_include_pad)(nchw(torch, x))
    return nhwc(out)


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
@pytest.mark.parametrize("count_include_pad", [True, False])
@pytest.mark.parametrize(
    "kernel, stride, padding, hw",
    [
        (2, None, 0, (8, 8)),
        (3, 2, 1, (9, 10)),
        (3, 1, 1, (5, 5)),
        ((2, 3), (1, 2), (1, 1), (6, 7)),
        (4, 4, 2, (3, 3)),
        (2, None, 0, (7, 5)),
    ],
)
def test_avg_pool_matches_torch_grid(torch, kernel, stride, padding, hw, count_include_pad, dtype):
    x = np.random.default_rng(0).standard_normal((2, *hw, 3)).astype(dtype)
    pool = AvgPool2d(kernel, stride, padding, count_include_pad)
    ours = pool(x).numpy()
    ref = torch_avg(torch, x, kernel, stride, padding, count_include_pad)
    assert ours.shape == ref.shape == pool.output_shape(x.shape) and ours.dtype == dtype
    np.testing.assert_allclose(ours, ref, **AVG_TOL[dtype])


@given(config=pool_configs(dilation=False), count_include_pad=st.booleans(), seed=st.integers(0, 2**16))
def test_avg_pool_matches_torch_random(torch, config, count_include_pad, seed):
    kernel, stride, padding, _, shape = config
    x = np.random.default_rng(seed).standard_normal(shape).astype(np.float32)
    pool = AvgPool2d(kernel, stride=stride, padding=padding, count_include_pad=count_include_pad)
    ours = pool(x).numpy()
    ref = torch_avg(torch, x, kernel, stride, padding, count_include_pad)
    assert ours.shape == ref.shape == pool.output_shape(shape)
    np.testing.assert_allclose(ours, ref, **AVG_TOL[np.float32])


def test_count_include_pad_changes_only_border_windows():
    x = np.ones((1, 4, 4, 1), np.float32)
    with_pad = AvgPool2d(3, stride=1, padding=1)(x).numpy()[0, :, :, 0]
    without = AvgPool2d(3, stride=1, padding=1, count_include_pad=False)(x).numpy()[0, :, :, 0]
    np.testing.assert_array_equal(without, np.ones((4, 4)))
    assert with_pad[0, 0] == pytest.approx(4 / 9) and with_pad[0, 1] == pytest.approx(6 / 9) and with_pad[1, 1] == 1


# -- GlobalAvgPool --------------------------------------------------------------------
@pytest.mark.parametrize("dtype", [np.float32, np.float64])
@pytest.mark.parametrize("shape", [(2, 7, 5, 3), (1, 1, 1, 4), (3, 16, 16, 64)])
def test_global_avg_pool_matches_torch_mean(torch, shape, dtype):
    x = np.random.default_rng(0).standard_normal(shape).astype(dtype)
    ours = GlobalAvgPool()(x).numpy()
    ref = nchw(torch, x).mean(dim=(2, 3)).numpy()
    assert ours.shape == ref.shape == (shape[0], shape[3]) and ours.dtype == dtype
    # up to 256 terms summed in a different order: a few ulps of float32
    tol = dict(rtol=1e-5, atol=1e-6) if dtype == np.float32 else dict(rtol=1e-13, atol=1e-13)
    np.testing.assert_allclose(ours, ref, **tol)
    np.testing.assert_allclose(ours, x.astype(np.float64).mean(axis=(1, 2)), **tol)


# -- shape rules ---------------------------------------------------------------------
@pytest.mark.parametrize(
    "layer, shape, expected",
    [
        (MaxPool2d(2), ("batch", "H", "W", "C"), ("batch", "(H-2)//2+1", "(W-2)//2+1", "C")),
        (MaxPool2d(3, stride=1, padding=1), ("batch", "H", "W", 8), ("batch", "H", "W", 8)),
        (MaxPool2d(3, 2, 1), ("batch", 224, "W", 64), ("batch", 112, "(W-1)//2+1", 64)),
        (MaxPool2d(2, stride=1, dilation=2), ("batch", 5, 6, 1), ("batch", 3, 4, 1)),
        (AvgPool2d((2, 4)), (8, 9, 9, 3), (8, 4, 2, 3)),
        (AvgPool2d(3, stride=1), ("batch", "H", 3, 1), ("batch", "H-2", 1, 1)),
        (GlobalAvgPool(), ("batch", "H", "W", "C"), ("batch", "C")),
        (GlobalAvgPool(), (4, 7, 7, 512), (4, 512)),
    ],
)
def test_output_shape(layer, shape, expected):
    assert layer.output_shape(shape) == expected


def test_stride_defaults_to_the_kernel_size():
    assert MaxPool2d(3).stride == (3, 3) and AvgPool2d((2, 3)).stride == (2, 3)
    assert MaxPool2d(3, 1).stride == (1, 1)


def evaluate(dim, h, w):
    return dim if isinstance(dim, int) else eval(dim, {}, {"H": h, "W": w})


@pytest.mark.parametrize("use_max", [True, False])
@given(data=st.data())
def test_symbolic_formula_agrees_with_the_concrete_shape(use_max, data):
    kernel, stride, padding, dilation, (_, h, w, c) = data.draw(pool_configs(dilation=use_max))
    pool = MaxPool2d(kernel, stride, padding, dilation) if use_max else AvgPool2d(kernel, stride, padding)
    concrete = pool.output_shape((1, h, w, c))
    symbolic = pool.output_shape(("batch", "H", "W", "C"))
    assert (evaluate(symbolic[1], h, w), evaluate(symbolic[2], h, w)) == concrete[1:3]


@pytest.mark.parametrize("layer", [MaxPool2d(2), AvgPool2d(2), GlobalAvgPool()])
@pytest.mark.parametrize("shape", [(8, 8, 3), (1, 8), (1, 1, 8, 8, 3)])
def test_wrong_rank_is_a_shape_error(layer, shape):
    with pytest.raises(ShapeError) as err:
        layer(np.ones(shape, np.float32))
    assert str(err.value) == (
        f"{layer.name}: expects (batch, H, W, C) but receives {shape} (rank 4 expected, got rank {len(shape)})"
    )


def test_window_larger_than_the_input():
    with pytest.raises(ShapeError) as err:
        MaxPool2d(3)(np.ones((1, 2, 5, 1), np.float32))
    assert err.value.detail == "kernel size 3 along H is larger than the padded input 2+0+0=2"
    with pytest.raises(ShapeError, match="kernel size 2 \\(dilated to span 4\\) along W"):
        MaxPool2d(2, dilation=(1, 3)).output_shape(("batch", 9, 3, 1))
    assert MaxPool2d(3, padding=1).output_shape((1, 1, 1, 1)) == (1, 1, 1, 1)


def test_errors_inside_a_sequential_name_position_and_source():
    with pytest.raises(ShapeError) as err:
        Sequential(MaxPool2d(2), MaxPool2d(4), input_shape=(None, 6, 6, 3))
    assert str(err.value) == (
        "layer 2 (MaxPool2d): expects (batch, H, W, C) but receives (batch, 3, 3, 3) from layer 1 (MaxPool2d) "
        "(kernel size 4 along H is larger than the padded input 3+0+0=3)"
    )
    with pytest.raises(ShapeError) as err:
        Sequential(AvgPool2d(2), Dense(10), input_shape=(None, 6, 6, 3))
    assert str(err.value) == (
        "layer 2 (Dense): expects (batch, features) but receives (batch, 3, 3, 3) from layer 1 (AvgPool2d)"
    )
    assert Sequential(GlobalAvgPool(), Dense(10)).output_shape(("batch", "H", "W", 32)) == ("batch", 10)


def test_global_avg_pool_of_an_empty_image():
    with pytest.raises(ShapeError, match="the mean of an empty image is undefined"):
        GlobalAvgPool().output_shape((1, 0, 4, 3))


@pytest.mark.parametrize("layer", [MaxPool2d(2), AvgPool2d(2), GlobalAvgPool()])
def test_integer_input_is_a_type_error(layer):
    with pytest.raises(TypeError, match=f"{layer.name}: expects a floating-point tensor"):
        layer(np.ones((1, 4, 4, 1), np.int32))


@pytest.mark.parametrize(
    "make, error, message",
    [
        (lambda: MaxPool2d(0), ValueError, "MaxPool2d: kernel_size must be positive, got 0"),
        (lambda: MaxPool2d(2, stride=0), ValueError, "MaxPool2d: stride must be positive, got 0"),
        (lambda: MaxPool2d(2, dilation=0), ValueError, "MaxPool2d: dilation must be positive, got 0"),
        (lambda: MaxPool2d(2, padding=-1), ValueError, "MaxPool2d: padding must be >= 0, got -1"),
        (
            lambda: MaxPool2d(3, padding=2),
            ValueError,
            "MaxPool2d: padding must be at most half the kernel size, got padding 2 for kernel size 3 along height",
        ),
        (lambda: MaxPool2d((4, 2), padding=(2, 2)), ValueError, "padding 2 for kernel size 2 along width"),
        (lambda: MaxPool2d(3, dilation=2, padding=2), ValueError, "at most half the kernel size"),  # as torch
        (lambda: AvgPool2d(1, padding=1), ValueError, "AvgPool2d: padding must be at most half the kernel size"),
        (lambda: AvgPool2d(2.5), TypeError, "AvgPool2d: kernel_size must be an int or a pair of ints, got 2.5"),
        (lambda: AvgPool2d((2, 2, 2)), ValueError, "kernel_size must be an int or a pair of ints"),
        (lambda: MaxPool2d(2, padding="same"), TypeError, "padding must be an int or a pair of ints, got 'same'"),
    ],
)
def test_bad_constructor_arguments(make, error, message):
    with pytest.raises(error, match=message):
        make()


def test_pools_have_no_parameters_and_a_readable_repr():
    assert MaxPool2d(2).state_dict() == {} and GlobalAvgPool().parameters() == []
    assert repr(MaxPool2d(3, 2, 1)) == "MaxPool2d(kernel_size=(3, 3), stride=(2, 2), padding=(1, 1))"
    assert repr(MaxPool2d(2, dilation=2)) == "MaxPool2d(kernel_size=(2, 2), stride=(2, 2), dilation=(2, 2))"
    assert repr(AvgPool2d(2, count_include_pad=False)) == (
        "AvgPool2d(kernel_size=(2, 2), stride=(2, 2), count_include_pad=False)"
    )
    assert repr(GlobalAvgPool()) == "GlobalAvgPool()"


def test_torch_pad_rule_is_the_same_as_ours(torch):
    # Anything we reject for padding, torch rejects too (and vice versa) -- keeps the rule honest.
    for k in range(1, 5):
        for p in range(0, 4):
            ok_ours = p <= k // 2
            try:
                torch.nn.functional.max_pool2d(torch.zeros(1, 1, 9, 9), k, 1, p)
                ok_torch = True
            except RuntimeError:
                ok_torch = False
            assert ok_ours == ok_torch, (k, p)
