"""Specific checks of the NN kernels of every library: C (``csrc/nn_*.c`` through ``axiom._core._nn``),
Rust and Zig (through ctypes); each test runs once per library (``library_kind`` in ``conftest.py``).

The op table (``test_op_table.py``) fuzzes every op; this file checks what fuzzing samples
poorly: flash attention at block boundaries, with masks and causal alignment, against the
reference and PyTorch SDPA, and with long sequences in linear memory; the backward kernels
(norms, pooling, softmax, every activation, flash-attention backward) against PyTorch
autograd in float64; the SIMD math
of the activations and of their derivatives on dense grids, in ulps; results that do not
depend on the number of threads (OpenMP in C, std threads in Rust and Zig); errors, dtypes and
fallbacks of the Python layer.
"""

from __future__ import annotations

import math
import os
import subprocess
import sys
import textwrap
import tracemalloc
import warnings

import ml_dtypes
import numpy as np
import pytest
from native_libs import run_in_threads

from axiom.backends import ACTIVATIONS, FallbackWarning, ReferenceBackend, abi
from axiom.backends.c_kernels import ACTIVATION_CODES, C_NN_OPS

torch = pytest.importorskip("torch")
F = torch.nn.functional

REF = ReferenceBackend()
pytestmark = pytest.mark.filterwarnings("ignore::RuntimeWarning")


@pytest.fixture(scope="session")
def be(native):  # noqa: ANN001, ANN201 - the NativeBackend under test (conftest.py: C, Rust, Zig)
    missing = native.nn_kernels.missing("softmax")  # the C library's Cython module axiom._core._nn
    if missing:
        (pytest.fail if os.environ.get("AXIOM_REQUIRE_NATIVE") == "1" else pytest.skip)(missing)
    return native


def t(a: np.ndarray) -> torch.Tensor:
    return torch.from_numpy(np.array(a, dtype=np.float64, order="C"))


# -- flash attention ------------------------------------------------------------------------

BLOCK_SIZES = [1, 5, 63, 64, 65, 96, 97, 130]


def sdpa(q, k, v, causal, scale, mask=None) -> np.ndarray:  # noqa: ANN001
    """PyTorch SDPA in float64 with end-aligned causal masking folded into an additive mask."""
    lq, lk = q.shape[-2], k.shape[-2]
    m = torch.zeros(lq, lk, dtype=torch.float64)
    if mask is not None:
        m = m + t(mask)
    if causal:
        m = m.masked_fill(torch.ones(lq, lk, dtype=torch.bool).triu(1 + lk - lq), -math.inf)
    return F.scaled_dot_product_attention(t(q), t(k), t(v), attn_mask=m, scale=scale).numpy()


@pytest.mark.parametrize("lq", BLOCK_SIZES)
@pytest.mark.parametrize("lk", [1, 64, 97, 130])
@pytest.mark.parametrize("causal", [False, True])
def test_attention_block_boundaries(be, lq: int, lk: int, causal: bool) -> None:  # noqa: ANN001
    rng = np.random.default_rng(lq * 1000 + lk)
    d, dv = (64, 64) if lq % 2 else (17, 40)
    q, k = rng.standard_normal((2, 3, lq, d)), rng.standard_normal((2, 3, lk, d))
    v = rng.standard_normal((2, 3, lk, dv))
    scale = 1 / math.sqrt(d)
    want = REF.attention(q, k, v, causal, scale)
    for dtype, tol in ((np.float64, 1e-12), (np.float32, 3e-6)):
        got = be.attention(q.astype(dtype), k.astype(dtype), v.astype(dtype), causal, scale)
        assert got.dtype == dtype and got.shape == want.shape
        np.testing.assert_array_equal(np.isnan(got), np.isnan(want))  # causal with lq > lk: NaN rows
        np.testing.assert_allclose(got, want, rtol=tol, atol=tol, equal_nan=True)
    if lq <= lk or not causal:
        np.testing.assert_allclose(be.attention(q, k, v, causal, scale), sdpa(q, k, v, causal, scale), atol=1e-12)


@pytest.mark.parametrize(
    "mask_shape",
    [(7, 70), (1, 1, 7, 70), (2, 1, 1, 70), (1, 3, 7, 70), (2, 3, 7, 70), (70,), (7, 1), (2, 3, 1, 1)],
)
def test_attention_masks_broadcast(be, mask_shape: tuple[int, ...]) -> None:  # noqa: ANN001
    rng = np.random.default_rng(len(mask_shape))
    q, k, v = (
        rng.standard_normal((2, 3, 7, 16)),
        rng.standard_normal((2, 3, 70, 16)),
        rng.standard_normal((2, 3, 70, 9)),
    )
    mask = rng.standard_normal(mask_shape)
    mask[rng.random(mask_shape) < 0.2] = -np.inf
    for causal in (False, True):
        want = REF.attention(q, k, v, causal, 0.3, mask)
        got = be.attention(q.astype(np.float32), k.astype(np.float32), v.astype(np.float32), causal, 0.3,
                           mask.astype(np.float32))  # fmt: skip
        np.testing.assert_array_equal(np.isnan(got), np.isnan(want))
        np.testing.assert_allclose(got, want, rtol=1e-5, atol=2e-6, equal_nan=True)
        np.testing.assert_allclose(be.attention(q, k, v, causal, 0.3, mask), want, atol=1e-12, equal_nan=True)
    bool_mask = rng.random(mask_shape) < 0.5  # added as 0/1, like the reference
    np.testing.assert_allclose(
        be.attention(q, k, v, False, 0.3, bool_mask), REF.attention(q, k, v, False, 0.3, bool_mask)
    )


def test_attention_special_values(be) -> None:  # noqa: ANN001
    rng = np.random.default_rng(0)
    q, k, v = (rng.standard_normal((1, 1, 4, 8)).astype(np.float32) for _ in range(3))
    mask = np.zeros((4, 4), np.float32)
    mask[1] = -np.inf  # a row that sees nothing
    mask[2, 3] = np.inf  # +inf score: NaN like the reference
    q[0, 0, 3, 0] = np.nan
    got = be.attention(q, k, v, False, 0.5, mask)
    want = REF.attention(q.astype(np.float64), k, v, False, 0.5, mask)
    np.testing.assert_array_equal(np.isnan(got), np.isnan(want))
    assert np.isnan(got[0, 0, 1:]).all() and np.isfinite(got[0, 0, 0]).all()
    # large scores stay finite (online softmax rescaling), like the reference
    big = be.attention(q[..., :1, :] * 1e3, k * 1e3, v, False, 1.0)
    np.testing.assert_allclose(big, REF.attention(q[..., :1, :].astype(np.float64) * 1e3, k * 1e3, v, False, 1.0),
                               atol=1e-5)  # fmt: skip
    # no keys at all: NaN (the reference refuses an empty softmax)
    assert np.isnan(be.attention(q, k[..., :0, :], v[..., :0, :], False, 1.0)).all()


