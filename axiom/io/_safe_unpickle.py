"""A restricted unpickler for PyTorch zip checkpoints: no torch, no code from the file is run.

``pickle`` builds objects by calling whatever global the stream names, so unpickling an untrusted
file runs the attacker's code. :class:`RestrictedUnpickler` resolves globals against an **exact
allow-list** of ``(module, name)`` pairs, each mapped to a stand-in written here:

- ``collections.OrderedDict`` -> ``OrderedDict`` (state dicts);
- ``torch._utils._rebuild_tensor_v2`` / ``_rebuild_parameter`` -> build a NumPy array;
- ``torch.FloatStorage``, ``DoubleStorage``, ``HalfStorage``, ``BFloat16Storage``, ``LongStorage``,
  ``IntStorage``, ``ShortStorage``, ``CharStorage``, ``ByteStorage``, ``BoolStorage`` -> inert
  markers that only carry a dtype;
- ``torch.Size`` -> ``tuple`` of ints;
- with ``torchscript=True`` only: classes under ``__torch__.`` (TorchScript module types) ->
  :class:`ScriptObject`, a plain record of the class name and its attributes, and
  ``torch.jit._pickle.build_{int,float,bool,tensor}list`` / ``restore_type_tag`` -> type-checked lists.

Anything else raises :class:`UnsafeCheckpointError` naming the global. Storages come through
``persistent_load(('storage', marker, key, location, numel))`` and are read from the zip entry
``<prefix>/data/<key>``, whose size must be exactly ``numel * itemsize``; every tensor's
offset, shape and strides are checked against its storage before any element is touched, and
each tensor comes back as its own contiguous, writable NumPy array.

Example:
    >>> import io, pickle
    >>> safe = RestrictedUnpickler(io.BytesIO(pickle.dumps({"epoch": 3})), storage_reader=None).load()
    >>> safe
    {'epoch': 3}
    >>> import os
    >>> class Evil:
    ...     def __reduce__(self):
    ...         return (os.system, ("echo pwned",))
    >>> RestrictedUnpickler(io.BytesIO(pickle.dumps(Evil())), storage_reader=None).load()  # doctest: +ELLIPSIS
    Traceback (most recent call last):
    ...
    axiom.io._safe_unpickle.UnsafeCheckpointError: ...refuses global 'posix.system'...
"""

from __future__ import annotations

import math
import pickle
from collections import OrderedDict
from collections.abc import Callable
from typing import Any, BinaryIO

import ml_dtypes
import numpy as np

__all__ = [
    "CheckpointError",
    "RestrictedUnpickler",
    "ScriptObject",
    "StorageType",
    "UnsafeCheckpointError",
    "STORAGE_DTYPES",
]

_MAX_NDIM = 64


class CheckpointError(ValueError):
    """A checkpoint file that is malformed, truncated or not in a supported format."""


class UnsafeCheckpointError(CheckpointError):
    """A checkpoint whose pickle asks for something outside the allow-list (e.g. ``os.system``)."""


class _Immutable:
    """Base of the stand-ins: a hostile pickle's BUILD opcode cannot set attributes on them."""

    __slots__ = ()

    def __setattr__(self, name: str, value: Any) -> None:
        raise UnsafeCheckpointError(f"checkpoint pickle: tries to set {name!r} on {type(self).__name__}")

    def __delattr__(self, name: str) -> None:
        raise UnsafeCheckpointError(f"checkpoint pickle: tries to delete {name!r} of {type(self).__name__}")


class _FrozenType(type):
    """Metaclass of the per-load TorchScript classes: class attributes cannot be changed by the pickle."""

    def __setattr__(cls, name: str, value: Any) -> None:
        raise UnsafeCheckpointError(f"checkpoint pickle: tries to set {name!r} on class {cls.__name__}")


class _Callable(_Immutable):
    """An allowed stand-in function, wrapped so that the pickle cannot change it (``__defaults__`` ...)."""

    __slots__ = ("_fn", "_name")

    def __init__(self, fn: Callable[..., Any], name: str) -> None:
        object.__setattr__(self, "_fn", fn)
        object.__setattr__(self, "_name", name)

    def __call__(self, *args: Any) -> Any:
        return self._fn(*args)

    def __repr__(self) -> str:
        return f"<stand-in for {self._name}>"


