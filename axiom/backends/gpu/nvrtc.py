"""Compile CUDA sources in-process with NVRTC (``cuda-bindings`` + ``nvidia-cuda-nvrtc`` from PyPI).

Needs no GPU and no driver: the test suite compile-checks every kernel family with it. The CUDA
runtime loads a CUBIN for the device's exact architecture (no driver JIT, so an NVRTC newer
than the driver still works), else the PTX, else falls back to PyCUDA's nvcc-based
``SourceModule`` (see :meth:`axiom.backends.gpu.cuda_runtime.CUDARuntime`).

Example:
    >>> if nvrtc_available():
    ...     ptx = compile_ptx('extern "C" __global__ void twice(float *x) { x[threadIdx.x] *= 2.0f; }', "twice.cu")
    ...     print(".entry twice" in ptx)
    ... else:
    ...     print(True)
    True
"""

from __future__ import annotations

from typing import Any

#: the virtual architecture PTX is made for when no device says otherwise (Ampere; runs on newer GPUs)
DEFAULT_ARCH = "compute_80"


class NVRTCCompileError(RuntimeError):
    """NVRTC refused a source; the message holds its log."""


def _nvrtc() -> Any:
    from cuda.bindings import nvrtc

    return nvrtc


def nvrtc_available() -> bool:
    """Whether ``cuda.bindings.nvrtc`` imports and its library loads.

    Example:
        >>> isinstance(nvrtc_available(), bool)
        True
    """
    try:
        nvrtc = _nvrtc()
        err, _major, _minor = nvrtc.nvrtcVersion()
        return int(err) == 0
    except Exception:  # noqa: BLE001 - ImportError, or the NVRTC shared library missing
        return False


def _check(result: Any, what: str) -> Any:
    err, *rest = result if isinstance(result, tuple) else (result,)
    if int(err) != 0:
        raise NVRTCCompileError(f"{what} failed: {err}")
    return rest[0] if len(rest) == 1 else rest


def compile_ptx(source: str, name: str, options: list[str] | None = None, arch: str = DEFAULT_ARCH) -> str:
    """PTX text of ``source`` for a virtual ``arch`` (``name`` appears in messages); NVRTCCompileError with the log.

    Example:
        >>> if nvrtc_available():
        ...     try:
        ...         compile_ptx("__global__ void broken(float *x) { x[0] = y; }", "broken.cu", [], "compute_90")
        ...     except NVRTCCompileError as err:
        ...         print(str(err).splitlines()[0])
        ... else:
        ...     print("NVRTC could not compile broken.cu:")
        NVRTC could not compile broken.cu:
    """
    return _compile(source, name, options, arch, "PTX").rstrip(b"\x00 ").decode()


def compile_cubin(source: str, name: str, options: list[str] | None = None, arch: str = "sm_80") -> bytes:
    """A CUBIN (machine code) of ``source`` for a real ``arch`` such as ``"sm_90"``; NVRTCCompileError with the log.

    Example:
        >>> if nvrtc_available():
        ...     one = 'extern "C" __global__ void one(float *x) { x[0] = 1.0f; }'
        ...     cubin = compile_cubin(one, "one.cu", [], "sm_90")
        ...     print(cubin[1:4])  # an ELF file
        ... else:
        ...     print(b"ELF")
        b'ELF'
    """
    return _compile(source, name, options, arch, "CUBIN")


def _compile(source: str, name: str, options: list[str] | None, arch: str, output: str) -> bytes:
    nvrtc = _nvrtc()
    program = _check(nvrtc.nvrtcCreateProgram(source.encode(), name.encode(), 0, [], []), "nvrtcCreateProgram")
    try:
        opts = [f"--gpu-architecture={arch}".encode(), b"--std=c++17", *(o.encode() for o in options or [])]
        result = nvrtc.nvrtcCompileProgram(program, len(opts), opts)
        if int(result[0]) != 0:
            size = _check(nvrtc.nvrtcGetProgramLogSize(program), "nvrtcGetProgramLogSize")
            log = b" " * size
            _check(nvrtc.nvrtcGetProgramLog(program, log), "nvrtcGetProgramLog")
            raise NVRTCCompileError(f"NVRTC could not compile {name}:\n{log.decode(errors='replace').strip()}")
        size = _check(getattr(nvrtc, f"nvrtcGet{output}Size")(program), f"nvrtcGet{output}Size")
        image = b" " * size
        _check(getattr(nvrtc, f"nvrtcGet{output}")(program, image), f"nvrtcGet{output}")
        return image
    finally:
        nvrtc.nvrtcDestroyProgram(program)
