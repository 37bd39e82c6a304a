"""Benchmarks: ``python -m axiom.bench {kernels,models,all}`` and ``python -m axiom.bench train``.

Every op of the kernel contract on every available backend, and two models end to end,
against NumPy (the reference backend), PyTorch and onnxruntime in the same run, interleaved,
at 1 and 2 threads, with the machine's measured fp32 peak for reference. See
``docs/benchmarks.md`` for how to run it and read it.

- :mod:`axiom.bench.kernels`: kernel cases and :func:`run_case`;
- :mod:`axiom.bench.models`: the MLP and CNN, :func:`run_model_case`;
- :mod:`axiom.bench.peak`: the FMA peak loop (``csrc/bench_peak.c``);
- :mod:`axiom.bench.timing`: interleaved timing; :mod:`axiom.bench.flops`: work formulas;
- :mod:`axiom.bench.report`: tables, README section, plot; :mod:`axiom.bench.cli`: the command;
- :mod:`axiom.bench.train`: training steps/s of the digits CNN and a 784-256-10 MLP vs PyTorch.

Example:
    >>> from axiom.bench import kernel_cases, matmul_flops
    >>> len(kernel_cases(quick=True)) > 0, matmul_flops(2, 3, 4)
    (True, 48)
"""

from axiom.bench.cli import main, run_inprocess
from axiom.bench.flops import attention_flops, conv2d_flops, gbps, gflops, matmul_flops
from axiom.bench.kernels import KernelCase, kernel_cases, run_case
from axiom.bench.machine import machine_info
from axiom.bench.models import ModelCase, model_cases, run_model_case
from axiom.bench.peak import measure_peak
from axiom.bench.report import markdown_summary, plot, update_readme

__all__ = [
    "KernelCase",
    "ModelCase",
    "attention_flops",
    "conv2d_flops",
    "gbps",
    "gflops",
    "kernel_cases",
    "machine_info",
    "main",
    "markdown_summary",
    "matmul_flops",
    "measure_peak",
    "model_cases",
    "plot",
    "run_case",
    "run_inprocess",
    "run_model_case",
    "update_readme",
]
