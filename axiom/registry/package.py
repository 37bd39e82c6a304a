"""Model packages: a folder with weights, metadata, certificates, an ONNX export, a model card and a manifest.

Layout (every file but the manifest is listed in ``manifest.json`` with its SHA-256 and size)::

    model.safetensors        the weights
    metadata.json            axiom-model-metadata.v1 (claims point to their certificate files)
    certificates/<id>.json   one canonical-JSON certificate per checkable claim
    model.onnx               the ONNX export (axiom.io.to_onnx)
    README.md                the model card
    manifest.json            axiom-model-package.v1

:func:`load_model_package` refuses a package whose files do not match the manifest (changed,
extra or missing), whose weights do not hash to the metadata's checksum, or whose certificates
do not re-check against the loaded model; the :class:`PackageError` names the file.

Example:
    >>> import tempfile
    >>> from axiom import Dense, Sequential, manual_seed, relu
    >>> from axiom.registry import create_metadata
    >>> manual_seed(0); m = Sequential(Dense(2, 4, relu), Dense(4, 1))
    >>> meta = create_metadata(m, name="tiny", architecture="mlp", version="1.0.0")
    >>> manifest = export_model_package(m, meta, tempfile.mkdtemp())
    >>> sorted(f["path"] for f in manifest["files"])
    ['README.md', 'metadata.json', 'model.onnx', 'model.safetensors']
"""

from __future__ import annotations

import copy
import hashlib
import json
import re
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from axiom.registry.claims import certificate_sha256
from axiom.registry.metadata import MetadataError, validate_metadata, weights_checksum

__all__ = ["PACKAGE_FORMAT", "ModelPackage", "PackageError", "export_model_package", "load_model_package"]

PACKAGE_FORMAT = "axiom-model-package.v1"
MANIFEST = "manifest.json"
_ID = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._-]{0,127}$")


class PackageError(ValueError):
    """A package is malformed or tampered with (the message names the file).

    Example:
        >>> str(PackageError("model.safetensors: SHA-256 mismatch"))
        'model.safetensors: SHA-256 mismatch'
    """


@dataclass
class ModelPackage:
    """A loaded, verified package: the ``model``, its ``metadata`` (certificates inlined), the
    ``manifest``, the certificate ``checks`` (claim id -> CheckResult) and the ``path``.

    Example:
        >>> ModelPackage(model=None, metadata={"name": "m"}, manifest={}, path=None).metadata["name"]
        'm'
    """

    model: Any
    metadata: dict[str, Any]
    manifest: dict[str, Any]
    path: Path | None
    checks: dict[str, Any] = field(default_factory=dict)


def _sha256_file(path: Path) -> str:
    h = hashlib.sha256()
    with open(path, "rb") as f:
        for chunk in iter(lambda: f.read(1 << 20), b""):
            h.update(chunk)
    return h.hexdigest()


