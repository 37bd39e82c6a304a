"""``prove(...)``: proof obligations written as statements, discharged by :func:`axiom.verify.verify`.

Grammar (keywords are lower case; ``#`` starts nothing, there are no comments)::

    statement  := forall | robust
    forall     := "forall" NAME "in" set ":" condition
    set        := "Box" "(" value "," value ")"              lower, upper (scalars broadcast)
                | "LinfBall" "(" value "," number ")"        center, radius
                | "L2Ball" "(" value "," number ")"
    condition  := comparison ("and" comparison)*
    comparison := expr (op expr)+                            op: <= < >= > ==; chains allowed
    expr       := term (("+" | "-") term)*
    term       := factor (("*" | "/") factor)*
    factor     := number | "-" factor | "(" expr ")"
                | "output" ["[" INT "]"]
                | ("sum" | "max" | "min" | "abs" | "argmax") "(" expr ")"
    robust     := "robust" "at" value "within" ("linf" | "l2") number
                  ["label" INT] ["clip" "(" number "," number ")"]
    value      := number | "-" number | NAME | "[" number ("," number)* "]"

``output`` is the model's (flattened) output for one input ``x`` of the set; ``NAME`` values
(points, bounds) come from ``prove``'s keyword arguments, else from the caller's variables.
``a == b`` means ``|a - b| <= 1e-5``.

What each statement becomes (existing :mod:`axiom.verify` properties):

- comparisons that are linear in the outputs (``output[0] <= 5``, ``output[1] - output[0] >= 0``,
  ``0 <= output <= 1`` for every entry, ``sum(output) == 2``): one ``LinearProperty``;
- ``sum(output) == 1`` on a model that ends in a softmax: ``ValidProbabilities`` (the verifier
  proves entries in [0, 1] and the sum exactly), checked as "sum is 1";
- ``argmax(output) == k``: ``Classification(k)``;
- ``robust at X within linf EPS``: ``LocalRobustness`` (label: the given one, else the model's
  prediction at ``X``);
- anything else (``output[0] * output[1] <= 1``, ``max(output) >= 0.1``): an expression
  condition the verifier has no procedure for. It can still be *falsified* by a replayed
  counterexample, but it is never reported ``proven``: such statements end ``unknown``.

Example:
    >>> ob = prove("forall x in Box(0, 1): output[0] <= 5 and output[1] >= -5")
    >>> ob.kind, [type(p).__name__ for p in ob.properties(n_out=2)]
    ('forall', ['LinearProperty'])
    >>> try:
    ...     prove("forall x in Box(0, 1) output[0] <= 5")
    ... except ProveSyntaxError as err:
    ...     print(err)
    expected ':' after the input set, found 'output' at column 23
        forall x in Box(0, 1) output[0] <= 5
                              ^
"""

from __future__ import annotations

import re
import sys
from dataclasses import dataclass
from typing import Any

import numpy as np

from axiom.dsl.source import SourceLocation, frame_location

#: Tolerance of ``==`` in statements.
EQ_TOL = 1e-5

_TOKEN = re.compile(
    r"\s*(?:(?P<num>\d+\.\d*(?:[eE][-+]?\d+)?|\.\d+(?:[eE][-+]?\d+)?|\d+(?:[eE][-+]?\d+)?)"
    r"|(?P<name>[A-Za-z_][A-Za-z_0-9]*)|(?P<op><=|>=|==|<|>|[()\[\],:+\-*/]))"
)
_FUNCS = ("sum", "max", "min", "abs", "argmax")
_COMPARE = ("<=", "<", ">=", ">", "==")


