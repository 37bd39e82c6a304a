//! The element types of the NN kernels (`f32`, `f64`) behind one trait, [`Real`], with the
//! math the norm, pooling, softmax and activation kernels need.
//!
//! Mirrors `csrc/nn_simd.h`: float32 uses the same branch-free polynomials as the C vector
//! code (so every loop over them auto-vectorises to AVX2 + FMA, and results match C's
//! accuracy: exp, expm1, tanh, sigmoid, log1p within a few ulp, 1 + erf within 1e-7
//! absolute, results below ~2**-125 flushed to zero); float64 uses libm through std like C's
//! float64 kernels, plus erf / erfc (not in std) ported from Sun's fdlibm `s_erf.c`.
//! IEEE special values behave like libm: NaN in -> NaN out, exp(-inf) = 0, tanh(+-inf) = +-1.

// The float32 coefficients are C's literals digit for digit (the same values as nn_simd.h).
#![allow(clippy::excessive_precision)]

use std::ops::{Add, AddAssign, Div, Mul, Neg, Sub};

/// `f32` or `f64`: arithmetic, conversions and the math of the NN kernels.
pub(crate) trait Real:
    Copy
    + Default
    + Send
    + Sync
    + PartialOrd
    + Add<Output = Self>
    + Sub<Output = Self>
    + Mul<Output = Self>
    + Div<Output = Self>
    + Neg<Output = Self>
    + AddAssign
    + 'static
{
    const ZERO: Self;
    const ONE: Self;
    const NEG_INF: Self;
    const NAN: Self;
    /// Batch norm may use `x * scale + shift` (one FMA, like C's float32 kernel) instead of
    /// `(x - mean) * scale + beta` (C's float64 kernel) when every parameter is finite.
    const BN_SHIFT: bool;

    fn from_f64(v: f64) -> Self;
    fn to_f64(self) -> f64;
    fn from_i64(v: i64) -> Self;
    fn abs(self) -> Self;
    fn is_finite(self) -> bool;
    /// `self * a + b`, fused where the CPU has FMA (C compiles with -ffp-contract=fast).
    fn fma(self, a: Self, b: Self) -> Self;
    /// Natural logarithm (libm).
    fn ln(self) -> Self;
    /// e^x over the whole range.
    fn exp(self) -> Self;
    /// e^x for x <= 0 or NaN (float32: exactly 0 below about -87.5).
    fn exp_neg(self) -> Self;
    /// e^x - 1 for x <= 0 or NaN.
    fn expm1_neg(self) -> Self;
    /// (e^x, e^x - 1) for x <= 0 or NaN, from one range reduction in float32.
    fn exp_expm1_neg(self) -> (Self, Self);
    fn tanh(self) -> Self;
    /// log(1 + t) for t in [0, 1] or NaN.
    fn log1p01(self) -> Self;
    /// 1 + erf(z) without cancellation for z < 0 (float64: erfc(-z)).
    fn one_plus_erf(self) -> Self;
    /// 0.5 x (1 + erf(x / sqrt 2)) as C evaluates it for this type.
    fn gelu(self) -> Self;
    /// 0.5 x (1 + tanh(sqrt(2 / pi) (x + 0.044715 x^3))) as C evaluates it for this type.
    fn gelu_tanh(self) -> Self;

    /// 1 / (1 + e^-x), two-sided so exp never overflows.
    #[inline(always)]
    fn sigmoid(self) -> Self {
        let e = (-self.abs()).exp_neg();
        let num = if self >= Self::ZERO { Self::ONE } else { e };
        num / (e + Self::ONE)
    }

    /// softplus(x) = max(x, 0) + log1p(exp(-|x|)).
    #[inline(always)]
    fn softplus(self) -> Self {
        let pos = if self > Self::ZERO { self } else { Self::ZERO };
        pos + (-self.abs()).exp_neg().log1p01()
    }

    /// NaN test (`x != x`).
    #[inline(always)]
    #[allow(clippy::eq_op)]
    fn is_nan(self) -> bool {
        self != self
    }

    /// a > b ? a : b (b when either is NaN): maxps, for accumulators held in registers.
    #[inline(always)]
    fn max_fast(self, b: Self) -> Self {
        if self > b {
            self
        } else {
            b
        }
    }

    /// IEEE maxNum (the other operand when one is NaN): a maximum that loses NaN, for loops
    /// whose NaN shows up elsewhere. A real min/max operation, so loops over it vectorise to
    /// vmaxps (a select written as `if a > b` may become a masked store into the accumulator).
    fn max_num(self, b: Self) -> Self;

    /// Maximum that propagates a NaN `self` (`(a > b || a != a) ? a : b`).
    #[inline(always)]
    fn max_nan(self, b: Self) -> Self {
        if self > b || self.is_nan() {
            self
        } else {
            b
        }
    }

    /// Minimum that propagates a NaN `self` (`(a < b || a != a) ? a : b`).
    #[inline(always)]
    fn min_nan(self, b: Self) -> Self {
        if self < b || self.is_nan() {
            self
        } else {
            b
        }
    }

    /// Clamp to [lo, hi]; NaN stays NaN (numpy.clip).
    #[inline(always)]
    fn clamp_nan(self, lo: Self, hi: Self) -> Self {
        let t = if lo > self { lo } else { self };
        if hi < t {
            hi
        } else {
            t
        }
    }
}

