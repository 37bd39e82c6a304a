"""Find a real coprocessor (a CUDA GPU, an OpenCL GPU or accelerator) without requiring any driver.

:func:`detect_coprocessor` probes through guarded imports of PyCUDA and PyOpenCL: a missing
package, a missing driver or no device all mean "none here", never an exception. An OpenCL
*CPU* device (PoCL, Intel's CPU runtime) is not a coprocessor and is skipped, unless the
environment forces OpenCL: ``AXIOM_BACKEND`` overrides detection (``cuda`` / ``opencl``: the
first device of that API, any OpenCL device type; ``none`` / ``cpu``: no coprocessor).
``compile(model, backend=detect_coprocessor())`` runs a model on what was found.

Example:
    >>> found = detect_coprocessor()
    >>> found is None or found.kind in ("cuda", "opencl")
    True
"""

from __future__ import annotations

import importlib
import os
import warnings
from dataclasses import dataclass
from typing import Any

#: What :func:`detect_coprocessor` probes, in order.
PROBES: tuple[str, ...] = ("cuda", "opencl")
#: The environment variable that overrides detection, and the values it takes.
ENV_VAR = "AXIOM_BACKEND"
ENV_CHOICES: tuple[str, ...] = ("cuda", "opencl", "none", "cpu")


@dataclass(frozen=True)
class Coprocessor:
    """A device found by :func:`detect_coprocessor`.

    ``kind`` is the backend that would drive it (``"cuda"`` or ``"opencl"``); ``device_type``
    is ``"gpu"`` or ``"accelerator"`` (``"cpu"`` for an OpenCL CPU device forced with
    ``AXIOM_BACKEND=opencl``); ``index`` is the CUDA ordinal or, for OpenCL,
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
    return _cuda()[0]


def _cuda() -> tuple[Coprocessor | None, str]:
    """The first CUDA device, or None and why not."""
    drv = _import("pycuda.driver")
    if drv is None:
        return None, "PyCUDA (pycuda.driver) cannot be imported: pip install pycuda, with the NVIDIA driver"
    try:
        drv.init()
        if drv.Device.count() < 1:
            return None, "the CUDA driver reports no device"
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
        ), ""
    except Exception as err:  # noqa: BLE001 - pycuda raises its own error classes (no device, driver too old, ...)
        return None, f"CUDA initialisation failed: {err}"


def probe_opencl(include_cpu: bool = False) -> Coprocessor | None:
    """The first OpenCL GPU or accelerator through PyOpenCL, or None; CPU devices are skipped
    unless ``include_cpu`` (then the first device of any type).

    Example:
        >>> probe_opencl() is None or probe_opencl().device_type in ("gpu", "accelerator")
        True
    """
    return _opencl(include_cpu)[0]


def _opencl(include_cpu: bool) -> tuple[Coprocessor | None, str]:
    """The first OpenCL coprocessor (or any device with ``include_cpu``), or None and why not."""
    cl = _import("pyopencl")
    if cl is None:
        return None, "PyOpenCL cannot be imported: pip install pyopencl, plus an OpenCL driver"
    try:
        platforms = cl.get_platforms()
    except Exception as err:  # noqa: BLE001 - no ICD loader / no platform: PLATFORM_NOT_FOUND_KHR
        return None, f"no OpenCL platform ({err})"
    wanted = {"gpu": cl.device_type.GPU, "accelerator": cl.device_type.ACCELERATOR}
    skipped = 0
    for p, platform in enumerate(platforms):
        try:
            devices = platform.get_devices()
        except Exception:  # noqa: BLE001 - a platform without devices raises DEVICE_NOT_FOUND
            continue
        for d, dev in enumerate(devices):
            try:
                kind = next((k for k, bit in wanted.items() if int(dev.type) & int(bit)), None)
                if kind is None:
                    if not include_cpu:
                        skipped += 1
                        continue  # a CPU device: OpenCL on the host is no coprocessor
                    kind = "cpu" if int(dev.type) & int(getattr(cl.device_type, "CPU", 2)) else "other"
                return Coprocessor(
                    kind="opencl",
                    name=str(dev.name).strip(),
                    vendor=str(dev.vendor).strip(),
                    device_type=kind,
                    index=(p, d),
                    memory_bytes=int(dev.global_mem_size),
                    platform=str(platform.name).strip(),
                ), ""
            except Exception:  # noqa: BLE001 - a device that cannot be queried is no device
                continue
    if skipped:
        return None, f"only OpenCL CPU devices ({skipped}), which are no coprocessor"
    return None, "no OpenCL device"


def detect_coprocessor() -> Coprocessor | None:
    """The first real coprocessor on this machine (CUDA first, then OpenCL), or None.

    Never raises and never imports anything that is not installed; an OpenCL CPU device does
    not count. ``compile()`` never picks a coprocessor by itself: pass
    ``backend=detect_coprocessor()`` (or its ``.backend`` name) to use one.

    The environment variable ``AXIOM_BACKEND`` overrides detection: ``cuda`` or ``opencl``
    give the first device of that API (for ``opencl`` a CPU device counts too, e.g. PoCL in
    CI), or None with a warning saying why when there is none; ``none`` or ``cpu`` give None.
    Any other value is ignored with a warning.

    Example:
        >>> found = detect_coprocessor()
        >>> found is None or found.backend in ("cuda", "opencl")
        True
    """
    raw = os.environ.get(ENV_VAR, "")
    forced = raw.strip().lower()
    if forced in ("none", "cpu"):
        return None
    if forced in ("cuda", "opencl"):
        try:
            found, why = _cuda() if forced == "cuda" else _opencl(include_cpu=True)
        except Exception as err:  # noqa: BLE001 - never raise
            found, why = None, str(err)
        if found is None:
            warnings.warn(
                f"{ENV_VAR}={raw.strip()}: no usable {forced} device ({why}); detect_coprocessor() returns None",
                RuntimeWarning,
                stacklevel=2,
            )
        return found
    if forced:
        warnings.warn(
            f"{ENV_VAR}={raw.strip()!r} is not one of {', '.join(ENV_CHOICES)}: ignored, probing CUDA then OpenCL",
            RuntimeWarning,
            stacklevel=2,
        )
    for probe in (_cuda, lambda: _opencl(include_cpu=False)):
        try:
            found, _ = probe()
        except Exception:  # noqa: BLE001 - never raise
            found = None
        if found is not None:
            return found
    return None
