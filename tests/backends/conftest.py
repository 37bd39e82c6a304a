"""Fixtures shared by the backend tests: the three kernel libraries of the one ABI (C, Rust, Zig).

A test that takes ``library_kind`` runs once per library (``"c"``, ``"rust"``, ``"zig"``);
``native`` is that library's backend (:class:`~axiom.backends.native.CBackend` through Cython,
:class:`~axiom.backends.native.RustBackend`, :class:`~axiom.backends.native.ZigBackend`) and
``kernel_lib`` the library itself loaded with ctypes through
:func:`axiom.backends.abi.load_kernel_library`. A library that is not built (or not loadable,
e.g. built from an older ABI) skips its tests, unless ``AXIOM_REQUIRE_NATIVE=1`` (``make test``,
``.ci/run``), which makes it a failure.

The fixtures are session-scoped: Hypothesis tests may use them, and every test of one library
shares one backend instance (use ``fresh_native`` for a backend with empty ``fallbacks``).
"""

from __future__ import annotations

import ctypes
import functools
import os
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


def _backend_class(kind: str) -> Any:
    from axiom.backends.native import CBackend, RustBackend, ZigBackend

    return {"c": CBackend, "rust": RustBackend, "zig": ZigBackend}[kind]


@functools.cache
def _backend(kind: str) -> Any:
    try:
        return _backend_class(kind)()
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


@pytest.fixture(scope="session", params=LIBRARIES)
def library_kind(request: pytest.FixtureRequest) -> str:
    """``"c"``, ``"rust"`` or ``"zig"``: the test runs once per kernel library."""
    return request.param


@pytest.fixture(scope="session")
def native(library_kind: str) -> Any:
    """The (shared) native backend of ``library_kind``; skips or fails if it is not built."""
    return _get(_backend(library_kind), f"the {library_kind} backend")


@pytest.fixture(scope="session")
def fresh_native(library_kind: str) -> Callable[[], Any]:
    """A factory of new backends of ``library_kind`` (each with its own ``fallbacks``)."""
    _get(_backend(library_kind), f"the {library_kind} backend")
    return _backend_class(library_kind)


@pytest.fixture(scope="session")
def kernel_lib(library_kind: str) -> ctypes.CDLL:
    """The kernel library of ``library_kind`` through ctypes (``abi.SIGNATURES`` applied)."""
    return _get(_library(library_kind), f"the {library_kind} kernel library")


@pytest.fixture(scope="session")
def get_native() -> Callable[[str], Any]:
    """``get_native(kind)``: the shared backend of a library, for tests parametrized another way."""
    return lambda kind: _get(_backend(kind), f"the {kind} backend")


@pytest.fixture(scope="session")
def get_kernel_lib() -> Callable[[str], ctypes.CDLL]:
    """``get_kernel_lib(kind)``: a library through ctypes, e.g. the C one to compare another library with."""
    return lambda kind: _get(_library(kind), f"the {kind} kernel library")
