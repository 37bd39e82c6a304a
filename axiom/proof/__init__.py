"""Proof export and external SMT solvers.

- :func:`export_smtlib`: SMT-LIB 2 (QF_LRA) file of the network, the input set and the negated
  property; ``unsat`` from z3 or cvc5 = proven, ``sat`` = falsified.
- :func:`export_coq`: Coq file with the network over Q and a proof that ``coqc`` checks (a
  verified interval checker run inside Coq); :func:`check_coq` runs ``coqc``.
- :func:`export_lean`, :func:`export_isabelle`: Lean 4 / Isabelle theory files that STATE the
  same theorem; they are not machine-checked here and say so in their header.
- :func:`run_solver`: run ``z3`` / ``cvc5`` as a subprocess with time and memory limits.

Every file's header says what is machine-checked and what is not. The weights are the exact
rationals of the stored float values: rounding in deployed float inference is never covered.

Example:
    >>> import os, tempfile
    >>> from axiom import Dense, Sequential, relu
    >>> from axiom.verify import Box, OutputBounds
    >>> from axiom.proof import export_smtlib, run_solver
    >>> net = Sequential(Dense(2, 3, relu), Dense(3, 1))
    >>> path = os.path.join(tempfile.mkdtemp(), "p.smt2")
    >>> _ = export_smtlib(net, OutputBounds(upper=1e6, over=Box(-1, 1, shape=(2,))), path=path)
    >>> run_solver(path, "z3", timeout=30).answer
    'unsat'
"""

from axiom.proof.coq import CoqCheck, check_coq, export_coq
from axiom.proof.isabelle import export_isabelle
from axiom.proof.lean import export_lean
from axiom.proof.runner import SolverAnswer, find_solver, run_solver
from axiom.proof.smtlib import export_smtlib

__all__ = [
    "CoqCheck",
    "SolverAnswer",
    "check_coq",
    "export_coq",
    "export_isabelle",
    "export_lean",
    "export_smtlib",
    "find_solver",
    "run_solver",
]
