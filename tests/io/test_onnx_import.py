"""from_onnx: every benchmark network and synthetic models per operator, compared with onnxruntime.

Tolerance: outputs are float32 on both sides and only the summation order differs (axiom's
kernels vs onnxruntime's MLAS, which also fuses ops), so errors are a few float32 ulps of the
*terms* summed, not of the result: ``rtol=1e-4`` plus ``atol=1e-5`` scaled by the largest
output magnitude (at least 1). A layout or weight-order mistake gives errors of the size of
the outputs themselves, far above this bound.
"""

from __future__ import annotations

import io
from pathlib import Path

import numpy as np
import onnx
import pytest
from onnx import TensorProto, helper, numpy_helper

from axiom import Affine, BatchNorm, Conv2d, Dense, Flatten, Permute, Reshape, Sequential
from axiom.io import InvalidOnnxError, OnnxModel, UnsupportedOnnxError, from_onnx

BENCH = Path(__file__).resolve().parents[3] / "shared" / "benchmarks"
if not BENCH.is_dir():
    BENCH = Path("/work/shared/benchmarks")

RNG = np.random.default_rng(1234)


# -- helpers ---------------------------------------------------------------------------------------
def make_model(
    nodes: list[onnx.NodeProto],
    input_dims: list,
    inits: dict[str, np.ndarray] | None = None,
    opset: int = 13,
    elem: int = TensorProto.FLOAT,
    output: str | None = None,
    output_dims: list | None = None,
) -> onnx.ModelProto:
    """A checked single-input model; the output's type comes from ONNX shape inference."""
    output = output or nodes[-1].output[0]
    tensors = [numpy_helper.from_array(np.asarray(v), k) for k, v in (inits or {}).items()]
    ir = 3 if opset <= 8 else 7 if opset <= 13 else 8
    inputs = [helper.make_tensor_value_info("x", elem, input_dims)]
    if ir == 3:  # IR 3 lists initializers as graph inputs too (as the ACAS Xu files do)
        inputs += [helper.make_tensor_value_info(t.name, t.data_type, t.dims) for t in tensors]
    graph = helper.make_graph(nodes, "g", inputs, [helper.make_tensor_value_info(output, elem, output_dims)], tensors)
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", opset)], ir_version=ir)
    model = onnx.shape_inference.infer_shapes(model, strict_mode=True)
    onnx.checker.check_model(model)
    return model


def f32(*shape: int, scale: float = 1.0) -> np.ndarray:
    return (RNG.normal(size=shape) * scale).astype(np.float32)


def assert_close(ours: np.ndarray, ref: np.ndarray) -> None:
    """float32 agreement up to summation order (see the module docstring)."""
    assert ours.shape == ref.shape
    atol = 1e-5 * max(1.0, float(np.abs(ref).max(initial=0.0)))
    np.testing.assert_allclose(ours, ref, rtol=1e-4, atol=atol)


def assert_matches_ort(net: OnnxModel, x: np.ndarray) -> np.ndarray:
    ours, ref = net(x), net.run_onnxruntime(x)
    assert ours.dtype == ref.dtype
    assert_close(ours, ref)
    return ours


def check(model: onnx.ModelProto, batch: int = 3, scale: float = 1.0, **kwargs) -> OnnxModel:
    """Import ``model``, run a random batch through both, and return the import."""
    net = from_onnx(model, **kwargs)
    x = (RNG.normal(size=(batch, *net.input_shape)) * scale).astype(net.dtype)
    if net.input_batched and isinstance(net.onnx_input_dims[0], int) and net.onnx_input_dims[0] > 1:
        x = (RNG.normal(size=(net.onnx_input_dims[0], *net.input_shape)) * scale).astype(net.dtype)
    assert_matches_ort(net, x)
    return net


def layer_types(net: OnnxModel) -> list[str]:
    return [type(layer).__name__ for layer in net.model]


# -- the benchmark networks ------------------------------------------------------------------------
ACAS_USED = {"ACASXU_run2a_1_1_batch_2000.onnx", "ACASXU_run2a_1_9_batch_2000.onnx"}
BENCH_FILES = sorted(
    p for p in BENCH.glob("*/*.onnx") if p.parent.name != "acasxu" or p.name in ACAS_USED
)  # two ACAS Xu networks: the other seven differ only in weights

#: Input range (VNN-LIB boxes of the folder) and the operators each file may use.
BENCH_INFO = {
    "test": ((-2.0, 2.0), {"MatMul", "Add", "Relu", "Sub", "Flatten"}),
    "acasxu": ((-0.5, 0.5), {"Sub", "Flatten", "MatMul", "Add", "Relu"}),
    "mnistfc": ((0.0, 1.0), {"Flatten", "Gemm", "Relu"}),
    "verivital": ((0.0, 1.0), {"Conv", "Relu", "Pad", "MaxPool", "AveragePool", "Flatten", "Gemm"}),
}


@pytest.mark.skipif(not BENCH_FILES, reason="../shared/benchmarks not present")
@pytest.mark.parametrize("path", BENCH_FILES, ids=[f"{p.parent.name}/{p.name}" for p in BENCH_FILES])
def test_benchmark_networks_match_onnxruntime(path: Path) -> None:
    (lo, hi), ops = BENCH_INFO[path.parent.name]
    net = from_onnx(path)
    assert set(net.ops) <= ops, f"unexpected operators {set(net.ops) - ops}"
    assert isinstance(net.model, Sequential)
    x = RNG.uniform(lo, hi, size=(16, *net.input_shape)).astype(np.float32)
    y = assert_matches_ort(net, x)
    assert y.shape == (16, *net.output_shape)
    # VNN-LIB: X_i is element i of the flattened ONNX input; one flat vector is one example.
    flat = x[3].reshape(-1)
    assert flat.size == net.input_size
    assert_close(net(flat).reshape(-1), y[3].reshape(-1))  # batch 1 may sum in another order than 16
    np.testing.assert_array_equal(net.model(x).numpy().reshape(16, -1), y.reshape(16, -1))


