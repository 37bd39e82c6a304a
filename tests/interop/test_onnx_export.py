"""to_onnx: every layer type, opsets 17-20, dynamic batch, names, checker, onnxruntime and from_onnx round trips."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np
import onnx
import onnxruntime as ort
import pytest
from onnx.reference import ReferenceEvaluator

from axiom import (
    AvgPool2d,
    BatchNorm,
    Concat,
    Conv2d,
    Dense,
    DepthwiseConv2d,
    Dropout,
    Embedding,
    Flatten,
    GlobalAvgPool,
    Layer,
    LayerNorm,
    LogSoftmax,
    MaxPool2d,
    MultiHeadAttention,
    Parallel,
    Permute,
    ReLU,
    Reshape,
    Residual,
    RMSNorm,
    Sequential,
    ShapeError,
    Softmax,
    Tensor,
    manual_seed,
)
from axiom.backends.base import ACTIVATIONS
from axiom.io import UnsupportedOnnxError, from_onnx
from axiom.io.onnx_export import SUPPORTED_OPSETS, UnsupportedLayerError, to_onnx
from axiom.nn import Activation, Affine

OPSETS = list(SUPPORTED_OPSETS)
RTOL, ATOL = 1e-5, 1e-5  # float32: onnxruntime and axiom differ by rounding only (observed <= 3e-7)


@pytest.fixture(autouse=True)
def _seeded() -> None:
    """Layer initialisation draws from axiom's global generator: every test starts from the same state."""
    manual_seed(0)


def _rng(seed: int = 0) -> np.random.Generator:
    return np.random.default_rng(seed)


def _randomize(model: Layer, seed: int = 1) -> Layer:
    """Non-trivial parameters and BatchNorm statistics (defaults are ones/zeros)."""
    rng = _rng(seed)
    for layer in model.modules():
        if isinstance(layer, BatchNorm) and layer.running_mean is not None:
            c = layer.running_mean.shape[0]
            layer.running_mean.data = rng.normal(size=c).astype(layer.running_mean.dtype)
            layer.running_var.data = rng.uniform(0.5, 2.0, size=c).astype(layer.running_var.dtype)
        if isinstance(layer, LayerNorm | RMSNorm | BatchNorm):
            for p in (layer.weight, getattr(layer, "bias", None)):
                if p is not None:
                    p.data = rng.normal(size=p.shape).astype(p.dtype)
    return model


def _export(
    model: Layer, tmp_path: Path, example: tuple[int, ...], opset: int = 17, **kwargs: Any
) -> tuple[Path, onnx.ModelProto]:
    path = tmp_path / f"model_{opset}.onnx"
    proto = to_onnx(model, path, input_shape=(None, *example), opset=opset, **kwargs)
    loaded = onnx.load(str(path))
    onnx.checker.check_model(loaded, full_check=True)
    assert [o.version for o in loaded.opset_import if o.domain in ("", "ai.onnx")] == [opset]
    assert loaded.SerializeToString() == proto.SerializeToString()
    return path, loaded


def _session(path: Path) -> ort.InferenceSession:
    options = ort.SessionOptions()
    options.log_severity_level = 3
    return ort.InferenceSession(str(path), options, providers=["CPUExecutionProvider"])


def check(
    model: Layer,
    tmp_path: Path,
    example: tuple[int, ...],
    *,
    opset: int = 17,
    round_trip: bool = True,
    make_input: Any = None,
    **kwargs: Any,
) -> onnx.ModelProto:
    """Export; check names and the dynamic batch axis; onnxruntime == axiom at batch 1 and 5; round trip."""
    path, proto = _export(model, tmp_path, example, opset, **kwargs)
    in_name, out_name = kwargs.get("input_name", "input"), kwargs.get("output_name", "output")
    (inp,), (out,) = proto.graph.input, proto.graph.output
    assert (inp.name, out.name) == (in_name, out_name)
    assert inp.type.tensor_type.shape.dim[0].dim_param == "batch"
    assert out.type.tensor_type.shape.dim[0].dim_param == "batch"
    assert [d.dim_value for d in inp.type.tensor_type.shape.dim[1:]] == list(example)
    sess = _session(path)
    assert [i.name for i in sess.get_inputs()] == [in_name] and [o.name for o in sess.get_outputs()] == [out_name]
    imported = None
    if round_trip:
        imported = from_onnx(path)
        assert imported.input_shape == example
    for batch in (1, 5):
        x = make_input(batch) if make_input else _rng(batch).normal(size=(batch, *example)).astype(np.float32)
        expected = model(x).numpy()
        (got,) = sess.run([out_name], {in_name: x})
        assert got.shape == expected.shape
        np.testing.assert_allclose(got, expected, rtol=RTOL, atol=ATOL)
        if imported is not None:
            np.testing.assert_allclose(imported(x), expected, rtol=RTOL, atol=ATOL)
    return proto


