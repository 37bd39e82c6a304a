"""The device runtime interface shared by CUDA (PyCUDA) and OpenCL (PyOpenCL), and device arrays.

A :class:`DeviceRuntime` owns one device: it compiles kernel families lazily (one program per
family and dtype, cached), allocates :class:`DeviceArray` buffers, copies to and from the host
and launches kernels. Everything above it (the kernel launchers of :mod:`axiom.backends.gpu.ops`,
the backend classes, compiled models) is the same for both APIs.

Launch arguments are typed explicitly: a :class:`DeviceArray` (or ``None`` for a NULL pointer),
``numpy.int32`` for a C ``int``, ``numpy.int64`` for ``idx_t`` and a NumPy float of the launch's
dtype for ``real``; a bare Python number is refused (its C type would be a guess).

Waiting for the device polls with a deadline (``AXIOM_DEVICE_TIMEOUT`` seconds, default 120): a
device that stops answering raises :class:`~axiom.backends.gpu.errors.DeviceLostError` instead of
hanging the caller.

Example:
    >>> import numpy as np
    >>> from axiom.backends.gpu import opencl_runtime
    >>> rt = opencl_runtime.OpenCLRuntime.first_device_or_none()
    >>> if rt is not None:
    ...     x = rt.to_device(np.arange(4, dtype=np.float32))
    ...     y = rt.empty(x.shape, x.dtype)
    ...     args = (x, y, np.int64(4), np.int32(1), np.float32(0))     # n, relu, alpha
    ...     rt.launch("activation", "axiom_activation", x.dtype, (1,), (64,), *args)
    ...     print(rt.to_host(y).tolist())
    ... else:
    ...     print([0.0, 1.0, 2.0, 3.0])
    [0.0, 1.0, 2.0, 3.0]
"""

from __future__ import annotations

import math
import os
import threading
import time
from abc import ABC, abstractmethod
from collections.abc import Callable, Sequence
from typing import Any

import numpy as np

from axiom.backends.gpu.errors import DeviceError, DeviceLostError

F32, F64 = np.dtype(np.float32), np.dtype(np.float64)
#: dtypes a device array may hold (float32 / float64 for compute, int32 / int64 for indices)
ARRAY_DTYPES: tuple[np.dtype, ...] = (F32, F64, np.dtype(np.int32), np.dtype(np.int64))
#: the largest number of elements one device array may have (kernels index with 64-bit idx_t,
#: but loop counters over one axis are int)
MAX_ELEMENTS = 2**31 - 1


def device_timeout() -> float:
    """Seconds a wait for the device may take before it counts as lost (``AXIOM_DEVICE_TIMEOUT``, default 120).

    Example:
        >>> saved = os.environ.get("AXIOM_DEVICE_TIMEOUT")
        >>> os.environ["AXIOM_DEVICE_TIMEOUT"] = "2.5"
        >>> device_timeout()
        2.5
        >>> del os.environ["AXIOM_DEVICE_TIMEOUT"]             # unset: the default
        >>> device_timeout()
        120.0
        >>> if saved is not None:
        ...     os.environ["AXIOM_DEVICE_TIMEOUT"] = saved
    """
    try:
        value = float(os.environ.get("AXIOM_DEVICE_TIMEOUT", "120"))
    except ValueError:
        return 120.0
    return value if value > 0 else 120.0


class DeviceArray:
    """A contiguous array in device memory: ``shape``, ``dtype`` and the runtime's ``buffer``.

    ``reshape`` returns a view of the same buffer; ``offset`` (in elements) lets a view start
    inside its buffer (kernels take it as an argument where they support it).

    Example:
        >>> from axiom.backends.gpu.opencl_runtime import OpenCLRuntime
        >>> rt = OpenCLRuntime.first_device_or_none()
        >>> a = DeviceArray(None, None, (2, 3), np.float32) if rt is None else rt.empty((2, 3), np.float32)
        >>> v = a.reshape(3, -1)                                  # a view: no copy, same buffer
        >>> v.shape, v.size, v.nbytes, v.buffer is a.buffer
        ((3, 2), 6, 24, True)
    """

    __slots__ = ("runtime", "buffer", "shape", "dtype", "nbytes")

    def __init__(self, runtime: DeviceRuntime, buffer: Any, shape: tuple[int, ...], dtype: np.dtype) -> None:
        self.runtime = runtime
        self.buffer = buffer
        self.shape = tuple(int(s) for s in shape)
        self.dtype = np.dtype(dtype)
        self.nbytes = math.prod(self.shape) * self.dtype.itemsize

    @property
    def size(self) -> int:
        return math.prod(self.shape)

    @property
    def ndim(self) -> int:
        return len(self.shape)

    def reshape(self, *shape: int | Sequence[int]) -> DeviceArray:
        """A view with another shape of the same size (``-1`` infers one axis, as in NumPy)."""
        dims = tuple(shape[0]) if len(shape) == 1 and not isinstance(shape[0], int) else shape
        new = tuple(int(d) for d in np.empty(self.shape, np.bool_).reshape(dims).shape)  # NumPy's rules and errors
        return DeviceArray(self.runtime, self.buffer, new, self.dtype)

    def __repr__(self) -> str:
        return f"DeviceArray(shape={self.shape}, dtype={self.dtype.name}, device={self.runtime.device_name!r})"


