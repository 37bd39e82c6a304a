"""Conv2d and DepthwiseConv2d: PyTorch parity, symbolic shape rules, lazy building, errors, state."""

import math

import numpy as np
import pytest
from hypothesis import given
from hypothesis import strategies as st

from axiom import (
    Conv2d,
    Dense,
    DepthwiseConv2d,
    GlobalAvgPool,
    MaxPool2d,
    Sequential,
    ShapeError,
    Tensor,
    manual_seed,
    relu,
)

pytestmark = pytest.mark.filterwarnings("ignore:Using padding='same' with even kernel lengths:UserWarning")


@pytest.fixture(scope="module")
def torch():
    return pytest.importorskip("torch")


# -- tolerances -------------------------------------------------------------------------
# Each output is a sum of fan_in = C_in/groups*kH*kW products plus a bias. With fan-in
# initialisation and inputs ~N(0, 1) the outputs are O(1), and two correct float32
# implementations that add in different orders (NumPy's tensordot vs oneDNN) differ by
# rounding noise that grows like sqrt(fan_in) * eps (random walk; eps = 1.2e-7).
# torch.testing's float32 default (rtol 1.3e-6, atol 1e-5) is tuned for single ops and is
# too tight for long sums, so we use rtol 1e-5 and an atol of 1e-5 (~80 ulps at 1.0) for
# fan_in <= 64, growing with sqrt(fan_in) beyond. float64 gets a tolerance ~1e9x tighter.
def tolerance(dtype, fan_in):
    scale = max(1.0, math.sqrt(fan_in / 64))
    if np.dtype(dtype) == np.float64:
        return dict(rtol=1e-12, atol=1e-12 * scale)
    return dict(rtol=1e-5, atol=1e-5 * scale)


def tf_same(size, kernel, stride, dilation):
    """(before, after) of TensorFlow's SAME padding, written as in TF's conv_ops (independent of axiom)."""
    span = dilation * (kernel - 1) + 1
    total = max(span - (size % stride or stride), 0)
    return total // 2, total - total // 2


def explicit(padding, h, w, kernel, stride, dilation):
    """Our padding argument as ((top, bottom), (left, right)) for an h x w input."""
    if padding == "same":
        return tf_same(h, kernel[0], stride[0], dilation[0]), tf_same(w, kernel[1], stride[1], dilation[1])
    if padding == "valid":
        return (0, 0), (0, 0)
    if isinstance(padding, int):
        return (padding, padding), (padding, padding)
    if isinstance(padding[0], int):
        return (padding[0], padding[0]), (padding[1], padding[1])
    return tuple(padding[0]), tuple(padding[1])


def torch_conv(torch, conv, x, padding):
    """Run ``x`` through a torch.nn.Conv2d holding ``conv``'s weights (NHWC in, NHWC out).

    Padding torch can express itself (symmetric ints/pairs, "valid", "same" at stride 1) is
    given to torch.nn.Conv2d; anything else (asymmetric, "same" with stride > 1, which torch
    refuses) is applied to the input explicitly with F.pad and the torch layer uses none.
    """
    kh, kw, cin_g, cout = conv.weight.shape
    h, w = x.shape[1:3]
    symmetric = not isinstance(padding, str) and (
        isinstance(padding, int) or isinstance(padding[0], int)
    )  # int or (rows, cols)
    native = symmetric or padding == "valid" or (padding == "same" and conv.stride == (1, 1))
    layer = torch.nn.Conv2d(
        conv.in_channels,
        cout,
        (kh, kw),
        stride=conv.stride,
        padding=padding if native else 0,
        dilation=conv.dilation,
        groups=conv.groups,
        bias=conv.bias is not None,
        dtype=getattr(torch, x.dtype.name),
    )
    with torch.no_grad():
        layer.weight.copy_(torch.from_numpy(conv.weight.numpy().transpose(3, 2, 0, 1).copy()))
        if conv.bias is not None:
            layer.bias.copy_(torch.from_numpy(conv.bias.numpy()))
        xt = torch.from_numpy(x.transpose(0, 3, 1, 2).copy())
        if not native:
            (pt, pb), (pl, pr) = explicit(padding, h, w, conv.kernel_size, conv.stride, conv.dilation)
            xt = torch.nn.functional.pad(xt, (pl, pr, pt, pb))
        return layer(xt).numpy().transpose(0, 2, 3, 1)


