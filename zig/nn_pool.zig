//! NHWC max / average / global average pooling and their gradients:
//! axiom_max_pool2d_*, axiom_avg_pool2d_*, axiom_global_avg_pool_*,
//! axiom_max_pool2d_backward_*, axiom_avg_pool2d_backward_* (f32 and f64,
//! csrc/axiom_kernels_nn.h).
//!
//! Mirrors csrc/nn_pool.c, one generic implementation for both types. Channels are
//! contiguous in NHWC, so every kernel vectorises over channels: for each output pixel it
//! walks the window's valid input cells (padding is skipped, never materialised) and
//! combines whole channel vectors, up to 8 vectors at a time held in registers (their count
//! is made comptime by an `inline` switch). Max pooling tracks NaN in a flag vector and
//! redoes a window that saw one lane-exactly (NaN wins, padding never wins). Forward kernels
//! run in parallel over output rows, backward kernels over images (windows overlap).

const std = @import("std");
const abi = @import("abi.zig");
const simd = @import("nn_simd_impl.zig");

const Geom = struct {
    n: usize,
    h: usize,
    w: usize,
    c: usize,
    kh: i64,
    kw: i64,
    sh: i64,
    sw: i64,
    pt: i64,
    pl: i64,
    dh: i64,
    dw: i64,
    ho: usize,
    wo: usize,
    nin: usize,
    nout: usize,
};

/// Check the sizes and compute the output extent (pool_geometry), or null on a size error.
fn geometry(comptime T: type, n: i64, h: i64, w: i64, c: i64, kh: i64, kw: i64, sh: i64, sw: i64, pt: i64, pb: i64, pl: i64, pr: i64, dh: i64, dw: i64) ?Geom {
    const ho = simd.poolExtent(h, kh, sh, pt, pb, dh) orelse return null;
    const wo = simd.poolExtent(w, kw, sw, pl, pr, dw) orelse return null;
    const nin = simd.numel(T, &.{ n, h, w, c }) orelse return null;
    const nout = simd.numel(T, &.{ n, ho, wo, c }) orelse return null;
    return .{
        .n = @intCast(n),
        .h = @intCast(h),
        .w = @intCast(w),
        .c = @intCast(c),
        .kh = kh,
        .kw = kw,
        .sh = sh,
        .sw = sw,
        .pt = pt,
        .pl = pl,
        .dh = dh,
        .dw = dw,
        .ho = @intCast(ho),
        .wo = @intCast(wo),
        .nin = nin,
        .nout = nout,
    };
}

/// Valid window taps along one axis: k in [k0, k1) has 0 <= start + k * dil < in.
const Taps = struct { k0: i64, k1: i64 };

fn taps(start: i64, k: i64, dil: i64, in: usize) Taps {
    const in_: i64 = @intCast(in);
    var a: i64 = 0;
    var b: i64 = k;
    // clamped to k: a window entirely in the leading padding has the empty range [k, k)
    if (start < 0) a = @min(@divTrunc(-start + dil - 1, dil), k);
    if (start + (k - 1) * dil >= in_) {
        const last = in_ - 1 - start; // largest k with start + k * dil <= in - 1
        b = if (last < 0) 0 else @divTrunc(last, dil) + 1;
    }
    b = @min(b, k);
    if (b < a) b = a;
    return .{ .k0 = a, .k1 = b };
}

/// One output window: its taps and the element offset of tap (i, j) in its image.
const Window = struct {
    ih: i64,
    iw: i64,
    i: Taps,
    j: Taps,

    inline fn cell(win: Window, g: *const Geom, i: i64, j: i64) usize {
        const row: usize = @intCast(win.ih + i * g.dh);
        const col: usize = @intCast(win.iw + j * g.dw);
        return row * g.w + col;
    }

    /// The windows of output row oh (the column taps are set by `at`).
    fn ofRow(g: *const Geom, oh: usize) Window {
        const ih = @as(i64, @intCast(oh)) * g.sh - g.pt;
        return .{ .ih = ih, .iw = 0, .i = taps(ih, g.kh, g.dh, g.h), .j = undefined };
    }

    /// The window of output column ow in this row.
    inline fn at(win: Window, g: *const Geom, ow: usize) Window {
        const iw = @as(i64, @intCast(ow)) * g.sw - g.pl;
        return .{ .ih = win.ih, .iw = iw, .i = win.i, .j = taps(iw, g.kw, g.dw, g.w) };
    }

    fn empty(win: Window) bool {
        return win.i.k0 >= win.i.k1 or win.j.k0 >= win.j.k1;
    }

    fn cells(win: Window) i64 {
        return (win.i.k1 - win.i.k0) * (win.j.k1 - win.j.k0);
    }
};

