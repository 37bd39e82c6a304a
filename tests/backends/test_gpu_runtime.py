"""The device runtimes (OpenCL through PyOpenCL, CUDA through PyCUDA): arrays, launches and device errors.

Every failure of a device must be a Python exception naming the device (and the kernel or
program): out of memory (:class:`DeviceOutOfMemoryError`, also a ``MemoryError``), a kernel that
does not build (:class:`KernelBuildError` with the compiler's log), a device that stops answering
(:class:`DeviceLostError` after ``AXIOM_DEVICE_TIMEOUT`` seconds, never a hang) and bad launch
arguments (``TypeError``). The OpenCL tests run on PoCL in CI (required under
``AXIOM_REQUIRE_NATIVE=1``); the CUDA ones skip with the reason where there is no NVIDIA GPU
(failing under ``AXIOM_REQUIRE_CUDA=1``, ``make test-gpu``). ``import axiom`` needs none of the GPU
packages.
"""

from __future__ import annotations

import subprocess
import sys
import textwrap
import time
from typing import Any

import numpy as np
import pytest
from gpu_libs import cuda_skip_reason, gpu_backend, gpu_backends

from axiom.backends.gpu.errors import DeviceError, DeviceLostError, DeviceOutOfMemoryError, KernelBuildError
from axiom.backends.gpu.runtime import MAX_ELEMENTS, DeviceArray

DTYPES = [np.float32, np.float64, np.int32, np.int64]


@pytest.fixture(params=gpu_backends())
def rt(request: pytest.FixtureRequest) -> Any:
    """The runtime of a fresh backend of each GPU kind (skips / fails as gpu_libs says)."""
    return gpu_backend(request.param).runtime


def _relu(rt: Any, x: DeviceArray, y: DeviceArray) -> None:
    rt.launch("activation", "axiom_activation", x.dtype, (1,), (256,), x, y, np.int64(x.size), np.int32(1),
              x.dtype.type(0))  # fmt: skip


# -- import axiom without any GPU package -----------------------------------------------------


def test_import_axiom_needs_no_gpu_package() -> None:
    code = textwrap.dedent(
        """
        import sys
        for name in ("pyopencl", "pycuda", "pycuda.driver", "cuda", "cuda.bindings", "cuda.bindings.nvrtc"):
            sys.modules[name] = None  # any import of them raises ImportError
        import axiom
        found = axiom.detect_coprocessor()
        assert found is None, found
        from axiom.backends import available_backends
        names = available_backends()
        assert "numpy" in names and "cuda" not in names and "opencl" not in names, names
        from axiom.backends.gpu.nvrtc import nvrtc_available
        assert not nvrtc_available()
        for make in ("axiom.backends.gpu.backend:OpenCLBackend", "axiom.backends.gpu.cuda_runtime:CUDARuntime"):
            module, name = make.split(":")
            try:
                getattr(__import__(module, fromlist=[name]), name)()
            except ImportError as e:
                assert "pip install" in str(e), e
            else:
                raise AssertionError(f"{make} worked without its package")
        leaked = [m for m in ("pyopencl", "pycuda", "cuda") if sys.modules.get(m) is not None]
        assert not leaked, leaked
        print("ok")
        """
    )
    proc = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=120)
    assert proc.returncode == 0 and proc.stdout.split() == ["ok"], proc.stdout + proc.stderr


def test_cuda_runtime_raises_import_error_without_a_gpu() -> None:
    """Here (no NVIDIA driver) making a CUDA runtime is an ImportError saying what is missing, nothing else."""
    if cuda_skip_reason() is None:
        pytest.skip("this machine has a CUDA GPU")
    from axiom.backends.gpu.backend import CUDABackend
    from axiom.backends.gpu.cuda_runtime import CUDARuntime

    for make in (CUDARuntime, CUDABackend):
        with pytest.raises(ImportError) as info:
            make()
        assert "PyCUDA" in str(info.value) or "NVIDIA" in str(info.value) or "CUDA" in str(info.value)
    assert "no CUDA GPU:" in str(cuda_skip_reason())


# -- arrays -------------------------------------------------------------------------------------


