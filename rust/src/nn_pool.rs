//! NHWC max / average / global average pooling and their gradients (mirrors
//! `csrc/nn_pool.c`). Exports `axiom_{max_pool2d,avg_pool2d,global_avg_pool}_f32/_f64` and
//! `axiom_{max_pool2d,avg_pool2d}_backward_f32/_f64`.
//!
//! Channels are contiguous in NHWC, so every kernel vectorises over channels: for each output
//! pixel it walks the window's valid input cells (padding is skipped, never materialised) and
//! combines chunks of up to 64 channels held in a local accumulator. Max pooling: padding never
//! wins (a window of padding only gives -inf), NaN wins. Forward kernels run in parallel over
//! output rows, backward kernels over images (windows overlap, so only images are independent).

use std::os::raw::c_int;

use crate::abi::export_f32_f64;
use crate::abi::{self, SendPtr, AXIOM_ERR_NOMEM, AXIOM_ERR_NULL, AXIOM_ERR_SIZE, AXIOM_OK};
use crate::nn_act::common::{numel, par_ranges, pool_extent, slice, slice_mut, zeroed, PAR_ELEMS};
use crate::nn_act::real::Real;

/// Channels combined per pass over a window.
const CH: usize = 64;
/// Channels per pass of global average pooling (whole 512-byte rows of float32: one
/// streaming pass over an image with c = 128 instead of two strided ones).
const GAP_CH: usize = 128;
/// Rows summed in the element type before adding into the f64 total (global average pooling).
const GAP_ROWS: usize = 128;

/// Pooling geometry (C's `pool_geom`) with the element counts of input and output.
#[derive(Clone, Copy)]
struct Geom {
    n: i64,
    h: i64,
    w: i64,
    c: i64,
    kh: i64,
    kw: i64,
    sh: i64,
    sw: i64,
    pt: i64,
    pl: i64,
    dh: i64,
    dw: i64,
    ho: i64,
    wo: i64,
    nin: usize,
    nout: usize,
}

/// Check sizes and compute the output extent (C's `pool_geometry`): AXIOM_ERR_SIZE on error.
#[allow(clippy::too_many_arguments)]
fn geometry(
    elem: usize,
    (n, h, w, c): (i64, i64, i64, i64),
    (kh, kw): (i64, i64),
    (sh, sw): (i64, i64),
    (pt, pb, pl, pr): (i64, i64, i64, i64),
    (dh, dw): (i64, i64),
) -> Result<Geom, c_int> {
    let ho = pool_extent(h, kh, sh, pt, pb, dh).ok_or(AXIOM_ERR_SIZE)?;
    let wo = pool_extent(w, kw, sw, pl, pr, dw).ok_or(AXIOM_ERR_SIZE)?;
    let nin = numel(&[n, h, w, c], elem).ok_or(AXIOM_ERR_SIZE)?;
    let nout = numel(&[n, ho, wo, c], elem).ok_or(AXIOM_ERR_SIZE)?;
    Ok(Geom { n, h, w, c, kh, kw, sh, sw, pt, pl, dh, dw, ho, wo, nin, nout })
}

/// Valid window taps along one axis: k in [k0, k1) has 0 <= start + k * dil < inp.
fn taps(start: i64, k: i64, dil: i64, inp: i64) -> (i64, i64) {
    // clamped to k: a window entirely in the leading padding has the empty range [k, k)
    let a = if start < 0 { ((-start + dil - 1) / dil).min(k) } else { 0 };
    let mut b = k;
    if start + (k - 1) * dil >= inp {
        // largest k with start + k * dil <= inp - 1
        let last = inp - 1 - start;
        b = if last < 0 { 0 } else { last / dil + 1 };
    }
    (a, b.min(k).max(a))
}

/// The valid taps of the window of output pixel (oh, ow): rows [i0, i1), columns [j0, j1)
/// and the cell (row * w + column) of each.
#[derive(Clone, Copy)]
struct Window {
    ih: i64,
    iw: i64,
    i0: i64,
    i1: i64,
    j0: i64,
    j1: i64,
}