def test_attention_long_sequence_linear_memory(be) -> None:  # noqa: ANN001
    """L = 4096 with a key-padding mask: the L x L score matrix (64 MB in float32) never exists.

    tracemalloc sees every NumPy allocation of the wrapper (inputs are 1 MB each); each library's kernel
    scratch is O(block * (d + dv)) per thread by design (csrc/nn_attention.c).
    """
    L, d = 4096, 64
    rng = np.random.default_rng(1)
    q, k, v = (rng.standard_normal((1, 1, L, d)).astype(np.float32) for _ in range(3))
    mask = np.where(rng.random((1, 1, 1, L)) < 0.1, -np.inf, 0.0).astype(np.float32)
    tracemalloc.start()
    try:
        out = be.attention(q, k, v, True, 1 / 8, mask)
        _, peak = tracemalloc.get_traced_memory()
    finally:
        tracemalloc.stop()
    assert peak < 8 * 2**20, f"attention allocated {peak / 2**20:.1f} MB in Python for L={L}"
    rows = np.array([0, 1, 777, 2048, L - 1])
    s = (q[0, 0, rows].astype(np.float64) @ k[0, 0].T.astype(np.float64)) / 8 + mask[0, 0]
    s = np.where(np.arange(L)[None, :] > rows[:, None], -np.inf, s)
    p = np.exp(s - s.max(axis=1, keepdims=True))
    want = (p / p.sum(axis=1, keepdims=True)) @ v[0, 0].astype(np.float64)
    np.testing.assert_allclose(out[0, 0, rows], want, rtol=1e-4, atol=1e-5)


def test_attention_broadcasts_leading_dims_and_ranks(be) -> None:  # noqa: ANN001
    rng = np.random.default_rng(2)
    q = rng.standard_normal((2, 4, 5, 8))
    k, v = rng.standard_normal((1, 4, 6, 8)), rng.standard_normal((2, 1, 6, 3))  # heads / batch broadcast
    np.testing.assert_allclose(be.attention(q, k, v, True, 0.5), REF.attention(q, k, v, True, 0.5), atol=1e-12)
    q3, k3, v3 = q[0], k[0], v[0, 0]  # 3-D and 2-D operands, like numpy.matmul
    np.testing.assert_allclose(be.attention(q3, k3, v3, False, 0.5), REF.attention(q3, k3, v3, False, 0.5), atol=1e-12)
    np.testing.assert_allclose(be.attention(q[0, 0], k[0, 0], v[0, 0], False, 0.5),
                               REF.attention(q[0, 0], k[0, 0], v[0, 0], False, 0.5), atol=1e-12)  # fmt: skip


# -- backward kernels vs PyTorch autograd ---------------------------------------------------


def autograd(fn, *tensors):  # noqa: ANN001, ANN201
    """Run ``fn`` on float64 leaf copies of ``tensors`` (None stays None) and return (y, grads, seed)."""
    leaves = [None if a is None else t(a).requires_grad_(True) for a in tensors]
    y = fn(*leaves)
    g = torch.from_numpy(np.random.default_rng(7).standard_normal(tuple(y.shape)))
    y.backward(g)
    return y.detach().numpy(), [None if a is None else a.grad.numpy() for a in leaves], g.numpy()


@pytest.mark.parametrize("dtype, tol", [(np.float64, 1e-10), (np.float32, 2e-4)])
@pytest.mark.parametrize("with_gamma", [True, False])
def test_norm_backward(be, dtype, tol, with_gamma: bool) -> None:  # noqa: ANN001
    rng = np.random.default_rng(3)
    x = rng.standard_normal((5, 7, 33)) * 3 + 1
    gamma = rng.standard_normal((7, 33)) if with_gamma else None
    beta = rng.standard_normal((7, 33))
    _, (gx, gg, gb), g = autograd(lambda x, w, b: F.layer_norm(x, (7, 33), w, b, 1e-5), x, gamma, beta)
    dx, dgamma, dbeta = be.layernorm_backward(g.astype(dtype), x.astype(dtype), gamma, 1e-5, 2)
    np.testing.assert_allclose(dx, gx, rtol=tol, atol=tol)
    np.testing.assert_allclose(dbeta, gb, rtol=tol, atol=tol * 10)
    assert (dgamma is None) == (gamma is None)
    if gamma is not None:
        np.testing.assert_allclose(dgamma, gg, rtol=tol, atol=tol * 10)

    _, (gx, gg), g = autograd(lambda x, w: F.rms_norm(x, (7, 33), w, 1e-5), x, gamma)
    dx, dgamma = be.rmsnorm_backward(g.astype(dtype), x.astype(dtype), gamma, 1e-5, 2)
    np.testing.assert_allclose(dx, gx, rtol=tol, atol=tol)
    if gamma is not None:
        np.testing.assert_allclose(dgamma, gg, rtol=tol, atol=tol * 10)

    c = 33
    mean, var = rng.standard_normal(c), rng.random(c) + 0.5
    gamma_c = rng.standard_normal(c) if with_gamma else None

    def bn(x, w, b):  # noqa: ANN001, ANN202
        return F.batch_norm(x.reshape(-1, c), t(mean), t(var), w, b, False, 0.0, 1e-5).reshape(x.shape)

    _, (gx, gg, gb), g = autograd(bn, x, gamma_c, rng.standard_normal(c))
    dx, dgamma, dbeta = be.batchnorm_backward(g.astype(dtype), x.astype(dtype), mean, var, gamma_c, 1e-5)
    np.testing.assert_allclose(dx, gx, rtol=tol, atol=tol)
    np.testing.assert_allclose(dbeta, gb, rtol=tol, atol=tol * 10)
    if gamma_c is not None:
        np.testing.assert_allclose(dgamma, gg, rtol=tol, atol=tol * 10)


def test_norm_backward_large_rows_use_threads_consistently(be) -> None:  # noqa: ANN001
    rng = np.random.default_rng(4)
    x, g = rng.standard_normal((2048, 768)).astype(np.float32), rng.standard_normal((2048, 768)).astype(np.float32)
    gamma = rng.standard_normal(768).astype(np.float32)
    gt = torch.from_numpy(g.astype(np.float64))
    xl, wl = t(x).requires_grad_(True), t(gamma).requires_grad_(True)
    F.layer_norm(xl, (768,), wl, None, 1e-5).backward(gt)
    dx, dgamma, dbeta = be.layernorm_backward(g, x, gamma, 1e-5, 1)
    np.testing.assert_allclose(dx, xl.grad.numpy(), rtol=1e-3, atol=2e-4)
    np.testing.assert_allclose(dgamma, wl.grad.numpy(), rtol=1e-4, atol=1e-3)
    np.testing.assert_allclose(dbeta, g.astype(np.float64).sum(0), rtol=1e-4, atol=1e-3)


POOLS = [  # kernel, stride, symmetric padding, dilation
    ((2, 2), (2, 2), (0, 0), (1, 1)),
    ((3, 3), (1, 1), (1, 1), (1, 1)),
    ((3, 2), (2, 1), (1, 0), (2, 1)),
    ((4, 4), (3, 3), (2, 1), (1, 1)),
]


