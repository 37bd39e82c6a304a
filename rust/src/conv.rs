//! NHWC 2-D convolution (float32 / float64): forward, input gradient, weight gradient.
//! Mirrors `csrc/conv.c` and `csrc/conv_impl.h`.
//!
//! Exports (`csrc/axiom_kernels.h`): `axiom_conv2d_nhwc_*`, `axiom_conv2d_backward_input_nhwc_*`,
//! `axiom_conv2d_backward_weight_nhwc_*`. Paths, picked per shape like C's:
//!
//! - 1x1, stride 1, no padding: one GEMM (N*H*W x C_in/g) @ (C_in/g x C_out/g) per group;
//! - depthwise (C_in/g == C_out/g == 1): a direct loop over channels;
//! - otherwise an implicit-im2col GEMM: the (zero padded) image is read in place through a
//!   row table (one pointer per output pixel) and an offset table (one offset per tap), the
//!   "gather" A operand of the GEMM driver, times the weights; the bias goes in the epilogue.
//!
//! Backward: the weight gradient is the same gather GEMM with the roles swapped; the input
//! gradient is, for stride 1 and wide groups (or depthwise), a forward convolution of dy with
//! the flipped, transposed weights, else dy @ W^T per image and a col2im scatter-add.

mod backward;
mod forward;

use crate::abi::{guard, parallel_for, AXIOM_ERR_NOMEM, AXIOM_ERR_NULL, AXIOM_ERR_SIZE, AXIOM_OK};
use crate::gemm::scratch::NoMem;
use crate::gemm::simd::Elem;
use std::os::raw::c_int;
use std::sync::atomic::{AtomicBool, Ordering};

/// The shape of a convolution (`axiom_conv2d_shape`, 18 int64 fields in header order).
#[repr(C)]
#[derive(Clone, Copy, Debug, Default)]
pub struct Conv2dShape {
    pub n: i64,
    pub h: i64,
    pub w: i64,
    pub c_in: i64,
    pub c_out: i64,
    pub k_h: i64,
    pub k_w: i64,
    pub out_h: i64,
    pub out_w: i64,
    pub stride_h: i64,
    pub stride_w: i64,
    pub pad_top: i64,
    pub pad_bottom: i64,
    pub pad_left: i64,
    pub pad_right: i64,
    pub dilation_h: i64,
    pub dilation_w: i64,
    pub groups: i64,
}

/// Validated dimensions of one convolution (pads may be negative for internal calls).
#[derive(Clone, Copy, Debug)]
pub struct Dims {
    pub n: isize,
    pub h: isize,
    pub w: isize,
    pub cin: isize,
    pub cout: isize,
    pub kh: isize,
    pub kw: isize,
    pub ho: isize,
    pub wo: isize,
    pub sh: isize,
    pub sw: isize,
    pub pt: isize,
    pub pb: isize,
    pub pl: isize,
    pub pr: isize,
    pub dh: isize,
    pub dw: isize,
    pub groups: isize,
    pub cin_g: isize,
    pub cout_g: isize,
    /// kh * kw * cin_g: the GEMM reduction length.
    pub k: isize,
    /// Padded image size.
    pub hp: isize,
    pub wp: isize,
    /// Element counts of x, w, y.
    pub nx: isize,
    pub nwt: isize,
    pub ny: isize,
    /// Any pad != 0.
    pub padded: bool,
}

impl Dims {
    /// Row length of the image the taps read (padded or not).
    pub fn row_len(&self) -> isize {
        if self.padded {
            self.wp
        } else {
            self.w
        }
    }
}

/// Product of non-negative factors whose byte size (elem bytes each) fits in i64.
fn mul_ok(elem: usize, factors: &[i64]) -> Option<i64> {
    let mut v: i64 = 1;
    for &f in factors {
        if f < 0 {
            return None;
        }
        v = v.checked_mul(f)?;
    }
    v.checked_mul(elem as i64)?;
    Some(v)
}

/// Output extent of one axis (None on overflow).
fn out_extent(input: i64, p0: i64, p1: i64, k: i64, d: i64, s: i64) -> Option<i64> {
    let span = input.checked_add(p0)?.checked_add(p1)?;
    let ext = d.checked_mul(k - 1)?.checked_add(1)?;
    Some(if span < ext { 0 } else { (span - ext) / s + 1 })
}