def _ops(proto: onnx.ModelProto) -> list[str]:
    return [n.op_type for n in proto.graph.node]


# -- dense, activations -------------------------------------------------------------------------------------
@pytest.mark.parametrize("opset", OPSETS)
def test_mlp_every_opset(opset: int, tmp_path: Path) -> None:
    model = Sequential(Dense(6, 8, "relu"), Dense(8, 8, "tanh"), Dense(8, 3, bias=False), Softmax())
    proto = check(model, tmp_path, (6,), opset=opset)
    assert _ops(proto) == ["Gemm", "Relu", "Gemm", "Tanh", "Gemm", "Softmax"]
    assert [t.name for t in proto.graph.initializer] == ["0.weight", "0.bias", "1.weight", "1.bias", "2.weight"]


#: Activations the importer maps back onto one layer (per opset: Mish is one operator from 18, Gelu from 20).
def _round_trips(kind: str, opset: int) -> bool:
    if kind in ("gelu", "gelu_tanh"):
        return opset >= 20
    if kind == "mish":
        return opset >= 18
    return kind != "silu"  # silu = x * sigmoid(x): two computed operands, not a chain


@pytest.mark.parametrize("opset", OPSETS)
@pytest.mark.parametrize("kind", ACTIVATIONS)
def test_every_activation(kind: str, opset: int, tmp_path: Path) -> None:
    assert len(ACTIVATIONS) == 16
    x = np.linspace(-7.0, 7.0, 5 * 12, dtype=np.float32).reshape(5, 12)
    # as a layer, on the input range [-7, 7]
    layer = Sequential(Activation(kind))
    check(layer, tmp_path, (12,), opset=opset, round_trip=_round_trips(kind, opset), make_input=lambda b: x[:b])
    # as the activation argument of Dense and Conv2d
    check(Sequential(Dense(12, 12, kind)), tmp_path, (12,), opset=opset, round_trip=_round_trips(kind, opset))
    conv = Sequential(Conv2d(2, 3, 2, activation=kind), input_shape=(None, 3, 3, 2))
    check(conv, tmp_path, (3, 3, 2), opset=opset, round_trip=_round_trips(kind, opset))


def test_activation_ops_by_opset(tmp_path: Path) -> None:
    m = Sequential(Activation("gelu"), Activation("gelu_tanh"), Activation("mish"))
    assert "Gelu" not in _ops(to_onnx(m, input_shape=(None, 3), opset=19))
    assert "Erf" in _ops(to_onnx(m, input_shape=(None, 3), opset=17))
    assert _ops(to_onnx(m, input_shape=(None, 3), opset=20)) == ["Gelu", "Gelu", "Mish"]
    g20 = to_onnx(m, input_shape=(None, 3), opset=20).graph.node[1]
    assert onnx.helper.get_attribute_value(g20.attribute[0]) == b"tanh"


@pytest.mark.parametrize("layer", [Softmax(axis=1), LogSoftmax(), LogSoftmax(axis=-2)])
def test_softmax_axes(layer: Layer, tmp_path: Path) -> None:
    check(Sequential(Reshape((3, 4)), layer), tmp_path, (12,))


# -- convolutions, pooling, batchnorm --------------------------------------------------------------------
CONVS = [
    Conv2d(3, 4, 3),
    Conv2d(3, 6, (3, 2), stride=2, padding=1),
    Conv2d(3, 4, 3, stride=(2, 1), padding="same", activation="relu"),
    Conv2d(3, 4, 3, padding=((0, 2), (1, 0)), dilation=2),
    Conv2d(3, 6, 3, padding=2, dilation=(2, 1), groups=3, bias=False),
    Conv2d(3, 3, 1, groups=3),
    DepthwiseConv2d(3, padding="same"),
    DepthwiseConv2d((3, 1), stride=2, depth_multiplier=2, activation="relu6"),
]


@pytest.mark.parametrize("conv", CONVS, ids=repr)
def test_conv2d_variants(conv: Conv2d, tmp_path: Path) -> None:
    model = Sequential(conv, input_shape=(None, 9, 8, 3))
    proto = check(model, tmp_path, (9, 8, 3))
    assert "Conv" in _ops(proto)


