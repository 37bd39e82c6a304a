"""VNN-LIB reader/writer: every benchmark file, an independent regex parser, hand-written specs,
round trips and located errors."""

from __future__ import annotations

import re
from pathlib import Path

import numpy as np
import pytest
from hypothesis import given
from hypothesis import strategies as st

from axiom.verify import Box, BoxUnion, Classification, LinfBall, VnnlibProperty
from axiom.verify.properties import Clause
from axiom.verify.vnnlib import (
    And,
    Comparison,
    Or,
    VnnlibError,
    format_counterexample,
    parse_counterexample,
    parse_vnnlib,
    read_vnnlib,
    write_vnnlib,
)

BENCH = Path("/work/shared/benchmarks")
FILES = sorted(BENCH.rglob("*.vnnlib")) if BENCH.is_dir() else []
needs_bench = pytest.mark.skipif(not FILES, reason="shared benchmarks not available")

DECL = "(declare-const X_0 Real)\n(declare-const X_1 Real)\n(declare-const Y_0 Real)\n(declare-const Y_1 Real)\n"
BOX = "(assert (>= X_0 -1))\n(assert (<= X_0 1))\n(assert (>= X_1 0))\n(assert (<= X_1 2))\n"


def one(text: str, **kw) -> VnnlibProperty:
    props = read_vnnlib(text, **kw)
    assert len(props) == 1
    return props[0]


def rows(prop: VnnlibProperty) -> list[tuple[list[list[float]], list[float]]]:
    return [(c.C.tolist(), c.d.tolist()) for c in prop.condition.clauses]


# ----------------------------------------------------------------------------------------------
# An independent mini parser following the organisers' regexes (notes §4.1)
# ----------------------------------------------------------------------------------------------

_CMP = r"\((<=|>=) ([^\s()]+) ([^\s()]+)\)"
_DECLARE = re.compile(r"^\(declare-const (X|Y)_(\S+) Real\)$")
_SIMPLE = re.compile(r"^\(assert " + _CMP + r"\)$")
_CMP_NC = r"\((?:<=|>=) [^\s()]+ [^\s()]+\)"
_DNF = re.compile(r"^\(assert \(or((?: \(and(?: " + _CMP_NC + r")+\))+)\)\)$")


def _statements(text: str) -> list[str]:
    out, cur, depth = [], "", 0
    for line in text.splitlines():
        line = line.split(";", 1)[0].strip()
        if not line:
            continue
        cur += " " + line
        depth += line.count("(") - line.count(")")
        if depth == 0:
            s = re.sub(r"\s+", " ", cur).strip()
            s = re.sub(r"\(\s", "(", s)
            s = re.sub(r"\s\)", ")", s)
            s = re.sub(r"\)\s*\(", ") (", s)
            out.append(s)
            cur = ""
    assert depth == 0
    return out


def mini_parse(text: str) -> list[tuple[np.ndarray, np.ndarray, list[tuple[np.ndarray, np.ndarray]]]]:
    """(lower, upper, [(C, d) per disjunct]) per disjunct of the output/mixed part, regex only."""
    n = {"X": 0, "Y": 0}
    simple: list[tuple[str, str, str]] = []
    dnfs: list[list[list[tuple[str, str, str]]]] = []
    for s in _statements(text):
        if m := _DECLARE.match(s):
            assert int(m.group(2)) == n[m.group(1)]
            n[m.group(1)] += 1
        elif m := _SIMPLE.match(s):
            simple.append(m.groups())
        elif m := _DNF.match(s):
            clauses = re.findall(r"\(and((?: " + _CMP_NC + r")+)\)", m.group(1))
            dnfs.append([re.findall(_CMP, c) for c in clauses])
        else:
            raise AssertionError(f"mini parser cannot read {s!r}")
    assert len(dnfs) <= 1

    def apply(atoms, lo, hi, crow):
        for op, a, b in atoms:
            if op == ">=":
                a, b = b, a  # a <= b
            if a.startswith("X_"):
                hi[int(a[2:])] = min(hi[int(a[2:])], float(b))
            elif b.startswith("X_"):
                lo[int(b[2:])] = max(lo[int(b[2:])], float(a))
            else:
                r = np.zeros(n["Y"])
                d = 0.0
                for t, s in ((a, 1.0), (b, -1.0)):
                    if t.startswith("Y_"):
                        r[int(t[2:])] += s
                    else:
                        d -= s * float(t)
                crow.append((r, d))

    lo, hi, base = np.full(n["X"], -np.inf), np.full(n["X"], np.inf), []
    apply(simple, lo, hi, base)
    out = []
    for clause in dnfs[0] if dnfs else [[]]:
        l2, h2, r2 = lo.copy(), hi.copy(), list(base)
        apply(clause, l2, h2, r2)
        C = np.array([r for r, _ in r2]).reshape(len(r2), n["Y"])
        out.append((l2, h2, [(C, np.array([d for _, d in r2]))]))
    return out


