//! Element types and the vector types the GEMM micro-kernels are written over.
//!
//! One micro-kernel (`ukr.rs`) is generic over [`Vector`]; it is instantiated with the
//! portable [`Lanes`] (plain arrays, whatever the compiler makes of them), and on x86-64
//! with the AVX2 (ymm) and AVX-512 (zmm) register types. The intrinsics are only executed
//! inside functions compiled with the matching `#[target_feature]` (see `ukr.rs`), which
//! `isa.rs` only selects when the CPU supports them.

use std::ops::{Add, AddAssign, Mul};

/// A SIMD vector of `LANES` elements. Every method is `unsafe` because the x86 ones require
/// their instruction set; pointers must be valid for `LANES` elements (no alignment needed).
pub trait Vector: Copy {
    type E: Elem;
    const LANES: usize;
    unsafe fn zero() -> Self;
    unsafe fn splat(x: Self::E) -> Self;
    unsafe fn load(p: *const Self::E) -> Self;
    unsafe fn store(self, p: *mut Self::E);
    /// `a * b + c` (fused on the SIMD instruction sets).
    unsafe fn fma(a: Self, b: Self, c: Self) -> Self;
    unsafe fn mul(self, b: Self) -> Self;
    unsafe fn add(self, b: Self) -> Self;
}

/// The element types with kernels: f32 and f64.
pub trait Elem:
    Copy + Send + Sync + PartialEq + Default + 'static + Add<Output = Self> + Mul<Output = Self> + AddAssign
{
    const ZERO: Self;
    const ONE: Self;
    /// Portable vector (two of them make the generic kernel's tile width: 8 f32 / 4 f64).
    type Gen: Vector<E = Self>;
    #[cfg(target_arch = "x86_64")]
    type Ymm: Vector<E = Self>;
    #[cfg(target_arch = "x86_64")]
    type Zmm: Vector<E = Self>;
    fn to_f64(self) -> f64;
    fn from_f64(x: f64) -> Self;
}

impl Elem for f32 {
    const ZERO: Self = 0.0;
    const ONE: Self = 1.0;
    type Gen = Lanes<f32, 4>;
    #[cfg(target_arch = "x86_64")]
    type Ymm = x86::Ymm32;
    #[cfg(target_arch = "x86_64")]
    type Zmm = x86::Zmm32;
    fn to_f64(self) -> f64 {
        self as f64
    }
    fn from_f64(x: f64) -> Self {
        x as f32
    }
}

impl Elem for f64 {
    const ZERO: Self = 0.0;
    const ONE: Self = 1.0;
    type Gen = Lanes<f64, 2>;
    #[cfg(target_arch = "x86_64")]
    type Ymm = x86::Ymm64;
    #[cfg(target_arch = "x86_64")]
    type Zmm = x86::Zmm64;
    fn to_f64(self) -> f64 {
        self
    }
    fn from_f64(x: f64) -> Self {
        x
    }
}

/// Portable vector: `N` elements in an array (plain multiply and add, like C's generic kernel).
#[derive(Clone, Copy)]
pub struct Lanes<T, const N: usize>([T; N]);

impl<T: Elem, const N: usize> Vector for Lanes<T, N> {
    type E = T;
    const LANES: usize = N;
    #[inline(always)]
    unsafe fn zero() -> Self {
        Lanes([T::ZERO; N])
    }
    #[inline(always)]
    unsafe fn splat(x: T) -> Self {
        Lanes([x; N])
    }
    #[inline(always)]
    unsafe fn load(p: *const T) -> Self {
        Lanes(std::ptr::read_unaligned(p as *const [T; N]))
    }
    #[inline(always)]
    unsafe fn store(self, p: *mut T) {
        std::ptr::write_unaligned(p as *mut [T; N], self.0)
    }
    #[inline(always)]
    unsafe fn fma(a: Self, b: Self, c: Self) -> Self {
        Lanes(std::array::from_fn(|i| a.0[i] * b.0[i] + c.0[i]))
    }
    #[inline(always)]
    unsafe fn mul(self, b: Self) -> Self {
        Lanes(std::array::from_fn(|i| self.0[i] * b.0[i]))
    }
    #[inline(always)]
    unsafe fn add(self, b: Self) -> Self {
        Lanes(std::array::from_fn(|i| self.0[i] + b.0[i]))
    }
}

#[cfg(target_arch = "x86_64")]
mod x86 {
    use super::Vector;
    use std::arch::x86_64::*;

    /// One x86 register type: (wrapper, register, element, lanes, intrinsics...).
    macro_rules! x86_vector {
        ($name:ident, $reg:ty, $t:ty, $lanes:expr, $zero:ident, $set1:ident, $load:ident, $store:ident,
         $fma:ident, $mul:ident, $add:ident) => {
            #[derive(Clone, Copy)]
            pub struct $name($reg);
            impl Vector for $name {
                type E = $t;
                const LANES: usize = $lanes;
                #[inline(always)]
                unsafe fn zero() -> Self {
                    $name($zero())
                }
                #[inline(always)]
                unsafe fn splat(x: $t) -> Self {
                    $name($set1(x))
                }
                #[inline(always)]
                unsafe fn load(p: *const $t) -> Self {
                    $name($load(p))
                }
                #[inline(always)]
                unsafe fn store(self, p: *mut $t) {
                    $store(p, self.0)
                }
                #[inline(always)]
                unsafe fn fma(a: Self, b: Self, c: Self) -> Self {
                    $name($fma(a.0, b.0, c.0))
                }
                #[inline(always)]
                unsafe fn mul(self, b: Self) -> Self {
                    $name($mul(self.0, b.0))
                }
                #[inline(always)]
                unsafe fn add(self, b: Self) -> Self {
                    $name($add(self.0, b.0))
                }
            }
        };
    }

    x86_vector!(
        Ymm32,
        __m256,
        f32,
        8,
        _mm256_setzero_ps,
        _mm256_set1_ps,
        _mm256_loadu_ps,
        _mm256_storeu_ps,
        _mm256_fmadd_ps,
        _mm256_mul_ps,
        _mm256_add_ps
    );
    x86_vector!(
        Ymm64,
        __m256d,
        f64,
        4,
        _mm256_setzero_pd,
        _mm256_set1_pd,
        _mm256_loadu_pd,
        _mm256_storeu_pd,
        _mm256_fmadd_pd,
        _mm256_mul_pd,
        _mm256_add_pd
    );
    x86_vector!(
        Zmm32,
        __m512,
        f32,
        16,
        _mm512_setzero_ps,
        _mm512_set1_ps,
        _mm512_loadu_ps,
        _mm512_storeu_ps,
        _mm512_fmadd_ps,
        _mm512_mul_ps,
        _mm512_add_ps
    );
    x86_vector!(
        Zmm64,
        __m512d,
        f64,
        8,
        _mm512_setzero_pd,
        _mm512_set1_pd,
        _mm512_loadu_pd,
        _mm512_storeu_pd,
        _mm512_fmadd_pd,
        _mm512_mul_pd,
        _mm512_add_pd
    );
}