const Mode = enum { max, avg };

/// Channels [ch, ch + NV * L + part) of one output pixel (part > 0 only when has_part).
inline fn pixel(comptime T: type, comptime mode: Mode, comptime NV: usize, comptime has_part: bool, g: *const Geom, img: [*]const T, win: Window, ch: usize, part: usize, out: [*]T, count: T) void {
    const L = simd.lanes(T);
    const V = simd.Vec(T);
    const NA = NV + @intFromBool(has_part);
    const init: T = if (mode == .max) -std.math.inf(T) else 0.0;
    var acc: [NA]V = @splat(@splat(init));
    var nan: simd.Mask(T) = @splat(false);
    // tap pointers advance by constant strides (rows dh * w * c, columns dw * c apart)
    const rs = @as(usize, @intCast(g.dh)) * g.w * g.c;
    const cs = @as(usize, @intCast(g.dw)) * g.c;
    const empty = win.empty(); // padding only: tap (k0, k0) may lie outside the image
    const ni: usize = if (empty) 0 else @intCast(win.i.k1 - win.i.k0);
    const nj: usize = if (empty) 0 else @intCast(win.j.k1 - win.j.k0);
    const first = if (empty) img else img + win.cell(g, win.i.k0, win.j.k0) * g.c + ch;
    var prow = first;
    for (0..ni) |_| {
        var p = prow;
        for (0..nj) |_| {
            defer p += cs;
            inline for (0..NA) |v| {
                const x = if (v < NV) simd.load(T, p + v * L) else simd.loadPart(T, p + v * L, part, init);
                if (mode == .max) {
                    acc[v] = simd.maxFast(T, x, acc[v]);
                    nan = nan | (x != x);
                } else {
                    acc[v] += x;
                }
            }
        }
        prow += rs;
    }
    if (mode == .max and simd.anyTrue(nan)) {
        acc = @splat(@splat(init));
        prow = first;
        for (0..ni) |_| {
            var p = prow;
            for (0..nj) |_| {
                defer p += cs;
                inline for (0..NA) |v| {
                    const x = if (v < NV) simd.load(T, p + v * L) else simd.loadPart(T, p + v * L, part, init);
                    acc[v] = simd.maxNan(T, x, acc[v]);
                }
            }
            prow += rs;
        }
    }
    inline for (0..NA) |v| {
        const r = if (mode == .avg) acc[v] / @as(V, @splat(count)) else acc[v];
        if (v < NV) simd.store(T, out + ch + v * L, r) else simd.storePart(T, out + ch + v * L, r, part);
    }
}

/// All channels of one output pixel: chunks of 8 vectors, then the rest in one pass.
fn pixelAll(comptime T: type, comptime mode: Mode, g: *const Geom, img: [*]const T, win: Window, out: [*]T, count: T) void {
    @setEvalBranchQuota(20000);
    const L = simd.lanes(T);
    var ch: usize = 0;
    while (ch + 8 * L <= g.c) : (ch += 8 * L) pixel(T, mode, 8, false, g, img, win, ch, 0, out, count);
    const rem = g.c - ch;
    const part = rem % L;
    switch (rem / L) {
        inline 0...7 => |nv| {
            if (part > 0) {
                pixel(T, mode, nv, true, g, img, win, ch, part, out, count);
            } else if (nv > 0) {
                pixel(T, mode, nv, false, g, img, win, ch, 0, out, count);
            }
        },
        else => unreachable,
    }
}

