//! Convolution gradients (mirrors the weight- and input-gradient parts of `csrc/conv_impl.h`).

use super::forward::{forward, image, koff_table, pixel_rows};
use super::{par_try, Dims, Shared};
use crate::gemm::driver::{driver, threads_for, ASrc, Gemm};
use crate::gemm::scratch::{self, NoMem, SLOT_COLS, SLOT_PAD, SLOT_ROWS, SLOT_TAPS, SLOT_W};
use crate::gemm::simd::Elem;

/// An output array of `len` elements as a slice (NULL only when empty).
unsafe fn out<'a, T>(p: *mut T, len: isize) -> &'a mut [T] {
    if len == 0 {
        return &mut [];
    }
    std::slice::from_raw_parts_mut(p, len as usize)
}

/// dbias[c] = sum of dy over every pixel, accumulated in f64 like C.
unsafe fn bias_grad<T: Elem>(d: &Dims, dy: *const T, dbias: *mut T) -> Result<(), NoMem> {
    let cout = d.cout as usize;
    let mut acc: Vec<f64> = Vec::new();
    acc.try_reserve_exact(cout).map_err(|_| NoMem)?;
    acc.resize(cout, 0.0);
    for r in 0..(d.ny / d.cout) {
        let g = std::slice::from_raw_parts(dy.offset(r * d.cout), cout);
        for (a, &v) in acc.iter_mut().zip(g) {
            *a += v.to_f64();
        }
    }
    for (o, &a) in out(dbias, d.cout).iter_mut().zip(&acc) {
        *o = T::from_f64(a);
    }
    Ok(())
}

/// dw (+)= gradient contribution of images [i0, i1); dw is overwritten first unless `accumulate`.
#[allow(clippy::too_many_arguments)]
unsafe fn weight_grad_images<T: Elem>(
    d: &Dims,
    x: *const T,
    dy: *const T,
    dw: *mut T,
    i0: isize,
    i1: isize,
    koff: *const isize,
    accumulate: bool,
    threads: usize,
) -> Result<(), NoMem> {
    let m = d.ho * d.wo;
    let ysz = m * d.cout;
    let wp = d.row_len();
    if d.cin_g == 1 && d.cout_g == 1 {
        // depthwise: direct
        let c_all = d.cin;
        if !accumulate {
            out(dw, d.nwt).fill(T::ZERO);
        }
        for img in i0..i1 {
            let xi = image(d, x, img)?;
            let dyi = dy.offset(img * ysz);
            for oh in 0..d.ho {
                for ow in 0..d.wo {
                    let g = std::slice::from_raw_parts(dyi.offset((oh * d.wo + ow) * c_all), c_all as usize);
                    let base = xi.offset((oh * d.sh * wp + ow * d.sw) * c_all);
                    for i in 0..d.kh {
                        for j in 0..d.kw {
                            let xs = std::slice::from_raw_parts(
                                base.offset((i * d.dh * wp + j * d.dw) * c_all),
                                c_all as usize,
                            );
                            let t = out(dw.offset((i * d.kw + j) * c_all), c_all);
                            for ((t, &xv), &gv) in t.iter_mut().zip(xs).zip(g) {
                                *t += xv * gv;
                            }
                        }
                    }
                }
            }
        }
        return Ok(());
    }
    let pix = scratch::get::<isize>(SLOT_ROWS, m as usize)?;
    let taps = scratch::get::<*const T>(SLOT_TAPS, d.k as usize)?;
    let mut t = pix;
    for oh in 0..d.ho {
        for ow in 0..d.wo {
            *t = (oh * d.sh * wp + ow * d.sw) * d.cin;
            t = t.add(1);
        }
    }
    for img in i0..i1 {
        let xi = image(d, x, img)?;
        let beta = if accumulate || img > i0 { T::ONE } else { T::ZERO };
        for g in 0..d.groups {
            for p in 0..d.k {
                *taps.offset(p) = xi.offset(*koff.offset(g * d.k + p));
            }
            let a = ASrc::Gather { rows: taps, koff: pix };
            let (dyg, dwg) = (dy.offset(img * ysz + g * d.cout_g), dw.offset(g * d.cout_g));
            let (cout, cout_g) = (d.cout as usize, d.cout_g as usize);
            let gemm = Gemm { beta, ..Gemm::product(d.k as usize, cout_g, m as usize, a, dyg, cout, dwg, cout) };
            driver(&gemm, threads)?;
        }
    }
    Ok(())
}

