"""Scale-out of ``axiom verify --instances``: worker processes (``run_parallel``) and Dask (``run_dask``).

The instance set is generated in tmp_path: tiny Dense-ReLU-Dense ONNX networks with VNN-LIB
specs whose answer is known by construction (``sat``: the box centre is already unsafe;
``unsat``: the unsafe threshold lies above an interval bound computed here in float64), plus
a malformed ONNX file (``error``). Special runners (module level, so spawned workers can
import them) hang or kill their worker for chosen instances.
"""

from __future__ import annotations

import csv
import os
import time
from pathlib import Path

import numpy as np
import onnx
import pytest
from onnx import TensorProto, helper, numpy_helper

from axiom.cli import main
from axiom.verify.distributed import default_runner, run_dask, run_parallel
from axiom.verify.instances import Instance, InstanceCache, Outcome, read_instances, run_instances

BENCH_TEST = Path("/work/shared/benchmarks/test")


def write_net(path: Path, seed: int, n_in: int = 3, hidden: int = 8, n_out: int = 2) -> tuple[np.ndarray, ...]:
    rng = np.random.default_rng(seed)
    w1, b1 = rng.normal(size=(n_in, hidden)).astype(np.float32), rng.normal(size=hidden).astype(np.float32)
    w2, b2 = rng.normal(size=(hidden, n_out)).astype(np.float32), rng.normal(size=n_out).astype(np.float32)
    nodes = [
        helper.make_node("MatMul", ["x", "w1"], ["h0"]),
        helper.make_node("Add", ["h0", "b1"], ["h1"]),
        helper.make_node("Relu", ["h1"], ["h2"]),
        helper.make_node("MatMul", ["h2", "w2"], ["y0"]),
        helper.make_node("Add", ["y0", "b2"], ["y"]),
    ]
    inits = [numpy_helper.from_array(a, n) for a, n in ((w1, "w1"), (b1, "b1"), (w2, "w2"), (b2, "b2"))]
    graph = helper.make_graph(
        nodes,
        "tiny",
        [helper.make_tensor_value_info("x", TensorProto.FLOAT, [1, n_in])],
        [helper.make_tensor_value_info("y", TensorProto.FLOAT, [1, n_out])],
        inits,
    )
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 13)])
    model.ir_version = 8
    onnx.save(model, str(path))
    return w1, b1, w2, b2


def write_spec(path: Path, lo: np.ndarray, hi: np.ndarray, n_out: int, threshold: float) -> None:
    lines = [f"(declare-const X_{i} Real)" for i in range(lo.size)]
    lines += [f"(declare-const Y_{j} Real)" for j in range(n_out)]
    for i, (a, b) in enumerate(zip(lo, hi)):
        lines += [f"(assert (>= X_{i} {float(a)!r}))", f"(assert (<= X_{i} {float(b)!r}))"]
    lines.append(f"(assert (>= Y_0 {threshold!r}))")  # unsafe: output 0 reaches the threshold
    path.write_text("\n".join(lines) + "\n")


def make_instances(tmp: Path, n_nets: int = 3) -> tuple[Path, list[str]]:
    """An instances CSV over generated nets: per net one ``sat`` and one ``unsat`` spec, plus a bad net."""
    rows, expected = [], []
    for k in range(n_nets):
        net = tmp / f"net{k}.onnx"
        w1, b1, w2, b2 = write_net(net, seed=k)
        lo, hi = np.full(3, -0.5), np.full(3, 0.5)
        c = np.zeros(3)
        y_centre = float((np.maximum(c @ w1 + b1, 0) @ w2 + b2)[0])
        # interval bound on Y_0 in float64, plus a margin: nothing in the box reaches it
        mid, rad = (lo + hi) / 2, (hi - lo) / 2
        h_mid, h_rad = mid @ w1 + b1, rad @ np.abs(w1)
        h_lo, h_hi = np.maximum(h_mid - h_rad, 0), np.maximum(h_mid + h_rad, 0)
        y_hi = float((((h_lo + h_hi) / 2) @ w2 + ((h_hi - h_lo) / 2) @ np.abs(w2) + b2)[0])
        for kind, threshold in (("sat", y_centre - 0.5), ("unsat", y_hi + 1.0)):
            spec = tmp / f"net{k}_{kind}.vnnlib"
            write_spec(spec, lo, hi, 2, threshold)
            rows.append(["tiny", net.name, spec.name, "20", kind])
            expected.append(kind)
    (tmp / "bad.onnx").write_bytes(b"not an onnx file")
    rows.append(["tiny", "bad.onnx", "net0_sat.vnnlib", "20", "sat"])
    expected.append("error")
    path = tmp / "instances.csv"
    with open(path, "w", newline="") as f:
        w = csv.writer(f)
        w.writerow(["benchmark", "onnx", "vnnlib", "timeout_s", "expected"])
        w.writerows(rows)
    return path, expected