fn PoolCtx(comptime T: type) type {
    return struct { g: Geom, x: [*]const T, y: [*]T, include_pad: bool };
}

/// Output rows [lo, hi) of n * ho.
fn poolRows(comptime T: type, comptime mode: Mode) fn (*const PoolCtx(T), usize, usize) void {
    return struct {
        fn run(cp: *const PoolCtx(T), lo: usize, hi: usize) void {
            const c = cp.*; // a local copy: stores through the output cannot alias it
            const g = &c.g;
            for (lo..hi) |t| {
                const b = t / g.ho;
                const oh = t % g.ho;
                const img = c.x + b * g.h * g.w * g.c;
                const wrow = Window.ofRow(g, oh);
                for (0..g.wo) |ow| {
                    const win = wrow.at(g, ow);
                    const cells: T = @floatFromInt(if (c.include_pad) g.kh *% g.kw else win.cells());
                    pixelAll(T, mode, g, img, win, c.y + ((b * g.ho + oh) * g.wo + ow) * g.c, cells);
                }
            }
        }
    }.run;
}

fn poolForward(comptime T: type, comptime mode: Mode, x: ?[*]const T, y: ?[*]T, g: Geom, include_pad: bool) void {
    if (g.nout == 0) return;
    const rows = g.n * g.ho;
    const work = rows *| g.wo *| g.c *| @as(usize, @intCast(g.kh)) *| @as(usize, @intCast(g.kw));
    const par = rows > 1 and (g.nin >= simd.PAR_ELEMS or work >= simd.PAR_ELEMS);
    const c = PoolCtx(T){ .g = g, .x = x.?, .y = y.?, .include_pad = include_pad };
    simd.parallelRange(rows, par, &c, poolRows(T, mode));
}

fn maxPool(comptime T: type, x: ?[*]const T, y: ?[*]T, n: i64, h: i64, w: i64, c: i64, kh: i64, kw: i64, sh: i64, sw: i64, pt: i64, pb: i64, pl: i64, pr: i64, dh: i64, dw: i64) c_int {
    const g = geometry(T, n, h, w, c, kh, kw, sh, sw, pt, pb, pl, pr, dh, dw) orelse return abi.ERR_SIZE;
    if ((g.nin > 0 and x == null) or (g.nout > 0 and y == null)) return abi.ERR_NULL;
    poolForward(T, .max, x, y, g, false);
    return abi.OK;
}

fn avgPool(comptime T: type, x: ?[*]const T, y: ?[*]T, n: i64, h: i64, w: i64, c: i64, kh: i64, kw: i64, sh: i64, sw: i64, pt: i64, pb: i64, pl: i64, pr: i64, include_pad: c_int) c_int {
    const g = geometry(T, n, h, w, c, kh, kw, sh, sw, pt, pb, pl, pr, 1, 1) orelse return abi.ERR_SIZE;
    if (include_pad != 0 and include_pad != 1) return abi.ERR_SIZE;
    if ((g.nin > 0 and x == null) or (g.nout > 0 and y == null)) return abi.ERR_NULL;
    poolForward(T, .avg, x, y, g, include_pad == 1);
    return abi.OK;
}

// ---- global average pooling -------------------------------------------------------------------

const GAP_ROWS: usize = 128; // rows summed in T before adding into the f64 total
const GAP_VECS: usize = 16; // vectors of channels per pass over an image

/// Channels [0, NV * L + part) of one image (hw rows of stride c) at x.
inline fn gapChunk(comptime T: type, comptime NV: usize, comptime has_part: bool, x: [*]const T, y: [*]T, hw: usize, c: usize, part: usize) void {
    const L = simd.lanes(T);
    const V = simd.Vec(T);
    const NA = NV + @intFromBool(has_part);
    var total: [NA][L]f64 = @splat(@splat(0.0));
    var r0: usize = 0;
    while (r0 < hw) : (r0 += GAP_ROWS) {
        const r1 = @min(r0 + GAP_ROWS, hw);
        var s: [NA]V = @splat(@splat(0.0));
        for (r0..r1) |r| {
            inline for (0..NA) |v| {
                const p = x + r * c + v * L;
                s[v] += if (v < NV) simd.load(T, p) else simd.loadPart(T, p, part, 0.0);
            }
        }
        inline for (0..NA) |v| {
            inline for (0..L) |l| total[v][l] += @as(f64, s[v][l]);
        }
    }
    const hwf: f64 = @floatFromInt(hw);
    inline for (0..NA) |v| {
        const k = if (v < NV) L else part;
        for (0..k) |l| y[v * L + l] = @floatCast(total[v][l] / hwf);
    }
}

