"""Verification certificates: canonical JSON proofs and counterexamples, an independent checker, signing.

- :func:`generate_certificate` — a certificate for a formal ``proven``/``falsified`` result.
- :func:`save_certificate` / :func:`load_certificate` — canonical JSON, or a signed DSSE envelope.
- :func:`check` — re-derives every claim with exact / outward-rounded arithmetic, without the verifier.
- :func:`generate_keypair` — an Ed25519 key pair (needs ``cryptography``: ``pip install axiom[cert]``).

Example:
    >>> import numpy as np
    >>> from axiom import Dense, Sequential, manual_seed, relu, verify
    >>> from axiom.verify import Box, OutputBounds
    >>> manual_seed(0); m = Sequential(Dense(2, 8, relu), Dense(8, 1))
    >>> res = verify(m, OutputBounds(upper=100.0, over=Box(-np.ones(2), np.ones(2))))
    >>> check(generate_certificate(res, m), m).valid
    True
"""

from axiom.cert.canonical import canonical_json
from axiom.cert.certificate import (
    NUMERIC_SEMANTICS,
    CertificateError,
    generate_certificate,
    load_certificate,
    save_certificate,
)
from axiom.cert.checker import CheckResult, check
from axiom.cert.signing import generate_keypair
from axiom.cert.subject import describe_model, model_digests

__all__ = [
    "NUMERIC_SEMANTICS",
    "CertificateError",
    "CheckResult",
    "canonical_json",
    "check",
    "describe_model",
    "generate_certificate",
    "generate_keypair",
    "load_certificate",
    "model_digests",
    "save_certificate",
]
