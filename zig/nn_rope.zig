//! axiom_rope_f32 / axiom_rope_f64 (csrc/axiom_kernels_nn.h): rotary position embedding,
//! rotate-half convention; mirrors csrc/nn_rope.c.
//!
//! The angle table positions[s] * base ** (-2 i / d) is computed in double. float32: cos/sin
//! by Cody-Waite reduction to [-pi/4, pi/4] and Taylor polynomials in double, 4 lanes at a
//! time (error < 1e-13, far below float32 rounding; libm for |angle| >= 2**30 or non-finite),
//! stored as float32; float64: libm sin/cos like C. Then every row of x is rotated with the
//! table of its position, vectorised over the half dimension. y may be x (in place). The
//! multiply-adds are fused where gcc fuses C's, so the results equal C's bit for bit.

const std = @import("std");
const abi = @import("abi.zig");
const nc = @import("nn_attention_common.zig");

export fn axiom_rope_f32(x: ?[*]const f32, positions: ?[*]const f64, y: ?[*]f32, outer: i64, seq: i64, d: i64, base: f64) c_int {
    return rope(f32, x, positions, y, outer, seq, d, base);
}

export fn axiom_rope_f64(x: ?[*]const f64, positions: ?[*]const f64, y: ?[*]f64, outer: i64, seq: i64, d: i64, base: f64) c_int {
    return rope(f64, x, positions, y, outer, seq, d, base);
}

const pio2_hi: f64 = 1.57079632673412561417e+00; // first 33 bits of pi/2
const pio2_lo: f64 = 6.07710050650619224932e-11; // pi/2 - pio2_hi
const two_over_pi: f64 = 6.36619772367581382433e-01;
const huge_angle: f64 = 1073741824.0; // 2**30: beyond it (or non-finite) libm takes over

const V4 = @Vector(4, f64);

inline fn s4(v: f64) V4 {
    return @splat(v);
}

/// Horner's rule with fused multiply-adds: c[0] + x (c[1] + x (c[2] + ...)).
inline fn horner(x: V4, comptime c: []const f64) V4 {
    var p = s4(c[c.len - 1]);
    comptime var i = c.len - 1;
    inline while (i > 0) : (i -= 1) p = @mulAdd(V4, x, p, s4(c[i - 1]));
    return p;
}

/// sin and cos of a (|a| < 2**30) to about 1e-13, branch-free (rope_sincos of nn_rope.c, with
/// the multiply-adds fused where gcc -ffp-contract=fast fuses C's, so the tables are equal).
fn sincos4(a: V4, s: *V4, c: *V4) void {
    const magic = s4(6755399441055744.0); // 1.5 * 2**52: adding it rounds half to even (nearbyint)
    const k = (a * s4(two_over_pi) + magic) - magic;
    const r = @mulAdd(V4, -k, s4(pio2_lo), @mulAdd(V4, -k, s4(pio2_hi), a));
    const r2 = r * r;
    const sp = horner(r2, &.{ -1.0 / 6.0, 1.0 / 120.0, -1.0 / 5040.0, 1.0 / 362880.0, -1.0 / 39916800.0, 1.0 / 6227020800.0 });
    const sr = @mulAdd(V4, r * r2, sp, r);
    const cr = @mulAdd(V4, r2, horner(r2, &.{ -0.5, 1.0 / 24.0, -1.0 / 720.0, 1.0 / 40320.0, -1.0 / 3628800.0, 1.0 / 479001600.0, -1.0 / 87178291200.0 }), s4(1.0));
    const q = k - s4(4.0) * @floor(k * s4(0.25)); // quadrant 0..3 (exact)
    const odd = (q == s4(1.0)) | (q == s4(3.0));
    const ss = @select(f64, odd, cr, sr);
    const cc = @select(f64, odd, sr, cr);
    s.* = @select(f64, q >= s4(2.0), -ss, ss);
    c.* = @select(f64, (q == s4(1.0)) | (q == s4(2.0)), -cc, cc);
}

/// s, c = sin(a), cos(a) by libm, rounded to T.
fn setSinCos(comptime T: type, a: f64, s: *T, c: *T) void {
    var sv: f64 = undefined;
    var cv: f64 = undefined;
    nc.sincos(a, &sv, &cv);
    s.* = @floatCast(sv);
    c.* = @floatCast(cv);
}

