"""Verification: properties, empirical checks, sound bounds, formal verification, VNN-LIB.

Example:
    >>> import numpy as np
    >>> from axiom.verify import Box, OutputBounds
    >>> OutputBounds(upper=1.0, over=Box(0, 1, shape=(2,))).describe()
    'OutputBounds: output within bounds for all x in Box'
"""

import sys as _sys
import types as _types

from axiom.verify.api import verify
from axiom.verify.properties import (
    ArgmaxIs,
    AvoidsRegion,
    Classification,
    Clause,
    Finite,
    FiniteOutput,
    LinearConstraints,
    LinearProperty,
    LocalRobustness,
    NoInf,
    NoNaN,
    OutputBounds,
    OutputCondition,
    ProbabilitiesValid,
    Property,
    ValidProbabilities,
    VnnlibProperty,
    WithinBounds,
    classification_preset,
    regression_preset,
)
from axiom.verify.result import PropertyResult, VerificationResult, Violation
from axiom.verify.sets import Box, BoxUnion, InputSet, L2Ball, LinfBall
from axiom.verify.telemetry import (
    reset_verification_telemetry,
    verification_result_telemetry,
    verification_telemetry_records,
    verification_telemetry_report,
)
from axiom.verify.vnnlib import VnnlibError, read_vnnlib, write_vnnlib

__all__ = [
    "ArgmaxIs",
    "AvoidsRegion",
    "Box",
    "BoxUnion",
    "Classification",
    "Clause",
    "Finite",
    "FiniteOutput",
    "InputSet",
    "L2Ball",
    "LinearConstraints",
    "LinearProperty",
    "LinfBall",
    "LocalRobustness",
    "NoInf",
    "NoNaN",
    "OutputBounds",
    "OutputCondition",
    "ProbabilitiesValid",
    "Property",
    "PropertyResult",
    "VerificationResult",
    "Violation",
    "ValidProbabilities",
    "VnnlibError",
    "VnnlibProperty",
    "WithinBounds",
    "classification_preset",
    "regression_preset",
    "reset_verification_telemetry",
    "verification_result_telemetry",
    "verification_telemetry_records",
    "verification_telemetry_report",
    "read_vnnlib",
    "verify",
    "write_vnnlib",
]


class _CallableModule(_types.ModuleType):
    """``axiom.verify`` is both this package and the ``verify()`` function (``from axiom import verify``)."""

    def __call__(self, *args: object, **kwargs: object) -> VerificationResult:
        return verify(*args, **kwargs)  # type: ignore[arg-type]


_sys.modules[__name__].__class__ = _CallableModule
