"""Safetensors reading and writing, written from the format description (no pickle, no Rust).

A safetensors file is ``u64 little-endian N`` + ``N`` bytes of UTF-8 JSON header (padded with
spaces so the data starts at an 8-byte boundary) + the raw little-endian tensor bytes. The header
maps each tensor name to ``{"dtype": "F32", "shape": [...], "data_offsets": [begin, end]}``
(offsets relative to the data section) and may hold ``"__metadata__": {str: str}``.

Files written here are byte-identical to those of the reference ``safetensors`` package for the
same arrays: tensors are laid out by dtype (widest first, so every tensor is aligned to its item
size) and then by name; ``__metadata__`` comes first with its keys sorted (the reference package
orders several metadata keys arbitrarily, so only files with at most one metadata key are
byte-identical to it). Writes are atomic: a temporary file in the same folder, then ``os.replace``.

The reader treats every file as hostile: every header field is checked before anything is
allocated, the tensors must cover the data section exactly (no gaps, no overlaps, nothing
trailing), and each problem is a :class:`SafetensorsError` (a ``ValueError``) naming the file,
the tensor and what was expected. Memory allocated is bounded by the file size.

Example:
    >>> import os, tempfile
    >>> import numpy as np
    >>> path = os.path.join(tempfile.mkdtemp(), "weights.safetensors")
    >>> save_safetensors({"w": np.eye(2, dtype=np.float32), "step": np.array(7)}, path, metadata={"epoch": "3"})
    >>> state = load_safetensors(path)
    >>> list(state), state["w"].dtype.name, int(state["step"])
    (['step', 'w'], 'float32', 7)
    >>> read_safetensors_metadata(path)
    {'epoch': '3'}
"""

from __future__ import annotations

import io
import json
import os
import secrets
import struct
import sys
from collections import OrderedDict
from collections.abc import Callable, Mapping
from typing import Any, BinaryIO

import ml_dtypes
import numpy as np

from axiom.tensor import Tensor

__all__ = [
    "MAX_HEADER_SIZE",
    "SafetensorsError",
    "load_safetensors",
    "load_safetensors_bytes",
    "read_safetensors_metadata",
    "save_safetensors",
    "save_safetensors_bytes",
]

#: Largest header accepted (the reference implementation's limit too).
MAX_HEADER_SIZE = 100_000_000
_MAX_NDIM = 64  # NumPy's limit

# safetensors code -> NumPy dtype, in the reference package's dtype order (its Rust enum order):
# files are laid out by this order descending, then by name.
_CODE_TO_DTYPE: dict[str, np.dtype] = {
    "BOOL": np.dtype(np.bool_),
    "U8": np.dtype(np.uint8),
    "I8": np.dtype(np.int8),
    "F8_E5M2": np.dtype(ml_dtypes.float8_e5m2),
    "F8_E4M3": np.dtype(ml_dtypes.float8_e4m3fn),
    "I16": np.dtype(np.int16),
    "U16": np.dtype(np.uint16),
    "F16": np.dtype(np.float16),
    "BF16": np.dtype(ml_dtypes.bfloat16),
    "I32": np.dtype(np.int32),
    "U32": np.dtype(np.uint32),
    "F32": np.dtype(np.float32),
    "F64": np.dtype(np.float64),
    "I64": np.dtype(np.int64),
    "U64": np.dtype(np.uint64),
}
_RANK = {code: i for i, code in enumerate(_CODE_TO_DTYPE)}
# keyed by dtype *name* so that byte order ('>f4' vs '<f4') does not matter
_NAME_TO_CODE = {dt.name: code for code, dt in _CODE_TO_DTYPE.items()}
_TENSOR_FIELDS = ("dtype", "shape", "data_offsets")


class SafetensorsError(ValueError):
    """A safetensors file (or bytes) that does not follow the format; the message says where and why."""


# -- writing ---------------------------------------------------------------------------------------


