//! Flash attention, forward and backward: `axiom_attention_f32` / `_f64` (this file, mirrors
//! `csrc/nn_attention.c`) and `axiom_attention_backward_f32` / `_f64` ([`backward`], mirrors
//! `csrc/nn_attention_backward.c` + `nn_attention_backward_impl.h`).
//!
//! Forward, per (batch, head, block of `BR` query rows) task, one generic algorithm for both
//! types (the C float32 one):
//!   for each block of `BC` keys (causal: only blocks with a visible key):
//!     S = q_blk k_blk^T * scale (+ mask), hidden keys -inf, stored transposed (key x query lane)
//!       by register tiles of `TILE_ROWS` keys x `W` queries;
//!     m_new = max(m, rowmax S); alpha = exp(m - m_new); P = exp(S - m_new); l = l alpha + sum P;
//!     O = alpha O + P v_blk (register tiles of `TILE_ROWS` value columns x `W` queries);
//!   out = O / l.
//! Scratch per worker is O(BR (d + BC + dv)), independent of the sequence lengths. Workers run
//! in parallel above C's `NN_PAR_FLOPS` multiply-adds and take tasks dynamically.
//!
//! Special values follow the reference: a +inf or NaN score makes its row NaN (exp(inf - inf)),
//! a row whose keys are all hidden or -inf, and every row when lk == 0, gets 0 / 0 = NaN.

mod backward;
mod num;

use crate::abi::export_f32_f64;
use crate::abi::{guard, parallel_for, SendPtr, AXIOM_ERR_NOMEM, AXIOM_ERR_NULL, AXIOM_ERR_SIZE, AXIOM_OK};
pub(crate) use num::nn_numel;
use num::{scratch, slice, strided_span_ok, Real};
use std::os::raw::c_int;
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};

/// Query rows per task: the lanes of the transposed tiles (a multiple of `W`).
const BR: usize = 64;
/// Keys per block.
const BC: usize = 96;
/// Query lanes per register tile row (two 8-lane float32 vectors).
const W: usize = 16;
/// C's `NN_PAR_FLOPS`: attention multiply-adds above which workers run in parallel.
pub(crate) const PAR_FLOPS: f64 = (1u64 << 22) as f64;

/// The argument checks shared by forward and backward, in C's order: sizes (and `extra`, the
/// backward's scratch bound, once the counts are known to fit), then `causal`, then the mask
/// span (strides >= 0, furthest element addressable). Element counts of q, k, v and out/gout
/// on success.
pub(crate) fn check_sizes(
    dims: [i64; 6],
    causal: c_int,
    has_mask: bool,
    strides: [i64; 4],
    elem: usize,
    extra: impl Fn() -> bool,
) -> Result<[usize; 4], c_int> {
    let [batch, heads, lq, lk, d, dv] = dims;
    let counts = [[batch, heads, lq, d], [batch, heads, lk, d], [batch, heads, lk, dv], [batch, heads, lq, dv]]
        .map(|shape| nn_numel(&shape, elem));
    if counts.iter().any(Option::is_none) || !extra() {
        return Err(AXIOM_ERR_SIZE);
    }
    if causal != 0 && causal != 1 {
        return Err(AXIOM_ERR_SIZE);
    }
    if has_mask && !strided_span_ok([batch, heads, lq, lk], strides, elem) {
        return Err(AXIOM_ERR_SIZE);
    }
    Ok(counts.map(|c| c.unwrap_or(0)))
}

/// The problem of one call with checked, non-negative sizes.
#[derive(Clone, Copy)]
pub(crate) struct Problem<T> {
    pub heads: usize,
    pub lq: usize,
    pub lk: usize,
    pub d: usize,
    pub dv: usize,
    pub scale: T,
    pub causal: bool,
    /// The optional mask (NULL when absent) and its strides (b, h, q, k), in elements.
    pub mask: *const T,
    pub ms: [usize; 4],
}

// The mask is only read, by every worker.
unsafe impl<T: Sync> Sync for Problem<T> {}

