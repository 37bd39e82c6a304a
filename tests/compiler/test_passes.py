"""Graph passes: each keeps the outputs within the stated float32 tolerance and changes the structure.

Tolerance (docs/backends.md, "Graph passes"): a pass rounds each folded value once from float64,
so the optimized float32 model and the original float32 model may differ by float rounding only:
``|y_opt - y| <= 1e-5 * (max(1, max|y|) + |y|)``. float32's unit roundoff is 6e-8; a dot product
of n <= 16 terms is exact to about n * 6e-8 ~ 1e-6 of the size of its terms, and the folds change
at most the order of those roundings; on thousands of random models the worst seen was 4.3e-6.
Element-wise passes (dead layers, inlining, fusion) are exact: the outputs are bit-for-bit equal.
"""

from __future__ import annotations

import copy

import numpy as np
import pytest
from compiler_models import assert_close, build_conv, build_dense, chain_pairs, conv_recipes, dense_recipes, run
from hypothesis import given
from hypothesis import strategies as st

from axiom import (
    Activation,
    Affine,
    BatchNorm,
    Conv2d,
    Dense,
    DepthwiseConv2d,
    Dropout,
    Flatten,
    Parallel,
    Permute,
    ReLU,
    Reshape,
    Residual,
    Sequential,
    Softmax,
)
from axiom.compiler.passes import (
    PassResult,
    fold_batchnorm,
    fold_constants,
    fuse_activations,
    inline_sequential,
    remove_dead_layers,
)
from axiom.compiler.passes._graph import foldable_batchnorm, leaf_count, linear_layer, plain, rewrite_chains
from axiom.compiler.passes.dead import dead_reason

FLOAT32_TOL = 1e-5
PASSES = [inline_sequential, remove_dead_layers, fold_batchnorm, fold_constants, fuse_activations]
EXACT = {inline_sequential, remove_dead_layers, fuse_activations}
models = st.one_of(dense_recipes().map(build_dense), conv_recipes().map(build_conv))


def _apply(graph_pass, model):
    before = copy.deepcopy(model)
    optimized, result = graph_pass(copy.deepcopy(model))
    assert isinstance(result, PassResult)
    return before, optimized, result


@pytest.mark.parametrize("graph_pass", PASSES, ids=lambda p: p.__name__)
@given(case=models)
def test_pass_keeps_outputs(graph_pass, case):
    model, x = case
    before, optimized, result = _apply(graph_pass, model)
    want, got = run(before, x), run(optimized, x)
    if graph_pass in EXACT:
        np.testing.assert_array_equal(got, want)
    else:
        assert_close(got, want, rtol=FLOAT32_TOL, atol=FLOAT32_TOL)
    assert optimized.output_shape(model.input_shape) == model.output_shape(model.input_shape)


@pytest.mark.parametrize("graph_pass", [remove_dead_layers, fold_batchnorm, fold_constants, fuse_activations])
@given(case=models)
def test_each_change_removes_one_layer(graph_pass, case):
    model, _ = case
    before, optimized, result = _apply(graph_pass, model)
    assert leaf_count(before) - leaf_count(optimized) == len(result.changes), result.changes


@given(case=models)
def test_passes_leave_no_pattern_behind(case):
    """After each pass, nothing it should have rewritten is left in any chain."""
    model, _ = case
    model, _ = inline_sequential(model)
    assert not any(
        plain(layer, Sequential) and not layer.check_finite for a, b in chain_pairs(model) for layer in (a, b)
    )
    model, _ = remove_dead_layers(model)

    def no_dead_layer(layers, shapes, path):
        if len(layers) > 1:
            for layer, shape in zip(layers, shapes):
                assert not dead_reason(layer, shape), (path, layer)
        return layers, []

    rewrite_chains(model, model.input_shape, no_dead_layer)
    model, _ = fold_batchnorm(model)
    for a, b in chain_pairs(model):
        assert not (linear_layer(a) and foldable_batchnorm(b)), (a, b)
        assert not (foldable_batchnorm(a) and plain(b, Dense)), (a, b)
    model, _ = fold_constants(model)
    for a, b in chain_pairs(model):
        assert not (plain(a, Affine) and plain(b, Affine)), (a, b)


# -- each pass changes the structure it is meant to change -----------------------------------------


def _bn(c, *, affine=True):
    bn = BatchNorm(c, affine=affine)
    rng = np.random.default_rng(c)
    bn.running_mean.data = rng.standard_normal(c).astype(np.float32)
    bn.running_var.data = rng.uniform(0.2, 2.0, c).astype(np.float32)
    if affine:
        bn.weight.data = rng.uniform(0.5, 1.5, c).astype(np.float32)
        bn.bias.data = rng.standard_normal(c).astype(np.float32)
    return bn


