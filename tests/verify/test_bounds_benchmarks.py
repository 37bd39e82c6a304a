"""axiom.verify.bounds on the VNN-COMP 2021 networks in /work/shared/benchmarks (tightness anchors).

The models are built by hand from the ONNX initializers (read with the ``onnx`` package), so
these tests do not depend on the ONNX importer. Reference numbers: notes/verification.md §3.2/§3.3.
"""

from __future__ import annotations

import copy
import re
from pathlib import Path

import numpy as np
import pytest

from axiom import AvgPool2d, Conv2d, Dense, Flatten, MaxPool2d, Permute, Sequential, relu
from axiom.nn import Affine
from axiom.verify import Box
from axiom.verify.bounds import compute_bounds

onnx = pytest.importorskip("onnx")
from onnx import numpy_helper  # noqa: E402

BENCH = Path("/work/shared/benchmarks")
pytestmark = pytest.mark.skipif(not BENCH.exists(), reason="benchmark folder not available")


def _init(path: Path) -> dict[str, np.ndarray]:
    return {t.name: numpy_helper.to_array(t) for t in onnx.load(str(path)).graph.initializer}


def _dense(w_in_out: np.ndarray, b: np.ndarray, act=None) -> Dense:
    d = Dense(w_in_out.shape[0], w_in_out.shape[1], act)
    d.weight.data = np.ascontiguousarray(w_in_out, np.float32)
    d.bias.data = np.asarray(b, np.float32)
    return d


def acas_model(name: str = "ACASXU_run2a_1_1_batch_2000.onnx") -> Sequential:
    """Sub(AvgImg) -> Flatten -> 6 x (MatMul, Add, Relu) -> MatMul, Add."""
    path = BENCH / "acasxu" / name
    init = _init(path)
    nodes = onnx.load(str(path)).graph.node
    mats = [n.input[1] for n in nodes if n.op_type == "MatMul"]
    adds = [n.input[1] for n in nodes if n.op_type == "Add"]
    layers = [Affine(scale=np.ones(5, np.float32), shift=-init["input_AvgImg"].reshape(5))]
    for i, (w, b) in enumerate(zip(mats, adds)):
        layers.append(_dense(init[w], init[b], relu if i < len(mats) - 1 else None))
    return Sequential(*layers)


def mnist_model() -> Sequential:
    """Flatten -> Gemm(transB) -> Relu -> Gemm -> Relu -> Gemm."""
    init = _init(BENCH / "mnistfc" / "mnist-net_256x2.onnx")
    ws = [(init[f"layers.{i}.weight"], init[f"layers.{i}.bias"]) for i in (0, 2, 4)]
    return Sequential(*[_dense(w.T, b, relu if i < 2 else None) for i, (w, b) in enumerate(ws)])


def verivital_model(kind: str) -> Sequential:
    """NCHW Conv(2x2) -> Relu -> {Max,Average}Pool(4) -> Flatten (NCHW order) -> Gemm, as NHWC layers."""
    init = _init(BENCH / "verivital" / f"Convnet_{kind}.onnx")
    conv = Conv2d(1, 32, 2, activation=relu)
    conv.weight.data = init["conv1.0.weight"].transpose(2, 3, 1, 0).copy()
    conv.bias.data = init["conv1.0.bias"].copy()
    pool = MaxPool2d(4) if kind == "maxpool" else AvgPool2d(4)
    out = _dense(init["out.weight"].T, init["out.bias"])
    return Sequential(conv, pool, Permute((2, 0, 1)), Flatten(), out, input_shape=(None, 28, 28, 1))


def vnnlib_box(path: Path, n: int) -> tuple[np.ndarray, np.ndarray, int | None]:
    text = path.read_text()
    lo, hi = np.zeros(n), np.zeros(n)
    for m in re.finditer(r"\(assert \((<=|>=) X_(\d+) ([-+\d.eE]+)\)\)", text):
        (hi if m.group(1) == "<=" else lo)[int(m.group(2))] = float(m.group(3))
    label = re.search(r"label: (\d+)", text)
    return lo, hi, None if label is None else int(label.group(1))


def margin_spec(label: int, n: int = 10) -> np.ndarray:
    """Rows ``y_label - y_j`` for j != label (robustness holds iff all are > 0)."""
    C = np.zeros((n - 1, n))
    for r, j in enumerate(j for j in range(n) if j != label):
        C[r, label], C[r, j] = 1.0, -1.0
    return C


ACAS_PROP1 = (np.array([0.6, -0.5, -0.5, 0.45, -0.5]), np.array([0.679857769, 0.5, 0.5, 0.5, -0.45]))


