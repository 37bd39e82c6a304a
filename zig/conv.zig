//! NHWC 2-D convolution (float32 / float64): axiom_conv2d_nhwc_f32/_f64,
//! axiom_conv2d_backward_input_nhwc_f32/_f64 and axiom_conv2d_backward_weight_nhwc_f32/_f64
//! (csrc/axiom_kernels.h; mirrors csrc/conv.c and csrc/conv_impl.h). This file holds the
//! exported symbols and the forward pass; the gradients are in conv_backward.zig.
//!
//! Forward paths, picked per shape:
//!   - 1x1, stride 1, no padding: one GEMM (N*H*W x C_in/g) @ (C_in/g x C_out/g) per group;
//!   - depthwise (C_in/g == C_out/g == 1): a direct loop over channels;
//!   - otherwise an implicit-im2col GEMM (gemm.zig "gather" A operand): the image (zero
//!     padded into a scratch buffer when there is padding) is read in place through a row
//!     table (one pointer per output pixel) and an offset table (one per (kh, kw, c) tap),
//!     multiplied by the weights (rows of the weight array) packed as GEMM B panels; the
//!     bias is added in the GEMM epilogue.
//! Threads (abi.parallelFor above gemm.PARALLEL_FLOPS): one image per task when there are
//! at least as many images as threads, else the GEMM splits each image.

const std = @import("std");
const abi = @import("abi.zig");
const gemm = @import("gemm.zig");
const scratch = @import("gemm_scratch.zig");
const dims = @import("conv_dims.zig");
const backward = @import("conv_backward.zig");
const isa = @import("gemm_isa.zig");

const Dims = dims.Dims;
const Shape = dims.Shape;

/// Fused multiply-add where the build has FMA (plain a * b + c otherwise: both IEEE).
pub fn madd(comptime T: type, a: T, b: T, c: T) T {
    return if (isa.compiled_level >= isa.AVX2) @mulAdd(T, a, b, c) else a * b + c;
}

