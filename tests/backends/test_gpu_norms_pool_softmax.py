"""GPU normalisation, pooling and softmax kernels (cuda/norms.cu, pooling.cu, softmax.cu) against the reference.

Every op runs through the backend API (``be.layernorm(...)``, ...) on each GPU backend (OpenCL
through PoCL in CI; CUDA skips without a GPU) and must match the NumPy reference evaluated in
float64 on the same inputs (rounded to the input dtype): where the oracle is NaN the result is
NaN, where it is +-inf the same inf, elsewhere within a bound of a few units of the dtype's
epsilon times the square root of the op's reduction length. Inputs: float32 and float64, odd
sizes, rows longer than one work-group (> 256, > 1024), zero-size arrays, NaN/Inf, non-contiguous
views; float16 inputs compute in float32. No op may fall back (``be.fallbacks`` stays empty).
Bad arguments give the C backend's errors; bad launcher arguments give a clear ValueError.
"""

from __future__ import annotations

import math
from collections.abc import Callable
from typing import Any

import numpy as np
import pytest
from gpu_libs import gpu_backend, gpu_backends
from hypothesis import given, settings
from hypothesis import strategies as st
from native_libs import backend as native_backend
from test_op_table import Gen as TableGen

from axiom.backends import ReferenceBackend
from axiom.backends.gpu.ops import call

pytestmark = pytest.mark.filterwarnings("ignore::RuntimeWarning")

REF = ReferenceBackend()
F16, F32, F64 = np.dtype(np.float16), np.dtype(np.float32), np.dtype(np.float64)
HYP = settings(max_examples=25, deadline=None, database=None)


def fuzz(test: Callable[..., None]) -> Callable[..., None]:
    """Hypothesis drives ``test``: its ``data`` argument is the draw source, with the :data:`HYP` settings."""
    return HYP(given(data=st.data())(test))


#: per-dtype base of the error bound (times 1 + sqrt(reduction length))
BASE = {F32: 4e-7, F64: 1e-15}


@pytest.fixture(scope="module", params=gpu_backends())
def be(request: pytest.FixtureRequest) -> Any:
    """One backend per kind for the module (its programs are compiled once)."""
    return gpu_backend(request.param)


@pytest.fixture(scope="module", params=[F32, F64], ids=["f32", "f64"])
def dtype(request: pytest.FixtureRequest, be: Any) -> np.dtype:
    if not be.runtime.supports(request.param):
        pytest.skip(f"{be.device_name} has no {request.param.name} kernels")
    return request.param


# -- inputs and comparison ---------------------------------------------------------------------


class Gen(TableGen):
    """The op table's generator (seeded values, NaN/Inf, non-contiguous views) with the GPU kernels' sizes."""

    def dim(self, lo: int = 1, hi: int = 33, zero: bool = False, long: bool = False) -> int:
        """A small size, often an odd larger one up to ``hi``, maybe zero or longer than a work-group (255..3001)."""
        small = st.integers(lo, min(hi, 9))
        choices = [small, small]
        odd = [v for v in (11, 17, 31, 33, 63, 65, 129) if v <= hi]
        if odd:
            choices.append(st.sampled_from(odd))
        if zero:
            choices.append(st.just(0))
        if long:
            choices.append(st.sampled_from([255, 257, 1023, 1025, 3001]))
        return self.data.draw(st.one_of(*choices))


def up(a: Any) -> Any:
    return a.astype(np.float64) if isinstance(a, np.ndarray) else a


def oracle(op: str, *args: Any) -> np.ndarray:
    """The reference on float64 copies of the array arguments."""
    return getattr(REF, op)(*(up(a) for a in args))


def check(result: np.ndarray, want: np.ndarray, dtype: np.dtype, length: int) -> None:
    """NaN where the oracle is NaN, the same inf where it is inf, else within the bound."""
    assert result.dtype == dtype and result.shape == want.shape, (result.dtype, result.shape, want.shape)
    want = want.astype(dtype).astype(np.float64)
    got = result.astype(np.float64)
    nan = np.isnan(want)
    np.testing.assert_array_equal(np.isnan(got), nan, err_msg="NaN positions differ")
    inf = np.isinf(want)
    np.testing.assert_array_equal(got[inf], want[inf], err_msg="infinities differ")
    fin = ~(nan | inf)
    tol = (2e-3 if dtype == F16 else BASE[dtype]) * (1 + math.sqrt(max(1, length)))
    err = np.abs(got[fin] - want[fin])
    bound = tol * (1 + np.abs(want[fin]))
    assert np.all(err <= bound), f"max error {np.max(err - bound + tol)} (bound {tol} * (1 + |y|), length {length})"


