"""Exact SMT (Z3) verification: answers agree with sampling, attacks, exact enumeration and CROWN.

Every check can fail: a ``proven`` answer is attacked (dense sampling + PGD), a ``falsified``
one is replayed, 1-input networks are solved exactly by enumerating their linear regions with
fractions, and the encoding itself is evaluated at fixed inputs against the float64 model.
Networks stay tiny (<= 12 ReLUs) and every Z3 call has a timeout, so the file runs in about a
minute.
"""

from __future__ import annotations

import time
from fractions import Fraction

import numpy as np
import pytest
from hypothesis import HealthCheck, assume, given, settings
from hypothesis import strategies as st

from axiom import (
    Activation,
    Affine,
    AvgPool2d,
    BatchNorm,
    Conv2d,
    Dense,
    Flatten,
    GlobalAvgPool,
    MaxPool2d,
    Parallel,
    Permute,
    Reshape,
    Residual,
    Sequential,
    Softmax,
    manual_seed,
    relu,
    tanh,
)
from axiom.verify import (
    ArgmaxIs,
    Box,
    BoxUnion,
    L2Ball,
    LinearConstraints,
    LinfBall,
    LocalRobustness,
    OutputBounds,
    ValidProbabilities,
)
from axiom.verify.attack import search_counterexample
from axiom.verify.bounds import UnsupportedLayerError, compute_bounds
from axiom.verify.concrete import Replayer
from axiom.verify.properties import Clause
from axiom.verify.smt import encode_network, relu_layers, smt_check_domain, smt_verify, verify_smt

FAST = settings(max_examples=20, deadline=None, suppress_health_check=[HealthCheck.too_slow])
TIMEOUT = 8.0


# -- helpers --------------------------------------------------------------------------------------


def mlp(seed: int, n_in: int, widths: list[int], n_out: int = 1) -> Sequential:
    manual_seed(seed)
    sizes = [n_in, *widths]
    layers = [Dense(a, b, relu) for a, b in zip(sizes, sizes[1:])]
    return Sequential(*layers, Dense(sizes[-1], n_out))


def sampled_outputs(model, input_set, n: int = 20000, seed: int = 0) -> tuple[np.ndarray, np.ndarray]:
    box = input_set.to_box()
    xs = np.concatenate([input_set.sample(n, np.random.default_rng(seed)), box.lower[None], box.upper[None]])
    return xs, Replayer(model).outputs(xs)[1].reshape(len(xs), -1)


def assert_real_counterexample(model, input_set, cond, r) -> None:
    assert r.status == "falsified" and r.z3_status == "sat"
    x = r.counterexample
    assert x.dtype == np.float32 and input_set.contains(x)
    y32, y64 = Replayer(model).outputs(x[None])
    assert not cond.holds(y32)[0] and not cond.holds(y64)[0]
    np.testing.assert_array_equal(y32[0], r.output)
    assert r.info.get("encoding_gap", 0.0) < 1e-9


def assert_no_violation_found(model, input_set, cond) -> None:
    """Dense sampling and PGD (replayed in float32 and float64) find nothing."""
    _, y64 = sampled_outputs(model, input_set)
    assert cond.holds(y64).all(), "a sampled input violates a property Z3 proved"
    cex = search_counterexample(
        model, input_set, cond, np.random.default_rng(1), n_samples=2048, rounds=2, pgd_restarts=8, pgd_steps=50
    )
    assert cex is None, "PGD found a violation of a property Z3 proved"


