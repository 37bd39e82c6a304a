"""Random models for the compiler tests: Hypothesis strategies over architectures with
BatchNorm, Dropout, Affine, identity layers and nested containers, plus helpers to run them.

A strategy draws a *recipe* (plain data, so Hypothesis shrinks it) and a seed; ``build`` turns
it into a model with seeded weights and random BatchNorm running statistics.
"""

from __future__ import annotations

import copy
from collections.abc import Callable

import numpy as np
from hypothesis import strategies as st

from axiom import (
    ELU,
    GELU,
    SELU,
    Activation,
    Affine,
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
    Hardsigmoid,
    Hardswish,
    Layer,
    LayerNorm,
    LeakyReLU,
    LogSoftmax,
    MaxPool2d,
    Mish,
    MultiHeadAttention,
    Parallel,
    Permute,
    ReLU,
    ReLU6,
    Reshape,
    Residual,
    RMSNorm,
    Sequential,
    Sigmoid,
    SiLU,
    Softmax,
    Softplus,
    Softsign,
    Tanh,
    Tensor,
    manual_seed,
)
from axiom.backends import ReferenceBackend, use_backend

DENSE_KINDS = (
    "dense",
    "dense_relu",
    "dense_nobias",
    "bn",
    "bn_plain",
    "bn_batchstats",
    "dropout",
    "affine_vec",
    "affine_scalar",
    "identity",
    "relu",
    "reshape_same",
    "flatten",
    "permute_id",
    "residual",
    "parallel",
    "nested",
    "block",
)

CONV_KINDS = (
    "conv",
    "conv_relu",
    "conv_nobias",
    "conv_same",
    "conv_grouped",
    "depthwise",
    "bn",
    "bn_plain",
    "dropout",
    "affine_channel",
    "affine_scalar",
    "relu",
    "block",
)


def randomize_statistics(model: Layer, rng: np.random.Generator) -> Layer:
    """Give every BatchNorm non-trivial running statistics and affine parameters (variance in [0.1, 2])."""
    for layer in model.modules():
        if isinstance(layer, BatchNorm) and layer.running_mean is not None:
            c = layer.num_features
            layer.running_mean.data = rng.standard_normal(c).astype(layer.running_mean.dtype)
            layer.running_var.data = rng.uniform(0.1, 2.0, c).astype(layer.running_var.dtype)
            if layer.weight is not None:
                layer.weight.data = (rng.uniform(0.5, 1.5, c) * rng.choice([-1, 1], c)).astype(layer.weight.dtype)
                layer.bias.data = rng.standard_normal(c).astype(layer.bias.dtype)
    return model


def _dense_block(kind: str, width: int, out: int, rng: np.random.Generator) -> tuple[Layer, int]:
    """One layer (or container) of kind ``kind`` on ``(batch, width)``; returns it and its output width."""
    if kind == "dense":
        return Dense(width, out), out
    if kind == "dense_relu":
        return Dense(width, out, "relu"), out
    if kind == "dense_nobias":
        return Dense(width, out, bias=False), out
    if kind == "bn":
        return BatchNorm(width), width
    if kind == "bn_plain":
        return BatchNorm(width, affine=False), width
    if kind == "bn_batchstats":  # no running stats: never foldable, must survive
        return BatchNorm(width, track_running_stats=False), width
    if kind == "dropout":
        return Dropout(0.5), width
    if kind == "affine_vec":
        return Affine(
            scale=rng.uniform(0.5, 2.0, width) * rng.choice([-1, 1], width), shift=rng.standard_normal(width)
        ), width
    if kind == "affine_scalar":
        return Affine(scale=float(rng.uniform(0.5, 2.0)), shift=float(rng.standard_normal())), width
    if kind == "identity":
        return Activation("identity"), width
    if kind == "relu":
        return ReLU(), width
    if kind == "reshape_same":
        return Reshape((-1,)), width
    if kind == "flatten":
        return Flatten(), width
    if kind == "permute_id":
        return Permute((0,)), width
    if kind == "residual":
        return Residual(Dense(width, width), BatchNorm(width), Dropout(0.2)), width
    if kind == "parallel":
        return Parallel(
            Sequential(Dense(width, out), BatchNorm(out)), Sequential(Affine(scale=2.0), Dense(width, 2))
        ), out + 2
    if kind == "nested":
        return Sequential(Dense(width, out), BatchNorm(out), Sequential(Dropout(0.1), Affine(shift=1.0))), out
    if kind == "block":
        return Sequential(Dense(width, out), ReLU(), BatchNorm(out), Dropout(0.1)), out
    raise AssertionError(kind)


