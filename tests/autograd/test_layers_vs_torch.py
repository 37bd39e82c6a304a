"""Every layer's gradients against ``torch.autograd`` with the same weights and upstream gradient.

Each case builds an Axiom layer with random (non-trivial) parameters and a torch twin holding
the same numbers in torch's layout (NHWC <-> NCHW, ``(in, out)`` <-> ``(out, in)``,
``(kH, kW, Cin/g, Cout)`` <-> ``(Cout, Cin/g, kH, kW)``). The twin is a function of the input
in *Axiom's* layout, so torch's autograd returns the input gradient in that layout too. Both run
forward and backward with the same random upstream gradient; the outputs, the input gradient
and every parameter gradient must agree. Runs on the NumPy reference (float64, tight) and the
C backend (float64 tight, float32 looser). RoPE has no torch layer: finite differences check it.
"""

from __future__ import annotations

import math
import warnings
from collections.abc import Callable
from dataclasses import dataclass, field

import numpy as np
import pytest
from autograd_helpers import away_from, c_backend, check_layer_gradients, distinct
from hypothesis import given
from hypothesis import strategies as st

from axiom import (
    AvgPool2d,
    BatchNorm,
    Conv2d,
    Dense,
    DepthwiseConv2d,
    Dropout,
    Embedding,
    Flatten,
    GlobalAvgPool,
    LayerNorm,
    LogSoftmax,
    MaxPool2d,
    MultiHeadAttention,
    Parallel,
    Reshape,
    Residual,
    RMSNorm,
    Softmax,
    Tensor,
    manual_seed,
)
from axiom.backends import ACTIVATIONS, FallbackWarning, use_backend
from axiom.nn.activations import Activation

torch = pytest.importorskip("torch")
TF = torch.nn.functional
pytestmark = pytest.mark.filterwarnings("ignore::axiom.backends.FallbackWarning")

#: (backend, dtype, tolerance): float64 agrees to rounding; float32 sums in other orders
RUNS = [
    ("numpy", np.float64, dict(rtol=1e-9, atol=1e-10)),
    ("c", np.float64, dict(rtol=1e-9, atol=1e-10)),
    ("c", np.float32, dict(rtol=2e-4, atol=2e-5)),
]
RUN_IDS = ["numpy-float64", "c-float64", "c-float32"]


@dataclass
class Twin:
    """An Axiom layer, its torch twin, the input, and how parameters map between them."""

    layer: object
    torch_fn: Callable[[torch.Tensor], torch.Tensor]
    x: np.ndarray
    #: (our parameter, torch leaf, torch gradient -> our layout)
    params: list[tuple[object, torch.Tensor, Callable[[np.ndarray], np.ndarray]]] = field(default_factory=list)
    integer_input: bool = False


def tt(a: np.ndarray, grad: bool = True) -> torch.Tensor:
    return torch.from_numpy(np.ascontiguousarray(a)).requires_grad_(grad)


def same(g: np.ndarray) -> np.ndarray:
    return g


def randomise(layer, seed: int) -> None:
    """Random parameters (biases and BatchNorm/LayerNorm affine are not left at 0 / 1)."""
    rng = np.random.default_rng(seed)
    for _, p in layer.named_parameters():
        p.data = (rng.standard_normal(p.shape) / math.sqrt(max(p.shape[0], 1))).astype(p.dtype)


def dense_twin(layer: Dense, act: Callable | None = None) -> tuple[Callable, list]:
    w = tt(layer.weight.data.T)
    b = None if layer.bias is None else tt(layer.bias.data)

    def fn(x):
        y = TF.linear(x, w, b)
        return act(y) if act is not None else y

    params = [(layer.weight, w, lambda g: g.T)] + ([(layer.bias, b, same)] if b is not None else [])
    return fn, params


def nchw(fn: Callable) -> Callable:
    """Run a torch NCHW function on an NHWC tensor (autograd sees the permutes)."""
    return lambda x: fn(x.permute(0, 3, 1, 2)).permute(0, 2, 3, 1)