class StorageType(_Immutable):
    """Inert stand-in for ``torch.<X>Storage``: it only names a dtype.

    Example:
        >>> StorageType("FloatStorage", np.float32)
        StorageType('FloatStorage', float32)
    """

    __slots__ = ("name", "dtype")

    def __init__(self, name: str, dtype: Any) -> None:
        object.__setattr__(self, "name", name)
        object.__setattr__(self, "dtype", np.dtype(dtype))

    def __repr__(self) -> str:
        return f"StorageType({self.name!r}, {self.dtype.name})"


#: ``torch.<name>`` storage classes accepted, and the element dtype of each.
STORAGE_DTYPES: dict[str, StorageType] = {
    name: StorageType(name, dt)
    for name, dt in {
        "FloatStorage": np.float32,
        "DoubleStorage": np.float64,
        "HalfStorage": np.float16,
        "BFloat16Storage": ml_dtypes.bfloat16,
        "LongStorage": np.int64,
        "IntStorage": np.int32,
        "ShortStorage": np.int16,
        "CharStorage": np.int8,
        "ByteStorage": np.uint8,
        "BoolStorage": np.bool_,
    }.items()
}


class ScriptObject:
    """Stand-in for a TorchScript module instance: the class name and its attributes, nothing callable.

    Example:
        >>> obj = ScriptObject.__new__(ScriptObject)
        >>> obj.__setstate__({"training": False})
        >>> obj.state
        {'training': False}
    """

    qualified_name = "__torch__.<unknown>"

    def __init__(self) -> None:
        self.state: dict[str, Any] = {}

    def __setstate__(self, state: Any) -> None:
        if not isinstance(state, dict):
            raise CheckpointError(f"TorchScript object {self.qualified_name}: expected a dict state, got {state!r:.80}")
        self.state = dict(state)

    def __repr__(self) -> str:
        return f"ScriptObject({self.qualified_name})"


class _Budget:
    """Bytes the tensors of one load may still allocate (stride-0 views could otherwise expand without end)."""

    __slots__ = ("left",)

    def __init__(self, left: int) -> None:
        self.left = left


class _Storage(_Immutable):
    """One storage's elements (read-only), already checked against its declared element count."""

    __slots__ = ("key", "array", "budget")

    def __init__(self, key: str, array: np.ndarray, budget: _Budget) -> None:
        object.__setattr__(self, "key", key)
        object.__setattr__(self, "array", array)
        object.__setattr__(self, "budget", budget)

    @property
    def dtype(self) -> np.dtype:
        return self.array.dtype


def _int(value: Any, what: str) -> int:
    if isinstance(value, bool) or not isinstance(value, int):
        raise CheckpointError(f"checkpoint tensor: {what} must be an int, got {value!r:.80}")
    return value


def _int_tuple(value: Any, what: str) -> tuple[int, ...]:
    if not isinstance(value, tuple | list) or len(value) > _MAX_NDIM:
        raise CheckpointError(
            f"checkpoint tensor: {what} must be a tuple of at most {_MAX_NDIM} ints, got {value!r:.80}"
        )
    return tuple(_int(v, what) for v in value)


