//! Batch norm (inference), layer norm, RMS norm and their gradients:
//! axiom_batchnorm_*, axiom_layernorm_*, axiom_rmsnorm_*, axiom_batchnorm_backward_*,
//! axiom_layernorm_backward_*, axiom_rmsnorm_backward_* (f32 and f64, csrc/axiom_kernels_nn.h).
//!
//! Mirrors csrc/nn_norm.c and csrc/nn_norm_impl.h, one generic implementation for both
//! types. A norm row (which stays in L1) is read once from memory and then twice from cache:
//! mean, two-pass variance (no cancellation), normalise; 1 / sqrt(var + eps) is taken in
//! double. Batch norm streams the flat array against a repeating pattern of per-channel
//! constants whose length is a multiple of both c and the vector width, so every vector
//! load is full whatever c is. The backward kernels keep their parameter-gradient partial
//! sums in f64, one buffer per task, added up in task order (deterministic).

const std = @import("std");
const abi = @import("abi.zig");
const simd = @import("nn_simd_impl.zig");

// ---- forward rows ---------------------------------------------------------------------------

/// sum of (x - c)^2 (square = true) or of x (square = false, c unused), 4 accumulators
inline fn rowSum(comptime T: type, x: [*]const T, n: usize, c: T, comptime square: bool) T {
    const L = simd.lanes(T);
    const V = simd.Vec(T);
    const cv: V = @splat(c);
    var a: [4]V = @splat(@splat(0.0));
    var i: usize = 0;
    while (i + 4 * L <= n) : (i += 4 * L) {
        inline for (0..4) |k| {
            const v = simd.load(T, x + i + k * L);
            a[k] = if (square) @mulAdd(V, v - cv, v - cv, a[k]) else a[k] + v;
        }
    }
    while (i + L <= n) : (i += L) {
        const v = simd.load(T, x + i);
        a[0] = if (square) @mulAdd(V, v - cv, v - cv, a[0]) else a[0] + v;
    }
    if (i < n) {
        const v = simd.loadPart(T, x + i, n - i, c);
        a[1] = if (square) @mulAdd(V, v - cv, v - cv, a[1]) else a[1] + v;
    }
    return simd.hsum(T, (a[0] + a[1]) + (a[2] + a[3]));
}

/// y = (x - c) * s [* gamma] [+ beta]; the presence of gamma / beta is comptime.
inline fn affineRow(comptime T: type, x: [*]const T, gamma: [*]const T, beta: [*]const T, y: [*]T, n: usize, c: T, s: T, comptime has_g: bool, comptime has_b: bool) void {
    const L = simd.lanes(T);
    const V = simd.Vec(T);
    const cv: V = @splat(c);
    const sv: V = @splat(s);
    var i: usize = 0;
    while (i + L <= n) : (i += L) {
        var t = (simd.load(T, x + i) - cv) * sv;
        if (has_g) t *= simd.load(T, gamma + i);
        if (has_b) t += simd.load(T, beta + i);
        simd.store(T, y + i, t);
    }
    while (i < n) : (i += 1) {
        var t = (x[i] - c) * s;
        if (has_g) t *= gamma[i];
        if (has_b) t += beta[i];
        y[i] = t;
    }
}

fn RowCtx(comptime T: type) type {
    return struct { x: [*]const T, gamma: ?[*]const T, beta: ?[*]const T, y: [*]T, n: usize, eps: f64, rms: bool };
}

fn normRows(comptime T: type, comptime has_g: bool, comptime has_b: bool) fn (*const RowCtx(T), usize, usize) void {
    return struct {
        fn run(cp: *const RowCtx(T), lo: usize, hi: usize) void {
            const c = cp.*; // a local copy: stores through the output cannot alias it
            const n = c.n;
            const nf: T = @floatFromInt(n);
            const dummy: [*]const T = c.x;
            const g = c.gamma orelse dummy;
            const b = c.beta orelse dummy;
            for (lo..hi) |r| {
                const xr = c.x + r * n;
                if (c.rms) {
                    const ms = rowSum(T, xr, n, 0.0, true) / nf;
                    affineRow(T, xr, g, b, c.y + r * n, n, 0.0, simd.rsqrtEps(T, ms, c.eps), has_g, false);
                } else {
                    const mean = rowSum(T, xr, n, 0.0, false) / nf;
                    const v = rowSum(T, xr, n, mean, true) / nf;
                    affineRow(T, xr, g, b, c.y + r * n, n, mean, simd.rsqrtEps(T, v, c.eps), has_g, has_b);
                }
            }
        }
    }.run;
}

