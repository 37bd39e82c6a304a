"""Certificates: generation, the independent checker (proofs, counterexamples, tampering), signing, CLI."""

from __future__ import annotations

import copy
import json

import numpy as np
import pytest

from axiom import Dense, Flatten, Sequential, manual_seed, relu, verify
from axiom.cert import (
    CertificateError,
    check,
    generate_certificate,
    generate_keypair,
    load_certificate,
    save_certificate,
)
from axiom.cert.canonical import canonical_json
from axiom.verify import Box, OutputBounds


def _net(seed: int = 0) -> Sequential:
    manual_seed(seed)
    return Sequential(Dense(3, 12, relu), Dense(12, 12, relu), Dense(12, 1))


BOX = Box(-2 * np.ones(3), 2 * np.ones(3))


def _max_out(m: Sequential) -> float:
    x = np.random.default_rng(0).uniform(-2, 2, (20000, 3)).astype(np.float32)
    return float(np.max(m(x).numpy()))


@pytest.fixture(scope="module")
def proven_input():
    m = _net()
    res = verify(m, OutputBounds(upper=_max_out(m) + 0.05, over=BOX), timeout=20)
    assert res.status == "proven"
    return m, generate_certificate(res, m, mode="input")


@pytest.fixture(scope="module")
def proven_relu():
    m = _net()
    res = verify(m, OutputBounds(upper=_max_out(m) + 0.2, over=BOX), timeout=20)
    assert res.status == "proven"
    return m, generate_certificate(res, m, mode="relu", timeout=20)


@pytest.fixture(scope="module")
def falsified():
    m = _net()
    res = verify(m, OutputBounds(upper=_max_out(m) - 0.05, over=BOX), timeout=20)
    assert res.status == "falsified"
    return m, generate_certificate(res, m)


def test_input_split_proof_checks(proven_input):
    m, cert = proven_input
    leaves = cert["witness"]["leaves"]
    assert cert["witness"]["mode"] == "input" and len(leaves) > 4
    assert all(leaf["splits"] == [] for leaf in leaves)
    res = check(cert, m)
    assert res.valid, res.reason
    assert res.details["leaves"] == len(leaves)


def test_relu_split_proof_checks(proven_relu):
    m, cert = proven_relu
    leaves = cert["witness"]["leaves"]
    assert len(leaves) > 4 and all(leaf["splits"] for leaf in leaves)
    assert len({tuple(leaf["lower"]) for leaf in leaves}) == 1  # one box, split on ReLUs
    res = check(cert, m)
    assert res.valid, res.reason


def test_counterexample_checks(falsified):
    m, cert = falsified
    assert cert["witness"]["kind"] == "counterexample"
    res = check(cert, m)
    assert res.valid, res.reason


def test_certificate_is_canonical_and_exact(proven_input):
    m, cert = proven_input
    text = canonical_json(cert)
    assert json.loads(text) == cert and canonical_json(json.loads(text)) == text
    assert "0x" in cert["property"]["clauses"][0]["d"][0]  # floats are stored as hex
    assert set(cert["tools"]) == {"axiom", "numpy", "python"}
    assert cert["property"]["vnnlib"].startswith("(declare-const X_0 Real)")
    assert set(cert["subject"]["digests"]) == {"architecture", "weights", "model"}


def _bumped(m: Sequential) -> Sequential:
    m2 = copy.deepcopy(m)
    m2[1].weight.data[0, 0] = np.nextafter(m2[1].weight.data[0, 0], np.float32(np.inf))
    return m2


@pytest.mark.parametrize("name", ["proven_input", "proven_relu", "falsified"])
def test_changed_weight_fails(name, request):
    m, cert = request.getfixturevalue(name)
    res = check(cert, _bumped(m))
    assert not res.valid and "digest" in res.reason


def test_changed_architecture_fails(proven_input):
    m, cert = proven_input
    manual_seed(0)
    other = Sequential(Flatten(), *list(m))
    assert not check(cert, other).valid


def test_changed_verdict_fails(proven_input, falsified):
    for m, cert in (proven_input, falsified):
        bad = copy.deepcopy(cert)
        bad["verdict"] = "falsified" if cert["verdict"] == "proven" else "proven"
        assert not check(bad, m).valid


def test_changed_threshold_fails(proven_input, falsified):
    for m, cert in (proven_input, falsified):
        # in the property JSON only: the stored clauses no longer match it
        bad = copy.deepcopy(cert)
        up = float.fromhex(bad["property"]["json"]["condition"]["upper"])
        bad["property"]["json"]["condition"]["upper"] = (up - 1.0).hex()
        assert "clauses differ" in check(bad, m).reason
        # consistently in the JSON and the clauses: the witness no longer proves it
        delta = -1.0 if cert["verdict"] == "proven" else 1.0
        bad = copy.deepcopy(cert)
        bad["property"]["json"]["condition"]["upper"] = (up + delta).hex()
        d = float.fromhex(bad["property"]["clauses"][0]["d"][0])
        bad["property"]["clauses"][0]["d"][0] = (d - delta).hex()
        res = check(bad, m)
        assert not res.valid, res.reason


