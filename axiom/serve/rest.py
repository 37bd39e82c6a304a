"""``serve_rest``: the Open Inference Protocol v2 (KServe v2 / Triton) REST API over an :class:`InferenceService`.

Endpoints: ``GET /v2`` (server metadata), ``GET /v2/health/live``, ``GET /v2/health/ready``,
``GET /v2/models/{name}[/versions/{v}]`` (model metadata), ``.../ready``, ``.../config`` and
``POST /v2/models/{name}[/versions/{v}]/infer``. Tensors travel as JSON (``"data"``: flat or
nested lists) or with the binary tensor extension: the ``Inference-Header-Content-Length``
header gives the size of the JSON part, each input's ``parameters.binary_data_size`` the size
of its raw little-endian bytes that follow; outputs come back binary when the request sets
``parameters.binary_data_output`` or an output's ``parameters.binary_data``. Every refusal is
a 4xx (5xx for a failed model) with ``{"error": "..."}`` naming the problem, and the server keeps
serving. The server is a :class:`http.server.ThreadingHTTPServer` (HTTP/1.1 keep-alive, one
thread per connection).

Example:
    >>> import json, urllib.request
    >>> from axiom.train.examples import mlp_784
    >>> with serve_rest(mlp_784(), port=0, background=True, name="mlp") as server:
    ...     body = json.dumps({"inputs": [{"name": "input", "datatype": "FP32", "shape": [1, 784],
    ...                                    "data": [0.0] * 784}]}).encode()
    ...     reply = urllib.request.urlopen(server.url + "/v2/models/mlp/infer", body)
    ...     out = json.loads(reply.read())["outputs"][0]
    >>> out["name"], out["shape"], len(out["data"])
    ('output', [1, 10], 10)
"""

from __future__ import annotations

import json
import socket
import threading
import zlib
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any
from urllib.parse import unquote, urlsplit

import numpy as np

from axiom.serve._handle import ServerHandle
from axiom.serve.service import InferenceError, InferenceService, as_service, numpy_dtype

__all__ = ["serve_rest"]

_HEADER_LENGTH = "Inference-Header-Content-Length"


def _parse_request(body: bytes, header_length: str | None) -> tuple[dict[str, Any], bytes]:
    """The JSON part and the binary part of an infer request body."""
    if header_length is None:
        json_part, binary = body, b""
    else:
        try:
            size = int(header_length)
        except ValueError:
            raise InferenceError(400, f"{_HEADER_LENGTH} is not an integer: {header_length!r}") from None
        if not 0 <= size <= len(body):
            raise InferenceError(400, f"{_HEADER_LENGTH} {size} is outside the body of {len(body)} bytes")
        json_part, binary = body[:size], body[size:]
    try:
        request = json.loads(json_part)
    except (UnicodeDecodeError, json.JSONDecodeError) as err:
        raise InferenceError(400, f"malformed JSON in the request body: {err}") from None
    if not isinstance(request, dict):
        raise InferenceError(400, "the request body must be a JSON object with an 'inputs' list")
    return request, binary


