"""Turn benchmark results into text tables, a Markdown summary, the README section and a plot.

Results are the JSON written by ``python -m axiom.bench`` (see :mod:`axiom.bench.cli`):
``result["runs"]`` holds one entry per thread setting, each with ``peak``, ``kernels`` and
``models`` records (:func:`axiom.bench.kernels.run_case`, :func:`axiom.bench.models.run_model_case`).

Example:
    >>> fmt_ms(0.01234), fmt_ratio(1.5), fmt_ratio(None)
    ('0.0123', '1.50', '-')
"""

from __future__ import annotations

import math
import re
from pathlib import Path
from typing import Any

from axiom.bench.kernels import NATIVE_BACKENDS, NATIVE_PARITY, native_parity

#: Markers of the generated section in README.md.
README_START = "<!-- bench:start -->"
README_END = "<!-- bench:end -->"

#: Kernel cases shown in the README summary (one per op; the others are in the JSON and the full tables).
SUMMARY_KERNELS = (
    "matmul 1024x1024x1024",
    "matmul 256x784x256",
    "conv2d N8 64->128 32x32",
    "batchnorm 8x32x32x128",
    "max_pool2d 2x2/2 8x32x32x128",
    "avg_pool2d 2x2/2 8x32x32x128",
    "global_avg_pool 8x32x32x128",
    "layernorm 4096x768",
    "rmsnorm 4096x768",
    "softmax 4096x768",
    "log_softmax 4096x768",
    "activation relu 32x28x28x32",
    "activation gelu 32x28x28x32",
    "activation gelu_tanh 32x28x28x32",
    "activation silu 32x28x28x32",
    "activation sigmoid 32x28x28x32",
    "activation tanh 32x28x28x32",
    "attention B1 H8 L2048 D64",
    "attention B1 H8 L2048 D64 causal",
    "rope B1 H8 L2048 D64",
)

#: Implementations that are baselines, not axiom backends.
BASELINES = ("numpy", "torch", "onnxruntime")


def fmt_ms(ms: float | None) -> str:
    """Milliseconds with three significant digits (``-`` when missing).

    Example:
        >>> fmt_ms(123.456), fmt_ms(1.23456), fmt_ms(None)
        ('123', '1.23', '-')
    """
    if ms is None or not math.isfinite(ms):
        return "-"
    return f"{ms:.3g}" if ms < 1000 else f"{ms:.0f}"


def fmt_ratio(r: float | None) -> str:
    """A time ratio with two decimals (three significant digits below 0.1).

    Example:
        >>> fmt_ratio(0.0123), fmt_ratio(12.345)
        ('0.0123', '12.35')
    """
    if r is None or not math.isfinite(r):
        return "-"
    return f"{r:.3g}" if r < 0.1 else f"{r:.2f}"


def backend_names(result: dict[str, Any]) -> list[str]:
    """The axiom backends that appear in a result (``numpy`` first).

    Example:
        >>> backend_names({"runs": [{"kernels": [{"impls": {"numpy": {}, "torch": {}, "c": {}}}], "models": []}]})
        ['numpy', 'c']
    """
    seen: list[str] = []
    for run in result.get("runs", []):
        for rec in run.get("kernels", []) + run.get("models", []):
            for name in rec["impls"]:
                if name not in seen and name not in ("torch", "onnxruntime"):
                    seen.append(name)
    return sorted(seen, key=lambda n: (n != "numpy", seen.index(n)))


def _status_text(entry: dict[str, Any]) -> str:
    status = entry.get("status")
    if status == "fallback" and not entry.get("timed"):
        return f"fallback -> numpy ({entry.get('fallback_reason', '')})"
    if status == "error":
        return f"error: {entry.get('error', '')}"[:80]
    return ""


