"""VNN-LIB 1.0 specifications: reader, writer and the VNN-COMP counterexample format.

A VNN-LIB file describes the **unsafe** set of a network ``y = f(x)``: ``X_i`` are the
flattened (row-major) ONNX input, ``Y_j`` the flattened output, and the conjunction of all
``assert`` statements is a formula over both. The property holds (VNN-COMP ``unsat``) when
no input makes the formula true.

:func:`read_vnnlib` turns a file into :class:`~axiom.verify.VnnlibProperty` objects (an input
box or union of boxes, and the unsafe output region as a disjunction of clauses ``C y <= d``);
:func:`parse_vnnlib` gives the neutral syntax tree; :func:`write_vnnlib` writes a property back.

Grammar accepted (a superset of what the competitions' reference parser takes):

- comments ``;`` to the end of the line, any whitespace and line breaks inside S-expressions;
- ``(declare-const X_i Real)`` / ``(declare-const Y_j Real)`` (also ``(declare-fun X_i () Real)``),
  indices ``0..n-1`` without gaps, each declared once and before use;
- ``(assert F)`` where ``F`` is ``(and F ...)``, ``(or F ...)``, ``(not F)``, ``true``, ``false``
  or an atom ``(op t1 t2 ...)`` with ``op`` one of ``<= >= < > =`` (chains like ``(<= a b c)``
  mean ``a <= b and b <= c``), nested arbitrarily (normalised to disjunctive normal form);
- terms: ``X_i``, ``Y_j``, numbers (``-1``, ``+0.5``, ``.5``, ``1e-06``, ``2.5E+3``) and linear
  combinations ``(+ t ...)``, ``(- t)``, ``(- t u ...)``, ``(* c t)``, ``(/ t c)`` with constant
  ``c``;
- ``(check-sat)``, ``(get-model)``, ``(exit)``, ``(set-logic ..)``, ``(set-info ..)`` and
  ``(set-option ..)`` are ignored.

Semantics and restrictions:

- Atoms over inputs must bound a single ``X_i`` by a constant; every disjunct of the DNF must
  bound every ``X_i`` from both sides (its input box). Atoms may not mix ``X`` and ``Y``.
- Each disjunct of the DNF pairs an input box with an output clause (a conjunction of rows
  ``c . y <= d``). Disjuncts are grouped into properties: those with the same box share one
  property (their clauses form its unsafe region), and boxes with the same set of clauses are
  merged into a :class:`~axiom.verify.BoxUnion`. All returned properties must hold.
- Strict ``<``/``>`` are read as ``<=``/``>=`` (and ``not (<= a b)`` as ``a >= b``): this
  enlarges the unsafe set by its boundary, which is sound for proofs (a proof covers the larger
  set) and harmless for counterexamples, which are replayed through the model and re-checked.
- Disjuncts whose box is empty (``lower > upper`` after all bounds) are dropped; if the whole
  specification has no non-empty disjunct, that is an error.

Example:
    >>> from axiom.verify.vnnlib import read_vnnlib, write_vnnlib
    >>> spec = '''
    ... (declare-const X_0 Real) (declare-const X_1 Real)
    ... (declare-const Y_0 Real) (declare-const Y_1 Real)
    ... (assert (>= X_0 -1)) (assert (<= X_0 1))   ; input box
    ... (assert (and (>= X_1 0) (<= X_1 0.5)))
    ... (assert (or (and (>= Y_0 Y_1)) (and (<= Y_1 -1e3))))  ; unsafe outputs
    ... '''
    >>> [prop] = read_vnnlib(spec)
    >>> prop.input_set.lower.tolist(), prop.input_set.upper.tolist()
    ([-1.0, 0.0], [1.0, 0.5])
    >>> [(c.C.tolist(), c.d.tolist()) for c in prop.condition.clauses]
    [([[-1.0, 1.0]], [0.0]), ([[0.0, 1.0]], [-1000.0])]
    >>> [p2] = read_vnnlib(write_vnnlib(prop))
    >>> [c.C.tolist() for c in p2.condition.clauses] == [c.C.tolist() for c in prop.condition.clauses]
    True
"""

from __future__ import annotations

import bisect
import os
import re
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from axiom.verify.properties import Clause, Property, VnnlibProperty
from axiom.verify.sets import Box, BoxUnion, InputSet, L2Ball, LinfBall

__all__ = [
    "And",
    "Comparison",
    "LinearTerm",
    "Not",
    "Or",
    "VnnlibError",
    "VnnlibSpec",
    "format_counterexample",
    "parse_counterexample",
    "parse_vnnlib",
    "read_vnnlib",
    "write_vnnlib",
]

MAX_DISJUNCTS = 100_000
"""Default limit on the number of DNF disjuncts (``read_vnnlib(max_disjuncts=...)``)."""