impl Window {
    fn new(g: &Geom, oh: i64, ow: i64) -> Window {
        let (ih, iw) = (oh * g.sh - g.pt, ow * g.sw - g.pl);
        let (i0, i1) = taps(ih, g.kh, g.dh, g.h);
        let (j0, j1) = taps(iw, g.kw, g.dw, g.w);
        Window { ih, iw, i0, i1, j0, j1 }
    }

    fn is_empty(&self) -> bool {
        self.i0 >= self.i1 || self.j0 >= self.j1
    }

    /// Input cells of the taps, row-major window order.
    fn cells<'a>(&'a self, g: &'a Geom) -> impl Iterator<Item = usize> + 'a {
        (self.i0..self.i1).flat_map(move |i| {
            (self.j0..self.j1).map(move |j| ((self.ih + i * g.dh) * g.w + (self.iw + j * g.dw)) as usize)
        })
    }

    /// `f(cell)` for the input cell of every tap, row-major window order (plain loops: the
    /// hot path of the forward kernels).
    #[inline(always)]
    fn for_cells<F: FnMut(usize)>(&self, g: &Geom, mut f: F) {
        for i in self.i0..self.i1 {
            let row = (self.ih + i * g.dh) * g.w + self.iw;
            for j in self.j0..self.j1 {
                f((row + j * g.dw) as usize);
            }
        }
    }

    /// Input cell of tap number `tap` (row-major window order).
    fn cell(&self, g: &Geom, tap: usize) -> usize {
        let nj = (self.j1 - self.j0) as usize;
        let (i, j) = (self.i0 + (tap / nj) as i64, self.j0 + (tap % nj) as i64);
        ((self.ih + i * g.dh) * g.w + (self.iw + j * g.dw)) as usize
    }

    /// Divisor of average pooling.
    fn count<T: Real>(&self, g: &Geom, include_pad: bool) -> T {
        T::from_i64(if include_pad { g.kh * g.kw } else { (self.i1 - self.i0) * (self.j1 - self.j0) })
    }
}

/// Calls `$f::<$generics, W>($args)` with W = the chunk width `$w` when it is 128, 64, 32, 16 or
/// 8, else W = 0 (width known at run time only); the first form calls `$ff` (fixed widths
/// only) for 32, 16 and 8.
macro_rules! by_width {
    ($w:expr, $f:ident, $ff:ident, [$($g:tt)*], ($($arg:expr),*), ($($farg:expr),*)) => {
        match $w {
            64 => $ff::<$($g)* 64>($($farg),*),
            32 => $ff::<$($g)* 32>($($farg),*),
            16 => $ff::<$($g)* 16>($($farg),*),
            8 => $ff::<$($g)* 8>($($farg),*),
            _ => $f::<$($g)* 0>($($arg),*),
        }
    };
    ($w:expr, $f:ident, [$($g:tt)*], ($($arg:expr),*)) => {
        match $w {
            128 => $f::<$($g)* 128>($($arg),*),
            64 => $f::<$($g)* 64>($($arg),*),
            32 => $f::<$($g)* 32>($($arg),*),
            16 => $f::<$($g)* 16>($($arg),*),
            8 => $f::<$($g)* 8>($($arg),*),
            _ => $f::<$($g)* 0>($($arg),*),
        }
    };
}

