"""GraphQL over HTTP with a plain client (urllib): queries, the infer mutation, variables, errors, concurrency."""

from __future__ import annotations

import http.client
import json
import urllib.error
import urllib.request
from concurrent.futures import ThreadPoolExecutor

import numpy as np
import pytest

from axiom.nn import Dense, Sequential
from axiom.nn.init import manual_seed
from axiom.serve import InferenceService, serve_graphql

LIMIT = 64 * 1024

INFER = """
mutation Infer($x: JSON!, $shape: [Int!]!, $datatype: String! = "FP32", $name: String! = "tiny", $version: String) {
  infer(name: $name, version: $version, id: "m1",
        inputs: [{name: "input", datatype: $datatype, shape: $shape, data: $x}], outputs: ["output"]) {
    modelName modelVersion id
    outputs { name datatype shape data }
  }
}
"""


@pytest.fixture(scope="module")
def model() -> Sequential:
    manual_seed(0)
    return Sequential(Dense(4, 8, "relu"), Dense(8, 3))


@pytest.fixture(scope="module")
def server(model):
    handle = serve_graphql(model, background=True, name="tiny", version="2", max_request_bytes=LIMIT)
    yield handle
    handle.stop()


def _post(server, payload, *, raw: bytes | None = None) -> tuple[int, dict]:
    body = raw if raw is not None else json.dumps(payload).encode()
    request = urllib.request.Request(server.url, body, {"Content-Type": "application/json"})
    try:
        with urllib.request.urlopen(request, timeout=10) as reply:
            return reply.status, json.loads(reply.read())
    except urllib.error.HTTPError as err:
        with err:
            return err.code, json.loads(err.read())


def _x(batch: int, seed: int = 0) -> np.ndarray:
    return np.random.default_rng(seed).standard_normal((batch, 4)).astype(np.float32)


def _infer(server, x, **variables) -> tuple[int, dict]:
    data = x.tolist() if isinstance(x, np.ndarray) else x
    shape = list(np.shape(x)) if isinstance(x, np.ndarray) else variables.pop("shape")
    return _post(server, {"query": INFER, "variables": {"x": data, "shape": shape, **variables}})


def _check_good(server, model, seed: int = 1) -> None:
    x = _x(2, seed)
    status, reply = _infer(server, x)
    assert status == 200 and "errors" not in reply, reply
    out = reply["data"]["infer"]["outputs"][0]
    y = np.asarray(out["data"], np.float32).reshape(out["shape"])
    np.testing.assert_allclose(y, np.asarray(model(x)), rtol=1e-6, atol=1e-6)


def test_health_and_metadata_queries(server):
    query = """{ serverLive serverReady modelReady(name: "tiny", version: "2")
                 serverMetadata { name extensions }
                 modelMetadata(name: "tiny") { name versions platform inputs { name datatype shape }
                                               outputs { name datatype shape } } }"""
    status, reply = _post(server, {"query": query})
    assert status == 200 and "errors" not in reply
    data = reply["data"]
    assert data["serverLive"] is True and data["serverReady"] is True and data["modelReady"] is True
    assert data["serverMetadata"] == {"name": "axiom", "extensions": ["binary_tensor_data"]}
    assert data["modelMetadata"] == {
        "name": "tiny",
        "versions": ["2"],
        "platform": "axiom",
        "inputs": [{"name": "input", "datatype": "FP32", "shape": [-1, 4]}],
        "outputs": [{"name": "output", "datatype": "FP32", "shape": [-1, 3]}],
    }


def test_model_metadata_with_variables_and_operation_name(server):
    query = """query A { serverLive }
               query B($name: String!) { modelReady(name: $name) modelMetadata(name: $name) { platform } }"""
    status, reply = _post(server, {"query": query, "variables": {"name": "tiny"}, "operationName": "B"})
    assert status == 200 and reply["data"] == {"modelReady": True, "modelMetadata": {"platform": "axiom"}}


@pytest.mark.parametrize("batch", [1, 7])
def test_infer_mutation_matches_model(server, model, batch):
    x = _x(batch, seed=batch)
    status, reply = _infer(server, x, version="2")
    assert status == 200 and "errors" not in reply
    infer = reply["data"]["infer"]
    assert (infer["modelName"], infer["modelVersion"], infer["id"]) == ("tiny", "2", "m1")
    out = infer["outputs"][0]
    assert (out["name"], out["datatype"], out["shape"]) == ("output", "FP32", [batch, 3])
    y = np.asarray(out["data"], np.float32).reshape(out["shape"])
    np.testing.assert_allclose(y, np.asarray(model(x)), rtol=1e-6, atol=1e-6)


def test_infer_as_query_with_inline_flat_data(server, model):
    x = _x(1, seed=4)
    values = ", ".join(repr(float(v)) for v in x.ravel())
    query = f"""{{ infer(name: "tiny", inputs: [{{name: "input", datatype: "FP32", shape: [1, 4], data: [{values}]}}])
                   {{ outputs {{ shape data }} }} }}"""
    status, reply = _post(server, {"query": query})
    assert status == 200, reply
    y = np.asarray(reply["data"]["infer"]["outputs"][0]["data"], np.float32)
    np.testing.assert_allclose(y, np.asarray(model(x)).ravel(), rtol=1e-6, atol=1e-6)


def test_concurrent_clients(server, model):
    def worker(seed: int) -> int:
        for i in range(15):
            x = _x(1 + i % 3, seed=seed * 100 + i)
            status, reply = _infer(server, x)
            assert status == 200, reply
            out = reply["data"]["infer"]["outputs"][0]
            np.testing.assert_allclose(
                np.asarray(out["data"], np.float32).reshape(out["shape"]), np.asarray(model(x)), rtol=1e-6, atol=1e-6
            )
        return seed

    with ThreadPoolExecutor(8) as pool:
        assert sorted(pool.map(worker, range(8))) == list(range(8))