def trouble_runner(inst: Instance, timeout: float, method: str | None, cache: InstanceCache) -> Outcome:
    """Hangs on ``hang*`` specs, kills its own process on ``crash*``, raises on ``raise*``."""
    name = inst.vnnlib.name
    if name.startswith("hang"):
        time.sleep(3600)
    if name.startswith("crash"):
        os._exit(7)
    if name.startswith("raise"):
        raise RuntimeError("runner blew up")
    return default_runner(inst, timeout, method, cache)


def answers(results: list[tuple[Instance, Outcome]]) -> list[tuple[str, str, str]]:
    return [(i.onnx.name, i.vnnlib.name, o.answer) for i, o in results]


@pytest.fixture(scope="module")
def tiny_set(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, list[str], list]:
    tmp = tmp_path_factory.mktemp("scaleout")
    csv_path, expected = make_instances(tmp)
    sequential = run_instances(read_instances(csv_path))
    return csv_path, expected, sequential


def test_generated_answers_are_the_known_ones(tiny_set) -> None:
    _, expected, sequential = tiny_set
    assert [o.answer for _, o in sequential] == expected


def test_two_workers_give_the_sequential_answers_in_csv_order(tiny_set) -> None:
    csv_path, _, sequential = tiny_set
    parallel = run_parallel(read_instances(csv_path), workers=2)
    assert answers(parallel) == answers(sequential)
    for (_, a), (_, b) in zip(parallel, sequential):
        if a.answer == "sat":  # the same confirmed counterexample, not just the same word
            assert a.text() == b.text()


def test_one_worker_matches_too(tiny_set) -> None:
    csv_path, _, sequential = tiny_set
    assert answers(run_parallel(read_instances(csv_path)[:3], workers=1)) == answers(sequential[:3])


def test_hung_instance_is_cut_at_its_deadline_without_blocking_others(tmp_path: Path, tiny_set) -> None:
    csv_path, _, _ = tiny_set
    good = read_instances(csv_path)[:4]
    hang = Instance("tiny", good[0].onnx, tmp_path / "hang.vnnlib", 1.0, "unsat")
    insts = [hang, *good]
    t0 = time.perf_counter()
    res = run_parallel(insts, workers=2, runner=trouble_runner, grace=lambda t: 0.5)
    wall = time.perf_counter() - t0
    assert res[0][1].answer == "timeout" and "killed" in res[0][1].message
    assert 1.4 <= res[0][1].runtime_s < 5.0
    assert [o.answer for _, o in res[1:]] == ["sat", "unsat", "sat", "unsat"]
    assert wall < 20.0


def test_crashing_worker_and_raising_runner_give_error_and_the_rest_still_run(tmp_path: Path, tiny_set) -> None:
    csv_path, _, _ = tiny_set
    good = read_instances(csv_path)[:2]
    crash = Instance("tiny", good[0].onnx, tmp_path / "crash.vnnlib", 5.0, "sat")
    boom = Instance("tiny", good[0].onnx, tmp_path / "raise.vnnlib", 5.0, "sat")
    res = run_parallel([crash, good[0], boom, crash, good[1]], workers=2, runner=trouble_runner)
    assert [o.answer for _, o in res] == ["error", "sat", "error", "error", "unsat"]
    assert "exit code 7" in res[0][1].message and "runner blew up" in res[2][1].message