def check_against_torch(torch, conv, x, padding):
    ours = conv(x).numpy()
    ref = torch_conv(torch, conv, x, padding)
    assert ours.shape == ref.shape == conv.output_shape(x.shape)
    assert ours.dtype == x.dtype
    kh, kw, cin_g, _ = conv.weight.shape
    np.testing.assert_allclose(ours, ref, **tolerance(x.dtype, cin_g * kh * kw))


# -- PyTorch parity: a grid of named configurations ------------------------------------
GRID = {
    # name: (in, out, kernel, keywords, input H x W)
    "3x3 valid": (3, 8, 3, {}, (9, 9)),
    "1x1 pointwise": (5, 7, 1, {}, (4, 6)),
    "resnet stem 7x7 s2 p3": (3, 16, 7, dict(stride=2, padding=3), (23, 19)),
    "rect kernel, pair padding": (2, 4, (1, 5), dict(padding=(0, 2)), (5, 11)),
    "stride pair": (3, 5, 3, dict(stride=(2, 1)), (10, 7)),
    "dilation 2": (3, 6, 3, dict(dilation=2, padding=2), (9, 8)),
    "dilation pair": (2, 3, (2, 3), dict(dilation=(3, 1)), (11, 6)),
    "groups 2": (4, 6, 3, dict(groups=2, padding=1), (7, 7)),
    "groups = channels": (6, 12, 3, dict(groups=6), (6, 6)),
    "no bias": (3, 4, 3, dict(bias=False), (5, 5)),
    "same, odd kernel": (3, 4, 3, dict(padding="same"), (7, 6)),
    "same, even kernel": (3, 4, 4, dict(padding="same"), (7, 6)),
    "same, dilated": (2, 3, 3, dict(padding="same", dilation=2), (8, 9)),
    "same, stride 2 (torch can't)": (3, 4, 3, dict(padding="same", stride=2), (8, 7)),
    "same, stride 3, even kernel": (2, 4, 4, dict(padding="same", stride=3), (10, 11)),
    "valid": (3, 4, 2, dict(padding="valid"), (5, 4)),
    "asymmetric padding": (3, 4, 3, dict(padding=((0, 2), (1, 0))), (5, 5)),
    "kernel = input": (3, 4, 5, {}, (5, 5)),
    "1x1 input": (4, 2, 1, {}, (1, 1)),
    "long sum (fan_in 576)": (64, 8, 3, dict(padding=1), (6, 6)),
}


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
@pytest.mark.parametrize("name", list(GRID))
def test_conv2d_matches_torch_grid(torch, name, dtype):
    cin, cout, kernel, kw, (h, w) = GRID[name]
    manual_seed(1)
    conv = Conv2d(cin, cout, kernel, dtype=dtype, **kw)
    x = np.random.default_rng(0).standard_normal((2, h, w, cin)).astype(dtype)
    check_against_torch(torch, conv, x, kw.get("padding", 0))


PADDINGS = st.one_of(
    st.integers(0, 2),
    st.tuples(st.integers(0, 2), st.integers(0, 2)),
    st.tuples(st.tuples(st.integers(0, 2), st.integers(0, 2)), st.tuples(st.integers(0, 2), st.integers(0, 2))),
    st.sampled_from(["same", "valid"]),
)


