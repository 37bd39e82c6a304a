"""Soundness of axiom.verify.bounds on random networks, input sets and specs (Hypothesis).

Every sampled point (box corners, centre, random points, sphere points for L2 balls) is pushed
through a float64 copy of the model with the model's own forward; its output (or ``C @ y``) must
lie inside ``[lower, upper]`` for IBP, CROWN and alpha-CROWN -- no tolerance. Per spec row CROWN
must be at least as tight as IBP and alpha-CROWN at least as tight as CROWN.
"""

from __future__ import annotations

import copy
import itertools
from fractions import Fraction

import numpy as np
import pytest
from hypothesis import assume, given
from hypothesis import strategies as st

from axiom import (
    Activation,
    Affine,
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
    Permute,
    Reshape,
    Residual,
    RMSNorm,
    Sequential,
    ShapeError,
    Softmax,
    manual_seed,
)
from axiom.backends.base import ACTIVATIONS
from axiom.verify import Box, BoxUnion, L2Ball, LinfBall
from axiom.verify.bounds import UnsupportedLayerError, compute_bounds, input_gradient, supported
from axiom.verify.bounds._graph import build_graph

ACTS = [a for a in ACTIVATIONS]
METHODS = ("ibp", "crown", "alpha-crown")


# -- helpers ----------------------------------------------------------------------------------------


def f64(model):
    return copy.deepcopy(model).to("float64")


def sample_points(input_set, rng: np.random.Generator, n: int = 300) -> np.ndarray:
    """Random points, the centre, box corners (all or a random subset) and, for L2 balls, sphere points."""
    box = input_set.to_box()
    d = box.lower.size
    if isinstance(input_set, L2Ball):
        pts = [input_set.sample(n, rng), input_set.project(input_set.center)[None]]
        dirs = rng.standard_normal((64, d))
        dirs /= np.linalg.norm(dirs, axis=1, keepdims=True)
        sphere = input_set.center.ravel() + input_set.eps * dirs
        pts.append(input_set.project(sphere.reshape(64, *input_set.center.shape)))
    else:
        pts = [input_set.sample(n, rng), box.center[None]]
        if d <= 8:
            bits = np.array(list(itertools.product([0, 1], repeat=d)), bool)
        else:
            bits = rng.integers(0, 2, (128, d)).astype(bool)
        corners = np.where(bits, box.upper.ravel(), box.lower.ravel()).reshape(-1, *box.lower.shape)
        pts.append(corners)
    return np.concatenate(pts)


def check_sound(model, input_set, C=None, rng=None, alpha_iterations=5):
    rng = rng or np.random.default_rng(0)
    xs = sample_points(input_set, rng)
    ys = f64(model)(xs).numpy().reshape(len(xs), -1)
    vals = ys if C is None else ys @ np.asarray(C, np.float64).T
    results = {}
    for method in METHODS:
        res = compute_bounds(model, input_set, method, C, alpha_iterations=alpha_iterations)
        lo, hi = res.lower.reshape(-1), res.upper.reshape(-1)
        assert lo.shape == vals.shape[1:]
        assert np.all(lo <= hi), (method, lo, hi)
        below = vals < lo
        above = vals > hi
        assert not below.any() and not above.any(), (
            f"{method}: unsound; worst lower violation {np.max(lo - vals)}, upper {np.max(vals - hi)}"
        )
        for name, nl, nu in res.layers:
            assert np.all(nl <= nu), (method, name)
        results[method] = (lo, hi)
    (il, iu), (cl, cu), (al, au) = results["ibp"], results["crown"], results["alpha-crown"]
    assert np.all(cl >= il) and np.all(cu <= iu), "CROWN looser than IBP"
    assert np.all(al >= cl) and np.all(au <= cu), "alpha-CROWN looser than CROWN"
    return results


def randomize_bn(bn: BatchNorm, rng: np.random.Generator) -> BatchNorm:
    c = bn.num_features
    bn.running_mean.data = rng.normal(0, 0.5, c).astype(np.float32)
    bn.running_var.data = rng.uniform(0.2, 2.0, c).astype(np.float32)
    bn.weight.data = rng.normal(1, 0.5, c).astype(np.float32)
    bn.bias.data = rng.normal(0, 0.3, c).astype(np.float32)
    return bn