def _rebuild_tensor(
    storage: Any,
    storage_offset: Any,
    size: Any,
    stride: Any,
    requires_grad: Any = False,
    backward_hooks: Any = None,
    metadata: Any = None,
) -> np.ndarray:
    """Stand-in for ``torch._utils._rebuild_tensor_v2``: a bounds-checked copy of the view."""
    if type(storage) is not _Storage:
        raise CheckpointError(f"checkpoint tensor: expected a storage, got {type(storage).__name__}")
    offset = _int(storage_offset, "storage_offset")
    shape = _int_tuple(size, "size")
    strides = _int_tuple(stride, "stride")
    if len(shape) != len(strides):
        raise CheckpointError(f"checkpoint tensor: size {shape} and stride {strides} have different lengths")
    if offset < 0 or any(d < 0 for d in shape) or any(s < 0 for s in strides):
        raise CheckpointError(
            f"checkpoint tensor: negative offset, size or stride (offset {offset}, size {shape}, stride {strides})"
        )
    if backward_hooks not in (None, {}) and not (isinstance(backward_hooks, OrderedDict) and not backward_hooks):
        raise UnsafeCheckpointError("checkpoint tensor: backward hooks are code; expected none")
    numel = storage.array.size
    count = math.prod(shape)
    if count:
        last = offset + sum((d - 1) * s for d, s in zip(shape, strides, strict=True))
        if last >= numel:
            raise CheckpointError(
                f"checkpoint tensor: view (offset {offset}, size {shape}, stride {strides}) reaches element "
                f"{last} of storage data/{storage.key}, which holds {numel} {storage.dtype.name} elements"
            )
    elif offset > numel:
        raise CheckpointError(
            f"checkpoint tensor: offset {offset} is past the end of storage data/{storage.key} ({numel} elements)"
        )
    item = storage.dtype.itemsize
    if count * item > storage.budget.left:
        raise CheckpointError(
            f"checkpoint tensor: view of size {shape} of storage data/{storage.key} would allocate "
            f"{count * item} bytes, more than this checkpoint may expand to ({storage.budget.left} bytes left)"
        )
    storage.budget.left -= count * item
    if not count:
        return np.zeros(shape, storage.dtype)
    view = np.lib.stride_tricks.as_strided(
        storage.array[offset:], shape=shape, strides=tuple(s * item for s in strides), writeable=False
    )
    return np.array(view, copy=True, order="C")


def _rebuild_parameter(data: Any, requires_grad: Any = True, backward_hooks: Any = None) -> np.ndarray:
    """Stand-in for ``torch._utils._rebuild_parameter``: the tensor itself."""
    if not isinstance(data, np.ndarray):
        raise CheckpointError(f"checkpoint parameter: expected a tensor, got {type(data).__name__}")
    if backward_hooks not in (None, {}) and not (isinstance(backward_hooks, OrderedDict) and not backward_hooks):
        raise UnsafeCheckpointError("checkpoint parameter: backward hooks are code; expected none")
    return data


def _size(*args: Any) -> tuple[int, ...]:
    """Stand-in for ``torch.Size(iterable)``."""
    if len(args) != 1:
        raise CheckpointError(f"torch.Size: expected one tuple of ints, got {args!r:.80}")
    return _int_tuple(args[0], "torch.Size")


_ALLOWED: dict[tuple[str, str], Any] = {
    ("collections", "OrderedDict"): OrderedDict,
    ("torch._utils", "_rebuild_tensor_v2"): _Callable(_rebuild_tensor, "torch._utils._rebuild_tensor_v2"),
    ("torch._utils", "_rebuild_parameter"): _Callable(_rebuild_parameter, "torch._utils._rebuild_parameter"),
    ("torch", "Size"): _Callable(_size, "torch.Size"),
    **{("torch", name): marker for name, marker in STORAGE_DTYPES.items()},
}


def _typed_list(kind: type) -> Callable[[Any], list[Any]]:
    def build(values: Any) -> list[Any]:
        if not isinstance(values, list) or not all(isinstance(v, kind) for v in values):
            raise CheckpointError(f"TorchScript list: expected a list of {kind.__name__}, got {values!r:.80}")
        return list(values)

    return build


def _restore_type_tag(value: Any, type_str: Any = None) -> Any:
    """Stand-in for ``torch.jit._pickle.restore_type_tag``: the value itself (the tag is only a type name)."""
    return value


# TorchScript archives also use these (attribute lists of a scripted module).
_ALLOWED_TORCHSCRIPT: dict[tuple[str, str], Any] = {
    ("torch.jit._pickle", name): _Callable(fn, f"torch.jit._pickle.{name}")
    for name, fn in {
        "build_intlist": _typed_list(int),
        "build_floatlist": _typed_list(float),
        "build_boollist": _typed_list(bool),
        "build_tensorlist": _typed_list(np.ndarray),
        "restore_type_tag": _restore_type_tag,
    }.items()
}

#: Tensors of one checkpoint may allocate this much beyond 4x the size of their storages.
EXPANSION_ALLOWANCE = 1 << 28


StorageReader = Callable[[str, int], bytes]