fn GapCtx(comptime T: type) type {
    return struct { x: [*]const T, y: [*]T, hw: usize, c: usize, chunks: usize };
}

fn gapTasks(comptime T: type) fn (*const GapCtx(T), usize, usize) void {
    return struct {
        fn run(cp: *const GapCtx(T), lo: usize, hi: usize) void {
            @setEvalBranchQuota(100000);
            const c = cp.*; // a local copy: stores through the output cannot alias it
            const L = simd.lanes(T);
            for (lo..hi) |t| {
                const b = t / c.chunks;
                const ch = (t % c.chunks) * GAP_VECS * L;
                const rem = @min(c.c - ch, GAP_VECS * L);
                const part = rem % L;
                const xb = c.x + b * c.hw * c.c + ch;
                const yb = c.y + b * c.c + ch;
                switch (rem / L) {
                    inline 0...GAP_VECS => |nv| {
                        if (part > 0) {
                            if (nv < GAP_VECS) gapChunk(T, nv, true, xb, yb, c.hw, c.c, part);
                        } else {
                            gapChunk(T, nv, false, xb, yb, c.hw, c.c, 0);
                        }
                    },
                    else => unreachable,
                }
            }
        }
    }.run;
}

fn globalAvgPool(comptime T: type, x: ?[*]const T, y: ?[*]T, n: i64, hw: i64, c: i64) c_int {
    const nin = simd.numel(T, &.{ n, hw, c }) orelse return abi.ERR_SIZE;
    const nout = simd.numel(T, &.{ n, c }) orelse return abi.ERR_SIZE;
    if ((nin > 0 and x == null) or (nout > 0 and y == null)) return abi.ERR_NULL;
    if (nout == 0) return abi.OK;
    if (hw == 0) {
        @memset(y.?[0..nout], std.math.nan(T));
        return abi.OK;
    }
    const L = simd.lanes(T);
    const cc: usize = @intCast(c);
    const chunks = (cc + GAP_VECS * L - 1) / (GAP_VECS * L);
    const tasks = @as(usize, @intCast(n)) * chunks;
    const ctx = GapCtx(T){ .x = x.?, .y = y.?, .hw = @intCast(hw), .c = cc, .chunks = chunks };
    simd.parallelRange(tasks, tasks > 1 and nin >= simd.PAR_ELEMS, &ctx, gapTasks(T));
    return abi.OK;
}

// ---- backward --------------------------------------------------------------------------------

fn BwdCtx(comptime T: type) type {
    return struct { g: Geom, x: [*]const T, dy: [*]const T, dx: [*]T, include_pad: bool };
}

/// dx of max pooling for channels [ch, ch + lanes) of one window: each lane's dy goes to
/// the first maximum (row-major window order; the first NaN if any, like PyTorch).
inline fn maxBackLanes(comptime T: type, g: *const Geom, img: [*]const T, dimg: [*]T, win: Window, g_out: [*]const T, ch: usize) void {
    const L = simd.lanes(T);
    const lanes = @min(g.c - ch, L);
    const I = @Vector(L, i64);
    var best: simd.Vec(T) = @splat(-std.math.inf(T));
    var arg: I = @splat(0); // window tap of the maximum, per lane
    var tap: i64 = 0;
    var i = win.i.k0;
    while (i < win.i.k1) : (i += 1) {
        var j = win.j.k0;
        while (j < win.j.k1) : (j += 1) {
            const p = img + win.cell(g, i, j) * g.c + ch;
            const v = if (lanes < L) simd.loadPart(T, p, lanes, -std.math.inf(T)) else simd.load(T, p);
            const upd = (v > best) | (v != v); // a larger value or any NaN takes over
            best = @select(T, upd, v, best);
            arg = @select(i64, upd, @as(I, @splat(tap)), arg);
            tap += 1;
        }
    }
    const nj = win.j.k1 - win.j.k0;
    const args: [L]i64 = arg;
    for (0..lanes) |l| {
        const cell = win.cell(g, win.i.k0 + @divTrunc(args[l], nj), win.j.k0 + @mod(args[l], nj));
        dimg[cell * g.c + ch + l] += g_out[ch + l];
    }
}

