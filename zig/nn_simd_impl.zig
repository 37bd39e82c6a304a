//! Vectors, vectorised math and argument checks shared by the Zig NN kernels
//! (nn_act.zig, nn_softmax.zig, nn_norm.zig, nn_pool.zig); exports no symbol.
//!
//! Mirrors csrc/nn_simd.h and csrc/nn_common.h. Kernels are written once for `comptime T`
//! over `Vec(T)` (8 x f32 or 4 x f64); only the math primitives differ by type:
//! float32 uses the polynomials of nn_simd.h (same coefficients, same special values:
//! NaN in -> NaN out, exp(-inf) = 0, results below ~2**-125 flush to zero), float64 uses
//! the accurate scalar functions lane by lane (@exp, std.math, libc erfc), like the
//! float64 C kernels use libm.

const std = @import("std");
const builtin = @import("builtin");
const abi = @import("abi.zig");

/// Work thresholds of csrc/nn_common.h: threads only above them.
pub const PAR_ELEMS: usize = 1 << 20; // memory-bound ops
pub const PAR_ELEMS_MATH: usize = 1 << 16; // element-wise ops with transcendental math

/// Lanes of one vector of T (32 bytes: AVX2).
pub fn lanes(comptime T: type) comptime_int {
    return 32 / @sizeOf(T);
}

pub fn Vec(comptime T: type) type {
    return @Vector(lanes(T), T);
}

pub fn Mask(comptime T: type) type {
    return @Vector(lanes(T), bool);
}

pub inline fn load(comptime T: type, p: [*]const T) Vec(T) {
    return p[0..lanes(T)].*;
}

pub inline fn store(comptime T: type, p: [*]T, v: Vec(T)) void {
    p[0..lanes(T)].* = v;
}

/// Masked AVX loads / stores for partial vectors (as csrc/nn_simd.h uses): only where LLVM
/// compiles the inline assembly (the self-hosted Debug backends do not parse it).
const use_maskmov = builtin.zig_backend == .stage2_llvm and builtin.cpu.arch == .x86_64 and
    std.Target.x86.featureSetHas(builtin.cpu.features, .avx);

fn IntOf(comptime T: type) type {
    return if (T == f32) i32 else i64;
}

/// Lanes below n all ones, the others zero (the sign bit selects in vmaskmov).
inline fn laneMask(comptime T: type, n: usize) @Vector(lanes(T), IntOf(T)) {
    const I = IntOf(T);
    const idx = std.simd.iota(I, lanes(T));
    const lim: @Vector(lanes(T), I) = @splat(@intCast(n));
    return @select(I, idx < lim, @as(@Vector(lanes(T), I), @splat(-1)), @as(@Vector(lanes(T), I), @splat(0)));
}

inline fn maskLoad(comptime T: type, p: [*]const T, m: @Vector(lanes(T), IntOf(T))) Vec(T) {
    const op = if (T == f32) "vmaskmovps" else "vmaskmovpd";
    return asm volatile (op ++ " (%[p]), %[m], %[r]"
        : [r] "=x" (-> Vec(T)),
        : [p] "r" (p),
          [m] "x" (m),
        : .{ .memory = true });
}

inline fn maskStore(comptime T: type, p: [*]T, m: @Vector(lanes(T), IntOf(T)), v: Vec(T)) void {
    const op = if (T == f32) "vmaskmovps" else "vmaskmovpd";
    asm volatile (op ++ " %[v], %[m], (%[p])"
        :
        : [p] "r" (p),
          [m] "x" (m),
          [v] "x" (v),
        : .{ .memory = true });
}

/// The first n (< lanes) elements at p, the other lanes set to fill; reads nothing beyond.
pub inline fn loadPart(comptime T: type, p: [*]const T, n: usize, fill: T) Vec(T) {
    if (use_maskmov) {
        const m = laneMask(T, n);
        return @select(T, m != @as(@TypeOf(m), @splat(0)), maskLoad(T, p, m), @as(Vec(T), @splat(fill)));
    }
    var tmp: [lanes(T)]T = @splat(fill);
    @memcpy(tmp[0..n], p[0..n]);
    return tmp;
}

/// Store the first n (< lanes) lanes of v at p; writes nothing beyond.
pub inline fn storePart(comptime T: type, p: [*]T, v: Vec(T), n: usize) void {
    if (use_maskmov) return maskStore(T, p, laneMask(T, n), v);
    const tmp: [lanes(T)]T = v;
    @memcpy(p[0..n], tmp[0..n]);
}

