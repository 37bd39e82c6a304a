//! axiom_matmul_f32 / axiom_matmul_f64 (see csrc/axiom_kernels.h).
//!
//! Same blocking as csrc/matmul_impl.h, single-threaded: k and n are tiled so a panel of b
//! stays in cache, and a micro-kernel keeps a 4 x (2 vectors) tile of c in registers while it
//! runs over the panel, using @Vector and @mulAdd (where the target CPU has FMA). Every
//! product is added (no zero skipping), so NaN/Inf propagate like a plain dot product.

const std = @import("std");
const builtin = @import("builtin");
const abi = @import("abi.zig");

/// Fused multiply-add only where the CPU has it: @mulAdd without FMA hardware is a (correct
/// but slow) software routine, so plain a * b + c is used there (both are IEEE operations).
const has_fma = switch (builtin.cpu.arch) {
    .x86, .x86_64 => std.Target.x86.featureSetHas(builtin.cpu.features, .fma),
    else => true,
};

inline fn madd(comptime T: type, a: T, b: T, c: T) T {
    return if (has_fma) @mulAdd(T, a, b, c) else a * b + c;
}

const KC: usize = 256;
const NC: usize = 256;

export fn axiom_matmul_f32(a: ?[*]const f32, b: ?[*]const f32, c: ?[*]f32, m: i64, k: i64, n: i64) c_int {
    return matmul(f32, a, b, c, m, k, n);
}

export fn axiom_matmul_f64(a: ?[*]const f64, b: ?[*]const f64, c: ?[*]f64, m: i64, k: i64, n: i64) c_int {
    return matmul(f64, a, b, c, m, k, n);
}

fn matmul(comptime T: type, a_ptr: ?[*]const T, b_ptr: ?[*]const T, c_ptr: ?[*]T, m_: i64, k_: i64, n_: i64) c_int {
    const na = abi.count(T, m_, k_) orelse return abi.ERR_SIZE;
    const nb = abi.count(T, k_, n_) orelse return abi.ERR_SIZE;
    const nc = abi.count(T, m_, n_) orelse return abi.ERR_SIZE;
    if ((na > 0 and a_ptr == null) or (nb > 0 and b_ptr == null) or (nc > 0 and c_ptr == null)) return abi.ERR_NULL;
    if (nc == 0) return abi.OK;
    const m: usize = @intCast(m_);
    const k: usize = @intCast(k_);
    const n: usize = @intCast(n_);
    const c = c_ptr.?[0..nc];
    @memset(c, 0);
    if (k == 0) return abi.OK;
    const a = a_ptr.?[0..na];
    const b = b_ptr.?[0..nb];

    var kk: usize = 0;
    while (kk < k) : (kk += KC) {
        const kend = @min(kk + KC, k);
        var jj: usize = 0;
        while (jj < n) : (jj += NC) {
            const jend = @min(jj + NC, n);
            var i: usize = 0;
            while (i + 4 <= m) : (i += 4) {
                rows4(T, a, b, c, i, k, n, kk, kend, jj, jend);
            }
            while (i < m) : (i += 1) {
                row1(T, a, b, c, i, k, n, kk, kend, jj, jend);
            }
        }
    }
    return abi.OK;
}

fn vecLen(comptime T: type) comptime_int {
    return std.simd.suggestVectorLength(T) orelse 4;
}

/// c[i..i+4, jj..jend] += a[i..i+4, kk..kend] @ b[kk..kend, jj..jend]
inline fn rows4(comptime T: type, a: []const T, b: []const T, c: []T, i: usize, k: usize, n: usize, kk: usize, kend: usize, jj: usize, jend: usize) void {
    const L = vecLen(T);
    const V = @Vector(L, T);
    // micro-kernel: a 4 x 2L tile of c in 8 vector registers while p runs over the panel
    var j = jj;
    while (j + 2 * L <= jend) : (j += 2 * L) {
        var acc: [4][2]V = undefined;
        inline for (0..4) |r| {
            acc[r][0] = c[(i + r) * n + j ..][0..L].*;
            acc[r][1] = c[(i + r) * n + j + L ..][0..L].*;
        }
        for (kk..kend) |p| {
            const b0: V = b[p * n + j ..][0..L].*;
            const b1: V = b[p * n + j + L ..][0..L].*;
            inline for (0..4) |r| {
                const ar: V = @splat(a[(i + r) * k + p]);
                acc[r][0] = madd(V, ar, b0, acc[r][0]);
                acc[r][1] = madd(V, ar, b1, acc[r][1]);
            }
        }
        inline for (0..4) |r| {
            c[(i + r) * n + j ..][0..L].* = acc[r][0];
            c[(i + r) * n + j + L ..][0..L].* = acc[r][1];
        }
    }
    // edge columns: one row at a time
    if (j < jend) {
        inline for (0..4) |r| row1(T, a, b, c, i + r, k, n, kk, kend, j, jend);
    }
}

/// c[i, jj..jend] += a[i, kk..kend] @ b[kk..kend, jj..jend]
inline fn row1(comptime T: type, a: []const T, b: []const T, c: []T, i: usize, k: usize, n: usize, kk: usize, kend: usize, jj: usize, jend: usize) void {
    const L = vecLen(T);
    const V = @Vector(L, T);
    const c0 = c[i * n ..][0..n];
    for (kk..kend) |p| {
        const bp = b[p * n ..][0..n];
        const s0 = a[i * k + p];
        const v0: V = @splat(s0);
        var j = jj;
        while (j + L <= jend) : (j += L) {
            c0[j..][0..L].* = madd(V, v0, bp[j..][0..L].*, c0[j..][0..L].*);
        }
        while (j < jend) : (j += 1) {
            c0[j] = madd(T, s0, bp[j], c0[j]);
        }
    }
}
