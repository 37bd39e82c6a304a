//! Element-wise activations and their gradients (mirrors `csrc/nn_act.c` and
//! `csrc/nn_act_backward.c`). Exports `axiom_activation_f32/_f64` and
//! `axiom_activation_backward_f32/_f64`.
//!
//! One generic formula per activation code ([`act`], [`dact`]) over [`Real`]; the code is a
//! const generic, so each of the 16 loops is specialised, branch-free and auto-vectorised
//! (float32 math: the polynomials of `real`). NaN / Inf behave like the reference
//! (`axiom/backends/reference.py`, `reference_grad.py`): e.g. gelu(-inf) = NaN, relu'(NaN) = 0,
//! leaky_relu'(NaN) = alpha, hardswish'(NaN) = 1, act'(+-inf) = NaN for gelu, gelu_tanh, silu
//! and mish.
//!
//! Also home of the helpers all NN kernels of this crate share: [`real`] (the element types
//! and their math) and [`common`] (size checks, thresholds, slices, lane sums).

pub(crate) mod common;
pub(crate) mod real;

use std::os::raw::c_int;

use crate::abi::export_f32_f64;
use crate::abi::{self, SendPtr, AXIOM_ERR_NULL, AXIOM_ERR_SIZE, AXIOM_OK};
use common::{numel, slice, slice_mut, PAR_ELEMS, PAR_ELEMS_MATH};
use real::Real;

const IDENTITY: i32 = 0;
const RELU: i32 = 1;
const LEAKY_RELU: i32 = 2;
const ELU: i32 = 3;
const SELU: i32 = 4;
const GELU: i32 = 5;
const GELU_TANH: i32 = 6;
const SIGMOID: i32 = 7;
const TANH: i32 = 8;
const SOFTPLUS: i32 = 9;
const SOFTSIGN: i32 = 10;
const SILU: i32 = 11;
const MISH: i32 = 12;
const HARDSWISH: i32 = 13;
const HARDSIGMOID: i32 = 14;
// 15 is RELU6 (the last arm of the matches)
const ACT_COUNT: i32 = 16;

const SELU_ALPHA: f64 = 1.6732632423543772;
const SELU_SCALE: f64 = 1.0507009873554805;
const TWO_SQRT_2_OVER_PI: f64 = 1.5957691216057308;
const GELU_K: f64 = 0.044715;
const INV_SQRT_2PI: f64 = 0.3989422804014327;
const SQRT_HALF: f64 = std::f64::consts::FRAC_1_SQRT_2;

/// Elements per parallel task (at least).
const BLOCK: usize = 4096;

/// The piecewise-linear activations are memory-bound: threads only above PAR_ELEMS.
fn cheap(act: i32) -> bool {
    act <= LEAKY_RELU || act == SOFTSIGN || act >= HARDSWISH
}

#[inline(always)]
fn c<T: Real>(v: f64) -> T {
    T::from_f64(v)
}

/// act(x) for the activation code `A`.
#[inline(always)]
fn act<T: Real, const A: i32>(x: T, alpha: T) -> T {
    let zero = T::ZERO;
    match A {
        IDENTITY => x,
        RELU => {
            if x <= zero {
                zero
            } else {
                x
            }
        }
        LEAKY_RELU => {
            if x >= zero {
                x
            } else {
                x * alpha
            }
        }
        ELU => {
            let neg = alpha * x.min_nan(zero).expm1_neg();
            if x > zero {
                x
            } else {
                neg
            }
        }
        SELU => {
            let neg = c::<T>(SELU_ALPHA) * x.min_nan(zero).expm1_neg();
            c::<T>(SELU_SCALE) * if x > zero { x } else { neg }
        }
        GELU => x.gelu(),
        GELU_TANH => x.gelu_tanh(),
        SIGMOID => x.sigmoid(),
        TANH => x.tanh(),
        SOFTPLUS => x.softplus(),
        SOFTSIGN => x / (T::ONE + x.abs()),
        SILU => x * x.sigmoid(),
        MISH => x * x.softplus().tanh(),
        HARDSWISH => x * (x + c(3.0)).clamp_nan(zero, c(6.0)) / c(6.0),
        HARDSIGMOID => (x + c(3.0)).clamp_nan(zero, c(6.0)) / c(6.0),
        _ => x.clamp_nan(zero, c(6.0)),
    }
}

