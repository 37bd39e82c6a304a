"""The ``axiom`` command line (also ``python -m axiom``).

Thin on purpose: argument parsing and printing here, the work in :mod:`axiom.verify.instances`.

Example:
    >>> from axiom.cli import build_parser
    >>> args = build_parser().parse_args(["verify", "net.onnx", "spec.vnnlib", "--timeout", "60"])
    >>> args.command, args.onnx, args.timeout
    ('verify', 'net.onnx', 60.0)
"""

from __future__ import annotations

import argparse
import json
import sys
from collections.abc import Sequence
from pathlib import Path
from typing import TextIO

import axiom

__all__ = ["build_parser", "main"]

METHODS = ("ibp", "crown", "alpha-crown", "smt")

VERIFY_DESCRIPTION = """\
Verify a VNN-COMP instance: does some input in the VNN-LIB spec's input set drive the ONNX
network into the spec's unsafe output region?

Prints the answer on the first line of stdout, in VNN-COMP words:
  unsat    the property holds (no input reaches the unsafe region)     exit code 0
  sat      the property is violated; a counterexample follows          exit code 10
  unknown  neither could be established                                exit code 20
  timeout  the time budget ran out                                     exit code 30
  error    the network or spec could not be processed                  exit code 1
  (a usage error exits with 2)

After "sat" comes the counterexample, one "(X_i v)" / "(Y_j v)" pair per line inside one
pair of parentheses: the flattened ONNX input and the network's output there, as onnxruntime
computes it. "sat" is only reported when onnxruntime reproduces the violation. Messages go to
stderr; --out FILE writes what stdout shows.

With --instances, runs every row of an instances CSV (benchmark,onnx,vnnlib,timeout_s,expected
with a header, or VNN-COMP's onnx,vnnlib,timeout), shows progress on stderr and prints a table
per benchmark; answers that contradict `expected` are flagged and make the exit code 1.
--workers N runs the instances in N worker processes (each imports its networks once); an
instance that overruns its timeout by the grace (2 s + 10%) has its worker killed and answers
timeout, one whose worker crashes answers error. --dask-scheduler ADDRESS sends them to a Dask
distributed cluster instead (its workers must see the same paths). Either way the results come
back in the CSV's order, with the same answers as a sequential run. Ctrl-C stops every worker."""

VERIFY_EPILOG = """\
examples:
  axiom verify net.onnx prop.vnnlib --timeout 60
  axiom verify net.onnx prop.vnnlib --method crown --json
  axiom verify net.onnx prop.vnnlib --out result.txt
  axiom verify --instances benchmarks/instances.csv --filter acasxu --timeout-scale 0.5
  axiom verify --instances instances.csv --root benchmarks --limit 10 --out results.csv
  axiom verify --instances benchmarks/instances.csv --workers 2 --out results.csv
  axiom verify --instances benchmarks/instances.csv --dask-scheduler tcp://10.0.0.5:8786"""


