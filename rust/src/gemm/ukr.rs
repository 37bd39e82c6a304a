//! GEMM micro-kernels (mirrors `csrc/gemm_ukr_impl.h` and the kernel tables of `csrc/gemm.c`).
//!
//! One generic tile kernel: an `R x NR` tile of C (NR = two vectors) lives in registers for
//! the whole reduction, B is an NR-wide packed panel, and A(r, p) comes from one of three
//! sources (`MODE`): a packed MR-tall panel, a gather table (`rows[r][koff[p]]`, the implicit
//! im2col of the convolutions) or row pointers (`rows[r][p]`, non-transposed A read in place).
//! The [`Isa`] implementations instantiate it with their vector type inside a function
//! compiled for their instruction set, for every row count 1..MR. Every product is
//! accumulated (no zero skipping), so NaN and Inf propagate like in a plain dot product.

use super::simd::{Elem, Vector};

/// A(r, p) = a[p * mr + r]: a packed panel.
pub const PACKED: u8 = 0;
/// A(r, p) = rows[r][koff[p]]: gather table.
pub const GATHER: u8 = 1;
/// A(r, p) = rows[r][p]: row pointers.
pub const STRIDED: u8 = 2;

/// The epilogue: C = alpha * acc (+ beta * C when `use_beta`) (+ bias[j] unless NULL).
#[derive(Clone, Copy)]
pub struct Epi<T> {
    pub alpha: T,
    pub beta: T,
    pub use_beta: bool,
    pub bias: *const T,
}

impl<T: Elem> Epi<T> {
    /// C = acc (used for edge tiles computed into a scratch tile).
    pub const PLAIN: Epi<T> = Epi { alpha: T::ONE, beta: T::ZERO, use_beta: false, bias: std::ptr::null() };

    /// The scalar epilogue of one element (edge tiles).
    #[inline(always)]
    pub fn apply(&self, acc: T, old: T, j: usize) -> T {
        let mut x = acc;
        if self.alpha != T::ONE {
            x = x * self.alpha;
        }
        if self.use_beta {
            x = self.beta * old + x;
        }
        if !self.bias.is_null() {
            // SAFETY: bias has an element per column of the tile (caller's contract)
            x += unsafe { *self.bias.add(j) };
        }
        x
    }
}

/// Arguments of one tile: kc reduction steps, the A source, the B panel and the C tile.
pub struct Tile<T> {
    pub kc: usize,
    /// PACKED: the panel, `mr` elements per step.
    pub a: *const T,
    pub mr: usize,
    /// GATHER / STRIDED: one pointer per row of the tile.
    pub rows: *const *const T,
    /// GATHER: one offset per reduction step.
    pub koff: *const isize,
    pub b: *const T,
    pub c: *mut T,
    pub ldc: usize,
    pub epi: Epi<T>,
}

#[inline(always)]
unsafe fn prefetch<T>(p: *const T) {
    #[cfg(target_arch = "x86_64")]
    std::arch::x86_64::_mm_prefetch::<{ std::arch::x86_64::_MM_HINT_T0 }>(p as *const i8);
    #[cfg(not(target_arch = "x86_64"))]
    let _ = p;
}

/// The tile kernel for vector type `V`, A source `MODE` and `R` rows (see the module doc).
#[inline(always)]
unsafe fn tile<V: Vector, const MODE: u8, const R: usize>(t: &Tile<V::E>) {
    let l = V::LANES;
    let mut acc = [[V::zero(); 2]; R];
    let mut rp = [std::ptr::null::<V::E>(); R];
    if MODE != PACKED {
        for (r, p) in rp.iter_mut().enumerate() {
            *p = *t.rows.add(r);
        }
    }
    for r in 0..R {
        prefetch(t.c.add(r * t.ldc));
        prefetch(t.c.add(r * t.ldc + 2 * l - 1));
    }
    let (mut a, mut b) = (t.a, t.b);
    for p in 0..t.kc {
        if MODE != GATHER {
            prefetch(b.add(16 * l));
        }
        let b0 = V::load(b);
        let b1 = V::load(b.add(l));
        let o = if MODE == GATHER { *t.koff.add(p) } else { 0 };
        for r in 0..R {
            let x = match MODE {
                PACKED => *a.add(r),
                GATHER => *rp[r].offset(o),
                _ => *rp[r].add(p),
            };
            let av = V::splat(x);
            acc[r][0] = V::fma(av, b0, acc[r][0]);
            acc[r][1] = V::fma(av, b1, acc[r][1]);
        }
        b = b.add(2 * l);
        if MODE == PACKED {
            a = a.add(t.mr);
        }
    }
    let e = &t.epi;
    let scale = e.alpha != <V::E as Elem>::ONE;
    let (va, vb) = (V::splat(e.alpha), V::splat(e.beta));
    for (r, row) in acc.iter().enumerate() {
        for (v, &x) in row.iter().enumerate() {
            let cp = t.c.add(r * t.ldc + v * l);
            let mut x = x;
            if scale {
                x = x.mul(va);
            }
            if e.use_beta {
                x = V::fma(vb, V::load(cp), x);
            }
            if !e.bias.is_null() {
                x = x.add(V::load(e.bias.add(v * l)));
            }
            x.store(cp);
        }
    }
}