def exact_range_1d(model, lo: float, hi: float) -> tuple[Fraction, Fraction]:
    """Exact (min, max) of a 1-input ReLU MLP's first output on [lo, hi], by enumerating its linear pieces.

    Between consecutive breakpoints every neuron is linear in x, so values at the breakpoints
    (computed in exact fractions from the float64 weights) determine the function; a ReLU adds
    the zero crossings of its inputs as new breakpoints.
    """
    xs = [Fraction(lo), Fraction(hi)]
    vals = [[x] for x in xs]  # values of the current layer at each breakpoint
    for layer in model.layers:
        W = [[Fraction(float(w)) for w in row] for row in np.asarray(layer.weight.data, np.float64)]
        b = [Fraction(float(v)) for v in np.asarray(layer.bias.data, np.float64)]
        vals = [[sum((v[i] * W[i][j] for i in range(len(v))), Fraction(0)) + b[j] for j in range(len(b))] for v in vals]
        if layer.activation is not None and layer.activation.kind == "relu":
            new_x, new_v = [xs[0]], [vals[0]]
            for k in range(len(xs) - 1):
                x0, x1, v0, v1 = xs[k], xs[k + 1], vals[k], vals[k + 1]
                cuts = sorted({v0[j] / (v0[j] - v1[j]) for j in range(len(v0)) if v0[j] * v1[j] < 0})
                for t in cuts:
                    new_x.append(x0 + t * (x1 - x0))
                    new_v.append([a + t * (c - a) for a, c in zip(v0, v1)])
                new_x.append(x1)
                new_v.append(v1)
            xs, vals = new_x, [[max(v, Fraction(0)) for v in row] for row in new_v]
    outs = [v[0] for v in vals]
    return min(outs), max(outs)


def crown_proves(model, input_set, clauses) -> bool:
    C = np.concatenate([c.C for c in clauses])
    d = np.concatenate([c.d for c in clauses])
    lower = compute_bounds(model, input_set, "crown", C=C).lower
    start = 0
    for c in clauses:
        rows = slice(start, start + len(c.d))
        if not np.max(lower[rows] - d[rows]) > 0:
            return False
        start += len(c.d)
    return True


def fixed_input_outputs(model, x: np.ndarray, prefix_bounds: bool) -> np.ndarray:
    """Outputs of the Z3 encoding with the input pinned to ``x`` (exact rationals), as floats."""
    eps = 1e-3 if prefix_bounds else 0.0
    enc = encode_network(model, Box(x - eps, x + eps), prefix_bounds=prefix_bounds)
    z3 = enc.z3
    s = z3.Solver(ctx=enc.ctx)
    s.set("timeout", 20000)
    s.add(*enc.constraints)
    for v, xi in zip(enc.inputs, x.ravel()):
        f = Fraction(float(xi))
        s.add(v == z3.RealVal(f"{f.numerator}/{f.denominator}", enc.ctx))
    assert s.check() == z3.sat, "the encoding (and its bounds) must admit every input of the set"
    m = s.model()
    return np.array([float(m.eval(y, model_completion=True).as_fraction()) for y in enc.outputs])


# -- (a) answers are never contradicted by sampling + PGD; counterexamples are real ---------------


@FAST
@given(
    seed=st.integers(0, 10_000),
    n_in=st.integers(2, 5),
    widths=st.sampled_from([[4], [6], [8], [10], [4, 4], [6, 4], [5, 3]]),
    frac=st.sampled_from([0.8, 0.97, 1.03, 1.3]),
)
def test_answers_agree_with_sampling_and_pgd(seed, n_in, widths, frac):
    model = mlp(seed, n_in, widths)
    box = Box(-1, 1, shape=(n_in,))
    _, y64 = sampled_outputs(model, box)
    hi = float(y64[:, 0].max())
    threshold = hi * frac if hi > 0 else hi / frac
    prop = OutputBounds(upper=threshold, over=box)
    r = smt_verify(model, prop, timeout=TIMEOUT)
    assert r.status in ("proven", "falsified", "unknown")
    if hi > threshold:
        assert r.status != "proven", "Z3 proved a property that a sample violates"
    if r.status == "proven":
        assert r.z3_status == "unsat"
        assert_no_violation_found(model, box, prop.condition)
    if r.status == "falsified":
        assert_real_counterexample(model, box, prop.condition, r)
    assert r.info["relus"] == sum(widths) and 0 <= r.info["unstable"] <= r.info["relus"]


@FAST
@given(seed=st.integers(0, 10_000), eps=st.sampled_from([0.01, 0.1, 0.5, 2.0]), clip=st.booleans())
def test_robustness_on_linf_balls(seed, eps, clip):
    model = mlp(seed, 3, [6], n_out=3)
    x0 = np.random.default_rng(seed).uniform(-0.5, 0.5, 3)
    prop = LocalRobustness(x0, eps, label=None, clip=(-0.6, 0.6) if clip else None)
    res = verify_smt(model, [prop], timeout=TIMEOUT).results[0]
    label = res.property.label
    ball = res.property.input_set
    assert res.method == "smt"
    if res.status == "proven":
        assert_no_violation_found(model, ball, ArgmaxIs(label))
    elif res.status == "falsified":
        x = res.counterexample
        assert ball.contains(x)
        y32, y64 = Replayer(model).outputs(x[None])
        assert not ArgmaxIs(label).holds(y32)[0]
        assert not ArgmaxIs(label).holds(y64)[0]


