//! axiom kernels in Zig: the root file of the shared library axiom._core._zig.
//!
//! Every `export fn` in the files referenced below exports one symbol of the C ABI declared
//! in csrc/axiom_kernels.h (same name, signature, return codes and behaviour), so the one
//! Python table of signatures (axiom/backends/abi.py) loads this library like the C and
//! Rust ones. To add a kernel: write zig/<op>.zig with `export fn axiom_<op>_...` and add
//! it to the comptime block.

const abi = @import("abi.zig");

comptime {
    _ = @import("matmul.zig");
}

/// Return AXIOM_ABI_VERSION.
export fn axiom_abi_version() c_int {
    return abi.ABI_VERSION;
}