/// Check a public shape like C's `conv_check`: the dims, or AXIOM_ERR_SIZE / AXIOM_ERR_NULL.
pub fn check(shape: *const Conv2dShape, elem: usize) -> Result<Dims, c_int> {
    // SAFETY: a non-NULL shape points to a valid struct (caller's contract)
    let Some(s) = (unsafe { shape.as_ref() }) else { return Err(AXIOM_ERR_NULL) };
    if s.n < 0
        || s.h < 0
        || s.w < 0
        || s.c_in < 0
        || s.c_out < 0
        || s.k_h < 1
        || s.k_w < 1
        || s.stride_h < 1
        || s.stride_w < 1
        || s.dilation_h < 1
        || s.dilation_w < 1
        || s.pad_top < 0
        || s.pad_bottom < 0
        || s.pad_left < 0
        || s.pad_right < 0
        || s.groups < 1
        || s.c_in % s.groups != 0
        || s.c_out % s.groups != 0
        || s.out_h < 0
        || s.out_w < 0
    {
        return Err(AXIOM_ERR_SIZE);
    }
    let eh = out_extent(s.h, s.pad_top, s.pad_bottom, s.k_h, s.dilation_h, s.stride_h);
    let ew = out_extent(s.w, s.pad_left, s.pad_right, s.k_w, s.dilation_w, s.stride_w);
    if eh != Some(s.out_h) || ew != Some(s.out_w) {
        return Err(AXIOM_ERR_SIZE);
    }
    let (cin_g, cout_g) = (s.c_in / s.groups, s.c_out / s.groups);
    let (hp, wp) = (s.h + s.pad_top + s.pad_bottom, s.w + s.pad_left + s.pad_right);
    let ptr = std::mem::size_of::<*const u8>();
    let counts = (|| {
        let nx = mul_ok(elem, &[s.n, s.h, s.w, s.c_in])?;
        let nwt = mul_ok(elem, &[s.k_h, s.k_w, cin_g, s.c_out])?;
        let ny = mul_ok(elem, &[s.n, s.out_h, s.out_w, s.c_out])?;
        mul_ok(8, &[s.k_h, s.k_w, s.c_in])?;
        mul_ok(elem, &[hp, wp, s.c_in])?;
        mul_ok(ptr, &[s.out_h, s.out_w])?;
        Some((nx, nwt, ny))
    })();
    let Some((nx, nwt, ny)) = counts else { return Err(AXIOM_ERR_SIZE) };
    let z = |v: i64| v as isize;
    Ok(Dims {
        n: z(s.n),
        h: z(s.h),
        w: z(s.w),
        cin: z(s.c_in),
        cout: z(s.c_out),
        kh: z(s.k_h),
        kw: z(s.k_w),
        ho: z(s.out_h),
        wo: z(s.out_w),
        sh: z(s.stride_h),
        sw: z(s.stride_w),
        pt: z(s.pad_top),
        pb: z(s.pad_bottom),
        pl: z(s.pad_left),
        pr: z(s.pad_right),
        dh: z(s.dilation_h),
        dw: z(s.dilation_w),
        groups: z(s.groups),
        cin_g: z(cin_g),
        cout_g: z(cout_g),
        k: z(s.k_h * s.k_w * cin_g),
        hp: z(hp),
        wp: z(wp),
        nx: z(nx),
        nwt: z(nwt),
        ny: z(ny),
        padded: s.pad_top != 0 || s.pad_bottom != 0 || s.pad_left != 0 || s.pad_right != 0,
    })
}

/// Values shared by parallel tasks (raw pointers into arrays whose parts the tasks write
/// disjointly). Read them through [`Shared::get`] so a closure captures the whole wrapper.
#[derive(Clone, Copy)]
pub struct Shared<T>(pub T);
// SAFETY: see the type's doc: every task writes its own part of the outputs.
unsafe impl<T> Sync for Shared<T> {}
unsafe impl<T> Send for Shared<T> {}

impl<T: Copy> Shared<T> {
    pub fn get(&self) -> T {
        self.0
    }
}

