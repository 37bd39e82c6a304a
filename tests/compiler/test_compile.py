"""compile() and CompiledModel: arguments, backends, precision, fallbacks, the untouched original.

Stated tolerances (docs/backends.md, "Precision"), checked against the original model run in
float64, as ``|y - y64| <= tol * (max(1, max|y64|) + |y64|)``:

- float32: 1e-5 (float rounding only; see tests/compiler/test_passes.py);
- mixed:   5e-3 (weights rounded to float16 once, unit roundoff 4.9e-4, about 10 u);
- float16: 1e-2 (weights and every layer's output rounded to float16, about 20 u);
- bfloat16: 6e-2 (the same with bfloat16's unit roundoff 3.9e-3, about 16 u).

The low-precision bounds are for networks of up to 4 blocks (about 10 layers) with default
initialisation and BatchNorm gains up to ~5, as drawn here; the error grows with depth and gain.
"""

from __future__ import annotations

import copy
import os
import sys
import types
import warnings

import numpy as np
import pytest
from compiler_models import assert_close, build_conv, build_dense, chain_pairs, conv_recipes, dense_recipes, run
from hypothesis import given
from hypothesis import strategies as st

import axiom
from axiom import (
    BatchNorm,
    Conv2d,
    Dense,
    Dropout,
    Flatten,
    MultiHeadAttention,
    ReLU,
    Sequential,
    Softmax,
    Tensor,
)
from axiom.backends import FallbackWarning, ReferenceBackend, get_backend, use_backend
from axiom.compiler import (
    BackendUnavailableError,
    CompiledModel,
    Coprocessor,
    compile,
    detect_coprocessor,
)
from axiom.compiler.passes import UpcastWeights

TOLERANCE = {"float32": 1e-5, "mixed": 5e-3, "float16": 1e-2, "bfloat16": 6e-2}
small_models = st.one_of(dense_recipes(max_layers=4).map(build_dense), conv_recipes(max_layers=4).map(build_conv))


def c_backend_or_skip():
    try:
        return get_backend("c")
    except (ImportError, OSError) as err:
        if os.environ.get("AXIOM_REQUIRE_NATIVE") == "1":
            raise
        pytest.skip(f"the C kernels are not built here: {err}")


def model_and_input():
    net = Sequential(
        Conv2d(3, 8, 3, padding=1),
        BatchNorm(),
        ReLU(),
        Dropout(0.2),
        Flatten(),
        Dense(16),
        BatchNorm(),
        Dense(4),
        Softmax(),
        input_shape=(None, 6, 6, 3),
    )
    rng = np.random.default_rng(0)
    for layer in net.modules():
        if isinstance(layer, BatchNorm):
            layer.running_mean.data = rng.standard_normal(layer.num_features).astype(np.float32)
            layer.running_var.data = rng.uniform(0.5, 2, layer.num_features).astype(np.float32)
    return net, rng.standard_normal((3, 6, 6, 3)).astype(np.float32)


# -- outputs match within the stated tolerance ---------------------------------------------------


@pytest.mark.parametrize("optimize", ["none", "default", "aggressive"])
@pytest.mark.parametrize("precision", ["float32", "float16", "bfloat16", "mixed"])
@given(case=small_models)
def test_compiled_outputs_within_stated_tolerance(optimize, precision, case):
    model, x = case
    compiled = compile(model, backend="numpy", optimize=optimize, precision=precision)
    got = compiled(x).numpy().astype(np.float64)
    want = run(model, x, np.float64)
    tol = TOLERANCE[precision]
    assert_close(got, want, rtol=tol, atol=tol)
    assert compiled.max_error(x) == pytest.approx(float(np.max(np.abs(got - want))), rel=1e-12, abs=0)
    if precision == "float32":
        assert_close(got, run(model, x), rtol=tol, atol=tol)  # and against the float32 original
    assert compiled(x).dtype == np.float32


@given(case=small_models)
def test_optimizing_never_adds_layers_and_default_folds_batchnorm(case):
    model, _ = case
    plain = compile(model, backend="numpy", optimize="none")
    default = compile(model, backend="numpy", optimize="default")
    aggressive = compile(model, backend="numpy", optimize="aggressive")
    count = lambda m: sum(1 for layer in m.modules() if not layer.children())  # noqa: E731
    assert count(aggressive.model) <= count(default.model) <= count(plain.model) == count(model)
    assert [p.name for p in plain.passes] == ["cast_precision"]
    assert not any(isinstance(layer, Dropout) for pair in chain_pairs(default.model) for layer in pair)


