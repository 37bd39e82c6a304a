//! axiom_attention_f32 / axiom_attention_f64 (csrc/axiom_kernels_nn.h): flash attention,
//! out = softmax(q k^T * scale + mask) v with an online softmax; mirrors csrc/nn_attention.c.
//! Also pulls in zig/nn_attention_backward.zig (axiom_attention_backward_f32 / _f64).
//!
//! One generic algorithm for f32 and f64 (C's float32 one; C's float64 is a per-row loop with
//! the same online softmax), per (batch, head, block of BR query rows) task:
//!   for each block of BC keys (causal: only blocks with a visible key):
//!     S = scale k_block q_blk^T (+ mask), hidden keys -inf: transposed, one query per lane,
//!         tiles of MR keys x 2 vectors of queries in registers (FMA);
//!     m_new = max(m, rowmax S); alpha = exp(m - m_new); P = exp(S - m_new); l = l alpha + sum P;
//!     O = alpha O + P v_block (transposed tiles of MR value columns x 2 vectors);
//!   out = O / l.
//! Scratch per task is O(BR (d + BC + dv)), independent of the sequence lengths. Tasks run on
//! abi.parallelFor above PAR_FLOPS multiply-adds.
//!
//! Special values follow the reference: a +inf or NaN score makes the row NaN (exp(inf - inf)),
//! a row whose keys are all hidden or -inf (and lk == 0) gets 0 / 0 = NaN; causal attention
//! still scans hidden keys up to the last non-finite value row (0 * inf = NaN, like the reference).

const std = @import("std");
const abi = @import("abi.zig");
const nc = @import("nn_attention_common.zig");

comptime {
    _ = @import("nn_attention_backward.zig");
}

const BR: usize = 64; // query rows per task: lanes of the transposed tiles (multiple of 16)
const BC: usize = 96; // keys per block
const MR: usize = 6; // keys (or value columns) per register tile

export fn axiom_attention_f32(q: ?[*]const f32, k: ?[*]const f32, v: ?[*]const f32, mask: ?[*]const f32, out: ?[*]f32, batch: i64, heads: i64, lq: i64, lk: i64, d: i64, dv: i64, scale: f64, causal: c_int, mask_sb: i64, mask_sh: i64, mask_sq: i64, mask_sk: i64) c_int {
    return attentionFor(f32, q, k, v, mask, out, .{ batch, heads, lq, lk, d, dv }, scale, causal, .{ mask_sb, mask_sh, mask_sq, mask_sk });
}

export fn axiom_attention_f64(q: ?[*]const f64, k: ?[*]const f64, v: ?[*]const f64, mask: ?[*]const f64, out: ?[*]f64, batch: i64, heads: i64, lq: i64, lk: i64, d: i64, dv: i64, scale: f64, causal: c_int, mask_sb: i64, mask_sh: i64, mask_sq: i64, mask_sk: i64) c_int {
    return attentionFor(f64, q, k, v, mask, out, .{ batch, heads, lq, lk, d, dv }, scale, causal, .{ mask_sb, mask_sh, mask_sq, mask_sk });
}

/// batch, heads, lq, lk, d, dv
pub const Dims = [6]i64;

/// Element counts of q, k, v, out, or null on a size error (the NN_NUMEL checks of att_check).
pub fn counts(comptime T: type, s: Dims) ?[4]i64 {
    const e = @sizeOf(T);
    return .{
        nc.numel(e, &.{ s[0], s[1], s[2], s[4] }) orelse return null,
        nc.numel(e, &.{ s[0], s[1], s[3], s[4] }) orelse return null,
        nc.numel(e, &.{ s[0], s[1], s[3], s[5] }) orelse return null,
        nc.numel(e, &.{ s[0], s[1], s[2], s[5] }) orelse return null,
    };
}

/// causal must be 0 or 1 and the furthest mask element addressable (strides >= 0).
pub fn flagsOk(comptime T: type, has_mask: bool, s: Dims, causal: c_int, ms: [4]i64) bool {
    if (causal != 0 and causal != 1) return false;
    return !has_mask or nc.stridedSpanOk(.{ s[0], s[1], s[2], s[3] }, ms, @sizeOf(T));
}

