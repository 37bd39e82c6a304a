"""``verify()``: the one entry point, empirical with ``data=``, formal without.

Example:
    >>> import numpy as np
    >>> from axiom import Dense, Sequential, Softmax, relu, Tensor, verify
    >>> from axiom.verify import FiniteOutput, ValidProbabilities
    >>> model = Sequential(Dense(784, 128, relu), Dense(128, 10), Softmax())
    >>> x = Tensor(np.random.default_rng(0).standard_normal((16, 784)).astype(np.float32))
    >>> r = verify(model, properties=[ValidProbabilities(), FiniteOutput()], data=[(x, None)])
    >>> r.passed, r.kind
    (True, 'empirical')
"""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any

from axiom.verify.empirical import verify_empirical
from axiom.verify.formal import verify_formal
from axiom.verify.properties import Property
from axiom.verify.result import VerificationResult
from axiom.verify.telemetry import record_verification


def verify(
    model: Any,
    properties: Property | Iterable[Property] | None = None,
    data: Any = None,
    *,
    method: str = "auto",
    timeout: float | None = None,
    attack: bool = True,
    seed: int = 0,
) -> VerificationResult:
    """Check ``properties`` of ``model``.

    - With ``data`` (a batch, or a list of batches or ``(x, y)`` pairs): **empirical**, only
      those samples are checked (``kind="empirical"``, statuses ``passed``/``failed``).
    - Without: **formal** (``kind="formal"``): ``proven`` for every input of each property's
      input set, ``falsified`` with a counterexample replayed through the model, or
      ``unknown``. ``method`` is ``"auto"`` (attack, IBP, CROWN, alpha-CROWN, then branch-and-bound
      for ReLU networks), one of ``"ibp"``, ``"crown"``, ``"alpha-crown"``, or ``"smt"`` (an
      exact Z3 decision, for small piecewise-linear nets); ``timeout`` in seconds bounds the
      whole call (each property gets an equal share of what is left when it starts, so an
      undecidable one cannot starve the rest); ``attack=False`` skips the search.
    - ``properties=None`` takes the model's ``prove(...)`` statements (``@axiom`` models).

    Every call is recorded in the verification telemetry (``verification_telemetry_report``).

    Example:
        >>> from axiom import Dense, Sequential, manual_seed, verify
        >>> from axiom.verify import Box, OutputBounds
        >>> manual_seed(0); m = Sequential(Dense(2, 1))
        >>> verify(m, OutputBounds(upper=1e3, over=Box(0, 1, shape=(2,)))).status
        'proven'
    """
    if properties is None:  # an @axiom model's prove(...) statements
        obligations = getattr(model, "obligations", None)
        properties = obligations() if callable(obligations) else []
    props = [properties] if isinstance(properties, Property) else list(properties)
    for i, p in enumerate(props):
        if not isinstance(p, Property):
            raise TypeError(f"verify: properties[{i}] must be an axiom.verify Property, got {type(p).__name__}")
    if not props:
        raise ValueError(
            "verify: no properties given (pass properties=..., or declare prove(...) statements in an @axiom model)"
        )
    if data is not None:
        result = verify_empirical(model, props, data)
    else:
        result = verify_formal(model, props, method=method, timeout=timeout, attack=attack, seed=seed)
    record_verification(result)
    return result