/// Sizes of a (rows, n) norm: the element count, or ERR_SIZE / ERR_NULL (x and y).
fn rowsCheck(comptime T: type, x: anytype, y: anytype, rows: i64, n: i64) error{ Size, Null }!usize {
    const count = simd.numel(T, &.{ rows, n }) orelse return error.Size;
    _ = simd.numel(T, &.{n}) orelse return error.Size;
    if (count > 0 and (x == null or y == null)) return error.Null;
    return count;
}

fn code(e: error{ Size, Null, NoMem }) c_int {
    return switch (e) {
        error.Size => abi.ERR_SIZE,
        error.Null => abi.ERR_NULL,
        error.NoMem => abi.ERR_NOMEM,
    };
}

fn norm(comptime T: type, x: ?[*]const T, gamma: ?[*]const T, beta: ?[*]const T, y: ?[*]T, rows: i64, n: i64, eps: f64, rms: bool) c_int {
    const count = rowsCheck(T, x, y, rows, n) catch |e| return code(e);
    if (count == 0) return abi.OK;
    const c = RowCtx(T){ .x = x.?, .gamma = gamma, .beta = if (rms) null else beta, .y = y.?, .n = @intCast(n), .eps = eps, .rms = rms };
    const nrows: usize = @intCast(rows);
    const par = nrows > 1 and count >= simd.PAR_ELEMS;
    switch (@as(u2, @intFromBool(c.gamma != null)) * 2 + @intFromBool(c.beta != null)) {
        inline else => |k| simd.parallelRange(nrows, par, &c, normRows(T, k & 2 != 0, k & 1 != 0)),
    }
    return abi.OK;
}

// ---- batch norm -----------------------------------------------------------------------------

fn bnCheck(comptime T: type, x: anytype, mean: anytype, v: anytype, y: anytype, rows: i64, c: i64) error{ Size, Null }!usize {
    const count = simd.numel(T, &.{ rows, c }) orelse return error.Size;
    _ = simd.numel(T, &.{c}) orelse return error.Size;
    if ((count > 0 and (x == null or y == null)) or (c > 0 and (mean == null or v == null))) return error.Null;
    return count;
}

// In bytes, so the three patterns take the same room in L1 for both types.
const BN_PATTERN_MAX_BYTES: usize = 16384; // longest repeating pattern of channel constants
const BN_BLOCK_BYTES: usize = 4096; // the pattern is repeated up to about this size

fn BnCtx(comptime T: type) type {
    return struct { x: [*]const T, y: [*]T, pm: [*]const T, ps: [*]const T, pb: [*]const T, len: usize, shift: bool };
}

/// Blocks [lo, hi) of `len` elements: y = x * ps + pb (shift form) or (x - pm) * ps + pb.
fn bnBlocks(comptime T: type) fn (*const BnCtx(T), usize, usize) void {
    return struct {
        fn run(cp: *const BnCtx(T), lo: usize, hi: usize) void {
            const c = cp.*; // a local copy: stores through the output cannot alias it
            const L = simd.lanes(T);
            const V = simd.Vec(T);
            for (lo..hi) |blk| {
                const xb = c.x + blk * c.len;
                const yb = c.y + blk * c.len;
                var j: usize = 0;
                if (c.shift) {
                    while (j + L <= c.len) : (j += L) {
                        simd.store(T, yb + j, @mulAdd(V, simd.load(T, xb + j), simd.load(T, c.ps + j), simd.load(T, c.pb + j)));
                    }
                } else {
                    // two vectors per step: more loads in flight (the float64 path)
                    while (j + 2 * L <= c.len) : (j += 2 * L) {
                        const d0 = simd.load(T, xb + j) - simd.load(T, c.pm + j);
                        const d1 = simd.load(T, xb + j + L) - simd.load(T, c.pm + j + L);
                        const r0 = @mulAdd(V, d0, simd.load(T, c.ps + j), simd.load(T, c.pb + j));
                        const r1 = @mulAdd(V, d1, simd.load(T, c.ps + j + L), simd.load(T, c.pb + j + L));
                        simd.store(T, yb + j, r0);
                        simd.store(T, yb + j + L, r1);
                    }
                    while (j + L <= c.len) : (j += L) {
                        const d = simd.load(T, xb + j) - simd.load(T, c.pm + j);
                        simd.store(T, yb + j, @mulAdd(V, d, simd.load(T, c.ps + j), simd.load(T, c.pb + j)));
                    }
                }
                while (j < c.len) : (j += 1) yb[j] = bnOne(T, &c, xb[j], j);
            }
        }
    }.run;
}

