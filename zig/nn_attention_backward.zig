//! axiom_attention_backward_f32 / axiom_attention_backward_f64 (csrc/axiom_kernels_nn.h):
//! dq, dk, dv of softmax(q k^T * scale + mask) v, flash-attention style (no lq x lk matrix);
//! mirrors csrc/nn_attention_backward.c and nn_attention_backward_impl.h.
//!
//! One (batch, head) per task, in blocks of BR queries x BC keys:
//!   pass 1, per query block: the forward's online softmax gives each row's maximum m, sum l and
//!     output O, then lse = m + log l and D = dO . O (= sum_j P dP);
//!   pass 2, per key block, per query block that sees it: S = q k^T * scale + mask (hidden keys
//!     -inf), P = exp(S - lse), dv += P^T dO, dP = dO v^T, dS = P (dP - D) * scale,
//!     dk += dS^T q, dq += dS k.
//! The block products are register tiles of MR rows x 2 vectors (FMA). A row that sees no key,
//! or whose scores hold +inf or NaN (l is 0 or NaN), has NaN probabilities in the reference:
//! its dq row is NaN and so are all of dk and dv of its head. Scratch per head is
//! O(BC (d + dv) + BR (BC + dv) + lq). Heads run on abi.parallelFor above PAR_FLOPS.

const std = @import("std");
const abi = @import("abi.zig");
const nc = @import("nn_attention_common.zig");
const att = @import("nn_attention.zig");

const BR: usize = 64; // query rows per block
const BC: usize = 64; // keys per block
const MR: usize = 6; // rows per register tile

export fn axiom_attention_backward_f32(gout: ?[*]const f32, q: ?[*]const f32, k: ?[*]const f32, v: ?[*]const f32, mask: ?[*]const f32, gq: ?[*]f32, gk: ?[*]f32, gv: ?[*]f32, batch: i64, heads: i64, lq: i64, lk: i64, d: i64, dv: i64, scale: f64, causal: c_int, mask_sb: i64, mask_sh: i64, mask_sq: i64, mask_sk: i64) c_int {
    return backward(f32, .{ gout, q, k, v }, mask, .{ gq, gk, gv }, .{ batch, heads, lq, lk, d, dv }, scale, causal, .{ mask_sb, mask_sh, mask_sq, mask_sk });
}

export fn axiom_attention_backward_f64(gout: ?[*]const f64, q: ?[*]const f64, k: ?[*]const f64, v: ?[*]const f64, mask: ?[*]const f64, gq: ?[*]f64, gk: ?[*]f64, gv: ?[*]f64, batch: i64, heads: i64, lq: i64, lk: i64, d: i64, dv: i64, scale: f64, causal: c_int, mask_sb: i64, mask_sh: i64, mask_sq: i64, mask_sk: i64) c_int {
    return backward(f64, .{ gout, q, k, v }, mask, .{ gq, gk, gv }, .{ batch, heads, lq, lk, d, dv }, scale, causal, .{ mask_sb, mask_sh, mask_sq, mask_sk });
}

/// abw_check: sizes, scratch bounds, causal and mask strides, then NULL pointers.
fn check(comptime T: type, in: [4]?[*]const T, has_mask: bool, grads: [3]?[*]T, s: att.Dims, causal: c_int, ms: [4]i64) c_int {
    const n = att.counts(T, s) orelse return abi.ERR_SIZE;
    // scratch: blocks of (d + dv) keys and 2 lq row statistics must be addressable
    const e: u64 = @sizeOf(T);
    const max: u64 = std.math.maxInt(i64);
    if (@as(u64, @intCast(s[4])) > max / 64 / e / 4 or @as(u64, @intCast(s[5])) > max / 64 / e / 4 or
        @as(u64, @intCast(s[2])) > max / e / 4) return abi.ERR_SIZE;
    if (!att.flagsOk(T, has_mask, s, causal, ms)) return abi.ERR_SIZE;
    if ((n[3] > 0 and in[0] == null) or (n[0] > 0 and (in[1] == null or grads[0] == null)) or
        (n[1] > 0 and (in[2] == null or grads[1] == null)) or (n[2] > 0 and (in[3] == null or grads[2] == null)))
        return abi.ERR_NULL;
    return abi.OK;
}

