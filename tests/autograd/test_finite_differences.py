"""Every differentiable op against central finite differences in float64 (Hypothesis over shapes).

Each test differentiates ``sum(w * f(x))`` for a random upstream ``w`` on the tape and checks
the result element by element against central differences (see ``autograd_helpers``).
Inputs are drawn away from kinks (relu at 0, clip bounds, ties of max and pooling), where
the derivative is not defined and finite differences would straddle two slopes.
"""

from __future__ import annotations

import numpy as np
import pytest
from autograd_helpers import away_from, check_gradients, distinct
from hypothesis import given
from hypothesis import strategies as st

from axiom import Tensor
from axiom import functional as F
from axiom.backends import ACTIVATIONS
from axiom.tensor import concat, maximum, minimum, stack, where

shapes = st.lists(st.integers(1, 3), min_size=1, max_size=3).map(tuple)
seeds = st.integers(0, 2**31 - 1)


def rng_for(seed: int) -> np.random.Generator:
    return np.random.default_rng(seed)


# -- Tensor arithmetic with broadcasting ----------------------------------------------------------


@st.composite
def broadcast_pair(draw):
    """Two shapes that broadcast together (size-1 axes and missing leading axes on either side)."""
    shape = draw(shapes)
    a = tuple(draw(st.sampled_from([d, 1])) for d in shape)
    b = tuple(draw(st.sampled_from([d, 1])) for d in shape)
    b = b[draw(st.integers(0, len(b))) :]
    return (a, b) if draw(st.booleans()) else (b, a)


BINARY = {
    "add": lambda a, b: a + b,
    "sub": lambda a, b: a - b,
    "mul": lambda a, b: a * b,
    "div": lambda a, b: a / b,
    "pow": lambda a, b: a**b,
    "maximum": maximum,
    "minimum": minimum,
    "where": lambda a, b: where(a > 0.3, a, b),
}


@pytest.mark.parametrize("name", list(BINARY))
@given(pair=broadcast_pair(), seed=seeds)
def test_binary_ops(name, pair, seed):
    rng = rng_for(seed)
    a, b = rng.standard_normal(pair[0]), rng.standard_normal(pair[1])
    if name in ("div", "pow"):
        a, b = np.abs(a) + 0.5, b  # positive base; divisor away from 0
        if name == "div":
            b = np.abs(b) + 0.5
    if name in ("maximum", "minimum"):  # no ties: every value of a and b differs from every other
        values = distinct(rng, (a.size + b.size,))
        a, b = values[: a.size].reshape(a.shape), values[a.size :].reshape(b.shape)
    if name == "where":
        a = away_from(a, [0.3])
    check_gradients(BINARY[name], [a, b], seed=seed)


@pytest.mark.parametrize(
    "name,f",
    [
        ("radd", lambda a: 2.0 + a),
        ("rsub", lambda a: 2.0 - a),
        ("rmul", lambda a: 3.0 * a),
        ("rdiv", lambda a: 2.0 / a),
        ("rpow", lambda a: 2.0**a),
        ("pow int", lambda a: a**3),
        ("pow float", lambda a: a**2.5),
        ("ndarray radd", lambda a: np.full(a.shape, 2.0) + a),
        ("ndarray rmul", lambda a: np.full(a.shape, 2.0) * a),
        ("neg", lambda a: -a),
    ],
)
@given(shape=shapes, seed=seeds)
def test_ops_with_constants(name, f, shape, seed):
    a = np.abs(rng_for(seed).standard_normal(shape)) + 0.5
    check_gradients(f, [a], seed=seed)


def test_same_tensor_on_both_sides():
    a = rng_for(0).standard_normal((3, 2)) + 2.0
    check_gradients(lambda x: x * x + x / x - x**x, [a])


# -- reductions -----------------------------------------------------------------------------------


@st.composite
def reduction_args(draw):
    shape = draw(shapes)
    axis = draw(
        st.one_of(
            st.none(),
            st.integers(-len(shape), len(shape) - 1),
            st.lists(st.integers(0, len(shape) - 1), min_size=1, max_size=len(shape), unique=True).map(tuple),
        )
    )
    return shape, axis, draw(st.booleans())


@pytest.mark.parametrize("name", ["sum", "mean", "max", "min"])
@given(args=reduction_args(), seed=seeds)
def test_reductions(name, args, seed):
    shape, axis, keepdims = args
    x = distinct(rng_for(seed), shape)
    check_gradients(lambda t: getattr(t, name)(axis=axis, keepdims=keepdims), [x], seed=seed)


