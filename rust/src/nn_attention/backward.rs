//! Gradients of attention: `axiom_attention_backward_f32` / `_f64` (mirrors
//! `csrc/nn_attention_backward.c` and `csrc/nn_attention_backward_impl.h`), flash-attention
//! style: nothing of size lq x lk is ever stored.
//!
//! One (batch, head) per task (tasks in parallel above `NN_PAR_FLOPS`), in blocks of `BR`
//! queries x `BC` keys:
//!   pass 1, per query block: the forward's online softmax gives each row's maximum m, sum l
//!     and output O, then lse = m + log l and D = dO . O / l (= sum_j P dP);
//!   pass 2, per key block, per query block that sees it: S = q k^T * scale + mask (hidden
//!     keys -inf), P = exp(S - lse), dv += P^T dO, dP = dO v^T, dS = P (dP - D) * scale,
//!     dk += dS^T q, dq += dS k.
//! A row that sees no key, or whose scores hold +inf or NaN (l is 0 or NaN), has NaN
//! probabilities in the reference: its dq row is NaN and so are all of dk and dv of its head.
//! The block products are register tiles of `TILE_ROWS` rows x 16 columns (fixed-size lane
//! arrays that LLVM vectorises, FMA when the target has it).

use super::num::{nn_numel, scratch, slice, slice_mut, Real};
use super::{check_sizes, with_rows, Problem, PAR_FLOPS};
use crate::abi::export_f32_f64;
use crate::abi::{guard, parallel_for, SendPtr, AXIOM_ERR_NOMEM, AXIOM_ERR_NULL, AXIOM_OK};
use std::os::raw::c_int;
use std::sync::atomic::{AtomicBool, Ordering};

/// Query rows per block.
const BR: usize = 64;
/// Keys per block.
const BC: usize = 64;
/// Columns of a register tile.
const W: usize = 16;

/// Row `r`, columns `[0, n)` (n <= W) of a tile at `p` with leading dimension `ld`; lanes past
/// `n` are 0 and no memory past them is touched.
#[inline(always)]
unsafe fn load<T: Real, const FULL: bool>(p: *const T, n: usize) -> [T; W] {
    if FULL {
        *(p as *const [T; W])
    } else {
        let mut v = [T::ZERO; W];
        std::ptr::copy_nonoverlapping(p, v.as_mut_ptr(), n);
        v
    }
}

#[inline(always)]
unsafe fn store<T: Real, const FULL: bool>(p: *mut T, v: &[T; W], n: usize) {
    if FULL {
        *(p as *mut [T; W]) = *v;
    } else {
        std::ptr::copy_nonoverlapping(v.as_ptr(), p, n);
    }
}

/// A dense row-major operand: origin and leading dimension.
#[derive(Clone, Copy)]
struct Mat<T> {
    p: *const T,
    ld: usize,
}

/// Rows `[0, MR)` x columns `[0, n)` (n <= W, n == W when FULL) of C (+)= op(A) B over k, where
/// op(A) row r is `a[r][t]`, or `a[t][r]` with TA (A stored transposed).
#[inline(always)]
#[allow(clippy::too_many_arguments)]
unsafe fn tile<T: Real, const MR: usize, const TA: bool, const FULL: bool>(
    c: *mut T,
    ldc: usize,
    a: Mat<T>,
    b: Mat<T>,
    k: usize,
    n: usize,
    acc: bool,
) {
    let mut cr = [[T::ZERO; W]; MR];
    if acc {
        for (r, row) in cr.iter_mut().enumerate() {
            *row = load::<T, FULL>(c.add(r * ldc), n);
        }
    }
    for t in 0..k {
        let bv = load::<T, FULL>(b.p.add(t * b.ld), n);
        for (r, row) in cr.iter_mut().enumerate() {
            let av = if TA { *a.p.add(t * a.ld + r) } else { *a.p.add(r * a.ld + t) };
            for l in 0..W {
                row[l] = T::madd(av, bv[l], row[l]);
            }
        }
    }
    for (r, row) in cr.iter().enumerate() {
        store::<T, FULL>(c.add(r * ldc), row, n);
    }
}

