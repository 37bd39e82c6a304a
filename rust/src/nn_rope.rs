//! Rotary position embedding, rotate-half convention: `axiom_rope_f32` / `axiom_rope_f64`
//! (mirrors `csrc/nn_rope.c`).
//!
//! The angle table positions[s] * base ** (-2 i / d) is computed in double, like the reference;
//! its cos / sin come from a branch-free Cody-Waite reduction and Taylor polynomials in double
//! for float32 (error < 1e-13, far below float32 rounding; the loop vectorises) and from libm
//! for float64. Then every row of x is rotated with the table of its position, in chunks of 8
//! lanes that LLVM vectorises: y[:half] = x1 cos - x2 sin, y[half:2 half] = x2 cos + x1 sin, an
//! odd last element is copied. y may be x (in place): each element is read before it is
//! written, through raw pointers (no aliasing slices).
//!
//! Threads (above C's thresholds): one parallel region, each task builds the table of a range
//! of positions and rotates those positions in every outer row (C has two regions, table then
//! rows; a std thread costs more to start than an OpenMP pool wake-up). With fewer positions
//! than threads the small table is built once and the rows are split instead.

use crate::abi::export_f32_f64;
use crate::abi::{
    guard, num_threads, parallel_for, SendPtr, AXIOM_ERR_NOMEM, AXIOM_ERR_NULL, AXIOM_ERR_SIZE, AXIOM_OK,
};
use crate::nn_attention::nn_numel;
use std::ops::{Add, Mul, Sub};
use std::os::raw::c_int;
use std::sync::atomic::{AtomicBool, Ordering};

/// C's `NN_PAR_ELEMS_MATH`: table entries from which the work runs in parallel.
const PAR_ELEMS_MATH: usize = 1 << 16;
/// C's `NN_PAR_ELEMS`: elements of x from which the work runs in parallel.
const PAR_ELEMS: usize = 1 << 20;
/// Lanes per chunk of the rotation.
const V: usize = 8;

/// `float` and `double` as RoPE uses them.
trait Elem: Copy + Send + Sync + Add<Output = Self> + Sub<Output = Self> + Mul<Output = Self> + 'static {
    const ZERO: Self;
    /// The tables (positions.len() x inv.len(), row-major): `c[s][i], s[s][i]` = cos, sin of
    /// `positions[s] * inv[i]`, rounded to the type.
    fn cos_sin_table(positions: &[f64], inv: &[f64], c: &mut [Self], s: &mut [Self]);
}

impl Elem for f32 {
    const ZERO: Self = 0.0;
    fn cos_sin_table(positions: &[f64], inv: &[f64], c: &mut [Self], s: &mut [Self]) {
        let half = inv.len().max(1);
        for ((c, s), &p) in c.chunks_exact_mut(half).zip(s.chunks_exact_mut(half)).zip(positions) {
            // branch-free polynomial first (vectorises), then libm for the rare huge / non-finite angles
            for ((c, s), &f) in c.iter_mut().zip(s.iter_mut()).zip(inv) {
                let a = p * f;
                let (cv, sv) = cos_sin_poly(if a.abs() < HUGE { a } else { 0.0 });
                (*c, *s) = (cv as f32, sv as f32);
            }
            for ((c, s), &f) in c.iter_mut().zip(s.iter_mut()).zip(inv) {
                let a = p * f;
                if !(a.abs() < HUGE) {
                    (*c, *s) = (a.cos() as f32, a.sin() as f32);
                }
            }
        }
    }
}

impl Elem for f64 {
    const ZERO: Self = 0.0;
    fn cos_sin_table(positions: &[f64], inv: &[f64], c: &mut [Self], s: &mut [Self]) {
        let half = inv.len().max(1);
        for ((c, s), &p) in c.chunks_exact_mut(half).zip(s.chunks_exact_mut(half)).zip(positions) {
            for ((c, s), &f) in c.iter_mut().zip(s.iter_mut()).zip(inv) {
                (*c, *s) = ((p * f).cos(), (p * f).sin());
            }
        }
    }
}

