//! Softmax / log-softmax along the middle axis of (outer, n, inner) and the gradients
//! (mirrors `csrc/nn_softmax.c`). Exports `axiom_softmax_f32/_f64` and
//! `axiom_softmax_backward_f32/_f64`.
//!
//! inner == 1 (the last axis): three passes over each row, which stays in L1: max, then
//! e = exp(x - max) with its sum, then e / sum (or (x - max) - log(sum)). inner > 1: the same
//! passes over tiles of up to 64 neighbouring columns, so nothing is transposed. Special
//! values follow the reference: exp(x - max) is NaN for a row holding NaN or +inf or made of
//! -inf only, and that NaN reaches the whole row through the sum.

use std::os::raw::c_int;

use crate::abi::export_f32_f64;
use crate::abi::{self, SendPtr, AXIOM_ERR_NULL, AXIOM_ERR_SIZE, AXIOM_OK};
use crate::nn_act::common::{numel, par_ranges, slice, slice_mut, PAR_ELEMS};
use crate::nn_act::real::Real;

/// Columns per tile when inner > 1.
const COL_TILE: usize = 64;
/// Independent lanes of the row reductions (vectorised accumulators).
const L: usize = 32;

/// Size, then the log flag, then NULL checks, like C.
fn check<T>(x: *const T, y: *const T, outer: i64, n: i64, inner: i64, log: c_int) -> Result<usize, c_int> {
    let count = numel(&[outer, n, inner], std::mem::size_of::<T>()).ok_or(AXIOM_ERR_SIZE)?;
    if log != 0 && log != 1 {
        return Err(AXIOM_ERR_SIZE);
    }
    if count > 0 && (x.is_null() || y.is_null()) {
        return Err(AXIOM_ERR_NULL);
    }
    Ok(count)
}

/// Maximum of a row (a NaN may be lost: it still reaches the sum through exp(NaN - max)).
#[inline(always)]
fn row_max<T: Real>(x: &[T]) -> T {
    let mut m = [T::NEG_INF; L];
    let chunks = x.chunks_exact(L);
    for (k, &v) in chunks.remainder().iter().enumerate() {
        m[k] = m[k].max_num(v);
    }
    for c in chunks {
        for k in 0..L {
            m[k] = m[k].max_num(c[k]);
        }
    }
    m.iter().fold(T::NEG_INF, |a, &b| b.max_nan(a))
}

fn softmax_row<T: Real>(x: &[T], y: &mut [T], log: bool) {
    let m = row_max(x);
    if log {
        let lse = crate::nn_act::common::lane_sum(x, |v| (v - m).exp_neg()).ln();
        for (o, &v) in y.iter_mut().zip(x) {
            *o = (v - m) - lse;
        }
        return;
    }
    let mut acc = [T::ZERO; L];
    let (xc, yc) = (x.chunks_exact(L), y.chunks_exact_mut(L));
    let xt = xc.remainder();
    for (xs, ys) in xc.zip(yc) {
        for k in 0..L {
            let e = (xs[k] - m).exp_neg();
            ys[k] = e;
            acc[k] += e;
        }
    }
    let done = x.len() - xt.len();
    for (k, (o, &v)) in y[done..].iter_mut().zip(xt).enumerate() {
        let e = (v - m).exp_neg();
        *o = e;
        acc[k] += e;
    }
    let inv = T::ONE / crate::nn_act::common::lane_sum(&acc, |v| v);
    for o in y.iter_mut() {
        *o = *o * inv;
    }
}

/// Columns [j0, j0 + w) of one (n, inner) block x, written to the block at y, w <= COL_TILE.
/// Tiles of one block interleave, so each output row is viewed on its own (`w` elements).
///
/// # Safety
/// y points to a block like x, overlapping nothing else that is live.
#[allow(clippy::too_many_arguments)]
unsafe fn softmax_cols<T: Real>(x: &[T], y: *mut T, n: usize, inner: usize, j0: usize, w: usize, log: bool) {
    let row = |i: usize| slice_mut(y.add(i * inner + j0), w);
    let mut m = [T::NEG_INF; COL_TILE];
    let mut s = [T::ZERO; COL_TILE];
    let (m, s) = (&mut m[..w], &mut s[..w]);
    for i in 0..n {
        for (mk, &v) in m.iter_mut().zip(&x[i * inner + j0..][..w]) {
            *mk = mk.max_num(v);
        }
    }
    for i in 0..n {
        let (xr, yr) = (&x[i * inner + j0..][..w], row(i));
        for k in 0..w {
            let e = (xr[k] - m[k]).exp_neg();
            s[k] += e;
            if !log {
                yr[k] = e;
            }
        }
    }
    for v in s.iter_mut() {
        *v = if log { v.ln() } else { T::ONE / *v };
    }
    for i in 0..n {
        let (xr, yr) = (&x[i * inner + j0..][..w], row(i));
        for k in 0..w {
            yr[k] = if log { (xr[k] - m[k]) - s[k] } else { yr[k] * s[k] };
        }
    }
}

fn softmax_backward_row<T: Real>(y: &[T], dy: &[T], dx: &mut [T], log: bool) {
    if log {
        let s = crate::nn_act::common::lane_sum(dy, |g| g);
        for ((d, &g), &v) in dx.iter_mut().zip(dy).zip(y) {
            *d = g - v.exp() * s;
        }
    } else {
        let s = crate::nn_act::common::lane_sum2(dy, y, |g, v| g * v);
        for ((d, &g), &v) in dx.iter_mut().zip(dy).zip(y) {
            *d = v * (g - s);
        }
    }
}