inline fn bnOne(comptime T: type, c: *const BnCtx(T), x: T, j: usize) T {
    return if (c.shift) @mulAdd(T, x, c.ps[j], c.pb[j]) else @mulAdd(T, x - c.pm[j], c.ps[j], c.pb[j]);
}

fn batchnorm(comptime T: type, x: ?[*]const T, mean: ?[*]const T, v: ?[*]const T, gamma: ?[*]const T, beta: ?[*]const T, y: ?[*]T, rows: i64, c_: i64, eps: f64) c_int {
    const count = bnCheck(T, x, mean, v, y, rows, c_) catch |e| return code(e);
    if (count == 0) return abi.OK;
    const L = simd.lanes(T);
    const c: usize = @intCast(c_);
    // the flat array repeats every lcm(c, L) elements
    var g: usize = L;
    while (c % g != 0) g /= 2;
    const pattern_max = BN_PATTERN_MAX_BYTES / @sizeOf(T);
    const block = BN_BLOCK_BYTES / @sizeOf(T);
    var len = if (c * (L / g) <= pattern_max) c * (L / g) else c;
    if (len < block and count >= block) len *= block / len; // still a multiple of c
    const pat = simd.alloc(T, 3 * len) orelse return abi.ERR_NOMEM;
    defer simd.free(pat);
    const pm = pat[0..len];
    const ps = pat[len .. 2 * len];
    const pb = pat[2 * len .. 3 * len];
    // y = (x - mean) * scale + beta, scale = gamma / sqrt(var + eps) (the reference's order);
    // float32 with finite parameters: y = x * scale + (beta - mean * scale), one FMA like C
    var finite = true;
    for (0..c) |j| {
        const inv = simd.rsqrtEps(T, v.?[j], eps);
        pm[j] = mean.?[j];
        ps[j] = if (gamma) |gm| gm[j] * inv else inv;
        pb[j] = if (beta) |b| b[j] else 0.0;
        finite = finite and std.math.isFinite(pm[j]) and std.math.isFinite(ps[j]) and std.math.isFinite(pb[j]);
    }
    const shift = finite and T == f32;
    if (shift) {
        for (0..c) |j| pb[j] -= pm[j] * ps[j];
    }
    for (c..len) |j| {
        pm[j] = pm[j - c];
        ps[j] = ps[j - c];
        pb[j] = pb[j - c];
    }
    const ctx = BnCtx(T){ .x = x.?, .y = y.?, .pm = pm.ptr, .ps = ps.ptr, .pb = pb.ptr, .len = len, .shift = shift };
    const nblocks = count / len;
    simd.parallelRange(nblocks, nblocks > 1 and count >= simd.PAR_ELEMS, &ctx, bnBlocks(T));
    for (nblocks * len..count) |e| y.?[e] = bnOne(T, &ctx, x.?[e], e % len);
    return abi.OK;
}

// ---- backward -------------------------------------------------------------------------------

const Kind = enum { layer, rms, batch };

const BWD_TASKS: usize = 16; // row ranges of a parallel backward, each with its own f64 sums

fn BwdCtx(comptime T: type) type {
    return struct {
        kind: Kind,
        dy: [*]const T,
        x: [*]const T,
        gamma: ?[*]const T,
        mean: [*]const T = undefined, // batch norm: the statistics
        inv: [*]const T = undefined, // batch norm: 1 / sqrt(var + eps)
        sc: [*]const T = undefined, // batch norm: gamma * inv
        dx: [*]T,
        rows: usize,
        n: usize,
        eps: f64,
        chunk: usize,
        part: []f64, // per task: [dgamma sums (n)][dbeta sums (n)], as present
        pg: bool, // dgamma wanted
        pb: bool, // dbeta wanted
    };
}