/// Context of the table and rotation tasks.
fn Job(comptime T: type) type {
    return struct {
        x: [*]const T,
        y: [*]T,
        positions: [*]const f64,
        inv: []const f64, // base ** (-2 i / d), half entries
        ctab: []T, // seq x half
        stab: []T,
        seq: usize,
        d: usize,
        rows: usize,
        tasks: usize, // contiguous chunks of the loop split over the threads

        fn chunk(self: *const @This(), n: usize, task: usize) [2]usize {
            const per = (n + self.tasks - 1) / self.tasks;
            return .{ @min(n, task * per), @min(n, (task + 1) * per) };
        }

        /// Table rows [s0, s1) (one row per position).
        /// Table rows of positions [s0, s1). float32: a row at a time (the polynomial runs
        /// along i); float64: a column at a time, so libm's sincos sees angles of one scale in
        /// a row (its branches stay predictable, as in C's loop order).
        fn tableTask(self: *const @This(), task: usize) void {
            const r = self.chunk(self.seq, task);
            if (T == f32) {
                for (r[0]..r[1]) |s| self.tableRow(s);
                return;
            }
            const half = self.inv.len;
            for (self.inv, 0..) |inv, i| {
                for (r[0]..r[1]) |s| setSinCos(T, self.positions[s] * inv, &self.stab[s * half + i], &self.ctab[s * half + i]);
            }
        }

        /// float32 table row of position s: the polynomial 4 angles at a time, libm for the
        /// huge or non-finite angles it cannot reduce, and for the last half % 4.
        fn tableRow(self: *const @This(), s: usize) void {
            const half = self.inv.len;
            const p = self.positions[s];
            const c = self.ctab[s * half ..][0..half];
            const sn = self.stab[s * half ..][0..half];
            var i: usize = 0;
            while (i + 4 <= half) : (i += 4) {
                var a = s4(p) * @as(V4, self.inv[i..][0..4].*);
                a = @select(f64, @abs(a) < s4(huge_angle), a, s4(0.0)); // fixed below
                var sv: V4 = undefined;
                var cv: V4 = undefined;
                sincos4(a, &sv, &cv);
                c[i..][0..4].* = @as(@Vector(4, f32), @floatCast(cv));
                sn[i..][0..4].* = @as(@Vector(4, f32), @floatCast(sv));
            }
            for (0..i) |t| {
                const a = p * self.inv[t];
                if (!(@abs(a) < huge_angle)) setSinCos(T, a, &sn[t], &c[t]);
            }
            for (i..half) |t| setSinCos(T, p * self.inv[t], &sn[t], &c[t]);
        }

        fn rotateTask(self: *const @This(), task: usize) void {
            const r = self.chunk(self.rows, task);
            for (r[0]..r[1]) |row| self.rotateRow(row);
        }

        fn rotateRow(self: *const @This(), row: usize) void {
            const L = comptime nc.lanes(T);
            const half = self.inv.len;
            const s = row % self.seq;
            const xr = self.x + row * self.d;
            const yr = self.y + row * self.d;
            const cr = self.ctab.ptr + s * half;
            const sr = self.stab.ptr + s * half;
            const V = nc.Vec(T);
            // x1 c - x2 s and x2 c + x1 s with the first product fused, as gcc contracts C's
            // expressions (-ffp-contract=fast), so the results equal C's bit for bit
            var i: usize = 0;
            while (i + L <= half) : (i += L) {
                const x1 = nc.load(T, xr + i);
                const x2 = nc.load(T, xr + half + i);
                const c = nc.load(T, cr + i);
                const sn = nc.load(T, sr + i);
                nc.store(T, yr + i, @mulAdd(V, x1, c, -(x2 * sn)));
                nc.store(T, yr + half + i, @mulAdd(V, x2, c, x1 * sn));
            }
            while (i < half) : (i += 1) {
                const x1 = xr[i];
                const x2 = xr[half + i];
                yr[i] = @mulAdd(T, x1, cr[i], -(x2 * sr[i]));
                yr[half + i] = @mulAdd(T, x2, cr[i], x1 * sr[i]);
            }
            if (self.d % 2 == 1) yr[self.d - 1] = xr[self.d - 1];
        }
    };
}

