"""Model import and export: ONNX (``from_onnx``); PyTorch, safetensors and Hugging Face come later.

Example:
    >>> import numpy as np
    >>> from onnx import TensorProto, helper, numpy_helper
    >>> from axiom.io import from_onnx
    >>> graph = helper.make_graph(
    ...     [helper.make_node("Relu", ["x"], ["y"])], "g",
    ...     [helper.make_tensor_value_info("x", TensorProto.FLOAT, ["N", 3])],
    ...     [helper.make_tensor_value_info("y", TensorProto.FLOAT, ["N", 3])])
    >>> net = from_onnx(helper.make_model(graph, opset_imports=[helper.make_opsetid("", 13)]))
    >>> net(np.array([[-1.0, 0.0, 2.0]], np.float32)).tolist()
    [[0.0, 0.0, 2.0]]
"""

from axiom.io.huggingface import from_pretrained, locate_package_model, save_pretrained
from axiom.io.onnx_export import UnsupportedLayerError, to_onnx
from axiom.io.onnx_import import InvalidOnnxError, OnnxModel, UnsupportedOnnxError, from_onnx
from axiom.io.pytorch import from_pytorch, to_pytorch

__all__ = [
    "InvalidOnnxError",
    "OnnxModel",
    "UnsupportedLayerError",
    "UnsupportedOnnxError",
    "from_onnx",
    "from_pretrained",
    "from_pytorch",
    "locate_package_model",
    "save_pretrained",
    "to_onnx",
    "to_pytorch",
]
