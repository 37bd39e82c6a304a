"""Read PyTorch checkpoints (``.pt``, ``.pth``, ``.ckpt``, TorchScript) without torch and without running pickle code.

:func:`read_checkpoint` opens the zip written by ``torch.save`` (or ``torch.jit.save``) and
unpickles ``data.pkl`` with :class:`~axiom.io._safe_unpickle.RestrictedUnpickler`: only
``OrderedDict``, tensors, storages and ``torch.Size`` are accepted, every storage read is
bounds-checked, and anything else (``os.system``, a pickled ``nn.Module``...) raises
:class:`UnsafeCheckpointError` before it runs. There is no fallback to an unsafe loader.
Legacy (pre-1.6, non-zip) files are refused with a message saying how to re-save them.

:func:`load_checkpoint` turns a checkpoint into an axiom model:

- a state dict (``torch.save(model.state_dict())``), or a Lightning-style dict with a
  ``"state_dict"`` entry (a common ``"model."`` / ``"module."`` prefix is dropped), needs an
  architecture: an ``axiom.pytorch.sequential.v1`` descriptor (dict or JSON path, see
  :mod:`axiom.io._torch_descriptor`) or an axiom model to load the weights into;
- a TorchScript archive of a ``Sequential`` is rebuilt from its module types and the
  constants in its code (``in_features : Final[int] = 4``), or loaded into ``architecture``.

Weights are converted to axiom's layouts (:mod:`axiom.io._torch_layout`); image models take
NHWC input (``x_nchw.transpose(0, 2, 3, 1)``).

Example:
    >>> import os, tempfile
    >>> import numpy as np, torch
    >>> net = torch.nn.Sequential(torch.nn.Linear(3, 2), torch.nn.ReLU())
    >>> path = os.path.join(tempfile.mkdtemp(), "model.pt")
    >>> torch.save(net.state_dict(), path)
    >>> arch = {"format": "axiom.pytorch.sequential.v1",
    ...         "layers": [{"type": "Linear", "in_features": 3, "out_features": 2}, {"type": "ReLU"}]}
    >>> model = load_checkpoint(path, arch)
    >>> x = np.ones((1, 3), np.float32)
    >>> bool(np.allclose(model(x).numpy(), net(torch.from_numpy(x)).detach().numpy(), atol=1e-6))
    True
"""

from __future__ import annotations

import ast
import io
import os
import re
import zipfile
import zlib
from collections import OrderedDict
from collections.abc import Mapping
from typing import Any

import numpy as np

from axiom.io._safe_unpickle import (
    CheckpointError,
    RestrictedUnpickler,
    ScriptObject,
    UnsafeCheckpointError,
)
from axiom.io._torch_descriptor import FORMAT, DescriptorError, build_from_descriptor, load_descriptor
from axiom.io._torch_layout import StateMismatchError, torch_state_to_axiom
from axiom.nn.layer import Layer
from axiom.tensor import FLOAT_DTYPES

__all__ = [
    "CheckpointError",
    "DescriptorError",
    "StateMismatchError",
    "UnsafeCheckpointError",
    "load_checkpoint",
    "read_checkpoint",
]

_MAX_PICKLE = 1 << 30  # data.pkl larger than this is not a checkpoint we can sensibly read
_LEGACY_MAGIC = 0x1950A86A20F9469CFC6C