impl<T: Real> Problem<T> {
    fn new(dims: [i64; 6], scale: f64, causal: c_int, mask: *const T, ms: [i64; 4]) -> Self {
        let [_, heads, lq, lk, d, dv] = dims.map(|x| x as usize);
        Problem {
            heads,
            lq,
            lk,
            d,
            dv,
            scale: T::from_f64(scale),
            causal: causal == 1,
            mask,
            ms: ms.map(|x| x as usize),
        }
    }

    /// The mask of head `bh` (NULL without a mask).
    #[inline]
    pub fn head_mask(&self, bh: usize) -> *const T {
        if self.mask.is_null() {
            return self.mask;
        }
        let (b, h) = (bh / self.heads, bh % self.heads);
        // in bounds: the span check bounds every (b, h, i, j) offset
        unsafe { self.mask.add(b * self.ms[0] + h * self.ms[1]) }
    }

    /// Causal: key j is visible from query i iff j <= i + lk - lq; the number of keys query i sees.
    #[inline]
    pub fn visible(&self, i: usize) -> usize {
        let v = i as i64 + self.lk as i64 - self.lq as i64 + 1;
        v.clamp(0, self.lk as i64) as usize
    }
}

/// Causal attention skips the keys a query cannot see, but the reference multiplies their zero
/// probabilities by their values, so a non-finite value (0 * inf = NaN) still reaches every
/// query. Per head: 1 + the last key whose value row is not finite, or 0.
unsafe fn value_ends<T: Real>(v: *const T, nbh: usize, lk: usize, dv: usize) -> Option<Vec<usize>> {
    let mut ends = scratch(nbh, 0usize)?;
    for (bh, end) in ends.iter_mut().enumerate() {
        for j in (0..lk).rev() {
            let row = slice(v.add((bh * lk + j) * dv), dv);
            // x * 0 is NaN iff x is NaN or infinite; 8 partial sums so the loop vectorises
            let mut acc = [T::ZERO; 8];
            for (i, &x) in row.iter().enumerate() {
                acc[i % 8] = acc[i % 8] + x * T::ZERO;
            }
            if acc.iter().any(|a| a != a) {
                *end = j + 1;
                break;
            }
        }
    }
    Some(ends)
}

/// Per-worker scratch of the forward, carved out of one allocation.
struct Scratch<'a, T> {
    qt: &'a mut [T],    // d x BR: the task's queries, transposed, zero past the last row
    st: &'a mut [T],    // BC x BR: scores, then probabilities, transposed
    ot: &'a mut [T],    // dv x BR: output accumulator, transposed
    m: &'a mut [T],     // BR: running maximum per query
    l: &'a mut [T],     // BR: running sum per query
    alpha: &'a mut [T], // BR: rescale factor of the current key block
}

impl<'a, T: Real> Scratch<'a, T> {
    /// Elements of the scratch; None when the count overflows (-> AXIOM_ERR_NOMEM, like a
    /// failed allocation).
    fn len(d: usize, dv: usize) -> Option<usize> {
        d.checked_add(dv)?.checked_add(BC + 3)?.checked_mul(BR)
    }
    fn new(buf: &'a mut [T], d: usize, dv: usize) -> Self {
        let (qt, rest) = buf.split_at_mut(d * BR);
        let (st, rest) = rest.split_at_mut(BC * BR);
        let (ot, rest) = rest.split_at_mut(dv * BR);
        let (m, rest) = rest.split_at_mut(BR);
        let (l, alpha) = rest.split_at_mut(BR);
        Scratch { qt, st, ot, m, l, alpha: &mut alpha[..BR] }
    }
}

/// The lanes `[c, c + W)` of row `r` of a transposed (x BR) tile.
#[inline(always)]
fn lanes<T>(buf: &[T], r: usize, c: usize) -> &[T; W] {
    buf[r * BR + c..r * BR + c + W].try_into().unwrap()
}
#[inline(always)]
fn lanes_mut<T>(buf: &mut [T], r: usize, c: usize) -> &mut [T; W] {
    (&mut buf[r * BR + c..r * BR + c + W]).try_into().unwrap()
}