class RestrictedUnpickler(pickle.Unpickler):
    """``pickle.Unpickler`` that resolves globals only from an exact allow-list (see the module doc).

    ``storage_reader(key, nbytes)`` returns the bytes of storage ``key`` (it must check the size);
    ``None`` means the pickle may not reference storages. ``torchscript=True`` also admits
    TorchScript classes (``__torch__.*``) as inert :class:`ScriptObject` records.

    Example:
        >>> import io, pickle
        >>> from collections import OrderedDict
        >>> data = pickle.dumps(OrderedDict(a=1), protocol=2)
        >>> dict(RestrictedUnpickler(io.BytesIO(data), storage_reader=None).load())
        {'a': 1}
    """

    def __init__(self, file: BinaryIO, storage_reader: StorageReader | None, *, torchscript: bool = False) -> None:
        super().__init__(file)
        self._reader = storage_reader
        self._torchscript = torchscript
        self._storages: dict[str, _Storage] = {}
        self._classes: dict[str, type[ScriptObject]] = {}  # per load: one file cannot affect the next
        self._budget = _Budget(EXPANSION_ALLOWANCE)

    def find_class(self, module: str, name: str) -> Any:
        found = _ALLOWED.get((module, name))
        if found is not None:
            return found
        if self._torchscript:
            if (module, name) in _ALLOWED_TORCHSCRIPT:
                return _ALLOWED_TORCHSCRIPT[module, name]
            if module.startswith("__torch__.") and name.isidentifier():
                qualified = f"{module}.{name}"
                if qualified not in self._classes:
                    attrs = {"qualified_name": qualified, "__module__": __name__}
                    self._classes[qualified] = _FrozenType("ScriptObject", (ScriptObject,), attrs)
                return self._classes[qualified]
        hint = ""
        if module.startswith("torch.nn.modules") or module.startswith("__main__"):
            hint = (
                " (the file pickles a whole nn.Module, which needs its Python code to load; "
                "save model.state_dict() instead)"
            )
        raise UnsafeCheckpointError(
            f"checkpoint pickle: refuses global '{module}.{name}'{hint}; only tensors, storages and "
            f"OrderedDict are allowed ({', '.join(sorted(f'{m}.{n}' for m, n in _ALLOWED if 'Storage' not in n))}, "
            "torch.<X>Storage)"
        )

    def persistent_load(self, pid: Any) -> Any:
        if not (isinstance(pid, tuple) and len(pid) == 5 and pid[0] == "storage"):
            raise CheckpointError(f"checkpoint pickle: unknown persistent id {pid!r:.120}; expected a storage")
        _, marker, key, _location, numel = pid
        if not isinstance(marker, StorageType):
            raise UnsafeCheckpointError(f"checkpoint pickle: storage type {marker!r:.80} is not an allowed storage")
        if not isinstance(key, str) or not key.isalnum():
            raise CheckpointError(f"checkpoint pickle: storage key {key!r:.80} must be alphanumeric")
        numel = _int(numel, "storage size")
        if numel < 0:
            raise CheckpointError(f"checkpoint pickle: storage data/{key} has negative size {numel}")
        seen = self._storages.get(key)
        if seen is not None:
            if seen.dtype != marker.dtype or seen.array.size != numel:
                raise CheckpointError(
                    f"checkpoint pickle: storage data/{key} is declared as {seen.array.size} {seen.dtype.name} "
                    f"and as {numel} {marker.dtype.name}; expected one dtype and size per storage"
                )
            return seen
        if self._reader is None:
            raise CheckpointError(f"checkpoint pickle: references storage data/{key} but has no data section")
        raw = self._reader(key, numel * marker.dtype.itemsize)
        array = np.frombuffer(raw, dtype=marker.dtype.newbyteorder("<")).astype(marker.dtype, copy=False)
        if marker.dtype == np.bool_ and array.size and np.frombuffer(raw, np.uint8).max() > 1:
            raise CheckpointError(f"checkpoint pickle: storage data/{key} holds bytes other than 0/1 for BoolStorage")
        array.flags.writeable = False
        self._budget.left += 4 * array.nbytes
        storage = _Storage(key, array, self._budget)
        self._storages[key] = storage
        return storage
