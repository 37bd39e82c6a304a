//! Micro-kernel instruction-set level of the GEMM / conv kernels: axiom_cpu_isa,
//! axiom_cpu_isa_supported, axiom_set_cpu_isa (csrc/axiom_kernels.h; mirrors the dispatch
//! part of csrc/gemm.c).
//!
//! Zig compiles the whole library for one target (-mcpu, x86_64_v3 by default), so unlike C
//! it cannot carry kernels for a better instruction set than the target's. The supported
//! level is therefore the best level the COMPILED target has (AVX-512F -> 2, AVX2+FMA -> 1,
//! else 0), capped by what the running CPU and OS have (cpuid + xgetbv: a library built for
//! a better CPU than the one it runs on reports the lower level). The active level starts
//! at the supported one capped by AXIOM_CPU_FEATURES=generic|avx2|avx512 (read on first
//! use) and can be changed by axiom_set_cpu_isa.

const std = @import("std");
const builtin = @import("builtin");
const abi = @import("abi.zig");

pub const GENERIC: u8 = 0;
pub const AVX2: u8 = 1;
pub const AVX512: u8 = 2;

const is_x86 = builtin.cpu.arch == .x86_64 or builtin.cpu.arch == .x86;

fn targetHas(comptime f: std.Target.x86.Feature) bool {
    return is_x86 and std.Target.x86.featureSetHas(builtin.cpu.features, f);
}

/// Best level the compiled target has: the kernels of a level exist only up to this one.
pub const compiled_level: u8 = if (targetHas(.avx512f) and targetHas(.fma))
    AVX512
else if (targetHas(.avx2) and targetHas(.fma))
    AVX2
else
    GENERIC;

const Cpuid = struct { eax: u32, ebx: u32, ecx: u32, edx: u32 };

fn cpuid(leaf: u32, sub: u32) Cpuid {
    var eax: u32 = undefined;
    var ebx: u32 = undefined;
    var ecx: u32 = undefined;
    var edx: u32 = undefined;
    asm volatile ("cpuid"
        : [_] "={eax}" (eax),
          [_] "={ebx}" (ebx),
          [_] "={ecx}" (ecx),
          [_] "={edx}" (edx),
        : [_] "{eax}" (leaf),
          [_] "{ecx}" (sub),
    );
    return .{ .eax = eax, .ebx = ebx, .ecx = ecx, .edx = edx };
}

fn xcr0() u32 {
    return asm volatile (
        \\ xor %%ecx, %%ecx
        \\ xgetbv
        : [_] "={eax}" (-> u32),
        :
        : .{ .edx = true, .ecx = true });
}

/// Best level the running CPU and OS support (the OS must save the ymm / zmm state).
fn cpuLevel() u8 {
    if (!is_x86) return GENERIC;
    if (cpuid(0, 0).eax < 7) return GENERIC;
    const l1 = cpuid(1, 0);
    const osxsave = l1.ecx & (1 << 27) != 0;
    const fma = l1.ecx & (1 << 12) != 0;
    if (!osxsave or !fma) return GENERIC;
    const xcr = xcr0();
    const l7 = cpuid(7, 0);
    if (xcr & 0xe6 == 0xe6 and l7.ebx & (1 << 16) != 0) return AVX512;
    if (xcr & 0x6 == 0x6 and l7.ebx & (1 << 5) != 0) return AVX2;
    return GENERIC;
}

var supported_cache = std.atomic.Value(i32).init(-1);

/// min(compiled level, CPU level), computed once.
pub fn supported() u8 {
    const v = supported_cache.load(.monotonic);
    if (v >= 0) return @intCast(v);
    const s = @min(compiled_level, cpuLevel());
    supported_cache.store(s, .monotonic);
    return s;
}

/// AXIOM_CPU_FEATURES caps the level (same spellings as C; unknown values mean no cap).
fn fromEnv(sup: u8) u8 {
    const value = std.c.getenv("AXIOM_CPU_FEATURES") orelse return sup;
    const s = std.mem.sliceTo(value, 0);
    const eql = std.mem.eql;
    var want = sup;
    if (eql(u8, s, "generic") or eql(u8, s, "none") or eql(u8, s, "c")) {
        want = GENERIC;
    } else if (eql(u8, s, "avx2")) {
        want = AVX2;
    } else if (eql(u8, s, "avx512") or eql(u8, s, "avx512f")) {
        want = AVX512;
    }
    return @min(want, sup);
}

var current = std.atomic.Value(i32).init(-1);

/// The level the kernels use now (read once per GEMM call, so a call never mixes levels).
pub fn active() u8 {
    const v = current.load(.monotonic);
    if (v >= 0) return @intCast(v);
    const a = fromEnv(supported());
    current.store(a, .monotonic);
    return a;
}

export fn axiom_cpu_isa() c_int {
    return active();
}

export fn axiom_cpu_isa_supported() c_int {
    return supported();
}

export fn axiom_set_cpu_isa(level: i32) c_int {
    if (level < -1 or level > AVX512) return abi.ERR_SIZE;
    const sup = supported();
    const v: u8 = if (level < 0) fromEnv(sup) else @min(@as(u8, @intCast(level)), sup);
    current.store(v, .monotonic);
    return abi.OK;
}

test "set_cpu_isa range and cap" {
    try std.testing.expectEqual(abi.ERR_SIZE, axiom_set_cpu_isa(3));
    try std.testing.expectEqual(abi.ERR_SIZE, axiom_set_cpu_isa(-2));
    try std.testing.expectEqual(abi.OK, axiom_set_cpu_isa(0));
    try std.testing.expectEqual(@as(c_int, 0), axiom_cpu_isa());
    try std.testing.expectEqual(abi.OK, axiom_set_cpu_isa(2));
    try std.testing.expectEqual(axiom_cpu_isa_supported(), axiom_cpu_isa());
    try std.testing.expectEqual(abi.OK, axiom_set_cpu_isa(-1));
}
