"""The table of backward kernels (``GRAD_OPS``): the C backend against the NumPy reference.

:data:`CASES` has one row per backward kernel: a function drawing its arguments (odd sizes,
empty batches, float32 and float64, NaN injected where the reference defines how it spreads).
The oracle is the reference computed in float64 on the same values; the C result must have the
input's dtype and shape, NaN exactly where the oracle has NaN, and be within
``tol * (|oracle| + max |oracle|)`` elsewhere (the second term covers cancellation in sums).
A kernel the C backend lists in ``native_grad_ops`` must run natively (no fallback recorded);
one it does not list must fall back visibly. The last tests check :class:`PartialBackend`'s
routing of a backward kernel it lacks.
"""

from __future__ import annotations

import warnings
from collections.abc import Callable
from typing import Any

import numpy as np
import pytest
from autograd_helpers import c_backend
from hypothesis import given
from hypothesis import strategies as st

from axiom.backends import ACTIVATIONS, FallbackWarning, PartialBackend, ReferenceBackend
from axiom.backends.base import DERIVED_GRAD_OPS, GRAD_OPS

REF = ReferenceBackend()
TOL = {np.dtype(np.float64): 1e-9, np.dtype(np.float32): 2e-4}
pytestmark = pytest.mark.filterwarnings("ignore::RuntimeWarning")


