"""Serving: one :class:`InferenceService` over a model or package, and adapters that only translate.

- :func:`serve_rest` (:mod:`axiom.serve.rest`): Open Inference Protocol v2 over HTTP, JSON and
  the binary tensor extension;
- ``serve_grpc`` / ``generate_grpc_proto`` (:mod:`axiom.serve.grpc`): ``inference.GRPCInferenceService``;
- ``serve_graphql`` (:mod:`axiom.serve.graphql`): ``POST /graphql``.

Adapters are imported lazily (``import axiom.serve`` loads no server code).

Example:
    >>> import axiom.serve
    >>> from axiom.nn import Dense
    >>> axiom.serve.InferenceService(Dense(2, 1), name="d").ready("d")
    True
"""

from __future__ import annotations

import importlib
from typing import Any

from axiom.serve._handle import ServerHandle
from axiom.serve.service import InferenceError, InferenceService

__all__ = [
    "InferenceError",
    "InferenceService",
    "ServerHandle",
    "generate_grpc_proto",
    "serve_graphql",
    "serve_grpc",
    "serve_rest",
]

_LAZY = {
    "serve_rest": "axiom.serve.rest",
    "serve_grpc": "axiom.serve.grpc",
    "generate_grpc_proto": "axiom.serve.grpc",
    "serve_graphql": "axiom.serve.graphql",
}


def __getattr__(name: str) -> Any:
    module = _LAZY.get(name)
    if module is None:
        raise AttributeError(f"module 'axiom.serve' has no attribute {name!r}")
    return getattr(importlib.import_module(module), name)