class VnnlibError(ValueError):
    """A malformed or unsupported VNN-LIB specification.

    ``line``/``col`` (1-based, None when not tied to a place) and ``source`` locate the problem;
    ``reason`` is the message without the location.

    Example:
        >>> try:
        ...     read_vnnlib("(declare-const X_0 Real)\\n(assert (<= X_0 1)")
        ... except VnnlibError as e:
        ...     print(e.line, e)
        2 <string>:2:1: '(' is never closed (unbalanced parentheses)
    """

    def __init__(self, reason: str, line: int | None = None, col: int | None = None, source: str | None = None):
        self.reason, self.line, self.col, self.source = reason, line, col, source
        where = source or "<string>"
        if line is not None:
            where += f":{line}" + (f":{col}" if col is not None else "")
        super().__init__(f"{where}: {reason}")


# ----------------------------------------------------------------------------------------------
# Syntax tree
# ----------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class LinearTerm:
    """``sum(coef * var) + const``; ``coeffs`` maps variable names (``"X_0"``, ``"Y_3"``) to coefficients.

    Example:
        >>> t = LinearTerm((("Y_0", 2.0),), 1.0) + LinearTerm((("Y_0", -1.0), ("Y_1", 1.0)))
        >>> t.coeffs, t.const, str(t)
        ((('Y_0', 1.0), ('Y_1', 1.0)), 1.0, 'Y_0 + Y_1 + 1.0')
    """

    coeffs: tuple[tuple[str, float], ...]
    const: float = 0.0

    def __add__(self, other: LinearTerm) -> LinearTerm:
        acc = dict(self.coeffs)
        for v, c in other.coeffs:
            acc[v] = acc.get(v, 0.0) + c
        return LinearTerm(tuple(acc.items()), self.const + other.const)

    def scale(self, k: float) -> LinearTerm:
        return LinearTerm(tuple((v, c * k) for v, c in self.coeffs), self.const * k)

    @property
    def is_constant(self) -> bool:
        return not self.coeffs

    def __str__(self) -> str:
        parts = [v if c == 1 else f"{c!r}*{v}" for v, c in self.coeffs]
        if self.const or not parts:
            parts.append(repr(self.const))
        return " + ".join(parts)


@dataclass(frozen=True)
class Comparison:
    """An atom ``lhs op rhs``, ``op`` one of ``<= >= < > =``, at ``line``:``col`` of the source.

    Example:
        >>> a = parse_vnnlib("(declare-const Y_0 Real)\\n(assert (>= Y_0 -1))").asserts[0]
        >>> a.op, a.lhs.coeffs, a.rhs.const, (a.line, a.col)
        ('>=', (('Y_0', 1.0),), -1.0, (2, 9))
    """

    op: str
    lhs: LinearTerm
    rhs: LinearTerm
    line: int = 0
    col: int = 0


@dataclass(frozen=True)
class And:
    """Conjunction (``And(())`` is ``true``).

    Example:
        >>> f = parse_vnnlib("(declare-const Y_0 Real)(assert (and (>= Y_0 0) (<= Y_0 1)))").asserts[0]
        >>> type(f).__name__, [a.op for a in f.args]
        ('And', ['>=', '<='])
    """

    args: tuple[Formula, ...]
    line: int = 0
    col: int = 0


@dataclass(frozen=True)
class Or:
    """Disjunction (``Or(())`` is ``false``).

    Example:
        >>> f = parse_vnnlib("(declare-const Y_0 Real)(assert (or (>= Y_0 1) (<= Y_0 -1)))").asserts[0]
        >>> type(f).__name__, len(f.args)
        ('Or', 2)
    """

    args: tuple[Formula, ...]
    line: int = 0
    col: int = 0


@dataclass(frozen=True)
class Not:
    """Negation (``read_vnnlib`` pushes it onto the atoms: ``not (<= a b)`` is read as ``a >= b``).

    Example:
        >>> type(parse_vnnlib("(declare-const Y_0 Real)(assert (not (<= Y_0 0)))").asserts[0]).__name__
        'Not'
    """

    arg: Formula
    line: int = 0
    col: int = 0


Formula = Comparison | And | Or | Not


@dataclass(frozen=True)
class VnnlibSpec:
    """A parsed VNN-LIB file: variable counts, declaration lines and the asserted formulas (in order).

    Example:
        >>> s = parse_vnnlib("(declare-const X_0 Real)(declare-const Y_0 Real)(assert (<= Y_0 X_0))")
        Traceback (most recent call last):
          ...
        axiom.verify.vnnlib.VnnlibError: <string>:1:57: atom mixes input (X) and output (Y) variables: ...
        >>> s = parse_vnnlib("(declare-const X_0 Real)(declare-const Y_0 Real)(assert (<= Y_0 -1))")
        >>> s.n_inputs, s.n_outputs, s.asserts[0].op
        (1, 1, '<=')
    """

    n_inputs: int
    n_outputs: int
    declarations: dict[str, int]  # name -> line
    asserts: tuple[Formula, ...]
    source: str | None = None


# ----------------------------------------------------------------------------------------------
# Tokenizer and S-expression reader
# ----------------------------------------------------------------------------------------------