def test_max_shares_the_gradient_between_ties():
    t = Tensor(np.array([[1.0, 3.0, 3.0], [2.0, 0.0, 1.0]]), requires_grad=True)
    t.max(axis=1).sum().backward()
    assert t.grad.tolist() == [[0.0, 0.5, 0.5], [1.0, 0.0, 0.0]]


# -- shape ops and indexing -----------------------------------------------------------------------


@given(shape=shapes, seed=seeds)
def test_reshape_flatten_transpose(shape, seed):
    x = rng_for(seed).standard_normal((2, *shape))
    perm = tuple(rng_for(seed).permutation(x.ndim))
    check_gradients(lambda t: t.reshape(-1, 2), [x], seed=seed)
    check_gradients(lambda t: t.flatten(), [x], seed=seed)
    check_gradients(lambda t: t.transpose(*perm), [x], seed=seed)
    check_gradients(lambda t: t.T * 1.5, [x], seed=seed)


INDICES = {
    "int": lambda n: 1,
    "negative": lambda n: -1,
    "slice": lambda n: slice(1, None, 2),
    "tuple": lambda n: (slice(None), 0),
    "fancy with repeats": lambda n: [0, 2, 0, 0, 1],
    "fancy 2-D": lambda n: np.array([[0, 1], [1, 1]]),
    "fancy pair": lambda n: (np.array([0, 2, 2]), np.array([1, 0, 1])),
    "boolean mask": lambda n: np.array([True, False, True]),
    "ellipsis and newaxis": lambda n: (Ellipsis, None, 1),
    "tensor index": lambda n: Tensor(np.array([2, 2, 1])),
}


@pytest.mark.parametrize("name", list(INDICES))
@given(seed=seeds, cols=st.integers(2, 3))
def test_getitem(name, seed, cols):
    x = rng_for(seed).standard_normal((3, cols))
    check_gradients(lambda t: t[INDICES[name](3)], [x], seed=seed)


@given(shape=shapes, seed=seeds)
def test_concat_and_stack(shape, seed):
    rng = rng_for(seed)
    axis = int(rng.integers(-len(shape), len(shape)))
    other = list(shape)
    other[axis] += 1
    a, b, c = rng.standard_normal(shape), rng.standard_normal(other), rng.standard_normal(shape)
    check_gradients(lambda x, y, z: concat([x, y, z], axis=axis), [a, b, c], seed=seed)
    check_gradients(lambda x, z: stack([x, z, x], axis=axis), [a, c], seed=seed)
    check_gradients(lambda x, z: stack([x, z], axis=-1), [a, c], seed=seed)


# -- element-wise math ----------------------------------------------------------------------------

UNARY = {
    "exp": (lambda t: t.exp(), lambda x: x),
    "log": (lambda t: t.log(), lambda x: np.abs(x) + 0.2),
    "sqrt": (lambda t: t.sqrt(), lambda x: np.abs(x) + 0.2),
    "abs": (lambda t: t.abs(), lambda x: away_from(x, [0.0])),
    "clip": (lambda t: t.clip(-0.5, 0.7), lambda x: away_from(x, [-0.5, 0.7])),
    "clip low only": (lambda t: t.clip(low=-0.5), lambda x: away_from(x, [-0.5])),
    "clip high only": (lambda t: t.clip(high=0.7), lambda x: away_from(x, [0.7])),
    "astype float64": (lambda t: t.astype("float64") * 2, lambda x: x),
}


@pytest.mark.parametrize("name", list(UNARY))
@given(shape=shapes, seed=seeds)
def test_elementwise(name, shape, seed):
    f, make = UNARY[name]
    x = make(rng_for(seed).standard_normal(shape))
    check_gradients(f, [x], seed=seed)


@pytest.mark.parametrize("dtype", ["float32", "float16", "bfloat16"])
def test_astype_sends_the_gradient_back_in_the_source_dtype(dtype):
    x = Tensor(rng_for(0).standard_normal((2, 3)), requires_grad=True)
    w = rng_for(1).standard_normal((2, 3)).astype(dtype)
    y = x.astype(dtype)
    assert y.dtype.name == dtype and y.requires_grad
    (y * Tensor(w)).sum().backward()
    assert x.grad.dtype == np.float64
    np.testing.assert_array_equal(x.grad.data, w.astype(np.float64))


# -- functional: matmul and linear ----------------------------------------------------------------