def _rate(entry: dict[str, Any]) -> str:
    if entry.get("gflops") is not None:
        pct = entry.get("pct_peak")
        return f"{entry['gflops']:.1f} GFLOP/s" + (f" {pct:.0f}%pk" if pct is not None else "")
    if entry.get("gbps") is not None:
        return f"{entry['gbps']:.1f} GB/s"
    if entry.get("samples_per_s") is not None:
        return f"{entry['samples_per_s']:,.0f} samples/s"
    return ""


def text_header(result: dict[str, Any]) -> str:
    """Two lines for the top of the output: the machine, then the fp32 peak of every thread setting.

    Example:
        >>> res = {"machine": {"cpu": {"model": "AMD EPYC", "flags": ["avx2", "fma"]}, "cpus_usable": 2,
        ...        "load_avg": [1.0, 1.0, 1.0]}, "runs": [{"threads": 1, "peak": {"gflops": 116.0,
        ...        "gflops_per_thread": 116.0}}]}
        >>> print(text_header(res))
        axiom.bench on AMD EPYC (2 CPUs usable; avx2 fma), load average [1.0, 1.0, 1.0]
        fp32 peak (FMA loop, 12 accumulators, thread-CPU time): 1 thread 116.0 GFLOP/s (116.0 per thread)
    """
    machine = result.get("machine", {})
    cpu = machine.get("cpu", {})
    flags = " ".join(f for f in cpu.get("flags", []) if f != "hypervisor")
    lines = [
        f"axiom.bench on {cpu.get('model', '?')} ({machine.get('cpus_usable', '?')} CPUs usable; {flags}), "
        f"load average {machine.get('load_avg')}"
    ]
    peaks = []
    for run in result.get("runs", []):
        peak, t = run.get("peak") or {}, run["threads"]
        label = f"{t} thread{'s' if t > 1 else ''}"
        if peak.get("gflops"):
            peaks.append(f"{label} {peak['gflops']:.1f} GFLOP/s ({peak['gflops_per_thread']:.1f} per thread)")
        else:
            peaks.append(f"{label} unavailable ({peak.get('reason', 'not measured')})")
    lines.append("fp32 peak (FMA loop, 12 accumulators, thread-CPU time): " + "; ".join(peaks))
    return "\n".join(lines)


def text_tables(run: dict[str, Any]) -> str:
    """Plain-text tables of one run (one thread setting): peak, kernels, models.

    Example:
        >>> run = {"threads": 1, "peak": {"gflops": 100.0, "gflops_per_thread": 100.0}, "kernels": [
        ...     {"name": "k", "impls": {"numpy": {"status": "baseline", "timed": True, "median_ms": 2.0,
        ...      "best_ms": 1.5, "cpu_ms": 2.0, "gflops": 50.0, "pct_peak": 50.0, "ratio_numpy": 1.0}}}], "models": []}
        >>> print(text_tables(run).splitlines()[0])
        == 1 thread: fp32 peak 100.0 GFLOP/s (100.0 per thread, FMA loop, thread-CPU time) ==
    """
    t = run["threads"]
    peak = run.get("peak") or {}
    lines = []
    if peak.get("gflops"):
        lines.append(
            f"== {t} thread{'s' if t > 1 else ''}: fp32 peak {peak['gflops']:.1f} GFLOP/s "
            f"({peak['gflops_per_thread']:.1f} per thread, FMA loop, thread-CPU time) =="
        )
    else:
        lines.append(f"== {t} thread{'s' if t > 1 else ''}: fp32 peak unavailable ({peak.get('reason', '')}) ==")
    for title, records in (("kernels", run.get("kernels", [])), ("models", run.get("models", []))):
        if not records:
            continue
        lines.append("")
        lines.append(
            f"{title:<38} {'impl':<12} {'median ms':>10} {'(best)':>9} {'cpu ms':>9}  {'rate':<24}"
            f" {'t/t_numpy':>9} {'t/t_torch':>9}" + (f" {'t/t_ort':>8}" if title == "models" else f" {'t/t_best':>8}")
        )
        for rec in records:
            first = True
            for name, e in rec["impls"].items():
                label = rec["name"] if first else ""
                first = False
                status = _status_text(e)
                if status:
                    lines.append(f"{label:<38} {name:<12} {status}")
                    continue
                impl = name
                if e.get("status") == "fallback":
                    impl += "*"
                if e.get("status") == "fallbacks":
                    impl += "+"
                if e.get("agrees") is False:
                    impl += "!"
                line = (
                    f"{label:<38} {impl:<12} {fmt_ms(e.get('median_ms')):>10} {'(' + fmt_ms(e.get('best_ms')) + ')':>9}"
                    f" {fmt_ms(e.get('cpu_ms')):>9}  {_rate(e):<24} {fmt_ratio(e.get('ratio_numpy')):>9}"
                    f" {fmt_ratio(e.get('ratio_torch')):>9}"
                )
                if title == "kernels" and e.get("ratio_native_best") is not None:
                    line += f" {fmt_ratio(e.get('ratio_native_best')):>8}"
                if title == "models":
                    line += f" {fmt_ratio(e.get('ratio_onnxruntime')):>8}"
                    if e.get("fallbacks"):
                        line += "  fallbacks: " + ", ".join(e["fallbacks"])
                lines.append(line)
    lines.append("")
    lines.append(
        "* fallback timed on the NumPy reference; + some ops of the model ran on the NumPy reference;"
        " ! output disagrees with the reference; t/t_best = time over the fastest of c, rust, zig"
    )
    parity = native_parity(run.get("kernels", []))
    if parity:
        lines.append(parity_line(parity))
    return "\n".join(lines)


