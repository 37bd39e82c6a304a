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

/// nn_numel (csrc/nn_common.h), the check of the NN kernels: the product of dims if every dim
/// is >= 0 and the product of the non-zero dims times elem bytes fits in an i64 and a usize;
/// else null. Unlike countDims, a zero dimension does not excuse an overflow of the others.
pub fn nnNumel(elem: usize, dims: []const i64) ?i64 {
    const limit: i64 = @intCast(@min(@as(u64, std.math.maxInt(i64)), @as(u64, std.math.maxInt(usize))) / elem);
    var prod: i64 = 1;
    var zero = false;
    for (dims) |d| {
        if (d < 0) return null;
        if (d == 0) {
            zero = true;
            continue;
        }
        if (prod > @divTrunc(limit, d)) return null;
        prod *= d;
    }
    return if (zero) 0 else prod;
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
/// Runs inline when one thread is allowed or tasks <= 1. Workers are persistent (a pool
/// started on first use): they spin briefly after a job, then sleep on a condition
/// variable, so a call costs a wake-up instead of a thread spawn. A call made while the pool
/// is busy (another caller thread) spawns its own threads; a call from inside a pool task
/// runs inline. Tasks must write disjoint parts of the output.
pub fn parallelFor(tasks: usize, context: anytype, comptime body: fn (@TypeOf(context), usize) void) void {
    const threads = @min(numThreads(), tasks);
    if (threads <= 1 or in_pool_task) {
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

        fn workOpaque(p: *anyopaque) void {
            work(@ptrCast(@alignCast(p)));
        }
    };
    var shared = Shared{ .tasks = tasks, .context = context };
    if (pool.run(threads - 1, &shared, Shared.workOpaque)) return;
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

threadlocal var in_pool_task: bool = false;

const pool = struct {
    const c = std.c;
    const max_workers = 63;
    // brief spin (~50-100 us) before sleeping: short enough not to steal a shared core for long
    const spins = 2000;
    var busy = std.atomic.Value(bool).init(false);
    var mutex: c.pthread_mutex_t = c.PTHREAD_MUTEX_INITIALIZER;
    var work_cond: c.pthread_cond_t = c.PTHREAD_COND_INITIALIZER;
    var done_cond: c.pthread_cond_t = c.PTHREAD_COND_INITIALIZER;
    var generation = std.atomic.Value(u32).init(0);
    var pending = std.atomic.Value(usize).init(0);
    var started: usize = 0;
    var want = std.atomic.Value(usize).init(0);
    var job: *const fn (*anyopaque) void = undefined;
    var job_ctx: *anyopaque = undefined;

    /// Run job(ctx) on the calling thread and `helpers` pool workers; false when the pool is busy.
    fn run(helpers: usize, ctx: *anyopaque, f: *const fn (*anyopaque) void) bool {
        if (busy.cmpxchgStrong(false, true, .acquire, .monotonic) != null) return false;
        defer busy.store(false, .release);
        while (started < @min(helpers, max_workers)) : (started += 1) {
            const t = std.Thread.spawn(.{ .stack_size = 1 << 20 }, worker, .{started}) catch break;
            t.detach();
        }
        const n = @min(helpers, started);
        job = f;
        job_ctx = ctx;
        want.store(n, .monotonic);
        pending.store(n, .release);
        _ = c.pthread_mutex_lock(&mutex);
        _ = generation.fetchAdd(1, .release);
        _ = c.pthread_cond_broadcast(&work_cond);
        _ = c.pthread_mutex_unlock(&mutex);
        in_pool_task = true;
        f(ctx);
        in_pool_task = false;
        var i: usize = 0;
        while (pending.load(.acquire) != 0 and i < spins) : (i += 1) std.atomic.spinLoopHint();
        if (pending.load(.acquire) != 0) {
            _ = c.pthread_mutex_lock(&mutex);
            while (pending.load(.acquire) != 0) _ = c.pthread_cond_wait(&done_cond, &mutex);
            _ = c.pthread_mutex_unlock(&mutex);
        }
        return true;
    }

    fn worker(index: usize) void {
        in_pool_task = true;
        var seen: u32 = 0;
        while (true) {
            var g = generation.load(.acquire);
            var i: usize = 0;
            while (g == seen and i < spins) : (i += 1) {
                std.atomic.spinLoopHint();
                g = generation.load(.acquire);
            }
            if (g == seen) {
                _ = c.pthread_mutex_lock(&mutex);
                while (generation.load(.acquire) == seen) _ = c.pthread_cond_wait(&work_cond, &mutex);
                _ = c.pthread_mutex_unlock(&mutex);
                g = generation.load(.acquire);
            }
            seen = g;
            // a participant of round g holds the round open, so a newer generation here means
            // this worker was not one: leave it to the next loop
            const w = want.load(.monotonic);
            if (generation.load(.acquire) != g) continue;
            if (index < w) {
                job(job_ctx);
                if (pending.fetchSub(1, .acq_rel) == 1) {
                    _ = c.pthread_mutex_lock(&mutex);
                    _ = c.pthread_cond_signal(&done_cond);
                    _ = c.pthread_mutex_unlock(&mutex);
                }
            }
        }
    }
};

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

test "parallelFor reuses the pool and runs nested loops inline" {
    var total = std.atomic.Value(usize).init(0);
    const Ctx = struct {
        fn inner(t: *std.atomic.Value(usize), _: usize) void {
            _ = t.fetchAdd(1, .monotonic);
        }
        fn outer(t: *std.atomic.Value(usize), _: usize) void {
            parallelFor(8, t, inner);
        }
    };
    for (0..50) |_| parallelFor(8, &total, Ctx.outer);
    try std.testing.expectEqual(@as(usize, 50 * 64), total.load(.monotonic));
}
