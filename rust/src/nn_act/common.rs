//! Argument checks, thresholds and small helpers shared by the NN kernels of `nn_norm`,
//! `nn_pool`, `nn_softmax` and `nn_act` (mirrors `csrc/nn_common.h`; not ABI).

use crate::abi;

/// Threads only above these amounts of work (elements touched), like C's NN_PAR_*:
/// memory-bound ops...
pub(crate) const PAR_ELEMS: usize = 1 << 20;
/// ...and element-wise ops with transcendental math.
pub(crate) const PAR_ELEMS_MATH: usize = 1 << 16;

pub(crate) use crate::abi::nn_numel as numel;

/// Output extent of a pooling axis (C's `nn_pool_extent`), `None` on a size error.
pub(crate) fn pool_extent(inp: i64, k: i64, s: i64, p0: i64, p1: i64, dil: i64) -> Option<i64> {
    if inp < 0 || k < 1 || s < 1 || dil < 1 || p0 < 0 || p1 < 0 {
        return None;
    }
    let padded = inp.checked_add(p0)?.checked_add(p1)?;
    let span = dil.checked_mul(k - 1)?.checked_add(1)?;
    Some(if padded < span { 0 } else { (padded - span) / s + 1 })
}

/// A zero-filled buffer, or `None` when the memory is not there (AXIOM_ERR_NOMEM, never an
/// abort).
pub(crate) fn zeroed<T: Copy + Default>(n: usize) -> Option<Vec<T>> {
    let mut v = Vec::new();
    v.try_reserve_exact(n).ok()?;
    v.resize(n, T::default());
    Some(v)
}

/// Split `0..n` into tasks of at least `min_len` items, a few per thread so a slow thread
/// does not hold the others up, and run `body(lo, hi)` for each: on [`abi::parallel_for`]
/// when `par`, else once inline over the whole range.
pub(crate) fn par_ranges<F: Fn(usize, usize) + Sync>(n: usize, par: bool, min_len: usize, body: F) {
    let threads = abi::num_threads();
    if !par || threads <= 1 || n <= 1 {
        body(0, n);
        return;
    }
    let len = n.div_ceil(threads * 4).max(min_len.max(1));
    let tasks = n.div_ceil(len);
    abi::parallel_for(tasks, |t| body(t * len, ((t + 1) * len).min(n)));
}

/// A slice over `len` elements at `p`; empty (and `p` unused) when `len` is 0, so NULL is
/// fine for empty arrays.
///
/// # Safety
/// `p` points to `len` readable elements when `len > 0`.
#[inline]
pub(crate) unsafe fn slice<'a, T>(p: *const T, len: usize) -> &'a [T] {
    if len == 0 {
        &[]
    } else {
        std::slice::from_raw_parts(p, len)
    }
}

/// The mutable twin of [`slice`].
///
/// # Safety
/// `p` points to `len` writable elements, not aliased by another live slice, when `len > 0`.
#[inline]
pub(crate) unsafe fn slice_mut<'a, T>(p: *mut T, len: usize) -> &'a mut [T] {
    if len == 0 {
        &mut []
    } else {
        std::slice::from_raw_parts_mut(p, len)
    }
}

/// An optional input array (NULL: absent) of `len` elements.
///
/// # Safety
/// As [`slice`] when `p` is not NULL.
#[inline]
pub(crate) unsafe fn opt_slice<'a, T>(p: *const T, len: usize) -> Option<&'a [T]> {
    if p.is_null() {
        None
    } else {
        Some(slice(p, len))
    }
}

/// Sum of `x` with 32 independent lanes, so the loop vectorises (the order differs from a
/// plain loop by rounding only).
#[inline(always)]
pub(crate) fn lane_sum<T: crate::nn_act::real::Real, F: Fn(T) -> T>(x: &[T], f: F) -> T {
    const L: usize = 32;
    let mut acc = [T::ZERO; L];
    let chunks = x.chunks_exact(L);
    let tail = chunks.remainder();
    for c in chunks {
        for k in 0..L {
            acc[k] += f(c[k]);
        }
    }
    for (k, &v) in tail.iter().enumerate() {
        acc[k] += f(v);
    }
    reduce_lanes(acc)
}

/// Sum of `f(a[i], b[i])` with 32 independent lanes.
#[inline(always)]
pub(crate) fn lane_sum2<T: crate::nn_act::real::Real, F: Fn(T, T) -> T>(a: &[T], b: &[T], f: F) -> T {
    const L: usize = 32;
    let n = a.len().min(b.len());
    let (a, b) = (&a[..n], &b[..n]);
    let mut acc = [T::ZERO; L];
    let (ca, cb) = (a.chunks_exact(L), b.chunks_exact(L));
    let (ta, tb) = (ca.remainder(), cb.remainder());
    for (x, y) in ca.zip(cb) {
        for k in 0..L {
            acc[k] += f(x[k], y[k]);
        }
    }
    for k in 0..ta.len() {
        acc[k] += f(ta[k], tb[k]);
    }
    reduce_lanes(acc)
}

/// Pairwise sum of 32 lanes.
#[inline(always)]
fn reduce_lanes<T: crate::nn_act::real::Real>(mut acc: [T; 32]) -> T {
    let mut w = 16;
    while w > 0 {
        for k in 0..w {
            let v = acc[k + w];
            acc[k] += v;
        }
        w /= 2;
    }
    acc[0]
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn numel_is_c_nn_numel() {
        assert_eq!(numel(&[2, 3], 4), Some(6));
        assert_eq!(numel(&[0, i64::MAX], 8), None);
        assert_eq!(numel(&[0, 5], 8), Some(0));
        assert_eq!(numel(&[-1], 4), None);
        assert_eq!(numel(&[i64::MAX / 4], 4), Some((i64::MAX / 4) as usize));
        assert_eq!(numel(&[i64::MAX / 4 + 1], 4), None);
    }

    #[test]
    fn pool_extent_matches_formula() {
        assert_eq!(pool_extent(5, 2, 2, 0, 0, 1), Some(2));
        assert_eq!(pool_extent(0, 1, 1, 1, 1, 1), Some(2));
        assert_eq!(pool_extent(1, 3, 1, 0, 0, 1), Some(0));
        assert_eq!(pool_extent(1, 0, 1, 0, 0, 1), None);
        assert_eq!(pool_extent(i64::MAX, 1, 1, 1, 0, 1), None);
    }

    #[test]
    fn lane_sums_add_everything() {
        let x: Vec<f64> = (0..77).map(|i| i as f64).collect();
        assert_eq!(lane_sum(&x, |v| v), 76.0 * 77.0 / 2.0);
        assert_eq!(lane_sum2(&x, &x, |a, b| a * b), (0..77).map(|i| (i * i) as f64).sum::<f64>());
    }
}
