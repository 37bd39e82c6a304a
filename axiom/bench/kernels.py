"""Kernel benchmarks: every op of the contract on every backend, against NumPy and PyTorch.

A :class:`KernelCase` is one op at one shape: how to make its inputs, how to run it on an
axiom backend (the contract's signature, NHWC), and the PyTorch equivalent
(``torch.nn.functional``; 4-D tensors are handed to torch as ``channels_last`` views of the
same NHWC memory, which is torch's fast path for conv and pooling). :func:`run_case` checks
every implementation against the NumPy reference, then times them interleaved
(:mod:`axiom.bench.timing`). An op that a backend does not implement runs on the NumPy
reference (``backend.fallbacks``): it is labelled ``fallback`` and, unless asked, not timed,
so a fallback's time is never reported as the backend's own.

The NumPy baseline *is* the reference backend ``numpy`` (plain vectorised NumPy).

Example:
    >>> cases = kernel_cases(quick=True)
    >>> [c.name for c in cases][:2]
    ['matmul 256x256x256', 'matmul 32x784x256']
    >>> rec = run_case(cases[1], {"numpy": get_backend("numpy")}, repeat=1, min_sample_s=0.0, torch=False)
    >>> rec["impls"]["numpy"]["status"], rec["impls"]["numpy"]["gflops"] > 0
    ('baseline', True)
"""

from __future__ import annotations

import math
import re
import warnings
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np

from axiom.backends import FallbackWarning, KernelBackend, available_backends, get_backend
from axiom.bench.flops import attention_flops, conv2d_flops, gbps, gflops, matmul_flops
from axiom.bench.timing import Timing, cpu_ratio, interleave, ratio

Inputs = dict[str, Any]

#: Largest ``max|out - ref| / max|ref|`` for an implementation to count as agreeing (fp32).
REL_TOL = 1e-3


def _torch() -> Any:
    import torch

    return torch


@dataclass
class KernelCase:
    """One op at one shape, with its axiom call, its PyTorch equivalent and its work.

    Example:
        >>> case = kernel_cases(filter="^softmax 1024x784$")[0]
        >>> case.op, case.group, case.flops is None, case.nbytes
        ('softmax', 'softmax', True, 6422528)
    """

    name: str
    op: str
    group: str
    make: Callable[[np.random.Generator], Inputs]
    call: Callable[[KernelBackend, Inputs], np.ndarray]
    torch_call: Callable[[Inputs], Any] | None
    torch_out: Callable[[Any], np.ndarray]
    flops: int | None = None
    nbytes: int | None = None
    quick: bool = False
    note: str = ""


def _f32(rng: np.random.Generator, *shape: int, scale: float = 1.0) -> np.ndarray:
    return (rng.standard_normal(shape, dtype=np.float32) * np.float32(scale)).astype(np.float32)


def _t(x: np.ndarray) -> Any:
    return _torch().from_numpy(x)


def _nchw(x: np.ndarray) -> Any:
    """An NHWC array as a torch NCHW tensor in channels_last memory (a view, no copy)."""
    return _t(x).permute(0, 3, 1, 2)


def _to_nhwc(y: Any) -> np.ndarray:
    return y.permute(0, 2, 3, 1).contiguous().numpy()


def _plain(y: Any) -> np.ndarray:
    return y.contiguous().numpy()


# -- case constructors --------------------------------------------------------------------


def _matmul(m: int, k: int, n: int, quick: bool = False) -> KernelCase:
    def make(rng: np.random.Generator) -> Inputs:
        a, b = _f32(rng, m, k), _f32(rng, k, n)
        return {"a": a, "b": b, "ta": _t(a), "tb": _t(b)}

    return KernelCase(
        f"matmul {m}x{k}x{n}",
        "matmul",
        "matmul",
        make,
        lambda be, i: be.matmul(i["a"], i["b"]),
        lambda i: _torch().mm(i["ta"], i["tb"]),
        _plain,
        flops=matmul_flops(m, k, n),
        quick=quick,
    )


