//! Blocked matmul shared by the f32 and f64 entry points.
//!
//! Same algorithm as `csrc/matmul_impl.h`: rows of `c` are split into chunks (one per
//! thread for large problems, `std::thread::scope`), `k` and `n` are tiled so a panel of
//! `b` stays in cache, and a micro-kernel keeps a 4 x (2 vectors) tile of `c` in registers
//! while it runs over the panel (LLVM vectorises its fixed-size arrays). Every product is added (no zero skipping), so NaN/Inf propagate like a
//! plain dot product.

use crate::{AXIOM_ERR_NULL, AXIOM_ERR_SIZE, AXIOM_OK};
use std::ops::{Add, Mul};
use std::os::raw::c_int;
use std::sync::OnceLock;

const KC: usize = 256;
const NC: usize = 256;
/// Below this many multiply-adds (m * k * n) the matmul runs on the calling thread (a
/// thread is spawned per call, ~tens of microseconds, unlike the C library's OpenMP pool).
const PARALLEL_WORK: f64 = (1u64 << 20) as f64;

/// The element types with a kernel.
pub trait Element: Copy + Send + Sync + Add<Output = Self> + Mul<Output = Self> {
    const ZERO: Self;
    /// Columns of the micro-kernel tile: two 256-bit vectors.
    const W: usize;
    /// The micro-kernel instantiated with `W` columns (see [`micro`]).
    #[allow(clippy::too_many_arguments)]
    fn micro(a: &[Self], b: &[Self], c: &mut [Self], k: usize, n: usize, kk: usize, kend: usize, j: usize);
    /// `a * b + c`, fused when the target has FMA (both are exact IEEE operations).
    fn madd(a: Self, b: Self, c: Self) -> Self;
}

impl Element for f32 {
    const ZERO: Self = 0.0;
    const W: usize = 16;
    #[inline(always)]
    fn micro(a: &[Self], b: &[Self], c: &mut [Self], k: usize, n: usize, kk: usize, kend: usize, j: usize) {
        micro::<Self, 16>(a, b, c, k, n, kk, kend, j)
    }
    #[inline(always)]
    fn madd(a: Self, b: Self, c: Self) -> Self {
        if cfg!(target_feature = "fma") {
            a.mul_add(b, c)
        } else {
            a * b + c
        }
    }
}

impl Element for f64 {
    const ZERO: Self = 0.0;
    const W: usize = 8;
    #[inline(always)]
    fn micro(a: &[Self], b: &[Self], c: &mut [Self], k: usize, n: usize, kk: usize, kend: usize, j: usize) {
        micro::<Self, 8>(a, b, c, k, n, kk, kend, j)
    }
    #[inline(always)]
    fn madd(a: Self, b: Self, c: Self) -> Self {
        if cfg!(target_feature = "fma") {
            a.mul_add(b, c)
        } else {
            a * b + c
        }
    }
}

/// Element count of a `rows x cols` array of `T`, or None if negative or too large.
fn count<T>(rows: i64, cols: i64) -> Option<usize> {
    if rows < 0 || cols < 0 {
        return None;
    }
    let total = rows.checked_mul(cols)?;
    let bytes = total.checked_mul(std::mem::size_of::<T>() as i64)?;
    usize::try_from(bytes).ok()?;
    usize::try_from(total).ok()
}

/// Number of worker threads: `OMP_NUM_THREADS` if set (like the C library), else all cores.
fn max_threads() -> usize {
    static THREADS: OnceLock<usize> = OnceLock::new();
    *THREADS.get_or_init(|| {
        std::env::var("OMP_NUM_THREADS")
            .ok()
            .and_then(|v| v.split(',').next().and_then(|s| s.trim().parse::<usize>().ok()))
            .filter(|&t| t > 0)
            .unwrap_or_else(|| std::thread::available_parallelism().map_or(1, |p| p.get()))
    })
}

/// Validate the arguments, then run the kernel. See `axiom_matmul_f32` in the C header.
///
/// # Safety
/// Non-NULL pointers must be valid for the sizes given.
pub unsafe fn matmul<T: Element>(a: *const T, b: *const T, c: *mut T, m: i64, k: i64, n: i64) -> c_int {
    let (Some(na), Some(nb), Some(nc)) = (count::<T>(m, k), count::<T>(k, n), count::<T>(m, n)) else {
        return AXIOM_ERR_SIZE;
    };
    if (na > 0 && a.is_null()) || (nb > 0 && b.is_null()) || (nc > 0 && c.is_null()) {
        return AXIOM_ERR_NULL;
    }
    if nc == 0 {
        return AXIOM_OK;
    }
    let (m, k, n) = (m as usize, k as usize, n as usize);
    // nc > 0 so c is non-NULL; a and b are non-NULL whenever k > 0.
    let c = std::slice::from_raw_parts_mut(c, nc);
    if k == 0 {
        c.fill(T::ZERO);
        return AXIOM_OK;
    }
    let a = std::slice::from_raw_parts(a, na);
    let b = std::slice::from_raw_parts(b, nb);
    let work = m as f64 * k as f64 * n as f64;
    let threads = if work >= PARALLEL_WORK { max_threads().min(m.div_ceil(4)) } else { 1 };
    if threads <= 1 {
        rows_kernel(a, b, c, k, n);
        return AXIOM_OK;
    }
    // chunks of whole rows, a multiple of 4 rows each so the 4-row kernel stays busy
    let rows_per = m.div_ceil(threads).div_ceil(4) * 4;
    std::thread::scope(|s| {
        for (a_rows, c_rows) in a.chunks(rows_per * k).zip(c.chunks_mut(rows_per * n)) {
            let spawned = std::thread::Builder::new().spawn_scoped(s, move || rows_kernel(a_rows, b, c_rows, k, n));
            if spawned.is_err() {
                // could not start a thread: this chunk is not done; redo it inline below
                return Err(());
            }
        }
        Ok(())
    })
    .unwrap_or_else(|()| rows_kernel(a, b, c, k, n));
    AXIOM_OK
}

