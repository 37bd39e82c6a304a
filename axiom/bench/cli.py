"""``python -m axiom.bench``: run the kernel and model benchmarks, write JSON, plot and README table.

Each thread setting runs in a child process whose environment sets ``OMP_NUM_THREADS``,
``OPENBLAS_NUM_THREADS`` and ``MKL_NUM_THREADS`` to it, ``OPENBLAS_THREAD_TIMEOUT=4`` (idle OpenBLAS
threads sleep instead of busy-waiting) and ``OMP_WAIT_POLICY=PASSIVE``
(OpenMP and OpenBLAS read these once, at process start); the child also calls
``torch.set_num_threads`` and, where installed, ``threadpoolctl.threadpool_limits``.
The parent merges the children's results, prints the tables (fp32 peak first), writes
``<out>/<timestamp>-<host>.json`` and ``<out>/latest.json``, the plot, and with
``--update-readme`` the Markdown tables between the bench markers of README.md.
``kernels --backend cuda|opencl`` times the GPU kernels on device-resident data instead
(:mod:`axiom.bench.gpu`).

Example:
    >>> args = build_parser().parse_args(["kernels", "--threads", "1,2", "--quick"])
    >>> args.what, parse_threads(args.threads), args.quick
    ('kernels', [1, 2], True)
"""

from __future__ import annotations

import argparse
import datetime as dt
import json
import math
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

from axiom.bench import report
from axiom.bench.machine import cpu_pressure, load_average, machine_info

SCHEMA = "axiom-bench/1"


def parse_threads(text: str) -> list[int]:
    """``"1,2"`` -> ``[1, 2]`` (positive, de-duplicated, in order).

    Example:
        >>> parse_threads("2, 1,2")
        [2, 1]
    """
    out: list[int] = []
    for part in text.split(","):
        n = int(part)
        if n <= 0:
            raise ValueError(f"thread counts must be positive, got {n}")
        if n not in out:
            out.append(n)
    return out


def settings_for(quick: bool, repeat: int | None = None) -> dict[str, Any]:
    """Timing settings: rounds, minimum sample length, time budget per case, peak loop length.

    Example:
        >>> settings_for(quick=True)["repeat"], settings_for(quick=False, repeat=5)["repeat"]
        (3, 5)
    """
    return {
        "quick": quick,
        "repeat": repeat if repeat is not None else (3 if quick else 11),
        "min_sample_s": 0.001 if quick else 0.005,
        "budget_s": 1.5 if quick else 20.0,
        "peak_seconds": 0.02 if quick else 0.1,
        "peak_repeat": 2 if quick else 5,
    }


def build_parser() -> argparse.ArgumentParser:
    """The command-line parser of ``python -m axiom.bench``.

    Example:
        >>> build_parser().parse_args(["models", "--filter", "cnn", "--no-plot"]).no_plot
        True
    """
    p = argparse.ArgumentParser(
        prog="python -m axiom.bench",
        description="Benchmark axiom's kernels and models against NumPy, PyTorch and onnxruntime. "
        "Training steps/s: `python -m axiom.bench train` (see its --help).",
    )
    p.add_argument(
        "what",
        choices=["kernels", "models", "all", "readme", "_worker"],
        help="what to run; `readme` regenerates the README tables from a JSON result",
    )
    p.add_argument("--threads", default="1,2", help="comma-separated thread counts, one child process each (1,2)")
    p.add_argument("--quick", action="store_true", help="few shapes and rounds (for tests and CI, < 60 s)")
    p.add_argument("--repeat", type=int, default=None, help="interleaved rounds per case (11; --quick: 3)")
    p.add_argument("--out", default=None, help="directory for the JSON results (bench/results)")
    p.add_argument("--plot-dir", default=None, help="directory for latest.png (bench/plots, or --out when given)")
    p.add_argument("--no-plot", action="store_true", help="do not write the PNG plot")
    p.add_argument("--filter", default=None, help="regular expression on kernel/model names")
    p.add_argument("--backends", default=None, help="comma-separated axiom backends (all available CPU backends)")
    p.add_argument(
        "--backend",
        choices=["cuda", "opencl"],
        default=None,
        help="`kernels` only: time the GPU kernels of this backend with their data on the device, against "
        "torch on the GPU (cuda) or the CPU (axiom.bench.gpu); writes bench/results/gpu-<backend>-<device>-*.json",
    )
    p.add_argument("--time-fallbacks", action="store_true", help="also time ops that run on a fallback (labelled)")
    p.add_argument(
        "--update-readme",
        nargs="?",
        const="README.md",
        default=None,
        metavar="PATH",
        help="regenerate the tables between the bench markers of PATH (README.md) and of bench/README.md",
    )
    p.add_argument("--from", dest="from_json", default=None, help="`readme`: the JSON result (<out>/latest.json)")
    p.add_argument("--json-out", default=None, help=argparse.SUPPRESS)  # _worker: where to write its run
    return p


