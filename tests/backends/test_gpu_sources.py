"""The GPU kernel sources compile everywhere they must, without a GPU.

- every CUDA kernel family (:data:`axiom.backends.gpu.sources.FAMILIES`) compiles with NVRTC
  (``cuda-bindings`` + ``nvidia-cuda-nvrtc``, dev extra) in float32 and float64
  (``-DAXIOM_DOUBLE``) for Ampere (``compute_80``) and Hopper (``compute_90``), and the PTX has
  an ``.entry`` for every ``KERNEL`` of the source and for every kernel a launcher names;
- every ``cuda/*.cu`` compiles standalone with ``nvcc -ptx`` where nvcc is on PATH (skipped
  with the reason elsewhere), without warnings;
- every OpenCL family builds on the OpenCL device (PoCL in CI) in float32 and float64;
- every ``opencl/<family>.cl`` is only the OpenCL dialect header plus ``cuda/<family>.cu``: the
  kernel bodies exist once;
- a broken source is a :class:`KernelBuildError` naming the device and the program, with the
  compiler's log, on OpenCL and on CUDA (the CUDA runtime's build step driven without a GPU).

The families are required: a family whose files are missing fails here.
"""

from __future__ import annotations

import functools
import re
import shutil
import subprocess
from pathlib import Path
from typing import Any

import pytest
from gpu_libs import REQUIRE_NATIVE, opencl_backend

from axiom.backends.gpu import sources
from axiom.backends.gpu.errors import KernelBuildError

ROOT = Path(__file__).resolve().parents[2]
ARCHS = ("compute_80", "compute_90")
DTYPE_OPTIONS = {"f32": [], "f64": ["-DAXIOM_DOUBLE"]}
_KERNEL = re.compile(r"\bKERNEL\s+void\s+(axiom_\w+)\s*\(")
_ENTRY = re.compile(r"^\s*(?:\.visible\s+)?\.entry\s+(\w+)\s*\(", re.MULTILINE)


def nvrtc_or_skip() -> Any:
    from axiom.backends.gpu import nvrtc

    if not nvrtc.nvrtc_available():
        msg = "NVRTC is not installed (pip install cuda-bindings nvidia-cuda-nvrtc; the dev extra has them)"
        if REQUIRE_NATIVE:
            pytest.fail(f"{msg} (AXIOM_REQUIRE_NATIVE=1)")
        pytest.skip(msg)
    return nvrtc


def declared_kernels(family: str) -> set[str]:
    """The ``KERNEL void axiom_*`` entry points of a family's program."""
    return set(_KERNEL.findall(sources.program_text("cuda", family)))


@functools.cache
def launched_kernels() -> dict[str, set[str]]:
    """``ops_<family>.py`` -> the ``"axiom_*"`` kernel names its launchers use (string literals)."""
    found = {}
    for path in sorted((ROOT / "axiom" / "backends" / "gpu").glob("ops_*.py")):
        found[path.stem] = set(re.findall(r"\"(axiom_\w+)\"", path.read_text()))
    return found


def test_every_family_has_both_files_and_nothing_else() -> None:
    cuda = {p.stem for p in (ROOT / "cuda").glob("*.cu")}
    opencl = {p.stem for p in (ROOT / "opencl").glob("*.cl")}
    assert cuda == set(sources.FAMILIES), f"cuda/*.cu {sorted(cuda)} vs FAMILIES {sources.FAMILIES}"
    assert opencl == set(sources.FAMILIES), f"opencl/*.cl {sorted(opencl)} vs FAMILIES {sources.FAMILIES}"


@pytest.mark.parametrize("family", sources.FAMILIES)
def test_opencl_program_includes_its_cuda_twin(family: str) -> None:
    """``opencl/<family>.cl`` holds no code: the dialect header and the one body in ``cuda/<family>.cu``."""
    text = (ROOT / "opencl" / f"{family}.cl").read_text()
    code = re.sub(r"/\*.*?\*/", "", text, flags=re.DOTALL)
    code = re.sub(r"//[^\n]*", "", code)
    lines = [line.strip() for line in code.splitlines() if line.strip()]
    assert lines == ['#include "axiom_device.h"', f'#include "../cuda/{family}.cu"'], lines
    body = (ROOT / "cuda" / f"{family}.cu").read_text()
    assert '#include "axiom_device.cuh"' in body and "#ifndef AXIOM_DEVICE_DIALECT" in body, (
        f"cuda/{family}.cu must include the CUDA dialect only when no dialect is defined yet"
    )
    assert declared_kernels(family), f"cuda/{family}.cu declares no KERNEL void axiom_* entry point"


@pytest.mark.parametrize("arch", ARCHS)
@pytest.mark.parametrize("dtype", list(DTYPE_OPTIONS))
@pytest.mark.parametrize("family", sources.FAMILIES)
def test_cuda_family_compiles_with_nvrtc(family: str, dtype: str, arch: str) -> None:
    nvrtc = nvrtc_or_skip()
    ptx = nvrtc.compile_ptx(sources.program_text("cuda", family), f"{family}.cu", DTYPE_OPTIONS[dtype], arch)
    entries = set(_ENTRY.findall(ptx))
    declared = declared_kernels(family)
    assert entries == declared, f"{family}: PTX entries {sorted(entries)}, KERNELs in the source {sorted(declared)}"
    assert f".target sm_{arch.split('_')[1]}" in ptx
    if dtype == "f64":
        assert ".f64" in ptx, f"{family}: -DAXIOM_DOUBLE produced no float64 instruction"


def test_launchers_name_existing_kernels() -> None:
    declared = {name for family in sources.FAMILIES for name in declared_kernels(family)}
    for module, names in launched_kernels().items():
        missing = names - declared
        assert not missing, f"{module}.py launches {sorted(missing)}, which no cuda/*.cu declares"


