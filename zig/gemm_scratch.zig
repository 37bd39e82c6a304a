//! Scratch memory of the GEMM / conv kernels (the role of axiom_scratch in csrc/gemm.c); no
//! exported symbols.
//!
//! A few process-wide, grow-only, 64-byte aligned buffers, each taken by one caller at a time
//! through an atomic flag: repeated calls reuse memory that is already mapped (no malloc +
//! page faults per call, which cost ~10% on small GEMMs). When every cached buffer is in use
//! (concurrent callers, nested use) a fresh allocation is made and freed on release. C keeps
//! thread-local buffers instead; worker threads here are short-lived (abi.parallelFor), so
//! buffers are taken by the calling thread and handed to the workers.

const std = @import("std");

const SLOTS = 16;
const alignment = std.mem.Alignment.@"64";
const Mem = []align(64) u8;

var busy: [SLOTS]std.atomic.Value(bool) = @splat(std.atomic.Value(bool).init(false));
var cache: [SLOTS]Mem = @splat(&.{}); // only touched by the slot's holder
var capacity: [SLOTS]std.atomic.Value(usize) = @splat(std.atomic.Value(usize).init(0)); // cache[i].len, readable by all

const alloc = std.heap.c_allocator;

/// A buffer of at least the requested size; give it back with release().
pub const Buf = struct {
    mem: Mem,
    slot: ?usize,

    /// The first `n` elements of the buffer as T (n * @sizeOf(T) <= the requested bytes).
    pub fn slice(self: Buf, comptime T: type, offset_bytes: usize, n: usize) []T {
        const p: [*]T = @ptrCast(@alignCast(self.mem.ptr + offset_bytes));
        return p[0..n];
    }
};

fn take(i: usize) bool {
    return busy[i].cmpxchgStrong(false, true, .acquire, .monotonic) == null;
}

/// A buffer of at least `bytes` bytes, or null when out of memory.
pub fn acquire(bytes: usize) ?Buf {
    // the smallest free cached buffer that is large enough (best fit: a small request does
    // not take the large buffer that the next request needs)
    var tries: usize = 0;
    while (tries < SLOTS) : (tries += 1) {
        var best: ?usize = null;
        for (0..SLOTS) |i| {
            const cap = capacity[i].load(.monotonic);
            if (cap >= @max(bytes, 1) and !busy[i].load(.monotonic) and (best == null or cap < capacity[best.?].load(.monotonic))) best = i;
        }
        const i = best orelse break;
        if (take(i)) {
            if (cache[i].len >= bytes) return .{ .mem = cache[i], .slot = i };
            busy[i].store(false, .release);
        }
    }
    // grow a free slot (some head room for the next, slightly larger call)
    if (bytes <= std.math.maxInt(usize) / 2 - 4096) {
        for (0..SLOTS) |i| {
            if (!busy[i].load(.monotonic) and take(i)) {
                if (cache[i].len > 0) alloc.free(cache[i]);
                cache[i] = &.{};
                capacity[i].store(0, .monotonic);
                const size = std.mem.alignForward(usize, bytes + bytes / 4 + 64, 4096);
                const m = alloc.alignedAlloc(u8, alignment, size) catch {
                    busy[i].store(false, .release);
                    return null;
                };
                cache[i] = m;
                capacity[i].store(m.len, .monotonic);
                return .{ .mem = m, .slot = i };
            }
        }
    }
    const m = alloc.alignedAlloc(u8, alignment, @max(bytes, 64)) catch return null;
    return .{ .mem = m, .slot = null };
}

pub fn release(b: Buf) void {
    if (b.slot) |i| {
        busy[i].store(false, .release);
    } else {
        alloc.free(b.mem);
    }
}

/// Bytes of n elements of T rounded up to 64 (so consecutive parts of one buffer stay aligned).
pub fn bytesOf(comptime T: type, n: usize) usize {
    return std.mem.alignForward(usize, n * @sizeOf(T), 64);
}

test "acquire and release reuse a slot" {
    const a = acquire(1000).?;
    const p = a.mem.ptr;
    release(a);
    const b = acquire(900).?;
    try std.testing.expectEqual(p, b.mem.ptr);
    const c = acquire(900).?; // the first one is busy: another buffer
    try std.testing.expect(c.mem.ptr != b.mem.ptr);
    release(b);
    release(c);
}