def _progress(msg: str) -> None:
    print(msg, file=sys.stderr, flush=True)


def _limit_threads(threads: int) -> dict[str, Any]:
    """Apply ``threads`` to torch and (if installed) threadpoolctl; report what is in effect."""
    info: dict[str, Any] = {
        "env": {
            k: os.environ.get(k)
            for k in ("OMP_NUM_THREADS", "OMP_WAIT_POLICY", "GOMP_SPINCOUNT", "OPENBLAS_THREAD_TIMEOUT")
        }
    }
    try:
        import threadpoolctl

        threadpoolctl.threadpool_limits(threads)
        info["threadpoolctl"] = [
            {k: d.get(k) for k in ("internal_api", "num_threads", "architecture")}
            for d in threadpoolctl.threadpool_info()
        ]
    except ImportError:
        info["threadpoolctl"] = None
    try:
        import torch

        torch.set_num_threads(threads)
        torch.set_grad_enabled(False)
        info["torch_threads"] = torch.get_num_threads()
    except ImportError:
        info["torch_threads"] = None
    return info


def run_inprocess(
    what: str,
    threads: int,
    settings: dict[str, Any],
    filter: str | None = None,
    backends: list[str] | None = None,
    time_fallbacks: bool = False,
    log: Any = _progress,
) -> dict[str, Any]:
    """Run one thread setting in this process and return its ``run`` record.

    Thread counts of OpenBLAS/OpenMP are whatever this process started with; the command
    line runs each setting in a child process with the environment set (see the module
    docstring).

    Example:
        >>> run = run_inprocess("kernels", 1, settings_for(True, repeat=1), filter="^matmul 32x",
        ...                     backends=["numpy"], log=lambda m: None)
        >>> [k["name"] for k in run["kernels"]], run["peak"]["threads"]
        (['matmul 32x784x256'], 1)
    """
    from axiom.bench.kernels import backend_info, bench_backends, kernel_cases, run_case
    from axiom.bench.models import model_cases, run_model_case
    from axiom.bench.peak import measure_peak

    limits = _limit_threads(threads)
    try:
        import torch  # noqa: F401

        have_torch = True
    except ImportError:
        have_torch = False
    bes = bench_backends(backends)
    run: dict[str, Any] = {
        "threads": threads,
        "limits": limits,
        "load_avg_start": load_average(),
        "cpu_pressure_start": cpu_pressure(),
        "backends": {name: backend_info(be) for name, be in bes.items()},
    }
    tag = f"[{threads}T]"
    run["peak"] = peak = measure_peak(threads, settings["peak_seconds"], settings["peak_repeat"])
    if peak.get("gflops"):
        log(f"{tag} fp32 peak {peak['gflops']:.1f} GFLOP/s ({peak['gflops_per_thread']:.1f} per thread)")
    else:
        log(f"{tag} fp32 peak unavailable: {peak.get('reason')}")
    timing = {k: settings[k] for k in ("repeat", "min_sample_s", "budget_s")}
    run["kernels"] = []
    if what in ("kernels", "all"):
        cases = kernel_cases(quick=settings["quick"], filter=filter)
        for i, case in enumerate(cases, 1):
            t0 = time.perf_counter()
            rec = run_case(
                case, bes, torch=have_torch, time_fallbacks=time_fallbacks, peak_gflops=peak.get("gflops"), **timing
            )
            run["kernels"].append(rec)
            log(f"{tag} kernel {i}/{len(cases)} {case.name}: {time.perf_counter() - t0:.1f} s")
        # backends may have recorded more fallbacks while running
        run["backends"] = {name: backend_info(be) for name, be in bes.items()}
    run["models"] = []
    if what in ("models", "all"):
        try:
            import onnxruntime  # noqa: F401

            have_ort = have_torch
        except ImportError:
            have_ort = False
        cases = model_cases(quick=settings["quick"], filter=filter)
        for i, case in enumerate(cases, 1):
            t0 = time.perf_counter()
            rec = run_model_case(case, bes, threads=threads, torch=have_torch, onnxruntime=have_ort, **timing)
            run["models"].append(rec)
            log(f"{tag} model {i}/{len(cases)} {case.name}: {time.perf_counter() - t0:.1f} s")
    run["load_avg_end"] = load_average()
    run["cpu_pressure_end"] = cpu_pressure()
    return run