def test_changed_input_box_fails(proven_input):
    m, cert = proven_input
    bad = copy.deepcopy(cert)
    bad["property"]["json"]["input_set"]["upper"][0] = (2.5).hex()  # a larger set than the leaves cover
    bad["property"]["input_boxes"][0]["upper"][0] = (2.5).hex()
    assert "do not cover" in check(bad, m).reason


def test_changed_leaf_fails(proven_input, proven_relu):
    m, cert = proven_input
    bad = copy.deepcopy(cert)
    del bad["witness"]["leaves"][3]  # a hole in the partition
    assert "do not cover" in check(bad, m).reason
    bad = copy.deepcopy(cert)
    leaf = bad["witness"]["leaves"][0]
    leaf["weights"] = [(0.0).hex() for _ in leaf["weights"]]  # multipliers that prove nothing
    assert "not refuted" in check(bad, m).reason
    bad = copy.deepcopy(cert)  # widen one leaf to the whole box: its bound no longer refutes
    big = max(range(len(cert["witness"]["leaves"])), key=lambda i: 0)
    bad["witness"]["leaves"][big]["lower"] = cert["property"]["input_boxes"][0]["lower"]
    bad["witness"]["leaves"][big]["upper"] = cert["property"]["input_boxes"][0]["upper"]
    assert not check(bad, m).valid
    m, cert = proven_relu
    bad = copy.deepcopy(cert)
    del bad["witness"]["leaves"][0]  # a missing branch of the split tree
    assert "complete binary tree" in check(bad, m).reason
    bad = copy.deepcopy(cert)
    bad["witness"]["leaves"][0]["splits"][0][2] *= -1  # a flipped split sign
    assert not check(bad, m).valid


def test_changed_counterexample_fails(falsified):
    m, cert = falsified
    bad = copy.deepcopy(cert)
    bad["witness"]["input"] = [(0.0).hex()] * 3
    assert not check(bad, m).valid
    bad = copy.deepcopy(cert)
    bad["witness"]["input"][0] = (3.0).hex()  # outside the box
    assert "outside" in check(bad, m).reason
    bad = copy.deepcopy(cert)
    bad["witness"]["output"][0] = (float.fromhex(bad["witness"]["output"][0]) + 1.0).hex()
    assert "stored output" in check(bad, m).reason


def test_unknown_and_unsupported_raise():
    m = _net()
    res = verify(m, OutputBounds(upper=_max_out(m) + 0.05, over=BOX), timeout=0.01, attack=False)
    if res.status != "proven":
        with pytest.raises(CertificateError):
            generate_certificate(res, m)
    from axiom import Conv2d

    manual_seed(0)
    conv = Sequential(Conv2d(1, 1, 2), Flatten(), Dense(4, 1), input_shape=(None, 3, 3, 1))
    res = verify(conv, OutputBounds(upper=1e6, over=Box(0, 1, shape=(3, 3, 1))), timeout=5)
    assert res.status == "proven"
    with pytest.raises(CertificateError, match="no checkable witness for this model kind yet"):
        generate_certificate(res, conv)


def test_signature(tmp_path, proven_input):
    m, cert = proven_input
    priv, pub = generate_keypair()
    path = save_certificate(cert, tmp_path / "c.json", key=priv)
    env = json.loads(path.read_text())
    assert env["payloadType"] == "application/vnd.in-toto+json"
    assert load_certificate(path, public_key=pub) == cert
    assert check(path, m).valid
    # a modified payload: the signature fails
    import base64

    stmt = json.loads(base64.b64decode(env["payload"]))
    stmt["predicate"]["verdict"] = "falsified"
    env["payload"] = base64.b64encode(canonical_json(stmt).encode()).decode()
    path.write_text(json.dumps(env))
    with pytest.raises(CertificateError, match="signature"):
        load_certificate(path, public_key=pub)
    _, other = generate_keypair()
    path = save_certificate(cert, tmp_path / "d.json", key=priv)
    with pytest.raises(CertificateError, match="signature"):
        load_certificate(path, public_key=other)
    plain = save_certificate(cert, tmp_path / "e.json")
    assert load_certificate(plain) == cert


