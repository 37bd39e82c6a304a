"""Run an external SMT solver on an SMT-LIB file, with a time limit, a memory limit and a clean kill.

``run_solver(path, solver="z3" | "cvc5", timeout=..., memory_mb=...)`` starts the solver in a
NEW process group with ``RLIMIT_AS`` (address space) set to ``memory_mb`` and ``RLIMIT_CPU`` set
just above the timeout (a backstop), tells the solver its own limits too (z3 ``-T:`` and
``-memory:``, cvc5 ``--tlimit``), and on timeout sends SIGTERM then SIGKILL to the whole group,
so no solver process outlives the call. The first ``sat`` / ``unsat`` / ``unknown`` line of its
standard output is the answer; anything else (a crash, an error, the memory limit) is ``unknown``
with the reason in ``message``.

Solvers: ``z3`` is the executable that the ``z3-solver`` wheel ships (found next to the Python
interpreter, in the ``z3`` package, or on ``PATH``); ``cvc5`` is the executable of Debian's
``cvc5`` package (or any ``cvc5`` on ``PATH``). ``AXIOM_SMT_SOLVER`` (``z3`` | ``cvc5``) picks
the default solver and ``AXIOM_SMT_RUNNER`` the runner: ``python`` (the default: the limits
are set by this module in the child before ``exec``) or ``rust``: the small std-only program
``axiom-smt-runner`` built from ``rust/smt-runner`` (``make smt-runner``), which applies the same
limits and the same SIGTERM-then-SIGKILL of the solver's process group itself, and exits 124 on
a timeout. It is found through ``AXIOM_SMT_RUNNER_BIN``, then ``rust/target/release/`` of a
source checkout, then ``PATH``; if it is not built, asking for it raises ``FileNotFoundError``.

The in-process z3-solver API (:mod:`axiom.verify.smt`) stays what ``verify``/``prove`` use; this
runner is for exported files and for solvers other than z3.

Example:
    >>> import tempfile, os
    >>> path = os.path.join(tempfile.mkdtemp(), "q.smt2")
    >>> _ = open(path, "w").write("(set-logic QF_LRA)(declare-fun x () Real)(assert (< x 0))(check-sat)")
    >>> run_solver(path, "z3", timeout=10).answer
    'sat'
"""

from __future__ import annotations

import os
import resource
import shutil
import signal
import subprocess
import sys
import time
from dataclasses import dataclass
from pathlib import Path

__all__ = [
    "SOLVERS",
    "SolverAnswer",
    "default_runner",
    "default_solver",
    "find_rust_runner",
    "find_solver",
    "run_solver",
]

RUST_RUNNER = "axiom-smt-runner"

SOLVERS = ("z3", "cvc5")
RUNNERS = ("python", "rust")
ANSWERS = ("sat", "unsat", "unknown")


@dataclass
class SolverAnswer:
    """The outcome of one solver run.

    ``answer`` is ``sat``, ``unsat`` or ``unknown`` (never a guess); ``timed_out`` says that the
    time limit ended the run (the process group was killed); ``message`` says why an answer is
    ``unknown``; ``returncode`` is the solver's exit status (negative: the signal that ended it).

    Example:
        >>> a = SolverAnswer("unsat", "z3", "/usr/bin/z3", time_s=0.01)
        >>> a.proven, a.falsified
        (True, False)
    """

    answer: str
    solver: str
    executable: str
    time_s: float = 0.0
    timed_out: bool = False
    returncode: int | None = None
    stdout: str = ""
    stderr: str = ""
    message: str = ""
    runner: str = "python"

    @property
    def proven(self) -> bool:
        """``unsat`` on an exported "network violates the property" file: the property holds."""
        return self.answer == "unsat"

    @property
    def falsified(self) -> bool:
        """``sat`` on an exported file: a counterexample exists."""
        return self.answer == "sat"