/// MR rows of C (all n columns): full 16-column tiles, then one partial tile.
#[inline(always)]
#[allow(clippy::too_many_arguments)]
unsafe fn rows<T: Real, const MR: usize, const TA: bool>(
    c: *mut T,
    ldc: usize,
    a: Mat<T>,
    b: Mat<T>,
    n: usize,
    k: usize,
    acc: bool,
) {
    let mut col = 0;
    while col + W <= n {
        tile::<T, MR, TA, true>(c.add(col), ldc, a, Mat { p: b.p.add(col), ld: b.ld }, k, W, acc);
        col += W;
    }
    if col < n {
        tile::<T, MR, TA, false>(c.add(col), ldc, a, Mat { p: b.p.add(col), ld: b.ld }, k, n - col, acc);
    }
}

unsafe fn rows_n<T: Real, const MR: usize>(c: *mut T, ldc: usize, a: Mat<T>, b: Mat<T>, n: usize, k: usize, acc: bool) {
    rows::<T, MR, false>(c, ldc, a, b, n, k, acc)
}

unsafe fn rows_t<T: Real, const MR: usize>(c: *mut T, ldc: usize, a: Mat<T>, b: Mat<T>, n: usize, k: usize, acc: bool) {
    rows::<T, MR, true>(c, ldc, a, b, n, k, acc)
}

/// C (m x n, ld ldc) = (acc ? C : 0) + op(A) B; op(A) = A (m x k) or, with `ta`, the transpose
/// of A (k x m); B is k x n.
#[allow(clippy::too_many_arguments)]
unsafe fn mm<T: Real>(c: *mut T, ldc: usize, a: Mat<T>, b: Mat<T>, m: usize, n: usize, k: usize, ta: bool, acc: bool) {
    let step = T::TILE_ROWS;
    for i in (0..m).step_by(step) {
        let ci = c.add(i * ldc);
        let mr = (m - i).min(step);
        if ta {
            let ai = Mat { p: a.p.add(i), ld: a.ld };
            with_rows!(mr, rows_t, ci, ldc, ai, b, n, k, acc);
        } else {
            let ai = Mat { p: a.p.add(i * a.ld), ld: a.ld };
            with_rows!(mr, rows_n, ci, ldc, ai, b, n, k, acc);
        }
    }
}

/// `p[j] = exp(p[j] - shift)` for j < p.len() (p[j] - shift <= 0 or NaN); returns the sum.
/// Two simple loops (the row is in L1): the exponentials vectorise best on their own, the sum
/// keeps 8 partial sums.
fn exp_row<T: Real>(p: &mut [T], shift: T) -> T {
    for x in p.iter_mut() {
        *x = (*x - shift).exp_neg();
    }
    let mut sum = [T::ZERO; 8];
    let (chunks, rest) = p.as_chunks::<8>();
    for ch in chunks {
        for l in 0..8 {
            sum[l] = sum[l] + ch[l];
        }
    }
    let total = ((sum[0] + sum[4]) + (sum[1] + sum[5])) + ((sum[2] + sum[6]) + (sum[3] + sum[7]));
    rest.iter().fold(total, |t, &x| t + x)
}

/// The largest element of the row, NaN ignored (a NaN shows up through the sum of exp_row);
/// -inf for an empty row. 8 partial maxima so the loop vectorises.
fn row_max<T: Real>(row: &[T]) -> T {
    let max = |m: T, x: T| if x > m { x } else { m };
    let mut mx = [T::NEG_INF; 8];
    let (chunks, rest) = row.as_chunks::<8>();
    for ch in chunks {
        for l in 0..8 {
            mx[l] = max(mx[l], ch[l]);
        }
    }
    mx.into_iter().chain(rest.iter().copied()).fold(T::NEG_INF, max)
}

/// Per-head scratch, carved out of one allocation.
struct Scratch<'a, T> {
    kt: &'a mut [T],  // d x BC: a key block transposed
    vt: &'a mut [T],  // dv x BC: a value block transposed
    s: &'a mut [T],   // BR x BC: scores / probabilities / dS
    dp: &'a mut [T],  // BR x BC: dP
    o: &'a mut [T],   // BR x dv: output accumulator of pass 1
    m: &'a mut [T],   // BR
    l: &'a mut [T],   // BR
    lse: &'a mut [T], // lq: log-sum-exp of every query row of the head
    dd: &'a mut [T],  // lq: D of every query row
}

