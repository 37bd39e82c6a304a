"""axiom's safetensors reader/writer (axiom.nn.state) against the reference ``safetensors`` package, both ways."""

from __future__ import annotations

import json
import struct
from pathlib import Path

import ml_dtypes
import numpy as np
import pytest
import safetensors.torch
import torch
from safetensors import safe_open
from safetensors.numpy import load_file, save_file

from axiom import Dense, ReLU, Sequential
from axiom.nn.state import (
    SafetensorsError,
    load_safetensors,
    load_safetensors_bytes,
    read_safetensors_metadata,
    save_safetensors,
    save_safetensors_bytes,
)

NP_DTYPES = [
    np.bool_,
    np.uint8,
    np.int8,
    np.int16,
    np.uint16,
    np.int32,
    np.uint32,
    np.int64,
    np.uint64,
    np.float16,
    np.float32,
    np.float64,
    ml_dtypes.bfloat16,
]
# safetensors.numpy has no float8 (it looks for np.float8_*): those go through safetensors.torch
F8_DTYPES = {ml_dtypes.float8_e4m3fn: torch.float8_e4m3fn, ml_dtypes.float8_e5m2: torch.float8_e5m2}
DTYPES = [*NP_DTYPES, *F8_DTYPES]


def _sample(dtype: type, shape: tuple[int, ...], seed: int) -> np.ndarray:
    rng = np.random.default_rng(seed)
    dt = np.dtype(dtype)
    if dt == np.bool_:
        return rng.integers(0, 2, size=shape).astype(bool)
    if dt.kind in "iu":
        info = np.iinfo(dt)
        return rng.integers(info.min, info.max, size=shape, dtype=dt, endpoint=True)
    return rng.normal(scale=3.0, size=shape).astype(dt)


def _state(seed: int = 0, dtypes: list = NP_DTYPES) -> dict[str, np.ndarray]:
    shapes = [(3, 4), (5,), (), (2, 0, 3), (2, 2, 2)]
    return {f"t{i}.{np.dtype(dt).name}": _sample(dt, shapes[i % len(shapes)], seed + i) for i, dt in enumerate(dtypes)}


def _same(a: np.ndarray, b: np.ndarray) -> None:
    """Same dtype, shape and bytes (bit patterns: NaNs and -0.0 included)."""
    assert a.dtype == b.dtype and a.shape == b.shape
    assert np.ascontiguousarray(a).tobytes() == np.ascontiguousarray(b).tobytes()


def _to_torch(a: np.ndarray) -> torch.Tensor:
    return torch.from_numpy(np.ascontiguousarray(a).view(np.uint8).copy()).view(F8_DTYPES[a.dtype.type])


def _from_torch(t: torch.Tensor, dtype: type) -> np.ndarray:
    return t.contiguous().view(torch.uint8).numpy().view(dtype)


def test_float8_both_ways_with_reference_torch_api(tmp_path: Path) -> None:
    state = _state(seed=20, dtypes=list(F8_DTYPES))
    save_safetensors(state, tmp_path / "ours.safetensors", metadata={"who": "axiom"})
    theirs = safetensors.torch.load_file(str(tmp_path / "ours.safetensors"))
    assert set(theirs) == set(state)
    for key, value in state.items():
        assert theirs[key].dtype == F8_DTYPES[value.dtype.type]
        _same(_from_torch(theirs[key], value.dtype.type), value)
    safetensors.torch.save_file({k: _to_torch(v) for k, v in state.items()}, str(tmp_path / "ref.safetensors"))
    ours = load_safetensors(tmp_path / "ref.safetensors")
    assert set(ours) == set(state)
    for key, value in state.items():
        _same(ours[key], value)


def test_ours_load_with_reference(tmp_path: Path) -> None:
    state = _state()
    path = tmp_path / "ours.safetensors"
    save_safetensors(state, path, metadata={"format": "np", "axiom": "1"})
    theirs = load_file(str(path))
    assert set(theirs) == set(state)
    for key, value in state.items():
        _same(theirs[key], value)
    with safe_open(str(path), framework="np") as f:
        assert f.metadata() == {"format": "np", "axiom": "1"}
        assert sorted(f.keys()) == sorted(state)


def test_reference_files_load_with_ours(tmp_path: Path) -> None:
    state = _state(seed=10)
    path = tmp_path / "theirs.safetensors"
    save_file(state, str(path), metadata={"epoch": "7", "note": "ünïcode ✓"})
    ours = load_safetensors(path)
    assert set(ours) == set(state)
    for key, value in state.items():
        _same(ours[key], value)
    assert read_safetensors_metadata(path) == {"epoch": "7", "note": "ünïcode ✓"}