def test_box_union_and_clause_lists():
    model = mlp(3, 2, [6])
    union = BoxUnion([Box([-1, -1], [-0.5, -0.5]), Box([0.5, 0.5], [1.0, 1.0])])
    _, y64 = sampled_outputs(model, union)
    hi = float(y64[:, 0].max())
    unsafe_hi = [Clause(np.array([[-1.0]]), np.array([-(hi + 0.05 * abs(hi) + 0.05)]))]  # y >= above max
    r = smt_verify(model, union, unsafe_hi, timeout=TIMEOUT)
    assert r.status == "proven"
    unsafe_lo = [Clause(np.array([[-1.0]]), np.array([-(hi - 0.05 * abs(hi) - 0.05)]))]  # y >= below max
    r = smt_verify(model, union, unsafe_lo, timeout=TIMEOUT)
    assert r.status == "falsified" and union.contains(r.counterexample)
    assert r.output64[0] >= hi - 0.05 * abs(hi) - 0.05


# -- (b) agreement with an independent exact check -------------------------------------------------


@FAST
@given(seed=st.integers(0, 10_000), widths=st.sampled_from([[3], [6], [4, 4], [6, 3], [3, 3, 2]]))
def test_exact_on_one_input_networks(seed, widths):
    model = mlp(seed, 1, widths)
    lo, hi = -1.0, 1.0
    _, y_max = exact_range_1d(model, lo, hi)
    box = Box(lo, hi, shape=(1,))
    margin = Fraction(1, 1000) * (1 + abs(y_max))
    above = OutputBounds(upper=float(y_max + margin), over=box)  # holds: the exact max is below
    below = OutputBounds(upper=float(y_max - margin), over=box)  # violated by a margin
    r_above = smt_verify(model, above, timeout=TIMEOUT)
    r_below = smt_verify(model, below, timeout=TIMEOUT)
    assert r_above.status == "proven"
    assert_real_counterexample(model, box, below.condition, r_below)
    y_min, _ = exact_range_1d(model, lo, hi)
    low_side = OutputBounds(lower=float(y_min - margin), over=box)
    assert smt_verify(model, low_side, timeout=TIMEOUT).status == "proven"


def test_exact_enumeration_matches_dense_grid():
    """The independent oracle itself: its range contains a dense grid's range and is attained."""
    model = mlp(11, 1, [5, 4])
    y_min, y_max = exact_range_1d(model, -1.0, 1.0)
    grid = np.linspace(-1, 1, 200_001)[:, None]
    y = Replayer(model).outputs(grid)[1][:, 0]
    assert float(y_min) <= y.min() + 1e-9 and y.max() <= float(y_max) + 1e-9
    assert abs(y.max() - float(y_max)) < 1e-3 * (1 + abs(float(y_max)))


@settings(max_examples=6, deadline=None)
@given(seed=st.integers(0, 10_000))
def test_two_input_grid_with_lipschitz_margin(seed):
    model = mlp(seed, 2, [5])
    box = Box(-1, 1, shape=(2,))
    g = np.linspace(-1, 1, 401)
    grid = np.stack(np.meshgrid(g, g), -1).reshape(-1, 2)
    y = Replayer(model).outputs(grid)[1][:, 0]
    W1 = np.asarray(model[0].weight.data, np.float64)
    W2 = np.asarray(model[1].weight.data, np.float64)
    lip = np.abs(W2[:, 0]) @ np.linalg.norm(W1, axis=0)  # |grad y| <= sum_j |w2_j| ||w1_j||
    slack = lip * (g[1] - g[0]) * np.sqrt(2) / 2 + 1e-9  # farthest any point is from the grid
    holds = OutputBounds(upper=float(y.max() + slack + 1e-3), over=box)
    fails = OutputBounds(upper=float(y.max() - 1e-3 * (1 + abs(y.max()))), over=box)
    assert smt_verify(model, holds, timeout=TIMEOUT).status == "proven"
    assert_real_counterexample(model, box, fails.condition, smt_verify(model, fails, timeout=TIMEOUT))