def default_solver() -> str:
    """The solver named by ``AXIOM_SMT_SOLVER`` (``z3`` when unset).

    Example:
        >>> default_solver() in SOLVERS
        True
    """
    name = os.environ.get("AXIOM_SMT_SOLVER", "z3").strip().lower() or "z3"
    if name not in SOLVERS:
        raise ValueError(f"AXIOM_SMT_SOLVER={name!r}: expected one of {', '.join(SOLVERS)}")
    return name


def default_runner() -> str:
    """The runner named by ``AXIOM_SMT_RUNNER`` (``python`` when unset).

    Example:
        >>> default_runner() in ("python", "rust")
        True
    """
    name = os.environ.get("AXIOM_SMT_RUNNER", "python").strip().lower() or "python"
    if name not in RUNNERS:
        raise ValueError(f"AXIOM_SMT_RUNNER={name!r}: expected one of {', '.join(RUNNERS)}")
    return name


def find_solver(solver: str = "z3") -> str | None:
    """Path of the solver executable, or None when it is not installed.

    ``z3``: next to the running Python (a venv's ``bin/z3`` from ``z3-solver``), then the
    ``z3`` package directory, then ``PATH``. ``cvc5``: ``PATH`` (Debian's ``/usr/bin/cvc5``).

    Example:
        >>> find_solver("z3") is not None  # z3-solver is a dependency
        True
    """
    if solver not in SOLVERS:
        raise ValueError(f"unknown solver {solver!r}: expected one of {', '.join(SOLVERS)}")
    candidates: list[Path] = []
    if solver == "z3":
        candidates.append(Path(sys.executable).parent / "z3")
        try:
            import z3

            pkg = Path(z3.__file__).parent
            candidates += [pkg / "bin" / "z3", pkg / "lib" / "z3"]
        except ImportError:  # pragma: no cover - z3-solver is a dependency
            pass
    for c in candidates:
        if c.is_file() and os.access(c, os.X_OK):
            return str(c)
    return shutil.which(solver)


def find_rust_runner() -> str | None:
    """Path of the ``axiom-smt-runner`` binary (``AXIOM_SMT_RUNNER=rust``), or None if not built.

    Looked up in ``AXIOM_SMT_RUNNER_BIN``, then ``rust/target/release/`` next to the package (a
    source checkout after ``make smt-runner``), then ``PATH``.

    Example:
        >>> p = find_rust_runner()
        >>> p is None or os.path.basename(p) == "axiom-smt-runner"
        True
    """
    env = os.environ.get("AXIOM_SMT_RUNNER_BIN")
    if env:
        return env if os.path.isfile(env) and os.access(env, os.X_OK) else None
    built = Path(__file__).resolve().parents[2] / "rust" / "target" / "release" / RUST_RUNNER
    if built.is_file() and os.access(built, os.X_OK):
        return str(built)
    return shutil.which(RUST_RUNNER)


def _limits(memory_mb: int | None, cpu_s: int | None):  # type: ignore[no-untyped-def]
    def apply() -> None:  # runs in the child between fork and exec
        if memory_mb is not None:
            nbytes = int(memory_mb) * 1024 * 1024
            resource.setrlimit(resource.RLIMIT_AS, (nbytes, nbytes))
        if cpu_s is not None:
            resource.setrlimit(resource.RLIMIT_CPU, (cpu_s, cpu_s + 1))
        resource.setrlimit(resource.RLIMIT_CORE, (0, 0))

    return apply


def _command(solver: str, exe: str, path: str, timeout: float | None, memory_mb: int | None) -> list[str]:
    if solver == "z3":
        cmd = [exe, "-smt2"]
        if timeout is not None:
            cmd.append(f"-T:{max(1, int(timeout + 0.999))}")
        if memory_mb is not None:
            cmd.append(f"-memory:{max(16, int(memory_mb) - 64)}")
        return [*cmd, path]
    cmd = [exe, "--lang=smt2"]
    if timeout is not None:
        cmd.append(f"--tlimit={max(1, int(timeout * 1000))}")
    return [*cmd, path]