def _as_array(key: Any, value: Any) -> tuple[str, np.ndarray]:
    if not isinstance(key, str):
        raise TypeError(f"save_safetensors: tensor names must be str, got {type(key).__name__} {key!r}")
    if key == "__metadata__":
        raise ValueError("save_safetensors: '__metadata__' is reserved for the metadata and cannot name a tensor")
    if isinstance(value, Tensor):
        value = value.data
    if not isinstance(value, np.ndarray | np.generic):
        raise TypeError(f"save_safetensors: {key!r} must be a NumPy array or Tensor, got {type(value).__name__}")
    arr = np.asarray(value)
    if arr.dtype.name not in _NAME_TO_CODE:
        names = ", ".join(sorted(_NAME_TO_CODE))
        raise TypeError(f"save_safetensors: {key!r} has dtype {arr.dtype}, which safetensors cannot store ({names})")
    return key, arr


def _le_bytes(arr: np.ndarray) -> memoryview:
    """The array's elements as contiguous little-endian bytes."""
    if not arr.dtype.isnative:
        arr = arr.astype(arr.dtype.newbyteorder("="))  # byte-swapped input -> native
    arr = np.ascontiguousarray(arr).reshape(-1)
    if sys.byteorder == "big" and arr.dtype.itemsize > 1:  # pragma: no cover - no big-endian CI
        arr = arr.view(f"u{arr.dtype.itemsize}").byteswap()
    return memoryview(arr.view(np.uint8))


def _check_metadata(metadata: Mapping[str, str] | None) -> dict[str, str] | None:
    if metadata is None:
        return None
    if not isinstance(metadata, Mapping):
        raise TypeError(f"save_safetensors: metadata must be a dict of str to str, got {type(metadata).__name__}")
    for k, v in metadata.items():
        if not isinstance(k, str) or not isinstance(v, str):
            raise TypeError(f"save_safetensors: metadata must map str to str, got {k!r}: {v!r}")
    return {k: metadata[k] for k in sorted(metadata)}


def _plan(
    state: Mapping[str, np.ndarray | Tensor], metadata: Mapping[str, str] | None
) -> tuple[bytes, list[np.ndarray]]:
    """The 8-byte length + padded header, and the arrays in file order."""
    if not isinstance(state, Mapping):
        raise TypeError(f"save_safetensors: expects a mapping of names to arrays, got {type(state).__name__}")
    meta = _check_metadata(metadata)
    items = [_as_array(k, v) for k, v in state.items()]
    items.sort(key=lambda kv: (-_RANK[_NAME_TO_CODE[kv[1].dtype.name]], kv[0]))
    header: dict[str, Any] = {}
    if meta is not None:
        header["__metadata__"] = meta
    offset = 0
    for name, arr in items:
        end = offset + arr.nbytes
        header[name] = {"dtype": _NAME_TO_CODE[arr.dtype.name], "shape": list(arr.shape), "data_offsets": [offset, end]}
        offset = end
    try:
        text = json.dumps(header, separators=(",", ":"), ensure_ascii=False).encode("utf-8")
    except UnicodeEncodeError as err:
        raise ValueError(f"save_safetensors: a tensor name or metadata string is not valid Unicode: {err}") from None
    text += b" " * (-len(text) % 8)
    return struct.pack("<Q", len(text)) + text, [arr for _, arr in items]


def save_safetensors_bytes(
    state: Mapping[str, np.ndarray | Tensor], metadata: Mapping[str, str] | None = None
) -> bytes:
    """The safetensors encoding of ``state`` as bytes (see :func:`save_safetensors`).

    Example:
        >>> import numpy as np
        >>> data = save_safetensors_bytes({"x": np.zeros(2, np.float16)})
        >>> data[8:].rstrip(b"\\x00 ").decode()
        '{"x":{"dtype":"F16","shape":[2],"data_offsets":[0,4]}}'
    """
    head, arrays = _plan(state, metadata)
    return head + b"".join(_le_bytes(a).tobytes() for a in arrays)


