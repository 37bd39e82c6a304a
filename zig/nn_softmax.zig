//! Softmax / log-softmax along the middle axis of (outer, n, inner) and the gradient:
//! axiom_softmax_f32/_f64 and axiom_softmax_backward_f32/_f64 (csrc/axiom_kernels_nn.h).
//!
//! Mirrors csrc/nn_softmax.c, one generic implementation for both types. inner == 1 (the
//! last axis): three passes over each row, which stays in L1 (max, then e = exp(x - max)
//! with its sum, then e / sum or (x - max) - log(sum)). inner > 1: the same passes over a
//! tile of up to COL_TILE neighbouring columns, so nothing is transposed. Special values
//! follow the reference: exp(x - max) is NaN for a row holding NaN or +inf or made of -inf
//! only, and that NaN reaches the whole row through the sum.

const std = @import("std");
const abi = @import("abi.zig");
const simd = @import("nn_simd_impl.zig");

const COL_TILE: usize = 64; // columns per tile when inner > 1 (a multiple of the lanes)

fn check(comptime T: type, x: ?[*]const T, y: anytype, outer: i64, n: i64, inner: i64, use_log: c_int) error{ Size, Null }!usize {
    const count = simd.numel(T, &.{ outer, n, inner }) orelse return error.Size;
    if (use_log != 0 and use_log != 1) return error.Size;
    if (count > 0 and (x == null or y == null)) return error.Null;
    return count;
}

fn code(e: error{ Size, Null }) c_int {
    return switch (e) {
        error.Size => abi.ERR_SIZE,
        error.Null => abi.ERR_NULL,
    };
}

fn Ctx(comptime T: type) type {
    return struct {
        x: [*]const T, // x (forward) or y (backward)
        dy: [*]const T,
        y: [*]T, // y (forward) or dx (backward)
        n: usize,
        inner: usize,
        tiles: usize,
        log: bool,
    };
}

/// One row (inner == 1) of n elements.
fn softmaxRow(comptime T: type, x: [*]const T, y: [*]T, n: usize, use_log: bool) void {
    const L = simd.lanes(T);
    const V = simd.Vec(T);
    const P = simd.Prim(T);
    const ninf: V = @splat(-std.math.inf(T));
    var m0 = ninf;
    var m1 = ninf;
    var m2 = ninf;
    var m3 = ninf;
    var i: usize = 0;
    while (i + 4 * L <= n) : (i += 4 * L) {
        m0 = simd.maxFast(T, m0, simd.load(T, x + i));
        m1 = simd.maxFast(T, m1, simd.load(T, x + i + L));
        m2 = simd.maxFast(T, m2, simd.load(T, x + i + 2 * L));
        m3 = simd.maxFast(T, m3, simd.load(T, x + i + 3 * L));
    }
    while (i + L <= n) : (i += L) m0 = simd.maxFast(T, m0, simd.load(T, x + i));
    if (i < n) m1 = simd.maxFast(T, m1, simd.loadPart(T, x + i, n - i, -std.math.inf(T)));
    // a NaN lost here still reaches the sum below through exp(NaN - max)
    const m = simd.hmaxNan(T, simd.maxFast(T, simd.maxFast(T, m0, m1), simd.maxFast(T, m2, m3)));
    const mv: V = @splat(m);
    var s0: V = @splat(0.0);
    var s1: V = @splat(0.0);
    i = 0;
    if (!use_log) {
        while (i + 2 * L <= n) : (i += 2 * L) {
            const e0 = P.expNeg(simd.load(T, x + i) - mv);
            const e1 = P.expNeg(simd.load(T, x + i + L) - mv);
            simd.store(T, y + i, e0);
            simd.store(T, y + i + L, e1);
            s0 += e0;
            s1 += e1;
        }
        while (i + L <= n) : (i += L) {
            const e0 = P.expNeg(simd.load(T, x + i) - mv);
            simd.store(T, y + i, e0);
            s0 += e0;
        }
        if (i < n) {
            const e1 = P.expNeg(simd.loadPart(T, x + i, n - i, -std.math.inf(T)) - mv);
            simd.storePart(T, y + i, e1, n - i);
            s1 += e1;
        }
        const inv: T = 1.0 / simd.hsum(T, s0 + s1);
        const iv: V = @splat(inv);
        i = 0;
        while (i + L <= n) : (i += L) simd.store(T, y + i, simd.load(T, y + i) * iv);
        while (i < n) : (i += 1) y[i] *= inv;
    } else {
        while (i + 2 * L <= n) : (i += 2 * L) {
            s0 += P.expNeg(simd.load(T, x + i) - mv);
            s1 += P.expNeg(simd.load(T, x + i + L) - mv);
        }
        while (i + L <= n) : (i += L) s0 += P.expNeg(simd.load(T, x + i) - mv);
        if (i < n) s1 += P.expNeg(simd.loadPart(T, x + i, n - i, -std.math.inf(T)) - mv);
        const lse: T = @log(simd.hsum(T, s0 + s1));
        const lv: V = @splat(lse);
        i = 0;
        while (i + L <= n) : (i += L) simd.store(T, y + i, (simd.load(T, x + i) - mv) - lv);
        while (i < n) : (i += 1) y[i] = (x[i] - m) - lse;
    }
}

