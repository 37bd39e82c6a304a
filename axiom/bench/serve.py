"""``python -m axiom.bench serve``: requests/s and latency of the MLP served over REST and gRPC.

The MLP (:func:`axiom.train.examples.mlp_784`, 784-256-10, seeded weights) is saved as
safetensors and served by a separate ``python -m axiom serve W.safetensors --architecture
mlp_784 --rest 0 --grpc 0`` process on 127.0.0.1 (free ports, which it reports on stdout), so
client and server do not share an interpreter (or its GIL). Real clients drive it over
loopback: ``tritonclient.http`` with the binary tensor extension (``rest``) and with JSON
tensors (``rest-json``), and ``tritonclient.grpc`` (``grpc``). Each case sends one request at a time (closed loop, one
client): ``warmup`` untimed requests, then ``requests`` timed ones; it records requests/s,
samples/s, p50 / p99 / mean latency (ms) and the largest difference between the served output
and the model run locally. gRPC is measured when :mod:`axiom.serve.grpc` exists at run time
(else the result says ``"grpc": "not available"``). Results go to
``<out>/<timestamp>-<host>-serve.json`` and ``<out>/latest-serve.json`` (``bench/results``).

Example:
    >>> latency_stats([0.001, 0.002, 0.003, 0.004], batch=2)["p50_ms"]
    2.5
"""

from __future__ import annotations

import argparse
import datetime as dt
import importlib.util
import os
import subprocess
import sys
import tempfile
import threading
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np

SCHEMA = "axiom-bench-serve/1"
REPO = Path(__file__).resolve().parents[2]
BATCHES = (1, 32)
NAME = "mlp_784"

__all__ = ["build_parser", "latency_stats", "main"]


def latency_stats(seconds: list[float], batch: int) -> dict[str, float]:
    """Requests/s, samples/s and p50 / p99 / mean latency (ms) of sequential request times.

    Example:
        >>> s = latency_stats([0.5] * 4, batch=32)
        >>> s["requests_per_s"], s["samples_per_s"], s["p99_ms"]
        (2.0, 64.0, 500.0)
    """
    arr = np.asarray(seconds, dtype=np.float64)
    total = float(arr.sum())
    return {
        "requests": int(arr.size),
        "requests_per_s": arr.size / total,
        "samples_per_s": arr.size * batch / total,
        "p50_ms": float(np.percentile(arr, 50) * 1e3),
        "p99_ms": float(np.percentile(arr, 99) * 1e3),
        "mean_ms": float(arr.mean() * 1e3),
    }


def _time_case(call: Callable[[], np.ndarray], want: np.ndarray, warmup: int, requests: int) -> dict[str, Any]:
    got = call()
    max_diff = float(np.max(np.abs(got - want)))
    for _ in range(warmup):
        call()
    times = []
    for _ in range(requests):
        t0 = time.perf_counter()
        call()
        times.append(time.perf_counter() - t0)
    return {**latency_stats(times, len(want)), "max_abs_diff": max_diff}


def _rest_call(client: Any, x: np.ndarray, binary: bool) -> Callable[[], np.ndarray]:
    import tritonclient.http as httpclient

    def call() -> np.ndarray:
        inp = httpclient.InferInput("input", list(x.shape), "FP32")
        inp.set_data_from_numpy(x, binary_data=binary)
        out = httpclient.InferRequestedOutput("output", binary_data=binary)
        return client.infer(NAME, [inp], outputs=[out]).as_numpy("output")

    return call


def _grpc_call(client: Any, x: np.ndarray) -> Callable[[], np.ndarray]:
    import tritonclient.grpc as grpcclient

    def call() -> np.ndarray:
        inp = grpcclient.InferInput("input", list(x.shape), "FP32")
        inp.set_data_from_numpy(x)
        return client.infer(NAME, [inp], outputs=[grpcclient.InferRequestedOutput("output")]).as_numpy("output")

    return call


def _wait_urls(proc: subprocess.Popen, flags: list[str], timeout: float = 60.0) -> dict[str, str]:
    """The ``host:port`` each server of the child reports (``axiom serve: FLAG URL ...`` lines)."""
    watchdog = threading.Timer(timeout, proc.kill)  # a child that never reports is killed: readline ends
    watchdog.start()
    urls: dict[str, str] = {}
    seen: list[str] = []
    try:
        while len(urls) < len(flags):
            line = proc.stdout.readline() if proc.stdout else ""
            if not line:
                raise RuntimeError(f"axiom serve exited before serving: {''.join(seen)}")
            seen.append(line)
            parts = line.split()
            if len(parts) >= 4 and parts[:2] == ["axiom", "serve:"] and parts[2] in flags:
                urls[parts[2]] = parts[3].split("://", 1)[-1]
    finally:
        watchdog.cancel()
    return urls