def _decode_inputs(request: dict[str, Any], binary: bytes) -> list[dict[str, Any]]:
    inputs = request.get("inputs")
    if not isinstance(inputs, list) or not inputs:
        raise InferenceError(400, "the request needs a non-empty 'inputs' list")
    decoded = []
    offset = 0
    for tensor in inputs:
        if not isinstance(tensor, dict):
            raise InferenceError(400, "each entry of 'inputs' must be a JSON object")
        name = tensor.get("name")
        params = tensor.get("parameters") or {}
        if not isinstance(params, dict):
            raise InferenceError(400, f"input {name!r}: 'parameters' must be a JSON object")
        size = params.get("binary_data_size")
        if size is not None:
            if not isinstance(size, int) or isinstance(size, bool) or size < 0:
                raise InferenceError(400, f"input {name!r}: binary_data_size must be a non-negative integer")
            if offset + size > len(binary):
                raise InferenceError(
                    400, f"input {name!r}: binary_data_size {size} exceeds the {len(binary) - offset} bytes left"
                )
            dtype = numpy_dtype(tensor.get("datatype")).newbyteorder("<")
            chunk = binary[offset : offset + size]
            offset += size
            if size % dtype.itemsize:
                raise InferenceError(400, f"input {name!r}: {size} bytes are not a whole number of {dtype} values")
            data: Any = np.frombuffer(chunk, dtype=dtype).astype(dtype.newbyteorder("="))
        else:
            if "data" not in tensor:
                raise InferenceError(400, f"input {name!r}: no 'data' and no binary_data_size")
            try:
                data = np.asarray(tensor["data"])
            except ValueError as err:
                raise InferenceError(400, f"input {name!r}: 'data' is not a rectangular list ({err})") from None
        decoded.append({"name": name, "datatype": tensor.get("datatype"), "shape": tensor.get("shape"), "data": data})
    if offset != len(binary):
        raise InferenceError(400, f"{len(binary) - offset} bytes of binary data are not claimed by any input")
    return decoded


def _requested_outputs(request: dict[str, Any]) -> tuple[list[str] | None, dict[str, bool]]:
    """Requested output names (``None``: all) and, per name, whether it goes back binary."""
    params = request.get("parameters") or {}
    if not isinstance(params, dict):
        raise InferenceError(400, "'parameters' must be a JSON object")
    default_binary = bool(params.get("binary_data_output", False))
    outputs = request.get("outputs")
    if outputs is None:
        return None, {"*": default_binary}
    if not isinstance(outputs, list) or not all(isinstance(o, dict) and "name" in o for o in outputs):
        raise InferenceError(400, "'outputs' must be a list of objects with a 'name'")
    binary = {"*": default_binary}
    for out in outputs:
        out_params = out.get("parameters") or {}
        binary[str(out["name"])] = bool(out_params.get("binary_data", default_binary))
    return [str(o["name"]) for o in outputs], binary


def _encode_response(service: InferenceService, request: dict[str, Any], results: list[dict[str, Any]],
                     binary_of: dict[str, bool], version: str | None) -> tuple[bytes, int | None]:  # fmt: skip
    outputs = []
    chunks = []
    for tensor in results:
        arr = tensor["data"]
        entry: dict[str, Any] = {"name": tensor["name"], "datatype": tensor["datatype"], "shape": tensor["shape"]}
        if binary_of.get(tensor["name"], binary_of["*"]):
            raw = np.ascontiguousarray(arr, dtype=arr.dtype.newbyteorder("<")).tobytes()
            entry["parameters"] = {"binary_data_size": len(raw)}
            chunks.append(raw)
        else:
            entry["data"] = arr.ravel().tolist()
        outputs.append(entry)
    reply: dict[str, Any] = {"model_name": service.name, "model_version": version or service.versions[0]}
    if isinstance(request.get("id"), str):
        reply["id"] = request["id"]
    reply["outputs"] = outputs
    header = json.dumps(reply).encode()
    if not chunks:
        return header, None
    return header + b"".join(chunks), len(header)