/// Channels [ch0, ch0 + w) of one output pixel of max (`AVG` = false) or average pooling
/// (w = W, or `wch` when W is 0). Max: the fast maximum (maxNum) loses NaN, so NaN is tracked
/// in one flag; a window that saw NaN is redone with the NaN-propagating maximum.
#[inline(always)]
fn pool_chunk<T: Real, const AVG: bool, const W: usize>(
    img: &[T],
    g: &Geom,
    win: &Window,
    (ch0, wch): (usize, usize),
    out: &mut [T],
    count: T,
) {
    let (w, c) = (if W == 0 { wch } else { W }, g.c as usize);
    let init = if AVG { T::ZERO } else { T::NEG_INF };
    // two accumulators used in turn: `next = max(p, cur)` always stores, where `acc = max(p,
    // acc)` would let LLVM turn the select into a (slow) masked store
    let mut bufs = [[init; CH]; 2];
    let (b0, b1) = bufs.split_at_mut(1);
    let (mut cur, mut next) = (&mut b0[0][..w], &mut b1[0][..w]);
    let mut nan = 0u32;
    win.for_cells(g, |cell| {
        let p = &img[cell * c + ch0..][..w];
        for k in 0..w {
            if AVG {
                cur[k] += p[k];
            } else {
                next[k] = p[k].max_num(cur[k]);
                nan |= p[k].is_nan() as u32;
            }
        }
        if !AVG {
            std::mem::swap(&mut cur, &mut next);
        }
    });
    if !AVG && nan != 0 {
        cur.fill(init);
        win.for_cells(g, |cell| {
            let p = &img[cell * c + ch0..][..w];
            for k in 0..w {
                cur[k] = p[k].max_nan(cur[k]);
            }
        });
    }
    let o = &mut out[ch0..][..w];
    for k in 0..w {
        o[k] = if AVG { cur[k] / count } else { cur[k] };
    }
}

/// Channels [ch0, ch0 + W) of one output pixel, W = 8, 16, 32 or 64: the accumulators are W / 8
/// arrays of 8 lanes indexed by constants only, so LLVM holds them in registers (one vector
/// each) like C's nn_vf accumulators. Max: the fast maximum loses NaN, so the taps are also
/// summed (one add per vector); a window whose sum is not finite (NaN, or an infinity or
/// overflow: rare false alarms) is redone exactly by [`pool_chunk`].
#[inline(always)]
fn pool_chunk_fixed<T: Real, const AVG: bool, const W: usize>(
    img: &[T],
    g: &Geom,
    win: &Window,
    ch0: usize,
    out: &mut [T],
    count: T,
) {
    let c = g.c as usize;
    let init = if AVG { T::ZERO } else { T::NEG_INF };
    let mut acc = [[init; 8]; 8];
    let mut chk = [T::ZERO; 8];
    // plain loops, no closure: the accumulators must stay in this function's registers
    for i in win.i0..win.i1 {
        let row = (win.ih + i * g.dh) * g.w + win.iw;
        for j in win.j0..win.j1 {
            let off = (row + j * g.dw) as usize * c + ch0;
            let p = &img[off..off + W]; // one check per tap, none per lane
            let mut tap_sum = [T::ZERO; 8];
            for v in 0..W / 8 {
                for l in 0..8 {
                    let x = p[v * 8 + l];
                    if AVG {
                        acc[v][l] += x;
                    } else {
                        acc[v][l] = x.max_fast(acc[v][l]);
                        tap_sum[l] += x; // NaN (or inf: a false alarm) if an x is
                    }
                }
            }
            if !AVG {
                for l in 0..8 {
                    chk[l] += tap_sum[l];
                }
            }
        }
    }
    if !AVG && !chk.iter().all(|&v| v.is_finite()) {
        pool_chunk::<T, false, W>(img, g, win, (ch0, W), out, count);
        return;
    }
    let o = &mut out[ch0..][..W];
    for v in 0..W / 8 {
        for l in 0..8 {
            o[v * 8 + l] = if AVG { acc[v][l] / count } else { acc[v][l] };
        }
    }
}

