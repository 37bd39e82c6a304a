"""Model metadata, verified claims, model packages, registry entries and model cards.

- :func:`create_metadata` / :func:`save_metadata` / :func:`load_metadata` / :func:`validate_metadata`
  (SemVer version, SHA-256 over the real weights).
- :func:`verify_and_claim` runs the verifier and records the result and its certificate.
- :func:`export_model_package` / :func:`load_model_package`: weights, metadata, certificates,
  ONNX export, model card and a SHA-256 manifest; loading refuses any tampering.
- :func:`build_registry_entry` / :func:`export_registry_entry`; :func:`model_card`.

Example:
    >>> import tempfile
    >>> import numpy as np
    >>> from axiom import Dense, Sequential, manual_seed, relu
    >>> from axiom.verify import Box, OutputBounds
    >>> manual_seed(0); m = Sequential(Dense(2, 4, relu), Dense(4, 1))
    >>> meta = create_metadata(m, name="tiny", architecture="mlp", version="1.0.0")
    >>> _ = verify_and_claim(meta, OutputBounds(upper=100.0, over=Box(-np.ones(2), np.ones(2))), m)
    >>> d = tempfile.mkdtemp(); manifest = export_model_package(m, meta, d)
    >>> pkg = load_model_package(d)
    >>> [(c["id"], c["status"]) for c in pkg.metadata["claims"]], build_registry_entry(manifest)["id"]
    ([('claim-1', 'proven')], 'tiny@1.0.0')
"""

from axiom.registry.claims import verify_and_claim
from axiom.registry.metadata import (
    METADATA_FORMAT,
    MetadataError,
    create_metadata,
    load_metadata,
    save_metadata,
    validate_metadata,
    weights_checksum,
)
from axiom.registry.model_card import model_card
from axiom.registry.package import (
    PACKAGE_FORMAT,
    ModelPackage,
    PackageError,
    export_model_package,
    load_model_package,
)
from axiom.registry.registry_entry import REGISTRY_ENTRY_FORMAT, build_registry_entry, export_registry_entry
from axiom.registry.semver import is_semver, validate_semver

__all__ = [
    "METADATA_FORMAT",
    "PACKAGE_FORMAT",
    "REGISTRY_ENTRY_FORMAT",
    "MetadataError",
    "ModelPackage",
    "PackageError",
    "build_registry_entry",
    "create_metadata",
    "export_model_package",
    "export_registry_entry",
    "is_semver",
    "load_metadata",
    "load_model_package",
    "model_card",
    "save_metadata",
    "validate_metadata",
    "validate_semver",
    "verify_and_claim",
    "weights_checksum",
]