/// Lanes [0, w) of vector v of a column tile row at p (the last vector may be partial).
inline fn loadCol(comptime T: type, p: [*]const T, v: usize, nv: usize, tail: usize, fill: T) simd.Vec(T) {
    const L = simd.lanes(T);
    return if (v == nv - 1 and tail < L) simd.loadPart(T, p + v * L, tail, fill) else simd.load(T, p + v * L);
}

inline fn storeCol(comptime T: type, p: [*]T, v: usize, nv: usize, tail: usize, val: simd.Vec(T)) void {
    const L = simd.lanes(T);
    if (v == nv - 1 and tail < L) simd.storePart(T, p + v * L, val, tail) else simd.store(T, p + v * L, val);
}

/// Columns [0, w) (w <= COL_TILE) of x (n rows of stride ld).
fn softmaxCols(comptime T: type, x: [*]const T, y: [*]T, n: usize, ld: usize, w: usize, use_log: bool) void {
    const L = simd.lanes(T);
    const V = simd.Vec(T);
    const P = simd.Prim(T);
    const NT = COL_TILE / L;
    const ninf = -std.math.inf(T);
    var m: [NT]V = @splat(@splat(ninf));
    var s: [NT]V = @splat(@splat(0.0));
    const nv = (w + L - 1) / L;
    const tail = w - (nv - 1) * L; // lanes of the last vector, 1..L
    for (0..n) |i| {
        for (0..nv) |v| m[v] = simd.maxFast(T, m[v], loadCol(T, x + i * ld, v, nv, tail, ninf));
    }
    for (0..n) |i| {
        for (0..nv) |v| {
            const e = P.expNeg(loadCol(T, x + i * ld, v, nv, tail, ninf) - m[v]);
            s[v] += e;
            if (!use_log) storeCol(T, y + i * ld, v, nv, tail, e);
        }
    }
    for (0..nv) |v| {
        if (use_log) {
            inline for (0..L) |l| s[v][l] = @log(s[v][l]);
        } else {
            s[v] = @as(V, @splat(1.0)) / s[v];
        }
    }
    for (0..n) |i| {
        for (0..nv) |v| {
            const r = if (use_log)
                (loadCol(T, x + i * ld, v, nv, tail, ninf) - m[v]) - s[v]
            else
                loadCol(T, y + i * ld, v, nv, tail, 0.0) * s[v];
            storeCol(T, y + i * ld, v, nv, tail, r);
        }
    }
}

fn forwardRows(comptime T: type) fn (*const Ctx(T), usize, usize) void {
    return struct {
        fn run(cp: *const Ctx(T), lo: usize, hi: usize) void {
            const c = cp.*; // a local copy: stores through the output cannot alias it
            for (lo..hi) |r| softmaxRow(T, c.x + r * c.n, c.y + r * c.n, c.n, c.log);
        }
    }.run;
}

