"""End-to-end inference benchmarks: an MLP and a small CNN, axiom vs PyTorch vs onnxruntime.

The models (``performance-anchors.md`` section 7):

- ``mlp``: Dense 784-256 (ReLU), Dense 256-10;
- ``cnn`` on 28x28x1: conv3x3 1->32 (pad 1), ReLU, maxpool 2, conv3x3 32->64 (pad 1), ReLU,
  maxpool 2, global average pool, Dense 64-10.

The axiom model (NHWC, weights ``(in, out)`` and ``(kH, kW, C_in, C_out)``) and the PyTorch
model (NCHW) get the same weights; onnxruntime runs the PyTorch model exported with
``torch.onnx.export(dynamo=False, opset_version=17)``. axiom runs on every backend through
``axiom.compile(model, backend=...)`` where that exists, else under
``axiom.use_backend(name)``; the ops that fell back to the NumPy reference are listed with
the timing. Outputs are compared (max abs error against PyTorch) before anything is timed.

Example:
    >>> am, tm = build_model("mlp", seed=0)
    >>> x = model_input("mlp", 4, seed=1)
    >>> axiom_out = np.asarray(am(x))
    >>> axiom_out.shape
    (4, 10)
"""

from __future__ import annotations

import contextlib
import io
import os
import re
import tempfile
import warnings
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import numpy as np

import axiom
from axiom.autograd import no_grad
from axiom.backends import FallbackWarning, KernelBackend, use_backend
from axiom.bench.timing import Timing, cpu_ratio, interleave, ratio
from axiom.nn import Conv2d, Dense, GlobalAvgPool, MaxPool2d, Sequential

#: Largest max abs difference from PyTorch for an implementation to count as agreeing.
ATOL = 1e-4


@dataclass
class ModelCase:
    """One model at one batch size.

    Example:
        >>> [c.name for c in model_cases(quick=True)]
        ['mlp B32', 'cnn B32']
    """

    model: str
    batch: int
    quick: bool = False

    @property
    def name(self) -> str:
        """``"<model> B<batch>"``."""
        return f"{self.model} B{self.batch}"


def model_cases(quick: bool = False, filter: str | None = None) -> list[ModelCase]:
    """MLP and CNN at batch 32 and 256 (``quick``: batch 32 only); ``filter`` is a regex on names.

    Example:
        >>> [c.name for c in model_cases(filter="cnn")]
        ['cnn B32', 'cnn B256']
    """
    cases = [ModelCase(m, b, quick=b == 32) for m in ("mlp", "cnn") for b in (32, 256)]
    if quick:
        cases = [c for c in cases if c.quick]
    if filter:
        pattern = re.compile(filter)
        cases = [c for c in cases if pattern.search(c.name)]
    return cases


def _axiom_model(kind: str) -> Sequential:
    if kind == "mlp":
        return Sequential(Dense(784, 256, "relu"), Dense(256, 10))
    if kind == "cnn":
        return Sequential(
            Conv2d(1, 32, 3, padding=1, activation="relu"),
            MaxPool2d(2),
            Conv2d(32, 64, 3, padding=1, activation="relu"),
            MaxPool2d(2),
            GlobalAvgPool(),
            Dense(64, 10),
        )
    raise ValueError(f"unknown model {kind!r}; expected 'mlp' or 'cnn'")


def _torch_model(kind: str) -> Any:
    from torch import nn

    if kind == "mlp":
        return nn.Sequential(nn.Linear(784, 256), nn.ReLU(), nn.Linear(256, 10))
    return nn.Sequential(
        nn.Conv2d(1, 32, 3, padding=1),
        nn.ReLU(),
        nn.MaxPool2d(2),
        nn.Conv2d(32, 64, 3, padding=1),
        nn.ReLU(),
        nn.MaxPool2d(2),
        nn.AdaptiveAvgPool2d(1),
        nn.Flatten(),
        nn.Linear(64, 10),
    )


def _to_torch_name(key: str, kind: str) -> str:
    """axiom state key -> torch state key (layer indices differ: torch has separate ReLUs)."""
    index, _, param = key.partition(".")
    mapping = {"mlp": {"0": "0", "1": "2"}, "cnn": {"0": "0", "2": "3", "5": "8"}}[kind]
    return f"{mapping[index]}.{param}"


def _to_torch_array(value: np.ndarray) -> np.ndarray:
    if value.ndim == 2:  # Dense (in, out) -> Linear (out, in)
        return np.ascontiguousarray(value.T)
    if value.ndim == 4:  # Conv (kH, kW, Cin, Cout) -> (Cout, Cin, kH, kW)
        return np.ascontiguousarray(value.transpose(3, 2, 0, 1))
    return value


