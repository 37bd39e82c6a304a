"""Isabelle/HOL export: a theory file that STATES the property of the network over rat (no proof).

The theory defines the same semantics as the Coq export (:mod:`axiom.proof.coq`): ``dot``,
``relu``, ``layer_eval``, ``net_eval``, ``inbox`` and ``avoids`` over ``rat``; lists the
weights, input boxes and unsafe clauses as exact rationals; and states ``property_holds``. The
proof is ``sorry``: Isabelle is not installed where Axiom runs its tests, so the theory has not
been checked by Isabelle. The header of every file says so. The theory is named ``AxiomProof``
(save it as ``AxiomProof.thy``).

Example:
    >>> from axiom import Dense
    >>> from axiom.verify import Box, OutputBounds
    >>> text = export_isabelle(Dense(1, 1), OutputBounds(upper=5.0, over=Box(0, 1, shape=(1,))))
    >>> text.splitlines()[-1], "theorem property_holds" in text
    ('end', True)
"""

from __future__ import annotations

import os
from fractions import Fraction
from typing import Any

from axiom.proof._listing import listings, write_text
from axiom.proof._rational import RationalProblem, rational_problem
from axiom.verify.sets import InputSet

__all__ = ["ISABELLE_STATEMENT", "export_isabelle", "isabelle_rat"]

ISABELLE_STATEMENT = 'theorem property_holds: "ALL x. (EX b : set boxes. inbox b x) --> avoids unsafe (net_eval net x)"'

HEADER = """\
(* Axiom proof export: Isabelle/HOL statement theory, {what}.

   NOT MACHINE-CHECKED. Isabelle was not run on this theory: it states the theorem
   property_holds (for every input x in the input set, the output of the network over rat
   avoids the unsafe region, i.e. the property holds) and leaves the proof as "sorry".
   A machine-checked proof of the same statement is given by Axiom's Coq export (checked by
   coqc) and by the SMT-LIB export (unsat from z3 / cvc5).

   Not covered even by a proof of this theorem: that the rat network is the deployed model.
   The weights and biases are the exact rationals of the stored float values; floating-point
   rounding of deployed inference and the import that produced the weights are not modelled.
*)
"""

PREAMBLE = """\
theory AxiomProof
  imports Complex_Main
begin

fun dot :: "rat list => rat list => rat" where
  "dot (a # w) (v # x) = a * v + dot w x"
| "dot _ _ = 0"

definition relu :: "rat => rat" where
  "relu z = (if z <= 0 then 0 else z)"

(* a layer: (apply ReLU?, one (weights, bias) pair per output neuron) *)
type_synonym layer = "bool * (rat list * rat) list"

definition neuron :: "bool => rat list * rat => rat list => rat" where
  "neuron r wb x = (let z = dot (fst wb) x + snd wb in if r then relu z else z)"

definition layer_eval :: "layer => rat list => rat list" where
  "layer_eval L x = map (%wb. neuron (fst L) wb x) (snd L)"

fun net_eval :: "layer list => rat list => rat list" where
  "net_eval [] x = x"
| "net_eval (L # N) x = net_eval N (layer_eval L x)"

fun inbox :: "(rat * rat) list => rat list => bool" where
  "inbox ((l, h) # b) (v # x) = (l <= v & v <= h & inbox b x)"
| "inbox [] [] = True"
| "inbox _ _ = False"

(* the output meets no unsafe clause; a clause is a conjunction of atoms (c, d) = (c . y <= d) *)
definition avoids :: "(rat list * rat) list list => rat list => bool" where
  "avoids unsafe y = (ALL cl : set unsafe. EX cd : set cl. snd cd < dot (fst cd) y)"
"""


def isabelle_rat(v: Fraction) -> str:
    """A ``rat`` literal for Isabelle/HOL.

    Example:
        >>> isabelle_rat(Fraction(-3, 10)), isabelle_rat(Fraction(2))
        ('(- 3 / 10)', '(2)')
    """
    sign = "- " if v < 0 else ""
    if v.denominator == 1:
        return f"({sign}{abs(v.numerator)})"
    return f"({sign}{abs(v.numerator)} / {v.denominator})"


def _instance(problem: RationalProblem) -> str:
    sep = ",\n    "
    layers, boxes, clauses = listings(problem, isabelle_rat, "True", "False")
    return f"""
definition net :: "layer list" where
  "net = [ {sep.join(layers)} ]"

(* the input set: the union of these boxes, one (lower, upper) pair per input *)
definition boxes :: "(rat * rat) list list" where
  "boxes = [ {sep.join(boxes)} ]"

definition unsafe :: "(rat list * rat) list list" where
  "unsafe = [ {sep.join(clauses)} ]"

{ISABELLE_STATEMENT}
  sorry (* NOT PROVED HERE: see the header *)

end
"""


def export_isabelle(
    model: Any,
    prop_or_condition: Any,
    input_set: InputSet | None = None,
    path: str | os.PathLike[str] | None = None,
    *,
    name: str = "network",
) -> str:
    """Write (if ``path``) and return an Isabelle/HOL theory stating the property (proof ``sorry``).

    Example:
        >>> from axiom import Dense
        >>> from axiom.verify import Box, OutputBounds
        >>> net = Dense(1, 1)
        >>> net.weight.data[:] = -0.25; net.bias.data[:] = 1.0
        >>> "[([(- 1 / 4)], (1))]" in export_isabelle(net, OutputBounds(upper=9.0, over=Box(0, 1, shape=(1,))))
        True
    """
    problem = rational_problem(model, prop_or_condition, input_set)
    what = f"{name}: {len(problem.layers)} affine layers, {problem.n_inputs} inputs, {problem.n_outputs} outputs"
    return write_text(HEADER.format(what=what) + "\n" + PREAMBLE + _instance(problem), path)
