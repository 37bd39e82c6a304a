"""Verification: properties, empirical checks, sound bounds, formal verification, VNN-LIB.

Example:
    >>> import numpy as np
    >>> from axiom.verify import Box, OutputBounds
    >>> OutputBounds(upper=1.0, over=Box(0, 1, shape=(2,))).describe()
    'OutputBounds: output within bounds for all x in Box'
"""

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
from axiom.verify.sets import Box, BoxUnion, InputSet, L2Ball, LinfBall

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
    "ValidProbabilities",
    "VnnlibProperty",
    "WithinBounds",
    "classification_preset",
    "regression_preset",
]