@needs_bench
@pytest.mark.parametrize("path", FILES, ids=lambda p: str(p.relative_to(BENCH)))
def test_benchmark_files_parse_and_match_the_regex_parser(path: Path) -> None:
    props = read_vnnlib(path)
    expected = mini_parse(path.read_text())
    got = [(p.input_set.lower, p.input_set.upper, c) for p in props for c in p.condition.clauses]
    assert len(got) == len(expected)
    for (lo, hi, c), (elo, ehi, [(eC, ed)]) in zip(got, expected):
        np.testing.assert_array_equal(lo, elo)
        np.testing.assert_array_equal(hi, ehi)
        np.testing.assert_array_equal(c.C, eC)
        np.testing.assert_array_equal(c.d + 0.0, ed + 0.0)
    assert all(p.source == path.name for p in props)


@needs_bench
def test_benchmark_sizes() -> None:
    sizes = {}
    for path in FILES:
        [p] = read_vnnlib(path)
        sizes[path.parent.name if path.parent.name != "test" else path.stem] = (
            p.input_set.lower.size,
            p.condition.clauses[0].C.shape[1],
        )
    assert sizes["acasxu"] == (5, 5)
    assert sizes["mnistfc"] == (784, 10)
    assert sizes["maxpool_specs"] == sizes["avgpool_specs"] == (784, 10)
    assert sizes["test_nano"] == sizes["test_small"] == sizes["test_tiny"] == (1, 1)
    assert sizes["test_prop"] == (5, 5)


@needs_bench
def test_known_contents() -> None:
    [p1] = read_vnnlib(BENCH / "acasxu/prop_1.vnnlib")
    assert p1.input_set.lower.tolist() == [0.6, -0.5, -0.5, 0.45, -0.5]
    assert p1.input_set.upper.tolist() == [0.679857769, 0.5, 0.5, 0.5, -0.45]
    assert rows(p1) == [([[-1.0, 0, 0, 0, 0]], [-3.991125645861615])]
    [p2] = read_vnnlib(BENCH / "acasxu/prop_2.vnnlib")
    assert len(p2.condition.clauses) == 1 and p2.condition.clauses[0].C.shape == (4, 5)
    assert p2.condition.clauses[0].C[0].tolist() == [-1.0, 1.0, 0, 0, 0]  # Y_1 <= Y_0
    [m] = read_vnnlib(BENCH / "mnistfc/prop_0_0.03.vnnlib", input_shape=(1, 28, 28))
    assert m.input_set.lower.shape == (1, 28, 28)
    # "some other class >= class 8": y_j >= y_8, j != 8
    y = np.zeros((2, 10))
    y[0, 8] = 1.0  # label 8 wins: safe
    y[1, 3] = 1.0  # class 3 wins: unsafe
    assert m.holds(y).tolist() == [True, False]
    [small] = read_vnnlib(BENCH / "test/test_small.vnnlib")  # mixed X/Y disjunct
    assert (small.input_set.lower.tolist(), small.input_set.upper.tolist()) == ([-1.0], [1.0])
    assert rows(small) == [([[-1.0]], [-100.0])]


# ----------------------------------------------------------------------------------------------
# Hand-written specifications
# ----------------------------------------------------------------------------------------------


