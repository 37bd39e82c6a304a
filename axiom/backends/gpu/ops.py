"""The device entry points: one launcher per kernel, with the C ABI's argument lists, on device arrays.

A launcher is registered with :func:`launcher` under the name of the C ABI kernel it mirrors
(``csrc/axiom_kernels_nn.h`` without the ``axiom_`` prefix and the dtype suffix: ``"batchnorm"``,
``"softmax"``, ...) or of a device-only kernel (``"gemm"``, ``"conv2d"``, ``"add"``, ...). It takes
the runtime, the compute dtype and the kernel's arguments in the ABI's order, with
:class:`~axiom.backends.gpu.runtime.DeviceArray` (or ``None``) for pointers and Python numbers
for scalars; it picks the launch geometry and enqueues the kernel(s). :func:`call` runs one.

Every launcher checks its arguments before it enqueues anything, with the checks defined here
once (:func:`check_sizes`, :func:`check_array`, :func:`check_activation`, :func:`check_flag`):
a size its arrays do not hold is a ``ValueError``, never an out-of-bounds access on the device.
Scalars are converted with :func:`i32` / :func:`i64` / :func:`real`; :func:`blocks` and
:func:`lanes` size the grids.

:class:`DeviceNNKernels` gives a GPU backend the interface of
:class:`axiom.backends.c_kernels.NNKernels` (host arrays in the ABI's order), so the C backend's
argument checks (:class:`~axiom.backends.c_kernels.CKernelsMixin`) serve the GPU backends as
they are: inputs are uploaded, the launcher runs, outputs are downloaded into the given arrays.

Example:
    >>> import numpy as np
    >>> from axiom.backends.gpu.opencl_runtime import OpenCLRuntime
    >>> rt = OpenCLRuntime.first_device_or_none()
    >>> if rt is not None:
    ...     x = rt.to_device(np.array([-1.0, 2.0], np.float32)); y = rt.empty((2,), np.float32)
    ...     call(rt, "activation", np.float32, x, y, 2, 1, 0.0)          # relu, the ABI's (x, y, n, act, alpha)
    ...     print(rt.to_host(y).tolist())
    ... else:
    ...     print([0.0, 2.0])
    [0.0, 2.0]
"""

from __future__ import annotations

import importlib
from collections.abc import Callable
from typing import Any

import numpy as np

from axiom.backends.gpu.runtime import DeviceArray, DeviceRuntime

Launcher = Callable[..., None]
#: kernel name -> launcher (filled by the ``ops_*`` modules, imported by :func:`launchers`)
LAUNCHERS: dict[str, Launcher] = {}
#: the modules that register launchers, one per kernel family
FAMILY_MODULES: tuple[str, ...] = (
    "ops_activation",
    "ops_matmul",
    "ops_conv2d",
    "ops_norms",
    "ops_pooling",
    "ops_softmax",
    "ops_attention",
    "ops_rope",
    "ops_layout",
)

#: For each NN kernel of the C ABI: the positions of its output arrays (the non-const pointers of
#: ``csrc/axiom_kernels_nn.h``); every other array is an input. ``"d"`` arrays of
#: :data:`axiom.backends.abi.NN_PATTERNS` (RoPE positions, float64) stay on the host.
NN_OUTPUTS: dict[str, tuple[int, ...]] = {
    "batchnorm": (5,),
    "layernorm": (3,),
    "rmsnorm": (2,),
    "max_pool2d": (1,),
    "avg_pool2d": (1,),
    "global_avg_pool": (1,),
    "softmax": (1,),
    "activation": (1,),
    "attention": (4,),
    "rope": (2,),
}


def launcher(name: str) -> Callable[[Launcher], Launcher]:
    """Register a launcher under kernel ``name`` (a decorator); :func:`call` finds it by that name.

    Example:
        >>> @launcher("doc_noop")
        ... def doc_noop(rt, dt, n):
        ...     pass                      # a launcher checks its arguments, then calls rt.launch
        >>> LAUNCHERS.pop("doc_noop") is doc_noop
        True
    """

    def register(fn: Launcher) -> Launcher:
        LAUNCHERS[name] = fn
        return fn

    return register


def launchers() -> dict[str, Launcher]:
    """Every registered launcher (imports the family modules that exist the first time).

    Example:
        >>> {"gemm", "softmax", "attention"} <= set(launchers())
        True
    """
    if not getattr(launchers, "_loaded", False):
        for module in FAMILY_MODULES:
            try:
                importlib.import_module(f"axiom.backends.gpu.{module}")
            except ModuleNotFoundError as e:
                if e.name != f"axiom.backends.gpu.{module}":
                    raise
        launchers._loaded = True  # type: ignore[attr-defined]
    return LAUNCHERS