def build_parser() -> argparse.ArgumentParser:
    """The ``axiom`` argument parser (subcommands ``verify``, ``export-proof``, ``check-cert``, ``serve``, ``package``).

    Example:
        >>> a = build_parser().parse_args(["verify", "--instances", "i.csv", "--limit", "3"])
        >>> a.instances, a.limit, a.onnx
        ('i.csv', 3, None)
    """
    parser = argparse.ArgumentParser(
        prog="axiom", description="Axiom: provably correct machine learning.", allow_abbrev=False
    )
    parser.add_argument("--version", action="version", version=f"axiom {axiom.__version__}")
    sub = parser.add_subparsers(dest="command", metavar="COMMAND")
    sub.required = True

    v = sub.add_parser(
        "verify",
        help="verify an ONNX network against a VNN-LIB specification (VNN-COMP answers)",
        description=VERIFY_DESCRIPTION,
        epilog=VERIFY_EPILOG,
        formatter_class=argparse.RawDescriptionHelpFormatter,
        allow_abbrev=False,
    )
    v.set_defaults(verify_parser=v)
    v.add_argument("onnx", nargs="?", metavar="NET.onnx", help="the network")
    v.add_argument("vnnlib", nargs="?", metavar="SPEC.vnnlib", help="the specification (its unsafe set)")
    v.add_argument("--timeout", type=_positive, metavar="S", help="time budget in seconds (default: none)")
    v.add_argument(
        "--method",
        choices=METHODS,
        help="one bound method, or smt (exact Z3, small nets); default: attack, IBP, CROWN, alpha-CROWN, then BaB",
    )
    v.add_argument("--out", metavar="FILE", help="also write the result (or, with --instances, a results CSV)")
    v.add_argument("--json", action="store_true", help="print a JSON object instead of the VNN-COMP text")
    g = v.add_argument_group("instances")
    g.add_argument("--instances", metavar="CSV", help="run every instance of this CSV")
    g.add_argument("--root", metavar="DIR", help="folder the CSV's paths are relative to (default: the CSV's)")
    g.add_argument("--timeout-scale", type=_positive, metavar="F", help="multiply each instance's timeout by F")
    g.add_argument("--limit", type=int, metavar="N", help="run at most N instances (after --filter)")
    g.add_argument("--filter", metavar="REGEX", help="only rows whose benchmark/onnx/vnnlib paths match REGEX")
    g.add_argument(
        "--workers",
        type=_count,
        metavar="N",
        help="run instances in N worker processes, hung ones killed at their timeout (default: in this process)",
    )
    g.add_argument(
        "--dask-scheduler",
        metavar="ADDRESS",
        help="run instances on the Dask distributed cluster at ADDRESS (e.g. tcp://host:8786)",
    )
    e = sub.add_parser(
        "export-proof",
        help="export an ONNX network and a VNN-LIB property as SMT-LIB 2, Coq, Lean 4 or Isabelle",
        description=EXPORT_DESCRIPTION,
        formatter_class=argparse.RawDescriptionHelpFormatter,
        allow_abbrev=False,
    )
    e.add_argument("onnx", metavar="NET.onnx", help="the network (Dense/ReLU chains for coq, lean, isabelle)")
    e.add_argument("vnnlib", metavar="SPEC.vnnlib", help="the specification (its unsafe set)")
    e.add_argument("--format", choices=EXPORT_FORMATS, default="smtlib", help="file format (default: smtlib)")
    e.add_argument("-o", "--output", required=True, metavar="FILE", help="the file to write")
    e.add_argument(
        "--prefix-bounds",
        action="store_true",
        help="smtlib: also assert Axiom's CROWN neuron bounds (faster to solve; the file says they are assumed)",
    )
    e.add_argument("--max-depth", type=int, default=12, metavar="N", help="coq: bisections per box (default 12)")
    e.add_argument("--solve", action="store_true", help="smtlib: run the solver on the file and print its answer")
    e.add_argument("--solver", choices=("z3", "cvc5"), help="solver for --solve (default: AXIOM_SMT_SOLVER or z3)")
    e.add_argument("--timeout", type=_positive, default=60.0, metavar="S", help="--solve time limit (default 60)")
    c = sub.add_parser(
        "check-cert",
        help="re-check a verification certificate against a model (exit 0 valid, 1 invalid)",
        description="Re-derive every claim of an axiom certificate (see docs/certificates.md) against the "
        "model, independently of the verifier. Prints one line: VALID or INVALID and the reason.",
        allow_abbrev=False,
    )
    c.add_argument("cert", metavar="CERT.json", help="the certificate (plain JSON or a DSSE envelope)")
    c.add_argument("--model", required=True, metavar="MODEL.onnx", help="the model (ONNX)")
    c.add_argument("--public-key", metavar="KEY.pem", help="also verify the envelope's Ed25519 signature")
    from axiom.serve.cli import add_serve_parser

    add_serve_parser(sub)
    from axiom.registry.cli import add_package_parser

    add_package_parser(sub)
    return parser


EXPORT_FORMATS = ("smtlib", "coq", "lean", "isabelle")

