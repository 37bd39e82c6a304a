"""Build, save and load verification certificates (canonical JSON, optionally signed).

:func:`generate_certificate` turns a formal ``proven`` or ``falsified`` result into a
certificate: the subject (model digests and architecture), the property (its JSON, its VNN-LIB
text, the unsafe clauses and the input boxes, floats stored exactly), the verdict, the method,
the witness, the numeric semantics and the tool versions. The witness of a ``falsified`` result
is its counterexample; the witness of a ``proven`` one is a branch-and-bound proof
(:func:`axiom.verify.bab.branch_and_bound` with ``record=True`` re-proves the property and
records its leaves: boxes, ReLU splits and multipliers), available for Dense/ReLU chains only.
:func:`axiom.cert.check` re-derives every claim independently.

Example:
    >>> import numpy as np
    >>> from axiom import Dense, Sequential, manual_seed, relu, verify
    >>> from axiom.verify import Box, OutputBounds
    >>> manual_seed(0); m = Sequential(Dense(2, 8, relu), Dense(8, 1))
    >>> res = verify(m, OutputBounds(upper=100.0, over=Box(-np.ones(2), np.ones(2))))
    >>> cert = generate_certificate(res, m)
    >>> cert["verdict"], cert["witness"]["kind"]
    ('proven', 'bab-proof')
"""

from __future__ import annotations

import json
import platform
from pathlib import Path
from typing import Any

import numpy as np

from axiom.cert.canonical import canonical_json
from axiom.cert.checker import CERT_FORMAT, check
from axiom.cert.subject import describe_model, digests_of

__all__ = ["NUMERIC_SEMANTICS", "CertificateError", "generate_certificate", "load_certificate", "save_certificate"]

#: What a certificate's claims mean numerically (stored in every certificate).
NUMERIC_SEMANTICS = {
    "floats": "every number is stored exactly as float.hex() of its float64 value (float32 values widen exactly)",
    "network": (
        "the network is the real-valued function of the stored weights (float32 weights read exactly "
        "as rationals): Dense y = x W + b, ReLU max(0, x)"
    ),
    "proof": (
        "a proof bounds that real-valued function on every real input of the stored input boxes: "
        "CROWN linear bounds in float64 with every rounding error bounded and added outward, "
        "combined exactly (rational arithmetic) with the recorded multipliers"
    ),
    "counterexample": (
        "the counterexample input lies in the input set exactly; its output is in the unsafe region "
        "both in exact rational arithmetic and when replayed in the model dtype"
    ),
    "not_covered": (
        "a proof does not cover the float32 rounding of a deployed implementation (outputs computed in "
        "float32 may differ from the real-valued network by rounding), nor NaN/Inf inputs, nor any "
        "input outside the stored boxes"
    ),
}


class CertificateError(RuntimeError):
    """A certificate cannot be produced (no witness) or a loaded one is not authentic.

    Example:
        >>> str(CertificateError("no witness"))
        'no witness'
    """


def _versions() -> dict[str, str]:
    import axiom

    return {"axiom": axiom.__version__, "numpy": np.__version__, "python": platform.python_version()}


def _pick(result: Any, index: int | None) -> Any:
    if type(result).__name__ == "VerificationResult":
        results = list(result)
        if index is None:
            if len(results) != 1:
                raise ValueError(f"generate_certificate: the result holds {len(results)} properties; pass index=")
            index = 0
        return results[index]
    return result