def export_model_package(
    model: Any, metadata: dict[str, Any], directory: str | Path, *, onnx: bool = True
) -> dict[str, Any]:
    """Write the package of ``model`` + ``metadata`` into ``directory`` (created; must hold no other
    files); returns the manifest.

    The metadata must describe this model (weights checksum) and every checkable claim's
    certificate must re-check against it (:func:`axiom.cert.check`) before anything is written.

    Example:
        >>> import json, os, tempfile
        >>> from axiom import Dense, Sequential, manual_seed
        >>> from axiom.registry import create_metadata
        >>> manual_seed(0); m = Sequential(Dense(3, 2))
        >>> d = tempfile.mkdtemp()
        >>> man = export_model_package(m, create_metadata(m, name="lin", architecture="linear"), d)
        >>> man["format"], json.load(open(os.path.join(d, "manifest.json")))["name"]
        ('axiom-model-package.v1', 'lin')
    """
    from axiom.cert import check, save_certificate
    from axiom.nn.state import save_safetensors
    from axiom.registry.architecture import as_layer
    from axiom.registry.model_card import model_card

    model = as_layer(model)
    validate_metadata(metadata, model)
    out = Path(directory)
    out.mkdir(parents=True, exist_ok=True)
    if any(out.iterdir()):
        raise PackageError(f"{out}: the package folder must be empty")
    stored = copy.deepcopy(metadata)
    certs: dict[str, dict[str, Any]] = {}
    for claim in stored["claims"]:
        if not _ID.match(claim["id"]):
            raise PackageError(f"metadata.json: claim id {claim['id']!r} is not a safe file name")
        cert = claim.get("certificate")
        if cert is None:
            continue
        res = check(cert, model)
        if not res.valid:
            raise PackageError(f"certificates/{claim['id']}.json: does not check against the model: {res.reason}")
        if claim.get("certificate_sha256") != certificate_sha256(cert):
            raise PackageError(f"certificates/{claim['id']}.json: the claim's certificate_sha256 does not match")
        certs[claim["id"]] = cert
        claim["certificate"] = f"certificates/{claim['id']}.json"
    save_safetensors(model.state_dict(), out / "model.safetensors", metadata={"format": "axiom"})
    stored["weights"] = dict(stored["weights"], file="model.safetensors")
    if certs:
        (out / "certificates").mkdir()
        for cid, cert in certs.items():
            save_certificate(cert, out / "certificates" / f"{cid}.json")
    if onnx:
        from axiom.io import to_onnx

        shape = metadata.get("input_shape")
        to_onnx(model, out / "model.onnx", input_shape=None if shape is None else (None, *shape))
    (out / "metadata.json").write_text(json.dumps(stored, indent=2, sort_keys=True) + "\n", encoding="utf-8")
    (out / "README.md").write_text(model_card(metadata), encoding="utf-8")
    files = []
    for p in sorted(q for q in out.rglob("*") if q.is_file()):
        rel = p.relative_to(out).as_posix()
        files.append({"path": rel, "sha256": _sha256_file(p), "size": p.stat().st_size})
    manifest = {
        "format": PACKAGE_FORMAT,
        "name": metadata["name"],
        "version": metadata["version"],
        "architecture": metadata["architecture"],
        "weights_sha256": metadata["weights"]["sha256"],
        "claims": [
            {
                "id": c["id"],
                "property": c["property"].get("name"),
                "status": c["status"],
                "checkable": bool(c.get("checkable")),
                "certificate_sha256": c.get("certificate_sha256"),
            }
            for c in metadata["claims"]
        ],
        "files": files,
    }
    (out / MANIFEST).write_text(json.dumps(manifest, indent=2, sort_keys=True) + "\n", encoding="utf-8")
    return manifest


def _read_manifest(root: Path) -> dict[str, Any]:
    try:
        manifest = json.loads((root / MANIFEST).read_text(encoding="utf-8"))
    except FileNotFoundError:
        raise PackageError(f"{MANIFEST}: missing (not a model package: {root})") from None
    except (json.JSONDecodeError, UnicodeDecodeError) as err:
        raise PackageError(f"{MANIFEST}: not valid JSON ({err})") from None
    if not isinstance(manifest, dict) or manifest.get("format") != PACKAGE_FORMAT:
        raise PackageError(f"{MANIFEST}: format is not {PACKAGE_FORMAT!r}")
    files = manifest.get("files")
    if not isinstance(files, list) or not files:
        raise PackageError(f"{MANIFEST}: 'files' must be a non-empty list")
    seen = set()
    for f in files:
        if not isinstance(f, dict) or not {"path", "sha256", "size"} <= set(f):
            raise PackageError(f"{MANIFEST}: each file entry needs path, sha256 and size")
        p = f["path"]
        if not isinstance(p, str) or p.startswith("/") or ".." in p.split("/") or p == MANIFEST or p in seen:
            raise PackageError(f"{MANIFEST}: bad or duplicate file path {p!r}")
        seen.add(p)
    return manifest


def _check_files(root: Path, manifest: dict[str, Any]) -> None:
    listed = {f["path"]: f for f in manifest["files"]}
    present = {p.relative_to(root).as_posix() for p in root.rglob("*") if p.is_file() or p.is_symlink()}
    present.discard(MANIFEST)
    for extra in sorted(present - set(listed)):
        raise PackageError(f"{extra}: file not listed in the manifest (extra file)")
    for missing in sorted(set(listed) - present):
        raise PackageError(f"{missing}: listed in the manifest but missing")
    for rel, entry in sorted(listed.items()):
        p = root / rel
        if p.is_symlink():
            raise PackageError(f"{rel}: symbolic links are not allowed in a package")
        size = p.stat().st_size
        if size != entry["size"]:
            raise PackageError(f"{rel}: size {size} bytes, the manifest says {entry['size']}")
        digest = _sha256_file(p)
        if digest != entry["sha256"]:
            raise PackageError(f"{rel}: SHA-256 {digest[:16]}... differs from the manifest's {entry['sha256'][:16]}...")