// ---- float32: the polynomials of csrc/nn_simd.h -------------------------------------------

/// exp(r) - 1 - r = r^2 P(r) for |r| <= ln2/2
const EXP_C2: f32 = 0.49999994039535522;
const EXP_C3: f32 = 0.16666521131992340;
const EXP_C4: f32 = 0.041668388992547989;
const EXP_C5: f32 = 0.0083687128499150276;
const EXP_C6: f32 = 0.0013814531266689301;
const LOG2E: f32 = std::f32::consts::LOG2_E;
const LN2_HI: f32 = 0.693359375;
const LN2_LO: f32 = -2.12194440e-4;
/// 1.5 * 2**23: adding it rounds to an integer
const ROUND_MAGIC: f32 = 12_582_912.0;

/// expm1(r) for |r| <= ln2/2
#[inline(always)]
fn expm1_red(r: f32) -> f32 {
    let p = EXP_C6.mul_add(r, EXP_C5).mul_add(r, EXP_C4).mul_add(r, EXP_C3).mul_add(r, EXP_C2);
    p.mul_add(r * r, r)
}

/// x = n ln2 + r with |r| <= ln2/2: (r, n)
#[inline(always)]
fn exp_reduce(x: f32) -> (f32, i32) {
    let t = x.mul_add(LOG2E, ROUND_MAGIC);
    let n = t - ROUND_MAGIC;
    let ni = (t.to_bits() as i32).wrapping_sub(ROUND_MAGIC.to_bits() as i32);
    let r = (-n).mul_add(LN2_HI, x);
    ((-n).mul_add(LN2_LO, r), ni)
}

/// 2**(n - bias + 127) as a float from its exponent bits (0 when that is below the normals)
#[inline(always)]
fn pow2_bits(n: i32, bias: i32) -> f32 {
    f32::from_bits((n.wrapping_add(bias) << 23) as u32)
}

#[inline(always)]
fn exp_f32(x: f32) -> f32 {
    let x = x.clamp_nan(-87.6, 88.76); // n in [-126, 128]
    let (r, n) = exp_reduce(x);
    let p = expm1_red(r) + 1.0;
    (p + p) * pow2_bits(n, 126) // 2**(n-1), a normal float or 0
}

#[inline(always)]
fn exp_neg_f32(x: f32) -> f32 {
    let x = if -88.0 > x { -88.0 } else { x }; // n >= -127; n = -127 gives exactly 0
    let (r, n) = exp_reduce(x);
    (expm1_red(r) + 1.0) * pow2_bits(n, 127)
}

#[inline(always)]
fn exp_expm1_neg_f32(x: f32) -> (f32, f32) {
    let x = x.clamp_nan(-88.0, 0.0);
    let (r, n) = exp_reduce(x);
    let q = expm1_red(r);
    let s = pow2_bits(n, 127); // 2**n, n in [-127, 0]
    (s.mul_add(q, s), s.mul_add(q, s - 1.0))
}