/// a > b ? a : b (b when either is NaN): for maxima whose NaN shows up elsewhere.
pub inline fn maxFast(comptime T: type, a: Vec(T), b: Vec(T)) Vec(T) {
    return @select(T, a > b, a, b);
}

/// max / min that propagate NaN from either operand (numpy.maximum / minimum).
pub inline fn maxNan(comptime T: type, a: Vec(T), b: Vec(T)) Vec(T) {
    return @select(T, (a > b) | (a != a), a, b);
}

pub inline fn minNan(comptime T: type, a: Vec(T), b: Vec(T)) Vec(T) {
    return @select(T, (a < b) | (a != a), a, b);
}

/// Clamp to [lo, hi]; NaN stays NaN (numpy.clip).
pub inline fn clamp(comptime T: type, x: Vec(T), lo: T, hi: T) Vec(T) {
    const l: Vec(T) = @splat(lo);
    const h: Vec(T) = @splat(hi);
    const a = @select(T, x < l, l, x);
    return @select(T, a > h, h, a);
}

pub inline fn anyTrue(m: anytype) bool {
    return @reduce(.Or, m);
}

/// Horizontal sum (pairwise, like nn_hsum).
pub inline fn hsum(comptime T: type, v: Vec(T)) T {
    const L = lanes(T);
    const a: [L]T = v;
    if (L == 8) return ((a[0] + a[4]) + (a[1] + a[5])) + ((a[2] + a[6]) + (a[3] + a[7]));
    return (a[0] + a[2]) + (a[1] + a[3]);
}

/// Horizontal maximum; NaN wins.
pub inline fn hmaxNan(comptime T: type, v: Vec(T)) T {
    const a: [lanes(T)]T = v;
    var m = a[0];
    inline for (1..lanes(T)) |i| m = if (a[i] > m or a[i] != a[i]) a[i] else m;
    return m;
}

/// 1 / sqrt(v + eps) computed in double, as the C norms do.
pub inline fn rsqrtEps(comptime T: type, v: T, eps: f64) T {
    return @floatCast(1.0 / @sqrt(@as(f64, v) + eps));
}

// ---- math primitives ----------------------------------------------------------------------

/// The type-specific primitives for Vec(T); the formulas built on them are in `Fn(T)`.
pub fn Prim(comptime T: type) type {
    return if (T == f32) PrimF32 else PrimF64;
}

const V8 = @Vector(8, f32);
const I8 = @Vector(8, i32);

inline fn bitsF(v: I8) V8 {
    return @bitCast(v);
}

inline fn bitsI(v: V8) I8 {
    return @bitCast(v);
}

inline fn s8(a: f32) V8 {
    return @splat(a);
}

inline fn si(a: i32) I8 {
    return @splat(a);
}

inline fn fma8(a: V8, b: V8, c: V8) V8 {
    return @mulAdd(V8, a, b, c);
}