def test_nested_and_or_matches_direct_evaluation() -> None:
    spec = (
        DECL
        + "(declare-const Y_2 Real)\n"
        + BOX
        + """(assert (and (or (and (<= Y_0 1) (>= Y_1 2)) (<= Y_2 0))
                          (or (>= Y_0 -0.5) (and (<= Y_1 -5) (or (>= Y_2 Y_0) (<= Y_2 -3))))))"""
    )
    [p] = read_vnnlib(spec)
    assert len(p.condition.clauses) == 6  # (2 disjuncts) x (1 + 2 disjuncts)

    def unsafe(y):
        y0, y1, y2 = y
        return ((y0 <= 1 and y1 >= 2) or y2 <= 0) and (y0 >= -0.5 or (y1 <= -5 and (y2 >= y0 or y2 <= -3)))

    ys = np.random.default_rng(0).uniform(-8, 8, (4000, 3))
    ys[:100] = np.round(ys[:100])  # some points on the boundaries
    assert p.holds(ys).tolist() == [not unsafe(y) for y in ys]


def test_comments_whitespace_and_multiline() -> None:
    spec = """; header comment
(declare-const X_0 Real) ; trailing comment
(declare-const   ; comment inside a declaration
   Y_0
   Real)
(assert   ; comment in an assert
  (<=     ; more
     X_0
     ; a whole line
     1))(assert (>= X_0 -1));no space before comment
\t(assert\t(or\r\n (and (<= Y_0 -1)) ; last
))"""
    p = one(spec)
    assert (p.input_set.lower.tolist(), p.input_set.upper.tolist()) == ([-1.0], [1.0])
    assert rows(p) == [([[1.0]], [-1.0])]


@pytest.mark.parametrize(
    "literal, value",
    [("1e-06", 1e-06), ("2.5E+3", 2500.0), ("-1.5e2", -150.0), ("+3", 3.0), (".5", 0.5), ("5.", 5.0), ("-0", 0.0)],
)
def test_numbers(literal: str, value: float) -> None:
    p = one(f"(declare-const X_0 Real)(declare-const Y_0 Real)(assert (>= X_0 -1e9))(assert (<= X_0 1e9))"
            f"(assert (<= Y_0 {literal}))")  # fmt: skip
    assert rows(p) == [([[1.0]], [value])]


def test_both_operand_orders() -> None:
    a = one(DECL + "(assert (<= X_0 1))(assert (>= X_0 -1))(assert (<= X_1 2))(assert (>= X_1 0))(assert (>= Y_0 3))")
    b = one(DECL + "(assert (>= 1 X_0))(assert (<= -1 X_0))(assert (>= 2 X_1))(assert (<= 0 X_1))(assert (<= 3 Y_0))")
    assert rows(a) == rows(b) == [([[-1.0, 0.0]], [-3.0])]
    np.testing.assert_array_equal(a.input_set.lower, b.input_set.lower)
    np.testing.assert_array_equal(a.input_set.upper, b.input_set.upper)
    c = one(DECL + BOX + "(assert (>= Y_1 Y_0))")
    d = one(DECL + BOX + "(assert (<= Y_0 Y_1))")
    assert rows(c) == rows(d) == [([[1.0, -1.0]], [0.0])]


def test_mixed_xy_disjunctions() -> None:
    # different boxes and different clauses: one property each
    props = read_vnnlib(
        DECL
        + """(assert (or (and (>= X_0 0) (<= X_0 1) (>= X_1 0) (<= X_1 1) (>= Y_0 1))
                        (and (>= X_0 1) (<= X_0 2) (>= X_1 0) (<= X_1 1) (<= Y_1 -1))))""",
        input_shape=(2,),
    )
    assert len(props) == 2
    assert [p.input_set.lower.tolist() for p in props] == [[0.0, 0.0], [1.0, 0.0]]
    assert [rows(p) for p in props] == [[([[-1.0, 0.0]], [-1.0])], [([[0.0, 1.0]], [-1.0])]]
    assert props[0].source is None
    # same clause on two boxes: a BoxUnion (ACAS Xu property 6 style)
    [u] = read_vnnlib(
        DECL
        + """(assert (or (and (>= X_0 0) (<= X_0 1)) (and (>= X_0 2) (<= X_0 3))))
             (assert (>= X_1 0)) (assert (<= X_1 1)) (assert (<= Y_0 Y_1))"""
    )
    assert isinstance(u.input_set, BoxUnion)
    assert [b.lower.tolist() for b in u.input_set.boxes()] == [[0.0, 0.0], [2.0, 0.0]]
    assert rows(u) == [([[1.0, -1.0]], [0.0])]
    # same box, two clauses: one property with both (top-level box distributed into the or)
    [s] = read_vnnlib(DECL + BOX + "(assert (or (and (>= Y_0 1) (<= X_0 1)) (and (<= Y_1 -1))))")
    assert isinstance(s.input_set, Box) and len(s.condition.clauses) == 2


