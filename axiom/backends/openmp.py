"""The OpenMP wait policy: set before any OpenMP runtime starts, and a warning when it is too late.

libgomp reads ``OMP_WAIT_POLICY`` once, when it starts. Its default lets idle threads
busy-wait, which on a machine with few cores (2-core CI runners, small VMs) makes the
multi-threaded C kernels many times slower. Importing :mod:`axiom.backends` (which
``import axiom`` does first) sets ``OMP_WAIT_POLICY=PASSIVE`` and ``GOMP_SPINCOUNT=2000``
unless they are already set: idle threads spin briefly (tens of microseconds) and then sleep,
so back-to-back kernel calls find them awake while an idle process costs no CPU. That is what
the Rust and Zig worker pools do; with threads that slept at once, the 2-thread C kernels of
about 0.1 ms (norms, pooling) took 1.5-2.5x the Zig time, with the short spin they match it. If
another library (torch ships its own libgomp) started the runtime earlier without a policy,
the setting comes too late: :func:`warn_if_openmp_busy` says so once, when the C backend is
created.

Example:
    >>> import os
    >>> os.environ["OMP_WAIT_POLICY"], os.environ["GOMP_SPINCOUNT"]
    ('PASSIVE', '2000')
"""

from __future__ import annotations

import os
import warnings


def _openmp_started_busy() -> bool:
    """True when libgomp is already loaded and no wait policy was set (torch imported first)."""
    if "OMP_WAIT_POLICY" in os.environ or "GOMP_SPINCOUNT" in os.environ:
        return False
    try:
        with open("/proc/self/maps") as maps:
            return any("libgomp" in line for line in maps)
    except OSError:
        return False


OPENMP_STARTED_BUSY = _openmp_started_busy()
os.environ.setdefault("OMP_WAIT_POLICY", "PASSIVE")
os.environ.setdefault("GOMP_SPINCOUNT", "2000")


def warn_if_openmp_busy() -> None:
    """Warn once if the OpenMP runtime was started before axiom with busy-waiting threads.

    Example:
        >>> warn_if_openmp_busy()   # silent unless torch (or another OpenMP user) was imported first
    """
    global OPENMP_STARTED_BUSY
    if OPENMP_STARTED_BUSY:
        OPENMP_STARTED_BUSY = False
        warnings.warn(
            "the OpenMP runtime (libgomp) was started before axiom (e.g. by importing torch first) without "
            "OMP_WAIT_POLICY, so idle OpenMP threads busy-wait; on machines with few cores the multi-threaded "
            "C kernels can run several times slower. Import axiom before torch, or set OMP_WAIT_POLICY=PASSIVE "
            "in the environment before starting Python.",
            RuntimeWarning,
            stacklevel=4,
        )
