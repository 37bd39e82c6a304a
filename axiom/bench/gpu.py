"""``python -m axiom.bench kernels --backend cuda|opencl``: the GPU kernels, timed with their data on the device.

The CPU benchmark (:mod:`axiom.bench.kernels`) times each op through the backend's host-array
interface; for a GPU that would time the PCIe copies, not the kernels. Here each case runs once
through the backend (uploading the inputs and checking the result against the NumPy reference)
while the runtime's ``launch`` is recorded; the recorded launches, whose arrays stay on the
device, are then replayed ``number`` times per sample and the device synchronized: the time per
replay is what the kernels (and their launch overhead) take on device-resident data, the way a
compiled model (``compile(model, backend="cuda")``) runs them.

Reported per case: median and best milliseconds, GFLOP/s (matmul, conv2d, attention) or GB/s
(norms, softmax, pooling, activations: bytes read + written once), the error against the
reference, and the ratio to the best reference of the same run: PyTorch on the GPU when
``torch.cuda.is_available()`` (for ``--backend cuda``; inputs on the GPU, timed with
``torch.cuda.synchronize``), else PyTorch or NumPy on the CPU. The JSON goes to
``bench/results/gpu-<backend>-<device>-<timestamp>.json`` (``--out`` to change the directory);
the device name is in the file name and the payload.

With ``--backend cuda`` and no CUDA device the command exits with status 2 and says why.

Example:
    >>> [c.name for c in gpu_cases(quick=True, filter="^matmul")]
    ['matmul 256x256x256']
    >>> import contextlib, io
    >>> stderr = io.StringIO()
    >>> with contextlib.redirect_stderr(stderr):
    ...     code = None if cuda_available() else main(["kernels", "--backend", "cuda"])
    >>> code is None or (code == 2 and "no CUDA device here" in stderr.getvalue())
    True
"""

from __future__ import annotations

import argparse
import datetime as dt
import json
import math
import re
import statistics
import sys
import time
import warnings
from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np

from axiom.backends import FallbackWarning, get_backend
from axiom.bench import kernels as K
from axiom.bench.flops import gbps, gflops
from axiom.bench.machine import machine_info

SCHEMA = "axiom-bench-gpu/1"
GPU_KINDS = ("cuda", "opencl")


class GPUUnavailable(RuntimeError):
    """The requested GPU backend cannot run on this machine (the message says why)."""


def cuda_available() -> bool:
    """Whether PyCUDA, the NVIDIA driver and a device are all present.

    Example:
        >>> cuda_available() in (True, False)
        True
    """
    try:
        from axiom.backends.gpu.cuda_runtime import import_pycuda_driver

        import_pycuda_driver()
    except ImportError:
        return False
    return True


def make_backend(kind: str) -> Any:
    """A fresh CUDABackend / OpenCLBackend; GPUUnavailable saying what is missing.

    Example:
        >>> try:
        ...     print(make_backend("opencl").name)
        ... except GPUUnavailable as e:
        ...     print("opencl")                     # no OpenCL driver here: e says what to install
        opencl
    """
    if kind not in GPU_KINDS:
        raise ValueError(f"--backend must be one of {', '.join(GPU_KINDS)}, not {kind!r}")
    try:
        from axiom.backends.gpu.backend import CUDABackend, OpenCLBackend

        return CUDABackend() if kind == "cuda" else OpenCLBackend()
    except (ImportError, ValueError) as e:
        need = (
            "an NVIDIA GPU with its driver and PyCUDA (pip install 'axiom[gpu]')"
            if kind == "cuda"
            else "PyOpenCL and an OpenCL driver (pip install pyopencl pocl-binary-distribution for the CPU)"
        )
        label = {"cuda": "CUDA", "opencl": "OpenCL"}[kind]
        raise GPUUnavailable(f"--backend {kind}: no {label} device here ({e}); this benchmark needs {need}") from e


# -- the cases ------------------------------------------------------------------------------------


