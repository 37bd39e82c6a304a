"""Optimizers (SGD, Adam, AdamW, RMSprop) with torch's update equations, and gradient clipping.

An optimizer holds ``param_groups``: a list of dicts, each with its ``"params"`` and its
hyper-parameters (``"lr"``, ``"momentum"``, ...), as in ``torch.optim``; schedulers
(:mod:`axiom.train.schedulers`) change ``group["lr"]``. :meth:`Optimizer.step` updates every
parameter that has a gradient **in place** on ``p.data``, in the parameter's dtype, and records
nothing on the autograd tape. Per-parameter state (momentum buffers, moment estimates) is kept
in float32 (float64 for float64 parameters) and created on the first step, keyed by the
parameter object: a parameter replaced in ``param_groups`` before the first step (mixed
precision swaps in float32 master copies) simply gets its own state.

Example:
    >>> import numpy as np
    >>> from axiom import Dense
    >>> from axiom.train.losses import mse_loss
    >>> layer = Dense(2, 1)
    >>> opt = Adam(layer.parameters(), lr=0.1)
    >>> x, y = np.ones((4, 2), np.float32), np.full((4, 1), 3.0, np.float32)
    >>> first = mse_loss(layer(x), y).item()
    >>> for _ in range(20):
    ...     opt.zero_grad()
    ...     loss = mse_loss(layer(x), y)
    ...     loss.backward()
    ...     opt.step()
    >>> loss.item() < first
    True
"""

from __future__ import annotations

import math
from collections.abc import Callable
from typing import Any

import numpy as np

from axiom.autograd import enable_grad
from axiom.tensor import Tensor, float64, is_floating

__all__ = ["SGD", "Adam", "AdamW", "Optimizer", "RMSprop", "clip_grad_norm_", "clip_grad_value_"]

ParamsLike = Any  # Tensor | Iterable[Tensor] | Iterable[dict] | an object with .parameters()


def _param_list(params: Any, who: str) -> list[Any]:
    """A list of tensors or group dicts from a tensor, an iterable or a model (anything with ``parameters()``)."""
    if isinstance(params, Tensor):
        return [params]
    if isinstance(params, set | frozenset):
        raise TypeError(f"{who}: parameters must be an ordered collection (a list), not a set")
    if callable(getattr(params, "parameters", None)):
        params = params.parameters()
    try:
        return list(params)
    except TypeError as err:
        raise TypeError(
            f"{who}: expected parameters (a Tensor, an iterable of Tensors or of param-group dicts, or a model), "
            f"got {type(params).__name__}"
        ) from err


def _state_dtype(p: Tensor) -> np.dtype:
    return float64 if p.dtype == float64 else np.dtype(np.float32)


def _lerp_(a: np.ndarray, b: np.ndarray, weight: float) -> None:
    """``a += weight * (b - a)`` in place, in the two-sided form torch's CPU lerp uses (same rounding)."""
    if abs(weight) < 0.5:
        a += weight * (b - a)
    else:
        a[...] = b - (b - a) * (1.0 - weight)


