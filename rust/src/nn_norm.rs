//! Batch norm (inference), layer norm, RMS norm and their gradients (mirrors `csrc/nn_norm.c`
//! and `csrc/nn_norm_impl.h`). Exports `axiom_{batchnorm,layernorm,rmsnorm}_f32/_f64` and
//! `axiom_{batchnorm,layernorm,rmsnorm}_backward_f32/_f64`.
//!
//! A norm row (which stays in L1) is read once from memory, then from cache: mean, variance
//! (two passes, no cancellation), normalise; the sums use 32 independent lanes so they
//! vectorise. Batch norm streams the flat array against a repeating pattern of per-channel
//! constants, so its loops are long whatever the channel count. The gradients' parameter sums
//! (dgamma, dbeta) are kept in f64, one buffer per task, added in task order.

use std::os::raw::c_int;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Mutex;

use crate::abi::export_f32_f64;
use crate::abi::{self, SendPtr, AXIOM_ERR_NOMEM, AXIOM_ERR_NULL, AXIOM_ERR_SIZE, AXIOM_OK};
use crate::nn_act::common::{lane_sum, lane_sum2, numel, opt_slice, par_ranges, slice, slice_mut, zeroed, PAR_ELEMS};
use crate::nn_act::real::Real;

/// Length a batch-norm pattern of channel constants is repeated up to (about).
const BN_BLOCK: usize = 1024;

/// rows x n arrays x and y: size, then NULL checks, like C's `rows_check`.
fn rows_check<T>(x: *const T, y: *const T, rows: i64, n: i64) -> Result<usize, c_int> {
    let elem = std::mem::size_of::<T>();
    let count = numel(&[rows, n], elem).ok_or(AXIOM_ERR_SIZE)?;
    numel(&[n], elem).ok_or(AXIOM_ERR_SIZE)?;
    if count > 0 && (x.is_null() || y.is_null()) {
        return Err(AXIOM_ERR_NULL);
    }
    Ok(count)
}

/// Batch norm arrays: x, y (rows x c), mean and var (c), like C's `bn_check`.
fn bn_check<T>(x: *const T, mean: *const T, var: *const T, y: *const T, rows: i64, c: i64) -> Result<usize, c_int> {
    let elem = std::mem::size_of::<T>();
    let count = numel(&[rows, c], elem).ok_or(AXIOM_ERR_SIZE)?;
    numel(&[c], elem).ok_or(AXIOM_ERR_SIZE)?;
    if (count > 0 && (x.is_null() || y.is_null())) || (c > 0 && (mean.is_null() || var.is_null())) {
        return Err(AXIOM_ERR_NULL);
    }
    Ok(count)
}

/// 1 / sqrt(v + eps) in double, like C.
#[inline(always)]
fn rsqrt<T: Real>(v: T, eps: f64) -> T {
    T::from_f64(1.0 / (v.to_f64() + eps).sqrt())
}

/// y = (x - c) * s [* gamma] [+ beta]
fn affine_row<T: Real>(x: &[T], gamma: Option<&[T]>, beta: Option<&[T]>, y: &mut [T], c: T, s: T) {
    let xy = y.iter_mut().zip(x);
    match (gamma, beta) {
        (Some(g), Some(b)) => xy.zip(g).zip(b).for_each(|(((o, &v), &g), &b)| *o = ((v - c) * s).fma(g, b)),
        (Some(g), None) => xy.zip(g).for_each(|((o, &v), &g)| *o = (v - c) * s * g),
        (None, Some(b)) => xy.zip(b).for_each(|((o, &v), &b)| *o = (v - c).fma(s, b)),
        (None, None) => xy.for_each(|(o, &v)| *o = (v - c) * s),
    }
}