@pytest.mark.parametrize("opset", OPSETS)
def test_cnn_every_opset(opset: int, tmp_path: Path) -> None:
    model = Sequential(
        Conv2d(2, 4, 3, padding=1, activation="relu"),
        BatchNorm(),
        MaxPool2d(3, stride=1, padding=1),
        MaxPool2d(2, dilation=2),
        Conv2d(4, 4, 3, padding="same", groups=2),
        AvgPool2d(2, padding=1, count_include_pad=False),
        AvgPool2d(2, stride=1, padding=1),
        Dropout(0.2),
        GlobalAvgPool(),
        Dense(4, 3),
        LogSoftmax(),
        input_shape=(None, 10, 10, 2),
    )
    proto = check(_randomize(model), tmp_path, (10, 10, 2), opset=opset)
    ops = _ops(proto)
    assert ops.count("Transpose") == 1  # into NCHW once; GlobalAveragePool + Flatten leave (batch, C)
    assert {"BatchNormalization", "MaxPool", "AveragePool", "GlobalAveragePool", "Dropout"} <= set(ops)


@pytest.mark.parametrize("example", [(5,), (4, 5), (3, 4, 5)])
def test_batchnorm_any_rank(example: tuple[int, ...], tmp_path: Path) -> None:
    check(_randomize(Sequential(BatchNorm(5, eps=1e-3))), tmp_path, example)


def test_layout_tracking_softmax_on_channels(tmp_path: Path) -> None:
    """A Softmax over NHWC channels runs on the NCHW tensor with the axis moved, then Flatten in NHWC order."""
    model = Sequential(
        Conv2d(2, 3, 3), ReLU(), Softmax(axis=-1), Softmax(axis=1), Flatten(), input_shape=(None, 5, 6, 2)
    )
    proto = check(model, tmp_path, (5, 6, 2))
    assert _ops(proto) == ["Transpose", "Conv", "Relu", "Softmax", "Softmax", "Transpose", "Flatten"]
    assert [a.i for n in proto.graph.node if n.op_type == "Softmax" for a in n.attribute] == [1, 2]


# -- normalisation, shapes, dropout ---------------------------------------------------------------------------
@pytest.mark.parametrize("opset", OPSETS)
def test_layernorm_rmsnorm(opset: int, tmp_path: Path) -> None:
    ln = Sequential(
        LayerNorm(6),
        LayerNorm((4, 6), eps=1e-3, elementwise_affine=False),
        LayerNorm(6, bias=False),
        input_shape=(None, 4, 6),
    )
    check(_randomize(ln), tmp_path, (4, 6), opset=opset)
    rms = Sequential(
        RMSNorm(6), RMSNorm((4, 6), eps=1e-2), RMSNorm(6, elementwise_affine=False), input_shape=(None, 4, 6)
    )
    proto = check(_randomize(rms), tmp_path, (4, 6), opset=opset)
    assert "RMSNormalization" not in _ops(proto) and "ReduceMean" in _ops(proto)


def test_shapes_and_dropout(tmp_path: Path) -> None:
    model = Sequential(
        Dense(12, 12),
        Dropout(0.5),
        Reshape((3, 4)),
        Permute((1, 0)),
        Reshape((-1, 2, 3)),
        Permute((2, 0, 1)),
        Flatten(),
    )
    proto = check(model, tmp_path, (12,))
    assert "Dropout" in _ops(proto)
    image = Sequential(Reshape((4, 3, 1)), Conv2d(1, 2, 2), Permute((2, 0, 1)), Flatten(), input_shape=(None, 12))
    check(image, tmp_path, (12,))


def test_affine(tmp_path: Path) -> None:
    model = Sequential(
        Affine(scale=np.array([1.0, 2.0, 0.5], np.float32), shift=np.float32(-1.0)),
        Conv2d(3, 2, 1),
        Affine(shift=0.5),
        input_shape=(None, 4, 4, 3),
    )
    check(model, tmp_path, (4, 4, 3))


# -- containers --------------------------------------------------------------------------------------------------
def test_residual_and_nested_sequential(tmp_path: Path) -> None:
    model = Sequential(
        Dense(6, 6),
        Residual(Dense(6, 6, "tanh"), Sequential(Dense(6, 6), Sequential(ReLU(), Dense(6, 6)))),
        Sequential(Residual(Dense(6, 6))),
    )
    proto = check(model, tmp_path, (6,))
    assert _ops(proto).count("Add") == 2