class Optimizer:
    """Base class: ``param_groups``, ``state``, ``zero_grad()``, ``step()``, ``state_dict()``.

    ``params`` is an iterable of Tensors (or a model), or of dicts ``{"params": [...], "lr": ...}``
    that override ``defaults`` per group. Subclasses implement :meth:`_update` for one parameter.

    Example:
        >>> from axiom import Tensor
        >>> w, b = Tensor([1.0], requires_grad=True), Tensor([0.0], requires_grad=True)
        >>> opt = SGD([{"params": [w]}, {"params": [b], "lr": 0.5}], lr=0.1)
        >>> [g["lr"] for g in opt.param_groups]
        [0.1, 0.5]
    """

    def __init__(self, params: ParamsLike, defaults: dict[str, Any]) -> None:
        self.defaults = dict(defaults)
        self.param_groups: list[dict[str, Any]] = []
        # keyed by the parameter object (Tensors hash by identity)
        self.state: dict[Tensor, dict[str, Any]] = {}
        items = _param_list(params, type(self).__name__)
        if not items:
            raise ValueError(f"{type(self).__name__} got an empty parameter list; pass e.g. model.parameters()")
        groups = items if all(isinstance(g, dict) for g in items) else [{"params": items}]
        for group in groups:
            self.add_param_group(group)

    # -- groups ------------------------------------------------------------------------------
    def add_param_group(self, group: dict[str, Any]) -> None:
        """Add a group of parameters; options it does not give come from ``defaults``.

        Example:
            >>> from axiom import Tensor
            >>> opt = SGD([Tensor([1.0], requires_grad=True)], lr=0.1)
            >>> opt.add_param_group({"params": [Tensor([2.0], requires_grad=True)], "lr": 0.01})
            >>> len(opt.param_groups), opt.param_groups[1]["lr"]
            (2, 0.01)
        """
        name = type(self).__name__
        if not isinstance(group, dict) or "params" not in group:
            raise TypeError(f"{name}: a parameter group must be a dict with a 'params' entry")
        params: list[Tensor] = []
        for p in _param_list(group["params"], name):
            if not isinstance(p, Tensor):
                raise TypeError(f"{name}: can only optimize Tensors, got {type(p).__name__}")
            if not is_floating(p.dtype):
                raise TypeError(f"{name}: can only optimize floating tensors, got one of dtype {p.dtype.name}")
            if p.grad_fn is not None:
                raise ValueError(f"{name}: can only optimize leaf tensors (parameters), not the result of an op")
            if all(p is not q for q in params):  # a tied weight listed twice is updated once
                params.append(p)
        existing = {id(p) for g in self.param_groups for p in g["params"]}
        if any(id(p) in existing for p in params):
            raise ValueError(f"{name}: some parameters appear in more than one parameter group")
        full = {**self.defaults, **group, "params": params}
        self._validate(full)
        self.param_groups.append(full)

    def _validate(self, group: dict[str, Any]) -> None:
        """Raise ValueError for a bad hyper-parameter in ``group`` (subclasses extend)."""
        _non_negative(self, group, "lr")

    @property
    def lr(self) -> float:
        """The learning rate of the first group; setting it sets every group's.

        Example:
            >>> from axiom import Tensor
            >>> opt = SGD([Tensor([1.0], requires_grad=True)], lr=0.1)
            >>> opt.lr = 0.05
            >>> opt.param_groups[0]["lr"]
            0.05
        """
        return self.param_groups[0]["lr"]

    @lr.setter
    def lr(self, value: float) -> None:
        _non_negative(self, {"lr": value}, "lr")
        for group in self.param_groups:
            group["lr"] = value

    # -- the training step ---------------------------------------------------------------------
    def zero_grad(self, set_to_none: bool = True) -> None:
        """Forget every parameter's gradient (``p.grad = None``; zeros in place if ``set_to_none=False``).

        Example:
            >>> from axiom import Tensor
            >>> w = Tensor([1.0], requires_grad=True)
            >>> (w * 2).sum().backward()
            >>> opt = SGD([w], lr=0.1); opt.zero_grad(); w.grad is None
            True
        """
        for group in self.param_groups:
            for p in group["params"]:
                if set_to_none or p.grad is None:
                    p.grad = None
                elif p.grad.data.flags.writeable:
                    p.grad.data[...] = 0
                else:
                    p.grad.data = np.zeros_like(p.grad.data)

    def step(self, closure: Callable[[], Any] | None = None) -> Any:
        """Update every parameter that has a gradient (the others are skipped); returns ``closure()`` if given.

        ``closure`` re-evaluates the model and returns the loss (it runs with gradients on).

        Example:
            >>> from axiom import Tensor
            >>> w = Tensor([1.0], requires_grad=True)
            >>> (w * 3).sum().backward()
            >>> SGD([w], lr=0.1).step()
            >>> round(w.item(), 6)
            0.7
        """
        loss = None
        if closure is not None:
            with enable_grad():
                loss = closure()
        for group in self.param_groups:
            for p in group["params"]:
                if p.grad is None:
                    continue
                grad = p.grad.data
                if grad.shape != p.shape:
                    raise ValueError(
                        f"{type(self).__name__}: a parameter of shape {p.shape} has a gradient of shape {grad.shape}"
                    )
                if not p.data.flags.writeable:  # e.g. loaded from a read-only buffer: update a private copy
                    p.data = p.data.copy()
                sd = _state_dtype(p)
                inplace = p.dtype == sd
                w = p.data if inplace else p.data.astype(sd)
                self._update(w, grad.astype(sd, copy=False), self.state.setdefault(p, {}), group)
                if not inplace:
                    p.data[...] = w  # back to float16/bfloat16
        return loss

    def _update(self, w: np.ndarray, grad: np.ndarray, state: dict[str, Any], group: dict[str, Any]) -> None:
        """Update ``w`` (the parameter in its state dtype) in place from ``grad``; never modify ``grad``."""
        raise NotImplementedError(f"{type(self).__name__} does not implement _update")

    # -- checkpoints ---------------------------------------------------------------------------
    def state_dict(self) -> dict[str, Any]:
        """``{"state": {index: {...}}, "param_groups": [...]}`` with parameters numbered in group order (as torch).

        The arrays are copies, so later steps do not change a saved state.

        Example:
            >>> from axiom import Tensor
            >>> w = Tensor([1.0], requires_grad=True)
            >>> opt = SGD([w], lr=0.1, momentum=0.9)
            >>> (w * 2).sum().backward(); opt.step()
            >>> sd = opt.state_dict()
            >>> sd["param_groups"][0]["params"], sd["state"][0]["momentum_buffer"].tolist()
            ([0], [2.0])
        """
        index: dict[int, int] = {}
        groups = []
        for group in self.param_groups:
            packed = {k: v for k, v in group.items() if k != "params"}
            packed["params"] = [index.setdefault(id(p), len(index)) for p in group["params"]]
            groups.append(packed)
        state = {
            index[id(p)]: {k: v.copy() if isinstance(v, np.ndarray) else v for k, v in s.items()}
            for p, s in self.state.items()
            if id(p) in index
        }
        return {"state": state, "param_groups": groups}

    def load_state_dict(self, state_dict: dict[str, Any]) -> None:
        """Restore a :meth:`state_dict` onto this optimizer's parameters (same groups, same sizes).

        Example:
            >>> from axiom import Tensor
            >>> w = Tensor([1.0], requires_grad=True)
            >>> opt = Adam([w], lr=0.1)
            >>> (w * 2).sum().backward(); opt.step()
            >>> fresh = Adam([w], lr=0.5); fresh.load_state_dict(opt.state_dict())
            >>> fresh.lr, fresh.state[w]["step"]
            (0.1, 1)
        """
        name = type(self).__name__
        saved = state_dict.get("param_groups") if isinstance(state_dict, dict) else None
        if saved is None or "state" not in state_dict:
            raise ValueError(f"{name}.load_state_dict: expected a dict with 'state' and 'param_groups'")
        if len(saved) != len(self.param_groups):
            raise ValueError(
                f"{name}.load_state_dict: the saved state has {len(saved)} parameter groups; "
                f"this optimizer has {len(self.param_groups)}"
            )
        by_index: dict[int, Tensor] = {}
        for i, (old, group) in enumerate(zip(saved, self.param_groups)):
            if len(old["params"]) != len(group["params"]):
                raise ValueError(
                    f"{name}.load_state_dict: group {i} has {len(old['params'])} parameters in the saved state "
                    f"and {len(group['params'])} here"
                )
            by_index.update(zip((int(j) for j in old["params"]), group["params"]))
        new_state: dict[Tensor, dict[str, Any]] = {}
        for key, entry in state_dict["state"].items():
            p = by_index.get(int(key))
            if p is None:
                raise ValueError(f"{name}.load_state_dict: state for parameter {key}, which no group lists")
            restored = {}
            for k, v in entry.items():
                if isinstance(v, np.ndarray | Tensor):
                    arr = np.array(v.data if isinstance(v, Tensor) else v, dtype=_state_dtype(p))
                    if arr.shape != p.shape:
                        raise ValueError(
                            f"{name}.load_state_dict: {k!r} of parameter {key} has shape {arr.shape}; "
                            f"the parameter has shape {p.shape}"
                        )
                    v = arr
                restored[k] = v
            new_state[p] = restored
        groups = []
        for old, group in zip(saved, self.param_groups):
            merged = {**{k: v for k, v in old.items() if k != "params"}, "params": group["params"]}
            self._validate(merged)
            groups.append(merged)
        self.param_groups = groups
        self.state = new_state

    def __repr__(self) -> str:
        lines = [f"{type(self).__name__} ("]
        for i, group in enumerate(self.param_groups):
            lines.append(f"Parameter Group {i}")
            lines += [f"    {k}: {v}" for k, v in sorted(group.items()) if k != "params"]
        return "\n".join([*lines, ")"])


