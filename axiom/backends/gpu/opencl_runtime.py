"""OpenCL through PyOpenCL: GPUs, accelerators (FPGA / DSP boards) and CPUs (PoCL in CI).

PyOpenCL is imported only when an :class:`OpenCLRuntime` is made, never by ``import axiom``.

Example:
    >>> rt = OpenCLRuntime.first_device_or_none()
    >>> rt is None or rt.kind == "opencl"
    True
"""

from __future__ import annotations

from typing import Any

import numpy as np

from axiom.backends.gpu.errors import DeviceError, DeviceLostError, DeviceOutOfMemoryError, KernelBuildError
from axiom.backends.gpu.runtime import DeviceRuntime

#: OpenCL status codes that mean "out of memory / resources": MEM_OBJECT_ALLOCATION_FAILURE,
#: OUT_OF_RESOURCES, OUT_OF_HOST_MEMORY, INVALID_BUFFER_SIZE
_OOM_CODES = {-4, -5, -6, -61}
#: ... and "device gone": DEVICE_NOT_AVAILABLE, EXEC_STATUS_ERROR_FOR_EVENTS_IN_WAIT_LIST, INVALID_COMMAND_QUEUE
_LOST_CODES = {-2, -14, -36}


def _import_pyopencl() -> Any:
    """``pyopencl``, or ImportError saying how to install it."""
    try:
        import pyopencl
    except ImportError as e:
        raise ImportError(
            f"the OpenCL backend needs PyOpenCL ({e}): pip install pyopencl, plus an OpenCL driver "
            "(a GPU vendor's, or pocl-binary-distribution for the CPU)"
        ) from e
    return pyopencl


def _device_type(cl: Any, dev: Any) -> str:
    t = int(dev.type)
    if t & int(cl.device_type.GPU):
        return "gpu"
    if t & int(cl.device_type.ACCELERATOR):
        return "accelerator"
    return "cpu" if t & int(cl.device_type.CPU) else "other"


def list_devices() -> list[tuple[int, int, Any, Any]]:
    """Every OpenCL device: ``(platform index, device index, platform, device)``; [] without a driver.

    Example:
        >>> try:
        ...     devices = list_devices()
        ... except ImportError:                                   # no PyOpenCL
        ...     devices = []
        >>> all(isinstance(p, int) and isinstance(d, int) for p, d, _platform, _device in devices)
        True
    """
    cl = _import_pyopencl()
    try:
        platforms = cl.get_platforms()
    except Exception:  # noqa: BLE001 - no ICD loader / no platform: PLATFORM_NOT_FOUND_KHR
        return []
    found = []
    for p, platform in enumerate(platforms):
        try:
            devices = platform.get_devices()
        except Exception:  # noqa: BLE001 - a platform without devices raises DEVICE_NOT_FOUND
            continue
        found.extend((p, d, platform, dev) for d, dev in enumerate(devices))
    return found