/// act'(x) for the activation code `A`, written without cancellation from e = exp(-|.|) <= 1
/// like C (see `csrc/nn_act_backward.c`).
#[inline(always)]
fn dact<T: Real, const A: i32>(x: T, alpha: T) -> T {
    let (zero, one) = (T::ZERO, T::ONE);
    match A {
        IDENTITY => one,
        RELU => {
            if x > zero {
                one
            } else {
                zero
            }
        }
        LEAKY_RELU => {
            if x > zero {
                one
            } else {
                alpha
            }
        }
        ELU => {
            let neg = alpha * x.min_nan(zero).exp_neg();
            if x > zero {
                one
            } else {
                neg
            }
        }
        SELU => {
            let neg = c::<T>(SELU_ALPHA) * x.min_nan(zero).exp_neg();
            c::<T>(SELU_SCALE) * if x > zero { one } else { neg }
        }
        GELU => {
            // Phi(x) + x phi(x)
            let pdf = (c::<T>(-0.5) * (x * x)).exp_neg() * c(INV_SQRT_2PI);
            c::<T>(0.5) * (x * c(SQRT_HALF)).one_plus_erf() + x * pdf
        }
        GELU_TANH => {
            // x s(w), w = 2c (x + k x^3): s + 2c x s (1 - s) (1 + 3k x^2), s (1 - s) = e / (1 + e)^2
            let w = c::<T>(TWO_SQRT_2_OVER_PI) * (x + c::<T>(GELU_K) * (x * x * x));
            let e = (-w.abs()).exp_neg();
            let r = one / (one + e);
            let s = if w >= zero { r } else { e * r };
            s + (c::<T>(TWO_SQRT_2_OVER_PI) * x * (e * r * r)) * (one + c::<T>(3.0 * GELU_K) * x * x)
        }
        SIGMOID | TANH => {
            // sigmoid' = e / (1 + e)^2 with e = exp(-|x|), tanh' = 4 e / (1 + e)^2 with
            // e = exp(-2|x|); 1 + e as 2 + expm1(.) near x = 0, where that one is exact
            let arg = if A == TANH { c::<T>(-2.0) * x.abs() } else { -x.abs() };
            let (e, m) = arg.exp_expm1_neg();
            let den = if m > c(-0.25) { m + c(2.0) } else { e + one };
            (if A == TANH { c::<T>(4.0) * e } else { e }) / (den * den)
        }
        SOFTPLUS => x.sigmoid(),
        SOFTSIGN => {
            // 1 / (1 + |x|)^2 as 1 / (1 + a (2 + a)): one rounding near 1
            let a = x.abs();
            one / (one + a * (c::<T>(2.0) + a))
        }
        SILU => {
            // s (1 + x (1 - s))
            let e = (-x.abs()).exp_neg();
            let r = one / (one + e);
            let pos = x >= zero;
            (if pos { r } else { e * r }) * (one + x * if pos { e * r } else { r })
        }
        MISH => {
            // t = tanh(softplus(x)), d = t + x sigmoid(x) (1 - t^2); with e = exp(-|x|):
            //   x >= 0: t = (1 + 2e) / D, D = 1 + 2e (1 + e), x sigmoid (1 - t^2) = 4 x e^2 (1 + e) / D^2;
            //   x < 0:  t = N / D, N = e (e + 2), D = N + 2,  x sigmoid (1 - t^2) = 4 x e (1 + e) / D^2.
            let e = (-x.abs()).exp_neg();
            let pos = x >= zero;
            let two = c::<T>(2.0);
            let n_neg = e * (e + two);
            let num = if pos { one + two * e } else { n_neg };
            let den = if pos { one + two * e * (one + e) } else { n_neg + two };
            let extra = (c::<T>(4.0) * x) * e * (one + e) * if pos { e } else { one };
            let rd = one / den;
            num * rd + extra * (rd * rd)
        }
        HARDSWISH => {
            // NaN fails both comparisons: 1, like the reference
            let mid = x / c(3.0) + c(0.5);
            if x <= c(-3.0) {
                zero
            } else if x < c(3.0) {
                mid
            } else {
                one
            }
        }
        HARDSIGMOID => {
            if x > c(-3.0) && x < c(3.0) {
                c(1.0 / 6.0)
            } else {
                zero
            }
        }
        _ => {
            if x > zero && x < c(6.0) {
                one
            } else {
                zero
            }
        }
    }
}