class _Handler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"
    server_version = "axiom-serve"
    service: InferenceService  # set on the subclass made per server

    def setup(self) -> None:
        """Turn Nagle's algorithm off: a reply's header and body writes must not wait for a delayed ACK."""
        super().setup()
        self.connection.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)

    def log_message(self, format: str, *args: Any) -> None:  # noqa: A002 - the base class's name
        """Quiet: no line per request on stderr."""

    def _send(self, status: int, body: bytes = b"", headers: dict[str, str] | None = None) -> None:
        self.send_response(status)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(body)))
        for key, value in (headers or {}).items():
            self.send_header(key, value)
        if self.close_connection:
            self.send_header("Connection", "close")
        self.end_headers()
        if body and self.command != "HEAD":
            self.wfile.write(body)

    def _json(self, status: int, payload: Any) -> None:
        self._send(status, json.dumps(payload).encode())

    def _error(self, err: InferenceError) -> None:
        self._json(err.status, {"error": err.message})

    def _route(self) -> tuple[str, str | None, str]:
        """(model name, version, action) for ``/v2/models/...`` paths."""
        parts = [unquote(p) for p in urlsplit(self.path).path.split("/") if p]
        if len(parts) < 3 or parts[:2] != ["v2", "models"]:
            raise InferenceError(404, f"no endpoint {self.command} {urlsplit(self.path).path}")
        name, rest, version = parts[2], parts[3:], None
        if rest[:1] == ["versions"]:
            if len(rest) < 2:
                raise InferenceError(404, f"no endpoint {self.command} {urlsplit(self.path).path}")
            version, rest = rest[1], rest[2:]
        if len(rest) > 1:
            raise InferenceError(404, f"no endpoint {self.command} {urlsplit(self.path).path}")
        return name, version, rest[0] if rest else ""

    def do_GET(self) -> None:  # noqa: N802 - the http.server name
        """Health, metadata, readiness and config."""
        try:
            self._read_body()  # a GET may carry a body: read it so the connection stays in step
            path = urlsplit(self.path).path.rstrip("/")
            service = self.service
            if path == "/v2":
                return self._json(200, service.server_metadata())
            if path == "/v2/health/live":
                return self._send(200 if service.live() else 503)
            if path == "/v2/health/ready":
                return self._send(200 if service.ready() else 503)
            name, version, action = self._route()
            if action == "":
                return self._json(200, service.model_metadata(name, version))
            if action == "ready":
                if not service.ready(name, version):
                    service.model_metadata(name, version)  # raises 404 naming the model or version
                return self._send(200)
            if action == "config":
                meta = service.model_metadata(name, version)
                return self._json(200, self._config(meta))
            raise InferenceError(404, f"no endpoint GET {path}")
        except InferenceError as err:
            self._error(err)

    @staticmethod
    def _config(meta: dict[str, Any]) -> dict[str, Any]:
        def dims(t: dict[str, Any]) -> dict[str, Any]:
            return {"name": t["name"], "data_type": "TYPE_" + t["datatype"], "dims": t["shape"][1:]}

        return {
            "name": meta["name"],
            "platform": meta["platform"],
            "max_batch_size": 0,
            "input": [dims(t) for t in meta["inputs"]],
            "output": [dims(t) for t in meta["outputs"]],
        }

    def _read_body(self) -> bytes:
        if self.headers.get("Transfer-Encoding", "").lower() == "chunked":
            self.close_connection = True
            raise InferenceError(400, "chunked request bodies are not supported: send Content-Length")
        raw = self.headers.get("Content-Length", "0")
        try:
            length = int(raw)
            if length < 0:
                raise ValueError(raw)
        except ValueError:
            self.close_connection = True
            raise InferenceError(400, f"invalid Content-Length {raw!r}") from None
        if length > self.service.max_request_bytes:
            self.close_connection = True  # the body stays unread: this connection cannot go on
            self.service.check_request_size(length)
        return self._read_exactly(length)

    def _read_exactly(self, length: int) -> bytes:
        """Read the body, acknowledging each piece at once (TCP_QUICKACK where the OS has it).

        A client that sends a large body in pieces without TCP_NODELAY (tritonclient's gevent
        client does) otherwise waits for the delayed ACK (~40 ms) on every request.
        """
        quickack = getattr(socket, "TCP_QUICKACK", None)
        parts, left = [], length
        while left:
            if quickack is not None:
                self.connection.setsockopt(socket.IPPROTO_TCP, quickack, 1)
            chunk = self.rfile.read1(left)
            if not chunk:
                self.close_connection = True
                raise InferenceError(400, f"the body ended after {length - left} of {length} bytes")
            parts.append(chunk)
            left -= len(chunk)
        return b"".join(parts)

    def _decompress(self, body: bytes) -> bytes:
        """Undo ``Content-Encoding: gzip`` / ``deflate`` (tritonclient's request compression), within the size limit."""
        encoding = self.headers.get("Content-Encoding", "identity").strip().lower()
        if encoding in ("", "identity"):
            return body
        if encoding not in ("gzip", "deflate"):
            raise InferenceError(400, f"Content-Encoding {encoding!r} is not supported (gzip, deflate, identity)")
        limit = self.service.max_request_bytes
        inflater = zlib.decompressobj(wbits=31 if encoding == "gzip" else 15)
        try:
            out = inflater.decompress(body, limit + 1)
        except zlib.error as err:
            raise InferenceError(400, f"the {encoding} body does not decompress: {err}") from None
        self.service.check_request_size(len(out))  # a decompression bomb stops at limit + 1 bytes
        if not inflater.eof:
            raise InferenceError(400, f"the {encoding} body is truncated")
        return out

    def do_POST(self) -> None:  # noqa: N802 - the http.server name
        """``/v2/models/{name}[/versions/{v}]/infer``."""
        try:
            body = self._read_body()
            body = self._decompress(body)
            name, version, action = self._route()
            if action != "infer":
                raise InferenceError(404, f"no endpoint POST {urlsplit(self.path).path}")
            self.service.model_metadata(name, version)  # 404 before parsing the body
            request, binary = _parse_request(body, self.headers.get(_HEADER_LENGTH))
            inputs = _decode_inputs(request, binary)
            wanted, binary_of = _requested_outputs(request)
            results = self.service.infer(name, inputs, wanted, version)
            payload, header_len = _encode_response(self.service, request, results, binary_of, version)
            headers = {} if header_len is None else {_HEADER_LENGTH: str(header_len)}
            if header_len is not None:
                headers["Content-Type"] = "application/octet-stream"
            self._send(200, payload, headers)
        except InferenceError as err:
            self._error(err)
        except Exception as err:  # never take the server down
            self._error(InferenceError(500, f"internal error: {type(err).__name__}: {err}"))


