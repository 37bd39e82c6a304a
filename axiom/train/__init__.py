"""Training: losses, optimizers, schedulers, the fit loop, data helpers, certified and mixed-precision training.

Every public name of the ``axiom.train`` modules is re-exported here: :func:`fit`,
:func:`evaluate`, :func:`predict` (:mod:`axiom.train.fit`), the callbacks, metrics and data
helpers, the losses, optimizers and schedulers, certified (IBP) and mixed-precision training.
See ``docs/training.md``.

Example:
    >>> import numpy as np
    >>> from axiom import Dense, Sequential
    >>> from axiom.train import fit, make_moons, train_test_split
    >>> x, y = make_moons(200, noise=0.1, seed=0)
    >>> x_train, x_test, y_train, y_test = train_test_split(x, y, seed=0)
    >>> from axiom.nn.init import manual_seed; manual_seed(0)
    >>> model = Sequential(Dense(2, 32, "relu"), Dense(32, 2))
    >>> history = fit(model, x_train, y_train, epochs=20, validation_data=(x_test, y_test), seed=0, verbose=False)
    >>> history.history["val_accuracy"][-1] > 0.8
    True
"""

from __future__ import annotations

import importlib
import importlib.util

from axiom.train.callbacks import (
    Callback,
    CSVLogger,
    EarlyStopping,
    History,
    JSONLogger,
    LambdaCallback,
    ModelCheckpoint,
)
from axiom.train.data import DataLoader, load_digits, make_blobs, make_moons, one_hot, train_test_split
from axiom.train.examples import digits_cnn, digits_mlp, mlp_784
from axiom.train.fit import NonFiniteLossError, evaluate, fit, predict
from axiom.train.metrics import METRICS, accuracy, get_metric, mean_absolute_error, mean_squared_error
from axiom.train.progress import Progress

__all__ = [
    "CSVLogger",
    "Callback",
    "DataLoader",
    "EarlyStopping",
    "History",
    "JSONLogger",
    "LambdaCallback",
    "METRICS",
    "ModelCheckpoint",
    "NonFiniteLossError",
    "Progress",
    "accuracy",
    "digits_cnn",
    "digits_mlp",
    "evaluate",
    "fit",
    "get_metric",
    "load_digits",
    "make_blobs",
    "make_moons",
    "mean_absolute_error",
    "mean_squared_error",
    "mlp_784",
    "one_hot",
    "predict",
    "train_test_split",
]


def _reexport() -> None:
    """Add each module's ``__all__`` here: losses, optimizers, schedulers, certified and mixed precision.

    Only the modules present are imported, so the package works while they are being written.
    """
    for name in ("losses", "optim", "schedulers", "certified", "mixed_precision"):
        if importlib.util.find_spec(f"axiom.train.{name}") is None:
            continue
        module = importlib.import_module(f"axiom.train.{name}")
        for public in getattr(module, "__all__", ()):
            globals()[public] = getattr(module, public)
            if public not in __all__:
                __all__.append(public)


_reexport()
del _reexport
