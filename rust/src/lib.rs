//! axiom kernels in Rust (std only).
//!
//! Every function here exports one symbol of the C ABI declared in `csrc/axiom_kernels.h`
//! (same name, same signature, same return codes and behaviour), so the one Python table
//! of signatures in `axiom/backends/abi.py` loads this library like the C and Zig ones.
//! No function may panic: bad arguments are reported with an error code.

use std::os::raw::c_int;

mod matmul;

/// Version of the kernel ABI (`AXIOM_ABI_VERSION` in `csrc/axiom_kernels.h`).
pub const AXIOM_ABI_VERSION: c_int = 1;
/// Success.
pub const AXIOM_OK: c_int = 0;
/// A required pointer is NULL (its array has elements).
pub const AXIOM_ERR_NULL: c_int = 1;
/// A negative dimension, or an element count / byte size that overflows.
pub const AXIOM_ERR_SIZE: c_int = 2;

/// Return `AXIOM_ABI_VERSION`.
#[no_mangle]
pub extern "C" fn axiom_abi_version() -> c_int {
    AXIOM_ABI_VERSION
}

/// `c = a @ b` for row-major contiguous `a` (m x k), `b` (k x n), `c` (m x n), float32.
///
/// # Safety
/// Non-NULL pointers must point to at least as many elements as the sizes say, and `c`
/// must not overlap `a` or `b`.
#[no_mangle]
pub unsafe extern "C" fn axiom_matmul_f32(a: *const f32, b: *const f32, c: *mut f32, m: i64, k: i64, n: i64) -> c_int {
    matmul::matmul(a, b, c, m, k, n)
}

/// `c = a @ b` for row-major contiguous `a` (m x k), `b` (k x n), `c` (m x n), float64.
///
/// # Safety
/// As for [`axiom_matmul_f32`].
#[no_mangle]
pub unsafe extern "C" fn axiom_matmul_f64(a: *const f64, b: *const f64, c: *mut f64, m: i64, k: i64, n: i64) -> c_int {
    matmul::matmul(a, b, c, m, k, n)
}
