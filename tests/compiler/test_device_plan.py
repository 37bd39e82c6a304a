"""Device-resident compiled models (``axiom.compiler.device_plan``) on OpenCL (PoCL on the CPU in CI) and CUDA.

``compile(model, backend="opencl")`` must run every layer of the design on the device (no
fallback, no FallbackWarning), agree with the NumPy reference backend's compiled model, move
only the input up and the output down (one upload and one download per call), serve any
batch size, run float16 / bfloat16 / mixed precision, send layers without a device lowering to
the CPU (recorded, warned once), and hand a call to the CPU when the device fails at run time.
``AXIOM_BACKEND`` overrides ``detect_coprocessor()``. Without OpenCL the tests skip, or fail
under ``AXIOM_REQUIRE_NATIVE=1``; the model tests also run on CUDA where there is a GPU
(``make test-gpu``), and skip with the reason elsewhere.
"""

from __future__ import annotations

import importlib.util
import sys
import warnings
from pathlib import Path

import numpy as np
import pytest
from compiler_models import (
    assert_close,
    build_conv,
    build_dense,
    conv_recipes,
    dense_recipes,
    image_model,
    sequence_model,
)
from hypothesis import HealthCheck, given, settings

from axiom import Dense, Flatten, Permute, Reshape, Sequential, compile
from axiom.backends import FallbackWarning
from axiom.compiler import Coprocessor, detect_coprocessor
from axiom.nn.layer import ShapePreservingLayer
from axiom.tensor import Tensor


def _gpu_libs():  # noqa: ANN202 - the tests/backends helper module
    found = sys.modules.get("gpu_libs")
    if found is None:
        spec = importlib.util.spec_from_file_location(
            "gpu_libs", Path(__file__).parents[1] / "backends" / "gpu_libs.py"
        )
        found = importlib.util.module_from_spec(spec)
        sys.modules["gpu_libs"] = found
        spec.loader.exec_module(found)
    return found


gpu_libs = _gpu_libs()
MODELS = {"image": image_model, "sequence": sequence_model}


@pytest.fixture(scope="module")
def shared():  # noqa: ANN201 - one OpenCLBackend for the property tests (programs built once)
    return gpu_libs.opencl_backend()


def count_transfers(monkeypatch: pytest.MonkeyPatch, rt) -> dict[str, int]:  # noqa: ANN001
    """Count every host <-> device copy of ``rt`` from now on."""
    counts = {"up": 0, "down": 0, "alloc": 0}
    to_device, to_host, empty = rt.to_device, rt.to_host, rt.empty

    def alloc(*args, **kwargs):  # noqa: ANN002, ANN003, ANN202
        counts["alloc"] += 1
        return empty(*args, **kwargs)

    def up(*args, **kwargs):  # noqa: ANN002, ANN003, ANN202
        counts["up"] += 1
        return to_device(*args, **kwargs)

    def down(*args, **kwargs):  # noqa: ANN002, ANN003, ANN202
        counts["down"] += 1
        return to_host(*args, **kwargs)

    monkeypatch.setattr(rt, "to_device", up)
    monkeypatch.setattr(rt, "to_host", down)
    monkeypatch.setattr(rt, "empty", alloc)
    return counts


def reference(model, x, precision: str = "float32") -> np.ndarray:  # noqa: ANN001
    return compile(model, backend="numpy", precision=precision)(x).numpy().astype(np.float64)


@pytest.mark.parametrize("kind", gpu_libs.gpu_backends())
@pytest.mark.parametrize("optimize", ["none", "aggressive"])
@pytest.mark.parametrize("which", sorted(MODELS))
def test_every_layer_stays_on_the_device(kind: str, which: str, optimize: str, monkeypatch: pytest.MonkeyPatch) -> None:
    gpu_libs.gpu_backend(kind)
    model, x = MODELS[which]()
    want = reference(model, x)
    with warnings.catch_warnings():
        warnings.simplefilter("error", FallbackWarning)
        compiled = compile(model, backend=kind, optimize=optimize)
        plan = compiled.plan
        assert plan is not None and plan.cpu_steps == [], plan.describe()
        assert plan.weight_bytes > 0
        counts = count_transfers(monkeypatch, plan.runtime)
        for call in (1, 2):
            got = compiled(x).numpy()
            assert (counts["up"], counts["down"]) == (call, call)  # the input up, the output down, nothing else
            if call == 1:
                first_allocs = counts["alloc"]
    # same shape again: the plan's arrays are reused; new are only the input and the causal attention kernel's scratch
    causal = sum(getattr(step.layer, "causal", False) for step in plan.steps)
    assert counts["alloc"] == first_allocs + 1 + causal
    assert compiled.fallbacks == {}, compiled.fallbacks
    assert (plan.uploads, plan.downloads) == (2, 2)
    assert got.dtype == np.float32 and got.shape == want.shape
    assert_close(got.astype(np.float64), want, rtol=1e-4, atol=1e-5)
    summary = compiled.summary()
    assert f"device     {plan.device_name}: {len(plan.steps)} steps" in summary
    assert "1 upload + 1 download per call" in summary and "bytes of weights resident" in summary


