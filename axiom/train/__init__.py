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

from axiom.train.callbacks import (
    Callback,
    CSVLogger,
    EarlyStopping,
    History,
    JSONLogger,
    LambdaCallback,
    ModelCheckpoint,
)
from axiom.train.certified import (
    EpsilonSchedule,
    IBPTraining,
    IBPUnsupportedError,
    interval_bounds,
    verified_accuracy,
    worst_case_logits,
    worst_case_margins,
)
from axiom.train.data import (
    DataLoader,
    load_digits,
    make_blobs,
    make_moons,
    one_hot,
    train_test_split,
)
from axiom.train.examples import (
    digits_cnn,
    digits_mlp,
    mlp_784,
)
from axiom.train.fit import (
    NonFiniteLossError,
    evaluate,
    fit,
    predict,
)
from axiom.train.losses import (
    BCELoss,
    BCEWithLogitsLoss,
    CrossEntropyLoss,
    HuberLoss,
    KLDivLoss,
    L1Loss,
    Loss,
    MSELoss,
    NLLLoss,
    binary_cross_entropy,
    binary_cross_entropy_with_logits,
    cross_entropy,
    get_loss,
    huber_loss,
    kl_div,
    l1_loss,
    mse_loss,
    nll_loss,
)
from axiom.train.metrics import (
    METRICS,
    accuracy,
    get_metric,
    mean_absolute_error,
    mean_squared_error,
)
from axiom.train.mixed_precision import (
    GradScaler,
    MixedPrecision,
)
from axiom.train.optim import (
    SGD,
    Adam,
    AdamW,
    Optimizer,
    RMSprop,
    clip_grad_norm_,
    clip_grad_value_,
)
from axiom.train.progress import (
    Progress,
)
from axiom.train.schedulers import (
    CosineAnnealingLR,
    ExponentialLR,
    LambdaLR,
    LinearLR,
    LinearWarmup,
    LRScheduler,
    MultiStepLR,
    SequentialLR,
    StepLR,
    WarmupCosine,
)

__all__ = [
    "Adam",
    "AdamW",
    "BCELoss",
    "BCEWithLogitsLoss",
    "CSVLogger",
    "Callback",
    "CosineAnnealingLR",
    "CrossEntropyLoss",
    "DataLoader",
    "EarlyStopping",
    "EpsilonSchedule",
    "ExponentialLR",
    "GradScaler",
    "History",
    "HuberLoss",
    "IBPTraining",
    "IBPUnsupportedError",
    "JSONLogger",
    "KLDivLoss",
    "L1Loss",
    "LRScheduler",
    "LambdaCallback",
    "LambdaLR",
    "LinearLR",
    "LinearWarmup",
    "Loss",
    "METRICS",
    "MSELoss",
    "MixedPrecision",
    "ModelCheckpoint",
    "MultiStepLR",
    "NLLLoss",
    "NonFiniteLossError",
    "Optimizer",
    "Progress",
    "RMSprop",
    "SGD",
    "SequentialLR",
    "StepLR",
    "WarmupCosine",
    "accuracy",
    "binary_cross_entropy",
    "binary_cross_entropy_with_logits",
    "clip_grad_norm_",
    "clip_grad_value_",
    "cross_entropy",
    "digits_cnn",
    "digits_mlp",
    "evaluate",
    "fit",
    "get_loss",
    "get_metric",
    "huber_loss",
    "interval_bounds",
    "kl_div",
    "l1_loss",
    "load_digits",
    "make_blobs",
    "make_moons",
    "mean_absolute_error",
    "mean_squared_error",
    "mlp_784",
    "mse_loss",
    "nll_loss",
    "one_hot",
    "predict",
    "train_test_split",
    "verified_accuracy",
    "worst_case_logits",
    "worst_case_margins",
]
