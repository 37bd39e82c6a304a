"""The GEMM and NHWC conv2d kernels of every library (C, Rust, Zig) and their backward passes.

The C kernels are ``csrc/gemm.c`` and ``csrc/conv.c``; the Rust and Zig libraries implement
the same ABI (``csrc/axiom_kernels.h``), so every test runs once per library (the
``library_kind`` fixture of ``conftest.py``: the ``be`` backend and the ``lib`` ctypes library).

Oracles: float64 / long-double NumPy (a plain sum of products where NaN/Inf matter), the
NumPy reference backend, :mod:`axiom.backends.reference_grad` and PyTorch (autograd). Finite
results must lie within the worst-case rounding bound of a length-k dot product in any
summation order, with or without FMA: ``|out - ref| <= (k + 2) * u * (|a| @ |b|)`` (``u`` the
unit roundoff of the output dtype), where ``|a| @ |b|`` becomes the same operation on absolute
values for convolutions and gradients. Every micro-kernel level this CPU has (portable C,
AVX2, AVX-512) of every library is exercised: tests parametrized by ``isa`` cap the level with
the backend's ``set_cpu_features`` (skipped where the CPU or the library lacks the level).

A kernel library that is not built is skipped, unless ``AXIOM_REQUIRE_NATIVE=1``.
"""

from __future__ import annotations

import ctypes
import os
import subprocess
import sys
import warnings
from collections.abc import Iterator

import numpy as np
import pytest
from hypothesis import given
from hypothesis import strategies as st
from hypothesis.extra import numpy as hnp
from native_libs import run_in_threads

from axiom.backends import FallbackWarning, ReferenceBackend, abi, reference_grad
from axiom.backends.abi import Conv2dShape
from axiom.backends.native import CPU_FEATURE_LEVELS, CBackend, NativeBackend, conv2d_output_shape

REQUIRE_NATIVE = os.environ.get("AXIOM_REQUIRE_NATIVE", "") == "1"
REF = np.longdouble
NO_PAD = ((0, 0), (0, 0))
LEVELS = CPU_FEATURE_LEVELS


@pytest.fixture(scope="session")
def be(native: NativeBackend) -> NativeBackend:
    """The backend of the library under test (``conftest.py``: once per C, Rust, Zig)."""
    return native


@pytest.fixture(scope="session")
def lib(kernel_lib: ctypes.CDLL) -> ctypes.CDLL:
    """The library under test through ctypes (``abi.SIGNATURES`` applied: arrays as addresses)."""
    return kernel_lib


def supported_levels(be: NativeBackend) -> list[str]:
    """The micro-kernel levels this CPU and this library support."""
    return list(CPU_FEATURE_LEVELS[: be._ext.cpu_isa_supported() + 1])


_CAPPED: set[NativeBackend] = set()


def use_level(be: NativeBackend, level: str) -> None:
    """Cap ``be``'s micro-kernels at ``level`` for this test (reset after it); skip if unsupported."""
    if level not in supported_levels(be):
        pytest.skip(f"{be.name}: level {level!r} is not supported here (best: {supported_levels(be)[-1]})")
    _CAPPED.add(be)
    assert be.set_cpu_features(level) == level


@pytest.fixture(autouse=True)
def _reset_level() -> Iterator[None]:
    yield
    while _CAPPED:
        _CAPPED.pop().set_cpu_features(None)


# -- bounds ---------------------------------------------------------------------------------------


def assert_close(out: np.ndarray, ref: np.ndarray, scale: np.ndarray, k: int, what: str) -> None:
    """``out`` within ``(k + 2) * u * scale`` of ``ref`` where finite; NaN / Inf exactly where ``ref`` has them."""
    assert out.shape == ref.shape, (what, out.shape, ref.shape)
    ref = np.asarray(ref, REF)
    np.testing.assert_array_equal(np.isnan(out), np.isnan(ref), err_msg=f"{what}: NaN positions differ")
    inf = np.isinf(ref)
    np.testing.assert_array_equal(out[inf], ref[inf].astype(out.dtype), err_msg=f"{what}: Inf values differ")
    fin = np.isfinite(ref)
    finfo = np.finfo(out.dtype)
    bound = (k + 2) * float(finfo.eps) * np.asarray(scale, REF)[fin] + (k + 2) * float(finfo.tiny)
    err = np.abs(out[fin].astype(REF) - ref[fin])
    bad = err > bound
    assert not bad.any(), f"{what}: {bad.sum()} elements off, max err {err.max()}, bound there {bound[bad][0]} (k={k})"


