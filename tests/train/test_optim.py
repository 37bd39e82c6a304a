"""Optimizers and gradient clipping (axiom.train.optim) against torch.optim and torch.nn.utils.

Each optimizer trains the same small MLP regression (fixed data and initial weights) for 20
steps in axiom and in torch; the weights must agree after every step: tightly in float64 (where
the two autograds agree to rounding, so any difference is the update rule), and within float32
rounding in float32.
"""

from __future__ import annotations

import numpy as np
import pytest
from hypothesis import given
from hypothesis import strategies as st

from axiom import Dense, Sequential, Tensor, relu
from axiom.nn.init import manual_seed
from axiom.train import optim
from axiom.train.losses import mse_loss

torch = pytest.importorskip("torch")

STEPS = 20

CONFIGS = [
    ("SGD", {"lr": 0.05}),
    ("SGD", {"lr": 0.05, "momentum": 0.9}),
    ("SGD", {"lr": 0.05, "momentum": 0.9, "dampening": 0.3, "weight_decay": 0.01}),
    ("SGD", {"lr": 0.05, "momentum": 0.8, "nesterov": True, "weight_decay": 0.05}),
    ("Adam", {}),
    ("Adam", {"lr": 0.02, "betas": (0.8, 0.95), "eps": 1e-6, "weight_decay": 0.1}),
    ("Adam", {"lr": 0.02, "amsgrad": True}),
    ("AdamW", {"lr": 0.02}),
    ("AdamW", {"lr": 0.02, "betas": (0.5, 0.9), "weight_decay": 0.3, "amsgrad": True}),
    ("RMSprop", {}),
    ("RMSprop", {"lr": 0.005, "alpha": 0.9, "momentum": 0.7}),
    ("RMSprop", {"lr": 0.005, "centered": True, "weight_decay": 0.02}),
    ("RMSprop", {"lr": 0.002, "centered": True, "momentum": 0.5, "eps": 1e-4}),
]
IDS = [f"{name}-{'-'.join(f'{k}={v}' for k, v in kw.items()) or 'defaults'}" for name, kw in CONFIGS]


def problem(dtype):
    """A 3-8-2 ReLU MLP, its data, and the same network written in torch on copies of its weights."""
    rng = np.random.default_rng(0)
    x, y = rng.standard_normal((16, 3)).astype(dtype), rng.standard_normal((16, 2)).astype(dtype)
    manual_seed(0)
    model = Sequential(Dense(3, 8, relu), Dense(8, 2)).to(dtype)
    weights = [torch.tensor(p.numpy().copy(), requires_grad=True) for p in model.parameters()]

    def torch_loss():
        w1, b1, w2, b2 = weights
        out = torch.relu(torch.tensor(x) @ w1 + b1) @ w2 + b2
        return torch.nn.functional.mse_loss(out, torch.tensor(y))

    return model, weights, (lambda: mse_loss(model(Tensor(x)), Tensor(y))), torch_loss


def groups(params, split, lr):
    """All parameters in one group, or weights and biases in two groups with different learning rates."""
    if not split:
        return list(params)
    return [{"params": params[0::2]}, {"params": params[1::2], "lr": 3 * lr}]


def trajectories(name, kwargs, dtype, split=False):
    model, weights, loss, torch_loss = problem(dtype)
    lr = kwargs.get("lr", 1e-3)
    ours = getattr(optim, name)(groups(model.parameters(), split, lr), **kwargs)
    theirs = getattr(torch.optim, name)(groups(weights, split, lr), **kwargs)
    for step in range(STEPS):
        ours.zero_grad()
        loss().backward()
        ours.step()
        theirs.zero_grad()
        torch_loss().backward()
        theirs.step()
        yield step, [p.numpy() for p in model.parameters()], [w.detach().numpy() for w in weights]


@pytest.mark.parametrize("name, kwargs", CONFIGS, ids=IDS)
def test_trajectory_matches_torch_in_float64(name, kwargs):
    for step, ours, theirs in trajectories(name, kwargs, np.float64):
        for i, (a, b) in enumerate(zip(ours, theirs)):
            np.testing.assert_allclose(a, b, rtol=1e-9, atol=1e-11, err_msg=f"step {step}, parameter {i}")