EXPORT_DESCRIPTION = """\
Write the network and the property as a file for another checker (see docs/proof-export.md):
  smtlib    SMT-LIB 2 (QF_LRA) of "some input reaches the unsafe region": unsat = proven
  coq       Coq file with a proof that coqc checks (Dense/ReLU networks, interval checker)
  lean      Lean 4 statement file (NOT machine-checked: the proof is sorry)
  isabelle  Isabelle/HOL statement theory (NOT machine-checked: the proof is sorry)
A spec with several (input set, unsafe region) parts writes one file per part (FILE.1.ext, ...).
Exit code 0 when written (with --solve: 0 unsat, 10 sat, 20 unknown), 1 on an error."""


def _positive(text: str) -> float:
    try:
        value = float(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"not a number: {text!r}") from None
    if not value > 0:
        raise argparse.ArgumentTypeError(f"must be > 0, got {text}")
    return value


def _count(text: str) -> int:
    try:
        value = int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"not an integer: {text!r}") from None
    if value < 1:
        raise argparse.ArgumentTypeError(f"must be >= 1, got {text}")
    return value


def main(argv: Sequence[str] | None = None) -> int:
    """Run the command line; returns the exit code (see ``axiom verify --help``).

    Example:
        >>> main(["verify", "missing.onnx", "missing.vnnlib"])  # the reason goes to stderr
        error
        1
    """
    parser = build_parser()
    args = parser.parse_args(argv)
    if args.command == "verify":
        return _verify(args.verify_parser, args)
    if args.command == "export-proof":
        return _export_proof(args)
    if args.command == "check-cert":
        return _check_cert(args)
    if args.command == "serve":
        from axiom.serve.cli import run_serve

        return run_serve(args)
    if args.command == "package":
        from axiom.registry.cli import run_package

        return run_package(args)
    parser.error(f"unknown command {args.command}")  # pragma: no cover - argparse rejects it first
    return 2


def _verify(parser: argparse.ArgumentParser, args: argparse.Namespace) -> int:
    if args.instances is not None:
        if args.onnx is not None or args.timeout is not None:
            parser.error("give either NET.onnx SPEC.vnnlib or --instances CSV (with --timeout-scale), not both")
        if args.workers is not None and args.dask_scheduler is not None:
            parser.error("give either --workers N or --dask-scheduler ADDRESS, not both")
        return _verify_instances(args)
    if args.onnx is None or args.vnnlib is None:
        parser.error("needs NET.onnx and SPEC.vnnlib (or --instances CSV)")
    for opt in ("root", "timeout_scale", "limit", "filter", "workers", "dask_scheduler"):
        if getattr(args, opt) is not None:
            parser.error(f"--{opt.replace('_', '-')} only applies with --instances")
    return _verify_one(args)


def _emit(text: str, out: str | None, stream: TextIO) -> None:
    stream.write(text + "\n")
    stream.flush()
    if out is not None:
        Path(out).write_text(text + "\n")


def _verify_one(args: argparse.Namespace) -> int:
    from axiom.verify.instances import verify_instance

    outcome = verify_instance(args.onnx, args.vnnlib, timeout=args.timeout, method=args.method)
    if args.json:
        text = json.dumps({"onnx": args.onnx, "vnnlib": args.vnnlib, **outcome.to_dict()}, indent=2)
    else:
        text = outcome.text()
    try:
        _emit(text, args.out, sys.stdout)
    except OSError as err:
        print(f"axiom verify: cannot write {args.out}: {err}", file=sys.stderr)
        return 1
    note = f"axiom verify: {outcome.answer} in {outcome.runtime_s:.3f} s"
    if outcome.status is not None:
        note += f" (verify: {outcome.status})"
    print(note + (f": {outcome.message}" if outcome.message else ""), file=sys.stderr)
    return outcome.exit_code


