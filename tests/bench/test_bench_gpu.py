"""``python -m axiom.bench kernels --backend opencl|cuda``: a tiny OpenCL run (PoCL in CI); CUDA refuses here."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

from axiom.bench import gpu, kernels

REQUIRE_NATIVE = os.environ.get("AXIOM_REQUIRE_NATIVE", "") == "1"
REQUIRE_CUDA = os.environ.get("AXIOM_REQUIRE_CUDA", "") == "1"


def _opencl_or_skip() -> None:
    from axiom.backends.gpu.opencl_runtime import OpenCLRuntime

    if OpenCLRuntime.first_device_or_none() is None:
        if REQUIRE_NATIVE:
            pytest.fail("no OpenCL device (AXIOM_REQUIRE_NATIVE=1: pip install pyopencl pocl-binary-distribution)")
        pytest.skip("no OpenCL device")


def _device_or_skip(kind: str) -> None:
    if kind == "opencl":
        _opencl_or_skip()
    elif not gpu.cuda_available():
        if REQUIRE_CUDA:
            pytest.fail("no CUDA GPU (AXIOM_REQUIRE_CUDA=1)")
        pytest.skip("no CUDA GPU here (make test-gpu runs this on one)")


def _bench(*args: str, cwd: Path) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "axiom.bench", *args], capture_output=True, text=True, timeout=300, cwd=cwd
    )


@pytest.mark.parametrize("kind", ["opencl", "cuda"])
def test_smoke_run(kind: str, tmp_path: Path) -> None:
    """A tiny run (PoCL in CI; on a GPU with make test-gpu): JSON named after the device, every case native."""
    _device_or_skip(kind)
    proc = _bench(
        "kernels", "--backend", kind, "--quick", "--repeat", "1", "--filter", "^(matmul|softmax)",
        "--out", str(tmp_path), cwd=tmp_path,
    )  # fmt: skip
    assert proc.returncode == 0, proc.stdout[-3000:] + proc.stderr[-3000:]
    (path,) = tmp_path.glob(f"gpu-{kind}-*.json")
    result = json.loads(path.read_text())
    assert result["schema"] == gpu.SCHEMA and result["backend"] == kind
    assert result["device"] and gpu.result_path(result, tmp_path) == path
    assert result["reference"] in ("torch-cuda", "torch-cpu", "numpy")
    assert [c["name"] for c in result["cases"]] == ["matmul 256x256x256", "softmax 1024x784"]
    for case in result["cases"]:
        dev = case["device"]
        assert dev["status"] == "native" and dev["agrees"], case
        assert dev["median_ms"] > 0 and dev["launches"] >= 1 and all(k.startswith("axiom_") for k in dev["kernels"])
        assert case["reference"]["median_ms"] > 0 and case["ratio_ref"] > 0
    matmul, softmax = result["cases"]
    assert matmul["device"]["gflops"] > 0 and "axiom_gemm" in matmul["device"]["kernels"]
    assert softmax["device"]["gbps"] > 0 and softmax["device"]["kernels"] == ["axiom_softmax"]
    # the table on stdout, with the device name
    assert result["device"] in proc.stdout and "| matmul 256x256x256 |" in proc.stdout


def test_cuda_without_a_device_fails_clearly(tmp_path: Path) -> None:
    if gpu.cuda_available():
        pytest.skip("this machine has a CUDA GPU")
    proc = _bench("kernels", "--backend", "cuda", "--quick", "--out", str(tmp_path), cwd=tmp_path)
    assert proc.returncode == 2, proc.stdout + proc.stderr
    assert "error: --backend cuda: no CUDA device here" in proc.stderr and "axiom[gpu]" in proc.stderr
    assert "Traceback" not in proc.stderr and not list(tmp_path.glob("*.json"))


def test_backend_goes_with_kernels_only(tmp_path: Path) -> None:
    proc = _bench("models", "--backend", "opencl", cwd=tmp_path)
    assert proc.returncode == 2 and "--backend (a GPU backend) goes with `kernels` only" in proc.stderr


def test_record_and_replay_launches() -> None:
    _opencl_or_skip()
    from axiom.backends.gpu.backend import OpenCLBackend

    be = OpenCLBackend()
    x = np.linspace(-2, 2, 1000, dtype=np.float32).reshape(10, 100)
    out, launches = gpu.record_launches(be, lambda: be.softmax(x, -1))
    assert [name for _, name, *_ in launches] == ["axiom_softmax"]
    assert "launch" not in vars(be.runtime)  # the recording hook is gone
    y = launches[0][5][1]  # the output device array, still allocated
    be.runtime.to_host(y)[...] = 0  # a host copy: the device buffer is unchanged
    gpu.replay(be.runtime, launches)
    np.testing.assert_allclose(be.runtime.to_host(y).reshape(out.shape), out, rtol=1e-6)
    timing = gpu.time_calls(lambda: gpu.replay(be.runtime, launches), be.runtime.synchronize, 2, 0.0, 1.0)
    assert timing["samples"] == 2 and timing["median_ms"] > 0


def test_cpu_bench_leaves_gpu_backends_out() -> None:
    assert not set(kernels.bench_backends()) & set(kernels.GPU_BACKENDS)
    names = [c.name for c in gpu.gpu_cases()]
    assert {"matmul 1024x1024x1024", "matmul 4096x4096x4096"} <= set(names)
    assert any(n.startswith("conv2d") for n in names) and any(n.startswith("attention") for n in names)
    assert len(gpu.gpu_cases(quick=True)) < len(names)
