"""Fuzz every native matmul (C via Cython, C via ctypes, Rust, Zig) against a NumPy reference.

The reference is computed in ``np.longdouble`` with NumPy's non-BLAS matmul loop (a plain
sum of products: 0 * Inf gives NaN, as the ABI requires). Finite results must lie within the
worst-case rounding bound of a length-k dot product in any summation order, with or without
FMA: ``|out - ref| <= (k + 1) * (u + u_ref) * (|a| @ |b|) + (k + 1) * tiny`` where ``u`` is the
unit roundoff of the output dtype (2**-24 for float32) and ``u_ref`` that of the reference;
non-finite results must match exactly (NaN where the reference is NaN, same-signed Inf).

A backend that is not built is skipped, unless ``AXIOM_REQUIRE_NATIVE=1`` (set by ``make
test`` and ``.ci/run``), which turns that into a failure.
"""

from __future__ import annotations

import ctypes
import ctypes.util
import os
import re
import warnings

import ml_dtypes
import numpy as np
import pytest
from hypothesis import given
from hypothesis import strategies as st
from hypothesis.extra import numpy as hnp
from native_libs import LIBRARIES, backend, library, run_in_threads

from axiom.backends import OPS, FallbackWarning, KernelBackend, ReferenceBackend, abi
from axiom.backends.native import CBackend, NativeBackend, RustBackend, ZigBackend, matmul_shapes

BACKENDS = ("c", "c-ctypes", "rust", "zig")
REF = np.longdouble


# -- reference and comparison ---------------------------------------------------------------


