"""The wheel: built from an sdist, installed in a fresh venv, used with no compiler reachable.

Steps (a few minutes): ``python -m build --sdist`` (checks that MANIFEST.in ships every
source), ``pip wheel <sdist> --no-build-isolation`` (a clean build from the unpacked sdist,
with this venv's Cython/setuptools-rust/ziglang), check the wheel's files, create a fresh
venv (no system site-packages), install the wheel + its dependencies, and run every native
backend (C through Cython and ctypes, Rust, Zig) on the kernel contract there, from a
temporary directory, with ``CC``/``CXX`` set to ``/bin/false`` and ``cc``, ``gcc``,
``cargo``, ``rustc``, ``zig``... on ``PATH`` replaced by stubs that record any call: the test
fails if one is called. A second wheel is built with ``cargo`` off ``PATH``: the build must
say clearly that the Rust part is skipped, and the installed package must report the Rust
backend unavailable while C and Zig work. The GPU kernel sources (``cuda/``, ``opencl/``) ship as
package data under ``axiom/backends/gpu/kernels/`` and are found there by the installed package.
"""

from __future__ import annotations

import importlib.util
import os
import shutil
import subprocess
import sys
import textwrap
import zipfile
from pathlib import Path

import pytest

pytestmark = pytest.mark.slow

ROOT = Path(__file__).resolve().parents[1]
REQUIRE_NATIVE = os.environ.get("AXIOM_REQUIRE_NATIVE", "") == "1"
EXPECT_RUST = REQUIRE_NATIVE or shutil.which("cargo") is not None
TOOLS = ("cc", "gcc", "c++", "g++", "clang", "ld", "cargo", "rustc", "zig", "cython", "cythonize")
RUST_TOOLS = ("cargo", "rustc", "rustup")


def _run(cmd: list[str], **kwargs: object) -> subprocess.CompletedProcess[str]:
    proc = subprocess.run(cmd, capture_output=True, text=True, timeout=600, **kwargs)  # type: ignore[call-overload]
    if proc.returncode != 0:
        tail = f"--- stdout\n{proc.stdout[-4000:]}\n--- stderr\n{proc.stderr[-4000:]}"
        pytest.fail(f"{' '.join(cmd)} exited {proc.returncode}\n{tail}")
    return proc


def _libs(wheel: Path) -> list[str]:
    names = zipfile.ZipFile(wheel).namelist()
    return sorted(n.split("/")[-1].split(".")[0] for n in names if n.startswith("axiom/_core/") and n.endswith(".so"))


@pytest.fixture(scope="module")
def sdist(tmp_path_factory: pytest.TempPathFactory) -> Path:
    for module in ("build", "Cython", "setuptools_rust", "ziglang"):
        if importlib.util.find_spec(module) is None:
            pytest.fail(f"{module} is not installed in this venv: run `make venv` (pip install -e '.[dev]')")
    out = tmp_path_factory.mktemp("sdist")
    _run([sys.executable, "-m", "build", "--sdist", "--no-isolation", "--outdir", str(out), str(ROOT)])
    (path,) = out.glob("axiom-*.tar.gz")
    return path


def _build_wheel(sdist: Path, out: Path, env: dict[str, str] | None = None) -> tuple[Path, str]:
    proc = _run(
        [sys.executable, "-m", "pip", "wheel", str(sdist), "--no-deps", "--no-build-isolation", "-v", "-w", str(out)],
        env=env,
    )
    (whl,) = out.glob("axiom-*.whl")
    return whl, proc.stdout + proc.stderr


@pytest.fixture(scope="module")
def wheel(sdist: Path, tmp_path_factory: pytest.TempPathFactory) -> Path:
    return _build_wheel(sdist, tmp_path_factory.mktemp("dist"))[0]


