"""Backend registry and selection: names to backend objects, and the default backend.

Example:
    >>> from axiom.backends import get_backend, use_backend
    >>> get_backend().name
    'numpy'
    >>> with use_backend("numpy") as be:
    ...     be.name
    'numpy'
"""

from __future__ import annotations

import contextlib
import contextvars
from collections.abc import Callable, Iterator

from axiom.backends.base import KernelBackend
from axiom.backends.reference import ReferenceBackend

_FACTORIES: dict[str, Callable[[], KernelBackend]] = {}
_INSTANCES: dict[str, KernelBackend] = {}
_current: contextvars.ContextVar[KernelBackend | None] = contextvars.ContextVar("axiom_backend", default=None)


def register_backend(name: str, factory: Callable[[], KernelBackend]) -> None:
    """Make ``get_backend(name)`` build a backend with ``factory`` (once, then cached).

    Example:
        >>> class Echo(ReferenceBackend):
        ...     name = "echo"
        >>> register_backend("echo", Echo)
        >>> get_backend("echo").name
        'echo'
    """
    _FACTORIES[name] = factory
    _INSTANCES.pop(name, None)


def _native(kind: str) -> Callable[[], KernelBackend]:
    def make() -> KernelBackend:
        from axiom.backends import native

        return {"c": native.CBackend, "rust": native.RustBackend, "zig": native.ZigBackend}[kind]()

    return make


def _gpu(kind: str) -> Callable[[], KernelBackend]:
    def make() -> KernelBackend:
        from axiom.backends.gpu import backend

        return {"cuda": backend.CUDABackend, "opencl": backend.OpenCLBackend}[kind]()

    return make


register_backend("numpy", ReferenceBackend)
for _kind in ("c", "rust", "zig"):
    register_backend(_kind, _native(_kind))
for _kind in ("cuda", "opencl"):
    register_backend(_kind, _gpu(_kind))


def available_backends() -> list[str]:
    """Names of registered backends that can be built on this machine.

    Example:
        >>> "numpy" in available_backends()  # the reference backend is always available
        True
    """
    names = []
    for name in _FACTORIES:
        try:
            get_backend(name)
        except (ImportError, OSError):
            continue
        names.append(name)
    return names


def get_backend(backend: str | KernelBackend | None = None) -> KernelBackend:
    """Return a backend object: by name, as given, or the current default (``None``).

    ``"auto"`` is the fastest CPU backend that loads on this machine: ``"c"`` if the C kernels
    are built, else ``"numpy"`` (never a GPU).

    Raises ``ValueError`` for an unknown name and ``ImportError``/``OSError`` when a
    native library is not built on this machine.

    Example:
        >>> get_backend("numpy").name
        'numpy'
        >>> be = ReferenceBackend()
        >>> get_backend(be) is be
        True
    """
    if isinstance(backend, KernelBackend):
        return backend
    if backend is None:
        current = _current.get()
        return current if current is not None else get_backend("numpy")
    if backend == "auto" and "auto" not in _FACTORIES:
        return _auto_backend()
    if backend not in _FACTORIES:
        choices = sorted({*_FACTORIES, "auto"})
        raise ValueError(f"unknown backend {backend!r}; expected one of {choices} or a KernelBackend")
    if backend not in _INSTANCES:
        _INSTANCES[backend] = _FACTORIES[backend]()
    return _INSTANCES[backend]


def _auto_backend() -> KernelBackend:
    """``"auto"``: the fastest CPU backend that loads here, the C kernels, else the NumPy reference.

    Never a GPU: a coprocessor is only used when asked for by name (see ``axiom.detect_coprocessor``).

    Example:
        >>> get_backend("auto").name in ("c", "numpy")
        True
    """
    try:
        return get_backend("c")
    except (ImportError, OSError):
        return get_backend("numpy")


def set_backend(backend: str | KernelBackend) -> KernelBackend:
    """Set the default backend for this thread/context and return it.

    Example:
        >>> set_backend("numpy").name
        'numpy'
        >>> get_backend().name
        'numpy'
    """
    be = get_backend(backend)
    _current.set(be)
    return be


@contextlib.contextmanager
def use_backend(backend: str | KernelBackend) -> Iterator[KernelBackend]:
    """Context manager: run the block with ``backend`` as the default.

    Example:
        >>> with use_backend(ReferenceBackend()) as be:
        ...     get_backend() is be
        True
    """
    token = _current.set(get_backend(backend))
    try:
        yield _current.get()  # type: ignore[misc]
    finally:
        _current.reset(token)