def _check(graph_pass, model, x, layers_after, tol=FLOAT32_TOL):
    before, optimized, result = _apply(graph_pass, model)
    assert leaf_count(optimized) == layers_after, optimized
    assert result.changed
    assert_close(run(optimized, x), run(before, x), rtol=tol, atol=tol)
    return optimized, result


X2 = np.random.default_rng(0).standard_normal((5, 6)).astype(np.float32)
X4 = np.random.default_rng(1).standard_normal((2, 7, 7, 4)).astype(np.float32)


def test_fold_batchnorm_into_dense_with_and_without_bias():
    for bias in (True, False):
        for affine in (True, False):
            model = Sequential(Dense(6, 8, bias=bias), _bn(8, affine=affine), Dense(8, 3, "relu"))
            optimized, result = _check(fold_batchnorm, model, X2, 2)
            assert optimized[0].bias is not None and optimized[0].bias.shape == (8,)
            assert "folded into the Dense at 0" in result.changes[0]


def test_fold_batchnorm_into_conv_per_output_channel():
    for conv in (
        Conv2d(4, 6, 3, padding=1),
        Conv2d(4, 6, 3, bias=False, stride=2, padding="same"),
        Conv2d(4, 8, 3, groups=2),
        DepthwiseConv2d(3, channels=4, depth_multiplier=2, padding="same"),
    ):
        c = conv.weight.shape[-1]
        optimized, _ = _check(fold_batchnorm, Sequential(conv, _bn(c), ReLU()), X4, 2)
        assert [layer.name for layer in optimized] == [conv.name, "ReLU"]


def test_fold_batchnorm_forward_into_the_next_layer():
    model = Sequential(Dense(6, 8, "relu"), _bn(8), Dense(8, 3))  # the relu blocks the backward fold
    optimized, result = _check(fold_batchnorm, model, X2, 2)
    assert "folded into the Dense at 2" in result.changes[0]
    conv_model = Sequential(Conv2d(4, 4, 1, activation="relu"), _bn(4), Conv2d(4, 2, 3))  # no padding
    _check(fold_batchnorm, conv_model, X4, 2)


def test_fold_batchnorm_leaves_what_it_cannot_fold():
    cases = [
        Sequential(Dense(6, 8, "relu"), _bn(8), ReLU()),  # activation before, nothing foldable after
        Sequential(Conv2d(4, 4, 1, activation="relu"), _bn(4), Conv2d(4, 2, 3, padding=1)),  # padding after
        Sequential(Dense(6, 8), BatchNorm(8, track_running_stats=False)),  # batch statistics
    ]
    for model in cases:
        x = X4 if isinstance(model[0], Conv2d) else X2
        before, optimized, result = _apply(fold_batchnorm, model)
        assert not result.changed and leaf_count(optimized) == leaf_count(before)
        assert_close(run(optimized, x), run(before, x), rtol=0, atol=0)
    training = Sequential(Dense(6, 8), _bn(8)).train()
    assert not fold_batchnorm(training)[1].changed


def test_fold_batchnorm_inside_residual_and_parallel():
    model = Sequential(
        Dense(6, 6),
        Residual(Dense(6, 6), _bn(6)),
        Parallel(Sequential(Dense(6, 4), _bn(4)), Sequential(Conv2d_free := Dense(6, 2), _bn(2))),
    )
    assert Conv2d_free.weight.shape == (6, 2)
    optimized, result = _check(fold_batchnorm, model, X2, 4)
    assert sorted(c.split(":")[0] for c in result.changes) == ["1.1", "2.0.1", "2.1.1"]


def test_fold_constants_rules():
    rng = np.random.default_rng(3)
    vec = Affine(scale=rng.uniform(0.5, 2, 6), shift=rng.standard_normal(6))
    _check(fold_constants, Sequential(Affine(scale=2.0), Affine(shift=rng.standard_normal(6))), X2, 1)
    _check(fold_constants, Sequential(copy.deepcopy(vec), Dense(6, 4, "relu")), X2, 1)
    _check(fold_constants, Sequential(Dense(6, 4, bias=False), Affine(scale=rng.uniform(0.5, 2, 4), shift=1.0)), X2, 1)
    optimized, _ = _check(fold_constants, Sequential(Dense(6, 4), Dense(4, 3, "relu")), X2, 1)
    assert optimized[0].weight.shape == (6, 3) and optimized[0].activation is not None
    chan = Affine(scale=rng.uniform(0.5, 2, (1, 1, 4)), shift=rng.standard_normal(4))
    _check(fold_constants, Sequential(Conv2d(4, 4, 3, padding=1), chan), X4, 1)
    image = (None, 7, 7, 4)
    _check(fold_constants, Sequential(copy.deepcopy(chan), Conv2d(4, 6, 3, groups=2), input_shape=image), X4, 1)
    depthwise = DepthwiseConv2d(1, channels=4, padding="same")
    _check(fold_constants, Sequential(copy.deepcopy(chan), depthwise, input_shape=image), X4, 1)
    _check(fold_constants, Sequential(copy.deepcopy(chan), Conv2d(4, 4, 1, stride=2), input_shape=image), X4, 1)


