"""CUDA through PyCUDA (the ``gpu`` extra): one NVIDIA GPU, its primary context and one stream.

PyCUDA is imported only when a :class:`CUDARuntime` is made, never by ``import axiom``; without
PyCUDA, without the driver (``libcuda.so.1``) or without a device, making one raises
``ImportError`` saying which. Kernels are compiled to PTX with NVRTC (:mod:`.nvrtc`) for the
device's compute capability where ``cuda-bindings`` is installed, else with PyCUDA's
``SourceModule`` (nvcc on PATH).

Example:
    >>> try:
    ...     CUDARuntime()
    ... except ImportError as err:
    ...     print("no CUDA here:", type(err).__name__)
    ... else:
    ...     print("no CUDA here: ImportError")
    no CUDA here: ImportError
"""

from __future__ import annotations

import contextlib
from collections.abc import Iterator
from typing import Any

import numpy as np

from axiom.backends.gpu.errors import DeviceError, DeviceLostError, DeviceOutOfMemoryError, KernelBuildError
from axiom.backends.gpu.runtime import DeviceRuntime


def import_pycuda_driver() -> Any:
    """``pycuda.driver``, initialised; ImportError naming what is missing (PyCUDA, the driver or a device).

    Example:
        >>> try:
        ...     drv = import_pycuda_driver()
        ... except ImportError as err:                            # says whether PyCUDA, the driver or a GPU is missing
        ...     drv = None
        >>> drv is None or drv.Device.count() >= 1
        True
    """
    try:
        import pycuda.driver as drv
    except ImportError as e:
        raise ImportError(
            f"the CUDA backend needs PyCUDA and an NVIDIA driver ({e}): pip install 'axiom[gpu]' on a machine "
            "with an NVIDIA GPU"
        ) from e
    try:
        drv.init()
        count = drv.Device.count()
    except Exception as e:  # noqa: BLE001 - pycuda.driver.Error subclasses: no device, driver too old, ...
        raise ImportError(f"the NVIDIA driver did not initialise: {e}") from e
    if count < 1:
        raise ImportError("the NVIDIA driver sees no CUDA device")
    return drv


