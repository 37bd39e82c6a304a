"""Learning-rate schedulers (axiom.train.schedulers): the lr sequences equal torch.optim.lr_scheduler's.

Each schedule runs on an optimizer with two parameter groups (different base learning rates)
in axiom and in torch, well past its interesting points (milestones, T_max, the end of warm-up),
and the learning rates must agree at every step.
"""

from __future__ import annotations

import numpy as np
import pytest
from hypothesis import given
from hypothesis import strategies as st

from axiom import Tensor
from axiom.train import schedulers as S
from axiom.train.optim import SGD, Adam

torch = pytest.importorskip("torch")
TS = torch.optim.lr_scheduler

LRS = (0.1, 0.03)


def optimizers():
    ours = SGD([{"params": [Tensor([1.0], requires_grad=True)], "lr": lr} for lr in LRS], lr=1.0)
    theirs = torch.optim.SGD([{"params": [torch.zeros(1, requires_grad=True)], "lr": lr} for lr in LRS], lr=1.0)
    return ours, theirs


def assert_same_sequence(make_ours, make_theirs, steps):
    opt, topt = optimizers()
    ours, theirs = make_ours(opt), make_theirs(topt)
    for step in range(steps):
        expected = theirs.get_last_lr()
        np.testing.assert_allclose(ours.get_last_lr(), expected, rtol=1e-10, atol=1e-15, err_msg=f"step {step}")
        assert [g["lr"] for g in opt.param_groups] == ours.get_last_lr()
        assert ours.lr_at(step) == ours.get_last_lr()
        opt.step()
        topt.step()
        ours.step()
        theirs.step()


CASES = {
    "step": (lambda o: S.StepLR(o, step_size=3, gamma=0.5), lambda o: TS.StepLR(o, step_size=3, gamma=0.5)),
    "step-every": (lambda o: S.StepLR(o, 1, gamma=0.9), lambda o: TS.StepLR(o, 1, gamma=0.9)),
    "multistep": (
        lambda o: S.MultiStepLR(o, milestones=[7, 2, 5, 5], gamma=0.3),
        lambda o: TS.MultiStepLR(o, milestones=[7, 2, 5, 5], gamma=0.3),
    ),
    "exponential": (lambda o: S.ExponentialLR(o, gamma=0.95), lambda o: TS.ExponentialLR(o, gamma=0.95)),
    "cosine": (
        lambda o: S.CosineAnnealingLR(o, T_max=10, eta_min=0.001),
        lambda o: TS.CosineAnnealingLR(o, T_max=10, eta_min=0.001),
    ),
    "cosine-T1": (lambda o: S.CosineAnnealingLR(o, T_max=1), lambda o: TS.CosineAnnealingLR(o, T_max=1)),
    "linear-up": (
        lambda o: S.LinearLR(o, start_factor=0.25, total_iters=5),
        lambda o: TS.LinearLR(o, start_factor=0.25, total_iters=5),
    ),
    "linear-down": (
        lambda o: S.LinearLR(o, start_factor=1.0, end_factor=0.1, total_iters=8),
        lambda o: TS.LinearLR(o, start_factor=1.0, end_factor=0.1, total_iters=8),
    ),
    "warmup": (
        lambda o: S.LinearWarmup(o, warmup_steps=6, start_factor=0.1),
        lambda o: TS.LinearLR(o, start_factor=0.1, end_factor=1.0, total_iters=6),
    ),
    "lambda": (
        lambda o: S.LambdaLR(o, [lambda t: 0.9**t, lambda t: 1 / (1 + t)]),
        lambda o: TS.LambdaLR(o, [lambda t: 0.9**t, lambda t: 1 / (1 + t)]),
    ),
    "sequential": (
        lambda o: S.SequentialLR(
            o, [S.LinearWarmup(o, 3, start_factor=0.2), S.ExponentialLR(o, 0.8), S.StepLR(o, 2)], milestones=[3, 7]
        ),
        lambda o: TS.SequentialLR(
            o, [TS.LinearLR(o, 0.2, total_iters=3), TS.ExponentialLR(o, 0.8), TS.StepLR(o, 2)], milestones=[3, 7]
        ),
    ),
}


@pytest.mark.parametrize("case", list(CASES))
def test_schedule_matches_torch(case):
    ours, theirs = CASES[case]
    assert_same_sequence(ours, theirs, steps=35)  # past every milestone, and past T_max (cosine rises again)


@given(
    warmup=st.integers(1, 6),
    decay=st.integers(1, 12),
    eta_min=st.sampled_from([0.0, 1e-4, 0.01]),
    start=st.sampled_from([0.01, 0.1, 0.5, 1.0]),
)
def test_warmup_cosine_matches_torch_sequential_linear_then_cosine(warmup, decay, eta_min, start):
    total = warmup + decay
    assert_same_sequence(
        lambda o: S.WarmupCosine(o, warmup_steps=warmup, total_steps=total, eta_min=eta_min, start_factor=start),
        lambda o: TS.SequentialLR(
            o,
            [TS.LinearLR(o, start, 1.0, total_iters=warmup), TS.CosineAnnealingLR(o, T_max=decay, eta_min=eta_min)],
            milestones=[warmup],
        ),
        steps=total + 1,
    )


