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
from collections.abc import Callable
from typing import Any

import pytest
from native_libs import LIBRARIES, backend, backend_class, library


@pytest.fixture(scope="session", params=LIBRARIES)
def library_kind(request: pytest.FixtureRequest) -> str:
    """``"c"``, ``"rust"`` or ``"zig"``: the test runs once per kernel library."""
    return request.param


@pytest.fixture(scope="session")
def native(library_kind: str) -> Any:
    """The (shared) native backend of ``library_kind``; skips or fails if it is not built."""
    return backend(library_kind)


@pytest.fixture(scope="session")
def fresh_native(library_kind: str) -> Callable[[], Any]:
    """A factory of new backends of ``library_kind`` (each with its own ``fallbacks``)."""
    backend(library_kind)
    return backend_class(library_kind)


@pytest.fixture(scope="session")
def kernel_lib(library_kind: str) -> ctypes.CDLL:
    """The kernel library of ``library_kind`` through ctypes (``abi.SIGNATURES`` applied)."""
    return library(library_kind)


@pytest.fixture(scope="session")
def get_native() -> Callable[[str], Any]:
    """``get_native(kind)``: the shared backend of a library, for tests parametrized another way."""
    return backend


@pytest.fixture(scope="session")
def get_kernel_lib() -> Callable[[str], ctypes.CDLL]:
    """``get_kernel_lib(kind)``: a library through ctypes, e.g. the C one to compare another library with."""
    return library
