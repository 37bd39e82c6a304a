"""from_onnx(to_onnx(m)) gives back m's layers and outputs for every layer type and opsets 17-20."""

from __future__ import annotations

import json
from typing import Any

import numpy as np
import onnx
import onnxruntime as ort
import pytest

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
    Reshape,
    Residual,
    RMSNorm,
    Sequential,
    Softmax,
    manual_seed,
)
from axiom.backends.base import ACTIVATIONS
from axiom.io import UnsupportedOnnxError, from_onnx
from axiom.io.onnx_export import SUPPORTED_OPSETS, to_onnx
from axiom.nn import Activation, Affine

RTOL, ATOL = 1e-5, 1e-5


def _randomized(model: Layer) -> Layer:
    rng = np.random.default_rng(7)
    for _, p in model.named_parameters():
        p.data = rng.normal(size=p.shape).astype(p.dtype)
    for layer in model.modules():
        if isinstance(layer, BatchNorm) and layer.running_var is not None:
            layer.running_var.data = rng.uniform(0.5, 2, size=layer.running_var.shape).astype(np.float32)
            layer.running_mean.data = rng.normal(size=layer.running_mean.shape).astype(np.float32)
    return model


def _models() -> dict[str, tuple[Layer, tuple[int, ...]]]:
    manual_seed(0)
    image = (6, 6, 2)
    return {
        "dense": (Sequential(Dense(4, 3, "tanh"), Dense(3, 2, bias=False)), (4,)),
        "activations": (Sequential(*(Activation(k) for k in ACTIVATIONS), input_shape=(None, 5)), (5,)),
        "softmax": (Sequential(Dense(4, 4), Softmax(), LogSoftmax()), (4,)),
        "conv": (
            Sequential(
                Conv2d(2, 4, 3, padding="same", activation="silu"),
                DepthwiseConv2d(3, stride=2, channels=4),
                Conv2d(4, 2, 1, bias=False),
                input_shape=(None, *image),
            ),
            image,
        ),
        "pool": (
            Sequential(MaxPool2d(2), AvgPool2d(2, 1, padding=1, count_include_pad=False), input_shape=(None, *image)),
            image,
        ),
        "batchnorm_gap": (Sequential(BatchNorm(), GlobalAvgPool(), input_shape=(None, *image)), image),
        "layernorm": (Sequential(LayerNorm(6), LayerNorm((4, 6), bias=False), input_shape=(None, 4, 6)), (4, 6)),
        "rmsnorm": (
            Sequential(
                RMSNorm(6), RMSNorm((4, 6), eps=1e-2), RMSNorm(6, elementwise_affine=False), input_shape=(None, 4, 6)
            ),
            (4, 6),
        ),
        "shapes_dropout": (
            Sequential(Dense(12, 12), Dropout(0.3), Reshape((3, 4)), Permute((1, 0)), Flatten()),
            (12,),
        ),
        "affine": (Sequential(Affine(np.array([1.0, 2.0, 0.5], np.float32), -1.0), input_shape=(None, 2, 3)), (2, 3)),
        "residual": (Sequential(Dense(6, 6), Residual(Dense(6, 6, "gelu"), Dense(6, 6)), Residual(Dense(6, 6))), (6,)),
        "parallel": (Sequential(Dense(4, 4), Parallel(Dense(4, 2), Sequential(Dense(4, 3), Activation("mish")))), (4,)),
        "concat_image": (
            Sequential(Conv2d(2, 3, 3), Concat(Conv2d(3, 2, 1), MaxPool2d(1)), input_shape=(None, *image)),
            image,
        ),
        "attention": (
            Sequential(
                LayerNorm(8),
                Residual(MultiHeadAttention(8, 2)),
                Residual(MultiHeadAttention(8, 2, causal=True, rope=True, rope_base=100.0, bias=False)),
                input_shape=(None, 5, 8),
            ),
            (5, 8),
        ),
    }


CASES = sorted(_models())


def _types(model: Layer) -> list[str]:
    return [type(m).__name__ for m in model.modules()]


@pytest.mark.parametrize("opset", list(SUPPORTED_OPSETS))
@pytest.mark.parametrize("case", CASES)
def test_round_trip_every_layer(case: str, opset: int) -> None:
    model, example = _models()[case]
    model = _randomized(model)
    proto = to_onnx(model, input_shape=(None, *example), opset=opset)
    onnx.checker.check_model(proto, full_check=True)
    net = from_onnx(proto.SerializeToString())
    assert net.input_shape == example
    x = np.random.default_rng(opset).normal(size=(3, *example)).astype(np.float32)
    expected = model(x).numpy()
    np.testing.assert_allclose(net(x), expected, rtol=RTOL, atol=ATOL)
    np.testing.assert_allclose(net.run_onnxruntime(x), expected, rtol=1e-4, atol=1e-4)
    kinds = {type(m).__name__ for m in model.modules()} - {"Activation", "GELU", "ReLU", "Sigmoid", "Tanh"}
    kinds -= {"DepthwiseConv2d"}  # rebuilt as the Conv2d (groups = channels) it exports as
    assert kinds <= set(_types(net.model))


