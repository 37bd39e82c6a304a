"""``serve_graphql``: ``POST /graphql`` over an :class:`InferenceService`, with the Open Inference Protocol names.

The schema (:data:`SCHEMA`, executed by ``graphql-core``) mirrors OIP v2: ``serverLive``,
``serverReady``, ``modelReady(name, version)``, ``serverMetadata``, ``modelMetadata(name,
version) {name versions platform inputs {name datatype shape} outputs {...}}`` and
``infer(name, version, id, inputs: [{name, datatype, shape, data}], outputs: [String])
{modelName modelVersion id outputs {name datatype shape data}}``, the latter both as a query and
as a mutation. ``data`` is JSON: a flat (row-major) or nested list of numbers; outputs come
back flat. Variables go in the request's ``"variables"`` field, as usual.

The server is a ``ThreadingHTTPServer``. A request body is JSON ``{"query": ...,
"variables": {...}, "operationName": ...}``. Errors are ``{"errors": [{"message": ...}]}``:
HTTP 400 for a malformed request (body not JSON, no query, a GraphQL syntax or validation
error), the service's status for a refused inference (400 bad input, 404 unknown model or
version, 413 too large, 422 a non-finite model output; ``extensions.code`` holds the OIP /
gRPC name), 413 for a body over ``max_request_bytes``. The server keeps serving.

Example:
    >>> import json, urllib.request
    >>> from axiom.nn import Dense
    >>> with serve_graphql(Dense(2, 1), name="d", background=True) as server:
    ...     body = json.dumps({"query": "{ serverLive modelMetadata(name: \\"d\\") { platform } }"}).encode()
    ...     with urllib.request.urlopen(urllib.request.Request(server.url, body), timeout=10) as reply:
    ...         json.loads(reply.read())
    {'data': {'serverLive': True, 'modelMetadata': {'platform': 'axiom'}}}
"""

from __future__ import annotations

import json
import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

import numpy as np
from graphql import GraphQLError, GraphQLSchema, build_schema, graphql_sync

from axiom.serve._handle import ServerHandle
from axiom.serve.service import InferenceError, InferenceService, as_service

__all__ = ["SCHEMA", "graphql_schema", "serve_graphql"]

#: The GraphQL schema (SDL) that ``serve_graphql`` serves.
SCHEMA = """
scalar JSON

type TensorMetadata { name: String!  datatype: String!  shape: [Int!]! }

type ServerMetadata { name: String!  version: String!  extensions: [String!]! }

type ModelMetadata {
  name: String!
  versions: [String!]!
  platform: String!
  inputs: [TensorMetadata!]!
  outputs: [TensorMetadata!]!
}

type Tensor { name: String!  datatype: String!  shape: [Int!]!  data: JSON! }

type InferResponse { modelName: String!  modelVersion: String!  id: String  outputs: [Tensor!]! }

input InferInput { name: String!  datatype: String!  shape: [Int!]!  data: JSON! }

type Query {
  serverLive: Boolean!
  serverReady: Boolean!
  modelReady(name: String!, version: String): Boolean!
  serverMetadata: ServerMetadata!
  modelMetadata(name: String!, version: String): ModelMetadata!
  infer(name: String!, inputs: [InferInput!]!, outputs: [String!], version: String, id: String): InferResponse!
}

type Mutation {
  infer(name: String!, inputs: [InferInput!]!, outputs: [String!], version: String, id: String): InferResponse!
}
"""


def _infer(service: InferenceService, args: dict[str, Any]) -> dict[str, Any]:
    inputs = [dict(t) for t in args["inputs"]]
    for tensor in inputs:
        tensor["data"] = _array(tensor)
    version = args.get("version") or None
    results = service.infer(args["name"], inputs, outputs=args.get("outputs"), version=version)
    outputs = [
        {
            "name": r["name"],
            "datatype": r["datatype"],
            "shape": r["shape"],
            "data": np.asarray(r["data"]).ravel().tolist(),
        }
        for r in results
    ]
    return {
        "modelName": service.name,
        "modelVersion": version or service.versions[0],
        "id": args.get("id"),
        "outputs": outputs,
    }