fn backward(comptime T: type, in: [4]?[*]const T, mask: ?[*]const T, grads: [3]?[*]T, s: att.Dims, scale: f64, causal: c_int, ms: [4]i64) c_int {
    const rc = check(T, in, mask != null, grads, s, causal, ms);
    if (rc != abi.OK or s[0] * s[1] == 0) return rc;
    const P = [*]const T;
    var job = Job(T){
        .g = nc.nonNull(P, in[0]),
        .q = nc.nonNull(P, in[1]),
        .k = nc.nonNull(P, in[2]),
        .v = nc.nonNull(P, in[3]),
        .gq = nc.nonNull([*]T, grads[0]),
        .gk = nc.nonNull([*]T, grads[1]),
        .gv = nc.nonNull([*]T, grads[2]),
        .mask = mask,
        .ms = ms,
        .heads = @intCast(s[1]),
        .lq = @intCast(s[2]),
        .lk = @intCast(s[3]),
        .d = @intCast(s[4]),
        .dv = @intCast(s[5]),
        .scale = @floatCast(scale),
        .causal = causal == 1,
    };
    const nbh: usize = @intCast(s[0] * s[1]);
    const work = @as(f64, @floatFromInt(nbh)) * @as(f64, @floatFromInt(s[2])) * @as(f64, @floatFromInt(s[3])) *
        @as(f64, @floatFromInt(s[4] + s[5]));
    if (nbh > 1 and work >= nc.PAR_FLOPS) {
        abi.parallelFor(nbh, &job, Job(T).head);
    } else {
        for (0..nbh) |bh| job.head(bh);
    }
    return if (job.failed.load(.monotonic)) abi.ERR_NOMEM else abi.OK;
}