def parity_line(parity: dict[str, dict[str, Any]]) -> str:
    """One line: how many kernel cases each native backend runs within 0.8x of the fastest.

    Example:
        >>> parity_line({"zig": {"cases": 2, "within": 1, "worst": "k", "worst_ratio": 1.5}})
        'native parity (time <= 1.25x the fastest of c, rust, zig): zig 1/2 (worst k 1.50)'
    """
    parts = [
        f"{name} {p['within']}/{p['cases']} (worst {p['worst']} {fmt_ratio(p['worst_ratio'])})"
        for name, p in parity.items()
    ]
    return f"native parity (time <= {1 / NATIVE_PARITY:.3g}x the fastest of c, rust, zig): " + "; ".join(parts)


def _cell(entry: dict[str, Any] | None, bases: tuple[str, ...]) -> str:
    if entry is None:
        return ""
    if entry.get("status") == "error":
        return "error"
    if entry.get("status") == "fallback" and not entry.get("timed"):
        return "fallback"
    if not entry.get("timed"):
        return "-"
    parts = [fmt_ms(entry.get("median_ms"))] + [fmt_ratio(entry.get(f"ratio_{b}")) for b in bases]
    mark = ""
    if entry.get("status") in ("fallback", "fallbacks"):
        mark = "†"
    if entry.get("agrees") is False:
        mark += "!"
    return " · ".join(parts) + mark


def _summary_kernels(records: list[dict[str, Any]], full: bool) -> list[dict[str, Any]]:
    if full:
        return records
    by_name = {r["name"]: r for r in records}
    chosen = [by_name[n] for n in SUMMARY_KERNELS if n in by_name]
    covered = {r["op"] for r in chosen}
    for r in records:  # an op whose summary shapes were not run (--quick, --filter): its first case
        if r["op"] not in covered:
            chosen.append(r)
            covered.add(r["op"])
    order = {r["name"]: i for i, r in enumerate(records)}
    return sorted(chosen, key=lambda r: order[r["name"]])