class ProveSyntaxError(ValueError):
    """A ``prove`` statement does not parse; ``column`` (1-based) points at the offending character.

    The message shows the statement with a caret under that character.

    Example:
        >>> err = ProveSyntaxError("unexpected '@'", "output @ 1", 7)
        >>> err.column
        8
        >>> print(err)
        unexpected '@' at column 8
            output @ 1
                   ^
    """

    def __init__(self, message: str, statement: str, offset: int) -> None:
        self.reason = message
        self.statement = statement
        self.offset = offset
        self.column = offset + 1
        super().__init__(f"{message} at column {self.column}\n    {statement}\n    {' ' * offset}^")


@dataclass(frozen=True)
class Token:
    """One token of a statement: kind (``num``, ``name``, ``op``, ``end``), text and offset.

    Example:
        >>> tokenize("output[0]")[0]
        Token(kind='name', text='output', offset=0)
    """

    kind: str
    text: str
    offset: int


def tokenize(statement: str) -> list[Token]:
    """Split a statement into tokens (ending with an ``end`` token); raise on a stray character.

    Example:
        >>> [t.text for t in tokenize("sum(output) == 1")]
        ['sum', '(', 'output', ')', '==', '1', '']
    """
    tokens, pos = [], 0
    while pos < len(statement):
        if statement[pos:].strip() == "":
            break
        m = _TOKEN.match(statement, pos)
        if m is None or m.end() == pos:
            bad = pos + len(statement[pos:]) - len(statement[pos:].lstrip())
            raise ProveSyntaxError(f"unexpected character {statement[bad]!r}", statement, bad)
        kind = m.lastgroup or "op"
        tokens.append(Token(kind, m.group(kind), m.start(kind)))
        pos = m.end()
    tokens.append(Token("end", "", len(statement)))
    return tokens


# -- expression tree ------------------------------------------------------------------------------


@dataclass(frozen=True)
class Num:
    """A number in a statement.

    Example:
        >>> Num(1.5).value
        1.5
    """

    value: float


@dataclass(frozen=True)
class Out:
    """``output`` (``index`` None) or ``output[index]``; ``offset`` is its column for errors.

    Example:
        >>> Out(3, 0).index
        3
    """

    index: int | None
    offset: int


@dataclass(frozen=True)
class Call:
    """``sum(...)``, ``max(...)``, ``min(...)``, ``abs(...)`` or ``argmax(...)``.

    Example:
        >>> Call("sum", Out(None, 4)).name
        'sum'
    """

    name: str
    arg: Any


@dataclass(frozen=True)
class Bin:
    """``left op right`` for op in ``+ - * /``.

    Example:
        >>> Bin("+", Num(1.0), Num(2.0)).op
        '+'
    """

    op: str
    left: Any
    right: Any


@dataclass(frozen=True)
class Comparison:
    """``left op right`` for op in ``<= < >= > ==``.

    Example:
        >>> Comparison("<=", Out(0, 0), Num(5.0)).op
        '<='
    """

    op: str
    left: Any
    right: Any


def evaluate(e: Any, y: np.ndarray) -> np.ndarray:
    """Value of expression ``e`` on a batch of flattened outputs ``y`` (shape ``(n, n_out)``).

    Example:
        >>> evaluate(Bin("*", Out(0, 0), Out(1, 0)), np.array([[2.0, 3.0]])).tolist()
        [6.0]
    """
    if isinstance(e, Num):
        return np.full(len(y), e.value)
    if isinstance(e, Out):
        return y if e.index is None else y[:, e.index]
    if isinstance(e, Call):
        v = evaluate(e.arg, y)
        if e.name == "abs":
            return np.abs(v)
        fn = {"sum": np.sum, "max": np.max, "min": np.min, "argmax": np.argmax}[e.name]
        return fn(v, axis=1) if v.ndim == 2 else v
    a, b = evaluate(e.left, y), evaluate(e.right, y)
    if a.ndim == 2 and b.ndim == 1:
        b = b[:, None]
    if b.ndim == 2 and a.ndim == 1:
        a = a[:, None]
    if isinstance(e, Comparison):
        ok = {
            "<=": lambda: a <= b,
            "<": lambda: a < b,
            ">=": lambda: a >= b,
            ">": lambda: a > b,
            "==": lambda: np.abs(a - b) <= EQ_TOL,
        }[e.op]()
        return ok.all(axis=1) if ok.ndim == 2 else ok
    return {"+": np.add, "-": np.subtract, "*": np.multiply, "/": np.divide}[e.op](a, b)


