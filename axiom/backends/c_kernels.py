"""The C backend's NN kernels (norms, pooling, softmax, activations, attention, RoPE).

``CKernelsMixin`` adds one method per op in :data:`C_NN_OPS` to :class:`~axiom.backends.native.CBackend`;
each calls the Cython wrapper ``axiom._core._nn`` (GIL released, OpenMP) after checking its
arguments, and has the reference's signature and semantics.

Example:
    >>> from axiom.backends.c_kernels import C_NN_OPS
    >>> isinstance(C_NN_OPS, tuple)
    True
"""

from __future__ import annotations

#: Contract ops the C backend runs natively besides matmul (filled in as kernels land).
C_NN_OPS: tuple[str, ...] = ()


class CKernelsMixin:
    """Native NN ops for the C backend (see the module docstring).

    Example:
        >>> from axiom.backends.native import CBackend
        >>> issubclass(CBackend, CKernelsMixin)
        True
    """