@pytest.mark.parametrize("dtype", DTYPES, ids=lambda d: np.dtype(d).name)
def test_round_trip(rt: Any, dtype: Any) -> None:
    if np.dtype(dtype) == np.float64 and not rt.supports_float64:
        pytest.skip(f"{rt.device_name} has no float64")
    rng = np.random.default_rng(0)
    for shape in [(0,), (3, 0, 2), (1,), (7,), (5, 13), (2, 3, 4, 5)]:
        host = np.asarray(rng.standard_normal(shape) * 100).astype(dtype)
        dev = rt.to_device(host)
        assert isinstance(dev, DeviceArray) and dev.shape == host.shape and dev.dtype == host.dtype
        assert dev.nbytes == host.nbytes and dev.size == host.size and dev.ndim == host.ndim
        back = rt.to_host(dev)
        assert back.shape == host.shape and back.dtype == host.dtype
        np.testing.assert_array_equal(back, host)
        np.testing.assert_array_equal(rt.to_host(rt.copy(dev)), host)
    # non-contiguous input is made contiguous; a dtype argument casts
    wide = np.arange(24, dtype=np.float64).reshape(4, 6)[:, ::2]
    np.testing.assert_array_equal(rt.to_host(rt.to_device(wide, np.float32)), wide.astype(np.float32))
    assert "DeviceArray(shape=(4, 3), dtype=float32" in repr(rt.to_device(wide, np.float32))


def test_round_trip_0d(rt: Any) -> None:
    dev = rt.to_device(np.array(2.5, np.float32))
    assert dev.shape == ()
    assert rt.to_host(dev).shape == () and float(rt.to_host(dev)) == 2.5


def test_empty_refuses_bad_arrays(rt: Any) -> None:
    with pytest.raises(TypeError, match="device arrays hold"):
        rt.empty((3,), np.float16)
    with pytest.raises(TypeError, match="device arrays hold"):
        rt.to_device(np.array([1 + 2j]))
    with pytest.raises(ValueError, match="negative dimension"):
        rt.empty((2, -1), np.float32)
    with pytest.raises(ValueError, match="larger than the GPU kernels") as info:
        rt.empty((MAX_ELEMENTS + 1,), np.float32)
    assert rt.device_name in str(info.value)


def test_reshape_is_a_view(rt: Any) -> None:
    x = rt.to_device(np.arange(12, dtype=np.float32))
    v = x.reshape(3, 4)
    assert v.shape == (3, 4) and v.buffer is x.buffer and v.dtype == x.dtype and v.runtime is rt
    assert x.reshape((2, -1)).shape == (2, 6) and x.reshape(-1).shape == (12,) and x.reshape([4, 3]).shape == (4, 3)
    np.testing.assert_array_equal(rt.to_host(v), np.arange(12, dtype=np.float32).reshape(3, 4))
    # a kernel writing through one view is seen through the other
    y = rt.empty((12,), np.float32)
    _relu(rt, x.reshape(4, 3), y.reshape(2, 2, 3))
    np.testing.assert_array_equal(rt.to_host(y), np.arange(12, dtype=np.float32))
    for bad in [(5,), (3, 5), (-1, -1)]:
        with pytest.raises(ValueError):
            x.reshape(*bad)
    assert rt.empty((0, 4), np.float32).reshape(4, 0, 7).shape == (4, 0, 7)


# -- launches -------------------------------------------------------------------------------------


def test_launch_and_bad_arguments(rt: Any) -> None:
    x = rt.to_device(np.array([-1.5, 2.0, -0.0, 3.0], np.float32))
    y = rt.empty((4,), np.float32)
    _relu(rt, x, y)
    assert rt.to_host(y).tolist() == [0.0, 2.0, 0.0, 3.0]
    with pytest.raises(TypeError, match=r"argument 2 is int; expected a DeviceArray, None, numpy.int32"):
        rt.launch("activation", "axiom_activation", np.float32, (1,), (256,), x, y, 4, np.int32(1), np.float32(0))
    with pytest.raises(TypeError, match="argument 4 is float"):
        rt.launch("activation", "axiom_activation", np.float32, (1,), (256,), x, y, np.int64(4), np.int32(1), 0.0)
    with pytest.raises(TypeError, match="a real argument must be float32"):
        rt.launch("activation", "axiom_activation", np.float32, (1,), (256,), x, y, np.int64(4), np.int32(1),
                  np.float64(0))  # fmt: skip
    with pytest.raises(ValueError, match="same 1 to 3 dimensions"):
        rt.launch("activation", "axiom_activation", np.float32, (1, 1), (256,), x, y)
    with pytest.raises(ValueError, match="must be positive"):
        rt.launch("activation", "axiom_activation", np.float32, (1,), (0,), x, y)
    with pytest.raises(ValueError, match="too large"):
        rt.launch("activation", "axiom_activation", np.float32, (1, 70000), (256, 1), x, y)
    with pytest.raises(KernelBuildError, match="axiom_no_such_kernel") as info:
        rt.launch("activation", "axiom_no_such_kernel", np.float32, (1,), (256,), x)
    assert rt.device_name in str(info.value)
    # an empty grid launches nothing (and checks nothing else)
    rt.launch("activation", "axiom_activation", np.float32, (0,), (256,), x, y, 4)
    rt.synchronize()