# -- cases ----------------------------------------------------------------------------------------


def case_dense(dtype, bias=True, act=None):
    layer = Dense(5, 4, act, bias=bias, dtype=dtype)
    randomise(layer, 1)
    fn, params = dense_twin(layer, {None: None, "tanh": torch.tanh}[act])
    return Twin(layer, fn, np.random.default_rng(2).standard_normal((3, 5)), params)


CONVS = {
    # name: (cin, cout, kernel, stride, padding, dilation, groups, bias, (H, W))
    "3x3": (3, 4, 3, 1, 0, 1, 1, True, (6, 5)),
    "stride 2, padding 1": (2, 3, 3, 2, 1, 1, 1, True, (7, 6)),
    "rect kernel, stride pair": (2, 3, (2, 3), (2, 1), (1, 0), 1, 1, True, (6, 7)),
    "dilation 2": (2, 2, 3, 1, 2, 2, 1, True, (6, 6)),
    "groups 2, no bias": (4, 6, 3, 1, 1, 1, 2, False, (5, 5)),
    "groups = channels": (3, 6, 2, 1, 0, 1, 3, True, (4, 5)),
}


def case_conv(dtype, name):
    cin, cout, k, s, p, d, g, bias, (h, w) = CONVS[name]
    layer = Conv2d(cin, cout, k, stride=s, padding=p, dilation=d, groups=g, bias=bias, dtype=dtype)
    randomise(layer, 3)
    return conv_twin(layer, np.random.default_rng(4).standard_normal((2, h, w, cin)), s, p, d, g)


def conv_twin(layer, x, stride, padding, dilation, groups):
    wt = tt(layer.weight.data.transpose(3, 2, 0, 1))
    bt = None if layer.bias is None else tt(layer.bias.data)

    def fn(xt):
        return TF.conv2d(xt, wt, bt, stride=stride, padding=padding, dilation=dilation, groups=groups)

    params = [(layer.weight, wt, lambda g: g.transpose(2, 3, 1, 0))]
    params += [(layer.bias, bt, same)] if bt is not None else []
    return Twin(layer, nchw(fn), x, params)


def case_depthwise(dtype, multiplier=2, stride=1, padding=1):
    layer = DepthwiseConv2d(3, stride=stride, padding=padding, depth_multiplier=multiplier, channels=3, dtype=dtype)
    randomise(layer, 5)
    x = np.random.default_rng(6).standard_normal((2, 5, 6, 3))
    return conv_twin(layer, x, stride, padding, 1, 3)


def case_batchnorm(dtype, rank=4, training=True, affine=True, momentum=0.1, track=True):
    c = 3
    layer = BatchNorm(c, momentum=momentum, affine=affine, track_running_stats=track, dtype=dtype)
    rng = np.random.default_rng(7)
    if affine:
        randomise(layer, 8)
    module = (torch.nn.BatchNorm2d if rank == 4 else torch.nn.BatchNorm1d)(
        c, momentum=momentum, affine=affine, track_running_stats=track, dtype=getattr(torch, np.dtype(dtype).name)
    )
    with torch.no_grad():
        if track:
            layer.running_mean.data = rng.standard_normal(c).astype(dtype)
            layer.running_var.data = rng.uniform(0.5, 2.0, c).astype(dtype)
            module.running_mean.copy_(torch.from_numpy(layer.running_mean.data))
            module.running_var.copy_(torch.from_numpy(layer.running_var.data))
        if affine:
            module.weight.copy_(torch.from_numpy(layer.weight.data))
            module.bias.copy_(torch.from_numpy(layer.bias.data))
    layer.train(training)
    module.train(training)
    shape = (4, 3, 2, c) if rank == 4 else (5, c)
    x = 2.0 + 1.5 * rng.standard_normal(shape)
    params = [(layer.weight, module.weight, same), (layer.bias, module.bias, same)] if affine else []
    twin = Twin(layer, nchw(module) if rank == 4 else module, x, params)
    twin.module = module  # for the running statistics
    return twin