_TOKEN = re.compile(
    r"""(?P<ws>\s+)|(?P<comment>;[^\n]*)|(?P<open>\()|(?P<close>\))|(?P<quoted>\|[^|]*\|)|(?P<string>"[^"]*")
    |(?P<sym>[^\s();|"]+)|(?P<bad>.)""",
    re.VERBOSE | re.DOTALL,
)
_NUMBER = re.compile(r"[+-]?(?:\d+\.?\d*|\.\d+)(?:[eE][+-]?\d+)?")
_VAR = re.compile(r"([XY])_(0|[1-9]\d*)")
_COMPARE_OPS = ("<=", ">=", "<", ">", "=")
_IGNORED = ("check-sat", "get-model", "exit", "set-logic", "set-info", "set-option", "get-value")


@dataclass
class _Sym:
    text: str
    line: int
    col: int


@dataclass
class _List:
    items: list[_Sym | _List]
    line: int
    col: int


_Node = _Sym | _List


class _Reader:
    def __init__(self, text: str, source: str | None) -> None:
        self.text, self.source = text, source
        self._nl = [i for i, ch in enumerate(text) if ch == "\n"]

    def pos(self, offset: int) -> tuple[int, int]:
        k = bisect.bisect_left(self._nl, offset)
        start = self._nl[k - 1] + 1 if k else 0
        return k + 1, offset - start + 1

    def error(self, reason: str, node: _Node | tuple[int, int] | None = None) -> VnnlibError:
        if node is None:
            return VnnlibError(reason, source=self.source)
        line, col = (node.line, node.col) if not isinstance(node, tuple) else node
        return VnnlibError(reason, line, col, self.source)

    def read(self) -> list[_Node]:
        top: list[_Node] = []
        stack: list[_List] = []
        for m in _TOKEN.finditer(self.text):
            kind = m.lastgroup
            if kind in ("ws", "comment"):
                continue
            line, col = self.pos(m.start())
            if kind == "open":
                node = _List([], line, col)
                (stack[-1].items if stack else top).append(node)
                stack.append(node)
            elif kind == "close":
                if not stack:
                    raise self.error("unexpected ')' (unbalanced parentheses)", (line, col))
                stack.pop()
            elif kind in ("quoted", "string"):
                raise self.error(
                    f"unsupported token {m.group()!r} (quoted symbols and strings are not VNN-LIB)", (line, col)
                )
            elif kind == "bad":
                raise self.error(f"unexpected character {m.group()!r}", (line, col))
            else:
                sym = _Sym(m.group(), line, col)
                if not stack:
                    raise self.error(f"expected '(' at top level, got {sym.text!r}", sym)
                stack[-1].items.append(sym)
        if stack:
            raise self.error("'(' is never closed (unbalanced parentheses)", stack[-1])
        return top


# ----------------------------------------------------------------------------------------------
# Parser: S-expressions -> VnnlibSpec
# ----------------------------------------------------------------------------------------------


def _head(node: _Node) -> str | None:
    if isinstance(node, _List) and node.items and isinstance(node.items[0], _Sym):
        return node.items[0].text
    return None