def test_arrays_of_another_device_are_refused(rt: Any) -> None:
    other = gpu_backend(rt.kind).runtime
    x = other.to_device(np.ones(4, np.float32))
    y = rt.empty((4,), np.float32)
    with pytest.raises(ValueError, match="lives on another device"):
        _relu(rt, x, y)


# -- device errors --------------------------------------------------------------------------------


def test_out_of_memory(rt: Any, monkeypatch: pytest.MonkeyPatch) -> None:
    if rt.kind == "opencl":
        n = rt.max_alloc // 8 + 1  # one float64 more than the device's largest allocation
        assert n <= MAX_ELEMENTS, "the test needs max_mem_alloc_size below 16 GiB"
        nbytes = n * 8
    else:
        # a real GPU's memory is larger than one array may be: make the driver's allocation fail
        drv = rt.drv

        def refuse(nbytes: int) -> Any:
            raise drv.MemoryError("cuMemAlloc failed: out of memory")

        monkeypatch.setattr(drv, "mem_alloc", refuse)
        n, nbytes = 1000, 8000
    with pytest.raises(DeviceOutOfMemoryError) as info:
        rt.empty((n,), np.float64)
    err = info.value
    assert isinstance(err, MemoryError) and isinstance(err, DeviceError)
    assert err.device == rt.device_name and rt.device_name in str(err)
    assert f"{nbytes:,}" in str(err)
    rt.to_host(rt.to_device(np.ones(3)))  # the device still works


BROKEN = """
KERNEL void axiom_broken(GLOBAL real *x) {
    x[GLOBAL_ID(0)] = undefined_variable_here;
}
"""


def test_kernel_build_error_has_the_log(rt: Any) -> None:
    from axiom.backends.gpu.sources import program_text

    good = program_text(rt.kind, "activation")
    with pytest.raises(KernelBuildError) as info:
        rt._build("broken", good + BROKEN, [])
    msg = str(info.value)
    assert rt.device_name in msg and "program broken" in msg, msg
    assert "undefined_variable_here" in msg, f"the compiler log is missing: {msg}"
    assert info.value.kernel == "program broken"


def _never_completes(rt: Any, monkeypatch: pytest.MonkeyPatch) -> None:
    """Make every wait for the device see its command still running."""
    if rt.kind == "opencl":
        cl = rt.cl

        class Running:
            command_execution_status = int(cl.command_execution_status.RUNNING)

        monkeypatch.setattr(cl, "enqueue_marker", lambda queue: Running())
        monkeypatch.setattr(cl, "enqueue_copy", lambda *a, **k: Running())
    else:

        class Event:
            def record(self, stream: Any = None) -> None:
                pass

            def query(self) -> bool:
                return False

        monkeypatch.setattr(rt.drv, "Event", Event)


def test_lost_device_times_out(rt: Any, monkeypatch: pytest.MonkeyPatch) -> None:
    x = rt.to_device(np.arange(8, dtype=np.float32))
    y = rt.empty((8,), np.float32)
    _relu(rt, x, y)
    _never_completes(rt, monkeypatch)
    monkeypatch.setenv("AXIOM_DEVICE_TIMEOUT", "0.2")
    t0 = time.monotonic()
    with pytest.raises(DeviceLostError) as info:
        rt.synchronize()
    took = time.monotonic() - t0
    assert 0.15 <= took < 1.5, took
    msg = str(info.value)
    assert rt.device_name in msg and "axiom_activation" in msg and "AXIOM_DEVICE_TIMEOUT" in msg, msg
    assert "0.2 s" in msg, msg
    t0 = time.monotonic()
    with pytest.raises(DeviceLostError):
        rt.to_host(y)  # a download waits too
    assert time.monotonic() - t0 < 1.5


def test_device_timeout_setting(monkeypatch: pytest.MonkeyPatch) -> None:
    from axiom.backends.gpu.runtime import device_timeout

    monkeypatch.delenv("AXIOM_DEVICE_TIMEOUT", raising=False)
    assert device_timeout() == 120.0
    for value, want in [("0.5", 0.5), ("30", 30.0), ("-1", 120.0), ("0", 120.0), ("soon", 120.0)]:
        monkeypatch.setenv("AXIOM_DEVICE_TIMEOUT", value)
        assert device_timeout() == want, value
