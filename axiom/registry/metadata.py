"""Model metadata: name, SemVer version, architecture, a SHA-256 of the real weights, claims.

The metadata is a plain JSON-ready dict (format ``axiom-model-metadata.v1``). Its
``weights.sha256`` is the SHA-256 over the model's tensors themselves (the certificate
``weights`` digest of :func:`axiom.cert.model_digests`: each tensor's name, dtype, shape and
little-endian bytes), so it does not depend on how the weights file is laid out. Verification
claims are added by :func:`axiom.registry.verify_and_claim` only.

Example:
    >>> from axiom import Dense, Sequential, manual_seed
    >>> manual_seed(0); m = Sequential(Dense(2, 1))
    >>> meta = create_metadata(m, name="tiny", architecture="mlp", version="1.0.0")
    >>> validate_metadata(meta, m)["version"]
    '1.0.0'
"""

from __future__ import annotations

import datetime as _dt
import json
import re
from pathlib import Path
from typing import Any

from axiom.registry.semver import validate_semver

__all__ = [
    "METADATA_FORMAT",
    "MetadataError",
    "create_metadata",
    "load_metadata",
    "save_metadata",
    "validate_metadata",
    "weights_checksum",
]

METADATA_FORMAT = "axiom-model-metadata.v1"
_NAME = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._-]{0,127}$")
_HEX64 = re.compile(r"^[0-9a-f]{64}$")
_STATUSES = ("proven", "falsified", "unknown")


class MetadataError(ValueError):
    """Metadata is malformed or does not match the model (the message names the field).

    Example:
        >>> str(MetadataError("version: not SemVer"))
        'version: not SemVer'
    """


def weights_checksum(model: Any) -> str:
    """SHA-256 (hex) over the model's tensors: name, dtype, shape and bytes of each, in layer order.

    Example:
        >>> from axiom import Dense, Sequential, manual_seed
        >>> manual_seed(0); a = weights_checksum(Sequential(Dense(2, 1)))
        >>> manual_seed(1); a == weights_checksum(Sequential(Dense(2, 1)))
        False
    """
    from axiom.cert.subject import model_digests

    return model_digests(model)["weights"]


def _input_shape(model: Any) -> list[int] | None:
    from axiom.verify.concrete import model_input_shape

    try:
        return [int(s) for s in model_input_shape(model)]
    except Exception:  # noqa: BLE001 - a model without a known input shape simply has none recorded
        return None


def create_metadata(
    model: Any,
    *,
    name: str,
    architecture: str,
    version: str = "0.1.0",
    description: str = "",
    license: str = "unknown",  # noqa: A002 - the Hugging Face field name
    tags: list[str] | None = None,
    authors: list[str] | None = None,
    extra: dict[str, Any] | None = None,
) -> dict[str, Any]:
    """Metadata for ``model``: identity, SemVer ``version``, layer spec, input/output shape, weights SHA-256.

    Raises :class:`MetadataError` for a bad name or version.

    Example:
        >>> from axiom import Dense, Sequential, manual_seed, relu
        >>> manual_seed(0); m = Sequential(Dense(4, 8, relu), Dense(8, 2))
        >>> meta = create_metadata(m, name="demo-mlp", architecture="mlp", version="0.2.0")
        >>> meta["format"], meta["input_shape"], meta["output_shape"], len(meta["weights"]["sha256"])
        ('axiom-model-metadata.v1', [4], [2], 64)
    """
    import axiom
    from axiom.cert.subject import model_digests
    from axiom.registry.architecture import as_layer, layer_spec

    model = as_layer(model)
    digests = model_digests(model)
    in_shape = _input_shape(model)
    out_shape = None
    if in_shape is not None:
        from axiom.verify.concrete import model_output_size

        try:
            out_shape = [int(model_output_size(model))]
        except Exception:  # noqa: BLE001
            out_shape = None
    state = model.state_dict() if hasattr(model, "state_dict") else {}
    meta: dict[str, Any] = {
        "format": METADATA_FORMAT,
        "name": name,
        "version": version,
        "architecture": architecture,
        "description": description,
        "license": license,
        "tags": list(tags or []),
        "authors": list(authors or []),
        "created": _dt.datetime.now(_dt.UTC).strftime("%Y-%m-%dT%H:%M:%SZ"),
        "framework": {"name": "axiom", "version": axiom.__version__},
        "layers": layer_spec(model),
        "input_shape": in_shape,
        "output_shape": out_shape,
        "dtype": str(next(iter(state.values())).dtype) if state else "float32",
        "parameters": int(sum(int(v.size) for v in state.values())),
        "weights": {"sha256": digests["weights"], "algorithm": "axiom-tensors-sha256"},
        "digests": digests,
        "claims": [],
        "extra": dict(extra or {}),
    }
    return validate_metadata(meta)