def test_bad_arguments_are_rejected() -> None:
    with pytest.raises(ValueError, match="workers"):
        run_parallel([], workers=0)
    with pytest.raises(ValueError, match="timeout_scale"):
        run_parallel([], workers=1, timeout_scale=0.0)
    assert run_parallel([], workers=3) == []


@pytest.mark.skipif(not BENCH_TEST.is_dir(), reason="shared benchmarks not available")
def test_benchmark_test_rows_in_parallel_are_correct() -> None:
    insts = [i for i in read_instances(BENCH_TEST.parent / "instances.csv") if i.benchmark == "test"]
    res = run_parallel(insts, workers=2, timeout_scale=0.25)
    assert [o.answer for _, o in res] == [i.expected for i in insts]


def test_cli_workers_and_dask_write_the_sequential_results_file(tiny_set, tmp_path: Path, capsys) -> None:
    distributed = pytest.importorskip("distributed")
    csv_path, _, _ = tiny_set

    def run(*extra: str) -> list[list[str]]:
        out = tmp_path / f"results{len(extra)}{extra[:1]}.csv"
        code = main(["verify", "--instances", str(csv_path), "--out", str(out), *extra])
        assert code == 0, capsys.readouterr().err
        rows = list(csv.reader(out.open()))
        # everything but the runtime (column 6) and the message (timings may appear there)
        return [r[:6] + r[7:9] for r in rows]

    seq = run()
    assert run("--workers", "2") == seq
    with distributed.LocalCluster(
        n_workers=2, threads_per_worker=1, processes=True, host="127.0.0.1", dashboard_address=None
    ) as cluster:
        assert run("--dask-scheduler", cluster.scheduler_address) == seq
        # the API path with a client, and a hung instance answered on time
        with distributed.Client(cluster) as client:
            good = read_instances(csv_path)[:2]
            hang = Instance("tiny", good[0].onnx, tmp_path / "hang.vnnlib", 1.0, "unsat")
            res = run_dask([hang, *good], client, runner=trouble_runner, grace=lambda t: 0.5)
            assert [o.answer for _, o in res] == ["timeout", "sat", "unsat"]
    assert [r[5] for r in seq[1:]] == ["sat", "unsat"] * 3 + ["error"]


def test_cli_dask_unreachable_scheduler_is_a_clear_error(tiny_set, capsys) -> None:
    pytest.importorskip("distributed")
    csv_path, _, _ = tiny_set
    code = main(["verify", "--instances", str(csv_path), "--dask-scheduler", "tcp://127.0.0.1:9", "--limit", "1"])
    assert code == 1 and "cannot connect to the Dask scheduler" in capsys.readouterr().err


class InterruptingProgress:
    """A progress display whose second ``start`` raises KeyboardInterrupt, as a Ctrl-C in the parent would."""

    def __init__(self) -> None:
        self.started = 0

    def start(self, label: str) -> None:
        self.started += 1
        if self.started == 2:
            raise KeyboardInterrupt

    def update(self, label: str, answer: str, seconds: float) -> None:
        pass


def test_ctrl_c_in_the_parent_stops_every_worker(tmp_path: Path, tiny_set) -> None:
    import multiprocessing

    csv_path, _, _ = tiny_set
    good = read_instances(csv_path)[0]
    hang = Instance("tiny", good.onnx, tmp_path / "hang.vnnlib", 60.0, "unsat")
    t0 = time.perf_counter()
    with pytest.raises(KeyboardInterrupt):
        run_parallel([hang, hang, hang], workers=2, runner=trouble_runner, progress=InterruptingProgress())
    assert time.perf_counter() - t0 < 30.0
    assert not [p for p in multiprocessing.active_children() if p.name == "axiom-verify-worker"]
