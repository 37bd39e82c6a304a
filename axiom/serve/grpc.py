"""``serve_grpc``: the Open Inference Protocol v2 gRPC service (``inference.GRPCInferenceService``).

The six unary methods ``ServerLive``, ``ServerReady``, ``ModelReady``, ``ServerMetadata``,
``ModelMetadata`` and ``ModelInfer`` of the KServe / Triton ``grpc_predict_v2.proto``
(:func:`generate_grpc_proto` writes it), so ``tritonclient.grpc`` and any client generated from
that file talk to it. Tensors travel in ``raw_input_contents`` / ``raw_output_contents``
(little-endian bytes, what ``tritonclient`` sends) or in the typed ``contents`` fields; the
response uses the form of the request.

**JSON bridge** (``application/grpc+json``): the same methods also accept the request message
encoded as protobuf JSON (``google.protobuf.json_format``; ``bytes`` fields in base64) and then
answer in JSON. The server looks at each request body: one that starts with ``{`` is JSON
(a protobuf encoding of these messages never starts with that byte), anything else is
binary protobuf. A client sends JSON by giving its channel's stub JSON serializers, e.g.
``channel.unary_unary("/inference.GRPCInferenceService/ModelInfer",
request_serializer=lambda d: json.dumps(d).encode(), response_deserializer=json.loads)``
(send ``{}`` for the empty requests).

Errors: every refused request gets a gRPC status with a message naming the problem:
``INVALID_ARGUMENT`` (bad shape, datatype, values, NaN/inf, a malformed message, an oversized
request, a non-finite model output), ``NOT_FOUND`` (unknown model or version), ``INTERNAL``
(the model failed). The server keeps serving. A message larger than the gRPC receive limit
(the larger of 4 x ``max_request_bytes`` and 64 MiB) is refused by gRPC itself with
``RESOURCE_EXHAUSTED``.

Example:
    >>> import grpc, json
    >>> from axiom.nn import Dense
    >>> with serve_grpc(Dense(2, 1), name="d", background=True) as server:
    ...     with grpc.insecure_channel(server.url) as channel:
    ...         live = channel.unary_unary("/inference.GRPCInferenceService/ServerLive",
    ...                                    request_serializer=lambda d: json.dumps(d).encode(),
    ...                                    response_deserializer=json.loads)
    ...         live({}, timeout=10)
    {'live': True}
"""

from __future__ import annotations

from collections.abc import Callable
from concurrent import futures
from pathlib import Path
from typing import Any

import grpc
import numpy as np
from google.protobuf import json_format
from google.protobuf.message import DecodeError

from axiom.serve import _proto as pb
from axiom.serve._handle import ServerHandle
from axiom.serve.service import InferenceError, InferenceService, as_service, numpy_dtype

__all__ = ["generate_grpc_proto", "serve_grpc"]

#: OIP datatype -> the typed ``InferTensorContents`` field that carries it (FP16 travels raw only).
_CONTENTS_FIELD = {
    "BOOL": "bool_contents",
    "INT8": "int_contents",
    "INT16": "int_contents",
    "INT32": "int_contents",
    "INT64": "int64_contents",
    "UINT8": "uint_contents",
    "UINT16": "uint_contents",
    "UINT32": "uint_contents",
    "UINT64": "uint64_contents",
    "FP32": "fp32_contents",
    "FP64": "fp64_contents",
}


def generate_grpc_proto(path: str | Path) -> Path:
    """Write the ``grpc_predict_v2.proto`` this server implements to ``path`` (a file or a directory).

    Example:
        >>> import tempfile
        >>> out = generate_grpc_proto(tempfile.mkdtemp())
        >>> out.name, "service GRPCInferenceService" in out.read_text()
        ('grpc_predict_v2.proto', True)
    """
    path = Path(path)
    if path.is_dir():
        path = path / "grpc_predict_v2.proto"
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(pb.PROTO, encoding="utf-8")
    return path


# -- message <-> service translation ------------------------------------------------------


