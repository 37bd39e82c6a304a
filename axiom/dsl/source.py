"""Where user code is: the file, line and text of a call site, for error messages.

Tracing and ``ensure`` point at the user's own source (``model.py:14``), not at Axiom's
internals. The location comes from the calling frame's current instruction
(``co_positions``, Python 3.11+), so it works for multi-line pipelines; the text comes from
:mod:`linecache` and is omitted when the source is not available.

Example:
    >>> loc = call_site(0)
    >>> loc.lineno > 0, loc.filename.endswith(">") or loc.filename.endswith(".py")
    (True, True)
"""

from __future__ import annotations

import ast
import linecache
import sys
import textwrap
from dataclasses import dataclass
from types import FrameType


@dataclass(frozen=True)
class SourceLocation:
    """A span of user source: file, first/last line, columns (0-based) and the source lines.

    Example:
        >>> loc = SourceLocation("model.py", 3, 3, 4, 18, "    x >> Dense(10)")
        >>> str(loc), loc.segment()
        ('model.py:3', 'x >> Dense(10)')
    """

    filename: str
    lineno: int
    end_lineno: int
    col: int | None
    end_col: int | None
    text: str = ""

    def __str__(self) -> str:
        return f"{self.filename}:{self.lineno}"

    def segment(self) -> str:
        """The source text of the span (``""`` when the source is unavailable)."""
        if not self.text:
            return ""
        lines = self.text.splitlines()
        if self.col is None or self.end_col is None:
            return textwrap.dedent(self.text).strip()
        if len(lines) == 1:
            return lines[0][self.col : self.end_col]
        return "\n".join([lines[0][self.col :], *lines[1:-1], lines[-1][: self.end_col]])

    def line_text(self) -> str:
        """The last source line of the span, stripped (the line an error shows)."""
        lines = self.text.splitlines()
        return lines[-1].strip() if lines else ""


def right_operand(loc: SourceLocation) -> SourceLocation:
    r"""For a binary operation ``a >> b`` at ``loc``, the location of ``b`` (else ``loc`` itself).

    Example:
        >>> loc = SourceLocation("m.py", 4, 5, 8, 23, "        x\n        >> Dense(4, 10)")
        >>> r = right_operand(loc)
        >>> r.lineno, r.segment()
        (5, 'Dense(4, 10)')
    """
    segment = loc.segment()
    if not segment or loc.col is None:
        return loc
    try:
        node = ast.parse("(" + segment + ")", mode="eval").body
    except SyntaxError:
        return loc
    if not isinstance(node, ast.BinOp) or node.right.end_lineno is None or node.right.end_col_offset is None:
        return loc
    right = node.right

    def col(line: int, offset: int) -> int:
        return loc.col + offset - 1 if line == 1 else offset  # type: ignore[operator]

    lines = loc.text.splitlines()[right.lineno - 1 : right.end_lineno]
    return SourceLocation(
        loc.filename,
        loc.lineno + right.lineno - 1,
        loc.lineno + right.end_lineno - 1,
        col(right.lineno, right.col_offset),
        col(right.end_lineno, right.end_col_offset),
        "\n".join(lines),
    )


def frame_location(frame: FrameType) -> SourceLocation:
    """The span of the instruction ``frame`` is executing (e.g. the ``>>`` being applied).

    Example:
        >>> import sys
        >>> frame_location(sys._getframe()).lineno > 0
        True
    """
    code = frame.f_code
    lineno, end_lineno, col, end_col = frame.f_lineno, frame.f_lineno, None, None
    positions = list(code.co_positions())
    index = frame.f_lasti // 2
    if 0 <= index < len(positions):
        lo, hi, c0, c1 = positions[index]
        if lo is not None:
            lineno, end_lineno, col, end_col = lo, hi if hi is not None else lo, c0, c1
    lines = [linecache.getline(code.co_filename, n, frame.f_globals) for n in range(lineno, end_lineno + 1)]
    text = "".join(lines).rstrip("\n") if all(lines) else ""
    return SourceLocation(code.co_filename, lineno, end_lineno, col, end_col, text)


def call_site(depth: int = 1) -> SourceLocation:
    """The location in the caller ``depth`` frames up (0 = whoever calls ``call_site``).

    Example:
        >>> call_site(0).lineno > 0
        True
    """
    return frame_location(sys._getframe(depth + 1))


def first_argument_text(loc: SourceLocation) -> str:
    """Source text of the first argument of the call at ``loc`` (``""`` when unknown).

    Example:
        >>> first_argument_text(SourceLocation("m.py", 1, 1, 4, 35, "    ensure(y.sum() > 0, 'positive')"))
        'y.sum() > 0'
    """
    segment = loc.segment()
    if not segment:
        return ""
    try:
        tree = ast.parse(textwrap.dedent(segment).strip(), mode="eval")
    except SyntaxError:
        return ""
    call = tree.body
    if not isinstance(call, ast.Call) or not call.args:
        return ""
    return ast.unparse(call.args[0])