def _number(opt: Any, group: dict[str, Any], key: str) -> float:
    try:
        return float(group[key])
    except (TypeError, ValueError) as err:
        raise TypeError(f"{type(opt).__name__}: {key} must be a number, got {group[key]!r}") from err


def _non_negative(opt: Any, group: dict[str, Any], *keys: str) -> None:
    for key in keys:
        value = _number(opt, group, key)
        if not value >= 0.0:  # also refuses NaN
            raise ValueError(f"{type(opt).__name__}: {key} must be >= 0, got {group[key]}")


class SGD(Optimizer):
    """Stochastic gradient descent with momentum, dampening, Nesterov momentum and L2 weight decay.

    As torch: ``g += weight_decay * w``; ``buf = momentum * buf + (1 - dampening) * g`` (``buf = g``
    on the first step); ``g = g + momentum * buf`` with Nesterov, else ``g = buf``; ``w -= lr * g``.

    Example:
        >>> from axiom import Tensor
        >>> w = Tensor([1.0], requires_grad=True)
        >>> opt = SGD([w], lr=0.1, momentum=0.9)
        >>> for _ in range(2):
        ...     opt.zero_grad(); (w * w).sum().backward(); opt.step()
        >>> round(w.item(), 4)
        0.46
    """

    def __init__(
        self,
        params: ParamsLike,
        lr: float = 1e-3,
        momentum: float = 0.0,
        dampening: float = 0.0,
        nesterov: bool = False,
        weight_decay: float = 0.0,
    ) -> None:
        defaults = {
            "lr": lr,
            "momentum": momentum,
            "dampening": dampening,
            "nesterov": nesterov,
            "weight_decay": weight_decay,
        }
        super().__init__(params, defaults)

    def _validate(self, group: dict[str, Any]) -> None:
        _non_negative(self, group, "lr", "momentum", "weight_decay")
        _number(self, group, "dampening")
        if group["nesterov"] and (float(group["momentum"]) <= 0 or float(group["dampening"]) != 0):
            raise ValueError(
                "SGD: nesterov=True needs momentum > 0 and dampening = 0; "
                f"got momentum={group['momentum']}, dampening={group['dampening']}"
            )

    def _update(self, w: np.ndarray, grad: np.ndarray, state: dict[str, Any], group: dict[str, Any]) -> None:
        lr, momentum, wd = float(group["lr"]), float(group["momentum"]), float(group["weight_decay"])
        g = grad + wd * w if wd else grad
        if momentum:
            buf = state.get("momentum_buffer")
            if buf is None:
                buf = state["momentum_buffer"] = np.array(g, dtype=w.dtype, copy=True)
            else:
                buf *= momentum
                buf += (1.0 - float(group["dampening"])) * g
            g = g + momentum * buf if group["nesterov"] else buf
        w -= lr * g