def _tensor_data(tensor: Any, raw: bytes | None) -> np.ndarray:
    """The values of one ``InferInputTensor``: from its raw bytes, else from its typed contents."""
    datatype = tensor.datatype
    dtype = numpy_dtype(datatype)
    if raw is not None:
        if len(raw) % dtype.itemsize:
            raise InferenceError(
                400, f"input {tensor.name!r}: {len(raw)} raw bytes are not a whole number of {datatype} values"
            )
        return np.frombuffer(raw, dtype=dtype.newbyteorder("<")).astype(dtype, copy=False)
    field = _CONTENTS_FIELD.get(datatype)
    if field is None:
        raise InferenceError(400, f"input {tensor.name!r}: datatype {datatype} must be sent in raw_input_contents")
    return np.asarray(list(getattr(tensor.contents, field)), dtype=dtype)


def _model_infer(service: InferenceService, request: Any) -> Any:
    raw = list(request.raw_input_contents)
    if raw and len(raw) != len(request.inputs):
        raise InferenceError(400, f"{len(raw)} raw_input_contents for {len(request.inputs)} input(s)")
    inputs = []
    for i, tensor in enumerate(request.inputs):
        if raw and tensor.HasField("contents"):
            raise InferenceError(400, f"input {tensor.name!r}: both contents and raw_input_contents given")
        data = _tensor_data(tensor, raw[i] if raw else None)
        inputs.append({"name": tensor.name, "datatype": tensor.datatype, "shape": list(tensor.shape), "data": data})
    wanted = [o.name for o in request.outputs] or None
    version = request.model_version or None
    results = service.infer(request.model_name, inputs, outputs=wanted, version=version)
    response = pb.ModelInferResponse(
        model_name=service.name, model_version=version or service.versions[0], id=request.id
    )
    for result in results:
        out = response.outputs.add(name=result["name"], datatype=result["datatype"], shape=result["shape"])
        data = np.ascontiguousarray(result["data"])
        if raw:
            response.raw_output_contents.append(data.astype(data.dtype.newbyteorder("<"), copy=False).tobytes())
        else:
            field = _CONTENTS_FIELD.get(result["datatype"])
            if field is None:
                response.raw_output_contents.append(data.tobytes())
            else:
                getattr(out.contents, field).extend(data.ravel().tolist())
    return response


def _model_metadata(service: InferenceService, request: Any) -> Any:
    meta = service.model_metadata(request.name, request.version or None)
    response = pb.ModelMetadataResponse(name=meta["name"], versions=meta["versions"], platform=meta["platform"])
    for key in ("inputs", "outputs"):
        for t in meta[key]:
            getattr(response, key).add(name=t["name"], datatype=t["datatype"], shape=t["shape"])
    return response


def _model_ready(service: InferenceService, request: Any) -> Any:
    if request.name != service.name:
        raise InferenceError(404, f"unknown model {request.name!r} (this server serves {service.name!r})")
    return pb.ModelReadyResponse(ready=service.ready(request.name, request.version or None))


def _handlers(service: InferenceService) -> dict[str, Callable[[Any], Any]]:
    meta = service.server_metadata
    return {
        "ServerLive": lambda r: pb.ServerLiveResponse(live=service.live()),
        "ServerReady": lambda r: pb.ServerReadyResponse(ready=service.ready()),
        "ModelReady": lambda r: _model_ready(service, r),
        "ServerMetadata": lambda r: pb.ServerMetadataResponse(**meta()),
        "ModelMetadata": lambda r: _model_metadata(service, r),
        "ModelInfer": lambda r: _model_infer(service, r),
    }