def gpu_cases(quick: bool = False, filter: str | None = None) -> list[K.KernelCase]:
    """The GPU benchmark's cases: GPU-sized shapes (``quick``: a few small ones for smoke tests).

    Example:
        >>> names = [c.name for c in gpu_cases()]
        >>> "matmul 4096x4096x4096" in names and "attention B1 H8 L2048 D64 causal" in names
        True
    """
    if quick:
        cases = [
            K._matmul(256, 256, 256),
            K._conv(32, 28, 28, 3, 32),
            K._rows("layernorm", 1024, 784),
            K._rows("softmax", 1024, 784),
            K._activation("gelu_tanh", 32, 28, 28, 32),
            K._attention(1, 8, 512, 64, False),
        ]
    else:
        cases = [
            K._matmul(1024, 1024, 1024),
            K._matmul(2048, 2048, 2048),
            K._matmul(4096, 4096, 4096),
            K._conv(32, 56, 56, 64, 64),
            K._conv(8, 32, 32, 64, 128),
            K._spatial("batchnorm", 32, 56, 56, 64),
            K._spatial("max_pool2d", 32, 56, 56, 64),
            K._spatial("global_avg_pool", 32, 56, 56, 64),
            K._rows("layernorm", 4096, 768),
            K._rows("rmsnorm", 4096, 768),
            K._rows("softmax", 4096, 768),
            K._rows("softmax", 2048, 3136),
            K._activation("gelu", 32, 56, 56, 64),
            K._attention(1, 8, 512, 64, False),
            K._attention(1, 8, 2048, 64, False),
            K._attention(1, 8, 2048, 64, True),
            K._rope(1, 8, 2048, 64),
        ]
    if filter:
        pattern = re.compile(filter)
        cases = [c for c in cases if pattern.search(c.name)]
    return cases


# -- recording and replaying launches ---------------------------------------------------------------


Launch = tuple[str, str, Any, tuple[int, ...], tuple[int, ...], tuple[Any, ...]]


def record_launches(backend: Any, call: Callable[[], Any]) -> tuple[Any, list[Launch]]:
    """Run ``call()`` on ``backend`` and return its result and every kernel launch it made.

    The recorded arguments hold the device arrays, which stay allocated (and filled) for replays.

    Example:
        >>> from axiom.backends.gpu.opencl_runtime import OpenCLRuntime
        >>> rt = OpenCLRuntime.first_device_or_none()
        >>> if rt is not None:
        ...     from axiom.backends.gpu.backend import GPUBackend
        ...     be = GPUBackend(rt)
        ...     out, launches = record_launches(be, lambda: be.activation(np.ones(4, np.float32), "relu"))
        ...     print([name for _, name, *_ in launches])
        ... else:
        ...     print(['axiom_activation'])
        ['axiom_activation']
    """
    rt = backend.runtime
    launches: list[Launch] = []
    original = rt.launch

    def recording(family: str, name: str, dtype: Any, groups: Any, local: Any, *args: Any) -> None:
        launches.append((family, name, dtype, tuple(groups), tuple(local), args))
        original(family, name, dtype, groups, local, *args)

    rt.launch = recording  # instance attribute: the launchers call rt.launch(...)
    try:
        out = call()
    finally:
        del rt.launch
    return out, launches


def replay(rt: Any, launches: list[Launch]) -> None:
    """Enqueue the recorded launches again (asynchronously).

    Example (any object with the runtime's ``launch`` replays; :func:`record_launches` records them):
        >>> class Printer:
        ...     def launch(self, family, name, dtype, groups, local, *args):
        ...         print(name, groups, local, len(args))
        >>> replay(Printer(), [("activation", "axiom_activation", np.float32, (1,), (256,), (None, None))])
        axiom_activation (1,) (256,) 2
    """
    for family, name, dtype, groups, local, args in launches:
        rt.launch(family, name, dtype, groups, local, *args)