def test_linear_terms_not_equal_strict_and_chains() -> None:
    p = one(DECL + BOX + "(assert (<= (+ Y_0 (* 2 Y_1) (- 3)) (/ Y_1 2)))")
    # y0 + 2 y1 - 3 - y1/2 <= 0
    assert rows(p) == [([[1.0, 1.5]], [3.0])]
    p = one(DECL + BOX + "(assert (> (- Y_0 Y_1) 0.5))")  # strict read as non-strict
    assert rows(p) == [([[-1.0, 1.0]], [-0.5])]
    p = one(DECL + BOX + "(assert (not (or (<= Y_0 0) (> Y_1 1))))")  # Y_0 > 0 and Y_1 <= 1
    assert rows(p) == [([[-1.0, 0.0], [0.0, 1.0]], [0.0, 1.0])]
    p = one(DECL + BOX + "(assert (= Y_0 Y_1))")
    assert rows(p) == [([[1.0, -1.0], [-1.0, 1.0]], [0.0, 0.0])]
    p = one(DECL + BOX + "(assert (<= -1 Y_0 Y_1 5))")  # chain
    assert len(p.condition.clauses[0].d) == 3
    p = one(DECL + "(assert (<= -1 X_0 1))(assert (and (<= (* 2 X_1) 3) (<= (- X_1) 4)))(assert true)")
    assert p.input_set.lower.tolist() == [-1.0, -4.0] and p.input_set.upper.tolist() == [1.0, 1.5]
    p = one(DECL + "(assert (<= -1 X_0 1))(assert (<= 0 (* 2 X_1) 3))(assert (<= Y_0 0))")
    assert p.input_set.lower.tolist() == [-1.0, 0.0] and p.input_set.upper.tolist() == [1.0, 1.5]
    p = one(DECL + "(assert (<= -1 X_0 1))(assert (<= 0 (* 3 X_1) 1))(assert (<= Y_0 0))")
    assert p.input_set.upper[1] >= 1 / 3 and p.input_set.upper[1] - 1 / 3 < 1e-15  # rounded outward


def test_no_output_atoms_is_always_unsafe() -> None:
    p = one(DECL + BOX)
    assert p.condition.clauses[0].C.shape == (0, 2)
    assert p.holds(np.zeros((1, 2))).tolist() == [False]


def test_empty_disjunct_dropped_and_all_empty_is_an_error() -> None:
    spec = DECL + "(assert (<= X_0 1.5))(assert (>= X_1 0))(assert (<= X_1 1))"
    [p] = read_vnnlib(spec + "(assert (or (and (>= X_0 0) (<= Y_0 0)) (and (>= X_0 2) (<= Y_1 0))))")
    assert p.input_set.lower.tolist() == [0.0, 0.0] and rows(p) == [([[1.0, 0.0]], [0.0])]
    with pytest.raises(VnnlibError, match="lower bound 2.0 > upper bound 1.5") as e:
        read_vnnlib(spec + "(assert (or (and (>= X_0 2) (<= Y_0 0)) (and (>= X_0 3) (<= Y_1 0))))")
    assert e.value.line == 5


def test_input_shape_and_n_outputs() -> None:
    p = one(DECL + BOX + "(assert (<= Y_0 0))", input_shape=(1, 2), n_outputs=2)
    assert p.input_set.lower.shape == (1, 2)
    with pytest.raises(VnnlibError, match="2 inputs but input_shape"):
        read_vnnlib(DECL + BOX + "(assert (<= Y_0 0))", input_shape=(3,))
    with pytest.raises(VnnlibError, match="declares 2 outputs but the model has 3"):
        read_vnnlib(DECL + BOX + "(assert (<= Y_0 0))", n_outputs=3)
    p = one("(declare-const X_0 Real)(assert (<= X_0 1))(assert (>= X_0 0))", n_outputs=4)
    assert p.condition.clauses[0].C.shape == (0, 4)


