"""The machine's fp32 peak, measured with the C FMA loop of ``csrc/bench_peak.c``.

The loop keeps 12 independent vector accumulators busy with ``acc = acc * m + c`` and
touches no memory, so it runs at the FMA units' throughput: on Zen 4, 2 pipes x 8 fp32
lanes x 2 FLOP = 32 FLOP per cycle per core, for 256-bit (ymm) and 512-bit (zmm) vectors
alike. It is compiled into ``axiom._core._kernels`` (every ``csrc/*.c`` is) and called
with ctypes, which releases the GIL, so ``threads`` Python threads run it in parallel.

Example:
    >>> peak = measure_peak(threads=1, seconds=0.002, repeat=1)
    >>> peak["available"] is False or peak["gflops"] > 0
    True
"""

from __future__ import annotations

import ctypes
import functools
import importlib.util
import statistics
import threading
import time
from typing import Any

#: Independent accumulators of the loop (AXIOM_BENCH_FMA_ACCUMULATORS in csrc/axiom_bench.h).
ACCUMULATORS = 12
#: Vector widths the loop comes in: name -> bits.
WIDTHS: dict[str, int] = {"ymm": 256, "zmm": 512}


@functools.lru_cache(maxsize=1)
def _library() -> tuple[ctypes.CDLL | None, str]:
    """The kernel library with the bench symbols, or ``(None, why not)``."""
    spec = importlib.util.find_spec("axiom._core._kernels")
    if spec is None or not spec.origin:
        return None, "axiom._core._kernels is not built (make build)"
    try:
        lib = ctypes.CDLL(spec.origin)
        fma = lib.axiom_bench_fma_f32
        supported = lib.axiom_bench_fma_supported
    except (OSError, AttributeError) as e:
        return None, f"{spec.origin} has no FMA peak loop ({e}); rebuild with `make build`"
    fma.argtypes = [ctypes.c_int64, ctypes.c_int32, ctypes.POINTER(ctypes.c_float)]
    fma.restype = ctypes.c_int
    supported.argtypes = [ctypes.c_int32]
    supported.restype = ctypes.c_int
    return lib, spec.origin


def fma_flops(iters: int, width_bits: int) -> int:
    """FLOPs of one call of the loop: ``iters * 12 accumulators * lanes * 2``.

    Example:
        >>> fma_flops(1000, 256)
        192000
    """
    return iters * ACCUMULATORS * (width_bits // 32) * 2


def fma_supported(width_bits: int) -> bool:
    """Whether this CPU (and OS) runs the loop on ``width_bits``-bit vectors (False if not built).

    Example:
        >>> isinstance(fma_supported(256), bool)
        True
    """
    lib, _ = _library()
    return bool(lib is not None and lib.axiom_bench_fma_supported(width_bits))


def run_fma(iters: int, width_bits: int) -> float:
    """Run the loop once; return the sum of its accumulators. Raises RuntimeError if unavailable.

    Example:
        >>> fma_supported(256) is False or run_fma(10, 256) > 0
        True
    """
    lib, where = _library()
    if lib is None:
        raise RuntimeError(where)
    out = ctypes.c_float()
    code = lib.axiom_bench_fma_f32(iters, width_bits, ctypes.byref(out))
    if code != 0:
        raise RuntimeError(f"axiom_bench_fma_f32({iters}, {width_bits}) returned error code {code}")
    return out.value


def _sample(iters: int, width_bits: int, threads: int) -> tuple[float, list[float]]:
    """One parallel sample: (wall seconds of the slowest thread, CPU seconds of each thread)."""
    barrier = threading.Barrier(threads)
    cpu = [0.0] * threads
    wall = [0.0] * threads

    def work(i: int) -> None:
        barrier.wait()
        c0, t0 = time.thread_time(), time.perf_counter()
        run_fma(iters, width_bits)
        cpu[i], wall[i] = time.thread_time() - c0, time.perf_counter() - t0

    if threads == 1:
        work(0)
    else:
        pool = [threading.Thread(target=work, args=(i,)) for i in range(threads)]
        for t in pool:
            t.start()
        for t in pool:
            t.join()
    return max(wall), cpu


def measure_peak(threads: int = 1, seconds: float = 0.05, repeat: int = 5) -> dict[str, Any]:
    """Measure fp32 FMA throughput per thread and in total, for ymm and (where supported) zmm.

    Each of ``threads`` threads runs the loop for about ``seconds`` per sample, ``repeat``
    samples. Returns a dict: ``available``, ``threads``, ``widths`` (per width: median and best
    GFLOP/s per thread on thread-CPU time, total wall GFLOP/s median and best), and the
    summary ``gflops_per_thread`` (best width, median thread-CPU GFLOP/s: the hardware rate while
    on a core) and ``gflops`` = ``gflops_per_thread * threads``, the peak that kernel
    efficiencies are quoted against. ``available`` is False (with ``reason``) when the loop is
    not built.

    Example:
        >>> peak = measure_peak(threads=1, seconds=0.002, repeat=2)
        >>> {"available", "threads", "gflops", "gflops_per_thread"} <= set(peak)
        True
    """
    lib, where = _library()
    if lib is None:
        return {"available": False, "reason": where, "threads": threads, "gflops": None, "gflops_per_thread": None}
    widths: dict[str, Any] = {}
    for name, bits in WIDTHS.items():
        if not fma_supported(bits):
            widths[name] = {"supported": False}
            continue
        # calibrate: iterations for `seconds` on one thread
        probe = 200_000
        t0 = time.perf_counter()
        run_fma(probe, bits)
        dt = max(time.perf_counter() - t0, 1e-6)
        iters = max(1000, int(probe * seconds / dt))
        flops = fma_flops(iters, bits)
        per_thread: list[float] = []
        total_wall: list[float] = []
        for _ in range(repeat):
            wall, cpu = _sample(iters, bits, threads)
            per_thread.extend(flops / c / 1e9 for c in cpu if c > 0)
            total_wall.append(flops * threads / wall / 1e9)
        widths[name] = {
            "supported": True,
            "bits": bits,
            "iters": iters,
            "per_thread_cpu_gflops_median": statistics.median(per_thread) if per_thread else None,
            "per_thread_cpu_gflops_best": max(per_thread) if per_thread else None,
            "wall_gflops_median": statistics.median(total_wall),
            "wall_gflops_best": max(total_wall),
        }
    rates = [w["per_thread_cpu_gflops_median"] for w in widths.values() if w.get("per_thread_cpu_gflops_median")]
    per = max(rates) if rates else None
    return {
        "available": per is not None,
        "threads": threads,
        "library": where,
        "accumulators": ACCUMULATORS,
        "widths": widths,
        "gflops_per_thread": per,
        "gflops": per * threads if per is not None else None,
    }
