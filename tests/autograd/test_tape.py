"""The tape itself: grad modes, detach, accumulation, retain_graph, errors, diamonds, threads."""

from __future__ import annotations

import threading

import numpy as np
import pytest

from axiom import Dense, Sequential, Tensor, relu
from axiom import functional as F
from axiom.autograd import backward, enable_grad, is_grad_enabled, no_grad, record


def leaf(values, dtype=np.float64) -> Tensor:
    return Tensor(np.asarray(values, dtype), requires_grad=True)


# -- grad modes -----------------------------------------------------------------------------------


def test_no_grad_context_records_nothing_and_restores_the_mode():
    w = leaf([1.0, 2.0])
    with no_grad():
        assert not is_grad_enabled()
        y = F.relu(w * 3 + 1)
    assert is_grad_enabled()
    assert not y.requires_grad and y.grad_fn is None


def test_no_grad_restores_the_mode_after_an_exception():
    with pytest.raises(ZeroDivisionError), no_grad():
        _ = 1 / 0
    assert is_grad_enabled()


@pytest.mark.parametrize("decorator", [no_grad, no_grad()], ids=["bare", "called"])
def test_no_grad_as_a_decorator(decorator):
    w = leaf([2.0])

    @decorator
    def evaluate(t: Tensor) -> Tensor:
        """Doubles t."""
        return t * 2

    y = evaluate(w)
    assert not y.requires_grad and y.grad_fn is None
    assert evaluate.__name__ == "evaluate" and evaluate.__doc__ == "Doubles t."
    assert is_grad_enabled() and (w * 2).requires_grad


def test_enable_grad_inside_no_grad_and_as_a_decorator():
    w = leaf([1.0])

    @enable_grad()
    def recorded(t: Tensor) -> Tensor:
        return t * 2

    with no_grad():
        with enable_grad():
            assert (w * 2).requires_grad
        assert not (w * 2).requires_grad
        assert recorded(w).requires_grad
        assert not is_grad_enabled()


def test_one_instance_can_be_nested():
    mode = no_grad()
    with mode:
        with mode, enable_grad():
            assert is_grad_enabled()
        assert not is_grad_enabled()
    assert is_grad_enabled()


def test_grad_mode_is_per_thread():
    seen: dict[str, bool] = {}
    inside, release = threading.Event(), threading.Event()

    def other() -> None:
        seen["starts with"] = is_grad_enabled()  # not the main thread's no_grad
        with no_grad():
            inside.set()
            release.wait(5)
            seen["inside"] = is_grad_enabled()
        seen["after"] = is_grad_enabled()

    with no_grad():
        thread = threading.Thread(target=other)
        thread.start()
        inside.wait(5)
    # the main thread left no_grad while the other thread is still inside its own
    assert is_grad_enabled() and (leaf([1.0]) * 2).requires_grad
    release.set()
    thread.join(5)
    assert seen == {"starts with": True, "inside": False, "after": True}


# -- nothing recorded without a reason ------------------------------------------------------------


def test_no_tape_when_nothing_requires_grad():
    x = Tensor(np.ones((2, 3)))
    outs = [x + 1, x * x, (x @ x.T), x.sum(), x[0], x.exp(), F.softmax(x), F.relu(x), F.layernorm(x)]
    for y in outs:
        assert not y.requires_grad and y.grad_fn is None


def test_constants_do_not_get_gradients():
    w, c = leaf([1.0, 2.0]), Tensor(np.array([3.0, 4.0]))
    (w * c).sum().backward()
    assert c.grad is None and w.grad.tolist() == [3.0, 4.0]


def test_integer_tensors_cannot_require_grad():
    with pytest.raises(TypeError, match="only floating tensors can require gradients.*int64"):
        Tensor([1, 2], requires_grad=True)
    with pytest.raises(TypeError, match="int32"):
        Tensor(np.array([1], np.int32)).requires_grad_()
    with pytest.raises(TypeError, match="bool"):
        Tensor(np.array([True])).requires_grad = True
    assert not (leaf([1.0, -1.0]) > 0).requires_grad  # comparisons give bool tensors outside the tape