# -- (c) CROWN proven => Z3 proven; (d) pre-fixing does not change answers -------------------------


@FAST
@given(
    seed=st.integers(0, 10_000),
    widths=st.sampled_from([[4], [6], [4, 4], [6, 3]]),
    eps=st.sampled_from([0.05, 0.2, 0.5]),
    frac=st.sampled_from([0.9, 1.02, 1.2, 2.0]),
)
def test_agrees_with_crown_and_prefixing_changes_nothing(seed, widths, eps, frac):
    model = mlp(seed, 3, widths, n_out=2)
    ball = LinfBall(np.random.default_rng(seed).uniform(-0.5, 0.5, 3), eps)
    _, y64 = sampled_outputs(model, ball)
    hi = float(y64[:, 0].max())
    threshold = hi * frac if hi > 0 else hi / frac
    prop = OutputBounds(upper=[threshold, np.inf], over=ball)
    clauses = prop.condition.unsafe_region(2)
    with_fix = smt_verify(model, prop, timeout=TIMEOUT)
    without = smt_verify(model, prop, timeout=TIMEOUT, prefix_bounds=False)
    if crown_proves(model, ball, clauses):
        assert with_fix.status == "proven" and without.status == "proven"
    if with_fix.status == "falsified" or without.status == "falsified":
        assert not crown_proves(model, ball, clauses)
    decided = {r.status for r in (with_fix, without) if r.status != "unknown"}
    assert len(decided) <= 1, f"pre-fixing changed the answer: {with_fix.status} vs {without.status}"
    assert without.info["unstable"] == without.info["relus"]  # nothing fixed without bounds
    assert with_fix.info["unstable"] + with_fix.info["fixed_active"] + with_fix.info["fixed_inactive"] == sum(widths)


def test_prefixing_fixes_stable_relus_on_a_small_ball():
    model = mlp(5, 3, [8, 8])
    r = smt_verify(model, OutputBounds(upper=1e3, over=LinfBall(np.zeros(3), 1e-3)), timeout=TIMEOUT)
    assert r.status == "proven" and r.info["relus"] == 16
    assert r.info["unstable"] < 4 and r.info["fixed_active"] + r.info["fixed_inactive"] > 12


# -- the encoding evaluates like the model (every supported layer), and bounds admit every point ---


def _arch(kind: str, rng: np.random.Generator) -> tuple[Sequential, tuple[int, ...]]:
    if kind == "conv_maxpool":
        m = Sequential(
            Conv2d(1, 2, 2, activation="relu"), MaxPool2d(2), Flatten(), Dense(8, 2), input_shape=(None, 5, 5, 1)
        )
        return m, (5, 5, 1)
    if kind == "conv_strided":
        m = Sequential(
            Conv2d(2, 4, 3, stride=2, padding=1, dilation=1, groups=2, activation="relu"),
            Conv2d(4, 2, 2, padding=1, dilation=2),
            Activation("leaky_relu", alpha=0.1),
            MaxPool2d(3, stride=1, padding=1),
            Permute((2, 0, 1)),
            Flatten(),
            Dense(2),
            input_shape=(None, 5, 5, 2),
        )
        return m, (5, 5, 2)
    if kind == "pool_bn":
        bn = BatchNorm(3)
        bn.running_mean.data = rng.normal(0, 0.5, 3).astype(np.float32)
        bn.running_var.data = rng.uniform(0.2, 2.0, 3).astype(np.float32)
        bn.weight.data = rng.normal(1, 0.5, 3).astype(np.float32)
        bn.bias.data = rng.normal(0, 0.3, 3).astype(np.float32)
        m = Sequential(
            Conv2d(1, 3, 2, padding="same"),
            bn,
            Activation("relu6"),
            AvgPool2d(2, stride=1, padding=1, count_include_pad=False),
            AvgPool2d(2),
            GlobalAvgPool(),
            Dense(2),
            input_shape=(None, 4, 4, 1),
        )
        return m, (4, 4, 1)
    if kind == "residual_parallel":
        m = Sequential(
            Dense(3, 4, relu),
            Residual(Dense(4, 4, relu), Dense(4, 4)),
            Parallel(Dense(4, 2, "hardsigmoid"), Dense(4, 3, relu)),
            Affine(np.array([1.5, -2.0, 0.5, 1.0, 3.0], np.float32), np.array([0.1, 0.0, -0.2, 0.3, 0.0], np.float32)),
            Reshape((5, 1)),
            Flatten(),
            Dense(2),
            input_shape=(None, 3),
        )
        return m, (3,)
    raise KeyError(kind)


