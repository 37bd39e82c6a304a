"""Formal verification with sound bounds (``kind="formal"``).

For each property: a cheap attack first (a replayed counterexample gives ``falsified``), then
bound propagation, escalating IBP -> CROWN -> alpha-CROWN until the property is proven, then
complete search by branch-and-bound (:mod:`axiom.verify.bab`: input splitting for at most 16
inputs, ReLU splitting above; Dense/ReLU chains over boxes) with attacks inside the search, then
whatever budget is left on counterexample search. Low-dimensional Dense/ReLU chains go straight
from the attack to branch-and-bound (its root bound is CROWN). What none of them settles is
``unknown``.

Semantics of ``proven``: for every input of the set, the exact real-arithmetic network defined
by the model's weights satisfies the condition; bounds are computed in float64 with outward
rounding margins. The float32 execution error of a deployed model is not included.

Example:
    >>> import numpy as np
    >>> from axiom import Dense, Sequential, relu
    >>> from axiom.verify import Box, OutputBounds
    >>> from axiom.verify.formal import verify_formal
    >>> m = Sequential(Dense(2, 4, relu), Dense(4, 1))
    >>> r = verify_formal(m, [OutputBounds(upper=1e3, over=Box(0, 1, shape=(2,)))])
    >>> r.kind, r.status
    ('formal', 'proven')
"""

from __future__ import annotations

import time
from collections.abc import Iterable
from typing import Any

import numpy as np

from axiom.nn.activations import Softmax
from axiom.nn.containers import Sequential
from axiom.verify.attack import search_counterexample
from axiom.verify.concrete import Replayer, model_input_shape, model_output_size
from axiom.verify.empirical import resolve_labels
from axiom.verify.properties import Clause, Finite, ProbabilitiesValid, Property
from axiom.verify.result import PropertyResult, VerificationResult
from axiom.verify.sets import InputSet

METHODS = ("ibp", "crown", "alpha-crown")

#: Branch-and-bound budget in seconds when ``verify`` is given no timeout.
BAB_DEFAULT_TIMEOUT = 10.0
SEMANTICS = (
    "proven = holds for the exact real-arithmetic network defined by the weights, for every input in the set; "
    "bounds computed in float64 with outward rounding margins; float32 execution error not included"
)


def _methods(method: str) -> tuple[str, ...]:
    if method == "auto":
        return METHODS
    if method not in (*METHODS, "smt"):
        raise ValueError(f"verify: method must be 'auto', 'smt' or one of {METHODS}, got {method!r}")
    return (method,)


def _pieces(input_set: InputSet) -> list[InputSet]:
    return input_set.boxes() if type(input_set).__name__ == "BoxUnion" else [input_set]


def _prove_clauses(model: Any, input_set: InputSet, clauses: list[Clause], method: str) -> tuple[bool, list[float]]:
    """Are all clauses empty on the set? Margin per clause: max_i (lower(C_i y) - d_i) > 0 refutes it."""
    from axiom.verify.bounds import compute_bounds

    C = np.concatenate([c.C for c in clauses])
    d = np.concatenate([c.d for c in clauses])
    worst = np.full(len(clauses), np.inf)
    for piece in _pieces(input_set):
        lower = compute_bounds(model, piece, method, C=C).lower
        gaps = lower - d
        start = 0
        for k, c in enumerate(clauses):
            rows = slice(start, start + len(c.d))
            worst[k] = min(worst[k], float(np.max(gaps[rows])))
            start += len(c.d)
    return bool(np.all(worst > 0)), worst.tolist()


def _output_bounds(model: Any, input_set: InputSet, method: str) -> tuple[np.ndarray, np.ndarray, Any]:
    from axiom.verify.bounds import compute_bounds

    lows, ups, layers = [], [], []
    for piece in _pieces(input_set):
        res = compute_bounds(model, piece, method)
        lows.append(np.ravel(res.lower))
        ups.append(np.ravel(res.upper))
        layers.extend(getattr(res, "layers", []) or [])
    return np.min(lows, axis=0), np.max(ups, axis=0), layers


def _last_layer(model: Any) -> Any:
    layer = model
    while isinstance(layer, Sequential):  # subclasses too (@axiom models are Sequentials)
        layer = layer.layers[-1]
    return layer


def _magnitude(lo: Any, hi: Any) -> float:
    """Largest |bound| (inf when any bound is not finite)."""
    both = np.concatenate([np.ravel(lo), np.ravel(hi)]).astype(np.float64)
    return float(np.max(np.abs(both), initial=0.0)) if np.all(np.isfinite(both)) else np.inf


