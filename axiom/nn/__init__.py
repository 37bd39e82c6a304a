"""Layers, activations and containers (NHWC, batch first). One file per family."""

from axiom.nn import init
from axiom.nn.activations import (
    ELU,
    GELU,
    SELU,
    Activation,
    ActivationFunction,
    Hardsigmoid,
    Hardswish,
    LeakyReLU,
    LogSoftmax,
    Mish,
    ReLU,
    ReLU6,
    Sigmoid,
    SiLU,
    Softmax,
    Softplus,
    Softsign,
    Swish,
    Tanh,
    elu,
    gelu,
    gelu_tanh,
    hardsigmoid,
    hardswish,
    identity,
    leaky_relu,
    log_softmax,
    mish,
    relu,
    relu6,
    selu,
    sigmoid,
    silu,
    softmax,
    softplus,
    softsign,
    swish,
    tanh,
)
from axiom.nn.containers import Chain, Concat, Parallel, Pipeline, Residual, Sequential
from axiom.nn.dense import Dense
from axiom.nn.layer import IncompatibleKeys, Layer, Parameter

# -- filled in by the layer families (uncomment when the module exists) --
from axiom.nn.conv import Conv2d, DepthwiseConv2d
from axiom.nn.pooling import AvgPool2d, GlobalAvgPool, MaxPool2d
from axiom.nn.normalization import BatchNorm, LayerNorm, RMSNorm
from axiom.nn.reshape import Flatten, Reshape
from axiom.nn.dropout import Dropout
from axiom.nn.embedding import Embedding
from axiom.nn.attention import MultiHeadAttention
from axiom.nn.state import load_safetensors, save_safetensors

__all__ = [name for name in dir() if not name.startswith("_")]