@pytest.mark.parametrize("kind", ["conv_maxpool", "conv_strided", "pool_bn", "residual_parallel"])
def test_encoding_evaluates_like_the_model(kind):
    rng = np.random.default_rng(0)
    manual_seed(0)
    model, shape = _arch(kind, rng)
    for trial in range(2):
        x = rng.normal(0, 1.5, shape)
        y64 = Replayer(model).outputs(x[None])[1][0].ravel()
        for prefix in (False, True):
            y = fixed_input_outputs(model, x, prefix)
            np.testing.assert_allclose(y, y64, rtol=1e-9, atol=1e-9, err_msg=f"{kind} trial {trial} prefix={prefix}")


PWL = ["relu", "leaky_relu", "relu6", "hardsigmoid", None]


@st.composite
def conv_models(draw):
    seed = draw(st.integers(0, 2**31 - 1))
    manual_seed(seed % 100000)
    h = draw(st.sampled_from([4, 5, 6]))
    cin = draw(st.sampled_from([1, 2]))
    f = draw(st.sampled_from([2, 4]))
    layers = [
        Conv2d(
            cin,
            f,
            draw(st.sampled_from([1, 2, 3])),
            stride=draw(st.sampled_from([1, 2, (1, 2)])),
            padding=draw(st.sampled_from([0, 1, "same", ((0, 1), (1, 0))])),
            dilation=draw(st.sampled_from([1, 2])),
            groups=draw(st.sampled_from([1, cin])),
            activation=draw(st.sampled_from(PWL)),
        )
    ]
    for b in draw(st.lists(st.sampled_from(["maxpool", "avgpool", "conv", "act"]), max_size=2)):
        if b == "maxpool":
            k = draw(st.sampled_from([2, 3]))
            layers.append(MaxPool2d(k, stride=draw(st.sampled_from([None, 1])), padding=draw(st.sampled_from([0, 1]))))
        elif b == "avgpool":
            layers.append(
                AvgPool2d(2, stride=1, padding=draw(st.sampled_from([0, 1])), count_include_pad=draw(st.booleans()))
            )
        elif b == "conv":
            layers.append(Conv2d(f, f, 2, padding=1, groups=draw(st.sampled_from([1, 2])), activation="relu"))
        else:
            layers.append(Activation("leaky_relu", alpha=draw(st.sampled_from([0.1, -0.5, 2.0]))))
    tail = draw(st.sampled_from(["gap", "flatten", "permute"]))
    layers += {"gap": [GlobalAvgPool()], "flatten": [Flatten()], "permute": [Permute((2, 0, 1)), Flatten()]}[tail]
    layers.append(Dense(2))
    try:
        model = Sequential(*layers, input_shape=(None, h, h, cin))
        relu_layers(model)
    except (ValueError, UnsupportedLayerError):  # e.g. a window larger than the (padded) input
        assume(False)
    return model, (h, h, cin), seed


@settings(max_examples=25, deadline=None)
@given(case=conv_models())
def test_random_conv_encodings_evaluate_like_the_model(case):
    model, shape, seed = case
    x = np.random.default_rng(seed).normal(0, 1.5, shape)
    y64 = Replayer(model).outputs(x[None])[1][0].ravel()
    for prefix in (False, True):
        np.testing.assert_allclose(fixed_input_outputs(model, x, prefix), y64, rtol=1e-9, atol=1e-9)


# -- (e) a conv + maxpool tiny net -------------------------------------------------------------------


