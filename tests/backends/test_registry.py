"""Backend selection and the explicit, recorded fallback of PartialBackend."""

import os
import warnings

import numpy as np
import pytest

from axiom import Dense
from axiom import functional as F
from axiom.backends import (
    OPS,
    FallbackWarning,
    KernelBackend,
    PartialBackend,
    ReferenceBackend,
    get_backend,
    register_backend,
    set_backend,
    use_backend,
)


class OnlySoftmax(PartialBackend):
    """A toy backend that implements one op (by calling NumPy) to test routing."""

    name = "only-softmax"
    native_ops = ("softmax",)

    def __init__(self):
        super().__init__()
        self.calls = 0

    def softmax(self, x, axis):
        self.calls += 1
        return ReferenceBackend().softmax(x, axis)


def test_default_is_numpy_and_unknown_names_fail():
    assert get_backend().name == "numpy"
    with pytest.raises(ValueError, match="unknown backend 'tpu'"):
        get_backend("tpu")


def test_reference_implements_the_whole_contract():
    ref = ReferenceBackend()
    for op in OPS:
        assert getattr(type(ref), op) is not getattr(KernelBackend, op), op


def test_use_backend_routes_layers_and_records_fallbacks_once():
    be = OnlySoftmax()
    layer = Dense(3, 2)
    x = np.ones((4, 3), np.float32)
    expected = layer(x).numpy()
    with use_backend(be):
        with pytest.warns(FallbackWarning, match="'matmul' runs on the NumPy reference"):
            out = layer(x).numpy()
        with warnings.catch_warnings():
            warnings.simplefilter("error")  # second use: no new warning
            layer(x)
            F.softmax(x)
    np.testing.assert_array_equal(out, expected)
    assert be.fallbacks == {"matmul": "not implemented by this backend"}
    assert be.calls == 1
    assert be.implemented_ops() == ("softmax",)
    assert get_backend().name == "numpy"


def test_set_backend_and_register():
    register_backend("only-softmax", OnlySoftmax)
    try:
        assert set_backend("only-softmax").name == "only-softmax"
        assert get_backend().name == "only-softmax"
    finally:
        set_backend("numpy")
    assert get_backend().name == "numpy"


def test_openmp_busy_warning_when_torch_started_the_runtime_first() -> None:
    """torch imported first (no OMP_WAIT_POLICY) makes the C backend warn once; axiom first does not."""
    import subprocess
    import sys

    env = {k: v for k, v in os.environ.items() if k not in ("OMP_WAIT_POLICY", "GOMP_SPINCOUNT")}
    code = (
        "import warnings, {first}, {second}\n"
        "from axiom.backends.native import CBackend\n"
        "with warnings.catch_warnings(record=True) as w:\n"
        "    warnings.simplefilter('always')\n"
        "    CBackend(); CBackend()\n"
        "print(sum('OMP_WAIT_POLICY' in str(x.message) for x in w))\n"
    )
    for first, second, expected in (("torch", "axiom", "1"), ("axiom", "torch", "0")):
        out = subprocess.run(
            [sys.executable, "-c", code.format(first=first, second=second)],
            env=env, capture_output=True, text=True, check=True, timeout=120,
        )  # fmt: skip
        assert out.stdout.strip() == expected, (first, out.stdout, out.stderr[-2000:])