def test_record_skips_the_node_without_grad_inputs():
    y = record(np.ones(2), [Tensor(np.ones(2)), None], lambda g: (g, None), "custom")
    assert y.grad_fn is None and not y.requires_grad


# -- detach, accumulation, zero_grad --------------------------------------------------------------


def test_detach_cuts_the_tape_and_shares_data():
    w = leaf([1.0, 2.0])
    y = w * 3
    d = y.detach()
    assert not d.requires_grad and d.grad_fn is None and d.data is y.data
    (y * d).sum().backward()  # d is a constant: d/dw (3w * 3w_const) = 3 * d
    assert w.grad.tolist() == [9.0, 18.0]


def test_gradients_accumulate_over_backward_calls_until_zero_grad():
    w = leaf([1.0, 2.0])
    (w * w).sum().backward()
    (w * 3).sum().backward()
    assert w.grad.tolist() == [5.0, 7.0]
    w.zero_grad()
    assert w.grad is None
    (w * 3).sum().backward()
    assert w.grad.tolist() == [3.0, 3.0]


def test_the_gradient_does_not_alias_an_upstream_array():
    w = leaf([1.0, 2.0])
    seed = np.array([1.0, 1.0])
    (w + 0).backward(seed)
    seed[0] = 100.0
    assert w.grad.tolist() == [1.0, 1.0]


def test_layer_zero_grad_forgets_every_parameter_gradient():
    model = Sequential(Dense(3, 4, relu), Dense(4, 2))
    x = np.random.default_rng(0).standard_normal((5, 3)).astype(np.float32)
    model(x).sum().backward()
    first = [p.grad.data.copy() for p in model.parameters()]
    assert all(p.grad is not None for p in model.parameters())
    model(x).sum().backward()
    for p, g in zip(model.parameters(), first):
        np.testing.assert_allclose(p.grad.data, 2 * g, rtol=1e-6)
    model.zero_grad()
    assert all(p.grad is None for p in model.parameters())


# -- retain_graph and errors ----------------------------------------------------------------------


def test_retain_graph_allows_a_second_backward():
    w = leaf([1.0, 2.0])
    loss = (w * w).sum()
    loss.backward(retain_graph=True)
    loss.backward()
    assert w.grad.tolist() == [4.0, 8.0]
    with pytest.raises(RuntimeError, match="already freed.*retain_graph=True"):
        loss.backward()


def test_second_backward_without_retain_graph_raises_clearly():
    w = leaf([1.0, 2.0])
    loss = (w.exp() * 2).sum()
    loss.backward()
    with pytest.raises(RuntimeError, match="graph was already freed"):
        loss.backward()


def test_backward_on_a_non_scalar_needs_grad():
    y = leaf([[1.0, 2.0]]) * 2
    with pytest.raises(RuntimeError, match=r"one-element output.*shape \(1, 2\).*grad="):
        y.backward()
    with pytest.raises(ValueError, match=r"grad has shape \(2,\); expected the output's shape \(1, 2\)"):
        y.backward(np.ones(2))
    y.backward(Tensor(np.ones((1, 2))))


def test_backward_on_a_tensor_without_grad_raises():
    with pytest.raises(RuntimeError, match="does not require a gradient"):
        Tensor([1.0]).sum().backward()
    with no_grad():
        y = leaf([1.0]) * 2
    with pytest.raises(RuntimeError, match="no_grad"):
        y.backward()


def test_a_rule_returning_the_wrong_number_of_gradients_is_named():
    w = leaf([1.0])
    y = record(w.data * 2, [w], lambda g: (g, g), "broken")
    with pytest.raises(RuntimeError, match="broken: backward rule returned 2 gradients"):
        y.backward(np.ones(1))
    y = record(w.data * 2, [w], lambda g: (np.ones(3),), "misshapen")
    with pytest.raises(RuntimeError, match=r"misshapen: .*shape \(3,\) for \(1,\)"):
        backward(y, np.ones(1))


