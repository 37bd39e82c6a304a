"""The kernel contract: the one list of ops a backend may implement.

Backends work on NumPy arrays only (arrays in, arrays out); they know no Tensor and no
layer. Every backend subclasses :class:`KernelBackend`. The NumPy reference backend
(:mod:`axiom.backends.reference`) implements all of it and is the oracle; a native or GPU
backend implements what it can and inherits the rest from :class:`PartialBackend`, which
runs the missing op on the reference, records it in ``backend.fallbacks`` and warns once.

Layout conventions shared by every op:

- images are NHWC ``(batch, H, W, C)``;
- conv weights are ``(kH, kW, C_in / groups, C_out)``;
- attention tensors are ``(batch, heads, seq, head_dim)``;
- ``padding`` for 2-D ops is always explicit: ``((top, bottom), (left, right))``.

Example:
    >>> import numpy as np
    >>> from axiom.backends import get_backend
    >>> be = get_backend("numpy")
    >>> be.matmul(np.ones((2, 3), np.float32), np.ones((3, 4), np.float32)).shape
    (2, 4)
"""

from __future__ import annotations

import warnings
from typing import Any

import numpy as np

Pair = tuple[int, int]
Padding2d = tuple[tuple[int, int], tuple[int, int]]

#: Every op of the contract, in one place. Tests iterate over this tuple.
OPS: tuple[str, ...] = (
    "matmul",
    "conv2d",
    "batchnorm",
    "layernorm",
    "rmsnorm",
    "max_pool2d",
    "avg_pool2d",
    "global_avg_pool",
    "softmax",
    "log_softmax",
    "activation",
    "attention",
    "rope",
)

#: Backward kernels the autograd engine calls (``<op>_backward`` for the ops above; every
#: ``grad_out`` has the shape of the forward output). The reference implements all of them;
#: a :class:`PartialBackend` runs the ones it lacks on the reference, recorded and warned once.
GRAD_OPS: tuple[str, ...] = (
    "matmul_backward",
    "conv2d_backward",
    "conv2d_backward_input",
    "conv2d_backward_weight",
    "batchnorm_backward",
    "layernorm_backward",
    "rmsnorm_backward",
    "max_pool2d_backward",
    "avg_pool2d_backward",
    "global_avg_pool_backward",
    "softmax_backward",
    "log_softmax_backward",
    "activation_backward",
    "attention_backward",
    "rope_backward",
)

#: Backward kernels the contract itself defines from forward ops (:class:`KernelBackend` has a
#: body for them), so a backend that does not list them still has them: no fallback needed.
DERIVED_GRAD_OPS: tuple[str, ...] = ("conv2d_backward", "rope_backward")

#: Element-wise activations understood by ``KernelBackend.activation``.
ACTIVATIONS: tuple[str, ...] = (
    "identity",
    "relu",
    "leaky_relu",
    "elu",
    "selu",
    "gelu",
    "gelu_tanh",
    "sigmoid",
    "tanh",
    "softplus",
    "softsign",
    "silu",
    "mish",
    "hardswish",
    "hardsigmoid",
    "relu6",
)


class KernelError(RuntimeError):
    """A kernel refused its arguments (a native error code turned into an exception)."""