@pytest.mark.parametrize("kernel, stride, pad, dilation", POOLS)
@pytest.mark.parametrize("dtype", [np.float64, np.float32])
def test_pool_backward(be, kernel, stride, pad, dilation, dtype) -> None:  # noqa: ANN001
    rng = np.random.default_rng(5)
    x = rng.integers(-3, 4, (2, 9, 11, 19)).astype(np.float64)  # many ties: the first maximum wins
    padding = ((pad[0], pad[0]), (pad[1], pad[1]))

    def torch_max(x):  # noqa: ANN001, ANN202
        return F.max_pool2d(x.permute(0, 3, 1, 2), kernel, stride, pad, dilation).permute(0, 2, 3, 1)

    y, (gx,), g = autograd(torch_max, x)
    np.testing.assert_array_equal(be.max_pool2d(x.astype(dtype), kernel, stride, padding, dilation), y)
    dx = be.max_pool2d_backward(g.astype(dtype), x.astype(dtype), kernel, stride, padding, dilation)
    assert dx.dtype == dtype
    np.testing.assert_allclose(dx, gx, rtol=1e-6, atol=1e-6)

    for include in (True, False):

        def torch_avg(x, include=include):  # noqa: ANN001, ANN202
            return F.avg_pool2d(x.permute(0, 3, 1, 2), kernel, stride, pad, count_include_pad=include).permute(
                0, 2, 3, 1
            )

        y, (gx,), g = autograd(torch_avg, x)
        np.testing.assert_allclose(be.avg_pool2d(x.astype(dtype), kernel, stride, padding, include), y, rtol=1e-6)
        dx = be.avg_pool2d_backward(g.astype(dtype), x.shape, kernel, stride, padding, include)
        np.testing.assert_allclose(dx, gx, rtol=1e-5, atol=1e-6)

    y, (gx,), g = autograd(lambda x: x.mean((1, 2)), x)
    np.testing.assert_allclose(be.global_avg_pool_backward(g.astype(dtype), x.shape), gx, rtol=1e-6)


def test_max_pool_backward_nan_and_padding_only_windows(be) -> None:  # noqa: ANN001
    x = np.array([1.0, np.nan, 3.0, np.nan], np.float32).reshape(1, 2, 2, 1)
    g = np.ones((1, 1, 1, 1), np.float32)
    dx = be.max_pool2d_backward(g, x, (2, 2), (2, 2), ((0, 0), (0, 0)), (1, 1))
    assert dx.ravel().tolist() == [0.0, 0.0, 0.0, 1.0]  # like PyTorch: the last NaN takes the gradient
    # windows made of padding only receive nothing (and give -inf forward)
    y = be.max_pool2d(x, (1, 1), (1, 1), ((2, 0), (0, 0)), (1, 1))
    assert np.isneginf(y[0, :2]).all()
    dx = be.max_pool2d_backward(np.ones(y.shape, np.float32), x, (1, 1), (1, 1), ((2, 0), (0, 0)), (1, 1))
    assert dx.ravel().tolist() == [1.0, 1.0, 1.0, 1.0]


@pytest.mark.parametrize("dtype", [np.float64, np.float32])
def test_avg_pool_windows_deep_in_the_padding(be, dtype) -> None:  # noqa: ANN001
    """A window of padding only averages 0/0 = NaN without count_include_pad (a regression: the valid
    tap range of a window starting further than its kernel inside the top/left padding was negative)."""
    x = np.arange(1.0, 7.0, dtype=dtype).reshape(1, 2, 3, 1)
    pads = ((3, 1), (2, 1))
    for kernel, stride in (((1, 1), (1, 1)), ((2, 1), (1, 2)), ((1, 2), (2, 1))):
        want = ReferenceBackend().avg_pool2d(x.astype(np.float64), kernel, stride, pads, False)
        got = be.avg_pool2d(x, kernel, stride, pads, False)
        np.testing.assert_allclose(got, want, rtol=1e-6)
        assert np.isnan(got[0, 0]).all()
        dx = be.avg_pool2d_backward(np.ones(got.shape, dtype), x.shape, kernel, stride, pads, False)
        want_dx = ReferenceBackend().avg_pool2d_backward(np.ones(want.shape), x.shape, kernel, stride, pads, False)
        np.testing.assert_allclose(dx, want_dx, rtol=1e-6)


@pytest.mark.parametrize("axis", [-1, 0, 1])
def test_softmax_backward(be, axis: int) -> None:  # noqa: ANN001
    x = np.random.default_rng(6).standard_normal((6, 70, 5))
    for op, fn in (("softmax", torch.softmax), ("log_softmax", torch.log_softmax)):
        y, (gx,), g = autograd(lambda x, fn=fn: fn(x, axis), x)
        np.testing.assert_allclose(getattr(be, op)(x, axis), y, rtol=1e-12, atol=1e-14)
        np.testing.assert_allclose(getattr(be, f"{op}_backward")(g, y, axis), gx, rtol=1e-10, atol=1e-12)
        dx32 = getattr(be, f"{op}_backward")(g.astype(np.float32), y.astype(np.float32), axis)
        np.testing.assert_allclose(dx32, gx, rtol=1e-4, atol=1e-5)


# -- SIMD math accuracy -------------------------------------------------------------------------


def ulp_error(got: np.ndarray, want: np.ndarray) -> np.ndarray:
    return np.abs(got.astype(np.float64) - want) / np.spacing(np.abs(want).astype(np.float32)).astype(np.float64)


@pytest.mark.parametrize("name", ACTIVATIONS)
def test_activation_accuracy_in_ulps(be, name: str) -> None:  # noqa: ANN001
    """float32 activations within 4 ulps (mish 6) of the float64 reference on a dense grid (plus the
    documented exceptions: an exp below ~2**-125 flushes to 0, so results under ~1e-34 (x times
    such an exp) may be 0, and the 1 + erf / 1 + tanh of gelu cancel like the reference's
    float32 formula does)."""
    grid = np.concatenate([np.linspace(-20, 20, 400_001), np.geomspace(1e-30, 90, 20_001)]).astype(np.float32)
    grid = np.concatenate([grid, -grid])
    got = be.activation(grid, name, 0.3)
    want = REF.activation(grid.astype(np.float64), name, 0.3)
    keep = np.abs(want) > 1e-34
    err = ulp_error(got[keep], want[keep])
    if name in ("gelu", "gelu_tanh"):
        absolute = np.abs(got[keep] - want[keep]) / (np.abs(grid[keep]) * 2**-23)
        err = np.minimum(err, absolute)
    worst = int(np.argmax(err))
    limit = 6 if name == "mish" else 4  # mish composes softplus, tanh and a product
    assert err[worst] <= limit, f"{name}: {err[worst]:.1f} ulp at x={grid[keep][worst]!r}"


def test_special_values_match_reference(be) -> None:  # noqa: ANN001
    x = np.array([np.nan, np.inf, -np.inf, 0.0, -0.0, 88.8, -88.8, 1e30, -1e30], np.float32)
    for name in ACTIVATIONS:
        for alpha in (0.0, 0.7):
            got = be.activation(x, name, alpha)
            want = REF.activation(x, name, alpha)
            np.testing.assert_array_equal(np.isnan(got), np.isnan(want), err_msg=name)
            inf = np.isinf(want)
            np.testing.assert_array_equal(got[inf], want[inf], err_msg=name)
    rows = np.array(
        [[1e30, -1e30, 0.0], [-np.inf, -np.inf, -np.inf], [np.inf, 1.0, 2.0], [np.nan, 0.0, 1.0]], np.float32
    )
    for op in ("softmax", "log_softmax"):
        np.testing.assert_array_equal(getattr(be, op)(rows, -1), getattr(REF, op)(rows, -1))


