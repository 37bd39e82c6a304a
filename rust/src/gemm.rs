//! GEMM (float32 / float64) with run-time selected micro-kernels: AVX-512 (zmm), AVX2+FMA
//! (ymm) or portable. Mirrors `csrc/gemm.c`, `csrc/gemm_impl.h` and `csrc/gemm_ukr_impl.h`.
//!
//! Exports (`csrc/axiom_kernels.h`): `axiom_gemm_f32/_f64`, `axiom_gemm_batched_f32/_f64`,
//! and (in `isa.rs`) `axiom_cpu_isa`, `axiom_cpu_isa_supported`, `axiom_set_cpu_isa`.
//! The driver (`driver.rs`) is shared with `matmul.rs` and `conv.rs`.

pub mod driver;
pub mod isa;
pub mod scratch;
pub mod simd;
pub mod ukr;

use crate::abi::{guard, parallel_for, AXIOM_ERR_NOMEM, AXIOM_ERR_NULL, AXIOM_ERR_SIZE, AXIOM_OK};
use driver::{threads_for, ASrc, Gemm, PARALLEL_FLOPS};
use simd::Elem;
use std::os::raw::c_int;
use std::sync::atomic::{AtomicBool, Ordering};

/// Elements spanned by a rows x cols matrix with leading dimension ld (0 when empty), or None
/// when the byte size overflows.
fn span<T>(rows: i64, cols: i64, ld: i64) -> Option<i64> {
    if rows == 0 || cols == 0 {
        return Some(0);
    }
    let s = (rows - 1).checked_mul(ld)?.checked_add(cols)?;
    s.checked_mul(std::mem::size_of::<T>() as i64)?;
    Some(s)
}

/// Elements spanned by `batch` matrices of `span` elements, `stride` apart (None on overflow).
fn batch_span<T>(batch: i64, each: i64, stride: i64) -> Option<i64> {
    span::<T>(batch, each, stride)
}

/// Arguments of one batched GEMM call, as passed.
struct Batched<T> {
    batch: i64,
    trans_a: i32,
    trans_b: i32,
    m: i64,
    n: i64,
    k: i64,
    alpha: T,
    a: *const T,
    lda: i64,
    stride_a: i64,
    b: *const T,
    ldb: i64,
    stride_b: i64,
    beta: T,
    c: *mut T,
    ldc: i64,
    stride_c: i64,
}

/// Validate (same checks and order as C), then run. Returns an AXIOM_* code.
unsafe fn gemm_batched<T: Elem>(x: &Batched<T>) -> c_int {
    let (m, n, k) = (x.m, x.n, x.k);
    let flag_ok = |t: i32| t == 0 || t == 1;
    if x.batch < 0
        || m < 0
        || n < 0
        || k < 0
        || !flag_ok(x.trans_a)
        || !flag_ok(x.trans_b)
        || x.stride_a < 0
        || x.stride_b < 0
        || x.stride_c < 0
    {
        return AXIOM_ERR_SIZE;
    }
    let (rows_a, cols_a) = if x.trans_a == 1 { (k, m) } else { (m, k) };
    let (rows_b, cols_b) = if x.trans_b == 1 { (n, k) } else { (k, n) };
    if x.lda < cols_a.max(1) || x.ldb < cols_b.max(1) || x.ldc < n.max(1) {
        return AXIOM_ERR_SIZE;
    }
    let spans = (|| {
        let (sa, sb, sc) =
            (span::<T>(rows_a, cols_a, x.lda)?, span::<T>(rows_b, cols_b, x.ldb)?, span::<T>(m, n, x.ldc)?);
        batch_span::<T>(x.batch, sa, x.stride_a)?;
        batch_span::<T>(x.batch, sb, x.stride_b)?;
        batch_span::<T>(x.batch, sc, x.stride_c)?;
        Some((sa, sb, sc))
    })();
    let Some((span_a, span_b, span_c)) = spans else { return AXIOM_ERR_SIZE };
    if x.batch > 1 && span_c > 0 && x.stride_c < span_c {
        return AXIOM_ERR_SIZE; // outputs must not overlap
    }
    if x.batch == 0 {
        return AXIOM_OK;
    }
    if (span_a > 0 && x.a.is_null()) || (span_b > 0 && x.b.is_null()) || (span_c > 0 && x.c.is_null()) {
        return AXIOM_ERR_NULL;
    }
    if span_c == 0 {
        return AXIOM_OK;
    }
    let base = Gemm {
        m: m as usize,
        n: n as usize,
        k: k as usize,
        a: ASrc::Dense { a: x.a, lda: x.lda as usize, trans: x.trans_a == 1 },
        b: x.b,
        ldb: x.ldb as usize,
        transb: x.trans_b == 1,
        alpha: x.alpha,
        beta: x.beta,
        c: x.c,
        ldc: x.ldc as usize,
        bias: std::ptr::null(),
    };
    // product i: A, B and C moved by their strides (wrapping: A and B may be NULL when k == 0)
    let (sa, sb, sc) = (x.stride_a as usize, x.stride_b as usize, x.stride_c as usize);
    let product = move |i: usize| {
        let mut g = base;
        if let ASrc::Dense { a, .. } = &mut g.a {
            *a = a.wrapping_add(i * sa);
        }
        g.b = g.b.wrapping_add(i * sb);
        g.c = g.c.wrapping_add(i * sc);
        g
    };
    let flops = 2.0 * m as f64 * n as f64 * k as f64;
    let batch = x.batch as usize;
    let threads = threads_for(flops * batch as f64);
    if threads > 1 && batch > 1 && flops < PARALLEL_FLOPS {
        // many small products: one per thread at a time
        let failed = AtomicBool::new(false);
        parallel_for(batch, |i| {
            // SAFETY: the products write disjoint C matrices (stride_c >= span_c checked)
            if unsafe { driver::driver(&product(i), 1) }.is_err() {
                failed.store(true, Ordering::Relaxed);
            }
        });
        return if failed.load(Ordering::Relaxed) { AXIOM_ERR_NOMEM } else { AXIOM_OK };
    }
    let threads = threads_for(flops);
    for i in 0..batch {
        if driver::driver(&product(i), threads).is_err() {
            return AXIOM_ERR_NOMEM;
        }
    }
    AXIOM_OK
}