class Adam(Optimizer):
    """Adam (Kingma & Ba), with optional L2 ``weight_decay`` (added to the gradient) and AMSGrad.

    As torch: ``m = lerp(m, g, 1 - beta1)``; ``v = beta2 v + (1 - beta2) g^2``;
    ``w -= lr / (1 - beta1^t) * m / (sqrt(v) / sqrt(1 - beta2^t) + eps)`` (with AMSGrad the
    running maximum of ``v`` replaces ``v`` in the denominator).

    Example:
        >>> from axiom import Tensor
        >>> w = Tensor([1.0], requires_grad=True)
        >>> opt = Adam([w], lr=0.1)
        >>> (w * w).sum().backward(); opt.step()
        >>> round(w.item(), 6)   # the first Adam step moves every weight by about lr
        0.9
    """

    decoupled = False

    def __init__(
        self,
        params: ParamsLike,
        lr: float = 1e-3,
        betas: tuple[float, float] = (0.9, 0.999),
        eps: float = 1e-8,
        weight_decay: float = 0.0,
        amsgrad: bool = False,
    ) -> None:
        defaults = {"lr": lr, "betas": betas, "eps": eps, "weight_decay": weight_decay, "amsgrad": amsgrad}
        super().__init__(params, defaults)

    def _validate(self, group: dict[str, Any]) -> None:
        _non_negative(self, group, "lr", "eps", "weight_decay")
        betas = group["betas"]
        try:
            b1, b2 = (float(b) for b in betas)
        except (TypeError, ValueError) as err:
            raise ValueError(f"{type(self).__name__}: betas must be two numbers in [0, 1), got {betas!r}") from err
        for i, b in enumerate((b1, b2)):
            if not 0.0 <= b < 1.0:
                raise ValueError(f"{type(self).__name__}: betas[{i}] must be in [0, 1), got {b}")

    def _update(self, w: np.ndarray, grad: np.ndarray, state: dict[str, Any], group: dict[str, Any]) -> None:
        lr, eps, wd = float(group["lr"]), float(group["eps"]), float(group["weight_decay"])
        b1, b2 = (float(b) for b in group["betas"])
        if not state:
            state["step"] = 0
            state["exp_avg"] = np.zeros_like(w)
            state["exp_avg_sq"] = np.zeros_like(w)
            if group["amsgrad"]:
                state["max_exp_avg_sq"] = np.zeros_like(w)
        state["step"] += 1
        step = state["step"]
        g = grad
        if wd:
            if self.decoupled:
                w *= 1.0 - lr * wd
            else:
                g = grad + wd * w
        m, v = state["exp_avg"], state["exp_avg_sq"]
        _lerp_(m, g, 1.0 - b1)
        v *= b2
        v += (1.0 - b2) * g * g
        if group["amsgrad"]:
            vmax = state.setdefault("max_exp_avg_sq", np.zeros_like(w))
            np.maximum(vmax, v, out=vmax)
            v = vmax
        step_size = lr / (1.0 - b1**step)
        denom = np.sqrt(v) / math.sqrt(1.0 - b2**step) + eps
        w += -step_size * (m / denom)