@st.composite
def conv_configs(draw, depthwise=False):
    """A random, valid conv configuration and an input size the window fits."""
    kernel = (draw(st.integers(1, 4)), draw(st.integers(1, 4)))
    stride = (draw(st.integers(1, 3)), draw(st.integers(1, 3)))
    dilation = (draw(st.integers(1, 3)), draw(st.integers(1, 2)))
    padding = draw(PADDINGS)
    groups = 1 if depthwise else draw(st.sampled_from([1, 1, 2, 3]))
    cin = groups * draw(st.integers(1, 3))
    cout = groups * draw(st.integers(1, 3))
    sizes = []
    for axis in range(2):
        span = dilation[axis] * (kernel[axis] - 1) + 1
        pads = explicit(padding, 99, 99, kernel, stride, dilation)[axis] if padding != "same" else (span, 0)
        sizes.append(draw(st.integers(max(1, span - sum(pads)), span + 5)))
    keywords = dict(stride=stride, padding=padding, dilation=dilation, bias=draw(st.booleans()))
    if depthwise:
        keywords["depth_multiplier"] = draw(st.integers(1, 3))
    batch = draw(st.integers(1, 2))
    return kernel, cin, cout, groups, keywords, (batch, *sizes, cin)


@given(config=conv_configs(), seed=st.integers(0, 2**16), float64=st.booleans())
def test_conv2d_matches_torch_random(torch, config, seed, float64):
    kernel, cin, cout, groups, kw, shape = config
    dtype = np.float64 if float64 else np.float32
    manual_seed(seed)
    conv = Conv2d(cin, cout, kernel, groups=groups, dtype=dtype, **kw)
    x = np.random.default_rng(seed).standard_normal(shape).astype(dtype)
    check_against_torch(torch, conv, x, kw["padding"])


@given(config=conv_configs(depthwise=True), seed=st.integers(0, 2**16))
def test_depthwise_conv2d_matches_torch_random(torch, config, seed):
    kernel, cin, _, _, kw, shape = config
    manual_seed(seed)
    conv = DepthwiseConv2d(kernel, channels=cin, **kw)
    assert conv.groups == cin and conv.out_channels == cin * kw["depth_multiplier"]
    x = np.random.default_rng(seed).standard_normal(shape).astype(np.float32)
    check_against_torch(torch, conv, x, kw["padding"])


def test_activation_is_applied_after_the_bias():
    manual_seed(0)
    conv = Conv2d(3, 4, 3, activation="relu")
    x = np.random.default_rng(0).standard_normal((2, 6, 6, 3)).astype(np.float32)
    plain = Conv2d(3, 4, 3)
    plain.load_state_dict(conv.state_dict())
    np.testing.assert_array_equal(conv(x).numpy(), relu(plain(x)).numpy())
    assert Conv2d(3, 4, 3, activation=relu).activation == relu


def test_depthwise_is_a_grouped_conv_with_the_same_weights():
    manual_seed(0)
    dw = DepthwiseConv2d(3, stride=2, padding="same", depth_multiplier=2, channels=4)
    conv = Conv2d(4, 8, 3, stride=2, padding="same", groups=4)
    conv.load_state_dict(dw.state_dict())
    x = np.random.default_rng(0).standard_normal((1, 7, 7, 4)).astype(np.float32)
    np.testing.assert_array_equal(dw(x).numpy(), conv(x).numpy())
    assert isinstance(dw, Conv2d)


@pytest.mark.parametrize("dtype", ["float16", "bfloat16"])
def test_low_precision_runs_and_keeps_its_dtype(dtype):
    manual_seed(0)
    conv = Conv2d(3, 4, 3, padding=1)
    x = np.random.default_rng(0).standard_normal((1, 5, 5, 3)).astype(np.float32)
    ref = conv(x).numpy()
    conv.to(dtype)
    out = conv(Tensor(x).astype(dtype))
    assert out.dtype.name == dtype
    np.testing.assert_allclose(out.numpy().astype(np.float32), ref, rtol=0.05, atol=0.05)


# -- shape rules ---------------------------------------------------------------------
def test_the_documented_sequential_error():
    with pytest.raises(ShapeError) as err:
        Sequential(Conv2d(3, 64, (3, 3)), Dense(10), input_shape=("batch", 224, 224, 3))
    assert str(err.value) == (
        "layer 2 (Dense): expects (batch, features) but receives (batch, 222, 222, 64) from layer 1 (Conv2d)"
    )