fn runChunks(job: anytype, par: bool, comptime body: anytype) void {
    const J = @TypeOf(job.*);
    const Wrap = struct {
        fn call(j: *J, t: usize) void {
            body(j, t);
        }
    };
    job.tasks = if (par) abi.numThreads() else 1;
    abi.parallelFor(job.tasks, job, Wrap.call);
}

fn rope(comptime T: type, x: ?[*]const T, positions: ?[*]const f64, y: ?[*]T, outer: i64, seq: i64, d: i64, base: f64) c_int {
    const count = nc.numel(@sizeOf(T), &.{ outer, seq, d }) orelse return abi.ERR_SIZE;
    _ = nc.numel(@sizeOf(T), &.{ seq, d }) orelse return abi.ERR_SIZE;
    if ((count > 0 and (x == null or y == null)) or (seq > 0 and positions == null)) return abi.ERR_NULL;
    if (count == 0) return abi.OK;
    const useq: usize = @intCast(seq);
    const ud: usize = @intCast(d);
    const half = ud / 2;
    const alloc = std.heap.c_allocator;
    const inv = alloc.alloc(f64, @max(half, 1)) catch return abi.ERR_NOMEM;
    defer alloc.free(inv);
    const tab = alloc.alloc(T, @max(useq * half, 1) * 2) catch return abi.ERR_NOMEM;
    defer alloc.free(tab);
    for (inv[0..half], 0..) |*v, i| {
        v.* = 1.0 / nc.pow(base, @as(f64, @floatFromInt(2 * i)) / @as(f64, @floatFromInt(ud)));
    }
    var job = Job(T){
        .x = x.?,
        .y = y.?,
        .positions = positions.?,
        .inv = inv[0..half],
        .ctab = tab[0 .. useq * half],
        .stab = tab[useq * half .. 2 * useq * half],
        .seq = useq,
        .d = ud,
        .rows = @intCast(@divExact(count, d)),
        .tasks = 1,
    };
    // like C: only the float32 table (fast polynomial) is computed in parallel
    runChunks(&job, T == f32 and seq * @as(i64, @intCast(half)) >= nc.PAR_ELEMS_MATH, Job(T).tableTask);
    runChunks(&job, outer * seq > 1 and count >= nc.PAR_ELEMS, Job(T).rotateTask);
    return abi.OK;
}

test "rope rotates pairs by position angles and copies an odd last element" {
    inline for (.{ f32, f64 }) |T| {
        const d = 7;
        var x: [2 * 3 * d]T = undefined;
        for (&x, 0..) |*e, i| e.* = @floatFromInt(@as(i64, @intCast(i % 11)) - 5);
        const pos = [3]f64{ 0, 1.5, -40 };
        var y: [x.len]T = undefined;
        try std.testing.expectEqual(abi.OK, rope(T, &x, &pos, &y, 2, 3, d, 100));
        for (0..2 * 3) |row| {
            const p = pos[row % 3];
            for (0..3) |i| {
                const a = p / std.math.pow(f64, 100, @as(f64, @floatFromInt(2 * i)) / d);
                const x1: f64 = x[row * d + i];
                const x2: f64 = x[row * d + 3 + i];
                try std.testing.expectApproxEqAbs(x1 * @cos(a) - x2 * @sin(a), y[row * d + i], 1e-5);
                try std.testing.expectApproxEqAbs(x2 * @cos(a) + x1 * @sin(a), y[row * d + 3 + i], 1e-5);
            }
            try std.testing.expectEqual(x[row * d + 6], y[row * d + 6]);
        }
        // in place gives the same
        try std.testing.expectEqual(abi.OK, rope(T, &x, &pos, &x, 2, 3, d, 100));
        try std.testing.expectEqualSlices(T, &y, &x);
        try std.testing.expectEqual(abi.ERR_NULL, rope(T, &x, null, &y, 2, 3, d, 100));
        try std.testing.expectEqual(abi.ERR_SIZE, rope(T, &x, &pos, &y, 2, -3, d, 100));
    }
}