def scale_weights(model, rng, lo=0.5, hi=2.0):
    for p in model.parameters():
        if p.data.ndim >= 2:
            p.data = (p.data * rng.uniform(lo, hi)).astype(p.data.dtype)
    return model


@st.composite
def input_sets(draw, shape):
    seed = draw(st.integers(0, 2**31 - 1))
    rng = np.random.default_rng(seed)
    center = rng.normal(0, 1, shape)
    eps = draw(st.sampled_from([0.0, 1e-6, 1e-3, 0.05, 0.3, 1.0, 3.0]))
    kind = draw(st.sampled_from(["box", "linf", "linf_clip", "l2", "l2_clip"]))
    if kind == "box":
        widths = rng.uniform(0, 2 * eps, shape) * (rng.random(shape) < 0.8)  # some dims degenerate
        return Box(center - widths / 2, center + widths / 2)
    clip = (center - 0.5 * eps, center + 2 * eps) if kind.endswith("clip") else None
    if kind.startswith("linf"):
        return LinfBall(center, eps, clip=clip)
    return L2Ball(center, eps, clip=clip)


@st.composite
def specs(draw, n_out):
    if not draw(st.booleans()):
        return None
    seed = draw(st.integers(0, 2**31 - 1))
    m = draw(st.integers(1, 4))
    return np.random.default_rng(seed).normal(size=(m, n_out))


# -- random MLP-like networks ------------------------------------------------------------------------