def run(be: Any, op: str, *args: Any) -> np.ndarray:
    """``be.op(*args)``, which must run on the device (no fallback recorded)."""
    out = getattr(be, op)(*args)
    assert not be.fallbacks, be.fallbacks
    return out


# -- normalisation --------------------------------------------------------------------------------


@fuzz
def test_batchnorm(be: Any, dtype: np.dtype, data: st.DataObject) -> None:
    g = Gen(data, dtype)
    c = g.dim(zero=True, long=True)
    lead = tuple(g.dim(zero=True, hi=17) for _ in range(data.draw(st.integers(0, 2))))
    x = g.array((*lead, c))
    mean, var = g.array((c,), special=False), g.positive((c,))
    gamma = g.array((c,), special=False) if g.flag() else None
    beta = g.array((c,), special=False) if g.flag() else None
    eps = data.draw(st.sampled_from([1e-5, 1e-3, 0.0]))
    check(
        run(be, "batchnorm", x, mean, var, gamma, beta, eps),
        oracle("batchnorm", x, mean, var, gamma, beta, eps),
        dtype,
        1,
    )


@pytest.mark.parametrize("op", ["layernorm", "rmsnorm"])
@fuzz
def test_row_norms(be: Any, dtype: np.dtype, op: str, data: st.DataObject) -> None:
    g = Gen(data, dtype)
    n_axes = data.draw(st.integers(0, 2))
    norm = tuple(g.dim(hi=65, long=n_axes == 1) for _ in range(n_axes))
    lead = tuple(g.dim(zero=True, hi=17) for _ in range(data.draw(st.integers(0, 2))))
    x = g.array((*lead, *norm))
    gamma = g.array(norm, special=False) if g.flag() else None
    eps = data.draw(st.sampled_from([1e-5, 1e-2]))
    if op == "layernorm":
        beta = g.array(norm, special=False) if g.flag() else None
        args: tuple[Any, ...] = (x, gamma, beta, eps, n_axes)
    else:
        args = (x, gamma, eps, n_axes)
    check(run(be, op, *args), oracle(op, *args), dtype, math.prod(norm))


# -- pooling --------------------------------------------------------------------------------------


def _pool_geometry(data: st.DataObject) -> tuple[tuple[int, int], tuple[int, int], Any, tuple[int, int]]:
    kernel = (data.draw(st.integers(1, 4)), data.draw(st.integers(1, 4)))
    stride = (data.draw(st.integers(1, 3)), data.draw(st.integers(1, 3)))
    padding = tuple((data.draw(st.integers(0, 3)), data.draw(st.integers(0, 3))) for _ in range(2))
    dilation = (data.draw(st.integers(1, 3)), data.draw(st.integers(1, 2)))
    return kernel, stride, padding, dilation


@pytest.mark.parametrize("op", ["max_pool2d", "avg_pool2d"])
@fuzz
def test_pool2d(be: Any, dtype: np.dtype, op: str, data: st.DataObject) -> None:
    g = Gen(data, dtype)
    x = g.array((g.dim(1, 3, zero=True), g.dim(zero=True, hi=65), g.dim(hi=65), g.dim(1, 5)))
    kernel, stride, padding, dilation = _pool_geometry(data)
    last = dilation if op == "max_pool2d" else g.flag()
    check(run(be, op, x, kernel, stride, padding, last), oracle(op, x, kernel, stride, padding, last), dtype, 16)


@fuzz
def test_global_avg_pool(be: Any, dtype: np.dtype, data: st.DataObject) -> None:
    g = Gen(data, dtype)
    h = g.dim(zero=True, long=True)
    x = g.array((g.dim(1, 3, zero=True), h, g.dim(1, 3, zero=True), g.dim(1, 33)))
    check(run(be, "global_avg_pool", x), oracle("global_avg_pool", x), dtype, x.shape[1] * x.shape[2])


# -- softmax --------------------------------------------------------------------------------------


