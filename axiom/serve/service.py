"""One ``InferenceService`` over a model or a model package; the REST, gRPC and GraphQL adapters only translate.

The service speaks Open Inference Protocol v2 (OIP) terms: tensors are dicts with ``name``,
``datatype`` (``"FP32"``, ``"FP64"``, ``"INT64"``, ...), ``shape`` and ``data`` (a NumPy array).
It validates every request (model name and version, input names, datatype, shape with a free
batch dimension, element count, finite values, batch and byte limits), runs the model under
``no_grad`` (one request at a time: a lock makes it thread-safe; a request's batch runs as one
call) and refuses an output that is not finite. Every refusal is an :class:`InferenceError`
with an HTTP ``status`` and a ``message`` naming the problem, which each adapter maps to its
protocol (``grpc_code`` for gRPC).

Example:
    >>> import numpy as np
    >>> from axiom.train.examples import mlp_784
    >>> service = InferenceService(mlp_784(), name="mlp")
    >>> service.model_metadata("mlp")["inputs"]
    [{'name': 'input', 'datatype': 'FP32', 'shape': [-1, 784]}]
    >>> out = service.infer("mlp", [{"name": "input", "datatype": "FP32", "shape": [2, 784],
    ...                              "data": np.zeros((2, 784), np.float32)}])
    >>> out[0]["name"], out[0]["datatype"], out[0]["shape"]
    ('output', 'FP32', [2, 10])
    >>> try:
    ...     service.infer("mlp", [{"name": "input", "datatype": "FP32", "shape": [1, 3],
    ...                            "data": np.zeros((1, 3), np.float32)}])
    ... except InferenceError as err:
    ...     print(err.status, err.message)
    400 input 'input': shape [1, 3] does not match [-1, 784] (-1: any size)
"""

from __future__ import annotations

import math
import threading
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np

__all__ = ["DATATYPES", "InferenceError", "InferenceService", "as_service", "datatype_of", "numpy_dtype"]

#: OIP datatype names and their NumPy dtypes (BYTES is not a numeric tensor and is refused).
DATATYPES: dict[str, np.dtype] = {
    "BOOL": np.dtype(np.bool_),
    "UINT8": np.dtype(np.uint8),
    "UINT16": np.dtype(np.uint16),
    "UINT32": np.dtype(np.uint32),
    "UINT64": np.dtype(np.uint64),
    "INT8": np.dtype(np.int8),
    "INT16": np.dtype(np.int16),
    "INT32": np.dtype(np.int32),
    "INT64": np.dtype(np.int64),
    "FP16": np.dtype(np.float16),
    "FP32": np.dtype(np.float32),
    "FP64": np.dtype(np.float64),
}

_GRPC_CODES = {400: "INVALID_ARGUMENT", 404: "NOT_FOUND", 413: "INVALID_ARGUMENT", 422: "INVALID_ARGUMENT"}


def numpy_dtype(datatype: str) -> np.dtype:
    """The NumPy dtype of an OIP datatype name; ``InferenceError`` (400) for an unknown or non-numeric one.

    Example:
        >>> numpy_dtype("FP32"), numpy_dtype("INT64")
        (dtype('float32'), dtype('int64'))
    """
    try:
        return DATATYPES[str(datatype)]
    except KeyError:
        known = ", ".join(DATATYPES)
        raise InferenceError(400, f"unsupported datatype {datatype!r} (supported: {known})") from None


def datatype_of(dtype: Any) -> str:
    """The OIP datatype name of a NumPy dtype.

    Example:
        >>> datatype_of(np.float32), datatype_of(np.dtype("int64"))
        ('FP32', 'INT64')
    """
    dt = np.dtype(dtype)
    for name, candidate in DATATYPES.items():
        if candidate == dt:
            return name
    raise InferenceError(500, f"dtype {dt} has no Open Inference Protocol datatype")


class InferenceError(Exception):
    """A refused or failed request: ``status`` (HTTP: 400 bad input, 404 unknown model or version,
    413 too large, 422 non-finite model output, 500 internal) and ``message``.

    Example:
        >>> err = InferenceError(404, "unknown model 'x'")
        >>> err.status, err.message, err.grpc_code, str(err)
        (404, "unknown model 'x'", 'NOT_FOUND', "unknown model 'x'")
    """

    def __init__(self, status: int, message: str) -> None:
        super().__init__(message)
        self.status = int(status)
        self.message = str(message)

    @property
    def grpc_code(self) -> str:
        """The gRPC status code name: ``INVALID_ARGUMENT`` (400, 413, 422), ``NOT_FOUND`` (404), else ``INTERNAL``."""
        return _GRPC_CODES.get(self.status, "INTERNAL")


