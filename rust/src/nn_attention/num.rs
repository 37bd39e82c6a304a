//! The element types of the attention kernels and the scalar math they need (mirrors the parts
//! of `csrc/nn_simd.h` and `csrc/nn_common.h` that attention uses).
//!
//! Everything is branch-free scalar code on `Copy` values, so the fixed-size lane loops of the
//! tiles (`[T; W]`) vectorise: float32 gets `nn_exp_neg`'s polynomial, float64 libm `exp`.

use std::ops::{Add, Div, Mul, Neg, Sub};

/// `float` and `double` as the attention kernels use them.
pub(crate) trait Real:
    Copy
    + Send
    + Sync
    + PartialOrd
    + Add<Output = Self>
    + Sub<Output = Self>
    + Mul<Output = Self>
    + Div<Output = Self>
    + Neg<Output = Self>
    + 'static
{
    const ZERO: Self;
    const ONE: Self;
    const NEG_INF: Self;
    const NAN: Self;
    /// Rows of a register tile: 6 x 16 float32 (12 AVX registers) or 3 x 16 float64 (12 too).
    const TILE_ROWS: usize;
    fn from_f64(x: f64) -> Self;
    fn to_f64(self) -> f64;
    /// `a * b + c`, fused when the target has FMA (one rounding, like gcc's `-ffp-contract=fast`).
    fn madd(a: Self, b: Self, c: Self) -> Self;
    /// e^x for x <= 0 or NaN (softmax after subtracting the row maximum): exp(-inf) = 0.
    fn exp_neg(self) -> Self;
}

impl Real for f32 {
    const ZERO: Self = 0.0;
    const ONE: Self = 1.0;
    const NEG_INF: Self = f32::NEG_INFINITY;
    const NAN: Self = f32::NAN;
    const TILE_ROWS: usize = 6;
    #[inline(always)]
    fn from_f64(x: f64) -> Self {
        x as f32
    }
    #[inline(always)]
    fn to_f64(self) -> f64 {
        self as f64
    }
    #[inline(always)]
    fn madd(a: Self, b: Self, c: Self) -> Self {
        if cfg!(target_feature = "fma") {
            a.mul_add(b, c)
        } else {
            a * b + c
        }
    }
    #[inline(always)]
    fn exp_neg(self) -> Self {
        exp_neg_f32(self)
    }
}

impl Real for f64 {
    const ZERO: Self = 0.0;
    const ONE: Self = 1.0;
    const NEG_INF: Self = f64::NEG_INFINITY;
    const NAN: Self = f64::NAN;
    const TILE_ROWS: usize = 3;
    #[inline(always)]
    fn from_f64(x: f64) -> Self {
        x
    }
    #[inline(always)]
    fn to_f64(self) -> f64 {
        self
    }
    #[inline(always)]
    fn madd(a: Self, b: Self, c: Self) -> Self {
        if cfg!(target_feature = "fma") {
            a.mul_add(b, c)
        } else {
            a * b + c
        }
    }
    #[inline(always)]
    fn exp_neg(self) -> Self {
        self.exp()
    }
}

/// `nn_exp_neg` of `csrc/nn_simd.h`: x = n ln2 + r (|r| <= ln2/2), e^r by a degree-6
/// polynomial, times 2**n built in the exponent bits. Flushes below ~-87.5 to 0 (n = -127 gives
/// the bits of 0), so exp(-inf) = 0; NaN stays NaN (the comparison below keeps it).
#[inline(always)]
fn exp_neg_f32(x: f32) -> f32 {
    const LOG2E: f32 = 1.44269504088896341;
    const LN2_HI: f32 = 0.693359375;
    const LN2_LO: f32 = -2.12194440e-4;
    const MAGIC: f32 = 12_582_912.0; // 1.5 * 2**23: adding it rounds to an integer
    let x = if -88.0 > x { -88.0 } else { x };
    let t = f32::madd(x, LOG2E, MAGIC);
    let n = t - MAGIC;
    let ni = (t.to_bits() as i32).wrapping_sub(MAGIC.to_bits() as i32);
    let r = f32::madd(-n, LN2_HI, x);
    let r = f32::madd(-n, LN2_LO, r);
    let mut p: f32 = 0.0013814531266689301;
    p = f32::madd(p, r, 0.0083687128499150276);
    p = f32::madd(p, r, 0.041668388992547989);
    p = f32::madd(p, r, 0.16666521131992340);
    p = f32::madd(p, r, 0.49999994039535522);
    let expm1 = f32::madd(p, r * r, r);
    (expm1 + 1.0) * f32::from_bits(ni.wrapping_add(127).wrapping_shl(23) as u32)
}

pub(crate) use crate::abi::nn_numel;

/// C's `nn_strided_span_ok`: strides >= 0 and the furthest element of the 4-D strided view
/// (extents `ext`) addressable in i64 bytes of `elem`-sized items.
pub(crate) fn strided_span_ok(ext: [i64; 4], strides: [i64; 4], elem: usize) -> bool {
    let mut span: i64 = 0;
    for a in 0..4 {
        if strides[a] < 0 {
            return false;
        }
        if ext[a] > 0 {
            match (ext[a] - 1).checked_mul(strides[a]).and_then(|t| span.checked_add(t)) {
                Some(s) => span = s,
                None => return false,
            }
        }
    }
    span <= i64::MAX / elem as i64
}

/// `len` elements at `p` as a slice; empty for len 0, where `p` may be NULL (an array without
/// elements), which `slice::from_raw_parts` does not allow.
///
/// # Safety
/// For len > 0, `p` must be valid for `len` reads for the lifetime `'a`.
pub(crate) unsafe fn slice<'a, T>(p: *const T, len: usize) -> &'a [T] {
    if len == 0 {
        &[]
    } else {
        std::slice::from_raw_parts(p, len)
    }
}

/// [`slice`], mutable.
///
/// # Safety
/// For len > 0, `p` must be valid for `len` writes for `'a`, and not otherwise accessed.
pub(crate) unsafe fn slice_mut<'a, T>(p: *mut T, len: usize) -> &'a mut [T] {
    if len == 0 {
        &mut []
    } else {
        std::slice::from_raw_parts_mut(p, len)
    }
}

/// A zero-filled scratch vector, or None when the allocation fails (-> AXIOM_ERR_NOMEM).
pub(crate) fn scratch<T: Clone>(n: usize, zero: T) -> Option<Vec<T>> {
    let mut v = Vec::new();
    v.try_reserve_exact(n).ok()?;
    v.resize(n, zero);
    Some(v)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn exp_neg_matches_libm() {
        for i in 0..2000 {
            let x = -90.0 + i as f32 * 0.045;
            let want = (x as f64).exp();
            let got = exp_neg_f32(x) as f64;
            assert!((got - want).abs() <= 4e-7 * want + 1e-38, "{x}: {got} vs {want}");
        }
        assert_eq!(exp_neg_f32(f32::NEG_INFINITY), 0.0);
        assert!(exp_neg_f32(f32::NAN).is_nan());
    }

    #[test]
    fn numel_like_c() {
        assert_eq!(nn_numel(&[2, 3], 4), Some(6));
        assert_eq!(nn_numel(&[0, i64::MAX], 8), None);
        assert_eq!(nn_numel(&[0, 5], 8), Some(0));
        assert_eq!(nn_numel(&[-1, 0], 8), None);
    }
}