/// Forward of layer norm (`rms` = false) or RMS norm (true, beta ignored) over rows x n.
#[allow(clippy::too_many_arguments)]
unsafe fn norm_forward<T: Real>(
    x: *const T,
    gamma: *const T,
    beta: *const T,
    y: *mut T,
    rows: i64,
    n: i64,
    eps: f64,
    rms: bool,
) -> c_int {
    let count = match rows_check(x, y, rows, n) {
        Ok(count) => count,
        Err(rc) => return rc,
    };
    if count == 0 {
        return AXIOM_OK;
    }
    let (rows, n) = (rows as usize, n as usize);
    let (gamma, beta) = (opt_slice(gamma, n), if rms { None } else { opt_slice(beta, n) });
    let (xp, yp) = (SendPtr(x as *mut T), SendPtr(y));
    let nf = T::from_i64(n as i64);
    par_ranges(rows, rows > 1 && count >= PAR_ELEMS, 1, |lo, hi| {
        let (xp, yp) = (xp, yp);
        for r in lo..hi {
            let (xr, yr) = (slice(xp.0.add(r * n), n), slice_mut(yp.0.add(r * n), n));
            if rms {
                let ms = lane_sum(xr, |v| v * v) / nf;
                affine_row(xr, gamma, None, yr, T::ZERO, rsqrt(ms, eps));
            } else {
                let mean = lane_sum(xr, |v| v) / nf;
                let var = lane_sum(xr, |v| (v - mean) * (v - mean)) / nf;
                affine_row(xr, gamma, beta, yr, mean, rsqrt(var, eps));
            }
        }
    });
    AXIOM_OK
}

/// The batch-norm constants repeated to a pattern of `len` (a multiple of c) elements:
/// (mean, scale, shift) with y = (x - mean) * scale + shift, or, when `T::BN_SHIFT` and every
/// constant is finite, y = x * scale + shift (one FMA, like C's float32 kernel; mean unused).
#[allow(clippy::type_complexity)]
fn bn_pattern<T: Real>(
    mean: &[T],
    var: &[T],
    gamma: Option<&[T]>,
    beta: Option<&[T]>,
    len: usize,
    eps: f64,
) -> Option<(Vec<T>, Vec<T>, Vec<T>, bool)> {
    let c = mean.len();
    let (mut m, mut s, mut b) = (zeroed::<T>(len)?, zeroed::<T>(len)?, zeroed::<T>(len)?);
    let mut finite = true;
    for j in 0..c {
        let g = gamma.map_or(T::ONE, |g| g[j]);
        // float32 C: gamma * (1 / sqrt(var + eps)); float64 C: gamma / sqrt(var + eps)
        s[j] = if T::BN_SHIFT { g * rsqrt(var[j], eps) } else { g / T::from_f64((var[j].to_f64() + eps).sqrt()) };
        (m[j], b[j]) = (mean[j], beta.map_or(T::ZERO, |b| b[j]));
        finite &= m[j].is_finite() && s[j].is_finite() && b[j].is_finite();
    }
    let shift = T::BN_SHIFT && finite;
    if shift {
        for j in 0..c {
            b[j] = (-m[j]).fma(s[j], b[j]);
        }
    }
    for j in c..len {
        (m[j], s[j], b[j]) = (m[j - c], s[j - c], b[j - c]);
    }
    Some((m, s, b, shift))
}

#[allow(clippy::too_many_arguments)]
unsafe fn batchnorm<T: Real>(
    x: *const T,
    mean: *const T,
    var: *const T,
    gamma: *const T,
    beta: *const T,
    y: *mut T,
    rows: i64,
    c: i64,
    eps: f64,
) -> c_int {
    let count = match bn_check(x, mean, var, y, rows, c) {
        Ok(count) => count,
        Err(rc) => return rc,
    };
    if count == 0 {
        return AXIOM_OK;
    }
    let c = c as usize;
    // the flat array repeats every c elements: a pattern of about BN_BLOCK constants keeps
    // every inner loop long (and vectorised) whatever c is
    let len = c * (BN_BLOCK / c).max(1);
    let (mean, var) = (slice(mean, c), slice(var, c));
    let Some((pm, ps, pb, shift)) = bn_pattern(mean, var, opt_slice(gamma, c), opt_slice(beta, c), len, eps) else {
        return AXIOM_ERR_NOMEM;
    };
    let nblocks = count.div_ceil(len);
    let (xp, yp) = (SendPtr(x as *mut T), SendPtr(y));
    par_ranges(nblocks, nblocks > 1 && count >= PAR_ELEMS, 1, |lo, hi| {
        let (xp, yp) = (xp, yp);
        for blk in lo..hi {
            let n = len.min(count - blk * len);
            let (xb, yb) = (slice(xp.0.add(blk * len), n), slice_mut(yp.0.add(blk * len), n));
            let xy = yb.iter_mut().zip(xb);
            if shift {
                xy.zip(&ps[..n]).zip(&pb[..n]).for_each(|(((o, &v), &s), &b)| *o = v.fma(s, b));
            } else {
                let pat = pm[..n].iter().zip(&ps[..n]).zip(&pb[..n]);
                xy.zip(pat).for_each(|((o, &v), ((&m, &s), &b))| *o = (v - m).fma(s, b));
            }
        }
    });
    AXIOM_OK
}