fn bwdTask(comptime T: type) fn (*const BwdCtx(T), usize) void {
    return struct {
        fn run(c: *const BwdCtx(T), t: usize) void {
            const nsums = @as(usize, @intFromBool(c.pg)) + @intFromBool(c.pb);
            const part = c.part[t * nsums * c.n ..][0 .. nsums * c.n];
            const pg = part[0..if (c.pg) c.n else 0];
            const pb = part[pg.len..];
            const lo = t * c.chunk;
            const hi = @min(lo + c.chunk, c.rows);
            // which optional arrays exist is made comptime, so the row loops have no branches
            const bits = @as(u3, @intFromBool(c.gamma != null)) << 2 | @as(u3, @intFromBool(c.pg)) << 1 | @intFromBool(c.pb);
            switch (bits) {
                inline else => |k| {
                    const f = Flags{ .gamma = k & 4 != 0, .pg = k & 2 != 0, .pb = k & 1 != 0 };
                    for (lo..hi) |r| switch (c.kind) {
                        .layer => layerRow(T, f, c, r, pg, pb),
                        .rms => rmsRow(T, f, c, r, pg),
                        .batch => batchRow(T, f, c, r, pg, pb),
                    };
                },
            }
        }
    }.run;
}

/// Vector of a row at i: full when i + lanes <= n, else the first n - i lanes (fill elsewhere).
inline fn ld(comptime T: type, p: [*]const T, i: usize, n: usize, fill: T) simd.Vec(T) {
    return if (i + simd.lanes(T) <= n) simd.load(T, p + i) else simd.loadPart(T, p + i, n - i, fill);
}

inline fn st(comptime T: type, p: [*]T, i: usize, n: usize, v: simd.Vec(T)) void {
    if (i + simd.lanes(T) <= n) simd.store(T, p + i, v) else simd.storePart(T, p + i, v, n - i);
}

/// Which optional arrays a backward row has: gamma, dgamma sums, dbeta sums.
const Flags = struct { gamma: bool, pg: bool, pb: bool };

/// g = dy * gamma at i, or dy (like C's `gamma ? dy * gamma : dy`)
inline fn gOf(comptime T: type, comptime f: Flags, gamma: ?[*]const T, dy: simd.Vec(T), i: usize, n: usize) simd.Vec(T) {
    return if (f.gamma) dy * ld(T, gamma.?, i, n, 0.0) else dy;
}

/// p[i..] += v in f64, the lanes that exist only.
inline fn acc64(comptime T: type, p: []f64, i: usize, v: simd.Vec(T)) void {
    const L = simd.lanes(T);
    if (i + L <= p.len) {
        const W = @Vector(L, f64);
        const cur: W = p[i..][0..L].*;
        p[i..][0..L].* = cur + @as(W, @floatCast(v));
    } else {
        const a: [L]T = v;
        for (0..p.len - i) |l| p[i + l] += @as(f64, a[l]);
    }
}

fn layerRow(comptime T: type, comptime f: Flags, c: *const BwdCtx(T), r: usize, pg: []f64, pb: []f64) void {
    const L = simd.lanes(T);
    const V = simd.Vec(T);
    const n = c.n;
    const nf: T = @floatFromInt(n);
    const xr = c.x + r * n;
    const gr = c.dy + r * n;
    const dxr = c.dx + r * n;
    const mean = rowSum(T, xr, n, 0.0, false) / nf;
    const rstd = simd.rsqrtEps(T, rowSum(T, xr, n, mean, true) / nf, c.eps);
    const mv: V = @splat(mean);
    const rv: V = @splat(rstd);
    // sums of g and of g * xhat, with g = dy * gamma (tail lanes: g = 0, x - mean = 0)
    var va: V = @splat(0.0);
    var vb: V = @splat(0.0);
    var i: usize = 0;
    while (i < n) : (i += L) {
        const g = gOf(T, f, c.gamma, ld(T, gr, i, n, 0.0), i, n);
        va += g;
        vb = @mulAdd(V, g * (ld(T, xr, i, n, mean) - mv), rv, vb);
    }
    const av: V = @splat(simd.hsum(T, va) / nf);
    const bv: V = @splat(simd.hsum(T, vb) / nf);
    i = 0;
    while (i < n) : (i += L) {
        const dy = ld(T, gr, i, n, 0.0);
        const xhat = (ld(T, xr, i, n, mean) - mv) * rv;
        st(T, dxr, i, n, rv * @mulAdd(V, -xhat, bv, gOf(T, f, c.gamma, dy, i, n) - av));
        if (f.pg) acc64(T, pg, i, dy * xhat);
        if (f.pb) acc64(T, pb, i, dy);
    }
}