def _run_benchmark(warmup: int, requests: int, log: Callable[[str], None] = print) -> dict[str, Any]:
    """Serve the MLP in a child process and time every (protocol, batch) case; the ``cases`` part of the result."""
    import tritonclient.http as httpclient

    from axiom.nn.init import manual_seed
    from axiom.nn.state import save_safetensors
    from axiom.train.examples import mlp_784

    manual_seed(0)
    model = mlp_784()
    grpc_available = importlib.util.find_spec("axiom.serve.grpc") is not None
    rng = np.random.default_rng(0)
    cases: list[dict[str, Any]] = []
    with tempfile.TemporaryDirectory() as tmp:
        weights = Path(tmp) / f"{NAME}.safetensors"
        save_safetensors(model.state_dict(), weights)
        flags = ["rest", "grpc"] if grpc_available else ["rest"]
        cmd = [sys.executable, "-m", "axiom", "serve", str(weights), "--architecture", NAME]
        for flag in flags:
            cmd += [f"--{flag}", "0"]  # the child binds free ports and reports them
        env = {**os.environ, "PYTHONPATH": os.pathsep.join([str(REPO), os.environ.get("PYTHONPATH", "")])}
        proc = subprocess.Popen(cmd, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True, env=env)
        try:
            urls = _wait_urls(proc, flags)
            rest = httpclient.InferenceServerClient(urls["rest"])
            grpc = None
            if grpc_available:
                import tritonclient.grpc as grpcclient

                grpc = grpcclient.InferenceServerClient(urls["grpc"])
            for batch in BATCHES:
                x = rng.normal(size=(batch, 784)).astype(np.float32)
                want = np.asarray(model(x))
                calls = {"rest": _rest_call(rest, x, True), "rest-json": _rest_call(rest, x, False)}
                if grpc is not None:
                    calls["grpc"] = _grpc_call(grpc, x)
                for protocol, call in calls.items():
                    stats = _time_case(call, want, warmup, requests)
                    cases.append({"protocol": protocol, "batch": batch, **stats})
                    log(
                        f"{protocol:<10} batch {batch:>3}: {stats['requests_per_s']:8.1f} req/s "
                        f"p50 {stats['p50_ms']:6.2f} ms  p99 {stats['p99_ms']:6.2f} ms  "
                        f"max diff {stats['max_abs_diff']:.1e}"
                    )
            rest.close()
            if grpc is not None:
                grpc.close()
        finally:
            proc.terminate()
            try:
                proc.wait(timeout=10)
            except subprocess.TimeoutExpired:
                proc.kill()
                proc.wait()
    return {"cases": cases, "grpc": "measured" if grpc_available else "not available"}


def build_parser() -> argparse.ArgumentParser:
    """The parser of ``python -m axiom.bench serve``.

    Example:
        >>> build_parser().parse_args(["--quick"]).quick
        True
    """
    p = argparse.ArgumentParser(
        prog="python -m axiom.bench serve",
        description="Requests/s and p50/p99 latency of the 784-256-10 MLP over REST (tritonclient.http, "
        "binary and JSON) and gRPC (tritonclient.grpc), batch 1 and 32, on loopback.",
    )
    p.add_argument("--quick", action="store_true", help="few requests (for tests, a few seconds)")
    p.add_argument("--requests", type=int, default=None, help="timed requests per case (1000; --quick: 30)")
    p.add_argument("--warmup", type=int, default=None, help="untimed requests per case (50; --quick: 5)")
    p.add_argument("--out", default=None, help="directory for the JSON results (bench/results)")
    return p


def main(argv: list[str] | None = None) -> int:
    """Entry point of ``python -m axiom.bench serve``; returns the exit code.

    Example:
        >>> import os, tempfile
        >>> with tempfile.TemporaryDirectory() as d:
        ...     code = main(["--requests", "3", "--warmup", "1", "--out", d])  # doctest: +ELLIPSIS
        ...     code, sorted(os.listdir(d))[-1]
        rest       batch   1: ...
        (0, 'latest-serve.json')
    """
    from axiom.bench.machine import machine_info
    from axiom.bench.report import write_named_result

    args = build_parser().parse_args(argv)
    requests = args.requests if args.requests is not None else (30 if args.quick else 1000)
    warmup = args.warmup if args.warmup is not None else (5 if args.quick else 50)
    result: dict[str, Any] = {
        "schema": SCHEMA,
        "created": dt.datetime.now().isoformat(timespec="seconds"),
        "command": ["python", "-m", "axiom.bench", "serve", *(argv if argv is not None else sys.argv[2:])],
        "what": "serve",
        "settings": {
            "model": NAME,
            "batches": list(BATCHES),
            "requests": requests,
            "warmup": warmup,
            "client": "tritonclient, one request at a time",
            "server": "python -m axiom serve (child)",
        },  # fmt: skip
        "machine": machine_info(),
    }
    result.update(_run_benchmark(warmup, requests))
    paths = write_named_result(result, args.out or REPO / "bench" / "results", "serve")
    print(f"wrote {paths[0]}", file=sys.stderr)
    bad = [c for c in result["cases"] if c["max_abs_diff"] > 1e-4]
    return 1 if bad else 0