def time_calls(
    run: Callable[[], None], sync: Callable[[], None], repeat: int, min_sample_s: float, budget_s: float
) -> dict[str, Any]:
    """Median / best milliseconds per ``run()`` (enqueued ``number`` times, then one ``sync()``).

    Example:
        >>> t = time_calls(lambda: None, lambda: None, repeat=3, min_sample_s=0.001, budget_s=1.0)
        >>> t["samples"], t["median_ms"] >= 0
        (3, True)
    """
    run()
    sync()  # warm: programs built, caches filled
    t0 = time.perf_counter()
    run()
    sync()
    once = max(time.perf_counter() - t0, 1e-7)
    number = max(1, min(100_000, math.ceil(min_sample_s / once)))
    repeat = max(1, min(repeat, int(budget_s / (once * number)) or 1))
    samples = []
    for _ in range(repeat):
        t0 = time.perf_counter()
        for _ in range(number):
            run()
        sync()
        samples.append((time.perf_counter() - t0) * 1e3 / number)
    return {
        "median_ms": statistics.median(samples),
        "best_ms": min(samples),
        "samples": len(samples),
        "calls_per_sample": number,
    }


# -- references -----------------------------------------------------------------------------------


def _torch() -> Any | None:
    try:
        import torch
    except ImportError:
        return None
    return torch


def reference_kind(kind: str) -> str:
    """The best reference this run can compare with: ``torch-cuda``, ``torch-cpu`` or ``numpy``.

    Example:
        >>> reference_kind("opencl") in ("torch-cpu", "numpy")
        True
    """
    torch = _torch()
    if kind == "cuda" and torch is not None and torch.cuda.is_available():
        return "torch-cuda"
    return "torch-cpu" if torch is not None else "numpy"


def _reference_timing(ref: str, case: K.KernelCase, inputs: dict[str, Any], timing: dict[str, Any]) -> dict[str, Any]:
    """Time the reference ``ref`` on ``case`` (torch on the GPU: inputs moved there first)."""
    torch = _torch()
    if ref == "numpy":
        numpy_be = get_backend("numpy")
        return time_calls(lambda: case.call(numpy_be, inputs), lambda: None, **timing)
    if case.torch_call is None or torch is None:
        raise RuntimeError(f"{case.name}: no PyTorch equivalent")
    torch.set_grad_enabled(False)
    if ref == "torch-cuda":
        moved = {k: v.to("cuda") if isinstance(v, torch.Tensor) else v for k, v in inputs.items()}
        return time_calls(lambda: case.torch_call(moved), torch.cuda.synchronize, **timing)
    return time_calls(lambda: case.torch_call(inputs), lambda: None, **timing)


# -- one case -------------------------------------------------------------------------------------


def run_gpu_case(backend: Any, case: K.KernelCase, ref: str, timing: dict[str, Any]) -> dict[str, Any]:
    """Check and time one case on the device, and the reference; return its JSON record.

    Example:
        >>> try:
        ...     be = make_backend("opencl")
        ... except GPUUnavailable:
        ...     be = None
        >>> case = gpu_cases(quick=True, filter="^softmax")[0]
        >>> timing = {"repeat": 1, "min_sample_s": 0.0, "budget_s": 0.5}
        >>> rec = run_gpu_case(be, case, "numpy", timing) if be is not None else {"device": {"status": "native"}}
        >>> rec["device"]["status"]
        'native'
    """
    rt = backend.runtime
    inputs = case.make(np.random.default_rng(0))
    rec: dict[str, Any] = {"name": case.name, "op": case.op, "group": case.group, "flops": case.flops,
                           "bytes": case.nbytes, "note": case.note}  # fmt: skip
    backend.fallbacks.pop(case.op, None)
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", FallbackWarning)
            out, launches = record_launches(backend, lambda: case.call(backend, inputs))
        if case.op in backend.fallbacks:
            rec["device"] = {"status": "fallback", "fallback_reason": backend.fallbacks[case.op]}
            return rec
        with np.errstate(all="ignore"):
            want = case.call(get_backend("numpy"), inputs)
        err, rel = K._errors(out, want)
        device = {"status": "native", "kernels": sorted({name for _, name, *_ in launches}), "launches": len(launches),
                  "max_abs_err": err, "rel_err": rel, "agrees": rel <= K.REL_TOL}  # fmt: skip
        device.update(time_calls(lambda: replay(rt, launches), rt.synchronize, **timing))
    except Exception as e:  # noqa: BLE001 - a failing kernel is reported, the other cases still run
        rec["device"] = {"status": "error", "error": f"{type(e).__name__}: {e}"}
        return rec
    rec["device"] = device
    try:
        reference = _reference_timing(ref, case, inputs, timing)
    except Exception as e:  # noqa: BLE001 - e.g. PyTorch refusing a shape: report, keep the device timing
        reference = {"error": f"{type(e).__name__}: {e}"}
    rec["reference"] = {"kind": ref, **reference}
    for entry in (device, reference):
        if "median_ms" in entry:
            if case.flops is not None:
                entry["gflops"] = gflops(case.flops, entry["median_ms"])
            if case.nbytes is not None:
                entry["gbps"] = gbps(case.nbytes, entry["median_ms"])
    if "median_ms" in reference:
        # time over the reference's: below 1 the device kernels are faster
        rec["ratio_ref"] = device["median_ms"] / reference["median_ms"]
    return rec


