"""The external SMT solver runner: answers, time limit with a clean kill, memory limit, selection."""

from __future__ import annotations

import os
import shutil
import stat
import subprocess
import time
from pathlib import Path

import pytest

from axiom.proof import find_solver, run_solver
from axiom.proof.runner import default_runner, default_solver, find_rust_runner, parse_answer

SOLVERS = ["z3", pytest.param("cvc5", marks=pytest.mark.skipif(shutil.which("cvc5") is None, reason="no cvc5 binary"))]
RUNNERS = ["python", "rust"]
ROOT = Path(__file__).resolve().parents[2]


@pytest.fixture(scope="session")
def rust_runner_bin(tmp_path_factory) -> str:
    """The axiom-smt-runner binary built from the current rust/smt-runner sources (std only, offline)."""
    cargo = shutil.which("cargo")
    if cargo is None:
        built = find_rust_runner()
        if built is None:
            pytest.skip("no cargo and no built axiom-smt-runner: the rust runner cannot be tested here")
        return built
    target = tmp_path_factory.mktemp("cargo-target")
    manifest = ROOT / "rust" / "smt-runner" / "Cargo.toml"
    cmd = [cargo, "build", "--release", "--offline", "--manifest-path", str(manifest), "--target-dir", str(target)]
    subprocess.run(cmd, check=True, capture_output=True, timeout=300)
    return str(target / "release" / "axiom-smt-runner")


@pytest.fixture(params=RUNNERS)
def runner(request, monkeypatch) -> str:
    if request.param == "rust":
        monkeypatch.setenv("AXIOM_SMT_RUNNER_BIN", request.getfixturevalue("rust_runner_bin"))
    return request.param


SAT = "(set-logic QF_LRA)\n(declare-fun x () Real)\n(assert (> x (/ 1 3)))\n(check-sat)\n"
UNSAT = "(set-logic QF_LRA)\n(declare-fun x () Real)\n(assert (> x 1))\n(assert (< x (/ 1 2)))\n(check-sat)\n"


def pigeonhole(n: int) -> str:
    """n + 1 pigeons in n holes: unsat, and exponentially hard for CDCL solvers (n = 11: minutes)."""
    lines = ["(set-logic QF_UF)"]
    lines += [f"(declare-fun p{p}_{h} () Bool)" for p in range(n + 1) for h in range(n)]
    lines += ["(assert (or " + " ".join(f"p{p}_{h}" for h in range(n)) + "))" for p in range(n + 1)]
    lines += [
        f"(assert (or (not p{p}_{h}) (not p{q}_{h})))"
        for h in range(n)
        for p in range(n + 1)
        for q in range(p + 1, n + 1)
    ]
    return "\n".join([*lines, "(check-sat)", ""])


def write(tmp_path, name, text):
    path = tmp_path / name
    path.write_text(text)
    return path


def script(tmp_path, name, body):
    path = tmp_path / name
    path.write_text("#!/bin/sh\n" + body)
    path.chmod(path.stat().st_mode | stat.S_IXUSR)
    return str(path)


@pytest.mark.parametrize("solver", SOLVERS)
def test_sat_and_unsat_are_parsed(tmp_path, solver, runner):
    a = run_solver(write(tmp_path, "s.smt2", SAT), solver, timeout=20, memory_mb=1024, runner=runner)
    b = run_solver(write(tmp_path, "u.smt2", UNSAT), solver, timeout=20, memory_mb=1024, runner=runner)
    assert (a.answer, a.falsified, a.timed_out, a.returncode) == ("sat", True, False, 0)
    assert (b.answer, b.proven, b.timed_out) == ("unsat", True, False)
    assert a.solver == solver and os.path.basename(a.executable).startswith(solver) and a.runner == runner


@pytest.mark.parametrize("solver", SOLVERS)
def test_timeout_kills_the_solver_on_time(tmp_path, solver, runner):
    path = write(tmp_path, "php.smt2", pigeonhole(11))
    t0 = time.perf_counter()
    a = run_solver(path, solver, timeout=0.5, memory_mb=2048, runner=runner)
    elapsed = time.perf_counter() - t0
    assert a.answer == "unknown" and a.timed_out, a
    assert "timeout" in a.message
    assert elapsed < 3.0, elapsed
    assert a.returncode is not None  # reaped: the process is gone, not left running


def _alive(pid: int) -> bool:
    try:
        with open(f"/proc/{pid}/stat") as f:
            return f.read().split(")")[-1].split()[0] != "Z"  # a zombie is dead, waiting to be reaped
    except FileNotFoundError:
        return False