def case_layernorm(dtype, n_axes=1, affine=True, bias=True):
    shape = (2, 3, 4, 5)
    norm = shape[len(shape) - n_axes :]
    layer = LayerNorm(norm, eps=1e-5, elementwise_affine=affine, bias=bias, dtype=dtype)
    module = torch.nn.LayerNorm(
        norm, eps=1e-5, elementwise_affine=affine, bias=bias, dtype=getattr(torch, layer._dtype.name)
    )
    params = []
    if affine:
        randomise(layer, 9)
        with torch.no_grad():
            module.weight.copy_(torch.from_numpy(layer.weight.data))
            params.append((layer.weight, module.weight, same))
            if bias:
                module.bias.copy_(torch.from_numpy(layer.bias.data))
                params.append((layer.bias, module.bias, same))
    return Twin(layer, module, np.random.default_rng(10).standard_normal(shape) * 2 + 1, params)


def case_rmsnorm(dtype, n_axes=1, affine=True, eps=1e-6):
    shape = (2, 3, 4)
    norm = shape[len(shape) - n_axes :]
    layer = RMSNorm(norm, eps=eps, elementwise_affine=affine, dtype=dtype)
    module = torch.nn.RMSNorm(norm, eps=eps, elementwise_affine=affine, dtype=getattr(torch, layer._dtype.name))
    params = []
    if affine:
        randomise(layer, 11)
        with torch.no_grad():
            module.weight.copy_(torch.from_numpy(layer.weight.data))
        params.append((layer.weight, module.weight, same))
    return Twin(layer, module, np.random.default_rng(12).standard_normal(shape), params)


def case_maxpool(dtype, kernel=3, stride=2, padding=1, dilation=1):
    layer = MaxPool2d(kernel, stride, padding, dilation)
    module = torch.nn.MaxPool2d(kernel, stride, padding, dilation)
    return Twin(layer, nchw(module), distinct(np.random.default_rng(13), (2, 7, 6, 3)))


def case_avgpool(dtype, kernel=3, stride=2, padding=1, count_include_pad=True):
    layer = AvgPool2d(kernel, stride, padding, count_include_pad=count_include_pad)
    module = torch.nn.AvgPool2d(kernel, stride, padding, count_include_pad=count_include_pad)
    return Twin(layer, nchw(module), np.random.default_rng(14).standard_normal((2, 7, 6, 3)))


def case_global_avg_pool(dtype):
    return Twin(GlobalAvgPool(), lambda x: x.mean(dim=(1, 2)), np.random.default_rng(15).standard_normal((2, 3, 4, 5)))


def case_flatten(dtype):
    return Twin(Flatten(), lambda x: x.reshape(x.shape[0], -1), np.random.default_rng(16).standard_normal((2, 3, 2, 4)))


def case_reshape(dtype):
    return Twin(Reshape((4, -1)), lambda x: x.reshape(2, 4, 6), np.random.default_rng(17).standard_normal((2, 3, 2, 4)))