#[inline(always)]
fn expm1_neg_f32(x: f32) -> f32 {
    let x = x.clamp_nan(-87.6, 0.0);
    let (r, n) = exp_reduce(x);
    let s = pow2_bits(n, 127); // 2**n, n in [-126, 0]
    s.mul_add(expm1_red(r), s - 1.0)
}

/// tanh via expm1 of -2|x|: accurate for small and large |x| alike
#[inline(always)]
fn tanh_f32(x: f32) -> f32 {
    let em = expm1_neg_f32(-2.0 * x.abs());
    (-em / (em + 2.0)).copysign(x)
}

/// log(1 + t) for t in [0, 1] (and NaN): log(u) + (t - (u - 1)) / u with u = 1 + t
#[inline(always)]
fn log1p01_f32(t: f32) -> f32 {
    let u = t + 1.0;
    // u = m * 2**k with m in [sqrt(1/2), sqrt(2))
    let bits = u.to_bits() as i32;
    let k = bits.wrapping_sub(0x3f35_04f3) >> 23;
    let m = f32::from_bits(bits.wrapping_sub(k << 23) as u32);
    let f = m - 1.0;
    let s = f / (f + 2.0);
    let s2 = s * s;
    let p = 0.23581886291503906_f32
        .mul_add(s2, 0.28537327051162720)
        .mul_add(s2, 0.40000334382057190)
        .mul_add(s2, 0.66666662693023682);
    let kf = k as f32;
    let logm = (s * s2).mul_add(p, s + s);
    let c = (t - (u - 1.0)) / u;
    kf.mul_add(LN2_HI, logm + kf.mul_add(LN2_LO, c))
}

/// 1 + erf(z) = 2 - erfc(|z|) or erfc(|z|) with erfc(a) = exp(-(a + a Q(a))) on [0, 4] and 0
/// past 4 (erfc(4) = 1.5e-8), so 1 + erf(-inf) is exactly 0.
#[inline(always)]
fn one_plus_erf_f32(z: f32) -> f32 {
    let a0 = z.abs();
    let a = a0.clamp_nan(0.0, 4.0);
    let q = 3.1438699807040393e-05_f32
        .mul_add(a, -0.00030879015685059130)
        .mul_add(a, 0.0010323628084734082)
        .mul_add(a, 0.00053699611453339458)
        .mul_add(a, -0.019584015011787415)
        .mul_add(a, 0.10291963815689087)
        .mul_add(a, 0.63659775257110596)
        .mul_add(a, 0.12838025391101837);
    let e = exp_neg_f32(-q.mul_add(a, a));
    let e = if a0 > 4.0 { 0.0 } else { e };
    if z >= 0.0 {
        2.0 - e
    } else {
        e
    }
}

const SQRT_HALF: f64 = std::f64::consts::FRAC_1_SQRT_2;
const SQRT_2_OVER_PI: f64 = 0.797_884_560_802_865_4;
const GELU_K: f64 = 0.044715;

impl Real for f32 {
    const ZERO: f32 = 0.0;
    const ONE: f32 = 1.0;
    const NEG_INF: f32 = f32::NEG_INFINITY;
    const NAN: f32 = f32::NAN;
    const BN_SHIFT: bool = true;

