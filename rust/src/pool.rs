//! A persistent worker pool for [`crate::abi::parallel_for`]: a call wakes sleeping workers
//! (a condition variable) instead of spawning threads, which costs tens of microseconds per
//! call and, on a loaded machine, often leaves the caller doing all the work alone.
//!
//! One job runs at a time: a call that finds the pool busy (another caller thread) returns
//! `false` and its caller spawns scoped threads instead; a call from inside a pool job runs
//! inline (the caller checks [`in_pool_job`]). After a job a worker spins briefly (~50-100
//! microseconds, like OpenMP's default) watching for the next one, then sleeps: back-to-back
//! kernel calls find it awake, an idle library costs no CPU.

use std::cell::Cell;
use std::panic::{catch_unwind, resume_unwind, AssertUnwindSafe};
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Condvar, Mutex, MutexGuard, OnceLock};

/// The job of the current round. The pointee outlives the round: [`run`] does not return
/// before every participant has finished with it.
#[derive(Clone, Copy)]
struct Job(*const (dyn Fn() + Sync));
unsafe impl Send for Job {}

struct Round {
    generation: u64,
    job: Option<Job>,
    /// Workers 0..want take part in this round.
    want: usize,
    /// Participants that have not finished yet.
    pending: usize,
    panicked: bool,
    started: usize,
}

struct Pool {
    round: Mutex<Round>,
    work: Condvar,
    done: Condvar,
    busy: AtomicBool,
}

/// Spin iterations of an idle worker before it sleeps.
const SPINS: u32 = 2000;
/// `Round::generation`, readable without the lock (for the spinning workers).
static GENERATION: AtomicU64 = AtomicU64::new(0);

thread_local! {
    static IN_JOB: Cell<bool> = const { Cell::new(false) };
}

fn pool() -> &'static Pool {
    static POOL: OnceLock<Pool> = OnceLock::new();
    POOL.get_or_init(|| Pool {
        round: Mutex::new(Round { generation: 0, job: None, want: 0, pending: 0, panicked: false, started: 0 }),
        work: Condvar::new(),
        done: Condvar::new(),
        busy: AtomicBool::new(false),
    })
}

fn lock(pool: &Pool) -> MutexGuard<'_, Round> {
    // a poisoned lock only means a panic elsewhere; the round's fields stay consistent
    pool.round.lock().unwrap_or_else(|e| e.into_inner())
}

/// True on a thread that is running a pool job (nested parallel loops run inline there).
pub fn in_pool_job() -> bool {
    IN_JOB.with(|c| c.get())
}

/// Run `job` on the calling thread and on up to `helpers` pool workers, all at once; returns
/// when every one has finished. `false` (nothing run) when the pool is busy.
pub fn run(helpers: usize, job: &(dyn Fn() + Sync)) -> bool {
    let pool = pool();
    if pool.busy.compare_exchange(false, true, Ordering::Acquire, Ordering::Relaxed).is_err() {
        return false;
    }
    // SAFETY: the lifetime is erased only for the round, which ends before this returns.
    let erased: *const (dyn Fn() + Sync) = unsafe { std::mem::transmute(job as *const (dyn Fn() + Sync)) };
    {
        let mut round = lock(pool);
        while round.started < helpers {
            let index = round.started;
            let spawned = std::thread::Builder::new().name("axiom-rust-worker".into()).spawn(move || worker(index));
            if spawned.is_err() {
                break; // fewer workers: the others take their tasks
            }
            round.started += 1;
        }
        round.generation += 1;
        GENERATION.store(round.generation, Ordering::Release);
        round.want = helpers.min(round.started);
        round.pending = round.want;
        round.panicked = false;
        round.job = Some(Job(erased));
        pool.work.notify_all();
    }
    IN_JOB.with(|c| c.set(true));
    let mine = catch_unwind(AssertUnwindSafe(job));
    IN_JOB.with(|c| c.set(false));
    let panicked = {
        let mut round = lock(pool);
        while round.pending > 0 {
            round = pool.done.wait(round).unwrap_or_else(|e| e.into_inner());
        }
        round.job = None;
        round.panicked
    };
    pool.busy.store(false, Ordering::Release);
    if let Err(payload) = mine {
        resume_unwind(payload);
    }
    if panicked {
        panic!("a pool worker panicked in a kernel task");
    }
    true
}

fn worker(index: usize) {
    IN_JOB.with(|c| c.set(true));
    let pool = pool();
    let mut seen = 0u64;
    loop {
        let mut spins = 0;
        while GENERATION.load(Ordering::Acquire) == seen && spins < SPINS {
            std::hint::spin_loop();
            spins += 1;
        }
        let job = {
            let mut round = lock(pool);
            while round.generation == seen {
                round = pool.work.wait(round).unwrap_or_else(|e| e.into_inner());
            }
            seen = round.generation;
            match round.job {
                Some(job) if index < round.want => job,
                _ => continue, // not needed in this round
            }
        };
        // SAFETY: the round (and so the job) stays alive until `pending` reaches 0 below.
        let ok = catch_unwind(AssertUnwindSafe(|| unsafe { (*job.0)() })).is_ok();
        let mut round = lock(pool);
        round.panicked |= !ok;
        round.pending -= 1;
        if round.pending == 0 {
            pool.done.notify_all();
        }
    }
}
