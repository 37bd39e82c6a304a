"""The one kernel ABI, checked from its source of truth: the C headers.

``csrc/axiom_kernels.h`` and ``csrc/axiom_kernels_nn.h`` declare every kernel
(``AXIOM_API int name(args);``). This file parses them and checks that

(a) :data:`axiom.backends.abi.SIGNATURES` lists exactly those symbols with exactly their C
    argument types (and :class:`~axiom.backends.abi.Conv2dShape`, the status codes, the
    activation codes and the ABI version agree with the header);
(b) each built library (C, Rust, Zig) exports exactly these symbols among its ``axiom_*``
    dynamic symbols (read from the ELF ``.dynsym`` table; the C library is a CPython extension
    module, so it also exports ``PyInit_*``, which is ignored, and the benchmark micro-kernels
    of ``csrc/axiom_bench.h``, which are not part of the ABI);
(c) the Rust sources (``rust/src/**/*.rs``: ``pub [unsafe] extern "C" fn axiom_...``) and the
    Zig sources (``zig/**/*.zig``: ``export fn axiom_...``) declare every symbol with parameter
    types that map to the same C types, ``const`` included (the conv shape: a ``#[repr(C)]`` /
    ``extern`` struct with the fields of ``axiom_conv2d_shape``);
(d) ``axiom_abi_version()`` of every library is :data:`axiom.backends.abi.ABI_VERSION`;

and runs the libraries' own unit tests once (``cargo test``: ``abi::guard`` turns a panic into
``AXIOM_ERR_INTERNAL``; ``zig test zig/axiom.zig``, which includes ``zig/abi.zig``'s tests).
"""

from __future__ import annotations

import ctypes
import os
import re
import shutil
import struct
import subprocess
import sys
from pathlib import Path
from typing import NamedTuple

import pytest

from axiom.backends import abi
from axiom.backends.base import ACTIVATIONS

ROOT = Path(__file__).resolve().parents[2]
HEADERS = (ROOT / "csrc" / "axiom_kernels.h", ROOT / "csrc" / "axiom_kernels_nn.h")
LIBRARIES = ("c", "rust", "zig")
REQUIRE_NATIVE = os.environ.get("AXIOM_REQUIRE_NATIVE", "") == "1"
SHAPE = "axiom_conv2d_shape"


class CType(NamedTuple):
    """A C parameter type: base name (``float``, ``int64_t``, ``axiom_conv2d_shape``...), pointer, const."""

    base: str
    pointer: bool = False
    const: bool = False

    def __str__(self) -> str:
        return f"{'const ' if self.const else ''}{self.base}{' *' if self.pointer else ''}"


# -- parsing the C headers --------------------------------------------------------------------


def strip_c_comments(text: str) -> str:
    return re.sub(r"//[^\n]*", "", re.sub(r"/\*.*?\*/", " ", text, flags=re.S))


def parse_c_param(param: str) -> CType:
    m = re.fullmatch(r"(const\s+)?(\w+)\s*(\*)?\s*(?:const\s+)?\w+", " ".join(param.split()))
    assert m, f"cannot parse the C parameter {param!r}"
    return CType(m.group(2), bool(m.group(3)), bool(m.group(1)))


def parse_headers() -> dict[str, tuple[CType, ...]]:
    """symbol -> C parameter types, from every ``AXIOM_API int name(args);`` declaration."""
    table: dict[str, tuple[CType, ...]] = {}
    for header in HEADERS:
        text = strip_c_comments(header.read_text())
        for ret, name, args in re.findall(r"AXIOM_API\s+(\w+)\s+(\w+)\s*\(([^)]*)\)\s*;", text):
            assert ret == "int", f"{name} returns {ret}; every kernel returns an int status code"
            assert name not in table, f"{name} is declared twice"
            params = [p for p in args.split(",") if p.strip()]
            table[name] = () if [p.strip() for p in params] == ["void"] else tuple(parse_c_param(p) for p in params)
    return table


C_ABI = parse_headers()