def _child_env(threads: int) -> dict[str, str]:
    env = dict(os.environ)
    for key in ("OMP_NUM_THREADS", "OPENBLAS_NUM_THREADS", "MKL_NUM_THREADS"):
        env[key] = str(threads)
    env["OMP_WAIT_POLICY"] = "PASSIVE"
    # OpenBLAS (NumPy's baseline) lets its idle threads busy-wait ~2**28 cycles after each call,
    # taking the other core from whichever backend is timed next in the interleaved loop (2-thread
    # attention read 2x slow on every backend); 2**4 makes them sleep at once
    env.setdefault("OPENBLAS_THREAD_TIMEOUT", "4")
    return env


def _run_child(args: argparse.Namespace, threads: int, workdir: str) -> dict[str, Any]:
    out = os.path.join(workdir, f"run-{threads}.json")
    cmd = [sys.executable, "-m", "axiom.bench", "_worker", "--threads", str(threads), "--json-out", out]
    cmd += ["--quick"] if args.quick else []
    cmd += ["--repeat", str(args.repeat)] if args.repeat is not None else []
    cmd += ["--filter", args.filter] if args.filter else []
    cmd += ["--backends", args.backends] if args.backends else []
    cmd += ["--time-fallbacks"] if args.time_fallbacks else []
    env = _child_env(threads)
    env["AXIOM_BENCH_WHAT"] = args.what
    proc = subprocess.run(cmd, env=env)
    if proc.returncode != 0 or not os.path.exists(out):
        raise RuntimeError(f"the {threads}-thread benchmark process failed (exit code {proc.returncode})")
    with open(out, encoding="utf-8") as f:
        return json.load(f)


def _paths(args: argparse.Namespace) -> tuple[Path, Path]:
    out = Path(args.out) if args.out else Path("bench/results")
    plots = Path(args.plot_dir) if args.plot_dir else (out if args.out else Path("bench/plots"))
    return out, plots


