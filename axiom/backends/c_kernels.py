"""The C backend's NN kernels (norms, pooling, softmax, activations, attention, RoPE).

:class:`CKernelsMixin` adds one method per op in :data:`C_NN_OPS` to
:class:`~axiom.backends.native.CBackend`, with the contract's signature and the reference's
semantics (:mod:`axiom.backends.reference`). Each method checks its arguments (``TypeError`` /
``ValueError`` naming the op, the shapes and what was expected), makes the inputs contiguous
in the compute dtype (float64 stays float64; float32, float16, bfloat16 and integers compute
in float32 and are cast back, like the reference), calls the C kernel of
``csrc/axiom_kernels_nn.h`` and turns a non-zero status code into an exception.

The kernels are reached through the Cython module ``axiom._core._nn`` (GIL released) for
``CBackend()``, or through ctypes (:data:`axiom.backends.abi.SIGNATURES`) for the Rust and
Zig libraries and for a backend given a ``path``.

Backward kernels, for the autograd engine (extra methods, not part of the contract; every
``grad_out`` has the shape of the forward output):

- ``batchnorm_backward(grad_out, x, mean, var, gamma, eps) -> (dx, dgamma | None, dbeta)``
  (inference statistics: ``mean`` and ``var`` are constants);
- ``layernorm_backward(grad_out, x, gamma, eps, n_axes) -> (dx, dgamma | None, dbeta)``;
- ``rmsnorm_backward(grad_out, x, gamma, eps, n_axes) -> (dx, dgamma | None)``;
- ``max_pool2d_backward(grad_out, x, kernel, stride, padding, dilation) -> dx`` (each gradient
  goes to the first maximum of its window, or its last NaN, like PyTorch);
- ``avg_pool2d_backward(grad_out, x_shape, kernel, stride, padding, count_include_pad) -> dx``;
- ``global_avg_pool_backward(grad_out, x_shape) -> dx``;
- ``softmax_backward(grad_out, y, axis)`` and ``log_softmax_backward(grad_out, y, axis) -> dx``
  from the forward output ``y``.
- ``activation_backward(grad_out, x, name, alpha) -> dx = grad_out * act'(x)`` (PyTorch's
  choices at the kinks, like :func:`axiom.backends.reference_grad.activation_backward`).
- ``attention_backward(grad_out, q, k, v, causal, scale, mask) -> (dq, dk, dv)``
  (flash-attention style: probabilities recomputed block by block, no ``seq_q x seq_k`` matrix).

``dgamma`` and ``dbeta`` have the normalised shape (``x.shape[-n_axes:]``, or ``(C,)`` for
batch norm); sum them down yourself if the parameter was broadcast from a smaller shape.

OpenMP: :mod:`axiom.backends.openmp` sets ``OMP_WAIT_POLICY=PASSIVE`` and ``GOMP_SPINCOUNT=2000``
before any OpenMP runtime starts (idle threads spin briefly, then sleep: they must not spin on
small shared machines) and warns when torch started one first; the kernels only go parallel
above a work threshold.

Example:
    >>> import numpy as np
    >>> from axiom.backends.native import CBackend
    >>> be = CBackend()
    >>> y = be.softmax(np.array([[0.0, 1.0, 2.0]], np.float32), axis=-1)
    >>> [round(float(v), 4) for v in y[0]]
    [0.09, 0.2447, 0.6652]
    >>> "softmax" in be.implemented_ops() and not be.fallbacks
    True
"""

from __future__ import annotations

import ctypes
import math
import threading
from collections.abc import Callable, Sequence
from typing import Any, NamedTuple

import numpy as np

from axiom.backends import abi
from axiom.backends.base import ACTIVATIONS, OPS, Padding2d, Pair
from axiom.backends.reference_grad import sum_to

#: Contract ops the C backend runs natively besides matmul.
C_NN_OPS: tuple[str, ...] = tuple(op for op in OPS if op not in ("matmul", "conv2d"))

#: ``AXIOM_ACT_*`` code of each activation (the order of :data:`~axiom.backends.base.ACTIVATIONS`).
ACTIVATION_CODES: dict[str, int] = {name: i for i, name in enumerate(ACTIVATIONS)}

#: ``AXIOM_ERR_NOMEM``: a kernel could not allocate its scratch memory.
ERR_NOMEM = 3


def kernel_error(code: int, symbol: str) -> Exception:
    """The exception for a non-zero status ``code`` of an NN kernel.

    Example:
        >>> type(kernel_error(ERR_NOMEM, "axiom_attention_f32")).__name__
        'MemoryError'
        >>> isinstance(kernel_error(abi.ERR_SIZE, "axiom_softmax_f32"), ValueError)
        True
    """
    if code == ERR_NOMEM:
        return MemoryError(f"{symbol} returned AXIOM_ERR_NOMEM ({code}): could not allocate its scratch memory")
    return abi.error_for(code, symbol)


