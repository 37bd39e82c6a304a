"""Lean 4 export: a theory file that STATES the property of the network over Q (no proof).

The file defines the same semantics as the Coq export (:mod:`axiom.proof.coq`): ``dot``,
``relu``, ``layerEval``, ``netEval``, ``inbox`` and ``avoids`` over Mathlib's ``ℚ``; lists the
weights, input boxes and unsafe clauses as exact rationals; and states ``property_holds``. The
proof is ``sorry``: Lean is not installed where Axiom runs its tests, so neither the file nor a
proof has been checked by Lean. The header of every file says so.

Example:
    >>> from axiom import Dense
    >>> from axiom.verify import Box, OutputBounds
    >>> text = export_lean(Dense(1, 1), OutputBounds(upper=5.0, over=Box(0, 1, shape=(1,))))
    >>> "theorem property_holds" in text and "sorry" in text
    True
"""

from __future__ import annotations

import os
from fractions import Fraction
from typing import Any

from axiom.proof._listing import listings, write_text
from axiom.proof._rational import RationalProblem, rational_problem
from axiom.verify.sets import InputSet

__all__ = ["LEAN_STATEMENT", "export_lean", "lean_rat"]

LEAN_STATEMENT = "theorem property_holds : ∀ x : List ℚ, inInputSet x → avoids unsafe (netEval net x)"

HEADER = """\
/-
Axiom proof export: Lean 4 statement file, {what}.

NOT MACHINE-CHECKED. Lean was not run on this file: it states the theorem `property_holds`
(for every input x in the input set, the output of the network over ℚ avoids the unsafe
region, i.e. the property holds) and leaves the proof as `sorry`. It needs Mathlib (for ℚ).
A machine-checked proof of the same statement is given by Axiom's Coq export (checked by coqc)
and by the SMT-LIB export (unsat from z3 / cvc5).

Not covered even by a proof of this theorem: that the ℚ network is the deployed model. The
weights and biases are the exact rationals of the stored float values; floating-point rounding
of deployed inference and the import that produced the weights are not modelled.
-/
"""

PREAMBLE = """\
import Mathlib.Data.Rat.Defs

namespace AxiomProof

def dot : List ℚ → List ℚ → ℚ
  | a :: w, v :: x => a * v + dot w x
  | _, _ => 0

def relu (z : ℚ) : ℚ := if z ≤ 0 then 0 else z

/-- a layer: (apply ReLU?, one (weights, bias) pair per output neuron) -/
abbrev Layer := Bool × List (List ℚ × ℚ)

def neuron (r : Bool) (wb : List ℚ × ℚ) (x : List ℚ) : ℚ :=
  let z := dot wb.1 x + wb.2
  if r then relu z else z

def layerEval (L : Layer) (x : List ℚ) : List ℚ := L.2.map (fun wb => neuron L.1 wb x)

def netEval : List Layer → List ℚ → List ℚ
  | [], x => x
  | L :: N, x => netEval N (layerEval L x)

def inbox : List (ℚ × ℚ) → List ℚ → Prop
  | (l, h) :: b, v :: x => l ≤ v ∧ v ≤ h ∧ inbox b x
  | [], [] => True
  | _, _ => False

/-- the output meets no unsafe clause; a clause is a conjunction of atoms (c, d) = (c ⬝ y ≤ d) -/
def avoids (unsafe : List (List (List ℚ × ℚ))) (y : List ℚ) : Prop :=
  ∀ cl ∈ unsafe, ∃ cd ∈ cl, cd.2 < dot cd.1 y
"""


def lean_rat(v: Fraction) -> str:
    """A ℚ literal for Lean 4 (``(n / d : ℚ)``, or the integer).

    Example:
        >>> lean_rat(Fraction(-3, 10)), lean_rat(Fraction(2))
        ('(-3 / 10 : ℚ)', '(2 : ℚ)')
    """
    if v.denominator == 1:
        return f"({v.numerator} : ℚ)"
    return f"({v.numerator} / {v.denominator} : ℚ)"


def _instance(problem: RationalProblem) -> str:
    sep = ",\n    "
    layers, boxes, clauses = listings(problem, lean_rat, "true", "false")
    return f"""
def net : List Layer :=
  [ {sep.join(layers)} ]

/-- the input set: the union of these boxes, one (lower, upper) pair per input -/
def boxes : List (List (ℚ × ℚ)) :=
  [ {sep.join(boxes)} ]

def unsafe : List (List (List ℚ × ℚ)) :=
  [ {sep.join(clauses)} ]

def inInputSet (x : List ℚ) : Prop := ∃ b ∈ boxes, inbox b x

{LEAN_STATEMENT} := by
  sorry -- NOT PROVED HERE: see the header

end AxiomProof
"""


def export_lean(
    model: Any,
    prop_or_condition: Any,
    input_set: InputSet | None = None,
    path: str | os.PathLike[str] | None = None,
    *,
    name: str = "network",
) -> str:
    """Write (if ``path``) and return a Lean 4 file stating the property (proof left as ``sorry``).

    Example:
        >>> from axiom import Dense
        >>> from axiom.verify import Box, OutputBounds
        >>> net = Dense(1, 1)
        >>> net.weight.data[:] = 0.5; net.bias.data[:] = 0.0
        >>> "([(1 / 2 : ℚ)], (0 : ℚ))" in export_lean(net, OutputBounds(upper=1.0, over=Box(0, 1, shape=(1,))))
        True
    """
    problem = rational_problem(model, prop_or_condition, input_set)
    what = f"{name}: {len(problem.layers)} affine layers, {problem.n_inputs} inputs, {problem.n_outputs} outputs"
    return write_text(HEADER.format(what=what) + "\n" + PREAMBLE + _instance(problem), path)