# -- output ---------------------------------------------------------------------------------------


def _fmt(value: float | None, digits: int = 3) -> str:
    if value is None or not math.isfinite(value):
        return "-"
    return f"{value:.{digits}g}" if value < 1000 else f"{value:,.0f}"


def markdown_table(result: dict[str, Any]) -> str:
    """The results as a Markdown table (device time, rate, reference time, time ratio).

    Example:
        >>> res = {"backend": "opencl", "device": "dev", "reference": "numpy", "cases": [{"name": "m",
        ...        "device": {"status": "native", "median_ms": 2.0, "gflops": 10.0, "agrees": True},
        ...        "reference": {"kind": "numpy", "median_ms": 4.0}, "ratio_ref": 0.5}]}
        >>> print(markdown_table(res).splitlines()[2])
        | m | 2 | 10 GFLOP/s | 4 | 0.5 |
    """
    ref = result["reference"]
    lines = [
        f"| case | {result['backend']} ms | rate | {ref} ms | t / t_{ref} |",
        "|---|---:|---:|---:|---:|",
    ]
    for case in result["cases"]:
        dev = case["device"]
        if dev.get("status") != "native":
            lines.append(f"| {case['name']} | {dev.get('status')}: {dev.get('error') or dev.get('fallback_reason')} "
                         "| | | |")  # fmt: skip
            continue
        rate = (
            f"{_fmt(dev['gflops'])} GFLOP/s" if dev.get("gflops") is not None
            else f"{_fmt(dev.get('gbps'))} GB/s" if dev.get("gbps") is not None else "-"
        )  # fmt: skip
        flag = "" if dev.get("agrees", True) else " (DISAGREES)"
        lines.append(
            f"| {case['name']}{flag} | {_fmt(dev['median_ms'])} | {rate} | "
            f"{_fmt(case.get('reference', {}).get('median_ms'))} | {_fmt(case.get('ratio_ref'))} |"
        )
    return "\n".join(lines)


def result_path(result: dict[str, Any], out_dir: str | Path) -> Path:
    """``<out_dir>/gpu-<backend>-<device>-<timestamp>.json``.

    Example:
        >>> result_path({"backend": "cuda", "device": "NVIDIA H100 80GB HBM3 (CUDA device 0, sm_90)",
        ...              "created": "2026-11-23T01:02:03"}, "bench/results").name
        'gpu-cuda-NVIDIA-H100-80GB-HBM3-CUDA-device-0-sm_90-20261123T010203.json'
    """
    slug = re.sub(r"[^A-Za-z0-9_.-]+", "-", result["device"]).strip("-")[:60] or "device"
    stamp = result["created"].replace("-", "").replace(":", "")[:15]
    return Path(out_dir) / f"gpu-{result['backend']}-{slug}-{stamp}.json"


