"""``python -m axiom.bench train``: training steps per second, axiom vs PyTorch CPU eager, one thread.

A training step is forward + cross-entropy loss + backward + Adam step (``lr=1e-3``) on one
fixed batch of 64. Two models (from :mod:`axiom.train.examples`):

- ``digits_cnn B64``: the digits CNN on 8x8x1 inputs;
- ``mlp_784 B64``: Dense 784-256 (ReLU), Dense 256-10.

The PyTorch twin has the same architecture and starts from the same weights (NCHW, ``(out,
in)`` weights, and the dense layer after the flatten has its rows permuted from NHWC to NCHW
order). Before timing, both take three steps from those weights and their losses are compared
(``check``). Timing is interleaved (:mod:`axiom.bench.timing`): per round each implementation
runs enough steps to last ``min_sample_s``; ``ratio`` is the median over rounds of ``torch ms /
axiom ms``, i.e. axiom's steps/s divided by torch's (> 1: axiom is faster); ``cpu_ratio`` (the
table's "(cpu)" column) is the same from the calling thread's CPU time, which time-slicing on a
busy machine does not inflate. The run happens in a child process with
``OMP_NUM_THREADS``/``OPENBLAS_NUM_THREADS``/``MKL_NUM_THREADS=1`` and
``OMP_WAIT_POLICY=PASSIVE`` set before start, plus ``torch.set_num_threads(1)`` and
threadpoolctl, as the kernel benchmarks do. axiom runs on the C backend (the NumPy reference
when the C kernels are not built; the JSON says which). Results go to
``<out>/<timestamp>-<host>-train.json`` and ``<out>/latest-train.json`` (``bench/results`` by
default).

Example:
    >>> run = run_inprocess(settings_for(quick=True, repeat=1), filter="mlp", log=lambda m: None, torch=False)
    >>> case = run["cases"][0]
    >>> case["name"], case["axiom"]["steps_per_s"] > 0
    ('mlp_784 B64', True)
"""

from __future__ import annotations

import argparse
import datetime as dt
import json
import os
import re
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np

SCHEMA = "axiom-bench-train/1"
BATCH = 64
LR = 1e-3
#: Largest difference between the axiom and torch losses over the check steps to count as agreeing.
LOSS_ATOL = 1e-4
CHECK_STEPS = 3

MODELS = ("digits_cnn", "mlp_784")


def settings_for(quick: bool, repeat: int | None = None) -> dict[str, Any]:
    """Timing settings: interleaved rounds, minimum sample length, time budget per case.

    Example:
        >>> settings_for(quick=True)["repeat"], settings_for(quick=False)["repeat"]
        (3, 21)
    """
    return {
        "quick": quick,
        "repeat": repeat if repeat is not None else (3 if quick else 21),
        "min_sample_s": 0.005 if quick else 0.05,
        "budget_s": 1.5 if quick else 20.0,
    }


def _input_shape(name: str) -> tuple[int, ...]:
    return (8, 8, 1) if name == "digits_cnn" else (784,)


def build_models(name: str, seed: int = 0, torch: bool = True) -> tuple[Any, Any]:
    """The axiom model and (with ``torch``) its PyTorch twin with the same weights.

    Example:
        >>> am, tm = build_models("digits_cnn", torch=False)
        >>> am.output_shape(("batch", 8, 8, 1)), tm
        (('batch', 10), None)
    """
    from axiom.nn import init
    from axiom.train import examples

    if name not in MODELS:
        raise ValueError(f"unknown model {name!r}; expected one of {', '.join(MODELS)}")
    init.manual_seed(seed)
    amodel = getattr(examples, name)()
    if not torch:
        return amodel, None
    import torch as th
    from torch import nn

    state = amodel.state_dict()
    if name == "mlp_784":
        tmodel = nn.Sequential(nn.Linear(784, 256), nn.ReLU(), nn.Linear(256, 10))
        tstate = {
            "0.weight": state["0.weight"].T,
            "0.bias": state["0.bias"],
            "2.weight": state["1.weight"].T,
            "2.bias": state["1.bias"],
        }
    else:
        tmodel = nn.Sequential(
            nn.Conv2d(1, 16, 3, padding=1),
            nn.ReLU(),
            nn.Conv2d(16, 32, 3, padding=1),
            nn.ReLU(),
            nn.MaxPool2d(2),
            nn.Flatten(),
            nn.Linear(512, 64),
            nn.ReLU(),
            nn.Linear(64, 10),
        )
        # NHWC flatten order (h, w, c) -> NCHW order (c, h, w) for the rows of the first dense layer
        dense = state["4.weight"].reshape(4, 4, 32, 64).transpose(2, 0, 1, 3).reshape(512, 64)
        tstate = {
            "0.weight": state["0.weight"].transpose(3, 2, 0, 1),
            "0.bias": state["0.bias"],
            "2.weight": state["1.weight"].transpose(3, 2, 0, 1),
            "2.bias": state["1.bias"],
            "6.weight": dense.T,
            "6.bias": state["4.bias"],
            "8.weight": state["5.weight"].T,
            "8.bias": state["5.bias"],
        }
    tmodel.load_state_dict({k: th.from_numpy(np.ascontiguousarray(v)) for k, v in tstate.items()})
    return amodel, tmodel


