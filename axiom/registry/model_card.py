"""A Hugging Face style model card: ``README.md`` with YAML front matter and a Verification section.

Example:
    >>> from axiom import Dense, Sequential, manual_seed
    >>> from axiom.registry import create_metadata
    >>> manual_seed(0); m = Sequential(Dense(2, 1))
    >>> meta = create_metadata(m, name="tiny", architecture="mlp", version="1.0.0")
    >>> card = model_card(meta)
    >>> card.splitlines()[0], "## Verification" in card
    ('---', True)
"""

from __future__ import annotations

import json
from typing import Any

__all__ = ["model_card"]


def _yaml_list(key: str, values: list[str]) -> list[str]:
    if not values:
        return [f"{key}: []"]
    return [f"{key}:"] + [f"  - {json.dumps(v)}" for v in values]


def model_card(metadata: dict[str, Any]) -> str:
    """The model card text for ``metadata`` (front matter, description, details, Verification).

    Every claim is listed with its status and whether a certificate backs it; claims without a
    checkable witness say so.

    Example:
        >>> import numpy as np
        >>> from axiom import Dense, Sequential
        >>> from axiom.registry import create_metadata, verify_and_claim
        >>> from axiom.verify import Box, OutputBounds
        >>> m = Sequential(Dense(1, 1)); m[0].weight.data[:] = 1.0; m[0].bias.data[:] = 0.0
        >>> meta = create_metadata(m, name="id", architecture="linear", version="1.0.0", license="mit")
        >>> _ = verify_and_claim(meta, OutputBounds(upper=2.0, over=Box([-1.0], [1.0])), m, claim_id="bounded")
        >>> print([line for line in model_card(meta).splitlines() if line.startswith("| bounded")][0])
        | bounded | OutputBounds | proven | ibp | certificate `certificates/bounded.json` (re-checked on load) |
    """
    tags = ["axiom", "verified" if any(c.get("checkable") for c in metadata["claims"]) else "unverified"]
    tags += [t for t in metadata.get("tags", []) if t not in tags]
    front = [
        "---",
        f"library_name: {json.dumps('axiom')}",
        f"license: {json.dumps(metadata.get('license', 'unknown'))}",
        f"model_name: {json.dumps(metadata['name'])}",
        f"version: {json.dumps(metadata['version'])}",
        f"architecture: {json.dumps(metadata['architecture'])}",
        *_yaml_list("tags", tags),
        f"weights_sha256: {json.dumps(metadata['weights']['sha256'])}",
        "---",
    ]
    body = [
        "",
        f"# {metadata['name']} {metadata['version']}",
        "",
        metadata.get("description") or f"A {metadata['architecture']} model packaged with axiom.",
        "",
        "## Model details",
        "",
        f"- Architecture: {metadata['architecture']} ({len(metadata.get('layers', []))} layers)",
        f"- Input shape (one example): {metadata.get('input_shape')}",
        f"- Output shape (one example): {metadata.get('output_shape')}",
        f"- Parameters: {metadata.get('parameters')} ({metadata.get('dtype')})",
        f"- Weights SHA-256 (over the tensors): `{metadata['weights']['sha256']}`",
        f"- Framework: axiom {metadata.get('framework', {}).get('version', '?')}",
        "",
        "## Verification",
        "",
    ]
    claims = metadata["claims"]
    if not claims:
        body.append("No verification claims: nothing about this model has been verified.")
    else:
        body += [
            "Each claim was produced by running the axiom verifier on these exact weights.",
            "",
            "| Claim | Property | Status | Method | Evidence |",
            "| --- | --- | --- | --- | --- |",
        ]
        for c in claims:
            if c.get("checkable"):
                evidence = f"certificate `certificates/{c['id']}.json` (re-checked on load)"
            elif c["status"] == "unknown":
                evidence = "undecided: nothing is claimed"
            else:
                evidence = "no checkable witness for this model kind: verifier result only"
            prop = c.get("property", {}).get("name", "?")
            body.append(f"| {c['id']} | {prop} | {c['status']} | {c.get('method')} | {evidence} |")
        body += ["", "Property details:", ""]
        body += [f"- `{c['id']}`: {c.get('description', '')}" for c in claims]
    return "\n".join(front + body) + "\n"