fn Job(comptime T: type) type {
    return struct {
        const Self = @This();
        const neg_inf = -std.math.inf(T);

        g: [*]const T,
        q: [*]const T,
        k: [*]const T,
        v: [*]const T,
        gq: [*]T,
        gk: [*]T,
        gv: [*]T,
        mask: ?[*]const T,
        ms: [4]i64,
        heads: usize,
        lq: usize,
        lk: usize,
        d: usize,
        dv: usize,
        scale: T,
        causal: bool,
        failed: std.atomic.Value(bool) = std.atomic.Value(bool).init(false),

        /// Pointers of one head and its scratch.
        const Head = struct {
            g: [*]const T, // lq x dv
            q: [*]const T, // lq x d
            k: [*]const T, // lk x d
            v: [*]const T, // lk x dv
            gq: [*]T,
            gk: [*]T,
            gv: [*]T,
            mk: att.Mask(T),
            kt: [*]T, // d x BC: a key block transposed
            vt: [*]T, // dv x BC: its values transposed
            s: [*]T, // BR x BC: scores / probabilities / dS
            dp: [*]T, // BR x BC: dP
            o: [*]T, // BR x dv: output accumulator of pass 1
            m: [*]T, // BR
            l: [*]T, // BR
            lse: [*]T, // lq: log-sum-exp of every query row
            dd: [*]T, // lq: D of every query row
            bad: [*]bool, // lq: rows with NaN probabilities
        };

        fn head(self: *Self, bh: usize) void {
            const d = self.d;
            const dv = self.dv;
            const alloc = std.heap.c_allocator;
            const elems = (d + dv) * BC + 2 * BR * BC + BR * dv + 2 * BR + 2 * self.lq;
            const buf = alloc.alloc(T, elems) catch return self.fail();
            defer alloc.free(buf);
            const bad = alloc.alloc(bool, self.lq + 1) catch return self.fail();
            defer alloc.free(bad);
            const p = buf.ptr;
            const kt = p;
            const vt = kt + d * BC;
            const s = vt + dv * BC;
            const dp = s + BR * BC;
            const o = dp + BR * BC;
            const m = o + BR * dv;
            const l = m + BR;
            const lse = l + BR;
            const h = Head{
                .g = self.g + bh * self.lq * dv,
                .q = self.q + bh * self.lq * d,
                .k = self.k + bh * self.lk * d,
                .v = self.v + bh * self.lk * dv,
                .gq = self.gq + bh * self.lq * d,
                .gk = self.gk + bh * self.lk * d,
                .gv = self.gv + bh * self.lk * dv,
                .mk = att.Mask(T).of(self.mask, self.ms, bh / self.heads, bh % self.heads),
                .kt = kt,
                .vt = vt,
                .s = s,
                .dp = dp,
                .o = o,
                .m = m,
                .l = l,
                .lse = lse,
                .dd = lse + self.lq,
                .bad = bad.ptr,
            };
            self.gradients(h);
        }

        fn fail(self: *Self) void {
            self.failed.store(true, .monotonic);
        }

        fn offset(self: *const Self) i64 {
            return @as(i64, @intCast(self.lk)) - @as(i64, @intCast(self.lq)); // key j visible iff j <= i + offset
        }

        fn gradients(self: *const Self, h: Head) void {
            @memset(h.gq[0 .. self.lq * self.d], 0);
            @memset(h.gk[0 .. self.lk * self.d], 0);
            @memset(h.gv[0 .. self.lk * self.dv], 0);
            var any_bad = false;
            var q0: usize = 0;
            while (q0 < self.lq) : (q0 += BR) any_bad = self.rowStats(h, q0) or any_bad;
            var j0: usize = 0;
            while (j0 < self.lk) : (j0 += BC) self.keyBlock(h, j0);
            if (any_bad) {
                @memset(h.gk[0 .. self.lk * self.d], std.math.nan(T));
                @memset(h.gv[0 .. self.lk * self.dv], std.math.nan(T));
                for (0..self.lq) |i| {
                    if (h.bad[i]) @memset(h.gq[i * self.d ..][0..self.d], std.math.nan(T));
                }
            }
        }

        /// Pass 1 for query rows [q0, q0 + BR): lse, D and bad of each row; true if one is bad.
        fn rowStats(self: *const Self, h: Head, q0: usize) bool {
            const dv = self.dv;
            const br = @min(self.lq - q0, BR);
            @memset(h.m[0..br], neg_inf);
            @memset(h.l[0..br], 0);
            @memset(h.o[0 .. br * dv], 0);
            var kend = self.lk;
            if (self.causal) {
                const last = @as(i64, @intCast(q0 + br - 1)) + self.offset(); // the last key a row of the block sees
                kend = if (last < 0) 0 else @min(@as(usize, @intCast(last)) + 1, self.lk);
            }
            var j0: usize = 0;
            while (j0 < kend) : (j0 += BC) {
                const bc = @min(kend - j0, BC);
                packT(h.k, self.d, j0, bc, h.kt);
                self.scores(h, br, bc, q0, j0);
                for (0..br) |i| {
                    const row = h.s + i * BC;
                    const mx = rowMax(T, row, bc); // a NaN shows up through the sum
                    const m_new = if (mx > h.m[i]) mx else h.m[i];
                    const shift = if (m_new == neg_inf) 0 else m_new;
                    const alpha: T = @floatCast(nc.exp(@floatCast(h.m[i] - shift)));
                    const sum = expRow(row, bc, shift);
                    h.l[i] = @mulAdd(T, h.l[i], alpha, sum);
                    h.m[i] = m_new;
                    scaleRow(T, h.o + i * dv, dv, alpha);
                }
                mm(T, false, true, h.o, dv, h.s, BC, h.v + j0 * dv, dv, br, dv, bc);
            }
            var any_bad = false;
            for (0..br) |i| {
                const l = h.l[i];
                const o = h.o + i * dv;
                const gi = h.g + (q0 + i) * dv;
                const dot = dotLikeGcc(T, gi, o, dv);
                const bad = !(l > 0);
                h.bad[q0 + i] = bad;
                any_bad = any_bad or bad;
                h.lse[q0 + i] = if (bad) 0 else h.m[i] + @as(T, @floatCast(nc.log(@floatCast(l))));
                h.dd[q0 + i] = if (bad) 0 else dot / l;
            }
            return any_bad;
        }

        /// Pass 2 for keys [j0, j0 + BC): every query block that sees them.
        fn keyBlock(self: *const Self, h: Head, j0: usize) void {
            const d = self.d;
            const dv = self.dv;
            const bc = @min(self.lk - j0, BC);
            packT(h.k, d, j0, bc, h.kt);
            packT(h.v, dv, j0, bc, h.vt);
            // causal: query block q0 sees key j0 iff j0 <= q0 + br - 1 + offset
            var q0: usize = 0;
            const first = @as(i64, @intCast(j0)) - self.offset();
            if (self.causal and first > 0) q0 = @as(usize, @intCast(first)) / BR * BR;
            while (q0 < self.lq) : (q0 += BR) {
                const br = @min(self.lq - q0, BR);
                self.scores(h, br, bc, q0, j0);
                for (0..br) |i| {
                    const row = h.s + i * BC;
                    if (h.bad[q0 + i]) {
                        @memset(row[0..bc], 0);
                    } else {
                        _ = expRow(row, bc, h.lse[q0 + i]);
                    }
                }
                const g = h.g + q0 * dv;
                mm(T, true, true, h.gv + j0 * dv, dv, h.s, BC, g, dv, bc, dv, br);
                mm(T, false, false, h.dp, BC, g, dv, h.vt, BC, br, bc, dv);
                for (0..br) |i| dsRow(T, h.s + i * BC, h.dp + i * BC, bc, h.dd[q0 + i], self.scale);
                mm(T, true, true, h.gk + j0 * d, d, h.s, BC, h.q + q0 * d, d, bc, d, br);
                mm(T, false, true, h.gq + q0 * d, d, h.s, BC, h.k + j0 * d, d, br, d, bc);
            }
        }

        /// s (br x bc, ld BC) = q_blk kt * scale + mask, -inf where key j0 + j is hidden from query q0 + i.
        fn scores(self: *const Self, h: Head, br: usize, bc: usize, q0: usize, j0: usize) void {
            mm(T, false, false, h.s, BC, h.q + q0 * self.d, self.d, h.kt, BC, br, bc, self.d);
            for (0..br) |i| {
                const row = h.s[i * BC ..][0..bc];
                scaleRow(T, row.ptr, bc, self.scale);
                if (h.mk.ptr) |mp0| {
                    const mp = mp0 + (q0 + i) * h.mk.sq + j0 * h.mk.sk;
                    for (row, 0..) |*x, j| x.* += mp[j * h.mk.sk];
                }
                if (self.causal) {
                    // key j0 + j is visible from query q0 + i iff j0 + j <= q0 + i + offset
                    const first_hidden = @as(i64, @intCast(q0 + i)) + self.offset() + 1 - @as(i64, @intCast(j0));
                    if (first_hidden < @as(i64, @intCast(bc))) @memset(row[@intCast(@max(first_hidden, 0))..], neg_inf);
                }
            }
        }
    };
}

