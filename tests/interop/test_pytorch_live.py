"""from_pytorch(live module) and to_pytorch: outputs match torch, layer by layer and for nested models."""

from __future__ import annotations

import sys
import types
from pathlib import Path

import numpy as np
import pytest

torch = pytest.importorskip("torch")
nn = torch.nn

from axiom import (  # noqa: E402
    Conv2d,
    Dense,
    DepthwiseConv2d,
    Flatten,
    GlobalAvgPool,
    LayerNorm,
    MultiHeadAttention,
    Residual,
    Sequential,
    relu,
)
from axiom.io import from_pytorch, to_pytorch  # noqa: E402
from axiom.io.pytorch_export import UnsupportedAxiomLayerError  # noqa: E402
from axiom.io.pytorch_live import UnsupportedTorchModuleError  # noqa: E402

RNG = np.random.default_rng(0)


def _randomize_norm_stats(net: nn.Module) -> nn.Module:
    """Give BatchNorm non-trivial running statistics and affine parameters."""
    g = torch.Generator().manual_seed(1)
    for m in net.modules():
        if isinstance(m, nn.BatchNorm1d | nn.BatchNorm2d):
            c = m.num_features
            m.running_mean.copy_(torch.randn(c, generator=g))
            m.running_var.copy_(torch.rand(c, generator=g) + 0.5)
            if m.affine:
                m.weight.data.copy_(torch.randn(c, generator=g))
                m.bias.data.copy_(torch.randn(c, generator=g))
        if isinstance(m, nn.LayerNorm) and m.elementwise_affine:
            m.weight.data.copy_(torch.randn(m.weight.shape, generator=g))
            if m.bias is not None:
                m.bias.data.copy_(torch.randn(m.bias.shape, generator=g))
    return net


def _torch_out(net: nn.Module, x: np.ndarray) -> np.ndarray:
    with torch.no_grad():
        out = net(torch.from_numpy(x))
    return out.numpy()


def _nhwc(a: np.ndarray) -> np.ndarray:
    return a.transpose(0, 2, 3, 1) if a.ndim == 4 else a


def _nchw(a: np.ndarray) -> np.ndarray:
    return a.transpose(0, 3, 1, 2) if a.ndim == 4 else a


def _check(net: nn.Module, x: np.ndarray, atol: float = 2e-5) -> None:
    """axiom(from_pytorch(net)) on NHWC == net on NCHW; and to_pytorch(that) == net again."""
    torch.manual_seed(0)
    net = _randomize_norm_stats(net).eval()
    expected = _torch_out(net, x)
    model = from_pytorch(net)
    ours = model(_nhwc(x)).numpy()
    np.testing.assert_allclose(_nchw(ours), expected, rtol=1e-5, atol=atol)
    back = to_pytorch(model)
    np.testing.assert_allclose(_torch_out(back, x), expected, rtol=1e-5, atol=atol)


def _img(n: int = 2, c: int = 3, h: int = 8, w: int = 8) -> np.ndarray:
    return RNG.standard_normal((n, c, h, w)).astype(np.float32)


def _vec(n: int = 3, f: int = 6) -> np.ndarray:
    return RNG.standard_normal((n, f)).astype(np.float32)


FEATURE_NETS = {
    "linear": lambda: nn.Linear(6, 4),
    "linear_nobias": lambda: nn.Sequential(nn.Linear(6, 4, bias=False)),
    "batchnorm1d": lambda: nn.Sequential(nn.Linear(6, 5), nn.BatchNorm1d(5), nn.Linear(5, 2)),
    "batchnorm1d_noaffine": lambda: nn.Sequential(nn.BatchNorm1d(6, affine=False, eps=1e-3)),
    "layernorm": lambda: nn.Sequential(nn.LayerNorm(6, eps=1e-4), nn.Linear(6, 3)),
    "layernorm_nobias": lambda: nn.Sequential(nn.LayerNorm(6, bias=False)),
    "dropout": lambda: nn.Sequential(nn.Dropout(0.3), nn.Linear(6, 3)),
    "softmax": lambda: nn.Sequential(nn.Linear(6, 4), nn.Softmax(dim=1)),
    "logsoftmax": lambda: nn.Sequential(nn.Linear(6, 4), nn.LogSoftmax(dim=-1)),
    "identity": lambda: nn.Sequential(nn.Identity(), nn.Linear(6, 2)),
}