def generate_certificate(
    result: Any,
    model: Any,
    *,
    index: int | None = None,
    timeout: float = 30.0,
    mode: str = "auto",
    branching: str = "auto",
    self_check: bool = True,
) -> dict[str, Any]:
    """A certificate (a JSON-ready dict) for a formal ``proven`` or ``falsified`` result of ``model``.

    Args:
        result: a ``VerificationResult`` (one property, or pick one with ``index``) or a
            ``PropertyResult``, from ``verify(model, property)`` without data.
        model: the verified model (an axiom model or an imported ONNX model).
        timeout: seconds for re-proving with branch-and-bound (``proven`` results).
        mode: branch-and-bound mode for the proof: ``"auto"``, ``"input"`` or ``"relu"``.
        branching: branch-and-bound input branching (``"auto"``, ``"smart"``, ``"widest"``,
            ``"lookahead"``; the last two may ReLU-split deep input domains).
        self_check: run :func:`axiom.cert.check` on the new certificate and raise if it fails.

    Raises:
        CertificateError: the result is neither proven nor falsified; a proven model is not a
            Dense/ReLU chain ("no checkable witness for this model kind yet"); the proof could
            not be reproduced within ``timeout``; or the self-check failed.

    Example:
        >>> import numpy as np
        >>> from axiom import Dense, Sequential, verify
        >>> from axiom.verify import Box, OutputBounds
        >>> m = Sequential(Dense(1, 1)); m[0].weight.data[:] = 1.0; m[0].bias.data[:] = 0.0
        >>> res = verify(m, OutputBounds(upper=0.5, over=Box([-1.0], [1.0])))
        >>> generate_certificate(res, m)["witness"]["kind"]
        'counterexample'
    """
    from axiom.verify.bab import _piece_box, branch_and_bound
    from axiom.verify.concrete import model_input_shape, model_output_size
    from axiom.verify.vnnlib import write_vnnlib

    pr = _pick(result, index)
    if getattr(pr, "kind", "formal") != "formal" or pr.status not in ("proven", "falsified"):
        raise CertificateError(
            f"generate_certificate: only formal proven or falsified results have a witness (got {pr.status!r})"
        )
    prop = pr.property
    inner = model.model if type(model).__name__ == "OnnxModel" else model
    in_shape = tuple(int(s) for s in model_input_shape(inner))
    n_out = int(model_output_size(inner))
    if prop.input_set is None:
        raise CertificateError("generate_certificate: the property has no input set")
    input_set = prop.input_set.bind(in_shape)
    clauses = prop.condition.unsafe_region(n_out)
    if clauses is None:
        raise CertificateError(f"generate_certificate: {type(prop.condition).__name__} has no linear unsafe region")
    pieces = input_set.boxes() if type(input_set).__name__ == "BoxUnion" else [input_set]
    boxes = [_piece_box(p) for p in pieces]
    arch, tensors = describe_model(inner)
    cert: dict[str, Any] = {
        "format": CERT_FORMAT,
        "subject": {"architecture": arch, "digests": digests_of(arch, tensors), "model_dtype": _dtype(tensors)},
        "property": {
            "name": prop.name,
            "json": prop.to_json(),
            "vnnlib": write_vnnlib(prop, n_outputs=n_out),
            "input_shape": list(in_shape),
            "n_outputs": n_out,
            "input_boxes": [{"lower": lo.reshape(-1), "upper": hi.reshape(-1)} for lo, hi in boxes],
            "clauses": [{"C": np.asarray(c.C, np.float64), "d": np.asarray(c.d, np.float64)} for c in clauses],
        },
        "verdict": pr.status,
        "numeric_semantics": NUMERIC_SEMANTICS,
        "tools": _versions(),
    }
    if pr.status == "falsified":
        if pr.counterexample is None:
            raise CertificateError("generate_certificate: the falsified result carries no counterexample")
        x = np.asarray(pr.counterexample).reshape(-1)
        y = np.asarray(inner(np.asarray(pr.counterexample).reshape(1, *in_shape).astype(x.dtype)))
        y = np.asarray(getattr(y, "data", y)).reshape(-1)
        cert["method"] = {"verify": pr.method, "witness": "counterexample"}
        cert["witness"] = {"kind": "counterexample", "input": x.astype(np.float64), "output": y.astype(np.float64)}
    else:
        from axiom.cert.checker import _chain, _tensor_names

        if _chain(arch, dict(tensors), _tensor_names(arch, tensors)) is None:
            raise CertificateError(
                "generate_certificate: no checkable witness for this model kind yet (proofs are "
                "certified for Dense/ReLU chains only; falsified results work for any model the checker evaluates)"
            )
        bab = branch_and_bound(
            inner, input_set, prop.condition, record=True, timeout=timeout, mode=mode, branching=branching
        )
        if bab.status != "proven" or not bab.leaves:
            raise CertificateError(
                f"generate_certificate: the proof could not be reproduced within the budget "
                f"(branch-and-bound: {bab.status} after {bab.time_s:.1f} s, timeout={timeout} s)"
            )
        cert["method"] = {
            "verify": pr.method,
            "witness": "branch_and_bound",
            "bab_mode": bab.mode,
            "domains": bab.domains,
            "time_s": round(bab.time_s, 3),
        }
        margins = bab.info.get("clause_margins")
        cert["witness"] = {"kind": "bab-proof", "mode": bab.mode, "leaves": bab.leaves}
        if margins is not None:  # informational: the search's smallest margin per clause (not a claim)
            cert["method"]["search_clause_margins"] = [float(v) for v in margins]
    cert = json.loads(canonical_json(cert))
    if pr.status == "proven":
        _refit_multipliers(cert, inner)
    if self_check:
        res = check(cert, inner)
        if not res.valid:
            raise CertificateError(f"generate_certificate: the new certificate does not check: {res.reason}")
    return cert