/// dw and (when not NULL) dbias for validated dims.
pub unsafe fn weight<T: Elem>(d: &Dims, x: *const T, dy: *const T, dw: *mut T, dbias: *mut T) -> Result<(), NoMem> {
    if !dbias.is_null() && d.cout > 0 {
        bias_grad(d, dy, dbias)?;
    }
    if d.nwt == 0 {
        return Ok(());
    }
    if d.ny == 0 {
        out(dw, d.nwt).fill(T::ZERO);
        return Ok(());
    }
    let threads = threads_for(2.0 * d.ny as f64 * d.k as f64);
    if d.kh == 1 && d.kw == 1 && d.sh == 1 && d.sw == 1 && !d.padded {
        // 1x1: dw_g = x_g^T @ dy_g over all pixels of all images
        for g in 0..d.groups {
            let a = ASrc::Dense { a: x.offset(g * d.cin_g), lda: d.cin as usize, trans: true };
            let (dyg, dwg) = (dy.offset(g * d.cout_g), dw.offset(g * d.cout_g));
            let (k, cout, cout_g) = ((d.n * d.h * d.w) as usize, d.cout as usize, d.cout_g as usize);
            let gemm = Gemm::product(d.cin_g as usize, cout_g, k, a, dyg, cout, dwg, cout);
            driver(&gemm, threads)?;
        }
        return Ok(());
    }
    let koff: *const isize = koff_table(d)?;
    if threads > 1 && d.n >= threads as isize {
        // images split into one chunk per thread (n >= threads), one partial dw each, summed at the end
        let chunks = threads;
        let nwt = d.nwt as usize;
        let mut part: Vec<T> = Vec::new();
        part.try_reserve_exact(chunks * nwt).map_err(|_| NoMem)?;
        part.resize(chunks * nwt, T::ZERO);
        let shared = Shared((x, dy, part.as_mut_ptr(), koff));
        par_try(chunks, |t| {
            let (x, dy, part, koff) = shared.get();
            let nt = chunks as isize;
            let (i0, i1) = (d.n * t as isize / nt, d.n * (t as isize + 1) / nt);
            weight_grad_images(d, x, dy, part.add(t * nwt), i0, i1, koff, false, 1)
        })?;
        let dw = out(dw, d.nwt);
        dw.copy_from_slice(&part[..nwt]);
        for u in 1..chunks {
            for (o, &p) in dw.iter_mut().zip(&part[u * nwt..(u + 1) * nwt]) {
                *o += p;
            }
        }
        return Ok(());
    }
    weight_grad_images(d, x, dy, dw, 0, d.n, koff, false, threads)
}

/// Stride 1: dx = conv(dy, flipped transposed w) with padding dilation * (k - 1) - pad.
unsafe fn input_stride1<T: Elem>(d: &Dims, dy: *const T, w: *const T, dx: *mut T) -> Result<(), NoMem> {
    let mut e = *d;
    (e.h, e.w, e.cin, e.cout, e.ho, e.wo) = (d.ho, d.wo, d.cout, d.cin, d.h, d.w);
    e.pt = d.dh * (d.kh - 1) - d.pt;
    e.pb = d.dh * (d.kh - 1) - d.pb;
    e.pl = d.dw * (d.kw - 1) - d.pl;
    e.pr = d.dw * (d.kw - 1) - d.pr;
    (e.cin_g, e.cout_g, e.k) = (d.cout_g, d.cin_g, d.kh * d.kw * d.cout_g);
    (e.hp, e.wp) = (e.h + e.pt + e.pb, e.w + e.pl + e.pr);
    (e.nx, e.ny) = (d.ny, d.nx);
    e.padded = e.pt != 0 || e.pb != 0 || e.pl != 0 || e.pr != 0;
    let wt = scratch::get::<T>(SLOT_W, d.nwt as usize)?;
    for i in 0..d.kh {
        for j in 0..d.kw {
            let src = w.offset(((d.kh - 1 - i) * d.kw + (d.kw - 1 - j)) * d.cin_g * d.cout);
            let dst = wt.offset((i * d.kw + j) * d.cout_g * d.cin);
            for g in 0..d.groups {
                for ci in 0..d.cin_g {
                    let s = src.offset(ci * d.cout + g * d.cout_g);
                    for co in 0..d.cout_g {
                        *dst.offset(co * d.cin + g * d.cin_g + ci) = *s.offset(co);
                    }
                }
            }
        }
    }
    forward(&e, dy, wt, std::ptr::null(), dx)
}

