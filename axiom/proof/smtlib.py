"""SMT-LIB 2 export: the network, the input set and the negated property, for any QF_LRA solver.

The file declares the flattened input ``x_i`` and output ``y_j`` as ``Real`` constants, asserts
the input set (a box, or a disjunction of boxes), the network as exact linear equations with one
disjunction per ReLU (the encoding of :func:`axiom.verify.smt.encode_network`, weights as the
exact rationals of the stored floats), and the unsafe region of the property (the disjunction of
conjunctions ``C y <= d``); then ``(check-sat)``. ``unsat`` means no input of the set reaches the
unsafe region: the property is proven for the real-arithmetic network. ``sat`` means a
counterexample exists (for that network). Only standard QF_LRA syntax is written, so z3 and cvc5
(and other SMT-LIB 2.6 solvers) read the same file; :func:`axiom.proof.run_solver` runs them.

Example:
    >>> from axiom import Dense, Sequential, relu
    >>> from axiom.verify import Box, OutputBounds
    >>> net = Sequential(Dense(2, 2, relu), Dense(2, 1))
    >>> text = export_smtlib(net, OutputBounds(upper=100.0, over=Box(-1, 1, shape=(2,))))
    >>> "(set-logic QF_LRA)" in text and text.rstrip().endswith("(exit)")
    True
"""

from __future__ import annotations

import os
from typing import Any

from axiom.proof._rational import resolve_spec
from axiom.verify.concrete import model_output_size
from axiom.verify.sets import InputSet
from axiom.verify.smt import _clauses_and_condition, encode_network

__all__ = ["export_smtlib"]

HEADER = """\
; Axiom proof export: SMT-LIB 2 (QF_LRA), {what}.
; Query: is there an input x in the input set whose output y lies in the unsafe region
; (the negation of the property)?  unsat = the property is PROVEN; sat = it is FALSIFIED.
; Machine-checked: the solver that answers this file (z3, cvc5, ...) decides the formula below.
;   Axiom's tests run z3 and cvc5 on such files and require unsat for proven properties and
;   sat for falsified ones.
; Not machine-checked: that this formula is the deployed model. Weights, biases and bounds are
;   the exact rationals of the stored float values; the formula is the real-arithmetic network.
;   Floating-point rounding of deployed inference (float32 sums, fused multiply-adds, kernel
;   order) is not covered, nor is the ONNX/PyTorch import that produced the weights.
{bounds_note}"""

BOUNDS_NOTE_ON = """\
; ASSUMED, not checked by the solver: the asserted neuron bounds (l <= z <= u) come from Axiom's
;   CROWN bounds (float64, rounded outward); an unsat answer relies on them being sound.
"""
BOUNDS_NOTE_OFF = "; No auxiliary bounds are asserted: the formula is the network alone (self-contained).\n"


def export_smtlib(
    model: Any,
    prop_or_condition: Any,
    input_set: InputSet | None = None,
    path: str | os.PathLike[str] | None = None,
    *,
    prefix_bounds: bool = False,
    name: str = "network",
) -> str:
    """Write (if ``path``) and return the SMT-LIB 2 text of "``model`` violates the property".

    Args:
        model: an axiom model of layers that :func:`axiom.verify.smt.encode_network` supports.
        prop_or_condition: a Property (its input set is used) or an output condition / unsafe clauses.
        input_set: the input set (Box, LinfBall, BoxUnion); overrides the property's.
        path: where to write the file (UTF-8); None only returns the text.
        prefix_bounds: also assert Axiom's CROWN bounds to fix stable ReLUs (much faster on
            larger networks; the header then says the bounds are assumed, not solver-checked).
        name: a label for the header.

    Example:
        >>> from axiom import Dense
        >>> from axiom.verify import Box, OutputBounds
        >>> text = export_smtlib(Dense(1, 1), OutputBounds(upper=5.0, over=Box(0, 1, shape=(1,))))
        >>> text.count("(declare-fun x_0 () Real)"), text.count("(check-sat)")
        (1, 1)
    """
    condition, input_set = resolve_spec(prop_or_condition, input_set)
    clauses, _ = _clauses_and_condition(model, condition)
    enc = encode_network(model, input_set, prefix_bounds=prefix_bounds)
    z3 = enc.z3
    solver = z3.Solver(ctx=enc.ctx)
    solver.add(*enc.constraints)
    solver.add(enc.region(clauses))
    body = solver.to_smt2()
    lines = [
        ln
        for ln in body.splitlines()
        if not ln.startswith(("; benchmark generated", "(set-info :status", "(check-sat)"))
    ]
    n_in, n_out = len(enc.inputs), model_output_size(model)
    what = f"{name}: {n_in} input(s), {n_out} output(s), {enc.info['relus']} ReLU neurons"
    header = HEADER.format(what=what, bounds_note=BOUNDS_NOTE_ON if prefix_bounds else BOUNDS_NOTE_OFF)
    if enc.post is not None:
        header += "; The final Softmax/LogSoftmax is dropped: the property compares outputs only (order-preserving).\n"
    text = header + "(set-logic QF_LRA)\n" + "\n".join(lines).strip() + "\n(check-sat)\n(exit)\n"
    if path is not None:
        with open(path, "w", encoding="utf-8") as f:
            f.write(text)
    return text