def save_safetensors(
    state: Mapping[str, np.ndarray | Tensor], path: str | os.PathLike[str], metadata: Mapping[str, str] | None = None
) -> None:
    """Write ``state`` (name -> array or Tensor) to ``path`` as safetensors, atomically.

    ``metadata`` is an optional ``{str: str}`` stored as ``__metadata__``. Tensors are written
    contiguous and little-endian whatever their memory layout. The file appears complete or not
    at all: data goes to a temporary file next to ``path`` which then replaces it.

    Raises ``TypeError`` for a non-array value, an unsupported dtype or non-string metadata.

    Example:
        >>> import os, tempfile
        >>> import numpy as np
        >>> path = os.path.join(tempfile.mkdtemp(), "w.safetensors")
        >>> save_safetensors({"b": np.ones(3, np.float32)}, path)
        >>> os.path.getsize(path)  # 8 + 56-byte padded header + 12 data bytes
        76
    """
    head, arrays = _plan(state, metadata)
    path = os.fspath(path)
    tmp = f"{path}.{os.getpid()}.{secrets.token_hex(4)}.tmp"
    fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_EXCL | getattr(os, "O_BINARY", 0), 0o666)
    try:
        with os.fdopen(fd, "wb") as f:
            f.write(head)
            for arr in arrays:
                f.write(_le_bytes(arr))
            f.flush()
            os.fsync(f.fileno())
        os.replace(tmp, path)
    except BaseException:
        try:
            os.unlink(tmp)
        except OSError:
            pass
        raise


# -- reading ---------------------------------------------------------------------------------------


def _no_duplicates(source: str) -> Callable[[list[tuple[str, Any]]], dict[str, Any]]:
    def hook(pairs: list[tuple[str, Any]]) -> dict[str, Any]:
        out: dict[str, Any] = {}
        for k, v in pairs:
            if k in out:
                raise SafetensorsError(f"{source}: header names {k!r} twice; expected unique names")
            out[k] = v
        return out

    return hook


def _int_text(n: int) -> str:
    """``str(n)``, or its magnitude for absurd sizes (hostile shapes) that would flood the message."""
    return str(n) if n.bit_length() <= 128 else f"at least 2**{n.bit_length() - 1}"


def _is_int(x: Any) -> bool:
    return isinstance(x, int) and not isinstance(x, bool)


class _Entry:
    __slots__ = ("name", "dtype", "shape", "begin", "end")

    def __init__(self, name: str, dtype: np.dtype, shape: tuple[int, ...], begin: int, end: int) -> None:
        self.name, self.dtype, self.shape, self.begin, self.end = name, dtype, shape, begin, end