# -- the original model is never touched ----------------------------------------------------------


def test_compile_does_not_mutate_the_model():
    model, x = model_and_input()
    model.train()
    state = {k: v.copy() for k, v in model.state_dict().items()}
    layers = list(model.layers)
    compiled = compile(model, backend="numpy", optimize="aggressive", precision="mixed")
    compiled(x)
    compiled.max_error(x)
    assert list(model.layers) == layers and len(model) == 9
    assert all(layer.training for layer in model.modules())  # still in training mode
    after = model.state_dict()
    assert state.keys() == after.keys()
    for k in state:
        np.testing.assert_array_equal(after[k], state[k])
        assert after[k].dtype == state[k].dtype
    assert not compiled.model.training and not any(layer.training for layer in compiled.model.modules())
    assert compiled.model is not model and all(
        p is not q for p in model.parameters() for q in compiled.model.parameters()
    )


def test_compiled_model_keeps_its_own_snapshot():
    model = Sequential(Dense(3, 2))
    x = np.ones((1, 3), np.float32)
    compiled = compile(model, backend="numpy")
    before = compiled(x).numpy()
    model[0].weight.data[:] = 0.0  # training the model further does not change the compiled one
    np.testing.assert_array_equal(compiled(x).numpy(), before)
    assert compiled.max_error(x) < 1e-6


# -- arguments --------------------------------------------------------------------------------------


def test_bad_arguments_name_the_choices():
    model = Sequential(Dense(3, 2))
    with pytest.raises(
        ValueError, match=r"unknown optimize level 'fast'; expected one of 'none', 'default', 'aggressive'"
    ):
        compile(model, optimize="fast")
    with pytest.raises(
        ValueError, match=r"unknown precision 'int8'; expected one of 'float32', 'float16', 'bfloat16', 'mixed'"
    ):
        compile(model, precision="int8")
    with pytest.raises(ValueError, match=r"unknown backend 'tpu'; expected one of 'auto', 'c', .*'cuda', 'opencl'"):
        compile(model, backend="tpu")
    with pytest.raises(TypeError, match="expects an axiom Layer"):
        compile(lambda x: x)
    with pytest.raises(TypeError, match="backend must be a name or a KernelBackend"):
        compile(model, backend=3)


@pytest.mark.parametrize("name", ["cuda", "opencl"])
def test_gpu_backends_without_a_device_fail_clearly(name, monkeypatch):
    from axiom.backends import registry

    def no_device():
        raise ImportError(f"no {name} driver here")

    monkeypatch.setitem(registry._FACTORIES, name, no_device)
    monkeypatch.delitem(registry._INSTANCES, name, raising=False)
    monkeypatch.setenv("AXIOM_BACKEND", "none")  # what detect_coprocessor() says is part of the message
    with pytest.raises(
        BackendUnavailableError,
        match=rf"backend '{name}': no usable {name} device \(no {name} driver here\); detect_coprocessor\(\) "
        "finds no .* never falls back from a GPU backend silently",
    ):
        compile(Sequential(Dense(3, 2)), backend=name)


def test_unbuilt_native_library_is_reported(monkeypatch):
    from axiom.backends import registry

    def broken():
        raise ImportError("the zig kernels are not built")

    monkeypatch.setitem(registry._FACTORIES, "zig", broken)
    monkeypatch.delitem(registry._INSTANCES, "zig", raising=False)
    with pytest.raises(BackendUnavailableError, match="backend 'zig' cannot be loaded on this machine"):
        compile(Sequential(Dense(3, 2)), backend="zig")


def test_backend_names_objects_and_auto():
    model = Sequential(Dense(3, 2))
    auto = compile(model)  # backend="auto"
    assert auto.backend.name in ("c", "numpy")
    assert get_backend("auto").name == auto.backend.name
    assert auto.backend is not get_backend(auto.backend.name)  # a fresh instance, not the registry's
    mine = ReferenceBackend()
    assert compile(model, backend=mine).backend is mine  # an object is used as given
    assert compile(model, backend="numpy").backend.name == "numpy"
    assert axiom.compile is compile and axiom.CompiledModel is CompiledModel
    assert axiom.compiler.use_backend is axiom.use_backend and axiom.compiler.set_backend is axiom.set_backend


