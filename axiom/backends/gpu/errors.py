"""Device errors: every failure of a GPU backend is a Python exception naming the device and the kernel.

:class:`DeviceError` (a :class:`~axiom.backends.base.KernelError`) has three kinds below it:
:class:`DeviceOutOfMemoryError` (also a ``MemoryError``), :class:`KernelBuildError` (a kernel
program did not compile: the compiler's log is in the message) and :class:`DeviceLostError` (a
launch failed, the device stopped answering, or a wait ran past ``AXIOM_DEVICE_TIMEOUT``
seconds: the backend never hangs on a lost device).

Example:
    >>> err = DeviceOutOfMemoryError("pthread-AMD EPYC", "axiom_matmul", "allocating 8.0 GiB failed")
    >>> str(err)
    'device pthread-AMD EPYC, kernel axiom_matmul: allocating 8.0 GiB failed'
    >>> isinstance(err, MemoryError) and isinstance(err, DeviceError)
    True
"""

from __future__ import annotations

from axiom.backends.base import KernelError


class DeviceError(KernelError):
    """A GPU / OpenCL device failed; ``device`` and ``kernel`` say where."""

    def __init__(self, device: str, kernel: str | None, message: str) -> None:
        self.device = device
        self.kernel = kernel
        where = f"device {device}" + (f", kernel {kernel}" if kernel else "")
        super().__init__(f"{where}: {message}")


class DeviceOutOfMemoryError(DeviceError, MemoryError):
    """The device could not allocate a buffer (or a launch ran out of resources)."""


class KernelBuildError(DeviceError):
    """A kernel program failed to compile for the device; the message holds the build log."""


class DeviceLostError(DeviceError):
    """A launch failed, the device was lost, or a wait timed out."""
