//! `axiom_matmul_f32` / `axiom_matmul_f64`: c = a @ b for contiguous row-major operands,
//! computed by the packed GEMM driver of `gemm.rs` (mirrors `csrc/matmul.c`).

use crate::abi::{count, guard, null_with_elements, AXIOM_ERR_NOMEM, AXIOM_ERR_NULL, AXIOM_ERR_SIZE, AXIOM_OK};
use crate::gemm::driver::{driver, threads_for, ASrc, Gemm};
use crate::gemm::simd::Elem;
use std::os::raw::c_int;

/// Validate the arguments like C's `axiom_check_matmul`, then run the GEMM.
unsafe fn matmul<T: Elem>(a: *const T, b: *const T, c: *mut T, m: i64, k: i64, n: i64) -> c_int {
    let size = std::mem::size_of::<T>();
    let (Some(na), Some(nb), Some(nc)) = (count(&[m, k], size), count(&[k, n], size), count(&[m, n], size)) else {
        return AXIOM_ERR_SIZE;
    };
    if null_with_elements(a, na) || null_with_elements(b, nb) || null_with_elements(c, nc) {
        return AXIOM_ERR_NULL;
    }
    if m == 0 || n == 0 {
        return AXIOM_OK;
    }
    let (m, k, n) = (m as usize, k as usize, n as usize);
    let g = Gemm::product(m, n, k, ASrc::Dense { a, lda: k.max(1), trans: false }, b, n, c, n);
    match driver(&g, threads_for(2.0 * m as f64 * n as f64 * k as f64)) {
        Ok(()) => AXIOM_OK,
        Err(_) => AXIOM_ERR_NOMEM,
    }
}

/// `c = a @ b` for row-major contiguous `a` (m x k), `b` (k x n), `c` (m x n), float32.
///
/// # Safety
/// Non-NULL pointers must point to at least as many elements as the sizes say, and `c`
/// must not overlap `a` or `b`.
#[no_mangle]
pub unsafe extern "C" fn axiom_matmul_f32(a: *const f32, b: *const f32, c: *mut f32, m: i64, k: i64, n: i64) -> c_int {
    guard(|| matmul(a, b, c, m, k, n))
}

/// `c = a @ b` for row-major contiguous `a` (m x k), `b` (k x n), `c` (m x n), float64.
///
/// # Safety
/// As for [`axiom_matmul_f32`].
#[no_mangle]
pub unsafe extern "C" fn axiom_matmul_f64(a: *const f64, b: *const f64, c: *mut f64, m: i64, k: i64, n: i64) -> c_int {
    guard(|| matmul(a, b, c, m, k, n))
}