@pytest.mark.skipif(not BENCH_FILES, reason="../shared/benchmarks not present")
def test_benchmark_structure() -> None:
    acas = from_onnx(BENCH / "acasxu" / "ACASXU_run2a_1_1_batch_2000.onnx")
    assert acas.input_shape == (1, 1, 5) and acas.output_shape == (5,) and acas.onnx_input_dims == (1, 1, 1, 5)
    assert acas.input_name == "input" and acas.output_name == "linear_7_Add" and acas.opset == 8
    # MatMul + Add fold into one Dense with bias; the input Sub is an Affine; no Permute for (1, 1, 5)
    inits = {t.name: numpy_helper.to_array(t) for t in acas.onnx_model.graph.initializer}
    assert not inits["input_AvgImg"].any()  # subtracting zeros: no Affine layer
    assert layer_types(acas) == ["Flatten"] + ["Dense", "ReLU"] * 6 + ["Dense"]
    np.testing.assert_array_equal(acas.model[1].weight.numpy(), inits["Operation_1_MatMul_W"])
    np.testing.assert_array_equal(acas.model[1].bias.numpy(), inits["Operation_1_Add_B"])
    assert acas.layer_sources[1] == ("Operation_1_MatMul", "Operation_1_Add")

    mnist = from_onnx(BENCH / "mnistfc" / "mnist-net_256x2.onnx")
    assert mnist.input_shape == (784, 1) and mnist.output_shape == (10,)
    assert layer_types(mnist) == ["Flatten", "Dense", "ReLU", "Dense", "ReLU", "Dense"]

    small = from_onnx(BENCH / "test" / "test_small.onnx")  # rank-1 input: no batch axis; W @ x
    assert small.input_shape == (1,) and not small.input_batched and small.output_shape == (1,)
    assert small(np.array([0.5], np.float32)).shape == (1,)
    assert small(np.zeros((4, 1), np.float32)).shape == (4, 1)

    conv = from_onnx(BENCH / "verivital" / "Convnet_maxpool.onnx")
    # one input channel: NCHW -> NHWC moves only a size-1 axis, so it is a Reshape, not a Permute
    assert layer_types(conv) == ["Reshape", "Conv2d", "ReLU", "MaxPool2d", "Permute", "Flatten", "Dense"]
    assert conv.model[4].dims == (2, 0, 1)


# -- Conv ------------------------------------------------------------------------------------------
CONV_CASES = [
    # (pads or auto_pad, strides, dilations, group)
    ([0, 0, 0, 0], [1, 1], [1, 1], 1),
    ([1, 1, 1, 1], [1, 1], [1, 1], 1),
    ([0, 1, 2, 1], [2, 1], [1, 1], 1),
    ([1, 2, 1, 2], [1, 2], [2, 2], 2),
    ("VALID", [2, 2], [1, 1], 1),
    ("SAME_UPPER", [2, 2], [1, 1], 2),
    ("SAME_LOWER", [2, 2], [1, 1], 1),
    ("SAME_LOWER", [1, 2], [1, 1], 1),  # onnxruntime has no dilation with SAME
    ("NOTSET", [1, 1], [1, 1], 4),
]


