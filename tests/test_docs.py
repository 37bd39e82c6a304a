"""The documentation is tested like code.

1. Every fenced ``python`` block in ``README.md`` and ``docs/**/*.md`` runs. The blocks of one
   file run in order in one fresh namespace (a later block may use names from an earlier one),
   in a temporary working directory and in a copy of the current context (so a
   ``set_backend`` in the docs does not leak into other tests). A block whose first line starts
   with ``>>>`` is run as a doctest, so the outputs it shows are checked too. Blocks that must
   not run are fenced as ``text``, ``bash`` or ``console``; a block fenced
   ````` ```python requires=torch ````` runs only where ``torch`` can be imported.
2. The doctests of every importable module under ``axiom/`` pass (``axiom._core`` internals
   are skipped; an example that needs a missing optional dependency or an unbuilt native
   library is skipped unless ``AXIOM_REQUIRE_NATIVE=1``).
3. Every public function and class (``axiom.__all__`` and each public module's API) has a
   docstring with a runnable example (``>>>``).
"""

from __future__ import annotations

import contextvars
import doctest
import importlib
import importlib.util
import inspect
import io
import os
import pkgutil
import re
import traceback
from pathlib import Path
from types import ModuleType

import pytest

import axiom

ROOT = Path(__file__).resolve().parents[1]
MARKDOWN_FILES = sorted([ROOT / "README.md", *(ROOT / "docs").rglob("*.md")])

# ```python ... ``` (also ```py, ```python3); the fence may be indented, as inside a list item.
FENCE = re.compile(
    r"^(?P<indent>[ \t]*)(?P<fence>`{3,}|~{3,})[ \t]*(?P<info>[^\n`]*)\n(?P<body>.*?)^(?P=indent)(?P=fence)[ \t]*$",
    re.M | re.S,
)
PYTHON_INFOS = {"python", "py", "python3", "pycon"}

# Doctest flags for module docstrings and ``>>>`` blocks in the docs.
DOCTEST_FLAGS = doctest.ELLIPSIS


def python_blocks(path: Path) -> list[tuple[int, int, str, list[str]]]:
    """``(block number, line, code, required modules)`` of each python block of a Markdown file (1-based)."""
    text = path.read_text(encoding="utf-8")
    blocks = []
    for match in FENCE.finditer(text):
        info = match.group("info").strip().split()
        if not info or info[0].lower() not in PYTHON_INFOS:
            continue
        indent = match.group("indent")
        body = "".join(
            line[len(indent) :] if line.startswith(indent) else line for line in match.group("body").splitlines(True)
        )
        line = text.count("\n", 0, match.start()) + 2  # first line of code
        requires = [m for word in info[1:] if word.startswith("requires=") for m in word[9:].split(",") if m]
        blocks.append((len(blocks) + 1, line, body, requires))
    return blocks


def _run_script(code: str, namespace: dict, where: str) -> None:
    exec(compile(code, where, "exec"), namespace)  # noqa: S102 - running the docs is the point


def _run_doctest_block(code: str, namespace: dict, where: str, line: int) -> None:
    test = doctest.DocTestParser().get_doctest(code, namespace, where, where.split(":")[0], line - 1)
    out = io.StringIO()
    runner = doctest.DocTestRunner(optionflags=DOCTEST_FLAGS)
    runner.run(test, out=out.write, clear_globs=False)
    namespace.update(test.globs)  # DocTest works on a copy; later blocks see its names
    if runner.failures:
        raise AssertionError(out.getvalue())