@pytest.mark.parametrize("where", ["below_sampled_max", "between", "above_crown_bound"])
def test_conv_maxpool_network(where):
    manual_seed(2)
    model = Sequential(
        Conv2d(1, 2, 2, activation="relu"), MaxPool2d(2), Flatten(), Dense(8, 1), input_shape=(None, 5, 5, 1)
    )
    x0 = np.random.default_rng(2).uniform(0, 1, (5, 5, 1))
    ball = LinfBall(x0, 0.05, clip=(0, 1))
    _, y64 = sampled_outputs(model, ball)
    hi = float(y64[:, 0].max())
    crown_hi = float(compute_bounds(model, ball, "crown").upper[0])
    threshold = {
        "below_sampled_max": hi - 0.1 * (crown_hi - hi),
        "between": (hi + crown_hi) / 2,
        "above_crown_bound": crown_hi + 1e-6,
    }[where]
    prop = OutputBounds(upper=threshold, over=ball)
    r = smt_verify(model, prop, timeout=20)
    assert r.info["relus"] == 32 and r.info["maxpool_outputs"] == 8
    if where == "below_sampled_max":
        assert_real_counterexample(model, ball, prop.condition, r)
    elif where == "above_crown_bound":
        assert r.status == "proven"
    if r.status == "proven":
        assert_no_violation_found(model, ball, prop.condition)
    elif r.status == "falsified":
        assert_real_counterexample(model, ball, prop.condition, r)


# -- (f) timeouts give unknown, never proven ----------------------------------------------------------


def test_timeout_gives_unknown_on_time():
    model = mlp(0, 2, [16, 16])
    box = Box(-1, 1, shape=(2,))
    _, y64 = sampled_outputs(model, box)
    prop = OutputBounds(upper=float(y64[:, 0].max()) * 1.01 + 1e-3, over=box)
    t0 = time.perf_counter()
    r = smt_verify(model, prop, timeout=0.3)
    elapsed = time.perf_counter() - t0
    assert r.status == "unknown" and r.z3_status == "unknown" and r.timed_out
    assert elapsed < 3.0
    assert r.info["unstable"] > 20
    pr = r.to_property_result(prop)
    assert pr.status == "unknown" and pr.timed_out and pr.method == "smt"


def test_boundary_only_violation_is_not_falsified():
    """Z3 finds y == threshold (the region is closed); no float point violates y <= threshold strictly."""
    model = Sequential(Dense(1, 1))
    model[0].weight.data[:] = 1.0
    model[0].bias.data[:] = 0.0
    box = Box(-1, 1, shape=(1,))
    r = smt_verify(model, OutputBounds(upper=1.0, over=box), timeout=TIMEOUT)
    assert r.status == "unknown" and r.z3_status == "sat" and not r.timed_out


# -- sub-domains with ReLU phases (for branch-and-bound leaves) -------------------------------------------


def _pre_activations(model, xs: np.ndarray) -> list[np.ndarray]:
    """Pre-activations of every ReLU layer of a Dense/ReLU MLP, float64."""
    out, h = [], xs
    for layer in model.layers:
        z = h @ np.asarray(layer.weight.data, np.float64) + np.asarray(layer.bias.data, np.float64)
        if layer.activation is not None and layer.activation.kind == "relu":
            out.append(z)
            z = np.maximum(z, 0)
        h = z
    return out


@FAST
@given(seed=st.integers(0, 10_000), frac=st.sampled_from([0.7, 0.95, 1.05]), neuron=st.integers(0, 3))
def test_split_children_agree_with_the_parent(seed, frac, neuron):
    model = mlp(seed, 2, [4, 4])
    box = Box(-1, 1, shape=(2,))
    xs, y64 = sampled_outputs(model, box)
    hi = float(y64[:, 0].max())
    cond = OutputBounds(upper=hi * frac if hi > 0 else hi / frac).condition
    parent = smt_check_domain(model, box, cond, timeout=TIMEOUT)
    children = {
        p: smt_check_domain(model, box, cond, {(0, neuron): p}, timeout=TIMEOUT) for p in ("active", "inactive")
    }
    statuses = {p: r.status for p, r in children.items()}
    if parent.status == "proven":
        assert "falsified" not in statuses.values()
    if all(s == "proven" for s in statuses.values()):
        assert parent.status != "falsified"
    if "falsified" in statuses.values():
        assert parent.status != "proven"
    # a proven child has no sampled violation among the samples satisfying its split
    z = _pre_activations(model, xs)[0][:, neuron]
    for p, r in children.items():
        if r.status == "proven":
            keep = z >= 0 if p == "active" else z <= 0
            assert not keep.any() or cond.holds(y64[keep]).all()
        if r.status == "falsified":
            assert_real_counterexample(model, box, cond, r)


