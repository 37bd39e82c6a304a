//! Packed, cache-blocked GEMM (float32 / float64): axiom_gemm_f32/_f64 and
//! axiom_gemm_batched_f32/_f64 (csrc/axiom_kernels.h; mirrors csrc/gemm.c and
//! csrc/gemm_impl.h), and the driver that conv.zig and matmul.zig call.
//!
//! Classic Goto / BLIS blocking:
//!
//!   for jc in n by NC:                 B block (KC x NC) packed into NR-wide panels
//!     for pc in k by KC:
//!       pack B[pc:pc+KC, jc:jc+NC]
//!       for ic in m by MC:             A block (MC x KC): packed (transposed A), read in
//!                                      place (row-major A) or gathered (convolutions)
//!         macro kernel: MR x NR register tiles (gemm_ukr.zig)
//!
//! Threads: above AXIOM_PARALLEL_FLOPS the output is cut into independent sub-blocks
//! (column chunks, or row chunks when C is narrow), each running the blocking above with its
//! own packing buffers, handed to abi.parallelFor. Column chunks re-pack nothing (row-major
//! A is read in place), so one parallel region per call is enough (no barriers).
//!
//! "Gather" A operand: element (i, p) is rows[i][koff[p]]: every row of A is a base pointer
//! and every column an offset, an implicit im2col (see conv.zig). The instruction-set level
//! (gemm_isa.zig) is read once per call and selects the kernel set.

const std = @import("std");
const abi = @import("abi.zig");
const isa = @import("gemm_isa.zig");
const ukr = @import("gemm_ukr.zig");
const scratch = @import("gemm_scratch.zig");

comptime {
    _ = isa;
    _ = scratch;
}

/// Floating-point operations below which everything runs on the calling thread (as C).
pub const PARALLEL_FLOPS: f64 = 2.0 * 8388608.0;

/// Threads for a job of `flops` operations: 1 below the threshold, else abi.numThreads().
pub fn threadsFor(flops: f64) usize {
    return if (flops < PARALLEL_FLOPS) 1 else abi.numThreads();
}

/// The A operand of the driver: rows != null -> element (i, p) = rows[i][koff[p]];
/// else trans ? a[p * lda + i] : a[i * lda + p].
pub fn ASrc(comptime T: type) type {
    return struct {
        a: [*]const T = undefined,
        lda: usize = 0,
        trans: bool = false,
        rows: ?[*]const [*]const T = null,
        koff: [*]const usize = undefined,
    };
}

/// A non-null pointer for an array that may be NULL (only when it is never read).
pub fn orDangling(comptime P: type, p: ?P) P {
    return p orelse @ptrFromInt(64);
}

fn roundUp(x: usize, to: usize) usize {
    return (x + to - 1) / to * to;
}

/// C (m x n, ldc) = alpha * A @ op(B) + beta * C + bias; beta == 0: C is not read; bias may
/// be null. B element (p, j) = transb ? b[j * ldb + p] : b[p * ldb + j]. Arguments are
/// assumed valid; error.OutOfMemory when scratch memory is missing (C is then unspecified).
pub fn driver(comptime T: type, m: usize, n: usize, k: usize, A: ASrc(T), b: [*]const T, ldb: usize, transb: bool, alpha: T, beta: T, c: [*]T, ldc: usize, bias: ?[*]const T, nthreads: usize) error{OutOfMemory}!void {
    if (m == 0 or n == 0) return;
    if (k == 0) {
        for (0..m) |i| {
            for (0..n) |j| {
                const x: T = if (beta != 0) beta * c[i * ldc + j] else 0;
                c[i * ldc + j] = if (bias) |bs| x + bs[j] else x;
            }
        }
        return;
    }
    var job = Job(T){ .m = m, .n = n, .k = k, .A = A, .b = b, .ldb = ldb, .transb = transb, .alpha = alpha, .beta = beta, .c = c, .ldc = ldc, .bias = bias };
    switch (isa.active()) {
        inline 0...isa.compiled_level => |level| try Impl(T, level).run(&job, nthreads),
        else => unreachable,
    }
}