def _load(source: str | Path) -> tuple[Any, dict[str, Any]]:
    """A model (and what its package says: name, version) from a package directory or an .onnx file."""
    path = Path(source)
    if path.is_dir():
        from axiom.registry import load_model_package  # type: ignore[attr-defined]

        loaded = load_model_package(path)
        model = getattr(loaded, "model", None)
        meta = getattr(loaded, "metadata", None)
        if model is None and isinstance(loaded, tuple):
            model, meta = loaded[0], (loaded[1] if len(loaded) > 1 else None)
        if model is None and isinstance(loaded, dict):
            model, meta = loaded.get("model"), loaded.get("metadata")
        if model is None:
            raise TypeError(f"load_model_package({str(path)!r}) returned no model")
        meta = meta if isinstance(meta, dict) else getattr(meta, "__dict__", {}) or {}
        return model, dict(meta)
    if path.suffix.lower() == ".onnx":
        from axiom.io import from_onnx

        return from_onnx(path), {"name": path.stem}
    raise ValueError(f"{str(path)!r}: expected a model package directory or an .onnx file")


def _dims(shape: Sequence[Any]) -> list[int]:
    """OIP dims: the first (batch) and every symbolic dim become -1."""
    return [-1 if i == 0 or not isinstance(d, (int, np.integer)) else int(d) for i, d in enumerate(shape)]