fn maxBackImages(comptime T: type) fn (*const BwdCtx(T), usize, usize) void {
    return struct {
        fn run(cp: *const BwdCtx(T), lo: usize, hi: usize) void {
            const c = cp.*; // a local copy: stores through the output cannot alias it
            const g = &c.g;
            const L = simd.lanes(T);
            const size = g.h * g.w * g.c;
            for (lo..hi) |b| {
                const img = c.x + b * size;
                const dimg = c.dx + b * size;
                @memset(dimg[0..size], 0.0);
                for (0..g.ho) |oh| {
                    const wrow = Window.ofRow(g, oh);
                    for (0..g.wo) |ow| {
                        const win = wrow.at(g, ow);
                        if (win.empty()) continue; // padding only: no input receives this gradient
                        const g_out = c.dy + ((b * g.ho + oh) * g.wo + ow) * g.c;
                        var ch: usize = 0;
                        while (ch < g.c) : (ch += L) maxBackLanes(T, g, img, dimg, win, g_out, ch);
                    }
                }
            }
        }
    }.run;
}

fn avgBackImages(comptime T: type) fn (*const BwdCtx(T), usize, usize) void {
    return struct {
        fn run(cp: *const BwdCtx(T), lo: usize, hi: usize) void {
            const c = cp.*; // a local copy: stores through the output cannot alias it
            const g = &c.g;
            const L = simd.lanes(T);
            const V = simd.Vec(T);
            const size = g.h * g.w * g.c;
            for (lo..hi) |b| {
                const dimg = c.dx + b * size;
                @memset(dimg[0..size], 0.0);
                for (0..g.ho) |oh| {
                    const wrow = Window.ofRow(g, oh);
                    for (0..g.wo) |ow| {
                        const win = wrow.at(g, ow);
                        const count: T = @floatFromInt(if (c.include_pad) g.kh *% g.kw else win.cells());
                        const cv: V = @splat(count);
                        const g_out = c.dy + ((b * g.ho + oh) * g.wo + ow) * g.c;
                        var i = win.i.k0;
                        while (i < win.i.k1) : (i += 1) {
                            var j = win.j.k0;
                            while (j < win.j.k1) : (j += 1) {
                                const p = dimg + win.cell(g, i, j) * g.c;
                                var ch: usize = 0;
                                while (ch + L <= g.c) : (ch += L) {
                                    simd.store(T, p + ch, simd.load(T, p + ch) + simd.load(T, g_out + ch) / cv);
                                }
                                while (ch < g.c) : (ch += 1) p[ch] += g_out[ch] / count;
                            }
                        }
                    }
                }
            }
        }
    }.run;
}

fn backwardRun(comptime T: type, c: *const BwdCtx(T), body: fn (*const BwdCtx(T), usize, usize) void) void {
    const g = &c.g;
    const work = g.nout *| @as(usize, @intCast(g.kh)) *| @as(usize, @intCast(g.kw));
    const par = g.n > 1 and (g.nin >= simd.PAR_ELEMS or work >= simd.PAR_ELEMS);
    simd.parallelRange(g.n, par, c, body);
}

