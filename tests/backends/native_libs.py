"""Helpers shared by the backend tests: loading the kernel libraries and running calls concurrently.

``backend(kind)`` / ``library(kind)`` return the cached backend or ctypes library of ``"c"``,
``"rust"`` or ``"zig"`` (``backend`` also takes ``"c-ctypes"``: the C library through ctypes);
one that is not built skips the test, or fails it under ``AXIOM_REQUIRE_NATIVE=1``.
"""

from __future__ import annotations

import ctypes
import functools
import os
import threading
from collections.abc import Callable
from typing import Any

import pytest

from axiom.backends import abi

#: the libraries of the kernel ABI, in the order the tests run them
LIBRARIES = ("c", "rust", "zig")
REQUIRE_NATIVE = os.environ.get("AXIOM_REQUIRE_NATIVE", "") == "1"


def unavailable(what: str, err: BaseException) -> None:
    """Skip (or, with ``AXIOM_REQUIRE_NATIVE=1``, fail) a test whose library is not usable."""
    msg = f"{what} is not available: {err}"
    if REQUIRE_NATIVE:
        pytest.fail(f"{msg} (AXIOM_REQUIRE_NATIVE=1)")
    pytest.skip(msg)


def backend_class(kind: str) -> Any:
    """The backend class of a library kind."""
    from axiom.backends.native import CBackend, RustBackend, ZigBackend

    return {"c": CBackend, "rust": RustBackend, "zig": ZigBackend}[kind]


@functools.cache
def _backend(kind: str) -> Any:
    try:
        if kind == "c-ctypes":
            return backend_class("c")(abi.built_library_path("c"))
        return backend_class(kind)()
    except (ImportError, OSError) as e:
        return e


@functools.cache
def _library(kind: str) -> ctypes.CDLL | BaseException:
    try:
        return abi.load_kernel_library(abi.built_library_path(kind))  # type: ignore[arg-type]
    except (ImportError, OSError) as e:
        return e


def _get(value: Any, what: str) -> Any:
    if isinstance(value, BaseException):
        unavailable(what, value)
    return value


def backend(kind: str) -> Any:
    """The cached backend ``kind`` (a NativeBackend); skips or fails the test if it is not built."""
    return _get(_backend(kind), f"the {kind} backend")


def library(kind: str) -> ctypes.CDLL:
    """The cached ctypes kernel library ``kind`` (``abi.SIGNATURES`` applied); skips or fails if not built."""
    return _get(_library(kind), f"the {kind} kernel library")


def run_in_threads(count: int, work: Callable[[int], None]) -> None:
    """Run ``work(0)`` ... ``work(count - 1)`` on ``count`` Python threads at once and wait for all."""
    threads = [threading.Thread(target=work, args=(i,)) for i in range(count)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