fn Job(comptime T: type) type {
    return struct {
        m: usize,
        n: usize,
        k: usize,
        A: ASrc(T),
        b: [*]const T,
        ldb: usize,
        transb: bool,
        alpha: T,
        beta: T,
        c: [*]T,
        ldc: usize,
        bias: ?[*]const T,
        kc: usize = 0,
        // parallel split: task t covers rows / columns [t * chunk, (t + 1) * chunk)
        by_cols: bool = false,
        chunk: usize = 0,
        // workspace: per task b_bytes of packed B, then a_bytes of packed A
        ws: scratch.Buf = undefined,
        b_bytes: usize = 0,
        a_bytes: usize = 0,
    };
}

fn Impl(comptime T: type, comptime level: u8) type {
    return struct {
        const cfg = ukr.config(T, level);
        const K = ukr.Kernels(T, cfg);
        const NR = K.NR;
        const MR = K.MR;
        const J = Job(T);
        const E = ukr.Epi(T);

        fn run(job: *J, nthreads: usize) error{OutOfMemory}!void {
            const mode: ukr.AMode = if (job.A.rows != null) .gather else if (job.A.trans) .packed_a else .strided;
            // gathered A (convolutions): B is small (the weights), keep the whole reduction in one block
            const kc0 = if (mode == .gather and job.k <= 4 * cfg.kc) job.k else cfg.kc;
            const nblk = (job.k + kc0 - 1) / kc0;
            job.kc = (job.k + nblk - 1) / nblk; // balanced: ceil(k / ceil(k / KC))
            const mr: usize = if (mode == .packed_a) MR else K.MRG;
            var ntasks: usize = 1;
            job.by_cols = true;
            job.chunk = job.n;
            if (nthreads > 1) {
                // Column chunks re-read A once per chunk, row chunks re-pack B once per chunk:
                // cut the longer side (when it has a few tiles per thread).
                const npanels = (job.n + NR - 1) / NR;
                const ntiles = (job.m + mr - 1) / mr;
                const want = 2 * nthreads; // a few tasks per thread: others may share the cores
                const cols_ok = npanels >= want;
                const rows_ok = ntiles >= want;
                job.by_cols = if (cols_ok and rows_ok) job.n >= job.m else if (cols_ok or rows_ok) cols_ok else npanels >= ntiles;
                if (job.by_cols) {
                    job.chunk = (npanels + want - 1) / @min(want, npanels) * NR;
                    ntasks = (job.n + job.chunk - 1) / job.chunk;
                } else {
                    job.chunk = (ntiles + want - 1) / @min(want, ntiles) * mr;
                    ntasks = (job.m + job.chunk - 1) / job.chunk;
                }
            }
            // one workspace for all tasks, taken by the calling thread: per task a B block and
            // (transposed A) an A block
            const kc_max = @min(job.k, job.kc);
            const cols = if (job.by_cols) @min(job.chunk, job.n) else job.n;
            const rows = if (job.by_cols) job.m else @min(job.chunk, job.m);
            job.b_bytes = scratch.bytesOf(T, kc_max * roundUp(@min(cols, cfg.nc), NR));
            job.a_bytes = if (mode == .packed_a) scratch.bytesOf(T, kc_max * roundUp(@min(rows, cfg.mc), MR)) else 0;
            const ws = scratch.acquire(ntasks * (job.a_bytes + job.b_bytes)) orelse return error.OutOfMemory;
            defer scratch.release(ws);
            job.ws = ws;
            if (ntasks <= 1) return block(job, mode, 0, 0, job.m, 0, job.n);
            abi.parallelFor(ntasks, job, task);
        }

        fn task(job: *J, t: usize) void {
            const mode: ukr.AMode = if (job.A.rows != null) .gather else if (job.A.trans) .packed_a else .strided;
            const lo = t * job.chunk;
            if (job.by_cols) {
                block(job, mode, t, 0, job.m, lo, @min(lo + job.chunk, job.n));
            } else {
                block(job, mode, t, lo, @min(lo + job.chunk, job.m), 0, job.n);
            }
        }

        fn block(job: *J, mode: ukr.AMode, t: usize, r0: usize, r1: usize, j0: usize, j1: usize) void {
            switch (mode) {
                inline else => |md| blockMode(md, job, t, r0, r1, j0, j1),
            }
        }

        /// C[r0..r1, j0..j1] of the job, sequentially, with the buffers of task t.
        fn blockMode(comptime mode: ukr.AMode, job: *J, t: usize, r0: usize, r1: usize, j0: usize, j1: usize) void {
            const KC = job.kc;
            const base = t * (job.a_bytes + job.b_bytes);
            const bbuf = job.ws.slice(T, base, job.b_bytes / @sizeOf(T));
            const abuf = job.ws.slice(T, base + job.b_bytes, job.a_bytes / @sizeOf(T));
            const A = job.A;
            var jc = j0;
            while (jc < j1) : (jc += cfg.nc) {
                const nc = @min(j1 - jc, cfg.nc);
                var pc: usize = 0;
                while (pc < job.k) : (pc += KC) {
                    const kc = @min(job.k - pc, KC);
                    packB(kc, nc, job.b, job.ldb, job.transb, pc, jc, bbuf.ptr);
                    const epi: E = if (pc == 0)
                        .{ .alpha = job.alpha, .beta = job.beta, .use_beta = job.beta != 0, .bias = if (job.bias) |bs| bs + jc else null }
                    else
                        .{ .alpha = job.alpha, .beta = 1, .use_beta = true, .bias = null };
                    var ic = r0;
                    while (ic < r1) : (ic += cfg.mc) {
                        const mc = @min(r1 - ic, cfg.mc);
                        var a: ukr.ARef(T) = .{};
                        switch (mode) {
                            .packed_a => {
                                packAT(mc, kc, A.a, A.lda, ic, pc, abuf.ptr);
                                a.base = abuf.ptr;
                            },
                            .strided => {
                                a.base = A.a + ic * A.lda + pc;
                                a.lda = A.lda;
                            },
                            .gather => {
                                a.rows = A.rows.? + ic;
                                a.koff = A.koff + pc;
                            },
                        }
                        K.macro(mode, mc, nc, kc, a, bbuf.ptr, job.c + ic * job.ldc + jc, job.ldc, &epi);
                    }
                }
            }
        }

        /// Pack A^T[r0 .. r0 + mc, p0 .. p0 + kc] (A stored k x m) into MR-row panels (rows past mc are zero).
        fn packAT(mc: usize, kc: usize, a: [*]const T, lda: usize, r0: usize, p0: usize, dst_in: [*]T) void {
            var dst = dst_in;
            var ir: usize = 0;
            while (ir < mc) : (ir += MR) {
                const rows = @min(mc - ir, MR);
                const src = a + p0 * lda + r0 + ir;
                for (0..kc) |p| {
                    const d = dst[p * MR ..][0..MR];
                    if (rows == MR) {
                        d.* = src[p * lda ..][0..MR].*;
                    } else {
                        @memcpy(d[0..rows], src[p * lda ..][0..rows]);
                        @memset(d[rows..], 0);
                    }
                }
                dst += MR * kc;
            }
        }

        /// Pack op(B)[p0 .. p0 + kc, j0 .. j0 + nc] into NR-column panels (columns past nc are zero).
        fn packB(kc: usize, nc: usize, b: [*]const T, ldb: usize, trans: bool, p0: usize, j0: usize, dst: [*]T) void {
            var j: usize = 0;
            while (j < nc) : (j += NR) {
                const cols = @min(nc - j, NR);
                const d = dst + j * kc;
                if (!trans) {
                    const src = b + p0 * ldb + j0 + j;
                    for (0..kc) |p| {
                        const row = d[p * NR ..][0..NR];
                        if (cols == NR) {
                            row.* = src[p * ldb ..][0..NR].*;
                        } else {
                            @memcpy(row[0..cols], src[p * ldb ..][0..cols]);
                            @memset(row[cols..], 0);
                        }
                    }
                } else {
                    const src = b + (j0 + j) * ldb + p0; // element (p, j) = b[j * ldb + p]
                    for (0..cols) |jj| {
                        const s = src + jj * ldb;
                        for (0..kc) |p| d[p * NR + jj] = s[p];
                    }
                    for (cols..NR) |jj| {
                        for (0..kc) |p| d[p * NR + jj] = 0;
                    }
                }
            }
        }
    };
}

