"""``python -m axiom.bench verify``: the verification benchmark, timed the way VNN-COMP times tools.

Every instance of an instances CSV (default ``../shared/benchmarks/instances.csv`` next to the
repository; ``benchmark,onnx,vnnlib,timeout_s,expected``) runs as a fresh
``python -m axiom verify NET SPEC --timeout T --json`` process, so each time includes the
tool's start-up (interpreter, ``import axiom``, ONNX import, spec parsing), as in the
competition. Two times are recorded per instance: ``wall_s``, the process's wall-clock time
seen from here (start-up included: the benchmark's figure), and ``runtime_s``, the time the
tool itself reports for loading and verifying (no interpreter start-up). A process that
outlives ``T`` plus the grace (2 s + 10% of ``T``) is killed and answers ``timeout``;
unparsable output answers ``error``. With ``--workers N``, N processes run at once (faster
in total, slower each on a small machine).

Per benchmark it prints solved (``sat`` + ``unsat``), correct and wrong counts against
``expected``, and the median, p90 and max of ``wall_s`` over all its instances; start-up
alone is measured separately (``python -c pass``, ``import axiom``, ``axiom verify --help``,
with the slowest imports from ``-X importtime``). Results go to
``<out>/<timestamp>-<host>-verify.json`` and ``<out>/latest-verify.json`` (``bench/results``
by default). The exit code is 1 when any answer contradicts ``expected``.

Example:
    >>> stats = benchmark_stats([
    ...     {"result": "unsat", "expected": "unsat", "wall_s": 0.5, "runtime_s": 0.1},
    ...     {"result": "timeout", "expected": "sat", "wall_s": 3.0, "runtime_s": 2.9}])
    >>> stats["n"], stats["solved"], stats["correct"], stats["wrong"], stats["max_s"]
    (2, 1, 1, 0, 3.0)
"""

from __future__ import annotations

import argparse
import datetime as dt
import json
import os
import subprocess
import sys
import time
from collections.abc import Callable, Sequence
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any

import numpy as np

from axiom.verify.distributed import default_grace
from axiom.verify.instances import ANSWERS, Instance, filter_instances, is_wrong, read_instances

SCHEMA = "axiom-bench-verify/1"
REPO = Path(__file__).resolve().parents[2]
DEFAULT_INSTANCES = REPO.parent / "shared" / "benchmarks" / "instances.csv"
_THREAD_VARS = ("OMP_NUM_THREADS", "OPENBLAS_NUM_THREADS", "MKL_NUM_THREADS")


def run_one(inst: Instance, timeout: float, env: dict[str, str] | None = None) -> dict[str, Any]:
    """Run one instance as a fresh ``python -m axiom verify`` process; its JSON record.

    Example:
        >>> rec = run_one(Instance("demo", Path("missing.onnx"), Path("missing.vnnlib"), 5.0, "unsat"), 5.0)
        >>> rec["result"], rec["exit_code"], rec["wall_s"] > rec["runtime_s"]
        ('error', 1, True)
    """
    cmd = [sys.executable, "-m", "axiom", "verify", str(inst.onnx), str(inst.vnnlib), "--timeout", f"{timeout:g}"]
    rec: dict[str, Any] = {
        "benchmark": inst.benchmark,
        "onnx": str(inst.onnx),
        "vnnlib": str(inst.vnnlib),
        "timeout_s": timeout,
        "expected": inst.expected,
    }
    t0 = time.perf_counter()
    try:
        proc = subprocess.run(
            [*cmd, "--json"], capture_output=True, text=True, timeout=timeout + default_grace(timeout), env=env
        )
    except subprocess.TimeoutExpired:
        wall = time.perf_counter() - t0
        message = f"killed: no answer {wall:.1f} s after start (timeout {timeout:g} s)"
        return {**rec, "result": "timeout", "wall_s": wall, "runtime_s": None, "exit_code": None, "message": message}
    wall = time.perf_counter() - t0
    try:
        out = json.loads(proc.stdout)
        result, runtime, message = out["result"], float(out["runtime_s"]), out.get("message", "")
        if result not in ANSWERS:
            raise ValueError(f"unknown result {result!r}")
    except (ValueError, KeyError, TypeError) as err:
        tail = (proc.stderr or proc.stdout).strip().splitlines()[-1:] or [""]
        result, runtime, message = "error", None, f"unreadable output ({err}); exit code {proc.returncode}: {tail[0]}"
    rec.update(result=result, wall_s=wall, runtime_s=runtime, exit_code=proc.returncode, message=message)
    return rec


