//! The packed, cache-blocked GEMM driver shared by the GEMM, matmul and conv kernels
//! (mirrors `csrc/gemm_impl.h`; see `csrc/gemm.h` for the Goto / BLIS loop nest):
//!
//! ```text
//! for jc in n by NC:   for pc in k by KC:   pack B[pc.., jc..] into NR-wide panels
//!   for ic in m by MC: pack A[ic.., pc..] (or read it in place: row pointers / gather table)
//!     for each MR x NR tile: micro-kernel (ukr.rs)
//! ```
//!
//! With several threads the (row block x column chunk) tasks of C's driver run through
//! `abi::parallel_for`; each task packs its own B chunk (one region per call, no barrier).

use super::isa;
use super::scratch::{self, NoMem, SLOT_A, SLOT_B};
use super::simd::Elem;
use super::ukr::{Epi, Generic, Isa, Tile, GATHER, PACKED, STRIDED};
use crate::abi::{num_threads, parallel_for};
use std::mem::MaybeUninit;
use std::sync::atomic::{AtomicBool, Ordering};

/// Floating-point operations below which everything runs on the calling thread (like C's
/// `AXIOM_PARALLEL_FLOPS`).
pub const PARALLEL_FLOPS: f64 = 2.0 * 8388608.0;
const KC: usize = 256;
const NC: usize = 4096;
/// Largest tile of any kernel (edge tiles are computed into a buffer of this size).
const TILE_MAX: usize = 16 * 32;

/// Threads for a job of `flops` operations: 1 below the threshold, else `num_threads()`.
pub fn threads_for(flops: f64) -> usize {
    if flops < PARALLEL_FLOPS {
        1
    } else {
        num_threads()
    }
}

/// The A operand: element (i, p).
#[derive(Clone, Copy)]
pub enum ASrc<T> {
    /// `trans ? a[p * lda + i] : a[i * lda + p]`.
    Dense { a: *const T, lda: usize, trans: bool },
    /// `rows[i][koff[p]]` (implicit im2col of the convolutions).
    Gather { rows: *const *const T, koff: *const isize },
}

/// C (m x n, ldc) = alpha * A @ op(B) + beta * C + bias (beta == 0: C is not read; bias may be
/// NULL); op(B) element (p, j) = transb ? b[j * ldb + p] : b[p * ldb + j].
#[derive(Clone, Copy)]
pub struct Gemm<T> {
    pub m: usize,
    pub n: usize,
    pub k: usize,
    pub a: ASrc<T>,
    pub b: *const T,
    pub ldb: usize,
    pub transb: bool,
    pub alpha: T,
    pub beta: T,
    pub c: *mut T,
    pub ldc: usize,
    pub bias: *const T,
}

impl<T: Elem> Gemm<T> {
    /// C (m x n, ldc) = A @ B (B element (p, j) = b[p * ldb + j]): alpha 1, beta 0, no bias;
    /// other settings through struct update syntax.
    #[allow(clippy::too_many_arguments)]
    pub fn product(m: usize, n: usize, k: usize, a: ASrc<T>, b: *const T, ldb: usize, c: *mut T, ldc: usize) -> Self {
        Gemm { m, n, k, a, b, ldb, transb: false, alpha: T::ONE, beta: T::ZERO, c, ldc, bias: std::ptr::null() }
    }
}

// SAFETY: tasks write disjoint tiles of C and only read A and B.
unsafe impl<T> Send for Gemm<T> {}
unsafe impl<T> Sync for Gemm<T> {}

/// Run the GEMM on up to `threads` threads. Arguments are assumed valid.
///
/// # Safety
/// Every pointer is valid for the sizes and strides of `g`; C overlaps neither A nor B.
pub unsafe fn driver<T: Elem>(g: &Gemm<T>, threads: usize) -> Result<(), NoMem> {
    if g.m == 0 || g.n == 0 {
        return Ok(());
    }
    if g.k == 0 {
        for i in 0..g.m {
            for j in 0..g.n {
                let c = g.c.add(i * g.ldc + j);
                let x = if g.beta != T::ZERO { g.beta * *c } else { T::ZERO };
                *c = if g.bias.is_null() { x } else { x + *g.bias.add(j) };
            }
        }
        return Ok(());
    }
    #[cfg(target_arch = "x86_64")]
    match isa::active() {
        isa::AVX512 => return drive::<super::ukr::Avx512, T>(g, threads),
        isa::AVX2 => return drive::<super::ukr::Avx2, T>(g, threads),
        _ => {}
    }
    drive::<Generic, T>(g, threads)
}

/// Blocking of one call: tile rows and columns, KC and MC.
struct Plan {
    mr: usize,
    nr: usize,
    kc: usize,
    mc: usize,
}