@pytest.mark.parametrize("name, kwargs", CONFIGS, ids=IDS)
def test_trajectory_matches_torch_in_float32(name, kwargs):
    for step, ours, theirs in trajectories(name, kwargs, np.float32):
        for i, (a, b) in enumerate(zip(ours, theirs)):
            assert a.dtype == np.float32
            np.testing.assert_allclose(a, b, rtol=2e-4, atol=2e-5, err_msg=f"step {step}, parameter {i}")
    _, w0, _, _ = problem(np.float32)
    moved = any(not np.allclose(a, b.detach().numpy()) for a, b in zip(ours, w0))
    assert moved, "the optimizer did not change the weights"


@pytest.mark.parametrize("name, kwargs", [CONFIGS[1], CONFIGS[5], CONFIGS[8], CONFIGS[12]], ids=str)
def test_parameter_groups_with_their_own_learning_rates_match_torch(name, kwargs):
    for step, ours, theirs in trajectories(name, kwargs, np.float64, split=True):
        for i, (a, b) in enumerate(zip(ours, theirs)):
            np.testing.assert_allclose(a, b, rtol=1e-9, atol=1e-11, err_msg=f"step {step}, parameter {i}")


@pytest.mark.parametrize("name", ["SGD", "Adam", "AdamW", "RMSprop"])
def test_training_reduces_the_loss(name):
    model, _, loss, _ = problem(np.float32)
    opt = getattr(optim, name)(model.parameters(), lr=0.01)
    first = loss().item()
    for _ in range(100):
        opt.zero_grad()
        value = loss()
        value.backward()
        opt.step()
    assert value.item() < 0.8 * first


# -- behaviour -------------------------------------------------------------------------------------------


def test_parameters_without_gradient_are_skipped_and_get_no_state():
    used, unused = Tensor([1.0, 2.0], requires_grad=True), Tensor([5.0], requires_grad=True)
    opt = optim.Adam([used, unused], lr=0.1)
    (used * used).sum().backward()
    opt.step()
    assert unused.tolist() == [5.0] and unused not in opt.state
    assert opt.state[used]["step"] == 1 and not np.allclose(used.numpy(), [1.0, 2.0])


def test_step_records_nothing_on_the_tape_and_updates_in_place():
    model, _, loss, _ = problem(np.float32)
    arrays = [p.data for p in model.parameters()]
    opt = optim.SGD(model.parameters(), lr=0.1, momentum=0.9)
    loss().backward()
    opt.step()
    for p, arr in zip(model.parameters(), arrays):
        assert p.grad_fn is None and p.requires_grad and p.is_leaf
        assert p.data is arr  # the same array: views and layers that hold it see the update


def test_zero_grad_sets_none_or_zeros():
    w = Tensor([1.0, 2.0], requires_grad=True)
    opt = optim.SGD([w], lr=0.1)
    (w * w).sum().backward()
    opt.zero_grad(set_to_none=False)
    assert w.grad.tolist() == [0.0, 0.0]
    opt.zero_grad()
    assert w.grad is None


def test_closure_is_evaluated_with_gradients_on():
    from axiom.autograd import no_grad

    w = Tensor([3.0], requires_grad=True)
    opt = optim.SGD([w], lr=0.25)

    def closure():
        opt.zero_grad()
        loss = (w * w).sum()
        loss.backward()
        return loss

    with no_grad():
        loss = opt.step(closure)
    assert loss.item() == 9.0 and w.tolist() == [1.5]


@pytest.mark.parametrize("dtype", ["float16", "bfloat16"])
def test_low_precision_parameters_keep_their_dtype_and_float32_state(dtype):
    p16 = Tensor(np.array([0.5, -1.25, 2.0]), dtype=dtype, requires_grad=True)
    p32 = Tensor(p16.numpy().astype(np.float32), requires_grad=True)
    grad = np.array([0.1, -0.3, 0.7], np.float32)
    p16.grad, p32.grad = Tensor(grad.astype(p16.dtype)), Tensor(grad.astype(p16.dtype).astype(np.float32))
    a, b = optim.Adam([p16], lr=0.1), optim.Adam([p32], lr=0.1)
    a.step()
    b.step()
    assert p16.dtype == np.dtype(dtype) and a.state[p16]["exp_avg"].dtype == np.float32
    np.testing.assert_array_equal(p16.numpy(), p32.numpy().astype(p16.dtype))