def test_the_sequential_error_is_symbolic_without_an_input_shape():
    with pytest.raises(ShapeError) as err:
        Sequential(Conv2d(3, 64, (3, 3)), Dense(10))
    assert str(err.value) == (
        "layer 2 (Dense): expects (batch, features) but receives (batch, H-2, W-2, 64) from layer 1 (Conv2d)"
    )


@pytest.mark.parametrize(
    "conv, expected",
    [
        (Conv2d(3, 8, 3), ("batch", "H-2", "W-2", 8)),
        (Conv2d(3, 8, 3, padding=1), ("batch", "H", "W", 8)),
        (Conv2d(3, 8, 1, padding=2), ("batch", "H+4", "W+4", 8)),
        (Conv2d(3, 8, 3, stride=2), ("batch", "(H-3)//2+1", "(W-3)//2+1", 8)),
        (Conv2d(3, 8, 3, padding="same"), ("batch", "H", "W", 8)),
        (Conv2d(3, 8, 3, stride=(2, 3), padding="same"), ("batch", "ceil(H/2)", "ceil(W/3)", 8)),
        (Conv2d(3, 8, 3, dilation=2, padding=((1, 0), (0, 0))), ("batch", "H-3", "W-4", 8)),
        (Conv2d(8, 3), ("batch", "H-2", "W-2", 8)),
        (DepthwiseConv2d(3), ("batch", "H-2", "W-2", 3)),
        (DepthwiseConv2d(3, depth_multiplier=4), ("batch", "H-2", "W-2", 12)),
    ],
)
def test_symbolic_output_shape(conv, expected):
    assert conv.output_shape(("batch", "H", "W", 3)) == expected


def test_symbolic_channels_of_a_lazy_depthwise():
    assert DepthwiseConv2d(3, depth_multiplier=2).output_shape(("batch", 9, 9, "C")) == ("batch", 7, 7, "C*2")
    assert DepthwiseConv2d(3).output_shape(("batch", 9, 9, "C")) == ("batch", 7, 7, "C")


def evaluate(dim, h, w):
    return dim if isinstance(dim, int) else eval(dim, {"ceil": math.ceil}, {"H": h, "W": w})


@given(config=conv_configs(), depthwise=st.booleans())
def test_symbolic_formula_agrees_with_the_concrete_shape(config, depthwise):
    kernel, cin, cout, groups, kw, (_, h, w, _) = config
    if depthwise:
        kw = dict(kw, depth_multiplier=2)
        conv = DepthwiseConv2d(kernel, channels=cin, **kw)
    else:
        conv = Conv2d(cin, cout, kernel, groups=groups, **kw)
    concrete = conv.output_shape((2, h, w, cin))
    symbolic = conv.output_shape(("batch", "H", "W", cin))
    assert symbolic[0] == "batch" and symbolic[3] == concrete[3]
    assert (evaluate(symbolic[1], h, w), evaluate(symbolic[2], h, w)) == concrete[1:3]


@given(config=conv_configs(), seed=st.integers(0, 100))
def test_output_shape_equals_forward_shape(config, seed):
    kernel, cin, cout, groups, kw, shape = config
    conv = Conv2d(cout, kernel, groups=groups, **kw)  # lazy: built by the call
    x = np.random.default_rng(seed).standard_normal(shape).astype(np.float32)
    assert conv.output_shape(shape) == conv(x).shape


def test_lazy_conv_infers_in_channels():
    conv = Conv2d(8, (3, 5))
    assert not conv.built and conv.in_channels is None and conv.expects() == "(batch, H, W, C)"
    assert conv.default_input_shape() == ("batch", "H", "W", "C")
    model = Sequential(conv, input_shape=(None, 10, 10, 5))
    assert conv.built and conv.in_channels == 5 and conv.weight.shape == (3, 5, 5, 8)
    assert conv.expects() == "(batch, H, W, 5)"
    assert model(np.ones((2, 10, 10, 5), np.float32)).shape == (2, 8, 6, 8)


def test_lazy_conv_stays_unbuilt_on_symbolic_channels_and_builds_on_data():
    conv = Conv2d(4, 3)
    Sequential(conv)  # input ("batch", "H", "W", "C"): nothing to infer from yet
    assert not conv.built
    with pytest.raises(RuntimeError, match="not built"):
        conv.state_dict()
    assert conv(np.ones((1, 5, 5, 2), np.float32)).shape == (1, 3, 3, 4)
    assert conv.weight.shape == (3, 3, 2, 4)


