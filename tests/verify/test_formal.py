"""Formal verify(): verdicts are never contradicted by sampling; counterexamples are real."""

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from axiom import Dense, Sequential, Softmax, relu, tanh, verify
from axiom.nn.init import manual_seed
from axiom.verify import (
    Box,
    FiniteOutput,
    LocalRobustness,
    OutputBounds,
    ValidProbabilities,
)
from axiom.verify.concrete import Replayer


def _net(seed: int, n_in: int = 3, width: int = 8, act=relu) -> Sequential:
    manual_seed(seed)
    return Sequential(Dense(n_in, width, act), Dense(width, width, act), Dense(width, 2))


def _sampled_range(model, box: Box, n: int = 4000):
    rng = np.random.default_rng(0)
    xs = np.concatenate([box.sample(n, rng), box.lower[None], box.upper[None]])
    _, y64 = Replayer(model).outputs(xs)
    return y64.min(axis=0), y64.max(axis=0)


@settings(max_examples=15)
@given(seed=st.integers(0, 10_000), frac=st.sampled_from([0.5, 0.9, 1.2, 3.0]), act=st.sampled_from([relu, tanh]))
def test_verdicts_agree_with_sampling(seed, frac, act):
    model = _net(seed, act=act)
    box = Box(-1, 1, shape=(3,))
    _, hi = _sampled_range(model, box)
    threshold = float(hi[0]) * frac if hi[0] > 0 else float(hi[0]) / frac
    r = verify(model, [OutputBounds(upper=[threshold, np.inf], over=box)])
    res = r.results[0]
    if hi[0] > threshold:  # a sample violates: "proven" would be unsound
        assert res.status != "proven"
    if res.status == "falsified":
        x = res.counterexample
        assert box.contains(x)
        y32, y64 = Replayer(model).outputs(x[None])
        assert y32[0, 0] > threshold and y64[0, 0] > threshold
        np.testing.assert_array_equal(y32[0], res.output)
    if res.status == "proven":
        assert res.bounds["clause_margins"][0] > 0


def test_loose_bound_is_proven_and_tight_one_falsified():
    model = _net(1)
    box = Box(-1, 1, shape=(3,))
    lo, hi = _sampled_range(model, box)
    proven = verify(model, [OutputBounds(lower=lo - 100, upper=hi + 100, over=box)])
    assert proven.status == "proven" and proven.passed and proven.kind == "formal"
    assert proven.results[0].method == "ibp"
    falsified = verify(model, [OutputBounds(upper=[hi[0] - 0.05 * abs(hi[0]) - 1e-3, np.inf], over=box)])
    assert falsified.status == "falsified" and falsified.counterexample is not None


def test_local_robustness_small_eps_proven_and_labels():
    model = _net(2, n_in=4)
    x = np.array([0.3, -0.2, 0.1, 0.5], np.float32)
    r = verify(model, [LocalRobustness(x, eps=1e-4)])
    assert r.status == "proven", r.summary()
    wrong = 1 - r.results[0].property.label
    r2 = verify(model, [LocalRobustness(x, eps=1e-4, label=wrong)])
    assert r2.status == "falsified"
    np.testing.assert_allclose(r2.counterexample, x, atol=1e-4 + 1e-7)


def test_l2_robustness_sound():
    model = _net(3, n_in=4)
    x = np.array([0.1, 0.2, -0.3, 0.4], np.float32)
    r = verify(model, [LocalRobustness(x, eps=1e-3, norm="2")])
    assert r.status in ("proven", "unknown")
    if r.status == "proven":
        ball = r.results[0].property.input_set
        pts = ball.sample(2000, np.random.default_rng(1))
        _, y = Replayer(model).outputs(pts)
        assert np.all(np.argmax(y, axis=1) == r.results[0].property.label)


def test_valid_probabilities_and_finite_output():
    manual_seed(4)
    model = Sequential(Dense(3, 5, relu), Dense(5, 4), Softmax())
    box = Box(-1, 1, shape=(3,))
    r = verify(model, [ValidProbabilities(over=box), FiniteOutput(over=box)])
    assert [p.status for p in r.results] == ["proven", "proven"], r.summary()
    no_softmax = Sequential(Dense(3, 4))
    r2 = verify(no_softmax, [ValidProbabilities(over=box)])
    assert r2.status in ("falsified", "unknown")


def test_timeout_gives_unknown():
    model = _net(5)
    box = Box(-1, 1, shape=(3,))
    _, hi = _sampled_range(model, box)
    r = verify(model, [OutputBounds(upper=[hi[0] + 1e-9, np.inf], over=box)], timeout=0.0, attack=False)
    assert r.status == "unknown" and r.results[0].timed_out and r.timed_out


def test_method_choice_and_errors():
    model = _net(6)
    box = Box(-1, 1, shape=(3,))
    for m in ("ibp", "crown", "alpha-crown"):
        assert verify(model, [OutputBounds(upper=1e6, over=box)], method=m).results[0].method == m
    with pytest.raises(ValueError, match="method must be"):
        verify(model, [OutputBounds(upper=1.0, over=box)], method="magic")


def test_unsupported_layers_give_unknown_never_an_exception():
    from axiom import Flatten, MultiHeadAttention, Reshape

    manual_seed(7)
    model = Sequential(
        Dense(4, 8), Reshape((2, 4)), MultiHeadAttention(4, 2), Flatten(), Dense(1), input_shape=(None, 4)
    )
    box = Box(-1, 1, shape=(4,))
    r = verify(model, [OutputBounds(upper=1e6, over=box)])
    assert r.status == "unknown" and "MultiHeadAttention" in r.results[0].message
    assert r.results[0].method is None
    r2 = verify(model, [OutputBounds(upper=-1e6, over=box)])  # sampling still finds real violations
    assert r2.status == "falsified"