/// `parallel_for` over fallible tasks: Err when any task failed.
pub fn par_try<F: Fn(usize) -> Result<(), NoMem> + Sync>(tasks: usize, body: F) -> Result<(), NoMem> {
    let failed = AtomicBool::new(false);
    parallel_for(tasks, |t| {
        if body(t).is_err() {
            failed.store(true, Ordering::Relaxed);
        }
    });
    if failed.load(Ordering::Relaxed) {
        Err(NoMem)
    } else {
        Ok(())
    }
}

fn code(r: Result<(), NoMem>) -> c_int {
    match r {
        Ok(()) => AXIOM_OK,
        Err(NoMem) => AXIOM_ERR_NOMEM,
    }
}

unsafe fn conv_forward<T: Elem>(
    shape: *const Conv2dShape,
    x: *const T,
    w: *const T,
    bias: *const T,
    y: *mut T,
) -> c_int {
    let d = match check(shape, std::mem::size_of::<T>()) {
        Ok(d) => d,
        Err(rc) => return rc,
    };
    if (d.nx > 0 && x.is_null()) || (d.nwt > 0 && w.is_null()) || (d.ny > 0 && y.is_null()) {
        return AXIOM_ERR_NULL;
    }
    code(forward::forward(&d, x, w, bias, y))
}

unsafe fn conv_backward_input<T: Elem>(shape: *const Conv2dShape, dy: *const T, w: *const T, dx: *mut T) -> c_int {
    let d = match check(shape, std::mem::size_of::<T>()) {
        Ok(d) => d,
        Err(rc) => return rc,
    };
    if (d.ny > 0 && dy.is_null()) || (d.nwt > 0 && w.is_null()) || (d.nx > 0 && dx.is_null()) {
        return AXIOM_ERR_NULL;
    }
    code(backward::input(&d, dy, w, dx))
}

unsafe fn conv_backward_weight<T: Elem>(
    shape: *const Conv2dShape,
    x: *const T,
    dy: *const T,
    dw: *mut T,
    dbias: *mut T,
) -> c_int {
    let d = match check(shape, std::mem::size_of::<T>()) {
        Ok(d) => d,
        Err(rc) => return rc,
    };
    if (d.nx > 0 && x.is_null()) || (d.ny > 0 && dy.is_null()) || (d.nwt > 0 && dw.is_null()) {
        return AXIOM_ERR_NULL;
    }
    code(backward::weight(&d, x, dy, dw, dbias))
}

/// y = conv2d(x, w) + bias (NHWC, cross-correlation, zero padding); bias may be NULL.
///
/// # Safety
/// `shape` is NULL or valid; non-NULL arrays hold as many elements as the shape says.
#[no_mangle]
pub unsafe extern "C" fn axiom_conv2d_nhwc_f32(
    shape: *const Conv2dShape,
    x: *const f32,
    w: *const f32,
    bias: *const f32,
    y: *mut f32,
) -> c_int {
    guard(|| conv_forward(shape, x, w, bias, y))
}

/// As [`axiom_conv2d_nhwc_f32`] for float64.
///
/// # Safety
/// As for [`axiom_conv2d_nhwc_f32`].
#[no_mangle]
pub unsafe extern "C" fn axiom_conv2d_nhwc_f64(
    shape: *const Conv2dShape,
    x: *const f64,
    w: *const f64,
    bias: *const f64,
    y: *mut f64,
) -> c_int {
    guard(|| conv_forward(shape, x, w, bias, y))
}

/// dx = gradient of sum(dy * conv2d(x, w)) with respect to x.
///
/// # Safety
/// As for [`axiom_conv2d_nhwc_f32`].
#[no_mangle]
pub unsafe extern "C" fn axiom_conv2d_backward_input_nhwc_f32(
    shape: *const Conv2dShape,
    dy: *const f32,
    w: *const f32,
    dx: *mut f32,
) -> c_int {
    guard(|| conv_backward_input(shape, dy, w, dx))
}

/// As [`axiom_conv2d_backward_input_nhwc_f32`] for float64.
///
/// # Safety
/// As for [`axiom_conv2d_nhwc_f32`].
#[no_mangle]
pub unsafe extern "C" fn axiom_conv2d_backward_input_nhwc_f64(
    shape: *const Conv2dShape,
    dy: *const f64,
    w: *const f64,
    dx: *mut f64,
) -> c_int {
    guard(|| conv_backward_input(shape, dy, w, dx))
}