def case_mha(dtype, causal=False, bias=True):
    e, h, length = 6, 2, 4
    layer = MultiHeadAttention(e, h, bias=bias, causal=causal, dtype=dtype)
    randomise(layer, 18)
    tdt = getattr(torch, layer._dtype.name)
    ref = torch.nn.MultiheadAttention(e, h, bias=bias, batch_first=True, dtype=tdt)
    projections = (layer.q_proj, layer.k_proj, layer.v_proj)
    with torch.no_grad():
        ref.in_proj_weight.copy_(torch.from_numpy(np.concatenate([p.weight.data.T for p in projections])))
        ref.out_proj.weight.copy_(torch.from_numpy(layer.out_proj.weight.data.T))
        if bias:
            ref.in_proj_bias.copy_(torch.from_numpy(np.concatenate([p.bias.data for p in projections])))
            ref.out_proj.bias.copy_(torch.from_numpy(layer.out_proj.bias.data))
    mask = torch.triu(torch.ones(length, length, dtype=torch.bool), 1) if causal else None

    def fn(x):
        return ref(x, x, x, need_weights=False, attn_mask=mask)[0]

    params = [
        (p.weight, ref.in_proj_weight, lambda g, i=i: g[i * e : (i + 1) * e].T) for i, p in enumerate(projections)
    ]
    params.append((layer.out_proj.weight, ref.out_proj.weight, lambda g: g.T))
    if bias:
        params += [(p.bias, ref.in_proj_bias, lambda g, i=i: g[i * e : (i + 1) * e]) for i, p in enumerate(projections)]
        params.append((layer.out_proj.bias, ref.out_proj.bias, same))
    return Twin(layer, fn, np.random.default_rng(19).standard_normal((2, length, e)), params)


def case_embedding(dtype, padding_idx=None):
    layer = Embedding(5, 3, padding_idx=padding_idx, dtype=dtype)
    randomise(layer, 20)
    weight = tt(layer.weight.data)
    idx = np.array([[0, 2, 2], [4, 1, 2]])
    twin = Twin(layer, lambda i: TF.embedding(i, weight, padding_idx=padding_idx), idx, [(layer.weight, weight, same)])
    twin.integer_input = True
    return twin


TORCH_ACTIVATIONS = {
    "identity": lambda x, a: x,
    "relu": lambda x, a: TF.relu(x),
    "leaky_relu": lambda x, a: TF.leaky_relu(x, a),
    "elu": lambda x, a: TF.elu(x, a),
    "selu": lambda x, a: TF.selu(x),
    "gelu": lambda x, a: TF.gelu(x),
    "gelu_tanh": lambda x, a: TF.gelu(x, approximate="tanh"),
    "sigmoid": lambda x, a: torch.sigmoid(x),
    "tanh": lambda x, a: torch.tanh(x),
    "softplus": lambda x, a: TF.softplus(x),
    "softsign": lambda x, a: TF.softsign(x),
    "silu": lambda x, a: TF.silu(x),
    "mish": lambda x, a: TF.mish(x),
    "hardswish": lambda x, a: TF.hardswish(x),
    "hardsigmoid": lambda x, a: TF.hardsigmoid(x),
    "relu6": lambda x, a: TF.relu6(x),
}
ALPHA = {"leaky_relu": 0.2, "elu": 0.7}
KINKS = [-3.0, 0.0, 3.0, 6.0]  # relu, leaky_relu, elu, selu, relu6, hardswish, hardsigmoid


def case_activation(dtype, name):
    alpha = ALPHA.get(name)
    layer = Activation(name, alpha=alpha)
    x = away_from(4 * np.random.default_rng(21).standard_normal((3, 7)), KINKS)
    return Twin(layer, lambda t: TORCH_ACTIVATIONS[name](t, alpha), x)


def case_softmax(dtype, log=False, axis=-1):
    layer = (LogSoftmax if log else Softmax)(axis)
    fn = TF.log_softmax if log else TF.softmax
    return Twin(layer, lambda x: fn(x, dim=axis), 2 * np.random.default_rng(22).standard_normal((2, 3, 4)))


def case_residual(dtype):
    first, second = Dense(4, 4, "relu", dtype=dtype), Dense(4, 4, dtype=dtype)
    randomise(first, 23)
    randomise(second, 24)
    layer = Residual(first, second)
    f1, p1 = dense_twin(first, TF.relu)
    f2, p2 = dense_twin(second)
    x = away_from(np.random.default_rng(25).standard_normal((3, 4)), [0.0])
    return Twin(layer, lambda t: t + f2(f1(t)), x, p1 + p2)


