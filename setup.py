"""Build the compiled parts of axiom: C (Cython + OpenMP), Rust (setuptools-rust) and Zig.

Project metadata lives in pyproject.toml; this file only declares the extensions. One
environment variable, ``AXIOM_MARCH`` (default ``x86-64-v3`` = AVX2 + FMA), sets the target
CPU of all three compilers: gcc ``-march=``, rustc ``-C target-cpu=`` and zig ``-mcpu=``
(with ``-`` replaced by ``_``; ``native`` passes through everywhere).

    pip install -e '.[dev]'                 # everything, in one command
    python setup.py build_ext --inplace     # incremental rebuild after editing csrc/ rust/ zig/

See docs/developer/build.md.
"""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
from glob import glob

from Cython.Build import cythonize
from setuptools import Extension, setup
from setuptools.command.build_ext import build_ext
from setuptools.command.build_py import build_py
from setuptools_rust import Binding, RustExtension, Strip

MARCH = os.environ.get("AXIOM_MARCH", "x86-64-v3").strip() or "x86-64-v3"
ZIG_CPU = MARCH.replace("-", "_")
OPENMP = ["-fopenmp"]


class ZigExtension(Extension):
    """A shared library built by ``zig build-lib`` from a root ``.zig`` file (``sources[0]``).

    The output is named like a Python extension module (``<name>.<EXT_SUFFIX>``) so that
    ``importlib.util.find_spec(name).origin`` finds it in editable and wheel installs alike;
    it has no module init and is loaded with ctypes.
    """


class BuildExt(build_ext):
    """``build_ext`` that also builds :class:`ZigExtension` (with the ``ziglang`` wheel)."""

    def build_extension(self, ext: Extension) -> None:
        if not isinstance(ext, ZigExtension):
            super().build_extension(ext)
            return
        out = self.get_ext_fullpath(ext.name)
        deps = [*ext.sources, *ext.depends]
        if not self.force and os.path.exists(out) and all(os.path.getmtime(d) <= os.path.getmtime(out) for d in deps):
            print(f"zig: {out} is up to date")
            return
        os.makedirs(os.path.dirname(out) or ".", exist_ok=True)
        cmd = [
            sys.executable, "-m", "ziglang", "build-lib", "-dynamic", "-O", "ReleaseFast",
            f"-mcpu={ZIG_CPU}", "-lc", "-fstrip", f"-femit-bin={out}", ext.sources[0],
        ]  # fmt: skip
        print("zig:", " ".join(cmd))
        try:
            subprocess.run(cmd, check=True)
        except (OSError, subprocess.CalledProcessError) as e:
            # Zig is a build requirement (ziglang==0.17.1 from PyPI): fail loudly, never skip.
            raise RuntimeError(
                f"building {ext.name} with Zig failed ({e}): see the compiler output above; the build "
                "needs the PyPI wheel ziglang==0.17.1 in the build environment (pip install 'ziglang==0.17.1')"
            ) from e


#: the GPU kernel sources (top-level cuda/ and opencl/) and where they go in the package
KERNEL_DIRS = ("cuda", "opencl")
KERNEL_SUFFIXES = (".cu", ".cuh", ".cl", ".h")
KERNEL_PACKAGE_DIR = os.path.join("axiom", "backends", "gpu", "kernels")


def kernel_sources() -> list[str]:
    """Every GPU kernel source of the checkout / sdist (``cuda/*.cu``, ``*.cuh``; ``opencl/*.cl``, ``*.h``)."""
    return sorted(
        os.path.join(d, name)
        for d in KERNEL_DIRS
        if os.path.isdir(d)
        for name in os.listdir(d)
        if name.endswith(KERNEL_SUFFIXES)
    )


class BuildPy(build_py):
    """``build_py`` that also copies ``cuda/`` and ``opencl/`` into ``axiom/backends/gpu/kernels/``.

    ``axiom.backends.gpu.sources`` reads the packaged copy first (in a checkout, the top-level
    directories). The kernels are compiled at run time by the device driver (OpenCL) or NVRTC /
    nvcc (CUDA), so they ship as source, like package data.
    """

    def run(self) -> None:
        super().run()
        if self.editable_mode:
            return  # an editable install reads the checkout's cuda/ and opencl/ directly
        sources = kernel_sources()
        if not any(s.endswith(".cl") for s in sources) or not any(s.endswith(".cu") for s in sources):
            raise RuntimeError(
                f"the GPU kernel sources are missing (cuda/*.cu and opencl/*.cl next to setup.py; found {sources}): "
                "an sdist must include them (MANIFEST.in)"
            )
        for src in sources:
            dst = os.path.join(self.build_lib, KERNEL_PACKAGE_DIR, src)
            self.mkpath(os.path.dirname(dst))
            self.copy_file(src, dst, preserve_mode=False)


# Every csrc/*.c is compiled into axiom._core._kernels (so its exported symbols are also
# loadable with ctypes); Cython wrappers live in axiom/_core/*.pyx.
C_SOURCES = sorted(glob("csrc/*.c"))

kernels = Extension(
    "axiom._core._kernels",
    sources=["axiom/_core/_kernels.pyx", *C_SOURCES],
    depends=sorted(glob("csrc/*.h")) + ["axiom/_core/kernels.pxd"],
    include_dirs=["csrc"],
    extra_compile_args=["-O3", f"-march={MARCH}", "-ffp-contract=fast", "-g0", *OPENMP],
    extra_link_args=OPENMP,
)

# Optional second wrapper module for the NN kernels (norms, pooling, softmax, activations,
# attention, RoPE); it links the same C sources.
extensions = [kernels]
if os.path.exists("axiom/_core/_nn.pyx"):
    extensions.append(
        Extension(
            "axiom._core._nn",
            sources=["axiom/_core/_nn.pyx", *C_SOURCES],
            depends=kernels.depends + sorted(glob("axiom/_core/*.pxd")),
            include_dirs=["csrc"],
            extra_compile_args=kernels.extra_compile_args,
            extra_link_args=OPENMP,
        )
    )

# The Rust library is optional: without cargo the build goes on and RustBackend() reports
# itself unavailable (saying how to build it); C and Zig are required.
RUST_EXTENSIONS = [
    RustExtension(
        "axiom._core._rust",
        path="rust/Cargo.toml",
        binding=Binding.NoBinding,
        debug=False,
        strip=Strip.All,
        optional=True,  # a failing cargo build is reported and skipped too
        rustc_flags=["-C", f"target-cpu={MARCH}"],
    )
]
if shutil.which("cargo") is None:
    print(
        "axiom: `cargo` is not on PATH, so the Rust kernel library (axiom._core._rust, RustBackend) is "
        "SKIPPED; the C and Zig backends are built. Install Rust (https://rustup.rs) and rebuild to get it.",
        file=sys.stderr,
    )
    RUST_EXTENSIONS = []

setup(
    ext_modules=[
        *cythonize(extensions, language_level=3, compiler_directives={"embedsignature": True}),
        ZigExtension("axiom._core._zig", sources=["zig/axiom.zig"], depends=sorted(glob("zig/*.zig"))),
    ],
    rust_extensions=RUST_EXTENSIONS,
    cmdclass={"build_ext": BuildExt, "build_py": BuildPy},
    zip_safe=False,
)