CTYPES = {
    "float": ctypes.c_float,
    "double": ctypes.c_double,
    "int64_t": ctypes.c_int64,
    "int32_t": ctypes.c_int32,
    "int": ctypes.c_int,
}


def to_ctypes(t: CType) -> object:
    if t.base == SHAPE:
        assert t.pointer, "axiom_conv2d_shape is passed by pointer"
        return ctypes.POINTER(abi.Conv2dShape)
    base = CTYPES[t.base]
    return ctypes.POINTER(base) if t.pointer else base


def test_the_headers_parse_into_the_whole_abi() -> None:
    # a guard against a parser that silently finds nothing (or misses the NN header)
    assert len(C_ABI) > 50 and "axiom_abi_version" in C_ABI and "axiom_rope_f64" in C_ABI
    assert C_ABI["axiom_abi_version"] == ()
    assert C_ABI["axiom_matmul_f32"][0] == CType("float", True, True)
    assert C_ABI["axiom_matmul_f32"][2] == CType("float", True, False)
    assert C_ABI["axiom_conv2d_nhwc_f64"][0] == CType(SHAPE, True, True)
    assert all(name.startswith("axiom_") for name in C_ABI)
    for name, params in C_ABI.items():  # every f32 kernel has its f64 twin with the same shape of arguments
        if name.endswith("_f32"):
            twin = C_ABI[name[:-4] + "_f64"]
            widen = {"float": "double"}
            assert tuple(CType(widen.get(t.base, t.base), t.pointer, t.const) for t in params) == twin, name


# -- (a) the Python table -----------------------------------------------------------------------


def test_python_signatures_are_the_headers() -> None:
    assert set(abi.SIGNATURES) == set(C_ABI), (
        f"only in abi.SIGNATURES: {sorted(set(abi.SIGNATURES) - set(C_ABI))}; "
        f"only in the headers: {sorted(set(C_ABI) - set(abi.SIGNATURES))}"
    )
    for name, params in C_ABI.items():
        restype, argtypes = abi.SIGNATURES[name]
        assert restype is ctypes.c_int, name
        want = tuple(to_ctypes(t) for t in params)
        assert tuple(argtypes) == want, f"{name}: abi.SIGNATURES has {argtypes}, the header says {want}"


def header_text() -> str:
    return strip_c_comments("\n".join(h.read_text() for h in HEADERS))


def test_constants_and_structs_match_the_header() -> None:
    text = header_text()
    assert int(re.search(r"#define AXIOM_ABI_VERSION (\d+)", text).group(1)) == abi.ABI_VERSION  # type: ignore[union-attr]
    codes = {name: int(v) for name, v in re.findall(r"AXIOM_(OK|ERR_\w+)\s*=\s*(\d+)", text)}
    assert codes == {"OK": abi.OK, "ERR_NULL": abi.ERR_NULL, "ERR_SIZE": abi.ERR_SIZE, "ERR_NOMEM": abi.ERR_NOMEM,
                     "ERR_INTERNAL": abi.ERR_INTERNAL}  # fmt: skip
    acts = {name.lower(): int(v) for name, v in re.findall(r"AXIOM_ACT_(\w+)\s*=\s*(\d+)", text)}
    assert acts.pop("count") == len(ACTIVATIONS)
    assert acts == {name: i for i, name in enumerate(ACTIVATIONS)}
    body = re.search(r"typedef struct axiom_conv2d_shape\s*\{(.*?)\}", text, re.S).group(1)  # type: ignore[union-attr]
    fields = [f.strip() for f in body.replace("int64_t", "").replace(";", ",").split(",") if f.strip()]
    assert [(f, ctypes.c_int64) for f in fields] == list(abi.Conv2dShape._fields_)


# -- (b) exported symbols -----------------------------------------------------------------------


