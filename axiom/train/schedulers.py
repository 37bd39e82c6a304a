"""Learning-rate schedulers: step, multi-step, exponential, cosine, linear warm-up, warm-up + cosine, sequences.

A scheduler sets ``group["lr"]`` of every parameter group of an optimizer
(:mod:`axiom.train.optim`); call :meth:`LRScheduler.step` once per epoch (or per batch, as
you choose), **after** ``optimizer.step()``, as in torch. Creating a scheduler applies the
learning rate of step 0 at once. Each learning rate is a closed-form function of the step
count and the group's base learning rate (``group["initial_lr"]``, recorded when the first
scheduler is created), so ``lr_at(t)`` previews a schedule and the values equal
``torch.optim.lr_scheduler``'s.

Example:
    >>> from axiom import Tensor
    >>> from axiom.train.optim import SGD
    >>> opt = SGD([Tensor([1.0], requires_grad=True)], lr=0.1)
    >>> sched = StepLR(opt, step_size=2, gamma=0.5)
    >>> lrs = []
    >>> for epoch in range(5):
    ...     lrs.append(sched.get_last_lr()[0])
    ...     opt.step()
    ...     sched.step()
    >>> lrs
    [0.1, 0.1, 0.05, 0.05, 0.025]
"""

from __future__ import annotations

import math
from bisect import bisect_right
from collections.abc import Callable, Sequence
from typing import Any

__all__ = [
    "CosineAnnealingLR",
    "ExponentialLR",
    "LRScheduler",
    "LambdaLR",
    "LinearLR",
    "LinearWarmup",
    "MultiStepLR",
    "SequentialLR",
    "StepLR",
    "WarmupCosine",
]


def _positive_int(value: Any, name: str, who: str, allow_zero: bool = False) -> int:
    if isinstance(value, bool) or not isinstance(value, int) or value < (0 if allow_zero else 1):
        raise ValueError(f"{who}: {name} must be an integer {'>= 0' if allow_zero else '>= 1'}, got {value!r}")
    return value


def _factor(value: Any, name: str, who: str, low: float = 0.0, high: float = math.inf) -> float:
    try:
        f = float(value)
    except (TypeError, ValueError) as err:
        raise ValueError(f"{who}: {name} must be a number, got {value!r}") from err
    if not low <= f <= high:
        bounds = f"in [{low}, {high}]" if math.isfinite(high) else f">= {low}"
        raise ValueError(f"{who}: {name} must be {bounds}, got {value!r}")
    return f