def _prove_nonlinear(
    model: Any, prop: Property, input_set: InputSet, method: str, dtype: np.dtype
) -> tuple[bool, str, dict]:
    """ValidProbabilities and Finite conditions from output (and intermediate) bounds."""
    lower, upper, layers = _output_bounds(model, input_set, method)
    info = {"output_lower_min": float(np.min(lower)), "output_upper_max": float(np.max(upper))}
    cond = prop.condition
    if isinstance(cond, ProbabilitiesValid):
        last = _last_layer(model)
        if not (isinstance(last, Softmax) and last.axis in (-1, len(model_input_shape(model)))):
            return False, "the output is not a softmax over the last axis, so its sum cannot be bounded", info
        n = model_output_size(model)
        u = float(np.finfo(dtype).eps) / 2
        sum_err = (n + 2) * 4 * u  # float rounding of a stable softmax and of the sum, generous
        if sum_err > cond.tol:
            return False, f"float rounding of the sum ({sum_err:.2g}) may exceed tol={cond.tol}", info
        ok = bool(np.all(lower >= 0) and np.all(upper <= 1))
        msg = f"entries in [0, 1] by bounds; sum is 1 exactly for a softmax (rounding <= {sum_err:.2g})"
        return ok, msg if ok else "bounds leave [0, 1]", info
    if isinstance(cond, Finite):
        limit = float(np.finfo(dtype).max) / 2
        finite = bool(np.all(np.isfinite(lower)) and np.all(np.isfinite(upper)))
        small = finite and bool(np.max(np.abs(np.concatenate([lower, upper]))) < limit)
        for _, lo, hi in layers:
            lo, hi = np.asarray(lo), np.asarray(hi)
            if (
                not (np.all(np.isfinite(lo)) and np.all(np.isfinite(hi)))
                or np.max(np.abs(np.r_[lo.ravel(), hi.ravel()]), initial=0) >= limit
            ):
                small = False
        msg = f"every output and intermediate bound is finite and below {limit:.3g} (half of {dtype.name} max)"
        return small, msg if small else "some bound is infinite or too large to rule out overflow", info
    return False, f"no formal procedure for {type(cond).__name__}", info


def _unsupported(model: Any) -> list[str]:
    from axiom.verify.bounds import supported

    return supported(model)


def _falsified(prop: Property, cex: Any, replayer: Replayer, t_start: float) -> PropertyResult:
    return PropertyResult(
        prop,
        "formal",
        "falsified",
        method=f"attack:{cex.found_by}",
        counterexample=cex.input.astype(replayer.dtype),
        output=cex.output,
        output64=cex.output64,
        runtime_s=time.perf_counter() - t_start,
        message="counterexample replayed through the model in its own dtype and in float64",
    )


def _bab_chain(model: Any, input_set: InputSet, in_shape: tuple[int, ...]) -> Any:
    from axiom.verify.bab import applicable

    return applicable(model, input_set, in_shape)


def _bab_input_dims() -> int:
    from axiom.verify.bab import INPUT_SPLIT_MAX_DIM

    return INPUT_SPLIT_MAX_DIM


def _run_bab(model: Any, input_set: InputSet, prop: Property, left: float, seed: int, replayer: Replayer) -> Any:
    from axiom.verify.bab import branch_and_bound

    return branch_and_bound(model, input_set, prop.condition, timeout=max(left, 0.0), seed=seed, replayer=replayer)


def _bab_info(out: Any) -> dict:
    return {
        "status": out.status,
        "mode": out.mode,
        "domains": out.domains,
        "verified_fraction": out.verified_fraction,
        "max_queue": out.max_queue,
        "time_s": out.time_s,
    }


def _budget_text(timeout: float | None, share: float | None, n_props: int) -> str:
    """How a timeout message names the budget: the whole timeout, or this property's share of it."""
    if n_props == 1 or share is None:
        return f"{timeout} s"
    return f"{share:.3g} s, this property's share of the {timeout} s budget"