class CUDARuntime(DeviceRuntime):
    """CUDA device ``device`` (an ordinal) through PyCUDA.

    Example:
        >>> import numpy as np
        >>> try:
        ...     rt = CUDARuntime(0)
        ... except ImportError:
        ...     rt = None                                         # no NVIDIA GPU here
        >>> rt is None or (rt.arch.startswith("compute_") and rt.supports(np.float64))
        True
    """

    kind = "cuda"

    def __init__(self, device: int = 0) -> None:
        drv = self.drv = import_pycuda_driver()
        if isinstance(device, bool) or not isinstance(device, int) or not 0 <= device < drv.Device.count():
            raise ValueError(f"no CUDA device {device!r}; this machine has {drv.Device.count()}")
        self.device = drv.Device(device)
        self.ordinal = device
        major, minor = self.device.compute_capability()
        self.arch = f"compute_{major}{minor}"
        super().__init__(f"{self.device.name()} (CUDA device {device}, sm_{major}{minor})")
        self.context = self.device.retain_primary_context()
        with self._active():
            self.stream = drv.Stream()
        self.max_local_size = int(self.device.get_attribute(drv.device_attribute.MAX_THREADS_PER_BLOCK))

    @contextlib.contextmanager
    def _active(self) -> Iterator[None]:
        self.context.push()
        try:
            yield
        finally:
            self.drv.Context.pop()

    @property
    def supports_float64(self) -> bool:
        return True

    def _error(self, err: Exception, kernel: str | None, what: str) -> DeviceError:
        drv = self.drv
        if isinstance(err, drv.MemoryError) or "out of memory" in str(err).lower():
            return DeviceOutOfMemoryError(self.device_name, kernel, f"{what} failed: {err}")
        if isinstance(err, drv.LaunchError) or "illegal" in str(err).lower() or "lost" in str(err).lower():
            return DeviceLostError(self.device_name, kernel, f"{what} failed: {err}")
        return DeviceError(self.device_name, kernel, f"{what} failed: {err}")

    # -- primitives -----------------------------------------------------------------------------
    def _build(self, family: str, source: str, options: list[str]) -> Any:
        """NVRTC CUBIN for the device's architecture, else NVRTC PTX (driver JIT), else PyCUDA's nvcc.

        A CUBIN needs no JIT, so it loads even where the driver is older than NVRTC (whose PTX
        such a driver refuses); a source error stops at once, a loading error tries the next way.
        """
        from axiom.backends.gpu import nvrtc

        name, failures = f"{family}.cu", []
        if nvrtc.nvrtc_available():
            images = (
                ("CUBIN", lambda: nvrtc.compile_cubin(source, name, options, self.arch.replace("compute_", "sm_"))),
                ("PTX", lambda: nvrtc.compile_ptx(source, name, options, self.arch).encode() + b"\0"),
            )
            for kind, make in images:
                try:
                    image = make()
                except nvrtc.NVRTCCompileError as err:
                    raise KernelBuildError(self.device_name, f"program {family}", str(err)) from err
                try:
                    with self._active():
                        return self.drv.module_from_buffer(image)
                except Exception as err:  # noqa: BLE001 - pycuda.driver.Error: unsupported PTX version, arch
                    failures.append(f"loading NVRTC's {kind} failed: {err}")
        try:
            from pycuda.compiler import SourceModule

            with self._active():
                return SourceModule(source, options=options, no_extern_c=True)
        except Exception as err:  # noqa: BLE001 - pycuda.driver.CompileError (with nvcc's log), no nvcc
            failures.append(f"PyCUDA's SourceModule (nvcc) failed: {err}")
        raise KernelBuildError(self.device_name, f"program {family}", "; ".join(failures))

    def _get_kernel(self, program: Any, name: str) -> Any:
        try:
            return program.get_function(name)
        except Exception as err:  # noqa: BLE001 - pycuda.driver.LogicError: named symbol not found
            raise KernelBuildError(self.device_name, name, f"the module has no kernel {name}: {err}") from err

    def _alloc(self, nbytes: int) -> Any:
        try:
            with self._active():
                return self.drv.mem_alloc(nbytes)
        except self.drv.Error as err:
            raise self._error(err, self.last_kernels(), f"allocating {nbytes:,} bytes") from err

    def _wait_stream(self, what: str) -> None:
        with self._active():
            event = self.drv.Event()
            event.record(self.stream)

        def done() -> bool:
            with self._active():
                return bool(event.query())

        self.wait_until(done, what)

    def _upload(self, buffer: Any, host: np.ndarray) -> None:
        try:
            # synchronous on the legacy default stream, which waits for our stream's kernels first;
            # the async copy would need page-locked host memory
            with self._active():
                self.drv.memcpy_htod(buffer, host)
        except self.drv.Error as err:
            raise self._error(err, self.last_kernels(), "copying to the device") from err

    def _download(self, host: np.ndarray, buffer: Any) -> None:
        try:
            self._wait_stream("the queued kernels")
            with self._active():
                self.drv.memcpy_dtoh(host, buffer)
        except self.drv.Error as err:
            raise self._error(err, self.last_kernels(), "copying from the device") from err

    def _copy(self, dst: Any, src: Any, nbytes: int) -> None:
        try:
            with self._active():
                self.drv.memcpy_dtod_async(dst, src, nbytes, self.stream)
        except self.drv.Error as err:
            raise self._error(err, self.last_kernels(), "a device-to-device copy") from err

    def _launch(self, kernel: Any, groups: tuple[int, ...], local: tuple[int, ...], args: list[Any]) -> None:
        grid = (*groups, 1, 1)[:3]
        block = (*local, 1, 1)[:3]
        try:
            with self._active():
                kernel(*args, grid=grid, block=block, stream=self.stream)
        except self.drv.Error as err:
            raise self._error(err, self.recent_kernels[-1], f"launching grid {grid} x block {block}") from err

    def synchronize(self) -> None:
        with self._lock:
            try:
                self._wait_stream("the queued kernels")
            except self.drv.Error as err:
                raise self._error(err, self.last_kernels(), "waiting for the device") from err
            self.recent_kernels.clear()

    def _null(self) -> Any:
        return np.intp(0)