def batch(name: str, size: int = BATCH, seed: int = 1) -> tuple[np.ndarray, np.ndarray]:
    """A fixed float32 input batch (axiom layout) and integer labels.

    Example:
        >>> x, y = batch("digits_cnn", 4)
        >>> x.shape, y.dtype.name
        ((4, 8, 8, 1), 'int64')
    """
    rng = np.random.default_rng(seed)
    x = rng.random((size, *_input_shape(name)), dtype=np.float32)
    return x, rng.integers(0, 10, size).astype(np.int64)


def axiom_step(model: Any, x: np.ndarray, y: np.ndarray) -> Callable[[], float]:
    """One training step of the axiom model (Adam, cross-entropy); calling it returns the loss.

    Example:
        >>> am, _ = build_models("mlp_784", torch=False)
        >>> step = axiom_step(am, *batch("mlp_784", 8))
        >>> step() > step()  # the loss goes down on a fixed batch
        True
    """
    from axiom.train.losses import cross_entropy
    from axiom.train.optim import Adam

    model.train()
    opt = Adam(model.parameters(), lr=LR)

    def step() -> float:
        opt.zero_grad()
        loss = cross_entropy(model(x), y)
        loss.backward()
        opt.step()
        return float(loss.item())

    return step


def torch_step(model: Any, x: np.ndarray, y: np.ndarray) -> Callable[[], float]:
    """The same step in PyTorch eager (input converted to NCHW once, outside the step).

    Example:
        >>> import pytest; torch = pytest.importorskip("torch")
        >>> _, tm = build_models("mlp_784")
        >>> step = torch_step(tm, *batch("mlp_784", 8))
        >>> step() > step()
        True
    """
    import torch as th

    xt = th.from_numpy(np.ascontiguousarray(x.transpose(0, 3, 1, 2)) if x.ndim == 4 else x)
    yt = th.from_numpy(y)
    model.train()
    opt = th.optim.Adam(model.parameters(), lr=LR)

    def step() -> float:
        with th.enable_grad():  # the benchmark CLI switches torch's autograd off for inference timing
            opt.zero_grad()
            loss = th.nn.functional.cross_entropy(model(xt), yt)
            loss.backward()
            opt.step()
        return float(loss.item())

    return step


def _backend() -> tuple[Any, str]:
    from axiom.backends import available_backends, get_backend

    if "c" in available_backends():
        return get_backend("c"), "c"
    return get_backend("numpy"), "numpy"