def call(rt: DeviceRuntime, name: str, dtype: Any, *args: Any) -> None:
    """Run kernel ``name`` for ``dtype`` with the ABI's argument list (device arrays for pointers).

    Example:
        >>> from axiom.backends.gpu.opencl_runtime import OpenCLRuntime
        >>> rt = OpenCLRuntime.first_device_or_none()
        >>> if rt is not None:
        ...     x = rt.to_device(np.array([0.5, -2.0], np.float32)); y = rt.empty((2,), np.float32)
        ...     call(rt, "activation", np.float32, x, y, 2, 0, 0.0)     # activation 0: identity
        ...     print(rt.to_host(y).tolist())
        ... else:
        ...     print([0.5, -2.0])
        [0.5, -2.0]
        >>> try:
        ...     call(rt, "no_such_kernel", np.float32)
        ... except NotImplementedError as err:
        ...     print(str(err).split(";")[0])
        no GPU kernel 'no_such_kernel'
    """
    fn = launchers().get(name)
    if fn is None:
        raise NotImplementedError(f"no GPU kernel {name!r}; the GPU kernels are: {', '.join(sorted(LAUNCHERS))}")
    fn(rt, np.dtype(dtype), *args)


# -- scalar arguments and launch geometry ---------------------------------------------------------


def i32(value: int) -> np.int32:
    """A C ``int`` argument (checked to fit).

    Example:
        >>> x = i32(7)
        >>> type(x).__name__, int(x)
        ('int32', 7)
        >>> i32(2**31)
        Traceback (most recent call last):
        ...
        ValueError: 2147483648 does not fit a 32-bit kernel argument
    """
    v = int(value)
    if not -(2**31) <= v < 2**31:
        raise ValueError(f"{v} does not fit a 32-bit kernel argument")
    return np.int32(v)


def i64(value: int) -> np.int64:
    """An ``idx_t`` argument.

    Example:
        >>> x = i64(3 * 2**31)
        >>> type(x).__name__, int(x)
        ('int64', 6442450944)
    """
    return np.int64(int(value))


def real(dtype: np.dtype, value: float) -> np.floating:
    """A ``real`` argument of the launch's dtype.

    Example:
        >>> x = real(np.dtype(np.float32), 0.5)
        >>> type(x).__name__, float(x)
        ('float32', 0.5)
    """
    return np.dtype(dtype).type(value)


