"""Registry entries (``axiom-model-registry-entry.v1``): what a model registry lists for one package.

Example:
    >>> import tempfile
    >>> from axiom import Dense, Sequential, manual_seed
    >>> from axiom.registry import create_metadata, export_model_package
    >>> manual_seed(0); m = Sequential(Dense(2, 1))
    >>> meta = create_metadata(m, name="tiny", architecture="mlp", version="1.2.0")
    >>> man = export_model_package(m, meta, tempfile.mkdtemp())
    >>> e = build_registry_entry(man, channel="stable")
    >>> e["format"], e["id"], e["channel"]
    ('axiom-model-registry-entry.v1', 'tiny@1.2.0', 'stable')
"""

from __future__ import annotations

import hashlib
import json
from pathlib import Path
from typing import Any

from axiom.registry.semver import validate_semver

__all__ = ["CHANNELS", "REGISTRY_ENTRY_FORMAT", "build_registry_entry", "export_registry_entry"]

REGISTRY_ENTRY_FORMAT = "axiom-model-registry-entry.v1"
#: Release channels; ``stable`` takes release versions only (no ``-pre`` part).
CHANNELS = ("stable", "beta", "dev")


def build_registry_entry(manifest: dict[str, Any], channel: str = "stable") -> dict[str, Any]:
    """The registry entry of a package manifest: id, version, channel, manifest SHA-256, claims, files.

    Raises ``ValueError`` for a manifest that is not ``axiom-model-package.v1``, an unknown
    channel, or a pre-release version on the ``stable`` channel.

    Example:
        >>> man = {"format": "axiom-model-package.v1", "name": "m", "version": "2.0.0-rc.1", "architecture": "mlp",
        ...        "weights_sha256": "0" * 64, "claims": [], "files": []}
        >>> build_registry_entry(man, channel="beta")["version"]
        '2.0.0-rc.1'
        >>> try:
        ...     build_registry_entry(man, channel="stable")
        ... except ValueError as err:
        ...     print(err)
        channel 'stable' takes release versions only, got pre-release '2.0.0-rc.1'
    """
    from axiom.registry.package import PACKAGE_FORMAT

    if not isinstance(manifest, dict) or manifest.get("format") != PACKAGE_FORMAT:
        raise ValueError(f"build_registry_entry: expected a {PACKAGE_FORMAT} manifest")
    if channel not in CHANNELS:
        raise ValueError(f"unknown channel {channel!r}; expected one of {', '.join(CHANNELS)}")
    version = validate_semver(manifest.get("version"))
    if channel == "stable" and "-" in version.split("+")[0]:
        raise ValueError(f"channel 'stable' takes release versions only, got pre-release {version!r}")
    canonical = json.dumps(manifest, sort_keys=True, separators=(",", ":")).encode("utf-8")
    claims = manifest.get("claims", [])
    return {
        "format": REGISTRY_ENTRY_FORMAT,
        "id": f"{manifest['name']}@{version}",
        "name": manifest["name"],
        "version": version,
        "channel": channel,
        "architecture": manifest.get("architecture"),
        "weights_sha256": manifest.get("weights_sha256"),
        "manifest_sha256": hashlib.sha256(canonical).hexdigest(),
        "verification": {
            "claims": claims,
            "proven": sum(1 for c in claims if c.get("status") == "proven"),
            "falsified": sum(1 for c in claims if c.get("status") == "falsified"),
            "certified": sum(1 for c in claims if c.get("checkable")),
        },
        "files": [{"path": f["path"], "sha256": f["sha256"], "size": f["size"]} for f in manifest.get("files", [])],
    }


def export_registry_entry(entry: dict[str, Any], path: str | Path) -> Path:
    """Write a registry entry (or a manifest, turned into a ``stable`` entry) as JSON; returns the path.

    Example:
        >>> import os, tempfile
        >>> man = {"format": "axiom-model-package.v1", "name": "m", "version": "1.0.0", "claims": [], "files": []}
        >>> p = export_registry_entry(man, os.path.join(tempfile.mkdtemp(), "entry.json"))
        >>> json.loads(p.read_text())["id"]
        'm@1.0.0'
    """
    if entry.get("format") != REGISTRY_ENTRY_FORMAT:
        entry = build_registry_entry(entry)
    path = Path(path)
    path.write_text(json.dumps(entry, indent=2, sort_keys=True) + "\n", encoding="utf-8")
    return path
