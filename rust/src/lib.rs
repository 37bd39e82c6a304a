//! axiom kernels in Rust (std only).
//!
//! Every `#[no_mangle] extern "C"` function of the modules below exports one symbol of the
//! C ABI declared in `csrc/axiom_kernels.h` and `csrc/axiom_kernels_nn.h` (same name, same
//! signature, same return codes and behaviour), so the one Python table of signatures in
//! `axiom/backends/abi.py` loads this library like the C and Zig ones. No panic crosses the
//! FFI boundary: bad arguments are reported with an error code, and every body runs inside
//! [`abi::guard`], which turns a panic (a bug) into `AXIOM_ERR_INTERNAL`.

use std::os::raw::c_int;

pub mod abi;
pub use abi::{AXIOM_ABI_VERSION, AXIOM_ERR_INTERNAL, AXIOM_ERR_NOMEM, AXIOM_ERR_NULL, AXIOM_ERR_SIZE, AXIOM_OK};

mod conv;
mod gemm;
mod matmul;
mod nn_act;
mod nn_attention;
mod nn_norm;
mod nn_pool;
mod nn_rope;
mod nn_softmax;
mod pool;

/// Return `AXIOM_ABI_VERSION`.
#[no_mangle]
pub extern "C" fn axiom_abi_version() -> c_int {
    AXIOM_ABI_VERSION
}
