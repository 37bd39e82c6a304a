"""Helpers shared by the GPU backend tests: the OpenCL device (PoCL on the CPU in CI) and CUDA.

``opencl_backend()`` returns a fresh :class:`~axiom.backends.gpu.backend.OpenCLBackend` on the
default device; without PyOpenCL or a device it skips the test, or fails it under
``AXIOM_REQUIRE_NATIVE=1`` (``make test`` and CI install ``pocl-binary-distribution`` through the
dev extra, so there OpenCL must work). ``cuda_backend()`` skips with the reason when PyCUDA, the
NVIDIA driver or a device is missing (CI has none), or fails it under ``AXIOM_REQUIRE_CUDA=1``
(``make test-gpu``, on a machine with an NVIDIA GPU).
"""

from __future__ import annotations

import functools
import os
from typing import Any

import pytest

REQUIRE_NATIVE = os.environ.get("AXIOM_REQUIRE_NATIVE", "") == "1"
REQUIRE_CUDA = os.environ.get("AXIOM_REQUIRE_CUDA", "") == "1"


@functools.cache
def _opencl_error() -> BaseException | None:
    try:
        from axiom.backends.gpu.backend import OpenCLBackend

        OpenCLBackend()
    except (ImportError, ValueError) as e:
        return e
    return None


def opencl_backend() -> Any:
    """A new OpenCLBackend (its own ``fallbacks``); skips (or fails under AXIOM_REQUIRE_NATIVE=1) without OpenCL."""
    err = _opencl_error()
    if err is not None:
        msg = f"no OpenCL device: {err}"
        if REQUIRE_NATIVE:
            pytest.fail(f"{msg} (AXIOM_REQUIRE_NATIVE=1: pip install pyopencl pocl-binary-distribution)")
        pytest.skip(msg)
    from axiom.backends.gpu.backend import OpenCLBackend

    return OpenCLBackend()


@functools.cache
def _cuda_error() -> BaseException | None:
    try:
        from axiom.backends.gpu.cuda_runtime import import_pycuda_driver

        import_pycuda_driver()
    except ImportError as e:
        return e
    return None


def cuda_skip_reason() -> str | None:
    """Why the CUDA tests cannot run here (None when they can)."""
    err = _cuda_error()
    return None if err is None else f"no CUDA GPU: {err}"


def require_cuda() -> None:
    """Skip the test without CUDA (fail it under ``AXIOM_REQUIRE_CUDA=1``)."""
    reason = cuda_skip_reason()
    if reason is not None:
        if REQUIRE_CUDA:
            pytest.fail(f"{reason} (AXIOM_REQUIRE_CUDA=1: make test-gpu needs an NVIDIA GPU, its driver and PyCUDA)")
        pytest.skip(reason)


def cuda_backend() -> Any:
    """A new CUDABackend; skips with the reason when PyCUDA, the driver or a GPU is missing (fails under
    ``AXIOM_REQUIRE_CUDA=1``)."""
    require_cuda()
    from axiom.backends.gpu.backend import CUDABackend

    return CUDABackend()


def gpu_backends() -> list[str]:
    """``["opencl", "cuda"]``: the parameter list of tests that run on every GPU backend."""
    return ["opencl", "cuda"]


def gpu_backend(kind: str) -> Any:
    """``opencl_backend()`` or ``cuda_backend()`` by name."""
    return opencl_backend() if kind == "opencl" else cuda_backend()