def build_model(kind: str, seed: int = 0, torch: bool = True) -> tuple[Sequential, Any]:
    """The axiom model and (with ``torch``) the equivalent PyTorch model, with the same weights.

    Weights are drawn like PyTorch's defaults (``U(-1/sqrt(fan_in), 1/sqrt(fan_in))``) from
    ``seed``, without touching axiom's global random state.

    Example:
        >>> am, tm = build_model("cnn", torch=False)
        >>> [type(layer).__name__ for layer in am], tm is None
        (['Conv2d', 'MaxPool2d', 'Conv2d', 'MaxPool2d', 'GlobalAvgPool', 'Dense'], True)
    """
    model = _axiom_model(kind)
    rng = np.random.default_rng(seed)
    state = {}
    for key, value in model.state_dict().items():
        owner = model[int(key.split(".")[0])]
        fan_in = value.shape[0] if isinstance(owner, Dense) else int(np.prod(owner.weight.shape[:3]))
        bound = 1.0 / np.sqrt(fan_in)
        state[key] = rng.uniform(-bound, bound, size=value.shape).astype(np.float32)
    model.load_state_dict(state)
    if not torch:
        return model, None
    import torch as th

    tmodel = _torch_model(kind)
    tmodel.load_state_dict({_to_torch_name(k, kind): th.from_numpy(_to_torch_array(v)) for k, v in state.items()})
    tmodel.eval()
    return model, tmodel


def model_input(kind: str, batch: int, seed: int = 1) -> np.ndarray:
    """A float32 input batch in axiom's layout: ``(batch, 784)`` or NHWC ``(batch, 28, 28, 1)``.

    Example:
        >>> model_input("cnn", 2).shape
        (2, 28, 28, 1)
    """
    shape = (batch, 784) if kind == "mlp" else (batch, 28, 28, 1)
    return np.random.default_rng(seed).standard_normal(shape, dtype=np.float32)


def torch_input(kind: str, x: np.ndarray) -> np.ndarray:
    """The same batch in PyTorch's layout (NCHW for the CNN; with one channel, a reshape).

    Example:
        >>> torch_input("cnn", np.zeros((2, 28, 28, 1), np.float32)).shape
        (2, 1, 28, 28)
    """
    return np.ascontiguousarray(x.transpose(0, 3, 1, 2)) if kind == "cnn" else x


def export_onnx(torch_model: Any, example: np.ndarray, path: str) -> str:
    """Export with the TorchScript exporter (``dynamo=False``), opset 17, dynamic batch axis.

    Example:
        >>> import tempfile, os
        >>> _, tm = build_model("mlp")
        >>> with tempfile.TemporaryDirectory() as d:
        ...     p = export_onnx(tm, model_input("mlp", 2), os.path.join(d, "mlp.onnx"))
        ...     os.path.getsize(p) > 0
        True
    """
    import torch

    with warnings.catch_warnings(), contextlib.redirect_stdout(io.StringIO()):
        warnings.simplefilter("ignore")
        torch.onnx.export(
            torch_model,
            (torch.from_numpy(example),),
            path,
            dynamo=False,
            opset_version=17,
            input_names=["x"],
            output_names=["y"],
            dynamic_axes={"x": {0: "batch"}, "y": {0: "batch"}},
        )
    return path


def ort_session(path: str, threads: int) -> Any:
    """An onnxruntime CPU session: ``intra_op_num_threads = threads``, ORT_ENABLE_ALL, no spin-waiting.

    Example:
        >>> import tempfile, os
        >>> _, tm = build_model("mlp")
        >>> with tempfile.TemporaryDirectory() as d:
        ...     s = ort_session(export_onnx(tm, model_input("mlp", 2), os.path.join(d, "m.onnx")), 1)
        >>> s.get_providers()
        ['CPUExecutionProvider']
    """
    import onnxruntime as ort

    opts = ort.SessionOptions()
    opts.intra_op_num_threads = threads
    opts.inter_op_num_threads = 1
    opts.graph_optimization_level = ort.GraphOptimizationLevel.ORT_ENABLE_ALL
    # like OMP_WAIT_POLICY=PASSIVE for torch/OpenBLAS: spinning workers collapse on a shared box
    opts.add_session_config_entry("session.intra_op.allow_spinning", "0")
    return ort.InferenceSession(path, sess_options=opts, providers=["CPUExecutionProvider"])


def _normalise_fallbacks(fallbacks: Any) -> dict[str, str]:
    if not fallbacks:
        return {}
    if isinstance(fallbacks, dict):
        return {str(k): str(v) for k, v in fallbacks.items()}
    return {str(op): "fallback" for op in fallbacks}


def axiom_runner(model: Sequential, name: str, backend: KernelBackend) -> tuple[Callable[[np.ndarray], Any], str, Any]:
    """``(run, mode, fallbacks)`` for the model on a backend.

    ``mode`` is ``"compile"`` when ``axiom.compile`` exists and accepted the model, else
    ``"use_backend"``; ``fallbacks()`` returns ``{op: reason}`` of the ops that ran on the
    NumPy reference so far.

    Example:
        >>> from axiom.backends import get_backend
        >>> am, _ = build_model("mlp", torch=False)
        >>> run, mode, fallbacks = axiom_runner(am, "numpy", get_backend("numpy"))
        >>> np.asarray(run(model_input("mlp", 3))).shape, fallbacks()
        ((3, 10), {})
    """
    compile_fn = getattr(axiom, "compile", None)
    if compile_fn is not None:
        try:
            compiled = compile_fn(model, backend=name)
        except Exception as e:  # noqa: BLE001 - a compiler failure falls back to eager dispatch, labelled
            warnings.warn(f"axiom.compile(model, backend={name!r}) failed ({e}); using use_backend", stacklevel=2)
        else:
            return compiled, "compile", lambda: _normalise_fallbacks(getattr(compiled, "fallbacks", None))

    def run(x: np.ndarray) -> Any:
        with use_backend(backend), no_grad():  # inference, like torch under set_grad_enabled(False)
            return model(x)

    if isinstance(getattr(backend, "fallbacks", None), dict):
        backend.fallbacks.clear()  # type: ignore[attr-defined]
    return run, "use_backend", lambda: _normalise_fallbacks(getattr(backend, "fallbacks", None))


