"""Turning ``compile(..., backend=...)`` into a backend object owned by one compiled model.

Example:
    >>> choose_backend("numpy").name
    'numpy'
    >>> choose_backend("auto").name in ("c", "numpy")
    True
"""

from __future__ import annotations

from axiom.backends import KernelBackend, available_backends, get_backend
from axiom.compiler.coprocessor import Coprocessor, detect_coprocessor

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


def _gpu_error(name: str, err: BaseException) -> BackendUnavailableError:
    try:
        found = detect_coprocessor()
    except Exception:  # noqa: BLE001 - a warning turned into an error must not hide the real one
        found = None
    where = (
        "detect_coprocessor() finds no CUDA or OpenCL GPU/accelerator here"
        if found is None
        else f"detect_coprocessor() finds {found}"
    )
    return BackendUnavailableError(
        f"backend {name!r}: no usable {name} device ({err}); {where}. Use a CPU backend: backend='auto' "
        "(the fastest one here), 'c' or 'numpy'. compile() never falls back from a GPU backend silently."
    )


def coprocessor_backend(cop: Coprocessor) -> KernelBackend:
    """A fresh GPU backend on the device ``cop`` describes (from :func:`detect_coprocessor`).

    ``CUDABackend(device=index)`` or ``OpenCLBackend(platform=p, device=d)``; raises
    :class:`BackendUnavailableError` when the device cannot be opened.

    Example:
        >>> cop = Coprocessor("tpu", "Edge", "Google", "accelerator", 0)
        >>> try:
        ...     coprocessor_backend(cop)
        ... except ValueError as err:
        ...     print(err)
        coprocessor tpu device 0: Edge (Google, accelerator): unknown kind 'tpu'; expected 'cuda' or 'opencl'
    """
    if cop.kind not in GPU_BACKENDS:
        raise ValueError(f"coprocessor {cop}: unknown kind {cop.kind!r}; expected 'cuda' or 'opencl'")
    try:
        from axiom.backends.gpu.backend import CUDABackend, OpenCLBackend

        if cop.kind == "cuda":
            return CUDABackend(device=int(cop.index))  # type: ignore[arg-type]
        platform, device = cop.index  # type: ignore[misc]
        return OpenCLBackend(platform=int(platform), device=int(device))
    except (ImportError, OSError, ValueError) as err:
        raise BackendUnavailableError(f"{cop} cannot be opened: {err}") from err


def choose_backend(backend: str | KernelBackend | Coprocessor) -> KernelBackend:
    """A fresh backend instance for ``backend`` (a name, a KernelBackend object or a Coprocessor).

    Names get a new instance of the registered backend's class, so each compiled model has its
    own ``fallbacks`` record and warns once per op on its own; an object is used as given; a
    :class:`~axiom.compiler.coprocessor.Coprocessor` gets a backend on that device
    (:func:`coprocessor_backend`).
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
    if isinstance(backend, Coprocessor):
        return coprocessor_backend(backend)
    if not isinstance(backend, str):
        raise TypeError(f"backend must be a name or a KernelBackend (or a Coprocessor), got {type(backend).__name__}")
    registered = _registered(backend)
    if backend in GPU_BACKENDS and not registered:
        raise _gpu_error(backend, RuntimeError("no GPU backend is registered"))
    if not registered:
        names = backend_names()
        raise ValueError(
            f"unknown backend {backend!r}; expected one of {', '.join(map(repr, names))} or a KernelBackend object"
        )
    try:
        shared = get_backend(backend)
    except (ImportError, OSError) as err:
        if backend in GPU_BACKENDS:
            raise _gpu_error(backend, err) from err
        raise BackendUnavailableError(f"backend {backend!r} cannot be loaded on this machine: {err}") from err
    try:
        return type(shared)()
    except TypeError:  # a registered class that needs arguments: use the registry's instance
        return shared
