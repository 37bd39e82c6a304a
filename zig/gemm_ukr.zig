//! GEMM micro-kernels and the macro kernel (mirrors csrc/gemm_ukr_impl.h and the macro
//! kernel of csrc/gemm_impl.h); no exported symbols, used by gemm.zig.
//!
//! One generic kernel, instantiated per (element type, instruction-set level, A mode, row
//! count): an R x NR tile of C (NR = NV vectors of VL lanes) lives in R * NV vector registers
//! for the whole k loop; every step broadcasts one element of A per row and multiplies it
//! with NV vectors of the packed B panel. Every product is accumulated (zeros included), so
//! NaN / Inf propagate like a plain dot product. The epilogue writes
//! C = alpha * acc (+ beta * C when use_beta) (+ bias[j]); with use_beta false C is not read.
//!
//! A modes (element (r, p) of the A tile):
//!   packed:  base[p * MR + r]        (an MR-tall packed panel, transposed A)
//!   strided: base[r * lda + p]       (A read in place, row-major)
//!   gather:  rows[r][koff[p]]        (implicit im2col of the convolutions, see gemm.zig)

const std = @import("std");
const isa = @import("gemm_isa.zig");

/// Tile and cache blocking of one instruction-set level (same values as csrc/gemm.c).
pub const Config = struct {
    vl: comptime_int, // lanes per vector
    nv: comptime_int, // vectors per tile row: NR = nv * vl
    mr: comptime_int, // rows of the packed kernel
    mrg: comptime_int, // rows of the strided / gather kernels
    fma: bool, // fused multiply-add (false: the generic level, plain mul + add)
    kc: usize,
    mc: usize, // multiple of mr and mrg
    nc: usize,
};

pub fn config(comptime T: type, comptime level: u8) Config {
    const f32_ = T == f32;
    return switch (level) {
        // portable: SSE-width vectors, no FMA (4 x 8 float32, 4 x 4 float64 like C's generic kernels)
        isa.GENERIC => .{ .vl = 16 / @sizeOf(T), .nv = 2, .mr = 4, .mrg = 4, .fma = false, .kc = 256, .mc = 128, .nc = 4096 },
        // AVX2 + FMA: 6 x 16 float32 / 6 x 8 float64, 12 ymm accumulators
        isa.AVX2 => .{ .vl = 32 / @sizeOf(T), .nv = 2, .mr = 6, .mrg = 6, .fma = true, .kc = 256, .mc = if (f32_) 144 else 96, .nc = 4096 },
        // AVX-512: 12 x 32 packed (24 zmm accumulators), 8 x 32 strided / gather
        else => .{ .vl = 64 / @sizeOf(T), .nv = 2, .mr = 12, .mrg = 8, .fma = true, .kc = 256, .mc = if (f32_) 144 else 96, .nc = 4096 },
    };
}

pub const AMode = enum { packed_a, strided, gather };

/// The A operand of one tile or block (fields used depend on the mode).
pub fn ARef(comptime T: type) type {
    return struct {
        base: [*]const T = undefined, // packed / strided
        lda: usize = 0, // strided
        rows: [*]const [*]const T = undefined, // gather
        koff: [*]const usize = undefined, // gather
    };
}

/// Epilogue: C = alpha * acc (+ beta * C when use_beta) (+ bias[j] when bias != null).
pub fn Epi(comptime T: type) type {
    return struct { alpha: T, beta: T, use_beta: bool, bias: ?[*]const T };
}