/// Angles from this magnitude on (and NaN) take libm in float32: the reduction of
/// [`cos_sin_poly`] holds below it.
const HUGE: f64 = 1073741824.0;

/// cos and sin of a (|a| < 2**30) to about 1e-13 (C's `rope_sincos`): a = k pi/2 + r with
/// |r| <= pi/4, Taylor polynomials for r, the quadrant picks and signs them.
#[inline(always)]
fn cos_sin_poly(a: f64) -> (f64, f64) {
    const PIO2_HI: f64 = 1.57079632673412561417e+00; // first 33 bits of pi/2
    const PIO2_LO: f64 = 6.07710050650619224932e-11; // pi/2 - PIO2_HI
    const TWO_OVER_PI: f64 = 6.36619772367581382433e-01;
    let k = (a * TWO_OVER_PI).round_ties_even();
    let r = (a - k * PIO2_HI) - k * PIO2_LO;
    let r2 = r * r;
    let sr = r + r
        * r2
        * (-1.0 / 6.0
            + r2 * (1.0 / 120.0
                + r2 * (-1.0 / 5040.0 + r2 * (1.0 / 362880.0 + r2 * (-1.0 / 39916800.0 + r2 * (1.0 / 6227020800.0))))));
    let cr = 1.0
        + r2 * (-0.5
            + r2 * (1.0 / 24.0
                + r2 * (-1.0 / 720.0
                    + r2 * (1.0 / 40320.0
                        + r2 * (-1.0 / 3628800.0 + r2 * (1.0 / 479001600.0 + r2 * (-1.0 / 87178291200.0)))))));
    let q = k - 4.0 * (k * 0.25).floor(); // quadrant 0..3, kept in double to vectorise
    let odd = q == 1.0 || q == 3.0;
    let (ss, cc) = if odd { (cr, sr) } else { (sr, cr) };
    let s = if q >= 2.0 { -ss } else { ss };
    let c = if q == 1.0 || q == 2.0 { -cc } else { cc };
    (c, s)
}

/// The cos and sin tables of these positions (len x half each, one allocation: cos then sin),
/// or None when memory runs out.
fn angle_table<T: Elem>(positions: &[f64], half: usize, d: usize, base: f64) -> Option<Vec<T>> {
    let n = positions.len() * half;
    let mut tab = Vec::new();
    tab.try_reserve_exact(2 * n).ok()?;
    tab.resize(2 * n, T::ZERO);
    let mut inv = Vec::new();
    inv.try_reserve_exact(half).ok()?;
    inv.extend((0..half).map(|i| 1.0 / base.powf((2 * i) as f64 / d as f64)));
    let (ctab, stab) = tab.split_at_mut(n);
    T::cos_sin_table(positions, &inv, ctab, stab);
    Some(tab)
}

/// Rotate one row of d elements (`x` may equal `y`) with its position's cos / sin rows.
#[inline(always)]
unsafe fn rotate_row<T: Elem>(x: *const T, y: *mut T, c: &[T], s: &[T], d: usize) {
    let half = c.len();
    let mut i = 0;
    while i + V <= half {
        let x1 = std::ptr::read_unaligned(x.add(i) as *const [T; V]);
        let x2 = std::ptr::read_unaligned(x.add(half + i) as *const [T; V]);
        let (cv, sv) = (&c[i..i + V], &s[i..i + V]);
        let y1: [T; V] = std::array::from_fn(|l| x1[l] * cv[l] - x2[l] * sv[l]);
        let y2: [T; V] = std::array::from_fn(|l| x2[l] * cv[l] + x1[l] * sv[l]);
        std::ptr::write_unaligned(y.add(i) as *mut [T; V], y1);
        std::ptr::write_unaligned(y.add(half + i) as *mut [T; V], y2);
        i += V;
    }
    for i in i..half {
        let (x1, x2) = (*x.add(i), *x.add(half + i));
        *y.add(i) = x1 * c[i] - x2 * s[i];
        *y.add(half + i) = x2 * c[i] + x1 * s[i];
    }
    if d % 2 == 1 {
        *y.add(d - 1) = *x.add(d - 1);
    }
}