ACTIVATIONS = {
    "relu": nn.ReLU,
    "relu6": nn.ReLU6,
    "leaky_relu": lambda: nn.LeakyReLU(0.2),
    "elu": lambda: nn.ELU(0.7),
    "selu": nn.SELU,
    "gelu": nn.GELU,
    "gelu_tanh": lambda: nn.GELU(approximate="tanh"),
    "silu": nn.SiLU,
    "mish": nn.Mish,
    "sigmoid": nn.Sigmoid,
    "tanh": nn.Tanh,
    "softplus": nn.Softplus,
    "softsign": nn.Softsign,
    "hardswish": nn.Hardswish,
    "hardsigmoid": nn.Hardsigmoid,
}

IMAGE_NETS = {
    "conv": lambda: nn.Conv2d(3, 4, 3),
    "conv_stride_pad": lambda: nn.Sequential(nn.Conv2d(3, 4, (3, 5), stride=2, padding=(1, 2))),
    "conv_same_even": lambda: nn.Sequential(nn.Conv2d(3, 4, 4, padding="same", dilation=2)),
    "conv_valid_nobias": lambda: nn.Sequential(nn.Conv2d(3, 6, 3, padding="valid", bias=False)),
    "conv_groups": lambda: nn.Sequential(nn.Conv2d(4, 6, 3, groups=2, padding=1)),
    "conv_depthwise": lambda: nn.Sequential(nn.Conv2d(4, 8, 3, groups=4)),
    "batchnorm2d": lambda: nn.Sequential(nn.Conv2d(3, 4, 3), nn.BatchNorm2d(4), nn.ReLU()),
    "maxpool": lambda: nn.Sequential(nn.MaxPool2d(3, stride=2, padding=1, dilation=1)),
    "maxpool_dilated": lambda: nn.Sequential(nn.MaxPool2d(2, stride=1, dilation=2)),
    "avgpool": lambda: nn.Sequential(nn.AvgPool2d(2)),
    "avgpool_pad": lambda: nn.Sequential(nn.AvgPool2d(3, stride=2, padding=1, count_include_pad=False)),
    "global_pool_end": lambda: nn.Sequential(nn.Conv2d(3, 4, 3), nn.AdaptiveAvgPool2d(1)),
    "global_pool_flatten_linear": lambda: nn.Sequential(
        nn.Conv2d(3, 4, 3), nn.AdaptiveAvgPool2d((1, 1)), nn.Flatten(), nn.Linear(4, 2)
    ),
    "global_pool_then_conv": lambda: nn.Sequential(nn.Conv2d(3, 4, 3), nn.AdaptiveAvgPool2d(1), nn.Conv2d(4, 2, 1)),
    "softmax_channels": lambda: nn.Sequential(nn.Conv2d(3, 4, 3), nn.Softmax(dim=1)),
    "logsoftmax_width": lambda: nn.Sequential(nn.Conv2d(3, 4, 3), nn.LogSoftmax(dim=-1)),
    "flatten_linear": lambda: nn.Sequential(nn.Conv2d(3, 4, 3), nn.Flatten(), nn.Linear(4 * 6 * 6, 5)),
    "flatten_relu_dropout_linear": lambda: nn.Sequential(
        nn.Conv2d(3, 4, 3, stride=2), nn.Flatten(), nn.ReLU(), nn.Dropout(0.1), nn.Linear(4 * 3 * 3, 5)
    ),
    "flatten_end": lambda: nn.Sequential(nn.Conv2d(3, 4, 3), nn.Flatten()),
    "flatten_softmax": lambda: nn.Sequential(nn.Conv2d(3, 2, 3), nn.Flatten(), nn.Softmax(dim=1)),
    "pool_flatten_linear": lambda: nn.Sequential(nn.MaxPool2d(2), nn.Flatten(), nn.Linear(3 * 4 * 4, 2)),
}


@pytest.mark.parametrize("name", sorted(FEATURE_NETS))
def test_feature_layers_match_torch(name: str) -> None:
    _check(FEATURE_NETS[name](), _vec())


@pytest.mark.parametrize("name", sorted(ACTIVATIONS))
def test_activations_match_torch(name: str) -> None:
    x = RNG.standard_normal((4, 6)).astype(np.float32) * 4
    _check(nn.Sequential(nn.Linear(6, 6), ACTIVATIONS[name]()), x)


@pytest.mark.parametrize("name", sorted(IMAGE_NETS))
def test_image_layers_match_torch(name: str) -> None:
    x = _img(c=4) if name in ("conv_groups", "conv_depthwise") else _img()
    _check(IMAGE_NETS[name](), x)