def test_phase_keys_by_name_and_index_and_contradictions():
    model = mlp(4, 2, [3, 2])
    names = relu_layers(model)
    assert [n for n, _ in names] == ["1 Dense/relu", "2 Dense/relu"] and [k for _, k in names] == [3, 2]
    box = Box(-1, 1, shape=(2,))
    cond = OutputBounds(upper=1e6).condition
    by_index = smt_check_domain(model, box, cond, {(1, 0): "active", (0, 2): "inactive"}, timeout=TIMEOUT)
    by_name = smt_check_domain(
        model, box, cond, {("2 Dense/relu", 0): "active", ("1 Dense/relu", 2): "inactive"}, timeout=TIMEOUT
    )
    assert by_index.status == by_name.status == "proven" and by_index.info["phases"] == 2
    split_states = [np.array([0, 0, -1], np.int8), np.array([1, 0], np.int8)]  # branch-and-bound's form
    by_arrays = smt_check_domain(model, box, cond, split_states, timeout=TIMEOUT)
    by_signs = smt_check_domain(model, box, cond, {(1, 0): 1, (0, 2): -1}, timeout=TIMEOUT)
    assert by_arrays.status == by_signs.status == "proven" and by_arrays.info["phases"] == 2
    # a split that contradicts the bounds makes the domain empty: proven (vacuously)
    z = _pre_activations(model, box.sample(20000, np.random.default_rng(0)))[0]
    bounds = compute_bounds(model, box, "crown").layers[0]
    lo = np.asarray(bounds[1])
    if np.any(lo > 0):
        j = int(np.argmax(lo))
        r = smt_check_domain(model, box, OutputBounds(upper=-1e6).condition, {(0, j): "inactive"}, timeout=TIMEOUT)
        assert r.status == "proven" and np.all(z[:, j] > 0)
    with pytest.raises(ValueError, match="ReLU layer index"):
        smt_check_domain(model, box, cond, {(5, 0): "active"})
    with pytest.raises(ValueError, match="out of range"):
        smt_check_domain(model, box, cond, {(0, 9): "active"})
    with pytest.raises(ValueError, match="'active'"):
        smt_check_domain(model, box, cond, {(0, 0): "on"})
    with pytest.raises(TypeError, match="phases must be"):
        smt_check_domain(model, box, cond, "0:active")


# -- bad input gets a clear error -------------------------------------------------------------------------


def test_clear_errors():
    box = Box(-1, 1, shape=(2,))
    with pytest.raises(UnsupportedLayerError, match=r"layer 1 \(Dense/tanh\).*not piecewise linear"):
        smt_verify(Sequential(Dense(2, 3, tanh), Dense(3, 1)), OutputBounds(upper=1.0, over=box))
    with pytest.raises(UnsupportedLayerError, match=r"layer 2 \(Softmax\)"):
        smt_verify(Sequential(Dense(2, 3), Softmax()), OutputBounds(upper=1.0, over=box))
    model = mlp(0, 2, [3])
    with pytest.raises(NotImplementedError, match="L2Ball"):
        smt_verify(model, OutputBounds(upper=1.0, over=L2Ball(np.zeros(2), 0.1)))
    with pytest.raises(ValueError, match="linear output condition"):
        smt_verify(model, ValidProbabilities(over=box))
    with pytest.raises(ValueError, match="needs an input set"):
        smt_verify(model, OutputBounds(upper=1.0))
    with pytest.raises(ValueError, match="condition is missing"):
        smt_verify(model, box)
    with pytest.raises(ValueError, match="timeout"):
        smt_verify(model, OutputBounds(upper=1.0, over=box), timeout=0)
    with pytest.raises(TypeError, match="condition must be"):
        smt_verify(model, box, "y <= 1")