class LRScheduler:
    """Base class: subclasses give the learning rate of one group at step ``t`` in :meth:`_lr`.

    Example:
        >>> from axiom import Tensor
        >>> from axiom.train.optim import SGD
        >>> class Halving(LRScheduler):
        ...     def _lr(self, base_lr, step):
        ...         return base_lr / 2**step
        >>> opt = SGD([Tensor([1.0], requires_grad=True)], lr=1.0)
        >>> sched = Halving(opt); sched.step(); sched.get_last_lr()
        [0.5]
    """

    def __init__(self, optimizer: Any) -> None:
        groups = getattr(optimizer, "param_groups", None)
        if not isinstance(groups, list) or not all(isinstance(g, dict) and "lr" in g for g in groups):
            raise TypeError(
                f"{type(self).__name__}: expected an optimizer (with param_groups holding 'lr'), "
                f"got {type(optimizer).__name__}"
            )
        self.optimizer = optimizer
        for group in groups:
            group.setdefault("initial_lr", group["lr"])  # a second scheduler keeps the first one's base
        self.base_lrs: list[float] = [float(g["initial_lr"]) for g in groups]
        self.last_epoch = -1
        self._last_lr: list[float] = []
        self.step()

    def _lr(self, base_lr: float, step: int) -> float:
        """The learning rate of a group whose base learning rate is ``base_lr``, at step ``step`` (>= 0)."""
        raise NotImplementedError(f"{type(self).__name__} does not implement _lr")

    def lr_at(self, step: int) -> list[float]:
        """The learning rates (one per group) at ``step``, without changing anything.

        Example:
            >>> from axiom import Tensor
            >>> from axiom.train.optim import SGD
            >>> opt = SGD([Tensor([1.0], requires_grad=True)], lr=1.0)
            >>> ExponentialLR(opt, gamma=0.5).lr_at(3)
            [0.125]
        """
        return [self._lr(base, int(step)) for base in self.base_lrs]

    def step(self) -> None:
        """Advance one step and set each group's ``lr``.

        Example:
            >>> from axiom import Tensor
            >>> from axiom.train.optim import SGD
            >>> opt = SGD([Tensor([1.0], requires_grad=True)], lr=1.0)
            >>> sched = MultiStepLR(opt, milestones=[1], gamma=0.1); sched.step()
            >>> opt.param_groups[0]["lr"]
            0.1
        """
        self.last_epoch += 1
        self._apply(self.lr_at(self.last_epoch))

    def _apply(self, lrs: list[float]) -> None:
        for group, lr in zip(self.optimizer.param_groups, lrs, strict=True):
            group["lr"] = lr
        self._last_lr = list(lrs)

    def get_last_lr(self) -> list[float]:
        """The learning rates the last :meth:`step` set, one per parameter group.

        Example:
            >>> from axiom import Tensor
            >>> from axiom.train.optim import SGD
            >>> opt = SGD([Tensor([1.0], requires_grad=True)], lr=0.3)
            >>> StepLR(opt, step_size=10).get_last_lr()
            [0.3]
        """
        return list(self._last_lr)

    _NOT_STATE = ("optimizer",)

    def state_dict(self) -> dict[str, Any]:
        """Everything but the optimizer (step count, base learning rates, settings), as torch.

        Example:
            >>> from axiom import Tensor
            >>> from axiom.train.optim import SGD
            >>> opt = SGD([Tensor([1.0], requires_grad=True)], lr=0.3)
            >>> sched = StepLR(opt, step_size=10); sched.step()
            >>> sched.state_dict()["last_epoch"]
            1
        """
        return {k: list(v) if isinstance(v, list) else v for k, v in vars(self).items() if k not in self._NOT_STATE}

    def load_state_dict(self, state_dict: dict[str, Any]) -> None:
        """Restore a :meth:`state_dict` and set the optimizer's learning rates to the restored ones.

        Example:
            >>> from axiom import Tensor
            >>> from axiom.train.optim import SGD
            >>> opt = SGD([Tensor([1.0], requires_grad=True)], lr=1.0)
            >>> a = ExponentialLR(opt, gamma=0.5); a.step(); a.step()
            >>> b = ExponentialLR(SGD([Tensor([1.0], requires_grad=True)], lr=1.0), gamma=0.5)
            >>> b.load_state_dict(a.state_dict()); b.get_last_lr(), b.optimizer.lr
            ([0.25], 0.25)
        """
        unknown = set(state_dict) - set(vars(self))
        if unknown:
            raise ValueError(f"{type(self).__name__}.load_state_dict: unexpected keys {sorted(unknown)}")
        for k, v in state_dict.items():
            setattr(self, k, list(v) if isinstance(v, list) else v)
        if self._last_lr:
            self._apply(self._last_lr)

    def __repr__(self) -> str:
        return f"{type(self).__name__}(last_epoch={self.last_epoch}, lr={self._last_lr})"