# -- activation gradients (axiom_activation_backward_*) -----------------------------------------

TORCH_ACT = {
    "identity": lambda x, a: x,
    "relu": lambda x, a: F.relu(x),
    "leaky_relu": lambda x, a: F.leaky_relu(x, a),
    "elu": lambda x, a: F.elu(x, a),
    "selu": lambda x, a: F.selu(x),
    "gelu": lambda x, a: F.gelu(x),
    "gelu_tanh": lambda x, a: F.gelu(x, approximate="tanh"),
    "sigmoid": lambda x, a: torch.sigmoid(x),
    "tanh": lambda x, a: torch.tanh(x),
    "softplus": lambda x, a: F.softplus(x),
    "softsign": lambda x, a: F.softsign(x),
    "silu": lambda x, a: F.silu(x),
    "mish": lambda x, a: F.mish(x),
    "hardswish": lambda x, a: F.hardswish(x),
    "hardsigmoid": lambda x, a: F.hardsigmoid(x),
    "relu6": lambda x, a: F.relu6(x),
}
KINKS = np.array([0.0, -0.0, 3.0, -3.0, 6.0, 1e-300, -1e-300])


def test_torch_table_covers_every_activation() -> None:
    assert set(TORCH_ACT) == set(ACTIVATIONS)


@pytest.mark.parametrize("name", ACTIVATIONS)
def test_activation_backward_matches_reference_and_torch(be, name: str) -> None:  # noqa: ANN001
    """float64 to rounding against the reference and torch.autograd, kinks included (relu'(0) = 0,
    hardswish'(-3) = 0, hardswish'(3) = 1, relu6'(6) = 0, ...); float32 against both within float32 rounding."""
    rng = np.random.default_rng(ACTIVATIONS.index(name))
    x = np.concatenate([rng.standard_normal(2996) * 4, KINKS]).reshape(-1, 7)  # |x| < 20: softplus as torch
    _, (gx,), g = autograd(lambda x: TORCH_ACT[name](x, 0.3), x)
    got = be.activation_backward(g, x, name, 0.3)
    assert got.dtype == np.float64 and got.shape == x.shape
    np.testing.assert_allclose(got, REF.activation_backward(g, x, name, 0.3), rtol=1e-12, atol=1e-14)
    # torch 2.13's float64 hardsigmoid' is float32(1/6)
    torch_tol = 1e-7 if name == "hardsigmoid" else 1e-10
    same = np.ones(x.shape, bool)
    np.testing.assert_allclose(got[same], gx[same], rtol=torch_tol, atol=1e-13)
    got32 = be.activation_backward(g.astype(np.float32), x.astype(np.float32), name, 0.3)
    assert got32.dtype == np.float32
    want32 = REF.activation_backward(g.astype(np.float32), x.astype(np.float32), name, 0.3)
    np.testing.assert_allclose(got32, want32, rtol=2e-6, atol=2e-6)
    _, (gx32,), _ = autograd(lambda x: TORCH_ACT[name](x, 0.3), x.astype(np.float32))  # same side of the kinks
    same &= np.abs(x.astype(np.float32)) != 3
    np.testing.assert_allclose(got32[same], (gx32 * g.astype(np.float32) / g)[same], rtol=1e-5, atol=2e-6)
    assert not be.fallbacks.keys() & {"activation_backward"}


SELU_ALPHA, SELU_SCALE = 1.6732632423543772, 1.0507009873554805


def _sig(x: np.ndarray) -> np.ndarray:
    e = np.exp(-np.abs(x))
    return np.where(x >= 0, 1 / (1 + e), e / (1 + e))


def exact_derivative(x: np.ndarray, name: str, a: float) -> np.ndarray:
    """act'(x) in float64 from forms without cancellation (the reference's 1 - tanh(x)^2 or
    s (1 - s) lose the tails, whose float32 values need more than float64 to check in ulps)."""
    erfc = np.vectorize(math.erfc, otypes=[np.float64])
    c = math.sqrt(2 / math.pi)
    with np.errstate(all="ignore"):
        if name == "gelu":
            return 0.5 * erfc(-x / math.sqrt(2)) + x * np.exp(-x * x / 2) / math.sqrt(2 * math.pi)
        if name == "gelu_tanh":
            w = 2 * c * (x + 0.044715 * x**3)
            return _sig(w) + 2 * c * x * _sig(w) * _sig(-w) * (1 + 3 * 0.044715 * x * x)
        if name == "sigmoid":
            return _sig(x) * _sig(-x)
        if name == "tanh":
            return 1 / np.cosh(x) ** 2
        if name == "silu":
            return _sig(x) * (1 + x * _sig(-x))
        if name == "mish":
            sp = np.logaddexp(0, x)
            return np.tanh(sp) + x * _sig(x) / np.cosh(sp) ** 2
        return REF.activation_backward(np.ones_like(x), x, name, a)


@pytest.mark.parametrize("name", ACTIVATIONS)
def test_activation_backward_accuracy_in_ulps(be, name: str) -> None:  # noqa: ANN001
    """float32 derivatives within 4 ulps of exact float64 ones on a dense grid (sigmoid and tanh 5:
    exp's error plus a squared denominator). Where a derivative crosses 0 (gelu, gelu_tanh, silu,
    mish, hardswish) the error is also accepted in units of 2**-24 absolute, as the terms that
    cancel there are O(1); results under 1e-34 are skipped (exp flushes below ~2**-125)."""
    grid = np.concatenate([np.linspace(-20, 20, 400_001), np.geomspace(1e-30, 90, 20_001)]).astype(np.float32)
    grid = np.concatenate([grid, -grid])
    want = exact_derivative(grid.astype(np.float64), name, 0.3)
    # the oracle is the reference's derivative where float64 suffices for both
    np.testing.assert_allclose(want, REF.activation_backward(np.ones_like(want), grid.astype(np.float64), name, 0.3),
                               rtol=0, atol=1e-13)  # fmt: skip
    got = be.activation_backward(np.ones_like(grid), grid, name, 0.3)
    keep = np.abs(want) > 1e-34
    err = ulp_error(got[keep], want[keep])
    if name in ("gelu", "gelu_tanh", "silu", "mish", "hardswish"):
        err = np.minimum(err, np.abs(got[keep] - want[keep]) / 2**-24)
    worst = int(np.argmax(err))
    limit = 5 if name in ("sigmoid", "tanh") else 4
    assert err[worst] <= limit, f"{name}': {err[worst]:.1f} ulp at x={grid[keep][worst]!r}"


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
def test_activation_backward_special_values_match_reference(be, dtype) -> None:  # noqa: ANN001
    """NaN and Inf like the reference: relu'(NaN) = 0, hardswish'(NaN) = 1, gelu'(inf) = inf * 0 = NaN, ..."""
    x = np.array([np.nan, np.inf, -np.inf, 0.0, -0.0, 3.0, -3.0, 6.0, 88.8, -88.8, 1e30, -1e30, 1e-40], dtype)
    x = np.concatenate([x, x])
    g = np.concatenate([np.full(13, 1.5), [np.nan, np.inf, -np.inf, 0.0, -2.0] * 2, [np.inf, -1.0, 0.0]]).astype(dtype)
    for name in ACTIVATIONS:
        for alpha in (0.0, 0.7):
            got = be.activation_backward(g, x, name, alpha)
            want = REF.activation_backward(g, x, name, alpha)
            msg = f"{name} (alpha {alpha}): x {x}, grad {g}"
            np.testing.assert_array_equal(np.isnan(got), np.isnan(want), err_msg=msg)
            inf = np.isinf(want)
            np.testing.assert_array_equal(got[inf], want[inf], err_msg=msg)
            # finite values against exact ones (the reference's float32 s (1 - s) cancels at x = 6)
            fin = np.isfinite(want) & (np.abs(want) > 1e-30)
            exact = g[fin].astype(np.float64) * exact_derivative(x[fin].astype(np.float64), name, alpha)
            np.testing.assert_allclose(got[fin], exact, rtol=1e-6 if dtype == np.float32 else 1e-13, err_msg=msg)
    assert be.activation_backward(np.ones(2, dtype), np.array([0.0, np.nan], dtype), "relu").tolist() == [0, 0]
    assert be.activation_backward(np.ones(1, dtype), np.array([np.nan], dtype), "hardswish").tolist() == [1]
    assert np.isnan(be.activation_backward(np.ones(2, dtype), np.array([np.inf, -np.inf], dtype), "silu")).all()