/// One output pixel of max (`AVG` = false) or average pooling over image `img` (h * w * c):
/// chunks of 64 (average) or 32 (max) channels, then the rest.
#[inline(always)]
fn pool_pixel<T: Real, const AVG: bool>(img: &[T], g: &Geom, win: &Window, out: &mut [T], include_pad: bool) {
    let count: T = win.count(g, include_pad);
    let c = g.c as usize;
    let mut ch0 = 0;
    while ch0 + 64 <= c {
        pool_chunk_fixed::<T, AVG, 64>(img, g, win, ch0, out, count);
        ch0 += 64;
    }
    while ch0 + 32 <= c {
        pool_chunk_fixed::<T, AVG, 32>(img, g, win, ch0, out, count);
        ch0 += 32;
    }
    if ch0 < c {
        let chunk = (ch0, c - ch0);
        by_width!(
            chunk.1,
            pool_chunk,
            pool_chunk_fixed,
            [T, AVG,],
            (img, g, win, chunk, out, count),
            (img, g, win, ch0, out, count)
        );
    }
}

/// Forward pooling over all output rows, in parallel above C's thresholds.
unsafe fn pool_run<T: Real, const AVG: bool>(x: *const T, y: *mut T, g: &Geom, include_pad: bool) -> c_int {
    let (ho, wo, c) = (g.ho as usize, g.wo as usize, g.c as usize);
    let rows = g.n as usize * ho;
    let work = g.nout.saturating_mul((g.kh * g.kw) as usize);
    let par = rows > 1 && (g.nin >= PAR_ELEMS || work >= PAR_ELEMS);
    let img_len = (g.h * g.w) as usize * c;
    let (xp, yp) = (SendPtr(x as *mut T), SendPtr(y));
    // the column taps of every output column, computed once
    let Some(mut cols) = zeroed::<(i64, i64, i64)>(wo) else {
        return AXIOM_ERR_NOMEM;
    };
    for (ow, col) in cols.iter_mut().enumerate() {
        let win = Window::new(g, 0, ow as i64);
        *col = (win.iw, win.j0, win.j1);
    }
    let cols = &cols;
    par_ranges(rows, par, 1, |lo, hi| {
        let (xp, yp) = (xp, yp);
        let out = slice_mut(yp.0.add(lo * wo * c), (hi - lo) * wo * c);
        for t in lo..hi {
            let (b, oh) = (t / ho, t % ho);
            let img = slice(xp.0.add(b * img_len), img_len);
            let row = Window::new(g, oh as i64, 0);
            for (ow, &(iw, j0, j1)) in cols.iter().enumerate() {
                let win = Window { iw, j0, j1, ..row };
                let o = &mut out[((t - lo) * wo + ow) * c..][..c];
                pool_pixel::<T, AVG>(img, g, &win, o, include_pad);
            }
        }
    });
    AXIOM_OK
}

#[allow(clippy::too_many_arguments)]
unsafe fn max_pool2d<T: Real>(
    x: *const T,
    y: *mut T,
    dims: (i64, i64, i64, i64),
    k: (i64, i64),
    s: (i64, i64),
    pad: (i64, i64, i64, i64),
    dil: (i64, i64),
) -> c_int {
    let g = match geometry(std::mem::size_of::<T>(), dims, k, s, pad, dil) {
        Ok(g) => g,
        Err(rc) => return rc,
    };
    if (g.nin > 0 && x.is_null()) || (g.nout > 0 && y.is_null()) {
        return AXIOM_ERR_NULL;
    }
    if g.nout == 0 {
        return AXIOM_OK;
    }
    pool_run::<T, false>(x, y, &g, false)
}

unsafe fn avg_pool2d<T: Real>(
    x: *const T,
    y: *mut T,
    dims: (i64, i64, i64, i64),
    k: (i64, i64),
    s: (i64, i64),
    pad: (i64, i64, i64, i64),
    include_pad: c_int,
) -> c_int {
    let g = match geometry(std::mem::size_of::<T>(), dims, k, s, pad, (1, 1)) {
        Ok(g) => g,
        Err(rc) => return rc,
    };
    if include_pad != 0 && include_pad != 1 {
        return AXIOM_ERR_SIZE;
    }
    if (g.nin > 0 && x.is_null()) || (g.nout > 0 && y.is_null()) {
        return AXIOM_ERR_NULL;
    }
    if g.nout == 0 {
        return AXIOM_OK;
    }
    pool_run::<T, true>(x, y, &g, include_pad == 1)
}