def reference(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    """``a @ b`` in long double with a plain sum of products (no BLAS: 0 * Inf is NaN)."""
    with np.errstate(invalid="ignore"):
        return np.matmul(a.astype(REF), b.astype(REF))


def assert_matmul_close(out: np.ndarray, a: np.ndarray, b: np.ndarray) -> None:
    """``out`` equals ``a @ b`` up to the worst-case rounding bound (see module docstring)."""
    dtype = np.result_type(a.dtype, b.dtype)
    expected_shape = np.matmul(np.zeros(a.shape, np.float32), np.zeros(b.shape, np.float32)).shape
    assert out.shape == expected_shape, (out.shape, expected_shape)
    assert out.dtype == dtype, (out.dtype, dtype)
    ref = reference(a, b)
    k = a.shape[-1]
    # NaN exactly where the reference is NaN; infinities equal (sign included)
    np.testing.assert_array_equal(np.isnan(out), np.isnan(ref), err_msg="NaN positions differ")
    inf = np.isinf(ref)
    np.testing.assert_array_equal(out[inf], ref[inf].astype(dtype), err_msg="Inf values differ")
    finite = np.isfinite(ref)
    assert np.isfinite(out[finite]).all(), "overflow where the reference is finite"
    with np.errstate(invalid="ignore"):
        scale = np.matmul(np.abs(a.astype(REF)), np.abs(b.astype(REF)))
    fin = np.finfo(dtype)
    u, u_ref = float(fin.eps) / 2, float(np.finfo(REF).eps) / 2
    bound = (k + 1) * (u + u_ref) * scale[finite] + (k + 1) * float(fin.tiny)
    err = np.abs(out[finite].astype(REF) - ref[finite])
    bad = err > bound
    assert not bad.any(), f"{bad.sum()} elements off: max err {err.max()}, bound there {bound[bad][0]} (k={k})"


def test_reference_propagates_like_a_dot_product() -> None:
    # the oracle itself must give 0 * Inf = NaN and Inf + (-Inf) = NaN (BLAS may not)
    a = np.array([[0.0, 1.0], [1.0, 1.0]], np.float32)
    b = np.array([[np.inf], [2.0]], np.float32)
    assert np.isnan(reference(a, b)[0, 0]) and reference(a, b)[1, 0] == np.inf
    assert np.isnan(reference(np.array([[1.0, 1.0]]), np.array([[np.inf], [-np.inf]]))[0, 0])


def test_comparison_detects_a_wrong_result() -> None:
    a = np.ones((3, 50), np.float32)
    b = np.ones((50, 2), np.float32)
    out = a @ b
    assert_matmul_close(out, a, b)
    out[1, 1] += 1e-3  # the bound at k = 50 is 51 * 2**-24 * 50 = 1.5e-4
    with pytest.raises(AssertionError, match="off"):
        assert_matmul_close(out, a, b)
    nan_out = a @ b
    nan_out[0, 0] = np.nan
    with pytest.raises(AssertionError, match="NaN"):
        assert_matmul_close(nan_out, a, b)


# -- strategies -------------------------------------------------------------------------------

SPECIALS = (np.nan, np.inf, -np.inf, 0.0, -0.0)


@st.composite
def matrices(draw: st.DrawFn, shape: tuple[int, ...], dtype: np.dtype, specials: bool = False) -> np.ndarray:
    """An array of ``shape``; sometimes a non-contiguous view (transposed, strided, F-order)."""
    width = 32 if dtype == np.float32 else 64
    elements = st.floats(-1e3, 1e3, width=width, allow_subnormal=True)
    layout = draw(st.sampled_from(["c", "transposed", "strided", "fortran"]))
    if layout == "transposed" and len(shape) >= 2:
        base = draw(hnp.arrays(dtype, (*shape[:-2], shape[-1], shape[-2]), elements=elements))
        arr = np.swapaxes(base, -1, -2)
    elif layout == "strided":
        step = draw(st.integers(2, 3))
        base = draw(hnp.arrays(dtype, tuple(s * step for s in shape), elements=elements))
        arr = base[tuple(slice(None, None, step) for _ in shape)]
    else:
        arr = draw(hnp.arrays(dtype, shape, elements=elements))
        if layout == "fortran":
            arr = np.asfortranarray(arr)
    if specials and arr.size:
        flat = arr.flatten()
        n = draw(st.integers(1, min(arr.size, 4)))
        idx = draw(st.lists(st.integers(0, arr.size - 1), min_size=n, max_size=n))
        flat[idx] = draw(st.lists(st.sampled_from(SPECIALS), min_size=n, max_size=n))
        arr = flat.reshape(arr.shape)
        if draw(st.booleans()):
            arr = np.asfortranarray(arr)
    return arr


dtypes = st.sampled_from([np.dtype(np.float32), np.dtype(np.float64)])
dims = st.integers(0, 70)


# -- fuzzing --------------------------------------------------------------------------------


@pytest.mark.parametrize("kind", BACKENDS)
@given(data=st.data(), m=dims, k=dims, n=dims, dtype=dtypes)
def test_matmul_2d_matches_reference(kind: str, data: st.DataObject, m: int, k: int, n: int, dtype: np.dtype) -> None:
    be = backend(kind)
    a = data.draw(matrices((m, k), dtype), label="a")
    b = data.draw(matrices((k, n), dtype), label="b")
    assert_matmul_close(be.matmul(a, b), a, b)


@pytest.mark.parametrize("kind", BACKENDS)
@given(data=st.data(), m=st.integers(1, 20), k=st.integers(1, 20), n=st.integers(1, 20), dtype=dtypes)
def test_matmul_propagates_nan_and_inf(kind: str, data: st.DataObject, m: int, k: int, n: int, dtype: np.dtype) -> None:
    be = backend(kind)
    a = data.draw(matrices((m, k), dtype, specials=True), label="a")
    b = data.draw(matrices((k, n), dtype, specials=True), label="b")
    assert_matmul_close(be.matmul(a, b), a, b)


@pytest.mark.parametrize("kind", BACKENDS)
@pytest.mark.parametrize("dtype", [np.float32, np.float64])
def test_zero_times_inf_is_nan(kind: str, dtype: type) -> None:
    be = backend(kind)
    # every row/column length crosses the vector tiles (16 / 8 columns) and the 4-row blocks
    for m, k, n in [(1, 1, 1), (5, 3, 17), (9, 300, 40)]:
        a = np.zeros((m, k), dtype)
        b = np.ones((k, n), dtype)
        b[-1, :] = np.inf
        out = be.matmul(a, b)
        assert np.isnan(out).all(), out
        a[:, -1] = 1.0  # now every row meets +Inf with a non-zero factor
        b[-1, ::2] = -np.inf
        out = be.matmul(a, b)
        assert (out[:, 1::2] == np.inf).all() and (out[:, ::2] == -np.inf).all(), out


@pytest.mark.parametrize("kind", BACKENDS)
@given(data=st.data(), dtype=dtypes)
def test_batched_broadcasting_and_1d(kind: str, data: st.DataObject, dtype: np.dtype) -> None:
    be = backend(kind)
    shapes = data.draw(
        hnp.mutually_broadcastable_shapes(signature=np.matmul.signature, max_dims=2, min_side=0, max_side=7),
        label="shapes",
    )
    a_shape, b_shape = shapes.input_shapes
    a = data.draw(matrices(a_shape, dtype), label="a")
    b = data.draw(matrices(b_shape, dtype), label="b")
    assert_matmul_close(be.matmul(a, b), a, b)


@pytest.mark.parametrize("kind", BACKENDS)
@given(data=st.data(), m=dims, k=dims, n=dims)
def test_mixed_float32_float64_promotes(kind: str, data: st.DataObject, m: int, k: int, n: int) -> None:
    be = backend(kind)
    a = data.draw(matrices((m, k), np.dtype(np.float32)), label="a")
    b = data.draw(matrices((k, n), np.dtype(np.float64)), label="b")
    out = be.matmul(a, b)
    assert out.dtype == np.float64
    assert_matmul_close(out, a, b)
    assert be.matmul(b.T, a.T).dtype == np.float64


LARGE = [(1031, 67, 129), (3, 1100, 5), (130, 1000, 33), (1000, 1, 1000)]


@pytest.mark.parametrize("kind", BACKENDS)
@pytest.mark.parametrize("shape", LARGE, ids=lambda s: "x".join(map(str, s)))
def test_matmul_large(kind: str, shape: tuple[int, int, int]) -> None:
    # large enough for the threaded paths (OpenMP / std::thread) and every blocking edge
    be = backend(kind)
    rng = np.random.default_rng(sum(shape))
    m, k, n = shape
    for dtype in (np.float32, np.float64):
        a = rng.standard_normal((m, k)).astype(dtype)
        b = rng.standard_normal((n, k)).astype(dtype).T  # non-contiguous
        assert_matmul_close(be.matmul(a, b), a, b)


@pytest.mark.parametrize("kind", BACKENDS)
def test_matmul_returns_a_new_array_and_keeps_inputs(kind: str) -> None:
    be = backend(kind)
    a = np.arange(12, dtype=np.float32).reshape(3, 4)
    b = np.ones((4, 2), np.float32)
    a0, b0 = a.copy(), b.copy()
    out = be.matmul(a, b)
    assert not np.shares_memory(out, a) and not np.shares_memory(out, b)
    np.testing.assert_array_equal(a, a0)
    np.testing.assert_array_equal(b, b0)
    np.testing.assert_array_equal(out, [[6, 6], [22, 22], [38, 38]])


@pytest.mark.parametrize("kind", BACKENDS)
def test_concurrent_calls_from_threads(kind: str) -> None:
    # the GIL is released during kernels: calls from several threads must not interfere
    be = backend(kind)
    rng = np.random.default_rng(0)
    pairs = [(rng.standard_normal((90, 70)), rng.standard_normal((70, 50 + i))) for i in range(6)]
    results: list[np.ndarray | None] = [None] * len(pairs)

    def work(i: int) -> None:
        for _ in range(5):
            results[i] = be.matmul(*pairs[i])

    run_in_threads(len(pairs), work)
    for (a, b), out in zip(pairs, results):
        assert out is not None
        assert_matmul_close(out, a, b)


# -- fallbacks ------------------------------------------------------------------------------

LOW_PRECISION = [np.dtype(np.float16), np.dtype(ml_dtypes.bfloat16), np.dtype(np.int32)]


@pytest.mark.parametrize("kind", BACKENDS)
@pytest.mark.parametrize("dtype", LOW_PRECISION[:2], ids=str)
def test_half_precision_matmul_computes_in_float32_natively(kind: str, dtype: np.dtype) -> None:
    """float16/bfloat16 on a native backend: float32 GEMM, cast back, like the reference; no fallback."""
    backend(kind)  # skip/fail if not built
    be = _fresh(kind)
    rng = np.random.default_rng(0)
    a, b = rng.standard_normal((5, 37, 19)).astype(dtype), rng.standard_normal((19, 23)).astype(dtype)
    with warnings.catch_warnings():
        warnings.simplefilter("error", FallbackWarning)
        out = be.matmul(a, b)
        ga, gb = be.matmul_backward(a, b, np.ones(out.shape, dtype))
    assert out.dtype == ga.dtype == gb.dtype == dtype and not be.fallbacks
    ref = ReferenceBackend()
    tol = 1e-2 if dtype == np.float16 else 5e-2
    np.testing.assert_allclose(out.astype(np.float64), ref.matmul(a, b).astype(np.float64), rtol=tol, atol=tol)
    rga, rgb = ref.matmul_backward(a, b, np.ones(out.shape, dtype))
    np.testing.assert_allclose(ga.astype(np.float64), rga.astype(np.float64), rtol=tol, atol=tol)
    np.testing.assert_allclose(gb.astype(np.float64), rgb.astype(np.float64), rtol=tol, atol=tol * 10)


@pytest.mark.parametrize("kind", BACKENDS)
@pytest.mark.parametrize("dtype", LOW_PRECISION, ids=str)
def test_other_dtypes_fall_back_recorded_and_warned_once(kind: str, dtype: np.dtype) -> None:
    backend(kind)  # skip/fail if not built
    if dtype != np.int32:
        pytest.skip("the native backends compute float16/bfloat16 natively in float32 (previous test)")
    be = _fresh(kind)
    a = np.arange(6).reshape(2, 3).astype(dtype)
    b = np.ones((3, 2), dtype)
    with pytest.warns(FallbackWarning, match=f"dtype {dtype.name} has no native kernel"):
        out = be.matmul(a, b)
    assert list(be.fallbacks) == ["matmul"] and f"dtype {dtype.name} has no native kernel" in be.fallbacks["matmul"]
    expected = ReferenceBackend().matmul(a, b)
    assert out.dtype == expected.dtype == dtype
    np.testing.assert_array_equal(out.astype(np.float64), expected.astype(np.float64))
    np.testing.assert_array_equal(out.astype(np.float64), [[3, 3], [12, 12]])
    with warnings.catch_warnings():
        warnings.simplefilter("error")  # warned once per backend instance and op
        be.matmul(a, b)


@pytest.mark.parametrize("kind", BACKENDS)
def test_native_backend_implements_the_whole_contract(kind: str) -> None:
    backend(kind)
    be = _fresh(kind)
    assert be.implemented_ops() == OPS
    with warnings.catch_warnings():
        warnings.simplefilter("error")  # no fallback, so no FallbackWarning
        out = be.softmax(np.zeros((1, 4), np.float32), axis=-1)
    np.testing.assert_allclose(out, 0.25)
    assert be.fallbacks == {}


def _fresh(kind: str) -> NativeBackend:
    if kind == "c-ctypes":
        return CBackend(abi.built_library_path("c"))
    return {"c": CBackend, "rust": RustBackend, "zig": ZigBackend}[kind]()


# -- Python-level argument errors --------------------------------------------------------------


@pytest.mark.parametrize("kind", BACKENDS)
@pytest.mark.parametrize(
    ("a_shape", "b_shape", "expected"),
    [
        ((3, 4), (5, 2), "a has shape (3, 4) and b has shape (5, 2); expected a.shape[-1] == b.shape[-2]"),
        ((4,), (5,), "a has shape (4,) and b has shape (5,); expected a.shape[-1] == b.shape[0]"),
        ((2, 3), (2,), "expected a.shape[-1] == b.shape[0]"),
        ((), (3, 4), "expected at least 1 dimension each"),
        ((3,), (), "expected at least 1 dimension each"),
        ((2, 3, 4), (5, 4, 6), "expected batch dimensions (2,) and (5,) to broadcast"),
    ],
)
def test_shape_errors_name_both_shapes(
    kind: str, a_shape: tuple[int, ...], b_shape: tuple[int, ...], expected: str
) -> None:
    be = backend(kind)
    with pytest.raises(ValueError, match=r"^matmul: .*" + re.escape(expected)):
        be.matmul(np.ones(a_shape, np.float32), np.ones(b_shape, np.float32))
    with pytest.raises(ValueError):  # NumPy agrees that these shapes are invalid
        np.matmul(np.ones(a_shape), np.ones(b_shape))


@pytest.mark.parametrize("kind", BACKENDS)
def test_non_arrays_raise_type_error(kind: str) -> None:
    be = backend(kind)
    with pytest.raises(TypeError, match="expected two numpy.ndarray, got list and ndarray"):
        be.matmul([[1.0]], np.ones((1, 1)))
    with pytest.raises(TypeError, match="got ndarray and float"):
        be.matmul(np.ones((1, 1)), 2.0)


def test_matmul_shapes_matches_numpy() -> None:
    assert matmul_shapes((2, 1, 3, 4), (5, 4, 6)) == ((2, 5), 3, 4, 6)
    assert matmul_shapes((4,), (4,)) == ((), 1, 4, 1)
    assert matmul_shapes((7, 4), (4,)) == ((), 7, 4, 1)


# -- loading ----------------------------------------------------------------------------------


@pytest.mark.parametrize("kind", LIBRARIES)
def test_registry_names_the_backends(kind: str) -> None:
    backend(kind)
    from axiom.backends import get_backend

    be = get_backend(kind)
    assert isinstance(be, KernelBackend) and be.name == kind


def test_bad_library_paths_raise_clear_errors(tmp_path: os.PathLike[str]) -> None:
    missing = os.path.join(tmp_path, "nope.so")
    with pytest.raises(OSError, match="cannot load kernel library"):
        RustBackend(missing)
    with pytest.raises(OSError, match="does not export axiom_abi_version"):
        abi.load_kernel_library(ctypes.util.find_library("m") or "libm.so.6")
    with pytest.raises(ValueError, match="unknown kernel library"):
        abi.built_library_path("fortran")  # type: ignore[arg-type]


def test_abi_version_mismatch_is_refused(tmp_path: os.PathLike[str], monkeypatch: pytest.MonkeyPatch) -> None:
    library("zig")  # skip/fail if not built
    path = abi.built_library_path("zig")
    built = abi.ABI_VERSION
    monkeypatch.setattr(abi, "ABI_VERSION", built + 1)
    expected = f"implements kernel ABI version {built}, but this axiom expects version {built + 1}"
    with pytest.raises(abi.AbiMismatchError, match=expected):
        abi.load_kernel_library(path)


def test_missing_build_says_how_to_build(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setitem(abi.MODULES, "rust", "axiom._core._not_built")
    with pytest.raises(ImportError, match=r"pip install -e \.") as info:
        RustBackend()
    assert "cargo" in str(info.value) and "make build" in str(info.value)


def test_error_for_maps_codes() -> None:
    size = abi.error_for(abi.ERR_SIZE, "axiom_matmul_f32")
    assert isinstance(size, ValueError) and isinstance(size, abi.KernelError)
    assert "AXIOM_ERR_SIZE" in str(size)
    assert "AXIOM_ERR_NULL" in str(abi.error_for(abi.ERR_NULL, "axiom_matmul_f64"))
    unknown = abi.error_for(99, "axiom_matmul_f64")
    assert type(unknown) is abi.KernelError and "99" in str(unknown)


# -- the raw C ABI, through ctypes, for every library ------------------------------------------

SYMBOLS = {"axiom_matmul_f32": np.float32, "axiom_matmul_f64": np.float64}
BIG = 2**62


def _ptr(arr: np.ndarray | None, symbol: str) -> object:
    if arr is None:
        return None
    return arr.ctypes.data_as(abi.SIGNATURES[symbol][1][0])


@pytest.mark.parametrize("kind", LIBRARIES)
@pytest.mark.parametrize("symbol", SYMBOLS)
def test_abi_null_pointers_return_err_null(kind: str, symbol: str) -> None:
    fn = getattr(library(kind), symbol)
    x = np.ones(6, SYMBOLS[symbol])
    c = np.full(6, 7, SYMBOLS[symbol])
    p = _ptr(x, symbol)
    for a, b, cc in [(None, p, _ptr(c, symbol)), (p, None, _ptr(c, symbol)), (p, p, None), (None, None, None)]:
        assert fn(a, b, cc, 2, 3, 2) == abi.ERR_NULL
    np.testing.assert_array_equal(c, 7)  # nothing written on error


@pytest.mark.parametrize("kind", LIBRARIES)
@pytest.mark.parametrize("symbol", SYMBOLS)
@pytest.mark.parametrize(
    "sizes",
    [(-1, 2, 2), (2, -1, 2), (2, 2, -1), (-(2**63), 0, 0), (BIG, BIG, 1), (1, BIG, BIG), (BIG, 1, BIG), (2**61, 2, 0)],
)
def test_abi_bad_sizes_return_err_size(kind: str, symbol: str, sizes: tuple[int, int, int]) -> None:
    fn = getattr(library(kind), symbol)
    x = np.ones(4, SYMBOLS[symbol])
    p = _ptr(x, symbol)
    assert fn(p, p, p, *sizes) == abi.ERR_SIZE
    assert fn(None, None, None, *sizes) == abi.ERR_SIZE  # sizes are checked before pointers
    np.testing.assert_array_equal(x, 1)


@pytest.mark.parametrize("kind", LIBRARIES)
@pytest.mark.parametrize("symbol", SYMBOLS)
def test_abi_empty_arrays_allow_null(kind: str, symbol: str) -> None:
    fn = getattr(library(kind), symbol)
    dtype = SYMBOLS[symbol]
    assert fn(None, None, None, 0, 0, 0) == abi.OK
    assert fn(None, _ptr(np.ones(3, dtype), symbol), None, 0, 1, 3) == abi.OK  # c is 0 x 3
    assert fn(None, None, None, 2**40, 0, 0) == abi.OK  # a is 2**40 x 0: no elements anywhere
    c = np.full((2, 3), 7, dtype)
    assert fn(None, None, _ptr(c, symbol), 2, 0, 3) == abi.OK  # k == 0 writes zeros
    np.testing.assert_array_equal(c, 0)
    assert fn(None, None, None, 2, 0, 3) == abi.ERR_NULL  # ... so c must exist


@pytest.mark.parametrize("kind", LIBRARIES)
@pytest.mark.parametrize("symbol", SYMBOLS)
def test_abi_writes_not_accumulates(kind: str, symbol: str) -> None:
    fn = getattr(library(kind), symbol)
    dtype = SYMBOLS[symbol]
    a = np.arange(6, dtype=dtype).reshape(2, 3)
    b = np.arange(12, dtype=dtype).reshape(3, 4)
    c = np.full((2, 4), np.nan, dtype)
    assert fn(_ptr(a, symbol), _ptr(b, symbol), _ptr(c, symbol), 2, 3, 4) == abi.OK
    np.testing.assert_array_equal(c, a @ b)
    assert library(kind).axiom_abi_version() == abi.ABI_VERSION


def test_cython_wrappers_check_their_arguments() -> None:
    backend("c")  # skip/fail if not built
    from axiom._core import _kernels

    a = np.ones((2, 3), np.float32)
    b = np.ones((3, 4), np.float32)
    with pytest.raises(ValueError, match=r"a is \(2, 3\), b is \(3, 4\), c is \(2, 5\)"):
        _kernels.matmul_f32(a, b, np.empty((2, 5), np.float32))
    with pytest.raises(ValueError, match="contiguous"):
        _kernels.matmul_f32(a, np.ones((4, 3), np.float32).T, np.empty((2, 4), np.float32))
    with pytest.raises(ValueError, match="dtype mismatch"):
        _kernels.matmul_f64(a, b, np.empty((2, 4), np.float64))
    c = np.empty((2, 4), np.float64)
    assert _kernels.matmul_f64(a.astype(np.float64), b.astype(np.float64), c) == abi.OK
    assert (c == 3).all() and _kernels.abi_version() == _kernels.ABI_VERSION == abi.ABI_VERSION
