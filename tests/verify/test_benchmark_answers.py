"""Never wrong: known answers of the VNN-COMP 2021 benchmarks (../shared/benchmarks).

Each instance must get its expected answer or unknown/timeout, never the opposite. The fast
instances below are also required to be decided, so a regression in the verifier shows.
"""

import csv
from pathlib import Path

import pytest

from axiom.verify.instances import InstanceCache, is_wrong, verify_instance

BENCH = Path(__file__).resolve().parents[3] / "shared" / "benchmarks"
if not (BENCH / "instances.csv").exists():  # pragma: no cover - the checkout sits next to shared/
    pytest.skip(f"benchmarks not found at {BENCH}", allow_module_level=True)

ROWS = {(r["onnx"], r["vnnlib"]): r["expected"] for r in csv.DictReader(open(BENCH / "instances.csv"))}

# (onnx, vnnlib, answer we must reach within the timeout)
DECIDED = [
    ("test/test_nano.onnx", "test/test_nano.vnnlib", "unsat"),
    ("test/test_tiny.onnx", "test/test_tiny.vnnlib", "unsat"),
    ("test/test_small.onnx", "test/test_small.vnnlib", "unsat"),
    ("test/test_sat.onnx", "test/test_prop.vnnlib", "sat"),
    ("test/test_unsat.onnx", "test/test_prop.vnnlib", "unsat"),
    ("acasxu/ACASXU_run2a_1_7_batch_2000.onnx", "acasxu/prop_3.vnnlib", "sat"),
    ("acasxu/ACASXU_run2a_1_9_batch_2000.onnx", "acasxu/prop_4.vnnlib", "sat"),
    ("acasxu/ACASXU_run2a_1_2_batch_2000.onnx", "acasxu/prop_2.vnnlib", "sat"),
    ("mnistfc/mnist-net_256x2.onnx", "mnistfc/prop_2_0.03.vnnlib", "unsat"),
    ("mnistfc/mnist-net_256x2.onnx", "mnistfc/prop_1_0.05.vnnlib", "sat"),
    ("verivital/Convnet_avgpool.onnx", "verivital/specs/avgpool_specs/prop_0_0.02.vnnlib", "unsat"),
    ("verivital/Convnet_maxpool.onnx", "verivital/specs/maxpool_specs/prop_1_0.004.vnnlib", "unsat"),
]
# Instances the bounds alone cannot decide yet: the answer may be unknown, never wrong.
UNDECIDED = [
    ("acasxu/ACASXU_run2a_1_1_batch_2000.onnx", "acasxu/prop_1.vnnlib"),
    ("acasxu/ACASXU_run2a_1_5_batch_2000.onnx", "acasxu/prop_2.vnnlib"),
    ("mnistfc/mnist-net_256x2.onnx", "mnistfc/prop_1_0.03.vnnlib"),
]

CACHE = InstanceCache()


@pytest.mark.parametrize(
    "onnx_path,vnnlib_path,answer", DECIDED, ids=[f"{a.split('/')[-1]}:{b.split('/')[-1]}" for a, b, _ in DECIDED]
)
def test_fast_instances_are_decided_correctly(onnx_path, vnnlib_path, answer):
    expected = ROWS[(onnx_path, vnnlib_path)]
    assert answer == expected, "the list above must agree with instances.csv"
    out = verify_instance(BENCH / onnx_path, BENCH / vnnlib_path, timeout=60, cache=CACHE)
    assert not is_wrong(expected, out.answer), f"WRONG ANSWER {out.answer} (expected {expected}): {out.message}"
    assert out.answer == expected, out.message
    if out.answer == "sat":
        assert out.counterexample is not None and out.output is not None


@pytest.mark.parametrize(
    "onnx_path,vnnlib_path", UNDECIDED, ids=[f"{a.split('/')[-1]}:{b.split('/')[-1]}" for a, b in UNDECIDED]
)
def test_hard_instances_are_never_wrong(onnx_path, vnnlib_path):
    expected = ROWS[(onnx_path, vnnlib_path)]
    out = verify_instance(BENCH / onnx_path, BENCH / vnnlib_path, timeout=5, cache=CACHE)
    assert out.answer != "error", out.message
    assert not is_wrong(expected, out.answer), f"WRONG ANSWER {out.answer} (expected {expected}): {out.message}"