/// `st[r][c..c+W] = scale * k_{j0+r} . q_lanes (+ mask), -inf when hidden`, r < MR: a register
/// tile of MR keys x W query lanes (i0 + c is the first query of the lanes).
#[inline(always)]
unsafe fn score_tile<T: Real, const MR: usize>(
    p: &Problem<T>,
    kb: *const T,
    qt: &[T],
    st: &mut [T],
    mask: *const T,
    c: usize,
    i0: usize,
    j0: usize,
) {
    let d = p.d;
    let mut acc = [[T::ZERO; W]; MR];
    let rows: [*const T; MR] = std::array::from_fn(|r| kb.add(r * d));
    let qp = qt.as_ptr().wrapping_add(c); // qt is empty when d == 0
    debug_assert!(qt.len() >= d * BR && c + W <= BR);
    for t in 0..d {
        let b = &*(qp.add(t * BR) as *const [T; W]);
        for (r, acc_r) in acc.iter_mut().enumerate() {
            let a = *rows[r].add(t);
            for l in 0..W {
                acc_r[l] = T::madd(a, b[l], acc_r[l]);
            }
        }
    }
    let i = i0 + c; // first query of the lanes
    for (r, acc_r) in acc.iter().enumerate() {
        let j = j0 + r;
        // straight into st (a copy on the stack, patched by the scalar stores of the mask and
        // causal code, would stall the wide reload on store forwarding)
        let s = lanes_mut(st, r, c);
        for l in 0..W {
            s[l] = acc_r[l] * p.scale;
        }
        if !mask.is_null() {
            add_mask(p, s, mask.add(j * p.ms[3]), i);
        }
        if p.causal {
            // key j is hidden from query i + l when j > i + l + lk - lq, i.e. from the first `hidden` lanes
            let hidden = (j as i64 - i as i64 - p.lk as i64 + p.lq as i64).clamp(0, W as i64) as usize;
            s[..hidden].fill(T::NEG_INF);
        }
    }
}

/// Add the mask column `mp` (the key's column of the head's mask) to the lanes of queries
/// i, i + 1, ...; only rows that exist are read (padding lanes get 0 unless broadcast).
#[inline(always)]
unsafe fn add_mask<T: Real>(p: &Problem<T>, s: &mut [T; W], mp: *const T, i: usize) {
    let sq = p.ms[2];
    if sq == 0 {
        let m = *mp;
        s.iter_mut().for_each(|x| *x = *x + m);
    } else if sq == 1 && i + W <= p.lq {
        let m = &*(mp.add(i) as *const [T; W]); // a contiguous column of queries (a dense mask)
        s.iter_mut().zip(m).for_each(|(x, &m)| *x = *x + m);
    } else {
        let rows = p.lq.saturating_sub(i).min(W);
        for (l, x) in s.iter_mut().enumerate().take(rows) {
            *x = *x + *mp.add((i + l) * sq);
        }
    }
}

/// `ot[c0 + r][lanes] = alpha ot[c0 + r][lanes] + sum_j v[j][c0 + r] st[j][lanes]`, r < MR.
#[inline(always)]
unsafe fn pv_tile<T: Real, const MR: usize>(
    vb: *const T,
    dv: usize,
    bc: usize,
    ws: &mut Scratch<T>,
    c0: usize,
    c: usize,
) {
    let al = lanes(ws.alpha, 0, c);
    let mut acc = [[T::ZERO; W]; MR];
    for (r, acc_r) in acc.iter_mut().enumerate() {
        let o = lanes(ws.ot, c0 + r, c);
        for l in 0..W {
            acc_r[l] = o[l] * al[l];
        }
    }
    let sp = ws.st[c..].as_ptr();
    debug_assert!(bc <= BC && c + W <= BR);
    for j in 0..bc {
        let b = &*(sp.add(j * BR) as *const [T; W]);
        let vj = vb.add(j * dv + c0);
        for (r, acc_r) in acc.iter_mut().enumerate() {
            let a = *vj.add(r);
            for l in 0..W {
                acc_r[l] = T::madd(a, b[l], acc_r[l]);
            }
        }
    }
    for (r, acc_r) in acc.iter().enumerate() {
        *lanes_mut(ws.ot, c0 + r, c) = *acc_r;
    }
}

