//! Validated convolution dimensions and the image helpers shared by the NHWC convolution
//! kernels (mirrors conv_check, conv_koff, pad_image, image and pixel_rows of csrc/conv.c and
//! csrc/conv_impl.h); no exported symbols.

const std = @import("std");
const abi = @import("abi.zig");
const scratch = @import("gemm_scratch.zig");

/// axiom_conv2d_shape of csrc/axiom_kernels.h: 18 int64_t in header order.
pub const Shape = extern struct {
    n: i64,
    h: i64,
    w: i64,
    c_in: i64,
    c_out: i64,
    k_h: i64,
    k_w: i64,
    out_h: i64,
    out_w: i64,
    stride_h: i64,
    stride_w: i64,
    pad_top: i64,
    pad_bottom: i64,
    pad_left: i64,
    pad_right: i64,
    dilation_h: i64,
    dilation_w: i64,
    groups: i64,
};

/// Validated dimensions of one convolution (pads may be negative for internal calls: crop).
pub const Dims = struct {
    n: usize,
    h: usize,
    w: usize,
    cin: usize,
    cout: usize,
    kh: usize,
    kw: usize,
    ho: usize,
    wo: usize,
    sh: usize,
    sw: usize,
    dh: usize,
    dw: usize,
    groups: usize,
    pt: i64,
    pb: i64,
    pl: i64,
    pr: i64,
    cin_g: usize,
    cout_g: usize,
    k: usize, // kh * kw * cin_g: the GEMM reduction length
    hp: usize, // padded image size
    wp: usize,
    nx: usize, // element counts of x, w, y
    nwt: usize,
    ny: usize,
    padded: bool, // any pad != 0

    /// Row length (in pixels) of the image the taps read: padded or the input itself.
    pub fn rowPixels(d: *const Dims) usize {
        return if (d.padded) d.wp else d.w;
    }

    /// Offsets of the kh * kw * cin taps (all groups: entry g * k + (i * kw + j) * cin_g + c)
    /// in an image of row length rowPixels() and pixel stride cin.
    pub fn koff(d: *const Dims, out: []usize) void {
        const wp = d.rowPixels();
        var t: usize = 0;
        for (0..d.groups) |g| {
            for (0..d.kh) |i| {
                for (0..d.kw) |j| {
                    const base = (i * d.dh * wp + j * d.dw) * d.cin + g * d.cin_g;
                    for (0..d.cin_g) |c| {
                        out[t] = base + c;
                        t += 1;
                    }
                }
            }
        }
    }

    /// out[m] = offset of the top-left tap of output pixel m (oh * wo + ow).
    pub fn pixelOffsets(d: *const Dims, out: []usize) void {
        const wp = d.rowPixels();
        var t: usize = 0;
        for (0..d.ho) |oh| {
            for (0..d.wo) |ow| {
                out[t] = (oh * d.sh * wp + ow * d.sw) * d.cin;
                t += 1;
            }
        }
    }
};

/// Product of the factors with the byte size (elem bytes) checked to fit an i64, or null.
fn mulOk(elem: usize, factors: []const i64) ?i64 {
    var v: i64 = 1;
    for (factors) |f| {
        if (f < 0) return null;
        v = std.math.mul(i64, v, f) catch return null;
    }
    _ = std.math.mul(i64, v, @intCast(elem)) catch return null;
    return v;
}

/// Output extent of one axis, or -1 on overflow.
fn outExtent(in: i64, p0: i64, p1: i64, k: i64, d: i64, s: i64) i64 {
    const a = std.math.add(i64, in, p0) catch return -1;
    const sp = std.math.add(i64, a, p1) catch return -1;
    const m = std.math.mul(i64, d, k - 1) catch return -1;
    const ext = std.math.add(i64, m, 1) catch return -1;
    return if (sp < ext) 0 else @divTrunc(sp - ext, s) + 1;
}