@pytest.mark.parametrize("op", ["softmax", "log_softmax"])
@fuzz
def test_softmax(be: Any, dtype: np.dtype, op: str, data: st.DataObject) -> None:
    g = Gen(data, dtype)
    ndim = data.draw(st.integers(1, 3))
    axis = data.draw(st.integers(-ndim, ndim - 1))
    shape = [g.dim(zero=True, hi=17) for _ in range(ndim)]
    shape[axis] = g.dim(long=True)  # the reference has no softmax over an empty axis (see test_softmax_empty)
    x = g.array(tuple(shape), scale=data.draw(st.sampled_from([1.0, 30.0])))
    if x.size and g.flag(0.2):
        x = np.moveaxis(x, axis, 0).copy()
        x[0] = -np.inf  # all -inf rows: NaN, like the reference
        x = np.moveaxis(x, 0, axis)
    check(run(be, op, x, axis), oracle(op, x, axis), dtype, shape[axis])


@pytest.mark.parametrize("op", ["softmax", "log_softmax"])
def test_softmax_empty(be: Any, dtype: np.dtype, op: str) -> None:
    c = native_backend("c")
    for shape, axis in (((3, 0, 2), 1), ((0, 5), 1), ((4, 0), 0), ((0,), 0)):
        x = np.zeros(shape, dtype)
        got, want = run(be, op, x, axis), getattr(c, op)(x, axis)
        assert got.shape == want.shape == shape and got.dtype == want.dtype == dtype


def test_special_rows_match_c(be: Any, dtype: np.dtype) -> None:
    """NaN / +inf / all -inf rows and padding-only windows give the C kernels' special values.

    Exception: an average over a window far inside the top / left padding is NaN here, like the
    reference (0 / 0); the C, Rust and Zig kernels give -0 there (their tap range goes negative).
    """
    c = native_backend("c")
    x = np.array(
        [[1.0, np.nan, 2.0], [np.inf, 0.0, 1.0], [-np.inf, -np.inf, -np.inf], [-np.inf, 0.0, 3.0], [1e30, -1e30, 0]],
        dtype,
    )
    for op in ("softmax", "log_softmax"):
        for axis in (0, 1):
            check(run(be, op, x, axis), getattr(c, op)(x, axis), dtype, 5)
    for args in ((None, None, 1e-5, 1), (np.ones(3, dtype), np.zeros(3, dtype), 0.0, 1)):
        np.testing.assert_array_equal(np.isnan(run(be, "layernorm", x, *args)), np.isnan(c.layernorm(x, *args)))
    img = np.full((1, 2, 2, 1), -np.inf, dtype)
    img[0, 0, 0, 0] = np.nan
    for args in (((3, 3), (2, 2), ((2, 2), (2, 2)), (1, 1)), ((2, 2), (1, 1), ((0, 0), (0, 0)), (1, 1))):
        np.testing.assert_array_equal(run(be, "max_pool2d", img, *args), c.max_pool2d(img, *args))
    ones = np.ones((1, 2, 1, 2), dtype)
    for include in (True, False):
        # windows of padding only (NaN without count_include_pad), some far inside the top / left padding
        args = ((1, 2), (1, 1), ((3, 2), (4, 3)), include)
        check(run(be, "avg_pool2d", ones, *args), oracle("avg_pool2d", ones, *args), dtype, 2)
    empty = np.zeros((2, 0, 3, 4), dtype)
    np.testing.assert_array_equal(run(be, "global_avg_pool", empty), c.global_avg_pool(empty))


# -- float16 in, float32 compute ------------------------------------------------------------------


@fuzz
def test_float16_inputs(be: Any, data: st.DataObject) -> None:
    g = Gen(data, F16)
    n = g.dim(long=True)
    x = g.array((g.dim(zero=True), n), special=False)
    gamma, beta = g.array((n,), special=False), g.array((n,), special=False)
    cases: list[tuple[str, tuple[Any, ...], int]] = [
        ("layernorm", (x, gamma, beta, 1e-5, 1), n),
        ("rmsnorm", (x, gamma, 1e-5, 1), n),
        ("batchnorm", (x, gamma, g.positive((n,)), None, beta, 1e-5), 1),
        ("softmax", (x, 1), n),
        ("log_softmax", (x, 0), x.shape[0]),
    ]
    img = g.array((g.dim(1, 2), g.dim(), g.dim(), g.dim(1, 5)), special=False)
    cases += [
        ("max_pool2d", (img, (2, 3), (1, 2), ((1, 0), (0, 2)), (1, 1)), 6),
        ("avg_pool2d", (img, (2, 3), (1, 2), ((1, 0), (0, 2)), False), 6),
        ("global_avg_pool", (img,), img.shape[1] * img.shape[2]),
    ]
    for op, args, length in cases:
        if op == "log_softmax" and x.shape[0] == 0:
            continue
        check(run(be, op, *args), oracle(op, *args), F16, length)


