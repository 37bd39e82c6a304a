"""Running many verification instances at once: worker processes on one machine, or a Dask cluster.

Both back ends do the same per-instance work as the sequential
:func:`~axiom.verify.instances.run_instances` (:func:`~axiom.verify.instances.verify_instance`
with the instance's scaled timeout) and return the results in the instances' order, so the
results file is the same whichever way it ran (answers identical, times differ):

- :func:`run_parallel` (``axiom verify --instances CSV --workers N``) starts N worker processes
  (the ``spawn`` start method: a fresh interpreter that imports axiom and owns its own
  :class:`~axiom.verify.instances.InstanceCache`, so each network is imported once per
  worker). The parent hands out one instance at a time and waits with a hard deadline:
  ``timeout + grace``. A worker that overruns it (a hung instance) is killed and replaced and
  the instance answers ``timeout``; a worker that dies (a crash in native code, ``os._exit``,
  out of memory) is replaced and the instance answers ``error``. Neither stops the others.
  Ctrl-C (or any exception in the parent) kills every worker before it propagates.
- :func:`run_dask` (``--dask-scheduler ADDRESS``) submits one task per instance to a
  ``dask.distributed`` cluster; each worker process keeps a module-level cache. The paths
  sent are absolute, so the cluster must see the same file system. A Dask worker thread cannot
  be killed: a task that overruns ``timeout + grace`` answers ``timeout`` and leaves the
  computation running in the background of that worker (verify() itself stops at its budget).
  A task that raises or whose worker dies answers ``error``.

Example:
    >>> from pathlib import Path
    >>> from axiom.verify.instances import Instance
    >>> missing = Instance("demo", Path("missing.onnx"), Path("missing.vnnlib"), 5.0, "unsat")
    >>> [o.answer for _, o in run_parallel([missing], workers=1)]
    ['error']
"""

from __future__ import annotations

import multiprocessing as mp
import os
import signal
import time
import uuid
from collections import deque
from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass
from multiprocessing.connection import Connection, wait
from pathlib import Path
from typing import Any

from axiom.verify.instances import Instance, InstanceCache, Outcome, Progress, is_wrong, verify_instance

__all__ = ["Runner", "default_grace", "default_runner", "run_dask", "run_parallel"]

Runner = Callable[[Instance, float, "str | None", InstanceCache], Outcome]
"""What a worker does with one instance: ``runner(instance, timeout_s, method, cache) -> Outcome``."""

_THREAD_VARS = ("OMP_NUM_THREADS", "OPENBLAS_NUM_THREADS", "MKL_NUM_THREADS")


def default_runner(inst: Instance, timeout: float, method: str | None, cache: InstanceCache) -> Outcome:
    """The per-instance work: :func:`~axiom.verify.instances.verify_instance` with a shared cache.

    Example:
        >>> i = Instance("demo", Path("missing.onnx"), Path("missing.vnnlib"), 5.0)
        >>> default_runner(i, 5.0, None, InstanceCache()).answer
        'error'
    """
    return verify_instance(inst.onnx, inst.vnnlib, timeout=timeout, method=method, cache=cache)


def default_grace(timeout: float) -> float:
    """Seconds past an instance's timeout before its worker is killed: 2 s plus 10% of the timeout.

    verify() returns at its budget by itself; the grace only covers result confirmation and
    an instance that does not stop, so it errs on the long side.

    Example:
        >>> default_grace(10.0), default_grace(116.0)
        (3.0, 13.6)
    """
    return round(2.0 + 0.1 * timeout, 6)


def _finish(progress: Progress | None, inst: Instance, outcome: Outcome, results: list[Any], index: int) -> None:
    results[index] = (inst, outcome)
    if progress is not None:
        wrong = " (WRONG)" if is_wrong(inst.expected, outcome.answer) else ""
        progress.update(inst.label, outcome.answer + wrong, outcome.runtime_s)


# ----------------------------------------------------------------------------------------------
# Worker processes on one machine
# ----------------------------------------------------------------------------------------------