def run(kind: str, quick: bool, filter: str | None, repeat: int | None, log: Callable[[str], None]) -> dict[str, Any]:
    """Run the GPU benchmark on backend ``kind`` and return the result (GPUUnavailable without a device).

    Example:
        >>> try:
        ...     res = run("opencl", quick=True, filter="^matmul", repeat=1, log=lambda m: None)
        ... except GPUUnavailable:
        ...     res = {"cases": [{"name": "matmul 256x256x256"}]}
        >>> [c["name"] for c in res["cases"]]
        ['matmul 256x256x256']
    """
    backend = make_backend(kind)
    ref = reference_kind(kind)
    timing = {"repeat": repeat or (3 if quick else 7), "min_sample_s": 0.005 if quick else 0.05,
              "budget_s": 1.0 if quick else 10.0}  # fmt: skip
    rt = backend.runtime
    result: dict[str, Any] = {
        "schema": SCHEMA,
        "created": dt.datetime.now().isoformat(timespec="seconds"),
        "backend": kind,
        "device": rt.device_name,
        "device_type": getattr(rt, "device_type", "gpu"),
        "reference": ref,
        "settings": {"quick": quick, "filter": filter, **timing},
        "machine": machine_info(),
        "cases": [],
    }
    if ref == "torch-cuda":
        result["reference_device"] = _torch().cuda.get_device_name(0)  # type: ignore[union-attr]
    cases = gpu_cases(quick, filter)
    for i, case in enumerate(cases, 1):
        t0 = time.perf_counter()
        result["cases"].append(run_gpu_case(backend, case, ref, timing))
        log(f"[{kind}] {i}/{len(cases)} {case.name}: {time.perf_counter() - t0:.1f} s")
    return result


def main_gpu(args: argparse.Namespace) -> int:
    """``python -m axiom.bench kernels --backend KIND`` (called by :func:`axiom.bench.cli.main`); the exit code.

    Example:
        >>> import contextlib, io
        >>> from axiom.bench.cli import build_parser
        >>> args = build_parser().parse_args(["kernels", "--backend", "cuda"])
        >>> with contextlib.redirect_stderr(io.StringIO()):
        ...     code = None if cuda_available() else main_gpu(args)
        >>> code in (None, 2)
        True
    """

    def log(msg: str) -> None:
        print(msg, file=sys.stderr, flush=True)

    try:
        result = run(args.backend, args.quick, args.filter, args.repeat, log)
    except GPUUnavailable as e:
        print(f"error: {e}", file=sys.stderr)
        return 2
    result["command"] = ["python", "-m", "axiom.bench", *sys.argv[1:]]
    from axiom.bench.cli import _rounded

    path = result_path(result, args.out or "bench/results")
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps(_rounded(result), indent=1, default=str) + "\n", encoding="utf-8")
    print(f"axiom.bench GPU kernels on {result['device']} ({args.backend}); reference: {result['reference']}")
    print(markdown_table(result))
    print(f"results: {path}")
    bad = [c["name"] for c in result["cases"] if c["device"].get("status") != "native" or not c["device"]["agrees"]]
    if bad:
        print(f"error: {len(bad)} case(s) failed, fell back or disagree with the reference: {', '.join(bad)}",
              file=sys.stderr)  # fmt: skip
        return 1
    return 0


def main(argv: list[str]) -> int:
    """Parse ``argv`` as ``python -m axiom.bench`` does and run the GPU benchmark (for tests and doctests).

    Example:
        >>> import contextlib, io
        >>> with contextlib.redirect_stderr(io.StringIO()):
        ...     code = None if cuda_available() else main(["kernels", "--backend", "cuda"])
        >>> code in (None, 2)
        True
    """
    from axiom.bench.cli import build_parser

    return main_gpu(build_parser().parse_args(argv))