def test_warmup_cosine_holds_eta_min_after_total_steps_and_can_skip_warmup():
    opt, topt = optimizers()
    sched = S.WarmupCosine(opt, warmup_steps=2, total_steps=5, eta_min=0.001)
    assert [sched.lr_at(t)[0] for t in (5, 6, 100)] == [0.001, 0.001, 0.001]
    no_warmup = S.WarmupCosine(optimizers()[0], warmup_steps=0, total_steps=10, eta_min=0.001)
    cosine = TS.CosineAnnealingLR(topt, T_max=10, eta_min=0.001)
    for _ in range(11):
        np.testing.assert_allclose(no_warmup.get_last_lr(), cosine.get_last_lr(), rtol=1e-12)
        no_warmup.step()
        topt.step()
        cosine.step()


@given(step_size=st.integers(1, 5), gamma=st.floats(0.05, 1.0), t_max=st.integers(1, 9))
def test_step_and_cosine_match_torch_for_drawn_settings(step_size, gamma, t_max):
    assert_same_sequence(lambda o: S.StepLR(o, step_size, gamma), lambda o: TS.StepLR(o, step_size, gamma), 20)
    assert_same_sequence(
        lambda o: S.CosineAnnealingLR(o, t_max, eta_min=0.002), lambda o: TS.CosineAnnealingLR(o, t_max, 0.002), 25
    )


def test_the_optimizer_steps_with_the_scheduled_learning_rate():
    w = Tensor([0.0], requires_grad=True)
    opt = SGD([w], lr=1.0)
    sched = S.MultiStepLR(opt, milestones=[1], gamma=0.1)
    moves = []
    for _ in range(3):
        before = w.item()
        w.grad = Tensor([-1.0])
        opt.step()
        sched.step()
        moves.append(round(w.item() - before, 6))
    assert moves == [1.0, 0.1, 0.1]


def test_a_second_scheduler_keeps_the_original_base_lr():
    opt = Adam([Tensor([1.0], requires_grad=True)], lr=0.1)
    S.ExponentialLR(opt, gamma=0.5).step()
    assert opt.lr == 0.05
    later = S.StepLR(opt, step_size=10)
    assert later.base_lrs == [0.1] and opt.lr == 0.1


@pytest.mark.parametrize("case", ["cosine", "sequential", "multistep"])
def test_state_dict_resumes_the_schedule(case):
    make = CASES[case][0]
    opt = optimizers()[0]
    sched = make(opt)
    for _ in range(5):
        sched.step()
    saved = sched.state_dict()
    expected = []
    for _ in range(10):
        sched.step()
        expected.append(sched.get_last_lr())
    fresh_opt = optimizers()[0]
    fresh = make(fresh_opt)
    fresh.load_state_dict(saved)
    assert fresh.last_epoch == 5 and [g["lr"] for g in fresh_opt.param_groups] == fresh.get_last_lr()
    got = []
    for _ in range(10):
        fresh.step()
        got.append(fresh.get_last_lr())
    assert got == expected
    with pytest.raises(ValueError, match="unexpected keys"):
        fresh.load_state_dict({"bogus": 1})


@pytest.mark.parametrize(
    "make, match",
    [
        (lambda o: S.StepLR(o, step_size=0), "step_size must be an integer >= 1, got 0"),
        (lambda o: S.StepLR(o, step_size=2.5), "step_size must be an integer"),
        (lambda o: S.StepLR(o, 2, gamma=-0.1), "gamma must be >= 0.0"),
        (lambda o: S.MultiStepLR(o, milestones=[2, -1]), "each milestone must be an integer >= 0"),
        (lambda o: S.CosineAnnealingLR(o, T_max=0), "T_max must be an integer >= 1"),
        (lambda o: S.LinearLR(o, start_factor=1.5), r"start_factor must be in \[0.0, 1.0\], got 1.5"),
        (lambda o: S.LinearWarmup(o, warmup_steps=-2), "warmup_steps must be an integer >= 0"),
        (lambda o: S.WarmupCosine(o, 10, 10), r"total_steps \(10\) must be greater than warmup_steps \(10\)"),
        (lambda o: S.ExponentialLR(o, gamma="x"), "gamma must be a number"),
        (lambda o: S.LambdaLR(o, [lambda t: 1.0]), "expected one callable or 2"),
        (lambda o: S.SequentialLR(o, [S.StepLR(o, 2)], milestones=[3]), "1 schedulers need 0 milestones, got 1"),
        (
            lambda o: S.SequentialLR(o, [S.StepLR(o, 2), S.StepLR(o, 2), S.StepLR(o, 2)], milestones=[4, 4]),
            "milestones must be strictly increasing",
        ),
        (
            lambda o: S.SequentialLR(o, [S.StepLR(optimizers()[0], 2), S.StepLR(o, 2)], milestones=[3]),
            "scheduler 0 is not a scheduler of this optimizer",
        ),
    ],
)
def test_bad_settings_are_refused(make, match):
    with pytest.raises(ValueError, match=match):
        make(optimizers()[0])


def test_a_non_optimizer_is_refused():
    with pytest.raises(TypeError, match="expected an optimizer.*got list"):
        S.StepLR([1, 2], step_size=1)
