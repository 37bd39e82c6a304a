//! Element-wise activations and their gradients: axiom_activation_f32/_f64 and
//! axiom_activation_backward_f32/_f64 (csrc/axiom_kernels_nn.h).
//!
//! Mirrors csrc/nn_act.c and csrc/nn_act_backward.c: the same formulas (written without
//! cancellation or overflow), the same kinks (PyTorch's choices) and NaN/Inf results, one
//! generic implementation over Vec(T) for both types. The activation code is made a
//! comptime constant by an `inline else` switch, so each code gets its own tight loop.
//! Blocks of ACT_BLOCK elements run in parallel above C's thresholds.

const std = @import("std");
const abi = @import("abi.zig");
const simd = @import("nn_simd_impl.zig");

const ACT_COUNT: c_int = 16;
const IDENTITY = 0;
const RELU = 1;
const LEAKY_RELU = 2;
const ELU = 3;
const SELU = 4;
const GELU = 5;
const GELU_TANH = 6;
const SIGMOID = 7;
const TANH = 8;
const SOFTPLUS = 9;
const SOFTSIGN = 10;
const SILU = 11;
const MISH = 12;
const HARDSWISH = 13;
const HARDSIGMOID = 14;

const SELU_ALPHA = 1.6732632423543772;
const SELU_SCALE = 1.0507009873554805;
const SQRT_2_OVER_PI = 0.7978845608028654;
const TWO_SQRT_2_OVER_PI = 1.5957691216057308;
const GELU_K = 0.044715;
const INV_SQRT_2PI = 0.3989422804014327;
const SQRT_HALF = 0.7071067811865476;

const ACT_BLOCK: usize = 4096; // elements per parallel chunk (a multiple of the lanes)

/// Piecewise-linear activations are memory-bound: the higher thread threshold.
fn cheap(code: c_int) bool {
    return code <= LEAKY_RELU or code == SOFTSIGN or code >= HARDSWISH;
}

fn act(comptime T: type, comptime code: c_int, x: simd.Vec(T), alpha: T) simd.Vec(T) {
    const V = simd.Vec(T);
    const P = simd.Prim(T);
    const F = simd.Fn(T);
    const s = struct {
        inline fn f(a: T) V {
            return @splat(a);
        }
    }.f;
    const zero = s(0.0);
    return switch (code) {
        IDENTITY => x,
        RELU => simd.maxNan(T, x, zero),
        LEAKY_RELU => @select(T, x >= zero, x, x * s(alpha)),
        ELU => @select(T, x > zero, x, s(alpha) * P.expm1Neg(simd.minNan(T, x, zero))),
        SELU => s(SELU_SCALE) * @select(T, x > zero, x, s(SELU_ALPHA) * P.expm1Neg(simd.minNan(T, x, zero))),
        // 0.5 x (1 + erf(x / sqrt 2)), 1 + erf without cancellation
        GELU => s(0.5) * x * P.onePlusErf(x * s(SQRT_HALF)),
        // 0.5 x (1 + tanh(u)) = x sigmoid(2 u), no cancellation
        GELU_TANH => x * F.sigmoid(s(2 * SQRT_2_OVER_PI) * (x + s(GELU_K) * (x * x * x))),
        SIGMOID => F.sigmoid(x),
        TANH => F.tanh(x),
        SOFTPLUS => F.softplus(x),
        SOFTSIGN => x / (s(1.0) + @abs(x)),
        SILU => x * F.sigmoid(x),
        MISH => x * F.tanh(F.softplus(x)),
        HARDSWISH => x * simd.clamp(T, x + s(3.0), 0.0, 6.0) / s(6.0),
        HARDSIGMOID => simd.clamp(T, x + s(3.0), 0.0, 6.0) / s(6.0),
        else => simd.clamp(T, x, 0.0, 6.0), // RELU6
    };
}

