"""Helpers shared by the autograd tests: central finite differences and input generators.

``check_gradients(f, arrays)`` runs ``f`` on float64 Tensors that require gradients, seeds the
backward pass with a random upstream gradient ``w`` (i.e. differentiates ``sum(w * f(x))``)
and compares every input's ``.grad`` with central differences of the same scalar, computed
element by element with the tape off.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence

import numpy as np

from axiom import Tensor
from axiom.autograd import no_grad

EPS = 1e-6


def _scalar(f: Callable[..., Tensor], arrays: Sequence[np.ndarray], w: np.ndarray) -> float:
    with no_grad():
        out = f(*(Tensor(a) for a in arrays)).data
    return float(np.sum(w * out))


def numeric_gradients(
    f: Callable[..., Tensor], arrays: Sequence[np.ndarray], w: np.ndarray, wrt: Sequence[int]
) -> list[np.ndarray]:
    """Central differences of ``sum(w * f(*arrays))`` with respect to the arrays numbered in ``wrt``."""
    grads = []
    for i in wrt:
        base = arrays[i]
        num = np.zeros_like(base)
        for idx in np.ndindex(base.shape):
            plus, minus = base.copy(), base.copy()
            plus[idx] += EPS
            minus[idx] -= EPS
            args_p = [plus if j == i else a for j, a in enumerate(arrays)]
            args_m = [minus if j == i else a for j, a in enumerate(arrays)]
            num[idx] = (_scalar(f, args_p, w) - _scalar(f, args_m, w)) / (2 * EPS)
        grads.append(num)
    return grads


def check_gradients(
    f: Callable[..., Tensor],
    arrays: Sequence[np.ndarray],
    seed: int = 0,
    wrt: Sequence[int] | None = None,
    rtol: float = 1e-5,
    atol: float = 1e-6,
) -> list[np.ndarray]:
    """Assert the tape's gradients of ``sum(w * f(*arrays))`` equal central differences; returns them.

    Only the arrays numbered in ``wrt`` (default: all) require gradients; the others are constants.
    """
    arrays = [np.asarray(a, np.float64) for a in arrays]
    wrt = list(range(len(arrays))) if wrt is None else list(wrt)
    tensors = [Tensor(a, requires_grad=i in wrt) for i, a in enumerate(arrays)]
    out = f(*tensors)
    assert out.dtype == np.float64, f"the op changed float64 to {out.dtype}"
    w = np.random.default_rng(seed).standard_normal(out.shape)
    out.backward(w)
    expected = numeric_gradients(f, arrays, w, wrt)
    got = []
    for i, num in zip(wrt, expected):
        t = tensors[i]
        assert t.grad is not None, f"input {i} got no gradient"
        assert t.grad.shape == arrays[i].shape and t.grad.dtype == np.float64
        np.testing.assert_allclose(t.grad.data, num, rtol=rtol, atol=atol, err_msg=f"gradient of input {i}")
        got.append(t.grad.data)
    return got


def away_from(x: np.ndarray, kinks: Sequence[float], gap: float = 0.05) -> np.ndarray:
    """``x`` with every value within ``gap`` of a kink moved ``2 * gap`` further up (kinks are far apart)."""
    x = np.array(x, np.float64)
    for k in kinks:
        near = np.abs(x - k) < gap
        x[near] += 2 * gap
    return x


def distinct(rng: np.random.Generator, shape: tuple[int, ...], scale: float = 1.0) -> np.ndarray:
    """Random values with no two closer than ``0.1 * scale`` (no ties for max, min or pooling)."""
    n = int(np.prod(shape))
    values = (np.arange(n) - n / 2) * 0.1 * scale + rng.uniform(0, 0.02 * scale, n)
    return rng.permutation(values).reshape(shape)


def check_layer_gradients(layer, x: np.ndarray, seed: int = 0, rtol: float = 1e-5, atol: float = 1e-6) -> None:
    """Like :func:`check_gradients` for a layer: the input's and every parameter's gradient.

    Parameters are perturbed in place (``param.data[idx] += EPS``) for the finite differences.
    """
    x = np.asarray(x, np.float64)
    layer.zero_grad()
    xt = Tensor(x, requires_grad=True)
    out = layer(xt)
    w = np.random.default_rng(seed).standard_normal(out.shape)
    out.backward(w)

    def scalar() -> float:
        with no_grad():
            return float(np.sum(w * layer(Tensor(x)).data))

    (num_x,) = numeric_gradients(lambda t: layer(t), [x], w, [0])
    np.testing.assert_allclose(xt.grad.data, num_x, rtol=rtol, atol=atol, err_msg="input gradient")
    for name, p in layer.named_parameters():
        num = np.zeros_like(p.data)
        for idx in np.ndindex(p.shape):
            keep = p.data[idx]
            p.data[idx] = keep + EPS
            up = scalar()
            p.data[idx] = keep - EPS
            down = scalar()
            p.data[idx] = keep
            num[idx] = (up - down) / (2 * EPS)
        assert p.grad is not None, f"{name} got no gradient"
        np.testing.assert_allclose(p.grad.data, num, rtol=rtol, atol=atol, err_msg=f"gradient of {name}")


def c_backend():
    """The C backend, or skip (fail under ``AXIOM_REQUIRE_NATIVE=1``) when it is not built."""
    import os

    import pytest

    try:
        from axiom.backends.native import CBackend

        return CBackend()
    except (ImportError, OSError) as err:
        if os.environ.get("AXIOM_REQUIRE_NATIVE", "") == "1":
            pytest.fail(f"the C backend is not built: {err}")
        pytest.skip(f"the C backend is not built: {err}")