@st.composite
def dense_recipes(draw: st.DrawFn, max_layers: int = 6) -> dict:
    """A random rank-2 architecture: input width, layer kinds with output widths, a seed and a batch size."""
    return {
        "width": draw(st.integers(1, 8)),
        "layers": draw(
            st.lists(st.tuples(st.sampled_from(DENSE_KINDS), st.integers(1, 8)), min_size=1, max_size=max_layers)
        ),
        "seed": draw(st.integers(0, 2**32 - 1)),
        "batch": draw(st.integers(1, 4)),
    }


def build_dense(recipe: dict) -> tuple[Sequential, np.ndarray]:
    """The model of a dense recipe and a float32 input batch for it."""
    manual_seed(recipe["seed"] % 2**31)
    rng = np.random.default_rng(recipe["seed"])
    width = recipe["width"]
    layers = []
    for kind, out in recipe["layers"]:
        layer, width = _dense_block(kind, width, out, rng)
        layers.append(layer)
    model = randomize_statistics(Sequential(*layers, input_shape=(None, recipe["width"])), rng)
    x = rng.standard_normal((recipe["batch"], recipe["width"])).astype(np.float32)
    return model, x


def _conv_block(kind: str, c: int, out: int, rng: np.random.Generator) -> tuple[Layer, int]:
    if kind == "conv":
        return Conv2d(c, out, 2), out
    if kind == "conv_relu":
        return Conv2d(c, out, 1, activation="relu"), out
    if kind == "conv_nobias":
        return Conv2d(c, out, 3, padding=1, bias=False), out
    if kind == "conv_same":
        return Conv2d(c, out, 3, padding="same", stride=2), out
    if kind == "conv_grouped":
        return Conv2d(c, c * 2, 1, groups=c), c * 2
    if kind == "depthwise":
        return DepthwiseConv2d(2, padding="same", channels=c, depth_multiplier=2), c * 2
    if kind == "bn":
        return BatchNorm(c), c
    if kind == "bn_plain":
        return BatchNorm(c, affine=False), c
    if kind == "dropout":
        return Dropout(0.3), c
    if kind == "affine_channel":
        shape = (c,) if rng.random() < 0.5 else (1, 1, c)
        return Affine(scale=rng.uniform(0.5, 2.0, shape), shift=rng.standard_normal(shape)), c
    if kind == "affine_scalar":
        return Affine(scale=0.5, shift=-1.0), c
    if kind == "relu":
        return ReLU(), c
    if kind == "block":
        if rng.random() < 0.5:
            return Sequential(Conv2d(c, out, 3, padding="same"), BatchNorm(out), Activation("silu")), out
        return Sequential(Conv2d(c, out, 1), ReLU()), out
    raise AssertionError(kind)


@st.composite
def conv_recipes(draw: st.DrawFn, max_layers: int = 5) -> dict:
    """A random NHWC architecture ending in Flatten + Dense."""
    return {
        "channels": draw(st.integers(1, 3)),
        "size": draw(st.integers(4, 7)),
        "layers": draw(
            st.lists(st.tuples(st.sampled_from(CONV_KINDS), st.integers(1, 4)), min_size=1, max_size=max_layers)
        ),
        "head": draw(st.sampled_from(["none", "dense", "bn_dense"])),
        "seed": draw(st.integers(0, 2**32 - 1)),
        "batch": draw(st.integers(1, 3)),
    }


def build_conv(recipe: dict) -> tuple[Sequential, np.ndarray]:
    """The model of a conv recipe (layers that no longer fit the shrinking image are skipped) and an input."""
    manual_seed(recipe["seed"] % 2**31)
    rng = np.random.default_rng(recipe["seed"])
    c, size = recipe["channels"], recipe["size"]
    shape = ("batch", size, size, c)
    layers: list[Layer] = []
    for kind, out in recipe["layers"]:
        layer, c_next = _conv_block(kind, c, out, rng)
        try:
            next_shape = layer.output_shape(shape)
        except ValueError:
            continue
        if next_shape[1] < 1 or next_shape[2] < 1:
            continue
        layers.append(layer)
        shape, c = next_shape, c_next
    if recipe["head"] != "none" or not layers:
        layers.append(Flatten())
        if recipe["head"] == "bn_dense":
            layers.append(BatchNorm())
        layers.append(Dense(3))
    model = Sequential(*layers, input_shape=(None, recipe["size"], recipe["size"], recipe["channels"]))
    randomize_statistics(model, rng)
    x = rng.standard_normal((recipe["batch"], recipe["size"], recipe["size"], recipe["channels"])).astype(np.float32)
    return model, x