def test_float64_parameters_keep_float64_state():
    w = Tensor(np.ones(3), requires_grad=True)
    opt = optim.RMSprop([w], momentum=0.5, centered=True)
    (w * w).sum().backward()
    opt.step()
    assert {k: v.dtype for k, v in opt.state[w].items() if k != "step"} == {
        "square_avg": np.float64,
        "momentum_buffer": np.float64,
        "grad_avg": np.float64,
    }


def test_replacing_parameters_before_the_first_step_uses_the_new_ones():
    """Mixed precision: the model holds float16 weights, the optimizer steps float32 master copies."""
    model, _, loss, _ = problem(np.float32)
    opt = optim.AdamW(model.parameters(), lr=0.01)
    model.to("float16")
    masters = [Tensor(p.numpy().astype(np.float32), requires_grad=True) for p in model.parameters()]
    opt.param_groups[0]["params"] = masters
    for master in masters:
        master.grad = Tensor(np.ones(master.shape, np.float32))
    before = [p.numpy().copy() for p in model.parameters()]
    opt.step()
    assert set(map(id, opt.state)) == set(map(id, masters))
    for p, old, master in zip(model.parameters(), before, masters):
        np.testing.assert_array_equal(p.numpy(), old)  # the half-precision copies are not touched
        assert master.dtype == np.float32 and not np.allclose(master.numpy(), old.astype(np.float32))
    assert sorted(opt.state_dict()["state"]) == [0, 1, 2, 3]


def test_lr_property_reads_the_first_group_and_sets_all():
    a, b = Tensor([1.0], requires_grad=True), Tensor([1.0], requires_grad=True)
    opt = optim.SGD([{"params": [a]}, {"params": [b], "lr": 0.5}], lr=0.1)
    assert opt.lr == 0.1
    opt.lr = 0.01
    assert [g["lr"] for g in opt.param_groups] == [0.01, 0.01]
    with pytest.raises(ValueError, match="lr must be >= 0"):
        opt.lr = -1.0


@pytest.mark.parametrize("name, kwargs", [CONFIGS[3], CONFIGS[6], CONFIGS[12]], ids=str)
def test_state_dict_round_trip_resumes_the_same_trajectory(name, kwargs):
    model, _, loss, _ = problem(np.float64)
    opt = getattr(optim, name)(model.parameters(), **kwargs)

    def train(opt, steps):
        for _ in range(steps):
            opt.zero_grad()
            loss().backward()
            opt.step()

    train(opt, 5)
    saved_weights = [p.numpy().copy() for p in model.parameters()]
    saved = opt.state_dict()
    train(opt, 5)
    expected = [p.numpy().copy() for p in model.parameters()]
    for p, w in zip(model.parameters(), saved_weights):
        p.data[...] = w
    fresh = getattr(optim, name)(model.parameters(), lr=123.0)
    fresh.load_state_dict(saved)
    assert fresh.lr == opt.lr != 123.0  # hyper-parameters come from the saved state
    train(fresh, 5)
    for p, e in zip(model.parameters(), expected):
        np.testing.assert_array_equal(p.numpy(), e)


def test_state_dict_uses_torch_names():
    model, weights, loss, torch_loss = problem(np.float64)
    for name, kwargs in [("SGD", {"momentum": 0.9}), ("Adam", {"amsgrad": True}), ("RMSprop", {"centered": True})]:
        ours = getattr(optim, name)(model.parameters(), **kwargs)
        theirs = getattr(torch.optim, name)(weights, **kwargs)
        loss().backward()
        torch_loss().backward()
        ours.step()
        theirs.step()
        a, b = ours.state_dict(), theirs.state_dict()
        assert set(a["state"]) == set(b["state"]) and set(a["state"][0]) == set(b["state"][0])
        assert set(a["param_groups"][0]) <= set(b["param_groups"][0])


