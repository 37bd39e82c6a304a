"""Property objects, input sets, empirical verify() and telemetry."""

import json

import numpy as np
import pytest
from hypothesis import given
from hypothesis import strategies as st

from axiom import Dense, Sequential, Softmax, Tensor, relu, verify
from axiom.verify import (
    ArgmaxIs,
    Box,
    BoxUnion,
    Classification,
    FiniteOutput,
    L2Ball,
    LinearProperty,
    LinfBall,
    LocalRobustness,
    NoInf,
    NoNaN,
    OutputBounds,
    ValidProbabilities,
    classification_preset,
    regression_preset,
    reset_verification_telemetry,
    verification_result_telemetry,
    verification_telemetry_records,
    verification_telemetry_report,
)


def test_readme_empirical_example():
    model = Sequential(Dense(784, 128, relu), Dense(128, 10), Softmax())
    x = Tensor(np.random.default_rng(0).standard_normal((16, 784)).astype(np.float32))
    r = verify(model, properties=[ValidProbabilities(), FiniteOutput()], data=[(x, None)])
    assert r.passed and r.kind == "empirical" and r.status == "passed"
    assert [p.checked for p in r.results] == [16, 16]
    assert r.runtime_s > 0 and any("not a proof" in w for w in r.warnings)


def test_empirical_reports_every_failing_input():
    model = Sequential(Dense(2, 2))
    model[0].weight.data[:] = np.eye(2, dtype=np.float32)
    model[0].bias.data[:] = 0
    x = np.array([[0.1, 0.2], [5.0, 0.0], [0.3, -7.0], [np.nan, 0.0]], np.float32)
    r = verify(model, [OutputBounds(lower=-1, upper=1), NoNaN(), NoInf()], data=x)
    bounds, nonan, noinf = r.results
    assert r.status == "failed" and not r.passed
    assert [v.index for v in bounds.violations] == [1, 2, 3]
    np.testing.assert_array_equal(bounds.violations[0].input, x[1])
    np.testing.assert_array_equal(bounds.violations[0].output, x[1])
    assert [v.index for v in nonan.violations] == [3] and noinf.passed
    assert "3 of 4 samples" in bounds.message


def test_empirical_respects_input_sets_and_resolves_labels():
    model = Sequential(Dense(2, 3))
    x = np.array([[0.0, 0.0], [0.05, 0.0], [3.0, 3.0]], np.float32)
    robust = LocalRobustness(np.zeros(2), eps=0.1)  # label from the model at the centre
    r = verify(model, [robust], data=[(x, np.zeros(3))])
    assert r.results[0].checked == 2  # the far sample lies outside the ball
    assert r.results[0].property.label == int(np.argmax(model(np.zeros((1, 2), np.float32)).numpy()))
    r2 = verify(model, [OutputBounds(upper=1e9, over=Box(10, 11, shape=(2,)))], data=x)
    assert r2.results[0].checked == 0 and any("no data sample" in w for w in r2.warnings)


def test_conditions_semantics():
    y = np.array([[0.2, 0.8], [0.5, 0.5], [np.nan, 1.0], [0.9, 0.1]])
    assert ArgmaxIs(1).holds(y).tolist() == [True, False, False, False]
    assert ValidProbabilities().holds(y).tolist() == [True, True, False, True]
    assert FiniteOutput().holds(np.array([[1.0, np.inf], [0.0, 1.0]])).tolist() == [False, True]
    assert LinearProperty([[1.0, -1.0]], [0.0]).holds(y).tolist() == [True, True, False, False]
    assert Classification(0).holds(y).tolist() == [False, False, False, True]
    with pytest.raises(ValueError, match="label 5 is out of range for 2 outputs"):
        ArgmaxIs(5).holds(y)
    with pytest.raises(ValueError, match="C has 1 rows but d has 2"):
        LinearProperty([[1.0, 0.0]], [0.0, 1.0])


