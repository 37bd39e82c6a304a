"""The GPU GEMM and conv2d kernels (cuda/matmul.cu, cuda/conv2d.cu) on every GPU backend.

OpenCL runs on the CPU through PoCL here (CUDA skips without a GPU). Oracles: the NumPy
reference backend and float64 NumPy. Finite results must lie within the rounding bound of a
length-k dot product in any summation order, ``|out - ref| <= 2 (k + 2) u (|a| @ |b|)``
(``u`` the unit roundoff); non-finite results (NaN / Inf inputs, 0 * inf) must be exactly the
reference's. Bad arguments must raise the C backend's errors.
"""

from __future__ import annotations

import time
import warnings
from typing import Any

import numpy as np
import pytest
from gpu_libs import gpu_backend, gpu_backends
from hypothesis import given, settings
from hypothesis import strategies as st

from axiom.backends import FallbackWarning, ReferenceBackend
from axiom.backends.base import ACTIVATIONS
from axiom.backends.gpu import ops_conv2d, ops_matmul
from axiom.backends.gpu.ops import call
from axiom.backends.gpu.ops_conv2d import SHAPE_FIELDS, conv_shape
from axiom.backends.native import CBackend

REF = ReferenceBackend()
SETTINGS = settings(max_examples=20, deadline=None, database=None)
KINDS = pytest.mark.parametrize("kind", gpu_backends())
#: NaN / Inf inputs are tested on purpose: NumPy's oracles warn about them
pytestmark = pytest.mark.filterwarnings("ignore:invalid value encountered:RuntimeWarning")
_SHARED: dict[str, Any] = {}


def shared(kind: str) -> Any:
    """One backend per kind for the Hypothesis tests (its kernels compile once)."""
    if kind not in _SHARED:
        _SHARED[kind] = gpu_backend(kind)
    return _SHARED[kind]