@st.composite
def matmul_shapes(draw):
    m, k, n = draw(st.integers(1, 3)), draw(st.integers(1, 3)), draw(st.integers(1, 3))
    kind = draw(st.sampled_from(["2d", "batch", "broadcast", "vec-mat", "mat-vec", "vec-vec", "batch-vec"]))
    return {
        "2d": ((m, k), (k, n)),
        "batch": ((2, m, k), (2, k, n)),
        "broadcast": ((2, 1, m, k), (3, k, n)),
        "vec-mat": ((k,), (k, n)),
        "mat-vec": ((2, m, k), (k,)),
        "vec-vec": ((k,), (k,)),
        "batch-vec": ((k,), (2, k, n)),
    }[kind]


@given(shapes=matmul_shapes(), seed=seeds)
def test_matmul(shapes, seed):
    rng = rng_for(seed)
    a, b = rng.standard_normal(shapes[0]), rng.standard_normal(shapes[1])
    check_gradients(F.matmul, [a, b], seed=seed)
    check_gradients(lambda x, y: x @ y, [a, b], seed=seed)


@given(batch=st.lists(st.integers(1, 3), max_size=2), fin=st.integers(1, 4), fout=st.integers(1, 3), seed=seeds)
def test_linear(batch, fin, fout, seed):
    rng = rng_for(seed)
    x, w, b = rng.standard_normal((*batch, fin)), rng.standard_normal((fin, fout)), rng.standard_normal(fout)
    check_gradients(F.linear, [x, w, b], seed=seed)
    check_gradients(lambda x, w: F.linear(x, w), [x, w], seed=seed)
    check_gradients(F.linear, [x, w, b], seed=seed, wrt=[1, 2])  # a first layer: the input needs none
    check_gradients(F.linear, [x, w, b], seed=seed, wrt=[0])  # frozen weights


# -- functional: convolution ----------------------------------------------------------------------