unsafe fn rope<T: Elem>(
    x: *const T,
    positions: *const f64,
    y: *mut T,
    outer: i64,
    seq: i64,
    d: i64,
    base: f64,
) -> c_int {
    let elem = std::mem::size_of::<T>();
    let (Some(count), Some(_)) = (nn_numel(&[outer, seq, d], elem), nn_numel(&[seq, d], elem)) else {
        return AXIOM_ERR_SIZE;
    };
    if (count > 0 && (x.is_null() || y.is_null())) || (seq > 0 && positions.is_null()) {
        return AXIOM_ERR_NULL;
    }
    if count == 0 {
        return AXIOM_OK;
    }
    let (seq, d) = (seq as usize, d as usize);
    let (half, rows) = (d / 2, count / d);
    let positions = std::slice::from_raw_parts(positions, seq);
    let threads = if count >= PAR_ELEMS || seq * half >= PAR_ELEMS_MATH { num_threads() } else { 1 };
    let (xp, yp) = (SendPtr(x as *mut T), SendPtr(y));
    let failed = AtomicBool::new(false);
    // rotate rows `row` in `range` with the table of positions [s0, ..)
    let rotate = |tab: &[T], s0: usize, range: std::ops::Range<usize>| {
        let (xp, yp) = (xp, yp); // the SendPtrs, not their raw fields
        let (ctab, stab) = tab.split_at(tab.len() / 2);
        for row in range {
            let s = row % seq - s0;
            let (c, sn) = (&ctab[s * half..(s + 1) * half], &stab[s * half..(s + 1) * half]);
            rotate_row(xp.0.add(row * d), yp.0.add(row * d), c, sn, d);
        }
    };
    if seq >= threads {
        // one parallel region: each task builds the table of its positions, then rotates them in every outer row
        parallel_for(threads, |t| {
            let (s0, s1) = (t * seq / threads, (t + 1) * seq / threads);
            let Some(tab) = angle_table::<T>(&positions[s0..s1], half, d, base) else {
                failed.store(true, Ordering::Relaxed);
                return;
            };
            for o in 0..rows / seq {
                rotate(&tab, s0, o * seq + s0..o * seq + s1);
            }
        });
    } else {
        // fewer positions than threads: one small table, contiguous row ranges per task
        let Some(tab) = angle_table::<T>(positions, half, d, base) else {
            return AXIOM_ERR_NOMEM;
        };
        let chunks = threads.min(rows);
        parallel_for(chunks, |t| rotate(&tab, 0, t * rows / chunks..(t + 1) * rows / chunks));
    }
    if failed.load(Ordering::Relaxed) {
        AXIOM_ERR_NOMEM
    } else {
        AXIOM_OK
    }
}

export_f32_f64! {
    /// RoPE of x (outer, seq, d) at float64 `positions` (seq), float32 (see `csrc/axiom_kernels_nn.h`).
    ///
    /// # Safety
    /// Pointers must be valid for the sizes given (the C ABI contract); y may equal x.
    axiom_rope_f32, axiom_rope_f64(x: ptr, positions: f64_ptr, y: mut_ptr, outer: i64, seq: i64, d: i64, base: f64) {
        guard(|| rope(x, positions, y, outer, seq, d, base))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn poly_sincos_matches_libm() {
        for i in 0..20000 {
            let a = (i as f64 - 10000.0) * 0.37;
            let (c, s) = cos_sin_poly(a);
            assert!((c - a.cos()).abs() < 1e-12 && (s - a.sin()).abs() < 1e-12, "{a}");
        }
    }
}