def test_activation_backward_shapes_layouts_and_dtypes(be) -> None:  # noqa: ANN001
    rng = np.random.default_rng(11)
    # zero-size
    for shape in ((0,), (3, 0, 2)):
        dx = be.activation_backward(np.zeros(shape, np.float32), np.zeros(shape, np.float32), "gelu")
        assert dx.shape == shape and dx.dtype == np.float32
    # non-contiguous views (strided, transposed, negative strides) give what contiguous copies give
    big = rng.standard_normal((40, 60))
    x, g = big[::2, 1::3], rng.standard_normal((20, 40)).T[::-2]
    assert not x.flags.c_contiguous and not g.flags.c_contiguous
    for name in ("gelu", "mish", "hardswish"):
        want = REF.activation_backward(np.ascontiguousarray(g), np.ascontiguousarray(x), name)
        np.testing.assert_allclose(be.activation_backward(g, x, name), want, rtol=1e-12, atol=1e-15)
        np.testing.assert_allclose(be.activation_backward(g.astype(np.float32), x.astype(np.float32).T.T, name),
                                   want, rtol=1e-5, atol=1e-6)  # fmt: skip
    # float16 / bfloat16 compute in float32 and keep their dtype, with no fallback
    with warnings.catch_warnings():
        warnings.simplefilter("error", FallbackWarning)
        for dtype in (np.float16, ml_dtypes.bfloat16):
            xl, gl = (rng.standard_normal((3, 5)) * 3).astype(dtype), rng.standard_normal((3, 5)).astype(dtype)
            got, want = be.activation_backward(gl, xl, "silu"), REF.activation_backward(gl, xl, "silu")
            assert got.dtype == want.dtype == np.dtype(dtype)
            np.testing.assert_allclose(got.astype(np.float64), want.astype(np.float64), rtol=1e-2, atol=1e-2)
        # a float64 gradient with a float32 input: float32 result, like the reference
        x32 = rng.standard_normal(9).astype(np.float32)
        got = be.activation_backward(np.ones(9), x32, "tanh")
        assert got.dtype == np.float32
        np.testing.assert_allclose(got, REF.activation_backward(np.ones(9), x32, "tanh"), rtol=1e-6)
    # in place through the kernel: dx may be dy
    xs, gs = rng.standard_normal(37).astype(np.float32), rng.standard_normal(37).astype(np.float32)
    want = be.activation_backward(gs, xs, "elu", 0.5)
    be.nn_kernels("activation_backward", gs.dtype, gs, xs, gs, gs.size, ACTIVATION_CODES["elu"], 0.5)
    np.testing.assert_array_equal(gs, want)


def test_activation_backward_bad_arguments(be) -> None:  # noqa: ANN001
    x = np.zeros((2, 3), np.float32)
    with pytest.raises(ValueError, match=r"activation_backward: grad_out has shape \(3, 2\); expected .* \(2, 3\)"):
        be.activation_backward(x.T, x, "relu")
    with pytest.raises(ValueError, match="activation_backward: unknown activation 'swish'; expected one of identity"):
        be.activation_backward(x, x, "swish")
    with pytest.raises(TypeError, match="activation_backward: expected x to be a numpy.ndarray, got list"):
        be.activation_backward(x, [0.0], "relu")
    with pytest.raises(TypeError, match="activation_backward: grad_out has dtype complex128"):
        be.activation_backward(x.astype(complex), x, "relu")
    if be.kind == "c" and be.kernel_lib is None:  # the Cython layer checks buffer sizes too
        with pytest.raises(ValueError, match="activation_backward_f32: dx has 5 elements, the sizes need 6"):
            be.nn_kernels("activation_backward", x.dtype, x, x, np.zeros(5, np.float32), 6, 0, 0.0)
    with pytest.raises(abi.KernelArgumentError, match="axiom_activation_backward_f64 returned AXIOM_ERR_SIZE"):
        be.nn_kernels("activation_backward", np.dtype(np.float64), None, None, None, 0, len(ACTIVATIONS), 0.0)


def test_autograd_uses_the_native_activation_gradient(be) -> None:  # noqa: ANN001
    from axiom import Tensor
    from axiom import functional as AF
    from axiom.backends import use_backend

    x = np.random.default_rng(12).standard_normal((4, 9)).astype(np.float32)
    with use_backend(be), warnings.catch_warnings():
        warnings.simplefilter("error", FallbackWarning)
        tx = Tensor(x, requires_grad=True)
        (AF.activation(tx, "mish") * Tensor(np.arange(9, dtype=np.float32))).sum().backward()
    want = REF.activation_backward(np.broadcast_to(np.arange(9, dtype=np.float32), x.shape), x, "mish")
    np.testing.assert_allclose(tx.grad.numpy(), want, rtol=1e-5, atol=1e-6)
    assert "activation_backward" not in be.fallbacks


# -- attention gradients (axiom_attention_backward_*) -----------------------------------------


def torch_attention_grads(g, q, k, v, causal, scale, mask=None):  # noqa: ANN001, ANN201
    """(dq, dk, dv) of PyTorch SDPA in float64 (end-aligned causal mask folded into an additive one)."""
    leaves = [t(a).requires_grad_(True) for a in (q, k, v)]
    sdpa_t(*leaves, causal, scale, mask).backward(t(g))
    return [a.grad.numpy() for a in leaves]


def sdpa_t(q, k, v, causal, scale, mask=None):  # noqa: ANN001, ANN201
    lq, lk = q.shape[-2], k.shape[-2]
    m = torch.zeros(lq, lk, dtype=torch.float64)
    if mask is not None:
        m = m + t(mask)
    if causal:
        m = m.masked_fill(torch.ones(lq, lk, dtype=torch.bool).triu(1 + lk - lq), -math.inf)
    return F.scaled_dot_product_attention(q, k, v, attn_mask=m, scale=scale)


