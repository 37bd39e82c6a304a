"""python -m axiom.bench: the quick run end to end, its JSON schema, the README updater, the formulas."""

from __future__ import annotations

import json
import math
import os
import shutil
import statistics
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pytest

from axiom.backends import OPS
from axiom.bench import kernels, report
from axiom.bench.cli import parse_threads, settings_for
from axiom.bench.flops import attention_flops, conv2d_flops, gbps, gflops, io_bytes, matmul_flops
from axiom.bench.timing import Timing, interleave, ratio

ROOT = Path(__file__).resolve().parents[2]
REQUIRE_NATIVE = os.environ.get("AXIOM_REQUIRE_NATIVE", "") == "1"
TIMED_STATUSES = {"baseline", "native", "torch", "onnxruntime", "fallbacks"}


@pytest.fixture(scope="module")
def quick_run(tmp_path_factory: pytest.TempPathFactory) -> dict:
    """One `python -m axiom.bench all --quick --threads 1` in a child process, into a temp dir."""
    out = tmp_path_factory.mktemp("bench")
    t0 = time.perf_counter()
    proc = subprocess.run(
        [sys.executable, "-m", "axiom.bench", "all", "--quick", "--threads", "1", "--out", str(out)],
        capture_output=True,
        text=True,
        timeout=180,
        cwd=out,
    )
    seconds = time.perf_counter() - t0
    assert proc.returncode == 0, proc.stdout[-3000:] + proc.stderr[-3000:]
    latest = out / "latest.json"
    return {
        "dir": out,
        "stdout": proc.stdout,
        "stderr": proc.stderr,
        "seconds": seconds,
        "result": json.loads(latest.read_text()),
    }


def test_quick_run_writes_results_and_plot(quick_run: dict) -> None:
    out = quick_run["dir"]
    stamped = [p for p in out.glob("*.json") if p.name != "latest.json"]
    assert len(stamped) == 1
    assert json.loads(stamped[0].read_text()) == quick_run["result"]
    assert (out / "latest.png").stat().st_size > 10_000
    assert quick_run["seconds"] < 90, f"--quick took {quick_run['seconds']:.0f} s"
    # the machine and the peak are printed first, then the tables
    first, second = quick_run["stdout"].splitlines()[:2]
    assert first.startswith("axiom.bench on "), first
    assert second.startswith("fp32 peak (FMA loop, 12 accumulators"), second
    assert "== 1 thread" in quick_run["stdout"]


def test_schema_and_machine(quick_run: dict) -> None:
    res = quick_run["result"]
    assert res["schema"] == "axiom-bench/1"
    assert res["settings"]["quick"] is True and res["settings"]["threads"] == [1]
    machine = res["machine"]
    assert machine["cpus_usable"] >= 1 and isinstance(machine["cpu"]["flags"], list)
    assert {"numpy", "torch", "onnxruntime", "python"} <= set(machine["versions"])
    (run,) = res["runs"]
    assert run["threads"] == 1
    assert run["limits"]["env"]["OMP_NUM_THREADS"] == "1"
    assert run["limits"]["env"]["OMP_WAIT_POLICY"] == "PASSIVE"
    assert run["limits"]["torch_threads"] == 1


def test_peak_is_measured(quick_run: dict) -> None:
    peak = quick_run["result"]["runs"][0]["peak"]
    if not peak["available"] and not REQUIRE_NATIVE:
        pytest.skip(f"FMA loop not built: {peak.get('reason')}")
    assert peak["gflops"] > 0 and peak["gflops_per_thread"] > 0
    assert peak["widths"]["ymm"]["supported"] is True
    # a single core of any x86 CPU with AVX2+FMA does far less than 1 TFLOP/s fp32
    assert peak["gflops_per_thread"] < 1000


def test_every_kernel_on_every_backend_has_numbers_or_a_labelled_fallback(quick_run: dict) -> None:
    run = quick_run["result"]["runs"][0]
    backends = list(run["backends"])
    assert backends[0] == "numpy"
    names = [k["name"] for k in run["kernels"]]
    assert names == [c.name for c in kernels.kernel_cases(quick=True)]
    assert {k["op"] for k in run["kernels"]} == set(OPS)
    for rec in run["kernels"]:
        assert set(backends) | {"torch"} == set(rec["impls"]), rec["name"]
        for name, e in rec["impls"].items():
            where = f"{rec['name']} / {name}"
            assert e["status"] in TIMED_STATUSES | {"fallback", "error"}, where
            if e["status"] == "error":
                assert e["error"], where
                continue
            if e["status"] == "fallback":
                assert e["fallback_reason"] and e["fallback_to"] == "numpy", where
                assert rec["op"] not in run["backends"][name]["native_ops"] or e["timed"] is False, where
            else:
                assert e["timed"] is True, where
            assert isinstance(e["agrees"], bool) and e["max_abs_err"] >= 0, where
            if not e["timed"]:
                assert "median_ms" not in e, where
                continue
            assert 0 < e["best_ms"] <= e["median_ms"], where
            assert e["cpu_ms"] >= 0 and e["samples"] >= 1, where
        assert rec["impls"]["numpy"]["status"] == "baseline" and rec["impls"]["numpy"]["agrees"]