class _Parser:
    def __init__(self, reader: _Reader) -> None:
        self.r = reader
        self.decl_line: dict[str, int] = {}
        self.decl_pos: dict[str, tuple[int, int]] = {}

    def parse(self) -> VnnlibSpec:
        nodes = self.r.read()
        # Declarations first (so a use before its declaration gets a precise message).
        for node in nodes:
            if _head(node) in ("declare-const", "declare-fun"):
                self.declare(node)  # type: ignore[arg-type]
        counts = {}
        for kind in "XY":
            idx = sorted(int(n[2:]) for n in self.decl_line if n[0] == kind)
            for expect, got in enumerate(idx):
                if got != expect:
                    name = f"{kind}_{got}"
                    raise self.r.error(
                        f"{kind}_{expect} is not declared but {name} is ({kind} indices must be 0..n-1)",
                        self.decl_pos[name],
                    )
            counts[kind] = len(idx)
        asserts: list[Formula] = []
        for node in nodes:
            head = _head(node)
            assert isinstance(node, _List)
            if head in ("declare-const", "declare-fun") or head in _IGNORED:
                continue
            if head == "assert":
                if len(node.items) != 2:
                    raise self.r.error(f"(assert ...) takes exactly one formula, got {len(node.items) - 1}", node)
                asserts.append(self.formula(node.items[1], node))
            elif head is None:
                raise self.r.error("expected a command such as (declare-const ...) or (assert ...)", node)
            else:
                raise self.r.error(f"unsupported command {head!r} (expected declare-const or assert)", node.items[0])
        return VnnlibSpec(counts["X"], counts["Y"], dict(self.decl_line), tuple(asserts), self.r.source)

    def declare(self, node: _List) -> None:
        items = node.items
        head = items[0].text  # type: ignore[union-attr]
        if head == "declare-const":
            shape_ok = len(items) == 3 and isinstance(items[1], _Sym) and isinstance(items[2], _Sym)
        else:
            shape_ok = (
                len(items) == 4
                and isinstance(items[1], _Sym)
                and isinstance(items[2], _List)
                and not items[2].items
                and isinstance(items[3], _Sym)
            )
        if not shape_ok:
            form = "(declare-const X_<i> Real)" if head == "declare-const" else "(declare-fun X_<i> () Real)"
            raise self.r.error(f"malformed declaration, expected {form}", node)
        name, typ = items[1], items[-1]
        assert isinstance(name, _Sym) and isinstance(typ, _Sym)
        if not _VAR.fullmatch(name.text):
            raise self.r.error(
                f"unsupported variable name {name.text!r} (VNN-LIB 1.0 uses X_<i> for inputs and Y_<j> for outputs)",
                name,
            )
        if typ.text != "Real":
            raise self.r.error(f"variable {name.text} must be declared Real, got {typ.text!r}", typ)
        if name.text in self.decl_line:
            raise self.r.error(f"{name.text} is declared twice (first at line {self.decl_line[name.text]})", name)
        self.decl_line[name.text] = name.line
        self.decl_pos[name.text] = (name.line, name.col)

    # -- formulas ---------------------------------------------------------------------------------

    def formula(self, node: _Node, parent: _List) -> Formula:
        if isinstance(node, _Sym):
            if node.text == "true":
                return And((), node.line, node.col)
            if node.text == "false":
                return Or((), node.line, node.col)
            raise self.r.error(f"expected a formula such as (<= Y_0 1) or (or ...), got {node.text!r}", node)
        if not node.items:
            raise self.r.error("empty '()' where a formula was expected", node)
        head = _head(node)
        if head is None:
            raise self.r.error("expected an operator after '('", node)
        args = node.items[1:]
        if head in ("and", "or"):
            parts = tuple(self.formula(a, node) for a in args)
            return (And if head == "and" else Or)(parts, node.line, node.col)
        if head == "not":
            if len(args) != 1:
                raise self.r.error(f"(not ...) takes one formula, got {len(args)}", node)
            return Not(self.formula(args[0], node), node.line, node.col)
        if head in _COMPARE_OPS:
            if len(args) < 2:
                raise self.r.error(f"({head} ...) needs two operands, got {len(args)}", node)
            terms = [self.term(a) for a in args]
            atoms = tuple(self.atom(head, a, b, node) for a, b in zip(terms, terms[1:]))
            return atoms[0] if len(atoms) == 1 else And(atoms, node.line, node.col)
        raise self.r.error(
            f"unsupported operator {head!r} (expected and, or, not, <=, >=, <, >, =)",
            node.items[0],
        )

    def atom(self, op: str, lhs: LinearTerm, rhs: LinearTerm, node: _List) -> Comparison:
        kinds = {v[0] for v, _ in lhs.coeffs} | {v[0] for v, _ in rhs.coeffs}
        if kinds == {"X", "Y"}:
            raise self.r.error(
                f"atom mixes input (X) and output (Y) variables: ({op} {lhs} {rhs}); "
                "input constraints must be bounds, output constraints must only involve Y",
                node,
            )
        return Comparison(op, lhs, rhs, node.line, node.col)

    def term(self, node: _Node) -> LinearTerm:
        if isinstance(node, _Sym):
            text = node.text
            if _NUMBER.fullmatch(text):
                return LinearTerm((), float(text))
            if _VAR.fullmatch(text):
                if text not in self.decl_line:
                    raise self.r.error(f"undeclared variable {text}", node)
                if (node.line, node.col) < self.decl_pos[text]:
                    raise self.r.error(f"{text} is used before its declaration (line {self.decl_line[text]})", node)
                return LinearTerm(((text, 1.0),))
            if re.fullmatch(r"[A-Za-z_][\w.]*", text):
                raise self.r.error(f"unknown variable {text!r} (expected X_<i>, Y_<j> or a number)", node)
            raise self.r.error(f"expected a number or a variable, got {text!r}", node)
        head = _head(node)
        args = node.items[1:]
        if head is None:
            raise self.r.error("expected a term (number, X_i, Y_j or (+ ...), (- ...), (* ...), (/ ...))", node)
        if head in ("+", "-", "*", "/") and not args:
            raise self.r.error(f"({head}) needs operands", node)
        if head == "+":
            out = LinearTerm(())
            for a in args:
                out = out + self.term(a)
            return out
        if head == "-":
            terms = [self.term(a) for a in args]
            if len(terms) == 1:
                return terms[0].scale(-1.0)
            out = terms[0]
            for t in terms[1:]:
                out = out + t.scale(-1.0)
            return out
        if head == "*":
            terms = [self.term(a) for a in args]
            var_terms = [t for t in terms if not t.is_constant]
            if len(var_terms) > 1:
                raise self.r.error("nonlinear product: (* ...) may multiply at most one non-constant term", node)
            k = 1.0
            for t in terms:
                if t.is_constant:
                    k *= t.const
            return var_terms[0].scale(k) if var_terms else LinearTerm((), k)
        if head == "/":
            terms = [self.term(a) for a in args]
            if len(terms) < 2 or any(not t.is_constant for t in terms[1:]):
                raise self.r.error("(/ t c ...) needs constant divisors", node)
            out = terms[0]
            for t in terms[1:]:
                if t.const == 0:
                    raise self.r.error("division by zero", node)
                out = out.scale(1.0 / t.const)
            return out
        raise self.r.error(f"unsupported operator {head!r} in a term (expected +, -, *, /)", node.items[0])