def test_lazy_models_need_an_input_shape():
    lazy = Sequential(Dense(8), BatchNorm(), Dense(2))
    with pytest.raises(ValueError, match=r"Dense is not built yet.*input_shape="):
        compile(lazy, backend="numpy")
    compiled = compile(lazy, backend="numpy", input_shape=(None, 5))
    assert lazy[0].weight is None  # the model itself stays lazy
    assert compiled.input_shape == ("batch", 5) and compiled.output_shape() == ("batch", 2)
    assert compiled(np.ones((4, 5), np.float32)).shape == (4, 2)
    assert compiled.output_shape((7, 5)) == (7, 2)
    lazy_conv = Conv2d(4, 3)
    compiled = compile(lazy_conv, backend="numpy", input_shape=(None, 5, 5, 2))
    assert compiled(np.ones((1, 5, 5, 2), np.float32)).shape == (1, 3, 3, 4)


def test_inputs_are_cast_at_the_edge_and_outputs_are_float32():
    model, x = model_and_input()
    for precision in ("float32", "float16", "bfloat16", "mixed"):
        compiled = compile(model, backend="numpy", precision=precision)
        for xin in (x, x.astype(np.float64), Tensor(x), x.tolist()):
            assert compiled(xin).dtype == np.float32
        assert compiled.max_error(x) <= TOLERANCE[precision] * 4


# -- precision modes ----------------------------------------------------------------------------------


def test_precision_storage():
    model, x = model_and_input()
    half = compile(model, backend="numpy", precision="float16")
    assert {p.dtype.name for p in half.model.parameters()} == {"float16"}
    assert (half.weight_dtype.name, half.activation_dtype.name) == ("float16", "float16")
    bf = compile(model, backend="numpy", precision="bfloat16")
    assert {p.dtype.name for p in bf.model.parameters()} == {"bfloat16"}
    mixed = compile(model, backend="numpy", precision="mixed")
    assert {p.dtype.name for p in mixed.model.parameters()} == {"float16"}
    assert (mixed.weight_dtype.name, mixed.activation_dtype.name) == ("float16", "float32")
    assert all(isinstance(layer, UpcastWeights) for layer in mixed.model if layer.parameters())
    # mixed == the float32 model with every weight rounded to float16 once
    rounded = copy.deepcopy(compile(model, backend="numpy").model)
    for p in rounded.parameters():
        p.data = p.data.astype(np.float16).astype(np.float32)
    np.testing.assert_allclose(mixed(x).numpy(), run(rounded, x), rtol=1e-6, atol=1e-7)


def test_mixed_precision_wraps_composite_layers_whole():
    mha = Sequential(MultiHeadAttention(8, 2), Flatten(), Dense(2))
    x = np.random.default_rng(0).standard_normal((2, 3, 8)).astype(np.float32)
    compiled = compile(mha, backend="numpy", precision="mixed", input_shape=(None, 3, 8))
    assert isinstance(compiled.model[0], UpcastWeights)
    assert compiled.max_error(x) < TOLERANCE["mixed"]


# -- the C backend end to end: fallbacks recorded, warned once, outputs match -------------------------------


class Recording(ReferenceBackend):
    """The reference, noting which contract ops run."""

    def __init__(self):
        self.used = set()

    def __getattribute__(self, attr):
        from axiom.backends import OPS

        if attr in OPS:
            object.__getattribute__(self, "used").add(attr)
        return object.__getattribute__(self, attr)


def ops_used(compiled, x):
    rec = Recording()
    with use_backend(rec):
        compiled.model(Tensor(np.asarray(x, compiled.activation_dtype)))
    return rec.used


@pytest.mark.parametrize("precision", ["float32", "float16", "mixed"])
def test_c_backend_end_to_end_records_fallbacks(precision):
    shared = c_backend_or_skip()
    shared_fallbacks = dict(getattr(shared, "fallbacks", {}))
    model, x = model_and_input()
    compiled = compile(model, backend="c", precision=precision)
    assert compiled.backend.name == "c" and compiled.fallbacks == {}
    native = set(compiled.backend.implemented_ops())
    used = ops_used(compiled, x)
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        got = compiled(x).numpy()
    warned = {str(w.message).split("'")[3] for w in caught if issubclass(w.category, FallbackWarning)}
    assert warned == set(compiled.fallbacks)
    # ops the C backend lacks always fall back; in low precision, native ops may too (float32/64 kernels only)
    assert used - native <= set(compiled.fallbacks) <= used
    if compiled.activation_dtype == np.float32:
        assert set(compiled.fallbacks) == used - native
    for op, reason in compiled.fallbacks.items():
        if op in native:
            assert "dtype" in reason, (op, reason)
        else:
            assert reason == "not implemented by this backend", (op, reason)
    expected = set(compiled.fallbacks)
    with warnings.catch_warnings():
        warnings.simplefilter("error")  # warned once: the second call is silent
        again = compiled(x).numpy()
    np.testing.assert_array_equal(again, got)
    assert compiled.max_error(x) <= TOLERANCE[precision]
    with use_backend("numpy"):
        assert_close(got, compile(model, backend="numpy", precision=precision)(x).numpy(), rtol=1e-5, atol=1e-5)
    # each compiled model owns its backend: the registry's instance saw nothing
    assert dict(getattr(shared, "fallbacks", {})) == shared_fallbacks
    if expected:
        summary = compiled.summary()
        assert all(f"{op}: " in summary for op in expected)
        other = compile(model, backend="c", precision=precision)
        with pytest.warns(FallbackWarning):
            other(x)