/// The additive mask of one (batch, head): element [i, j] at ptr[i * sq + j * sk].
pub fn Mask(comptime T: type) type {
    return struct {
        ptr: ?[*]const T = null,
        sq: usize = 0,
        sk: usize = 0,

        pub fn of(mask: ?[*]const T, ms: [4]i64, b: usize, h: usize) @This() {
            const m = mask orelse return .{};
            const sb: usize = @intCast(ms[0]);
            const sh: usize = @intCast(ms[1]);
            return .{ .ptr = m + b * sb + h * sh, .sq = @intCast(ms[2]), .sk = @intCast(ms[3]) };
        }
    };
}

/// axiom_attention_* for element type T (ms: the mask strides sb, sh, sq, sk).
pub fn attentionFor(comptime T: type, q: ?[*]const T, k: ?[*]const T, v: ?[*]const T, mask: ?[*]const T, out: ?[*]T, s: Dims, scale: f64, causal: c_int, ms: [4]i64) c_int {
    const n = counts(T, s) orelse return abi.ERR_SIZE;
    if (!flagsOk(T, mask != null, s, causal, ms)) return abi.ERR_SIZE;
    if ((n[0] > 0 and q == null) or (n[1] > 0 and k == null) or (n[2] > 0 and v == null) or (n[3] > 0 and out == null))
        return abi.ERR_NULL;
    if (n[3] == 0) return abi.OK;
    const u = [6]usize{ @intCast(s[0]), @intCast(s[1]), @intCast(s[2]), @intCast(s[3]), @intCast(s[4]), @intCast(s[5]) };
    const nbh = u[0] * u[1];
    var vend: ?[]usize = null;
    if (causal == 1) vend = valueEnds(T, v, nbh, u[3], u[5]) orelse return abi.ERR_NOMEM;
    defer if (vend) |e| std.heap.c_allocator.free(e);
    var job = Job(T){
        .q = nc.nonNull([*]const T, q),
        .k = nc.nonNull([*]const T, k),
        .v = nc.nonNull([*]const T, v),
        .mask = mask,
        .out = out.?,
        .ms = ms,
        .heads = u[1],
        .lq = u[2],
        .lk = u[3],
        .d = u[4],
        .dv = u[5],
        .scale = @floatCast(scale),
        .causal = causal == 1,
        .nqb = (u[2] + BR - 1) / BR,
        .vend = vend,
    };
    const ntasks = nbh * job.nqb;
    const work = @as(f64, @floatFromInt(nbh)) * @as(f64, @floatFromInt(u[2])) * @as(f64, @floatFromInt(u[3])) *
        @as(f64, @floatFromInt(u[4] + u[5]));
    if (ntasks > 1 and work >= nc.PAR_FLOPS) {
        abi.parallelFor(ntasks, &job, Job(T).task);
    } else {
        for (0..ntasks) |t| job.task(t);
    }
    return if (job.failed.load(.monotonic)) abi.ERR_NOMEM else abi.OK;
}

/// For each of the nbh heads: 1 + the last key whose value row is not finite, or 0. Causal
/// attention skips the keys a query cannot see, but the reference multiplies their zero
/// probabilities by their values, so a non-finite value (0 * inf = NaN) still reaches every query.
fn valueEnds(comptime T: type, v: ?[*]const T, nbh: usize, lk: usize, dv: usize) ?[]usize {
    const ends = std.heap.c_allocator.alloc(usize, @max(nbh, 1)) catch return null;
    for (ends[0..nbh], 0..) |*e, bh| {
        e.* = 0;
        var j = lk;
        while (j > 0) : (j -= 1) {
            if (!finiteRow(T, nc.nonNull([*]const T, v) + (bh * lk + j - 1) * dv, dv)) {
                e.* = j;
                break;
            }
        }
    }
    return ends;
}

/// False if a value of x[0..n) is NaN or infinite: sum of x * 0 is NaN exactly then, in any
/// order, so it is taken lane-wise (no serial dependency chain).
fn finiteRow(comptime T: type, x: [*]const T, n: usize) bool {
    const L = nc.lanes(T);
    var acc: nc.Vec(T) = @splat(0);
    var c: usize = 0;
    while (c + L <= n) : (c += L) acc += nc.load(T, x + c) * @as(nc.Vec(T), @splat(0));
    var sum = @reduce(.Add, acc);
    while (c < n) : (c += 1) sum += x[c] * 0;
    return sum == sum;
}

