"""The GPU backends: :class:`CUDABackend` (PyCUDA) and :class:`OpenCLBackend` (PyOpenCL).

Both run the whole kernel contract (:data:`~axiom.backends.base.OPS`) on their device with the
kernels of ``cuda/*.cu`` (the same bodies serve OpenCL through ``opencl/*.cl``). As kernel
backends they take and return host arrays: each op uploads its inputs, runs and downloads its
output. ``compile(model, backend="cuda" | "opencl")`` does better: it keeps the weights and the
activations on the device (:mod:`axiom.compiler.device_plan`).

Argument checks are the C backend's (:class:`~axiom.backends.c_kernels.CKernelsMixin`), so bad
input gets the same clear errors. float16 / bfloat16 inputs compute in float32 and are cast back
(like the C backend); float64 runs on the device where it supports float64, else on the CPU
(the C kernels; matmul / conv2d on the NumPy reference), recorded in ``fallbacks`` and warned
once; backward kernels run on the NumPy reference
(recorded and warned like any fallback). Device failures raise
:class:`~axiom.backends.gpu.errors.DeviceError` naming the device and kernel.

Example:
    >>> import numpy as np
    >>> try:
    ...     be = OpenCLBackend()
    ... except ImportError:
    ...     be = None                                  # no OpenCL driver here
    >>> be is None or be.activation(np.array([-1.0, 1.0], np.float32), "relu").tolist() == [0.0, 1.0]
    True
"""

from __future__ import annotations

import warnings
from typing import Any

import numpy as np

from axiom.backends.base import OPS, FallbackWarning, Padding2d, Pair, PartialBackend
from axiom.backends.c_kernels import CKernelsMixin, NNKernels
from axiom.backends.gpu.ops import DeviceNNKernels
from axiom.backends.gpu.runtime import F64, DeviceRuntime


class _NNKernelsWithFallback(DeviceNNKernels):
    """Device NN kernels; float64 on a device without float64 runs on the C kernels (recorded)."""

    def __init__(self, backend: GPUBackend) -> None:
        super().__init__(backend.runtime)
        self.backend = backend

    def __call__(self, name: str, dtype: np.dtype, *args: Any) -> None:
        if np.dtype(dtype) == F64 and not self.runtime.supports_float64:
            self.backend.record_fallback(
                name, f"device {self.runtime.device_name} has no float64: ran on the C kernels"
            )
            NNKernels()(name, dtype, *args)
            return
        super().__call__(name, dtype, *args)


class GPUBackend(CKernelsMixin, PartialBackend):
    """What the CUDA and OpenCL backends share; ``runtime`` is their :class:`DeviceRuntime`.

    Example:
        >>> from axiom.backends.gpu.opencl_runtime import OpenCLRuntime
        >>> rt = OpenCLRuntime.first_device_or_none()
        >>> be = None if rt is None else GPUBackend(rt)            # on any DeviceRuntime
        >>> be is None or be.softmax(np.zeros(4, np.float32), -1).tolist() == [0.25] * 4
        True
    """

    name = "gpu"
    native_ops = OPS
    kernel_lib = None

    def __init__(self, runtime: DeviceRuntime) -> None:
        super().__init__()
        self.runtime = runtime
        self._device_nn = _NNKernelsWithFallback(self)

    @property
    def device_name(self) -> str:
        """The device's name, as errors and reports give it."""
        return self.runtime.device_name

    def __repr__(self) -> str:
        return f"{type(self).__name__}({self.runtime.device_name!r})"

    @property
    def nn_kernels(self) -> DeviceNNKernels:  # type: ignore[override]
        return self._device_nn

    def _missing(self, kernel: str) -> str | None:
        return self._device_nn.missing(kernel)

    def record_fallback(self, op: str, reason: str) -> None:
        """Record (and warn once) that ``op`` did not run on the device, and why."""
        if op not in self.fallbacks:
            self.fallbacks[op] = reason
            warnings.warn(f"backend {self.name!r}: op {op!r} {reason}", FallbackWarning, stacklevel=3)

    # -- matmul and conv2d (their launchers live in ops_matmul / ops_conv2d) ----------------------
    def matmul(self, a: np.ndarray, b: np.ndarray) -> np.ndarray:
        """``a @ b`` with NumPy semantics (1-D operands, broadcast batch axes) on the device.

        Example:
            >>> import numpy as np
            >>> try:
            ...     be = OpenCLBackend()
            ... except ImportError:
            ...     be = None
            >>> a, b = np.ones((2, 3), np.float32), np.ones((3, 1), np.float32)
            >>> be is None or be.matmul(a, b).ravel().tolist() == [3.0, 3.0]
            True
        """
        from axiom.backends.gpu.ops_matmul import matmul_host

        return matmul_host(self, a, b)

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
        """NHWC 2-D cross-correlation on the device; ``w`` is ``(kH, kW, C_in/groups, C_out)``."""
        from axiom.backends.gpu.ops_conv2d import conv2d_host

        return conv2d_host(self, x, w, bias, stride, padding, dilation, groups)


class OpenCLBackend(GPUBackend):
    """The kernel contract on an OpenCL device (GPU, accelerator, or a CPU through PoCL).

    ``platform``: index or name substring; ``device``: index within the platform; default: the
    first GPU / accelerator, else the first device. Raises ImportError without PyOpenCL or a device.

    Example:
        >>> try:
        ...     be = OpenCLBackend(platform=0, device=0)
        ... except (ImportError, ValueError):                     # no driver, or no such platform / device
        ...     be = None
        >>> be is None or be.rmsnorm(np.array([[3.0, -3.0]]), None, 0.0, 1).tolist() == [[1.0, -1.0]]
        True
    """

    name = "opencl"

    def __init__(self, platform: int | str | None = None, device: int | None = None) -> None:
        from axiom.backends.gpu.opencl_runtime import OpenCLRuntime

        super().__init__(OpenCLRuntime(platform, device))


class CUDABackend(GPUBackend):
    """The kernel contract on an NVIDIA GPU through PyCUDA (``pip install 'axiom[gpu]'``).

    Raises ImportError without PyCUDA, the NVIDIA driver or a device.

    Example:
        >>> try:
        ...     be = CUDABackend()
        ... except ImportError as err:                            # the message says what is missing
        ...     be = None
        >>> x = np.arange(6, dtype=np.float32).reshape(2, 3)
        >>> be is None or be.global_avg_pool(x[None, :, :, None]).ravel().tolist() == [2.5]
        True
    """

    name = "cuda"

    def __init__(self, device: int = 0) -> None:
        from axiom.backends.gpu.cuda_runtime import CUDARuntime

        super().__init__(CUDARuntime(device))