def test_cli(tmp_path, falsified, capsys):
    onnx = pytest.importorskip("onnx")
    from onnx import TensorProto, helper, numpy_helper

    from axiom.cli import main
    from axiom.io import from_onnx

    m, _ = falsified
    ws = [(m[i].weight.data.copy(), m[i].bias.data.copy()) for i in range(3)]
    nodes, inits, cur = [], [], "x"
    for i, (w, b) in enumerate(ws):
        inits += [numpy_helper.from_array(w, f"W{i}"), numpy_helper.from_array(b, f"b{i}")]
        nodes.append(helper.make_node("Gemm", [cur, f"W{i}", f"b{i}"], [f"g{i}"]))
        cur = f"g{i}"
        if i < 2:
            nodes.append(helper.make_node("Relu", [cur], [f"r{i}"]))
            cur = f"r{i}"
    graph = helper.make_graph(
        nodes,
        "g",
        [helper.make_tensor_value_info("x", TensorProto.FLOAT, [1, 3])],
        [helper.make_tensor_value_info(cur, TensorProto.FLOAT, [1, 1])],
        inits,
    )
    path = tmp_path / "net.onnx"
    onnx.save(helper.make_model(graph, opset_imports=[helper.make_opsetid("", 13)]), path)
    net = from_onnx(str(path))
    res = verify(net.model, OutputBounds(upper=_max_out(m) - 0.05, over=BOX), timeout=20)
    cert_path = save_certificate(generate_certificate(res, net), tmp_path / "c.json")
    assert main(["check-cert", str(cert_path), "--model", str(path)]) == 0
    assert capsys.readouterr().out.startswith("VALID")
    bad = json.loads(cert_path.read_text())
    bad["verdict"] = "proven"
    cert_path.write_text(json.dumps(bad))
    assert main(["check-cert", str(cert_path), "--model", str(path)]) == 1
    out = capsys.readouterr().out
    assert out.startswith("INVALID") and out.count("\n") == 1


def test_mixed_input_and_relu_leaves_check():
    m = _net()
    res = verify(m, OutputBounds(upper=_max_out(m) + 0.02, over=BOX), timeout=20)
    cert = generate_certificate(res, m, mode="input", branching="lookahead")
    leaves = cert["witness"]["leaves"]
    boxes = {tuple(leaf["lower"] + leaf["upper"]) for leaf in leaves}
    assert any(leaf["splits"] for leaf in leaves) and len(boxes) < len(leaves)  # ReLU-split sub-boxes
    assert check(cert, m).valid


def test_classification_linf_flatten_relu_proof():
    from axiom.verify import Classification, LinfBall

    manual_seed(1)
    m = Sequential(Flatten(), Dense(4, 10, relu), Dense(10, 10, relu), Dense(10, 3), input_shape=(None, 1, 2, 2))
    x0 = np.random.default_rng(1).uniform(-1, 1, (1, 2, 2)).astype(np.float32)
    label = int(np.argmax(m(x0[None]).numpy()))
    res = verify(m, Classification(label, over=LinfBall(x0, 0.5)), timeout=10)
    assert res.status == "proven"
    cert = generate_certificate(res, m, mode="relu")
    assert len(cert["property"]["clauses"]) == 2 and len(cert["witness"]["leaves"]) > 4
    assert check(cert, m).valid
    bad = copy.deepcopy(cert)
    bad["property"]["json"]["input_set"]["eps"] = (0.75).hex()  # a larger ball than the stored box
    assert "does not contain" in check(bad, m).reason


def test_claimed_empty_leaf_fails(proven_input):
    m, cert = proven_input
    bad = copy.deepcopy(cert)
    bad["witness"]["leaves"][0]["empty"] = True
    assert "claimed empty" in check(bad, m).reason


def test_checker_is_independent_of_the_verifier():
    import ast
    from pathlib import Path

    import axiom.cert

    root = Path(axiom.cert.__file__).parent
    for name in ("checker.py", "canonical.py", "subject.py"):
        tree = ast.parse((root / name).read_text())
        for node in ast.walk(tree):
            mods = []
            if isinstance(node, ast.Import):
                mods = [a.name for a in node.names]
            elif isinstance(node, ast.ImportFrom):
                mods = [node.module or ""]
            for mod in mods:
                assert mod.split(".")[0] in ("axiom", "numpy", "__future__") or mod in _STDLIB, (name, mod)
                assert not mod.startswith("axiom.") or mod.startswith("axiom.cert."), (name, mod)


_STDLIB = {"base64", "json", "math", "hashlib", "dataclasses", "fractions", "pathlib", "typing"}


def test_counterexample_must_also_hold_in_float32():
    # y = x + 2**-30: exactly 1 + 2**-30 at x = 1, but 1.0 in float32 (the bias is below its resolution)
    m = Sequential(Dense(1, 1))
    m[0].weight.data[:] = 1.0
    m[0].bias.data[:] = 2.0**-30
    res = verify(m, OutputBounds(upper=0.5, over=Box([0.0], [1.0])), timeout=10)
    cert = generate_certificate(res, m)
    assert check(cert, m).valid
    bad = copy.deepcopy(cert)
    u = 1.0 + 2.0**-31  # exact output violates y <= u, the float32 one does not
    bad["property"]["json"]["condition"]["upper"] = u.hex()
    bad["property"]["clauses"][0]["d"] = [(-u).hex()]
    bad["witness"]["input"] = [(1.0).hex()]
    bad["witness"]["output"] = [(1.0).hex()]
    assert "float32 replay is not in the unsafe region" in check(bad, m).reason