fn forwardTiles(comptime T: type) fn (*const Ctx(T), usize, usize) void {
    return struct {
        fn run(cp: *const Ctx(T), lo: usize, hi: usize) void {
            const c = cp.*; // a local copy: stores through the output cannot alias it
            for (lo..hi) |t| {
                const o = t / c.tiles;
                const j0 = (t % c.tiles) * COL_TILE;
                const off = o * c.n * c.inner + j0;
                softmaxCols(T, c.x + off, c.y + off, c.n, c.inner, @min(c.inner - j0, COL_TILE), c.log);
            }
        }
    }.run;
}

/// dx of one row (inner == 1): y (dy - sum(dy y)) or dy - exp(y) sum(dy).
fn backwardRow(comptime T: type, y: [*]const T, dy: [*]const T, dx: [*]T, n: usize, use_log: bool) void {
    const L = simd.lanes(T);
    const V = simd.Vec(T);
    const P = simd.Prim(T);
    var acc: V = @splat(0.0);
    var i: usize = 0;
    while (i + L <= n) : (i += L) {
        const g = simd.load(T, dy + i);
        acc = if (use_log) acc + g else @mulAdd(V, g, simd.load(T, y + i), acc);
    }
    var sum = simd.hsum(T, acc);
    while (i < n) : (i += 1) sum = if (use_log) sum + dy[i] else @mulAdd(T, dy[i], y[i], sum);
    const sv: V = @splat(sum);
    i = 0;
    while (i + L <= n) : (i += L) {
        const g = simd.load(T, dy + i);
        const yy = simd.load(T, y + i);
        simd.store(T, dx + i, if (use_log) @mulAdd(V, -P.exp(yy), sv, g) else yy * (g - sv));
    }
    while (i < n) : (i += 1) dx[i] = if (use_log) @mulAdd(T, -@exp(y[i]), sum, dy[i]) else y[i] * (dy[i] - sum);
}

/// dx of columns [j0, j0 + w) (w <= COL_TILE) of one (n, inner) slab.
fn backwardCols(comptime T: type, y: [*]const T, dy: [*]const T, dx: [*]T, n: usize, inner: usize, j0: usize, w: usize, use_log: bool) void {
    const L = simd.lanes(T);
    const P = simd.Prim(T);
    var acc: [COL_TILE]T = @splat(0.0);
    for (0..n) |i| {
        const yi = y + i * inner + j0;
        const gi = dy + i * inner + j0;
        for (0..w) |j| acc[j] = if (use_log) acc[j] + gi[j] else @mulAdd(T, gi[j], yi[j], acc[j]);
    }
    for (0..n) |i| {
        const off = i * inner + j0;
        var j: usize = 0;
        if (use_log) {
            while (j + L <= w) : (j += L) {
                const a: simd.Vec(T) = acc[j..][0..L].*;
                simd.store(T, dx + off + j, @mulAdd(simd.Vec(T), -P.exp(simd.load(T, y + off + j)), a, simd.load(T, dy + off + j)));
            }
            while (j < w) : (j += 1) dx[off + j] = @mulAdd(T, -@exp(y[off + j]), acc[j], dy[off + j]);
        } else {
            while (j < w) : (j += 1) dx[off + j] = y[off + j] * (dy[off + j] - acc[j]);
        }
    }
}

fn backwardRows(comptime T: type) fn (*const Ctx(T), usize, usize) void {
    return struct {
        fn run(cp: *const Ctx(T), lo: usize, hi: usize) void {
            const c = cp.*; // a local copy: stores through the output cannot alias it
            for (lo..hi) |r| backwardRow(T, c.x + r * c.n, c.dy + r * c.n, c.y + r * c.n, c.n, c.log);
        }
    }.run;
}

fn backwardTiles(comptime T: type) fn (*const Ctx(T), usize, usize) void {
    return struct {
        fn run(cp: *const Ctx(T), lo: usize, hi: usize) void {
            const c = cp.*; // a local copy: stores through the output cannot alias it
            for (lo..hi) |t| {
                const o = t / c.tiles;
                const j0 = (t % c.tiles) * COL_TILE;
                const off = o * c.n * c.inner;
                backwardCols(T, c.x + off, c.dy + off, c.y + off, c.n, c.inner, j0, @min(c.inner - j0, COL_TILE), c.log);
            }
        }
    }.run;
}

