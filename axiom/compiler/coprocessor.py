"""Find a real coprocessor (a CUDA GPU, an OpenCL GPU or accelerator) without requiring any driver.

:func:`detect_coprocessor` probes through guarded imports of PyCUDA and PyOpenCL: a missing
package, a missing driver or no device all mean "none here", never an exception. An OpenCL
*CPU* device (PoCL, Intel's CPU runtime) is not a coprocessor and is skipped.

Example:
    >>> found = detect_coprocessor()
    >>> found is None or found.kind in ("cuda", "opencl")
    True
"""

from __future__ import annotations

import importlib
from dataclasses import dataclass
from typing import Any

#: What :func:`detect_coprocessor` probes, in order.
PROBES: tuple[str, ...] = ("cuda", "opencl")


@dataclass(frozen=True)
class Coprocessor:
    """A device found by :func:`detect_coprocessor`.

    ``kind`` is the backend that would drive it (``"cuda"`` or ``"opencl"``); ``device_type``
    is ``"gpu"`` or ``"accelerator"``; ``index`` is the CUDA ordinal or, for OpenCL,
    ``(platform index, device index)``; ``memory_bytes`` is the device's global memory.

    Example:
        >>> gpu = Coprocessor("cuda", "NVIDIA H100", "NVIDIA", "gpu", 0, 80 * 2**30, "CUDA 12.4")
        >>> str(gpu)
        'cuda device 0: NVIDIA H100 (NVIDIA, gpu, 80.0 GiB, CUDA 12.4)'
    """

    kind: str
    name: str
    vendor: str
    device_type: str
    index: int | tuple[int, int]
    memory_bytes: int | None = None
    platform: str | None = None

    @property
    def backend(self) -> str:
        """The backend name to pass to ``compile(..., backend=...)``."""
        return self.kind

    def __str__(self) -> str:
        where = self.index if isinstance(self.index, int) else f"{self.index[0]}:{self.index[1]}"
        parts = [self.vendor, self.device_type]
        if self.memory_bytes is not None:
            parts.append(f"{self.memory_bytes / 2**30:.1f} GiB")
        if self.platform:
            parts.append(self.platform)
        return f"{self.kind} device {where}: {self.name} ({', '.join(parts)})"


def _import(name: str) -> Any | None:
    try:
        return importlib.import_module(name)
    except Exception:  # noqa: BLE001 - ImportError, or a driver library failing to load (OSError, ...)
        return None


def probe_cuda() -> Coprocessor | None:
    """The first CUDA device through PyCUDA, or None (no PyCUDA, no driver or no device).

    Example:
        >>> probe_cuda() is None or probe_cuda().kind == "cuda"
        True
    """
    drv = _import("pycuda.driver")
    if drv is None:
        return None
    try:
        drv.init()
        if drv.Device.count() < 1:
            return None
        dev = drv.Device(0)
        major, minor = dev.compute_capability()
        version = drv.get_version() if hasattr(drv, "get_version") else None
        platform = "CUDA " + ".".join(map(str, version)) if version else None
        return Coprocessor(
            kind="cuda",
            name=str(dev.name()),
            vendor="NVIDIA",
            device_type="gpu",
            index=0,
            memory_bytes=int(dev.total_memory()),
            platform=f"{platform}, sm_{major}{minor}" if platform else f"sm_{major}{minor}",
        )
    except Exception:  # noqa: BLE001 - pycuda raises its own error classes (no device, driver too old, ...)
        return None


def probe_opencl() -> Coprocessor | None:
    """The first OpenCL GPU or accelerator through PyOpenCL, or None; CPU devices are skipped.

    Example:
        >>> probe_opencl() is None or probe_opencl().device_type in ("gpu", "accelerator")
        True
    """
    cl = _import("pyopencl")
    if cl is None:
        return None
    try:
        platforms = cl.get_platforms()
    except Exception:  # noqa: BLE001 - no ICD loader / no platform: PLATFORM_NOT_FOUND_KHR
        return None
    wanted = {"gpu": cl.device_type.GPU, "accelerator": cl.device_type.ACCELERATOR}
    for p, platform in enumerate(platforms):
        try:
            devices = platform.get_devices()
        except Exception:  # noqa: BLE001 - a platform without devices raises DEVICE_NOT_FOUND
            continue
        for d, dev in enumerate(devices):
            kind = next((k for k, bit in wanted.items() if int(dev.type) & int(bit)), None)
            if kind is None:
                continue  # a CPU device: OpenCL on the host is no coprocessor
            return Coprocessor(
                kind="opencl",
                name=str(dev.name).strip(),
                vendor=str(dev.vendor).strip(),
                device_type=kind,
                index=(p, d),
                memory_bytes=int(dev.global_mem_size),
                platform=str(platform.name).strip(),
            )
    return None


def detect_coprocessor() -> Coprocessor | None:
    """The first real coprocessor on this machine (CUDA first, then OpenCL), or None.

    Never raises and never imports anything that is not installed; an OpenCL CPU device does
    not count. ``compile()`` never picks a coprocessor by itself: pass
    ``backend=detect_coprocessor().backend`` to use one (once GPU backends ship).

    Example:
        >>> found = detect_coprocessor()
        >>> found is None or found.backend in ("cuda", "opencl")
        True
    """
    for probe in (probe_cuda, probe_opencl):
        found = probe()
        if found is not None:
            return found
    return None
