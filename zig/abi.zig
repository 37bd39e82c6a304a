//! Constants of the kernel ABI (csrc/axiom_kernels.h) and helpers shared by kernels: size
//! checks and the thread count.

const std = @import("std");

/// AXIOM_ABI_VERSION.
pub const ABI_VERSION: c_int = 2;
/// Success.
pub const OK: c_int = 0;
/// A required pointer is NULL (its array has elements).
pub const ERR_NULL: c_int = 1;
/// A negative dimension, or an element count / byte size that overflows.
pub const ERR_SIZE: c_int = 2;
/// Scratch memory or a worker thread could not be allocated.
pub const ERR_NOMEM: c_int = 3;

const max_bytes: i64 = @intCast(@min(@as(u64, std.math.maxInt(usize)), @as(u64, std.math.maxInt(i64))));

/// Element count of a rows x cols array of T, or null when negative or too large
/// (count * @sizeOf(T) must fit in an i64 and a usize).
pub fn count(comptime T: type, rows: i64, cols: i64) ?usize {
    return countDims(T, &.{ rows, cols });
}

/// Element count of an array of T with these dimensions, or null when a dimension is
/// negative or the byte size overflows.
pub fn countDims(comptime T: type, dims: []const i64) ?usize {
    var total: i64 = 1;
    for (dims) |d| {
        if (d < 0) return null;
        const r = @mulWithOverflow(total, d);
        if (r[1] != 0) return null;
        total = r[0];
    }
    const bytes = @mulWithOverflow(total, @as(i64, @sizeOf(T)));
    if (bytes[1] != 0 or bytes[0] > max_bytes) return null;
    return @intCast(total);
}

/// True when `ptr` is null although its array has `n > 0` elements.
pub fn nullWithElements(ptr: anytype, n: usize) bool {
    return n > 0 and ptr == null;
}

var threads_cache = std.atomic.Value(usize).init(0);

fn envThreads(name: [*:0]const u8) ?usize {
    const value = std.c.getenv(name) orelse return null;
    const text = std.mem.sliceTo(value, 0);
    const first = std.mem.sliceTo(text, ',');
    const n = std.fmt.parseInt(usize, std.mem.trim(u8, first, " "), 10) catch return null;
    return if (n > 0) n else null;
}

/// Worker threads the kernels may use: AXIOM_NUM_THREADS, else OMP_NUM_THREADS (one setting
/// limits C, Rust and Zig alike), else the CPU count; read once per process.
pub fn numThreads() usize {
    const cached = threads_cache.load(.monotonic);
    if (cached != 0) return cached;
    const n = envThreads("AXIOM_NUM_THREADS") orelse envThreads("OMP_NUM_THREADS") orelse
        (std.Thread.getCpuCount() catch 1);
    threads_cache.store(@max(n, 1), .monotonic);
    return @max(n, 1);
}

/// Run `body(context, task)` for every task in 0..tasks on up to numThreads() threads (the
/// calling thread takes part; tasks are handed out one at a time through an atomic counter).
/// Runs inline when one thread is allowed or tasks <= 1; a worker thread that cannot be
/// spawned leaves its tasks to the others, so the result never depends on how many ran.
/// Tasks must write disjoint parts of the output.
pub fn parallelFor(tasks: usize, context: anytype, comptime body: fn (@TypeOf(context), usize) void) void {
    const threads = @min(numThreads(), tasks);
    if (threads <= 1) {
        for (0..tasks) |t| body(context, t);
        return;
    }
    const Shared = struct {
        next: std.atomic.Value(usize) = std.atomic.Value(usize).init(0),
        tasks: usize,
        context: @TypeOf(context),

        fn work(self: *@This()) void {
            while (true) {
                const t = self.next.fetchAdd(1, .monotonic);
                if (t >= self.tasks) break;
                body(self.context, t);
            }
        }
    };
    var shared = Shared{ .tasks = tasks, .context = context };
    var workers: [63]?std.Thread = @splat(null);
    const extra = @min(threads - 1, workers.len);
    for (workers[0..extra]) |*w| {
        w.* = std.Thread.spawn(.{ .stack_size = 1 << 20 }, Shared.work, .{&shared}) catch null;
    }
    shared.work();
    for (workers[0..extra]) |w| {
        if (w) |thread| thread.join();
    }
}

test "parallelFor runs every task once" {
    var hits: [1000]std.atomic.Value(usize) = @splat(std.atomic.Value(usize).init(0));
    const Ctx = struct {
        fn body(h: *[1000]std.atomic.Value(usize), t: usize) void {
            _ = h[t].fetchAdd(1, .monotonic);
        }
    };
    parallelFor(hits.len, &hits, Ctx.body);
    for (hits) |h| try std.testing.expectEqual(@as(usize, 1), h.load(.monotonic));
}