def test_load_state_dict_refuses_a_mismatched_state():
    w, v = Tensor(np.ones(3), requires_grad=True), Tensor(np.ones(2), requires_grad=True)
    opt = optim.Adam([w], lr=0.1)
    (w * w).sum().backward()
    opt.step()
    saved = opt.state_dict()
    with pytest.raises(ValueError, match="saved state has 1 parameter groups; this optimizer has 2"):
        optim.Adam([{"params": [w]}, {"params": [v]}]).load_state_dict(saved)
    with pytest.raises(ValueError, match="group 0 has 1 parameters in the saved state and 2 here"):
        optim.Adam([w, v]).load_state_dict(saved)
    with pytest.raises(ValueError, match=r"'exp_avg' of parameter 0 has shape \(3,\); the parameter has shape \(2,\)"):
        optim.Adam([v]).load_state_dict(saved)
    with pytest.raises(ValueError, match="expected a dict with 'state' and 'param_groups'"):
        opt.load_state_dict({"state": {}})


# -- validation ------------------------------------------------------------------------------------------


def W():
    return [Tensor([1.0], requires_grad=True)]


@pytest.mark.parametrize(
    "make, match",
    [
        (lambda: optim.SGD(W(), lr=-0.1), "SGD: lr must be >= 0, got -0.1"),
        (lambda: optim.SGD(W(), lr=float("nan")), "lr must be >= 0, got nan"),
        (lambda: optim.SGD(W(), lr="fast"), "lr must be a number, got 'fast'"),
        (lambda: optim.SGD(W(), momentum=-0.5), "momentum must be >= 0"),
        (lambda: optim.SGD(W(), nesterov=True), "nesterov=True needs momentum > 0 and dampening = 0"),
        (lambda: optim.SGD(W(), momentum=0.9, dampening=0.1, nesterov=True), "got momentum=0.9, dampening=0.1"),
        (lambda: optim.Adam(W(), betas=(0.9, 1.0)), r"betas\[1\] must be in \[0, 1\), got 1.0"),
        (lambda: optim.Adam(W(), betas=(-0.1, 0.9)), r"betas\[0\] must be in \[0, 1\)"),
        (lambda: optim.AdamW(W(), betas=0.9), "AdamW: betas must be two numbers"),
        (lambda: optim.Adam(W(), eps=-1e-8), "eps must be >= 0"),
        (lambda: optim.AdamW(W(), weight_decay=-0.01), "weight_decay must be >= 0"),
        (lambda: optim.RMSprop(W(), alpha=1.5), r"alpha must be in \[0, 1\], got 1.5"),
        (lambda: optim.Adam([]), "empty parameter list"),
        (lambda: optim.Adam([{"params": W(), "lr": -1.0}]), "lr must be >= 0"),
    ],
)
def test_bad_hyper_parameters_raise_value_error(make, match):
    with pytest.raises((ValueError, TypeError), match=match):
        make()


def test_bad_parameters_are_refused():
    w = Tensor([1.0], requires_grad=True)
    with pytest.raises(TypeError, match="can only optimize Tensors, got ndarray"):
        optim.SGD([np.ones(2)])
    with pytest.raises(TypeError, match="not a set"):
        optim.SGD({w})
    with pytest.raises(ValueError, match="only optimize leaf tensors"):
        optim.SGD([w * 2])
    with pytest.raises(ValueError, match="more than one parameter group"):
        optim.SGD([{"params": [w]}, {"params": [w]}])
    with pytest.raises(TypeError, match="floating tensors, got one of dtype int64"):
        optim.SGD([Tensor([1, 2])])
    assert len(optim.SGD([w, w]).param_groups[0]["params"]) == 1  # a tied weight is stepped once
    assert len(optim.SGD(Sequential(Dense(2, 2))).param_groups[0]["params"]) == 2  # a model gives its parameters


# -- gradient clipping -----------------------------------------------------------------------------------