@pytest.mark.parametrize("input_dtype", [np.int64, np.int32])
@pytest.mark.parametrize("opset", list(SUPPORTED_OPSETS))
def test_round_trip_embedding(opset: int, input_dtype: Any) -> None:
    manual_seed(0)
    model = Sequential(Embedding(11, 4, padding_idx=0), LayerNorm(4), Flatten(), Dense(12, 3))
    proto = to_onnx(model, input_shape=(None, 3), opset=opset, input_dtype=input_dtype)
    net = from_onnx(proto)
    assert type(net.model[0]) is Embedding
    x = np.random.default_rng(0).integers(0, 11, size=(4, 3)).astype(input_dtype)
    np.testing.assert_allclose(net(x), model(x).numpy(), rtol=RTOL, atol=ATOL)
    sess = ort.InferenceSession(proto.SerializeToString(), providers=["CPUExecutionProvider"])
    np.testing.assert_allclose(sess.run(None, {"input": x})[0], model(x).numpy(), rtol=1e-5, atol=1e-5)


def test_fixed_batch_and_names_round_trip() -> None:
    model = Sequential(RMSNorm(4), Parallel(Dense(4, 2), Dense(4, 1)))
    proto = to_onnx(model, input_shape=(2, 4), dynamic_batch=False, input_name="x", output_name="y", opset=19)
    net = from_onnx(proto)
    assert (net.input_name, net.output_name, net.onnx_input_dims) == ("x", "y", (2, 4))
    x = np.random.default_rng(1).normal(size=(5, 4)).astype(np.float32)
    np.testing.assert_allclose(net(x), model(x).numpy(), rtol=RTOL, atol=ATOL)
    np.testing.assert_allclose(net.run_onnxruntime(x), model(x).numpy(), rtol=1e-5, atol=1e-5)


def test_float64_round_trip() -> None:
    model = Sequential(RMSNorm(3), Dense(3, 2, "silu")).to("float64")
    net = from_onnx(to_onnx(model, input_shape=(None, 3)))
    x = np.random.default_rng(2).normal(size=(3, 3))
    assert net.dtype == np.float64
    np.testing.assert_allclose(net(x), model(x).numpy(), rtol=1e-12, atol=1e-12)


def _with_record(proto: onnx.ModelProto, edit: Any) -> onnx.ModelProto:
    spec = json.loads(proto.metadata_props[0].value)
    edit(spec)
    proto.metadata_props[0].value = json.dumps(spec)
    return proto


def test_a_record_that_does_not_match_the_graph_is_not_trusted() -> None:
    """A wrong eps in the record: the rebuilt model exports differently, so the graph is imported as is."""
    model = Sequential(Dense(3, 3), LayerNorm(3))
    proto = _with_record(to_onnx(model, input_shape=(None, 3)), lambda s: s["layers"][1].update(eps=0.5))
    net = from_onnx(proto)
    x = np.random.default_rng(3).normal(size=(2, 3)).astype(np.float32)
    np.testing.assert_allclose(net(x), model(x).numpy(), rtol=RTOL, atol=ATOL)
    assert net.model[1].eps == pytest.approx(1e-5)
    rms = _with_record(to_onnx(Sequential(RMSNorm(3)), input_shape=(None, 3)), lambda s: s["layers"][0].update(eps=0.5))
    with pytest.raises(UnsupportedOnnxError, match=r"Div.*2 computed tensors"):
        from_onnx(rms)  # the generic importer names the node it cannot map


def test_an_edited_graph_is_imported_operator_by_operator() -> None:
    proto = to_onnx(Sequential(Dense(3, 2), Activation("relu")), input_shape=(None, 3))
    proto.graph.node[-1].op_type = "Sigmoid"
    net = from_onnx(proto)
    assert [type(m).__name__ for m in net.model] == ["Dense", "Sigmoid"]
    x = np.random.default_rng(4).normal(size=(2, 3)).astype(np.float32)
    np.testing.assert_allclose(net(x), net.run_onnxruntime(x), rtol=1e-5, atol=1e-5)


def test_unknown_record_type_falls_back() -> None:
    proto = _with_record(
        to_onnx(Sequential(Dense(2, 2)), input_shape=(None, 2)), lambda s: s["layers"][0].update(type="LSTM")
    )
    assert [type(m).__name__ for m in from_onnx(proto).model] == ["Dense"]