fn rmsRow(comptime T: type, comptime f: Flags, c: *const BwdCtx(T), r: usize, pg: []f64) void {
    const L = simd.lanes(T);
    const V = simd.Vec(T);
    const n = c.n;
    const nf: T = @floatFromInt(n);
    const xr = c.x + r * n;
    const gr = c.dy + r * n;
    const dxr = c.dx + r * n;
    const rs = simd.rsqrtEps(T, rowSum(T, xr, n, 0.0, true) / nf, c.eps);
    var vb: V = @splat(0.0); // sum of g * x
    var i: usize = 0;
    while (i < n) : (i += L) vb = @mulAdd(V, gOf(T, f, c.gamma, ld(T, gr, i, n, 0.0), i, n), ld(T, xr, i, n, 0.0), vb);
    const k: V = @splat(simd.hsum(T, vb) / nf * rs * rs * rs);
    const rv: V = @splat(rs);
    i = 0;
    while (i < n) : (i += L) {
        const dy = ld(T, gr, i, n, 0.0);
        const x = ld(T, xr, i, n, 0.0);
        st(T, dxr, i, n, @mulAdd(V, -x, k, rv * gOf(T, f, c.gamma, dy, i, n)));
        if (f.pg) acc64(T, pg, i, dy * (x * rv));
    }
}

fn batchRow(comptime T: type, comptime f: Flags, c: *const BwdCtx(T), r: usize, pg: []f64, pb: []f64) void {
    const L = simd.lanes(T);
    const n = c.n;
    const xr = c.x + r * n;
    const gr = c.dy + r * n;
    const dxr = c.dx + r * n;
    var j: usize = 0;
    while (j < n) : (j += L) {
        const dy = ld(T, gr, j, n, 0.0);
        st(T, dxr, j, n, dy * ld(T, c.sc, j, n, 0.0));
        if (f.pg) acc64(T, pg, j, dy * ((ld(T, xr, j, n, 0.0) - ld(T, c.mean, j, n, 0.0)) * ld(T, c.inv, j, n, 0.0)));
        if (f.pb) acc64(T, pb, j, dy);
    }
}

/// Run the backward rows in up to BWD_TASKS ranges, then write dgamma / dbeta.
fn backwardRun(comptime T: type, c: *BwdCtx(T), dgamma: ?[*]T, dbeta: ?[*]T) c_int {
    const n = c.n;
    c.pg = dgamma != null;
    c.pb = dbeta != null;
    const nsums = @as(usize, @intFromBool(c.pg)) + @intFromBool(c.pb);
    const par = c.rows > 1 and c.rows * n >= simd.PAR_ELEMS;
    // a fixed split (not one per thread), so dgamma / dbeta do not depend on the thread count
    const tasks = if (par) @min(c.rows, BWD_TASKS) else 1;
    c.chunk = if (c.rows == 0) 0 else (c.rows + tasks - 1) / tasks;
    const part = simd.alloc(f64, tasks * nsums * n) orelse return abi.ERR_NOMEM;
    defer simd.free(part);
    @memset(part, 0.0);
    c.part = part;
    abi.parallelFor(if (c.rows == 0) 0 else tasks, @as(*const BwdCtx(T), c), bwdTask(T));
    for (0..n) |i| {
        var sg: f64 = 0;
        var sb: f64 = 0;
        for (0..tasks) |t| {
            const p = part[t * nsums * n ..];
            if (c.pg) sg += p[i];
            if (c.pb) sb += p[(if (c.pg) n else 0) + i];
        }
        if (dgamma) |dg| dg[i] = @floatCast(sg);
        if (dbeta) |db| db[i] = @floatCast(sb);
    }
    return abi.OK;
}