def load_model_package(path: str | Path, model: Any = None) -> ModelPackage:
    """Load and verify a package: every file hash and size, the weights checksum, every certificate.

    The model is rebuilt from the metadata's layer spec (Dense / activation / Flatten chains),
    or the weights are loaded into a copy of ``model`` (a template of the same architecture).
    Raises :class:`PackageError` naming the file for any mismatch, extra or missing file.

    Example:
        >>> import tempfile
        >>> import numpy as np
        >>> from axiom import Dense, Sequential, manual_seed, relu
        >>> from axiom.registry import create_metadata
        >>> manual_seed(0); m = Sequential(Dense(2, 4, relu), Dense(4, 1))
        >>> d = tempfile.mkdtemp()
        >>> _ = export_model_package(m, create_metadata(m, name="tiny", architecture="mlp"), d)
        >>> pkg = load_model_package(d)
        >>> x = np.ones((1, 2), np.float32)
        >>> bool(np.array_equal(pkg.model(x).numpy(), m(x).numpy()))
        True
    """
    from axiom.cert import check, load_certificate
    from axiom.nn.state import SafetensorsError, load_safetensors
    from axiom.registry.architecture import as_layer, build_from_spec, is_rebuildable

    root = Path(path)
    if not root.is_dir():
        raise PackageError(f"{root}: not a package folder")
    manifest = _read_manifest(root)
    _check_files(root, manifest)
    try:
        metadata = validate_metadata(json.loads((root / "metadata.json").read_text(encoding="utf-8")))
    except FileNotFoundError:
        raise PackageError("metadata.json: missing") from None
    except (json.JSONDecodeError, MetadataError) as err:
        raise PackageError(f"metadata.json: {err}") from None
    for key in ("name", "version", "architecture"):
        if manifest.get(key) != metadata[key]:
            got, want = metadata[key], manifest.get(key)
            raise PackageError(f"metadata.json: {key} {got!r} differs from the manifest ({want!r})")
    if manifest.get("weights_sha256") != metadata["weights"]["sha256"]:
        raise PackageError("metadata.json: weights checksum differs from the manifest's")
    wfile = metadata["weights"].get("file", "model.safetensors")
    try:
        state = load_safetensors(root / wfile)
    except (SafetensorsError, OSError) as err:
        raise PackageError(f"{wfile}: {err}") from None
    if model is not None:
        net = copy.deepcopy(as_layer(model))
    elif is_rebuildable(metadata["layers"]):
        try:
            net = build_from_spec(metadata["layers"])
        except (KeyError, TypeError, ValueError) as err:
            raise PackageError(f"metadata.json: layers cannot be rebuilt: {err}") from None
    else:
        raise PackageError("metadata.json: these layers cannot be rebuilt from metadata; pass model= (a template)")
    try:
        net.load_state_dict(state)
    except (KeyError, ValueError) as err:
        raise PackageError(f"{wfile}: does not fit the model: {err}") from None
    actual = weights_checksum(net)
    if actual != metadata["weights"]["sha256"]:
        raise PackageError(
            f"{wfile}: the weights hash to {actual[:16]}..., metadata.json says {metadata['weights']['sha256'][:16]}..."
        )
    claims_manifest = {c.get("id"): c for c in manifest.get("claims", []) if isinstance(c, dict)}
    if sorted(claims_manifest) != sorted(c["id"] for c in metadata["claims"]):
        raise PackageError("metadata.json: its claims differ from the manifest's claims")
    checks = {}
    for claim in metadata["claims"]:
        ref = claim.get("certificate")
        if claim.get("checkable") != claims_manifest.get(claim["id"], {}).get("checkable") or claim.get(
            "status"
        ) != claims_manifest.get(claim["id"], {}).get("status"):
            raise PackageError(f"metadata.json: claim {claim['id']!r} differs from the manifest's")
        if ref is None:
            continue
        if ref != f"certificates/{claim['id']}.json":
            raise PackageError(f"metadata.json: claim {claim['id']!r} points to an unexpected file {ref!r}")
        try:
            cert = load_certificate(root / ref)
        except (ValueError, OSError) as err:
            raise PackageError(f"{ref}: not a certificate ({err})") from None
        if certificate_sha256(cert) != claim.get("certificate_sha256"):
            raise PackageError(f"{ref}: does not match the claim's certificate_sha256 in metadata.json")
        res = check(cert, net)
        if not res.valid:
            raise PackageError(f"{ref}: the certificate does not check against the loaded model: {res.reason}")
        if cert.get("verdict") != claim["status"]:
            raise PackageError(f"{ref}: verdict {cert.get('verdict')!r} but the claim says {claim['status']!r}")
        claim["certificate"] = cert
        checks[claim["id"]] = res
    return ModelPackage(model=net, metadata=metadata, manifest=manifest, path=root, checks=checks)