def test_local_robustness_label_none_uses_the_prediction():
    model = mlp(8, 3, [5], n_out=3)
    x0 = np.array([0.2, -0.1, 0.3])
    label = int(np.argmax(Replayer(model).outputs(x0[None])[1][0]))
    direct = smt_verify(model, LocalRobustness(x0, 1e-3), timeout=TIMEOUT)
    fixed = smt_verify(model, LocalRobustness(x0, 1e-3, label=label), timeout=TIMEOUT)
    assert direct.status == fixed.status == "proven"
    wrong = smt_verify(model, LocalRobustness(x0, 1e-3, label=(label + 1) % 3), timeout=TIMEOUT)
    assert wrong.status == "falsified"


# -- agreement with branch-and-bound (issue 6: "answers agree with BaB on random small networks") ---------


@settings(max_examples=10, deadline=None)
@given(
    seed=st.integers(0, 10_000),
    widths=st.sampled_from([[4], [6], [4, 4], [6, 3]]),
    frac=st.sampled_from([0.9, 0.99, 1.01, 1.2]),
    mode=st.sampled_from(["input", "relu"]),
)
def test_agrees_with_branch_and_bound(seed, widths, frac, mode):
    bab = pytest.importorskip("axiom.verify.bab")
    model = mlp(seed, 2, widths, n_out=2)
    box = Box(-1, 1, shape=(2,))
    _, y64 = sampled_outputs(model, box)
    margin = y64[:, 0] - y64[:, 1]
    hi = float(margin.max())
    threshold = hi * frac if hi > 0 else hi / frac
    cond = LinearConstraints([[1.0, -1.0]], [threshold])  # y_0 - y_1 <= threshold
    z = smt_verify(model, box, cond, timeout=TIMEOUT)
    b = bab.branch_and_bound(model, box, cond, timeout=TIMEOUT, mode=mode)
    assert {z.status, b.status} != {"proven", "falsified"}, f"Z3 {z.status} vs BaB {b.status}"
    if hi > threshold:
        assert z.status != "proven" and b.status != "proven"


def test_timeout_during_the_encoding_of_a_large_network():
    model = mlp(0, 40, [200, 200])
    box = Box(-0.1, 0.1, shape=(40,))
    t0 = time.perf_counter()
    r = smt_verify(model, OutputBounds(upper=1e6, over=box), timeout=0.3)
    assert r.status == "unknown" and r.timed_out and "deadline" in r.message
    assert time.perf_counter() - t0 < 2.0


def test_final_softmax_is_dropped_for_order_conditions():
    manual_seed(6)
    logits = Sequential(Dense(3, 5, relu), Dense(5, 3))
    probs = Sequential(logits[0], logits[1], Softmax())
    x0 = np.array([0.3, -0.2, 0.1])
    for eps in (1e-3, 0.5, 3.0):
        a = smt_verify(logits, LocalRobustness(x0, eps), timeout=TIMEOUT)
        b = smt_verify(probs, LocalRobustness(x0, eps), timeout=TIMEOUT)
        assert a.status == b.status and b.info["dropped_final"] == "Softmax" and a.info["dropped_final"] == ""
        if b.status == "falsified":
            assert b.info["encoding_gap"] < 1e-9
            label = int(np.argmax(Replayer(probs).outputs(x0[None])[1][0]))
            assert not ArgmaxIs(label).holds(Replayer(probs).outputs(b.counterexample[None])[1])[0]
    with pytest.raises(UnsupportedLayerError, match="Softmax"):
        smt_verify(probs, OutputBounds(upper=0.9, over=Box(-1, 1, shape=(3,))))


def test_verify_method_smt_goes_through_the_formal_pipeline() -> None:
    """``verify(..., method="smt")`` decides with Z3 (method "smt"); a false bound is falsified by the attack first."""
    from axiom import Dense, Sequential, relu, verify
    from axiom.nn.init import manual_seed
    from axiom.verify import Box, OutputBounds

    manual_seed(3)
    net = Sequential(Dense(2, 4, relu), Dense(4, 1))
    box = Box(-1, 1, shape=(2,))
    xs = np.random.default_rng(0).uniform(-1, 1, (4096, 2)).astype(np.float32)
    top = float(net(xs).numpy().max())
    proven = verify(net, properties=[OutputBounds(upper=top + 10.0, over=box)], method="smt", timeout=20)
    assert proven.status == "proven" and proven.results[0].method == "smt"
    false = verify(net, properties=[OutputBounds(upper=top - 1e-3, over=box)], method="smt", timeout=20)
    assert false.status == "falsified"