fn normBackward(comptime T: type, kind: Kind, dy: ?[*]const T, x: ?[*]const T, gamma: ?[*]const T, dx: ?[*]T, dgamma: ?[*]T, dbeta: ?[*]T, rows: i64, n: i64, eps: f64) c_int {
    const count = rowsCheck(T, x, dx, rows, n) catch |e| return code(e);
    if (count > 0 and dy == null) return abi.ERR_NULL;
    if (n > 0 and rows == 0) { // no rows: the parameter gradients are zero
        for (0..@intCast(n)) |i| {
            if (dgamma) |dg| dg[i] = 0.0;
            if (dbeta) |db| db[i] = 0.0;
        }
    }
    if (count == 0) return abi.OK;
    var c = BwdCtx(T){ .kind = kind, .dy = dy.?, .x = x.?, .gamma = gamma, .dx = dx.?, .rows = @intCast(rows), .n = @intCast(n), .eps = eps, .chunk = 0, .part = &.{}, .pg = false, .pb = false };
    return backwardRun(T, &c, dgamma, dbeta);
}

fn batchnormBackward(comptime T: type, dy: ?[*]const T, x: ?[*]const T, mean: ?[*]const T, v: ?[*]const T, gamma: ?[*]const T, dx: ?[*]T, dgamma: ?[*]T, dbeta: ?[*]T, rows: i64, c_: i64, eps: f64) c_int {
    const count = bnCheck(T, x, mean, v, dx, rows, c_) catch |e| return code(e);
    if (count > 0 and dy == null) return abi.ERR_NULL;
    if (c_ == 0) return abi.OK;
    const c: usize = @intCast(c_);
    const buf = simd.alloc(T, 2 * c) orelse return abi.ERR_NOMEM;
    defer simd.free(buf);
    const inv = buf[0..c];
    const sc = buf[c..];
    for (0..c) |j| {
        inv[j] = simd.rsqrtEps(T, v.?[j], eps);
        sc[j] = if (gamma) |g| g[j] * inv[j] else inv[j];
    }
    const none: [*]const T = inv.ptr; // never read when rows == 0
    var ctx = BwdCtx(T){ .kind = .batch, .dy = dy orelse none, .x = x orelse none, .gamma = gamma, .mean = mean.?, .inv = inv.ptr, .sc = sc.ptr, .dx = dx orelse buf.ptr, .rows = @intCast(rows), .n = c, .eps = eps, .chunk = 0, .part = &.{}, .pg = false, .pb = false };
    return backwardRun(T, &ctx, dgamma, dbeta);
}

// ---- exports --------------------------------------------------------------------------------

export fn axiom_batchnorm_f32(x: ?[*]const f32, mean: ?[*]const f32, v: ?[*]const f32, gamma: ?[*]const f32, beta: ?[*]const f32, y: ?[*]f32, rows: i64, c: i64, eps: f64) c_int {
    return batchnorm(f32, x, mean, v, gamma, beta, y, rows, c, eps);
}

export fn axiom_batchnorm_f64(x: ?[*]const f64, mean: ?[*]const f64, v: ?[*]const f64, gamma: ?[*]const f64, beta: ?[*]const f64, y: ?[*]f64, rows: i64, c: i64, eps: f64) c_int {
    return batchnorm(f64, x, mean, v, gamma, beta, y, rows, c, eps);
}

export fn axiom_layernorm_f32(x: ?[*]const f32, gamma: ?[*]const f32, beta: ?[*]const f32, y: ?[*]f32, rows: i64, n: i64, eps: f64) c_int {
    return norm(f32, x, gamma, beta, y, rows, n, eps, false);
}

export fn axiom_layernorm_f64(x: ?[*]const f64, gamma: ?[*]const f64, beta: ?[*]const f64, y: ?[*]f64, rows: i64, n: i64, eps: f64) c_int {
    return norm(f64, x, gamma, beta, y, rows, n, eps, false);
}

export fn axiom_rmsnorm_f32(x: ?[*]const f32, gamma: ?[*]const f32, y: ?[*]f32, rows: i64, n: i64, eps: f64) c_int {
    return norm(f32, x, gamma, null, y, rows, n, eps, true);
}

export fn axiom_rmsnorm_f64(x: ?[*]const f64, gamma: ?[*]const f64, y: ?[*]f64, rows: i64, n: i64, eps: f64) c_int {
    return norm(f64, x, gamma, null, y, rows, n, eps, true);
}