/// Run `body(lo, hi, part, scratch)` over row ranges (in parallel when `par`), each task with
/// its own zeroed f64 buffer `part` of `width` partial sums and `scratch_len` elements of
/// scratch; returns the sum of the parts (added in row order, so the result does not depend
/// on the threads), or AXIOM_ERR_NOMEM.
fn rows_with_partials<T: Real, F>(
    rows: usize,
    par: bool,
    width: usize,
    scratch_len: usize,
    body: F,
) -> Result<Vec<f64>, c_int>
where
    F: Fn(usize, usize, &mut [f64], &mut [T]) + Sync,
{
    let parts: Mutex<Vec<(usize, Vec<f64>)>> = Mutex::new(Vec::new());
    let failed = AtomicBool::new(false);
    par_ranges(rows, par, 1, |lo, hi| match (zeroed::<f64>(width), zeroed::<T>(scratch_len)) {
        (Some(mut part), Some(mut scratch)) => {
            body(lo, hi, &mut part, &mut scratch);
            if width > 0 {
                parts.lock().unwrap_or_else(|e| e.into_inner()).push((lo, part));
            }
        }
        _ => failed.store(true, Ordering::Relaxed),
    });
    let mut total = zeroed::<f64>(width).ok_or(AXIOM_ERR_NOMEM)?;
    if failed.load(Ordering::Relaxed) {
        return Err(AXIOM_ERR_NOMEM);
    }
    let mut parts = parts.into_inner().unwrap_or_else(|e| e.into_inner());
    parts.sort_by_key(|p| p.0);
    for (_, part) in &parts {
        total.iter_mut().zip(part).for_each(|(t, &p)| *t += p);
    }
    Ok(total)
}

/// Copy the f64 sums into the optional outputs (`out[k]` gets `total[k * width..]`).
unsafe fn store_sums<T: Real>(total: &[f64], outs: &[*mut T], width: usize) {
    for (k, &o) in outs.iter().filter(|o| !o.is_null()).enumerate() {
        for (d, &t) in slice_mut(o, width).iter_mut().zip(&total[k * width..(k + 1) * width]) {
            *d = T::from_f64(t);
        }
    }
}

/// The checks of C's NORM_BACKWARD_CHECK: Ok(None) when done (nothing more to compute).
unsafe fn norm_backward_check<T: Real>(
    dy: *const T,
    x: *const T,
    dx: *mut T,
    outs: &[*mut T],
    rows: i64,
    n: i64,
) -> Result<Option<usize>, c_int> {
    let count = rows_check(x, dx, rows, n)?;
    if count > 0 && dy.is_null() {
        return Err(AXIOM_ERR_NULL);
    }
    if n > 0 && rows == 0 {
        // no rows: the parameter gradients are zero
        for &o in outs.iter().filter(|o| !o.is_null()) {
            slice_mut(o, n as usize).fill(T::ZERO);
        }
    }
    Ok(if count == 0 { None } else { Some(count) })
}

/// g = dy * gamma (or dy) into the scratch row
#[inline(always)]
fn scaled_grad<'a, T: Real>(gr: &[T], gamma: Option<&[T]>, scratch: &'a mut [T]) -> &'a [T] {
    match gamma {
        Some(gm) => scratch.iter_mut().zip(gr).zip(gm).for_each(|((s, &g), &w)| *s = g * w),
        None => scratch.copy_from_slice(gr),
    }
    scratch
}