/// Call `$f::<T, MODE, R>(t)` for the run-time row count `$rows` (one arm per listed R).
macro_rules! by_rows {
    ($f:ident, $rows:expr, $t:expr, $($r:literal)*) => {
        match $rows {
            $($r => $f::<T, MODE, $r>($t),)*
            _ => {}
        }
    };
}

/// A micro-kernel family: tile sizes, cache blocking and the tile kernels of one ISA level.
pub trait Isa {
    /// Rows of the packed kernel and of the gather / strided kernels.
    const MR: usize;
    const MRG: usize;
    /// Columns of the tile (two vectors) for element type T.
    fn nr<T: Elem>() -> usize;
    /// Rows of an A block (a multiple of MR and MRG).
    fn mc<T: Elem>() -> usize;
    /// Run the tile kernel with `rows` (1..=MR or MRG) rows.
    ///
    /// # Safety
    /// The CPU supports the level; the pointers of `t` are valid for the tile.
    unsafe fn run<T: Elem, const MODE: u8>(rows: usize, t: &Tile<T>);
}

/// Portable kernels: 4 x 8 (f32), 4 x 4 (f64).
pub struct Generic;

unsafe fn tile_generic<T: Elem, const MODE: u8, const R: usize>(t: &Tile<T>) {
    tile::<T::Gen, MODE, R>(t)
}

impl Isa for Generic {
    const MR: usize = 4;
    const MRG: usize = 4;
    fn nr<T: Elem>() -> usize {
        2 * <T::Gen as Vector>::LANES
    }
    fn mc<T: Elem>() -> usize {
        128
    }
    unsafe fn run<T: Elem, const MODE: u8>(rows: usize, t: &Tile<T>) {
        by_rows!(tile_generic, rows, t, 1 2 3 4)
    }
}

/// AVX2 + FMA: 6 x 16 (f32), 6 x 8 (f64), 12 ymm accumulators.
#[cfg(target_arch = "x86_64")]
pub struct Avx2;

#[cfg(target_arch = "x86_64")]
#[target_feature(enable = "avx2,fma")]
unsafe fn tile_avx2<T: Elem, const MODE: u8, const R: usize>(t: &Tile<T>) {
    tile::<T::Ymm, MODE, R>(t)
}

#[cfg(target_arch = "x86_64")]
impl Isa for Avx2 {
    const MR: usize = 6;
    const MRG: usize = 6;
    fn nr<T: Elem>() -> usize {
        2 * <T::Ymm as Vector>::LANES
    }
    fn mc<T: Elem>() -> usize {
        if std::mem::size_of::<T>() == 4 {
            144
        } else {
            96
        }
    }
    unsafe fn run<T: Elem, const MODE: u8>(rows: usize, t: &Tile<T>) {
        by_rows!(tile_avx2, rows, t, 1 2 3 4 5 6)
    }
}

/// AVX-512: 12 x 32 packed (24 zmm accumulators), 8 x 32 gather / strided (f32); f64 half as wide.
#[cfg(target_arch = "x86_64")]
pub struct Avx512;

#[cfg(target_arch = "x86_64")]
#[target_feature(enable = "avx512f")]
unsafe fn tile_avx512<T: Elem, const MODE: u8, const R: usize>(t: &Tile<T>) {
    tile::<T::Zmm, MODE, R>(t)
}

#[cfg(target_arch = "x86_64")]
impl Isa for Avx512 {
    const MR: usize = 12;
    const MRG: usize = 8;
    fn nr<T: Elem>() -> usize {
        2 * <T::Zmm as Vector>::LANES
    }
    fn mc<T: Elem>() -> usize {
        if std::mem::size_of::<T>() == 4 {
            144
        } else {
            96
        }
    }
    unsafe fn run<T: Elem, const MODE: u8>(rows: usize, t: &Tile<T>) {
        if MODE == PACKED {
            by_rows!(tile_avx512, rows, t, 1 2 3 4 5 6 7 8 9 10 11 12)
        } else {
            by_rows!(tile_avx512, rows, t, 1 2 3 4 5 6 7 8)
        }
    }
}