/// Channels [ch0, ch0 + w) of one image xb (hw x c) averaged into out (w = W, or `wch` when
/// W is 0): blocks of GAP_ROWS rows are summed in T, the blocks in f64.
#[inline(always)]
fn gap_chunk<T: Real, const W: usize>(xb: &[T], c: usize, ch0: usize, wch: usize, out: &mut [T]) {
    let w = if W == 0 { wch } else { W };
    let hw = xb.len() / c;
    let mut total = [0.0f64; GAP_CH];
    for r0 in (0..hw).step_by(GAP_ROWS) {
        let mut s = [T::ZERO; GAP_CH];
        for r in r0..(r0 + GAP_ROWS).min(hw) {
            let p = &xb[r * c + ch0..][..w];
            for k in 0..w {
                s[k] += p[k];
            }
        }
        for k in 0..w {
            total[k] += s[k].to_f64();
        }
    }
    for k in 0..w {
        out[k] = T::from_f64(total[k] / hw as f64);
    }
}

unsafe fn global_avg_pool<T: Real>(x: *const T, y: *mut T, n: i64, hw: i64, c: i64) -> c_int {
    let elem = std::mem::size_of::<T>();
    let (Some(nin), Some(nout)) = (numel(&[n, hw, c], elem), numel(&[n, c], elem)) else {
        return AXIOM_ERR_SIZE;
    };
    if (nin > 0 && x.is_null()) || (nout > 0 && y.is_null()) {
        return AXIOM_ERR_NULL;
    }
    if nout == 0 {
        return AXIOM_OK;
    }
    if hw == 0 {
        slice_mut(y, nout).fill(T::NAN);
        return AXIOM_OK;
    }
    let (hw, c) = (hw as usize, c as usize);
    let chunks = c.div_ceil(GAP_CH);
    let tasks = n as usize * chunks;
    let (xp, yp) = (SendPtr(x as *mut T), SendPtr(y));
    par_ranges(tasks, tasks > 1 && nin >= PAR_ELEMS, 1, |lo, hi| {
        let (xp, yp) = (xp, yp);
        for t in lo..hi {
            let (b, ch0) = (t / chunks, (t % chunks) * GAP_CH);
            let wch = GAP_CH.min(c - ch0);
            let xb = slice(xp.0.add(b * hw * c), hw * c);
            let out = slice_mut(yp.0.add(b * c + ch0), wch);
            by_width!(wch, gap_chunk, [T,], (xb, c, ch0, wch, out));
        }
    });
    AXIOM_OK
}

/// Run `body(b)` for every image, in parallel above C's thresholds.
fn per_image<F: Fn(usize) + Sync>(g: &Geom, body: F) {
    let work = g.nout.saturating_mul((g.kh * g.kw) as usize);
    let par = g.n > 1 && (g.nin >= PAR_ELEMS || work >= PAR_ELEMS);
    par_ranges(g.n as usize, par, 1, |lo, hi| (lo..hi).for_each(&body));
}

/// dx of one image: each dy goes to the first maximum of its window (a NaN takes over, so the
/// last NaN if any, like C and PyTorch); windows of padding only pass nothing.
fn max_backward_image<T: Real>(img: &[T], gout: &[T], dimg: &mut [T], g: &Geom) {
    let (c, wo) = (g.c as usize, g.wo as usize);
    dimg.fill(T::ZERO);
    for oh in 0..g.ho {
        for ow in 0..g.wo {
            let win = Window::new(g, oh, ow);
            if win.is_empty() {
                continue; // padding only: no input receives this gradient
            }
            let go = &gout[(oh as usize * wo + ow as usize) * c..][..c];
            for ch0 in (0..c).step_by(CH) {
                let wch = CH.min(c - ch0);
                let mut best = [T::NEG_INF; CH];
                let mut arg = [0usize; CH];
                for (tap, cell) in win.cells(g).enumerate() {
                    let p = &img[cell * c + ch0..][..wch];
                    for k in 0..wch {
                        // like PyTorch: a larger value or any NaN takes over
                        if p[k] > best[k] || p[k].is_nan() {
                            best[k] = p[k];
                            arg[k] = tap;
                        }
                    }
                }
                for k in 0..wch {
                    dimg[win.cell(g, arg[k]) * c + ch0 + k] += go[ch0 + k];
                }
            }
        }
    }
}