def dynamic_symbols(path: str) -> set[str]:
    """Names of the defined, global or weak, symbols of an ELF64 little-endian shared library."""
    data = Path(path).read_bytes()
    assert data[:4] == b"\x7fELF" and data[4] == 2 and data[5] == 1, f"{path} is not an ELF64 little-endian file"
    shoff, shentsize, shnum = struct.unpack_from("<Q", data, 0x28)[0], *struct.unpack_from("<HH", data, 0x3A)
    sections = [struct.unpack_from("<IIQQQQIIQQ", data, shoff + i * shentsize) for i in range(shnum)]
    names: set[str] = set()
    for _, sh_type, _, _, offset, size, link, _, _, entsize in sections:
        if sh_type != 11:  # SHT_DYNSYM
            continue
        str_off = sections[link][4]
        for pos in range(offset + entsize, offset + size, entsize):  # entry 0 is the null symbol
            st_name, st_info, _, st_shndx = struct.unpack_from("<IBBH", data, pos)
            if st_shndx == 0 or (st_info >> 4) not in (1, 2):  # undefined, or not GLOBAL / WEAK
                continue
            end = data.index(b"\0", str_off + st_name)
            names.add(data[str_off + st_name : end].decode())
    return names


def built(kind: str) -> str:
    try:
        return abi.built_library_path(kind)  # type: ignore[arg-type]
    except ImportError as e:
        if REQUIRE_NATIVE:
            pytest.fail(f"the {kind} kernel library is not built (AXIOM_REQUIRE_NATIVE=1): {e}")
        pytest.skip(f"the {kind} kernel library is not built: {e}")
        raise


@pytest.mark.parametrize("kind", LIBRARIES)
def test_library_exports_exactly_the_abi(kind: str) -> None:
    exported = {name for name in dynamic_symbols(built(kind)) if name.startswith("axiom_")}
    if kind == "c":  # the benchmark harness's micro-kernels, outside the ABI (see csrc/axiom_bench.h)
        bench = (ROOT / "csrc" / "axiom_bench.h").read_text()
        exported -= set(re.findall(r"AXIOM_BENCH_API\s+int\s+(\w+)\s*\(", bench))
    missing, extra = sorted(set(C_ABI) - exported), sorted(exported - set(C_ABI))
    assert not missing and not extra, f"the {kind} library lacks {missing} and exports extra {extra}"


def test_symbol_reader_agrees_with_nm() -> None:
    nm = shutil.which("nm")
    if nm is None:
        pytest.skip("nm is not installed")
    path = built("c")
    out = subprocess.run([nm, "-D", "--defined-only", path], capture_output=True, text=True, check=True).stdout
    by_nm = {line.split()[-1] for line in out.splitlines() if line.split() and line.split()[-1].startswith("axiom_")}
    assert by_nm == {name for name in dynamic_symbols(path) if name.startswith("axiom_")}


# -- (c) the Rust and Zig sources ---------------------------------------------------------------

SCALARS = {"f32": "float", "f64": "double", "i64": "int64_t", "i32": "int32_t", "c_int": "int"}
SHAPE_FIELDS = [name for name, _ in abi.Conv2dShape._fields_]


def shape_structs(text: str, lang: str) -> set[str]:
    """Names of the structs with the C layout of ``axiom_conv2d_shape`` (its fields, in order, all 64-bit
    integers): ``#[repr(C)] struct`` in Rust, ``extern struct`` in Zig; plus plain aliases of them."""
    if lang == "rust":
        pattern = r"#\[repr\(C\)\]\s*(?:#\[[^\]]*\]\s*)*pub(?:\([^)]*\))?\s+struct\s+(\w+)\s*\{([^}]*)\}"
        alias = r"type\s+(\w+)\s*=\s*([\w:]+)\s*;"
    else:
        pattern = r"const\s+(\w+)\s*=\s*extern\s+struct\s*\{([^}]*)\}"
        alias = r"const\s+(\w+)\s*=\s*([\w.]+)\s*;"
    names = set()
    for name, body in re.findall(pattern, text):
        fields = re.findall(r"(\w+)\s*:\s*([\w:]+)", body)
        if [f for f, _ in fields] == SHAPE_FIELDS and all(t == "i64" for _, t in fields):
            names.add(name)
    for name, target in re.findall(alias, text):
        if re.split(r"::|\.", target)[-1] in names:
            names.add(name)
    return names