// ---- exported symbols -------------------------------------------------------------------

/// Elements spanned by a rows x cols matrix with leading dimension ld (0 when empty), or
/// null when the byte size overflows an i64.
fn span(comptime T: type, rows: i64, cols: i64, ld: i64) ?i64 {
    if (rows == 0 or cols == 0) return 0;
    const s = std.math.mul(i64, rows - 1, ld) catch return null;
    const t = std.math.add(i64, s, cols) catch return null;
    _ = std.math.mul(i64, t, @sizeOf(T)) catch return null;
    return t;
}

/// Elements spanned by `batch` matrices of `sp` elements `stride` apart, or null on overflow.
fn batchSpan(comptime T: type, batch: i64, sp: i64, stride: i64) ?i64 {
    if (batch == 0 or sp == 0) return 0;
    const s = std.math.mul(i64, batch - 1, stride) catch return null;
    const t = std.math.add(i64, s, sp) catch return null;
    _ = std.math.mul(i64, t, @sizeOf(T)) catch return null;
    return t;
}

fn Batched(comptime T: type) type {
    return struct {
        trans_a: bool,
        trans_b: bool,
        m: usize,
        n: usize,
        k: usize,
        alpha: T,
        a: [*]const T,
        lda: usize,
        stride_a: usize,
        b: [*]const T,
        ldb: usize,
        stride_b: usize,
        beta: T,
        c: [*]T,
        ldc: usize,
        stride_c: usize,
        failed: std.atomic.Value(bool) = std.atomic.Value(bool).init(false),

        fn one(self: *@This(), i: usize, threads: usize) error{OutOfMemory}!void {
            const A = ASrc(T){ .a = self.a + i * self.stride_a, .lda = self.lda, .trans = self.trans_a };
            try driver(T, self.m, self.n, self.k, A, self.b + i * self.stride_b, self.ldb, self.trans_b, self.alpha, self.beta, self.c + i * self.stride_c, self.ldc, null, threads);
        }

        fn task(self: *@This(), i: usize) void {
            self.one(i, 1) catch self.failed.store(true, .monotonic);
        }
    };
}