def test_dnf_blowup_guard() -> None:
    atoms = " ".join(f"(or (<= Y_0 {i}) (>= Y_1 {i}))" for i in range(20))
    with pytest.raises(VnnlibError, match="more than 100000 disjuncts") as e:
        read_vnnlib(DECL + BOX + "\n\n(assert (and " + atoms + "))")
    assert e.value.line == 11
    [p] = read_vnnlib(DECL + BOX + "(assert (and " + atoms[: atoms.index("(or (<= Y_0 4)")] + "))")
    assert len(p.condition.clauses) == 16
    with pytest.raises(VnnlibError, match="more than 8 disjuncts"):
        read_vnnlib(DECL + BOX + "(assert (and " + atoms + "))", max_disjuncts=8)


def test_parse_vnnlib_ast() -> None:
    s = parse_vnnlib(DECL + BOX + "(assert (or (and (<= Y_0 1)) (>= Y_1 2)))")
    assert (s.n_inputs, s.n_outputs, len(s.asserts)) == (2, 2, 5)
    assert s.declarations == {"X_0": 1, "X_1": 2, "Y_0": 3, "Y_1": 4}
    last = s.asserts[-1]
    assert isinstance(last, Or) and isinstance(last.args[0], And) and isinstance(last.args[1], Comparison)
    assert last.line == 9 and last.args[1].op == ">="


def test_ignored_commands_and_declare_fun() -> None:
    p = one("(set-logic QF_LRA)(declare-fun X_0 () Real)(declare-const Y_0 Real)"
            "(assert (<= -1 X_0 1))(assert (<= Y_0 0))(check-sat)(get-model)(exit)")  # fmt: skip
    assert rows(p) == [([[1.0]], [0.0])]


def test_read_from_path(tmp_path: Path) -> None:
    f = tmp_path / "spec.vnnlib"
    f.write_text(DECL + BOX + "(assert (<= Y_0 0))")
    [a] = read_vnnlib(f)
    [b] = read_vnnlib(str(f))
    assert a.source == b.source == "spec.vnnlib"
    bad = tmp_path / "bad.vnnlib"
    bad.write_text(DECL + "(assert (<= X_0 1)")
    with pytest.raises(VnnlibError, match=r"bad\.vnnlib:5:1: '\(' is never closed"):
        read_vnnlib(bad)


# ----------------------------------------------------------------------------------------------
# Errors with their line numbers
# ----------------------------------------------------------------------------------------------