impl<'a, T: Real> Scratch<'a, T> {
    /// Elements of the scratch (the size check bounds d, dv and lq, so this cannot overflow;
    /// checked anyway, None -> AXIOM_ERR_NOMEM).
    fn len(p: &Problem<T>) -> Option<usize> {
        let blocks = (p.d.checked_add(p.dv)?).checked_mul(BC)?;
        blocks.checked_add(2 * BR * BC + 2 * BR)?.checked_add(BR.checked_mul(p.dv)?)?.checked_add(p.lq.checked_mul(2)?)
    }
    fn new(buf: &'a mut [T], p: &Problem<T>) -> Self {
        let (kt, rest) = buf.split_at_mut(p.d * BC);
        let (vt, rest) = rest.split_at_mut(p.dv * BC);
        let (s, rest) = rest.split_at_mut(BR * BC);
        let (dp, rest) = rest.split_at_mut(BR * BC);
        let (o, rest) = rest.split_at_mut(BR * p.dv);
        let (m, rest) = rest.split_at_mut(BR);
        let (l, rest) = rest.split_at_mut(BR);
        let (lse, dd) = rest.split_at_mut(p.lq);
        Scratch { kt, vt, s, dp, o, m, l, lse, dd: &mut dd[..p.lq] }
    }
}

/// The pointers of one head: q (lq x d), k (lk x d), v (lk x dv), g = dO (lq x dv), its mask
/// and its gradients.
struct Head<T> {
    g: *const T,
    q: *const T,
    k: *const T,
    v: *const T,
    mask: *const T,
    gq: *mut T,
    gk: *mut T,
    gv: *mut T,
}

/// kt (rows x BC) = the transpose of rows j0 .. j0 + bc of x (.. x rows)
unsafe fn pack_t<T: Real>(x: *const T, rows: usize, j0: usize, bc: usize, xt: &mut [T]) {
    for j in 0..bc {
        let src = x.add((j0 + j) * rows);
        for t in 0..rows {
            xt[t * BC + j] = *src.add(t);
        }
    }
}

/// S (br x bc, ld BC) = q_blk kt * scale + mask, -inf where key j0 + j is hidden from query i0 + i
#[allow(clippy::too_many_arguments)]
unsafe fn scores<T: Real>(
    p: &Problem<T>,
    h: &Head<T>,
    kt: &[T],
    s: &mut [T],
    br: usize,
    bc: usize,
    i0: usize,
    j0: usize,
) {
    let q = Mat { p: h.q.add(i0 * p.d), ld: p.d };
    mm(s.as_mut_ptr(), BC, q, Mat { p: kt.as_ptr(), ld: BC }, br, bc, p.d, false, false);
    for i in 0..br {
        let row = &mut s[i * BC..i * BC + bc];
        row.iter_mut().for_each(|x| *x = *x * p.scale);
        if !h.mask.is_null() {
            let mp = h.mask.add((i0 + i) * p.ms[2] + j0 * p.ms[3]);
            for (j, x) in row.iter_mut().enumerate() {
                *x = *x + *mp.add(j * p.ms[3]);
            }
        }
        if p.causal {
            // key j0 + j is visible from query i0 + i iff j0 + j < visible(i0 + i)
            let first_hidden = p.visible(i0 + i).saturating_sub(j0).min(bc);
            row[first_hidden..].fill(T::NEG_INF);
        }
    }
}

/// Pass 1 for the query block at i0: row statistics lse and dd; returns whether a row is bad
/// (no visible key or NaN probabilities), marked in `bad`.
unsafe fn row_stats<T: Real>(p: &Problem<T>, h: &Head<T>, ws: &mut Scratch<T>, bad: &mut [bool], i0: usize) -> bool {
    let (lq, dv) = (p.lq, p.dv);
    let br = (lq - i0).min(BR);
    ws.m.fill(T::NEG_INF);
    ws.l.fill(T::ZERO);
    ws.o[..br * dv].fill(T::ZERO);
    let kend = if p.causal { p.visible(i0 + br - 1) } else { p.lk }; // the last key a row of the block sees
    for j0 in (0..kend).step_by(BC) {
        let bc = (kend - j0).min(BC);
        pack_t(h.k, p.d, j0, bc, ws.kt);
        scores(p, h, ws.kt, ws.s, br, bc, i0, j0);
        for i in 0..br {
            let row = &mut ws.s[i * BC..i * BC + bc];
            let mx = row_max(row);
            let m_new = if mx > ws.m[i] { mx } else { ws.m[i] };
            let shift = if m_new == T::NEG_INF { T::ZERO } else { m_new };
            let alpha = T::from_f64((ws.m[i] - shift).to_f64().exp());
            let sum = exp_row(row, shift);
            ws.l[i] = T::madd(ws.l[i], alpha, sum);
            ws.m[i] = m_new;
            ws.o[i * dv..(i + 1) * dv].iter_mut().for_each(|x| *x = *x * alpha);
        }
        let vb = Mat { p: h.v.add(j0 * dv), ld: dv };
        mm(ws.o.as_mut_ptr(), dv, Mat { p: ws.s.as_ptr(), ld: BC }, vb, br, dv, bc, false, true);
    }
    let mut any_bad = false;
    for i in 0..br {
        let l = ws.l[i];
        let gi = slice(h.g.add((i0 + i) * dv), dv);
        let dot = gi.iter().zip(&ws.o[i * dv..(i + 1) * dv]).fold(T::ZERO, |acc, (&g, &o)| T::madd(g, o, acc));
        let is_bad = !(l > T::ZERO);
        bad[i0 + i] = is_bad;
        any_bad |= is_bad;
        ws.lse[i0 + i] = if is_bad { T::ZERO } else { ws.m[i] + T::from_f64(l.to_f64().ln()) };
        ws.dd[i0 + i] = if is_bad { T::ZERO } else { dot / l };
    }
    any_bad
}

