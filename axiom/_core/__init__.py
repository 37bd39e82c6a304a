"""Compiled kernel libraries built from ``csrc/``, ``rust/`` and ``zig/``.

- ``_kernels``: Cython extension wrapping the C kernels (OpenMP, GIL released); it also
  exports the C ABI symbols so ctypes can load the same file.
- ``_rust``: the Rust cdylib (plain C ABI, no Python module init), optional at build time.
- ``_zig``: the Zig shared library (plain C ABI, no Python module init).

Only ``_kernels`` is importable as a Python module; ``_rust`` and ``_zig`` are loaded with
ctypes through :func:`axiom.backends.abi.built_library_path`. Nothing in this package
imports the rest of axiom.
"""
