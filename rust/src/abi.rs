//! Constants of the kernel ABI (`csrc/axiom_kernels.h`) and helpers every kernel shares:
//! size checks, the panic guard of the FFI boundary and the thread count.

use std::os::raw::c_int;
use std::panic::{catch_unwind, AssertUnwindSafe};
use std::sync::OnceLock;

/// Version of the kernel ABI (`AXIOM_ABI_VERSION`).
pub const AXIOM_ABI_VERSION: c_int = 2;
/// Success.
pub const AXIOM_OK: c_int = 0;
/// A required pointer is NULL (its array has elements).
pub const AXIOM_ERR_NULL: c_int = 1;
/// A negative dimension, or an element count / byte size that overflows.
pub const AXIOM_ERR_SIZE: c_int = 2;
/// Scratch memory or a worker thread could not be allocated.
pub const AXIOM_ERR_NOMEM: c_int = 3;
/// A panic caught at the FFI boundary (a bug in this library, never a bad argument).
pub const AXIOM_ERR_INTERNAL: c_int = 4;

/// The `_f32` and `_f64` exports of one kernel from one definition: the same argument names and
/// body, where an argument of kind `ptr` / `mut_ptr` is `*const` / `*mut` of the export's float
/// type, `f64_ptr` is `*const f64` in both, and any other kind (`i64`, `c_int`, `f64`) is that type.
/// The body is generic over the float type (it calls the generic kernel).
macro_rules! export_f32_f64 {
    ($(#[$doc:meta])* $f32:ident, $f64:ident ($($arg:ident: $kind:tt),* $(,)?) $body:block) => {
        $(#[$doc])*
        #[no_mangle]
        pub unsafe extern "C" fn $f32($($arg: $crate::abi::abi_arg!($kind, f32)),*) -> std::os::raw::c_int $body

        $(#[$doc])*
        #[no_mangle]
        pub unsafe extern "C" fn $f64($($arg: $crate::abi::abi_arg!($kind, f64)),*) -> std::os::raw::c_int $body
    };
}

/// The C type of an `export_f32_f64!` argument of kind `$kind` in the export for float type `$t`.
macro_rules! abi_arg {
    (ptr, $t:ty) => { *const $t };
    (mut_ptr, $t:ty) => { *mut $t };
    (f64_ptr, $t:ty) => { *const f64 };
    ($other:ident, $t:ty) => { $other };
}

pub(crate) use abi_arg;
pub(crate) use export_f32_f64;

/// Run a kernel body, turning a panic into `AXIOM_ERR_INTERNAL`: unwinding across
/// `extern "C"` is undefined behaviour, so every exported function goes through this.
#[inline]
pub fn guard<F: FnOnce() -> c_int>(body: F) -> c_int {
    catch_unwind(AssertUnwindSafe(body)).unwrap_or(AXIOM_ERR_INTERNAL)
}

/// Element count of an array with these dimensions and `elem_size`-byte elements, or `None`
/// when a dimension is negative or the byte size overflows `i64` / `usize`.
pub fn count(dims: &[i64], elem_size: usize) -> Option<usize> {
    let mut total: i64 = 1;
    for &d in dims {
        if d < 0 {
            return None;
        }
        total = total.checked_mul(d)?;
    }
    let bytes = total.checked_mul(elem_size as i64)?;
    usize::try_from(bytes).ok()?;
    Some(total as usize)
}

/// Element count of an array with these dimensions and `elem`-byte elements like C's
/// `nn_numel` (`csrc/nn_common.h`), which the NN kernels use: every dim >= 0 and the product of
/// the NON-ZERO dims times `elem` fits in i64 and usize (so `[0, i64::MAX]` is a size error,
/// unlike [`count`], which mirrors the matmul / GEMM checks).
pub fn nn_numel(dims: &[i64], elem: usize) -> Option<usize> {
    let limit = (i64::MAX / elem as i64).min((usize::MAX / elem).min(i64::MAX as usize) as i64);
    let mut prod: i64 = 1;
    let mut zero = false;
    for &d in dims {
        if d < 0 {
            return None;
        }
        if d == 0 {
            zero = true;
            continue;
        }
        if prod > limit / d {
            return None;
        }
        prod *= d;
    }
    Some(if zero { 0 } else { prod as usize })
}

/// `AXIOM_ERR_NULL` when `ptr` is NULL although its array has `n > 0` elements.
#[inline]
pub fn null_with_elements<T>(ptr: *const T, n: usize) -> bool {
    n > 0 && ptr.is_null()
}

/// Worker threads the kernels may use: `AXIOM_NUM_THREADS`, else `OMP_NUM_THREADS` (so one
/// setting limits C, Rust and Zig alike), else the CPU count; read once per process.
pub fn num_threads() -> usize {
    static THREADS: OnceLock<usize> = OnceLock::new();
    *THREADS.get_or_init(|| {
        for var in ["AXIOM_NUM_THREADS", "OMP_NUM_THREADS"] {
            if let Some(n) = std::env::var(var)
                .ok()
                .and_then(|v| v.split(',').next().and_then(|s| s.trim().parse::<usize>().ok()))
                .filter(|&n| n > 0)
            {
                return n;
            }
        }
        std::thread::available_parallelism().map(|n| n.get()).unwrap_or(1)
    })
}

/// A raw pointer that may cross threads: kernels hand disjoint parts of one output to
/// [`parallel_for`] tasks, which is sound because no two tasks write the same element.
#[derive(Clone, Copy)]
pub struct SendPtr<T>(pub *mut T);
unsafe impl<T> Send for SendPtr<T> {}
unsafe impl<T> Sync for SendPtr<T> {}

/// Run `body(task)` for every task in `0..tasks` on up to [`num_threads`] threads (the
/// calling thread takes part; tasks are handed out one at a time through an atomic counter).
/// The other threads are the persistent workers of [`crate::pool`] (woken, not spawned); when
/// the pool is busy with another caller's job, scoped threads are spawned instead. Runs inline
/// when one thread is allowed, `tasks <= 1`, or inside a pool job (nested loops). A worker
/// thread that cannot be started leaves its tasks to the others, so the result never depends
/// on how many ran. A panic in a task resurfaces in the caller (and [`guard`] turns it into an
/// error code).
pub fn parallel_for<F: Fn(usize) + Sync>(tasks: usize, body: F) {
    let threads = num_threads().min(tasks);
    if threads <= 1 || crate::pool::in_pool_job() {
        (0..tasks).for_each(body);
        return;
    }
    let next = std::sync::atomic::AtomicUsize::new(0);
    let work = || loop {
        let task = next.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
        if task >= tasks {
            break;
        }
        body(task);
    };
    if crate::pool::run(threads - 1, &work) {
        return;
    }
    std::thread::scope(|scope| {
        for _ in 1..threads {
            // a thread that cannot be spawned is simply not used
            let _ = std::thread::Builder::new().spawn_scoped(scope, work);
        }
        work();
    });
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn guard_turns_a_panic_into_an_error_code() {
        let prev = std::panic::take_hook();
        std::panic::set_hook(Box::new(|_| {}));
        let code = guard(|| panic!("boom"));
        std::panic::set_hook(prev);
        assert_eq!(code, AXIOM_ERR_INTERNAL);
        assert_eq!(guard(|| AXIOM_OK), AXIOM_OK);
    }

    #[test]
    fn parallel_for_runs_every_task_once() {
        let hits: Vec<std::sync::atomic::AtomicUsize> = (0..1000).map(|_| Default::default()).collect();
        parallel_for(hits.len(), |i| {
            hits[i].fetch_add(1, std::sync::atomic::Ordering::Relaxed);
        });
        assert!(hits.iter().all(|h| h.load(std::sync::atomic::Ordering::Relaxed) == 1));
    }

    #[test]
    fn parallel_for_nests_and_propagates_panics() {
        let total = std::sync::atomic::AtomicUsize::new(0);
        parallel_for(8, |_| {
            parallel_for(8, |_| {
                total.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
            })
        });
        assert_eq!(total.load(std::sync::atomic::Ordering::Relaxed), 64);
        let prev = std::panic::take_hook();
        std::panic::set_hook(Box::new(|_| {}));
        let code = guard(|| {
            parallel_for(64, |i| assert!(i != 37, "task 37 fails"));
            AXIOM_OK
        });
        std::panic::set_hook(prev);
        assert_eq!(code, AXIOM_ERR_INTERNAL);
        // the pool still works after a panic
        let after = std::sync::atomic::AtomicUsize::new(0);
        parallel_for(100, |_| {
            after.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
        });
        assert_eq!(after.load(std::sync::atomic::Ordering::Relaxed), 100);
    }

    #[test]
    fn count_rejects_negative_and_overflowing_sizes() {
        assert_eq!(count(&[2, 3], 4), Some(6));
        assert_eq!(count(&[-1, 3], 4), None);
        assert_eq!(count(&[i64::MAX, 2], 1), None);
        assert_eq!(count(&[i64::MAX / 4 + 1], 4), None);
        assert_eq!(count(&[0, i64::MAX], 8), Some(0));
    }
}