class NNKernels:
    """Calls the NN kernels by name: Cython (``lib=None``) or ctypes (``lib`` from ``abi.load_kernel_library``).

    ``kernels(name, dtype, *args)`` calls ``axiom_<name>_f32`` or ``_f64`` with ``args`` in the
    C order: arrays (C-contiguous, of the kernel's dtype, any shape; ``None`` for NULL) and
    numbers; a non-zero status raises (:func:`kernel_error`). ``missing(name)`` says why a
    kernel is unavailable, or ``None``.

    Example:
        >>> import numpy as np
        >>> k = NNKernels()
        >>> x = np.array([-1.0, 2.0]); y = np.empty_like(x)
        >>> k("activation", x.dtype, x, y, 2, ACTIVATION_CODES["relu"], 0.0); y.tolist()
        [0.0, 2.0]
        >>> k("activation", x.dtype, x, y, -2, 0, 0.0)
        Traceback (most recent call last):
        ...
        axiom.backends.abi.KernelArgumentError: axiom_activation_f64 returned AXIOM_ERR_SIZE (2): ...
    """

    def __init__(self, lib: ctypes.CDLL | None = None) -> None:
        self.lib = lib
        self._funcs: dict[str, Callable[..., int]] = {}
        self._lock = threading.Lock()
        self._module: Any = None
        self._error: str | None = None
        if lib is None:
            try:
                from axiom._core import _nn

                self._module = _nn
            except ImportError as e:
                self._error = f"the NN kernels could not be loaded ({e}); build them with `make build`"

    def missing(self, name: str) -> str | None:
        """Why ``axiom_<name>_f32`` / ``_f64`` cannot be called, or ``None`` when they can."""
        return self._error

    def _get(self, name: str, suffix: str) -> Callable[..., int]:
        key = f"{name}_{suffix}"
        fn = self._funcs.get(key)
        if fn is not None:
            return fn
        with self._lock:
            fn = (
                getattr(self._module, key)
                if self._module is not None
                else _ctypes_caller(getattr(self.lib, f"axiom_{key}"))
            )
            self._funcs[key] = fn
        return fn

    def __call__(self, name: str, dtype: np.dtype, *args: Any) -> None:
        suffix = "f64" if dtype == _F64 else "f32"
        fn = self._funcs.get(f"{name}_{suffix}") or self._get(name, suffix)
        if self._module is not None:
            args = tuple(a.reshape(-1) if type(a) is np.ndarray else a for a in args)
        code = fn(*args)
        if code != abi.OK:
            raise kernel_error(code, f"axiom_{name}_{suffix}")


def _ctypes_caller(cfn: Any) -> Callable[..., int]:
    def call(*args: Any) -> int:
        # arrays become addresses (the library's argtypes declare arrays as c_void_p); empty ones NULL
        return int(cfn(*[(None if a.size == 0 else a.ctypes.data) if type(a) is np.ndarray else a for a in args]))

    return call


# -- argument checks -------------------------------------------------------------------------


def _array(op: str, name: str, a: Any) -> np.ndarray:
    if type(a) is np.ndarray and a.dtype.kind == "f":
        return a
    if not isinstance(a, np.ndarray):
        raise TypeError(f"{op}: expected {name} to be a numpy.ndarray, got {type(a).__name__}")
    if not (a.dtype.kind in "biuf" or "float" in a.dtype.name):
        raise TypeError(f"{op}: {name} has dtype {a.dtype}; expected a real number dtype (float, int or bool)")
    return a


_F32, _F64 = np.dtype(np.float32), np.dtype(np.float64)


def _compute_dtype(*arrays: np.ndarray | None) -> np.dtype:
    """float64 if any input is float64, else float32 (float16, bfloat16 and integers compute in float32)."""
    for a in arrays:
        if a is not None and a.dtype == _F64:
            return _F64
    return _F32


def _c(a: np.ndarray | None, dtype: np.dtype) -> np.ndarray | None:
    if a is None or (a.dtype == dtype and a.flags.c_contiguous):
        return a
    return np.ascontiguousarray(a, dtype=dtype)


def _pair(op: str, name: str, value: Any, minimum: int) -> tuple[int, int]:
    try:
        a, b = value
        pair = (int(a), int(b))
        ok = pair == (a, b) and not isinstance(a, bool) and not isinstance(b, bool)
    except (TypeError, ValueError):
        ok = False
    if not ok or min(pair) < minimum:
        raise ValueError(f"{op}: {name} must be a pair of integers >= {minimum}, got {value!r}")
    return pair


def _padding(op: str, value: Any) -> tuple[int, int, int, int]:
    try:
        (t, b), (l, r) = value
        pads = tuple(int(p) for p in (t, b, l, r))
        ok = pads == (t, b, l, r) and not any(isinstance(p, bool) for p in (t, b, l, r))
    except (TypeError, ValueError):
        ok = False
    if not ok or min(pads) < 0:
        raise ValueError(f"{op}: padding must be ((top, bottom), (left, right)) of integers >= 0, got {value!r}")
    return pads  # type: ignore[return-value]