def _native_tables(result: dict[str, Any], full: bool) -> list[str]:
    """Markdown: the C, Rust and Zig backends side by side, time over the fastest of them, per thread setting."""
    lines: list[str] = []
    for run in result.get("runs", []):
        records = [r for r in run.get("kernels", []) if any("ratio_native_best" in e for e in r["impls"].values())]
        if not records:
            continue
        t = run["threads"]
        names = [n for n in NATIVE_BACKENDS if any(n in r["impls"] for r in records)]
        lines += [
            f"Native backends side by side, {t} thread{'s' if t > 1 else ''}: median ms (time / fastest of "
            f"{', '.join(names)}); target: every backend <= {1 / NATIVE_PARITY:.3g}x the fastest.",
            "",
            "| kernel | " + " | ".join(names) + " |",
            "|---|" + "---|" * len(names),
        ]
        for rec in records if full else _summary_kernels(records, full):
            cells = []
            for n in names:
                e = rec["impls"].get(n) or {}
                r = e.get("ratio_native_best")
                cells.append(_cell(e, ()) if r is None else f"{fmt_ms(e.get('median_ms'))} ({fmt_ratio(r)})")
            lines.append(f"| {rec['name']} | " + " | ".join(cells) + " |")
        lines += ["", parity_line(native_parity(records)) + " (all cases of this run).", ""]
    return lines


def markdown_summary(result: dict[str, Any], full: bool = False) -> str:
    """The Markdown tables for README.md (``full``: every kernel case, for bench/README.md).

    Example:
        >>> md = markdown_summary({"created": "2026-11-22T00:00:00", "machine": {}, "runs": []})
        >>> md.splitlines()[0].startswith("Measured")
        True
    """
    machine = result.get("machine", {})
    cpu = machine.get("cpu", {})
    versions = machine.get("versions", {})
    backends = backend_names(result)
    lines = [
        f"Measured {result.get('created', '?')[:16].replace('T', ' ')} on `{cpu.get('model', '?')}` "
        f"({machine.get('cpus_usable', '?')} CPUs, load {machine.get('load_avg', '?')}), "
        f"numpy {versions.get('numpy', '?')}, torch {versions.get('torch', '?')}, "
        f"onnxruntime {versions.get('onnxruntime', '?')}, axiom {versions.get('axiom_git') or versions.get('axiom')}"
        f"{' (--quick)' if result.get('settings', {}).get('quick') else ''}.",
        "",
    ]
    peaks = [
        f"{run['threads']} thread{'s' if run['threads'] > 1 else ''}: **{run['peak']['gflops']:.0f} GFLOP/s**"
        for run in result.get("runs", [])
        if (run.get("peak") or {}).get("gflops")
    ]
    if peaks:
        lines += ["fp32 peak (FMA loop, 12 accumulators, thread-CPU time): " + ", ".join(peaks) + ".", ""]
    one = next((r for r in result.get("runs", []) if r["threads"] == 1), None)
    kernel_runs = [one] if (one and not full) else result.get("runs", [])
    for run in kernel_runs:
        if not run or not run.get("kernels"):
            continue
        t = run["threads"]
        lines += [
            f"Kernels, {t} thread{'s' if t > 1 else ''}: median ms · t/t_numpy · t/t_torch "
            "(below 1 = faster than NumPy / PyTorch); `fallback` = the op runs on the NumPy reference.",
            "",
            "| kernel | numpy ms | torch ms | numpy/torch | " + " | ".join(b for b in backends if b != "numpy") + " |",
            "|---|---|---|---|" + "---|" * len([b for b in backends if b != "numpy"]),
        ]
        for rec in _summary_kernels(run["kernels"], full):
            np_e, th_e = rec["impls"].get("numpy", {}), rec["impls"].get("torch", {})
            rate = _rate(np_e) if np_e else ""
            cells = [
                f"{rec['name']}",
                fmt_ms(np_e.get("median_ms")) + (f" ({rate})" if rate else ""),
                fmt_ms(th_e.get("median_ms")),
                fmt_ratio(np_e.get("ratio_torch")),
            ]
            cells += [_cell(rec["impls"].get(b), ("numpy", "torch")) for b in backends if b != "numpy"]
            lines.append("| " + " | ".join(cells) + " |")
        lines.append("")
    lines += _native_tables(result, full)
    model_rows = [(run["threads"], rec) for run in result.get("runs", []) for rec in run.get("models", [])]
    if model_rows:
        lines += [
            "Models (end-to-end inference): median ms per batch · t/t_torch · t/t_onnxruntime; "
            "† = some ops ran on the NumPy reference (listed in the JSON).",
            "",
            "| model | threads | torch ms | onnxruntime ms | " + " | ".join(f"axiom {b}" for b in backends) + " |",
            "|---|---|---|---|" + "---|" * len(backends),
        ]
        for t, rec in model_rows:
            cells = [
                rec["name"],
                str(t),
                fmt_ms(rec["impls"].get("torch", {}).get("median_ms")),
                fmt_ms(rec["impls"].get("onnxruntime", {}).get("median_ms")),
            ]
            cells += [_cell(rec["impls"].get(b), ("torch", "onnxruntime")) for b in backends]
            lines.append("| " + " | ".join(cells) + " |")
        lines.append("")
        notes = []
        for b in backends:
            per_model: dict[str, list[str]] = {}
            for _, rec in model_rows:
                ops = (rec["impls"].get(b) or {}).get("fallbacks") or {}
                if ops:
                    per_model.setdefault(", ".join(ops), [])
                    if rec["model"] not in per_model[", ".join(ops)]:
                        per_model[", ".join(ops)].append(rec["model"])
            if per_model:
                notes.append(f"{b}: " + "; ".join(f"{ops} ({', '.join(m)})" for ops, m in per_model.items()))
        if notes:
            lines += ["† ops on the NumPy reference: " + " · ".join(notes) + ".", ""]
    return "\n".join(lines).rstrip() + "\n"