@pytest.mark.parametrize("kind", gpu_libs.gpu_backends())
@pytest.mark.parametrize("which", sorted(MODELS))
def test_one_plan_serves_every_batch_size(kind: str, which: str) -> None:
    gpu_libs.gpu_backend(kind)
    model, x = MODELS[which]()
    compiled = compile(model, backend=kind)
    for batch in (1, len(x), 0, 2):
        xb = x[:batch]
        got = compiled(xb).numpy()
        want = reference(model, xb)
        assert got.shape == want.shape
        assert_close(got.astype(np.float64), want, rtol=1e-4, atol=1e-5)
    assert compiled.plan.uploads == 4 and compiled.fallbacks == {}


@pytest.mark.parametrize("kind", gpu_libs.gpu_backends())
@pytest.mark.parametrize(("which", "precision"), [("image", "float16"), ("sequence", "bfloat16"), ("image", "mixed")])
def test_low_precision(kind: str, which: str, precision: str) -> None:
    gpu_libs.gpu_backend(kind)
    model, x = MODELS[which]()
    with warnings.catch_warnings():
        warnings.simplefilter("error", FallbackWarning)
        compiled = compile(model, backend=kind, precision=precision)
        got = compiled(x).numpy().astype(np.float64)
    assert compiled.fallbacks == {} and compiled.plan.cpu_steps == []
    # the device computes in float32 from the rounded weights: as close as the CPU, or closer
    cpu = reference(model, x, precision)
    exact = reference(model, x)
    tol = {"float16": 2e-2, "bfloat16": 1e-1, "mixed": 1e-2}[precision]
    assert_close(got, exact, rtol=tol, atol=tol)
    assert np.max(np.abs(got - exact)) <= np.max(np.abs(cpu - exact)) * 1.5 + 1e-6
    assert compiled.max_error(x) < tol


class Doubler(ShapePreservingLayer):
    """A user's layer: no device lowering."""

    def forward(self, x: Tensor) -> Tensor:
        return x * 2.0 + 1.0


class Halver(ShapePreservingLayer):
    """Another user's layer."""

    def forward(self, x: Tensor) -> Tensor:
        return x * 0.5 - 1.0


@pytest.mark.parametrize("kind", gpu_libs.gpu_backends())
def test_layers_without_a_device_lowering_run_on_the_cpu(kind: str, monkeypatch: pytest.MonkeyPatch) -> None:
    gpu_libs.gpu_backend(kind)
    layers = (Reshape((2, 4)), Permute((1, 0)), Halver(), Flatten(), Dense(8, 3), Doubler(), Dense(3, 2))
    model = Sequential(*layers, input_shape=(None, 8))
    x = np.random.default_rng(3).standard_normal((5, 8)).astype(np.float32)
    want = reference(model, x)
    compiled = compile(model, backend=kind)
    assert [type(s.layer).__name__ for s in compiled.plan.cpu_steps] == ["Halver", "Doubler"]  # Permute: device
    counts = count_transfers(monkeypatch, compiled.plan.runtime)
    with pytest.warns(FallbackWarning) as caught:
        got = compiled(x).numpy()
    assert sorted(str(w.message).split("'")[3] for w in caught) == ["layer Doubler", "layer Halver"]
    assert (counts["up"], counts["down"]) == (3, 3)  # the input, then a round trip per CPU step
    assert_close(got.astype(np.float64), want, rtol=1e-5, atol=1e-6)
    fallbacks = compiled.fallbacks
    assert set(fallbacks) == {"layer Halver", "layer Doubler"}
    assert "Doubler()" in fallbacks["layer Doubler"] and "ran on the CPU" in fallbacks["layer Doubler"]
    with warnings.catch_warnings():
        warnings.simplefilter("error", FallbackWarning)  # warned once
        assert_close(compiled(x[:2]).numpy().astype(np.float64), want[:2], rtol=1e-5, atol=1e-6)
    assert "(2 on the CPU)" in compiled.summary() and "CPU: Halver()" in compiled.summary()


