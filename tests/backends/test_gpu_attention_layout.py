"""GPU flash attention, RoPE and the layout kernels against the NumPy reference.

Runs on every GPU backend of ``gpu_backends()`` (OpenCL through PoCL on the CPU in CI; CUDA
skips without a GPU). Attention crosses the kernel's tile edges (32 queries, 32 keys, 32 head-dim
columns, 128 value columns per pass), broadcasts leading dims and masks, and checks NaN / Inf
behaviour; each layout kernel is checked against NumPy, zero sizes included.
"""

from __future__ import annotations

import math
from typing import Any

import numpy as np
import pytest
from gpu_libs import gpu_backend, gpu_backends
from hypothesis import given, settings
from hypothesis import strategies as st

from axiom.backends import ReferenceBackend
from axiom.backends.gpu.ops import call

REF = ReferenceBackend()
DTYPES = [np.float32, np.float64]
SETTINGS = settings(max_examples=20, deadline=None, database=None)
# lengths around the kernel's 32-wide tiles
LENGTHS = st.one_of(st.integers(1, 150), st.sampled_from([1, 31, 32, 33, 64, 65, 96, 97]))


@pytest.fixture(params=gpu_backends(), scope="module")
def be(request: pytest.FixtureRequest) -> Any:
    backend = gpu_backend(request.param)
    yield backend
    assert backend.fallbacks == {}, backend.fallbacks


def _tol(dt: Any, n: int) -> float:
    return (1e-5 if np.dtype(dt) == np.float32 else 1e-12) * math.sqrt(max(n, 1))


def _ref_attention(q, k, v, causal, scale, mask=None):  # type: ignore[no-untyped-def]
    with np.errstate(all="ignore"):
        return REF.attention(q, k, v, causal, scale, mask)


def _check_attention(be: Any, q, k, v, causal, scale, mask=None) -> None:  # type: ignore[no-untyped-def]
    got = be.attention(q, k, v, causal, scale, mask)
    want = _ref_attention(q, k, v, causal, scale, mask)
    assert got.shape == want.shape and got.dtype == want.dtype
    tol = _tol(q.dtype, q.shape[-1] + k.shape[-2])
    np.testing.assert_allclose(got, want, rtol=tol, atol=tol, equal_nan=True)


# -- attention ----------------------------------------------------------------------------------


@st.composite
def attention_cases(draw: st.DrawFn) -> tuple[Any, ...]:
    batch, heads = draw(st.integers(1, 2)), draw(st.integers(1, 2))
    lq, lk = draw(LENGTHS), draw(LENGTHS)
    d = draw(st.one_of(st.integers(1, 70), st.sampled_from([32, 33, 64])))
    dv = draw(st.one_of(st.integers(1, 40), st.sampled_from([64, 65, 127, 128, 129, 140])))
    # broadcast leading dims: k / v may share one batch entry
    kb = draw(st.sampled_from([batch, 1]))
    mask_shape = draw(
        st.sampled_from([None, (lq, lk), (1, heads, 1, lk), (batch, 1, lq, 1), (batch, heads, lq, lk), (lk,)])
    )
    causal, scale, special = draw(st.booleans()), draw(st.floats(0.01, 2.0)), draw(st.booleans())
    return batch, heads, lq, lk, d, dv, kb, mask_shape, causal, scale, special


