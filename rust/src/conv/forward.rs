//! Forward convolution (mirrors `conv_forward` and its helpers in `csrc/conv_impl.h`), and
//! the image helpers the backward kernels share: padding, row and offset tables.

use super::{par_try, Dims, Shared};
use crate::gemm::driver::{driver, threads_for, ASrc, Gemm};
use crate::gemm::scratch::{self, NoMem, SLOT_KOFF, SLOT_PAD, SLOT_ROWS};
use crate::gemm::simd::Elem;

/// Offsets of the kh * kw * cin_g taps of every group (entry g * k + (i * kw + j) * cin_g + c)
/// in an image of row length `wp` and pixel stride cin.
pub unsafe fn tap_offsets(d: &Dims, wp: isize, koff: *mut isize) {
    let mut t = koff;
    for g in 0..d.groups {
        for i in 0..d.kh {
            for j in 0..d.kw {
                let base = (i * d.dh * wp + j * d.dw) * d.cin + g * d.cin_g;
                for c in 0..d.cin_g {
                    *t = base + c;
                    t = t.add(1);
                }
            }
        }
    }
}

/// The offset table of `d` in this thread's KOFF slot.
pub unsafe fn koff_table(d: &Dims) -> Result<*mut isize, NoMem> {
    let koff = scratch::get::<isize>(SLOT_KOFF, (d.groups * d.k) as usize)?;
    tap_offsets(d, d.row_len(), koff);
    Ok(koff)
}

/// dst (hp x wp x cin) = image src (h x w x cin) shifted by (pt, pl), zeros around; pads may
/// be negative (crop).
unsafe fn pad_image<T: Elem>(d: &Dims, src: *const T, dst: *mut T) {
    let (cin, wp) = (d.cin, d.wp);
    let rowlen = (wp * cin) as usize;
    let j0 = d.pl.max(0);
    let j1 = (d.pl + d.w).min(wp);
    for i in 0..d.hp {
        let drow = std::slice::from_raw_parts_mut(dst.offset(i * wp * cin), rowlen);
        let si = i - d.pt;
        if si < 0 || si >= d.h || j1 <= j0 {
            drow.fill(T::ZERO);
            continue;
        }
        let (a, b) = ((j0 * cin) as usize, (j1 * cin) as usize);
        drow[..a].fill(T::ZERO);
        let s = src.offset((si * d.w + (j0 - d.pl)) * cin);
        std::ptr::copy_nonoverlapping(s, drow.as_mut_ptr().add(a), b - a);
        drow[b..].fill(T::ZERO);
    }
}

/// The image the taps read: image `img` of x, zero padded into this thread's PAD slot when
/// the shape has padding.
pub unsafe fn image<T: Elem>(d: &Dims, x: *const T, img: isize) -> Result<*const T, NoMem> {
    let src = x.wrapping_offset(img * d.h * d.w * d.cin);
    if !d.padded {
        return Ok(src);
    }
    let buf = scratch::get::<T>(SLOT_PAD, (d.hp * d.wp * d.cin) as usize)?;
    pad_image(d, src, buf);
    Ok(buf)
}

/// rows[oh * wo + ow] = pointer to the top-left tap of output pixel (oh, ow) in `img`.
pub unsafe fn pixel_rows<T>(d: &Dims, img: *const T, rows: *mut *const T) {
    let wp = d.row_len();
    let mut out = rows;
    for oh in 0..d.ho {
        let r = img.wrapping_offset(oh * d.sh * wp * d.cin);
        for ow in 0..d.wo {
            *out = r.wrapping_offset(ow * d.sw * d.cin);
            out = out.add(1);
        }
    }
}

/// The bias of the group whose channels start at `offset` (NULL stays NULL).
fn group_bias<T>(bias: *const T, offset: isize) -> *const T {
    bias.wrapping_offset(if bias.is_null() { 0 } else { offset })
}

/// Forward of one (padded) image, all groups, through the gather GEMM.
unsafe fn forward_image<T: Elem>(
    d: &Dims,
    img: *const T,
    koff: *const isize,
    w: *const T,
    bias: *const T,
    y: *mut T,
    threads: usize,
) -> Result<(), NoMem> {
    let m = (d.ho * d.wo) as usize;
    let rows = scratch::get::<*const T>(SLOT_ROWS, m)?;
    pixel_rows(d, img, rows);
    for g in 0..d.groups {
        let a = ASrc::Gather { rows, koff: koff.offset(g * d.k) };
        let (cout, cout_g) = (d.cout as usize, d.cout_g as usize);
        let gemm = Gemm {
            bias: group_bias(bias, g * d.cout_g),
            ..Gemm::product(m, cout_g, d.k as usize, a, w.offset(g * d.cout_g), cout, y.offset(g * d.cout_g), cout)
        };
        driver(&gemm, threads)?;
    }
    Ok(())
}