def test_fallbacks_is_a_copy_and_numpy_has_none():
    model, x = model_and_input()
    compiled = compile(model, backend="numpy")
    compiled(x)
    assert compiled.fallbacks == {}
    compiled.fallbacks["x"] = "y"
    assert compiled.fallbacks == {}


# -- summary ------------------------------------------------------------------------------------------------


def test_summary_text():
    model, x = model_and_input()
    compiled = compile(model, backend="numpy", optimize="aggressive", precision="float16")
    text = compiled.summary()
    for needle in (
        "CompiledModel of Sequential",
        "backend    numpy (ReferenceBackend)",
        "precision  float16: weights float16, activations float16, outputs float32",
        "optimize   aggressive",
        "shapes     (batch, 6, 6, 3) -> (batch, 4)",
        "layers     9 -> 4",
        "fold_constants: 1 change",
        "(float32 -> float16)",
        "remove_dead_layers: 1 change",
        "fold_batchnorm: 2 changes",
        "fuse_activations: 1 change",
        "3: Dropout(p=0.2) removed (identity in eval mode)",
        "fallbacks  none so far",
    ):
        assert needle in text, f"{needle!r} not in\n{text}"
    assert repr(compiled) == "CompiledModel(Sequential, backend='numpy', optimize='aggressive', precision='float16')"
    assert [str(p) for p in compiled.passes][-1].startswith("cast_precision: 1 change")


# -- detect_coprocessor -------------------------------------------------------------------------------------


def test_detect_coprocessor_here():
    found = detect_coprocessor()
    assert found is None or (isinstance(found, Coprocessor) and found.kind in ("cuda", "opencl"))
    assert axiom.detect_coprocessor is detect_coprocessor


def _fake_opencl(*device_types):
    cl = types.ModuleType("pyopencl")
    cl.device_type = types.SimpleNamespace(CPU=2, GPU=4, ACCELERATOR=8)

    class Device:
        def __init__(self, kind):
            self.type, self.name, self.vendor, self.global_mem_size = kind, f" dev{kind} ", "Vendor ", 2**30

    platform = types.SimpleNamespace(name="Fake CL", get_devices=lambda: [Device(t) for t in device_types])
    cl.get_platforms = lambda: [platform]
    return cl


def test_detect_coprocessor_with_fake_drivers(monkeypatch):
    broken_cuda = types.ModuleType("pycuda.driver")

    def no_device():
        raise RuntimeError("cuInit failed: no CUDA-capable device is detected")

    broken_cuda.init = no_device
    monkeypatch.setitem(sys.modules, "pycuda", types.ModuleType("pycuda"))
    monkeypatch.setitem(sys.modules, "pycuda.driver", broken_cuda)
    monkeypatch.setitem(sys.modules, "pyopencl", _fake_opencl(2))  # a CPU device only: no coprocessor
    assert detect_coprocessor() is None
    monkeypatch.setitem(sys.modules, "pyopencl", _fake_opencl(2, 4))
    found = detect_coprocessor()
    assert found == Coprocessor("opencl", "dev4", "Vendor", "gpu", (0, 1), 2**30, "Fake CL")
    assert found.backend == "opencl" and "opencl device 0:1: dev4" in str(found)
    no_platform = types.ModuleType("pyopencl")
    no_platform.device_type = types.SimpleNamespace(CPU=2, GPU=4, ACCELERATOR=8)

    def platform_not_found():
        raise RuntimeError("clGetPlatformIDs failed: PLATFORM_NOT_FOUND_KHR")

    no_platform.get_platforms = platform_not_found
    monkeypatch.setitem(sys.modules, "pyopencl", no_platform)
    assert detect_coprocessor() is None