def test_fold_constants_refuses_inexact_or_larger_folds():
    rng = np.random.default_rng(4)
    cases = [
        (Sequential(Dense(6, 2), Dense(2, 6)), X2),  # a bottleneck: W1 W2 would be 6x6 > 2 * (6 + 6)
        (Sequential(Dense(6, 4, "relu"), Dense(4, 3)), X2),  # a nonlinearity between
        (Sequential(Affine(scale=rng.uniform(0.5, 2, (1, 1, 4))), Conv2d(4, 4, 3, padding=1)), X4),  # padding
        (Sequential(Conv2d(4, 4, 1), Affine(scale=rng.uniform(0.5, 2, (7, 7, 4)))), X4),  # not per channel
    ]
    for model, x in cases:
        before, optimized, result = _apply(fold_constants, model)
        assert not result.changed, result.changes
        np.testing.assert_array_equal(run(optimized, x), run(before, x))


def test_remove_dead_layers_cases():
    model = Sequential(
        Dense(6, 6),
        Dropout(0.5),
        Activation("identity"),
        Permute((0,)),
        Reshape((-1,)),
        Flatten(),
        Reshape((2, 3)),
        Flatten(),
        Dense(6, 2),
    )
    optimized, result = _check(remove_dead_layers, model, X2, 2, tol=0)
    assert [layer.name for layer in optimized] == ["Dense", "Dense"]
    assert len(result.changes) == 7
    assert "overridden by the Reshape after it" in "\n".join(result.changes)


def test_remove_dead_layers_keeps_non_identities_and_one_layer_per_chain():
    kept = Sequential(Dense(6, 6), Permute((0,)), Reshape((2, 3)), Permute((1, 0)), Flatten(), Dense(6, 1))
    before, optimized, result = _apply(remove_dead_layers, kept)
    assert [layer.name for layer in optimized] == ["Dense", "Reshape", "Permute", "Flatten", "Dense"]
    assert len(result.changes) == 1
    np.testing.assert_array_equal(run(optimized, X2), run(before, X2))
    only_dead = Sequential(Reshape((2, 3)), Reshape((6,)), Dropout(0.1))
    _, optimized, result = _apply(remove_dead_layers, only_dead)
    assert len(optimized) == 1 and optimized.output_shape(("batch", 6)) == ("batch", 6)
    np.testing.assert_array_equal(run(optimized, X2), X2)
    residual = Sequential(Dense(6, 6), Residual(Dropout(0.3)))
    _, optimized, _ = _apply(remove_dead_layers, residual)
    np.testing.assert_array_equal(run(optimized, X2), run(residual, X2))


def test_inline_and_fuse():
    model = Sequential(Sequential(Dense(6, 4), Sequential(ReLU(), Dense(4, 4))), Activation("gelu"), Softmax())
    optimized, result = _check(inline_sequential, model, X2, 5, tol=0)
    assert [layer.name for layer in optimized] == ["Dense", "ReLU", "Dense", "Activation", "Softmax"]
    assert len(result.changes) == 2
    optimized, result = _check(fuse_activations, optimized, X2, 3, tol=0)
    assert repr(optimized.layers[:2]) == "[Dense(6, 4, relu), Dense(4, 4, gelu)]"
    checked = Sequential(Sequential(Dense(6, 4), check_finite=True), ReLU())
    assert not inline_sequential(checked)[1].changed


def test_containers_with_their_own_forward_are_left_alone():
    class Doubling(Sequential):
        def forward(self, x):
            return super().forward(x) * 2

    model = Sequential(Doubling(Dense(6, 6), _bn(6), Dropout(0.1)), Dense(6, 2))
    for graph_pass in PASSES:
        _, optimized, _ = _apply(graph_pass, model)
        assert len(optimized[0].layers) == 3