def _rounded(value: Any, digits: int = 5) -> Any:
    """Floats rounded to ``digits`` significant digits, recursively (keeps the JSON small)."""
    if isinstance(value, float):
        return float(f"{value:.{digits}g}") if math.isfinite(value) else None
    if isinstance(value, dict):
        return {k: _rounded(v, digits) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [_rounded(v, digits) for v in value]
    return value


def write_result(result: dict[str, Any], out_dir: str | Path) -> tuple[Path, Path]:
    """Write ``<out_dir>/<timestamp>-<host>.json`` and ``<out_dir>/latest.json``; return both paths.

    Example:
        >>> import tempfile
        >>> with tempfile.TemporaryDirectory() as d:
        ...     stamped, latest = write_result({"created": "2026-11-22T04:31:00", "machine": {"host": "vm"}}, d)
        ...     stamped.name, latest.name
        ('20261122T043100-vm.json', 'latest.json')
    """
    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    stamp = result.get("created", "").replace("-", "").replace(":", "")[:15] or "result"
    host = report._slug(result.get("machine", {}).get("host", "host"))
    text = json.dumps(_rounded(result), indent=1, sort_keys=False, default=str) + "\n"
    stamped = out / f"{stamp}-{host}.json"
    latest = out / "latest.json"
    stamped.write_text(text, encoding="utf-8")
    latest.write_text(text, encoding="utf-8")
    return stamped, latest


def _update_readmes(path: str, result: dict[str, Any]) -> None:
    readme = Path(path)
    changed = report.update_readme(readme, result)
    print(f"{readme}: {'updated' if changed else 'unchanged'}")
    full = readme.parent / "bench" / "README.md"
    if full.exists() and report.README_START in full.read_text(encoding="utf-8"):
        changed = report.update_readme(full, result, full=True)
        print(f"{full}: {'updated' if changed else 'unchanged'}")


def main(argv: list[str] | None = None) -> int:
    """Entry point of ``python -m axiom.bench``; returns the exit code.

    Example:
        >>> import tempfile, os
        >>> with tempfile.TemporaryDirectory() as d:
        ...     code = main(["kernels", "--threads", "1", "--quick", "--repeat", "1", "--filter", "^matmul 32x",
        ...                  "--backends", "numpy", "--out", d, "--no-plot"])
        ...     code, sorted(os.listdir(d))[-1]  # doctest: +ELLIPSIS
        axiom.bench on ...
        (0, 'latest.json')
    """
    parser = build_parser()
    args = parser.parse_args(argv)
    if args.backend is not None:
        if args.what != "kernels":
            parser.error("--backend (a GPU backend) goes with `kernels` only")
        from axiom.bench.gpu import main_gpu

        return main_gpu(args)
    backends = args.backends.split(",") if args.backends else None
    settings = settings_for(args.quick, args.repeat)
    if args.what == "_worker":
        what = os.environ.get("AXIOM_BENCH_WHAT", "all")
        threads = parse_threads(args.threads)[0]
        run = run_inprocess(what, threads, settings, args.filter, backends, args.time_fallbacks)
        with open(args.json_out, "w", encoding="utf-8") as f:
            json.dump(run, f, default=str)
        return 0
    out_dir, plot_dir = _paths(args)
    if args.what == "readme":
        src = Path(args.from_json) if args.from_json else out_dir / "latest.json"
        result = json.loads(src.read_text(encoding="utf-8"))
        _update_readmes(args.update_readme or "README.md", result)
        return 0
    result: dict[str, Any] = {
        "schema": SCHEMA,
        "created": dt.datetime.now().isoformat(timespec="seconds"),
        "command": ["python", "-m", "axiom.bench", *(argv if argv is not None else sys.argv[1:])],
        "what": args.what,
        "settings": {**settings, "threads": parse_threads(args.threads), "filter": args.filter},
        "machine": machine_info(),
        "runs": [],
    }
    failed = []
    with tempfile.TemporaryDirectory() as work:
        for threads in result["settings"]["threads"]:
            try:
                result["runs"].append(_run_child(args, threads, work))
            except RuntimeError as e:  # a crashing kernel must not lose the other settings' results
                print(f"error: {e}", file=sys.stderr)
                failed.append({"threads": threads, "error": str(e)})
    result["load_avg_end"] = load_average()
    if failed:
        result["failed_runs"] = failed
    print(report.text_header(result))
    print()
    for run in result["runs"]:
        print(report.text_tables(run))
        print()
    stamped, latest = write_result(result, out_dir)
    print(f"results: {stamped} and {latest}")
    if not args.no_plot:
        print(f"plot: {report.plot(result, plot_dir / 'latest.png')}")
    if args.update_readme and not failed:
        _update_readmes(args.update_readme, result)
    return 1 if failed else 0