def _quantile(values: Sequence[float], q: float) -> float | None:
    return float(np.percentile(np.asarray(values, float), q)) if len(values) else None


def benchmark_stats(records: Sequence[dict[str, Any]]) -> dict[str, Any]:
    """Counts per answer, solved/correct/wrong, and median/p90/max of ``wall_s`` (and of ``runtime_s``).

    Example:
        >>> s = benchmark_stats([{"result": "sat", "expected": "unsat", "wall_s": 1.0, "runtime_s": 0.5}])
        >>> s["wrong"], s["median_s"], s["runtime_median_s"]
        (1, 1.0, 0.5)
    """
    walls = [r["wall_s"] for r in records]
    runtimes = [r["runtime_s"] if r["runtime_s"] is not None else r["wall_s"] for r in records]
    stats: dict[str, Any] = {"n": len(records), **{a: sum(r["result"] == a for r in records) for a in ANSWERS}}
    stats["solved"] = stats["sat"] + stats["unsat"]
    stats["correct"] = sum(r["result"] in ("sat", "unsat") and r["result"] == r["expected"] for r in records)
    stats["wrong"] = sum(is_wrong(r["expected"], r["result"]) for r in records)
    stats["known"] = sum(r["expected"] in ("sat", "unsat") for r in records)
    stats["median_s"], stats["p90_s"] = _quantile(walls, 50), _quantile(walls, 90)
    stats["max_s"] = max(walls) if walls else None
    stats["runtime_median_s"], stats["runtime_p90_s"] = _quantile(runtimes, 50), _quantile(runtimes, 90)
    stats["runtime_max_s"] = max(runtimes) if runtimes else None
    stats["total_s"] = float(sum(walls))
    return stats


def _time_command(cmd: list[str], repeat: int) -> float:
    times = []
    for _ in range(repeat):
        t0 = time.perf_counter()
        subprocess.run(cmd, capture_output=True, check=False)
        times.append(time.perf_counter() - t0)
    return float(np.median(times))


def measure_startup(repeat: int = 5, top: int = 8) -> dict[str, Any]:
    """Median wall time of ``python -c pass``, ``import axiom`` and ``axiom verify --help``; slowest imports.

    ``top_imports`` lists the modules with the largest own import time (``-X importtime``,
    one ``axiom verify --help`` run), each ``[module, self_ms, cumulative_ms]``.

    Example:
        >>> s = measure_startup(repeat=1, top=3)
        >>> s["python_s"] < s["verify_help_s"], len(s["top_imports"])
        (True, 3)
    """
    py = sys.executable
    info: dict[str, Any] = {
        "repeat": repeat,
        "python_s": _time_command([py, "-c", "pass"], repeat),
        "import_axiom_s": _time_command([py, "-c", "import axiom"], repeat),
        "verify_help_s": _time_command([py, "-m", "axiom", "verify", "--help"], repeat),
    }
    proc = subprocess.run([py, "-X", "importtime", "-m", "axiom", "verify", "--help"], capture_output=True, text=True)
    rows = []
    for line in proc.stderr.splitlines():
        parts = line.removeprefix("import time:").split("|")
        if len(parts) == 3 and parts[0].strip().isdigit():
            rows.append([parts[2].strip(), int(parts[0]) / 1e3, int(parts[1]) / 1e3])
    info["top_imports"] = sorted(rows, key=lambda r: -r[1])[:top]
    return info