def test_lazy_depthwise_builds_from_the_input():
    dw = DepthwiseConv2d((3, 3), depth_multiplier=3)
    Sequential(dw, input_shape=(None, 8, 8, 5))
    assert (dw.in_channels, dw.out_channels, dw.groups, dw.weight.shape) == (5, 15, 5, (3, 3, 1, 15))


def test_wrong_channel_count_names_the_layer_and_the_channels():
    with pytest.raises(ShapeError) as err:
        Conv2d(3, 8, 3)(np.ones((1, 8, 8, 4), np.float32))
    assert str(err.value) == (
        "Conv2d: expects (batch, H, W, 3) but receives (1, 8, 8, 4) (3 input channels expected, got 4)"
    )
    with pytest.raises(ShapeError) as err:
        Sequential(Conv2d(3, 8, 3), input_shape=(None, 32, 32, 4))
    assert str(err.value).startswith("layer 1 (Conv2d): expects (batch, H, W, 3) but receives (batch, 32, 32, 4)")
    with pytest.raises(ShapeError, match="DepthwiseConv2d: expects \\(batch, H, W, 6\\)"):
        DepthwiseConv2d(3, channels=6).output_shape((1, 8, 8, 5))


def test_lazy_groups_must_divide_the_inferred_channels():
    with pytest.raises(ShapeError, match="groups=2 must divide the 3 input channels"):
        Sequential(Conv2d(8, 3, groups=2), input_shape=(None, 8, 8, 3))


@pytest.mark.parametrize("shape", [(8, 8, 3), (1, 1, 8, 8, 3), (3,)])
def test_wrong_rank(shape):
    with pytest.raises(ShapeError, match=f"rank 4 expected, got rank {len(shape)}") as err:
        Conv2d(3, 8, 3)(np.ones(shape, np.float32))
    assert err.value.layer == "Conv2d"


def test_kernel_larger_than_the_padded_input():
    with pytest.raises(ShapeError) as err:
        Conv2d(3, 8, 5)(np.ones((1, 4, 9, 3), np.float32))
    assert err.value.detail == "kernel size 5 along H is larger than the padded input 4+0+0=4"
    with pytest.raises(ShapeError, match=r"kernel size 3 \(dilated to span 7\) along W is larger than .* 6\+0\+0=6"):
        Conv2d(3, 8, 3, dilation=3).output_shape(("batch", 10, 6, 3))
    # padding can make it fit, and "same" always fits
    assert Conv2d(3, 8, 5, padding=1).output_shape((1, 3, 3, 3)) == (1, 1, 1, 8)
    assert Conv2d(3, 8, 7, padding="same", stride=2).output_shape((1, 1, 3, 3)) == (1, 1, 2, 8)
    with pytest.raises(ShapeError, match="layer 2 \\(Conv2d\\).*from layer 1 \\(Conv2d\\)"):
        Sequential(Conv2d(3, 8, 3), Conv2d(8, 5), input_shape=(None, 6, 6, 3))


def test_integer_input_is_a_type_error():
    with pytest.raises(TypeError, match="Conv2d: expects a floating-point tensor"):
        Conv2d(3, 8, 3)(np.ones((1, 5, 5, 3), np.int64))


def test_dtype_mismatch_is_a_type_error():
    conv = Conv2d(3, 8, 3, dtype="float64")
    assert conv.weight.dtype == np.float64 and conv.bias.dtype == np.float64
    with pytest.raises(TypeError, match="does not match parameter dtype float64"):
        conv(np.ones((1, 5, 5, 3), np.float32))