fn gemmBatched(comptime T: type, batch: i64, trans_a: i32, trans_b: i32, m: i64, n: i64, k: i64, alpha: T, a: ?[*]const T, lda: i64, stride_a: i64, b: ?[*]const T, ldb: i64, stride_b: i64, beta: T, c: ?[*]T, ldc: i64, stride_c: i64) c_int {
    if (batch < 0 or m < 0 or n < 0 or k < 0 or (trans_a != 0 and trans_a != 1) or (trans_b != 0 and trans_b != 1) or
        stride_a < 0 or stride_b < 0 or stride_c < 0) return abi.ERR_SIZE;
    const rows_a = if (trans_a != 0) k else m;
    const cols_a = if (trans_a != 0) m else k;
    const rows_b = if (trans_b != 0) n else k;
    const cols_b = if (trans_b != 0) k else n;
    if (lda < @max(cols_a, 1) or ldb < @max(cols_b, 1) or ldc < @max(n, 1)) return abi.ERR_SIZE;
    const span_a = span(T, rows_a, cols_a, lda) orelse return abi.ERR_SIZE;
    const span_b = span(T, rows_b, cols_b, ldb) orelse return abi.ERR_SIZE;
    const span_c = span(T, m, n, ldc) orelse return abi.ERR_SIZE;
    _ = batchSpan(T, batch, span_a, stride_a) orelse return abi.ERR_SIZE;
    _ = batchSpan(T, batch, span_b, stride_b) orelse return abi.ERR_SIZE;
    _ = batchSpan(T, batch, span_c, stride_c) orelse return abi.ERR_SIZE;
    if (batch > 1 and span_c > 0 and stride_c < span_c) return abi.ERR_SIZE; // outputs must not overlap
    if (batch == 0) return abi.OK;
    if ((span_a > 0 and a == null) or (span_b > 0 and b == null) or (span_c > 0 and c == null)) return abi.ERR_NULL;
    if (span_c == 0) return abi.OK;

    var job = Batched(T){
        .trans_a = trans_a != 0,
        .trans_b = trans_b != 0,
        .m = @intCast(m),
        .n = @intCast(n),
        .k = @intCast(k),
        .alpha = alpha,
        .a = orDangling([*]const T, a),
        .lda = @intCast(lda),
        .stride_a = @intCast(stride_a),
        .b = orDangling([*]const T, b),
        .ldb = @intCast(ldb),
        .stride_b = @intCast(stride_b),
        .beta = beta,
        .c = c.?,
        .ldc = @intCast(ldc),
        .stride_c = @intCast(stride_c),
    };
    if (k == 0) { // a and b may be NULL: never offset them
        job.stride_a = 0;
        job.stride_b = 0;
    }
    const nb: usize = @intCast(batch);
    const flops = 2.0 * @as(f64, @floatFromInt(m)) * @as(f64, @floatFromInt(n)) * @as(f64, @floatFromInt(k));
    if (nb > 1 and flops < PARALLEL_FLOPS and threadsFor(flops * @as(f64, @floatFromInt(batch))) > 1) {
        // many small products: one per thread at a time
        abi.parallelFor(nb, &job, Batched(T).task);
        return if (job.failed.load(.monotonic)) abi.ERR_NOMEM else abi.OK;
    }
    const threads = threadsFor(flops);
    for (0..nb) |i| job.one(i, threads) catch return abi.ERR_NOMEM;
    return abi.OK;
}