@pytest.mark.parametrize("opset", [8, 11, 13, 17])
@pytest.mark.parametrize("pads,strides,dilations,group", CONV_CASES)
def test_conv(opset: int, pads, strides, dilations, group) -> None:
    cin, cout = 4, 8
    w = f32(cout, cin // group, 3, 2)
    attrs = {"strides": strides, "dilations": dilations, "group": group, "kernel_shape": [3, 2]}
    if isinstance(pads, str):
        attrs["auto_pad"] = pads
    else:
        attrs["pads"] = pads
    inputs = ["x", "w"] + (["b"] if group != 2 else [])
    model = make_model(
        [helper.make_node("Conv", inputs, ["y"], **attrs)], ["N", cin, 9, 8], {"w": w, "b": f32(cout)}, opset
    )
    net = check(model)
    assert layer_types(net) == ["Permute", "Conv2d", "Permute"]
    np.testing.assert_array_equal(net.model[1].weight.numpy(), w.transpose(2, 3, 1, 0))


def test_conv_chain_stays_nhwc_and_affine_constants_follow_the_layout() -> None:
    nodes = [
        helper.make_node("Sub", ["x", "mean"], ["a"]),
        helper.make_node("Div", ["a", "std"], ["b"]),
        helper.make_node("Conv", ["b", "w1", "b1"], ["c"], pads=[1, 1, 1, 1]),
        helper.make_node("Mul", ["c", "ch"], ["d"]),  # per channel, after the conv: in NHWC
        helper.make_node("Add", ["d", "full"], ["e"]),  # a full (1, C, H, W) constant
        helper.make_node("Relu", ["e"], ["f"]),
        helper.make_node("Conv", ["f", "w2"], ["g"], strides=[2, 2]),
        helper.make_node("Add", ["g", "bias2"], ["h"]),  # folds into the second conv's bias
        helper.make_node("Flatten", ["h"], ["y"]),
    ]
    inits = {
        "mean": np.array([0.1, 0.2, 0.3], np.float32).reshape(1, 3, 1, 1),
        "std": np.array([0.5, 0.25, 2.0], np.float32).reshape(3, 1, 1),
        "w1": f32(6, 3, 3, 3),
        "b1": f32(6),
        "ch": f32(1, 6, 1, 1),
        "full": f32(1, 6, 7, 5),
        "w2": f32(4, 6, 3, 3),
        "bias2": f32(4, 1, 1),
    }
    net = check(make_model(nodes, ["N", 3, 7, 5], inits))
    assert layer_types(net) == ["Affine", "Permute", "Conv2d", "Affine", "ReLU", "Conv2d", "Permute", "Flatten"]
    assert net.model[5].bias is not None  # Add folded into the bias
    assert net.layer_sources[5][-1] == "#7 -> 'h'"


# -- pooling ---------------------------------------------------------------------------------------
@pytest.mark.parametrize("opset", [8, 11, 13, 17])
@pytest.mark.parametrize(
    "op,attrs",
    [
        ("MaxPool", {"kernel_shape": [2, 2], "strides": [2, 2]}),
        ("MaxPool", {"kernel_shape": [3, 3], "strides": [2, 2], "pads": [1, 1, 1, 1]}),
        ("MaxPool", {"kernel_shape": [3, 2]}),  # ONNX's default stride is 1
        ("MaxPool", {"kernel_shape": [2, 2], "strides": [2, 2], "auto_pad": "SAME_UPPER"}),
        ("MaxPool", {"kernel_shape": [2, 2], "strides": [2, 2], "auto_pad": "VALID"}),
        ("AveragePool", {"kernel_shape": [3, 3], "strides": [2, 2], "pads": [1, 1, 1, 1], "count_include_pad": 1}),
        ("AveragePool", {"kernel_shape": [3, 3], "strides": [2, 2], "pads": [1, 1, 1, 1], "count_include_pad": 0}),
        ("AveragePool", {"kernel_shape": [3, 3], "strides": [1, 1], "pads": [1, 0, 1, 0]}),
        ("AveragePool", {"kernel_shape": [4, 4], "strides": [4, 4]}),
        ("GlobalAveragePool", {}),
    ],
)
def test_pooling(opset: int, op: str, attrs: dict) -> None:
    model = make_model([helper.make_node(op, ["x"], ["y"], **attrs)], [2, 3, 8, 8], opset=opset)
    net = check(model, batch=2)
    assert net.input_shape == (3, 8, 8) and net.input_batched


@pytest.mark.parametrize("opset", [10, 11, 13, 17])
def test_maxpool_dilations_and_ceil_mode(opset: int) -> None:
    node = helper.make_node("MaxPool", ["x"], ["y"], kernel_shape=[2, 2], dilations=[2, 2], strides=[2, 2])
    check(make_model([node], ["N", 2, 9, 9], opset=opset))
    # ceil_mode=1 that does not change the output size is accepted
    node = helper.make_node("MaxPool", ["x"], ["y"], kernel_shape=[2, 2], strides=[2, 2], ceil_mode=1)
    check(make_model([node], ["N", 2, 8, 8], opset=opset))
    node = helper.make_node("MaxPool", ["x"], ["y"], kernel_shape=[2, 2], strides=[2, 2], ceil_mode=1, name="mp")
    with pytest.raises(UnsupportedOnnxError, match=r"node 'mp' \(MaxPool, opset \d+\): ceil_mode=1"):
        from_onnx(make_model([node], ["N", 2, 9, 9], opset=opset))


def test_pool_padding_axiom_cannot_express() -> None:
    node = helper.make_node("MaxPool", ["x"], ["y"], kernel_shape=[3, 3], pads=[0, 0, 1, 1], name="asym")
    with pytest.raises(UnsupportedOnnxError, match="symmetric padding"):
        from_onnx(make_model([node], ["N", 2, 8, 8]))


# -- BatchNormalization ----------------------------------------------------------------------------
@pytest.mark.parametrize("opset", [8, 9, 11, 13, 14, 15, 17])
@pytest.mark.parametrize("dims", [["N", 4, 5, 6], ["N", 4], ["N", 4, 6]])
def test_batchnorm(opset: int, dims: list) -> None:
    attrs = {"epsilon": 1e-3}
    if opset < 9:
        attrs["spatial"] = 1
    inits = {"s": f32(4), "b": f32(4), "m": f32(4), "v": np.abs(f32(4)) + 0.5}
    node = helper.make_node("BatchNormalization", ["x", "s", "b", "m", "v"], ["y"], **attrs)
    net = check(make_model([node], dims, inits, opset))
    bn = next(layer for layer in net.model if isinstance(layer, BatchNorm))
    np.testing.assert_array_equal(bn.running_var.numpy(), inits["v"])
    assert bn.eps == pytest.approx(1e-3)


def test_batchnorm_training_mode_is_rejected() -> None:
    inits = {"s": f32(4), "b": f32(4), "m": f32(4), "v": np.ones(4, np.float32)}
    node = helper.make_node(
        "BatchNormalization", ["x", "s", "b", "m", "v"], ["y", "rm", "rv"], training_mode=1, name="bn"
    )
    model = make_model([node], [2, 4], inits, opset=15)
    with pytest.raises(UnsupportedOnnxError, match=r"'bn' \(BatchNormalization, opset 15\): training_mode=1"):
        from_onnx(model)


# -- Gemm / MatMul -----------------------------------------------------------------------------------
@pytest.mark.parametrize("opset", [8, 11, 13, 17])
@pytest.mark.parametrize(
    "alpha,beta,trans_b,c_shape",
    [(1.0, 1.0, 0, (5,)), (0.5, 2.0, 1, (1, 5)), (1.0, 1.0, 1, ()), (2.0, 0.0, 0, (5,)), (1.0, 1.0, 1, None)],
)
def test_gemm(opset: int, alpha: float, beta: float, trans_b: int, c_shape) -> None:
    if c_shape is None and opset < 11:
        pytest.skip("C is optional from opset 11")
    b = f32(5, 7) if trans_b else f32(7, 5)
    inputs = ["x", "B"] + (["C"] if c_shape is not None else [])
    node = helper.make_node("Gemm", inputs, ["y"], alpha=alpha, beta=beta, transB=trans_b)
    inits = {"B": b} | ({"C": f32(*c_shape)} if c_shape is not None else {})
    net = check(make_model([node], ["N", 7], inits, opset))
    assert layer_types(net) == ["Dense"]
    expected = alpha * (b.T if trans_b else b)
    np.testing.assert_allclose(net.model[0].weight.numpy(), expected, rtol=1e-6)


def test_gemm_trans_a_on_the_computed_input_is_rejected() -> None:
    node = helper.make_node("Gemm", ["x", "B"], ["y"], transA=1, name="g")
    with pytest.raises(UnsupportedOnnxError, match=r"node 'g' \(Gemm, opset 13\): .*transA=1.*batch axis"):
        from_onnx(make_model([node], ["N", 7], {"B": f32(7, 5)}))


def test_gemm_trans_a_on_constants_is_folded() -> None:
    nodes = [
        helper.make_node("Gemm", ["A", "Bc"], ["w"], transA=1),  # constant subgraph: W = A^T @ B
        helper.make_node("MatMul", ["x", "w"], ["h"]),
        helper.make_node("Add", ["h", "bias"], ["y"]),
    ]
    inits = {"A": f32(3, 6), "Bc": f32(3, 4), "bias": f32(1, 4)}
    net = check(make_model(nodes, ["N", 6], inits))
    assert layer_types(net) == ["Dense"]
    np.testing.assert_allclose(net.model[0].weight.numpy(), inits["A"].T @ inits["Bc"], rtol=1e-5)
    np.testing.assert_array_equal(net.model[0].bias.numpy(), inits["bias"][0])


@pytest.mark.parametrize("opset", [8, 13, 17])
def test_matmul_add_fold_and_sub(opset: int) -> None:
    nodes = [
        helper.make_node("MatMul", ["x", "W"], ["h"]),
        helper.make_node("Add", ["bias", "h"], ["z"]),  # constant first
        helper.make_node("Sub", ["z", "off"], ["y"]),  # folds into the bias too
    ]
    net = check(make_model(nodes, ["N", 6], {"W": f32(6, 4), "bias": f32(4), "off": f32(1, 4)}, opset))
    assert layer_types(net) == ["Dense"]


# -- element-wise constants ------------------------------------------------------------------------
CONSTANT_SHAPES = [(), (1,), (5,), (3, 1, 1), (1, 3, 1, 1), (1, 3, 4, 5), (4, 1), (1, 1, 4, 5)]


@pytest.mark.parametrize("op", ["Add", "Sub", "Mul", "Div"])
@pytest.mark.parametrize("shape", CONSTANT_SHAPES, ids=str)
@pytest.mark.parametrize("constant_first", [False, True])
def test_elementwise_constants_broadcast_over_channels(op: str, shape: tuple, constant_first: bool) -> None:
    if op == "Div" and constant_first:
        pytest.skip("c / x is not affine (tested below)")
    c = f32(*shape) if op != "Div" else (np.abs(f32(*shape)) + 0.5).astype(np.float32)
    inputs = ["k", "c"] if constant_first else ["c", "k"]
    # a Conv first, so the constant applies to an NHWC tensor; a Flatten after, to check the order
    nodes = [
        helper.make_node("Conv", ["x", "w"], ["c"], pads=[1, 1, 1, 1]),
        helper.make_node(op, inputs, ["z"]),
        helper.make_node("Flatten", ["z"], ["y"]),
    ]
    net = check(make_model(nodes, ["N", 3, 4, 5], {"k": c, "w": f32(3, 3, 3, 3)}))
    assert "Permute" in layer_types(net)


def test_affine_ops_merge_and_constant_over_x_is_rejected() -> None:
    nodes = [
        helper.make_node("Sub", ["x", "m"], ["a"]),
        helper.make_node("Div", ["a", "s"], ["b"]),
        helper.make_node("Mul", ["b", "k"], ["c"]),
        helper.make_node("Neg", ["c"], ["d"]),
        helper.make_node("Add", ["d", "k"], ["y"]),
    ]
    inits = {"m": f32(1, 2, 1, 1), "s": np.array([2.0, 4.0], np.float32).reshape(2, 1, 1), "k": f32(3)}
    net = check(make_model(nodes, [1, 2, 4, 3], inits))
    assert layer_types(net) == ["Affine"]
    assert len(net.layer_sources[0]) == 5
    node = helper.make_node("Div", ["k", "x"], ["y"], name="recip")
    with pytest.raises(UnsupportedOnnxError, match=r"'recip' \(Div, opset 13\): constant / x is not an affine"):
        from_onnx(make_model([node], [1, 3], {"k": f32(3)}))
    node = helper.make_node("Add", ["x", "k"], ["y"], name="grow")
    with pytest.raises(UnsupportedOnnxError, match="does not broadcast"):
        from_onnx(make_model([node], ["N", 1], {"k": f32(3)}))
    node = helper.make_node("Add", ["x", "k"], ["y"], name="perex")
    with pytest.raises(UnsupportedOnnxError, match="differs per example"):
        from_onnx(make_model([node], ["N", 3], {"k": f32(2, 3)}))


# -- Flatten / Reshape / Squeeze / Unsqueeze / Transpose ---------------------------------------------
@pytest.mark.parametrize("opset", [8, 11, 13, 17])
@pytest.mark.parametrize("axis,dims", [(1, ["N", 2, 3, 4]), (-3, ["N", 2, 3, 4]), (0, [1, 2, 3, 4]), (2, [1, 1, 3, 4])])
def test_flatten(opset: int, axis: int, dims: list) -> None:
    if axis < 0 and opset < 11:
        pytest.skip("negative Flatten axes arrive in opset 11")
    nodes = [helper.make_node("Relu", ["x"], ["r"]), helper.make_node("Flatten", ["r"], ["y"], axis=axis)]
    net = check(make_model(nodes, dims, opset=opset))
    assert net.output_shape == (24,) or net.output_shape == (12,)


def test_flatten_that_mixes_examples_falls_back_or_is_rejected() -> None:
    node = helper.make_node("Flatten", ["x"], ["y"], axis=2, name="fl")
    net = check(make_model([node], [1, 2, 3, 4]))  # fixed batch 1: the whole tensor is one example
    assert not net.output_batched and net.output_shape == (2, 12)
    with pytest.raises(UnsupportedOnnxError, match=r"'fl' \(Flatten, opset 13\).*batch axis"):
        from_onnx(make_model([node], ["N", 2, 3, 4]))


@pytest.mark.parametrize("opset", [8, 13, 14, 17])
def test_reshape_to_and_from_4d(opset: int) -> None:
    nodes = [
        helper.make_node("Reshape", ["x", "to4"], ["img"]),
        helper.make_node("Conv", ["img", "w", "b"], ["c"]),
        helper.make_node("Relu", ["c"], ["r"]),
        helper.make_node("Reshape", ["r", "to2"], ["flat"]),
        helper.make_node("MatMul", ["flat", "W"], ["y"]),
    ]
    inits = {
        "to4": np.array([-1, 2, 6, 6], np.int64),
        "w": f32(3, 2, 3, 3),
        "b": f32(3),
        "to2": np.array([0, -1], np.int64),
        "W": f32(48, 5),
    }
    net = check(make_model(nodes, ["N", 72], inits, opset))
    assert layer_types(net) == ["Reshape", "Permute", "Conv2d", "ReLU", "Permute", "Flatten", "Dense"]


def test_reshape_from_a_shape_subgraph_with_a_symbolic_batch() -> None:
    nodes = [
        helper.make_node("Shape", ["x"], ["s"]),
        helper.make_node("Gather", ["s", "zero"], ["n"], axis=0),
        helper.make_node("Unsqueeze", ["n", "axes"], ["n1"]),
        helper.make_node("Concat", ["n1", "minus1"], ["target"], axis=0),
        helper.make_node("Reshape", ["x", "target"], ["y"]),
    ]
    inits = {"zero": np.array(0, np.int64), "axes": np.array([0], np.int64), "minus1": np.array([-1], np.int64)}
    net = check(make_model(nodes, ["N", 2, 3, 4], inits, output_dims=["N", 24]))
    assert net.output_shape == (24,) and layer_types(net) == ["Flatten"]


def test_reshape_that_moves_the_batch_axis_is_rejected() -> None:
    node = helper.make_node("Reshape", ["x", "t"], ["y"], name="rs")
    with pytest.raises(UnsupportedOnnxError, match=r"'rs' \(Reshape, opset 13\).*batch axis"):
        from_onnx(make_model([node], ["N", 6], {"t": np.array([3, -1], np.int64)}))


@pytest.mark.parametrize("opset", [8, 11, 13, 17])
def test_squeeze_unsqueeze(opset: int) -> None:
    if opset < 13:
        sq = helper.make_node("Squeeze", ["x"], ["a"], axes=[2])
        unsq = helper.make_node("Unsqueeze", ["r"], ["y"], axes=[1, 3])
        inits = {}
    else:
        sq = helper.make_node("Squeeze", ["x", "ax2"], ["a"])
        unsq = helper.make_node("Unsqueeze", ["r", "ax13"], ["y"])
        inits = {"ax2": np.array([2], np.int64), "ax13": np.array([1, 3], np.int64)}
    nodes = [sq, helper.make_node("Relu", ["a"], ["r"]), unsq]
    net = check(make_model(nodes, ["N", 3, 1, 4], inits, opset))
    assert net.output_shape == (1, 3, 1, 4)


def test_transpose_nhwc_input_needs_no_permute() -> None:
    nodes = [
        helper.make_node("Transpose", ["x"], ["nchw"], perm=[0, 3, 1, 2]),
        helper.make_node("Conv", ["nchw", "w"], ["c"], pads=[1, 1, 1, 1]),
        helper.make_node("MaxPool", ["c"], ["p"], kernel_shape=[2, 2], strides=[2, 2]),
        helper.make_node("Transpose", ["p"], ["y"], perm=[0, 2, 3, 1]),
    ]
    net = check(make_model(nodes, ["N", 6, 6, 3], {"w": f32(4, 3, 3, 3)}))
    assert layer_types(net) == ["Conv2d", "MaxPool2d"]
    assert net.output_shape == (3, 3, 4)


# -- activations and softmax -----------------------------------------------------------------------
@pytest.mark.parametrize("opset", [8, 11, 13, 17])
@pytest.mark.parametrize(
    "op,attrs",
    [
        ("Relu", {}),
        ("Sigmoid", {}),
        ("Tanh", {}),
        ("LeakyRelu", {"alpha": 0.2}),
        ("Elu", {"alpha": 0.7}),
        ("Selu", {}),
        ("Softplus", {}),
        ("Softsign", {}),
        ("Identity", {}),
    ],
)
def test_activations(opset: int, op: str, attrs: dict) -> None:
    check(make_model([helper.make_node(op, ["x"], ["y"], **attrs)], ["N", 3, 4, 5], opset=opset), scale=3.0)


@pytest.mark.parametrize("opset", [8, 11, 13])
def test_clip_as_relu6(opset: int) -> None:
    if opset < 11:
        node = helper.make_node("Clip", ["x"], ["y"], min=0.0, max=6.0)
        inits = {}
    else:
        node = helper.make_node("Clip", ["x", "lo", "hi"], ["y"])
        inits = {"lo": np.array(0.0, np.float32), "hi": np.array(6.0, np.float32)}
    net = check(make_model([node], ["N", 8], inits, opset), scale=5.0)
    assert layer_types(net) == ["ReLU6"]


@pytest.mark.parametrize("opset", [8, 11, 12, 13, 17])
@pytest.mark.parametrize("axis", [None, 1, 2, -1])
@pytest.mark.parametrize("op", ["Softmax", "LogSoftmax"])
def test_softmax_axis_semantics(opset: int, axis: int | None, op: str) -> None:
    attrs = {} if axis is None else {"axis": axis}
    # after a Conv, so the tensor is NHWC inside axiom while the axis is ONNX's
    nodes = [helper.make_node("Conv", ["x", "w"], ["c"]), helper.make_node(op, ["c"], ["y"], **attrs)]
    net = check(make_model(nodes, ["N", 2, 3, 4], {"w": f32(3, 2, 1, 1)}, opset), scale=2.0)
    if opset < 13 and axis in (None, 1):
        assert "Reshape" in layer_types(net) or "Flatten" in layer_types(net)  # coerced 2-D semantics


def test_softmax_over_the_batch_axis() -> None:
    node = helper.make_node("Softmax", ["x"], ["y"], axis=0, name="sm")
    with pytest.raises(UnsupportedOnnxError, match=r"'sm' \(Softmax, opset 13\).*batch axis"):
        from_onnx(make_model([node], ["N", 5]))
    net = check(make_model([node], [1, 5]))  # fixed batch 1: retried with the whole input as one example
    assert not net.input_batched and net.input_shape == (1, 5)


# -- constants, no-ops, padding, dtypes ----------------------------------------------------------------
@pytest.mark.parametrize("opset", [8, 11, 13, 17])
def test_constant_nodes_dropout_identity(opset: int) -> None:
    w = f32(4, 3)
    nodes = [
        helper.make_node("Constant", [], ["W"], value=numpy_helper.from_array(w)),
        helper.make_node("Constant", [], ["Wt"], value=numpy_helper.from_array(w.T.copy())),
        helper.make_node("Transpose", ["Wt"], ["W2"]),  # constant subgraph
        helper.make_node("MatMul", ["x", "W"], ["h"]),
        helper.make_node("Dropout", ["h"], ["d"], **({"ratio": 0.5} if opset < 12 else {})),
        helper.make_node("Identity", ["d"], ["i"]),
        helper.make_node("MatMul", ["i", "V"], ["y"]),
    ]
    inits = {"V": f32(3, 2)}
    if opset >= 12:
        nodes.insert(2, helper.make_node("Constant", [], ["half"], value_float=0.5))
    net = check(make_model(nodes, ["N", 4], inits, opset))
    assert layer_types(net) == ["Dense", "Dense"]


@pytest.mark.parametrize("opset", [8, 11, 13, 18])
def test_pad_before_conv(opset: int) -> None:
    pads = [0, 0, 1, 2, 0, 0, 2, 0]
    if opset < 11:
        pad = helper.make_node("Pad", ["x"], ["p"], pads=pads, mode="constant", value=0.0)
        inits = {}
    else:
        pad = helper.make_node("Pad", ["x", "pads"], ["p"], mode="constant")
        inits = {"pads": np.array(pads, np.int64)}
    nodes = [pad, helper.make_node("Conv", ["p", "w"], ["y"], pads=[1, 0, 0, 1])]
    inits["w"] = f32(2, 3, 3, 3)
    net = check(make_model(nodes, ["N", 3, 5, 5], inits, opset))
    conv = net.model[1]
    assert isinstance(conv, Conv2d) and conv.padding == ((2, 2), (2, 1))
    # a non-zero Pad that is not followed by a Conv
    nodes = [pad.__class__.FromString(pad.SerializeToString()), helper.make_node("Relu", ["p"], ["y"])]
    nodes[0].name = "pad"
    with pytest.raises(UnsupportedOnnxError, match=r"'pad' \(Pad, opset \d+\): a non-zero Pad"):
        from_onnx(make_model(nodes, ["N", 3, 5, 5], {k: v for k, v in inits.items() if k != "w"}, opset))


def test_float64_models_keep_their_dtype() -> None:
    nodes = [helper.make_node("Gemm", ["x", "W", "b"], ["h"], transB=1), helper.make_node("Tanh", ["h"], ["y"])]
    inits = {"W": RNG.normal(size=(3, 4)), "b": RNG.normal(size=3)}
    net = check(make_model(nodes, ["N", 4], inits, elem=TensorProto.DOUBLE))
    assert net.dtype == np.float64 and net.model[0].weight.dtype == np.float64


def test_opset_18_is_accepted() -> None:
    check(make_model([helper.make_node("Relu", ["x"], ["y"])], ["N", 3], opset=18))


# -- torch exports -----------------------------------------------------------------------------------
torch = pytest.importorskip("torch")


class _ConvNet(torch.nn.Module):
    def __init__(self) -> None:
        super().__init__()
        self.conv1 = torch.nn.Conv2d(3, 8, 3, padding=1)
        self.bn1 = torch.nn.BatchNorm2d(8)
        self.pool1 = torch.nn.MaxPool2d(2)
        self.conv2 = torch.nn.Conv2d(8, 8, 3, stride=2, padding=1, groups=2)
        self.pool2 = torch.nn.AvgPool2d(2, count_include_pad=False)
        self.fc = torch.nn.Linear(8, 10)

    def forward(self, x):
        x = self.pool1(torch.relu(self.bn1(self.conv1(x))))
        x = self.pool2(torch.sigmoid(self.conv2(x)))
        return torch.softmax(self.fc(x.view(x.size(0), -1)), dim=1)


class _MLP(torch.nn.Module):
    def __init__(self) -> None:
        super().__init__()
        self.body = torch.nn.Sequential(
            torch.nn.Linear(20, 32),
            torch.nn.BatchNorm1d(32),
            torch.nn.ReLU(),
            torch.nn.Dropout(0.3),
            torch.nn.Linear(32, 16),
            torch.nn.Tanh(),
            torch.nn.Linear(16, 4),
        )

    def forward(self, x):
        return self.body((x - 0.5) / 0.25)


def _randomize_bn(module) -> None:
    for m in module.modules():
        if isinstance(m, torch.nn.BatchNorm1d | torch.nn.BatchNorm2d):
            with torch.no_grad():
                m.running_mean.uniform_(-0.5, 0.5)
                m.running_var.uniform_(0.5, 2.0)
                m.weight.uniform_(0.5, 1.5)
                m.bias.uniform_(-0.5, 0.5)


def _export(module, example, opset: int, dynamic: bool, fold: bool = True) -> onnx.ModelProto:
    buf = io.BytesIO()
    kwargs = {"dynamic_axes": {"x": {0: "N"}, "y": {0: "N"}}} if dynamic else {}
    torch.onnx.export(
        module,
        (example,),
        buf,
        dynamo=False,
        opset_version=opset,
        input_names=["x"],
        output_names=["y"],
        do_constant_folding=fold,
        **kwargs,
    )
    return onnx.load_from_string(buf.getvalue())


@pytest.mark.filterwarnings("ignore::DeprecationWarning", "ignore::UserWarning")
@pytest.mark.parametrize("opset,dynamic,fold", [(13, True, True), (17, False, True), (13, False, False)])
@pytest.mark.parametrize("factory,shape", [(_ConvNet, (1, 3, 8, 8)), (_MLP, (1, 20))], ids=["convnet", "mlp"])
def test_torch_exports(factory, shape, opset: int, dynamic: bool, fold: bool) -> None:
    torch.manual_seed(0)
    module = factory().eval()
    _randomize_bn(module)
    model = _export(module, torch.zeros(shape), opset, dynamic, fold)
    net = from_onnx(model)
    x = RNG.uniform(0, 1, size=(5 if dynamic else 1, *shape[1:])).astype(np.float32)
    y = assert_matches_ort(net, x)
    with torch.no_grad():
        np.testing.assert_allclose(y, module(torch.from_numpy(x)).numpy(), rtol=1e-4, atol=1e-5)
    if not fold:
        assert "BatchNormalization" in net.ops and any(isinstance(layer, BatchNorm) for layer in net.model)


# -- unsupported graphs and bad files --------------------------------------------------------------------
def test_lstm_is_unsupported() -> None:
    inits = {"W": f32(1, 8, 3), "R": f32(1, 8, 2)}
    node = helper.make_node("LSTM", ["x", "W", "R"], ["y"], hidden_size=2, name="lstm_1")
    model = make_model([node], [4, 1, 3], inits)
    with pytest.raises(UnsupportedOnnxError, match=r"node 'lstm_1' \(LSTM, opset 13\): no axiom mapping") as info:
        from_onnx(model)
    assert (info.value.node_name, info.value.op_type, info.value.opset) == ("lstm_1", "LSTM", 13)
    assert isinstance(info.value, ValueError)


def test_residual_add_becomes_a_residual_layer() -> None:
    nodes = [
        helper.make_node("Conv", ["x", "w0"], ["h"], pads=[1, 1, 1, 1], name="stem"),
        helper.make_node("Relu", ["h"], ["r"], name="relu0"),
        helper.make_node("Conv", ["r", "w1", "b1"], ["a"], pads=[1, 1, 1, 1], name="c1"),
        helper.make_node("Relu", ["a"], ["b"], name="relu1"),
        helper.make_node("Constant", [], ["k"], value=numpy_helper.from_array(f32(1, 4, 1, 1)), name="k"),
        helper.make_node("Mul", ["b", "k"], ["c"], name="scale"),
        helper.make_node("Conv", ["c", "w2"], ["d"], pads=[1, 1, 1, 1], name="c2"),
        helper.make_node("Add", ["d", "r"], ["s"], name="skip"),  # f(x) + x
        helper.make_node("Add", ["s", "s"], ["t"], name="double"),  # x + x
        helper.make_node("Flatten", ["t"], ["y"]),
    ]
    inits = {"w0": f32(4, 2, 3, 3), "w1": f32(4, 4, 3, 3), "b1": f32(4), "w2": f32(4, 4, 3, 3)}
    net = check(make_model(nodes, ["N", 2, 5, 5], inits))
    assert layer_types(net) == ["Permute", "Conv2d", "ReLU", "Residual", "Affine", "Permute", "Flatten"]
    residual = net.model[3]
    assert [type(layer).__name__ for layer in residual.layers] == ["Conv2d", "ReLU", "Affine", "Conv2d"]
    assert net.layer_sources[3] == ("c1", "relu1", "scale", "c2", "skip")
    # x + f(x) on vectors, with the branch in the second position and a no-op branch
    nodes = [
        helper.make_node("Gemm", ["x", "W"], ["h"], transB=1),
        helper.make_node("Tanh", ["h"], ["u"]),
        helper.make_node("Add", ["h", "u"], ["v"]),
        helper.make_node("Identity", ["v"], ["i"]),
        helper.make_node("Add", ["v", "i"], ["y"]),
    ]
    net = check(make_model(nodes, ["N", 3], {"W": f32(3, 3)}))
    assert layer_types(net) == ["Dense", "Residual", "Residual"]


def test_unsupported_joins() -> None:
    nodes = [
        helper.make_node("MatMul", ["x", "W"], ["h"], name="fc"),
        helper.make_node("Relu", ["h"], ["r"], name="relu"),
        helper.make_node("ReduceSum", ["r"], ["s"], name="sum", keepdims=1),
        helper.make_node("Add", ["h", "s"], ["y"], name="skip"),  # f(x) of another shape: broadcasting
    ]
    with pytest.raises(UnsupportedOnnxError, match=r"node 'sum' \(ReduceSum, opset 11\): no axiom mapping"):
        from_onnx(make_model(nodes, ["N", 4], {"W": f32(4, 4)}, opset=11))
    nodes[2] = helper.make_node("MatMul", ["r", "V"], ["s"], name="narrow")
    with pytest.raises(UnsupportedOnnxError, match=r"node 'skip' \(Add, opset 13\): Add\(x, f\(x\)\) where f changes"):
        from_onnx(make_model(nodes, ["N", 4], {"W": f32(4, 4), "V": f32(4, 1)}))
    nodes = [
        helper.make_node("Relu", ["x"], ["a"], name="a"),
        helper.make_node("Sigmoid", ["a"], ["b"], name="b"),
        helper.make_node("Tanh", ["a"], ["c"], name="c"),  # a is read three times
        helper.make_node("Add", ["a", "b"], ["d"], name="join1"),
        helper.make_node("Add", ["d", "c"], ["y"], name="join2"),
    ]
    with pytest.raises(UnsupportedOnnxError, match=r"node 'join1' \(Add, opset 13\): takes 2 computed tensors"):
        from_onnx(make_model(nodes, ["N", 4]))


def test_branches_are_unsupported() -> None:
    nodes = [
        helper.make_node("Relu", ["x"], ["a"], name="left"),
        helper.make_node("Sigmoid", ["x"], ["b"], name="right"),
        helper.make_node("Mul", ["a", "b"], ["y"], name="join"),
    ]
    with pytest.raises(UnsupportedOnnxError, match=r"node 'join' \(Mul, opset 13\): takes 2 computed"):
        from_onnx(make_model(nodes, ["N", 4]))
    # a dead branch is pruned: only what the output needs is imported
    nodes = [helper.make_node("Sigmoid", ["x"], ["dead"]), helper.make_node("Relu", ["x"], ["y"])]
    assert layer_types(from_onnx(make_model(nodes, ["N", 4]))) == ["ReLU"]


def test_unsupported_opset_and_inputs() -> None:
    model = make_model([helper.make_node("Relu", ["x"], ["y"])], ["N", 3], opset=13)
    model.opset_import[0].version = 6
    with pytest.raises(UnsupportedOnnxError, match="opset 6 is not supported"):
        from_onnx(model)
    model = make_model([helper.make_node("Relu", ["x"], ["y"])], ["N", "H"])
    with pytest.raises(UnsupportedOnnxError, match="only the batch axis may be symbolic"):
        from_onnx(model)
    with pytest.raises(ValueError, match="no graph input named 'z'"):
        from_onnx(make_model([helper.make_node("Relu", ["x"], ["y"])], ["N", 3]), input_name="z")
    model = make_model([helper.make_node("Relu", ["x"], ["y"])], ["N", 3], elem=TensorProto.INT32)
    with pytest.raises(UnsupportedOnnxError, match="element type INT32"):
        from_onnx(model)


def test_bad_files(tmp_path: Path) -> None:
    with pytest.raises(FileNotFoundError, match="no such file"):
        from_onnx(tmp_path / "missing.onnx")
    bad = tmp_path / "bad.onnx"
    bad.write_bytes(b"this is not protobuf \xff\xfe")
    with pytest.raises(InvalidOnnxError, match="is not an ONNX model"):
        from_onnx(bad)
    with pytest.raises(InvalidOnnxError, match="not an ONNX model"):
        from_onnx(b"\x00garbage\xff")
    broken = make_model([helper.make_node("Relu", ["x"], ["y"])], ["N", 3])
    broken.graph.node[0].input[0] = "nowhere"
    with pytest.raises(InvalidOnnxError, match="onnx.checker"):
        from_onnx(broken)
    with pytest.raises(TypeError, match="expects a path"):
        from_onnx(42)


# -- the OnnxModel object -------------------------------------------------------------------------------
def test_onnx_model_call_forms(tmp_path: Path) -> None:
    nodes = [helper.make_node("Flatten", ["x"], ["f"]), helper.make_node("Gemm", ["f", "W"], ["y"], transB=1)]
    model = make_model(nodes, [1, 2, 3], {"W": f32(4, 6)})
    path = tmp_path / "m.onnx"
    onnx.save(model, path)
    net = from_onnx(str(path))
    assert (net.input_shape, net.output_shape, net.input_size, net.output_size) == ((2, 3), (4,), 6, 4)
    assert repr(net).startswith("OnnxModel(input 'x' [1, 2, 3], output 'y', opset 13")
    x = f32(5, 2, 3)
    ref = net.run_onnxruntime(x)  # fixed batch 1: onnxruntime runs one example at a time
    assert ref.shape == (5, 4)
    np.testing.assert_allclose(net(x), ref, rtol=1e-5, atol=1e-6)
    np.testing.assert_allclose(net(x.reshape(5, 6)), ref, rtol=1e-5, atol=1e-6)  # flat rows
    assert net(x[0].reshape(-1)).shape == (1, 4)  # one flat example -> the ONNX output shape
    assert net(x[:1]).shape == (1, 4)
    from axiom import Tensor

    assert net(Tensor(x)).shape == (5, 4)
    with pytest.raises(ValueError, match=r"takes \(batch, 2, 3\)"):
        net(np.zeros((2, 5), np.float32))
    # .model is a plain Sequential over (batch, *input_shape)
    assert type(net.model) is Sequential and net.model.input_shape == ("batch", 2, 3)
    assert isinstance(net.model[0], Flatten) and isinstance(net.model[1], Dense)
    assert sorted(net.model.state_dict()) == ["1.weight"]


def test_identity_graph_and_layout_only_graph() -> None:
    net = check(make_model([helper.make_node("Identity", ["x"], ["y"])], ["N", 3]))
    assert len(net.model) == 1
    nodes = [helper.make_node("Transpose", ["x"], ["y"], perm=[0, 2, 1])]
    net = check(make_model(nodes, ["N", 2, 3]))
    assert layer_types(net) == ["Permute"] and net.output_shape == (3, 2)


def test_layers_in_the_result_are_ordinary_axiom_layers() -> None:
    nodes = [
        helper.make_node("Sub", ["x", "m"], ["a"]),
        helper.make_node("Reshape", ["a", "t"], ["b"]),
        helper.make_node("Conv", ["b", "w"], ["y"]),
    ]
    inits = {"m": f32(1), "t": np.array([-1, 2, 3, 3], np.int64), "w": f32(2, 2, 1, 1)}
    net = check(make_model(nodes, ["N", 18], inits))
    kinds = (Affine, Reshape, Permute, Conv2d, Permute)
    assert all(isinstance(layer, k) for layer, k in zip(net.model, kinds, strict=True))


def test_shape_of_an_earlier_tensor_and_size() -> None:
    nodes = [
        helper.make_node("Shape", ["x"], ["s"]),  # the input's shape, read after x is consumed
        helper.make_node("Conv", ["x", "w"], ["c"]),
        helper.make_node("Slice", ["s", "zero", "one"], ["n"]),
        helper.make_node("Concat", ["n", "minus1"], ["target"], axis=0),
        helper.make_node("Reshape", ["c", "target"], ["y"]),
    ]
    inits = {
        "w": f32(3, 2, 1, 1),
        "zero": np.array([0], np.int64),
        "one": np.array([1], np.int64),
        "minus1": np.array([-1], np.int64),
    }
    net = check(make_model(nodes, ["N", 2, 3, 3], inits, output_dims=["N", 27]))
    assert net.output_shape == (27,)
    # a symbolic batch size used as a weight is refused
    nodes = [helper.make_node("Size", ["x"], ["n"]), helper.make_node("Cast", ["n"], ["nf"], to=TensorProto.FLOAT)]
    nodes.append(helper.make_node("Mul", ["x", "nf"], ["y"], name="scale_by_batch"))
    with pytest.raises(UnsupportedOnnxError, match="'scale_by_batch'.*symbolic batch size"):
        from_onnx(make_model(nodes, ["N", 3]))


def test_squeeze_of_a_fixed_batch_of_one() -> None:
    nodes = [helper.make_node("Relu", ["x"], ["r"]), helper.make_node("Squeeze", ["r"], ["y"])]  # no axes
    net = check(make_model(nodes, [1, 3, 1, 2], opset=11))
    assert net.output_shape == (3, 2) and not net.output_batched
    assert net(f32(3, 1, 2)).shape == (3, 2)  # one example (the input without its batch axis)


def test_a_fixed_batch_retry_that_fails_reports_the_batch_problem() -> None:
    nodes = [
        helper.make_node("Gemm", ["x", "B"], ["h"], transA=1, name="gemm_t"),
        helper.make_node("Erf", ["h"], ["y"]),  # the retry without a batch axis fails here
    ]
    inits = {"B": f32(1, 3)}
    model = make_model(nodes, [1, 4], inits)
    with pytest.raises(UnsupportedOnnxError, match=r"'gemm_t' \(Gemm, opset 13\).*transA=1"):
        from_onnx(model)


def test_more_mappings() -> None:
    # opset 18 Pad with an axes input, before a Conv
    nodes = [
        helper.make_node("Pad", ["x", "pads", "", "axes"], ["p"]),
        helper.make_node("Conv", ["p", "w"], ["y"]),
    ]
    inits = {"pads": np.array([1, 0, 2, 1], np.int64), "axes": np.array([2, 3], np.int64), "w": f32(2, 3, 2, 2)}
    net = check(make_model(nodes, ["N", 3, 4, 4], inits, opset=18))
    assert net.model[1].padding == ((1, 2), (0, 1))
    # constants with extra leading 1s, Cast to the same type, Clip as ReLU, Constant value_floats
    nodes = [
        helper.make_node("Constant", [], ["k"], value_floats=[1.0, -2.0, 3.0]),
        helper.make_node("Mul", ["x", "k"], ["a"]),
        helper.make_node("Add", ["a", "big"], ["b"]),
        helper.make_node("Cast", ["b"], ["c"], to=TensorProto.FLOAT),
        helper.make_node("Clip", ["c", "lo"], ["y"]),
    ]
    net = check(make_model(nodes, [1, 3], {"big": f32(1, 1, 1, 3), "lo": np.array(0.0, np.float32)}))
    # the rank-4 constant moves ONNX's batch axis (the result is (1, 1, 1, 3)): one example, no batch axis
    assert layer_types(net) == ["Affine", "Reshape", "Affine", "ReLU"]
    assert not net.input_batched and net.output_shape == (1, 1, 1, 3)
    with pytest.raises(UnsupportedOnnxError, match=r"adds axes before the batch axis"):
        from_onnx(make_model(nodes, ["N", 3], {"big": f32(1, 1, 1, 3), "lo": np.array(0.0, np.float32)}))


ERROR_CASES = {
    "cast to int": (
        [
            helper.make_node("Cast", ["x"], ["i"], to=TensorProto.INT64, name="n"),
            helper.make_node("Cast", ["i"], ["y"], to=TensorProto.FLOAT),
        ],
        ["N", 3],
        {},
        r"'n' \(Cast, opset 13\): Cast to INT64",
    ),
    "clip range": (
        [helper.make_node("Clip", ["x", "lo", "hi"], ["y"], name="n")],
        ["N", 3],
        {"lo": np.array(-1.0, np.float32), "hi": np.array(1.0, np.float32)},
        r"Clip to \[-1.0, 1.0\]",
    ),
    "matmul rank 3": (
        [helper.make_node("MatMul", ["x", "W"], ["y"], name="n")],
        ["N", 2, 3],
        {"W": f32(3, 4)},
        r"'n' \(MatMul, opset 13\): MatMul on a tensor of shape \['batch', 2, 3\]",
    ),
    "conv1d": (
        [helper.make_node("Conv", ["x", "W"], ["y"], name="n")],
        ["N", 2, 7],
        {"W": f32(4, 2, 3)},
        r"'n' \(Conv, opset 13\): expects an \(N, C, H, W\) tensor",
    ),
    "transpose batch": (
        [helper.make_node("Transpose", ["x"], ["y"], perm=[1, 0], name="n")],
        ["N", 3],
        {},
        r"'n' \(Transpose, opset 13\): Transpose with perm \[1, 0\] moves the batch axis",
    ),
    "gemm constant A": (
        [helper.make_node("Gemm", ["A", "x"], ["y"], name="n")],
        ["N", 3],
        {"A": f32(2, 5)},
        r"'n' \(Gemm, opset 13\): Gemm with a constant A",
    ),
    "pad reflect": (
        [
            helper.make_node("Pad", ["x", "pads"], ["p"], mode="reflect", name="n"),
            helper.make_node("Relu", ["p"], ["y"]),
        ],
        ["N", 2, 4, 4],
        {"pads": np.array([0, 0, 1, 1, 0, 0, 1, 1], np.int64)},
        r"'n' \(Pad, opset 13\): Pad mode='reflect'",
    ),
    "bad pool pads": (
        [helper.make_node("AveragePool", ["x"], ["y"], kernel_shape=[3, 3], pads=[2, 2, 2, 2], name="n")],
        ["N", 2, 4, 4],
        {},
        r"at most half the kernel",
    ),
    "weight computed": (
        [helper.make_node("Relu", ["x"], ["r"]), helper.make_node("Conv", ["r", "r"], ["y"], name="n")],
        [1, 1, 3, 3],
        {},
        r"'n' \(Conv, opset 13\): its weight W 'r' must be a constant",
    ),
}


@pytest.mark.parametrize("case", list(ERROR_CASES), ids=list(ERROR_CASES))
def test_errors_name_the_node(case: str) -> None:
    nodes, dims, inits, pattern = ERROR_CASES[case]
    with pytest.raises(UnsupportedOnnxError, match=pattern):
        from_onnx(make_model(nodes, dims, inits))


def test_graph_level_errors() -> None:
    x = helper.make_tensor_value_info("x", TensorProto.FLOAT, ["N", 3])
    z = helper.make_tensor_value_info("z", TensorProto.FLOAT, ["N", 3])
    y = helper.make_tensor_value_info("y", TensorProto.FLOAT, ["N", 3])
    two_in = helper.make_graph([helper.make_node("Relu", ["x"], ["y"])], "g", [x, z], [y])
    model = helper.make_model(two_in, opset_imports=[helper.make_opsetid("", 13)])
    with pytest.raises(UnsupportedOnnxError, match=r"2 inputs \['x', 'z'\]"):
        from_onnx(model)
    assert from_onnx(model, input_name="x").input_name == "x"  # z is unused
    two_out = helper.make_graph(
        [helper.make_node("Relu", ["x"], ["y"]), helper.make_node("Neg", ["x"], ["z"])], "g", [x], [y, z]
    )
    with pytest.raises(UnsupportedOnnxError, match=r"2 outputs \['y', 'z'\]"):
        from_onnx(helper.make_model(two_out, opset_imports=[helper.make_opsetid("", 13)]))
    wrong = helper.make_graph(
        [helper.make_node("Relu", ["x"], ["y"])],
        "g",
        [x],
        [helper.make_tensor_value_info("y", TensorProto.FLOAT, ["N", 4])],
    )
    with pytest.warns(UserWarning, match="declares output 'y' with shape"):
        from_onnx(helper.make_model(wrong, opset_imports=[helper.make_opsetid("", 13)]))


def test_import_leaves_the_global_random_state_alone() -> None:
    from axiom import manual_seed
    from axiom.nn import init

    model = make_model([helper.make_node("Gemm", ["x", "W"], ["y"])], ["N", 3], {"W": f32(3, 2)})
    manual_seed(7)
    expected = init.generator().random(3)
    manual_seed(7)
    from_onnx(model)
    np.testing.assert_array_equal(init.generator().random(3), expected)
