"""Tensor construction, dtypes and arithmetic."""

import ml_dtypes
import numpy as np
import pytest

from axiom import Tensor, as_tensor, bfloat16, float16, float32, float64
from axiom.tensor import as_dtype


def test_default_dtype_is_float32():
    assert Tensor([1.0, 2.0]).dtype == float32
    assert Tensor(3.5).dtype == float32
    assert Tensor([1, 2]).dtype.kind == "i"


def test_numpy_dtype_is_kept_and_cast():
    assert Tensor(np.zeros(3, np.float64)).dtype == float64
    assert Tensor(np.zeros(3), dtype="float16").dtype == float16
    t = Tensor(np.ones(3, np.float32), dtype="bfloat16")
    assert t.dtype == bfloat16 and t.dtype == np.dtype(ml_dtypes.bfloat16)
    assert t.astype("float32").dtype == float32


def test_unknown_dtype_and_object_data():
    with pytest.raises(TypeError, match="unknown dtype"):
        as_dtype("float7")
    with pytest.raises(TypeError, match="numeric data"):
        Tensor([object()])


def test_arithmetic_and_matmul():
    a = Tensor(np.arange(6, dtype=np.float32).reshape(2, 3))
    b = np.ones((3, 2), np.float32)
    np.testing.assert_array_equal((a @ b).numpy(), a.numpy() @ b)
    np.testing.assert_array_equal(np.asarray(b.T @ a.T), b.T @ a.numpy().T)
    np.testing.assert_array_equal((a + 1).numpy(), a.numpy() + 1)
    np.testing.assert_array_equal((1 - a).numpy(), 1 - a.numpy())
    np.testing.assert_array_equal((2 * a / 2).numpy(), a.numpy())
    np.testing.assert_array_equal((-a).numpy(), -a.numpy())
    assert (np.ones(3, np.float32) + Tensor(np.ones(3, np.float32))).__class__ is Tensor
    assert a.reshape(3, 2).shape == (3, 2) and a.reshape((6,)).shape == (6,)
    assert a.T.shape == (3, 2) and a.sum().item() == 15.0 and a[0].shape == (3,)


def test_as_tensor_no_copy():
    t = Tensor(np.ones(2, np.float32))
    assert as_tensor(t) is t
    assert as_tensor(t, "float64").dtype == float64
    assert np.asarray(t) is t.data
    assert "dtype=float32" in repr(t)
