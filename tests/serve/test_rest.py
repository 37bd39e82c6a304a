"""OIP v2 REST: real tritonclient.http clients (binary and JSON), every bad input, concurrency, the CLI."""

from __future__ import annotations

import gc
import http.client
import json
import os
import subprocess
import sys
import time
import urllib.request
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import numpy as np
import pytest
import tritonclient.http as httpclient
from tritonclient.utils import InferenceServerException

from axiom.nn import Dense, Sequential
from axiom.nn.init import manual_seed
from axiom.serve import InferenceService, serve_rest

REPO = Path(__file__).resolve().parents[2]


def _model() -> Sequential:
    manual_seed(0)
    return Sequential(Dense(4, 8, "relu"), Dense(8, 3))


@pytest.fixture(autouse=True)
def _collect_clients_here():
    """Collect dead tritonclient clients on this thread: their __del__ fails on a server thread (gevent)."""
    yield
    gc.collect()


@pytest.fixture(scope="module")
def model() -> Sequential:
    return _model()


@pytest.fixture(scope="module")
def server(model):
    handle = serve_rest(model, background=True, name="tiny", max_request_bytes=4096)
    yield handle
    handle.stop()


@pytest.fixture()
def client(server):
    c = httpclient.InferenceServerClient(server.url.removeprefix("http://"))
    yield c
    c.close()


def _infer(client, x: np.ndarray, binary: bool = True) -> np.ndarray:
    inp = httpclient.InferInput("input", list(x.shape), "FP32")
    inp.set_data_from_numpy(x, binary_data=binary)
    out = httpclient.InferRequestedOutput("output", binary_data=binary)
    return client.infer("tiny", [inp], outputs=[out]).as_numpy("output")


def _post(server, path: str, body: bytes, headers: dict | None = None) -> tuple[int, dict]:
    conn = http.client.HTTPConnection("127.0.0.1", server.port, timeout=10)
    try:
        conn.request("POST", path, body=body, headers=headers or {})
        resp = conn.getresponse()
        return resp.status, json.loads(resp.read())
    finally:
        conn.close()


def _good(model, server, client) -> None:
    x = np.arange(8, dtype=np.float32).reshape(2, 4) / 8
    np.testing.assert_allclose(_infer(client, x), np.asarray(model(x)), rtol=1e-6)


def test_health_and_metadata(server, client):
    assert client.is_server_live() and client.is_server_ready()
    assert client.is_model_ready("tiny") and client.is_model_ready("tiny", "1")
    assert not client.is_model_ready("other")
    assert not client.is_model_ready("tiny", "7")
    meta = client.get_server_metadata()
    assert meta["name"] == "axiom" and "binary_tensor_data" in meta["extensions"]
    mm = client.get_model_metadata("tiny")
    assert mm["inputs"] == [{"name": "input", "datatype": "FP32", "shape": [-1, 4]}]
    assert mm["outputs"] == [{"name": "output", "datatype": "FP32", "shape": [-1, 3]}]
    assert client.get_model_metadata("tiny", "1")["versions"] == ["1"]
    with urllib.request.urlopen(server.url + "/v2") as reply:
        assert json.loads(reply.read())["name"] == "axiom"


@pytest.mark.parametrize("binary", [True, False])
def test_infer_matches_model(model, client, binary):
    x = np.random.default_rng(1).normal(size=(5, 4)).astype(np.float32)
    got = _infer(client, x, binary)
    assert got.dtype == np.float32 and got.shape == (5, 3)
    np.testing.assert_allclose(got, np.asarray(model(x)), rtol=1e-6, atol=1e-7)


def test_default_outputs_come_back_binary(model, server, client):
    x = np.ones((1, 4), np.float32)
    inp = httpclient.InferInput("input", [1, 4], "FP32")
    inp.set_data_from_numpy(x)
    result = client.infer("tiny", [inp], model_version="1")  # no outputs: binary_data_output
    np.testing.assert_allclose(result.as_numpy("output"), np.asarray(model(x)), rtol=1e-6)
    body = json.dumps({"inputs": [{"name": "input", "datatype": "FP32", "shape": [1, 4], "data": [[1, 1, 1, 1]]}]})
    status, reply = _post(server, "/v2/models/tiny/versions/1/infer", body.encode())
    assert status == 200 and reply["outputs"][0]["shape"] == [1, 3]
    np.testing.assert_allclose(reply["outputs"][0]["data"], np.asarray(model(x)).ravel(), rtol=1e-6)


