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
from compiler_models import image_model, sequence_model

from axiom import compile
from axiom.backends import FallbackWarning, get_backend

NATIVE = ("c", "rust", "zig")


def native_backend(kind: str):  # noqa: ANN201 - a NativeBackend
    try:
        return get_backend(kind)
    except (ImportError, OSError) as err:
        if os.environ.get("AXIOM_REQUIRE_NATIVE") == "1":
            raise
        pytest.skip(f"the {kind} kernel library is not built here: {err}")


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