# -- errors: {"errors": [{"message": ...}]}, a 4xx status, and the next good request succeeds ----------

NAN = float("nan")

INFER_ERRORS = {
    "wrong shape": ({"x": [[0.0] * 5], "shape": [1, 5]}, 400, "shape [1, 5] does not match"),
    "wrong dtype": ({"x": [[0.0] * 4], "shape": [1, 4], "datatype": "FP64"}, 400, "datatype FP64"),
    "unknown datatype": ({"x": [[0.0] * 4], "shape": [1, 4], "datatype": "FP8"}, 400, "unsupported datatype 'FP8'"),
    "strings as data": ({"x": [["a"] * 4], "shape": [1, 4]}, 400, "data is not a FP32 tensor"),
    "ragged data": ({"x": [[0.0] * 4, [0.0]], "shape": [2, 4]}, 400, "input 'input'"),
    "too few values": ({"x": [0.0] * 3, "shape": [1, 4]}, 400, "do not fill shape"),
    "NaN input": ({"x": [[0.0, NAN, 0.0, 0.0]], "shape": [1, 4]}, 400, "NaN or infinite"),
    "unknown model": ({"x": [[0.0] * 4], "shape": [1, 4], "name": "nope"}, 404, "unknown model 'nope'"),
    "unknown version": ({"x": [[0.0] * 4], "shape": [1, 4], "version": "9"}, 404, "unknown version '9'"),
}


@pytest.mark.parametrize("case", list(INFER_ERRORS))
def test_infer_errors_then_good_request(server, model, case):
    variables, code, needle = INFER_ERRORS[case]
    status, reply = _infer(server, variables.pop("x"), **variables)
    assert status == code, reply
    assert reply["data"] is None
    assert any(needle in e["message"] for e in reply["errors"]), reply
    assert reply["errors"][0]["extensions"]["status"] == code
    _check_good(server, model)


MALFORMED = {
    "not JSON": (b"{query: ", "request body is not JSON"),
    "no query": (json.dumps({"variables": {}}).encode(), 'a "query" string'),
    "variables not an object": (json.dumps({"query": "{ serverLive }", "variables": [1]}).encode(), '"variables"'),
    "syntax error": (json.dumps({"query": "{ serverLive "}).encode(), "Syntax Error"),
    "unknown field": (json.dumps({"query": "{ serverLiveness }"}).encode(), "serverLiveness"),
    "missing argument": (json.dumps({"query": "{ modelMetadata { name } }"}).encode(), "name"),
    "missing variable": (json.dumps({"query": INFER}).encode(), "$x"),
    "unknown operation": (json.dumps({"query": "query A { serverLive }", "operationName": "B"}).encode(), "'B'"),
}


@pytest.mark.parametrize("case", list(MALFORMED))
def test_malformed_requests_are_400_then_good_request(server, model, case):
    body, needle = MALFORMED[case]
    status, reply = _post(server, None, raw=body)
    assert status == 400, reply
    assert set(reply) == {"errors"} and any(needle in e["message"] for e in reply["errors"]), reply
    _check_good(server, model)


def test_oversized_body_is_413_then_good_request(server, model):
    status, reply = _infer(server, np.zeros((LIMIT // 16, 4), np.float32))
    assert status == 413 and "exceeds the limit" in reply["errors"][0]["message"]
    _check_good(server, model)


def test_wrong_path_and_method(server, model):
    conn = http.client.HTTPConnection("127.0.0.1", server.port, timeout=10)
    try:
        conn.request("GET", "/graphql")
        reply = conn.getresponse()
        assert reply.status == 405 and "POST /graphql" in json.loads(reply.read())["errors"][0]["message"]
        conn.request("POST", "/v2/models", body=b"{}", headers={"Content-Type": "application/json"})
        reply = conn.getresponse()
        assert reply.status == 404 and "no such path" in json.loads(reply.read())["errors"][0]["message"]
    finally:
        conn.close()
    _check_good(server, model)


def test_non_finite_model_output_is_refused():
    model = Dense(2, 1)
    model.load_state_dict({"weight": np.full((2, 1), np.nan, np.float32), "bias": np.zeros(1, np.float32)})
    with serve_graphql(InferenceService(model, name="broken"), background=True) as server:
        status, reply = _infer(server, np.ones((1, 2), np.float32), name="broken")
        assert status == 422 and "model output 'output' is not finite" in reply["errors"][0]["message"]
        assert _post(server, {"query": "{ serverReady }"}) == (200, {"data": {"serverReady": True}})


def test_serves_a_model_package(tmp_path, model):
    """A package directory (axiom.registry) is served under its name and SemVer version."""
    from axiom.registry import create_metadata, export_model_package

    meta = create_metadata(model, name="tiny-pkg", architecture="mlp", version="1.2.3")
    export_model_package(model, meta, tmp_path / "pkg")
    with serve_graphql(tmp_path / "pkg", background=True) as server:
        status, reply = _post(server, {"query": '{ modelMetadata(name: "tiny-pkg") { versions } }'})
        assert status == 200 and reply["data"]["modelMetadata"]["versions"] == ["1.2.3"]
        x = _x(2, seed=8)
        status, reply = _infer(server, x, name="tiny-pkg", version="1.2.3")
        assert status == 200, reply
        out = reply["data"]["infer"]["outputs"][0]
        np.testing.assert_allclose(
            np.asarray(out["data"], np.float32).reshape(out["shape"]), np.asarray(model(x)), rtol=1e-6, atol=1e-6
        )
