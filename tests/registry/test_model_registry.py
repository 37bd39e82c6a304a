"""Model metadata, verified claims, packages (round trip and tampering), registry entries, model cards."""

from __future__ import annotations

import hashlib
import json
import shutil
from pathlib import Path

import numpy as np
import pytest

from axiom import Conv2d, Dense, Flatten, Sequential, manual_seed, relu, sigmoid
from axiom.cert import check
from axiom.registry import (
    MetadataError,
    PackageError,
    build_registry_entry,
    create_metadata,
    export_model_package,
    export_registry_entry,
    is_semver,
    load_metadata,
    load_model_package,
    model_card,
    save_metadata,
    validate_metadata,
    validate_semver,
    verify_and_claim,
    weights_checksum,
)
from axiom.verify import Box, OutputBounds

BOX = Box(-np.ones(4), np.ones(4))


def small_mlp(seed: int = 0) -> Sequential:
    manual_seed(seed)
    return Sequential(Dense(4, 8, relu), Dense(8, 2))


@pytest.fixture(scope="module")
def claimed() -> tuple[Sequential, dict]:
    """A small MLP whose metadata holds one proven and one falsified claim."""
    model = small_mlp()
    meta = create_metadata(
        model, name="small-mlp", architecture="mlp", version="1.2.3", license="mit", tags=["demo"], description="Tiny."
    )
    verify_and_claim(meta, OutputBounds(upper=100.0, over=BOX), model, claim_id="bounded")
    verify_and_claim(meta, OutputBounds(upper=-100.0, over=BOX), model, claim_id="very-negative")
    return model, meta


@pytest.fixture(scope="module")
def master(claimed, tmp_path_factory) -> tuple[Path, dict]:
    model, meta = claimed
    root = tmp_path_factory.mktemp("pkg") / "small-mlp"
    manifest = export_model_package(model, meta, root)
    return root, manifest


@pytest.fixture
def pkg(master, tmp_path) -> Path:
    """A fresh copy of the package for a test to tamper with."""
    dst = tmp_path / "copy"
    shutil.copytree(master[0], dst)
    return dst


