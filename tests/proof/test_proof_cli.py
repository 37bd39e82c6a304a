"""``axiom export-proof NET.onnx SPEC.vnnlib --format ... -o FILE``."""

from __future__ import annotations

import shutil

import numpy as np
import pytest
from onnx import TensorProto, helper, numpy_helper, save

from axiom.cli import main
from axiom.proof import check_coq, run_solver
from axiom.verify import Box, OutputBounds, write_vnnlib

W1 = np.array([[1, -1], [1, 1]], np.float32)
B1 = np.full(2, 0.1, np.float32)
W2 = np.array([[1], [-0.3]], np.float32)
B2 = np.zeros(1, np.float32)


def onnx_net(path) -> None:
    """The two-layer ReLU net of test_proof_export (max 2.07 on [-1, 1]^2) as ONNX MatMul/Add/Relu."""
    inits = [numpy_helper.from_array(a, n) for a, n in ((W1, "W1"), (B1, "B1"), (W2, "W2"), (B2, "B2"))]
    nodes = [
        helper.make_node("MatMul", ["x", "W1"], ["h0"]),
        helper.make_node("Add", ["h0", "B1"], ["h1"]),
        helper.make_node("Relu", ["h1"], ["h2"]),
        helper.make_node("MatMul", ["h2", "W2"], ["h3"]),
        helper.make_node("Add", ["h3", "B2"], ["y"]),
    ]
    graph = helper.make_graph(
        nodes,
        "tiny",
        [helper.make_tensor_value_info("x", TensorProto.FLOAT, [1, 2])],
        [helper.make_tensor_value_info("y", TensorProto.FLOAT, [1, 1])],
        inits,
    )
    save(helper.make_model(graph, opset_imports=[helper.make_opsetid("", 13)]), str(path))


@pytest.fixture
def files(tmp_path):
    net = tmp_path / "net.onnx"
    onnx_net(net)
    specs = {}
    for ub in (2.09, 2.0):
        spec = tmp_path / f"ub{ub}.vnnlib"
        spec.write_text(write_vnnlib(OutputBounds(upper=ub, over=Box(-1, 1, shape=(2,))), n_outputs=1))
        specs[ub] = spec
    return net, specs


def test_export_smtlib_and_solve(files, tmp_path, capsys):
    net, specs = files
    out = tmp_path / "p.smt2"
    assert main(["export-proof", str(net), str(specs[2.09]), "--format", "smtlib", "-o", str(out), "--solve"]) == 0
    assert capsys.readouterr().out.strip() == "unsat"
    assert run_solver(out, "z3", timeout=30).answer == "unsat"
    assert main(["export-proof", str(net), str(specs[2.0]), "-o", str(out), "--solve"]) == 10
    assert capsys.readouterr().out.strip() == "sat"


@pytest.mark.parametrize("fmt", ["coq", "lean", "isabelle"])
def test_export_other_formats(files, tmp_path, fmt):
    net, specs = files
    out = tmp_path / f"AxiomProof.{fmt}"
    assert main(["export-proof", str(net), str(specs[2.09]), "--format", fmt, "-o", str(out)]) == 0
    text = out.read_text(encoding="utf-8")
    assert "property_holds" in text
    if fmt == "coq" and shutil.which("coqc"):
        assert check_coq(out).ok


def test_export_errors(files, tmp_path, capsys):
    net, specs = files
    out = tmp_path / "x.v"
    assert main(["export-proof", str(net), str(specs[2.0]), "--format", "coq", "-o", str(out)]) == 1
    assert "cannot prove" in capsys.readouterr().err and not out.exists()
    assert main(["export-proof", str(tmp_path / "missing.onnx"), str(specs[2.0]), "-o", str(out)]) == 1