def test_timeout_kills_the_whole_process_group(tmp_path, runner):
    pidfile = tmp_path / "child.pid"
    exe = script(tmp_path, "fake-solver", f"sleep 60 &\necho $! > {pidfile}\nwait\n")
    a = run_solver(write(tmp_path, "s.smt2", SAT), "z3", timeout=0.5, executable=exe, runner=runner)
    assert a.timed_out and a.answer == "unknown"
    child = int(pidfile.read_text())
    deadline = time.time() + 2
    while _alive(child) and time.time() < deadline:
        time.sleep(0.02)
    assert not _alive(child), "the solver's child survived the timeout"


def test_memory_limit_is_applied(tmp_path, runner):
    exe = script(tmp_path, "fake-solver", "ulimit -v\nulimit -t\necho sat\n")
    a = run_solver(write(tmp_path, "s.smt2", SAT), "z3", timeout=10, memory_mb=300, executable=exe, runner=runner)
    assert a.stdout.split()[:2] == [str(300 * 1024), "12"] and a.answer == "sat"  # CPU backstop: timeout + 2 s
    unlimited = run_solver(
        write(tmp_path, "s.smt2", SAT), "z3", timeout=None, memory_mb=None, executable=exe, runner=runner
    )
    assert unlimited.stdout.split()[:2] == ["unlimited", "unlimited"]


def test_solver_out_of_memory_is_unknown_not_an_answer(tmp_path, runner):
    path = write(tmp_path, "php.smt2", pigeonhole(9))
    a = run_solver(path, "z3", timeout=20, memory_mb=24, runner=runner)  # too little even to load z3
    assert a.answer == "unknown" and not a.timed_out, a
    assert "memory limit 24 MB" in a.message


def test_selection_by_environment(tmp_path, monkeypatch):
    monkeypatch.delenv("AXIOM_SMT_SOLVER", raising=False)
    monkeypatch.delenv("AXIOM_SMT_RUNNER", raising=False)
    assert (default_solver(), default_runner()) == ("z3", "python")
    path = write(tmp_path, "s.smt2", SAT)
    if shutil.which("cvc5"):
        monkeypatch.setenv("AXIOM_SMT_SOLVER", "cvc5")
        assert run_solver(path).solver == "cvc5"
    monkeypatch.setenv("AXIOM_SMT_SOLVER", "yices")
    with pytest.raises(ValueError, match="AXIOM_SMT_SOLVER"):
        run_solver(path)
    monkeypatch.setenv("AXIOM_SMT_SOLVER", "z3")
    monkeypatch.setenv("AXIOM_SMT_RUNNER", "rust")
    monkeypatch.setenv("AXIOM_SMT_RUNNER_BIN", str(tmp_path / "not-built"))
    with pytest.raises(FileNotFoundError, match="make smt-runner"):
        run_solver(path)
    monkeypatch.setenv("AXIOM_SMT_RUNNER", "java")
    with pytest.raises(ValueError, match="AXIOM_SMT_RUNNER"):
        run_solver(path)


def test_rust_runner_is_selected_by_environment(tmp_path, monkeypatch, rust_runner_bin):
    monkeypatch.setenv("AXIOM_SMT_RUNNER", "rust")
    monkeypatch.setenv("AXIOM_SMT_RUNNER_BIN", rust_runner_bin)
    a = run_solver(write(tmp_path, "u.smt2", UNSAT), "z3", timeout=10)
    assert (a.runner, a.answer) == ("rust", "unsat")


def test_rust_runner_rejects_bad_arguments(rust_runner_bin):
    for args in (["--timeout-ms", "x", "--", "true"], ["--memory-mb", "0", "--", "true"], ["--", ""], []):
        r = subprocess.run([rust_runner_bin, *args], capture_output=True, text=True, timeout=10)
        assert r.returncode in (125, 127) and "axiom-smt-runner:" in r.stderr


def test_parse_and_errors(tmp_path):
    assert parse_answer("unknown\n") == "unknown"
    assert parse_answer('(error "line 1: unsat core")\n') is None
    assert find_solver("z3") is not None
    with pytest.raises(FileNotFoundError):
        run_solver(tmp_path / "missing.smt2", "z3")
    bad = run_solver(write(tmp_path, "bad.smt2", "(check-sat\n"), "z3", timeout=10)
    assert bad.answer == "unknown" and bad.message


def test_a_process_that_escapes_the_group_cannot_hang_the_python_runner(tmp_path):
    pidfile = tmp_path / "escaped.pid"
    exe = script(tmp_path, "fake-solver", f"setsid sleep 30 &\necho $! > {pidfile}\nsleep 30\n")
    t0 = time.perf_counter()
    a = run_solver(write(tmp_path, "s.smt2", SAT), "z3", timeout=0.5, executable=exe, runner="python")
    try:
        assert a.timed_out and a.answer == "unknown"
        assert time.perf_counter() - t0 < 4.0  # 0.5 s limit + 0.2 s grace + at most 2 s of draining
    finally:
        if pidfile.exists():  # the escaped sleep is ours: end it by its id
            try:
                os.kill(int(pidfile.read_text()), 9)
            except ProcessLookupError:
                pass