class AdamW(Adam):
    """Adam with decoupled weight decay (Loshchilov & Hutter): ``w *= 1 - lr * weight_decay`` before the Adam step.

    Example:
        >>> from axiom import Tensor
        >>> w = Tensor([1.0], requires_grad=True)
        >>> opt = AdamW([w], lr=0.1, weight_decay=0.5)
        >>> (w * 0).sum().backward(); opt.step()   # a zero gradient: only the decay acts
        >>> round(w.item(), 6)
        0.95
    """

    decoupled = True

    def __init__(
        self,
        params: ParamsLike,
        lr: float = 1e-3,
        betas: tuple[float, float] = (0.9, 0.999),
        eps: float = 1e-8,
        weight_decay: float = 1e-2,
        amsgrad: bool = False,
    ) -> None:
        super().__init__(params, lr=lr, betas=betas, eps=eps, weight_decay=weight_decay, amsgrad=amsgrad)


class RMSprop(Optimizer):
    """RMSprop (Hinton), optionally centered and with momentum, as ``torch.optim.RMSprop``.

    ``s = alpha s + (1 - alpha) g^2``; centered: ``a = lerp(a, g, 1 - alpha)`` and the
    denominator is ``sqrt(s - a^2) + eps``, else ``sqrt(s) + eps``; with momentum
    ``buf = momentum buf + g / denom`` and ``w -= lr buf``, else ``w -= lr g / denom``.

    Example:
        >>> from axiom import Tensor
        >>> w = Tensor([1.0], requires_grad=True)
        >>> opt = RMSprop([w], lr=0.01)
        >>> (w * w).sum().backward(); opt.step()
        >>> round(w.item(), 4)   # first step: lr / sqrt(1 - alpha)
        0.9
    """

    def __init__(
        self,
        params: ParamsLike,
        lr: float = 1e-2,
        alpha: float = 0.99,
        eps: float = 1e-8,
        momentum: float = 0.0,
        centered: bool = False,
        weight_decay: float = 0.0,
    ) -> None:
        defaults = {
            "lr": lr,
            "alpha": alpha,
            "eps": eps,
            "momentum": momentum,
            "centered": centered,
            "weight_decay": weight_decay,
        }
        super().__init__(params, defaults)

    def _validate(self, group: dict[str, Any]) -> None:
        _non_negative(self, group, "lr", "eps", "momentum", "weight_decay")
        alpha = _number(self, group, "alpha")
        if not 0.0 <= alpha <= 1.0:
            raise ValueError(f"RMSprop: alpha must be in [0, 1], got {alpha}")

    def _update(self, w: np.ndarray, grad: np.ndarray, state: dict[str, Any], group: dict[str, Any]) -> None:
        lr, alpha, eps = float(group["lr"]), float(group["alpha"]), float(group["eps"])
        momentum, wd = float(group["momentum"]), float(group["weight_decay"])
        if not state:
            state["step"] = 0
            state["square_avg"] = np.zeros_like(w)
            if momentum > 0:
                state["momentum_buffer"] = np.zeros_like(w)
            if group["centered"]:
                state["grad_avg"] = np.zeros_like(w)
        state["step"] += 1
        g = grad + wd * w if wd else grad
        s = state["square_avg"]
        s *= alpha
        s += (1.0 - alpha) * g * g
        if group["centered"]:
            a = state.setdefault("grad_avg", np.zeros_like(w))
            _lerp_(a, g, 1.0 - alpha)
            avg = np.sqrt(s - a * a)
        else:
            avg = np.sqrt(s)
        avg += eps
        if momentum > 0:
            buf = state.setdefault("momentum_buffer", np.zeros_like(w))
            buf *= momentum
            buf += g / avg
            w -= lr * buf
        else:
            w += -lr * (g / avg)