@given(
    y=st.lists(st.floats(-5, 5), min_size=3, max_size=3),
    label=st.integers(0, 2),
)
def test_unsafe_region_agrees_with_holds(y, label):
    """A point outside every unsafe clause satisfies the condition (the region over-approximates violations)."""
    yy = np.array([y])
    for cond in (
        ArgmaxIs(label),
        OutputBounds(lower=-1, upper=2).condition,
        LinearProperty([[1, 1, 1]], [3]).condition,
    ):
        in_region = any(c.satisfied(yy)[0] for c in cond.unsafe_region(3))
        if not cond.holds(yy)[0]:
            assert in_region


def test_input_sets():
    rng = np.random.default_rng(0)
    box = Box([0, -1], [1, 1])
    assert box.contains(box.sample(50, rng)[7]) and not box.contains(np.array([2.0, 0.0]))
    lo, hi = box.split()
    assert hi.lower[1] == 0.0 and lo.upper[1] == 0.0
    with pytest.raises(ValueError, match="lower > upper at index"):
        Box([1.0], [0.0])
    ball = L2Ball(np.zeros(3), 0.5)
    pts = ball.sample(200, rng)
    assert np.all(np.linalg.norm(pts, axis=1) <= 0.5 + 1e-12)
    assert np.allclose(np.linalg.norm(ball.project(np.ones((1, 3))), axis=1), 0.5)
    linf = LinfBall(np.full(4, 0.98), 0.05, clip=(0, 1))
    assert linf.to_box().upper.max() == 1.0
    union = BoxUnion([Box([0], [1]), Box([2], [3])])
    assert union.to_box().upper.tolist() == [3.0] and len(union.boxes()) == 2
    np.testing.assert_allclose(union.project(np.array([[1.8], [0.4]])), [[2.0], [0.4]])
    assert Box(0, 1).bind((2, 2)).lower.shape == (2, 2)
    with pytest.raises(ValueError, match="does not fit the model input"):
        Box([0, 0], [1, 1]).bind((3,))
    assert json.dumps(union.to_json())


def test_presets():
    c = classification_preset(np.zeros(3), 1, 0.1, clip=(0, 1))
    assert [type(p).__name__ for p in c] == ["LocalRobustness", "FiniteOutput"]
    assert c[1].input_set is c[0].input_set
    r = regression_preset(Box(0, 1, shape=(2,)), lower=-1, upper=1)
    assert [type(p).__name__ for p in r] == ["FiniteOutput", "OutputBounds"]
    with pytest.raises(ValueError, match="norm must be"):
        LocalRobustness(np.zeros(2), 0.1, norm="1")


def test_verify_rejects_bad_arguments():
    model = Sequential(Dense(2, 2))
    with pytest.raises(TypeError, match=r"properties\[0\] must be an axiom.verify Property"):
        verify(model, ["robust"], data=np.zeros((1, 2), np.float32))
    with pytest.raises(ValueError, match="no properties"):
        verify(model, [], data=np.zeros((1, 2), np.float32))
    with pytest.raises(ValueError, match="needs an input set"):
        verify(model, [FiniteOutput()])


def test_telemetry_records_and_summary():
    reset_verification_telemetry()
    model = Sequential(Dense(2, 2), Softmax())
    x = np.zeros((3, 2), np.float32)
    r = verify(model, [ValidProbabilities()], data=x)
    verify(model, [OutputBounds(upper=0.1)], data=x)
    recs = verification_telemetry_records()
    assert len(recs) == 2 and recs[0]["format"] == "axiom-verification-telemetry.v1"
    assert recs[0] == {**verification_result_telemetry(r), "timestamp": recs[0]["timestamp"]}
    summary = verification_telemetry_report()
    assert summary["format"] == "axiom-verification-telemetry-summary.v1"
    assert summary["runs"] == 2 and summary["by_status"] == {"passed": 1, "failed": 1}
    assert summary["properties"]["by_status"] == {"passed": 1, "failed": 1}
    json.dumps(summary)
    json.loads(r.to_json())
    reset_verification_telemetry()
    assert verification_telemetry_report()["runs"] == 0