def case_concat(dtype):
    a, b = Dense(4, 3, "tanh", dtype=dtype), Dense(4, 2, dtype=dtype)
    randomise(a, 26)
    randomise(b, 27)
    fa, pa = dense_twin(a, torch.tanh)
    fb, pb = dense_twin(b)
    x = np.random.default_rng(28).standard_normal((3, 4))
    return Twin(Parallel(a, b), lambda t: torch.cat([fa(t), fb(t)], dim=-1), x, pa + pb)


CASES: dict[str, Callable] = {
    "Dense": case_dense,
    "Dense no bias": lambda dt: case_dense(dt, bias=False),
    "Dense tanh": lambda dt: case_dense(dt, act="tanh"),
    **{f"Conv2d {name}": (lambda dt, name=name: case_conv(dt, name)) for name in CONVS},
    "DepthwiseConv2d": case_depthwise,
    "DepthwiseConv2d stride 2": lambda dt: case_depthwise(dt, multiplier=1, stride=2, padding=0),
    "BatchNorm train NHWC": case_batchnorm,
    "BatchNorm train 2-D": lambda dt: case_batchnorm(dt, rank=2),
    "BatchNorm train cumulative": lambda dt: case_batchnorm(dt, momentum=None),
    "BatchNorm train no affine": lambda dt: case_batchnorm(dt, affine=False),
    "BatchNorm eval": lambda dt: case_batchnorm(dt, training=False),
    "BatchNorm eval without running stats": lambda dt: case_batchnorm(dt, training=False, track=False),
    "LayerNorm": case_layernorm,
    "LayerNorm 2 axes": lambda dt: case_layernorm(dt, n_axes=2),
    "LayerNorm no bias": lambda dt: case_layernorm(dt, bias=False),
    "LayerNorm no affine": lambda dt: case_layernorm(dt, affine=False),
    "RMSNorm": case_rmsnorm,
    "RMSNorm 2 axes": lambda dt: case_rmsnorm(dt, n_axes=2),
    "RMSNorm no affine, default eps": lambda dt: case_rmsnorm(dt, affine=False, eps=None),
    "MaxPool2d": case_maxpool,
    "MaxPool2d dilated": lambda dt: case_maxpool(dt, kernel=2, stride=1, padding=1, dilation=2),
    "AvgPool2d": case_avgpool,
    "AvgPool2d exclude pad": lambda dt: case_avgpool(dt, count_include_pad=False),
    "AvgPool2d 2x2": lambda dt: case_avgpool(dt, kernel=2, stride=2, padding=0),
    "GlobalAvgPool": case_global_avg_pool,
    "Flatten": case_flatten,
    "Reshape": case_reshape,
    "MultiHeadAttention": case_mha,
    "MultiHeadAttention causal": lambda dt: case_mha(dt, causal=True),
    "MultiHeadAttention no bias": lambda dt: case_mha(dt, bias=False),
    "Embedding": case_embedding,
    "Embedding padding_idx": lambda dt: case_embedding(dt, padding_idx=2),
    **{f"Activation {name}": (lambda dt, name=name: case_activation(dt, name)) for name in ACTIVATIONS},
    "Softmax": case_softmax,
    "Softmax axis 1": lambda dt: case_softmax(dt, axis=1),
    "LogSoftmax": lambda dt: case_softmax(dt, log=True),
    "LogSoftmax axis 0": lambda dt: case_softmax(dt, log=True, axis=0),
    "Residual": case_residual,
    "Concat": case_concat,
}