def _triton_error(client, x: np.ndarray, datatype: str, model_name: str = "tiny", binary: bool = True) -> str:
    inp = httpclient.InferInput("input", list(x.shape), datatype)
    inp.set_data_from_numpy(x, binary_data=binary)
    with pytest.raises(InferenceServerException) as info:
        client.infer(model_name, [inp])
    return str(info.value)


_BAD = [
    (np.zeros((2, 5), np.float32), "FP32", "tiny", "shape [2, 5] does not match [-1, 4]"),
    (np.zeros((2, 4), np.float64), "FP64", "tiny", "datatype FP64 does not match the model's FP32"),
    (np.zeros((2, 4), np.float32), "FP32", "nope", "unknown model 'nope'"),
]
_NON_FINITE = [  # binary only: tritonclient cannot put NaN/inf in JSON (the raw NaN test covers JSON)
    (np.array([[0, np.nan, 0, 0]], np.float32), "FP32", "tiny", "NaN or infinite"),
    (np.array([[0, 0, np.inf, 0]], np.float32), "FP32", "tiny", "NaN or infinite"),
]


@pytest.mark.parametrize(
    ("x", "datatype", "name", "expected", "binary"),
    [(*case, True) for case in _BAD + _NON_FINITE] + [(*case, False) for case in _BAD],
)
def test_bad_input_via_tritonclient(model, server, client, x, datatype, name, expected, binary):
    assert expected in _triton_error(client, x, datatype, name, binary)
    _good(model, server, client)


INPUT = {"name": "input", "datatype": "FP32", "shape": [1, 4], "data": [1, 2, 3, 4]}


@pytest.mark.parametrize(
    ("path", "body", "status", "expected"),
    [
        ("/v2/models/tiny/infer", b"{not json", 400, "malformed JSON"),
        ("/v2/models/tiny/infer", b"[1, 2]", 400, "JSON object"),
        ("/v2/models/tiny/infer", b"{}", 400, "'inputs'"),
        ("/v2/models/tiny/infer", json.dumps({"inputs": [{**INPUT, "name": "x"}]}).encode(), 400, "unknown input 'x'"),
        ("/v2/models/tiny/infer", json.dumps({"inputs": [{**INPUT, "datatype": "INT64"}]}).encode(), 400, "INT64"),
        ("/v2/models/tiny/infer", json.dumps({"inputs": [{**INPUT, "datatype": "STR"}]}).encode(), 400, "STR"),
        ("/v2/models/tiny/infer", json.dumps({"inputs": [{**INPUT, "shape": [1, 5]}]}).encode(), 400, "[1, 5]"),
        ("/v2/models/tiny/infer", json.dumps({"inputs": [{**INPUT, "shape": [2, 4]}]}).encode(), 400, "do not fill"),
        ("/v2/models/tiny/infer", json.dumps({"inputs": [{**INPUT, "data": ["a"] * 4}]}).encode(), 400, "not a FP32"),
        ("/v2/models/tiny/infer", json.dumps({"inputs": [{**INPUT, "data": [[1, 2], [3]]}]}).encode(), 400, "data"),
        (
            "/v2/models/tiny/infer",
            b'{"inputs": [{"name": "input", "datatype": "FP32", "shape": [1, 4], "data": [1, NaN, 3, 4]}]}',
            400,
            "NaN or infinite",
        ),  # fmt: skip
        ("/v2/models/tiny/infer", json.dumps({"inputs": [INPUT], "outputs": [{"name": "y"}]}).encode(), 400, "'y'"),
        ("/v2/models/other/infer", json.dumps({"inputs": [INPUT]}).encode(), 404, "unknown model 'other'"),
        ("/v2/models/tiny/versions/9/infer", json.dumps({"inputs": [INPUT]}).encode(), 404, "unknown version '9'"),
        ("/v2/models/tiny/explode", b"{}", 404, "no endpoint"),
        ("/v2/models/tiny/infer", b"x" * 5000, 413, "exceeds the limit of 4096 bytes"),
    ],
)
def test_bad_request_gets_4xx_json(model, server, client, path, body, status, expected):
    got_status, reply = _post(server, path, body)
    assert got_status == status
    assert expected in reply["error"]
    _good(model, server, client)