@pytest.mark.filterwarnings("ignore::axiom.backends.FallbackWarning")  # the docs show fallbacks on purpose
@pytest.mark.parametrize("path", MARKDOWN_FILES, ids=[str(p.relative_to(ROOT)) for p in MARKDOWN_FILES])
def test_markdown_python_blocks_run(path: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    blocks = python_blocks(path)
    if not blocks:
        pytest.skip(f"{path.name} has no python blocks")
    monkeypatch.chdir(tmp_path)
    namespace: dict = {"__name__": "__docs__"}
    rel = path.relative_to(ROOT)

    def run_all() -> str | None:
        for number, line, code, requires in blocks:
            where = f"{rel}:{line}"
            if any(importlib.util.find_spec(m) is None for m in requires):
                continue  # an optional dependency the block needs is not installed
            is_doctest = code.lstrip().startswith(">>>")
            try:
                if is_doctest:
                    _run_doctest_block(code, namespace, where, line)
                else:
                    _run_script(code, namespace, where)
            except Exception as err:  # noqa: BLE001 - report any failure with its block
                detail = str(err) if is_doctest and isinstance(err, AssertionError) else traceback.format_exc()
                return f"{rel}: python block {number} (line {line}) failed:\n{detail}"
        return None

    failure = contextvars.copy_context().run(run_all)
    if failure:
        pytest.fail(failure, pytrace=False)


# -- links and the mkdocs nav ---------------------------------------------------------------------

LINK = re.compile(r"\[[^\]]*\]\((?P<target>[^)\s]+)\)")


def _slug(heading: str) -> str:
    """GitHub's anchor for a heading: lower case, punctuation dropped, spaces to hyphens."""
    text = re.sub(r"[^\w\- ]", "", heading.strip().lower())
    return text.replace(" ", "-")


def _anchors(path: Path) -> set[str]:
    text = FENCE.sub("", path.read_text(encoding="utf-8"))
    return {_slug(m.group(1)) for m in re.finditer(r"^#{1,6}\s+(.+?)\s*#*\s*$", text, re.M)}


@pytest.mark.parametrize("path", MARKDOWN_FILES, ids=[str(p.relative_to(ROOT)) for p in MARKDOWN_FILES])
def test_markdown_links_resolve(path: Path) -> None:
    """Relative links point at files that exist, and ``#anchors`` at headings that exist."""
    broken = []
    for match in LINK.finditer(FENCE.sub("", path.read_text(encoding="utf-8"))):
        target = match.group("target")
        if re.match(r"^[a-z][a-z0-9+.-]*:", target):  # http:, https:, mailto:
            continue
        file_part, _, anchor = target.partition("#")
        dest = (path.parent / file_part).resolve() if file_part else path
        if not dest.exists():
            broken.append(f"{target}: {dest.relative_to(ROOT) if dest.is_relative_to(ROOT) else dest} does not exist")
        elif anchor and dest.suffix == ".md" and anchor not in _anchors(dest):
            broken.append(f"{target}: no heading with anchor #{anchor} in {dest.relative_to(ROOT)}")
    assert not broken, f"broken links in {path.relative_to(ROOT)}:\n  " + "\n  ".join(broken)


def test_mkdocs_nav_matches_docs() -> None:
    """Every page in mkdocs.yml's nav exists, and every page under docs/ is in the nav."""
    config = (ROOT / "mkdocs.yml").read_text(encoding="utf-8")
    nav = set(re.findall(r"^\s*-\s*[^:\n]+:\s*(\S+\.md)\s*$", config, re.M))
    pages = {str(p.relative_to(ROOT / "docs")) for p in (ROOT / "docs").rglob("*.md")}
    assert nav, "mkdocs.yml has no nav entries"
    assert not nav - pages, f"mkdocs.yml lists pages that do not exist: {sorted(nav - pages)}"
    assert not pages - nav, f"pages missing from the mkdocs.yml nav: {sorted(pages - nav)}"


# -- module doctests ------------------------------------------------------------------------------


def _module_names() -> list[str]:
    names = ["axiom"]
    for info in pkgutil.walk_packages(axiom.__path__, prefix="axiom.", onerror=lambda name: None):
        parts = info.name.split(".")
        if parts[1] == "_core" or parts[-1] == "__main__":
            continue  # compiled internals; __main__ would run the CLI on import
        names.append(info.name)
    return sorted(names)


MODULES = _module_names()


def _import_or_skip(name: str) -> ModuleType:
    try:
        return importlib.import_module(name)
    except ImportError as err:  # an optional dependency of this module is missing
        pytest.skip(f"{name} cannot be imported here: {err}")


def _require_native() -> bool:
    return os.environ.get("AXIOM_REQUIRE_NATIVE", "") == "1"  # as in tests/backends/test_native_matmul.py


class _Runner(doctest.DocTestRunner):
    """Records examples that failed only because an optional library is not importable/built."""

    def __init__(self, **kwargs) -> None:  # type: ignore[no-untyped-def]
        super().__init__(**kwargs)
        self.missing: list[str] = []

    def report_unexpected_exception(self, out, test, example, exc_info):  # type: ignore[no-untyped-def]
        err = exc_info[1]
        optional = isinstance(err, ModuleNotFoundError) or (isinstance(err, ImportError) and "not built" in str(err))
        if optional and not _require_native():
            self.missing.append(f"{test.name}: {exc_info[1]}")
        super().report_unexpected_exception(out, test, example, exc_info)


@pytest.mark.parametrize("name", MODULES)
def test_module_doctests(name: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    module = _import_or_skip(name)
    monkeypatch.chdir(tmp_path)
    tests = doctest.DocTestFinder(exclude_empty=True).find(module, name)
    out = io.StringIO()
    runner = _Runner(optionflags=DOCTEST_FLAGS)

    def run_all() -> None:
        for test in sorted(tests, key=lambda t: t.name):
            runner.run(test, out=out.write)

    contextvars.copy_context().run(run_all)
    if runner.failures and runner.missing and runner.failures == len(runner.missing):
        pytest.skip("needs a library that is not built or installed here: " + "; ".join(runner.missing))
    assert runner.failures == 0, f"doctests of {name} failed:\n{out.getvalue()}"


# -- every public object has a runnable example --------------------------------------------------


def _documentable(obj: object) -> bool:
    """Classes and functions defined in axiom (and axiom objects used as functions, like ``relu``)."""
    if inspect.isclass(obj) or inspect.isroutine(obj):
        return (getattr(obj, "__module__", "") or "").startswith("axiom")
    return callable(obj) and type(obj).__module__.startswith("axiom")


def _has_example(obj: object) -> bool:
    return ">>>" in (inspect.getdoc(obj) or "")


def _where(obj: object, name: str) -> str:
    """``path:name`` of the object's definition (its own name, not an alias such as ``Chain``)."""
    name = getattr(obj, "__qualname__", None) or name
    module = getattr(obj, "__module__", None) or type(obj).__module__
    mod = importlib.import_module(module)
    path = Path(inspect.getsourcefile(mod) or module).resolve()
    try:
        path = path.relative_to(ROOT)
    except ValueError:
        pass
    return f"{path}:{name}"


def _public_api(module: ModuleType) -> dict[str, object]:
    """``__all__`` when the module has one, else the public classes/functions it defines itself."""
    if hasattr(module, "__all__"):
        return {n: getattr(module, n) for n in module.__all__ if hasattr(module, n)}
    return {
        n: v
        for n, v in vars(module).items()
        if not n.startswith("_") and getattr(v, "__module__", None) == module.__name__
    }


def _offenders(api: dict[str, object]) -> list[str]:
    seen: set[int] = set()
    missing = []
    for name, obj in sorted(api.items()):
        if id(obj) in seen or not _documentable(obj):
            continue
        if inspect.isclass(obj) and issubclass(obj, BaseException):
            continue  # exceptions and warnings are documented by the functions that raise them
        seen.add(id(obj))
        if not _has_example(obj):
            missing.append(_where(obj, name))
    return sorted(set(missing))


#: Entry-point scripts: their ``main()`` is run by ``make demo``, not shown as an example.
SCRIPT_MODULES = {"axiom.demo"}


def test_top_level_api_has_examples() -> None:
    missing = _offenders({n: getattr(axiom, n) for n in axiom.__all__})
    assert not missing, "public objects in axiom.__all__ without a '>>>' example in their docstring:\n  " + "\n  ".join(
        missing
    )


def test_module_apis_have_examples() -> None:
    missing: set[str] = set()
    for name in MODULES:
        if any(part.startswith("_") for part in name.split(".")) or name in SCRIPT_MODULES:
            continue  # private modules (axiom.nn._args) and scripts document what they like
        try:
            module = importlib.import_module(name)
        except ImportError:
            continue
        missing.update(_offenders(_public_api(module)))
    assert not missing, "public functions/classes without a '>>>' example in their docstring:\n  " + "\n  ".join(
        sorted(missing)
    )