def test_acas_crown_width_matches_the_sampled_width_on_a_tiny_box():
    """notes §3.2: N1,1 prop-1 box shrunk by 1e-4 -> IBP width 9.1e-4, CROWN 1.103e-6, sampled 1.077e-6."""
    model = acas_model()
    lo, hi = ACAS_PROP1
    c, r = (lo + hi) / 2, (hi - lo) / 2
    box = Box(c - 1e-4 * r, c + 1e-4 * r)
    xs = box.sample(20000, np.random.default_rng(0))
    ys = copy.deepcopy(model).to("float64")(xs).numpy()
    ibp = compute_bounds(model, box, "ibp")
    crown = compute_bounds(model, box, "crown")
    for res in (ibp, crown):
        assert np.all(res.lower <= ys.min(0)) and np.all(ys.max(0) <= res.upper)
    sampled = ys[:, 0].max() - ys[:, 0].min()
    crown_w = crown.upper[0] - crown.lower[0]
    assert 1.0e-6 < sampled <= crown_w < 1.12e-6, (sampled, crown_w)
    assert 8e-4 < ibp.upper[0] - ibp.lower[0] < 1e-3
    # Bigger boxes: CROWN stays far tighter than IBP (notes: frac 1e-2 -> IBP 8.49, CROWN 1.135e-4).
    box2 = Box(c - 1e-2 * r, c + 1e-2 * r)
    w_crown = np.ptp([compute_bounds(model, box2, "crown").lower[0], compute_bounds(model, box2, "crown").upper[0]])
    assert w_crown < 1.2e-4


def test_acas_full_property_box_all_methods_sound_and_ordered():
    model = acas_model("ACASXU_run2a_1_9_batch_2000.onnx")
    box = Box(*ACAS_PROP1)
    xs = np.concatenate([box.sample(5000, np.random.default_rng(1)), box.center[None]])
    ys = copy.deepcopy(model).to("float64")(xs).numpy()
    res = {m: compute_bounds(model, box, m, C=np.eye(5)) for m in ("ibp", "crown", "alpha-crown")}
    for r in res.values():
        assert np.all(r.lower <= ys.min(0)) and np.all(ys.max(0) <= r.upper)
    assert np.all(res["crown"].lower >= res["ibp"].lower) and np.all(res["alpha-crown"].lower >= res["crown"].lower)


def test_mnist_alpha_crown_strictly_improves_on_crown():
    """notes §3.3: 256x2 prop_0 eps 0.03: IBP worst margin -2.83, CROWN -0.94 (we get about -0.62)."""
    model = mnist_model()
    lo, hi, label = vnnlib_box(BENCH / "mnistfc" / "prop_0_0.03.vnnlib", 784)
    box = Box(lo, hi)
    C = margin_spec(label)
    ibp = compute_bounds(model, box, "ibp", C)
    crown = compute_bounds(model, box, "crown", C)
    alpha = compute_bounds(model, box, "alpha-crown", C)
    assert ibp.lower.min() == pytest.approx(-2.83, abs=0.01)
    assert crown.lower.min() > -0.95
    assert np.all(alpha.lower >= crown.lower) and np.all(crown.lower >= ibp.lower)
    assert alpha.lower.min() > crown.lower.min() + 0.1, (alpha.lower.min(), crown.lower.min())
    xs = box.sample(2000, np.random.default_rng(2))
    vals = copy.deepcopy(model).to("float64")(xs).numpy() @ C.T
    assert np.all(vals >= alpha.lower) and np.all(vals <= alpha.upper)


@pytest.mark.parametrize("kind,eps", [("maxpool", "0.004"), ("avgpool", "0.02")])
def test_verivital_conv_nets_crown_proves_robustness(kind: str, eps: str):
    model = verivital_model(kind)
    ort = pytest.importorskip("onnxruntime")
    sess = ort.InferenceSession(str(BENCH / "verivital" / f"Convnet_{kind}.onnx"))
    x = np.random.default_rng(0).random((2, 28, 28, 1)).astype(np.float32)
    ref = np.concatenate([sess.run(None, {"input": xi.transpose(2, 0, 1)[None]})[0] for xi in x])
    np.testing.assert_allclose(model(x).numpy(), ref, atol=1e-4)
    lo, hi, label = vnnlib_box(BENCH / "verivital" / "specs" / f"{kind}_specs" / f"prop_0_{eps}.vnnlib", 784)
    box = Box(lo.reshape(28, 28, 1), hi.reshape(28, 28, 1))
    C = margin_spec(label)
    ibp = compute_bounds(model, box, "ibp", C)
    crown = compute_bounds(model, box, "crown", C)
    assert crown.lower.min() > 0 and np.all(crown.lower >= ibp.lower)
    xs = box.sample(300, np.random.default_rng(3))
    vals = copy.deepcopy(model).to("float64")(xs).numpy() @ C.T
    assert np.all(vals >= crown.lower) and np.all(vals <= crown.upper)
