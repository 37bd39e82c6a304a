//! axiom kernels in Zig: the root file of the shared library axiom._core._zig.
//!
//! Every `export fn` in the files referenced below exports one symbol of the C ABI declared
//! in csrc/axiom_kernels.h and csrc/axiom_kernels_nn.h (same name, signature, return codes
//! and behaviour), so the one Python table of signatures (axiom/backends/abi.py) loads this
//! library like the C and Rust ones. Kernels never panic: bad arguments return an error
//! code. To add a kernel: write `export fn axiom_<op>_...` in zig/<file>.zig and add the file
//! to the comptime block.

const abi = @import("abi.zig");

comptime {
    _ = @import("matmul.zig");
    _ = @import("gemm.zig");
    _ = @import("conv.zig");
    _ = @import("nn_norm.zig");
    _ = @import("nn_pool.zig");
    _ = @import("nn_softmax.zig");
    _ = @import("nn_act.zig");
    _ = @import("nn_attention.zig");
    _ = @import("nn_rope.zig");
}

/// Return AXIOM_ABI_VERSION.
export fn axiom_abi_version() c_int {
    return abi.ABI_VERSION;
}
