"""Verification results: one :class:`PropertyResult` per property, gathered in a :class:`VerificationResult`.

Empirical results (``kind="empirical"``) say ``passed``/``failed`` for the given data only.
Formal results (``kind="formal"``) say ``proven`` (for every input in the set), ``falsified``
(with a counterexample replayed through the concrete model) or ``unknown`` - never a guess.

Example:
    >>> from axiom.verify.result import PropertyResult, VerificationResult
    >>> r = VerificationResult("formal", [PropertyResult("p", "formal", "unknown", message="budget exhausted")])
    >>> r.status, r.passed
    ('unknown', False)
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from typing import Any

import numpy as np

EMPIRICAL_STATUSES = ("passed", "failed")
FORMAL_STATUSES = ("proven", "falsified", "unknown")


def _jsonable(x: Any) -> Any:
    if isinstance(x, np.ndarray):
        return x.tolist()
    if isinstance(x, np.generic):
        return x.item()
    if isinstance(x, dict):
        return {k: _jsonable(v) for k, v in x.items()}
    if isinstance(x, list | tuple):
        return [_jsonable(v) for v in x]
    return x


@dataclass
class Violation:
    """One failing sample of an empirical check: its position in the data, input and output.

    Example:
        >>> Violation(2, np.array([0.0, 1.0]), np.array([np.nan])).to_dict()
        {'index': 2, 'input': [0.0, 1.0], 'output': [nan]}
    """

    index: int
    input: np.ndarray
    output: np.ndarray

    def to_dict(self) -> dict[str, Any]:
        return {"index": self.index, "input": self.input.tolist(), "output": self.output.tolist()}


@dataclass
class PropertyResult:
    """The verdict on one property.

    ``counterexample``/``output`` are set for a falsified formal property (one example, the
    model's input and output in float32; ``output64`` the float64 replay); ``violations`` list
    every failing sample of an empirical check; ``bounds`` holds what the bound computation
    established (per clause margins, output bounds).

    Example:
        >>> r = PropertyResult("p", "formal", "proven", method="ibp")
        >>> r.passed, r.name, r.to_dict()["status"]
        (True, 'p', 'proven')
    """

    property: Any
    kind: str
    status: str
    method: str | None = None
    counterexample: np.ndarray | None = None
    output: np.ndarray | None = None
    output64: np.ndarray | None = None
    violations: list[Violation] = field(default_factory=list)
    bounds: dict[str, Any] = field(default_factory=dict)
    runtime_s: float = 0.0
    timed_out: bool = False
    checked: int = 0
    message: str = ""

    def __post_init__(self) -> None:
        allowed = EMPIRICAL_STATUSES if self.kind == "empirical" else FORMAL_STATUSES
        if self.status not in allowed:
            raise ValueError(f"status {self.status!r} is not one of {allowed} for a {self.kind} result")

    @property
    def passed(self) -> bool:
        return self.status in ("passed", "proven")

    @property
    def name(self) -> str:
        return getattr(self.property, "name", str(self.property))

    def to_dict(self) -> dict[str, Any]:
        prop = self.property.to_json() if hasattr(self.property, "to_json") else str(self.property)
        return _jsonable(
            {
                "property": prop,
                "kind": self.kind,
                "status": self.status,
                "method": self.method,
                "counterexample": self.counterexample,
                "output": self.output,
                "output_float64": self.output64,
                "violations": [v.to_dict() for v in self.violations],
                "bounds": self.bounds,
                "runtime_s": self.runtime_s,
                "timed_out": self.timed_out,
                "checked": self.checked,
                "message": self.message,
            }
        )

    def __repr__(self) -> str:
        extra = f", method={self.method}" if self.method else ""
        return f"PropertyResult({self.name}: {self.status}{extra}, {self.runtime_s * 1e3:.1f} ms)"


@dataclass
class VerificationResult:
    """All property results of one ``verify`` call.

    ``status`` is the overall verdict: empirical ``passed`` only if every property passed;
    formal ``proven`` only if every property is proven, ``falsified`` if any is, else
    ``unknown``.

    Example:
        >>> rs = [PropertyResult("a", "formal", "proven"), PropertyResult("b", "formal", "falsified")]
        >>> r = VerificationResult("formal", rs)
        >>> r.status, r.passed, len(r)
        ('falsified', False, 2)
    """

    kind: str
    results: list[PropertyResult]
    runtime_s: float = 0.0
    warnings: list[str] = field(default_factory=list)

    @property
    def status(self) -> str:
        statuses = [r.status for r in self.results]
        if self.kind == "empirical":
            return "passed" if all(s == "passed" for s in statuses) else "failed"
        if statuses and all(s == "proven" for s in statuses):
            return "proven"
        if "falsified" in statuses:
            return "falsified"
        return "unknown"

    @property
    def passed(self) -> bool:
        return self.status in ("passed", "proven")

    @property
    def timed_out(self) -> bool:
        return any(r.timed_out for r in self.results)

    @property
    def counterexample(self) -> np.ndarray | None:
        """The first counterexample found, if any."""
        for r in self.results:
            if r.counterexample is not None:
                return r.counterexample
        return None

    def __iter__(self) -> Any:
        return iter(self.results)

    def __getitem__(self, i: int) -> PropertyResult:
        return self.results[i]

    def __len__(self) -> int:
        return len(self.results)

    def summary(self) -> str:
        """A few human-readable lines."""
        lines = [f"{self.kind} verification: {self.status} ({self.runtime_s:.3f} s)"]
        for r in self.results:
            lines.append(
                f"  {r.status:9s} {r.name}"
                + (f" [{r.method}]" if r.method else "")
                + (f" - {r.message}" if r.message else "")
            )
        lines += [f"  warning: {w}" for w in self.warnings]
        return "\n".join(lines)

    def to_dict(self) -> dict[str, Any]:
        return {
            "kind": self.kind,
            "status": self.status,
            "passed": self.passed,
            "runtime_s": self.runtime_s,
            "warnings": list(self.warnings),
            "results": [r.to_dict() for r in self.results],
        }

    def to_json(self, **kwargs: Any) -> str:
        return json.dumps(self.to_dict(), **kwargs)