fn softmax(comptime T: type, x: ?[*]const T, y: ?[*]T, outer: i64, n: i64, inner: i64, use_log: c_int) c_int {
    const count = check(T, x, y, outer, n, inner, use_log) catch |e| return code(e);
    if (count == 0) return abi.OK;
    run(T, false, x.?, x.?, y.?, outer, n, inner, use_log, count);
    return abi.OK;
}

fn softmaxBackward(comptime T: type, y: ?[*]const T, dy: ?[*]const T, dx: ?[*]T, outer: i64, n: i64, inner: i64, use_log: c_int) c_int {
    const count = check(T, y, dx, outer, n, inner, use_log) catch |e| return code(e);
    if (count > 0 and dy == null) return abi.ERR_NULL;
    if (count == 0) return abi.OK;
    run(T, true, y.?, dy.?, dx.?, outer, n, inner, use_log, count);
    return abi.OK;
}

fn run(comptime T: type, comptime backward: bool, x: [*]const T, dy: [*]const T, y: [*]T, outer_: i64, n: i64, inner_: i64, use_log: c_int, count: usize) void {
    const outer: usize = @intCast(outer_);
    const inner: usize = @intCast(inner_);
    const tiles = (inner + COL_TILE - 1) / COL_TILE;
    const c = Ctx(T){ .x = x, .dy = dy, .y = y, .n = @intCast(n), .inner = inner, .tiles = tiles, .log = use_log == 1 };
    const par = count >= simd.PAR_ELEMS;
    if (inner == 1) {
        simd.parallelRange(outer, par, &c, if (backward) backwardRows(T) else forwardRows(T));
    } else {
        simd.parallelRange(outer * tiles, par, &c, if (backward) backwardTiles(T) else forwardTiles(T));
    }
}

export fn axiom_softmax_f32(x: ?[*]const f32, y: ?[*]f32, outer: i64, n: i64, inner: i64, use_log: c_int) c_int {
    return softmax(f32, x, y, outer, n, inner, use_log);
}

export fn axiom_softmax_f64(x: ?[*]const f64, y: ?[*]f64, outer: i64, n: i64, inner: i64, use_log: c_int) c_int {
    return softmax(f64, x, y, outer, n, inner, use_log);
}

export fn axiom_softmax_backward_f32(y: ?[*]const f32, dy: ?[*]const f32, dx: ?[*]f32, outer: i64, n: i64, inner: i64, use_log: c_int) c_int {
    return softmaxBackward(f32, y, dy, dx, outer, n, inner, use_log);
}

export fn axiom_softmax_backward_f64(y: ?[*]const f64, dy: ?[*]const f64, dx: ?[*]f64, outer: i64, n: i64, inner: i64, use_log: c_int) c_int {
    return softmaxBackward(f64, y, dy, dx, outer, n, inner, use_log);
}

test "softmax: rows sum to 1, special rows give NaN, bad arguments" {
    const inf = std.math.inf(f32);
    const x = [_]f32{ 1, 2, 3, -inf, -inf, -inf, 0, inf, 1 };
    var y: [9]f32 = undefined;
    try std.testing.expectEqual(abi.OK, axiom_softmax_f32(&x, &y, 3, 3, 1, 0));
    try std.testing.expectApproxEqAbs(@as(f32, 1.0), y[0] + y[1] + y[2], 1e-6);
    for (y[3..9]) |v| try std.testing.expect(std.math.isNan(v));
    // the middle axis of (1, 3, 2): columns are independent
    const x2 = [_]f64{ 0, 10, 0, 10, 0, 10 };
    var y2: [6]f64 = undefined;
    try std.testing.expectEqual(abi.OK, axiom_softmax_f64(&x2, &y2, 1, 3, 2, 1));
    try std.testing.expectApproxEqRel(@as(f64, -@log(3.0)), y2[0], 1e-15);
    try std.testing.expectApproxEqRel(@as(f64, -@log(3.0)), y2[1], 1e-15);
    try std.testing.expectEqual(abi.ERR_SIZE, axiom_softmax_f32(&x, &y, 3, 3, 1, 2));
    try std.testing.expectEqual(abi.ERR_SIZE, axiom_softmax_f32(&x, &y, 3, -3, 1, 0));
    try std.testing.expectEqual(abi.ERR_NULL, axiom_softmax_backward_f32(&x, null, &y, 3, 3, 1, 0));
}