def serve_rest(
    model_or_service: Any,
    host: str = "127.0.0.1",
    port: int = 0,
    background: bool = False,
    **service_options: Any,
) -> ServerHandle | None:
    """Serve a model (or an :class:`InferenceService`) over OIP v2 REST on ``host:port`` (0: a free port).

    ``service_options`` (``name``, ``version``, ``max_batch_size``, ``max_request_bytes``) go to
    :class:`InferenceService` when a model is given. With ``background=True`` the server runs in
    a daemon thread and a :class:`ServerHandle` (``.url``, ``.port``, ``.stop()``) comes back;
    otherwise this call serves until interrupted (Ctrl-C) and returns ``None``.

    Example:
        >>> import urllib.request
        >>> from axiom.nn import Dense
        >>> handle = serve_rest(Dense(2, 1), background=True)
        >>> urllib.request.urlopen(handle.url + "/v2/health/ready").status
        200
        >>> handle.stop()
    """
    service = as_service(model_or_service, "serve_rest", **service_options)
    handler = type("AxiomRestHandler", (_Handler,), {"service": service})
    server = ThreadingHTTPServer((host, port), handler)
    server.daemon_threads = True
    bound_host, bound_port = server.server_address[:2]
    url = f"http://{bound_host}:{bound_port}"

    def stop() -> None:
        server.shutdown()
        server.server_close()

    if background:
        thread = threading.Thread(
            target=server.serve_forever, args=(0.05,), name=f"axiom-rest-{bound_port}", daemon=True
        )
        thread.start()
        return ServerHandle(url, bound_port, stop, thread=thread)
    try:
        server.serve_forever()
    except KeyboardInterrupt:
        pass
    finally:
        server.server_close()
    return None