def _kill_group(proc: subprocess.Popen[str]) -> None:
    for sig, wait in ((signal.SIGTERM, 0.2), (signal.SIGKILL, 5.0)):
        try:
            os.killpg(proc.pid, sig)
        except ProcessLookupError:
            return
        try:
            proc.wait(timeout=wait)
            # the leader is gone; make sure nothing else of its group survives
            os.killpg(proc.pid, signal.SIGKILL)
        except ProcessLookupError:
            return
        except subprocess.TimeoutExpired:
            continue


def _kill_group_now(pgid: int) -> None:
    try:
        os.killpg(pgid, signal.SIGKILL)
    except (ProcessLookupError, PermissionError):
        pass


def _drain(proc: subprocess.Popen[str]) -> tuple[str, str]:
    """The output after a kill; a process that left the group and holds the pipes is not waited for."""
    try:
        return proc.communicate(timeout=2.0)
    except subprocess.TimeoutExpired:
        for stream in (proc.stdout, proc.stderr):
            if stream is not None:
                stream.close()
        proc.wait()
        return "", "(output lost: a process outside the solver's group kept its pipes open)"


def parse_answer(stdout: str) -> str | None:
    """The first ``sat``/``unsat``/``unknown`` line of a solver's output, or None.

    Example:
        >>> parse_answer("(warning x)\\nunsat\\n"), parse_answer("(error \\"bad\\")")
        ('unsat', None)
    """
    for line in stdout.splitlines():
        word = line.strip()
        if word in ANSWERS:
            return word
    return None


def run_solver(
    path: str | os.PathLike[str],
    solver: str | None = None,
    *,
    timeout: float | None = 60.0,
    memory_mb: int | None = 4096,
    executable: str | None = None,
    runner: str | None = None,
) -> SolverAnswer:
    """Run ``solver`` on the SMT-LIB file ``path`` as a subprocess and parse its answer.

    Args:
        path: an SMT-LIB 2 file with one ``(check-sat)``.
        solver: ``z3`` or ``cvc5``; default ``AXIOM_SMT_SOLVER`` (else ``z3``).
        timeout: wall-clock seconds; past it the solver's process group is killed and the answer
            is ``unknown`` with ``timed_out=True``. None: no limit.
        memory_mb: address-space limit of the solver process (``RLIMIT_AS``); None: no limit.
        executable: a specific solver binary (default: :func:`find_solver`).
        runner: ``python`` or ``rust`` (default ``AXIOM_SMT_RUNNER``, else ``python``).

    Raises:
        FileNotFoundError: the file, the solver executable or (``rust``) the runner binary is missing.

    Example:
        >>> import tempfile, os
        >>> path = os.path.join(tempfile.mkdtemp(), "q.smt2")
        >>> _ = open(path, "w").write("(set-logic QF_LRA)(declare-fun x () Real)(assert (< x x))(check-sat)")
        >>> a = run_solver(path, "z3", timeout=10, memory_mb=512)
        >>> a.answer, a.timed_out
        ('unsat', False)
    """
    solver = default_solver() if solver is None else solver.lower()
    if solver not in SOLVERS:
        raise ValueError(f"unknown solver {solver!r}: expected one of {', '.join(SOLVERS)}")
    runner = default_runner() if runner is None else runner.lower()
    if runner not in RUNNERS:
        raise ValueError(f"unknown runner {runner!r}: expected one of {', '.join(RUNNERS)}")
    path = os.fspath(path)
    if not os.path.isfile(path):
        raise FileNotFoundError(f"no SMT-LIB file at {path}")
    exe = executable or find_solver(solver)
    if exe is None:
        hint = "pip install z3-solver" if solver == "z3" else "apt-get install cvc5"
        raise FileNotFoundError(f"the {solver} executable was not found ({hint})")
    cmd = _command(solver, exe, path, timeout, memory_mb)
    if runner == "rust":
        return _run_rust(cmd, solver, exe, timeout, memory_mb)
    cpu = None if timeout is None else int(timeout) + 2
    t0 = time.perf_counter()
    proc = subprocess.Popen(
        cmd,
        stdin=subprocess.DEVNULL,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        start_new_session=True,  # its own process group: a timeout kills the solver and its children
        preexec_fn=_limits(memory_mb, cpu),
    )
    timed_out = False
    try:
        out, err = proc.communicate(timeout=timeout)
        _kill_group_now(proc.pid)  # anything the solver started and left behind in its group
    except subprocess.TimeoutExpired:
        timed_out = True
        _kill_group(proc)
        out, err = _drain(proc)
    elapsed = time.perf_counter() - t0
    return _answer(solver, exe, out, err, proc.returncode, timed_out, elapsed, timeout, memory_mb, runner)