    #[inline(always)]
    fn from_f64(v: f64) -> f32 {
        v as f32
    }
    #[inline(always)]
    fn to_f64(self) -> f64 {
        self as f64
    }
    #[inline(always)]
    fn from_i64(v: i64) -> f32 {
        v as f32
    }
    #[inline(always)]
    fn abs(self) -> f32 {
        f32::abs(self)
    }
    #[inline(always)]
    fn is_finite(self) -> bool {
        f32::is_finite(self)
    }
    #[inline(always)]
    fn max_num(self, b: f32) -> f32 {
        f32::max(self, b)
    }
    #[inline(always)]
    fn fma(self, a: f32, b: f32) -> f32 {
        self.mul_add(a, b)
    }
    #[inline(always)]
    fn ln(self) -> f32 {
        f32::ln(self)
    }
    #[inline(always)]
    fn exp(self) -> f32 {
        exp_f32(self)
    }
    #[inline(always)]
    fn exp_neg(self) -> f32 {
        exp_neg_f32(self)
    }
    #[inline(always)]
    fn expm1_neg(self) -> f32 {
        expm1_neg_f32(self)
    }
    #[inline(always)]
    fn exp_expm1_neg(self) -> (f32, f32) {
        exp_expm1_neg_f32(self)
    }
    #[inline(always)]
    fn tanh(self) -> f32 {
        tanh_f32(self)
    }
    #[inline(always)]
    fn log1p01(self) -> f32 {
        log1p01_f32(self)
    }
    #[inline(always)]
    fn one_plus_erf(self) -> f32 {
        one_plus_erf_f32(self)
    }
    #[inline(always)]
    fn gelu(self) -> f32 {
        0.5 * self * one_plus_erf_f32(self * SQRT_HALF as f32)
    }
    /// 0.5 x (1 + tanh(u)) = x sigmoid(2 u): no cancellation
    #[inline(always)]
    fn gelu_tanh(self) -> f32 {
        let x = self;
        x * ((2.0 * SQRT_2_OVER_PI) as f32 * (GELU_K as f32).mul_add(x * x * x, x)).sigmoid()
    }
}

// ---- float64: libm through std, erf / erfc from fdlibm --------------------------------------

impl Real for f64 {
    const ZERO: f64 = 0.0;
    const ONE: f64 = 1.0;
    const NEG_INF: f64 = f64::NEG_INFINITY;
    const NAN: f64 = f64::NAN;
    const BN_SHIFT: bool = false;

    #[inline(always)]
    fn from_f64(v: f64) -> f64 {
        v
    }
    #[inline(always)]
    fn to_f64(self) -> f64 {
        self
    }
    #[inline(always)]
    fn from_i64(v: i64) -> f64 {
        v as f64
    }
    #[inline(always)]
    fn abs(self) -> f64 {
        f64::abs(self)
    }
    #[inline(always)]
    fn is_finite(self) -> bool {
        f64::is_finite(self)
    }
    #[inline(always)]
    fn max_num(self, b: f64) -> f64 {
        f64::max(self, b)
    }
    #[inline(always)]
    fn fma(self, a: f64, b: f64) -> f64 {
        self.mul_add(a, b)
    }
    #[inline(always)]
    fn ln(self) -> f64 {
        f64::ln(self)
    }
    #[inline(always)]
    fn exp(self) -> f64 {
        f64::exp(self)
    }
    #[inline(always)]
    fn exp_neg(self) -> f64 {
        f64::exp(self)
    }
    #[inline(always)]
    fn expm1_neg(self) -> f64 {
        f64::exp_m1(self)
    }
    #[inline(always)]
    fn exp_expm1_neg(self) -> (f64, f64) {
        (f64::exp(self), f64::exp_m1(self))
    }
    #[inline(always)]
    fn tanh(self) -> f64 {
        f64::tanh(self)
    }
    #[inline(always)]
    fn log1p01(self) -> f64 {
        f64::ln_1p(self)
    }
    #[inline(always)]
    fn one_plus_erf(self) -> f64 {
        erfc(-self)
    }
    #[inline(always)]
    fn gelu(self) -> f64 {
        0.5 * self * (1.0 + erf(self / std::f64::consts::SQRT_2))
    }
    #[inline(always)]
    fn gelu_tanh(self) -> f64 {
        let v = self;
        0.5 * v * (1.0 + f64::tanh(SQRT_2_OVER_PI * (v + GELU_K * (v * v * v))))
    }
}