def _method(service: InferenceService, name: str, handler: Callable[[Any], Any]) -> Callable[[bytes, Any], bytes]:
    """A raw-bytes unary handler: decode (protobuf or JSON), run, encode in the request's format."""
    request_cls = pb.METHODS[name][0]

    def call(body: bytes, context: grpc.ServicerContext) -> bytes:
        is_json = body.lstrip()[:1] == b"{"
        code, message = None, ""
        try:
            service.check_request_size(len(body))
            try:
                if is_json:
                    request = json_format.Parse(body.decode("utf-8"), request_cls())
                else:
                    request = request_cls.FromString(body)
            except (DecodeError, json_format.ParseError, UnicodeDecodeError) as err:
                kind = "JSON" if is_json else "protobuf"
                raise InferenceError(400, f"malformed {name} request ({kind}): {err}") from None
            response = handler(request)
            if is_json:
                return json_format.MessageToJson(response, indent=None).encode("utf-8")
            return response.SerializeToString()
        except InferenceError as err:
            code, message = getattr(grpc.StatusCode, err.grpc_code), err.message
        except Exception as err:  # a bug or a failing model: report it, keep serving
            code, message = grpc.StatusCode.INTERNAL, f"{name} failed: {type(err).__name__}: {err}"
        context.abort(code, message)
        raise AssertionError("unreachable")  # context.abort raises

    return call


def _generic_handler(service: InferenceService) -> grpc.GenericRpcHandler:
    handlers = {
        name: grpc.unary_unary_rpc_method_handler(_method(service, name, fn)) for name, fn in _handlers(service).items()
    }
    return grpc.method_handlers_generic_handler(pb.SERVICE, handlers)


def serve_grpc(
    model_or_service: Any,
    host: str = "127.0.0.1",
    port: int = 0,
    background: bool = False,
    *,
    max_workers: int = 8,
    **service_options: Any,
) -> ServerHandle | None:
    """Serve a model (or an :class:`InferenceService`) over gRPC, Open Inference Protocol v2.

    ``port=0`` picks a free port. ``background=True`` returns a :class:`ServerHandle` whose
    ``url`` is ``host:port`` (what ``grpc.insecure_channel`` and
    ``tritonclient.grpc.InferenceServerClient`` take); otherwise serves until interrupted.
    ``service_options`` (``name``, ``version``, ``max_batch_size``, ``max_request_bytes``) go
    to :class:`InferenceService` when a model is given.

    Example:
        >>> import numpy as np
        >>> from axiom.nn import Dense
        >>> from axiom.serve import _proto as pb
        >>> import grpc
        >>> with serve_grpc(Dense(2, 1), name="d", background=True) as server:
        ...     with grpc.insecure_channel(server.url) as channel:
        ...         infer = channel.unary_unary("/inference.GRPCInferenceService/ModelInfer",
        ...             request_serializer=lambda m: m.SerializeToString(),
        ...             response_deserializer=pb.ModelInferResponse.FromString)
        ...         request = pb.ModelInferRequest(model_name="d")
        ...         _ = request.inputs.add(name="input", datatype="FP32", shape=[1, 2])
        ...         request.raw_input_contents.append(np.ones((1, 2), "<f4").tobytes())
        ...         list(infer(request, timeout=10).outputs[0].shape)
        [1, 1]
    """
    service = as_service(model_or_service, "serve_grpc", **service_options)
    limit = max(4 * service.max_request_bytes, 64 << 20)  # larger ones get our INVALID_ARGUMENT, not gRPC's
    server = grpc.server(
        futures.ThreadPoolExecutor(max_workers=max_workers, thread_name_prefix="axiom-grpc"),
        handlers=[_generic_handler(service)],
        options=[("grpc.max_receive_message_length", limit), ("grpc.max_send_message_length", -1)],
    )
    bound = server.add_insecure_port(f"{host}:{port}")
    if not bound:
        raise OSError(f"serve_grpc: cannot bind {host}:{port}")
    server.start()
    url = f"{host}:{bound}"
    if background:
        return ServerHandle(url, bound, lambda: server.stop(grace=1).wait(5))
    print(f"axiom: serving {service.name!r} over gRPC at {url}")  # noqa: T201 - the blocking server says where
    try:
        server.wait_for_termination()
    except KeyboardInterrupt:
        pass
    finally:
        server.stop(grace=1).wait(5)
    return None