pub fn Forward(comptime T: type) type {
    return struct {
        const Img = dims.Images(T);
        const Err = error{OutOfMemory};

        /// y = conv(x, w) + bias for validated dims (pads may be negative: crop).
        pub fn run(d: *const Dims, x: ?[*]const T, w: [*]const T, bias: ?[*]const T, y: [*]T) Err!void {
            if (d.ny == 0) return;
            const threads = gemm.threadsFor(2.0 * @as(f64, @floatFromInt(d.ny)) * @as(f64, @floatFromInt(d.k)));
            if (d.k == 0) { // no input channel: y = bias
                for (0..d.ny) |i| y[i] = if (bias) |b| b[i % d.cout] else 0;
                return;
            }
            if (d.kh == 1 and d.kw == 1 and d.sh == 1 and d.sw == 1 and !d.padded) {
                // 1x1: the image is already the im2col matrix
                for (0..d.groups) |g| {
                    const A = gemm.ASrc(T){ .a = x.? + g * d.cin_g, .lda = d.cin };
                    try gemm.driver(T, d.n * d.h * d.w, d.cout_g, d.cin_g, A, w + g * d.cout_g, d.cout, false, 1, 0, y + g * d.cout_g, d.cout, if (bias) |b| b + g * d.cout_g else null, threads);
                }
                return;
            }
            const depthwise = d.cin_g == 1 and d.cout_g == 1;
            var ctx = Ctx{ .d = d, .x = x, .w = w, .bias = bias, .y = y };
            if (!depthwise) {
                const kb = scratch.acquire(scratch.bytesOf(usize, d.groups * d.k)) orelse return error.OutOfMemory;
                defer scratch.release(kb);
                ctx.koff = kb.slice(usize, 0, d.groups * d.k).ptr;
                d.koff(kb.slice(usize, 0, d.groups * d.k));
                return ctx.images(threads);
            }
            return ctx.images(threads);
        }

        const Ctx = struct {
            d: *const Dims,
            x: ?[*]const T,
            w: [*]const T,
            bias: ?[*]const T,
            y: [*]T,
            koff: [*]const usize = undefined,
            failed: std.atomic.Value(bool) = std.atomic.Value(bool).init(false),
            // one image split by output rows (depthwise, fewer images than threads)
            img: [*]const T = undefined,
            yimg: [*]T = undefined,

            fn images(ctx: *Ctx, threads: usize) Err!void {
                const d = ctx.d;
                if (threads > 1 and d.n >= threads) {
                    abi.parallelFor(d.n, ctx, imageTask);
                    if (ctx.failed.load(.monotonic)) return error.OutOfMemory;
                    return;
                }
                for (0..d.n) |img| try ctx.image(img, threads);
            }

            fn imageTask(ctx: *Ctx, img: usize) void {
                ctx.image(img, 1) catch ctx.failed.store(true, .monotonic);
            }

            fn image(ctx: *Ctx, img: usize, threads: usize) Err!void {
                const d = ctx.d;
                const m = d.ho * d.wo;
                const depthwise = d.cin_g == 1 and d.cout_g == 1;
                const pad_bytes = scratch.bytesOf(T, Img.padElems(d));
                const rows_bytes = if (depthwise) 0 else scratch.bytesOf(usize, m);
                const buf = scratch.acquire(pad_bytes + rows_bytes) orelse return error.OutOfMemory;
                defer scratch.release(buf);
                const xi = Img.image(d, ctx.x, img, buf.slice(T, 0, Img.padElems(d)).ptr);
                const yi = ctx.y + img * m * d.cout;
                if (depthwise) {
                    if (threads <= 1) return depthwiseRows(d, xi, ctx.w, ctx.bias, yi, 0, d.ho);
                    ctx.img = xi;
                    ctx.yimg = yi;
                    abi.parallelFor(d.ho, ctx, rowTask);
                    return;
                }
                const rows = buf.slice([*]const T, pad_bytes, m);
                const wp = d.rowPixels();
                for (0..d.ho) |oh| {
                    for (0..d.wo) |ow| rows[oh * d.wo + ow] = xi + (oh * d.sh * wp + ow * d.sw) * d.cin;
                }
                for (0..d.groups) |g| {
                    const A = gemm.ASrc(T){ .rows = rows.ptr, .koff = ctx.koff + g * d.k };
                    try gemm.driver(T, m, d.cout_g, d.k, A, ctx.w + g * d.cout_g, d.cout, false, 1, 0, yi + g * d.cout_g, d.cout, if (ctx.bias) |b| b + g * d.cout_g else null, threads);
                }
            }

            fn rowTask(ctx: *Ctx, oh: usize) void {
                depthwiseRows(ctx.d, ctx.img, ctx.w, ctx.bias, ctx.yimg, oh, oh + 1);
            }
        };

        /// Depthwise (one input and one output channel per group): output rows [oh0, oh1) of one image.
        fn depthwiseRows(d: *const Dims, img: [*]const T, w: [*]const T, bias: ?[*]const T, y: [*]T, oh0: usize, oh1: usize) void {
            const CH = 64;
            const C = d.cin;
            const wp = d.rowPixels();
            var acc: [CH]T align(64) = undefined;
            for (oh0..oh1) |oh| {
                for (0..d.wo) |ow| {
                    const base = img + (oh * d.sh * wp + ow * d.sw) * C;
                    const o = y + (oh * d.wo + ow) * C;
                    var c0: usize = 0;
                    while (c0 < C) : (c0 += CH) {
                        const cc = @min(C - c0, CH);
                        @memset(acc[0..cc], 0);
                        for (0..d.kh) |i| {
                            for (0..d.kw) |j| {
                                const xs = base + (i * d.dh * wp + j * d.dw) * C + c0;
                                const ws = w + (i * d.kw + j) * C + c0;
                                for (0..cc) |c| acc[c] = madd(T, xs[c], ws[c], acc[c]);
                            }
                        }
                        for (0..cc) |c| o[c0 + c] = if (bias) |b| acc[c] + b[c0 + c] else acc[c];
                    }
                }
            }
        }
    };
}

// ---- exported symbols -------------------------------------------------------------------

fn forward(comptime T: type, shape: ?*const Shape, x: ?[*]const T, w: ?[*]const T, bias: ?[*]const T, y: ?[*]T) c_int {
    const d = switch (dims.check(shape, T)) {
        .ok => |v| v,
        .err => |e| return e,
    };
    if (abi.nullWithElements(x, d.nx) or abi.nullWithElements(w, d.nwt) or abi.nullWithElements(y, d.ny)) return abi.ERR_NULL;
    if (d.ny == 0) return abi.OK;
    Forward(T).run(&d, x, gemm.orDangling([*]const T, w), bias, y.?) catch return abi.ERR_NOMEM;
    return abi.OK;
}

