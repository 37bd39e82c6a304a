"""The Open Inference Protocol v2 gRPC messages (package ``inference``), built at import time.

``PROTO`` is the text of the shipped ``grpc_predict_v2.proto`` (the KServe / Triton definitions
that ``tritonclient.grpc`` speaks); ``_DESCRIPTOR`` is the same file compiled once with grpcio-tools
(``python -m grpc_tools.protoc --descriptor_set_out``) and embedded here, so serving needs only
``protobuf`` at run time. The messages live in a private descriptor pool: importing
``tritonclient.grpc`` (which registers its own ``inference.*`` messages in the default pool) in the
same process does not clash. ``tests/serve/test_grpc.py`` checks that the shipped ``.proto`` and
``_DESCRIPTOR`` agree.
"""

from __future__ import annotations

from pathlib import Path

from google.protobuf import descriptor_pb2, descriptor_pool, message_factory

#: The source of the shipped ``grpc_predict_v2.proto`` (package data next to this module).
PROTO = (Path(__file__).parent / "grpc_predict_v2.proto").read_text(encoding="utf-8")

_DESCRIPTOR = (
    b'\n\x15grpc_predict_v2.proto\x12\tinference"\x13\n\x11ServerLiveRequest"(\n\x12ServerLiveResponse'
    b'\x12\x12\n\x04live\x18\x01 \x01(\x08R\x04live"\x14\n\x12ServerReadyRequest"+\n\x13ServerReadyResp'
    b'onse\x12\x14\n\x05ready\x18\x01 \x01(\x08R\x05ready"A\n\x11ModelReadyRequest\x12\x12\n\x04name'
    b'\x18\x01 \x01(\tR\x04name\x12\x18\n\x07version\x18\x02 \x01(\tR\x07version"*\n\x12ModelReadyRespo'
    b'nse\x12\x14\n\x05ready\x18\x01 \x01(\x08R\x05ready"\x17\n\x15ServerMetadataRequest"f\n\x16ServerM'
    b"etadataResponse\x12\x12\n\x04name\x18\x01 \x01(\tR\x04name\x12\x18\n\x07version\x18\x02 \x01(\tR"
    b'\x07version\x12\x1e\n\nextensions\x18\x03 \x03(\tR\nextensions"D\n\x14ModelMetadataRequest\x12'
    b'\x12\n\x04name\x18\x01 \x01(\tR\x04name\x12\x18\n\x07version\x18\x02 \x01(\tR\x07version"\xcf\x02'
    b"\n\x15ModelMetadataResponse\x12\x12\n\x04name\x18\x01 \x01(\tR\x04name\x12\x1a\n\x08versions\x18"
    b"\x02 \x03(\tR\x08versions\x12\x1a\n\x08platform\x18\x03 \x01(\tR\x08platform\x12G\n\x06inputs\x18"
    b"\x04 \x03(\x0b2/.inference.ModelMetadataResponse.TensorMetadataR\x06inputs\x12I\n\x07outputs\x18"
    b"\x05 \x03(\x0b2/.inference.ModelMetadataResponse.TensorMetadataR\x07outputs\x1aV\n\x0eTensorMetad"
    b"ata\x12\x12\n\x04name\x18\x01 \x01(\tR\x04name\x12\x1a\n\x08datatype\x18\x02 \x01(\tR\x08datatype"
    b'\x12\x14\n\x05shape\x18\x03 \x03(\x03R\x05shape"\x9d\x08\n\x11ModelInferRequest\x12\x1d\n\nmodel_'
    b"name\x18\x01 \x01(\tR\tmodelName\x12#\n\rmodel_version\x18\x02 \x01(\tR\x0cmodelVersion\x12\x0e\n"
    b"\x02id\x18\x03 \x01(\tR\x02id\x12L\n\nparameters\x18\x04 \x03(\x0b2,.inference.ModelInferRequest."
    b"ParametersEntryR\nparameters\x12E\n\x06inputs\x18\x05 \x03(\x0b2-.inference.ModelInferRequest.Inf"
    b"erInputTensorR\x06inputs\x12Q\n\x07outputs\x18\x06 \x03(\x0b27.inference.ModelInferRequest.InferR"
    b"equestedOutputTensorR\x07outputs\x12,\n\x12raw_input_contents\x18\x07 \x03(\x0cR\x10rawInputConte"
    b"nts\x1a\xcd\x02\n\x10InferInputTensor\x12\x12\n\x04name\x18\x01 \x01(\tR\x04name\x12\x1a\n\x08dat"
    b"atype\x18\x02 \x01(\tR\x08datatype\x12\x14\n\x05shape\x18\x03 \x03(\x03R\x05shape\x12]\n\nparamet"
    b"ers\x18\x04 \x03(\x0b2=.inference.ModelInferRequest.InferInputTensor.ParametersEntryR\nparameters"
    b"\x12:\n\x08contents\x18\x05 \x01(\x0b2\x1e.inference.InferTensorContentsR\x08contents\x1aX\n\x0fP"
    b"arametersEntry\x12\x10\n\x03key\x18\x01 \x01(\tR\x03key\x12/\n\x05value\x18\x02 \x01(\x0b2\x19.in"
    b"ference.InferParameterR\x05value:\x028\x01\x1a\xf3\x01\n\x1aInferRequestedOutputTensor\x12\x12\n"
    b"\x04name\x18\x01 \x01(\tR\x04name\x12g\n\nparameters\x18\x02 \x03(\x0b2G.inference.ModelInferRequ"
    b"est.InferRequestedOutputTensor.ParametersEntryR\nparameters\x1aX\n\x0fParametersEntry\x12\x10\n"
    b"\x03key\x18\x01 \x01(\tR\x03key\x12/\n\x05value\x18\x02 \x01(\x0b2\x19.inference.InferParameterR"
    b"\x05value:\x028\x01\x1aX\n\x0fParametersEntry\x12\x10\n\x03key\x18\x01 \x01(\tR\x03key\x12/\n\x05"
    b'value\x18\x02 \x01(\x0b2\x19.inference.InferParameterR\x05value:\x028\x01"\xdf\x05\n\x12ModelInfe'
    b"rResponse\x12\x1d\n\nmodel_name\x18\x01 \x01(\tR\tmodelName\x12#\n\rmodel_version\x18\x02 \x01(\t"
    b"R\x0cmodelVersion\x12\x0e\n\x02id\x18\x03 \x01(\tR\x02id\x12M\n\nparameters\x18\x04 \x03(\x0b2-.i"
    b"nference.ModelInferResponse.ParametersEntryR\nparameters\x12I\n\x07outputs\x18\x05 \x03(\x0b2/.in"
    b"ference.ModelInferResponse.InferOutputTensorR\x07outputs\x12.\n\x13raw_output_contents\x18\x06 "
    b"\x03(\x0cR\x11rawOutputContents\x1a\xd0\x02\n\x11InferOutputTensor\x12\x12\n\x04name\x18\x01 \x01"
    b"(\tR\x04name\x12\x1a\n\x08datatype\x18\x02 \x01(\tR\x08datatype\x12\x14\n\x05shape\x18\x03 \x03("
    b"\x03R\x05shape\x12_\n\nparameters\x18\x04 \x03(\x0b2?.inference.ModelInferResponse.InferOutputTen"
    b"sor.ParametersEntryR\nparameters\x12:\n\x08contents\x18\x05 \x01(\x0b2\x1e.inference.InferTensorC"
    b"ontentsR\x08contents\x1aX\n\x0fParametersEntry\x12\x10\n\x03key\x18\x01 \x01(\tR\x03key\x12/\n"
    b"\x05value\x18\x02 \x01(\x0b2\x19.inference.InferParameterR\x05value:\x028\x01\x1aX\n\x0fParameter"
    b"sEntry\x12\x10\n\x03key\x18\x01 \x01(\tR\x03key\x12/\n\x05value\x18\x02 \x01(\x0b2\x19.inference."
    b'InferParameterR\x05value:\x028\x01"\xd7\x01\n\x0eInferParameter\x12\x1f\n\nbool_param\x18\x01 '
    b"\x01(\x08H\x00R\tboolParam\x12!\n\x0bint64_param\x18\x02 \x01(\x03H\x00R\nint64Param\x12#\n\x0cst"
    b"ring_param\x18\x03 \x01(\tH\x00R\x0bstringParam\x12#\n\x0cdouble_param\x18\x04 \x01(\x01H\x00R"
    b"\x0bdoubleParam\x12#\n\x0cuint64_param\x18\x05 \x01(\x04H\x00R\x0buint64ParamB\x12\n\x10parameter"
    b'_choice"\xc3\x02\n\x13InferTensorContents\x12#\n\rbool_contents\x18\x01 \x03(\x08R\x0cboolContent'
    b"s\x12!\n\x0cint_contents\x18\x02 \x03(\x05R\x0bintContents\x12%\n\x0eint64_contents\x18\x03 \x03("
    b"\x03R\rint64Contents\x12#\n\ruint_contents\x18\x04 \x03(\rR\x0cuintContents\x12'\n\x0fuint64_cont"
    b"ents\x18\x05 \x03(\x04R\x0euint64Contents\x12#\n\rfp32_contents\x18\x06 \x03(\x02R\x0cfp32Content"
    b"s\x12#\n\rfp64_contents\x18\x07 \x03(\x01R\x0cfp64Contents\x12%\n\x0ebytes_contents\x18\x08 \x03("
    b"\x0cR\rbytesContents2\xfc\x03\n\x14GRPCInferenceService\x12K\n\nServerLive\x12\x1c.inference.Serv"
    b'erLiveRequest\x1a\x1d.inference.ServerLiveResponse"\x00\x12N\n\x0bServerReady\x12\x1d.inference.S'
    b'erverReadyRequest\x1a\x1e.inference.ServerReadyResponse"\x00\x12K\n\nModelReady\x12\x1c.inference'
    b'.ModelReadyRequest\x1a\x1d.inference.ModelReadyResponse"\x00\x12W\n\x0eServerMetadata\x12 .infere'
    b'nce.ServerMetadataRequest\x1a!.inference.ServerMetadataResponse"\x00\x12T\n\rModelMetadata\x12'
    b'\x1f.inference.ModelMetadataRequest\x1a .inference.ModelMetadataResponse"\x00\x12K\n\nModelInfer'
    b'\x12\x1c.inference.ModelInferRequest\x1a\x1d.inference.ModelInferResponse"\x00b\x06proto3'
)