def _load(path_or_text: str | os.PathLike[str]) -> tuple[str, str | None]:
    if isinstance(path_or_text, os.PathLike) or ("(" not in path_or_text and "\n" not in path_or_text):
        path = Path(path_or_text)
        try:
            return path.read_text(), str(path)
        except UnicodeDecodeError as err:
            raise VnnlibError(f"not a text file ({err})", source=str(path)) from err
    return str(path_or_text), None


def parse_vnnlib(path_or_text: str | os.PathLike[str]) -> VnnlibSpec:
    """Parse VNN-LIB text (or a file, when given a path) into a :class:`VnnlibSpec` syntax tree.

    A ``str`` containing ``(`` or a newline is read as VNN-LIB text, anything else as a path.

    Example:
        >>> s = parse_vnnlib("(declare-const X_0 Real) (assert (or (<= X_0 1) (>= X_0 (* 2 1e1))))")
        >>> type(s.asserts[0]).__name__, s.asserts[0].args[1].rhs.const
        ('Or', 20.0)
    """
    text, source = _load(path_or_text)
    return _Parser(_Reader(text, source)).parse()


# ----------------------------------------------------------------------------------------------
# Semantics: VnnlibSpec -> properties
# ----------------------------------------------------------------------------------------------


@dataclass
class _NAtom:
    """Normalised atom: ``kind`` 'X' (bound ``x[index] <= rhs`` if sign > 0 else ``>=``), 'Y' (row . y <= rhs)
    or 'C' (constant, ``truth``)."""

    kind: str
    line: int
    col: int
    index: int = -1
    upper: bool = True
    value: float = 0.0
    row: dict[int, float] | None = None
    truth: bool = True


_NEGATE = {"<=": ">", "<": ">=", ">=": "<", ">": "<="}