def _base(name: str, shapes: set[str]) -> str:
    name = re.split(r"::|\.", name)[-1]  # std::os::raw::c_int, dims.Shape
    return SHAPE if name in shapes else SCALARS.get(name, f"<{name}>")


def rust_type(text: str, shapes: set[str]) -> CType:
    """``*const f32`` -> ``const float *``, ``i64`` -> ``int64_t``, ``Option<&Shape>`` -> ``const shape *``."""
    t = " ".join(text.split())
    if m := re.fullmatch(r"\*\s*(const|mut)\s+([\w:]+)", t):
        return CType(_base(m.group(2), shapes), True, m.group(1) == "const")
    if m := re.fullmatch(r"Option\s*<\s*&\s*(mut\s+)?([\w:]+)\s*>", t):
        return CType(_base(m.group(2), shapes), True, not m.group(1))
    return CType(_base(t, shapes))


def zig_type(text: str, shapes: set[str]) -> CType:
    """``?[*]const f32`` -> ``const float *``, ``?*const Shape`` -> ``const shape *``, ``i64`` -> ``int64_t``."""
    t = "".join(text.split())
    if m := re.fullmatch(r"(?:\?\[\*\]|\[\*c\]|\?\*)(const)?([\w.]+)", t):
        return CType(_base(m.group(2), shapes), True, bool(m.group(1)))
    return CType(_base(t, shapes))


def _split_params(args: str) -> list[str]:
    """Split at top-level commas (``Option<&T>`` has none inside, but generics might)."""
    parts, depth, cur = [], 0, ""
    for ch in args:
        depth += ch in "<([" and 1 or (ch in ">)]" and -1 or 0)
        if ch == "," and depth == 0:
            parts.append(cur)
            cur = ""
        else:
            cur += ch
    parts.append(cur)
    return [p.strip() for p in parts if p.strip()]


def _declarations(pattern: str, text: str, to_type, shapes: set[str], what: str) -> dict[str, tuple[CType, ...]]:  # type: ignore[no-untyped-def]
    table: dict[str, tuple[CType, ...]] = {}
    for name, args, ret in re.findall(pattern, text, flags=re.S):
        assert ret.split("::")[-1] == "c_int", f"{what}: {name} returns {ret!r}; expected c_int"
        assert name not in table, f"{what}: {name} is defined twice"
        params = []
        for p in _split_params(args):
            assert ":" in p, f"{what}: cannot parse the parameter {p!r} of {name}"
            params.append(to_type(p.split(":", 1)[1], shapes))
        table[name] = tuple(params)
    return table


def _rust_arg_kinds(abi_rs: str) -> dict[str, str]:
    """The arms of ``abi_arg!`` in rust/src/abi.rs: argument kind -> type, ``$t`` standing for the float type."""
    arms = dict(re.findall(r"\((\w+),\s*\$t:ty\)\s*=>\s*\{\s*(.*?)\s*\}", abi_rs))
    assert {"ptr", "mut_ptr"} <= arms.keys(), f"abi_arg! arms not found in rust/src/abi.rs: {arms}"
    return arms


def expand_rust_exports(text: str, kinds: dict[str, str]) -> str:
    """``export_f32_f64! { ... name_f32, name_f64(a: kind, ...) {`` written out as the two
    ``pub unsafe extern "C" fn`` declarations the macro makes (the rest of the text unchanged)."""

    def expand(m: re.Match[str]) -> str:
        decls = []
        for name, float_type in ((m.group(1), "f32"), (m.group(2), "f64")):
            params = []
            for p in _split_params(m.group(3)):
                arg, kind = (t.strip() for t in p.split(":", 1))
                params.append(f"{arg}: {kinds.get(kind, '$other').replace('$t', float_type).replace('$other', kind)}")
            decls.append(f'pub unsafe extern "C" fn {name}({", ".join(params)}) -> c_int {{}}')
        return "\n".join(decls) + "\n{"

    pattern = r"export_f32_f64!\s*\{[^{]*?(axiom_\w+_f32)\s*,\s*(axiom_\w+_f64)\s*\((.*?)\)\s*\{"
    return re.sub(pattern, expand, text, flags=re.S)