@st.composite
def conv_args(draw):
    depthwise = draw(st.booleans())
    groups = draw(st.integers(1, 2))
    cin = groups * draw(st.integers(1, 2))
    cout = cin * draw(st.integers(1, 2)) if depthwise else groups * draw(st.integers(1, 2))
    groups = cin if depthwise else groups
    kh, kw = draw(st.integers(1, 3)), draw(st.integers(1, 3))
    stride = (draw(st.integers(1, 2)), draw(st.integers(1, 2)))
    dilation = (draw(st.integers(1, 2)), draw(st.integers(1, 2)))
    padding = tuple((draw(st.integers(0, 2)), draw(st.integers(0, 2))) for _ in range(2))
    h = max(dilation[0] * (kh - 1) + 1 - sum(padding[0]), 1) + draw(st.integers(0, 3))
    w = max(dilation[1] * (kw - 1) + 1 - sum(padding[1]), 1) + draw(st.integers(0, 3))
    n = draw(st.integers(1, 2))
    return (n, h, w, cin), (kh, kw, cin // groups, cout), stride, padding, dilation, groups, draw(st.booleans())


@given(args=conv_args(), seed=seeds)
def test_conv2d(args, seed):
    xs, ws, stride, padding, dilation, groups, bias = args
    rng = rng_for(seed)
    x, w, b = rng.standard_normal(xs), rng.standard_normal(ws), rng.standard_normal(ws[-1])

    def f(x, w, b=None):
        return F.conv2d(x, w, b, stride=stride, padding=padding, dilation=dilation, groups=groups)

    check_gradients(f, [x, w, b] if bias else [x, w], seed=seed)


# -- functional: normalisation --------------------------------------------------------------------


@given(shape=st.lists(st.integers(1, 3), min_size=1, max_size=3).map(tuple), seed=seeds, affine=st.booleans())
def test_batchnorm_constant_stats(shape, seed, affine):
    rng = rng_for(seed)
    c = int(rng.integers(1, 4))
    x, g, b = rng.standard_normal((*shape, c)), rng.standard_normal(c), rng.standard_normal(c)
    mean, var = rng.standard_normal(c), rng.uniform(0.5, 2.0, c)
    if affine:
        check_gradients(lambda x, g, b: F.batchnorm(x, mean, var, g, b, eps=1e-3), [x, g, b], seed=seed)
    else:
        check_gradients(lambda x: F.batchnorm(x, mean, var, eps=1e-3), [x], seed=seed)


def _batch_stats(x: Tensor) -> tuple[np.ndarray, np.ndarray]:
    axes = tuple(range(x.ndim - 1))
    return x.data.mean(axis=axes), x.data.var(axis=axes)


@given(shape=st.lists(st.integers(1, 3), min_size=1, max_size=3).map(tuple), seed=seeds, affine=st.booleans())
def test_batchnorm_batch_stats(shape, seed, affine):
    rng = rng_for(seed)
    c = int(rng.integers(1, 4))
    x = rng.standard_normal((2, *shape, c))  # at least two values per channel
    g, b = rng.standard_normal(c), rng.standard_normal(c)

    def f(x, g=None, b=None):
        mean, var = _batch_stats(x)  # recomputed from the perturbed input by the finite differences
        return F.batchnorm(x, mean, var, g, b, eps=1e-3, batch_stats=True)

    check_gradients(f, [x, g, b] if affine else [x], seed=seed, rtol=1e-4, atol=1e-5)


@pytest.mark.parametrize("n_axes", [1, 2])
@given(lead=st.lists(st.integers(1, 3), max_size=2), tail=st.tuples(st.integers(2, 4), st.integers(2, 3)), seed=seeds)
def test_layernorm(n_axes, lead, tail, seed):
    rng = rng_for(seed)
    shape = (*lead, *tail)
    norm = shape[len(shape) - n_axes :]
    x, g, b = rng.standard_normal(shape), rng.standard_normal(norm), rng.standard_normal(norm)
    check_gradients(lambda x, g, b: F.layernorm(x, g, b, eps=1e-3, n_axes=n_axes), [x, g, b], seed=seed, rtol=1e-4)
    check_gradients(lambda x: F.layernorm(x, eps=1e-3, n_axes=n_axes), [x], seed=seed, rtol=1e-4)
    check_gradients(lambda x, g: F.layernorm(x, g, None, eps=1e-3, n_axes=n_axes), [x, g], seed=seed, rtol=1e-4)
    check_gradients(lambda x, b: F.layernorm(x, None, b, eps=1e-3, n_axes=n_axes), [x, b], seed=seed, rtol=1e-4)


@pytest.mark.parametrize("n_axes", [1, 2])
@given(lead=st.lists(st.integers(1, 3), max_size=2), tail=st.tuples(st.integers(1, 4), st.integers(1, 3)), seed=seeds)
def test_rmsnorm(n_axes, lead, tail, seed):
    rng = rng_for(seed)
    shape = (*lead, *tail)
    norm = shape[len(shape) - n_axes :]
    x, g = rng.standard_normal(shape), rng.standard_normal(norm)
    check_gradients(lambda x, g: F.rmsnorm(x, g, eps=1e-3, n_axes=n_axes), [x, g], seed=seed, rtol=1e-4)
    check_gradients(lambda x: F.rmsnorm(x, eps=1e-3, n_axes=n_axes), [x], seed=seed, rtol=1e-4)


# -- functional: pooling --------------------------------------------------------------------------


@st.composite
def pool_args(draw, dilate: bool):
    kh, kw = draw(st.integers(1, 3)), draw(st.integers(1, 3))
    stride = (draw(st.integers(1, 3)), draw(st.integers(1, 3)))
    dilation = (draw(st.integers(1, 2)), draw(st.integers(1, 2))) if dilate else (1, 1)
    # padding at most half the kernel, as torch requires (so every window holds a real cell)
    padding = tuple((draw(st.integers(0, k // 2)), draw(st.integers(0, k // 2))) for k in (kh, kw))
    h = dilation[0] * (kh - 1) + 1 + draw(st.integers(0, 3))
    w = dilation[1] * (kw - 1) + 1 + draw(st.integers(0, 3))
    return (draw(st.integers(1, 2)), h, w, draw(st.integers(1, 2))), (kh, kw), stride, padding, dilation


@given(args=pool_args(dilate=True), seed=seeds)
def test_max_pool2d(args, seed):
    shape, kernel, stride, padding, dilation = args
    x = distinct(rng_for(seed), shape)
    check_gradients(lambda t: F.max_pool2d(t, kernel, stride, padding, dilation), [x], seed=seed)


@pytest.mark.parametrize("count_include_pad", [True, False])
@given(args=pool_args(dilate=False), seed=seeds)
def test_avg_pool2d(count_include_pad, args, seed):
    shape, kernel, stride, padding, _ = args
    x = rng_for(seed).standard_normal(shape)
    check_gradients(lambda t: F.avg_pool2d(t, kernel, stride, padding, count_include_pad), [x], seed=seed)


@given(shape=st.tuples(st.integers(1, 2), st.integers(1, 3), st.integers(1, 3), st.integers(1, 3)), seed=seeds)
def test_global_avg_pool(shape, seed):
    check_gradients(F.global_avg_pool, [rng_for(seed).standard_normal(shape)], seed=seed)


# -- functional: softmax and activations ----------------------------------------------------------


@pytest.mark.parametrize("op", [F.softmax, F.log_softmax])
@given(shape=shapes, seed=seeds, data=st.data())
def test_softmax_and_log_softmax(op, shape, seed, data):
    axis = data.draw(st.integers(-len(shape), len(shape) - 1))
    x = 2 * rng_for(seed).standard_normal(shape)
    check_gradients(lambda t: op(t, axis=axis), [x], seed=seed)


KINKS = {"relu": [0.0], "leaky_relu": [0.0], "elu": [0.0], "selu": [0.0], "relu6": [0.0, 6.0]}
KINKS |= {"hardswish": [-3.0, 3.0], "hardsigmoid": [-3.0, 3.0]}


@pytest.mark.parametrize("name", ACTIVATIONS)
@given(shape=shapes, seed=seeds, alpha=st.sampled_from([0.01, 0.3, 1.7]))
def test_activation(name, shape, seed, alpha):
    x = away_from(4 * rng_for(seed).standard_normal(shape), KINKS.get(name, []))
    check_gradients(lambda t: F.activation(t, name, alpha), [x], seed=seed, rtol=1e-5, atol=1e-6)


def test_activation_names_the_relu_shorthand():
    x = away_from(rng_for(1).standard_normal((4, 3)), [0.0])
    check_gradients(F.relu, [x])


# -- functional: attention, rope, dropout, embedding ----------------------------------------------


@st.composite
def attention_args(draw):
    b, h = draw(st.integers(1, 2)), draw(st.integers(1, 2))
    lq = draw(st.integers(1, 3))
    lk = lq + draw(st.integers(0, 2))
    d, dv = draw(st.integers(1, 3)), draw(st.integers(1, 3))
    return (b, h, lq, d), (b, h, lk, d), (b, h, lk, dv), draw(st.booleans()), draw(st.sampled_from(["none", "float"]))


@given(args=attention_args(), seed=seeds, scale=st.sampled_from([None, 0.7]))
def test_attention(args, seed, scale):
    qs, ks, vs, causal, mask_kind = args
    rng = rng_for(seed)
    q, k, v = rng.standard_normal(qs), rng.standard_normal(ks), rng.standard_normal(vs)
    mask = None if mask_kind == "none" else rng.standard_normal((1, 1, qs[2], ks[2]))

    def f(q, k, v):
        return F.attention(q, k, v, causal=causal, scale=scale, mask=mask)

    check_gradients(f, [q, k, v], seed=seed)


def test_attention_boolean_style_mask_hides_keys():
    rng = rng_for(3)
    q, k, v = rng.standard_normal((1, 2, 3, 2)), rng.standard_normal((1, 2, 4, 2)), rng.standard_normal((1, 2, 4, 3))
    mask = np.where(np.array([False, True, False, False]), -np.inf, 0.0)[None, None, None, :]
    grads = check_gradients(lambda q, k, v: F.attention(q, k, v, mask=mask), [q, k, v])
    assert np.all(grads[1][:, :, 1] == 0) and np.all(grads[2][:, :, 1] == 0)  # a hidden key gets nothing


@given(
    lead=st.lists(st.integers(1, 2), max_size=2),
    seq=st.integers(1, 4),
    dim=st.integers(1, 5),
    seed=seeds,
    data=st.data(),
)
def test_rope(lead, seq, dim, seed, data):
    x = rng_for(seed).standard_normal((*lead, seq, dim))
    positions = data.draw(st.none() | st.lists(st.integers(-5, 50), min_size=seq, max_size=seq))
    base = data.draw(st.sampled_from([10000.0, 100.0]))
    check_gradients(lambda t: F.rope(t, positions, base), [x], seed=seed)


@given(shape=shapes, seed=seeds, p=st.sampled_from([0.0, 0.2, 0.5, 0.9]), training=st.booleans())
def test_dropout_with_a_fixed_generator(shape, seed, p, training):
    x = rng_for(seed).standard_normal(shape)

    def f(t):
        return F.dropout(t, p, training=training, generator=np.random.default_rng(seed))

    (grad,) = check_gradients(f, [x], seed=seed)
    with np.errstate(invalid="ignore"):
        kept = F.dropout(np.ones(shape), p, training=training, generator=np.random.default_rng(seed)).data
    w = np.random.default_rng(seed).standard_normal(shape)
    np.testing.assert_allclose(grad, w * kept, rtol=1e-12)  # the mask times 1 / (1 - p)


@given(num=st.integers(1, 4), dim=st.integers(1, 3), idx_shape=shapes, seed=seeds)
def test_embedding(num, dim, idx_shape, seed):
    rng = rng_for(seed)
    idx = rng.integers(0, num, idx_shape)  # repeats are likely: their gradients add up
    table = rng.standard_normal((num, dim))
    check_gradients(lambda w: F.embedding(idx, w), [table], seed=seed)