class OpenCLRuntime(DeviceRuntime):
    """One OpenCL device with its own context and in-order queue.

    ``platform``: an index or a substring of the platform name; ``device``: an index within the
    platform. By default the first GPU or accelerator, else the first device of any type (a CPU
    device such as PoCL's).

    Example:
        >>> rt = OpenCLRuntime.first_device_or_none()
        >>> rt is None or rt.device_type in ("gpu", "accelerator", "cpu", "other")
        True
        >>> try:
        ...     OpenCLRuntime(platform="no such platform")
        ... except (ValueError, ImportError) as err:              # ImportError without PyOpenCL or a driver
        ...     print("no OpenCL platform" in str(err) or "OpenCL" in str(err))
        True
    """

    kind = "opencl"

    def __init__(self, platform: int | str | None = None, device: int | None = None) -> None:
        cl = self.cl = _import_pyopencl()
        devices = list_devices()
        if not devices:
            raise ImportError("no OpenCL platform or device found (install a driver, e.g. pocl-binary-distribution)")
        chosen = self._choose(cl, devices, platform, device)
        self.platform_index, self.device_index, plat, dev = chosen
        self.device = dev
        self.device_type = _device_type(cl, dev)
        super().__init__(f"{str(dev.name).strip()} ({str(plat.name).strip()}, OpenCL {self.device_type})")
        self.context = cl.Context([dev])
        self.queue = cl.CommandQueue(self.context)
        self.max_alloc = int(dev.max_mem_alloc_size)
        self.max_local_size = int(dev.max_work_group_size)
        extensions = str(dev.extensions)
        self._fp64 = "cl_khr_fp64" in extensions or int(getattr(dev, "double_fp_config", 0) or 0) != 0

    @staticmethod
    def _choose(cl: Any, devices: list, platform: int | str | None, device: int | None) -> tuple:
        pool = devices
        if platform is not None:
            if isinstance(platform, int):
                pool = [d for d in devices if d[0] == platform]
            else:
                pool = [d for d in devices if str(platform).lower() in str(d[2].name).lower()]
            if not pool:
                names = sorted({f"{d[0]}: {str(d[2].name).strip()}" for d in devices})
                raise ValueError(f"no OpenCL platform {platform!r}; platforms here: {'; '.join(names)}")
        if device is not None:
            chosen = [d for d in pool if d[1] == device]
            if not chosen:
                raise ValueError(f"no OpenCL device {device} on platform {pool[0][0]} ({len(pool)} devices there)")
            return chosen[0]
        return next((d for d in pool if _device_type(cl, d[3]) in ("gpu", "accelerator")), pool[0])

    @classmethod
    def first_device_or_none(cls) -> OpenCLRuntime | None:
        """A runtime on the default device, or None when PyOpenCL or a device is missing."""
        try:
            return cls()
        except (ImportError, ValueError):
            return None

    @property
    def supports_float64(self) -> bool:
        return self._fp64

    # -- errors ---------------------------------------------------------------------------------
    def _error(self, err: Exception, kernel: str | None, what: str) -> DeviceError:
        code = getattr(getattr(err, "code", None), "__int__", lambda: None)()
        if code is None and err.args and hasattr(err.args[0], "code"):
            code = int(err.args[0].code)
        cls = (
            DeviceOutOfMemoryError
            if code in _OOM_CODES or isinstance(err, self.cl.MemoryError)
            else DeviceLostError
            if code in _LOST_CODES
            else DeviceError
        )
        return cls(self.device_name, kernel, f"{what} failed: {err}")

    # -- primitives -----------------------------------------------------------------------------
    def _build(self, family: str, source: str, options: list[str]) -> Any:
        cl = self.cl
        try:
            return cl.Program(self.context, source).build(options=options)
        except cl.Error as err:
            raise KernelBuildError(
                self.device_name, f"program {family}", f"building the OpenCL program failed: {err}"
            ) from err

    def _get_kernel(self, program: Any, name: str) -> Any:
        try:
            return self.cl.Kernel(program, name)
        except self.cl.Error as err:
            raise KernelBuildError(self.device_name, name, f"the program has no kernel {name}: {err}") from err

    def _alloc(self, nbytes: int) -> Any:
        if nbytes > self.max_alloc:
            raise DeviceOutOfMemoryError(
                self.device_name,
                self.last_kernels(),
                f"a buffer of {nbytes:,} bytes is larger than the device's largest allocation "
                f"({self.max_alloc:,} bytes)",
            )
        try:
            return self.cl.Buffer(self.context, self.cl.mem_flags.READ_WRITE, nbytes)
        except self.cl.Error as err:
            raise self._error(err, self.last_kernels(), f"allocating {nbytes:,} bytes") from err

    def _wait_event(self, event: Any, what: str) -> None:
        cl = self.cl
        complete = int(cl.command_execution_status.COMPLETE)
        self.queue.flush()

        def done() -> bool:
            status = int(event.command_execution_status)
            if status < 0:
                raise DeviceLostError(
                    self.device_name, self.last_kernels(), f"{what} failed with OpenCL status {status}"
                )
            return status == complete

        self.wait_until(done, what)

    def _upload(self, buffer: Any, host: np.ndarray) -> None:
        try:
            event = self.cl.enqueue_copy(self.queue, buffer, host, is_blocking=False)
            self._wait_event(event, f"copying {host.nbytes:,} bytes to the device")
        except self.cl.Error as err:
            raise self._error(err, self.last_kernels(), "copying to the device") from err

    def _download(self, host: np.ndarray, buffer: Any) -> None:
        try:
            event = self.cl.enqueue_copy(self.queue, host, buffer, is_blocking=False)
            self._wait_event(event, f"copying {host.nbytes:,} bytes from the device")
        except self.cl.Error as err:
            raise self._error(err, self.last_kernels(), "copying from the device") from err

    def _copy(self, dst: Any, src: Any, nbytes: int) -> None:
        try:
            self.cl.enqueue_copy(self.queue, dst, src, byte_count=nbytes)
        except self.cl.Error as err:
            raise self._error(err, self.last_kernels(), "a device-to-device copy") from err

    def _launch(self, kernel: Any, groups: tuple[int, ...], local: tuple[int, ...], args: list[Any]) -> None:
        try:
            kernel.set_args(*args)
            self.cl.enqueue_nd_range_kernel(self.queue, kernel, tuple(g * v for g, v in zip(groups, local)), local)
        except self.cl.Error as err:
            raise self._error(err, kernel.function_name, f"launching {groups} x {local} work-items") from err

    def synchronize(self) -> None:
        with self._lock:
            try:
                event = self.cl.enqueue_marker(self.queue)
                self._wait_event(event, "the queued kernels")
            except self.cl.Error as err:
                raise self._error(err, self.last_kernels(), "waiting for the device") from err
            self.recent_kernels.clear()

    def _null(self) -> Any:
        return None