def _array(tensor: dict[str, Any]) -> np.ndarray:
    try:
        return np.asarray(tensor["data"])
    except (TypeError, ValueError) as err:
        raise InferenceError(
            400, f"input {tensor.get('name')!r}: data is not a rectangular list of numbers ({err})"
        ) from None


def graphql_schema(service: InferenceService) -> GraphQLSchema:
    """The executable schema (:data:`SCHEMA` with resolvers) over ``service``.

    Example:
        >>> from graphql import graphql_sync
        >>> from axiom.nn import Dense
        >>> schema = graphql_schema(InferenceService(Dense(2, 1), name="d"))
        >>> graphql_sync(schema, "{ serverReady modelReady(name: \\"d\\") }").data
        {'serverReady': True, 'modelReady': True}
    """
    schema = build_schema(SCHEMA)
    query, mutation = schema.query_type, schema.mutation_type
    assert query is not None and mutation is not None
    resolvers = {
        "serverLive": lambda _root, _info: service.live(),
        "serverReady": lambda _root, _info: service.ready(),
        "modelReady": lambda _root, _info, name, version=None: service.ready(name, version or None),
        "serverMetadata": lambda _root, _info: service.server_metadata(),
        "modelMetadata": lambda _root, _info, name, version=None: service.model_metadata(name, version or None),
        "infer": lambda _root, _info, **args: _infer(service, args),
    }
    for name, resolve in resolvers.items():
        query.fields[name].resolve = resolve
    mutation.fields["infer"].resolve = resolvers["infer"]
    return schema


def _error(message: str, **extensions: Any) -> dict[str, Any]:
    error: dict[str, Any] = {"message": message}
    if extensions:
        error["extensions"] = extensions
    return error


def _execute(schema: GraphQLSchema, service: InferenceService, body: bytes) -> tuple[int, dict[str, Any]]:
    """HTTP status and JSON reply for one request body."""
    try:
        request = json.loads(body.decode("utf-8"))
    except (UnicodeDecodeError, ValueError) as err:
        return 400, {"errors": [_error(f"request body is not JSON: {err}")]}
    if not isinstance(request, dict) or not isinstance(request.get("query"), str):
        return 400, {"errors": [_error('request must be a JSON object with a "query" string')]}
    variables = request.get("variables")
    if variables is not None and not isinstance(variables, dict):
        return 400, {"errors": [_error('"variables" must be a JSON object')]}
    operation = request.get("operationName")
    result = graphql_sync(schema, request["query"], variable_values=variables, operation_name=operation)
    if result.errors and result.data is None and not any(e.path for e in result.errors):
        # a syntax, validation or variable error: the request itself is malformed
        return 400, {"errors": [_error(e.message) for e in result.errors]}
    status, errors = 200, []
    for e in result.errors or []:
        original = e.original_error
        if isinstance(original, InferenceError):
            status = max(status, original.status)
            errors.append(_error(original.message, code=original.grpc_code, status=original.status))
        elif isinstance(original, Exception) and not isinstance(original, GraphQLError):
            status = max(status, 500)
            errors.append(_error(f"{type(original).__name__}: {original}", code="INTERNAL", status=500))
        else:
            errors.append(_error(e.message))
    reply: dict[str, Any] = {"data": result.data}
    if errors:
        reply["errors"] = errors
    return status, reply