/// float32: the polynomials of csrc/nn_simd.h.
const PrimF32 = struct {
    const C2: f32 = 0.49999994039535522;
    const C3: f32 = 0.16666521131992340;
    const C4: f32 = 0.041668388992547989;
    const C5: f32 = 0.0083687128499150276;
    const C6: f32 = 0.0013814531266689301;
    const LOG2E: f32 = 1.44269504088896341;
    const LN2_HI: f32 = 0.693359375;
    const LN2_LO: f32 = -2.12194440e-4;
    const MAGIC: f32 = 12582912.0; // 1.5 * 2**23: adding it rounds to an integer

    /// expm1(r) for |r| <= ln2/2
    inline fn expm1Red(r: V8) V8 {
        var p = s8(C6);
        p = fma8(p, r, s8(C5));
        p = fma8(p, r, s8(C4));
        p = fma8(p, r, s8(C3));
        p = fma8(p, r, s8(C2));
        return fma8(p, r * r, r);
    }

    const Reduced = struct { r: V8, n: I8 };

    /// x = n ln2 + r with |r| <= ln2/2
    inline fn reduce(x: V8) Reduced {
        const t = fma8(x, s8(LOG2E), s8(MAGIC));
        const n = t - s8(MAGIC);
        const ni = bitsI(t) -% bitsI(s8(MAGIC));
        const r = fma8(-n, s8(LN2_HI), x);
        return .{ .r = fma8(-n, s8(LN2_LO), r), .n = ni };
    }

    inline fn pow2(n: I8, comptime bias: i32) V8 {
        return bitsF((n +% si(bias)) << @splat(23));
    }

    /// e^x; +inf above ln(FLT_MAX), 0 below ~-87.5.
    pub inline fn exp(x: V8) V8 {
        const red = reduce(clamp(f32, x, -87.6, 88.76));
        const p = expm1Red(red.r) + s8(1.0);
        return (p + p) * pow2(red.n, 126);
    }

    /// e^x for x <= 0 or NaN; exp(-inf) = 0.
    pub inline fn expNeg(x: V8) V8 {
        const red = reduce(@select(f32, x < s8(-88.0), s8(-88.0), x));
        return (expm1Red(red.r) + s8(1.0)) * pow2(red.n, 127);
    }

    /// e^x - 1 for x <= 0 (NaN stays NaN).
    pub inline fn expm1Neg(x: V8) V8 {
        const red = reduce(clamp(f32, x, -87.6, 0.0));
        const s = pow2(red.n, 127);
        return fma8(s, expm1Red(red.r), s - s8(1.0));
    }

    /// e^x and e^x - 1 for x <= 0 from one reduction (see csrc/nn_act_backward.c).
    pub inline fn expExpm1Neg(x: V8, m: *V8) V8 {
        const red = reduce(clamp(f32, x, -88.0, 0.0));
        const q = expm1Red(red.r);
        const s = pow2(red.n, 127);
        m.* = fma8(s, q, s - s8(1.0));
        return fma8(s, q, s);
    }

    /// log(1 + t) for t in [0, 1] (and NaN).
    pub inline fn log1p01(t: V8) V8 {
        const u = t + s8(1.0);
        const bits = bitsI(u);
        const k = (bits -% si(0x3f3504f3)) >> @splat(23);
        const m = bitsF(bits -% (k << @splat(23)));
        const f = m - s8(1.0);
        const s = f / (f + s8(2.0));
        const s2 = s * s;
        var p = s8(0.23581886291503906);
        p = fma8(p, s2, s8(0.28537327051162720));
        p = fma8(p, s2, s8(0.40000334382057190));
        p = fma8(p, s2, s8(0.66666662693023682));
        const kf: V8 = @floatFromInt(k);
        const logm = fma8(s * s2, p, s + s);
        const c = (t - (u - s8(1.0))) / u;
        return fma8(kf, s8(LN2_HI), logm + fma8(kf, s8(LN2_LO), c));
    }

    /// 1 + erf(z) without cancellation (erfc(|z|) = exp(-(a + a Q(a))) fitted on [0, 4]).
    pub inline fn onePlusErf(z: V8) V8 {
        const a0 = @abs(z);
        const a = @select(f32, a0 > s8(4.0), s8(4.0), a0); // a0 >= 0 or NaN (stays NaN)
        var q = s8(3.1438699807040393e-05);
        q = fma8(q, a, s8(-0.00030879015685059130));
        q = fma8(q, a, s8(0.0010323628084734082));
        q = fma8(q, a, s8(0.00053699611453339458));
        q = fma8(q, a, s8(-0.019584015011787415));
        q = fma8(q, a, s8(0.10291963815689087));
        q = fma8(q, a, s8(0.63659775257110596));
        q = fma8(q, a, s8(0.12838025391101837));
        var e = expNeg(-fma8(q, a, a));
        e = @select(f32, a0 > s8(4.0), s8(0.0), e);
        return @select(f32, z >= s8(0.0), s8(2.0) - e, e);
    }
};

extern "c" fn erfc(x: f64) f64;

/// float64: accurate scalar functions lane by lane (like the libm calls of the C kernels).
const PrimF64 = struct {
    const V4 = @Vector(4, f64);

    inline fn map(v: V4, comptime f: fn (f64) f64) V4 {
        var r: V4 = undefined;
        inline for (0..4) |i| r[i] = f(v[i]);
        return r;
    }

    fn expS(a: f64) f64 {
        return @exp(a);
    }

    fn expm1S(a: f64) f64 {
        return std.math.expm1(a);
    }

    fn log1pS(a: f64) f64 {
        return std.math.log1p(a);
    }

    fn onePlusErfS(z: f64) f64 {
        return erfc(-z);
    }

    pub inline fn exp(x: V4) V4 {
        return map(x, expS);
    }

    pub inline fn expNeg(x: V4) V4 {
        return map(x, expS);
    }

    pub inline fn expm1Neg(x: V4) V4 {
        return map(x, expm1S);
    }

    pub inline fn expExpm1Neg(x: V4, m: *V4) V4 {
        m.* = map(x, expm1S);
        return map(x, expS);
    }

    pub inline fn log1p01(t: V4) V4 {
        return map(t, log1pS);
    }

    pub inline fn onePlusErf(z: V4) V4 {
        return map(z, onePlusErfS);
    }
};