class Draw:
    """Arguments for one example: structure from Hypothesis, values from a seeded generator."""

    def __init__(self, data: st.DataObject, dtype: np.dtype) -> None:
        self.data, self.dtype = data, np.dtype(dtype)
        self.rng = np.random.default_rng(data.draw(st.integers(0, 2**32 - 1), label="seed"))

    def dim(self, lo: int = 1, hi: int = 7, zero: bool = False) -> int:
        return self.data.draw(st.integers(0 if zero else lo, hi) if not zero else st.sampled_from([0, lo, hi, 3]))

    def int(self, lo: int, hi: int) -> int:
        return self.data.draw(st.integers(lo, hi))

    def flag(self) -> bool:
        return self.data.draw(st.booleans())

    def array(self, shape: tuple[int, ...], nan: bool = False, scale: float = 1.0) -> np.ndarray:
        x = self.rng.standard_normal(shape) * scale
        if nan and x.size and self.flag():
            x.flat[self.rng.integers(0, x.size, max(1, x.size // 8))] = np.nan
        return x.astype(self.dtype)

    def positive(self, shape: tuple[int, ...]) -> np.ndarray:
        return (self.rng.random(shape) + 0.5).astype(self.dtype)


def padding(d: Draw, kernel: tuple[int, int]) -> tuple[tuple[int, int], tuple[int, int]]:
    return tuple((d.int(0, k // 2), d.int(0, k // 2)) for k in kernel)  # type: ignore[return-value]


def out_size(size: int, k: int, s: int, dil: int) -> int:
    return max((size - dil * (k - 1) - 1) // s + 1, 0)


def draw_matmul(d: Draw) -> tuple:
    m, k, n = d.dim(), d.dim(), d.dim()
    kind = d.data.draw(st.sampled_from(["2d", "batch", "broadcast", "vec-mat", "mat-vec", "vec-vec", "empty"]))
    sa, sb = {
        "2d": ((m, k), (k, n)),
        "batch": ((3, m, k), (3, k, n)),
        "broadcast": ((2, 1, m, k), (3, k, n)),
        "vec-mat": ((k,), (k, n)),
        "mat-vec": ((2, m, k), (k,)),
        "vec-vec": ((k,), (k,)),
        "empty": ((0, m, k), (k, n)),
    }[kind]
    a, b = d.array(sa), d.array(sb)
    g = d.array(np.matmul(a, b).shape, nan=True)
    return a, b, g


def draw_conv(d: Draw) -> tuple:
    groups = d.int(1, 3)
    cin, cout = groups * d.dim(1, 3), groups * d.dim(1, 3)
    kernel = (d.int(1, 3), d.int(1, 3))
    stride, dilation = (d.int(1, 3), d.int(1, 3)), (d.int(1, 2), d.int(1, 2))
    pad = padding(d, kernel)
    h = dilation[0] * (kernel[0] - 1) + 1 + d.dim(0, 6)
    w = dilation[1] * (kernel[1] - 1) + 1 + d.dim(0, 6)
    n = d.dim(zero=True, hi=2)
    x, wt = d.array((n, h, w, cin)), d.array((*kernel, cin // groups, cout))
    ho = out_size(h + sum(pad[0]), kernel[0], stride[0], dilation[0])
    wo = out_size(w + sum(pad[1]), kernel[1], stride[1], dilation[1])
    return x, wt, d.array((n, ho, wo, cout)), stride, pad, dilation, groups


def draw_conv_input(x: np.ndarray, wt: np.ndarray, g: np.ndarray, *params: Any) -> tuple:
    return (g, wt, x.shape, *params)


def draw_conv_weight(x: np.ndarray, wt: np.ndarray, g: np.ndarray, *params: Any) -> tuple:
    return (x, g, wt.shape, *params)


def draw_batchnorm(d: Draw) -> tuple:
    c = d.dim()
    shape = (d.dim(zero=True), *(d.dim() for _ in range(d.int(0, 2))), c)
    gamma = d.array((c,)) if d.flag() else None
    return d.array(shape, nan=True), d.array(shape), d.array((c,)), d.positive((c,)), gamma, 1e-5


def draw_norm(d: Draw, rms: bool) -> tuple:
    n_axes = d.int(1, 2)
    shape = (d.dim(zero=True), *(d.dim() for _ in range(n_axes)))
    gamma = d.array(shape[1:]) if d.flag() else None
    return d.array(shape, nan=True), d.array(shape, scale=2.0), gamma, 1e-5, n_axes


def draw_max_pool(d: Draw) -> tuple:
    kernel, stride, dilation = (d.int(1, 3), d.int(1, 3)), (d.int(1, 3), d.int(1, 3)), (d.int(1, 2), d.int(1, 2))
    pad = padding(d, kernel)
    h = dilation[0] * (kernel[0] - 1) + 1 + d.dim(0, 5)
    w = dilation[1] * (kernel[1] - 1) + 1 + d.dim(0, 5)
    x = d.array((d.dim(zero=True, hi=2), h, w, d.dim(1, 3)), nan=True)
    if x.size and d.flag():  # ties: the first maximum of a window wins
        x = np.round(x).astype(d.dtype)
    ho = out_size(h + sum(pad[0]), kernel[0], stride[0], dilation[0])
    wo = out_size(w + sum(pad[1]), kernel[1], stride[1], dilation[1])
    return d.array((x.shape[0], ho, wo, x.shape[3]), nan=True), x, kernel, stride, pad, dilation


def draw_avg_pool(d: Draw) -> tuple:
    kernel, stride = (d.int(1, 3), d.int(1, 3)), (d.int(1, 3), d.int(1, 3))
    pad = padding(d, kernel)
    shape = (d.dim(zero=True, hi=2), kernel[0] + d.dim(0, 5), kernel[1] + d.dim(0, 5), d.dim(1, 3))
    ho = out_size(shape[1] + sum(pad[0]), kernel[0], stride[0], 1)
    wo = out_size(shape[2] + sum(pad[1]), kernel[1], stride[1], 1)
    return d.array((shape[0], ho, wo, shape[3]), nan=True), shape, kernel, stride, pad, d.flag()


def draw_global_avg_pool(d: Draw) -> tuple:
    shape = (d.dim(zero=True), d.dim(), d.dim(), d.dim())
    return d.array((shape[0], shape[3]), nan=True), shape


def draw_softmax(d: Draw, log: bool) -> tuple:
    shape = tuple(d.dim() for _ in range(d.int(1, 3)))
    axis = d.int(-len(shape), len(shape) - 1)
    x = d.array(shape, scale=3.0).astype(np.float64)
    y = (REF.log_softmax if log else REF.softmax)(x, axis).astype(d.dtype)
    return d.array(shape, nan=True), y, axis


def draw_activation(d: Draw) -> tuple:
    name = d.data.draw(st.sampled_from(ACTIVATIONS))
    x = d.array((d.dim(zero=True), d.dim()), scale=4.0)
    if x.size and d.flag():
        x.flat[: min(4, x.size)] = np.array([0.0, -3.0, 3.0, 6.0], x.dtype)[: min(4, x.size)]  # the kinks
    return d.array(x.shape, nan=True), x, name, d.data.draw(st.sampled_from([0.0, 0.01, 0.5, 1.0]))


def draw_attention(d: Draw) -> tuple:
    b, h, lq = d.dim(zero=True, hi=2), d.dim(1, 2), d.dim(1, 5)
    lk, dim, dv = lq + d.dim(0, 3), d.dim(1, 6), d.dim(1, 6)
    causal = d.flag()
    mask = d.array((1, 1, lq, lk)) if d.flag() else None
    q, k, v = d.array((b, h, lq, dim)), d.array((b, h, lk, dim)), d.array((b, h, lk, dv))
    return d.array((b, h, lq, dv), nan=True), q, k, v, causal, 1.0 / np.sqrt(dim), mask


def draw_rope(d: Draw) -> tuple:
    seq = d.dim(1, 6)
    shape = (d.dim(zero=True, hi=2), d.dim(1, 2), seq, d.dim(1, 9))
    positions = d.rng.integers(-10, 100, seq) if d.flag() else np.arange(seq)
    return d.array(shape, nan=True), positions, d.data.draw(st.sampled_from([10000.0, 500.0]))


CASES: dict[str, Callable[[Draw], tuple]] = {
    "matmul_backward": draw_matmul,
    "conv2d_backward": draw_conv,
    "conv2d_backward_input": lambda d: draw_conv_input(*draw_conv(d)),
    "conv2d_backward_weight": lambda d: draw_conv_weight(*draw_conv(d)),
    "batchnorm_backward": draw_batchnorm,
    "layernorm_backward": lambda d: draw_norm(d, rms=False),
    "rmsnorm_backward": lambda d: draw_norm(d, rms=True),
    "max_pool2d_backward": draw_max_pool,
    "avg_pool2d_backward": draw_avg_pool,
    "global_avg_pool_backward": draw_global_avg_pool,
    "softmax_backward": lambda d: draw_softmax(d, log=False),
    "log_softmax_backward": lambda d: draw_softmax(d, log=True),
    "activation_backward": draw_activation,
    "attention_backward": draw_attention,
    "rope_backward": draw_rope,
}


def test_the_table_covers_every_backward_kernel():
    assert tuple(CASES) == GRAD_OPS


def _f64(a: Any) -> Any:
    return a.astype(np.float64) if isinstance(a, np.ndarray) and a.dtype.kind == "f" else a


def _is_float_array(a: Any) -> bool:
    return isinstance(a, np.ndarray) and a.dtype.kind == "f"


def assert_matches(got: Any, want: Any, dtype: np.dtype, what: str, floor: float) -> None:
    if want is None:
        assert got is None, f"{what}: expected None"
        return
    got, want = np.asarray(got), np.asarray(want)
    assert got.shape == want.shape, f"{what}: shape {got.shape}, expected {want.shape}"
    assert got.dtype == dtype, f"{what}: dtype {got.dtype}, expected {dtype}"
    nan = np.isnan(want)
    np.testing.assert_array_equal(np.isnan(got), nan, err_msg=f"{what}: NaN in other places")
    g, w = got.astype(np.float64)[~nan], want[~nan]
    scale = float(np.abs(w).max()) if w.size else 0.0
    bad = ~(np.abs(g - w) <= TOL[dtype] * (np.abs(w) + scale + floor))
    assert not bad.any(), f"{what}: {int(bad.sum())} of {bad.size} differ; max error {np.abs(g - w).max():.3g}"


@pytest.fixture(scope="module")
def be():
    return c_backend()


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
@pytest.mark.parametrize("op", GRAD_OPS)
@given(data=st.data())
def test_c_backward_kernel_matches_the_reference(be, op, dtype, data):
    args = CASES[op](Draw(data, dtype))
    with np.errstate(all="ignore"):
        want = getattr(REF, op)(*(_f64(a) for a in args))
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", FallbackWarning)
        got = getattr(be, op)(*args)
    native = op in type(be).native_grad_ops
    assert (op in be.fallbacks) == (not native), f"{op}: native={native} but fallbacks={be.fallbacks}"
    outputs = (got, want) if isinstance(want, tuple) else ((got,), (want,))
    assert len(outputs[0]) == len(outputs[1])
    # an absolute floor: results that cancel to ~0 keep the rounding of the inputs' magnitude
    floor = max([1.0] + [float(np.abs(a[np.isfinite(a)]).max(initial=0)) for a in args if _is_float_array(a)])
    for i, (g, w) in enumerate(zip(*outputs)):
        assert_matches(g, w, np.dtype(dtype), f"{op} output {i}", floor)


def test_the_reference_backward_kernels_are_the_reference_grad_functions():
    from axiom.backends import reference_grad

    for op in GRAD_OPS:
        if op not in DERIVED_GRAD_OPS:  # built by the contract from other ops
            assert getattr(REF, op) is getattr(reference_grad, op)


# -- PartialBackend routing ------------------------------------------------------------------------


class SoftmaxGradOnly(PartialBackend):
    """A toy backend: only softmax_backward is 'native' (a fresh instance per test: its own fallbacks)."""

    name = "softmax-grad-only"
    native_grad_ops = ("softmax_backward",)

    def softmax_backward(self, grad_out: np.ndarray, y: np.ndarray, axis: int) -> np.ndarray:
        self.calls = getattr(self, "calls", 0) + 1
        return REF.softmax_backward(grad_out, y, axis)


def test_partial_backend_runs_a_missing_backward_kernel_on_the_reference_and_warns_once():
    be = SoftmaxGradOnly()
    y, g = REF.softmax(np.ones((2, 3)), -1), np.arange(6.0).reshape(2, 3)
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        np.testing.assert_array_equal(be.softmax_backward(g, y, -1), REF.softmax_backward(g, y, -1))
        first = be.log_softmax_backward(g, np.log(y), -1)
        second = be.log_softmax_backward(g, np.log(y), -1)
    np.testing.assert_array_equal(first, REF.log_softmax_backward(g, np.log(y), -1))
    np.testing.assert_array_equal(first, second)
    assert be.calls == 1
    assert set(be.fallbacks) == {"log_softmax_backward"}
    fallback_warnings = [w for w in caught if w.category is FallbackWarning]
    assert len(fallback_warnings) == 1  # once per backend and op
    assert "log_softmax_backward" in str(fallback_warnings[0].message)
    assert "softmax-grad-only" in str(fallback_warnings[0].message)


def test_partial_backend_routes_every_missing_backward_kernel():
    be = SoftmaxGradOnly()
    x = np.random.default_rng(0).standard_normal((2, 3))
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", FallbackWarning)
        be.activation_backward(x, x, "tanh", 0.0)
        be.matmul_backward(x, x.T, np.ones((2, 2)))
        # rope_backward is derived by the contract (RoPE at -positions): not a fallback itself,
        # but it runs this backend's rope, which here is the reference's
        np.testing.assert_array_equal(
            be.rope_backward(x[None], np.arange(2), 100.0), REF.rope_backward(x[None], np.arange(2), 100.0)
        )
    assert set(be.fallbacks) == {"activation_backward", "matmul_backward", "rope"}


def test_a_backend_switch_runs_autograd_on_that_backend():
    from axiom import Tensor
    from axiom import functional as F
    from axiom.backends import use_backend

    be = SoftmaxGradOnly()
    x = Tensor(np.random.default_rng(1).standard_normal((2, 3)), requires_grad=True)
    with use_backend(be), warnings.catch_warnings():
        warnings.simplefilter("ignore", FallbackWarning)
        y = F.softmax(x)
    y.backward(np.ones((2, 3)))  # outside the block: the op keeps the backend it ran on
    assert be.calls == 1
    np.testing.assert_allclose(x.grad.data, 0.0, atol=1e-15)  # softmax rows sum to 1