/// `batch` GEMMs C_i = alpha * op(A_i) @ op(B_i) + beta * C_i, see `csrc/axiom_kernels.h`.
///
/// # Safety
/// Non-NULL pointers must be valid for the sizes, leading dimensions and strides given.
#[no_mangle]
pub unsafe extern "C" fn axiom_gemm_batched_f32(
    batch: i64,
    trans_a: i32,
    trans_b: i32,
    m: i64,
    n: i64,
    k: i64,
    alpha: f32,
    a: *const f32,
    lda: i64,
    stride_a: i64,
    b: *const f32,
    ldb: i64,
    stride_b: i64,
    beta: f32,
    c: *mut f32,
    ldc: i64,
    stride_c: i64,
) -> c_int {
    let x =
        Batched { batch, trans_a, trans_b, m, n, k, alpha, a, lda, stride_a, b, ldb, stride_b, beta, c, ldc, stride_c };
    guard(|| gemm_batched(&x))
}

/// As [`axiom_gemm_batched_f32`] for float64.
///
/// # Safety
/// As for [`axiom_gemm_batched_f32`].
#[no_mangle]
pub unsafe extern "C" fn axiom_gemm_batched_f64(
    batch: i64,
    trans_a: i32,
    trans_b: i32,
    m: i64,
    n: i64,
    k: i64,
    alpha: f64,
    a: *const f64,
    lda: i64,
    stride_a: i64,
    b: *const f64,
    ldb: i64,
    stride_b: i64,
    beta: f64,
    c: *mut f64,
    ldc: i64,
    stride_c: i64,
) -> c_int {
    let x =
        Batched { batch, trans_a, trans_b, m, n, k, alpha, a, lda, stride_a, b, ldb, stride_b, beta, c, ldc, stride_c };
    guard(|| gemm_batched(&x))
}

/// C = alpha * op(A) @ op(B) + beta * C (row-major BLAS gemm), see `csrc/axiom_kernels.h`.
///
/// # Safety
/// Non-NULL pointers must be valid for the sizes and leading dimensions given.
#[no_mangle]
pub unsafe extern "C" fn axiom_gemm_f32(
    trans_a: i32,
    trans_b: i32,
    m: i64,
    n: i64,
    k: i64,
    alpha: f32,
    a: *const f32,
    lda: i64,
    b: *const f32,
    ldb: i64,
    beta: f32,
    c: *mut f32,
    ldc: i64,
) -> c_int {
    axiom_gemm_batched_f32(1, trans_a, trans_b, m, n, k, alpha, a, lda, 0, b, ldb, 0, beta, c, ldc, 0)
}

/// As [`axiom_gemm_f32`] for float64.
///
/// # Safety
/// As for [`axiom_gemm_f32`].
#[no_mangle]
pub unsafe extern "C" fn axiom_gemm_f64(
    trans_a: i32,
    trans_b: i32,
    m: i64,
    n: i64,
    k: i64,
    alpha: f64,
    a: *const f64,
    lda: i64,
    b: *const f64,
    ldb: i64,
    beta: f64,
    c: *mut f64,
    ldc: i64,
) -> c_int {
    axiom_gemm_batched_f64(1, trans_a, trans_b, m, n, k, alpha, a, lda, 0, b, ldb, 0, beta, c, ldc, 0)
}