export fn axiom_batchnorm_backward_f32(dy: ?[*]const f32, x: ?[*]const f32, mean: ?[*]const f32, v: ?[*]const f32, gamma: ?[*]const f32, dx: ?[*]f32, dgamma: ?[*]f32, dbeta: ?[*]f32, rows: i64, c: i64, eps: f64) c_int {
    return batchnormBackward(f32, dy, x, mean, v, gamma, dx, dgamma, dbeta, rows, c, eps);
}

export fn axiom_batchnorm_backward_f64(dy: ?[*]const f64, x: ?[*]const f64, mean: ?[*]const f64, v: ?[*]const f64, gamma: ?[*]const f64, dx: ?[*]f64, dgamma: ?[*]f64, dbeta: ?[*]f64, rows: i64, c: i64, eps: f64) c_int {
    return batchnormBackward(f64, dy, x, mean, v, gamma, dx, dgamma, dbeta, rows, c, eps);
}

export fn axiom_layernorm_backward_f32(dy: ?[*]const f32, x: ?[*]const f32, gamma: ?[*]const f32, dx: ?[*]f32, dgamma: ?[*]f32, dbeta: ?[*]f32, rows: i64, n: i64, eps: f64) c_int {
    return normBackward(f32, .layer, dy, x, gamma, dx, dgamma, dbeta, rows, n, eps);
}

export fn axiom_layernorm_backward_f64(dy: ?[*]const f64, x: ?[*]const f64, gamma: ?[*]const f64, dx: ?[*]f64, dgamma: ?[*]f64, dbeta: ?[*]f64, rows: i64, n: i64, eps: f64) c_int {
    return normBackward(f64, .layer, dy, x, gamma, dx, dgamma, dbeta, rows, n, eps);
}

export fn axiom_rmsnorm_backward_f32(dy: ?[*]const f32, x: ?[*]const f32, gamma: ?[*]const f32, dx: ?[*]f32, dgamma: ?[*]f32, rows: i64, n: i64, eps: f64) c_int {
    return normBackward(f32, .rms, dy, x, gamma, dx, dgamma, null, rows, n, eps);
}

export fn axiom_rmsnorm_backward_f64(dy: ?[*]const f64, x: ?[*]const f64, gamma: ?[*]const f64, dx: ?[*]f64, dgamma: ?[*]f64, rows: i64, n: i64, eps: f64) c_int {
    return normBackward(f64, .rms, dy, x, gamma, dx, dgamma, null, rows, n, eps);
}

test "norms: layer norm rows, batch norm, gradients with no rows, bad arguments" {
    const x = [_]f32{ 1, 2, 3, 4, 10, 10, 10, 10 };
    var y: [8]f32 = undefined;
    try std.testing.expectEqual(abi.OK, axiom_layernorm_f32(&x, null, null, &y, 2, 4, 1e-5));
    try std.testing.expectApproxEqAbs(@as(f32, -1.3416408), y[0], 1e-4);
    try std.testing.expectEqual(@as(f32, 0.0), y[5]); // a constant row (eps > 0)
    const mean = [_]f64{ 1.0, 2.0 };
    const v = [_]f64{ 4.0, 0.25 };
    const xb = [_]f64{ 3.0, 3.0 };
    var yb: [2]f64 = undefined;
    try std.testing.expectEqual(abi.OK, axiom_batchnorm_f64(&xb, &mean, &v, null, null, &yb, 1, 2, 0.0));
    try std.testing.expectEqualSlices(f64, &.{ 1.0, 2.0 }, &yb);
    var dg = [_]f32{ 7, 7 };
    try std.testing.expectEqual(abi.OK, axiom_rmsnorm_backward_f32(null, null, null, null, &dg, 0, 2, 1e-5));
    try std.testing.expectEqualSlices(f32, &.{ 0, 0 }, &dg);
    try std.testing.expectEqual(abi.ERR_SIZE, axiom_layernorm_f32(&x, null, null, &y, -1, 4, 0.0));
    try std.testing.expectEqual(abi.ERR_NULL, axiom_batchnorm_f64(&xb, null, &v, null, null, &yb, 1, 2, 0.0));
}