def _parse_header(raw: bytes, data_len: int, source: str) -> tuple[list[_Entry], dict[str, str]]:
    """Validate the JSON header against a data section of ``data_len`` bytes."""
    try:
        text = raw.decode("utf-8")
    except UnicodeDecodeError as err:
        raise SafetensorsError(f"{source}: header is not valid UTF-8 ({err}); expected a UTF-8 JSON object") from None
    try:
        header = json.loads(text, object_pairs_hook=_no_duplicates(source), parse_constant=_reject_constant)
    except SafetensorsError:
        raise
    except (ValueError, RecursionError) as err:
        raise SafetensorsError(f"{source}: header is not valid JSON ({err}); expected a JSON object") from None
    if not isinstance(header, dict):
        raise SafetensorsError(f"{source}: header is a JSON {type(header).__name__}; expected a JSON object")

    meta = header.pop("__metadata__", None)
    if meta is None:
        meta = {}
    elif not isinstance(meta, dict) or not all(isinstance(v, str) for v in meta.values()):
        raise SafetensorsError(f"{source}: '__metadata__' must be an object of string values, got {meta!r:.200}")

    entries: list[_Entry] = []
    for name, info in header.items():
        where = f"{source}: tensor {name!r}"
        if not isinstance(info, dict) or set(info) != set(_TENSOR_FIELDS):
            raise SafetensorsError(
                f"{where}: expected an object with exactly the fields dtype, shape, data_offsets, got {info!r:.200}"
            )
        code = info["dtype"]
        if not isinstance(code, str) or code not in _CODE_TO_DTYPE:
            raise SafetensorsError(f"{where}: unknown dtype {code!r:.50}; expected one of {', '.join(_CODE_TO_DTYPE)}")
        dtype = _CODE_TO_DTYPE[code]
        shape = info["shape"]
        if not isinstance(shape, list) or len(shape) > _MAX_NDIM or not all(_is_int(d) and d >= 0 for d in shape):
            raise SafetensorsError(
                f"{where}: shape must be a list of at most {_MAX_NDIM} non-negative ints, got {shape!r:.200}"
            )
        offsets = info["data_offsets"]
        if (
            not isinstance(offsets, list)
            or len(offsets) != 2
            or not all(_is_int(o) for o in offsets)
            or not 0 <= offsets[0] <= offsets[1] <= data_len
        ):
            raise SafetensorsError(
                f"{where}: data_offsets must be [begin, end] with 0 <= begin <= end <= {data_len} "
                f"(the size of the data section), got {offsets!r:.200}"
            )
        begin, end = offsets
        count = 1
        for d in shape:
            count *= d
        nbytes = count * dtype.itemsize
        if end - begin != nbytes:
            raise SafetensorsError(
                f"{where}: data_offsets {offsets} span {end - begin} bytes; expected {_int_text(nbytes)} "
                f"= {_int_text(count)} elements of {code} ({dtype.itemsize} bytes) for shape {shape!r:.200}"
            )
        entries.append(_Entry(name, dtype, tuple(shape), begin, end))

    # the tensors must tile the data section exactly, as the format requires
    position, previous = 0, None
    for e in sorted(entries, key=lambda e: (e.begin, e.end)):
        if e.begin < position:
            raise SafetensorsError(
                f"{source}: tensor {e.name!r} (bytes {e.begin}..{e.end}) overlaps tensor {previous!r} "
                f"(ending at {position}); expected disjoint data"
            )
        if e.begin > position:
            after = f"after tensor {previous!r}" if previous is not None else "at the start of the data section"
            raise SafetensorsError(
                f"{source}: {e.begin - position} unused bytes {after} (bytes {position}..{e.begin}) before tensor "
                f"{e.name!r}; expected the tensors to cover the data section without gaps"
            )
        position, previous = e.end, e.name
    if position != data_len:
        raise SafetensorsError(
            f"{source}: the tensors cover {position} bytes but the data section holds {data_len}; "
            "expected no trailing bytes"
        )
    return entries, meta


def _reject_constant(name: str) -> Any:
    raise ValueError(f"{name} is not valid JSON")


def _read_header(f: BinaryIO, size: int, source: str) -> tuple[list[_Entry], dict[str, str], int]:
    if size < 8:
        raise SafetensorsError(
            f"{source}: file is {size} bytes; expected at least 8 (the header length) - truncated or not safetensors"
        )
    (n,) = struct.unpack("<Q", _read_exact(f, 8, source, "the header length"))
    if n > MAX_HEADER_SIZE or n > size - 8:
        raise SafetensorsError(
            f"{source}: header length {n} is impossible; expected at most {min(MAX_HEADER_SIZE, size - 8)} "
            f"(file is {size} bytes, limit {MAX_HEADER_SIZE}) - truncated or not safetensors"
        )
    entries, meta = _parse_header(_read_exact(f, n, source, "the header"), size - 8 - n, source)
    return entries, meta, 8 + n