/// Columns [j0, j0 + w) of one (n, inner) block, written to the block at dx, w <= COL_TILE.
///
/// # Safety
/// As [`softmax_cols`].
#[allow(clippy::too_many_arguments)]
unsafe fn softmax_backward_cols<T: Real>(
    y: &[T],
    dy: &[T],
    dx: *mut T,
    n: usize,
    inner: usize,
    j0: usize,
    w: usize,
    log: bool,
) {
    let mut acc = [T::ZERO; COL_TILE];
    let acc = &mut acc[..w];
    for i in 0..n {
        let (yr, gr) = (&y[i * inner + j0..][..w], &dy[i * inner + j0..][..w]);
        for k in 0..w {
            acc[k] += if log { gr[k] } else { gr[k] * yr[k] };
        }
    }
    for i in 0..n {
        let (yr, gr) = (&y[i * inner + j0..][..w], &dy[i * inner + j0..][..w]);
        let dr = slice_mut(dx.add(i * inner + j0), w);
        for k in 0..w {
            dr[k] = if log { gr[k] - yr[k].exp() * acc[k] } else { yr[k] * (gr[k] - acc[k]) };
        }
    }
}

/// Run `body(offset, n * inner block, j0, w)` over every row (inner == 1: j0 = 0, w = 1) or
/// column tile, in parallel when `par`.
fn for_tiles<F: Fn(usize, usize, usize) + Sync>(outer: usize, inner: usize, par: bool, body: F) {
    let tiles = inner.div_ceil(COL_TILE);
    par_ranges(outer * tiles, par, 1, |lo, hi| {
        for t in lo..hi {
            let j0 = (t % tiles) * COL_TILE;
            body(t / tiles, j0, (inner - j0).min(COL_TILE));
        }
    });
}

unsafe fn softmax<T: Real>(x: *const T, y: *mut T, outer: i64, n: i64, inner: i64, log: c_int) -> c_int {
    let count = match check(x, y, outer, n, inner, log) {
        Ok(count) => count,
        Err(rc) => return rc,
    };
    if count == 0 {
        return AXIOM_OK;
    }
    let (outer, n, inner, log) = (outer as usize, n as usize, inner as usize, log == 1);
    let (xp, yp) = (SendPtr(x as *mut T), SendPtr(y));
    let block = n * inner;
    if inner == 1 {
        par_ranges(outer, count >= PAR_ELEMS, 1, |lo, hi| {
            let (xp, yp) = (xp, yp);
            for r in lo..hi {
                softmax_row(slice(xp.0.add(r * n), n), slice_mut(yp.0.add(r * n), n), log);
            }
        });
    } else {
        for_tiles(outer, inner, count >= PAR_ELEMS, |o, j0, w| {
            let (xp, yp) = (xp, yp);
            softmax_cols(slice(xp.0.add(o * block), block), yp.0.add(o * block), n, inner, j0, w, log);
        });
    }
    AXIOM_OK
}

unsafe fn softmax_backward<T: Real>(
    y: *const T,
    dy: *const T,
    dx: *mut T,
    outer: i64,
    n: i64,
    inner: i64,
    log: c_int,
) -> c_int {
    let count = match check(y, dx, outer, n, inner, log) {
        Ok(count) if count > 0 && dy.is_null() => return AXIOM_ERR_NULL,
        Ok(count) => count,
        Err(rc) => return rc,
    };
    if count == 0 {
        return AXIOM_OK;
    }
    let (outer, n, inner, log) = (outer as usize, n as usize, inner as usize, log == 1);
    let (yp, gp, dp) = (SendPtr(y as *mut T), SendPtr(dy as *mut T), SendPtr(dx));
    let block = n * inner;
    if inner == 1 {
        par_ranges(outer, count >= PAR_ELEMS, 1, |lo, hi| {
            let (yp, gp, dp) = (yp, gp, dp);
            for r in lo..hi {
                let (yr, gr) = (slice(yp.0.add(r * n), n), slice(gp.0.add(r * n), n));
                softmax_backward_row(yr, gr, slice_mut(dp.0.add(r * n), n), log);
            }
        });
    } else {
        for_tiles(outer, inner, count >= PAR_ELEMS, |o, j0, w| {
            let (yp, gp, dp) = (yp, gp, dp);
            let (yb, gb) = (slice(yp.0.add(o * block), block), slice(gp.0.add(o * block), block));
            softmax_backward_cols(yb, gb, dp.0.add(o * block), n, inner, j0, w, log);
        });
    }
    AXIOM_OK
}

export_f32_f64! {
    /// Softmax (log = 0) or log-softmax (log = 1) of x (outer, n, inner) along the middle axis.
    ///
    /// # Safety
    /// x and y point to outer * n * inner elements each, not overlapping; NULL only when empty.
    axiom_softmax_f32, axiom_softmax_f64(x: ptr, y: mut_ptr, outer: i64, n: i64, inner: i64, log: c_int) {
        abi::guard(|| softmax(x, y, outer, n, inner, log))
    }
}

export_f32_f64! {
    /// Gradient of `axiom_softmax_f32` from its output y.
    ///
    /// # Safety
    /// y, dy, dx point to outer * n * inner elements each; dx overlaps neither; NULL only when empty.
    axiom_softmax_backward_f32,
    axiom_softmax_backward_f64(
        y: ptr,
        dy: ptr,
        dx: mut_ptr,
        outer: i64,
        n: i64,
        inner: i64,
        log: c_int,
    ) {
        abi::guard(|| softmax_backward(y, dy, dx, outer, n, inner, log))
    }
}