# -- parser ---------------------------------------------------------------------------------------


@dataclass
class SetSpec:
    """A parsed input set: ``kind`` (Box, LinfBall, L2Ball) and its two arguments.

    Example:
        >>> SetSpec("Box", 0.0, 1.0).build().upper.tolist()
        1.0
    """

    kind: str
    first: Any
    second: Any

    def build(self) -> Any:
        """The :mod:`axiom.verify` input set."""
        from axiom.verify.sets import Box, L2Ball, LinfBall

        if self.kind == "Box":
            return Box(self.first, self.second)
        ball = LinfBall if self.kind == "LinfBall" else L2Ball
        return ball(np.asarray(self.first, np.float64), float(self.second))


class _Parser:
    def __init__(self, statement: str, names: dict[str, Any]) -> None:
        self.s = statement
        self.toks = tokenize(statement)
        self.i = 0
        self.names = names

    # helpers
    @property
    def tok(self) -> Token:
        return self.toks[self.i]

    def error(self, message: str, tok: Token | None = None) -> ProveSyntaxError:
        tok = tok or self.tok
        return ProveSyntaxError(message, self.s, tok.offset)

    def found(self) -> str:
        return "the end of the statement" if self.tok.kind == "end" else repr(self.tok.text)

    def take(self, text: str, what: str) -> Token:
        if self.tok.text != text or self.tok.kind == "end":
            raise self.error(f"expected {text!r} {what}, found {self.found()}")
        self.i += 1
        return self.toks[self.i - 1]

    def accept(self, text: str) -> bool:
        if self.tok.text == text and self.tok.kind != "end":
            self.i += 1
            return True
        return False

    def number(self, what: str) -> float:
        sign = -1.0 if self.accept("-") else 1.0
        if self.tok.kind != "num":
            raise self.error(f"expected a number {what}, found {self.found()}")
        self.i += 1
        return sign * float(self.toks[self.i - 1].text)

    def integer(self, what: str) -> int:
        tok = self.tok
        value = self.number(what)
        if value != int(value) or "." in tok.text or "e" in tok.text.lower():
            raise self.error(f"expected a whole number {what}", tok)
        return int(value)

    def value(self, what: str) -> Any:
        tok = self.tok
        if tok.kind == "name":
            self.i += 1
            if tok.text not in self.names:
                raise self.error(f"unknown name {tok.text!r} (pass it to prove(..., {tok.text}=...))", tok)
            v = self.names[tok.text]
            return np.asarray(getattr(v, "data", v), np.float64)
        if self.accept("["):
            items = [self.number("in the list")]
            while self.accept(","):
                items.append(self.number("in the list"))
            self.take("]", "to close the list")
            return np.asarray(items, np.float64)
        return self.number(what)

    # grammar
    def statement(self) -> tuple[str, Any, Any]:
        head = self.tok
        if head.text == "forall":
            self.i += 1
            if self.tok.kind != "name":
                raise self.error(f"expected a variable name after 'forall', found {self.found()}")
            self.i += 1
            self.take("in", "after the variable")
            input_set = self.input_set()
            self.take(":", "after the input set")
            cond = self.condition()
            self.end()
            return "forall", input_set, cond
        if head.text == "robust":
            self.i += 1
            return "robust", None, self.robust()
        raise self.error(f"a statement starts with 'forall' or 'robust', found {self.found()}")

    def end(self) -> None:
        if self.tok.kind != "end":
            raise self.error(f"unexpected {self.found()} after the end of the statement")

    def input_set(self) -> SetSpec:
        tok = self.tok
        if tok.text not in ("Box", "LinfBall", "L2Ball"):
            raise self.error(f"expected an input set (Box, LinfBall or L2Ball), found {self.found()}")
        self.i += 1
        self.take("(", f"after {tok.text}")
        first = self.value("(lower bound)" if tok.text == "Box" else "(center)")
        self.take(",", "between the arguments")
        second = self.value("(upper bound)") if tok.text == "Box" else self.number("(radius)")
        self.take(")", f"to close {tok.text}(...)")
        try:
            SetSpec(tok.text, first, second).build()
        except ValueError as err:
            raise self.error(f"invalid {tok.text}: {err}", tok) from None
        return SetSpec(tok.text, first, second)

    def condition(self) -> list[Comparison]:
        parts = self.comparison()
        while self.accept("and"):
            parts += self.comparison()
        return parts

    def comparison(self) -> list[Comparison]:
        left = self.expr()
        if self.tok.text not in _COMPARE:
            raise self.error(f"expected a comparison (<=, <, >=, >, ==), found {self.found()}")
        parts = []
        while self.tok.text in _COMPARE:
            op = self.tok.text
            self.i += 1
            right = self.expr()
            parts.append(Comparison(op, left, right))
            left = right
        return parts

    def expr(self) -> Any:
        e = self.term()
        while self.tok.text in ("+", "-"):
            op = self.tok.text
            self.i += 1
            e = Bin(op, e, self.term())
        return e

    def term(self) -> Any:
        e = self.factor()
        while self.tok.text in ("*", "/"):
            op = self.tok.text
            self.i += 1
            e = Bin(op, e, self.factor())
        return e

    def factor(self) -> Any:
        tok = self.tok
        if tok.kind == "num":
            self.i += 1
            return Num(float(tok.text))
        if self.accept("-"):
            return Bin("-", Num(0.0), self.factor())
        if self.accept("("):
            e = self.expr()
            self.take(")", "to close the parenthesis")
            return e
        if tok.text == "output":
            self.i += 1
            if self.accept("["):
                index = self.integer("as the output index")
                self.take("]", "to close the index")
                return Out(index, tok.offset)
            return Out(None, tok.offset)
        if tok.text in _FUNCS:
            self.i += 1
            self.take("(", f"after {tok.text}")
            arg = self.expr()
            self.take(")", f"to close {tok.text}(...)")
            return Call(tok.text, arg)
        if tok.kind == "name":
            raise self.error(
                f"unknown name {tok.text!r}: a condition may use output, output[i], numbers and {', '.join(_FUNCS)}"
            )
        raise self.error(f"expected a number, output or a function, found {self.found()}")

    def robust(self) -> dict[str, Any]:
        self.take("at", "after 'robust'")
        point = self.value("(the point)")
        self.take("within", "after the point")
        norm_tok = self.tok
        if norm_tok.text not in ("linf", "l2"):
            raise self.error(f"expected a norm (linf or l2), found {self.found()}")
        self.i += 1
        eps_tok = self.tok
        eps = self.number("(the radius)")
        if eps < 0:
            raise self.error("the radius must be >= 0", eps_tok)
        out: dict[str, Any] = {"x": point, "eps": eps, "norm": "inf" if norm_tok.text == "linf" else "2"}
        out["label"], out["clip"] = None, None
        while self.tok.kind != "end":
            if self.accept("label"):
                out["label"] = self.integer("as the label")
            elif self.accept("clip"):
                self.take("(", "after 'clip'")
                lo = self.number("(clip lower bound)")
                self.take(",", "between the clip bounds")
                hi = self.number("(clip upper bound)")
                self.take(")", "to close clip(...)")
                out["clip"] = (lo, hi)
            else:
                raise self.error(f"expected 'label', 'clip' or the end of the statement, found {self.found()}")
        return out