fn maxPoolBackward(comptime T: type, x: ?[*]const T, dy: ?[*]const T, dx: ?[*]T, n: i64, h: i64, w: i64, c: i64, kh: i64, kw: i64, sh: i64, sw: i64, pt: i64, pb: i64, pl: i64, pr: i64, dh: i64, dw: i64) c_int {
    const g = geometry(T, n, h, w, c, kh, kw, sh, sw, pt, pb, pl, pr, dh, dw) orelse return abi.ERR_SIZE;
    if ((g.nin > 0 and (x == null or dx == null)) or (g.nout > 0 and dy == null)) return abi.ERR_NULL;
    if (g.nin == 0) return abi.OK;
    const none: [*]const T = x.?; // dy is never read when there is no output
    const ctx = BwdCtx(T){ .g = g, .x = x.?, .dy = dy orelse none, .dx = dx.?, .include_pad = false };
    backwardRun(T, &ctx, comptime maxBackImages(T));
    return abi.OK;
}

fn avgPoolBackward(comptime T: type, dy: ?[*]const T, dx: ?[*]T, n: i64, h: i64, w: i64, c: i64, kh: i64, kw: i64, sh: i64, sw: i64, pt: i64, pb: i64, pl: i64, pr: i64, include_pad: c_int) c_int {
    const g = geometry(T, n, h, w, c, kh, kw, sh, sw, pt, pb, pl, pr, 1, 1) orelse return abi.ERR_SIZE;
    if (include_pad != 0 and include_pad != 1) return abi.ERR_SIZE;
    if ((g.nin > 0 and dx == null) or (g.nout > 0 and dy == null)) return abi.ERR_NULL;
    if (g.nin == 0) return abi.OK;
    const none: [*]const T = dx.?; // dy is never read when there is no output
    const ctx = BwdCtx(T){ .g = g, .x = none, .dy = dy orelse none, .dx = dx.?, .include_pad = include_pad == 1 };
    backwardRun(T, &ctx, comptime avgBackImages(T));
    return abi.OK;
}

// ---- exports ---------------------------------------------------------------------------------

export fn axiom_max_pool2d_f32(x: ?[*]const f32, y: ?[*]f32, n: i64, h: i64, w: i64, c: i64, kh: i64, kw: i64, sh: i64, sw: i64, pt: i64, pb: i64, pl: i64, pr: i64, dh: i64, dw: i64) c_int {
    return maxPool(f32, x, y, n, h, w, c, kh, kw, sh, sw, pt, pb, pl, pr, dh, dw);
}

export fn axiom_max_pool2d_f64(x: ?[*]const f64, y: ?[*]f64, n: i64, h: i64, w: i64, c: i64, kh: i64, kw: i64, sh: i64, sw: i64, pt: i64, pb: i64, pl: i64, pr: i64, dh: i64, dw: i64) c_int {
    return maxPool(f64, x, y, n, h, w, c, kh, kw, sh, sw, pt, pb, pl, pr, dh, dw);
}

export fn axiom_avg_pool2d_f32(x: ?[*]const f32, y: ?[*]f32, n: i64, h: i64, w: i64, c: i64, kh: i64, kw: i64, sh: i64, sw: i64, pt: i64, pb: i64, pl: i64, pr: i64, include_pad: c_int) c_int {
    return avgPool(f32, x, y, n, h, w, c, kh, kw, sh, sw, pt, pb, pl, pr, include_pad);
}

export fn axiom_avg_pool2d_f64(x: ?[*]const f64, y: ?[*]f64, n: i64, h: i64, w: i64, c: i64, kh: i64, kw: i64, sh: i64, sw: i64, pt: i64, pb: i64, pl: i64, pr: i64, include_pad: c_int) c_int {
    return avgPool(f64, x, y, n, h, w, c, kh, kw, sh, sw, pt, pb, pl, pr, include_pad);
}

export fn axiom_global_avg_pool_f32(x: ?[*]const f32, y: ?[*]f32, n: i64, hw: i64, c: i64) c_int {
    return globalAvgPool(f32, x, y, n, hw, c);
}

export fn axiom_global_avg_pool_f64(x: ?[*]const f64, y: ?[*]f64, n: i64, hw: i64, c: i64) c_int {
    return globalAvgPool(f64, x, y, n, hw, c);
}