def check_attention_backward(be, g, q, k, v, causal, scale, mask=None, tol32=(2e-5, 2e-6)):  # noqa: ANN001, ANN201
    """The C gradients in float64 and float32 against the reference (NaN where it has NaN)."""
    want = REF.attention_backward(g, q, k, v, causal, scale, mask)
    got = be.attention_backward(g, q, k, v, causal, scale, mask)
    f32 = [None if a is None else a.astype(np.float32) for a in (g, q, k, v, mask)]
    got32 = be.attention_backward(*f32[:4], causal, scale, f32[4])
    for name, a, a32, w in zip(("dq", "dk", "dv"), got, got32, want):
        assert a.shape == w.shape and a.dtype == np.float64 and a32.dtype == np.float32, name
        np.testing.assert_array_equal(np.isnan(a), np.isnan(w), err_msg=name)
        np.testing.assert_array_equal(np.isnan(a32), np.isnan(w), err_msg=name)
        np.testing.assert_allclose(a, w, rtol=1e-11, atol=1e-12, equal_nan=True, err_msg=name)
        np.testing.assert_allclose(a32, w, rtol=tol32[0], atol=tol32[1], equal_nan=True, err_msg=name)
    return got


@pytest.mark.parametrize("lq, lk", [(1, 1), (5, 7), (64, 64), (65, 130), (130, 97), (97, 64), (63, 200)])
@pytest.mark.parametrize("causal", [False, True])
def test_attention_backward_block_boundaries(be, lq: int, lk: int, causal: bool) -> None:  # noqa: ANN001
    rng = np.random.default_rng(lq * 1000 + lk)
    d, dv = (64, 40) if lq % 2 else (17, 9)
    q, k = rng.standard_normal((2, 3, lq, d)), rng.standard_normal((2, 3, lk, d))
    v, g = rng.standard_normal((2, 3, lk, dv)), rng.standard_normal((2, 3, lq, dv))
    scale = 1 / math.sqrt(d)
    got = check_attention_backward(be, g, q, k, v, causal, scale)
    if lq <= lk or not causal:  # PyTorch's safe softmax gives 0, not NaN, for a query without keys
        for a, w in zip(got, torch_attention_grads(g, q, k, v, causal, scale)):
            np.testing.assert_allclose(a, w, rtol=1e-10, atol=1e-12)


@pytest.mark.parametrize("mask_shape", [(7, 70), (2, 1, 1, 70), (1, 3, 7, 70), (2, 3, 7, 70), (70,), (7, 1)])
def test_attention_backward_masks_broadcast(be, mask_shape: tuple[int, ...]) -> None:  # noqa: ANN001
    rng = np.random.default_rng(len(mask_shape) + 20)
    q, k = rng.standard_normal((2, 3, 7, 16)), rng.standard_normal((2, 3, 70, 16))
    v, g = rng.standard_normal((2, 3, 70, 9)), rng.standard_normal((2, 3, 7, 9))
    mask = rng.standard_normal(mask_shape)
    mask[rng.random(mask_shape) < 0.2] = -np.inf
    for causal in (False, True):
        check_attention_backward(be, g, q, k, v, causal, 0.3, mask)
    finite = np.where(np.isinf(mask), -1e4, mask)  # PyTorch agrees where every row sees a key
    for a, w in zip(be.attention_backward(g, q, k, v, False, 0.3, finite),
                    torch_attention_grads(g, q, k, v, False, 0.3, finite)):  # fmt: skip
        np.testing.assert_allclose(a, w, rtol=1e-10, atol=1e-12)


def test_attention_backward_rows_without_keys_and_empty_sizes(be) -> None:  # noqa: ANN001
    """Like the reference: a query without a visible key (causal lq > lk, an all -inf mask row, a
    +inf score) has NaN probabilities, so its dq row and dk, dv of its head are NaN; other heads
    and other rows of dq stay finite."""
    rng = np.random.default_rng(13)
    q, k, v = rng.standard_normal((2, 2, 6, 4)), rng.standard_normal((2, 2, 4, 4)), rng.standard_normal((2, 2, 4, 3))
    g = rng.standard_normal((2, 2, 6, 3))
    dq, dk, dv = check_attention_backward(be, g, q, k, v, True, 0.5)  # rows 0, 1 see no key
    assert np.isnan(dq[..., :2, :]).all() and np.isfinite(dq[..., 2:, :]).all() and np.isnan(dk).all()
    mask = np.zeros((2, 2, 6, 4))
    mask[0, 1, 3] = -np.inf  # one row of one head sees nothing
    mask[1, 0, 2, 1] = np.inf  # a +inf score: NaN, like the reference
    dq, dk, dv = check_attention_backward(be, g, q, k, v, False, 0.5, mask)
    assert np.isnan(dk[0, 1]).all() and np.isnan(dv[1, 0]).all() and np.isfinite(dk[0, 0]).all()
    assert np.isnan(dq[0, 1, 3]).all() and np.isfinite(dq[0, 1, :3]).all()
    # empty sizes: no queries gives zero dk, dv; no keys gives NaN dq (the reference refuses)
    dq, dk, dv = be.attention_backward(g[..., :0, :], q[..., :0, :], k, v, False, 0.5)
    assert dq.shape == (2, 2, 0, 4) and not dk.any() and not dv.any() and dv.shape == v.shape
    dq, dk, dv = be.attention_backward(g, q, k[..., :0, :], v[..., :0, :], False, 0.5)
    assert np.isnan(dq).all() and dk.shape == (2, 2, 0, 4) and dv.shape == (2, 2, 0, 3)
    dq, dk, dv = be.attention_backward(g[:, :, :, :0], q, k, v[..., :0], False, 0.5)  # dv = 0: no gradient flows
    assert not dq.any() and not dk.any() and dv.shape == (2, 2, 4, 0)


def test_attention_backward_long_sequence_linear_memory(be) -> None:  # noqa: ANN001
    """L = 4096 with a key-padding mask: no L x L matrix (64 MB in float32) is ever formed.

    Checked on a few dq rows against a direct float64 computation, and on two identities that
    involve every key: sum_j dv_j = sum_i g_i (each probability row sums to 1) and
    sum_j dk_j = 0 (each row of dS sums to 0)."""
    L, d = 4096, 64
    rng = np.random.default_rng(14)
    q, k, v, g = (rng.standard_normal((1, 1, L, d)).astype(np.float32) for _ in range(4))
    mask = np.where(rng.random((1, 1, 1, L)) < 0.1, -np.inf, 0.0).astype(np.float32)
    tracemalloc.start()
    try:
        dq, dk, dv = be.attention_backward(g, q, k, v, True, 1 / 8, mask)
        _, peak = tracemalloc.get_traced_memory()
    finally:
        tracemalloc.stop()
    assert peak < 16 * 2**20, f"attention_backward allocated {peak / 2**20:.1f} MB in Python for L={L}"
    assert np.isfinite(dq).all() and np.isfinite(dk).all() and np.isfinite(dv).all()
    q64, k64, v64, g64 = (a[0, 0].astype(np.float64) for a in (q, k, v, g))
    rows = np.array([0, 1, 777, 2048, L - 1])
    s = q64[rows] @ k64.T / 8 + mask[0, 0]
    s = np.where(np.arange(L)[None, :] > rows[:, None], -np.inf, s)
    p = np.exp(s - s.max(axis=1, keepdims=True))
    p /= p.sum(axis=1, keepdims=True)
    dp = g64[rows] @ v64.T
    ds = p * (dp - (p * dp).sum(axis=1, keepdims=True)) / 8
    np.testing.assert_allclose(dq[0, 0, rows], ds @ k64, rtol=1e-4, atol=1e-4)
    np.testing.assert_allclose(dv[0, 0].astype(np.float64).sum(0), g64.sum(0), rtol=1e-4, atol=1e-3)
    np.testing.assert_allclose(dk[0, 0].astype(np.float64).sum(0), 0.0, atol=1e-3)


