"""The wheel: built from an sdist, installed in a fresh venv, used with no compiler reachable.

Steps (about a minute): ``python -m build --sdist`` (checks that MANIFEST.in ships every
source), ``pip wheel <sdist> --no-build-isolation`` (a clean build from the unpacked sdist,
with this venv's Cython/setuptools-rust/ziglang), check the wheel's files, create a fresh
venv (no system site-packages), install the wheel + its dependencies, and run the native
matmuls there from a temporary directory, with ``CC``/``CXX`` set to ``/bin/false`` and
``cc``, ``gcc``, ``cargo``, ``rustc``, ``zig``... on ``PATH`` replaced by stubs that record
any call: the test fails if one is called.
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


def _run(cmd: list[str], **kwargs: object) -> subprocess.CompletedProcess[str]:
    proc = subprocess.run(cmd, capture_output=True, text=True, timeout=600, **kwargs)  # type: ignore[call-overload]
    if proc.returncode != 0:
        tail = f"--- stdout\n{proc.stdout[-4000:]}\n--- stderr\n{proc.stderr[-4000:]}"
        pytest.fail(f"{' '.join(cmd)} exited {proc.returncode}\n{tail}")
    return proc


@pytest.fixture(scope="module")
def wheel(tmp_path_factory: pytest.TempPathFactory) -> Path:
    for module in ("build", "Cython", "setuptools_rust", "ziglang"):
        if importlib.util.find_spec(module) is None:
            pytest.fail(f"{module} is not installed in this venv: run `make venv` (pip install -e '.[dev]')")
    out = tmp_path_factory.mktemp("dist")
    _run([sys.executable, "-m", "build", "--sdist", "--no-isolation", "--outdir", str(out), str(ROOT)])
    (sdist,) = out.glob("axiom-*.tar.gz")
    _run([sys.executable, "-m", "pip", "wheel", str(sdist), "--no-deps", "--no-build-isolation", "-w", str(out)])
    (whl,) = out.glob("axiom-*.whl")
    return whl


def test_wheel_contents(wheel: Path) -> None:
    names = zipfile.ZipFile(wheel).namelist()
    libs = sorted(n.split("/")[-1].split(".")[0] for n in names if n.startswith("axiom/_core/") and n.endswith(".so"))
    assert libs == (["_kernels", "_nn", "_rust", "_zig"] if EXPECT_RUST else ["_kernels", "_nn", "_zig"]), names
    assert not [n for n in names if n.endswith(".c")], "Cython-generated C must not ship in the wheel"
    assert not [n for n in names if "target/" in n or n.startswith(("csrc/", "rust/", "zig/", "tests/"))]
    assert "axiom/backends/native.py" in names and "axiom/backends/abi.py" in names


def test_wheel_runs_in_fresh_venv_without_compilers(wheel: Path, tmp_path: Path) -> None:
    venv = tmp_path / "venv"
    _run([sys.executable, "-m", "venv", str(venv)])
    py = venv / "bin" / "python"
    _run([str(py), "-m", "pip", "install", "-q", str(wheel)])  # + numpy, ml_dtypes from the indexes

    stubs = tmp_path / "stubs"
    stubs.mkdir()
    called = tmp_path / "called.log"
    for tool in TOOLS:
        stub = stubs / tool
        stub.write_text(f'#!/bin/sh\necho "{tool} $*" >> "{called}"\nexit 1\n')
        stub.chmod(0o755)
    script = tmp_path / "check.py"
    script.write_text(
        textwrap.dedent(
            f"""
            import sys
            import numpy as np
            import axiom._core._kernels as K
            from axiom.backends import abi
            from axiom.backends.native import CBackend, RustBackend, ZigBackend

            site = {str(venv)!r}
            assert K.__file__.startswith(site), K.__file__
            backends = [CBackend(), CBackend(abi.built_library_path("c")), ZigBackend()]
            if {EXPECT_RUST!r}:
                backends.append(RustBackend())
            rng = np.random.default_rng(0)
            for be in backends:
                assert be.library.startswith(site), be.library
                for dtype in (np.float32, np.float64):
                    a = rng.standard_normal((37, 91)).astype(dtype)
                    b = rng.standard_normal((91, 45)).astype(dtype)
                    out = be.matmul(a, b)
                    ref = a.astype(np.float64) @ b.astype(np.float64)
                    assert out.dtype == dtype
                    tol = 92 * np.finfo(dtype).eps * (np.abs(a).astype(np.float64) @ np.abs(b).astype(np.float64))
                    assert (np.abs(out - ref) <= tol).all(), (be, dtype)
                print(be.name, "ok")
            """
        )
    )
    env = {
        "PATH": f"{venv / 'bin'}:{stubs}:/usr/bin:/bin",
        "HOME": os.environ.get("HOME", str(tmp_path)),
        "CC": "/bin/false",
        "CXX": "/bin/false",
        "LANG": "C.UTF-8",
    }
    proc = _run([str(py), "-I", str(script)], cwd=tmp_path, env=env)
    expected = ["c", "c", "zig", "rust"] if EXPECT_RUST else ["c", "c", "zig"]
    assert proc.stdout.split() == [w for name in expected for w in (name, "ok")], proc.stdout
    assert not called.exists(), f"a compiler was called at import/run time: {called.read_text()}"
