//! Helpers shared by zig/nn_attention.zig, zig/nn_attention_backward.zig and zig/nn_rope.zig
//! (not exported): the size checks of csrc/nn_common.h (nn_numel, nn_strided_span_ok), its
//! threading thresholds, 32-byte vectors of f32 / f64 and the exponentials of csrc/nn_simd.h.

const std = @import("std");
const abi = @import("abi.zig");

/// NN_PAR_ELEMS: memory-bound element counts above which work is split over threads.
pub const PAR_ELEMS: i64 = 1 << 20;
/// NN_PAR_ELEMS_MATH: element-wise transcendental math above which threads are used.
pub const PAR_ELEMS_MATH: i64 = 1 << 16;
/// NN_PAR_FLOPS: attention multiply-adds above which threads are used.
pub const PAR_FLOPS: f64 = 1 << 22;

/// libm, so the float64 results (and the f32 tables computed in double) match C's bit for bit.
pub extern "c" fn exp(x: f64) f64;
pub extern "c" fn log(x: f64) f64;
pub extern "c" fn pow(x: f64, y: f64) f64;
/// sin and cos at once (what gcc makes of C's sin(a) and cos(a) pairs; same values).
pub extern "c" fn sincos(x: f64, s: *f64, c: *f64) void;

/// nn_numel (see abi.nnNumel).
pub const numel = abi.nnNumel;

/// nn_strided_span_ok: the furthest element of a 4-D strided view (strides >= 0) is
/// addressable in i64 bytes of elem-sized items.
pub fn stridedSpanOk(ext: [4]i64, str: [4]i64, elem: usize) bool {
    var span: i64 = 0;
    for (ext, str) |e, s| {
        if (s < 0) return false;
        if (e > 0) {
            const t = @mulWithOverflow(e - 1, s);
            if (t[1] != 0) return false;
            const u = @addWithOverflow(span, t[0]);
            if (u[1] != 0) return false;
            span = u[0];
        }
    }
    return span <= @divTrunc(std.math.maxInt(i64), @as(i64, @intCast(elem)));
}

/// p, or (when p is null because its array is empty) an aligned dummy address that is never
/// dereferenced, so offsets of zero elements stay defined.
pub fn nonNull(comptime P: type, p: ?P) P {
    return p orelse @ptrFromInt(64);
}

/// Lanes of a 32-byte vector of T (8 f32, 4 f64: one AVX register).
pub fn lanes(comptime T: type) comptime_int {
    return 32 / @sizeOf(T);
}

pub fn Vec(comptime T: type) type {
    return @Vector(lanes(T), T);
}

pub inline fn load(comptime T: type, p: [*]const T) Vec(T) {
    return p[0..comptime lanes(T)].*;
}

pub inline fn store(comptime T: type, p: [*]T, v: Vec(T)) void {
    p[0..comptime lanes(T)].* = v;
}

/// The first n lanes from p (nothing beyond them is read), the others set to fill.
pub inline fn loadPart(comptime T: type, p: [*]const T, n: usize, fill: T) Vec(T) {
    var tmp: [lanes(T)]T = @splat(fill);
    for (0..@min(n, lanes(T))) |l| tmp[l] = p[l];
    return tmp;
}

/// Store the first n lanes of v to p (nothing beyond them is written).
pub inline fn storePart(comptime T: type, p: [*]T, v: Vec(T), n: usize) void {
    const tmp: [lanes(T)]T = v;
    for (0..@min(n, lanes(T))) |l| p[l] = tmp[l];
}

/// a > b ? a : b lane-wise, b when either is NaN (maxps): for maxima whose NaN shows up elsewhere.
pub inline fn maxFast(comptime T: type, a: Vec(T), b: Vec(T)) Vec(T) {
    return @select(T, a > b, a, b);
}

// nn_simd.h's float32 exponential: exp(r) - 1 - r = r^2 P(r) on |r| <= ln2 / 2.
const V8 = @Vector(8, f32);
const U8 = @Vector(8, u32);
const exp_c2: f32 = 0.49999994039535522;
const exp_c3: f32 = 0.16666521131992340;
const exp_c4: f32 = 0.041668388992547989;
const exp_c5: f32 = 0.0083687128499150276;
const exp_c6: f32 = 0.0013814531266689301;
const log2e: f32 = 1.44269504088896341;
const ln2_hi: f32 = 0.693359375;
const ln2_lo: f32 = -2.12194440e-4;
const round_magic: f32 = 12582912.0; // 1.5 * 2**23: adding it rounds to an integer