def _pool_out(size: int, k: int, s: int, p0: int, p1: int, d: int) -> int:
    return max(0, (size + p0 + p1 - d * (k - 1) - 1) // s + 1)


def _nhwc(op: str, x: np.ndarray) -> tuple[int, int, int, int]:
    if x.ndim != 4:
        raise ValueError(f"{op}: x has shape {x.shape}; expected 4 dimensions (batch, H, W, C)")
    return x.shape  # type: ignore[return-value]


def _channel_param(op: str, name: str, p: Any, c: int, dtype: np.dtype) -> np.ndarray:
    """A per-channel parameter (shape (C,), or anything with size-1 axes before it) as a (C,) array."""
    if type(p) is np.ndarray and p.shape == (c,) and p.dtype == dtype and p.flags.c_contiguous:
        return p
    p = _array(op, name, p)
    shape = p.shape
    if any(s != 1 for s in shape[:-1]) or (shape and shape[-1] not in (1, c)):
        raise ValueError(f"{op}: {name} has shape {shape}; expected ({c},) to match the channel axis of x")
    return np.ascontiguousarray(np.broadcast_to(p.reshape(shape[-1:] or (1,)), (c,)), dtype=dtype)


def _norm_param(op: str, name: str, p: Any, norm_shape: tuple[int, ...], dtype: np.dtype) -> np.ndarray | None:
    if p is None:
        return None
    if type(p) is np.ndarray and p.shape == norm_shape and p.dtype == dtype and p.flags.c_contiguous:
        return p
    p = _array(op, name, p)
    try:
        return np.ascontiguousarray(np.broadcast_to(p, norm_shape), dtype=dtype)
    except ValueError:
        raise ValueError(
            f"{op}: {name} has shape {p.shape}; expected it to broadcast to the normalised shape {norm_shape}"
        ) from None


def _n_axes(op: str, n_axes: Any, ndim: int) -> int:
    if isinstance(n_axes, bool) or not isinstance(n_axes, int | np.integer) or not 0 <= n_axes <= ndim:
        raise ValueError(f"{op}: n_axes must be an integer in [0, {ndim}] for x with {ndim} dimensions, got {n_axes!r}")
    return int(n_axes)


def _axis(op: str, axis: Any, ndim: int) -> int:
    if ndim == 0:
        raise ValueError(f"{op}: x is 0-dimensional; expected at least 1 dimension")
    if isinstance(axis, bool) or not isinstance(axis, int | np.integer) or not -ndim <= axis < ndim:
        raise ValueError(f"{op}: axis {axis!r} is out of range for x with {ndim} dimensions")
    return int(axis) % ndim


class _AttentionArgs(NamedTuple):
    lead: tuple[int, ...]  # the broadcast leading (batch, heads) shape
    lq: int
    dv: int
    dt: np.dtype
    q: np.ndarray  # contiguous, broadcast to lead, in dt
    k: np.ndarray
    v: np.ndarray
    mask: np.ndarray | None  # base array of the mask view (None: no mask)
    sizes: tuple[int, int, int, int, int, int]  # batch, heads, lq, lk, d, dv
    strides: tuple[int, int, int, int]  # mask strides in elements (0: broadcast)


def _attention_args(op: str, q: Any, k: Any, v: Any, mask: Any) -> _AttentionArgs:
    """Check and prepare attention operands: leading dims broadcast like ``numpy.matmul``; the mask
    broadcasts to ``(*lead, lq, lk)`` without being materialised (strides of 0)."""
    q, k, v = _array(op, "q", q), _array(op, "k", k), _array(op, "v", v)
    shapes = f"q {q.shape}, k {k.shape}, v {v.shape}"
    if q.ndim < 2 or k.ndim < 2 or v.ndim < 2:
        raise ValueError(f"{op}: {shapes}; expected (batch, heads, seq, head_dim) arrays (at least 2-D)")
    if q.shape[-1] != k.shape[-1] or k.shape[-2] != v.shape[-2]:
        raise ValueError(f"{op}: {shapes}; expected q and k to share head_dim and k and v to share seq")
    try:
        lead = np.broadcast_shapes(q.shape[:-2], k.shape[:-2], v.shape[:-2])
    except ValueError:
        raise ValueError(f"{op}: {shapes}; expected the leading (batch, heads) dimensions to broadcast") from None
    lq, d = q.shape[-2:]
    lk, dv = v.shape[-2:]
    batch, heads = (math.prod(lead[:-1]), lead[-1]) if lead else (1, 1)
    dt = _compute_dtype(q, k, v)
    qc, kc, vc = (np.ascontiguousarray(np.broadcast_to(a, (*lead, *a.shape[-2:])), dtype=dt) for a in (q, k, v))
    mbase: np.ndarray | None = None
    strides = (0, 0, 0, 0)
    if mask is not None:
        mask = _array(op, "mask", mask)
        mc = np.ascontiguousarray(mask, dtype=dt)
        try:
            mview = np.broadcast_to(mc, (*lead, lq, lk))
        except ValueError:
            raise ValueError(
                f"{op}: mask has shape {mask.shape}; expected it to broadcast to {(*lead, lq, lk)}"
            ) from None
        m4 = mview.reshape(batch, heads, lq, lk)  # a view unless the leading axes cannot merge
        mbase = mc if np.may_share_memory(m4, mc) else np.ascontiguousarray(m4)
        if mbase is not mc:
            m4 = mbase
        strides = tuple(s // mbase.itemsize for s in m4.strides)  # type: ignore[assignment]
        if mbase.size == 0:
            mbase = None
    return _AttentionArgs(lead, lq, dv, dt, qc, kc, vc, mbase, (batch, heads, lq, lk, d, dv), strides)


class CKernelsMixin:
    """Native NN ops for the C backend (see the module docstring).

    Example:
        >>> import numpy as np
        >>> from axiom.backends.native import CBackend
        >>> be = CBackend()
        >>> x = np.arange(8, dtype=np.float32).reshape(1, 2, 2, 2)
        >>> be.max_pool2d(x, (2, 2), (2, 2), ((0, 0), (0, 0)), (1, 1)).ravel().tolist()
        [6.0, 7.0]
        >>> be.layernorm(np.array([[1.0, 3.0]]), None, None, 0.0, 1).tolist()
        [[-1.0, 1.0]]
    """

    fallback: Callable[..., np.ndarray]
    #: the ctypes library of the backend, or None for the C library's Cython modules
    kernel_lib: ctypes.CDLL | None

    # -- plumbing ---------------------------------------------------------------------------

    @property
    def nn_kernels(self) -> NNKernels:
        """The :class:`NNKernels` of this backend (loaded on first use)."""
        kernels = self.__dict__.get("_nn_kernels")
        if kernels is None:
            kernels = self.__dict__["_nn_kernels"] = NNKernels(self.kernel_lib)
        return kernels

    def _missing(self, kernel: str) -> str | None:
        kernels = self.__dict__.get("_nn_kernels")
        return (kernels if kernels is not None else self.nn_kernels).missing(kernel)

    # -- normalisation ----------------------------------------------------------------------

    def batchnorm(
        self,
        x: np.ndarray,
        mean: np.ndarray,
        var: np.ndarray,
        gamma: np.ndarray | None,
        beta: np.ndarray | None,
        eps: float,
    ) -> np.ndarray:
        """Inference batch norm over the last (channel) axis: ``(x - mean) / sqrt(var + eps) * gamma + beta``.

        Example:
            >>> import numpy as np
            >>> from axiom.backends.native import CBackend
            >>> x = np.array([[1.0, 2.0], [3.0, 4.0]], np.float32)
            >>> CBackend().batchnorm(x, np.array([2.0, 3.0]), np.array([1.0, 1.0]), None, None, 0.0).tolist()
            [[-1.0, -1.0], [1.0, 1.0]]
        """
        op = "batchnorm"
        if (reason := self._missing(op)) is not None:
            return self.fallback(op, reason, x, mean, var, gamma, beta, eps)
        x = _array(op, "x", x)
        if x.ndim == 0:
            raise ValueError(f"{op}: x is 0-dimensional; expected (..., C)")
        c = x.shape[-1]
        dt = _compute_dtype(x)
        if mean is None or var is None:
            raise TypeError(f"{op}: mean and var are required arrays, got None")
        params = [
            None if p is None else _channel_param(op, name, p, c, dt)
            for name, p in (("mean", mean), ("var", var), ("gamma", gamma), ("beta", beta))
        ]
        y = np.empty(x.shape, dt)
        self.nn_kernels(op, dt, _c(x, dt), *params, y, x.size // c if c else 0, c, float(eps))
        return y.astype(x.dtype, copy=False)

    def layernorm(
        self,
        x: np.ndarray,
        gamma: np.ndarray | None,
        beta: np.ndarray | None,
        eps: float,
        n_axes: int,
    ) -> np.ndarray:
        """Normalise over the last ``n_axes`` axes (two-pass mean and biased variance).

        Example:
            >>> import numpy as np
            >>> from axiom.backends.native import CBackend
            >>> CBackend().layernorm(np.array([[0.0, 2.0]], np.float32), None, np.array([1.0]), 0.0, 1).tolist()
            [[0.0, 2.0]]
        """
        op = "layernorm"
        if (reason := self._missing(op)) is not None:
            return self.fallback(op, reason, x, gamma, beta, eps, n_axes)
        x = _array(op, "x", x)
        k = _n_axes(op, n_axes, x.ndim)
        norm_shape = x.shape[x.ndim - k :]
        n = math.prod(norm_shape)
        dt = _compute_dtype(x)
        g, b = _norm_param(op, "gamma", gamma, norm_shape, dt), _norm_param(op, "beta", beta, norm_shape, dt)
        y = np.empty(x.shape, dt)
        self.nn_kernels(op, dt, _c(x, dt), g, b, y, x.size // n if n else 0, n, float(eps))
        return y.astype(x.dtype, copy=False)

    def rmsnorm(self, x: np.ndarray, gamma: np.ndarray | None, eps: float, n_axes: int) -> np.ndarray:
        """Divide by the root mean square over the last ``n_axes`` axes, then scale by ``gamma``.

        Example:
            >>> import numpy as np
            >>> from axiom.backends.native import CBackend
            >>> CBackend().rmsnorm(np.array([[3.0, 4.0]]), None, 0.0, 1).round(4).tolist()
            [[0.8485, 1.1314]]
        """
        op = "rmsnorm"
        if (reason := self._missing(op)) is not None:
            return self.fallback(op, reason, x, gamma, eps, n_axes)
        x = _array(op, "x", x)
        k = _n_axes(op, n_axes, x.ndim)
        norm_shape = x.shape[x.ndim - k :]
        n = math.prod(norm_shape)
        dt = _compute_dtype(x)
        y = np.empty(x.shape, dt)
        g = _norm_param(op, "gamma", gamma, norm_shape, dt)
        self.nn_kernels(op, dt, _c(x, dt), g, y, x.size // n if n else 0, n, float(eps))
        return y.astype(x.dtype, copy=False)

    # -- pooling ----------------------------------------------------------------------------

    def _pool_args(
        self, op: str, x: np.ndarray, kernel: Any, stride: Any, padding: Any, dilation: Any
    ) -> tuple[tuple[int, ...], tuple[int, int, int, int]]:
        n, h, w, c = _nhwc(op, _array(op, "x", x))
        kh, kw = _pair(op, "kernel", kernel, 1)
        sh, sw = _pair(op, "stride", stride, 1)
        dh, dw = _pair(op, "dilation", dilation, 1)
        pt, pb, pl, pr = _padding(op, padding)
        ho, wo = _pool_out(h, kh, sh, pt, pb, dh), _pool_out(w, kw, sw, pl, pr, dw)
        return (n, h, w, c, kh, kw, sh, sw, pt, pb, pl, pr, dh, dw), (n, ho, wo, c)

    def max_pool2d(self, x: np.ndarray, kernel: Pair, stride: Pair, padding: Padding2d, dilation: Pair) -> np.ndarray:
        """NHWC max pooling with padding and dilation; padded cells never win, NaN does.

        Example:
            >>> import numpy as np
            >>> from axiom.backends.native import CBackend
            >>> x = -np.ones((1, 1, 1, 1), np.float32)
            >>> CBackend().max_pool2d(x, (2, 2), (1, 1), ((1, 0), (1, 0)), (1, 1)).ravel().tolist()
            [-1.0]
        """
        op = "max_pool2d"
        if (reason := self._missing(op)) is not None:
            return self.fallback(op, reason, x, kernel, stride, padding, dilation)
        geom, out_shape = self._pool_args(op, x, kernel, stride, padding, dilation)
        dt = _compute_dtype(x)
        y = np.empty(out_shape, dt)
        self.nn_kernels(op, dt, _c(x, dt), y, *geom)
        return y.astype(x.dtype, copy=False)

    def avg_pool2d(
        self, x: np.ndarray, kernel: Pair, stride: Pair, padding: Padding2d, count_include_pad: bool
    ) -> np.ndarray:
        """NHWC average pooling; ``count_include_pad`` divides by the full window size.

        Example:
            >>> import numpy as np
            >>> from axiom.backends.native import CBackend
            >>> x = np.ones((1, 1, 1, 1), np.float32)
            >>> be = CBackend()
            >>> [be.avg_pool2d(x, (2, 2), (1, 1), ((1, 0), (1, 0)), p).item() for p in (True, False)]
            [0.25, 1.0]
        """
        op = "avg_pool2d"
        if (reason := self._missing(op)) is not None:
            return self.fallback(op, reason, x, kernel, stride, padding, count_include_pad)
        geom, out_shape = self._pool_args(op, x, kernel, stride, padding, (1, 1))
        dt = _compute_dtype(x)
        y = np.empty(out_shape, dt)
        self.nn_kernels(op, dt, _c(x, dt), y, *geom[:12], int(bool(count_include_pad)))
        return y.astype(x.dtype, copy=False)

    def global_avg_pool(self, x: np.ndarray) -> np.ndarray:
        """``(N, H, W, C) -> (N, C)``: the mean over H and W (NaN when H * W == 0).

        Example:
            >>> import numpy as np
            >>> from axiom.backends.native import CBackend
            >>> CBackend().global_avg_pool(np.arange(8.0).reshape(1, 2, 2, 2)).tolist()
            [[3.0, 4.0]]
        """
        op = "global_avg_pool"
        if (reason := self._missing(op)) is not None:
            return self.fallback(op, reason, x)
        n, h, w, c = _nhwc(op, _array(op, "x", x))
        dt = _compute_dtype(x)
        y = np.empty((n, c), dt)
        self.nn_kernels(op, dt, _c(x, dt), y, n, h * w, c)
        return y.astype(x.dtype, copy=False)

    # -- softmax and activations ------------------------------------------------------------

    def _softmax(self, op: str, x: np.ndarray, axis: int) -> np.ndarray:
        if (reason := self._missing("softmax")) is not None:
            return self.fallback(op, reason, x, axis)
        x = _array(op, "x", x)
        ax = _axis(op, axis, x.ndim)
        dt = _compute_dtype(x)
        y = np.empty(x.shape, dt)
        outer, inner = math.prod(x.shape[:ax]), math.prod(x.shape[ax + 1 :])
        self.nn_kernels("softmax", dt, _c(x, dt), y, outer, x.shape[ax], inner, int(op == "log_softmax"))
        return y.astype(x.dtype, copy=False)

    def softmax(self, x: np.ndarray, axis: int) -> np.ndarray:
        """Numerically stable softmax along ``axis`` (no transposition for inner axes).

        Example:
            >>> import numpy as np
            >>> from axiom.backends.native import CBackend
            >>> CBackend().softmax(np.zeros((2, 2)), axis=0).tolist()
            [[0.5, 0.5], [0.5, 0.5]]
        """
        return self._softmax("softmax", x, axis)

    def log_softmax(self, x: np.ndarray, axis: int) -> np.ndarray:
        """Numerically stable log-softmax along ``axis``.

        Example:
            >>> import numpy as np
            >>> from axiom.backends.native import CBackend
            >>> CBackend().log_softmax(np.zeros(4), axis=-1).round(4).tolist()
            [-1.3863, -1.3863, -1.3863, -1.3863]
        """
        return self._softmax("log_softmax", x, axis)

    def activation(self, x: np.ndarray, name: str, alpha: float = 0.0) -> np.ndarray:
        """Element-wise activation ``name`` (one of :data:`~axiom.backends.base.ACTIVATIONS`).

        Example:
            >>> import numpy as np
            >>> from axiom.backends.native import CBackend
            >>> CBackend().activation(np.array([-2.0, 2.0], np.float32), "leaky_relu", 0.5).tolist()
            [-1.0, 2.0]
        """
        op = "activation"
        if name not in ACTIVATION_CODES:
            raise ValueError(f"unknown activation {name!r}; expected one of {', '.join(ACTIVATIONS)}")
        if (reason := self._missing(op)) is not None:
            return self.fallback(op, reason, x, name, alpha)
        x = _array(op, "x", x)
        dt = _compute_dtype(x)
        y = np.empty(x.shape, dt)
        self.nn_kernels(op, dt, _c(x, dt), y, x.size, ACTIVATION_CODES[name], float(alpha))
        return y.astype(x.dtype, copy=False)

    # -- attention and RoPE -----------------------------------------------------------------

    def attention(
        self,
        q: np.ndarray,
        k: np.ndarray,
        v: np.ndarray,
        causal: bool,
        scale: float,
        mask: np.ndarray | None = None,
    ) -> np.ndarray:
        """Flash attention ``softmax(q k^T * scale + mask) v`` on ``(batch, heads, seq, head_dim)``.

        Memory is linear in the sequence lengths (no ``seq_q x seq_k`` matrix). Leading
        dimensions broadcast like ``numpy.matmul``; ``mask`` is additive and broadcasts to
        ``(..., seq_q, seq_k)`` without being materialised; ``causal`` is aligned at the end.
        A query that sees no key (causal with ``seq_q > seq_k``, an all ``-inf`` mask row, or
        ``seq_k == 0``) gets NaN.

        Example:
            >>> import numpy as np
            >>> from axiom.backends.native import CBackend
            >>> q = np.zeros((1, 1, 2, 4), np.float32); k = np.zeros((1, 1, 2, 4), np.float32)
            >>> v = np.array([[[[1.0], [3.0]]]], np.float32)
            >>> CBackend().attention(q, k, v, causal=True, scale=0.5).ravel().tolist()
            [1.0, 2.0]
        """
        op = "attention"
        if (reason := self._missing(op)) is not None:
            return self.fallback(op, reason, q, k, v, causal, scale, mask)
        a = _attention_args(op, q, k, v, mask)
        out = np.empty((*a.lead, a.lq, a.dv), a.dt)
        self.nn_kernels(op, a.dt, a.q, a.k, a.v, a.mask, out, *a.sizes, float(scale), int(bool(causal)), *a.strides)
        return out.astype(q.dtype, copy=False)

    def rope(self, x: np.ndarray, positions: np.ndarray, base: float) -> np.ndarray:
        """Rotary position embedding on ``(..., seq, head_dim)``, rotate-half convention.

        Example:
            >>> import numpy as np
            >>> from axiom.backends.native import CBackend
            >>> x = np.array([[1.0, 0.0]], np.float32)
            >>> CBackend().rope(x, np.array([np.pi / 2]), 10000.0).round(6).tolist()
            [[0.0, 1.0]]
        """
        op = "rope"
        if (reason := self._missing(op)) is not None:
            return self.fallback(op, reason, x, positions, base)
        x = _array(op, "x", x)
        if x.ndim < 2:
            raise ValueError(f"{op}: x has shape {x.shape}; expected (..., seq, head_dim)")
        seq, d = x.shape[-2:]
        pos = np.asarray(positions)
        if pos.shape != (seq,) or pos.dtype.kind not in "biuf":
            raise ValueError(
                f"{op}: positions has shape {pos.shape}; expected ({seq},) numbers for x of shape {x.shape}"
            )
        dt = _compute_dtype(x)
        y = np.empty(x.shape, dt)
        outer = x.size // (seq * d) if seq * d else 0
        self.nn_kernels(op, dt, _c(x, dt), np.ascontiguousarray(pos, np.float64), y, outer, seq, d, float(base))
        return y.astype(x.dtype, copy=False)

    # -- backward kernels (not part of the contract) ----------------------------------------

    def _grad(self, op: str, grad_out: Any, shape: tuple[int, ...]) -> np.ndarray:
        g = _array(op, "grad_out", grad_out)
        if g.shape != shape:
            raise ValueError(f"{op}: grad_out has shape {g.shape}; expected the forward output's shape {shape}")
        return g

    def _require(self, kernel: str) -> None:
        if (reason := self._missing(kernel)) is not None:
            raise NotImplementedError(f"backend {getattr(self, 'name', '?')!r}: {kernel} is unavailable: {reason}")

    def batchnorm_backward(
        self,
        grad_out: np.ndarray,
        x: np.ndarray,
        mean: np.ndarray,
        var: np.ndarray,
        gamma: np.ndarray | None,
        eps: float,
    ) -> tuple[np.ndarray, np.ndarray | None, np.ndarray]:
        """Gradients ``(dx, dgamma | None, dbeta)`` of inference batch norm (``mean``, ``var`` fixed).

        Example:
            >>> import numpy as np
            >>> from axiom.backends.native import CBackend
            >>> x = np.array([[1.0], [3.0]]); g = np.ones((2, 1))
            >>> dx, dgamma, dbeta = CBackend().batchnorm_backward(g, x, np.array([2.0]), np.array([4.0]), None, 0.0)
            >>> dx.ravel().tolist(), dgamma, dbeta.tolist()
            ([0.5, 0.5], None, [2.0])
        """
        op = "batchnorm_backward"
        self._require(op)
        x = _array(op, "x", x)
        if x.ndim == 0:
            raise ValueError(f"{op}: x is 0-dimensional; expected (..., C)")
        g = self._grad(op, grad_out, x.shape)
        c = x.shape[-1]
        dt = _compute_dtype(x, g)
        m, va = _channel_param(op, "mean", mean, c, dt), _channel_param(op, "var", var, c, dt)
        gm = None if gamma is None else _channel_param(op, "gamma", gamma, c, dt)
        dx, dgamma, dbeta = np.empty(x.shape, dt), None if gamma is None else np.empty(c, dt), np.empty(c, dt)
        rows = x.size // c if c else 0
        self.nn_kernels(
            "batchnorm_backward", dt, _c(g, dt), _c(x, dt), m, va, gm, dx, dgamma, dbeta, rows, c, float(eps)
        )
        pdt = x.dtype if gamma is None else gamma.dtype
        return (
            dx.astype(x.dtype, copy=False),
            None if dgamma is None else dgamma.astype(pdt, copy=False),
            dbeta.astype(pdt, copy=False),
        )

    def layernorm_backward(
        self, grad_out: np.ndarray, x: np.ndarray, gamma: np.ndarray | None, eps: float, n_axes: int
    ) -> tuple[np.ndarray, np.ndarray | None, np.ndarray]:
        """Gradients ``(dx, dgamma | None, dbeta)`` of :meth:`layernorm`.

        Example:
            >>> import numpy as np
            >>> from axiom.backends.native import CBackend
            >>> x = np.array([[1.0, 3.0]]); g = np.array([[1.0, 0.0]])
            >>> dx, dgamma, dbeta = CBackend().layernorm_backward(g, x, np.ones(2), 0.0, 1)
            >>> dx.tolist(), dgamma.tolist(), dbeta.tolist()
            ([[0.0, 0.0]], [-1.0, 0.0], [1.0, 0.0])
        """
        op = "layernorm_backward"
        self._require(op)
        x = _array(op, "x", x)
        g = self._grad(op, grad_out, x.shape)
        k = _n_axes(op, n_axes, x.ndim)
        norm_shape = x.shape[x.ndim - k :]
        n = math.prod(norm_shape)
        dt = _compute_dtype(x, g)
        gm = _norm_param(op, "gamma", gamma, norm_shape, dt)
        dx, dbeta = np.empty(x.shape, dt), np.empty(norm_shape, dt)
        dgamma = None if gamma is None else np.empty(norm_shape, dt)
        rows = x.size // n if n else 0
        self.nn_kernels(op, dt, _c(g, dt), _c(x, dt), gm, dx, dgamma, dbeta, rows, n, float(eps))
        pdt = x.dtype if gamma is None else gamma.dtype
        return (
            dx.astype(x.dtype, copy=False),
            None if dgamma is None else dgamma.astype(pdt, copy=False),
            dbeta.astype(pdt, copy=False),
        )

    def rmsnorm_backward(
        self, grad_out: np.ndarray, x: np.ndarray, gamma: np.ndarray | None, eps: float, n_axes: int
    ) -> tuple[np.ndarray, np.ndarray | None]:
        """Gradients ``(dx, dgamma | None)`` of :meth:`rmsnorm`.

        Example:
            >>> import numpy as np
            >>> from axiom.backends.native import CBackend
            >>> dx, dgamma = CBackend().rmsnorm_backward(np.ones((1, 2)), np.array([[3.0, 4.0]]), None, 0.0, 1)
            >>> dx.round(4).tolist(), dgamma
            ([[0.0453, -0.0339]], None)
        """
        op = "rmsnorm_backward"
        self._require(op)
        x = _array(op, "x", x)
        g = self._grad(op, grad_out, x.shape)
        k = _n_axes(op, n_axes, x.ndim)
        norm_shape = x.shape[x.ndim - k :]
        n = math.prod(norm_shape)
        dt = _compute_dtype(x, g)
        gm = _norm_param(op, "gamma", gamma, norm_shape, dt)
        dx = np.empty(x.shape, dt)
        dgamma = None if gamma is None else np.empty(norm_shape, dt)
        rows = x.size // n if n else 0
        self.nn_kernels(op, dt, _c(g, dt), _c(x, dt), gm, dx, dgamma, rows, n, float(eps))
        return dx.astype(x.dtype, copy=False), None if dgamma is None else dgamma.astype(gamma.dtype, copy=False)  # type: ignore[union-attr]

    def max_pool2d_backward(
        self, grad_out: np.ndarray, x: np.ndarray, kernel: Pair, stride: Pair, padding: Padding2d, dilation: Pair
    ) -> np.ndarray:
        """Gradient of :meth:`max_pool2d` with respect to ``x``: each ``grad_out`` goes to its window's argmax.

        Example:
            >>> import numpy as np
            >>> from axiom.backends.native import CBackend
            >>> x = np.array([1.0, 5.0, 2.0, 5.0], np.float32).reshape(1, 2, 2, 1)
            >>> CBackend().max_pool2d_backward(np.ones((1, 1, 1, 1), np.float32), x, (2, 2), (2, 2),
            ...                                ((0, 0), (0, 0)), (1, 1)).ravel().tolist()
            [0.0, 1.0, 0.0, 0.0]
        """
        op = "max_pool2d_backward"
        self._require(op)
        geom, out_shape = self._pool_args(op, x, kernel, stride, padding, dilation)
        g = self._grad(op, grad_out, out_shape)
        dt = _compute_dtype(x, g)
        dx = np.empty(x.shape, dt)
        self.nn_kernels(op, dt, _c(x, dt), _c(g, dt), dx, *geom)
        return dx.astype(x.dtype, copy=False)

    def avg_pool2d_backward(
        self,
        grad_out: np.ndarray,
        x_shape: Sequence[int],
        kernel: Pair,
        stride: Pair,
        padding: Padding2d,
        count_include_pad: bool,
    ) -> np.ndarray:
        """Gradient of :meth:`avg_pool2d` with respect to an input of shape ``x_shape`` (dtype of ``grad_out``).

        Example:
            >>> import numpy as np
            >>> from axiom.backends.native import CBackend
            >>> g = np.ones((1, 1, 1, 1), np.float32)
            >>> CBackend().avg_pool2d_backward(g, (1, 2, 2, 1), (2, 2), (2, 2), ((0, 0), (0, 0)), True).ravel().tolist()
            [0.25, 0.25, 0.25, 0.25]
        """
        op = "avg_pool2d_backward"
        self._require(op)
        shape = tuple(int(s) for s in x_shape)
        geom, out_shape = self._pool_args(op, np.empty(shape, np.uint8), kernel, stride, padding, (1, 1))
        g = self._grad(op, grad_out, out_shape)
        dt = _compute_dtype(g)
        dx = np.empty(shape, dt)
        self.nn_kernels(op, dt, _c(g, dt), dx, *geom[:12], int(bool(count_include_pad)))
        return dx.astype(g.dtype, copy=False)

    def global_avg_pool_backward(self, grad_out: np.ndarray, x_shape: Sequence[int]) -> np.ndarray:
        """Gradient of :meth:`global_avg_pool`: ``grad_out / (H * W)`` broadcast over H and W.

        Example:
            >>> import numpy as np
            >>> from axiom.backends.native import CBackend
            >>> CBackend().global_avg_pool_backward(np.ones((1, 1)), (1, 2, 2, 1)).ravel().tolist()
            [0.25, 0.25, 0.25, 0.25]
        """
        op = "global_avg_pool_backward"
        n, h, w, c = _nhwc(op, np.empty(tuple(int(s) for s in x_shape), np.uint8))
        g = self._grad(op, grad_out, (n, c))
        dt = _compute_dtype(g)
        dx = np.broadcast_to((g.astype(dt) / dt.type(h * w))[:, None, None, :], (n, h, w, c))
        return np.ascontiguousarray(dx).astype(g.dtype, copy=False)

    def _softmax_backward(self, op: str, grad_out: np.ndarray, y: np.ndarray, axis: int) -> np.ndarray:
        self._require("softmax_backward")
        y = _array(op, "y", y)
        g = self._grad(op, grad_out, y.shape)
        ax = _axis(op, axis, y.ndim)
        dt = _compute_dtype(y, g)
        dx = np.empty(y.shape, dt)
        outer, inner = math.prod(y.shape[:ax]), math.prod(y.shape[ax + 1 :])
        log = int(op == "log_softmax_backward")
        self.nn_kernels("softmax_backward", dt, _c(y, dt), _c(g, dt), dx, outer, y.shape[ax], inner, log)
        return dx.astype(y.dtype, copy=False)

    def softmax_backward(self, grad_out: np.ndarray, y: np.ndarray, axis: int) -> np.ndarray:
        """Gradient of :meth:`softmax` from its output ``y``: ``y * (grad_out - sum(grad_out * y))``.

        Example:
            >>> import numpy as np
            >>> from axiom.backends.native import CBackend
            >>> CBackend().softmax_backward(np.array([1.0, 0.0]), np.array([0.5, 0.5]), -1).tolist()
            [0.25, -0.25]
        """
        return self._softmax_backward("softmax_backward", grad_out, y, axis)

    def log_softmax_backward(self, grad_out: np.ndarray, y: np.ndarray, axis: int) -> np.ndarray:
        """Gradient of :meth:`log_softmax` from its output ``y``: ``grad_out - exp(y) * sum(grad_out)``.

        Example:
            >>> import numpy as np
            >>> from axiom.backends.native import CBackend
            >>> CBackend().log_softmax_backward(np.array([1.0, 0.0]), np.log([0.5, 0.5]), -1).tolist()
            [0.5, -0.5]
        """
        return self._softmax_backward("log_softmax_backward", grad_out, y, axis)

    def activation_backward(self, grad_out: np.ndarray, x: np.ndarray, name: str, alpha: float = 0.0) -> np.ndarray:
        """Gradient of :meth:`activation` at ``x``: ``grad_out * act'(x)``, with ``relu'(0) = 0`` (PyTorch).

        Example:
            >>> import numpy as np
            >>> from axiom.backends.native import CBackend
            >>> x = np.array([-1.0, 0.0, 2.0], np.float32)
            >>> CBackend().activation_backward(np.ones(3, np.float32), x, "leaky_relu", 0.1).tolist()
            [0.10000000149011612, 0.10000000149011612, 1.0]
        """
        op = "activation_backward"
        if name not in ACTIVATION_CODES:
            raise ValueError(f"{op}: unknown activation {name!r}; expected one of {', '.join(ACTIVATIONS)}")
        self._require(op)
        x = _array(op, "x", x)
        g = self._grad(op, grad_out, x.shape)
        dt = _compute_dtype(x, g)
        dx = np.empty(x.shape, dt)
        self.nn_kernels(op, dt, _c(g, dt), _c(x, dt), dx, x.size, ACTIVATION_CODES[name], float(alpha))
        return dx.astype(x.dtype, copy=False)

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
        """Gradients ``(dq, dk, dv)`` of :meth:`attention` (the ``mask`` is a constant), flash-attention style.

        The probabilities are recomputed block by block from ``q`` and ``k``, so memory stays
        linear in the sequence lengths. Gradients of broadcast leading dimensions are summed
        back to each operand's shape. A query that sees no key gives NaN like the reference:
        its ``dq`` row, and ``dk`` and ``dv`` of its head.

        Example:
            >>> import numpy as np
            >>> from axiom.backends.native import CBackend
            >>> q = np.zeros((1, 1, 2, 4)); v = np.array([[[[1.0], [3.0]]]])
            >>> dq, dk, dv = CBackend().attention_backward(np.ones((1, 1, 2, 1)), q, q, v, causal=True, scale=0.5)
            >>> dv.ravel().tolist(), float(np.abs(dk).max())
            ([1.5, 0.5], 0.0)
        """
        op = "attention_backward"
        self._require(op)
        a = _attention_args(op, q, k, v, mask)
        g = self._grad(op, grad_out, (*a.lead, a.lq, a.dv))
        gq, gk, gv = np.empty(a.q.shape, a.dt), np.empty(a.k.shape, a.dt), np.empty(a.v.shape, a.dt)
        self.nn_kernels(
            op, a.dt, _c(g, a.dt), a.q, a.k, a.v, a.mask, gq, gk, gv, *a.sizes, float(scale), int(bool(causal)),
            *a.strides,
        )  # fmt: skip
        return (
            sum_to(gq, q.shape).astype(q.dtype, copy=False),
            sum_to(gk, k.shape).astype(k.dtype, copy=False),
            sum_to(gv, v.shape).astype(v.dtype, copy=False),
        )