/// act'(x), with the kinks of csrc/nn_act_backward.c.
fn dact(comptime T: type, comptime code: c_int, x: simd.Vec(T), alpha: T) simd.Vec(T) {
    const V = simd.Vec(T);
    const P = simd.Prim(T);
    const F = simd.Fn(T);
    const s = struct {
        inline fn f(a: T) V {
            return @splat(a);
        }
    }.f;
    const one = s(1.0);
    const zero = s(0.0);
    switch (code) {
        IDENTITY => return one,
        RELU => return @select(T, x > zero, one, zero),
        LEAKY_RELU => return @select(T, x > zero, one, s(alpha)),
        // alpha exp(min(x, 0)): NaN stays NaN
        ELU => return @select(T, x > zero, one, s(alpha) * P.expNeg(simd.minNan(T, x, zero))),
        SELU => return s(SELU_SCALE) * @select(T, x > zero, one, s(SELU_ALPHA) * P.expNeg(simd.minNan(T, x, zero))),
        GELU => { // Phi(x) + x phi(x)
            const pdf = P.expNeg(s(-0.5) * (x * x)) * s(INV_SQRT_2PI);
            return s(0.5) * P.onePlusErf(x * s(SQRT_HALF)) + x * pdf;
        },
        GELU_TANH => {
            // x s(w), w = 2c (x + k x^3): s + 2c x s (1 - s) (1 + 3k x^2), s (1 - s) = e / (1 + e)^2
            const w = s(TWO_SQRT_2_OVER_PI) * (x + s(GELU_K) * (x * x * x));
            const e = P.expNeg(-@abs(w));
            const r = one / (one + e);
            const sg = @select(T, w >= zero, r, e * r);
            return sg + (s(TWO_SQRT_2_OVER_PI) * x * (e * r * r)) * (one + s(3 * GELU_K) * x * x);
        },
        SIGMOID, TANH => {
            // sigmoid' = e / (1 + e)^2 with e = exp(-|x|), tanh' = 4 e / (1 + e)^2 with
            // e = exp(-2|x|); 1 + e as 2 + expm1(.) near the maximum at 0 (exact there)
            const t = code == TANH;
            var m: V = undefined;
            const e = P.expExpm1Neg(if (t) s(-2.0) * @abs(x) else -@abs(x), &m);
            const den = @select(T, m > s(-0.25), m + s(2.0), e + one);
            return (if (t) s(4.0) * e else e) / (den * den);
        },
        SOFTPLUS => return F.sigmoid(x),
        SOFTSIGN => { // 1 / (1 + |x|)^2, the square as 1 + a (2 + a): one rounding near 1
            const a = @abs(x);
            return one / (one + a * (s(2.0) + a));
        },
        SILU => { // s (1 + x (1 - s))
            const e = P.expNeg(-@abs(x));
            const r = one / (one + e);
            const pos = x >= zero;
            return @select(T, pos, r, e * r) * (one + x * @select(T, pos, e * r, r));
        },
        MISH => {
            // t = tanh(softplus(x)), d = t + x sigmoid(x) (1 - t^2); with e = exp(-|x|):
            //   x >= 0: t = (1 + 2e) / D, D = 1 + 2e (1 + e), extra = 4 x e^2 (1 + e) / D^2;
            //   x < 0:  t = N / D, N = e (e + 2), D = N + 2,  extra = 4 x e (1 + e) / D^2.
            const e = P.expNeg(-@abs(x));
            const pos = x >= zero;
            const n_neg = e * (e + s(2.0));
            const num = @select(T, pos, one + s(2.0) * e, n_neg);
            const den = @select(T, pos, one + s(2.0) * e * (one + e), n_neg + s(2.0));
            const extra = (s(4.0) * x) * e * (one + e) * @select(T, pos, e, one);
            const rd = one / den;
            return num * rd + extra * (rd * rd);
        },
        // NaN fails both comparisons: 1, like the reference
        HARDSWISH => return @select(T, x <= s(-3.0), zero, @select(T, x < s(3.0), x / s(3.0) + s(0.5), one)),
        HARDSIGMOID => return @select(T, (x > s(-3.0)) & (x < s(3.0)), s(1.0 / 6.0), zero),
        else => return @select(T, (x > zero) & (x < s(6.0)), one, zero), // RELU6
    }
}

