"""What the benchmark ran on: CPU, flags, load, thread settings and library versions.

Example:
    >>> info = machine_info()
    >>> {"cpu", "versions", "load_avg"} <= set(info)
    True
"""

from __future__ import annotations

import importlib.metadata
import os
import platform
import socket
import subprocess
import sys
from pathlib import Path
from typing import Any

#: CPU flags worth reporting next to fp32 numbers.
INTERESTING_FLAGS = (
    "sse4_2",
    "avx",
    "avx2",
    "fma",
    "f16c",
    "avx512f",
    "avx512dq",
    "avx512bw",
    "avx512vl",
    "avx512_vnni",
    "avx512_bf16",
    "avx512_fp16",
    "avx_vnni",
    "amx_tile",
    "amx_bf16",
    "hypervisor",
)

#: Environment variables that set thread counts and wait policies.
THREAD_ENV = (
    "OMP_NUM_THREADS",
    "OPENBLAS_NUM_THREADS",
    "MKL_NUM_THREADS",
    "OMP_WAIT_POLICY",
    "OPENBLAS_CORETYPE",
    "OPENBLAS_L2_SIZE",
)


def load_average() -> list[float] | None:
    """1-, 5- and 15-minute load averages (None where the OS has none).

    Example:
        >>> la = load_average()
        >>> la is None or len(la) == 3
        True
    """
    try:
        return [round(x, 2) for x in os.getloadavg()]
    except OSError:
        return None


def cpu_pressure() -> str | None:
    """The first line of ``/proc/pressure/cpu`` (share of time tasks waited for a CPU), if any.

    Example:
        >>> p = cpu_pressure()
        >>> p is None or p.startswith("some")
        True
    """
    try:
        return Path("/proc/pressure/cpu").read_text().splitlines()[0]
    except (OSError, IndexError):
        return None


_CPUINFO_KEYS = {"cpu family": "family", "model": "model_number", "stepping": "stepping"}


def _cpuinfo() -> dict[str, Any]:
    info: dict[str, Any] = {"model": platform.processor() or platform.machine(), "flags": []}
    try:
        text = Path("/proc/cpuinfo").read_text()
    except OSError:
        return info
    for line in text.splitlines():
        key, _, value = line.partition(":")
        key, value = key.strip(), value.strip()
        if key == "model name":
            info["model"] = value
        elif key in _CPUINFO_KEYS and _CPUINFO_KEYS[key] not in info:
            info[_CPUINFO_KEYS[key]] = value
        elif key == "cpu MHz" and "mhz" not in info:
            info["mhz"] = float(value)
        elif key == "flags" and not info["flags"]:
            flags = set(value.split())
            info["flags"] = [f for f in INTERESTING_FLAGS if f in flags]
    return info


def _version(dist: str) -> str | None:
    try:
        return importlib.metadata.version(dist)
    except importlib.metadata.PackageNotFoundError:
        return None


def _blas() -> str | None:
    try:
        import numpy as np

        config = np.show_config(mode="dicts")
        blas = config["Build Dependencies"]["blas"]
        return f"{blas.get('name')} {blas.get('version')}"
    except Exception:  # noqa: BLE001 - informational only
        return None


def _git_commit() -> str | None:
    root = Path(__file__).resolve().parents[2]
    if not (root / ".git").exists():
        return None
    try:
        out = subprocess.run(
            ["git", "-C", str(root), "rev-parse", "--short", "HEAD"], capture_output=True, text=True, timeout=10
        )
    except (OSError, subprocess.SubprocessError):
        return None
    return out.stdout.strip() or None


def machine_info() -> dict[str, Any]:
    """CPU (model, family, flags, cores usable), host, load, thread env and versions.

    Example:
        >>> info = machine_info()
        >>> info["cpus_usable"] >= 1 and "numpy" in info["versions"]
        True
    """
    try:
        usable = len(os.sched_getaffinity(0))
    except AttributeError:
        usable = os.cpu_count() or 1
    return {
        "host": socket.gethostname(),
        "platform": platform.platform(),
        "cpu": _cpuinfo(),
        "cpus_online": os.cpu_count(),
        "cpus_usable": usable,
        "load_avg": load_average(),
        "cpu_pressure": cpu_pressure(),
        "env": {k: os.environ[k] for k in THREAD_ENV if k in os.environ},
        "versions": {
            "python": sys.version.split()[0],
            "axiom": _version("axiom"),
            "axiom_git": _git_commit(),
            "numpy": _version("numpy"),
            "blas": _blas(),
            "torch": _version("torch"),
            "onnx": _version("onnx"),
            "onnxruntime": _version("onnxruntime"),
        },
    }