fn Job(comptime T: type) type {
    return struct {
        const L = nc.lanes(T);
        const V = nc.Vec(T);
        const Self = @This();
        const neg_inf: V = @splat(-std.math.inf(T));

        q: [*]const T,
        k: [*]const T,
        v: [*]const T,
        mask: ?[*]const T,
        out: [*]T,
        ms: [4]i64,
        heads: usize,
        lq: usize,
        lk: usize,
        d: usize,
        dv: usize,
        scale: T,
        causal: bool,
        nqb: usize, // query blocks per head
        vend: ?[]const usize,
        failed: std.atomic.Value(bool) = std.atomic.Value(bool).init(false),

        /// Scratch of one task, all transposed with BR lanes per row.
        const Scratch = struct {
            qt: [*]T, // d x BR: the task's query rows, zero past the last row
            st: [*]T, // BC x BR: scores, then probabilities
            ot: [*]T, // dv x BR: output accumulator
            m: [*]T, // BR: running maximum per query
            l: [*]T, // BR: running sum
            alpha: [*]T, // BR: rescaling of the current block
        };

        fn task(self: *Self, t: usize) void {
            const buf = std.heap.c_allocator.alloc(T, (self.d + BC + self.dv + 3) * BR) catch {
                self.failed.store(true, .monotonic);
                return;
            };
            defer std.heap.c_allocator.free(buf);
            const p = buf.ptr;
            const ws = Scratch{
                .qt = p,
                .st = p + self.d * BR,
                .ot = p + (self.d + BC) * BR,
                .m = p + (self.d + BC + self.dv) * BR,
                .l = p + (self.d + BC + self.dv + 1) * BR,
                .alpha = p + (self.d + BC + self.dv + 2) * BR,
            };
            // a head's query blocks last to first: causal ones see the most keys at the end,
            // so the cheap ones close the run and balance the threads (k and v of the head
            // stay in cache; the order does not change results)
            const bh = t / self.nqb;
            const qb = self.nqb - 1 - t % self.nqb;
            const mk = Mask(T).of(self.mask, self.ms, bh / self.heads, bh % self.heads);
            const vend = if (self.vend) |e| e[bh] else 0;
            self.block(bh, qb * BR, mk, vend, ws);
        }

        /// Query rows [q0, q0 + BR) of head bh.
        fn block(self: *const Self, bh: usize, q0: usize, mk: Mask(T), vend: usize, ws: Scratch) void {
            const d = self.d;
            const dv = self.dv;
            const q = self.q + bh * self.lq * d;
            const br = @min(self.lq - q0, BR);
            for (0..d) |t| {
                const row = ws.qt + t * BR;
                for (0..br) |i| row[i] = q[(q0 + i) * d + t];
                @memset(row[br..BR], 0);
            }
            @memset(ws.m[0..BR], -std.math.inf(T));
            @memset(ws.l[0..BR], 0);
            @memset(ws.ot[0 .. dv * BR], 0);
            const offset = @as(i64, @intCast(self.lk)) - @as(i64, @intCast(self.lq)); // key j visible iff j <= i + offset
            var kend = self.lk;
            if (self.causal) {
                const last = @as(i64, @intCast(q0 + br - 1)) + offset; // last key a row of the block sees
                kend = if (last < 0) 0 else @min(@as(usize, @intCast(last)) + 1, self.lk);
                kend = @max(kend, vend);
            }
            const kh = self.k + bh * self.lk * d;
            const vh = self.v + bh * self.lk * dv;
            var j0: usize = 0;
            while (j0 < kend) : (j0 += BC) {
                const bc = @min(kend - j0, BC);
                var jj: usize = 0;
                while (jj < bc) : (jj += MR) {
                    var c: usize = 0;
                    while (c < BR) : (c += 2 * L) {
                        switch (@min(bc - jj, MR)) {
                            inline 1...MR => |mr| self.scores(mr, kh + (j0 + jj) * d, ws.qt, ws.st + jj * BR, c, mk, q0, j0 + jj, offset),
                            else => unreachable,
                        }
                    }
                }
                softmaxStep(ws, bc);
                var c0: usize = 0;
                while (c0 < dv) : (c0 += MR) {
                    var c: usize = 0;
                    while (c < BR) : (c += 2 * L) {
                        switch (@min(dv - c0, MR)) {
                            inline 1...MR => |mr| accumulate(mr, vh + j0 * dv, dv, bc, ws, c0, c),
                            else => unreachable,
                        }
                    }
                }
            }
            const o = self.out + (bh * self.lq + q0) * dv;
            for (0..br) |i| {
                const l = ws.l[i]; // 0 when no key was visible: 0 / 0 = NaN
                const inv = 1 / l;
                for (0..dv) |c| {
                    const x = ws.ot[c * BR + i];
                    o[i * dv + c] = if (l > 0) x * inv else x / l;
                }
            }
        }

        /// st[r][lanes c .. c + 2L) for keys j0 + r, r < mr: scale k_j . q_lane (+ mask), -inf when hidden.
        fn scores(self: *const Self, comptime mr: usize, kb: [*]const T, qt: [*]const T, st: [*]T, c: usize, mk: Mask(T), q0: usize, j0: usize, offset: i64) void {
            var acc: [mr][2]V = undefined;
            inline for (0..mr) |r| acc[r] = .{ @splat(0), @splat(0) };
            const d = self.d;
            for (0..d) |t| {
                const b0 = nc.load(T, qt + t * BR + c);
                const b1 = nc.load(T, qt + t * BR + c + L);
                inline for (0..mr) |r| {
                    const a: V = @splat(kb[r * d + t]);
                    acc[r][0] = @mulAdd(V, a, b0, acc[r][0]);
                    acc[r][1] = @mulAdd(V, a, b1, acc[r][1]);
                }
            }
            inline for (0..mr) |r| {
                const j = j0 + r;
                inline for (0..2) |h| {
                    const i = q0 + c + h * L; // first query of the vector
                    var x = acc[r][h] * @as(V, @splat(self.scale));
                    if (mk.ptr) |m| x += maskLanes(m + j * mk.sk, mk.sq, i, self.lq);
                    if (self.causal) {
                        // lane l (query i + l) hides key j when l < j - offset - i
                        const first = @as(i64, @intCast(j)) - offset - @as(i64, @intCast(i));
                        if (first > 0) {
                            const iota = std.simd.iota(i64, L);
                            const hide = iota < @as(@Vector(L, i64), @splat(@min(first, L)));
                            x = @select(T, hide, neg_inf, x);
                        }
                    }
                    nc.store(T, st + r * BR + c + h * L, x);
                }
            }
        }

        /// Mask entries of queries i .. i + L (column mp): 0 for lanes past the last query.
        fn maskLanes(mp: [*]const T, sq: usize, i: usize, lq: usize) V {
            if (sq == 0) return @splat(mp[0]);
            const n = if (lq > i) @min(lq - i, L) else 0; // query rows that exist
            if (sq == 1 and n == L) return nc.load(T, mp + i);
            var tmp: [L]T = @splat(0);
            for (0..n) |l| tmp[l] = mp[(i + l) * sq];
            return tmp;
        }

        /// Online softmax over the block's bc keys, one query per lane.
        fn softmaxStep(ws: Scratch, bc: usize) void {
            var c: usize = 0;
            while (c < BR) : (c += L) {
                var mx: V = neg_inf;
                for (0..bc) |j| mx = nc.maxFast(T, nc.load(T, ws.st + j * BR + c), mx); // NaN shows up through P
                const m_old = nc.load(T, ws.m + c);
                const m_new = nc.maxFast(T, mx, m_old);
                const shift = @select(T, m_new == neg_inf, @as(V, @splat(0)), m_new);
                const al = nc.vexp(T, m_old - shift);
                var sum: V = @splat(0);
                for (0..bc) |j| {
                    const p = nc.vexpNeg(T, nc.load(T, ws.st + j * BR + c) - shift);
                    nc.store(T, ws.st + j * BR + c, p);
                    sum += p;
                }
                nc.store(T, ws.l + c, @mulAdd(V, nc.load(T, ws.l + c), al, sum));
                nc.store(T, ws.m + c, m_new);
                nc.store(T, ws.alpha + c, al);
            }
        }

        /// ot[c0 + r][lanes c .. c + 2L) = alpha ot + sum_j vb[j][c0 + r] st[j][lanes], r < mr.
        fn accumulate(comptime mr: usize, vb: [*]const T, dv: usize, bc: usize, ws: Scratch, c0: usize, c: usize) void {
            var acc: [mr][2]V = undefined;
            const a0 = nc.load(T, ws.alpha + c);
            const a1 = nc.load(T, ws.alpha + c + L);
            inline for (0..mr) |r| {
                acc[r][0] = nc.load(T, ws.ot + (c0 + r) * BR + c) * a0;
                acc[r][1] = nc.load(T, ws.ot + (c0 + r) * BR + c + L) * a1;
            }
            for (0..bc) |j| {
                const b0 = nc.load(T, ws.st + j * BR + c);
                const b1 = nc.load(T, ws.st + j * BR + c + L);
                inline for (0..mr) |r| {
                    const a: V = @splat(vb[j * dv + c0 + r]);
                    acc[r][0] = @mulAdd(V, a, b0, acc[r][0]);
                    acc[r][1] = @mulAdd(V, a, b1, acc[r][1]);
                }
            }
            inline for (0..mr) |r| {
                nc.store(T, ws.ot + (c0 + r) * BR + c, acc[r][0]);
                nc.store(T, ws.ot + (c0 + r) * BR + c + L, acc[r][1]);
            }
        }
    };
}