@pytest.mark.parametrize(
    "make, error, message",
    [
        (lambda: Conv2d(0, 8, 3), ValueError, "Conv2d: in_channels must be a positive int, got 0"),
        (lambda: Conv2d(3, -1, 3), ValueError, "Conv2d: out_channels must be a positive int, got -1"),
        (lambda: Conv2d(3.0, 8, 3), ValueError, "in_channels must be a positive int"),
        (lambda: Conv2d(64, (3, 3), 2), TypeError, "lazy form Conv2d\\(out_channels, kernel_size, stride=..."),
        (lambda: Conv2d(3, 8, 0), ValueError, "Conv2d: kernel_size must be positive, got 0"),
        (
            lambda: Conv2d(3, 8, (3, 3, 3)),
            ValueError,
            "kernel_size must be an int or a pair of ints, got \\(3, 3, 3\\)",
        ),
        (lambda: Conv2d(3, 8, "3"), TypeError, "kernel_size must be an int or a pair of ints, got '3'"),
        (lambda: Conv2d(3, 8, 3, stride=0), ValueError, "stride must be positive, got 0"),
        (lambda: Conv2d(3, 8, 3, dilation=(1, 0)), ValueError, "dilation must be positive, got 0"),
        (lambda: Conv2d(3, 8, 3, padding=-1), ValueError, "padding must be >= 0, got -1"),
        (lambda: Conv2d(3, 8, 3, padding=1.5), TypeError, "padding must be an int or a pair of ints, got 1.5"),
        (lambda: Conv2d(3, 8, 3, padding="full"), ValueError, "'valid' or 'same', got 'full'"),
        (lambda: Conv2d(3, 8, 3, padding=((1, 2), (3,))), ValueError, "padding \\(left, right\\) must be"),
        (lambda: Conv2d(3, 8, 3, groups=2), ValueError, "groups=2 must divide in_channels=3 \\(and out_channels=8\\)"),
        (lambda: Conv2d(4, 6, 3, groups=4), ValueError, "groups=4 must divide out_channels=6"),
        (lambda: Conv2d(4, 8, 3, groups=0), ValueError, "groups must be a positive int, got 0"),
        (lambda: Conv2d(3, 8, 3, activation=lambda x: x), TypeError, "Conv2d: activation must be a name"),
        (lambda: Conv2d(3, 8, 3, activation="swoosh"), ValueError, "unknown activation 'swoosh'"),
        (lambda: DepthwiseConv2d(3, depth_multiplier=0), ValueError, "depth_multiplier must be a positive int"),
        (lambda: DepthwiseConv2d(3, channels=0), ValueError, "DepthwiseConv2d: channels must be a positive int"),
        (lambda: DepthwiseConv2d(0), ValueError, "DepthwiseConv2d: kernel_size must be positive"),
    ],
)
def test_bad_constructor_arguments(make, error, message):
    with pytest.raises(error, match=message):
        make()


# -- parameters and state ---------------------------------------------------------------
@pytest.mark.parametrize(
    "conv, shapes",
    [
        (Conv2d(3, 8, 3), {"weight": (3, 3, 3, 8), "bias": (8,)}),
        (Conv2d(3, 8, (1, 5), bias=False), {"weight": (1, 5, 3, 8)}),
        (Conv2d(6, 4, 3, groups=2), {"weight": (3, 3, 3, 4), "bias": (4,)}),
        (DepthwiseConv2d(5, channels=4, depth_multiplier=2), {"weight": (5, 5, 1, 8), "bias": (8,)}),
    ],
)
def test_state_dict_keys_and_shapes(conv, shapes):
    state = conv.state_dict()
    assert {k: v.shape for k, v in state.items()} == shapes
    assert all(v.dtype == np.float32 for v in state.values())


def test_state_dict_of_a_model_and_round_trip():
    manual_seed(0)
    model = Sequential(Conv2d(8, 3, padding=1), MaxPool2d(2), Conv2d(4, 1), input_shape=(None, 8, 8, 3))
    state = model.state_dict()
    assert {k: v.shape for k, v in state.items()} == {
        "0.weight": (3, 3, 3, 8),
        "0.bias": (8,),
        "2.weight": (1, 1, 8, 4),
        "2.bias": (4,),
    }
    manual_seed(1)
    other = Sequential(Conv2d(3, 8, 3, padding=1), MaxPool2d(2), Conv2d(8, 4, 1))
    other.load_state_dict(state)
    x = np.random.default_rng(0).standard_normal((2, 8, 8, 3)).astype(np.float32)
    np.testing.assert_array_equal(model(x).numpy(), other(x).numpy())