/// dx of one image of average pooling: each dy / count goes to every input cell of its window.
fn avg_backward_image<T: Real>(gout: &[T], dimg: &mut [T], g: &Geom, include_pad: bool) {
    let (c, wo) = (g.c as usize, g.wo as usize);
    dimg.fill(T::ZERO);
    for oh in 0..g.ho {
        for ow in 0..g.wo {
            let win = Window::new(g, oh, ow);
            let count: T = win.count(g, include_pad);
            let go = &gout[(oh as usize * wo + ow as usize) * c..][..c];
            for cell in win.cells(g) {
                dimg[cell * c..][..c].iter_mut().zip(go).for_each(|(d, &v)| *d += v / count);
            }
        }
    }
}

#[allow(clippy::too_many_arguments)]
unsafe fn max_pool2d_backward<T: Real>(
    x: *const T,
    dy: *const T,
    dx: *mut T,
    dims: (i64, i64, i64, i64),
    k: (i64, i64),
    s: (i64, i64),
    pad: (i64, i64, i64, i64),
    dil: (i64, i64),
) -> c_int {
    let g = match geometry(std::mem::size_of::<T>(), dims, k, s, pad, dil) {
        Ok(g) => g,
        Err(rc) => return rc,
    };
    if (g.nin > 0 && (x.is_null() || dx.is_null())) || (g.nout > 0 && dy.is_null()) {
        return AXIOM_ERR_NULL;
    }
    if g.nin == 0 {
        return AXIOM_OK;
    }
    let (img_len, out_len) = (g.nin / g.n as usize, g.nout / g.n as usize);
    let (xp, gp, dp) = (SendPtr(x as *mut T), SendPtr(dy as *mut T), SendPtr(dx));
    per_image(&g, |b| {
        let (xp, gp, dp) = (xp, gp, dp);
        let (img, gout) = (slice(xp.0.add(b * img_len), img_len), slice(gp.0.add(b * out_len), out_len));
        max_backward_image(img, gout, slice_mut(dp.0.add(b * img_len), img_len), &g);
    });
    AXIOM_OK
}

unsafe fn avg_pool2d_backward<T: Real>(
    dy: *const T,
    dx: *mut T,
    dims: (i64, i64, i64, i64),
    k: (i64, i64),
    s: (i64, i64),
    pad: (i64, i64, i64, i64),
    include_pad: c_int,
) -> c_int {
    let g = match geometry(std::mem::size_of::<T>(), dims, k, s, pad, (1, 1)) {
        Ok(g) => g,
        Err(rc) => return rc,
    };
    if include_pad != 0 && include_pad != 1 {
        return AXIOM_ERR_SIZE;
    }
    if (g.nin > 0 && dx.is_null()) || (g.nout > 0 && dy.is_null()) {
        return AXIOM_ERR_NULL;
    }
    if g.nin == 0 {
        return AXIOM_OK;
    }
    let (img_len, out_len) = (g.nin / g.n as usize, g.nout / g.n as usize);
    let (gp, dp) = (SendPtr(dy as *mut T), SendPtr(dx));
    per_image(&g, |b| {
        let (gp, dp) = (gp, dp);
        let gout = slice(gp.0.add(b * out_len), out_len);
        avg_backward_image(gout, slice_mut(dp.0.add(b * img_len), img_len), &g, include_pad == 1);
    });
    AXIOM_OK
}