/// Naive softmax(q k^T * scale + mask) v of one head (mask row-major lq x lk), for the tests.
fn naive(comptime T: type, q: []const T, k: []const T, v: []const T, mask: []const T, out: []T, lq: usize, lk: usize, d: usize, dv: usize, scale: T, causal: bool) void {
    for (0..lq) |i| {
        var s: [64]T = undefined;
        var mx: T = -std.math.inf(T);
        for (0..lk) |j| {
            var dot: T = 0;
            for (0..d) |t| dot += q[i * d + t] * k[j * d + t];
            s[j] = dot * scale + mask[i * lk + j];
            if (causal and j + lq > i + lk) s[j] = -std.math.inf(T);
            mx = @max(mx, s[j]);
        }
        var l: T = 0;
        for (0..lk) |j| {
            s[j] = @exp(s[j] - mx);
            l += s[j];
        }
        for (0..dv) |c| {
            var o: T = 0;
            for (0..lk) |j| o += s[j] * v[j * dv + c];
            out[i * dv + c] = o / l;
        }
    }
}

test "attention matches a naive softmax, with mask and causal" {
    inline for (.{ f32, f64 }) |T| {
        const lq = 13;
        const lk = 21;
        const d = 7;
        const dv = 5;
        var prng = std.Random.DefaultPrng.init(1);
        const r = prng.random();
        var q: [lq * d]T = undefined;
        var k: [lk * d]T = undefined;
        var v: [lk * dv]T = undefined;
        var mask: [lq * lk]T = undefined;
        for (&q) |*x| x.* = r.floatNorm(T);
        for (&k) |*x| x.* = r.floatNorm(T);
        for (&v) |*x| x.* = r.floatNorm(T);
        for (&mask) |*x| x.* = r.floatNorm(T);
        for (0..2) |causal| {
            var got: [lq * dv]T = undefined;
            var want: [lq * dv]T = undefined;
            const rc = attentionFor(T, &q, &k, &v, &mask, &got, .{ 1, 1, lq, lk, d, dv }, 0.4, @intCast(causal), .{ 0, 0, lk, 1 });
            try std.testing.expectEqual(abi.OK, rc);
            naive(T, &q, &k, &v, &mask, &want, lq, lk, d, dv, 0.4, causal == 1);
            for (got, want) |g, w| try std.testing.expectApproxEqAbs(w, g, 1e-5);
        }
    }
}