@pytest.mark.parametrize("groups", [1, 4])
def test_init_is_pytorch_fan_in_uniform(groups):
    manual_seed(0)
    conv = Conv2d(16, 64, 3, groups=groups)
    bound = 1 / math.sqrt(16 // groups * 9)
    for p in (conv.weight.numpy(), conv.bias.numpy()):
        assert np.abs(p).max() <= bound and np.abs(p).max() > 0.9 * bound
    std = conv.weight.numpy().std()
    assert abs(std - bound / math.sqrt(3)) < 0.05 * bound


def test_repr():
    assert repr(Conv2d(3, 8, 3)) == "Conv2d(3, 8, kernel_size=(3, 3))"
    assert repr(Conv2d(8, 3, stride=2, padding="same", groups=2, bias=False, activation="relu")) == (
        "Conv2d(?, 8, kernel_size=(3, 3), stride=(2, 2), padding='same', groups=2, bias=False, activation=relu)"
    )
    assert repr(DepthwiseConv2d(3, padding=1, depth_multiplier=2)) == (
        "DepthwiseConv2d(channels=?, kernel_size=(3, 3), padding=((1, 1), (1, 1)), depth_multiplier=2)"
    )


# -- end to end ----------------------------------------------------------------------
def small_cnn():
    return [
        Conv2d(8, 3, padding="same", activation="relu"),
        MaxPool2d(2),
        Conv2d(16, 3, stride=2),
        GlobalAvgPool(),
        Dense(10),
    ]


def test_lazy_cnn_chain_checks_and_builds_with_an_input_shape():
    model = Sequential(*small_cnn(), input_shape=(None, 32, 32, 3))
    assert model.built
    assert model.output_shape(("batch", 32, 32, 3)) == ("batch", 10)
    assert model.output_shape(("batch", "H", "W", 3)) == ("batch", 10)
    assert [p.shape for p in model.parameters()] == [(3, 3, 3, 8), (8,), (3, 3, 8, 16), (16,), (16, 10), (10,)]
    assert model(np.zeros((4, 32, 32, 3), np.float32)).shape == (4, 10)
    with pytest.raises(ShapeError, match="layer 1 \\(Conv2d\\): expects \\(batch, H, W, 3\\)"):
        model(np.zeros((4, 32, 32, 1), np.float32))


def test_lazy_cnn_chain_builds_on_the_first_batch_and_matches_torch(torch):
    manual_seed(0)
    model = Sequential(*small_cnn())
    assert not model.built  # the input channel count is still a symbol
    x = np.random.default_rng(0).standard_normal((2, 12, 12, 3)).astype(np.float32)
    ours = (x >> model).numpy()
    assert ours.shape == (2, 10) and model.built

    conv1, _, conv2, _, dense = model.layers
    nn = torch.nn
    ref_model = nn.Sequential(
        nn.Conv2d(3, 8, 3, padding="same"),
        nn.ReLU(),
        nn.MaxPool2d(2),
        nn.Conv2d(8, 16, 3, stride=2),
        nn.AdaptiveAvgPool2d(1),
        nn.Flatten(),
        nn.Linear(16, 10),
    )
    with torch.no_grad():
        for ours_conv, ref_conv in ((conv1, ref_model[0]), (conv2, ref_model[3])):
            ref_conv.weight.copy_(torch.from_numpy(ours_conv.weight.numpy().transpose(3, 2, 0, 1).copy()))
            ref_conv.bias.copy_(torch.from_numpy(ours_conv.bias.numpy()))
        ref_model[6].weight.copy_(torch.from_numpy(dense.weight.numpy().T.copy()))
        ref_model[6].bias.copy_(torch.from_numpy(dense.bias.numpy()))
        ref = ref_model(torch.from_numpy(x.transpose(0, 3, 1, 2).copy())).numpy()
    np.testing.assert_allclose(ours, ref, rtol=1e-5, atol=1e-5)