def run_case(
    name: str, settings: dict[str, Any], torch: bool = True, log: Callable[[str], None] = print
) -> dict[str, Any]:
    """Check and time one model: returns its JSON record (steps/s of each, ratio, loss check, fallbacks).

    Example:
        >>> rec = run_case("mlp_784", settings_for(True, repeat=1), torch=False, log=lambda m: None)
        >>> rec["batch"], rec["torch"], rec["ratio"]
        (64, None, None)
    """
    import warnings

    from axiom.backends import FallbackWarning, use_backend
    from axiom.bench.timing import cpu_ratio, interleave, ratio

    be, be_name = _backend()
    if isinstance(getattr(be, "fallbacks", None), dict):
        be.fallbacks.clear()
    x, y = batch(name)
    rec: dict[str, Any] = {
        "name": f"{name} B{BATCH}",
        "model": name,
        "batch": BATCH,
        "input_shape": [BATCH, *_input_shape(name)],
        "optimizer": f"Adam(lr={LR})",
        "loss": "cross_entropy",
    }
    with use_backend(be), warnings.catch_warnings():
        warnings.simplefilter("ignore", FallbackWarning)  # recorded in be.fallbacks and reported
        amodel, tmodel = build_models(name, torch=torch)
        rec["params"] = int(sum(p.size for p in amodel.parameters()))
        fns: dict[str, Callable[[], float]] = {}
        # the check: same weights, same batch, same optimizer -> same losses for a few steps
        a_check = axiom_step(amodel, x, y)
        a_losses = [a_check() for _ in range(CHECK_STEPS)]
        amodel, tmodel = build_models(name, torch=torch)
        fns["axiom"] = axiom_step(amodel, x, y)
        if tmodel is not None:
            t_check = torch_step(tmodel, x, y)
            t_losses = [t_check() for _ in range(CHECK_STEPS)]
            diff = float(np.max(np.abs(np.array(a_losses) - np.array(t_losses))))
            rec["check"] = {"axiom_losses": a_losses, "torch_losses": t_losses, "max_diff": diff}
            rec["check"]["agree"] = diff <= LOSS_ATOL
            _, tmodel = build_models(name, torch=True)
            fns["torch"] = torch_step(tmodel, x, y)
        else:
            rec["check"] = {"axiom_losses": a_losses}
        for fn in fns.values():  # warm-up (allocations, first-call costs)
            fn()
        timings = interleave(fns, settings["repeat"], settings["min_sample_s"], settings["budget_s"])
    fallbacks = getattr(be, "fallbacks", None)
    for impl, t in timings.items():
        entry = {
            "median_ms": t.median_ms,
            "best_ms": t.best_ms,
            "cpu_median_ms": t.cpu_median_ms,
            "steps_per_s": 1e3 / t.median_ms,
            "rounds": len(t.wall_ms),
            "steps_per_sample": t.number,
        }
        if impl == "axiom":
            entry["backend"] = be_name
            entry["fallbacks"] = dict(fallbacks) if isinstance(fallbacks, dict) else {}
        rec[impl] = entry
    rec.setdefault("torch", None)
    if "torch" in timings:
        rec["ratio"] = ratio(timings["torch"], timings["axiom"])
        rec["cpu_ratio"] = cpu_ratio(timings["torch"], timings["axiom"])
    else:
        rec["ratio"] = rec["cpu_ratio"] = None
    log(f"train {rec['name']}: axiom {rec['axiom']['steps_per_s']:.0f} steps/s")
    return rec


def run_inprocess(
    settings: dict[str, Any],
    filter: str | None = None,
    log: Callable[[str], None] = print,
    torch: bool | None = None,
    threads: int = 1,
) -> dict[str, Any]:
    """Every case in this process (thread limits applied here; env-var limits are the parent's job).

    Example:
        >>> run = run_inprocess(settings_for(True, repeat=1), filter="^mlp", log=lambda m: None, torch=False)
        >>> [c["name"] for c in run["cases"]], run["threads"]
        (['mlp_784 B64'], 1)
    """
    from axiom.bench.cli import _limit_threads
    from axiom.bench.kernels import backend_info

    limits = _limit_threads(threads)
    if torch is None:
        try:
            import torch as _  # noqa: F401

            torch = True
        except ImportError:
            torch = False
    names = [m for m in MODELS if not filter or re.search(filter, f"{m} B{BATCH}")]
    run: dict[str, Any] = {"threads": threads, "limits": limits, "torch": bool(torch)}
    run["cases"] = [run_case(n, settings, torch=torch, log=log) for n in names]
    be, _ = _backend()
    run["backend"] = backend_info(be)
    return run


def text_table(run: dict[str, Any]) -> str:
    """The result table: steps/s of axiom and torch and their ratio, per model.

    Example:
        >>> rec = {"name": "mlp_784 B64", "axiom": {"steps_per_s": 500.0, "backend": "c", "fallbacks": {}},
        ...        "torch": {"steps_per_s": 1000.0}, "ratio": 0.5, "cpu_ratio": 0.55,
        ...        "check": {"agree": True, "max_diff": 1e-7}}
        >>> print(text_table({"threads": 1, "cases": [rec]}))  # doctest: +NORMALIZE_WHITESPACE
        training steps/s, 1 thread (forward + cross-entropy + backward + Adam), batch 64
        model              axiom (c)      torch   axiom/torch   (cpu)   check
        mlp_784 B64            500.0     1000.0         0.50x   0.55x   losses agree (max diff 1.0e-07)
    """
    cases = run["cases"]
    backend = cases[0]["axiom"].get("backend", "?") if cases else "?"
    t = run["threads"]
    lines = [
        f"training steps/s, {t} thread{'s' if t > 1 else ''} (forward + cross-entropy + backward + Adam), "
        f"batch {BATCH}",
        f"{'model':<16} {'axiom (' + backend + ')':>12} {'torch':>10} {'axiom/torch':>13} {'(cpu)':>7}   check",
    ]
    for c in cases:
        torch_sps = f"{c['torch']['steps_per_s']:.1f}" if c.get("torch") else "-"
        ratio_s = f"{c['ratio']:.2f}x" if c.get("ratio") is not None else "-"
        cpu_s = f"{c['cpu_ratio']:.2f}x" if c.get("cpu_ratio") is not None else "-"
        check = c.get("check", {})
        if "agree" in check:
            verdict = "losses agree" if check["agree"] else "LOSSES DIFFER"
            check_s = f"{verdict} (max diff {check['max_diff']:.1e})"
        else:
            check_s = "no torch"
        fb = c["axiom"].get("fallbacks") or {}
        if fb:
            check_s += f"; on the reference: {', '.join(sorted(fb))}"
        lines.append(
            f"{c['name']:<16} {c['axiom']['steps_per_s']:>12.1f} {torch_sps:>10} {ratio_s:>13} {cpu_s:>7}   {check_s}"
        )
    return "\n".join(lines)


