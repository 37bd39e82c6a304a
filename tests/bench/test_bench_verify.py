"""python -m axiom.bench verify: a smoke run end to end on a generated instance set (table, JSON fields)."""

from __future__ import annotations

import csv
import json
import subprocess
import sys
from pathlib import Path

import onnx
import pytest
from onnx import TensorProto, helper

from axiom.bench import verify as bench_verify


def write_set(tmp: Path) -> Path:
    """y = relu(x) on X_0 in [-1, 1]: 'Y_0 >= 0.5' is sat, 'Y_0 >= 2' unsat; a missing net is an error."""
    graph = helper.make_graph(
        [helper.make_node("Relu", ["x"], ["y"])],
        "relu",
        [helper.make_tensor_value_info("x", TensorProto.FLOAT, [1, 1])],
        [helper.make_tensor_value_info("y", TensorProto.FLOAT, [1, 1])],
    )
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 13)])
    model.ir_version = 8
    onnx.save(model, str(tmp / "relu.onnx"))
    for name, threshold in (("sat", 0.5), ("unsat", 2.0)):
        (tmp / f"{name}.vnnlib").write_text(
            "(declare-const X_0 Real)\n(declare-const Y_0 Real)\n"
            f"(assert (>= X_0 -1.0))\n(assert (<= X_0 1.0))\n(assert (>= Y_0 {threshold}))\n"
        )
    path = tmp / "instances.csv"
    with open(path, "w", newline="") as f:
        w = csv.writer(f)
        w.writerow(["benchmark", "onnx", "vnnlib", "timeout_s", "expected"])
        w.writerow(["relu", "relu.onnx", "sat.vnnlib", "20", "sat"])
        w.writerow(["relu", "relu.onnx", "unsat.vnnlib", "20", "unsat"])
        w.writerow(["broken", "missing.onnx", "sat.vnnlib", "20", "unsat"])
    return path


@pytest.fixture(scope="module")
def bench_run(tmp_path_factory: pytest.TempPathFactory) -> dict:
    tmp = tmp_path_factory.mktemp("bench-verify")
    csv_path = write_set(tmp)
    out = tmp / "results"
    cmd = [sys.executable, "-m", "axiom.bench", "verify", "--instances", str(csv_path), "--out", str(out)]
    proc = subprocess.run(
        [*cmd, "--workers", "2", "--timeout-scale", "0.5"], capture_output=True, text=True, timeout=180, cwd=tmp
    )
    assert proc.returncode == 0, proc.stdout[-3000:] + proc.stderr[-3000:]
    return {
        "dir": out,
        "stdout": proc.stdout,
        "stderr": proc.stderr,
        "result": json.loads((out / "latest-verify.json").read_text()),
    }


def test_writes_stamped_and_latest_json(bench_run: dict) -> None:
    stamped = [p for p in bench_run["dir"].glob("*-verify.json") if p.name != "latest-verify.json"]
    assert len(stamped) == 1 and json.loads(stamped[0].read_text()) == bench_run["result"]


def test_table_has_a_row_per_benchmark_and_the_startup_line(bench_run: dict) -> None:
    lines = bench_run["stdout"].splitlines()
    assert lines[0].startswith("verification: fresh `python -m axiom verify` process per instance, timeouts x0.5")
    header = lines[1].split()
    assert header[:5] == ["benchmark", "n", "solved", "correct", "wrong"] and "p90_s" in header
    rows = {line.split()[0]: line.split() for line in lines[2:5]}
    assert rows["relu"][1:5] == ["2", "2", "2", "0"] and rows["broken"][1:5] == ["1", "0", "0", "0"]
    assert rows["TOTAL"][1:5] == ["3", "2", "2", "0"]
    assert any(line.startswith("start-up: python") for line in lines)


def test_json_fields(bench_run: dict) -> None:
    res = bench_run["result"]
    assert res["schema"] == "axiom-bench-verify/1" and res["what"] == "verify"
    assert res["settings"]["workers"] == 2 and res["settings"]["timeout_scale"] == 0.5
    assert {"python", "numpy"} <= set(res["machine"]["versions"])
    st = res["startup"]
    assert 0 < st["python_s"] < st["import_axiom_s"] and st["verify_help_s"] > 0 and st["top_imports"]
    recs = res["instances"]
    assert [(r["benchmark"], Path(r["vnnlib"]).name, r["result"]) for r in recs] == [
        ("relu", "sat.vnnlib", "sat"),
        ("relu", "unsat.vnnlib", "unsat"),
        ("broken", "sat.vnnlib", "error"),
    ]
    for r in recs:
        assert r["timeout_s"] == 10.0 and r["wall_s"] > 0
    # the process time includes interpreter start-up, which the tool's own time does not
    assert all(r["wall_s"] > r["runtime_s"] for r in recs if r["runtime_s"] is not None)
    relu = res["benchmarks"]["relu"]
    assert (relu["n"], relu["solved"], relu["correct"], relu["wrong"], relu["sat"], relu["unsat"]) == (2, 2, 2, 0, 1, 1)
    assert relu["median_s"] <= relu["p90_s"] <= relu["max_s"]
    assert res["total"]["error"] == 1 and res["total"]["n"] == 3


def test_stats_count_wrong_answers() -> None:
    recs = [
        {"result": "sat", "expected": "unsat", "wall_s": 1.0, "runtime_s": 0.5},
        {"result": "unsat", "expected": "unsat", "wall_s": 2.0, "runtime_s": 1.5},
        {"result": "timeout", "expected": "sat", "wall_s": 5.0, "runtime_s": None},
    ]
    s = bench_verify.benchmark_stats(recs)
    assert (s["solved"], s["correct"], s["wrong"], s["timeout"], s["known"]) == (2, 1, 1, 1, 3)
    assert s["median_s"] == 2.0 and s["max_s"] == 5.0 and s["runtime_max_s"] == 5.0


def test_missing_instances_file_is_a_clear_error(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    assert bench_verify.main(["--instances", str(tmp_path / "nope.csv")]) == 1
    assert "no instances CSV at" in capsys.readouterr().err
    assert bench_verify.main(["--instances", str(write_set(tmp_path)), "--workers", "0"]) == 1
    assert "--workers must be >= 1" in capsys.readouterr().err
