"""``axiom serve MODEL --rest PORT [--grpc PORT] [--graphql PORT]``: one service, up to three adapters.

``MODEL`` is a model package directory (loaded and hash-checked by
:func:`axiom.registry.load_model_package`), an ``.onnx`` file (:func:`axiom.io.from_onnx`) or a
``.safetensors`` weights file together with ``--architecture`` (one of the example models in
:mod:`axiom.train.examples`: ``mlp_784``, ``digits_mlp``, ``digits_cnn``). The servers share one
:class:`~axiom.serve.service.InferenceService`; their URLs are printed, and Ctrl-C or SIGTERM
stops them all.

Example:
    >>> import argparse
    >>> sub = argparse.ArgumentParser().add_subparsers(dest="command")
    >>> _ = add_serve_parser(sub)
    >>> args = sub.choices["serve"].parse_args(["pkg", "--rest", "8080", "--grpc", "8081"])
    >>> args.model, args.rest, args.grpc, args.graphql
    ('pkg', 8080, 8081, None)
"""

from __future__ import annotations

import argparse
import signal
import sys
import threading
from pathlib import Path
from typing import Any

__all__ = ["ARCHITECTURES", "add_serve_parser", "load_served_model", "run_serve"]

#: ``--architecture`` names for a ``.safetensors`` weights file.
ARCHITECTURES = ("mlp_784", "digits_mlp", "digits_cnn")


def _port(text: str) -> int:
    try:
        value = int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"not a port number: {text!r}") from None
    if not 0 <= value <= 65535:
        raise argparse.ArgumentTypeError(f"port must be 0-65535, got {text}")
    return value


def add_serve_parser(sub: Any) -> argparse.ArgumentParser:
    """Add the ``serve`` subcommand to an argparse sub-parsers object; returns its parser.

    Example:
        >>> sub = argparse.ArgumentParser().add_subparsers()
        >>> add_serve_parser(sub).parse_args(["m.onnx", "--rest", "0"]).rest
        0
    """
    s = sub.add_parser(
        "serve",
        help="serve a model over Open Inference Protocol v2 REST, gRPC and/or GraphQL",
        description=__doc__.split("\n\nExample:")[0],
        formatter_class=argparse.RawDescriptionHelpFormatter,
        allow_abbrev=False,
    )
    s.add_argument("model", metavar="PACKAGE_OR_MODEL", help="package directory, .onnx, or .safetensors")
    s.add_argument("--rest", type=_port, metavar="PORT", help="serve OIP v2 REST on PORT (0: a free port)")
    s.add_argument("--grpc", type=_port, metavar="PORT", help="serve OIP v2 gRPC on PORT")
    s.add_argument("--graphql", type=_port, metavar="PORT", help="serve GraphQL (POST /graphql) on PORT")
    s.add_argument("--host", default="127.0.0.1", help="address to bind (default 127.0.0.1)")
    s.add_argument("--name", help="model name (default: the package's name, else the file's stem)")
    s.add_argument("--model-version", dest="model_version", help="model version (default: the package's, else 1)")
    s.add_argument("--architecture", choices=ARCHITECTURES, help="the architecture of a .safetensors file")
    return s


def load_served_model(path: str | Path, architecture: str | None = None) -> tuple[Any, str | None]:
    """The model at ``path`` (package dir, ``.onnx``, or ``.safetensors`` + architecture) and a default name.

    Example:
        >>> import tempfile, os
        >>> from axiom.nn.state import save_safetensors
        >>> from axiom.train.examples import digits_mlp
        >>> path = os.path.join(tempfile.mkdtemp(), "w.safetensors")
        >>> _ = save_safetensors(digits_mlp().state_dict(), path)
        >>> model, name = load_served_model(path, "digits_mlp")
        >>> type(model).__name__, name
        ('Sequential', 'w')
    """
    p = Path(path)
    if p.is_dir() or p.suffix.lower() == ".onnx":
        return str(p), None  # InferenceService loads (and checks) it and knows its name
    if p.suffix.lower() == ".safetensors":
        if architecture is None:
            raise ValueError(
                f"{p}: a .safetensors file holds weights only: give --architecture ({', '.join(ARCHITECTURES)})"
            )
        from axiom.nn.state import load_safetensors
        from axiom.train import examples

        model = getattr(examples, architecture)()
        model.load_state_dict(load_safetensors(p))
        return model, p.stem
    raise ValueError(f"{p}: expected a model package directory, an .onnx or a .safetensors file")


def run_serve(args: argparse.Namespace) -> int:
    """Start the requested servers and block until Ctrl-C or SIGTERM; the exit code (2: no server asked for).

    Example:
        >>> run_serve(argparse.Namespace(model="m.onnx", rest=None, grpc=None, graphql=None))
        2
    """
    if args.rest is None and args.grpc is None and args.graphql is None:
        print("axiom serve: give at least one of --rest PORT, --grpc PORT, --graphql PORT", file=sys.stderr)
        return 2
    from axiom.serve.service import InferenceService

    try:
        model, default_name = load_served_model(args.model, args.architecture)
        service = InferenceService(model, name=args.name or default_name, version=args.model_version)
    except Exception as err:
        print(f"axiom serve: cannot load {args.model}: {type(err).__name__}: {err}", file=sys.stderr)
        return 1
    handles = []
    stop = threading.Event()
    try:
        for flag, module, func in (
            ("rest", "axiom.serve.rest", "serve_rest"),
            ("grpc", "axiom.serve.grpc", "serve_grpc"),
            ("graphql", "axiom.serve.graphql", "serve_graphql"),
        ):
            port = getattr(args, flag)
            if port is None:
                continue
            import importlib

            serve = getattr(importlib.import_module(module), func)
            handle = serve(service, host=args.host, port=port, background=True)
            handles.append(handle)
            print(f"axiom serve: {flag} {handle.url} model {service.name!r} version {service.versions[0]}", flush=True)
        signal.signal(signal.SIGTERM, lambda *_: stop.set())
        try:
            while not stop.wait(0.5):
                pass
        except KeyboardInterrupt:
            pass
    except Exception as err:
        print(f"axiom serve: {type(err).__name__}: {err}", file=sys.stderr)
        return 1
    finally:
        for handle in handles:
            handle.stop()
    return 0