/// Elements per step of [`map`]: two vectors of f32, whose long dependency chains (the math
/// polynomials) then overlap.
const STEP: usize = 16;

/// out[i] = f(src[i]), STEP elements at a time.
#[inline(always)]
fn map<T: Real, F: Fn(T) -> T>(src: &[T], out: &mut [T], f: F) {
    let (mut oc, mut sc) = (out.chunks_exact_mut(STEP), src.chunks_exact(STEP));
    for (o, s) in (&mut oc).zip(&mut sc) {
        let v: [T; STEP] = std::array::from_fn(|k| f(s[k]));
        o.copy_from_slice(&v);
    }
    for (o, &s) in oc.into_remainder().iter_mut().zip(sc.remainder()) {
        *o = f(s);
    }
}

/// buf[i] = f(buf[i]), STEP elements at a time.
#[inline(always)]
fn map_in_place<T: Real, F: Fn(T) -> T>(buf: &mut [T], f: F) {
    let mut bc = buf.chunks_exact_mut(STEP);
    for b in &mut bc {
        let v: [T; STEP] = std::array::from_fn(|k| f(b[k]));
        b.copy_from_slice(&v);
    }
    for b in bc.into_remainder() {
        *b = f(*b);
    }
}

/// y = act(x) on n elements (y may be x), in parallel above C's thresholds.
///
/// # Safety
/// x and y point to n elements each, equal or not overlapping.
unsafe fn run_act<T: Real, const A: i32>(x: *const T, y: *mut T, n: usize, alpha: T) {
    let par = n > BLOCK && n >= if cheap(A) { PAR_ELEMS } else { PAR_ELEMS_MATH };
    let (xp, yp) = (SendPtr(x as *mut T), SendPtr(y));
    common::par_ranges(n, par, BLOCK, |lo, hi| {
        let (xp, yp) = (xp, yp);
        let out = slice_mut(yp.0.add(lo), hi - lo);
        if std::ptr::eq(xp.0, yp.0) {
            map_in_place(out, |v| act::<T, A>(v, alpha));
        } else {
            map(slice(xp.0.add(lo), hi - lo), out, |v| act::<T, A>(v, alpha));
        }
    });
}

/// dx = dy * act'(x) on n elements (dx may be dy or x), in parallel above C's thresholds.
///
/// # Safety
/// dy, x and dx point to n elements each; dx equals or does not overlap each of the others.
unsafe fn run_dact<T: Real, const A: i32>(dy: *const T, x: *const T, dx: *mut T, n: usize, alpha: T) {
    let par = n > BLOCK && n >= if cheap(A) { PAR_ELEMS } else { PAR_ELEMS_MATH };
    let (gp, xp, dp) = (SendPtr(dy as *mut T), SendPtr(x as *mut T), SendPtr(dx));
    common::par_ranges(n, par, BLOCK, |lo, hi| {
        let (gp, xp, dp) = (gp, xp, dp);
        let len = hi - lo;
        let out = slice_mut(dp.0.add(lo), len);
        match (std::ptr::eq(gp.0, dp.0), std::ptr::eq(xp.0, dp.0)) {
            (true, true) => out.iter_mut().for_each(|d| *d = *d * dact::<T, A>(*d, alpha)),
            (true, false) => {
                for (d, &v) in out.iter_mut().zip(slice(xp.0.add(lo), len)) {
                    *d = *d * dact::<T, A>(v, alpha);
                }
            }
            (false, true) => {
                for (d, &g) in out.iter_mut().zip(slice(gp.0.add(lo), len)) {
                    *d = g * dact::<T, A>(*d, alpha);
                }
            }
            (false, false) => {
                let (g, v) = (slice(gp.0.add(lo), len), slice(xp.0.add(lo), len));
                for ((d, &g), &v) in out.iter_mut().zip(g).zip(v) {
                    *d = g * dact::<T, A>(v, alpha);
                }
            }
        }
    });
}