class KernelBackend:
    """Abstract kernel backend: one method per op in :data:`OPS`.

    Subclasses set ``name`` and implement the ops. Arrays are NumPy arrays; results are
    new arrays of the input dtype.

    Example:
        >>> from axiom.backends.reference import ReferenceBackend
        >>> be = ReferenceBackend()
        >>> isinstance(be, KernelBackend), be.implemented_ops() == OPS
        (True, True)
    """

    name: str = "abstract"

    def __repr__(self) -> str:
        return f"{type(self).__name__}(name={self.name!r})"

    def implemented_ops(self) -> tuple[str, ...]:
        """Ops this backend runs itself (not through a fallback)."""
        return OPS

    # -- linear algebra -------------------------------------------------------------
    def matmul(self, a: np.ndarray, b: np.ndarray) -> np.ndarray:
        """``a @ b`` with NumPy semantics (2-D or batched with broadcasting)."""
        raise NotImplementedError

    def conv2d(
        self,
        x: np.ndarray,
        w: np.ndarray,
        bias: np.ndarray | None,
        stride: Pair,
        padding: Padding2d,
        dilation: Pair,
        groups: int,
    ) -> np.ndarray:
        """NHWC 2-D cross-correlation; ``w`` is ``(kH, kW, C_in/groups, C_out)``."""
        raise NotImplementedError

    # -- normalisation --------------------------------------------------------------
    def batchnorm(
        self,
        x: np.ndarray,
        mean: np.ndarray,
        var: np.ndarray,
        gamma: np.ndarray | None,
        beta: np.ndarray | None,
        eps: float,
    ) -> np.ndarray:
        """Normalise the last (channel) axis with the given statistics."""
        raise NotImplementedError

    def layernorm(
        self,
        x: np.ndarray,
        gamma: np.ndarray | None,
        beta: np.ndarray | None,
        eps: float,
        n_axes: int,
    ) -> np.ndarray:
        """Normalise over the last ``n_axes`` axes."""
        raise NotImplementedError

    def rmsnorm(self, x: np.ndarray, gamma: np.ndarray | None, eps: float, n_axes: int) -> np.ndarray:
        """Divide by the root mean square over the last ``n_axes`` axes."""
        raise NotImplementedError

    # -- pooling --------------------------------------------------------------------
    def max_pool2d(self, x: np.ndarray, kernel: Pair, stride: Pair, padding: Padding2d, dilation: Pair) -> np.ndarray:
        """NHWC max pooling; padded cells never win."""
        raise NotImplementedError

    def avg_pool2d(
        self, x: np.ndarray, kernel: Pair, stride: Pair, padding: Padding2d, count_include_pad: bool
    ) -> np.ndarray:
        """NHWC average pooling."""
        raise NotImplementedError

    def global_avg_pool(self, x: np.ndarray) -> np.ndarray:
        """``(N, H, W, C) -> (N, C)``."""
        raise NotImplementedError

    # -- softmax and activations ----------------------------------------------------
    def softmax(self, x: np.ndarray, axis: int) -> np.ndarray:
        """Numerically stable softmax along ``axis``."""
        raise NotImplementedError

    def log_softmax(self, x: np.ndarray, axis: int) -> np.ndarray:
        """Numerically stable log-softmax along ``axis``."""
        raise NotImplementedError

    def activation(self, x: np.ndarray, name: str, alpha: float = 0.0) -> np.ndarray:
        """Element-wise activation ``name`` (one of :data:`ACTIVATIONS`); ``alpha`` for leaky_relu/elu."""
        raise NotImplementedError

    # -- attention ------------------------------------------------------------------
    def attention(
        self,
        q: np.ndarray,
        k: np.ndarray,
        v: np.ndarray,
        causal: bool,
        scale: float,
        mask: np.ndarray | None = None,
    ) -> np.ndarray:
        """``softmax(q k^T * scale + mask) v`` on ``(batch, heads, seq, head_dim)``.

        ``mask`` is additive and broadcasts to ``(batch, heads, seq_q, seq_k)``; ``causal``
        hides key positions after the query position (aligned at the end, as in PyTorch when
        ``seq_q == seq_k``).
        """
        raise NotImplementedError

    def rope(self, x: np.ndarray, positions: np.ndarray, base: float) -> np.ndarray:
        """Rotary position embedding on ``(..., seq, head_dim)`` (rotate-half convention)."""
        raise NotImplementedError

    # -- backward kernels (GRAD_OPS) --------------------------------------------------
    def matmul_backward(self, a: np.ndarray, b: np.ndarray, grad_out: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """``(d a, d b)`` of ``sum(grad_out * (a @ b))`` (NumPy matmul semantics, broadcast axes summed)."""
        raise NotImplementedError

    def conv2d_backward(
        self,
        x: np.ndarray,
        w: np.ndarray,
        grad_out: np.ndarray,
        stride: Pair,
        padding: Padding2d,
        dilation: Pair,
        groups: int,
    ) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        """``(d x, d w, d bias)`` of ``sum(grad_out * (conv2d(x, w) + bias))``: the input and weight kernels.

        Example:
            >>> from axiom.backends.reference import ReferenceBackend
            >>> x, w, gy = (np.ones(s) for s in ((1, 3, 3, 2), (1, 1, 2, 4), (1, 3, 3, 4)))
            >>> dx, dw, db = ReferenceBackend().conv2d_backward(x, w, gy, (1, 1), ((0, 0), (0, 0)), (1, 1), 1)
            >>> float(dx[0, 0, 0, 0]), float(dw[0, 0, 0, 0]), db.tolist()
            (4.0, 9.0, [9.0, 9.0, 9.0, 9.0])
        """
        dx = self.conv2d_backward_input(grad_out, w, x.shape, stride, padding, dilation, groups)
        dw, db = self.conv2d_backward_weight(x, grad_out, w.shape, stride, padding, dilation, groups)
        return dx, dw, db

    def conv2d_backward_input(
        self,
        grad_out: np.ndarray,
        w: np.ndarray,
        x_shape: tuple[int, int, int, int],
        stride: Pair,
        padding: Padding2d,
        dilation: Pair,
        groups: int,
    ) -> np.ndarray:
        """``d x`` alone (for an input that needs a gradient when the weights do not)."""
        raise NotImplementedError

    def conv2d_backward_weight(
        self,
        x: np.ndarray,
        grad_out: np.ndarray,
        w_shape: tuple[int, int, int, int],
        stride: Pair,
        padding: Padding2d,
        dilation: Pair,
        groups: int,
    ) -> tuple[np.ndarray, np.ndarray]:
        """``(d w, d bias)`` alone (a first layer: its input needs no gradient)."""
        raise NotImplementedError

    def batchnorm_backward(
        self,
        grad_out: np.ndarray,
        x: np.ndarray,
        mean: np.ndarray,
        var: np.ndarray,
        gamma: np.ndarray | None,
        eps: float,
    ) -> tuple[np.ndarray, np.ndarray | None, np.ndarray]:
        """``(d x, d gamma | None, d beta)`` with ``mean`` and ``var`` held constant (shapes ``(C,)``)."""
        raise NotImplementedError

    def layernorm_backward(
        self, grad_out: np.ndarray, x: np.ndarray, gamma: np.ndarray | None, eps: float, n_axes: int
    ) -> tuple[np.ndarray, np.ndarray | None, np.ndarray]:
        """``(d x, d gamma | None, d beta)``; the parameter gradients have shape ``x.shape[-n_axes:]``."""
        raise NotImplementedError

    def rmsnorm_backward(
        self, grad_out: np.ndarray, x: np.ndarray, gamma: np.ndarray | None, eps: float, n_axes: int
    ) -> tuple[np.ndarray, np.ndarray | None]:
        """``(d x, d gamma | None)``; ``d gamma`` has shape ``x.shape[-n_axes:]``."""
        raise NotImplementedError

    def max_pool2d_backward(
        self, grad_out: np.ndarray, x: np.ndarray, kernel: Pair, stride: Pair, padding: Padding2d, dilation: Pair
    ) -> np.ndarray:
        """``d x``: each window's gradient goes to its first maximum (or its last NaN), as in PyTorch."""
        raise NotImplementedError

    def avg_pool2d_backward(
        self,
        grad_out: np.ndarray,
        x_shape: tuple[int, ...],
        kernel: Pair,
        stride: Pair,
        padding: Padding2d,
        count_include_pad: bool,
    ) -> np.ndarray:
        """``d x`` of average pooling (``x`` itself is not needed)."""
        raise NotImplementedError

    def global_avg_pool_backward(self, grad_out: np.ndarray, x_shape: tuple[int, ...]) -> np.ndarray:
        """``d x`` of ``(N, H, W, C) -> (N, C)`` averaging."""
        raise NotImplementedError

    def softmax_backward(self, grad_out: np.ndarray, y: np.ndarray, axis: int) -> np.ndarray:
        """``d x`` of softmax from its output ``y``: ``y * (g - sum(g * y))``."""
        raise NotImplementedError

    def log_softmax_backward(self, grad_out: np.ndarray, y: np.ndarray, axis: int) -> np.ndarray:
        """``d x`` of log-softmax from its output ``y``: ``g - exp(y) * sum(g)``."""
        raise NotImplementedError

    def activation_backward(self, grad_out: np.ndarray, x: np.ndarray, name: str, alpha: float = 0.0) -> np.ndarray:
        """``d x`` of the element-wise activation ``name`` at ``x`` (PyTorch's choice at kinks: relu'(0) = 0)."""
        raise NotImplementedError

    def attention_backward(
        self,
        grad_out: np.ndarray,
        q: np.ndarray,
        k: np.ndarray,
        v: np.ndarray,
        causal: bool,
        scale: float,
        mask: np.ndarray | None = None,
    ) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        """``(d q, d k, d v)`` of :meth:`attention` (the additive ``mask`` is a constant)."""
        raise NotImplementedError

    def rope_backward(self, grad_out: np.ndarray, positions: np.ndarray, base: float) -> np.ndarray:
        """``d x`` of :meth:`rope`: RoPE is a rotation, so its transpose is RoPE at ``-positions``.

        Example:
            >>> from axiom.backends.reference import ReferenceBackend
            >>> be, x = ReferenceBackend(), np.random.default_rng(0).standard_normal((1, 3, 4))
            >>> pos = np.arange(3)
            >>> bool(np.allclose(be.rope_backward(be.rope(x, pos, 10000.0), pos, 10000.0), x))
            True
        """
        return self.rope(grad_out, -np.asarray(positions, np.float64), base)


class PartialBackend(KernelBackend):
    """A backend that implements some ops natively and runs the rest on the reference.

    Every op missing from ``native_ops`` runs on the NumPy reference, is recorded in
    ``self.fallbacks`` and warned about once per backend instance and op. Nothing falls
    back silently.

    Example:
        >>> class OnlySoftmax(PartialBackend):
        ...     name, native_ops = "only-softmax", ("softmax",)
        >>> OnlySoftmax().implemented_ops()
        ('softmax',)
    """

    native_ops: tuple[str, ...] = ()
    #: backward kernels (from :data:`GRAD_OPS`) this class implements; the rest run on the reference,
    #: except those of :data:`DERIVED_GRAD_OPS`, which the contract builds from forward ops
    native_grad_ops: tuple[str, ...] = ()

    def __init__(self) -> None:
        from axiom.backends.reference import ReferenceBackend

        self._reference = ReferenceBackend()
        self.fallbacks: dict[str, str] = {}

    def implemented_ops(self) -> tuple[str, ...]:
        return tuple(op for op in OPS if op in self.native_ops)

    def fallback(self, op: str, reason: str, *args: Any, **kwargs: Any) -> np.ndarray:
        """Run ``op`` on the reference, record why, and warn the first time."""
        if op not in self.fallbacks:
            self.fallbacks[op] = reason
            warnings.warn(
                f"backend {self.name!r}: op {op!r} runs on the NumPy reference ({reason})",
                FallbackWarning,
                stacklevel=3,
            )
        return getattr(self._reference, op)(*args, **kwargs)

    def __getattribute__(self, attr: str) -> Any:
        # Ops this class does not implement natively are routed to the reference. Every
        # attribute access comes here, so anything that is no op leaves after one set lookup.
        if attr in _ROUTABLE:
            cls = type(self)
            if (attr in OPS and attr not in cls.native_ops) or (
                attr in GRAD_OPS and attr not in cls.native_grad_ops and attr not in DERIVED_GRAD_OPS
            ):
                backend = object.__getattribute__(self, "fallback")
                return lambda *a, **k: backend(attr, "not implemented by this backend", *a, **k)
        return object.__getattribute__(self, attr)


_ROUTABLE = frozenset(OPS) | frozenset(GRAD_OPS)


class FallbackWarning(UserWarning):
    """An op ran on the NumPy reference instead of the requested backend."""