def sha256(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


def rehash(root: Path, *rels: str) -> None:
    """Update the manifest entries of ``rels`` so that only deeper checks can catch the change."""
    man = json.loads((root / "manifest.json").read_text())
    for entry in man["files"]:
        if entry["path"] in rels:
            entry["sha256"] = sha256(root / entry["path"])
            entry["size"] = (root / entry["path"]).stat().st_size
    (root / "manifest.json").write_text(json.dumps(man))


def edit_json(path: Path, fn) -> None:
    data = json.loads(path.read_text())
    fn(data)
    path.write_text(json.dumps(data, indent=2, sort_keys=True) + "\n")


# -- metadata and SemVer ---------------------------------------------------------------------------


@pytest.mark.parametrize("version", ["0.0.0", "1.2.3", "10.20.30", "1.0.0-alpha.1", "1.0.0-rc.1+build.5", "2.0.0+x"])
def test_semver_accepts_valid_versions(version):
    assert is_semver(version)
    assert validate_semver(version) == version


@pytest.mark.parametrize("version", ["1", "1.2", "v1.2.3", "01.2.3", "1.02.3", "1.2.3-", "1.2.3-01", "1.2.3+", "", 1])
def test_semver_rejects_invalid_versions(version):
    assert not is_semver(version)
    with pytest.raises(ValueError, match="Semantic Versioning"):
        validate_semver(version)
    with pytest.raises(MetadataError, match="^version: "):
        create_metadata(small_mlp(), name="m", architecture="mlp", version=version)


def test_metadata_fields_and_weights_checksum(claimed):
    model, meta = claimed
    assert meta["format"] == "axiom-model-metadata.v1"
    assert (meta["name"], meta["version"], meta["architecture"]) == ("small-mlp", "1.2.3", "mlp")
    assert meta["input_shape"] == [4] and meta["output_shape"] == [2] and meta["parameters"] == 4 * 8 + 8 + 8 * 2 + 2
    assert meta["weights"]["sha256"] == weights_checksum(model)
    # the checksum is over the real weights: one changed value changes it
    other = small_mlp()
    other[0].weight.data[0, 0] += 1.0
    assert weights_checksum(other) != meta["weights"]["sha256"]
    with pytest.raises(MetadataError, match="weights.sha256"):
        validate_metadata(meta, other)
    with pytest.raises(MetadataError, match="^name: "):
        create_metadata(model, name="bad name/..", architecture="mlp")


def test_save_load_metadata_round_trip(claimed, tmp_path):
    model, meta = claimed
    path = save_metadata(meta, tmp_path / "meta.json")
    back = load_metadata(path, model)
    assert back["claims"][0]["certificate"] == meta["claims"][0]["certificate"]
    with pytest.raises(MetadataError, match="weights.sha256"):
        load_metadata(path, small_mlp(seed=1))
    path.write_text("{not json")
    with pytest.raises(MetadataError, match="not valid JSON"):
        load_metadata(path)


# -- claims ---------------------------------------------------------------------------------------


def test_claims_are_run_and_certified(claimed):
    model, meta = claimed
    proven, falsified = meta["claims"]
    assert (proven["id"], proven["status"], proven["checkable"]) == ("bounded", "proven", True)
    assert (falsified["id"], falsified["status"], falsified["checkable"]) == ("very-negative", "falsified", True)
    assert proven["certificate"]["verdict"] == "proven"
    assert falsified["certificate"]["witness"]["kind"] == "counterexample"
    assert check(proven["certificate"], model).valid and check(falsified["certificate"], model).valid
    assert proven["property"]["condition"]["upper"] == 100.0


def test_claim_is_never_taken_from_a_string_or_for_another_model(claimed):
    model, meta = claimed
    meta = json.loads(json.dumps(meta))
    with pytest.raises(TypeError, match="must be an axiom.verify Property"):
        verify_and_claim(meta, "output <= 100 for all x in [-1, 1]^4", model)
    with pytest.raises(TypeError):
        verify_and_claim(meta, {"status": "proven"}, model)
    with pytest.raises(MetadataError, match="weights.sha256"):
        verify_and_claim(meta, OutputBounds(upper=100.0, over=BOX), small_mlp(seed=1))
    with pytest.raises(MetadataError, match="already exists"):
        verify_and_claim(meta, OutputBounds(upper=100.0, over=BOX), model, claim_id="bounded")
    assert len(meta["claims"]) == 2


def test_claim_without_checkable_witness_says_so(tmp_path):
    manual_seed(0)
    model = Sequential(Dense(4, 3, sigmoid), Dense(3, 1))  # not a Dense/ReLU chain: no certificate format
    meta = create_metadata(model, name="sig", architecture="mlp", version="0.1.0")
    claim = verify_and_claim(meta, OutputBounds(upper=100.0, over=BOX), model, claim_id="bounded")
    assert claim["status"] == "proven"
    assert claim["checkable"] is False and claim["certificate"] is None
    assert "no independently checkable witness" in claim["note"]
    export_model_package(model, meta, tmp_path / "p")
    assert not (tmp_path / "p" / "certificates").exists()
    loaded = load_model_package(tmp_path / "p")
    assert loaded.checks == {} and loaded.metadata["claims"][0]["checkable"] is False
    card = (tmp_path / "p" / "README.md").read_text()
    assert "| bounded | OutputBounds | proven | ibp | no checkable witness for this model kind" in card


# -- packages -------------------------------------------------------------------------------------


def test_package_round_trip(claimed, master):
    model, meta = claimed
    root, manifest = master
    assert manifest["format"] == "axiom-model-package.v1"
    on_disk = sorted(p.relative_to(root).as_posix() for p in root.rglob("*") if p.is_file())
    listed = sorted(f["path"] for f in manifest["files"])
    assert listed == [
        "README.md",
        "certificates/bounded.json",
        "certificates/very-negative.json",
        "metadata.json",
        "model.onnx",
        "model.safetensors",
    ]
    assert on_disk == sorted([*listed, "manifest.json"])
    for entry in manifest["files"]:
        assert entry["sha256"] == sha256(root / entry["path"])
        assert entry["size"] == (root / entry["path"]).stat().st_size
    assert json.loads((root / "manifest.json").read_text()) == manifest

    loaded = load_model_package(root)
    x = np.random.default_rng(0).uniform(-1, 1, size=(5, 4)).astype(np.float32)
    np.testing.assert_array_equal(loaded.model(x).numpy(), model(x).numpy())
    assert weights_checksum(loaded.model) == meta["weights"]["sha256"]
    assert {cid: r.valid for cid, r in loaded.checks.items()} == {"bounded": True, "very-negative": True}
    assert [(c["id"], c["status"]) for c in loaded.metadata["claims"]] == [
        ("bounded", "proven"),
        ("very-negative", "falsified"),
    ]
    assert loaded.metadata["claims"][0]["certificate"] == meta["claims"][0]["certificate"]
    # with a template model too
    assert load_model_package(root, model=small_mlp(seed=5)).checks.keys() == loaded.checks.keys()


def test_onnx_export_matches_the_model(claimed, master):
    ort = pytest.importorskip("onnxruntime")
    model, _ = claimed
    sess = ort.InferenceSession(str(master[0] / "model.onnx"), providers=["CPUExecutionProvider"])
    x = np.random.default_rng(1).normal(size=(3, 4)).astype(np.float32)
    (y,) = sess.run(None, {sess.get_inputs()[0].name: x})
    np.testing.assert_allclose(y, model(x).numpy(), rtol=1e-5, atol=1e-6)


def test_export_refuses_a_model_that_is_not_the_metadatas(claimed, tmp_path):
    _, meta = claimed
    with pytest.raises(MetadataError, match="weights.sha256"):
        export_model_package(small_mlp(seed=1), meta, tmp_path / "p")
    (tmp_path / "full").mkdir()
    (tmp_path / "full" / "x").write_text("x")
    with pytest.raises(PackageError, match="must be empty"):
        export_model_package(claimed[0], meta, tmp_path / "full")


def test_non_rebuildable_model_needs_a_template(tmp_path):
    def cnn(seed: int) -> Sequential:
        manual_seed(seed)
        conv = Conv2d(1, 2, 3, padding="same", activation=relu)
        return Sequential(conv, Flatten(), Dense(32, 2), input_shape=(None, 4, 4, 1))

    model = cnn(0)
    meta = create_metadata(model, name="cnn", architecture="cnn", version="1.0.0")
    export_model_package(model, meta, tmp_path / "p")
    with pytest.raises(PackageError, match="cannot be rebuilt from metadata; pass model="):
        load_model_package(tmp_path / "p")
    template = cnn(3)
    loaded = load_model_package(tmp_path / "p", model=template)
    x = np.random.default_rng(0).normal(size=(2, 4, 4, 1)).astype(np.float32)
    np.testing.assert_array_equal(loaded.model(x).numpy(), model(x).numpy())
    assert weights_checksum(template) != meta["weights"]["sha256"]  # the template itself is not modified


# -- tampering ------------------------------------------------------------------------------------


def flip_last_byte(path: Path) -> None:
    data = bytearray(path.read_bytes())
    data[-1] ^= 0x01
    path.write_bytes(bytes(data))


def test_weights_byte_flipped_is_refused(pkg):
    flip_last_byte(pkg / "model.safetensors")
    with pytest.raises(PackageError, match=r"^model\.safetensors: SHA-256"):
        load_model_package(pkg)
    rehash(pkg, "model.safetensors")  # the manifest is forged too: the metadata checksum catches it
    with pytest.raises(PackageError, match=r"^model\.safetensors: the weights hash to .* metadata\.json says"):
        load_model_package(pkg)


def test_weights_forged_everywhere_fail_the_certificates(pkg):
    """New weights with a matching manifest and metadata checksum: the certificates no longer check."""
    other = small_mlp(seed=7)
    (pkg / "model.safetensors").unlink()
    other.save(pkg / "model.safetensors")
    new = weights_checksum(other)
    edit_json(pkg / "metadata.json", lambda m: m["weights"].update(sha256=new))
    edit_json(pkg / "manifest.json", lambda m: m.update(weights_sha256=new))
    rehash(pkg, "model.safetensors", "metadata.json")
    with pytest.raises(PackageError, match=r"^certificates/bounded\.json: the certificate does not check"):
        load_model_package(pkg)


def test_metadata_version_edited_is_refused(pkg):
    edit_json(pkg / "metadata.json", lambda m: m.update(version="1.2.4"))
    with pytest.raises(PackageError, match=r"^metadata\.json: SHA-256"):
        load_model_package(pkg)
    rehash(pkg, "metadata.json")
    with pytest.raises(PackageError, match=r"^metadata\.json: version '1.2.4' differs from the manifest"):
        load_model_package(pkg)
    edit_json(pkg / "metadata.json", lambda m: m.update(version="1.2"))
    rehash(pkg, "metadata.json")
    with pytest.raises(PackageError, match=r"^metadata\.json: version: .*Semantic Versioning"):
        load_model_package(pkg)


def test_metadata_claim_status_edited_is_refused(pkg):
    def flip(m):
        m["claims"][1]["status"] = "proven"

    edit_json(pkg / "metadata.json", flip)
    rehash(pkg, "metadata.json")
    with pytest.raises(PackageError, match=r"^metadata\.json: claim 'very-negative' differs from the manifest"):
        load_model_package(pkg)
    edit_json(pkg / "manifest.json", lambda m: m["claims"][1].update(status="proven"))
    with pytest.raises(PackageError, match=r"^certificates/very-negative\.json: verdict 'falsified' but the claim"):
        load_model_package(pkg)


def test_certificate_edited_is_refused(pkg):
    rel = "certificates/very-negative.json"

    def forge(cert):
        cert["verdict"] = "proven"

    edit_json(pkg / rel, forge)
    with pytest.raises(PackageError, match=r"^certificates/very-negative\.json: (size|SHA-256)"):
        load_model_package(pkg)
    rehash(pkg, rel)
    with pytest.raises(PackageError, match=r"^certificates/very-negative\.json: does not match the claim's"):
        load_model_package(pkg)
    # forge the claim's certificate hash too: the independent checker refuses the certificate
    from axiom.registry.claims import certificate_sha256

    new = certificate_sha256(json.loads((pkg / rel).read_text()))
    edit_json(pkg / "metadata.json", lambda m: m["claims"][1].update(certificate_sha256=new))
    rehash(pkg, "metadata.json")
    with pytest.raises(PackageError, match=r"^certificates/very-negative\.json: the certificate does not check"):
        load_model_package(pkg)


@pytest.mark.parametrize(
    ("edit", "message"),
    [
        (lambda m: m["files"][0].update(size=m["files"][0]["size"] + 1), r"^README\.md: size \d+ bytes, the manifest"),
        (lambda m: m["files"][3].update(sha256="0" * 64), r"^metadata\.json: SHA-256 .* differs from the manifest"),
        (lambda m: m["files"].pop(4), r"^model\.onnx: file not listed in the manifest \(extra file\)"),
        (
            lambda m: m["files"].append({"path": "notes.txt", "sha256": "0" * 64, "size": 1}),
            r"^notes\.txt: listed in the manifest but missing",
        ),
        (lambda m: m["files"][0].update(path="../README.md"), r"^manifest\.json: bad or duplicate file path"),
        (lambda m: m.update(format="other"), r"^manifest\.json: format is not"),
        (lambda m: m.update(name="other-model"), r"^metadata\.json: name 'small-mlp' differs from the manifest"),
        (lambda m: m.update(weights_sha256="0" * 64), r"^metadata\.json: weights checksum differs"),
        (lambda m: m["claims"].pop(), r"^metadata\.json: its claims differ from the manifest's claims"),
    ],
)
def test_manifest_edited_is_refused(pkg, edit, message):
    edit_json(pkg / "manifest.json", edit)
    with pytest.raises(PackageError, match=message):
        load_model_package(pkg)


def test_extra_missing_and_unreadable_files_are_refused(pkg):
    (pkg / "certificates" / "extra.json").write_text("{}")
    with pytest.raises(PackageError, match=r"^certificates/extra\.json: file not listed in the manifest"):
        load_model_package(pkg)
    (pkg / "certificates" / "extra.json").unlink()
    (pkg / "certificates" / "bounded.json").unlink()
    with pytest.raises(PackageError, match=r"^certificates/bounded\.json: listed in the manifest but missing"):
        load_model_package(pkg)
    (pkg / "manifest.json").unlink()
    with pytest.raises(PackageError, match=r"^manifest\.json: missing"):
        load_model_package(pkg)
    (pkg / "manifest.json").write_text("[1, 2")
    with pytest.raises(PackageError, match=r"^manifest\.json: not valid JSON"):
        load_model_package(pkg)


# -- registry entry and model card ----------------------------------------------------------------


def test_registry_entry(master, tmp_path):
    root, manifest = master
    entry = build_registry_entry(manifest, channel="stable")
    assert entry["format"] == "axiom-model-registry-entry.v1"
    assert (entry["id"], entry["name"], entry["version"], entry["channel"]) == (
        "small-mlp@1.2.3",
        "small-mlp",
        "1.2.3",
        "stable",
    )
    canonical = json.dumps(manifest, sort_keys=True, separators=(",", ":")).encode()
    assert entry["manifest_sha256"] == hashlib.sha256(canonical).hexdigest()
    assert entry["weights_sha256"] == manifest["weights_sha256"]
    v = entry["verification"]
    assert (v["proven"], v["falsified"], v["certified"]) == (1, 1, 2)
    assert [(c["id"], c["status"]) for c in v["claims"]] == [("bounded", "proven"), ("very-negative", "falsified")]
    assert entry["files"] == manifest["files"]
    path = export_registry_entry(entry, tmp_path / "entry.json")
    assert json.loads(path.read_text()) == entry
    with pytest.raises(ValueError, match="unknown channel 'nightly'"):
        build_registry_entry(manifest, channel="nightly")
    pre = dict(manifest, version="2.0.0-rc.1")
    assert build_registry_entry(pre, channel="beta")["id"] == "small-mlp@2.0.0-rc.1"
    with pytest.raises(ValueError, match="release versions only"):
        build_registry_entry(pre, channel="stable")
    with pytest.raises(ValueError, match="Semantic Versioning"):
        build_registry_entry(dict(manifest, version="2.0"), channel="dev")
    with pytest.raises(ValueError, match="axiom-model-package.v1"):
        build_registry_entry({"format": "something"})


def front_matter(card: str) -> dict:
    lines = card.splitlines()
    assert lines[0] == "---"
    end = lines.index("---", 1)
    out: dict = {}
    key = None
    for line in lines[1:end]:
        if line.startswith("  - "):
            out[key].append(json.loads(line[4:]))
        else:
            key, _, value = line.partition(": ")
            key = key.rstrip(":")
            out[key] = json.loads(value) if value else []
    return out


def test_model_card(claimed, master):
    _, meta = claimed
    card = (master[0] / "README.md").read_text()
    assert card == model_card(meta)
    fm = front_matter(card)
    assert fm["library_name"] == "axiom" and fm["license"] == "mit"
    assert (fm["model_name"], fm["version"], fm["architecture"]) == ("small-mlp", "1.2.3", "mlp")
    assert fm["tags"] == ["axiom", "verified", "demo"]
    assert fm["weights_sha256"] == meta["weights"]["sha256"]
    body = card.split("## Verification", 1)[1]
    assert "| bounded | OutputBounds | proven |" in body
    assert "| very-negative | OutputBounds | falsified |" in body
    assert "certificate `certificates/very-negative.json` (re-checked on load)" in body
    assert "# small-mlp 1.2.3" in card and "Tiny." in card
    bare = create_metadata(small_mlp(), name="bare", architecture="mlp")
    assert "No verification claims" in model_card(bare) and front_matter(model_card(bare))["tags"] == [
        "axiom",
        "unverified",
    ]


def test_forged_layer_spec_is_refused(pkg):
    def forge(m):
        m["layers"][0]["in"] = "four"

    edit_json(pkg / "metadata.json", forge)
    rehash(pkg, "metadata.json")
    with pytest.raises(PackageError, match=r"^metadata\.json: layers cannot be rebuilt"):
        load_model_package(pkg)

    def wider(m):
        m["layers"][0]["in"] = 5

    edit_json(pkg / "metadata.json", wider)
    rehash(pkg, "metadata.json")
    with pytest.raises(PackageError, match=r"^model\.safetensors: does not fit the model"):
        load_model_package(pkg)


def test_cli_package(master, pkg, tmp_path, capsys):
    from axiom.cli import main

    assert main(["package", str(master[0]), "--entry", str(tmp_path / "e.json"), "--channel", "beta"]) == 0
    out = capsys.readouterr().out.splitlines()
    assert out[0] == "OK small-mlp 1.2.3 (mlp): 7 files verified, 2 claims"
    assert out[1].startswith("  bounded: proven - proof re-checked")
    assert out[2].startswith("  very-negative: falsified - counterexample re-checked")
    entry = json.loads((tmp_path / "e.json").read_text())
    assert (entry["id"], entry["channel"]) == ("small-mlp@1.2.3", "beta")
    assert main(["package", str(master[0]), "--json"]) == 0
    assert json.loads(capsys.readouterr().out)["claims"][1]["status"] == "falsified"
    flip_last_byte(pkg / "model.onnx")
    assert main(["package", str(pkg)]) == 1
    assert capsys.readouterr().err.startswith("REFUSED: model.onnx: SHA-256")


def test_package_of_an_imported_onnx_model(claimed, master, tmp_path):
    """A model imported with from_onnx (an OnnxModel wrapper) packages, certifies and rebuilds."""
    from axiom.io import from_onnx

    model, _ = claimed
    imported = from_onnx(master[0] / "model.onnx")
    meta = create_metadata(imported, name="imported", architecture="mlp", version="0.1.0")
    claim = verify_and_claim(meta, OutputBounds(upper=100.0, over=BOX), imported, claim_id="bounded")
    assert claim["status"] == "proven" and claim["checkable"]
    export_model_package(imported, meta, tmp_path / "p")
    loaded = load_model_package(tmp_path / "p")
    from axiom.registry.architecture import layer_spec

    assert loaded.metadata["layers"] == layer_spec(imported) == layer_spec(loaded.model)
    assert loaded.checks["bounded"].valid
    x = np.random.default_rng(2).uniform(-1, 1, size=(3, 4)).astype(np.float32)
    np.testing.assert_allclose(loaded.model(x).numpy(), model(x).numpy(), rtol=1e-6, atol=1e-6)


def test_separate_activation_and_flatten_layers_rebuild(tmp_path):
    from axiom import ReLU
    from axiom.nn import Activation

    manual_seed(0)
    model = Sequential(Flatten(), Dense(4, 3), ReLU(), Dense(3, 2), Activation("leaky_relu", alpha=0.2))
    meta = create_metadata(model, name="flat", architecture="mlp", version="3.0.0")
    export_model_package(model, meta, tmp_path / "p", onnx=False)
    loaded = load_model_package(tmp_path / "p")
    assert [type(layer).__name__ for layer in loaded.model] == ["Flatten", "Dense", "Activation", "Dense", "Activation"]
    assert loaded.model[4].fn.alpha == pytest.approx(0.2)
    x = np.random.default_rng(3).normal(size=(2, 2, 2)).astype(np.float32)
    np.testing.assert_array_equal(loaded.model(x).numpy(), model(x).numpy())
    assert not (tmp_path / "p" / "model.onnx").exists()
