"""The device entry points: one launcher per kernel, with the C ABI's argument lists, on device arrays.

A launcher is registered with :func:`launcher` under the name of the C ABI kernel it mirrors
(``csrc/axiom_kernels_nn.h`` without the ``axiom_`` prefix and the dtype suffix: ``"batchnorm"``,
``"softmax"``, ...) or of a device-only kernel (``"gemm"``, ``"conv2d"``, ``"add"``, ...). It takes
the runtime, the compute dtype and the kernel's arguments in the ABI's order, with
:class:`~axiom.backends.gpu.runtime.DeviceArray` (or ``None``) for pointers and Python numbers
for scalars; it picks the launch geometry and enqueues the kernel(s). :func:`call` runs one.

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
    """Register a launcher under kernel ``name`` (a decorator)."""

    def register(fn: Launcher) -> Launcher:
        LAUNCHERS[name] = fn
        return fn

    return register


def launchers() -> dict[str, Launcher]:
    """Every registered launcher (imports the family modules that exist the first time)."""
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
    """Run kernel ``name`` for ``dtype`` with the ABI's argument list (device arrays for pointers)."""
    fn = launchers().get(name)
    if fn is None:
        raise NotImplementedError(f"no GPU kernel {name!r}; the GPU kernels are: {', '.join(sorted(LAUNCHERS))}")
    fn(rt, np.dtype(dtype), *args)


# -- helpers for launchers ------------------------------------------------------------------------


def i32(value: int) -> np.int32:
    """A C ``int`` argument (checked to fit)."""
    v = int(value)
    if not -(2**31) <= v < 2**31:
        raise ValueError(f"{v} does not fit a 32-bit kernel argument")
    return np.int32(v)


def i64(value: int) -> np.int64:
    """An ``idx_t`` argument."""
    return np.int64(int(value))


def real(dtype: np.dtype, value: float) -> np.floating:
    """A ``real`` argument of the launch's dtype."""
    return np.dtype(dtype).type(value)


def blocks(count: int, size: int, cap: int = 65535 * 16) -> int:
    """Work-groups of ``size`` items to cover ``count`` (capped: kernels loop over the rest)."""
    return max(1, min(cap, -(-int(count) // size))) if count > 0 else 0


# -- the host-array interface of NNKernels ---------------------------------------------------------


class DeviceNNKernels:
    """``NNKernels``' interface on a device: ``kernels(name, dtype, *abi_args)`` with host arrays.

    Inputs are uploaded, outputs allocated on the device and downloaded into the given host
    arrays after the launch. ``missing(name)`` is None for every kernel with a launcher.
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