/// xt (d x bc, ld BC) = the transpose of rows j0 .. j0 + bc of x (rows of d).
fn packT(x: anytype, d: usize, j0: usize, bc: usize, xt: anytype) void {
    for (0..bc) |j| {
        const row = x + (j0 + j) * d;
        for (0..d) |t| xt[t * BC + j] = row[t];
    }
}

/// sum a[c] b[c] for c < n, rounded like gcc -O3 -ffp-contract=fast compiles C's plain loop:
/// an in-order reduction vectorised over 32- then 16-byte vectors (products rounded before the
/// adds) for the first n - n % (16 bytes) terms, the rest as fused multiply-adds. Matching it
/// makes D, hence dq and dk, equal to C's bit for bit (checked over many sizes).
fn dotLikeGcc(comptime T: type, a: [*]const T, b: [*]const T, n: usize) T {
    const main = n - n % (nc.lanes(T) / 2);
    var sum: T = 0;
    for (0..main) |c| sum += a[c] * b[c];
    for (main..n) |c| sum = @mulAdd(T, a[c], b[c], sum);
    return sum;
}

/// The maximum of x[0..n), skipping NaN (-inf when empty or all NaN): the order of the
/// comparisons does not matter, so it is taken lane-wise first.
fn rowMax(comptime T: type, x: [*]const T, n: usize) T {
    const L = nc.lanes(T);
    var mv: nc.Vec(T) = @splat(-std.math.inf(T));
    var j: usize = 0;
    while (j + L <= n) : (j += L) mv = nc.maxFast(T, nc.load(T, x + j), mv);
    var mx: T = -std.math.inf(T);
    inline for (0..L) |l| mx = if (mv[l] > mx) mv[l] else mx;
    while (j < n) : (j += 1) mx = if (x[j] > mx) x[j] else mx;
    return mx;
}