@pytest.mark.parametrize("kind", gpu_libs.gpu_backends())
def test_nchw_models_permute_on_the_device(kind: str) -> None:
    """What the ONNX / PyTorch importers make of a conv net: NCHW in, Permute to NHWC, back before Flatten."""
    from axiom import Conv2d, MaxPool2d, ReLU

    gpu_libs.gpu_backend(kind)
    model = Sequential(
        Permute((1, 2, 0)), Conv2d(3, 5, 3, padding=1), ReLU(), MaxPool2d(2), Permute((2, 0, 1)), Flatten(),
        Dense(5 * 4 * 3, 4), input_shape=(None, 3, 9, 7),
    )  # fmt: skip
    x = np.random.default_rng(4).standard_normal((3, 3, 9, 7)).astype(np.float32)
    with warnings.catch_warnings():
        warnings.simplefilter("error", FallbackWarning)
        compiled = compile(model, backend=kind)
        got = compiled(x).numpy().astype(np.float64)
    assert compiled.plan.cpu_steps == [] and compiled.fallbacks == {}
    assert [s.describe().split(":")[0] for s in compiled.plan.steps].count("permute") == 2
    assert_close(got, reference(model, x), rtol=1e-4, atol=1e-5)


@pytest.mark.parametrize("kind", gpu_libs.gpu_backends())
def test_a_device_failing_at_run_time_hands_over_to_the_cpu(kind: str, monkeypatch: pytest.MonkeyPatch) -> None:
    from axiom.backends.gpu.errors import DeviceLostError

    gpu_libs.gpu_backend(kind)
    model, x = image_model()
    want = reference(model, x)
    compiled = compile(model, backend=kind)
    rt = compiled.plan.runtime
    assert_close(compiled(x).numpy().astype(np.float64), want, rtol=1e-4, atol=1e-5)  # healthy first
    launches = {"n": 0}
    launch = rt.launch

    def failing(family, name, *args):  # noqa: ANN001, ANN002, ANN202
        launches["n"] += 1
        if launches["n"] == 3:
            raise DeviceLostError(rt.device_name, name, "the device stopped answering (injected)")
        return launch(family, name, *args)

    monkeypatch.setattr(rt, "launch", failing)
    with pytest.warns(FallbackWarning, match="op 'device'"):
        got = compiled(x).numpy()
    assert_close(got.astype(np.float64), want, rtol=1e-4, atol=1e-5)
    reason = compiled.fallbacks["device"]
    assert rt.device_name in reason and "injected" in reason and "axiom_" in reason and "CPU" in reason
    assert compiled.plan is None and compiled.cpu_backend is not None
    with warnings.catch_warnings():
        warnings.simplefilter("error", FallbackWarning)  # warned once
        assert_close(compiled(x[:2]).numpy().astype(np.float64), want[:2], rtol=1e-4, atol=1e-5)
    assert launches["n"] == 3  # later calls never touch the device
    assert "failed at run time" in compiled.summary()


def test_embedding_indices_are_checked_on_the_host() -> None:
    gpu_libs.opencl_backend()
    model, tokens = sequence_model()
    compiled = compile(model, backend="opencl")
    bad = tokens.copy()
    bad[1, 4] = 50
    with pytest.raises(ValueError, match=r"Embedding: index 50 at position \(1, 4\) is out of range"):
        compiled(bad)
    with pytest.raises(TypeError, match="Embedding: expects integer indices"):
        compiled(tokens.astype(np.float32))
    assert compiled.fallbacks == {}