# -- graph structure ------------------------------------------------------------------------------


def test_diamond_graph_sums_both_paths():
    x = leaf([0.5, -1.0, 2.0])
    y = x * 2  # used twice below
    z = (y * y + y.exp()).sum()
    z.backward()
    xv = x.data
    np.testing.assert_allclose(x.grad.data, 8 * xv + 2 * np.exp(2 * xv), rtol=1e-12)


def test_tensor_used_twice_in_one_op_and_across_layers():
    x = leaf([[1.0, 2.0], [3.0, 4.0]])
    (x @ x).sum().backward()  # d/dx sum(x @ x) = 1 x^T + x^T 1
    ones = np.ones((2, 2))
    np.testing.assert_allclose(x.grad.data, ones @ x.data.T + x.data.T @ ones)


def test_retain_grad_keeps_an_intermediate_gradient():
    x = leaf([1.0, 2.0])
    y = (x * 3).retain_grad()
    (y * y).sum().backward()
    assert y.grad.tolist() == [6.0, 12.0] and x.grad.tolist() == [18.0, 36.0]


def test_a_long_chain_does_not_recurse():
    x = leaf([1.0])
    y = x
    for _ in range(5000):
        y = y * 1.0001
    y.sum().backward()
    np.testing.assert_allclose(x.grad.data, [1.0001**5000], rtol=1e-9)


def test_gradient_dtype_follows_the_parameter():
    w = leaf([1.0, 2.0], np.float32)
    (w * np.float64(2.0)).sum().backward()  # the product is float64 (NumPy promotion)
    assert w.grad.dtype == np.float32 and w.grad.tolist() == [2.0, 2.0]


@pytest.mark.parametrize("dtype,rtol", [("float16", 2e-2), ("bfloat16", 1e-1)])
def test_low_precision_backward_keeps_dtypes_and_tracks_float32(dtype, rtol):
    from axiom import BatchNorm, Conv2d, Flatten, LayerNorm, MaxPool2d, manual_seed

    def model():
        manual_seed(0)
        m = Sequential(
            Conv2d(1, 4, 3, padding=1, activation="relu"),
            BatchNorm(4),
            MaxPool2d(2),
            Flatten(),
            LayerNorm(16),
            Dense(16, 3, "tanh"),
        )
        m(np.zeros((2, 4, 4, 1), np.float32))  # build
        return m.train()

    x = np.random.default_rng(0).standard_normal((4, 4, 4, 1))
    grads = {}
    for dt in ("float32", dtype):
        m = model().to(dt)
        m(Tensor(x.astype(dt))).sum().backward()
        for name, p in m.named_parameters():
            assert p.grad is not None and p.grad.dtype == p.dtype, name
        grads[dt] = {n: p.grad.data.astype(np.float32) for n, p in m.named_parameters()}
    for name, g32 in grads["float32"].items():
        scale = float(np.abs(g32).max()) + 1e-3
        np.testing.assert_allclose(grads[dtype][name], g32, rtol=rtol, atol=rtol * scale, err_msg=name)


def test_conv_weight_gradient_without_an_input_gradient_is_the_same():
    """A first layer skips d x (conv2d_backward_weight alone): its weight gradients are unchanged."""
    from axiom import Conv2d

    rng = np.random.default_rng(0)
    layer = Conv2d(3, 4, (3, 3), stride=2, padding="same").to("float64")
    x = rng.standard_normal((2, 7, 7, 3))
    g = rng.standard_normal(layer(x).shape)
    layer(Tensor(x)).backward(g)
    dw, db = layer.weight.grad.numpy().copy(), layer.bias.grad.numpy().copy()
    layer.zero_grad()
    xt = Tensor(x, requires_grad=True)
    layer(xt).backward(g)
    np.testing.assert_allclose(layer.weight.grad.numpy(), dw, rtol=1e-12)
    np.testing.assert_allclose(layer.bias.grad.numpy(), db, rtol=1e-12)
    assert xt.grad is not None and xt.grad.shape == x.shape