/// Size, then act code, then NULL checks, like C.
fn check(ptrs: &[*const ()], n: i64, act: c_int, elem: usize) -> Result<usize, c_int> {
    let count = numel(&[n], elem).ok_or(AXIOM_ERR_SIZE)?;
    if !(0..ACT_COUNT).contains(&act) {
        return Err(AXIOM_ERR_SIZE);
    }
    if count > 0 && ptrs.iter().any(|p| p.is_null()) {
        return Err(AXIOM_ERR_NULL);
    }
    Ok(count)
}

type ActFn<T> = unsafe fn(*const T, *mut T, usize, T);
type DactFn<T> = unsafe fn(*const T, *const T, *mut T, usize, T);

unsafe fn activation<T: Real>(x: *const T, y: *mut T, n: i64, code: c_int, alpha: f64) -> c_int {
    let count = match check(&[x as *const (), y as *const ()], n, code, std::mem::size_of::<T>()) {
        Ok(count) => count,
        Err(rc) => return rc,
    };
    if std::ptr::eq(x, y) && code == IDENTITY {
        return AXIOM_OK;
    }
    let table: [ActFn<T>; 16] = [
        run_act::<T, 0>,
        run_act::<T, 1>,
        run_act::<T, 2>,
        run_act::<T, 3>,
        run_act::<T, 4>,
        run_act::<T, 5>,
        run_act::<T, 6>,
        run_act::<T, 7>,
        run_act::<T, 8>,
        run_act::<T, 9>,
        run_act::<T, 10>,
        run_act::<T, 11>,
        run_act::<T, 12>,
        run_act::<T, 13>,
        run_act::<T, 14>,
        run_act::<T, 15>,
    ];
    table[code as usize](x, y, count, T::from_f64(alpha));
    AXIOM_OK
}

unsafe fn activation_backward<T: Real>(
    dy: *const T,
    x: *const T,
    dx: *mut T,
    n: i64,
    code: c_int,
    alpha: f64,
) -> c_int {
    let ptrs = [dy as *const (), x as *const (), dx as *const ()];
    let count = match check(&ptrs, n, code, std::mem::size_of::<T>()) {
        Ok(count) => count,
        Err(rc) => return rc,
    };
    let table: [DactFn<T>; 16] = [
        run_dact::<T, 0>,
        run_dact::<T, 1>,
        run_dact::<T, 2>,
        run_dact::<T, 3>,
        run_dact::<T, 4>,
        run_dact::<T, 5>,
        run_dact::<T, 6>,
        run_dact::<T, 7>,
        run_dact::<T, 8>,
        run_dact::<T, 9>,
        run_dact::<T, 10>,
        run_dact::<T, 11>,
        run_dact::<T, 12>,
        run_dact::<T, 13>,
        run_dact::<T, 14>,
        run_dact::<T, 15>,
    ];
    table[code as usize](dy, x, dx, count, T::from_f64(alpha));
    AXIOM_OK
}

export_f32_f64! {
    /// y = act(x) element-wise for n elements (`axiom_activation_f32`); y may be x.
    ///
    /// # Safety
    /// x and y point to n elements each (equal or disjoint); NULL only when n == 0.
    axiom_activation_f32, axiom_activation_f64(x: ptr, y: mut_ptr, n: i64, act: c_int, alpha: f64) {
        abi::guard(|| activation(x, y, n, act, alpha))
    }
}

export_f32_f64! {
    /// dx = dy * act'(x) for n elements (`axiom_activation_backward_f32`); dx may be dy or x.
    ///
    /// # Safety
    /// dy, x, dx point to n elements each; dx equals or is disjoint from each; NULL only when n == 0.
    axiom_activation_backward_f32,
    axiom_activation_backward_f64(
        dy: ptr,
        x: ptr,
        dx: mut_ptr,
        n: i64,
        act: c_int,
        alpha: f64,
    ) {
        abi::guard(|| activation_backward(dy, x, dx, n, act, alpha))
    }
}
