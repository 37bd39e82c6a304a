"""The @axiom DSL: definition-time tracing, owned layers, ensure() checks, prove() statements."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

import axiom as ax
from axiom import (
    Conv2d,
    Dense,
    Flatten,
    GlobalAvgPool,
    MaxPool2d,
    Sequential,
    ShapeError,
    Softmax,
    Tensor,
    fit,
    float32,
    manual_seed,
    relu,
)
from axiom.dsl import (
    AxiomModel,
    DSLShapeError,
    EnsureViolation,
    Logits,
    OutputTypeError,
    Probabilities,
    ProveSyntaxError,
    axiom,
    bounded,
    ensure,
    ensure_checks,
    ensure_enabled,
    finite,
    prove,
    set_ensure,
    valid_probabilities,
)
from axiom.dsl.statements import parse

HERE = Path(__file__).resolve()


def _line_of(marker: str) -> int:
    """1-based line of the first line of this file containing ``marker``."""
    for number, line in enumerate(HERE.read_text().splitlines(), start=1):
        if marker in line and "_line_of" not in line:
            return number
    raise AssertionError(marker)


# -- part 1: models ------------------------------------------------------------------------------


@axiom
class MNISTClassifier:
    input = Tensor[float32, ("batch", 28, 28, 1)]
    output = Probabilities(10)

    def forward(self, x):
        h = x >> Conv2d(1, 8, (3, 3)) >> relu >> MaxPool2d(2)
        h = h >> Conv2d(8, 16, (3, 3)) >> relu >> GlobalAvgPool()
        return h >> Flatten() >> Dense(16, 10) >> Softmax()


def test_mnist_classifier_defines_and_runs() -> None:
    model = MNISTClassifier()
    assert isinstance(model, AxiomModel) and isinstance(model, Sequential)
    assert [type(layer).__name__ for layer in model.layers] == [
        "Conv2d",
        "Activation",
        "MaxPool2d",
        "Conv2d",
        "Activation",
        "GlobalAvgPool",
        "Flatten",
        "Dense",
        "Softmax",
    ]
    y = model(np.random.default_rng(0).random((3, 28, 28, 1), dtype=np.float32))
    assert y.shape == (3, 10)
    assert np.allclose(y.numpy().sum(axis=1), 1.0, atol=1e-5)
    assert model.input_shape == ("batch", 28, 28, 1)
    assert model.output_shape(model.input_shape) == ("batch", 10)
    # an ordinary model: state_dict round trip into a second instance gives the same outputs
    other = MNISTClassifier()
    other.load_state_dict(model.state_dict())
    x = np.ones((1, 28, 28, 1), np.float32)
    assert np.array_equal(other(x).numpy(), model(x).numpy())


def test_broken_model_raises_at_class_definition_with_line_and_shapes() -> None:
    with pytest.raises(ShapeError) as info:

        @axiom
        class BrokenModel:
            input = Tensor[float32, ("batch", 8, 8, 3)]
            output = Probabilities(10)

            def forward(self, x):
                return (
                    x
                    >> Conv2d(3, 4, (3, 3))
                    >> Dense(4, 10)  # <- the broken step
                    >> Softmax()
                )

    err = info.value
    assert isinstance(err, DSLShapeError)
    assert err.filename == str(HERE)
    assert err.lineno == _line_of("# <- the broken step")
    assert err.position == 2 and err.layer == "Dense"
    assert err.received == "(batch, 6, 6, 4)" and err.expected == "(batch, 4)"
    text = str(err)
    assert text.startswith(f"BrokenModel, {HERE}:{err.lineno}: layer 2 (Dense)")
    assert "(batch, 6, 6, 4)" in text and "from layer 1 (Conv2d)" in text
    assert ">> Dense(4, 10)" in text  # the offending source line


def test_wrong_class_count_is_caught() -> None:
    with pytest.raises(ShapeError, match=r"Probabilities\(10\).*\(batch, 12\)") as info:

        @axiom
        class Twelve:
            input = Tensor[float32, ("batch", 4)]
            output = Probabilities(10)

            def forward(self, x):
                return x >> Dense(4, 12) >> Softmax()  # <- twelve classes

    assert info.value.lineno == _line_of("# <- twelve classes")


def test_missing_softmax_is_caught() -> None:
    with pytest.raises(OutputTypeError, match="not a softmax") as info:

        @axiom
        class NoSoftmax:
            input = Tensor[float32, ("batch", 4)]
            output = Probabilities(3)

            def forward(self, x):
                return x >> Dense(4, 8) >> relu >> Dense(8, 3)

    assert "Dense" in str(info.value) and "test_dsl.py" in str(info.value)

    @axiom
    class Unconstrained:  # the same body is fine for logits
        input = Tensor[float32, ("batch", 4)]
        output = Logits(3)

        def forward(self, x):
            return x >> Dense(4, 8) >> relu >> Dense(8, 3)

    assert Unconstrained()(np.zeros((2, 4), np.float32)).shape == (2, 3)


def test_declaration_errors_are_clear() -> None:
    with pytest.raises(TypeError, match="declare the input"):

        @axiom
        class NoInput:
            def forward(self, x):
                return x >> Dense(2, 1)

    with pytest.raises(TypeError, match="straight pipeline"):

        @axiom
        class Branching:
            input = Tensor[float32, ("batch", 2)]

            def forward(self, x):
                a = x >> Dense(2, 2)
                b = x >> Dense(2, 2)  # reads x again: a branch
                return a, b

    with pytest.raises(TypeError, match="not a layer"):

        @axiom
        class NotALayer:
            input = Tensor[float32, ("batch", 2)]

            def forward(self, x):
                return x >> Dense(2, 2) >> print


class Counting(Dense):
    created = 0

    def __init__(self, *args, **kwargs) -> None:
        type(self).created += 1
        super().__init__(*args, **kwargs)


def test_layers_are_created_once_and_owned_by_the_instance() -> None:
    Counting.created = 0

    @axiom
    class Small:
        input = Tensor[float32, ("batch", 4)]
        output = Logits(2)

        def forward(self, x):
            return x >> Counting(4, 8) >> relu >> Counting(8, 2)

    assert Counting.created == 2  # the definition-time trace
    model = Small()
    assert Counting.created == 4
    ids = [id(layer) for layer in model.layers]
    weights = [id(p) for p in model.parameters()]
    x = np.random.default_rng(1).standard_normal((16, 4)).astype(np.float32)
    for _ in range(3):
        model(x)
    assert Counting.created == 4, "calling the model must not create layers"
    assert [id(layer) for layer in model.layers] == ids
    assert [id(p) for p in model.parameters()] == weights
    other = Small()
    assert other[0] is not model[0]  # each instance owns its layers

    # fit trains the instance's own parameters
    before = model[0].weight.numpy().copy()
    out_before = model(x).numpy().copy()
    labels = (x[:, 0] > 0).astype(np.int64)
    fit(model, x, labels, epochs=2, batch_size=8, verbose=False, seed=0)
    assert not np.array_equal(model[0].weight.numpy(), before)
    assert not np.array_equal(model(x).numpy(), out_before)
    assert [id(layer) for layer in model.layers] == ids
    assert np.array_equal(other[0].weight.numpy(), other.state_dict()["0.weight"])


def test_layers_declared_in_init_as_in_pytorch() -> None:
    @axiom
    class WithInit:
        input = Tensor[float32, ("batch", 3)]
        output = Logits(2)

        def __init__(self, hidden: int = 5) -> None:
            self.hidden = Dense(3, hidden)
            self.head = Dense(hidden, 2)

        def forward(self, x):
            return x >> self.hidden >> relu >> self.head

    model = WithInit(hidden=7)
    assert model.hidden is model[0] and model.head is model[2]
    assert model.hidden.out_features == 7
    assert sorted(model.state_dict()) == ["0.bias", "0.weight", "2.bias", "2.weight"]
    assert len(model.parameters()) == 4  # no duplicates through the attributes
    assert model(np.zeros((1, 3), np.float32)).shape == (1, 2)


def test_lazy_layers_are_built_per_instance() -> None:
    @axiom
    class Lazy:
        input = Tensor[float32, ("batch", 6, 6, 2)]
        output = Logits(3)

        def forward(self, x):
            return x >> Conv2d(4, (3, 3)) >> relu >> Flatten() >> Dense(3)

    model = Lazy()
    assert model[0].weight.shape == (3, 3, 2, 4) and model[3].weight.shape == (64, 3)
    assert model(np.zeros((2, 6, 6, 2), np.float32)).shape == (2, 3)


def test_axiom_export_does_not_shadow_the_package() -> None:
    assert ax.axiom is axiom
    assert "axiom" not in ax.__all__  # `from axiom import *` keeps the name axiom for the package
    namespace: dict = {}
    exec("import axiom\nfrom axiom import *\nresult = axiom.Dense", namespace)  # noqa: S102
    assert namespace["result"] is Dense
    assert Tensor[float32, ("batch", 3)].shape == ("batch", 3)
    assert Tensor(np.zeros(2)).shape == (2,)  # Tensor itself is unchanged


# -- part 2: ensure ------------------------------------------------------------------------------


@axiom
class Checked:
    input = Tensor[float32, ("batch", 4)]
    output = Probabilities(3)

    def forward(self, x):
        h = x >> Dense(4, 3)
        ensure(finite(h), "logits are finite")
        y = h >> Softmax()
        ensure(y.sum(axis=-1) <= 0.5, "deliberately false")  # <- the failing ensure
        return y


def test_ensure_raises_with_condition_text_and_values() -> None:
    model = Checked()
    with pytest.raises(EnsureViolation) as info:
        model(np.ones((2, 4), np.float32))
    err = info.value
    assert err.condition == "y.sum(axis=-1) <= 0.5"
    assert err.message == "deliberately false"
    assert err.detail.startswith("first failure at index (0,): left 1")  # the offending value
    assert err.location == f"{HERE}:{_line_of('# <- the failing ensure')}"
    assert "ensure(y.sum(axis=-1) <= 0.5) failed" in str(err)
    assert [c.text for c in model.checks] == ["finite(h)", "y.sum(axis=-1) <= 0.5"]

    bad = np.ones((1, 4), np.float32)
    bad[0, 0] = np.nan
    with pytest.raises(EnsureViolation, match="logits are finite") as info:
        model(bad)
    assert info.value.condition == "finite(h)" and "is nan" in info.value.detail


def test_ensure_can_be_switched_off() -> None:
    model = Checked()
    x = np.ones((2, 4), np.float32)
    with ensure_checks(False):
        assert not ensure_enabled()
        assert model(x).shape == (2, 3)
        ensure(False, "not checked")
    assert ensure_enabled()
    with pytest.raises(EnsureViolation):
        model(x)
    set_ensure(False)
    try:
        assert model(x).shape == (2, 3)
        with ensure_checks(True):  # the context manager wins over the process default
            with pytest.raises(EnsureViolation):
                model(x)
    finally:
        set_ensure(True)


def test_ensure_env_var_switches_checks_off() -> None:
    code = "import axiom.dsl as d; print(d.ensure_enabled()); d.ensure(1 > 2, 'off')"
    env = {"AXIOM_ENSURE": "0", "PATH": "/usr/bin:/bin"}
    out = subprocess.run([sys.executable, "-c", code], env=env, capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "False"


def test_ensure_outside_models_and_helpers() -> None:
    ensure(np.array([1.0, 2.0]) > 0, "positive")
    with pytest.raises(EnsureViolation) as info:
        ensure(np.array([1.0, -2.0, 3.0]) > 0, "positive")
    assert info.value.condition == "np.array([1.0, -2.0, 3.0]) > 0"
    assert "index (1,)" in info.value.detail

    assert valid_probabilities(np.array([[0.2, 0.8], [1.0, 0.0]]))
    v = valid_probabilities(np.array([[0.2, 0.8], [0.7, 0.7]]))
    assert not v and v.detail == "row 1 sums to 1.4 (tolerance 1e-05)"
    assert not valid_probabilities(np.array([[-0.5, 1.5]]))
    assert "outside [0, 1]" in valid_probabilities(np.array([[-0.5, 1.5]])).detail
    assert finite(np.ones(3)) and not finite(np.array([0.0, np.inf]))
    assert "inf" in finite(np.array([0.0, np.inf])).detail
    assert bounded(np.array([0.0, 1.0]), 0, 1) and not bounded(np.array([0.0, 1.5]), 0, 1)
    assert bounded(np.array([-5.0]), upper=0) and not bounded(np.array([np.nan]), -1, 1)
    with pytest.raises(EnsureViolation, match="outside"):
        ensure(bounded(np.array([2.0]), 0, 1), "in range")
    with pytest.raises(TypeError, match="truth value"):

        @axiom
        class IfOnTraced:
            input = Tensor[float32, ("batch", 2)]

            def forward(self, x):
                y = x >> Dense(2, 2)
                if y.sum() > 0:  # data-dependent Python control flow cannot be traced
                    return y
                return y


# -- part 3: prove ---------------------------------------------------------------------------------


GOOD = [
    ("forall x in Box(0, 1): sum(output) == 1", "forall"),
    ("forall x in Box(0, 1): output[0] <= 5", "forall"),
    ("forall x in Box(-1, 1): 0 <= output <= 1 and output[1] - 2 * output[0] >= -3", "forall"),
    ("forall x in LinfBall([0.5, 0.5], 0.1): argmax(output) == 1", "forall"),
    ("forall x in Box(0, 1): output[0] * output[1] <= max(output) / 2", "forall"),
    ("robust at [0.1, 0.9] within linf 0.03", "robust"),
    ("robust at [0.1, 0.9] within l2 1e-2 label 0 clip(0, 1)", "robust"),
]


@pytest.mark.parametrize(("statement", "kind"), GOOD)
def test_good_statements_parse(statement: str, kind: str) -> None:
    assert parse(statement).kind == kind


BAD = [
    ("forall x in Box(0, 1) output[0] <= 5", 23, "expected ':'"),
    ("forall x in Box(0 1): output[0] <= 5", 19, "expected ','"),
    ("forall x in Box(0, 1): output[0] <= 5 +", 40, "found the end of the statement"),
    ("forall x in Box(0, 1): output[0] @ 5", 34, "unexpected character '@'"),
    ("forall x in Sphere(0, 1): output[0] <= 5", 13, "expected an input set"),
    ("forall x in Box(0, 1): output[0.5] <= 5", 31, "whole number"),
    ("forall x in Box(0, 1): x[0] <= 5", 24, "unknown name 'x'"),
    ("robust at X within linf 0.03", 11, "unknown name 'X'"),
    ("robust at [0.1] within linfinity 0.03", 24, "expected a norm"),
    ("exists x in Box(0, 1): output[0] <= 5", 1, "starts with 'forall' or 'robust'"),
]


@pytest.mark.parametrize(("statement", "column", "reason"), BAD)
def test_bad_statements_point_at_the_column(statement: str, column: int, reason: str) -> None:
    with pytest.raises(ProveSyntaxError) as info:
        parse(statement)
    err = info.value
    assert err.column == column, str(err)
    assert reason in err.reason
    lines = str(err).splitlines()
    assert lines[1] == f"    {statement}"
    assert lines[2] == " " * (4 + column - 1) + "^"


def test_a_bad_statement_in_a_class_fails_its_definition() -> None:
    with pytest.raises(ProveSyntaxError, match="column 35"):  # the second > of >>

        @axiom
        class BadProof:
            input = Tensor[float32, ("batch", 2)]
            prove("forall x in Box(0, 1): output[0] >> 5")

            def forward(self, x):
                return x >> Dense(2, 1)

    with pytest.raises(ProveSyntaxError, match="out of range"):

        @axiom
        class OutOfRange:
            input = Tensor[float32, ("batch", 2)]
            prove("forall x in Box(0, 1): output[3] <= 1")

            def forward(self, x):
                return x >> Dense(2, 1)


def _set_weights(model: AxiomModel, index: int, w: list, b: list) -> None:
    model[index].weight.data[:] = np.asarray(w, np.float32)
    model[index].bias.data[:] = np.asarray(b, np.float32)


X0 = np.array([0.9, 0.1])


@axiom
class TinyNet:
    """y = relu(W x + b) summed by a last Dense; weights fixed in the test."""

    input = Tensor[float32, ("batch", 2)]
    output = Logits(2)

    prove("forall x in Box(0, 1): output[0] <= 2.5")  # true: max is 2
    prove("forall x in Box(0, 1): output[0] <= 1.5")  # false: reaches 2 at x = (1, 1)
    prove("forall x in Box(0, 1): output[0] * output[1] >= -1")  # true, nonlinear: undecidable here
    prove("robust at X0 within linf 0.05")  # true: the prediction is class 0 near (0.9, 0.1)

    def forward(self, x):
        return x >> Dense(2, 2) >> relu >> Dense(2, 2)


def _tiny() -> TinyNet:
    model = TinyNet()
    _set_weights(model, 0, [[1.0, 0.0], [0.0, 1.0]], [0.0, 0.0])  # h = relu(x)
    _set_weights(model, 2, [[1.0, 1.0], [1.0, -1.0]], [0.0, 0.0])  # y0 = h0 + h1, y1 = h0 - h1
    return model


def test_prove_statements_are_discharged() -> None:
    model = _tiny()
    props = model.obligations()
    assert [type(p).__name__ for p in props] == ["LinearProperty", "LinearProperty", "Property", "LocalRobustness"]
    result = model.prove_all(timeout=3)
    statuses = [r.status for r in result]
    assert statuses == ["proven", "falsified", "unknown", "proven"], result.summary()

    false = result[1]  # a replayed counterexample: inside the box and violating the bound
    cex = np.asarray(false.counterexample, np.float64)
    assert cex.shape == (2,) and np.all(cex >= 0) and np.all(cex <= 1)
    replay = model(cex[None].astype(np.float32)).numpy()[0]
    assert replay[0] > 1.5 and np.allclose(replay, false.output, atol=1e-6)

    assert "no formal procedure" in result[2].message  # undecidable, never reported proven
    assert result.status == "falsified"


def test_sum_of_softmax_is_proven_and_verify_takes_the_obligations() -> None:
    manual_seed(0)

    @axiom
    class Soft:
        input = Tensor[float32, ("batch", 3)]
        output = Probabilities(3)
        prove("forall x in Box(0, 1): sum(output) == 1")
        prove("forall x in Box(0, 1): 0 <= output <= 1")

        def forward(self, x):
            return x >> Dense(3, 4) >> relu >> Dense(4, 3) >> Softmax()

    model = Soft()
    result = model.prove_all(timeout=5)
    assert [r.status for r in result] == ["proven", "proven"], result.summary()
    assert result[0].name == "forall x in Box(0, 1): sum(output) == 1"
    # the obligations are ordinary axiom.verify properties: verify() takes them directly
    direct = ax.verify(model.as_sequential(), model.obligations(), timeout=5)
    assert direct.status == "proven"
    # and verify(model) alone discharges the model's own statements
    own = ax.verify(model, timeout=5)
    assert [r.status for r in own] == ["proven", "proven"], own.summary()

    @axiom
    class NotNormalised:  # same statement, no softmax: the sum is a linear form that is not 1
        input = Tensor[float32, ("batch", 2)]
        output = Logits(2)
        prove("forall x in Box(0, 1): sum(output) == 1")

        def forward(self, x):
            return x >> Dense(2, 2)

    plain = NotNormalised()
    _set_weights(plain, 0, [[1.0, 0.0], [0.0, 1.0]], [0.0, 0.0])
    assert plain.prove_all(timeout=3).status == "falsified"


def test_declared_dtype_and_init_without_defaults() -> None:
    @axiom
    class Double:
        input = Tensor[ax.float64, ("batch", 3)]
        output = Logits(2)

        def forward(self, x):
            return x >> relu >> Dense(3, 2)

    model = Double()
    assert {p.dtype.name for p in model.parameters()} == {"float64"}
    assert model(np.ones((1, 3))).dtype == np.float64

    with pytest.raises(TypeError, match="callable without arguments"):

        @axiom
        class NeedsArgs:
            input = Tensor[float32, ("batch", 3)]

            def __init__(self, hidden):
                self.hidden = Dense(3, hidden)

            def forward(self, x):
                return x >> self.hidden


def test_numpy_reductions_on_traced_values_are_deferred() -> None:
    @axiom
    class NonNegative:
        input = Tensor[float32, ("batch", 2)]
        output = Logits(2)

        def forward(self, x):
            y = x >> Dense(2, 2)
            ensure(np.all(y >= 0), "non-negative outputs")
            return y

    model = NonNegative()
    _set_weights(model, 0, [[1.0, 0.0], [0.0, 1.0]], [0.0, 0.0])
    assert model(np.array([[1.0, 2.0]], np.float32)).shape == (1, 2)
    with pytest.raises(EnsureViolation, match="non-negative outputs") as info:
        model(np.array([[1.0, -2.0]], np.float32))
    assert info.value.condition == "np.all(y >= 0)"
    assert [c.cond.describe() for c in model.checks] == ["(x_1 >= 0).all()"]  # value 1 of the pipeline