def write_result(result: dict[str, Any], out_dir: str | Path) -> tuple[Path, Path]:
    """Write ``<out_dir>/<timestamp>-<host>-train.json`` and ``<out_dir>/latest-train.json``.

    (``latest.json`` stays the kernel/model benchmarks' result, which the README tables read.)

    Example:
        >>> import tempfile
        >>> with tempfile.TemporaryDirectory() as d:
        ...     paths = write_result({"created": "2026-11-22T04:31:00", "machine": {"host": "vm"}}, d)
        ...     [p.name for p in paths]
        ['20261122T043100-vm-train.json', 'latest-train.json']
    """
    from axiom.bench.report import write_named_result

    return write_named_result(result, out_dir, "train")


def build_parser() -> argparse.ArgumentParser:
    """The parser of ``python -m axiom.bench train``.

    Example:
        >>> build_parser().parse_args(["--quick", "--repeat", "2"]).repeat
        2
    """
    p = argparse.ArgumentParser(
        prog="python -m axiom.bench train",
        description="Training steps/s of the digits CNN and a 784-256-10 MLP, axiom vs PyTorch, one thread.",
    )
    p.add_argument("--quick", action="store_true", help="few rounds (for tests, < 30 s)")
    p.add_argument("--repeat", type=int, default=None, help="interleaved rounds per model (21; --quick: 3)")
    p.add_argument("--out", default=None, help="directory for the JSON results (bench/results)")
    p.add_argument("--filter", default=None, help="regular expression on the case names")
    p.add_argument("--no-torch", action="store_true", help="time axiom only")
    p.add_argument("--worker-json", default=None, help=argparse.SUPPRESS)  # child: where to write its run
    return p


def main(argv: list[str] | None = None) -> int:
    """Entry point of ``python -m axiom.bench train``; returns the exit code.

    Example:
        >>> import os, tempfile
        >>> with tempfile.TemporaryDirectory() as d:
        ...     code = main(["--quick", "--repeat", "1", "--filter", "mlp", "--no-torch", "--out", d])
        ...     code, sorted(os.listdir(d))[-1]  # doctest: +ELLIPSIS
        training steps/s, 1 thread ...
        (0, 'latest-train.json')
    """
    args = build_parser().parse_args(argv)
    settings = settings_for(args.quick, args.repeat)
    torch = False if args.no_torch else None
    if args.worker_json:
        run = run_inprocess(settings, args.filter, log=lambda m: print(m, file=sys.stderr, flush=True), torch=torch)
        Path(args.worker_json).write_text(json.dumps(run, default=str), encoding="utf-8")
        return 0
    from axiom.bench.cli import _child_env
    from axiom.bench.machine import machine_info

    rest = list(argv if argv is not None else sys.argv[2:])
    command = ["python", "-m", "axiom.bench", "train", *rest]
    result: dict[str, Any] = {
        "schema": SCHEMA,
        "created": dt.datetime.now().isoformat(timespec="seconds"),
        "command": command,
        "what": "train",
        "settings": {**settings, "threads": [1], "filter": args.filter, "batch": BATCH, "lr": LR},
        "machine": machine_info(),
    }
    with tempfile.TemporaryDirectory() as work:
        out = os.path.join(work, "run.json")
        cmd = [sys.executable, "-m", "axiom.bench", "train", "--worker-json", out, *rest]
        t0 = time.perf_counter()
        proc = subprocess.run(cmd, env=_child_env(1))
        if proc.returncode != 0 or not os.path.exists(out):
            print(f"error: the training benchmark process failed (exit code {proc.returncode})", file=sys.stderr)
            return 1
        result["runs"] = [json.loads(Path(out).read_text(encoding="utf-8"))]
        result["seconds"] = time.perf_counter() - t0
    print(text_table(result["runs"][0]))
    stamped, latest = write_result(result, Path(args.out) if args.out else Path("bench/results"))
    print(f"results: {stamped} and {latest}")
    return 0
