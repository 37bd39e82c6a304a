"""Mixed precision: float16/bfloat16 forward and backward, float32 master weights, dynamic loss scaling.

:class:`MixedPrecision` is what ``fit(..., mixed_precision=MixedPrecision("float16"))`` uses:

- ``attach(model, optimizer)`` keeps a float32 *master* copy of every parameter (new
  :class:`~axiom.nn.layer.Parameter` objects), casts the model to the low precision dtype
  (``model.to(dtype)``: parameters and buffers such as BatchNorm's running statistics) and puts
  the masters into the optimizer's ``param_groups``, so the optimizer updates float32 weights and
  keeps float32 state;
- ``cast_input(xb)`` casts a floating batch to the low precision dtype;
- ``step(loss, optimizer, clip)`` backpropagates ``loss * scale``, moves the low precision
  gradients into the masters' ``.grad`` as float32 divided by the scale, and either skips the
  update (a gradient is inf/NaN: the scale is multiplied by ``backoff_factor``, nothing changes)
  or clips, steps the optimizer and copies the masters back into the model; every
  ``growth_interval`` good steps the scale is multiplied by ``growth_factor``;
- ``finish(model)`` puts the model back to float32 with the master values.

Loss scaling exists because float16 gradients underflow (smallest normal 6.1e-5) and overflow
(largest 65504); bfloat16 has float32's exponent range, so for it scaling is off by default
(``dynamic=False``, scale 1) and a non-finite gradient only skips the step. :class:`GradScaler`
is the scale bookkeeping on its own.

Forward and backward in half precision run on every op of the NumPy reference backend (it
computes in float32 and rounds the result). The C backend's native kernels are float32/float64:
in float16/bfloat16 ``matmul`` and ``conv2d`` (and their backward kernels) run on the reference
with a one-time ``FallbackWarning``.

Example:
    >>> import numpy as np
    >>> from axiom import Dense, Sequential, manual_seed, relu
    >>> from axiom.train.losses import cross_entropy
    >>> manual_seed(0)
    >>> model = Sequential(Dense(4, 8, relu), Dense(8, 2))
    >>> class SGD:                                     # any optimizer with param_groups and step()
    ...     def __init__(self, params): self.param_groups = [{"params": list(params), "lr": 0.1}]
    ...     def step(self):
    ...         for p in self.param_groups[0]["params"]:
    ...             p.data = p.data - 0.1 * p.grad.data
    >>> opt = SGD(model.parameters())
    >>> mp = MixedPrecision("float16", init_scale=1024.0)
    >>> mp.attach(model, opt)
    >>> model[0].weight.dtype.name, opt.param_groups[0]["params"][0].dtype.name
    ('float16', 'float32')
    >>> x = mp.cast_input(np.ones((2, 4), np.float32))
    >>> mp.step(cross_entropy(model(x), np.array([0, 1])), opt)
    True
    >>> mp.finish(model)[0].weight.dtype.name
    'float32'
"""

from __future__ import annotations

import math
from typing import Any

import numpy as np

from axiom.nn.layer import Layer, Parameter
from axiom.tensor import Tensor, as_dtype, bfloat16, float16, float32, is_floating
from axiom.train.optim import clip_grad_norm_

__all__ = ["GradScaler", "MixedPrecision"]


def _positive(value: Any, name: str, owner: str, above_one: bool | None = None) -> float:
    if isinstance(value, bool) or not isinstance(value, int | float) or not math.isfinite(value) or value <= 0:
        raise ValueError(f"{owner}: {name} must be a finite number > 0, got {value!r}")
    if above_one is True and value < 1:
        raise ValueError(f"{owner}: {name} must be >= 1, got {value!r}")
    if above_one is False and value > 1:
        raise ValueError(f"{owner}: {name} must be <= 1, got {value!r}")
    return float(value)