/// Run `$f::<T, MR>(args)` with MR = `$mr` (1..=6) as a const generic (full tiles most often).
macro_rules! with_rows {
    ($mr:expr, $f:ident, $($arg:expr),*) => {
        match $mr {
            1 => $f::<T, 1>($($arg),*),
            2 => $f::<T, 2>($($arg),*),
            3 => $f::<T, 3>($($arg),*),
            4 => $f::<T, 4>($($arg),*),
            5 => $f::<T, 5>($($arg),*),
            _ => $f::<T, 6>($($arg),*),
        }
    };
}
pub(crate) use with_rows;

/// Online softmax of one key block, one query per lane: updates m, l and alpha, turns the
/// scores in st into probabilities.
fn softmax_block<T: Real>(ws: &mut Scratch<T>, bc: usize) {
    for c in (0..BR).step_by(W) {
        let mut mx = [T::NEG_INF; W];
        for j in 0..bc {
            let s = lanes(ws.st, j, c);
            for l in 0..W {
                mx[l] = if s[l] > mx[l] { s[l] } else { mx[l] }; // NaN shows up through P
            }
        }
        let mut shift = [T::ZERO; W];
        for l in 0..W {
            let m_old = ws.m[c + l];
            let m_new = if mx[l] > m_old { mx[l] } else { m_old };
            shift[l] = if m_new == T::NEG_INF { T::ZERO } else { m_new };
            ws.alpha[c + l] = (m_old - shift[l]).exp_neg();
            ws.m[c + l] = m_new;
        }
        let mut sum = [T::ZERO; W];
        for j in 0..bc {
            let s = lanes_mut(ws.st, j, c);
            for l in 0..W {
                s[l] = (s[l] - shift[l]).exp_neg();
                sum[l] = sum[l] + s[l];
            }
        }
        for l in 0..W {
            ws.l[c + l] = T::madd(ws.l[c + l], ws.alpha[c + l], sum[l]);
        }
    }
}

/// One task: queries [i0, i0 + BR) of one head (q, k, v, out point at the head).
unsafe fn forward_task<T: Real>(
    p: &Problem<T>,
    q: *const T,
    k: *const T,
    v: *const T,
    out: *mut T,
    mask: *const T,
    i0: usize,
    vend: usize,
    ws: &mut Scratch<T>,
) {
    let (d, dv, lq, lk) = (p.d, p.dv, p.lq, p.lk);
    let br = (lq - i0).min(BR);
    for t in 0..d {
        let row = &mut ws.qt[t * BR..(t + 1) * BR];
        for (i, x) in row.iter_mut().enumerate() {
            *x = if i < br { *q.add((i0 + i) * d + t) } else { T::ZERO };
        }
    }
    ws.m.fill(T::NEG_INF);
    ws.l.fill(T::ZERO);
    ws.ot.fill(T::ZERO);
    let mut kend = lk;
    if p.causal {
        // the keys the last row of the task sees; a hidden key with a non-finite value still gives 0 * inf
        kend = p.visible(i0 + br - 1).max(vend);
    }
    let step = T::TILE_ROWS;
    for j0 in (0..kend).step_by(BC) {
        let bc = (kend - j0).min(BC);
        let (kb, vb) = (k.add(j0 * d), v.add(j0 * dv));
        for jj in (0..bc).step_by(step) {
            let st = &mut ws.st[jj * BR..];
            for c in (0..BR).step_by(W) {
                with_rows!((bc - jj).min(step), score_tile, p, kb.add(jj * d), ws.qt, st, mask, c, i0, j0 + jj);
            }
        }
        softmax_block(ws, bc);
        for c0 in (0..dv).step_by(step) {
            for c in (0..BR).step_by(W) {
                with_rows!((dv - c0).min(step), pv_tile, vb, dv, bc, ws, c0, c);
            }
        }
    }
    for i in 0..br {
        let l = ws.l[i]; // 0 when no key was visible: 0 / 0 = NaN
        let inv = T::ONE / l;
        let dst = out.add((i0 + i) * dv);
        for c in 0..dv {
            let o = ws.ot[c * BR + i];
            *dst.add(c) = if l > T::ZERO { o * inv } else { o / l };
        }
    }
}