class _Semantics:
    def __init__(self, spec: VnnlibSpec, n_out: int, max_disjuncts: int) -> None:
        self.spec, self.n_out, self.max = spec, n_out, max_disjuncts
        self.atoms: list[_NAtom] = []

    def error(self, reason: str, line: int | None = None, col: int | None = None) -> VnnlibError:
        return VnnlibError(reason, line, col, self.spec.source)

    # Normalise one comparison (non-strict, "<=" form) into atoms.
    def norm(self, op: str, lhs: LinearTerm, rhs: LinearTerm, line: int, col: int) -> list[int]:
        if op == "=":
            return self.norm("<=", lhs, rhs, line, col) + self.norm(">=", lhs, rhs, line, col)
        diff = lhs + rhs.scale(-1.0) if op in ("<=", "<") else rhs + lhs.scale(-1.0)  # diff <= 0
        coeffs = [(v, c) for v, c in diff.coeffs]
        bound = -diff.const + 0.0  # no -0.0
        xs = [(v, c) for v, c in coeffs if v[0] == "X" and c != 0.0]
        ys = [(v, c) for v, c in coeffs if v[0] == "Y"]
        if xs:
            if len(xs) > 1:
                names = ", ".join(v for v, _ in xs)
                raise self.error(f"input constraints must bound one variable by a constant, got {names}", line, col)
            (v, c) = xs[0]
            value = bound / c + 0.0
            if abs(np.frexp(c)[0]) != 0.5:  # not a power of two: the division rounds; widen the box outward
                value = float(np.nextafter(np.nextafter(value, np.inf * c), np.inf * c))
            atom = _NAtom("X", line, col, index=int(v[2:]), upper=c > 0, value=value)
        elif ys:
            row: dict[int, float] = {}
            for v, c in ys:
                j = int(v[2:])
                if j >= self.n_out:
                    raise self.error(f"{v} is out of range for a model with {self.n_out} outputs", line, col)
                row[j] = row.get(j, 0.0) + c
            atom = _NAtom("Y", line, col, row=row, value=bound)
        else:
            atom = _NAtom("C", line, col, truth=bool(0.0 <= bound))
        self.atoms.append(atom)
        return [len(self.atoms) - 1]

    def dnf(self, f: Formula, negate: bool = False) -> list[tuple[int, ...]]:
        """Disjuncts (tuples of atom ids) of ``f`` (or of ``not f``)."""
        if isinstance(f, Not):
            return self.dnf(f.arg, not negate)
        if isinstance(f, Comparison):
            if not negate:
                return [tuple(self.norm(f.op, f.lhs, f.rhs, f.line, f.col))]
            if f.op == "=":
                lt = self.norm("<", f.lhs, f.rhs, f.line, f.col)
                gt = self.norm(">", f.lhs, f.rhs, f.line, f.col)
                return [tuple(lt), tuple(gt)]
            return [tuple(self.norm(_NEGATE[f.op], f.lhs, f.rhs, f.line, f.col))]
        conj = isinstance(f, And) != negate
        parts = [self.dnf(a, negate) for a in f.args]
        if not conj:
            out = [d for p in parts for d in p]
            if len(out) > self.max:
                raise self._blowup(f.line, f.col)
            return out
        acc: list[tuple[int, ...]] = [()]
        for p in parts:
            acc = self.product(acc, p, f.line, f.col)
        return acc

    def _blowup(self, line: int, col: int) -> VnnlibError:
        return self.error(
            f"the specification expands to more than {self.max} disjuncts in disjunctive normal form "
            "(raise read_vnnlib(max_disjuncts=...) if this is intended)",
            line,
            col,
        )

    def product(self, a: list[tuple[int, ...]], b: list[tuple[int, ...]], line: int, col: int) -> list[tuple[int, ...]]:
        if len(a) * len(b) > self.max:
            raise self._blowup(line, col)
        return [x + y for x in a for y in b]

    def properties(self, input_shape: Sequence[int] | None, source: str | None) -> list[VnnlibProperty]:
        n_in, n_out = self.spec.n_inputs, self.n_out
        base: list[int] = []
        multi: list[tuple[list[tuple[int, ...]], Formula]] = []
        for f in self.spec.asserts:
            d = self.dnf(f)
            if len(d) == 1:
                base.extend(d[0])
            else:
                multi.append((d, f))
        extras: list[tuple[int, ...]] = [()]
        for d, f in multi:
            extras = self.product(extras, d, getattr(f, "line", 0), getattr(f, "col", 0))
        if not extras:
            line = multi[-1][1].line if multi else None
            raise self.error("the specification is unsatisfiable (an assert is false): nothing to verify", line)

        lo0, hi0 = np.full(n_in, -np.inf), np.full(n_in, np.inf)
        src0: dict[tuple[int, bool], _NAtom] = {}
        rows0: list[_NAtom] = []
        conflict = self.apply(base, lo0, hi0, src0, rows0)
        if conflict is not None:
            raise conflict

        groups: dict[bytes, tuple[Box, list[Clause], set[bytes]]] = {}
        first_conflict: VnnlibError | None = None
        for extra in extras:
            lo, hi, src, rows = lo0.copy(), hi0.copy(), dict(src0), list(rows0)
            conflict = self.apply(extra, lo, hi, src, rows)
            if conflict is not None:
                first_conflict = first_conflict or conflict
                continue
            for side, arr in (("lower", lo), ("upper", hi)):
                if not np.isfinite(arr).all():
                    k = int(np.argmin(np.isfinite(arr)))
                    raise self.error(
                        f"X_{k} has no {side} bound (every input variable needs a lower and an upper bound"
                        + (" in each disjunct)" if len(extras) > 1 else ")"),
                        self.spec.declarations.get(f"X_{k}"),
                    )
            C = np.zeros((len(rows), n_out))
            for r, atom in enumerate(rows):
                for j, c in atom.row.items():  # type: ignore[union-attr]
                    C[r, j] += c
            clause = Clause(C, np.array([a.value for a in rows], np.float64))
            key = lo.tobytes() + hi.tobytes()
            if key not in groups:
                groups[key] = (Box(lo, hi), [], set())
            ckey = C.tobytes() + clause.d.tobytes() + str(C.shape).encode()
            if ckey not in groups[key][2]:
                groups[key][2].add(ckey)
                groups[key][1].append(clause)
        if not groups:
            assert first_conflict is not None
            raise first_conflict

        if input_shape is not None:
            shape = tuple(int(s) for s in input_shape)
            if int(np.prod(shape)) != n_in:
                raise self.error(
                    f"the specification has {n_in} inputs but input_shape {shape} has {int(np.prod(shape))}"
                )
        # Merge boxes that share the same clauses into one BoxUnion property.
        merged: dict[bytes, tuple[list[Box], list[Clause]]] = {}
        for box, clauses, _ in groups.values():
            ckey = b"|".join(c.C.tobytes() + c.d.tobytes() + str(c.C.shape).encode() for c in clauses)
            merged.setdefault(ckey, ([], clauses))[0].append(box)
        props = []
        for k, (boxes, clauses) in enumerate(merged.values()):
            if input_shape is not None:
                boxes = [b.reshape(shape) for b in boxes]
            input_set: InputSet = boxes[0] if len(boxes) == 1 else BoxUnion(boxes)
            name = source if len(merged) == 1 or source is None else f"{source}#{k}"
            props.append(VnnlibProperty(input_set, clauses, name))
        return props

    def apply(
        self,
        ids: Iterable[int],
        lo: np.ndarray,
        hi: np.ndarray,
        src: dict[tuple[int, bool], _NAtom],
        rows: list[_NAtom],
    ) -> VnnlibError | None:
        """Narrow the box / collect rows in place; returns an error describing the first contradiction."""
        for i in ids:
            a = self.atoms[i]
            if a.kind == "Y":
                rows.append(a)
            elif a.kind == "C":
                if not a.truth:
                    return self.error("constant comparison is false: the specification is unsatisfiable", a.line, a.col)
            else:
                k = a.index
                if a.upper and a.value < hi[k]:
                    hi[k] = a.value
                    src[(k, True)] = a
                elif not a.upper and a.value > lo[k]:
                    lo[k] = a.value
                    src[(k, False)] = a
                if lo[k] > hi[k]:
                    other = src[(k, not a.upper)]
                    return self.error(
                        f"X_{k}: lower bound {float(lo[k])!r} > upper bound {float(hi[k])!r} "
                        f"(the other bound is at line {other.line})",
                        a.line,
                        a.col,
                    )
        return None