class _Archive:
    """A torch zip archive: its record prefix and bounded, exact-size entry reads."""

    def __init__(self, zf: zipfile.ZipFile, source: str) -> None:
        self.zf, self.source = zf, source
        names = zf.namelist()
        tops = {n.split("/", 1)[0] for n in names if "/" in n}
        candidates = sorted(t for t in tops if f"{t}/data.pkl" in names)
        if len(candidates) != 1:
            raise CheckpointError(
                f"{source}: expected exactly one '<name>/data.pkl' in the zip (a torch.save archive), "
                f"found {len(candidates)}"
            )
        self.prefix = candidates[0]
        self.torchscript = f"{self.prefix}/constants.pkl" in names and any(
            n.startswith(f"{self.prefix}/code/") for n in names
        )
        order = self._optional("byteorder")
        if order is not None and order.strip() != b"little":
            raise CheckpointError(
                f"{source}: byteorder is {order[:20]!r}; only little-endian checkpoints are supported"
            )

    def _info(self, name: str) -> zipfile.ZipInfo | None:
        try:
            return self.zf.getinfo(f"{self.prefix}/{name}")
        except KeyError:
            return None

    def _optional(self, name: str) -> bytes | None:
        info = self._info(name)
        return None if info is None else self.read(name, info.file_size, exact=False, limit=1 << 20)

    def read(self, name: str, size: int, *, exact: bool = True, limit: int | None = None) -> bytes:
        info = self._info(name)
        if info is None:
            raise CheckpointError(f"{self.source}: entry {self.prefix}/{name} is missing from the zip")
        if exact and info.file_size != size:
            raise CheckpointError(
                f"{self.source}: entry {self.prefix}/{name} holds {info.file_size} bytes; the pickle declares "
                f"{size} (wrong dtype or size for this storage)"
            )
        if info.compress_type != zipfile.ZIP_STORED and limit is None:
            raise CheckpointError(
                f"{self.source}: storage entry {self.prefix}/{name} is compressed; torch.save and torch.jit.save "
                "store tensor data uncompressed, and only that is read (memory stays bounded by the file size)"
            )
        if limit is not None and info.file_size > limit:
            raise CheckpointError(f"{self.source}: entry {self.prefix}/{name} is {info.file_size} bytes; limit {limit}")
        try:
            with self.zf.open(info) as f:
                # never more than declared (+1 to notice a lie): a compressed entry cannot balloon
                data = f.read(info.file_size + 1)
        except (zipfile.BadZipFile, OSError, EOFError, ValueError, NotImplementedError, zlib.error) as err:
            raise CheckpointError(f"{self.source}: cannot read {self.prefix}/{name} ({err}) - truncated?") from None
        if len(data) != info.file_size:
            raise CheckpointError(
                f"{self.source}: entry {self.prefix}/{name} holds {len(data)} bytes, not the {info.file_size} "
                "its zip header declares (truncated or corrupted)"
            )
        return data

    def storage(self, key: str, nbytes: int) -> bytes:
        return self.read(f"data/{key}", nbytes)

    def unpickle(self, name: str) -> Any:
        info = self._info(name)
        size = 0 if info is None else info.file_size
        raw = self.read(name, size, exact=False, limit=_MAX_PICKLE)
        unpickler = RestrictedUnpickler(io.BytesIO(raw), self.storage, torchscript=self.torchscript)
        try:
            return unpickler.load()
        except CheckpointError as err:
            raise type(err)(f"{self.source}: {err}") from None
        except (RecursionError, MemoryError) as err:
            raise CheckpointError(f"{self.source}: {name} is not a valid pickle ({type(err).__name__})") from None
        except Exception as err:  # malformed opcodes, wrong argument counts to the stand-ins, ...
            raise CheckpointError(f"{self.source}: {name} is not a valid checkpoint pickle ({err})") from None

    def code(self) -> dict[str, str]:
        """The TorchScript sources: path under ``code/`` -> text (size-limited)."""
        out: dict[str, str] = {}
        start = f"{self.prefix}/code/"
        for info in self.zf.infolist():
            if info.filename.startswith(start) and info.filename.endswith(".py"):
                name = info.filename[len(f"{self.prefix}/") :]
                out[info.filename[len(start) :]] = self.read(name, 0, exact=False, limit=1 << 22).decode(
                    "utf-8", "replace"
                )
        return out


def _open(path: str | os.PathLike[str]) -> tuple[zipfile.ZipFile, str]:
    source = os.fspath(path)
    with open(source, "rb") as f:
        head = f.read(512)
    if not head.startswith(b"PK"):
        if head[:1] == b"\x80" or _is_tar(head):
            raise CheckpointError(
                f"{source}: legacy (non-zip) torch checkpoint format; re-save it with torch >= 1.6: "
                "torch.save(torch.load(path, weights_only=True), new_path)"
            )
        raise CheckpointError(f"{source}: not a torch checkpoint (expected a zip archive written by torch.save)")
    try:
        return zipfile.ZipFile(source), source
    except (zipfile.BadZipFile, OSError, EOFError, ValueError) as err:
        raise CheckpointError(f"{source}: broken or truncated zip archive ({err})") from None


def _is_tar(head: bytes) -> bool:
    return len(head) >= 262 and head[257:262] == b"ustar"


def read_checkpoint(path: str | os.PathLike[str]) -> Any:
    """The object a ``torch.save`` file holds, with tensors as NumPy arrays; nothing from the file is executed.

    TorchScript archives give their module tree as :class:`~axiom.io._safe_unpickle.ScriptObject` records.

    Example:
        >>> import os, tempfile, torch
        >>> path = os.path.join(tempfile.mkdtemp(), "ckpt.pt")
        >>> torch.save({"w": torch.arange(6.0).reshape(2, 3).t(), "epoch": 3}, path)
        >>> obj = read_checkpoint(path)
        >>> obj["w"].shape, obj["w"][2].tolist(), obj["epoch"]
        ((3, 2), [2.0, 5.0], 3)
    """
    zf, source = _open(path)
    with zf:
        return _Archive(zf, source).unpickle("data.pkl")