/// dw = gradient with respect to w; dbias (when not NULL) = sum of dy over n, out_h, out_w.
///
/// # Safety
/// As for [`axiom_conv2d_nhwc_f32`].
#[no_mangle]
pub unsafe extern "C" fn axiom_conv2d_backward_weight_nhwc_f32(
    shape: *const Conv2dShape,
    x: *const f32,
    dy: *const f32,
    dw: *mut f32,
    dbias: *mut f32,
) -> c_int {
    guard(|| conv_backward_weight(shape, x, dy, dw, dbias))
}

/// As [`axiom_conv2d_backward_weight_nhwc_f32`] for float64.
///
/// # Safety
/// As for [`axiom_conv2d_nhwc_f32`].
#[no_mangle]
pub unsafe extern "C" fn axiom_conv2d_backward_weight_nhwc_f64(
    shape: *const Conv2dShape,
    x: *const f64,
    dy: *const f64,
    dw: *mut f64,
    dbias: *mut f64,
) -> c_int {
    guard(|| conv_backward_weight(shape, x, dy, dw, dbias))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn shape() -> Conv2dShape {
        Conv2dShape {
            n: 1,
            h: 4,
            w: 4,
            c_in: 2,
            c_out: 2,
            k_h: 3,
            k_w: 3,
            out_h: 4,
            out_w: 4,
            stride_h: 1,
            stride_w: 1,
            pad_top: 1,
            pad_bottom: 1,
            pad_left: 1,
            pad_right: 1,
            dilation_h: 1,
            dilation_w: 1,
            groups: 1,
        }
    }

    #[test]
    fn check_rejects_bad_shapes() {
        assert!(check(&shape(), 4).is_ok());
        assert_eq!(check(std::ptr::null(), 4).err(), Some(AXIOM_ERR_NULL));
        let bad: [fn(&mut Conv2dShape); 6] = [
            |s| s.out_h = 3,           // wrong output size
            |s| s.groups = 3,          // groups not dividing the channels
            |s| s.n = -1,              // negative size
            |s| s.stride_w = 0,        // stride < 1
            |s| s.pad_left = -1,       // negative pad
            |s| s.c_in = i64::MAX / 2, // overflowing element count
        ];
        for f in bad {
            let mut s = shape();
            f(&mut s);
            assert_eq!(check(&s, 4).err(), Some(AXIOM_ERR_SIZE), "{s:?}");
        }
    }

    #[test]
    fn conv_checks_sizes_then_null_and_writes_nothing() {
        let x = [1.0f32; 32];
        let w = [1.0f32; 36];
        let mut y = [5.0f32; 32];
        let mut s = shape();
        unsafe {
            assert_eq!(
                axiom_conv2d_nhwc_f32(std::ptr::null(), x.as_ptr(), w.as_ptr(), std::ptr::null(), y.as_mut_ptr()),
                AXIOM_ERR_NULL
            );
            assert_eq!(
                axiom_conv2d_nhwc_f32(&s, std::ptr::null(), w.as_ptr(), std::ptr::null(), y.as_mut_ptr()),
                AXIOM_ERR_NULL
            );
            s.out_w = 5;
            assert_eq!(
                axiom_conv2d_nhwc_f32(&s, std::ptr::null(), w.as_ptr(), std::ptr::null(), y.as_mut_ptr()),
                AXIOM_ERR_SIZE
            );
            assert_eq!(
                axiom_conv2d_backward_input_nhwc_f32(&s, x.as_ptr(), w.as_ptr(), y.as_mut_ptr()),
                AXIOM_ERR_SIZE
            );
        }
        assert!(y.iter().all(|&v| v == 5.0));
        s = shape();
        unsafe {
            assert_eq!(axiom_conv2d_nhwc_f32(&s, x.as_ptr(), w.as_ptr(), std::ptr::null(), y.as_mut_ptr()), AXIOM_OK);
        }
        // a corner pixel sees 2 x 2 taps of 2 channels, all ones
        assert_eq!(y[0], 8.0);
        assert_eq!(y[5 * 2], 18.0);
    }
}