fn backwardInput(comptime T: type, shape: ?*const Shape, dy: ?[*]const T, w: ?[*]const T, dx: ?[*]T) c_int {
    const d = switch (dims.check(shape, T)) {
        .ok => |v| v,
        .err => |e| return e,
    };
    if (abi.nullWithElements(dy, d.ny) or abi.nullWithElements(w, d.nwt) or abi.nullWithElements(dx, d.nx)) return abi.ERR_NULL;
    if (d.nx == 0) return abi.OK;
    backward.Input(T).run(&d, gemm.orDangling([*]const T, dy), gemm.orDangling([*]const T, w), dx.?) catch return abi.ERR_NOMEM;
    return abi.OK;
}

fn backwardWeight(comptime T: type, shape: ?*const Shape, x: ?[*]const T, dy: ?[*]const T, dw: ?[*]T, dbias: ?[*]T) c_int {
    const d = switch (dims.check(shape, T)) {
        .ok => |v| v,
        .err => |e| return e,
    };
    if (abi.nullWithElements(x, d.nx) or abi.nullWithElements(dy, d.ny) or abi.nullWithElements(dw, d.nwt)) return abi.ERR_NULL;
    backward.Weight(T).run(&d, x, gemm.orDangling([*]const T, dy), dw, dbias) catch return abi.ERR_NOMEM;
    return abi.OK;
}

export fn axiom_conv2d_nhwc_f32(shape: ?*const Shape, x: ?[*]const f32, w: ?[*]const f32, bias: ?[*]const f32, y: ?[*]f32) c_int {
    return forward(f32, shape, x, w, bias, y);
}

export fn axiom_conv2d_nhwc_f64(shape: ?*const Shape, x: ?[*]const f64, w: ?[*]const f64, bias: ?[*]const f64, y: ?[*]f64) c_int {
    return forward(f64, shape, x, w, bias, y);
}

export fn axiom_conv2d_backward_input_nhwc_f32(shape: ?*const Shape, dy: ?[*]const f32, w: ?[*]const f32, dx: ?[*]f32) c_int {
    return backwardInput(f32, shape, dy, w, dx);
}

export fn axiom_conv2d_backward_input_nhwc_f64(shape: ?*const Shape, dy: ?[*]const f64, w: ?[*]const f64, dx: ?[*]f64) c_int {
    return backwardInput(f64, shape, dy, w, dx);
}

export fn axiom_conv2d_backward_weight_nhwc_f32(shape: ?*const Shape, x: ?[*]const f32, dy: ?[*]const f32, dw: ?[*]f32, dbias: ?[*]f32) c_int {
    return backwardWeight(f32, shape, x, dy, dw, dbias);
}

export fn axiom_conv2d_backward_weight_nhwc_f64(shape: ?*const Shape, x: ?[*]const f64, dy: ?[*]const f64, dw: ?[*]f64, dbias: ?[*]f64) c_int {
    return backwardWeight(f64, shape, x, dy, dw, dbias);
}

test "conv argument checks" {
    var s = Shape{ .n = 1, .h = 3, .w = 3, .c_in = 1, .c_out = 1, .k_h = 3, .k_w = 3, .out_h = 1, .out_w = 1, .stride_h = 1, .stride_w = 1, .pad_top = 0, .pad_bottom = 0, .pad_left = 0, .pad_right = 0, .dilation_h = 1, .dilation_w = 1, .groups = 1 };
    var x: [9]f32 = @splat(1);
    var y: [1]f32 = .{7};
    try std.testing.expectEqual(abi.ERR_NULL, axiom_conv2d_nhwc_f32(null, &x, &x, null, &y));
    try std.testing.expectEqual(abi.ERR_NULL, axiom_conv2d_nhwc_f32(&s, null, &x, null, &y));
    s.stride_h = 0;
    try std.testing.expectEqual(abi.ERR_SIZE, axiom_conv2d_nhwc_f32(&s, &x, &x, null, &y));
    try std.testing.expectEqual(@as(f32, 7), y[0]);
    s.stride_h = 1;
    try std.testing.expectEqual(abi.OK, axiom_conv2d_nhwc_f32(&s, &x, &x, null, &y));
    try std.testing.expectEqual(@as(f32, 9), y[0]);
}