class StepLR(LRScheduler):
    """Multiply the learning rate by ``gamma`` every ``step_size`` steps: ``base * gamma ** (t // step_size)``.

    Example:
        >>> from axiom import Tensor
        >>> from axiom.train.optim import SGD
        >>> opt = SGD([Tensor([1.0], requires_grad=True)], lr=1.0)
        >>> [StepLR(opt, step_size=2, gamma=0.1).lr_at(t)[0] for t in range(5)]
        [1.0, 1.0, 0.1, 0.1, 0.010000000000000002]
    """

    def __init__(self, optimizer: Any, step_size: int, gamma: float = 0.1) -> None:
        self.step_size = _positive_int(step_size, "step_size", "StepLR")
        self.gamma = _factor(gamma, "gamma", "StepLR")
        super().__init__(optimizer)

    def _lr(self, base_lr: float, step: int) -> float:
        return base_lr * self.gamma ** (step // self.step_size)


class MultiStepLR(LRScheduler):
    """Multiply the learning rate by ``gamma`` at each milestone step: ``base * gamma ** (milestones passed)``.

    Example:
        >>> from axiom import Tensor
        >>> from axiom.train.optim import SGD
        >>> opt = SGD([Tensor([1.0], requires_grad=True)], lr=1.0)
        >>> sched = MultiStepLR(opt, milestones=[2, 4], gamma=0.5)
        >>> [sched.lr_at(t)[0] for t in range(6)]
        [1.0, 1.0, 0.5, 0.5, 0.25, 0.25]
    """

    def __init__(self, optimizer: Any, milestones: Sequence[int], gamma: float = 0.1) -> None:
        self.milestones = sorted(_positive_int(m, "each milestone", "MultiStepLR", allow_zero=True) for m in milestones)
        self.gamma = _factor(gamma, "gamma", "MultiStepLR")
        super().__init__(optimizer)

    def _lr(self, base_lr: float, step: int) -> float:
        return base_lr * self.gamma ** bisect_right(self.milestones, step)  # a repeated milestone counts twice


class ExponentialLR(LRScheduler):
    """Multiply the learning rate by ``gamma`` every step: ``base * gamma ** t``.

    Example:
        >>> from axiom import Tensor
        >>> from axiom.train.optim import SGD
        >>> opt = SGD([Tensor([1.0], requires_grad=True)], lr=1.0)
        >>> ExponentialLR(opt, gamma=0.9).lr_at(2)
        [0.81]
    """

    def __init__(self, optimizer: Any, gamma: float) -> None:
        self.gamma = _factor(gamma, "gamma", "ExponentialLR")
        super().__init__(optimizer)

    def _lr(self, base_lr: float, step: int) -> float:
        return base_lr * self.gamma**step


class CosineAnnealingLR(LRScheduler):
    """Cosine from the base learning rate down to ``eta_min`` over ``T_max`` steps (then back up, as torch).

    ``eta_min + (base - eta_min) * (1 + cos(pi * t / T_max)) / 2``.

    Example:
        >>> from axiom import Tensor
        >>> from axiom.train.optim import SGD
        >>> opt = SGD([Tensor([1.0], requires_grad=True)], lr=1.0)
        >>> sched = CosineAnnealingLR(opt, T_max=4, eta_min=0.0)
        >>> [round(sched.lr_at(t)[0], 4) for t in range(5)]
        [1.0, 0.8536, 0.5, 0.1464, 0.0]
    """

    def __init__(self, optimizer: Any, T_max: int, eta_min: float = 0.0) -> None:  # noqa: N803 - torch's name
        self.T_max = _positive_int(T_max, "T_max", "CosineAnnealingLR")
        self.eta_min = _factor(eta_min, "eta_min", "CosineAnnealingLR")
        super().__init__(optimizer)

    def _lr(self, base_lr: float, step: int) -> float:
        return self.eta_min + (base_lr - self.eta_min) * (1.0 + math.cos(math.pi * step / self.T_max)) / 2.0


class LinearLR(LRScheduler):
    """Scale the learning rate linearly from ``start_factor`` to ``end_factor`` over ``total_iters`` steps, as torch.

    ``base * (start + (end - start) * min(t, total_iters) / total_iters)``.

    Example:
        >>> from axiom import Tensor
        >>> from axiom.train.optim import SGD
        >>> opt = SGD([Tensor([1.0], requires_grad=True)], lr=1.0)
        >>> sched = LinearLR(opt, start_factor=0.5, end_factor=1.0, total_iters=2)
        >>> [sched.lr_at(t)[0] for t in range(4)]
        [0.5, 0.75, 1.0, 1.0]
    """

    def __init__(
        self, optimizer: Any, start_factor: float = 1.0 / 3, end_factor: float = 1.0, total_iters: int = 5
    ) -> None:
        who = type(self).__name__
        self.start_factor = _factor(start_factor, "start_factor", who, 0.0, 1.0)
        self.end_factor = _factor(end_factor, "end_factor", who, 0.0, 1.0)
        self.total_iters = _positive_int(total_iters, "total_iters", who, allow_zero=True)
        super().__init__(optimizer)

    def _lr(self, base_lr: float, step: int) -> float:
        if self.total_iters == 0:
            return base_lr * self.end_factor
        frac = min(step, self.total_iters) / self.total_iters
        return base_lr * (self.start_factor + (self.end_factor - self.start_factor) * frac)


class LinearWarmup(LinearLR):
    """Warm up linearly from ``start_factor * lr`` to ``lr`` over ``warmup_steps`` steps, then hold ``lr``.

    Example:
        >>> from axiom import Tensor
        >>> from axiom.train.optim import SGD
        >>> opt = SGD([Tensor([1.0], requires_grad=True)], lr=1.0)
        >>> sched = LinearWarmup(opt, warmup_steps=4, start_factor=0.0)
        >>> [sched.lr_at(t)[0] for t in range(6)]
        [0.0, 0.25, 0.5, 0.75, 1.0, 1.0]
    """

    def __init__(self, optimizer: Any, warmup_steps: int, start_factor: float = 0.1) -> None:
        self.warmup_steps = _positive_int(warmup_steps, "warmup_steps", "LinearWarmup", allow_zero=True)
        super().__init__(optimizer, start_factor=start_factor, end_factor=1.0, total_iters=warmup_steps)


class WarmupCosine(LRScheduler):
    """Linear warm-up for ``warmup_steps``, then cosine decay to ``eta_min`` at ``total_steps`` (held after).

    Equals torch's ``SequentialLR([LinearLR(start_factor, 1.0, warmup_steps),
    CosineAnnealingLR(total_steps - warmup_steps, eta_min)], milestones=[warmup_steps])`` up to
    ``total_steps``; after it the learning rate stays at ``eta_min`` instead of rising again.

    Example:
        >>> from axiom import Tensor
        >>> from axiom.train.optim import SGD
        >>> opt = SGD([Tensor([1.0], requires_grad=True)], lr=1.0)
        >>> sched = WarmupCosine(opt, warmup_steps=2, total_steps=6, start_factor=0.0)
        >>> [round(sched.lr_at(t)[0], 4) for t in range(8)]
        [0.0, 0.5, 1.0, 0.8536, 0.5, 0.1464, 0.0, 0.0]
    """

    def __init__(
        self, optimizer: Any, warmup_steps: int, total_steps: int, eta_min: float = 0.0, start_factor: float = 0.1
    ) -> None:
        self.warmup_steps = _positive_int(warmup_steps, "warmup_steps", "WarmupCosine", allow_zero=True)
        self.total_steps = _positive_int(total_steps, "total_steps", "WarmupCosine")
        if self.total_steps <= self.warmup_steps:
            raise ValueError(
                f"WarmupCosine: total_steps ({total_steps}) must be greater than warmup_steps ({warmup_steps})"
            )
        self.eta_min = _factor(eta_min, "eta_min", "WarmupCosine")
        self.start_factor = _factor(start_factor, "start_factor", "WarmupCosine", 0.0, 1.0)
        super().__init__(optimizer)

    def _lr(self, base_lr: float, step: int) -> float:
        if step < self.warmup_steps:
            return base_lr * (self.start_factor + (1.0 - self.start_factor) * step / self.warmup_steps)
        t = min(step, self.total_steps) - self.warmup_steps
        span = self.total_steps - self.warmup_steps
        return self.eta_min + (base_lr - self.eta_min) * (1.0 + math.cos(math.pi * t / span)) / 2.0


class LambdaLR(LRScheduler):
    """``base * lr_lambda(t)``, with one function for all groups or one per group.

    Example:
        >>> from axiom import Tensor
        >>> from axiom.train.optim import SGD
        >>> opt = SGD([Tensor([1.0], requires_grad=True)], lr=1.0)
        >>> LambdaLR(opt, lambda t: 1 / (1 + t)).lr_at(3)
        [0.25]
    """

    _NOT_STATE = ("optimizer", "lr_lambdas")

    def __init__(self, optimizer: Any, lr_lambda: Callable[[int], float] | Sequence[Callable[[int], float]]) -> None:
        groups = getattr(optimizer, "param_groups", [])
        fns = list(lr_lambda) if isinstance(lr_lambda, list | tuple) else [lr_lambda] * len(groups)
        if len(fns) != len(groups) or not all(callable(f) for f in fns):
            raise ValueError(f"LambdaLR: expected one callable or {len(groups)} (one per parameter group)")
        self.lr_lambdas = fns
        super().__init__(optimizer)

    def lr_at(self, step: int) -> list[float]:
        return [base * float(fn(int(step))) for base, fn in zip(self.base_lrs, self.lr_lambdas)]


class SequentialLR(LRScheduler):
    """Run ``schedulers`` one after another, switching at the ``milestones`` steps (each restarts at its step 0).

    Example:
        >>> from axiom import Tensor
        >>> from axiom.train.optim import SGD
        >>> opt = SGD([Tensor([1.0], requires_grad=True)], lr=1.0)
        >>> warm = LinearWarmup(opt, warmup_steps=2, start_factor=0.0)
        >>> decay = ExponentialLR(opt, gamma=0.5)
        >>> sched = SequentialLR(opt, [warm, decay], milestones=[2])
        >>> [sched.lr_at(t)[0] for t in range(5)]
        [0.0, 0.5, 1.0, 0.5, 0.25]
    """

    _NOT_STATE = ("optimizer", "schedulers")

    def __init__(self, optimizer: Any, schedulers: Sequence[LRScheduler], milestones: Sequence[int]) -> None:
        schedulers = list(schedulers)
        if not schedulers:
            raise ValueError("SequentialLR: expected at least one scheduler")
        for i, s in enumerate(schedulers):
            if not isinstance(s, LRScheduler) or s.optimizer is not optimizer:
                raise ValueError(f"SequentialLR: scheduler {i} is not a scheduler of this optimizer")
        milestones = [_positive_int(m, "each milestone", "SequentialLR") for m in milestones]
        if len(milestones) != len(schedulers) - 1:
            raise ValueError(
                f"SequentialLR: {len(schedulers)} schedulers need {len(schedulers) - 1} milestones, "
                f"got {len(milestones)}"
            )
        if any(b <= a for a, b in zip(milestones, milestones[1:])):
            raise ValueError(f"SequentialLR: milestones must be strictly increasing, got {milestones}")
        self.schedulers = schedulers
        self.milestones = milestones
        super().__init__(optimizer)

    def lr_at(self, step: int) -> list[float]:
        i = bisect_right(self.milestones, step)
        start = self.milestones[i - 1] if i else 0
        return self.schedulers[i].lr_at(step - start)

    def state_dict(self) -> dict[str, Any]:
        state = super().state_dict()
        state["schedulers"] = [s.state_dict() for s in self.schedulers]
        return state

    def load_state_dict(self, state_dict: dict[str, Any]) -> None:
        state = dict(state_dict)
        for s, sub in zip(self.schedulers, state.pop("schedulers", [])):
            s.load_state_dict(sub)
        super().load_state_dict(state)