def with_grads(arrays, framework):
    if framework == "axiom":
        params = [Tensor(np.zeros_like(a), requires_grad=True) for a in arrays]
        for p, a in zip(params, arrays):
            p.grad = Tensor(a.copy())
    else:
        params = [torch.zeros(a.shape, dtype=torch.float64 if a.dtype == np.float64 else torch.float32) for a in arrays]
        for p, a in zip(params, arrays):
            p.requires_grad_()
            p.grad = torch.tensor(a.copy())
    return params


@given(
    shapes=st.lists(st.lists(st.integers(1, 4), min_size=1, max_size=2).map(tuple), min_size=1, max_size=4),
    seed=st.integers(0, 2**32 - 1),
    norm_type=st.sampled_from([1.0, 2.0, 3.5, float("inf"), "inf"]),
    max_norm=st.sampled_from([0.0, 0.1, 1.0, 5.0, 100.0]),
    dtype=st.sampled_from([np.float32, np.float64]),
)
def test_clip_grad_norm_matches_torch(shapes, seed, norm_type, max_norm, dtype):
    rng = np.random.default_rng(seed)
    arrays = [(rng.standard_normal(s) * 2).astype(dtype) for s in shapes]
    ours, theirs = with_grads(arrays, "axiom"), with_grads(arrays, "torch")
    total = optim.clip_grad_norm_(ours, max_norm, norm_type=norm_type)
    expected = torch.nn.utils.clip_grad_norm_(theirs, max_norm, norm_type=float(norm_type))
    assert isinstance(total, float)
    tol = 1e-12 if dtype == np.float64 else 2e-6
    np.testing.assert_allclose(total, expected.item(), rtol=tol)
    for p, t in zip(ours, theirs):
        assert p.grad.dtype == dtype
        np.testing.assert_allclose(p.grad.numpy(), t.grad.numpy(), rtol=tol, atol=1e-30)


def test_clip_grad_norm_edge_cases():
    # parameters without gradients are ignored; none at all gives a norm of 0
    assert optim.clip_grad_norm_([Tensor([1.0], requires_grad=True)], 1.0) == 0.0
    # float16 gradients: the norm (here 600) is measured in float32, not overflowed
    (p,) = with_grads([np.full(4, 300.0, np.float16)], "axiom")
    assert optim.clip_grad_norm_(p, 6.0) == 600.0
    assert p.grad.dtype == np.float16 and np.allclose(p.grad.numpy().astype(np.float32), 3.0, rtol=1e-3)
    # a non-finite norm: an error when asked for, otherwise non-finite gradients as in torch
    ours = with_grads([np.array([1.0, np.inf])], "axiom")
    with pytest.raises(RuntimeError, match="total norm of order 2.0 of the gradients is inf"):
        optim.clip_grad_norm_(ours, 1.0, error_if_nonfinite=True)
    theirs = with_grads([np.array([1.0, np.inf])], "torch")
    optim.clip_grad_norm_(ours, 1.0)
    torch.nn.utils.clip_grad_norm_(theirs, 1.0)
    np.testing.assert_array_equal(ours[0].grad.numpy(), theirs[0].grad.numpy())
    with pytest.raises(ValueError, match="norm_type must be > 0"):
        optim.clip_grad_norm_(ours, 1.0, norm_type=0)
    with pytest.raises(ValueError, match="max_norm must be >= 0"):
        optim.clip_grad_norm_(ours, -1.0)


@given(seed=st.integers(0, 2**32 - 1), clip=st.sampled_from([0.0, 0.3, 1.0, 10.0]))
def test_clip_grad_value_matches_torch(seed, clip):
    rng = np.random.default_rng(seed)
    arrays = [rng.standard_normal((3, 2)), rng.standard_normal(4)]
    ours, theirs = with_grads(arrays, "axiom"), with_grads(arrays, "torch")
    assert optim.clip_grad_value_(ours, clip) is None
    torch.nn.utils.clip_grad_value_(theirs, clip)
    for p, t in zip(ours, theirs):
        np.testing.assert_array_equal(p.grad.numpy(), t.grad.numpy())
    with pytest.raises(ValueError, match="clip_value must be >= 0"):
        optim.clip_grad_value_(ours, -1.0)
