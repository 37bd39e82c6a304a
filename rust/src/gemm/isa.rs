//! Instruction-set level of the GEMM / conv micro-kernels (mirrors the dispatch part of
//! `csrc/gemm.c`). Exports `axiom_cpu_isa`, `axiom_cpu_isa_supported`, `axiom_set_cpu_isa`.

use crate::abi::{guard, AXIOM_ERR_SIZE, AXIOM_OK};
use std::os::raw::c_int;
use std::sync::atomic::{AtomicI32, Ordering};

pub const GENERIC: i32 = 0;
pub const AVX2: i32 = 1;
pub const AVX512: i32 = 2;

/// The best level this CPU (and OS) supports.
pub fn supported() -> i32 {
    #[cfg(target_arch = "x86_64")]
    {
        if is_x86_feature_detected!("avx512f") {
            return AVX512;
        }
        if is_x86_feature_detected!("avx2") && is_x86_feature_detected!("fma") {
            return AVX2;
        }
    }
    GENERIC
}

/// `supported` capped by `AXIOM_CPU_FEATURES=generic|avx2|avx512` (same spellings as C).
fn from_env(supported: i32) -> i32 {
    let want = match std::env::var("AXIOM_CPU_FEATURES").as_deref() {
        Ok("generic" | "none" | "c") => GENERIC,
        Ok("avx2") => AVX2,
        Ok("avx512" | "avx512f") => AVX512,
        _ => supported,
    };
    want.min(supported)
}

/// -1 until first use (then the environment is read), like C's `isa_current`.
static CURRENT: AtomicI32 = AtomicI32::new(-1);

/// The level the kernels use now.
pub fn active() -> i32 {
    let v = CURRENT.load(Ordering::Relaxed);
    if v >= 0 {
        return v;
    }
    let v = from_env(supported());
    CURRENT.store(v, Ordering::Relaxed);
    v
}

/// Return the active micro-kernel level (`AXIOM_CPU_*`).
#[no_mangle]
pub extern "C" fn axiom_cpu_isa() -> c_int {
    guard(active)
}

/// Return the best level this CPU supports.
#[no_mangle]
pub extern "C" fn axiom_cpu_isa_supported() -> c_int {
    guard(supported)
}

/// Use kernels of at most `level` (capped to the CPU), or -1 for the default again.
#[no_mangle]
pub extern "C" fn axiom_set_cpu_isa(level: i32) -> c_int {
    guard(|| {
        if !(-1..=AVX512).contains(&level) {
            return AXIOM_ERR_SIZE;
        }
        let sup = supported();
        let v = if level < 0 { from_env(sup) } else { level.min(sup) };
        CURRENT.store(v, Ordering::Relaxed);
        AXIOM_OK
    })
}
