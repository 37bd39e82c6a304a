//! Gradients of the NHWC convolution (mirrors the backward part of csrc/conv_impl.h); the
//! exported symbols are in conv.zig.
//!
//! Weight gradient: 1x1 / stride 1 / unpadded is one GEMM x^T @ dy per group; depthwise a
//! direct loop; otherwise the gather GEMM with the roles swapped (rows = taps, reduction
//! over output pixels). With more images than threads, images are split across threads,
//! one partial dw each, summed at the end.
//! Input gradient: for stride 1 and C_in/g >= 32 (or depthwise) a forward convolution of dy
//! with the flipped, transposed weights; otherwise dy @ W^T per image (GEMM) followed by a
//! col2im scatter-add (narrow groups would waste the vector width as output channels of the
//! transposed convolution). Images are split across threads above the work threshold.

const std = @import("std");
const abi = @import("abi.zig");
const gemm = @import("gemm.zig");
const scratch = @import("gemm_scratch.zig");
const dims = @import("conv_dims.zig");
const conv = @import("conv.zig");

const Dims = dims.Dims;
const Err = error{OutOfMemory};

fn flops(d: *const Dims) f64 {
    return 2.0 * @as(f64, @floatFromInt(d.ny)) * @as(f64, @floatFromInt(d.k));
}

pub fn Weight(comptime T: type) type {
    return struct {
        const Img = dims.Images(T);

        pub fn run(d: *const Dims, x: ?[*]const T, dy: [*]const T, dw: ?[*]T, dbias: ?[*]T) Err!void {
            if (dbias) |db| {
                if (d.cout > 0) biasGrad(d, dy, db);
            }
            if (d.nwt == 0) return;
            const out = dw.?;
            if (d.ny == 0) {
                @memset(out[0..d.nwt], 0);
                return;
            }
            const threads = gemm.threadsFor(flops(d));
            if (d.kh == 1 and d.kw == 1 and d.sh == 1 and d.sw == 1 and !d.padded) {
                // 1x1: dw_g = x_g^T @ dy_g over all pixels of all images
                for (0..d.groups) |g| {
                    const A = gemm.ASrc(T){ .a = x.? + g * d.cin_g, .lda = d.cin, .trans = true };
                    try gemm.driver(T, d.cin_g, d.cout_g, d.n * d.h * d.w, A, dy + g * d.cout_g, d.cout, false, 1, 0, out + g * d.cout_g, d.cout, null, threads);
                }
                return;
            }
            const kb = scratch.acquire(scratch.bytesOf(usize, d.groups * d.k)) orelse return error.OutOfMemory;
            defer scratch.release(kb);
            const koff = kb.slice(usize, 0, d.groups * d.k);
            d.koff(koff);
            var ctx = Ctx{ .d = d, .x = x, .dy = dy, .koff = koff.ptr };
            if (threads > 1 and d.n >= threads) {
                // images split across threads, one partial dw each, summed at the end
                const part = std.heap.c_allocator.alloc(T, threads * d.nwt) catch return error.OutOfMemory;
                defer std.heap.c_allocator.free(part);
                ctx.part = part.ptr;
                ctx.nparts = threads;
                abi.parallelFor(threads, &ctx, Ctx.partTask);
                if (ctx.failed.load(.monotonic)) return error.OutOfMemory;
                for (0..d.nwt) |e| {
                    var s = part[e];
                    for (1..threads) |u| s += part[u * d.nwt + e];
                    out[e] = s;
                }
                return;
            }
            try ctx.images(out, 0, d.n, threads);
        }

        /// dbias[c] = sum of dy over n, out_h, out_w, accumulated in float64 like C (same
        /// order: rows one after the other), CH channels at a time in registers.
        fn biasGrad(d: *const Dims, dy: [*]const T, dbias: [*]T) void {
            const CH = 16;
            const rows = d.ny / d.cout;
            var c0: usize = 0;
            while (c0 < d.cout) : (c0 += CH) {
                const cc = @min(d.cout - c0, CH);
                var acc: [CH]f64 = @splat(0);
                if (cc == CH) {
                    var v: @Vector(CH, f64) = @splat(0);
                    for (0..rows) |r| {
                        const g: @Vector(CH, T) = dy[r * d.cout + c0 ..][0..CH].*;
                        v += @as(@Vector(CH, f64), @floatCast(g));
                    }
                    acc = v;
                } else {
                    for (0..rows) |r| {
                        for (0..cc) |c| acc[c] += dy[r * d.cout + c0 + c];
                    }
                }
                for (0..cc) |c| dbias[c0 + c] = @floatCast(acc[c]);
            }
        }

        const Ctx = struct {
            d: *const Dims,
            x: ?[*]const T,
            dy: [*]const T,
            koff: [*]const usize,
            part: [*]T = undefined,
            nparts: usize = 0,
            failed: std.atomic.Value(bool) = std.atomic.Value(bool).init(false),

            fn partTask(ctx: *Ctx, t: usize) void {
                const d = ctx.d;
                const r0 = d.n * t / ctx.nparts;
                const r1 = d.n * (t + 1) / ctx.nparts;
                const mine = ctx.part + t * d.nwt;
                if (r1 == r0) {
                    @memset(mine[0..d.nwt], 0);
                    return;
                }
                ctx.images(mine, r0, r1, 1) catch ctx.failed.store(true, .monotonic);
            }

            /// dw = gradient contribution of images [r0, r1).
            fn images(ctx: *Ctx, dw: [*]T, r0: usize, r1: usize, threads: usize) Err!void {
                const d = ctx.d;
                const m = d.ho * d.wo;
                const ysz = m * d.cout;
                const pad_bytes = scratch.bytesOf(T, Img.padElems(d));
                const depthwise = d.cin_g == 1 and d.cout_g == 1;
                const extra = if (depthwise) 0 else scratch.bytesOf(usize, m) + scratch.bytesOf([*]const T, d.k);
                const buf = scratch.acquire(pad_bytes + extra) orelse return error.OutOfMemory;
                defer scratch.release(buf);
                const padbuf = buf.slice(T, 0, Img.padElems(d)).ptr;
                if (depthwise) {
                    @memset(dw[0..d.nwt], 0);
                    for (r0..r1) |img| depthwiseImage(d, Img.image(d, ctx.x, img, padbuf), ctx.dy + img * ysz, dw);
                    return;
                }
                const pix = buf.slice(usize, pad_bytes, m);
                const taps = buf.slice([*]const T, pad_bytes + scratch.bytesOf(usize, m), d.k);
                d.pixelOffsets(pix);
                for (r0..r1) |img| {
                    const xi = Img.image(d, ctx.x, img, padbuf);
                    const beta: T = if (img > r0) 1 else 0;
                    for (0..d.groups) |g| {
                        for (0..d.k) |p| taps[p] = xi + ctx.koff[g * d.k + p];
                        const A = gemm.ASrc(T){ .rows = taps.ptr, .koff = pix.ptr };
                        try gemm.driver(T, d.k, d.cout_g, m, A, ctx.dy + img * ysz + g * d.cout_g, d.cout, false, 1, beta, dw + g * d.cout_g, d.cout, null, threads);
                    }
                }
            }
        };

        fn depthwiseImage(d: *const Dims, xi: [*]const T, g: [*]const T, dw: [*]T) void {
            const C = d.cin;
            const wp = d.rowPixels();
            for (0..d.ho) |oh| {
                for (0..d.wo) |ow| {
                    const gp = g + (oh * d.wo + ow) * C;
                    const base = xi + (oh * d.sh * wp + ow * d.sw) * C;
                    for (0..d.kh) |i| {
                        for (0..d.kw) |j| {
                            const xs = base + (i * d.dh * wp + j * d.dw) * C;
                            const t = dw + (i * d.kw + j) * C;
                            for (0..C) |c| t[c] = conv.madd(T, xs[c], gp[c], t[c]);
                        }
                    }
                }
            }
        }
    };
}