export fn axiom_gemm_f32(trans_a: i32, trans_b: i32, m: i64, n: i64, k: i64, alpha: f32, a: ?[*]const f32, lda: i64, b: ?[*]const f32, ldb: i64, beta: f32, c: ?[*]f32, ldc: i64) c_int {
    return gemmBatched(f32, 1, trans_a, trans_b, m, n, k, alpha, a, lda, 0, b, ldb, 0, beta, c, ldc, 0);
}

export fn axiom_gemm_f64(trans_a: i32, trans_b: i32, m: i64, n: i64, k: i64, alpha: f64, a: ?[*]const f64, lda: i64, b: ?[*]const f64, ldb: i64, beta: f64, c: ?[*]f64, ldc: i64) c_int {
    return gemmBatched(f64, 1, trans_a, trans_b, m, n, k, alpha, a, lda, 0, b, ldb, 0, beta, c, ldc, 0);
}

export fn axiom_gemm_batched_f32(batch: i64, trans_a: i32, trans_b: i32, m: i64, n: i64, k: i64, alpha: f32, a: ?[*]const f32, lda: i64, stride_a: i64, b: ?[*]const f32, ldb: i64, stride_b: i64, beta: f32, c: ?[*]f32, ldc: i64, stride_c: i64) c_int {
    return gemmBatched(f32, batch, trans_a, trans_b, m, n, k, alpha, a, lda, stride_a, b, ldb, stride_b, beta, c, ldc, stride_c);
}