/// Any stride, one image: cols = dy_img @ W_g^T in row chunks, scatter-added (col2im) into the
/// (padded) image, then cropped into dx.
unsafe fn input_image<T: Elem>(
    d: &Dims,
    dy: *const T,
    w: *const T,
    dx: *mut T,
    img: isize,
    koff: *const isize,
) -> Result<(), NoMem> {
    let (m, cin, k) = (d.ho * d.wo, d.cin, d.k);
    let xsz = d.h * d.w * cin;
    let target = if d.padded {
        let t = scratch::get::<T>(SLOT_PAD, (d.hp * d.wp * cin) as usize)?;
        out(t, d.hp * d.wp * cin).fill(T::ZERO);
        t
    } else {
        out(dx.offset(img * xsz), xsz).fill(T::ZERO);
        dx.offset(img * xsz)
    };
    let rows = scratch::get::<*const T>(SLOT_ROWS, m as usize)?;
    let chunk = ((262144 / std::mem::size_of::<T>()) as isize / k.max(1)).clamp(1, m.max(1));
    let cols = scratch::get::<T>(SLOT_COLS, (chunk * k) as usize)?;
    pixel_rows(d, target, rows);
    let dyi = dy.offset(img * m * d.cout);
    for g in 0..d.groups {
        let ko = koff.offset(g * k);
        for m0 in (0..m).step_by(chunk as usize) {
            let mc = (m - m0).min(chunk);
            // cols (mc x k) = dy rows @ W_g^T: W_g element (co, tap) = w[tap * cout + co]
            let a = ASrc::Dense { a: dyi.offset(m0 * d.cout + g * d.cout_g), lda: d.cout as usize, trans: false };
            let (wg, cout) = (w.offset(g * d.cout_g), d.cout as usize);
            let gemm = Gemm {
                transb: true,
                ..Gemm::product(mc as usize, k as usize, d.cout_g as usize, a, wg, cout, cols, k as usize)
            };
            driver(&gemm, 1)?;
            for r in 0..mc {
                let base = *rows.offset(m0 + r) as *mut T;
                let src = cols.offset(r * k);
                for t in 0..d.kh * d.kw {
                    let dst = out(base.offset(*ko.offset(t * d.cin_g)), d.cin_g);
                    let s = std::slice::from_raw_parts(src.offset(t * d.cin_g), d.cin_g as usize);
                    for (o, &v) in dst.iter_mut().zip(s) {
                        *o += v;
                    }
                }
            }
        }
    }
    if d.padded {
        // crop
        let o = dx.offset(img * xsz);
        for i in 0..d.h {
            let s = target.offset(((i + d.pt) * d.wp + d.pl) * cin);
            std::ptr::copy_nonoverlapping(s, o.offset(i * d.w * cin), (d.w * cin) as usize);
        }
    }
    Ok(())
}

/// dx for validated dims.
pub unsafe fn input<T: Elem>(d: &Dims, dy: *const T, w: *const T, dx: *mut T) -> Result<(), NoMem> {
    if d.nx == 0 {
        return Ok(());
    }
    if d.ny == 0 || d.k == 0 || d.cout_g == 0 {
        out(dx, d.nx).fill(T::ZERO);
        return Ok(());
    }
    // stride 1: a forward convolution, unless it would have too few output channels to fill the tiles
    if d.sh == 1 && d.sw == 1 && (d.cin_g >= 32 || (d.cin_g == 1 && d.cout_g == 1)) {
        return input_stride1(d, dy, w, dx);
    }
    let koff: *const isize = koff_table(d)?;
    let threads = threads_for(2.0 * d.ny as f64 * d.k as f64);
    if threads <= 1 {
        for img in 0..d.n {
            input_image(d, dy, w, dx, img, koff)?;
        }
        return Ok(());
    }
    let shared = Shared((dy, w, dx, koff));
    par_try(d.n as usize, |img| {
        let (dy, w, dx, koff) = shared.get();
        input_image(d, dy, w, dx, img as isize, koff)
    })
}
