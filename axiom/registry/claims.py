"""Verification claims: run the verifier, record the result and its certificate in the metadata.

:func:`verify_and_claim` never accepts a claim as text: it takes an
:class:`axiom.verify.Property`, runs :func:`axiom.verify.verify` on the model and records what
came out. A ``proven`` or ``falsified`` result of a Dense/ReLU chain gets a certificate
(:func:`axiom.cert.generate_certificate`, self-checked); for any other model the result is
recorded with ``"checkable": false`` and a note saying that no independently checkable witness
exists, so a reader knows the claim rests on the verifier's word.

Example:
    >>> import numpy as np
    >>> from axiom import Dense, Sequential, manual_seed, relu
    >>> from axiom.registry import create_metadata
    >>> from axiom.verify import Box, OutputBounds
    >>> manual_seed(0); m = Sequential(Dense(2, 4, relu), Dense(4, 1))
    >>> meta = create_metadata(m, name="tiny", architecture="mlp", version="1.0.0")
    >>> claim = verify_and_claim(meta, OutputBounds(upper=100.0, over=Box(-np.ones(2), np.ones(2))), m)
    >>> claim["status"], claim["checkable"], claim["certificate"]["verdict"]
    ('proven', True, 'proven')
"""

from __future__ import annotations

import hashlib
from typing import Any

from axiom.registry.metadata import MetadataError, validate_metadata

__all__ = ["certificate_sha256", "verify_and_claim"]

NO_WITNESS_NOTE = (
    "no independently checkable witness for this model kind: the verification result is recorded "
    "as the verifier reported it, without a certificate"
)


def certificate_sha256(cert: dict[str, Any]) -> str:
    """SHA-256 (hex) of a certificate's canonical JSON.

    Example:
        >>> certificate_sha256({"a": 1})[:12]
        '015abd7f5cc5'
    """
    from axiom.cert import canonical_json

    return hashlib.sha256(canonical_json(cert).encode("utf-8")).hexdigest()


def verify_and_claim(
    metadata: dict[str, Any],
    property: Any,  # noqa: A002 - the issue's name
    model: Any,
    *,
    claim_id: str | None = None,
    method: str = "auto",
    timeout: float | None = 60.0,
    certificate_timeout: float = 30.0,
) -> dict[str, Any]:
    """Verify ``property`` of ``model``, append the claim to ``metadata["claims"]`` and return it.

    ``model`` must be the model the metadata describes (its weights checksum is checked first).
    The claim holds the property (its JSON), the status (``proven``/``falsified``/``unknown``),
    the method, the runtime, and for certifiable results the certificate (a dict, checked by
    :func:`axiom.cert.check` before it is recorded). Raises ``TypeError`` when ``property`` is
    not a Property (a string is never a claim), :class:`MetadataError` when the model is not
    the metadata's.

    Example:
        >>> import numpy as np
        >>> from axiom import Dense, Sequential, manual_seed
        >>> from axiom.registry import create_metadata
        >>> from axiom.verify import Box, OutputBounds
        >>> m = Sequential(Dense(1, 1)); m[0].weight.data[:] = 1.0; m[0].bias.data[:] = 0.0
        >>> meta = create_metadata(m, name="id", architecture="linear", version="1.0.0")
        >>> c = verify_and_claim(meta, OutputBounds(upper=0.5, over=Box([-1.0], [1.0])), m, claim_id="below-half")
        >>> c["id"], c["status"], c["certificate"]["witness"]["kind"]
        ('below-half', 'falsified', 'counterexample')
        >>> try:
        ...     verify_and_claim(meta, "the output is below 0.5", m)
        ... except TypeError as err:
        ...     print(str(err)[:59])
        verify_and_claim: property must be an axiom.verify Property
    """
    from axiom.cert import CertificateError, check, generate_certificate
    from axiom.registry.architecture import as_layer
    from axiom.verify import Property, verify

    model = as_layer(model)

    if not isinstance(property, Property):
        raise TypeError(
            f"verify_and_claim: property must be an axiom.verify Property, got {type(property).__name__} "
            "(a claim is only ever recorded from a verification run)"
        )
    validate_metadata(metadata, model)
    existing = {c["id"] for c in metadata["claims"]}
    cid = claim_id or f"claim-{len(existing) + 1}"
    if cid in existing:
        raise MetadataError(f"claims: id {cid!r} already exists")
    result = verify(model, property, method=method, timeout=timeout)
    pr = list(result)[0]
    claim: dict[str, Any] = {
        "id": cid,
        "property": property.to_json(),
        "description": property.describe() if hasattr(property, "describe") else property.name,
        "status": pr.status,
        "method": pr.method,
        "runtime_s": round(float(pr.runtime_s or 0.0), 6),
        "message": pr.message,
        "checkable": False,
        "certificate": None,
        "certificate_sha256": None,
        "note": None,
    }
    if pr.status in ("proven", "falsified"):
        try:
            cert = generate_certificate(result, model, timeout=certificate_timeout)
        except CertificateError as err:
            claim["note"] = f"{NO_WITNESS_NOTE} ({err})"
        else:
            ok = check(cert, model)
            if not ok.valid:  # pragma: no cover - generate_certificate self-checks already
                raise CertificateError(f"verify_and_claim: the new certificate does not check: {ok.reason}")
            claim.update(checkable=True, certificate=cert, certificate_sha256=certificate_sha256(cert))
    else:
        claim["note"] = "the verifier could not decide this property (unknown): nothing is claimed"
    metadata["claims"].append(claim)
    return claim