def rust_declarations() -> dict[str, tuple[CType, ...]]:
    table: dict[str, tuple[CType, ...]] = {}
    paths = sorted((ROOT / "rust" / "src").rglob("*.rs"))  # modules may have submodule folders
    kinds = _rust_arg_kinds((ROOT / "rust" / "src" / "abi.rs").read_text())
    # // and /* */ comments stripped, as in C; the float32 / float64 pairs made by one macro written out
    texts = {path: expand_rust_exports(strip_c_comments(path.read_text()), kinds) for path in paths}
    shapes = shape_structs("\n".join(texts.values()), "rust")
    for path, text in texts.items():
        pattern = r'pub\s+(?:unsafe\s+)?extern\s+"C"\s+fn\s+(axiom_\w+)\s*\((.*?)\)\s*->\s*([\w:]+)'
        found = _declarations(pattern, text, rust_type, shapes, str(path.relative_to(ROOT)))
        assert not found.keys() & table.keys(), f"defined twice: {sorted(found.keys() & table.keys())}"
        table.update(found)
    return table


def zig_declarations() -> dict[str, tuple[CType, ...]]:
    table: dict[str, tuple[CType, ...]] = {}
    paths = sorted((ROOT / "zig").rglob("*.zig"))
    texts = {path: re.sub(r"//[^\n]*", "", path.read_text()) for path in paths}
    shapes = shape_structs("\n".join(texts.values()), "zig")
    for path, text in texts.items():
        pattern = r"export\s+fn\s+(axiom_\w+)\s*\((.*?)\)\s*(?:callconv\([^)]*\)\s*)?([\w.]+)\s*\{"
        found = _declarations(pattern, text, zig_type, shapes, str(path.relative_to(ROOT)))
        assert not found.keys() & table.keys(), f"defined twice: {sorted(found.keys() & table.keys())}"
        table.update(found)
    return table


def test_source_parsers_understand_the_spellings() -> None:
    fields = "".join(f"pub {f}: i64, " for f in SHAPE_FIELDS)
    rust_src = f"#[repr(C)]\n#[derive(Clone)]\npub struct Conv2dShape {{ {fields} }}\npub type S = Conv2dShape;"
    assert shape_structs(rust_src, "rust") == {"Conv2dShape", "S"}
    assert shape_structs(rust_src.replace("#[repr(C)]", ""), "rust") == set()  # Rust's own layout: not the C one
    zig_src = "pub const Shape = extern struct {" + fields.replace("pub ", "") + "};\nconst S2 = dims.Shape;"
    assert shape_structs(zig_src, "zig") == {"Shape", "S2"}
    assert shape_structs(zig_src.replace("c_out: i64", "c_out: i32"), "zig") == set()
    sh = {"Conv2dShape", "Shape"}
    assert rust_type("*const f32", sh) == CType("float", True, True) and rust_type("*mut f64", sh) == CType(
        "double", True
    )
    assert rust_type("std::os::raw::c_int", sh) == CType("int") and rust_type("i32", sh) == CType("int32_t")
    assert rust_type("*const Conv2dShape", sh) == CType(SHAPE, True, True)
    assert rust_type("Option<&abi::Conv2dShape>", sh) == CType(SHAPE, True, True)
    assert zig_type("?[*]const f32", sh) == CType("float", True, True) and zig_type("?[*]f64", sh) == CType(
        "double", True
    )
    assert zig_type("?*const dims.Shape", sh) == CType(SHAPE, True, True) and zig_type("c_int", sh) == CType("int")
    assert zig_type("?*const Other", sh).base == "<Other>" and zig_type("usize", sh).base == "<usize>"
    src = strip_c_comments('pub unsafe extern "C" fn axiom_x_f32(\n    a: *const f32, // in\n    n: i64,\n) -> c_int {')
    found = _declarations(r'extern\s+"C"\s+fn\s+(axiom_\w+)\s*\((.*?)\)\s*->\s*([\w:]+)', src, rust_type, sh, "src")
    assert found == {"axiom_x_f32": (CType("float", True, True), CType("int64_t"))}