/// `c = a @ b` for the rows held by `a` and `c` (row-major, k and n columns).
fn rows_kernel<T: Element>(a: &[T], b: &[T], c: &mut [T], k: usize, n: usize) {
    c.fill(T::ZERO);
    let m = c.len() / n;
    for kk in (0..k).step_by(KC) {
        let kend = (kk + KC).min(k);
        for jj in (0..n).step_by(NC) {
            let jend = (jj + NC).min(n);
            let jvec = jj + (jend - jj) / T::W * T::W;
            let mut i = 0;
            while i + 4 <= m {
                for j in (jj..jvec).step_by(T::W) {
                    T::micro(&a[i * k..], b, &mut c[i * n..], k, n, kk, kend, j);
                }
                edge(&a[i * k..], b, &mut c[i * n..(i + 4) * n], k, n, kk, kend, jvec, jend);
                i += 4;
            }
            edge(&a[i * k..], b, &mut c[i * n..], k, n, kk, kend, jj, jend);
        }
    }
}

/// `c[0..4, j..j+W] += a[0..4, kk..kend] @ b[kk..kend, j..j+W]` with the 4 x W tile of `c` in
/// registers (W = two 256-bit vectors; LLVM vectorises the fixed-size array arithmetic).
#[inline(always)]
#[allow(clippy::too_many_arguments)]
fn micro<T: Element, const W: usize>(
    a: &[T],
    b: &[T],
    c: &mut [T],
    k: usize,
    n: usize,
    kk: usize,
    kend: usize,
    j: usize,
) {
    let mut acc = [[T::ZERO; W]; 4];
    for (r, row) in acc.iter_mut().enumerate() {
        row.copy_from_slice(&c[r * n + j..r * n + j + W]);
    }
    for p in kk..kend {
        let bp: &[T; W] = b[p * n + j..p * n + j + W].try_into().unwrap_or_else(|_| unreachable!());
        for (r, row) in acc.iter_mut().enumerate() {
            let ar = a[r * k + p];
            for (x, &bj) in row.iter_mut().zip(bp.iter()) {
                *x = T::madd(ar, bj, *x);
            }
        }
    }
    for (r, row) in acc.iter().enumerate() {
        c[r * n + j..r * n + j + W].copy_from_slice(row);
    }
}

/// `c[i, j0..j1] += a[i, kk..kend] @ b[kk..kend, j0..j1]` for every row `i` of `c`, any width.
#[allow(clippy::too_many_arguments)]
fn edge<T: Element>(a: &[T], b: &[T], c: &mut [T], k: usize, n: usize, kk: usize, kend: usize, j0: usize, j1: usize) {
    if j0 >= j1 {
        return;
    }
    for (i, ci) in c.chunks_exact_mut(n).enumerate() {
        let ci = &mut ci[j0..j1];
        for p in kk..kend {
            let ai = a[i * k + p];
            for (x, &bj) in ci.iter_mut().zip(b[p * n + j0..p * n + j1].iter()) {
                *x = T::madd(ai, bj, *x);
            }
        }
    }
}

/// `c = a @ b` for row-major contiguous `a` (m x k), `b` (k x n), `c` (m x n), float32.
///
/// # Safety
/// Non-NULL pointers must point to at least as many elements as the sizes say, and `c`
/// must not overlap `a` or `b`.
#[no_mangle]
pub unsafe extern "C" fn axiom_matmul_f32(a: *const f32, b: *const f32, c: *mut f32, m: i64, k: i64, n: i64) -> c_int {
    crate::abi::guard(|| matmul(a, b, c, m, k, n))
}

/// `c = a @ b` for row-major contiguous `a` (m x k), `b` (k x n), `c` (m x n), float64.
///
/// # Safety
/// As for [`axiom_matmul_f32`].
#[no_mangle]
pub unsafe extern "C" fn axiom_matmul_f64(a: *const f64, b: *const f64, c: *mut f64, m: i64, k: i64, n: i64) -> c_int {
    crate::abi::guard(|| matmul(a, b, c, m, k, n))
}