unsafe fn drive<I: Isa, T: Elem>(g: &Gemm<T>, threads: usize) -> Result<(), NoMem> {
    let mode = match g.a {
        ASrc::Gather { .. } => GATHER,
        ASrc::Dense { trans: false, .. } => STRIDED,
        ASrc::Dense { trans: true, .. } => PACKED,
    };
    let mr = if mode == PACKED { I::MR } else { I::MRG };
    // gathered A (convolutions): B is small (the weights), keep the whole reduction in one block
    let kc0 = if mode == GATHER && g.k <= 4 * KC { g.k } else { KC };
    let nk = g.k.div_ceil(kc0);
    let plan = Plan { mr, nr: I::nr::<T>(), kc: g.k.div_ceil(nk), mc: I::mc::<T>() };
    if threads <= 1 {
        return task::<I, T>(g, &plan, 0, g.m, 0, g.n);
    }
    // tasks: (row block) x (column chunk); more column chunks only when m is too small
    let mut mc_t = plan.mc;
    let mut mblocks = g.m.div_ceil(mc_t);
    if mblocks < threads {
        mc_t = g.m.div_ceil(threads).div_ceil(mr) * mr;
        mblocks = g.m.div_ceil(mc_t);
    }
    let npanels = g.n.div_ceil(plan.nr);
    let jchunks = if mblocks >= threads { 1 } else { threads.div_ceil(mblocks) }.min(npanels);
    let chunk = npanels.div_ceil(jchunks) * plan.nr;
    let jchunks = g.n.div_ceil(chunk);
    let failed = AtomicBool::new(false);
    parallel_for(mblocks * jchunks, |t| {
        let (ic, j0) = ((t / jchunks) * mc_t, (t % jchunks) * chunk);
        // SAFETY: the tasks write disjoint blocks of C
        if unsafe { task::<I, T>(g, &plan, ic, mc_t.min(g.m - ic), j0, (j0 + chunk).min(g.n)) }.is_err() {
            failed.store(true, Ordering::Relaxed);
        }
    });
    if failed.load(Ordering::Relaxed) {
        Err(NoMem)
    } else {
        Ok(())
    }
}

/// C[i0 .. i0 + rows, j0 .. j1] over the whole reduction.
unsafe fn task<I: Isa, T: Elem>(
    g: &Gemm<T>,
    plan: &Plan,
    i0: usize,
    rows: usize,
    j0: usize,
    j1: usize,
) -> Result<(), NoMem> {
    let nr = plan.nr;
    for jc in (j0..j1).step_by(NC) {
        let nc = NC.min(j1 - jc);
        let npanels = nc.div_ceil(nr);
        let bp = scratch::get::<T>(SLOT_B, plan.kc.min(g.k) * npanels * nr)?;
        for pc in (0..g.k).step_by(plan.kc) {
            let kc = plan.kc.min(g.k - pc);
            let epi = if pc == 0 {
                let bias = if g.bias.is_null() { g.bias } else { g.bias.add(jc) };
                Epi { alpha: g.alpha, beta: g.beta, use_beta: g.beta != T::ZERO, bias }
            } else {
                Epi { alpha: g.alpha, beta: T::ONE, use_beta: true, bias: std::ptr::null() }
            };
            for jp in 0..npanels {
                let cols = nr.min(nc - jp * nr);
                pack_b_panel(nr, kc, cols, g, pc, jc + jp * nr, bp.add(jp * nr * kc));
            }
            for ic in (i0..i0 + rows).step_by(plan.mc) {
                let mc = plan.mc.min(i0 + rows - ic);
                let c = g.c.add(ic * g.ldc + jc);
                block::<I, T>(g, plan, ic, mc, pc, kc, nc, bp, c, &epi)?;
            }
        }
    }
    Ok(())
}

/// One A block (rows ic.., reduction pc..): pack it or point at it, then the macro kernel.
#[allow(clippy::too_many_arguments)]
unsafe fn block<I: Isa, T: Elem>(
    g: &Gemm<T>,
    plan: &Plan,
    ic: usize,
    mc: usize,
    pc: usize,
    kc: usize,
    nc: usize,
    bp: *const T,
    c: *mut T,
    epi: &Epi<T>,
) -> Result<(), NoMem> {
    let mut t = Tile {
        kc,
        a: std::ptr::null(),
        mr: plan.mr,
        rows: std::ptr::null(),
        koff: std::ptr::null(),
        b: bp,
        c,
        ldc: g.ldc,
        epi: *epi,
    };
    match g.a {
        ASrc::Gather { rows, koff } => {
            t.rows = rows.add(ic);
            t.koff = koff.add(pc);
            macro_kernel::<I, T, GATHER>(mc, nc, plan.nr, t);
        }
        ASrc::Dense { a, lda, trans: false } => {
            let r = scratch::get::<*const T>(SLOT_A, mc)?;
            for i in 0..mc {
                *r.add(i) = a.add((ic + i) * lda + pc);
            }
            t.rows = r;
            macro_kernel::<I, T, STRIDED>(mc, nc, plan.nr, t);
        }
        ASrc::Dense { a, lda, trans: true } => {
            let ap = scratch::get::<T>(SLOT_A, mc.div_ceil(plan.mr) * plan.mr * kc)?;
            pack_a_trans(plan.mr, mc, kc, a, lda, ic, pc, ap);
            t.a = ap;
            macro_kernel::<I, T, PACKED>(mc, nc, plan.nr, t);
        }
    }
    Ok(())
}