def test_nested_containers_match_torch() -> None:
    features = nn.Sequential(
        nn.Sequential(nn.Conv2d(3, 8, 3, padding=1), nn.BatchNorm2d(8), nn.ReLU()),
        nn.MaxPool2d(2),
        nn.Sequential(nn.Conv2d(8, 6, 3, padding=1), nn.GELU(), nn.AvgPool2d(2)),
    )
    classifier = nn.Sequential(nn.Flatten(), nn.Sequential(nn.Linear(6 * 2 * 2, 10), nn.Tanh()), nn.Linear(10, 3))
    net = nn.Sequential(features, classifier, nn.LogSoftmax(dim=1))
    _check(net, _img())
    assert len(from_pytorch(net)) == 12  # every leaf kept, in order


def test_sequential_subclass_without_own_forward() -> None:
    class Block(nn.Sequential):
        pass

    _check(nn.Sequential(Block(nn.Linear(6, 4), nn.ReLU()), nn.Linear(4, 2)), _vec())


def test_float64_model_stays_float64() -> None:
    net = nn.Sequential(nn.Conv2d(3, 4, 3), nn.Flatten(), nn.Linear(4 * 6 * 6, 2)).double().eval()
    x = _img().astype(np.float64)
    model = from_pytorch(net)
    assert model[0].weight.dtype == np.float64
    np.testing.assert_allclose(model(_nhwc(x)).numpy(), _torch_out(net, x), rtol=1e-12, atol=1e-12)
    back = to_pytorch(model)
    assert back[0].weight.dtype == torch.float64
    np.testing.assert_allclose(_torch_out(back, x), _torch_out(net, x), rtol=1e-12, atol=1e-12)


@pytest.mark.parametrize("batch_first", [True, False])
def test_multihead_attention_matches_torch(batch_first: bool) -> None:
    torch.manual_seed(0)
    mha = nn.MultiheadAttention(8, 2, batch_first=batch_first).eval()
    with torch.no_grad():
        mha.in_proj_bias.uniform_(-0.5, 0.5)
        mha.out_proj.bias.uniform_(-0.5, 0.5)
    x = RNG.standard_normal((2, 5, 8)).astype(np.float32)  # (batch, seq, E)
    xt = torch.from_numpy(x if batch_first else x.transpose(1, 0, 2).copy())
    with torch.no_grad():
        expected = mha(xt, xt, xt)[0].numpy()
    if not batch_first:
        expected = expected.transpose(1, 0, 2)
    model = from_pytorch(mha)
    assert isinstance(model, MultiHeadAttention)
    np.testing.assert_allclose(model(x).numpy(), expected, rtol=1e-5, atol=1e-5)
    back = to_pytorch(model)
    with torch.no_grad():
        again = back(torch.from_numpy(x), torch.from_numpy(x), torch.from_numpy(x))[0].numpy()
    np.testing.assert_allclose(again, expected, rtol=1e-5, atol=1e-5)  # batch-first torch module


def test_embedding_then_layernorm_matches_torch() -> None:
    net = nn.Sequential(nn.Embedding(10, 6, padding_idx=0), nn.LayerNorm(6), nn.GELU()).eval()
    idx = RNG.integers(0, 10, size=(3, 5))
    expected = _torch_out(net, idx)
    model = from_pytorch(net)
    np.testing.assert_allclose(model(idx).numpy(), expected, rtol=1e-5, atol=1e-5)
    assert model[0].padding_idx == 0
    np.testing.assert_allclose(_torch_out(to_pytorch(model), idx), expected, rtol=1e-5, atol=1e-5)


def test_train_eval_mode_is_mirrored() -> None:
    net = nn.Sequential(nn.Linear(6, 4), nn.BatchNorm1d(4))
    assert from_pytorch(net.train()).training is True
    assert from_pytorch(net.eval())[1].training is False
    x = _vec(8)
    train_net = nn.Sequential(nn.Linear(6, 4), nn.BatchNorm1d(4)).train()
    model = from_pytorch(train_net)
    expected = _torch_out(train_net, x)  # batch statistics, running stats updated
    np.testing.assert_allclose(model(x).numpy(), expected, rtol=1e-5, atol=1e-5)
    np.testing.assert_allclose(model[1].running_mean.numpy(), train_net[1].running_mean.numpy(), atol=1e-6)
    assert to_pytorch(model).training is True


