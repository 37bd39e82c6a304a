"""python -m axiom.bench train: a quick run end to end (child process, JSON fields, table), and its pieces."""

from __future__ import annotations

import json
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pytest

from axiom.bench import train as bench_train


@pytest.fixture(scope="module")
def quick_train_run(tmp_path_factory: pytest.TempPathFactory) -> dict:
    out = tmp_path_factory.mktemp("bench-train")
    t0 = time.perf_counter()
    proc = subprocess.run(
        [sys.executable, "-m", "axiom.bench", "train", "--quick", "--repeat", "2", "--out", str(out)],
        capture_output=True,
        text=True,
        timeout=180,
        cwd=out,
    )
    seconds = time.perf_counter() - t0
    assert proc.returncode == 0, proc.stdout[-3000:] + proc.stderr[-3000:]
    return {
        "dir": out,
        "stdout": proc.stdout,
        "seconds": seconds,
        "result": json.loads((out / "latest-train.json").read_text()),
    }


def test_quick_run_writes_json_and_prints_the_table(quick_train_run: dict) -> None:
    out = quick_train_run["dir"]
    stamped = [p for p in out.glob("*-train.json") if p.name != "latest-train.json"]
    assert len(stamped) == 1 and json.loads(stamped[0].read_text()) == quick_train_run["result"]
    assert not (out / "latest.json").exists()  # the kernel/model benchmarks' result is left alone
    assert quick_train_run["seconds"] < 90
    lines = quick_train_run["stdout"].splitlines()
    assert lines[0].startswith("training steps/s, 1 thread (forward + cross-entropy + backward + Adam), batch 64")
    assert any(line.startswith("digits_cnn B64") for line in lines)
    assert any(line.startswith("mlp_784 B64") for line in lines)


def test_json_fields(quick_train_run: dict) -> None:
    res = quick_train_run["result"]
    assert res["schema"] == "axiom-bench-train/1" and res["what"] == "train"
    assert res["settings"]["threads"] == [1] and res["settings"]["batch"] == 64 and res["settings"]["repeat"] == 2
    assert {"numpy", "torch", "python"} <= set(res["machine"]["versions"])
    (run,) = res["runs"]
    assert run["threads"] == 1
    assert run["limits"]["env"]["OMP_NUM_THREADS"] == "1" and run["limits"]["torch_threads"] == 1
    assert [c["name"] for c in run["cases"]] == ["digits_cnn B64", "mlp_784 B64"]
    for case in run["cases"]:
        assert case["batch"] == 64 and case["optimizer"] == "Adam(lr=0.001)" and case["loss"] == "cross_entropy"
        assert case["params"] == {"digits_cnn": 38282, "mlp_784": 203530}[case["model"]]
        axiom, torch = case["axiom"], case["torch"]
        assert axiom["backend"] in ("c", "numpy") and isinstance(axiom["fallbacks"], dict)
        for impl in (axiom, torch):
            assert impl["rounds"] >= 2 and impl["steps_per_s"] > 0
            assert impl["steps_per_s"] == pytest.approx(1e3 / impl["median_ms"], rel=1e-3)
        # ratio: median over rounds of torch ms / axiom ms, so near the ratio of the medians
        assert case["ratio"] > 0 and case["ratio"] == pytest.approx(torch["median_ms"] / axiom["median_ms"], rel=1.0)
        check = case["check"]
        assert check["agree"] is True and check["max_diff"] <= bench_train.LOSS_ATOL
        assert len(check["axiom_losses"]) == len(check["torch_losses"]) == bench_train.CHECK_STEPS


@pytest.mark.parametrize("name", bench_train.MODELS)
def test_torch_twin_computes_the_same_function(name: str) -> None:
    torch = pytest.importorskip("torch")
    amodel, tmodel = bench_train.build_models(name, seed=3)
    x, _ = bench_train.batch(name, 5)
    xt = torch.from_numpy(np.ascontiguousarray(x.transpose(0, 3, 1, 2)) if x.ndim == 4 else x)
    with torch.no_grad():
        expected = tmodel(xt).numpy()
    np.testing.assert_allclose(amodel(x).numpy(), expected, rtol=1e-5, atol=1e-5)


def test_unknown_model_and_table_without_torch() -> None:
    with pytest.raises(ValueError, match="unknown model 'resnet'"):
        bench_train.build_models("resnet")
    run = bench_train.run_inprocess(bench_train.settings_for(True, repeat=1), "mlp", log=lambda m: None, torch=False)
    text = bench_train.text_table(run)
    assert "mlp_784 B64" in text and "no torch" in text and "digits_cnn" not in text


def test_bench_main_dispatches_train(tmp_path: Path) -> None:
    proc = subprocess.run(
        [sys.executable, "-m", "axiom.bench", "train", "--help"], capture_output=True, text=True, timeout=60
    )
    assert proc.returncode == 0 and "python -m axiom.bench train" in proc.stdout
    proc = subprocess.run([sys.executable, "-m", "axiom.bench", "--help"], capture_output=True, text=True, timeout=60)
    assert proc.returncode == 0 and "kernels" in proc.stdout  # the other commands still dispatch