# -- kernels' own loops and arguments -------------------------------------------------------------


def test_group_loops(be: Any, dtype: np.dtype) -> None:
    """Fewer work-groups than blocks (what the launchers' group cap leads to on huge inputs): the kernels loop."""
    rt, rng = be.runtime, np.random.default_rng(1)
    x = rng.standard_normal((37, 300)).astype(dtype)
    dx, dy = rt.to_device(x), rt.empty(x.shape, dtype)
    rows, n, eps = np.int32(37), np.int32(300), dtype.type(1e-5)
    no = np.int32(0)
    # 4 and 32 lanes per row: 64 and 8 rows per group, 2 groups
    rt.launch("norms", "axiom_layernorm", dtype, (2,), (256,), dx, None, None, dy, rows, n, eps, np.int32(4), no, no)
    check(rt.to_host(dy), oracle("layernorm", x, None, None, 1e-5, 1), dtype, 300)
    rt.launch("norms", "axiom_rmsnorm", dtype, (2,), (256,), dx, None, dy, rows, n, eps, np.int32(32), no)
    check(rt.to_host(dy), oracle("rmsnorm", x, None, 1e-5, 1), dtype, 300)
    for inner, lanes, fast in ((1, 2, 1), (3, 8, 0)):
        shape = (37 * 300 // inner // 4, 4, inner) if inner > 1 else (37 * 75, 4, 1)
        xs = x.reshape(-1)[: math.prod(shape)].reshape(shape)
        dxs, dys = rt.to_device(xs), rt.empty(shape, dtype)
        cols = shape[0] * inner
        rt.launch("softmax", "axiom_softmax", dtype, (3,), (256,), dxs, dys, np.int64(cols), np.int32(4),
                  np.int32(inner), np.int32(0), np.int32(lanes), np.int32(fast))  # fmt: skip
        check(rt.to_host(dys), oracle("softmax", xs, 1), dtype, 4)
    img = x[:36].reshape(4, 3, 300, 3)
    dimg, out = rt.to_device(img), rt.empty((4, 3), dtype)
    rt.launch("pooling", "axiom_global_avg_pool", dtype, (1,), (256,), dimg, out, *map(np.int32, (4, 900, 3)))
    check(rt.to_host(out), oracle("global_avg_pool", img), dtype, 900)
    big = rng.standard_normal((3, 40, 50, 7)).astype(dtype)
    dbig, pooled = rt.to_device(big), rt.empty((3, 40, 50, 7), dtype)
    geom = (3, 40, 50, 7, 3, 3, 1, 1, 1, 1, 1, 1, 40, 50)  # n h w c kh kw sh sw pt pl dh dw ho wo
    rt.launch("pooling", "axiom_max_pool2d", dtype, (2,), (256,), dbig, pooled, *map(np.int32, geom))
    check(rt.to_host(pooled), oracle("max_pool2d", big, (3, 3), (1, 1), ((1, 1), (1, 1)), (1, 1)), dtype, 9)


BAD_CALLS: list[tuple[str, tuple[Any, ...]]] = [
    ("batchnorm", (np.float32(1.0), np.zeros(1), np.ones(1), None, None, 1e-5)),
    ("batchnorm", (np.zeros((2, 3)), None, np.ones(3), None, None, 1e-5)),
    ("batchnorm", (np.zeros((2, 3)), np.zeros(4), np.ones(3), None, None, 1e-5)),
    ("batchnorm", (np.zeros((2, 3)), np.zeros(3), np.ones(3), np.ones((2, 3)), None, 1e-5)),
    ("layernorm", (np.zeros((2, 3)), None, None, 1e-5, 3)),
    ("layernorm", (np.zeros((2, 3)), np.ones(4), None, 1e-5, 1)),
    ("layernorm", (np.zeros((2, 3)), None, None, 1e-5, True)),
    ("layernorm", (np.array(["a", "b"]), None, None, 1e-5, 1)),
    ("rmsnorm", (np.zeros((2, 3)), np.ones((2, 2)), 1e-5, 2)),
    ("rmsnorm", (np.zeros((2, 3)), None, 1e-5, -1)),
    ("max_pool2d", (np.zeros((2, 3, 3)), (2, 2), (1, 1), ((0, 0), (0, 0)), (1, 1))),
    ("max_pool2d", (np.zeros((1, 3, 3, 1)), (0, 2), (1, 1), ((0, 0), (0, 0)), (1, 1))),
    ("max_pool2d", (np.zeros((1, 3, 3, 1)), (2, 2), (1, 0), ((0, 0), (0, 0)), (1, 1))),
    ("max_pool2d", (np.zeros((1, 3, 3, 1)), (2, 2), (1, 1), ((0, -1), (0, 0)), (1, 1))),
    ("max_pool2d", (np.zeros((1, 3, 3, 1)), (2, 2), (1, 1), ((0, 0), (0, 0)), (0, 1))),
    ("avg_pool2d", (np.zeros((1, 3, 3, 1)), (2.5, 2), (1, 1), ((0, 0), (0, 0)), True)),
    ("avg_pool2d", (np.zeros((1, 3, 3, 1)), (2, 2), (1, 1), (0, 0), True)),
    ("global_avg_pool", (np.zeros((3, 3, 1)),)),
    ("softmax", (np.float64(1.0), 0)),
    ("softmax", (np.zeros((2, 3)), 2)),
    ("log_softmax", (np.zeros((2, 3)), -3)),
    ("log_softmax", ([1.0, 2.0], 0)),
]


@pytest.mark.parametrize(("op", "args"), BAD_CALLS, ids=[f"{op}-{i}" for i, (op, _) in enumerate(BAD_CALLS)])
def test_bad_arguments_like_c(be: Any, op: str, args: tuple[Any, ...]) -> None:
    c = native_backend("c")
    with pytest.raises(Exception) as want:
        getattr(c, op)(*args)
    with pytest.raises(type(want.value)) as got:
        getattr(be, op)(*args)
    assert str(got.value) == str(want.value)


def test_bad_launcher_arguments(be: Any) -> None:
    """What the backend never passes, the launchers still refuse with a clear error (no kernel runs)."""
    rt = be.runtime
    x, y = rt.to_device(np.zeros((1, 2, 2, 1), np.float32)), rt.empty((1, 2, 2, 1), np.float32)
    with pytest.raises(ValueError, match="log must be 0 or 1"):
        call(rt, "softmax", np.float32, x, y, 1, 4, 1, 2)
    with pytest.raises(ValueError, match="count_include_pad must be 0 or 1"):
        call(rt, "avg_pool2d", np.float32, x, y, 1, 2, 2, 1, 1, 1, 1, 1, 0, 0, 0, 0, 2)
    with pytest.raises(ValueError, match=">= 1"):
        call(rt, "max_pool2d", np.float32, x, y, 1, 2, 2, 1, 0, 1, 1, 1, 0, 0, 0, 0, 1, 1)
    with pytest.raises(ValueError, match="32-bit index range"):
        call(rt, "max_pool2d", np.float32, x, y, 1, 2, 2, 1, 1, 1, 1, 1, 2**31, 0, 0, 0, 1, 1)
    with pytest.raises(ValueError, match=">= 0"):
        call(rt, "global_avg_pool", np.float32, x, y, 1, -4, 1)
    with pytest.raises(ValueError, match="has 4 elements; the sizes need 6"):
        call(rt, "layernorm", np.float32, x, None, None, y, 2, 3, 1e-5)
    with pytest.raises(TypeError, match="holds float32; this launch computes in float64"):
        call(rt, "softmax", np.float64, x, y, 1, 4, 1, 0)
    with pytest.raises(ValueError, match="mean is required"):
        call(rt, "batchnorm", np.float32, x, None, x, None, None, y, 4, 1, 1e-5)
    with pytest.raises(ValueError, match="sizes must be >= 0"):
        call(rt, "rmsnorm", np.float32, x, None, y, -1, 4, 1e-5)
    with pytest.raises(ValueError, match="y has 4 elements; the sizes need 16"):
        call(rt, "avg_pool2d", np.float32, x, y, 1, 2, 2, 1, 1, 1, 1, 1, 1, 1, 1, 1, 0)