/// x[0..n) *= s, vectorised (a plain loop through `self` would not be: the row might alias it).
fn scaleRow(comptime T: type, x: [*]T, n: usize, s: T) void {
    const L = nc.lanes(T);
    const sv: nc.Vec(T) = @splat(s);
    var j: usize = 0;
    while (j + L <= n) : (j += L) nc.store(T, x + j, nc.load(T, x + j) * sv);
    while (j < n) : (j += 1) x[j] *= s;
}

/// dS = P (dP - D) * scale for one row, in place of P.
fn dsRow(comptime T: type, p: [*]T, dp: [*]const T, n: usize, di: T, scale: T) void {
    const L = nc.lanes(T);
    const V = nc.Vec(T);
    const dv: V = @splat(di);
    const sv: V = @splat(scale);
    var j: usize = 0;
    while (j + L <= n) : (j += L) nc.store(T, p + j, nc.load(T, p + j) * (nc.load(T, dp + j) - dv) * sv);
    while (j < n) : (j += 1) p[j] = p[j] * (dp[j] - di) * scale;
}

/// p[j] = exp(p[j] - shift) for j < n (p[j] - shift <= 0 or NaN); returns the sum, in C's
/// order (float32: 8 lane sums, then nn_hsum's pairing; float64: libm exp, one by one).
fn expRow(p: anytype, n: usize, shift: anytype) @TypeOf(shift) {
    const T = @TypeOf(shift);
    if (T == f64) {
        var total: T = 0;
        for (0..n) |j| {
            p[j] = nc.exp(p[j] - shift);
            total += p[j];
        }
        return total;
    }
    const L = nc.lanes(T);
    const V = nc.Vec(T);
    const sh: V = @splat(shift);
    var sum: V = @splat(0);
    var j: usize = 0;
    while (j + L <= n) : (j += L) {
        const e = nc.vexpNeg(T, nc.load(T, p + j) - sh);
        nc.store(T, p + j, e);
        sum += e;
    }
    if (j < n) {
        const e = nc.vexpNeg(T, nc.loadPart(T, p + j, n - j, -std.math.inf(T)) - sh); // padding lanes: 0
        nc.storePart(T, p + j, e, n - j);
        sum += e;
    }
    return ((sum[0] + sum[4]) + (sum[1] + sum[5])) + ((sum[2] + sum[6]) + (sum[3] + sum[7]));
}

/// C[m x n] (ld ldc) = (acc ? C : 0) + op(A) B over k, op(A) = A (m x k) or, with ta, the
/// transpose of A (k x m); all row-major. Tiles of MR rows x 2 vectors of columns.
fn mm(comptime T: type, comptime ta: bool, comptime acc: bool, c: [*]T, ldc: usize, a: [*]const T, lda: usize, b: [*]const T, ldb: usize, m: usize, n: usize, k: usize) void {
    const L = nc.lanes(T);
    var i: usize = 0;
    while (i < m) : (i += MR) {
        const ci = c + i * ldc;
        const ai = if (ta) a + i else a + i * lda;
        switch (@min(m - i, MR)) {
            inline 1...MR => |mr| {
                var col: usize = 0;
                while (col + 2 * L <= n) : (col += 2 * L) {
                    tile(T, mr, ta, acc, true, ci + col, ldc, ai, lda, b + col, ldb, k, L, L);
                }
                if (col < n) {
                    const rest = n - col;
                    tile(T, mr, ta, acc, false, ci + col, ldc, ai, lda, b + col, ldb, k, @min(rest, L), rest -| L);
                }
            },
            else => unreachable,
        }
    }
}