/// Depthwise (one input and one output channel per group): output rows [oh0, oh1) of one image.
unsafe fn depthwise_rows<T: Elem>(
    d: &Dims,
    img: *const T,
    w: *const T,
    bias: *const T,
    y: *mut T,
    oh0: isize,
    oh1: isize,
) {
    const CH: isize = 64;
    let (c_all, wp) = (d.cin, d.row_len());
    let mut acc = [T::ZERO; CH as usize];
    for oh in oh0..oh1 {
        for ow in 0..d.wo {
            let base = img.offset((oh * d.sh * wp + ow * d.sw) * c_all);
            let o = y.offset((oh * d.wo + ow) * c_all);
            for c0 in (0..c_all).step_by(CH as usize) {
                let cc = (c_all - c0).min(CH) as usize;
                let acc = &mut acc[..cc];
                acc.fill(T::ZERO);
                for i in 0..d.kh {
                    for j in 0..d.kw {
                        let xs = std::slice::from_raw_parts(base.offset((i * d.dh * wp + j * d.dw) * c_all + c0), cc);
                        let ws = std::slice::from_raw_parts(w.offset((i * d.kw + j) * c_all + c0), cc);
                        for ((a, &xv), &wv) in acc.iter_mut().zip(xs).zip(ws) {
                            *a += xv * wv;
                        }
                    }
                }
                let out = std::slice::from_raw_parts_mut(o.offset(c0), cc);
                if bias.is_null() {
                    out.copy_from_slice(acc);
                } else {
                    let b = std::slice::from_raw_parts(bias.offset(c0), cc);
                    for ((o, &a), &bv) in out.iter_mut().zip(acc.iter()).zip(b) {
                        *o = a + bv;
                    }
                }
            }
        }
    }
}

/// y = conv(x, w) + bias for validated dims (pads may be negative).
pub unsafe fn forward<T: Elem>(d: &Dims, x: *const T, w: *const T, bias: *const T, y: *mut T) -> Result<(), NoMem> {
    if d.ny == 0 {
        return Ok(());
    }
    let threads = threads_for(2.0 * d.ny as f64 * d.k as f64);
    let ysz = d.ho * d.wo * d.cout;
    if d.k == 0 {
        // no input channel: y = bias
        for i in 0..d.ny {
            *y.offset(i) = if bias.is_null() { T::ZERO } else { *bias.offset(i % d.cout) };
        }
        return Ok(());
    }
    if d.kh == 1 && d.kw == 1 && d.sh == 1 && d.sw == 1 && !d.padded {
        // 1x1: the image is already the im2col matrix
        for g in 0..d.groups {
            let a = ASrc::Dense { a: x.offset(g * d.cin_g), lda: d.cin as usize, trans: false };
            let (m, cout, cout_g) = ((d.n * d.h * d.w) as usize, d.cout as usize, d.cout_g as usize);
            let (wg, yg) = (w.offset(g * d.cout_g), y.offset(g * d.cout_g));
            let gemm = Gemm {
                bias: group_bias(bias, g * d.cout_g),
                ..Gemm::product(m, cout_g, d.cin_g as usize, a, wg, cout, yg, cout)
            };
            driver(&gemm, threads)?;
        }
        return Ok(());
    }
    let n = d.n as usize;
    let shared = Shared((x, w, bias, y));
    if d.cin_g == 1 && d.cout_g == 1 {
        if threads > 1 && n >= threads {
            return par_try(n, |img| {
                let (x, w, bias, y) = shared.get();
                let img = img as isize;
                let xi = image(d, x, img)?;
                depthwise_rows(d, xi, w, bias, y.offset(img * ysz), 0, d.ho);
                Ok(())
            });
        }
        for img in 0..d.n {
            let xi = image(d, x, img)?;
            let yi = y.offset(img * ysz);
            if threads <= 1 {
                depthwise_rows(d, xi, w, bias, yi, 0, d.ho);
                continue;
            }
            let rows = Shared((xi, w, bias, yi));
            crate::abi::parallel_for(d.ho as usize, |oh| {
                let (xi, w, bias, yi) = rows.get();
                let oh = oh as isize;
                depthwise_rows(d, xi, w, bias, yi, oh, oh + 1);
            });
        }
        return Ok(());
    }
    let koff: *const isize = koff_table(d)?;
    if threads > 1 && n >= threads {
        let shared = Shared((x, w, bias, y, koff));
        return par_try(n, |img| {
            let (x, w, bias, y, koff) = shared.get();
            let img = img as isize;
            let xi = image(d, x, img)?;
            forward_image(d, xi, koff, w, bias, y.offset(img * ysz), 1)
        });
    }
    for img in 0..d.n {
        let xi = image(d, x, img)?;
        forward_image(d, xi, koff, w, bias, y.offset(img * ysz), threads)?;
    }
    Ok(())
}
