"""Verification telemetry: a JSON record per ``verify`` call and a summary over the process.

Formats: ``axiom-verification-telemetry.v1`` (one run) and
``axiom-verification-telemetry-summary.v1`` (all runs since the last reset). Records hold
verdicts, methods and timings, never model weights or input data.

Example:
    >>> from axiom.verify import reset_verification_telemetry, verification_telemetry_report
    >>> reset_verification_telemetry()
    >>> verification_telemetry_report()["runs"]
    0
"""

from __future__ import annotations

import threading
import time
from collections import Counter
from typing import Any

from axiom.verify.result import VerificationResult

TELEMETRY_FORMAT = "axiom-verification-telemetry.v1"
SUMMARY_FORMAT = "axiom-verification-telemetry-summary.v1"

_lock = threading.Lock()
_records: list[dict[str, Any]] = []


def verification_result_telemetry(result: VerificationResult) -> dict[str, Any]:
    """The telemetry record (``axiom-verification-telemetry.v1``) of one result.

    Example:
        >>> from axiom.verify.result import PropertyResult, VerificationResult
        >>> result = VerificationResult("empirical", [PropertyResult("p", "empirical", "passed")])
        >>> rec = verification_result_telemetry(result)
        >>> rec["format"], rec["status"], rec["properties"][0]["status"]
        ('axiom-verification-telemetry.v1', 'passed', 'passed')
    """
    from axiom import __version__

    return {
        "format": TELEMETRY_FORMAT,
        "axiom_version": __version__,
        "timestamp": time.time(),
        "kind": result.kind,
        "status": result.status,
        "passed": result.passed,
        "runtime_s": float(result.runtime_s),
        "n_properties": len(result.results),
        "warnings": list(result.warnings),
        "properties": [
            {
                "name": r.name,
                "status": r.status,
                "method": r.method,
                "runtime_s": float(r.runtime_s),
                "timed_out": bool(r.timed_out),
                "checked": int(r.checked),
                "n_violations": len(r.violations),
                "has_counterexample": r.counterexample is not None,
            }
            for r in result.results
        ],
    }


def record_verification(result: VerificationResult) -> dict[str, Any]:
    """Append the result's record to the process log (``verify`` calls this) and return it.

    Example:
        >>> from axiom.verify.result import PropertyResult, VerificationResult
        >>> rec = record_verification(VerificationResult("empirical", [PropertyResult("p", "empirical", "passed")]))
        >>> rec["status"], verification_telemetry_records()[-1]["status"]
        ('passed', 'passed')
    """
    rec = verification_result_telemetry(result)
    with _lock:
        _records.append(rec)
    return rec


def verification_telemetry_records() -> list[dict[str, Any]]:
    """A copy of every record since the last reset.

    Example:
        >>> isinstance(verification_telemetry_records(), list)
        True
    """
    with _lock:
        return [dict(r) for r in _records]


def verification_telemetry_report() -> dict[str, Any]:
    """Summary (``axiom-verification-telemetry-summary.v1``) of every run since the last reset.

    Example:
        >>> verification_telemetry_report()["format"]
        'axiom-verification-telemetry-summary.v1'
    """
    with _lock:
        records = list(_records)
    by_kind = Counter(r["kind"] for r in records)
    by_status = Counter(r["status"] for r in records)
    props = [p for r in records for p in r["properties"]]
    total = sum(r["runtime_s"] for r in records)
    return {
        "format": SUMMARY_FORMAT,
        "runs": len(records),
        "by_kind": dict(by_kind),
        "by_status": dict(by_status),
        "properties": {
            "total": len(props),
            "by_status": dict(Counter(p["status"] for p in props)),
            "by_method": dict(Counter(p["method"] or "none" for p in props)),
            "timed_out": sum(p["timed_out"] for p in props),
        },
        "total_runtime_s": total,
        "mean_runtime_s": total / len(records) if records else 0.0,
    }


def reset_verification_telemetry() -> None:
    """Forget every record.

    Example:
        >>> reset_verification_telemetry(); verification_telemetry_records()
        []
    """
    with _lock:
        _records.clear()