export fn axiom_max_pool2d_backward_f32(x: ?[*]const f32, dy: ?[*]const f32, dx: ?[*]f32, n: i64, h: i64, w: i64, c: i64, kh: i64, kw: i64, sh: i64, sw: i64, pt: i64, pb: i64, pl: i64, pr: i64, dh: i64, dw: i64) c_int {
    return maxPoolBackward(f32, x, dy, dx, n, h, w, c, kh, kw, sh, sw, pt, pb, pl, pr, dh, dw);
}

export fn axiom_max_pool2d_backward_f64(x: ?[*]const f64, dy: ?[*]const f64, dx: ?[*]f64, n: i64, h: i64, w: i64, c: i64, kh: i64, kw: i64, sh: i64, sw: i64, pt: i64, pb: i64, pl: i64, pr: i64, dh: i64, dw: i64) c_int {
    return maxPoolBackward(f64, x, dy, dx, n, h, w, c, kh, kw, sh, sw, pt, pb, pl, pr, dh, dw);
}

export fn axiom_avg_pool2d_backward_f32(dy: ?[*]const f32, dx: ?[*]f32, n: i64, h: i64, w: i64, c: i64, kh: i64, kw: i64, sh: i64, sw: i64, pt: i64, pb: i64, pl: i64, pr: i64, include_pad: c_int) c_int {
    return avgPoolBackward(f32, dy, dx, n, h, w, c, kh, kw, sh, sw, pt, pb, pl, pr, include_pad);
}

export fn axiom_avg_pool2d_backward_f64(dy: ?[*]const f64, dx: ?[*]f64, n: i64, h: i64, w: i64, c: i64, kh: i64, kw: i64, sh: i64, sw: i64, pt: i64, pb: i64, pl: i64, pr: i64, include_pad: c_int) c_int {
    return avgPoolBackward(f64, dy, dx, n, h, w, c, kh, kw, sh, sw, pt, pb, pl, pr, include_pad);
}

test "pooling: NaN wins, padding never wins, count_include_pad, bad arguments" {
    const nan = std.math.nan(f32);
    // one 2 x 2 image, one channel; 2 x 2 windows, stride 2, padding 1 on every side
    const x = [_]f32{ -1, nan, -3, -4 };
    var y: [4]f32 = undefined;
    try std.testing.expectEqual(abi.OK, axiom_max_pool2d_f32(&x, &y, 1, 2, 2, 1, 2, 2, 2, 2, 1, 1, 1, 1, 1, 1));
    try std.testing.expectEqual(@as(f32, -1), y[0]);
    try std.testing.expect(std.math.isNan(y[1]));
    try std.testing.expectEqual(@as(f32, -3), y[2]);
    var a: [4]f64 = undefined;
    const xd = [_]f64{ 1, 2, 3, 4 };
    try std.testing.expectEqual(abi.OK, axiom_avg_pool2d_f64(&xd, &a, 1, 2, 2, 1, 2, 2, 2, 2, 1, 1, 1, 1, 1));
    try std.testing.expectEqualSlices(f64, &.{ 0.25, 0.5, 0.75, 1.0 }, &a);
    try std.testing.expectEqual(abi.OK, axiom_avg_pool2d_f64(&xd, &a, 1, 2, 2, 1, 2, 2, 2, 2, 1, 1, 1, 1, 0));
    try std.testing.expectEqualSlices(f64, &.{ 1, 2, 3, 4 }, &a);
    var g: [1]f64 = undefined;
    try std.testing.expectEqual(abi.OK, axiom_global_avg_pool_f64(&xd, &g, 1, 4, 1));
    try std.testing.expectEqual(@as(f64, 2.5), g[0]);
    try std.testing.expectEqual(abi.ERR_SIZE, axiom_max_pool2d_f32(&x, &y, 1, 2, 2, 1, 0, 2, 2, 2, 0, 0, 0, 0, 1, 1));
    try std.testing.expectEqual(abi.ERR_SIZE, axiom_avg_pool2d_f64(&xd, &a, 1, 2, 2, 1, 2, 2, 2, 2, 0, 0, 0, 0, 2));
    try std.testing.expectEqual(abi.ERR_NULL, axiom_max_pool2d_backward_f32(&x, null, &y, 1, 2, 2, 1, 2, 2, 2, 2, 0, 0, 0, 0, 1, 1));
}