def replace_between_markers(text: str, content: str, start: str = README_START, end: str = README_END) -> str:
    """``text`` with what lies between the ``start`` and ``end`` markers replaced by ``content``.

    Raises ``ValueError`` when the markers are missing or out of order.

    Example:
        >>> replace_between_markers("a\\n<!-- bench:start -->\\nold\\n<!-- bench:end -->\\nb", "new\\n")
        'a\\n<!-- bench:start -->\\nnew\\n<!-- bench:end -->\\nb'
    """
    i, j = text.find(start), text.find(end)
    if i < 0 or j < 0 or j < i:
        raise ValueError(f"expected the markers {start!r} and then {end!r} in the file")
    return text[: i + len(start)] + "\n" + content.rstrip("\n") + "\n" + text[j:]


def update_readme(path: str | Path, result: dict[str, Any], full: bool = False) -> bool:
    """Regenerate the section between the bench markers of ``path``; True when it changed.

    Example:
        >>> import tempfile, os
        >>> with tempfile.TemporaryDirectory() as d:
        ...     p = os.path.join(d, "README.md")
        ...     _ = open(p, "w").write("# x\\n<!-- bench:start -->\\n<!-- bench:end -->\\n")
        ...     update_readme(p, {"runs": []}), "Measured" in open(p).read()
        (True, True)
    """
    path = Path(path)
    old = path.read_text(encoding="utf-8")
    new = replace_between_markers(old, markdown_summary(result, full=full))
    if new != old:
        path.write_text(new, encoding="utf-8")
    return new != old