export fn axiom_gemm_batched_f64(batch: i64, trans_a: i32, trans_b: i32, m: i64, n: i64, k: i64, alpha: f64, a: ?[*]const f64, lda: i64, stride_a: i64, b: ?[*]const f64, ldb: i64, stride_b: i64, beta: f64, c: ?[*]f64, ldc: i64, stride_c: i64) c_int {
    return gemmBatched(f64, batch, trans_a, trans_b, m, n, k, alpha, a, lda, stride_a, b, ldb, stride_b, beta, c, ldc, stride_c);
}

// ---- tests (python -m ziglang test -lc zig/gemm.zig) -------------------------------------

const testing = std.testing;

test "gemm argument checks leave C untouched" {
    var a = [_]f32{ 1, 2, 3, 4 };
    var c = [_]f32{ 7, 7, 7, 7 };
    const ap: [*]const f32 = &a;
    const cp: [*]f32 = &c;
    try testing.expectEqual(abi.ERR_SIZE, axiom_gemm_f32(2, 0, 2, 2, 2, 1, ap, 2, ap, 2, 0, cp, 2));
    try testing.expectEqual(abi.ERR_SIZE, axiom_gemm_f32(0, 0, -1, 2, 2, 1, ap, 2, ap, 2, 0, cp, 2));
    try testing.expectEqual(abi.ERR_SIZE, axiom_gemm_f32(0, 0, 2, 2, 2, 1, ap, 1, ap, 2, 0, cp, 2));
    try testing.expectEqual(abi.ERR_SIZE, axiom_gemm_f32(0, 0, 2, 2, 2, 1, ap, 2, ap, 2, 0, cp, 1));
    try testing.expectEqual(abi.ERR_SIZE, axiom_gemm_f32(0, 0, 1 << 62, 2, 2, 1, ap, 2, ap, 2, 0, cp, 2));
    try testing.expectEqual(abi.ERR_NULL, axiom_gemm_f32(0, 0, 2, 2, 2, 1, null, 2, ap, 2, 0, cp, 2));
    try testing.expectEqual(abi.ERR_NULL, axiom_gemm_f32(0, 0, 2, 2, 2, 1, ap, 2, ap, 2, 0, null, 2));
    try testing.expectEqual(abi.ERR_SIZE, axiom_gemm_batched_f32(2, 0, 0, 2, 2, 2, 1, ap, 2, 0, ap, 2, 0, 0, cp, 2, 1));
    try testing.expectEqual(abi.ERR_SIZE, axiom_gemm_batched_f32(-1, 0, 0, 2, 2, 2, 1, ap, 2, 0, ap, 2, 0, 0, cp, 2, 4));
    for (c) |x| try testing.expectEqual(@as(f32, 7), x);
    // zero sizes: NULL allowed
    try testing.expectEqual(abi.OK, axiom_gemm_f32(0, 0, 0, 0, 0, 1, null, 1, null, 1, 0, null, 1));
    try testing.expectEqual(abi.OK, axiom_gemm_batched_f32(0, 0, 0, 2, 2, 2, 1, null, 2, 0, null, 2, 0, 0, null, 2, 4));
}

test "gemm small product, beta == 0 ignores NaN, k == 0 gives beta * C" {
    const a = [_]f64{ 1, 2, 3, 4, 5, 6 }; // 2 x 3
    const b = [_]f64{ 1, 0, 0, 1, 1, 1 }; // 3 x 2
    var c = [_]f64{ std.math.nan(f64), 1, 1, 1 };
    try testing.expectEqual(abi.OK, axiom_gemm_f64(0, 0, 2, 2, 3, 2, &a, 3, &b, 2, 0, &c, 2));
    try testing.expectEqualSlices(f64, &.{ 8, 10, 20, 22 }, &c);
    try testing.expectEqual(abi.OK, axiom_gemm_f64(0, 0, 2, 2, 0, 2, null, 1, null, 2, 0.5, &c, 2));
    try testing.expectEqualSlices(f64, &.{ 4, 5, 10, 11 }, &c);
}
