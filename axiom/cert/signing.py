"""Ed25519 signatures over certificates in a DSSE envelope carrying an in-toto Statement v1.

The envelope is ``{"payload": base64(statement), "payloadType": "application/vnd.in-toto+json",
"signatures": [{"keyid": ..., "sig": base64(signature)}]}``; the signature is over the DSSE
pre-authentication encoding ``PAE(type, body) = "DSSEv1" SP LEN(type) SP type SP LEN(body) SP body``.
The statement's subject is the model (its combined SHA-256, see :mod:`axiom.cert.subject`), its
``predicateType`` :data:`PREDICATE_TYPE` and its predicate the certificate. Needs the optional
``cryptography`` package (``pip install axiom[cert]``), imported only when signing or verifying.

Example:
    >>> pae("t", b"ab")
    b'DSSEv1 1 t 2 ab'
"""

from __future__ import annotations

import base64
import hashlib
import json
from typing import Any

from axiom.cert.canonical import canonical_json

__all__ = ["PAYLOAD_TYPE", "PREDICATE_TYPE", "generate_keypair", "open_envelope", "pae", "sign_envelope"]

PAYLOAD_TYPE = "application/vnd.in-toto+json"
PREDICATE_TYPE = "https://axiom.dev/verification-certificate/v1"
STATEMENT_TYPE = "https://in-toto.io/Statement/v1"


def _crypto() -> Any:
    try:
        from cryptography.hazmat.primitives.asymmetric import ed25519
    except ImportError as err:  # pragma: no cover - depends on the environment
        raise ImportError(
            "signing certificates needs the 'cryptography' package: "
            "pip install 'axiom[cert]' (or pip install cryptography)"
        ) from err
    return ed25519


def pae(payload_type: str, body: bytes) -> bytes:
    """The DSSE v1 pre-authentication encoding of ``body`` (what is signed).

    Example:
        >>> pae("application/vnd.in-toto+json", b"{}")[:12]
        b'DSSEv1 28 ap'
    """
    t = payload_type.encode()
    return b"DSSEv1 %d %s %d %s" % (len(t), t, len(body), body)


def generate_keypair() -> tuple[Any, Any]:
    """A new Ed25519 ``(private_key, public_key)`` pair (``cryptography`` objects).

    Example:
        >>> priv, pub = generate_keypair()
        >>> len(pub.public_bytes_raw())
        32
    """
    ed = _crypto()
    priv = ed.Ed25519PrivateKey.generate()
    return priv, priv.public_key()


def _private(key: Any) -> Any:
    ed = _crypto()
    if isinstance(key, ed.Ed25519PrivateKey):
        return key
    from cryptography.hazmat.primitives.serialization import load_pem_private_key

    loaded = load_pem_private_key(key if isinstance(key, bytes) else str(key).encode(), password=None)
    if not isinstance(loaded, ed.Ed25519PrivateKey):
        raise TypeError("an Ed25519 private key is required")
    return loaded


def _public(key: Any) -> Any:
    ed = _crypto()
    if isinstance(key, ed.Ed25519PublicKey):
        return key
    if isinstance(key, ed.Ed25519PrivateKey):
        return key.public_key()
    from cryptography.hazmat.primitives.serialization import load_pem_public_key

    loaded = load_pem_public_key(key if isinstance(key, bytes) else str(key).encode())
    if not isinstance(loaded, ed.Ed25519PublicKey):
        raise TypeError("an Ed25519 public key is required")
    return loaded


def _keyid(pub: Any) -> str:
    return hashlib.sha256(pub.public_bytes_raw()).hexdigest()


def sign_envelope(cert: dict[str, Any], key: Any) -> dict[str, Any]:
    """A DSSE envelope of an in-toto Statement whose predicate is ``cert``, signed with ``key``.

    Example:
        >>> priv, _ = generate_keypair()
        >>> env = sign_envelope({"subject": {"digests": {"model": "00"}}}, priv)
        >>> env["payloadType"], len(env["signatures"])
        ('application/vnd.in-toto+json', 1)
    """
    priv = _private(key)
    digest = cert.get("subject", {}).get("digests", {}).get("model", "")
    statement = {
        "_type": STATEMENT_TYPE,
        "subject": [{"name": "model", "digest": {"sha256": digest}}],
        "predicateType": PREDICATE_TYPE,
        "predicate": cert,
    }
    body = canonical_json(statement).encode()
    sig = priv.sign(pae(PAYLOAD_TYPE, body))
    return {
        "payload": base64.b64encode(body).decode(),
        "payloadType": PAYLOAD_TYPE,
        "signatures": [{"keyid": _keyid(priv.public_key()), "sig": base64.b64encode(sig).decode()}],
    }


def open_envelope(envelope: dict[str, Any], public_key: Any = None) -> dict[str, Any]:
    """The certificate inside a DSSE envelope; with ``public_key``, only if a signature verifies.

    Raises ``axiom.cert.CertificateError`` when the signature (or the statement) is invalid.

    Example:
        >>> priv, pub = generate_keypair()
        >>> open_envelope(sign_envelope({"verdict": "proven"}, priv), pub)
        {'verdict': 'proven'}
    """
    from axiom.cert.certificate import CertificateError

    if envelope.get("payloadType") != PAYLOAD_TYPE:
        raise CertificateError(f"unexpected DSSE payloadType {envelope.get('payloadType')!r}")
    body = base64.b64decode(envelope["payload"])
    if public_key is not None:
        from cryptography.exceptions import InvalidSignature

        pub = _public(public_key)
        ok = False
        for s in envelope.get("signatures", []):
            try:
                pub.verify(base64.b64decode(s["sig"]), pae(PAYLOAD_TYPE, body))
                ok = True
                break
            except (InvalidSignature, KeyError, ValueError):
                continue
        if not ok:
            raise CertificateError("the certificate's signature does not verify with the given public key")
    statement = json.loads(body)
    if statement.get("_type") != STATEMENT_TYPE or statement.get("predicateType") != PREDICATE_TYPE:
        raise CertificateError("the envelope does not hold an axiom certificate statement")
    cert = statement["predicate"]
    digest = cert.get("subject", {}).get("digests", {}).get("model", "")
    if statement.get("subject") != [{"name": "model", "digest": {"sha256": digest}}]:
        raise CertificateError("the statement's subject does not match the certificate's model digest")
    return cert