/// Rows [0, mr) x columns [0, n0 + n1) of C (n0 <= L lanes, then n1 <= L) += op(A) B over k;
/// with full, n0 = n1 = L.
fn tile(comptime T: type, comptime mr: usize, comptime ta: bool, comptime acc: bool, comptime full: bool, c: [*]T, ldc: usize, a: [*]const T, lda: usize, b: [*]const T, ldb: usize, k: usize, n0: usize, n1: usize) void {
    const L = nc.lanes(T);
    const V = nc.Vec(T);
    const Io = struct {
        inline fn ld(p: [*]const T, cnt: usize) V {
            return if (full) nc.load(T, p) else nc.loadPart(T, p, cnt, 0);
        }
        inline fn st(p: [*]T, v: V, cnt: usize) void {
            if (full) nc.store(T, p, v) else nc.storePart(T, p, v, cnt);
        }
    };
    var c0: [mr]V = undefined;
    var c1: [mr]V = undefined;
    inline for (0..mr) |r| {
        c0[r] = if (acc) Io.ld(c + r * ldc, n0) else @splat(0);
        c1[r] = if (acc) Io.ld(c + r * ldc + L, n1) else @splat(0);
    }
    for (0..k) |t| {
        const b0 = Io.ld(b + t * ldb, n0);
        const b1 = Io.ld(b + t * ldb + L, n1);
        inline for (0..mr) |r| {
            const av: V = @splat(if (ta) a[t * lda + r] else a[r * lda + t]);
            c0[r] = @mulAdd(V, av, b0, c0[r]);
            c1[r] = @mulAdd(V, av, b1, c1[r]);
        }
    }
    inline for (0..mr) |r| {
        Io.st(c + r * ldc, c0[r], n0);
        Io.st(c + r * ldc + L, c1[r], n1);
    }
}

test "backward matches finite differences of the forward (f64, causal, mask)" {
    const lq = 5;
    const lk = 7;
    const d = 3;
    const dv = 4;
    var prng = std.Random.DefaultPrng.init(3);
    const r = prng.random();
    var x: [lq * d + lk * d + lk * dv]f64 = undefined; // q, k, v
    var g: [lq * dv]f64 = undefined;
    var mask: [lq * lk]f64 = undefined;
    for (&x) |*e| e.* = r.floatNorm(f64);
    for (&g) |*e| e.* = r.floatNorm(f64);
    for (&mask) |*e| e.* = r.floatNorm(f64);
    const s: att.Dims = .{ 1, 1, lq, lk, d, dv };
    const ms: [4]i64 = .{ 0, 0, lk, 1 };
    var grad: [x.len]f64 = undefined;
    const rc = backward(f64, .{ &g, &x, x[lq * d ..].ptr, x[lq * d + lk * d ..].ptr }, &mask, .{ &grad, grad[lq * d ..].ptr, grad[lq * d + lk * d ..].ptr }, s, 0.7, 1, ms);
    try std.testing.expectEqual(abi.OK, rc);
    for (0..x.len) |i| {
        var loss: [2]f64 = undefined;
        for (0..2) |side| {
            var xp = x;
            xp[i] += if (side == 0) 1e-6 else -1e-6;
            var out: [lq * dv]f64 = undefined;
            _ = att.attentionFor(f64, &xp, xp[lq * d ..].ptr, xp[lq * d + lk * d ..].ptr, &mask, &out, s, 0.7, 1, ms);
            loss[side] = 0;
            for (out, g) |o, w| loss[side] += o * w;
        }
        try std.testing.expectApproxEqAbs((loss[0] - loss[1]) / 2e-6, grad[i], 1e-6);
    }
}