/// Gradients of layer norm (`rms` = false) or RMS norm (true; dbeta must be NULL).
#[allow(clippy::too_many_arguments)]
unsafe fn norm_backward<T: Real>(
    dy: *const T,
    x: *const T,
    gamma: *const T,
    dx: *mut T,
    dgamma: *mut T,
    dbeta: *mut T,
    rows: i64,
    n: i64,
    eps: f64,
    rms: bool,
) -> c_int {
    let count = match norm_backward_check(dy, x, dx, &[dgamma, dbeta], rows, n) {
        Ok(Some(count)) => count,
        Ok(None) => return AXIOM_OK,
        Err(rc) => return rc,
    };
    let (rows, n) = (rows as usize, n as usize);
    let gamma = opt_slice(gamma, n);
    let (has_g, has_b) = (!dgamma.is_null(), !dbeta.is_null());
    let nsums = has_g as usize + has_b as usize;
    let nf = T::from_i64(n as i64);
    let (gp, xp, dp) = (SendPtr(dy as *mut T), SendPtr(x as *mut T), SendPtr(dx));
    let total = rows_with_partials::<T, _>(rows, rows > 1 && count >= PAR_ELEMS, nsums * n, n, |lo, hi, part, scr| {
        let (gp, xp, dp) = (gp, xp, dp);
        let (pg, pb) = part.split_at_mut(if has_g { n } else { 0 });
        for r in lo..hi {
            let (gr, xr, dxr) = (slice(gp.0.add(r * n), n), slice(xp.0.add(r * n), n), slice_mut(dp.0.add(r * n), n));
            let g = scaled_grad(gr, gamma, scr);
            let (mean, rstd) = if rms {
                (T::ZERO, rsqrt(lane_sum(xr, |v| v * v) / nf, eps))
            } else {
                let mean = lane_sum(xr, |v| v) / nf;
                (mean, rsqrt(lane_sum(xr, |v| (v - mean) * (v - mean)) / nf, eps))
            };
            if rms {
                // dx = rs g - x (sum(g x) / n) rs^3
                let c = lane_sum2(g, xr, |g, v| g * v) / nf * rstd * rstd * rstd;
                dxr.iter_mut().zip(g).zip(xr).for_each(|((d, &g), &v)| *d = rstd * g - v * c);
            } else {
                // dx = rstd ((g - mean(g)) - xhat mean(g xhat))
                let a = lane_sum(g, |v| v) / nf;
                let b = lane_sum2(g, xr, |g, v| g * (v - mean)) * rstd / nf;
                dxr.iter_mut().zip(g).zip(xr).for_each(|((d, &g), &v)| *d = rstd * ((g - a) - (v - mean) * rstd * b));
            }
            if has_g {
                pg.iter_mut().zip(gr).zip(xr).for_each(|((p, &g), &v)| *p += (g * ((v - mean) * rstd)).to_f64());
            }
            if has_b {
                pb.iter_mut().zip(gr).for_each(|(p, &g)| *p += g.to_f64());
            }
        }
    });
    match total {
        Ok(total) => {
            store_sums(&total, &[dgamma, dbeta], n);
            AXIOM_OK
        }
        Err(rc) => rc,
    }
}

#[allow(clippy::too_many_arguments)]
unsafe fn batchnorm_backward<T: Real>(
    dy: *const T,
    x: *const T,
    mean: *const T,
    var: *const T,
    gamma: *const T,
    dx: *mut T,
    dgamma: *mut T,
    dbeta: *mut T,
    rows: i64,
    c: i64,
    eps: f64,
) -> c_int {
    let count = match bn_check(x, mean, var, dx, rows, c) {
        Ok(count) if count > 0 && dy.is_null() => return AXIOM_ERR_NULL,
        Ok(count) => count,
        Err(rc) => return rc,
    };
    if c == 0 {
        return AXIOM_OK;
    }
    let (rows, c) = (rows as usize, c as usize);
    let (mean, var, gamma) = (slice(mean, c), slice(var, c), opt_slice(gamma, c));
    let Some(mut inv) = zeroed::<T>(2 * c) else {
        return AXIOM_ERR_NOMEM;
    };
    let (inv, sc) = inv.split_at_mut(c);
    for j in 0..c {
        inv[j] = rsqrt(var[j], eps);
        sc[j] = gamma.map_or(inv[j], |g| g[j] * inv[j]);
    }
    let (inv, sc) = (&*inv, &*sc);
    let (has_g, has_b) = (!dgamma.is_null(), !dbeta.is_null());
    let nsums = has_g as usize + has_b as usize;
    let (gp, xp, dp) = (SendPtr(dy as *mut T), SendPtr(x as *mut T), SendPtr(dx));
    let total = rows_with_partials::<T, _>(rows, rows > 1 && count >= PAR_ELEMS, nsums * c, 0, |lo, hi, part, _| {
        let (gp, xp, dp) = (gp, xp, dp);
        let (pg, pb) = part.split_at_mut(if has_g { c } else { 0 });
        for r in lo..hi {
            let (gr, xr, dxr) = (slice(gp.0.add(r * c), c), slice(xp.0.add(r * c), c), slice_mut(dp.0.add(r * c), c));
            dxr.iter_mut().zip(gr).zip(sc).for_each(|((d, &g), &s)| *d = g * s);
            if has_g {
                let gx = pg.iter_mut().zip(gr).zip(xr);
                gx.zip(mean).zip(inv).for_each(|((((p, &g), &v), &m), &i)| *p += (g * ((v - m) * i)).to_f64());
            }
            if has_b {
                pb.iter_mut().zip(gr).for_each(|(p, &g)| *p += g.to_f64());
            }
        }
    });
    match total {
        Ok(total) => {
            store_sums(&total, &[dgamma, dbeta], c);
            AXIOM_OK
        }
        Err(rc) => rc,
    }
}