def _verify_instances(args: argparse.Namespace) -> int:
    from axiom.verify.instances import (
        Progress,
        filter_instances,
        is_wrong,
        read_instances,
        run_instances,
        summarize,
        write_results_csv,
    )

    try:
        instances = read_instances(args.instances, args.root)
    except (OSError, ValueError) as err:
        print(f"axiom verify: {err}", file=sys.stderr)
        return 1
    instances = filter_instances(instances, args.filter, args.limit)
    progress = Progress(len(instances), sys.stderr)
    options = {"timeout_scale": args.timeout_scale or 1.0, "method": args.method, "progress": progress}
    try:
        if args.dask_scheduler is not None:
            from axiom.verify.distributed import run_dask

            results = run_dask(instances, args.dask_scheduler, **options)
        elif args.workers is not None:
            from axiom.verify.distributed import run_parallel

            results = run_parallel(instances, workers=args.workers, **options)
        else:
            results = run_instances(instances, **options)
    except KeyboardInterrupt:
        print("\naxiom verify: interrupted (workers stopped, no results written)", file=sys.stderr)
        return 130
    except RuntimeError as err:  # e.g. the Dask scheduler cannot be reached
        print(f"axiom verify: {err}", file=sys.stderr)
        return 1
    if args.out is not None:
        write_results_csv(results, args.out)
    if args.json:
        rows = [
            {
                "benchmark": i.benchmark,
                "onnx": str(i.onnx),
                "vnnlib": str(i.vnnlib),
                "timeout_s": i.timeout_s,
                "expected": i.expected,
                **o.to_dict(),
            }
            for i, o in results
        ]
        print(json.dumps(rows, indent=2))
        print(summarize(results), file=sys.stderr)
    else:
        print(summarize(results))
    return 1 if any(is_wrong(i.expected, o.answer) for i, o in results) else 0


def _export_paths(output: str, n: int) -> list[Path]:
    out = Path(output)
    if n == 1:
        return [out]
    return [out.with_name(f"{out.stem}.{k}{out.suffix}") for k in range(1, n + 1)]


def _export_proof(args: argparse.Namespace) -> int:
    from axiom.io import from_onnx
    from axiom.proof import export_coq, export_isabelle, export_lean, export_smtlib, run_solver
    from axiom.verify.vnnlib import read_vnnlib

    try:
        loaded = from_onnx(str(args.onnx))
        model = getattr(loaded, "model", loaded)
        shape = tuple(int(d) for d in loaded.input_shape) if hasattr(loaded, "input_shape") else None
        props = read_vnnlib(Path(args.vnnlib), input_shape=shape)
        paths = _export_paths(args.output, len(props))
        for prop, path in zip(props, paths):
            name = Path(args.onnx).name
            if args.format == "smtlib":
                export_smtlib(model, prop, path=path, prefix_bounds=args.prefix_bounds, name=name)
            elif args.format == "coq":
                export_coq(model, prop, path=path, max_depth=args.max_depth, name=name)
            elif args.format == "lean":
                export_lean(model, prop, path=path, name=name)
            else:
                export_isabelle(model, prop, path=path, name=name)
            print(f"axiom export-proof: wrote {path}", file=sys.stderr)
    except (OSError, ValueError, NotImplementedError) as err:
        print(f"axiom export-proof: {err}", file=sys.stderr)
        return 1
    if not args.solve:
        return 0
    if args.format != "smtlib":
        print("axiom export-proof: --solve applies to --format smtlib only", file=sys.stderr)
        return 1
    answers = [run_solver(p, args.solver, timeout=args.timeout) for p in paths]
    for p, a in zip(paths, answers):
        print(f"{a.answer} {p}" if len(paths) > 1 else a.answer)
        if a.message:
            print(f"axiom export-proof: {a.solver}: {a.message}", file=sys.stderr)
    words = {a.answer for a in answers}
    return 10 if "sat" in words else 20 if "unknown" in words else 0


def _check_cert(args: argparse.Namespace) -> int:
    """``axiom check-cert``: 0 when the certificate is valid for the model, 1 otherwise (one line of reason)."""
    from axiom.cert import check, load_certificate

    try:
        key = None if args.public_key is None else Path(args.public_key).read_bytes()
        cert = load_certificate(args.cert, public_key=key)
        from axiom.io import from_onnx

        model = from_onnx(args.model)
    except Exception as err:  # noqa: BLE001 - any failure to read is an invalid certificate, reported in one line
        print(f"INVALID: {type(err).__name__}: {err}")
        return 1
    res = check(cert, model)
    print(("VALID: " if res.valid else "INVALID: ") + res.reason)
    return 0 if res.valid else 1


if __name__ == "__main__":  # pragma: no cover
    sys.exit(main())