pub fn Input(comptime T: type) type {
    return struct {
        pub fn run(d: *const Dims, dy: [*]const T, w: [*]const T, dx: [*]T) Err!void {
            if (d.ny == 0 or d.k == 0 or d.cout_g == 0) {
                @memset(dx[0..d.nx], 0);
                return;
            }
            // stride 1: a forward convolution, unless it would have too few output channels to fill the vector tiles
            if (d.sh == 1 and d.sw == 1 and (d.cin_g >= 32 or (d.cin_g == 1 and d.cout_g == 1))) return stride1(d, dy, w, dx);
            const kb = scratch.acquire(scratch.bytesOf(usize, d.groups * d.k)) orelse return error.OutOfMemory;
            defer scratch.release(kb);
            const koff = kb.slice(usize, 0, d.groups * d.k);
            d.koff(koff);
            var ctx = Ctx{ .d = d, .dy = dy, .w = w, .dx = dx, .koff = koff.ptr };
            if (gemm.threadsFor(flops(d)) <= 1) {
                for (0..d.n) |img| try ctx.image(img);
                return;
            }
            abi.parallelFor(d.n, &ctx, Ctx.task);
            if (ctx.failed.load(.monotonic)) return error.OutOfMemory;
        }

        /// Stride 1: dx = conv(dy, flipped transposed w) with padding dilation * (k - 1) - pad.
        fn stride1(d: *const Dims, dy: [*]const T, w: [*]const T, dx: [*]T) Err!void {
            var e = d.*;
            e.h = d.ho;
            e.w = d.wo;
            e.cin = d.cout;
            e.cout = d.cin;
            e.ho = d.h;
            e.wo = d.w;
            const eh: i64 = @intCast(d.dh * (d.kh - 1));
            const ew: i64 = @intCast(d.dw * (d.kw - 1));
            e.pt = eh - d.pt;
            e.pb = eh - d.pb;
            e.pl = ew - d.pl;
            e.pr = ew - d.pr;
            e.cin_g = d.cout_g;
            e.cout_g = d.cin_g;
            e.k = d.kh * d.kw * d.cout_g;
            e.hp = @intCast(@as(i64, @intCast(e.h)) + e.pt + e.pb);
            e.wp = @intCast(@as(i64, @intCast(e.w)) + e.pl + e.pr);
            e.nx = d.ny;
            e.ny = d.nx;
            e.padded = e.pt != 0 or e.pb != 0 or e.pl != 0 or e.pr != 0;
            const wb = scratch.acquire(scratch.bytesOf(T, d.nwt)) orelse return error.OutOfMemory;
            defer scratch.release(wb);
            const wt = wb.slice(T, 0, d.nwt);
            for (0..d.kh) |i| {
                for (0..d.kw) |j| {
                    const src = w + ((d.kh - 1 - i) * d.kw + (d.kw - 1 - j)) * d.cin_g * d.cout;
                    const dst = wt[(i * d.kw + j) * d.cout_g * d.cin ..];
                    for (0..d.groups) |g| {
                        for (0..d.cin_g) |ci| {
                            const s = src + ci * d.cout + g * d.cout_g;
                            for (0..d.cout_g) |co| dst[co * d.cin + g * d.cin_g + ci] = s[co];
                        }
                    }
                }
            }
            return conv.Forward(T).run(&e, dy, wt.ptr, null, dx);
        }

        const Ctx = struct {
            d: *const Dims,
            dy: [*]const T,
            w: [*]const T,
            dx: [*]T,
            koff: [*]const usize,
            failed: std.atomic.Value(bool) = std.atomic.Value(bool).init(false),

            fn task(ctx: *Ctx, img: usize) void {
                ctx.image(img) catch ctx.failed.store(true, .monotonic);
            }

            /// Per image: cols = dy_img @ W_g^T, then scatter-add (col2im) into the (padded) image.
            fn image(ctx: *Ctx, img: usize) Err!void {
                const d = ctx.d;
                const m = d.ho * d.wo;
                const cin = d.cin;
                const k = d.k;
                const xsz = d.h * d.w * cin;
                const pad_elems = if (d.padded) d.hp * d.wp * cin else 0;
                var chunk = (262144 / @sizeOf(T)) / k;
                chunk = @min(@max(chunk, 1), m);
                const pad_bytes = scratch.bytesOf(T, pad_elems);
                const pix_bytes = scratch.bytesOf(usize, m);
                const buf = scratch.acquire(pad_bytes + pix_bytes + scratch.bytesOf(T, chunk * k)) orelse return error.OutOfMemory;
                defer scratch.release(buf);
                const target: []T = if (d.padded) buf.slice(T, 0, pad_elems) else ctx.dx[img * xsz ..][0..xsz];
                @memset(target, 0);
                const pix = buf.slice(usize, pad_bytes, m);
                const cols = buf.slice(T, pad_bytes + pix_bytes, chunk * k);
                d.pixelOffsets(pix);
                const dyi = ctx.dy + img * m * d.cout;
                for (0..d.groups) |g| {
                    const ko = ctx.koff + g * k;
                    var m0: usize = 0;
                    while (m0 < m) : (m0 += chunk) {
                        const mc = @min(m - m0, chunk);
                        const A = gemm.ASrc(T){ .a = dyi + m0 * d.cout + g * d.cout_g, .lda = d.cout };
                        try gemm.driver(T, mc, k, d.cout_g, A, ctx.w + g * d.cout_g, d.cout, true, 1, 0, cols.ptr, k, null, 1);
                        for (0..mc) |r| {
                            const base = target.ptr + pix[m0 + r];
                            const src = cols.ptr + r * k;
                            for (0..d.kh * d.kw) |t| {
                                const dst = base + ko[t * d.cin_g];
                                const s = src + t * d.cin_g;
                                for (0..d.cin_g) |c| dst[c] += s[c];
                            }
                        }
                    }
                }
                if (d.padded) { // crop
                    const out = ctx.dx + img * xsz;
                    const pt: usize = @intCast(d.pt);
                    const pl: usize = @intCast(d.pl);
                    for (0..d.h) |i| {
                        @memcpy(out[i * d.w * cin ..][0 .. d.w * cin], target[((i + pt) * d.wp + pl) * cin ..][0 .. d.w * cin]);
                    }
                }
            }
        };
    };
}
