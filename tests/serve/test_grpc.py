"""OIP v2 gRPC: a real tritonclient.grpc client, the JSON bridge, every bad input, concurrency, the .proto."""

from __future__ import annotations

import base64
import json
import subprocess
import sys
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import grpc
import numpy as np
import pytest
import tritonclient.grpc as grpcclient
from tritonclient.utils import InferenceServerException

from axiom.nn import Dense, Sequential
from axiom.nn.init import manual_seed
from axiom.serve import InferenceService, generate_grpc_proto, serve_grpc
from axiom.serve import _proto as pb

REPO = Path(__file__).resolve().parents[2]
METHOD = "/inference.GRPCInferenceService/"
LIMIT = 64 * 1024  # max_request_bytes of the test server


def _model() -> Sequential:
    manual_seed(0)
    return Sequential(Dense(4, 8, "relu"), Dense(8, 3))


@pytest.fixture(scope="module")
def model() -> Sequential:
    return _model()


@pytest.fixture(scope="module")
def server(model):
    handle = serve_grpc(model, background=True, name="tiny", version="2", max_request_bytes=LIMIT)
    yield handle
    handle.stop()


@pytest.fixture()
def client(server):
    c = grpcclient.InferenceServerClient(server.url)
    yield c
    c.close()


@pytest.fixture()
def channel(server):
    with grpc.insecure_channel(server.url) as ch:
        yield ch


def _infer(client, x: np.ndarray, datatype: str = "FP32", model: str = "tiny", **kwargs) -> np.ndarray:
    inp = grpcclient.InferInput("input", list(x.shape), datatype)
    inp.set_data_from_numpy(x)
    result = client.infer(model, [inp], outputs=[grpcclient.InferRequestedOutput("output")], **kwargs)
    return result.as_numpy("output")


def _expected(model, x: np.ndarray) -> np.ndarray:
    return np.asarray(model(x))


def _x(batch: int, seed: int = 0) -> np.ndarray:
    return np.random.default_rng(seed).standard_normal((batch, 4)).astype(np.float32)


def _json_stub(channel, method: str):
    return channel.unary_unary(
        METHOD + method, request_serializer=lambda d: json.dumps(d).encode(), response_deserializer=json.loads
    )


def _raw_stub(channel, method: str):
    return channel.unary_unary(METHOD + method, request_serializer=None, response_deserializer=None)


# -- health and metadata -------------------------------------------------------------------


def test_health_and_metadata(client):
    assert client.is_server_live() and client.is_server_ready()
    assert client.is_model_ready("tiny") and client.is_model_ready("tiny", "2")
    assert not client.is_model_ready("tiny", "7")
    meta = client.get_server_metadata(as_json=True)
    assert meta["name"] == "axiom" and "binary_tensor_data" in meta["extensions"]
    model = client.get_model_metadata("tiny", as_json=True)
    assert model["name"] == "tiny" and model["versions"] == ["2"] and model["platform"] == "axiom"
    assert model["inputs"] == [{"name": "input", "datatype": "FP32", "shape": ["-1", "4"]}]  # int64 as JSON strings
    assert model["outputs"] == [{"name": "output", "datatype": "FP32", "shape": ["-1", "3"]}]


# -- inference -------------------------------------------------------------------------------


@pytest.mark.parametrize("batch", [1, 5, 32])
def test_infer_matches_model(client, model, batch):
    x = _x(batch, seed=batch)
    y = _infer(client, x)
    assert y.shape == (batch, 3) and y.dtype == np.float32
    np.testing.assert_allclose(y, _expected(model, x), rtol=1e-6, atol=1e-6)


def test_infer_with_version_and_id(client, model):
    x = _x(2)
    inp = grpcclient.InferInput("input", [2, 4], "FP32")
    inp.set_data_from_numpy(x)
    result = client.infer("tiny", [inp], model_version="2", request_id="req-7")
    response = result.get_response(as_json=True)
    assert response["model_name"] == "tiny" and response["model_version"] == "2" and response["id"] == "req-7"
    np.testing.assert_allclose(result.as_numpy("output"), _expected(model, x), rtol=1e-6, atol=1e-6)