class GradScaler:
    """Dynamic loss-scale bookkeeping (as ``torch.amp.GradScaler``): back off on overflow, grow when stable.

    ``update(found_inf)`` after each step: an overflow multiplies the scale by ``backoff_factor``
    and restarts the count; ``growth_interval`` consecutive good steps multiply it by
    ``growth_factor``. With ``dynamic=False`` the scale never changes.

    Example:
        >>> s = GradScaler(init_scale=8.0, growth_interval=2)
        >>> s.update(found_inf=True); s.scale
        4.0
        >>> s.update(False); s.update(False); s.scale
        8.0
        >>> s.unscale(np.array([16.0, 8.0], np.float16)).tolist()
        [2.0, 1.0]
    """

    def __init__(
        self,
        init_scale: float = 2.0**16,
        growth_factor: float = 2.0,
        backoff_factor: float = 0.5,
        growth_interval: int = 2000,
        dynamic: bool = True,
    ) -> None:
        owner = type(self).__name__
        self.scale = _positive(init_scale, "init_scale", owner)
        self.growth_factor = _positive(growth_factor, "growth_factor", owner, above_one=True)
        self.backoff_factor = _positive(backoff_factor, "backoff_factor", owner, above_one=False)
        if isinstance(growth_interval, bool) or not isinstance(growth_interval, int) or growth_interval <= 0:
            raise ValueError(f"{owner}: growth_interval must be a positive int, got {growth_interval!r}")
        self.growth_interval = growth_interval
        self.dynamic = bool(dynamic)
        #: Good steps since the last overflow or growth.
        self.good_steps = 0
        #: Steps skipped because of an inf/NaN gradient.
        self.skipped_steps = 0

    def unscale(self, grad: np.ndarray) -> np.ndarray:
        """``grad`` as float32 divided by the scale."""
        return grad.astype(np.float32) / np.float32(self.scale)

    def update(self, found_inf: bool) -> None:
        """Record one step: an overflow (``found_inf``) or a good step."""
        if found_inf:
            self.skipped_steps += 1
            self.good_steps = 0
            if self.dynamic:
                self.scale *= self.backoff_factor
            return
        self.good_steps += 1
        if self.dynamic and self.good_steps >= self.growth_interval:
            self.scale *= self.growth_factor
            self.good_steps = 0

    def state_dict(self) -> dict[str, Any]:
        """The scale and counters (to checkpoint them).

        Example:
            >>> GradScaler(init_scale=4.0).state_dict()["scale"]
            4.0
        """
        return {"scale": self.scale, "good_steps": self.good_steps, "skipped_steps": self.skipped_steps}

    def load_state_dict(self, state: dict[str, Any]) -> None:
        """Restore what :meth:`state_dict` returned."""
        self.scale = _positive(state["scale"], "scale", type(self).__name__)
        self.good_steps = int(state["good_steps"])
        self.skipped_steps = int(state["skipped_steps"])

    def __repr__(self) -> str:
        return f"GradScaler(scale={self.scale}, dynamic={self.dynamic}, growth_interval={self.growth_interval})"


def _optimizer_params(optimizer: Any) -> list[Any]:
    groups = getattr(optimizer, "param_groups", None)
    if not isinstance(groups, list) or not all(isinstance(g, dict) and "params" in g for g in groups):
        raise TypeError(
            f"MixedPrecision: the optimizer must have param_groups (a list of dicts with 'params'), "
            f"got {type(optimizer).__name__}"
        )
    return [p for g in groups for p in g["params"]]


def _swap_params(optimizer: Any, mapping: dict[int, Parameter]) -> None:
    """Replace parameters in the optimizer's groups (and state keyed by them) by ``mapping[id(p)]``."""
    _optimizer_params(optimizer)
    for group in optimizer.param_groups:
        group["params"] = [mapping.get(id(p), p) for p in group["params"]]
    state = getattr(optimizer, "state", None)
    if isinstance(state, dict):
        old = dict(state)
        state.clear()
        for key, value in old.items():
            new = mapping.get(id(key), key) if not isinstance(key, int) else key
            state[new] = value