/// Check a public shape (same checks and order as conv_check in csrc/conv.c): the dims, or
/// ERR_NULL (shape NULL) / ERR_SIZE.
pub fn check(shape: ?*const Shape, comptime T: type) union(enum) { ok: Dims, err: c_int } {
    const s = shape orelse return .{ .err = abi.ERR_NULL };
    if (s.n < 0 or s.h < 0 or s.w < 0 or s.c_in < 0 or s.c_out < 0 or s.k_h < 1 or s.k_w < 1 or
        s.stride_h < 1 or s.stride_w < 1 or s.dilation_h < 1 or s.dilation_w < 1 or s.pad_top < 0 or
        s.pad_bottom < 0 or s.pad_left < 0 or s.pad_right < 0 or s.groups < 1 or @rem(s.c_in, s.groups) != 0 or
        @rem(s.c_out, s.groups) != 0 or s.out_h < 0 or s.out_w < 0) return .{ .err = abi.ERR_SIZE };
    if (outExtent(s.h, s.pad_top, s.pad_bottom, s.k_h, s.dilation_h, s.stride_h) != s.out_h or
        outExtent(s.w, s.pad_left, s.pad_right, s.k_w, s.dilation_w, s.stride_w) != s.out_w) return .{ .err = abi.ERR_SIZE };
    const cin_g = @divTrunc(s.c_in, s.groups);
    const hp = s.h + s.pad_top + s.pad_bottom; // no overflow: checked by outExtent
    const wp = s.w + s.pad_left + s.pad_right;
    const e = @sizeOf(T);
    const nx = mulOk(e, &.{ s.n, s.h, s.w, s.c_in }) orelse return .{ .err = abi.ERR_SIZE };
    const nwt = mulOk(e, &.{ s.k_h, s.k_w, cin_g, s.c_out }) orelse return .{ .err = abi.ERR_SIZE };
    const ny = mulOk(e, &.{ s.n, s.out_h, s.out_w, s.c_out }) orelse return .{ .err = abi.ERR_SIZE };
    if (mulOk(@sizeOf(i64), &.{ s.k_h, s.k_w, s.c_in }) == null or mulOk(e, &.{ hp, wp, s.c_in }) == null or
        mulOk(@sizeOf(usize), &.{ s.out_h, s.out_w }) == null) return .{ .err = abi.ERR_SIZE };
    const u = struct {
        fn f(x: i64) usize {
            return @intCast(x);
        }
    }.f;
    return .{ .ok = .{
        .n = u(s.n),
        .h = u(s.h),
        .w = u(s.w),
        .cin = u(s.c_in),
        .cout = u(s.c_out),
        .kh = u(s.k_h),
        .kw = u(s.k_w),
        .ho = u(s.out_h),
        .wo = u(s.out_w),
        .sh = u(s.stride_h),
        .sw = u(s.stride_w),
        .dh = u(s.dilation_h),
        .dw = u(s.dilation_w),
        .groups = u(s.groups),
        .pt = s.pad_top,
        .pb = s.pad_bottom,
        .pl = s.pad_left,
        .pr = s.pad_right,
        .cin_g = u(cin_g),
        .cout_g = u(@divTrunc(s.c_out, s.groups)),
        .k = u(s.k_h * s.k_w * cin_g),
        .hp = u(hp),
        .wp = u(wp),
        .nx = u(nx),
        .nwt = u(nwt),
        .ny = u(ny),
        .padded = s.pad_top != 0 or s.pad_bottom != 0 or s.pad_left != 0 or s.pad_right != 0,
    } };
}

pub fn Images(comptime T: type) type {
    return struct {
        /// dst (hp x wp x cin) = image src (h x w x cin) shifted by (pt, pl) with zeros
        /// around; pads may be negative (crop).
        pub fn pad(d: *const Dims, src: ?[*]const T, dst: [*]T) void {
            const cin = d.cin;
            const wp: i64 = @intCast(d.wp);
            const w: i64 = @intCast(d.w);
            const rowlen = d.wp * cin;
            const j0: i64 = @max(d.pl, 0);
            const j1: i64 = @min(d.pl + w, wp);
            for (0..d.hp) |i| {
                const drow = dst[i * rowlen ..][0..rowlen];
                const si = @as(i64, @intCast(i)) - d.pt;
                if (si < 0 or si >= @as(i64, @intCast(d.h)) or j1 <= j0) {
                    @memset(drow, 0);
                    continue;
                }
                const a: usize = @intCast(j0);
                const b: usize = @intCast(j1);
                @memset(drow[0 .. a * cin], 0);
                const from: usize = (@as(usize, @intCast(si)) * d.w + @as(usize, @intCast(j0 - d.pl))) * cin;
                @memcpy(drow[a * cin .. b * cin], src.?[from..][0 .. (b - a) * cin]);
                @memset(drow[b * cin ..], 0);
            }
        }

        /// The image the taps read: image `img` of x, zero padded into `buf` when needed
        /// (buf: hp * wp * cin elements, only used when padded).
        pub fn image(d: *const Dims, x: ?[*]const T, img: usize, buf: [*]T) [*]const T {
            const src: ?[*]const T = if (x) |p| p + img * d.h * d.w * d.cin else null;
            if (!d.padded) return src orelse @ptrFromInt(64);
            pad(d, src, buf);
            return buf;
        }

        /// Elements of the padding buffer of one image (0 when not padded).
        pub fn padElems(d: *const Dims) usize {
            return if (d.padded) d.hp * d.wp * d.cin else 0;
        }
    };
}

test "check: errors in C order" {
    var s = Shape{ .n = 1, .h = 5, .w = 5, .c_in = 4, .c_out = 6, .k_h = 3, .k_w = 3, .out_h = 3, .out_w = 3, .stride_h = 1, .stride_w = 1, .pad_top = 0, .pad_bottom = 0, .pad_left = 0, .pad_right = 0, .dilation_h = 1, .dilation_w = 1, .groups = 2 };
    try std.testing.expect(check(&s, f32) == .ok);
    try std.testing.expectEqual(abi.ERR_NULL, check(null, f32).err);
    s.groups = 3;
    try std.testing.expectEqual(abi.ERR_SIZE, check(&s, f32).err);
    s.groups = 2;
    s.out_h = 4;
    try std.testing.expectEqual(abi.ERR_SIZE, check(&s, f32).err);
    s.out_h = 3;
    s.pad_left = -1;
    try std.testing.expectEqual(abi.ERR_SIZE, check(&s, f32).err);
    s.pad_left = 0;
    s.n = 1 << 60;
    try std.testing.expectEqual(abi.ERR_SIZE, check(&s, f32).err);
}