def _path_without_rust(bin_dir: Path) -> str:
    """A PATH with every program of the current PATH except cargo / rustc (symlinks in ``bin_dir``)."""
    bin_dir.mkdir()
    for entry in os.environ.get("PATH", "").split(os.pathsep):
        if not entry or not os.path.isdir(entry):
            continue
        for name in os.listdir(entry):
            src = os.path.join(entry, name)
            if name in RUST_TOOLS or (bin_dir / name).exists() or not os.access(src, os.X_OK):
                continue
            (bin_dir / name).symlink_to(src)
    return str(bin_dir)


@pytest.fixture(scope="module")
def wheel_without_cargo(sdist: Path, tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, str]:
    tmp = tmp_path_factory.mktemp("nocargo")
    env = {**os.environ, "PATH": _path_without_rust(tmp / "bin")}
    assert shutil.which("cargo", path=env["PATH"]) is None
    return _build_wheel(sdist, tmp / "dist", env)


@pytest.fixture(scope="module")
def venv(wheel: Path, tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A fresh venv (no system site-packages) with the wheel and its dependencies installed."""
    path = tmp_path_factory.mktemp("venv") / "venv"
    _run([sys.executable, "-m", "venv", str(path)])
    _run([str(path / "bin" / "python"), "-m", "pip", "install", "-q", str(wheel)])
    return path


def _run_without_compilers(venv: Path, tmp_path: Path, code: str) -> str:
    """Run ``code`` with the venv's python from ``tmp_path``; every compiler on PATH is a recording stub."""
    stubs = tmp_path / "stubs"
    stubs.mkdir()
    called = tmp_path / "called.log"
    for tool in TOOLS:
        stub = stubs / tool
        stub.write_text(f'#!/bin/sh\necho "{tool} $*" >> "{called}"\nexit 1\n')
        stub.chmod(0o755)
    script = tmp_path / "check.py"
    script.write_text(textwrap.dedent(code))
    env = {
        "PATH": f"{venv / 'bin'}:{stubs}:/usr/bin:/bin",
        "HOME": os.environ.get("HOME", str(tmp_path)),
        "CC": "/bin/false",
        "CXX": "/bin/false",
        "LANG": "C.UTF-8",
    }
    proc = _run([str(venv / "bin" / "python"), "-I", str(script)], cwd=tmp_path, env=env)
    assert not called.exists(), f"a compiler was called at import/run time: {called.read_text()}"
    return proc.stdout


def test_wheel_contents(wheel: Path) -> None:
    names = zipfile.ZipFile(wheel).namelist()
    assert _libs(wheel) == (["_kernels", "_nn", "_rust", "_zig"] if EXPECT_RUST else ["_kernels", "_nn", "_zig"]), names
    assert not [n for n in names if n.endswith(".c")], "Cython-generated C must not ship in the wheel"
    assert not [n for n in names if "target/" in n or n.startswith(("csrc/", "rust/", "zig/", "tests/"))]
    assert "axiom/backends/native.py" in names and "axiom/backends/abi.py" in names
    kernels = sorted(
        f"axiom/backends/gpu/kernels/{p.relative_to(ROOT)}"
        for d in ("cuda", "opencl")
        for p in (ROOT / d).iterdir()
        if p.suffix in (".cu", ".cuh", ".cl", ".h")
    )
    assert any(k.endswith(".cl") for k in kernels) and any(k.endswith(".cu") for k in kernels)
    missing = [k for k in kernels if k not in names]
    assert not missing, f"GPU kernel sources missing from the wheel: {missing}"


GPU_SOURCES_CHECK = """
    from axiom.backends.gpu import sources

    site = {site!r}
    for kind in ("cuda", "opencl"):
        assert str(sources.source_dir(kind)).startswith(site), sources.source_dir(kind)
    text = sources.program_text("opencl", "activation")
    assert "#define AXIOM_OPENCL 1" in text and "axiom_activation" in text, text[:500]
    assert "axiom_activation" in sources.program_text("cuda", "activation")
    print("gpu sources ok")
"""


def test_wheel_ships_gpu_kernel_sources(venv: Path, tmp_path: Path) -> None:
    out = _run_without_compilers(venv, tmp_path, GPU_SOURCES_CHECK.format(site=str(venv)))
    assert out.split() == ["gpu", "sources", "ok"], out


CONTRACT_CHECK = """
    import numpy as np
    import axiom._core._kernels as K
    from axiom.backends import ReferenceBackend, abi
    from axiom.backends.native import CBackend, RustBackend, ZigBackend

    site = {site!r}
    assert K.__file__.startswith(site), K.__file__
    backends = [CBackend(), CBackend(abi.built_library_path("c")), ZigBackend()]
    if {rust!r}:
        backends.append(RustBackend())
    ref = ReferenceBackend()
    rng = np.random.default_rng(0)
    x = rng.standard_normal((2, 9, 9, 6)).astype(np.float32)
    w = rng.standard_normal((3, 3, 3, 8)).astype(np.float32)
    q = rng.standard_normal((1, 2, 33, 16)).astype(np.float32)
    ops = {{
        "conv2d": lambda be: be.conv2d(x, w, None, (2, 1), ((1, 1), (0, 2)), (1, 1), 2),
        "softmax": lambda be: be.softmax(x, axis=-1),
        "layernorm": lambda be: be.layernorm(x, None, None, 1e-5, 1),
        "max_pool2d": lambda be: be.max_pool2d(x, (2, 2), (2, 2), ((0, 1), (0, 1)), (1, 1)),
        "attention": lambda be: be.attention(q, q, q, True, 0.25, None),
        "rope": lambda be: be.rope(q, np.arange(33.0), 10000.0),
    }}
    for be in backends:
        assert be.library.startswith(site), be.library
        for dtype in (np.float32, np.float64):
            a = rng.standard_normal((37, 91)).astype(dtype)
            b = rng.standard_normal((91, 45)).astype(dtype)
            out = be.matmul(a, b)
            want = a.astype(np.float64) @ b.astype(np.float64)
            assert out.dtype == dtype
            tol = 92 * np.finfo(dtype).eps * (np.abs(a).astype(np.float64) @ np.abs(b).astype(np.float64))
            assert (np.abs(out - want) <= tol).all(), (be, dtype)
        for op, call in ops.items():
            assert np.allclose(call(be), call(ref), rtol=1e-4, atol=1e-4), (be, op)
        assert not be.fallbacks, (be, be.fallbacks)
        print(be.name, "ok")
"""


def test_wheel_runs_in_fresh_venv_without_compilers(venv: Path, tmp_path: Path) -> None:
    out = _run_without_compilers(venv, tmp_path, CONTRACT_CHECK.format(site=str(venv), rust=EXPECT_RUST))
    expected = ["c", "c", "zig", "rust"] if EXPECT_RUST else ["c", "c", "zig"]
    assert out.split() == [w for name in expected for w in (name, "ok")], out


def test_wheel_without_cargo_skips_rust_clearly(
    wheel_without_cargo: tuple[Path, str], venv: Path, tmp_path: Path
) -> None:
    whl, log = wheel_without_cargo
    assert _libs(whl) == ["_kernels", "_nn", "_zig"]
    assert "`cargo` is not on PATH, so the Rust kernel library" in log and "SKIPPED" in log, log[-3000:]
    _run([str(venv / "bin" / "python"), "-m", "pip", "install", "-q", "--force-reinstall", "--no-deps", str(whl)])
    out = _run_without_compilers(
        venv,
        tmp_path,
        """
        import numpy as np
        from axiom.backends import available_backends
        from axiom.backends.native import RustBackend

        try:
            RustBackend()
        except ImportError as e:
            assert "is not built" in str(e) and "cargo" in str(e), e
            print("rust unavailable")
        names = available_backends()
        assert "rust" not in names and {"c", "zig", "numpy"} <= set(names), names
        print(" ".join(sorted(names)))
        """,
    )
    assert out.splitlines()[0] == "rust unavailable", out
    assert "rust" not in out.splitlines()[1].split(), out