#[cfg(test)]
mod tests {
    use super::*;

    /// 2x3 @ 3x2 with every ISA level the CPU has, against a plain triple loop.
    #[test]
    fn gemm_matches_a_plain_product_on_every_isa() {
        let a: Vec<f64> = (0..6).map(|v| v as f64 - 2.5).collect();
        let b: Vec<f64> = (0..6).map(|v| 0.5 * v as f64).collect();
        for level in 0..=2 {
            assert_eq!(isa::axiom_set_cpu_isa(level), AXIOM_OK);
            let mut c = vec![f64::NAN; 4];
            let rc =
                unsafe { axiom_gemm_f64(0, 0, 2, 2, 3, 1.0, a.as_ptr(), 3, b.as_ptr(), 2, 0.0, c.as_mut_ptr(), 2) };
            assert_eq!(rc, AXIOM_OK);
            for i in 0..2 {
                for j in 0..2 {
                    let want: f64 = (0..3).map(|p| a[i * 3 + p] * b[p * 2 + j]).sum();
                    assert_eq!(c[i * 2 + j], want);
                }
            }
        }
        assert_eq!(isa::axiom_set_cpu_isa(-1), AXIOM_OK);
    }

    #[test]
    fn gemm_rejects_bad_arguments_and_writes_nothing() {
        let a = [1.0f32; 16];
        let mut c = [7.0f32; 16];
        let p = a.as_ptr();
        let q = c.as_mut_ptr();
        unsafe {
            // negative size, bad transpose flag, lda too small, ldc too small
            assert_eq!(axiom_gemm_f32(0, 0, -1, 2, 2, 1.0, p, 2, p, 2, 0.0, q, 2), AXIOM_ERR_SIZE);
            assert_eq!(axiom_gemm_f32(2, 0, 2, 2, 2, 1.0, p, 2, p, 2, 0.0, q, 2), AXIOM_ERR_SIZE);
            assert_eq!(axiom_gemm_f32(0, 0, 2, 2, 3, 1.0, p, 2, p, 2, 0.0, q, 2), AXIOM_ERR_SIZE);
            assert_eq!(axiom_gemm_f32(0, 0, 2, 3, 2, 1.0, p, 2, p, 3, 0.0, q, 2), AXIOM_ERR_SIZE);
            // overflowing span, NULL with elements
            assert_eq!(axiom_gemm_f32(0, 0, i64::MAX, 2, 2, 1.0, p, 2, p, 2, 0.0, q, 2), AXIOM_ERR_SIZE);
            assert_eq!(axiom_gemm_f32(0, 0, 2, 2, 2, 1.0, std::ptr::null(), 2, p, 2, 0.0, q, 2), AXIOM_ERR_NULL);
            // overlapping outputs of a batch, negative stride
            assert_eq!(axiom_gemm_batched_f32(2, 0, 0, 2, 2, 2, 1.0, p, 2, 0, p, 2, 0, 0.0, q, 2, 3), AXIOM_ERR_SIZE);
            assert_eq!(axiom_gemm_batched_f32(2, 0, 0, 2, 2, 2, 1.0, p, 2, -1, p, 2, 0, 0.0, q, 2, 4), AXIOM_ERR_SIZE);
            // empty problems: OK with NULL pointers
            assert_eq!(
                axiom_gemm_f32(
                    0,
                    0,
                    0,
                    0,
                    5,
                    1.0,
                    std::ptr::null(),
                    5,
                    std::ptr::null(),
                    1,
                    0.0,
                    std::ptr::null_mut(),
                    1
                ),
                AXIOM_OK
            );
        }
        assert!(c.iter().all(|&v| v == 7.0));
    }

    #[test]
    fn k_zero_gives_beta_c_and_beta_zero_ignores_nan() {
        let mut c = [2.0f32, f32::NAN];
        let null = std::ptr::null();
        unsafe {
            assert_eq!(axiom_gemm_f32(0, 0, 1, 1, 0, 1.0, null, 1, null, 1, 3.0, c.as_mut_ptr(), 1), AXIOM_OK);
            assert_eq!(c[0], 6.0);
            assert_eq!(axiom_gemm_f32(0, 0, 1, 1, 0, 1.0, null, 1, null, 1, 0.0, c[1..].as_mut_ptr(), 1), AXIOM_OK);
            assert_eq!(c[1], 0.0);
        }
    }
}