def data(rng: np.random.Generator, shape: tuple[int, ...], dtype: Any, special: bool = False) -> np.ndarray:
    """Normal values of ``dtype``; with ``special``, some NaN / +-Inf / 0 sprinkled in."""
    x = rng.standard_normal(shape)
    if special and x.size:
        idx = rng.integers(0, x.size, size=max(1, x.size // 7))
        x.flat[idx] = rng.choice([np.nan, np.inf, -np.inf, 0.0], size=idx.size)
    return x.astype(dtype)


def assert_close(out: np.ndarray, ref: np.ndarray, bound_ref: np.ndarray, k: int, dtype: Any) -> None:
    """``out`` matches ``ref``: same non-finite values, finite ones within the dot-product bound."""
    assert out.shape == ref.shape and out.dtype == ref.dtype, (out.shape, out.dtype, ref.shape, ref.dtype)
    out64, ref64 = out.astype(np.float64), ref.astype(np.float64)
    finite = np.isfinite(ref64)
    np.testing.assert_array_equal(np.isnan(out64), np.isnan(ref64))
    np.testing.assert_array_equal(out64[np.isinf(ref64)], ref64[np.isinf(ref64)])
    u = float(np.finfo(dtype).eps)
    tol = 2 * (k + 2) * u * np.abs(bound_ref.astype(np.float64)) + np.finfo(dtype).tiny
    err = np.abs(out64 - ref64)
    bad = finite & ~(err <= tol)
    assert not bad.any(), f"max error {err[bad].max()} over tolerance {tol[bad].min()} ({bad.sum()} elements)"


def check_matmul(be: Any, a: np.ndarray, b: np.ndarray) -> None:
    out = be.matmul(a, b)
    ref = REF.matmul(a, b)
    with np.errstate(invalid="ignore"):
        bound = np.matmul(np.abs(a.astype(np.float64)), np.abs(b.astype(np.float64)))
    k = a.shape[-1]
    if a.dtype in (np.float16,):  # computed in float32, rounded once to float16
        np.testing.assert_allclose(out.astype(np.float64), ref.astype(np.float64), rtol=2e-3, atol=2e-3)
        assert out.dtype == ref.dtype
        return
    assert_close(out, ref, bound.reshape(ref.shape), k, np.result_type(a.dtype, b.dtype))


# -- matmul ----------------------------------------------------------------------------------------

DTYPES = st.sampled_from([np.float32, np.float64])
SIZE = st.integers(0, 130)


@KINDS
@SETTINGS
@given(m=SIZE, k=SIZE, n=SIZE, dtype=DTYPES, seed=st.integers(0, 2**31), special=st.booleans())
def test_matmul_2d(kind: str, m: int, k: int, n: int, dtype: Any, seed: int, special: bool) -> None:
    rng = np.random.default_rng(seed)
    check_matmul(shared(kind), data(rng, (m, k), dtype, special), data(rng, (k, n), dtype, special))


BATCH_SHAPES = [
    ((3, 5, 7), (3, 7, 4)),
    ((5, 7), (4, 7, 6)),  # a shared by every batch: stride 0
    ((4, 5, 7), (7, 6)),
    ((2, 1, 5, 7), (3, 7, 4)),  # partly broadcast
    ((1, 3, 9, 2), (2, 1, 2, 70)),
    ((0, 3, 4), (4, 2)),
    ((7,), (7,)),
    ((7,), (2, 7, 3)),
    ((2, 3, 7), (7,)),
    ((0,), (0, 5)),
]


@KINDS
@SETTINGS
@given(case=st.sampled_from(BATCH_SHAPES), dtype=DTYPES, seed=st.integers(0, 2**31), special=st.booleans())
def test_matmul_batched_and_1d(kind: str, case: tuple, dtype: Any, seed: int, special: bool) -> None:
    rng = np.random.default_rng(seed)
    check_matmul(shared(kind), data(rng, case[0], dtype, special), data(rng, case[1], dtype, special))


@KINDS
@SETTINGS
@given(m=st.integers(1, 70), k=st.integers(1, 70), n=st.integers(1, 70), dtype=DTYPES, seed=st.integers(0, 2**31))
def test_matmul_non_contiguous_and_mixed(kind: str, m: int, k: int, n: int, dtype: Any, seed: int) -> None:
    rng = np.random.default_rng(seed)
    a = data(rng, (k, 2 * m), dtype)[:, ::2].T  # transposed and strided
    b = data(rng, (n, k), dtype).T
    check_matmul(shared(kind), a, b)
    check_matmul(shared(kind), a, b.astype(np.float64))  # float32 x float64 computes in float64


@KINDS
def test_matmul_float16_and_bfloat16(kind: str) -> None:
    import ml_dtypes

    rng = np.random.default_rng(1)
    a, b = data(rng, (33, 65), np.float16), data(rng, (65, 17), np.float16)
    check_matmul(shared(kind), a, b)
    ab, bb = a.astype(ml_dtypes.bfloat16), b.astype(ml_dtypes.bfloat16)
    out = shared(kind).matmul(ab, bb)
    assert out.dtype == ml_dtypes.bfloat16
    np.testing.assert_allclose(out.astype(np.float32), REF.matmul(ab, bb).astype(np.float32), rtol=2e-2, atol=2e-2)


@KINDS
def test_matmul_nan_inf_propagate_like_numpy(kind: str) -> None:
    a = np.array([[0.0, 1.0], [np.inf, 0.0], [np.nan, 0.0], [np.inf, -np.inf]], np.float32)
    b = np.array([[np.inf, 0.0, 1.0], [0.0, 0.0, 1.0]], np.float32)
    with np.errstate(invalid="ignore"):
        np.testing.assert_array_equal(shared(kind).matmul(a, b), a @ b)  # 0 * inf = NaN is not skipped


@KINDS
def test_matmul_large(kind: str) -> None:
    rng = np.random.default_rng(2)
    for dtype in (np.float32, np.float64):
        check_matmul(shared(kind), data(rng, (300, 200), dtype), data(rng, (200, 260), dtype))


# -- the gemm launcher (bias + activation epilogue, batch strides) -----------------------------------


@KINDS
@SETTINGS
@given(
    batch=st.integers(1, 4),
    m=st.integers(1, 70),
    k=st.integers(0, 70),
    n=st.integers(1, 70),
    split=st.booleans(),
    shared_a=st.booleans(),
    shared_b=st.booleans(),
    with_bias=st.booleans(),
    act=st.sampled_from(ACTIVATIONS),
    dtype=DTYPES,
    seed=st.integers(0, 2**31),
)
def test_gemm_launcher_epilogue(
    kind: str,
    batch: int,
    m: int,
    k: int,
    n: int,
    split: bool,
    shared_a: bool,
    shared_b: bool,
    with_bias: bool,
    act: str,
    dtype: Any,
    seed: int,
) -> None:
    rt = shared(kind).runtime
    rng = np.random.default_rng(seed)
    a = data(rng, (1 if shared_a else batch, m, k), dtype)
    b = data(rng, (1 if shared_b else batch, k, n), dtype)
    bias = data(rng, (n,), dtype) if with_bias else None
    alpha = 0.2
    c = rt.empty((batch, m, n), dtype)
    with pytest.MonkeyPatch.context() as mp:
        if split:  # split-K even for these short reductions: chunks of 16 summed by axiom_gemm_reduce
            mp.setattr(ops_matmul, "SPLIT_MIN_K", 16)
            mp.setattr(ops_matmul, "SPLIT_CHUNK", 16)
        call(
            rt,
            "gemm",
            dtype,
            rt.to_device(a),
            rt.to_device(b),
            c,
            None if bias is None else rt.to_device(bias),
            batch,
            m,
            n,
            k,
            0 if shared_a else m * k,
            0 if shared_b else k * n,
            ACTIVATIONS.index(act),
            alpha,
        )
    pre = np.matmul(a.astype(np.float64), b.astype(np.float64)) + (0 if bias is None else bias.astype(np.float64))
    pre = np.broadcast_to(pre, (batch, m, n))
    ref = REF.activation(pre, act, alpha)
    rtol = (k + 4) * 4 * float(np.finfo(dtype).eps)
    bound = np.abs(a.astype(np.float64)) @ np.abs(b.astype(np.float64)) + (0 if bias is None else np.abs(bias))
    np.testing.assert_allclose(rt.to_host(c), ref, rtol=rtol, atol=rtol * (1 + float(np.max(bound, initial=0.0))))


@KINDS
def test_gemm_launcher_batch_loop_and_k0(kind: str, monkeypatch: pytest.MonkeyPatch) -> None:
    """More batches than grid axis 1 holds (the kernel loops), and k == 0 gives act(bias)."""
    rt = shared(kind).runtime
    monkeypatch.setattr(ops_matmul, "MAX_AXIS1", 3)
    rng = np.random.default_rng(3)
    a, b = data(rng, (10, 5, 6), np.float32), data(rng, (6, 9), np.float32)
    c = rt.empty((10, 5, 9), np.float32)
    ops_matmul.gemm(rt, np.dtype(np.float32), rt.to_device(a), rt.to_device(b), c, None, 10, 5, 9, 6, 30, 0, 0, 0.0)
    np.testing.assert_allclose(rt.to_host(c), a @ b, rtol=1e-5, atol=1e-5)
    bias = np.array([-1.0, 2.0, np.nan], np.float32)
    c0 = rt.empty((2, 4, 3), np.float32)
    empty = rt.empty((0,), np.float32)
    ops_matmul.gemm(rt, np.dtype(np.float32), empty, empty, c0, rt.to_device(bias), 2, 4, 3, 0, 0, 0, 1, 0.0)
    np.testing.assert_array_equal(rt.to_host(c0), np.broadcast_to([0.0, 2.0, np.nan], (2, 4, 3)))


@KINDS
def test_matmul_split_k(kind: str) -> None:
    """Few output tiles and a long reduction: split-K partial sums, then the ordered reduce (with NaN / Inf)."""
    assert ops_matmul.split_k(1, 3000) > 1
    rng = np.random.default_rng(8)
    for dtype in (np.float32, np.float64):
        check_matmul(shared(kind), data(rng, (3, 3000), dtype, True), data(rng, (3000, 70), dtype))
        check_matmul(shared(kind), data(rng, (2100,), dtype), data(rng, (2, 2100, 5), dtype))


@KINDS
def test_gemm_launcher_bad_arguments(kind: str) -> None:
    rt = shared(kind).runtime
    f32 = np.dtype(np.float32)
    a, c = rt.empty((6,), f32), rt.empty((4,), f32)
    with pytest.raises(ValueError, match="activation code 99"):
        ops_matmul.gemm(rt, f32, a, a, c, None, 1, 2, 2, 3, 0, 0, 99, 0.0)
    with pytest.raises(ValueError, match="c has 4 elements"):
        ops_matmul.gemm(rt, f32, a, a, c, None, 2, 2, 2, 3, 6, 6, 0, 0.0)
    with pytest.raises(ValueError, match="negative"):
        ops_matmul.gemm(rt, f32, a, a, c, None, 1, -2, 2, 3, 0, 0, 0, 0.0)
    with pytest.raises(TypeError, match="float64"):
        ops_matmul.gemm(rt, f32, a, a, rt.empty((4,), np.float64), None, 1, 2, 2, 3, 0, 0, 0, 0.0)


# -- conv2d ---------------------------------------------------------------------------------------


def check_conv(be: Any, x: np.ndarray, w: np.ndarray, bias: np.ndarray | None, *params: Any) -> None:
    out = be.conv2d(x, w, bias, *params)
    ref = REF.conv2d(x, w, bias, *params)
    with np.errstate(invalid="ignore"):
        bound = REF.conv2d(
            np.abs(x.astype(np.float64)),
            np.abs(w.astype(np.float64)),
            None if bias is None else np.abs(bias.astype(np.float64)),
            *params,
        )
    assert_close(out, ref, bound, w.shape[0] * w.shape[1] * w.shape[2], x.dtype)


@KINDS
@SETTINGS
@given(
    n=st.integers(0, 2),
    hw=st.tuples(st.integers(1, 9), st.integers(1, 9)),
    groups=st.integers(1, 3),
    cin_g=st.integers(1, 4),
    cout_g=st.integers(1, 5),
    khw=st.tuples(st.integers(1, 3), st.integers(1, 3)),
    stride=st.tuples(st.integers(1, 3), st.integers(1, 3)),
    dilation=st.tuples(st.integers(1, 2), st.integers(1, 2)),
    pads=st.tuples(*(st.integers(0, 2) for _ in range(4))),
    with_bias=st.booleans(),
    dtype=DTYPES,
    seed=st.integers(0, 2**31),
    special=st.booleans(),
)
def test_conv2d_matches_reference(
    kind: str,
    n: int,
    hw: tuple,
    groups: int,
    cin_g: int,
    cout_g: int,
    khw: tuple,
    stride: tuple,
    dilation: tuple,
    pads: tuple,
    with_bias: bool,
    dtype: Any,
    seed: int,
    special: bool,
) -> None:
    rng = np.random.default_rng(seed)
    x = data(rng, (n, *hw, groups * cin_g), dtype, special)
    w = data(rng, (*khw, cin_g, groups * cout_g), dtype, special)
    bias = data(rng, (groups * cout_g,), dtype) if with_bias else None
    padding = ((pads[0], pads[1]), (pads[2], pads[3]))
    check_conv(shared(kind), x, w, bias, stride, padding, dilation, groups)


@KINDS
@pytest.mark.parametrize("multiplier", [1, 3])
def test_conv2d_depthwise(kind: str, multiplier: int) -> None:
    rng = np.random.default_rng(4)
    for dtype in (np.float32, np.float64):
        x = data(rng, (2, 11, 7, 6), dtype)
        w = data(rng, (3, 3, 1, 6 * multiplier), dtype)
        b = data(rng, (6 * multiplier,), dtype)
        check_conv(shared(kind), x, w, b, (2, 1), ((1, 1), (0, 2)), (1, 2), 6)


@KINDS
def test_conv2d_padding_meets_inf_weights(kind: str) -> None:
    """Padded taps multiply like real ones: an infinite weight on a padded tap gives NaN (reference, C)."""
    x = np.ones((1, 3, 3, 2), np.float32)
    for groups, cin_g in ((1, 2), (2, 1)):
        w = np.ones((3, 3, cin_g, 2), np.float32)
        w[0, 0] = np.inf
        with np.errstate(invalid="ignore"):
            check_conv(shared(kind), x, w, None, (1, 1), ((1, 1), (1, 1)), (1, 1), groups)


@KINDS
def test_conv2d_pixels_do_not_mix(kind: str) -> None:
    """One pixel's -inf stays in its row (a regression: PoCL once gathered another work-item's pixel)."""
    x = np.array([[[[0.1, -0.1, 0.6]], [[-np.inf, -0.5, 0.4]]]], np.float32)
    w = np.array([0.0, -0.7, -1.3], np.float32).reshape(1, 1, 3, 1)
    with np.errstate(invalid="ignore"):
        check_conv(shared(kind), x, w, None, (1, 1), ((0, 0), (0, 0)), (1, 1), 1)


@KINDS
def test_conv2d_large_and_wide(kind: str) -> None:
    rng = np.random.default_rng(5)
    be = shared(kind)
    for dtype in (np.float32, np.float64):
        x, w, b = data(rng, (2, 20, 20, 32), dtype), data(rng, (3, 3, 32, 64), dtype), data(rng, (64,), dtype)
        check_conv(be, x, w, b, (1, 1), ((1, 1), (1, 1)), (1, 1), 1)
    x, w = data(rng, (1, 9, 9, 4), np.float32), data(rng, (1, 2, 4, 130), np.float32)  # c_out crosses 2 tile edges
    check_conv(be, x, w, None, (1, 1), ((0, 0), (0, 0)), (1, 1), 1)


@KINDS
def test_conv2d_zero_sizes_and_no_channels(kind: str) -> None:
    be = shared(kind)
    x = np.ones((0, 5, 5, 4), np.float32)
    assert be.conv2d(x, np.ones((3, 3, 4, 6), np.float32), None, (1, 1), ((0, 0), (0, 0)), (1, 1), 1).shape == (
        0,
        3,
        3,
        6,
    )
    x, w, b = np.ones((1, 4, 4, 0), np.float64), np.ones((2, 2, 0, 3), np.float64), np.array([1.0, -2.0, 3.0])
    check_conv(be, x, w, b, (1, 1), ((0, 0), (0, 0)), (1, 1), 1)  # K == 0: y = bias
    x = np.ones((1, 2, 2, 3), np.float32)
    out = be.conv2d(x, np.ones((3, 3, 3, 2), np.float32), None, (1, 1), ((0, 0), (0, 0)), (1, 1), 1)
    assert out.shape == (1, 0, 0, 2)


@KINDS
def test_conv2d_launcher_epilogue_and_group_loop(kind: str, monkeypatch: pytest.MonkeyPatch) -> None:
    rt = shared(kind).runtime
    monkeypatch.setattr(ops_conv2d, "MAX_AXIS1", 2)
    rng = np.random.default_rng(6)
    f64 = np.dtype(np.float64)
    x, w, b = data(rng, (2, 6, 5, 10), f64), data(rng, (2, 3, 2, 15), f64), data(rng, (15,), f64)
    params = ((1, 2), ((1, 0), (2, 1)), (2, 1), 5)
    shape = conv_shape(x.shape, w.shape, *params)
    s = dict(zip(SHAPE_FIELDS, shape))
    y = rt.empty((s["n"], s["out_h"], s["out_w"], s["c_out"]), f64)
    call(rt, "conv2d", f64, shape, rt.to_device(x), rt.to_device(w), rt.to_device(b), y, ACTIVATIONS.index("elu"), 0.5)
    ref = REF.activation(REF.conv2d(x, w, b, *params), "elu", 0.5)
    np.testing.assert_allclose(rt.to_host(y), ref, rtol=1e-12, atol=1e-12)
    with pytest.raises(ValueError, match="18"):
        call(rt, "conv2d", f64, shape[:-1], rt.to_device(x), rt.to_device(w), None, y, 0, 0.0)
    with pytest.raises(ValueError, match="y has"):
        call(rt, "conv2d", f64, shape, rt.to_device(x), rt.to_device(w), None, rt.empty((3,), f64), 0, 0.0)


# -- errors and fallbacks ---------------------------------------------------------------------------


def same_error(gpu: Any, fn: str, *args: Any) -> None:
    with pytest.raises((ValueError, TypeError)) as expected:
        getattr(CBackend(), fn)(*args)
    with pytest.raises(expected.type) as got:
        getattr(gpu, fn)(*args)
    assert str(got.value) == str(expected.value)


@KINDS
def test_bad_arguments_give_the_c_backends_errors(kind: str) -> None:
    be = shared(kind)
    f = np.ones((3, 4), np.float32)
    same_error(be, "matmul", f, np.ones((5, 2), np.float32))
    same_error(be, "matmul", np.float32(1.0), f)
    same_error(be, "matmul", np.ones(()), f)
    same_error(be, "matmul", [[1.0]], f)
    same_error(be, "matmul", np.ones((2, 3, 4)), np.ones((3, 4, 5)))
    x, w = np.ones((1, 5, 5, 4), np.float32), np.ones((3, 3, 2, 6), np.float32)
    p0 = ((0, 0), (0, 0))
    same_error(be, "conv2d", x, w, None, (1, 1), p0, (1, 1), 3)
    same_error(be, "conv2d", x, w, None, (1, 1), p0, (1, 1), 0)
    same_error(be, "conv2d", x, w, np.ones(5, np.float32), (1, 1), p0, (1, 1), 2)
    same_error(be, "conv2d", x, w, None, (0, 1), p0, (1, 1), 2)
    same_error(be, "conv2d", x, w, None, (1.5, 1), p0, (1, 1), 2)
    same_error(be, "conv2d", x, w, None, (1, 1), ((0, -1), (0, 0)), (1, 1), 2)
    same_error(be, "conv2d", x, w, None, (1, 1), (0, 0), (1, 1), 2)
    same_error(be, "conv2d", x[0], w, None, (1, 1), p0, (1, 1), 2)
    same_error(be, "conv2d", x, w, [1.0] * 6, (1, 1), p0, (1, 1), 2)
    same_error(be, "conv2d", x.tolist(), w, None, (1, 1), p0, (1, 1), 2)


@KINDS
def test_no_fallback_for_float32_float64_and_recorded_ones(kind: str) -> None:
    be = gpu_backend(kind)  # its own fallbacks
    a = np.arange(6.0).reshape(2, 3)
    x, w = np.ones((1, 4, 4, 2)), np.ones((2, 2, 2, 3))
    with warnings.catch_warnings():
        warnings.simplefilter("error", FallbackWarning)
        for dt in (np.float32, np.float64):
            np.testing.assert_allclose(be.matmul(a.astype(dt), a.T.astype(dt)), a @ a.T)
            np.testing.assert_allclose(be.conv2d(x.astype(dt), w.astype(dt), None, (1, 1), ((0, 0),) * 2, (1, 1), 1), 8)
    assert be.fallbacks == {}
    with pytest.warns(FallbackWarning):
        out = be.matmul(np.arange(6).reshape(2, 3), np.arange(6).reshape(3, 2))
    assert out.dtype == np.int64 and out.tolist() == (np.arange(6).reshape(2, 3) @ np.arange(6).reshape(3, 2)).tolist()
    assert "int64" in be.fallbacks["matmul"]
    with pytest.warns(FallbackWarning):
        be.conv2d(x.astype(np.int32), w.astype(np.int32), None, (1, 1), ((0, 0),) * 2, (1, 1), 1)
    assert "int32" in be.fallbacks["conv2d"]


@KINDS
def test_float64_without_device_support_falls_back(kind: str, monkeypatch: pytest.MonkeyPatch) -> None:
    be = gpu_backend(kind)
    monkeypatch.setattr(type(be.runtime), "supports_float64", property(lambda self: False))
    with pytest.warns(FallbackWarning):
        out = be.matmul(np.ones((2, 3)), np.ones((3, 2)))
    assert out.tolist() == [[3.0, 3.0], [3.0, 3.0]] and "no float64" in be.fallbacks["matmul"]
    with pytest.warns(FallbackWarning):
        be.conv2d(np.ones((1, 3, 3, 1)), np.ones((2, 2, 1, 1)), None, (1, 1), ((0, 0),) * 2, (1, 1), 1)
    assert "no float64" in be.fallbacks["conv2d"]


def test_conv_shape_helper() -> None:
    shape = conv_shape((2, 9, 8, 6), (3, 2, 3, 4), (2, 1), ((1, 0), (0, 2)), (1, 2), 2)
    assert dict(zip(SHAPE_FIELDS, shape)) == {
        "n": 2,
        "h": 9,
        "w": 8,
        "c_in": 6,
        "c_out": 4,
        "k_h": 3,
        "k_w": 2,
        "out_h": 4,
        "out_w": 8,
        "stride_h": 2,
        "stride_w": 1,
        "pad_top": 1,
        "pad_bottom": 0,
        "pad_left": 0,
        "pad_right": 2,
        "dilation_h": 1,
        "dilation_w": 2,
        "groups": 2,
    }
    with pytest.raises(ValueError, match="groups=4"):
        conv_shape((2, 9, 8, 6), (3, 2, 3, 4), (1, 1), ((0, 0), (0, 0)), (1, 1), 4)


@KINDS
def test_matmul_512_timing_is_reasonable(kind: str) -> None:
    """A 512^3 float32 product is right and not absurdly slow (PoCL on 2 CPU cores is no target)."""
    be = shared(kind)
    rng = np.random.default_rng(7)
    a, b = data(rng, (512, 512), np.float32), data(rng, (512, 512), np.float32)
    be.matmul(a, b)  # warm-up: compile
    start = time.perf_counter()
    out = be.matmul(a, b)
    elapsed = time.perf_counter() - start
    check_matmul(be, a, b)
    assert np.isfinite(out).all() and elapsed < 30