fn Ctx(comptime T: type) type {
    return struct { x: [*]const T, dy: [*]const T, y: [*]T, n: usize, alpha: T };
}

/// y[lo, hi) = act(x) (blocks of ACT_BLOCK elements)
fn forwardBlocks(comptime T: type, comptime code: c_int) fn (*const Ctx(T), usize, usize) void {
    return struct {
        fn run(cp: *const Ctx(T), lo: usize, hi: usize) void {
            const c = cp.*; // a local copy: stores through the output cannot alias it
            const L = simd.lanes(T);
            var i = lo * ACT_BLOCK;
            const end = @min(hi * ACT_BLOCK, c.n);
            // two vectors per step: independent chains for the out-of-order core
            while (i + 2 * L <= end) : (i += 2 * L) {
                const a = act(T, code, simd.load(T, c.x + i), c.alpha);
                const b = act(T, code, simd.load(T, c.x + i + L), c.alpha);
                simd.store(T, c.y + i, a);
                simd.store(T, c.y + i + L, b);
            }
            while (i + L <= end) : (i += L) {
                simd.store(T, c.y + i, act(T, code, simd.load(T, c.x + i), c.alpha));
            }
            if (i < end) {
                const v = act(T, code, simd.loadPart(T, c.x + i, end - i, 0.0), c.alpha);
                simd.storePart(T, c.y + i, v, end - i);
            }
        }
    }.run;
}

/// dx[lo, hi) = dy * act'(x) (blocks of ACT_BLOCK elements)
fn backwardBlocks(comptime T: type, comptime code: c_int) fn (*const Ctx(T), usize, usize) void {
    return struct {
        fn run(cp: *const Ctx(T), lo: usize, hi: usize) void {
            const c = cp.*; // a local copy: stores through the output cannot alias it
            const L = simd.lanes(T);
            var i = lo * ACT_BLOCK;
            const end = @min(hi * ACT_BLOCK, c.n);
            while (i + L <= end) : (i += L) {
                const d = dact(T, code, simd.load(T, c.x + i), c.alpha);
                simd.store(T, c.y + i, simd.load(T, c.dy + i) * d);
            }
            if (i < end) {
                const d = dact(T, code, simd.loadPart(T, c.x + i, end - i, 0.0), c.alpha);
                simd.storePart(T, c.y + i, simd.loadPart(T, c.dy + i, end - i, 0.0) * d, end - i);
            }
        }
    }.run;
}

fn run(comptime T: type, comptime backward: bool, c: *const Ctx(T), code: c_int) void {
    const blocks = (c.n + ACT_BLOCK - 1) / ACT_BLOCK;
    const par = blocks > 1 and c.n >= (if (cheap(code)) simd.PAR_ELEMS else simd.PAR_ELEMS_MATH);
    switch (code) {
        inline 0...ACT_COUNT - 1 => |k| {
            const body = if (backward) backwardBlocks(T, k) else forwardBlocks(T, k);
            simd.parallelRange(blocks, par, c, body);
        },
        else => {},
    }
}

fn activation(comptime T: type, x: ?[*]const T, y: ?[*]T, n: i64, code: c_int, alpha: f64) c_int {
    const count = simd.numel(T, &.{n}) orelse return abi.ERR_SIZE;
    if (code < 0 or code >= ACT_COUNT) return abi.ERR_SIZE;
    if (count > 0 and (x == null or y == null)) return abi.ERR_NULL;
    if (count == 0) return abi.OK;
    if (code == IDENTITY and @intFromPtr(x.?) == @intFromPtr(y.?)) return abi.OK;
    const c = Ctx(T){ .x = x.?, .dy = x.?, .y = y.?, .n = count, .alpha = @floatCast(alpha) };
    run(T, false, &c, code);
    return abi.OK;
}