def test_bad_binary_framing(model, server, client):
    head = json.dumps({"inputs": [{**INPUT, "parameters": {"binary_data_size": 16}}]}).encode()
    del_data = json.loads(head)
    del del_data["inputs"][0]["data"]
    head = json.dumps(del_data).encode()
    raw = np.ones(4, np.float32).tobytes()
    hdr = "Inference-Header-Content-Length"
    cases = [
        (head + raw[:8], {hdr: str(len(head))}, "exceeds the 8 bytes left"),
        (head + raw + b"xx", {hdr: str(len(head))}, "not claimed"),
        (head + raw, {hdr: "abc"}, "not an integer"),
        (head + raw, {hdr: str(len(head) + 999)}, "outside the body"),
    ]
    for body, headers, expected in cases:
        status, reply = _post(server, "/v2/models/tiny/infer", body, headers)
        assert status == 400 and expected in reply["error"], reply
        _good(model, server, client)
    status, reply = _post(server, "/v2/models/tiny/infer", head + raw, {hdr: str(len(head))})
    assert status == 200 and reply["outputs"][0]["shape"] == [1, 3]


@pytest.mark.filterwarnings("ignore:overflow encountered")
def test_non_finite_model_output_is_refused():
    manual_seed(0)
    blowup = Sequential(Dense(2, 1))
    blowup.load_state_dict({k: np.full(v.shape, 3e38, np.float32) for k, v in blowup.state_dict().items()})
    with serve_rest(blowup, background=True, name="b") as handle:
        body = json.dumps({"inputs": [{"name": "input", "datatype": "FP32", "shape": [1, 2], "data": [10, 10]}]})
        status, reply = _post(handle, "/v2/models/b/infer", body.encode())
        assert status == 422 and "model output 'output' is not finite" in reply["error"]
        body = json.dumps({"inputs": [{"name": "input", "datatype": "FP32", "shape": [1, 2], "data": [0, 0]}]})
        status, reply = _post(handle, "/v2/models/b/infer", body.encode())
        assert status == 200


def test_concurrent_clients(model, server):
    rng = np.random.default_rng(2)
    xs = [rng.normal(size=(1 + i % 3, 4)).astype(np.float32) for i in range(8)]
    want = [np.asarray(model(x)) for x in xs]

    def worker(i: int) -> int:
        # plain keep-alive HTTP/1.1 connections: tritonclient's gevent pool belongs to one thread
        conn = http.client.HTTPConnection("127.0.0.1", server.port, timeout=30)
        head = {"name": "input", "datatype": "FP32", "shape": list(xs[i].shape)}
        ok = 0
        try:
            for k in range(200):
                if (i + k) % 2:
                    body = json.dumps({"inputs": [{**head, "data": xs[i].ravel().tolist()}]}).encode()
                    conn.request("POST", "/v2/models/tiny/infer", body=body)
                    reply = json.loads(conn.getresponse().read())
                    got = np.array(reply["outputs"][0]["data"], np.float32).reshape(reply["outputs"][0]["shape"])
                else:
                    raw = xs[i].tobytes()
                    meta = {"inputs": [{**head, "parameters": {"binary_data_size": len(raw)}}],
                            "parameters": {"binary_data_output": True}}  # fmt: skip
                    js = json.dumps(meta).encode()
                    hdr = {"Inference-Header-Content-Length": str(len(js))}
                    conn.request("POST", "/v2/models/tiny/infer", body=js + raw, headers=hdr)
                    resp = conn.getresponse()
                    data = resp.read()
                    n = int(resp.getheader("Inference-Header-Content-Length"))
                    got = np.frombuffer(data[n:], np.float32).reshape(json.loads(data[:n])["outputs"][0]["shape"])
                np.testing.assert_allclose(got, want[i], rtol=1e-6, atol=1e-7)
                ok += 1
        finally:
            conn.close()
        return ok

    with ThreadPoolExecutor(8) as pool:
        assert list(pool.map(worker, range(8))) == [200] * 8


def test_service_object_is_served_as_is(model):
    service = InferenceService(model, name="svc", version="3")
    with serve_rest(service, background=True) as handle:
        c = httpclient.InferenceServerClient(handle.url.removeprefix("http://"))
        try:
            assert c.get_model_metadata("svc")["versions"] == ["3"]
        finally:
            c.close()
    assert handle.stopped