def test_residual_in_channels_first_layout(tmp_path: Path) -> None:
    model = Sequential(
        Conv2d(2, 3, 3, padding=1),
        Residual(Conv2d(3, 3, 3, padding=1), BatchNorm(), ReLU()),
        Residual(Flatten(), Reshape((5, 5, 3))),  # the branch leaves NCHW: one Transpose back before the Add
        GlobalAvgPool(),
        input_shape=(None, 5, 5, 2),
    )
    check(_randomize(model), tmp_path, (5, 5, 2))


def test_parallel_concat(tmp_path: Path) -> None:
    mlp = Sequential(Dense(4, 4), Parallel(Dense(4, 2), Sequential(Dense(4, 3), ReLU())), Dense(5, 2))
    proto = check(mlp, tmp_path, (4,))
    assert "Concat" in _ops(proto)
    cnn = Sequential(Conv2d(2, 3, 3), Concat(Conv2d(3, 2, 1), MaxPool2d(1)), Concat(ReLU(), Softmax(), axis=1))
    check(Sequential(cnn, input_shape=(None, 6, 5, 2)), tmp_path, (6, 5, 2))


# -- attention, embedding --------------------------------------------------------------------------------------------
@pytest.mark.parametrize("opset", [17, 20])
@pytest.mark.parametrize(
    "kwargs",
    [{}, {"causal": True}, {"rope": True}, {"causal": True, "rope": True, "rope_base": 100.0}, {"bias": False}],
)
def test_multi_head_attention(kwargs: dict, opset: int, tmp_path: Path) -> None:
    mha = MultiHeadAttention(8, 2, **kwargs)
    for proj in (mha.q_proj, mha.k_proj, mha.v_proj, mha.out_proj):  # non-zero biases
        if proj.bias is not None:
            proj.bias.data = _rng(3).normal(size=8).astype(np.float32)
    model = Sequential(LayerNorm(8), Residual(mha), LayerNorm(8), input_shape=(None, 5, 8))
    proto = check(model, tmp_path, (5, 8), opset=opset)
    assert ("Slice" in _ops(proto)) == bool(kwargs.get("rope"))


@pytest.mark.parametrize("input_dtype", [None, np.int32])
def test_embedding_gather(input_dtype: Any, tmp_path: Path) -> None:
    model = Sequential(Embedding(11, 4, padding_idx=0), LayerNorm(4), Flatten(), Dense(12, 3))
    dt = np.int64 if input_dtype is None else input_dtype
    proto = check(
        model,
        tmp_path,
        (3,),
        make_input=lambda b: _rng(b).integers(0, 11, size=(b, 3)).astype(dt),
        input_dtype=input_dtype,
    )
    assert _ops(proto)[0] == "Gather"
    assert proto.graph.input[0].type.tensor_type.elem_type == (onnx.TensorProto.INT64 if input_dtype is None else 6)


# -- names, batch, dtypes ----------------------------------------------------------------------------------------------
def test_names_and_fixed_batch(tmp_path: Path) -> None:
    model = Sequential(Dense(3, 2), Softmax())
    check(model, tmp_path, (3,), input_name="pixels", output_name="probs")
    proto = to_onnx(model, tmp_path / "fixed.onnx", input_shape=(4, 3), dynamic_batch=False)
    dims = [[d.dim_value for d in v.type.tensor_type.shape.dim] for v in (*proto.graph.input, *proto.graph.output)]
    assert dims == [[4, 3], [4, 2]]
    x = _rng().normal(size=(4, 3)).astype(np.float32)
    np.testing.assert_allclose(
        _session(tmp_path / "fixed.onnx").run(None, {"input": x})[0], model(x).numpy(), atol=ATOL
    )
    with pytest.raises(Exception, match="input"):
        _session(tmp_path / "fixed.onnx").run(None, {"input": x[:2]})


def test_default_input_shape_and_identity_model(tmp_path: Path) -> None:
    proto = to_onnx(Sequential(Dense(7, 2)))
    assert [d.dim_param or d.dim_value for d in proto.graph.input[0].type.tensor_type.shape.dim] == ["batch", 7]
    proto = check(Sequential(Permute((0,))), tmp_path, (3,))
    assert _ops(proto) == ["Transpose"]