inline fn sp(x: f32) V8 {
    return @splat(x);
}

/// x = n ln2 + r: returns r (|r| <= ln2 / 2) and p = e^r, with n + bias as u32 lanes in *nb.
inline fn expCore(x: V8, bias: u32, nb: *U8) V8 {
    const t = @mulAdd(V8, x, sp(log2e), sp(round_magic));
    const n = t - sp(round_magic);
    nb.* = @as(U8, @bitCast(t)) -% @as(U8, @bitCast(sp(round_magic))) +% @as(U8, @splat(bias));
    const r = @mulAdd(V8, -n, sp(ln2_lo), @mulAdd(V8, -n, sp(ln2_hi), x));
    var p = sp(exp_c6);
    p = @mulAdd(V8, p, r, sp(exp_c5));
    p = @mulAdd(V8, p, r, sp(exp_c4));
    p = @mulAdd(V8, p, r, sp(exp_c3));
    p = @mulAdd(V8, p, r, sp(exp_c2));
    return @mulAdd(V8, p, r * r, r) + sp(1.0);
}

const shift23: @Vector(8, u5) = @splat(23);

/// nn_exp: e^x; +inf above ln(FLT_MAX), results below 2**-125 flush to 0; NaN stays NaN.
fn exp8(x0: V8) V8 {
    var x = @select(f32, x0 < sp(-87.6), sp(-87.6), x0);
    x = @select(f32, x > sp(88.76), sp(88.76), x);
    var nb: U8 = undefined;
    const p = expCore(x, 126, &nb);
    return (p + p) * @as(V8, @bitCast(nb << shift23)); // 2**(n-1): normal or 0
}

/// nn_exp_neg: e^x for x <= 0 or NaN; exp(-inf) = 0, flushes to 0 below about -87.5.
fn expNeg8(x0: V8) V8 {
    const x = @select(f32, x0 < sp(-88.0), sp(-88.0), x0);
    var nb: U8 = undefined;
    const p = expCore(x, 127, &nb);
    return p * @as(V8, @bitCast(nb << shift23));
}

/// e^x lane-wise: nn_exp for f32, libm exp per lane for f64 (like the C f64 kernels).
pub inline fn vexp(comptime T: type, x: Vec(T)) Vec(T) {
    if (T == f32) return exp8(x);
    var r: Vec(T) = undefined;
    inline for (0..lanes(T)) |l| r[l] = exp(x[l]);
    return r;
}

/// e^x lane-wise for x <= 0 or NaN (softmax after subtracting the maximum).
pub inline fn vexpNeg(comptime T: type, x: Vec(T)) Vec(T) {
    if (T == f32) return expNeg8(x);
    return vexp(T, x);
}

test "numel follows nn_numel" {
    try std.testing.expectEqual(@as(?i64, 0), numel(4, &.{ 0, 5 }));
    try std.testing.expectEqual(@as(?i64, null), numel(4, &.{ 0, 1 << 40, 1 << 40 }));
    try std.testing.expectEqual(@as(?i64, null), numel(4, &.{ -1, 0 }));
    try std.testing.expectEqual(@as(?i64, 12), numel(8, &.{ 3, 4 }));
}

test "exp matches std within float32 rounding" {
    const xs = [_]f32{ -100, -87.4, -10, -1, -0.3, 0, 0.5, 3, 80, 88.7 };
    for (xs) |x| {
        const got = exp8(sp(x))[0];
        const want: f32 = @floatCast(@exp(@as(f64, x)));
        try std.testing.expect(@abs(got - want) <= 4e-7 * want + 1e-37);
    }
    try std.testing.expect(std.math.isNan(exp8(sp(std.math.nan(f32)))[0]));
    try std.testing.expectEqual(@as(f32, 0), expNeg8(sp(-std.math.inf(f32)))[0]);
    try std.testing.expect(std.math.isInf(exp8(sp(std.math.inf(f32)))[0]));
}