# -- to_pytorch on models written in axiom ---------------------------------------------------


def _check_axiom(model: Sequential, x_nhwc: np.ndarray) -> None:
    net = to_pytorch(model)
    expected = model(x_nhwc).numpy()
    np.testing.assert_allclose(_nhwc(_torch_out(net, _nchw(x_nhwc))), expected, rtol=1e-5, atol=2e-5)


def test_to_pytorch_fused_activations_and_depthwise() -> None:
    model = Sequential(
        Conv2d(3, 4, 3, activation="relu"),
        DepthwiseConv2d(3, depth_multiplier=2, padding=1),
        Flatten(),
        Dense(8 * 6 * 6, 5, relu),
        Dense(5, 2),
        input_shape=(None, 8, 8, 3),
    )
    _check_axiom(model, _nhwc(_img()))
    kinds = [type(m).__name__ for m in to_pytorch(model)]
    assert kinds == ["Conv2d", "ReLU", "Conv2d", "Flatten", "Linear", "ReLU", "Linear"]


def test_to_pytorch_asymmetric_same_padding_and_image_output() -> None:
    model = Sequential(
        Conv2d(3, 4, 4, stride=2, padding="same"),
        Conv2d(4, 2, 2, padding=((0, 1), (1, 0))),
        input_shape=(None, 9, 7, 3),
    )
    _check_axiom(model, _nhwc(_img(h=9, w=7)))


def test_to_pytorch_global_pool_and_flatten_without_dense() -> None:
    _check_axiom(Sequential(Conv2d(3, 4, 3), GlobalAvgPool(), Dense(4, 2)), _nhwc(_img()))
    _check_axiom(Sequential(Conv2d(3, 4, 3), GlobalAvgPool()), _nhwc(_img()))
    _check_axiom(Sequential(Conv2d(3, 2, 3), Flatten(), input_shape=(None, 8, 8, 3)), _nhwc(_img()))


# -- errors ------------------------------------------------------------------------------------


def test_unsupported_layer_is_named_with_position() -> None:
    net = nn.Sequential(
        nn.Sequential(nn.Conv2d(3, 4, 3), nn.ReLU()), nn.Sequential(nn.Upsample(scale_factor=2), nn.ReLU())
    )
    with pytest.raises(UnsupportedTorchModuleError) as err:
        from_pytorch(net)
    msg = str(err.value)
    assert msg.startswith("layer 3 (1.0: torch.nn.Upsample) is not supported; supported: ")
    assert "Conv2d" in msg and "MultiheadAttention" in msg


def test_custom_module_with_forward_is_rejected() -> None:
    class Block(nn.Module):
        def __init__(self) -> None:
            super().__init__()
            self.fc = nn.Linear(4, 4)

        def forward(self, x: torch.Tensor) -> torch.Tensor:
            return x + self.fc(x)

    with pytest.raises(UnsupportedTorchModuleError, match=r"layer 2 \(1: .*Block\) is a custom module"):
        from_pytorch(nn.Sequential(nn.Linear(4, 4), Block()))

    class Odd(nn.Sequential):
        def forward(self, x: torch.Tensor) -> torch.Tensor:
            return super().forward(x) * 2

    with pytest.raises(UnsupportedTorchModuleError, match="overrides forward"):
        from_pytorch(nn.Sequential(Odd(nn.Linear(2, 2))))


@pytest.mark.parametrize(
    ("module", "fragment"),
    [
        (nn.MaxPool2d(2, ceil_mode=True), "ceil_mode=True"),
        (nn.AdaptiveAvgPool2d(3), "output_size=3"),
        (nn.Conv2d(3, 3, 3, padding=1, padding_mode="reflect"), "padding_mode='reflect'"),
        (nn.Flatten(start_dim=2), "start_dim=2"),
        (nn.Softplus(beta=2.0), "beta=2.0"),
        (nn.Embedding(4, 2, max_norm=1.0), "max_norm=1.0"),
        (nn.ModuleList([nn.ReLU()]), "ModuleList"),
    ],
)
def test_unsupported_options_are_reported(module: nn.Module, fragment: str) -> None:
    with pytest.raises(UnsupportedTorchModuleError, match="layer 2 ") as err:
        from_pytorch(nn.Sequential(nn.Identity(), module))
    assert fragment in str(err.value)