def _state_dict_of(obj: Any, source: str) -> OrderedDict[str, np.ndarray]:
    """The tensors of a state dict or a Lightning-style ``{"state_dict": ...}``, common prefix removed."""
    if isinstance(obj, Mapping) and "state_dict" in obj and isinstance(obj["state_dict"], Mapping):
        obj = obj["state_dict"]
    if not isinstance(obj, Mapping) or not obj:
        raise CheckpointError(f"{source}: expected a state dict (name -> tensor), got {type(obj).__name__}")
    state: OrderedDict[str, np.ndarray] = OrderedDict()
    for key, value in obj.items():
        if not isinstance(key, str) or not isinstance(value, np.ndarray):
            raise CheckpointError(
                f"{source}: state dict entry {key!r:.80} is a {type(value).__name__}; expected str -> tensor "
                "(for a training checkpoint, keep the tensors under 'state_dict')"
            )
        state[key] = value
    for prefix in ("model.", "module."):
        if all(k.startswith(prefix) for k in state):
            state = OrderedDict((k[len(prefix) :], v) for k, v in state.items())
    return state


def _float_dtype(state: Mapping[str, np.ndarray]) -> np.dtype | None:
    for v in state.values():
        if v.dtype in FLOAT_DTYPES:
            return v.dtype
    return None


# -- TorchScript -------------------------------------------------------------------------------

_FINAL = re.compile(r"^\s+(\w+)\s*:\s*Final\[[^\n=]*\]\s*=\s*(.+?)\s*$", re.M)
_CLASS = re.compile(r"^class (\w+)\(", re.M)


def _script_constants(code: dict[str, str]) -> dict[str, dict[str, Any]]:
    """``__torch__.<module>.<Class>`` -> its ``Final`` constants, read as literals (no code runs)."""
    out: dict[str, dict[str, Any]] = {}
    for rel, text in code.items():
        module = rel[: -len(".py")].replace("/", ".")
        chunks = _CLASS.split(text)
        for name, body in zip(chunks[1::2], chunks[2::2], strict=True):
            consts: dict[str, Any] = {}
            for key, literal in _FINAL.findall(body):
                try:
                    consts[key] = ast.literal_eval(literal)
                except (ValueError, SyntaxError):
                    continue
            out[f"{module}.{name}"] = consts
    return out


def _torch_type(qualified: str) -> str:
    """``__torch__.torch.nn.modules.linear.___torch_mangle_0.Linear`` -> ``Linear`` (only for torch.nn types)."""
    parts = [p for p in qualified.split(".") if not p.startswith("___torch_mangle")]
    if parts[:4] != ["__torch__", "torch", "nn", "modules"]:
        return ""
    return parts[-1]


_SCRIPT_ARGS = {
    "Linear": ("in_features", "out_features"),
    "Conv2d": ("in_channels", "out_channels", "kernel_size", "stride", "padding", "dilation", "groups",
               "padding_mode"),
    "BatchNorm1d": ("num_features", "eps", "momentum", "affine", "track_running_stats"),
    "BatchNorm2d": ("num_features", "eps", "momentum", "affine", "track_running_stats"),
    "LayerNorm": ("normalized_shape", "eps", "elementwise_affine"),
    "Flatten": ("start_dim", "end_dim"),
    "Softmax": ("dim",),
    "LogSoftmax": ("dim",),
    "LeakyReLU": ("negative_slope",),
    "ELU": ("alpha",),
    "GELU": ("approximate",),
    "Dropout": ("p",),
    "MaxPool2d": ("kernel_size", "stride", "padding", "dilation", "ceil_mode", "return_indices"),
    "AvgPool2d": ("kernel_size", "stride", "padding", "ceil_mode", "count_include_pad", "divisor_override"),
    "AdaptiveAvgPool2d": ("output_size",),
}  # fmt: skip


def _script_state(obj: ScriptObject, prefix: str, out: OrderedDict[str, np.ndarray]) -> None:
    for key, value in obj.state.items():
        if isinstance(value, np.ndarray):
            out[prefix + key] = value
        elif isinstance(value, ScriptObject):
            _script_state(value, f"{prefix}{key}.", out)