class MixedPrecision:
    """Train in float16/bfloat16 with float32 master weights and loss scaling (see the module docstring).

    ``MixedPrecision(dtype, init_scale=None, growth_factor=2.0, backoff_factor=0.5,
    growth_interval=2000, dynamic=None)``: ``dynamic`` defaults to True for float16 and False for
    bfloat16; ``init_scale`` defaults to ``2**16`` when dynamic and 1 otherwise.

    Example:
        >>> mp = MixedPrecision("bfloat16")
        >>> mp.dtype.name, mp.scale, mp.dynamic
        ('bfloat16', 1.0, False)
        >>> MixedPrecision("float16").scale
        65536.0
    """

    def __init__(
        self,
        dtype: Any = "float16",
        init_scale: float | None = None,
        growth_factor: float = 2.0,
        backoff_factor: float = 0.5,
        growth_interval: int = 2000,
        dynamic: bool | None = None,
    ) -> None:
        try:
            dt = as_dtype(dtype)
        except TypeError as err:
            raise ValueError(f"MixedPrecision: dtype must be 'float16' or 'bfloat16', got {dtype!r}") from err
        if dt not in (float16, bfloat16):
            raise ValueError(f"MixedPrecision: dtype must be 'float16' or 'bfloat16', got {dt.name}")
        self.dtype = dt
        self.dynamic = (dt == float16) if dynamic is None else bool(dynamic)
        if init_scale is None:
            init_scale = 2.0**16 if self.dynamic else 1.0
        self.scaler = GradScaler(init_scale, growth_factor, backoff_factor, growth_interval, self.dynamic)
        self._pairs: list[tuple[Parameter, Parameter]] = []
        self._optimizer: Any = None

    @property
    def scale(self) -> float:
        """The current loss scale."""
        return self.scaler.scale

    @property
    def attached(self) -> bool:
        return bool(self._pairs)

    def masters(self) -> list[Parameter]:
        """The float32 master parameters, in the model's parameter order."""
        return [m for _, m in self._pairs]

    def __repr__(self) -> str:
        return f"MixedPrecision({self.dtype.name!r}, scale={self.scale}, dynamic={self.dynamic})"

    # -- the fit() protocol ---------------------------------------------------------------------------
    def attach(self, model: Layer, optimizer: Any = None) -> None:
        """Make float32 masters, cast ``model`` to the low precision dtype, give the masters to ``optimizer``."""
        if self._pairs:
            raise RuntimeError("MixedPrecision.attach: already attached; call finish(model) first")
        if not isinstance(model, Layer):
            raise TypeError(f"MixedPrecision.attach: model must be an axiom Layer, got {type(model).__name__}")
        model._check_built()
        params = model.parameters()
        wrong = [(n, p.dtype.name) for n, p in model.named_parameters() if p.dtype != float32]
        if wrong:
            raise TypeError(
                f"MixedPrecision.attach: expects a float32 model (its weights become the masters), but "
                f"{wrong[0][0]} is {wrong[0][1]}; call model.to('float32') first"
            )
        if optimizer is not None:
            known = {id(p) for p in params}
            foreign = [p for p in _optimizer_params(optimizer) if id(p) not in known]
            if foreign:
                raise ValueError(
                    f"MixedPrecision.attach: the optimizer holds {len(foreign)} tensor(s) that are not "
                    "parameters of this model; build it from model.parameters()"
                )
        self._pairs = [(p, Parameter(p.data.astype(np.float32, copy=True))) for p in params]
        model.to(self.dtype)
        for p in params:
            p.grad = None
        if optimizer is not None:
            _swap_params(optimizer, {id(p): m for p, m in self._pairs})
        self._optimizer = optimizer

    def cast_input(self, x: Any) -> Any:
        """A floating batch cast to the low precision dtype (integer batches, e.g. indices, unchanged).

        Example:
            >>> MixedPrecision("float16").cast_input(np.zeros((2, 3), np.float32)).dtype.name
            'float16'
        """
        if isinstance(x, Tensor):
            return Tensor(x.data.astype(self.dtype)) if is_floating(x.dtype) and x.dtype != self.dtype else x
        arr = np.asarray(x)
        if arr.dtype.kind == "f" or is_floating(arr.dtype):
            return arr.astype(self.dtype)
        return x

    def step(self, loss: Tensor, optimizer: Any = None, clip_grad_norm: float | None = None) -> bool:
        """Backward of the scaled loss, unscale into the masters, skip or apply the update; True if applied."""
        if not self._pairs:
            raise RuntimeError("MixedPrecision.step: call attach(model, optimizer) first")
        optimizer = optimizer if optimizer is not None else self._optimizer
        if optimizer is None:
            raise ValueError("MixedPrecision.step: no optimizer (pass one here or to attach)")
        if not isinstance(loss, Tensor) or loss.size != 1:
            raise ValueError(f"MixedPrecision.step: expects a one-element loss Tensor, got {loss!r}")
        # The seed is cast to the loss dtype: a float16 loss with a scale above 65504 overflows at once,
        # which the dynamic scale then backs off from (compute the loss in float32 to avoid that).
        with np.errstate(over="ignore", invalid="ignore"):  # an overflow is expected now and then: it is handled
            loss.backward(np.full(loss.shape, self.scale))
        found_inf = not math.isfinite(float(loss.item()))
        for p, m in self._pairs:
            if p.grad is None:
                m.grad = None
                continue
            g = self.scaler.unscale(p.grad.data)
            p.grad = None
            found_inf = found_inf or not bool(np.all(np.isfinite(g)))
            m.grad = Tensor(g)
        self.scaler.update(found_inf)
        if found_inf:
            for _, m in self._pairs:
                m.grad = None
            return False
        masters = [m for _, m in self._pairs if m.grad is not None]
        if clip_grad_norm is not None:
            clip_grad_norm_(masters, float(clip_grad_norm))
        optimizer.step()
        for p, m in self._pairs:
            p.data = m.data.astype(self.dtype)
            m.grad = None
        return True

    def finish(self, model: Layer) -> Layer:
        """Back to float32: the model gets the master values, the optimizer its own parameters back."""
        if not self._pairs:
            return model
        model.to(float32)
        for p, m in self._pairs:
            p.data = m.data.copy()
            p.grad = None
        if self._optimizer is not None:
            _swap_params(self._optimizer, {id(m): p for p, m in self._pairs})
        self._pairs, self._optimizer = [], None
        return model