def _read_exact(f: BinaryIO, n: int, source: str, what: str) -> bytes:
    data = f.read(n)
    if len(data) != n:
        raise SafetensorsError(f"{source}: file ended while reading {what}; expected {n} bytes, got {len(data)}")
    return data


def _load(f: BinaryIO, size: int, source: str) -> OrderedDict[str, np.ndarray]:
    entries, _, data_start = _read_header(f, size, source)
    out: OrderedDict[str, np.ndarray] = OrderedDict()
    for e in entries:
        n = e.dtype.itemsize
        raw = np.empty((e.end - e.begin) // n, dtype=np.dtype(f"<u{n}"))
        if raw.size:
            f.seek(data_start + e.begin)
            got = f.readinto(memoryview(raw.view(np.uint8)))  # type: ignore[attr-defined]
            if got != raw.nbytes:  # the file shrank while we read it
                raise SafetensorsError(f"{source}: file ended inside tensor {e.name!r}; expected {raw.nbytes} bytes")
            if e.dtype == np.bool_ and raw.max() > 1:
                raise SafetensorsError(
                    f"{source}: tensor {e.name!r} holds byte {int(raw.max())}; expected 0 or 1 for BOOL"
                )
        native = raw.astype(f"=u{n}", copy=False)  # a no-op on little-endian machines
        out[e.name] = native.view(e.dtype).reshape(e.shape)
    return out


def load_safetensors(path: str | os.PathLike[str]) -> OrderedDict[str, np.ndarray]:
    """Read a safetensors file into name -> NumPy array, in file order.

    Arrays are fresh, writable, native-endian copies (BF16 and F8 come back as ``ml_dtypes``
    arrays). Any malformed or hostile content raises :class:`SafetensorsError` (a ``ValueError``)
    naming the file, the tensor and what was expected; nothing is unpickled or executed.

    Example:
        >>> import os, tempfile
        >>> import numpy as np
        >>> path = os.path.join(tempfile.mkdtemp(), "w.safetensors")
        >>> save_safetensors({"a": np.arange(3, dtype=np.int32)}, path)
        >>> load_safetensors(path)["a"]
        array([0, 1, 2], dtype=int32)
        >>> with open(path, "r+b") as f:
        ...     _ = f.write(b"\\xff" * 8)  # corrupt the header length
        >>> load_safetensors(path)  # doctest: +ELLIPSIS
        Traceback (most recent call last):
        ...
        axiom.nn.state.SafetensorsError: ...: header length 18446744073709551615 is impossible; ...
    """
    source = os.fspath(path)
    with open(source, "rb") as f:
        return _load(f, os.fstat(f.fileno()).st_size, source)


def load_safetensors_bytes(data: bytes | bytearray | memoryview, name: str = "<bytes>") -> OrderedDict[str, np.ndarray]:
    """Like :func:`load_safetensors` for an in-memory file; ``name`` is used in error messages.

    Example:
        >>> import numpy as np
        >>> load_safetensors_bytes(save_safetensors_bytes({"x": np.ones((1, 2))}))["x"]
        array([[1., 1.]])
    """
    buf = io.BytesIO(data)
    return _load(buf, len(buf.getbuffer()), name)


def read_safetensors_metadata(path: str | os.PathLike[str]) -> dict[str, str]:
    """The ``__metadata__`` of a safetensors file (``{}`` if none), without reading tensor data.

    The whole header is validated as in :func:`load_safetensors`.

    Example:
        >>> import os, tempfile
        >>> import numpy as np
        >>> path = os.path.join(tempfile.mkdtemp(), "w.safetensors")
        >>> save_safetensors({"a": np.zeros(1)}, path, metadata={"format": "np"})
        >>> read_safetensors_metadata(path)
        {'format': 'np'}
    """
    source = os.fspath(path)
    with open(source, "rb") as f:
        _, meta, _ = _read_header(f, os.fstat(f.fileno()).st_size, source)
    return meta