/// Pass 2 for one key block and one query block: accumulate gv, gk (of the key block) and gq.
unsafe fn block_grads<T: Real>(p: &Problem<T>, h: &Head<T>, ws: &mut Scratch<T>, bad: &[bool], i0: usize, j0: usize) {
    let (d, dv) = (p.d, p.dv);
    let br = (p.lq - i0).min(BR);
    let bc = (p.lk - j0).min(BC);
    scores(p, h, ws.kt, ws.s, br, bc, i0, j0);
    for i in 0..br {
        let row = &mut ws.s[i * BC..i * BC + bc];
        if bad[i0 + i] {
            row.fill(T::ZERO);
        } else {
            exp_row(row, ws.lse[i0 + i]);
        }
    }
    let gb = Mat { p: h.g.add(i0 * dv), ld: dv };
    let s = Mat { p: ws.s.as_ptr(), ld: BC };
    mm(h.gv.add(j0 * dv), dv, s, gb, bc, dv, br, true, true);
    mm(ws.dp.as_mut_ptr(), BC, gb, Mat { p: ws.vt.as_ptr(), ld: BC }, br, bc, dv, false, false);
    for i in 0..br {
        let di = ws.dd[i0 + i];
        let dp = &ws.dp[i * BC..i * BC + bc];
        for (x, &dpj) in ws.s[i * BC..i * BC + bc].iter_mut().zip(dp) {
            *x = *x * (dpj - di) * p.scale; // dS, in place of P
        }
    }
    let s = Mat { p: ws.s.as_ptr(), ld: BC };
    mm(h.gk.add(j0 * d), d, s, Mat { p: h.q.add(i0 * d), ld: d }, bc, d, br, true, true);
    mm(h.gq.add(i0 * d), d, s, Mat { p: h.k.add(j0 * d), ld: d }, br, d, bc, false, true);
}

/// The gradients of one head.
unsafe fn head<T: Real>(p: &Problem<T>, h: &Head<T>, ws: &mut Scratch<T>, bad: &mut [bool]) {
    let (lq, lk, d, dv) = (p.lq, p.lk, p.d, p.dv);
    let gq = slice_mut(h.gq, lq * d);
    let gk = slice_mut(h.gk, lk * d);
    let gv = slice_mut(h.gv, lk * dv);
    gq.fill(T::ZERO);
    gk.fill(T::ZERO);
    gv.fill(T::ZERO);
    let mut any_bad = false;
    for i0 in (0..lq).step_by(BR) {
        any_bad |= row_stats(p, h, ws, bad, i0);
    }
    let offset = lk as i64 - lq as i64;
    for j0 in (0..lk).step_by(BC) {
        let bc = (lk - j0).min(BC);
        pack_t(h.k, d, j0, bc, ws.kt);
        pack_t(h.v, dv, j0, bc, ws.vt);
        // causal: query block i0 sees key j0 iff j0 <= i0 + br - 1 + offset
        let first = j0 as i64 - offset;
        let istart = if p.causal && first > 0 { first as usize / BR * BR } else { 0 };
        for i0 in (istart..lq).step_by(BR) {
            block_grads(p, h, ws, bad, i0, j0);
        }
    }
    if any_bad {
        let (gq, gk, gv) = (slice_mut(h.gq, lq * d), slice_mut(h.gk, lk * d), slice_mut(h.gv, lk * dv));
        gk.fill(T::NAN);
        gv.fill(T::NAN);
        for (row, &b) in gq.chunks_exact_mut(d.max(1)).zip(bad.iter()) {
            if b {
                row.fill(T::NAN);
            }
        }
    }
}

