"""``compile(model, backend=...)`` on the C, Rust and Zig libraries: every layer of the design runs natively.

Two models cover every layer kind (Dense, Conv2d with stride / "same" padding / dilation /
groups, DepthwiseConv2d, BatchNorm, LayerNorm, RMSNorm, MaxPool2d, AvgPool2d, GlobalAvgPool,
Flatten, Reshape, Dropout, MultiHeadAttention with and without RoPE, Embedding, every
activation as a layer, Softmax, LogSoftmax, Residual, Concat): compiled for each native backend
they must record no fallback, warn nothing and agree with the NumPy reference backend; the
three libraries must agree with each other too. A library that is not built is skipped, unless
``AXIOM_REQUIRE_NATIVE=1``.
"""

from __future__ import annotations

import os
import warnings

import numpy as np
import pytest

from axiom import compile, manual_seed
from axiom.backends import FallbackWarning, get_backend
from axiom.nn import (
    ELU,
    GELU,
    SELU,
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
    LayerNorm,
    LeakyReLU,
    LogSoftmax,
    MaxPool2d,
    Mish,
    MultiHeadAttention,
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
)

NATIVE = ("c", "rust", "zig")


def native_backend(kind: str):  # noqa: ANN201 - a NativeBackend
    try:
        return get_backend(kind)
    except (ImportError, OSError) as err:
        if os.environ.get("AXIOM_REQUIRE_NATIVE") == "1":
            raise
        pytest.skip(f"the {kind} kernel library is not built here: {err}")


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


MODELS = {"image": image_model, "sequence": sequence_model}


@pytest.mark.parametrize("kind", NATIVE)
@pytest.mark.parametrize("which", sorted(MODELS))
def test_every_layer_runs_natively(kind: str, which: str) -> None:
    native_backend(kind)
    model, x = MODELS[which]()
    want = compile(model, backend="numpy")(x).numpy()
    compiled = compile(model, backend=kind)
    with warnings.catch_warnings():
        warnings.simplefilter("error", FallbackWarning)
        got = compiled(x).numpy()
    assert compiled.fallbacks == {}, compiled.fallbacks
    assert got.dtype == np.float32 and got.shape == want.shape
    np.testing.assert_allclose(got, want, rtol=2e-4, atol=2e-5)


@pytest.mark.parametrize("which", sorted(MODELS))
def test_the_three_libraries_agree(which: str) -> None:
    outputs = {}
    for kind in NATIVE:
        native_backend(kind)
        model, x = MODELS[which]()
        outputs[kind] = compile(model, backend=kind)(x).numpy()
    for kind in NATIVE[1:]:
        np.testing.assert_allclose(outputs[kind], outputs["c"], rtol=2e-4, atol=2e-5, err_msg=kind)