ERRORS = [
    ("unclosed", DECL + "(assert (<= X_0 1)\n", 5, "never closed"),
    ("extra close", DECL + BOX + "(assert (<= Y_0 1)))\n", 9, "unexpected ')'"),
    ("unknown variable", DECL + BOX + "(assert (<= Z_0 1))", 9, "unknown variable 'Z_0'"),
    ("undeclared variable", DECL + BOX + "\n(assert (<= Y_2 1))", 10, "undeclared variable Y_2"),
    ("declared twice", DECL + "(declare-const Y_1 Real)\n" + BOX, 5, "Y_1 is declared twice (first at line 4)"),
    ("used before declaration", "(assert (<= X_0 1))\n(declare-const X_0 Real)", 1, "used before its declaration"),
    ("unsupported operator", DECL + BOX + "(assert (distinct Y_0 Y_1))", 9, "unsupported operator 'distinct'"),
    ("unsupported term operator", DECL + BOX + "(assert (<= (abs Y_0) 1))", 9, "unsupported operator 'abs'"),
    ("missing lower bound", DECL + "(assert (<= X_0 1))(assert (<= X_1 1))(assert (>= X_1 0))", 1, "X_0 has no lower"),
    ("missing upper bound", DECL + "(assert (>= X_0 1))(assert (<= X_1 1))(assert (>= X_1 0))", 1, "X_0 has no upper"),
    ("missing bound, 2nd var", DECL + "(assert (<= -1 X_0 1))\n(assert (<= X_1 1))", 2, "X_1 has no lower"),
    ("lower > upper", DECL + "(assert (>= X_0 1))\n\n(assert (<= X_0 0))(assert (<= 0 X_1 1))", 7, "lower bound 1.0 >"),
    ("garbage number", DECL + BOX + "(assert (<= Y_0 1.2.3))", 9, "expected a number or a variable, got '1.2.3'"),
    ("garbage char", DECL + BOX + "(assert (<= Y_0 #1))", 9, "expected a number or a variable, got '#1'"),
    ("string token", DECL + BOX + '(assert (<= Y_0 "1"))', 9, "unsupported token"),
    ("top-level symbol", DECL + "assert", 5, "expected '(' at top level"),
    ("mixed atom", DECL + BOX + "(assert (<= X_0 Y_0))", 9, "mixes input (X) and output (Y)"),
    ("two inputs", DECL + BOX + "(assert (<= X_0 X_1))", 9, "bound one variable by a constant"),
    ("nonlinear", DECL + BOX + "(assert (<= (* Y_0 Y_1) 1))", 9, "nonlinear product"),
    ("divide by variable", DECL + BOX + "(assert (<= (/ 1 Y_0) 1))", 9, "constant divisors"),
    ("divide by zero", DECL + BOX + "(assert (<= (/ Y_0 0) 1))", 9, "division by zero"),
    ("wrong type", "(declare-const X_0 Int)", 1, "must be declared Real"),
    ("bad declaration", "(declare-const X_0)", 1, "malformed declaration"),
    ("bad name", "(declare-const x0 Real)", 1, "unsupported variable name 'x0'"),
    ("index gap", "(declare-const X_0 Real)\n(declare-const X_2 Real)", 2, "X_1 is not declared but X_2 is"),
    ("empty assert", DECL + "(assert)", 5, "takes exactly one formula"),
    ("bad formula", DECL + "(assert Y_0)", 5, "expected a formula"),
    ("unknown command", DECL + "(define-fun f () Real 1)", 5, "unsupported command 'define-fun'"),
    ("comparison arity", DECL + BOX + "(assert (<= Y_0))", 9, "needs two operands"),
    ("empty list", DECL + BOX + "(assert ())", 9, "empty '()'"),
    ("false assert", DECL + BOX + "(assert (<= 1 0))", 9, "constant comparison is false"),
]


@pytest.mark.parametrize("name, text, line, message", ERRORS, ids=[e[0] for e in ERRORS])
def test_errors_have_line_numbers(name: str, text: str, line: int, message: str) -> None:
    with pytest.raises(VnnlibError) as e:
        read_vnnlib(text)
    assert message in str(e.value), str(e.value)
    assert e.value.line == line, str(e.value)
    assert str(e.value).startswith(f"<string>:{line}")
    assert isinstance(e.value, ValueError)


def test_error_column_and_no_inputs() -> None:
    with pytest.raises(VnnlibError) as e:
        read_vnnlib(DECL + BOX + "(assert (<= Y_0   Q))")
    assert (e.value.line, e.value.col) == (9, 19)
    with pytest.raises(VnnlibError, match="no input variables"):
        read_vnnlib("(declare-const Y_0 Real)\n")
    with pytest.raises(VnnlibError, match="no input variables"):
        read_vnnlib("; nothing\n")


# ----------------------------------------------------------------------------------------------
# Writer round trips
# ----------------------------------------------------------------------------------------------


def _canon(props) -> set[tuple]:
    out = set()
    for p in props:
        for b in p.input_set.boxes():
            for c in p.condition.clauses:
                out.add(
                    (
                        (b.lower.ravel() + 0.0).tobytes(),
                        (b.upper.ravel() + 0.0).tobytes(),
                        c.C.shape,
                        (c.C + 0.0).tobytes(),
                        (c.d + 0.0).tobytes(),
                    )
                )
    return out


finite = st.floats(-1e12, 1e12, allow_nan=False, allow_infinity=False)
coef = st.one_of(st.sampled_from([0.0, 1.0, -1.0, 2.0, -0.5]), finite)


