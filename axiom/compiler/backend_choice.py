"""Turning ``compile(..., backend=...)`` into a backend object owned by one compiled model.

Example:
    >>> choose_backend("numpy").name
    'numpy'
    >>> choose_backend("auto").name in ("c", "numpy")
    True
"""

from __future__ import annotations

from axiom.backends import KernelBackend, available_backends, get_backend
from axiom.compiler.coprocessor import detect_coprocessor

#: Backend names ``compile()`` knows (more may be registered with ``axiom.backends.register_backend``).
BACKENDS: tuple[str, ...] = ("auto", "c", "rust", "zig", "numpy", "cuda", "opencl")
GPU_BACKENDS: tuple[str, ...] = ("cuda", "opencl")


class BackendUnavailableError(RuntimeError):
    """A known backend cannot run on this machine (library not built, no GPU backend or device)."""


def backend_names() -> list[str]:
    """Every name ``compile(backend=...)`` accepts: :data:`BACKENDS` plus other registered backends.

    Example:
        >>> {"auto", "c", "numpy", "cuda"} <= set(backend_names())
        True
    """
    return [*BACKENDS, *sorted(n for n in available_backends() if n not in BACKENDS)]


def _registered(name: str) -> bool:
    try:
        get_backend(name)
    except ValueError:
        return False
    except (ImportError, OSError):
        return True
    return True


def _gpu_error(name: str) -> BackendUnavailableError:
    found = detect_coprocessor()
    where = (
        "no CUDA or OpenCL GPU/accelerator was found on this machine (detect_coprocessor() returned None)"
        if found is None
        else f"found {found}, but no {name} backend is registered to drive it"
    )
    return BackendUnavailableError(
        f"backend {name!r}: GPU backends are not available yet in this build of axiom; {where}. "
        "Use a CPU backend: backend='auto' (the fastest one here), 'c' or 'numpy'. "
        "compile() never falls back from a GPU backend silently."
    )


def choose_backend(backend: str | KernelBackend) -> KernelBackend:
    """A fresh backend instance for ``backend`` (a name or a KernelBackend object).

    Names get a new instance of the registered backend's class, so each compiled model has its
    own ``fallbacks`` record and warns once per op on its own; an object is used as given.
    Raises ``ValueError`` naming the choices for an unknown name, and
    :class:`BackendUnavailableError` for a known backend that cannot run here.

    Example:
        >>> a, b = choose_backend("numpy"), choose_backend("numpy")
        >>> type(a) is type(b) and a is not b
        True
        >>> try:
        ...     choose_backend("tpu")
        ... except ValueError as err:
        ...     print(str(err).split(";")[0])
        unknown backend 'tpu'
    """
    if isinstance(backend, KernelBackend):
        return backend
    if not isinstance(backend, str):
        raise TypeError(f"backend must be a name or a KernelBackend, got {type(backend).__name__}")
    registered = _registered(backend)
    if backend in GPU_BACKENDS and not registered:
        raise _gpu_error(backend)
    if not registered:
        names = backend_names()
        raise ValueError(
            f"unknown backend {backend!r}; expected one of {', '.join(map(repr, names))} or a KernelBackend object"
        )
    try:
        shared = get_backend(backend)
    except (ImportError, OSError) as err:
        raise BackendUnavailableError(f"backend {backend!r} cannot be loaded on this machine: {err}") from err
    try:
        return type(shared)()
    except TypeError:  # a registered class that needs arguments: use the registry's instance
        return shared