#[allow(clippy::too_many_arguments)]
unsafe fn forward<T: Real>(
    q: *const T,
    k: *const T,
    v: *const T,
    mask: *const T,
    out: *mut T,
    dims: [i64; 6],
    scale: f64,
    causal: c_int,
    ms: [i64; 4],
) -> c_int {
    let elem = std::mem::size_of::<T>();
    let [nq, nk, nv, no] = match check_sizes(dims, causal, !mask.is_null(), ms, elem, || true) {
        Ok(c) => c,
        Err(rc) => return rc,
    };
    if (nq > 0 && q.is_null()) || (nk > 0 && k.is_null()) || (nv > 0 && v.is_null()) || (no > 0 && out.is_null()) {
        return AXIOM_ERR_NULL;
    }
    if no == 0 {
        return AXIOM_OK;
    }
    let p = Problem::new(dims, scale, causal, mask, ms);
    let nbh = dims[0] as usize * p.heads;
    let vend = if p.causal {
        match value_ends(v, nbh, p.lk, p.dv) {
            Some(e) => e,
            None => return AXIOM_ERR_NOMEM,
        }
    } else {
        Vec::new()
    };
    let nqb = p.lq.div_ceil(BR);
    let ntasks = nbh * nqb;
    let work = nbh as f64 * p.lq as f64 * p.lk as f64 * (p.d + p.dv) as f64;
    let workers = if ntasks > 1 && work >= PAR_FLOPS { crate::abi::num_threads().min(ntasks) } else { 1 };
    let (q, k, v, out) = (SendPtr(q as *mut T), SendPtr(k as *mut T), SendPtr(v as *mut T), SendPtr(out));
    let next = AtomicUsize::new(0);
    let failed = AtomicBool::new(false);
    let p = &p;
    parallel_for(workers, |_| {
        let (q, k, v, out) = (q, k, v, out); // the SendPtrs, not their raw fields
        let Some(mut buf) = Scratch::<T>::len(p.d, p.dv).and_then(|n| scratch(n, T::ZERO)) else {
            failed.store(true, Ordering::Relaxed);
            return;
        };
        let mut ws = Scratch::new(&mut buf, p.d, p.dv);
        loop {
            let t = next.fetch_add(1, Ordering::Relaxed);
            if t >= ntasks {
                break;
            }
            let bh = t / nqb;
            let (qo, ko, vo) = (bh * p.lq * p.d, bh * p.lk * p.d, bh * p.lk * p.dv);
            let ve = if p.causal { vend[bh] } else { 0 };
            forward_task(
                p,
                q.0.add(qo),
                k.0.add(ko),
                v.0.add(vo),
                out.0.add(bh * p.lq * p.dv),
                p.head_mask(bh),
                (t % nqb) * BR,
                ve,
                &mut ws,
            );
        }
    });
    if failed.load(Ordering::Relaxed) {
        AXIOM_ERR_NOMEM
    } else {
        AXIOM_OK
    }
}

export_f32_f64! {
    /// `out = softmax(q k^T * scale + mask) v`, float32 (see `csrc/axiom_kernels_nn.h`).
    ///
    /// # Safety
    /// Pointers must be valid for the sizes given (the C ABI contract).
    axiom_attention_f32,
    axiom_attention_f64(
        q: ptr,
        k: ptr,
        v: ptr,
        mask: ptr,
        out: mut_ptr,
        batch: i64,
        heads: i64,
        lq: i64,
        lk: i64,
        d: i64,
        dv: i64,
        scale: f64,
        causal: c_int,
        mask_sb: i64,
        mask_sh: i64,
        mask_sq: i64,
        mask_sk: i64,
    ) {
        let dims = [batch, heads, lq, lk, d, dv];
        guard(|| forward(q, k, v, mask, out, dims, scale, causal, [mask_sb, mask_sh, mask_sq, mask_sk]))
    }
}