def _check_times_and_ratios(e: dict, impls: dict, bases: tuple[str, ...], where: str) -> None:
    """median/best are those of the samples; ratios are medians of per-round ratios."""
    samples = e["wall_samples_ms"]
    assert len(samples) == e["samples"], where
    assert e["median_ms"] == pytest.approx(statistics.median(samples), rel=1e-4), where
    assert e["best_ms"] == pytest.approx(min(samples), rel=1e-4), where
    for base in bases:
        if not impls.get(base, {}).get("timed"):
            assert f"ratio_{base}" not in e, where
            continue
        other = impls[base]["wall_samples_ms"]
        expected = statistics.median(a / b for a, b in zip(samples, other))
        assert e[f"ratio_{base}"] == pytest.approx(expected, rel=1e-3), f"{where} vs {base}"
        # and it lies within the spread of the two implementations' samples
        slack = 1 + 1e-3  # the JSON rounds to 5 significant digits
        assert min(samples) / max(other) / slack <= e[f"ratio_{base}"] <= max(samples) / min(other) * slack, where


def test_rates_and_ratios_are_consistent_with_times(quick_run: dict) -> None:
    run = quick_run["result"]["runs"][0]
    peak = run["peak"]["gflops"]
    for rec in run["kernels"]:
        for name, e in rec["impls"].items():
            if not e.get("timed"):
                continue
            where = f"{rec['name']} / {name}"
            if rec["flops"] is not None:
                assert math.isclose(e["gflops"], rec["flops"] / (e["median_ms"] * 1e-3) / 1e9, rel_tol=1e-4), where
                if peak:
                    assert math.isclose(e["pct_peak"], 100 * e["gflops"] / peak, rel_tol=1e-4), where
            else:
                assert math.isclose(e["gbps"], rec["bytes"] / (e["median_ms"] * 1e-3) / 1e9, rel_tol=1e-4), where
            _check_times_and_ratios(e, rec["impls"], ("numpy", "torch"), where)
        assert rec["impls"]["numpy"]["ratio_numpy"] == 1.0


def test_models_agree_with_torch_and_are_timed(quick_run: dict) -> None:
    run = quick_run["result"]["runs"][0]
    assert [m["name"] for m in run["models"]] == ["mlp B32", "cnn B32"]
    for rec in run["models"]:
        assert {"torch", "onnxruntime", *run["backends"]} == set(rec["impls"])
        for name, e in rec["impls"].items():
            where = f"{rec['name']} / {name}"
            assert e["status"] in TIMED_STATUSES, where
            assert e["agrees"] is True and e["max_abs_err"] <= 1e-4, where
            assert e["timed"] and 0 < e["best_ms"] <= e["median_ms"], where
            assert math.isclose(e["samples_per_s"], rec["batch"] / (e["median_ms"] * 1e-3), rel_tol=1e-4), where
            if name not in ("torch", "onnxruntime"):
                assert e["mode"] in ("compile", "use_backend"), where
                assert (e["status"] == "fallbacks") == bool(e["fallbacks"]), where
            _check_times_and_ratios(e, rec["impls"], ("numpy", "torch", "onnxruntime"), where)


def test_fallbacks_are_labelled_in_tables(quick_run: dict) -> None:
    run = quick_run["result"]["runs"][0]
    text = report.text_tables(run)
    fallbacks = [(r["name"], n) for r in run["kernels"] for n, e in r["impls"].items() if e["status"] == "fallback"]
    assert text.count("fallback -> numpy") == len(fallbacks)
    md = report.markdown_summary(quick_run["result"])
    shown = [r for r in report._summary_kernels(run["kernels"], False)]
    md_fallbacks = sum(1 for r in shown for n, e in r["impls"].items() if e["status"] == "fallback" and not e["timed"])
    assert md.count("| fallback") == md_fallbacks


# -- README updater --------------------------------------------------------------------------------


def test_readme_has_the_markers_under_performance() -> None:
    text = (ROOT / "README.md").read_text()
    head = text.index("## Performance")
    assert head < text.index(report.README_START) < text.index(report.README_END)