def blocks(count: int, size: int, cap: int = 65535 * 16) -> int:
    """Work-groups of ``size`` items to cover ``count`` (capped: kernels loop over the rest).

    Example:
        >>> blocks(0, 256), blocks(1, 256), blocks(257, 256), blocks(10**12, 256)
        (0, 1, 2, 1048560)
    """
    return max(1, min(cap, -(-int(count) // size))) if count > 0 else 0


def lanes(n: int, cap: int) -> int:
    """Work-items that share one row of ``n``: the power of two >= ``n``, at most ``cap``.

    Rows shorter than a work-group share it (``cap / lanes`` rows per group); longer ones loop.

    Example:
        >>> [lanes(n, 256) for n in (0, 1, 3, 32, 33, 5000)], lanes(100, 8)
        ([1, 1, 4, 32, 64, 256], 8)
    """
    return min(int(cap), 1 << max(0, int(n) - 1).bit_length())


# -- argument checks shared by the launchers ------------------------------------------------------


def check_sizes(op: str, **sizes: int) -> None:
    """ValueError unless every size (or stride) is >= 0 (what the C kernels answer with AXIOM_ERR_SIZE).

    Example:
        >>> check_sizes("layernorm", rows=2, n=3)
        >>> check_sizes("layernorm", rows=2, n=-1)
        Traceback (most recent call last):
        ...
        ValueError: layernorm: sizes must be >= 0, got a negative one: rows=2, n=-1
    """
    if any(int(v) < 0 for v in sizes.values()):
        got = ", ".join(f"{k}={v}" for k, v in sizes.items())
        raise ValueError(f"{op}: sizes must be >= 0, got a negative one: {got}")


def check_array(op: str, name: str, arr: DeviceArray | None, count: int, dtype: Any, optional: bool = False) -> None:
    """Check that ``arr`` is a device array of ``dtype`` with at least ``count`` elements.

    ``None`` passes where ``optional`` (an absent ``gamma`` / ``bias``) or where ``count`` is 0
    (nothing is read or written); otherwise it is a ValueError, like a short array. Another
    type or dtype is a TypeError.

    Example:
        >>> from axiom.backends.gpu.opencl_runtime import OpenCLRuntime
        >>> rt = OpenCLRuntime.first_device_or_none()
        >>> x = None if rt is None else rt.empty((4,), np.float32)
        >>> check_array("softmax", "gamma", None, 4, np.float32, optional=True)
        >>> try:
        ...     check_array("softmax", "y", x, 6, np.float32)
        ... except (ValueError, TypeError) as err:       # ValueError, or TypeError (None) without OpenCL
        ...     print(str(err).startswith("softmax: y "))
        True
    """
    if arr is None:
        if optional or count == 0:
            return
        raise ValueError(f"{op}: {name} is required (got None)")
    if not isinstance(arr, DeviceArray):
        raise TypeError(f"{op}: {name} must be a DeviceArray, got {type(arr).__name__}")
    dt = np.dtype(dtype)
    if arr.dtype != dt:
        need = f"this launch computes in {dt}" if dt.kind == "f" else f"expected {dt}"
        raise TypeError(f"{op}: {name} holds {arr.dtype}; {need}")
    if arr.size < count:
        raise ValueError(f"{op}: {name} has {arr.size} elements; the sizes need {int(count)}")


def check_activation(op: str, act: int) -> int:
    """``act`` as an int, or ValueError unless it is a code of :data:`axiom.backends.base.ACTIVATIONS`.

    Example:
        >>> from axiom.backends.base import ACTIVATIONS
        >>> check_activation("gemm", ACTIVATIONS.index("relu")) == ACTIVATIONS.index("relu")
        True
        >>> check_activation("gemm", -1)
        Traceback (most recent call last):
        ...
        ValueError: gemm: activation code -1 is not one of 0..15 (ACTIVATIONS)
    """
    from axiom.backends.base import ACTIVATIONS

    code = int(act)
    if not 0 <= code < len(ACTIVATIONS):
        raise ValueError(f"{op}: activation code {code} is not one of 0..{len(ACTIVATIONS) - 1} (ACTIVATIONS)")
    return code


def check_flag(op: str, name: str, value: Any) -> int:
    """A 0 / 1 switch (``log``, ``causal``, ``count_include_pad``) as an int; ValueError for anything else.

    Example:
        >>> check_flag("attention", "causal", True), check_flag("softmax", "log", 0)
        (1, 0)
        >>> check_flag("softmax", "log", 2)
        Traceback (most recent call last):
        ...
        ValueError: softmax: log must be 0 or 1, got 2
    """
    if isinstance(value, int | np.integer | np.bool_) and int(value) in (0, 1):
        return int(value)
    raise ValueError(f"{op}: {name} must be 0 or 1, got {value!r}")


# -- the host-array interface of NNKernels ---------------------------------------------------------


class DeviceNNKernels:
    """``NNKernels``' interface on a device: ``kernels(name, dtype, *abi_args)`` with host arrays.

    Inputs are uploaded, outputs allocated on the device and downloaded into the given host
    arrays after the launch. ``missing(name)`` is None for every kernel with a launcher.

    Example:
        >>> from axiom.backends.gpu.opencl_runtime import OpenCLRuntime
        >>> rt = OpenCLRuntime.first_device_or_none()
        >>> x, y = np.array([[-3.0, 3.0]], np.float32), np.zeros((1, 2), np.float32)
        >>> if rt is not None:
        ...     DeviceNNKernels(rt)("rmsnorm", np.float32, x, None, y, 1, 2, 0.0)   # (x, gamma, y, rows, n, eps)
        ... else:
        ...     y[...] = x / 3.0                           # what the device writes into the host array
        >>> y.tolist()
        [[-1.0, 1.0]]
    """

    def __init__(self, runtime: DeviceRuntime) -> None:
        self.runtime = runtime

    def missing(self, name: str) -> str | None:
        if name in launchers():
            return None
        return f"no GPU kernel for {name}"

    def __call__(self, name: str, dtype: np.dtype, *args: Any) -> None:
        from axiom.backends.abi import NN_PATTERNS

        rt, dt = self.runtime, np.dtype(dtype)
        pattern = NN_PATTERNS[name]
        outputs = NN_OUTPUTS[name]
        device_args: list[Any] = []
        downloads: list[tuple[np.ndarray, DeviceArray]] = []
        for i, (kind, value) in enumerate(zip(pattern, args)):
            if kind not in "pd" or value is None:
                device_args.append(value)
            elif kind == "d":
                device_args.append(np.asarray(value))  # host-side (RoPE positions)
            elif i in outputs:
                out = rt.empty(value.shape, dt)
                downloads.append((value, out))
                device_args.append(out)
            else:
                device_args.append(rt.to_device(value, dt))
        if all(host.size == 0 for host, _ in downloads):
            return  # nothing to compute
        call(rt, name, dt, *device_args)
        for host, dev in downloads:
            host[...] = rt.to_host(dev).reshape(host.shape)