def read_vnnlib(
    path_or_text: str | os.PathLike[str],
    *,
    input_shape: Sequence[int] | None = None,
    n_outputs: int | None = None,
    max_disjuncts: int = MAX_DISJUNCTS,
) -> list[VnnlibProperty]:
    """Read a VNN-LIB 1.0 specification into properties that must **all** hold.

    ``path_or_text``: a path, or VNN-LIB text (a ``str`` containing ``(`` or a newline).
    ``input_shape``: the model's input shape for one example (e.g. ``(1, 28, 28)``); the flat
    ``X_i`` (row-major) are reshaped to it and its size checked. ``n_outputs``: the model's
    number of outputs; must match the declared ``Y_j`` when there are any. The DNF of the
    whole specification is limited to ``max_disjuncts`` disjuncts.

    Returns one :class:`~axiom.verify.VnnlibProperty` per distinct (input set, unsafe region)
    pair, in order of appearance; usually exactly one. Raises :class:`VnnlibError` (a
    ``ValueError``) with the line and column of the problem.

    Example:
        >>> props = read_vnnlib('''(declare-const X_0 Real) (declare-const Y_0 Real)
        ... (assert (or (and (>= X_0 -1) (<= X_0 0) (>= Y_0 1))
        ...             (and (>= X_0 0) (<= X_0 1) (<= Y_0 -1))))''')
        >>> [(p.input_set.lower.tolist(), p.condition.clauses[0].d.tolist()) for p in props]
        [([-1.0], [-1.0]), ([0.0], [-1.0])]
        >>> read_vnnlib("(declare-const X_0 Real)(assert (<= X_0 1))", n_outputs=0)
        Traceback (most recent call last):
          ...
        axiom.verify.vnnlib.VnnlibError: <string>:1: X_0 has no lower bound (every input variable needs ...
    """
    spec = parse_vnnlib(path_or_text)
    if spec.n_inputs == 0:
        raise VnnlibError("no input variables declared (expected (declare-const X_0 Real) ...)", source=spec.source)
    n_out = spec.n_outputs
    if n_outputs is not None:
        if spec.n_outputs and spec.n_outputs != n_outputs:
            raise VnnlibError(
                f"the specification declares {spec.n_outputs} outputs but the model has {n_outputs}",
                source=spec.source,
            )
        n_out = int(n_outputs)
    source = None if spec.source is None else Path(spec.source).name
    return _Semantics(spec, n_out, max_disjuncts).properties(input_shape, source)


# ----------------------------------------------------------------------------------------------
# Writer
# ----------------------------------------------------------------------------------------------


def _num(v: float) -> str:
    v = float(v)
    if not np.isfinite(v):
        raise ValueError(f"write_vnnlib: VNN-LIB cannot express the non-finite value {v}")
    return repr(v)


def _row_atom(row: np.ndarray, d: float) -> str:
    nz = [(j, float(c)) for j, c in enumerate(row) if c != 0.0]
    if len(nz) == 1 and nz[0][1] == 1.0:
        return f"(<= Y_{nz[0][0]} {_num(d)})"
    if len(nz) == 1 and nz[0][1] == -1.0:
        return f"(>= Y_{nz[0][0]} {_num(-d)})"
    if len(nz) == 2 and d == 0.0 and sorted(c for _, c in nz) == [-1.0, 1.0]:
        (i, ci), (j, _) = nz
        return f"(<= Y_{i} Y_{j})" if ci == 1.0 else f"(<= Y_{j} Y_{i})"
    if not nz:  # keep the row: 0 <= d over the outputs
        return f"(<= (* 0.0 Y_0) {_num(d)})" if len(row) else f"(<= 0.0 {_num(d)})"
    terms = " ".join(f"(* {_num(c)} Y_{j})" for j, c in nz)
    return f"(<= (+ {terms}) {_num(d)})"


def _box_atoms(box: Box) -> list[str]:
    lo, hi = box.lower.ravel(), box.upper.ravel()
    return [a for i in range(lo.size) for a in (f"(>= X_{i} {_num(lo[i])})", f"(<= X_{i} {_num(hi[i])})")]


def _boxes_of(input_set: InputSet | None) -> list[Box]:
    if input_set is None:
        raise ValueError("write_vnnlib: the property has no input set")
    if isinstance(input_set, L2Ball):
        raise ValueError("write_vnnlib: an L2 ball is not a box; VNN-LIB 1.0 can only express boxes")
    if isinstance(input_set, BoxUnion):
        return input_set.boxes()
    if isinstance(input_set, Box | LinfBall):
        return [input_set.to_box()]
    raise ValueError(f"write_vnnlib: cannot express a {type(input_set).__name__} in VNN-LIB")