def _refit_multipliers(cert: dict[str, Any], model: Any) -> None:
    """Re-solve the multipliers of the leaves whose recorded ones do not hold on the checker's bounds.

    The search intersects each domain's intervals with its parent's; the checker rebuilds the
    split tree from the leaves and may take the splits in another order, so its bounds (sound,
    but not identical) can miss a thin margin. For such a leaf, the LP of
    :mod:`axiom.verify.bab._lp` on the checker's own linear bounds gives new multipliers (the
    checker re-evaluates them exactly, so nothing here needs to be trusted).
    """
    from axiom.cert.canonical import hexes
    from axiom.cert.checker import CheckError, _run
    from axiom.verify.bab._lp import _solve

    n_out = int(cert["property"]["n_outputs"])
    cl = cert["property"]["clauses"]
    d = np.concatenate([hexes(c["d"]).reshape(-1) for c in cl])
    owner = np.concatenate([np.full(len(c["d"]), k) for k, c in enumerate(cl)])
    del n_out

    def refit(leaf: dict[str, Any], lin: Any) -> None:
        fA, fc, fe, gA, gc, ge = lin
        lo, hi = hexes(leaf["lower"]).reshape(-1), hexes(leaf["upper"]).reshape(-1)
        ns = len(leaf["splits"])
        w = np.zeros(len(d))
        mu = np.zeros((len(cl), ns))
        for k in range(len(cl)):
            rows = np.flatnonzero(owner == k)
            sol = _solve(fA[rows], fc[rows] - fe[rows] - d[rows], gA, gc - ge, lo, hi)
            if sol is not None:
                w[rows] = np.maximum(sol[0], 0.0)
                mu[k] = np.maximum(sol[1], 0.0)
        leaf["weights"] = [float(v).hex() for v in w]
        leaf["mu"] = [[float(v).hex() for v in row] for row in mu] if ns else []
        leaf["empty"] = False

    try:
        _run(cert, model, refit=refit)
    except CheckError:
        pass  # reported by the self-check (or by the user's check)


def _dtype(tensors: list[tuple[str, np.ndarray]]) -> str:
    return str(tensors[0][1].dtype) if tensors else "float32"


def save_certificate(cert: dict[str, Any], path: str | Path, key: Any = None) -> Path:
    """Write ``cert`` as canonical JSON, or as a signed DSSE envelope when an Ed25519 ``key`` is given.

    ``key``: an ``Ed25519PrivateKey`` or its PEM bytes (see :func:`axiom.cert.generate_keypair`).

    Example:
        >>> import os, tempfile
        >>> p = save_certificate({"format": "axiom-certificate/1"}, os.path.join(tempfile.mkdtemp(), "c.json"))
        >>> p.read_text()
        '{"format":"axiom-certificate/1"}'
    """
    path = Path(path)
    if key is None:
        text = canonical_json(cert)
    else:
        from axiom.cert.signing import sign_envelope

        text = canonical_json(sign_envelope(cert, key))
    path.write_text(text, encoding="utf-8")
    return path


def load_certificate(path: str | Path, public_key: Any = None) -> dict[str, Any]:
    """Read a certificate (plain JSON or DSSE envelope); with ``public_key``, verify the envelope's signature.

    Raises:
        CertificateError: a key was given but the file is unsigned, or the signature does not verify.

    Example:
        >>> import os, tempfile
        >>> p = save_certificate({"verdict": "proven"}, os.path.join(tempfile.mkdtemp(), "c.json"))
        >>> load_certificate(p)
        {'verdict': 'proven'}
    """
    data = json.loads(Path(path).read_text(encoding="utf-8"))
    if isinstance(data, dict) and "payload" in data and "payloadType" in data:
        from axiom.cert.signing import open_envelope

        return open_envelope(data, public_key)
    if public_key is not None:
        raise CertificateError("load_certificate: a public key was given but the certificate is not signed")
    return data