# -- from statements to properties ----------------------------------------------------------------


def _linear(e: Any, n: int) -> tuple[np.ndarray, float] | None:
    """``(c, k)`` with ``e == c . y + k`` for scalar-valued linear ``e``; None otherwise."""
    if isinstance(e, Num):
        return np.zeros(n), e.value
    if isinstance(e, Out):
        if e.index is None:
            return None
        c = np.zeros(n)
        c[e.index] = 1.0
        return c, 0.0
    if isinstance(e, Call):
        if e.name == "sum" and isinstance(e.arg, Out) and e.arg.index is None:
            return np.ones(n), 0.0
        return None
    if isinstance(e, Bin):
        a, b = _linear(e.left, n), _linear(e.right, n)
        if a is None or b is None:
            return None
        if e.op == "+":
            return a[0] + b[0], a[1] + b[1]
        if e.op == "-":
            return a[0] - b[0], a[1] - b[1]
        if e.op == "*":
            if not a[0].any():
                return a[1] * b[0], a[1] * b[1]
            if not b[0].any():
                return b[1] * a[0], b[1] * a[1]
            return None
        if e.op == "/" and not b[0].any() and b[1] != 0:
            return a[0] / b[1], a[1] / b[1]
    return None


def _rows(cmp: Comparison, n: int) -> list[tuple[np.ndarray, float]] | None:
    """Rows ``c . y <= d`` equivalent to the comparison (``==`` within EQ_TOL), or None if nonlinear."""
    left, right = cmp.left, cmp.right
    pairs: list[tuple[Any, Any]]
    vec_l = isinstance(left, Out) and left.index is None
    vec_r = isinstance(right, Out) and right.index is None
    if vec_l or vec_r:  # output <op> number: element-wise
        other = right if vec_l else left
        if vec_l and vec_r or _linear(other, n) is None or _linear(other, n)[0].any():
            return None
        pairs = [(Out(i, 0), other) if vec_l else (other, Out(i, 0)) for i in range(n)]
    else:
        pairs = [(left, right)]
    rows = []
    for a, b in pairs:
        la, lb = _linear(a, n), _linear(b, n)
        if la is None or lb is None:
            return None
        c, k = la[0] - lb[0], la[1] - lb[1]  # a - b = c . y + k
        if cmp.op in ("<=", "<"):
            rows.append((c, -k))
        elif cmp.op in (">=", ">"):
            rows.append((-c, k))
        else:
            rows += [(c, -k + EQ_TOL), (-c, k + EQ_TOL)]
    return rows