class InferenceService:
    """Validated, thread-safe inference over one model (an axiom layer, an imported ONNX model,
    a package directory or an ``.onnx`` path), in Open Inference Protocol terms.

    ``name`` defaults to the package's name (else ``"model"``), ``version`` to the package's
    version (else ``"1"``). ``max_batch_size`` bounds the batch dimension (400 beyond it),
    ``max_request_bytes`` the size of a request (413 beyond it; adapters check their bodies
    against it with :meth:`check_request_size`). The one input is named ``"input"``, the one
    output ``"output"``.

    Example:
        >>> import numpy as np
        >>> from axiom.train.examples import mlp_784
        >>> service = InferenceService(mlp_784(), name="mlp", version="2")
        >>> service.live(), service.ready("mlp", "2"), service.ready("mlp", "3"), service.versions
        (True, True, False, ['2'])
        >>> service.server_metadata()["extensions"]
        ['binary_tensor_data']
    """

    input_name = "input"
    output_name = "output"

    def __init__(
        self,
        model_or_package: Any,
        *,
        name: str | None = None,
        version: str | None = None,
        max_batch_size: int = 4096,
        max_request_bytes: int = 64 * 1024 * 1024,
    ) -> None:
        meta: dict[str, Any] = {}
        model = model_or_package
        if isinstance(model, (str, Path)):
            model, meta = _load(model)
        input_shape: tuple[Any, ...] | None = None
        if hasattr(model, "onnx_model") and hasattr(model, "model"):  # an imported ONNX model
            input_shape = ("batch", *model.input_shape)
            model = model.model
        if not callable(model):
            raise TypeError(f"InferenceService: expects a model, a package directory or an .onnx path, got {model!r}")
        self.model = model
        self.name = str(name or meta.get("name") or "model")
        self.versions = [str(version or meta.get("version") or "1")]
        self.max_batch_size = int(max_batch_size)
        self.max_request_bytes = int(max_request_bytes)
        self._lock = threading.Lock()
        if input_shape is None:
            default = getattr(model, "default_input_shape", None)
            input_shape = tuple(default()) if callable(default) else ("batch", "features")
        self._input_dims = _dims(input_shape)
        dtype = np.dtype(np.int64) if getattr(model, "accepts_integers", False) else None
        if dtype is None:
            param_dtype = getattr(model, "param_dtype", None)
            param_dtype = param_dtype() if callable(param_dtype) else param_dtype
            dtype = np.dtype(param_dtype) if param_dtype is not None else np.dtype(np.float32)
        self._input_dtype = dtype
        try:
            out_shape = _dims(model.output_shape(tuple(input_shape)))
        except Exception:  # a model that cannot state its output shape without data
            out_shape = [-1]
        self._output_dims = out_shape

    # -- health and metadata -------------------------------------------------------------

    def live(self) -> bool:
        """Whether the server process is up (always ``True`` while the service exists)."""
        return True

    def ready(self, name: str | None = None, version: str | None = None) -> bool:
        """Whether the service (``name=None``) or model ``name`` (at ``version``, if given) can serve."""
        if name is None:
            return True
        return name == self.name and (version in (None, "") or str(version) in self.versions)

    def server_metadata(self) -> dict[str, Any]:
        """OIP server metadata: ``name``, ``version``, ``extensions``.

        Example:
            >>> from axiom.nn import Dense
            >>> InferenceService(Dense(2, 1)).server_metadata()["name"]
            'axiom'
        """
        from axiom import __version__

        return {"name": "axiom", "version": __version__, "extensions": ["binary_tensor_data"]}

    def _check_model(self, name: str, version: str | None) -> None:
        if name != self.name:
            raise InferenceError(404, f"unknown model {name!r} (this server serves {self.name!r})")
        if version not in (None, "") and str(version) not in self.versions:
            raise InferenceError(404, f"unknown version {version!r} of model {name!r} (versions: {self.versions})")

    @property
    def inputs(self) -> list[dict[str, Any]]:
        """The model's OIP input descriptions (``-1``: any size)."""
        return [{"name": self.input_name, "datatype": datatype_of(self._input_dtype), "shape": list(self._input_dims)}]

    @property
    def outputs(self) -> list[dict[str, Any]]:
        """The model's OIP output descriptions (the datatype is the input's for a float model)."""
        dt = self._input_dtype if self._input_dtype.kind == "f" else np.dtype(np.float32)
        return [{"name": self.output_name, "datatype": datatype_of(dt), "shape": list(self._output_dims)}]

    def model_metadata(self, name: str, version: str | None = None) -> dict[str, Any]:
        """OIP model metadata: ``name``, ``versions``, ``platform``, ``inputs``, ``outputs``; 404 for an unknown model.

        Example:
            >>> from axiom.nn import Dense
            >>> InferenceService(Dense(3, 2), name="d").model_metadata("d")["outputs"]
            [{'name': 'output', 'datatype': 'FP32', 'shape': [-1, 2]}]
        """
        self._check_model(name, version)
        return {
            "name": self.name,
            "versions": list(self.versions),
            "platform": "axiom",
            "inputs": self.inputs,
            "outputs": self.outputs,
        }

    # -- inference -----------------------------------------------------------------------

    def check_request_size(self, nbytes: int) -> None:
        """Raise ``InferenceError`` (413) when a request of ``nbytes`` exceeds ``max_request_bytes``.

        Example:
            >>> from axiom.nn import Dense
            >>> try:
            ...     InferenceService(Dense(2, 1), max_request_bytes=10).check_request_size(11)
            ... except InferenceError as err:
            ...     print(err.status, err.message)
            413 request of 11 bytes exceeds the limit of 10 bytes
        """
        if nbytes > self.max_request_bytes:
            raise InferenceError(413, f"request of {nbytes} bytes exceeds the limit of {self.max_request_bytes} bytes")

    def _input_array(self, tensor: dict[str, Any]) -> np.ndarray:
        name = tensor.get("name")
        if name != self.input_name:
            raise InferenceError(400, f"unknown input {name!r} (the model's input is {self.input_name!r})")
        datatype = tensor.get("datatype")
        want = datatype_of(self._input_dtype)
        dtype = numpy_dtype(datatype)
        if dtype != self._input_dtype:
            raise InferenceError(400, f"input {name!r}: datatype {datatype} does not match the model's {want}")
        shape = tensor.get("shape")
        if not isinstance(shape, (list, tuple)) or not all(
            isinstance(d, (int, np.integer)) and not isinstance(d, bool) and d >= 0 for d in shape
        ):
            raise InferenceError(400, f"input {name!r}: shape must be a list of non-negative integers, got {shape!r}")
        shape = [int(d) for d in shape]
        dims = self._input_dims
        if len(shape) != len(dims) or any(w != -1 and s != w for s, w in zip(shape, dims, strict=False)):
            raise InferenceError(400, f"input {name!r}: shape {shape} does not match {dims} (-1: any size)")
        if shape[0] < 1:
            raise InferenceError(400, f"input {name!r}: the batch dimension must be at least 1, got {shape[0]}")
        if shape[0] > self.max_batch_size:
            raise InferenceError(400, f"input {name!r}: batch {shape[0]} exceeds max_batch_size {self.max_batch_size}")
        count = math.prod(shape)
        self.check_request_size(count * dtype.itemsize)
        data = tensor.get("data")
        try:
            arr = np.asarray(data)
            if arr.dtype != dtype:
                if arr.dtype.kind in "OUSV" or (dtype.kind in "iub" and arr.dtype.kind == "f"):
                    raise TypeError(f"elements of type {arr.dtype} are not {datatype}")
                arr = arr.astype(dtype)
        except (TypeError, ValueError) as err:
            raise InferenceError(400, f"input {name!r}: data is not a {datatype} tensor ({err})") from None
        if arr.size != count:
            raise InferenceError(400, f"input {name!r}: {arr.size} values do not fill shape {shape} ({count} values)")
        arr = arr.reshape(shape)
        if arr.dtype.kind == "f" and not np.isfinite(arr).all():
            bad = int(arr.size - np.isfinite(arr).sum())
            raise InferenceError(400, f"input {name!r} contains {bad} NaN or infinite value(s)")
        return arr

    def infer(
        self,
        name: str,
        inputs: Sequence[dict[str, Any]],
        outputs: Sequence[str] | None = None,
        version: str | None = None,
    ) -> list[dict[str, Any]]:
        """Run the model on OIP ``inputs``; the requested ``outputs`` (all by default) as OIP tensors.

        Raises :class:`InferenceError`: 404 unknown model/version, 400 bad input (names,
        datatype, shape, values, NaN/inf), 413 too large, 422 a non-finite model output,
        500 the model failed.

        Example:
            >>> import numpy as np
            >>> from axiom.nn import Dense
            >>> service = InferenceService(Dense(2, 1), name="d")
            >>> service.infer("d", [{"name": "input", "datatype": "FP32", "shape": [3, 2],
            ...                      "data": np.ones((3, 2), np.float32)}])[0]["shape"]
            [3, 1]
        """
        self._check_model(name, version)
        if not isinstance(inputs, (list, tuple)) or len(inputs) != 1 or not isinstance(inputs[0], dict):
            count = len(inputs) if isinstance(inputs, (list, tuple)) else "no list of"
            raise InferenceError(400, f"expected exactly one input tensor {self.input_name!r}, got {count} input(s)")
        x = self._input_array(inputs[0])
        wanted = [self.output_name] if outputs is None else [str(o) for o in outputs]
        for out in wanted:
            if out != self.output_name:
                raise InferenceError(400, f"unknown output {out!r} (the model's output is {self.output_name!r})")
        from axiom.autograd import no_grad
        from axiom.shapes import ShapeError

        try:
            with self._lock, no_grad():
                y = np.asarray(self.model(x))
        except (ShapeError, ValueError, TypeError) as err:
            raise InferenceError(400, f"the model refused the input: {err}") from None
        except Exception as err:  # the model itself failed: the server keeps serving
            raise InferenceError(500, f"the model failed: {type(err).__name__}: {err}") from None
        if y.dtype.kind == "f" and not np.isfinite(y).all():
            bad = int(y.size - np.isfinite(y).sum())
            what = f"{bad} NaN or infinite value(s)"
            raise InferenceError(422, f"model output {self.output_name!r} is not finite ({what})")
        y = np.ascontiguousarray(y)
        result = {"name": self.output_name, "datatype": datatype_of(y.dtype), "shape": list(y.shape), "data": y}
        return [result for _ in wanted]


def as_service(model_or_service: Any, adapter: str, **options: Any) -> InferenceService:
    """The service an adapter serves: ``model_or_service`` itself, or a new one over the model.

    Service options (``name=``, ``version=``, limits) only apply when a model is given.

    Example:
        >>> from axiom import Dense
        >>> svc = as_service(Dense(2, 1), "serve_rest", name="d")
        >>> as_service(svc, "serve_rest") is svc, svc.name
        (True, 'd')
    """
    if isinstance(model_or_service, InferenceService):
        if options:
            raise TypeError(f"{adapter}: options {sorted(options)} need a model, not an InferenceService")
        return model_or_service
    return InferenceService(model_or_service, **options)