def test_linear_on_an_image_is_rejected() -> None:
    with pytest.raises(UnsupportedTorchModuleError, match="put a Flatten before it"):
        from_pytorch(nn.Sequential(nn.Conv2d(3, 4, 3), nn.Linear(6, 2)))


def test_layout_dependent_layers_after_an_embedding_are_rejected() -> None:
    with pytest.raises(UnsupportedTorchModuleError, match=r"layer 2 \(1: torch.nn.BatchNorm1d\) on \(N, L, E\)"):
        from_pytorch(nn.Sequential(nn.Embedding(5, 4), nn.BatchNorm1d(4)))
    with pytest.raises(UnsupportedTorchModuleError, match="axiom's Dense takes"):
        from_pytorch(nn.Sequential(nn.Embedding(5, 4), nn.Linear(4, 2)))
    with pytest.raises(UnsupportedTorchModuleError, match="follows an Embedding"):
        from_pytorch(nn.Sequential(nn.Embedding(5, 4), nn.Conv2d(4, 2, 1)))


def test_to_pytorch_unsupported_layers() -> None:
    with pytest.raises(UnsupportedAxiomLayerError, match=r"layer 2 \(1: Residual\) is not supported"):
        to_pytorch(Sequential(Dense(2, 2), Residual(Dense(2, 2))))
    with pytest.raises(UnsupportedAxiomLayerError, match="convert the attention layer on its own"):
        to_pytorch(Sequential(MultiHeadAttention(4, 2), LayerNorm(4)))
    with pytest.raises(UnsupportedAxiomLayerError, match="causal=True"):
        to_pytorch(MultiHeadAttention(4, 2, causal=True))
    with pytest.raises(TypeError, match="axiom Layer"):
        to_pytorch(nn.Linear(2, 2))


def test_from_pytorch_dispatch(monkeypatch: pytest.MonkeyPatch) -> None:
    with pytest.raises(TypeError, match="torch.nn.Module or a checkpoint path"):
        from_pytorch(3.5)
    with pytest.raises(ValueError, match="architecture applies to checkpoint paths"):
        from_pytorch(nn.Linear(2, 2), architecture={})
    calls = []
    fake = types.ModuleType("axiom.io.pytorch_ckpt")
    fake.load_checkpoint = lambda path, architecture=None: calls.append((path, architecture)) or "loaded"
    monkeypatch.setitem(sys.modules, "axiom.io.pytorch_ckpt", fake)
    arch = Sequential(Dense(2, 2, relu))
    assert from_pytorch("model.pt", arch) == "loaded"
    assert calls == [("model.pt", arch)]


def test_from_pytorch_path_reads_a_saved_state_dict(tmp_path: Path) -> None:
    """The path branch really goes through the safe checkpoint loader (no monkeypatching)."""
    torch.manual_seed(3)
    net = nn.Sequential(nn.Linear(4, 3), nn.ReLU(), nn.Linear(3, 2)).eval()
    path = tmp_path / "net.pt"
    torch.save(net.state_dict(), path)
    architecture = from_pytorch(nn.Sequential(nn.Linear(4, 3), nn.ReLU(), nn.Linear(3, 2)).eval())
    model = from_pytorch(path, architecture)
    x = _vec(f=4)
    np.testing.assert_allclose(model(x).numpy(), _torch_out(net, x), rtol=1e-5, atol=1e-6)


def test_input_shape_gives_concrete_nhwc_shapes() -> None:
    net = nn.Sequential(nn.Conv2d(3, 4, 3), nn.MaxPool2d(2), nn.Flatten(), nn.Linear(4 * 3 * 3, 2)).eval()
    model = from_pytorch(net, input_shape=(None, 3, 8, 8))
    assert model.input_shape == ("batch", 8, 8, 3)
    assert model.output_shape(model.input_shape) == ("batch", 2)
    x = _img()
    np.testing.assert_allclose(model(_nhwc(x)).numpy(), _torch_out(net, x), rtol=1e-5, atol=2e-5)
    with pytest.raises(ValueError, match="input_shape applies to live torch modules"):
        from_pytorch("model.pt", input_shape=(None, 3))


@pytest.mark.filterwarnings("ignore::DeprecationWarning")
def test_torchscript_module_is_refused_with_a_pointer() -> None:
    scripted = torch.jit.script(nn.Sequential(nn.Linear(2, 2), nn.ReLU()))
    with pytest.raises(UnsupportedTorchModuleError, match="TorchScript module; convert the original"):
        from_pytorch(scripted)