@settings(max_examples=20, deadline=None, database=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(recipe=dense_recipes())
def test_random_dense_models(shared, recipe: dict) -> None:  # noqa: ANN001
    model, x = build_dense(recipe)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", FallbackWarning)  # BatchNorm on batch statistics runs on the CPU
        got = compile(model, backend=shared, optimize="aggressive")(x).numpy()
    assert_close(got.astype(np.float64), reference(model, x), rtol=1e-4, atol=1e-5)


@settings(max_examples=15, deadline=None, database=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(recipe=conv_recipes())
def test_random_conv_models(shared, recipe: dict) -> None:  # noqa: ANN001
    model, x = build_conv(recipe)
    with warnings.catch_warnings():
        warnings.simplefilter("error", FallbackWarning)
        compiled = compile(model, backend=shared, optimize="none")
        got = compiled(x).numpy()
    assert compiled.plan.cpu_steps == []
    assert_close(got.astype(np.float64), reference(model, x), rtol=1e-4, atol=1e-5)


# -- AXIOM_BACKEND and Coprocessor objects --------------------------------------------------------------------------


def test_axiom_backend_forces_opencl(monkeypatch: pytest.MonkeyPatch) -> None:
    gpu_libs.opencl_backend()
    monkeypatch.setenv("AXIOM_BACKEND", "opencl")
    found = detect_coprocessor()
    assert isinstance(found, Coprocessor) and found.kind == "opencl" and found.backend == "opencl"
    assert found.device_type in ("cpu", "gpu", "accelerator")  # PoCL's CPU device counts when forced
    model, x = image_model()
    compiled = compile(model, backend=found)
    assert type(compiled.backend).__name__ == "OpenCLBackend" and compiled.plan is not None
    assert (compiled.plan.runtime.platform_index, compiled.plan.runtime.device_index) == found.index
    assert_close(compiled(x).numpy().astype(np.float64), reference(model, x), rtol=1e-4, atol=1e-5)


@pytest.mark.parametrize("value", ["none", "cpu", " NONE "])
def test_axiom_backend_none(monkeypatch: pytest.MonkeyPatch, value: str) -> None:
    monkeypatch.setenv("AXIOM_BACKEND", value)
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        assert detect_coprocessor() is None


def test_axiom_backend_cuda_without_cuda_warns(monkeypatch: pytest.MonkeyPatch) -> None:
    if gpu_libs._cuda_error() is None:
        pytest.skip("a CUDA device is present")
    monkeypatch.setenv("AXIOM_BACKEND", "cuda")
    with pytest.warns(RuntimeWarning, match="AXIOM_BACKEND=cuda: no usable cuda device"):
        assert detect_coprocessor() is None


def test_axiom_backend_unknown_value_is_ignored(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("AXIOM_BACKEND", raising=False)
    unforced = detect_coprocessor()
    monkeypatch.setenv("AXIOM_BACKEND", "tpu")
    with pytest.warns(RuntimeWarning, match="AXIOM_BACKEND='tpu' is not one of cuda, opencl, none, cpu: ignored"):
        assert detect_coprocessor() == unforced


def test_coprocessor_that_cannot_be_opened() -> None:
    from axiom.compiler import BackendUnavailableError

    gpu_libs.opencl_backend()
    missing = Coprocessor("opencl", "Nothing", "Nobody", "gpu", (0, 99))
    with pytest.raises(BackendUnavailableError, match="opencl device 0:99: Nothing .* cannot be opened"):
        compile(Sequential(Dense(3, 2)), backend=missing)


def test_inner_axes_single_layers_and_checked_chains() -> None:
    from axiom import Affine, LayerNorm, Parallel, RMSNorm, Softmax

    gpu_libs.opencl_backend()
    rng = np.random.default_rng(5)
    model = Sequential(
        Reshape((3, 4)),
        Parallel(LayerNorm(4), RMSNorm(4, eps=1e-3), axis=1),  # (batch, 6, 4)
        Softmax(axis=1),
        Affine(scale=rng.uniform(0.5, 2.0, (1, 4)), shift=rng.standard_normal((6, 4))),
        Flatten(),
        Dense(24, 2),
        input_shape=(None, 12),
    )
    x = rng.standard_normal((3, 12)).astype(np.float32)
    with warnings.catch_warnings():
        warnings.simplefilter("error", FallbackWarning)
        compiled = compile(model, backend="opencl", optimize="none")
        got = compiled(x).numpy()
    assert compiled.plan.cpu_steps == []
    assert_close(got.astype(np.float64), reference(model, x), rtol=1e-5, atol=1e-6)
    single = compile(Dense(3, 2, "gelu"), backend="opencl")
    xs = np.ones((4, 3), np.float32)
    assert [s.describe() for s in single.plan.steps] == ["gemm: Dense(3, 2, gelu)"]
    assert_close(single(xs).numpy().astype(np.float64), reference(single.model, xs), rtol=1e-5, atol=1e-6)
    checked = Sequential(Dense(3, 2), check_finite=True)
    with pytest.warns(FallbackWarning, match="check_finite=True"):
        out = compile(checked, backend="opencl")(xs).numpy()
    assert_close(out.astype(np.float64), reference(checked, xs), rtol=1e-5, atol=1e-6)


def test_an_axiom_dsl_model_runs_on_the_cpu() -> None:
    from axiom import Softmax, float32
    from axiom import Tensor as TensorType
    from axiom.dsl import Probabilities, axiom

    gpu_libs.opencl_backend()

    @axiom
    class Tiny:
        input = TensorType[float32, ("batch", 4)]
        output = Probabilities(3)

        def forward(self, x):  # noqa: ANN001, ANN202
            return x >> Dense(4, 3) >> Softmax()

    model = Tiny()
    x = np.random.default_rng(6).standard_normal((2, 4)).astype(np.float32)
    compiled = compile(model, backend="opencl")
    with pytest.warns(FallbackWarning, match="layer Tiny"):
        got = compiled(x).numpy()
    assert "Tiny() overrides Sequential.forward" in compiled.fallbacks["layer Tiny"]
    assert_close(got.astype(np.float64), reference(model, x), rtol=1e-5, atol=1e-6)