/// Formulas over the primitives, shared by both types (csrc/nn_simd.h).
pub fn Fn(comptime T: type) type {
    return struct {
        const V = Vec(T);
        const P = Prim(T);

        inline fn s(a: T) V {
            return @splat(a);
        }

        /// tanh via expm1 of -2|x|: accurate for small and large |x| alike.
        pub inline fn tanh(x: V) V {
            const em = P.expm1Neg(s(-2.0) * @abs(x));
            const t = -em / (em + s(2.0));
            const B = if (T == f32) u32 else u64;
            const BV = @Vector(lanes(T), B);
            const sign_bit: BV = @splat(@as(B, 1) << (@bitSizeOf(T) - 1));
            return @bitCast((@as(BV, @bitCast(t)) & ~sign_bit) | (@as(BV, @bitCast(x)) & sign_bit));
        }

        /// 1 / (1 + e^-x), two-sided so exp never overflows.
        pub inline fn sigmoid(x: V) V {
            const e = P.expNeg(-@abs(x));
            return @select(T, x >= s(0.0), s(1.0), e) / (e + s(1.0));
        }

        /// max(x, 0) + log1p(exp(-|x|))
        pub inline fn softplus(x: V) V {
            const pos = @select(T, x > s(0.0), x, s(0.0));
            return pos + P.log1p01(P.expNeg(-@abs(x)));
        }
    };
}

// ---- argument checks (csrc/nn_common.h) ---------------------------------------------------

/// nn_numel (abi.nnNumel) for elements of T, as a count.
pub fn numel(comptime T: type, dims: []const i64) ?usize {
    return @intCast(abi.nnNumel(@sizeOf(T), dims) orelse return null);
}

/// Output extent of a pooling axis (nn_pool_extent), or null on a size error.
pub fn poolExtent(in: i64, k: i64, s: i64, p0: i64, p1: i64, dil: i64) ?i64 {
    if (in < 0 or k < 1 or s < 1 or dil < 1 or p0 < 0 or p1 < 0) return null;
    const a = @addWithOverflow(in, p0);
    if (a[1] != 0) return null;
    const padded = @addWithOverflow(a[0], p1);
    if (padded[1] != 0) return null;
    const m = @mulWithOverflow(dil, k - 1);
    if (m[1] != 0) return null;
    const span = @addWithOverflow(m[0], 1);
    if (span[1] != 0) return null;
    return if (padded[0] < span[0]) 0 else @divTrunc(padded[0] - span[0], s) + 1;
}

// ---- threads ------------------------------------------------------------------------------

/// body(ctx, lo, hi) over [0, total) in contiguous ranges: on the calling thread alone
/// unless `par`, else split into a few ranges per thread for abi.parallelFor.
pub fn parallelRange(total: usize, par: bool, ctx: anytype, comptime body: fn (@TypeOf(ctx), usize, usize) void) void {
    const threads = abi.numThreads();
    if (!par or threads <= 1 or total <= 1) {
        body(ctx, 0, total);
        return;
    }
    const tasks = @min(total, threads * 4);
    const W = struct {
        ctx: @TypeOf(ctx),
        total: usize,
        chunk: usize,

        fn run(w: *const @This(), t: usize) void {
            const lo = t * w.chunk;
            if (lo >= w.total) return;
            body(w.ctx, lo, @min(lo + w.chunk, w.total));
        }
    };
    const w = W{ .ctx = ctx, .total = total, .chunk = (total + tasks - 1) / tasks };
    abi.parallelFor(tasks, &w, W.run);
}

/// Scratch memory from libc (the library links it); null when malloc fails.
pub fn alloc(comptime T: type, n: usize) ?[]T {
    return std.heap.c_allocator.alloc(T, @max(n, 1)) catch null;
}

pub fn free(buf: anytype) void {
    std.heap.c_allocator.free(buf);
}