def _run_rust(cmd: list[str], solver: str, exe: str, timeout: float | None, memory_mb: int | None) -> SolverAnswer:
    binary = find_rust_runner()
    if binary is None:
        raise FileNotFoundError(
            "AXIOM_SMT_RUNNER=rust: the axiom-smt-runner binary is not built (make smt-runner, which runs "
            "cargo build --release --offline --manifest-path rust/smt-runner/Cargo.toml --target-dir rust/target)"
        )
    wrapped = [binary]
    if timeout is not None:
        wrapped += ["--timeout-ms", str(max(1, int(timeout * 1000)))]
    if memory_mb is not None:
        wrapped += ["--memory-mb", str(int(memory_mb))]
    wrapped += ["--", *cmd]
    t0 = time.perf_counter()
    proc = subprocess.Popen(
        wrapped, stdin=subprocess.DEVNULL, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
        start_new_session=True,
    )  # fmt: skip
    try:  # the runner enforces the limit; this outer one only guards against a hung runner
        out, err = proc.communicate(timeout=None if timeout is None else timeout + 10.0)
    except subprocess.TimeoutExpired:
        _kill_group(proc)
        out, err = _drain(proc)
        err += "\naxiom-smt-runner did not stop at its timeout and was killed"
    elapsed = time.perf_counter() - t0
    timed_out = proc.returncode == 124 and "axiom-smt-runner: timeout" in err
    return _answer(solver, exe, out, err, proc.returncode, timed_out, elapsed, timeout, memory_mb, "rust")


def _answer(
    solver: str,
    exe: str,
    out: str,
    err: str,
    returncode: int | None,
    timed_out: bool,
    elapsed: float,
    timeout: float | None,
    memory_mb: int | None,
    runner: str,
) -> SolverAnswer:
    parsed = parse_answer(out)
    # the solver also gets the limit itself (z3 -T, cvc5 --tlimit) and may stop on it just before the kill
    own_limit = not timed_out and parsed in (None, "unknown") and timeout is not None and elapsed >= timeout
    timed_out = timed_out or own_limit
    answer = parsed if parsed is not None and not timed_out else "unknown"
    if own_limit:
        message = f"timeout after {timeout} s: the solver stopped at its own time limit"
    elif timed_out:
        message = f"timeout after {timeout} s: the solver's process group was killed"
    elif parsed is None:
        rc = returncode
        if runner == "rust" and rc is not None and rc > 128:
            rc = -(rc - 128)  # the runner reports a signal as 128 + signal
        why = f"killed by signal {-rc}" if rc is not None and rc < 0 else f"exit status {rc}"
        tail = (err.strip() or out.strip())[-300:]
        message = f"no answer from {solver} ({why}; memory limit {memory_mb} MB): {tail}"
    elif parsed == "unknown":
        message = f"{solver} answered unknown" + (f": {out.strip()[-200:]}" if out.strip() != "unknown" else "")
    else:
        message = ""
    return SolverAnswer(answer, solver, exe, elapsed, timed_out, returncode, out, err, message, runner)