#[allow(clippy::too_many_arguments)]
unsafe fn backward<T: Real>(
    g: *const T,
    q: *const T,
    k: *const T,
    v: *const T,
    mask: *const T,
    gq: *mut T,
    gk: *mut T,
    gv: *mut T,
    dims: [i64; 6],
    scale: f64,
    causal: c_int,
    ms: [i64; 4],
) -> c_int {
    let elem = std::mem::size_of::<T>() as i64;
    let [_, _, lq, _, d, dv] = dims;
    // scratch: blocks of (d + dv) keys and 2 lq row statistics must be addressable (C's check;
    // negative sizes pass here as huge unsigned values only after nn_numel rejected them)
    let limit = (i64::MAX / 64 / elem) as u64 / 4;
    let scratch_ok = || d as u64 <= limit && dv as u64 <= limit && lq as u64 <= (i64::MAX / elem) as u64 / 4;
    let counts = match check_sizes(dims, causal, !mask.is_null(), ms, elem as usize, scratch_ok) {
        Ok(c) => c,
        Err(rc) => return rc,
    };
    let [nq, nk, nv, no] = counts;
    if (no > 0 && g.is_null())
        || (nq > 0 && (q.is_null() || gq.is_null()))
        || (nk > 0 && (k.is_null() || gk.is_null()))
        || (nv > 0 && (v.is_null() || gv.is_null()))
    {
        return AXIOM_ERR_NULL;
    }
    let nbh = nn_numel(&dims[..2], 1).unwrap_or(0);
    if nbh == 0 {
        return AXIOM_OK;
    }
    let p = super::Problem::new(dims, scale, causal, mask, ms);
    let work = nbh as f64 * p.lq as f64 * p.lk as f64 * (p.d + p.dv) as f64;
    let par = nbh > 1 && work >= PAR_FLOPS;
    let ptrs = [g, q, k, v].map(|x| SendPtr(x as *mut T));
    let grads = [gq, gk, gv].map(SendPtr);
    let failed = AtomicBool::new(false);
    let p = &p;
    let run = |bh: usize| {
        let (ptrs, grads) = (ptrs, grads); // the SendPtrs, not their raw fields
                                           // scratch per head (a few blocks plus 2 lq + lq flags), so a failed allocation skips only its head
        let (Some(mut buf), Some(mut bad)) = (Scratch::len(p).and_then(|n| scratch(n, T::ZERO)), scratch(p.lq, false))
        else {
            failed.store(true, Ordering::Relaxed);
            return;
        };
        let (lq, lk, d, dv) = (p.lq, p.lk, p.d, p.dv);
        let h = Head {
            g: ptrs[0].0.add(bh * lq * dv),
            q: ptrs[1].0.add(bh * lq * d),
            k: ptrs[2].0.add(bh * lk * d),
            v: ptrs[3].0.add(bh * lk * dv),
            mask: p.head_mask(bh),
            gq: grads[0].0.add(bh * lq * d),
            gk: grads[1].0.add(bh * lk * d),
            gv: grads[2].0.add(bh * lk * dv),
        };
        head(p, &h, &mut Scratch::new(&mut buf, p), &mut bad);
    };
    if par {
        parallel_for(nbh, run);
    } else {
        (0..nbh).for_each(run);
    }
    if failed.load(Ordering::Relaxed) {
        AXIOM_ERR_NOMEM
    } else {
        AXIOM_OK
    }
}

export_f32_f64! {
    /// Gradients of `axiom_attention_f32` (see `csrc/axiom_kernels_nn.h`).
    ///
    /// # Safety
    /// Pointers must be valid for the sizes given (the C ABI contract).
    axiom_attention_backward_f32,
    axiom_attention_backward_f64(
        gout: ptr,
        q: ptr,
        k: ptr,
        v: ptr,
        mask: ptr,
        gq: mut_ptr,
        gk: mut_ptr,
        gv: mut_ptr,
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
        let ms = [mask_sb, mask_sh, mask_sq, mask_sk];
        guard(|| backward(gout, q, k, v, mask, gq, gk, gv, dims, scale, causal, ms))
    }
}