def run_twin(twin: Twin, backend: str, dtype, tol: dict, seed: int = 0) -> None:
    x = twin.x if twin.integer_input else twin.x.astype(dtype)
    be = c_backend() if backend == "c" else backend
    with use_backend(be):
        xt = Tensor(x, requires_grad=not twin.integer_input)
        y = twin.layer(xt)
        g = np.random.default_rng(seed).standard_normal(y.shape).astype(dtype)
        y.backward(g)
    assert y.dtype == dtype
    tx = tt(x, grad=not twin.integer_input)
    ty = twin.torch_fn(tx)
    ty.backward(torch.from_numpy(g))
    np.testing.assert_allclose(y.data, ty.detach().numpy(), **tol, err_msg="forward")
    if not twin.integer_input:
        assert xt.grad.dtype == dtype
        np.testing.assert_allclose(xt.grad.data, tx.grad.numpy(), **tol, err_msg="input gradient")
    for i, (ours, leaf, convert) in enumerate(twin.params):
        assert ours.grad is not None, f"parameter {i} got no gradient"
        assert ours.grad.dtype == ours.dtype
        np.testing.assert_allclose(ours.grad.data, convert(leaf.grad.numpy()), **tol, err_msg=f"parameter {i}")


@pytest.mark.parametrize("backend,dtype,tol", RUNS, ids=RUN_IDS)
@pytest.mark.parametrize("name", list(CASES))
def test_layer_gradients_match_torch(name, backend, dtype, tol):
    manual_seed(0)
    twin = CASES[name](dtype)
    if name == "Activation hardsigmoid" and dtype == np.float64:
        tol = dict(rtol=1e-7, atol=1e-10)  # torch's float64 backward multiplies by 1/6 rounded to float32
    run_twin(twin, backend, dtype, tol)


@pytest.mark.parametrize("backend,dtype,tol", RUNS, ids=RUN_IDS)
@pytest.mark.parametrize("momentum", [0.1, None])
@pytest.mark.parametrize("rank", [2, 4])
def test_batchnorm_running_statistics_match_torch(backend, dtype, tol, momentum, rank):
    twin = case_batchnorm(dtype, rank=rank, momentum=momentum)
    for step in range(3):  # the cumulative average (momentum None) needs several batches
        twin.x = twin.x * 0.5 + step
        run_twin(twin, backend, dtype, tol, seed=step)
    np.testing.assert_allclose(twin.layer.running_mean.data, twin.module.running_mean.numpy(), **tol)
    np.testing.assert_allclose(twin.layer.running_var.data, twin.module.running_var.numpy(), **tol)
    assert int(twin.layer.num_batches_tracked.item()) == int(twin.module.num_batches_tracked) == 3


@pytest.mark.parametrize("backend", ["numpy", "c"])
@pytest.mark.parametrize("p", [0.25, 0.6])
def test_dropout_gradient_is_the_mask_times_the_scale(backend, p):
    x = np.random.default_rng(29).standard_normal((4, 50)) + 5.0  # never 0, so the mask is y != 0
    g = np.random.default_rng(30).standard_normal(x.shape)
    manual_seed(3)
    layer = Dropout(p).train()
    with use_backend(c_backend() if backend == "c" else backend):
        xt = Tensor(x, requires_grad=True)
        y = layer(xt)
        y.backward(g)
    keep = y.data != 0
    assert 0 < keep.mean() < 1
    np.testing.assert_allclose(y.data, x * keep / (1 - p), rtol=1e-15)
    np.testing.assert_allclose(xt.grad.data, g * keep / (1 - p), rtol=1e-15)
    # torch with the same mask agrees
    tx = tt(x)
    (tx * torch.from_numpy(keep) / (1 - p)).backward(torch.from_numpy(g))
    np.testing.assert_allclose(xt.grad.data, tx.grad.numpy(), rtol=1e-15)
    # eval mode is the identity, gradient included
    xt = Tensor(x, requires_grad=True)
    layer.eval()(xt).backward(g)
    np.testing.assert_array_equal(xt.grad.data, g)


@pytest.mark.parametrize("causal", [False, True])
def test_rope_attention_by_finite_differences(causal):
    layer = MultiHeadAttention(4, 2, rope=True, causal=causal, dtype=np.float64)
    randomise(layer, 31)
    check_layer_gradients(layer, np.random.default_rng(32).standard_normal((2, 3, 4)), rtol=1e-5, atol=1e-7)


