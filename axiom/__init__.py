"""Axiom: provably correct machine learning.

Define networks whose shapes are checked when they are defined, train them
(:mod:`axiom.train`), run them on NumPy or compiled kernels, and prove properties about them
(:mod:`axiom.verify`).

Example:
    >>> import numpy as np
    >>> from axiom import Sequential, Dense, Softmax, relu, Tensor
    >>> model = Sequential(Dense(784, 128, relu), Dense(128, 10), Softmax())
    >>> model(Tensor(np.zeros((16, 784), np.float32))).shape
    (16, 10)
"""

from axiom import (
    functional,
    train,
    verify,  # noqa: E402 - callable module: verify(model, properties=...)
)
from axiom.autograd import enable_grad, no_grad
from axiom.backends import available_backends, get_backend, set_backend, use_backend
from axiom.compiler import CompiledModel, compile, detect_coprocessor

# ``from axiom import axiom`` gives the @axiom decorator. It is deliberately left out of
# __all__, so ``from axiom import *`` never rebinds the name ``axiom`` to it.
from axiom.dsl import EnsureViolation, Logits, Probabilities, Scores, ensure, prove
from axiom.dsl import axiom as axiom
from axiom.io import from_onnx, from_pretrained, from_pytorch, to_onnx, to_pytorch
from axiom.nn import *  # noqa: F403 - the layer vocabulary is the public API
from axiom.nn import __all__ as _nn_all
from axiom.nn.init import manual_seed
from axiom.shapes import ShapeError
from axiom.tensor import Tensor, TensorType, as_tensor, bfloat16, float16, float32, float64
from axiom.train import evaluate, fit, predict

__version__ = "0.1.0"

__all__ = [
    *_nn_all,
    "CompiledModel",
    "EnsureViolation",
    "Logits",
    "Probabilities",
    "Scores",
    "ShapeError",
    "Tensor",
    "TensorType",
    "as_tensor",
    "available_backends",
    "bfloat16",
    "compile",
    "detect_coprocessor",
    "enable_grad",
    "ensure",
    "evaluate",
    "fit",
    "float16",
    "float32",
    "float64",
    "from_onnx",
    "from_pretrained",
    "from_pytorch",
    "functional",
    "get_backend",
    "manual_seed",
    "no_grad",
    "predict",
    "prove",
    "set_backend",
    "to_onnx",
    "to_pytorch",
    "train",
    "use_backend",
    "verify",
]