export_f32_f64! {
    /// Max pooling of x (n, h, w, c) into y (n, ho, wo, c); see `csrc/axiom_kernels_nn.h`.
    ///
    /// # Safety
    /// x and y point to their arrays (NULL only when empty).
    axiom_max_pool2d_f32,
    axiom_max_pool2d_f64(
        x: ptr,
        y: mut_ptr,
        n: i64,
        h: i64,
        w: i64,
        c: i64,
        kh: i64,
        kw: i64,
        sh: i64,
        sw: i64,
        pt: i64,
        pb: i64,
        pl: i64,
        pr: i64,
        dh: i64,
        dw: i64,
    ) {
        abi::guard(|| max_pool2d(x, y, (n, h, w, c), (kh, kw), (sh, sw), (pt, pb, pl, pr), (dh, dw)))
    }
}

export_f32_f64! {
    /// Average pooling of x (n, h, w, c) into y (n, ho, wo, c); count_include_pad 0 or 1.
    ///
    /// # Safety
    /// x and y point to their arrays (NULL only when empty).
    axiom_avg_pool2d_f32,
    axiom_avg_pool2d_f64(
        x: ptr,
        y: mut_ptr,
        n: i64,
        h: i64,
        w: i64,
        c: i64,
        kh: i64,
        kw: i64,
        sh: i64,
        sw: i64,
        pt: i64,
        pb: i64,
        pl: i64,
        pr: i64,
        count_include_pad: c_int,
    ) {
        abi::guard(|| avg_pool2d(x, y, (n, h, w, c), (kh, kw), (sh, sw), (pt, pb, pl, pr), count_include_pad))
    }
}

export_f32_f64! {
    /// y[i, ch] = mean over hw of x[i, :, ch] for x (n, hw, c); hw == 0 gives NaN.
    ///
    /// # Safety
    /// x and y point to their arrays (NULL only when empty).
    axiom_global_avg_pool_f32, axiom_global_avg_pool_f64(x: ptr, y: mut_ptr, n: i64, hw: i64, c: i64) {
        abi::guard(|| global_avg_pool(x, y, n, hw, c))
    }
}

export_f32_f64! {
    /// dx (n, h, w, c) of max pooling from x and dy (n, ho, wo, c).
    ///
    /// # Safety
    /// x, dy, dx point to their arrays (NULL only when empty); dx overlaps neither.
    axiom_max_pool2d_backward_f32,
    axiom_max_pool2d_backward_f64(
        x: ptr,
        dy: ptr,
        dx: mut_ptr,
        n: i64,
        h: i64,
        w: i64,
        c: i64,
        kh: i64,
        kw: i64,
        sh: i64,
        sw: i64,
        pt: i64,
        pb: i64,
        pl: i64,
        pr: i64,
        dh: i64,
        dw: i64,
    ) {
        abi::guard(|| max_pool2d_backward(x, dy, dx, (n, h, w, c), (kh, kw), (sh, sw), (pt, pb, pl, pr), (dh, dw)))
    }
}

export_f32_f64! {
    /// dx (n, h, w, c) of average pooling from dy (n, ho, wo, c).
    ///
    /// # Safety
    /// dy and dx point to their arrays (NULL only when empty), not overlapping.
    axiom_avg_pool2d_backward_f32,
    axiom_avg_pool2d_backward_f64(
        dy: ptr,
        dx: mut_ptr,
        n: i64,
        h: i64,
        w: i64,
        c: i64,
        kh: i64,
        kw: i64,
        sh: i64,
        sw: i64,
        pt: i64,
        pb: i64,
        pl: i64,
        pr: i64,
        count_include_pad: c_int,
    ) {
        abi::guard(|| avg_pool2d_backward(dy, dx, (n, h, w, c), (kh, kw), (sh, sw), (pt, pb, pl, pr), count_include_pad))
    }
}