test "attention argument errors write nothing" {
    var buf: [16]f32 = @splat(3);
    const good: Dims = .{ 1, 1, 2, 2, 2, 2 };
    try std.testing.expectEqual(abi.ERR_SIZE, attentionFor(f32, &buf, &buf, &buf, null, &buf, .{ 1, -1, 2, 2, 2, 2 }, 1, 0, @splat(0)));
    try std.testing.expectEqual(abi.ERR_SIZE, attentionFor(f32, &buf, &buf, &buf, null, &buf, good, 1, 2, @splat(0)));
    try std.testing.expectEqual(abi.ERR_SIZE, attentionFor(f32, &buf, &buf, &buf, &buf, &buf, good, 1, 0, .{ 0, 0, -1, 1 }));
    try std.testing.expectEqual(abi.ERR_NULL, attentionFor(f32, null, &buf, &buf, null, &buf, good, 1, 0, @splat(0)));
    for (buf) |x| try std.testing.expectEqual(@as(f32, 3), x);
    // lk == 0: NaN rows
    try std.testing.expectEqual(abi.OK, attentionFor(f32, &buf, null, null, null, buf[8..], .{ 1, 1, 2, 0, 2, 2 }, 1, 0, @splat(0)));
    for (buf[8..12]) |x| try std.testing.expect(std.math.isNan(x));
}