# -- graphs without the layer record: activations spelled out over several nodes ------------------------
@pytest.mark.parametrize("opset", list(SUPPORTED_OPSETS))
def test_untagged_activation_subgraphs_are_recognised(opset: int) -> None:
    manual_seed(0)
    model = Sequential(Dense(4, 4, "silu"), Activation("gelu"), Activation("mish"), Dense(4, 3, "gelu"))
    proto = to_onnx(model, input_shape=(None, 4), opset=opset)
    del proto.metadata_props[:]  # as if another tool had written it
    net = from_onnx(proto)
    assert [type(m).__name__ for m in net.model] == ["Dense", "SiLU", "GELU", "Mish", "Dense", "GELU"]
    x = np.random.default_rng(5).normal(size=(3, 4)).astype(np.float32)
    np.testing.assert_allclose(net(x), model(x).numpy(), rtol=RTOL, atol=ATOL)


def _torch_style_gelu(half: float) -> onnx.ModelProto:
    """GELU as torch's TorchScript exporter writes it below opset 20, with Constant nodes."""
    h = onnx.helper

    def const(name: str, v: float) -> onnx.NodeProto:
        return h.make_node("Constant", [], [name], value=onnx.numpy_helper.from_array(np.array(v, np.float32)))

    nodes = [
        const("sqrt2", np.sqrt(2.0)),
        h.make_node("Div", ["x", "sqrt2"], ["d"]),
        h.make_node("Erf", ["d"], ["e"]),
        const("one", 1.0),
        h.make_node("Add", ["e", "one"], ["a"]),
        h.make_node("Mul", ["x", "a"], ["m"]),
        const("half", half),
        h.make_node("Mul", ["m", "half"], ["y"], name="gelu_out"),
    ]
    graph = h.make_graph(
        nodes,
        "g",
        [h.make_tensor_value_info("x", onnx.TensorProto.FLOAT, ["N", 3])],
        [h.make_tensor_value_info("y", onnx.TensorProto.FLOAT, ["N", 3])],
    )
    return h.make_model(graph, opset_imports=[h.make_opsetid("", 17)])


def test_torch_style_gelu_is_recognised_and_a_near_miss_is_refused() -> None:
    net = from_onnx(_torch_style_gelu(0.5))
    assert [type(m).__name__ for m in net.model] == ["GELU"]
    x = np.random.default_rng(6).normal(size=(4, 3)).astype(np.float32)
    np.testing.assert_allclose(net(x), net.run_onnxruntime(x), rtol=1e-5, atol=1e-6)
    with pytest.raises(UnsupportedOnnxError, match=r"Mul.*2 computed tensors"):
        from_onnx(_torch_style_gelu(0.6))  # not GELU: the join is named, nothing is guessed


def test_a_gate_on_another_tensor_is_not_silu() -> None:
    h = onnx.helper
    nodes = [
        h.make_node("Neg", ["x"], ["n"]),
        h.make_node("Sigmoid", ["n"], ["s"]),
        h.make_node("Mul", ["x", "s"], ["y"]),
    ]
    graph = h.make_graph(
        nodes,
        "g",
        [h.make_tensor_value_info("x", onnx.TensorProto.FLOAT, ["N", 3])],
        [h.make_tensor_value_info("y", onnx.TensorProto.FLOAT, ["N", 3])],
    )
    with pytest.raises(UnsupportedOnnxError, match=r"2 computed tensors"):
        from_onnx(h.make_model(graph, opset_imports=[h.make_opsetid("", 17)]))


@pytest.mark.parametrize("input_dtype", [np.int64, np.int32])
def test_untagged_gather_on_the_integer_input_is_an_embedding(input_dtype: Any) -> None:
    manual_seed(0)
    model = Sequential(Embedding(11, 4), LayerNorm(4), Flatten(), Dense(12, 3))
    proto = to_onnx(model, input_shape=(None, 3), input_dtype=input_dtype)
    del proto.metadata_props[:]
    net = from_onnx(proto)
    assert [type(m).__name__ for m in net.model] == ["Embedding", "LayerNorm", "Flatten", "Dense"]
    x = np.random.default_rng(8).integers(0, 11, size=(4, 3)).astype(input_dtype)
    np.testing.assert_allclose(net(x), model(x).numpy(), rtol=RTOL, atol=ATOL)
    np.testing.assert_allclose(net.run_onnxruntime(x), model(x).numpy(), rtol=1e-5, atol=1e-5)


def test_an_integer_input_used_otherwise_is_refused() -> None:
    h = onnx.helper
    graph = h.make_graph(
        [h.make_node("Cast", ["x"], ["f"], to=onnx.TensorProto.FLOAT), h.make_node("Relu", ["f"], ["y"])],
        "g",
        [h.make_tensor_value_info("x", onnx.TensorProto.INT64, ["N", 3])],
        [h.make_tensor_value_info("y", onnx.TensorProto.FLOAT, ["N", 3])],
    )
    with pytest.raises(UnsupportedOnnxError, match=r"element type INT64.*Gather"):
        from_onnx(h.make_model(graph, opset_imports=[h.make_opsetid("", 17)]))