def plot(result: dict[str, Any], path: str | Path) -> Path:
    """Bar chart of t_impl / t_torch per kernel and model (log scale), one panel per thread setting.

    Fallbacks that were not timed are marked, not drawn. Writes a PNG with matplotlib's Agg
    backend and returns its path.

    Example:
        >>> import tempfile, os
        >>> rec = {"name": "k", "impls": {"numpy": {"timed": True, "ratio_torch": 2.0}, "torch": {"timed": True}}}
        >>> with tempfile.TemporaryDirectory() as d:
        ...     p = plot({"runs": [{"threads": 1, "kernels": [rec], "models": []}]}, os.path.join(d, "p.png"))
        ...     p.stat().st_size > 0
        True
    """
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
    from matplotlib.patches import Patch

    runs = result.get("runs", [])
    impls = backend_names(result) + ["onnxruntime"]
    rows_per_run = [run.get("kernels", []) + run.get("models", []) for run in runs]
    n_rows = max((len(r) for r in rows_per_run), default=1)
    fig, axes = plt.subplots(
        1, max(len(runs), 1), figsize=(max(9.0, 7.5 * len(runs)), 1.2 + 0.28 * n_rows), sharey=True, squeeze=False
    )
    colors = plt.rcParams["axes.prop_cycle"].by_key()["color"]
    height = 0.8 / max(len(impls), 1)
    for ax, run, rows in zip(axes[0], runs, rows_per_run):
        names = [("model " if "model" in rec else "") + rec["name"] for rec in rows]
        for j, impl in enumerate(impls):
            for i, rec in enumerate(rows):
                e = rec["impls"].get(impl)
                if e is None:
                    continue
                y = i - 0.4 + (j + 0.5) * height
                r = e.get("ratio_torch")
                if e.get("timed") and r and math.isfinite(r):
                    hatch = "//" if e.get("status") in ("fallback", "fallbacks") else None
                    ax.barh(
                        y, abs(r - 1.0), height=height, left=min(r, 1.0), color=colors[j % len(colors)], hatch=hatch
                    )
                elif e.get("status") in ("fallback", "error"):
                    ax.text(
                        1.0, y, " fb" if e["status"] == "fallback" else " err", fontsize=4, va="center", color="gray"
                    )
        ax.set_xscale("log")
        ax.axvline(1.0, color="black", linewidth=0.8)
        ax.set_yticks(range(len(names)), names, fontsize=6)
        if ax is axes[0][0]:
            ax.invert_yaxis()  # once: the y axis is shared
        ax.set_xlabel("t / t_torch (log; < 1 = faster than PyTorch)")
        ax.set_title(f"{run['threads']} thread{'s' if run['threads'] > 1 else ''}")
        ax.grid(axis="x", which="both", alpha=0.3)
        handles = [Patch(color=colors[j % len(colors)], label=impl) for j, impl in enumerate(impls)]
        ax.legend(handles=handles, fontsize=7, loc="lower right")
    title = "axiom.bench: time / PyTorch's time (hatched: partly on the NumPy reference; fb: op falls back)"
    fig.suptitle(title, fontsize=9)
    fig.tight_layout()
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(path, dpi=110)
    plt.close(fig)
    return path


def _slug(text: str) -> str:
    return re.sub(r"[^A-Za-z0-9_.-]+", "-", text).strip("-") or "host"


def write_named_result(result: dict[str, Any], out_dir: str | Path, what: str) -> tuple[Path, Path]:
    """Write ``<out_dir>/<timestamp>-<host>-<what>.json`` and ``<out_dir>/latest-<what>.json`` (same content).

    Example:
        >>> import tempfile
        >>> with tempfile.TemporaryDirectory() as d:
        ...     paths = write_named_result({"created": "2026-11-22T04:31:00", "machine": {"host": "vm"}}, d, "x")
        ...     [p.name for p in paths]
        ['20261122T043100-vm-x.json', 'latest-x.json']
    """
    import json

    from axiom.bench.cli import _rounded

    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    stamp = result.get("created", "").replace("-", "").replace(":", "")[:15] or "result"
    host = _slug(result.get("machine", {}).get("host", "host"))
    text = json.dumps(_rounded(result), indent=1, default=str) + "\n"
    stamped, latest = out / f"{stamp}-{host}-{what}.json", out / f"latest-{what}.json"
    stamped.write_text(text, encoding="utf-8")
    latest.write_text(text, encoding="utf-8")
    return stamped, latest