// erf and erfc of Sun's fdlibm s_erf.c (FreeBSD msun, musl, Go): within 1 ulp.
const ERX: f64 = 8.450_629_115_104_675_292_97e-01;
const EFX: f64 = 1.283_791_670_955_125_863_16e-01;
const PP: [f64; 5] = [
    1.283_791_670_955_125_585_61e-01,
    -3.250_421_072_470_014_993_70e-01,
    -2.848_174_957_559_851_047_66e-02,
    -5.770_270_296_489_441_591_57e-03,
    -2.376_301_665_665_016_260_84e-05,
];
const QQ: [f64; 5] = [
    3.979_172_239_591_553_528_19e-01,
    6.502_224_998_876_729_444_85e-02,
    5.081_306_281_875_765_627_76e-03,
    1.324_947_380_043_216_445_26e-04,
    -3.960_228_278_775_368_123_20e-06,
];
const PA: [f64; 7] = [
    -2.362_118_560_752_659_440_77e-03,
    4.148_561_186_837_483_316_66e-01,
    -3.722_078_760_357_013_238_47e-01,
    3.183_466_199_011_617_536_74e-01,
    -1.108_946_942_823_966_774_76e-01,
    3.547_830_432_561_823_593_71e-02,
    -2.166_375_594_868_790_843_00e-03,
];
const QA: [f64; 6] = [
    1.064_208_804_008_442_282_86e-01,
    5.403_979_177_021_710_489_37e-01,
    7.182_865_441_419_626_628_68e-02,
    1.261_712_198_087_616_421_12e-01,
    1.363_708_391_202_905_073_62e-02,
    1.198_449_984_679_910_741_70e-02,
];
const RA: [f64; 8] = [
    -9.864_944_034_847_148_227_05e-03,
    -6.938_585_727_071_817_643_72e-01,
    -1.055_862_622_532_329_098_14e+01,
    -6.237_533_245_032_600_603_96e+01,
    -1.623_966_694_625_734_703_55e+02,
    -1.846_050_929_067_110_359_94e+02,
    -8.128_743_550_630_659_342_46e+01,
    -9.814_329_344_169_145_485_92e+00,
];
const SA: [f64; 8] = [
    1.965_127_166_743_925_712_92e+01,
    1.376_577_541_435_190_426_00e+02,
    4.345_658_774_752_292_288_21e+02,
    6.453_872_717_332_678_803_36e+02,
    4.290_081_400_275_678_333_86e+02,
    1.086_350_055_417_794_351_34e+02,
    6.570_249_770_319_281_701_35e+00,
    -6.042_441_521_485_809_874_38e-02,
];
const RB: [f64; 7] = [
    -9.864_942_924_700_099_285_97e-03,
    -7.992_832_376_805_230_065_74e-01,
    -1.775_795_491_775_475_198_89e+01,
    -1.606_363_848_558_219_160_62e+02,
    -6.375_664_433_683_896_277_22e+02,
    -1.025_095_131_611_077_249_54e+03,
    -4.835_191_916_086_513_970_19e+02,
];
const SB: [f64; 7] = [
    3.033_806_074_348_245_829_24e+01,
    3.257_925_129_965_739_188_26e+02,
    1.536_729_586_084_436_959_94e+03,
    3.199_858_219_508_595_539_08e+03,
    2.553_050_406_433_164_425_83e+03,
    4.745_285_412_069_553_672_15e+02,
    -2.244_095_244_658_581_833_62e+01,
];

/// c[0] + s c[1] + s^2 c[2] + ... (Horner)
#[inline(always)]
fn poly(s: f64, c: &[f64]) -> f64 {
    c.iter().rev().fold(0.0, |acc, &k| acc * s + k)
}

/// 1 + s q[0] + s^2 q[1] + ...
#[inline(always)]
fn poly1(s: f64, q: &[f64]) -> f64 {
    1.0 + s * poly(s, q)
}

/// (erf(x) - x) / x for |x| < 0.84375
fn erf_small_ratio(x: f64) -> f64 {
    let z = x * x;
    poly(z, &PP) / poly1(z, &QQ)
}

/// erf(1 + s) - ERX for |x| in [0.84375, 1.25), s = |x| - 1
fn erf_mid(ax: f64) -> f64 {
    let s = ax - 1.0;
    poly(s, &PA) / poly1(s, &QA)
}