class DeviceRuntime(ABC):
    """One device of one API. Subclasses implement the ``_``-prefixed primitives.

    Example:
        >>> from axiom.backends.gpu.opencl_runtime import OpenCLRuntime
        >>> rt = OpenCLRuntime.first_device_or_none()            # one implementation; CUDARuntime is the other
        >>> if rt is not None:
        ...     a = rt.to_device(np.array([1.5, 2.5], np.float32))
        ...     b = rt.copy(a)                                    # device to device
        ...     rt.synchronize()
        ...     print(isinstance(rt, DeviceRuntime), rt.supports(np.float32), rt.to_host(b).tolist())
        ... else:
        ...     print(True, True, [1.5, 2.5])
        True True [1.5, 2.5]
    """

    #: ``"cuda"`` or ``"opencl"``
    kind: str = "abstract"

    def __init__(self, device_name: str) -> None:
        self.device_name = device_name
        self._programs: dict[tuple[str, str], Any] = {}
        self._kernels: dict[tuple[str, str, str], Any] = {}
        self._lock = threading.RLock()
        #: kernels launched since the last completed wait (named in errors)
        self.recent_kernels: list[str] = []

    # -- what subclasses provide ----------------------------------------------------------------
    @property
    @abstractmethod
    def supports_float64(self) -> bool:
        """Whether the device computes in float64."""

    @abstractmethod
    def _build(self, family: str, source: str, options: list[str]) -> Any:
        """Compile one program; raise KernelBuildError with the log on failure."""

    @abstractmethod
    def _get_kernel(self, program: Any, name: str) -> Any:
        """The kernel ``name`` of a built program."""

    @abstractmethod
    def _alloc(self, nbytes: int) -> Any:
        """A device buffer of ``nbytes`` (> 0) bytes; DeviceOutOfMemoryError when it cannot be had."""

    @abstractmethod
    def _upload(self, buffer: Any, host: np.ndarray) -> None:
        """Copy a contiguous host array into ``buffer`` (may be asynchronous; ``host`` is kept alive)."""

    @abstractmethod
    def _download(self, host: np.ndarray, buffer: Any) -> None:
        """Copy ``buffer`` into the contiguous ``host`` array and wait for it (with the deadline)."""

    @abstractmethod
    def _launch(self, kernel: Any, groups: tuple[int, ...], local: tuple[int, ...], args: list[Any]) -> None:
        """Enqueue one launch of ``groups`` x ``local`` work-items."""

    @abstractmethod
    def _copy(self, dst: Any, src: Any, nbytes: int) -> None:
        """Device-to-device copy of ``nbytes`` bytes."""

    @abstractmethod
    def synchronize(self) -> None:
        """Wait until every enqueued command finished (with the deadline)."""

    @abstractmethod
    def _null(self) -> Any:
        """The argument passed for a ``None`` (NULL) pointer."""

    # -- arrays ---------------------------------------------------------------------------------
    def empty(self, shape: Sequence[int], dtype: Any) -> DeviceArray:
        """An uninitialised device array."""
        dt = np.dtype(dtype)
        if dt not in ARRAY_DTYPES:
            raise TypeError(f"device arrays hold {', '.join(d.name for d in ARRAY_DTYPES)}, not {dt}")
        shape = tuple(int(s) for s in shape)
        if any(s < 0 for s in shape):
            raise ValueError(f"negative dimension in device array shape {shape}")
        size = math.prod(shape)
        if size > MAX_ELEMENTS:
            raise ValueError(
                f"device {self.device_name}: an array of {size:,} elements {shape} is larger than the GPU kernels "
                f"index ({MAX_ELEMENTS:,} elements per array)"
            )
        with self._lock:
            buffer = self._alloc(max(1, size) * dt.itemsize)
        return DeviceArray(self, buffer, shape, dt)

    def to_device(self, host: Any, dtype: Any = None) -> DeviceArray:
        """Upload ``host`` (made contiguous, cast to ``dtype`` if given) to a new device array."""
        arr = np.require(np.asarray(host, dtype=dtype), requirements="C")  # keeps 0-d arrays 0-d
        out = self.empty(arr.shape, arr.dtype)
        if arr.size:
            with self._lock:
                self._upload(out.buffer, arr)
        return out

    def to_host(self, arr: DeviceArray) -> np.ndarray:
        """Download a device array into a new host array (waits for the kernels that write it)."""
        host = np.empty(arr.shape, arr.dtype)
        if host.size:
            with self._lock:
                self._download(host, arr.buffer)
                self.recent_kernels.clear()
        return host

    def copy(self, src: DeviceArray) -> DeviceArray:
        """A new device array with ``src``'s contents."""
        out = self.empty(src.shape, src.dtype)
        if src.size:
            with self._lock:
                self._copy(out.buffer, src.buffer, src.nbytes)
        return out

    # -- kernels --------------------------------------------------------------------------------
    def supports(self, dtype: Any) -> bool:
        """Whether kernels of ``dtype`` (float32 / float64) run on this device."""
        dt = np.dtype(dtype)
        return dt == F32 or (dt == F64 and self.supports_float64)

    def kernel(self, family: str, name: str, dtype: Any) -> Any:
        """The compiled kernel ``name`` of ``family`` for ``dtype`` (builds the program the first time)."""
        dt = np.dtype(dtype)
        key = (family, name, dt.name)
        found = self._kernels.get(key)
        if found is not None:
            return found
        with self._lock:
            if not self.supports(dt):
                raise DeviceError(self.device_name, name, f"the device does not support {dt.name} kernels")
            program = self._programs.get((family, dt.name))
            if program is None:
                from axiom.backends.gpu.sources import program_text

                options = ["-DAXIOM_DOUBLE"] if dt == F64 else []
                program = self._programs[(family, dt.name)] = self._build(
                    family, program_text(self.kind, family), options
                )
            found = self._kernels[key] = self._get_kernel(program, name)
        return found

    def launch(
        self, family: str, name: str, dtype: Any, groups: Sequence[int], local: Sequence[int], *args: Any
    ) -> None:
        """Enqueue kernel ``name`` of ``family`` (for ``dtype``) on ``groups`` work-groups of ``local`` items.

        ``groups`` and ``local`` have 1 to 3 entries; an empty launch (a zero in ``groups``) does nothing.
        """
        groups = tuple(int(g) for g in groups)
        local = tuple(int(v) for v in local)
        if len(groups) != len(local) or not 1 <= len(groups) <= 3:
            raise ValueError(f"launch {name}: groups {groups} and local {local} need the same 1 to 3 dimensions")
        if min(groups) == 0:
            return
        if min(groups) < 0 or min(local) < 1:
            raise ValueError(f"launch {name}: groups {groups} and local size {local} must be positive")
        if any(g > 65535 for g in groups[1:]) or groups[0] > 2**31 - 1:
            raise ValueError(
                f"device {self.device_name}, kernel {name}: grid {groups} is too large (at most 2**31 - 1 work-groups "
                "along the first axis and 65535 along the others)"
            )
        dt = np.dtype(dtype)
        kernel = self.kernel(family, name, dt)
        cargs = [self._argument(name, i, a, dt) for i, a in enumerate(args)]
        with self._lock:
            self.recent_kernels.append(name)
            if len(self.recent_kernels) > 8:
                del self.recent_kernels[:-8]
            self._launch(kernel, groups, local, cargs)

    def _argument(self, kernel: str, index: int, value: Any, dtype: np.dtype) -> Any:
        if isinstance(value, DeviceArray):
            if value.runtime is not self:
                where = value.runtime.device_name
                raise ValueError(f"kernel {kernel}: argument {index} lives on another device ({where})")
            return value.buffer
        if value is None:
            return self._null()
        if isinstance(value, np.int32 | np.int64):
            return value
        if isinstance(value, np.floating):
            if value.dtype != dtype:
                raise TypeError(f"kernel {kernel}: argument {index} is {value.dtype}; a real argument must be {dtype}")
            return value
        raise TypeError(
            f"kernel {kernel}: argument {index} is {type(value).__name__}; expected a DeviceArray, None, numpy.int32, "
            "numpy.int64 or a numpy float of the kernel's dtype"
        )

    def last_kernels(self) -> str:
        """The kernels enqueued since the last completed wait, for error messages."""
        return ", ".join(self.recent_kernels) or "none"

    def wait_until(self, done: Callable[[], bool], what: str) -> None:
        """Poll ``done()`` until it is true; DeviceLostError after ``AXIOM_DEVICE_TIMEOUT`` seconds."""
        deadline = time.monotonic() + device_timeout()
        pause = 0.0
        while not done():
            if time.monotonic() > deadline:
                raise DeviceLostError(
                    self.device_name,
                    self.last_kernels(),
                    f"{what} did not finish within {device_timeout():g} s (AXIOM_DEVICE_TIMEOUT); the device may be "
                    "lost or hung",
                )
            time.sleep(pause)
            pause = min(0.002, pause * 2 + 1e-6)

    def __repr__(self) -> str:
        return f"{type(self).__name__}({self.device_name!r})"