def _argmax_label(cmp: Comparison) -> int | None:
    for a, b in ((cmp.left, cmp.right), (cmp.right, cmp.left)):
        if cmp.op == "==" and isinstance(a, Call) and a.name == "argmax" and isinstance(a.arg, Out):
            if a.arg.index is None and isinstance(b, Num) and b.value == int(b.value):
                return int(b.value)
    return None


def _is_sum_one(cmp: Comparison) -> bool:
    for a, b in ((cmp.left, cmp.right), (cmp.right, cmp.left)):
        summed = isinstance(a, Call) and a.name == "sum" and isinstance(a.arg, Out) and a.arg.index is None
        if cmp.op == "==" and summed and isinstance(b, Num) and b.value == 1.0:
            return True
    return False


def _check_indices(e: Any, n: int, statement: str) -> None:
    if isinstance(e, Out) and e.index is not None and not 0 <= e.index < n:
        raise ProveSyntaxError(f"output[{e.index}] is out of range: the model has {n} outputs", statement, e.offset)
    for child in (getattr(e, "left", None), getattr(e, "right", None), getattr(e, "arg", None)):
        if child is not None:
            _check_indices(child, n, statement)


class Obligation:
    """A parsed ``prove`` statement: turns into :mod:`axiom.verify` properties for a model.

    ``statement`` (the text), ``kind`` (``"forall"`` or ``"robust"``) and ``location`` (where
    ``prove`` was called) are attributes; :meth:`properties` builds the properties.

    Example:
        >>> ob = prove("robust at [0.5, 0.5] within linf 0.1 label 1")
        >>> p = ob.properties(n_out=2)[0]
        >>> type(p).__name__, p.eps, p.label
        ('LocalRobustness', 0.1, 1)
    """

    def __init__(self, statement: str, kind: str, input_set: Any, body: Any, location: SourceLocation | None) -> None:
        self.statement = statement
        self.kind = kind
        self.input_set = input_set
        self.body = body
        self.location = location

    def properties(self, n_out: int, softmax_output: bool = False) -> list[Any]:
        """The properties that together state this obligation, for a model with ``n_out`` outputs.

        ``softmax_output`` (the model ends in a softmax) lets ``sum(output) == 1`` use the
        verifier's softmax procedure.
        """
        from axiom.verify.properties import Classification, LinearProperty, LocalRobustness, Property

        if self.kind == "robust":
            b = self.body
            p = LocalRobustness(b["x"], b["eps"], b["label"], norm=b["norm"], clip=b["clip"])
            p.name = self.statement
            return [p]
        from axiom.dsl.conditions import ExpressionCondition, SumIsOne

        for part in self.body:
            _check_indices(part, n_out, self.statement)
        over = self.input_set.build()
        props: list[Any] = []
        rows: list[tuple[np.ndarray, float]] = []
        other: list[Comparison] = []
        for part in self.body:
            label = _argmax_label(part)
            if label is not None:
                if not 0 <= label < n_out:
                    raise ProveSyntaxError(f"label {label} is out of range for {n_out} outputs", self.statement, 0)
                props.append(Classification(label, over=over))
            elif softmax_output and _is_sum_one(part):
                props.append(Property(SumIsOne(EQ_TOL), over))
            elif (r := _rows(part, n_out)) is not None:
                rows += r
            else:
                other.append(part)
        if rows:
            props.append(LinearProperty([c for c, _ in rows], [d for _, d in rows], over=over))
        if other:
            props.append(Property(ExpressionCondition(other, self.statement), over))
        for p in props:
            p.name = self.statement if len(props) == 1 else f"{self.statement} [{type(p.condition).__name__}]"
        return props

    def __repr__(self) -> str:
        return f"prove({self.statement!r})"