def verify_formal(
    model: Any,
    properties: Iterable[Property],
    *,
    method: str = "auto",
    timeout: float | None = None,
    attack: bool = True,
    seed: int = 0,
    bab: bool = True,
) -> VerificationResult:
    """Prove, falsify or give up on each property; see the module docstring.

    Example:
        >>> from axiom import Dense, Sequential, manual_seed
        >>> from axiom.verify import Box, OutputBounds
        >>> manual_seed(0); m = Sequential(Dense(2, 1))
        >>> verify_formal(m, [OutputBounds(upper=-1e3, over=Box(0, 1, shape=(2,)))]).status
        'falsified'
    """
    t0 = time.perf_counter()
    overall = None if timeout is None else t0 + float(timeout)
    methods = _methods(method)
    model.eval()
    in_shape = model_input_shape(model)
    n_out = model_output_size(model)
    replayer = Replayer(model)
    rng = np.random.default_rng(seed)
    results = []
    props = resolve_labels(model, list(properties))
    for index, prop in enumerate(props):
        t1 = time.perf_counter()
        # Each property gets an equal share of what is left, so one undecidable property cannot
        # starve the ones after it; time a property does not use carries over to the rest.
        deadline = None if overall is None else t1 + max(overall - t1, 0.0) / (len(props) - index)
        budget = _budget_text(timeout, None if deadline is None else deadline - t1, len(props))
        if prop.input_set is None:
            raise ValueError(
                f"formal verification of {prop.name} needs an input set, e.g. over=Box(0, 1, shape={in_shape}); "
                "or pass data=... for an empirical check"
            )
        input_set = prop.input_set.bind(in_shape)
        clauses = prop.condition.unsafe_region(n_out)
        if attack:
            cex = search_counterexample(model, input_set, prop.condition, rng, deadline=deadline, replayer=replayer)
            if cex is not None:
                results.append(_falsified(prop, cex, replayer, t1))
                continue
        if method == "smt":  # exact Z3 decision (small piecewise-linear nets), counterexamples replayed
            from axiom.verify.smt import smt_verify

            left = BAB_DEFAULT_TIMEOUT if deadline is None else max(deadline - time.perf_counter(), 0.0)
            res = smt_verify(model, prop, timeout=left).to_property_result(prop)
            res.runtime_s = time.perf_counter() - t1
            results.append(res)
            continue
        status, used, message, bounds, timed_out = "unknown", None, "", {}, False
        chain = _bab_chain(model, input_set, in_shape) if bab and clauses is not None and method == "auto" else None
        direct = chain is not None and chain.n_in <= _bab_input_dims()
        for m in ("ibp",) if direct else methods:
            if deadline is not None and time.perf_counter() > deadline:
                timed_out, message = True, f"timeout after {budget}"
                break
            used = m
            unsupported = _unsupported(model)
            if unsupported:
                used = None
                message = f"no sound bound transformer for {', '.join(unsupported)}; the bounds cannot decide"
                break
            if clauses is not None:
                ok, margins = _prove_clauses(model, input_set, clauses, m)
                bounds = {"method": m, "clause_margins": margins}
                message = (
                    "every unsafe clause is empty by bounds"
                    if ok
                    else (f"worst clause margin {min(margins):.4g} <= 0: bounds are not tight enough")
                )
            else:
                ok, message, info = _prove_nonlinear(model, prop, input_set, m, replayer.dtype)
                bounds = {"method": m, **info}
            if ok:
                status = "proven"
                break
        if status != "proven" and chain is not None and not timed_out:
            left = BAB_DEFAULT_TIMEOUT if deadline is None else deadline - time.perf_counter()
            out = _run_bab(model, input_set, prop, left, seed, replayer)
            used = f"bab-{out.mode}"
            bounds = {**bounds, "bab": _bab_info(out)}
            if out.status == "proven" and out.info.get("clause_margins") is not None:
                # smallest margin over the verified leaves: every clause is refuted on every leaf
                bounds["clause_margins"] = [float(v) for v in out.info["clause_margins"]]
            if out.status == "falsified":
                res = _falsified(prop, out.counterexample, replayer, t1)
                res.bounds = bounds
                results.append(res)
                continue
            if out.status == "proven":
                status = "proven"
                message = f"branch-and-bound ({out.mode} splits): every one of {out.domains} sub-domains is verified"
            else:
                message = f"branch-and-bound ({out.mode} splits) stopped after {out.domains} sub-domains"
                if out.mode == "input":
                    message += f", {100 * out.verified_fraction:.6g}% of the input volume verified"
                if deadline is not None and time.perf_counter() > deadline:
                    timed_out = True
                    message += f"; timeout after {budget}"
        if status != "proven" and attack and not timed_out:
            # Bounds could not prove it: spend what is left of the budget looking for a violation.
            rounds = 50 if deadline is not None else 3
            many = 4096 if int(np.prod(in_shape)) <= 16 else 512  # low-dimensional inputs: sample densely
            cex = search_counterexample(
                model,
                input_set,
                prop.condition,
                rng,
                n_samples=many,
                rounds=rounds,
                pgd_restarts=16,
                pgd_steps=100,
                deadline=deadline,
                replayer=replayer,
            )
            if cex is not None:
                results.append(_falsified(prop, cex, replayer, t1))
                continue
            if deadline is not None and time.perf_counter() > deadline:
                timed_out = True
                message += f"; no counterexample found before the timeout ({budget})"
        if status != "proven" and not timed_out and chain is None:
            message += "; branch-and-bound needs a Dense/ReLU chain over a box or L-inf ball"
        results.append(
            PropertyResult(
                prop,
                "formal",
                status,
                method=used,
                bounds=bounds,
                runtime_s=time.perf_counter() - t1,
                timed_out=timed_out,
                message=message,
            )
        )
    warnings = [SEMANTICS]
    return VerificationResult("formal", results, time.perf_counter() - t0, warnings)