def test_rope_attention_on_the_c_backend_matches_the_reference():
    layer = MultiHeadAttention(4, 2, rope=True, causal=True, dtype=np.float64)
    randomise(layer, 33)
    x = np.random.default_rng(34).standard_normal((2, 3, 4))
    grads = []
    for be in ("numpy", c_backend()):
        layer.zero_grad()
        xt = Tensor(x, requires_grad=True)
        with use_backend(be):
            layer(xt).backward(np.ones((2, 3, 4)))
        grads.append([xt.grad.data] + [p.grad.data for p in layer.parameters()])
    for ref, got in zip(*grads):
        np.testing.assert_allclose(got, ref, rtol=1e-9, atol=1e-12)


def test_the_c_backend_records_the_backward_kernels_it_falls_back_on():
    be = c_backend()
    layer = MultiHeadAttention(4, 2, dtype=np.float32)
    with use_backend(be), warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        layer(np.ones((1, 2, 4), np.float32)).sum().backward()
    missing = {"attention_backward", "activation_backward"} - set(type(be).native_grad_ops)
    assert missing <= set(be.fallbacks)
    for op in missing:
        assert any(op in str(w.message) and w.category is FallbackWarning for w in caught)


@st.composite
def conv_configs(draw):
    groups = draw(st.integers(1, 3))
    cin, cout = groups * draw(st.integers(1, 2)), groups * draw(st.integers(1, 3))
    k = (draw(st.integers(1, 3)), draw(st.integers(1, 3)))
    stride, dilation = (
        (draw(st.integers(1, 3)), draw(st.integers(1, 3))),
        (draw(st.integers(1, 2)), draw(st.integers(1, 2))),
    )
    padding = (draw(st.integers(0, 2)), draw(st.integers(0, 2)))
    h = dilation[0] * (k[0] - 1) + 1 + draw(st.integers(0, 4))
    w = dilation[1] * (k[1] - 1) + 1 + draw(st.integers(0, 4))
    return cin, cout, k, stride, padding, dilation, groups, draw(st.booleans()), (draw(st.integers(1, 2)), h, w)


@pytest.mark.parametrize("backend", ["numpy", "c"])
@given(config=conv_configs(), seed=st.integers(0, 2**16))
def test_random_conv2d_gradients_match_torch(backend, config, seed):
    cin, cout, k, s, p, d, g, bias, (n, h, w) = config
    layer = Conv2d(cin, cout, k, stride=s, padding=p, dilation=d, groups=g, bias=bias, dtype=np.float64)
    randomise(layer, seed)
    twin = conv_twin(layer, np.random.default_rng(seed).standard_normal((n, h, w, cin)), s, p, d, g)
    run_twin(twin, backend, np.float64, dict(rtol=1e-9, atol=1e-10), seed=seed)


@pytest.mark.parametrize("backend", ["numpy", "c"])
@given(
    kind=st.sampled_from(["max", "avg", "avg exclude pad"]),
    k=st.tuples(st.integers(1, 3), st.integers(1, 3)),
    s=st.tuples(st.integers(1, 3), st.integers(1, 3)),
    extra=st.tuples(st.integers(0, 4), st.integers(0, 4)),
    data=st.data(),
)
def test_random_pooling_gradients_match_torch(backend, kind, k, s, extra, data):
    p = (data.draw(st.integers(0, k[0] // 2)), data.draw(st.integers(0, k[1] // 2)))
    x = distinct(np.random.default_rng(sum(k + s + extra)), (2, k[0] + extra[0], k[1] + extra[1], 2))
    if kind == "max":
        layer, module = MaxPool2d(k, s, p), torch.nn.MaxPool2d(k, s, p)
    else:
        include = kind == "avg"
        layer = AvgPool2d(k, s, p, count_include_pad=include)
        module = torch.nn.AvgPool2d(k, s, p, count_include_pad=include)
    run_twin(Twin(layer, nchw(module), x), backend, np.float64, dict(rtol=1e-9, atol=1e-10))