def _worker_main(conn: Connection, runner: Runner) -> None:
    """Body of a worker process: answer ``(index, instance, timeout, method)`` tasks until None/EOF."""
    # The parent owns Ctrl-C: it kills the workers, which must not print tracebacks of their own.
    signal.signal(signal.SIGINT, signal.SIG_IGN)
    cache = InstanceCache()
    conn.send(("ready", os.getpid()))
    while True:
        try:
            task = conn.recv()
        except (EOFError, OSError):
            return
        if task is None:
            return
        index, inst, timeout, method = task
        try:
            outcome = runner(inst, timeout, method, cache)
        except Exception as err:  # noqa: BLE001 - a runner that raises still gets an answer
            outcome = Outcome("error", 0.0, message=f"{type(err).__name__}: {err}")
        try:
            conn.send((index, outcome))
        except (BrokenPipeError, OSError):
            return
        except Exception as err:  # noqa: BLE001 - an answer that does not pickle is reported, not lost
            conn.send((index, Outcome("error", outcome.runtime_s, message=f"unsendable result: {err}")))


@dataclass
class _Worker:
    proc: Any
    conn: Connection
    started: float
    ready: bool = False
    task: tuple[int, Instance, float] | None = None  # (index, instance, timeout) while busy
    dispatched: float = 0.0
    deadline: float = 0.0


@contextmanager
def _thread_env(threads: int | None) -> Iterator[None]:
    """Thread-count variables for a child about to start (variables the user set are kept)."""
    saved = {k: os.environ.get(k) for k in _THREAD_VARS}
    if threads is not None:
        for k in _THREAD_VARS:
            os.environ.setdefault(k, str(threads))
    try:
        yield
    finally:
        for k, v in saved.items():
            if v is None:
                os.environ.pop(k, None)
            else:
                os.environ[k] = v


def _stop(worker: _Worker, kill: bool) -> None:
    """End a worker: politely (None on its pipe) or with SIGKILL; always reaps it."""
    if not kill:
        try:
            worker.conn.send(None)
        except (BrokenPipeError, OSError):
            pass
        worker.proc.join(2.0)
    if worker.proc.is_alive():
        worker.proc.kill()
        worker.proc.join(5.0)
    worker.conn.close()


