"""Shape arithmetic and ShapeError formatting."""

import pytest
from hypothesis import given
from hypothesis import strategies as st

from axiom.shapes import (
    ShapeError,
    conv_output_dim,
    dims_match,
    format_shape,
    normalize_shape,
    same_output_dim,
    same_padding,
    shape_size,
)


def test_format_shape_symbols_unquoted():
    assert format_shape(("batch", 3, "H-2")) == "(batch, 3, H-2)"
    assert format_shape(("batch",)) == "(batch,)"
    assert format_shape(()) == "()"


def test_conv_output_dim_concrete_and_symbolic():
    assert conv_output_dim(224, 3) == 222
    assert conv_output_dim(224, 3, stride=2, pad_total=2) == 112
    assert conv_output_dim("H", 3) == "H-2"
    assert conv_output_dim("H", 1) == "H"
    assert conv_output_dim("H", 3, pad_total=2) == "H"
    assert conv_output_dim("W", 3, stride=2) == "(W-3)//2+1"
    with pytest.raises(ValueError, match="does not fit"):
        conv_output_dim(2, 5)


@given(size=st.integers(1, 300), kernel=st.integers(1, 9), stride=st.integers(1, 4), dil=st.integers(1, 3))
def test_same_padding_gives_ceil_division(size, kernel, stride, dil):
    before, after = same_padding(size, kernel, stride, dil)
    assert after - before in (0, 1)
    assert conv_output_dim(size, kernel, stride, before + after, dil) == same_output_dim(size, stride)


def test_dims_match_and_size():
    assert dims_match(3, 3) and dims_match("a", 3) and not dims_match(3, 4)
    assert shape_size((2, 3, 4)) == 24
    assert shape_size(("H", 3)) == "H*3"


def test_normalize_shape():
    assert normalize_shape((None, 224, 224, 3)) == ("batch", 224, 224, 3)
    with pytest.raises(ValueError, match=">= 0"):
        normalize_shape((None, -1))
    with pytest.raises(TypeError, match="int or a symbol"):
        normalize_shape((None, 2.5))


def test_shape_error_message_and_nesting():
    err = ShapeError("Dense", "(batch, features)", ("batch", 222, 222, 64))
    assert str(err) == "Dense: expects (batch, features) but receives (batch, 222, 222, 64)"
    outer = err.at(2, (1, "Conv2d"))
    assert str(outer) == (
        "layer 2 (Dense): expects (batch, features) but receives (batch, 222, 222, 64) from layer 1 (Conv2d)"
    )
    nested = outer.at(3, (2, "Residual"))
    assert nested.position == "3.2" and nested.source == ("3.1", "Conv2d")
    first = err.at(1, None)
    assert str(first).endswith("from the model input")
    assert isinstance(err, ValueError)