# -- gradient clipping ------------------------------------------------------------------------------


def _grads(parameters: Any, who: str) -> list[Tensor]:
    params = _param_list(parameters, who)
    for p in params:
        if not isinstance(p, Tensor):
            raise TypeError(f"{who}: expected Tensors, got {type(p).__name__}")
    return [p.grad for p in params if p.grad is not None]


def clip_grad_norm_(
    parameters: ParamsLike, max_norm: float, norm_type: float | str = 2.0, error_if_nonfinite: bool = False
) -> float:
    """Scale all gradients together so that their joint ``norm_type``-norm is at most ``max_norm``; returns that norm.

    The total norm is the norm of the per-parameter norms (``norm_type=inf``: the largest
    absolute entry), measured before clipping. Gradients are multiplied by
    ``max_norm / (total + 1e-6)`` when that is below 1, exactly as ``torch.nn.utils.clip_grad_norm_``.
    A non-finite norm raises ``RuntimeError`` when ``error_if_nonfinite`` (otherwise, as in torch,
    the gradients become non-finite too). Norms of float16/bfloat16 gradients are computed in float32.

    Example:
        >>> from axiom import Tensor
        >>> w = Tensor([0.0, 0.0], requires_grad=True)
        >>> (w * Tensor([3.0, 4.0])).sum().backward()
        >>> clip_grad_norm_([w], max_norm=1.0)
        5.0
        >>> [round(v, 4) for v in w.grad.tolist()]
        [0.6, 0.8]
    """
    who = "clip_grad_norm_"
    p = math.inf if norm_type in ("inf", "Inf") else float(norm_type)
    if not p > 0:
        raise ValueError(f"{who}: norm_type must be > 0 (or inf), got {norm_type}")
    if not float(max_norm) >= 0:
        raise ValueError(f"{who}: max_norm must be >= 0, got {max_norm}")
    grads = _grads(parameters, who)
    if not grads:
        return 0.0
    work = [g.data if g.dtype in (np.float32, np.float64) else g.data.astype(np.float32) for g in grads]
    if math.isinf(p):
        total = max((float(np.max(np.abs(g))) if g.size else 0.0) for g in work)
    else:
        norms = np.array([float(np.linalg.norm(g.ravel(), ord=p)) if g.size else 0.0 for g in work])
        total = float(np.linalg.norm(norms, ord=p))
    if error_if_nonfinite and not math.isfinite(total):
        raise RuntimeError(
            f"{who}: the total norm of order {norm_type} of the gradients is {total}, so they cannot be clipped; "
            "pass error_if_nonfinite=False to clip anyway"
        )
    with np.errstate(invalid="ignore"):
        coef = float(max_norm) / (total + 1e-6)
    if not coef >= 1.0:  # NaN too: the gradients become NaN, as in torch
        for g in grads:
            if not g.data.flags.writeable:
                g.data = g.data.copy()
            with np.errstate(invalid="ignore"):  # inf * 0 when the norm was inf
                g.data *= coef
    return total


def clip_grad_value_(parameters: ParamsLike, clip_value: float) -> None:
    """Clamp every gradient entry to ``[-clip_value, clip_value]`` in place.

    Example:
        >>> from axiom import Tensor
        >>> w = Tensor([0.0, 0.0], requires_grad=True)
        >>> (w * Tensor([-3.0, 0.5])).sum().backward()
        >>> clip_grad_value_([w], 1.0); w.grad.tolist()
        [-1.0, 0.5]
    """
    if not float(clip_value) >= 0:
        raise ValueError(f"clip_grad_value_: clip_value must be >= 0, got {clip_value}")
    for g in _grads(parameters, "clip_grad_value_"):
        if not g.data.flags.writeable:
            g.data = g.data.copy()
        np.clip(g.data, -clip_value, clip_value, out=g.data)
