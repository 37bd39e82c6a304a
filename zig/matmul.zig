//! axiom_matmul_f32 / axiom_matmul_f64 (csrc/axiom_kernels.h; mirrors csrc/matmul.c):
//! c = a @ b for contiguous row-major operands, computed by the packed GEMM of gemm.zig
//! (micro-kernels of the active instruction-set level, threads above a work threshold).

const abi = @import("abi.zig");
const gemm = @import("gemm.zig");

export fn axiom_matmul_f32(a: ?[*]const f32, b: ?[*]const f32, c: ?[*]f32, m: i64, k: i64, n: i64) c_int {
    return matmul(f32, a, b, c, m, k, n);
}

export fn axiom_matmul_f64(a: ?[*]const f64, b: ?[*]const f64, c: ?[*]f64, m: i64, k: i64, n: i64) c_int {
    return matmul(f64, a, b, c, m, k, n);
}

fn matmul(comptime T: type, a: ?[*]const T, b: ?[*]const T, c: ?[*]T, m: i64, k: i64, n: i64) c_int {
    const na = abi.count(T, m, k) orelse return abi.ERR_SIZE;
    const nb = abi.count(T, k, n) orelse return abi.ERR_SIZE;
    const nc = abi.count(T, m, n) orelse return abi.ERR_SIZE;
    if (abi.nullWithElements(a, na) or abi.nullWithElements(b, nb) or abi.nullWithElements(c, nc)) return abi.ERR_NULL;
    if (nc == 0) return abi.OK;
    const ku: usize = @intCast(k);
    const A = gemm.ASrc(T){ .a = gemm.orDangling([*]const T, a), .lda = @max(ku, 1) };
    const flops = 2.0 * @as(f64, @floatFromInt(m)) * @as(f64, @floatFromInt(n)) * @as(f64, @floatFromInt(k));
    const nu: usize = @intCast(n);
    gemm.driver(T, @intCast(m), nu, ku, A, gemm.orDangling([*]const T, b), nu, false, 1, 0, c.?, nu, null, gemm.threadsFor(flops)) catch return abi.ERR_NOMEM;
    return abi.OK;
}