def run_all(
    instances: Sequence[Instance],
    timeout_scale: float = 1.0,
    workers: int = 1,
    log: Callable[[str], None] = print,
) -> list[dict[str, Any]]:
    """Every instance as its own process (``workers`` at a time); records in the instances' order.

    Example:
        >>> i = Instance("demo", Path("missing.onnx"), Path("missing.vnnlib"), 4.0, "sat")
        >>> [(r["benchmark"], r["result"], r["timeout_s"]) for r in run_all([i], 0.5, log=lambda m: None)]
        [('demo', 'error', 2.0)]
    """
    if workers < 1:
        raise ValueError(f"workers must be >= 1, got {workers}")
    env = dict(os.environ)
    if workers > 1:  # share the cores instead of oversubscribing them
        try:
            cpus = len(os.sched_getaffinity(0))
        except AttributeError:  # pragma: no cover - not Linux
            cpus = os.cpu_count() or 1
        for k in _THREAD_VARS:
            env.setdefault(k, str(max(1, cpus // workers)))
    done = [0]

    def one(inst: Instance) -> dict[str, Any]:
        rec = run_one(inst, inst.timeout_s * timeout_scale, env)
        done[0] += 1
        flag = " (WRONG)" if is_wrong(inst.expected, rec["result"]) else ""
        log(f"[{done[0]}/{len(instances)}] {inst.label} -> {rec['result']}{flag} ({rec['wall_s']:.2f} s)")
        return rec

    if workers == 1:
        return [one(i) for i in instances]
    with ThreadPoolExecutor(workers) as pool:
        return list(pool.map(one, instances))


def _fmt(v: float | None) -> str:
    return "-" if v is None else f"{v:.2f}"


def text_table(result: dict[str, Any]) -> str:
    """The per-benchmark table and the start-up line.

    ``median_s``/``p90_s``/``max_s``: process wall times (start-up included); ``tool_s``: the
    median of the time the tool itself reports.

    Example:
        >>> s = benchmark_stats([{"result": "unsat", "expected": "unsat", "wall_s": 0.5, "runtime_s": 0.1}])
        >>> res = {"settings": {"timeout_scale": 1.0, "workers": 1}, "benchmarks": {"test": s}, "total": s,
        ...        "startup": {"python_s": 0.02, "import_axiom_s": 0.3, "verify_help_s": 0.31}}
        >>> print(text_table(res))  # doctest: +NORMALIZE_WHITESPACE
        verification: fresh `python -m axiom verify` process per instance, timeouts x1, 1 at a time
        benchmark   n  solved  correct  wrong  unsat  sat  unknown  timeout  error  median_s  p90_s  max_s  tool_s
        test        1       1        1      0      1    0        0        0      0      0.50   0.50   0.50    0.10
        TOTAL       1       1        1      0      1    0        0        0      0      0.50   0.50   0.50    0.10
        start-up: python 0.02 s, import axiom 0.30 s, axiom verify --help 0.31 s
    """
    s = result["settings"]
    cols = ["benchmark", "n", "solved", "correct", "wrong", *ANSWERS[:-1], "error"]
    cols = list(dict.fromkeys(cols)) + ["median_s", "p90_s", "max_s", "tool_s"]
    keys = {"tool_s": "runtime_median_s"}
    rows = [cols]
    for name, st in [*result["benchmarks"].items(), ("TOTAL", result["total"])]:
        cells = [name]
        for c in cols[1:]:
            v = st[keys.get(c, c)]
            cells.append(_fmt(v) if c.endswith("_s") else str(v))
        rows.append(cells)
    widths = [max(len(r[k]) for r in rows) for k in range(len(cols))]
    lines = [
        f"verification: fresh `python -m axiom verify` process per instance, timeouts x{s['timeout_scale']:g}, "
        f"{s['workers']} at a time"
    ]
    lines += ["  ".join(c.ljust(w) if k == 0 else c.rjust(w) for k, (c, w) in enumerate(zip(r, widths))) for r in rows]
    st = result.get("startup")
    if st:
        lines.append(
            f"start-up: python {st['python_s']:.2f} s, import axiom {st['import_axiom_s']:.2f} s, "
            f"axiom verify --help {st['verify_help_s']:.2f} s"
        )
    return "\n".join(lines)


def write_result(result: dict[str, Any], out_dir: str | Path) -> tuple[Path, Path]:
    """Write ``<out_dir>/<timestamp>-<host>-verify.json`` and ``<out_dir>/latest-verify.json``.

    Example:
        >>> import tempfile
        >>> with tempfile.TemporaryDirectory() as d:
        ...     paths = write_result({"created": "2026-11-22T04:31:00", "machine": {"host": "vm"}}, d)
        ...     [p.name for p in paths]
        ['20261122T043100-vm-verify.json', 'latest-verify.json']
    """
    from axiom.bench.report import write_named_result

    return write_named_result(result, out_dir, "verify")


def _positive(text: str) -> float:
    value = float(text)
    if not value > 0:
        raise argparse.ArgumentTypeError(f"must be > 0, got {text}")
    return value


def build_parser() -> argparse.ArgumentParser:
    """The parser of ``python -m axiom.bench verify``.

    Example:
        >>> a = build_parser().parse_args(["--filter", "acasxu", "--timeout-scale", "0.25", "--workers", "2"])
        >>> a.filter, a.timeout_scale, a.workers
        ('acasxu', 0.25, 2)
    """
    p = argparse.ArgumentParser(
        prog="python -m axiom.bench verify",
        description="Verification benchmark: every instance as a fresh `python -m axiom verify` process "
        "(start-up included); solved/correct/wrong and median/p90/max time per benchmark.",
    )
    p.add_argument("--instances", default=None, help=f"instances CSV (default: {DEFAULT_INSTANCES})")
    p.add_argument("--root", default=None, help="folder the CSV's paths are relative to (default: the CSV's)")
    p.add_argument("--filter", default=None, help="regular expression on benchmark/onnx/vnnlib paths")
    p.add_argument("--limit", type=int, default=None, help="at most N instances (after --filter)")
    p.add_argument("--timeout-scale", type=_positive, default=1.0, help="multiply each timeout by F (default 1)")
    p.add_argument("--workers", type=int, default=1, help="instances run at once (default 1)")
    p.add_argument("--out", default=None, help="directory for the JSON results (bench/results)")
    p.add_argument("--no-startup", action="store_true", help="skip the separate start-up measurement")
    return p


def main(argv: list[str] | None = None) -> int:
    """Entry point of ``python -m axiom.bench verify``; returns the exit code (1: a wrong answer or bad input).

    Example:
        >>> main(["--instances", "no/such/instances.csv"])  # the reason goes to stderr
        1
    """
    args = build_parser().parse_args(argv)
    csv_path = Path(args.instances) if args.instances else DEFAULT_INSTANCES
    if not csv_path.is_file():
        print(f"error: no instances CSV at {csv_path} (give one with --instances)", file=sys.stderr)
        return 1
    if args.workers < 1:
        print(f"error: --workers must be >= 1, got {args.workers}", file=sys.stderr)
        return 1
    try:
        instances = filter_instances(read_instances(csv_path, args.root), args.filter, args.limit)
    except (OSError, ValueError) as err:
        print(f"error: {err}", file=sys.stderr)
        return 1
    from axiom.bench.machine import machine_info

    result: dict[str, Any] = {
        "schema": SCHEMA,
        "created": dt.datetime.now().isoformat(timespec="seconds"),
        "command": ["python", "-m", "axiom.bench", "verify", *(argv if argv is not None else sys.argv[2:])],
        "what": "verify",
        "settings": {
            "instances": str(csv_path),
            "filter": args.filter,
            "limit": args.limit,
            "timeout_scale": args.timeout_scale,
            "workers": args.workers,
            "timing": "wall_s: fresh `python -m axiom verify NET SPEC --timeout T --json` process, start-up "
            "included; runtime_s: the time the tool reports (load + verify, no interpreter start-up)",
        },
        "machine": machine_info(),
    }
    if not args.no_startup:
        result["startup"] = measure_startup()
    t0 = time.perf_counter()
    log = lambda m: print(m, file=sys.stderr, flush=True)  # noqa: E731
    try:
        records = run_all(instances, args.timeout_scale, args.workers, log=log)
    except KeyboardInterrupt:
        print("\ninterrupted: no results written", file=sys.stderr)
        return 130
    result["seconds"] = time.perf_counter() - t0
    groups: dict[str, list[dict[str, Any]]] = {}
    for r in records:
        groups.setdefault(r["benchmark"], []).append(r)
    result["benchmarks"] = {name: benchmark_stats(rs) for name, rs in groups.items()}
    result["total"] = benchmark_stats(records)
    result["instances"] = records
    print(text_table(result))
    for r in records:
        if is_wrong(r["expected"], r["result"]):
            where = f"{r['benchmark']}: {r['onnx']} {r['vnnlib']}"
            print(f"!!! WRONG: {where}: expected {r['expected']}, got {r['result']}")
    stamped, latest = write_result(result, Path(args.out) if args.out else Path("bench/results"))
    print(f"results: {stamped} and {latest}")
    return 1 if result["total"]["wrong"] else 0
