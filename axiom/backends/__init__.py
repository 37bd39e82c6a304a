"""Kernel backends: the contract, the NumPy reference, native (C, Rust, Zig) and selection.

Backends work on NumPy arrays only; they know no Tensor and no layer.
"""

from axiom.backends import openmp  # noqa: F401 - first: sets OMP_WAIT_POLICY before any OpenMP runtime starts
from axiom.backends.base import ACTIVATIONS, OPS, FallbackWarning, KernelBackend, KernelError, PartialBackend
from axiom.backends.reference import ReferenceBackend
from axiom.backends.registry import available_backends, get_backend, register_backend, set_backend, use_backend

__all__ = [
    "ACTIVATIONS",
    "OPS",
    "FallbackWarning",
    "KernelBackend",
    "KernelError",
    "PartialBackend",
    "ReferenceBackend",
    "available_backends",
    "get_backend",
    "register_backend",
    "set_backend",
    "use_backend",
]