def test_cli_serve_smoke(tmp_path):
    from axiom.io import to_onnx

    model = _model()
    path = tmp_path / "tiny.onnx"
    to_onnx(model, path, input_shape=(None, 4))
    env = {**os.environ, "PYTHONPATH": str(REPO)}
    proc = subprocess.Popen(
        [sys.executable, "-m", "axiom", "serve", str(path), "--rest", "0", "--name", "tiny"],
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        env=env,
    )
    try:
        line = proc.stdout.readline().decode()  # "axiom serve: rest http://127.0.0.1:PORT model 'tiny' version 1"
        assert line.startswith("axiom serve: rest http://127.0.0.1:"), line + proc.stdout.read().decode()
        c = httpclient.InferenceServerClient(line.split()[3].removeprefix("http://"))
        deadline = time.monotonic() + 20
        while True:
            try:
                if c.is_server_ready():
                    break
            except Exception:
                pass
            assert proc.poll() is None, proc.stdout.read().decode()
            assert time.monotonic() < deadline, "axiom serve did not come up"
            time.sleep(0.1)
        x = np.linspace(-1, 1, 8, dtype=np.float32).reshape(2, 4)
        np.testing.assert_allclose(_infer(c, x), np.asarray(model(x)), rtol=1e-5, atol=1e-6)
        c.close()
        proc.terminate()  # SIGTERM: the servers stop and the command exits 0
        assert proc.wait(timeout=10) == 0
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait(timeout=10)


def test_serves_a_model_package_and_refuses_a_tampered_one(model, tmp_path):
    from axiom.registry import create_metadata, export_model_package
    from axiom.registry.package import PackageError

    pkg = tmp_path / "pkg"
    export_model_package(model, create_metadata(model, name="pkgmodel", architecture="mlp", version="1.2.0"), pkg)
    with serve_rest(str(pkg), background=True) as handle:
        c = httpclient.InferenceServerClient(handle.url.removeprefix("http://"))
        try:
            assert c.get_model_metadata("pkgmodel")["versions"] == ["1.2.0"]
            x = np.linspace(-1, 1, 12, dtype=np.float32).reshape(3, 4)
            inp = httpclient.InferInput("input", [3, 4], "FP32")
            inp.set_data_from_numpy(x)
            got = c.infer("pkgmodel", [inp], model_version="1.2.0").as_numpy("output")
            np.testing.assert_allclose(got, np.asarray(model(x)), rtol=1e-6, atol=1e-7)
        finally:
            c.close()
    weights = next(p for p in pkg.iterdir() if p.suffix == ".safetensors")
    weights.write_bytes(weights.read_bytes()[:-4] + b"\0\0\0\0")
    with pytest.raises(PackageError, match="model.safetensors: SHA-256 .* differs from the manifest"):
        InferenceService(str(pkg))


@pytest.mark.parametrize("algorithm", ["gzip", "deflate"])
def test_compressed_requests(model, client, algorithm):
    x = np.random.default_rng(3).normal(size=(4, 4)).astype(np.float32)
    inp = httpclient.InferInput("input", [4, 4], "FP32")
    inp.set_data_from_numpy(x)
    result = client.infer("tiny", [inp], request_compression_algorithm=algorithm)
    np.testing.assert_allclose(result.as_numpy("output"), np.asarray(model(x)), rtol=1e-6, atol=1e-7)


def test_bad_compressed_bodies(model, server, client):
    import gzip

    cases = [
        (b"abc", "br", 400, "Content-Encoding 'br' is not supported"),
        (b"not gzip at all", "gzip", 400, "does not decompress"),
        (gzip.compress(b"{" * 100)[:-8], "gzip", 400, "truncated"),
        (gzip.compress(b" " * 100_000), "gzip", 413, "exceeds the limit of 4096 bytes"),  # a small bomb
    ]
    for body, encoding, status, expected in cases:
        got, reply = _post(server, "/v2/models/tiny/infer", body, {"Content-Encoding": encoding})
        assert got == status and expected in reply["error"], reply
        _good(model, server, client)


def test_cli_serve_refusals(tmp_path, capsys):
    from axiom.cli import main
    from axiom.nn.state import save_safetensors

    weights = tmp_path / "w.safetensors"
    save_safetensors(_model().state_dict(), weights)
    assert main(["serve", str(weights)]) == 2  # no server asked for
    assert "at least one of --rest" in capsys.readouterr().err
    assert main(["serve", str(weights), "--rest", "0"]) == 1
    assert "give --architecture" in capsys.readouterr().err
    assert main(["serve", str(weights), "--rest", "0", "--architecture", "mlp_784"]) == 1  # wrong shapes
    assert "cannot load" in capsys.readouterr().err
    assert main(["serve", str(tmp_path / "model.bin"), "--rest", "0"]) == 1
    assert "expected a model package directory" in capsys.readouterr().err