def test_float64_model(tmp_path: Path) -> None:
    model = Sequential(Dense(6, 6, "gelu_tanh"), LayerNorm(6), RMSNorm(6), Residual(Dense(6, 6, "silu")), Dense(6, 3))
    model.to("float64")
    path, proto = _export(_randomize(model), tmp_path, (6,))
    assert proto.graph.input[0].type.tensor_type.elem_type == onnx.TensorProto.DOUBLE
    x = _rng().normal(size=(5, 6))
    (got,) = _session(path).run(None, {"input": x})
    assert got.dtype == np.float64
    np.testing.assert_allclose(got, model(x).numpy(), rtol=1e-9, atol=1e-10)  # float64 rounding, not float32's
    # onnxruntime's CPU provider has no double Conv/AveragePool/Erf kernels; onnx's reference evaluator checks those
    cnn = Sequential(
        Conv2d(2, 3, 3, padding=1, activation="gelu"), AvgPool2d(2), GlobalAvgPool(), input_shape=(None, 4, 4, 2)
    )
    cnn.to("float64")
    proto = to_onnx(cnn, tmp_path / "cnn64.onnx", input_shape=(None, 4, 4, 2))
    x = _rng().normal(size=(2, 4, 4, 2))
    (got,) = ReferenceEvaluator(proto).run(None, {"input": x})
    np.testing.assert_allclose(got, cnn(x).numpy(), rtol=1e-7, atol=1e-9)  # axiom's and onnx's erf differ ~1e-9


def test_float64_round_trip(tmp_path: Path) -> None:
    model = Sequential(Conv2d(2, 3, 3, activation="relu"), Flatten(), Dense(12, 2), input_shape=(None, 4, 4, 2))
    model.to("float64")
    path, _ = _export(model, tmp_path, (4, 4, 2))
    net = from_onnx(path)
    x = _rng().normal(size=(3, 4, 4, 2))
    assert net.dtype == np.float64
    np.testing.assert_allclose(net(x), model(x).numpy(), rtol=1e-12, atol=1e-12)


def test_unsupported_dtype_is_a_clear_error() -> None:
    with pytest.raises(ValueError, match=r"float32 and float64 models; this model's parameters are float16"):
        to_onnx(Sequential(Dense(2, 2)).to("float16"))


# -- errors ---------------------------------------------------------------------------------------------
class Twice(Layer):
    """A custom layer with no ONNX mapping.

    >>> Twice()(np.ones((1, 2), np.float32)).shape
    (1, 2)
    """

    def forward(self, x: Tensor) -> Tensor:
        return x * 2


def test_unsupported_layers_named_by_position() -> None:
    model = Sequential(Dense(4, 4), Residual(Dense(4, 4), Twice()), Parallel(ReLU(), Twice()))
    with pytest.raises(UnsupportedLayerError) as info:
        to_onnx(model, input_shape=(None, 4))
    assert [(p, n) for p, n, _ in info.value.layers] == [("1.1", "Twice"), ("2.1", "Twice")]
    assert "cannot export 2 layers: layer '1.1' (Twice): no ONNX mapping for Twice" in str(info.value)
    with pytest.raises(UnsupportedLayerError, match=r"the model \(Twice\)"):
        to_onnx(Twice(), input_shape=(None, 4))


def test_batchnorm_without_running_stats_is_refused(tmp_path: Path) -> None:
    model = Sequential(Dense(3, 3), Sequential(ReLU(), BatchNorm(3, track_running_stats=False)))
    with pytest.raises(UnsupportedLayerError, match=r"layer '1.1' \(BatchNorm\): .*track_running_stats=False"):
        to_onnx(model, tmp_path / "bn.onnx")
    assert not (tmp_path / "bn.onnx").exists()


@pytest.mark.parametrize(
    ("kwargs", "error", "match"),
    [
        ({"opset": 16}, ValueError, r"opset must be one of \[17, 18, 19, 20\], got 16"),
        ({"opset": 23}, ValueError, "opset must be one of"),
        ({"input_shape": (None, 5)}, ShapeError, r"Dense"),
        ({"input_shape": (None, "seq")}, ValueError, r"axis 1 = 'seq'; every axis but the batch axis"),
        ({"input_shape": (None, 4), "dynamic_batch": False}, ValueError, "needs a fixed batch size"),
        ({"input_name": ""}, ValueError, "input_name must be a non-empty string"),
        ({"input_name": "x", "output_name": "x"}, ValueError, "must differ"),
        ({"input_dtype": np.float64}, ValueError, "differs from the model's dtype float32"),
    ],
)
def test_bad_arguments(kwargs: dict, error: type, match: str) -> None:
    with pytest.raises(error, match=match):
        to_onnx(Sequential(Dense(4, 2)), **kwargs)