@pytest.mark.parametrize("dtype", list(DTYPE_OPTIONS))
@pytest.mark.parametrize("path", sorted((ROOT / "cuda").glob("*.cu")), ids=lambda p: p.name)
def test_cuda_file_compiles_with_nvcc(path: Path, dtype: str, tmp_path: Path) -> None:
    nvcc = shutil.which("nvcc")
    if nvcc is None:
        pytest.skip("nvcc is not on PATH (the CUDA toolkit is not installed); NVRTC checks the same sources")
    out = tmp_path / f"{path.stem}.ptx"
    cmd = [nvcc, "-ptx", "-arch=compute_80", *DTYPE_OPTIONS[dtype], str(path), "-o", str(out)]
    proc = subprocess.run(cmd, capture_output=True, text=True, timeout=300)
    assert proc.returncode == 0, f"{' '.join(cmd)}:\n{proc.stdout}\n{proc.stderr}"
    assert "warning" not in proc.stderr.lower(), f"{' '.join(cmd)} warns:\n{proc.stderr}"
    assert set(_ENTRY.findall(out.read_text())) == declared_kernels(path.stem)


@pytest.mark.parametrize("family", sources.FAMILIES)
def test_opencl_family_builds(family: str) -> None:
    rt = opencl_backend().runtime
    for dtype, options in DTYPE_OPTIONS.items():
        if dtype == "f64" and not rt.supports_float64:
            continue
        program = rt._build(family, sources.program_text("opencl", family), options)
        for name in sorted(declared_kernels(family)):
            rt._get_kernel(program, name)  # KernelBuildError if the program lacks it


BROKEN = "\nKERNEL void axiom_broken(GLOBAL real *x) { x[GLOBAL_ID(0)] = not_declared_anywhere; }\n"


def test_broken_opencl_source_is_a_build_error_with_the_log() -> None:
    rt = opencl_backend().runtime
    with pytest.raises(KernelBuildError) as info:
        rt._build("activation", sources.program_text("opencl", "activation") + BROKEN, [])
    msg = str(info.value)
    assert rt.device_name in msg and "program activation" in msg and "not_declared_anywhere" in msg, msg


class _FakeContext:
    def push(self) -> None:
        pass


class _FakeDriver:
    """Loads every image as ``"module"``, or refuses the kinds listed in ``refuse`` ("CUBIN" / "PTX")."""

    def __init__(self, refuse: tuple[str, ...] = ()) -> None:
        self.refuse = refuse
        self.loaded: list[str] = []

    class Context:
        @staticmethod
        def pop() -> None:
            pass

    def module_from_buffer(self, image: bytes) -> str:
        kind = "CUBIN" if image[:4] == b"\x7fELF" else "PTX"
        if kind in self.refuse:
            raise RuntimeError(f"cuModuleLoadDataEx failed: the driver refuses this {kind} (stub)")
        self.loaded.append(kind)
        return "module"


def _cuda_runtime_without_gpu(refuse: tuple[str, ...] = ()) -> Any:
    """A CUDARuntime whose driver is a stub: enough to drive its build step (NVRTC) without a GPU."""
    from axiom.backends.gpu.cuda_runtime import CUDARuntime
    from axiom.backends.gpu.runtime import DeviceRuntime

    rt = CUDARuntime.__new__(CUDARuntime)
    DeviceRuntime.__init__(rt, "Stub GPU (CUDA device 0, sm_80)")
    rt.drv, rt.context, rt.arch = _FakeDriver(refuse), _FakeContext(), "compute_80"
    return rt


def test_cuda_build_prefers_a_cubin_then_ptx_then_reports_every_failure() -> None:
    """A CUBIN for the device's architecture first (no driver JIT: loads where the driver is older
    than NVRTC), PTX if the driver refuses it, and a KernelBuildError naming each failed way."""
    nvrtc_or_skip()
    text = sources.program_text("cuda", "activation")
    rt = _cuda_runtime_without_gpu()
    assert rt._build("activation", text, []) == "module" and rt.drv.loaded == ["CUBIN"]
    rt = _cuda_runtime_without_gpu(refuse=("CUBIN",))
    assert rt._build("activation", text, []) == "module" and rt.drv.loaded == ["PTX"]
    rt = _cuda_runtime_without_gpu(refuse=("CUBIN", "PTX"))
    with pytest.raises(KernelBuildError) as info:
        rt._build("activation", text, [])
    msg = str(info.value)
    assert "Stub GPU" in msg and "loading NVRTC's CUBIN failed" in msg and "loading NVRTC's PTX failed" in msg
    assert "SourceModule" in msg, msg  # no PyCUDA here: the last way fails too, and says so


@pytest.mark.parametrize("family", sources.FAMILIES)
def test_cuda_family_compiles_to_a_cubin_for_hopper(family: str) -> None:
    nvrtc = nvrtc_or_skip()
    cubin = nvrtc.compile_cubin(sources.program_text("cuda", family), f"{family}.cu", [], "sm_90")
    assert cubin[:4] == b"\x7fELF"


def test_broken_cuda_source_is_a_build_error_with_the_log() -> None:
    nvrtc_or_skip()
    rt = _cuda_runtime_without_gpu()
    assert rt._build("activation", sources.program_text("cuda", "activation"), []) == "module"
    with pytest.raises(KernelBuildError) as info:
        rt._build("activation", sources.program_text("cuda", "activation") + BROKEN, ["-DAXIOM_DOUBLE"])
    msg = str(info.value)
    assert "Stub GPU" in msg and "program activation" in msg and "not_declared_anywhere" in msg, msg