def test_infer_typed_contents_answers_in_contents(channel, model):
    """A request with typed ``contents`` (no raw bytes) gets its outputs in ``contents`` too."""
    x = _x(3)
    request = pb.ModelInferRequest(model_name="tiny")
    tensor = request.inputs.add(name="input", datatype="FP32", shape=[3, 4])
    tensor.contents.fp32_contents.extend(x.ravel().tolist())
    stub = channel.unary_unary(
        METHOD + "ModelInfer",
        request_serializer=lambda m: m.SerializeToString(),
        response_deserializer=pb.ModelInferResponse.FromString,
    )
    response = stub(request, timeout=10)
    assert len(response.raw_output_contents) == 0
    out = response.outputs[0]
    y = np.asarray(out.contents.fp32_contents, np.float32).reshape(list(out.shape))
    np.testing.assert_allclose(y, _expected(model, x), rtol=1e-6, atol=1e-6)


def test_concurrent_clients_get_their_own_answers(server, model):
    def worker(seed: int) -> int:
        c = grpcclient.InferenceServerClient(server.url)
        try:
            for i in range(25):
                x = _x(1 + (seed + i) % 4, seed=seed * 100 + i)
                np.testing.assert_allclose(_infer(c, x), _expected(model, x), rtol=1e-6, atol=1e-6)
        finally:
            c.close()
        return seed

    with ThreadPoolExecutor(8) as pool:
        assert sorted(pool.map(worker, range(8))) == list(range(8))


# -- bad input: INVALID_ARGUMENT / NOT_FOUND, and the server keeps serving ---------------------


