"""The compiler: ``compile(model, backend, optimize, precision)`` -> :class:`CompiledModel`.

A compiled model is an optimized private copy of a model (graph passes: fold BatchNorm, fold
constants, drop dead layers, precision casts), run in eval mode with a backend of its own
active. :func:`detect_coprocessor` finds CUDA/OpenCL devices (``AXIOM_BACKEND`` overrides it);
on a GPU backend a compiled model runs device-resident (:class:`DevicePlan`: weights uploaded
once, activations kept on the device). :func:`set_backend` and :func:`use_backend` (from
:mod:`axiom.backends`) choose the backend for uncompiled models.

Example:
    >>> import numpy as np
    >>> from axiom import Sequential, Dense, BatchNorm, relu
    >>> from axiom.compiler import compile
    >>> compiled = compile(Sequential(Dense(4, 8, relu), BatchNorm(), Dense(8, 2)), backend="numpy")
    >>> compiled(np.ones((3, 4), np.float32)).shape, compiled.model.layers    # BatchNorm folded forward
    ((3, 2), [Dense(4, 8, relu), Dense(8, 2)])
"""

from axiom.backends import set_backend, use_backend
from axiom.compiler.backend_choice import BACKENDS, BackendUnavailableError, choose_backend, coprocessor_backend
from axiom.compiler.compiled import OPTIMIZE_LEVELS, CompiledModel, compile, optimize_model
from axiom.compiler.coprocessor import Coprocessor, detect_coprocessor
from axiom.compiler.device_plan import DevicePlan
from axiom.compiler.passes import PRECISIONS, PassResult

__all__ = [
    "BACKENDS",
    "BackendUnavailableError",
    "CompiledModel",
    "Coprocessor",
    "DevicePlan",
    "OPTIMIZE_LEVELS",
    "PRECISIONS",
    "PassResult",
    "choose_backend",
    "compile",
    "coprocessor_backend",
    "detect_coprocessor",
    "optimize_model",
    "set_backend",
    "use_backend",
]