def write_vnnlib(
    properties: Property | Sequence[Property],
    *,
    n_outputs: int | None = None,
    comment: str | None = None,
) -> str:
    """VNN-LIB 1.0 text of one property (or several, which must all hold).

    Any property with a box-like input set (``Box``, ``LinfBall``, ``BoxUnion``) and a linear
    unsafe region (``VnnlibProperty``, ``Classification``, ``LocalRobustness``, ``OutputBounds``,
    ``LinearProperty``) can be written; ``n_outputs`` is required unless the property carries its
    own clauses. Numbers are written with ``repr`` (exact round trip).

    Example:
        >>> from axiom.verify import Box, Classification
        >>> print(write_vnnlib(Classification(1, over=Box([0.0], [0.5])), n_outputs=2))
        (declare-const X_0 Real)
        (declare-const Y_0 Real)
        (declare-const Y_1 Real)
        <BLANKLINE>
        (assert (>= X_0 0.0))
        (assert (<= X_0 0.5))
        <BLANKLINE>
        (assert (<= Y_1 Y_0))
        <BLANKLINE>
    """
    props = [properties] if isinstance(properties, Property) else list(properties)
    if not props:
        raise ValueError("write_vnnlib: no properties")
    pairs: list[tuple[list[Box], list[Clause]]] = []
    for p in props:
        clauses = getattr(p.condition, "clauses", None)
        if clauses is None:
            if n_outputs is None:
                raise ValueError(f"write_vnnlib: give n_outputs to write {type(p).__name__}")
            clauses = p.condition.unsafe_region(n_outputs)
            if clauses is None:
                raise ValueError(f"write_vnnlib: {p.condition.describe()} is not a linear condition")
        pairs.append((_boxes_of(p.input_set), list(clauses)))
    n_in = pairs[0][0][0].lower.size
    widths = {c.C.shape[1] for _, cs in pairs for c in cs} | ({n_outputs} if n_outputs is not None else set())
    if len(widths) > 1:
        raise ValueError(f"write_vnnlib: clauses of different widths {sorted(widths)}")
    n_out = widths.pop() if widths else 0
    if any(b.lower.size != n_in for boxes, _ in pairs for b in boxes):
        raise ValueError("write_vnnlib: input sets of different sizes")

    lines = [f"; {line}" for line in (comment or "").splitlines()]
    lines += [f"(declare-const X_{i} Real)" for i in range(n_in)]
    lines += [f"(declare-const Y_{j} Real)" for j in range(n_out)]
    lines.append("")

    def conj(clause: Clause) -> list[str]:
        return [_row_atom(row, d) for row, d in zip(clause.C, clause.d)]

    if len(pairs) == 1:
        boxes, clauses = pairs[0]
        if len(boxes) == 1:
            lines += [f"(assert {a})" for a in _box_atoms(boxes[0])]
        else:
            lines.append("(assert (or")
            lines += [f"    (and {' '.join(_box_atoms(b))})" for b in boxes]
            lines.append("))")
        lines.append("")
        if len(clauses) == 1:
            atoms = conj(clauses[0])
            lines += [f"(assert {a})" for a in atoms] if atoms else ["(assert true)"]
        else:
            lines.append("(assert (or")
            lines += [f"    (and {' '.join(conj(c))})" for c in clauses]
            lines.append("))")
    else:  # one disjunct per (box, clause) pair: mixed X/Y disjunction
        lines.append("(assert (or")
        for boxes, clauses in pairs:
            for b in boxes:
                for c in clauses:
                    lines.append(f"    (and {' '.join(_box_atoms(b) + conj(c))})")
        lines.append("))")
    lines.append("")
    return "\n".join(lines)


# ----------------------------------------------------------------------------------------------
# VNN-COMP counterexample text
# ----------------------------------------------------------------------------------------------


def format_counterexample(x: Any, y: Any) -> str:
    """The VNN-COMP counterexample text ``((X_0 v)\\n (X_1 v)\\n ... (Y_0 v)...)`` for input ``x`` and output ``y``.

    Both are flattened in row-major (ONNX) order; values are written with ``repr`` of the
    float64 value, which is exact for float32 and float64 data.

    Example:
        >>> import numpy as np
        >>> print(format_counterexample(np.array([0.5, -1.0], np.float32), [0.1]))
        ((X_0 0.5)
         (X_1 -1.0)
         (Y_0 0.1))
    """
    xs = np.asarray(x).ravel()
    ys = np.asarray(y).ravel()
    items = [f"(X_{i} {float(v)!r})" for i, v in enumerate(xs)] + [f"(Y_{j} {float(v)!r})" for j, v in enumerate(ys)]
    if not items:
        return "()"
    return "(" + "\n ".join(items) + ")"


def parse_counterexample(text: str) -> tuple[np.ndarray, np.ndarray]:
    """Read a counterexample written by :func:`format_counterexample` (optionally after a ``sat`` line).

    Example:
        >>> x, y = parse_counterexample("sat\\n((X_0 0.5)\\n (Y_0 -2.0))")
        >>> x.tolist(), y.tolist()
        ([0.5], [-2.0])
    """
    values: dict[str, dict[int, float]] = {"X": {}, "Y": {}}
    for m in re.finditer(r"\(\s*([XY])_(\d+)\s+([^\s()]+)\s*\)", text):
        values[m.group(1)][int(m.group(2))] = float(m.group(3))
    out = []
    for kind in "XY":
        d = values[kind]
        if sorted(d) != list(range(len(d))):
            raise ValueError(f"counterexample: {kind} indices are not 0..n-1")
        out.append(np.array([d[i] for i in range(len(d))], np.float64))
    return out[0], out[1]