def test_attention_backward_broadcast_dims_layouts_and_errors(be) -> None:  # noqa: ANN001
    rng = np.random.default_rng(15)
    q, g = rng.standard_normal((2, 4, 5, 8)), rng.standard_normal((2, 4, 5, 3))
    k, v = rng.standard_normal((1, 4, 6, 8)), rng.standard_normal((2, 1, 6, 3))  # heads / batch broadcast
    dq, dk, dv = check_attention_backward(be, g, q, k, v, True, 0.5)
    assert dk.shape == k.shape and dv.shape == v.shape  # summed over the broadcast axes
    for a, w in zip(
        be.attention_backward(g[0, 0], q[0, 0], k[0, 0], v[0, 0], False, 0.5),
        REF.attention_backward(g[0, 0], q[0, 0], k[0, 0], v[0, 0], False, 0.5),
    ):  # 2-D operands
        np.testing.assert_allclose(a, w, atol=1e-12)  # fmt: skip
    qt = np.swapaxes(rng.standard_normal((2, 4, 8, 5)), -1, -2)  # non-contiguous views
    for a, w in zip(be.attention_backward(g, qt, k, v[:, :, ::-1], False, 0.5),
                    REF.attention_backward(g, qt, k, v[:, :, ::-1], False, 0.5)):  # fmt: skip
        np.testing.assert_allclose(a, w, atol=1e-12)
    with warnings.catch_warnings():
        warnings.simplefilter("error", FallbackWarning)
        h = [a.astype(np.float16) for a in (g, q, k, v)]
        for a, w in zip(be.attention_backward(*h, False, 0.5), REF.attention_backward(*h, False, 0.5)):
            assert a.dtype == w.dtype == np.float16
            np.testing.assert_allclose(a.astype(np.float64), w.astype(np.float64), rtol=2e-2, atol=2e-2)
    with pytest.raises(
        ValueError, match=r"attention_backward: grad_out has shape \(2, 4, 5, 8\); expected .* \(2, 4, 5, 3\)"
    ):
        be.attention_backward(q, q, k, v, False, 0.5)
    with pytest.raises(ValueError, match=r"attention_backward: q \(2, 4, 5, 8\), k \(1, 4, 6, 3\)"):
        be.attention_backward(g, q, k[..., :3], v, False, 0.5)
    with pytest.raises(ValueError, match=r"attention_backward: mask has shape \(4,\); expected it to broadcast"):
        be.attention_backward(g, q, k, v, False, 0.5, np.zeros(4))
    if be.kind == "c":  # the ctypes path runs the same kernel
        from axiom.backends.native import CBackend

        by_path = CBackend(abi.built_library_path("c")).attention_backward(g, q, k, v, True, 0.5)
        for a, w in zip(by_path, be.attention_backward(g, q, k, v, True, 0.5)):
            np.testing.assert_array_equal(a, w)


def test_autograd_uses_the_native_attention_gradient(be) -> None:  # noqa: ANN001
    from axiom import Tensor
    from axiom import functional as AF
    from axiom.backends import use_backend

    rng = np.random.default_rng(16)
    q, k, v = (rng.standard_normal((2, 2, 9, 8)).astype(np.float32) for _ in range(3))
    w = rng.standard_normal((2, 2, 9, 8)).astype(np.float32)
    with use_backend(be), warnings.catch_warnings():
        warnings.simplefilter("error", FallbackWarning)
        tq, tk, tv = (Tensor(a, requires_grad=True) for a in (q, k, v))
        (AF.attention(tq, tk, tv, causal=True) * Tensor(w)).sum().backward()
    want = REF.attention_backward(w, q, k, v, True, 1 / math.sqrt(8))
    for tensor, wnt in zip((tq, tk, tv), want):
        np.testing.assert_allclose(tensor.grad.numpy(), wnt, rtol=1e-4, atol=1e-5)
    assert "attention_backward" not in be.fallbacks


# -- threads, dtypes, errors, fallbacks ----------------------------------------------------------

THREADS_SCRIPT = textwrap.dedent(
    """
    import numpy as np, sys
    from axiom.backends import native
    be = getattr(native, sys.argv[2])()
    rng = np.random.default_rng(0)
    q, k, v = (rng.standard_normal((2, 4, 300, 64)).astype(np.float32) for _ in range(3))
    x = rng.standard_normal((600, 2000)).astype(np.float32)
    img = rng.standard_normal((8, 64, 64, 32)).astype(np.float32)
    out = {
        "attention": be.attention(q, k, v, True, 0.125),
        "softmax": be.softmax(x, 0),
        "layernorm": be.layernorm(x, None, None, 1e-5, 1),
        "gelu": be.activation(x, "gelu"),
        "dgelu": be.activation_backward(x[::-1], x, "gelu"),
        "drelu": be.activation_backward(x[::-1], x, "relu"),
        "dattention_k": be.attention_backward(q[:, :2], q[:, :2], k[:, :2], v[:, :2], True, 0.125)[1],
        "maxpool": be.max_pool2d(img, (3, 3), (2, 2), ((1, 1), (1, 1)), (1, 1)),
        "dgamma": be.layernorm_backward(x, x, x[0], 1e-5, 1)[1],
    }
    np.savez(sys.argv[1], **out)
    """
)


def test_results_do_not_depend_on_thread_count(be, tmp_path) -> None:  # noqa: ANN001
    """1 and 2 threads (``OMP_NUM_THREADS``, read by C's OpenMP and by Rust and Zig) give the same bits."""
    files = {}
    for threads in (1, 2):
        files[threads] = tmp_path / f"t{threads}.npz"
        env = {**os.environ, "OMP_NUM_THREADS": str(threads)}
        env.pop("AXIOM_NUM_THREADS", None)
        cmd = [sys.executable, "-c", THREADS_SCRIPT, str(files[threads]), type(be).__name__]
        subprocess.run(cmd, check=True, env=env, timeout=180)
    one, two = np.load(files[1]), np.load(files[2])
    for key in one.files:
        if key == "dgamma":  # a sum over rows: per-thread partial sums change the order
            np.testing.assert_allclose(one[key], two[key], rtol=1e-5, atol=1e-4)
        else:
            np.testing.assert_array_equal(one[key], two[key], err_msg=key)