/// erfc(a) for a in [1.25, 28): exp(-a^2 - 0.5625 + R/S) / a
fn erfc_tail(a: f64) -> f64 {
    let s = 1.0 / (a * a);
    let rs = if a < 1.0 / 0.35 { poly(s, &RA) / poly1(s, &SA) } else { poly(s, &RB) / poly1(s, &SB) };
    // -a^2 = -z^2 + (z - a)(z + a) with z = a rounded to 20 bits: exp(-z^2) exact enough
    let z = f64::from_bits(a.to_bits() & 0xffff_ffff_0000_0000);
    f64::exp(-z * z - 0.5625) * f64::exp((z - a) * (z + a) + rs) / a
}

/// The error function (fdlibm `erf`).
pub(crate) fn erf(x: f64) -> f64 {
    if x.is_nan() {
        return x;
    }
    let a = x.abs();
    let r = if a < 0.84375 {
        if a < 1.0 / (1u64 << 28) as f64 {
            a + EFX * a
        } else {
            a + a * erf_small_ratio(a)
        }
    } else if a < 1.25 {
        ERX + erf_mid(a)
    } else if a >= 6.0 {
        1.0
    } else {
        1.0 - erfc_tail(a)
    };
    r.copysign(x)
}

/// The complementary error function 1 - erf(x) (fdlibm `erfc`).
pub(crate) fn erfc(x: f64) -> f64 {
    if x.is_nan() {
        return x;
    }
    let neg = x < 0.0;
    let a = x.abs();
    if a < 0.84375 {
        let t = if a < 1.0 / (1u64 << 56) as f64 {
            a
        } else if a < 0.25 {
            a + a * erf_small_ratio(a)
        } else {
            0.5 + (a * erf_small_ratio(a) + (a - 0.5))
        };
        return if neg { 1.0 + t } else { 1.0 - t };
    }
    if a < 1.25 {
        let p = erf_mid(a);
        return if neg { 1.0 + ERX + p } else { 1.0 - ERX - p };
    }
    if a < 28.0 && !(neg && a > 6.0) {
        let r = erfc_tail(a);
        return if neg { 2.0 - r } else { r };
    }
    if neg {
        2.0
    } else {
        0.0
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn erf_matches_known_values() {
        let cases = [
            (0.0, 0.0),
            (0.5, 0.520_499_877_813_046_5),
            (1.0, 0.842_700_792_949_714_9),
            (2.0, 0.995_322_265_018_952_7),
            (3.5, 0.999_999_256_901_627_7),
        ];
        for (x, e) in cases {
            assert!((erf(x) - e).abs() <= 2e-16, "erf({x})");
            assert!((erf(-x) + e).abs() <= 2e-16, "erf(-{x})");
            assert!((erfc(x) - (1.0 - e)).abs() <= 4e-16, "erfc({x})");
        }
        assert!((erfc(5.0) - 1.537_459_794_428_034_8e-12).abs() <= 1e-26);
        assert_eq!(erf(f64::INFINITY), 1.0);
        assert_eq!(erfc(f64::NEG_INFINITY), 2.0);
        assert_eq!(erfc(f64::INFINITY), 0.0);
    }

    #[test]
    fn f32_math_is_close_to_f64() {
        let mut x = -87.0_f32; // exp overflows past 88.72
        while x < 88.5 {
            let xd = x as f64;
            assert!(((Real::exp(x) as f64) - xd.exp()).abs() <= 4e-7 * xd.exp() + 1e-37, "exp {x}");
            assert!(((Real::tanh(x) as f64) - xd.tanh()).abs() <= 4e-7 * xd.tanh().abs() + 1e-37, "tanh {x}");
            let ope = 1.0 + erf(xd / 2f64.sqrt());
            assert!(((x * SQRT_HALF as f32).one_plus_erf() as f64 - ope).abs() <= 2e-7, "erf {x}");
            x += 0.013;
        }
        assert!(Real::exp(f32::NAN).is_nan() && f32::NEG_INFINITY.exp_neg() == 0.0);
    }
}