def test_detect_coprocessor_finds_a_cuda_device(monkeypatch):
    drv = types.ModuleType("pycuda.driver")
    drv.init = lambda: None
    drv.get_version = lambda: (12, 4, 0)

    class Device:
        count = staticmethod(lambda: 1)

        def __init__(self, index):
            self.index = index

        def name(self):
            return "NVIDIA H100"

        def total_memory(self):
            return 80 * 2**30

        def compute_capability(self):
            return (9, 0)

    drv.Device = Device
    monkeypatch.setitem(sys.modules, "pycuda", types.ModuleType("pycuda"))
    monkeypatch.setitem(sys.modules, "pycuda.driver", drv)
    found = detect_coprocessor()
    assert found is not None and (found.kind, found.name, found.index) == ("cuda", "NVIDIA H100", 0)
    assert found.platform == "CUDA 12.4.0, sm_90"
    # auto never picks a GPU, even when one is found
    assert compile(Sequential(Dense(3, 2))).backend.name in ("c", "numpy")


@pytest.mark.parametrize("precision", ["float32", "float16", "bfloat16", "mixed"])
def test_integer_inputs_are_not_cast(precision):
    model = Sequential(axiom.Embedding(10, 4), Flatten(), Dense(3), input_shape=(None, 5))
    tokens = np.array([[1, 2, 3, 4, 5], [0, 9, 9, 0, 1]])
    compiled = compile(model, backend="numpy", precision=precision)
    assert compiled(tokens).dtype == np.float32
    assert compiled.max_error(tokens) <= TOLERANCE[precision]


def test_a_partial_backend_object_records_every_missing_op():
    """Whatever the C kernels cover by now, a backend that runs only matmul natively falls back for the rest."""
    c_backend_or_skip()
    from axiom.backends.native import CBackend

    class MatmulOnly(CBackend):
        name = "c-matmul-only"
        native_ops = ("matmul",)

    model, x = model_and_input()
    backend = MatmulOnly()
    compiled = compile(model, backend=backend)
    assert compiled.backend is backend
    used = ops_used(compiled, x)
    with pytest.warns(FallbackWarning) as caught:
        got = compiled(x).numpy()
    assert set(compiled.fallbacks) == used - {"matmul"} == {str(w.message).split("'")[3] for w in caught}
    assert {"conv2d", "activation", "softmax"} <= set(compiled.fallbacks)
    assert set(compiled.fallbacks.values()) == {"not implemented by this backend"}
    assert_close(got, run(model, x, np.float64), rtol=TOLERANCE["float32"], atol=TOLERANCE["float32"])
    assert "fallbacks  activation: not implemented by this backend" in compiled.summary()


def test_compiled_models_hold_inputs_to_the_compiled_shape():
    from axiom import Reshape, ShapeError

    model = Sequential(Reshape((-1,)), Softmax())  # accepts any rank; the stated input is (batch, features)
    guessed = compile(model, backend="numpy")
    assert len(guessed.model) == 1  # the Reshape is the identity on (batch, features)
    cube = np.random.default_rng(0).standard_normal((2, 3, 4)).astype(np.float32)
    with pytest.raises(ShapeError, match=r"CompiledModel: expects \(batch, features\) but receives \(2, 3, 4\)"):
        guessed(cube)
    stated = compile(model, backend="numpy", input_shape=(None, 3, 4))
    assert len(stated.model) == 2
    np.testing.assert_allclose(stated(cube).numpy(), model(cube).numpy(), rtol=1e-6)
    fixed = compile(Sequential(Dense(3, 2)), backend="numpy", input_shape=(4, 3))
    with pytest.raises(ShapeError, match="input shape it was compiled for"):
        fixed(np.ones((5, 3), np.float32))


def test_values_out_of_range_are_reported():
    dense = Dense(3, 2)
    dense.weight.data[0, 0] = 1e6  # beyond float16's 65504
    dense.bias.data[0] = 1e-9  # below float16's smallest subnormal
    bn = BatchNorm(2)
    bn.running_var.data[:] = 1e6  # a buffer: float16 storage overflows, mixed keeps it float32
    model = Sequential(dense, ReLU(), bn)
    with pytest.warns(RuntimeWarning, match="float16 precision: 3 values overflow float16"):
        half = compile(model, backend="numpy", optimize="none", precision="float16")
    assert "1 non-zero value underflows float16 to 0" in half.passes[-1].changes
    with pytest.warns(RuntimeWarning, match="mixed precision: 0: 1 value overflows float16"):
        mixed = compile(model, backend="numpy", optimize="none", precision="mixed")
    assert mixed.model[2].layer.running_var.dtype == np.float32
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        bf = compile(model, backend="numpy", optimize="none", precision="bfloat16")  # float32's range
    assert not any("overflow" in line for line in bf.passes[-1].changes)