def test_concurrent_calls_from_threads(be) -> None:  # noqa: ANN001
    """Calls from several Python threads at once (the GIL is released) share no scratch memory: each
    gives what the same call gives alone, bit for bit."""

    rng = np.random.default_rng(17)

    def case(i: int) -> list[np.ndarray]:
        dt = np.float32 if i % 2 else np.float64
        q, k, v = (rng.standard_normal((1, 2, 70 + 9 * i, 16)).astype(dt) for _ in range(3))
        x = rng.standard_normal((33, 50 + i)).astype(dt)
        return [q, k, v, x]

    def run(q: np.ndarray, k: np.ndarray, v: np.ndarray, x: np.ndarray) -> list[np.ndarray]:
        return [be.attention(q, k, v, True, 0.25), *be.attention_backward(q, q, k, v, False, 0.25),
                *be.layernorm_backward(x, x, x[0], 1e-5, 1), be.softmax(x, 0), be.rope(q, np.arange(q.shape[2]), 1e4),
                be.batchnorm(x, x[0], x[1] ** 2, None, None, 1e-5)]  # fmt: skip

    cases = [case(i) for i in range(6)]
    alone = [run(*c) for c in cases]
    results: list[list[np.ndarray] | None] = [None] * len(cases)

    def work(i: int) -> None:
        for _ in range(3):
            results[i] = run(*cases[i])

    run_in_threads(len(cases), work)
    for want, got in zip(alone, results):
        assert got is not None
        for w_, g_ in zip(want, got):
            np.testing.assert_array_equal(g_, w_)


@pytest.mark.parametrize("dtype", [np.float16, ml_dtypes.bfloat16, np.int32, np.bool_])
def test_low_precision_and_integer_inputs_run_natively(be, dtype) -> None:  # noqa: ANN001
    x = (np.random.default_rng(8).standard_normal((2, 5, 6, 3)) * 3).astype(dtype)
    with warnings.catch_warnings():
        warnings.simplefilter("error", FallbackWarning)
        for op, args in [("softmax", (x, 1)), ("activation", (x, "silu")), ("global_avg_pool", (x,)),
                         ("max_pool2d", (x, (2, 2), (2, 2), ((0, 0), (0, 0)), (1, 1))),
                         ("layernorm", (x, None, None, 1e-5, 2)), ("rope", (x, np.arange(6), 100.0))]:  # fmt: skip
            got, want = getattr(be, op)(*args), getattr(REF, op)(*args)
            assert got.dtype == want.dtype == np.dtype(dtype), op
            np.testing.assert_allclose(got.astype(np.float64), want.astype(np.float64), rtol=1e-2, atol=1e-2)
    assert not be.fallbacks.keys() & set(C_NN_OPS)


def test_errors_name_the_op_and_shapes(be) -> None:  # noqa: ANN001
    x = np.zeros((2, 3, 4, 5), np.float32)
    with pytest.raises(ValueError, match=r"max_pool2d: x has shape \(3, 4, 5\); expected 4 dimensions"):
        be.max_pool2d(x[0], (2, 2), (1, 1), ((0, 0), (0, 0)), (1, 1))
    with pytest.raises(ValueError, match="max_pool2d: stride must be a pair of integers >= 1"):
        be.max_pool2d(x, (2, 2), (0, 1), ((0, 0), (0, 0)), (1, 1))
    with pytest.raises(ValueError, match="avg_pool2d: padding must be"):
        be.avg_pool2d(x, (2, 2), (1, 1), ((-1, 0), (0, 0)), True)
    with pytest.raises(ValueError, match=r"batchnorm: mean has shape \(4,\); expected \(5,\)"):
        be.batchnorm(x, np.zeros(4), np.ones(5), None, None, 1e-5)
    with pytest.raises(ValueError, match=r"layernorm: gamma has shape \(4,\); expected it to broadcast to"):
        be.layernorm(x, np.ones(4), None, 1e-5, 1)
    with pytest.raises(ValueError, match="layernorm: n_axes must be an integer in"):
        be.layernorm(x, None, None, 1e-5, 5)
    with pytest.raises(ValueError, match="softmax: axis 4 is out of range"):
        be.softmax(x, 4)
    with pytest.raises(ValueError, match="unknown activation 'swish'"):
        be.activation(x, "swish")
    with pytest.raises(TypeError, match="activation: expected x to be a numpy.ndarray, got list"):
        be.activation([1.0], "relu")
    with pytest.raises(TypeError, match="softmax: x has dtype complex128"):
        be.softmax(np.zeros(3, complex), 0)
    with pytest.raises(ValueError, match=r"attention: q \(1, 2, 3, 4\), k \(1, 2, 5, 3\)"):
        be.attention(np.zeros((1, 2, 3, 4)), np.zeros((1, 2, 5, 3)), np.zeros((1, 2, 5, 3)), False, 1.0)
    with pytest.raises(ValueError, match=r"attention: mask has shape \(4,\); expected it to broadcast"):
        be.attention(np.zeros((1, 2, 3, 4)), np.zeros((1, 2, 5, 4)), np.zeros((1, 2, 5, 3)), False, 1.0, np.zeros(4))
    with pytest.raises(ValueError, match=r"rope: positions has shape \(3,\); expected \(4,\)"):
        be.rope(x, np.arange(3), 10000.0)
    with pytest.raises(ValueError, match="layernorm_backward: grad_out has shape"):
        be.layernorm_backward(x[0], x, None, 1e-5, 1)


def test_kernel_codes_become_exceptions(be) -> None:  # noqa: ANN001
    kernels = be.nn_kernels
    x = np.zeros(4, np.float32)
    with pytest.raises(abi.KernelArgumentError, match="axiom_softmax_f32 returned AXIOM_ERR_SIZE"):
        kernels("softmax", x.dtype, x, x, 1, 4, 1, 7)  # log must be 0 or 1
    if be.kernel_lib is not None:  # ctypes passes NULL through (Cython refuses None itself)
        with pytest.raises(abi.KernelArgumentError, match="axiom_softmax_f64 returned AXIOM_ERR_NULL"):
            kernels("softmax", np.dtype(np.float64), None, None, 1, 4, 1, 0)
    else:
        with pytest.raises(ValueError, match="softmax_f32: x has 4 elements, the sizes need 8"):
            kernels("softmax", x.dtype, x, x, 2, 4, 1, 0)  # the Cython layer never lets a kernel overrun


def test_ctypes_path_runs_the_same_kernels(get_native) -> None:  # noqa: ANN001
    """``CBackend(path)``: the C library through ctypes gives the bits Cython gives."""
    from axiom.backends.native import CBackend

    get_native("c")  # skip / fail when the C library is not built
    path = abi.built_library_path("c")
    by_path, by_module = CBackend(path), CBackend()
    x = np.random.default_rng(9).standard_normal((3, 7, 5, 4)).astype(np.float32)
    for op, args in [("softmax", (x, 2)), ("layernorm", (x, None, None, 1e-5, 2)), ("activation", (x, "mish")),
                     ("avg_pool2d", (x, (2, 3), (1, 2), ((1, 0), (0, 2)), False)),
                     ("attention", (x, x, x, True, 0.5))]:  # fmt: skip
        np.testing.assert_array_equal(getattr(by_path, op)(*args), getattr(by_module, op)(*args), err_msg=op)
    assert not by_path.fallbacks
