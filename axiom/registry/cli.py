"""``axiom package``: check a model package and print its summary, or write its registry entry.

``axiom package DIR`` loads the package with :func:`axiom.registry.load_model_package` (every
hash, the weights checksum, every certificate) and prints one line per claim; exit code 0 when
the package is intact, 1 (with the reason naming the file on stderr) when it is refused.
``--entry FILE --channel stable`` also writes its registry entry; ``--json`` prints the summary
as JSON.

Example:
    >>> import argparse
    >>> sub = argparse.ArgumentParser(prog="axiom").add_subparsers(dest="command")
    >>> add_package_parser(sub).parse_args(["pkg", "--channel", "beta"]).channel
    'beta'
"""

from __future__ import annotations

import argparse
import json
import sys
from typing import Any, TextIO

__all__ = ["add_package_parser", "run_package"]


def add_package_parser(sub: Any) -> argparse.ArgumentParser:
    """Add the ``package`` subcommand to an ``add_subparsers()`` object; returns its parser.

    Example:
        >>> import argparse
        >>> sub = argparse.ArgumentParser(prog="axiom").add_subparsers(dest="command")
        >>> add_package_parser(sub).parse_args(["pkg", "--entry", "e.json"]).entry
        'e.json'
    """
    from axiom.registry.registry_entry import CHANNELS

    p = sub.add_parser(
        "package",
        help="check a model package (hashes, weights checksum, certificates) and summarise it",
        description=__doc__.split("\n\nExample:")[0],
        formatter_class=argparse.RawDescriptionHelpFormatter,
        allow_abbrev=False,
    )
    p.add_argument("package", metavar="DIR", help="the package folder (with manifest.json)")
    p.add_argument("--entry", metavar="FILE", help="also write the registry entry (JSON) to FILE")
    p.add_argument("--channel", default="stable", choices=CHANNELS, help="release channel of the entry")
    p.add_argument("--json", action="store_true", help="print the summary as JSON")
    return p


def run_package(args: argparse.Namespace, out: TextIO | None = None, err: TextIO | None = None) -> int:
    """Run ``axiom package`` with parsed ``args``; returns the exit code (0 intact, 1 refused).

    Example:
        >>> import argparse, tempfile
        >>> from axiom import Dense, Sequential, manual_seed
        >>> from axiom.registry import create_metadata, export_model_package
        >>> manual_seed(0); m = Sequential(Dense(2, 1)); d = tempfile.mkdtemp()
        >>> _ = export_model_package(m, create_metadata(m, name="tiny", architecture="mlp", version="1.0.0"), d)
        >>> run_package(argparse.Namespace(package=d, entry=None, channel="stable", json=False), out=sys.stdout)
        OK tiny 1.0.0 (mlp): 5 files verified, 0 claims
        0
    """
    from axiom.registry.package import PackageError, load_model_package
    from axiom.registry.registry_entry import build_registry_entry, export_registry_entry

    out = out or sys.stdout
    err = err or sys.stderr
    try:
        pkg = load_model_package(args.package)
        entry = build_registry_entry(pkg.manifest, channel=args.channel)
    except (PackageError, ValueError) as exc:
        print(f"REFUSED: {exc}", file=err)
        return 1
    if args.entry:
        export_registry_entry(entry, args.entry)
    meta = pkg.metadata
    claims = [
        {
            "id": c["id"],
            "status": c["status"],
            "evidence": pkg.checks[c["id"]].reason if c["id"] in pkg.checks else (c.get("note") or "none"),
        }
        for c in meta["claims"]
    ]
    if args.json:
        summary = {"ok": True, "id": entry["id"], "files": len(pkg.manifest["files"]) + 1, "claims": claims}
        print(json.dumps(summary, indent=2), file=out)
        return 0
    n_files = len(pkg.manifest["files"]) + 1  # + the manifest
    print(
        f"OK {meta['name']} {meta['version']} ({meta['architecture']}): {n_files} files verified, {len(claims)} claims",
        file=out,
    )
    for c in claims:
        print(f"  {c['id']}: {c['status']} - {c['evidence']}", file=out)
    return 0