def _handler_class(service: InferenceService, schema: GraphQLSchema) -> type[BaseHTTPRequestHandler]:
    class Handler(BaseHTTPRequestHandler):
        protocol_version = "HTTP/1.1"
        server_version = "axiom-graphql"

        def log_message(self, format: str, *args: Any) -> None:  # noqa: A002 - the base class's name
            pass  # quiet: the tests and benchmarks make many requests

        def _reply(self, status: int, payload: dict[str, Any]) -> None:
            data = json.dumps(payload).encode("utf-8")
            self.send_response(status)
            self.send_header("Content-Type", "application/json")
            self.send_header("Content-Length", str(len(data)))
            self.end_headers()
            self.wfile.write(data)

        def _discard(self, length: int) -> None:
            """Read and drop a refused body (so the client sees the reply), or close on a huge one."""
            if 0 <= length <= max(4 * service.max_request_bytes, 64 << 20):
                while length > 0:
                    chunk = self.rfile.read(min(length, 1 << 16))
                    if not chunk:
                        break
                    length -= len(chunk)
            self.close_connection = True

        def do_GET(self) -> None:  # noqa: N802 - http.server's name
            if self.path.split("?")[0] != "/graphql":
                self._reply(404, {"errors": [_error(f"no such path {self.path!r} (POST /graphql)")]})
            else:
                self._reply(405, {"errors": [_error("use POST /graphql with a JSON body")]})

        def do_POST(self) -> None:  # noqa: N802 - http.server's name
            try:
                length = int(self.headers.get("Content-Length", ""))
            except ValueError:
                self.close_connection = True
                self._reply(411, {"errors": [_error("a Content-Length header is required")]})
                return
            if length > service.max_request_bytes or length < 0:
                self._discard(length)
                message = f"request of {length} bytes exceeds the limit of {service.max_request_bytes} bytes"
                self._reply(413, {"errors": [_error(message, code="INVALID_ARGUMENT", status=413)]})
                return
            body = self.rfile.read(length)
            if self.path.split("?")[0] != "/graphql":
                self._reply(404, {"errors": [_error(f"no such path {self.path!r} (POST /graphql)")]})
                return
            try:
                status, payload = _execute(schema, service, body)
            except Exception as err:  # never take the server down
                status, payload = 500, {"errors": [_error(f"internal error: {type(err).__name__}: {err}")]}
            self._reply(status, payload)

    return Handler


def serve_graphql(
    model_or_service: Any,
    host: str = "127.0.0.1",
    port: int = 0,
    background: bool = False,
    **service_options: Any,
) -> ServerHandle | None:
    """Serve a model (or an :class:`InferenceService`) at ``POST /graphql``.

    ``port=0`` picks a free port. ``background=True`` returns a :class:`ServerHandle` whose
    ``url`` is ``http://host:port/graphql``; otherwise serves until interrupted.
    ``service_options`` (``name``, ``version``, ``max_batch_size``, ``max_request_bytes``) go
    to :class:`InferenceService` when a model is given.

    Example:
        >>> import json, urllib.request
        >>> from axiom.nn import Dense
        >>> query = '''mutation($x: JSON!) { infer(name: "d", inputs: [{name: "input", datatype: "FP32",
        ...            shape: [1, 2], data: $x}]) { outputs { name shape } } }'''
        >>> with serve_graphql(Dense(2, 1), name="d", background=True) as server:
        ...     body = json.dumps({"query": query, "variables": {"x": [1.0, 2.0]}}).encode()
        ...     with urllib.request.urlopen(urllib.request.Request(server.url, body), timeout=10) as reply:
        ...         json.loads(reply.read())["data"]["infer"]["outputs"]
        [{'name': 'output', 'shape': [1, 1]}]
    """
    service = as_service(model_or_service, "serve_graphql", **service_options)
    httpd = ThreadingHTTPServer((host, port), _handler_class(service, graphql_schema(service)))
    httpd.daemon_threads = True
    bound = httpd.server_address[1]
    url = f"http://{host}:{bound}/graphql"
    if background:
        thread = threading.Thread(target=httpd.serve_forever, name="axiom-graphql", daemon=True)
        thread.start()

        def stop() -> None:
            httpd.shutdown()
            httpd.server_close()

        return ServerHandle(url, bound, stop, thread=thread)
    print(f"axiom: serving {service.name!r} over GraphQL at {url}")  # noqa: T201 - the blocking server says where
    try:
        httpd.serve_forever()
    except KeyboardInterrupt:
        pass
    finally:
        httpd.server_close()
    return None