def validate_metadata(metadata: Any, model: Any = None) -> dict[str, Any]:
    """Check ``metadata``'s fields (format, name, SemVer version, SHA-256s, claims); with ``model``,
    check that its weights checksum is the model's. Returns the metadata; raises :class:`MetadataError`.

    Example:
        >>> from axiom import Dense, Sequential, manual_seed
        >>> manual_seed(0); m = Sequential(Dense(2, 1))
        >>> meta = create_metadata(m, name="tiny", architecture="mlp", version="1.0.0")
        >>> meta["version"] = "1.0"
        >>> try:
        ...     validate_metadata(meta)
        ... except MetadataError as err:
        ...     print(str(err)[:40])
        version: version '1.0' is not Semantic V
    """
    if not isinstance(metadata, dict):
        raise MetadataError(f"metadata must be a dict, got {type(metadata).__name__}")
    if metadata.get("format") != METADATA_FORMAT:
        raise MetadataError(f"format: expected {METADATA_FORMAT!r}, got {metadata.get('format')!r}")
    for key in ("name", "version", "architecture", "weights", "claims", "layers"):
        if key not in metadata:
            raise MetadataError(f"{key}: missing")
    if not isinstance(metadata["name"], str) or not _NAME.match(metadata["name"]):
        raise MetadataError(f"name: {metadata['name']!r} is not a model name (letters, digits, '.', '_', '-')")
    try:
        validate_semver(metadata["version"])
    except ValueError as err:
        raise MetadataError(f"version: {err}") from None
    if not isinstance(metadata["architecture"], str) or not metadata["architecture"]:
        raise MetadataError("architecture: must be a non-empty string")
    w = metadata["weights"]
    if not isinstance(w, dict) or not isinstance(w.get("sha256"), str) or not _HEX64.match(w["sha256"]):
        raise MetadataError("weights.sha256: must be a lowercase hex SHA-256")
    if not isinstance(metadata["layers"], list) or not all(isinstance(r, dict) for r in metadata["layers"]):
        raise MetadataError("layers: must be a list of layer records")
    if not isinstance(metadata["claims"], list):
        raise MetadataError("claims: must be a list")
    ids = set()
    for i, claim in enumerate(metadata["claims"]):
        if not isinstance(claim, dict) or not isinstance(claim.get("id"), str):
            raise MetadataError(f"claims[{i}]: must be a dict with an id")
        if claim["id"] in ids:
            raise MetadataError(f"claims[{i}]: duplicate id {claim['id']!r}")
        ids.add(claim["id"])
        if claim.get("status") not in _STATUSES:
            raise MetadataError(f"claims[{i}].status: {claim.get('status')!r} is not one of {_STATUSES}")
        if claim.get("status") in ("proven", "falsified") and claim.get("checkable") and not claim.get("certificate"):
            raise MetadataError(f"claims[{i}]: a checkable {claim['status']} claim needs its certificate")
    if model is not None:
        actual = weights_checksum(model)
        if actual != w["sha256"]:
            raise MetadataError(
                f"weights.sha256: the model's weights hash to {actual[:16]}..., the metadata says {w['sha256'][:16]}..."
            )
    return metadata


def save_metadata(metadata: dict[str, Any], path: str | Path) -> Path:
    """Validate and write ``metadata`` as indented, key-sorted JSON; returns the path.

    Example:
        >>> import os, tempfile
        >>> from axiom import Dense, Sequential, manual_seed
        >>> manual_seed(0); meta = create_metadata(Sequential(Dense(2, 1)), name="t", architecture="mlp")
        >>> load_metadata(save_metadata(meta, os.path.join(tempfile.mkdtemp(), "m.json")))["name"]
        't'
    """
    validate_metadata(metadata)
    path = Path(path)
    path.write_text(json.dumps(metadata, indent=2, sort_keys=True) + "\n", encoding="utf-8")
    return path


def load_metadata(path: str | Path, model: Any = None) -> dict[str, Any]:
    """Read and validate metadata JSON (with ``model``: check its weights checksum too).

    Example:
        >>> import os, tempfile
        >>> p = os.path.join(tempfile.mkdtemp(), "m.json")
        >>> _ = open(p, "w").write('{"format": "other"}')
        >>> try:
        ...     load_metadata(p)
        ... except MetadataError as err:
        ...     print(err)
        format: expected 'axiom-model-metadata.v1', got 'other'
    """
    try:
        data = json.loads(Path(path).read_text(encoding="utf-8"))
    except json.JSONDecodeError as err:
        raise MetadataError(f"{Path(path).name}: not valid JSON ({err})") from None
    return validate_metadata(data, model)