def run_parallel(
    instances: Sequence[Instance],
    *,
    workers: int = 2,
    timeout_scale: float = 1.0,
    method: str | None = None,
    progress: Progress | None = None,
    grace: Callable[[float], float] = default_grace,
    runner: Runner = default_runner,
    start_timeout: float = 120.0,
    threads_per_worker: int | None = None,
) -> list[tuple[Instance, Outcome]]:
    """Verify ``instances`` in ``workers`` processes; the results come back in the input order.

    ``grace(timeout)`` is how long past its timeout an instance may run before its worker is
    killed (answer ``timeout``); a worker that dies gives ``error``. ``runner`` (a picklable,
    module-level function) replaces the per-instance work, e.g. in tests.
    ``threads_per_worker`` sets ``OMP/OPENBLAS/MKL_NUM_THREADS`` in the workers where the
    environment does not (default: the usable CPUs divided among the workers, at least 1).

    Example:
        >>> i = Instance("demo", Path("missing.onnx"), Path("missing.vnnlib"), 5.0, "unsat")
        >>> [(x.benchmark, o.answer) for x, o in run_parallel([i, i], workers=2)]
        [('demo', 'error'), ('demo', 'error')]
    """
    if int(workers) != workers or workers < 1:
        raise ValueError(f"workers must be a positive integer, got {workers!r}")
    if not timeout_scale > 0:
        raise ValueError(f"timeout_scale must be > 0, got {timeout_scale!r}")
    workers = int(workers)
    n = len(instances)
    results: list[Any] = [None] * n
    if n == 0:
        return []
    if threads_per_worker is None:
        try:
            cpus = len(os.sched_getaffinity(0))
        except AttributeError:  # pragma: no cover - not Linux
            cpus = os.cpu_count() or 1
        threads_per_worker = max(1, cpus // workers)
    ctx = mp.get_context("spawn")
    pending = deque(range(n))
    pool: list[_Worker] = []
    start_failures = 0

    def spawn() -> None:
        parent, child = ctx.Pipe()
        proc = ctx.Process(target=_worker_main, args=(child, runner), name="axiom-verify-worker", daemon=True)
        with _thread_env(threads_per_worker):
            proc.start()
        child.close()
        pool.append(_Worker(proc, parent, time.monotonic()))

    def dispatch(w: _Worker) -> None:
        index = pending.popleft()
        inst = instances[index]
        timeout = inst.timeout_s * timeout_scale
        if progress is not None:
            progress.start(inst.label)
        w.task, w.dispatched = (index, inst, timeout), time.monotonic()
        w.deadline = w.dispatched + timeout + grace(timeout)
        try:
            w.conn.send((index, inst, timeout, method))
        except (BrokenPipeError, OSError):
            pass  # the worker died meanwhile: its sentinel says so on the next round

    def retire(w: _Worker, kill: bool) -> None:
        pool.remove(w)
        _stop(w, kill)
        if pending and len(pool) < workers:
            spawn()

    def failed_start(code: Any) -> None:
        # a worker that cannot even start would be replaced forever: give up after a few
        nonlocal start_failures
        start_failures += 1
        if start_failures > workers + 2:
            why = f"worker processes fail to start (last exit code {code})"
            while pending:
                index = pending.popleft()
                _finish(progress, instances[index], Outcome("error", 0.0, message=why), results, index)

    try:
        for _ in range(min(workers, n)):
            spawn()
        while pool:
            now = time.monotonic()
            deadlines = [w.deadline if w.task else w.started + start_timeout for w in pool if w.task or not w.ready]
            wait_s = max(0.0, min(deadlines) - now) if deadlines else None
            handles: list[Any] = [w.conn for w in pool] + [w.proc.sentinel for w in pool]
            ready = set(wait(handles, timeout=wait_s))
            now = time.monotonic()
            for w in list(pool):
                message: Any = None
                dead = False
                if w.conn in ready or w.proc.sentinel in ready:
                    try:
                        if w.conn.poll():
                            message = w.conn.recv()
                        elif not w.proc.is_alive():
                            dead = True
                    except (EOFError, OSError):
                        dead = True
                    except Exception as err:  # noqa: BLE001 - an answer that does not unpickle
                        if w.task is not None:
                            index, inst, _ = w.task
                            bad = Outcome("error", now - w.dispatched, message=f"unreadable result: {err}")
                            _finish(progress, inst, bad, results, index)
                            w.task = None
                if message is not None and message[0] == "ready":
                    w.ready = True
                    start_failures = 0
                elif message is not None:
                    index, outcome = message
                    assert w.task is not None and index == w.task[0], "answer for an instance not asked"
                    _finish(progress, w.task[1], outcome, results, index)
                    w.task = None
                elif dead:
                    w.proc.join(1.0)
                    code = w.proc.exitcode
                    if w.task is not None:
                        index, inst, _ = w.task
                        why = f"the worker process died (exit code {code}) while verifying this instance"
                        _finish(progress, inst, Outcome("error", now - w.dispatched, message=why), results, index)
                    else:
                        failed_start(code)
                    w.task = None
                    retire(w, kill=True)
                    continue
                elif w.task is not None and now >= w.deadline:
                    index, inst, timeout = w.task
                    why = (
                        f"no answer {now - w.dispatched:.1f} s after dispatch (timeout {timeout:g} s + grace "
                        f"{grace(timeout):g} s): the worker was killed"
                    )
                    _finish(progress, inst, Outcome("timeout", now - w.dispatched, message=why), results, index)
                    w.task = None
                    retire(w, kill=True)
                    continue
                elif not w.ready and now >= w.started + start_timeout:
                    failed_start("none: it did not start in time")
                    retire(w, kill=True)
                    continue
                if w.ready and w.task is None:
                    if pending:
                        dispatch(w)
                    else:
                        retire(w, kill=False)
    finally:
        for w in pool:
            _stop(w, kill=True)
        pool.clear()
    return results


# ----------------------------------------------------------------------------------------------
# Dask distributed
# ----------------------------------------------------------------------------------------------

_DASK_CACHE: InstanceCache | None = None


def _dask_task(inst: Instance, timeout: float, method: str | None, grace_s: float, runner: Runner) -> Outcome:
    """One instance on a Dask worker: the process-wide cache, and an answer by ``timeout + grace_s``."""
    import threading

    global _DASK_CACHE
    if _DASK_CACHE is None:
        _DASK_CACHE = InstanceCache()
    box: list[Outcome] = []
    t0 = time.perf_counter()

    def work() -> None:
        try:
            box.append(runner(inst, timeout, method, _DASK_CACHE))
        except Exception as err:  # noqa: BLE001
            box.append(Outcome("error", time.perf_counter() - t0, message=f"{type(err).__name__}: {err}"))

    thread = threading.Thread(target=work, name="axiom-verify-instance", daemon=True)
    thread.start()
    thread.join(timeout + grace_s)
    if box:
        return box[0]
    elapsed = time.perf_counter() - t0
    why = f"no answer {elapsed:.1f} s after start (timeout {timeout:g} s + grace {grace_s:g} s); abandoned"
    return Outcome("timeout", elapsed, message=why)


def run_dask(
    instances: Sequence[Instance],
    address: str | Any,
    *,
    timeout_scale: float = 1.0,
    method: str | None = None,
    progress: Progress | None = None,
    grace: Callable[[float], float] = default_grace,
    runner: Runner = default_runner,
    connect_timeout: float = 30.0,
) -> list[tuple[Instance, Outcome]]:
    """Verify ``instances`` on the Dask cluster at ``address`` (or an existing ``distributed.Client``).

    One task per instance (paths made absolute), results in the input order; a task that fails
    or whose worker dies answers ``error``. Prefer workers with one thread each
    (``dask worker ADDRESS --nthreads 1``): verification is CPU-bound Python.

    Example:
        >>> run_dask([], "tcp://127.0.0.1:1")  # nothing to do: no connection is made
        []
    """
    if not timeout_scale > 0:
        raise ValueError(f"timeout_scale must be > 0, got {timeout_scale!r}")
    if not instances:
        return []
    try:
        from distributed import Client, as_completed
    except ImportError as err:  # pragma: no cover - dask is a declared dependency
        raise RuntimeError("--dask-scheduler needs dask.distributed: pip install 'axiom[dask]'") from err
    own = not hasattr(address, "submit")
    try:
        if isinstance(address, str):
            _probe(address, connect_timeout)
        client = Client(address, timeout=connect_timeout) if own else address
    except OSError as err:
        raise RuntimeError(f"cannot connect to the Dask scheduler at {address}: {err}") from err
    results: list[Any] = [None] * len(instances)
    token = uuid.uuid4().hex[:8]
    try:
        futures: list[Any] = []
        for index, inst in enumerate(instances):
            task_inst = Instance(
                inst.benchmark,
                Path(inst.onnx).resolve(),
                Path(inst.vnnlib).resolve(),
                inst.timeout_s,
                inst.expected,
                inst.row,
            )
            timeout = inst.timeout_s * timeout_scale
            future = client.submit(
                _dask_task,
                task_inst,
                timeout,
                method,
                grace(timeout),
                runner,
                key=f"axiom-verify-{token}-{index}",
                pure=False,
            )
            futures.append(future)
        where = {f.key: k for k, f in enumerate(futures)}
        for future in as_completed(futures):
            index = where[future.key]
            try:
                outcome = future.result()
            except Exception as err:  # noqa: BLE001 - a failed task or a lost worker is that instance's error
                outcome = Outcome("error", 0.0, message=f"dask task failed: {type(err).__name__}: {err}")
            _finish(progress, instances[index], outcome, results, index)
    finally:
        if own:
            client.close()
    return results


def _probe(address: str, timeout: float) -> None:
    """Fail fast on a ``tcp://host:port`` nobody listens on (Client retries until its timeout)."""
    import socket
    from urllib.parse import urlsplit

    parts = urlsplit(address if "://" in address else f"tcp://{address}")
    if parts.scheme != "tcp" or parts.hostname is None or parts.port is None:
        return
    with socket.create_connection((parts.hostname, parts.port), timeout=min(timeout, 10.0)):
        pass