def test_update_readme_on_a_copy(quick_run: dict, tmp_path: Path) -> None:
    copy = tmp_path / "README.md"
    shutil.copy(ROOT / "README.md", copy)
    before = copy.read_text()
    assert report.update_readme(copy, quick_run["result"]) in (True, False)
    after = copy.read_text()
    start, end = after.index(report.README_START), after.index(report.README_END)
    # outside the markers nothing changes
    assert after[:start] == before[: before.index(report.README_START)]
    assert after[end:] == before[before.index(report.README_END) :]
    section = after[start:end]
    assert "Measured" in section and "| kernel |" in section and "| model |" in section
    assert "mlp B32" in section and "matmul 256x256x256" in section
    # idempotent
    assert report.update_readme(copy, quick_run["result"]) is False
    # the readme subcommand regenerates from the JSON
    proc = subprocess.run(
        [sys.executable, "-m", "axiom.bench", "readme", "--from", str(quick_run["dir"] / "latest.json")]
        + ["--update-readme", str(copy)],
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert proc.returncode == 0, proc.stderr
    assert copy.read_text() == after


def test_update_readme_needs_the_markers(tmp_path: Path) -> None:
    p = tmp_path / "README.md"
    p.write_text("# no markers\n")
    with pytest.raises(ValueError, match="bench:start"):
        report.update_readme(p, {"runs": []})


# -- formulas and helpers --------------------------------------------------------------------------


def test_flop_formulas() -> None:
    assert matmul_flops(2048, 2048, 2048) == 2 * 2048**3
    assert matmul_flops(32, 784, 256) == 2 * 32 * 784 * 256
    # anchors: FLOP = 2 N Co H W Ci 9 for a 3x3 conv with padding 1
    assert conv2d_flops(32, 56, 56, 64, 64, 3, 3) == 2 * 32 * 64 * 56 * 56 * 64 * 9
    assert conv2d_flops(1, 8, 8, 16, 16, 3, 3, groups=16) == 2 * 8 * 8 * 16 * 9
    with pytest.raises(ValueError):
        conv2d_flops(1, 1, 1, 3, 4, 1, 1, groups=2)
    # anchors: 4 B H L^2 D, causal credited half
    assert attention_flops(1, 8, 2048, 2048, 64) == 4 * 8 * 2048 * 2048 * 64
    assert attention_flops(1, 8, 2048, 2048, 64, causal=True) == 2 * 8 * 2048 * 2048 * 64
    x = np.zeros((4096, 768), np.float32)
    assert io_bytes(x, x) == 2 * 4096 * 768 * 4
    assert gflops(10**9, 10.0) == pytest.approx(100.0)
    assert gbps(10**9, 1000.0) == pytest.approx(1.0)
    assert gflops(None, 1.0) is None and gbps(10, 0.0) is None


def test_case_work_matches_formulas() -> None:
    by_name = {c.name: c for c in kernels.kernel_cases()}
    assert by_name["matmul 256x784x256"].flops == matmul_flops(256, 784, 256)
    assert by_name["conv2d N8 64->128 32x32"].flops == conv2d_flops(8, 32, 32, 64, 128, 3, 3)
    assert by_name["attention B1 H8 L512 D64 causal"].flops == attention_flops(1, 8, 512, 512, 64, True)
    assert by_name["softmax 4096x768"].nbytes == 2 * 4096 * 768 * 4
    assert by_name["max_pool2d 2x2/2 32x56x56x64"].nbytes == 32 * 56 * 56 * 64 * 4 * 5 // 4
    assert by_name["global_avg_pool 8x32x32x128"].nbytes == (8 * 32 * 32 * 128 + 8 * 128) * 4


def test_full_case_list_covers_the_anchor_shapes() -> None:
    names = {c.name for c in kernels.kernel_cases()}
    for n in (256, 512, 1024, 2048):
        assert f"matmul {n}x{n}x{n}" in names
    assert {"matmul 256x784x256", "matmul 32x784x256"} <= names
    assert {"conv2d N32 3->32 28x28", "conv2d N32 64->64 56x56", "conv2d N8 64->128 32x32"} <= names
    for causal in ("", " causal"):
        assert {f"attention B1 H8 L512 D64{causal}", f"attention B1 H8 L2048 D64{causal}"} <= names
    assert {c.op for c in kernels.kernel_cases()} == set(OPS)
    assert len(names) == len(kernels.kernel_cases())


def test_timing_helpers() -> None:
    assert ratio(Timing([2.0, 4.0, 9.0]), Timing([1.0, 2.0, 1.0])) == 2.0
    res = interleave({"a": lambda: None, "b": lambda: sum(range(50))}, repeat=4, min_sample_s=0.0002)
    assert all(len(t.wall_ms) == 4 and t.number >= 1 for t in res.values())
    # the budget shrinks the rounds, never below 3
    res = interleave({"slow": lambda: time.sleep(0.01)}, repeat=50, budget_s=0.02)
    assert len(res["slow"].wall_ms) == 3
    assert parse_threads("1,2") == [1, 2]
    with pytest.raises(ValueError):
        parse_threads("0")
    assert settings_for(True)["repeat"] < settings_for(False)["repeat"]