def _conv(n: int, h: int, w: int, cin: int, cout: int, quick: bool = False) -> KernelCase:
    def make(rng: np.random.Generator) -> Inputs:
        x = _f32(rng, n, h, w, cin)
        wt = _f32(rng, 3, 3, cin, cout, scale=1.0 / math.sqrt(9 * cin))
        b = _f32(rng, cout)
        torch = _torch()
        tw = _t(np.ascontiguousarray(wt.transpose(3, 2, 0, 1))).contiguous(memory_format=torch.channels_last)
        return {"x": x, "w": wt, "b": b, "tx": _nchw(x), "tw": tw, "tb": _t(b)}

    return KernelCase(
        f"conv2d N{n} {cin}->{cout} {h}x{w}",
        "conv2d",
        "conv2d",
        make,
        lambda be, i: be.conv2d(i["x"], i["w"], i["b"], (1, 1), ((1, 1), (1, 1)), (1, 1), 1),
        lambda i: _torch().nn.functional.conv2d(i["tx"], i["tw"], i["tb"], padding=1),
        _to_nhwc,
        flops=conv2d_flops(n, h, w, cin, cout, 3, 3),
        quick=quick,
        note="3x3, stride 1, pad 1; torch channels_last",
    )


def _spatial(op: str, n: int, h: int, w: int, c: int, quick: bool = False) -> KernelCase:
    """batchnorm / max_pool2d / avg_pool2d / global_avg_pool on NHWC (N, H, W, C)."""
    pooled = {"max_pool2d": (h // 2, w // 2), "avg_pool2d": (h // 2, w // 2), "global_avg_pool": (1, 1)}
    ho, wo = pooled.get(op, (h, w))
    x_bytes = n * h * w * c * 4

    def make(rng: np.random.Generator) -> Inputs:
        x = _f32(rng, n, h, w, c)
        stats = {
            "mean": _f32(rng, c, scale=0.1),
            "var": np.abs(_f32(rng, c)) + np.float32(0.5),
            "gamma": _f32(rng, c),
            "beta": _f32(rng, c),
        }
        return {"x": x, "tx": _nchw(x), **stats, **{"t" + k: _t(v) for k, v in stats.items()}}

    calls: dict[str, tuple[Callable[[KernelBackend, Inputs], np.ndarray], Callable[[Inputs], Any], Any]] = {
        "batchnorm": (
            lambda be, i: be.batchnorm(i["x"], i["mean"], i["var"], i["gamma"], i["beta"], 1e-5),
            lambda i: _torch().nn.functional.batch_norm(
                i["tx"], i["tmean"], i["tvar"], i["tgamma"], i["tbeta"], training=False, eps=1e-5
            ),
            _to_nhwc,
        ),
        "max_pool2d": (
            lambda be, i: be.max_pool2d(i["x"], (2, 2), (2, 2), ((0, 0), (0, 0)), (1, 1)),
            lambda i: _torch().nn.functional.max_pool2d(i["tx"], 2, 2),
            _to_nhwc,
        ),
        "avg_pool2d": (
            lambda be, i: be.avg_pool2d(i["x"], (2, 2), (2, 2), ((0, 0), (0, 0)), True),
            lambda i: _torch().nn.functional.avg_pool2d(i["tx"], 2, 2),
            _to_nhwc,
        ),
        "global_avg_pool": (
            lambda be, i: be.global_avg_pool(i["x"]),
            lambda i: _torch().nn.functional.adaptive_avg_pool2d(i["tx"], 1).flatten(1),
            _plain,
        ),
    }
    call, torch_call, torch_out = calls[op]
    label = {"max_pool2d": "max_pool2d 2x2/2", "avg_pool2d": "avg_pool2d 2x2/2"}.get(op, op)
    return KernelCase(
        f"{label} {n}x{h}x{w}x{c}",
        op,
        "norm" if op == "batchnorm" else "pool",
        make,
        call,
        torch_call,
        torch_out,
        nbytes=x_bytes + n * ho * wo * c * 4,
        quick=quick,
        note="NHWC; torch channels_last" + ("; inference statistics" if op == "batchnorm" else ""),
    )


def _rows(op: str, rows: int, cols: int, quick: bool = False) -> KernelCase:
    """softmax / log_softmax / layernorm / rmsnorm over the last axis of (rows, cols)."""

    def make(rng: np.random.Generator) -> Inputs:
        x = _f32(rng, rows, cols)
        gamma, beta = _f32(rng, cols), _f32(rng, cols)
        return {"x": x, "gamma": gamma, "beta": beta, "tx": _t(x), "tgamma": _t(gamma), "tbeta": _t(beta)}

    calls: dict[str, tuple[Callable[[KernelBackend, Inputs], np.ndarray], Callable[[Inputs], Any]]] = {
        "softmax": (lambda be, i: be.softmax(i["x"], -1), lambda i: _torch().softmax(i["tx"], -1)),
        "log_softmax": (lambda be, i: be.log_softmax(i["x"], -1), lambda i: _torch().log_softmax(i["tx"], -1)),
        "layernorm": (
            lambda be, i: be.layernorm(i["x"], i["gamma"], i["beta"], 1e-5, 1),
            lambda i: _torch().nn.functional.layer_norm(i["tx"], (cols,), i["tgamma"], i["tbeta"], 1e-5),
        ),
        "rmsnorm": (
            lambda be, i: be.rmsnorm(i["x"], i["gamma"], 1e-6, 1),
            lambda i: _torch().nn.functional.rms_norm(i["tx"], (cols,), i["tgamma"], 1e-6),
        ),
    }
    call, torch_call = calls[op]
    return KernelCase(
        f"{op} {rows}x{cols}",
        op,
        "softmax" if "softmax" in op else "norm",
        make,
        call,
        torch_call,
        _plain,
        nbytes=2 * rows * cols * 4,
        quick=quick,
        note="over the last axis",
    )


_TORCH_ACT: dict[str, Callable[[Any], Any]] = {
    "relu": lambda x: _torch().relu(x),
    "gelu": lambda x: _torch().nn.functional.gelu(x),
    "gelu_tanh": lambda x: _torch().nn.functional.gelu(x, approximate="tanh"),
    "silu": lambda x: _torch().nn.functional.silu(x),
    "sigmoid": lambda x: _torch().sigmoid(x),
    "tanh": lambda x: _torch().tanh(x),
}


def _activation(name: str, n: int, h: int, w: int, c: int, quick: bool = False) -> KernelCase:
    def make(rng: np.random.Generator) -> Inputs:
        x = _f32(rng, n, h, w, c, scale=2.0)
        return {"x": x, "tx": _t(x)}

    torch_fn = _TORCH_ACT[name]
    return KernelCase(
        f"activation {name} {n}x{h}x{w}x{c}",
        "activation",
        "activation",
        make,
        lambda be, i: be.activation(i["x"], name, 0.0),
        lambda i: torch_fn(i["tx"]),
        _plain,
        nbytes=2 * n * h * w * c * 4,
        quick=quick,
    )


def _attention(b: int, h: int, seq: int, d: int, causal: bool, quick: bool = False) -> KernelCase:
    scale = 1.0 / math.sqrt(d)

    def make(rng: np.random.Generator) -> Inputs:
        q, k, v = (_f32(rng, b, h, seq, d) for _ in range(3))
        return {"q": q, "k": k, "v": v, "tq": _t(q), "tk": _t(k), "tv": _t(v)}

    return KernelCase(
        f"attention B{b} H{h} L{seq} D{d}{' causal' if causal else ''}",
        "attention",
        "attention",
        make,
        lambda be, i: be.attention(i["q"], i["k"], i["v"], causal, scale),
        lambda i: _torch().nn.functional.scaled_dot_product_attention(
            i["tq"], i["tk"], i["tv"], is_causal=causal, scale=scale
        ),
        _plain,
        flops=attention_flops(b, h, seq, seq, d, causal),
        quick=quick,
        note="torch scaled_dot_product_attention" + ("; causal credited half the FLOPs" if causal else ""),
    )


def _rope(b: int, h: int, seq: int, d: int, quick: bool = False) -> KernelCase:
    base = 10000.0

    def make(rng: np.random.Generator) -> Inputs:
        x = _f32(rng, b, h, seq, d)
        pos = np.arange(seq)
        inv = 1.0 / (base ** (np.arange(d // 2, dtype=np.float64) * 2.0 / d))
        ang = pos[:, None].astype(np.float64) * inv[None, :]
        cos = np.concatenate([np.cos(ang)] * 2, axis=-1).astype(np.float32)
        sin = np.concatenate([np.sin(ang)] * 2, axis=-1).astype(np.float32)
        return {"x": x, "pos": pos, "tx": _t(x), "tcos": _t(cos), "tsin": _t(sin)}

    def torch_rope(i: Inputs) -> Any:
        x = i["tx"]
        x1, x2 = x[..., : d // 2], x[..., d // 2 :]
        return x * i["tcos"] + _torch().cat((-x2, x1), dim=-1) * i["tsin"]

    return KernelCase(
        f"rope B{b} H{h} L{seq} D{d}",
        "rope",
        "rope",
        make,
        lambda be, i: be.rope(i["x"], i["pos"], base),
        torch_rope,
        _plain,
        nbytes=2 * b * h * seq * d * 4,
        quick=quick,
        note="rotate-half; torch composes x*cos + rot(x)*sin with precomputed cos/sin",
    )


def kernel_cases(quick: bool = False, filter: str | None = None) -> list[KernelCase]:
    """The benchmark's kernel cases (the shapes of the performance anchors, NHWC).

    ``quick`` keeps one or two small shapes per op; ``filter`` is a regular expression
    searched in the case names.

    Example:
        >>> len(kernel_cases()) > len(kernel_cases(quick=True)) > 0
        True
        >>> [c.name for c in kernel_cases(filter="^attention.*L2048")]
        ['attention B1 H8 L2048 D64', 'attention B1 H8 L2048 D64 causal']
    """
    cases: list[KernelCase] = [
        _matmul(256, 256, 256, quick=True),
        _matmul(32, 784, 256, quick=True),
        _matmul(256, 784, 256),
        _matmul(512, 512, 512),
        _matmul(1024, 1024, 1024),
        _matmul(2048, 2048, 2048),
        _conv(32, 28, 28, 3, 32, quick=True),
        _conv(8, 32, 32, 64, 128),
        _conv(32, 56, 56, 64, 64),
    ]
    spatial = [(32, 28, 28, 32, True), (8, 32, 32, 128, False), (32, 56, 56, 64, False)]
    for op in ("batchnorm", "max_pool2d", "avg_pool2d", "global_avg_pool"):
        cases += [_spatial(op, n, h, w, c, quick=q) for n, h, w, c, q in spatial]
    rows = [(1024, 784, True), (1024, 1024, False), (4096, 768, False), (2048, 3136, False)]
    for op in ("layernorm", "rmsnorm", "softmax", "log_softmax"):
        cases += [_rows(op, r, c, quick=q) for r, c, q in rows]
    for name in _TORCH_ACT:
        cases.append(_activation(name, 32, 28, 28, 32, quick=name in ("relu", "gelu_tanh")))
    for seq in (512, 2048):
        for causal in (False, True):
            cases.append(_attention(1, 8, seq, 64, causal, quick=seq == 512 and not causal))
    cases += [_rope(1, 8, 512, 64, quick=True), _rope(1, 8, 2048, 64)]
    if quick:
        cases = [c for c in cases if c.quick]
    if filter:
        pattern = re.compile(filter)
        cases = [c for c in cases if pattern.search(c.name)]
    return cases


#: GPU backends: timed on device-resident data by ``kernels --backend`` (:mod:`axiom.bench.gpu`), not
#: here (through the host-array interface every call would time its uploads and downloads)
GPU_BACKENDS: tuple[str, ...] = ("cuda", "opencl")


def bench_backends(names: Sequence[str] | None = None) -> dict[str, KernelBackend]:
    """The backends to measure, by name: ``numpy`` first, then every available CPU one (or ``names``).

    Example:
        >>> list(bench_backends(["numpy"]))
        ['numpy']
        >>> set(bench_backends()) & set(GPU_BACKENDS)
        set()
    """
    chosen = list(names) if names is not None else [n for n in available_backends() if n not in GPU_BACKENDS]
    ordered = ["numpy"] + [n for n in chosen if n != "numpy"]
    return {name: get_backend(name) for name in ordered}


def backend_info(backend: KernelBackend) -> dict[str, Any]:
    """What a backend is: class, library, the ops it runs natively and those that fell back so far.

    Example:
        >>> backend_info(get_backend("numpy"))["native_ops"][:2]
        ['matmul', 'conv2d']
    """
    fallbacks = getattr(backend, "fallbacks", None)
    return {
        "class": type(backend).__name__,
        "library": getattr(backend, "library", None),
        "native_ops": list(backend.implemented_ops()),
        "fallbacks": dict(fallbacks) if isinstance(fallbacks, dict) else {},
    }


def _errors(out: np.ndarray, ref: np.ndarray) -> tuple[float, float]:
    out = np.asarray(out, dtype=np.float64)
    ref = np.asarray(ref, dtype=np.float64)
    if out.shape != ref.shape:
        raise ValueError(f"output shape {out.shape} differs from the reference's {ref.shape}")
    diff = np.abs(out - ref)
    finite = np.isfinite(ref)
    err = float(diff[finite].max()) if finite.any() else 0.0
    scale = float(np.abs(ref[finite]).max()) if finite.any() else 1.0
    return err, err / max(scale, 1e-30)


def _fallback_reason(backend: KernelBackend, op: str) -> str | None:
    """Why ``op`` ran on the reference (None when it ran natively)."""
    fallbacks = getattr(backend, "fallbacks", None)
    if isinstance(fallbacks, dict) and op in fallbacks:
        return str(fallbacks[op])
    if op not in backend.implemented_ops():
        return "not implemented by this backend"
    return None


#: The native kernel libraries compared side by side (``ratio_native_best``).
NATIVE_BACKENDS: tuple[str, ...] = ("c", "rust", "zig")
#: Parity target: every native backend within 0.8x of the fastest one (time <= 1.25x).
NATIVE_PARITY = 0.8


def _native_side_by_side(impls: dict[str, dict[str, Any]]) -> None:
    """Add ``ratio_native_best`` (median time / the fastest native backend's) and ``native_fastest``."""
    timed = {n: impls[n] for n in NATIVE_BACKENDS if impls.get(n, {}).get("status") == "native" and impls[n]["timed"]}
    if len(timed) < 2:
        return
    fastest = min(timed, key=lambda n: timed[n]["median_ms"])
    for entry in timed.values():
        entry["ratio_native_best"] = entry["median_ms"] / timed[fastest]["median_ms"]
        entry["native_fastest"] = fastest


def native_parity(records: list[dict[str, Any]]) -> dict[str, dict[str, Any]]:
    """Per native backend: cases compared, cases within :data:`NATIVE_PARITY` of the fastest, the worst case.

    Example:
        >>> recs = [{"name": "k", "impls": {"c": {"ratio_native_best": 1.0}, "zig": {"ratio_native_best": 1.5}}}]
        >>> native_parity(recs)["zig"]
        {'cases': 1, 'within': 0, 'worst': 'k', 'worst_ratio': 1.5}
    """
    out: dict[str, dict[str, Any]] = {}
    for rec in records:
        for name in NATIVE_BACKENDS:
            r = rec["impls"].get(name, {}).get("ratio_native_best")
            if r is None:
                continue
            stats = out.setdefault(name, {"cases": 0, "within": 0, "worst": None, "worst_ratio": 0.0})
            stats["cases"] += 1
            stats["within"] += int(r <= 1.0 / NATIVE_PARITY)
            if r > stats["worst_ratio"]:
                stats["worst"], stats["worst_ratio"] = rec["name"], r
    return out


def run_case(
    case: KernelCase,
    backends: dict[str, KernelBackend],
    repeat: int = 11,
    min_sample_s: float = 0.005,
    budget_s: float | None = 20.0,
    torch: bool = True,
    time_fallbacks: bool = False,
    peak_gflops: float | None = None,
    seed: int = 0,
) -> dict[str, Any]:
    """Check and time one case on every backend and on PyTorch; return its JSON record.

    ``record["impls"][name]`` has ``status`` (``baseline`` for NumPy, ``native``, ``fallback``,
    ``error``, ``torch``), ``median_ms``/``best_ms``/``cpu_ms`` per call, ``gflops`` or ``gbps``,
    ``pct_peak`` (of ``peak_gflops``), ``ratio_numpy`` and ``ratio_torch`` (medians of per-round
    time ratios), ``ratio_native_best`` (time over the fastest of the C, Rust and Zig backends, when
    two or more ran natively) and the error against the NumPy reference. Fallbacks are timed only with
    ``time_fallbacks`` (and stay labelled ``fallback``).

    Example:
        >>> case = kernel_cases(filter="^rope B1 H8 L512")[0]
        >>> rec = run_case(case, {"numpy": get_backend("numpy")}, repeat=2, min_sample_s=0.0, torch=False)
        >>> rec["name"], rec["impls"]["numpy"]["agrees"], rec["impls"]["numpy"]["gbps"] > 0
        ('rope B1 H8 L512 D64', True, True)
    """
    inputs = case.make(np.random.default_rng(seed))
    impls: dict[str, dict[str, Any]] = {}
    fns: dict[str, Callable[[], object]] = {}
    ref: np.ndarray | None = None
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", FallbackWarning)
        for name, be in backends.items():
            entry: dict[str, Any] = {"status": "baseline" if name == "numpy" else "native"}
            impls[name] = entry
            fallbacks = getattr(be, "fallbacks", None)
            if isinstance(fallbacks, dict):
                fallbacks.pop(case.op, None)
            try:
                out = case.call(be, inputs)
            except Exception as e:  # noqa: BLE001 - a failing backend is reported, not fatal
                entry.update(status="error", error=f"{type(e).__name__}: {e}")
                continue
            reason = None if name == "numpy" else _fallback_reason(be, case.op)
            if reason is not None:
                entry.update(status="fallback", fallback_reason=reason, fallback_to="numpy")
            if ref is None:
                ref = np.asarray(out)
            entry["max_abs_err"], entry["rel_err"] = _errors(out, ref)
            entry["agrees"] = entry["rel_err"] <= REL_TOL
            if reason is None or time_fallbacks:
                fns[name] = lambda be=be: case.call(be, inputs)
        if torch and case.torch_call is not None:
            entry = {"status": "torch"}
            impls["torch"] = entry
            try:
                _torch().set_grad_enabled(False)
                out = case.torch_out(case.torch_call(inputs))
                if ref is not None:
                    entry["max_abs_err"], entry["rel_err"] = _errors(out, ref)
                    entry["agrees"] = entry["rel_err"] <= REL_TOL
                fns["torch"] = lambda: case.torch_call(inputs)
            except Exception as e:  # noqa: BLE001
                entry.update(status="error", error=f"{type(e).__name__}: {e}")
                fns.pop("torch", None)
        timings: dict[str, Timing] = interleave(fns, repeat=repeat, min_sample_s=min_sample_s, budget_s=budget_s)
    for name, t in timings.items():
        entry = impls[name]
        entry.update(
            timed=True,
            median_ms=t.median_ms,
            best_ms=t.best_ms,
            cpu_ms=t.cpu_median_ms,
            calls_per_sample=t.number,
            samples=len(t.wall_ms),
            wall_samples_ms=list(t.wall_ms),
        )
        if case.flops is not None:
            entry["gflops"] = gflops(case.flops, t.median_ms)
            entry["gflops_best"] = gflops(case.flops, t.best_ms)
            entry["gflops_cpu"] = gflops(case.flops, t.cpu_median_ms)
            if peak_gflops:
                entry["pct_peak"] = 100.0 * entry["gflops"] / peak_gflops
                entry["pct_peak_best"] = 100.0 * entry["gflops_best"] / peak_gflops
        if case.nbytes is not None:
            entry["gbps"] = gbps(case.nbytes, t.median_ms)
            entry["gbps_best"] = gbps(case.nbytes, t.best_ms)
        for base in ("numpy", "torch"):
            if base in timings and base != name:
                entry[f"ratio_{base}"] = ratio(t, timings[base])
                entry[f"cpu_ratio_{base}"] = cpu_ratio(t, timings[base])
            elif base == name:
                entry[f"ratio_{base}"] = 1.0
    for entry in impls.values():
        entry.setdefault("timed", False)
    _native_side_by_side(impls)
    return {
        "name": case.name,
        "op": case.op,
        "group": case.group,
        "flops": case.flops,
        "bytes": case.nbytes,
        "note": case.note,
        "impls": impls,
    }