@pytest.mark.parametrize("dt", DTYPES)
@SETTINGS
@given(case=attention_cases(), seed=st.integers(0, 2**16))
def test_attention_matches_reference(be: Any, dt: Any, case: tuple[Any, ...], seed: int) -> None:
    batch, heads, lq, lk, d, dv, kb, mask_shape, causal, scale, special = case
    rng = np.random.default_rng(seed)
    q = rng.standard_normal((batch, heads, lq, d)).astype(dt)
    k = rng.standard_normal((kb, heads, lk, d)).astype(dt)
    v = rng.standard_normal((kb, heads, lk, dv)).astype(dt)
    if special:  # a NaN or an infinity in one of q, k, v
        a = (q, k, v)[seed % 3]
        a.flat[rng.integers(a.size)] = (np.nan, np.inf, -np.inf)[seed // 3 % 3]
    mask = None
    if mask_shape is not None:
        mask = rng.standard_normal(mask_shape).astype(dt)
        mask[rng.random(mask_shape) < 0.2] = -np.inf  # hidden keys; some rows end up all -inf
    _check_attention(be, q, k, v, causal, scale, mask)


@pytest.mark.parametrize("dt", DTYPES)
def test_attention_special_values(be: Any, dt: Any) -> None:
    rng = np.random.default_rng(1)
    lq, lk, d, dv = 40, 70, 20, 9
    q = rng.standard_normal((2, 2, lq, d)).astype(dt)
    k = rng.standard_normal((2, 2, lk, d)).astype(dt)
    v = rng.standard_normal((2, 2, lk, dv)).astype(dt)
    q[0, 0, 3, 5] = np.nan  # one NaN query row
    k[0, 1, 50, 2] = np.inf  # an infinite score in a column of queries
    v[1, 0, 65, 4] = np.inf  # a value hidden by causality from most queries: 0 * inf = NaN
    v[1, 1, 10, 1] = np.nan
    mask = np.zeros((lq, lk), dt)
    mask[7, :] = -np.inf  # a query that sees no key
    mask[8, 40:] = -np.inf
    for causal in (False, True):
        _check_attention(be, q, k, v, causal, 0.3, mask)
    # causal with lq > lk: the first queries see no key
    _check_attention(be, k, q, q[..., :dv], True, 0.5)
    # scores of +-inf without NaN inputs: huge scale
    _check_attention(be, q[1:], k[1:], v[:1], False, 1e38 if dt == np.float32 else 1e300)


@pytest.mark.parametrize("dt", DTYPES)
def test_attention_empty_keys_and_sizes(be: Any, dt: Any) -> None:
    q = np.ones((1, 2, 3, 4), dt)
    out = be.attention(q, np.ones((1, 2, 0, 4), dt), np.ones((1, 2, 0, 5), dt), False, 1.0)
    assert out.shape == (1, 2, 3, 5) and np.isnan(out).all()  # like the C kernels: no key, NaN
    assert be.attention(q[:, :, :0], q, q, True, 1.0).shape == (1, 2, 0, 4)
    assert be.attention(q, q, q[..., :0], False, 1.0).shape == (1, 2, 3, 0)
    got = be.attention(q[..., :0], q[..., :0], q, False, 1.0)  # d == 0: uniform weights
    np.testing.assert_allclose(got, np.ones((1, 2, 3, 4)), rtol=1e-6)


def test_attention_long_sequence(be: Any) -> None:
    rng = np.random.default_rng(2)
    n, d = 1100, 64
    q, k, v = (rng.standard_normal((1, 1, n, d)).astype(np.float32) for _ in range(3))
    for causal in (False, True):
        got = be.attention(q, k, v, causal, 1 / 8)
        want = _ref_attention(q, k, v, causal, 1 / 8)
        np.testing.assert_allclose(got, want, rtol=1e-4, atol=1e-5)


def test_attention_launcher_rejects_bad_sizes(be: Any) -> None:
    rt = be.runtime
    a = rt.to_device(np.zeros((1, 1, 4, 4), np.float32))
    out = rt.empty((1, 1, 4, 4), np.float32)
    with pytest.raises(ValueError, match="q has 16 elements"):
        call(rt, "attention", np.float32, a, a, a, None, out, 1, 1, 5, 4, 4, 4, 1.0, 0, 0, 0, 0, 0)
    with pytest.raises(ValueError, match="mask"):
        call(rt, "attention", np.float32, a, a, a, a, out, 1, 1, 4, 4, 4, 4, 1.0, 0, 0, 0, 4, 2)
    with pytest.raises(TypeError, match="float64"):
        call(rt, "attention", np.float64, a, a, a, None, out, 1, 1, 4, 4, 4, 4, 1.0, 0, 0, 0, 0, 0)


# -- RoPE --------------------------------------------------------------------------------------


@pytest.mark.parametrize("dt", [np.float16, np.float32, np.float64])
@SETTINGS
@given(
    lead=st.lists(st.integers(1, 3), max_size=2),
    seq=st.integers(1, 40),
    d=st.integers(1, 70),
    base=st.sampled_from([10000.0, 500.0, 2.5]),
    seed=st.integers(0, 2**16),
)
def test_rope_matches_reference(be: Any, dt: Any, lead: list[int], seq: int, d: int, base: float, seed: int) -> None:
    rng = np.random.default_rng(seed)
    x = rng.standard_normal((*lead, seq, d)).astype(dt)
    positions = rng.uniform(-50, 5000, seq) if seed % 2 else np.arange(seq, dtype=np.float64)
    got = be.rope(x, positions, base)
    want = REF.rope(x, positions, base)
    assert got.dtype == want.dtype and got.shape == want.shape
    tol = {np.float16: 2e-3, np.float32: 1e-6, np.float64: 1e-14}[dt]
    np.testing.assert_allclose(got.astype(np.float64), want.astype(np.float64), rtol=tol, atol=tol * 4)


@pytest.mark.parametrize("dt", DTYPES)
def test_rope_in_place_cached_and_special(be: Any, dt: Any) -> None:
    rt = be.runtime
    x = np.random.default_rng(3).standard_normal((2, 5, 7)).astype(dt)
    x[0, 1, 2] = np.nan
    x[1, 2, 6] = np.inf
    pos = np.arange(5.0)
    want = REF.rope(x, pos, 100.0)
    xd = rt.to_device(x)
    call(rt, "rope", dt, xd, pos, xd, 2, 5, 7, 100.0)  # in place
    tables = dict(rt._axiom_rope_tables)  # key -> (cos, sin) device arrays, kept by rope_tables
    call(rt, "rope", dt, rt.to_device(x), rt.to_device(pos), rt.empty((70,), dt), 2, 5, 7, 100.0)  # device positions
    assert tables and rt._axiom_rope_tables == tables  # the same tables (identity): no new upload
    np.testing.assert_allclose(rt.to_host(xd), want, rtol=_tol(dt, 2), atol=_tol(dt, 2), equal_nan=True)
    assert be.rope(np.zeros((0, 3, 4), dt), pos[:3], 10.0).shape == (0, 3, 4)
    with pytest.raises(ValueError, match="positions"):
        call(rt, "rope", dt, xd, pos[:4], xd, 2, 5, 7, 100.0)
    with pytest.raises(ValueError, match="elements"):
        call(rt, "rope", dt, xd, pos, xd, 3, 5, 7, 100.0)


def test_rope_tables_keep_the_recently_used_settings(be: Any) -> None:
    from axiom.backends.gpu.ops_rope import TABLES_KEPT, rope_tables

    rt, f32 = be.runtime, np.dtype(np.float32)
    pos = np.arange(3.0)
    first = rope_tables(rt, f32, pos, 4, 1.5)
    made = [rope_tables(rt, f32, pos, 4, 2.0 + i) for i in range(TABLES_KEPT - 1)]  # fills the cache
    assert rope_tables(rt, f32, pos, 4, 1.5)[0] is first[0]  # a hit: `first` is now the most recently used
    evicted = made[0]  # the least recently used setting
    rope_tables(rt, f32, pos, 6, 2.0)  # one more setting evicts it, not `first`
    assert rope_tables(rt, f32, pos, 4, 1.5)[1] is first[1]
    assert rope_tables(rt, f32, pos, 4, 2.0)[0] is not evicted[0]
    assert len(rt._axiom_rope_tables) == TABLES_KEPT


# -- layout kernels ------------------------------------------------------------------------------


@pytest.mark.parametrize("dt", DTYPES)
@settings(max_examples=15, deadline=None, database=None)
@given(
    shape=st.lists(st.integers(0, 40), min_size=4, max_size=4),
    axis=st.integers(0, 3),
    seed=st.integers(0, 2**16),
)
def test_layout_kernels_match_numpy(be: Any, dt: Any, shape: list[int], axis: int, seed: int) -> None:
    rt = be.runtime
    rng = np.random.default_rng(seed)
    d0, d1, d2, d3 = shape
    a = rng.standard_normal(shape).astype(dt)
    b = rng.standard_normal(shape).astype(dt)
    a.flat[:1] = np.nan
    ad, bd = rt.to_device(a), rt.to_device(b)

    y = rt.empty(shape, dt)
    call(rt, "add", dt, ad, bd, y, a.size)
    np.testing.assert_array_equal(rt.to_host(y), a + b)

    p = rt.empty((d0, d2, d1, d3), dt)
    call(rt, "permute_0213", dt, ad, p, d0, d1, d2, d3)
    np.testing.assert_array_equal(rt.to_host(p), a.transpose(0, 2, 1, 3))
    a1 = rng.standard_normal((d0, d1, d2, 1)).astype(dt)
    t = rt.empty((d0, d2, d1, 1), dt)  # d3 == 1: the tiled transpose
    call(rt, "permute_0213", dt, rt.to_device(a1), t, d0, d1, d2, 1)
    np.testing.assert_array_equal(rt.to_host(t), a1.transpose(0, 2, 1, 3))

    # concatenation of a and b (b cut to an odd width) along `axis` by two copy_block calls
    b2 = b[(slice(None),) * axis + (slice(0, max(0, shape[axis] - 3)),)]
    want = np.concatenate([a, b2], axis=axis)
    dst = rt.empty(want.shape, dt)
    outer = math.prod(want.shape[:axis])
    dst_cols = math.prod(want.shape[axis:])
    a_cols, b_cols = math.prod(a.shape[axis:]), math.prod(b2.shape[axis:])
    call(rt, "copy_block", dt, ad, dst, outer, a_cols, dst_cols, 0)
    call(rt, "copy_block", dt, rt.to_device(b2), dst, outer, b_cols, dst_cols, a_cols)
    np.testing.assert_array_equal(rt.to_host(dst), want)

    table = a.reshape(-1, d3) if d3 else np.zeros((0, 0), dt)
    rows, dim = table.shape
    idx = rng.integers(-2, rows + 2, size=d1).astype(np.int32)  # some out of range: NaN rows
    g = rt.empty((d1, dim), dt)
    call(rt, "gather_rows", dt, rt.to_device(table), rt.to_device(idx), g, d1, rows, dim)
    ok = (idx >= 0) & (idx < rows)
    want_g = np.full((d1, dim), np.nan, dt)
    want_g[ok] = table[idx[ok]]
    np.testing.assert_array_equal(rt.to_host(g), want_g)


@pytest.mark.parametrize("dt", DTYPES)
@settings(max_examples=25, deadline=None, database=None)
@given(shape=st.lists(st.integers(0, 6), min_size=1, max_size=7), data=st.data())
def test_permute_matches_numpy_transpose(be: Any, dt: Any, shape: list[int], data: st.DataObject) -> None:
    from axiom.backends.gpu.ops_layout import PERM_MAX_DIMS, merged_permutation

    perm = tuple(data.draw(st.permutations(range(len(shape))), label="perm"))
    x = np.random.default_rng(len(shape)).standard_normal(shape).astype(dt)
    x.flat[: min(2, x.size)] = [np.nan, np.inf][: min(2, x.size)]
    want = x.transpose(perm)
    dims, order = merged_permutation(tuple(shape), perm)
    assert np.array_equal(x.reshape(dims).transpose(order).ravel(), want.ravel(), equal_nan=True)
    rt = be.runtime
    y = rt.empty(want.shape, dt)
    if len(dims) > PERM_MAX_DIMS:  # only 7 distinct moving axes can get here
        with pytest.raises(ValueError, match="axes remain"):
            call(rt, "permute", dt, rt.to_device(x), y, tuple(shape), perm)
        return
    call(rt, "permute", dt, rt.to_device(x), y, tuple(shape), perm)
    np.testing.assert_array_equal(rt.to_host(y), want)


def test_layout_launchers_reject_bad_sizes(be: Any) -> None:
    rt = be.runtime
    x = rt.to_device(np.zeros(6, np.float32))
    with pytest.raises(ValueError, match="elements"):
        call(rt, "add", np.float32, x, x, x, 7)
    with pytest.raises(ValueError, match="do not fit"):
        call(rt, "copy_block", np.float32, x, x, 2, 3, 3, 1)
    with pytest.raises(ValueError, match="negative"):
        call(rt, "permute_0213", np.float32, x, x, 1, 2, 3, -1)
    with pytest.raises(TypeError, match="int32"):
        call(rt, "gather_rows", np.float32, x, x, x, 1, 2, 3)
    with pytest.raises(TypeError, match="float64"):
        call(rt, "add", np.float64, x, x, x, 6)