@st.composite
def mlp_models(draw):
    seed = draw(st.integers(0, 2**31 - 1))
    manual_seed(seed % 100000)
    rng = np.random.default_rng(seed)
    n = draw(st.sampled_from([2, 3, 4]))
    width = draw(st.sampled_from([4, 6]))
    layers = [Dense(n, width, draw(st.sampled_from(ACTS + [None])))]
    blocks = draw(
        st.lists(
            st.sampled_from(
                [
                    "dense",
                    "act",
                    "bn",
                    "affine",
                    "residual",
                    "parallel",
                    "layernorm",
                    "rmsnorm",
                    "softmax",
                    "logsoftmax",
                    "dropout",
                    "reshape_softmax",
                ]
            ),
            min_size=1,
            max_size=4,
        )
    )
    for b in blocks:
        act = draw(st.sampled_from(ACTS))
        if b == "dense":
            layers.append(Dense(width, width, draw(st.sampled_from(ACTS + [None]))))
        elif b == "act":
            alpha = draw(st.sampled_from([None, -0.5, 0.3, 2.0])) if act in ("leaky_relu", "elu") else None
            layers.append(Activation(act, alpha=alpha))
        elif b == "bn":
            layers.append(randomize_bn(BatchNorm(width), rng))
        elif b == "affine":
            layers.append(Affine(rng.normal(0, 1.5, width).astype(np.float32), rng.normal(0, 1, width)))
        elif b == "residual":
            layers.append(Residual(Dense(width, width, act), Dense(width, width)))
        elif b == "parallel":
            a = width // 2
            layers.append(Parallel(Dense(width, a, act), Sequential(Dense(width, width - a), Activation("tanh"))))
        elif b == "layernorm":
            ln = LayerNorm(width)
            ln.weight.data = rng.normal(1, 0.5, width).astype(np.float32)
            ln.bias.data = rng.normal(0, 0.5, width).astype(np.float32)
            layers.append(ln)
        elif b == "rmsnorm":
            layers.append(RMSNorm(width, eps=draw(st.sampled_from([None, 1e-3]))))
        elif b == "softmax":
            layers.append(Softmax())
        elif b == "logsoftmax":
            layers.append(LogSoftmax())
        elif b == "dropout":
            layers.append(Dropout(0.3))
        elif b == "reshape_softmax":
            layers += [Reshape((2, width // 2)), Softmax(axis=draw(st.sampled_from([1, 2, -1]))), Flatten()]
    layers.append(Dense(width, 3))
    return scale_weights(Sequential(*layers), rng), n


@given(data=st.data())
def test_random_mlp_bounds_are_sound(data):
    model, n = data.draw(mlp_models())
    input_set = data.draw(input_sets((n,)))
    C = data.draw(specs(3))
    check_sound(model, input_set, C)


# -- random conv networks ------------------------------------------------------------------------------


@st.composite
def conv_models(draw):
    seed = draw(st.integers(0, 2**31 - 1))
    manual_seed(seed % 100000)
    rng = np.random.default_rng(seed)
    h = draw(st.sampled_from([5, 6, 7]))
    cin = draw(st.sampled_from([1, 2]))
    f = draw(st.sampled_from([2, 4]))
    k = draw(st.sampled_from([1, 2, 3]))
    stride = draw(st.sampled_from([1, 2, (1, 2)]))
    padding = draw(st.sampled_from([0, 1, "same", ((0, 1), (1, 0))]))
    dilation = draw(st.sampled_from([1, 2]))
    groups = draw(st.sampled_from([1, cin]))
    act = draw(st.sampled_from(ACTS + [None]))
    layers = [Conv2d(cin, f, k, stride=stride, padding=padding, dilation=dilation, groups=groups, activation=act)]
    for b in draw(st.lists(st.sampled_from(["bn", "maxpool", "avgpool", "dwconv", "conv", "relu"]), max_size=3)):
        if b == "bn":
            layers.append(randomize_bn(BatchNorm(f), rng))
        elif b == "maxpool":
            pk = draw(st.sampled_from([1, 2, 3]))
            layers.append(
                MaxPool2d(
                    pk,
                    stride=draw(st.sampled_from([None, 1, 2])),
                    padding=draw(st.sampled_from([0, pk // 2])),
                    dilation=draw(st.sampled_from([1, 2])),
                )
            )
        elif b == "avgpool":
            pk = draw(st.sampled_from([2, 3]))
            layers.append(
                AvgPool2d(
                    pk,
                    stride=draw(st.sampled_from([None, 1])),
                    padding=draw(st.sampled_from([0, 1])),
                    count_include_pad=draw(st.booleans()),
                )
            )
        elif b == "dwconv":
            layers.append(
                DepthwiseConv2d(2, padding="same", depth_multiplier=1, activation=draw(st.sampled_from(ACTS)))
            )
        elif b == "conv":
            layers.append(Conv2d(f, f, 2, padding=1, groups=draw(st.sampled_from([1, 2])), activation="relu"))
        else:
            layers.append(Activation("relu"))
    tail = draw(st.sampled_from(["gap", "flatten", "permute"]))
    if tail == "gap":
        layers += [GlobalAvgPool(), Dense(f, 3)]
    elif tail == "flatten":
        layers += [Flatten(), Dense(3)]
    else:
        layers += [Permute((2, 0, 1)), Flatten(), Dense(3)]
    try:
        model = Sequential(*layers, input_shape=(None, h, h, cin))
        build_graph(model, (h, h, cin))
    except (ShapeError, ValueError, UnsupportedLayerError):  # e.g. a pooling window entirely in the padding
        assume(False)
    return scale_weights(model, rng), (h, h, cin)


@given(data=st.data())
def test_random_conv_bounds_are_sound(data):
    model, shape = data.draw(conv_models())
    input_set = data.draw(input_sets(shape))
    C = data.draw(specs(3))
    check_sound(model, input_set, C)


# -- hand-picked cases --------------------------------------------------------------------------------


def test_box_union_and_layers_report():
    manual_seed(1)
    model = Sequential(Dense(2, 5, "relu"), Dense(5, 2))
    u = BoxUnion([Box([0, 0], [0.5, 0.5]), Box([2, 2], [2.5, 3])])
    res = compute_bounds(model, u, "crown")
    xs = np.concatenate([b.sample(500, np.random.default_rng(0)) for b in u.boxes()])
    ys = f64(model)(xs).numpy()
    assert np.all(ys >= res.lower) and np.all(ys <= res.upper)
    assert [name for name, _, _ in res.layers] == ["1 Dense", "1 Dense/relu", "2 Dense"]
    assert res.layers[0][1].shape == (5,) and res.time_s >= 0


def test_nested_residual_parallel_with_maxpool():
    manual_seed(3)
    rng = np.random.default_rng(3)
    block = Residual(Conv2d(2, 2, 3, padding=1, activation="relu"), Conv2d(2, 2, 1))
    model = Sequential(
        Conv2d(1, 2, 2, activation="tanh"),
        block,
        Parallel(MaxPool2d(2, stride=1), AvgPool2d(2, stride=1), axis=-1),
        Flatten(),
        Dense(3),
        input_shape=(None, 6, 6, 1),
    )
    scale_weights(model, rng)
    for eps in (1e-4, 0.05, 0.5):
        check_sound(model, LinfBall(rng.normal(size=(6, 6, 1)), eps), C=rng.normal(size=(2, 3)))


def test_degenerate_box_contains_the_float64_point():
    manual_seed(5)
    rng = np.random.default_rng(5)
    model = Sequential(Dense(4, 8, "gelu"), BatchNorm(8), Dense(8, 8, "sigmoid"), LayerNorm(8), Dense(8, 3), Softmax())
    randomize_bn(model[1], rng)
    x = rng.normal(size=4)
    y = f64(model)(x[None]).numpy()[0]
    for method in METHODS:
        res = compute_bounds(model, Box(x, x), method)
        assert np.all(res.lower <= y) and np.all(y <= res.upper)
        assert np.all(res.upper - res.lower < 1e-6), res.upper - res.lower


def test_rounding_error_is_accounted_for():
    """``1e16 x0 + x1 - 1e16 x2`` at (1, 1, 1) is exactly 1; naive float64 gives 0."""
    d = Dense(3, 1, dtype="float64")
    d.weight.data = np.array([[1e16], [1.0], [-1e16]])
    d.bias.data = np.zeros(1)
    x = np.ones(3)
    naive = float(x @ d.weight.data[:, 0])
    assert naive == 0.0  # float64 loses the 1
    exact = sum(Fraction(float(w)) for w in d.weight.data[:, 0])
    assert exact == 1
    for method in METHODS:
        for model in (d, Sequential(d, Activation("relu"))):
            res = compute_bounds(model, Box(x, x), method)
            assert Fraction(float(res.lower[0])) <= exact <= Fraction(float(res.upper[0]))
        res = compute_bounds(Sequential(Dense(3, 3, "relu"), d), Box(x - 1e-3, x + 1e-3), method, C=[[1.0]])
        assert res.lower[0] <= res.upper[0]


def test_crown_spec_folding_is_tighter_than_bounding_outputs():
    manual_seed(7)
    model = Sequential(Dense(3, 20, "relu"), Dense(20, 20, "relu"), Dense(20, 4))
    box = Box(-np.ones(3), np.ones(3))
    C = np.array([[1.0, -1.0, 0, 0], [0, 0, 1.0, -1.0]])
    res = compute_bounds(model, box, "crown", C)
    plain = compute_bounds(model, box, "crown")
    naive_lo = np.maximum(C, 0) @ plain.lower + np.minimum(C, 0) @ plain.upper
    assert np.all(res.lower >= naive_lo - 1e-12) and np.any(res.lower > naive_lo + 1e-6)


def test_input_gradient_matches_finite_differences_and_torch():
    torch = pytest.importorskip("torch")
    manual_seed(11)
    rng = np.random.default_rng(11)
    model = Sequential(
        Conv2d(1, 3, 2, padding=1, activation="gelu"),
        BatchNorm(3),
        MaxPool2d(2),
        Flatten(),
        Dense(3, activation="tanh"),
        Residual(Dense(3, 3, "softplus")),
        LayerNorm(3),
        Dense(4),
        LogSoftmax(),
        input_shape=(None, 4, 4, 1),
    )
    randomize_bn(model[1], rng)
    x = rng.normal(size=(3, 4, 4, 1))
    C = rng.normal(size=(2, 4))
    values, grads = input_gradient(model, x, C)
    ref = f64(model)(x).numpy() @ C.T
    np.testing.assert_allclose(values, ref, rtol=1e-12, atol=1e-12)
    assert grads.shape == (3, 2, 4, 4, 1)
    # finite differences (central, float64)
    h = 1e-6
    for b in range(3):
        for idx in [(0, 0, 0), (1, 2, 0), (3, 3, 0), (2, 1, 0)]:
            xp, xm = x.copy(), x.copy()
            xp[(b, *idx)] += h
            xm[(b, *idx)] -= h
            fd = (f64(model)(xp).numpy()[b] @ C.T - f64(model)(xm).numpy()[b] @ C.T) / (2 * h)
            np.testing.assert_allclose(grads[(b, slice(None), *idx)], fd, rtol=1e-5, atol=1e-7)
    # torch autograd on an MLP with the same weights
    mlp = Sequential(Dense(4, 6, "silu"), Dense(6, 6, "mish"), Dense(6, 3), Softmax())
    xs = rng.normal(size=(5, 4))
    C2 = rng.normal(size=(3, 3))
    v, g = input_gradient(mlp, xs, C2)
    t = torch.tensor(xs, requires_grad=True, dtype=torch.float64)
    w = [torch.tensor(p.numpy().astype(np.float64)) for p in mlp.parameters()]
    h1 = torch.nn.functional.silu(t @ w[0] + w[1])
    h2 = torch.nn.functional.mish(h1 @ w[2] + w[3])
    out = torch.softmax(h2 @ w[4] + w[5], dim=-1) @ torch.tensor(C2).T
    np.testing.assert_allclose(v, out.detach().numpy(), rtol=1e-12, atol=1e-14)
    for i in range(3):
        (gi,) = torch.autograd.grad(out[:, i].sum(), t, retain_graph=True)
        np.testing.assert_allclose(g[:, i], gi.numpy(), rtol=1e-10, atol=1e-12)


def test_unsupported_layers_are_named():
    model = Sequential(Embedding(10, 4), MultiHeadAttention(4, 2))
    assert supported(model) == ["layer 1 (Embedding)", "layer 2 (MultiHeadAttention)"]
    with pytest.raises(UnsupportedLayerError, match=r"layer 3 \(MultiHeadAttention\)"):
        compute_bounds(Sequential(Dense(4, 4), Reshape((1, 4)), MultiHeadAttention(4, 2)), Box(0, 1, shape=(4,)))
    assert issubclass(UnsupportedLayerError, NotImplementedError)
    bn = BatchNorm(4, track_running_stats=False)
    with pytest.raises(UnsupportedLayerError, match="running statistics"):
        compute_bounds(Sequential(Dense(4, 4), bn), Box(0, 1, shape=(4,)))
    assert supported(Sequential(Dense(4, 4), bn)) == ["layer 2 (BatchNorm)"]
    assert supported(Sequential(Dense(4, 4, "relu"), Residual(Dense(4, 4)), Parallel(Dense(4, 2), Dense(4, 2)))) == []


def test_argument_errors():
    model = Sequential(Dense(2, 3))
    with pytest.raises(ValueError, match="method"):
        compute_bounds(model, Box(0, 1, shape=(2,)), "magic")
    with pytest.raises(ValueError, match=r"\(m, 3\)"):
        compute_bounds(model, Box(0, 1, shape=(2,)), C=np.ones((2, 4)))
    with pytest.raises(ValueError, match="bounded"):
        compute_bounds(model, Box([0, -np.inf], [1, 1]))


def test_alpha_crown_gradient_matches_finite_differences():
    """The numpy reverse pass over the back-substitution gives d(bound)/d(alpha) exactly."""
    from axiom.verify.bounds._engine import Analysis, domains
    from axiom.verify.bounds._ops import ActivationOp

    manual_seed(0)
    model = Sequential(
        Conv2d(1, 3, 2, activation="relu"),
        MaxPool2d(2, stride=1),
        Conv2d(3, 2, 2, padding=1, activation=Activation("leaky_relu", alpha=0.2)),
        Flatten(),
        Dense(6, activation="relu"),
        Residual(Dense(6, 6, "relu")),
        Dense(3),
        input_shape=(None, 5, 5, 1),
    )
    rng = np.random.default_rng(0)
    graph = build_graph(model, (5, 5, 1))
    an = Analysis(graph, domains(LinfBall(rng.normal(size=(5, 5, 1)), 0.3))[0])
    an.ibp_pass()
    an.crown_pass(list(an.bounds), True)
    C = rng.normal(size=(2, 3))
    lam = np.concatenate([C, -C])
    tape: dict = {}
    an.backsub(graph.output, lam, tape=tape)
    alphas = {}
    for k in tape:
        op = graph.nodes[k].op
        if isinstance(op, ActivationOp) and op.relu_like and an._state(k)[0].free_idx.size:
            alphas[k] = rng.uniform(0.2, 0.8, (4, an._state(k)[0].free_idx.size))
    assert len(alphas) >= 2
    tape = {}
    an.backsub(graph.output, lam, alphas, tape)
    grads = an._bound_grads(tape, alphas)
    checked = 0
    for k, g in grads.items():
        for j in range(min(3, g.shape[1])):
            for row in range(4):
                plus = {kk: v.copy() for kk, v in alphas.items()}
                minus = {kk: v.copy() for kk, v in alphas.items()}
                plus[k][row, j] += 1e-6
                minus[k][row, j] -= 1e-6
                fd = (an.backsub(graph.output, lam, plus)[row] - an.backsub(graph.output, lam, minus)[row]) / 2e-6
                assert g[row, j] == pytest.approx(fd, rel=1e-4, abs=1e-9)
                checked += g[row, j] != 0
    assert checked > 0


# -- exact-arithmetic checks: rounding in our own float64 computation must never leak ----------------


def _exact_forward(layers, x):
    """Exact rational forward of Dense/Affine/ReLU/LeakyReLU/identity/Residual/Parallel (Fractions)."""
    for layer in layers:
        if isinstance(layer, Residual):
            x = [a + b for a, b in zip(x, _exact_forward(layer.layers, x))]
            continue
        if isinstance(layer, Parallel):
            x = [v for branch in layer.branches for v in _exact_forward([branch], x)]
            continue
        if isinstance(layer, Sequential):
            x = _exact_forward(layer.layers, x)
            continue
        if isinstance(layer, Dense):
            W = layer.weight.numpy()
            b = layer.bias.numpy()
            x = [
                sum((Fraction(float(W[i, j])) * x[i] for i in range(len(x))), Fraction(float(b[j])))
                for j in range(W.shape[1])
            ]
        elif isinstance(layer, Affine):
            s = np.broadcast_to(layer.scale.numpy(), (len(x),))
            t = np.broadcast_to(layer.shift.numpy(), (len(x),))
            x = [v * Fraction(float(s[i])) + Fraction(float(t[i])) for i, v in enumerate(x)]
        act = layer.fn if isinstance(layer, Activation) else getattr(layer, "activation", None)
        if act is not None:
            if act.kind == "relu":
                x = [max(v, Fraction(0)) for v in x]
            elif act.kind == "leaky_relu":
                a = Fraction(act.alpha)
                x = [v if v >= 0 else a * v for v in x]
    return x


@st.composite
def wild_mlps(draw):
    """Small nets whose weights span 16 orders of magnitude (catastrophic cancellation everywhere)."""
    seed = draw(st.integers(0, 2**31 - 1))
    rng = np.random.default_rng(seed)
    dtype = draw(st.sampled_from(["float32", "float64"]))

    def wild(shape):
        return (rng.choice([-1, 1], shape) * 10.0 ** rng.uniform(-8, 8, shape)).astype(dtype)

    def dense(i, o, act):
        d = Dense(i, o, act, dtype=dtype)
        d.weight.data, d.bias.data = wild((i, o)), wild((o,))
        return d

    n, w = draw(st.integers(1, 3)), draw(st.integers(2, 5))
    acts = ["relu", "leaky_relu", "identity", None]
    layers = [dense(n, w, draw(st.sampled_from(acts)))]
    for _ in range(draw(st.integers(1, 3))):
        kind = draw(st.sampled_from(["dense", "residual", "parallel", "affine", "leaky"]))
        if kind == "dense":
            layers.append(dense(w, w, draw(st.sampled_from(acts))))
        elif kind == "residual":
            layers.append(Residual(dense(w, w, "relu"), dense(w, w, None)))
        elif kind == "parallel":
            layers.append(Parallel(dense(w, 1, "relu"), dense(w, w - 1, None)))
        elif kind == "affine":
            layers.append(Affine(wild((w,)), wild((w,)), dtype=dtype))
        else:
            layers.append(Activation("leaky_relu", alpha=float(rng.choice([0.01, -0.3, 1.7]))))
    layers.append(dense(w, 2, None))
    return Sequential(*layers), n, rng


@given(data=st.data())
def test_bounds_contain_the_exact_rational_output(data):
    model, n, rng = data.draw(wild_mlps())
    x = (rng.choice([-1, 1], n) * 10.0 ** rng.uniform(-3, 3, n)).astype(np.float64)
    width = data.draw(st.sampled_from([0.0, 1e-12, 1e-6, 1e-2]))
    box = Box(x - width * np.abs(x), x + width * np.abs(x))
    points = [box.lower, box.upper, box.center]
    C = rng.normal(size=(2, 2))
    for method in METHODS:
        plain = compute_bounds(model, box, method, alpha_iterations=3)
        spec = compute_bounds(model, box, method, C, alpha_iterations=3)
        for p in points:
            y = _exact_forward(model.layers, [Fraction(float(v)) for v in p])
            for j in range(2):
                assert Fraction(float(plain.lower[j])) <= y[j] <= Fraction(float(plain.upper[j])), (method, j)
            for i in range(2):
                cy = sum(Fraction(float(C[i, j])) * y[j] for j in range(2))
                assert Fraction(float(spec.lower[i])) <= cy <= Fraction(float(spec.upper[i])), (method, i)


@pytest.mark.parametrize("middle", [None, "relu", "leaky_relu"])
@pytest.mark.parametrize("big", [1e16, 3e17, 1e20])
def test_cancellation_inside_back_substitution_is_accounted_for(middle, big):
    """``C W2 W1`` with ``W1 = [M, 1, -M]`` and ``W2 = 1``: float64 gets 0 (or 2^k), the exact value is 1."""
    d1 = Dense(1, 3, middle, dtype="float64")
    d1.weight.data = np.array([[big, 1.0, -big]])
    d1.bias.data = np.array([0.0, 0.0, 0.0]) if middle is None else np.array([big, big, 3 * big])
    d2 = Dense(3, 1, dtype="float64")
    d2.weight.data = np.ones((3, 1))
    d2.bias.data = np.zeros(1) if middle is None else np.array([-5 * big])
    model = Sequential(d1, d2)
    for x in (np.ones(1), np.array([0.5])):
        exact = _exact_forward(model.layers, [Fraction(float(x[0]))])[0]
        for method in METHODS:
            for C in (None, [[1.0]], [[-2.0]]):
                res = compute_bounds(model, Box(x, x), method, C)
                scale = Fraction(1) if C is None else Fraction(C[0][0])
                lo, hi = Fraction(float(res.lower[0])), Fraction(float(res.upper[0]))
                assert lo <= scale * exact <= hi, (method, C, float(lo), float(hi), float(exact))


@given(data=st.data())
def test_input_gradient_on_random_networks(data):
    """Values equal the model's own float64 forward; gradients match central differences away from kinks."""
    model, shape = data.draw(st.one_of(mlp_models().map(lambda t: (t[0], (t[1],))), conv_models()))
    rng = np.random.default_rng(data.draw(st.integers(0, 1000)))
    x = rng.normal(size=(2, *shape))
    C = rng.normal(size=(2, 3))
    values, grads = input_gradient(model, x, C)
    np.testing.assert_allclose(values, f64(model)(x).numpy() @ C.T, rtol=1e-9, atol=1e-9)
    flat = x.reshape(2, -1)
    for i in rng.choice(flat.shape[1], size=min(3, flat.shape[1]), replace=False):
        fds = []
        for h in (1e-5, 1e-6):
            xp, xm = flat.copy(), flat.copy()
            xp[:, i] += h
            xm[:, i] -= h
            yp = f64(model)(xp.reshape(x.shape)).numpy() @ C.T
            ym = f64(model)(xm.reshape(x.shape)).numpy() @ C.T
            fds.append((yp - ym) / (2 * h))
        smooth = np.all(np.isclose(fds[0], fds[1], rtol=1e-4, atol=1e-6), axis=1)  # no kink within h
        g = grads.reshape(2, 2, -1)[:, :, i]
        np.testing.assert_allclose(g[smooth], fds[1][smooth], rtol=1e-3, atol=1e-5)