/// Pack A[i0 .. i0 + mc, p0 .. p0 + kc] of a transposed A (element (i, p) = a[p * lda + i])
/// into MR-row panels, rows past mc zero.
#[allow(clippy::too_many_arguments)]
unsafe fn pack_a_trans<T: Elem>(
    mr: usize,
    mc: usize,
    kc: usize,
    a: *const T,
    lda: usize,
    i0: usize,
    p0: usize,
    dst: *mut T,
) {
    for (panel, ir) in (0..mc).step_by(mr).enumerate() {
        let rows = mr.min(mc - ir);
        let d = dst.add(panel * mr * kc);
        let src = a.add(p0 * lda + i0 + ir);
        for p in 0..kc {
            std::ptr::copy_nonoverlapping(src.add(p * lda), d.add(p * mr), rows);
            for r in rows..mr {
                *d.add(p * mr + r) = T::ZERO;
            }
        }
    }
}

/// Pack one NR-column panel of op(B)[p0 .. p0 + kc, j .. j + cols] (columns past cols zero).
unsafe fn pack_b_panel<T: Elem>(nr: usize, kc: usize, cols: usize, g: &Gemm<T>, p0: usize, j: usize, dst: *mut T) {
    let ldb = g.ldb;
    if !g.transb {
        let src = g.b.add(p0 * ldb + j);
        for p in 0..kc {
            std::ptr::copy_nonoverlapping(src.add(p * ldb), dst.add(p * nr), cols);
            for jj in cols..nr {
                *dst.add(p * nr + jj) = T::ZERO;
            }
        }
    } else {
        let src = g.b.add(j * ldb + p0); // element (p, j) = b[j * ldb + p]
        for jj in 0..cols {
            let s = src.add(jj * ldb);
            for p in 0..kc {
                *dst.add(p * nr + jj) = *s.add(p);
            }
        }
        for jj in cols..nr {
            for p in 0..kc {
                *dst.add(p * nr + jj) = T::ZERO;
            }
        }
    }
}

/// 64-byte aligned tile buffer for edge tiles.
#[repr(align(64))]
struct TileBuf<T>([MaybeUninit<T>; TILE_MAX]);

/// C[0 .. mc, 0 .. nc] (+)= A block @ B block, tile by tile (`t` holds the block's A source,
/// B panels, C and epilogue; its row / column offsets are applied per tile).
unsafe fn macro_kernel<I: Isa, T: Elem, const MODE: u8>(mc: usize, nc: usize, nr: usize, t: Tile<T>) {
    let mr = if MODE == PACKED { I::MR } else { I::MRG };
    let mut tmp = TileBuf::<T>([const { MaybeUninit::uninit() }; TILE_MAX]);
    let tmp = tmp.0.as_mut_ptr() as *mut T;
    // gathered A (convolutions): rows outer, so a tile's receptive field stays in L1 across the B panels
    let rows_outer = MODE == GATHER;
    let (n_ir, n_jr) = (mc.div_ceil(mr), nc.div_ceil(nr));
    for s in 0..n_ir * n_jr {
        let (ir, jr) = if rows_outer { (s / n_jr * mr, s % n_jr * nr) } else { (s % n_ir * mr, s / n_ir * nr) };
        let (mcur, ncur) = (mr.min(mc - ir), nr.min(nc - jr));
        let ct = t.c.add(ir * t.ldc + jr);
        let mut e = t.epi;
        if !e.bias.is_null() {
            e.bias = e.bias.add(jr);
        }
        let mut u = Tile { b: t.b.add(jr * t.kc), c: ct, epi: e, ..t };
        match MODE {
            PACKED => u.a = t.a.add(ir * t.kc),
            _ => u.rows = t.rows.add(ir),
        }
        if ncur == nr {
            I::run::<T, MODE>(mcur, &u);
            continue;
        }
        u.c = tmp;
        u.ldc = nr;
        u.epi = Epi::PLAIN;
        I::run::<T, MODE>(mcur, &u);
        for r in 0..mcur {
            for j in 0..ncur {
                let c = ct.add(r * t.ldc + j);
                *c = e.apply(*tmp.add(r * nr + j), if e.use_beta { *c } else { T::ZERO }, j);
            }
        }
    }
}