def plain_matmul(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    """``a @ b`` in long double, a plain sum of products (0 * Inf = NaN)."""
    with np.errstate(invalid="ignore", over="ignore"):
        return np.matmul(a.astype(REF), b.astype(REF))


# -- strategies -----------------------------------------------------------------------------------


@st.composite
def arrays(draw: st.DrawFn, shape: tuple[int, ...], dtype: np.dtype, specials: bool = False) -> np.ndarray:
    """An array of ``shape``, sometimes a transposed, strided, reversed or Fortran-order view."""
    elements = st.floats(-8, 8, width=32 if dtype == np.float32 else 64)
    if shape == ():
        return np.array(draw(elements), dtype)
    layout = draw(st.sampled_from(["c", "transposed", "strided", "fortran", "reversed"]))
    if layout == "transposed" and len(shape) >= 2:
        arr = np.swapaxes(draw(hnp.arrays(dtype, (*shape[:-2], shape[-1], shape[-2]), elements=elements)), -1, -2)
    elif layout == "strided":
        base = draw(hnp.arrays(dtype, tuple(2 * s for s in shape), elements=elements))
        arr = base[tuple(slice(None, None, 2) for _ in shape)]
    elif layout == "reversed":
        arr = draw(hnp.arrays(dtype, shape, elements=elements))[..., ::-1]
    else:
        arr = draw(hnp.arrays(dtype, shape, elements=elements))
        if layout == "fortran":
            arr = np.asfortranarray(arr)
    if specials and arr.size:
        flat = arr.flatten()
        idx = draw(st.lists(st.integers(0, arr.size - 1), min_size=1, max_size=4))
        flat[idx] = draw(
            st.lists(st.sampled_from([np.nan, np.inf, -np.inf, 0.0]), min_size=len(idx), max_size=len(idx))
        )
        arr = flat.reshape(arr.shape)
    return arr


DTYPES = st.sampled_from([np.dtype(np.float32), np.dtype(np.float64)])


# -- GEMM through the backends' matmul ----------------------------------------------------------------


@pytest.mark.parametrize("isa", LEVELS)
@given(data=st.data(), m=st.integers(0, 300), k=st.integers(0, 300), n=st.integers(0, 300), dtype=DTYPES)
def test_matmul_odd_sizes_and_layouts(isa: str, be: NativeBackend, data: st.DataObject, m: int, k: int, n: int, dtype):  # type: ignore[no-untyped-def]
    use_level(be, isa)
    a = data.draw(arrays((m, k), dtype), label="a")
    b = data.draw(arrays((k, n), dtype), label="b")
    out = be.matmul(a, b)
    assert out.dtype == dtype
    ref = a.astype(np.float64) @ b.astype(np.float64)
    assert_close(out, ref, np.abs(a).astype(np.float64) @ np.abs(b).astype(np.float64), k + 1, "a @ b")


@pytest.mark.parametrize("isa", LEVELS)
@pytest.mark.parametrize(("m", "k", "n"), [(1000, 1001, 999), (1031, 64, 1), (1, 2000, 1000), (3, 1500, 517)])
def test_matmul_large(isa: str, be: NativeBackend, m: int, k: int, n: int) -> None:
    use_level(be, isa)
    rng = np.random.default_rng(m + k + n)
    a = rng.standard_normal((m, k), dtype=np.float32)
    b = rng.standard_normal((n, k), dtype=np.float32).T  # transposed view: read with a transpose flag
    ref = a.astype(np.float64) @ b.astype(np.float64)
    assert_close(be.matmul(a, b), ref, np.abs(a).astype(np.float64) @ np.abs(b).astype(np.float64), k, "large")


@pytest.mark.parametrize("isa", LEVELS)
@given(data=st.data(), m=st.integers(1, 24), k=st.integers(1, 40), n=st.integers(1, 40), dtype=DTYPES)
def test_matmul_propagates_nan_and_inf(isa: str, be: NativeBackend, data: st.DataObject, m: int, k: int, n: int, dtype):  # type: ignore[no-untyped-def]
    use_level(be, isa)
    a = data.draw(arrays((m, k), dtype, specials=True), label="a")
    b = data.draw(arrays((k, n), dtype, specials=True), label="b")
    with np.errstate(invalid="ignore"):
        scale = plain_matmul(np.abs(a), np.abs(b))
    assert_close(be.matmul(a, b), plain_matmul(a, b), scale, k, "specials")


@pytest.mark.parametrize("isa", LEVELS)
@pytest.mark.parametrize("dtype", [np.float32, np.float64])
def test_zero_times_inf_is_nan_in_every_tile_position(isa: str, be: NativeBackend, dtype: type) -> None:
    use_level(be, isa)
    for m, k, n in [(1, 1, 1), (13, 3, 33), (29, 300, 70), (7, 600, 5)]:
        a = np.zeros((m, k), dtype)
        b = np.ones((k, n), dtype)
        b[k // 2, n - 1] = np.inf
        out = be.matmul(a, b)
        assert np.isnan(out[:, n - 1]).all() and (out[:, : n - 1] == 0).all(), (m, k, n)


@given(
    data=st.data(),
    batch_a=st.sampled_from([(), (1,), (3,), (2, 1), (2, 3)]),
    batch_b=st.sampled_from([(), (1,), (3,), (1, 3), (2, 3)]),
    m=st.integers(0, 20),
    k=st.integers(0, 20),
    n=st.integers(0, 20),
    dtype=DTYPES,
)
def test_batched_broadcast_matches_numpy(be: NativeBackend, data: st.DataObject, batch_a, batch_b, m, k, n, dtype):  # type: ignore[no-untyped-def]
    a = data.draw(arrays((*batch_a, m, k), dtype), label="a")
    b = data.draw(arrays((*batch_b, k, n), dtype), label="b")
    out = be.matmul(a, b)
    ref = np.matmul(a.astype(np.float64), b.astype(np.float64))
    assert_close(out, ref, np.matmul(np.abs(a).astype(np.float64), np.abs(b).astype(np.float64)), k, "batched")


def test_batch_zero_one_dimensional_and_mixed_dtypes(be: NativeBackend) -> None:
    assert be.matmul(np.ones((0, 3, 4), np.float32), np.ones((4, 5), np.float32)).shape == (0, 3, 5)
    assert be.matmul(np.ones((2, 0, 4), np.float32), np.ones((2, 4, 5), np.float32)).shape == (2, 0, 5)
    assert (be.matmul(np.ones((2, 3, 0), np.float32), np.ones((0, 5), np.float32)) == 0).all()
    v = np.arange(4, dtype=np.float32)
    assert be.matmul(v, v) == 14 and be.matmul(np.ones((2, 3, 4), np.float32), v).shape == (2, 3)
    assert be.matmul(v[::-1], np.ones((4, 2), np.float32)).tolist() == [6.0, 6.0]
    out = be.matmul(np.ones((2, 3), np.float32), np.ones((3, 2), np.float64))
    assert out.dtype == np.float64 and (out == 3).all()
    # broadcast operands whose rows overlap (stride 0) are copied once, not misread
    row = np.broadcast_to(np.arange(3, dtype=np.float32), (4, 3))
    np.testing.assert_array_equal(be.matmul(row, np.eye(3, dtype=np.float32)), row)


def test_gemm_alpha_beta_and_batch_strides(be: NativeBackend) -> None:
    _kernels = be._ext  # the Cython module for C, LibraryKernels (ctypes) for Rust and Zig
    rng = np.random.default_rng(0)
    a = rng.standard_normal((3, 7, 5))
    b = rng.standard_normal((1, 5, 9))
    c = rng.standard_normal((3, 7, 9))
    c0 = c.copy()
    assert _kernels.gemm_batched(a, np.broadcast_to(b, (3, 5, 9)), c, 0.5, -2.0) == abi.OK
    np.testing.assert_allclose(c, 0.5 * (a @ b) - 2.0 * c0, rtol=1e-12, atol=1e-12)
    c[...] = np.nan  # beta == 0: the old content (even NaN) is ignored
    assert _kernels.gemm_batched(a, np.broadcast_to(b, (3, 5, 9)), c) == abi.OK
    np.testing.assert_allclose(c, a @ b, rtol=1e-12, atol=1e-12)
    with pytest.raises(ValueError, match="unit stride on the last axis"):
        _kernels.gemm_batched(a, np.broadcast_to(b, (3, 5, 9)), np.empty((3, 9, 7)).transpose(0, 2, 1))
    with pytest.raises(ValueError, match="expected a \\(batch, m, k\\)"):
        _kernels.gemm_batched(a, b, c)


def test_threads_are_safe(be: NativeBackend) -> None:
    rng = np.random.default_rng(1)
    pairs = [(rng.standard_normal((97, 120)), rng.standard_normal((120, 33))) for _ in range(8)]
    results: list[np.ndarray | None] = [None] * len(pairs)

    def work(i: int) -> None:
        for _ in range(5):
            results[i] = be.matmul(*pairs[i])

    run_in_threads(len(pairs), work)
    for (a, b), out in zip(pairs, results):
        np.testing.assert_allclose(out, a @ b, rtol=1e-12, atol=1e-10)


def test_concurrent_conv_calls_from_threads(be: NativeBackend) -> None:
    """Calls from several Python threads at once (the GIL is released) share no scratch memory: each
    gives what the same call gives alone, bit for bit (forward, both gradients, float32 and float64)."""
    rng = np.random.default_rng(4)
    cases = []
    for i in range(6):
        dt = np.float32 if i % 2 else np.float64
        groups = (1, 2, 8)[i % 3]
        x = rng.standard_normal((2, 11 + i, 9, 8)).astype(dt)
        w = rng.standard_normal((3, 3, 8 // groups, 8)).astype(dt)
        args = ((1 + i % 2, 1), ((1, 1), (0, 1)), (1, 1), groups)
        g = rng.standard_normal(conv2d_output_shape(x.shape, w.shape, *args)).astype(dt)
        cases.append((x, w, g, args))

    def run(case: tuple) -> list[np.ndarray]:  # type: ignore[type-arg]
        x, w, g, args = case
        return [be.conv2d(x, w, None, *args), *be.conv2d_backward(x, w, g, *args)]

    alone = [run(c) for c in cases]
    results: list[list[np.ndarray] | None] = [None] * len(cases)

    def work(i: int) -> None:
        for _ in range(4):
            results[i] = run(cases[i])

    run_in_threads(len(cases), work)
    for want, got in zip(alone, results):
        assert got is not None
        for w_, g_ in zip(want, got):
            np.testing.assert_array_equal(g_, w_)


# -- CPU feature dispatch -------------------------------------------------------------------------


def test_cpu_feature_levels(be: NativeBackend, lib: ctypes.CDLL) -> None:
    levels = supported_levels(be)
    assert lib.axiom_cpu_isa_supported() == len(levels) - 1
    assert be.cpu_features() == levels[-1] or os.environ.get("AXIOM_CPU_FEATURES")
    _CAPPED.add(be)
    for level in CPU_FEATURE_LEVELS:
        expected = level if level in levels else levels[-1]
        assert be.set_cpu_features(level) == expected
        assert lib.axiom_cpu_isa() == CPU_FEATURE_LEVELS.index(expected)
    assert be.set_cpu_features(None) in levels
    with pytest.raises(ValueError, match="unknown CPU feature level 'sse9'"):
        be.set_cpu_features("sse9")


def test_module_level_cpu_features_are_the_c_librarys() -> None:
    from axiom.backends.native import cpu_features, set_cpu_features

    try:
        old = cpu_features()
    except ImportError as e:
        if REQUIRE_NATIVE:
            pytest.fail(f"the C kernels are not built: {e}")
        pytest.skip(f"the C kernels are not built: {e}")
    try:
        assert set_cpu_features("generic") == "generic" == CBackend().cpu_features()
    finally:
        assert set_cpu_features(None) == old


@pytest.mark.parametrize("level", ["generic", "avx2"])
def test_env_var_caps_the_level(level: str, be: NativeBackend) -> None:
    """``AXIOM_CPU_FEATURES`` caps the default level of every library (read once, at load time)."""
    code = f"from axiom.backends.native import {type(be).__name__} as B; print(B().cpu_features())"
    env = {**os.environ, "AXIOM_CPU_FEATURES": level}
    out = subprocess.run([sys.executable, "-c", code], env=env, capture_output=True, text=True, check=True)
    expected = level if level in supported_levels(be) else supported_levels(be)[-1]
    assert out.stdout.strip() == expected


def test_two_threads_give_the_same_results(be: NativeBackend) -> None:
    """Above the work threshold the kernels split work across threads (OpenMP in C, std threads in
    Rust and Zig, all reading ``OMP_NUM_THREADS`` when ``AXIOM_NUM_THREADS`` is unset)."""
    code = f"""
import numpy as np
from axiom.backends.native import {type(be).__name__} as Backend
from axiom.backends import reference_grad as rg
be, rng = Backend(), np.random.default_rng(0)
a, b = rng.standard_normal((300, 301)), rng.standard_normal((301, 299))
assert np.allclose(be.matmul(a, b), a @ b, rtol=1e-12, atol=1e-9)
assert np.allclose(be.matmul(a[:5], b), a[:5] @ b, rtol=1e-12, atol=1e-9)
for stride, pad, groups, cin, cout, hw in [(1, 1, 1, 16, 32, 24), (2, 0, 2, 32, 64, 48), (1, 1, 64, 64, 64, 64)]:
    x = rng.standard_normal((4, hw, hw, cin)); w = rng.standard_normal((3, 3, cin // groups, cout))
    args = ((stride, stride), ((pad, pad), (pad, pad)), (1, 1), groups)
    y = be.conv2d(x, w, None, *args)
    from axiom.backends import ReferenceBackend
    assert np.allclose(y, ReferenceBackend().conv2d(x, w, None, *args), rtol=1e-10, atol=1e-9)
    gy = rng.standard_normal(y.shape)
    dx, dw, db = be.conv2d_backward(x, w, gy, *args)
    assert np.allclose(dx, rg.conv2d_backward_input(gy, w, x.shape, *args), rtol=1e-10, atol=1e-9)
    assert np.allclose(dw, rg.conv2d_backward_weight(x, gy, w.shape, *args)[0], rtol=1e-10, atol=1e-8)
print("ok")
"""
    env = {**os.environ, "OMP_NUM_THREADS": "2"}
    env.pop("AXIOM_NUM_THREADS", None)
    out = subprocess.run([sys.executable, "-c", code], env=env, capture_output=True, text=True)
    assert out.returncode == 0 and out.stdout.strip() == "ok", out.stderr[-2000:]


# -- matmul backward ---------------------------------------------------------------------------------


@given(
    data=st.data(),
    case=st.sampled_from(
        [((5, 7), (7, 3)), ((4, 2, 6), (6, 5)), ((6,), (6, 4)), ((3, 6), (6,)), ((2, 1, 3, 4), (5, 4, 2)), ((6,), (6,))]
    ),
    dtype=DTYPES,
)
def test_matmul_backward_matches_reference(be: NativeBackend, data: st.DataObject, case, dtype) -> None:  # type: ignore[no-untyped-def]
    a_shape, b_shape = case
    a = data.draw(arrays(a_shape, dtype), label="a")
    b = data.draw(arrays(b_shape, dtype), label="b")
    g = data.draw(arrays(np.matmul(np.zeros(a_shape), np.zeros(b_shape)).shape, dtype), label="g")
    ga, gb = be.matmul_backward(a, b, g)
    ra, rb = reference_grad.matmul_backward(a.astype(np.float64), b.astype(np.float64), g.astype(np.float64))
    sa, sb = reference_grad.matmul_backward(np.abs(a).astype(float), np.abs(b).astype(float), np.abs(g).astype(float))
    reduce = max(1, g.size)  # loose k for the batch sums
    assert ga.dtype == a.dtype and gb.dtype == b.dtype
    assert_close(ga, ra, sa, reduce, "d a")
    assert_close(gb, rb, sb, reduce, "d b")


def test_matmul_backward_matches_torch_autograd(be: NativeBackend) -> None:
    torch = pytest.importorskip("torch")
    rng = np.random.default_rng(3)
    for a_shape, b_shape in [((8, 33, 17), (17, 9)), ((2, 1, 5, 6), (3, 6, 4)), ((7,), (7, 2))]:
        a, b = rng.standard_normal(a_shape), rng.standard_normal(b_shape)
        g = rng.standard_normal(np.matmul(a, b).shape)
        at, bt = torch.tensor(a, requires_grad=True), torch.tensor(b, requires_grad=True)
        torch.matmul(at, bt).backward(torch.tensor(g))
        ga, gb = be.matmul_backward(a, b, g)
        np.testing.assert_allclose(ga, at.grad.numpy(), rtol=1e-10, atol=1e-10)
        np.testing.assert_allclose(gb, bt.grad.numpy(), rtol=1e-10, atol=1e-10)
        # the reference agrees too
        ra, rb = reference_grad.matmul_backward(a, b, g)
        np.testing.assert_allclose(ra, at.grad.numpy(), rtol=1e-10, atol=1e-10)
        np.testing.assert_allclose(rb, bt.grad.numpy(), rtol=1e-10, atol=1e-10)
    with pytest.raises(ValueError, match="grad_out has shape \\(2, 2\\); expected \\(2, 3\\)"):
        be.matmul_backward(np.ones((2, 4)), np.ones((4, 3)), np.ones((2, 2)))


# -- conv2d -----------------------------------------------------------------------------------------


@st.composite
def conv_cases(draw: st.DrawFn, max_hw: int = 12):  # type: ignore[no-untyped-def]
    """(x, w, bias, stride, padding, dilation, groups) with odd sizes, groups and depthwise."""
    kind = draw(st.sampled_from(["dense", "grouped", "depthwise", "pointwise"]))
    groups = 1
    if kind == "grouped":
        groups = draw(st.integers(2, 3))
    cin_g, cout_g = draw(st.integers(1, 5)), draw(st.integers(1, 6))
    if kind == "depthwise":
        groups, cin_g, cout_g = draw(st.integers(1, 12)), 1, draw(st.sampled_from([1, 1, 2]))
    kh, kw = (1, 1) if kind == "pointwise" else (draw(st.integers(1, 4)), draw(st.integers(1, 4)))
    stride = (
        (draw(st.integers(1, 3)), draw(st.integers(1, 3))) if kind != "pointwise" or draw(st.booleans()) else (1, 1)
    )
    dilation = (draw(st.integers(1, 2)), draw(st.integers(1, 2)))
    pads = st.integers(0, 2) if kind != "pointwise" or draw(st.booleans()) else st.just(0)
    padding = ((draw(pads), draw(pads)), (draw(pads), draw(pads)))
    n, h, w = draw(st.integers(0, 3)), draw(st.integers(1, max_hw)), draw(st.integers(1, max_hw))
    dtype = draw(DTYPES)
    x = draw(arrays((n, h, w, cin_g * groups), dtype))
    wt = draw(arrays((kh, kw, cin_g, cout_g * groups), dtype))
    bias = draw(st.none() | arrays((cout_g * groups,), dtype))
    return x, wt, bias, stride, padding, dilation, groups


def conv_bound_scale(x, w, bias, *params) -> np.ndarray:  # type: ignore[no-untyped-def]
    ref = ReferenceBackend()
    scale = ref.conv2d(np.abs(x).astype(np.float64), np.abs(w).astype(np.float64), None, *params)
    return scale + (0 if bias is None else np.abs(bias).astype(np.float64))


@pytest.mark.parametrize("isa", LEVELS)
@given(case=conv_cases())
def test_conv2d_matches_reference(isa: str, be: NativeBackend, case) -> None:  # type: ignore[no-untyped-def]
    use_level(be, isa)
    x, w, bias, *params = case
    y = be.conv2d(x, w, bias, *params)
    assert y.dtype == x.dtype and y.shape == conv2d_output_shape(x.shape, w.shape, *params)
    ref = ReferenceBackend().conv2d(
        x.astype(np.float64), w.astype(np.float64), None if bias is None else bias.astype(np.float64), *params
    )
    k = w.shape[0] * w.shape[1] * w.shape[2]
    assert_close(y, ref, conv_bound_scale(x, w, bias, *params), k + 1, "conv2d")


@pytest.mark.parametrize("isa", LEVELS)
@given(case=conv_cases(max_hw=9))
def test_conv2d_backward_matches_reference(isa: str, be: NativeBackend, case) -> None:  # type: ignore[no-untyped-def]
    use_level(be, isa)
    x, w, _, *params = case
    out_shape = conv2d_output_shape(x.shape, w.shape, *params)
    g = np.random.default_rng(x.size + w.size).standard_normal(out_shape).astype(x.dtype)
    dx, dw, db = be.conv2d_backward(x, w, g, *params)
    x64, w64, g64 = x.astype(np.float64), w.astype(np.float64), g.astype(np.float64)
    ax, aw, ag = np.abs(x64), np.abs(w64), np.abs(g64)
    rdx = reference_grad.conv2d_backward_input(g64, w64, x.shape, *params)
    rdw, rdb = reference_grad.conv2d_backward_weight(x64, g64, w.shape, *params)
    kx = w.shape[0] * w.shape[1] * w.shape[3]
    kw_ = max(1, out_shape[0] * out_shape[1] * out_shape[2])
    assert dx.dtype == dw.dtype == db.dtype == x.dtype
    assert_close(dx, rdx, reference_grad.conv2d_backward_input(ag, aw, x.shape, *params), kx, "d x")
    assert_close(dw, rdw, reference_grad.conv2d_backward_weight(ax, ag, w.shape, *params)[0], kw_, "d w")
    assert_close(db, rdb, ag.sum(axis=(0, 1, 2)), kw_, "d bias")


TORCH_CASES = [
    # N, Cin, Cout, H, W, k, stride, padding, dilation, groups
    (2, 3, 8, 11, 9, (3, 3), (1, 1), ((1, 1), (1, 1)), (1, 1), 1),
    (3, 6, 9, 10, 13, (3, 2), (2, 1), ((2, 0), (1, 2)), (1, 2), 3),
    (2, 8, 8, 12, 12, (3, 3), (2, 2), ((1, 1), (1, 1)), (1, 1), 8),  # depthwise, stride 2
    (1, 4, 8, 7, 7, (5, 5), (1, 1), ((2, 2), (2, 2)), (2, 2), 4),  # depthwise multiplier 2, dilated
    (2, 16, 24, 6, 5, (1, 1), (1, 1), ((0, 0), (0, 0)), (1, 1), 1),  # 1x1
    (2, 16, 24, 6, 5, (1, 1), (2, 2), ((1, 0), (0, 1)), (1, 1), 2),  # strided, padded 1x1
    (0, 3, 4, 5, 5, (3, 3), (1, 1), ((1, 1), (1, 1)), (1, 1), 1),  # batch 0
]


@pytest.mark.parametrize("case", TORCH_CASES, ids=lambda c: "N{}_{}->{}_{}x{}_k{}_s{}_g{}".format(*c[:6], c[6], c[9]))
@pytest.mark.parametrize("dtype", [np.float32, np.float64])
def test_conv2d_and_gradients_match_torch(be: NativeBackend, case, dtype) -> None:  # type: ignore[no-untyped-def]
    torch = pytest.importorskip("torch")
    n, cin, cout, h, w, k, stride, padding, dilation, groups = case
    rng = np.random.default_rng(7)
    x = rng.standard_normal((n, h, w, cin)).astype(dtype)
    wt = rng.standard_normal((*k, cin // groups, cout)).astype(dtype)
    bias = rng.standard_normal(cout).astype(dtype)
    params = (stride, padding, dilation, groups)
    y = be.conv2d(x, wt, bias, *params)
    g = rng.standard_normal(y.shape).astype(dtype)
    dx, dw, db = be.conv2d_backward(x, wt, g, *params)

    tdt = torch.float64
    xt = torch.tensor(x.transpose(0, 3, 1, 2).copy(), dtype=tdt).contiguous(memory_format=torch.channels_last)
    xt.requires_grad_()
    wtt = torch.tensor(wt.transpose(3, 2, 0, 1).copy(), dtype=tdt, requires_grad=True)
    bt = torch.tensor(bias, dtype=tdt, requires_grad=True)
    (pt, pb), (pl, pr) = padding
    yt = torch.nn.functional.conv2d(torch.nn.functional.pad(xt, (pl, pr, pt, pb)), wtt, bt, stride, 0, dilation, groups)
    yt.backward(torch.tensor(g.transpose(0, 3, 1, 2).copy(), dtype=tdt))
    tol = dict(rtol=2e-4, atol=2e-4) if dtype == np.float32 else dict(rtol=1e-10, atol=1e-10)
    np.testing.assert_allclose(y, yt.detach().numpy().transpose(0, 2, 3, 1), **tol)
    if n:
        np.testing.assert_allclose(dx, xt.grad.numpy().transpose(0, 2, 3, 1), **tol)
        np.testing.assert_allclose(dw, wtt.grad.numpy().transpose(2, 3, 1, 0), **tol)
        np.testing.assert_allclose(db, bt.grad.numpy(), **tol)
    else:
        assert dx.shape == x.shape and (dw == 0).all() and (db == 0).all()


def test_conv2d_propagates_nan_and_inf(be: NativeBackend) -> None:
    x = np.ones((1, 6, 6, 3), np.float32)
    x[0, 2, 2, 1] = np.inf
    w = np.zeros((3, 3, 3, 4), np.float32)  # zero weights: 0 * Inf = NaN wherever the Inf is read
    y = be.conv2d(x, w, None, (1, 1), ((1, 1), (1, 1)), (1, 1), 1)
    assert np.isnan(y[0, 1:4, 1:4]).all()
    assert (y[0, :1] == 0).all() and (y[0, 4:] == 0).all() and (y[0, :, :1] == 0).all()
    wd = np.zeros((3, 3, 1, 3), np.float32)  # depthwise: only channel 1 reads the Inf
    y = be.conv2d(x, wd, None, (1, 1), ((1, 1), (1, 1)), (1, 1), 3)
    assert np.isnan(y[0, 1:4, 1:4, 1]).all() and (y[..., 0] == 0).all() and (y[..., 2] == 0).all()
    assert (y[0, :1, :, 1] == 0).all() and (y[0, 4:, :, 1] == 0).all()


def test_conv2d_input_dtypes_and_layouts(be: NativeBackend) -> None:
    rng = np.random.default_rng(5)
    x = np.asfortranarray(rng.standard_normal((2, 7, 6, 4))).astype(np.float32)[:, ::-1]  # non-contiguous view
    w = rng.standard_normal((3, 3, 4, 5))  # float64 weights: computed in float64, returned as x's float32
    y = be.conv2d(x, w, None, (1, 2), ((1, 0), (2, 1)), (1, 1), 1)
    ref = ReferenceBackend().conv2d(x.astype(np.float64), w, None, (1, 2), ((1, 0), (2, 1)), (1, 1), 1)
    assert y.dtype == np.float32
    np.testing.assert_allclose(y, ref, rtol=1e-5, atol=1e-5)


def test_low_precision_computes_in_float32_and_integers_fall_back(fresh_native) -> None:  # type: ignore[no-untyped-def]
    ml_dtypes = pytest.importorskip("ml_dtypes")
    fresh = fresh_native()
    for dtype in (np.float16, ml_dtypes.bfloat16):
        x = np.ones((1, 4, 4, 2), dtype)
        w = np.ones((3, 3, 2, 3), dtype)
        with warnings.catch_warnings():
            warnings.simplefilter("error", FallbackWarning)
            y = fresh.conv2d(x, w, None, (1, 1), NO_PAD, (1, 1), 1)
            dx = fresh.conv2d_backward_input(np.ones((1, 2, 2, 3), dtype), w, x.shape, (1, 1), NO_PAD, (1, 1), 1)
            dw, db = fresh.conv2d_backward_weight(x, np.ones((1, 2, 2, 3), dtype), w.shape, (1, 1), NO_PAD, (1, 1), 1)
        assert y.dtype == dx.dtype == dw.dtype == db.dtype == dtype and (y.astype(np.float32) == 18).all()
        ref = reference_grad.conv2d_backward_input(np.ones((1, 2, 2, 3)), w.astype(np.float64), x.shape, (1, 1),
                                                   NO_PAD, (1, 1), 1)  # fmt: skip
        np.testing.assert_array_equal(dx.astype(np.float64), ref)
        assert (dw.astype(np.float32) == 4).all() and (db.astype(np.float32) == 4).all()
    assert not fresh.fallbacks
    with pytest.warns(FallbackWarning, match="conv2d"):
        y = fresh.conv2d(np.ones((1, 4, 4, 2), np.int32), np.ones((3, 3, 2, 3), np.int32), None, (1, 1), NO_PAD,
                         (1, 1), 1)  # fmt: skip
    assert y.dtype == np.int32 and "conv2d" in fresh.fallbacks and "has no native kernel" in fresh.fallbacks["conv2d"]


@pytest.mark.parametrize(
    ("args", "error", "match"),
    [
        (((1, 5, 5, 3), (3, 3, 3), None), ValueError, "both 4-D"),
        (((1, 5, 5, 3), (3, 3, 2, 4), None), ValueError, "w.shape\\[2\\] \\* groups == x.shape\\[3\\]"),
        (((1, 5, 5, 4), (3, 3, 2, 3), None, (1, 1), NO_PAD, (1, 1), 2), ValueError, "groups dividing"),
        (((1, 5, 5, 3), (3, 3, 3, 4), None, (0, 1)), ValueError, "stride must be >= 1"),
        (((1, 5, 5, 3), (3, 3, 3, 4), None, (1, 1), ((0, -1), (0, 0))), ValueError, "padding must be >= 0"),
        (((1, 5, 5, 3), (3, 3, 3, 4), None, (1, 1), (1, 1)), TypeError, "padding must be"),
        (((1, 5, 5, 3), (3, 3, 3, 4), None, (1.5, 1)), TypeError, "stride must be a pair of integers"),
        (((1, 5, 5, 3), (3, 3, 3, 4), (5,)), ValueError, "bias has shape \\(5,\\); expected \\(4,\\)"),
        (((1, 5, 5, 3), (3, 3, 3, 4), None, (1, 1), NO_PAD, (1, 1), 0), ValueError, "groups must be >= 1"),
    ],
)
def test_conv2d_argument_errors(be: NativeBackend, args, error, match) -> None:  # type: ignore[no-untyped-def]
    x_shape, w_shape, b_shape, *rest = args
    params = [(1, 1), NO_PAD, (1, 1), 1]
    params[: len(rest)] = rest
    x, w = np.ones(x_shape, np.float32), np.ones(w_shape, np.float32)
    bias = None if b_shape is None else np.ones(b_shape, np.float32)
    with pytest.raises(error, match=match):
        be.conv2d(x, w, bias, *params)


def test_backward_argument_errors(be: NativeBackend) -> None:
    w = np.ones((3, 3, 2, 4), np.float32)
    with pytest.raises(ValueError, match="grad_out has shape \\(1, 3, 3, 4\\); expected \\(1, 2, 2, 4\\)"):
        be.conv2d_backward_input(np.ones((1, 3, 3, 4), np.float32), w, (1, 4, 4, 2), (1, 1), NO_PAD, (1, 1), 1)
    with pytest.raises(TypeError, match="x must be a numpy.ndarray"):
        be.conv2d_backward_weight([1.0], np.ones((1, 2, 2, 4), np.float32), w.shape, (1, 1), NO_PAD, (1, 1), 1)


# -- raw ABI through ctypes -----------------------------------------------------------------------------


def _ptr(a: np.ndarray | None) -> int | None:
    return None if a is None else a.ctypes.data


def test_set_cpu_isa_rejects_bad_levels(lib: ctypes.CDLL) -> None:
    before = lib.axiom_cpu_isa()
    for bad in (3, -2, 2**31 - 1, -(2**31)):
        assert lib.axiom_set_cpu_isa(bad) == abi.ERR_SIZE, bad
    assert lib.axiom_cpu_isa() == before  # a refused level changes nothing
    assert lib.axiom_cpu_isa() <= lib.axiom_cpu_isa_supported()


@pytest.mark.parametrize("sfx", ["f32", "f64"])
def test_gemm_bad_arguments_return_codes(lib: ctypes.CDLL, sfx: str) -> None:
    gemm, batched = getattr(lib, f"axiom_gemm_{sfx}"), getattr(lib, f"axiom_gemm_batched_{sfx}")
    dt = np.float32 if sfx == "f32" else np.float64
    a, b, c = np.ones((2, 3), dt), np.ones((3, 4), dt), np.zeros((2, 4), dt)
    pa, pb, pc = _ptr(a), _ptr(b), _ptr(c)
    assert gemm(0, 0, 2, 4, 3, 1.0, pa, 3, pb, 4, 0.0, pc, 4) == abi.OK and (c == 3).all()
    assert gemm(1, 1, 4, 2, 3, 1.0, pb, 4, pa, 3, 0.0, pc, 2) == abi.OK and (c == 3).all()  # (b^T a^T)
    big = 2**62
    for args, code in [
        ((0, 0, -1, 4, 3, 1.0, pa, 3, pb, 4, 0.0, pc, 4), abi.ERR_SIZE),  # negative m
        ((0, 0, 2, 4, -3, 1.0, pa, 3, pb, 4, 0.0, pc, 4), abi.ERR_SIZE),  # negative k
        ((2, 0, 2, 4, 3, 1.0, pa, 3, pb, 4, 0.0, pc, 4), abi.ERR_SIZE),  # bad transpose flag
        ((0, 0, 2, 4, 3, 1.0, pa, 2, pb, 4, 0.0, pc, 4), abi.ERR_SIZE),  # lda < k
        ((0, 0, 2, 4, 3, 1.0, pa, 3, pb, 4, 0.0, pc, 3), abi.ERR_SIZE),  # ldc < n
        ((0, 0, big, big, 3, 1.0, pa, 3, pb, big, 0.0, pc, big), abi.ERR_SIZE),  # byte size overflows
        ((0, 0, 2, 4, 3, 1.0, None, 3, pb, 4, 0.0, pc, 4), abi.ERR_NULL),
        ((0, 0, 2, 4, 3, 1.0, pa, 3, None, 4, 0.0, pc, 4), abi.ERR_NULL),
        ((0, 0, 2, 4, 3, 1.0, pa, 3, pb, 4, 0.0, None, 4), abi.ERR_NULL),
        ((0, 0, 0, 0, 0, 1.0, None, 1, None, 1, 0.0, None, 1), abi.OK),  # empty: NULL is fine
        ((0, 0, 2, 4, 0, 1.0, None, 1, None, 4, 0.0, pc, 4), abi.OK),  # k == 0: zeros
    ]:
        assert gemm(*args) == code, args
    assert (c == 0).all()
    # batched: negative batch, negative stride, overlapping outputs
    assert batched(-1, 0, 0, 2, 4, 3, 1.0, pa, 3, 0, pb, 4, 0, 0.0, pc, 4, 8) == abi.ERR_SIZE
    assert batched(2, 0, 0, 2, 4, 3, 1.0, pa, 3, -6, pb, 4, 0, 0.0, pc, 4, 8) == abi.ERR_SIZE
    assert batched(2, 0, 0, 2, 4, 3, 1.0, pa, 3, 0, pb, 4, 0, 0.0, pc, 4, 4) == abi.ERR_SIZE
    c2 = np.zeros((2, 2, 4), dt)
    assert batched(2, 0, 0, 2, 4, 3, 1.0, pa, 3, 0, pb, 4, 0, 0.0, _ptr(c2), 4, 8) == abi.OK and (c2 == 3).all()
    assert batched(0, 0, 0, 2, 4, 3, 1.0, None, 3, 0, None, 4, 0, 0.0, None, 4, 8) == abi.OK


def _shape(**kw: int) -> Conv2dShape:
    base = dict(n=1, h=5, w=5, c_in=2, c_out=4, k_h=3, k_w=3, out_h=3, out_w=3, stride_h=1, stride_w=1,
                dilation_h=1, dilation_w=1, groups=1)  # fmt: skip
    base.update(kw)
    return Conv2dShape(**base)


@pytest.mark.parametrize("sfx", ["f32", "f64"])
def test_conv_bad_arguments_return_codes(lib: ctypes.CDLL, sfx: str) -> None:
    fwd = getattr(lib, f"axiom_conv2d_nhwc_{sfx}")
    bwd_in = getattr(lib, f"axiom_conv2d_backward_input_nhwc_{sfx}")
    bwd_w = getattr(lib, f"axiom_conv2d_backward_weight_nhwc_{sfx}")
    dt = np.float32 if sfx == "f32" else np.float64
    x, w, y = np.ones((1, 5, 5, 2), dt), np.ones((3, 3, 2, 4), dt), np.zeros((1, 3, 3, 4), dt)
    px, pw, py = _ptr(x), _ptr(w), _ptr(y)
    assert fwd(ctypes.byref(_shape()), px, pw, None, py) == abi.OK and (y == 18).all()
    bad_shapes = [
        _shape(n=-1),
        _shape(c_in=-2),
        _shape(k_h=0),
        _shape(stride_w=0),
        _shape(dilation_h=0),
        _shape(pad_left=-1),
        _shape(groups=0),
        _shape(groups=3),  # does not divide c_in
        _shape(out_h=4),  # wrong output size
        _shape(n=2**40, h=2**20, out_h=2**20 - 2),  # element count overflows
        _shape(h=2**62, pad_top=2**62, out_h=2**62),  # extent overflows
    ]
    for s in bad_shapes:
        assert fwd(ctypes.byref(s), px, pw, None, py) == abi.ERR_SIZE, s
        assert bwd_in(ctypes.byref(s), py, pw, px) == abi.ERR_SIZE, s
        assert bwd_w(ctypes.byref(s), px, py, pw, None) == abi.ERR_SIZE, s
    assert fwd(None, px, pw, None, py) == abi.ERR_NULL
    assert fwd(ctypes.byref(_shape()), None, pw, None, py) == abi.ERR_NULL
    assert fwd(ctypes.byref(_shape()), px, None, None, py) == abi.ERR_NULL
    assert fwd(ctypes.byref(_shape()), px, pw, None, None) == abi.ERR_NULL
    assert bwd_in(ctypes.byref(_shape()), None, pw, px) == abi.ERR_NULL
    assert bwd_w(ctypes.byref(_shape()), px, py, None, None) == abi.ERR_NULL
    empty = _shape(n=0)
    assert fwd(ctypes.byref(empty), None, pw, None, None) == abi.OK
    assert bwd_in(ctypes.byref(empty), None, pw, None) == abi.OK
    dw, db = np.full(w.shape, np.nan, dt), np.full(4, np.nan, dt)
    assert bwd_w(ctypes.byref(empty), None, None, _ptr(dw), _ptr(db)) == abi.OK
    assert (dw == 0).all() and (db == 0).all()  # a sum over no pixels is written as zeros


def test_ctypes_backend_runs_conv_natively(get_native) -> None:  # type: ignore[no-untyped-def]
    """``CBackend(path)``: the C library through ctypes (LibraryKernels) gives what Cython gives."""
    get_native("c")  # skip / fail if the C library is not built
    be = CBackend(abi.built_library_path("c"))
    x = np.random.default_rng(2).standard_normal((2, 6, 5, 4)).astype(np.float32)
    w = np.random.default_rng(3).standard_normal((3, 2, 2, 6)).astype(np.float32)
    args = ((2, 1), ((1, 1), (0, 1)), (1, 2), 2)
    np.testing.assert_allclose(be.conv2d(x, w, None, *args), CBackend().conv2d(x, w, None, *args), rtol=1e-6)
    g = np.ones(conv2d_output_shape(x.shape, w.shape, *args), np.float32)
    for got, want in zip(be.conv2d_backward(x, w, g, *args), CBackend().conv2d_backward(x, w, g, *args)):
        np.testing.assert_allclose(got, want, rtol=1e-6, atol=1e-6)
    assert "conv2d" not in be.fallbacks


# -- Rust and Zig against C on the raw ABI: small, degenerate and bad arguments -------------------

ARENA = 4096  # elements of every array: sizes <= 3 (7 for conv outputs), strides <= 20: no call can overrun


def _small(data: st.DataObject, valid: bool, label: str, lo: int = 0, hi: int = 3) -> int:
    return data.draw(st.integers(lo, hi) if valid else st.integers(lo - 1, hi), label=label)


def _conv_shape(data: st.DataObject, valid: bool) -> Conv2dShape:
    groups = data.draw(st.integers(1, 2) if valid else st.integers(0, 3), label="groups")
    s = Conv2dShape(n=_small(data, valid, "n"), h=_small(data, valid, "h"), w=_small(data, valid, "w"),
                    c_in=max(groups, 1) * _small(data, valid, "c_in / g", 1, 2),
                    c_out=max(groups, 1) * _small(data, valid, "c_out / g", 1, 2),
                    k_h=_small(data, valid, "k_h", 1), k_w=_small(data, valid, "k_w", 1),
                    stride_h=_small(data, valid, "stride_h", 1, 2), stride_w=_small(data, valid, "stride_w", 1, 2),
                    pad_top=_small(data, valid, "pt", 0, 2), pad_bottom=_small(data, valid, "pb", 0, 2),
                    pad_left=_small(data, valid, "pl", 0, 2), pad_right=_small(data, valid, "pr", 0, 2),
                    dilation_h=_small(data, valid, "dh", 1, 2), dilation_w=_small(data, valid, "dw", 1, 2),
                    groups=groups)  # fmt: skip
    geometry = [("out_h", s.h, s.k_h, s.dilation_h, s.stride_h, s.pad_top, s.pad_bottom),
                ("out_w", s.w, s.k_w, s.dilation_w, s.stride_w, s.pad_left, s.pad_right)]  # fmt: skip
    for out, size, k, d, st_, p0, p1 in geometry:
        right = max(0, (size + p0 + p1 - d * (k - 1) - 1) // st_ + 1) if st_ > 0 else 0
        setattr(s, out, right if valid or data.draw(st.booleans(), label=out) else _small(data, False, out, 0, 4))
    return s


@pytest.mark.parametrize("library_kind", ["rust", "zig"])
@pytest.mark.parametrize("op", ["gemm", "gemm_batched", "conv2d_nhwc", "conv2d_backward_input_nhwc",
                                "conv2d_backward_weight_nhwc"])  # fmt: skip
@given(data=st.data())
def test_agrees_with_c_on_any_small_arguments(library_kind: str, get_kernel_lib, op: str, data: st.DataObject) -> None:  # type: ignore[no-untyped-def]
    """Random small sizes, leading dimensions, batch strides, transpose flags, conv geometries (often
    inconsistent), NULL or not for every array: the library returns C's code and writes exactly what C
    writes (whole output arrays compared: a write outside the sizes shows; nothing at all on an error)."""
    lib = get_kernel_lib(library_kind)
    dtype = data.draw(DTYPES, label="dtype")
    symbol = f"axiom_{op}_{'f32' if dtype == np.float32 else 'f64'}"
    rng = np.random.default_rng(data.draw(st.integers(0, 2**32 - 1), label="seed"))
    valid = data.draw(st.booleans(), label="valid")  # half the calls: sizes and flags in range, arrays present

    def array(label: str, optional: bool = False) -> np.ndarray | None:
        null = data.draw(st.integers(0, 9), label=f"null {label}") == 0 and (not valid or optional)
        return None if null else rng.standard_normal(ARENA).astype(dtype)

    def flag(label: str) -> int:
        return data.draw(st.integers(0, 1) if valid else st.integers(-1, 2), label=label)

    scalar = st.sampled_from([0.0, 1.0, -0.5])
    if op.startswith("gemm"):
        batched = op == "gemm_batched"
        head = [_small(data, valid, "batch")] if batched else []
        args: list = [*head, flag("trans_a"), flag("trans_b"), _small(data, valid, "m"), _small(data, valid, "n"),
                      _small(data, valid, "k"), data.draw(scalar, label="alpha")]  # fmt: skip
        for name in ("a", "b"):
            args += [array(name), _small(data, valid, f"ld{name}", 0, 5)]
            args += [_small(data, valid, f"stride_{name}", 0, 20)] if batched else []
        args += [data.draw(scalar, label="beta"), array("c"), _small(data, valid, "ldc", 0, 5)]
        args += [_small(data, valid, "stride_c", 0, 20)] if batched else []
        outputs = [len(args) - (3 if batched else 2)]
    else:
        shape = None if data.draw(st.integers(0, 19), label="null shape") == 0 else _conv_shape(data, valid)
        if op == "conv2d_nhwc":
            args, outputs = [shape, array("x"), array("w"), array("bias", True), array("y")], [4]
        elif op == "conv2d_backward_input_nhwc":
            args, outputs = [shape, array("dy"), array("w"), array("dx")], [3]
        else:
            args, outputs = [shape, array("x"), array("dy"), array("dw"), array("dbias", True)], [3, 4]

    def run(library: ctypes.CDLL) -> tuple[int, list[np.ndarray]]:
        mine = [a.copy() if isinstance(a, np.ndarray) else a for a in args]
        conv = [a.ctypes.data if isinstance(a, np.ndarray) else ctypes.byref(a) if isinstance(a, Conv2dShape) else a
                for a in mine]  # fmt: skip
        return getattr(library, symbol)(*conv), [mine[i] for i in outputs if mine[i] is not None]

    want_code, want = run(get_kernel_lib("c"))
    got_code, got = run(lib)
    shown = [a if not isinstance(a, np.ndarray) else "array" for a in args]
    what = f"{symbol}{tuple(shown)}".replace("<", "(").replace(">", ")")
    if isinstance(args[0], Conv2dShape):
        what += f" with shape {dict((f, getattr(args[0], f)) for f, _ in Conv2dShape._fields_)}"
    assert got_code == want_code, f"{what}: {library_kind} returned {got_code}, C {want_code}"
    tol = dict(rtol=2e-4, atol=1e-4) if dtype == np.float32 else dict(rtol=1e-9, atol=1e-11)
    for g, w in zip(got, want):
        np.testing.assert_allclose(g, w, **tol, equal_nan=True, err_msg=f"{what} ({library_kind})")