def parse(statement: str, names: dict[str, Any] | None = None) -> Obligation:
    """Parse a statement (see the module grammar) into an :class:`Obligation`; raise :class:`ProveSyntaxError`.

    Example:
        >>> parse("forall x in Box(-1, 1): argmax(output) == 0").kind
        'forall'
    """
    if not isinstance(statement, str):
        raise TypeError(f"prove: the statement must be a string, got {type(statement).__name__}")
    kind, input_set, body = _Parser(statement, dict(names or {})).statement()
    return Obligation(statement, kind, input_set, body, None)


def prove(statement: str, **names: Any) -> Obligation:
    """Record a proof obligation. In an ``@axiom`` class body it becomes one of the model's obligations.

    Names used in the statement (points, bounds) come from ``names``, else from the caller's
    variables. Raises :class:`ProveSyntaxError` (with the column) when it does not parse.

    Example:
        >>> import numpy as np
        >>> x0 = np.zeros(2)
        >>> prove("robust at x0 within linf 0.03").body["eps"]
        0.03
    """
    frame = sys._getframe(1)
    scope = {**frame.f_globals, **frame.f_locals, **names}
    ob = parse(statement, scope)
    ob.location = frame_location(frame)
    namespace = frame.f_locals
    if "__module__" in namespace and "__qualname__" in namespace:  # called in a class body
        namespace.setdefault("__axiom_proofs__", []).append(ob)
    return ob


__all__ = ["Obligation", "ProveSyntaxError", "parse", "prove", "tokenize"]