pub fn Kernels(comptime T: type, comptime cfg: Config) type {
    return struct {
        const VL = cfg.vl;
        const NV = cfg.nv;
        const V = @Vector(VL, T);
        pub const NR: usize = NV * VL;
        pub const MR: usize = cfg.mr;
        pub const MRG: usize = cfg.mrg;
        const A = ARef(T);
        const E = Epi(T);

        inline fn madd(a: V, b: V, c: V) V {
            return if (cfg.fma) @mulAdd(V, a, b, c) else a * b + c;
        }

        /// C[0..R, 0..NR] = epilogue(A tile @ B panel), B panel b[p * NR + j].
        fn ukr(comptime mode: AMode, comptime R: usize, kc: usize, a: A, b_in: [*]const T, c: [*]T, ldc: usize, e: *const E) void {
            var acc: [R][NV]V = undefined;
            inline for (0..R) |r| {
                inline for (0..NV) |v| acc[r][v] = @splat(0);
                @prefetch(c + r * ldc, .{ .rw = .write });
                @prefetch(c + r * ldc + NR - 1, .{ .rw = .write });
            }
            var rp: [R][*]const T = undefined;
            inline for (0..R) |r| rp[r] = switch (mode) {
                .strided => a.base + r * a.lda,
                .gather => a.rows[r],
                .packed_a => a.base,
            };
            var b = b_in;
            var ap = a.base;
            for (0..kc) |p| {
                if (mode != .gather) @prefetch(b + 8 * NR, .{});
                var bv: [NV]V = undefined;
                inline for (0..NV) |v| bv[v] = b[v * VL ..][0..VL].*;
                const o = if (mode == .gather) a.koff[p] else p;
                inline for (0..R) |r| {
                    const s = switch (mode) {
                        .packed_a => ap[r],
                        .strided => rp[r][p],
                        .gather => rp[r][o],
                    };
                    const av: V = @splat(s);
                    inline for (0..NV) |v| acc[r][v] = madd(av, bv[v], acc[r][v]);
                }
                b += NR;
                if (mode == .packed_a) ap += MR;
            }
            const va: V = @splat(e.alpha);
            const vb: V = @splat(e.beta);
            const scale = e.alpha != 1;
            inline for (0..R) |r| {
                inline for (0..NV) |v| {
                    var x = acc[r][v];
                    const cp = c + r * ldc + v * VL;
                    if (scale) x = x * va;
                    if (e.use_beta) x = madd(vb, cp[0..VL].*, x);
                    if (e.bias) |bias| x = x + @as(V, bias[v * VL ..][0..VL].*);
                    cp[0..VL].* = x;
                }
            }
        }

        fn ukrRows(comptime mode: AMode, rows: usize, kc: usize, a: A, b: [*]const T, c: [*]T, ldc: usize, e: *const E) void {
            const mr = if (mode == .packed_a) MR else MRG;
            switch (rows) {
                inline 1...mr => |R| ukr(mode, R, kc, a, b, c, ldc, e),
                else => unreachable,
            }
        }

        /// Scalar epilogue of an edge tile computed into tmp (row stride NR).
        fn edgeStore(tmp: []const T, c: [*]T, ldc: usize, rows: usize, cols: usize, e: *const E) void {
            for (0..rows) |r| {
                for (0..cols) |j| {
                    var x = tmp[r * NR + j];
                    if (e.alpha != 1) x = x * e.alpha;
                    if (e.use_beta) x = e.beta * c[r * ldc + j] + x;
                    if (e.bias) |bias| x = x + bias[j];
                    c[r * ldc + j] = x;
                }
            }
        }

        /// C[0..mc, 0..nc] = epilogue(A block @ B block); B block = NR-wide panels of kc rows.
        /// a: the block's A (packed: MR-row panels of kc; strided: base + lda; gather: rows + koff).
        pub fn macro(comptime mode: AMode, mc: usize, nc: usize, kc: usize, a: A, bp: [*]const T, c: [*]T, ldc: usize, epi: *const E) void {
            const mr = if (mode == .packed_a) MR else MRG;
            var tmp: [MR * NR]T align(64) = undefined;
            const plain = E{ .alpha = 1, .beta = 0, .use_beta = false, .bias = null };
            // gathered A (convolutions): rows outer, so a tile's receptive field stays in L1 across the B panels
            const rows_outer = mode == .gather;
            const n_ir = (mc + mr - 1) / mr;
            const n_jr = (nc + NR - 1) / NR;
            for (0..n_ir * n_jr) |t| {
                const ir = (if (rows_outer) t / n_jr else t % n_ir) * mr;
                const jr = (if (rows_outer) t % n_jr else t / n_ir) * NR;
                const ncur = @min(nc - jr, NR);
                const mcur = @min(mc - ir, mr);
                var e = epi.*;
                if (e.bias) |bias| e.bias = bias + jr;
                var at = a;
                switch (mode) {
                    .packed_a => at.base = a.base + ir * kc,
                    .strided => at.base = a.base + ir * a.lda,
                    .gather => at.rows = a.rows + ir,
                }
                const ct = c + ir * ldc + jr;
                if (ncur < NR) {
                    ukrRows(mode, mcur, kc, at, bp + jr * kc, &tmp, NR, &plain);
                    edgeStore(&tmp, ct, ldc, mcur, ncur, &e);
                } else {
                    ukrRows(mode, mcur, kc, at, bp + jr * kc, ct, ldc, &e);
                }
            }
        }
    };
}