def test_not_a_layer() -> None:
    with pytest.raises(TypeError, match="expects an axiom Layer"):
        to_onnx(lambda x: x)  # type: ignore[arg-type]


def test_lazy_model_is_built_by_input_shape(tmp_path: Path) -> None:
    model = Sequential(Conv2d(4, 3, padding="same"), Flatten(), Dense(2), input_shape=(None, 4, 4, 1))
    check(model, tmp_path, (4, 4, 1))


# -- the importer's additions used by the round trips ----------------------------------------------
def _single_node_model(node: onnx.NodeProto, shape: list[Any], opset: int, inits: list[Any] = ()) -> onnx.ModelProto:
    h = onnx.helper
    graph = h.make_graph(
        [node],
        "g",
        [h.make_tensor_value_info("x", onnx.TensorProto.FLOAT, shape)],
        [h.make_tensor_value_info("y", onnx.TensorProto.FLOAT, shape)],
        list(inits),
    )
    return h.make_model(graph, opset_imports=[h.make_opsetid("", opset)])


def test_import_layernormalization_over_two_axes() -> None:
    rng = _rng(4)
    scale, bias = rng.normal(size=(3, 4)).astype(np.float32), rng.normal(size=(4,)).astype(np.float32)
    inits = [onnx.numpy_helper.from_array(scale, "s"), onnx.numpy_helper.from_array(bias, "b")]
    node = onnx.helper.make_node("LayerNormalization", ["x", "s", "b"], ["y"], axis=1, epsilon=1e-3)
    net = from_onnx(_single_node_model(node, ["N", 3, 4], 17, inits))
    (layer,) = net.model.layers
    assert isinstance(layer, LayerNorm) and layer.normalized_shape == (3, 4) and layer.eps == pytest.approx(1e-3)
    x = rng.normal(size=(5, 3, 4)).astype(np.float32)
    np.testing.assert_allclose(net(x), net.run_onnxruntime(x), rtol=RTOL, atol=ATOL)


@pytest.mark.parametrize(
    ("node", "match"),
    [
        (onnx.helper.make_node("HardSigmoid", ["x"], ["y"], name="hs"), r"'hs' \(HardSigmoid.*alpha=0.2"),
        (onnx.helper.make_node("LayerNormalization", ["x", "s"], ["y"], name="ln", axis=0), r"'ln'.*batch axis"),
    ],
)
def test_import_refuses_what_axiom_cannot_represent(node: onnx.NodeProto, match: str) -> None:
    inits = [onnx.numpy_helper.from_array(np.ones((5, 3), np.float32), "s")]
    with pytest.raises(UnsupportedOnnxError, match=match):
        from_onnx(_single_node_model(node, ["N", 3], 17, inits))


@pytest.mark.parametrize("opset", [19, 20])
def test_import_opsets_19_and_20(opset: int) -> None:
    net = from_onnx(_single_node_model(onnx.helper.make_node("Gelu", ["x"], ["y"]), ["N", 3], 20))
    assert net.opset == 20
    net = from_onnx(_single_node_model(onnx.helper.make_node("Relu", ["x"], ["y"]), ["N", 3], opset))
    x = _rng().normal(size=(2, 3)).astype(np.float32)
    np.testing.assert_allclose(net(x), np.maximum(x, 0))


def test_training_mode_model_exports_its_inference_behaviour(tmp_path: Path) -> None:
    model = _randomize(Sequential(Dense(4, 4), Dropout(0.5), BatchNorm(4), Softmax()))
    proto = to_onnx(model.train(), tmp_path / "m.onnx")
    x = _rng().normal(size=(3, 4)).astype(np.float32)
    (got,) = _session(tmp_path / "m.onnx").run(None, {"input": x})
    np.testing.assert_allclose(got, model.eval()(x).numpy(), rtol=RTOL, atol=ATOL)
    assert "Dropout" in _ops(proto)


class ShiftedDense(Dense):
    """A Dense whose forward differs from Dense's.

    >>> ShiftedDense(2, 2)(np.zeros((1, 2), np.float32)).shape
    (1, 2)
    """

    def forward(self, x: Tensor) -> Tensor:
        return super().forward(x) + 1.0


def test_subclass_overriding_forward_is_not_exported_as_its_base() -> None:
    with pytest.raises(
        UnsupportedLayerError, match=r"layer '0' \(ShiftedDense\): ShiftedDense overrides forward\(\) of Dense"
    ):
        to_onnx(Sequential(ShiftedDense(3, 3), ReLU()))