@st.composite
def properties(draw, n_in=None, n_out=None):
    n_in = n_in or draw(st.integers(1, 5))
    n_out = n_out or draw(st.integers(1, 4))

    def box():
        a = np.array(draw(st.lists(finite, min_size=n_in, max_size=n_in)))
        b = np.array(draw(st.lists(finite, min_size=n_in, max_size=n_in)))
        return Box(np.minimum(a, b), np.maximum(a, b))

    def clause():
        m = draw(st.integers(0, 3))
        C = np.array(draw(st.lists(st.lists(coef, min_size=n_out, max_size=n_out), min_size=m, max_size=m)))
        if draw(st.booleans()) and m:  # a "Y_i <= Y_j" row
            i, j = draw(st.permutations(range(n_out)))[:2] if n_out > 1 else (0, 0)
            C[0] = 0.0
            C[0, i] += 1.0
            C[0, j] -= 1.0
        d = np.array(draw(st.lists(finite | st.just(0.0), min_size=m, max_size=m)))
        return Clause(C.reshape(m, n_out), d.reshape(m))

    boxes = [box() for _ in range(draw(st.integers(1, 2)))]
    clauses = [clause() for _ in range(draw(st.integers(1, 3)))]
    input_set = boxes[0] if len(boxes) == 1 else BoxUnion(boxes)
    return VnnlibProperty(input_set, clauses)


@given(properties())
def test_write_read_round_trip(prop: VnnlibProperty) -> None:
    text = write_vnnlib(prop, comment="round trip\nsecond line")
    back = read_vnnlib(text)
    assert _canon(back) == _canon([prop])


@given(st.data())
def test_write_read_round_trip_several_properties(data) -> None:
    n_in, n_out = data.draw(st.integers(1, 3)), data.draw(st.integers(1, 3))
    props = data.draw(st.lists(properties(n_in, n_out), min_size=2, max_size=3))
    back = read_vnnlib(write_vnnlib(props))
    assert _canon(back) == _canon(props)


@needs_bench
@pytest.mark.parametrize("path", [p for p in FILES if "acasxu" in str(p) or "test" in str(p)], ids=lambda p: p.name)
def test_benchmark_round_trip(path: Path) -> None:
    props = read_vnnlib(path)
    assert _canon(read_vnnlib(write_vnnlib(props))) == _canon(props)


def test_write_other_properties() -> None:
    p = Classification(2, over=LinfBall(np.array([0.5, 0.5]), 0.1))
    [back] = read_vnnlib(write_vnnlib(p, n_outputs=3))
    np.testing.assert_allclose(back.input_set.lower, [0.4, 0.4])
    y = np.array([[0.0, 0.0, 1.0], [0.0, 1.0, 1.0], [2.0, 0.0, 1.0]])
    assert back.holds(y).tolist() == p.holds(y).tolist() == [True, False, False]
    with pytest.raises(ValueError, match="give n_outputs"):
        write_vnnlib(p)
    with pytest.raises(ValueError, match="non-finite"):
        write_vnnlib(VnnlibProperty(Box([-np.inf], [0.0]), [Clause(np.ones((1, 1)), np.zeros(1))]))


# ----------------------------------------------------------------------------------------------
# Counterexample text
# ----------------------------------------------------------------------------------------------


def test_counterexample_format_exact() -> None:
    x = np.array([[0.1, -2.5]], np.float32)
    y = np.array([1e-7, 3.0])
    text = format_counterexample(x, y)
    assert text == "((X_0 0.10000000149011612)\n (X_1 -2.5)\n (Y_0 1e-07)\n (Y_1 3.0))"
    bx, by = parse_counterexample("sat\n" + text)
    assert bx.astype(np.float32).tolist() == x.ravel().tolist() and by.tolist() == y.tolist()


@given(st.lists(st.floats(width=32, allow_nan=False, allow_infinity=False), min_size=1, max_size=6))
def test_counterexample_round_trip_is_exact(values) -> None:
    x = np.array(values, np.float32)
    bx, by = parse_counterexample(format_counterexample(x, x[:1]))
    assert np.array_equal(bx.astype(np.float32), x) and by.size == 1
