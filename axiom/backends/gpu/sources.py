"""Where the GPU kernel sources live and how a program's text is assembled.

The kernels are written once, in ``cuda/<family>.cu`` (the portable dialect of
``cuda/axiom_device.cuh``); ``opencl/<family>.cl`` includes ``opencl/axiom_device.h`` and then the
same body. :func:`program_text` inlines the quoted ``#include`` lines itself (each file once,
like an include guard), so a program needs no include path on any driver. The sources ship
inside the wheel as package data (``axiom/backends/gpu/kernels/{cuda,opencl}``); in a source
checkout they are read from the top-level ``cuda/`` and ``opencl/`` directories.

Example:
    >>> text = program_text("opencl", "activation")
    >>> "#define AXIOM_OPENCL 1" in text and "KERNEL void axiom_activation" in text
    True
    >>> sorted(FAMILIES) == sorted(p.stem for p in source_dir("opencl").glob("*.cl"))
    True
"""

from __future__ import annotations

import re
from functools import cache
from pathlib import Path

#: The kernel families: one program (one ``.cu`` / ``.cl`` pair) each.
FAMILIES: tuple[str, ...] = (
    "activation",
    "matmul",
    "conv2d",
    "norms",
    "pooling",
    "softmax",
    "attention",
    "rope",
    "layout",
)
#: File suffix of a family's program per device kind.
SUFFIX = {"cuda": ".cu", "opencl": ".cl"}

_PACKAGED = Path(__file__).resolve().parent / "kernels"
_CHECKOUT = Path(__file__).resolve().parents[3]
_INCLUDE = re.compile(r'^[ \t]*#[ \t]*include[ \t]+"([^"]+)"[ \t]*$', re.MULTILINE)


def source_dir(kind: str) -> Path:
    """The directory of the ``"cuda"`` or ``"opencl"`` sources (packaged copy first, then the checkout).

    Example:
        >>> source_dir("cuda").name
        'cuda'
    """
    if kind not in SUFFIX:
        raise ValueError(f"unknown device kind {kind!r}; expected 'cuda' or 'opencl'")
    for root in (_PACKAGED, _CHECKOUT):
        path = root / kind
        if (path / f"activation{SUFFIX[kind]}").is_file():
            return path
    raise FileNotFoundError(
        f"the {kind} kernel sources are missing: looked in {_PACKAGED / kind} (installed package) and "
        f"{_CHECKOUT / kind} (source checkout); reinstall axiom"
    )


def _inline(path: Path, seen: set[Path]) -> str:
    """``path``'s text with every quoted #include replaced by the included file (each file once)."""
    path = path.resolve()
    if path in seen:
        return f"/* {path.name}: already included */\n"
    seen.add(path)

    def include(match: re.Match[str]) -> str:
        target = (path.parent / match.group(1)).resolve()
        if not target.is_file():
            raise FileNotFoundError(f'{path}: #include "{match.group(1)}" not found (looked for {target})')
        return _inline(target, seen)

    return f"/* --- {path.name} --- */\n" + _INCLUDE.sub(include, path.read_text())


@cache
def program_text(kind: str, family: str) -> str:
    """The complete, include-free source text of one kernel family for ``"cuda"`` or ``"opencl"``.

    Example:
        >>> text = program_text("cuda", "softmax")
        >>> '#include "' in text, "axiom_softmax" in text         # quoted includes are inlined
        (False, True)
    """
    if family not in FAMILIES:
        raise ValueError(f"unknown kernel family {family!r}; expected one of {', '.join(FAMILIES)}")
    return _inline(source_dir(kind) / f"{family}{SUFFIX[kind]}", set())


def source_files(kind: str) -> list[Path]:
    """Every kernel source file of ``kind`` (programs and headers), sorted.

    Example:
        >>> [p.name for p in source_files("cuda")][:2]
        ['act.cuh', 'activation.cu']
    """
    root = source_dir(kind)
    return sorted(p for p in root.iterdir() if p.suffix in (".cu", ".cuh", ".cl", ".h"))