fn activationBackward(comptime T: type, dy: ?[*]const T, x: ?[*]const T, dx: ?[*]T, n: i64, code: c_int, alpha: f64) c_int {
    const count = simd.numel(T, &.{n}) orelse return abi.ERR_SIZE;
    if (code < 0 or code >= ACT_COUNT) return abi.ERR_SIZE;
    if (count > 0 and (dy == null or x == null or dx == null)) return abi.ERR_NULL;
    if (count == 0) return abi.OK;
    const c = Ctx(T){ .x = x.?, .dy = dy.?, .y = dx.?, .n = count, .alpha = @floatCast(alpha) };
    run(T, true, &c, code);
    return abi.OK;
}

export fn axiom_activation_f32(x: ?[*]const f32, y: ?[*]f32, n: i64, code: c_int, alpha: f64) c_int {
    return activation(f32, x, y, n, code, alpha);
}

export fn axiom_activation_f64(x: ?[*]const f64, y: ?[*]f64, n: i64, code: c_int, alpha: f64) c_int {
    return activation(f64, x, y, n, code, alpha);
}

export fn axiom_activation_backward_f32(dy: ?[*]const f32, x: ?[*]const f32, dx: ?[*]f32, n: i64, code: c_int, alpha: f64) c_int {
    return activationBackward(f32, dy, x, dx, n, code, alpha);
}

export fn axiom_activation_backward_f64(dy: ?[*]const f64, x: ?[*]const f64, dx: ?[*]f64, n: i64, code: c_int, alpha: f64) c_int {
    return activationBackward(f64, dy, x, dx, n, code, alpha);
}

test "activation: values, in place, NaN and bad arguments" {
    var x = [_]f32{ -2.0, -0.5, 0.0, 0.5, 2.0, std.math.nan(f32), -std.math.inf(f32), std.math.inf(f32), 1.0 };
    var y: [9]f32 = undefined;
    try std.testing.expectEqual(abi.OK, axiom_activation_f32(&x, &y, 9, RELU, 0.0));
    try std.testing.expectEqualSlices(f32, &.{ 0, 0, 0, 0.5, 2 }, y[0..5]);
    try std.testing.expect(std.math.isNan(y[5])); // NaN stays NaN
    try std.testing.expectEqualSlices(f32, &.{ 0, std.math.inf(f32), 1 }, y[6..9]);
    try std.testing.expectEqual(abi.OK, axiom_activation_f32(&x, &y, 9, GELU, 0.0));
    try std.testing.expectApproxEqAbs(@as(f32, 1.9544997), y[4], 1e-6);
    try std.testing.expect(std.math.isNan(y[6])); // -inf * 0
    var z = [_]f64{ -1.0, 0.0, 1.0 };
    try std.testing.expectEqual(abi.OK, axiom_activation_f64(&z, &z, 3, TANH, 0.0));
    try std.testing.expectApproxEqRel(@as(f64, 0.7615941559557649), z[2], 1e-15);
    var dx: [3]f64 = undefined;
    const dy = [_]f64{ 1.0, 1.0, 1.0 };
    const xs = [_]f64{ -1.0, 0.0, 1.0 };
    try std.testing.expectEqual(abi.OK, axiom_activation_backward_f64(&dy, &xs, &dx, 3, RELU, 0.0));
    try std.testing.expectEqualSlices(f64, &.{ 0, 0, 1 }, &dx); // relu'(0) = 0
    try std.testing.expectEqual(abi.ERR_SIZE, axiom_activation_f32(&x, &y, -1, RELU, 0.0));
    try std.testing.expectEqual(abi.ERR_SIZE, axiom_activation_f32(&x, &y, 9, ACT_COUNT, 0.0));
    try std.testing.expectEqual(abi.ERR_NULL, axiom_activation_f32(null, &y, 9, RELU, 0.0));
    try std.testing.expectEqual(abi.OK, axiom_activation_f32(null, null, 0, RELU, 0.0));
}
