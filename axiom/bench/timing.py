"""Interleaved timing: every implementation is sampled once per round, round after round.

On a shared machine the load changes from second to second. Sampling the implementations
in turn (``A B C, B C A, C A B, ...``) exposes all of them to the same load, and the ratio
of two implementations is taken per round, then the median over rounds (as in
``../shared/notes/performance-anchors.md``). Each sample repeats a call enough times to
last ``min_sample_s``; the time per call is the sample divided by that count.
Two clocks are read: wall time (what users see) and the CPU time of the calling thread
(the speed while actually on a core, immune to time-slicing; meaningful at one thread).

Example:
    >>> res = interleave({"a": lambda: sum(range(100)), "b": lambda: sum(range(200))}, repeat=3)
    >>> sorted(res), len(res["a"].wall_ms)
    (['a', 'b'], 3)
    >>> res["a"].median_ms > 0 and ratio(res["a"], res["b"]) > 0
    True
"""

from __future__ import annotations

import gc
import math
import statistics
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field


@dataclass
class Timing:
    """Samples of one implementation, in milliseconds per call.

    Example:
        >>> t = Timing(wall_ms=[3.0, 1.0, 2.0], cpu_ms=[2.0, 1.0, 2.0], number=4)
        >>> t.median_ms, t.best_ms, t.cpu_median_ms
        (2.0, 1.0, 2.0)
    """

    wall_ms: list[float] = field(default_factory=list)
    cpu_ms: list[float] = field(default_factory=list)
    number: int = 1

    @property
    def median_ms(self) -> float:
        """Median wall time per call."""
        return statistics.median(self.wall_ms)

    @property
    def best_ms(self) -> float:
        """Fastest sample's wall time per call."""
        return min(self.wall_ms)

    @property
    def cpu_median_ms(self) -> float:
        """Median CPU time of the calling thread per call."""
        return statistics.median(self.cpu_ms)


def ratio(a: Timing, b: Timing) -> float:
    """Median over rounds of ``a / b`` (wall time); rounds are aligned by index.

    Example:
        >>> ratio(Timing([2.0, 4.0, 6.0]), Timing([1.0, 1.0, 2.0]))
        3.0
    """
    pairs = [x / y for x, y in zip(a.wall_ms, b.wall_ms) if y > 0]
    return statistics.median(pairs) if pairs else math.nan


def cpu_ratio(a: Timing, b: Timing) -> float:
    """``a / b`` of the median calling-thread CPU times: the ratio while on a core (1 thread only).

    Example:
        >>> cpu_ratio(Timing([9.0], cpu_ms=[2.0, 2.0, 4.0]), Timing([1.0], cpu_ms=[1.0, 1.0, 1.0]))
        2.0
    """
    if not a.cpu_ms or not b.cpu_ms or b.cpu_median_ms <= 0:
        return math.nan
    return a.cpu_median_ms / b.cpu_median_ms


def calibrate(fn: Callable[[], object], min_sample_s: float, max_number: int = 100_000) -> tuple[int, float]:
    """Calls per sample so that a sample lasts at least ``min_sample_s``; also the seconds of one call.

    ``fn`` is called once (after any warm-up the caller did) to measure it.

    Example:
        >>> n, seconds = calibrate(lambda: None, 0.001)
        >>> n > 1 and seconds >= 0
        True
    """
    t0 = time.perf_counter()
    fn()
    once = time.perf_counter() - t0
    if once >= min_sample_s:
        return 1, once
    return max(1, min(max_number, math.ceil(min_sample_s / max(once, 1e-7)))), once


def interleave(
    fns: Mapping[str, Callable[[], object]],
    repeat: int = 11,
    min_sample_s: float = 0.002,
    budget_s: float | None = None,
) -> dict[str, Timing]:
    """Time each callable ``repeat`` times, interleaved, rotating the order every round.

    ``budget_s`` caps the time spent: the number of rounds shrinks (to 3 at least) when one
    round would take more than ``budget_s / repeat``. Garbage collection is off while timing.

    Example:
        >>> res = interleave({"x": lambda: None}, repeat=2, min_sample_s=0.0005)
        >>> res["x"].number > 1, len(res["x"].cpu_ms)
        (True, 2)
    """
    names = list(fns)
    numbers: dict[str, int] = {}
    round_s = 0.0
    for name in names:
        numbers[name], once = calibrate(fns[name], min_sample_s)
        round_s += once * numbers[name]
    if budget_s is not None and round_s * repeat > budget_s:
        repeat = max(min(3, repeat), int(budget_s / max(round_s, 1e-9)))
    results = {name: Timing(number=numbers[name]) for name in names}
    enabled = gc.isenabled()
    gc.disable()
    try:
        for r in range(repeat):
            shift = r % len(names) if names else 0
            for name in names[shift:] + names[:shift]:
                fn, n = fns[name], numbers[name]
                c0 = time.thread_time()
                t0 = time.perf_counter()
                for _ in range(n):
                    fn()
                t1 = time.perf_counter()
                c1 = time.thread_time()
                results[name].wall_ms.append((t1 - t0) * 1e3 / n)
                results[name].cpu_ms.append((c1 - c0) * 1e3 / n)
    finally:
        if enabled:
            gc.enable()
    return results