@pytest.mark.parametrize("dtype", NP_DTYPES, ids=lambda d: np.dtype(d).name)
def test_single_dtype_files_are_byte_identical(tmp_path: Path, dtype: type) -> None:
    state = {"b": _sample(dtype, (4, 3), 1), "a": _sample(dtype, (2,), 2)}
    save_file(state, str(tmp_path / "ref.safetensors"), metadata={"k": "v"})
    ours = save_safetensors_bytes(state, metadata={"k": "v"})
    assert ours == (tmp_path / "ref.safetensors").read_bytes()


def test_metadata_round_trips_and_is_validated(tmp_path: Path) -> None:
    path = tmp_path / "m.safetensors"
    meta = {"z": "last", "a": "first", "json": json.dumps({"nested": [1, 2]}), "empty": ""}
    save_safetensors({"w": np.ones(2, np.float32)}, path, metadata=meta)
    assert read_safetensors_metadata(path) == meta
    with safe_open(str(path), framework="np") as f:
        assert f.metadata() == meta
    save_safetensors({"w": np.ones(2, np.float32)}, path)
    assert read_safetensors_metadata(path) == {}
    with pytest.raises(TypeError, match="metadata must map str to str"):
        save_safetensors({"w": np.ones(2, np.float32)}, path, metadata={"epoch": 3})  # type: ignore[dict-item]


def test_model_weights_round_trip_through_reference(tmp_path: Path) -> None:
    model = Sequential(Dense(3, 4), ReLU(), Dense(4, 2))
    path = tmp_path / "model.safetensors"
    model.save(path)
    reloaded = load_file(str(path))
    for key, value in model.state_dict().items():
        _same(reloaded[key], value)
    # a file written by the reference package loads into a fresh model
    save_file({k: v * 2 for k, v in reloaded.items()}, str(path))
    fresh = Sequential(Dense(3, 4), ReLU(), Dense(4, 2))
    fresh.load(path)
    np.testing.assert_array_equal(fresh.layers[0].weight.numpy(), model.layers[0].weight.numpy() * 2)


def _file(header: object, data: bytes = b"", raw_header: bytes | None = None) -> bytes:
    text = raw_header if raw_header is not None else json.dumps(header).encode()
    return struct.pack("<Q", len(text)) + text + data


@pytest.mark.parametrize(
    ("blob", "message"),
    [
        (b"\x01\x02", "expected at least 8"),
        (struct.pack("<Q", 1000) + b"{}", "header length 1000 is impossible"),
        (_file(None, raw_header=b"{not json"), "not valid JSON"),
        (_file(None, raw_header=b"\xff\xfe"), "not valid UTF-8"),
        (_file([1, 2]), "header is a JSON list"),
        (_file({"__metadata__": {"a": 1}}), "'__metadata__' must be an object of string values"),
        (_file({"x": {"dtype": "F32", "shape": [2], "data_offsets": [0, 8]}}, b"\0" * 4), "data_offsets must be"),
        (_file({"x": {"dtype": "F32", "shape": [3], "data_offsets": [0, 8]}}, b"\0" * 8), "expected 12"),
        (_file({"x": {"dtype": "C64", "shape": [1], "data_offsets": [0, 8]}}, b"\0" * 8), "unknown dtype 'C64'"),
        (_file({"x": {"dtype": "F32", "shape": [-1], "data_offsets": [0, 4]}}, b"\0" * 4), "non-negative ints"),
        (_file({"x": {"dtype": "F32", "shape": [1]}}, b"\0" * 4), "exactly the fields"),
        (
            _file(
                {
                    "a": {"dtype": "F32", "shape": [2], "data_offsets": [0, 8]},
                    "b": {"dtype": "F32", "shape": [1], "data_offsets": [4, 8]},
                },
                b"\0" * 8,
            ),
            "overlaps",
        ),
        (_file({"x": {"dtype": "F32", "shape": [1], "data_offsets": [0, 4]}}, b"\0" * 8), "no trailing bytes"),
        (_file({"x": {"dtype": "BOOL", "shape": [1], "data_offsets": [0, 1]}}, b"\x07"), "expected 0 or 1"),
        (
            _file(None, raw_header=b'{"x": {"dtype": "U8", "shape": [1], "data_offsets": [0, 1]}, "x": 1}', data=b"\0"),
            "names 'x' twice",
        ),
    ],
)
def test_malformed_files_are_rejected_by_both(tmp_path: Path, blob: bytes, message: str) -> None:
    with pytest.raises(SafetensorsError, match=message):
        load_safetensors_bytes(blob, "bad.safetensors")
    path = tmp_path / "bad.safetensors"
    path.write_bytes(blob)
    with pytest.raises(SafetensorsError, match=message):
        load_safetensors(path)
    # the reference package refuses them too (it may accept a duplicate name: JSON maps keep the last)
    # (C64 is a dtype the reference knows and axiom does not store: only axiom refuses it)
    if "twice" not in message and "0 or 1" not in message and "C64" not in message:
        with pytest.raises(Exception):  # noqa: B017, PT011 - the reference raises its own error types
            load_file(str(path))