def _tritonclient_cases():
    x = _x(2)
    nan = x.copy()
    nan[1, 2] = np.nan
    return {
        "wrong shape": (np.zeros((2, 5), np.float32), "FP32", "tiny", {}, "INVALID_ARGUMENT", "shape [2, 5]"),
        "wrong dtype": (x.astype(np.float64), "FP64", "tiny", {}, "INVALID_ARGUMENT", "datatype FP64"),
        "int dtype": (np.ones((2, 4), np.int64), "INT64", "tiny", {}, "INVALID_ARGUMENT", "datatype INT64"),
        "unknown model": (x, "FP32", "nope", {}, "NOT_FOUND", "unknown model 'nope'"),
        "unknown version": (x, "FP32", "tiny", {"model_version": "9"}, "NOT_FOUND", "unknown version '9'"),
        "NaN input": (nan, "FP32", "tiny", {}, "INVALID_ARGUMENT", "NaN"),
        "oversized": (np.zeros((LIMIT // 16 + 1, 4), np.float32), "FP32", "tiny", {}, "INVALID_ARGUMENT", "exceeds"),
    }


@pytest.mark.parametrize("case", list(_tritonclient_cases()))
def test_bad_input_then_good_request(client, model, case):
    x, datatype, name, kwargs, code, needle = _tritonclient_cases()[case]
    with pytest.raises(InferenceServerException) as err:
        _infer(client, x, datatype, name, **kwargs)
    assert err.value.status() == f"StatusCode.{code}"
    assert needle in err.value.message()
    good = _x(3, seed=11)
    np.testing.assert_allclose(_infer(client, good), _expected(model, good), rtol=1e-6, atol=1e-6)


def _raw_request(**fields) -> bytes:
    request = pb.ModelInferRequest(model_name="tiny")
    inp = request.inputs.add(name=fields.get("name", "input"), datatype="FP32", shape=fields.get("shape", [1, 4]))
    if "contents" in fields:
        inp.contents.fp32_contents.extend(fields["contents"])
    for raw in fields.get("raw", [np.zeros(4, "<f4").tobytes()]):
        request.raw_input_contents.append(raw)
    for out in fields.get("outputs", []):
        request.outputs.add(name=out)
    return request.SerializeToString()


RAW_CASES = {
    "malformed protobuf": (b"\x0a\xff\xff\xff", "malformed ModelInfer request (protobuf)"),
    "raw bytes not whole values": (_raw_request(raw=[b"\x00" * 7]), "not a whole number of FP32 values"),
    "too few values": (_raw_request(raw=[b"\x00" * 8]), "do not fill shape"),
    "raw count mismatch": (_raw_request(raw=[b"\x00" * 16, b"\x00" * 16]), "2 raw_input_contents for 1 input"),
    "both contents and raw": (_raw_request(contents=[0.0] * 4), "both contents and raw_input_contents"),
    "unknown input name": (_raw_request(name="pixels"), "unknown input 'pixels'"),
    "unknown output name": (_raw_request(outputs=["logits"]), "unknown output 'logits'"),
    "oversized message": (_raw_request(raw=[b"\x00" * (2 << 20)]), "exceeds the limit of 65536 bytes"),
    "malformed JSON": (b'{"model_name": "tiny", ', "malformed ModelInfer request (JSON)"),
    "JSON unknown field": (b'{"model_name": "tiny", "bogus": 1}', "bogus"),
}


@pytest.mark.parametrize("case", list(RAW_CASES))
def test_malformed_messages_then_good_request(channel, client, model, case):
    body, needle = RAW_CASES[case]
    with pytest.raises(grpc.RpcError) as err:
        _raw_stub(channel, "ModelInfer")(body, timeout=10)
    assert err.value.code() == grpc.StatusCode.INVALID_ARGUMENT
    assert needle in err.value.details()
    good = _x(1, seed=3)
    np.testing.assert_allclose(_infer(client, good), _expected(model, good), rtol=1e-6, atol=1e-6)


def test_model_metadata_of_unknown_model_is_not_found(client):
    with pytest.raises(InferenceServerException) as err:
        client.get_model_metadata("nope")
    assert err.value.status() == "StatusCode.NOT_FOUND" and "unknown model 'nope'" in err.value.message()
    assert client.is_server_live()


def test_non_finite_model_output_is_refused():
    model = Dense(2, 1)
    model.load_state_dict({"weight": np.full((2, 1), np.nan, np.float32), "bias": np.zeros(1, np.float32)})
    with serve_grpc(model, name="broken", background=True) as server:
        client = grpcclient.InferenceServerClient(server.url)
        try:
            with pytest.raises(InferenceServerException) as err:
                _infer(client, np.ones((1, 2), np.float32), model="broken")
            assert err.value.status() == "StatusCode.INVALID_ARGUMENT"
            assert "model output 'output' is not finite" in err.value.message()
            assert client.is_server_ready()
        finally:
            client.close()


def test_serve_grpc_over_a_service_refuses_service_options(model):
    with pytest.raises(TypeError, match="need a model"):
        serve_grpc(InferenceService(model), background=True, name="x")


# -- the JSON bridge (application/grpc+json) -----------------------------------------------------


def test_json_bridge_health_and_metadata(channel):
    assert _json_stub(channel, "ServerLive")({}, timeout=10) == {"live": True}
    assert _json_stub(channel, "ServerReady")({}, timeout=10) == {"ready": True}
    assert _json_stub(channel, "ModelReady")({"name": "tiny"}, timeout=10) == {"ready": True}
    assert _json_stub(channel, "ServerMetadata")({}, timeout=10)["name"] == "axiom"
    meta = _json_stub(channel, "ModelMetadata")({"name": "tiny", "version": "2"}, timeout=10)
    assert meta["versions"] == ["2"] and meta["inputs"][0]["shape"] == ["-1", "4"]


def test_json_bridge_infer_with_contents_and_raw(channel, model):
    x = _x(4, seed=5)
    infer = _json_stub(channel, "ModelInfer")
    tensor = {"name": "input", "datatype": "FP32", "shape": [4, 4]}
    reply = infer(
        {"modelName": "tiny", "id": "j1", "inputs": [{**tensor, "contents": {"fp32Contents": x.ravel().tolist()}}]}
    )
    assert reply["modelName"] == "tiny" and reply["id"] == "j1"
    out = reply["outputs"][0]
    y = np.asarray(out["contents"]["fp32Contents"], np.float32).reshape([int(d) for d in out["shape"]])
    np.testing.assert_allclose(y, _expected(model, x), rtol=1e-6, atol=1e-6)

    raw = base64.b64encode(x.astype("<f4").tobytes()).decode()
    reply = infer({"modelName": "tiny", "inputs": [tensor], "rawInputContents": [raw]}, timeout=10)
    y = np.frombuffer(base64.b64decode(reply["rawOutputContents"][0]), "<f4").reshape(4, 3)
    np.testing.assert_allclose(y, _expected(model, x), rtol=1e-6, atol=1e-6)


def test_json_bridge_bad_input_then_good_request(channel, model):
    infer = _json_stub(channel, "ModelInfer")
    bad = {"modelName": "tiny", "inputs": [{"name": "input", "datatype": "FP32", "shape": [1, 3]}]}
    bad["inputs"][0]["contents"] = {"fp32Contents": [1.0, 2.0, 3.0]}
    with pytest.raises(grpc.RpcError) as err:
        infer(bad, timeout=10)
    assert err.value.code() == grpc.StatusCode.INVALID_ARGUMENT and "shape [1, 3]" in err.value.details()
    with pytest.raises(grpc.RpcError) as err:
        infer({"modelName": "other", "inputs": []}, timeout=10)
    assert err.value.code() == grpc.StatusCode.NOT_FOUND
    x = _x(1)
    good = {"modelName": "tiny", "inputs": [{"name": "input", "datatype": "FP32", "shape": [1, 4]}]}
    good["inputs"][0]["contents"] = {"fp32Contents": x.ravel().tolist()}
    y = np.asarray(infer(good, timeout=10)["outputs"][0]["contents"]["fp32Contents"], np.float32)
    np.testing.assert_allclose(y, _expected(model, x).ravel(), rtol=1e-6, atol=1e-6)


# -- the .proto ------------------------------------------------------------------------------------


def test_generate_grpc_proto_writes_the_shipped_file(tmp_path):
    shipped = (REPO / "axiom" / "serve" / "grpc_predict_v2.proto").read_text()
    assert pb.PROTO == shipped
    out = generate_grpc_proto(tmp_path / "sub" / "oip.proto")
    assert out == tmp_path / "sub" / "oip.proto" and out.read_text() == shipped
    assert generate_grpc_proto(tmp_path).name == "grpc_predict_v2.proto"


def test_embedded_descriptor_is_the_compiled_proto(tmp_path):
    """The descriptor embedded in axiom.serve._proto is what grpcio-tools makes of the .proto today."""
    pytest.importorskip("grpc_tools")
    from google.protobuf import descriptor_pb2

    proto = generate_grpc_proto(tmp_path)
    out = tmp_path / "set.desc"
    subprocess.run(
        [sys.executable, "-m", "grpc_tools.protoc", f"-I{tmp_path}", f"--descriptor_set_out={out}", str(proto)],
        check=True,
    )
    compiled = descriptor_pb2.FileDescriptorSet.FromString(out.read_bytes()).file[0]
    embedded = descriptor_pb2.FileDescriptorProto.FromString(pb._DESCRIPTOR)
    assert compiled == embedded
    assert [m.name for m in embedded.service[0].method] == list(pb.METHODS)


def test_serves_a_model_package(tmp_path, model):
    """A package directory (axiom.registry) is served under its name and SemVer version."""
    from axiom.registry import create_metadata, export_model_package

    meta = create_metadata(model, name="tiny-pkg", architecture="mlp", version="1.2.3")
    export_model_package(model, meta, tmp_path / "pkg")
    with serve_grpc(tmp_path / "pkg", background=True) as server:
        client = grpcclient.InferenceServerClient(server.url)
        try:
            assert client.get_model_metadata("tiny-pkg", as_json=True)["versions"] == ["1.2.3"]
            x = _x(3, seed=9)
            y = _infer(client, x, model="tiny-pkg", model_version="1.2.3")
            np.testing.assert_allclose(y, _expected(model, x), rtol=1e-6, atol=1e-6)
        finally:
            client.close()