def _compare_sources(lang: str, declared: dict[str, tuple[CType, ...]]) -> None:
    missing, extra = sorted(set(C_ABI) - set(declared)), sorted(set(declared) - set(C_ABI))
    wrong = [
        f"{name}({', '.join(map(str, declared[name]))}) but the header says ({', '.join(map(str, C_ABI[name]))})"
        for name in sorted(set(C_ABI) & set(declared))
        if declared[name] != C_ABI[name]
    ]
    assert not missing and not extra and not wrong, (
        f"{lang} sources: {len(missing)} symbols missing {missing[:8]}{' ...' if len(missing) > 8 else ''}; "
        f"extra {extra}; different signatures: {wrong}"
    )


def test_rust_sources_declare_the_abi() -> None:
    _compare_sources("Rust", rust_declarations())


def test_zig_sources_declare_the_abi() -> None:
    _compare_sources("Zig", zig_declarations())


# -- (d) the version each library reports -------------------------------------------------------


@pytest.mark.parametrize("kind", LIBRARIES)
def test_library_reports_the_abi_version(kind: str) -> None:
    lib = ctypes.CDLL(built(kind))  # not load_kernel_library: this test must not need every symbol
    lib.axiom_abi_version.restype = ctypes.c_int
    assert lib.axiom_abi_version() == abi.ABI_VERSION


def test_rust_and_zig_constants_match_the_header() -> None:
    rust = (ROOT / "rust" / "src" / "abi.rs").read_text()
    zig = (ROOT / "zig" / "abi.zig").read_text()
    for name, value in [("ABI_VERSION", abi.ABI_VERSION), ("OK", abi.OK), ("ERR_NULL", abi.ERR_NULL),
                        ("ERR_SIZE", abi.ERR_SIZE), ("ERR_NOMEM", abi.ERR_NOMEM),
                        ("ERR_INTERNAL", abi.ERR_INTERNAL)]:  # fmt: skip
        assert re.search(rf"pub const AXIOM_{name}: c_int = {value};", rust), f"rust/src/abi.rs: AXIOM_{name}"
        if name != "ERR_INTERNAL":  # Zig never panics across the boundary: it has no internal error code
            assert re.search(rf"pub const {name}: c_int = {value};", zig), f"zig/abi.zig: {name}"


# -- the libraries' own unit tests (they compile: run once, ~10-60 s each) -----------------------


def _run(cmd: list[str], what: str) -> str:
    proc = subprocess.run(cmd, cwd=ROOT, capture_output=True, text=True, timeout=900)
    assert proc.returncode == 0, f"{what} failed ({proc.returncode}):\n{proc.stdout[-3000:]}\n{proc.stderr[-3000:]}"
    return proc.stdout + proc.stderr


@pytest.mark.slow
def test_cargo_unit_tests_pass() -> None:
    """``cargo test``: among others, ``abi::guard`` turns a panic into ``AXIOM_ERR_INTERNAL``."""
    cargo = shutil.which("cargo")
    if cargo is None:
        pytest.skip("cargo is not on PATH: the Rust unit tests (rust/src/*.rs #[cfg(test)]) cannot run")
    out = _run([cargo, "test", "--offline", "--manifest-path", "rust/Cargo.toml"], "cargo test")
    assert "guard_turns_a_panic_into_an_error_code ... ok" in out, out[-3000:]


@pytest.mark.slow
def test_zig_unit_tests_pass() -> None:
    """``zig test zig/axiom.zig``: the tests of every file the library imports, ``zig/abi.zig``'s included
    (the ziglang wheel is a dev dependency)."""
    pytest.importorskip("ziglang", reason="the ziglang wheel (a dev dependency) is not installed")
    out = _run([sys.executable, "-m", "ziglang", "test", "-lc", "zig/axiom.zig"], "zig test zig/axiom.zig")
    assert "abi.test.parallelFor runs every task once" in out, out[-3000:]