export_f32_f64! {
    /// Inference batch norm over the last (channel) axis of x (rows x c); gamma, beta optional.
    ///
    /// # Safety
    /// x, y: rows * c elements; mean, var (and gamma, beta unless NULL): c elements.
    axiom_batchnorm_f32,
    axiom_batchnorm_f64(
        x: ptr,
        mean: ptr,
        var: ptr,
        gamma: ptr,
        beta: ptr,
        y: mut_ptr,
        rows: i64,
        c: i64,
        eps: f64,
    ) {
        abi::guard(|| batchnorm(x, mean, var, gamma, beta, y, rows, c, eps))
    }
}

export_f32_f64! {
    /// Layer norm of each row of x (rows x n); gamma, beta (n) optional.
    ///
    /// # Safety
    /// x, y: rows * n elements; gamma, beta: n elements unless NULL.
    axiom_layernorm_f32, axiom_layernorm_f64(x: ptr, gamma: ptr, beta: ptr, y: mut_ptr, rows: i64, n: i64, eps: f64) {
        abi::guard(|| norm_forward(x, gamma, beta, y, rows, n, eps, false))
    }
}

export_f32_f64! {
    /// RMS norm of each row of x (rows x n); gamma (n) optional.
    ///
    /// # Safety
    /// x, y: rows * n elements; gamma: n elements unless NULL.
    axiom_rmsnorm_f32, axiom_rmsnorm_f64(x: ptr, gamma: ptr, y: mut_ptr, rows: i64, n: i64, eps: f64) {
        abi::guard(|| norm_forward(x, gamma, std::ptr::null(), y, rows, n, eps, true))
    }
}

export_f32_f64! {
    /// Gradients of `axiom_batchnorm_f32` with fixed statistics; dgamma, dbeta optional outputs.
    ///
    /// # Safety
    /// dy, x, dx: rows * c elements; mean, var (gamma, dgamma, dbeta unless NULL): c elements.
    axiom_batchnorm_backward_f32,
    axiom_batchnorm_backward_f64(
        dy: ptr,
        x: ptr,
        mean: ptr,
        var: ptr,
        gamma: ptr,
        dx: mut_ptr,
        dgamma: mut_ptr,
        dbeta: mut_ptr,
        rows: i64,
        c: i64,
        eps: f64,
    ) {
        abi::guard(|| batchnorm_backward(dy, x, mean, var, gamma, dx, dgamma, dbeta, rows, c, eps))
    }
}

export_f32_f64! {
    /// Gradients of `axiom_layernorm_f32`; dgamma, dbeta (n) optional outputs, gamma optional.
    ///
    /// # Safety
    /// dy, x, dx: rows * n elements; gamma, dgamma, dbeta: n elements unless NULL.
    axiom_layernorm_backward_f32,
    axiom_layernorm_backward_f64(
        dy: ptr,
        x: ptr,
        gamma: ptr,
        dx: mut_ptr,
        dgamma: mut_ptr,
        dbeta: mut_ptr,
        rows: i64,
        n: i64,
        eps: f64,
    ) {
        abi::guard(|| norm_backward(dy, x, gamma, dx, dgamma, dbeta, rows, n, eps, false))
    }
}

export_f32_f64! {
    /// Gradients of `axiom_rmsnorm_f32`; dgamma (n) optional output, gamma optional.
    ///
    /// # Safety
    /// dy, x, dx: rows * n elements; gamma, dgamma: n elements unless NULL.
    axiom_rmsnorm_backward_f32,
    axiom_rmsnorm_backward_f64(
        dy: ptr,
        x: ptr,
        gamma: ptr,
        dx: mut_ptr,
        dgamma: mut_ptr,
        rows: i64,
        n: i64,
        eps: f64,
    ) {
        abi::guard(|| norm_backward(dy, x, gamma, dx, dgamma, std::ptr::null_mut(), rows, n, eps, true))
    }
}