def _script_descriptor(root: ScriptObject, code: dict[str, str], source: str) -> dict[str, Any]:
    consts = _script_constants(code)

    def layers_of(seq: ScriptObject, where: str) -> list[dict[str, Any]]:
        children = [(k, v) for k, v in seq.state.items() if isinstance(v, ScriptObject)]
        if [k for k, _ in children] != [str(i) for i in range(len(children))]:
            raise CheckpointError(
                f"{source}: TorchScript {where} is not a Sequential (children {[k for k, _ in children]})"
            )
        out = []
        for i, (_, child) in enumerate(children):
            kind = _torch_type(child.qualified_name)
            at = f"{where} layer {i} ({child.qualified_name})"
            if kind == "Sequential":
                out.append({"type": "Sequential", "layers": layers_of(child, at)})
                continue
            if not kind:
                raise CheckpointError(
                    f"{source}: TorchScript {at}: not a torch.nn layer, its code cannot be mapped to axiom layers; "
                    "pass architecture= (a descriptor or an axiom model) to load its parameters"
                )
            c = consts.get(child.qualified_name, {})
            spec: dict[str, Any] = {"type": kind}
            for name in _SCRIPT_ARGS.get(kind, ()):
                if name in c:
                    spec[name] = list(c[name]) if isinstance(c[name], tuple) else c[name]
            if kind in ("Linear", "Conv2d"):
                spec["bias"] = isinstance(child.state.get("bias"), np.ndarray)
            if kind in ("Linear", "Conv2d", "BatchNorm1d", "BatchNorm2d", "LayerNorm") and len(spec) <= 2:
                raise CheckpointError(
                    f"{source}: TorchScript {at}: its hyperparameters are not recorded as constants in the code; "
                    "pass architecture= to load its parameters"
                )
            out.append(spec)
        return out

    if _torch_type(root.qualified_name) != "Sequential":
        raise CheckpointError(
            f"{source}: TorchScript module {root.qualified_name} is not a torch.nn.Sequential; its code cannot be "
            "mapped to axiom layers. Pass architecture= (a descriptor or an axiom model) to load its parameters"
        )
    return {"format": FORMAT, "layers": layers_of(root, "Sequential")}


# -- public ------------------------------------------------------------------------------------


def _model_for(architecture: Any, state: Mapping[str, np.ndarray], source: str) -> tuple[Layer, bool]:
    if isinstance(architecture, Layer):
        return architecture, False
    if isinstance(architecture, str | os.PathLike):
        architecture = load_descriptor(architecture)
    if isinstance(architecture, Mapping):
        return build_from_descriptor(architecture), True
    raise TypeError(
        f"load_checkpoint: architecture must be None, a descriptor dict, a descriptor JSON path or an axiom model, "
        f"got {type(architecture).__name__}"
    )


def load_checkpoint(path: str | os.PathLike[str], architecture: Any = None) -> Layer:
    """Load a ``.pt`` / ``.pth`` / ``.ckpt`` / TorchScript file into an axiom model, safely (no torch needed).

    ``architecture`` is an ``axiom.pytorch.sequential.v1`` descriptor (dict, or path to its JSON),
    or an axiom model whose parameters are overwritten (names matched structurally, layouts
    converted). It may be left out only for TorchScript archives of a ``torch.nn.Sequential``.
    A model built from a descriptor takes the dtype of the checkpoint's floating tensors.

    Raises :class:`UnsafeCheckpointError` for pickles asking for anything but tensors,
    :class:`CheckpointError` for malformed/truncated/legacy files, :class:`DescriptorError` for a
    bad descriptor and :class:`StateMismatchError` for missing/unexpected keys or wrong shapes.

    Example:
        >>> import os, tempfile, torch
        >>> from axiom import Dense
        >>> path = os.path.join(tempfile.mkdtemp(), "lin.pth")
        >>> torch.save(torch.nn.Linear(3, 2).state_dict(), path)
        >>> load_checkpoint(path, Dense(3, 2)).weight.shape
        (3, 2)
        >>> load_checkpoint(path)  # doctest: +ELLIPSIS
        Traceback (most recent call last):
        ...
        axiom.io._safe_unpickle.CheckpointError: ...holds a state dict (weights only); pass architecture=...
    """
    zf, source = _open(path)
    with zf:
        archive = _Archive(zf, source)
        obj = archive.unpickle("data.pkl")
        if archive.torchscript:
            if not isinstance(obj, ScriptObject):
                raise CheckpointError(f"{source}: TorchScript data.pkl holds a {type(obj).__name__}, not a module")
            state: OrderedDict[str, np.ndarray] = OrderedDict()
            _script_state(obj, "", state)
            if architecture is None:
                architecture = _script_descriptor(obj, archive.code(), source)
        else:
            state = _state_dict_of(obj, source)
    if architecture is None:
        raise CheckpointError(
            f"{source}: holds a state dict (weights only); pass architecture= an {FORMAT!r} descriptor "
            "(dict or JSON path) or an axiom model to load the weights into"
        )
    model, built = _model_for(architecture, state, source)
    if built:
        dtype = _float_dtype(state)
        if dtype is not None and dtype != np.float32:
            model.to(dtype)
    try:
        converted = torch_state_to_axiom(model, state)
    except StateMismatchError as err:
        raise StateMismatchError(f"{source}: {err}") from None
    model.load_state_dict(converted, strict=True)
    return model