def run(model: Layer, x: np.ndarray, dtype: type = np.float32) -> np.ndarray:
    """The model's output on the NumPy reference backend, in ``dtype`` (a float64 run uses a float64 copy)."""
    if dtype is np.float64:
        model = copy.deepcopy(model).to("float64")
    with use_backend(ReferenceBackend()):
        return model(Tensor(x.astype(dtype))).numpy().astype(np.float64)


def scale(y: np.ndarray) -> float:
    """The output's scale for absolute tolerances: ``max(1, max |y|)``."""
    return max(1.0, float(np.max(np.abs(y)))) if y.size else 1.0


def assert_close(got: np.ndarray, want: np.ndarray, rtol: float, atol: float) -> None:
    """``|got - want| <= atol * scale(want) + rtol * |want|`` elementwise (the tolerance stated in docs/backends.md)."""
    tol = atol * scale(want) + rtol * np.abs(want)
    err = np.abs(got - want)
    assert got.shape == want.shape, (got.shape, want.shape)
    bad = ~(err <= tol)
    assert not bad.any(), (
        f"max error {err.max():.3g} over tolerance (rtol {rtol}, atol {atol} x scale {scale(want):.3g})"
    )


def chain_pairs(model: Layer) -> list[tuple[Layer, Layer]]:
    """Adjacent pairs of layers in every plain chain (Sequential/Residual) of ``model``."""
    pairs = []
    for layer in model.modules():
        if type(layer) in (Sequential, Residual):
            pairs.extend(zip(layer.layers, layer.layers[1:]))
    return pairs


Predicate = Callable[[Layer], bool]


# -- two models with every layer kind of the design (native and GPU parity tests) ----------------------


def image_model() -> tuple[Sequential, np.ndarray]:
    manual_seed(1)
    model = Sequential(
        Conv2d(3, 8, 3, padding="same"),
        BatchNorm(),
        ReLU(),
        Conv2d(8, 8, 3, stride=2, padding=1, dilation=1, groups=2),
        LeakyReLU(0.1),
        DepthwiseConv2d(3, padding=2, dilation=2),
        ELU(),
        MaxPool2d(2, padding=1),
        Residual(Conv2d(8, 8, 1), SELU()),
        Concat(AvgPool2d(3, 1, padding=1, count_include_pad=False), MaxPool2d(3, 1, padding=1, dilation=1)),
        GELU(),
        Conv2d(16, 12, 3, padding=1),
        Hardswish(),
        GlobalAvgPool(),
        Dropout(0.3),
        Dense(10),
        Mish(),
        Dense(7),
        Hardsigmoid(),
        Dense(5),
        LogSoftmax(),
        input_shape=(None, 13, 11, 3),
    )
    model.eval()
    x = np.random.default_rng(0).standard_normal((4, 13, 11, 3)).astype(np.float32)
    return model, x


def sequence_model() -> tuple[Sequential, np.ndarray]:
    manual_seed(2)
    model = Sequential(
        Embedding(50, 16),
        Residual(LayerNorm(), MultiHeadAttention(16, 4, causal=True, rope=True)),
        Residual(RMSNorm(), MultiHeadAttention(16, 2)),
        Flatten(),
        Residual(LayerNorm(), Dense(32), SiLU(), Dense(144)),
        Dense(16),
        Tanh(),
        Dense(16),
        Softplus(),
        Dense(16),
        Softsign(),
        Dense(16),
        ReLU6(),
        Dense(16),
        Sigmoid(),
        Reshape((4, 4)),
        Flatten(),
        Dense(6),
        Softmax(),
        input_shape=(None, 9),
    )
    model.eval()
    tokens = np.random.default_rng(1).integers(0, 50, size=(3, 9))
    return model, tokens