_POOL = descriptor_pool.DescriptorPool()
_POOL.Add(descriptor_pb2.FileDescriptorProto.FromString(_DESCRIPTOR))


def _message(name: str) -> type:
    return message_factory.GetMessageClass(_POOL.FindMessageTypeByName("inference." + name))


ServerLiveRequest = _message("ServerLiveRequest")
ServerLiveResponse = _message("ServerLiveResponse")
ServerReadyRequest = _message("ServerReadyRequest")
ServerReadyResponse = _message("ServerReadyResponse")
ModelReadyRequest = _message("ModelReadyRequest")
ModelReadyResponse = _message("ModelReadyResponse")
ServerMetadataRequest = _message("ServerMetadataRequest")
ServerMetadataResponse = _message("ServerMetadataResponse")
ModelMetadataRequest = _message("ModelMetadataRequest")
ModelMetadataResponse = _message("ModelMetadataResponse")
ModelInferRequest = _message("ModelInferRequest")
ModelInferResponse = _message("ModelInferResponse")
InferTensorContents = _message("InferTensorContents")
InferParameter = _message("InferParameter")

#: method name -> (request class, response class), in the order of the service definition.
METHODS = {
    "ServerLive": (ServerLiveRequest, ServerLiveResponse),
    "ServerReady": (ServerReadyRequest, ServerReadyResponse),
    "ModelReady": (ModelReadyRequest, ModelReadyResponse),
    "ServerMetadata": (ServerMetadataRequest, ServerMetadataResponse),
    "ModelMetadata": (ModelMetadataRequest, ModelMetadataResponse),
    "ModelInfer": (ModelInferRequest, ModelInferResponse),
}
SERVICE = "inference.GRPCInferenceService"
