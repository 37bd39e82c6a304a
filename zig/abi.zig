//! Constants of the kernel ABI (csrc/axiom_kernels.h) and argument checks shared by kernels.

const std = @import("std");

/// AXIOM_ABI_VERSION.
pub const ABI_VERSION: c_int = 1;
/// Success.
pub const OK: c_int = 0;
/// A required pointer is NULL (its array has elements).
pub const ERR_NULL: c_int = 1;
/// A negative dimension, or an element count / byte size that overflows.
pub const ERR_SIZE: c_int = 2;

/// Element count of a rows x cols array of T, or null when negative or too large
/// (count * @sizeOf(T) must fit in an i64 and a usize).
pub fn count(comptime T: type, rows: i64, cols: i64) ?usize {
    if (rows < 0 or cols < 0) return null;
    const total = @mulWithOverflow(rows, cols);
    if (total[1] != 0) return null;
    const bytes = @mulWithOverflow(total[0], @as(i64, @sizeOf(T)));
    if (bytes[1] != 0) return null;
    if (bytes[0] > @as(i64, @intCast(@min(@as(u64, std.math.maxInt(usize)), @as(u64, std.math.maxInt(i64)))))) return null;
    return @intCast(total[0]);
}