def run_model_case(
    case: ModelCase,
    backends: dict[str, KernelBackend],
    threads: int = 1,
    repeat: int = 11,
    min_sample_s: float = 0.005,
    budget_s: float | None = 20.0,
    torch: bool = True,
    onnxruntime: bool = True,
    workdir: str | None = None,
) -> dict[str, Any]:
    """Check and time one model case on every backend, PyTorch eager and onnxruntime.

    Returns the JSON record: per implementation ``status`` (``native``, ``fallbacks``,
    ``baseline``, ``error``), ``mode``, ``fallbacks`` (op -> reason), ``max_abs_err`` against
    PyTorch (or the NumPy backend without torch), ``median_ms``/``best_ms``/``cpu_ms`` per batch,
    ``samples_per_s``, and ``ratio_torch``/``ratio_onnxruntime``/``ratio_numpy``.

    Example:
        >>> from axiom.backends import get_backend
        >>> rec = run_model_case(ModelCase("mlp", 8), {"numpy": get_backend("numpy")}, repeat=1,
        ...                      min_sample_s=0.0, torch=False, onnxruntime=False)
        >>> rec["impls"]["numpy"]["status"], rec["impls"]["numpy"]["samples_per_s"] > 0
        ('baseline', True)
    """
    amodel, tmodel = build_model(case.model, torch=torch or onnxruntime)
    x = model_input(case.model, case.batch)
    xt = torch_input(case.model, x)
    impls: dict[str, dict[str, Any]] = {}
    fns: dict[str, Callable[[], object]] = {}
    outputs: dict[str, np.ndarray] = {}
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", FallbackWarning)
        if torch:
            import torch as th

            th.set_grad_enabled(False)
            tx = th.from_numpy(xt)
            outputs["torch"] = tmodel(tx).numpy()
            impls["torch"] = {"status": "torch", "mode": "eager"}
            fns["torch"] = lambda: tmodel(tx)
        if onnxruntime:
            entry = impls["onnxruntime"] = {"status": "onnxruntime", "opset": 17}
            try:
                with tempfile.TemporaryDirectory(dir=workdir) as d:
                    sess = ort_session(export_onnx(tmodel, xt, os.path.join(d, f"{case.model}.onnx")), threads)
                feed = {"x": xt}
                outputs["onnxruntime"] = sess.run(None, feed)[0]
                fns["onnxruntime"] = lambda: sess.run(None, feed)
            except Exception as e:  # noqa: BLE001
                entry.update(status="error", error=f"{type(e).__name__}: {e}")
        for name, be in backends.items():
            entry = impls[name] = {"status": "baseline" if name == "numpy" else "native"}
            try:
                run, mode, fallbacks = axiom_runner(amodel, name, be)
                outputs[name] = np.asarray(run(x))
            except Exception as e:  # noqa: BLE001
                entry.update(status="error", error=f"{type(e).__name__}: {e}")
                continue
            fb = fallbacks() if name != "numpy" else {}
            entry.update(mode=mode, fallbacks=fb)
            if fb:
                entry["status"] = "fallbacks"
            fns[name] = lambda run=run: run(x)
        ref_name = "torch" if "torch" in outputs else "numpy"
        for name, out in outputs.items():
            err = float(np.abs(out.astype(np.float64) - outputs[ref_name]).max())
            impls[name].update(max_abs_err=err, agrees=err <= ATOL, checked_against=ref_name)
        timings: dict[str, Timing] = interleave(fns, repeat=repeat, min_sample_s=min_sample_s, budget_s=budget_s)
    for name, t in timings.items():
        entry = impls[name]
        entry.update(
            timed=True,
            median_ms=t.median_ms,
            best_ms=t.best_ms,
            cpu_ms=t.cpu_median_ms,
            samples_per_s=case.batch / (t.median_ms * 1e-3),
            calls_per_sample=t.number,
            samples=len(t.wall_ms),
            wall_samples_ms=list(t.wall_ms),
        )
        for base in ("numpy", "torch", "onnxruntime"):
            if base in timings:
                entry[f"ratio_{base}"] = 1.0 if base == name else ratio(t, timings[base])
                if base != name:
                    entry[f"cpu_ratio_{base}"] = cpu_ratio(t, timings[base])
    for entry in impls.values():
        entry.setdefault("timed", False)
    return {"name": case.name, "model": case.model, "batch": case.batch, "impls": impls}
