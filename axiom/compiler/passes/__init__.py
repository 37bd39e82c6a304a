"""Graph passes: small rewrites of a model, each with one job, each exact up to float rounding.

Every pass takes a model (and optionally its input shape), rewrites it **in place** and returns
``(model, PassResult)``; ``compile()`` runs them on a private copy. Passes recurse into
``Sequential``, ``Residual`` and ``Parallel``; other composite layers are left alone.

- :func:`inline_sequential`: splice nested Sequentials into their parent chain;
- :func:`remove_dead_layers`: Dropout (eval), identity activations/permutes/reshapes;
- :func:`fold_batchnorm`: eval-mode BatchNorm into the Dense/Conv2d next to it;
- :func:`fold_constants`: adjacent Affine/Dense/Conv2d affine maps into one layer;
- :func:`fuse_activations`: activation layers into the Dense/Conv2d before them;
- :func:`cast_precision`: float32 / float16 / bfloat16 / mixed storage.

Example:
    >>> from axiom import Sequential, Dense, BatchNorm, Dropout
    >>> model = Sequential(Dense(4, 8), Dropout(0.2), BatchNorm(), Dense(8, 8))
    >>> for graph_pass in (remove_dead_layers, fold_batchnorm, fold_constants):
    ...     model, result = graph_pass(model)
    ...     print(result)
    remove_dead_layers: 1 change
    fold_batchnorm: 1 change
    fold_constants: 1 change
    >>> model.layers
    [Dense(4, 8)]
"""

from axiom.compiler.passes.base import PassResult
from axiom.compiler.passes.batchnorm import fold_batchnorm
from axiom.compiler.passes.constants import fold_constants
from axiom.compiler.passes.dead import remove_dead_layers
from axiom.compiler.passes.precision import PRECISIONS, UpcastWeights, cast_precision, precision_dtypes
from axiom.compiler.passes.structure import fuse_activations, inline_sequential

__all__ = [
    "PRECISIONS",
    "PassResult",
    "UpcastWeights",
    "cast_precision",
    "fold_batchnorm",
    "fold_constants",
    "fuse_activations",
    "inline_sequential",
    "precision_dtypes",
    "remove_dead_layers",
]
